/*
 * command.c - SCSI Command, Data-Out, R2T and Data-In (RFC 7143 11.3-11.8).
 *
 * A command runs once all of its Data-Out is in place.  With
 * DataPDUInOrder=Yes and DataSequenceInOrder=Yes (the only values we
 * accept), a write's data arrives as a contiguous prefix: immediate data,
 * then unsolicited Data-Out up to FirstBurstLength, then one sequence per
 * R2T in order.  So a task only tracks how many bytes it holds, which
 * sequence is active and its DataSN.  A Data-Out that does not continue
 * exactly where the previous one stopped ends its task with CHECK
 * CONDITION / ABORTED COMMAND and the sense RFC 7143 11.4.7.2 assigns; the
 * connection goes on, and the task's remaining Data-Out is dropped
 * quietly.  Only framing errors (digests, lengths beyond the negotiated
 * limits) end the connection.
 *
 * The command window: non-immediate commands must carry CmdSN in
 * [ExpCmdSN, MaxCmdSN].  Ones below or above are ignored silently (RFC
 * 7143 4.2.2.1); ones ahead of ExpCmdSN wait in c->held until the gap
 * closes.  MaxCmdSN shrinks while tasks wait for data, so the queue depth
 * is a real bound on memory.
 *
 * A command whose data is complete runs in task_run: READ, WRITE and
 * SYNCHRONIZE CACHE with the SIMPLE attribute on a worker (inflight.c),
 * or here at once while the store answers within microseconds; the rest
 * here after a drain (see may_overlap).  Writes that need R2T
 * are received here as before and go to a worker once their last byte is
 * in.
 */
#include "proto/conn.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_TASK_BYTES_MAX (256u << 20)
/* A READ done whole is timed as this many PDUs at most (cmd_exec_timed). */
#define WHOLE_PDUS 4

int cmd_window_check(struct iscsi_conn *c, uint32_t cmdsn)
{
	uint32_t max;

	pthread_mutex_lock(&c->mu);
	if (cmdsn == c->exp_cmdsn) {
		c->exp_cmdsn++;
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	max = conn_max_cmdsn_locked(c);
	pthread_mutex_unlock(&c->mu);
	if (sn_lt(c->exp_cmdsn, cmdsn) && sn_le(cmdsn, max))
		return 1;
	log_debug("%s: CmdSN %u outside window [%u, %u], ignored", c->peer, cmdsn,
		  c->exp_cmdsn, max);
	return -1;
}

void task_free(struct iscsi_task *t)
{
	if (!t)
		return;
	free(t->buf);
	free(t);
}

static void task_unlink(struct iscsi_conn *c, struct iscsi_task *t)
{
	for (struct iscsi_task **pp = &c->tasks; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			pthread_mutex_lock(&c->mu);
			c->ntasks--;
			pthread_mutex_unlock(&c->mu);
			c->task_bytes -= t->want;
			return;
		}
	}
}

unsigned tasks_abort(struct iscsi_conn *c, bool all, uint64_t lun, bool by_itt, uint32_t itt)
{
	unsigned n = 0;
	struct iscsi_task **pp = &c->tasks;
	struct held_pdu **hp = &c->held;

	while (*pp) {
		struct iscsi_task *t = *pp;
		if (all || (by_itt ? t->itt == itt : t->lun == lun)) {
			*pp = t->next;
			pthread_mutex_lock(&c->mu);
			c->ntasks--;
			pthread_mutex_unlock(&c->mu);
			c->task_bytes -= t->want;
			task_free(t);
			n++;
		} else {
			pp = &t->next;
		}
	}
	while (*hp) {
		struct held_pdu *h = *hp;
		if (all || (by_itt ? get_be32(h->bhs + BHS_ITT) == itt : scsi_lun_decode(h->bhs + BHS_LUN) == lun)) {
			*hp = h->next;
			pthread_mutex_lock(&c->mu);
			c->nheld--;
			pthread_mutex_unlock(&c->mu);
			free(h->ahs);
			free(h->data);
			free(h);
			n++;
		} else {
			hp = &h->next;
		}
	}
	return n;
}

