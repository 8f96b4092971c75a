/*
 * test_resident.c - the backend op "resident" (storage/backend.h): how
 * much of a range a read would find in memory, for the raw backend
 * (mincore over the file: util/pagecache.h), a version chain (root, layer
 * data file, zeros) and the shared read cache (chunks held, not those
 * being read).
 *
 * The page cache is the kernel's: a page read is resident, a page dropped
 * with posix_fadvise(DONTNEED) is not, but the kernel may read ahead or
 * reclaim at any time, so the checks on the page cache ask for the counts
 * to move the right way with room for that, and are skipped on tmpfs
 * (whose pages cannot be dropped).  Other programs on the machine may
 * drop the whole page cache at any moment (benchmarks of cold boots do),
 * so a check that pages just read are resident reads them again and
 * asks again a few times before it fails.  The cache's counts are exact.
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
#include <ftw.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/backend.h"
#include "storage/cache.h"
#include "storage/chain.h"
#include "storage/overlay.h"
#include "util/log.h"
#include "util/pagecache.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)

static char g_root[256];        /* per-run temporary directory */
static bool g_tmpfs;            /* pages cannot be dropped there */

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", g_root, name);
}

/* Byte o of the test pattern. */
static uint8_t pat(uint64_t o)
{
	return (uint8_t)(o * 131u + (o >> 12) * 7u + 1u);
}

/* A file of size bytes of the pattern, synced, its pages dropped. */
static void make_file(const char *path, uint64_t size)
{
	uint8_t *buf = malloc(MIB);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (uint64_t o = 0; o < size; o += MIB) {
		size_t n = size - o < MIB ? (size_t)(size - o) : (size_t)MIB;
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(o + i);
		assert_int_equal(pwrite(fd, buf, n, (off_t)o), (ssize_t)n);
	}
	assert_int_equal(fdatasync(fd), 0);
	close(fd);
	free(buf);
}

/* Drop the clean pages of path from the page cache (as far as the kernel
 * agrees to). */
static void drop_pages(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fdatasync(fd), 0);
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
}

static uint64_t resident(struct backend *be, uint64_t off, uint64_t len)
{
	uint64_t bytes = ~0ull;
	assert_non_null(be->ops->resident);
	assert_int_equal(be->ops->resident(be, off, len, &bytes), 0);
	assert_true(bytes <= len);
	return bytes;
}

static void read_range(struct backend *be, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	assert_int_equal(be->ops->read(be, buf, off, len), 0);
	free(buf);
}

/* A range to read. */
struct rng {
	uint64_t off;
	size_t len;
};

/*
 * Read r[0..n) through be, then how much of [off, off+len) is resident;
 * while that is under min, again (5 times at most: see the file's
 * header).  Returns the last count.
 */
static uint64_t read_resident(struct backend *be, const struct rng *r, unsigned n, uint64_t off,
			      uint64_t len, uint64_t min)
{
	uint64_t got = 0;

	for (int tries = 0; tries < 5; tries++) {
		for (unsigned i = 0; i < n; i++)
			read_range(be, r[i].off, r[i].len);
		got = resident(be, off, len);
		if (got >= min)
			break;
	}
	return got;
}

/* A raw file: cold, read (whole pages and partial ones), dropped again;
 * the range checks. */
static void test_raw(void **state)
{
	char p[512];
	struct backend *be;
	const uint64_t size = 8 * MIB + 1000;   /* the last page is partial */
	uint64_t bytes = 7;

	path_in(p, sizeof(p), "raw.img");
	make_file(p, size);
	drop_pages(p);
	assert_int_equal(backend_raw_open(p, false, &be), 0);

	uint64_t cold = resident(be, 0, size);
	if (!g_tmpfs)
		assert_true(cold <= size / 4);

	const struct rng first = { 0, MIB };
	assert_true(read_resident(be, &first, 1, 0, MIB, MIB * 3 / 4) >= MIB * 3 / 4);
	/* Within one page: only the part asked about counts. */
	const struct rng inpage = { 100, 1000 };
	assert_int_equal(read_resident(be, &inpage, 1, 100, 1000, 1000), 1000);
	/* The last page, past the end of the file. */
	const struct rng tail = { size - 1000, 1000 };
	assert_int_equal(read_resident(be, &tail, 1, size - 1000, 1000, 1000), 1000);
	const struct rng both[2] = { first, tail };
	uint64_t warm = read_resident(be, both, 2, 0, size, MIB * 3 / 4 + 1000);
	assert_true(warm >= MIB * 3 / 4 + 1000);

	if (!g_tmpfs) {
		drop_pages(p);
		uint64_t dropped = resident(be, 0, size);
		assert_true(dropped < warm);
		assert_true(dropped <= size / 4);
	}

	/* Ranges: empty is 0, past the end is refused. */
	assert_int_equal(resident(be, size, 0), 0);
	assert_int_equal(be->ops->resident(be, size, 1, &bytes), -EINVAL);
	assert_int_equal(bytes, 0);
	assert_int_equal(be->ops->resident(be, 0, size + 1, &bytes), -EINVAL);
	backend_close(be);
	unlink(p);
}

