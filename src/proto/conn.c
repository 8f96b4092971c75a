/*
 * conn.c - one iSCSI connection: its thread, PDU receive and send (with
 * digests), the dispatch of full-feature-phase PDUs, and NOP keepalive.
 *
 * Receive is split in two so that a PDU's data lands where it belongs
 * without a copy: conn_recv_header() reads the BHS, AHS and header digest
 * and checks the declared lengths; the handler for the opcode then reads
 * the data segment straight into its destination (conn_recv_data) or drops
 * it (conn_discard_data).  No length from the wire is used before it is
 * checked against what was negotiated.
 *
 * Time limits: a login must finish within login_timeout_s; once a PDU has
 * started, all of it must arrive within PDU_TIMEOUT_MS; a peer that stops
 * reading our responses is dropped after send_timeout_s.  An idle
 * full-feature connection gets a NOP-In ping every nop_interval_s; a peer
 * that never answers pings (iPXE) is tolerated, TCP keepalive notices a
 * dead one.
 */
#include "proto/conn.h"
#include "util/crc32c.h"
#include "util/log.h"
#include "util/events.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/uio.h>

#define PDU_TIMEOUT_MS 30000
#define THREAD_STACK (512 * 1024)

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadline of the PDU being read; set when its first byte arrives. */
static __thread int64_t t_pdu_deadline;

/*
 * Read exactly n bytes before deadline (ms, monotonic).  Returns 0, or -1
 * on EOF, error or time-out (logged at debug: the caller closes).
 */
static int read_full(struct iscsi_conn *c, void *buf, size_t n, int64_t deadline)
{
	uint8_t *p = buf;

	while (n > 0) {
		int64_t left = deadline - now_ms();
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t r;

		if (left <= 0) {
			if (c->state == CONN_LOGIN)
				log_notice("%s: login not finished within %us, closing", c->peer,
					   c->srv->login_timeout_s);
			else
				log_info("%s: time-out waiting for data, closing", c->peer);
			return -1;
		}
		r = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR)
			return -1;
		if (r <= 0)
			continue;
		r = recv(c->fd, p, n, 0);
		if (r == 0)
			return -1;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void send_ping(struct iscsi_conn *c)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };

	bhs[BHS_OPCODE] = OP_NOP_IN;
	bhs[BHS_FLAGS] = BHS_F_BIT;
	put_be32(bhs + BHS_ITT, ISCSI_TAG_RESERVED);
	c->ping_ttt = conn_new_ttt(c);
	put_be32(bhs + BHS_TTT, c->ping_ttt);
	conn_send(c, bhs, NULL, 0);   /* StatSN: stamped, not consumed */
}

/*
 * Wait for the next PDU and read its header.  Returns 0 with c->bhs,
 * c->ahs, c->ahs_len filled and the data segment length checked, or -1
 * to close the connection.
 */
static int conn_recv_header(struct iscsi_conn *c, int64_t login_deadline)
{
	uint32_t dsl, limit;

	/* Wait for the first byte: idle handling lives here. */
	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int timeout = 1000;
		int r;

		if (c->state == CONN_LOGIN) {
			int64_t left = login_deadline - now_ms();
			if (left <= 0) {
				log_notice("%s: login not finished within %us, closing", c->peer,
					   c->srv->login_timeout_s);
				return -1;
			}
			timeout = (int)(left < 1000 ? left : 1000);
		} else {
			/* No pings: sleep until data (or shutdown(2) from another thread). */
			timeout = c->srv->nop_interval_s ? (int)c->srv->nop_interval_s * 1000 : -1;
		}
		r = poll(&pfd, 1, timeout);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0)
			break;
		if (r == 0 && c->state == CONN_FFP && c->srv->nop_interval_s)
			send_ping(c);
	}
	t_pdu_deadline = now_ms() + PDU_TIMEOUT_MS;
	/* Before login completes the login deadline is absolute: a peer
	 * trickling a PDU byte by byte must not stretch it (slowloris). */
	if (c->state == CONN_LOGIN && login_deadline < t_pdu_deadline)
		t_pdu_deadline = login_deadline;
	if (read_full(c, c->bhs, ISCSI_BHS_LEN, t_pdu_deadline))
		return -1;
	c->ahs_len = bhs_ahslen(c->bhs);
	if (c->ahs_len > AHS_MAX) {
		log_warn("%s: AHS of %u bytes refused, closing", c->peer, c->ahs_len);
		return -1;
	}
	if (c->ahs_len && read_full(c, c->ahs, c->ahs_len, t_pdu_deadline))
		return -1;
	if (c->state == CONN_FFP && c->params.header_digest) {
		uint8_t d[4];
		uint32_t reg;
		if (read_full(c, d, 4, t_pdu_deadline))
			return -1;
		reg = crc32c_update(CRC32C_INIT, c->bhs, ISCSI_BHS_LEN);
		reg = crc32c_update(reg, c->ahs, c->ahs_len);
		if (crc32c_final(reg) != digest_get(d)) {
			/* The lengths cannot be trusted: at ERL 0 the connection ends. */
			log_warn("%s: header digest error, closing", c->peer);
			return -1;
		}
	}
	dsl = bhs_dsl(c->bhs);
	limit = c->state == CONN_LOGIN ? LOGIN_DSL_MAX : c->params.mrdsl_rx;
	if (dsl > limit) {
		log_warn("%s: %s with a %u-byte data segment (limit %u), closing", c->peer,
			 pdu_opcode_name(bhs_opcode(c->bhs)), dsl, limit);
		conn_reject(c, REJECT_PROTOCOL_ERROR);
		return -1;
	}
	return 0;
}

