/*
 * ctl_wake.c - pristinectl's `client wake` (Wake-on-LAN, POST /v1/wake)
 * and `events` (the event log, GET /v1/events).
 */
#include "ctl/ctl.h"
#include "util/log.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

/* What a wake answer says, for people: one line per PC woken or skipped. */
static void print_wake(const json_t *res)
{
	json_t *v;
	size_t i;
	char a[256], b[256], m[64];

	json_array_foreach(json_object_get(res, "woken"), i, v)
		printf("woke %s (%s) via %s\n", log_safe(ctl_str(v, "client", "?"), a, sizeof(a)),
		       log_safe(ctl_str(v, "mac", "?"), m, sizeof(m)),
		       log_safe(ctl_str(v, "via", "?"), b, sizeof(b)));
	json_array_foreach(json_object_get(res, "skipped"), i, v)
		printf("skipped %s: %s\n", log_safe(ctl_str(v, "client", "?"), a, sizeof(a)),
		       log_safe(ctl_str(v, "why", "?"), b, sizeof(b)));
	if (!json_array_size(json_object_get(res, "woken")) &&
	    !json_array_size(json_object_get(res, "skipped")))
		printf("no PC to wake\n");
}

int ctl_client_wake(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o)
{
	json_t *body, *ids, *res;
	int rc;

	if (o->all == (argc > 0))
		return usage_error(o->all ? "client wake --all takes no client names" :
				   "client wake needs client names or --all");
	if (o->image && !o->all)
		return usage_error("--image goes with client wake --all");
	if (o->all) {
		body = json_pack("{s:b}", "all", 1);
		if (body && o->image)
			json_object_set_new(body, "image", json_string(o->image));
	} else {
		ids = json_array();
		for (int i = 0; ids && i < argc; i++)
			json_array_append_new(ids, json_string(argv[i]));
		body = ids ? json_pack("{s:o}", "clients", ids) : NULL;
	}
	if (!body) {
		fprintf(stderr, "pristinectl: out of memory\n");
		return CTL_EREMOTE;
	}
	rc = ctl_call_json(c, "POST", "/v1/wake", body, NULL, &res);
	if (rc)
		return rc;
	if (c->json)
		ctl_print_json(res, stdout);
	else
		print_wake(res);
	json_decref(res);
	return CTL_OK;
}

/* A row of `events`: time, kind, client, image, what. */
static void event_row(const json_t *e, const char **row, char buf[][CTL_ROW_BUF])
{
	ctl_fmt_time(ctl_int(e, "time_ms") / 1000, buf[0], CTL_ROW_BUF);
	row[0] = buf[0];
	row[1] = ctl_str(e, "kind", "-");
	row[2] = ctl_str(e, "client", "-");
	row[3] = ctl_str(e, "image", "-");
	row[4] = ctl_str(e, "text", "");
}

int ctl_events(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o)
{
	static const char *const head[] = { "TIME", "KIND", "CLIENT", "IMAGE", "WHAT" };
	int rc;

	(void)argv;
	if (argc)
		return usage_error("events takes no arguments");
	if ((rc = opts_only(o, "events", "")))
		return rc;
	return ctl_list(c, "/v1/events", "events", head, 5, event_row);
}