/* A 33 GiB sparse file asked about whole: done in slices, and only the
 * 64 KiB written far into it counts. */
static void test_raw_huge(void **state)
{
	char p[512];
	struct backend *be;
	const uint64_t size = 33 * GIB, at = 20 * GIB + 5 * MIB + 4096;
	uint8_t *buf = malloc(64 * KIB);

	path_in(p, sizeof(p), "huge.img");
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	memset(buf, 0xa5, 64 * KIB);
	assert_int_equal(pwrite(fd, buf, 64 * KIB, (off_t)at), (ssize_t)(64 * KIB));
	assert_int_equal(fdatasync(fd), 0);
	close(fd);
	assert_int_equal(backend_raw_open(p, false, &be), 0);
	const struct rng r = { at, 64 * KIB };
	uint64_t all = read_resident(be, &r, 1, 0, size, 48 * KIB);
	assert_true(all >= 48 * KIB);
	/* Nothing else was read or written: allow the kernel's readahead. */
	assert_true(all <= 64 * KIB + 4 * MIB);
	/* The same bytes asked about from a slice boundary that cuts them. */
	uint64_t part = read_resident(be, &r, 1, at + 32 * KIB, size - at - 32 * KIB, 24 * KIB);
	assert_true(part >= 24 * KIB && part <= 32 * KIB + 4 * MIB);
	assert_int_equal(resident(be, 0, 20 * GIB), 0);
	backend_close(be);
	unlink(p);
	free(buf);
}

/* pagecache_resident on a file descriptor directly: the slice arithmetic
 * at every page offset of a slice's end. */
static void test_pagecache_slices(void **state)
{
	char p[512];
	uint64_t size = PAGECACHE_SLICE + 3 * 4096 + 17, bytes = 0;

	path_in(p, sizeof(p), "slices.img");
	make_file(p, size);
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(size);
	/* Read all of it, then each count is exact: every page of the range
	 * whole or its part inside (again after a drop from outside). */
	for (uint64_t off = PAGECACHE_SLICE - 2 * 4096 - 5; off < PAGECACHE_SLICE + 2 * 4096; off += 4093) {
		uint64_t len = size - off, b = 0;
		for (int tries = 0; tries < 5; tries++) {
			assert_int_equal(pread(fd, buf, size, 0), (ssize_t)size);
			assert_int_equal(pagecache_resident(fd, off, len, &b), 0);
			assert_true(b <= len);
			if (b == len)
				break;
		}
		assert_int_equal(b, len);
	}
	assert_int_equal(pagecache_resident(fd, 0, size, &bytes), 0);
	assert_true(bytes <= size);
	free(buf);
	assert_int_equal(pagecache_resident(fd, 5, 0, &bytes), 0);
	assert_int_equal(bytes, 0);
	close(fd);
	/* Not a mappable file: the error, and nothing counted. */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	bytes = 9;
	assert_true(pagecache_resident(pfd[0], 0, 4096, &bytes) < 0);
	assert_int_equal(bytes, 0);
	close(pfd[0]);
	close(pfd[1]);
	unlink(p);
}

/* Remove path whatever it is (nftw callback). */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/*
 * A chain of a 4 MiB root and one layer that wrote [1M, 1.5M) and
 * unmapped [2M, 2.5M): zeros are always held, the root's and the
 * layer's blocks count as their files' pages come and go.
 */
