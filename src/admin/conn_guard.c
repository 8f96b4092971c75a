/*
 * conn_guard.c - the request deadline and the per-peer hoarding guard of
 * a libmicrohttpd server (conn_guard.h).
 */
#include "admin/conn_guard.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* One live connection, from MHD's NOTIFY_STARTED to NOTIFY_CLOSED. */
struct conn_guard_conn {
	struct conn_guard_conn *prev, *next;
	int fd;
	uint64_t key;           /* its peer, 0 if unknown */
	char keytext[64];
	int64_t since_ms;       /* start, or end of its last request */
	uint64_t seq;           /* the same moment as an order (ms ties in a burst) */
	bool busy;              /* its request is whole and being answered */
	bool cut;               /* shut down by a guard */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void conn_guard_busy(struct conn_guard *g, struct MHD_Connection *c, bool busy)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_guard_conn *gc = ci ? ci->socket_context : NULL;

	if (!gc)
		return;
	pthread_mutex_lock(&g->lock);
	gc->busy = busy;
	gc->since_ms = mono_ms();
	gc->seq = ++g->seq;
	pthread_mutex_unlock(&g->lock);
}

void conn_guard_notify(struct conn_guard *g, struct MHD_Connection *c, void **socket_context,
		       enum MHD_ConnectionNotificationCode toe, uint64_t key, const char *keytext)
{
	struct conn_guard_conn *gc = *socket_context;
	const union MHD_ConnectionInfo *ci;
	unsigned same = 0;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (!gc)
			return;
		pthread_mutex_lock(&g->lock);
		if (gc->prev)
			gc->prev->next = gc->next;
		else
			g->conns = gc->next;
		if (gc->next)
			gc->next->prev = gc->prev;
		pthread_mutex_unlock(&g->lock);
		free(gc);
		*socket_context = NULL;
		return;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci || !(gc = calloc(1, sizeof(*gc))))
		return;
	gc->fd = ci->connect_fd;
	gc->key = key;
	snprintf(gc->keytext, sizeof(gc->keytext), "%s", keytext ? keytext : "");
	gc->since_ms = mono_ms();
	pthread_mutex_lock(&g->lock);
	gc->seq = ++g->seq;
	for (struct conn_guard_conn *o = g->conns; o && key && g->per_key; o = o->next)
		if (o->key == key && !o->cut)
			same++;
	gc->next = g->conns;
	if (g->conns)
		g->conns->prev = gc;
	g->conns = gc;
	if (g->per_key && same >= g->per_key)
		pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->lock);
	*socket_context = gc;
}

/*
 * Should the reaper shut gc?  1 when its request is late, 2 when its
 * peer holds per_key newer connections and gc has sat idle for
 * grace_ms.  A request being answered is never cut.  Lock held.
 */
static int verdict(const struct conn_guard *g, const struct conn_guard_conn *gc, int64_t now)
{
	unsigned newer = 0;

	if (gc->busy || gc->cut)
		return 0;
	if (now - gc->since_ms >= (int64_t)g->request_s * 1000)
		return 1;
	if (!g->per_key || !gc->key || now - gc->since_ms < (int64_t)g->grace_ms)
		return 0;
	for (const struct conn_guard_conn *o = g->conns; o; o = o->next)
		if (o->key == gc->key && !o->cut && o->seq > gc->seq)
			newer++;
	return newer >= g->per_key ? 2 : 0;
}

/* The guards' thread: every second, or when woken by a crowded peer,
 * shut what verdict() says. */
static void *reaper(void *arg)
{
	struct conn_guard *g = arg;
	unsigned late_total = 0, shed_total = 0;

	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		int64_t now = mono_ms();
		unsigned late = 0, shed = 0;
		char shed_key[64] = "";
		struct timespec ts;

		for (struct conn_guard_conn *gc = g->conns; gc; gc = gc->next) {
			int v = verdict(g, gc, now);
			if (!v)
				continue;
			gc->cut = true;
			shutdown(gc->fd, SHUT_RDWR);
			if (v == 1) {
				late++;
			} else {
				shed++;
				snprintf(shed_key, sizeof(shed_key), "%s", gc->keytext);
			}
		}
		/* Bounded logging: the first 20 rounds of each kind. */
		if (late && late_total++ < 20)
			log_notice("%s: closed %u connection%s that sent no whole request within %u s",
				   g->who, late, late == 1 ? "" : "s", g->request_s);
		if (shed && shed_total++ < 20)
			log_notice("%s: %s (and maybe others) held more than %u connections; "
				   "closed %u idle one%s", g->who, shed_key, g->per_key, shed,
				   shed == 1 ? "" : "s");
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&g->cv, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int conn_guard_start(struct conn_guard *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->conns = NULL;
	g->seq = 0;
	g->stopping = false;
	g->run = pthread_create(&g->reaper, NULL, reaper, g) == 0;
	if (!g->run)
		log_warn("%s: cannot start the request-deadline thread", g->who);
	return 0;
}

void conn_guard_stop(struct conn_guard *g)
{
	if (g->run) {
		pthread_mutex_lock(&g->lock);
		g->stopping = true;
		pthread_cond_signal(&g->cv);
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->reaper, NULL);
		g->run = false;
	}
}

void conn_guard_destroy(struct conn_guard *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->lock);
}
