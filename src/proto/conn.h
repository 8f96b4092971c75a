/*
 * conn.h - internals shared by the iSCSI protocol files: a connection, its
 * session, PDU receive/send, and the per-phase handlers.
 *
 * Ownership: a connection and its session belong to the connection's
 * thread.  Other threads touch a connection only through the server lock
 * (listing, reinstatement) and shutdown(2) on its socket, which makes the
 * owning thread leave its loop and clean up - and the command workers
 * (inflight.c), which execute its SCSI commands and send their responses.
 * What they share with the connection's thread is under c->mu (the
 * command window and the in-flight count) and c->send_mu (the socket's
 * send side and StatSN); the order is send_mu before mu.  The
 * connection's thread frees the connection only once no work of it is in
 * flight (inflight_end).
 */
#ifndef PRISTINE_CONN_H
#define PRISTINE_CONN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/iscsi.h"
#include "proto/pdu.h"

#define AHS_MAX 1024          /* largest AHS we accept (an extended CDB needs < 300) */
#define LOGIN_DSL_MAX 8192    /* data segment limit before full feature phase */

struct iscsi_session {
	struct iscsi_session *next;
	struct iscsi_server *srv;
	struct iscsi_target *target;   /* NULL for discovery */
	struct scsi_target *scsi;      /* this initiator's LUNs (from attach) */
	void *handle;                  /* for detach */
	struct iscsi_io_stats io;      /* where its commands are counted (io_stats hook) */
	struct iscsi_conn *conn;
	int64_t since;
	struct scsi_nexus nexus;
	uint8_t isid[6];
	uint16_t tsih;
	bool discovery;
	bool nexus_registered;
};

/* One outstanding R2T: the initiator owes us [offset, offset+len). */
struct r2t {
	uint32_t ttt, offset, len;
};

/* A write command waiting for its Data-Out. */
struct iscsi_task {
	struct iscsi_task *next;
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t cdb[260];
	unsigned cdb_len;
	uint32_t itt, edtl;
	uint64_t lun;
	int64_t arrived_ns;           /* when its SCSI Command PDU was taken (iostats) */
	uint32_t want;                /* Data-Out bytes the CDB consumes (<= edtl) */
	uint8_t *buf;                 /* want bytes */
	uint32_t received;            /* bytes received, always a prefix (may pass want) */
	bool unsolicited;             /* unsolicited Data-Out still expected */
	uint32_t unsol_limit;         /* end of the unsolicited burst */
	uint32_t exp_datasn;          /* next DataSN in the current sequence */
	uint32_t next_r2t_offset;     /* first byte not yet asked for */
	uint32_t r2tsn;
	struct r2t r2ts[16];          /* FIFO of outstanding R2Ts, head = active */
	unsigned nr2t;
};

struct iscsi_job;

/* A non-immediate command that arrived ahead of ExpCmdSN. */
struct held_pdu {
	struct held_pdu *next;
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t *ahs;
	uint32_t ahs_len;
	uint8_t *data;
	uint32_t dsl;
};

enum conn_state { CONN_LOGIN, CONN_FFP, CONN_CLOSING };

struct iscsi_conn {
	struct iscsi_conn *next;
	struct iscsi_server *srv;
	int fd;
	char peer[80];                /* "addr:port" for logs */
	struct sockaddr_storage peer_addr;  /* the same, for the admit hook */
	struct sockaddr_storage local;
	enum conn_state state;
	bool in_login;                /* no session yet (under the server lock) */
	struct iscsi_params params;
	struct iscsi_session *sess;
	uint16_t cid;
	uint32_t statsn;              /* next StatSN; under send_mu once in full feature phase */
	uint32_t exp_cmdsn;           /* the session's; one connection per session */
	/* current PDU */
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t ahs[AHS_MAX];
	uint32_t ahs_len;
	/* tasks awaiting Data-Out, and what they hold */
	struct iscsi_task *tasks;
	unsigned ntasks;
	uint64_t task_bytes;
	struct held_pdu *held;
	unsigned nheld;
	uint32_t dead_itt[8];         /* tasks ended by a Data-Out error (ring) */
	unsigned dead_next;
	/* text response being fetched in pieces (C bit) */
	struct kvbuf text_out;
	size_t text_sent;
	uint32_t text_ttt, text_itt;
	struct kvbuf text_in;         /* text request arriving in pieces */
	uint32_t text_in_itt;
	/* NOP-In keepalive */
	uint32_t ping_ttt;            /* outstanding ping, 0xffffffff if none */
	struct login_state *login;    /* login in progress (login.c) */
	bool closing;                 /* leave the loop after this PDU */
	/*
	 * Commands executing on the workers (inflight.c).  mu guards
	 * exp_cmdsn, ntasks, nheld (written by the connection's thread
	 * under it; that thread reads them without) and the fields below;
	 * send_mu makes each PDU's bytes one unit on the socket and stamps
	 * its StatSN.
	 */
	pthread_mutex_t mu, send_mu;
	pthread_cond_t idle;          /* broadcast whenever inflight drops or sending ends */
	unsigned inflight;            /* submitted, not yet answered and freed */
	unsigned completing;          /* of those, executed and waiting to be (or being) sent */
	struct iscsi_job *done, **done_tail;  /* executed, response not yet sent */
	bool sending;                 /* a worker is sending the done queue */
	bool dead;                    /* the socket failed or the connection ends: send nothing */
	uint32_t exec_ns;             /* recent execution time of a command that may overlap
				       * (moving average, atomic; inflight_note_exec) */
};

