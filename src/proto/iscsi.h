/*
 * iscsi.h - the iSCSI target service (RFC 7143): what the daemon sees.
 *
 * The daemon fills a struct iscsi_server with its targets and limits,
 * calls iscsi_server_init(), hands each accepted TCP connection to
 * iscsi_conn_start() (which runs it on a thread of its own), and on
 * shutdown calls iscsi_server_shutdown(), which ends every connection and
 * waits for them.
 *
 * Model: one thread per connection, blocking socket I/O.  A connection
 * executes its SCSI commands itself, so a slow client (or a slow disk
 * request) stalls only its own connection.  Sessions have exactly one
 * connection (MaxConnections=1) and ErrorRecoveryLevel 0: a connection
 * failure ends its session, and the initiator recovers by logging in again
 * (session reinstatement replaces a stale session with the same ISID).
 */
#ifndef PRISTINE_ISCSI_H
#define PRISTINE_ISCSI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/params.h"
#include "scsi/scsi.h"

struct iscsi_target {
	char name[ISCSI_NAME_MAX];
	uint16_t tpgt;
	struct scsi_target *scsi;     /* LUNs; owned by the daemon */
};

struct iscsi_session;
struct iscsi_conn;

struct iscsi_server {
	/* ---- configuration, set before iscsi_server_init() ---- */
	struct neg_prefs prefs;
	struct iscsi_target **targets;
	unsigned ntargets;
	unsigned max_conns;           /* connections at once, all states */
	unsigned queue_depth;         /* commands in flight per session */
	unsigned login_timeout_s;     /* a login must finish within this */
	unsigned nop_interval_s;      /* idle time before a NOP-In ping */
	unsigned send_timeout_s;      /* a peer that reads nothing this long is dropped */
	uint32_t max_xfer;            /* largest EDTL we buffer for one command */

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
};

/* Defaults for every configurable field; targets left empty. */
void iscsi_server_defaults(struct iscsi_server *srv);
int iscsi_server_init(struct iscsi_server *srv);
/* Stop: close every connection, wait for their threads, free sessions. */
void iscsi_server_shutdown(struct iscsi_server *srv);

/*
 * Serve an accepted socket on a new thread.  Takes ownership of fd (it is
 * closed on every path).  Refuses (closes at once) when max_conns
 * connections are live or the server is stopping.  Returns 0 or -errno.
 */
int iscsi_conn_start(struct iscsi_server *srv, int fd);

#endif
