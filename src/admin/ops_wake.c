/*
 * ops_wake.c - POST /v1/wake and /v1/clients/{id}/wake: Wake-on-LAN of
 * named PCs or of every PC (of an image), lab/wake_clients.c.
 */
#include "admin/ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Most ids in one request: more than a registry can hold is a mistake. */
#define OPS_WAKE_MAX_IDS 4096

/*
 * Body {"clients":[id...]} or {"all": true, "image": str?}; answer
 * {"woken":[...], "skipped":[...]} (registry_wake).  -EINVAL for a body
 * that is neither, -ENOENT for an unknown client or image.
 */
static int op_wake(void *ctx, json_t *body, json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	json_t *ids = json_object_get(body, "clients"), *all = json_object_get(body, "all");
	const char *image = NULL, **v = NULL;
	size_t n = 0;
	int rc;

	if (body_string(body, "image", &image, err, errlen))
		return -EINVAL;
	if (all && !json_is_boolean(all)) {
		snprintf(err, errlen, "all: expected true or false");
		return -EINVAL;
	}
	if (json_is_true(all) == (ids != NULL)) {
		snprintf(err, errlen, "give either \"clients\": [names] or \"all\": true");
		return -EINVAL;
	}
	if (image && !json_is_true(all)) {
		snprintf(err, errlen, "image: only with \"all\": true");
		return -EINVAL;
	}
	if (ids) {
		n = json_is_array(ids) ? json_array_size(ids) : 0;
		if (!n || n > OPS_WAKE_MAX_IDS) {
			snprintf(err, errlen, "clients: expected a list of 1 to %d client names",
				 OPS_WAKE_MAX_IDS);
			return -EINVAL;
		}
		v = calloc(n, sizeof(*v));
		if (!v) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++) {
			v[i] = json_string_value(json_array_get(ids, i));
			if (!v[i]) {
				free(v);
				snprintf(err, errlen, "clients: expected client names (strings)");
				return -EINVAL;
			}
		}
	}
	rc = registry_wake(d->reg, v, (unsigned)n, json_is_true(all), image, out, err, errlen);
	free(v);
	return rc;
}

void wake_ops_init(struct control_ops *ops)
{
	ops->wake = op_wake;
}