/* ---- conn.c: I/O ---- */
/* Read the rest of a data segment of dsl bytes (+ pad, + digest) into dst. */
int conn_recv_data(struct iscsi_conn *c, void *dst, uint32_t dsl);
/* Read and drop a data segment. */
int conn_discard_data(struct iscsi_conn *c, uint32_t dsl);
/*
 * Send one PDU: bhs (48 bytes, DSL filled in here), data (may be NULL).
 * ExpCmdSN/MaxCmdSN are filled in here for every target PDU except a Login
 * Response that failed; StatSN is the caller's business.
 */
int conn_send(struct iscsi_conn *c, uint8_t *bhs, const void *data, uint32_t dlen);
/*
 * The same for a PDU whose dlen data bytes wait in a pipe (no data
 * digest): header by sendmsg, data spliced from pipe_rd into the socket
 * (the pages are sent, not copied), then the pad.  more: another PDU
 * follows at once (MSG_MORE, so TCP may fill packets across them).
 */
int conn_send_pipe(struct iscsi_conn *c, uint8_t *bhs, int pipe_rd, uint32_t dlen, bool more);
/*
 * conn_send and conn_send_pipe may be called from any thread: each PDU
 * goes out whole under c->send_mu, which also stamps its StatSN (RFC
 * 7143 4.2.2.2: StatSN is assigned in the order responses are sent):
 * SCSI Response, Data-In with the S bit, Text, Logout and TMF Responses,
 * Reject and a NOP-In answering a NOP-Out take the next StatSN; R2T and a
 * NOP-In ping carry it without taking it; the caller never sets it
 * (Login Responses excepted, which login.c stamps itself).
 */
/* Send a Reject for the current PDU (c->bhs) with the given reason. */
int conn_reject(struct iscsi_conn *c, uint8_t reason);
/* The window end we advertise (takes c->mu). */
uint32_t conn_max_cmdsn(struct iscsi_conn *c);
/* The same with c->mu held. */
uint32_t conn_max_cmdsn_locked(const struct iscsi_conn *c);
/* Allocate a target transfer tag (never 0xffffffff). */
uint32_t conn_new_ttt(struct iscsi_conn *c);

/* ---- datain.c ---- */
/* With zero-copy, Data-In PDUs of at least this many bytes are spliced
 * from the page cache (see datain.c); smaller ones are not worth the
 * extra calls. */
#define DATAIN_SPLICE_MIN (64u * 1024u)

struct datain_pipe {
	int rd, wr;
};

/* The bytes of one Data-In PDU, ready to send. */
struct datain_seg {
	const uint8_t *buf;           /* in memory, unless pipe.rd >= 0 */
	uint8_t *owned;               /* buf when it is ours to free */
	struct datain_pipe pipe;      /* or in this pipe */
	uint32_t len;
};

/* Largest Data-In PDU we send (see datain.c). */
#define DATAIN_PDU_MAX (32u * 1024u)
/* The Data-In PDU size of this connection: DATAIN_PDU_MAX, less if the
 * initiator takes less, more with zero-copy. */
uint32_t datain_pdu_max(const struct iscsi_conn *c);
/* On a slow store, READs of up to this many bytes are not deferred
 * (datain.c). */
#define DATAIN_WHOLE_MAX (1u << 20)
/* scsi_cmd.defer_min for commands of this connection (0: no deferral). */
uint32_t datain_defer_min(const struct iscsi_conn *c);
/* Get len bytes at off of cmd's Data-In ready to send.  0, or -1 when a
 * deferred read failed: cmd then holds the CHECK CONDITION to send. */
int datain_prepare(const struct iscsi_conn *c, struct scsi_cmd *cmd, uint32_t off, uint32_t len,
		   struct datain_seg *ds);
/* Send them behind bhs (conn_send or conn_send_pipe) and release them. */
int datain_send(struct iscsi_conn *c, uint8_t *bhs, struct datain_seg *ds, bool more);

/* ---- login.c ---- */
/* Handle one Login Request in c->bhs; returns 0 to go on, <0 to close. */
int login_handle(struct iscsi_conn *c);
/* Free the state of an unfinished login. */
void login_free(struct iscsi_conn *c);

