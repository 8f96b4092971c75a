/*
 * sbc_lbp.c - logical block provisioning (SBC-3 4.7): UNMAP, WRITE SAME
 * (10/16, with UNMAP and NDOB) and GET LBA STATUS.  Unmapped blocks read
 * as zeros (LBPRZ=1); anchored state is not supported (ANC_SUP=0).
 */
#include <errno.h>

#include "scsi/scsi_int.h"

#define WS_CHUNK (1u << 20)

/* Unmap [lba, lba+n) blocks under the shared I/O lock. */
static int do_unmap(struct scsi_lu *lu, uint64_t lba, uint64_t n)
{
	if (n == 0)
		return 0;
	pthread_rwlock_rdlock(&lu->io_lock);
	int rc = lu->be->ops->unmap(lu->be, lba << lu->block_shift, n << lu->block_shift);
	pthread_rwlock_unlock(&lu->io_lock);
	return rc;
}

/* UNMAP (SBC-3 5.28). */
void sbc_unmap(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint32_t plen = get_be16(cdb + 7);

	if (cdb[1] & 0x01) {            /* ANCHOR: ANC_SUP=0 */
		scsi_bad_cdb(lu, cmd, 1, 0);
		return;
	}
	cmd->xfer_len = plen;
	if (!lu->be->ops->unmap) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return;
	}
	if (sbc_write_protected(lu)) {
		scsi_sense(lu, cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return;
	}
	if (plen == 0) {
		cmd->status = SAM_STAT_GOOD;
		return;
	}
	const uint8_t *d = cmd->data_out;
	if (plen < 8 || !d || cmd->data_out_len < plen) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	uint32_t bdl = get_be16(d + 2);
	if (bdl > plen - 8)
		bdl = plen - 8;
	uint32_t n = bdl / 16;
	if (n > SBC_MAX_UNMAP_DESCS) {
		scsi_bad_param(lu, cmd, 2, -1);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *b = d + 8 + 16 * i;
		uint64_t lba = get_be64(b);
		uint32_t cnt = get_be32(b + 8);
		if (lba > lu->nblocks || cnt > lu->nblocks - lba) {
			scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
			return;
		}
		if (cnt > SBC_MAX_UNMAP_BLOCKS) {
			scsi_bad_param(lu, cmd, 8 + 16 * i + 8, -1);
			return;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *b = d + 8 + 16 * i;
		int rc = do_unmap(lu, get_be64(b), get_be32(b + 8));
		if (rc < 0) {
			sbc_io_error(lu, cmd, rc, true);
			return;
		}
	}
	cmd->status = SAM_STAT_GOOD;
}

/* Write `block` (or zeros if NULL) to every block of [lba, lba+n). */
static int fill_blocks(struct scsi_lu *lu, uint64_t lba, uint64_t n, const uint8_t *block)
{
	uint32_t per = WS_CHUNK >> lu->block_shift;
	uint8_t *buf = calloc(1, WS_CHUNK);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	if (block)
		for (uint32_t i = 0; i < per; i++)
			memcpy(buf + ((size_t)i << lu->block_shift), block, lu->block_size);
	pthread_rwlock_rdlock(&lu->io_lock);
	while (n > 0 && rc == 0) {
		uint64_t k = n < per ? n : per;
		rc = lu->be->ops->write(lu->be, buf, lba << lu->block_shift,
					(size_t)(k << lu->block_shift), false);
		lba += k;
		n -= k;
	}
	pthread_rwlock_unlock(&lu->io_lock);
	free(buf);
	return rc;
}

/* WRITE SAME(10) 0x41 and (16) 0x93 (SBC-3 5.42/5.43).  Zero blocks means
 * "to the end of the medium" (WSNZ=0).  With UNMAP set the range is
 * deallocated whatever the data block holds, as libiscsi expects. */
void sbc_write_same(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool sixteen = cdb[0] == 0x93;
	uint64_t lba = sixteen ? get_be64(cdb + 2) : get_be32(cdb + 2);
	uint64_t n = sixteen ? get_be32(cdb + 10) : get_be16(cdb + 7);
	bool unmap = cdb[1] & 0x08;
	bool ndob = sixteen && (cdb[1] & 0x01);

	if (cdb[1] & 0xe0) {
		scsi_bad_cdb(lu, cmd, 1, 7);
		return;
	}
	if (cdb[1] & 0x10) {            /* ANCHOR */
		scsi_bad_cdb(lu, cmd, 1, 4);
		return;
	}
	if (lba > lu->nblocks) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return;
	}
	if (n == 0)
		n = lu->nblocks - lba;
	if (n > lu->nblocks - lba) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return;
	}
	if (n > SBC_MAX_WS_BLOCKS) {
		scsi_bad_cdb(lu, cmd, sixteen ? 10 : 7, -1);
		return;
	}
	if (sbc_write_protected(lu)) {
		scsi_sense(lu, cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return;
	}
	cmd->xfer_len = ndob ? 0 : lu->block_size;
	/* Exactly one block of Data-Out; EDTL is checked as well because the
	 * transport solicits only what the CDB asks for. */
	if (!ndob && (!cmd->data_out || cmd->data_out_len != lu->block_size ||
		      cmd->edtl != lu->block_size)) {
		scsi_bad_cdb(lu, cmd, sixteen ? 10 : 7, -1);
		return;
	}
	int rc;
	if (unmap && lu->be->ops->unmap)
		rc = do_unmap(lu, lba, n);
	else
		rc = fill_blocks(lu, lba, n, ndob ? NULL : cmd->data_out);
	if (rc < 0) {
		sbc_io_error(lu, cmd, rc, true);
		return;
	}
	cmd->status = SAM_STAT_GOOD;
}

/* GET LBA STATUS (SBC-3 5.6): descriptors of mapped/deallocated runs
 * from the requested LBA on, as many as the allocation length holds. */
void sbc_get_lba_status(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint64_t lba = get_be64(cdb + 2);
	uint32_t alloc = get_be32(cdb + 10);
	enum { MAX_DESC = 64 };

	if (lba >= lu->nblocks) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return;
	}
	uint32_t want = alloc > 8 ? (alloc - 8 + 15) / 16 : 1;
	if (want > MAX_DESC)
		want = MAX_DESC;
	if (want == 0)
		want = 1;
	uint8_t *buf = scsi_alloc(lu, cmd, 8 + 16 * MAX_DESC);
	if (!buf)
		return;
	uint32_t len = 8;
	uint64_t cur = lba;
	for (uint32_t i = 0; i < want && cur < lu->nblocks; i++) {
		uint64_t left = lu->nblocks - cur;
		uint64_t run = left << lu->block_shift;
		bool mapped = true;
		if (lu->be->ops->block_status) {
			int rc = lu->be->ops->block_status(lu->be, cur << lu->block_shift,
							   left << lu->block_shift, &run, &mapped);
			if (rc < 0) {
				free(buf);
				sbc_io_error(lu, cmd, rc, false);
				return;
			}
		}
		uint64_t blocks = (run + lu->block_size - 1) >> lu->block_shift;
		if (blocks == 0)
			blocks = 1;
		if (blocks > left)
			blocks = left;
		if (blocks > 0xffffffffull)
			blocks = 0xffffffffull;
		uint8_t *d = buf + len;
		put_be64(d, cur);
		put_be32(d + 8, (uint32_t)blocks);
		d[12] = mapped ? 0x00 : 0x01;
		len += 16;
		cur += blocks;
	}
	put_be32(buf, len - 4);
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, len, alloc);
}
