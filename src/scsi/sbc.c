/*
 * sbc.c - block commands that move data (SBC-3): READ, WRITE, WRITE
 * ATOMIC, VERIFY, WRITE AND VERIFY, ORWRITE, COMPARE AND WRITE, plus
 * SYNCHRONIZE CACHE, PRE-FETCH and READ CAPACITY.
 *
 * Every command is checked in this order: protection fields, transfer
 * length limit, LBA range, write protection, then Data-Out size.
 * Residuals: xfer_len is always what the CDB asks to move; a write
 * stores only the whole blocks the initiator actually sent (EDTL may be
 * smaller than the CDB's length), which is what libiscsi's
 * iSCSIResiduals tests expect.
 *
 * Ordinary reads and writes hold lu->io_lock shared; COMPARE AND WRITE,
 * ORWRITE and WRITE ATOMIC hold it exclusively.
 */
#include <errno.h>
#include <stdio.h>

#include "scsi/scsi_int.h"
#include "util/log.h"
#include "util/events.h"

#define CHUNK (1u << 20)

/* A decoded data-moving CDB. */
struct rw {
	uint64_t lba;
	uint32_t nblocks;
	uint8_t prot;            /* RD/WR/VR/ORPROTECT */
	bool fua;
	uint8_t bytchk;
	unsigned len_byte;       /* CDB offset of the length field (sense pointer) */
};

/* Decode LBA, length and flags of the read/write/verify family. */
static void rw_decode(const uint8_t *cdb, struct rw *a)
{
	memset(a, 0, sizeof(*a));
	switch (cdb[0]) {
	case 0x08: case 0x0a:
		a->lba = get_be24(cdb + 1) & 0x1fffff;
		a->nblocks = cdb[4] ? cdb[4] : 256;
		a->len_byte = 4;
		return;
	case 0x28: case 0x2a: case 0x2e: case 0x2f: case 0x34: case 0x35: case 0x41:
		a->lba = get_be32(cdb + 2);
		a->nblocks = get_be16(cdb + 7);
		a->len_byte = 7;
		break;
	case 0xa8: case 0xaa: case 0xae: case 0xaf:
		a->lba = get_be32(cdb + 2);
		a->nblocks = get_be32(cdb + 6);
		a->len_byte = 6;
		break;
	case 0x9c:
		a->lba = get_be64(cdb + 2);
		a->nblocks = get_be16(cdb + 12);
		a->len_byte = 12;
		break;
	case 0x89:
		a->lba = get_be64(cdb + 2);
		a->nblocks = cdb[13];
		a->len_byte = 13;
		break;
	default:        /* the 16-byte ones */
		a->lba = get_be64(cdb + 2);
		a->nblocks = get_be32(cdb + 10);
		a->len_byte = 10;
		break;
	}
	a->prot = cdb[1] >> 5;
	a->fua = cdb[1] & 0x08;
	a->bytchk = (cdb[1] >> 1) & 0x03;
}

/* Is [lba, lba+n) outside the medium?  lba == capacity with n == 0 is in. */
static bool out_of_range(const struct scsi_lu *lu, uint64_t lba, uint64_t n)
{
	return lba > lu->nblocks || n > lu->nblocks - lba;
}

/* See scsi_int.h. */
bool sbc_write_protected(struct scsi_lu *lu)
{
	bool swp;

	pthread_mutex_lock(&lu->mode_lock);
	swp = lu->swp;
	pthread_mutex_unlock(&lu->mode_lock);
	return lu->read_only || swp;
}

/* Should this write reach stable storage before we answer? */
static bool write_through(struct scsi_lu *lu, bool fua)
{
	bool wce;

	pthread_mutex_lock(&lu->mode_lock);
	wce = lu->wce;
	pthread_mutex_unlock(&lu->mode_lock);
	return fua || !wce;
}

/* The LBA field of the block commands that have one; false for others. */
static bool cdb_lba(const uint8_t *cdb, uint64_t *lba)
{
	switch (cdb[0]) {
	case 0x08: case 0x0a:
		*lba = get_be24(cdb + 1) & 0x1fffff;
		return true;
	case 0x28: case 0x2a: case 0x2e: case 0x2f: case 0x35: case 0x41:
	case 0xa8: case 0xaa: case 0xae: case 0xaf:
		*lba = get_be32(cdb + 2);
		return true;
	case 0x88: case 0x89: case 0x8a: case 0x8e: case 0x8f: case 0x91: case 0x93: case 0x9c:
		*lba = get_be64(cdb + 2);
		return true;
	default:
		return false;
	}
}

