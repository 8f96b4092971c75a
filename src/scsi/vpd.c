/*
 * vpd.c - the Vital Product Data pages of INQUIRY with EVPD=1
 * (SPC-4 7.8, SBC-3 6.5): supported pages, unit serial number, device
 * identification, block limits, block device characteristics and logical
 * block provisioning.
 */
#include <stdio.h>

#include "scsi/scsi_int.h"

#define VPD_MAX 512

static const uint8_t vpd_list[] = { 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 };

/* Does the LU offer thin provisioning (UNMAP and friends)? */
static bool lu_thin(const struct scsi_lu *lu)
{
	return lu->be->ops->unmap != NULL;
}

/* Append one designation descriptor; id_len bytes are padded with zeros
 * to a multiple of 4 when pad4.  Returns the new offset. */
static uint32_t put_desig(uint8_t *buf, uint32_t off, uint8_t proto_codeset,
			  uint8_t piv_assoc_type, const void *id, uint32_t id_len, bool pad4)
{
	uint32_t len = pad4 ? (id_len + 3) & ~3u : id_len;

	buf[off] = proto_codeset;
	buf[off + 1] = piv_assoc_type;
	buf[off + 2] = 0;
	buf[off + 3] = (uint8_t)len;
	memset(buf + off + 4, 0, len);
	memcpy(buf + off + 4, id, id_len);
	return off + 4 + len;
}

/* Page 0x83: NAA 6 and SCSI name string for the LU, plus the target
 * port's relative identifier and name and the target device name. */
static uint32_t vpd_devid(struct scsi_lu *lu, uint8_t *buf)
{
	uint8_t naa[16];
	char name[300];
	uint32_t off = 4;

	/* NAA 6 (IEEE registered extended): the 60-bit id fills the field
	 * after the NAA nibble; the extension carries the LUN so two LUs of
	 * one image never share an identifier. */
	put_be64(naa, (6ull << 60) | (lu->naa_id & 0x0fffffffffffffffull));
	put_be64(naa + 8, lu->lun);
	off = put_desig(buf, off, 0x01, 0x03, naa, 16, false);

	int n = snprintf(name, sizeof(name), "%s,L,0x%016llx",
			 lu->target_name[0] ? lu->target_name : "iqn.2024-01.invalid:pristine",
			 (unsigned long long)lu->lun);
	off = put_desig(buf, off, 0x03, 0x08, name, (uint32_t)n + 1, true);

	/* Relative target port identifier 1 (association: target port). */
	uint8_t rtp[4] = { 0, 0, 0, 1 };
	off = put_desig(buf, off, 0x51, 0x94, rtp, 4, false);

	if (lu->target_name[0]) {
		n = snprintf(name, sizeof(name), "%s,t,0x0001", lu->target_name);
		off = put_desig(buf, off, 0x53, 0x98, name, (uint32_t)n + 1, true);
		n = snprintf(name, sizeof(name), "%s", lu->target_name);
		off = put_desig(buf, off, 0x53, 0xa8, name, (uint32_t)n + 1, true);
	}
	put_be16(buf + 2, (uint16_t)(off - 4));
	return off;
}

/* Page 0xb0: block limits. */
static uint32_t vpd_block_limits(struct scsi_lu *lu, uint8_t *buf)
{
	uint32_t gran = lu->block_size < 4096 ? 4096 / lu->block_size : 1;

	put_be16(buf + 2, 0x3c);
	buf[5] = SBC_MAX_CAW_BLOCKS;
	put_be16(buf + 6, (uint16_t)gran);
	put_be32(buf + 8, SBC_MAX_XFER_BYTES >> lu->block_shift);
	put_be32(buf + 12, (1u << 20) >> lu->block_shift);
	put_be32(buf + 16, SBC_MAX_XFER_BYTES >> lu->block_shift);
	if (lu_thin(lu)) {
		put_be32(buf + 20, SBC_MAX_UNMAP_BLOCKS);
		put_be32(buf + 24, SBC_MAX_UNMAP_DESCS);
		put_be32(buf + 28, gran);
		put_be32(buf + 32, 0x80000000u);     /* UGAVALID, alignment 0 */
	}
	put_be64(buf + 36, SBC_MAX_WS_BLOCKS);
	put_be32(buf + 44, SBC_MAX_ATOMIC_BLOCKS);
	put_be32(buf + 48, 1);
	put_be32(buf + 52, 1);
	return 64;
}

