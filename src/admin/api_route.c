/*
 * api_route.c - routing and path decoding for the admin API (see
 * api_route.h).
 *
 * The daemon hands libmicrohttpd an unescape callback that leaves the
 * path alone, so the path arrives here exactly as the client sent it.
 * Splitting into segments happens before decoding: an id containing an
 * encoded '/' (%2F) stays one segment instead of changing the route.
 */
#include "admin/api_route.h"
#include "util/parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_pct_decode(const char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return -EINVAL;
			hi = parse_hexdigit(in[i + 1]);
			lo = parse_hexdigit(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return -EINVAL;
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = (char)c;
	}
	if (outlen == 0)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return (int)o;
}

/* Decode segment seg[0..len) into m->id; 0 or -EINVAL with err set. */
static int take_id(const char *seg, size_t len, struct api_match *m, char *err, size_t errlen)
{
	int n = api_pct_decode(seg, len, m->id, sizeof(m->id));

	if (n == -ENAMETOOLONG) {
		snprintf(err, errlen, "client id longer than %d bytes", API_ID_MAX);
		return -EINVAL;
	}
	if (n < 0) {
		snprintf(err, errlen, "client id has a bad %%-escape or a control character");
		return -EINVAL;
	}
	return 0;
}

/* Decode the {image} segment of a .../disks/{image}/remove into m->image;
 * 0 or -EINVAL with err set. */
static int take_image(const char *seg, size_t len, struct api_match *m, char *err, size_t errlen)
{
	int n = api_pct_decode(seg, len, m->image, sizeof(m->image));

	if (n == -ENAMETOOLONG) {
		snprintf(err, errlen, "image name longer than %d bytes", API_ID_MAX);
		return -EINVAL;
	}
	if (n < 0) {
		snprintf(err, errlen, "image name has a bad %%-escape or a control character");
		return -EINVAL;
	}
	return 0;
}

/* Parse a TSIH segment (decimal, 1..65535) into m->tsih; 0 or -EINVAL. */
static int take_tsih(const char *seg, size_t len, struct api_match *m, char *err, size_t errlen)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		goto bad;
	for (size_t i = 0; i < len; i++) {
		if (seg[i] < '0' || seg[i] > '9')
			goto bad;
		v = v * 10 + (unsigned long)(seg[i] - '0');
	}
	if (v == 0 || v > 65535)
		goto bad;
	m->tsih = (unsigned)v;
	return 0;
bad:
	snprintf(err, errlen, "session id must be a TSIH between 1 and 65535");
	return -EINVAL;
}

