/*
 * api_route.h - request-line routing for the admin API (internal to
 * src/admin/api.c and its unit tests).
 *
 * Pure functions, no I/O: map a method and a raw (still percent-encoded)
 * URL path onto one of the routes listed in api.h, decode and check
 * the {id} or {tsih} segment, and map op errors to HTTP status codes.
 */
#ifndef PRISTINE_API_ROUTE_H
#define PRISTINE_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest client id (name or IQN) accepted in a path, in decoded bytes. */
#define API_ID_MAX 255

enum api_route {
	API_R_NONE = 0,		/* no such path */
	API_R_STATUS,		/* /v1/status */
	API_R_CLIENTS,		/* /v1/clients (GET list, POST add) */
	API_R_CLIENT,		/* /v1/clients/{id} */
	API_R_CLIENT_RESET,	/* /v1/clients/{id}/reset */
	API_R_CLIENT_REMOVE,	/* /v1/clients/{id}/remove */
	API_R_CLIENT_SET,	/* /v1/clients/{id}/set */
	API_R_SESSIONS,		/* /v1/sessions */
	API_R_SESSION,		/* /v1/sessions/{tsih} */
	API_R_IMAGES,		/* /v1/images (GET list, POST add/import) */
	API_R_IMAGE,		/* /v1/images/{id} */
	API_R_IMAGE_ACTION,	/* /v1/images/{id}/{action} */
	API_R_JOBS,		/* /v1/jobs */
	API_R_JOB,		/* /v1/jobs/{n} */
	API_R_CLUSTER,		/* /v1/cluster */
	API_R_CLUSTER_DRAIN,	/* /v1/cluster/drain */
	API_R_CLUSTER_HEALTH,	/* /v1/cluster/health */
	API_R_STATS,		/* /v1/stats */
	API_R_EVENTS,		/* /v1/events */
	API_R_WAKE,		/* /v1/wake */
	API_R_CLIENT_WAKE,	/* /v1/clients/{id}/wake */
	API_R_CONSOLE_PASSWD,	/* /v1/console/passwd */
	API_R_CLIENT_DISKS,	/* /v1/clients/{id}/disks (an extra disk added) */
	API_R_CLIENT_DISK_REMOVE,	/* /v1/clients/{id}/disks/{image}/remove */
	API_R_IMAGE_DISKS,	/* /v1/images/{id}/disks (its group's extra disk) */
	API_R_IMAGE_DISK_REMOVE,	/* /v1/images/{id}/disks/{image}/remove */
};

/* Longest {action} segment. */
#define API_ACTION_MAX 15

struct api_match {
	enum api_route route;
	char id[API_ID_MAX + 1];	/* decoded {id}, NUL-terminated */
	unsigned tsih;			/* parsed {tsih}, 1..65535, or job {n} */
	char action[API_ACTION_MAX + 1];	/* an image's {action}: [a-z]+ */
	char image[API_ID_MAX + 1];	/* decoded {image} of a .../disks/{image}/remove */
};

/*
 * Match a raw URL path (as sent, query string already cut off) against
 * the route table.  On success fills *m and returns 0.  Returns -ENOENT
 * when no route has this shape, -EINVAL when the shape matches but the
 * {id}, {image} or {tsih} segment is unacceptable (bad escape, NUL or other
 * control character, longer than API_ID_MAX, not a TSIH); err then holds
 * a one-line reason.
 */
int api_route_match(const char *path, struct api_match *m, char *err, size_t errlen);

/*
 * The methods route r answers, as the value of an Allow header ("GET",
 * "GET, POST", ...); a static string, NULL for API_R_NONE.
 */
const char *api_route_allow(enum api_route r);

/* Whether route r answers method (exact, case-sensitive as HTTP says). */
bool api_route_allows(enum api_route r, const char *method);

/*
 * Percent-decode len bytes of in into out (outlen bytes including the
 * terminating NUL).  Returns the decoded length, -EINVAL for a malformed
 * escape, a NUL byte or another control character (0x00-0x1f, 0x7f),
 * -ENAMETOOLONG when the result does not fit.
 */
int api_pct_decode(const char *in, size_t len, char *out, size_t outlen);

/* HTTP status for an op's negative errno, as documented in api.h. */
unsigned api_status_for(int rc);

#endif
