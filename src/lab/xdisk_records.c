/*
 * xdisk_records.c - extra disks as JSON: the API's view, the client and
 * image records (and their restore at start and refresh in a cluster),
 * the configuration's attachments, and what drafts and image delete ask
 * of them.  Lock held throughout.
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
			"config", x->from_config, "draft", xd_serves_draft(c, x));
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
	struct xdisk *x = c ? xd_find(c, img->name) : NULL;
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
	if ((c = registry_find(reg, initiator)) && (x = xd_find(c, img->name)))
		xdisk_close(c, x);
	return 0;
}

void xdisk_draft_committed(struct registry *reg, struct image *img, const char *initiator)
{
	struct client *c = registry_find(reg, initiator);
	struct xdisk *x = c ? xd_find(c, img->name) : NULL;
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
		if (lun < 1 || lun > XDISK_MAX || c->x[lun - 1] || xd_find(c, dc.image))
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

void xdisk_refresh(struct registry *reg, struct client *c, json_t *disks)
{
	unsigned n = 0;
	size_t i;
	json_t *o;

	for (unsigned j = 0; j < c->nown; j++)
		if (c->own_config[j]) {
			c->own[n] = c->own[j];
			c->own_config[n++] = true;
		}
	c->nown = n;
	json_array_foreach(disks, i, o) {
		json_int_t lun = json_integer_value(json_object_get(o, "lun"));
		json_int_t v = json_integer_value(json_object_get(o, "version"));
		const char *image = json_string_value(json_object_get(o, "image"));
		struct xdisk *x = image ? xd_find(c, image) : NULL;
		if (!x || json_is_true(json_object_get(o, "own")) || disk_is_open(&x->disk) || x->on_draft)
			continue;
		if (v >= 1 && v <= (json_int_t)x->disk.img->nversions)
			x->disk.version = (unsigned)v;
		if (lun >= 1 && lun <= XDISK_MAX && (unsigned)lun != x->lun && !c->x[lun - 1]) {
			c->x[x->lun - 1] = NULL;
			x->lun = (unsigned)lun;
			c->x[lun - 1] = x;
		}
	}
	xdisk_restore(reg, c, disks);   /* the own attachments, and disks new here */
	xdisk_sync(reg, c);
}

void xdisk_group_refresh(struct registry *reg, struct image *img, json_t *arr)
{
	unsigned n = 0;

	for (unsigned i = 0; i < img->ngroup; i++)
		if (img->group_config[i]) {
			img->group[n] = img->group[i];
			img->group_config[n++] = true;
		}
	img->ngroup = n;
	xdisk_group_restore(img, arr);
	for (struct client *c = reg->clients; c; c = c->next)
		if (c->disk.img == img)
			xdisk_sync(reg, c);
}

bool xdisk_draft_busy(struct registry *reg, const struct image *img)
{
	bool busy = false;

	for (struct client *c = reg->clients; c; c = c->next)
		for (unsigned i = 0; i < XDISK_MAX; i++) {
			struct xdisk *x = c->x[i];
			if (!x || x->disk.img != img || !x->on_draft)
				continue;
			if (xd_online(c))
				busy = true;
			else
				xdisk_close(c, x);
		}
	return busy;
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
