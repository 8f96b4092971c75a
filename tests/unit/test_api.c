/*
 * test_api.c - unit tests of the admin API server (src/admin/api.c,
 * api_route.c): a live server on a temporary Unix socket with fake ops,
 * driven by raw HTTP/1.1 over AF_UNIX (the unit link has no libcurl).
 * Covers every route (client add/remove/set included: bodies that are not
 * objects refused before the op, the op's verdicts passed through),
 * error mapping, path decoding, the body cap, a flood of silent
 * connections, and the socket file's life cycle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin/api_route.h"
#include "admin/api.h"
#include "util/log.h"

/* ---- fake daemon ---------------------------------------------------- */

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static char fake_last_id[512];
static int fake_status_rc;		/* injected error for ops->status */
static char fake_status_msg[64];
static json_t *fake_last_body;		/* copy of the body the last add/set op got */
static int fake_calls;			/* add/remove/set op calls so far */

static void fake_record(const char *id)
{
	pthread_mutex_lock(&fake_lock);
	snprintf(fake_last_id, sizeof(fake_last_id), "%s", id);
	pthread_mutex_unlock(&fake_lock);
}

/* Record an add/remove/set call: its id (may be "") and a copy of its body. */
static void fake_record_body(const char *id, const json_t *body)
{
	fake_record(id);
	pthread_mutex_lock(&fake_lock);
	json_decref(fake_last_body);
	fake_last_body = body ? json_deep_copy(body) : NULL;
	fake_calls++;
	pthread_mutex_unlock(&fake_lock);
}

static int fake_ncalls(void)
{
	int n;

	pthread_mutex_lock(&fake_lock);
	n = fake_calls;
	pthread_mutex_unlock(&fake_lock);
	return n;
}

/* Whether the last add/set op got a body equal to the JSON text want. */
static bool fake_body_is(const char *want)
{
	json_t *w = json_loads(want, 0, NULL);
	bool eq;

	assert_non_null(w);
	pthread_mutex_lock(&fake_lock);
	eq = fake_last_body && json_equal(fake_last_body, w);
	pthread_mutex_unlock(&fake_lock);
	json_decref(w);
	return eq;
}

/* A copy of the n bytes of src a fake op wrote, taken under the lock: copy. */
static const char *fake_copy(char *copy, const char *src, size_t n)
{
	pthread_mutex_lock(&fake_lock);
	memcpy(copy, src, n);
	pthread_mutex_unlock(&fake_lock);
	return copy;
}

static const char *fake_last(void)
{
	static char copy[512];

	return fake_copy(copy, fake_last_id, sizeof(copy));
}

struct fake_client { const char *name, *iqn; bool online; };
static const struct fake_client fake_clients[] = {
	{ "pc1", "iqn.2024-01.test:pc1", true },
	{ "pc2", "iqn.2024-01.test:pc2", false },
};

static const struct fake_client *fake_find(const char *id)
{
	for (size_t i = 0; i < sizeof(fake_clients) / sizeof(fake_clients[0]); i++)
		if (!strcmp(id, fake_clients[i].name) || !strcmp(id, fake_clients[i].iqn))
			return &fake_clients[i];
	return NULL;
}

static json_t *fake_client_json(const struct fake_client *c)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:b, s:i, s:s}", "name", c->name,
			 "initiator", c->iqn, "image", "win10", "used_bytes", (json_int_t)1288490189,
			 "quota_bytes", (json_int_t)0, "online", c->online, "sessions", c->online,
			 "policy", "persistent");
}

static int f_status(void *ctx, json_t **out, char *err, size_t errlen)
{
	if (fake_status_rc) {
		snprintf(err, errlen, "%s", fake_status_msg);
		return fake_status_rc;
	}
	*out = json_pack("{s:s, s:i, s:[s], s:i, s:i}", "version", "test", "uptime_s", 5,
			 "targets", "iqn.2024-01.test:disk", "clients", 2, "sessions", 1);
	return 0;
}

static int f_clients(void *ctx, json_t **out, char *err, size_t errlen)
{
	*out = json_pack("{s:[o,o]}", "clients", fake_client_json(&fake_clients[0]),
			 fake_client_json(&fake_clients[1]));
	return 0;
}

static int f_show(void *ctx, const char *id, json_t **out, char *err, size_t errlen)
{
	const struct fake_client *c;

	fake_record(id);
	c = fake_find(id);
	if (!c) {
		snprintf(err, errlen, "no client '%s'", id);
		return -ENOENT;
	}
	*out = fake_client_json(c);
	return 0;
}

static char fake_last_disk[64];		/* the disk the last reset got, "(all)" for NULL */

static int f_reset(void *ctx, const char *id, bool force, const char *disk, json_t **out, char *err,
		   size_t errlen)
{
	const struct fake_client *c;

	fake_record(id);
	pthread_mutex_lock(&fake_lock);
	snprintf(fake_last_disk, sizeof(fake_last_disk), "%s", disk ? disk : "(all)");
	pthread_mutex_unlock(&fake_lock);
	c = fake_find(id);
	if (!c) {
		snprintf(err, errlen, "no client '%s'", id);
		return -ENOENT;
	}
	if (c->online && !force) {
		snprintf(err, errlen, "client %s is online; use --force", c->name);
		return -EBUSY;
	}
	*out = json_pack("{s:s, s:b}", "reset", c->name, "forced", force);
	return 0;
}

/*
 * client_add: the fake validates like the daemon would, so the API
 * layer's passthrough of -EINVAL and -EEXIST can be seen.
 */
static int f_add(void *ctx, json_t *body, json_t **out, char *err, size_t errlen)
{
	const char *ini = json_string_value(json_object_get(body, "initiator"));
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *image = json_string_value(json_object_get(body, "image"));
	json_t *q = json_object_get(body, "quota_bytes");

	fake_record_body("", body);
	if (!ini) {
		snprintf(err, errlen, "\"initiator\" is required");
		return -EINVAL;
	}
	if (fake_find(ini) || (name && fake_find(name))) {
		snprintf(err, errlen, "client %s already exists", ini);
		return -EEXIST;
	}
	if (image && strcmp(image, "win10")) {
		snprintf(err, errlen, "no image '%s'", image);
		return -EINVAL;
	}
	*out = json_pack("{s:s, s:s, s:s, s:I, s:I, s:b, s:i, s:s}", "name", name ? name : "",
			 "initiator", ini, "image", "win10", "used_bytes", (json_int_t)0,
			 "quota_bytes", q ? json_integer_value(q) : (json_int_t)0, "online", 0,
			 "sessions", 0, "policy", "persistent");
	return 0;
}

static int f_remove(void *ctx, const char *id, bool force, json_t **out, char *err, size_t errlen)
{
	const struct fake_client *c;

	fake_record_body(id, NULL);
	c = fake_find(id);
	if (!c) {
		snprintf(err, errlen, "no client '%s'", id);
		return -ENOENT;
	}
	if (c->online && !force) {
		snprintf(err, errlen, "client %s is online; use --force", c->name);
		return -EBUSY;
	}
	*out = json_pack("{s:s}", "removed", id);
	return 0;
}

