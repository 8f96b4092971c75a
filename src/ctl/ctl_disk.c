/*
 * ctl_disk.c - pristinectl's verbs for a PC's extra disks (LUN 1..n, a
 * game or data disk; src/lab/xdisk.h): client disk add/remove, image
 * disk add/remove (every PC of a boot image), and the DISKS parts of
 * client show and image show.
 *
 * Each verb is one request (src/admin/api.h); the daemon checks the
 * image, the policy and who may attach what, and its refusals are
 * printed as they come.  Sizes are parsed here with the daemon's own
 * parser (util/parse.h) so that a bad --quota is refused before asking.
 */
#include "ctl/ctl.h"
#include "util/log.h"
#include "util/parse.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*
 * "/v1/<kind>/<escaped id>/disks[/<escaped image>/remove]" into buf
 * (image NULL: the add route).  0, or an exit code with the reason
 * printed.
 */
static int disk_path(const char *kind, const char *id, const char *image, char *buf, size_t len)
{
	char *e = NULL, *ei = NULL;
	int n, rc = 0;

	if (!id[0] || strlen(id) > 255)
		return usage_error("%s must be 1 to 255 bytes: '%s'",
				   strcmp(kind, "clients") ? "image NAME" : "client ID", id);
	if (image && (!image[0] || strlen(image) > 63))
		return usage_error("IMAGE must be 1 to 63 characters: '%s'", image);
	e = ctl_path_escape(id);
	ei = image ? ctl_path_escape(image) : NULL;
	if (!e || (image && !ei)) {
		fprintf(stderr, "pristinectl: out of memory\n");
		rc = CTL_EREMOTE;
		goto out;
	}
	if (image)
		n = snprintf(buf, len, "/v1/%s/%s/disks/%s/remove", kind, e, ei);
	else
		n = snprintf(buf, len, "/v1/%s/%s/disks", kind, e);
	if (n < 0 || (size_t)n >= len)
		rc = usage_error("name too long");
out:
	free(e);
	free(ei);
	return rc;
}

/* The member of a "disks" array whose "image" is image, or NULL. */
static const json_t *find_disk(const json_t *obj, const char *image)
{
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(obj, "disks"), i, e)
		if (!strcmp(ctl_str(e, "image", ""), image))
			return e;
	return NULL;
}

/*
 * The body of an attachment: {"image", "policy"?, "quota_bytes"?} from
 * IMAGE, --policy and --quota.  NULL after printing why (a bad SIZE, or
 * out of memory); *rc gets the exit code then.
 */
static json_t *attach_body(const char *image, const struct ctl_opts *o, int *rc)
{
	uint64_t quota = 0;
	char why[200];
	json_t *body;

	if (o->quota && parse_size(o->quota, &quota, why, sizeof(why))) {
		*rc = usage_error("--quota: %s", why);
		return NULL;
	}
	if (!image[0]) {
		*rc = usage_error("IMAGE must not be empty");
		return NULL;
	}
	body = json_object();
	if (!body || json_object_set_new(body, "image", json_string(image)) ||
	    (o->policy && json_object_set_new(body, "policy", json_string(o->policy))) ||
	    (o->quota && json_object_set_new(body, "quota_bytes", json_integer((json_int_t)quota)))) {
		json_decref(body);
		fprintf(stderr, "pristinectl: out of memory (or an argument is not UTF-8)\n");
		*rc = CTL_EREMOTE;
		return NULL;
	}
	return body;
}

/*
 * client disk add PC IMAGE / image disk add LAB IMAGE.  group: the
 * attachment is the boot image LAB's (every PC of it).  Prints the disk
 * as the daemon now has it: its LUN and policy for a PC, its policy and
 * how many PCs it reaches for a group.
 */
static int verb_disk_add(const struct ctl *c, bool group, const char *id, const char *image,
			 const struct ctl_opts *o)
{
	char path[1024], who[256], img[128], quota[32];
	const json_t *d;
	json_t *body, *res;
	int rc;

	if ((rc = disk_path(group ? "images" : "clients", id, NULL, path, sizeof(path))))
		return rc;
	if (!(body = attach_body(image, o, &rc)))
		return rc;
	if ((rc = ctl_call_json(c, "POST", path, body, NULL, &res)))
		return rc;
	if (c->json) {
		ctl_print_json(res, stdout);
		goto out;
	}
	log_safe(id, who, sizeof(who));
	log_safe(image, img, sizeof(img));
	d = find_disk(res, image);
	if (!group && d) {
		ctl_fmt_quota(d, "-", quota, sizeof(quota));
		printf("client %s: disk %s added as LUN %" PRId64 " (%s, quota %s)\n", who, img,
		       ctl_int(d, "lun"), ctl_str(d, "policy", "?"), quota[0] == '-' ? "none" : quota);
	} else if (group) {
		printf("image %s: every PC of it gets disk %s (%s)\n", who, img,
		       d ? ctl_str(d, "policy", "its own disk-policy") : "its own disk-policy");
	} else {
		printf("client %s: disk %s added\n", who, img);
	}
out:
	json_decref(res);
	return CTL_OK;
}

/* client disk remove PC IMAGE / image disk remove LAB IMAGE. */
static int verb_disk_remove(const struct ctl *c, bool group, const char *id, const char *image)
{
	char path[1024], who[256], img[128];
	json_t *res;
	int rc;

	if ((rc = disk_path(group ? "images" : "clients", id, image, path, sizeof(path))))
		return rc;
	if ((rc = ctl_call(c, "POST", path, "{}", NULL, &res)))
		return rc;
	if (c->json) {
		ctl_print_json(res, stdout);
	} else if (group) {
		printf("image %s: disk %s removed from its PCs (their overlays on it discarded)\n",
		       log_safe(id, who, sizeof(who)), log_safe(image, img, sizeof(img)));
	} else {
		printf("client %s: disk %s removed (its overlay on it discarded)\n",
		       log_safe(id, who, sizeof(who)), log_safe(image, img, sizeof(img)));
	}
	json_decref(res);
	return CTL_OK;
}

