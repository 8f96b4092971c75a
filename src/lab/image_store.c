/*
 * image_store.c - images and versions: opening sources, image.json,
 * resolving a version into a backend, adding images (see images.h).
 */
#include "lab/clients.h"
#include "lab/records.h"
#include "lab/images.h"
#include "lab/bootsets.h"
#include "lab/statedir.h"
#include "lab/store.h"
#include "storage/cache.h"
#include "storage/rbd.h"
#include "util/atomicfile.h"
#include "util/log.h"
#include "util/parse.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IMAGE_JSON_FORMAT 1

/*
 * A name an image may already have in the state directory:
 * [a-z0-9][a-z0-9._-]*, at most 63.  Older versions let the API create
 * names with '.' and '_', and those images stay loadable and reachable;
 * a new image (add, import) takes a NAME by util/parse.h's one rule.
 */
static bool image_stored_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 63 || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		      ch == '.'))
			return false;
	}
	return true;
}

/* Identity of the source recorded in image.json: path, size, mtime. */
static void source_identity(struct image *img, const char *path)
{
	struct stat st;
	char real[PATH_MAX];

	if (!realpath(path, real))
		snprintf(real, sizeof(real), "%s", path);
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
		snprintf(img->source_id, sizeof(img->source_id), "raw:%.80s:%llu:%lld", real,
			 (unsigned long long)img->be->size, (long long)st.st_mtime);
	else
		snprintf(img->source_id, sizeof(img->source_id), "dev:%.80s:%llu", real,
			 (unsigned long long)img->be->size);
	snprintf(img->path, sizeof(img->path), "%s", real);
}

/* The source just opened must be whole blocks: 0, or -EINVAL (logged,
 * the source closed). */
static int check_source_size(struct image *img)
{
	if (img->be->size < img->block_size || img->be->size % img->block_size) {
		log_err("%s: size %llu is not a whole number of %u-byte blocks", img->path,
			(unsigned long long)img->be->size, img->block_size);
		backend_close(img->be);
		img->be = NULL;
		return -EINVAL;
	}
	return 0;
}

int image_open_source(struct image *img, const char *name, const char *path, const char *target,
		      uint32_t block_size)
{
	int rc;

	snprintf(img->name, sizeof(img->name), "%s", name);
	snprintf(img->target, sizeof(img->target), "%s", target);
	img->block_size = block_size;
	/* The golden image is never opened for writing. */
	rc = backend_raw_open(path, false, &img->be);
	if (rc)
		return rc;
	source_identity(img, path);
	return check_source_size(img);
}

/* Put *be (a version on RBD, immutable) behind img's shared read cache,
 * when it has one: *be becomes the wrapper, which owns the old *be.  0,
 * or -errno (logged; *be closed and NULL). */
static int image_cache_wrap(struct image *img, struct backend **be)
{
	struct backend *w;
	int rc;

	if (!img->rcache)
		return 0;
	if ((rc = backend_cache_wrap(img->rcache, *be, &w))) {
		log_err("image %s: %s cannot be read through the cache: %s", img->name, (*be)->name,
			strerror(-rc));
		backend_close(*be);
		*be = NULL;
		return rc;
	}
	*be = w;
	return 0;
}

int image_open_rbd(struct image *img, const char *name, struct rbd_cluster *cl, const char *spec,
		   const char *target, uint32_t block_size)
{
	struct rbd_spec sp;
	char why[256], id[96];
	int rc;

	snprintf(img->name, sizeof(img->name), "%s", name);
	snprintf(img->target, sizeof(img->target), "%s", target);
	img->block_size = block_size;
	if (rbd_spec_parse(spec, &sp, why, sizeof(why))) {
		log_err("image %s: rbd %s", name, why);
		return -EINVAL;
	}
	/* Read-only, by librbd's own open: see storage/rbd.h. */
	if ((rc = backend_rbd_open(cl, &sp, &img->be, id, sizeof(id), why, sizeof(why)))) {
		log_err("image %s: %s", name, why);
		return rc;
	}
	/* Only a snapshot never changes: a head is read from Ceph each time. */
	if (sp.snap[0] && (rc = image_cache_wrap(img, &img->be)))
		return rc;
	snprintf(img->path, sizeof(img->path), "%s%s", IMAGE_RBD_PREFIX, spec);
	snprintf(img->source_id, sizeof(img->source_id), "rbd:%s:%llu", id,
		 (unsigned long long)img->be->size);
	/* Over a snapshot, its drafts, versions and overlays live in Ceph
	 * too (clones of it); a head cannot be cloned: they stay local. */
	if (sp.snap[0] && !(img->store = store_rbd_new(cl, sp.pool, img->uid))) {
		backend_close(img->be);
		img->be = NULL;
		return -ENOMEM;
	}
	if (!sp.snap[0])
		log_warn("image %s: served from the head of %s, not a snapshot: whoever writes to it "
			 "in Ceph changes every client's disk under it; name a snapshot (rbd = %s@SNAP)",
			 name, img->path, spec);
	return check_source_size(img);
}