static int f_set(void *ctx, const char *id, json_t *body, json_t **out, char *err, size_t errlen)
{
	const struct fake_client *c;
	json_t *q = json_object_get(body, "quota_bytes");

	fake_record_body(id, body);
	c = fake_find(id);
	if (!c) {
		snprintf(err, errlen, "no client '%s'", id);
		return -ENOENT;
	}
	if (q && (!json_is_integer(q) || json_integer_value(q) < 0)) {
		snprintf(err, errlen, "\"quota_bytes\" must be a number of bytes (0 = none)");
		return -EINVAL;
	}
	if (c->online && json_object_get(body, "image") &&
	    !json_is_true(json_object_get(body, "force"))) {
		snprintf(err, errlen, "client %s is online; use --force", c->name);
		return -EBUSY;
	}
	*out = fake_client_json(c);
	if (q)
		json_object_set(*out, "quota_bytes", q);
	return 0;
}

static int f_sessions(void *ctx, json_t **out, char *err, size_t errlen)
{
	*out = json_pack("{s:[{s:i, s:s, s:s, s:s, s:s, s:i}]}", "sessions", "tsih", 7,
			 "initiator", "iqn.2024-01.test:pc1", "target", "iqn.2024-01.test:disk",
			 "peer", "127.0.0.1:40000", "type", "normal", "since", 1700000000);
	return 0;
}

static int f_kill(void *ctx, unsigned tsih, json_t **out, char *err, size_t errlen)
{
	if (tsih != 7) {
		snprintf(err, errlen, "no session %u", tsih);
		return -ENOENT;
	}
	*out = json_pack("{s:i}", "killed", 7);
	return 0;
}

/*
 * The extra disk ops (lab/xdisk.h), validating like the lab would: the
 * boot image win10 is refused, "games" is already attached, anything
 * but "games"/"tools" is no image.  A remove records its image as the
 * body {"image": ...}.
 */
static int fake_disk_add(const char *id, bool group, json_t *body, json_t **out, char *err,
			 size_t errlen)
{
	const char *img = json_string_value(json_object_get(body, "image"));

	fake_record_body(id, body);
	if (group ? strcmp(id, "win10") != 0 : !fake_find(id)) {
		snprintf(err, errlen, "no %s %s", group ? "image" : "client", id);
		return -ENOENT;
	}
	if (!strcmp(img, "win10")) {
		snprintf(err, errlen, "win10 is the boot image of its PCs, not an extra disk");
		return -EINVAL;
	}
	if (!strcmp(img, "games")) {
		snprintf(err, errlen, "games is already a disk of %s", id);
		return -EEXIST;
	}
	if (strcmp(img, "tools")) {
		snprintf(err, errlen, "no image %s", img);
		return -ENOENT;
	}
	*out = json_pack("{s:s, s:[{s:i, s:s}]}", "name", id, "disks", "lun", 1, "image", img);
	return 0;
}

static int fake_disk_remove(const char *id, bool group, const char *image, json_t **out,
			    char *err, size_t errlen)
{
	json_t *b = json_pack("{s:s}", "image", image);

	fake_record_body(id, b);
	json_decref(b);
	if (group ? strcmp(id, "win10") != 0 : !fake_find(id)) {
		snprintf(err, errlen, "no %s %s", group ? "image" : "client", id);
		return -ENOENT;
	}
	if (strcmp(image, "games")) {
		snprintf(err, errlen, "%s is not a disk of %s", image, id);
		return -ENOENT;
	}
	*out = json_pack("{s:s, s:[]}", "name", id, "disks");
	return 0;
}

static int f_disk_add(void *ctx, const char *id, json_t *body, json_t **out, char *err,
		      size_t errlen)
{
	return fake_disk_add(id, false, body, out, err, errlen);
}

static int f_disk_remove(void *ctx, const char *id, const char *image, json_t **out, char *err,
			 size_t errlen)
{
	return fake_disk_remove(id, false, image, out, err, errlen);
}

static int f_img_disk_add(void *ctx, const char *name, json_t *body, json_t **out, char *err,
			  size_t errlen)
{
	return fake_disk_add(name, true, body, out, err, errlen);
}

static int f_img_disk_remove(void *ctx, const char *name, const char *image, json_t **out,
			     char *err, size_t errlen)
{
	return fake_disk_remove(name, true, image, out, err, errlen);
}

/* image actions: only prefetch (warm boots), answered as the daemon
 * does - API_ACCEPTED (202) with the version, or 409 when its set is
 * empty (version 9 here). */
static int f_image_action(void *ctx, const char *name, const char *action, json_t *body,
			  json_t **out, char *err, size_t errlen)
{
	json_int_t v = json_integer_value(json_object_get(body, "version"));

	fake_record_body(name, body);
	if (strcmp(action, "prefetch")) {
		snprintf(err, errlen, "no image action %s", action);
		return -ENOENT;
	}
	if (v == 9) {
		snprintf(err, errlen, "v9 of %s has no boot set yet", name);
		return -EBUSY;
	}
	*out = json_pack("{s:s, s:I, s:{s:s}}", "image", name, "version", v ? v : (json_int_t)1,
			 "boot_set", "prefetch", "queued");
	return API_ACCEPTED;
}

static const struct control_ops fake_ops = {
	.status = f_status, .clients_list = f_clients, .client_show = f_show,
	.client_reset = f_reset, .client_add = f_add, .client_remove = f_remove,
	.client_set = f_set, .sessions_list = f_sessions, .session_kill = f_kill,
	.client_disk_add = f_disk_add, .client_disk_remove = f_disk_remove,
	.image_disk_add = f_img_disk_add, .image_disk_remove = f_img_disk_remove,
	.image_action = f_image_action,
};

/* ---- raw HTTP client ------------------------------------------------ */

static char tmp_dir[64];
static char sock_path[128];
static struct api *api;

struct resp {
	int status;		/* 0 when the server closed without a status line */
	char head[4096];	/* status line and headers */
	json_t *body;		/* parsed body, or NULL */
};

