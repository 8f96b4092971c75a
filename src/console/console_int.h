/*
 * console_int.h - the web console's pieces, inside src/console/ and its
 * tests (tests/unit/test_console.c, fuzz/fuzz_console.c).
 *
 * The request core (console_core.c) is a pure function of a request and
 * a clock: no sockets, no libmicrohttpd; the HTTP glue (console_http.c)
 * only feeds it and sends what it answers.  Sessions (console_session.c)
 * and the login rate limit (console_rate.c) are tables inside the core,
 * under its lock.  The password check (console_passwd.c) is a hook, so
 * tests drive the core with a fake.
 */
#ifndef PRISTINE_CONSOLE_INT_H
#define PRISTINE_CONSOLE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/api.h"

#define CONSOLE_BODY_MAX (64 * 1024)   /* request bodies; more is 413 */
#define CONSOLE_COOKIE "pristine_session"
#define CONSOLE_TOKEN_BYTES 32         /* session token and CSRF token: 256 bits */
#define CONSOLE_TOKEN_HEX (2 * CONSOLE_TOKEN_BYTES)
#define CONSOLE_SESSIONS_MAX 64        /* live logins; the least recently used goes */
#define CONSOLE_ABSOLUTE_S (12 * 3600) /* a login ends this long after it began */
#define CONSOLE_RATE_FAILS 5           /* failed logins per address ... */
#define CONSOLE_RATE_WINDOW_S 60       /* ... within this many seconds, then 429 */
#define CONSOLE_RATE_MAX 1024          /* addresses remembered */
#define CONSOLE_ADDR_MAX 64            /* a numeric address, as text */
#define CONSOLE_HDR_MAX 12

/* One request, as the glue read it.  Every string NUL-terminated. */
struct console_req {
	const char *method;       /* "GET", "POST", ... as sent */
	const char *path;         /* raw (still percent-encoded), no query string */
	const char *cookie;       /* the Cookie header, NULL = none */
	const char *csrf;         /* the X-CSRF-Token header, NULL = none */
	const char *peer;         /* the peer's numeric address */
	const char *body;         /* NUL-terminated when len > 0 */
	size_t len;
	int64_t now_ms;           /* a monotonic clock, milliseconds */
};

/* One answer.  body points into owned (freed by console_resp_free) or at
 * a compiled-in asset. */
struct console_resp {
	unsigned status;
	const char *type;         /* Content-Type */
	const char *body;
	size_t len;
	char *owned;
	unsigned nhdr;
	struct {
		const char *name;
		char value[192];
	} hdr[CONSOLE_HDR_MAX];
};

/* The password check, a hook so that tests need no libsodium hashing. */
struct console_auth {
	/* 0 right, -EACCES wrong, -ENOENT no password set yet, -EBUSY too
	 * many checks at once, another -errno on a failure (err set). */
	int (*verify)(void *ctx, const char *password, char *err, size_t errlen);
	/* Grows whenever the password changes: older sessions end. */
	unsigned (*generation)(void *ctx);
	void *ctx;
};

struct console_session {
	bool live;
	char token[CONSOLE_TOKEN_HEX + 1];
	char csrf[CONSOLE_TOKEN_HEX + 1];
	char peer[CONSOLE_ADDR_MAX];
	int64_t begun_ms, used_ms;
	unsigned generation;
};

struct console_rate {
	char peer[CONSOLE_ADDR_MAX];     /* "" = a free slot */
	int64_t fail_ms[CONSOLE_RATE_FAILS];   /* newest failures, a ring */
	unsigned next;                   /* where the next failure goes */
	bool logged;                     /* its current lockout was logged */
};

struct console_core {
	pthread_mutex_t lock;            /* sessions and rate */
	const struct control_ops *ops;
	struct console_auth auth;
	unsigned idle_s, absolute_s;
	struct console_session sessions[CONSOLE_SESSIONS_MAX];
	struct console_rate rate[CONSOLE_RATE_MAX];
};

/* console_core.c ---------------------------------------------------------- */

/* Set up cc (caller-allocated; it is large: allocate it, do not put it on
 * a thread's stack).  ops and auth are borrowed.  idle_s: the idle timeout. */
void console_core_init(struct console_core *cc, const struct control_ops *ops,
		       const struct console_auth *auth, unsigned idle_s);
/* Wipe every session and free what init made. */
void console_core_fini(struct console_core *cc);

