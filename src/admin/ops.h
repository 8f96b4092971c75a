/*
 * ops.h - the daemon's implementation of the admin API operations.
 */
#ifndef PRISTINE_OPS_H
#define PRISTINE_OPS_H

#include "admin/api.h"
#include "lab/clients.h"
#include "proto/iscsi.h"

struct daemon_ctx {
	struct registry *reg;
	struct iscsi_server *srv;
	const char *boot_listen;      /* the boot endpoint's ADDR:PORT, NULL = off */
	struct rcache *rcache;        /* the shared read cache of RBD versions, NULL = off */
	struct cluster *cluster;      /* this gateway's cluster, NULL = a single server */
	const char *state;            /* the state directory, absolute (the console's password) */
};

/* Fill ops with the daemon's operations over d (borrowed). */
void daemon_ops_init(struct daemon_ctx *d, struct control_ops *ops);
/* The image and job operations (ops_images.c); ops->ctx is a daemon_ctx. */
void image_ops_init(struct control_ops *ops);
/* GET /v1/events (ops_events.c). */
void events_ops_init(struct control_ops *ops);
/* GET /v1/stats (ops_stats.c). */
void stats_ops_init(struct control_ops *ops);
/* The stats document of GET /v1/stats, new in *out; ctx is a daemon_ctx
 * (a metrics_collect_fn for admin/metrics.h).  0 or -ENOMEM. */
int stats_collect(void *ctx, json_t **out);
/* The cluster operations (ops_cluster.c); ops->ctx is a daemon_ctx. */
void cluster_ops_init(struct control_ops *ops);
/* POST /v1/wake, /v1/clients/{id}/wake (ops_wake.c); ops->ctx is a daemon_ctx. */
void wake_ops_init(struct control_ops *ops);

/* The extra disk operations and client reset (ops_disks.c); ops->ctx is
 * a daemon_ctx. */
void disk_ops_init(struct control_ops *ops);
/* GET /v1/images/{name} (ops_images.c): the image with its versions,
 * its group's extra disks and "disk_of".  0 or -ENOENT with err. */
int op_image_show(void *ctx, const char *name, json_t **out, char *err, size_t errlen);
/* The client id names (found by name or initiator) as the API shows it,
 * new in *out, or {"id": id} when it is gone (ops_clients.c). */
int client_answer(struct daemon_ctx *d, const char *id, json_t **out);

/*
 * An optional string field of a request body: *out is NULL when the key
 * is absent; a value of another type is -EINVAL with a message in err.
 */
int body_string(json_t *body, const char *key, const char **out, char *err, size_t errlen);

#endif
