/*
 * api_call.c - run one admin API request against struct control_ops:
 * parse its JSON body as the route takes it and call the op.  Shared by
 * the admin socket (api.c) and the web console (console/), so that the
 * console can never do more than the API does.
 */
#include "admin/api_call.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/*
 * Parse the request body as a JSON object into *root (a new reference
 * the caller frees).  An empty body gives *root = NULL when empty_ok,
 * and is refused otherwise.  Duplicate keys and trailing bytes are
 * refused (jansson checks the end of input by default).  Returns 0, or
 * -EINVAL with err set.
 */
static int parse_body(const char *bodytext, size_t len, bool empty_ok, json_t **root,
		      char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v;

	*root = NULL;
	if (len == 0 && empty_ok)
		return 0;
	if (len == 0) {
		snprintf(err, errlen, "body must be a JSON object");
		return -EINVAL;
	}
	v = json_loadb(bodytext, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v) {
		snprintf(err, errlen, "malformed JSON body: %s", jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		snprintf(err, errlen, "body must be a JSON object");
		return -EINVAL;
	}
	*root = v;
	return 0;
}

/*
 * Parse a body that is empty or {"force": bool, ...} (reset, remove);
 * other keys are ignored.  0 with *force set, or -EINVAL with err set.
 */
static int parse_force_body(const char *bodytext, size_t len, bool *force, char *err, size_t errlen)
{
	json_t *root, *f;
	int rc;

	*force = false;
	rc = parse_body(bodytext, len, true, &root, err, errlen);
	if (rc || !root)
		return rc;
	f = json_object_get(root, "force");
	if (f && !json_is_boolean(f)) {
		snprintf(err, errlen, "\"force\" must be true or false");
		rc = -EINVAL;
	}
	*force = f && json_is_true(f);
	json_decref(root);
	return rc;
}

/*
 * Parse a reset body: empty or {"force": bool?, "disk": str?} (disk: the
 * image of the one disk to reset, lab/xdisk.h; absent = all of them).
 * *disk points into *root (the caller frees *root, NULL when the body
 * was empty).  0, or -EINVAL with err set.
 */
static int parse_reset_body(const char *bodytext, size_t len, bool *force, const char **disk,
			    json_t **root, char *err, size_t errlen)
{
	json_t *f, *d;
	int rc;

	*force = false;
	*disk = NULL;
	rc = parse_body(bodytext, len, true, root, err, errlen);
	if (rc || !*root)
		return rc;
	f = json_object_get(*root, "force");
	d = json_object_get(*root, "disk");
	if (f && !json_is_boolean(f)) {
		snprintf(err, errlen, "\"force\" must be true or false");
		return -EINVAL;
	}
	if (d && (!json_is_string(d) || !json_string_length(d))) {
		snprintf(err, errlen, "\"disk\" must be the name of one of the client's disk images");
		return -EINVAL;
	}
	*force = f && json_is_true(f);
	*disk = d ? json_string_value(d) : NULL;
	return 0;
}

/*
 * Parse the body of an extra disk's attachment (POST .../disks):
 * {"image": str, "policy": str?, "quota_bytes": int?} and nothing else,
 * checked for form here (the op checks that the image and the policy
 * exist).  0 with *root (the caller frees it), or -EINVAL with err set.
 */
static int parse_disk_body(const char *bodytext, size_t len, json_t **root, char *err,
			   size_t errlen)
{
	const char *key;
	json_t *v;
	int rc = parse_body(bodytext, len, false, root, err, errlen);

	if (rc)
		return rc;
	json_object_foreach(*root, key, v) {
		if (strcmp(key, "image") && strcmp(key, "policy") && strcmp(key, "quota_bytes")) {
			snprintf(err, errlen, "unknown field \"%.64s\" (an extra disk takes \"image\", "
				 "\"policy\", \"quota_bytes\")", key);
			goto bad;
		}
	}
	v = json_object_get(*root, "image");
	if (!json_is_string(v) || !json_string_length(v)) {
		snprintf(err, errlen, "\"image\" is required: the name of the image to give as a disk");
		goto bad;
	}
	v = json_object_get(*root, "policy");
	if (v && !json_is_string(v)) {
		snprintf(err, errlen, "\"policy\" must be overlay, discard-on-boot or read-only");
		goto bad;
	}
	v = json_object_get(*root, "quota_bytes");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
		snprintf(err, errlen, "\"quota_bytes\" must be a number of bytes (0 = none)");
		goto bad;
	}
	return 0;
bad:
	json_decref(*root);
	*root = NULL;
	return -EINVAL;
}

/*
 * Run the op behind a matched route and method (already checked with
 * api_route_allows).  A missing op is -ENOSYS (501) before the body is
 * looked at; a body that is not what the route takes is -EINVAL (400).
 * Returns the op's result; *out is what it produced (owned by the
 * caller), err its message.
 */
