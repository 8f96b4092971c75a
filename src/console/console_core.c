/*
 * console_core.c - the web console's request core: one request in, one
 * answer out, as docs/console.md's contract says.  No sockets and no
 * libmicrohttpd here (console_http.c feeds this), and the clock comes
 * with the request, so the unit tests and the fuzzer drive exactly what
 * the server runs.
 *
 * Order of checks for /api/v1/...: a live session from the same address
 * (401), the one route the console never passes (console/passwd: 403),
 * the route and method (404/405/400), the CSRF token of a change (403),
 * then the admin API's own dispatch (admin/api_call.h) with its own
 * status codes.  Nothing about the daemon is said before the session
 * check passes.
 *
 * Locking: cc->lock guards the session and rate tables only; the
 * password check (~0.1 s of Argon2id) and the API's ops run without it.
 */
#include "console/console.h"
#include "console/console_int.h"
#include "admin/api_call.h"
#include "admin/api_route.h"
#include "util/events.h"
#include "util/log.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Add a header; the table is sized for the most any answer has. */
static void add_hdr(struct console_resp *rs, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add_hdr(struct console_resp *rs, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (rs->nhdr >= CONSOLE_HDR_MAX)
		return;
	rs->hdr[rs->nhdr].name = name;
	va_start(ap, fmt);
	vsnprintf(rs->hdr[rs->nhdr].value, sizeof(rs->hdr[0].value), fmt, ap);
	va_end(ap);
	rs->nhdr++;
}

/* Answer with a JSON value (reference stolen; NULL = {}). */
static void send_json(struct console_resp *rs, unsigned status, json_t *v)
{
	char *text;

	if (!v)
		v = json_object();
	text = v ? json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(v);
	if (!text) {
		status = 500;
		text = strdup("{\"error\":\"cannot encode the response\"}");
	}
	rs->status = status;
	rs->type = "application/json";
	rs->owned = text;
	rs->body = text ? text : "";
	rs->len = text ? strlen(text) : 0;
}

/* Answer {"error": msg}.  msg may hold request text: jansson needs UTF-8,
 * so text that is not is replaced by a sanitized copy. */
static void send_error(struct console_resp *rs, unsigned status, const char *msg)
{
	char safe[256];
	json_t *s = json_string(msg);

	if (!s)
		s = json_string(log_safe(msg, safe, sizeof(safe)));
	send_json(rs, status, json_pack("{s:o*}", "error", s));
}

/* The log's and the event's words for a refusal or a login. */
static void note(const char *peer, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const char *peer, const char *fmt, ...)
{
	char text[EVENTS_TEXT_MAX], sp[CONSOLE_ADDR_MAX * 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_notice("console: %s (from %s)", text, log_safe(peer, sp, sizeof(sp)));
	events_add(EV_CONSOLE, NULL, NULL, "%s (from %s)", text, sp);
}

/* Assets: "/" is index.html, "/assets/NAME" a file of web/; revalidate:
 * say Cache-Control: no-cache (the caller said no-store otherwise). */
static void serve_asset(const struct console_req *rq, const char *name, struct console_resp *rs,
			bool revalidate)
{
	const struct console_asset *a;

	if (strcmp(rq->method, "GET") && strcmp(rq->method, "HEAD")) {
		add_hdr(rs, "Allow", "GET, HEAD");
		send_error(rs, 405, "method not allowed here (use GET)");
		return;
	}
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '_' || *p == '-'))
			name = "";
	a = name[0] ? console_asset_find(name) : NULL;
	if (!a) {
		send_error(rs, 404, "no such file");
		return;
	}
	rs->status = 200;
	rs->type = a->type;
	rs->body = (const char *)a->data;
	rs->len = a->len;
	if (revalidate)
		add_hdr(rs, "Cache-Control", "no-cache");
}

enum { SESS_OK, SESS_NONE, SESS_EXPIRED, SESS_ELSEWHERE };

/*
 * The session of rq's cookie, copied into *out and its idle clock
 * restarted; SESS_NONE when there is no cookie or none we know,
 * SESS_EXPIRED when it has just timed out, SESS_ELSEWHERE when it
 * belongs to another address (refused and logged, the session itself
 * left alone: its owner keeps it).
 */
