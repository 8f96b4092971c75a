/*
 * ctl_cluster.c - pristinectl cluster VERB: status (the gateway table),
 * drain GW [--undo], health (exit 0 healthy, 1 not: what keepalived's
 * track script runs).  A single server answers "not a cluster" (exit 1).
 */
#include "ctl/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The table: gateway, address, state, last beat, sessions, PCs. */
static int cluster_status_print(const struct ctl *c)
{
	struct ctl_table t;
	json_t *out, *g;
	size_t i;
	int rc = ctl_call(c, "GET", "/v1/cluster", NULL, NULL, &out);

	if (rc)
		return rc;
	if (c->json) {
		ctl_print_json(out, stdout);
		json_decref(out);
		return CTL_OK;
	}
	ctl_table_init(&t, 7);
	{
		const char *head[] = { "GATEWAY", "ADDRESS", "STATE", "LAST BEAT", "SESSIONS", "PCS",
				       "PLACED" };
		ctl_table_add(&t, head);
	}
	json_array_foreach(json_object_get(out, "gateways"), i, g) {
		char name[64], beat[32], sess[16], pcs[16], placed[16];
		const char *row[7];

		snprintf(name, sizeof(name), "%s%s", ctl_str(g, "name", "?"),
			 strcmp(ctl_str(g, "name", ""), ctl_str(out, "self", "")) ? "" : " *");
		snprintf(beat, sizeof(beat), "%.1fs ago", (double)ctl_int(g, "beat_age_ms") / 1000.0);
		snprintf(sess, sizeof(sess), "%lld", (long long)ctl_int(g, "sessions"));
		snprintf(pcs, sizeof(pcs), "%lld", (long long)ctl_int(g, "pcs"));
		snprintf(placed, sizeof(placed), "%lld", (long long)ctl_int(g, "placed"));
		row[0] = name;
		row[1] = ctl_str(g, "address", "-");
		row[2] = ctl_str(g, "state", "?");
		row[3] = beat;
		row[4] = sess;
		row[5] = pcs;
		row[6] = placed;
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	printf("(* = this gateway; PCS: PCs online there; PLACED: PCs it is chosen for)\n");
	json_decref(out);
	return CTL_OK;
}

int do_cluster(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o)
{
	const char *sub = argc > 0 ? argv[0] : NULL;
	json_t *out;
	int rc;

	if (!sub)
		return usage_error("cluster needs a verb: status, drain GW [--undo], health");
	if (!strcmp(sub, "status")) {
		if (argc != 1)
			return usage_error("cluster status takes no arguments");
		if ((rc = opts_only(o, "cluster status", "")))
			return rc;
		return cluster_status_print(c);
	}
	if (!strcmp(sub, "drain")) {
		if (argc != 2)
			return usage_error("cluster drain needs one gateway name");
		if ((rc = opts_only(o, "cluster drain", "u")))
			return rc;
		rc = ctl_call_json(c, "POST", "/v1/cluster/drain",
				   json_pack("{s:s, s:b}", "gateway", argv[1], "on", !o->undo), NULL, &out);
		if (rc)
			return rc;
		if (c->json)
			ctl_print_json(out, stdout);
		else
			printf("gateway %s %s\n", argv[1], o->undo ? "takes PCs again" :
			       "drains: its PCs move to the other gateways as their sessions end");
		json_decref(out);
		return CTL_OK;
	}
	if (!strcmp(sub, "health")) {
		if (argc != 1)
			return usage_error("cluster health takes no arguments");
		if ((rc = opts_only(o, "cluster health", "")))
			return rc;
		rc = ctl_call(c, "GET", "/v1/cluster/health", NULL, NULL, &out);
		if (rc)
			return rc == CTL_EUNREACH ? CTL_EREMOTE : rc;
		if (c->json)
			ctl_print_json(out, stdout);
		else
			printf("healthy\n");
		json_decref(out);
		return CTL_OK;
	}
	return usage_error("unknown cluster verb '%s'", sub);
}