int image_root_open(struct image *img, const char *root, struct backend **out, char *msg,
		    size_t msglen)
{
	int rc = img->store->ops->root_open(img->store, root, out, msg, msglen);

	/* A root in Ceph is a snapshot: immutable, shared through the cache. */
	if (rc == 0 && strncmp(root, IMAGE_RBD_PREFIX, strlen(IMAGE_RBD_PREFIX)) == 0 &&
	    (rc = image_cache_wrap(img, out)))
		snprintf(msg, msglen, "cannot read it through the shared cache: %s", strerror(-rc));
	return rc;
}

void image_version_id(const struct image *img, unsigned v, char *out, size_t len)
{
	snprintf(out, len, "image:%s/v%u", img->uid, v);
}

static int new_uid(char *out)
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		return -errno;
	snprintf(out, 17, "%016llx", (unsigned long long)r);
	return 0;
}

static const char *origin_name(enum image_origin o)
{
	return o == IMG_API ? "api" : o == IMG_CONFIG ? "config" : "quick";
}

int image_save(struct registry *reg, struct image *img)
{
	json_t *vers = json_array(), *root;
	char *text;
	int rc;

	for (unsigned i = 0; i < img->nversions; i++) {
		const struct version *v = &img->versions[i];
		json_t *o = json_pack("{s:i, s:i, s:I, s:s}", "version", (int)v->num, "parent",
				      (int)v->parent, "time", (json_int_t)v->time, "message", v->message);
		if (v->deleted)
			json_object_set_new(o, "deleted", json_true());
		else if (v->layer[0])
			json_object_set_new(o, "layer", json_string(v->layer));
		if (v->root[0] && v->num != 1) {
			/* A file is recorded relative to the image directory, a
			 * root in Ceph as it is. */
			const char *b = strrchr(v->root, '/');
			if (strncmp(v->root, IMAGE_RBD_PREFIX, strlen(IMAGE_RBD_PREFIX)) == 0)
				b = NULL;
			json_object_set_new(o, "root", json_string(b ? b + 1 : v->root));
		}
		json_array_append_new(vers, o);
	}
	root = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:o}",
			 "format", IMAGE_JSON_FORMAT, "name", img->name, "uid", img->uid,
			 "source", img->path, "source_id", img->source_id, "origin",
			 origin_name(img->origin), "block_size", (int)img->block_size,
			 "current", (int)img->current, "next_layer", (int)img->next_layer,
			 "versions", vers);
	json_object_set_new(root, "target", json_string(img->target));
	if (img->ngroup)   /* the API's group attachments (lab/xdisk.h) */
		json_object_set_new(root, "disks", xdisk_group_json(img));
	if (img->draft)
		json_object_set_new(root, "draft",
			json_pack("{s:s, s:i, s:s, s:I}", "layer", img->draft->layer,
				  "base", (int)img->draft_base, "client", img->draft->disk.initiator,
				  "opened", (json_int_t)img->draft_opened));
	text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	rc = registry_store(reg)->ops->image_save(registry_store(reg), img->name, text);
	if (rc)
		log_err("cannot save the versions of image %s: %s", img->name, strerror(-rc));
	free(text);
	return rc;
}

