/*
 * image_rbd.c - images the admin puts on Ceph RBD at runtime: `image
 * add NAME --rbd POOL/IMAGE@SNAP` (an existing snapshot, served at once)
 * and the Ceph half of `image import NAME FILE --rbd POOL` (the
 * converted disk written into a new RBD image pristine owns).
 *
 * An import into Ceph, step by step (image_jobs.c converts first, into
 * STATE/imported/NAME.raw.tmp):
 *   1. STATE/imported/NAME.rbd-import records POOL/IMAGE, the RBD image
 *      about to be made (written atomically, before anything in Ceph);
 *   2. IMAGE = pristine.import.NAME.<random> is created and filled
 *      (rbd_import.h), its snapshot v1 taken and protected;
 *   3. image_add records the image (image.json, source
 *      rbd:POOL/IMAGE@v1): the commit point; the image is served;
 *   4. the marker and the converted file are removed.
 * A crash before 3 leaves a marker whose image nobody records: at the
 * next start (registry_open) the RBD image is removed and the marker
 * with it, so a half-imported image is never served.  A crash between
 * 3 and 4 leaves a marker of a recorded image: only the marker goes.
 * Without a Ceph connection at that start the marker is kept, said once.
 */
#include "lab/clients.h"
#include "lab/records.h"
#include "lab/images.h"
#include "lab/jobs.h"
#include "lab/statedir.h"
#include "lab/store.h"
#include "storage/rbd.h"
#include "storage/rbd_disk.h"
#include "storage/rbd_import.h"
#include "util/atomicfile.h"
#include "util/log.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* The marker of an import into Ceph: STATE/imported/NAME + this. */
#define MARKER_SUFFIX ".rbd-import"
/* The snapshot an imported image is served from. */
#define IMPORT_SNAP "v1"

static const char *no_ceph =
	"the daemon is not connected to Ceph: set [server] ceph-conf (and ceph-id) in its "
	"configuration file and restart it";

int image_open_added_rbd(struct registry *reg, struct image *img, const char *name,
			 const char *spec, const char *target, uint32_t block_size, char *msg,
			 size_t msglen)
{
	struct rbd_spec sp;
	char why[200];
	int rc;

	if (!reg->ceph) {
		snprintf(msg, msglen, "%s", no_ceph);
		return -ENOTCONN;
	}
	if (rbd_spec_parse(spec, &sp, why, sizeof(why))) {
		snprintf(msg, msglen, "rbd %.150s: %s", spec, why);
		return -EINVAL;
	}
	if (!sp.snap[0]) {
		snprintf(msg, msglen, "rbd %.150s: name a snapshot (POOL/IMAGE@SNAP): the head of an "
			 "image changes under the clients whenever someone writes to it", spec);
		return -EINVAL;
	}
	if ((rc = rbd_pool_check(reg->ceph, sp.pool, msg, msglen)))
		return rc;
	img->rcache = reg->rcache;
	rc = image_open_rbd(img, name, reg->ceph, spec, target, block_size);
	if (rc == -ENOENT)
		snprintf(msg, msglen, "rbd:%.150s: no such image or snapshot in pool %s (rbd snap ls "
			 "%s/%s)", spec, sp.pool, sp.pool, sp.image);
	else if (rc == -EINVAL)
		snprintf(msg, msglen, "rbd:%.150s: its size is not a whole number of %u-byte blocks",
			 spec, block_size);
	else if (rc)
		snprintf(msg, msglen, "rbd:%.150s cannot be opened: %s (the daemon's log has Ceph's "
			 "words)", spec, strerror(-rc));
	return rc;
}

int image_rbd_import_check(struct registry *reg, const char *pool, char *msg, size_t msglen)
{
	char why[160];

	if (!reg->ceph) {
		snprintf(msg, msglen, "%s", no_ceph);
		return -ENOTCONN;
	}
	/* a pool name is a spec's first part: the same characters */
	{
		char spec[RBD_POOL_MAX + 8];
		struct rbd_spec sp;
		if (snprintf(spec, sizeof(spec), "%s/x", pool) >= (int)sizeof(spec) ||
		    rbd_spec_parse(spec, &sp, why, sizeof(why))) {
			snprintf(msg, msglen, "--rbd %.100s: not a pool name", pool);
			return -EINVAL;
		}
	}
	return rbd_pool_check(reg->ceph, pool, msg, msglen);
}

/* STATE/imported/NAME.rbd-import into out; 0 or -ENAMETOOLONG. */
static int marker_path(const struct registry *reg, const char *name, char *dir, size_t dlen,
		       char *file, size_t flen)
{
	if (statedir_sub(dir, dlen, reg->state, SD_IMPORTED) ||
	    snprintf(file, flen, "%s%s", name, MARKER_SUFFIX) >= (int)flen)
		return -ENAMETOOLONG;
	return 0;
}

struct fill_ctx {
	struct job *j;
	uint64_t base, total;
};

/* Job progress of a fill, and its cancellation when the daemon stops. */
static int fill_step(void *arg, uint64_t done, uint64_t total)
{
	struct fill_ctx *f = arg;

	(void)total;
	job_progress(f->j, f->base + done, f->total);
	return job_cancelled(f->j);
}

