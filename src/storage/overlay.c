/*
 * overlay.c - one client's copy-on-write overlay over a read-only golden
 * image (overlay.h is the contract, docs/overlay-format.md the format):
 * the public calls, the read/write/unmap/flush paths, space accounting,
 * and constant-time reset.
 *
 * Data: `data` is a sparse file as large as the golden image, mapped
 * one-to-one (virtual offset == file offset), so block-aligned writes
 * need neither an allocation table nor a copy.  Each G-block has a state
 * (overlay_map.c): ABSENT reads golden, PRESENT reads data, ZERO reads
 * zeros (its data range punched out).
 *
 * State machine of one block (-> in memory; made durable by a flush):
 *   ABSENT  --write (whole block, or copy-up of golden + part)--> PRESENT
 *   ZERO    --write (whole block, or zeros + part)-------------->  PRESENT
 *   PRESENT --write--> PRESENT (in place)
 *   any     --unmap of the whole block (punch)------------------>  ZERO
 *
 * Concurrency: one mutex (ov->lock) guards the map, the range list and
 * the space counters; it is never held across I/O.  Every write and unmap
 * first takes its block range [b0, b1] (a range lock: it waits while an
 * overlapping range is in flight).  This is stronger than striped
 * copy-up mutexes and needed: a copy-up rewrites the whole block with old
 * content around the new part, so a concurrent whole-block write to the
 * same block could otherwise be overwritten by stale golden bytes.
 * Non-overlapping requests still run in parallel; reads take no range.
 *
 * Flush: snapshot the changed states (under the lock), fsync(data), and
 * only then append the log record (overlay_meta.c): metadata never names
 * data that was not durable first.  A state is set in memory only after
 * its data operation completed, so the snapshot never names data written
 * after the fsync.  A failed data write (other than lack of space) or
 * any failed sync makes the overlay sticky-failed: writes and flushes
 * return -EIO from then on, reads keep working.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/overlay_int.h"
#include "util/check.h"
#include "util/log.h"
#include "util/events.h"
#include "util/splice.h"

#define FS_REFRESH_NS    (100u * 1000u * 1000u)
#define FS_REFRESH_BYTES (64ull << 20)

/* A flush of a map with at most this many allocated leaves (256 MiB of
 * written disk at G=4K) walks the whole map in debug builds. */
#define CHECK_FLUSH_LEAVES 64u

static struct overlay *ov_of(struct backend *be)
{
	return (struct overlay *)be;
}

static uint64_t blk_start(const struct overlay *ov, uint64_t b)
{
	return b * ov->bs;
}