int api_dispatch(const struct control_ops *ops, const struct api_match *m, const char *method,
		 const char *bodytext, size_t len, json_t **out, char *err, size_t errlen)
{
	json_t *body = NULL;
	bool force;
	int rc;

	switch (m->route) {
	case API_R_STATUS:
		if (!ops->status)
			break;
		return ops->status(ops->ctx, out, err, errlen);
	case API_R_CLIENTS:
		if (strcmp(method, "POST") == 0) {
			if (!ops->client_add)
				break;
			rc = parse_body(bodytext, len, false, &body, err, errlen);
			if (rc)
				return rc;
			rc = ops->client_add(ops->ctx, body, out, err, errlen);
			json_decref(body);
			return rc;
		}
		if (!ops->clients_list)
			break;
		return ops->clients_list(ops->ctx, out, err, errlen);
	case API_R_CLIENT:
		if (!ops->client_show)
			break;
		return ops->client_show(ops->ctx, m->id, out, err, errlen);
	case API_R_CLIENT_RESET: {
		const char *disk;

		if (!ops->client_reset)
			break;
		rc = parse_reset_body(bodytext, len, &force, &disk, &body, err, errlen);
		if (rc == 0)
			rc = ops->client_reset(ops->ctx, m->id, force, disk, out, err, errlen);
		json_decref(body);
		return rc;
	}
	case API_R_CLIENT_DISKS:
	case API_R_IMAGE_DISKS:
		if (m->route == API_R_CLIENT_DISKS ? !ops->client_disk_add : !ops->image_disk_add)
			break;
		rc = parse_disk_body(bodytext, len, &body, err, errlen);
		if (rc)
			return rc;
		rc = m->route == API_R_CLIENT_DISKS ?
		     ops->client_disk_add(ops->ctx, m->id, body, out, err, errlen) :
		     ops->image_disk_add(ops->ctx, m->id, body, out, err, errlen);
		json_decref(body);
		return rc;
	case API_R_CLIENT_DISK_REMOVE:
	case API_R_IMAGE_DISK_REMOVE:
		if (m->route == API_R_CLIENT_DISK_REMOVE ? !ops->client_disk_remove :
		    !ops->image_disk_remove)
			break;
		/* no fields; a body, if any, must still be a JSON object */
		rc = parse_body(bodytext, len, true, &body, err, errlen);
		json_decref(body);
		if (rc)
			return rc;
		return m->route == API_R_CLIENT_DISK_REMOVE ?
		       ops->client_disk_remove(ops->ctx, m->id, m->image, out, err, errlen) :
		       ops->image_disk_remove(ops->ctx, m->id, m->image, out, err, errlen);
	case API_R_CLIENT_REMOVE:
		if (!ops->client_remove)
			break;
		rc = parse_force_body(bodytext, len, &force, err, errlen);
		if (rc)
			return rc;
		return ops->client_remove(ops->ctx, m->id, force, out, err, errlen);
	case API_R_CLIENT_SET:
		if (!ops->client_set)
			break;
		rc = parse_body(bodytext, len, false, &body, err, errlen);
		if (rc)
			return rc;
		rc = ops->client_set(ops->ctx, m->id, body, out, err, errlen);
		json_decref(body);
		return rc;
	case API_R_SESSIONS:
		if (!ops->sessions_list)
			break;
		return ops->sessions_list(ops->ctx, out, err, errlen);
	case API_R_SESSION:
		if (!ops->session_kill)
			break;
		return ops->session_kill(ops->ctx, m->tsih, out, err, errlen);
	case API_R_IMAGES:
		if (strcmp(method, "POST") == 0) {
			if (!ops->image_add)
				break;
			rc = parse_body(bodytext, len, false, &body, err, errlen);
			if (rc)
				return rc;
			rc = ops->image_add(ops->ctx, body, out, err, errlen);
			json_decref(body);
			return rc;
		}
		if (!ops->images_list)
			break;
		return ops->images_list(ops->ctx, out, err, errlen);
	case API_R_IMAGE:
		if (!ops->image_show)
			break;
		return ops->image_show(ops->ctx, m->id, out, err, errlen);
	case API_R_IMAGE_ACTION:
		if (!ops->image_action)
			break;
		rc = parse_body(bodytext, len, true, &body, err, errlen);
		if (rc)
			return rc;
		if (!body)
			body = json_object();
		rc = ops->image_action(ops->ctx, m->id, m->action, body, out, err, errlen);
		json_decref(body);
		return rc;
	case API_R_JOBS:
		if (!ops->jobs_list)
			break;
		return ops->jobs_list(ops->ctx, out, err, errlen);
	case API_R_JOB:
		if (!ops->job_show)
			break;
		return ops->job_show(ops->ctx, m->tsih, out, err, errlen);
	case API_R_CLUSTER:
		if (!ops->cluster_status)
			break;
		return ops->cluster_status(ops->ctx, out, err, errlen);
	case API_R_CLUSTER_HEALTH:
		if (!ops->cluster_health)
			break;
		return ops->cluster_health(ops->ctx, out, err, errlen);
	case API_R_CLUSTER_DRAIN:
		if (!ops->cluster_drain)
			break;
		rc = parse_body(bodytext, len, false, &body, err, errlen);
		if (rc)
			return rc;
		rc = ops->cluster_drain(ops->ctx, body, out, err, errlen);
		json_decref(body);
		return rc;
	case API_R_STATS:
		if (!ops->stats)
			break;
		return ops->stats(ops->ctx, out, err, errlen);
	case API_R_EVENTS:
		if (!ops->events)
			break;
		return ops->events(ops->ctx, out, err, errlen);
	case API_R_WAKE:
	case API_R_CONSOLE_PASSWD:
		if (m->route == API_R_WAKE ? !ops->wake : !ops->console_passwd)
			break;
		rc = parse_body(bodytext, len, false, &body, err, errlen);
		if (rc)
			return rc;
		rc = m->route == API_R_WAKE ? ops->wake(ops->ctx, body, out, err, errlen) :
		     ops->console_passwd(ops->ctx, body, out, err, errlen);
		json_decref(body);
		return rc;
	case API_R_CLIENT_WAKE:
		if (!ops->wake)
			break;
		body = json_pack("{s:[s]}", "clients", m->id);
		if (!body)
			return -ENOMEM;
		rc = ops->wake(ops->ctx, body, out, err, errlen);
		json_decref(body);
		return rc;
	case API_R_NONE:
		snprintf(err, errlen, "no such route");
		return -ENOENT;
	}
	snprintf(err, errlen, "not implemented by this daemon");
	return -ENOSYS;
}

