/*
 * xdisk.c - a PC's extra disks (see xdisk.h): which it has (its boot
 * image's group attachments, then its own), at which LUN, opened into its
 * boot disk's target, closed, reset and moved at boot as their policy
 * says.  The verbs are in xdisk_verbs.c, the JSON and the records in
 * xdisk_records.c.
 *
 * State of one extra disk (struct xdisk in c->x[lun - 1]):
 *   closed   no LU, no version held (the PC offline, or its boot disk's
 *            target gone: reset or released in a cluster)
 *   open     its LU at its LUN in c->disk.scsi, its version held
 * An extra disk is opened at a login of its PC (registry_attach), never
 * at start, and closed before its boot disk's target is freed.  Its I/O
 * counts in its PC's counters: its LU is reached through its PC's
 * sessions, whose counters (registry_io_stats) are the PC's.
 *
 * Locking: the registry lock, held by every function here.
 */
#include "lab/xdisk.h"
#include "lab/xdisk_int.h"
#include "lab/clients.h"
#include "lab/images.h"
#include "lab/store.h"
#include "scsi/scsi.h"
#include "util/events.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The store that keeps d's overlay: its image's. */
static struct lab_store *xstore(struct registry *reg, const struct disk *d)
{
	return d->img->store ? d->img->store : registry_store(reg);
}

/* The name a PC is shown under. */
const char *xd_who(const struct client *c)
{
	return c->name[0] ? c->name : c->initiator;
}

/* Wake the purger: something went to the trash.  Lock held. */
static void purge_soon(struct registry *reg)
{
	reg->purge_pending = true;
	pthread_cond_broadcast(&reg->cond);
}

/* ---- one extra disk ---- */

/*
 * A new closed extra disk of c on img at lun, on version (0 = the
 * image's current).  Its place is asked of the image's store now (a
 * discard needs it while closed).  NULL when out of memory or the place
 * does not fit (logged).
 */
struct xdisk *xdisk_make(struct registry *reg, struct client *c, struct image *img,
			 unsigned lun, unsigned version)
{
	struct xdisk *x = calloc(1, sizeof(*x));
	struct lab_store *st = img->store ? img->store : registry_store(reg);
	char dir[PATH_MAX];

	if (!x)
		return NULL;
	if (version < 1 || version > img->nversions || img->versions[version - 1].deleted)
		version = img->current;
	if (st->ops->xdisk_where(st, img->name, c->initiator, version, dir, sizeof(dir)) ||
	    disk_init(&x->disk, c->initiator, img, version, dir, 0)) {
		log_err("client %s: the place of its disk on %s does not fit", c->initiator, img->name);
		free(x);
		return NULL;
	}
	x->disk.extra = true;
	x->lun = lun;
	x->policy = img->disk_policy;
	x->quota = img->disk_quota;
	return x;
}

/* Move x's untrusted overlay aside (never deleted) and say so. */
static void xdisk_quarantine(struct registry *reg, struct client *c, struct xdisk *x, const char *why)
{
	struct lab_store *st = xstore(reg, &x->disk);
	char to[PATH_MAX];
	int rc = st->ops->quarantine(st, x->disk.dir, to, sizeof(to));

	if (rc == 0)
		log_err("client %s: its overlay on %s (%s) cannot be trusted (%s): kept aside as %s; "
			"it starts from a fresh one", c->initiator, x->disk.img->name, x->disk.dir, why, to);
	else
		log_err("client %s: its overlay on %s (%s) cannot be trusted (%s) and could not be "
			"moved aside: %s", c->initiator, x->disk.img->name, x->disk.dir, why, strerror(-rc));
	events_add(EV_ERROR, xd_who(c), x->disk.img->name, "disk at LUN %u: overlay %s, kept aside; a "
		   "fresh one made", x->lun, why);
}

/* Whether x's LUN serves its image's draft: c maintains it. */
bool xd_serves_draft(const struct client *c, const struct xdisk *x)
{
	const struct draft *dr = x->disk.img->draft;

	return dr && strcasecmp(dr->disk.initiator, c->initiator) == 0;
}

/* Put the draft of x's image at x's LUN of c's target (opened first if
 * it is recorded but closed).  0 or -errno (logged, an event). */
