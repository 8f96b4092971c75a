/*
 * pr.c - reservations: SPC-2 RESERVE/RELEASE(6/10) and SPC-4 persistent
 * reservations (PERSISTENT RESERVE IN/OUT), plus the access check the
 * dispatcher runs before every command.
 *
 * An I_T nexus is identified by its initiator port name
 * ("<iqn>,i,0x<isid>"); we have one target port, so that is enough.
 * Registrations and the persistent reservation survive session loss,
 * and are kept in memory only (PTPL_C=0: APTPL=1 is refused), so they do
 * not survive a daemon restart.  All state is under lu->pr_lock; unit
 * attentions are raised with that lock held (lock order pr_lock, then
 * target->lock).
 */
#include <stdio.h>

#include "scsi/scsi_int.h"

enum {
	PR_WE = 1, PR_EA = 3, PR_WE_RO = 5, PR_EA_RO = 6, PR_WE_AR = 7, PR_EA_AR = 8,
};

/* The initiator port name of cmd's nexus ("" without one). */
static const char *port_of(const struct scsi_cmd *cmd)
{
	return cmd->nexus ? cmd->nexus->port_name : "";
}

/* Is t one of the six persistent reservation types? */
static bool type_valid(uint8_t t)
{
	return t == PR_WE || t == PR_EA || t == PR_WE_RO || t == PR_EA_RO ||
	       t == PR_WE_AR || t == PR_EA_AR;
}

/* All-registrants types: every registrant is a holder. */
static bool type_all_reg(uint8_t t)
{
	return t == PR_WE_AR || t == PR_EA_AR;
}

/* Index of port's registration, or -1. */
static int reg_find(const struct pr_state *pr, const char *port)
{
	for (unsigned i = 0; i < pr->nregs; i++)
		if (strcmp(pr->regs[i].port_name, port) == 0)
			return (int)i;
	return -1;
}

/* Does port hold the persistent reservation? */
static bool is_holder(const struct pr_state *pr, const char *port)
{
	if (!pr->pr_held)
		return false;
	if (type_all_reg(pr->pr_type))
		return reg_find(pr, port) >= 0;
	return strcmp(pr->pr_holder, port) == 0;
}

/* Remove registration i; releases the reservation if its holder goes
 * (or the last registrant of an all-registrants one).  Does not raise
 * unit attentions or bump the generation. */
static void reg_remove(struct scsi_lu *lu, unsigned i, bool ua_on_release)
{
	struct pr_state *pr = &lu->pr;
	char port[256];

	snprintf(port, sizeof(port), "%s", pr->regs[i].port_name);
	pr->regs[i] = pr->regs[pr->nregs - 1];
	pr->nregs--;
	if (!pr->pr_held)
		return;
	bool release = type_all_reg(pr->pr_type) ? pr->nregs == 0
						  : strcmp(pr->pr_holder, port) == 0;
	if (!release)
		return;
	uint8_t type = pr->pr_type;
	pr->pr_held = false;
	pr->pr_holder[0] = 0;
	/* SPC-4 5.12.11.2.2: releasing a registrants-only reservation by
	 * unregistering tells the other registrants. */
	if (ua_on_release && (type == PR_WE_RO || type == PR_EA_RO))
		for (unsigned j = 0; j < pr->nregs; j++)
			ua_raise_port(lu->target, lu->slot, pr->regs[j].port_name,
				      ASC_RESERVATIONS_RELEASED);
}

/* See scsi_int.h. */
bool pr_check_conflict(struct scsi_lu *lu, struct scsi_cmd *cmd, const struct scsi_opdesc *op)
{
	const char *port = port_of(cmd);
	struct pr_state *pr = &lu->pr;
	enum pr_class c = op->prc;
	bool conflict = false;

	if (c == PRC_SPECIAL) {
		uint8_t opc = cmd->cdb[0];
		if (opc == 0x1b)        /* START STOP UNIT: start without power condition reads */
			c = ((cmd->cdb[4] & 1) && !(cmd->cdb[4] >> 4)) ? PRC_ALLOWED : PRC_WRITE;
		else if (opc == 0x1e)   /* PREVENT ALLOW: allow is harmless */
			c = (cmd->cdb[4] & 3) ? PRC_WRITE : PRC_ALLOWED;
	}
	pthread_mutex_lock(&lu->pr_lock);
	if (pr->reserved && strcmp(pr->reserve_holder, port) != 0) {
		/* SPC-2 reservation held by another nexus. */
		switch (op->opcode) {
		case 0x12: case 0x03: case 0xa0: case 0xa3: case 0x17: case 0x57: case 0x5e:
			break;
		default:
			conflict = true;
		}
	} else if (pr->pr_held && !is_holder(pr, port) && c != PRC_ALLOWED && c != PRC_SPECIAL) {
		bool registered = reg_find(pr, port) >= 0;
		switch (pr->pr_type) {
		case PR_WE:
			conflict = c == PRC_WRITE;
			break;
		case PR_EA:
			conflict = true;
			break;
		case PR_WE_RO: case PR_WE_AR:
			conflict = c == PRC_WRITE && !registered;
			break;
		case PR_EA_RO: case PR_EA_AR:
			conflict = !registered;
			break;
		}
	}
	pthread_mutex_unlock(&lu->pr_lock);
	if (conflict) {
		cmd->status = SAM_STAT_RESERVATION_CONFLICT;
		cmd->sense_len = 0;
	}
	return conflict;
}

