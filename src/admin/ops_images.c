/*
 * ops_images.c - the admin API's image and job operations: listing
 * images and their versions (with who depends on each, and the extra
 * disks of their PCs), add/import, the
 * draft cycle, rollback, flatten and export.
 */
#include "lab/bootsets.h"
#include "lab/images.h"
#include "lab/jobs.h"
#include "admin/ops.h"
#include "lab/records.h"
#include "lab/xdisk.h"
#include "util/log.h"
#include "util/parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Summary of an image.  Lock held. */
static json_t *image_json(struct registry *reg, const struct image *img)
{
	unsigned nclients = 0;
	json_t *o;

	for (struct client *c = reg->clients; c; c = c->next)
		nclients += c->disk.img == img;
	o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:s, s:i, s:i, s:i, s:b}", "name", img->name,
		      "target", img->target, "source", img->path, "size_bytes", (json_int_t)img->be->size,
		      "block_size", (int)img->block_size,
		      "origin", img->origin == IMG_API ? "api" : img->origin == IMG_CONFIG ? "config" : "command line",
		      "current", (int)img->current, "versions", (int)img->nversions,
		      "clients", (int)nclients, "flattening", img->busy);
	if (img->draft) {
		const struct disk *d = &img->draft->disk;
		json_object_set_new(o, "draft", json_pack("{s:i, s:s, s:I, s:b, s:i, s:I}",
			"base", (int)img->draft_base, "client", d->initiator,
			"opened", (json_int_t)img->draft_opened, "online", d->sessions > 0,
			"sessions", (int)d->sessions,
			"used_bytes", (json_int_t)disk_used_bytes(d)));
	} else {
		json_object_set_new(o, "draft", json_null());
	}
	{
		/* extra disks (lab/xdisk.h): what its PCs get ("disks"), and
		 * how many PCs have it as one ("disk_of") */
		json_object_set_new(o, "disks", image_group_disks_json(reg, img));
		json_object_set_new(o, "disk_of", json_integer((json_int_t)image_disk_of(reg, img)));
	}
	{
		/* the daily Wake-on-LAN time of its PCs: its own or [defaults]' */
		int at = wake_at_for(reg->wake, img->name);
		json_object_set_new(o, "wake_at", at < 0 ? json_null() :
				    json_sprintf("%02d:%02d", at / 60, at % 60));
	}
	return o;
}

/* One version with what depends on it.  Lock held. */
static json_t *version_json(struct registry *reg, const struct image *img, const struct version *v)
{
	json_t *clients = json_array(), *vers = json_array(), *o;

	for (struct client *c = reg->clients; c; c = c->next)
		if (c->disk.img == img && c->disk.version == v->num)
			json_array_append_new(clients, json_string(c->name[0] ? c->name : c->initiator));
	/* Versions read through v: its children that have no flat file of their own. */
	for (unsigned i = 0; i < img->nversions; i++)
		if (img->versions[i].num != v->num && !img->versions[i].deleted &&
		    image_version_needs(img, img->versions[i].num, v->num))
			json_array_append_new(vers, json_integer((json_int_t)img->versions[i].num));
	o = json_pack("{s:i, s:i, s:I, s:s, s:b, s:I, s:{s:o, s:b, s:o}}", "version", (int)v->num,
		      "parent", (int)v->parent, "time", (json_int_t)v->time, "message", v->message,
		      "current", v->num == img->current, "layer_bytes", (json_int_t)image_layer_bytes(img, v),
		      "dependents", "clients", clients, "draft", img->draft && img->draft_base == v->num,
		      "versions", vers);
	json_object_set_new(o, "flat_file", image_version_flat(img, v) ? json_string(v->root) : json_null());
	/* Where its content is read from when that is one place (an RBD
	 * snapshot: a clone's, or flat). */
	json_object_set_new(o, "root", v->root[0] ? json_string(v->root) : json_null());
	json_object_set_new(o, "deleted", json_boolean(v->deleted));
	/* warm boots (lab/bootsets.h): null for a deleted version */
	json_object_set_new(o, "boot_set", bootset_json(reg, (struct image *)img, v->num));
	return o;
}

static int op_images_list(void *ctx, json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	json_t *arr = json_array();

	(void)err; (void)errlen;
	pthread_mutex_lock(&d->reg->lock);
	for (unsigned i = 0; i < d->reg->nimages; i++)
		json_array_append_new(arr, image_json(d->reg, d->reg->images[i]));
	pthread_mutex_unlock(&d->reg->lock);
	*out = json_pack("{s:o}", "images", arr);
	return 0;
}

int op_image_show(void *ctx, const char *name, json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	struct image *img;
	int rc = 0;

	pthread_mutex_lock(&d->reg->lock);
	img = registry_image(d->reg, name);
	if (img) {
		json_t *vers = json_array();
		*out = image_json(d->reg, img);
		for (unsigned i = 0; i < img->nversions; i++)
			json_array_append_new(vers, version_json(d->reg, img, &img->versions[i]));
		json_object_set_new(*out, "version_list", vers);
	} else {
		snprintf(err, errlen, "no image %s", name);
		rc = -ENOENT;
	}
	pthread_mutex_unlock(&d->reg->lock);
	return rc;
}