int image_rbd_import(struct registry *reg, struct job *j, const char *name, const char *pool,
		     const char *raw, uint32_t block_size, uint64_t base, uint64_t total, char *msg,
		     size_t msglen)
{
	char dir[PATH_MAX], file[IMAGE_NAME_MAX + 16], rname[RBD_NAME_MAX], text[RBD_POOL_MAX +
		RBD_NAME_MAX + 4], spec[RBD_POOL_MAX + RBD_NAME_MAX + 16], mpath[PATH_MAX + 80];
	struct fill_ctx f = { .j = j, .base = base, .total = total };
	uint32_t r;
	int rc;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		return -errno;
	if (marker_path(reg, name, dir, sizeof(dir), file, sizeof(file)) ||
	    snprintf(rname, sizeof(rname), "%simport.%s.%08x", RBD_OWN_PREFIX, name, r) >=
	    (int)sizeof(rname)) {
		snprintf(msg, msglen, "name too long");
		return -ENAMETOOLONG;
	}
	snprintf(text, sizeof(text), "%s/%s\n", pool, rname);
	snprintf(spec, sizeof(spec), "%s%s/%s@%s", IMAGE_RBD_PREFIX, pool, rname, IMPORT_SNAP);
	snprintf(mpath, sizeof(mpath), "%s/%s", dir, file);
	/* 1. the marker, before anything exists in Ceph */
	if ((rc = atomicfile_write_text(dir, file, text))) {
		snprintf(msg, msglen, "%s: %s", mpath, strerror(-rc));
		return rc;
	}
	/* 2. the image and its snapshot */
	job_phase(j, "writing into ceph");
	rc = rbd_image_fill(reg->ceph, pool, rname, raw, fill_step, &f, msg, msglen);
	if (rc == -ECANCELED)
		snprintf(msg, msglen, "cancelled: the daemon is stopping");
	if (rc == 0)
		rc = rbd_snap_ensure(reg->ceph, pool, rname, IMPORT_SNAP, msg, msglen);
	/* 3. recorded and served */
	if (rc == 0) {
		job_phase(j, "adding");
		rc = CLUSTER_CHANGE(reg, image_add(reg, name, spec, NULL, block_size, msg, msglen), msg,
				    msglen);
	}
	if (rc) {
		char why[300];
		int gone = rbd_image_remove_all(reg->ceph, pool, rname, why, sizeof(why));
		if (gone == 0 || gone == -ENOENT)
			unlink(mpath);
		else   /* the marker stays: the next start tries again */
			log_warn("import of %s: %s", name, why);
		return rc;
	}
	/* 4. */
	unlink(mpath);
	unlink(raw);
	atomicfile_sync_dir(dir);
	log_notice("image %s imported into Ceph: %s", name, spec);
	return 0;
}

/* Whether the store records image name with source spec. */
static bool recorded(struct registry *reg, const char *name, const char *spec)
{
	struct lab_store *st = registry_store(reg);
	json_t *root = NULL;
	const char *src;
	bool yes;

	if (st->ops->image_load(st, name, &root))
		return false;
	src = json_string_value(json_object_get(root, "source"));
	yes = src && strcmp(src, spec) == 0;
	json_decref(root);
	return yes;
}

/* One marker: its RBD image removed unless recorded, then the marker. */
static void sweep_one(struct registry *reg, const char *dir, const char *file)
{
	char path[PATH_MAX + 300], text[RBD_POOL_MAX + RBD_NAME_MAX + 8], name[IMAGE_NAME_MAX + 16];
	char spec[RBD_POOL_MAX + RBD_NAME_MAX + 16], why[300];
	struct rbd_spec sp;
	ssize_t n;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	snprintf(name, sizeof(name), "%.*s", (int)(strlen(file) - strlen(MARKER_SUFFIX)), file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
	if (fd >= 0)
		close(fd);
	text[n > 0 ? n : 0] = '\0';
	text[strcspn(text, "\n")] = '\0';
	if (rbd_spec_parse(text, &sp, why, sizeof(why)) || sp.snap[0] ||
	    strncmp(sp.image, RBD_OWN_PREFIX "import.", strlen(RBD_OWN_PREFIX "import.")) != 0) {
		log_warn("%s: not a marker of ours (%s), left alone", path, text);
		return;
	}
	snprintf(spec, sizeof(spec), "%s%s@%s", IMAGE_RBD_PREFIX, text, IMPORT_SNAP);
	if (recorded(reg, name, spec)) {
		unlink(path);
		return;
	}
	if (!reg->ceph) {
		log_warn("%s: an import into Ceph was interrupted; rbd:%s is removed at a start "
			 "with ceph-conf set", path, text);
		return;
	}
	rc = rbd_image_remove_all(reg->ceph, sp.pool, sp.image, why, sizeof(why));
	if (rc && rc != -ENOENT) {
		log_warn("%s: the half-imported rbd:%s cannot be removed: %s", path, text, why);
		return;
	}
	unlink(path);
	log_notice("rbd:%s, left by an interrupted import of image %s, was removed", text, name);
}

void image_rbd_sweep(struct registry *reg)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (statedir_sub(dir, sizeof(dir), reg->state, SD_IMPORTED) || !(d = opendir(dir)))
		return;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name), m = strlen(MARKER_SUFFIX);
		if (n > m && strcmp(de->d_name + n - m, MARKER_SUFFIX) == 0)
			sweep_one(reg, dir, de->d_name);
	}
	closedir(d);
}