/*
 * Answer one request (docs/console.md, the contract): assets, /login,
 * /logout, /session, /api/v1/....  Thread-safe; the password check and
 * the API's ops run outside the core's lock.  Always fills *rs (free it
 * with console_resp_free), with the security headers every answer has.
 */
void console_handle(struct console_core *cc, const struct console_req *rq, struct console_resp *rs);
void console_resp_free(struct console_resp *rs);
/* An answer {"error": msg} with status and the common headers, for what
 * the glue refuses before the core sees it (a body too large). */
void console_answer_error(struct console_resp *rs, unsigned status, const char *msg);

/* console_session.c ------------------------------------------------------- */

/*
 * Find the value of cookie name in a Cookie header ("a=1; name=v; b=2")
 * after *from (a cursor, start at 0; several cookies may share a name);
 * copy it to out (outlen bytes).  Returns 0, -ENOENT when there is no
 * (further) such cookie, -EINVAL when its value does not fit or holds
 * bytes a token never has (it is skipped: call again for the next).
 */
int console_cookie_next(const char *header, const char *name, size_t *from, char *out,
			size_t outlen);
/* Whether s is a token as we make them: CONSOLE_TOKEN_HEX lower-case hex digits. */
bool console_token_valid(const char *s);
/* CONSOLE_TOKEN_BYTES random bytes as hex into out (CONSOLE_TOKEN_HEX + 1 bytes). */
void console_token_make(char *out);
/* Constant-time comparison of two strings of CONSOLE_TOKEN_HEX digits. */
bool console_token_equal(const char *a, const char *b);

/* Begin a session for peer; the least recently used goes when the table
 * is full.  Lock held.  Never fails. */
struct console_session *console_session_new(struct console_core *cc, const char *peer,
					    int64_t now_ms);
/* The live session holding token, ended first if expired (idle,
 * absolute, or an older password), else NULL.  Lock held.
 * *expired: a session did hold it but has just ended (may be NULL). */
struct console_session *console_session_find(struct console_core *cc, const char *token,
					     int64_t now_ms, bool *expired);
/* End s (its tokens wiped).  Lock held. */
void console_session_end(struct console_session *s);

/* console_rate.c ---------------------------------------------------------- */

/*
 * Count a login attempt from peer (lock held; an IPv6 peer counts by
 * its /64): 0 when it may go on (it
 * counts as a failure until console_rate_clear), or -EAGAIN when peer
 * already failed CONSOLE_RATE_FAILS times within CONSOLE_RATE_WINDOW_S;
 * *retry_s is then how long until it may try again (>= 1), and
 * *first_refusal whether this is the first refusal of that lockout (to
 * log it once).
 */
int console_rate_attempt(struct console_core *cc, const char *peer, int64_t now_ms,
			 unsigned *retry_s, bool *first_refusal);
/* peer logged in: forget its failures (only its own).  Lock held. */
void console_rate_clear(struct console_core *cc, const char *peer);

/* console_passwd.c -------------------------------------------------------- */

/* The real hook: verify against STATE/console/passwd, at most
 * CONSOLE_VERIFY_MAX checks at once.  ctx: the state directory (a string). */
#define CONSOLE_VERIFY_MAX 2
int console_passwd_verify(void *ctx, const char *password, char *err, size_t errlen);
unsigned console_passwd_generation(void *ctx);

/* console_tls.c ----------------------------------------------------------- */

struct console_opts;
/*
 * The certificate and key the console serves, as PEM text (malloc'd, the
 * caller frees; the key wiped first): the configured files, checked to be
 * a certificate and its own key, or STATE/console/cert.pem and key.pem,
 * made at first start (ECDSA P-256, self-signed, 10 years, CN and
 * subjectAltName the host name and the listen address).  fpr gets the
 * certificate's SHA-256 fingerprint ("AB:CD:..."; 96 bytes).  0, or
 * -errno with msg set.
 */
int console_tls_load(const struct console_opts *o, char **cert, char **key, char *fpr,
		     size_t fprlen, char *msg, size_t msglen);

/* console_assets (generated into build/gen/console_assets.c by
 * tools/embed_assets.c from web/) ----------------------------------------- */

struct console_asset {
	const char *name;          /* "index.html", "app.js", ... */
	const char *type;          /* Content-Type */
	const unsigned char *data;
	size_t len;
};
extern const struct console_asset console_assets[];
extern const size_t console_nassets;
/* The asset called name, or NULL (an exact match in the table: nothing
 * outside it can be named). */
const struct console_asset *console_asset_find(const char *name);

#endif
