/*
 * sense.c - building sense data in fixed (0x70) or descriptor (0x72)
 * format (SPC-4 4.5).  The control mode page's D_SENSE bit chooses the
 * format per LU; commands for an absent LU always get fixed format.
 */
#include "scsi/scsi_int.h"

/*
 * Encode a sense into buf, which must hold at least 32 bytes.  desc picks
 * descriptor format.  ex may be NULL.  Returns the number of bytes used.
 */
uint32_t scsi_sense_build(uint8_t *buf, bool desc, uint8_t key, uint16_t asc,
			  const struct sense_extra *ex)
{
	uint8_t sks[3] = { 0, 0, 0 };
	bool has_sks = ex && ex->sks_valid;

	if (has_sks) {
		sks[0] = 0x80 | (ex->sks_cdb ? 0x40 : 0) |
			 (ex->sks_bpv ? 0x08 | (ex->sks_bit & 7) : 0);
		put_be16(sks + 1, ex->sks_field);
	}
	if (!desc) {
		memset(buf, 0, 18);
		buf[0] = 0x70;
		buf[2] = key & 0x0f;
		if (ex && ex->info_valid) {
			/* The fixed format holds 32 bits; larger values are
			 * reported without VALID, as SPC-4 permits. */
			if (ex->info <= UINT32_MAX)
				buf[0] |= 0x80;
			put_be32(buf + 3, (uint32_t)ex->info);
		}
		buf[7] = 10;
		buf[12] = (uint8_t)(asc >> 8);
		buf[13] = (uint8_t)asc;
		if (has_sks)
			memcpy(buf + 15, sks, 3);
		return 18;
	}
	uint32_t len = 8;
	memset(buf, 0, 8);
	buf[0] = 0x72;
	buf[1] = key & 0x0f;
	buf[2] = (uint8_t)(asc >> 8);
	buf[3] = (uint8_t)asc;
	if (ex && ex->info_valid) {
		uint8_t *d = buf + len;
		memset(d, 0, 12);
		d[0] = 0x00;
		d[1] = 0x0a;
		d[2] = 0x80;
		put_be64(d + 4, ex->info);
		len += 12;
	}
	if (has_sks) {
		uint8_t *d = buf + len;
		memset(d, 0, 8);
		d[0] = 0x02;
		d[1] = 0x06;
		memcpy(d + 4, sks, 3);
		len += 8;
	}
	buf[7] = (uint8_t)(len - 8);
	return len;
}

/*
 * Complete cmd with CHECK CONDITION and the given sense; any Data-In
 * already attached is dropped (a failed command returns none).
 */
void scsi_sense_ex(struct scsi_lu *lu, struct scsi_cmd *cmd, uint8_t key,
		   uint16_t asc, const struct sense_extra *ex)
{
	bool desc = false;

	if (lu) {
		pthread_mutex_lock(&lu->mode_lock);
		desc = lu->d_sense;
		pthread_mutex_unlock(&lu->mode_lock);
	}
	cmd->status = SAM_STAT_CHECK_CONDITION;
	cmd->sense_len = scsi_sense_build(cmd->sense, desc, key, asc, ex);
	free(cmd->data_in);
	cmd->data_in = NULL;
	cmd->data_in_len = 0;
	cmd->data_lu = NULL;
}

/* CHECK CONDITION with key/asc and nothing else. */
void scsi_sense(struct scsi_lu *lu, struct scsi_cmd *cmd, uint8_t key, uint16_t asc)
{
	scsi_sense_ex(lu, cmd, key, asc, NULL);
}

/* INVALID FIELD IN CDB with a field pointer at CDB byte (and bit if >= 0). */
void scsi_bad_cdb(struct scsi_lu *lu, struct scsi_cmd *cmd, unsigned byte, int bit)
{
	struct sense_extra ex = {
		.sks_valid = true, .sks_cdb = true,
		.sks_bpv = bit >= 0, .sks_bit = (uint8_t)(bit >= 0 ? bit : 0),
		.sks_field = (uint16_t)byte,
	};
	scsi_sense_ex(lu, cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB, &ex);
}

/* INVALID FIELD IN PARAMETER LIST with a field pointer into the data. */
void scsi_bad_param(struct scsi_lu *lu, struct scsi_cmd *cmd, unsigned byte, int bit)
{
	struct sense_extra ex = {
		.sks_valid = true, .sks_cdb = false,
		.sks_bpv = bit >= 0, .sks_bit = (uint8_t)(bit >= 0 ? bit : 0),
		.sks_field = (uint16_t)byte,
	};
	scsi_sense_ex(lu, cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM, &ex);
}
