/*
 * iscsi.h - the iSCSI target service (RFC 7143): what the daemon sees.
 *
 * The daemon fills a struct iscsi_server with its targets and limits,
 * calls iscsi_server_init(), hands each accepted TCP connection to
 * iscsi_conn_start() (which runs it on a thread of its own), and on
 * shutdown calls iscsi_server_shutdown(), which ends every connection and
 * waits for them.
 *
 * Model: one thread per connection, blocking socket I/O, which reads
 * the connection's PDUs and answers everything but the common SCSI
 * commands itself.  READ, WRITE (once all their data is in) and
 * SYNCHRONIZE CACHE with the SIMPLE task attribute execute on a
 * server-wide pool of worker threads (inflight.c), up to conn_inflight of
 * one connection at a time, and their responses go out as they finish,
 * so a PC with 32 commands outstanding has 32 I/Os in flight to its
 * store (while the store answers within microseconds - the page cache -
 * the connection's thread runs them itself: waking a worker would cost
 * more).  Every other command is a barrier: it waits until the
 * connection's earlier ones have been answered, then runs on the
 * connection's thread, before the next PDU is read.  Sessions have exactly one
 * connection (MaxConnections=1) and ErrorRecoveryLevel 0: a connection
 * failure ends its session, and the initiator recovers by logging in again
 * (session reinstatement replaces a stale session with the same ISID).
 */
#ifndef PRISTINE_ISCSI_H
#define PRISTINE_ISCSI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/login_status.h"
#include "proto/params.h"
#include "scsi/scsi.h"
#include "util/iostats.h"

struct iscsi_target {
	char name[ISCSI_NAME_MAX];
	uint16_t tpgt;
	void *priv;                   /* the daemon's (e.g. its image) */
};

/*
 * What a normal session sees is decided when its login completes: the
 * daemon's attach hook returns the SCSI target (LUNs) for this initiator
 * on this target - its own overlay - and a handle that detach gets back
 * when the session ends.  attach returns 0, or a login status
 * (login_status.h: class << 8 | detail, e.g. LOGIN_AUTHORIZATION_FAILED,
 * LOGIN_SERVICE_UNAVAILABLE) with msg set for the log.
 */
/*
 * CHAP credentials of one client (see chap_secret below): the name and
 * secret the initiator must prove, and - for mutual CHAP - the name and
 * secret we answer its challenge with ("" when the client has none).
 */
#define ISCSI_CHAP_MAX 256
struct iscsi_chap_creds {
	char user[ISCSI_CHAP_MAX], secret[ISCSI_CHAP_MAX];
	char muser[ISCSI_CHAP_MAX], msecret[ISCSI_CHAP_MAX];
};

/*
 * chap_secret, called during a login before attach, says whether this
 * initiator must authenticate with CHAP: 1 with cr filled, 0 when it logs
 * in without (cr untouched).  target is NULL for a discovery session.
 * The caller wipes cr when the login ends.  NULL: no CHAP anywhere.
 */
/*
 * admit, called for every login request (normal and discovery sessions)
 * once the initiator name is known, before authentication: may this
 * initiator log in from peer?  0, or a login status
 * (LOGIN_AUTHENTICATION_FAILED) with msg set for the log.  NULL: every initiator from everywhere.
 */
/*
 * route, called once per normal-session login when its names are known
 * (after admit, before authentication): where is this initiator served?
 * local is the address the connection reached us on.  0 = here, go on;
 * LOGIN_TARGET_MOVED_TEMPORARILY with addr set to "HOST:PORT" = the
 * login is redirected there (the response carries TargetAddress, RFC
 * 7143 13.9); LOGIN_SERVICE_UNAVAILABLE = nobody can serve it now (the
 * initiator retries).  NULL: every login is served here (a single
 * server).
 */
/*
 * io_stats, called once after a successful attach with its handle: where
 * this session's commands are counted (util/iostats.h) - the PC's and its
 * image's counters and the PC's boot tracker, each NULL when not counted.
 * They must stay valid until detach.  NULL: nothing is counted.
 */
struct iscsi_io_stats {
	struct iostats *pc, *image;
	struct boot_track *boot;
	/* in (set before the call): the session is a PC's boot firmware's
	 * (iPXE, by its ISID 40 00 27 23 - the PC is still booting), not
	 * its OS's */
	bool firmware;
};

#define ISCSI_ADDR_MAX 80
struct iscsi_hooks {
	int (*route)(void *ctx, const char *initiator, const struct sockaddr *local,
		     char *addr, size_t addrlen);
	int (*admit)(void *ctx, const char *initiator, const struct sockaddr *peer,
		     char *msg, size_t msglen);
	int (*chap_secret)(void *ctx, const char *initiator, const char *target,
			   struct iscsi_chap_creds *cr);
	int (*attach)(void *ctx, struct iscsi_target *t, const char *initiator,
		      struct scsi_target **scsi, void **handle, char *msg, size_t msglen);
	void (*detach)(void *ctx, void *handle);
	void (*io_stats)(void *ctx, void *handle, const char *initiator, struct iscsi_io_stats *out);
	void *ctx;
};