static int session_of(struct console_core *cc, const struct console_req *rq,
		      struct console_session *out)
{
	char tok[CONSOLE_TOKEN_HEX + 1], owner[CONSOLE_ADDR_MAX];
	size_t cur = 0;
	int rc, verdict = SESS_NONE;

	for (;;) {
		struct console_session *s;
		bool expired;

		rc = console_cookie_next(rq->cookie, CONSOLE_COOKIE, &cur, tok, sizeof(tok));
		if (rc == -ENOENT)
			break;
		if (rc)
			continue;
		pthread_mutex_lock(&cc->lock);
		s = console_session_find(cc, tok, rq->now_ms, &expired);
		if (s && strcmp(s->peer, rq->peer) == 0) {
			s->used_ms = rq->now_ms;
			*out = *s;
			pthread_mutex_unlock(&cc->lock);
			sodium_memzero(tok, sizeof(tok));
			return SESS_OK;
		}
		if (s) {
			snprintf(owner, sizeof(owner), "%s", s->peer);
			verdict = SESS_ELSEWHERE;
		} else if (expired && verdict == SESS_NONE) {
			verdict = SESS_EXPIRED;
		}
		pthread_mutex_unlock(&cc->lock);
	}
	sodium_memzero(tok, sizeof(tok));
	if (verdict == SESS_ELSEWHERE) {
		char so[CONSOLE_ADDR_MAX * 4];
		note(rq->peer, "session cookie used from another address; refused (the session is %s's)",
		     log_safe(owner, so, sizeof(so)));
	}
	return verdict;
}

/* The 401 for a request without a usable session. */
static void refuse_session(int verdict, struct console_resp *rs)
{
	send_error(rs, 401, verdict == SESS_EXPIRED ? "session expired: log in again" :
		   verdict == SESS_ELSEWHERE ? "session cookie used from another address" :
		   "not logged in");
}

/* Whether rq carries s's CSRF token. */
static bool csrf_ok(const struct console_req *rq, const struct console_session *s)
{
	return rq->csrf && console_token_valid(rq->csrf) && console_token_equal(rq->csrf, s->csrf);
}

/* 200 {"csrf", "idle_timeout_s"} of session s (login and GET /session). */
static void send_session(struct console_core *cc, const struct console_session *s,
			 struct console_resp *rs)
{
	send_json(rs, 200, json_pack("{s:s, s:I}", "csrf", s->csrf, "idle_timeout_s",
				     (json_int_t)cc->idle_s));
}

/* POST /login {"password": "..."}. */
static void do_login(struct console_core *cc, const struct console_req *rq,
		     struct console_resp *rs)
{
	struct console_session s;
	json_error_t jerr;
	json_t *body = NULL, *pw;
	char err[256] = "";
	unsigned retry = 0;
	bool first = false;
	int rc;