/* RESERVE(6/10): an SPC-2 reservation of the whole LU for this nexus. */
void pr_reserve(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const char *port = port_of(cmd);
	struct pr_state *pr = &lu->pr;
	bool conflict;

	pthread_mutex_lock(&lu->pr_lock);
	conflict = pr->pr_held || (pr->reserved && strcmp(pr->reserve_holder, port) != 0);
	if (!conflict) {
		pr->reserved = true;
		snprintf(pr->reserve_holder, sizeof(pr->reserve_holder), "%s", port);
	}
	pthread_mutex_unlock(&lu->pr_lock);
	cmd->status = conflict ? SAM_STAT_RESERVATION_CONFLICT : SAM_STAT_GOOD;
}

/* RELEASE(6/10): drops this nexus's SPC-2 reservation; a no-op otherwise. */
void pr_release(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const char *port = port_of(cmd);
	struct pr_state *pr = &lu->pr;
	bool conflict = false;

	pthread_mutex_lock(&lu->pr_lock);
	if (pr->pr_held && !is_holder(pr, port))
		conflict = true;
	else if (pr->reserved && strcmp(pr->reserve_holder, port) == 0)
		pr->reserved = false;
	pthread_mutex_unlock(&lu->pr_lock);
	cmd->status = conflict ? SAM_STAT_RESERVATION_CONFLICT : SAM_STAT_GOOD;
}

/* See scsi_int.h. */
void pr_drop_reserve(struct scsi_lu *lu, const char *port_name)
{
	pthread_mutex_lock(&lu->pr_lock);
	if (lu->pr.reserved && (!port_name || strcmp(lu->pr.reserve_holder, port_name) == 0))
		lu->pr.reserved = false;
	pthread_mutex_unlock(&lu->pr_lock);
}

/* Append an iSCSI TransportID (format 01b, port name) at p; returns its
 * length (a multiple of 4, at least 24). */
static uint32_t put_transport_id(uint8_t *p, const char *port)
{
	uint32_t n = (uint32_t)strlen(port) + 1;
	uint32_t len = (n + 3) & ~3u;

	if (len < 20)
		len = 20;
	memset(p, 0, 4 + len);
	p[0] = 0x40 | 0x05;
	put_be16(p + 2, (uint16_t)len);
	memcpy(p + 4, port, n);
	return 4 + len;
}

/* PERSISTENT RESERVE IN: READ KEYS, READ RESERVATION, REPORT
 * CAPABILITIES, READ FULL STATUS. */
void pr_in(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	uint8_t sa = cmd->cdb[1] & 0x1f;
	uint16_t alloc = get_be16(cmd->cdb + 7);
	struct pr_state *pr = &lu->pr;
	uint8_t *buf = scsi_alloc(lu, cmd, 8 + PR_MAX_REGS * 300);
	uint32_t len = 8;

	if (!buf)
		return;
	pthread_mutex_lock(&lu->pr_lock);
	put_be32(buf, pr->generation);
	switch (sa) {
	case 0:
		for (unsigned i = 0; i < pr->nregs; i++, len += 8)
			put_be64(buf + len, pr->regs[i].key);
		put_be32(buf + 4, len - 8);
		break;
	case 1:
		if (pr->pr_held) {
			uint64_t key = 0;
			if (!type_all_reg(pr->pr_type)) {
				int r = reg_find(pr, pr->pr_holder);
				key = r >= 0 ? pr->regs[r].key : 0;
			}
			put_be64(buf + 8, key);
			buf[21] = pr->pr_type & 0x0f;
			len = 24;
		}
		put_be32(buf + 4, len - 8);
		break;
	case 2:
		memset(buf, 0, 8);
		put_be16(buf, 8);
		buf[2] = 0x04;          /* ATP_C: ALL_TG_PT accepted */
		buf[3] = 0x80 | 0x10;   /* TMV, ALLOW COMMANDS = 1 */
		buf[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;
		buf[5] = 0x01;
		break;
	case 3:
		for (unsigned i = 0; i < pr->nregs; i++) {
			uint8_t *d = buf + len;
			memset(d, 0, 24);
			put_be64(d, pr->regs[i].key);
			if (is_holder(pr, pr->regs[i].port_name)) {
				d[12] = 0x01;
				d[13] = pr->pr_type & 0x0f;
			}
			put_be16(d + 18, 1);
			uint32_t tl = put_transport_id(d + 24, pr->regs[i].port_name);
			put_be32(d + 20, tl);
			len += 24 + tl;
		}
		put_be32(buf + 4, len - 8);
		break;
	}
	pthread_mutex_unlock(&lu->pr_lock);
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, len, alloc);
}

