/*
 * console_http.c - the console's HTTPS server: libmicrohttpd with its
 * GnuTLS support, feeding each whole request to the pure core
 * (console_core.c) and sending what it answers.
 *
 * Limits, as the admin socket's (admin/api.c) but keyed by address:
 * CONSOLE_MAX_CONNS connections, CONSOLE_PER_IP per address (refused at
 * accept), a CONSOLE_CONN_MEM pool per connection for the request line
 * and headers (larger headers are refused by libmicrohttpd with 431),
 * bodies over CONSOLE_BODY_MAX refused with 413 when declared and cut off
 * when sent chunked, an idle timeout, and the guards of
 * admin/conn_guard.h: a whole request (TLS handshake included) within
 * CONSOLE_REQUEST_S of the connection's start or its previous answer, and
 * an address keeps only its CONSOLE_PER_KEY newest connections once they
 * sit idle (slow clients that trickle bytes, or hoard connections, gain
 * nothing).
 *
 * Paths reach the core as sent (our unescape callback leaves them), so
 * an encoded '/' cannot change a route, and the admin API's router
 * decodes ids itself.
 */
#include "console/console.h"
#include "console/console_int.h"
#include "admin/conn_guard.h"
#include "util/hash.h"
#include "util/log.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONSOLE_MAX_CONNS 256
#define CONSOLE_PER_IP 32         /* hard cap at accept ... */
#define CONSOLE_PER_KEY 16        /* ... the idle beyond this newest ones close */
#define CONSOLE_GRACE_MS 1000
#define CONSOLE_TIMEOUT_S 10      /* idle */
#define CONSOLE_REQUEST_S 10      /* a whole request, handshake included */
#define CONSOLE_THREADS 4
#define CONSOLE_CONN_MEM (32 * 1024)

struct console {
	struct MHD_Daemon *mhd;
	struct console_core *core;
	char *state;
	char *cert, *key;
	struct conn_guard guard;
};

/* Per request: its body so far. */
struct console_body {
	char *data;
	size_t len;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void peer_of(struct MHD_Connection *c, char *out, size_t len);

/* MHD_OPTION_NOTIFY_CONNECTION: the guards track connections by address. */
static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
			enum MHD_ConnectionNotificationCode toe)
{
	struct console *cs = cls;
	char peer[CONSOLE_ADDR_MAX] = "", text[CONSOLE_ADDR_MAX + 16] = "";
	uint64_t key = 0;

	if (toe != MHD_CONNECTION_NOTIFY_CLOSED) {
		peer_of(c, peer, sizeof(peer));
		key = fnv1a(peer);
		snprintf(text, sizeof(text), "address %s", peer);
	}
	conn_guard_notify(&cs->guard, c, socket_context, toe, key, text);
}

/* Send what the core answered. */
static enum MHD_Result send_resp(struct MHD_Connection *c, const struct console_resp *rs,
				 bool close_after)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(rs->len, (void *)rs->body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rs->type ? rs->type : "text/plain");
	for (unsigned i = 0; i < rs->nhdr; i++)
		MHD_add_response_header(r, rs->hdr[i].name, rs->hdr[i].value);
	if (close_after)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(c, rs->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The peer's numeric address into out. */
static void peer_of(struct MHD_Connection *c, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(out, len, "?");
	if (!sa)
		return;
	if (getnameinfo(sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
			sizeof(struct sockaddr_in), out, (socklen_t)len, NULL, 0, NI_NUMERICHOST))
		snprintf(out, len, "?");
	/* An IPv4 peer on a dual-stack socket is the same address as on a v4 one. */
	if (strncmp(out, "::ffff:", 7) == 0 && strchr(out + 7, '.'))
		memmove(out, out + 7, strlen(out + 7) + 1);
}

/* An early refusal (413 before the body), with the headers every answer has. */
static enum MHD_Result refuse_early(struct MHD_Connection *c, unsigned status, const char *msg)
{
	struct console_resp rs;
	enum MHD_Result ret;

	console_answer_error(&rs, status, msg);
	ret = send_resp(c, &rs, true);
	console_resp_free(&rs);
	return ret;
}

/*
 * libmicrohttpd's access handler: the first call checks the declared body
 * size and sets up the body buffer, the next ones take the body (up to
 * CONSOLE_BODY_MAX), the last hands the whole request to the core and
 * queues its answer.
 */
static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version,
			       const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct console *cs = cls;
	struct console_body *b = *con_cls;
	struct console_req rq;
	struct console_resp rs;
	char peer[CONSOLE_ADDR_MAX];
	enum MHD_Result ret;

	if (!b) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && (strlen(cl) > 9 || strtoul(cl, NULL, 10) > CONSOLE_BODY_MAX))
			return refuse_early(c, 413, "request body too large");
		if (!(b = calloc(1, sizeof(*b))))
			return MHD_NO;
		*con_cls = b;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		char *nb;

		*upload_data_size = 0;
		if (n > CONSOLE_BODY_MAX - b->len) {
			log_notice("console: a request body over %d bytes; closing the connection",
				   CONSOLE_BODY_MAX);
			return MHD_NO;
		}
		if (!(nb = realloc(b->data, b->len + n + 1)))
			return MHD_NO;
		memcpy(nb + b->len, upload_data, n);
		b->len += n;
		nb[b->len] = '\0';
		b->data = nb;
		return MHD_YES;
	}
	conn_guard_busy(&cs->guard, c, true);
	peer_of(c, peer, sizeof(peer));
	rq = (struct console_req){
		.method = method, .path = url, .peer = peer, .body = b->data, .len = b->len,
		.cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE),
		.csrf = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token"),
		.now_ms = mono_ms(),
	};
	console_handle(cs->core, &rq, &rs);
	ret = send_resp(c, &rs, false);
	console_resp_free(&rs);
	return ret;
}

