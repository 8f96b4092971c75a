/*
 * xdisk_decl.c - extra-disk attachments as an admin writes them: the
 * policy names and the `disks =` list (see xdisk.h).  Pure functions, no
 * locks: the configuration file and the API both call them.
 */
#include "lab/xdisk.h"
#include "util/parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const policy_names[] = {
	[XDISK_OVERLAY] = "overlay",
	[XDISK_DISCARD_ON_BOOT] = "discard-on-boot",
	[XDISK_READ_ONLY] = "read-only",
};

const char *xdisk_policy_name(enum xdisk_policy p)
{
	return (unsigned)p < sizeof(policy_names) / sizeof(policy_names[0]) ? policy_names[p] : "?";
}

int xdisk_parse_policy(const char *s, enum xdisk_policy *out)
{
	for (unsigned i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++)
		if (s && strcmp(s, policy_names[i]) == 0) {
			*out = (enum xdisk_policy)i;
			return 0;
		}
	return -EINVAL;
}

/* One entry IMAGE[:POLICY[:QUOTA]] (e, NUL-terminated) into *d.  0 or
 * -EINVAL with msg. */
static int parse_entry(char *e, struct xdisk_decl *d, char *msg, size_t msglen)
{
	char *pol = strchr(e, ':'), *quota = NULL, why[200];

	memset(d, 0, sizeof(*d));
	if (pol) {
		*pol++ = '\0';
		quota = strchr(pol, ':');
		if (quota)
			*quota++ = '\0';
	}
	if (parse_name(e, "image", why, sizeof(why))) {
		snprintf(msg, msglen, "disks: %s", why);
		return -EINVAL;
	}
	snprintf(d->image, sizeof(d->image), "%s", e);
	if (pol && *pol) {
		if (xdisk_parse_policy(pol, &d->policy)) {
			snprintf(msg, msglen, "disks: %s: policy '%.40s' is not overlay, "
				 "discard-on-boot or read-only", d->image, pol);
			return -EINVAL;
		}
		d->has_policy = true;
	}
	if (quota) {
		if (strchr(quota, ':')) {
			snprintf(msg, msglen, "disks: %s: too many ':' (each entry is "
				 "IMAGE[:POLICY[:QUOTA]])", d->image);
			return -EINVAL;
		}
		if (parse_size(quota, &d->quota, why, sizeof(why))) {
			snprintf(msg, msglen, "disks: %s: quota: %s", d->image, why);
			return -EINVAL;
		}
		d->has_quota = true;
		if (d->has_policy && d->policy == XDISK_READ_ONLY && d->quota) {
			snprintf(msg, msglen, "disks: %s: a read-only disk has no overlay, so no "
				 "quota", d->image);
			return -EINVAL;
		}
	}
	return 0;
}

int xdisk_parse_list(const char *val, struct xdisk_decl *out, unsigned *n, char *msg,
		     size_t msglen)
{
	char buf[1024], *save = NULL, *e;
	unsigned k = 0;

	if (snprintf(buf, sizeof(buf), "%s", val) >= (int)sizeof(buf)) {
		snprintf(msg, msglen, "disks: the list is too long");
		return -EINVAL;
	}
	for (e = strtok_r(buf, " \t,", &save); e; e = strtok_r(NULL, " \t,", &save)) {
		struct xdisk_decl d;

		if (parse_entry(e, &d, msg, msglen))
			return -EINVAL;
		for (unsigned j = 0; j < k; j++)
			if (strcmp(out[j].image, d.image) == 0) {
				snprintf(msg, msglen, "disks: %s is listed twice", d.image);
				return -EINVAL;
			}
		if (k >= XDISK_MAX) {
			snprintf(msg, msglen, "disks: more than %d extra disks (LUN 1..%d)", XDISK_MAX,
				 XDISK_MAX);
			return -EINVAL;
		}
		out[k++] = d;
	}
	*n = k;
	return 0;
}
