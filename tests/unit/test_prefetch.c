/*
 * test_prefetch.c - the boot set prefetcher (src/storage/prefetch.c)
 * against a fake backend that logs every read (offset, length, order),
 * can hold reads at a gate, slow them down or fail one.
 *
 * What must hold: extents are read whole and in order, jobs one after
 * another in the order queued; queueing a key again replaces its job (a
 * running one after its current read); cancel returns only once the read
 * in flight has ended and nothing reads after it; the status of each key
 * (queued, running, done, cancelled, failed with its error) until forget;
 * a failed read ends its job; busy stamps pause the prefetch and their
 * end lets it finish, but the prefetch thread's own stamps do not count;
 * stats; free with jobs pending.
 *
 * Timing: tests wait for states and for reads held at the gate, never
 * for a sleep to have been long enough, so a loaded machine slows them
 * but does not fail them.  Where the check is about time itself (a pause
 * of PREFETCH_YIELD_NS), the test measures how late it ran and asserts
 * what that still proves.
 *
 * And the LU tap (src/storage/tap.c) in front of a raw file or the fake:
 * data passes through unchanged (splice_read too, and every other op, NULL
 * where the inner backend has none); reads are noted in a boot recorder;
 * the prefetcher is told to yield only by a slow read of a PC that is not
 * being recorded.
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
#include <linux/magic.h>
#include <pthread.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "storage/backend.h"
#include "storage/bootrec.h"
#include "storage/cache.h"
#include "storage/prefetch.h"
#include "storage/tap.h"
#include "util/iostats.h"
#include "util/log.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define MAX_LOG 4096
/* How long a state may take to come (a loaded machine, sanitizers). */
#define WAIT_MS 20000

struct rec {
	uint64_t off;
	uint32_t len;
};

struct fake {
	struct backend be;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rec log[MAX_LOG];        /* reads in the order they began */
	unsigned nlog;
	unsigned in_read;               /* reads under way */
	unsigned waiting;               /* reads held at the gate */
	bool gate;                      /* reads wait while set */
	int64_t delay_ns;               /* each read takes this long */
	uint64_t fail_off;              /* a read at this offset fails ... */
	int fail_err;                   /* ... with this (0: none) */
	struct prefetcher *stamp;       /* each read stamps it busy (the prefetch thread) */
};

static int fake_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	struct fake *f = (struct fake *)be;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	if (f->nlog < MAX_LOG)
		f->log[f->nlog++] = (struct rec){ off, (uint32_t)len };
	f->in_read++;
	f->waiting++;
	pthread_cond_broadcast(&f->cv);
	while (f->gate)
		pthread_cond_wait(&f->cv, &f->mu);
	f->waiting--;
	int64_t delay = f->delay_ns;
	if (f->fail_err && off == f->fail_off)
		rc = f->fail_err;
	struct prefetcher *stamp = f->stamp;
	pthread_mutex_unlock(&f->mu);
	if (delay) {
		struct timespec ts = { delay / 1000000000LL, delay % 1000000000LL };
		nanosleep(&ts, NULL);
	}
	memset(buf, 0xee, len);         /* the whole buffer is writable */
	if (stamp)
		prefetch_note_busy(stamp, iostats_now_ns());
	pthread_mutex_lock(&f->mu);
	f->in_read--;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return rc;
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

