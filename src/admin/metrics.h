/*
 * metrics.h - Prometheus metrics: the stats document of GET /v1/stats
 * (admin/ops_stats.c) turned into the text exposition format 0.0.4, and
 * the small plain-HTTP server that answers GET /metrics with it
 * (metrics_http.c; [server] metrics-listen, off when empty).
 * docs/metrics.md lists every metric, its type, unit and labels.
 */
#ifndef PRISTINE_METRICS_H
#define PRISTINE_METRICS_H

#include <jansson.h>
#include <stddef.h>

/*
 * The exposition text of stats (a /v1/stats document, borrowed): HELP and
 * TYPE lines, counters with _total, histograms with cumulative _bucket
 * lines (le="+Inf" last), _sum and _count; label values escaped (\\, \",
 * \n).  Fields missing from stats are left out.  Returns a malloc'd
 * NUL-terminated string (the caller frees it; *len its length when len is
 * not NULL), or NULL when out of memory.
 */
char *metrics_text(const json_t *stats, size_t *len);

/* What the HTTP server asks for at every scrape: a new stats document in
 * *out (the server frees it), 0 or -errno. */
typedef int (*metrics_collect_fn)(void *ctx, json_t **out);

struct metrics_http;

/*
 * Serve GET /metrics on the bound, listening socket fd (taken: closed on
 * every path) for listen (ADDR:PORT, for the log); every other path is
 * 404, every other method 405, and requests carry no body.  A few
 * threads, a connection limit and a timeout keep it from ever weighing on
 * the data path.  collect and ctx are borrowed until metrics_http_stop.
 * 0 and *out, or -1 (logged).
 */
int metrics_http_start(int fd, const char *listen, metrics_collect_fn collect, void *ctx,
		       struct metrics_http **out);
/* Stop serving and free m (NULL: nothing). */
void metrics_http_stop(struct metrics_http *m);

#endif