/* Connected socket to path with a 10 s receive timeout; -1 on failure. */
static int conn_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send len bytes (errors ignored: the server may close mid-way). */
static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* Read the answer to one request until EOF and parse it into *r. */
static void read_resp(int fd, struct resp *r)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1), *sep;
	ssize_t n;

	assert_non_null(buf);
	memset(r, 0, sizeof(*r));
	while (len < cap && (n = recv(fd, buf + len, cap - len, 0)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	sscanf(buf, "HTTP/1.1 %d", &r->status);
	sep = strstr(buf, "\r\n\r\n");
	if (sep) {
		size_t hl = (size_t)(sep - buf);

		if (hl >= sizeof(r->head))
			hl = sizeof(r->head) - 1;
		memcpy(r->head, buf, hl);
		r->body = json_loads(sep + 4, 0, NULL);
	}
	free(buf);
}

/* One request with an optional body on a fresh connection to sock. */
static void req_on(const char *sock, const char *method, const char *path, const char *body,
		   struct resp *r)
{
	char head[4096];
	int fd = conn_to(sock), hl;

	assert_true(fd >= 0);
	hl = snprintf(head, sizeof(head),
		      "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		      "Content-Length: %zu\r\n\r\n", method, path, body ? strlen(body) : 0);
	send_all(fd, head, (size_t)hl);
	if (body)
		send_all(fd, body, strlen(body));
	read_resp(fd, r);
	close(fd);
}

/* One request to the test server (fake_ops). */
static void req(const char *method, const char *path, const char *body, struct resp *r)
{
	req_on(sock_path, method, path, body, r);
}

static void resp_free(struct resp *r)
{
	json_decref(r->body);
	r->body = NULL;
}

/* Expect status and a JSON body; for errors, an "error" string. */
static void expect(const char *method, const char *path, const char *body, int status)
{
	struct resp r;

	req(method, path, body, &r);
	if (r.status != status)
		fail_msg("%s %s: status %d, wanted %d", method, path, r.status, status);
	assert_non_null(strcasestr(r.head, "Content-Type: application/json"));
	assert_true(json_is_object(r.body));
	if (status >= 400)
		assert_true(json_is_string(json_object_get(r.body, "error")));
	resp_free(&r);
}

static const char *err_of(const struct resp *r)
{
	return json_string_value(json_object_get(r->body, "error"));
}

static int group_setup(void **state)
{
	log_set_level(LOG_WARN);
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/test_api.XXXXXX");
	if (!mkdtemp(tmp_dir))
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/api.sock", tmp_dir);
	return api_start(sock_path, &fake_ops, &api);
}

static int group_teardown(void **state)
{
	char cmd[128];

	api_stop(api);
	json_decref(fake_last_body);
	fake_last_body = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_dir);
	return system(cmd);
}

/* ---- routes --------------------------------------------------------- */

static void test_status(void **state)
{
	struct resp r;

	req("GET", "/v1/status", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strcasestr(r.head, "Content-Type: application/json"));
	assert_string_equal(json_string_value(json_object_get(r.body, "version")), "test");
	resp_free(&r);
}

static void test_clients(void **state)
{
	struct resp r;

	req("GET", "/v1/clients", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.body, "clients")), 2);
	resp_free(&r);

	req("GET", "/v1/clients/pc2", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.body, "name")), "pc2");
	resp_free(&r);

	/* An IQN with its ':' percent-encoded reaches the op decoded. */
	req("GET", "/v1/clients/iqn.2024-01.test%3Apc1", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(fake_last(), "iqn.2024-01.test:pc1");
	resp_free(&r);
	expect("GET", "/v1/clients/iqn.2024-01.test:pc1", NULL, 200);

	req("GET", "/v1/clients/nobody", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(err_of(&r), "no client 'nobody'");
	resp_free(&r);
}

static void test_reset(void **state)
{
	struct resp r;

	req("POST", "/v1/clients/pc1/reset", NULL, &r);
	assert_int_equal(r.status, 409);
	assert_non_null(strstr(err_of(&r), "--force"));
	resp_free(&r);
	expect("POST", "/v1/clients/pc1/reset", "{\"force\": false}", 409);

	req("POST", "/v1/clients/pc1/reset", "{\"force\": true}", &r);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(r.body, "forced")));
	resp_free(&r);

	expect("POST", "/v1/clients/pc2/reset", "{}", 200);
	expect("POST", "/v1/clients/pc2/reset", "{\"force\": false, \"later\": 1}", 200);
	expect("POST", "/v1/clients/ghost/reset", "{}", 404);
	/* Bad bodies. */
	expect("POST", "/v1/clients/pc2/reset", "{", 400);
	expect("POST", "/v1/clients/pc2/reset", "[true]", 400);
	expect("POST", "/v1/clients/pc2/reset", "{\"force\": \"yes\"}", 400);
	expect("POST", "/v1/clients/pc2/reset", "{\"force\": true, \"force\": true}", 400);
	expect("POST", "/v1/clients/pc2/reset", "{} trailing", 400);
}

/* The disk the last reset got. */
static const char *fake_disk(void)
{
	static char copy[sizeof(fake_last_disk)];

	return fake_copy(copy, fake_last_disk, sizeof(copy));
}

/* Reset of one disk (issue 17): "disk" reaches the op, absent is all. */
static void test_reset_disk(void **state)
{
	struct resp r;

	expect("POST", "/v1/clients/pc2/reset", "{\"disk\": \"games\"}", 200);
	assert_string_equal(fake_disk(), "games");
	expect("POST", "/v1/clients/pc1/reset", "{\"force\": true, \"disk\": \"data disk\"}", 200);
	assert_string_equal(fake_disk(), "data disk");
	expect("POST", "/v1/clients/pc2/reset", "{\"force\": false}", 200);
	assert_string_equal(fake_disk(), "(all)");
	expect("POST", "/v1/clients/pc2/reset", "{\"disk\": \"games\"}", 200);
	expect("POST", "/v1/clients/pc2/reset", NULL, 200);
	assert_string_equal(fake_disk(), "(all)");
	/* online without force: the op's refusal passes through */
	expect("POST", "/v1/clients/pc1/reset", "{\"disk\": \"games\"}", 409);
	/* a disk that is not a name: 400 before the op */
	expect("POST", "/v1/clients/pc2/reset", "{\"disk\": \"tools\"}", 200);
	for (size_t i = 0; i < 3; i++) {
		static const char *const bad[] = { "{\"disk\": 1}", "{\"disk\": \"\"}",
						   "{\"disk\": null}" };

		req("POST", "/v1/clients/pc2/reset", bad[i], &r);
		assert_int_equal(r.status, 400);
		assert_non_null(strstr(err_of(&r), "\"disk\" must be"));
		resp_free(&r);
		assert_string_equal(fake_disk(), "tools");	/* the op was not called */
	}
}

/* POST /v1/{clients/{id},images/{name}}/disks: bodies checked for form
 * before the op (which is not called), the op's verdicts passed through. */
