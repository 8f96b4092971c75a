/*
 * rbd_admin.c - images, snapshots, clones and the trash on RBD: the
 * administrative half of rbd_disk.h (rbd_disk.c is the I/O half).
 *
 * Every call opens what it needs through the one connection (an I/O
 * context on the pool, the image), does one librbd step or a short,
 * idempotent sequence of them, and closes again: these are rare calls
 * (a commit, a reset, a purge), never on a PC's I/O path.
 *
 * Images are format 2 with layering, exclusive-lock, object-map,
 * fast-diff and deep-flatten: exclusive-lock keeps one writer per clone
 * (rbd_disk_open takes it), the object map makes the clone's "which
 * objects do I hold" a cheap question (rbd_disk.c builds its bitmap from
 * it), deep-flatten lets a clone that has snapshots of its own (a
 * committed draft) be flattened later.
 *
 * Snapshots that versions stand on are protected, so that librbd itself
 * refuses to remove one while a clone (also a clone in the trash) still
 * reads from it: rbd_snap_drop's -EBUSY comes from the unprotect.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "storage/rbd_disk.h"
#include "storage/rbd_int.h"
#include "util/bytes.h"
#include "util/log.h"

#define RBD_OWN_FEATURES (RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | \
			  RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN)

/* Options for an image pristine makes: format 2, our features, objects
 * of 2^order bytes (0 = RBD_DISK_ORDER).  Destroy with
 * rbd_image_options_destroy. */
static rbd_image_options_t own_options(int order)
{
	rbd_image_options_t o;

	rbd_image_options_create(&o);
	rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FORMAT, 2);
	rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FEATURES, RBD_OWN_FEATURES);
	if (!order)
		order = RBD_DISK_ORDER;
	rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_ORDER, (uint64_t)order);
	/* no striping: else a clone inherits its parent's stripe unit, and
	 * one with smaller objects than its parent's is refused (EINVAL) */
	rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_STRIPE_UNIT, 1ull << order);
	rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_STRIPE_COUNT, 1);
	return o;
}

/* An I/O context on pool into *io, or -errno with msg naming the pool. */
static int pool_open(struct rbd_cluster *c, const char *pool, rados_ioctx_t *io, char *msg,
		     size_t msglen)
{
	int rc = rbd_pool_ioctx(c, pool, io);

	if (rc < 0 && msg)
		snprintf(msg, msglen, "ceph: pool %s: %s", pool, strerror(-rc));
	return rc;
}

/* See rbd_disk.h. */
int rbd_image_create(struct rbd_cluster *c, const char *pool, const char *name, uint64_t size,
		     int order, char *msg, size_t msglen)
{
	rados_ioctx_t io;
	rbd_image_options_t o;
	int rc;

	if ((rc = pool_open(c, pool, &io, msg, msglen)) < 0)
		return rc;
	o = own_options(order);
	rc = rbd_create4(io, name, size, o);
	rbd_image_options_destroy(o);
	if (rc < 0)
		snprintf(msg, msglen, "rbd:%s/%s: cannot create an image of %llu bytes: %s", pool,
			 name, (unsigned long long)size, strerror(-rc));
	rados_ioctx_destroy(io);
	return rc;
}

/* See rbd_disk.h. */
int rbd_image_stat(struct rbd_cluster *c, const char *pool, const char *name, uint64_t *size)
{
	rados_ioctx_t io;
	rbd_image_t img;
	int rc;

	if ((rc = rbd_pool_ioctx(c, pool, &io)) < 0)
		return rc;
	if ((rc = rbd_open_read_only(io, name, &img, NULL)) == 0) {
		rc = rbd_get_size(img, size);
		rbd_close(img);
	}
	rados_ioctx_destroy(io);
	return rc;
}

/* Open pool/image writable (snapshot calls need it) into *io and *img,
 * or -errno with msg. */
static int image_open(struct rbd_cluster *c, const char *pool, const char *image,
		      rados_ioctx_t *io, rbd_image_t *img, char *msg, size_t msglen)
{
	int rc;

	if ((rc = pool_open(c, pool, io, msg, msglen)) < 0)
		return rc;
	if ((rc = rbd_open(*io, image, img, NULL)) < 0) {
		snprintf(msg, msglen, "rbd:%s/%s: cannot open the image: %s", pool, image,
			 strerror(-rc));
		rados_ioctx_destroy(*io);
	}
	return rc;
}

