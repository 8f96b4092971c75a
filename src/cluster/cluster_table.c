/*
 * cluster_table.c - the gateway table and the beat (cluster.h): join,
 * leave, the beat thread that writes our entry and reads the table back
 * every beat, fencing detection, health.
 *
 * Our entry is written whole at every beat (JSON, cluster_int.h); a
 * gateway whose last write is older than dead_after is dead.  The beat
 * uses the wall clock, so gateways need synchronised clocks (NTP, as
 * Ceph itself does); a clock skew of s seconds makes a gateway look s
 * seconds older or younger to the others.
 *
 * Fencing: a gateway learns it is blocklisted when an OSD refuses our
 * write with EBLOCKLISTED (ESHUTDOWN in librados), or when our address
 * shows in `osd blocklist ls` (asked every few beats; a cephx identity
 * without the right to ask just skips it).  Then nothing we write
 * reaches Ceph: opts.fenced is called once and the beat ends.
 */
#include "cluster/cluster_int.h"
#include "storage/rbd_int.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Beats between two asks of `osd blocklist ls`. */
#define BLOCKLIST_EVERY 3

int64_t cluster_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cluster_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum gw_state cluster_gw_state(const struct cluster *cl, const struct gw *g, int64_t now_ms)
{
	if (g->stopped)
		return GW_STOPPED;
	if (now_ms - g->beat_ms > (int64_t)cl->dead_ms)
		return GW_DEAD;
	return g->draining ? GW_DRAINING : GW_UP;
}

const char *cluster_state_name(enum gw_state s)
{
	static const char *const names[] = { "up", "draining", "stopped", "dead" };
	return names[s];
}

bool cluster_gw_live(const struct cluster *cl, const struct gw *g, int64_t now_ms)
{
	return cluster_gw_state(cl, g, now_ms) == GW_UP;
}

struct gw *cluster_gw_find(struct cluster *cl, const char *name)
{
	for (unsigned i = 0; i < cl->ngw; i++)
		if (strcmp(cl->gws[i].name, name) == 0)
			return &cl->gws[i];
	return NULL;
}

int cluster_omap_each(struct cluster *cl, const char *oid,
		      void (*fn)(void *arg, const char *key, const char *val, size_t len), void *arg)
{
	char after[512] = "";
	unsigned char more = 1;
	int rc = 0;

	while (more && rc == 0) {
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t it = NULL;
		int prval = 0;
		char *key, *val;
		size_t klen, vlen;
		char before[sizeof(after)];

		if (!op)
			return -ENOMEM;
		memcpy(before, after, sizeof(before));
		more = 0;
		rados_read_op_omap_get_vals2(op, after, "", 512, &it, &more, &prval);
		rc = rados_read_op_operate(op, cl->io, oid, 0);
		if (rc == 0 && prval < 0)
			rc = prval;
		while (rc == 0 && it && rados_omap_get_next2(it, &key, &val, &klen, &vlen) == 0 && key) {
			char k[512], *v;
			if (klen >= sizeof(k))
				continue;      /* not one of ours */
			memcpy(k, key, klen);
			k[klen] = '\0';
			if (!(v = malloc(vlen + 1))) {
				rc = -ENOMEM;
				break;
			}
			memcpy(v, val, vlen);
			v[vlen] = '\0';
			fn(arg, k, v, vlen);
			free(v);
			snprintf(after, sizeof(after), "%s", k);
		}
		if (it)
			rados_omap_get_end(it);
		rados_release_read_op(op);
		/* a page that ended on a key we skipped would come back forever */
		if (more && strcmp(before, after) == 0)
			more = 0;
	}
	return rc == -ENOENT ? 0 : rc;
}

int cluster_omap_put(struct cluster *cl, const char *oid, const char *key, const char *val)
{
	rados_write_op_t op = rados_create_write_op();
	int rc;

	if (!op)
		return -ENOMEM;
	if (val) {
		size_t len = strlen(val);
		const char *keys[1] = { key }, *vals[1] = { val };
		rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
		rados_write_op_omap_set(op, keys, vals, &len, 1);
	} else {
		const char *keys[1] = { key };
		rados_write_op_omap_rm_keys(op, keys, 1);
	}
	rc = rados_write_op_operate(op, cl->io, oid, NULL, 0);
	rados_release_write_op(op);
	return rc == -ENOENT && !val ? 0 : rc;
}

