/*
 * api_call.h - one admin API request, routed (api_route.h) and run
 * against the daemon's ops (api.h), with no HTTP server around it: the
 * admin socket (api.c) and the web console (console/console.h) both
 * call it, so the console never gives more than the API.
 */
#ifndef PRISTINE_API_CALL_H
#define PRISTINE_API_CALL_H

#include <jansson.h>
#include <stddef.h>

#include "admin/api.h"
#include "admin/api_route.h"

/*
 * Run the op behind a matched route m for method (already checked with
 * api_route_allows).  body/len: the request body (NUL-terminated when
 * len > 0; len 0 = none).  A missing op is -ENOSYS (501) before the body
 * is looked at; a body that is not what the route takes is -EINVAL
 * (400).  Returns the op's result (map it with api_status_for); *out is
 * what it produced (owned by the caller, may be NULL), err its message.
 */
int api_dispatch(const struct control_ops *ops, const struct api_match *m, const char *method,
		 const char *body, size_t len, json_t **out, char *err, size_t errlen);

#endif
