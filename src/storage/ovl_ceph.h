/*
 * ovl_ceph.h - a client's overlay (storage/overlay.h, the same code and
 * the same on-disk format, docs/overlay-format.md) kept in Ceph instead
 * of a local directory: a struct ovl_io whose "files" are RADOS objects
 * and one RBD image.  CONTRACT (issue 14, the third step; implemented in
 * ovl_ceph.c, the files, and ovl_ceph_admin.c, markers/discard/purge).
 *
 * Why (docs/images.md, "PC overlays on RBD"): a 4 KiB first write into an
 * RBD clone costs a copy-up of the parent's object; the overlay writes
 * its block into a plain thin RBD image at the same offset (no parent, no
 * copy-up) and records the block in its map, as on a local file.
 * Measured here (rbd bench, 4 KiB random writes QD32, rbd cache off):
 * plain image 5600-6900 IOPS, a fresh 4 MiB-object clone 3870, a 64 KiB
 * one 1760.
 *
 * Layout: the overlay's directory DIR (the dir given to overlay_open: an
 * object-name prefix in one pool, RBD_OWN_PREFIX first, no '/') is
 *   DIR              a RADOS object, the directory marker; its xattr
 *                    "inst" holds INST, 16 hex digits, the live instance
 *   DIR.INST.data    an RBD image: the overlay's data file (plain, thin,
 *                    objects of 2^OVL_CEPH_ORDER bytes, exclusive-lock,
 *                    object-map, fast-diff; sized by ftruncate)
 *   DIR.INST.NAME    a RADOS object for every other file the overlay
 *                    opens in DIR (info, log, map and their .tmp)
 * and the store's index object (ovl_ceph_new's index) has an omap key DIR
 * for every marker made, so the purge finds them.
 *
 * The ovl_io's semantics, as the overlay relies on them:
 *  - mkdirat(AT_FDCWD, DIR): adds DIR to the index, then creates the
 *    marker exclusively with a new random INST; -EEXIST if it exists.
 *  - open(AT_FDCWD, DIR or its parent, O_DIRECTORY): a handle on the
 *    marker (DIR's INST read at that moment; the parent: a handle that
 *    only fsyncs).  -ENOENT when DIR has no marker.
 *  - open(dirfd, NAME, flags): O_CREAT creates, O_TRUNC empties (data:
 *    an existing image is removed and made again), neither: -ENOENT when
 *    missing.  pread/pwrite/ftruncate at any offset; a pread past the end
 *    is -EIO (as the real io's).  fsync: rbd_flush for data, nothing for
 *    an object (a RADOS write is durable once acknowledged) or a dir.
 *  - renameat(dirfd, TMP, NAME): NAME's content replaced atomically by
 *    TMP's (one write_full), then TMP removed; an open handle on TMP now
 *    names NAME (as an fd follows its inode).  A crash in between leaves
 *    TMP, which the overlay opens with O_TRUNC next time.
 *  - punch: rbd_discard on data (reads of a punched range are not relied
 *    on: the map says ZERO); -EOPNOTSUPP on an object.
 *  - fstat_size: data's size and OVL_ALLOC_UNKNOWN as allocated (RBD has
 *    no cheap exact count: the overlay then counts its PRESENT blocks,
 *    overlay.h); an object's size and size.
 *  - fs_free: the pool's free bytes (rados_cluster_stat; cached 1 s).
 *  - splice: NULL (reads are copies).
 *  - Full pool: every write carries FULL_TRY (rbd_int.h), so a write that
 *    needs new space fails -ENOSPC at once instead of waiting.
 * Threading: any number of threads on any number of overlays through one
 * ovl_ceph (a mutex-protected handle table; I/O runs outside the lock).
 *
 * Fencing: the data image's exclusive lock is taken when data is opened
 * (a lock held by the cluster's breakable address - rbd.h - is broken
 * first; another live owner's: -EBUSY).  Breaking a lock blocklists its
 * owner, which stops its RADOS writes too, so the metadata objects need
 * no lock of their own.
 */
#ifndef PRISTINE_OVL_CEPH_H
#define PRISTINE_OVL_CEPH_H

#include <stddef.h>
#include <stdint.h>

#include "storage/overlay.h"
#include "storage/rbd.h"

/* Object size of an overlay's data image: 2^OVL_CEPH_ORDER (4 MiB: no
 * copy-up ever happens in a plain image, so big objects cost nothing per
 * first write and keep the object count, and the purge, small). */
#define OVL_CEPH_ORDER 22

struct ovl_ceph;

/*
 * An ovl_io over pool through cl (borrowed: close every overlay opened
 * with it, then ovl_ceph_free, before rbd_cluster_close).  index: the
 * name of the RADOS object whose omap lists this store's overlay markers
 * (e.g. "pristine.<uid>.overlays").  0 and *out, or -errno with msg.
 */
int ovl_ceph_new(struct rbd_cluster *cl, const char *pool, const char *index, struct ovl_ceph **out,
		 char *msg, size_t msglen);

/* The io to put in overlay_opts.io (owned by c). */
const struct ovl_io *ovl_ceph_io(struct ovl_ceph *c);

/*
 * Throw the overlay DIR away in constant time (a reset): ONE atomic RADOS
 * operation on the marker sets a new INST and records the old one in the
 * marker's omap (key = old INST), so the name is free at once and the
 * next overlay_open of DIR makes a new, empty overlay.  The overlay must
 * be closed (or dropped) first.  0, -ENOENT (no marker), or -errno.
 */
int ovl_ceph_discard(struct ovl_ceph *c, const char *dir);

/* Whether DIR has a marker: 0 (yes), -ENOENT, or -errno. */
int ovl_ceph_exists(struct ovl_ceph *c, const char *dir);

/*
 * Reclaim everything discarded: for every marker in the index, every old
 * INST in its omap has its data image removed and its objects deleted,
 * then its key dropped; an index entry whose marker is gone is dropped.
 * A data image still open (locked) elsewhere is left for a later purge.
 * Slow: from the purger thread.  0 or the first -errno met (it carries on).
 */
int ovl_ceph_purge(struct ovl_ceph *c);

/* Free c.  NULL is a no-op. */
void ovl_ceph_free(struct ovl_ceph *c);

#endif
