/*
 * rbd_disk.c - a client's (or a draft's) writable disk as an RBD clone of
 * its version's snapshot: rbd_disk_open (rbd_disk.h), a struct cow whose
 * backend has the local overlay's semantics (storage/overlay.h).
 *
 * State: a bitmap with one bit per object of the clone ("held"), built at
 * open from Ceph (rbd_diff_iterate2 from the beginning, without the
 * parent, whole objects: the object map answers it) and set before any
 * write or unmap to an object is issued.  A read of an object not held
 * goes to golden (the version's shared backend, so every PC on a version
 * reads through one path); one held goes to the clone.  Invariant: a bit
 * is only ever set, never cleared while open, and a set bit is always
 * safe - a clone object that does not exist (yet) reads through to the
 * parent snapshot, the same bytes golden has.  So a write that fails
 * after setting its bits leaves reads correct; only used_bytes counts it.
 *
 * Quota: used = held objects * object size.  A write or unmap that would
 * make the clone hold a new object beyond the quota fails -ENOSPC before
 * anything is issued (the check and the bit setting are one step under
 * the lock).  An unmap of an object not held needs one too: to read
 * zeros over the parent's data the clone must hold the object.
 *
 * Durability: the connection runs with rbd_cache=false (rbd.c): every
 * write librbd acknowledges was committed by the OSDs, so a FUA write is
 * a plain write and flush is rbd_flush (a no-op without a cache, kept for
 * a cache configured by ceph.conf's client section after all).
 *
 * Unmap: rbd_write_zeroes over the range (librbd discards whole objects
 * - a clone keeps an empty object that hides the parent - and writes
 * zeros at the edges); unlike rbd_discard, which skips partial objects
 * (rbd_skip_partial_discard), the range reads zeros afterwards.
 *
 * Full pool (Ceph 16 "pacific", what was found): librados' Objecter
 * pauses every write to a pool flagged full (quota reached, or an OSD
 * past its full ratio) until the flag clears - a PC's write would hang
 * for as long as the pool stays full.  With FULL_TRY on the I/O context
 * (rados_set_pool_full_try, rbd_int.h's rbd_pool_ioctx) the write goes
 * out and the OSD answers -EDQUOT (pool quota) or -ENOSPC (full OSD) at
 * once; librbd keeps the flag for the image's I/O (measured with
 * tests/ceph/test_rbd_disk.sh: without it the writer hung until killed,
 * with it each refused write came back in under 0.1 s).  Both are
 * mapped to -ENOSPC and are not sticky: the write changed nothing, the
 * disk works again when space is back.  (rados_osd_op_timeout would also
 * bound the wait, but would turn an OSD restart, where a PC should wait,
 * into errors.)  Note: a pool quota needs a ceph-mgr (the monitors learn
 * pool usage from it); a full OSD does not.
 *
 * Held is coarse: an object unmapped whole is held (the clone keeps an
 * empty object hiding the parent), so it counts in used_bytes and
 * block_status says mapped for it, as for any held object; reads give
 * zeros all the same.  Nothing is released before the clone is trashed.
 *
 * Errors: any other failed write, unmap or flush puts the disk in a
 * sticky error: writes, unmaps and flushes return -EIO from then on,
 * reads go on.  Error logs are rate-limited per disk (backend.h).
 *
 * Exclusive lock: taken at open (rbd_lock_acquire); a second open of the
 * same clone, which would have to take the lock away, fails -EBUSY
 * instead of writing behind the first's back - librbd's lock request to
 * the owner is refused (-EROFS) while the owner holds it as acquired by
 * the API.  After a crash of the owner (kill -9), the next open's
 * rbd_lock_acquire waits until the OSD drops the dead owner's watch
 * (osd_client_watch_timeout, 30 s by default), then breaks its lock and
 * succeeds: measured 30.1 s, one call (tests/ceph/test_rbd_disk.sh).
 * A lock whose owner is exactly the cluster's breakable address (the
 * previous instance of this gateway, rbd_cluster_set_breakable: the state
 * directory's lock proves it serves nothing) is broken first
 * (rbd_lock_take, rbd_admin.c: blocklisted first), so a restart after kill -9
 * serves at once (tests/ceph/test_rbd_kill.sh); no other owner's is.
 *
 * Threading: read/write/unmap/flush/block_status from many threads
 * (librbd's image handle takes concurrent calls; the bitmap is set with
 * atomic ors under mu, read atomically); set_quota, used_bytes and error
 * any time; close/drop alone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "storage/rbd_disk.h"
#include "storage/rbd_int.h"
#include "util/log.h"

struct rbd_disk {
	struct cow cow;         /* the lab's handle */
	struct backend be;      /* the backend view */
	rados_ioctx_t io;
	rbd_image_t img;
	struct backend *golden; /* borrowed */
	uint64_t osize;         /* object size, bytes */
	unsigned order;
	uint64_t nobj;
	uint64_t *held;         /* one bit per object */
	uint64_t nheld;         /* set bits (atomic) */
	uint64_t quota;         /* bytes, 0 = none (atomic) */
	pthread_mutex_t mu;     /* held-bit allocation against the quota */
	int err;                /* sticky error, 0 = healthy (atomic) */
	const char *err_what;
};