/* See rbd_disk.h. */
int rbd_snap_ensure(struct rbd_cluster *c, const char *pool, const char *image, const char *snap,
		    char *msg, size_t msglen)
{
	rados_ioctx_t io;
	rbd_image_t img;
	int rc, prot = 0;
	const char *step = "create";

	if ((rc = image_open(c, pool, image, &io, &img, msg, msglen)) < 0)
		return rc;
	rc = rbd_snap_create(img, snap);
	if (rc == -EEXIST)
		rc = 0;         /* made before a crash: protect it below */
	if (rc == 0) {
		step = "protect";
		rc = rbd_snap_is_protected(img, snap, &prot);
		if (rc == 0 && !prot)
			rc = rbd_snap_protect(img, snap);
		if (rc == -EBUSY)
			rc = 0; /* protected meanwhile */
	}
	if (rc < 0)
		snprintf(msg, msglen, "rbd:%s/%s@%s: cannot %s the snapshot: %s", pool, image, snap,
			 step, strerror(-rc));
	rbd_close(img);
	rados_ioctx_destroy(io);
	return rc;
}

/* See rbd_disk.h. */
int rbd_snap_drop(struct rbd_cluster *c, const char *pool, const char *image, const char *snap,
		  char *msg, size_t msglen)
{
	rados_ioctx_t io;
	rbd_image_t img;
	int rc, prot = 0;
	const char *step = "find";

	if ((rc = image_open(c, pool, image, &io, &img, msg, msglen)) < 0)
		return rc;
	rc = rbd_snap_is_protected(img, snap, &prot);
	if (rc == 0 && prot) {
		/* -EBUSY while any clone, also one in the trash, reads it */
		step = "unprotect";
		rc = rbd_snap_unprotect(img, snap);
	}
	if (rc == 0) {
		step = "remove";
		rc = rbd_snap_remove(img, snap);
	}
	if (rc < 0)
		snprintf(msg, msglen, "rbd:%s/%s@%s: cannot %s the snapshot: %s%s", pool, image, snap,
			 step, strerror(-rc), rc == -EBUSY ? " (a clone of it exists)" : "");
	rbd_close(img);
	rados_ioctx_destroy(io);
	return rc;
}

/* See rbd_disk.h. */
int rbd_clone_make(struct rbd_cluster *c, const char *pool, const char *parent, const char *psnap,
		   const char *child, int order, char *msg, size_t msglen)
{
	rados_ioctx_t io;
	rbd_image_options_t o;
	int rc;

	if ((rc = pool_open(c, pool, &io, msg, msglen)) < 0)
		return rc;
	o = own_options(order);
	rc = rbd_clone3(io, parent, psnap, io, child, o);
	rbd_image_options_destroy(o);
	if (rc < 0)
		snprintf(msg, msglen, "rbd:%s/%s: cannot clone %s@%s: %s", pool, child, parent, psnap,
			 strerror(-rc));
	rados_ioctx_destroy(io);
	return rc;
}

/* See rbd_disk.h. */
int rbd_image_trash(struct rbd_cluster *c, const char *pool, const char *name)
{
	rados_ioctx_t io;
	int rc;

	if ((rc = rbd_pool_ioctx(c, pool, &io)) < 0)
		return rc;
	/* delay 0: the purge may remove it at once; the move itself is a
	 * rename in the pool's directory, whatever the image holds */
	rc = rbd_trash_move(io, name, 0);
	if (rc < 0 && rc != -ENOENT)
		log_warn("rbd:%s/%s: cannot move the image to the trash: %s", pool, name,
			 strerror(-rc));
	rados_ioctx_destroy(io);
	return rc;
}

/* Remove every snapshot of the trashed image id that no clone reads
 * (unprotecting it first); 0, or -EBUSY when one still has clones. */