static void test_disk_add(void **state)
{
	static const char *const bases[] = { "/v1/clients/pc2/disks", "/v1/images/win10/disks" };
	static const struct { const char *body, *msg; } bad[] = {
		{ NULL, "body must be a JSON object" },
		{ "[]", "body must be a JSON object" },
		{ "{}", "\"image\" is required" },
		{ "{\"image\": \"\"}", "\"image\" is required" },
		{ "{\"image\": 7}", "\"image\" is required" },
		{ "{\"image\": \"tools\", \"policy\": true}", "\"policy\" must be overlay, "
		  "discard-on-boot or read-only" },
		{ "{\"image\": \"tools\", \"quota_bytes\": -1}", "\"quota_bytes\" must be" },
		{ "{\"image\": \"tools\", \"quota_bytes\": \"20G\"}", "\"quota_bytes\" must be" },
		{ "{\"image\": \"tools\", \"lun\": 3}", "unknown field \"lun\"" },
	};
	struct resp r;

	for (size_t b = 0; b < 2; b++) {
		const char *id = b ? "win10" : "pc2";
		int n;

		req("POST", bases[b], "{\"image\": \"tools\", \"policy\": \"read-only\", "
		    "\"quota_bytes\": 1024}", &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(
			json_object_get(r.body, "disks"), 0), "lun")), 1);
		resp_free(&r);
		assert_string_equal(fake_last(), id);
		assert_true(fake_body_is("{\"image\": \"tools\", \"policy\": \"read-only\", "
					 "\"quota_bytes\": 1024}"));
		expect("POST", bases[b], "{\"image\": \"tools\"}", 200);
		assert_true(fake_body_is("{\"image\": \"tools\"}"));
		n = fake_ncalls();
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			req("POST", bases[b], bad[i].body, &r);
			if (r.status != 400 || !err_of(&r) || !strstr(err_of(&r), bad[i].msg))
				fail_msg("POST %s %s: %d %s, wanted 400 %s", bases[b],
					 bad[i].body ? bad[i].body : "(none)", r.status,
					 err_of(&r) ? err_of(&r) : "-", bad[i].msg);
			resp_free(&r);
		}
		assert_int_equal(fake_ncalls(), n);
		/* the op's refusals */
		req("POST", bases[b], "{\"image\": \"win10\"}", &r);
		assert_int_equal(r.status, 400);
		assert_non_null(strstr(err_of(&r), "boot image"));
		resp_free(&r);
		req("POST", bases[b], "{\"image\": \"games\"}", &r);
		assert_int_equal(r.status, 409);
		assert_non_null(strstr(err_of(&r), "already"));
		resp_free(&r);
		expect("POST", bases[b], "{\"image\": \"nothing\"}", 404);
		expect("GET", bases[b], NULL, 405);
	}
	expect("POST", "/v1/clients/ghost/disks", "{\"image\": \"tools\"}", 404);
	expect("POST", "/v1/images/ghost/disks", "{\"image\": \"tools\"}", 404);
	/* an IQN as the id, percent-encoded */
	expect("POST", "/v1/clients/iqn.2024-01.test%3Apc1/disks", "{\"image\": \"tools\"}", 200);
	assert_string_equal(fake_last(), "iqn.2024-01.test:pc1");
}

/* POST .../disks/{image}/remove: both segments decoded, a body optional. */
static void test_disk_remove(void **state)
{
	struct resp r;

	expect("POST", "/v1/clients/pc1/disks/games/remove", NULL, 200);
	assert_string_equal(fake_last(), "pc1");
	assert_true(fake_body_is("{\"image\": \"games\"}"));
	expect("POST", "/v1/clients/iqn.2024-01.test%3Apc2/disks/ga%6Des/remove", "{}", 200);
	assert_string_equal(fake_last(), "iqn.2024-01.test:pc2");
	assert_true(fake_body_is("{\"image\": \"games\"}"));
	expect("POST", "/v1/images/win10/disks/games/remove", NULL, 200);
	assert_string_equal(fake_last(), "win10");
	/* an image name with an encoded '/' stays one segment */
	req("POST", "/v1/clients/pc1/disks/a%2Fb/remove", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(err_of(&r), "a/b is not a disk of pc1");
	resp_free(&r);
	expect("POST", "/v1/images/ghost/disks/games/remove", NULL, 404);
	expect("POST", "/v1/clients/pc1/disks/games/remove", "[1]", 400);
	expect("GET", "/v1/clients/pc1/disks/games/remove", NULL, 405);
	/* shapes that are no route */
	expect("POST", "/v1/clients/pc1/disks/games", NULL, 404);
	expect("POST", "/v1/clients/pc1/disks/games/delete", NULL, 404);
	expect("POST", "/v1/clients/pc1/disks/games/remove/x", NULL, 404);
	expect("POST", "/v1/clients/pc1/reset/games/remove", NULL, 404);
	expect("POST", "/v1/images/win10/disks/games", NULL, 404);
	expect("POST", "/v1/images/win10/commit/games/remove", NULL, 404);
	/* a bad escape in the image segment */
	req("POST", "/v1/clients/pc1/disks/a%00b/remove", NULL, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(err_of(&r), "image name"));
	resp_free(&r);
}

/* Bodies that are not one JSON object: 400 before the op is called. */
static const char *const not_objects[] = {
	"{", "[]", "[{\"initiator\": \"x\"}]", "\"x\"", "42", "null", "true",
	"{} trailing", "{}{}", "{\"initiator\": \"a\", \"initiator\": \"b\"}",
	"{\"name\": \"a\\u0000b\"}",
};

static void expect_not_object(const char *path)
{
	int before = fake_ncalls();

	for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++)
		expect("POST", path, not_objects[i], 400);
	assert_int_equal(fake_ncalls(), before);
}

static void test_client_add(void **state)
{
	const char *body = "{\"initiator\": \"iqn.2024-01.test:pc3\", \"name\": \"pc3\", "
			   "\"image\": \"win10\", \"quota_bytes\": 21474836480}";
	struct resp r;

	req("POST", "/v1/clients", body, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.body, "name")), "pc3");
	assert_int_equal(json_integer_value(json_object_get(r.body, "quota_bytes")), 21474836480LL);
	resp_free(&r);
	/* The body reaches the op as sent, fields the API does not know included. */
	assert_true(fake_body_is(body));
	expect("POST", "/v1/clients", "{\"initiator\": \"iqn.2024-01.test:pc4\", \"x\": [1]}", 200);
	assert_true(fake_body_is("{\"initiator\": \"iqn.2024-01.test:pc4\", \"x\": [1]}"));

	/* The op's verdicts pass through with their messages. */
	req("POST", "/v1/clients", "{\"initiator\": \"iqn.2024-01.test:pc1\"}", &r);
	assert_int_equal(r.status, 409);
	assert_string_equal(err_of(&r), "client iqn.2024-01.test:pc1 already exists");
	resp_free(&r);
	req("POST", "/v1/clients", "{}", &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_of(&r), "\"initiator\" is required");
	resp_free(&r);
	req("POST", "/v1/clients", "{\"initiator\": \"iqn.2024-01.test:pc5\", \"image\": \"nope\"}", &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_of(&r), "no image 'nope'");
	resp_free(&r);

	/* Not an object, or no body at all. */
	expect_not_object("/v1/clients");
	{
		int before = fake_ncalls();

		req("POST", "/v1/clients", NULL, &r);
		assert_int_equal(r.status, 400);
		assert_string_equal(err_of(&r), "body must be a JSON object");
		resp_free(&r);
		assert_int_equal(fake_ncalls(), before);
	}

	/* GET still lists; other methods learn both. */
	expect("GET", "/v1/clients", NULL, 200);
	req("DELETE", "/v1/clients", NULL, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.head, "Allow: GET, POST"));
	resp_free(&r);
	expect("PUT", "/v1/clients", "{}", 405);
	expect("POS", "/v1/clients", "{}", 405);
}

