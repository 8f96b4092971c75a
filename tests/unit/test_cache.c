/*
 * test_cache.c - the shared chunk cache of immutable disks
 * (src/storage/cache.c) over a fake inner backend that counts its reads
 * per chunk, can be slow, can be held at a gate and can fail.
 *
 * What must hold: many threads reading the same data cause exactly one
 * inner read per distinct chunk; every byte read is the inner disk's
 * (reads across chunks, windows and the short last chunk); the bytes
 * held stay within the budget; an inner error reaches the reader and
 * every waiter and is not kept; wrappers sharing a cache do not see
 * each other's chunks, and closing one drops its chunks.
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
#include <pthread.h>
#include <unistd.h>

#include "storage/backend.h"
#include "storage/cache.h"

#define MAXCHUNKS 4096

struct fake {
	struct backend be;
	uint32_t chunk;                 /* to count reads per chunk */
	uint64_t seed;
	unsigned delay_us;              /* each read sleeps this long */
	unsigned reads;                 /* calls to read */
	uint64_t bytes;                 /* bytes those calls asked for */
	unsigned per_chunk[MAXCHUNKS];  /* inner reads that covered each chunk */
	int fail_rc;                    /* reads covering fail_chunk return it */
	uint64_t fail_chunk;
	bool gate;                      /* reads wait while set */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool *closed;
};

/* Byte o of the disk with this seed. */
static uint8_t pat(uint64_t seed, uint64_t o)
{
	uint64_t x = (o / 8 + 1) * 0x9E3779B97F4A7C15ull ^ seed * 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 32;
	return (uint8_t)(x >> (8 * (o % 8)));
}

static int fake_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	struct fake *f = (struct fake *)be;
	uint64_t first = off / f->chunk, last = (off + len - 1) / f->chunk;
	int rc = 0;

	assert_true(len > 0 && off + len <= be->size);
	pthread_mutex_lock(&f->lock);
	f->reads++;
	f->bytes += len;
	for (uint64_t c = first; c <= last && c < MAXCHUNKS; c++)
		f->per_chunk[c]++;
	pthread_cond_broadcast(&f->cond);
	while (f->gate)
		pthread_cond_wait(&f->cond, &f->lock);
	if (f->fail_rc && f->fail_chunk >= first && f->fail_chunk <= last)
		rc = f->fail_rc;
	pthread_mutex_unlock(&f->lock);
	if (f->delay_us)
		usleep(f->delay_us);
	if (rc)
		return rc;
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = pat(f->seed, off + i);
	return 0;
}

static int fake_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	fail_msg("the cache wrote to its inner backend");
	return -EIO;
}

static int fake_flush(struct backend *be)
{
	return 0;
}

static int fake_block_status(struct backend *be, uint64_t off, uint64_t len, uint64_t *run,
			     bool *mapped)
{
	/* The first MiB mapped, the rest a hole. */
	*mapped = off < (1u << 20);
	*run = *mapped ? (1u << 20) - off : be->size - off;
	if (*run > len)
		*run = len;
	return 0;
}

static void fake_close(struct backend *be)
{
	struct fake *f = (struct fake *)be;

	if (f->closed)
		*f->closed = true;
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
}

static const struct backend_ops fake_ops = {
	.read = fake_read, .write = fake_write, .flush = fake_flush,
	.close = fake_close, .block_status = fake_block_status,
};

static struct fake *fake_new(uint64_t size, uint32_t chunk, uint64_t seed)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->be.ops = &fake_ops;
	f->be.size = size;
	f->be.read_only = true;
	snprintf(f->be.name, sizeof(f->be.name), "fake%llu", (unsigned long long)seed);
	f->chunk = chunk;
	f->seed = seed;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	return f;
}

/* Read [off, off+len) through be and check every byte against seed. */
static void read_check(struct backend *be, uint64_t seed, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(be->ops->read(be, buf, off, len), 0);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pat(seed, off + i))
			fail_msg("byte %llu: %02x, expected %02x", (unsigned long long)(off + i), buf[i],
				 pat(seed, off + i));
	free(buf);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- many threads, the same data ------------------------------------- */

#define STORM_THREADS 64
#define STORM_SIZE (8u << 20)
#define STORM_CHUNK (64u << 10)

