/*
 * xcopy.c - third-party copy inside the target (SPC-4 6.4, 6.18):
 * EXTENDED COPY (LID1) with identification-descriptor CSCDs (0xe4) and
 * block-to-block segments (0x02), and RECEIVE COPY RESULTS (COPY STATUS,
 * OPERATING PARAMETERS).  A copy runs synchronously inside the command;
 * CSCDs are matched by NAA designator against the LUs of the same
 * target, so a copy may go from one of our LUs to another.
 */
#include <errno.h>

#include "scsi/scsi_int.h"

#define XC_MAX_CSCD      8
#define XC_MAX_SEGS      32
#define XC_MAX_LIST_LEN  2048
#define XC_MAX_SEG_BLOCKS 65535
#define XC_CHUNK         (1u << 20)

/* COPY ABORTED sense. */
static void copy_aborted(struct scsi_lu *lu, struct scsi_cmd *cmd, uint16_t asc)
{
	scsi_sense(lu, cmd, 0x0a, asc);
}

/* The LU of our target whose NAA designator equals the designation
 * descriptor at d (4-byte header + designator), with a reference taken
 * (lu_put it: the copy may run while the LU is being removed), or NULL. */
static struct scsi_lu *cscd_lookup(struct scsi_lu *lu, const uint8_t *d)
{
	struct scsi_target *t = lu->target;
	uint8_t naa[16];

	if ((d[1] & 0x0f) != 3 || d[3] != 16)
		return NULL;
	for (unsigned i = 0; i < SCSI_MAX_LUNS; i++) {
		struct scsi_lu *c = target_lu_get(t, i);
		if (!c)
			continue;
		put_be64(naa, (6ull << 60) | (c->naa_id & 0x0fffffffffffffffull));
		put_be64(naa + 8, c->lun);
		if (memcmp(naa, d + 4, 16) == 0)
			return c;
		lu_put(c);
	}
	return NULL;
}

/* Copy n blocks from src@slba to dst@dlba (same block size checked by
 * the caller).  Returns 0 or -errno. */
static int copy_blocks(struct scsi_lu *src, uint64_t slba, struct scsi_lu *dst,
		       uint64_t dlba, uint64_t n)
{
	uint8_t *buf = malloc(XC_CHUNK);
	uint32_t per = XC_CHUNK >> src->block_shift;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (n > 0 && rc == 0) {
		uint64_t k = n < per ? n : per;
		size_t bytes = (size_t)(k << src->block_shift);
		pthread_rwlock_rdlock(&src->io_lock);
		rc = src->be->ops->read(src->be, buf, slba << src->block_shift, bytes);
		pthread_rwlock_unlock(&src->io_lock);
		if (rc == 0) {
			pthread_rwlock_rdlock(&dst->io_lock);
			rc = dst->be->ops->write(dst->be, buf, dlba << dst->block_shift, bytes, false);
			pthread_rwlock_unlock(&dst->io_lock);
		}
		slba += k;
		dlba += k;
		n -= k;
	}
	free(buf);
	return rc;
}

/*
 * Copy status for RECEIVE COPY RESULTS is kept per I_T nexus and list
 * identifier for copies that completed; a new EXTENDED COPY with the same
 * list identifier first discards what was held, so a failed copy leaves
 * no status (its error went back in the sense data).  LIST ID USAGE 11b
 * means the identifier is not to be remembered at all.
 */
static void record(struct scsi_lu *lu, const struct scsi_cmd *cmd, uint8_t list_id,
		   uint8_t usage, bool done, uint16_t segs, uint64_t bytes)
{
	uint64_t nexus = cmd->nexus ? cmd->nexus->id : 0;

	pthread_mutex_lock(&lu->pr_lock);
	if (lu->xc.valid && lu->xc.nexus == nexus && lu->xc.list_id == list_id)
		lu->xc.valid = false;
	if (done && usage != 3) {
		lu->xc.valid = true;
		lu->xc.nexus = nexus;
		lu->xc.list_id = list_id;
		lu->xc.status = 0x01;   /* completed, no errors */
		lu->xc.segs = segs;
		lu->xc.bytes = bytes;
	}
	pthread_mutex_unlock(&lu->pr_lock);
}