static void test_client_remove(void **state)
{
	struct resp r;

	/* Online: refused without force (no body, false), done with it. */
	req("POST", "/v1/clients/pc1/remove", NULL, &r);
	assert_int_equal(r.status, 409);
	assert_non_null(strstr(err_of(&r), "--force"));
	resp_free(&r);
	expect("POST", "/v1/clients/pc1/remove", "{\"force\": false}", 409);
	req("POST", "/v1/clients/pc1/remove", "{\"force\": true}", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.body, "removed")), "pc1");
	resp_free(&r);

	/* Offline: empty body or {} is enough; the id arrives decoded. */
	expect("POST", "/v1/clients/pc2/remove", NULL, 200);
	expect("POST", "/v1/clients/iqn.2024-01.test%3Apc2/remove", "{}", 200);
	assert_string_equal(fake_last(), "iqn.2024-01.test:pc2");
	expect("POST", "/v1/clients/pc2/remove", "{\"force\": false, \"later\": 1}", 200);

	req("POST", "/v1/clients/ghost/remove", "{}", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(err_of(&r), "no client 'ghost'");
	resp_free(&r);

	/* Bad bodies: not an object, or force not a boolean. */
	expect_not_object("/v1/clients/pc2/remove");
	{
		int before = fake_ncalls();

		expect("POST", "/v1/clients/pc2/remove", "{\"force\": \"yes\"}", 400);
		expect("POST", "/v1/clients/pc2/remove", "{\"force\": 1}", 400);
		expect("POST", "/v1/clients/pc2/remove", "{\"force\": null}", 400);
		assert_int_equal(fake_ncalls(), before);
	}

	req("GET", "/v1/clients/pc2/remove", NULL, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.head, "Allow: POST"));
	resp_free(&r);
	expect("DELETE", "/v1/clients/pc2/remove", NULL, 405);
	expect("POST", "/v1/clients/%0a/remove", "{}", 400);
}

static void test_client_set(void **state)
{
	const char *body = "{\"quota_bytes\": 32212254720}";
	struct resp r;

	req("POST", "/v1/clients/pc2/set", body, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.body, "name")), "pc2");
	assert_int_equal(json_integer_value(json_object_get(r.body, "quota_bytes")), 32212254720LL);
	resp_free(&r);
	assert_true(fake_body_is(body));
	assert_string_equal(fake_last(), "pc2");

	/* Every field, force included, reaches the op untouched. */
	body = "{\"name\": \"pc9\", \"image\": \"win10\", \"quota_bytes\": 0, \"force\": true}";
	expect("POST", "/v1/clients/iqn.2024-01.test%3Apc1/set", body, 200);
	assert_true(fake_body_is(body));
	assert_string_equal(fake_last(), "iqn.2024-01.test:pc1");

	/* The op's verdicts pass through. */
	req("POST", "/v1/clients/pc1/set", "{\"image\": \"win10\"}", &r);
	assert_int_equal(r.status, 409);
	assert_non_null(strstr(err_of(&r), "--force"));
	resp_free(&r);
	req("POST", "/v1/clients/ghost/set", "{\"quota_bytes\": 1}", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(err_of(&r), "no client 'ghost'");
	resp_free(&r);
	req("POST", "/v1/clients/pc2/set", "{\"quota_bytes\": -1}", &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(err_of(&r), "quota_bytes"));
	resp_free(&r);
	/* "force" of the wrong type is the op's business here: it reaches it. */
	expect("POST", "/v1/clients/pc2/set", "{\"force\": \"yes\"}", 200);
	assert_true(fake_body_is("{\"force\": \"yes\"}"));

	/* Not an object, or no body at all. */
	expect_not_object("/v1/clients/pc2/set");
	expect("POST", "/v1/clients/pc2/set", NULL, 400);
	expect("PUT", "/v1/clients/pc2/set", "{}", 405);
}

static void test_sessions(void **state)
{
	struct resp r;

	req("GET", "/v1/sessions", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.body, "sessions")), 1);
	resp_free(&r);

	expect("DELETE", "/v1/sessions/7", NULL, 200);
	expect("DELETE", "/v1/sessions/8", NULL, 404);
	expect("DELETE", "/v1/sessions/abc", NULL, 400);
	expect("DELETE", "/v1/sessions/0", NULL, 400);
	expect("DELETE", "/v1/sessions/65536", NULL, 400);
	expect("DELETE", "/v1/sessions/-1", NULL, 400);
	expect("DELETE", "/v1/sessions/00000000000000000007", NULL, 400);
}

static void test_unknown_routes(void **state)
{
	struct resp r;

	expect("GET", "/", NULL, 404);
	expect("GET", "/v1", NULL, 404);
	expect("GET", "/v2/status", NULL, 404);
	expect("GET", "/v1/nothing", NULL, 404);
	expect("GET", "/v1/clients/", NULL, 404);
	expect("GET", "/v1/clients//reset", NULL, 404);
	expect("GET", "/v1/clients/pc1/other", NULL, 404);
	expect("GET", "/v1/status/x", NULL, 404);
	expect("GET", "/v1/sessions/7/x", NULL, 404);
	expect("POST", "/v1/clients/pc1/Remove", "{}", 404);
	expect("POST", "/v1/clients/pc1/sets", "{}", 404);
	expect("POST", "/v1/clients/pc1/remove/x", "{}", 404);
	expect("POST", "/v1/clients//set", "{}", 404);
	expect("POST", "/v1/clients/", "{}", 404);

	req("POST", "/v1/status", "{}", &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.head, "Allow: GET"));
	resp_free(&r);
	req("GET", "/v1/clients/pc1/reset", NULL, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.head, "Allow: POST"));
	resp_free(&r);
	expect("DELETE", "/v1/clients", NULL, 405);
	expect("GET", "/v1/sessions/7", NULL, 405);
	expect("PUT", "/v1/clients/pc1", "{}", 405);
	/* HEAD answers carry no body. */
	req("HEAD", "/v1/status", NULL, &r);
	assert_int_equal(r.status, 405);
	resp_free(&r);
}

/* ---- ids ------------------------------------------------------------ */

static void test_id_decoding(void **state)
{
	char path[1024];
	struct resp r;
	int fd;

	/* Decoded exactly once. */
	expect("GET", "/v1/clients/%2541", NULL, 404);
	assert_string_equal(fake_last(), "%41");
	/* An encoded '/' is part of the id, not a new segment. */
	expect("GET", "/v1/clients/a%2Fb", NULL, 404);
	assert_string_equal(fake_last(), "a/b");
	expect("POST", "/v1/clients/a%2Freset/reset", "{}", 404);
	assert_string_equal(fake_last(), "a/reset");

	/* Control characters, NUL, bad escapes. */
	expect("GET", "/v1/clients/pc1%00x", NULL, 400);
	expect("GET", "/v1/clients/pc%0a1", NULL, 400);
	expect("GET", "/v1/clients/%1F", NULL, 400);
	expect("GET", "/v1/clients/%7f", NULL, 400);
	expect("POST", "/v1/clients/%0d/reset", "{}", 400);
	expect("GET", "/v1/clients/%zz", NULL, 400);
	expect("GET", "/v1/clients/pc1%4", NULL, 400);
	expect("GET", "/v1/clients/pc1%", NULL, 400);
	/* Invalid UTF-8 passes to the op; the error reply is still JSON. */
	expect("GET", "/v1/clients/%ff%fe", NULL, 404);

	/* A raw control byte in the request line: refused one way or another. */
	fd = conn_to(sock_path);
	assert_true(fd >= 0);
	{
		const char *q = "GET /v1/clients/a\x01" "b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

		send_all(fd, q, strlen(q));
	}
	read_resp(fd, &r);
	close(fd);
	assert_int_equal(r.status, 400);
	resp_free(&r);

	/* Length: 255 decoded bytes pass, 256 do not (raw or escaped). */
	strcpy(path, "/v1/clients/");
	memset(path + 12, 'a', 255);
	path[12 + 255] = '\0';
	expect("GET", path, NULL, 404);
	assert_int_equal(strlen(fake_last()), 255);
	strcat(path, "a");
	expect("GET", path, NULL, 400);
	strcpy(path, "/v1/clients/");
	for (int i = 0; i < 255; i++)
		strcat(path, "%41");
	expect("GET", path, NULL, 404);
	strcat(path, "%41");
	expect("GET", path, NULL, 400);
}

