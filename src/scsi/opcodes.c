/*
 * opcodes.c - the table of commands we implement: handler, CDB length,
 * reservation class and CDB usage data; lookup for the dispatcher and
 * REPORT SUPPORTED OPERATION CODES (SPC-4 6.35).
 *
 * The usage data doubles as the reserved-bit check: a CDB bit that is
 * not in its command's usage mask is refused with INVALID FIELD IN CDB
 * (see scsi_op_check_reserved()).  The control byte is not checked.
 */
#include "scsi/scsi_int.h"

#define F 0xff

static const struct scsi_opdesc ops[] = {
	{ 0x00, 0, false, 6, PRC_ALLOWED, false, spc_test_unit_ready,
	  { 0x00, 0, 0, 0, 0, 0 } },
	{ 0x03, 0, false, 6, PRC_ALLOWED, true, spc_request_sense,
	  { 0x03, 0x01, 0, 0, F, 0 } },
	{ 0x08, 0, false, 6, PRC_READ, false, sbc_read,
	  { 0x08, 0x1f, F, F, F, 0 } },
	{ 0x0a, 0, false, 6, PRC_WRITE, false, sbc_write,
	  { 0x0a, 0x1f, F, F, F, 0 } },
	{ 0x12, 0, false, 6, PRC_ALLOWED, true, spc_inquiry,
	  { 0x12, 0x01, F, F, F, 0 } },
	{ 0x15, 0, false, 6, PRC_WRITE, false, spc_mode_select,
	  { 0x15, 0x11, 0, 0, F, 0 } },
	{ 0x16, 0, false, 6, PRC_SPECIAL, false, pr_reserve,
	  { 0x16, 0, 0, 0, 0, 0 } },
	{ 0x17, 0, false, 6, PRC_SPECIAL, false, pr_release,
	  { 0x17, 0, 0, 0, 0, 0 } },
	{ 0x1a, 0, false, 6, PRC_WRITE, false, spc_mode_sense,
	  { 0x1a, 0x08, F, F, F, 0 } },
	{ 0x1b, 0, false, 6, PRC_SPECIAL, false, spc_start_stop_unit,
	  { 0x1b, 0x01, 0, 0x0f, 0xf7, 0 } },
	{ 0x1e, 0, false, 6, PRC_SPECIAL, false, spc_prevent_allow,
	  { 0x1e, 0, 0, 0, 0x03, 0 } },
	{ 0x25, 0, false, 10, PRC_ALLOWED, false, sbc_read_capacity10,
	  { 0x25, 0, F, F, F, F, 0, 0, 0x01, 0 } },
	{ 0x28, 0, false, 10, PRC_READ, false, sbc_read,
	  { 0x28, 0xfe, F, F, F, F, 0x3f, F, F, 0 } },
	{ 0x2a, 0, false, 10, PRC_WRITE, false, sbc_write,
	  { 0x2a, 0xfa, F, F, F, F, 0x3f, F, F, 0 } },
	{ 0x2e, 0, false, 10, PRC_WRITE, false, sbc_write_verify,
	  { 0x2e, 0xf6, F, F, F, F, 0x3f, F, F, 0 } },
	{ 0x2f, 0, false, 10, PRC_READ, false, sbc_verify,
	  { 0x2f, 0xf6, F, F, F, F, 0x3f, F, F, 0 } },
	{ 0x34, 0, false, 10, PRC_READ, false, sbc_prefetch,
	  { 0x34, 0x02, F, F, F, F, 0x3f, F, F, 0 } },
	{ 0x35, 0, false, 10, PRC_WRITE, false, sbc_sync_cache,
	  { 0x35, 0x06, F, F, F, F, 0x3f, F, F, 0 } },
	{ 0x37, 0, false, 10, PRC_READ, false, sbc_read_defect_data,
	  { 0x37, 0, 0x1f, 0, 0, 0, 0, F, F, 0 } },
	{ 0x41, 0, false, 10, PRC_WRITE, false, sbc_write_same,
	  { 0x41, 0xf8, F, F, F, F, 0x3f, F, F, 0 } },
	{ 0x42, 0, false, 10, PRC_WRITE, false, sbc_unmap,
	  { 0x42, 0x01, 0, 0, 0, 0, 0x3f, F, F, 0 } },
	{ 0x55, 0, false, 10, PRC_WRITE, false, spc_mode_select,
	  { 0x55, 0x11, 0, 0, 0, 0, 0, F, F, 0 } },
	{ 0x56, 0, false, 10, PRC_SPECIAL, false, pr_reserve,
	  { 0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0 } },
	{ 0x57, 0, false, 10, PRC_SPECIAL, false, pr_release,
	  { 0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0 } },
	{ 0x5a, 0, false, 10, PRC_WRITE, false, spc_mode_sense,
	  { 0x5a, 0x18, F, F, 0, 0, 0, F, F, 0 } },
	{ 0x5e, 0x00, true, 10, PRC_ALLOWED, false, pr_in,
	  { 0x5e, 0x1f, 0, 0, 0, 0, 0, F, F, 0 } },
	{ 0x5e, 0x01, true, 10, PRC_ALLOWED, false, pr_in,
	  { 0x5e, 0x1f, 0, 0, 0, 0, 0, F, F, 0 } },
	{ 0x5e, 0x02, true, 10, PRC_ALLOWED, false, pr_in,
	  { 0x5e, 0x1f, 0, 0, 0, 0, 0, F, F, 0 } },
	{ 0x5e, 0x03, true, 10, PRC_ALLOWED, false, pr_in,
	  { 0x5e, 0x1f, 0, 0, 0, 0, 0, F, F, 0 } },
	{ 0x5f, 0x00, true, 10, PRC_SPECIAL, false, pr_out,
	  { 0x5f, 0x1f, F, 0, 0, F, F, F, F, 0 } },
	{ 0x5f, 0x01, true, 10, PRC_SPECIAL, false, pr_out,
	  { 0x5f, 0x1f, F, 0, 0, F, F, F, F, 0 } },
	{ 0x5f, 0x02, true, 10, PRC_SPECIAL, false, pr_out,
	  { 0x5f, 0x1f, F, 0, 0, F, F, F, F, 0 } },
	{ 0x5f, 0x03, true, 10, PRC_SPECIAL, false, pr_out,
	  { 0x5f, 0x1f, F, 0, 0, F, F, F, F, 0 } },
	{ 0x5f, 0x04, true, 10, PRC_SPECIAL, false, pr_out,
	  { 0x5f, 0x1f, F, 0, 0, F, F, F, F, 0 } },
	{ 0x5f, 0x05, true, 10, PRC_SPECIAL, false, pr_out,
	  { 0x5f, 0x1f, F, 0, 0, F, F, F, F, 0 } },
	{ 0x5f, 0x06, true, 10, PRC_SPECIAL, false, pr_out,
	  { 0x5f, 0x1f, F, 0, 0, F, F, F, F, 0 } },
	{ 0x83, 0x00, true, 16, PRC_WRITE, false, spc_extended_copy,
	  { 0x83, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0 } },
	{ 0x84, 0x00, true, 16, PRC_WRITE, false, spc_receive_copy_results,
	  { 0x84, 0x1f, F, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0 } },
	{ 0x84, 0x03, true, 16, PRC_WRITE, false, spc_receive_copy_results,
	  { 0x84, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0 } },
	{ 0x88, 0, false, 16, PRC_READ, false, sbc_read,
	  { 0x88, 0xfe, F, F, F, F, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0x89, 0, false, 16, PRC_WRITE, false, sbc_compare_and_write,
	  { 0x89, 0xfa, F, F, F, F, F, F, F, F, 0, 0, 0, F, 0x3f, 0 } },
	{ 0x8a, 0, false, 16, PRC_WRITE, false, sbc_write,
	  { 0x8a, 0xfa, F, F, F, F, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0x8b, 0, false, 16, PRC_WRITE, false, sbc_orwrite,
	  { 0x8b, 0xfa, F, F, F, F, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0x8e, 0, false, 16, PRC_WRITE, false, sbc_write_verify,
	  { 0x8e, 0xf6, F, F, F, F, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0x8f, 0, false, 16, PRC_READ, false, sbc_verify,
	  { 0x8f, 0xf6, F, F, F, F, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0x90, 0, false, 16, PRC_READ, false, sbc_prefetch,
	  { 0x90, 0x02, F, F, F, F, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0x91, 0, false, 16, PRC_WRITE, false, sbc_sync_cache,
	  { 0x91, 0x06, F, F, F, F, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0x93, 0, false, 16, PRC_WRITE, false, sbc_write_same,
	  { 0x93, 0xf9, F, F, F, F, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0x9c, 0, false, 16, PRC_WRITE, false, sbc_write,
	  { 0x9c, 0xf8, F, F, F, F, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0x9e, 0x10, true, 16, PRC_ALLOWED, false, sbc_read_capacity16,
	  { 0x9e, 0x1f, F, F, F, F, F, F, F, F, F, F, F, F, 0x01, 0 } },
	{ 0x9e, 0x12, true, 16, PRC_READ, false, sbc_get_lba_status,
	  { 0x9e, 0x1f, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0 } },
	{ 0xa3, 0x0c, true, 12, PRC_ALLOWED, false, spc_report_supported_opcodes,
	  { 0xa3, 0x1f, 0x87, F, F, F, F, F, F, F, 0, 0 } },
	{ 0xa8, 0, false, 12, PRC_READ, false, sbc_read,
	  { 0xa8, 0xfe, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0xaa, 0, false, 12, PRC_WRITE, false, sbc_write,
	  { 0xaa, 0xfa, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0xae, 0, false, 12, PRC_WRITE, false, sbc_write_verify,
	  { 0xae, 0xf6, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0xaf, 0, false, 12, PRC_READ, false, sbc_verify,
	  { 0xaf, 0xf6, F, F, F, F, F, F, F, F, 0x3f, 0 } },
	{ 0xb7, 0, false, 12, PRC_READ, false, sbc_read_defect_data,
	  { 0xb7, 0x1f, 0, 0, 0, 0, F, F, F, F, 0, 0 } },
};

#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* Opcodes whose service action lives in CDB byte 1 bits 4-0. */
static bool opcode_has_sa(uint8_t opcode)
{
	return opcode == 0x5e || opcode == 0x5f || opcode == 0x83 || opcode == 0x84 ||
	       opcode == 0x9e || opcode == 0xa3;
}

/* Find the descriptor for (opcode, sa); sa is ignored for opcodes
 * without service actions.  *bad_sa tells an unknown service action of a
 * known opcode from an unknown opcode. */
static const struct scsi_opdesc *find(uint8_t opcode, uint16_t sa, bool *bad_sa)
{
	bool seen = false;

	for (unsigned i = 0; i < NOPS; i++) {
		if (ops[i].opcode != opcode)
			continue;
		seen = true;
		if (!ops[i].has_sa || ops[i].sa == sa)
			return &ops[i];
	}
	if (bad_sa)
		*bad_sa = seen;
	return NULL;
}

/* See scsi_int.h. */
const struct scsi_opdesc *scsi_op_lookup(const uint8_t *cdb, bool *bad_sa)
{
	*bad_sa = false;
	return find(cdb[0], opcode_has_sa(cdb[0]) ? (cdb[1] & 0x1f) : 0, bad_sa);
}

/*
 * Refuse a CDB with a bit set outside op's usage mask (bytes 1 to
 * length-2).  Returns true after setting INVALID FIELD IN CDB.
 */
bool scsi_op_check_reserved(struct scsi_lu *lu, struct scsi_cmd *cmd, const struct scsi_opdesc *op)
{
	for (unsigned i = 1; i + 1 < op->cdb_len; i++) {
		uint8_t bad = cmd->cdb[i] & (uint8_t)~op->usage[i];
		if (bad) {
			int bit = 7;
			while (!(bad & (1u << bit)))
				bit--;
			scsi_bad_cdb(lu, cmd, i, bit);
			return true;
		}
	}
	return false;
}

/* Put a command timeouts descriptor (no timeouts known). */
static void put_timeouts(uint8_t *p)
{
	memset(p, 0, 12);
	put_be16(p, 0x0a);
}

/* REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN, SA 0x0c). */
void spc_report_supported_opcodes(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool rctd = cdb[2] & 0x80;
	uint8_t opt = cdb[2] & 0x07;
	uint8_t req_op = cdb[3];
	uint16_t req_sa = get_be16(cdb + 4);
	uint32_t alloc = get_be32(cdb + 6);
	uint32_t len = 0;
	uint8_t *buf;

	if (opt == 0) {
		uint32_t dlen = rctd ? 20 : 8;
		buf = scsi_alloc(lu, cmd, 4 + NOPS * dlen);
		if (!buf)
			return;
		len = 4;
		for (unsigned i = 0; i < NOPS; i++) {
			uint8_t *d = buf + len;
			d[0] = ops[i].opcode;
			put_be16(d + 2, ops[i].has_sa ? ops[i].sa : 0);
			d[5] = (uint8_t)((rctd ? 0x02 : 0) | (ops[i].has_sa ? 0x01 : 0));
			put_be16(d + 6, ops[i].cdb_len);
			if (rctd)
				put_timeouts(d + 8);
			len += dlen;
		}
		put_be32(buf, len - 4);
	} else if (opt <= 3) {
		bool has_sa = opcode_has_sa(req_op);
		const struct scsi_opdesc *op = NULL;
		if (opt == 1 && has_sa) {
			scsi_bad_cdb(lu, cmd, 2, 2);
			return;
		}
		if (opt == 2 && !has_sa) {
			scsi_bad_cdb(lu, cmd, 2, 2);
			return;
		}
		op = find(req_op, has_sa ? req_sa : 0, NULL);
		buf = scsi_alloc(lu, cmd, 4 + 16 + 12);
		if (!buf)
			return;
		if (!op) {
			buf[1] = 0x01;          /* not supported */
			len = 4;
		} else {
			buf[1] = (uint8_t)((rctd ? 0x80 : 0) | 0x03);
			put_be16(buf + 2, op->cdb_len);
			memcpy(buf + 4, op->usage, op->cdb_len);
			len = 4 + op->cdb_len;
			if (rctd) {
				put_timeouts(buf + len);
				len += 12;
			}
		}
	} else {
		scsi_bad_cdb(lu, cmd, 2, 2);
		return;
	}
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, len, alloc);
}