/* A layer directory name we made ourselves: "L" and digits. */
static bool layer_name_valid(const char *s)
{
	if (s[0] != 'L' || !s[1] || strlen(s) > 20)
		return false;
	for (const char *p = s + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/* Fill img's versions from a parsed image.json.  0 or -EBADMSG with msg. */
static int parse_versions(struct image *img, json_t *root, char *msg, size_t msglen)
{
	json_t *arr = json_object_get(root, "versions"), *e;
	size_t i, n = json_array_size(arr);

	if (n == 0 || n > 100000) {
		snprintf(msg, msglen, "no versions");
		return -EBADMSG;
	}
	img->versions = calloc(n, sizeof(*img->versions));
	if (!img->versions)
		return -ENOMEM;
	json_array_foreach(arr, i, e) {
		struct version *v = &img->versions[i];
		json_t *num = json_object_get(e, "version"), *par = json_object_get(e, "parent");
		const char *layer = json_string_value(json_object_get(e, "layer"));
		const char *rootf = json_string_value(json_object_get(e, "root"));
		const char *m = json_string_value(json_object_get(e, "message"));

		if (!json_is_integer(num) || json_integer_value(num) != (json_int_t)i + 1 ||
		    !json_is_integer(par) || json_integer_value(par) < 0 ||
		    json_integer_value(par) > (json_int_t)i || (i > 0) != (json_integer_value(par) > 0)) {
			snprintf(msg, msglen, "version %zu: bad number or parent", i + 1);
			return -EBADMSG;
		}
		v->num = (unsigned)i + 1;
		v->parent = (unsigned)json_integer_value(par);
		v->time = json_integer_value(json_object_get(e, "time"));
		snprintf(v->message, sizeof(v->message), "%s", m ? m : "");
		v->deleted = i > 0 && json_is_true(json_object_get(e, "deleted"));
		if (v->deleted)
			continue;
		if (i > 0) {
			if (!layer || !layer_name_valid(layer)) {
				snprintf(msg, msglen, "version %zu: bad layer", i + 1);
				return -EBADMSG;
			}
			snprintf(v->layer, sizeof(v->layer), "%s", layer);
			if (rootf && strncmp(rootf, IMAGE_RBD_PREFIX, strlen(IMAGE_RBD_PREFIX)) == 0) {
				struct rbd_spec sp;
				char why[128];
				if (rbd_spec_parse(rootf + strlen(IMAGE_RBD_PREFIX), &sp, why, sizeof(why)) ||
				    !sp.snap[0]) {
					snprintf(msg, msglen, "version %zu: bad root", i + 1);
					return -EBADMSG;
				}
				snprintf(v->root, sizeof(v->root), "%s", rootf);
			} else if (rootf) {
				unsigned rv;
				char tail[8] = "";
				if (sscanf(rootf, "flat-v%u.raw%7s", &rv, tail) != 1 || rv != i + 1) {
					snprintf(msg, msglen, "version %zu: bad root", i + 1);
					return -EBADMSG;
				}
				if (snprintf(v->root, sizeof(v->root), "%s/%s", img->dir, rootf) >=
				    (int)sizeof(v->root)) {
					snprintf(msg, msglen, "version %zu: path too long", i + 1);
					return -EBADMSG;
				}
			}
		} else {
			snprintf(v->root, sizeof(v->root), "%s", img->path);
		}
	}
	img->nversions = (unsigned)n;
	return 0;
}

/* The draft recorded in image.json, if any.  0 or -EBADMSG with msg. */
static int parse_draft(struct registry *reg, struct image *img, json_t *root, char *msg, size_t msglen)
{
	json_t *d = json_object_get(root, "draft");
	const char *layer, *client;
	json_int_t base;

	if (!d || json_is_null(d))
		return 0;
	layer = json_string_value(json_object_get(d, "layer"));
	client = json_string_value(json_object_get(d, "client"));
	base = json_integer_value(json_object_get(d, "base"));
	if (!layer || !layer_name_valid(layer) || !client || !iscsi_name_valid(client) ||
	    base < 1 || base > (json_int_t)img->nversions) {
		snprintf(msg, msglen, "bad draft record");
		return -EBADMSG;
	}
	img->draft_opened = json_integer_value(json_object_get(d, "opened"));
	return draft_restore(reg, img, layer, (unsigned)base, client);
}

/* Move dir/name of img into STATE/trash (it is not referenced by anything). */
static void to_trash(struct registry *reg, struct image *img, const char *dir, const char *name,
		     const char *what)
{
	char from[PATH_MAX], label[IMAGE_NAME_MAX + 300];
	int rc = -ENAMETOOLONG;

	snprintf(label, sizeof(label), "image-%s-%s", img->name, name);
	if (snprintf(from, sizeof(from), "%s/%s", dir, name) < (int)sizeof(from))
		rc = registry_store(reg)->ops->discard(registry_store(reg), from, label);
	if (rc == 0)
		log_notice("%s %s was left by an interrupted operation: moved to the trash", what, from);
	else
		log_warn("%s %s was left by an interrupted operation and cannot be moved: %s", what, from,
			 strerror(-rc));
	reg->purge_pending = true;
}

/* Layers nobody references and temporary files a crash left behind. */
static void cleanup_orphans(struct registry *reg, struct image *img)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (statedir_layer(path, sizeof(path), img->dir, NULL))
		return;
	d = opendir(path);
	while (d && (de = readdir(d)) != NULL) {
		bool used = img->draft && strcmp(img->draft->layer, de->d_name) == 0;
		if (de->d_name[0] == '.')
			continue;
		for (unsigned i = 0; i < img->nversions && !used; i++)
			used = strcmp(img->versions[i].layer, de->d_name) == 0;
		if (!used)
			to_trash(reg, img, path, de->d_name, "layer");
	}
	if (d)
		closedir(d);
	d = opendir(img->dir);
	while (d && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		bool used = false;
		if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0) {
			to_trash(reg, img, img->dir, de->d_name, "file");
			continue;
		}
		if (strncmp(de->d_name, "flat-v", 6) != 0)
			continue;
		for (unsigned i = 1; i < img->nversions && !used; i++) {
			const char *b = strrchr(img->versions[i].root, '/');
			used = b && strcmp(b + 1, de->d_name) == 0;
		}
		if (!used)
			to_trash(reg, img, img->dir, de->d_name, "flattened file");
	}
	if (d)
		closedir(d);
}

/*
 * An image on RBD whose history was made while its versions were local
 * files (a layer with no root, or a draft in layers/) keeps them here:
 * its own store gives way to the registry's, said once.
 */
