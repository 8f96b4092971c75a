/*
 * ctl_bootset.c - warm boots in pristinectl (lab/bootsets.h): the BOOT
 * SET, LEARNED and IN MEMORY columns of `image versions`, and
 * `image prefetch NAME [--version N] [--wait]`.
 */
#include "ctl/ctl.h"
#include "util/log.h"
#include "util/parse.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define PREFETCH_POLL_MS 250

void ctl_boot_set_cols(const json_t *ver, char *size, size_t slen, char *learned, size_t llen,
		       char *mem, size_t mlen)
{
	const json_t *bs = json_object_get(ver, "boot_set");
	const char *pf = ctl_str(bs, "prefetch", "none");
	uint64_t bytes = (uint64_t)ctl_int(bs, "bytes");
	int64_t boots = ctl_int(bs, "boots");

	snprintf(size, slen, "-");
	snprintf(learned, llen, "-");
	snprintf(mem, mlen, "-");
	if (!json_is_object(bs) || !bytes)
		return;
	ctl_fmt_size(bytes, size, slen);
	if (boots > 0)
		snprintf(learned, llen, "%lld boot%s", (long long)boots, boots == 1 ? "" : "s");
	else if (ctl_int(bs, "inherited_from") > 0)
		snprintf(learned, llen, "from v%lld", (long long)ctl_int(bs, "inherited_from"));
	if (!strcmp(pf, "queued") || !strcmp(pf, "running")) {
		int64_t total = ctl_int(bs, "prefetch_total_bytes"), done = ctl_int(bs, "prefetched_bytes");
		snprintf(mem, mlen, "prefetching %lld%%", total > 0 ? (long long)(done * 100 / total) : 0);
	} else if (json_is_true(json_object_get(bs, "resident_known"))) {
		uint64_t res = (uint64_t)ctl_int(bs, "resident_bytes");
		snprintf(mem, mlen, "%llu%%",
			 (unsigned long long)((res > bytes ? bytes : res) * 100 / bytes));
	}
}

/* The "boot_set" of version v in res (an image's JSON), or NULL. */
static const json_t *boot_set_of(const json_t *res, int64_t v)
{
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(res, "version_list"), i, e)
		if (ctl_int(e, "version") == v)
			return json_object_get(e, "boot_set");
	return NULL;
}

int ctl_image_prefetch(const struct ctl *c, const char *name, const char *version, bool wait)
{
	char path[300], shown[128], size[32];
	json_t *body = json_object(), *res;
	const json_t *bs;
	unsigned v = 0;
	int64_t ver;
	int rc;

	if (version) {
		if (parse_uint(version, 1, 1000000, &v, NULL, 0)) {
			json_decref(body);
			return usage_error("--version must be a version number, not '%s'", version);
		}
		json_object_set_new(body, "version", json_integer(v));
	}
	if (snprintf(path, sizeof(path), "/v1/images/%s/prefetch", name) >= (int)sizeof(path)) {
		json_decref(body);
		return usage_error("image name too long");
	}
	if ((rc = ctl_call_json(c, "POST", path, body, NULL, &res)))
		return rc;
	ver = ctl_int(res, "version");
	log_safe(name, shown, sizeof(shown));
	if (!wait) {
		if (c->json)
			ctl_print_json(res, stdout);
		else {
			ctl_fmt_size((uint64_t)ctl_int(json_object_get(res, "boot_set"), "bytes"), size,
				     sizeof(size));
			printf("image %s v%lld: prefetch of its boot set (%s) queued\n", shown,
			       (long long)ver, size);
		}
		json_decref(res);
		return CTL_OK;
	}
	json_decref(res);
	snprintf(path, sizeof(path), "/v1/images/%s", name);
	for (;;) {
		struct timespec ts = { 0, PREFETCH_POLL_MS * 1000000L };
		const char *st;
		if ((rc = ctl_call(c, "GET", path, NULL, NULL, &res)))
			return rc;
		bs = boot_set_of(res, ver);
		st = ctl_str(bs, "prefetch", "none");
		if (strcmp(st, "queued") && strcmp(st, "running"))
			break;
		json_decref(res);
		nanosleep(&ts, NULL);
	}
	if (c->json)
		ctl_print_json(bs, stdout);
	rc = !strcmp(ctl_str(bs, "prefetch", ""), "done") ? CTL_OK : CTL_EREMOTE;
	ctl_fmt_size((uint64_t)ctl_int(bs, "prefetched_bytes"), size, sizeof(size));
	if (rc)
		fprintf(stderr, "pristinectl: image %s v%lld: prefetch %s after %s\n", shown,
			(long long)ver, ctl_str(bs, "prefetch", "?"), size);
	else if (!c->json)
		printf("image %s v%lld: boot set prefetched, %s in %.1f s\n", shown, (long long)ver,
		       size, json_number_value(json_object_get(bs, "prefetch_seconds")));
	json_decref(res);
	return rc;
}