int conn_recv_data(struct iscsi_conn *c, void *dst, uint32_t dsl)
{
	uint8_t tail[8];
	uint32_t pad = pad4(dsl) - dsl;
	uint32_t taillen = pad + (c->state == CONN_FFP && c->params.data_digest && dsl ? 4 : 0);

	if (dsl == 0)
		return 0;
	if (read_full(c, dst, dsl, t_pdu_deadline))
		return -1;
	if (taillen && read_full(c, tail, taillen, t_pdu_deadline))
		return -1;
	if (c->state == CONN_FFP && c->params.data_digest) {
		uint32_t reg = crc32c_update(CRC32C_INIT, dst, dsl);
		reg = crc32c_update(reg, tail, pad);
		if (crc32c_final(reg) != digest_get(tail + pad)) {
			log_warn("%s: data digest error on %s, closing", c->peer,
				 pdu_opcode_name(bhs_opcode(c->bhs)));
			conn_reject(c, REJECT_DIGEST_ERROR);
			return -1;
		}
	}
	return 0;
}

int conn_discard_data(struct iscsi_conn *c, uint32_t dsl)
{
	uint8_t *tmp;
	int rc;

	if (dsl == 0)
		return 0;
	tmp = malloc(dsl);
	if (!tmp)
		return -1;
	rc = conn_recv_data(c, tmp, dsl);
	free(tmp);
	return rc;
}

uint32_t conn_max_cmdsn_locked(const struct iscsi_conn *c)
{
	unsigned depth = c->srv->queue_depth;
	/* Executed commands whose responses are on their way count as
	 * done: the last response always reopens a closed window. */
	unsigned busy = c->ntasks + c->nheld + (c->inflight - c->completing);

	/* A window of zero (MaxCmdSN = ExpCmdSN - 1) while every slot is taken. */
	return c->exp_cmdsn + (busy >= depth ? 0 : depth - busy) - 1;
}

uint32_t conn_max_cmdsn(struct iscsi_conn *c)
{
	uint32_t m;

	pthread_mutex_lock(&c->mu);
	m = conn_max_cmdsn_locked(c);
	pthread_mutex_unlock(&c->mu);
	return m;
}

uint32_t conn_new_ttt(struct iscsi_conn *c)
{
	uint32_t t;

	pthread_mutex_lock(&c->srv->lock);
	t = c->srv->next_ttt++;
	if (t == ISCSI_TAG_RESERVED)
		t = c->srv->next_ttt++;
	pthread_mutex_unlock(&c->srv->lock);
	return t;
}

/* A send that timed out (SO_SNDTIMEO): the peer stopped reading. */
static int send_failed(struct iscsi_conn *c)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		log_notice("%s: peer stopped reading for %us, closing", c->peer,
			   c->srv->send_timeout_s);
	return -1;
}

