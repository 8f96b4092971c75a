/*
 * ctl_print.c - pristinectl's input and output helpers: sizes printed
 * (parsed by util/parse.h, the daemon's parser), durations, times, tolerant JSON field access, aligned
 * tables, and the shape every list verb shares (ctl_list).
 */
#include "ctl/ctl.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ctl_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t i = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return;
	}
	while (v >= 1024 && i < sizeof(unit) / sizeof(unit[0]) - 1) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[i]);
}

void ctl_fmt_quota(const json_t *obj, const char *none, char *buf, size_t len)
{
	if (ctl_int(obj, "quota_bytes") > 0)
		ctl_fmt_size((uint64_t)ctl_int(obj, "quota_bytes"), buf, len);
	else
		snprintf(buf, len, "%s", none);
}

void ctl_fmt_duration(uint64_t s, char *buf, size_t len)
{
	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d %02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%" PRIu64 "h %02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%" PRIu64 "m %02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "s", s);
}

void ctl_fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !localtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "-");
}

const char *ctl_str(const json_t *obj, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : dflt;
}

int64_t ctl_int(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return 0;
}

void ctl_table_init(struct ctl_table *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

int ctl_table_add(struct ctl_table *t, const char *const *row)
{
	char tmp[512];

	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cells, ncap * t->ncols * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		t->cells = nc;
		t->cap = ncap;
	}
	for (size_t c = 0; c < t->ncols; c++) {
		char *s = strdup(log_safe(row[c] ? row[c] : "", tmp, sizeof(tmp)));

		if (!s) {
			while (c--)
				free(t->cells[t->nrows * t->ncols + c]);
			return -ENOMEM;
		}
		t->cells[t->nrows * t->ncols + c] = s;
	}
	t->nrows++;
	return 0;
}

void ctl_table_print(const struct ctl_table *t, FILE *f)
{
	size_t w[16] = { 0 };
	size_t nc = t->ncols < 16 ? t->ncols : 16;

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < nc; c++) {
			size_t l = strlen(t->cells[r * t->ncols + c]);

			if (l > w[c])
				w[c] = l;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < nc; c++) {
			const char *s = t->cells[r * t->ncols + c];

			if (c + 1 == nc)
				fprintf(f, "%s\n", s);
			else
				fprintf(f, "%-*s  ", (int)w[c], s);
		}
	}
}

void ctl_table_free(struct ctl_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

void ctl_print_json(const json_t *v, FILE *f)
{
	char *s = json_dumps(v, JSON_INDENT(2));

	if (s) {
		fprintf(f, "%s\n", s);
		free(s);
	}
}

/* One scalar in words into buf; false when v is not a scalar. */
static bool scalar_text(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_true(v) || json_is_false(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
	else if (json_is_integer(v))
		snprintf(buf, len, "%" PRId64, (int64_t)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else
		return false;
	return true;
}

char *ctl_fmt_value(const json_t *v, const char *none)
{
	char buf[1024], one[256];
	size_t i, used = 0;
	const json_t *e;

	if (!v || json_is_null(v) || (json_is_array(v) && !json_array_size(v)))
		return strdup(none);
	if (scalar_text(v, buf, sizeof(buf)))
		return strdup(buf);
	if (!json_is_array(v))
		return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	buf[0] = '\0';
	json_array_foreach(v, i, e) {
		if (!scalar_text(e, one, sizeof(one)))
			return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? ", " : "", one);
		if (used >= sizeof(buf))
			return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);   /* too long for words */
	}
	return strdup(buf);
}

/* See ctl.h: one GET, then --json, "no X" or a table of fill's rows. */
int ctl_list(const struct ctl *c, const char *path, const char *key, const char *const *head,
	     size_t ncols, ctl_row_fn *fill)
{
	char buf[CTL_ROW_BUFS][CTL_ROW_BUF];
	struct ctl_table t;
	json_t *res, *list, *e;
	const char **row;
	size_t i;
	int rc;

	rc = ctl_call(c, "GET", path, NULL, NULL, &res);
	if (rc)
		return rc;
	if (c->json) {
		ctl_print_json(res, stdout);
		goto out;
	}
	list = json_object_get(res, key);
	if (!json_array_size(list)) {
		printf("no %s\n", key);
		goto out;
	}
	row = calloc(ncols, sizeof(*row));
	ctl_table_init(&t, ncols);
	rc = row ? ctl_table_add(&t, head) : -ENOMEM;
	json_array_foreach(list, i, e) {
		if (rc)
			break;
		fill(e, row, buf);
		rc = ctl_table_add(&t, row);
	}
	if (rc)
		fprintf(stderr, "pristinectl: out of memory\n");
	else
		ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	free(row);
out:
	json_decref(res);
	return rc ? CTL_EREMOTE : CTL_OK;
}
