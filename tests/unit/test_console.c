/*
 * test_console.c - unit tests of the web console's request core
 * (src/console/console_core.c and its session, rate and cookie pieces),
 * driven as a pure function with a fake clock, a fake password check and
 * fake admin ops: cookie parsing, the CSRF token, idle and absolute
 * session expiry, a cookie from another address, the login rate limit
 * (per address), path traversal, the /api pass-through needing a session,
 * console/passwd refused, the headers every answer has; and the real
 * password op and check (Argon2id) against a temporary state directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/ops.h"
#include "console/console.h"
#include "console/console_int.h"
#include "util/events.h"
#include "util/log.h"

/* ---- fakes -------------------------------------------------------------- */

static unsigned fake_gen;
static int fake_verifies;
static int fake_resets;

static int fake_verify(void *ctx, const char *pw, char *err, size_t errlen)
{
	(void)ctx; (void)err; (void)errlen;
	fake_verifies++;
	if (!strcmp(pw, "busy-busy"))
		return -EBUSY;
	return strcmp(pw, "right password") ? -EACCES : 0;
}

static unsigned fake_generation(void *ctx)
{
	(void)ctx;
	return fake_gen;
}

static int fake_clients(void *ctx, json_t **out, char *err, size_t errlen)
{
	*out = json_pack("{s:[{s:s}]}", "clients", "name", "pc1");
	return 0;
}

static int fake_reset(void *ctx, const char *id, bool force, const char *disk, json_t **out,
		      char *err, size_t errlen)
{
	(void)disk;
	if (strcmp(id, "pc1")) {
		snprintf(err, errlen, "no client '%s'", id);
		return -ENOENT;
	}
	fake_resets++;
	*out = json_pack("{s:b}", "force", force);
	return 0;
}

static int fake_passwd(void *ctx, json_t *body, json_t **out, char *err, size_t errlen)
{
	fail_msg("console_passwd must never be reached through the console");
	return -EIO;
}

static const struct control_ops fake_ops = {
	.clients_list = fake_clients, .client_reset = fake_reset, .console_passwd = fake_passwd,
};

static struct console_core *core;

static int setup(void **state)
{
	struct console_auth auth = { .verify = fake_verify, .generation = fake_generation };

	(void)state;
	core = malloc(sizeof(*core));
	assert_non_null(core);
	console_core_init(core, &fake_ops, &auth, 60);
	fake_gen = 0;
	fake_verifies = fake_resets = 0;
	events_reset();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	console_core_fini(core);
	free(core);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

struct call {
	const char *method, *path, *cookie, *csrf, *peer, *body;
	int64_t now_ms;
};

static struct console_resp rs;

/* Run one request; rs holds the answer until the next. */
static unsigned run(struct call c)
{
	struct console_req rq = {
		.method = c.method ? c.method : "GET", .path = c.path, .cookie = c.cookie,
		.csrf = c.csrf, .peer = c.peer ? c.peer : "10.0.0.5",
		.body = c.body, .len = c.body ? strlen(c.body) : 0, .now_ms = c.now_ms,
	};
	console_resp_free(&rs);
	console_handle(core, &rq, &rs);
	return rs.status;
}

static const char *hdr(const char *name)
{
	for (unsigned i = 0; i < rs.nhdr; i++)
		if (!strcasecmp(rs.hdr[i].name, name))
			return rs.hdr[i].value;
	return NULL;
}

/* The body as a string (copy). */
static char body_text[4096];
static const char *body(void)
{
	size_t n = rs.len < sizeof(body_text) - 1 ? rs.len : sizeof(body_text) - 1;
	memcpy(body_text, rs.body, n);
	body_text[n] = '\0';
	return body_text;
}

struct login {
	char cookie[128];     /* "pristine_session=..." */
	char csrf[CONSOLE_TOKEN_HEX + 1];
};

/* Log in from peer at now; asserts 200. */
static struct login login_at(const char *peer, int64_t now)
{
	struct login l;
	const char *sc, *end;
	json_t *j;

	assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .peer = peer,
					    .body = "{\"password\": \"right password\"}", .now_ms = now }), 200);
	sc = hdr("Set-Cookie");
	assert_non_null(sc);
	end = strchr(sc, ';');
	assert_non_null(end);
	snprintf(l.cookie, sizeof(l.cookie), "%.*s", (int)(end - sc), sc);
	j = json_loadb(rs.body, rs.len, 0, NULL);
	assert_non_null(j);
	snprintf(l.csrf, sizeof(l.csrf), "%s", json_string_value(json_object_get(j, "csrf")));
	assert_true(console_token_valid(l.csrf));
	assert_int_equal(json_integer_value(json_object_get(j, "idle_timeout_s")), 60);
	json_decref(j);
	return l;
}