static int trash_snaps_drop(rados_ioctx_t io, const char *id)
{
	rbd_image_t img;
	rbd_snap_info_t *snaps = NULL;
	int max = 16, n, rc, busy = 0;

	if ((rc = rbd_open_by_id(io, id, &img, NULL)) < 0)
		return rc;
	for (;;) {
		free(snaps);
		if (!(snaps = calloc((size_t)max, sizeof(*snaps)))) {
			rc = -ENOMEM;
			goto out;
		}
		n = rbd_snap_list(img, snaps, &max);
		if (n != -ERANGE)
			break;
	}
	if (n < 0) {
		rc = n;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		int prot = 0;
		if (rbd_snap_is_protected(img, snaps[i].name, &prot) == 0 && prot &&
		    rbd_snap_unprotect(img, snaps[i].name) < 0) {
			busy = 1;
			continue;
		}
		if (rbd_snap_remove(img, snaps[i].name) < 0)
			busy = 1;
	}
	rbd_snap_list_end(snaps);
	rc = busy ? -EBUSY : 0;
out:
	free(snaps);
	rbd_close(img);
	return rc;
}

/* See rbd_disk.h. */
int rbd_trash_purge_own(struct rbd_cluster *c, const char *pool)
{
	rados_ioctx_t io;
	rbd_trash_image_info_t *ents = NULL;
	size_t max = 64;
	int rc, first = 0;

	if ((rc = rbd_pool_ioctx(c, pool, &io)) < 0)
		return rc;
	for (;;) {
		free(ents);
		if (!(ents = calloc(max, sizeof(*ents)))) {
			rc = -ENOMEM;
			goto out;
		}
		rc = rbd_trash_list(io, ents, &max);
		if (rc != -ERANGE)
			break;
	}
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < max; i++) {
		int r;
		if (strncmp(ents[i].name, RBD_OWN_PREFIX, strlen(RBD_OWN_PREFIX)) != 0)
			continue;
		r = rbd_trash_remove(io, ents[i].id, true);
		if (r == -ENOTEMPTY && (r = trash_snaps_drop(io, ents[i].id)) == 0)
			r = rbd_trash_remove(io, ents[i].id, true);
		if (r == -EBUSY || r == -ENOTEMPTY)
			continue;       /* clones still read it: a later purge */
		if (r < 0) {
			log_warn("rbd:%s: cannot remove %s (id %s) from the trash: %s", pool,
				 ents[i].name, ents[i].id, strerror(-r));
			if (!first)
				first = r;
		}
	}
	rbd_trash_list_cleanup(ents, max);
	rc = first;
out:
	free(ents);
	rados_ioctx_destroy(io);
	return rc;
}

/* Copy every non-zero object-sized piece of src into dst (same size,
 * objects of osize bytes), reading at least 4 MiB per call. */
static int copy_data(rbd_image_t src, rbd_image_t dst, uint64_t size, uint64_t osize)
{
	uint64_t chunk = osize < (4u << 20) ? (4u << 20) : osize;
	char *buf = malloc(chunk);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t off = 0; off < size && rc == 0; off += chunk) {
		size_t n = (size_t)(size - off < chunk ? size - off : chunk);
		ssize_t r = rbd_read(src, off, n, buf);
		if (r != (ssize_t)n) {
			rc = r < 0 ? (int)r : -EIO;
			break;
		}
		for (size_t p = 0; p < n && rc == 0; p += osize) {
			size_t m = n - p < osize ? n - p : (size_t)osize;
			if (bytes_all_zero(buf + p, m))
				continue;       /* a new image reads zeros: stay sparse */
			r = rbd_write(dst, off + p, m, buf + p);
			if (r != (ssize_t)m)
				rc = r < 0 ? (int)r : -EIO;
		}
	}
	if (rc == 0)
		rc = rbd_flush(dst);
	free(buf);
	return rc;
}

/* See rbd_disk.h.  A read/write loop, not rbd_copy3: on Ceph 16 the copy
 * of a clone's snapshot left the objects the clone had not written (its
 * parent's data) as zeros in the copy - measured by this project's test. */
