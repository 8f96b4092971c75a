/*
 * cluster_place.c - which gateway serves which PC (cluster.h): the
 * routing of a login, the drain, and the lock-break policy that lets a
 * gateway take a PC over only from a gateway that is dead, stopped or
 * cut off from the PCs.
 *
 * Placement rule (cluster.h): sticky while the placed gateway is up and
 * not draining; else the live gateway with the fewest PCs placed on it,
 * ties broken by a hash of (PC, gateway), so two gateways placing at
 * once mostly agree; with no live gateway at all the PC is served where
 * it is (better a login than none).  A connection that reached us on
 * another gateway's address (keepalived moved it here) means that
 * gateway is cut off from the PCs: the PC is served here and that
 * gateway's locks may be broken.
 */
#include "cluster/cluster_int.h"
#include "util/hash.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PCs a draining gateway sends away per beat. */
#define DRAIN_PER_BEAT 4

static void placement_entry(void *arg, const char *key, const char *val, size_t len)
{
	(void)len;
	json_object_set_new(arg, key, json_string(val));
}

json_t *cluster_placement_read(struct cluster *cl, int *rc)
{
	json_t *p = json_object();

	if (!p) {
		*rc = -ENOMEM;
		return NULL;
	}
	if ((*rc = cluster_omap_each(cl, CLUSTER_PC_OID, placement_entry, p))) {
		json_decref(p);
		return NULL;
	}
	return p;
}

/* "IP:PORT" ("[IP]:PORT" for IPv6; a v4-mapped address as IPv4) of sa
 * into buf, "" when it is neither. */
static void sockaddr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	buf[0] = '\0';
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, ip, sizeof(ip));
			snprintf(buf, len, "%s:%u", ip, ntohs(in6->sin6_port));
		} else {
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
		}
	}
}

/* How many PCs placement puts on name, initiator itself left out. */
static unsigned placed_on(json_t *placement, const char *name, const char *initiator)
{
	const char *k;
	json_t *v;
	unsigned n = 0;

	json_object_foreach(placement, k, v)
		if (strcmp(k, initiator) != 0 && json_string_value(v) &&
		    strcmp(json_string_value(v), name) == 0)
			n++;
	return n;
}

/* See cluster_int.h. */
const char *cluster_choose(struct cluster *cl, json_t *placement, const char *initiator,
			   int64_t now)
{
	const char *best = cl->name;
	unsigned best_n = ~0u;
	uint64_t best_h = 0;

	for (unsigned i = 0; i < cl->ngw; i++) {
		struct gw *g = &cl->gws[i];
		bool self = strcmp(g->name, cl->name) == 0;
		unsigned n;
		uint64_t h;

		/* we can reach Ceph (our caller checked): our own beat age
		 * does not matter, our drain mark does */
		if (self ? g->draining || g->stopped : !cluster_gw_live(cl, g, now))
			continue;
		if (!g->address[0])
			continue;
		n = placed_on(placement, g->name, initiator);
		h = fnv1a_add(fnv1a(initiator), g->name);
		if (n < best_n || (n == best_n && h > best_h)) {
			best = g->name;
			best_n = n;
			best_h = h;
		}
	}
	return best;
}

enum cluster_route cluster_route(struct cluster *cl, const char *initiator,
				 const struct sockaddr *local, char *addr, size_t addrlen)
{
	char la[CLUSTER_ADDR_MAX], target[CLUSTER_NAME_MAX], cur[CLUSTER_NAME_MAX] = "";
	enum cluster_route r = CLUSTER_HERE;
	bool takeover = false;
	json_t *placement;
	int64_t now;
	int rc;

	if (!cluster_healthy(cl))
		return CLUSTER_UNAVAILABLE;
	sockaddr_text(local, la, sizeof(la));
	pthread_mutex_lock(&cl->place_lock);
	if (!(placement = cluster_placement_read(cl, &rc))) {
		pthread_mutex_unlock(&cl->place_lock);
		log_warn("cluster: cannot read the placement: %s", strerror(-rc));
		return CLUSTER_UNAVAILABLE;
	}
	if (json_string_value(json_object_get(placement, initiator)))
		snprintf(cur, sizeof(cur), "%s", json_string_value(json_object_get(placement, initiator)));
	now = cluster_now_ms();
	pthread_mutex_lock(&cl->lock);
	for (unsigned i = 0; i < cl->ngw && la[0]; i++) {
		struct gw *g = &cl->gws[i];
		if (strcmp(g->name, cl->name) != 0 && strcmp(g->address, la) == 0) {
			if (!g->cutoff)
				log_warn("cluster: a PC reached us on %s, gateway %s's address: %s is cut "
					 "off from the PCs, its PCs are taken over here", la, g->name,
					 g->name);
			g->cutoff = true;
			takeover = true;
		}
	}
	{
		struct gw *g = cur[0] ? cluster_gw_find(cl, cur) : NULL;
		bool self = cur[0] && strcmp(cur, cl->name) == 0;

		if (takeover)
			snprintf(target, sizeof(target), "%s", cl->name);
		else if (g && (self ? !g->draining : cluster_gw_live(cl, g, now) && !g->cutoff))
			snprintf(target, sizeof(target), "%s", cur);
		else
			snprintf(target, sizeof(target), "%s", cluster_choose(cl, placement, initiator, now));
	}
	if (strcmp(target, cl->name) != 0) {
		struct gw *g = cluster_gw_find(cl, target);
		snprintf(addr, addrlen, "%s", g ? g->address : "");
		r = CLUSTER_ELSEWHERE;
	}
	pthread_mutex_unlock(&cl->lock);
	if (strcmp(target, cur) != 0) {
		if ((rc = cluster_omap_put(cl, CLUSTER_PC_OID, initiator, target)))
			log_warn("cluster: cannot record that %s is served by %s: %s", initiator, target,
				 strerror(-rc));
		else
			log_info("cluster: %s placed on gateway %s%s%s", initiator, target,
				 cur[0] ? " (was " : "", cur[0] ? cur : "");
	}
	pthread_mutex_unlock(&cl->place_lock);
	json_decref(placement);
	if (r == CLUSTER_ELSEWHERE)
		log_info("cluster: login of %s redirected to gateway %s at %s", initiator, target, addr);
	return r;
}