/* ---- tests -------------------------------------------------------------- */

static void test_cookie_parse(void **state)
{
	char out[80];
	size_t cur = 0;

	(void)state;
	assert_int_equal(console_cookie_next("a=1; pristine_session=abc; b=2", "pristine_session",
					     &cur, out, sizeof(out)), 0);
	assert_string_equal(out, "abc");
	assert_int_equal(console_cookie_next("a=1; pristine_session=abc; b=2", "pristine_session",
					     &cur, out, sizeof(out)), -ENOENT);
	/* several of the name: each in turn; quotes stripped; a prefix is not the name */
	cur = 0;
	const char *h = "xpristine_session=no;pristine_session=\"q1\" ;  pristine_session=q2";
	assert_int_equal(console_cookie_next(h, "pristine_session", &cur, out, sizeof(out)), 0);
	assert_string_equal(out, "q1");
	assert_int_equal(console_cookie_next(h, "pristine_session", &cur, out, sizeof(out)), 0);
	assert_string_equal(out, "q2");
	assert_int_equal(console_cookie_next(h, "pristine_session", &cur, out, sizeof(out)), -ENOENT);
	/* too long, or bytes a token never has: skipped with -EINVAL */
	cur = 0;
	assert_int_equal(console_cookie_next("pristine_session=aaaaaaaaaa", "pristine_session",
					     &cur, out, 5), -EINVAL);
	cur = 0;
	assert_int_equal(console_cookie_next("pristine_session=a\x01b", "pristine_session",
					     &cur, out, sizeof(out)), -EINVAL);
	cur = 0;
	assert_int_equal(console_cookie_next(NULL, "pristine_session", &cur, out, sizeof(out)),
			 -ENOENT);
	cur = 0;
	assert_int_equal(console_cookie_next("pristine_session", "pristine_session", &cur, out,
					     sizeof(out)), -ENOENT);
	/* tokens */
	assert_false(console_token_valid("abc"));
	char t[CONSOLE_TOKEN_HEX + 1], u[CONSOLE_TOKEN_HEX + 1];
	console_token_make(t);
	console_token_make(u);
	assert_true(console_token_valid(t));
	assert_true(console_token_equal(t, t));
	assert_false(console_token_equal(t, u));
	t[5] = 'A';
	assert_false(console_token_valid(t));
}

static void test_login_and_cookie_flags(void **state)
{
	struct login l;
	const char *sc;

	(void)state;
	assert_int_equal(run((struct call){ .method = "POST", .path = "/login",
					    .body = "{\"password\": \"wrong\"}" }), 401);
	assert_non_null(strstr(body(), "wrong password"));
	assert_null(hdr("Set-Cookie"));
	assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .body = "[]" }), 400);
	assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .body = "{" }), 400);
	assert_int_equal(run((struct call){ .method = "GET", .path = "/login" }), 405);
	l = login_at("10.0.0.5", 1000);
	sc = NULL;
	assert_int_equal(run((struct call){ .method = "POST", .path = "/login",
					    .body = "{\"password\": \"right password\"}" }), 200);
	sc = hdr("Set-Cookie");
	assert_non_null(strstr(sc, "HttpOnly"));
	assert_non_null(strstr(sc, "Secure"));
	assert_non_null(strstr(sc, "SameSite=Strict"));
	assert_non_null(strstr(sc, "Path=/"));
	/* the session answers /session with its CSRF token */
	assert_int_equal(run((struct call){ .path = "/session", .cookie = l.cookie, .now_ms = 2000 }),
			 200);
	assert_non_null(strstr(body(), l.csrf));
	assert_int_equal(run((struct call){ .path = "/session", .now_ms = 2000 }), 401);
	/* a login event was recorded */
	struct event ev[8];
	size_t n = events_since(0, ev, 8, NULL);
	bool seen = false;
	for (size_t i = 0; i < n; i++)
		seen |= ev[i].kind == EV_CONSOLE && strstr(ev[i].text, "console login");
	assert_true(seen);
}