/*
 * Log a backend error a command ran into, and what the initiator was
 * answered (rate-limited per LU: a client retrying a bad sector must
 * not flood the log).  Lack of space is a warning, the rest errors.
 */
static void io_error_log(struct scsi_lu *lu, const struct scsi_cmd *cmd, int err,
			 const char *answer)
{
	char ini[128] = "?", at[32] = "";
	unsigned dropped = 0;
	uint64_t lba;

	if (__atomic_exchange_n(&lu->err_event, err, __ATOMIC_RELAXED) != err)
		events_add(EV_ERROR, cmd->nexus ? cmd->nexus->initiator_name : NULL, NULL,
			   "%s LUN %llu: %s; answered %s", lu->target_name, (unsigned long long)lu->lun,
			   strerror(-err), answer);
	if (!ratelimit_ok(&lu->err_rl, &dropped))
		return;
	if (cmd->nexus)
		log_safe(cmd->nexus->initiator_name, ini, sizeof(ini));
	if (cdb_lba(cmd->cdb, &lba))
		snprintf(at, sizeof(at), " at LBA %llu", (unsigned long long)lba);
	log_msg(err == -ENOSPC || err == -EDQUOT ? LOG_WARN : LOG_ERR,
		"scsi: %s LUN %llu (%s), initiator %s: command 0x%02x%s failed: %s; answered %s%s",
		lu->target_name, (unsigned long long)lu->lun, lu->be->name, ini, cmd->cdb[0], at,
		strerror(-err), answer,
		dropped ? " (more errors of this LUN were not logged)" : "");
}

/*
 * See scsi_int.h.  SBC-3's logical block provisioning: a thin-provisioned
 * LU that cannot allocate answers DATA PROTECT, SPACE ALLOCATION FAILED
 * WRITE PROTECT (27h/07h); a medium that fails a write or a read, MEDIUM
 * ERROR with WRITE ERROR (0Ch/00h) or UNRECOVERED READ ERROR (11h/00h).
 * Every case but write protection is logged.
 */
void sbc_io_error(struct scsi_lu *lu, struct scsi_cmd *cmd, int err, bool write)
{
	if (err == -ENOSPC || err == -EDQUOT) {
		io_error_log(lu, cmd, err, "DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT");
		scsi_sense(lu, cmd, SK_DATA_PROTECT, ASC_SPACE_ALLOC_FAILED_WP);
	} else if (err == -EROFS) {
		scsi_sense(lu, cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
	} else if (write) {
		io_error_log(lu, cmd, err, "MEDIUM ERROR, WRITE ERROR");
		scsi_sense(lu, cmd, SK_MEDIUM_ERROR, ASC_WRITE_ERROR);
	} else {
		io_error_log(lu, cmd, err, "MEDIUM ERROR, UNRECOVERED READ ERROR");
		scsi_sense(lu, cmd, SK_MEDIUM_ERROR, ASC_UNRECOVERED_READ);
	}
}

/* MISCOMPARE DURING VERIFY OPERATION, INFORMATION = byte offset. */
static void miscompare(struct scsi_lu *lu, struct scsi_cmd *cmd, uint64_t off)
{
	struct sense_extra ex = { .info_valid = true, .info = off };

	scsi_sense_ex(lu, cmd, SK_MISCOMPARE, ASC_MISCOMPARE_VERIFY, &ex);
}

/* Offset of the first differing byte of a and b, or n if equal. */
static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	if (memcmp(a, b, n) == 0)
		return n;
	size_t i = 0;
	while (a[i] == b[i])
		i++;
	return i;
}

/*
 * Common checks of the read/write family.  Returns true after
 * completing cmd with an error.  `limit` applies the maximum transfer
 * length; `write` the write-protection check.
 */
static bool rw_check(struct scsi_lu *lu, struct scsi_cmd *cmd, const struct rw *a,
		     bool limit, bool write)
{
	if (a->prot) {
		scsi_bad_cdb(lu, cmd, 1, 7);
		return true;
	}
	if (limit && a->nblocks > (SBC_MAX_XFER_BYTES >> lu->block_shift)) {
		scsi_bad_cdb(lu, cmd, a->len_byte, -1);
		return true;
	}
	if (out_of_range(lu, a->lba, a->nblocks)) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return true;
	}
	if (write && sbc_write_protected(lu)) {
		scsi_sense(lu, cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return true;
	}
	return false;
}