struct storm {
	struct backend *be;
	pthread_barrier_t *start;
	unsigned id;
	int bad;
};

/* One PC booting: the whole disk in 128 KiB reads, from a start of its
 * own (so threads meet on chunks in different orders), some unaligned. */
static void *storm_thread(void *arg)
{
	struct storm *st = arg;
	const size_t io = 128u << 10;
	uint8_t *buf = malloc(io + 4096);
	unsigned n = STORM_SIZE / io;

	pthread_barrier_wait(st->start);
	for (unsigned k = 0; k < n && buf; k++) {
		uint64_t off = (uint64_t)((k + st->id * 7) % n) * io;
		size_t len = io;
		if (st->id % 3 == 1 && off + io + 4096 <= STORM_SIZE) {
			off += 512;             /* across chunk edges */
			len += 1024;
		}
		if (st->be->ops->read(st->be, buf, off, len)) {
			st->bad++;
			continue;
		}
		for (size_t i = 0; i < len; i++)
			if (buf[i] != pat(1, off + i)) {
				st->bad++;
				break;
			}
	}
	free(buf);
	return NULL;
}

/* 64 threads read the same 8 MiB at once through a slow inner disk:
 * every chunk is read from it exactly once. */
static void test_storm_single_flight(void **state)
{
	struct fake *f = fake_new(STORM_SIZE, STORM_CHUNK, 1);
	struct rcache *rc;
	struct backend *be;
	struct rcache_stats s;
	pthread_t th[STORM_THREADS];
	struct storm st[STORM_THREADS];
	pthread_barrier_t start;

	f->delay_us = 2000;             /* an OSD round trip */
	assert_int_equal(rcache_new(64u << 20, STORM_CHUNK, &rc), 0);
	assert_int_equal(backend_cache_wrap(rc, &f->be, &be), 0);
	pthread_barrier_init(&start, NULL, STORM_THREADS);
	for (unsigned i = 0; i < STORM_THREADS; i++) {
		st[i] = (struct storm){ .be = be, .start = &start, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, storm_thread, &st[i]), 0);
	}
	for (unsigned i = 0; i < STORM_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(st[i].bad, 0);
	}
	pthread_barrier_destroy(&start);
	for (unsigned c = 0; c < STORM_SIZE / STORM_CHUNK; c++)
		if (f->per_chunk[c] != 1)
			fail_msg("chunk %u read %u times from the inner disk", c, f->per_chunk[c]);
	assert_int_equal(f->bytes, STORM_SIZE);
	rcache_get_stats(rc, &s);
	assert_int_equal(s.misses, STORM_SIZE / STORM_CHUNK);
	assert_int_equal(s.inner_bytes, STORM_SIZE);
	assert_int_equal(s.inner_reads, f->reads);
	assert_int_equal(s.bytes, STORM_SIZE);
	assert_int_equal(s.chunks, STORM_SIZE / STORM_CHUNK);
	assert_int_equal(s.errors, 0);
	assert_int_equal(s.evictions, 0);
	assert_true(s.hits + s.waits > 0);
	printf("storm: %u threads x %u MiB: %u inner reads, %llu inner bytes, "
	       "%llu hits, %llu waits\n", STORM_THREADS, STORM_SIZE >> 20, f->reads,
	       (unsigned long long)s.inner_bytes, (unsigned long long)s.hits,
	       (unsigned long long)s.waits);
	backend_close(be);
	rcache_free(rc);
}

/* ---- every byte right: across chunks, windows and the disk's end ------ */