static void test_api_needs_session_and_csrf(void **state)
{
	struct login l;

	(void)state;
	/* no session: 401 whatever the route, and nothing about the daemon */
	assert_int_equal(run((struct call){ .path = "/api/v1/clients" }), 401);
	assert_int_equal(run((struct call){ .path = "/api/v1/no/such/route" }), 401);
	assert_int_equal(run((struct call){ .method = "POST", .path = "/api/v1/clients/pc1/reset" }),
			 401);
	assert_int_equal(run((struct call){ .path = "/api/v1/clients",
					    .cookie = "pristine_session=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }),
			 401);
	l = login_at("10.0.0.5", 1000);
	assert_int_equal(run((struct call){ .path = "/api/v1/clients", .cookie = l.cookie,
					    .now_ms = 1500 }), 200);
	assert_non_null(strstr(body(), "pc1"));
	assert_string_equal(hdr("Cache-Control"), "no-store");
	/* a change without the token, with a wrong one, with the right one */
	assert_int_equal(run((struct call){ .method = "POST", .path = "/api/v1/clients/pc1/reset",
					    .cookie = l.cookie, .now_ms = 1500 }), 403);
	assert_non_null(strstr(body(), "CSRF"));
	char wrong[CONSOLE_TOKEN_HEX + 1];
	snprintf(wrong, sizeof(wrong), "%s", l.csrf);
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	assert_int_equal(run((struct call){ .method = "POST", .path = "/api/v1/clients/pc1/reset",
					    .cookie = l.cookie, .csrf = wrong, .now_ms = 1500 }), 403);
	assert_int_equal(run((struct call){ .method = "POST", .path = "/api/v1/clients/pc1/reset",
					    .cookie = l.cookie, .csrf = "short", .now_ms = 1500 }), 403);
	assert_int_equal(fake_resets, 0);
	assert_int_equal(run((struct call){ .method = "POST", .path = "/api/v1/clients/pc1/reset",
					    .cookie = l.cookie, .csrf = l.csrf,
					    .body = "{\"force\": true}", .now_ms = 1500 }), 200);
	assert_int_equal(fake_resets, 1);
	/* the API's own answers pass through: 404 of an op, 404 route, 405, 400, 501 */
	assert_int_equal(run((struct call){ .method = "POST", .path = "/api/v1/clients/pc9/reset",
					    .cookie = l.cookie, .csrf = l.csrf, .now_ms = 1500 }), 404);
	assert_non_null(strstr(body(), "pc9"));
	assert_int_equal(run((struct call){ .path = "/api/v1/nothing", .cookie = l.cookie,
					    .now_ms = 1500 }), 404);
	assert_int_equal(run((struct call){ .method = "PUT", .path = "/api/v1/clients",
					    .cookie = l.cookie, .csrf = l.csrf, .now_ms = 1500 }), 405);
	assert_non_null(hdr("Allow"));
	assert_int_equal(run((struct call){ .method = "POST", .path = "/api/v1/clients/pc1/reset",
					    .cookie = l.cookie, .csrf = l.csrf, .body = "{\"force\": 3}",
					    .now_ms = 1500 }), 400);
	assert_int_equal(run((struct call){ .path = "/api/v1/stats", .cookie = l.cookie,
					    .now_ms = 1500 }), 501);
	/* console/passwd is never passed, even with session and token */
	assert_int_equal(run((struct call){ .method = "POST", .path = "/api/v1/console/passwd",
					    .cookie = l.cookie, .csrf = l.csrf,
					    .body = "{\"password\": \"something long\"}", .now_ms = 1500 }), 403);
	assert_int_equal(run((struct call){ .method = "POST", .path = "/api/v1/console/%70asswd",
					    .cookie = l.cookie, .csrf = l.csrf,
					    .body = "{\"password\": \"something long\"}", .now_ms = 1500 }), 404);
	/* logout needs the token too, then the cookie is dead */
	assert_int_equal(run((struct call){ .method = "POST", .path = "/logout", .cookie = l.cookie,
					    .now_ms = 1600 }), 403);
	assert_int_equal(run((struct call){ .method = "POST", .path = "/logout", .cookie = l.cookie,
					    .csrf = l.csrf, .now_ms = 1600 }), 200);
	assert_non_null(strstr(hdr("Set-Cookie"), "Max-Age=0"));
	assert_int_equal(run((struct call){ .path = "/api/v1/clients", .cookie = l.cookie,
					    .now_ms = 1700 }), 401);
}

static void test_session_expiry(void **state)
{
	struct login l;
	int64_t t;

	(void)state;
	/* idle: 60 s in this core; each use restarts the clock */
	l = login_at("10.0.0.5", 0);
	assert_int_equal(run((struct call){ .path = "/session", .cookie = l.cookie, .now_ms = 59000 }), 200);
	assert_int_equal(run((struct call){ .path = "/session", .cookie = l.cookie, .now_ms = 118000 }), 200);
	assert_int_equal(run((struct call){ .path = "/session", .cookie = l.cookie, .now_ms = 178000 }), 401);
	assert_non_null(strstr(body(), "expired"));
	/* and it stays dead even if used again "in time" */
	assert_int_equal(run((struct call){ .path = "/session", .cookie = l.cookie, .now_ms = 178001 }), 401);
	/* absolute: 12 h even when used every 30 s */
	l = login_at("10.0.0.5", 1000000);
	for (t = 1000000; t < 1000000 + (int64_t)CONSOLE_ABSOLUTE_S * 1000 - 30000; t += 30000)
		assert_int_equal(run((struct call){ .path = "/api/v1/clients", .cookie = l.cookie,
						    .now_ms = t }), 200);
	assert_int_equal(run((struct call){ .path = "/api/v1/clients", .cookie = l.cookie,
					    .now_ms = 1000000 + (int64_t)CONSOLE_ABSOLUTE_S * 1000 }), 401);
	/* a password change ends sessions begun before it */
	l = login_at("10.0.0.5", 5000);
	fake_gen++;
	assert_int_equal(run((struct call){ .path = "/session", .cookie = l.cookie, .now_ms = 5001 }), 401);
}

static void test_cookie_from_another_address(void **state)
{
	struct login l;
	struct event ev[16];
	size_t n;
	bool seen = false;

	(void)state;
	l = login_at("10.0.0.5", 0);
	events_reset();
	assert_int_equal(run((struct call){ .path = "/api/v1/clients", .cookie = l.cookie,
					    .peer = "10.0.0.6", .now_ms = 10 }), 401);
	assert_non_null(strstr(body(), "another address"));
	assert_int_equal(run((struct call){ .method = "POST", .path = "/api/v1/clients/pc1/reset",
					    .cookie = l.cookie, .csrf = l.csrf, .peer = "10.0.0.6",
					    .now_ms = 10 }), 401);
	assert_int_equal(fake_resets, 0);
	n = events_since(0, ev, 16, NULL);
	for (size_t i = 0; i < n; i++)
		seen |= ev[i].kind == EV_CONSOLE && strstr(ev[i].text, "session cookie used from another address");
	assert_true(seen);
	/* the owner still has it */
	assert_int_equal(run((struct call){ .path = "/api/v1/clients", .cookie = l.cookie,
					    .now_ms = 20 }), 200);
	/* a forged cookie beside the real one does not hide it */
	char two[300];
	snprintf(two, sizeof(two), "pristine_session=zz; %s", l.cookie);
	assert_int_equal(run((struct call){ .path = "/session", .cookie = two, .now_ms = 30 }), 200);
}

static void test_rate_limit(void **state)
{
	(void)state;
	for (int i = 0; i < CONSOLE_RATE_FAILS; i++)
		assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .peer = "10.9.9.9",
						    .body = "{\"password\": \"guess\"}", .now_ms = i * 1000 }), 401);
	int before = fake_verifies;
	/* the next is refused without checking the password, with Retry-After */
	assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .peer = "10.9.9.9",
					    .body = "{\"password\": \"right password\"}", .now_ms = 10000 }), 429);
	assert_int_equal(fake_verifies, before);
	assert_string_equal(hdr("Retry-After"), "50");
	assert_non_null(strstr(body(), "too many failed logins from 10.9.9.9"));
	/* another address is not affected, and its success lifts nothing here */
	login_at("10.1.1.1", 10000);
	assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .peer = "10.9.9.9",
					    .body = "{\"password\": \"right password\"}", .now_ms = 30000 }), 429);
	/* once the oldest failure is a minute old, one more try */
	assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .peer = "10.9.9.9",
					    .body = "{\"password\": \"right password\"}", .now_ms = 60000 }), 200);
	/* a success forgets that address's failures */
	for (int i = 0; i < CONSOLE_RATE_FAILS - 1; i++)
		assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .peer = "10.9.9.9",
						    .body = "{\"password\": \"x\"}", .now_ms = 61000 }), 401);
	assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .peer = "10.9.9.9",
					    .body = "{\"password\": \"right password\"}", .now_ms = 61000 }), 200);
	/* IPv6: a /64 is one address; another /64 is not */
	for (int i = 1; i <= CONSOLE_RATE_FAILS; i++) {
		char a[64];
		snprintf(a, sizeof(a), "2001:db8:1:2::%x", i);
		assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .peer = a,
						    .body = "{\"password\": \"x\"}", .now_ms = 70000 }), 401);
	}
	assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .peer = "2001:db8:1:2:ffff::9",
					    .body = "{\"password\": \"right password\"}", .now_ms = 70000 }), 429);
	login_at("2001:db8:1:3::1", 70000);
	/* too many checks at once: 429 with Retry-After 1 */
	assert_int_equal(run((struct call){ .method = "POST", .path = "/login", .peer = "10.2.2.2",
					    .body = "{\"password\": \"busy-busy\"}" }), 429);
	assert_string_equal(hdr("Retry-After"), "1");
}

