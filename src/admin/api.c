/*
 * api.c - the admin API server: HTTP/1.1 + JSON on a Unix socket, with
 * libmicrohttpd doing the HTTP and jansson the JSON (see api.h).
 *
 * Threading: libmicrohttpd runs a small pool of internal threads
 * (API_THREADS), each polling its share of the connections with epoll.
 * An idle or half-open connection then costs a file descriptor and a
 * memory pool, not a thread, so a flood of silent connections up to
 * API_MAX_CONNS leaves room for the admin's own request; beyond that the
 * kernel backlog holds the rest until idle ones time out (API_TIMEOUT_S).
 * Ops may block on daemon locks; that stalls one pool thread's
 * connections for the duration, which is acceptable for admin calls and
 * cheaper than a thread per connection under a flood.
 *
 * Floods (tests/faults/test_admin_flood.py): the connection limit alone
 * let 256 connections that trickle a header byte now and then hold every
 * slot for as long as they liked, so a stuck or runaway script pinned the
 * API.  The guards of conn_guard.h, shared with the web console, close
 * them: a request must arrive whole within API_REQUEST_S of the
 * connection's start or of its previous answer; and a process
 * (SO_PEERCRED pid) keeps only its API_PER_PEER newest connections, the
 * others closing once idle for API_GRACE_MS.  A request being answered is
 * never cut.
 *
 * Limits, enforced before anything is buffered: request bodies over
 * API_BODY_MAX are refused with 413 when declared by Content-Length, and
 * cut off by closing the connection when sent chunked; headers are
 * bounded by the per-connection memory pool (API_CONN_MEM).
 *
 * Peers: the socket file is root's, mode 0600, and besides that every
 * request is checked against the peer's credentials (SO_PEERCRED): only
 * uid 0, and the uid that started the daemon when that is not root (a
 * developer's own daemon), are served.  A daemon that dropped root
 * (privs.h) does not serve its own user: a process running as that user
 * (a qemu-img job, say) is not an administrator.  Others get 403 and the
 * refusal is logged.
 *
 * Paths are routed undecoded (our unescape callback leaves them alone)
 * and the {id} segment is decoded by api_route.c, so an encoded '/' or
 * NUL can neither change the route nor truncate the id.
 */
#include "admin/api.h"
#include "admin/api_call.h"
#include "admin/api_route.h"
#include "admin/conn_guard.h"
#include "util/log.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <fcntl.h>

#define API_BODY_MAX   (64 * 1024)
#define API_MAX_CONNS  256
#define API_TIMEOUT_S  5
#define API_THREADS    4
#define API_CONN_MEM   (32 * 1024)
#define API_BACKLOG    128
#define API_PER_PEER   16       /* connections one process keeps when it hoards */
#define API_GRACE_MS   1000     /* ... beyond which its idle ones older than this close */
#define API_REQUEST_S  10       /* to send a whole request */

struct api {
	struct MHD_Daemon *mhd;
	const struct control_ops *ops;
	char *path;
	dev_t dev;	/* identity of our socket file, so api_stop removes */
	ino_t ino;	/* only the file we created */
	uid_t owner;	/* who started the daemon: served besides root */
	struct conn_guard guard;   /* flood guards (see the file header) */
};

/* Per-request state, from the first callback to request completion. */
struct api_req {
	struct api_match m;
	int match_rc;		/* api_route_match result */
	char *body;		/* received body, NUL-terminated; owned */
	size_t len;
};

/*
 * Send body (a JSON value, reference stolen; NULL means {}) with the
 * given status.  allow, when non-NULL, becomes an Allow header (405).
 * Returns MHD's verdict.
 */
static enum MHD_Result api_send(struct MHD_Connection *c, unsigned status, json_t *body,
				const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret = MHD_NO;
	char *text;

	if (!body)
		body = json_object();
	text = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(body);
	if (!text) {
		/* An op handed back something unprintable, or no memory. */
		status = 500;
		text = strdup("{\"error\":\"cannot encode the response\"}");
		if (!text)
			goto out;
	}
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		goto out;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
out:
	free(text);
	return ret;
}

/*
 * Send {"error": msg} with status, and log it at notice level.  msg is
 * daemon or client text: it is encoded by jansson (which needs UTF-8),
 * so invalid text is replaced by a sanitized copy.
 */
static enum MHD_Result api_send_error(struct MHD_Connection *c, const char *method,
				      const char *url, unsigned status, const char *msg,
				      const char *allow)
{
	char su[128], sm[256], sme[24];
	json_t *s = json_string(msg);

	log_safe(msg, sm, sizeof(sm));
	if (!s)
		s = json_string(sm);
	log_notice("api: %s %s -> %u: %s", log_safe(method, sme, sizeof(sme)),
		   log_safe(url, su, sizeof(su)), status, sm);
	return api_send(c, status, json_pack("{s:o*}", "error", s), allow);
}