static int draft_open(struct registry *reg, struct client *c, struct xdisk *x)
{
	struct disk *dd = &x->disk.img->draft->disk;
	int rc = 0;

	if (!dd->cow && !dd->resetting)
		rc = registry_disk_open(reg, dd);
	if (rc == 0)
		rc = dd->resetting ? -EBUSY :
		     disk_host_lu(dd, c->disk.scsi, x->lun, c->disk.img->target, &x->disk.tap);
	if (rc) {
		log_err("client %s: the draft of %s cannot be served at its LUN %u: %s", c->initiator,
			x->disk.img->name, x->lun, strerror(-rc));
		events_add(EV_ERROR, xd_who(c), x->disk.img->name, "draft at LUN %u cannot be opened: %s",
			   x->lun, strerror(-rc));
		return rc;
	}
	x->disk.host = c->disk.scsi;
	x->on_draft = true;
	log_info("client %s: LUN %u serves the draft of %s (maintenance)", c->initiator, x->lun,
		 x->disk.img->name);
	return 0;
}

/*
 * Open x into c's boot disk's target (which must be open) at its LUN.
 * An overlay found torn or corrupt is quarantined and a fresh one made.
 * 0 or -errno (logged, an event): the PC goes on with its other disks.
 */
static int xdisk_open(struct registry *reg, struct client *c, struct xdisk *x)
{
	struct disk *d = &x->disk;
	int rc;

	if (disk_is_open(d) || x->on_draft)
		return 0;
	if (!c->disk.scsi)
		return -ENODEV;
	if (xd_serves_draft(c, x))
		return draft_open(reg, c, x);
	d->host = c->disk.scsi;
	d->host_target = c->disk.img->target;
	d->lun = x->lun;
	d->read_only = x->policy == XDISK_READ_ONLY;
	d->quota = x->quota;
	d->pf = reg->prefetch;   /* not recorded (rec NULL): its slow reads make the prefetch yield */
	rc = disk_open(d, xstore(reg, d), reg->store_floor);
	if (rc == -EBADMSG || rc == -ESTALE) {
		xdisk_quarantine(reg, c, x, rc == -EBADMSG ? "torn or corrupt" : "made over another image");
		rc = disk_open(d, xstore(reg, d), reg->store_floor);
	}
	if (rc) {
		d->host = NULL;
		log_err("client %s: its disk on %s (LUN %u) cannot be opened: %s; it logs in without it",
			c->initiator, d->img->name, x->lun, strerror(-rc));
		events_add(EV_ERROR, xd_who(c), d->img->name, "disk at LUN %u cannot be opened: %s", x->lun,
			   strerror(-rc));
	}
	return rc;
}

/* Close x (its overlay kept), its LU out of the target. */
void xdisk_close(struct client *c, struct xdisk *x)
{
	if (x->on_draft) {
		/* the draft's overlay is its image's: only the LU goes */
		scsi_target_remove_lu(x->disk.host, x->lun);
		disk_tap_close(&x->disk.tap);
		x->on_draft = false;
	}
	if (disk_is_open(&x->disk) && disk_close(&x->disk, true))
		log_err("client %s: its overlay on %s closed with an error", c->initiator,
			x->disk.img->name);
	x->disk.host = NULL;
}

/* Throw x's overlay away (closed first; a read-only disk has none) and
 * wake the purger.  0 or -errno with msg. */
static int xdisk_discard(struct registry *reg, struct client *c, struct xdisk *x, char *msg,
			 size_t msglen)
{
	const char *base = strrchr(x->disk.dir, '/');
	char label[PATH_MAX + 96];
	int rc;

	snprintf(label, sizeof(label), "disk-%s-%s", x->disk.img->name, base ? base + 1 : x->disk.dir);
	if (x->on_draft) {   /* the draft's LU goes; the draft stays */
		scsi_target_remove_lu(x->disk.host, x->lun);
		disk_tap_close(&x->disk.tap);
		x->on_draft = false;
	}
	rc = disk_discard(&x->disk, xstore(reg, &x->disk), label);
	x->disk.host = NULL;
	if (rc) {
		snprintf(msg, msglen, "cannot discard the overlay of %s on %s: %s", c->initiator,
			 x->disk.img->name, strerror(-rc));
		return rc;
	}
	purge_soon(reg);
	return 0;
}

/* Whether c's boot disk is in use: its target's LU inventory is seen. */
bool xd_online(const struct client *c)
{
	return c->disk.sessions > 0 && c->disk.scsi;
}

/* ---- the set of extra disks a PC has ---- */


