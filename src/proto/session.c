/*
 * session.c - the server's registry of connections and sessions: TSIH
 * allocation, session reinstatement, target lookup, and shutdown.
 * Reinstatement and the admin's kills only shutdown(2) a connection's
 * socket; its own thread then waits for its commands in flight
 * (inflight_end) before the session and its LUNs go.
 */
#include "proto/conn.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void iscsi_server_defaults(struct iscsi_server *srv)
{
	memset(srv, 0, sizeof(*srv));
	srv->prefs.mrdsl = 262144;
	srv->prefs.max_burst = 16773120;     /* largest multiple of 4 KiB under the 2^24-1 limit */
	srv->prefs.first_burst = 262144;
	srv->prefs.max_r2t = 8;
	srv->prefs.allow_digests = true;
	srv->max_conns = 1024;
	srv->max_logins_per_addr = 16;
	srv->max_sessions_per_initiator = 8;
	srv->queue_depth = 128;
	srv->cmd_workers = 64;
	srv->conn_inflight = 32;
	srv->login_timeout_s = 15;
	srv->nop_interval_s = 30;
	srv->send_timeout_s = 60;
	srv->max_xfer = 64u << 20;
	srv->zero_copy = false;
}

int iscsi_server_init(struct iscsi_server *srv)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&srv->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&srv->cond, &ca);
	pthread_condattr_destroy(&ca);
	srv->next_tsih = 1;
	srv->next_nexus_id = 1;
	srv->next_ttt = 1;
	return inflight_pool_init(srv);
}

static void deadline_in(struct timespec *ts, unsigned secs)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += secs;
}

