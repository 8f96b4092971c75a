/*
 * store_local.c - the lab's store (store.h) in a local state directory,
 * laid out as statedir.h says; records replaced with atomicfile.  Each
 * local_X implements op X as store.h documents it.
 */
#include "lab/store.h"
#include "lab/statedir.h"
#include "storage/backend.h"
#include "storage/bootset.h"
#include "storage/chain.h"
#include "storage/overlay.h"
#include "util/atomicfile.h"
#include "util/fullio.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Load the JSON file path: -ENOENT if missing, -EBADMSG (logged) if torn. */
static int load_json(const char *path, json_t **out)
{
	json_error_t jerr;

	*out = json_load_file(path, 0, &jerr);
	if (*out)
		return 0;
	if (access(path, F_OK) != 0)
		return -ENOENT;
	log_err("%s: %s (line %d)", path, jerr.text, jerr.line);
	return -EBADMSG;
}

static int local_prepare(struct lab_store *s)
{
	return statedir_prepare(s->root);
}

static int local_clients_load(struct lab_store *s, json_t **out)
{
	char path[PATH_MAX];
	int rc = statedir_file(path, sizeof(path), s->root, STATEDIR_CLIENTS);

	return rc ? rc : load_json(path, out);
}

static int local_clients_save(struct lab_store *s, const char *text)
{
	return atomicfile_write_text(s->root, STATEDIR_CLIENTS, text);
}

static int local_image_prepare(struct lab_store *s, const char *image, char *where, size_t len)
{
	char layers[PATH_MAX];
	int rc;

	if ((rc = statedir_prepare(s->root)) || (rc = statedir_image(where, len, s->root, image)) ||
	    (rc = statedir_mkdir(where)) || (rc = statedir_layer(layers, sizeof(layers), where, NULL)))
		return rc;
	return statedir_mkdir(layers);
}

static int local_image_load(struct lab_store *s, const char *image, json_t **out)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int rc;

	if ((rc = statedir_image(dir, sizeof(dir), s->root, image)) ||
	    (rc = statedir_file(path, sizeof(path), dir, STATEDIR_IMAGE_FILE)))
		return rc;
	return load_json(path, out);
}

static int local_image_save(struct lab_store *s, const char *image, const char *text)
{
	char dir[PATH_MAX];
	int rc = statedir_image(dir, sizeof(dir), s->root, image);

	return rc ? rc : atomicfile_write_text(dir, STATEDIR_IMAGE_FILE, text);
}

static void local_images_list(struct lab_store *s, void (*fn)(void *arg, const char *image), void *arg)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (statedir_sub(path, sizeof(path), s->root, SD_IMAGES) || !(d = opendir(path)))
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			fn(arg, de->d_name);
	closedir(d);
}

static int local_overlay_where(struct lab_store *s, const char *initiator, unsigned version, char *out,
			       size_t len)
{
	(void)version;   /* the overlay records its base itself */
	return statedir_overlay(out, len, s->root, initiator);
}

static int local_xdisk_where(struct lab_store *s, const char *image, const char *initiator,
			     unsigned version, char *out, size_t len)
{
	int rc;

	(void)version;   /* the overlay records its base itself */
	if ((rc = statedir_xdisk(out, len, s->root, image, NULL)) || (rc = statedir_mkdir(out)))
		return rc;
	return statedir_xdisk(out, len, s->root, image, initiator);
}

static int local_layer_where(struct lab_store *s, const char *image, const char *layer, char *out,
			     size_t len)
{
	char dir[PATH_MAX];
	int rc = statedir_image(dir, sizeof(dir), s->root, image);

	return rc ? rc : statedir_layer(out, len, dir, layer);
}