/* End of block b: the last block may be short when size % G != 0. */
static uint64_t blk_end(const struct overlay *ov, uint64_t b)
{
	uint64_t e = (b + 1) * ov->bs;
	return e < ov->size ? e : ov->size;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Enter the sticky error state with rc (first error wins); returns rc. */
static int stick(struct overlay *ov, int rc, const char *what)
{
	int zero = 0;

	if (__atomic_compare_exchange_n(&ov->error, &zero, rc, false, __ATOMIC_SEQ_CST,
					__ATOMIC_SEQ_CST)) {
		__atomic_store_n(&ov->error_what, what, __ATOMIC_RELEASE);
		log_err("overlay %s: %s failed: %s; writes and flushes refused, reads go on; "
			"what was flushed before is safe on disk: restart pristined to reopen "
			"the overlay (a client reset discards it)", ov->dir, what, strerror(-rc));
		events_add(EV_ERROR, NULL, NULL, "overlay %s: %s failed (%s): writes refused until "
			   "a reset or a restart", ov->dir, what, strerror(-rc));
	}
	return rc;
}

/* -EIO when the overlay is in the sticky error state, else 0. */
static int sticky(const struct overlay *ov)
{
	return __atomic_load_n(&ov->error, __ATOMIC_SEQ_CST) ? -EIO : 0;
}

/* Warn once each time usage crosses 80% of the quota.  Lock held. */
static void quota_watch(struct overlay *ov)
{
	bool over = ov->quota && ov->used / 4 >= ov->quota / 5;

	if (over && !ov->quota_warned)
		log_warn("overlay %s: %llu of %llu quota bytes used (80%% reached)", ov->dir,
			 (unsigned long long)ov->used, (unsigned long long)ov->quota);
	ov->quota_warned = over;
}

/*
 * Account bytes of new space before anything is written: -ENOSPC when
 * the quota or the store's free-space floor would be crossed.  The
 * file system's free space is read at most every 100 ms or 64 MiB.
 * Lock held.
 */
static int space_reserve(struct overlay *ov, uint64_t bytes)
{
	if (bytes == 0)
		return 0;
	if (ov->quota && (ov->used > ov->quota || bytes > ov->quota - ov->used))
		return -ENOSPC;
	if (ov->floor) {
		uint64_t now = now_ns(), avail;
		if (ov->fs_stamp_ns == 0 || now - ov->fs_stamp_ns > FS_REFRESH_NS ||
		    ov->fs_alloc_since > FS_REFRESH_BYTES) {
			if (ov->io->fs_free(ov->io->ctx, ov->datafd, &avail) == 0) {
				ov->fs_avail = avail;
				ov->fs_stamp_ns = now;
				ov->fs_alloc_since = 0;
			}
		}
		uint64_t need = ov->fs_alloc_since + bytes + ov->floor;
		if (need < bytes || ov->fs_avail < need)
			return -ENOSPC;
	}
	ov->used += bytes;
	ov->fs_alloc_since += bytes;
	quota_watch(ov);
	return 0;
}

/* Give back bytes of space (unmapped, or a reservation not used).  Lock held. */
static void space_release(struct overlay *ov, uint64_t bytes)
{
	ov->used -= bytes < ov->used ? bytes : ov->used;
	ov->fs_alloc_since -= bytes < ov->fs_alloc_since ? bytes : ov->fs_alloc_since;
	quota_watch(ov);
}

/* Take block range r, waiting while an overlapping one is in flight. */
static void range_acquire(struct overlay *ov, struct ovl_range *r)
{
	pthread_mutex_lock(&ov->lock);
	for (;;) {
		struct ovl_range *o = ov->ranges;
		while (o && (o->b1 < r->b0 || o->b0 > r->b1))
			o = o->next;
		if (!o)
			break;
		pthread_cond_wait(&ov->range_cv, &ov->lock);
	}
	r->next = ov->ranges;
	ov->ranges = r;
	pthread_mutex_unlock(&ov->lock);
}

/* Whether a range in flight covers blocks [b0, b1] (I2: a map update
 * happens with the range of its data operation held).  Lock held. */
static bool range_held(const struct overlay *ov, uint64_t b0, uint64_t b1)
{
	for (const struct ovl_range *o = ov->ranges; o; o = o->next)
		if (o->b0 <= b0 && b1 <= o->b1)
			return true;
	return false;
}

static void range_release(struct overlay *ov, struct ovl_range *r)
{
	pthread_mutex_lock(&ov->lock);
	struct ovl_range **pp = &ov->ranges;
	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	pthread_cond_broadcast(&ov->range_cv);
	pthread_mutex_unlock(&ov->lock);
}

/* Write to data; a failure other than lack of space goes sticky. */
static int data_write(struct overlay *ov, const void *buf, size_t len, uint64_t off)
{
	int rc = ovl_write_full(ov->io, ov->datafd, buf, len, off);
	if (rc < 0 && rc != -ENOSPC && rc != -EDQUOT)
		stick(ov, rc, "data write");
	return rc;
}

/*
 * Write block b (state st, ABSENT or ZERO) whole: its old content with
 * [off, off+len) replaced by src (NULL: zeros).  The block's range is held.
 */
static int copy_up(struct overlay *ov, uint64_t b, enum ovl_state st, const uint8_t *src,
		   uint64_t off, size_t len)
{
	uint64_t bs = blk_start(ov, b), be = blk_end(ov, b);
	uint8_t *tmp = malloc(be - bs);
	int rc = 0;

	if (!tmp)
		return -ENOMEM;
	if (st == OVL_ABSENT)
		rc = ov->golden->ops->read(ov->golden, tmp, bs, be - bs);
	else
		memset(tmp, 0, be - bs);
	if (rc < 0)
		goto out;
	uint64_t lo = off > bs ? off : bs, hi = off + len < be ? off + len : be;
	if (src)
		memcpy(tmp + (lo - bs), src + (lo - off), hi - lo);
	else
		memset(tmp + (lo - bs), 0, hi - lo);
	rc = data_write(ov, tmp, be - bs, bs);
out:
	free(tmp);
	return rc;
}

/*
 * Write [off, off+len) from buf (NULL: zeros) with its block range held:
 * reserve new space, copy up partial edge blocks that are not PRESENT,
 * write the rest in place, then mark every touched block PRESENT.
 */
static int write_locked(struct overlay *ov, const uint8_t *buf, uint64_t off, size_t len)
{
	uint64_t b0 = off / ov->bs, b1 = (off + len - 1) / ov->bs;
	uint8_t *zeros = NULL;
	int rc;

	pthread_mutex_lock(&ov->lock);
	enum ovl_state st0 = ovl_map_get(&ov->map, b0), st1 = ovl_map_get(&ov->map, b1);
	uint64_t fresh = (b1 - b0 + 1) - ovl_map_count(&ov->map, b0, b1 - b0 + 1, OVL_PRESENT);
	rc = space_reserve(ov, fresh * ov->bs);
	pthread_mutex_unlock(&ov->lock);
	if (rc < 0)
		return rc;

	bool head_part = off > blk_start(ov, b0) || off + len < blk_end(ov, b0);
	bool tail_part = b1 != b0 && off + len < blk_end(ov, b1);
	uint64_t p = off, q = off + len;
	if (head_part && st0 != OVL_PRESENT) {
		rc = copy_up(ov, b0, st0, buf, off, len);
		p = blk_end(ov, b0);
	}
	if (rc == 0 && tail_part && st1 != OVL_PRESENT) {
		rc = copy_up(ov, b1, st1, buf, off, len);
		q = blk_start(ov, b1);
	}
	if (rc == 0 && p < q) {
		if (!buf) {
			zeros = calloc(1, q - p);
			if (!zeros)
				rc = -ENOMEM;
		}
		if (rc == 0)
			rc = data_write(ov, buf ? buf + (p - off) : zeros, q - p, p);
	}
	pthread_mutex_lock(&ov->lock);
	if (rc < 0) {
		space_release(ov, fresh * ov->bs);
	} else {
		/* I2: the data is written; the range is still ours. */
		PR_ASSERT(range_held(ov, b0, b1));
		rc = ovl_map_set(&ov->map, b0, b1 - b0 + 1, OVL_PRESENT, true);
		if (rc < 0)
			stick(ov, rc, "map update");
		else
			PR_ASSERT(ovl_map_count(&ov->map, b0, b1 - b0 + 1, OVL_PRESENT) == b1 - b0 + 1);
	}
	pthread_mutex_unlock(&ov->lock);
	free(zeros);
	return rc;
}

static int ovl_flush(struct overlay *ov, bool closing);

/* The SCSI layer checks ranges; this keeps a bug there out of the map. */
static bool bad_range(const struct overlay *ov, uint64_t off, uint64_t len)
{
	return off > ov->size || len > ov->size - off;
}

/* backend write: see backend.h.  fua flushes the whole overlay. */
static int ovl_be_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	struct overlay *ov = ov_of(be);
	int rc = sticky(ov);

	if (rc == 0 && bad_range(ov, off, len))
		rc = -EINVAL;
	if (rc < 0 || len == 0)
		return rc == 0 && fua ? ovl_flush(ov, false) : rc;
	struct ovl_range r = { off / ov->bs, (off + len - 1) / ov->bs, NULL };
	range_acquire(ov, &r);
	rc = write_locked(ov, buf, off, len);
	range_release(ov, &r);
	if (rc == 0 && fua)
		rc = ovl_flush(ov, false);
	return rc;
}