/* ---- responses ----------------------------------------------------------- */

/*
 * Send what a finished command produced: Data-In PDUs (the last one with
 * the status when there is no sense data), otherwise a SCSI Response.
 */
static int send_result(struct iscsi_conn *c, const uint8_t *req_bhs, struct scsi_cmd *cmd,
		       uint32_t r2t_count)
{
	uint32_t edtl = cmd->edtl, resid = 0, len = 0, off = 0, datasn = 0;
	uint32_t burst_left = c->params.max_burst, pdu_max = datain_pdu_max(c);
	uint8_t rflags = 0;
	bool collapse;
	uint8_t bhs[ISCSI_BHS_LEN];

	if (cmd->xfer_len > edtl) {
		rflags = RSP_OVERFLOW;
		resid = cmd->xfer_len - edtl;
	} else if (cmd->xfer_len < edtl) {
		rflags = RSP_UNDERFLOW;
		resid = edtl - cmd->xfer_len;
	}
	if (cmd->read && (cmd->data_in || cmd->data_lu))
		len = cmd->data_in_len < edtl ? cmd->data_in_len : edtl;
	collapse = len > 0 && cmd->sense_len == 0;
	/* A deferred read: its LU's io_lock from the first piece to the last. */
	struct scsi_lu *held = cmd->data_lu && len ? scsi_cmd_data_begin(cmd) : NULL;
	int64_t io_ns = 0;              /* a deferred read's I/O, for inflight_note_exec */
	uint64_t io_bytes = 0;

	while (off < len) {
		uint32_t seg = len - off;
		bool last;

		if (seg > pdu_max)
			seg = pdu_max;
		if (seg > burst_left)
			seg = burst_left;
		last = off + seg == len;
		struct datain_seg ds;
		int64_t t0 = held ? inflight_now_ns() : 0;
		int prc = datain_prepare(c, cmd, off, seg, &ds);

		if (held) {
			io_ns += inflight_now_ns() - t0;
			io_bytes += seg;
		}
		if (prc < 0) {
			collapse = false;       /* the medium failed: sense follows */
			break;
		}
		memset(bhs, 0, sizeof(bhs));
		bhs[BHS_OPCODE] = OP_DATA_IN;
		if (last || seg == burst_left)
			bhs[BHS_FLAGS] |= BHS_F_BIT;
		memcpy(bhs + BHS_LUN, req_bhs + BHS_LUN, 8);
		memcpy(bhs + BHS_ITT, req_bhs + BHS_ITT, 4);
		put_be32(bhs + BHS_TTT, ISCSI_TAG_RESERVED);
		if (last && collapse) {
			bhs[BHS_FLAGS] |= DATAIN_S_BIT | rflags;
			bhs[BHS_STATUS] = cmd->status;
			put_be32(bhs + BHS_RESIDUAL, resid);   /* StatSN: at send */
		}
		put_be32(bhs + BHS_DATASN, datasn++);
		put_be32(bhs + BHS_BUFFER_OFFSET, off);
		if (datain_send(c, bhs, &ds, !(last && collapse))) {
			if (held)
				scsi_cmd_data_end(held);
			return -1;
		}
		off += seg;
		burst_left -= seg;
		if (burst_left == 0)
			burst_left = c->params.max_burst;
	}
	if (held) {
		scsi_cmd_data_end(held);
		/* One sample per command: its time per DATAIN_PDU_MAX bytes,
		 * as for a read not deferred (cmd_exec_timed). */
		if (io_bytes)
			inflight_note_exec(c, (int64_t)((uint64_t)io_ns * DATAIN_PDU_MAX / io_bytes));
	}
	if (collapse)
		return 0;

	memset(bhs, 0, sizeof(bhs));
	bhs[BHS_OPCODE] = OP_SCSI_RSP;
	bhs[BHS_FLAGS] = BHS_F_BIT | rflags;
	bhs[BHS_RESPONSE] = RSP_COMPLETED;
	bhs[BHS_STATUS] = cmd->status;
	memcpy(bhs + BHS_ITT, req_bhs + BHS_ITT, 4);
	put_be32(bhs + BHS_EXPDATASN, cmd->read ? datasn : r2t_count);
	put_be32(bhs + BHS_RESIDUAL, resid);
	if (cmd->sense_len) {
		uint8_t sense[RSP_SENSE_LENGTH_LEN + SCSI_SENSE_MAX];
		uint32_t sl = cmd->sense_len > SCSI_SENSE_MAX ? SCSI_SENSE_MAX : cmd->sense_len;
		put_be16(sense, (uint16_t)sl);
		memcpy(sense + RSP_SENSE_LENGTH_LEN, cmd->sense, sl);
		return conn_send(c, bhs, sense, sl + RSP_SENSE_LENGTH_LEN);
	}
	return conn_send(c, bhs, NULL, 0);
}