int api_route_match(const char *path, struct api_match *m, char *err, size_t errlen)
{
	const char *seg[6];
	size_t seglen[6];
	size_t n = 0;
	const char *p = path;

	memset(m, 0, sizeof(*m));
	if (errlen)
		err[0] = '\0';
	if (*p != '/')
		return -ENOENT;
	/* Split "/a/b/c" into at most six segments (the longest route,
	 * /v1/clients/{id}/disks/{image}/remove); more is no route. */
	while (*p == '/') {
		const char *s = ++p;

		while (*p && *p != '/')
			p++;
		if (n == 6)
			return -ENOENT;
		seg[n] = s;
		seglen[n] = (size_t)(p - s);
		if (seglen[n] == 0)
			return -ENOENT;	/* "//" or a trailing '/' */
		n++;
	}
	if (n < 2 || seglen[0] != 2 || memcmp(seg[0], "v1", 2) != 0)
		return -ENOENT;
#define SEG_IS(i, lit) (seglen[i] == sizeof(lit) - 1 && memcmp(seg[i], lit, sizeof(lit) - 1) == 0)
	if (SEG_IS(1, "status") && n == 2) {
		m->route = API_R_STATUS;
		return 0;
	}
	if (SEG_IS(1, "clients")) {
		if (n == 2) {
			m->route = API_R_CLIENTS;
			return 0;
		}
		if (n == 6 && SEG_IS(3, "disks") && SEG_IS(5, "remove")) {
			m->route = API_R_CLIENT_DISK_REMOVE;
			return take_id(seg[2], seglen[2], m, err, errlen) ? -EINVAL :
			       take_image(seg[4], seglen[4], m, err, errlen);
		}
		if (n > 4)
			return -ENOENT;
		if (n == 3)
			m->route = API_R_CLIENT;
		else if (SEG_IS(3, "disks"))
			m->route = API_R_CLIENT_DISKS;
		else if (SEG_IS(3, "reset"))
			m->route = API_R_CLIENT_RESET;
		else if (SEG_IS(3, "remove"))
			m->route = API_R_CLIENT_REMOVE;
		else if (SEG_IS(3, "set"))
			m->route = API_R_CLIENT_SET;
		else if (SEG_IS(3, "wake"))
			m->route = API_R_CLIENT_WAKE;
		else
			return -ENOENT;
		return take_id(seg[2], seglen[2], m, err, errlen);
	}
	if (SEG_IS(1, "images")) {
		if (n == 2) {
			m->route = API_R_IMAGES;
			return 0;
		}
		if (n == 6 && SEG_IS(3, "disks") && SEG_IS(5, "remove")) {
			m->route = API_R_IMAGE_DISK_REMOVE;
			return take_id(seg[2], seglen[2], m, err, errlen) ? -EINVAL :
			       take_image(seg[4], seglen[4], m, err, errlen);
		}
		if (n > 4)
			return -ENOENT;
		if (n == 4 && SEG_IS(3, "disks")) {
			m->route = API_R_IMAGE_DISKS;
		} else if (n == 4) {
			if (seglen[3] > API_ACTION_MAX)
				return -ENOENT;
			for (size_t i = 0; i < seglen[3]; i++)
				if (seg[3][i] < 'a' || seg[3][i] > 'z')
					return -ENOENT;
			memcpy(m->action, seg[3], seglen[3]);
			m->action[seglen[3]] = '\0';
			m->route = API_R_IMAGE_ACTION;
		} else {
			m->route = API_R_IMAGE;
		}
		return take_id(seg[2], seglen[2], m, err, errlen);
	}
	if (SEG_IS(1, "jobs") && n <= 3) {
		unsigned long v = 0;
		if (n == 2) {
			m->route = API_R_JOBS;
			return 0;
		}
		for (size_t i = 0; i < seglen[2]; i++) {
			if (seg[2][i] < '0' || seg[2][i] > '9' || i >= 9) {
				snprintf(err, errlen, "job id must be a number");
				return -EINVAL;
			}
			v = v * 10 + (unsigned long)(seg[2][i] - '0');
		}
		m->route = API_R_JOB;
		m->tsih = (unsigned)v;
		return 0;
	}
	if (SEG_IS(1, "cluster") && n <= 3) {
		if (n == 2)
			m->route = API_R_CLUSTER;
		else if (SEG_IS(2, "drain"))
			m->route = API_R_CLUSTER_DRAIN;
		else if (SEG_IS(2, "health"))
			m->route = API_R_CLUSTER_HEALTH;
		else
			return -ENOENT;
		return 0;
	}
	if (n == 2 && (SEG_IS(1, "stats") || SEG_IS(1, "events") || SEG_IS(1, "wake"))) {
		m->route = SEG_IS(1, "stats") ? API_R_STATS : SEG_IS(1, "events") ? API_R_EVENTS :
			   API_R_WAKE;
		return 0;
	}
	if (n == 3 && SEG_IS(1, "console") && SEG_IS(2, "passwd")) {
		m->route = API_R_CONSOLE_PASSWD;
		return 0;
	}
	if (SEG_IS(1, "sessions") && n <= 3) {
		if (n == 2) {
			m->route = API_R_SESSIONS;
			return 0;
		}
		m->route = API_R_SESSION;
		return take_tsih(seg[2], seglen[2], m, err, errlen);
	}
#undef SEG_IS
	return -ENOENT;
}

const char *api_route_allow(enum api_route r)
{
	switch (r) {
	case API_R_STATUS:
	case API_R_CLIENT:
	case API_R_SESSIONS:
	case API_R_IMAGE:
	case API_R_JOBS:
	case API_R_JOB:
	case API_R_CLUSTER:
	case API_R_CLUSTER_HEALTH:
	case API_R_STATS:
	case API_R_EVENTS:
		return "GET";
	case API_R_CLIENTS:
	case API_R_IMAGES:
		return "GET, POST";
	case API_R_IMAGE_ACTION:
	case API_R_CLIENT_RESET:
	case API_R_CLIENT_REMOVE:
	case API_R_CLIENT_SET:
	case API_R_CLUSTER_DRAIN:
	case API_R_WAKE:
	case API_R_CLIENT_WAKE:
	case API_R_CONSOLE_PASSWD:
	case API_R_CLIENT_DISKS:
	case API_R_CLIENT_DISK_REMOVE:
	case API_R_IMAGE_DISKS:
	case API_R_IMAGE_DISK_REMOVE:
		return "POST";
	case API_R_SESSION:
		return "DELETE";
	case API_R_NONE:
		break;
	}
	return NULL;
}

bool api_route_allows(enum api_route r, const char *method)
{
	const char *allow = api_route_allow(r);
	size_t n = strlen(method);

	if (strpbrk(method, ", "))
		return false;
	/* Walk the ", "-separated list; whole words only ("POS" is no POST). */
	while (allow && n) {
		if (strncmp(allow, method, n) == 0 && (allow[n] == '\0' || allow[n] == ','))
			return true;
		allow = strchr(allow, ',');
		if (allow)
			allow += 2;
	}
	return false;
}

unsigned api_status_for(int rc)
{
	switch (rc) {
	case -ENOENT:
		return 404;
	case -EINVAL:
		return 400;
	case -EBUSY:
	case -EEXIST:
	case -ECANCELED:  /* a gateway of a cluster lost a race: try again */
		return 409;
	case -EAGAIN:     /* the cluster's change lock could not be had */
		return 503;
	case -ENOSPC:
		return 507;
	case -ENOTCONN:   /* a store the daemon is not connected to (Ceph) */
		return 503;
	default:
		return 500;
	}
}