int rbd_image_copy(struct rbd_cluster *c, const char *pool, const char *src, const char *snap,
		   const char *dst, char *msg, size_t msglen)
{
	rados_ioctx_t io;
	rbd_image_t img, out;
	rbd_image_options_t o;
	rbd_image_info_t info;
	const char *step = "open the source";
	int rc;

	if ((rc = pool_open(c, pool, &io, msg, msglen)) < 0)
		return rc;
	if ((rc = rbd_open_read_only(io, src, &img, snap)) < 0)
		goto fail_io;
	step = "stat the source";
	if ((rc = rbd_stat(img, &info, sizeof(info))) < 0)
		goto fail_img;
	step = "create the copy";
	o = own_options((int)info.order);
	rc = rbd_create4(io, dst, info.size, o);
	rbd_image_options_destroy(o);
	if (rc < 0)
		goto fail_img;
	step = "open the copy";
	if ((rc = rbd_open(io, dst, &out, NULL)) < 0)
		goto fail_img;
	step = "copy the data";
	rc = copy_data(img, out, info.size, 1ull << info.order);
	rbd_close(out);
	if (rc < 0) {
		/* no half copy under the name: a retry must not meet -EEXIST */
		int r = rbd_remove(io, dst);
		if (r < 0)
			log_warn("rbd:%s/%s: cannot remove the half-made copy: %s", pool, dst,
				 strerror(-r));
		goto fail_img;
	}
	rbd_close(img);
	rados_ioctx_destroy(io);
	return 0;
fail_img:
	rbd_close(img);
fail_io:
	snprintf(msg, msglen, "rbd:%s/%s: cannot %s (%s@%s): %s", pool, dst, step, src, snap,
		 strerror(-rc));
	rados_ioctx_destroy(io);
	return rc;
}

/*
 * Break img's exclusive lock if its owner is exactly prev, the previous
 * instance of this gateway (rbd_cluster_set_breakable), or an owner the
 * cluster's break policy allows (a dead, stopped or cut-off gateway,
 * rbd_cluster_set_break_policy): that address is blocklisted first
 * (rbd_cluster_fence, once per address: whatever it still has in flight
 * is refused by the OSDs), then its lock dropped, so the acquire that follows does not wait out the dead
 * owner's watch.  A lock of any other owner is left alone.  name is for
 * the log.  0 (broken, or nothing to break) or -errno.
 */
static int break_stale(struct rbd_cluster *c, rbd_image_t img, const char *name, const char *prev)
{
	rbd_lock_mode_t mode;
	char *owners[4];
	size_t n = 4;
	int rc = rbd_lock_get_owners(img, &mode, owners, &n);

	if (rc < 0)     /* -ENOENT: nobody holds it; anything else: the acquire says */
		return 0;
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		bool ours = prev && strcmp(owners[i], prev) == 0;
		if (!ours && !rbd_cluster_may_break(c, owners[i])) {
			log_info("%s: locked by %s, not our previous instance (%s): not broken",
				 name, owners[i], prev ? prev : "none");
			continue;
		}
		/* fence first (once per owner): only then may its lock go */
		if ((rc = rbd_cluster_fence(c, owners[i])) < 0) {
			log_err("%s: cannot blocklist %s: %s - its lock is not broken", name,
				owners[i], strerror(-rc));
			break;
		}
		rc = rbd_lock_break(img, mode, owners[i]);
		if (rc == 0 || rc == -ENOENT) {
			log_notice("%s: broke the lock of %s %s (blocklisted)", name,
				   ours ? "our previous instance" : "gateway address", owners[i]);
			rc = 0;
		}
	}
	rbd_lock_get_owners_cleanup(owners, n);
	return rc;
}

/* See rbd_int.h. */
int rbd_lock_take(struct rbd_cluster *c, rbd_image_t img, const char *name, const char **step)
{
	int rc, owner = 0;

	*step = "break the lock of our previous instance";
	if ((rbd_cluster_breakable(c) || rbd_cluster_has_break_policy(c)) &&
	    (rc = break_stale(c, img, name, rbd_cluster_breakable(c))) < 0)
		return rc;
	*step = "take its exclusive lock";
	if ((rc = rbd_lock_acquire(img, RBD_LOCK_MODE_EXCLUSIVE)) < 0)
		return rc;
	if ((rc = rbd_is_exclusive_lock_owner(img, &owner)) < 0 || !owner)
		return rc < 0 ? rc : -EBUSY;
	return 0;
}
