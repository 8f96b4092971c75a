/*
 * prefetch.c - the background reader that warms boot sets (prefetch.h is
 * the contract).
 *
 * One thread, one mutex, one condition variable (on the monotonic clock).
 * Every key the caller ever queued has an ENTRY, kept until forgotten: its
 * status and, while it is queued or running, its JOB (the backend, a copy
 * of the extents, a name for the log).  The thread takes the queued entry
 * first in line, reads its job's extents one at a time into a scratch
 * buffer without the lock, and after each read looks whether the entry
 * still holds that job.
 *
 * States of an entry (under the lock):
 *   QUEUED     job set, waiting its turn (seq orders the line);
 *   RUNNING    job set, the thread reads it (reading == entry);
 *   DONE, FAILED, CANCELLED, or NONE never: job NULL.
 * The thread may go on holding the job it reads after the entry moved on
 * (replaced: the entry is QUEUED with a new job; cancelled: CANCELLED) -
 * until the end of the read in flight; then it frees that job itself, and
 * clears reading.  So whoever takes a job away from an entry frees it only
 * when it is not the one being read (reading_job), and prefetch_cancel
 * waits until reading is no longer its entry: then nothing reads the
 * backend any more.
 *
 * Order: a new key goes to the back of the line.  Queueing a key again
 * replaces its job where it stands: a queued job keeps its place, and a
 * running one is restarted (from its first extent) at the front, right
 * after its current read - it was the job being done, it stays next.
 *
 * Yielding: prefetch_note_busy keeps the newest busy stamp (a relaxed
 * atomic maximum, no lock); before each read the thread waits, in slices
 * of PF_NAP_NS on the condition variable (so cancel and free wake it),
 * while less than PREFETCH_YIELD_NS have passed since that stamp.  The
 * thread's own reads never stamp (pf_self), should they ever pass through
 * a tap.
 *
 * Errors: a failed read ends its job FAILED; it is logged as a warning the
 * first time a key fails with that error (again only after a job of the
 * key was read whole), later ones at debug level, so that a broken disk
 * queued at every start does not fill the log.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/prefetch.h"
#include "util/check.h"
#include "util/iostats.h"
#include "util/log.h"

#define PF_NAP_NS (5 * 1000000LL)          /* one slice of a pause */

struct pf_job {
	struct backend *be;             /* borrowed (prefetch.h: Lifetime) */
	struct bootset_extent *x;       /* own copy */
	uint32_t n;
	uint64_t total;                 /* bytes of x */
	char name[64];
};

struct pf_entry {
	const void *key;
	struct pf_entry *next;          /* every known key */
	struct prefetch_status st;
	struct pf_job *job;             /* QUEUED or RUNNING: the job; else NULL */
	int64_t seq;                    /* place in line while QUEUED (smallest first) */
	int logged_err;                 /* the last error logged as a warning, 0 none */
};

struct prefetcher {
	pthread_mutex_t mu;
	pthread_cond_t cv;              /* anything changed: work, cancel, end of a read, stop */
	pthread_t thread;
	bool stop;
	struct pf_entry *entries;
	int64_t back, front;            /* seq of the last at the back / first at the front */
	struct pf_entry *reading;       /* the entry whose job the thread holds, or NULL */
	struct pf_job *reading_job;     /* that job (perhaps no longer the entry's) */
	uint8_t *scratch;               /* PREFETCH_MAX_READ bytes, thrown away */
	struct prefetch_stats stats;
	_Atomic int64_t busy_ns;        /* newest busy stamp, 0 none (lock-free) */
};

/* Set on the prefetcher's thread: its reads are never "busy". */
static __thread bool pf_self;

/* Free a job (NULL is a no-op); its backend is borrowed. */
static void job_free(struct pf_job *j)
{
	if (!j)
		return;
	free(j->x);
	free(j);
}

/* key's entry, or NULL.  Lock held. */
static struct pf_entry *find(struct prefetcher *pf, const void *key)
{
	for (struct pf_entry *e = pf->entries; e; e = e->next)
		if (e->key == key)
			return e;
	return NULL;
}

/* Absolute monotonic time ns as a timespec for pthread_cond_timedwait. */
static struct timespec ts_of(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL };
	return ts;
}