	if (strcmp(rq->method, "POST")) {
		add_hdr(rs, "Allow", "POST");
		send_error(rs, 405, "method not allowed here (use POST)");
		return;
	}
	if (rq->len)
		body = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr);
	pw = json_object_get(body, "password");
	if (!json_is_string(pw) || json_string_length(pw) > CONSOLE_PASSWD_MAX ||
	    strlen(json_string_value(pw)) != json_string_length(pw)) {
		json_decref(body);
		send_error(rs, 400, "the body must be {\"password\": \"...\"}");
		return;
	}
	pthread_mutex_lock(&cc->lock);
	rc = console_rate_attempt(cc, rq->peer, rq->now_ms, &retry, &first);
	pthread_mutex_unlock(&cc->lock);
	if (rc == -EAGAIN) {
		json_decref(body);
		if (first)
			note(rq->peer, "too many failed console logins: refusing this address for %u s",
			     retry);
		add_hdr(rs, "Retry-After", "%u", retry);
		snprintf(err, sizeof(err), "too many failed logins from %s, try again in %u s",
			 rq->peer, retry);
		send_error(rs, 429, err);
		return;
	}
	rc = cc->auth.verify(cc->auth.ctx, json_string_value(pw), err, sizeof(err));
	json_decref(body);   /* the password with it (jansson frees, not wipes) */
	switch (rc) {
	case 0:
		break;
	case -EACCES:
		note(rq->peer, "wrong console password");
		send_error(rs, 401, "wrong password");
		return;
	case -ENOENT:
		note(rq->peer, "console login refused: no console password set");
		send_error(rs, 401, "no console password set: run pristinectl console passwd");
		return;
	case -EBUSY:
		add_hdr(rs, "Retry-After", "1");
		send_error(rs, 429, "too many logins at once, try again in 1 s");
		return;
	default:
		log_err("console: cannot check the password: %s", err[0] ? err : strerror(-rc));
		send_error(rs, 500, err[0] ? err : "cannot check the password");
		return;
	}
	pthread_mutex_lock(&cc->lock);
	console_rate_clear(cc, rq->peer);
	s = *console_session_new(cc, rq->peer, rq->now_ms);
	pthread_mutex_unlock(&cc->lock);
	add_hdr(rs, "Set-Cookie", CONSOLE_COOKIE "=%s; Path=/; HttpOnly; Secure; SameSite=Strict",
		s.token);
	send_session(cc, &s, rs);
	note(rq->peer, "console login");
	sodium_memzero(&s, sizeof(s));
}

/* POST /logout, with the session's CSRF token. */
static void do_logout(struct console_core *cc, const struct console_req *rq,
		      struct console_resp *rs)
{
	struct console_session s;
	int v;

	if (strcmp(rq->method, "POST")) {
		add_hdr(rs, "Allow", "POST");
		send_error(rs, 405, "method not allowed here (use POST)");
		return;
	}
	if ((v = session_of(cc, rq, &s)) != SESS_OK) {
		refuse_session(v, rs);
		return;
	}
	if (!csrf_ok(rq, &s)) {
		note(rq->peer, "console logout without its CSRF token; refused");
		send_error(rs, 403, "missing or wrong CSRF token");
	} else {
		pthread_mutex_lock(&cc->lock);
		struct console_session *live = console_session_find(cc, s.token, rq->now_ms, NULL);
		if (live)
			console_session_end(live);
		pthread_mutex_unlock(&cc->lock);
		add_hdr(rs, "Set-Cookie", CONSOLE_COOKIE "=; Path=/; Max-Age=0; HttpOnly; Secure; "
			"SameSite=Strict");
		send_json(rs, 200, NULL);
		note(rq->peer, "console logout");
	}
	sodium_memzero(&s, sizeof(s));
}

/* GET /session: the CSRF token of a live session, or 401. */
static void do_session(struct console_core *cc, const struct console_req *rq,
		       struct console_resp *rs)
{
	struct console_session s;
	int v;

	if (strcmp(rq->method, "GET")) {
		add_hdr(rs, "Allow", "GET");
		send_error(rs, 405, "method not allowed here (use GET)");
		return;
	}
	if ((v = session_of(cc, rq, &s)) != SESS_OK)
		refuse_session(v, rs);
	else
		send_session(cc, &s, rs);
	sodium_memzero(&s, sizeof(s));
}

/* /api/v1/...: the admin API, behind the session and the CSRF token. */
static void do_api(struct console_core *cc, const struct console_req *rq,
		   struct console_resp *rs)
{
	struct console_session s;
	struct api_match m;
	json_t *out = NULL;
	char err[1024] = "";
	int v, rc;