static int send_all(struct iscsi_conn *c, struct iovec *iov, int cnt, int flags)
{
	while (cnt > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | flags);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return send_failed(c);
		}
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Stamp the StatSN of a PDU about to be sent (see conn.h).  send_mu held. */
static void stamp_statsn(struct iscsi_conn *c, uint8_t *bhs)
{
	uint8_t op = bhs_opcode(bhs);
	bool takes;

	switch (op) {
	case OP_LOGIN_RSP:
		return;                         /* login.c's */
	case OP_DATA_IN:
		if (!(bhs[BHS_FLAGS] & DATAIN_S_BIT))
			return;                 /* reserved without status */
		takes = true;
		break;
	case OP_R2T:
		takes = false;
		break;
	case OP_NOP_IN:
		takes = get_be32(bhs + BHS_ITT) != ISCSI_TAG_RESERVED;
		break;
	default:
		takes = true;
		break;
	}
	put_be32(bhs + BHS_STATSN, takes ? c->statsn++ : c->statsn);
}

/* The BHS (DSL, StatSN, ExpCmdSN, MaxCmdSN filled in) and its digest as
 * the first iovecs; returns how many.  hd holds the digest.  send_mu held. */
static int header_iov(struct iscsi_conn *c, uint8_t *bhs, uint32_t dlen, struct iovec *iov,
		      uint8_t *hd)
{
	int n = 0;

	put_be24(bhs + BHS_DSL, dlen);
	stamp_statsn(c, bhs);
	if (bhs_opcode(bhs) != OP_LOGIN_RSP) {
		pthread_mutex_lock(&c->mu);
		put_be32(bhs + BHS_EXPCMDSN, c->exp_cmdsn);
		put_be32(bhs + BHS_MAXCMDSN, conn_max_cmdsn_locked(c));
		pthread_mutex_unlock(&c->mu);
	}
	iov[n++] = (struct iovec){ bhs, ISCSI_BHS_LEN };
	if (c->state == CONN_FFP && c->params.header_digest) {
		digest_put(hd, crc32c(bhs, ISCSI_BHS_LEN));
		iov[n++] = (struct iovec){ hd, 4 };
	}
	return n;
}

static const uint8_t zero_pad[4];
static int send_pipe_locked(struct iscsi_conn *c, uint8_t *bhs, int pipe_rd, uint32_t dlen, bool more);

int conn_send(struct iscsi_conn *c, uint8_t *bhs, const void *data, uint32_t dlen)
{
	struct iovec iov[5];
	uint8_t hd[4], dd[4];
	uint32_t pad = pad4(dlen) - dlen;
	int n, rc;

	pthread_mutex_lock(&c->send_mu);
	n = header_iov(c, bhs, dlen, iov, hd);
	if (dlen) {
		iov[n++] = (struct iovec){ (void *)data, dlen };
		if (pad)
			iov[n++] = (struct iovec){ (void *)zero_pad, pad };
		if (c->state == CONN_FFP && c->params.data_digest) {
			uint32_t reg = crc32c_update(CRC32C_INIT, data, dlen);
			reg = crc32c_update(reg, zero_pad, pad);
			digest_put(dd, crc32c_final(reg));
			iov[n++] = (struct iovec){ dd, 4 };
		}
	}
	rc = send_all(c, iov, n, 0);
	pthread_mutex_unlock(&c->send_mu);
	return rc;
}

int conn_send_pipe(struct iscsi_conn *c, uint8_t *bhs, int pipe_rd, uint32_t dlen, bool more)
{
	int rc;

	pthread_mutex_lock(&c->send_mu);
	rc = send_pipe_locked(c, bhs, pipe_rd, dlen, more);
	pthread_mutex_unlock(&c->send_mu);
	return rc;
}

/* conn_send_pipe with send_mu held. */
static int send_pipe_locked(struct iscsi_conn *c, uint8_t *bhs, int pipe_rd, uint32_t dlen, bool more)
{
	struct iovec iov[2], tail;
	uint8_t hd[4];
	uint32_t pad = pad4(dlen) - dlen;
	int n = header_iov(c, bhs, dlen, iov, hd);

	if (send_all(c, iov, n, MSG_MORE))
		return -1;
	while (dlen > 0) {
		/* SPLICE_F_MORE/MSG_MORE while more follows; the last piece
		 * goes without, so TCP sends at once. */
		unsigned fl = SPLICE_F_MOVE | (more || pad ? SPLICE_F_MORE : 0);
		ssize_t k = splice(pipe_rd, NULL, c->fd, NULL, dlen, fl);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return send_failed(c);
		}
		if (k == 0)
			return -1;
		dlen -= (uint32_t)k;
	}
	tail = (struct iovec){ (void *)zero_pad, pad };
	return pad ? send_all(c, &tail, 1, more ? MSG_MORE : 0) : 0;
}