static void keep_local_history(struct image *img, struct lab_store *st, json_t *draft)
{
	const char *dl = json_string_value(json_object_get(draft, "layer"));
	char path[PATH_MAX];
	bool local = false;

	if (img->store == st)
		return;
	for (unsigned i = 1; i < img->nversions && !local; i++)
		local = !img->versions[i].deleted && !img->versions[i].root[0];
	if (!local && dl && layer_name_valid(dl) && statedir_layer(path, sizeof(path), img->dir, dl) == 0)
		local = access(path, F_OK) == 0;
	if (!local)
		return;
	log_warn("image %s: its versions were made as local layers; its drafts and overlays stay in "
		 "the state directory (start a new history to move them to Ceph)", img->name);
	img->store->ops->free(img->store);
	img->store = st;
}

/*
 * An edit cut short by a crash leaves its draft's place unrecorded under
 * the next layer name (image.json records next_layer only with the
 * draft): the store throws it away, so that the next edit starts empty
 * there.  (cleanup_orphans finds local ones by listing; a store that
 * cannot list, RBD, is told by name.)
 */
static void next_layer_clear(struct registry *reg, struct image *img)
{
	char layer[24], where[STORE_WHERE_MAX], label[IMAGE_NAME_MAX + 40];

	snprintf(layer, sizeof(layer), "L%u", img->next_layer);
	if (img->draft && strcmp(img->draft->layer, layer) == 0)
		return;
	for (unsigned i = 0; i < img->nversions; i++)
		if (strcmp(img->versions[i].layer, layer) == 0)
			return;
	snprintf(label, sizeof(label), "image-%s-%s", img->name, layer);
	if (img->store->ops->layer_where(img->store, img->name, layer, where, sizeof(where)) == 0 &&
	    img->store->ops->discard(img->store, where, label) == 0) {
		log_notice("image %s: the draft %s of an interrupted edit was moved to the trash", img->name,
			   where);
		reg->purge_pending = true;
	}
}

/* A fresh history: v1 = the source. */
static int fresh_versions(struct image *img)
{
	int rc = new_uid(img->uid);

	if (rc)
		return rc;
	free(img->versions);
	img->versions = calloc(1, sizeof(*img->versions));
	if (!img->versions)
		return -ENOMEM;
	img->nversions = 1;
	img->current = 1;
	img->next_layer = 1;
	img->versions[0] = (struct version){ .num = 1, .time = (int64_t)time(NULL) };
	snprintf(img->versions[0].message, sizeof(img->versions[0].message), "source %.200s", img->path);
	snprintf(img->versions[0].root, sizeof(img->versions[0].root), "%s", img->path);
	return 0;
}

int image_load(struct registry *reg, struct image *img)
{
	struct lab_store *st = registry_store(reg);
	char msg[256] = "";
	json_t *root;
	int rc;

	if (img->store && img->store != st)
		img->store->records = st;   /* its own store places disks only */
	else
		img->store = st;
	if ((rc = st->ops->image_prepare(st, img->name, img->dir, sizeof(img->dir))))
		return rc;
	rc = st->ops->image_load(st, img->name, &root);
	if (rc && rc != -ENOENT) {
		log_err("%s: the versions of image %s cannot be read (%s); not served (fix or move "
			"its %s aside to start a new history)", img->dir, img->name, strerror(-rc),
			STATEDIR_IMAGE_FILE);
		return rc;
	}
	if (rc == -ENOENT) {
		if ((rc = fresh_versions(img)))
			return rc;
		log_notice("image %s: new history, v1 = %s", img->name, img->path);
		cleanup_orphans(reg, img);
		return image_save(reg, img);
	}
	{
		const char *sid = json_string_value(json_object_get(root, "source_id"));
		const char *uid = json_string_value(json_object_get(root, "uid"));
		json_t *cur = json_object_get(root, "current");
		json_t *vers = json_object_get(root, "versions");
		bool history = json_array_size(vers) > 1 || json_is_object(json_object_get(root, "draft"));

		if (!sid || strcmp(sid, img->source_id) != 0) {
			if (history) {
				log_err("image %s: its source %s changed since its versions were made on it "
					"(recorded %s, now %s); not served.  Restore the source, or move %s "
					"aside to start a new history", img->name, img->path, sid ? sid : "?",
					img->source_id, img->dir);
				json_decref(root);
				return -ESTALE;
			}
			log_warn("image %s: source %s changed; nothing was built on it, new history",
				 img->name, img->path);
			json_decref(root);
			if ((rc = fresh_versions(img)))
				return rc;
			/* what PCs read of the old source says nothing of the new */
			if (img->store->ops->bootset_remove)
				img->store->ops->bootset_remove(img->store, img->name, 1);
			cleanup_orphans(reg, img);
			return image_save(reg, img);
		}
		if (!uid || strlen(uid) != 16) {
			snprintf(msg, sizeof(msg), "bad uid");
			rc = -EBADMSG;
			goto bad;
		}
		snprintf(img->uid, sizeof(img->uid), "%s", uid);
		if ((rc = parse_versions(img, root, msg, sizeof(msg))))
			goto bad;
		keep_local_history(img, st, json_object_get(root, "draft"));
		if (!json_is_integer(cur) || json_integer_value(cur) < 1 ||
		    json_integer_value(cur) > (json_int_t)img->nversions) {
			snprintf(msg, sizeof(msg), "bad current version");
			rc = -EBADMSG;
			goto bad;
		}
		img->current = (unsigned)json_integer_value(cur);
		img->next_layer = (unsigned)json_integer_value(json_object_get(root, "next_layer"));
		if (img->next_layer < img->nversions)
			img->next_layer = img->nversions + 1;
		if ((rc = parse_draft(reg, img, root, msg, sizeof(msg))))
			goto bad;
		xdisk_group_restore(img, json_object_get(root, "disks"));
	}
	json_decref(root);
	cleanup_orphans(reg, img);
	next_layer_clear(reg, img);
	bootsets_load(reg, img);
	log_info("image %s: %u version%s, current v%u%s", img->name, img->nversions,
		 img->nversions == 1 ? "" : "s", img->current, img->draft ? ", a draft open" : "");
	return 0;
bad:
	log_err("%s/image.json: %s; image %s not served (nothing was changed)", img->dir, msg, img->name);
	json_decref(root);
	return rc;
}