/*
 * Answer a command the transport itself refuses: CHECK CONDITION with
 * fixed-format sense (key, asc, ascq), or a bare status when key is 0
 * (TASK SET FULL).  No data.
 */
static int send_refusal(struct iscsi_conn *c, const uint8_t *req_bhs, uint32_t edtl, uint8_t status,
			uint8_t key, uint8_t asc, uint8_t ascq, uint32_t r2t_count)
{
	struct scsi_cmd cmd = { .status = status, .edtl = edtl };

	if (key) {
		cmd.sense_len = 18;
		cmd.sense[0] = 0x70;          /* fixed format, current */
		cmd.sense[2] = key;
		cmd.sense[7] = 10;
		cmd.sense[12] = asc;
		cmd.sense[13] = ascq;
	}
	return send_result(c, req_bhs, &cmd, r2t_count);
}

/*
 * Parse the CDB: 16 bytes in the BHS, more in an Extended CDB AHS.
 * Returns 0, or -1 when the AHS is malformed (protocol error).
 */
static int gather_cdb(const uint8_t *bhs, const uint8_t *ahs, uint32_t ahs_len,
		      uint8_t *cdb, unsigned *cdb_len, bool *bidi)
{
	uint32_t pos = 0;

	memcpy(cdb, bhs + BHS_CDB, BHS_CDB_LEN);
	*cdb_len = BHS_CDB_LEN;
	*bidi = false;
	while (pos + AHS_HDR_LEN <= ahs_len) {
		uint16_t alen = get_be16(ahs + pos);
		uint8_t type = ahs[pos + AHS_TYPE];
		uint32_t total = pad4(AHS_HDR_LEN + alen - 1u);  /* header + reserved byte counted in alen */

		if (alen == 0 || pos + 3 + alen > ahs_len)
			return -1;
		if (type == AHS_EXTENDED_CDB) {
			unsigned ext = alen - 1u;
			if (*cdb_len != BHS_CDB_LEN || BHS_CDB_LEN + ext > 260)
				return -1;
			memcpy(cdb + BHS_CDB_LEN, ahs + pos + AHS_HDR_LEN, ext);
			*cdb_len += ext;
		} else if (type == AHS_BIDI_READ_LEN) {
			*bidi = true;
		} else {
			return -1;
		}
		pos += total < AHS_HDR_LEN ? AHS_HDR_LEN : total;
	}
	return 0;
}

void cmd_exec(struct iscsi_conn *c, const struct iscsi_task *t, bool read, struct scsi_cmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->cdb = t->cdb;
	cmd->cdb_len = t->cdb_len;
	cmd->lun = t->lun;
	cmd->nexus = &c->sess->nexus;
	cmd->attr = (enum scsi_task_attr)(t->bhs[BHS_FLAGS] & CMD_ATTR_MASK);
	cmd->read = read;
	cmd->write = t->bhs[BHS_FLAGS] & CMD_W_BIT;
	cmd->edtl = t->edtl;
	cmd->data_out = cmd->write ? t->buf : NULL;
	cmd->data_out_len = cmd->write ? t->want : 0;
	cmd->defer_min = read && !cmd->write ? datain_defer_min(c) : 0;
	scsi_target_exec(c->sess->scsi, cmd);
}

