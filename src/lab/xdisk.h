/*
 * xdisk.h - a PC's extra disks: LUN 1..n beside its boot disk (LUN 0).
 *
 * In a café the game disk, in a school the data disk, is a second shared
 * disk every PC mounts.  An extra disk is an ordinary image (images.h: its
 * own versions, drafts, maintenance, flatten, export) given to PCs as a
 * further LUN of their own target.  Each PC gets its own disk on it (a
 * struct disk: its overlay over one version of that image), with a POLICY
 * per attachment:
 *
 *   overlay           the PC's writes are kept, like its boot disk's; it
 *                     moves to the image's current version at a reset of
 *                     that disk (client reset PC, or --disk IMAGE)
 *   discard-on-boot   the overlay is discarded, and the PC moved to the
 *                     current version, every time the PC boots (its boot
 *                     request to the boot endpoint, as reset-on-boot) and
 *                     at every reset
 *   read-only         no overlay at all: the LU is the version itself,
 *                     writes answer DATA PROTECT; the PC moves to the
 *                     current version at its next boot request and at a
 *                     reset (never at a mere login: a session that
 *                     reconnects must find the same content under its
 *                     mounted file system)
 *
 * WHO GETS WHICH DISK.  An attachment (struct xdisk_decl) names an image
 * and optionally a policy and a quota.  The GROUP's attachments belong to
 * a boot image ("every PC of image lab sees games"): [image lab] disks =
 * in the configuration file, or `pristinectl image disk add lab games`
 * (kept in lab's image record).  A PC's own come after them: [client X]
 * disks =, or `pristinectl client disk add X games` (kept in its client
 * record).  A PC's own attachment of an image its group also gives
 * replaces the group's (its policy and quota win, the LUN stays the
 * group's).  A policy or quota an attachment leaves out is the extra
 * image's own: [image games] disk-policy = (default overlay), disk-quota
 * = (default none).  The boot image itself can not be an extra disk of
 * its own PCs; at most XDISK_MAX extra disks per PC.
 *
 * LUNS.  The group's attachments take LUN 1, 2, ... in their order; a
 * PC's own the next free LUNs.  A PC's LUN for an image is recorded in its
 * client record once given and kept while the attachment stays, so an
 * attachment removed never renumbers the others (the next one added takes
 * the lowest free LUN).
 *
 * ONLINE.  An attachment added or removed while a PC is online reaches it
 * at once: the LU is added to (or drained and removed from) the target
 * its sessions use, and every session gets the unit attention REPORTED
 * LUNS DATA HAS CHANGED (scsi.h).  Removing an attachment discards the
 * PC's overlay on it.  A reset of one extra disk of an online PC needs
 * force and swaps that LU (removed, overlay discarded, a fresh one added:
 * the PC's sessions and its other disks are untouched); a reset of all
 * disks (the default of client reset) behaves as a reset always did for
 * the boot disk (force ends the sessions) and resets each extra disk too.
 *
 * MAINTENANCE.  When an extra image has a draft whose maintenance client
 * is this PC, its LUN serves the draft (the maintenance PC boots its
 * system disk and finds the draft of the game disk at its usual LUN);
 * its own overlay on that image is kept aside, as for a boot image.
 * (Opened at its login like its own disk; image edit, commit and discard
 * end its sessions first - refused while online without force - and a
 * commit moves its own disk on that image to the new version, its old
 * overlay discarded, as for a boot image's maintenance client.)
 *
 * WHERE.  A PC's overlay on an extra image is kept by that image's store
 * (store.h xdisk_where): locally STATE/disks/<image>/<escaped initiator>/,
 * on RBD a clone like a boot disk's.  Opened at the PC's first login
 * (not at start); one found torn or corrupt is quarantined (kept for the
 * admin, an event) and the PC gets a fresh one.
 *
 * Locking: the registry lock (clients.h) protects everything here.
 */
#ifndef PRISTINE_XDISK_H
#define PRISTINE_XDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lab/disk.h"

/* LUN 1..XDISK_MAX (scsi.h SCSI_MAX_LUNS: 16 LUs a target). */
#define XDISK_MAX 15

enum xdisk_policy { XDISK_OVERLAY, XDISK_DISCARD_ON_BOOT, XDISK_READ_ONLY };