static void test_chain(void **state)
{
	char rootp[512], dir[512], data[520];
	struct backend *root, *v0, *v1;
	struct overlay *ov;
	struct ovl_layer *layer;
	const uint64_t size = 4 * MIB;
	struct overlay_opts o = { .base_id = "base", .block_size = 4096 };

	path_in(rootp, sizeof(rootp), "chain.root");
	path_in(dir, sizeof(dir), "chain.layer");
	snprintf(data, sizeof(data), "%s/data", dir);
	make_file(rootp, size);
	assert_int_equal(backend_raw_open(rootp, false, &root), 0);
	assert_int_equal(chain_open(root, NULL, 0, "v0", &v0), 0);
	assert_int_equal(overlay_open(dir, v0, &o, &ov), 0);
	struct backend *d = overlay_backend(ov);
	uint8_t *buf = malloc(512 * KIB);
	memset(buf, 0x5a, 512 * KIB);
	assert_int_equal(d->ops->write(d, buf, MIB, 512 * KIB, false), 0);
	assert_int_equal(d->ops->unmap(d, 2 * MIB, 512 * KIB), 0);
	assert_int_equal(overlay_close(ov), 0);
	free(buf);
	assert_int_equal(ovl_layer_open(dir, size, "base", &layer), 0);
	assert_int_equal(chain_open(root, &layer, 1, "v1", &v1), 0);

	drop_pages(rootp);
	drop_pages(data);
	/* Zeros need no I/O, cold or not. */
	assert_int_equal(resident(v1, 2 * MIB, 512 * KIB), 512 * KIB);
	assert_int_equal(resident(v1, 2 * MIB + 4096 + 3, 1000), 1000);
	uint64_t all_cold = resident(v1, 0, size);
	assert_true(all_cold >= 512 * KIB);
	if (!g_tmpfs) {
		assert_true(resident(v1, 0, MIB) <= MIB / 4);
		assert_true(resident(v1, MIB, 512 * KIB) <= 128 * KIB);
		assert_true(all_cold <= 512 * KIB + MIB);
	}

	/* Root blocks: read through the chain, then in memory. */
	const struct rng rootr = { 0, 256 * KIB }, layerr = { MIB, 512 * KIB };
	const struct rng both[2] = { rootr, layerr };
	assert_true(read_resident(v1, &rootr, 1, 0, 256 * KIB, 192 * KIB) >= 192 * KIB);
	if (!g_tmpfs)   /* the root's readahead does not reach the layer's file */
		assert_true(resident(v1, MIB, 512 * KIB) <= 128 * KIB);
	/* Layer blocks: the layer's data file. */
	assert_true(read_resident(v1, &layerr, 1, MIB, 512 * KIB, 384 * KIB) >= 384 * KIB);
	/* A range across all three sources adds up. */
	uint64_t across = read_resident(v1, &layerr, 1, MIB - 64 * KIB, 64 * KIB + 3 * 512 * KIB,
					384 * KIB + 512 * KIB);
	assert_true(across >= 384 * KIB + 512 * KIB);
	uint64_t all_warm = read_resident(v1, both, 2, 0, size, 512 * KIB + 192 * KIB + 384 * KIB);
	assert_true(all_warm >= 512 * KIB + 192 * KIB + 384 * KIB);
	/* v0 sees the root's pages only: its [1M, 1.5M) is the cold root. */
	if (!g_tmpfs) {
		drop_pages(rootp);
		assert_true(resident(v0, MIB, 512 * KIB) <= 128 * KIB);
		assert_true(read_resident(v1, &layerr, 1, MIB, 512 * KIB, 384 * KIB) >= 384 * KIB);
	}

	uint64_t bytes = 3;
	assert_int_equal(v1->ops->resident(v1, size - 10, 11, &bytes), -EINVAL);
	backend_close(v1);
	backend_close(v0);
	ovl_layer_close(layer);
	backend_close(root);
	unlink(rootp);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* A backend with no resident op, for the chain's root and the cache's
 * inner disk: reads return the pattern; a read may be held at a gate. */
struct fake {
	struct backend be;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool gate;              /* reads wait while set */
	unsigned in_read;       /* reads waiting at the gate */
};

static int fake_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	struct fake *f = (struct fake *)be;
	pthread_mutex_lock(&f->mu);
	f->in_read++;
	pthread_cond_broadcast(&f->cv);
	while (f->gate)
		pthread_cond_wait(&f->cv, &f->mu);
	f->in_read--;
	pthread_mutex_unlock(&f->mu);
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = pat(off + i);
	return 0;
}