void cmd_exec_timed(struct iscsi_conn *c, const struct iscsi_task *t, bool read,
		    struct scsi_cmd *cmd)
{
	int64_t t0 = inflight_now_ns();

	cmd_exec(c, t, read, cmd);
	int64_t ns = inflight_now_ns() - t0;

	/* A deferred read has done no I/O yet: send_result times it.  A
	 * long read done whole counts as WHOLE_PDUS PDUs at most.  Not per
	 * PDU: on a store whose calls cost a fixed latency (a network),
	 * 1 MiB in one call may take no longer than 32 KiB, and streaming
	 * on that evidence would pay the latency per PDU on the
	 * connection's thread.  Nor whole: 1 MiB from the page cache
	 * (~100 us) would keep a connection that turned slow once on the
	 * workers. */
	if (cmd->data_lu)
		return;
	if (cmd->data_in && cmd->data_in_len >= 2 * DATAIN_PDU_MAX) {
		uint32_t pdus = cmd->data_in_len / DATAIN_PDU_MAX;

		ns /= pdus < WHOLE_PDUS ? pdus : WHOLE_PDUS;
	}
	inflight_note_exec(c, ns);
}

void cmd_discard(struct scsi_cmd *cmd)
{
	free(cmd->data_in);
	cmd->data_in = NULL;
	scsi_cmd_release(cmd);          /* a deferred read's LU may be removed now */
}

/*
 * Count a command whose status went out (or failed to) in its session's
 * counters (util/iostats.h): its kind by opcode, the bytes it moved when
 * it succeeded, its time since arrival, whether the store failed it.
 */
static void cmd_count(struct iscsi_conn *c, const struct iscsi_task *t, const struct scsi_cmd *cmd)
{
	const struct iscsi_io_stats *io = &c->sess->io;
	enum iostats_kind kind;
	uint64_t bytes = 0;
	int64_t now;
	bool err;

	if (!io->pc && !io->image)
		return;
	kind = iostats_kind_of(t->cdb[0]);
	err = iostats_is_error(cmd->status, cmd->sense, cmd->sense_len);
	if (cmd->status == SAM_STAT_GOOD) {
		if (kind == IOSTATS_READ)
			bytes = cmd->data_in_len < cmd->edtl ? cmd->data_in_len : cmd->edtl;
		else if (kind == IOSTATS_WRITE)
			bytes = t->want;
	}
	now = iostats_now_ns();
	iostats_cmd_done(io->pc, kind, bytes, now - t->arrived_ns, err);
	iostats_cmd_done(io->image, kind, bytes, now - t->arrived_ns, err);
	if (kind == IOSTATS_READ && io->boot)
		boot_note_read(io->boot, now);
}

int cmd_send_result(struct iscsi_conn *c, const struct iscsi_task *t, struct scsi_cmd *cmd)
{
	int rc = send_result(c, t->bhs, cmd, t->r2tsn);

	cmd_count(c, t, cmd);
	cmd_discard(cmd);
	return rc;
}

/*
 * May this command run alongside the connection's others?  Only SIMPLE
 * (or untagged) READ, WRITE and SYNCHRONIZE CACHE: they touch nothing but
 * their blocks (the SCSI layer's locks order them against COMPARE AND
 * WRITE and the like), and SIMPLE lets them complete in any order.
 * ORDERED, HEAD OF QUEUE and ACA tasks and every other command are
 * barriers: they run once every earlier command has been answered, and
 * nothing after them starts before they are.
 */
static bool may_overlap(const struct iscsi_task *t)
{
	uint8_t attr = t->bhs[BHS_FLAGS] & CMD_ATTR_MASK;

	if (attr != SCSI_ATTR_SIMPLE && attr != SCSI_ATTR_UNTAGGED)
		return false;
	switch (t->cdb[0]) {
	case 0x08: case 0x28: case 0xa8: case 0x88:     /* READ (6/10/12/16) */
	case 0x0a: case 0x2a: case 0xaa: case 0x8a:     /* WRITE (6/10/12/16) */
	case 0x35: case 0x91:                           /* SYNCHRONIZE CACHE (10/16) */
		return true;
	default:
		return false;
	}
}