/*
 * The verbs after "client disk" / "image disk" (argv[0] is add or
 * remove).  group: image disk.
 */
int ctl_disk_verb(const struct ctl *c, bool group, int argc, char **argv,
		  const struct ctl_opts *o)
{
	const char *v = argc ? argv[0] : "";
	const char *kind = group ? "image disk" : "client disk";
	char what[40];
	int rc;

	snprintf(what, sizeof(what), "%s %s", kind, v);
	if (!strcmp(v, "add") && argc == 3)
		return (rc = opts_only(o, what, "pq")) ? rc :
			verb_disk_add(c, group, argv[1], argv[2], o);
	if (!strcmp(v, "remove") && argc == 3)
		return (rc = opts_only(o, what, "")) ? rc : verb_disk_remove(c, group, argv[1], argv[2]);
	if (!strcmp(v, "add") || !strcmp(v, "remove"))
		return usage_error("%s needs %s and IMAGE", what, group ? "the boot image LAB" : "a PC");
	return usage_error("%s needs a verb: add %s IMAGE [--policy P] [--quota SIZE], remove %s "
			   "IMAGE", kind, group ? "LAB" : "PC", group ? "LAB" : "PC");
}

/* The VERSION cell of a disk: "v3", "v2 -> v3 current" when behind,
 * "draft on v3" when it serves the image's draft. */
static void fmt_disk_version(const json_t *e, char *buf, size_t len)
{
	int64_t v = ctl_int(e, "version"), cur = ctl_int(e, "current_version");

	if (json_is_true(json_object_get(e, "draft")))
		snprintf(buf, len, "draft on v%" PRId64, v);
	else if (cur > v)
		snprintf(buf, len, "v%" PRId64 " -> v%" PRId64 " current", v, cur);
	else
		snprintf(buf, len, "v%" PRId64, v);
}

void ctl_print_client_disks(const json_t *cl)
{
	static const char *const head[] = { "LUN", "IMAGE", "VERSION", "POLICY", "USED", "QUOTA",
					    "FROM" };
	const json_t *disks = json_object_get(cl, "disks"), *e;
	struct ctl_table t;
	size_t i;

	if (!json_is_array(disks))
		return;
	printf("disks:\n");
	ctl_table_init(&t, 7);
	ctl_table_add(&t, head);
	json_array_foreach(disks, i, e) {
		char lun[24], ver[64], used[32], quota[32], from[32];
		bool ro = !strcmp(ctl_str(e, "policy", ""), "read-only");
		const char *row[7];

		snprintf(lun, sizeof(lun), "%" PRId64, ctl_int(e, "lun"));
		fmt_disk_version(e, ver, sizeof(ver));
		if (ro)
			snprintf(used, sizeof(used), "-");
		else
			ctl_fmt_size((uint64_t)ctl_int(e, "used_bytes"), used, sizeof(used));
		ctl_fmt_quota(e, "-", quota, sizeof(quota));
		snprintf(from, sizeof(from), "%s%s", ctl_str(e, "from", "?"),
			 json_is_true(json_object_get(e, "config")) ? " (config)" : "");
		row[0] = lun;
		row[1] = ctl_str(e, "image", "?");
		row[2] = ver;
		row[3] = ctl_str(e, "policy", "?");
		row[4] = used;
		row[5] = quota;
		row[6] = from;
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	json_array_foreach(disks, i, e) {
		char img[128], msg[512];

		if (json_is_string(json_object_get(e, "error")))
			printf("  LUN %" PRId64 " (%s): %s\n", ctl_int(e, "lun"),
			       log_safe(ctl_str(e, "image", "?"), img, sizeof(img)),
			       log_safe(ctl_str(e, "error", "?"), msg, sizeof(msg)));
	}
}

void ctl_print_image_disks(const json_t *img)
{
	const json_t *disks = json_object_get(img, "disks"), *of = json_object_get(img, "disk_of"), *e;
	int64_t n = json_is_array(of) ? (int64_t)json_array_size(of) : ctl_int(img, "disk_of");
	size_t i;

	if (json_array_size(disks)) {
		static const char *const head[] = { "IMAGE", "POLICY", "QUOTA", "FROM" };
		struct ctl_table t;

		printf("extra disks of its PCs (LUN 1..):\n");
		ctl_table_init(&t, 4);
		ctl_table_add(&t, head);
		json_array_foreach(disks, i, e) {
			char quota[32];
			const char *row[4];

			if (json_is_integer(json_object_get(e, "quota_bytes")))
				ctl_fmt_quota(e, "-", quota, sizeof(quota));
			else
				snprintf(quota, sizeof(quota), "(its own)");
			row[0] = ctl_str(e, "image", "?");
			row[1] = ctl_str(e, "policy", "(its own)");
			row[2] = quota;
			row[3] = json_is_true(json_object_get(e, "config")) ? "config" : "api";
			ctl_table_add(&t, row);
		}
		ctl_table_print(&t, stdout);
		ctl_table_free(&t);
	} else if (json_is_array(disks)) {
		printf("extra disks of its PCs: none\n");
	}
	if (n > 0)
		printf("an extra disk of %" PRId64 " PC%s\n", n, n == 1 ? "" : "s");
}
