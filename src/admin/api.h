/*
 * api.h - the admin API: HTTP + JSON on a Unix socket owned by root.
 *
 * The API layer (api.c, libmicrohttpd + jansson) parses requests, routes
 * them, and turns results into JSON responses; it knows nothing of
 * clients or overlays.  The daemon implements struct control_ops.
 *
 * Every op runs on an API thread, concurrently with the data path; the
 * daemon's implementation does its own locking.  JSON values returned by
 * ops are new references owned by the caller (the API layer frees them).
 *
 * Errors: ops return 0 or a negative errno, with a one-line message in
 * err (NUL-terminated, errlen bytes at most) that the API sends back as
 * {"error": "..."}.  Mapping to HTTP: -ENOENT 404, -EINVAL 400,
 * -EBUSY/-EEXIST 409, -ENOSPC 507, anything else 500.
 *
 * Routes (all under /v1, JSON bodies):
 *   GET    /v1/status                    -> ops->status
 *   GET    /v1/clients                   -> ops->clients_list   {"clients":[...]}
 *   GET    /v1/clients/{id}              -> ops->client_show    (id: name or IQN, URL-encoded)
 *   POST   /v1/clients/{id}/reset        -> ops->client_reset   body {"force": bool,
 *                                            "disk": str?} (one disk by image name; absent =
 *                                            all the PC's disks, lab/xdisk.h)
 *   POST   /v1/clients/{id}/disks        -> ops->client_disk_add body {"image": str,
 *                                            "policy": str?, "quota_bytes": int?}
 *   POST   /v1/clients/{id}/disks/{image}/remove -> ops->client_disk_remove
 *   POST   /v1/images/{name}/disks       -> ops->image_disk_add (every PC of image name)
 *                                            body {"image": str, "policy": str?,
 *                                            "quota_bytes": int?}
 *   POST   /v1/images/{name}/disks/{image}/remove -> ops->image_disk_remove
 *   (a client's JSON has "disks": lab/xdisk.h client_disks_json; an image's
 *   "disks" and "disk_of": image_group_disks_json)
 *   POST   /v1/clients                   -> ops->client_add     body {"initiator": str,
 *                                            "name": str?, "image": str?, "quota_bytes": int?}
 *   POST   /v1/clients/{id}/remove       -> ops->client_remove  body {"force": bool}
 *   POST   /v1/clients/{id}/set          -> ops->client_set     body {"name": str?,
 *                                            "image": str?, "quota_bytes": int?, "force": bool?}
 *   GET    /v1/sessions                  -> ops->sessions_list  {"sessions":[...]}
 *   DELETE /v1/sessions/{tsih}           -> ops->session_kill
 *   GET    /v1/images                    -> ops->images_list    {"images":[...]}
 *   POST   /v1/images                    -> ops->image_add      body {"name": str, "path": str,
 *                                            "import": bool?, "format": str?, "block_size": int?,
 *                                            "target": str?}  (import answers {"job": n})
 *   GET    /v1/images/{name}             -> ops->image_show     (with its versions)
 *   POST   /v1/images/{name}/{action}    -> ops->image_action   action: edit {"client", "force"?},
 *                                            commit {"message", "force"?}, discard {"force"?},
 *                                            rollback {"version"}, flatten {}, export {"version"?,
 *                                            "file", "format"?, "force"?}  (flatten/export: {"job": n})
 *   POST   /v1/images/{name}/prefetch    -> ops->image_action   body {"version": int?}: queue
 *                                            the prefetch of a version's boot set (default
 *                                            the current); 202 {"image", "version",
 *                                            "boot_set"}; 409 when its set is empty or
 *                                            prefetch is off (lab/bootsets.h)
 *   GET    /v1/jobs                      -> ops->jobs_list      {"jobs":[...]}
 *   GET    /v1/jobs/{n}                  -> ops->job_show
 *   GET    /v1/cluster                   -> ops->cluster_status (cluster.h's JSON)
 *   POST   /v1/cluster/drain             -> ops->cluster_drain  body {"gateway": str, "on": bool}
 *   GET    /v1/cluster/health            -> ops->cluster_health {"healthy": true}, or 503
 *                                            (-ENOTCONN) when this gateway cannot reach Ceph
 *   (a single server answers the cluster routes -ENOENT "not a cluster")
 *   GET    /v1/stats                     -> ops->stats          counters for metrics and
 *                                            the console (admin/metrics.h documents them)
 *   GET    /v1/events                    -> ops->events         {"events":[{"seq","time",
 *                                            "kind","client"?,"image"?,"text"}...]} newest last
 *   POST   /v1/wake                      -> ops->wake           body {"clients":[id...]} or
 *                                            {"all": true, "image": str?}
 *                                            -> {"woken":[{"client","mac","via"}...]}
 *   POST   /v1/clients/{id}/wake         -> ops->wake           (as {"clients":[id]})
 *   POST   /v1/console/passwd            -> ops->console_passwd body {"password": str}:
 *                                            sets the web console's password
 */
