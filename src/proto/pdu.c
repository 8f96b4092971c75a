/*
 * pdu.c - LUN field coding and opcode names (see pdu.h).
 */
#include "proto/pdu.h"

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
