/*
 * xdisk.c - a PC's extra disks (see xdisk.h): which it has (its boot
 * image's group attachments, then its own), at which LUN, opened into its
 * boot disk's target, closed, reset and moved at boot as their policy
 * says, and how they are recorded.
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
static const char *who(const struct client *c)
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
static struct xdisk *xdisk_make(struct registry *reg, struct client *c, struct image *img,
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
	events_add(EV_ERROR, who(c), x->disk.img->name, "disk at LUN %u: overlay %s, kept aside; a "
		   "fresh one made", x->lun, why);
}

/* Whether x's LUN serves its image's draft: c maintains it. */
static bool serves_draft(const struct client *c, const struct xdisk *x)
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
		     disk_host_lu(dd, c->disk.scsi, x->lun, c->disk.img->target);
	if (rc) {
		log_err("client %s: the draft of %s cannot be served at its LUN %u: %s", c->initiator,
			x->disk.img->name, x->lun, strerror(-rc));
		events_add(EV_ERROR, who(c), x->disk.img->name, "draft at LUN %u cannot be opened: %s",
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
	if (serves_draft(c, x))
		return draft_open(reg, c, x);
	d->host = c->disk.scsi;
	d->host_target = c->disk.img->target;
	d->lun = x->lun;
	d->read_only = x->policy == XDISK_READ_ONLY;
	d->quota = x->quota;
	rc = disk_open(d, xstore(reg, d), reg->store_floor);
	if (rc == -EBADMSG || rc == -ESTALE) {
		xdisk_quarantine(reg, c, x, rc == -EBADMSG ? "torn or corrupt" : "made over another image");
		rc = disk_open(d, xstore(reg, d), reg->store_floor);
	}
	if (rc) {
		d->host = NULL;
		log_err("client %s: its disk on %s (LUN %u) cannot be opened: %s; it logs in without it",
			c->initiator, d->img->name, x->lun, strerror(-rc));
		events_add(EV_ERROR, who(c), d->img->name, "disk at LUN %u cannot be opened: %s", x->lun,
			   strerror(-rc));
	}
	return rc;
}

/* Close x (its overlay kept), its LU out of the target. */
static void xdisk_close(struct client *c, struct xdisk *x)
{
	if (x->on_draft) {
		/* the draft's overlay is its image's: only the LU goes */
		scsi_target_remove_lu(x->disk.host, x->lun);
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
static bool online(const struct client *c)
{
	return c->disk.sessions > 0 && c->disk.scsi;
}

/* ---- the set of extra disks a PC has ---- */

/* An attachment in force for one PC. */
struct want {
	struct xdisk_decl decl;
	bool from_group, from_config;
};

/*
 * The attachments c has now: its boot image's group's (skipping images
 * not served and the boot image itself), each replaced by an own one of
 * the same image, then its other own ones.  Returns how many (<=
 * XDISK_MAX) in w.
 */
static unsigned wanted(struct registry *reg, const struct client *c, struct want *w)
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
		w[j].decl = c->own[i];
		w[j].from_config = c->own_config[i];
	}
	return n;
}

/* c's extra disk on image, or NULL. */
static struct xdisk *find_x(const struct client *c, const char *image)
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
	unsigned n = wanted(reg, c, w);
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
		lus |= disk_is_open(&x->disk);
		log_notice("client %s: its disk on %s (LUN %u) removed: overlay discarded", c->initiator,
			   x->disk.img->name, x->lun);
		events_add(EV_CLIENT, who(c), x->disk.img->name, "disk at LUN %u removed", x->lun);
		xdisk_drop(reg, c, x, true);
		changed = true;
	}
	/* kept (policy, quota updated) or new (the lowest free LUN) */
	for (unsigned j = 0; j < n; j++) {
		struct image *im = registry_image(reg, w[j].decl.image);
		struct xdisk *x = find_x(c, w[j].decl.image);
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
			if (reopen && online(c)) {
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
		events_add(EV_CLIENT, who(c), im->name, "disk at LUN %u added (%s, v%u)", lun,
			   xdisk_policy_name(pol), x->disk.version);
		if (online(c) && xdisk_open(reg, c, x) == 0)
			lus = true;
	}
	/* the PC's sessions learn that its LUNs changed (scsi.h) */
	if (lus && online(c))
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
static int xdisk_reset(struct registry *reg, struct client *c, struct xdisk *x, const char *why,
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
	events_add(EV_RESET, who(c), x->disk.img->name, "disk at LUN %u reset (%s), on v%u", x->lun,
		   why, x->disk.version);
	if (was_open && online(c) && xdisk_open(reg, c, x) == 0)
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

/* ---- the verbs ---- */

/* The PC's name, or -ENOENT with msg. */
static struct client *find_pc(struct registry *reg, const char *id, char *msg, size_t msglen)
{
	struct client *c = registry_find(reg, id);

	if (!c)
		snprintf(msg, msglen, "no client %s", id);
	return c;
}

/*
 * Check and fill an attachment of image (policy NULL / has_quota false:
 * the image's own) for boot image boot.  0, or -ENOENT / -EINVAL with
 * msg.
 */
static int make_decl(struct registry *reg, const struct image *boot, const char *image,
		     const char *policy, bool has_quota, uint64_t quota, struct xdisk_decl *out,
		     char *msg, size_t msglen)
{
	const struct image *im = registry_image(reg, image);

	memset(out, 0, sizeof(*out));
	if (!im) {
		snprintf(msg, msglen, "no image %s", image);
		return -ENOENT;
	}
	if (im == boot) {
		snprintf(msg, msglen, "%s is the boot image (LUN 0) of these PCs: it cannot be one of "
			 "their extra disks too", image);
		return -EINVAL;
	}
	if (policy && xdisk_parse_policy(policy, &out->policy)) {
		snprintf(msg, msglen, "policy '%.30s': overlay, discard-on-boot or read-only", policy);
		return -EINVAL;
	}
	snprintf(out->image, sizeof(out->image), "%s", image);
	out->has_policy = policy != NULL;
	out->has_quota = has_quota;
	out->quota = has_quota ? quota : 0;
	return 0;
}

/* How many LUNs c would use with one more attachment of image. */
static unsigned count_with(struct registry *reg, const struct client *c, const char *image)
{
	struct want w[XDISK_MAX];
	unsigned n = wanted(reg, c, w), used = 0;

	for (unsigned i = 0; i < XDISK_MAX; i++)
		used += c->x[i] != NULL;
	for (unsigned i = 0; i < n; i++)
		if (strcmp(w[i].decl.image, image) == 0)
			return used;
	return used + 1;
}

int registry_xdisk_add(struct registry *reg, const char *client, const char *image,
		       const char *policy, bool has_quota, uint64_t quota, char *msg, size_t msglen)
{
	struct xdisk_decl dc;
	struct client *c;
	int rc;

	pthread_mutex_lock(&reg->lock);
	if (!(c = find_pc(reg, client, msg, msglen))) {
		rc = -ENOENT;
		goto out;
	}
	if ((rc = make_decl(reg, c->disk.img, image, policy, has_quota, quota, &dc, msg, msglen)))
		goto out;
	for (unsigned i = 0; i < c->nown; i++)
		if (strcmp(c->own[i].image, image) == 0) {
			if (c->own_config[i])
				snprintf(msg, msglen, "client %s has %s from the configuration file: "
					 "change it there", who(c), image);
			else
				snprintf(msg, msglen, "client %s has %s already", who(c), image);
			rc = c->own_config[i] ? -EINVAL : -EEXIST;
			goto out;
		}
	if (c->nown == XDISK_MAX || count_with(reg, c, image) > XDISK_MAX) {
		snprintf(msg, msglen, "client %s has %u extra disks, the most a PC can have", who(c),
			 XDISK_MAX);
		rc = -EINVAL;
		goto out;
	}
	c->own[c->nown] = dc;
	c->own_config[c->nown++] = false;
	xdisk_sync(reg, c);
	if ((rc = bindings_save(reg)))
		snprintf(msg, msglen, "cannot save the client records: %s", strerror(-rc));
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

int registry_xdisk_remove(struct registry *reg, const char *client, const char *image,
			  char *msg, size_t msglen)
{
	struct client *c;
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&reg->lock);
	if (!(c = find_pc(reg, client, msg, msglen))) {
		rc = -ENOENT;
		goto out;
	}
	for (i = 0; i < c->nown && strcmp(c->own[i].image, image) != 0; i++)
		;
	if (i == c->nown) {
		const struct xdisk *x = find_x(c, image);
		if (x && x->from_group)
			snprintf(msg, msglen, "%s is a disk of every PC of image %s: remove it there "
				 "(image disk remove %s %s)", image, c->disk.img->name, c->disk.img->name,
				 image);
		else
			snprintf(msg, msglen, "client %s has no disk %s", who(c), image);
		rc = x && x->from_group ? -EINVAL : -ENOENT;
		goto out;
	}
	if (c->own_config[i]) {
		snprintf(msg, msglen, "client %s has %s from the configuration file: change it there",
			 who(c), image);
		rc = -EINVAL;
		goto out;
	}
	memmove(&c->own[i], &c->own[i + 1], (c->nown - i - 1) * sizeof(c->own[0]));
	memmove(&c->own_config[i], &c->own_config[i + 1], (c->nown - i - 1) * sizeof(c->own_config[0]));
	c->nown--;
	xdisk_sync(reg, c);
	if ((rc = bindings_save(reg)))
		snprintf(msg, msglen, "cannot save the client records: %s", strerror(-rc));
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

/* Every PC of boot image img: its disks in line with the group. */
static void sync_group(struct registry *reg, struct image *img)
{
	for (struct client *c = reg->clients; c; c = c->next)
		if (c->disk.img == img)
			xdisk_sync(reg, c);
	bindings_save(reg);
}

int registry_group_xdisk_add(struct registry *reg, const char *group_image, const char *image,
			     const char *policy, bool has_quota, uint64_t quota, char *msg,
			     size_t msglen)
{
	struct xdisk_decl dc;
	struct image *img;
	int rc;

	pthread_mutex_lock(&reg->lock);
	if (!(img = registry_image(reg, group_image))) {
		snprintf(msg, msglen, "no image %s", group_image);
		rc = -ENOENT;
		goto out;
	}
	if ((rc = make_decl(reg, img, image, policy, has_quota, quota, &dc, msg, msglen)))
		goto out;
	for (unsigned i = 0; i < img->ngroup; i++)
		if (strcmp(img->group[i].image, image) == 0) {
			if (img->group_config[i])
				snprintf(msg, msglen, "the PCs of %s have %s from the configuration file: "
					 "change it there", group_image, image);
			else
				snprintf(msg, msglen, "the PCs of %s have %s already", group_image, image);
			rc = img->group_config[i] ? -EINVAL : -EEXIST;
			goto out;
		}
	if (img->ngroup == XDISK_MAX) {
		snprintf(msg, msglen, "the PCs of %s have %u extra disks, the most a PC can have",
			 group_image, XDISK_MAX);
		rc = -EINVAL;
		goto out;
	}
	img->group[img->ngroup] = dc;
	img->group_config[img->ngroup++] = false;
	if ((rc = image_save(reg, img))) {
		img->ngroup--;
		snprintf(msg, msglen, "cannot save image %s: %s", group_image, strerror(-rc));
		goto out;
	}
	log_notice("image %s: every PC of it gets disk %s", group_image, image);
	events_add(EV_IMAGE, NULL, group_image, "every PC gets disk %s", image);
	sync_group(reg, img);
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

int registry_group_xdisk_remove(struct registry *reg, const char *group_image, const char *image,
				char *msg, size_t msglen)
{
	struct xdisk_decl old;
	struct image *img;
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&reg->lock);
	if (!(img = registry_image(reg, group_image))) {
		snprintf(msg, msglen, "no image %s", group_image);
		rc = -ENOENT;
		goto out;
	}
	for (i = 0; i < img->ngroup && strcmp(img->group[i].image, image) != 0; i++)
		;
	if (i == img->ngroup) {
		snprintf(msg, msglen, "the PCs of %s have no disk %s", group_image, image);
		rc = -ENOENT;
		goto out;
	}
	if (img->group_config[i]) {
		snprintf(msg, msglen, "the PCs of %s have %s from the configuration file: change it "
			 "there", group_image, image);
		rc = -EINVAL;
		goto out;
	}
	old = img->group[i];
	memmove(&img->group[i], &img->group[i + 1], (img->ngroup - i - 1) * sizeof(img->group[0]));
	memmove(&img->group_config[i], &img->group_config[i + 1],
		(img->ngroup - i - 1) * sizeof(img->group_config[0]));
	img->ngroup--;
	if ((rc = image_save(reg, img))) {
		memmove(&img->group[i + 1], &img->group[i], (img->ngroup - i) * sizeof(img->group[0]));
		memmove(&img->group_config[i + 1], &img->group_config[i],
			(img->ngroup - i) * sizeof(img->group_config[0]));
		img->group[i] = old;
		img->group_config[i] = false;
		img->ngroup++;
		snprintf(msg, msglen, "cannot save image %s: %s", group_image, strerror(-rc));
		goto out;
	}
	log_notice("image %s: its PCs no longer get disk %s", group_image, image);
	events_add(EV_IMAGE, NULL, group_image, "disk %s removed from every PC", image);
	sync_group(reg, img);
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

int registry_reset_disks(struct registry *reg, const char *id, const char *disk, bool force,
			 char *msg, size_t msglen)
{
	struct client *c;
	struct xdisk *x = NULL;
	int rc = 0;

	pthread_mutex_lock(&reg->lock);
	if (!(c = find_pc(reg, id, msg, msglen))) {
		rc = -ENOENT;
		goto out;
	}
	if (disk && strcmp(disk, c->disk.img->name) != 0 && !(x = find_x(c, disk))) {
		snprintf(msg, msglen, "client %s has no disk %s", who(c), disk);
		rc = -ENOENT;
		goto out;
	}
	if (x) {
		/* one extra disk: the PC's sessions and other disks stay */
		if (c->disk.sessions && !force) {
			snprintf(msg, msglen, "client %s is online (%u session%s); use --force to swap its "
				 "disk %s under it (its overlay is discarded)", who(c), c->disk.sessions,
				 c->disk.sessions == 1 ? "" : "s", disk);
			rc = -EBUSY;
			goto out;
		}
		if ((rc = xdisk_reset(reg, c, x, "admin", msg, msglen)) == 0)
			bindings_save(reg);
		goto out;
	}
	rc = client_reset_locked(reg, c, force, "admin", msg, msglen);
	if (rc || disk)
		goto out;
	for (unsigned i = 0; i < XDISK_MAX && rc == 0; i++)
		if (c->x[i])
			rc = xdisk_reset(reg, c, c->x[i], "admin", msg, msglen);
	bindings_save(reg);
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

/* ---- JSON and records ---- */

json_t *client_disks_json(struct registry *reg, const struct client *c)
{
	json_t *a = json_array();
	const struct image *m = maintained_image(reg, c);

	json_array_append_new(a, json_pack("{s:i, s:s, s:i, s:i, s:s, s:I, s:I, s:s, s:b, s:b}",
		"lun", 0, "image", c->disk.img->name, "version", (int)c->disk.version,
		"current_version", (int)c->disk.img->current, "policy", rules_policy_name(c->policy),
		"used_bytes", (json_int_t)disk_used_bytes(&c->disk),
		"quota_bytes", (json_int_t)c->disk.quota, "from", "boot",
		"config", c->origin == ORIGIN_CONFIG, "draft", m == c->disk.img));
	for (unsigned i = 0; i < XDISK_MAX; i++) {
		const struct xdisk *x = c->x[i];
		const char *what = NULL;
		int err;
		json_t *o;
		if (!x)
			continue;
		o = json_pack("{s:i, s:s, s:i, s:i, s:s, s:I, s:I, s:s, s:b, s:b}",
			"lun", (int)x->lun, "image", x->disk.img->name, "version", (int)x->disk.version,
			"current_version", (int)x->disk.img->current, "policy", xdisk_policy_name(x->policy),
			"used_bytes", (json_int_t)disk_used_bytes(&x->disk),
			"quota_bytes", (json_int_t)x->quota, "from", x->from_group ? "group" : "client",
			"config", x->from_config, "draft", serves_draft(c, x));
		if ((err = disk_error(&x->disk, &what)) != 0)
			json_object_set_new(o, "error", json_sprintf("%s: %s", what ? what : "I/O",
								     strerror(-err)));
		json_array_append_new(a, o);
	}
	return a;
}

/* One attachment as JSON: {"image", "policy"?, "quota_bytes"?}. */
static json_t *decl_json(const struct xdisk_decl *dc)
{
	json_t *o = json_pack("{s:s}", "image", dc->image);

	if (dc->has_policy)
		json_object_set_new(o, "policy", json_string(xdisk_policy_name(dc->policy)));
	if (dc->has_quota)
		json_object_set_new(o, "quota_bytes", json_integer((json_int_t)dc->quota));
	return o;
}

/* An attachment from its JSON (decl_json's); false if unusable. */
static bool decl_from_json(json_t *o, struct xdisk_decl *dc)
{
	const char *image = json_string_value(json_object_get(o, "image"));
	const char *pol = json_string_value(json_object_get(o, "policy"));
	json_t *q = json_object_get(o, "quota_bytes");

	memset(dc, 0, sizeof(*dc));
	if (!image || !image[0] || strlen(image) >= sizeof(dc->image))
		return false;
	snprintf(dc->image, sizeof(dc->image), "%s", image);
	if (pol && xdisk_parse_policy(pol, &dc->policy) == 0)
		dc->has_policy = true;
	if (json_is_integer(q) && json_integer_value(q) >= 0) {
		dc->has_quota = true;
		dc->quota = (uint64_t)json_integer_value(q);
	}
	return true;
}

json_t *image_group_disks_json(struct registry *reg, const struct image *img)
{
	json_t *a = json_array();

	(void)reg;
	for (unsigned i = 0; i < img->ngroup; i++) {
		json_t *o = decl_json(&img->group[i]);
		json_object_set_new(o, "config", json_boolean(img->group_config[i]));
		json_array_append_new(a, o);
	}
	return a;
}

unsigned image_disk_of(struct registry *reg, const struct image *img)
{
	unsigned n = 0;

	for (const struct client *c = reg->clients; c; c = c->next)
		for (unsigned i = 0; i < XDISK_MAX; i++)
			n += c->x[i] && c->x[i]->disk.img == img;
	return n;
}

bool xdisk_has(const struct client *c, const struct image *img)
{
	for (unsigned i = 0; i < XDISK_MAX; i++)
		if (c->x[i] && c->x[i]->disk.img == img)
			return true;
	return false;
}

int xdisk_draft_quiesce(struct registry *reg, struct image *img, const char *initiator, bool force,
			const char *what, char *msg, size_t msglen)
{
	struct client *c = registry_find(reg, initiator);
	struct xdisk *x = c ? find_x(c, img->name) : NULL;
	int rc;

	if (!x)
		return 0;
	if (c->disk.sessions) {
		rc = disk_quiesce(reg, &c->disk, force, what, msg, msglen);
		if (rc)
			return rc;
		c->disk.resetting = false;
	}
	/* the lock may have been dropped: look again */
	if ((c = registry_find(reg, initiator)) && (x = find_x(c, img->name)))
		xdisk_close(c, x);
	return 0;
}

void xdisk_draft_committed(struct registry *reg, struct image *img, const char *initiator)
{
	struct client *c = registry_find(reg, initiator);
	struct xdisk *x = c ? find_x(c, img->name) : NULL;
	char msg[256], why[64 + IMAGE_NAME_MAX];

	if (!x)
		return;
	snprintf(why, sizeof(why), "it made v%u of %s", img->current, img->name);
	if (xdisk_reset(reg, c, x, why, msg, sizeof(msg)))
		log_warn("image %s: its maintenance client %s keeps its disk on v%u: %s", img->name,
			 c->initiator, x->disk.version, msg);
	bindings_save(reg);
}

const struct client *xdisk_version_user(struct registry *reg, const struct image *img, unsigned v)
{
	for (const struct client *c = reg->clients; c; c = c->next)
		for (unsigned i = 0; i < XDISK_MAX; i++)
			if (c->x[i] && c->x[i]->disk.img == img && c->x[i]->disk.version == v)
				return c;
	return NULL;
}

json_t *xdisk_records_json(const struct client *c)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < XDISK_MAX; i++) {
		const struct xdisk *x = c->x[i];
		json_t *o;
		if (!x)
			continue;
		o = json_pack("{s:s, s:i, s:i}", "image", x->disk.img->name, "lun", (int)x->lun,
			      "version", (int)x->disk.version);
		json_array_append_new(a, o);
	}
	/* its own attachments of the API (the file's are the file's) */
	for (unsigned i = 0; i < c->nown; i++) {
		json_t *o;
		if (c->own_config[i])
			continue;
		o = decl_json(&c->own[i]);
		json_object_set_new(o, "own", json_true());
		json_array_append_new(a, o);
	}
	return a;
}

void xdisk_restore(struct registry *reg, struct client *c, json_t *disks)
{
	size_t i;
	json_t *o;

	json_array_foreach(disks, i, o) {
		struct xdisk_decl dc;
		json_int_t lun = json_integer_value(json_object_get(o, "lun"));
		json_int_t v = json_integer_value(json_object_get(o, "version"));
		struct image *im;
		struct xdisk *x;

		if (!decl_from_json(o, &dc))
			continue;
		if (json_is_true(json_object_get(o, "own"))) {
			bool dup = false;
			for (unsigned j = 0; j < c->nown; j++)
				dup |= strcmp(c->own[j].image, dc.image) == 0;
			if (!dup && c->nown < XDISK_MAX) {
				c->own[c->nown] = dc;
				c->own_config[c->nown++] = false;
			}
			continue;
		}
		im = registry_image(reg, dc.image);
		if (!im) {
			log_warn("client %s: its disk on %s is not served now; left out", c->initiator,
				 dc.image);
			continue;
		}
		if (lun < 1 || lun > XDISK_MAX || c->x[lun - 1] || find_x(c, dc.image))
			continue;
		x = xdisk_make(reg, c, im, (unsigned)lun, v > 0 ? (unsigned)v : 0);
		if (!x)
			continue;
		c->x[lun - 1] = x;
	}
}

void xdisk_group_restore(struct image *img, json_t *arr)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o) {
		struct xdisk_decl dc;
		bool dup = false;
		if (!decl_from_json(o, &dc) || img->ngroup == XDISK_MAX)
			continue;
		for (unsigned j = 0; j < img->ngroup; j++)
			dup |= strcmp(img->group[j].image, dc.image) == 0;
		if (dup)
			continue;   /* the configuration file has it now */
		img->group[img->ngroup] = dc;
		img->group_config[img->ngroup++] = false;
	}
}

json_t *xdisk_group_json(const struct image *img)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < img->ngroup; i++)
		if (!img->group_config[i])
			json_array_append_new(a, decl_json(&img->group[i]));
	return a;
}

void xdisk_group_configure(struct image *img, const struct xdisk_decl *d, unsigned n,
			   enum xdisk_policy policy, uint64_t quota)
{
	img->disk_policy = policy;
	img->disk_quota = quota;
	for (unsigned i = 0; i < n && i < XDISK_MAX; i++) {
		img->group[i] = d[i];
		img->group_config[i] = true;
	}
	img->ngroup = n < XDISK_MAX ? n : XDISK_MAX;
}

void xdisk_own_configure(struct client *c, const struct xdisk_decl *d, unsigned n)
{
	for (unsigned i = 0; i < n && i < XDISK_MAX; i++) {
		c->own[i] = d[i];
		c->own_config[i] = true;
	}
	c->nown = n < XDISK_MAX ? n : XDISK_MAX;
}