/* ---- error mapping -------------------------------------------------- */

static void status_error(int rc, const char *msg, int want, const char *want_msg)
{
	struct resp r;

	fake_status_rc = rc;
	snprintf(fake_status_msg, sizeof(fake_status_msg), "%s", msg);
	req("GET", "/v1/status", NULL, &r);
	fake_status_rc = 0;
	assert_int_equal(r.status, want);
	assert_string_equal(err_of(&r), want_msg);
	resp_free(&r);
}

static void test_error_mapping(void **state)
{
	status_error(-ENOENT, "gone", 404, "gone");
	status_error(-EINVAL, "bad", 400, "bad");
	status_error(-EBUSY, "busy", 409, "busy");
	status_error(-EEXIST, "exists", 409, "exists");
	status_error(-ENOSPC, "full", 507, "full");
	status_error(-EIO, "disk", 500, "disk");
	status_error(-EIO, "", 500, strerror(EIO));
	/* Text that is not UTF-8 still yields a JSON error. */
	status_error(-EIO, "bad \xff byte", 500, "bad ? byte");

	assert_int_equal(api_status_for(-EPERM), 500);
	assert_int_equal(api_status_for(-ENOSPC), 507);
}

static void test_missing_op(void **state)
{
	struct control_ops none = { 0 };
	char path[128];
	struct api *a;
	struct resp r;

	snprintf(path, sizeof(path), "%s/none.sock", tmp_dir);
	assert_int_equal(api_start(path, &none, &a), 0);
	{
		int fd = conn_to(path);
		const char *q = "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

		assert_true(fd >= 0);
		send_all(fd, q, strlen(q));
		read_resp(fd, &r);
		close(fd);
	}
	assert_int_equal(r.status, 501);
	resp_free(&r);
	/* The new client ops, with good bodies and with bad ones: 501 first. */
	{
		static const char *const reqs[][2] = {
			{ "/v1/clients", "{\"initiator\": \"iqn.2024-01.test:x\"}" },
			{ "/v1/clients", "[]" },
			{ "/v1/clients/pc1/remove", "{\"force\": true}" },
			{ "/v1/clients/pc1/remove", NULL },
			{ "/v1/clients/pc1/set", "{\"quota_bytes\": 1}" },
			{ "/v1/clients/pc1/set", "{" },
			{ "/v1/clients/pc1/reset", "{}" },
			{ "/v1/clients/pc1/disks", "{\"image\": \"tools\"}" },
			{ "/v1/clients/pc1/disks", "{}" },
			{ "/v1/clients/pc1/disks/tools/remove", NULL },
			{ "/v1/images/win10/disks", "{\"image\": \"tools\"}" },
			{ "/v1/images/win10/disks/tools/remove", "[" },
		};

		for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
			req_on(path, "POST", reqs[i][0], reqs[i][1], &r);
			if (r.status != 501)
				fail_msg("POST %s %s: status %d, wanted 501", reqs[i][0],
					 reqs[i][1] ? reqs[i][1] : "(no body)", r.status);
			assert_string_equal(err_of(&r), "not implemented by this daemon");
			resp_free(&r);
		}
	}
	api_stop(a);
}

/* ---- limits --------------------------------------------------------- */