static void test_ranges(void **state)
{
	const uint32_t chunk = 4096;
	const uint64_t size = 300 * 4096 + 1234;     /* a short last chunk */
	struct fake *f = fake_new(size, chunk, 2);
	struct rcache *rc;
	struct backend *be;
	uint64_t seed = 42;

	assert_int_equal(rcache_new(16u << 20, chunk, &rc), 0);
	assert_int_equal(backend_cache_wrap(rc, &f->be, &be), 0);
	assert_int_equal(be->size, size);
	assert_true(be->read_only);
	assert_string_equal(be->name, "fake2");
	/* One read of the whole disk: more chunks than one window. */
	read_check(be, 2, 0, size);
	assert_int_equal(f->bytes, size);
	/* The last byte, the short chunk alone, a read ending at the end. */
	read_check(be, 2, size - 1, 1);
	read_check(be, 2, 300 * 4096, 1234);
	read_check(be, 2, size - 5000, 5000);
	/* Random ranges: all hits now. */
	for (int i = 0; i < 2000; i++) {
		uint64_t off = rnd(&seed) % size;
		size_t len = 1 + (size_t)(rnd(&seed) % (i % 10 == 0 ? 200000 : 9000));
		if (len > size - off)
			len = (size_t)(size - off);
		read_check(be, 2, off, len);
	}
	assert_int_equal(f->bytes, size);
	for (unsigned c = 0; c < 301; c++)
		assert_int_equal(f->per_chunk[c], 1);
	/* Beyond the end is refused, not read. */
	{
		uint8_t b[8];
		assert_int_equal(be->ops->read(be, b, size - 4, 8), -EINVAL);
	}
	backend_close(be);
	rcache_free(rc);
}

/* A cold read of many chunks goes to the inner disk as one read per
 * run of missing chunks, not one per chunk. */
static void test_runs(void **state)
{
	const uint32_t chunk = 4096;
	struct fake *f = fake_new(64 * 4096, chunk, 3);
	struct rcache *rc;
	struct backend *be;

	assert_int_equal(rcache_new(4u << 20, chunk, &rc), 0);
	assert_int_equal(backend_cache_wrap(rc, &f->be, &be), 0);
	read_check(be, 3, 5 * 4096, 4096);           /* chunk 5 */
	read_check(be, 3, 10 * 4096, 4096);          /* chunk 10 */
	assert_int_equal(f->reads, 2);
	/* chunks 0..15: runs 0-4, 6-9, 11-15 */
	read_check(be, 3, 100, 16 * 4096 - 200);
	assert_int_equal(f->reads, 5);
	assert_int_equal(f->bytes, 16 * 4096);
	backend_close(be);
	rcache_free(rc);
}

/* ---- bounded memory ---------------------------------------------------- */

struct churn {
	struct backend *be;
	uint64_t size, seed;
	int bad;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	uint8_t *buf = malloc(65536);

	for (int i = 0; i < 3000 && buf; i++) {
		uint64_t off = rnd(&c->seed) % c->size;
		size_t len = 1 + (size_t)(rnd(&c->seed) % 65536);
		if (len > c->size - off)
			len = (size_t)(c->size - off);
		if (c->be->ops->read(c->be, buf, off, len)) {
			c->bad++;
			continue;
		}
		for (size_t k = 0; k < len; k++)
			if (buf[k] != pat(4, off + k)) {
				c->bad++;
				break;
			}
	}
	free(buf);
	return NULL;
}

/* A disk 16 times the budget, read twice in a row and then at random by
 * 8 threads: the bytes held never pass the budget once reads are done,
 * chunks are evicted and read again, and every byte is right. */
static void test_eviction_bounded(void **state)
{
	const uint32_t chunk = 4096;
	const uint64_t budget = 64 * 4096, size = 16 * budget;
	struct fake *f = fake_new(size, chunk, 4);
	struct rcache *rc;
	struct backend *be;
	struct rcache_stats s;
	pthread_t th[8];
	struct churn ch[8];

	assert_int_equal(rcache_new(budget + 1000, chunk, &rc), 0);   /* rounded down */
	assert_int_equal(backend_cache_wrap(rc, &f->be, &be), 0);
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t off = 0; off < size; off += 3 * 4096) {
			size_t len = off + 3 * 4096 <= size ? 3 * 4096 : (size_t)(size - off);
			read_check(be, 4, off, len);
			rcache_get_stats(rc, &s);
			assert_true(s.bytes <= budget);
		}
	}
	rcache_get_stats(rc, &s);
	assert_int_equal(s.capacity, budget);
	assert_int_equal(s.chunk, chunk);
	assert_int_equal(s.inner_bytes, 2 * size);   /* nothing left of pass 1 at its start */
	assert_true(s.evictions >= 2 * size / chunk - budget / chunk);
	for (unsigned i = 0; i < 8; i++) {
		ch[i] = (struct churn){ .be = be, .size = size, .seed = 77 + i };
		assert_int_equal(pthread_create(&th[i], NULL, churn_thread, &ch[i]), 0);
	}
	for (unsigned i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(ch[i].bad, 0);
	}
	rcache_get_stats(rc, &s);
	assert_true(s.bytes <= budget);
	assert_true(s.chunks <= budget / chunk);
	assert_true(s.chunks > 0);
	backend_close(be);
	rcache_free(rc);
}