/*
 * Take the job away from e (cancel or replace): free it unless the thread
 * is reading it (then the thread frees it after its read).  Lock held.
 */
static void drop_job(struct prefetcher *pf, struct pf_entry *e)
{
	struct pf_job *j = e->job;

	e->job = NULL;
	if (j && j != pf->reading_job)
		job_free(j);
}

/*
 * Before a read of job j of e: wait while a busy stamp is younger than
 * PREFETCH_YIELD_NS.  false when e no longer holds j or the thread must
 * stop (stop reading j at once).  Lock held (released while waiting).
 */
static bool wait_quiet(struct prefetcher *pf, struct pf_entry *e, struct pf_job *j)
{
	bool paused = false, go = true;
	int64_t t0 = 0, now = 0;

	for (;;) {
		if (e->job != j || pf->stop) {
			go = false;
			break;
		}
		now = iostats_now_ns();
		int64_t busy = atomic_load_explicit(&pf->busy_ns, memory_order_relaxed);
		if (busy == 0 || now - busy >= PREFETCH_YIELD_NS)
			break;
		if (!paused) {
			paused = true;
			t0 = now;
			pf->stats.yields++;
		}
		int64_t until = busy + PREFETCH_YIELD_NS;
		struct timespec ts = ts_of(until - now < PF_NAP_NS ? until : now + PF_NAP_NS);
		pthread_cond_timedwait(&pf->cv, &pf->mu, &ts);
	}
	if (paused)
		pf->stats.yield_ns += (uint64_t)(iostats_now_ns() - t0);
	return go;
}

/* e's job ended with a read error rc at off: FAILED, logged as the file's
 * header says.  Lock held. */
static void job_failed(struct prefetcher *pf, struct pf_entry *e, const struct pf_job *j,
		       uint64_t off, uint32_t len, int rc)
{
	e->st.state = PREFETCH_FAILED;
	e->st.err = rc;
	e->st.ended_ns = iostats_now_ns();
	if (e->logged_err != rc) {
		e->logged_err = rc;
		log_warn("prefetch %s: read of %u bytes at byte %llu failed: %s; stopped after %llu of %llu bytes",
			 j->name, len, (unsigned long long)off, strerror(-rc),
			 (unsigned long long)e->st.done_bytes, (unsigned long long)j->total);
	} else {
		log_debug("prefetch %s: read at byte %llu failed again: %s", j->name,
			  (unsigned long long)off, strerror(-rc));
	}
}

/*
 * Read e's job j (the thread's; reading set), extent by extent, the lock
 * dropped around each read.  Ends with e DONE or FAILED when e still holds
 * j, else as whoever took j away left it.  Lock held on entry and return.
 */
static void run_job(struct prefetcher *pf, struct pf_entry *e, struct pf_job *j)
{
	uint32_t i = 0;

	for (; i < j->n; i++) {
		if (!wait_quiet(pf, e, j))
			return;
		uint64_t off = j->x[i].off;
		uint32_t len = j->x[i].len;
		pthread_mutex_unlock(&pf->mu);
		int rc = j->be->ops->read(j->be, pf->scratch, off, len);
		pthread_mutex_lock(&pf->mu);
		if (rc == 0) {
			pf->stats.bytes += len;
			if (e->job == j)
				e->st.done_bytes += len;
		}
		if (e->job != j)
			return;         /* replaced or cancelled meanwhile */
		if (rc) {
			job_failed(pf, e, j, off, len, rc);
			e->job = NULL;
			return;
		}
	}
	e->st.state = PREFETCH_DONE;
	e->st.ended_ns = iostats_now_ns();
	e->logged_err = 0;
	e->job = NULL;
	pf->stats.jobs_done++;
	log_info("prefetch %s: %llu bytes in %.1f s", j->name, (unsigned long long)j->total,
		 (double)(e->st.ended_ns - e->st.started_ns) / 1e9);
}

/* The queued entry first in line, or NULL.  Lock held. */
static struct pf_entry *next_queued(struct prefetcher *pf)
{
	struct pf_entry *best = NULL;

	for (struct pf_entry *e = pf->entries; e; e = e->next)
		if (e->st.state == PREFETCH_QUEUED && (!best || e->seq < best->seq))
			best = e;
	return best;
}

