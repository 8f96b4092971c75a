/*
 * xdisk_verbs.c - the admin's verbs on extra disks (xdisk.h): a PC's own
 * attachments and its group's added and removed, one or all of a PC's
 * disks reset.  Each takes the registry lock, persists, writes an event.
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
		snprintf(msg, msglen, "policy '%.30s' is not overlay, discard-on-boot or read-only",
			 policy);
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
	unsigned n = xd_wanted(reg, c, w), used = 0;

	for (unsigned i = 0; i < XDISK_MAX; i++)
		used += c->x[i] != NULL;
	for (unsigned i = 0; i < n; i++)
		if (strcmp(w[i].decl.image, image) == 0)
			return used;
	return used + 1;
}

/*
 * An attachment list - a PC's own or a boot image's group: decl[0..n),
 * config[i] when decl[i] is the configuration file's.  Where image is in
 * it, or n.
 */
static unsigned decl_find(const struct xdisk_decl *decl, unsigned n, const char *image)
{
	unsigned i;

	for (i = 0; i < n && strcmp(decl[i].image, image) != 0; i++)
		;
	return i;
}

/* Entry i out of the list of *n (decl, config), the ones after it moved down. */
static void decl_cut(struct xdisk_decl *decl, bool *config, unsigned *n, unsigned i)
{
	memmove(&decl[i], &decl[i + 1], (*n - i - 1) * sizeof(decl[0]));
	memmove(&config[i], &config[i + 1], (*n - i - 1) * sizeof(config[0]));
	(*n)--;
}

/*
 * d in at i (0 <= i <= *n < XDISK_MAX) of the list of *n, an API one
 * (config false); the ones from i on moved up.
 */
static void decl_put(struct xdisk_decl *decl, bool *config, unsigned *n, unsigned i,
		     const struct xdisk_decl *d)
{
	memmove(&decl[i + 1], &decl[i], (*n - i) * sizeof(decl[0]));
	memmove(&config[i + 1], &config[i], (*n - i) * sizeof(config[0]));
	decl[i] = *d;
	config[i] = false;
	(*n)++;
}

int registry_xdisk_add(struct registry *reg, const char *client, const char *image,
		       const char *policy, bool has_quota, uint64_t quota, char *msg, size_t msglen)
{
	struct xdisk_decl dc;
	struct client *c;
	unsigned i;
	int rc;

	pthread_mutex_lock(&reg->lock);
	if (!(c = find_pc(reg, client, msg, msglen))) {
		rc = -ENOENT;
		goto out;
	}
	if ((rc = make_decl(reg, c->disk.img, image, policy, has_quota, quota, &dc, msg, msglen)))
		goto out;
	if ((i = decl_find(c->own, c->nown, image)) < c->nown) {
		if (c->own_config[i])
			snprintf(msg, msglen, "client %s has %s from the configuration file: "
				 "change it there", xd_who(c), image);
		else
			snprintf(msg, msglen, "client %s has %s already", xd_who(c), image);
		rc = c->own_config[i] ? -EINVAL : -EEXIST;
		goto out;
	}
	if (c->nown == XDISK_MAX || count_with(reg, c, image) > XDISK_MAX) {
		snprintf(msg, msglen, "client %s has %u extra disks, the most a PC can have", xd_who(c),
			 XDISK_MAX);
		rc = -EINVAL;
		goto out;
	}
	decl_put(c->own, c->own_config, &c->nown, c->nown, &dc);
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
	if ((i = decl_find(c->own, c->nown, image)) == c->nown) {
		const struct xdisk *x = xd_find(c, image);
		if (x && x->from_group)
			snprintf(msg, msglen, "%s is a disk of every PC of image %s: remove it there "
				 "(image disk remove %s %s)", image, c->disk.img->name, c->disk.img->name,
				 image);
		else
			snprintf(msg, msglen, "client %s has no disk %s", xd_who(c), image);
		rc = x && x->from_group ? -EINVAL : -ENOENT;
		goto out;
	}
	if (c->own_config[i]) {
		snprintf(msg, msglen, "client %s has %s from the configuration file: change it there",
			 xd_who(c), image);
		rc = -EINVAL;
		goto out;
	}
	decl_cut(c->own, c->own_config, &c->nown, i);
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

/* The boot image named name, whose group is to change, or NULL with msg. */
static struct image *find_group(struct registry *reg, const char *name, char *msg,
				size_t msglen)
{
	struct image *img = registry_image(reg, name);

	if (!img)
		snprintf(msg, msglen, "no image %s", name);
	return img;
}

/*
 * Persist img after a change to its group: 0, or the store's error with
 * msg (the caller undoes the change in memory).
 */
static int group_save(struct registry *reg, struct image *img, char *msg, size_t msglen)
{
	int rc = image_save(reg, img);

	if (rc)
		snprintf(msg, msglen, "cannot save image %s: %s", img->name, strerror(-rc));
	return rc;
}

int registry_group_xdisk_add(struct registry *reg, const char *group_image, const char *image,
			     const char *policy, bool has_quota, uint64_t quota, char *msg,
			     size_t msglen)
{
	struct xdisk_decl dc;
	struct image *img;
	unsigned i;
	int rc;

	pthread_mutex_lock(&reg->lock);
	if (!(img = find_group(reg, group_image, msg, msglen))) {
		rc = -ENOENT;
		goto out;
	}
	if ((rc = make_decl(reg, img, image, policy, has_quota, quota, &dc, msg, msglen)))
		goto out;
	if ((i = decl_find(img->group, img->ngroup, image)) < img->ngroup) {
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
	for (struct client *c = reg->clients; c; c = c->next)
		if (c->disk.img == img && count_with(reg, c, image) > XDISK_MAX) {
			snprintf(msg, msglen, "client %s of %s has %u extra disks, the most a PC can "
				 "have", xd_who(c), group_image, XDISK_MAX);
			rc = -EINVAL;
			goto out;
		}
	decl_put(img->group, img->group_config, &img->ngroup, img->ngroup, &dc);
	if ((rc = group_save(reg, img, msg, msglen))) {
		img->ngroup--;
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
	if (!(img = find_group(reg, group_image, msg, msglen))) {
		rc = -ENOENT;
		goto out;
	}
	if ((i = decl_find(img->group, img->ngroup, image)) == img->ngroup) {
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
	decl_cut(img->group, img->group_config, &img->ngroup, i);
	if ((rc = group_save(reg, img, msg, msglen))) {
		decl_put(img->group, img->group_config, &img->ngroup, i, &old);
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
	if (disk && strcmp(disk, c->disk.img->name) != 0 && !(x = xd_find(c, disk))) {
		snprintf(msg, msglen, "client %s has no disk %s", xd_who(c), disk);
		rc = -ENOENT;
		goto out;
	}
	if (x) {
		/* one extra disk: the PC's sessions and other disks stay */
		if (c->disk.sessions && !force) {
			snprintf(msg, msglen, "client %s is online (%u session%s); use --force to swap its "
				 "disk %s under it (its overlay is discarded)", xd_who(c), c->disk.sessions,
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

