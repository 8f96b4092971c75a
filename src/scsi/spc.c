/*
 * spc.c - the small SPC-4 commands of a disk: TEST UNIT READY, REQUEST
 * SENSE, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, and SBC's READ
 * DEFECT DATA (an empty list: a file has no defects).
 */
#include "scsi/scsi_int.h"

/* TEST UNIT READY: always ready; unit attentions were reported by the
 * dispatcher already. */
void spc_test_unit_ready(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	(void)lu;
	cmd->status = SAM_STAT_GOOD;
}

/* REQUEST SENSE (SPC-4 6.39): report (and clear) the oldest pending unit
 * attention, else NO SENSE.  DESC picks the format. */
void spc_request_sense(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint8_t alloc = cdb[4];
	bool desc = cdb[1] & 1;
	uint16_t asc = ASC_NO_ADDITIONAL;
	uint8_t key = SK_NO_SENSE;

	if (cdb[1] & 0xfe) {
		scsi_bad_cdb(lu, cmd, 1, -1);
		return;
	}
	uint8_t *buf = scsi_alloc(lu, cmd, 64);
	if (!buf)
		return;
	if (ua_pop(lu->target, lu->slot, cmd->nexus, &asc))
		key = SK_UNIT_ATTENTION;
	uint32_t len = scsi_sense_build(buf, desc, key, asc, NULL);
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, len, alloc);
}

/*
 * START STOP UNIT (SBC-3 5.25).  A pristine LU never really stops: an
 * initiator powering off would otherwise leave the disk NOT READY for
 * the firmware of the next boot, which sends no START UNIT.  Stopping
 * flushes the cache (unless NO_FLUSH); power conditions are accepted.
 */
void spc_start_stop_unit(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint8_t pc = cdb[4] >> 4;
	bool start = cdb[4] & 1;
	bool no_flush = cdb[4] & 0x04;

	if (pc != 0 && pc != 1 && pc != 2 && pc != 3 && pc != 5 && pc != 7 &&
	    pc != 0xa && pc != 0xb) {
		scsi_bad_cdb(lu, cmd, 4, 7);
		return;
	}
	if (!start && !no_flush && lu->be->ops->flush) {
		int rc = lu->be->ops->flush(lu->be);
		if (rc < 0) {
			sbc_io_error(lu, cmd, rc, true);
			return;
		}
	}
	cmd->status = SAM_STAT_GOOD;
}

/* PREVENT ALLOW MEDIUM REMOVAL: recorded per nexus; the medium is not
 * removable, so it changes nothing else. */
void spc_prevent_allow(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	uint8_t prevent = cmd->cdb[4] & 0x03;
	struct scsi_target *t = lu->target;

	if (cmd->nexus) {
		pthread_mutex_lock(&t->lock);
		struct scsi_nexus_state *s = ua_find(t, cmd->nexus->id);
		if (s)
			s->prevent[lu->slot] = prevent & 1;
		pthread_mutex_unlock(&t->lock);
	}
	cmd->status = SAM_STAT_GOOD;
}

/* READ DEFECT DATA(10) 0x37 and (12) 0xb7: an empty list in the format
 * asked for. */
void sbc_read_defect_data(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool twelve = cdb[0] == 0xb7;
	uint8_t flags = twelve ? cdb[1] : cdb[2];
	uint32_t alloc = twelve ? get_be32(cdb + 6) : get_be16(cdb + 7);
	uint32_t len = twelve ? 8 : 4;

	uint8_t *buf = scsi_alloc(lu, cmd, 8);
	if (!buf)
		return;
	buf[1] = flags & 0x1f;
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, len, alloc);
}
