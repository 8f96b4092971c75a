/*
 * conn_guard.h - flood guards for a libmicrohttpd server, shared by the
 * admin socket (api.c) and the web console (console/console_http.c).
 *
 * A connection limit alone lets a few hundred connections that trickle a
 * byte now and then hold every slot for as long as they like (the idle
 * timeout restarts at each byte).  Two guards, kept in a list of live
 * connections and enforced by a reaper thread that shuts sockets
 * (libmicrohttpd then sees them closed):
 *   - a request must arrive whole within request_s of the connection's
 *     start or of its previous answer;
 *   - a peer (a key: the admin socket's SO_PEERCRED pid, the console's
 *     address) keeps only its per_key newest connections, the others
 *     closing once idle for grace_ms, so hoarding gains nothing while its
 *     newest request, the one it waits for, is still answered (the grace
 *     covers the worker threads accepting a burst out of order).
 * A request being answered is never cut.  libmicrohttpd closes a
 * connection's fd only after its NOTIFY_CLOSED callback, which takes the
 * guard's lock, so the reaper never touches a closed or reused fd.
 *
 * Use: conn_guard_start; in MHD_OPTION_NOTIFY_CONNECTION call
 * conn_guard_notify with the peer's key; conn_guard_busy(true) when a
 * request is whole and about to be answered, (false) when it completed;
 * conn_guard_stop before MHD_stop_daemon, conn_guard_destroy after it.
 */
#ifndef PRISTINE_CONN_GUARD_H
#define PRISTINE_CONN_GUARD_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct conn_guard_conn;

struct conn_guard {
	/* settings, set before conn_guard_start */
	const char *who;          /* log prefix: "api", "console" */
	unsigned request_s;       /* a whole request within this */
	unsigned per_key;         /* newest connections a key keeps; 0 = no limit */
	unsigned grace_ms;        /* idle time before a hoarded one closes */
	/* state */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct conn_guard_conn *conns;
	uint64_t seq;             /* last connection's order */
	bool run, stopping;
	pthread_t reaper;
};

/* Start the reaper.  Without it (0 is returned anyway, with a warning)
 * the server works, only unguarded. */
int conn_guard_start(struct conn_guard *g);
/* Stop the reaper (before MHD_stop_daemon: it must not shut what is
 * being closed).  The list stays usable: MHD's closing connections
 * leave it through conn_guard_notify. */
void conn_guard_stop(struct conn_guard *g);
/* Free the lock, after MHD_stop_daemon (every connection has left). */
void conn_guard_destroy(struct conn_guard *g);

/*
 * MHD_OPTION_NOTIFY_CONNECTION's work: track the connection c under key
 * (0 = unknown: never shed as a hoard) and keytext ("pid 123", "address
 * 10.0.0.5", for messages) on STARTED, forget it on CLOSED.
 */
void conn_guard_notify(struct conn_guard *g, struct MHD_Connection *c, void **socket_context,
		       enum MHD_ConnectionNotificationCode toe, uint64_t key, const char *keytext);

/* c's request is whole and being answered (busy), or done: its next
 * request's deadline starts now. */
void conn_guard_busy(struct conn_guard *g, struct MHD_Connection *c, bool busy);

#endif
