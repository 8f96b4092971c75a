/*
 * ops_stats.c - GET /v1/stats: the data path's counters (util/iostats.h),
 * sessions, overlays, boots, resets and refused logins as JSON - what
 * the console turns into MiB/s and IOPS (two polls) and admin/metrics.c
 * into Prometheus' text.  Every counter is cumulative since the daemon
 * started; the layout is documented in docs/metrics.md and its names are
 * fixed (the console reads them).
 */
#include "admin/metrics.h"
#include "admin/ops.h"
#include "lab/bootsets.h"
#include "storage/prefetch.h"
#include "util/iostats.h"
#include "util/version.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

/* A latency histogram as JSON: bounds in s, per-bucket counts (+Inf last), sum in s. */
static json_t *lat_json(const uint64_t *counts, uint64_t sum_ns)
{
	json_t *le = json_array(), *n = json_array();
	uint64_t total = 0;

	for (unsigned i = 0; i < IOSTATS_LAT_BUCKETS; i++)
		json_array_append_new(le, json_real((double)iostats_lat_bounds_ns[i] / 1e9));
	for (unsigned i = 0; i <= IOSTATS_LAT_BUCKETS; i++) {
		json_array_append_new(n, json_integer((json_int_t)counts[i]));
		total += counts[i];
	}
	return json_pack("{s:o, s:o, s:f, s:I}", "le", le, "counts", n,
			 "sum", (double)sum_ns / 1e9, "count", (json_int_t)total);
}

/* A boot-duration histogram as JSON, like lat_json. */
static json_t *boot_hist_json(const struct boot_snap *b)
{
	json_t *le = json_array(), *n = json_array();

	for (unsigned i = 0; i < BOOT_BUCKETS; i++)
		json_array_append_new(le, json_real((double)boot_bounds_s[i]));
	for (unsigned i = 0; i <= BOOT_BUCKETS; i++)
		json_array_append_new(n, json_integer((json_int_t)b->hist[i]));
	return json_pack("{s:o, s:o, s:f, s:I}", "le", le, "counts", n,
			 "sum", (double)b->hist_sum_ms / 1e3, "count", (json_int_t)b->hist_count);
}

/* The I/O fields of s into o. */
static void io_fields(json_t *o, const struct iostats_snap *s)
{
	json_object_set_new(o, "read_bytes", json_integer((json_int_t)s->read_bytes));
	json_object_set_new(o, "read_cmds", json_integer((json_int_t)s->read_cmds));
	json_object_set_new(o, "write_bytes", json_integer((json_int_t)s->write_bytes));
	json_object_set_new(o, "write_cmds", json_integer((json_int_t)s->write_cmds));
	json_object_set_new(o, "errors", json_integer((json_int_t)s->errors));
	json_object_set_new(o, "read_latency", lat_json(s->read_lat, s->read_lat_sum_ns));
	json_object_set_new(o, "write_latency", lat_json(s->write_lat, s->write_lat_sum_ns));
}

/* One client's entry (new reference).  Registry lock held. */
static json_t *client_stats(struct client *c, int64_t now)
{
	struct iostats_snap s;
	struct boot_snap b;
	json_t *o;

	iostats_snapshot(&c->io, &s);
	boot_poll(&c->boot, now, &b);
	o = json_pack("{s:s, s:s, s:s, s:I}", "name", c->name[0] ? c->name : c->initiator,
		      "initiator", c->initiator, "image", c->disk.img->name,
		      "version", (json_int_t)c->disk.version);
	io_fields(o, &s);
	json_object_set_new(o, "sessions", json_integer((json_int_t)c->disk.sessions));
	json_object_set_new(o, "overlay_bytes", json_integer((json_int_t)disk_used_bytes(&c->disk)));
	json_object_set_new(o, "quota_bytes", json_integer((json_int_t)c->disk.quota));
	json_object_set_new(o, "boots", json_integer((json_int_t)b.boots));
	json_object_set_new(o, "booting", json_boolean(b.open));
	json_object_set_new(o, "last_boot_seconds",
			    b.last_ms < 0 ? json_null() : json_real((double)b.last_ms / 1e3));
	json_object_set_new(o, "boot_duration", boot_hist_json(&b));
	json_object_set_new(o, "resets", json_integer((json_int_t)c->resets));
	return o;
}