/* Remove every registration with key (except skip, may be -1); raise
 * REGISTRATIONS PREEMPTED for each.  Returns how many were removed. */
static unsigned remove_key(struct scsi_lu *lu, uint64_t key, const char *skip)
{
	struct pr_state *pr = &lu->pr;
	unsigned n = 0;

	for (unsigned i = 0; i < pr->nregs;) {
		if (pr->regs[i].key == key && (!skip || strcmp(pr->regs[i].port_name, skip) != 0)) {
			ua_raise_port(lu->target, lu->slot, pr->regs[i].port_name,
				      ASC_REGISTRATIONS_PREEMPTED);
			reg_remove(lu, i, false);
			n++;
		} else {
			i++;
		}
	}
	return n;
}

/* PREEMPT / PREEMPT AND ABORT (SPC-4 5.12.11.4).  Caller holds pr_lock
 * and has checked that port is registered with the right key.  Returns
 * a SAM status, or 0xff after setting sense. */
static uint8_t pr_preempt(struct scsi_lu *lu, struct scsi_cmd *cmd, const char *port,
			  uint64_t sa_key, uint8_t type)
{
	struct pr_state *pr = &lu->pr;

	if (!pr->pr_held) {
		if (sa_key == 0) {
			scsi_bad_param(lu, cmd, 8, -1);
			return 0xff;
		}
		if (remove_key(lu, sa_key, NULL) == 0)
			return SAM_STAT_RESERVATION_CONFLICT;
		pr->generation++;
		return SAM_STAT_GOOD;
	}
	if (!type_valid(type)) {
		scsi_bad_cdb(lu, cmd, 2, 3);
		return 0xff;
	}
	if (type_all_reg(pr->pr_type)) {
		if (sa_key == 0) {
			/* Everyone else loses registration; we take over. */
			for (unsigned i = 0; i < pr->nregs;) {
				if (strcmp(pr->regs[i].port_name, port) != 0) {
					ua_raise_port(lu->target, lu->slot, pr->regs[i].port_name,
						      ASC_REGISTRATIONS_PREEMPTED);
					pr->regs[i] = pr->regs[--pr->nregs];
				} else {
					i++;
				}
			}
			pr->pr_held = true;
			pr->pr_type = type;
			snprintf(pr->pr_holder, sizeof(pr->pr_holder), "%s", port);
		} else if (remove_key(lu, sa_key, NULL) == 0) {
			return SAM_STAT_RESERVATION_CONFLICT;
		}
		pr->generation++;
		return SAM_STAT_GOOD;
	}
	int h = reg_find(pr, pr->pr_holder);
	uint64_t holder_key = h >= 0 ? pr->regs[h].key : 0;
	if (h >= 0 && sa_key == holder_key) {
		uint8_t old_type = pr->pr_type;
		/* Remove the preempted registrations but keep our own, then
		 * move the reservation to us. */
		pr->pr_held = false;
		remove_key(lu, sa_key, port);
		pr->pr_held = true;
		pr->pr_type = type;
		snprintf(pr->pr_holder, sizeof(pr->pr_holder), "%s", port);
		if (old_type != type)
			for (unsigned i = 0; i < pr->nregs; i++)
				if (strcmp(pr->regs[i].port_name, port) != 0)
					ua_raise_port(lu->target, lu->slot, pr->regs[i].port_name,
						      ASC_RESERVATIONS_RELEASED);
		pr->generation++;
		return SAM_STAT_GOOD;
	}
	if (sa_key == 0) {
		scsi_bad_param(lu, cmd, 8, -1);
		return 0xff;
	}
	if (remove_key(lu, sa_key, NULL) == 0)
		return SAM_STAT_RESERVATION_CONFLICT;
	pr->generation++;
	return SAM_STAT_GOOD;
}

/* PERSISTENT RESERVE OUT: REGISTER, RESERVE, RELEASE, CLEAR, PREEMPT,
 * PREEMPT AND ABORT, REGISTER AND IGNORE EXISTING KEY. */