/* "overlay", "discard-on-boot", "read-only" ("?" for anything else). */
const char *xdisk_policy_name(enum xdisk_policy p);
/* One of the names above.  0, or -EINVAL with *out untouched. */
int xdisk_parse_policy(const char *s, enum xdisk_policy *out);

/* An attachment as declared (configuration file, API). */
struct xdisk_decl {
	char image[64];               /* the extra image's name */
	bool has_policy;              /* false: the image's disk-policy */
	enum xdisk_policy policy;
	bool has_quota;               /* false: the image's disk-quota */
	uint64_t quota;               /* bytes, 0 = none */
};

/*
 * A list of attachments as the configuration file's `disks =` writes it:
 * entries separated by blanks or commas, each IMAGE[:POLICY[:QUOTA]]
 * (QUOTA a size as util/parse.h reads it, e.g. 20G; POLICY may be empty:
 * "games::20G").  Names are checked for form only (not that the image
 * exists), duplicates refused.  *n gets the count (<= XDISK_MAX).  0, or
 * -EINVAL with msg ("disks: ..."; which entry and why).
 */
int xdisk_parse_list(const char *val, struct xdisk_decl *out, unsigned *n, char *msg,
		     size_t msglen);

/* One extra disk of one PC (a client holds up to XDISK_MAX). */
struct xdisk {
	struct disk disk;             /* disk.img = the extra image; its overlay, or none
				       * (read-only); its LU sits at lun in the PC's target */
	unsigned lun;                 /* 1..XDISK_MAX */
	enum xdisk_policy policy;     /* in force (declared, else the image's) */
	uint64_t quota;               /* in force, bytes, 0 = none */
	bool from_group;              /* given by its boot image's group (else its own) */
	bool from_config;             /* declared in the configuration file */
	bool on_draft;                /* its LUN serves its image's draft (MAINTENANCE;
				       * disk stays closed meanwhile) */
};

struct registry;
struct client;
struct image;

/*
 * The admin's verbs (each takes the registry lock, is persisted before it
 * returns, and writes an event).  0 or -errno with msg: -ENOENT (no such
 * client, image or attachment), -EINVAL (the boot image itself, a bad
 * policy, XDISK_MAX reached, an attachment of the configuration file -
 * "change it in FILE"), -EEXIST (already attached), -EBUSY (online
 * without force where force is needed; msg says so).
 *
 * policy NULL and has_quota false: the image's own.  group_image names a
 * boot image: the attachment is its group's (every PC of it).
 */
int registry_xdisk_add(struct registry *reg, const char *client, const char *image,
		       const char *policy, bool has_quota, uint64_t quota, char *msg, size_t msglen);
int registry_xdisk_remove(struct registry *reg, const char *client, const char *image,
			  char *msg, size_t msglen);
int registry_group_xdisk_add(struct registry *reg, const char *group_image, const char *image,
			     const char *policy, bool has_quota, uint64_t quota, char *msg,
			     size_t msglen);
int registry_group_xdisk_remove(struct registry *reg, const char *group_image, const char *image,
				char *msg, size_t msglen);
/*
 * Reset a PC's disks: disk NULL = all of them (its boot disk as
 * registry_reset always did, then every extra disk), or the one disk on
 * image disk (its boot image's name = its boot disk only).  See ONLINE
 * above for force.  Every disk reset moves to its image's current
 * version.
 */
int registry_reset_disks(struct registry *reg, const char *id, const char *disk, bool force,
			 char *msg, size_t msglen);

/* c's disks as a new JSON array, LUN 0 (its boot disk) first:
 * [{"lun", "image", "version", "current_version", "policy" (LUN 0:
 * the client's reset policy), "used_bytes", "quota_bytes", "from"
 * ("boot", "group", "client": who gave the attachment in force - a PC's own
 * replacing its group's is "client"), "config": bool, "draft": bool (serves the
 * image's draft), "error"?}].  Lock held. */
json_t *client_disks_json(struct registry *reg, const struct client *c);
/* img's group attachments as a new JSON array [{"image", "policy"?,
 * "quota_bytes"?, "config": bool}], and (for an image used as an extra
 * disk) how many PCs have it: "disk_of".  Lock held. */
json_t *image_group_disks_json(struct registry *reg, const struct image *img);

/* How many PCs have img as an extra disk (an image's "disk_of").  Lock held. */
unsigned image_disk_of(struct registry *reg, const struct image *img);