/*
 * Run the block-to-block segments at seg (len bytes, checked by the
 * caller to be whole 0x1c-byte descriptors) between the ncscd CSCDs'
 * LUs.  0 with *done segments and *bytes copied, or -1 after setting
 * cmd's sense.
 */
static int run_segments(struct scsi_lu *lu, struct scsi_cmd *cmd, const uint8_t *seg,
			uint32_t len, struct scsi_lu *const *cscd, unsigned ncscd,
			uint16_t *done, uint64_t *bytes)
{
	for (uint32_t o = 0; o < len; o += 0x1c, (*done)++) {
		const uint8_t *s = seg + o;
		uint16_t si = get_be16(s + 4), di = get_be16(s + 6);
		uint32_t n = get_be16(s + 10);
		uint64_t slba = get_be64(s + 12), dlba = get_be64(s + 20);
		if (si >= ncscd || di >= ncscd) {
			copy_aborted(lu, cmd, 0x0d02);
			return -1;
		}
		struct scsi_lu *src = cscd[si], *dst = cscd[di];
		if (slba > src->nblocks || n > src->nblocks - slba ||
		    dlba > dst->nblocks || n > dst->nblocks - dlba ||
		    src->block_size != dst->block_size) {
			copy_aborted(lu, cmd, ASC_NO_ADDITIONAL);
			return -1;
		}
		if (sbc_write_protected(dst)) {
			scsi_sense(lu, cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
			return -1;
		}
		int rc = copy_blocks(src, slba, dst, dlba, n);
		if (rc < 0) {
			sbc_io_error(lu, cmd, rc, true);
			return -1;
		}
		*bytes += (uint64_t)n << src->block_shift;
	}
	return 0;
}

/* EXTENDED COPY (LID1), opcode 0x83 service action 0x00. */
void spc_extended_copy(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	uint32_t plen = get_be32(cmd->cdb + 10);
	const uint8_t *d = cmd->data_out;
	struct scsi_lu *cscd[XC_MAX_CSCD];

	cmd->xfer_len = plen;
	if (plen == 0) {
		cmd->status = SAM_STAT_GOOD;
		return;
	}
	if (plen < 16 || !d || cmd->data_out_len < plen) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	uint8_t list_id = d[0];
	uint8_t usage = (d[1] >> 3) & 3;
	record(lu, cmd, list_id, usage, false, 0, 0);
	uint32_t tdl = get_be16(d + 2);
	uint32_t sdl = get_be32(d + 8);
	uint32_t inl = get_be32(d + 12);
	if (tdl > XC_MAX_LIST_LEN || sdl > XC_MAX_LIST_LEN || tdl + sdl > XC_MAX_LIST_LEN ||
	    16 + tdl + sdl > plen || inl > plen - 16 - tdl - sdl) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	if (inl) {              /* inline data is only for stream segments */
		scsi_bad_param(lu, cmd, 12, -1);
		return;
	}
	if (tdl % 32) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	unsigned ncscd = tdl / 32;
	if (ncscd > XC_MAX_CSCD) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, 0x2606);   /* TOO MANY TARGET DESCRIPTORS */
		return;
	}
	/* Walk the segment list once to count and type-check it. */
	unsigned nseg = 0;
	for (uint32_t o = 16 + tdl; o < 16 + tdl + sdl; nseg++) {
		const uint8_t *s = d + o;
		if (o + 4 > 16 + tdl + sdl) {
			scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			return;
		}
		if (s[0] != 0x02) {
			scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, 0x2609);   /* unsupported segment type */
			return;
		}
		uint32_t len = 4 + get_be16(s + 2);
		if (len != 0x1c || o + len > 16 + tdl + sdl) {
			scsi_bad_param(lu, cmd, o + 2, -1);
			return;
		}
		o += len;
	}
	if (nseg > XC_MAX_SEGS) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, 0x2608);           /* TOO MANY SEGMENT DESCRIPTORS */
		return;
	}
	/* From here on every exit goes through out: the CSCDs' LUs are held. */
	unsigned held = 0;
	uint64_t bytes = 0;
	uint16_t done = 0;
	for (unsigned i = 0; i < ncscd; i++) {
		const uint8_t *t = d + 16 + 32 * i;
		if (t[0] != 0xe4) {
			scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, 0x2607);   /* unsupported CSCD type */
			goto out;
		}
		/* SPC-4: LU ID TYPE is ignored for an identification descriptor.
		 * Peripheral type 0 (block) only. */
		if ((t[1] & 0x1f) != 0) {
			copy_aborted(lu, cmd, 0x0d02);
			goto out;
		}
		cscd[i] = cscd_lookup(lu, t + 4);
		if (!cscd[i]) {
			copy_aborted(lu, cmd, 0x0d02);   /* COPY TARGET DEVICE NOT REACHABLE */
			goto out;
		}
		held++;
		if (get_be24(t + 29) != cscd[i]->block_size) {
			copy_aborted(lu, cmd, 0x0d02);
			goto out;
		}
	}
	if (run_segments(lu, cmd, d + 16 + tdl, sdl, cscd, ncscd, &done, &bytes) == 0) {
		record(lu, cmd, list_id, usage, true, done, bytes);
		cmd->status = SAM_STAT_GOOD;
	}