/* ---- errors ------------------------------------------------------------ */

#define WAITERS 16

struct waiter {
	struct backend *be;
	uint64_t off;
	size_t len;
	int rc;
};

static void *waiter_thread(void *arg)
{
	struct waiter *w = arg;
	uint8_t buf[8192];

	w->rc = w->be->ops->read(w->be, buf, w->off, w->len);
	return NULL;
}

/* The inner read of a chunk is held until 15 more readers wait for it,
 * then fails: all 16 get its error, the chunk is not kept, and the next
 * read goes to the inner disk again and succeeds. */
static void test_error_reaches_every_waiter(void **state)
{
	const uint32_t chunk = 4096;
	struct fake *f = fake_new(64 * 4096, chunk, 5);
	struct rcache *rc;
	struct backend *be;
	struct rcache_stats s;
	pthread_t th[WAITERS];
	struct waiter w[WAITERS];

	assert_int_equal(rcache_new(4u << 20, chunk, &rc), 0);
	assert_int_equal(backend_cache_wrap(rc, &f->be, &be), 0);
	f->gate = true;
	f->fail_rc = -EIO;
	f->fail_chunk = 7;
	for (unsigned i = 0; i < WAITERS; i++) {
		/* all in chunk 7, some only part of it */
		w[i] = (struct waiter){ .be = be, .off = 7 * 4096 + (i % 4) * 512, .len = 512 + i };
		assert_int_equal(pthread_create(&th[i], NULL, waiter_thread, &w[i]), 0);
	}
	for (int tries = 0;; tries++) {
		rcache_get_stats(rc, &s);
		if (s.waits == WAITERS - 1 && s.misses == 1)
			break;
		assert_true(tries < 10000);     /* 10 s */
		usleep(1000);
	}
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->reads, 1);
	f->gate = false;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	for (unsigned i = 0; i < WAITERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, -EIO);
	}
	rcache_get_stats(rc, &s);
	assert_int_equal(s.errors, 1);
	assert_int_equal(s.chunks, 0);
	assert_int_equal(s.bytes, 0);
	/* Still failing: the error comes again from a new inner read. */
	{
		uint8_t b[100];
		assert_int_equal(be->ops->read(be, b, 7 * 4096, 100), -EIO);
		assert_int_equal(f->reads, 2);
	}
	/* Healed: read again from the inner disk, then kept. */
	f->fail_rc = 0;
	read_check(be, 5, 7 * 4096, 4096);
	assert_int_equal(f->reads, 3);
	read_check(be, 5, 7 * 4096, 4096);
	assert_int_equal(f->reads, 3);
	backend_close(be);
	rcache_free(rc);
}

/* An error in one run of a long read: the read fails, no chunk of the
 * failed run nor of the runs after it is kept (they were never read),
 * chunks found before stay; a reread after the fault reads only what is
 * missing. */
static void test_error_in_a_run(void **state)
{
	const uint32_t chunk = 4096;
	struct fake *f = fake_new(64 * 4096, chunk, 6);
	struct rcache *rc;
	struct backend *be;
	struct rcache_stats s;
	uint8_t *buf = malloc(20 * 4096);

	assert_non_null(buf);
	assert_int_equal(rcache_new(4u << 20, chunk, &rc), 0);
	assert_int_equal(backend_cache_wrap(rc, &f->be, &be), 0);
	read_check(be, 6, 4 * 4096, 4096);                  /* chunk 4 kept */
	f->fail_rc = -ENXIO;
	f->fail_chunk = 2;
	/* chunks 0..9: run 0-3 fails; run 5-9 is not read */
	assert_int_equal(be->ops->read(be, buf, 0, 10 * 4096), -ENXIO);
	assert_int_equal(f->reads, 2);
	rcache_get_stats(rc, &s);
	assert_int_equal(s.chunks, 1);
	f->fail_rc = 0;
	read_check(be, 6, 0, 10 * 4096);
	assert_int_equal(f->reads, 4);                      /* runs 0-3 and 5-9 */
	assert_int_equal(f->bytes, 4096 + 4 * 4096 + 4 * 4096 + 5 * 4096);
	free(buf);
	backend_close(be);
	rcache_free(rc);
}