/*
 * Run a task whose data is complete.  One that may overlap others goes
 * to a worker (inflight.c answers and frees it), or runs here at once
 * while the store answers fast (inflight_fast); any other runs here once
 * the connection's commands in flight are done.  Takes t.  0, or -1 to
 * close.
 */
static int task_run(struct iscsi_conn *c, struct iscsi_task *t, bool read)
{
	struct scsi_cmd cmd;
	int rc;

	if (may_overlap(t)) {
		if (!inflight_fast(c)) {
			if (inflight_submit(c, t, read) == 0)
				return 0;
		} else {
			cmd_exec_timed(c, t, read, &cmd);
			rc = cmd_send_result(c, t, &cmd);
			task_free(t);
			return rc;
		}
	}
	inflight_drain(c);
	cmd_exec(c, t, read, &cmd);
	rc = cmd_send_result(c, t, &cmd);
	task_free(t);
	return rc;
}

static int send_r2ts(struct iscsi_conn *c, struct iscsi_task *t)
{
	unsigned max = c->params.max_r2t < 16 ? c->params.max_r2t : 16;

	while (t->nr2t < max && t->next_r2t_offset < t->want) {
		uint8_t bhs[ISCSI_BHS_LEN] = { 0 };
		uint32_t len = t->want - t->next_r2t_offset;
		struct r2t *r = &t->r2ts[t->nr2t];

		if (len > c->params.max_burst)
			len = c->params.max_burst;
		r->ttt = conn_new_ttt(c);
		r->offset = t->next_r2t_offset;
		r->len = len;
		bhs[BHS_OPCODE] = OP_R2T;
		bhs[BHS_FLAGS] = BHS_F_BIT;
		memcpy(bhs + BHS_LUN, t->bhs + BHS_LUN, 8);
		put_be32(bhs + BHS_ITT, t->itt);
		put_be32(bhs + BHS_TTT, r->ttt);
		put_be32(bhs + BHS_R2TSN, t->r2tsn++);
		put_be32(bhs + BHS_BUFFER_OFFSET, r->offset);
		put_be32(bhs + BHS_DDTL, len);
		if (conn_send(c, bhs, NULL, 0))
			return -1;
		t->nr2t++;
		t->next_r2t_offset += len;
	}
	return 0;
}

/*
 * Take dsl bytes of a task's data at offset t->received, from imm or from
 * the socket.  Bytes beyond t->want (an EDTL larger than the command
 * needs) are received and dropped.  Advances t->received.  0 or -1.
 */
static int task_take_data(struct iscsi_conn *c, struct iscsi_task *t, const uint8_t *imm, uint32_t dsl)
{
	uint32_t off = t->received;
	uint32_t keep = off >= t->want ? 0 : (t->want - off < dsl ? t->want - off : dsl);
	int rc = 0;

	if (imm) {
		memcpy(t->buf + off, imm, keep);
	} else if (keep == dsl) {
		rc = conn_recv_data(c, t->buf + off, dsl);
	} else {
		uint8_t *tmp = malloc(dsl);
		if (!tmp)
			return -1;
		rc = conn_recv_data(c, tmp, dsl);
		if (rc == 0)
			memcpy(t->buf + off, tmp, keep);
		free(tmp);
	}
	t->received += dsl;
	return rc;
}

/*
 * Start a command whose CmdSN is in order.  Its immediate data (dsl bytes)
 * is read from the socket, or taken from imm when the command was held.
 */