/* Where the bytes of a read go: a buffer, or a pipe (buf NULL). */
struct read_sink {
	uint8_t *buf;
	int pipe_wr;
};

/* n bytes at off, all of state st, into the sink. */
static int read_run(struct overlay *ov, struct read_sink *s, enum ovl_state st, uint64_t off,
		    size_t n)
{
	struct backend *g = ov->golden;
	int rc;

	if (!s->buf) {
		if (st == OVL_ABSENT)
			return g->ops->splice_read ? g->ops->splice_read(g, s->pipe_wr, off, n)
						   : -EOPNOTSUPP;
		if (st == OVL_PRESENT)
			return ov->io->splice ? ov->io->splice(ov->io->ctx, ov->datafd, s->pipe_wr, n, off)
					      : -EOPNOTSUPP;
		return splice_zeros(s->pipe_wr, n);
	}
	if (st == OVL_ABSENT) {
		rc = g->ops->read(g, s->buf, off, n);
	} else if (st == OVL_PRESENT) {
		rc = ovl_read_full(ov->io, ov->datafd, s->buf, n, off);
		unsigned dropped = 0;
		if (rc < 0 && ratelimit_ok(&ov->be.err_rl, &dropped))
			log_err("overlay %s: read of %zu bytes of data at byte %llu failed: %s%s",
				ov->dir, n, (unsigned long long)off, strerror(-rc),
				dropped ? " (more read errors were not logged)" : "");
	} else {
		memset(s->buf, 0, n);
		rc = 0;
	}
	s->buf += n;
	return rc;
}