/*
 * First callback of a request: route it, check the method and the
 * declared body size.  Either queues an error response, or stores a new
 * api_req in *con_cls and lets the body come in.
 */
static enum MHD_Result api_begin(struct MHD_Connection *c, const char *url,
				 const char *method, void **con_cls)
{
	struct api_req *r;
	const char *want, *cl;
	char err[128];

	r = calloc(1, sizeof(*r));
	if (!r)
		return MHD_NO;
	r->match_rc = api_route_match(url, &r->m, err, sizeof(err));
	if (r->m.route == API_R_NONE) {
		free(r);
		return api_send_error(c, method, url, 404, "no such route", NULL);
	}
	want = api_route_allow(r->m.route);
	if (!api_route_allows(r->m.route, method)) {
		free(r);
		snprintf(err, sizeof(err), "method not allowed here (use %s)", want);
		return api_send_error(c, method, url, 405, err, want);
	}
	if (r->match_rc) {
		free(r);
		return api_send_error(c, method, url, 400, err, NULL);
	}
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && (strlen(cl) > 9 || strtoul(cl, NULL, 10) > API_BODY_MAX)) {
		free(r);
		snprintf(err, sizeof(err), "request body larger than %d bytes", API_BODY_MAX);
		return api_send_error(c, method, url, 413, err, NULL);
	}
	*con_cls = r;
	return MHD_YES;
}

/*
 * SO_PEERCRED check, before anything of the request is looked at: 0 when
 * the peer is root or the daemon's starter, else a 403 response is
 * queued (and the connection closed after it) and 1 returned with
 * *ret set to MHD's verdict.
 */
static int api_refuse_peer(struct api *api, struct MHD_Connection *c, enum MHD_Result *ret)
{
	const union MHD_ConnectionInfo *ci;
	struct MHD_Response *resp;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char text[256];

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
	    len == sizeof(cr)) {
		if (cr.uid == 0 || cr.uid == api->owner)
			return 0;
		log_warn("api: refused a request from uid %u (pid %d): the admin API is root's only",
			 (unsigned)cr.uid, (int)cr.pid);
		snprintf(text, sizeof(text), "{\"error\":\"refused: pristined's admin API is for root "
			 "only (this is uid %u); run pristinectl as root\"}", (unsigned)cr.uid);
	} else {
		log_warn("api: refused a request: cannot read the peer's credentials");
		snprintf(text, sizeof(text), "{\"error\":\"refused: pristined cannot tell who is "
			 "asking\"}");
	}
	*ret = MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
	if (resp) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
		*ret = MHD_queue_response(c, 403, resp);
		MHD_destroy_response(resp);
	}
	return 1;
}

/* Append a body chunk to r; MHD_NO (drop the connection) past the cap. */
static enum MHD_Result api_take_body(struct api_req *r, const char *data, size_t size,
				     const char *method, const char *url)
{
	char su[128];
	char *nb;

	if (size > API_BODY_MAX - r->len) {
		log_notice("api: %s: body over %d bytes, closing the connection",
			   log_safe(url, su, sizeof(su)), API_BODY_MAX);
		return MHD_NO;
	}
	nb = realloc(r->body, r->len + size + 1);
	if (!nb)
		return MHD_NO;
	memcpy(nb + r->len, data, size);
	r->len += size;
	nb[r->len] = '\0';
	r->body = nb;
	return MHD_YES;
}

/*
 * MHD_OPTION_NOTIFY_CONNECTION: the guards track connections by the
 * peer process (SO_PEERCRED pid).
 */
static void api_notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
			    enum MHD_ConnectionNotificationCode toe)
{
	struct api *api = cls;
	const union MHD_ConnectionInfo *ci;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char text[32] = "";
	pid_t pid = 0;

	if (toe != MHD_CONNECTION_NOTIFY_CLOSED) {
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
		    len == sizeof(cr))
			pid = cr.pid;
		snprintf(text, sizeof(text), "pid %d", (int)pid);
	}
	conn_guard_notify(&api->guard, c, socket_context, toe, (uint64_t)pid, text);
}

/* libmicrohttpd's access handler: the whole request life cycle. */
static enum MHD_Result api_handler(void *cls, struct MHD_Connection *c, const char *url,
				   const char *method, const char *version,
				   const char *upload_data, size_t *upload_data_size,
				   void **con_cls)
{
	struct api *api = cls;
	struct api_req *r = *con_cls;
	json_t *out = NULL;
	char err[1024] = "";   /* a refusal says its cause and what lifts it */
	char su[128], sme[24];
	unsigned status;
	int rc;

	if (!r) {
		enum MHD_Result ret;
		if (api_refuse_peer(api, c, &ret))
			return ret;
		return api_begin(c, url, method, con_cls);
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		return api_take_body(r, upload_data, n, method, url);
	}
	conn_guard_busy(&api->guard, c, true);
	rc = api_dispatch(api->ops, &r->m, method, r->body, r->len, &out, err, sizeof(err));
	if (rc < 0) {
		json_decref(out);
		if (!err[0])
			snprintf(err, sizeof(err), "%s", strerror(-rc));
		status = rc == -ENOSYS ? 501 : api_status_for(rc);
		return api_send_error(c, method, url, status, err, NULL);
	}
	status = rc == API_ACCEPTED ? 202 : 200;
	log_debug("api: %s %s -> %u", log_safe(method, sme, sizeof(sme)),
		  log_safe(url, su, sizeof(su)), status);
	return api_send(c, status, out, NULL);
}