static int cmd_start(struct iscsi_conn *c, const uint8_t *bhs, const uint8_t *ahs, uint32_t ahs_len,
		     const uint8_t *imm, uint32_t dsl)
{
	uint8_t flags = bhs_flags(bhs);
	bool fbit = flags & BHS_F_BIT, rbit = flags & CMD_R_BIT, wbit = flags & CMD_W_BIT, bidi;
	uint32_t edtl = get_be32(bhs + BHS_EDTL);
	struct iscsi_task *t;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	memcpy(t->bhs, bhs, ISCSI_BHS_LEN);
	t->itt = get_be32(bhs + BHS_ITT);
	t->lun = scsi_lun_decode(bhs + BHS_LUN);
	t->arrived_ns = iostats_now_ns();
	t->edtl = edtl;
	if (gather_cdb(bhs, ahs, ahs_len, t->cdb, &t->cdb_len, &bidi)) {
		log_warn("%s: malformed AHS in SCSI Command, closing", c->peer);
		goto proto_err;
	}
	if (dsl && (!wbit || !c->params.immediate_data || dsl > edtl || dsl > c->params.first_burst)) {
		log_warn("%s: immediate data of %u bytes not allowed (W=%d ImmediateData=%d EDTL=%u "
			 "FirstBurstLength=%u), closing", c->peer, dsl, wbit,
			 c->params.immediate_data, edtl, c->params.first_burst);
		goto proto_err;
	}
	if (wbit && !fbit && c->params.initial_r2t) {
		log_warn("%s: unsolicited data announced with InitialR2T=Yes, closing", c->peer);
		goto proto_err;
	}
	if (bidi) {
		/* No bidirectional commands in SBC-3 that we serve. */
		if (!imm && conn_discard_data(c, dsl))
			goto fail;
		task_free(t);
		/* ILLEGAL REQUEST, INVALID FIELD IN CDB */
		return send_refusal(c, bhs, edtl, SAM_STAT_CHECK_CONDITION, 0x05, 0x24, 0x00, 0);
	}
	if (!wbit || edtl == 0) {
		if (!imm && conn_discard_data(c, dsl))
			goto fail;
		return task_run(c, t, rbit);
	}
	/* Solicit only what the CDB consumes; the rest is a residual. */
	t->want = scsi_target_data_out_len(c->sess->scsi, t->lun, t->cdb, t->cdb_len, edtl);
	t->unsol_limit = edtl < c->params.first_burst ? edtl : c->params.first_burst;
	t->received = 0;
	t->unsolicited = !fbit;
	if (t->want > c->srv->max_xfer || c->task_bytes + t->want > SESSION_TASK_BYTES_MAX) {
		bool permanent = t->want > c->srv->max_xfer;
		int rc;

		log_notice("%s: write of %u bytes refused (%s)", c->peer, t->want,
			   permanent ? "larger than the transfer limit" : "session buffers full, TASK SET FULL");
		if (!imm && conn_discard_data(c, dsl))
			goto fail;
		if (t->unsolicited)
			c->dead_itt[c->dead_next++ % 8] = t->itt;   /* drop its unsolicited data */
		/* Too large: CHECK CONDITION, INVALID FIELD IN CDB; else try again later. */
		rc = permanent ? send_refusal(c, bhs, edtl, SAM_STAT_CHECK_CONDITION, 0x05, 0x24, 0x00, 0)
			       : send_refusal(c, bhs, edtl, SAM_STAT_TASK_SET_FULL, 0, 0, 0, 0);
		task_free(t);
		return rc;
	}
	t->buf = malloc(t->want ? t->want : 1);
	if (!t->buf)
		goto fail;
	if (dsl && task_take_data(c, t, imm, dsl))
		goto fail;
	if (t->received >= t->unsol_limit)
		t->unsolicited = false;
	t->next_r2t_offset = t->received;
	if (t->received >= t->want) {
		if (t->unsolicited)
			c->dead_itt[c->dead_next++ % 8] = t->itt;   /* the rest is surplus */
		return task_run(c, t, rbit);
	}
	t->next = c->tasks;
	c->tasks = t;
	pthread_mutex_lock(&c->mu);
	c->ntasks++;
	pthread_mutex_unlock(&c->mu);
	c->task_bytes += t->want;
	if (!t->unsolicited)
		return send_r2ts(c, t);
	return 0;
proto_err:
	conn_reject(c, REJECT_PROTOCOL_ERROR);
fail:
	task_free(t);
	return -1;
}