/* The thread: jobs in line, one at a time, until stop. */
static void *pf_thread(void *arg)
{
	struct prefetcher *pf = arg;

	pf_self = true;
	pthread_setname_np(pthread_self(), "prefetch");
	pthread_mutex_lock(&pf->mu);
	while (!pf->stop) {
		struct pf_entry *e = next_queued(pf);
		if (!e) {
			pthread_cond_wait(&pf->cv, &pf->mu);
			continue;
		}
		struct pf_job *j = e->job;
		PR_ASSERT(j != NULL);
		e->st.state = PREFETCH_RUNNING;
		e->st.started_ns = iostats_now_ns();
		pf->reading = e;
		pf->reading_job = j;
		log_debug("prefetch %s: %u reads, %llu bytes", j->name, j->n,
			  (unsigned long long)j->total);
		run_job(pf, e, j);
		pf->reading = NULL;
		pf->reading_job = NULL;
		if (e->job != j)
			job_free(j);    /* ended, replaced or cancelled: no one else has it */
		pthread_cond_broadcast(&pf->cv);
	}
	pthread_mutex_unlock(&pf->mu);
	return NULL;
}

/* See prefetch.h. */
int prefetcher_new(struct prefetcher **out)
{
	struct prefetcher *pf;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	*out = NULL;
	if (!(pf = calloc(1, sizeof(*pf))))
		return -ENOMEM;
	if (!(pf->scratch = aligned_alloc(4096, PREFETCH_MAX_READ))) {
		free(pf);
		return -ENOMEM;
	}
	pthread_mutex_init(&pf->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pf->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&pf->busy_ns, 0);
	/* The thread takes no signals (the daemon handles them on its main
	 * thread through a signalfd). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&pf->thread, NULL, pf_thread, pf);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		pthread_cond_destroy(&pf->cv);
		pthread_mutex_destroy(&pf->mu);
		free(pf->scratch);
		free(pf);
		return rc;
	}
	*out = pf;
	return 0;
}

/* Cancel e's job, queued or running, and wait until the thread no longer
 * reads it.  Lock held. */
static void cancel_locked(struct prefetcher *pf, struct pf_entry *e)
{
	if (e->job) {
		e->st.state = PREFETCH_CANCELLED;
		e->st.ended_ns = iostats_now_ns();
		drop_job(pf, e);
		pthread_cond_broadcast(&pf->cv);
	}
	while (pf->reading == e)
		pthread_cond_wait(&pf->cv, &pf->mu);
}

/* See prefetch.h. */
void prefetcher_free(struct prefetcher *pf)
{
	if (!pf)
		return;
	pthread_mutex_lock(&pf->mu);
	for (struct pf_entry *e = pf->entries; e; e = e->next)
		cancel_locked(pf, e);
	pf->stop = true;
	pthread_cond_broadcast(&pf->cv);
	pthread_mutex_unlock(&pf->mu);
	pthread_join(pf->thread, NULL);
	for (struct pf_entry *e = pf->entries, *next; e; e = next) {
		next = e->next;
		job_free(e->job);
		free(e);
	}
	pthread_cond_destroy(&pf->cv);
	pthread_mutex_destroy(&pf->mu);
	free(pf->scratch);
	free(pf);
}

/* A job of x[0..n) of be, checked (each extent non-empty, at most
 * PREFETCH_MAX_READ, inside be).  0 and *out, -EINVAL or -ENOMEM. */
static int job_new(struct backend *be, const struct bootset_extent *x, uint32_t n,
		   const char *name, struct pf_job **out)
{
	struct pf_job *j;
	uint64_t total = 0;

	*out = NULL;
	if (!be || !be->ops || !be->ops->read || (n > 0 && !x))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (x[i].len == 0 || x[i].len > PREFETCH_MAX_READ || x[i].off > be->size ||
		    x[i].len > be->size - x[i].off)
			return -EINVAL;
		total += x[i].len;
	}
	if (!(j = calloc(1, sizeof(*j))))
		return -ENOMEM;
	if (n > 0 && !(j->x = malloc((size_t)n * sizeof(*x)))) {
		free(j);
		return -ENOMEM;
	}
	if (n > 0)
		memcpy(j->x, x, (size_t)n * sizeof(*x));
	j->be = be;
	j->n = n;
	j->total = total;
	snprintf(j->name, sizeof(j->name), "%s", name ? name : be->name);
	*out = j;
	return 0;
}