/* Request finished (answered, failed or dropped): free its state. */
static void api_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			  enum MHD_RequestTerminationCode toe)
{
	struct api_req *r = *con_cls;

	if (r) {
		free(r->body);
		free(r);
		*con_cls = NULL;
	}
	conn_guard_busy(&((struct api *)cls)->guard, c, false);
}

/*
 * Unescape callback that leaves URLs as sent: routing splits segments
 * first and decodes the id itself (api_route.c).  Returns the length.
 */
static size_t api_no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

/* libmicrohttpd's own diagnostics, at debug level. */
static void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_debug("api: microhttpd: %s", buf);
}

/*
 * Make the listening socket at path: refuse a path that exists and is
 * not a socket, or a socket some process still serves; replace a stale
 * socket file.  The file is made 0600 between bind and listen, so no one
 * can connect while it has the umask's mode.  Returns the fd, or -errno
 * with the reason logged; *dev and *ino identify the file created.
 */
static int api_listen_open(const char *path, dev_t *dev, ino_t *ino)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd = -1, probe = -1, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("api: socket path too long (at most %zu bytes): %s",
			sizeof(sa.sun_path) - 1, path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("api: %s exists and is not a socket; not replacing it", path);
			return -EEXIST;
		}
		/* Non-blocking: a live server with a full backlog must not hang us. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (probe < 0) {
			rc = -errno;
			goto fail;
		}
		if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN) {
			log_err("api: %s is in use by a running process (another pristined?)", path);
			rc = -EADDRINUSE;
			goto out;
		}
		if (errno != ECONNREFUSED) {
			rc = -errno;
			goto fail;
		}
		if (unlink(path) && errno != ENOENT) {
			rc = -errno;
			goto fail;
		}
		log_info("api: replaced stale socket %s", path);
	} else if (errno != ENOENT) {
		rc = -errno;
		goto fail;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto fail;
	}
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0 || listen(fd, API_BACKLOG) < 0) {
		rc = -errno;
		unlink(path);
		goto fail;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	rc = fd;
	fd = -1;
	goto out;
fail:
	log_err("api: socket %s: %s", path, strerror(-rc));
out:
	if (probe >= 0)
		close(probe);
	if (fd >= 0)
		close(fd);
	return rc;
}

int api_start(const char *path, const struct control_ops *ops, struct api **out)
{
	struct api *api;
	int fd = -1, rc;

	api = calloc(1, sizeof(*api));
	if (api) {
		api->guard = (struct conn_guard){ .who = "api", .request_s = API_REQUEST_S,
						  .per_key = API_PER_PEER, .grace_ms = API_GRACE_MS };
		conn_guard_start(&api->guard);
	}
	if (!api || !(api->path = strdup(path))) {
		rc = -ENOMEM;
		goto err;
	}
	api->ops = ops;
	api->owner = getuid();
	fd = api_listen_open(path, &api->dev, &api->ino);
	if (fd < 0) {
		rc = fd;
		goto err;
	}
	api->mhd = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG,
		0, NULL, NULL, api_handler, api,
		MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)API_THREADS,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONN_MEM,
		MHD_OPTION_NOTIFY_COMPLETED, api_completed, api,
		MHD_OPTION_NOTIFY_CONNECTION, api_notify_conn, api,
		MHD_OPTION_UNESCAPE_CALLBACK, api_no_unescape, NULL,
		MHD_OPTION_END);
	if (!api->mhd) {
		log_err("api: cannot start the HTTP server on %s", path);
		rc = -EIO;
		goto err;
	}
	log_info("api: serving on %s", path);
	*out = api;
	return 0;
err:
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	if (api) {
		free(api->path);
		conn_guard_stop(&api->guard);
		conn_guard_destroy(&api->guard);
	}
	free(api);
	return rc;
}

void api_stop(struct api *api)
{
	struct stat st;

	if (!api)
		return;
	conn_guard_stop(&api->guard);
	/* Joins the pool threads (requests in progress finish) and closes
	 * the listening socket (and every connection: NOTIFY_CLOSED takes
	 * each out of the guards' list). */
	MHD_stop_daemon(api->mhd);
	conn_guard_destroy(&api->guard);
	if (lstat(api->path, &st) == 0 && st.st_dev == api->dev && st.st_ino == api->ino)
		unlink(api->path);
	free(api->path);
	free(api);
}