/* ---- wrappers sharing one cache, the other calls, arguments ------------ */

static void test_wrappers_and_close(void **state)
{
	const uint32_t chunk = 4096;
	struct fake *a = fake_new(32 * 4096, chunk, 7), *b = fake_new(32 * 4096, chunk, 8);
	struct rcache *rc;
	struct backend *ba, *bb;
	struct rcache_stats s;
	bool a_closed = false;
	uint64_t run;
	bool mapped;

	a->closed = &a_closed;
	assert_int_equal(rcache_new(4u << 20, chunk, &rc), 0);
	assert_int_equal(backend_cache_wrap(rc, &a->be, &ba), 0);
	assert_int_equal(backend_cache_wrap(rc, &b->be, &bb), 0);
	/* The same offsets, different disks: each reads its own. */
	read_check(ba, 7, 0, 32 * 4096);
	read_check(bb, 8, 0, 32 * 4096);
	read_check(ba, 7, 0, 32 * 4096);
	assert_int_equal(a->bytes, 32 * 4096);
	assert_int_equal(b->bytes, 32 * 4096);
	rcache_get_stats(rc, &s);
	assert_int_equal(s.chunks, 64);
	/* Never written; flush has nothing to do. */
	assert_int_equal(ba->ops->write(ba, "x", 0, 1, false), -EROFS);
	assert_int_equal(ba->ops->unmap(ba, 0, 4096), -EROFS);
	assert_int_equal(ba->ops->flush(ba), 0);
	assert_null(ba->ops->splice_read);
	assert_int_equal(ba->ops->block_status(ba, 4096, 1u << 21, &run, &mapped), 0);
	assert_true(mapped);
	assert_int_equal(run, (1u << 20) - 4096);
	/* Closing one wrapper closes its disk and drops its chunks only. */
	backend_close(ba);
	assert_true(a_closed);
	rcache_get_stats(rc, &s);
	assert_int_equal(s.chunks, 32);
	assert_int_equal(s.bytes, 32 * 4096);
	read_check(bb, 8, 0, 32 * 4096);
	assert_int_equal(b->bytes, 32 * 4096);
	backend_close(bb);
	rcache_get_stats(rc, &s);
	assert_int_equal(s.chunks, 0);
	rcache_free(rc);
}

static void test_arguments(void **state)
{
	struct rcache *rc = (struct rcache *)1;
	struct backend *out = (struct backend *)1;
	struct fake *w = fake_new(1 << 20, 4096, 9);

	assert_int_equal(rcache_new(64u << 20, 3000, &rc), -EINVAL);     /* not a power of two */
	assert_null(rc);
	assert_int_equal(rcache_new(64u << 20, 2048, &rc), -EINVAL);     /* too small */
	assert_int_equal(rcache_new(64u << 20, 8u << 20, &rc), -EINVAL); /* too big */
	assert_int_equal(rcache_new(RCACHE_MIN_BYTES - 1, 0, &rc), -EINVAL);
	assert_int_equal(rcache_new(RCACHE_MIN_BYTES, 0, &rc), 0);
	/* A writable disk may change under the cache: refused, left open. */
	w->be.read_only = false;
	assert_int_equal(backend_cache_wrap(rc, &w->be, &out), -EINVAL);
	assert_null(out);
	w->be.read_only = true;
	assert_int_equal(backend_cache_wrap(rc, &w->be, &out), 0);
	read_check(out, 9, 0, 1 << 20);     /* a 1 MiB disk through a 1 MiB cache */
	backend_close(out);
	rcache_free(rc);
	rcache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storm_single_flight),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_eviction_bounded),
		cmocka_unit_test(test_error_reaches_every_waiter),
		cmocka_unit_test(test_error_in_a_run),
		cmocka_unit_test(test_wrappers_and_close),
		cmocka_unit_test(test_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
