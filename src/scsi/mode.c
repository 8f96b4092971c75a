/*
 * mode.c - MODE SENSE(6/10) and MODE SELECT(6/10) (SPC-4 6.11-6.14, 7.5)
 * with three pages: caching (0x08, WCE changeable), control (0x0a,
 * D_SENSE and SWP changeable) and informational exceptions (0x1c).
 * Nothing can be saved: PC=saved and SP=1 are refused.
 */
#include "scsi/scsi_int.h"

enum { PC_CURRENT = 0, PC_CHANGEABLE = 1, PC_DEFAULT = 2, PC_SAVED = 3 };

#define MODE_MAX 256

struct mode_vals {
	bool wce, d_sense, swp;
};

/* Build mode page `page` for page control pc and values v into p.
 * Returns its length, 0 if we have no such page. */
static uint32_t mode_page(uint8_t page, int pc, const struct mode_vals *v, uint8_t *p)
{
	bool ch = pc == PC_CHANGEABLE;

	switch (page) {
	case 0x08:
		memset(p, 0, 20);
		p[0] = 0x08;
		p[1] = 0x12;
		if (ch ? true : v->wce)
			p[2] |= 0x04;
		return 20;
	case 0x0a:
		memset(p, 0, 12);
		p[0] = 0x0a;
		p[1] = 0x0a;
		if (ch ? true : v->d_sense)
			p[2] |= 0x04;
		if (!ch)
			p[3] = 0x10;    /* queue algorithm modifier: unrestricted */
		if (ch ? true : v->swp)
			p[4] |= 0x08;
		if (!ch)
			put_be16(p + 8, 0xffff);   /* busy timeout: unlimited */
		return 12;
	case 0x1c:
		memset(p, 0, 12);
		p[0] = 0x1c;
		p[1] = 0x0a;
		return 12;
	}
	return 0;
}

static const uint8_t mode_pages[] = { 0x08, 0x0a, 0x1c };

/* Snapshot the current or default values of lu. */
static void mode_values(struct scsi_lu *lu, int pc, struct mode_vals *v)
{
	if (pc == PC_DEFAULT) {
		v->wce = true;
		v->d_sense = false;
		v->swp = false;
		return;
	}
	pthread_mutex_lock(&lu->mode_lock);
	v->wce = lu->wce;
	v->d_sense = lu->d_sense;
	v->swp = lu->swp;
	pthread_mutex_unlock(&lu->mode_lock);
}

/* MODE SENSE(6) 0x1a and MODE SENSE(10) 0x5a. */
void spc_mode_sense(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool ten = cdb[0] == 0x5a;
	bool dbd = cdb[1] & 0x08;
	bool llbaa = ten && (cdb[1] & 0x10);
	int pc = cdb[2] >> 6;
	uint8_t page = cdb[2] & 0x3f;
	uint8_t sub = cdb[3];
	uint32_t alloc = ten ? get_be16(cdb + 7) : cdb[4];
	uint32_t hdr = ten ? 8 : 4;
	struct mode_vals v;

	if (pc == PC_SAVED) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED);
		return;
	}
	if (sub != 0 && sub != 0xff) {
		scsi_bad_cdb(lu, cmd, 3, -1);
		return;
	}
	uint8_t *buf = scsi_alloc(lu, cmd, MODE_MAX);
	if (!buf)
		return;
	mode_values(lu, pc, &v);
	uint32_t off = hdr;
	if (!dbd) {
		uint64_t nb = lu->nblocks;
		if (llbaa) {
			put_be64(buf + off, nb);
			put_be32(buf + off + 12, lu->block_size);
			off += 16;
		} else {
			put_be32(buf + off, nb > 0xffffffffull ? 0xffffffffu : (uint32_t)nb);
			put_be24(buf + off + 5, lu->block_size);
			off += 8;
		}
	}
	uint32_t bdl = off - hdr;
	if (page == 0x3f) {
		for (unsigned i = 0; i < sizeof(mode_pages); i++)
			off += mode_page(mode_pages[i], pc, &v, buf + off);
	} else {
		uint32_t n = mode_page(page, pc, &v, buf + off);
		if (n == 0) {
			free(buf);
			scsi_bad_cdb(lu, cmd, 2, 5);
			return;
		}
		off += n;
	}
	uint8_t dsp = 0x10;     /* DPOFUA */
	if (sbc_write_protected(lu))
		dsp |= 0x80;
	if (ten) {
		put_be16(buf, (uint16_t)(off - 2));
		buf[3] = dsp;
		buf[4] = llbaa && !dbd ? 1 : 0;
		put_be16(buf + 6, (uint16_t)bdl);
	} else {
		buf[0] = (uint8_t)(off - 1);
		buf[2] = dsp;
		buf[3] = (uint8_t)bdl;
	}
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, off, alloc);
}