/*
 * The attachments c has now: its boot image's group's (skipping images
 * not served and the boot image itself), each replaced by an own one of
 * the same image, then its other own ones.  Returns how many (<=
 * XDISK_MAX) in w.
 */
unsigned xd_wanted(struct registry *reg, const struct client *c, struct want *w)
{
	const struct image *boot = c->disk.img;
	unsigned n = 0;

	for (unsigned i = 0; i < boot->ngroup && n < XDISK_MAX; i++) {
		const struct image *im = registry_image(reg, boot->group[i].image);
		if (!im || im == boot)
			continue;
		w[n++] = (struct want){ .decl = boot->group[i], .from_group = true,
					.from_config = boot->group_config[i] };
	}
	for (unsigned i = 0; i < c->nown; i++) {
		const struct image *im = registry_image(reg, c->own[i].image);
		unsigned j;
		if (!im || im == boot)
			continue;
		for (j = 0; j < n && strcmp(w[j].decl.image, c->own[i].image) != 0; j++)
			;
		if (j == n && n == XDISK_MAX)
			continue;
		if (j == n)
			w[n++].from_group = false;
		w[j].decl = c->own[i];      /* its own replaces the group's: it is in force */
		w[j].from_group = false;
		w[j].from_config = c->own_config[i];
	}
	return n;
}

/* c's extra disk on image, or NULL. */
struct xdisk *xd_find(const struct client *c, const char *image)
{
	for (unsigned i = 0; i < XDISK_MAX; i++)
		if (c->x[i] && strcmp(c->x[i]->disk.img->name, image) == 0)
			return c->x[i];
	return NULL;
}

/* The policy and quota in force for an attachment of im. */
static void in_force(const struct xdisk_decl *dc, const struct image *im, enum xdisk_policy *pol,
		     uint64_t *quota)
{
	*pol = dc->has_policy ? dc->policy : im->disk_policy;
	*quota = dc->has_quota ? dc->quota : im->disk_quota;
}

/* Remove x from c: closed (LU out of the target), its overlay discarded
 * (discard) or left, freed.  Lock held. */
static void xdisk_drop(struct registry *reg, struct client *c, struct xdisk *x, bool discard)
{
	char msg[256];

	if (discard && xdisk_discard(reg, c, x, msg, sizeof(msg)))
		log_err("%s", msg);
	else if (!discard)
		xdisk_close(c, x);
	c->x[x->lun - 1] = NULL;
	free(x);
}

bool xdisk_sync(struct registry *reg, struct client *c)
{
	struct want w[XDISK_MAX];
	unsigned n = xd_wanted(reg, c, w);
	bool changed = false, lus = false;

	/* gone: the attachment was removed */
	for (unsigned i = 0; i < XDISK_MAX; i++) {
		struct xdisk *x = c->x[i];
		unsigned j;
		if (!x)
			continue;
		for (j = 0; j < n && strcmp(w[j].decl.image, x->disk.img->name) != 0; j++)
			;
		if (j < n)
			continue;
		lus |= disk_is_open(&x->disk) || x->on_draft;
		log_notice("client %s: its disk on %s (LUN %u) removed: overlay discarded", c->initiator,
			   x->disk.img->name, x->lun);
		events_add(EV_CLIENT, xd_who(c), x->disk.img->name, "disk at LUN %u removed", x->lun);
		xdisk_drop(reg, c, x, true);
		changed = true;
	}
	/* kept (policy, quota updated) or new (the lowest free LUN) */
	for (unsigned j = 0; j < n; j++) {
		struct image *im = registry_image(reg, w[j].decl.image);
		struct xdisk *x = xd_find(c, w[j].decl.image);
		enum xdisk_policy pol;
		uint64_t quota;
		unsigned lun;

		in_force(&w[j].decl, im, &pol, &quota);
		if (x) {
			bool reopen = disk_is_open(&x->disk) &&
				      (x->policy == XDISK_READ_ONLY) != (pol == XDISK_READ_ONLY);
			if (reopen)
				xdisk_close(c, x);
			changed |= x->policy != pol || x->quota != quota;
			x->policy = pol;
			x->quota = quota;
			x->from_group = w[j].from_group;
			x->from_config = w[j].from_config;
			if (x->disk.cow)
				cow_set_quota(x->disk.cow, quota);
			if (reopen && xd_online(c)) {
				xdisk_open(reg, c, x);
				lus = true;
			}
			continue;
		}
		for (lun = 1; lun <= XDISK_MAX && c->x[lun - 1]; lun++)
			;
		if (lun > XDISK_MAX)
			break;   /* at most XDISK_MAX: the verbs refuse more */
		x = xdisk_make(reg, c, im, lun, 0);
		if (!x)
			break;
		x->policy = pol;
		x->quota = quota;
		x->from_group = w[j].from_group;
		x->from_config = w[j].from_config;
		c->x[lun - 1] = x;
		changed = true;
		log_notice("client %s: disk %s at LUN %u (%s)", c->initiator, im->name, lun,
			   xdisk_policy_name(pol));
		events_add(EV_CLIENT, xd_who(c), im->name, "disk at LUN %u added (%s, v%u)", lun,
			   xdisk_policy_name(pol), x->disk.version);
		if (xd_online(c) && xdisk_open(reg, c, x) == 0)
			lus = true;
	}
	/* the PC's sessions learn that its LUNs changed (scsi.h) */
	if (lus && xd_online(c))
		scsi_target_luns_changed(c->disk.scsi);
	return changed;
}

