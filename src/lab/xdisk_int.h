/*
 * xdisk_int.h - what the extra-disk files (xdisk.c, xdisk_verbs.c,
 * xdisk_records.c) share; lab-internal.  Lock held throughout.
 */
#ifndef PRISTINE_XDISK_INT_H
#define PRISTINE_XDISK_INT_H

#include "lab/clients.h"
#include "lab/xdisk.h"

/* An attachment in force for one PC. */
struct want {
	struct xdisk_decl decl;
	bool from_group, from_config;
};

/* c's extra disk on image, or NULL. */
struct xdisk *xd_find(const struct client *c, const char *image);
/* The name a PC is shown under. */
const char *xd_who(const struct client *c);
/*
 * The attachments c has now: its boot image's group's (skipping images
 * not served and the boot image itself), each replaced by an own one of
 * the same image, then its other own ones.  Returns how many (<=
 * XDISK_MAX) in w.
 */
unsigned xd_wanted(struct registry *reg, const struct client *c, struct want *w);
/*
 * Reset x: its overlay discarded (none for read-only), moved to its
 * image's current version, reopened at once when its PC is online (a
 * fresh LU at the same LUN; its sessions told).  why for the log.
 * Persisted by the caller.  0 or -errno with msg.
 */
int xdisk_reset(struct registry *reg, struct client *c, struct xdisk *x, const char *why,
		char *msg, size_t msglen);
/* Whether c's boot disk is in use: its target's LU inventory is seen. */
bool xd_online(const struct client *c);
/* Close x (its overlay kept), its LU out of the target. */
void xdisk_close(struct client *c, struct xdisk *x);
/*
 * A new closed extra disk of c on img at lun, on version (0 = the
 * image's current).  Its place is asked of the image's store now (a
 * discard needs it while closed).  NULL when out of memory or the place
 * does not fit (logged).
 */
struct xdisk *xdisk_make(struct registry *reg, struct client *c, struct image *img,
			 unsigned lun, unsigned version);
/* Whether x's LUN serves its image's draft: c maintains it. */
bool xd_serves_draft(const struct client *c, const struct xdisk *x);

#endif
