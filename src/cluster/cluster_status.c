/*
 * cluster_status.c - the table and the placement as JSON, for GET
 * /v1/cluster and `pristinectl cluster status` (cluster.h).
 */
#include "cluster/cluster_int.h"

#include <errno.h>
#include <string.h>

int cluster_status(struct cluster *cl, json_t **out)
{
	json_t *placement, *gws, *pcs, *root, *v;
	const char *k;
	int64_t now;
	int rc;

	if ((rc = cluster_table_read(cl)))
		return rc;
	if (!(placement = cluster_placement_read(cl, &rc)))
		return rc;
	gws = json_array();
	pcs = json_array();
	root = json_pack("{s:s, s:o, s:o, s:b}", "self", cl->name, "gateways", gws, "pcs", pcs,
			 "healthy", cluster_healthy(cl));
	if (!root) {
		json_decref(placement);
		return -ENOMEM;
	}
	pthread_mutex_lock(&cl->lock);
	now = cluster_now_ms();
	for (unsigned i = 0; i < cl->ngw; i++) {
		const struct gw *g = &cl->gws[i];
		unsigned placed = 0;

		json_object_foreach(placement, k, v)
			if (json_string_value(v) && strcmp(json_string_value(v), g->name) == 0)
				placed++;
		json_array_append_new(gws, json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:i}",
			"name", g->name, "address", g->address, "ceph_addr", g->ceph_addr,
			"state", cluster_state_name(cluster_gw_state(cl, g, now)),
			"beat_age_ms", (json_int_t)(now - g->beat_ms), "sessions", (int)g->sessions,
			"pcs", (int)g->pcs, "placed", (int)placed));
	}
	pthread_mutex_unlock(&cl->lock);
	json_object_foreach(placement, k, v)
		json_array_append_new(pcs, json_pack("{s:s, s:s}", "initiator", k, "gateway",
						     json_string_value(v) ?: ""));
	json_decref(placement);
	*out = root;
	return 0;
}