bool xdisk_any(const struct client *c)
{
	for (unsigned i = 0; i < XDISK_MAX; i++)
		if (c->x[i])
			return true;
	return c->nown > 0;
}

void xdisk_open_all(struct registry *reg, struct client *c)
{
	for (unsigned i = 0; i < XDISK_MAX; i++)
		if (c->x[i] && !disk_is_open(&c->x[i]->disk) && !c->x[i]->on_draft)
			xdisk_open(reg, c, c->x[i]);
}

void xdisk_close_all(struct client *c)
{
	for (unsigned i = 0; i < XDISK_MAX; i++)
		if (c->x[i])
			xdisk_close(c, c->x[i]);
}

void xdisk_free_all(struct registry *reg, struct client *c, bool discard)
{
	for (unsigned i = 0; i < XDISK_MAX; i++)
		if (c->x[i])
			xdisk_drop(reg, c, c->x[i], discard);
}

/* ---- resets ---- */

/*
 * Reset x: its overlay discarded (none for read-only), moved to its
 * image's current version, reopened at once when its PC is online (a
 * fresh LU at the same LUN; its sessions told).  why for the log.
 * Persisted by the caller.  0 or -errno with msg.
 */
int xdisk_reset(struct registry *reg, struct client *c, struct xdisk *x, const char *why,
		char *msg, size_t msglen)
{
	bool was_open = disk_is_open(&x->disk) || x->on_draft;
	unsigned old = x->disk.version;
	int rc;

	xdisk_close(c, x);   /* its LU out (a draft's too) */
	rc = x->policy == XDISK_READ_ONLY ? 0 : xdisk_discard(reg, c, x, msg, msglen);

	if (rc)
		return rc;
	x->disk.version = x->disk.img->current;
	log_notice("client %s: its disk on %s (LUN %u) reset (%s)%s, on v%u%s", c->initiator,
		   x->disk.img->name, x->lun, why, x->policy == XDISK_READ_ONLY ? "" :
		   ": overlay discarded", x->disk.version, old != x->disk.version ? " (moved)" : "");
	events_add(EV_RESET, xd_who(c), x->disk.img->name, "disk at LUN %u reset (%s), on v%u", x->lun,
		   why, x->disk.version);
	if (was_open && xd_online(c) && xdisk_open(reg, c, x) == 0)
		scsi_target_luns_changed(c->disk.scsi);
	return 0;
}

bool xdisk_boot_due(const struct client *c)
{
	for (unsigned i = 0; i < XDISK_MAX; i++) {
		const struct xdisk *x = c->x[i];
		if (x && (x->policy == XDISK_DISCARD_ON_BOOT ||
			  (x->policy == XDISK_READ_ONLY && x->disk.version != x->disk.img->current)))
			return true;
	}
	return false;
}

int xdisk_at_boot(struct registry *reg, struct client *c)
{
	char msg[256];
	bool any = false;
	int rc = 0;

	for (unsigned i = 0; i < XDISK_MAX; i++) {
		struct xdisk *x = c->x[i];
		if (!x || x->policy == XDISK_OVERLAY)
			continue;
		if (x->policy == XDISK_READ_ONLY && x->disk.version == x->disk.img->current)
			continue;
		if (xdisk_reset(reg, c, x, "boot", msg, sizeof(msg))) {
			log_err("boot: %s", msg);
			rc = -EIO;
		}
		any = true;
	}
	if (any)
		bindings_save(reg);
	return rc;
}

