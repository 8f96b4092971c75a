/*
 * lun.c - the 8-byte SAM LUN field: single-level peripheral and flat space
 * addressing, the forms a target with a handful of LUNs needs.
 */
#include "scsi/scsi.h"

#include <string.h>

uint64_t scsi_lun_decode(const uint8_t *p)
{
	uint8_t method = p[0] >> 6;

	/* Only the first level may be used; deeper levels must be zero. */
	for (int i = 2; i < 8; i++)
		if (p[i])
			return UINT64_MAX;
	switch (method) {
	case 0: /* peripheral device addressing: bus 0 only */
		if (p[0] & 0x3f)
			return UINT64_MAX;
		return p[1];
	case 1: /* flat space addressing */
		return (uint64_t)(p[0] & 0x3f) << 8 | p[1];
	default:
		return UINT64_MAX;
	}
}

void scsi_lun_encode(uint8_t *p, uint64_t lun)
{
	memset(p, 0, 8);
	if (lun < 256) {
		p[1] = (uint8_t)lun;
	} else {
		p[0] = (uint8_t)(0x40 | ((lun >> 8) & 0x3f));
		p[1] = (uint8_t)lun;
	}
}