/* A read: each run of blocks from where its state says. */
static int read_runs(struct overlay *ov, struct read_sink *s, uint64_t off, size_t len)
{
	if (bad_range(ov, off, len))
		return -EINVAL;
	while (len > 0) {
		uint64_t b = off / ov->bs, last = (off + len - 1) / ov->bs;
		enum ovl_state st;
		pthread_mutex_lock(&ov->lock);
		uint64_t run = ovl_map_run(&ov->map, b, last - b + 1, &st);
		pthread_mutex_unlock(&ov->lock);
		uint64_t end = blk_end(ov, b + run - 1);
		size_t n = end < off + len ? (size_t)(end - off) : len;
		int rc = read_run(ov, s, st, off, n);
		if (rc < 0)
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

static int ovl_be_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	struct read_sink s = { .buf = buf, .pipe_wr = -1 };

	return read_runs(ov_of(be), &s, off, len);
}

static int ovl_be_splice_read(struct backend *be, int pipe_wr, uint64_t off, size_t len)
{
	struct read_sink s = { .buf = NULL, .pipe_wr = pipe_wr };

	return read_runs(ov_of(be), &s, off, len);
}

/* Zero [off, off+len) inside block b, which is only partly unmapped. */
static int zero_partial(struct overlay *ov, uint64_t b, uint64_t off, uint64_t len)
{
	pthread_mutex_lock(&ov->lock);
	enum ovl_state st = ovl_map_get(&ov->map, b);
	pthread_mutex_unlock(&ov->lock);
	if (st == OVL_ZERO)
		return 0;
	return write_locked(ov, NULL, off, (size_t)len);
}

/*
 * backend unmap: whole blocks are punched out of data and become ZERO
 * (their space is given back); partial blocks at the edges get zeros
 * written, which may need space (copy-up of an ABSENT block).  Afterwards
 * the whole range reads as zeros.
 */
static int ovl_be_unmap(struct backend *be, uint64_t off, uint64_t len)
{
	struct overlay *ov = ov_of(be);
	int rc = sticky(ov);

	if (rc == 0 && bad_range(ov, off, len))
		rc = -EINVAL;
	if (rc < 0 || len == 0)
		return rc;
	uint64_t b0 = off / ov->bs, b1 = (off + len - 1) / ov->bs;
	uint64_t fb = off == blk_start(ov, b0) ? b0 : b0 + 1;
	uint64_t lb = off + len >= blk_end(ov, b1) ? b1 + 1 : b1;    /* exclusive */
	struct ovl_range r = { b0, b1, NULL };

	range_acquire(ov, &r);
	if (fb > b0) {
		uint64_t e = off + len < blk_end(ov, b0) ? off + len : blk_end(ov, b0);
		rc = zero_partial(ov, b0, off, e - off);
	}
	if (rc == 0 && lb <= b1 && (b1 != b0 || fb == b0)) {
		uint64_t s = off > blk_start(ov, b1) ? off : blk_start(ov, b1);
		rc = zero_partial(ov, b1, s, off + len - s);
	}
	if (rc < 0 || fb >= lb)
		goto out;
	pthread_mutex_lock(&ov->lock);
	uint64_t held = ovl_map_count(&ov->map, fb, lb - fb, OVL_PRESENT);
	uint64_t zero = ovl_map_count(&ov->map, fb, lb - fb, OVL_ZERO);
	pthread_mutex_unlock(&ov->lock);
	if (zero < lb - fb) {
		rc = ov->io->punch(ov->io->ctx, ov->datafd, blk_start(ov, fb),
				   blk_end(ov, lb - 1) - blk_start(ov, fb));
		/* Where punching is unsupported the state alone makes the
		 * range read zeros; only the space is not given back. */
		if (rc == -EOPNOTSUPP)
			rc = 0;
		if (rc < 0)
			goto out;
	}
	pthread_mutex_lock(&ov->lock);
	/* I2: punched (or the state alone reads zeros); the range is ours. */
	PR_ASSERT(range_held(ov, fb, lb - 1));
	rc = ovl_map_set(&ov->map, fb, lb - fb, OVL_ZERO, true);
	if (rc < 0)
		stick(ov, rc, "map update");
	else
		PR_ASSERT(ovl_map_count(&ov->map, fb, lb - fb, OVL_ZERO) == lb - fb);
	space_release(ov, held * ov->bs);
	pthread_mutex_unlock(&ov->lock);
out:
	range_release(ov, &r);
	return rc;
}

/* Lack of space: the store or a quota is full, nothing is broken. */
static bool no_space(int rc)
{
	return rc == -ENOSPC || rc == -EDQUOT;
}

/*
 * Make every completed write durable: snapshot the changed states, sync
 * data, then log them (or, when the log is long or closing, write a
 * checkpoint).  Returns 0, -EIO when already failed, or the error that
 * made the overlay fail now.
 *
 * A store too full for the metadata is not a failure of the overlay:
 * when a checkpoint cannot be written for lack of space (nothing was
 * renamed) the runs go to the log instead, and when the log append
 * cannot get space either (it is cut back to where it was) the runs are
 * marked dirty again and -ENOSPC returned: the flush did not happen, the
 * overlay stays usable, and a later flush, once space was freed, logs
 * the same blocks.  Any other failure is sticky.
 */
static int ovl_flush(struct overlay *ov, bool closing)
{
	struct ovl_run *runs = NULL;
	uint8_t *body = NULL;
	size_t nruns = 0, blen = 0;
	uint32_t nent = 0;
	bool unchanged = false;
	int rc;

	pthread_mutex_lock(&ov->flush_lock);
	rc = sticky(ov);
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&ov->lock);
	ov->data_synced = false;        /* I1: what the snapshot names is not durable yet */
	rc = ovl_map_take_dirty(&ov->map, &runs, &nruns);
	bool ckpt = (ov->log_end >= ov->ckpt_bytes && ov->log_end >= ov->ckpt_defer) ||
		    (closing && (nruns > 0 || ov->log_end > OVL_LOG_HDR));
	if (rc == 0 && ckpt)
		rc = ovl_map_serialize(&ov->map, &body, &blen, &nent);
	if (PR_DEBUG_BUILD && rc == 0 && (ckpt || ov->map.leaves_alloc <= CHECK_FLUSH_LEAVES))
		PR_CHECK(ovl_map_check(&ov->map));
	pthread_mutex_unlock(&ov->lock);
	if (rc < 0) {
		stick(ov, rc, "flush snapshot");
		goto out;
	}
	rc = ov->io->fsync(ov->io->ctx, ov->datafd);
	if (rc < 0) {
		stick(ov, rc, "data sync");
		goto out;
	}
	ov->data_synced = true;
	if (ckpt) {
		rc = ovl_meta_checkpoint(ov, body, blen, nent, &unchanged);
		if (rc == 0) {
			ov->ckpt_defer = 0;
			goto out;
		}
		if (!unchanged || !no_space(rc)) {
			stick(ov, rc, "checkpoint");
			goto out;
		}
		/* Try again only after the log grew a little more. */
		ov->ckpt_defer = ov->log_end + (ov->ckpt_bytes / 8 > 4096 ? ov->ckpt_bytes / 8 : 4096);
		if (ratelimit_ok(&ov->space_rl, NULL))
			log_warn("overlay %s: no space for a checkpoint of the map: %s; keeping the log",
				 ov->dir, strerror(-rc));
		rc = 0;
	}
	if (nruns > 0) {
		rc = ovl_meta_append(ov, runs, nruns, &unchanged);
		if (rc < 0 && unchanged && no_space(rc)) {
			unsigned dropped = 0;
			pthread_mutex_lock(&ov->lock);
			int r2 = ovl_map_redirty(&ov->map, runs, nruns);
			pthread_mutex_unlock(&ov->lock);
			if (r2 < 0) {
				stick(ov, r2, "flush retry");
			} else if (ratelimit_ok(&ov->space_rl, &dropped)) {
				log_warn("overlay %s: no space to log a flush: %s; not flushed, "
					 "the writes stay cached until space is freed%s",
					 ov->dir, strerror(-rc), dropped ? " (similar messages suppressed)" : "");
			}
		} else if (rc < 0) {
			stick(ov, rc, "log append");
		}
	}
out:
	pthread_mutex_unlock(&ov->flush_lock);
	free(runs);
	free(body);
	return rc;
}

