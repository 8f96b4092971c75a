/*
 * disk.h - what an initiator logs in to: a copy-on-write overlay over one
 * version of an image, the LU (SCSI target, LUN 0) that serves it, the
 * use it holds of that version, and its sessions.
 *
 * A client has one (its overlay in STATE/overlays/); so has an image's
 * draft (its overlay is the future layer, in STATE/images/NAME/layers/).
 * An image on Ceph RBD places both in Ceph instead (clones: its store,
 * lab/store_rbd.c); the disk holds either as a struct cow (cow.h).
 * Every session of the initiator shares the one overlay and LU.
 *
 * States: closed (cow == NULL, no version held) and open (cow, scsi and the
 * version use all held; a read-only extra disk: ro_be instead of cow, its
 * LU in its host's target).  sessions counts attached logins of an open
 * disk; `resetting` is set while its overlay is being changed, and then
 * no login attaches.
 *
 * Locking: the registry lock (clients.h) protects every field.
 */
#ifndef PRISTINE_DISK_H
#define PRISTINE_DISK_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/iscsi.h"
#include "storage/cow.h"

struct image;
struct lab_store;
struct scsi_target;
struct backend;
struct bootrec;
struct prefetcher;

struct disk {
	char initiator[ISCSI_NAME_MAX];  /* whose logins see it */
	char dir[PATH_MAX];           /* where the store keeps its overlay (local: a path) */
	struct image *img;
	unsigned version;             /* the image version its overlay is on */
	bool is_draft;                /* an image's draft, not a client's disk */
	struct cow *cow;              /* its overlay (local or RBD), open, or NULL */
	struct scsi_target *scsi;     /* LUN 0 over cow */
	unsigned sessions;
	bool resetting;               /* being changed: no login attaches */
	uint64_t quota;               /* bytes, 0 = none */
	/* An extra disk of a PC (lab/xdisk.h): its LU sits at lun in host,
	 * the target of the PC's boot disk (set before disk_open; NULL = a
	 * target of its own, LUN 0), whose name host_target is.  Its overlay
	 * is placed by the store's xdisk_where.  read_only: no overlay at
	 * all, the LU is the version itself (ro_be, the version's backend,
	 * while open). */
	bool extra;
	bool read_only;
	struct scsi_target *host;
	const char *host_target;
	unsigned lun;
	struct backend *ro_be;
	/* Warm boots (issue 18): the tap (storage/tap.h) in front of its
	 * LU's backend while open, made by disk_open and closed by disk_close
	 * after the LU is gone; rec (a client's boot disk: its recorder) and
	 * pf (the registry's prefetcher) are borrowed, set before disk_open,
	 * NULL = nothing recorded / nobody told. */
	struct backend *tap;
	struct bootrec *rec;
	struct prefetcher *pf;
};

/*
 * A closed disk of initiator over version of img, its overlay in dir.
 * -ENAMETOOLONG if dir does not fit; else 0.
 */
int disk_init(struct disk *d, const char *initiator, struct image *img, unsigned version,
	      const char *dir, uint64_t quota);
/*
 * Open d: take a use of its version (the image's current one if its own
 * no longer exists), open or create its overlay in store (its image's)
 * over it (store_floor: bytes the file system keeps free; a client's
 * dir is asked of the store again, for that version), build its LU.
 * 0 or -errno (logged), leaving it closed.
 */
int disk_open(struct disk *d, struct lab_store *store, uint64_t store_floor);
/*
 * Close d's LU and overlay - flushed and checkpointed (keep) or dropped -
 * and release its version.  Returns cow_close's result (0 when
 * dropped or already closed).
 */
int disk_close(struct disk *d, bool keep);
/*
 * Throw d's overlay away in constant time: closed (dropped) and
 * discarded by the store as label.  0 (also when it never wrote
 * anything) or -errno.  The caller wakes the purger.
 */
int disk_discard(struct disk *d, struct lab_store *store, const char *label);
/*
 * Add an LU over open disk src's overlay at lun of host (named
 * host_target), identified as src's own would be: an image's draft served
 * at its maintenance PC's LUN (lab/xdisk.h, MAINTENANCE).  src keeps
 * owning the overlay; the caller removes the LU (scsi_target_remove_lu)
 * before src closes, then closes *tap (the LU's tap, storage/tap.h: with
 * no recorder, told to src's prefetcher; disk_tap_close).  0 or -errno.
 */
int disk_host_lu(struct disk *src, struct scsi_target *host, unsigned lun, const char *host_target,
		 struct backend **tap);
/* Close *tap (a tap whose LU is gone) and set it NULL; NULL is a no-op. */
void disk_tap_close(struct backend **tap);
/* Whether d is open (its LU and version use held). */
bool disk_is_open(const struct disk *d);
/* Bytes its overlay holds (0 when closed). */
uint64_t disk_used_bytes(const struct disk *d);
/* Its overlay's sticky error (cow_error), 0 when healthy or closed. */
int disk_error(const struct disk *d, const char **what);

#endif