static void test_assets_and_traversal(void **state)
{
	static const char *const bad[] = {
		"/assets/../Makefile", "/assets/..%2f..%2fetc%2fpasswd", "/assets/%2e%2e/x",
		"/assets/", "/assets/.", "/assets/..", "/assets//etc/passwd", "/assets/a\\..\\b",
		"/assets/INDEX.HTML", "/assets/index.html/", "/assets/index.html%00.js",
		"/../etc/passwd", "//etc/passwd", "/index.html", "/assets", "/web/index.html",
		"/assets/index.html?x", "/\\", "/api", "/api/", "/API/v1/clients",
	};

	(void)state;
	assert_int_equal(run((struct call){ .path = "/" }), 200);
	assert_non_null(strstr(body(), "<html"));
	assert_string_equal(rs.type, "text/html; charset=utf-8");
	assert_int_equal(run((struct call){ .path = "/assets/index.html" }), 200);
	assert_int_equal(run((struct call){ .method = "HEAD", .path = "/" }), 200);
	assert_int_equal(run((struct call){ .method = "POST", .path = "/assets/index.html" }), 405);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned st = run((struct call){ .path = bad[i] });
		if (st != 404 && st != 401)
			fail_msg("%s answered %u", bad[i], st);
		assert_null(strstr(body(), "root:"));
	}
	/* every answer carries the security headers */
	run((struct call){ .path = "/nope" });
	assert_non_null(strstr(hdr("Content-Security-Policy"), "default-src 'self'"));
	assert_non_null(strstr(hdr("Content-Security-Policy"), "frame-ancestors 'none'"));
	assert_string_equal(hdr("X-Content-Type-Options"), "nosniff");
	assert_string_equal(hdr("Referrer-Policy"), "no-referrer");
	assert_non_null(hdr("Strict-Transport-Security"));
	/* every compiled-in asset has a name the server can serve */
	for (size_t i = 0; i < console_nassets; i++) {
		char path[300];
		snprintf(path, sizeof(path), "/assets/%s", console_assets[i].name);
		assert_int_equal(run((struct call){ .path = path }), 200);
		assert_int_equal(rs.len, console_assets[i].len);
	}
	assert_true(console_nassets >= 1);
	assert_non_null(console_asset_find("index.html"));
}

