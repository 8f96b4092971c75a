/*
 * metrics.c - a /v1/stats document as Prometheus' text exposition format
 * 0.0.4 (see metrics.h; docs/metrics.md lists the metrics).
 *
 * Each metric family is written once, all its samples together (the
 * format wants them grouped): per-client families loop over the clients,
 * per-image ones over the images.  A histogram in the stats document has
 * per-bucket counts; here they are summed into Prometheus' cumulative
 * buckets, +Inf last, equal to _count.
 */
#include "admin/metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text buffer; on ENOMEM it stays failed and text is freed. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

/* Append s as a label value: \ " and newline escaped as the format says. */
static void sb_label(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			sb_printf(b, "\\\\");
		else if (*s == '"')
			sb_printf(b, "\\\"");
		else if (*s == '\n')
			sb_printf(b, "\\n");
		else
			sb_printf(b, "%c", *s);
	}
}

/* Append a float the way Prometheus writes them (shortest sensible form). */
static void sb_float(struct sbuf *b, double v)
{
	sb_printf(b, "%.15g", v);
}

static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * The label set of a client ({client="..",image=".."}) or an image
 * ({image=".."}), plus extra ("le=\"0.5\"" or NULL), into b.
 */
static void labels(struct sbuf *b, json_t *who, bool is_client, const char *extra)
{
	const char *img = json_string_value(json_object_get(who, is_client ? "image" : "name"));
	bool any = false;

	sb_printf(b, "{");
	if (is_client) {
		const char *name = json_string_value(json_object_get(who, "name"));
		sb_printf(b, "client=\"");
		sb_label(b, name ? name : "");
		sb_printf(b, "\"");
		any = true;
	}
	sb_printf(b, "%simage=\"", any ? "," : "");
	sb_label(b, img ? img : "");
	sb_printf(b, "\"%s%s}", extra ? "," : "", extra ? extra : "");
}

/* One sample of a number field (integer or real) of who, when present. */
static void sample(struct sbuf *b, const char *name, json_t *who, bool is_client, const char *key)
{
	json_t *v = json_object_get(who, key);

	if (!json_is_number(v))
		return;
	sb_printf(b, "%s", name);
	labels(b, who, is_client, NULL);
	if (json_is_integer(v))
		sb_printf(b, " %lld\n", (long long)json_integer_value(v));
	else {
		sb_printf(b, " ");
		sb_float(b, json_real_value(v));
		sb_printf(b, "\n");
	}
}

/* A histogram {"le":[...], "counts":[... +Inf], "sum", "count"} of who. */
static void histogram(struct sbuf *b, const char *name, json_t *who, bool is_client, const char *key)
{
	json_t *h = json_object_get(who, key), *le, *counts;
	uint64_t cum = 0;
	char extra[64];

	if (!json_is_object(h))
		return;
	le = json_object_get(h, "le");
	counts = json_object_get(h, "counts");
	if (!json_is_array(le) || !json_is_array(counts) ||
	    json_array_size(counts) != json_array_size(le) + 1)
		return;
	for (size_t i = 0; i <= json_array_size(le); i++) {
		cum += (uint64_t)json_integer_value(json_array_get(counts, i));
		if (i < json_array_size(le))
			snprintf(extra, sizeof(extra), "le=\"%.15g\"", json_number_value(json_array_get(le, i)));
		else
			snprintf(extra, sizeof(extra), "le=\"+Inf\"");
		sb_printf(b, "%s_bucket", name);
		labels(b, who, is_client, extra);
		sb_printf(b, " %llu\n", (unsigned long long)cum);
	}
	sb_printf(b, "%s_sum", name);
	labels(b, who, is_client, NULL);
	sb_printf(b, " ");
	sb_float(b, json_number_value(json_object_get(h, "sum")));
	sb_printf(b, "\n%s_count", name);
	labels(b, who, is_client, NULL);
	sb_printf(b, " %llu\n", (unsigned long long)cum);
}

/* A metric of every client or every image: name, type, help, field. */
struct fam {
	const char *name, *type, *help, *key;
};

static const struct fam client_fams[] = {
	{ "pristine_read_bytes_total", "counter", "Bytes a PC read (successful READ commands).", "read_bytes" },
	{ "pristine_read_commands_total", "counter", "READ commands of a PC.", "read_cmds" },
	{ "pristine_write_bytes_total", "counter", "Bytes a PC wrote (successful WRITE commands).", "write_bytes" },
	{ "pristine_write_commands_total", "counter", "WRITE commands of a PC.", "write_cmds" },
	{ "pristine_io_errors_total", "counter", "Commands of a PC that the store failed (MEDIUM ERROR, HARDWARE ERROR, DATA PROTECT).", "errors" },
	{ "pristine_read_latency_seconds", "histogram", "Time from a PC's READ command to its status.", "read_latency" },
	{ "pristine_write_latency_seconds", "histogram", "Time from a PC's WRITE command to its status.", "write_latency" },
	{ "pristine_sessions", "gauge", "iSCSI sessions a PC has open.", "sessions" },
	{ "pristine_overlay_bytes", "gauge", "Bytes a PC's overlay holds.", "overlay_bytes" },
	{ "pristine_overlay_quota_bytes", "gauge", "A PC's overlay quota in bytes (0 = none).", "quota_bytes" },
	{ "pristine_boots_total", "counter", "Boots of a PC (boot script served, or a login with no session).", "boots" },
	{ "pristine_boot_duration_seconds", "histogram", "How long a PC's boots took: script or first read to the last read before 5 s without reads.", "boot_duration" },
	{ "pristine_last_boot_seconds", "gauge", "How long a PC's last finished boot took.", "last_boot_seconds" },
	{ "pristine_resets_total", "counter", "Resets of a PC's overlay.", "resets" },
};