/* One image with a record in the store: served if it was added through
 * the API and is not served already. */
static void load_added_one(void *arg, const char *name)
{
	struct registry *reg = arg;
	struct lab_store *st = registry_store(reg);
	const char *origin, *src, *tgt;
	struct image *img;
	json_t *root = NULL;
	char why[300] = "";

	if (!image_stored_name_valid(name) || registry_image(reg, name) || st->ops->image_load(st, name, &root))
		return;
	origin = json_string_value(json_object_get(root, "origin"));
	src = json_string_value(json_object_get(root, "source"));
	tgt = json_string_value(json_object_get(root, "target"));
	if (!origin || strcmp(origin, "api") != 0 || !src || !tgt || !iscsi_name_valid(tgt)) {
		if (origin && strcmp(origin, "api") != 0)
			log_notice("image %s (from the %s) is not served now; its versions are kept",
				   name, origin);
		json_decref(root);
		return;
	}
	img = calloc(1, sizeof(*img));
	if (!img || (strncmp(src, IMAGE_RBD_PREFIX, strlen(IMAGE_RBD_PREFIX)) == 0 ?
		     image_open_added_rbd(reg, img, name, src + strlen(IMAGE_RBD_PREFIX), tgt,
					  (uint32_t)json_integer_value(json_object_get(root, "block_size")),
					  why, sizeof(why)) :
		     image_open_source(img, name, src, tgt,
				       (uint32_t)json_integer_value(json_object_get(root, "block_size"))))) {
		log_err("image %s: its source %s cannot be opened%s%s; not served", name, src,
			why[0] ? ": " : "", why);
		if (img)
			image_close(img);   /* an RBD source's store, if it got that far */
		free(img);
		json_decref(root);
		return;
	}
	json_decref(root);
	img->origin = IMG_API;
	if (image_load(reg, img) || registry_add_image(reg, img)) {
		image_close(img);
		free(img);
	}
}

void images_load_added(struct registry *reg)
{
	struct lab_store *st = registry_store(reg);

	st->ops->images_list(st, load_added_one, reg);
}

void image_close(struct image *img)
{
	for (unsigned i = 0; i < img->nversions; i++) {
		struct version *v = &img->versions[i];
		backend_close(v->be);
		ovl_layer_close(v->ol);
		backend_close(v->root_be);
		backend_close(v->old_root_be);
		free(v->walk);
		bootset_free(&v->bs);
		free(v->pf_key);   /* its job was cancelled: the prefetcher is freed first */
	}
	free(img->versions);
	img->versions = NULL;
	img->nversions = 0;
	backend_close(img->be);
	img->be = NULL;
	if (img->store && img->store->ops->free)
		img->store->ops->free(img->store);
	img->store = NULL;
}

/* Open the layer of version v (lock held). */
static int open_layer(struct image *img, struct version *v, char *msg, size_t msglen)
{
	struct lab_store *st = img->store;
	char dir[PATH_MAX], base[64];
	int rc;

	if (v->ol)
		return 0;
	if ((rc = st->ops->layer_where(st, img->name, v->layer, dir, sizeof(dir)))) {
		snprintf(msg, msglen, "image %s v%u: path too long", img->name, v->num);
		return rc;
	}
	image_version_id(img, v->parent, base, sizeof(base));
	rc = st->ops->layer_open(st, dir, img->be->size, base, &v->ol);
	if (rc)
		snprintf(msg, msglen, "image %s v%u: its layer %s cannot be read: %s", img->name, v->num,
			 dir, strerror(-rc));
	return rc;
}

