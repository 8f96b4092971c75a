/*
 * ops_clients.c - the daemon's side of the admin API (struct control_ops): client
 * and session listings (each client with its disks), add, remove, set,
 * session kill, status - as JSON.  Reset and extra disks: ops_disks.c.
 */
#include "admin/ops.h"
#include "lab/records.h"
#include "lab/xdisk.h"
#include "storage/cache.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/version.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A client as the API shows it (new reference).  Registry lock held. */
static json_t *client_json(struct registry *reg, const struct client *c)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:i, s:I, s:s}",
			 "name", c->name[0] ? c->name : c->initiator, "initiator", c->initiator,
			 "image", c->disk.img->name, "target", c->disk.img->target,
			 "used_bytes", (json_int_t)disk_used_bytes(&c->disk),
			 "quota_bytes", (json_int_t)c->disk.quota,
			 "online", c->disk.sessions > 0, "sessions", (int)c->disk.sessions,
			 "last_login", (json_int_t)c->last_login,
			 "origin", c->origin == ORIGIN_CONFIG ? "config" : c->origin == ORIGIN_API ? "api" : "auto");
	json_object_set_new(o, "version", json_integer((json_int_t)c->disk.version));
	json_object_set_new(o, "policy", json_string(rules_policy_name(c->policy)));
	/* its disks, LUN 0 (this boot disk) first, then its extra disks */
	json_object_set_new(o, "disks", client_disks_json(reg, c));
	json_object_set_new(o, "mac", c->mac[0] ? json_string(c->mac) : json_null());
	json_object_set_new(o, "uuid", c->uuid[0] ? json_string(c->uuid) : json_null());
	json_object_set_new(o, "boot_uuid", c->boot_uuid[0] ? json_string(c->boot_uuid) : json_null());
	if (c->policy == POLICY_SCHEDULED) {
		char at[8];
		snprintf(at, sizeof(at), "%02d:%02d", c->reset_at / 60 % 24, c->reset_at % 60);
		json_object_set_new(o, "reset_at", json_string(at));
	}
	json_object_set_new(o, "reset_due", json_boolean(c->reset_due));
	json_object_set_new(o, "ip", client_allow_json(c));
	if (c->last_addr4) {
		/* where it last logged in or booted from (IPv4 only, as kept) */
		struct in_addr a = { .s_addr = htonl(c->last_addr4) };
		char t[INET_ADDRSTRLEN];

		json_object_set_new(o, "address", json_string(inet_ntop(AF_INET, &a, t, sizeof(t))));
	} else {
		json_object_set_new(o, "address", json_null());
	}
	{
		const char *what = NULL;
		int err = disk_error(&c->disk, &what);
		char e[160];

		snprintf(e, sizeof(e), "%s failed: %s; writes refused until its sessions end "
			 "(or a reset)", what ? what : "I/O", strerror(-err));
		json_object_set_new(o, "overlay_error", err ? json_string(e) : json_null());
	}
	json_object_set_new(o, "chap", json_string(!c->chap.user[0] ? "none" :
						    c->chap.muser[0] ? "mutual" : "one-way"));
	json_object_set_new(o, "last_boot", json_integer((json_int_t)c->last_boot));
	{
		/* boots and how long the last took (util/iostats.h), null until one ended */
		struct boot_snap b;

		boot_poll((struct boot_track *)&c->boot, iostats_now_ns(), &b);
		json_object_set_new(o, "boots", json_integer((json_int_t)b.boots));
		json_object_set_new(o, "last_boot_seconds", b.last_ms < 0 ? json_null() :
				    json_real((double)b.last_ms / 1e3));
	}
	json_object_set_new(o, "maintenance", json_boolean(c->disk.img->draft &&
		strcasecmp(c->disk.img->draft->disk.initiator, c->initiator) == 0));
	{
		/* What its logins see while it maintains a draft: the draft, on
		 * draft_on; "version" stays its own disk's, kept aside. */
		struct image *m = maintained_image(reg, c);
		json_object_set_new(o, "maintains", m ? json_pack("{s:s, s:i}", "image", m->name,
					"draft_on", (int)m->draft_base) : json_null());
	}
	return o;
}