/* The disk around a cow / a backend. */
static struct rbd_disk *disk_of_cow(struct cow *c)
{
	return (struct rbd_disk *)c;
}

static struct rbd_disk *disk_of_be(struct backend *be)
{
	return (struct rbd_disk *)((char *)be - offsetof(struct rbd_disk, be));
}

/* Whether object i is held by the clone. */
static bool held(const struct rbd_disk *d, uint64_t i)
{
	return (__atomic_load_n(&d->held[i / 64], __ATOMIC_ACQUIRE) >> (i % 64)) & 1;
}

/* Mark object i held (caller holds mu or is alone); counts new bits. */
static void hold(struct rbd_disk *d, uint64_t i)
{
	uint64_t bit = 1ull << (i % 64);

	if (!(__atomic_fetch_or(&d->held[i / 64], bit, __ATOMIC_RELEASE) & bit))
		__atomic_add_fetch(&d->nheld, 1, __ATOMIC_RELAXED);
}

/* Log an I/O failure of op at off (rate-limited per disk). */
static void disk_log(struct rbd_disk *d, const char *op, uint64_t off, uint64_t len, int rc)
{
	unsigned dropped = 0;

	if (ratelimit_ok(&d->be.err_rl, &dropped))
		log_err("%s: %s of %llu bytes at byte %llu failed: %s%s", d->be.name, op,
			(unsigned long long)len, (unsigned long long)off, strerror(-rc),
			dropped ? " (more errors of this disk were not logged)" : "");
}

/* The outcome of a failed write-side call: -ENOSPC for a full pool or
 * quota (nothing changed, not sticky), else the disk enters its sticky
 * error (what) and the caller gets -EIO. */
static int disk_fail(struct rbd_disk *d, const char *what, uint64_t off, uint64_t len, int rc)
{
	int zero = 0;

	disk_log(d, what, off, len, rc);
	if (rc == -ENOSPC || rc == -EDQUOT)
		return -ENOSPC;
	if (__atomic_compare_exchange_n(&d->err, &zero, rc, false, __ATOMIC_SEQ_CST,
					__ATOMIC_SEQ_CST))
		d->err_what = what;
	return -EIO;
}

/* Read [off, off+len): runs of held objects from the clone, the others
 * from golden. */