static void gate_set(struct fake *f, bool closed)
{
	pthread_mutex_lock(&f->mu);
	f->gate = closed;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* Wait until a read is held at the gate (at most 5 s). */
static void wait_held(struct fake *f)
{
	int64_t until = iostats_now_ns() + 5000000000LL;
	pthread_mutex_lock(&f->mu);
	while (f->waiting == 0 && iostats_now_ns() < until) {
		pthread_mutex_unlock(&f->mu);
		usleep(1000);
		pthread_mutex_lock(&f->mu);
	}
	assert_true(f->waiting > 0);
	pthread_mutex_unlock(&f->mu);
}

static unsigned nlog(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->nlog;
	pthread_mutex_unlock(&f->mu);
	return n;
}

static void sleep_ms(unsigned ms)
{
	usleep(ms * 1000u);
}

/* Wait until key's state is st (at most ms); fails otherwise. */
static void wait_state(struct prefetcher *pf, const void *key, enum prefetch_state st, unsigned ms)
{
	struct prefetch_status s;
	int64_t until = iostats_now_ns() + (int64_t)ms * 1000000LL;

	for (;;) {
		prefetch_get_status(pf, key, &s);
		if (s.state == st || iostats_now_ns() > until)
			break;
		sleep_ms(1);
	}
	if (s.state != st)
		print_error("state %s, waited for %s\n", prefetch_state_name(s.state),
			    prefetch_state_name(st));
	assert_int_equal(s.state, st);
}

/* n extents from off on, of len each (the last one may be given). */
static struct bootset_extent *extents(uint32_t n, uint64_t off, uint32_t len)
{
	struct bootset_extent *x = calloc(n, sizeof(*x));
	for (uint32_t i = 0; i < n; i++) {
		x[i].off = off + (uint64_t)i * len;
		x[i].len = len;
	}
	return x;
}

static uint64_t total(const struct bootset_extent *x, uint32_t n)
{
	uint64_t t = 0;
	for (uint32_t i = 0; i < n; i++)
		t += x[i].len;
	return t;
}

/* f's reads [from, from+n) are exactly x[0..n) in order. */
static void assert_log(struct fake *f, unsigned from, const struct bootset_extent *x, uint32_t n)
{
	pthread_mutex_lock(&f->mu);
	assert_true(f->nlog >= from + n);
	for (uint32_t i = 0; i < n; i++) {
		if (f->log[from + i].off != x[i].off || f->log[from + i].len != x[i].len)
			print_error("read %u: %llu+%u, expected %llu+%u\n", from + i,
				    (unsigned long long)f->log[from + i].off, f->log[from + i].len,
				    (unsigned long long)x[i].off, x[i].len);
		assert_int_equal(f->log[from + i].off, x[i].off);
		assert_int_equal(f->log[from + i].len, x[i].len);
	}
	pthread_mutex_unlock(&f->mu);
}

static const int key_a = 1, key_b = 2, key_c = 3;
#define A ((const void *)&key_a)
#define B ((const void *)&key_b)
#define C ((const void *)&key_c)

/* Extents of any size up to PREFETCH_MAX_READ, anywhere (the last byte
 * of the disk too), in the caller's order, each read whole once. */
static void test_order_whole(void **state)
{
	const uint64_t size = 64ull * MIB + 4096 + 512;
	struct fake *f = fake_new(size);
	struct prefetcher *pf;
	struct bootset_extent x[] = {
		{ 5 * MIB, 64 * KIB }, { 0, PREFETCH_MAX_READ }, { size - 512, 512 },
		{ 17 * MIB + 4096, 192 * KIB }, { 3 * MIB, 64 * KIB }, { 3 * MIB, 64 * KIB },
		{ 40 * MIB, 1 }, { size - PREFETCH_MAX_READ, PREFETCH_MAX_READ },
	};
	const uint32_t n = sizeof(x) / sizeof(x[0]);
	struct prefetch_status s;
	struct prefetch_stats st;

	assert_int_equal(prefetcher_new(&pf), 0);
	assert_true(prefetch_idle(pf));
	int64_t before = iostats_now_ns();
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, n, "order"), 0);
	struct bootset_extent first = x[0];
	x[0] = (struct bootset_extent){ 7 * MIB, 4096 };       /* it read its own copy */
	wait_state(pf, A, PREFETCH_DONE, WAIT_MS);
	x[0] = first;
	assert_int_equal(nlog(f), n);
	assert_log(f, 0, x, n);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.total_bytes, total(x, n));
	assert_int_equal(s.done_bytes, total(x, n));
	assert_int_equal(s.err, 0);
	assert_true(s.queued_ns >= before && s.started_ns >= s.queued_ns && s.ended_ns >= s.started_ns);
	prefetch_get_stats(pf, &st);
	assert_int_equal(st.jobs_done, 1);
	assert_int_equal(st.bytes, total(x, n));
	assert_int_equal(st.yields, 0);
	assert_true(prefetch_idle(pf));
	prefetcher_free(pf);
	backend_close(&f->be);
}

/* Jobs run one after another in the order queued; queueing a queued key
 * again replaces its job in its place. */
static void test_fifo(void **state)
{
	struct fake *f = fake_new(256 * MIB);
	struct prefetcher *pf;
	struct bootset_extent *xc = extents(2, 0, 64 * KIB);
	struct bootset_extent *xa = extents(5, 10 * MIB, 64 * KIB);
	struct bootset_extent *xb1 = extents(3, 20 * MIB, 128 * KIB);
	struct bootset_extent *xb2 = extents(4, 30 * MIB, 32 * KIB);

	assert_int_equal(prefetcher_new(&pf), 0);
	gate_set(f, true);
	assert_int_equal(prefetch_queue(pf, C, &f->be, xc, 2, "c"), 0);
	wait_held(f);                   /* C's first read holds the thread */
	assert_int_equal(prefetch_queue(pf, B, &f->be, xb1, 3, "b"), 0);
	assert_int_equal(prefetch_queue(pf, A, &f->be, xa, 5, "a"), 0);
	assert_int_equal(prefetch_queue(pf, B, &f->be, xb2, 4, "b again"), 0);
	struct prefetch_status s;
	prefetch_get_status(pf, B, &s);
	assert_int_equal(s.state, PREFETCH_QUEUED);
	assert_int_equal(s.total_bytes, 4 * 32 * KIB);
	assert_false(prefetch_idle(pf));
	gate_set(f, false);
	wait_state(pf, A, PREFETCH_DONE, WAIT_MS);
	wait_state(pf, B, PREFETCH_DONE, WAIT_MS);
	wait_state(pf, C, PREFETCH_DONE, WAIT_MS);
	/* C, then B (queued first, with its new extents), then A. */
	assert_int_equal(nlog(f), 2 + 4 + 5);
	assert_log(f, 0, xc, 2);
	assert_log(f, 2, xb2, 4);
	assert_log(f, 6, xa, 5);
	struct prefetch_stats st;
	prefetch_get_stats(pf, &st);
	assert_int_equal(st.jobs_done, 3);
	assert_int_equal(st.bytes, total(xc, 2) + total(xb2, 4) + total(xa, 5));
	prefetcher_free(pf);
	backend_close(&f->be);
	free(xa);
	free(xb1);
	free(xb2);
	free(xc);
}

/* Queueing a running key again: it stops after its current read and its
 * new job runs next, ahead of what was queued. */