/* The real op and check: Argon2id in a temporary state directory. */
static void test_passwd_real(void **state)
{
	char dir[] = "/tmp/test_console_XXXXXX", path[300], err[256];
	struct daemon_ctx d = { 0 };
	json_t *out = NULL, *b;
	struct stat st;
	unsigned g0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	d.state = dir;
	assert_int_equal(console_passwd_verify(dir, "whatever1", err, sizeof(err)), -ENOENT);
	b = json_pack("{s:s}", "password", "short");
	assert_int_equal(console_passwd_op(&d, b, &out, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "at least 8"));
	json_decref(b);
	b = json_pack("{s:i}", "password", 12345678);
	assert_int_equal(console_passwd_op(&d, b, &out, err, sizeof(err)), -EINVAL);
	json_decref(b);
	g0 = console_passwd_generation(NULL);
	b = json_pack("{s:s}", "password", "a good long one");
	assert_int_equal(console_passwd_op(&d, b, &out, err, sizeof(err)), 0);
	json_decref(b);
	json_decref(out);
	assert_int_equal(console_passwd_generation(NULL), g0 + 1);
	snprintf(path, sizeof(path), "%s/console/passwd", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(console_passwd_verify(dir, "a good long one", err, sizeof(err)), 0);
	assert_int_equal(console_passwd_verify(dir, "a good long on", err, sizeof(err)), -EACCES);
	assert_int_equal(console_passwd_verify(dir, "", err, sizeof(err)), -EACCES);
	/* the file holds a hash, never the password */
	FILE *f = fopen(path, "r");
	char line[256] = "";
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_null(strstr(line, "a good long one"));
	assert_memory_equal(line, "$argon2id$", 10);
	unlink(path);
	snprintf(path, sizeof(path), "%s/console", dir);
	rmdir(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cookie_parse),
		cmocka_unit_test_setup_teardown(test_login_and_cookie_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_needs_session_and_csrf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cookie_from_another_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_assets_and_traversal, setup, teardown),
		cmocka_unit_test(test_passwd_real),
	};

	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