/* Collecting a table read: entries, then drain keys. */
struct table_walk {
	struct gw gws[CLUSTER_GW_MAX];
	unsigned n;
	char drain[CLUSTER_GW_MAX][CLUSTER_NAME_MAX];
	unsigned ndrain;
};

static void table_entry(void *arg, const char *key, const char *val, size_t len)
{
	struct table_walk *w = arg;
	json_t *e;
	struct gw *g;

	if (strncmp(key, CLUSTER_DRAIN_PREFIX, strlen(CLUSTER_DRAIN_PREFIX)) == 0) {
		if (w->ndrain < CLUSTER_GW_MAX)
			snprintf(w->drain[w->ndrain++], CLUSTER_NAME_MAX, "%s",
				 key + strlen(CLUSTER_DRAIN_PREFIX));
		return;
	}
	if (w->n == CLUSTER_GW_MAX || strlen(key) >= CLUSTER_NAME_MAX)
		return;
	if (!(e = json_loadb(val, len, 0, NULL)) || !json_is_object(e)) {
		json_decref(e);
		log_warn("cluster: entry of gateway %.32s is not JSON: ignored", key);
		return;
	}
	g = &w->gws[w->n++];
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", key);
	snprintf(g->address, sizeof(g->address), "%s",
		 json_string_value(json_object_get(e, "address")) ?: "");
	snprintf(g->ceph_addr, sizeof(g->ceph_addr), "%s",
		 json_string_value(json_object_get(e, "ceph_addr")) ?: "");
	g->beat_ms = json_integer_value(json_object_get(e, "beat"));
	g->stopped = json_string_value(json_object_get(e, "state")) &&
		     strcmp(json_string_value(json_object_get(e, "state")), "stopped") == 0;
	g->sessions = (unsigned)json_integer_value(json_object_get(e, "sessions"));
	g->pcs = (unsigned)json_integer_value(json_object_get(e, "pcs"));
	json_decref(e);
}

int cluster_table_read(struct cluster *cl)
{
	struct table_walk *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	rc = cluster_omap_each(cl, CLUSTER_GW_OID, table_entry, w);
	if (rc == 0) {
		pthread_mutex_lock(&cl->lock);
		for (unsigned i = 0; i < w->n; i++) {
			struct gw *old = cluster_gw_find(cl, w->gws[i].name);
			/* the cut-off mark is ours, not the table's: kept while
			 * the gateway keeps its Ceph address */
			w->gws[i].cutoff = old && old->cutoff &&
					   strcmp(old->ceph_addr, w->gws[i].ceph_addr) == 0;
			for (unsigned j = 0; j < w->ndrain; j++)
				if (strcmp(w->drain[j], w->gws[i].name) == 0)
					w->gws[i].draining = true;
		}
		memcpy(cl->gws, w->gws, sizeof(cl->gws));
		cl->ngw = w->n;
		pthread_mutex_unlock(&cl->lock);
	}
	free(w);
	return rc;
}

/* Write our entry (state up, or stopped when leaving).  0 or -errno. */
static int entry_write(struct cluster *cl, bool stopped)
{
	unsigned sessions = 0, pcs = 0;
	json_t *e;
	char *text;
	int rc;

	if (cl->o.load && !stopped)
		cl->o.load(cl->o.arg, &sessions, &pcs);
	e = json_pack("{s:s, s:s, s:I, s:s, s:i, s:i, s:i}", "address", cl->address,
		      "ceph_addr", cl->ceph_addr, "beat", (json_int_t)cluster_now_ms(),
		      "state", stopped ? "stopped" : "up", "sessions", (int)sessions, "pcs", (int)pcs,
		      "pid", (int)getpid());
	text = e ? json_dumps(e, JSON_COMPACT) : NULL;
	json_decref(e);
	if (!text)
		return -ENOMEM;
	rc = cluster_omap_put(cl, CLUSTER_GW_OID, cl->name, text);
	free(text);
	if (rc == 0) {
		pthread_mutex_lock(&cl->lock);
		cl->last_ok_mono = cluster_mono_ms();
		pthread_mutex_unlock(&cl->lock);
	}
	return rc;
}

