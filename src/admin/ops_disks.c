/*
 * ops_disks.c - the admin API's operations on extra disks (LUN 1..n of
 * a PC, lab/xdisk.h): a PC's own attachments, a boot image's group
 * attachments (every PC of it), and the reset of a PC's disks, all or
 * one.  The lab does the work and keeps the records; these check a
 * request's values (the API layer checked its form, api_call.c), run the
 * lab's verb as a cluster change, and answer with the client or image as
 * it is afterwards.
 */
#include "admin/ops.h"
#include "lab/records.h"
#include "lab/xdisk.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/*
 * The attachment fields of body, their form checked by api_call.c (image
 * a non-empty string, policy a string, quota_bytes a count of bytes):
 * *image, *policy (NULL = the image's own disk-policy; the lab refuses a
 * name it does not know), *has_quota and *quota.
 */
static int attach_fields(json_t *body, const char **image, const char **policy,
			 bool *has_quota, uint64_t *quota, char *err, size_t errlen)
{
	json_t *q = json_object_get(body, "quota_bytes");
	int rc;

	if ((rc = body_string(body, "image", image, err, errlen)) ||
	    (rc = body_string(body, "policy", policy, err, errlen)))
		return rc;
	*has_quota = q != NULL;
	*quota = q ? (uint64_t)json_integer_value(q) : 0;
	return 0;
}

/* A lab verb that attaches image to owner (a PC, or a boot image's group). */
typedef int (*attach_verb)(struct registry *reg, const char *owner, const char *image,
			   const char *policy, bool has_quota, uint64_t quota, char *msg,
			   size_t msglen);

/*
 * The add operations' common part: checks body's attachment fields, then
 * runs verb on owner as a cluster change.  0, or the error with err set;
 * the caller answers with the owner as it is afterwards.
 */
static int disk_add(struct daemon_ctx *d, const char *owner, json_t *body, attach_verb verb,
		    char *err, size_t errlen)
{
	const char *image, *policy;
	uint64_t quota;
	bool has_quota;
	int rc;

	if ((rc = attach_fields(body, &image, &policy, &has_quota, &quota, err, errlen)))
		return rc;
	return CLUSTER_CHANGE(d->reg, verb(d->reg, owner, image, policy, has_quota, quota, err,
					   errlen), err, errlen);
}

static int op_client_disk_add(void *ctx, const char *id, json_t *body, json_t **out, char *err,
			      size_t errlen)
{
	struct daemon_ctx *d = ctx;
	int rc = disk_add(d, id, body, registry_xdisk_add, err, errlen);

	return rc ? rc : client_answer(d, id, out);
}

static int op_client_disk_remove(void *ctx, const char *id, const char *image, json_t **out,
				 char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	int rc = CLUSTER_CHANGE(d->reg, registry_xdisk_remove(d->reg, id, image, err, errlen), err,
				errlen);

	return rc ? rc : client_answer(d, id, out);
}

static int op_image_disk_add(void *ctx, const char *name, json_t *body, json_t **out, char *err,
			     size_t errlen)
{
	int rc = disk_add(ctx, name, body, registry_group_xdisk_add, err, errlen);

	return rc ? rc : op_image_show(ctx, name, out, err, errlen);
}

static int op_image_disk_remove(void *ctx, const char *name, const char *image, json_t **out,
				char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	int rc = CLUSTER_CHANGE(d->reg, registry_group_xdisk_remove(d->reg, name, image, err, errlen),
				err, errlen);

	return rc ? rc : op_image_show(ctx, name, out, err, errlen);
}

/*
 * client reset: every disk of the PC (disk NULL), or the one on image
 * disk.  Answers {"reset": id, "disk": image or null, "forced",
 * "seconds"}: a reset takes constant time whatever the overlays hold,
 * and the time says so.
 */
static int op_client_reset(void *ctx, const char *id, bool force, const char *disk, json_t **out,
			   char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	struct timespec t0, t1;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = CLUSTER_CHANGE(d->reg, registry_reset_disks(d->reg, id, disk, force, err, errlen), err,
			    errlen);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rc)
		return rc;
	*out = json_pack("{s:s, s:s?, s:b, s:f}", "reset", id, "disk", disk, "forced", force,
			 "seconds", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return *out ? 0 : -ENOMEM;
}

void disk_ops_init(struct control_ops *ops)
{
	ops->client_reset = op_client_reset;
	ops->client_disk_add = op_client_disk_add;
	ops->client_disk_remove = op_client_disk_remove;
	ops->image_disk_add = op_image_disk_add;
	ops->image_disk_remove = op_image_disk_remove;
}