int conn_reject(struct iscsi_conn *c, uint8_t reason)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };

	bhs[BHS_OPCODE] = OP_REJECT;
	bhs[BHS_FLAGS] = BHS_F_BIT;
	bhs[BHS_REASON] = reason;
	put_be32(bhs + BHS_ITT, ISCSI_TAG_RESERVED);
	log_debug("%s: Reject reason 0x%02x for %s", c->peer, reason,
		  pdu_opcode_name(bhs_opcode(c->bhs)));
	return conn_send(c, bhs, c->bhs, ISCSI_BHS_LEN);
}

/* ---- NOP-Out and Logout ------------------------------------------------ */

static int nop_handle(struct iscsi_conn *c)
{
	uint32_t itt = get_be32(c->bhs + BHS_ITT), ttt = get_be32(c->bhs + BHS_TTT);
	uint32_t dsl = bhs_dsl(c->bhs);
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };
	uint8_t *data = NULL;
	int rc;

	if (itt == ISCSI_TAG_RESERVED) {
		/* A reply to our ping, or a ping that wants no answer. */
		if (ttt != ISCSI_TAG_RESERVED && ttt == c->ping_ttt)
			c->ping_ttt = ISCSI_TAG_RESERVED;
		if (!bhs_immediate(c->bhs) && cmd_window_check(c, get_be32(c->bhs + BHS_CMDSN)) < 0)
			log_debug("%s: NOP-Out outside the command window", c->peer);
		return conn_discard_data(c, dsl);
	}
	if (!bhs_immediate(c->bhs) && cmd_window_check(c, get_be32(c->bhs + BHS_CMDSN)) < 0)
		return conn_discard_data(c, dsl);   /* outside the window: ignored */
	if (dsl) {
		data = malloc(dsl);
		if (!data)
			return -1;
		if (conn_recv_data(c, data, dsl)) {
			free(data);
			return -1;
		}
	}
	bhs[BHS_OPCODE] = OP_NOP_IN;
	bhs[BHS_FLAGS] = BHS_F_BIT;
	memcpy(bhs + BHS_LUN, c->bhs + BHS_LUN, 8);
	put_be32(bhs + BHS_ITT, itt);
	put_be32(bhs + BHS_TTT, ISCSI_TAG_RESERVED);
	/* Echo the ping data, as much as the initiator can receive. */
	rc = conn_send(c, bhs, data, dsl < c->params.mrdsl_tx ? dsl : c->params.mrdsl_tx);
	free(data);
	return rc;
}

static int logout_handle(struct iscsi_conn *c)
{
	uint8_t reason = c->bhs[BHS_FLAGS] & BHS_FUNC_MASK;
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };
	uint8_t response = LOGOUT_RSP_CLOSED;

	if (conn_discard_data(c, bhs_dsl(c->bhs)))
		return -1;
	if (!bhs_immediate(c->bhs))
		cmd_window_check(c, get_be32(c->bhs + BHS_CMDSN));
	if (reason == LOGOUT_CLOSE_CONNECTION && get_be16(c->bhs + BHS_CID) != c->cid)
		response = LOGOUT_RSP_CID_NOT_FOUND;
	else if (reason == LOGOUT_REMOVE_FOR_RECOVERY)
		response = LOGOUT_RSP_NO_RECOVERY;
	else if (reason > LOGOUT_REMOVE_FOR_RECOVERY)
		return conn_reject(c, REJECT_INVALID_FIELD);
	/* The session's commands are answered before the logout is. */
	inflight_drain(c);
	bhs[BHS_OPCODE] = OP_LOGOUT_RSP;
	bhs[BHS_FLAGS] = BHS_F_BIT;
	bhs[BHS_RESPONSE] = response;
	put_be32(bhs + BHS_ITT, get_be32(c->bhs + BHS_ITT));
	log_info("%s: logout (reason %u)", c->peer, reason);
	if (response == LOGOUT_RSP_CLOSED) {
		c->closing = true;
		/* The session's one connection ends: its I_T nexus is lost
		 * now, not when the thread gets to its teardown - an initiator
		 * that saw the response may at once RESERVE from another
		 * session (SPC-2 reservations are released by the loss). */
		if (c->sess && c->sess->nexus_registered) {
			scsi_target_nexus_gone(c->sess->scsi, &c->sess->nexus);
			c->sess->nexus_registered = false;
		}
	}
	return conn_send(c, bhs, NULL, 0);
}