/*
 * Build VPD page `page` of lu into buf (VPD_MAX bytes, zeroed by the
 * caller).  Returns 0 and the page's length in *len, or -1 if the page
 * is not supported.
 */
int vpd_page(struct scsi_lu *lu, uint8_t page, uint8_t *buf, uint32_t *len)
{
	buf[0] = 0x00;          /* qualifier 0, direct access block device */
	buf[1] = page;
	switch (page) {
	case 0x00:
		memcpy(buf + 4, vpd_list, sizeof(vpd_list));
		put_be16(buf + 2, sizeof(vpd_list));
		*len = 4 + sizeof(vpd_list);
		return 0;
	case 0x80: {
		size_t n = strlen(lu->serial);
		memcpy(buf + 4, lu->serial, n);
		put_be16(buf + 2, (uint16_t)n);
		*len = 4 + (uint32_t)n;
		return 0;
	}
	case 0x83:
		*len = vpd_devid(lu, buf);
		return 0;
	case 0xb0:
		*len = vpd_block_limits(lu, buf);
		return 0;
	case 0xb1:
		put_be16(buf + 2, 0x3c);
		put_be16(buf + 4, 1);          /* non-rotating medium */
		*len = 64;
		return 0;
	case 0xb2:
		put_be16(buf + 2, 4);
		if (lu_thin(lu)) {
			/* LBPU, LBPWS, LBPWS10, LBPRZ; provisioning type: thin */
			buf[5] = 0x80 | 0x40 | 0x20 | 0x04;
			buf[6] = 0x02;
		}
		*len = 8;
		return 0;
	}
	return -1;
}

/* INQUIRY (SPC-4 6.6): standard data or a VPD page. */
void spc_inquiry(struct scsi_lu *lu, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool evpd = cdb[1] & 1;
	uint16_t alloc = get_be16(cdb + 3);
	uint32_t len;

	if (cdb[1] & 0xfe) {
		scsi_bad_cdb(lu, cmd, 1, 1);
		return;
	}
	if (!evpd && cdb[2]) {
		scsi_bad_cdb(lu, cmd, 2, -1);
		return;
	}
	uint8_t *buf = scsi_alloc(lu, cmd, VPD_MAX);
	if (!buf)
		return;
	if (evpd) {
		if (vpd_page(lu, cdb[2], buf, &len) < 0) {
			free(buf);
			scsi_bad_cdb(lu, cmd, 2, -1);
			return;
		}
	} else {
		buf[0] = 0x00;
		buf[1] = 0x00;          /* not removable: a boot disk must not be */
		buf[2] = 0x06;          /* SPC-4 */
		buf[3] = 0x12;          /* HISUP, response data format 2 */
		buf[5] = 0x08;          /* 3PC: EXTENDED COPY */
		buf[6] = 0x00;
		buf[7] = 0x02;          /* CMDQUE */
		memset(buf + 8, ' ', 28);
		memcpy(buf + 8, lu->vendor, strlen(lu->vendor));
		memcpy(buf + 16, lu->product, strlen(lu->product));
		memcpy(buf + 32, lu->revision, strlen(lu->revision));
		/* version descriptors: SAM-5, iSCSI, SPC-4, SBC-3 */
		put_be16(buf + 58, 0x00a0);
		put_be16(buf + 60, 0x0960);
		put_be16(buf + 62, 0x0460);
		put_be16(buf + 64, 0x04c0);
		len = 74;
		buf[4] = (uint8_t)(len - 5);
	}
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, len, alloc);
}

/* INQUIRY for a LUN without an LU: peripheral qualifier 3, type 0x1f. */
void spc_inquiry_no_lu(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint16_t alloc = get_be16(cdb + 3);

	if ((cdb[1] & 1) || cdb[2]) {
		scsi_bad_cdb(NULL, cmd, (cdb[1] & 1) ? 1 : 2, -1);
		return;
	}
	uint8_t *buf = scsi_alloc(NULL, cmd, 36);
	if (!buf)
		return;
	buf[0] = 0x7f;
	buf[2] = 0x06;
	buf[3] = 0x12;
	buf[4] = 31;
	memset(buf + 8, ' ', 28);
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, 36, alloc);
}