static void test_replace_running(void **state)
{
	struct fake *f = fake_new(256 * MIB);
	struct prefetcher *pf;
	struct bootset_extent *x1 = extents(6, 0, 64 * KIB);
	struct bootset_extent *x2 = extents(3, 100 * MIB, 256 * KIB);
	struct bootset_extent *xb = extents(2, 200 * MIB, 64 * KIB);
	struct prefetch_status s;

	assert_int_equal(prefetcher_new(&pf), 0);
	gate_set(f, true);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x1, 6, "a1"), 0);
	wait_held(f);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.state, PREFETCH_RUNNING);
	assert_true(s.started_ns > 0);
	assert_int_equal(prefetch_queue(pf, B, &f->be, xb, 2, "b"), 0);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x2, 3, "a2"), 0);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.state, PREFETCH_QUEUED);
	assert_int_equal(s.total_bytes, 3 * 256 * KIB);
	assert_int_equal(s.done_bytes, 0);
	assert_int_equal(s.started_ns, 0);
	gate_set(f, false);
	wait_state(pf, B, PREFETCH_DONE, WAIT_MS);
	wait_state(pf, A, PREFETCH_DONE, WAIT_MS);
	/* x1's first read (in flight), then x2 whole, then B. */
	assert_int_equal(nlog(f), 1 + 3 + 2);
	assert_log(f, 0, x1, 1);
	assert_log(f, 1, x2, 3);
	assert_log(f, 4, xb, 2);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.done_bytes, 3 * 256 * KIB);
	prefetcher_free(pf);
	backend_close(&f->be);
	free(x1);
	free(x2);
	free(xb);
}

struct canceller {
	struct prefetcher *pf;
	const void *key;
	bool forget;                    /* prefetch_forget instead of cancel */
	bool done;
	pthread_mutex_t mu;
};

static void *cancel_thread(void *p)
{
	struct canceller *c = p;
	if (c->forget)
		prefetch_forget(c->pf, c->key);
	else
		prefetch_cancel(c->pf, c->key);
	pthread_mutex_lock(&c->mu);
	c->done = true;
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static bool cancel_done(struct canceller *c)
{
	pthread_mutex_lock(&c->mu);
	bool d = c->done;
	pthread_mutex_unlock(&c->mu);
	return d;
}

/* Cancel of a running job returns only after the read in flight ended,
 * and nothing reads after it; a queued job cancelled is never read. */
static void test_cancel(void **state)
{
	struct fake *f = fake_new(256 * MIB);
	struct prefetcher *pf;
	struct bootset_extent *xa = extents(50, 0, 64 * KIB);
	struct bootset_extent *xb = extents(5, 100 * MIB, 64 * KIB);
	struct prefetch_status s;
	pthread_t t;

	assert_int_equal(prefetcher_new(&pf), 0);
	gate_set(f, true);
	assert_int_equal(prefetch_queue(pf, A, &f->be, xa, 50, "a"), 0);
	assert_int_equal(prefetch_queue(pf, B, &f->be, xb, 5, "b"), 0);
	wait_held(f);
	/* B is queued: cancelled at once, never read. */
	prefetch_cancel(pf, B);
	prefetch_get_status(pf, B, &s);
	assert_int_equal(s.state, PREFETCH_CANCELLED);
	assert_true(s.ended_ns > 0);

	struct canceller c = { .pf = pf, .key = A };
	pthread_mutex_init(&c.mu, NULL);
	assert_int_equal(pthread_create(&t, NULL, cancel_thread, &c), 0);
	wait_state(pf, A, PREFETCH_CANCELLED, WAIT_MS);
	sleep_ms(50);
	assert_false(cancel_done(&c));          /* the read is still held */
	gate_set(f, false);
	pthread_join(t, NULL);
	assert_true(cancel_done(&c));
	pthread_mutex_lock(&f->mu);
	assert_int_equal(f->in_read, 0);        /* the read ended before cancel returned */
	unsigned reads = f->nlog;
	pthread_mutex_unlock(&f->mu);
	assert_int_equal(reads, 1);
	sleep_ms(100);
	assert_int_equal(nlog(f), reads);       /* and nothing read after */
	assert_true(prefetch_idle(pf));
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.state, PREFETCH_CANCELLED);
	assert_int_equal(s.done_bytes, 0);
	/* Cancel of a key that is done or unknown changes nothing. */
	prefetch_cancel(pf, C);
	prefetch_get_status(pf, C, &s);
	assert_int_equal(s.state, PREFETCH_NONE);
	struct prefetch_stats st;
	prefetch_get_stats(pf, &st);
	assert_int_equal(st.jobs_done, 0);
	pthread_mutex_destroy(&c.mu);
	prefetcher_free(pf);
	backend_close(&f->be);
	free(xa);
	free(xb);
}