static int ovl_be_flush(struct backend *be)
{
	return ovl_flush(ov_of(be), false);
}

/*
 * backend block_status: PRESENT is mapped, ZERO unmapped, ABSENT is what
 * the golden image says (mapped when it cannot tell).
 */
static int ovl_be_block_status(struct backend *be, uint64_t off, uint64_t len,
			       uint64_t *run, bool *mapped)
{
	struct overlay *ov = ov_of(be);
	if (len == 0 || bad_range(ov, off, len))
		return -EINVAL;
	uint64_t b = off / ov->bs, last = (off + len - 1) / ov->bs;
	enum ovl_state st;

	pthread_mutex_lock(&ov->lock);
	uint64_t r = ovl_map_run(&ov->map, b, last - b + 1, &st);
	pthread_mutex_unlock(&ov->lock);
	uint64_t end = blk_end(ov, b + r - 1);
	uint64_t n = end < off + len ? end - off : len;
	*run = n;
	*mapped = st != OVL_ZERO;
	if (st == OVL_ABSENT && ov->golden->ops->block_status)
		return ov->golden->ops->block_status(ov->golden, off, n, run, mapped);
	return 0;
}

static void ovl_be_close(struct backend *be)
{
	overlay_close(ov_of(be));
}

static const struct backend_ops overlay_ops = {
	.read = ovl_be_read,
	.splice_read = ovl_be_splice_read,
	.write = ovl_be_write,
	.flush = ovl_be_flush,
	.unmap = ovl_be_unmap,
	.close = ovl_be_close,
	.block_status = ovl_be_block_status,
};