/* ---- dispatch ------------------------------------------------------------ */

static int ffp_dispatch(struct iscsi_conn *c)
{
	uint8_t op = bhs_opcode(c->bhs);
	bool discovery = c->sess && c->sess->discovery;

	switch (op) {
	case OP_NOP_OUT:
		return nop_handle(c);
	case OP_SCSI_CMD:
		if (discovery)
			break;
		return cmd_handle_scsi(c);
	case OP_DATA_OUT:
		if (discovery)
			break;
		return cmd_handle_data_out(c);
	case OP_TMF_REQ:
		if (discovery)
			break;
		return tmf_handle(c);
	case OP_TEXT_REQ:
		return text_handle(c);
	case OP_LOGOUT_REQ:
		return logout_handle(c);
	case OP_LOGIN_REQ:
		log_warn("%s: Login Request in full feature phase, closing", c->peer);
		conn_reject(c, REJECT_PROTOCOL_ERROR);
		return -1;
	case OP_SNACK:
		/* ErrorRecoveryLevel 0: there is nothing to retransmit. */
		if (conn_discard_data(c, bhs_dsl(c->bhs)))
			return -1;
		return conn_reject(c, REJECT_PROTOCOL_ERROR);
	default:
		log_notice("%s: unknown opcode 0x%02x rejected", c->peer, op);
		if (conn_discard_data(c, bhs_dsl(c->bhs)))
			return -1;
		return conn_reject(c, REJECT_CMD_NOT_SUPPORTED);
	}
	/* A command a discovery session may not send. */
	log_notice("%s: %s in a discovery session rejected", c->peer, pdu_opcode_name(op));
	if (conn_discard_data(c, bhs_dsl(c->bhs)))
		return -1;
	return conn_reject(c, REJECT_PROTOCOL_ERROR);
}

static void conn_cleanup(struct iscsi_conn *c)
{
	struct iscsi_server *srv = c->srv;
	struct iscsi_conn **pp;

	login_free(c);
	inflight_end(c);         /* from here on no worker touches c */
	tasks_abort(c, true, 0, false, 0);
	while (c->held) {
		struct held_pdu *h = c->held;
		c->held = h->next;
		free(h->ahs);
		free(h->data);
		free(h);
	}
	kvbuf_free(&c->text_out);
	kvbuf_free(&c->text_in);
	if (c->sess) {
		if (c->sess->nexus_registered)
			scsi_target_nexus_gone(c->sess->scsi, &c->sess->nexus);
		if (c->sess->handle && srv->hooks.detach)
			srv->hooks.detach(srv->hooks.ctx, c->sess->handle);
		if (c->sess->handle)
			events_add(EV_LOGOUT, c->sess->nexus.initiator_name, NULL,
				   "session 0x%04x from %s ended", c->sess->tsih, c->peer);
		session_unregister(srv, c->sess);
		free(c->sess);
		c->sess = NULL;
	}
	pthread_mutex_lock(&srv->lock);
	for (pp = &srv->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	srv->nconns--;
	close(c->fd);
	c->fd = -1;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	inflight_conn_destroy(c);
	free(c);
}

static void *conn_thread(void *arg)
{
	struct iscsi_conn *c = arg;
	int64_t login_deadline = now_ms() + (int64_t)c->srv->login_timeout_s * 1000;

	log_debug("%s: connected", c->peer);
	while (!c->closing) {
		int rc;

		if (conn_recv_header(c, login_deadline))
			break;
		if (c->state == CONN_LOGIN) {
			if (bhs_opcode(c->bhs) != OP_LOGIN_REQ) {
				log_notice("%s: %s before login, closing", c->peer,
					   pdu_opcode_name(bhs_opcode(c->bhs)));
				break;
			}
			rc = login_handle(c);
		} else {
			rc = ffp_dispatch(c);
			if (rc == 0)
				rc = cmd_run_held(c);
		}
		if (rc)
			break;
	}
	log_debug("%s: connection closed", c->peer);
	conn_cleanup(c);
	return NULL;
}

/* Same IP address (ports ignored)? */
static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return false;
}

