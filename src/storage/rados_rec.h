/*
 * rados_rec.h - small shared records in RADOS: whole-object texts
 * replaced atomically with compare-and-swap on the object's version,
 * a cluster-wide change lock, and watch/notify so that every gateway
 * learns of a change within a second.  What the cluster's registry
 * (lab/store_rados.c: client and image records) is built on.
 *
 * A record is one RADOS object holding a text (JSON) of at most
 * RADOS_REC_MAX bytes.  Every write is one RADOS write op (write_full,
 * guarded), so a reader sees the old text or the new one, never a mix.
 * Versions are the object versions RADOS keeps (they grow on every
 * change of the object): a writer that read version v writes "only if
 * the object is still at v" and gets -ECANCELED when another gateway
 * changed it meanwhile.
 *
 * Threading: one struct rados_recs is safe for concurrent calls (it
 * serialises on its own I/O context where librados needs it).  The
 * watch callback runs on a librados thread: it must not block and must
 * not call back into rados_recs (set a flag, signal a thread).
 */
#ifndef PRISTINE_RADOS_REC_H
#define PRISTINE_RADOS_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rbd_cluster;
struct rados_recs;

#define RADOS_REC_MAX (4u << 20)
/* expect values of rados_rec_write */
#define RADOS_REC_NEW 0                 /* create: -EEXIST if it exists */
#define RADOS_REC_ANY UINT64_MAX        /* whatever is there (no check) */

/* Records in pool through c (borrowed; close every rados_recs before
 * rbd_cluster_close).  0 and *out, or -errno with msg. */
int rados_recs_open(struct rbd_cluster *c, const char *pool, struct rados_recs **out, char *msg,
		    size_t msglen);
/* Unwatch everything and free.  NULL is a no-op. */
void rados_recs_close(struct rados_recs *r);

/* Read record oid: *text (malloc'd, NUL-terminated: free it) and its
 * version *ver.  -ENOENT when it does not exist. */
int rados_rec_read(struct rados_recs *r, const char *oid, char **text, uint64_t *ver);
/* Just its version (cheap: a stat).  -ENOENT when it does not exist. */
int rados_rec_version(struct rados_recs *r, const char *oid, uint64_t *ver);
/*
 * Replace record oid by text if it is still at version expect
 * (RADOS_REC_NEW: create, RADOS_REC_ANY: no check).  0 and *newver (may
 * be NULL), -ECANCELED when it changed since expect (or -EEXIST /
 * -ENOENT for NEW / a version of a record that is gone), -E2BIG past
 * RADOS_REC_MAX, or -errno.
 */
int rados_rec_write(struct rados_recs *r, const char *oid, const char *text, uint64_t expect,
		    uint64_t *newver);
/* A binary object (not a text record: no version check), replaced whole
 * by len bytes at buf with one write_full (a reader sees the old or the
 * new), and read whole: *buf (free it), *len; -EFBIG over max bytes,
 * -ENOENT when it does not exist.  0 or -errno.  (Warm boots' boot set
 * files, lab/store_rados.c.) */
int rados_rec_write_bytes(struct rados_recs *r, const char *oid, const void *buf, size_t len);
int rados_rec_read_bytes(struct rados_recs *r, const char *oid, size_t max, uint8_t **buf,
			 size_t *len);
/* Remove record oid if still at version expect (RADOS_REC_ANY: any).
 * 0, -ENOENT, -ECANCELED or -errno. */
int rados_rec_remove(struct rados_recs *r, const char *oid, uint64_t expect);

/*
 * The cluster-wide change lock on object oid (created if missing): an
 * exclusive RADOS lock held by this connection under cookie, that
 * expires by itself after lease_s seconds (so a gateway that dies
 * holding it blocks the others at most that long).  Waits up to wait_ms
 * for a holder to let go.  0, -EBUSY (still held: *holder gets its
 * description, the gateway's name, may be NULL) or -errno.
 */
int rados_rec_lock(struct rados_recs *r, const char *oid, const char *cookie, const char *desc,
		   unsigned lease_s, unsigned wait_ms, char *holder, size_t holderlen);
void rados_rec_unlock(struct rados_recs *r, const char *oid, const char *cookie);

/*
 * Watch oid (created if missing): fn(arg) runs (on a librados thread)
 * after every rados_rec_notify on it by any gateway, including this
 * one, and after the watch was lost and set up again (a change may have
 * been missed).  0 and *handle (for rados_rec_unwatch) or -errno.
 */
int rados_rec_watch(struct rados_recs *r, const char *oid, void (*fn)(void *arg), void *arg,
		    uint64_t *handle);
void rados_rec_unwatch(struct rados_recs *r, uint64_t handle);
/* Tell every watcher of oid that it changed; waits at most timeout_ms
 * for their acks (a dead watcher does not hold us longer).  0 or -errno
 * (-ETIMEDOUT is not an error worth more than a debug line). */
int rados_rec_notify(struct rados_recs *r, const char *oid, unsigned timeout_ms);

#endif