/* The overlay behind the lab's view c. */
static struct overlay *ov_of_cow(const struct cow *c)
{
	return (struct overlay *)((const char *)c - offsetof(struct overlay, cow));
}

static struct backend *cow_ovl_backend(struct cow *c) { return overlay_backend(ov_of_cow(c)); }
static uint64_t cow_ovl_used(const struct cow *c) { return overlay_used_bytes(ov_of_cow(c)); }
static int cow_ovl_error(const struct cow *c, const char **what) { return overlay_error(ov_of_cow(c), what); }
static void cow_ovl_quota(struct cow *c, uint64_t q) { overlay_set_quota(ov_of_cow(c), q); }
static int cow_ovl_close(struct cow *c) { return overlay_close(ov_of_cow(c)); }
static void cow_ovl_drop(struct cow *c) { overlay_drop(ov_of_cow(c)); }

static const struct cow_ops overlay_cow_ops = {
	.backend = cow_ovl_backend,
	.used_bytes = cow_ovl_used,
	.error = cow_ovl_error,
	.set_quota = cow_ovl_quota,
	.close = cow_ovl_close,
	.drop = cow_ovl_drop,
};

/* Free everything of a (possibly half-opened) overlay; no flush. */
static void ovl_destroy(struct overlay *ov)
{
	const struct ovl_io *io = ov->io;

	if (ov->logfd >= 0)
		io->close(io->ctx, ov->logfd);
	if (ov->datafd >= 0)
		io->close(io->ctx, ov->datafd);
	if (ov->dirfd >= 0)
		io->close(io->ctx, ov->dirfd);
	ovl_map_free(&ov->map);
	pthread_mutex_destroy(&ov->lock);
	pthread_mutex_destroy(&ov->flush_lock);
	pthread_cond_destroy(&ov->range_cv);
	free(ov->dir);
	free(ov);
}