static void local_overlays_list(struct lab_store *s,
				void (*fn)(void *arg, const char *initiator, const char *name), void *arg)
{
	char path[PATH_MAX], iqn[256];
	struct dirent *de;
	DIR *d;

	if (statedir_sub(path, sizeof(path), s->root, SD_OVERLAYS))
		return;
	d = opendir(path);
	if (!d) {
		log_err("%s: %s", path, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		fn(arg, statedir_unescape(de->d_name, iqn, sizeof(iqn)) ? NULL : iqn, de->d_name);
	}
	closedir(d);
}

static int local_overlay_open(struct lab_store *s, const char *where, const char *base_root,
			      struct backend *golden, const struct overlay_opts *oo, struct cow **out)
{
	struct overlay *ov;
	int rc = overlay_open(where, golden, oo, &ov);

	(void)s;
	(void)base_root;
	*out = rc ? NULL : overlay_cow(ov);
	return rc;
}

static int local_layer_open(struct lab_store *s, const char *where, uint64_t size, const char *base_id,
			    struct ovl_layer **out)
{
	(void)s;
	return ovl_layer_open(where, size, base_id, out);
}

static int local_discard(struct lab_store *s, const char *where, const char *label)
{
	return statedir_trash(s->root, where, label);
}

static int local_quarantine(struct lab_store *s, const char *where, char *to, size_t tolen)
{
	return statedir_quarantine(s->root, where, to, tolen);
}

static int local_purge(struct lab_store *s)
{
	char trash[PATH_MAX];
	int rc = statedir_sub(trash, sizeof(trash), s->root, SD_TRASH);

	return rc ? rc : overlay_trash_purge(trash);
}

/* A root here is a file (a raw source or a flattened version). */
static int local_root_open(struct lab_store *s, const char *root, struct backend **out, char *msg,
			   size_t msglen)
{
	int rc = backend_raw_open(root, false, out);

	(void)s;
	if (rc)
		snprintf(msg, msglen, "%s: %s", root, strerror(-rc));
	return rc;
}

static bool local_root_alone(struct lab_store *s, const char *root)
{
	(void)s;
	(void)root;
	return true;
}

/* A committed draft is read as the layer it already is. */
static int local_freeze(struct lab_store *s, const char *where, char *root, size_t rootlen, char *msg,
			size_t msglen)
{
	(void)s;
	(void)where;
	(void)msg;
	(void)msglen;
	if (rootlen)
		root[0] = '\0';
	return 0;
}

/* STATE/images/<image> into dir and bootset-v<v> into name.  0 or
 * -ENAMETOOLONG. */
static int bootset_path(struct lab_store *s, const char *image, unsigned v, char *dir, size_t dirlen,
			char *name, size_t namelen)
{
	int rc = statedir_image(dir, dirlen, s->root, image);

	if (rc)
		return rc;
	return snprintf(name, namelen, STATEDIR_BOOTSET_FMT, v) >= (int)namelen ? -ENAMETOOLONG : 0;
}

static int local_bootset_save(struct lab_store *s, const char *image, unsigned v, const uint8_t *buf,
			      size_t len)
{
	char dir[PATH_MAX], name[32];
	int rc = bootset_path(s, image, v, dir, sizeof(dir), name, sizeof(name));

	return rc ? rc : atomicfile_write(dir, name, buf, len, 0644);
}

static int local_bootset_load(struct lab_store *s, const char *image, unsigned v, uint8_t **buf,
			      size_t *len)
{
	char dir[PATH_MAX], name[32], path[PATH_MAX + 40];
	struct stat st;
	uint8_t *b = NULL;
	int fd, rc = bootset_path(s, image, v, dir, sizeof(dir), name, sizeof(name));

	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size > BOOTSET_FILE_MAX) {
		rc = -EFBIG;
		goto out;
	}
	b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!b) {
		rc = -ENOMEM;
		goto out;
	}
	rc = pread_full(fd, b, (size_t)st.st_size, 0);
	if (rc == 0) {
		*buf = b;
		*len = (size_t)st.st_size;
		b = NULL;
	}
out:
	free(b);
	close(fd);
	return rc;
}

static int local_bootset_remove(struct lab_store *s, const char *image, unsigned v)
{
	char dir[PATH_MAX], name[32], path[PATH_MAX + 40];
	int rc = bootset_path(s, image, v, dir, sizeof(dir), name, sizeof(name));

	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (unlink(path) < 0)
		return -errno;
	return atomicfile_sync_dir(dir);
}

static const struct lab_store_ops local_ops = {
	.prepare = local_prepare,
	.clients_load = local_clients_load,
	.clients_save = local_clients_save,
	.image_prepare = local_image_prepare,
	.image_load = local_image_load,
	.image_save = local_image_save,
	.images_list = local_images_list,
	.overlay_where = local_overlay_where,
	.xdisk_where = local_xdisk_where,
	.layer_where = local_layer_where,
	.overlays_list = local_overlays_list,
	.overlay_open = local_overlay_open,
	.layer_open = local_layer_open,
	.discard = local_discard,
	.quarantine = local_quarantine,
	.purge = local_purge,
	.root_open = local_root_open,
	.root_alone = local_root_alone,
	.freeze = local_freeze,
	.bootset_save = local_bootset_save,
	.bootset_load = local_bootset_load,
	.bootset_remove = local_bootset_remove,
};

int store_local_init(struct lab_store *s, const char *state)
{
	s->ops = &local_ops;
	s->open_at_login = false;
	if (snprintf(s->root, sizeof(s->root), "%s", state) >= (int)sizeof(s->root))
		return -ENAMETOOLONG;
	return 0;
}
