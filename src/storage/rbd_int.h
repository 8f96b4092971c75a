/*
 * rbd_int.h - what the storage layer's RBD files share beyond rbd.h (not
 * an API for the layers above): the connection's librados handle, for
 * rbd_admin.c and rbd_disk.c, which make and open writable images through
 * the one connection rbd.c owns, and ovl_ceph.c, which keeps overlays in
 * RADOS objects and plain images.
 */
#ifndef PRISTINE_RBD_INT_H
#define PRISTINE_RBD_INT_H

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "storage/rbd.h"

/* The cluster handle of c (borrowed: valid until rbd_cluster_close). */
rados_t rbd_cluster_rados(struct rbd_cluster *c);

/*
 * Fence addr: blocklist it (for RBD_FENCE_S seconds) unless this
 * connection already did, so that every request it still sends is
 * refused by the OSDs.  Done before any lock of addr is broken.  0 or
 * -errno (then nothing of addr may be broken).
 */
#define RBD_FENCED_MAX 16
int rbd_cluster_fence(struct rbd_cluster *c, const char *addr);

/* The address rbd_cluster_set_breakable named, or NULL (borrowed). */
const char *rbd_cluster_breakable(struct rbd_cluster *c);

/* The policy rbd_cluster_set_break_policy installed: whether the lock
 * of owner may be broken (false when there is none). */
bool rbd_cluster_may_break(struct rbd_cluster *c, const char *owner);
/* Whether a break policy is installed (a gateway of a cluster). */
bool rbd_cluster_has_break_policy(struct rbd_cluster *c);

/* An I/O context on pool through c: 0 and *io (release with
 * rados_ioctx_destroy), or -errno (-ENOENT: no such pool).  Its writes
 * carry FULL_TRY (rbd_disk.c's header says why). */
int rbd_pool_ioctx(struct rbd_cluster *c, const char *pool, rados_ioctx_t *io);

/*
 * Take the exclusive lock of img (opened writable through c) for this
 * connection: a lock held by exactly c's breakable address (the previous
 * instance, rbd_cluster_set_breakable), or by an owner the break policy
 * allows (rbd_cluster_set_break_policy: a dead or cut-off gateway), is
 * broken first, its owner blocklisted; another live owner's lock is not
 * (the acquire then fails, -EROFS or -EBUSY).  name is for the log.  0, or -errno with *step
 * naming what failed ("take its exclusive lock", ...: static text).
 * Used by rbd_disk.c and ovl_ceph.c; implemented in rbd_admin.c.
 */
int rbd_lock_take(struct rbd_cluster *c, rbd_image_t img, const char *name, const char **step);

#endif
