/*
 * overlay_bench.c - numbers for choosing the overlay's tracking
 * granularity G (docs/overlay-format.md).  Prints, for G = 4, 16, 64 KiB:
 * 4 KiB random writes into a fresh overlay, 4 KiB random overwrites of
 * the same blocks, 1 MiB sequential reads over the mixed region, space
 * and RAM per GiB written.  A program that prints numbers, not a test.
 *
 * Build and run (from the repository root):
 *   cc -O2 -g -std=gnu11 -D_GNU_SOURCE -Isrc -I/usr/include/isa-l -pthread \
 *      -o build/overlay_bench bench/overlay_bench.c src/storage/overlay*.c \
 *      src/storage/raw.c src/util/log.c -lisal
 *   build/overlay_bench [DIR] [GOLDEN_MIB]      (default: $TMPDIR or /tmp, 1024)
 * The page cache is warm throughout: this compares the overlay's own
 * costs (copy-up, map, syscalls), not the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/backend.h"
#include "storage/overlay.h"
#include "storage/overlay_int.h"
#include "util/log.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "overlay_bench: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

/* A golden image of mib MiB with non-zero content (copy-up reads real data). */
static void make_golden(const char *path, uint64_t mib)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint8_t *buf = malloc(1 << 20);
	if (fd < 0 || !buf)
		die("golden", errno);
	for (uint64_t i = 0; i < mib; i++) {
		memset(buf, (int)(i * 7 + 1), 1 << 20);
		if (pwrite(fd, buf, 1 << 20, (off_t)(i << 20)) != 1 << 20)
			die("golden write", errno);
	}
	fsync(fd);
	close(fd);
	free(buf);
}

static void rm_overlay(const char *dir)
{
	const char *names[] = { "data", "map", "log", "info", "map.tmp", "log.tmp", "info.tmp" };
	char p[600];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void bench(const char *base, struct backend *golden, uint32_t g)
{
	char dir[512];
	struct overlay *ov;
	struct overlay_opts o = { .base_id = "bench", .block_size = g };
	const uint64_t nwrites = 32768;                 /* 128 MiB of 4 KiB writes */
	uint64_t nblk4k = golden->size / 4096;
	uint64_t *offs = malloc(nwrites * sizeof(*offs));
	uint8_t *buf = malloc(1 << 20);
	uint64_t seed = 88172645463325252ull;
	int rc;

	snprintf(dir, sizeof(dir), "%s/ovlbench.%u", base, g);
	rm_overlay(dir);
	rc = overlay_open(dir, golden, &o, &ov);
	if (rc < 0)
		die("overlay_open", rc);
	struct backend *be = overlay_backend(ov);
	memset(buf, 0xa5, 1 << 20);
	for (uint64_t i = 0; i < nwrites; i++)
		offs[i] = (rnd(&seed) % nblk4k) * 4096;

	/* Random 4 KiB writes, a flush every 256 (a guest's journal commits). */
	double t0 = now_s();
	for (uint64_t i = 0; i < nwrites; i++) {
		if ((rc = be->ops->write(be, buf, offs[i], 4096, false)) < 0)
			die("write", rc);
		if (i % 256 == 255 && (rc = be->ops->flush(be)) < 0)
			die("flush", rc);
	}
	be->ops->flush(be);
	double tw = now_s() - t0;
	uint64_t used = overlay_used_bytes(ov);
	uint64_t mem_sparse = ovl_map_mem_bytes(&ov->map);

	t0 = now_s();
	for (uint64_t i = 0; i < nwrites; i++) {
		if ((rc = be->ops->write(be, buf, offs[nwrites - 1 - i], 4096, false)) < 0)
			die("overwrite", rc);
		if (i % 256 == 255 && (rc = be->ops->flush(be)) < 0)
			die("flush", rc);
	}
	be->ops->flush(be);
	double to = now_s() - t0;

	/* Sequential 1 MiB reads over the whole (mixed golden/overlay) disk. */
	t0 = now_s();
	for (uint64_t off = 0; off < golden->size; off += 1 << 20)
		if ((rc = be->ops->read(be, buf, off, 1 << 20)) < 0)
			die("read", rc);
	double tr = now_s() - t0;

	/* Dense writing: 256 MiB sequential in 1 MiB writes, RAM per GiB. */
	uint64_t dense = golden->size / 4 < (256u << 20) ? golden->size / 4 : (256u << 20);
	uint64_t mem0 = ovl_map_mem_bytes(&ov->map);
	rc = be->ops->unmap(be, 0, golden->size);       /* start from nothing held */
	if (rc < 0)
		die("unmap", rc);
	be->ops->flush(be);
	mem0 = ovl_map_mem_bytes(&ov->map);
	for (uint64_t off = 0; off < dense; off += 1 << 20)
		if ((rc = be->ops->write(be, buf, off, 1 << 20, false)) < 0)
			die("dense write", rc);
	be->ops->flush(be);
	uint64_t mem1 = ovl_map_mem_bytes(&ov->map);

	printf("G=%3u KiB  rand 4K write %7.0f IOPS  overwrite %7.0f IOPS  seq 1M read %6.0f MiB/s  "
	       "space/written %5.2f  map RAM: random %6.1f KiB/GiB, dense %5.1f KiB/GiB\n",
	       g / 1024, nwrites / tw, nwrites / to, (double)golden->size / (1 << 20) / tr,
	       (double)used / (double)(nwrites * 4096),
	       (double)mem_sparse / 1024 / ((double)nwrites * 4096 / (1 << 30)),
	       (double)(mem1 - mem0) / 1024 / ((double)dense / (1 << 30)));
	overlay_close(ov);
	rm_overlay(dir);
	free(offs);
	free(buf);
}

int main(int argc, char **argv)
{
	const char *base = argc > 1 ? argv[1] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	uint64_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
	char gpath[512];
	struct backend *golden;

	log_set_level(LOG_WARN);
	snprintf(gpath, sizeof(gpath), "%s/ovlbench.golden", base);
	make_golden(gpath, mib);
	int rc = backend_raw_open(gpath, false, &golden);
	if (rc < 0)
		die("golden open", rc);
	printf("golden %llu MiB; 32768 random 4 KiB writes (flush every 256), then overwritten\n",
	       (unsigned long long)mib);
	uint32_t gs[] = { 4096, 16384, 65536 };
	for (int i = 0; i < 3; i++)
		bench(base, golden, gs[i]);
	backend_close(golden);
	unlink(gpath);
	return 0;
}