/* ---- command.c ---- */
int cmd_handle_scsi(struct iscsi_conn *c);
/*
 * For the workers: execute t into cmd (zeroed first; no socket I/O),
 * then send what cmd produced (0, or -1 when the socket failed) and free
 * cmd's buffers.  cmd_discard frees them without sending; both let go of
 * the LU a deferred read held (scsi_cmd_release), so every executed cmd
 * must end in one of them.
 */
void cmd_exec(struct iscsi_conn *c, const struct iscsi_task *t, bool read, struct scsi_cmd *cmd);
/* cmd_exec, its time noted (inflight_note_exec) - but for a streamed
 * (deferred) read, whose I/O cmd_send_result times as it reads. */
void cmd_exec_timed(struct iscsi_conn *c, const struct iscsi_task *t, bool read,
		    struct scsi_cmd *cmd);
int cmd_send_result(struct iscsi_conn *c, const struct iscsi_task *t, struct scsi_cmd *cmd);
void cmd_discard(struct scsi_cmd *cmd);
int cmd_handle_data_out(struct iscsi_conn *c);
/* Execute held commands that the window has reached. */
int cmd_run_held(struct iscsi_conn *c);
/* CmdSN check for a non-immediate command: 0 in order (ExpCmdSN advanced),
 * 1 ahead of ExpCmdSN but in the window, -1 outside (ignore). */
int cmd_window_check(struct iscsi_conn *c, uint32_t cmdsn);
void task_free(struct iscsi_task *t);
/* Abort (drop) tasks: all, or those of one LUN, or one ITT. Returns count. */
unsigned tasks_abort(struct iscsi_conn *c, bool all, uint64_t lun, bool by_itt, uint32_t itt);

/* ---- inflight.c: commands executing while the connection reads on ---- */
/*
 * The worker pool of the server (srv->cmd_workers threads at most,
 * started as work arrives).  inflight_pool_init: 0 or -ENOMEM.
 * inflight_pool_stop: after every connection has ended; joins the
 * threads and frees the pool.
 */
int inflight_pool_init(struct iscsi_server *srv);
void inflight_pool_stop(struct iscsi_server *srv);
/* Per-connection state (c->mu, send_mu, idle): init and destroy. */
void inflight_conn_init(struct iscsi_conn *c);
void inflight_conn_destroy(struct iscsi_conn *c);
/*
 * Hand a task whose data is complete to a worker: it executes it, sends
 * its response (under send_mu, in the order tasks finish) and frees it.
 * Waits first while srv->conn_inflight commands of this connection are in
 * flight.  Takes t on success (0); on -1 (no pool, no memory, no thread)
 * t is still the caller's, to run itself.
 */
int inflight_submit(struct iscsi_conn *c, struct iscsi_task *t, bool read);
/* Wait until no command of this connection is in flight (a barrier). */
void inflight_drain(struct iscsi_conn *c);
/*
 * Execution times of the commands that may overlap (a streamed READ's
 * taken as it reads, in send_result, per DATAIN_PDU_MAX bytes): note one
 * (ns), and ask whether they are so short (the page cache answers) that
 * handing them to a worker would cost more than it saves - then the
 * connection's thread runs them itself, in between the workers' ones,
 * streamed READs included.
 */
void inflight_note_exec(struct iscsi_conn *c, int64_t ns);
bool inflight_fast(const struct iscsi_conn *c);
/* CLOCK_MONOTONIC in ns, for the above. */
int64_t inflight_now_ns(void);
/*
 * The connection ends: send nothing more, unblock a worker stuck sending
 * (shutdown(2) of the socket), and wait until no worker touches c.
 */
void inflight_end(struct iscsi_conn *c);

/* ---- text.c ---- */
int text_handle(struct iscsi_conn *c);

/* ---- tmf.c ---- */
int tmf_handle(struct iscsi_conn *c);

/* ---- session.c ---- */
/* Session reinstatement: end any session of this initiator port (same
 * initiator name + ISID) other than ours, and wait for it to go. */
void session_reinstate(struct iscsi_server *srv, const char *initiator, const uint8_t *isid);
/* Sessions of initiator other than the port (initiator, isid), which a
 * new login of that port would reinstate rather than add to. */
unsigned session_count_others(struct iscsi_server *srv, const char *initiator, const uint8_t *isid);
/* Register a new session (assigns TSIH and nexus id; its connection is
 * no longer counted as logging in). */
void session_register(struct iscsi_server *srv, struct iscsi_session *s);
void session_unregister(struct iscsi_server *srv, struct iscsi_session *s);
/* Close every connection of the target (TARGET COLD RESET). */
void session_close_target(struct iscsi_server *srv, struct iscsi_target *t, struct iscsi_conn *except);
struct iscsi_target *target_find(struct iscsi_server *srv, const char *name);

#endif