static void fake_close(struct backend *be)
{
	struct fake *f = (struct fake *)be;
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}

static const struct backend_ops fake_ops = {
	.read = fake_read,
	.close = fake_close,
};

static struct fake *fake_new(uint64_t size)
{
	struct fake *f = calloc(1, sizeof(*f));
	f->be.ops = &fake_ops;
	f->be.size = size;
	f->be.read_only = true;
	snprintf(f->be.name, sizeof(f->be.name), "fake");
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	return f;
}

/* A chain whose root cannot tell: -EOPNOTSUPP, nothing counted. */
static void test_chain_root_cannot_tell(void **state)
{
	struct fake *f = fake_new(MIB);
	struct backend *c;
	uint64_t bytes = 5;

	assert_int_equal(chain_open(&f->be, NULL, 0, "v", &c), 0);
	assert_non_null(c->ops->resident);
	assert_int_equal(c->ops->resident(c, 0, 4096, &bytes), -EOPNOTSUPP);
	assert_int_equal(bytes, 0);
	backend_close(c);
	backend_close(&f->be);
}

struct reader {
	struct backend *be;
	uint64_t off;
	size_t len;
};

static void *reader_thread(void *p)
{
	struct reader *r = p;
	read_range(r->be, r->off, r->len);
	return NULL;
}

/* The read cache: chunks held count (a partial chunk for its part, the
 * short last chunk for what it has), a chunk being read does not,
 * evicted chunks no longer do. */
static void test_cache(void **state)
{
	const uint32_t chunk = 64 * KIB;
	const uint64_t size = 1024 * chunk + 5000;      /* a short last chunk */
	struct rcache *rc;
	struct fake *f = fake_new(size);
	struct backend *be;

	/* 8 chunks a shard: the few chunks read first all stay. */
	assert_int_equal(rcache_new(RCACHE_MIN_BYTES * 8, chunk, &rc), 0);
	assert_int_equal(backend_cache_wrap(rc, &f->be, &be), 0);
	assert_int_equal(resident(be, 0, size), 0);

	read_range(be, 0, 3 * chunk);
	assert_int_equal(resident(be, 0, size), 3 * chunk);
	assert_int_equal(resident(be, chunk + 100, 1000), 1000);
	assert_int_equal(resident(be, 2 * chunk + 10, 2 * chunk), chunk - 10);
	read_range(be, size - 10, 10);
	assert_int_equal(resident(be, 0, size), 3 * chunk + 5000);
	assert_int_equal(resident(be, size - 4999, 4999), 4999);

	/* A chunk being read is not held yet. */
	struct reader r = { be, 10 * chunk, 4096 };
	pthread_t t;
	pthread_mutex_lock(&f->mu);
	f->gate = true;
	pthread_mutex_unlock(&f->mu);
	assert_int_equal(pthread_create(&t, NULL, reader_thread, &r), 0);
	pthread_mutex_lock(&f->mu);
	while (f->in_read == 0)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	assert_int_equal(resident(be, 10 * chunk, chunk), 0);
	pthread_mutex_lock(&f->mu);
	f->gate = false;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(t, NULL);
	assert_int_equal(resident(be, 10 * chunk, chunk), chunk);

	/* Read far more than the budget: what is held stays within it and
	 * matches the cache's own count. */
	read_range(be, 0, (size_t)size);
	struct rcache_stats st;
	rcache_get_stats(rc, &st);
	uint64_t held = resident(be, 0, size);
	assert_true(held <= st.capacity);
	assert_int_equal(held, st.bytes);

	uint64_t bytes = 1;
	assert_int_equal(be->ops->resident(be, 1, size, &bytes), -EINVAL);
	assert_int_equal(bytes, 0);
	backend_close(be);              /* closes the fake too */
	rcache_free(rc);
}

static int setup(void **state)
{
	struct statfs sf;

	snprintf(g_root, sizeof(g_root), "%s/residenttest.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(g_root))
		return -1;
	g_tmpfs = statfs(g_root, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
	if (g_tmpfs)
		print_message("%s is tmpfs: page cache drops are not checked\n", g_root);
	log_set_level(LOG_WARN);
	return 0;
}

static int teardown(void **state)
{
	nftw(g_root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_raw_huge),
		cmocka_unit_test(test_pagecache_slices),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_chain_root_cannot_tell),
		cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
