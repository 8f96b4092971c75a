/*
 * backend.h - the block storage interface behind a SCSI logical unit.
 *
 * A backend is a byte-addressed store of fixed size.  The SCSI layer
 * validates every LBA range against the size before calling in, so
 * backends may assume off + len <= size.  Calls may come from several
 * threads at once (one per connection); a backend must be safe for that.
 *
 * Errors: every call returns 0 on success or a negative errno.  The SCSI
 * layer maps -ENOSPC/-EDQUOT to SPACE ALLOCATION FAILED, -EROFS to WRITE
 * PROTECTED and anything else to a MEDIUM/HARDWARE error.
 */
#ifndef PRISTINE_BACKEND_H
#define PRISTINE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Rate limit for I/O error log lines: a client retrying a bad sector, or
 * a full store refusing every write, must not flood the log.  At most
 * IO_RL_BURST lines per IO_RL_WINDOW_S seconds per limiter pass; the
 * number held back since the last line that passed is put in *dropped
 * (may be NULL).  Lock-free; a zeroed struct is ready to use.
 */
#define IO_RL_BURST    5u
#define IO_RL_WINDOW_S 10

struct io_ratelimit {
	int64_t window;         /* time(NULL) / IO_RL_WINDOW_S of the current burst */
	unsigned count;         /* lines let through in it */
	unsigned dropped;       /* lines held back since the last one let through */
};

static inline bool ratelimit_ok(struct io_ratelimit *rl, unsigned *dropped)
{
	int64_t now = (int64_t)time(NULL) / IO_RL_WINDOW_S;
	int64_t w = __atomic_load_n(&rl->window, __ATOMIC_RELAXED);

	if (w != now && __atomic_compare_exchange_n(&rl->window, &w, now, false,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		__atomic_store_n(&rl->count, 0, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&rl->count, 1, __ATOMIC_RELAXED) > IO_RL_BURST) {
		__atomic_add_fetch(&rl->dropped, 1, __ATOMIC_RELAXED);
		return false;
	}
	unsigned d = __atomic_exchange_n(&rl->dropped, 0, __ATOMIC_RELAXED);
	if (dropped)
		*dropped = d;
	return true;
}

struct backend;

struct backend_ops {
	/* Read len bytes at off into buf (caller owns buf). */
	int (*read)(struct backend *be, void *buf, uint64_t off, size_t len);
	/* The same bytes, moved into the pipe pipe_wr by reference
	 * (util/splice.h) instead of copied: for Data-In from the page
	 * cache.  The pipe must have room for len bytes.  On any error
	 * (-EOPNOTSUPP: a backend read through cannot) the pipe may hold
	 * part of the range: the caller discards the pipe and reads the
	 * range with read, whose result counts - so this logs nothing.
	 * NULL: never can. */
	int (*splice_read)(struct backend *be, int pipe_wr, uint64_t off, size_t len);
	/* Write len bytes from buf at off.  fua: durable before return. */
	int (*write)(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua);
	/* Make every completed write durable. */
	int (*flush)(struct backend *be);
	/* Release [off, off+len); afterwards the range reads as zeros.
	 * NULL if the backend cannot unmap. */
	int (*unmap)(struct backend *be, uint64_t off, uint64_t len);
	/* Release all resources; be is freed. */
	void (*close)(struct backend *be);
	/* Allocation state at off: sets *mapped and *run, the number of
	 * bytes from off (1..len) that share that state.  NULL if the
	 * backend cannot tell (everything then counts as mapped). */
	int (*block_status)(struct backend *be, uint64_t off, uint64_t len,
			    uint64_t *run, bool *mapped);
	/* Bytes of [off, off+len) held in memory now - the page cache of the
	 * files read (mincore), or a read cache's chunks - so that a read of
	 * them needs no storage I/O; ranges that read as zeros without I/O
	 * count as held.  An estimate (the kernel may drop pages at once).
	 * NULL if the backend cannot tell (warm boots: prefetch.h). */
	int (*resident)(struct backend *be, uint64_t off, uint64_t len, uint64_t *bytes);
};

struct backend {
	const struct backend_ops *ops;
	uint64_t size;          /* bytes */
	bool read_only;         /* writes/unmaps will fail with -EROFS */
	char name[64];          /* for logs */
	struct io_ratelimit err_rl;     /* for the backend's own error logs */
};

/*
 * Open a raw image file or block device.  writable=false opens O_RDONLY,
 * so not even a bug in the SCSI layer can change the file.  On success
 * *out is a new backend owned by the caller (release with backend_close).
 * Returns 0 or -errno; a message is logged on failure.
 */
int backend_raw_open(const char *path, bool writable, struct backend **out);

static inline void backend_close(struct backend *be)
{
	if (be)
		be->ops->close(be);
}

#endif