	if ((v = session_of(cc, rq, &s)) != SESS_OK) {
		refuse_session(v, rs);
		goto out;
	}
	rc = api_route_match(rq->path + 4, &m, err, sizeof(err));
	if (m.route == API_R_NONE) {
		send_error(rs, 404, "no such route");
		goto out;
	}
	if (m.route == API_R_CONSOLE_PASSWD) {
		note(rq->peer, "console/passwd asked through the console; refused");
		send_error(rs, 403, "the console password is set with pristinectl console passwd only");
		goto out;
	}
	if (!api_route_allows(m.route, rq->method)) {
		const char *allow = api_route_allow(m.route);
		add_hdr(rs, "Allow", "%s", allow);
		snprintf(err, sizeof(err), "method not allowed here (use %s)", allow);
		send_error(rs, 405, err);
		goto out;
	}
	if (rc) {
		send_error(rs, 400, err);
		goto out;
	}
	if (strcmp(rq->method, "GET") && !csrf_ok(rq, &s)) {
		char sm[24];
		note(rq->peer, "console %s without its CSRF token; refused",
		     log_safe(rq->method, sm, sizeof(sm)));
		send_error(rs, 403, "missing or wrong CSRF token");
		goto out;
	}
	if (rq->len > CONSOLE_BODY_MAX) {
		send_error(rs, 413, "request body too large");
		goto out;
	}
	rc = api_dispatch(cc->ops, &m, rq->method, rq->body, rq->len, &out, err, sizeof(err));
	if (rc < 0) {
		json_decref(out);
		if (!err[0])
			snprintf(err, sizeof(err), "%s", strerror(-rc));
		send_error(rs, rc == -ENOSYS ? 501 : api_status_for(rc), err);
		goto out;
	}
	if (strcmp(rq->method, "GET")) {
		char sm[24], sp[128];
		log_info("console: %s %s by %s", log_safe(rq->method, sm, sizeof(sm)),
			 log_safe(rq->path, sp, sizeof(sp)), rq->peer);
	}
	send_json(rs, rc == API_ACCEPTED ? 202 : 200, out);
out:
	sodium_memzero(&s, sizeof(s));
}

/* Start an answer with the headers every answer has. */
static void answer_init(struct console_resp *rs)
{
	memset(rs, 0, sizeof(*rs));
	add_hdr(rs, "Content-Security-Policy",
		"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
	add_hdr(rs, "X-Content-Type-Options", "nosniff");
	add_hdr(rs, "X-Frame-Options", "DENY");
	add_hdr(rs, "Referrer-Policy", "no-referrer");
	add_hdr(rs, "Strict-Transport-Security", "max-age=31536000");
}

void console_answer_error(struct console_resp *rs, unsigned status, const char *msg)
{
	answer_init(rs);
	add_hdr(rs, "Cache-Control", "no-store");
	send_error(rs, status, msg);
}

void console_handle(struct console_core *cc, const struct console_req *rq, struct console_resp *rs)
{
	const char *p = rq->path;

	answer_init(rs);
	if (strncmp(p, "/assets/", 8) == 0) {
		serve_asset(rq, p + 8, rs, true);
		return;
	}
	/* Everything else is data: never kept by a cache. */
	add_hdr(rs, "Cache-Control", "no-store");
	if (strcmp(p, "/") == 0) {
		serve_asset(rq, "index.html", rs, false);
	} else if (strcmp(p, "/login") == 0) {
		do_login(cc, rq, rs);
	} else if (strcmp(p, "/logout") == 0) {
		do_logout(cc, rq, rs);
	} else if (strcmp(p, "/session") == 0) {
		do_session(cc, rq, rs);
	} else if (strncmp(p, "/api/v1/", 8) == 0 || strcmp(p, "/api/v1") == 0) {
		do_api(cc, rq, rs);
	} else {
		send_error(rs, 404, "no such page");
	}
}

void console_resp_free(struct console_resp *rs)
{
	free(rs->owned);
	rs->owned = NULL;
	rs->body = NULL;
	for (unsigned i = 0; i < rs->nhdr; i++)
		sodium_memzero(rs->hdr[i].value, sizeof(rs->hdr[i].value));
}

void console_core_init(struct console_core *cc, const struct control_ops *ops,
		       const struct console_auth *auth, unsigned idle_s)
{
	memset(cc, 0, sizeof(*cc));
	pthread_mutex_init(&cc->lock, NULL);
	cc->ops = ops;
	cc->auth = *auth;
	cc->idle_s = idle_s ? idle_s : 1800;
	cc->absolute_s = CONSOLE_ABSOLUTE_S;
	if (sodium_init() < 0)
		log_warn("console: libsodium did not initialise");
}

void console_core_fini(struct console_core *cc)
{
	sodium_memzero(cc->sessions, sizeof(cc->sessions));
	pthread_mutex_destroy(&cc->lock);
}