int cmd_handle_scsi(struct iscsi_conn *c)
{
	uint32_t dsl = bhs_dsl(c->bhs);
	uint32_t cmdsn = get_be32(c->bhs + BHS_CMDSN);
	struct held_pdu *h, **pp;

	if (get_be32(c->bhs + BHS_ITT) == ISCSI_TAG_RESERVED) {
		/* Reserved (RFC 7143 11.2.1.8): no task may carry it. */
		log_notice("%s: SCSI Command with the reserved ITT 0xffffffff rejected", c->peer);
		if (!bhs_immediate(c->bhs))
			cmd_window_check(c, cmdsn);
		if (conn_discard_data(c, dsl))
			return -1;
		return conn_reject(c, REJECT_INVALID_FIELD);
	}
	if (!bhs_immediate(c->bhs)) {
		int w = cmd_window_check(c, cmdsn);
		if (w < 0)
			return conn_discard_data(c, dsl);
		if (w == 1) {
			/* Ahead of ExpCmdSN: keep it until the gap closes. */
			h = calloc(1, sizeof(*h));
			if (!h)
				return -1;
			memcpy(h->bhs, c->bhs, ISCSI_BHS_LEN);
			h->ahs_len = c->ahs_len;
			h->dsl = dsl;
			h->ahs = c->ahs_len ? malloc(c->ahs_len) : NULL;
			h->data = dsl ? malloc(dsl) : NULL;
			if ((c->ahs_len && !h->ahs) || (dsl && !h->data) ||
			    (dsl && conn_recv_data(c, h->data, dsl))) {
				free(h->ahs);
				free(h->data);
				free(h);
				return -1;
			}
			if (c->ahs_len)
				memcpy(h->ahs, c->ahs, c->ahs_len);
			for (pp = &c->held; *pp && sn_lt(get_be32((*pp)->bhs + BHS_CMDSN), cmdsn); pp = &(*pp)->next)
				;
			if (*pp && get_be32((*pp)->bhs + BHS_CMDSN) == cmdsn) {
				/* A duplicate CmdSN: keep the first. */
				free(h->ahs);
				free(h->data);
				free(h);
				return 0;
			}
			h->next = *pp;
			*pp = h;
			pthread_mutex_lock(&c->mu);
			c->nheld++;
			pthread_mutex_unlock(&c->mu);
			return 0;
		}
	}
	return cmd_start(c, c->bhs, c->ahs, c->ahs_len, NULL, dsl);
}

int cmd_run_held(struct iscsi_conn *c)
{
	while (c->held && get_be32(c->held->bhs + BHS_CMDSN) == c->exp_cmdsn) {
		struct held_pdu *h = c->held;
		int rc;

		c->held = h->next;
		pthread_mutex_lock(&c->mu);
		c->nheld--;
		c->exp_cmdsn++;
		pthread_mutex_unlock(&c->mu);
		rc = cmd_start(c, h->bhs, h->ahs, h->ahs_len, h->data ? h->data : (const uint8_t *)"", h->dsl);
		free(h->ahs);
		free(h->data);
		free(h);
		if (rc)
			return rc;
	}
	return 0;
}

/* End a task whose Data-Out went wrong: CHECK CONDITION, ABORTED COMMAND. */
static int task_fail_data(struct iscsi_conn *c, struct iscsi_task *t, uint8_t asc, uint8_t ascq)
{
	int rc;

	task_unlink(c, t);
	c->dead_itt[c->dead_next++ % 8] = t->itt;
	rc = send_refusal(c, t->bhs, t->edtl, SAM_STAT_CHECK_CONDITION, 0x0b, asc, ascq, t->r2tsn);
	task_free(t);
	return rc;
}