void cluster_released(struct cluster *cl, const char *initiator)
{
	log_debug("cluster: %s closed here (gateway %s holds no lock of it now)", initiator, cl->name);
}

int cluster_drain(struct cluster *cl, const char *name, bool on, char *msg, size_t msglen)
{
	char key[sizeof(CLUSTER_DRAIN_PREFIX) + CLUSTER_NAME_MAX];
	bool known;
	int rc;

	if ((rc = cluster_table_read(cl))) {
		snprintf(msg, msglen, "cannot read the gateway table: %s", strerror(-rc));
		return rc;
	}
	pthread_mutex_lock(&cl->lock);
	known = strlen(name) < CLUSTER_NAME_MAX && cluster_gw_find(cl, name);
	pthread_mutex_unlock(&cl->lock);
	if (!known) {
		snprintf(msg, msglen, "no gateway called %.40s in the cluster", name);
		return -ENOENT;
	}
	snprintf(key, sizeof(key), "%s%s", CLUSTER_DRAIN_PREFIX, name);
	if ((rc = cluster_omap_put(cl, CLUSTER_GW_OID, key, on ? "1" : NULL))) {
		snprintf(msg, msglen, "cannot mark gateway %s %s: %s", name,
			 on ? "draining" : "not draining", strerror(-rc));
		return rc;
	}
	log_notice("cluster: gateway %s %s (asked through gateway %s)", name,
		   on ? "drains: its PCs move to the other gateways" : "takes PCs again", cl->name);
	cluster_table_read(cl);
	return 0;
}

void cluster_drain_step(struct cluster *cl)
{
	const char *k;
	json_t *placement, *v;
	unsigned sent = 0;
	bool draining;
	struct gw *me;
	int rc;

	pthread_mutex_lock(&cl->lock);
	me = cluster_gw_find(cl, cl->name);
	draining = me && me->draining;
	pthread_mutex_unlock(&cl->lock);
	if (!draining || !(placement = cluster_placement_read(cl, &rc)))
		return;
	json_object_foreach(placement, k, v) {
		if (sent == DRAIN_PER_BEAT)
			break;
		if (!json_string_value(v) || strcmp(json_string_value(v), cl->name) != 0)
			continue;
		/* placement first: its next login must not come back here */
		if ((rc = cluster_omap_put(cl, CLUSTER_PC_OID, k, NULL))) {
			log_warn("cluster: drain: cannot clear the placement of %s: %s", k, strerror(-rc));
			break;
		}
		log_notice("cluster: drain: %s sent to another gateway (its sessions here end)", k);
		if (cl->o.end_sessions)
			cl->o.end_sessions(cl->o.arg, k);
		sent++;
	}
	json_decref(placement);
}

bool cluster_may_break(void *arg, const char *owner_addr)
{
	struct cluster *cl = arg;
	int64_t now;

	for (int pass = 0; pass < 2; pass++) {
		pthread_mutex_lock(&cl->lock);
		now = cluster_now_ms();
		for (unsigned i = 0; i < cl->ngw; i++) {
			struct gw *g = &cl->gws[i];
			enum gw_state st;
			bool ok;

			if (strcmp(g->ceph_addr, owner_addr) != 0)
				continue;
			st = cluster_gw_state(cl, g, now);
			ok = strcmp(g->name, cl->name) != 0 &&
			     (st == GW_DEAD || st == GW_STOPPED || g->cutoff);
			pthread_mutex_unlock(&cl->lock);
			if (ok)
				log_notice("cluster: taking over from gateway %s (%s%s): its lock is "
					   "broken and its Ceph address %s blocklisted", g->name,
					   cluster_state_name(st), g->cutoff ? ", cut off from the PCs" : "",
					   owner_addr);
			else if (strcmp(g->name, cl->name) == 0)
				log_notice("cluster: the lock is held by %s, this gateway's own entry: "
					   "not broken", owner_addr);
			else
				log_notice("cluster: the lock is held by gateway %s (%s), which is live: "
					   "not broken", g->name, cluster_state_name(st));
			return ok;
		}
		pthread_mutex_unlock(&cl->lock);
		/* unknown: our copy may predate a gateway that just joined */
		if (pass == 0 && cluster_table_read(cl))
			return false;
	}
	log_notice("cluster: the lock is held by %s, which is no gateway of the table (a previous "
		   "instance): broken, and that address blocklisted", owner_addr);
	return true;
}