/*
 * What version top reads: its layers (bottom first, opened) in ls[*n], the
 * root under them in *root, and in walk[] the versions whose files that is
 * (top down, the root's last; *n + 1 entries).  Lock held.
 */
static int resolve(struct image *img, struct version *top, struct backend **root,
		   struct ovl_layer **ls, unsigned *n, unsigned *walk, char *msg, size_t msglen)
{
	struct version *v;
	int rc;

	*n = 0;
	/* Walk down to the nearest version with a root file. */
	for (v = top; !v->root[0]; v = &img->versions[v->parent - 1]) {
		if (*n == CHAIN_MAX_LAYERS) {
			snprintf(msg, msglen, "image %s v%u: more than %u layers; flatten it",
				 img->name, top->num, CHAIN_MAX_LAYERS);
			return -E2BIG;
		}
		if (v->deleted) {   /* cannot happen: a deleted version had no dependents */
			snprintf(msg, msglen, "image %s v%u reads through the deleted v%u", img->name,
				 top->num, v->num);
			return -EBADMSG;
		}
		if ((rc = open_layer(img, v, msg, msglen)))
			return rc;
		walk[*n] = v->num;
		ls[(*n)++] = v->ol;
	}
	walk[*n] = v->num;
	if (v->num == 1) {
		*root = img->be;
	} else {
		char why[200];
		if (!v->root_be && (rc = image_root_open(img, v->root, &v->root_be, why, sizeof(why)))) {
			snprintf(msg, msglen, "image %s v%u: its root %s cannot be read: %s",
				 img->name, v->num, v->root, why);
			return rc;
		}
		*root = v->root_be;
	}
	for (unsigned i = 0; i < *n / 2; i++) {   /* bottom first */
		struct ovl_layer *t = ls[i];
		ls[i] = ls[*n - 1 - i];
		ls[*n - 1 - i] = t;
	}
	return 0;
}

/* Keep the versions whose files top reads (for image_version_needs). */
static int set_walk(struct version *top, const unsigned *walk, unsigned n)
{
	unsigned *w = malloc(n * sizeof(*w));

	if (!w)
		return -ENOMEM;
	memcpy(w, walk, n * sizeof(*w));
	free(top->walk);
	top->walk = w;
	top->nwalk = n;
	return 0;
}

int image_version_get(struct image *img, unsigned num, struct backend **be, char *msg, size_t msglen)
{
	struct ovl_layer *ls[CHAIN_MAX_LAYERS];
	unsigned walk[CHAIN_MAX_LAYERS + 1];
	struct version *top;
	struct backend *root;
	unsigned n;
	int rc;

	if (num < 1 || num > img->nversions) {
		snprintf(msg, msglen, "image %s has no version %u", img->name, num);
		return -ENOENT;
	}
	top = &img->versions[num - 1];
	if (top->deleted) {
		snprintf(msg, msglen, "image %s: v%u was deleted", img->name, num);
		return -ENOENT;
	}
	if (!top->be) {
		char name[96];
		if ((rc = resolve(img, top, &root, ls, &n, walk, msg, msglen)) ||
		    (rc = set_walk(top, walk, n + 1)))
			return rc;
		snprintf(name, sizeof(name), "%s@v%u", img->name, num);
		rc = chain_open(root, ls, n, name, &top->be);
		if (rc) {
			snprintf(msg, msglen, "image %s v%u: cannot resolve its layers: %s", img->name, num,
				 strerror(-rc));
			return rc;
		}
	}
	top->users++;
	*be = top->be;
	return 0;
}

void image_reresolve(struct image *img, unsigned v)
{
	struct ovl_layer *ls[CHAIN_MAX_LAYERS];
	unsigned walk[CHAIN_MAX_LAYERS + 1];
	struct backend *root;
	char msg[256];
	unsigned n;

	for (unsigned i = 0; i < img->nversions; i++) {
		struct version *u = &img->versions[i];
		bool through = false;
		for (unsigned k = 0; u->be && k < u->nwalk; k++)
			through |= u->walk[k] == v;
		if (!through)
			continue;
		/* Same content, fewer files: what a restart would resolve. */
		if (resolve(img, u, &root, ls, &n, walk, msg, sizeof(msg)) ||
		    chain_replace(u->be, root, ls, n) || set_walk(u, walk, n + 1))
			log_warn("image %s v%u: keeps reading through its old layers until restart",
				 img->name, u->num);
	}
}

bool image_version_flat(const struct image *img, const struct version *v)
{
	return v->root[0] && (v->num == 1 || !img->store ||
			      img->store->ops->root_alone(img->store, v->root));
}

bool image_version_needs(const struct image *img, unsigned u, unsigned v)
{
	const struct version *x = &img->versions[u - 1];

	for (unsigned i = 0; x->be && i < x->nwalk; i++)
		if (x->walk[i] == v)
			return true;
	for (;;) {
		if (x->num == v)
			return true;
		/* A root that is a clone of its parent's still reads it. */
		if (image_version_flat(img, x) || x->parent == 0)
			return false;
		x = &img->versions[x->parent - 1];
	}
}

