/*
 * ops_cluster.c - the admin API's cluster operations (api.h: GET
 * /v1/cluster, POST /v1/cluster/drain, GET /v1/cluster/health) over
 * cluster.h.  A single server (no cluster) answers each with -ENOENT
 * "not a cluster".
 */
#include "admin/ops.h"
#include "cluster/cluster.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The daemon's cluster, or NULL with err set. */
static struct cluster *cluster_of(void *ctx, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;

	if (!d->cluster)
		snprintf(err, errlen, "not a cluster: this pristined has no cluster-name");
	return d->cluster;
}

static int op_cluster_status(void *ctx, json_t **out, char *err, size_t errlen)
{
	struct cluster *cl = cluster_of(ctx, err, errlen);
	int rc;

	if (!cl)
		return -ENOENT;
	if ((rc = cluster_status(cl, out)))
		snprintf(err, errlen, "cannot read the cluster's table from Ceph: %s", strerror(-rc));
	return rc;
}

/* body {"gateway": NAME, "on": bool}; "on" absent = true. */
static int op_cluster_drain(void *ctx, json_t *body, json_t **out, char *err, size_t errlen)
{
	struct cluster *cl = cluster_of(ctx, err, errlen);
	const char *gw;
	json_t *on;
	int rc;

	if (!cl)
		return -ENOENT;
	if ((rc = body_string(body, "gateway", &gw, err, errlen)))
		return rc;
	if (!gw || !gw[0]) {
		snprintf(err, errlen, "\"gateway\" (the name of a gateway) is required");
		return -EINVAL;
	}
	on = json_object_get(body, "on");
	if (on && !json_is_boolean(on)) {
		snprintf(err, errlen, "\"on\" must be true or false");
		return -EINVAL;
	}
	if ((rc = cluster_drain(cl, gw, !on || json_is_true(on), err, errlen)))
		return rc;
	*out = json_pack("{s:s, s:b}", "gateway", gw, "draining", !on || json_is_true(on));
	return *out ? 0 : -ENOMEM;
}

static int op_cluster_health(void *ctx, json_t **out, char *err, size_t errlen)
{
	struct cluster *cl = cluster_of(ctx, err, errlen);

	if (!cl)
		return -ENOENT;
	if (!cluster_healthy(cl)) {
		snprintf(err, errlen, "unhealthy: this gateway has not reached Ceph within "
			 "cluster-dead-after (or it is fenced)");
		return -ENOTCONN;
	}
	*out = json_pack("{s:b}", "healthy", 1);
	return *out ? 0 : -ENOMEM;
}

void cluster_ops_init(struct control_ops *ops)
{
	ops->cluster_status = op_cluster_status;
	ops->cluster_drain = op_cluster_drain;
	ops->cluster_health = op_cluster_health;
}