/* See prefetch.h. */
int prefetch_queue(struct prefetcher *pf, const void *key, struct backend *be,
		   const struct bootset_extent *x, uint32_t n, const char *name)
{
	struct pf_job *j;
	struct pf_entry *e;
	int rc;

	if (!pf || !key)
		return -EINVAL;
	if ((rc = job_new(be, x, n, name, &j)) < 0)
		return rc;
	pthread_mutex_lock(&pf->mu);
	if (!(e = find(pf, key))) {
		if (!(e = calloc(1, sizeof(*e)))) {
			pthread_mutex_unlock(&pf->mu);
			job_free(j);
			return -ENOMEM;
		}
		e->key = key;
		e->next = pf->entries;
		pf->entries = e;
	}
	if (e->st.state == PREFETCH_QUEUED)
		;                               /* keeps its place in line */
	else if (e->st.state == PREFETCH_RUNNING)
		e->seq = --pf->front;           /* restarted next */
	else
		e->seq = ++pf->back;
	drop_job(pf, e);
	e->job = j;
	memset(&e->st, 0, sizeof(e->st));
	e->st.state = PREFETCH_QUEUED;
	e->st.total_bytes = j->total;
	e->st.queued_ns = iostats_now_ns();
	pthread_cond_broadcast(&pf->cv);
	pthread_mutex_unlock(&pf->mu);
	return 0;
}

/* See prefetch.h. */
void prefetch_cancel(struct prefetcher *pf, const void *key)
{
	struct pf_entry *e;

	pthread_mutex_lock(&pf->mu);
	if ((e = find(pf, key)))
		cancel_locked(pf, e);
	pthread_mutex_unlock(&pf->mu);
}

/* See prefetch.h.  A job still queued or running is cancelled first
 * (cancelling may wait with the lock released: look again after it). */
void prefetch_forget(struct prefetcher *pf, const void *key)
{
	struct pf_entry *e;

	pthread_mutex_lock(&pf->mu);
	while ((e = find(pf, key))) {
		if (e->job || pf->reading == e) {
			cancel_locked(pf, e);
			continue;
		}
		struct pf_entry **pp = &pf->entries;
		while (*pp != e)
			pp = &(*pp)->next;
		*pp = e->next;
		free(e);
		break;
	}
	pthread_mutex_unlock(&pf->mu);
}

/* See prefetch.h. */
void prefetch_get_status(struct prefetcher *pf, const void *key, struct prefetch_status *out)
{
	struct pf_entry *e;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&pf->mu);
	if ((e = find(pf, key)))
		*out = e->st;
	pthread_mutex_unlock(&pf->mu);
}

/* See prefetch.h. */
void prefetch_note_busy(struct prefetcher *pf, int64_t now_ns)
{
	if (!pf || pf_self)
		return;
	int64_t cur = atomic_load_explicit(&pf->busy_ns, memory_order_relaxed);
	if (now_ns - cur < PREFETCH_STAMP_NS)
		return;         /* fresh enough: no write to the shared line */
	while (now_ns > cur &&
	       !atomic_compare_exchange_weak_explicit(&pf->busy_ns, &cur, now_ns, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/* See prefetch.h. */
bool prefetch_idle(struct prefetcher *pf)
{
	bool idle;

	pthread_mutex_lock(&pf->mu);
	idle = pf->reading == NULL;
	for (struct pf_entry *e = pf->entries; e && idle; e = e->next)
		idle = e->job == NULL;
	pthread_mutex_unlock(&pf->mu);
	return idle;
}

/* See prefetch.h. */
void prefetch_get_stats(struct prefetcher *pf, struct prefetch_stats *out)
{
	pthread_mutex_lock(&pf->mu);
	*out = pf->stats;
	pthread_mutex_unlock(&pf->mu);
}

/* See prefetch.h. */
const char *prefetch_state_name(enum prefetch_state s)
{
	switch (s) {
	case PREFETCH_NONE:
		return "none";
	case PREFETCH_QUEUED:
		return "queued";
	case PREFETCH_RUNNING:
		return "running";
	case PREFETCH_DONE:
		return "done";
	case PREFETCH_CANCELLED:
		return "cancelled";
	case PREFETCH_FAILED:
		return "failed";
	}
	return "unknown";
}
