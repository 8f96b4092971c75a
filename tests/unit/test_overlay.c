/*
 * test_overlay.c - functional tests of the copy-on-write overlay
 * (src/storage/overlay*.c) on the real file system: reads from golden,
 * aligned and unaligned writes, unmap, reopen, independence of two
 * overlays, quota, identity checks, concurrent sub-block writers,
 * corrupt metadata on disk, and the cost of a reset.
 * Crash/power-cut tests are in test_overlay_crash.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/crc32c.h"
#include "lab/statedir.h"
#include "storage/backend.h"
#include "storage/overlay.h"
#include "util/log.h"

static char g_root[256];        /* per-run temporary directory */

/* Byte o of the content "seed" (seed 0 = the golden image). */
static uint8_t pat_byte(uint64_t seed, uint64_t o)
{
	uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull ^ (o / 8) * 0xBF58476D1CE4E5B9ull;
	x ^= x >> 31;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (o % 8)));
}

static void pat_fill(uint8_t *buf, uint64_t seed, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat_byte(seed, off + i);
}

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", g_root, name);
}

/* A golden image file of size bytes with the seed-0 pattern (or sparse). */
static struct backend *make_golden(const char *name, uint64_t size, bool sparse)
{
	char p[512];
	struct backend *be;
	path_in(p, sizeof(p), name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (!sparse) {
		uint8_t *buf = malloc(1 << 20);
		for (uint64_t o = 0; o < size; o += 1 << 20) {
			size_t n = size - o < (1u << 20) ? size - o : (1u << 20);
			pat_fill(buf, 0, o, n);
			assert_int_equal(pwrite(fd, buf, n, (off_t)o), (ssize_t)n);
		}
		free(buf);
	}
	close(fd);
	assert_int_equal(backend_raw_open(p, false, &be), 0);
	return be;
}

/* CRC of a whole file, to prove it never changed. */
static uint32_t file_crc(const char *path)
{
	int fd = open(path, O_RDONLY);
	uint8_t buf[65536];
	uint32_t reg = CRC32C_INIT;
	ssize_t n;
	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		reg = crc32c_update(reg, buf, (size_t)n);
	close(fd);
	return crc32c_final(reg);
}

static struct overlay *open_ovl(const char *name, struct backend *golden, uint32_t bs)
{
	char p[512];
	struct overlay *ov = NULL;
	struct overlay_opts o = { .base_id = "gold-1", .block_size = bs };
	path_in(p, sizeof(p), name);
	assert_int_equal(overlay_open(p, golden, &o, &ov), 0);
	return ov;
}

/* Read the whole disk of ov and compare with model. */
static void check_all(struct overlay *ov, const uint8_t *model, uint64_t size)
{
	struct backend *be = overlay_backend(ov);
	uint8_t *buf = malloc(size);
	assert_int_equal(be->ops->read(be, buf, 0, size), 0);
	for (uint64_t i = 0; i < size; i++) {
		if (buf[i] != model[i]) {
			print_error("mismatch at byte %llu (sector %llu)\n", (unsigned long long)i,
				    (unsigned long long)(i / 512));
			fail();
		}
	}
	free(buf);
}

static void do_write(struct overlay *ov, uint8_t *model, uint64_t seed, uint64_t off, size_t len)
{
	struct backend *be = overlay_backend(ov);
	uint8_t *buf = malloc(len);
	pat_fill(buf, seed, off, len);
	assert_int_equal(be->ops->write(be, buf, off, len, false), 0);
	memcpy(model + off, buf, len);
	free(buf);
}

static void test_reads_and_writes(void **state)
{
	const uint64_t size = 4u << 20;
	char gpath[512];
	struct backend *golden = make_golden("g1", size, false);
	path_in(gpath, sizeof(gpath), "g1");
	uint32_t gcrc = file_crc(gpath);
	uint8_t *model = malloc(size);
	pat_fill(model, 0, 0, size);

	uint32_t sizes[] = { 4096, 16384 };
	for (int k = 0; k < 2; k++) {
		char name[32];
		snprintf(name, sizeof(name), "rw%d", k);
		struct overlay *ov = open_ovl(name, golden, sizes[k]);
		pat_fill(model, 0, 0, size);
		check_all(ov, model, size);             /* untouched: golden */
		do_write(ov, model, 1, 8192, 4096);     /* aligned */
		do_write(ov, model, 2, 512 * 3, 512);   /* odd sectors */
		do_write(ov, model, 3, 512 * 21, 512);
		do_write(ov, model, 4, 4096 - 512, 1024);          /* spans G */
		do_write(ov, model, 5, 65536 - 1536, 3072);
		do_write(ov, model, 6, (1u << 20) + 512, 1u << 20); /* 1 MiB, unaligned */
		do_write(ov, model, 7, 512 * 3 + 512, 512);         /* next to a copy-up */
		check_all(ov, model, size);
		srand(42 + k);
		for (int i = 0; i < 200; i++) {
			uint64_t off = (uint64_t)(rand() % (int)(size / 512)) * 512;
			size_t len = (size_t)(1 + rand() % 40) * 512;
			if (off + len > size)
				len = size - off;
			do_write(ov, model, 100 + (uint64_t)i, off, len);
		}
		check_all(ov, model, size);
		assert_int_equal(overlay_close(ov), 0);
		ov = open_ovl(name, golden, sizes[k]);   /* reopen keeps everything */
		check_all(ov, model, size);
		assert_int_equal(overlay_close(ov), 0);
	}
	assert_int_equal(file_crc(gpath), gcrc);        /* golden never written */
	backend_close(golden);
	free(model);
}

static void test_unmap(void **state)
{
	const uint64_t size = 2u << 20;
	struct backend *golden = make_golden("g2", size, false);
	uint8_t *model = malloc(size);
	pat_fill(model, 0, 0, size);
	struct overlay *ov = open_ovl("un", golden, 4096);
	struct backend *be = overlay_backend(ov);

	do_write(ov, model, 1, 0, 256 << 10);
	uint64_t used = overlay_used_bytes(ov);
	assert_true(used >= 256 << 10);
	assert_int_equal(be->ops->unmap(be, 0, 128 << 10), 0);
	memset(model, 0, 128 << 10);
	assert_true(overlay_used_bytes(ov) <= used - (128 << 10));
	/* partial blocks at both edges, over golden and over written data */
	assert_int_equal(be->ops->unmap(be, 300 << 10 | 512, 1024), 0);
	memset(model + (300 << 10 | 512), 0, 1024);
	assert_int_equal(be->ops->unmap(be, (200 << 10) + 512, (200 << 10)), 0);
	memset(model + (200 << 10) + 512, 0, 200 << 10);
	assert_int_equal(be->ops->unmap(be, size - 4096 - 512, 4096 + 512), 0);
	memset(model + size - 4096 - 512, 0, 4096 + 512);
	check_all(ov, model, size);
	/* write into unmapped space (ZERO copy-up) */
	do_write(ov, model, 9, 1024, 512);
	check_all(ov, model, size);

	uint64_t run;
	bool mapped;
	assert_int_equal(be->ops->block_status(be, 8192, 65536, &run, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(run, 65536);
	assert_int_equal(be->ops->flush(be), 0);
	assert_int_equal(overlay_close(ov), 0);
	ov = open_ovl("un", golden, 4096);
	check_all(ov, model, size);
	/* The whole disk (a format's TRIM): no space held, no leaf needed. */
	be = overlay_backend(ov);
	assert_int_equal(be->ops->unmap(be, 0, size), 0);
	memset(model, 0, size);
	assert_int_equal(overlay_used_bytes(ov), 0);
	assert_int_equal(overlay_close(ov), 0);
	ov = open_ovl("un", golden, 4096);
	check_all(ov, model, size);
	do_write(ov, model, 10, 8192 + 512, 512);       /* into an all-ZERO leaf */
	assert_int_equal(overlay_close(ov), 0);
	ov = open_ovl("un", golden, 4096);
	check_all(ov, model, size);
	assert_int_equal(overlay_used_bytes(ov), 4096);
	assert_int_equal(overlay_close(ov), 0);
	backend_close(golden);
	free(model);
}

static void test_two_overlays(void **state)
{
	const uint64_t size = 1u << 20;
	struct backend *golden = make_golden("g3", size, false);
	uint8_t *m1 = malloc(size), *m2 = malloc(size);
	pat_fill(m1, 0, 0, size);
	pat_fill(m2, 0, 0, size);
	struct overlay *a = open_ovl("a", golden, 0), *b = open_ovl("b", golden, 0);
	do_write(a, m1, 1, 4096, 8192);
	do_write(b, m2, 2, 8192, 8192);
	do_write(a, m1, 3, 1000 * 512, 512);
	check_all(a, m1, size);
	check_all(b, m2, size);
	struct backend *be = overlay_backend(a);        /* out of range: refused */
	assert_int_equal(be->ops->write(be, m1, size - 512, 1024, false), -EINVAL);
	assert_int_equal(be->ops->read(be, m1, size, 512), -EINVAL);
	assert_int_equal(overlay_close(a), 0);
	/* drop (the reset path): b's unflushed writes are gone, like a crash */
	overlay_drop(b);
	b = open_ovl("b", golden, 0);
	pat_fill(m2, 0, 0, size);
	check_all(b, m2, size);
	assert_int_equal(overlay_close(b), 0);
	backend_close(golden);
	free(m1);
	free(m2);
}

static void test_quota(void **state)
{
	const uint64_t size = 1u << 20;
	struct backend *golden = make_golden("g4", size, false);
	char p[512];
	struct overlay *ov;
	path_in(p, sizeof(p), "q");
	struct overlay_opts o = { .base_id = "gold-1", .quota_bytes = 64 << 10 };
	assert_int_equal(overlay_open(p, golden, &o, &ov), 0);
	struct backend *be = overlay_backend(ov);
	uint8_t *model = malloc(size), buf[8192];
	pat_fill(model, 0, 0, size);

	do_write(ov, model, 1, 0, 64 << 10);                     /* exactly full */
	pat_fill(buf, 2, 64 << 10, 4096);
	assert_int_equal(be->ops->write(be, buf, 64 << 10, 4096, false), -ENOSPC);
	assert_int_equal(be->ops->write(be, buf, (64 << 10) + 512, 512, false), -ENOSPC);
	/* a write straddling held and new space fails whole, before writing */
	assert_int_equal(be->ops->write(be, buf, (64 << 10) - 4096, 8192, false), -ENOSPC);
	do_write(ov, model, 3, 4096, 8192);                      /* overwrite held */
	do_write(ov, model, 4, 512, 512);
	check_all(ov, model, size);
	assert_int_equal(be->ops->unmap(be, 0, 4096), 0);        /* give one back */
	memset(model, 0, 4096);
	do_write(ov, model, 5, 512 << 10, 4096);
	assert_int_equal(be->ops->write(be, buf, 600 << 10, 4096, false), -ENOSPC);
	overlay_set_quota(ov, 0);
	do_write(ov, model, 6, 600 << 10, 4096);
	check_all(ov, model, size);
	assert_int_equal(be->ops->flush(be), 0);
	assert_int_equal(overlay_close(ov), 0);

	/* The free-space floor: nothing new fits under an absurd floor. */
	struct overlay_opts f = { .base_id = "gold-1", .store_floor_bytes = UINT64_MAX / 4 };
	assert_int_equal(overlay_open(p, golden, &f, &ov), 0);
	be = overlay_backend(ov);
	assert_int_equal(be->ops->write(be, buf, 800 << 10, 4096, false), -ENOSPC);
	pat_fill(buf, 7, 600 << 10, 4096);
	assert_int_equal(be->ops->write(be, buf, 600 << 10, 4096, false), 0);
	memcpy(model + (600 << 10), buf, 4096);
	check_all(ov, model, size);
	assert_int_equal(overlay_close(ov), 0);
	backend_close(golden);
	free(model);
}

static void test_identity(void **state)
{
	struct backend *golden = make_golden("g5", 1u << 20, false);
	struct backend *other = make_golden("g5b", 2u << 20, false);
	char p[512];
	struct overlay *ov = open_ovl("id", golden, 0);
	assert_int_equal(overlay_close(ov), 0);
	path_in(p, sizeof(p), "id");
	struct overlay_opts o = { .base_id = "gold-2" };
	assert_int_equal(overlay_open(p, golden, &o, &ov), -ESTALE);
	o.base_id = "gold-1";
	assert_int_equal(overlay_open(p, other, &o, &ov), -ESTALE);
	o.base_id = NULL;                                  /* size still checked */
	assert_int_equal(overlay_open(p, other, &o, &ov), -ESTALE);
	assert_int_equal(overlay_open(p, golden, &o, &ov), 0);
	assert_int_equal(overlay_close(ov), 0);
	o.block_size = 3000;
	assert_int_equal(overlay_open(p, golden, &o, &ov), -EINVAL);
	backend_close(golden);
	backend_close(other);
}

/* Concurrent writers: sub-block sectors, plus whole blocks, all in the
 * same few blocks.  Every sector must end as one of its writers' data.
 * Phase 1 lines the threads up (a barrier) on each fresh block in turn,
 * so their copy-ups of the same ABSENT block really race; phase 2 mixes
 * random sub-block and whole-block writes in the first 16 blocks. */
#define CW_THREADS 4
#define CW_SECTORS 2048         /* the whole 1 MiB disk */
#define CW_HOT     128          /* phase 2: 16 blocks of 4 KiB */
struct cw_arg {
	struct overlay *ov;
	int id;
	uint32_t *writers;          /* per sector: bitmask of threads */
	pthread_barrier_t *bar;
};

static void cw_write(struct cw_arg *a, uint64_t s, size_t n)
{
	struct backend *be = overlay_backend(a->ov);
	uint8_t buf[8192];
	pat_fill(buf, 10 + (uint64_t)a->id, s * 512, n * 512);
	for (size_t k = 0; k < n; k++)
		__atomic_or_fetch(&a->writers[s + k], 1u << a->id, __ATOMIC_SEQ_CST);
	assert_int_equal(be->ops->write(be, buf, s * 512, n * 512, false), 0);
}

static void *cw_thread(void *p)
{
	struct cw_arg *a = p;
	unsigned seed = (unsigned)a->id * 7919u + 1;
	for (uint64_t blk = CW_HOT / 8; blk < CW_SECTORS / 8; blk++) {
		pthread_barrier_wait(a->bar);
		cw_write(a, blk * 8 + (uint64_t)(rand_r(&seed) % 7), 1 + (size_t)(rand_r(&seed) % 2));
	}
	for (int i = 0; i < 400; i++) {
		uint64_t s = (uint64_t)(rand_r(&seed) % CW_HOT);
		size_t n = 1 + (size_t)(rand_r(&seed) % 3);
		if (rand_r(&seed) % 8 == 0) {            /* a whole block */
			s &= ~7ull;
			n = 8;
		}
		if (s + n > CW_HOT)
			n = CW_HOT - s;
		cw_write(a, s, n);
	}
	return NULL;
}

struct fl_arg {
	struct overlay *ov;
	int stop;
};

/* Flushes in a loop while the writers run (snapshot vs. state races). */
static void *flusher(void *p)
{
	struct fl_arg *a = p;
	struct backend *be = overlay_backend(a->ov);
	while (!__atomic_load_n(&a->stop, __ATOMIC_SEQ_CST))
		assert_int_equal(be->ops->flush(be), 0);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct backend *golden = make_golden("g6", 1u << 20, false);
	pthread_t th[CW_THREADS];
	struct cw_arg args[CW_THREADS];
	static uint32_t writers[CW_SECTORS];
	pthread_barrier_t bar;
	uint8_t buf[512], exp[512];

	for (int round = 0; round < 5; round++) {
		char name[32];
		snprintf(name, sizeof(name), "cw%d", round);
		struct overlay *ov = open_ovl(name, golden, 4096);
		struct fl_arg fl = { ov, 0 };
		pthread_t ft;
		memset(writers, 0, sizeof(writers));
		pthread_barrier_init(&bar, NULL, CW_THREADS);
		pthread_create(&ft, NULL, flusher, &fl);
		for (int t = 0; t < CW_THREADS; t++) {
			args[t] = (struct cw_arg){ ov, t, writers, &bar };
			pthread_create(&th[t], NULL, cw_thread, &args[t]);
		}
		for (int t = 0; t < CW_THREADS; t++)
			pthread_join(th[t], NULL);
		__atomic_store_n(&fl.stop, 1, __ATOMIC_SEQ_CST);
		pthread_join(ft, NULL);
		pthread_barrier_destroy(&bar);
		struct backend *be = overlay_backend(ov);
		for (int s = 0; s < CW_SECTORS; s++) {
			assert_int_equal(be->ops->read(be, buf, (uint64_t)s * 512, 512), 0);
			bool ok = false;
			if (!writers[s]) {
				pat_fill(exp, 0, (uint64_t)s * 512, 512);
				ok = memcmp(buf, exp, 512) == 0;
			}
			for (int t = 0; t < CW_THREADS && !ok; t++) {
				if (!(writers[s] >> t & 1))
					continue;
				pat_fill(exp, 10 + (uint64_t)t, (uint64_t)s * 512, 512);
				ok = memcmp(buf, exp, 512) == 0;
			}
			if (!ok)
				print_error("round %d sector %d: not any writer's data\n", round, s);
			assert_true(ok);
		}
		/* and the same after a reopen */
		assert_int_equal(be->ops->read(be, buf, 0, 512), 0);
		memcpy(exp, buf, 512);
		assert_int_equal(overlay_close(ov), 0);
		ov = open_ovl(name, golden, 4096);
		be = overlay_backend(ov);
		assert_int_equal(be->ops->read(be, buf, 0, 512), 0);
		assert_memory_equal(buf, exp, 512);
		assert_int_equal(overlay_close(ov), 0);
	}
	backend_close(golden);
}

/* Copy of every file in dir (names given), to prove nothing changed. */
static uint32_t dir_crc(const char *dir)
{
	const char *names[] = { "info", "map", "log", "data" };
	uint32_t c = 0;
	for (int i = 0; i < 4; i++) {
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		c = c * 31 + file_crc(p);
	}
	return c;
}

/* Flip one byte of a file in place. */
static void flip(const char *dir, const char *name, off_t off)
{
	char p[600];
	uint8_t c;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void test_corrupt_files(void **state)
{
	struct backend *golden = make_golden("g7", 1u << 20, false);
	uint8_t *model = malloc(1u << 20);
	char p[512];
	struct overlay *ov = open_ovl("cor", golden, 4096);
	pat_fill(model, 0, 0, 1u << 20);
	do_write(ov, model, 1, 0, 100 << 10);
	assert_int_equal(overlay_close(ov), 0);         /* writes a checkpoint */
	path_in(p, sizeof(p), "cor");
	struct overlay_opts o = { .base_id = "gold-1" };
	struct { const char *file; off_t off; } cases[] = {
		{ "info", 0 }, { "info", 13 }, { "info", 40 }, { "info", 508 },
		{ "map", 3 }, { "map", 20 }, { "map", 64 + 9 }, { "map", 64 + 8 + 100 },
		{ "log", 1 }, { "log", 17 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		flip(p, cases[i].file, cases[i].off);
		uint32_t before = dir_crc(p);
		ov = NULL;
		assert_int_equal(overlay_open(p, golden, &o, &ov), -EBADMSG);
		assert_null(ov);
		assert_int_equal(dir_crc(p), before);   /* nothing changed */
		flip(p, cases[i].file, cases[i].off);   /* repair */
	}
	/* Missing metadata is corruption too, not a fresh overlay. */
	char a[600], b[600];
	snprintf(a, sizeof(a), "%s/info", p);
	snprintf(b, sizeof(b), "%s/info.moved", p);
	assert_int_equal(rename(a, b), 0);
	assert_int_equal(overlay_open(p, golden, &o, &ov), -EBADMSG);
	assert_int_equal(rename(b, a), 0);
	ov = open_ovl("cor", golden, 4096);
	check_all(ov, model, 1u << 20);
	assert_int_equal(overlay_close(ov), 0);
	backend_close(golden);
	free(model);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_discard(void **state)
{
	const uint64_t size = 288u << 20;
	struct backend *golden = make_golden("g8", size, true);
	char p[512], trash[512];
	uint64_t amounts[2] = { 4096, 256u << 20 };
	double t[2];
	uint8_t *buf = malloc(1u << 20);

	path_in(trash, sizeof(trash), "trash");
	for (int k = 0; k < 2; k++) {
		struct overlay *ov = open_ovl("disc", golden, 0);
		struct backend *be = overlay_backend(ov);
		memset(buf, 0x5a, 1u << 20);
		for (uint64_t o = 0; o < amounts[k]; o += 1u << 20) {
			size_t n = amounts[k] - o < (1u << 20) ? amounts[k] - o : (1u << 20);
			assert_int_equal(be->ops->write(be, buf, o, n, false), 0);
		}
		assert_true(overlay_used_bytes(ov) >= amounts[k]);
		assert_int_equal(overlay_close(ov), 0);
		path_in(p, sizeof(p), "disc");
		double t0 = now_s();
		assert_int_equal(statedir_trash(g_root, p, "overlay-disc"), 0);
		t[k] = now_s() - t0;
		assert_int_equal(access(p, F_OK), -1);
		ov = open_ovl("disc", golden, 0);             /* fresh: golden again */
		be = overlay_backend(ov);
		assert_int_equal(be->ops->read(be, buf, 0, 4096), 0);
		for (int i = 0; i < 4096; i++)
			assert_int_equal(buf[i], 0);
		assert_int_equal(overlay_used_bytes(ov), 0);
		assert_int_equal(overlay_close(ov), 0);
		if (k == 0) {
			path_in(p, sizeof(p), "disc");
			assert_int_equal(statedir_trash(g_root, p, "overlay-disc"), 0);
		}
	}
	printf("statedir_trash of an overlay: %.1f us with 4 KiB written, %.1f us with 256 MiB written\n",
	       t[0] * 1e6, t[1] * 1e6);
	double t0 = now_s();
	assert_int_equal(overlay_trash_purge(trash), 0);
	printf("overlay_trash_purge of both: %.1f ms\n", (now_s() - t0) * 1e3);
	assert_int_equal(rmdir(trash), 0);                /* purge left it empty */
	assert_int_equal(statedir_trash(g_root, p, "overlay-disc"), 0);        /* the fresh one */
	assert_int_equal(statedir_trash(g_root, p, "overlay-disc"), -ENOENT);   /* absent: said so */
	backend_close(golden);
	free(buf);
}

static int setup(void **state)
{
	snprintf(g_root, sizeof(g_root), "%s/ovltest.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(g_root))
		return -1;
	log_set_level(LOG_WARN);
	return 0;
}

static int teardown(void **state)
{
	/* The purge helper deletes a directory's content; then rmdir it. */
	overlay_trash_purge(g_root);
	rmdir(g_root);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_and_writes),
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_two_overlays),
		cmocka_unit_test(test_quota),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_corrupt_files),
		cmocka_unit_test(test_discard),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