/* ---- for the lab's own files (clients.c, image_*.c, boot_resolve.c,
 * daemon/setup.c); lock held unless said ---- */
/*
 * Bring c's extra disks in line with its attachments (its boot image's
 * group's, then its own): a disk whose attachment went is closed and its
 * overlay discarded, a new one gets the lowest free LUN (closed; opened at
 * once when the PC is online, and its sessions told).  True when anything
 * changed (the caller persists: bindings_save).
 */
bool xdisk_sync(struct registry *reg, struct client *c);
/* Whether c has an extra disk or an own attachment (records). */
bool xdisk_any(const struct client *c);
/* At a login, once c's boot disk is open: open every closed extra disk
 * into its target (a failure is logged with an event; the PC goes on). */
void xdisk_open_all(struct registry *reg, struct client *c);
/* Close c's extra disks (overlays kept): before its boot disk's target
 * goes (its reset, its release in a cluster, the daemon's stop). */
void xdisk_close_all(struct client *c);
/* Free c's extra disks: closed, overlays discarded (discard: the client
 * is removed) or kept. */
void xdisk_free_all(struct registry *reg, struct client *c, bool discard);
/* Whether a boot of c moves any of its extra disks (discard-on-boot, or
 * read-only on an old version). */
bool xdisk_boot_due(const struct client *c);
/* A boot of c (its boot request; its sessions ended): every discard-on-
 * boot disk discarded and moved to its image's current version, every
 * read-only one moved.  Persisted.  0 or -EIO (logged). */
int xdisk_at_boot(struct registry *reg, struct client *c);
/* Whether c has an extra disk on img. */
bool xdisk_has(const struct client *c, const struct image *img);
/*
 * The draft of img is about to open, be committed or discarded (what:
 * "commit" ...) with initiator as its maintenance client: when that is a
 * PC with an extra disk on img, its sessions end (refused with -EBUSY
 * and msg while online unless force) and that disk's LU goes, to come
 * back at its next login on whatever then serves it.  0 otherwise.
 */
int xdisk_draft_quiesce(struct registry *reg, struct image *img, const char *initiator, bool force,
			const char *what, char *msg, size_t msglen);
/* After img's draft was committed: its maintenance PC's own disk on img
 * (if any) discarded and moved to the new current version.  Persisted. */
void xdisk_draft_committed(struct registry *reg, struct image *img, const char *initiator);
/* A PC with an extra disk on version v of img, or NULL (image delete). */
const struct client *xdisk_version_user(struct registry *reg, const struct image *img, unsigned v);
/* The "disks" of c's client record (clients.json): a new array of
 * {"image", "lun", "version"} per disk, then {"image", "policy"?,
 * "quota_bytes"?, "own": true} per own attachment made by the API. */
json_t *xdisk_records_json(const struct client *c);
/* The reverse, at start (c made, its configured attachments set): its
 * recorded disks (LUN, version) and own API attachments. */
void xdisk_restore(struct registry *reg, struct client *c, json_t *disks);
/* A gateway of a cluster (lab/records.c), lock held: c's record as
 * another gateway saved it - its own API attachments, and the LUN and
 * version of each disk not open here - then xdisk_sync (not saved). */
void xdisk_refresh(struct registry *reg, struct client *c, json_t *disks);
/* The same for img's group attachments of the API ("disks" of its
 * record); its PCs synced. */
void xdisk_group_refresh(struct registry *reg, struct image *img, json_t *arr);
/* Whether a PC online here has img's draft at one of its LUNs (the draft
 * must stay open); such an LU of a PC offline is removed. */
bool xdisk_draft_busy(struct registry *reg, const struct image *img);
/* img's group attachments of the API for image.json ("disks"), and back
 * (after the configuration file's: one it has too is left out). */
json_t *xdisk_group_json(const struct image *img);
void xdisk_group_restore(struct image *img, json_t *arr);
/* The configuration file's [image] disks =, disk-policy, disk-quota
 * (before image_load) and [client] disks = (registry_configure). */
void xdisk_group_configure(struct image *img, const struct xdisk_decl *d, unsigned n,
			   enum xdisk_policy policy, uint64_t quota);
void xdisk_own_configure(struct client *c, const struct xdisk_decl *d, unsigned n);

#endif
