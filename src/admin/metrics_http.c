/*
 * metrics_http.c - the plain-HTTP listener Prometheus scrapes: GET (or
 * HEAD) /metrics answers the exposition text of a fresh stats document
 * (metrics.h); every other path 404, every other method 405, a request
 * with a body 413.  libmicrohttpd on its own small thread pool, with a
 * connection limit, a per-address limit, a timeout and a small
 * per-connection memory budget (headers only): a scraper or a stranger
 * never weighs on the data path.
 */
#include "admin/metrics.h"
#include "util/log.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define METRICS_THREADS 2
#define METRICS_MAX_CONNS 32
#define METRICS_PER_IP 8
#define METRICS_TIMEOUT_S 10
#define METRICS_CONN_MEM (16 * 1024)

struct metrics_http {
	struct MHD_Daemon *mhd;
	metrics_collect_fn collect;
	void *ctx;
};

static void metrics_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_info("metrics: %s", msg);
}

/* Queue body (taken: freed by libmicrohttpd) with status and type. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == 405)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *msg)
{
	char *s = strdup(msg);

	return s ? reply(c, status, "text/plain; charset=utf-8", s, strlen(s)) : MHD_NO;
}

static enum MHD_Result metrics_handler(void *cls, struct MHD_Connection *c, const char *url,
				       const char *method, const char *version, const char *upload,
				       size_t *upload_len, void **con_cls)
{
	struct metrics_http *m = cls;
	json_t *stats = NULL;
	char *body;
	size_t len;

	(void)version; (void)upload;
	if (!*con_cls) {
		/* Headers only: refuse before any body is read. */
		*con_cls = (void *)1;
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			return text(c, 405, "GET /metrics\n");
		if (strcmp(url, "/metrics"))
			return text(c, 404, "pristine metrics: GET /metrics\n");
		return MHD_YES;
	}
	if (*upload_len) {
		*con_cls = (void *)2;
		*upload_len = 0;         /* dropped */
		return MHD_YES;
	}
	if (*con_cls == (void *)2)
		return text(c, 413, "no request body here\n");
	if (m->collect(m->ctx, &stats) || !stats)
		return text(c, 500, "cannot collect the statistics\n");
	body = metrics_text(stats, &len);
	json_decref(stats);
	if (!body)
		return text(c, 500, "out of memory\n");
	return reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

int metrics_http_start(int fd, const char *listen, metrics_collect_fn collect, void *ctx,
		       struct metrics_http **out)
{
	struct metrics_http *m = calloc(1, sizeof(*m));

	if (!m) {
		close(fd);
		log_err("metrics: out of memory");
		return -1;
	}
	m->collect = collect;
	m->ctx = ctx;
	m->mhd = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG,
				  0, NULL, NULL, metrics_handler, m,
				  MHD_OPTION_EXTERNAL_LOGGER, metrics_mhd_log, NULL,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_THREAD_POOL_SIZE, (unsigned)METRICS_THREADS,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_MAX_CONNS,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICS_PER_IP,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_CONN_MEM,
				  MHD_OPTION_END);
	if (!m->mhd) {
		log_err("metrics: cannot start the HTTP server on %s", listen);
		close(fd);
		free(m);
		return -1;
	}
	log_notice("metrics on http://%s/metrics", listen);
	*out = m;
	return 0;
}

void metrics_http_stop(struct metrics_http *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->mhd);
	free(m);
}
