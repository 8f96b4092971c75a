/*
 * disk.c - a copy-on-write disk (cow.h), its LU, its version use and its sessions (see
 * disk.h).
 */
#include "lab/disk.h"
#include "lab/images.h"
#include "lab/store.h"
#include "scsi/scsi.h"
#include "storage/overlay.h"
#include "storage/tap.h"
#include "util/hash.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* FNV-1a (util/hash.h) of "a|b": stable ids for VPD pages. */
static uint64_t fnv1a2(const char *a, const char *b)
{
	return fnv1a_add(fnv1a_add(fnv1a(a), "|"), b);
}

int disk_init(struct disk *d, const char *initiator, struct image *img, unsigned version,
	      const char *dir, uint64_t quota)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->initiator, sizeof(d->initiator), "%s", initiator);
	if (snprintf(d->dir, sizeof(d->dir), "%s", dir) >= (int)sizeof(d->dir))
		return -ENAMETOOLONG;
	d->img = img;
	d->version = version;
	d->quota = quota;
	return 0;
}

void disk_tap_close(struct backend **tap)
{
	if (*tap)
		backend_close(*tap);
	*tap = NULL;
}

/* The LU of d over be (d's tap): a target of its own at LUN 0, or LUN
 * d->lun of its host's.  0, -ENOMEM, or scsi_target_add_lu's error. */
static int add_lu(struct disk *d, struct backend *be)
{
	struct scsi_lu_config lc;
	char serial[17];
	uint64_t id = fnv1a2(d->img->target, d->initiator);

	snprintf(serial, sizeof(serial), "%016llx", (unsigned long long)id);
	lc = (struct scsi_lu_config){
		.be = be, .block_size = d->img->block_size, .read_only = d->read_only,
		.vendor = "PRISTINE", .product = "pristine disk", .revision = "0001",
		.serial = serial, .naa_id = id,
		.target_name = d->host && d->host_target ? d->host_target : d->img->target,
	};
	if (d->host)
		return scsi_target_add_lu(d->host, d->lun, &lc);
	d->scsi = scsi_target_new();
	if (!d->scsi)
		return -ENOMEM;
	if (scsi_target_add_lu(d->scsi, 0, &lc)) {
		scsi_target_free(d->scsi);
		d->scsi = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Build the LU of d over be (its open overlay, or its version for a
 * read-only extra disk) behind a tap of d->rec and d->pf, kept in d->tap
 * (every LU of a PC is tapped: its boot disk's reads are recorded, and
 * any slow read makes the prefetch yield).  0 or -errno (no tap kept). */
static int make_lu(struct disk *d, struct backend *be)
{
	int rc = backend_tap_wrap(be, d->rec, d->pf, &d->tap);

	if (rc)
		return rc;
	rc = add_lu(d, d->tap);
	if (rc)
		disk_tap_close(&d->tap);
	return rc;
}

int disk_host_lu(struct disk *src, struct scsi_target *host, unsigned lun, const char *host_target,
		 struct backend **tap)
{
	struct disk view = *src;
	int rc;

	if (!src->cow)
		return -ENODEV;
	view.host = host;
	view.lun = lun;
	view.host_target = host_target;
	view.read_only = false;
	view.rec = NULL;   /* a draft is not a boot to learn from */
	view.tap = NULL;
	rc = make_lu(&view, cow_backend(src->cow));
	*tap = view.tap;
	return rc;
}

bool disk_is_open(const struct disk *d)
{
	return d->cow || d->ro_be;
}

int disk_open(struct disk *d, struct lab_store *store, uint64_t store_floor)
{
	struct overlay_opts oo = { .quota_bytes = d->quota, .store_floor_bytes = store_floor };
	char base[64], msg[256];
	struct backend *vbe;
	int rc;

	if (d->version < 1 || d->version > d->img->nversions)
		d->version = d->img->current;
	rc = image_version_get(d->img, d->version, &vbe, msg, sizeof(msg));
	if (rc) {
		log_err("%s", msg);
		return rc;
	}
	if (d->read_only) {
		/* No overlay: the LU is the version, writes answer DATA PROTECT. */
		rc = make_lu(d, vbe);
		if (rc)
			image_version_put(d->img, d->version);
		else
			d->ro_be = vbe;
		return rc;
	}
	image_version_id(d->img, d->version, base, sizeof(base));
	oo.base_id = base;
	/* A client's place may depend on its version (an RBD clone of it). */
	if (d->extra)
		rc = store->ops->xdisk_where(store, d->img->name, d->initiator, d->version, d->dir,
					     sizeof(d->dir));
	else if (!d->is_draft)
		rc = store->ops->overlay_where(store, d->initiator, d->version, d->dir, sizeof(d->dir));
	if (rc) {
		image_version_put(d->img, d->version);
		return rc;
	}
	rc = store->ops->overlay_open(store, d->dir, d->img->versions[d->version - 1].root, vbe, &oo,
				      &d->cow);
	if (rc == 0) {
		rc = make_lu(d, cow_backend(d->cow));
		if (rc) {
			cow_close(d->cow);
			d->cow = NULL;
		}
	}
	if (rc)
		image_version_put(d->img, d->version);
	return rc;
}

int disk_close(struct disk *d, bool keep)
{
	int rc = 0;

	if (d->host && disk_is_open(d)) {
		/* its commands on the LU finish before it goes */
		scsi_target_remove_lu(d->host, d->lun);
	} else {
		scsi_target_free(d->scsi);
	}
	d->scsi = NULL;
	disk_tap_close(&d->tap);   /* its LU is gone */
	if (d->ro_be) {
		d->ro_be = NULL;   /* the version's: released with its use */
		image_version_put(d->img, d->version);
		return 0;
	}
	if (!d->cow)
		return 0;
	/* Open means the overlay and the version use are both held. */
	if (keep)
		rc = cow_close(d->cow);
	else
		cow_drop(d->cow);
	d->cow = NULL;
	image_version_put(d->img, d->version);
	return rc;
}

int disk_discard(struct disk *d, struct lab_store *store, const char *label)
{
	int rc;

	/* Nothing of it is kept: no final checkpoint, just let go. */
	disk_close(d, false);
	rc = store->ops->discard(store, d->dir, label);
	return rc == -ENOENT ? 0 : rc;
}

uint64_t disk_used_bytes(const struct disk *d)
{
	return d->cow ? cow_used_bytes(d->cow) : 0;
}

int disk_error(const struct disk *d, const char **what)
{
	return d->cow ? cow_error(d->cow, what) : 0;
}
