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
#include <time.h>
#include <unistd.h>

#include "storage/backend.h"
#include "storage/prefetch.h"
#include "util/iostats.h"
#include "util/log.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define MAX_LOG 4096

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
	wait_state(pf, A, PREFETCH_DONE, 5000);
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
	wait_state(pf, A, PREFETCH_DONE, 5000);
	wait_state(pf, B, PREFETCH_DONE, 5000);
	wait_state(pf, C, PREFETCH_DONE, 5000);
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
	wait_state(pf, B, PREFETCH_DONE, 5000);
	wait_state(pf, A, PREFETCH_DONE, 5000);
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
	sleep_ms(100);
	assert_false(cancel_done(&c));          /* the read is still held */
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.state, PREFETCH_CANCELLED);
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
	wait_state(pf, B, PREFETCH_DONE, 5000);
	wait_state(pf, A, PREFETCH_DONE, 5000);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.done_bytes, 4 * 64 * KIB);

	/* Kept until forget; then unknown, and the key may be used again. */
	prefetch_forget(pf, A);
	prefetch_get_status(pf, A, &s);
	assert_int_equal(s.state, PREFETCH_NONE);
	prefetch_get_status(pf, B, &s);
	assert_int_equal(s.state, PREFETCH_DONE);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 1, "a again"), 0);
	wait_state(pf, A, PREFETCH_DONE, 5000);
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
	sleep_ms(50);
	assert_false(cancel_done(&c));          /* waits for the read held */
	prefetch_get_status(pf, C, &s);
	assert_int_equal(s.state, PREFETCH_CANCELLED);
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
	wait_state(pf, A, PREFETCH_FAILED, 5000);
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
	wait_state(pf, A, PREFETCH_FAILED, 5000);
	/* ... and once the disk reads again, the job is read whole. */
	pthread_mutex_lock(&f->mu);
	f->fail_err = 0;
	pthread_mutex_unlock(&f->mu);
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 10, "failing"), 0);
	wait_state(pf, A, PREFETCH_DONE, 5000);
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
	prefetch_note_busy(pf, iostats_now_ns());
	int64_t t0 = iostats_now_ns();
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 40, "busy"), 0);
	while (iostats_now_ns() - t0 < 1000000000LL) {
		prefetch_note_busy(pf, iostats_now_ns());
		/* An older stamp never moves the newest back. */
		prefetch_note_busy(pf, iostats_now_ns() - PREFETCH_YIELD_NS);
		sleep_ms(50);
	}
	prefetch_get_status(pf, A, &s);
	/* A stamp 50 ms apart holds it for 200 ms: allow one read slipping
	 * through should this thread be descheduled that long. */
	assert_true(nlog(f) <= 1);
	assert_true(s.state == PREFETCH_QUEUED || s.state == PREFETCH_RUNNING);
	int64_t stopped = iostats_now_ns();
	wait_state(pf, A, PREFETCH_DONE, 5000);
	prefetch_get_status(pf, A, &s);
	/* Not before the last stamp's pause ran out. */
	assert_true(s.ended_ns - stopped >= PREFETCH_YIELD_NS - 60000000LL);
	assert_int_equal(nlog(f), 40);
	prefetch_get_stats(pf, &st);
	assert_true(st.yields >= 1);
	assert_true(st.yield_ns >= 800000000ull);
	assert_int_equal(st.jobs_done, 1);

	/* The prefetch thread's own stamps (a read of it passing through a
	 * tap) never make it pause. */
	struct prefetch_stats st0 = st;
	pthread_mutex_lock(&f->mu);
	f->stamp = pf;
	pthread_mutex_unlock(&f->mu);
	assert_int_equal(prefetch_queue(pf, B, &f->be, x, 40, "self"), 0);
	wait_state(pf, B, PREFETCH_DONE, 1000);
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
	prefetch_note_busy(pf, iostats_now_ns() + 10 * PREFETCH_YIELD_NS);   /* a long pause */
	assert_int_equal(prefetch_queue(pf, A, &f->be, x, 4, "paused"), 0);
	wait_state(pf, A, PREFETCH_RUNNING, 5000);
	sleep_ms(20);
	int64_t t0 = iostats_now_ns();
	prefetch_cancel(pf, A);
	assert_true(iostats_now_ns() - t0 < PREFETCH_YIELD_NS / 2);
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
	sleep_ms(50);
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
	wait_state(pf, A, PREFETCH_DONE, 5000);
	assert_int_equal(nlog(f), 0);
	prefetcher_free(pf);
	backend_close(&f->be);
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
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