/* A boolean field that defaults to false. */
static int body_bool(json_t *body, const char *key, bool *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(body, key);

	*out = v && json_is_true(v);
	if (v && !json_is_boolean(v)) {
		snprintf(err, errlen, "\"%s\" must be true or false", key);
		return -EINVAL;
	}
	return 0;
}

static int body_uint(json_t *body, const char *key, bool *present, unsigned *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(body, key);

	*present = v != NULL;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000) {
		snprintf(err, errlen, "\"%s\" must be a positive number", key);
		return -EINVAL;
	}
	*out = (unsigned)json_integer_value(v);
	return 0;
}

static int op_image_add(void *ctx, json_t *body, json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	const char *name, *path, *format, *target, *rbd, *pool;
	char rbd_path[300];
	unsigned bs = 512, job;
	bool has_bs, import;
	int rc;

	if ((rc = body_string(body, "name", &name, err, errlen)) ||
	    (rc = body_string(body, "path", &path, err, errlen)) ||
	    (rc = body_string(body, "rbd", &rbd, err, errlen)) ||
	    (rc = body_string(body, "rbd_pool", &pool, err, errlen)) ||
	    (rc = body_string(body, "format", &format, err, errlen)) ||
	    (rc = body_string(body, "target", &target, err, errlen)) ||
	    (rc = body_bool(body, "import", &import, err, errlen)) ||
	    (rc = body_uint(body, "block_size", &has_bs, &bs, err, errlen)))
		return rc;
	if (rbd && (path || import || pool)) {
		snprintf(err, errlen, "\"rbd\" (a snapshot in Ceph to serve) goes without \"path\" and "
			 "\"import\"; an import into Ceph takes \"rbd_pool\"");
		return -EINVAL;
	}
	if (pool && !import) {
		snprintf(err, errlen, "\"rbd_pool\" is for an import (the pool it writes into)");
		return -EINVAL;
	}
	if (rbd) {
		/* served like a file: image_add takes rbd:POOL/IMAGE@SNAP */
		snprintf(rbd_path, sizeof(rbd_path), "%s%.280s", IMAGE_RBD_PREFIX, rbd);
		path = rbd_path;
	}
	if (!name || !path) {
		snprintf(err, errlen, "\"name\" and \"path\" (or \"rbd\") are required");
		return -EINVAL;
	}
	{
		/* the one rule of names and iSCSI names (util/parse.h) */
		char why[300];
		if (parse_name(name, "image", why, sizeof(why))) {
			snprintf(err, errlen, "\"name\": %s", why);
			return -EINVAL;
		}
		if (target && parse_iqn(target, why, sizeof(why))) {
			snprintf(err, errlen, "\"target\" (the target name): %s", why);
			return -EINVAL;
		}
	}
	if (import) {
		if (target) {
			snprintf(err, errlen, "an imported image is served as iqn.2026-11.org.pristine:NAME");
			return -EINVAL;
		}
		rc = image_import_start(d->reg, name, path, format, bs, pool, &job, err, errlen);
		if (rc == 0)
			*out = json_pack("{s:i}", "job", (int)job);
		return rc;
	}
	if (format && strcmp(format, "raw") != 0) {
		snprintf(err, errlen, "image add serves raw files and block devices; use import for %.20s",
			 format);
		return -EINVAL;
	}
	rc = CLUSTER_CHANGE(d->reg, image_add(d->reg, name, path, target, bs, err, errlen), err, errlen);
	return rc ? rc : op_image_show(ctx, name, out, err, errlen);
}

/*
 * The answer to a successful action: the image as it is now, and for
 * edit/commit/discard the note they left in err (what happened to the
 * maintenance client's own disk), as "note" (null when none).
 */
static int draft_answer(void *ctx, const char *name, const char *action, json_t **out,
			char *err, size_t errlen)
{
	char note[1024];
	bool noted = strcmp(action, "edit") == 0 || strcmp(action, "commit") == 0 ||
		     strcmp(action, "discard") == 0;
	int rc;

	snprintf(note, sizeof(note), "%s", noted ? err : "");
	err[0] = '\0';
	rc = op_image_show(ctx, name, out, err, errlen);
	if (rc == 0 && noted)
		json_object_set_new(*out, "note", note[0] ? json_string(note) : json_null());
	return rc;
}

/*
 * POST /v1/images/{name}/prefetch {"version": N?}: queue the prefetch of
 * version N's boot set (default: the current one).  API_ACCEPTED with the
 * version's "boot_set" object; -EBUSY (409) with a message when its set
 * is empty or prefetch is off; -ENOENT.
 */