/* Every state a key goes through, until forget. */
static void test_status(void **state)
{
	struct fake *f = fake_new(64 * MIB);
	struct prefetcher *pf;
	struct bootset_extent *x = extents(4, 0, 64 * KIB);
	struct prefetch_status s;

	assert_int_equal(prefetcher_new(&pf), 0);
	memset(&s, 0xff, sizeof(s));
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.state, PREFETCH_NONE);
	assert_int_equal(s.total_bytes, 0);
	assert_int_equal(s.queued_ns, 0);

	gate_set(f, true);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 4, "a"), 0);
	assert_int_equal(prefetch_queue(pf, B, &f->be, x, 2, "b"), 0);
	wait_held(f);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.state, PREFETCH_RUNNING);
	assert_int_equal(s.total_bytes, 4 * 64 * KIB);
	assert_int_equal(s.ended_ns, 0);
	prefetch_get_status(pf, B, &s);
	assert_int_equal(s.state, PREFETCH_QUEUED);
	assert_int_equal(s.started_ns, 0);
	assert_true(s.queued_ns > 0);
	gate_set(f, false);
	wait_state(pf, B, PREFETCH_DONE, WAIT_MS);
	wait_state(pf, A, PREFETCH_DONE, WAIT_MS);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.done_bytes, 4 * 64 * KIB);

	/* Kept until forget; then unknown, and the key may be used again. */
	prefetch_forget(pf, A);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.state, PREFETCH_NONE);
	prefetch_get_status(pf, B, &s);
	assert_int_equal(s.state, PREFETCH_DONE);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 1, "a again"), 0);
	wait_state(pf, A, PREFETCH_DONE, WAIT_MS);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.total_bytes, 64 * KIB);
	/* Forget of a running job cancels it first. */
	gate_set(f, true);
	assert_int_equal(prefetch_queue(pf, C, &f->be, x, 4, "c"), 0);
	wait_held(f);
	struct canceller c = { .pf = pf, .key = C, .forget = true };
	pthread_mutex_init(&c.mu, NULL);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, cancel_thread, &c), 0);
	wait_state(pf, C, PREFETCH_CANCELLED, WAIT_MS);
	sleep_ms(50);
	assert_false(cancel_done(&c));          /* waits for the read held */
	gate_set(f, false);
	pthread_join(t, NULL);
	pthread_mutex_destroy(&c.mu);
	prefetch_get_status(pf, C, &s);
	assert_int_equal(s.state, PREFETCH_NONE);
	assert_true(prefetch_idle(pf));
	prefetcher_free(pf);
	backend_close(&f->be);
	free(x);

	assert_string_equal(prefetch_state_name(PREFETCH_NONE), "none");
	assert_string_equal(prefetch_state_name(PREFETCH_QUEUED), "queued");
	assert_string_equal(prefetch_state_name(PREFETCH_RUNNING), "running");
	assert_string_equal(prefetch_state_name(PREFETCH_DONE), "done");
	assert_string_equal(prefetch_state_name(PREFETCH_CANCELLED), "cancelled");
	assert_string_equal(prefetch_state_name(PREFETCH_FAILED), "failed");
}

/* A failing read ends its job FAILED with the error, nothing is read
 * after it; the next queueing tries again. */
static void test_failing_read(void **state)
{
	struct fake *f = fake_new(64 * MIB);
	struct prefetcher *pf;
	struct bootset_extent *x = extents(10, MIB, 64 * KIB);
	struct prefetch_status s;
	struct prefetch_stats st;

	f->fail_off = x[3].off;
	f->fail_err = -EIO;
	assert_int_equal(prefetcher_new(&pf), 0);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 10, "failing"), 0);
	wait_state(pf, A, PREFETCH_FAILED, WAIT_MS);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.err, -EIO);
	assert_int_equal(s.done_bytes, 3 * 64 * KIB);
	assert_true(s.ended_ns >= s.started_ns && s.ended_ns > 0);
	sleep_ms(50);
	assert_int_equal(nlog(f), 4);
	assert_log(f, 0, x, 4);
	assert_true(prefetch_idle(pf));
	prefetch_get_stats(pf, &st);
	assert_int_equal(st.jobs_done, 0);
	assert_int_equal(st.bytes, 3 * 64 * KIB);
	/* Fails again the same way (logged at debug level only)... */
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 10, "failing"), 0);
	wait_state(pf, A, PREFETCH_FAILED, WAIT_MS);
	/* ... and once the disk reads again, the job is read whole. */
	pthread_mutex_lock(&f->mu);
	f->fail_err = 0;
	pthread_mutex_unlock(&f->mu);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 10, "failing"), 0);
	wait_state(pf, A, PREFETCH_DONE, WAIT_MS);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.err, 0);
	assert_int_equal(s.done_bytes, 10 * 64 * KIB);
	assert_int_equal(nlog(f), 4 + 4 + 10);
	prefetcher_free(pf);
	backend_close(&f->be);
	free(x);
}

/* Busy stamps every 50 ms for 1 s: the job makes (almost) no progress;
 * once they stop it finishes. */