static void format_peer(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
			port = ntohs(s4->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
			port = ntohs(s6->sin6_port);
		}
	}
	snprintf(out, len, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

/*
 * Log a refused connection, at most one line a second: a flood must not
 * fill the disk with log lines.  The lines not written are counted in
 * the next one.
 */
static void log_refusal(int fd, const char *why)
{
	static int64_t last;
	static unsigned suppressed;
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	int64_t now = now_ms();
	char peer[80];
	unsigned n;

	pthread_mutex_lock(&mu);
	if (last && now - last < 1000) {
		suppressed++;
		pthread_mutex_unlock(&mu);
		return;
	}
	last = now;
	n = suppressed;
	suppressed = 0;
	pthread_mutex_unlock(&mu);
	format_peer(fd, peer, sizeof(peer));
	if (n)
		log_warn("%s: connection refused: %s (and %u more refused in the last second)", peer,
			 why, n);
	else
		log_warn("%s: connection refused: %s", peer, why);
	/* rate-limited like the log: a storm is one event a second */
	events_add(EV_REFUSED, NULL, NULL, "connection from %s refused: %s%s", peer, why,
		   n ? " (and more in the last second)" : "");
}

int iscsi_conn_start(struct iscsi_server *srv, int fd)
{
	struct iscsi_conn *c;
	pthread_attr_t attr;
	pthread_t th;
	struct timeval tv = { .tv_sec = srv->send_timeout_s };
	socklen_t sl;
	int one = 1, rc;

	struct sockaddr_storage pa;
	const char *why = NULL;
	unsigned logging_in = 0;

	sl = sizeof(pa);
	if (getpeername(fd, (struct sockaddr *)&pa, &sl))
		pa.ss_family = AF_UNSPEC;   /* matches no address rule */
	pthread_mutex_lock(&srv->lock);
	for (struct iscsi_conn *o = srv->conns; o; o = o->next)
		if (o->in_login && same_host(&o->peer_addr, &pa))
			logging_in++;
	if (srv->stopping)
		why = "shutting down";
	else if (srv->nconns >= srv->max_conns)
		why = "connection limit reached";
	else if (srv->max_logins_per_addr && logging_in >= srv->max_logins_per_addr)
		why = "too many logins in progress from this address";
	if (why) {
		if (!srv->stopping)     /* a limit: counted (iscsi_refusal) */
			atomic_fetch_add_explicit(&srv->refused[REFUSED_LIMITS], 1, memory_order_relaxed);
		pthread_mutex_unlock(&srv->lock);
		log_refusal(fd, why);
		close(fd);
		return -EBUSY;
	}
	srv->nconns++;
	pthread_mutex_unlock(&srv->lock);

	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto fail;
	}
	c->srv = srv;
	c->fd = fd;
	inflight_conn_init(c);
	c->state = CONN_LOGIN;
	c->ping_ttt = ISCSI_TAG_RESERVED;
	params_defaults(&c->params, &srv->prefs);
	format_peer(fd, c->peer, sizeof(c->peer));
	c->peer_addr = pa;
	c->in_login = true;
	sl = sizeof(c->local);
	getsockname(fd, (struct sockaddr *)&c->local, &sl);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	pthread_mutex_lock(&srv->lock);
	c->next = srv->conns;
	srv->conns = c;
	pthread_mutex_unlock(&srv->lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	rc = pthread_create(&th, &attr, conn_thread, c);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		return 0;
	log_err("cannot start a connection thread: %s", strerror(rc));
	conn_cleanup(c);   /* closes fd, drops the count */
	return -rc;
fail:
	pthread_mutex_lock(&srv->lock);
	srv->nconns--;
	pthread_mutex_unlock(&srv->lock);
	close(fd);
	return rc;
}