out:
	for (unsigned i = 0; i < held; i++)
		lu_put(cscd[i]);
}

/* RECEIVE COPY RESULTS (LID1), opcode 0x84: COPY STATUS (0x00) and
 * OPERATING PARAMETERS (0x03). */
void spc_receive_copy_results(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	uint8_t sa = cmd->cdb[1] & 0x1f;
	uint8_t list_id = cmd->cdb[2];
	uint32_t alloc = get_be32(cmd->cdb + 10);
	uint8_t *buf = scsi_alloc(lu, cmd, 64);
	uint32_t len;

	if (!buf)
		return;
	if (sa == 0x00) {
		pthread_mutex_lock(&lu->pr_lock);
		bool ok = lu->xc.valid && lu->xc.list_id == list_id &&
			  lu->xc.nexus == (cmd->nexus ? cmd->nexus->id : 0);
		if (ok) {
			put_be32(buf, 8);
			buf[4] = lu->xc.status;
			put_be16(buf + 5, lu->xc.segs);
			buf[7] = 0;     /* transfer count in bytes */
			put_be32(buf + 8, lu->xc.bytes > 0xffffffffull ? 0xffffffffu
								   : (uint32_t)lu->xc.bytes);
		}
		pthread_mutex_unlock(&lu->pr_lock);
		if (!ok) {
			free(buf);
			scsi_bad_cdb(lu, cmd, 2, -1);
			return;
		}
		len = 12;
	} else {
		put_be16(buf + 8, XC_MAX_CSCD);
		put_be16(buf + 10, XC_MAX_SEGS);
		put_be32(buf + 12, XC_MAX_LIST_LEN);
		put_be32(buf + 16, XC_MAX_SEG_BLOCKS * 512u);
		put_be32(buf + 20, 0);          /* no inline data */
		put_be32(buf + 24, 0);          /* no held data */
		put_be32(buf + 28, 0);
		put_be16(buf + 34, 1);          /* one copy at a time per command */
		buf[36] = 1;
		buf[37] = 9;                    /* data segment granularity 512 */
		buf[43] = 2;
		buf[44] = 0x02;                 /* block to block segments */
		buf[45] = 0xe4;                 /* identification CSCD */
		len = 46;
		put_be32(buf, len - 4);
	}
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, len, alloc);
}