void pr_out(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint8_t sa = cdb[1] & 0x1f;
	uint8_t scope = cdb[2] >> 4;
	uint8_t type = cdb[2] & 0x0f;
	uint32_t plen = get_be32(cdb + 5);
	const char *port = port_of(cmd);
	struct pr_state *pr = &lu->pr;
	uint8_t status = SAM_STAT_GOOD;

	cmd->xfer_len = plen;
	if (plen != 24 || !cmd->data_out || cmd->data_out_len < 24) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	const uint8_t *d = cmd->data_out;
	uint64_t key = get_be64(d);
	uint64_t sa_key = get_be64(d + 8);
	if (d[20] & 0x08) {          /* SPEC_I_PT: not supported */
		scsi_bad_param(lu, cmd, 20, 3);
		return;
	}
	if (d[20] & 0x01) {          /* APTPL: we cannot persist through power loss */
		scsi_bad_param(lu, cmd, 20, 0);
		return;
	}
	if ((sa == 1 || sa == 2 || sa == 4 || sa == 5) && scope != 0) {
		scsi_bad_cdb(lu, cmd, 2, 7);
		return;
	}
	if ((sa == 1 || sa == 2) && !type_valid(type)) {
		scsi_bad_cdb(lu, cmd, 2, 3);
		return;
	}

	pthread_mutex_lock(&lu->pr_lock);
	int r = reg_find(pr, port);
	if (sa == 0 || sa == 6) {
		if (r < 0) {
			if (sa == 0 && key != 0) {
				status = SAM_STAT_RESERVATION_CONFLICT;
			} else if (sa_key != 0) {
				if (pr->nregs == PR_MAX_REGS) {
					pthread_mutex_unlock(&lu->pr_lock);
					scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_INSUFFICIENT_REG_RESOURCES);
					return;
				}
				snprintf(pr->regs[pr->nregs].port_name, sizeof(pr->regs[0].port_name), "%s", port);
				pr->regs[pr->nregs].key = sa_key;
				pr->nregs++;
				pr->generation++;
			}
		} else if (sa == 0 && key != pr->regs[r].key) {
			status = SAM_STAT_RESERVATION_CONFLICT;
		} else if (sa_key == 0) {
			reg_remove(lu, (unsigned)r, true);
			pr->generation++;
		} else {
			pr->regs[r].key = sa_key;
			pr->generation++;
		}
		goto out;
	}
	if (r < 0 || pr->regs[r].key != key) {
		status = SAM_STAT_RESERVATION_CONFLICT;
		goto out;
	}
	switch (sa) {
	case 1:         /* RESERVE */
		if (pr->pr_held) {
			if (!is_holder(pr, port) || pr->pr_type != type)
				status = SAM_STAT_RESERVATION_CONFLICT;
		} else if (pr->reserved && strcmp(pr->reserve_holder, port) != 0) {
			status = SAM_STAT_RESERVATION_CONFLICT;
		} else {
			pr->pr_held = true;
			pr->pr_type = type;
			snprintf(pr->pr_holder, sizeof(pr->pr_holder), "%s", port);
		}
		break;
	case 2:         /* RELEASE */
		if (!pr->pr_held || !is_holder(pr, port))
			break;
		if (pr->pr_type != type) {
			pthread_mutex_unlock(&lu->pr_lock);
			/* INVALID RELEASE OF PERSISTENT RESERVATION */
			scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, 0x2604);
			return;
		}
		pr->pr_held = false;
		pr->pr_holder[0] = 0;
		if (type != PR_WE && type != PR_EA)
			for (unsigned i = 0; i < pr->nregs; i++)
				if (strcmp(pr->regs[i].port_name, port) != 0)
					ua_raise_port(lu->target, lu->slot, pr->regs[i].port_name,
						      ASC_RESERVATIONS_RELEASED);
		break;
	case 3:         /* CLEAR */
		for (unsigned i = 0; i < pr->nregs; i++)
			if (strcmp(pr->regs[i].port_name, port) != 0)
				ua_raise_port(lu->target, lu->slot, pr->regs[i].port_name,
					      ASC_RESERVATIONS_PREEMPTED);
		pr->nregs = 0;
		pr->pr_held = false;
		pr->pr_holder[0] = 0;
		pr->generation++;
		break;
	case 4:         /* PREEMPT */
	case 5:         /* PREEMPT AND ABORT: the transport aborts tasks itself */
		status = pr_preempt(lu, cmd, port, sa_key, type);
		if (status == 0xff) {
			pthread_mutex_unlock(&lu->pr_lock);
			return;
		}
		break;
	}
out:
	pthread_mutex_unlock(&lu->pr_lock);
	cmd->status = status;
}