/* READ(6/10/12/16): returns at most EDTL bytes of the range. */
void sbc_read(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	struct rw a;

	rw_decode(cmd->cdb, &a);
	if (rw_check(lu, cmd, &a, true, false))
		return;
	uint32_t bytes = a.nblocks << lu->block_shift;
	uint32_t n = bytes < cmd->edtl ? bytes : cmd->edtl;
	cmd->xfer_len = bytes;
	cmd->status = SAM_STAT_GOOD;
	if (n == 0)
		return;
	if (cmd->defer_min && n >= cmd->defer_min) {
		cmd->data_lu = lu;
		cmd->data_off = a.lba << lu->block_shift;
		cmd->data_in_len = n;
		return;
	}
	uint8_t *buf = malloc(n);
	if (!buf) {
		scsi_sense(lu, cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	pthread_rwlock_rdlock(&lu->io_lock);
	int rc = lu->be->ops->read(lu->be, buf, a.lba << lu->block_shift, n);
	pthread_rwlock_unlock(&lu->io_lock);
	if (rc < 0) {
		free(buf);
		sbc_io_error(lu, cmd, rc, false);
		return;
	}
	cmd->data_in = buf;
	cmd->data_in_len = n;
}

/* See scsi.h.  A deferred read holds io_lock shared from begin to end,
 * as sbc_read does for a read done at once. */
struct scsi_lu *scsi_cmd_data_begin(struct scsi_cmd *cmd)
{
	pthread_rwlock_rdlock(&cmd->data_lu->io_lock);
	return cmd->data_lu;
}

void scsi_cmd_data_end(struct scsi_lu *lu)
{
	pthread_rwlock_unlock(&lu->io_lock);
}

int scsi_cmd_data_splice(struct scsi_cmd *cmd, int pipe_wr, uint32_t pos, uint32_t len)
{
	struct backend *be = cmd->data_lu->be;

	if (!be->ops->splice_read)
		return -EOPNOTSUPP;
	return be->ops->splice_read(be, pipe_wr, cmd->data_off + pos, len);
}

uint8_t *scsi_cmd_data_read(struct scsi_cmd *cmd, uint32_t pos, uint32_t len)
{
	struct scsi_lu *lu = cmd->data_lu;
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf) {
		scsi_sense(lu, cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return NULL;
	}
	int rc = lu->be->ops->read(lu->be, buf, cmd->data_off + pos, len);
	if (rc < 0) {
		free(buf);
		sbc_io_error(lu, cmd, rc, false);
		return NULL;
	}
	return buf;
}

/* Write the whole blocks of Data-Out that arrived (at most the CDB's
 * range).  excl takes io_lock exclusively.  Returns 0 or sets sense. */
static int write_blocks(struct scsi_lu *lu, struct scsi_cmd *cmd, const struct rw *a, bool excl)
{
	uint32_t bytes = a->nblocks << lu->block_shift;
	uint32_t have = cmd->data_out ? cmd->data_out_len : 0;

	if (have > bytes)
		have = bytes;
	have &= ~(lu->block_size - 1);
	if (have == 0)
		return 0;
	if (excl)
		pthread_rwlock_wrlock(&lu->io_lock);
	else
		pthread_rwlock_rdlock(&lu->io_lock);
	int rc = lu->be->ops->write(lu->be, cmd->data_out, a->lba << lu->block_shift, have,
				    write_through(lu, a->fua));
	pthread_rwlock_unlock(&lu->io_lock);
	if (rc < 0) {
		sbc_io_error(lu, cmd, rc, true);
		return rc;
	}
	return 0;
}

/* WRITE(6/10/12/16) and WRITE ATOMIC(16). */
void sbc_write(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	struct rw a;
	bool atomic = cmd->cdb[0] == 0x9c;

	rw_decode(cmd->cdb, &a);
	if (rw_check(lu, cmd, &a, true, true))
		return;
	if (atomic) {
		if (get_be16(cmd->cdb + 10)) {      /* atomic boundary: none supported */
			scsi_bad_cdb(lu, cmd, 10, -1);
			return;
		}
		if (a.nblocks > SBC_MAX_ATOMIC_BLOCKS) {
			scsi_bad_cdb(lu, cmd, 12, -1);
			return;
		}
	}
	cmd->xfer_len = a.nblocks << lu->block_shift;
	if (write_blocks(lu, cmd, &a, atomic) == 0)
		cmd->status = SAM_STAT_GOOD;
}

/*
 * Compare `len` bytes of medium at byte offset `off` with data (or, if
 * one_block, with data repeated every block).  Returns 0 on match,
 * 1 after a MISCOMPARE sense (info = offset into the virtual Data-Out),
 * or -errno after a medium error sense.
 */
static int compare_medium(struct scsi_lu *lu, struct scsi_cmd *cmd, uint64_t off,
			  const uint8_t *data, uint64_t len, bool one_block)
{
	uint8_t *buf = malloc(CHUNK);
	uint64_t done = 0;
	int ret = 0;

	if (!buf) {
		scsi_sense(lu, cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return -ENOMEM;
	}
	while (done < len) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		int rc = lu->be->ops->read(lu->be, buf, off + done, n);
		if (rc < 0) {
			sbc_io_error(lu, cmd, rc, false);
			ret = rc;
			break;
		}
		if (data) {
			for (size_t b = 0; b < n; b += lu->block_size) {
				const uint8_t *want = one_block ? data : data + done + b;
				size_t d = first_diff(buf + b, want, lu->block_size);
				if (d < lu->block_size) {
					miscompare(lu, cmd, done + b + d);
					ret = 1;
					goto out;
				}
			}
		}
		done += n;
	}
out:
	free(buf);
	return ret;
}

/* VERIFY(10/12/16): BYTCHK 0 reads the medium, 1 compares the range with
 * Data-Out, 3 compares every block with the single Data-Out block. */
void sbc_verify(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	struct rw a;

	rw_decode(cmd->cdb, &a);
	if (a.bytchk == 2) {
		scsi_bad_cdb(lu, cmd, 1, 2);
		return;
	}
	if (rw_check(lu, cmd, &a, a.bytchk != 0, false))
		return;
	uint64_t bytes = (uint64_t)a.nblocks << lu->block_shift;
	uint32_t want = a.bytchk == 0 ? 0 : a.bytchk == 1 ? (uint32_t)bytes : (a.nblocks ? lu->block_size : 0);
	cmd->xfer_len = want;
	const uint8_t *data = NULL;
	if (a.bytchk) {
		if (!cmd->data_out || cmd->data_out_len < want) {
			if (want) {
				scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
				return;
			}
		}
		data = cmd->data_out;
	}
	pthread_rwlock_rdlock(&lu->io_lock);
	int rc = compare_medium(lu, cmd, a.lba << lu->block_shift, data, bytes, a.bytchk == 3);
	pthread_rwlock_unlock(&lu->io_lock);
	if (rc == 0)
		cmd->status = SAM_STAT_GOOD;
}

/* WRITE AND VERIFY(10/12/16): write, then read back (and compare when
 * BYTCHK=1) so a backend that lost the data is caught. */
void sbc_write_verify(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	struct rw a;

	rw_decode(cmd->cdb, &a);
	if (a.bytchk > 1) {
		scsi_bad_cdb(lu, cmd, 1, 2);
		return;
	}
	if (rw_check(lu, cmd, &a, true, true))
		return;
	cmd->xfer_len = a.nblocks << lu->block_shift;
	a.fua = true;           /* verification is of the medium */
	if (write_blocks(lu, cmd, &a, false) < 0)
		return;
	uint32_t have = cmd->data_out ? cmd->data_out_len : 0;
	if (have > cmd->xfer_len)
		have = cmd->xfer_len;
	have &= ~(lu->block_size - 1);
	pthread_rwlock_rdlock(&lu->io_lock);
	int rc = compare_medium(lu, cmd, a.lba << lu->block_shift,
				a.bytchk ? cmd->data_out : NULL, have, false);
	pthread_rwlock_unlock(&lu->io_lock);
	if (rc == 0)
		cmd->status = SAM_STAT_GOOD;
}

/* ORWRITE(16): medium |= Data-Out, atomically. */
void sbc_orwrite(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	struct rw a;

	rw_decode(cmd->cdb, &a);
	if (rw_check(lu, cmd, &a, true, true))
		return;
	uint32_t bytes = a.nblocks << lu->block_shift;
	cmd->xfer_len = bytes;
	uint32_t have = cmd->data_out ? cmd->data_out_len : 0;
	if (have > bytes)
		have = bytes;
	have &= ~(lu->block_size - 1);
	cmd->status = SAM_STAT_GOOD;
	if (have == 0)
		return;
	uint8_t *buf = malloc(have);
	if (!buf) {
		scsi_sense(lu, cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	uint64_t off = a.lba << lu->block_shift;
	pthread_rwlock_wrlock(&lu->io_lock);
	int rc = lu->be->ops->read(lu->be, buf, off, have);
	if (rc < 0) {
		sbc_io_error(lu, cmd, rc, false);
	} else {
		for (uint32_t i = 0; i < have; i++)
			buf[i] |= cmd->data_out[i];
		rc = lu->be->ops->write(lu->be, buf, off, have, write_through(lu, a.fua));
		if (rc < 0)
			sbc_io_error(lu, cmd, rc, true);
	}
	pthread_rwlock_unlock(&lu->io_lock);
	free(buf);
}

/* COMPARE AND WRITE: Data-Out holds n blocks to compare then n blocks to
 * write; the whole operation excludes every other I/O on the LU. */
void sbc_compare_and_write(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	struct rw a;

	rw_decode(cmd->cdb, &a);
	if (a.prot) {
		scsi_bad_cdb(lu, cmd, 1, 7);
		return;
	}
	if (a.nblocks > SBC_MAX_CAW_BLOCKS) {
		scsi_bad_cdb(lu, cmd, 13, -1);
		return;
	}
	if (rw_check(lu, cmd, &a, true, true))
		return;
	uint32_t bytes = a.nblocks << lu->block_shift;
	cmd->xfer_len = 2 * bytes;
	/* EDTL and the Data-Out must be exactly the compare and the write
	 * halves; a mismatch (including 256 blocks wrapped to 0) is a bad
	 * length.  EDTL is checked too because the transport solicits only
	 * what the CDB asks for. */
	if (cmd->edtl != 2 * bytes) {
		scsi_bad_cdb(lu, cmd, 13, -1);
		return;
	}
	if (a.nblocks == 0) {
		cmd->status = SAM_STAT_GOOD;
		return;
	}
	if (!cmd->data_out || cmd->data_out_len != 2 * bytes) {
		scsi_bad_cdb(lu, cmd, 13, -1);
		return;
	}
	uint8_t *buf = malloc(bytes);
	if (!buf) {
		scsi_sense(lu, cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	uint64_t off = a.lba << lu->block_shift;
	pthread_rwlock_wrlock(&lu->io_lock);
	int rc = lu->be->ops->read(lu->be, buf, off, bytes);
	if (rc < 0) {
		sbc_io_error(lu, cmd, rc, false);
	} else {
		size_t d = first_diff(buf, cmd->data_out, bytes);
		if (d < bytes) {
			miscompare(lu, cmd, d);
		} else {
			rc = lu->be->ops->write(lu->be, cmd->data_out + bytes, off, bytes,
						write_through(lu, a.fua));
			if (rc < 0)
				sbc_io_error(lu, cmd, rc, true);
			else
				cmd->status = SAM_STAT_GOOD;
		}
	}
	pthread_rwlock_unlock(&lu->io_lock);
	free(buf);
}

/* SYNCHRONIZE CACHE(10/16): the range is checked, the whole file flushed. */
void sbc_sync_cache(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	struct rw a;

	rw_decode(cmd->cdb, &a);
	a.prot = 0;
	if (rw_check(lu, cmd, &a, false, false))
		return;
	int rc = lu->be->ops->flush ? lu->be->ops->flush(lu->be) : 0;
	if (rc < 0) {
		sbc_io_error(lu, cmd, rc, true);
		return;
	}
	cmd->status = SAM_STAT_GOOD;
}

/* PRE-FETCH(10/16): nothing to cache in userspace beyond the page cache;
 * the range is checked and GOOD returned. */
void sbc_prefetch(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	struct rw a;

	rw_decode(cmd->cdb, &a);
	a.prot = 0;
	if (rw_check(lu, cmd, &a, false, false))
		return;
	cmd->status = SAM_STAT_GOOD;
}

/* READ CAPACITY(10). */
void sbc_read_capacity10(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	if (!(cmd->cdb[8] & 1) && get_be32(cmd->cdb + 2)) {
		scsi_bad_cdb(lu, cmd, 2, -1);
		return;
	}
	uint8_t *buf = scsi_alloc(lu, cmd, 8);
	if (!buf)
		return;
	uint64_t last = lu->nblocks - 1;
	put_be32(buf, last > 0xffffffffull ? 0xffffffffu : (uint32_t)last);
	put_be32(buf + 4, lu->block_size);
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, 8, 8);
}

/* READ CAPACITY(16): LBPME/LBPRZ when the backend can unmap. */
void sbc_read_capacity16(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	uint32_t alloc = get_be32(cmd->cdb + 10);

	if (!(cmd->cdb[14] & 1) && get_be64(cmd->cdb + 2)) {
		scsi_bad_cdb(lu, cmd, 2, -1);
		return;
	}
	uint8_t *buf = scsi_alloc(lu, cmd, 32);
	if (!buf)
		return;
	put_be64(buf, lu->nblocks - 1);
	put_be32(buf + 8, lu->block_size);
	/* One logical block per physical block: see docs/conformance.md. */
	buf[13] = 0;
	if (lu->be->ops->unmap)
		buf[14] = 0x80 | 0x40;   /* LBPME, LBPRZ */
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, 32, alloc);
}
