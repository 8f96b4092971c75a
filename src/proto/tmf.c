/*
 * tmf.c - Task Management Function requests (RFC 7143 11.5/11.6).
 *
 * A task management request is a barrier (inflight.c): it waits until
 * every command of the connection that was executing on a worker has
 * finished and been answered, so such a command is never cut short and
 * never answered after the TMF response; to ABORT TASK it is a task that
 * no longer exists.  What can be aborted are writes still waiting for
 * Data-Out and commands held for CmdSN order; those are dropped without a
 * response, as SAM requires for aborted tasks.  LU and target resets also
 * reset SCSI state (reservations, unit attentions) through the SCSI layer.
 */
#include "proto/conn.h"
#include "util/log.h"

#include <string.h>

enum {
	TMF_ABORT_TASK = 1, TMF_ABORT_TASK_SET = 2, TMF_CLEAR_ACA = 3, TMF_CLEAR_TASK_SET = 4,
	TMF_LUN_RESET = 5, TMF_TARGET_WARM_RESET = 6, TMF_TARGET_COLD_RESET = 7,
	TMF_TASK_REASSIGN = 8,
};

enum {
	TMF_RSP_COMPLETE = 0, TMF_RSP_NO_TASK = 1, TMF_RSP_NO_LUN = 2,
	TMF_RSP_REASSIGN_UNSUPPORTED = 4, TMF_RSP_NOT_SUPPORTED = 5, TMF_RSP_REJECTED = 255,
};

int tmf_handle(struct iscsi_conn *c)
{
	uint8_t fn = c->bhs[BHS_FLAGS] & BHS_FUNC_MASK;
	uint64_t lun = scsi_lun_decode(c->bhs + BHS_LUN);
	uint32_t rtt = get_be32(c->bhs + BHS_RTT), refcmdsn = get_be32(c->bhs + BHS_REFCMDSN);
	struct scsi_target *st = c->sess->scsi;
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };
	uint8_t rsp = TMF_RSP_COMPLETE;
	bool cold = false;
	int rc;

	if (conn_discard_data(c, bhs_dsl(c->bhs)))
		return -1;
	if (!bhs_immediate(c->bhs) && cmd_window_check(c, get_be32(c->bhs + BHS_CMDSN)) < 0)
		return 0;
	inflight_drain(c);

	switch (fn) {
	case TMF_ABORT_TASK:
		if (!scsi_target_has_lun(st, lun))
			rsp = TMF_RSP_NO_LUN;
		else if (tasks_abort(c, false, 0, true, rtt) == 0)
			/* Never received (still ahead of ExpCmdSN) counts as done. */
			rsp = sn_le(c->exp_cmdsn, refcmdsn) ? TMF_RSP_COMPLETE : TMF_RSP_NO_TASK;
		break;
	case TMF_ABORT_TASK_SET:
	case TMF_CLEAR_TASK_SET:
		if (!scsi_target_has_lun(st, lun)) {
			rsp = TMF_RSP_NO_LUN;
			break;
		}
		tasks_abort(c, false, lun, false, 0);
		scsi_target_task_set_cleared(st, lun, &c->sess->nexus);
		break;
	case TMF_CLEAR_ACA:
		rsp = scsi_target_has_lun(st, lun) ? TMF_RSP_COMPLETE : TMF_RSP_NO_LUN;
		break;
	case TMF_LUN_RESET:
		if (!scsi_target_has_lun(st, lun)) {
			rsp = TMF_RSP_NO_LUN;
			break;
		}
		tasks_abort(c, false, lun, false, 0);
		rsp = (uint8_t)scsi_target_lun_reset(st, lun, &c->sess->nexus);
		break;
	case TMF_TARGET_WARM_RESET:
	case TMF_TARGET_COLD_RESET:
		cold = fn == TMF_TARGET_COLD_RESET;
		tasks_abort(c, true, 0, false, 0);
		rsp = (uint8_t)scsi_target_reset(st, &c->sess->nexus, cold);
		break;
	case TMF_TASK_REASSIGN:
		rsp = TMF_RSP_REASSIGN_UNSUPPORTED;  /* ErrorRecoveryLevel 0 */
		break;
	default:
		rsp = TMF_RSP_NOT_SUPPORTED;
		break;
	}
	log_info("%s: task management function %u on LUN %llu: response %u", c->peer, fn,
		 (unsigned long long)lun, rsp);
	bhs[BHS_OPCODE] = OP_TMF_RSP;
	bhs[BHS_FLAGS] = BHS_F_BIT;
	bhs[BHS_RESPONSE] = rsp;
	put_be32(bhs + BHS_ITT, get_be32(c->bhs + BHS_ITT));
	rc = conn_send(c, bhs, NULL, 0);
	if (cold && rsp == TMF_RSP_COMPLETE) {
		/* A cold reset ends every connection to the target, ours last. */
		session_close_target(c->srv, c->sess->target, c);
		c->closing = true;
	}
	return rc;
}