/* Parent directory of path into buf ("." when it has none). */
static void parent_of(const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s", path);
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	char *slash = strrchr(buf, '/');
	if (!slash)
		snprintf(buf, len, ".");
	else if (slash == buf)
		buf[1] = '\0';
	else
		*slash = '\0';
}

/* fsync a directory by path through io (makes entries in it durable). */
static int sync_dir(const struct ovl_io *io, const char *path)
{
	int fd = io->open(io->ctx, AT_FDCWD, path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	int rc = io->fsync(io->ctx, fd);
	io->close(io->ctx, fd);
	return rc;
}

/*
 * Start the space counter from what data really holds.  Blocks allocated
 * in data but not PRESENT (writes lost in a crash before their flush)
 * are punched out first when there is more than a little of them, so
 * the quota does not count garbage.
 */
static int init_space(struct overlay *ov)
{
	const struct ovl_io *io = ov->io;
	uint64_t size, alloc;
	int rc = io->fstat_size(io->ctx, ov->datafd, &size, &alloc);

	if (rc < 0)
		return rc;
	if (alloc == OVL_ALLOC_UNKNOWN) {
		ov->used = ov->map.present * ov->bs;
		return 0;
	}
	/* Slack for file-system overhead, so a clean overlay is not walked. */
	if (alloc > ov->map.present * ov->bs + (64u << 10) + alloc / 256) {
		for (uint64_t b = 0; b < ov->nblocks;) {
			enum ovl_state st;
			uint64_t r = ovl_map_run(&ov->map, b, ov->nblocks - b, &st);
			if (st != OVL_PRESENT) {
				rc = io->punch(io->ctx, ov->datafd, blk_start(ov, b),
					       blk_end(ov, b + r - 1) - blk_start(ov, b));
				if (rc < 0)
					break;
			}
			b += r;
		}
		if (rc == 0)
			rc = io->fstat_size(io->ctx, ov->datafd, &size, &alloc);
		if (rc == -EOPNOTSUPP)
			rc = 0;
		if (rc < 0)
			return rc;
	}
	ov->used = alloc;
	return 0;
}

/* See overlay.h. */
int overlay_open(const char *dir, struct backend *golden, const struct overlay_opts *opts,
		 struct overlay **out)
{
	static const struct overlay_opts none;
	struct overlay *ov = NULL;
	bool created;
	int rc;

	*out = NULL;
	if (!opts)
		opts = &none;
	uint32_t bs = opts->block_size ? opts->block_size : OVL_DEFAULT_BLOCK;
	if (golden->size == 0 || bs < 512 || bs > (1u << 20) || (bs & (bs - 1)) ||
	    (opts->base_id && strlen(opts->base_id) > OVL_BASE_ID_MAX))
		return -EINVAL;
	PR_ASSERT_MSG(golden->read_only, "I4: the golden backend must be opened read-only");
	ov = calloc(1, sizeof(*ov));
	if (!ov)
		return -ENOMEM;
	ov->io = opts->io ? opts->io : ovl_io_default();
	ov->dirfd = ov->datafd = ov->logfd = -1;
	ov->golden = golden;
	ov->size = golden->size;
	ov->bs = bs;
	ov->quota = opts->quota_bytes;
	ov->floor = opts->store_floor_bytes;
	ov->ckpt_bytes = opts->checkpoint_bytes ? opts->checkpoint_bytes : OVL_DEFAULT_CKPT;
	snprintf(ov->base_id, sizeof(ov->base_id), "%s", opts->base_id ? opts->base_id : "");
	pthread_mutex_init(&ov->lock, NULL);
	pthread_mutex_init(&ov->flush_lock, NULL);
	pthread_cond_init(&ov->range_cv, NULL);
	ov->dir = strdup(dir);
	if (!ov->dir) {
		rc = -ENOMEM;
		goto fail;
	}

	/* A new directory entry is durable only once its parent is synced. */
	rc = ov->io->mkdirat(ov->io->ctx, AT_FDCWD, dir, 0700);
	if (rc == 0) {
		char parent[4096];
		parent_of(dir, parent, sizeof(parent));
		rc = sync_dir(ov->io, parent);
	} else if (rc == -EEXIST) {
		rc = 0;
	}
	if (rc < 0)
		goto fail;
	ov->dirfd = ov->io->open(ov->io->ctx, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY, 0);
	if (ov->dirfd < 0) {
		rc = ov->dirfd;
		goto fail;
	}
	rc = ovl_meta_open(ov, opts->base_id, &created);
	if (rc < 0)
		goto fail;
	rc = init_space(ov);
	if (rc < 0)
		goto fail;
	ov->be.ops = &overlay_ops;
	ov->cow.ops = &overlay_cow_ops;
	ov->be.size = ov->size;
	ov->be.read_only = false;
	const char *base = strrchr(dir, '/');
	snprintf(ov->be.name, sizeof(ov->be.name), "ovl:%s", base && base[1] ? base + 1 : dir);
	if (created)
		log_info("overlay %s: created (G=%u, %llu bytes over '%s')", dir, ov->bs,
			 (unsigned long long)ov->size, ov->base_id);
	*out = ov;
	return 0;
fail:
	if (rc != -EBADMSG && rc != -ESTALE)
		log_err("overlay %s: cannot open: %s", dir, strerror(-rc));
	ovl_destroy(ov);
	return rc;
}

/* See overlay.h. */
struct backend *overlay_backend(struct overlay *ov)
{
	return &ov->be;
}

/* See overlay.h. */
struct cow *overlay_cow(struct overlay *ov)
{
	return &ov->cow;
}

/* See overlay.h. */
uint64_t overlay_used_bytes(const struct overlay *ov)
{
	struct overlay *o = (struct overlay *)ov;   /* the lock is not part of the value */
	pthread_mutex_lock(&o->lock);
	uint64_t u = o->used;
	pthread_mutex_unlock(&o->lock);
	return u;
}

/* See overlay.h. */
int overlay_error(const struct overlay *ov, const char **what)
{
	int err = __atomic_load_n(&ov->error, __ATOMIC_SEQ_CST);

	if (what)
		*what = err ? __atomic_load_n(&ov->error_what, __ATOMIC_ACQUIRE) : NULL;
	return err;
}

/* See overlay.h. */
void overlay_set_quota(struct overlay *ov, uint64_t quota_bytes)
{
	pthread_mutex_lock(&ov->lock);
	ov->quota = quota_bytes;
	quota_watch(ov);
	pthread_mutex_unlock(&ov->lock);
}

/* See overlay.h.  The final flush writes a checkpoint, so the next open
 * has no log to replay. */
int overlay_close(struct overlay *ov)
{
	if (!ov)
		return 0;
	int rc = ovl_flush(ov, true);
	int err = __atomic_load_n(&ov->error, __ATOMIC_SEQ_CST);
	PR_CHECK(ovl_map_check(&ov->map));   /* nothing else uses it any more */
	ovl_destroy(ov);
	return err ? err : rc;
}

/* See overlay.h. */
void overlay_drop(struct overlay *ov)
{
	if (ov)
		ovl_destroy(ov);
}

/* Delete everything below directory fd dfd (depth-limited, no symlink
 * following).  Returns 0 or the first -errno. */
static int purge_dir(int dfd, int depth)
{
	int fd = dup(dfd), rc = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = rc ? rc : -errno;
			continue;
		}
		if (S_ISDIR(st.st_mode) && depth < 8) {
			int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				rc = rc ? rc : -errno;
				continue;
			}
			int r2 = purge_dir(sub, depth + 1);
			close(sub);
			rc = rc ? rc : r2;
			if (unlinkat(dfd, e->d_name, AT_REMOVEDIR) < 0)
				rc = rc ? rc : -errno;
		} else if (unlinkat(dfd, e->d_name, 0) < 0) {
			rc = rc ? rc : -errno;
		}
	}
	closedir(d);
	return rc;
}

/* See overlay.h. */
int overlay_trash_purge(const char *trash_dir)
{
	int fd = open(trash_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int rc = purge_dir(fd, 0);
	close(fd);
	return rc;
}