static void test_busy_pauses(void **state)
{
	struct fake *f = fake_new(64 * MIB);
	struct prefetcher *pf;
	struct bootset_extent *x = extents(40, 0, 64 * KIB);
	struct prefetch_status s;
	struct prefetch_stats st;

	f->delay_ns = 1000000;          /* 1 ms a read: 40 ms unhindered */
	assert_int_equal(prefetcher_new(&pf), 0);
	prefetch_note_busy(NULL, iostats_now_ns());     /* no prefetcher: nothing */
	/*
	 * A stamp s made visible at a holds the prefetch until s + 200 ms.
	 * worst: the longest time from a stamp to the next one being visible
	 * (or to the check of the reads at the end).  While it stays under
	 * PREFETCH_YIELD_NS no read can have started; a machine that stalled
	 * this thread longer proves nothing about the pause.
	 */
	int64_t s_prev = iostats_now_ns(), worst = 0;
	prefetch_note_busy(pf, s_prev);
	int64_t t0 = iostats_now_ns();
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 40, "busy"), 0);
	while (iostats_now_ns() - t0 < 1000000000LL) {
		sleep_ms(50);
		int64_t s_now = iostats_now_ns();
		prefetch_note_busy(pf, s_now);
		/* An older stamp never moves the newest back. */
		prefetch_note_busy(pf, s_now - PREFETCH_YIELD_NS);
		int64_t visible = iostats_now_ns();
		if (visible - s_prev > worst)
			worst = visible - s_prev;
		s_prev = s_now;
	}
	unsigned reads = nlog(f);
	prefetch_get_status(pf, A, &s);
	int64_t checked = iostats_now_ns();
	if (checked - s_prev > worst)
		worst = checked - s_prev;
	bool held = worst < PREFETCH_YIELD_NS;
	if (held) {
		assert_int_equal(reads, 0);
		assert_true(s.state == PREFETCH_QUEUED || s.state == PREFETCH_RUNNING);
	} else {
		print_message("this thread stalled %lld ms: the pause is not checked\n",
			      (long long)(worst / 1000000));
	}
	wait_state(pf, A, PREFETCH_DONE, WAIT_MS);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(nlog(f), 40);
	prefetch_get_stats(pf, &st);
	assert_true(st.yields >= 1);
	assert_int_equal(st.jobs_done, 1);
	if (held) {
		/* Not before the last stamp's pause ran out; paused all along. */
		assert_true(s.ended_ns - s_prev >= PREFETCH_YIELD_NS);
		assert_true(st.yield_ns >= 1000000000ull);
	}

	/* The prefetch thread's own stamps (a read of it passing through a
	 * tap) never make it pause. */
	struct prefetch_stats st0 = st;
	pthread_mutex_lock(&f->mu);
	f->stamp = pf;
	pthread_mutex_unlock(&f->mu);
	assert_int_equal(prefetch_queue(pf, B, &f->be, x, 40, "self"), 0);
	wait_state(pf, B, PREFETCH_DONE, WAIT_MS);
	prefetch_get_stats(pf, &st);
	assert_int_equal(st.yields, st0.yields);
	prefetcher_free(pf);
	backend_close(&f->be);
	free(x);
}

/* A pause is cancellable: cancel returns at once, not after the pause. */
static void test_cancel_paused(void **state)
{
	struct fake *f = fake_new(64 * MIB);
	struct prefetcher *pf;
	struct bootset_extent *x = extents(4, 0, 64 * KIB);

	assert_int_equal(prefetcher_new(&pf), 0);
	/* a pause of 10 s */
	prefetch_note_busy(pf, iostats_now_ns() + 10000000000LL - PREFETCH_YIELD_NS);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 4, "paused"), 0);
	wait_state(pf, A, PREFETCH_RUNNING, WAIT_MS);
	sleep_ms(20);
	int64_t t0 = iostats_now_ns();
	prefetch_cancel(pf, A);
	/* at once, not at the end of the pause (room for a loaded machine) */
	assert_true(iostats_now_ns() - t0 < 2000000000LL);
	assert_int_equal(nlog(f), 0);
	assert_true(prefetch_idle(pf));
	struct prefetch_stats st;
	prefetch_get_stats(pf, &st);
	assert_int_equal(st.yields, 1);
	assert_true(st.yield_ns > 0);
	prefetcher_free(pf);
	backend_close(&f->be);
	free(x);
}

struct freer {
	struct prefetcher *pf;
};

static void *free_thread(void *p)
{
	prefetcher_free(((struct freer *)p)->pf);
	return NULL;
}

/* Free with a job running (held in a read) and others queued: it waits
 * for the read, reads nothing more, leaks nothing (ASan). */
static void test_free_pending(void **state)
{
	struct fake *f = fake_new(64 * MIB);
	struct prefetcher *pf;
	struct bootset_extent *x = extents(8, 0, 64 * KIB);
	pthread_t t;

	assert_int_equal(prefetcher_new(&pf), 0);
	gate_set(f, true);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 8, "a"), 0);
	assert_int_equal(prefetch_queue(pf, B, &f->be, x, 8, "b"), 0);
	assert_int_equal(prefetch_queue(pf, C, &f->be, x, 8, "c"), 0);
	wait_held(f);
	struct freer fr = { pf };
	assert_int_equal(pthread_create(&t, NULL, free_thread, &fr), 0);
	/* free cancels every job, then waits for the read held: pf lives
	 * until the gate opens, so its status may be asked meanwhile. */
	wait_state(pf, A, PREFETCH_CANCELLED, WAIT_MS);
	wait_state(pf, B, PREFETCH_CANCELLED, WAIT_MS);
	wait_state(pf, C, PREFETCH_CANCELLED, WAIT_MS);
	gate_set(f, false);
	pthread_join(t, NULL);
	assert_int_equal(nlog(f), 1);
	pthread_mutex_lock(&f->mu);
	assert_int_equal(f->in_read, 0);
	pthread_mutex_unlock(&f->mu);

	/* Nothing running, only queued jobs behind a pause; and an idle one. */
	assert_int_equal(prefetcher_new(&pf), 0);
	prefetch_note_busy(pf, iostats_now_ns() + 10 * PREFETCH_YIELD_NS);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 8, "a"), 0);
	assert_int_equal(prefetch_queue(pf, B, &f->be, x, 8, "b"), 0);
	prefetcher_free(pf);
	assert_int_equal(nlog(f), 1);
	assert_int_equal(prefetcher_new(&pf), 0);
	prefetcher_free(pf);
	prefetcher_free(NULL);
	backend_close(&f->be);
	free(x);
}

