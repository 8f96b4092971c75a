/*
 * pdu.c - LUN field coding and opcode names (see pdu.h).
 */
#include "proto/pdu.h"

uint64_t lun_decode(const uint8_t *p)
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

void lun_encode(uint8_t *p, uint64_t lun)
{
	memset(p, 0, 8);
	if (lun < 256) {
		p[1] = (uint8_t)lun;
	} else {
		p[0] = (uint8_t)(0x40 | ((lun >> 8) & 0x3f));
		p[1] = (uint8_t)lun;
	}
}

const char *pdu_opcode_name(uint8_t op)
{
	switch (op) {
	case OP_NOP_OUT: return "NOP-Out";
	case OP_SCSI_CMD: return "SCSI-Command";
	case OP_TMF_REQ: return "TMF-Request";
	case OP_LOGIN_REQ: return "Login-Request";
	case OP_TEXT_REQ: return "Text-Request";
	case OP_DATA_OUT: return "Data-Out";
	case OP_LOGOUT_REQ: return "Logout-Request";
	case OP_SNACK: return "SNACK";
	default: return "unknown";
	}
}