/* Whether our address is in the OSD map's blocklist (as the monitors
 * say); false when they cannot be asked. */
static bool blocklisted(struct cluster *cl)
{
	const char *cmd[] = { "{\"prefix\": \"osd blocklist ls\", \"format\": \"json\"}" };
	char *out = NULL, *st = NULL;
	size_t outlen = 0, stlen = 0;
	bool found = false;
	json_t *v, *e;
	size_t i;
	int rc = rados_mon_command(rbd_cluster_rados(cl->rc), cmd, 1, "", 0, &out, &outlen,
				   &st, &stlen);

	if (rc == 0 && out && (v = json_loadb(out, outlen, 0, NULL))) {
		json_array_foreach(v, i, e) {
			const char *a = json_string_value(json_object_get(e, "addr"));
			if (a && strcmp(a, cl->ceph_addr) == 0)
				found = true;
		}
		json_decref(v);
	}
	rados_buffer_free(out);
	rados_buffer_free(st);
	return found;
}

/* We are fenced: say it once; the daemon exits. */
static void fenced(struct cluster *cl, const char *how)
{
	pthread_mutex_lock(&cl->lock);
	if (cl->fenced) {
		pthread_mutex_unlock(&cl->lock);
		return;
	}
	cl->fenced = true;
	pthread_mutex_unlock(&cl->lock);
	log_err("cluster: gateway %s is fenced (%s): another gateway took its PCs over and "
		"Ceph refuses our writes from now on", cl->name, how);
	if (cl->o.fenced)
		cl->o.fenced(cl->o.arg);
	else
		exit(75);
}

