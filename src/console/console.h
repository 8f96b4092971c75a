/*
 * console.h - the web console's HTTPS server (docs/console.md): a
 * single-page app compiled into pristined (web/), a login with a password
 * set by `pristinectl console passwd`, sessions with a CSRF token, and
 * /api/v1/... passed through to the admin API's own dispatch
 * (admin/api_call.h), so the console never gives more than the API.
 *
 * Off unless [server] console-listen is set.  A configured console that
 * cannot start (bad certificate, unusable state directory) is a start-up
 * error, like the other listeners.
 *
 * Files, all in STATE/console/ (0700), all 0600:
 *   passwd     the password as libsodium's crypto_pwhash_str (Argon2id)
 *   cert.pem   the self-signed certificate made at first start when no
 *   key.pem    console-cert/console-key are configured; reused afterwards
 */
#ifndef PRISTINE_CONSOLE_H
#define PRISTINE_CONSOLE_H

#include <jansson.h>
#include <stddef.h>

#include "admin/api.h"

#define CONSOLE_DIR "console"
#define CONSOLE_PASSWD_FILE "passwd"
#define CONSOLE_PASSWD_MIN 8        /* shortest password accepted */
#define CONSOLE_PASSWD_MAX 1024     /* longest (bytes) */

struct console_opts {
	const char *listen;          /* "ADDR:PORT" as configured, for messages and the cert */
	const char *cert, *key;      /* PEM files, both NULL/"" = self-signed in STATE/console */
	const char *state;           /* the state directory, absolute */
	unsigned idle_timeout_s;     /* console-session-timeout */
};

struct console;

/*
 * Serve the console on fd, a bound, listening TCP socket (taken over: it
 * is closed on failure too).  Loads or makes the certificate (logging its
 * SHA-256 fingerprint); ops is borrowed and must outlive the console.
 * Returns 0 and *out, or -errno with the reason logged.
 */
int console_start(int fd, const struct console_opts *o, const struct control_ops *ops,
		  struct console **out);

/* Stop serving (requests in progress finish) and free everything.  NULL is a no-op. */
void console_stop(struct console *c);

/*
 * The admin API's console_passwd op (POST /v1/console/passwd, body
 * {"password": str}): hash the password (Argon2id, libsodium's
 * OPSLIMIT/MEMLIMIT_INTERACTIVE) and replace STATE/console/passwd
 * atomically.  ctx is the daemon's struct daemon_ctx (admin/ops.h; its
 * state directory).  Every console session begun before ends.  0 with
 * *out = {}, or -EINVAL (too short, too long, not a string) / -errno
 * with err set.
 */
int console_passwd_op(void *ctx, json_t *body, json_t **out, char *err, size_t errlen);

#endif