/* Request over: wipe and free its body (it may hold a password). */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct console_body *b = *con_cls;

	if (b) {
		if (b->data) {
			memset(b->data, 0, b->len);
			free(b->data);
		}
		free(b);
		*con_cls = NULL;
	}
	conn_guard_busy(&((struct console *)cls)->guard, c, false);
}

/* Leave URLs as sent (see the file header); returns the length. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

/* libmicrohttpd's own diagnostics (TLS handshake failures...), at debug level. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("console: %s", buf);
}

int console_start(int fd, const struct console_opts *o, const struct control_ops *ops,
		  struct console **out)
{
	struct console_auth auth = { .verify = console_passwd_verify,
				     .generation = console_passwd_generation };
	struct console *cs;
	char fpr[100], msg[512] = "";
	int rc;

	if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		log_err("console: this libmicrohttpd has no TLS support (GnuTLS); the console "
			"cannot start");
		close(fd);
		return -ENOTSUP;
	}
	cs = calloc(1, sizeof(*cs));
	if (!cs || !(cs->core = malloc(sizeof(*cs->core))) || !(cs->state = strdup(o->state))) {
		rc = -ENOMEM;
		log_err("console: out of memory");
		goto err;
	}
	cs->guard = (struct conn_guard){ .who = "console", .request_s = CONSOLE_REQUEST_S,
					 .per_key = CONSOLE_PER_KEY, .grace_ms = CONSOLE_GRACE_MS };
	conn_guard_start(&cs->guard);
	auth.ctx = cs->state;
	console_core_init(cs->core, ops, &auth, o->idle_timeout_s);
	if ((rc = console_tls_load(o, &cs->cert, &cs->key, fpr, sizeof(fpr), msg, sizeof(msg)))) {
		log_err("console: %s", msg[0] ? msg : strerror(-rc));
		goto err_core;
	}
	cs->mhd = MHD_start_daemon(
		MHD_USE_TLS | MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG,
		0, NULL, NULL, handler, cs,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_HTTPS_MEM_CERT, cs->cert,
		MHD_OPTION_HTTPS_MEM_KEY, cs->key,
		MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)CONSOLE_THREADS,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONSOLE_MAX_CONNS,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CONSOLE_PER_IP,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONSOLE_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONSOLE_CONN_MEM,
		MHD_OPTION_NOTIFY_COMPLETED, completed, cs,
		MHD_OPTION_NOTIFY_CONNECTION, notify_conn, cs,
		MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
		MHD_OPTION_END);
	if (!cs->mhd) {
		log_err("console: cannot start the HTTPS server on %s (certificate or key refused?)",
			o->listen);
		rc = -EIO;
		goto err_core;
	}
	fd = -1;   /* MHD's now */
	log_notice("console: https://%s/ (certificate SHA-256 %s)", o->listen, fpr);
	*out = cs;
	return 0;
err_core:
	console_core_fini(cs->core);
	conn_guard_stop(&cs->guard);
	conn_guard_destroy(&cs->guard);
err:
	if (fd >= 0)
		close(fd);
	if (cs) {
		free(cs->core);
		free(cs->state);
		free(cs->cert);
		if (cs->key) {
			memset(cs->key, 0, strlen(cs->key));
			free(cs->key);
		}
	}
	free(cs);
	return rc;
}

void console_stop(struct console *cs)
{
	if (!cs)
		return;
	conn_guard_stop(&cs->guard);
	MHD_stop_daemon(cs->mhd);
	conn_guard_destroy(&cs->guard);
	console_core_fini(cs->core);
	free(cs->core);
	free(cs->state);
	free(cs->cert);
	memset(cs->key, 0, strlen(cs->key));
	free(cs->key);
	free(cs);
}