static int op_clients_list(void *ctx, json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	json_t *arr = json_array();

	(void)err; (void)errlen;
	pthread_mutex_lock(&d->reg->lock);
	for (struct client *c = d->reg->clients; c; c = c->next)
		json_array_append_new(arr, client_json(d->reg, c));
	pthread_mutex_unlock(&d->reg->lock);
	*out = json_pack("{s:o}", "clients", arr);
	return 0;
}

static int op_client_show(void *ctx, const char *id, json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	struct client *c;
	int rc = 0;

	pthread_mutex_lock(&d->reg->lock);
	c = registry_find(d->reg, id);
	if (c) {
		*out = client_json(d->reg, c);
		json_object_set_new(*out, "overlay_dir", json_string(c->disk.dir));
	} else {
		snprintf(err, errlen, "no client %s", id);
		rc = -ENOENT;
	}
	pthread_mutex_unlock(&d->reg->lock);
	return rc;
}

/*
 * Optional string / size fields of a request body.  *present tells whether
 * the key was there; a value of the wrong type is -EINVAL with msg.
 */
int body_string(json_t *body, const char *key, const char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(body, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "\"%s\" must be a string", key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

/* An optional size field of a request body, in bytes: *present tells
 * whether the key was there; a value that is not a whole number >= 0 is
 * -EINVAL with a message in err. */
static int body_size(json_t *body, const char *key, bool *present, uint64_t *out, char *err,
		     size_t errlen)
{
	json_t *v = json_object_get(body, key);

	*present = v != NULL;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(err, errlen, "\"%s\" must be a number of bytes (0 = none)", key);
		return -EINVAL;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* A client's quota: "quota", a SIZE string as the options and the file
 * write it ("20GiB", parse_size), or the number "quota_bytes"; not both. */
static int body_quota(json_t *body, bool *present, uint64_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(body, "quota");
	char why[200];

	if (!v)
		return body_size(body, "quota_bytes", present, out, err, errlen);
	*present = true;
	if (json_object_get(body, "quota_bytes")) {
		snprintf(err, errlen, "give \"quota\" or \"quota_bytes\", not both");
		return -EINVAL;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "\"quota\" must be a size string such as \"20GiB\" "
			 "(\"0\" = none)");
		return -EINVAL;
	}
	if (parse_size(json_string_value(v), out, why, sizeof(why))) {
		snprintf(err, errlen, "\"quota\": %s", why);
		return -EINVAL;
	}
	return 0;
}

/* The values of a client add/set that the options and the configuration
 * file also take, checked by the same parsers (util/parse.h) and said
 * the same way: "\"key\": what is wrong".  Absent ones are fine; an
 * empty name clears it (client set).  An image is looked up by name (an
 * image added by an older version may have a name the rule now refuses). */
static int check_client_values(const char *ini, const char *name,
			       const struct client_boot_fields *bf, char *err, size_t errlen)
{
	char why[300];
	int m;

	if (ini && parse_iqn(ini, why, sizeof(why))) {
		snprintf(err, errlen, "\"initiator\": %s", why);
		return -EINVAL;
	}
	if (name && name[0] && parse_name(name, "client", why, sizeof(why))) {
		snprintf(err, errlen, "\"name\": %s", why);
		return -EINVAL;
	}
	if (bf->reset_at && parse_time_of_day(bf->reset_at, &m, why, sizeof(why))) {
		snprintf(err, errlen, "\"reset_at\": %s", why);
		return -EINVAL;
	}
	return 0;
}

int client_answer(struct daemon_ctx *d, const char *id, json_t **out)
{
	struct client *c;

	pthread_mutex_lock(&d->reg->lock);
	c = registry_find(d->reg, id);
	*out = c ? client_json(d->reg, c) : json_pack("{s:s}", "id", id);
	pthread_mutex_unlock(&d->reg->lock);
	return 0;
}

/* mac, uuid, policy, reset_at, ip, chap_* of a client add/set body. */
static int boot_body(json_t *body, struct client_boot_fields *bf, char *err, size_t errlen)
{
	int rc;

	if ((rc = body_string(body, "mac", &bf->mac, err, errlen)) ||
	    (rc = body_string(body, "uuid", &bf->uuid, err, errlen)) ||
	    (rc = body_string(body, "policy", &bf->policy, err, errlen)) ||
	    (rc = body_string(body, "reset_at", &bf->reset_at, err, errlen)) ||
	    (rc = body_string(body, "ip", &bf->ip, err, errlen)) ||
	    (rc = body_string(body, "chap_user", &bf->chap_user, err, errlen)) ||
	    (rc = body_string(body, "chap_secret", &bf->chap_secret, err, errlen)) ||
	    (rc = body_string(body, "mutual_user", &bf->mutual_user, err, errlen)) ||
	    (rc = body_string(body, "mutual_secret", &bf->mutual_secret, err, errlen)))
		return rc;
	return 0;
}

static int op_client_add(void *ctx, json_t *body, json_t **out, char *err, size_t errlen)
{
	struct client_boot_fields bf = { 0 };
	struct daemon_ctx *d = ctx;
	const char *ini, *name, *image;
	uint64_t quota = 0;
	bool has_quota;
	int rc;

	if ((rc = body_string(body, "initiator", &ini, err, errlen)) ||
	    (rc = body_string(body, "name", &name, err, errlen)) ||
	    (rc = body_string(body, "image", &image, err, errlen)) ||
	    (rc = body_quota(body, &has_quota, &quota, err, errlen)))
		return rc;
	if (!ini) {
		snprintf(err, errlen, "\"initiator\" is required");
		return -EINVAL;
	}
	if ((rc = boot_body(body, &bf, err, errlen)) ||
	    (rc = check_client_values(ini, name, &bf, err, errlen)))
		return rc;
	rc = CLUSTER_CHANGE(d->reg, registry_add(d->reg, name, ini, image, &bf, quota, has_quota, err, errlen), err, errlen);
	return rc ? rc : client_answer(d, ini, out);
}

static int op_client_remove(void *ctx, const char *id, bool force, json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	int rc = CLUSTER_CHANGE(d->reg, registry_remove(d->reg, id, force, err, errlen), err, errlen);

	if (rc)
		return rc;
	*out = json_pack("{s:s}", "removed", id);
	return 0;
}

static int op_client_set(void *ctx, const char *id, json_t *body, json_t **out, char *err, size_t errlen)
{
	struct client_boot_fields bf = { 0 };
	struct daemon_ctx *d = ctx;
	const char *name, *image;
	uint64_t quota = 0;
	bool has_quota, force = json_is_true(json_object_get(body, "force"));
	json_t *f = json_object_get(body, "force");
	char newid[ISCSI_NAME_MAX];
	int rc;

	if (f && !json_is_boolean(f)) {
		snprintf(err, errlen, "\"force\" must be true or false");
		return -EINVAL;
	}
	if ((rc = body_string(body, "name", &name, err, errlen)) ||
	    (rc = body_string(body, "image", &image, err, errlen)) ||
	    (rc = body_quota(body, &has_quota, &quota, err, errlen)))
		return rc;
	/* Answer with the client as it is now, found by its initiator. */
	pthread_mutex_lock(&d->reg->lock);
	{
		struct client *c = registry_find(d->reg, id);
		snprintf(newid, sizeof(newid), "%s", c ? c->initiator : id);
	}
	pthread_mutex_unlock(&d->reg->lock);
	if ((rc = boot_body(body, &bf, err, errlen)) ||
	    (rc = check_client_values(NULL, name, &bf, err, errlen)))
		return rc;
	rc = CLUSTER_CHANGE(d->reg, registry_set(d->reg, id, name, image, &bf, has_quota, quota, force, err, errlen), err, errlen);
	return rc ? rc : client_answer(d, newid, out);
}

struct sess_acc {
	json_t *arr;
	unsigned normal, discovery;
};

static void add_session(void *ctx, const struct iscsi_session_info *si)
{
	struct sess_acc *a = ctx;

	if (si->discovery)
		a->discovery++;
	else
		a->normal++;
	if (a->arr)
		json_array_append_new(a->arr,
			json_pack("{s:i, s:s, s:s, s:s, s:s, s:I}", "tsih", (int)si->tsih,
				  "initiator", si->initiator, "target", si->target, "peer", si->peer,
				  "type", si->discovery ? "discovery" : "normal", "since", (json_int_t)si->since));
}

static int op_sessions_list(void *ctx, json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	struct sess_acc a = { .arr = json_array() };

	(void)err; (void)errlen;
	iscsi_session_foreach(d->srv, add_session, &a);
	*out = json_pack("{s:o}", "sessions", a.arr);
	return 0;
}

static int op_session_kill(void *ctx, unsigned tsih, json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;

	if (iscsi_session_kill(d->srv, tsih)) {
		snprintf(err, errlen, "no session with TSIH %u", tsih);
		return -ENOENT;
	}
	*out = json_pack("{s:i}", "killed", (int)tsih);
	return 0;
}

/* The shared read cache's counters (storage/cache.h), or null when
 * there is none. */
static json_t *rcache_json(struct rcache *rc)
{
	struct rcache_stats s;

	if (!rc)
		return json_null();
	rcache_get_stats(rc, &s);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "capacity_bytes", (json_int_t)s.capacity, "chunk_bytes", (json_int_t)s.chunk,
			 "bytes", (json_int_t)s.bytes, "chunks", (json_int_t)s.chunks,
			 "hits", (json_int_t)s.hits, "waits", (json_int_t)s.waits,
			 "misses", (json_int_t)s.misses, "inner_reads", (json_int_t)s.inner_reads,
			 "inner_bytes", (json_int_t)s.inner_bytes, "errors", (json_int_t)s.errors,
			 "evictions", (json_int_t)s.evictions);
}

static int op_status(void *ctx, json_t **out, char *err, size_t errlen)
{
	struct daemon_ctx *d = ctx;
	struct sess_acc a = { 0 };
	unsigned nclients = 0, online = 0;
	json_t *targets = json_array();

	(void)err; (void)errlen;
	iscsi_session_foreach(d->srv, add_session, &a);
	pthread_mutex_lock(&d->reg->lock);
	for (struct client *c = d->reg->clients; c; c = c->next) {
		nclients++;
		online += c->disk.sessions > 0;
	}
	for (unsigned i = 0; i < d->reg->nimages; i++) {
		const struct image *img = d->reg->images[i];
		json_array_append_new(targets, json_pack("{s:s, s:s, s:s, s:I, s:i, s:b}", "name", img->target,
							  "image", img->name, "path", img->path,
							  "size_bytes", (json_int_t)img->be->size,
							  "current_version", (int)img->current,
							  "draft", img->draft != NULL));
	}
	pthread_mutex_unlock(&d->reg->lock);
	*out = json_pack("{s:s, s:I, s:o, s:i, s:i, s:i, s:i, s:s}", "version", PRISTINE_VERSION,
			 "uptime_s", (json_int_t)(time(NULL) - d->reg->started), "targets", targets,
			 "clients", (int)nclients, "clients_online", (int)online,
			 "sessions", (int)a.normal, "discovery_sessions", (int)a.discovery,
			 "state_dir", d->reg->state);
	json_object_set_new(*out, "iscsi_port", json_integer((json_int_t)d->reg->iscsi_port));
	if (d->boot_listen) {
		unsigned port = 0;

		parse_portal(d->boot_listen, &port, NULL, 0);   /* checked when read */
		json_object_set_new(*out, "boot", json_pack("{s:i, s:[s]}", "port", (int)port,
			"listen", d->boot_listen));
	} else {
		json_object_set_new(*out, "boot", json_null());
	}
	json_object_set_new(*out, "rbd_cache", rcache_json(d->rcache));
	return 0;
}

void daemon_ops_init(struct daemon_ctx *d, struct control_ops *ops)
{
	*ops = (struct control_ops){
		.status = op_status, .clients_list = op_clients_list, .client_show = op_client_show,
		.client_add = op_client_add,
		.client_remove = op_client_remove, .client_set = op_client_set,
		.sessions_list = op_sessions_list,
		.session_kill = op_session_kill, .ctx = d,
	};
	wake_ops_init(ops);
	disk_ops_init(ops);
	image_ops_init(ops);
	cluster_ops_init(ops);
	events_ops_init(ops);
	stats_ops_init(ops);
}
