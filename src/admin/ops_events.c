/*
 * ops_events.c - GET /v1/events: the newest events of the event log
 * (util/events.h) as JSON, oldest first.
 */
#include "admin/ops.h"
#include "util/events.h"

#include <errno.h>
#include <stdlib.h>

/* Events sent per request: the console polls and keeps its own list. */
#define OPS_EVENTS_SENT 200

static int op_events(void *ctx, json_t **out, char *err, size_t errlen)
{
	struct event *ev = calloc(EVENTS_MAX, sizeof(*ev));
	json_t *arr = json_array();
	uint64_t last = 0;
	size_t n, from;

	(void)ctx;
	if (!ev || !arr) {
		free(ev);
		json_decref(arr);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	n = events_since(0, ev, EVENTS_MAX, &last);
	from = n > OPS_EVENTS_SENT ? n - OPS_EVENTS_SENT : 0;
	for (size_t i = from; i < n; i++) {
		json_t *o = json_pack("{s:I, s:I, s:s, s:s}", "seq", (json_int_t)ev[i].seq,
				      "time_ms", (json_int_t)ev[i].time_ms,
				      "kind", events_kind_name(ev[i].kind), "text", ev[i].text);

		if (o && ev[i].client[0])
			json_object_set_new(o, "client", json_string(ev[i].client));
		if (o && ev[i].image[0])
			json_object_set_new(o, "image", json_string(ev[i].image));
		json_array_append_new(arr, o);
	}
	free(ev);
	*out = json_pack("{s:o, s:I}", "events", arr, "last", (json_int_t)last);
	return 0;
}

void events_ops_init(struct control_ops *ops)
{
	ops->events = op_events;
}