static int disk_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	struct rbd_disk *d = disk_of_be(be);
	char *p = buf;

	while (len > 0) {
		uint64_t i = off >> d->order;
		bool h = held(d, i);
		uint64_t end = off;
		size_t n;
		int rc = 0;

		/* extend the run while objects share the state */
		do {
			end = (i + 1) << d->order;
			i++;
		} while (end < off + len && i < d->nobj && held(d, i) == h);
		n = (size_t)((end < off + len ? end : off + len) - off);
		if (!h) {
			rc = d->golden->ops->read(d->golden, p, off, n);
		} else {
			size_t done = 0;
			while (done < n) {
				ssize_t r = rbd_read(d->img, off + done, n - done, p + done);
				if (r <= 0) {
					rc = r < 0 ? (int)r : -EIO;
					disk_log(d, "read", off, n, rc);
					break;
				}
				done += (size_t)r;
			}
		}
		if (rc < 0)
			return rc;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Make every object of [off, off+len) held, refusing (-ENOSPC, nothing
 * set) when the new ones would pass the quota. */
static int claim(struct rbd_disk *d, uint64_t off, uint64_t len)
{
	uint64_t first = off >> d->order, last = (off + len - 1) >> d->order, fresh = 0, q;
	int rc = 0;

	for (uint64_t i = first; i <= last; i++)
		fresh += !held(d, i);
	if (!fresh)
		return 0;
	pthread_mutex_lock(&d->mu);
	fresh = 0;
	for (uint64_t i = first; i <= last; i++)
		fresh += !held(d, i);
	q = __atomic_load_n(&d->quota, __ATOMIC_RELAXED);
	if (q && (__atomic_load_n(&d->nheld, __ATOMIC_RELAXED) + fresh) * d->osize > q) {
		rc = -ENOSPC;
	} else {
		for (uint64_t i = first; i <= last; i++)
			hold(d, i);
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* Write-side calls in the sticky error state fail at once. */
static bool broken(const struct rbd_disk *d)
{
	return __atomic_load_n(&d->err, __ATOMIC_ACQUIRE) != 0;
}

/* Write len bytes at off into the clone (see the header: claim first;
 * every acknowledged write is committed, so fua needs nothing more). */
static int disk_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	struct rbd_disk *d = disk_of_be(be);
	size_t done = 0;
	int rc;

	if (broken(d))
		return -EIO;
	if (len == 0)
		return 0;
	if ((rc = claim(d, off, len)) < 0)
		return rc;
	while (done < len) {
		ssize_t r = rbd_write(d->img, off + done, len - done, (const char *)buf + done);
		if (r <= 0)
			return disk_fail(d, "write", off, len, r < 0 ? (int)r : -EIO);
		done += (size_t)r;
	}
	return 0;
}

/* Make completed writes durable (nothing is cached: see the header). */
static int disk_flush(struct backend *be)
{
	struct rbd_disk *d = disk_of_be(be);
	int rc;

	if (broken(d))
		return -EIO;
	if ((rc = rbd_flush(d->img)) < 0)
		return disk_fail(d, "flush", 0, 0, rc);
	return 0;
}

/* Make [off, off+len) read zeros (rbd_write_zeroes; see the header). */
static int disk_unmap(struct backend *be, uint64_t off, uint64_t len)
{
	struct rbd_disk *d = disk_of_be(be);
	int rc;

	if (broken(d))
		return -EIO;
	if (len == 0)
		return 0;
	if (off > be->size || len > be->size - off)
		return -EINVAL;
	if ((rc = claim(d, off, len)) < 0)
		return rc;
	while (len > 0) {
		/* rbd_write_zeroes takes a size_t and returns a ssize_t */
		size_t n = len > (1ull << 30) ? (size_t)1 << 30 : (size_t)len;
		ssize_t r = rbd_write_zeroes(d->img, off, n, 0, 0);
		if (r < 0)
			return disk_fail(d, "unmap", off, n, (int)r);
		off += n;
		len -= n;
	}
	return 0;
}

/* Held objects are mapped; a run not held is what golden says. */
static int disk_block_status(struct backend *be, uint64_t off, uint64_t len, uint64_t *run,
			     bool *mapped)
{
	struct rbd_disk *d = disk_of_be(be);
	uint64_t i = off >> d->order, end;
	bool h;

	if (len == 0 || off > be->size || len > be->size - off)
		return -EINVAL;
	h = held(d, i);
	do {
		end = (i + 1) << d->order;
		i++;
	} while (end < off + len && i < d->nobj && held(d, i) == h);
	*run = (end < off + len ? end : off + len) - off;
	if (h || !d->golden->ops->block_status) {
		*mapped = true;
		return 0;
	}
	{
		uint64_t grun = 0;
		int rc = d->golden->ops->block_status(d->golden, off, *run, &grun, mapped);
		if (rc == 0 && grun > 0 && grun < *run)
			*run = grun;
		return rc;
	}
}

/* Release the image and everything else (no flush). */
static void disk_free(struct rbd_disk *d)
{
	if (d->img) {
		rbd_lock_release(d->img);
		rbd_close(d->img);
	}
	if (d->io)
		rados_ioctx_destroy(d->io);
	pthread_mutex_destroy(&d->mu);
	free(d->held);
	free(d);
}

/* The backend's close: the lab calls cow close/drop instead; kept for a
 * caller that only has the backend (result logged). */
static void disk_be_close(struct backend *be)
{
	struct rbd_disk *d = disk_of_be(be);
	int rc = d->cow.ops->close(&d->cow);

	if (rc < 0)
		log_err("%s: closed with an error: %s", be->name, strerror(-rc));
}

static const struct backend_ops disk_be_ops = {
	.read = disk_read,
	.write = disk_write,
	.flush = disk_flush,
	.unmap = disk_unmap,
	.close = disk_be_close,
	.block_status = disk_block_status,
};

/* cow ops: see cow.h. */
static struct backend *disk_backend(struct cow *c)
{
	return &disk_of_cow(c)->be;
}

static uint64_t disk_used(const struct cow *c)
{
	const struct rbd_disk *d = (const struct rbd_disk *)c;

	return __atomic_load_n(&d->nheld, __ATOMIC_RELAXED) * d->osize;
}

static int disk_error(const struct cow *c, const char **what)
{
	const struct rbd_disk *d = (const struct rbd_disk *)c;
	int e = __atomic_load_n(&d->err, __ATOMIC_ACQUIRE);

	if (what)
		*what = e ? d->err_what : NULL;
	return e;
}

static void disk_set_quota(struct cow *c, uint64_t quota_bytes)
{
	__atomic_store_n(&disk_of_cow(c)->quota, quota_bytes, __ATOMIC_RELAXED);
}

/* Flush, release the lock, close; 0 or the sticky error (or the flush's). */
static int disk_close(struct cow *c)
{
	struct rbd_disk *d = disk_of_cow(c);
	int rc = __atomic_load_n(&d->err, __ATOMIC_ACQUIRE);

	if (!rc && (rc = rbd_flush(d->img)) < 0)
		disk_log(d, "flush at close", 0, 0, rc);
	disk_free(d);
	return rc;
}

static void disk_drop(struct cow *c)
{
	disk_free(disk_of_cow(c));
}

static const struct cow_ops disk_cow_ops = {
	.backend = disk_backend,
	.used_bytes = disk_used,
	.error = disk_error,
	.set_quota = disk_set_quota,
	.close = disk_close,
	.drop = disk_drop,
};

/* rbd_diff_iterate2's callback: every extent the clone itself holds
 * (exists or not: a set bit is always safe) marks its objects held. */
static int diff_cb(uint64_t off, size_t len, int exists, void *arg)
{
	struct rbd_disk *d = arg;

	if (len == 0)
		return 0;
	for (uint64_t i = off >> d->order; i <= (off + len - 1) >> d->order && i < d->nobj; i++)
		hold(d, i);
	return 0;
}

/* See rbd_disk.h. */
int rbd_disk_open(struct rbd_cluster *c, const char *pool, const char *name,
		  struct backend *golden, const struct rbd_disk_opts *o, struct cow **out,
		  char *msg, size_t msglen)
{
	struct rbd_disk *d;
	rbd_image_info_t info;
	int rc;
	const char *step = "open the image";

	*out = NULL;
	if (!(d = calloc(1, sizeof(*d))))
		return -ENOMEM;
	pthread_mutex_init(&d->mu, NULL);
	snprintf(d->be.name, sizeof(d->be.name), "rbd:%.*s/%.*s", 20, pool, 36, name);
	if ((rc = rbd_pool_ioctx(c, pool, &d->io)) < 0) {
		snprintf(msg, msglen, "%s: pool %s: %s", d->be.name, pool, strerror(-rc));
		goto fail;
	}
	if ((rc = rbd_open(d->io, name, &d->img, NULL)) < 0) {
		d->img = NULL;
		goto fail_step;
	}
	if ((rc = rbd_lock_take(c, d->img, d->be.name, &step)) < 0)
		goto fail_step;
	step = "stat it";
	if ((rc = rbd_stat(d->img, &info, sizeof(info))) < 0)
		goto fail_step;
	if (info.size != golden->size) {
		snprintf(msg, msglen, "%s: %llu bytes, its version %llu", d->be.name,
			 (unsigned long long)info.size, (unsigned long long)golden->size);
		rc = -ESTALE;
		goto fail;
	}
	d->order = (unsigned)info.order;
	d->osize = 1ull << d->order;
	d->nobj = (info.size + d->osize - 1) >> d->order;
	if (!(d->held = calloc((size_t)((d->nobj + 63) / 64 + 1), sizeof(uint64_t)))) {
		rc = -ENOMEM;
		goto fail;
	}
	step = "list the objects it holds";
	if (info.size > 0 &&
	    (rc = rbd_diff_iterate2(d->img, NULL, 0, info.size, 0, 1, diff_cb, d)) < 0)
		goto fail_step;
	d->golden = golden;
	d->quota = o ? o->quota_bytes : 0;
	d->be.ops = &disk_be_ops;
	d->be.size = info.size;
	d->be.read_only = false;
	d->cow.ops = &disk_cow_ops;
	*out = &d->cow;
	return 0;
fail_step:
	snprintf(msg, msglen, "%s: cannot %s: %s%s", d->be.name, step, strerror(-rc),
		 rc == -EBUSY || rc == -EROFS ? " (another writer holds it)" : "");
fail:
	disk_free(d);
	return rc;
}