/* Bad arguments are refused and change nothing. */
static void test_arguments(void **state)
{
	struct fake *f = fake_new(MIB);
	struct prefetcher *pf;
	struct bootset_extent ok = { 0, 4096 };
	struct bootset_extent past = { MIB - 4096, 8192 }, empty = { 0, 0 };
	struct bootset_extent big = { 0, PREFETCH_MAX_READ + 1 }, far = { 2 * MIB, 1 };
	struct prefetch_status s;

	assert_int_equal(prefetcher_new(&pf), 0);
	assert_int_equal(prefetch_queue(pf, NULL, &f->be, &ok, 1, "x"), -EINVAL);
	assert_int_equal(prefetch_queue(pf, A, NULL, &ok, 1, "x"), -EINVAL);
	assert_int_equal(prefetch_queue(pf, A, &f->be, NULL, 1, "x"), -EINVAL);
	assert_int_equal(prefetch_queue(pf, A, &f->be, &past, 1, "x"), -EINVAL);
	assert_int_equal(prefetch_queue(pf, A, &f->be, &empty, 1, "x"), -EINVAL);
	assert_int_equal(prefetch_queue(pf, A, &f->be, &big, 1, "x"), -EINVAL);
	assert_int_equal(prefetch_queue(pf, A, &f->be, &far, 1, "x"), -EINVAL);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.state, PREFETCH_NONE);
	/* No extents at all: done as soon as it runs. */
	assert_int_equal(prefetch_queue(pf, A, &f->be, NULL, 0, NULL), 0);
	wait_state(pf, A, PREFETCH_DONE, WAIT_MS);
	assert_int_equal(nlog(f), 0);
	prefetcher_free(pf);
	backend_close(&f->be);
}

/* Byte o of a test file. */
static uint8_t pat(uint64_t o)
{
	return (uint8_t)(o * 7u + (o >> 9));
}

/* Data through the tap is inner's: read and splice_read of a raw file;
 * the other ops pass through; size, read_only, name are inner's; NULL
 * ops stay NULL; closing the tap leaves inner open. */