/* A snapshot of one session, for listings. */
struct iscsi_session_info {
	unsigned tsih;
	char initiator[ISCSI_NAME_MAX];
	char target[ISCSI_NAME_MAX];
	char peer[80];
	bool discovery;
	int64_t since;                /* unix time of login */
};

/* Why logins were refused, counted by the server (iscsi_refused). */
enum iscsi_refusal {
	REFUSED_UNKNOWN,              /* not a known client (enrolment off), or not of this target */
	REFUSED_CHAP,                 /* CHAP failed or missing */
	REFUSED_ADDRESS,              /* a client's name from an address it is not bound to */
	REFUSED_LIMITS,               /* a connection, login or session limit; out of resources */
	REFUSED_OTHER,                /* malformed logins, unknown targets, the store failing... */
	REFUSED_N
};
/* "unknown", "chap", "address", "limits", "other". */
const char *iscsi_refusal_name(enum iscsi_refusal r);

struct iscsi_session;
struct iscsi_conn;
struct iscsi_pool;

struct iscsi_server {
	/* ---- configuration, set before iscsi_server_init() ---- */
	struct neg_prefs prefs;
	struct iscsi_target **targets;  /* set directly, or grown by iscsi_server_add_target */
	unsigned ntargets;            /* read with an acquire load: targets may be added live */
	unsigned targets_cap;
	unsigned max_conns;           /* connections at once, all states */
	unsigned max_logins_per_addr; /* connections still logging in, per source address */
	unsigned max_sessions_per_initiator;  /* sessions of one initiator name */
	unsigned queue_depth;         /* commands per session: the CmdSN window */
	unsigned cmd_workers;         /* worker threads, all connections (0: none, one command at a time) */
	unsigned conn_inflight;       /* commands of one connection executing at once */
	unsigned login_timeout_s;     /* a login must finish within this */
	unsigned nop_interval_s;      /* idle time before a NOP-In ping */
	unsigned send_timeout_s;      /* a peer that reads nothing this long is dropped */
	uint32_t max_xfer;            /* largest EDTL we buffer for one command */
	bool zero_copy;               /* splice large Data-In from the page cache (datain.c) */
	struct iscsi_hooks hooks;

	/* ---- runtime, owned by the iscsi layer ---- */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct iscsi_conn *conns;     /* every live connection */
	struct iscsi_session *sessions;
	unsigned nconns;
	uint16_t next_tsih;
	uint64_t next_nexus_id;
	uint32_t next_ttt;
	bool stopping;
	struct iscsi_pool *pool;      /* the command workers (inflight.c) */
	_Atomic uint64_t refused[REFUSED_N];  /* logins refused, by reason */
};

/* Defaults for every configurable field; targets left empty. */
void iscsi_server_defaults(struct iscsi_server *srv);
/* The runtime part; 0 or -ENOMEM. */
int iscsi_server_init(struct iscsi_server *srv);
/*
 * Serve one more target from now on (may be called while connections
 * run; callers serialise their own calls).  Targets are never removed;
 * the array has room for ISCSI_MAX_TARGETS.  t is borrowed.  0, -ENOSPC
 * or -ENOMEM.
 */
#define ISCSI_MAX_TARGETS 1024u
int iscsi_server_add_target(struct iscsi_server *srv, struct iscsi_target *t);

/*
 * Stop: close every connection and wait (up to 30 s) for their threads.
 * Returns how many are still running: if not 0, what they use (LUNs,
 * backends) must not be freed.
 */
unsigned iscsi_server_shutdown(struct iscsi_server *srv);

/*
 * Call fn for a snapshot of every logged-in session (under the server
 * lock: fn must not call back into the iscsi layer).
 */
void iscsi_session_foreach(struct iscsi_server *srv,
			   void (*fn)(void *ctx, const struct iscsi_session_info *si), void *ctx);
/* End a session by TSIH.  Returns 0 or -ENOENT. */
int iscsi_session_kill(struct iscsi_server *srv, unsigned tsih);
/* End every session of an initiator (normal and discovery); returns how many. */
unsigned iscsi_kill_initiator(struct iscsi_server *srv, const char *initiator);

/*
 * Serve an accepted socket on a new thread.  Takes ownership of fd (it is
 * closed on every path).  Refuses (closes at once) when max_conns
 * connections are live or the server is stopping.  Returns 0 or -errno.
 */
int iscsi_conn_start(struct iscsi_server *srv, int fd);

#endif