#ifndef PRISTINE_CONTROL_H
#define PRISTINE_CONTROL_H

#include <jansson.h>

/* An op's return for a request taken but not done yet: answered 202
 * Accepted with its JSON (POST /v1/images/{name}/prefetch). */
#define API_ACCEPTED 202
#include <stdbool.h>
#include <stddef.h>

struct control_ops {
	int (*status)(void *ctx, json_t **out, char *err, size_t errlen);
	int (*clients_list)(void *ctx, json_t **out, char *err, size_t errlen);
	int (*client_show)(void *ctx, const char *id, json_t **out, char *err, size_t errlen);
	/* disk: one disk by its image's name, NULL = all of them */
	int (*client_reset)(void *ctx, const char *id, bool force, const char *disk, json_t **out,
			    char *err, size_t errlen);
	/* extra disks (lab/xdisk.h): body {"image", "policy"?, "quota_bytes"?} */
	int (*client_disk_add)(void *ctx, const char *id, json_t *body, json_t **out, char *err,
			       size_t errlen);
	int (*client_disk_remove)(void *ctx, const char *id, const char *image, json_t **out,
				  char *err, size_t errlen);
	int (*image_disk_add)(void *ctx, const char *name, json_t *body, json_t **out, char *err,
			      size_t errlen);
	int (*image_disk_remove)(void *ctx, const char *name, const char *image, json_t **out,
				 char *err, size_t errlen);
	/* body: the parsed JSON object of the request (borrowed); the op
	 * validates its fields and answers -EINVAL with a message. */
	int (*client_add)(void *ctx, json_t *body, json_t **out, char *err, size_t errlen);
	int (*client_remove)(void *ctx, const char *id, bool force, json_t **out, char *err, size_t errlen);
	int (*client_set)(void *ctx, const char *id, json_t *body, json_t **out, char *err, size_t errlen);
	int (*sessions_list)(void *ctx, json_t **out, char *err, size_t errlen);
	int (*session_kill)(void *ctx, unsigned tsih, json_t **out, char *err, size_t errlen);
	int (*images_list)(void *ctx, json_t **out, char *err, size_t errlen);
	int (*image_add)(void *ctx, json_t *body, json_t **out, char *err, size_t errlen);
	int (*image_show)(void *ctx, const char *name, json_t **out, char *err, size_t errlen);
	int (*image_action)(void *ctx, const char *name, const char *action, json_t *body,
			    json_t **out, char *err, size_t errlen);
	int (*jobs_list)(void *ctx, json_t **out, char *err, size_t errlen);
	int (*job_show)(void *ctx, unsigned id, json_t **out, char *err, size_t errlen);
	int (*cluster_status)(void *ctx, json_t **out, char *err, size_t errlen);
	int (*cluster_drain)(void *ctx, json_t *body, json_t **out, char *err, size_t errlen);
	int (*cluster_health)(void *ctx, json_t **out, char *err, size_t errlen);
	int (*stats)(void *ctx, json_t **out, char *err, size_t errlen);
	int (*events)(void *ctx, json_t **out, char *err, size_t errlen);
	int (*wake)(void *ctx, json_t *body, json_t **out, char *err, size_t errlen);
	int (*console_passwd)(void *ctx, json_t *body, json_t **out, char *err, size_t errlen);
	void *ctx;
};

struct api;

/*
 * Serve the API on a Unix socket at path, created mode 0600.  A stale
 * socket file is replaced; a path that is not a socket, or a socket some
 * live process still answers on, is refused (-EEXIST / -EADDRINUSE).  ops is borrowed and must
 * outlive the API.  Returns 0 and *out, or -errno with a message logged.
 */
int api_start(const char *path, const struct control_ops *ops, struct api **out);
/* Stop serving, wait for requests in progress, remove the socket file. */
void api_stop(struct api *api);

#endif
