/*
 * xfer.c - how many Data-Out bytes a CDB will consume, so the transport
 * solicits exactly those (RFC 7143 11.4.5: an initiator may announce a
 * larger Expected Data Transfer Length; the target asks only for what the
 * command needs and reports the rest as a residual underflow).
 */
#include "scsi/scsi_int.h"

/* Parameter-list / block-count decoding of the write-direction CDBs. */
static uint64_t cdb_out_bytes(const uint8_t *cdb, uint32_t bs, bool *known)
{
	*known = true;
	switch (cdb[0]) {
	case 0x0a: /* WRITE(6): 0 blocks means 256 */
		return (uint64_t)(cdb[4] ? cdb[4] : 256) * bs;
	case 0x2a: case 0x2e: /* WRITE(10), WRITE AND VERIFY(10) */
		return (uint64_t)get_be16(cdb + 7) * bs;
	case 0xaa: case 0xae: /* WRITE(12), WRITE AND VERIFY(12) */
		return (uint64_t)get_be32(cdb + 6) * bs;
	case 0x8a: case 0x8b: case 0x8e: case 0x9c: /* WRITE(16), ORWRITE(16), WRITE AND VERIFY(16), WRITE ATOMIC(16) */
		return (uint64_t)(cdb[0] == 0x9c ? get_be16(cdb + 12) : get_be32(cdb + 10)) * bs;
	case 0x89: /* COMPARE AND WRITE: verify + write data */
		return (uint64_t)cdb[13] * 2 * bs;
	case 0x41: /* WRITE SAME(10): one block, none with NDOB */
		return (cdb[1] & 0x01) ? 0 : bs;
	case 0x93: /* WRITE SAME(16) */
		return (cdb[1] & 0x01) ? 0 : bs;
	case 0x42: /* UNMAP: parameter list length */
		return get_be16(cdb + 7);
	case 0x15: /* MODE SELECT(6) */
		return cdb[4];
	case 0x55: /* MODE SELECT(10) */
		return get_be16(cdb + 7);
	case 0x5f: /* PERSISTENT RESERVE OUT */
		return get_be32(cdb + 5);
	default:
		*known = false;
		return 0;
	}
}

uint32_t scsi_target_data_out_len(struct scsi_target *t, uint64_t lun, const uint8_t *cdb,
				  unsigned cdb_len, uint32_t edtl)
{
	uint32_t bs = 512;
	uint64_t want;
	bool known;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < SCSI_MAX_LUNS; i++)
		if (lu_live(t->lus[i]) && t->lus[i]->lun == lun)
			bs = t->lus[i]->block_size;
	pthread_mutex_unlock(&t->lock);
	(void)cdb_len;   /* every CDB above fits in the first 16 bytes */
	want = cdb_out_bytes(cdb, bs, &known);
	/* Unknown commands, and malformed ones the SCSI layer will refuse,
	 * keep the initiator's figure; the command itself then decides. */
	if (!known || want > edtl)
		return edtl;
	return (uint32_t)want;
}
