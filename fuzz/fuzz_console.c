/*
 * fuzz_console.c - libFuzzer harness: the web console's request core
 * (src/console/console_core.c), the whole of what the HTTPS glue feeds
 * it, with a fake password check and fake admin ops.
 *
 * Input: requests separated by 0x1e; each is up to seven fields separated
 * by 0x1f: method, path, Cookie header, X-CSRF-Token, peer address, body,
 * and seconds to advance the clock (the field's first byte).  In the
 * cookie "@S" becomes the session cookie of the last successful login,
 * and in the token "@C" its CSRF token, so the fuzzer reaches what only
 * a logged-in browser reaches.  The password that works is
 * "right password".
 *
 * What must hold for every request: a known status; the headers every
 * answer has; JSON answers parse; nothing under /api/v1/ answers without
 * the live session's cookie; no change op runs without the live
 * session's CSRF token; console/passwd never runs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/console_int.h"
#include "util/events.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct console_core *g_core;
static int g_changed;          /* a change op ran */

static int fz_verify(void *ctx, const char *pw, char *err, size_t errlen)
{
	return strcmp(pw, "right password") ? -EACCES : 0;
}

static unsigned fz_generation(void *ctx)
{
	return 0;
}

static int fz_list(void *ctx, json_t **out, char *err, size_t errlen)
{
	*out = json_pack("{s:[]}", "clients");
	return 0;
}

static int fz_show(void *ctx, const char *id, json_t **out, char *err, size_t errlen)
{
	snprintf(err, errlen, "no client '%s'", id);
	return -ENOENT;
}

static int fz_reset(void *ctx, const char *id, bool force, const char *disk, json_t **out, char *err,
		    size_t errlen)
{
	g_changed = 1;
	return 0;
}

static int fz_set(void *ctx, const char *id, json_t *body, json_t **out, char *err, size_t errlen)
{
	g_changed = 1;
	*out = json_deep_copy(body);
	return 0;
}

static int fz_passwd(void *ctx, json_t *body, json_t **out, char *err, size_t errlen)
{
	abort();
}

static const struct control_ops fz_ops = {
	.clients_list = fz_list, .client_show = fz_show, .client_reset = fz_reset,
	.client_set = fz_set, .console_passwd = fz_passwd,
};

/* Copy field i of rec (fields split by 0x1f) into out; "" if absent. */
static void field(const char *rec, size_t len, int i, char *out, size_t outlen)
{
	size_t at = 0, n;

	while (i-- > 0) {
		const char *s = memchr(rec + at, 0x1f, len - at);
		if (!s) {
			out[0] = '\0';
			return;
		}
		at = (size_t)(s - rec) + 1;
	}
	const char *e = memchr(rec + at, 0x1f, len - at);
	n = (e ? (size_t)(e - rec) : len) - at;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, rec + at, n);
	out[n] = '\0';
}

/* s with every "@X" replaced by with. */
static void subst(char *s, size_t len, const char *tok, const char *with)
{
	char tmp[4096], *p;

	while ((p = strstr(s, tok))) {
		snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(p - s), s, with, p + strlen(tok));
		snprintf(s, len, "%s", tmp);
		if (!with[0] && !strstr(s, tok))
			break;
	}
}

static const char *hdr(const struct console_resp *rs, const char *name)
{
	for (unsigned i = 0; i < rs->nhdr; i++)
		if (!strcmp(rs->hdr[i].name, name))
			return rs->hdr[i].value;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct console_auth auth = { .verify = fz_verify, .generation = fz_generation };
	char token[CONSOLE_TOKEN_HEX + 1] = "", csrf[CONSOLE_TOKEN_HEX + 1] = "";
	int64_t now = 0;
	size_t at = 0;

	if (!g_core) {
		log_set_level(LOG_ERR);
		g_core = malloc(sizeof(*g_core));
		if (!g_core)
			abort();
	}
	console_core_init(g_core, &fz_ops, &auth, 30);
	while (at < size) {
		const char *rec = (const char *)data + at;
		const uint8_t *end = memchr(data + at, 0x1e, size - at);
		size_t len = (end ? (size_t)(end - data) : size) - at;
		char method[16], path[1024], cookie[1024], tokh[256], peer[64], body[2048], dt[4];
		char cookie_sub[4096], tok_sub[4096];
		struct console_req rq;
		struct console_resp rs;
		bool had_session, had_csrf;

		at += len + 1;
		field(rec, len, 0, method, sizeof(method));
		field(rec, len, 1, path, sizeof(path));
		field(rec, len, 2, cookie, sizeof(cookie));
		field(rec, len, 3, tokh, sizeof(tokh));
		field(rec, len, 4, peer, sizeof(peer));
		field(rec, len, 5, body, sizeof(body));
		field(rec, len, 6, dt, sizeof(dt));
		now += (int64_t)(uint8_t)dt[0] * 1000;
		snprintf(cookie_sub, sizeof(cookie_sub), "%s", cookie);
		char sess[CONSOLE_TOKEN_HEX + 32];
		snprintf(sess, sizeof(sess), CONSOLE_COOKIE "=%s", token);
		subst(cookie_sub, sizeof(cookie_sub), "@S", token[0] ? sess : "");
		snprintf(tok_sub, sizeof(tok_sub), "%s", tokh);
		subst(tok_sub, sizeof(tok_sub), "@C", csrf);
		had_session = token[0] && strstr(cookie_sub, token);
		had_csrf = csrf[0] && strcmp(tok_sub, csrf) == 0;
		rq = (struct console_req){
			.method = method[0] ? method : "GET", .path = path[0] ? path : "/",
			.cookie = cookie_sub[0] ? cookie_sub : NULL, .csrf = tok_sub[0] ? tok_sub : NULL,
			.peer = peer[0] ? peer : "127.0.0.1", .body = body, .len = strlen(body),
			.now_ms = now,
		};
		g_changed = 0;
		console_handle(g_core, &rq, &rs);
		switch (rs.status) {
		case 200: case 400: case 401: case 403: case 404: case 405: case 413: case 429:
		case 500: case 501:
			break;
		default:
			abort();
		}
		if (!hdr(&rs, "Content-Security-Policy") || !hdr(&rs, "X-Content-Type-Options") ||
		    !rs.type || (rs.len && !rs.body))
			abort();
		if (!strcmp(rs.type, "application/json")) {
			json_t *j = json_loadb(rs.body, rs.len, 0, NULL);
			if (!j)
				abort();
			json_decref(j);
		}
		if (!strncmp(rq.path, "/api/v1/", 8) && rs.status != 401 && !had_session)
			abort();
		if (g_changed && !had_csrf)
			abort();
		/* Keep the newest session for @S / @C. */
		const char *sc = hdr(&rs, "Set-Cookie");
		if (rs.status == 200 && !strcmp(rq.path, "/login") && sc) {
			snprintf(token, sizeof(token), "%s", sc + strlen(CONSOLE_COOKIE "="));
			json_t *j = json_loadb(rs.body, rs.len, 0, NULL);
			snprintf(csrf, sizeof(csrf), "%s", json_string_value(json_object_get(j, "csrf")));
			json_decref(j);
		}
		console_resp_free(&rs);
	}
	console_core_fini(g_core);
	events_reset();
	return 0;
}