unsigned iscsi_server_shutdown(struct iscsi_server *srv)
{
	struct timespec ts;
	unsigned left;

	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	for (struct iscsi_conn *c = srv->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	deadline_in(&ts, 30);
	while (srv->nconns > 0) {
		if (pthread_cond_timedwait(&srv->cond, &srv->lock, &ts) == ETIMEDOUT) {
			log_err("shutdown: %u connections did not end within 30s", srv->nconns);
			break;
		}
	}
	left = srv->nconns;
	pthread_mutex_unlock(&srv->lock);
	/* With a connection still running, its commands may still need the
	 * workers: they stay (and the process is about to exit). */
	if (left == 0)
		inflight_pool_stop(srv);
	return left;
}

int iscsi_server_add_target(struct iscsi_server *srv, struct iscsi_target *t)
{
	unsigned n = srv->ntargets;

	if (srv->targets_cap == 0) {
		/* One array for good: readers never see it move. */
		struct iscsi_target **a = calloc(ISCSI_MAX_TARGETS, sizeof(*a));
		if (!a)
			return -ENOMEM;
		for (unsigned i = 0; i < n; i++)
			a[i] = srv->targets[i];
		srv->targets = a;
		srv->targets_cap = ISCSI_MAX_TARGETS;
	}
	if (n >= srv->targets_cap)
		return -ENOSPC;
	srv->targets[n] = t;
	__atomic_store_n(&srv->ntargets, n + 1, __ATOMIC_RELEASE);
	return 0;
}

struct iscsi_target *target_find(struct iscsi_server *srv, const char *name)
{
	unsigned n = __atomic_load_n(&srv->ntargets, __ATOMIC_ACQUIRE);

	/* iSCSI names are case-insensitive once normalised (RFC 3722). */
	for (unsigned i = 0; i < n; i++)
		if (strcasecmp(srv->targets[i]->name, name) == 0)
			return srv->targets[i];
	return NULL;
}

void session_register(struct iscsi_server *srv, struct iscsi_session *s)
{
	pthread_mutex_lock(&srv->lock);
	do {
		bool used = false;
		s->tsih = srv->next_tsih++;
		if (s->tsih == 0)
			continue;
		for (struct iscsi_session *o = srv->sessions; o; o = o->next)
			if (o->tsih == s->tsih)
				used = true;
		if (!used)
			break;
	} while (1);
	s->nexus.id = srv->next_nexus_id++;
	s->next = srv->sessions;
	srv->sessions = s;
	s->conn->in_login = false;
	pthread_mutex_unlock(&srv->lock);
}

unsigned session_count_others(struct iscsi_server *srv, const char *initiator, const uint8_t *isid)
{
	unsigned n = 0;

	pthread_mutex_lock(&srv->lock);
	for (struct iscsi_session *s = srv->sessions; s; s = s->next)
		if (strcasecmp(s->nexus.initiator_name, initiator) == 0 && memcmp(s->isid, isid, 6))
			n++;
	pthread_mutex_unlock(&srv->lock);
	return n;
}

void session_unregister(struct iscsi_server *srv, struct iscsi_session *s)
{
	pthread_mutex_lock(&srv->lock);
	for (struct iscsi_session **pp = &srv->sessions; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
}

static struct iscsi_session *find_port(struct iscsi_server *srv, const char *initiator, const uint8_t *isid)
{
	for (struct iscsi_session *s = srv->sessions; s; s = s->next)
		if (memcmp(s->isid, isid, 6) == 0 && strcasecmp(s->nexus.initiator_name, initiator) == 0)
			return s;
	return NULL;
}

void session_reinstate(struct iscsi_server *srv, const char *initiator, const uint8_t *isid)
{
	struct iscsi_session *old;
	struct timespec ts;

	deadline_in(&ts, 10);
	pthread_mutex_lock(&srv->lock);
	while ((old = find_port(srv, initiator, isid)) != NULL) {
		log_notice("session 0x%04x of %s reinstated: closing the old one", old->tsih, initiator);
		shutdown(old->conn->fd, SHUT_RDWR);
		/* Its thread unregisters it; wait so the new one never overlaps. */
		if (pthread_cond_timedwait(&srv->cond, &srv->lock, &ts) == ETIMEDOUT) {
			log_warn("old session of %s still ending after 10s", initiator);
			break;
		}
	}
	pthread_mutex_unlock(&srv->lock);
}

void session_close_target(struct iscsi_server *srv, struct iscsi_target *t, struct iscsi_conn *except)
{
	pthread_mutex_lock(&srv->lock);
	for (struct iscsi_session *s = srv->sessions; s; s = s->next)
		if (s->target == t && s->conn != except)
			shutdown(s->conn->fd, SHUT_RDWR);
	pthread_mutex_unlock(&srv->lock);
}

void iscsi_session_foreach(struct iscsi_server *srv,
			   void (*fn)(void *ctx, const struct iscsi_session_info *si), void *ctx)
{
	pthread_mutex_lock(&srv->lock);
	for (struct iscsi_session *s = srv->sessions; s; s = s->next) {
		struct iscsi_session_info si = { .tsih = s->tsih, .discovery = s->discovery,
						 .since = s->since };
		snprintf(si.initiator, sizeof(si.initiator), "%s", s->nexus.initiator_name);
		snprintf(si.target, sizeof(si.target), "%s", s->target ? s->target->name : "");
		snprintf(si.peer, sizeof(si.peer), "%s", s->conn->peer);
		fn(ctx, &si);
	}
	pthread_mutex_unlock(&srv->lock);
}

int iscsi_session_kill(struct iscsi_server *srv, unsigned tsih)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&srv->lock);
	for (struct iscsi_session *s = srv->sessions; s; s = s->next) {
		if (s->tsih == tsih) {
			log_notice("session 0x%04x of %s ended by the admin", tsih, s->nexus.initiator_name);
			shutdown(s->conn->fd, SHUT_RDWR);
			rc = 0;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return rc;
}

unsigned iscsi_kill_initiator(struct iscsi_server *srv, const char *initiator)
{
	unsigned n = 0;

	pthread_mutex_lock(&srv->lock);
	for (struct iscsi_session *s = srv->sessions; s; s = s->next) {
		if (strcasecmp(s->nexus.initiator_name, initiator) == 0) {
			shutdown(s->conn->fd, SHUT_RDWR);
			n++;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return n;
}