void image_version_put(struct image *img, unsigned num)
{
	if (num >= 1 && num <= img->nversions && img->versions[num - 1].users)
		img->versions[num - 1].users--;
}

int image_add(struct registry *reg, const char *name, const char *path, const char *target,
	      uint32_t block_size, char *msg, size_t msglen)
{
	char tname[ISCSI_NAME_MAX];
	struct image *img;
	int rc;

	if (parse_name(name, "image", msg, msglen))
		return -EINVAL;
	if (path[0] != '/' && strncmp(path, IMAGE_RBD_PREFIX, strlen(IMAGE_RBD_PREFIX)) != 0) {
		snprintf(msg, msglen, "the image path must be absolute");
		return -EINVAL;
	}
	if (block_size != 512 && block_size != 4096) {
		snprintf(msg, msglen, "block size must be 512 or 4096");
		return -EINVAL;
	}
	if (registry_clustered(reg) && path[0] == '/') {
		snprintf(msg, msglen, "%s", RECORDS_LOCAL_REFUSED);
		return -EINVAL;
	}
	if (target && target[0])
		snprintf(tname, sizeof(tname), "%s", target);
	else
		snprintf(tname, sizeof(tname), "iqn.2026-11.org.pristine:%s", name);
	if (!iscsi_name_valid(tname)) {
		snprintf(msg, msglen, "'%.80s' is not a valid iSCSI target name", tname);
		return -EINVAL;
	}
	img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;
	pthread_mutex_lock(&reg->lock);
	if (registry_image(reg, name)) {
		snprintf(msg, msglen, "an image is already called %s", name);
		rc = -EEXIST;
		goto fail;
	}
	for (unsigned i = 0; i < reg->nimages; i++)
		if (strcasecmp(reg->images[i]->target, tname) == 0) {
			snprintf(msg, msglen, "image %s already uses target %s", reg->images[i]->name, tname);
			rc = -EEXIST;
			goto fail;
		}
	if (path[0] != '/') {
		rc = image_open_added_rbd(reg, img, name, path + strlen(IMAGE_RBD_PREFIX), tname,
					  block_size, msg, msglen);
		if (rc)
			goto fail;
	} else if ((rc = image_open_source(img, name, path, tname, block_size))) {
		snprintf(msg, msglen, "%s cannot be opened as an image: %s", path,
			 rc == -EINVAL ? "its size is not a whole number of blocks" : strerror(-rc));
		goto fail;
	}
	img->origin = IMG_API;
	{
		/* The record of an image removed earlier would mix histories. */
		struct lab_store *st = registry_store(reg);
		json_t *old = NULL;
		int lrc = st->ops->image_load(st, name, &old);

		json_decref(old);
		if (lrc != -ENOENT) {
			char dir[PATH_MAX];
			if (statedir_image(dir, sizeof(dir), reg->state, name))
				snprintf(dir, sizeof(dir), "the store");
			snprintf(msg, msglen, "%s holds the versions of an image no longer served; "
				 "move it aside first", dir);
			rc = -EEXIST;
			goto fail;
		}
	}
	rc = image_load(reg, img);
	if (rc) {
		snprintf(msg, msglen, "cannot record image %s: %s", name, strerror(-rc));
		goto fail;
	}
	rc = registry_add_image(reg, img);
	if (rc) {
		snprintf(msg, msglen, "cannot serve image %s: %s", name, strerror(-rc));
		goto fail;
	}
	pthread_mutex_unlock(&reg->lock);
	log_notice("image %s added: %s, %llu bytes, target %s", name, img->path,
		   (unsigned long long)img->be->size, tname);
	return 0;
fail:
	pthread_mutex_unlock(&reg->lock);
	image_close(img);
	free(img);
	return rc;
}

uint64_t image_layer_bytes(const struct image *img, const struct version *v)
{
	char dir[PATH_MAX], path[PATH_MAX + 8];
	struct stat st;

	if (!v->layer[0] || statedir_layer(dir, sizeof(dir), img->dir, v->layer) ||
	    snprintf(path, sizeof(path), "%s/data", dir) >= (int)sizeof(path))
		return 0;
	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

/* "17:02:11" (local time) of t. */
static void clock_text(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!localtime_r(&tt, &tm) || !strftime(out, len, "%H:%M:%S", &tm))
		snprintf(out, len, "?");
}

/* The draft img has here is gone from the record: closed here (kept: the
 * gateway that committed or dropped it owns its place now). */
