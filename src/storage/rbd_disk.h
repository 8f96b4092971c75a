/*
 * rbd_disk.h - writable disks and version snapshots on Ceph RBD: what the
 * lab needs to keep an RBD image's versions, drafts and client overlays in
 * the cluster (issue 14).  CONTRACT (implemented in rbd_disk.c and
 * rbd_admin.c); the connection is storage/rbd.h's struct rbd_cluster.
 *
 * The model (docs/images.md has the table):
 *   version v1     = POOL/IMAGE@SNAP, the admin's golden snapshot
 *   version vN>1   = POOL/NAME@vN where NAME is the draft's clone
 *   draft / client = a clone of its version's snapshot (rbd_clone_make),
 *                    opened writable with rbd_disk_open
 *   commit         = rbd_snap_ensure on the draft's clone (snapshot,
 *                    protected): it is the new version
 *   reset/discard  = rbd_image_trash (constant time), space freed later
 *                    by rbd_trash_purge_own in the background
 *
 * Names: every image pristine makes starts with RBD_OWN_PREFIX, so that
 * the purge never touches an image it did not make.  Each call returns 0
 * or -errno and, where it takes msg, says what failed (the pool, image
 * and snapshot named; librbd's error text).  No call here is concurrent
 * with rbd_cluster_close.
 */
#ifndef PRISTINE_RBD_DISK_H
#define PRISTINE_RBD_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "storage/backend.h"
#include "storage/cow.h"
#include "storage/rbd.h"

/* Every image pristine creates in a pool is named with this prefix. */
#define RBD_OWN_PREFIX "pristine."

/* Create image pool/name of size bytes (format 2, objects of 2^order
 * bytes, 0 = RBD_DISK_ORDER; exclusive-lock, object-map, fast-diff).
 * -EEXIST if it exists. */
int rbd_image_create(struct rbd_cluster *c, const char *pool, const char *name, uint64_t size,
		     int order, char *msg, size_t msglen);
/* Whether pool/name exists: 0 and *size, -ENOENT, or another -errno. */
int rbd_image_stat(struct rbd_cluster *c, const char *pool, const char *name, uint64_t *size);
/* Make snapshot snap of pool/image exist and be protected (idempotent:
 * a crash between the snapshot and its protection is mended by calling
 * again). */
int rbd_snap_ensure(struct rbd_cluster *c, const char *pool, const char *image, const char *snap,
		    char *msg, size_t msglen);
/* Unprotect and remove snapshot snap of pool/image; -EBUSY while a clone
 * of it exists (also one in the trash), -ENOENT if there is none. */
int rbd_snap_drop(struct rbd_cluster *c, const char *pool, const char *image, const char *snap,
		  char *msg, size_t msglen);
/* Make pool/child a clone of pool/parent@psnap (protected: see
 * rbd_snap_ensure), objects of 2^order bytes (0 = RBD_DISK_ORDER),
 * with exclusive-lock, object-map and fast-diff.  -EEXIST if child
 * exists. */
int rbd_clone_make(struct rbd_cluster *c, const char *pool, const char *parent, const char *psnap,
		   const char *child, int order, char *msg, size_t msglen);
/* Move pool/name to the pool's RBD trash in constant time (its space is
 * freed by rbd_trash_purge_own); -ENOENT if it does not exist.  The name is
 * free again at once. */
int rbd_image_trash(struct rbd_cluster *c, const char *pool, const char *name);
/* Remove, for good, every image in pool's trash whose name starts with
 * RBD_OWN_PREFIX (one that still has clones is left for a later purge).
 * Slow: from a background thread.  0 or the first -errno met.  (Not
 * rbd_trash_purge: librbd has a function of that name.) */
int rbd_trash_purge_own(struct rbd_cluster *c, const char *pool);
/* Write a new, flat image pool/dst holding the content of
 * pool/src@snap (no parent): for flatten.  -EEXIST if dst exists; on any
 * other failure no dst is left behind.  Reads the whole image: slow. */
int rbd_image_copy(struct rbd_cluster *c, const char *pool, const char *src, const char *snap,
		   const char *dst, char *msg, size_t msglen);

/* Default object size of the clones pristine makes: 2^RBD_DISK_ORDER
 * bytes, chosen by measurement (docs/images.md). */
#ifndef RBD_DISK_ORDER
#define RBD_DISK_ORDER 16
#endif

struct rbd_disk_opts {
	uint64_t quota_bytes;   /* 0 = none */
};

/*
 * Open the clone pool/name writable as a copy-on-write disk over golden,
 * the version's shared read-only backend (the clone's parent snapshot;
 * borrowed, must outlive the disk).  Semantics are those of the local
 * overlay (storage/overlay.h): reads of objects the clone never wrote are
 * served from golden (so PCs on one version share one read path, e.g.
 * one cache), written objects from the clone; FLUSH and FUA make writes
 * durable in Ceph; unmap makes the range read zeros; block_status says
 * which ranges the clone holds; used_bytes counts the objects it holds
 * (times the object size); a write that needs a new object beyond the
 * quota, or a full pool, fails with -ENOSPC and changes nothing.
 * The image's exclusive lock is taken at open (one writer: a second open
 * fails -EROFS; after a crash of the holder the open waits out its watch,
 * ~30 s - except when the holder is exactly the address c names with
 * rbd_cluster_set_breakable, the previous instance of this gateway: that
 * lock is broken at once, its owner blocklisted; a live other owner's
 * lock is never broken).  0 and *out (a struct cow, cow.h), or -errno with msg
 * (-ENOENT: no such clone; -ESTALE: its size is not golden's).
 */
int rbd_disk_open(struct rbd_cluster *c, const char *pool, const char *name,
		  struct backend *golden, const struct rbd_disk_opts *o, struct cow **out,
		  char *msg, size_t msglen);

#endif
