/*
 * prefetch.h - the one background reader of a daemon that warms boot
 * sets (issue 18): it reads a list of extents of a read-only backend (a
 * version's chain, or its read cache on Ceph) into memory - the page
 * cache of the files under it, or the shared read cache (cache.h) - so
 * that the PCs that boot next find their boot set there.
 *
 * Jobs: each has a KEY (the caller's: a version) and a list of extents
 * read in that order, one at a time (at most PREFETCH_MAX_READ bytes
 * each, into a scratch buffer that is thrown away).  Queued jobs run one
 * after another in the order queued.  Queueing a key that is queued or
 * running replaces that job (a running one stops after its current read).
 * A job ends when read whole, cancelled or at its first read error
 * (logged once; the next queueing tries again).
 *
 * Yielding: a PC must never wait for the prefetch.  Whoever serves PCs'
 * reads calls prefetch_note_busy at each read of a PC that is not
 * booting (a booting PC reads the boot set the prefetch is warming: that
 * is what it helps); the prefetcher then issues nothing for
 * PREFETCH_YIELD_NS after the latest such read, and looks again.  Every
 * read counts, not only slow ones: on a fast disk a PC at work loses as
 * much to the prefetch's share of the disk and the CPU as to a slow read,
 * and a rule of "reads over 2 ms" never sees it there.  So
 * while PCs work the prefetch waits for a pause of theirs; a boot set is
 * warmed at the quiet moments (night, lunch, a restart before the lab
 * comes in).
 *
 * Lifetime: the prefetcher borrows each job's backend.  The caller must
 * prefetch_cancel(key) before closing it (cancel waits until the job no
 * longer reads it).  chain_replace on a backend being prefetched is safe
 * (the chain waits for the read in progress).
 *
 * Threading: every call may come from any thread; none of them calls
 * back into the caller, so they may be made under the caller's locks.
 */
#ifndef PRISTINE_PREFETCH_H
#define PRISTINE_PREFETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/backend.h"
#include "storage/bootset.h"

#define PREFETCH_MAX_READ (1u << 20)
#define PREFETCH_YIELD_NS (200 * 1000000LL)       /* idle this long after a busy PC's read */
#define PREFETCH_STAMP_NS (1000000LL)             /* the busy stamp's resolution */

struct prefetcher;

enum prefetch_state {
	PREFETCH_NONE,                /* never queued (or forgotten) */
	PREFETCH_QUEUED,
	PREFETCH_RUNNING,
	PREFETCH_DONE,                /* every extent read */
	PREFETCH_CANCELLED,
	PREFETCH_FAILED,              /* a read failed (err) */
};

struct prefetch_status {
	enum prefetch_state state;
	uint64_t total_bytes;         /* of the job's extents */
	uint64_t done_bytes;          /* read so far */
	int64_t queued_ns, started_ns, ended_ns;   /* monotonic; 0 = not yet */
	int err;                      /* FAILED: the read's -errno */
};

struct prefetch_stats {
	uint64_t jobs_done;           /* jobs read whole */
	uint64_t bytes;               /* bytes read by every job */
	uint64_t yields;              /* times it paused for a busy PC */
	uint64_t yield_ns;            /* time spent paused */
};

/* A prefetcher with its thread started.  0 and *out, or -errno. */
int prefetcher_new(struct prefetcher **out);
/* Cancel every job, stop the thread, free.  NULL is a no-op. */
void prefetcher_free(struct prefetcher *pf);
/*
 * Queue reading x[0..n-1] (copied; each inside be, len <=
 * PREFETCH_MAX_READ) of be under key (not NULL); name is for the log.
 * Replaces key's job if any.  0 or -ENOMEM / -EINVAL.
 */
int prefetch_queue(struct prefetcher *pf, const void *key, struct backend *be,
		   const struct bootset_extent *x, uint32_t n, const char *name);
/* Cancel key's job (queued or running) and return once it no longer reads
 * its backend; its status says CANCELLED.  No job: nothing. */
void prefetch_cancel(struct prefetcher *pf, const void *key);
/* Forget key's status (after cancel: the key may be reused). */
void prefetch_forget(struct prefetcher *pf, const void *key);
/* key's job as it stands (state NONE when unknown). */
void prefetch_get_status(struct prefetcher *pf, const void *key, struct prefetch_status *out);
/* A PC that is not booting read at now_ns (see above).  Lock-free, and
 * the shared stamp is written at most once per PREFETCH_STAMP_NS (the
 * data path calls it at every read); pf NULL is a no-op. */
void prefetch_note_busy(struct prefetcher *pf, int64_t now_ns);
/* Whether no job is queued or running (tests, benches). */
bool prefetch_idle(struct prefetcher *pf);
void prefetch_get_stats(struct prefetcher *pf, struct prefetch_stats *out);
/* The state as a word for JSON and logs: "none", "queued", "running",
 * "done", "cancelled", "failed". */
const char *prefetch_state_name(enum prefetch_state s);

#endif