static bool itt_dead(const struct iscsi_conn *c, uint32_t itt)
{
	for (unsigned i = 0; i < 8 && i < c->dead_next; i++)
		if (c->dead_itt[i] == itt)
			return true;
	return false;
}

int cmd_handle_data_out(struct iscsi_conn *c)
{
	uint32_t dsl = bhs_dsl(c->bhs);
	uint32_t itt = get_be32(c->bhs + BHS_ITT), ttt = get_be32(c->bhs + BHS_TTT);
	uint32_t datasn = get_be32(c->bhs + BHS_DATASN), off = get_be32(c->bhs + BHS_BUFFER_OFFSET);
	bool fbit = c->bhs[BHS_FLAGS] & BHS_F_BIT, seq_end;
	struct iscsi_task *t;
	const char *why = NULL;
	uint8_t asc = 0x4b, ascq = 0x00;

	for (t = c->tasks; t && t->itt != itt; t = t->next)
		;
	if (!t && itt_dead(c, itt))
		return conn_discard_data(c, dsl);   /* the rest of a failed task */
	if (!t) {
		log_notice("%s: Data-Out for unknown task 0x%08x", c->peer, itt);
		if (conn_discard_data(c, dsl))
			return -1;
		return conn_reject(c, REJECT_INVALID_FIELD);
	}
	/* Sense codes: RFC 7143 11.4.7.2 and SPC-4's ASC table. */
	if ((uint64_t)off + dsl > t->edtl) {
		why = "data beyond the expected transfer length";
		ascq = 0x02;                                  /* TOO MUCH WRITE DATA */
	} else if (off != t->received) {
		why = "BufferOffset out of order";
		ascq = 0x05;                                  /* DATA OFFSET ERROR */
	} else if (datasn != t->exp_datasn) {
		why = "DataSN out of order";                  /* DATA PHASE ERROR */
	} else if (ttt == ISCSI_TAG_RESERVED) {
		if (!t->unsolicited || off + dsl > t->unsol_limit) {
			why = "unsolicited data not expected here";
			asc = 0x0c;
			ascq = 0x0c;                          /* UNEXPECTED UNSOLICITED DATA */
		}
	} else if (t->nr2t == 0 || t->r2ts[0].ttt != ttt) {
		why = "Data-Out for a transfer tag we did not issue";
		ascq = 0x01;                                  /* INVALID TARGET PORT TRANSFER TAG */
	} else if (off + dsl > t->r2ts[0].offset + t->r2ts[0].len) {
		why = "Data-Out beyond the R2T";
		ascq = 0x02;
	}
	if (why) {
		log_notice("%s: task 0x%08x aborted: %s (offset %u, %u bytes, DataSN %u)",
			   c->peer, itt, why, off, dsl, datasn);
		if (conn_discard_data(c, dsl))
			return -1;
		return task_fail_data(c, t, asc, ascq);
	}
	if (task_take_data(c, t, NULL, dsl))
		return -1;
	t->exp_datasn++;

	if (ttt == ISCSI_TAG_RESERVED) {
		seq_end = fbit || t->received == t->unsol_limit;
		if (seq_end) {
			t->unsolicited = false;
			t->exp_datasn = 0;
			t->next_r2t_offset = t->received;
		}
	} else {
		seq_end = t->received == t->r2ts[0].offset + t->r2ts[0].len;
		if (fbit && !seq_end) {
			log_notice("%s: task 0x%08x aborted: F bit before the end of the R2T", c->peer, itt);
			return task_fail_data(c, t, 0x4b, 0x00);
		}
		if (seq_end) {
			memmove(&t->r2ts[0], &t->r2ts[1], (t->nr2t - 1) * sizeof(t->r2ts[0]));
			t->nr2t--;
			t->exp_datasn = 0;
		}
	}
	if (t->received >= t->want && !t->unsolicited && t->nr2t == 0) {
		task_unlink(c, t);
		return task_run(c, t, t->bhs[BHS_FLAGS] & CMD_R_BIT);
	}
	if (seq_end && !t->unsolicited)
		return send_r2ts(c, t);
	return 0;
}