static void test_body_cap(void **state)
{
	size_t big = 1 << 20;
	char *body = malloc(big + 1), head[256];
	struct resp r;
	int fd, hl;

	assert_non_null(body);
	/* A declared 1 MiB body: 413 up front (or the connection closed). */
	memset(body, ' ', big);
	body[big] = '\0';
	body[0] = '{';
	body[big - 1] = '}';
	fd = conn_to(sock_path);
	assert_true(fd >= 0);
	hl = snprintf(head, sizeof(head), "POST /v1/clients/pc2/reset HTTP/1.1\r\nHost: x\r\n"
		      "Content-Length: %zu\r\n\r\n", big);
	send_all(fd, head, (size_t)hl);
	send_all(fd, body, big);
	read_resp(fd, &r);
	close(fd);
	assert_true(r.status == 413 || r.status == 0);
	resp_free(&r);
	expect("GET", "/v1/status", NULL, 200);

	/* The same sent chunked: cut off once over the cap. */
	fd = conn_to(sock_path);
	assert_true(fd >= 0);
	hl = snprintf(head, sizeof(head), "POST /v1/clients/pc2/reset HTTP/1.1\r\nHost: x\r\n"
		      "Transfer-Encoding: chunked\r\n\r\n");
	send_all(fd, head, (size_t)hl);
	for (int i = 0; i < 64; i++) {
		hl = snprintf(head, sizeof(head), "%x\r\n", 16384);
		send_all(fd, head, (size_t)hl);
		send_all(fd, body, 16384);
		send_all(fd, "\r\n", 2);
	}
	send_all(fd, "0\r\n\r\n", 5);
	read_resp(fd, &r);
	close(fd);
	assert_true(r.status == 413 || r.status == 0);
	resp_free(&r);
	expect("GET", "/v1/status", NULL, 200);

	/* Just under the cap is accepted. */
	memset(body, ' ', 60000);
	memcpy(body, "{\"force\": true", 14);
	strcpy(body + 59990, "}");
	expect("POST", "/v1/clients/pc1/reset", body, 200);
	free(body);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_flood(void **state)
{
	enum { N = 200 };
	int fds[N];
	double t0;

	/* Silent connections, and some that stop mid-header. */
	for (int i = 0; i < N; i++) {
		fds[i] = conn_to(sock_path);
		assert_true(fds[i] >= 0);
		if (i % 4 == 0)
			send_all(fds[i], "GET /v1/sta", 11);
	}
	t0 = now_s();
	expect("GET", "/v1/status", NULL, 200);
	expect("GET", "/v1/clients", NULL, 200);
	if (now_s() - t0 > 3.0)
		fail_msg("a request behind %d idle connections took %.1f s", N, now_s() - t0);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	expect("GET", "/v1/status", NULL, 200);
}

/*
 * More silent connections than the server takes at once (256): the
 * excess waits in the backlog, and the idle ones time out (5 s), so a
 * real request still gets through, late but bounded.
 */
static void test_flood_over_limit(void **state)
{
	enum { N = 320 };
	int fds[N];
	double t0;

	for (int i = 0; i < N; i++) {
		fds[i] = conn_to(sock_path);
		assert_true(fds[i] >= 0);
	}
	t0 = now_s();
	expect("GET", "/v1/status", NULL, 200);
	if (now_s() - t0 > 12.0)
		fail_msg("a request behind %d idle connections took %.1f s", N, now_s() - t0);
	for (int i = 0; i < N; i++)
		close(fds[i]);
}

static void test_keepalive(void **state)
{
	const char *q = "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
			"GET /v1/clients HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	char buf[8192];
	size_t len = 0;
	ssize_t n;
	int fd = conn_to(sock_path);

	assert_true(fd >= 0);
	send_all(fd, q, strlen(q));
	while (len < sizeof(buf) - 1 && (n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	/* Two answers on one connection. */
	assert_non_null(strstr(buf, "\"version\""));
	assert_non_null(strstr(buf, "\"clients\""));
}

/* ---- the socket file ------------------------------------------------ */

static void test_socket_mode(void **state)
{
	struct stat st;

	assert_int_equal(lstat(sock_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_stale_socket(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[128];
	struct api *a, *b;
	struct stat st;
	int fd;

	/* A socket file nobody listens on any more. */
	snprintf(path, sizeof(path), "%s/stale.sock", tmp_dir);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(api_start(path, &fake_ops, &a), 0);
	fd = conn_to(path);
	assert_true(fd >= 0);
	close(fd);

	/* A live one is left to its owner. */
	assert_int_equal(api_start(path, &fake_ops, &b), -EADDRINUSE);
	fd = conn_to(path);
	assert_true(fd >= 0);
	close(fd);

	/* Stopping removes the file. */
	api_stop(a);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_not_a_socket(void **state)
{
	char path[128], buf[16] = "";
	struct api *a;
	int fd;

	snprintf(path, sizeof(path), "%s/precious", tmp_dir);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep me", 7), 7);
	close(fd);
	assert_int_equal(api_start(path, &fake_ops, &a), -EEXIST);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 7);
	close(fd);
	assert_string_equal(buf, "keep me");

	snprintf(path, sizeof(path), "%s/adir", tmp_dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(api_start(path, &fake_ops, &a), -EEXIST);
	rmdir(path);

	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(api_start(path, &fake_ops, &a), -ENAMETOOLONG);
}

/* ---- api_route.c directly ------------------------------------------ */

static void test_pct_decode(void **state)
{
	char out[8];

	assert_int_equal(api_pct_decode("a%41b", 5, out, sizeof(out)), 3);
	assert_string_equal(out, "aAb");
	assert_int_equal(api_pct_decode("%3a%3A", 6, out, sizeof(out)), 2);
	assert_string_equal(out, "::");
	assert_int_equal(api_pct_decode("1234567", 7, out, sizeof(out)), 7);
	assert_int_equal(api_pct_decode("12345678", 8, out, sizeof(out)), -ENAMETOOLONG);
	assert_int_equal(api_pct_decode("%", 1, out, sizeof(out)), -EINVAL);
	assert_int_equal(api_pct_decode("%4", 2, out, sizeof(out)), -EINVAL);
	assert_int_equal(api_pct_decode("%g0", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(api_pct_decode("%00", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(api_pct_decode("a\tb", 3, out, sizeof(out)), -EINVAL);
	/* Only len bytes are looked at. */
	assert_int_equal(api_pct_decode("ab%", 2, out, sizeof(out)), 2);
	assert_int_equal(api_pct_decode("", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

static void test_route_table(void **state)
{
	struct api_match m;
	char err[128];

	assert_int_equal(api_route_match("/v1/clients/pc1/remove", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_CLIENT_REMOVE);
	assert_string_equal(m.id, "pc1");
	assert_int_equal(api_route_match("/v1/clients/a%3Ab/set", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_CLIENT_SET);
	assert_string_equal(m.id, "a:b");
	assert_int_equal(api_route_match("/v1/clients/set", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_CLIENT);	/* a client may be called "set" */
	assert_int_equal(api_route_match("/v1/clients/x/delete", &m, err, sizeof(err)), -ENOENT);
	assert_int_equal(m.route, API_R_NONE);

	assert_true(api_route_allows(API_R_CLIENTS, "GET"));
	assert_true(api_route_allows(API_R_CLIENTS, "POST"));
	assert_false(api_route_allows(API_R_CLIENTS, "POS"));
	assert_false(api_route_allows(API_R_CLIENTS, "GE"));
	assert_false(api_route_allows(API_R_CLIENTS, "post"));
	assert_false(api_route_allows(API_R_CLIENTS, "GET, POST"));
	assert_false(api_route_allows(API_R_CLIENTS, "GET,"));
	assert_false(api_route_allows(API_R_CLIENTS, ""));
	assert_false(api_route_allows(API_R_CLIENTS, "DELETE"));
	assert_true(api_route_allows(API_R_CLIENT_REMOVE, "POST"));
	assert_false(api_route_allows(API_R_CLIENT_SET, "GET"));
	assert_true(api_route_allows(API_R_SESSION, "DELETE"));
	assert_false(api_route_allows(API_R_NONE, "GET"));
	assert_string_equal(api_route_allow(API_R_CLIENTS), "GET, POST");
	assert_null(api_route_allow(API_R_NONE));
}

/* The image and job routes: names, actions, job numbers, methods. */
static void test_route_images(void **state)
{
	struct api_match m;
	char err[128];

	(void)state;
	assert_int_equal(api_route_match("/v1/images", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_IMAGES);
	assert_int_equal(api_route_match("/v1/images/win10", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_IMAGE);
	assert_string_equal(m.id, "win10");
	assert_int_equal(api_route_match("/v1/images/win10/commit", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_IMAGE_ACTION);
	assert_string_equal(m.id, "win10");
	assert_string_equal(m.action, "commit");
	/* An action is lower-case letters, at most API_ACTION_MAX. */
	assert_int_equal(api_route_match("/v1/images/w/Commit", &m, err, sizeof(err)), -ENOENT);
	assert_int_equal(api_route_match("/v1/images/w/com%6dit", &m, err, sizeof(err)), -ENOENT);
	assert_int_equal(api_route_match("/v1/images/w/abcdefghijklmnop", &m, err, sizeof(err)), -ENOENT);
	assert_int_equal(api_route_match("/v1/images/w/commit/x", &m, err, sizeof(err)), -ENOENT);
	assert_int_equal(api_route_match("/v1/images/a%00b", &m, err, sizeof(err)), -EINVAL);
	assert_int_equal(api_route_match("/v1/jobs", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_JOBS);
	assert_int_equal(api_route_match("/v1/jobs/42", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_JOB);
	assert_int_equal(m.tsih, 42);
	assert_int_equal(api_route_match("/v1/jobs/4x", &m, err, sizeof(err)), -EINVAL);
	assert_int_equal(api_route_match("/v1/jobs/1234567890", &m, err, sizeof(err)), -EINVAL);
	assert_int_equal(api_route_match("/v1/jobs/1/2", &m, err, sizeof(err)), -ENOENT);

	assert_true(api_route_allows(API_R_IMAGES, "GET"));
	assert_true(api_route_allows(API_R_IMAGES, "POST"));
	assert_true(api_route_allows(API_R_IMAGE, "GET"));
	assert_false(api_route_allows(API_R_IMAGE, "POST"));
	assert_true(api_route_allows(API_R_IMAGE_ACTION, "POST"));
	assert_false(api_route_allows(API_R_IMAGE_ACTION, "GET"));
	assert_true(api_route_allows(API_R_JOB, "GET"));
	assert_false(api_route_allows(API_R_JOBS, "POST"));
}

/* POST /v1/images/{name}/prefetch (warm boots): routed to image_action
 * as "prefetch", its body passed on, API_ACCEPTED answered 202 with the
 * op's JSON, a refusal 409 with its message. */
static void test_route_prefetch(void **state)
{
	struct api_match m;
	struct resp r;
	char err[128];

	(void)state;
	assert_int_equal(api_route_match("/v1/images/win10/prefetch", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_IMAGE_ACTION);
	assert_string_equal(m.action, "prefetch");
	req("POST", "/v1/images/win10/prefetch", "{\"version\": 3}", &r);
	assert_int_equal(r.status, 202);
	assert_string_equal(fake_last(), "win10");
	assert_true(fake_body_is("{\"version\": 3}"));
	assert_int_equal(json_integer_value(json_object_get(r.body, "version")), 3);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r.body, "boot_set"),
							      "prefetch")), "queued");
	resp_free(&r);
	req("POST", "/v1/images/win10/prefetch", NULL, &r);
	assert_int_equal(r.status, 202);
	assert_int_equal(json_integer_value(json_object_get(r.body, "version")), 1);
	resp_free(&r);
	req("POST", "/v1/images/win10/prefetch", "{\"version\": 9}", &r);
	assert_int_equal(r.status, 409);
	assert_non_null(strstr(err_of(&r), "no boot set"));
	resp_free(&r);
	expect("GET", "/v1/images/win10/prefetch", NULL, 405);
}

/* The extra disk routes (issue 17): two ids decoded, their limits, methods. */
static void test_route_disks(void **state)
{
	struct api_match m;
	char err[128], path[700], longname[API_ID_MAX + 2];

	(void)state;
	assert_int_equal(api_route_match("/v1/clients/pc1/disks", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_CLIENT_DISKS);
	assert_string_equal(m.id, "pc1");
	assert_int_equal(api_route_match("/v1/clients/a%3Ab/disks/g%20x/remove", &m, err,
					 sizeof(err)), 0);
	assert_int_equal(m.route, API_R_CLIENT_DISK_REMOVE);
	assert_string_equal(m.id, "a:b");
	assert_string_equal(m.image, "g x");
	assert_int_equal(api_route_match("/v1/images/lab/disks", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_IMAGE_DISKS);
	assert_string_equal(m.id, "lab");
	assert_string_equal(m.action, "");	/* not an image action */
	assert_int_equal(api_route_match("/v1/images/lab/disks/games/remove", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_IMAGE_DISK_REMOVE);
	assert_string_equal(m.id, "lab");
	assert_string_equal(m.image, "games");
	/* a client or image called "disks" */
	assert_int_equal(api_route_match("/v1/clients/disks", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_CLIENT);
	assert_int_equal(api_route_match("/v1/images/disks/disks", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_IMAGE_DISKS);
	assert_string_equal(m.id, "disks");
	/* five segments, seven, the wrong words */
	assert_int_equal(api_route_match("/v1/clients/pc1/disks/games", &m, err, sizeof(err)), -ENOENT);
	assert_int_equal(api_route_match("/v1/clients/pc1/set/x", &m, err, sizeof(err)), -ENOENT);
	assert_int_equal(api_route_match("/v1/clients/pc1/disks/g/remove/x", &m, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(api_route_match("/v1/clients/pc1/disk/g/remove", &m, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(api_route_match("/v1/images/lab/disks/g/delete", &m, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(api_route_match("/v1/images/lab/disks//remove", &m, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(api_route_match("/v1/sessions/1/disks/g/remove", &m, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(api_route_match("/v1/jobs/1/disks/g/remove", &m, err, sizeof(err)), -ENOENT);
	/* the {image} segment: escapes and length checked like an id */
	assert_int_equal(api_route_match("/v1/images/lab/disks/a%0Ab/remove", &m, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "image name"));
	assert_int_equal(api_route_match("/v1/clients/a%zz/disks/g/remove", &m, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "client id"));
	memset(longname, 'g', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	snprintf(path, sizeof(path), "/v1/clients/pc1/disks/%s/remove", longname);
	assert_int_equal(api_route_match(path, &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than"));
	longname[API_ID_MAX] = '\0';	/* exactly API_ID_MAX bytes: fine */
	snprintf(path, sizeof(path), "/v1/clients/pc1/disks/%s/remove", longname);
	assert_int_equal(api_route_match(path, &m, err, sizeof(err)), 0);
	assert_int_equal(strlen(m.image), API_ID_MAX);
	for (enum api_route r = API_R_CLIENT_DISKS; r <= API_R_IMAGE_DISK_REMOVE; r++) {
		assert_true(api_route_allows(r, "POST"));
		assert_false(api_route_allows(r, "GET"));
		assert_false(api_route_allows(r, "DELETE"));
	}
}

/* The cluster routes (issue 15): table, drain, health; nothing deeper. */
static void test_route_cluster(void **state)
{
	struct api_match m;
	char err[128];

	(void)state;
	assert_int_equal(api_route_match("/v1/cluster", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_CLUSTER);
	assert_int_equal(api_route_match("/v1/cluster/drain", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_CLUSTER_DRAIN);
	assert_int_equal(api_route_match("/v1/cluster/health", &m, err, sizeof(err)), 0);
	assert_int_equal(m.route, API_R_CLUSTER_HEALTH);
	assert_int_equal(api_route_match("/v1/cluster/other", &m, err, sizeof(err)), -ENOENT);
	assert_int_equal(api_route_match("/v1/cluster/drain/x", &m, err, sizeof(err)), -ENOENT);
	assert_true(api_route_allows(API_R_CLUSTER, "GET"));
	assert_false(api_route_allows(API_R_CLUSTER, "POST"));
	assert_true(api_route_allows(API_R_CLUSTER_DRAIN, "POST"));
	assert_false(api_route_allows(API_R_CLUSTER_DRAIN, "GET"));
	assert_true(api_route_allows(API_R_CLUSTER_HEALTH, "GET"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_clients),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_client_add),
		cmocka_unit_test(test_client_remove),
		cmocka_unit_test(test_client_set),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_unknown_routes),
		cmocka_unit_test(test_id_decoding),
		cmocka_unit_test(test_error_mapping),
		cmocka_unit_test(test_missing_op),
		cmocka_unit_test(test_body_cap),
		cmocka_unit_test(test_flood),
		cmocka_unit_test(test_flood_over_limit),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_socket_mode),
		cmocka_unit_test(test_stale_socket),
		cmocka_unit_test(test_not_a_socket),
		cmocka_unit_test(test_pct_decode),
		cmocka_unit_test(test_route_table),
		cmocka_unit_test(test_route_images),
		cmocka_unit_test(test_route_prefetch),
		cmocka_unit_test(test_route_cluster),
		cmocka_unit_test(test_route_disks),
		cmocka_unit_test(test_reset_disk),
		cmocka_unit_test(test_disk_add),
		cmocka_unit_test(test_disk_remove),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