static void count_session(void *ctx, const struct iscsi_session_info *si)
{
	if (!si->discovery)
		(*(unsigned *)ctx)++;
}

int stats_collect(void *ctx, json_t **out)
{
	struct daemon_ctx *d = ctx;
	json_t *clients = json_array(), *images = json_array(), *server, *refused = json_object();
	struct iostats_snap tot = { 0 };
	uint64_t boots = 0, resets, nrefused = 0;
	unsigned sessions = 0;
	int64_t now = iostats_now_ns();
	struct prefetch_stats pfs = { 0 };
	struct timespec ts;

	iscsi_session_foreach(d->srv, count_session, &sessions);
	for (unsigned r = 0; r < REFUSED_N; r++) {
		uint64_t n = atomic_load_explicit(&d->srv->refused[r], memory_order_relaxed);

		json_object_set_new(refused, iscsi_refusal_name((enum iscsi_refusal)r),
				    json_integer((json_int_t)n));
		nrefused += n;
	}
	pthread_mutex_lock(&d->reg->lock);
	for (struct client *c = d->reg->clients; c; c = c->next) {
		json_t *o = client_stats(c, now);

		boots += (uint64_t)json_integer_value(json_object_get(o, "boots"));
		json_array_append_new(clients, o);
	}
	for (unsigned i = 0; i < d->reg->nimages; i++) {
		struct image *img = d->reg->images[i];
		struct iostats_snap s;
		json_t *o;

		iostats_snapshot(&img->io, &s);
		o = json_pack("{s:s, s:I, s:b}", "name", img->name,
			      "version", (json_int_t)img->current, "draft", img->draft != NULL);
		io_fields(o, &s);
		{
			/* warm boots: the current version's boot set only (bounded labels) */
			json_t *bs = bootset_json(d->reg, img, img->current);
			json_object_set(o, "boot_set_bytes", json_object_get(bs, "bytes"));
			json_object_set(o, "boot_set_resident_bytes", json_object_get(bs, "resident_bytes"));
			json_decref(bs);
		}
		json_array_append_new(images, o);
		tot.read_bytes += s.read_bytes;
		tot.read_cmds += s.read_cmds;
		tot.write_bytes += s.write_bytes;
		tot.write_cmds += s.write_cmds;
		tot.errors += s.errors;
	}
	resets = d->reg->resets;
	if (d->reg->prefetch)
		prefetch_get_stats(d->reg->prefetch, &pfs);
	pthread_mutex_unlock(&d->reg->lock);

	server = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
			   "read_bytes", (json_int_t)tot.read_bytes, "read_cmds", (json_int_t)tot.read_cmds,
			   "write_bytes", (json_int_t)tot.write_bytes, "write_cmds", (json_int_t)tot.write_cmds,
			   "errors", (json_int_t)tot.errors, "sessions", (json_int_t)sessions,
			   "boots", (json_int_t)boots, "resets", (json_int_t)resets,
			   "refused_logins", (json_int_t)nrefused, "refused", refused);
	json_object_set_new(server, "version", json_string(PRISTINE_VERSION));
	json_object_set_new(server, "started", json_integer((json_int_t)d->reg->started));
	json_object_set_new(server, "prefetch_bytes", json_integer((json_int_t)pfs.bytes));
	json_object_set_new(server, "prefetch_yields", json_integer((json_int_t)pfs.yields));
	clock_gettime(CLOCK_REALTIME, &ts);
	*out = json_pack("{s:I, s:o, s:o, s:o}",
			 "time_ms", (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
			 "server", server, "clients", clients, "images", images);
	return *out ? 0 : -ENOMEM;
}

static int op_stats(void *ctx, json_t **out, char *err, size_t errlen)
{
	int rc = stats_collect(ctx, out);

	if (rc)
		snprintf(err, errlen, "out of memory");
	return rc;
}

void stats_ops_init(struct control_ops *ops)
{
	ops->stats = op_stats;
}