static const struct fam image_fams[] = {
	{ "pristine_image_read_bytes_total", "counter", "Bytes read from an image by its PCs and its draft.", "read_bytes" },
	{ "pristine_image_read_commands_total", "counter", "READ commands on an image.", "read_cmds" },
	{ "pristine_image_write_bytes_total", "counter", "Bytes written to an image's overlays and draft.", "write_bytes" },
	{ "pristine_image_write_commands_total", "counter", "WRITE commands on an image.", "write_cmds" },
	{ "pristine_image_io_errors_total", "counter", "Commands on an image that the store failed.", "errors" },
	{ "pristine_image_read_latency_seconds", "histogram", "Time from a READ command on an image to its status.", "read_latency" },
	{ "pristine_image_write_latency_seconds", "histogram", "Time from a WRITE command on an image to its status.", "write_latency" },
	{ "pristine_image_version", "gauge", "An image's current version.", "version" },
};

/* Every family of fams over the members of arr (clients or images). */
static void families(struct sbuf *b, const struct fam *fams, size_t n, json_t *arr, bool is_client)
{
	for (size_t f = 0; f < n; f++) {
		bool hist = strcmp(fams[f].type, "histogram") == 0;
		size_t i;
		json_t *who;

		family(b, fams[f].name, fams[f].type, fams[f].help);
		json_array_foreach(arr, i, who) {
			if (hist)
				histogram(b, fams[f].name, who, is_client, fams[f].key);
			else
				sample(b, fams[f].name, who, is_client, fams[f].key);
		}
	}
}

/* A gauge of each image's current version (labels image and version),
 * from field key of its stats; images without it are left out. */
static void version_gauge(struct sbuf *b, const char *name, const char *help, json_t *images,
			  const char *key)
{
	char extra[48];
	json_t *who;
	size_t i;

	bool any = false;

	json_array_foreach(images, i, who) {
		json_t *v = json_object_get(who, key);
		if (!json_is_integer(v))
			continue;
		if (!any)
			family(b, name, "gauge", help);
		any = true;
		snprintf(extra, sizeof(extra), "version=\"%lld\"",
			 (long long)json_integer_value(json_object_get(who, "version")));
		sb_printf(b, "%s", name);
		labels(b, who, false, extra);
		sb_printf(b, " %lld\n", (long long)json_integer_value(v));
	}
}

/* A server counter from field key, when present. */
static void server_counter(struct sbuf *b, json_t *server, const char *name, const char *help,
			   const char *key)
{
	json_t *v = json_object_get(server, key);

	if (!json_is_integer(v))
		return;
	family(b, name, "counter", help);
	sb_printf(b, "%s %lld\n", name, (long long)json_integer_value(v));
}

char *metrics_text(const json_t *stats, size_t *len)
{
	json_t *st = (json_t *)stats, *server = json_object_get(st, "server");
	json_t *refused = json_object_get(server, "refused"), *v;
	const char *key, *ver = json_string_value(json_object_get(server, "version"));
	struct sbuf b = { 0 };

	family(&b, "pristine_build_info", "gauge", "Always 1: the version of pristined serving.");
	sb_printf(&b, "pristine_build_info{version=\"");
	sb_label(&b, ver ? ver : "");
	sb_printf(&b, "\"} 1\n");
	if (json_is_integer(json_object_get(server, "started"))) {
		family(&b, "pristine_start_time_seconds", "gauge", "When pristined started, in seconds since the epoch.");
		sb_printf(&b, "pristine_start_time_seconds %lld\n",
			  (long long)json_integer_value(json_object_get(server, "started")));
	}
	if (json_is_integer(json_object_get(server, "sessions"))) {
		family(&b, "pristine_server_sessions", "gauge", "iSCSI sessions open (not discovery).");
		sb_printf(&b, "pristine_server_sessions %lld\n",
			  (long long)json_integer_value(json_object_get(server, "sessions")));
	}
	if (json_is_integer(json_object_get(server, "resets"))) {
		family(&b, "pristine_server_resets_total", "counter", "Resets of every PC, removed ones too.");
		sb_printf(&b, "pristine_server_resets_total %lld\n",
			  (long long)json_integer_value(json_object_get(server, "resets")));
	}
	if (json_is_object(refused)) {
		family(&b, "pristine_refused_logins_total", "counter", "iSCSI logins refused, by reason.");
		json_object_foreach(refused, key, v) {
			sb_printf(&b, "pristine_refused_logins_total{reason=\"");
			sb_label(&b, key);
			sb_printf(&b, "\"} %lld\n", (long long)json_integer_value(v));
		}
	}
	families(&b, client_fams, sizeof(client_fams) / sizeof(client_fams[0]),
		 json_object_get(st, "clients"), true);
	families(&b, image_fams, sizeof(image_fams) / sizeof(image_fams[0]),
		 json_object_get(st, "images"), false);
	/* warm boots (lab/bootsets.h) */
	version_gauge(&b, "pristine_boot_set_bytes", "Bytes of disk the boot set of an image's "
		      "current version covers.", json_object_get(st, "images"), "boot_set_bytes");
	version_gauge(&b, "pristine_boot_set_resident_bytes", "Bytes of that boot set held in "
		      "memory now (page cache or read cache; an estimate).",
		      json_object_get(st, "images"), "boot_set_resident_bytes");
	server_counter(&b, server, "pristine_prefetch_bytes_total", "Bytes the prefetch of boot "
		       "sets read.", "prefetch_bytes");
	server_counter(&b, server, "pristine_prefetch_yields_total", "Times the prefetch paused "
		       "for a PC that was not booting.", "prefetch_yields");
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}