/*
 * Apply one page from a MODE SELECT parameter list.  Bits that are not
 * changeable must equal the current value.  Returns 0, or the byte
 * offset (>0, relative to the page) of the first bad field.
 */
static int mode_apply(struct scsi_lu *lu, const uint8_t *p, uint32_t len, struct mode_vals *nv)
{
	uint8_t cur[32], chg[32];
	struct mode_vals v;
	uint8_t page = p[0] & 0x3f;

	mode_values(lu, PC_CURRENT, &v);
	uint32_t n = mode_page(page, PC_CURRENT, &v, cur);
	if (n == 0 || (p[0] & 0x40))
		return 1;
	if (len != n)
		return 2;
	mode_page(page, PC_CHANGEABLE, &v, chg);
	for (uint32_t i = 2; i < n; i++)
		if ((p[i] ^ cur[i]) & ~chg[i])
			return (int)i;
	if (page == 0x08)
		nv->wce = p[2] & 0x04;
	if (page == 0x0a) {
		nv->d_sense = p[2] & 0x04;
		nv->swp = p[4] & 0x08;
	}
	return 0;
}

/* MODE SELECT(6) 0x15 and MODE SELECT(10) 0x55. */
void spc_mode_select(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool ten = cdb[0] == 0x55;
	uint32_t plen = ten ? get_be16(cdb + 7) : cdb[4];
	uint32_t hdr = ten ? 8 : 4;
	struct mode_vals nv;

	if (cdb[1] & 0x01) {     /* SP: we cannot save */
		scsi_bad_cdb(lu, cmd, 1, 0);
		return;
	}
	if (!(cdb[1] & 0x10) && plen) {    /* PF=0: vendor format, not ours */
		scsi_bad_cdb(lu, cmd, 1, 4);
		return;
	}
	cmd->xfer_len = plen;
	if (plen == 0) {
		cmd->status = SAM_STAT_GOOD;
		return;
	}
	const uint8_t *d = cmd->data_out;
	if (plen > cmd->data_out_len || !d || plen < hdr) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	uint32_t bdl = ten ? get_be16(d + 6) : d[3];
	if (hdr + bdl > plen) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	bool longlba = ten && (d[4] & 1);
	uint32_t dlen = longlba ? 16 : 8;
	for (uint32_t o = hdr; o + dlen <= hdr + bdl; o += dlen) {
		uint32_t bl = longlba ? get_be32(d + o + 12) : get_be24(d + o + 5);
		if (bl != lu->block_size) {
			scsi_bad_param(lu, cmd, o + (longlba ? 12 : 5), -1);
			return;
		}
	}
	mode_values(lu, PC_CURRENT, &nv);
	struct mode_vals old = nv;
	uint32_t off = hdr + bdl;
	while (off < plen) {
		if (off + 2 > plen) {
			scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			return;
		}
		uint32_t n = 2 + d[off + 1];
		if (d[off] & 0x40) {
			scsi_bad_param(lu, cmd, off, 6);
			return;
		}
		if (off + n > plen) {
			scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			return;
		}
		int bad = mode_apply(lu, d + off, n, &nv);
		if (bad) {
			scsi_bad_param(lu, cmd, off + (uint32_t)(bad == 1 ? 0 : bad), -1);
			return;
		}
		off += n;
	}
	pthread_mutex_lock(&lu->mode_lock);
	lu->wce = nv.wce;
	lu->d_sense = nv.d_sense;
	lu->swp = nv.swp;
	pthread_mutex_unlock(&lu->mode_lock);
	if (memcmp(&old, &nv, sizeof(nv)) != 0)
		ua_raise_all(lu->target, lu->slot, cmd->nexus, ASC_MODE_PARAMS_CHANGED);
	cmd->status = SAM_STAT_GOOD;
}