static int image_prefetch(struct registry *reg, const char *name, json_t *body, json_t **out,
			  char *err, size_t errlen)
{
	struct image *img;
	unsigned v = 0;
	bool has_v;
	int rc;

	if ((rc = body_uint(body, "version", &has_v, &v, err, errlen)))
		return rc;
	pthread_mutex_lock(&reg->lock);
	img = registry_image(reg, name);
	if (!img) {
		snprintf(err, errlen, "no image %s", name);
		rc = -ENOENT;
		goto out;
	}
	if (!has_v)
		v = img->current;
	rc = bootsets_prefetch(reg, img, v, "asked by the admin");
	if (rc == -ENOENT)
		snprintf(err, errlen, "image %s has no version %u", name, v);
	else if (rc == -ENODATA)
		snprintf(err, errlen, "v%u of %s has no boot set yet: it is learned from the PCs' "
			 "boots (or inherited at commit)", v, name);
	else if (rc == -EPERM)
		snprintf(err, errlen, "prefetch is off (pristine.conf prefetch = no, or "
			 "pristined --no-prefetch)");
	else if (rc)
		snprintf(err, errlen, "the prefetch of v%u of %s cannot be queued: %s", v, name,
			 strerror(-rc));
	if (rc == -ENODATA || rc == -EPERM)
		rc = -EBUSY;   /* 409: the request is fine, the state refuses it */
	if (rc == 0) {
		*out = json_pack("{s:s, s:i, s:o}", "image", name, "version", (int)v, "boot_set",
				 bootset_json(reg, img, v));
		rc = API_ACCEPTED;
	}
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

static int op_image_action(void *ctx, const char *name, const char *action, json_t *body,
			   json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	const char *s = NULL, *file = NULL, *format = NULL;
	unsigned v = 0, job;
	bool force, has_v;
	int rc;

	if ((rc = body_bool(body, "force", &force, err, errlen)))
		return rc;
	if (strcmp(action, "edit") == 0) {
		if ((rc = body_string(body, "client", &s, err, errlen)))
			return rc;
		if (!s) {
			snprintf(err, errlen, "\"client\" is required: the maintenance client");
			return -EINVAL;
		}
		rc = CLUSTER_CHANGE(d->reg, image_edit(d->reg, name, s, force, err, errlen), err, errlen);
	} else if (strcmp(action, "commit") == 0) {
		if ((rc = body_string(body, "message", &s, err, errlen)))
			return rc;
		rc = CLUSTER_CHANGE(d->reg, image_commit(d->reg, name, s, force, &v, err, errlen), err, errlen);
	} else if (strcmp(action, "discard") == 0) {
		rc = CLUSTER_CHANGE(d->reg, image_discard(d->reg, name, force, err, errlen), err, errlen);
	} else if (strcmp(action, "rollback") == 0) {
		if ((rc = body_uint(body, "version", &has_v, &v, err, errlen)))
			return rc;
		if (!has_v) {
			snprintf(err, errlen, "\"version\" is required");
			return -EINVAL;
		}
		rc = CLUSTER_CHANGE(d->reg, image_rollback(d->reg, name, v, err, errlen), err, errlen);
	} else if (strcmp(action, "delete") == 0) {
		if ((rc = body_uint(body, "version", &has_v, &v, err, errlen)))
			return rc;
		if (!has_v) {
			snprintf(err, errlen, "\"version\" is required");
			return -EINVAL;
		}
		rc = CLUSTER_CHANGE(d->reg, image_delete(d->reg, name, v, err, errlen), err, errlen);
	} else if (strcmp(action, "flatten") == 0) {
		rc = image_flatten_start(d->reg, name, &job, err, errlen);
		if (rc == 0)
			*out = json_pack("{s:i}", "job", (int)job);
		return rc;
	} else if (strcmp(action, "prefetch") == 0) {
		return image_prefetch(d->reg, name, body, out, err, errlen);
	} else if (strcmp(action, "export") == 0) {
		if ((rc = body_uint(body, "version", &has_v, &v, err, errlen)) ||
		    (rc = body_string(body, "file", &file, err, errlen)) ||
		    (rc = body_string(body, "format", &format, err, errlen)))
			return rc;
		if (!file) {
			snprintf(err, errlen, "\"file\" is required");
			return -EINVAL;
		}
		rc = image_export_start(d->reg, name, v, file, format, force, &job, err, errlen);
		if (rc == 0)
			*out = json_pack("{s:i}", "job", (int)job);
		return rc;
	} else {
		snprintf(err, errlen, "no image action %s (edit, commit, discard, rollback, delete, flatten, export, "
			 "prefetch)",
			 action);
		return -ENOENT;
	}
	if (rc)
		return rc;
	return draft_answer(ctx, name, action, out, err, errlen);
}

static int op_jobs_list(void *ctx, json_t **out, char *err, size_t errlen)
{
	(void)ctx; (void)err; (void)errlen;
	*out = jobs_list_json();
	return 0;
}

static int op_job_show(void *ctx, unsigned id, json_t **out, char *err, size_t errlen)
{
	(void)ctx;
	if (job_json(id, out)) {
		snprintf(err, errlen, "no job %u", id);
		return -ENOENT;
	}
	return 0;
}

void image_ops_init(struct control_ops *ops)
{
	ops->images_list = op_images_list;
	ops->image_add = op_image_add;
	ops->image_show = op_image_show;
	ops->image_action = op_image_action;
	ops->jobs_list = op_jobs_list;
	ops->job_show = op_job_show;
}
