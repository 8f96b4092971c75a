/*
 * rbd_import.h - filling a new RBD image from a local raw file: how
 * `pristinectl image import --rbd POOL` puts an imported disk into Ceph
 * (lab/image_rbd.c), and the pool check that refuses a bad pool before
 * any work starts.
 *
 * The image is made with pristine's own options (rbd_disk.h: format 2,
 * layering, exclusive-lock, object map) so its snapshot can be cloned
 * for the clients, and its name is the caller's (it starts with
 * RBD_OWN_PREFIX: pristine made it).  Not on any I/O path: one call per
 * import, from a background job.
 */
#ifndef PRISTINE_RBD_IMPORT_H
#define PRISTINE_RBD_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "storage/rbd.h"

/* Objects of the images imports make: 2^22 = 4 MiB, RBD's own default.
 * Clients write into clones with their own (smaller) objects; the
 * golden is only read, in big sequential runs at boot. */
#define RBD_IMPORT_ORDER 22

/* Whether pool exists in c's cluster and we may use it: 0, or -errno
 * (-ENOENT: no such pool) with msg naming it. */
int rbd_pool_check(struct rbd_cluster *c, const char *pool, char *msg, size_t msglen);

/* Called after each piece is written: done of total bytes.  A non-zero
 * return stops the fill (-ECANCELED). */
typedef int (*rbd_fill_step)(void *arg, uint64_t done, uint64_t total);

/*
 * Create pool/name holding the bytes of the local raw file path (its
 * size must be a multiple of 512), writing only the non-zero pieces (a
 * new image reads zeros: it stays sparse), flushed.  -EEXIST if
 * pool/name exists (nothing touched); on any other failure the
 * half-filled image is removed again.  0 or -errno with msg.
 */
int rbd_image_fill(struct rbd_cluster *c, const char *pool, const char *name, const char *path,
		   rbd_fill_step step, void *arg, char *msg, size_t msglen);

/*
 * Remove pool/name for good, its snapshots first (unprotected; -EBUSY
 * while a clone of one exists).  For an import that failed or a crash
 * cut short: never served, nothing reads it.  -ENOENT if it is not
 * there.
 */
int rbd_image_remove_all(struct rbd_cluster *c, const char *pool, const char *name, char *msg,
			 size_t msglen);

#endif
