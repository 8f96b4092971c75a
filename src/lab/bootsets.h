/*
 * bootsets.h - warm boots, the lab's side (issue 18): every version of
 * every image has a BOOT SET (storage/bootset.h) learned from the boots
 * of its PCs, kept with the version by the image's store (store.h
 * bootset_*), and PREFETCHED (storage/prefetch.h) when PCs are about to
 * boot that version from a cold cache.
 *
 * Learning.  A PC's boot begins where its boot timing begins
 * (util/iostats.h boot_track): its boot script served by the boot
 * endpoint (from_script: a recording in progress is dropped and a new one
 * starts) or a login of a PC that had no session (starts one only when
 * none is on).  Its boot disk's reads are recorded (client->rec, through
 * the tap on its LU: storage/tap.h) until they settle (bootrec.h) - held
 * until a session that is not the firmware's (iPXE's, by its ISID: the
 * io_stats hook's `firmware`) logs in, so the gap while a PC loads its
 * kernel by TFTP does not end the recording before its OS reads;
 * bootsets_tick then merges the recording into the boot set of the
 * version the PC booted and saves it.  Only the boot disk (LUN 0) of a
 * client is recorded: not extra disks, not a draft's maintenance PC.
 *
 * Prefetch.  Version v of img is queued (bootsets_prefetch) at daemon
 * start (each image's current version, then the other versions PCs are
 * on, most PCs first), when a version becomes current (commit,
 * rollback), after a flatten (the version's new root file is cold), and
 * on the admin's request (POST /v1/images/{name}/prefetch).  A version
 * with no boot set of its own inherits its parent's (copied, marked
 * inherited_from, saved) when it is made: the same disk addresses read
 * through the new layer.  Nothing is queued when the daemon runs with
 * prefetch off or the set is empty.  The job reads the version's backend
 * (its chain: the page cache of its files; on Ceph, the shared read
 * cache) in bootset_plan's order; before a version's backend closes, its
 * job is cancelled.
 *
 * Showing.  bootset_json(v) is the "boot_set" member of a version's JSON
 * (GET /v1/images/{name}, `pristinectl image versions`):
 *   {"bytes": B, "chunks": N, "boots": K, "inherited_from": V|0,
 *    "resident_bytes": R (in memory now: backend resident, estimated),
 *    "prefetch": "none|queued|running|done|cancelled|failed",
 *    "prefetched_bytes": P, "prefetch_total_bytes": T,
 *    "prefetch_seconds": S (of the last job that ended, or so far)}
 *
 * Locking: the registry lock, unless said.
 */
#ifndef PRISTINE_LAB_BOOTSETS_H
#define PRISTINE_LAB_BOOTSETS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct registry;
struct image;
struct version;
struct client;

/* Load every version's boot set of img from its store (at image_load;
 * a dropped file or a cut one is logged and counted as an event). */
void bootsets_load(struct registry *reg, struct image *img);
/* A PC's boot began (see above); c's disk is its boot disk. */
void bootsets_boot_begin(struct registry *reg, struct client *c, bool from_script);
/* Merge and save the recordings that are due (bootrec_due) at now_ns;
 * called about once a second by the scheduler thread (lock not held:
 * it takes it). */
void bootsets_tick(struct registry *reg, int64_t now_ns);
/* Version newv was just made from parent (commit): it inherits parent's
 * set when it has none.  Saved. */
void bootsets_inherit(struct registry *reg, struct image *img, unsigned newv, unsigned parent);
/* Queue the prefetch of version v of img (why: for the log).  0, or
 * -ENOENT (no such version), -ENODATA (empty boot set), -EPERM (prefetch
 * is off), -errno. */
int bootsets_prefetch(struct registry *reg, struct image *img, unsigned v, const char *why);
/* At start: each image's current version, then the others PCs are on. */
void bootsets_prefetch_all(struct registry *reg);
/* Cancel version v's prefetch before its backend closes (lock held; waits
 * at most one read). */
void bootsets_cancel(struct registry *reg, struct image *img, unsigned v);
/* Version v is deleted (image_delete, before its backend closes): its
 * prefetch is cancelled and forgotten, its set freed and its file
 * removed.  Added by the lab (not in the first contract). */
void bootsets_forget(struct registry *reg, struct image *img, unsigned v);
/* The "boot_set" object of version v (a new reference). */
json_t *bootset_json(struct registry *reg, struct image *img, unsigned v);

#endif