static void *beat_main(void *arg)
{
	struct cluster *cl = arg;
	unsigned n = 0;

	pthread_mutex_lock(&cl->lock);
	while (!cl->stopping && !cl->fenced) {
		struct timespec ts;
		int rc;

		pthread_mutex_unlock(&cl->lock);
		rc = entry_write(cl, false);
		if (rc == -ESHUTDOWN) {
			fenced(cl, "an OSD refused our heartbeat: blocklisted");
		} else if (++n % BLOCKLIST_EVERY == 0 && blocklisted(cl)) {
			fenced(cl, "our Ceph address is in the OSD blocklist");
		} else {
			if (rc)
				log_warn("cluster: cannot write our heartbeat: %s", strerror(-rc));
			if ((rc = cluster_table_read(cl)))
				log_warn("cluster: cannot read the gateway table: %s", strerror(-rc));
			cluster_drain_step(cl);
		}
		pthread_mutex_lock(&cl->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(cl->beat_ms % 1000) * 1000000L;
		ts.tv_sec += cl->beat_ms / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		while (!cl->stopping && pthread_cond_timedwait(&cl->cond, &cl->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&cl->lock);
	return NULL;
}

int cluster_join(struct rbd_cluster *c, const struct cluster_opts *o, struct cluster **out,
		 char *msg, size_t msglen)
{
	struct cluster *cl = calloc(1, sizeof(*cl));
	const char *prev = rbd_cluster_breakable(c);
	struct gw *me;
	int rc;

	if (!cl)
		return -ENOMEM;
	cl->rc = c;
	cl->o = *o;
	snprintf(cl->name, sizeof(cl->name), "%s", o->name);
	snprintf(cl->address, sizeof(cl->address), "%s", o->address);
	snprintf(cl->pool, sizeof(cl->pool), "%s", o->pool);
	cl->o.name = cl->name;
	cl->o.address = cl->address;
	cl->o.pool = cl->pool;
	cl->beat_ms = o->beat_ms ? o->beat_ms : CLUSTER_BEAT_MS;
	cl->dead_ms = (o->dead_after_s ? o->dead_after_s : 5) * 1000u;
	pthread_mutex_init(&cl->lock, NULL);
	pthread_mutex_init(&cl->place_lock, NULL);
	pthread_cond_init(&cl->cond, NULL);
	if ((rc = rbd_pool_ioctx(c, cl->pool, &cl->io))) {
		snprintf(msg, msglen, "cluster: pool %s (cluster-pool): %s", cl->pool, strerror(-rc));
		goto fail;
	}
	if ((rc = rbd_cluster_addr(c, cl->ceph_addr, sizeof(cl->ceph_addr)))) {
		snprintf(msg, msglen, "cluster: cannot read our Ceph address: %s", strerror(-rc));
		goto fail_io;
	}
	if ((rc = cluster_table_read(cl))) {
		snprintf(msg, msglen, "cluster: cannot read the gateway table (%s/%s): %s", cl->pool,
			 CLUSTER_GW_OID, strerror(-rc));
		goto fail_io;
	}
	/* Another live process of our name?  Our own previous instance (its
	 * address recorded in the state directory, whose lock we hold) is
	 * not one: it is dead and fenced already. */
	me = cluster_gw_find(cl, cl->name);
	if (me && cluster_gw_state(cl, me, cluster_now_ms()) != GW_STOPPED &&
	    cluster_gw_state(cl, me, cluster_now_ms()) != GW_DEAD &&
	    !(prev && strcmp(prev, me->ceph_addr) == 0) && strcmp(me->ceph_addr, cl->ceph_addr)) {
		snprintf(msg, msglen, "cluster: a gateway called %s is alive already (Ceph address %s, "
			 "last beat %lld ms ago): give this one another cluster-name", cl->name,
			 me->ceph_addr, (long long)(cluster_now_ms() - me->beat_ms));
		rc = -EEXIST;
		goto fail_io;
	}
	if ((rc = entry_write(cl, false)) || (rc = cluster_table_read(cl))) {
		snprintf(msg, msglen, "cluster: cannot write our entry in %s/%s: %s", cl->pool,
			 CLUSTER_GW_OID, strerror(-rc));
		goto fail_io;
	}
	rbd_cluster_set_break_policy(c, cluster_may_break, cl);
	if ((rc = -pthread_create(&cl->beat, NULL, beat_main, cl))) {
		snprintf(msg, msglen, "cluster: cannot start the beat thread: %s", strerror(-rc));
		rbd_cluster_set_break_policy(c, NULL, NULL);
		goto fail_io;
	}
	cl->beat_started = true;
	log_notice("cluster: gateway %s joined (address %s, Ceph address %s, table %s/%s, "
		   "dead after %u s)", cl->name, cl->address, cl->ceph_addr, cl->pool, CLUSTER_GW_OID,
		   cl->dead_ms / 1000);
	*out = cl;
	return 0;
fail_io:
	rados_ioctx_destroy(cl->io);
fail:
	pthread_mutex_destroy(&cl->lock);
	pthread_mutex_destroy(&cl->place_lock);
	pthread_cond_destroy(&cl->cond);
	free(cl);
	return rc;
}

void cluster_leave(struct cluster *cl)
{
	int rc;

	if (!cl)
		return;
	pthread_mutex_lock(&cl->lock);
	cl->stopping = true;
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
	if (cl->beat_started)
		pthread_join(cl->beat, NULL);
	rbd_cluster_set_break_policy(cl->rc, NULL, NULL);
	if (!cl->fenced && (rc = entry_write(cl, true)))
		log_warn("cluster: cannot mark gateway %s stopped: %s (the others see it dead "
			 "after %u s)", cl->name, strerror(-rc), cl->dead_ms / 1000);
	else if (!cl->fenced)
		log_notice("cluster: gateway %s left (stopped)", cl->name);
	rados_ioctx_destroy(cl->io);
	pthread_mutex_destroy(&cl->lock);
	pthread_mutex_destroy(&cl->place_lock);
	pthread_cond_destroy(&cl->cond);
	free(cl);
}

bool cluster_healthy(struct cluster *cl)
{
	bool ok;

	pthread_mutex_lock(&cl->lock);
	ok = !cl->fenced && cl->last_ok_mono &&
	     cluster_mono_ms() - cl->last_ok_mono <= (int64_t)cl->dead_ms;
	pthread_mutex_unlock(&cl->lock);
	return ok;
}