static void draft_forget(struct registry *reg, struct image *img, json_t *root, unsigned oldn)
{
	struct draft *d = img->draft;
	const char *by = json_string_value(json_object_get(root, "saved_by"));
	char at[16];

	clock_text(json_integer_value(json_object_get(root, "saved_at")), at, sizeof(at));
	if (img->nversions > oldn && strcmp(img->versions[img->nversions - 1].layer, d->layer) == 0)
		snprintf(img->draft_fate, sizeof(img->draft_fate),
			 "it was committed as v%u by gateway %s at %s", img->nversions, by ? by : "?", at);
	else
		snprintf(img->draft_fate, sizeof(img->draft_fate), "it was dropped by gateway %s at %s",
			 by ? by : "?", at);
	/* (a PC online here with the draft at one of its LUNs counts too) */
	if (d->disk.sessions || xdisk_draft_busy(reg, img)) {
		log_warn("image %s: its draft changed on another gateway (%s) while its maintenance "
			 "client is online here", img->name, img->draft_fate);
		return;
	}
	if (d->disk.cow && disk_close(&d->disk, true))
		log_err("image %s: draft closed with an error", img->name);
	free(d);
	img->draft = NULL;
	log_info("image %s: its draft %s", img->name, img->draft_fate);
}

int image_refresh(struct registry *reg, struct image *img, json_t *root)
{
	struct image tmp;
	json_t *cur = json_object_get(root, "current"), *dr = json_object_get(root, "draft");
	const char *uid = json_string_value(json_object_get(root, "uid"));
	unsigned oldn = img->nversions;
	char msg[160] = "";
	int rc;

	memset(&tmp, 0, sizeof(tmp));
	snprintf(tmp.dir, sizeof(tmp.dir), "%s", img->dir);
	snprintf(tmp.path, sizeof(tmp.path), "%s", img->path);
	if (!uid || strcmp(uid, img->uid) != 0) {
		snprintf(msg, sizeof(msg), "another history (uid %s, ours %s)", uid ? uid : "?", img->uid);
		rc = -EBADMSG;
		goto bad;
	}
	if ((rc = parse_versions(&tmp, root, msg, sizeof(msg))))
		goto bad;
	if (tmp.nversions < img->nversions || !json_is_integer(cur) || json_integer_value(cur) < 1 ||
	    json_integer_value(cur) > (json_int_t)tmp.nversions) {
		snprintf(msg, sizeof(msg), "versions or current version out of line");
		rc = -EBADMSG;
		goto bad;
	}
	if (tmp.nversions > img->nversions) {
		struct version *n = realloc(img->versions, tmp.nversions * sizeof(*n));
		if (!n) {
			rc = -ENOMEM;
			goto bad;
		}
		img->versions = n;
		memcpy(&n[img->nversions], &tmp.versions[img->nversions],
		       (tmp.nversions - img->nversions) * sizeof(*n));
	}
	for (unsigned i = 0; i < oldn; i++) {
		/* deleted elsewhere: nothing here may still read it (the
		 * deleting gateway checked its own users only) */
		if (tmp.versions[i].deleted && !img->versions[i].deleted && !img->versions[i].users)
			img->versions[i].deleted = true;
		snprintf(img->versions[i].message, sizeof(img->versions[i].message), "%s",
			 tmp.versions[i].message);
		/* flattened elsewhere: read from its new root once nothing
		 * here reads the old chain (the content is the same) */
		if (strcmp(tmp.versions[i].root, img->versions[i].root) != 0 && !img->versions[i].users &&
		    !img->versions[i].be)
			snprintf(img->versions[i].root, sizeof(img->versions[i].root), "%s",
				 tmp.versions[i].root);
	}
	img->nversions = tmp.nversions;
	img->current = (unsigned)json_integer_value(cur);
	if ((unsigned)json_integer_value(json_object_get(root, "next_layer")) > img->next_layer)
		img->next_layer = (unsigned)json_integer_value(json_object_get(root, "next_layer"));
	{
		const char *layer = json_string_value(json_object_get(dr, "layer"));
		const char *client = json_string_value(json_object_get(dr, "client"));
		json_int_t base = json_integer_value(json_object_get(dr, "base"));

		if (img->draft && (!layer || strcmp(layer, img->draft->layer) != 0))
			draft_forget(reg, img, root, oldn);
		if (!img->draft && layer && layer_name_valid(layer) && client && iscsi_name_valid(client) &&
		    base >= 1 && base <= (json_int_t)img->nversions) {
			if ((rc = draft_adopt(reg, img, layer, (unsigned)base, client)))
				goto bad;
			img->draft_opened = json_integer_value(json_object_get(dr, "opened"));
		}
	}
	xdisk_group_refresh(reg, img, json_object_get(root, "disks"));
	free(tmp.versions);
	log_info("image %s: record changed on another gateway: %u version%s, current v%u%s",
		 img->name, img->nversions, img->nversions == 1 ? "" : "s", img->current,
		 img->draft ? ", a draft open" : "");
	return 0;
bad:
	free(tmp.versions);
	log_err("image %s: its record in the cluster cannot be followed: %s; kept as it was",
		img->name, msg);
	return rc;
}