static void test_tap_passthrough(void **state)
{
	char path[256];
	const uint64_t size = 4 * MIB + 512;
	struct backend *raw, *tap;
	uint8_t *buf = malloc(2 * MIB), *want = malloc(MIB);

	snprintf(path, sizeof(path), "%s/taptest.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	for (uint64_t o = 0; o < size; o += MIB) {
		size_t n = size - o < MIB ? (size_t)(size - o) : MIB;
		for (size_t i = 0; i < n; i++)
			want[i] = pat(o + i);
		assert_int_equal(pwrite(fd, want, n, (off_t)o), (ssize_t)n);
	}
	close(fd);
	assert_int_equal(backend_raw_open(path, true, &raw), 0);
	struct bootrec rec;
	struct prefetcher *pf;
	bootrec_init(&rec);
	assert_int_equal(prefetcher_new(&pf), 0);
	assert_int_equal(backend_tap_wrap(raw, &rec, pf, &tap), 0);
	assert_int_equal(tap->size, raw->size);
	assert_int_equal(tap->read_only, raw->read_only);
	assert_string_equal(tap->name, raw->name);
	assert_non_null(tap->ops->splice_read);
	assert_non_null(tap->ops->unmap);
	assert_non_null(tap->ops->block_status);
	assert_non_null(tap->ops->resident);

	/* read, to the last byte */
	const uint64_t off = 3 * MIB + 123;
	assert_int_equal(tap->ops->read(tap, buf, off, size - off), 0);
	for (size_t i = 0; i < size - off; i++)
		assert_int_equal(buf[i], pat(off + i));
	/* splice_read: the pipe holds the file's bytes */
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(tap->ops->splice_read(tap, p[1], 8192 + 5, 40000), 0);
	size_t got = 0;
	while (got < 40000) {
		ssize_t r = read(p[0], buf + got, 40000 - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
	for (size_t i = 0; i < 40000; i++)
		assert_int_equal(buf[i], pat(8192 + 5 + i));
	/* a read past the end fails as inner's does */
	assert_true(tap->ops->splice_read(tap, p[1], size - 10, 20) < 0);
	close(p[0]);
	close(p[1]);
	/* write, flush, unmap, block_status, resident: inner's */
	memset(buf, 0x42, 4096);
	assert_int_equal(tap->ops->write(tap, buf, 4096, 4096, true), 0);
	assert_int_equal(tap->ops->flush(tap), 0);
	assert_int_equal(raw->ops->read(raw, want, 4096, 4096), 0);
	assert_memory_equal(want, buf, 4096);
	assert_int_equal(tap->ops->unmap(tap, 2 * MIB, MIB), 0);
	assert_int_equal(raw->ops->read(raw, want, 2 * MIB + 4096, 4096), 0);
	memset(buf, 0, 4096);
	assert_memory_equal(want, buf, 4096);
	uint64_t run = 0, res = 0, res_raw = 0;
	bool mapped = true;
	assert_int_equal(tap->ops->block_status(tap, 2 * MIB, MIB, &run, &mapped), 0);
	uint64_t run_raw = 0;
	bool mapped_raw = true;
	assert_int_equal(raw->ops->block_status(raw, 2 * MIB, MIB, &run_raw, &mapped_raw), 0);
	assert_int_equal(run, run_raw);
	assert_int_equal(mapped, mapped_raw);
	assert_int_equal(tap->ops->read(tap, buf, 0, 64 * KIB), 0);
	assert_int_equal(tap->ops->resident(tap, 0, 64 * KIB, &res), 0);
	assert_int_equal(raw->ops->resident(raw, 0, 64 * KIB, &res_raw), 0);
	assert_true(res <= 64 * KIB && res_raw <= 64 * KIB);
	assert_int_equal(tap->ops->resident(tap, 0, size + 1, &res), -EINVAL);
	backend_close(tap);
	/* inner is still open and whole */
	assert_int_equal(raw->ops->read(raw, buf, off, 100), 0);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(buf[i], pat(off + i));

	/* Inner without splice_read, write, unmap, ...: the tap has none either. */
	struct fake *f = fake_new(MIB);
	assert_int_equal(backend_tap_wrap(&f->be, NULL, NULL, &tap), 0);
	assert_null(tap->ops->splice_read);
	assert_null(tap->ops->write);
	assert_null(tap->ops->flush);
	assert_null(tap->ops->unmap);
	assert_null(tap->ops->block_status);
	assert_null(tap->ops->resident);
	assert_int_equal(tap->ops->read(tap, buf, 100, 1000), 0);
	assert_int_equal(nlog(f), 1);
	backend_close(tap);
	backend_close(&f->be);

	prefetcher_free(pf);
	bootrec_destroy(&rec);
	backend_close(raw);
	unlink(path);
	free(buf);
	free(want);
}

/* Successful reads (read and splice_read) are noted in the recorder, in
 * the order first read; failed ones are not; nothing while it is idle. */
static void test_tap_records(void **state)
{
	char path[256];
	const uint64_t size = 16 * BOOTSET_CHUNK;
	struct backend *raw, *tap;
	struct bootrec rec;
	uint8_t *buf = malloc(2 * BOOTSET_CHUNK);

	snprintf(path, sizeof(path), "%s/taprec.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
	assert_int_equal(backend_raw_open(path, false, &raw), 0);
	bootrec_init(&rec);
	assert_int_equal(backend_tap_wrap(raw, &rec, NULL, &tap), 0);

	/* Idle: nothing noted. */
	assert_int_equal(tap->ops->read(tap, buf, 0, 4096), 0);
	assert_int_equal(bootrec_start(&rec, 7, size, 100, iostats_now_ns()), 0);
	assert_int_equal(tap->ops->read(tap, buf, 5 * BOOTSET_CHUNK + 100, 4096), 0);
	/* across chunks 2 and 3 */
	assert_int_equal(tap->ops->read(tap, buf, 3 * BOOTSET_CHUNK - 512, 1024), 0);
	assert_int_equal(tap->ops->read(tap, buf, 5 * BOOTSET_CHUNK, 512), 0);     /* seen */
	/* a failed read (past the end) is not noted */
	assert_true(tap->ops->read(tap, buf, size - 512, 1024) < 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(tap->ops->splice_read(tap, p[1], 9 * BOOTSET_CHUNK, 4096), 0);
	assert_true(tap->ops->splice_read(tap, p[1], size - 100, 4096) < 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(tap->ops->read(tap, buf, 0, 512), 0);

	struct bootset_hit *hits;
	uint32_t n;
	unsigned version;
	assert_int_equal(bootrec_finish(&rec, &hits, &n, &version), 0);
	assert_int_equal(version, 7);
	const uint32_t want[] = { 5, 2, 3, 9, 0 };
	assert_int_equal(n, 5);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(hits[i].chunk, want[i]);
	free(hits);
	/* Idle again: nothing. */
	assert_int_equal(tap->ops->read(tap, buf, 12 * BOOTSET_CHUNK, 512), 0);
	assert_int_equal(bootrec_finish(&rec, &hits, &n, &version), -ENOENT);

	backend_close(tap);
	bootrec_destroy(&rec);
	backend_close(raw);
	unlink(path);
	free(buf);
}

/* Whether pf pauses before a one-read job on f now: runs the job and
 * says whether it yielded. */
static bool pauses_now(struct prefetcher *pf, struct fake *f)
{
	struct bootset_extent x = { 0, 4096 };
	struct prefetch_stats a, b;

	prefetch_get_stats(pf, &a);
	assert_int_equal(prefetch_queue(pf, A, &f->be, &x, 1, "probe"), 0);
	wait_state(pf, A, PREFETCH_DONE, WAIT_MS);
	prefetch_get_stats(pf, &b);
	return b.yields > a.yields;
}

/*
 * A slow read through tap, then whether pf pauses before a probe job:
 * again (10 times at most) while the probe began too late to show it
 * (PREFETCH_YIELD_NS / 2 after the read: a loaded machine).  Fails when
 * it never began in time.
 */
static bool read_pauses(struct prefetcher *pf, struct backend *tap, struct fake *probe);

/* Read through the tap; the time it took (by this thread's clock, which
 * encloses the tap's). */
static int64_t timed_read(struct backend *tap)
{
	uint8_t buf[4096];
	int64_t t0 = iostats_now_ns();
	assert_int_equal(tap->ops->read(tap, buf, 0, sizeof(buf)), 0);
	return iostats_now_ns() - t0;
}

static bool read_pauses(struct prefetcher *pf, struct backend *tap, struct fake *probe)
{
	for (int tries = 0; tries < 10; tries++) {
		uint8_t buf[4096];
		assert_int_equal(tap->ops->read(tap, buf, 0, sizeof(buf)), 0);
		int64_t t1 = iostats_now_ns();
		bool paused = pauses_now(pf, probe);
		struct prefetch_status s;
		prefetch_get_status(pf, A, &s);
		if (s.started_ns - t1 < PREFETCH_YIELD_NS / 2)
			return paused;
		sleep_ms(300);          /* let that stamp run out */
	}
	fail_msg("the probe never began within %lld ms of a read",
		 (long long)(PREFETCH_YIELD_NS / 2000000));
	return false;
}

/* A read of a PC that is not being recorded makes the prefetcher yield,
 * fast or slow; a read while recording (a booting PC), however slow,
 * does not. */
static void test_tap_busy(void **state)
{
	const int64_t slow_ns = 3 * 1000000LL;
	struct fake *slow = fake_new(MIB), *probe = fake_new(MIB);
	struct prefetcher *pf;
	struct bootrec rec;
	struct backend *tap, *tap_norec;

	slow->delay_ns = slow_ns;
	assert_int_equal(prefetcher_new(&pf), 0);
	bootrec_init(&rec);
	assert_int_equal(backend_tap_wrap(&slow->be, &rec, pf, &tap), 0);
	assert_int_equal(backend_tap_wrap(&slow->be, NULL, pf, &tap_norec), 0);
	assert_false(pauses_now(pf, probe));

	/* Slow while recording: a booting PC, no yield. */
	assert_int_equal(bootrec_start(&rec, 1, MIB, 16, iostats_now_ns()), 0);
	assert_true(timed_read(tap) >= slow_ns);
	assert_false(pauses_now(pf, probe));
	bootrec_cancel(&rec);

	/* Fast while idle (a PC at work reading from memory): the prefetcher
	 * yields all the same. */
	slow->delay_ns = 0;
	int64_t t0 = iostats_now_ns();
	assert_true(read_pauses(pf, tap, probe));
	/* Slow while idle: too. */
	slow->delay_ns = slow_ns;
	assert_true(read_pauses(pf, tap, probe));
	assert_true(iostats_now_ns() - t0 >= PREFETCH_YIELD_NS / 2);
	/* No recorder at all counts as idle (pauses_now returned after the
	 * last stamp ran out). */
	assert_true(read_pauses(pf, tap_norec, probe));

	backend_close(tap);
	backend_close(tap_norec);
	bootrec_destroy(&rec);
	prefetcher_free(pf);
	backend_close(&slow->be);
	backend_close(&probe->be);
}

/* Bytes of x[0..n) that be holds in memory now. */
static uint64_t resident_of(struct backend *be, const struct bootset_extent *x, uint32_t n)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t got = 0;
		assert_int_equal(be->ops->resident(be, x[i].off, x[i].len, &got), 0);
		sum += got;
	}
	return sum;
}

/* What the prefetch is for: after a job, its extents are in memory - the
 * page cache of a raw file whose pages were dropped, the chunks of a read
 * cache - and what it did not read is not. */
static void test_warms(void **state)
{
	char path[256];
	const uint64_t size = 32 * MIB;
	struct backend *raw;
	struct prefetcher *pf;
	struct bootset_extent x[] = {
		{ 20 * MIB, MIB }, { 3 * MIB, 256 * KIB }, { 9 * MIB + 64 * KIB, 512 * KIB },
		{ 0, 64 * KIB },
	};
	const uint32_t n = sizeof(x) / sizeof(x[0]);

	snprintf(path, sizeof(path), "%s/tapwarm.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(MIB);
	memset(buf, 0x3c, MIB);
	for (uint64_t o = 0; o < size; o += MIB)
		assert_int_equal(pwrite(fd, buf, MIB, (off_t)o), (ssize_t)MIB);
	free(buf);
	assert_int_equal(fdatasync(fd), 0);
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
	assert_int_equal(backend_raw_open(path, false, &raw), 0);
	assert_int_equal(prefetcher_new(&pf), 0);

	/* The page cache (tmpfs keeps every page: nothing to see there). */
	struct statfs sf;
	bool tmpfs = statfs(path, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
	uint64_t want = total(x, n), after = 0;
	if (!tmpfs) {
		assert_true(resident_of(raw, x, n) <= want / 4);
		/* again if something outside dropped the pages meanwhile */
		for (int tries = 0; tries < 5 && after < want * 3 / 4; tries++) {
			assert_int_equal(prefetch_queue(pf, A, raw, x, n, "warm raw"), 0);
			wait_state(pf, A, PREFETCH_DONE, WAIT_MS);
			after = resident_of(raw, x, n);
		}
		assert_true(after >= want * 3 / 4);
	}

	/* A read cache: exact, and only the chunks read. */
	struct rcache *rc;
	struct fake *f = fake_new(size);
	struct backend *cached;
	assert_int_equal(rcache_new(64 * MIB, 64 * KIB, &rc), 0);
	assert_int_equal(backend_cache_wrap(rc, &f->be, &cached), 0);
	assert_int_equal(resident_of(cached, x, n), 0);
	assert_int_equal(prefetch_queue(pf, B, cached, x, n, "warm cache"), 0);
	wait_state(pf, B, PREFETCH_DONE, WAIT_MS);
	assert_int_equal(resident_of(cached, x, n), want);
	uint64_t all = 0;
	assert_int_equal(cached->ops->resident(cached, 0, size, &all), 0);
	assert_int_equal(all, want);

	prefetcher_free(pf);
	backend_close(cached);          /* and the fake */
	rcache_free(rc);
	backend_close(raw);
	unlink(path);
}

static int setup(void **state)
{
	log_set_level(LOG_ERR);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_whole),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_replace_running),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_failing_read),
		cmocka_unit_test(test_busy_pauses),
		cmocka_unit_test(test_cancel_paused),
		cmocka_unit_test(test_free_pending),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_warms),
		cmocka_unit_test(test_tap_passthrough),
		cmocka_unit_test(test_tap_records),
		cmocka_unit_test(test_tap_busy),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
