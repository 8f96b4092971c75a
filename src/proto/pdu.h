/*
 * pdu.h - iSCSI PDU layout (RFC 7143 section 11): opcodes, Basic Header
 * Segment field offsets, and big-endian get/put helpers.
 *
 * PDUs are never laid over packed structs: every field is read and written
 * through the helpers below at its RFC offset, so alignment and byte order
 * are explicit.
 */
#ifndef PRISTINE_PDU_H
#define PRISTINE_PDU_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "scsi/scsi.h"   /* scsi_lun_decode/encode: the LUN field is SAM's */
#include "util/bytes.h"

#define ISCSI_BHS_LEN 48

/* Initiator opcodes */
#define OP_NOP_OUT       0x00
#define OP_SCSI_CMD      0x01
#define OP_TMF_REQ       0x02
#define OP_LOGIN_REQ     0x03
#define OP_TEXT_REQ      0x04
#define OP_DATA_OUT      0x05
#define OP_LOGOUT_REQ    0x06
#define OP_SNACK         0x10
/* Target opcodes */
#define OP_NOP_IN        0x20
#define OP_SCSI_RSP      0x21
#define OP_TMF_RSP       0x22
#define OP_LOGIN_RSP     0x23
#define OP_TEXT_RSP      0x24
#define OP_DATA_IN       0x25
#define OP_LOGOUT_RSP    0x26
#define OP_R2T           0x31
#define OP_ASYNC         0x32
#define OP_REJECT        0x3f

/*
 * Basic Header Segment fields (RFC 7143 11.2.1 and the section of each
 * PDU), as byte offsets into the 48-byte BHS.  Several offsets carry a
 * different field depending on the opcode; each has its RFC name here, and
 * the code uses the name of the field it means.  Multi-byte fields are
 * big-endian (get_be16/24/32, put_be16/24/32 from util/bytes.h).
 */
/* Every PDU */
#define BHS_OPCODE        0   /* opcode (bits 0-5) and the I bit */
#define BHS_FLAGS         1   /* the F bit and opcode-specific flags */
#define BHS_AHSLEN        4   /* TotalAHSLength, in 4-byte words */
#define BHS_DSL           5   /* DataSegmentLength, 24 bits */
#define BHS_LUN           8   /* LUN, 8 bytes (SAM coding: scsi_lun_decode) */
#define BHS_ITT          16   /* Initiator Task Tag */
#define BHS_TTT          20   /* Target Transfer Tag (NOP, Text, Data, R2T) */
#define BHS_CMDSN        24   /* CmdSN: initiator PDUs */
#define BHS_EXPSTATSN    28   /* ExpStatSN: initiator PDUs */
#define BHS_STATSN       24   /* StatSN: target PDUs */
#define BHS_EXPCMDSN     28   /* ExpCmdSN: target PDUs */
#define BHS_MAXCMDSN     32   /* MaxCmdSN: target PDUs */
/* SCSI Command (11.3) */
#define BHS_EDTL         20   /* Expected Data Transfer Length */
#define BHS_CDB          32   /* CDB, 16 bytes (longer ones continue in an AHS) */
#define BHS_CDB_LEN      16
/* SCSI Response (11.4) */
#define BHS_RESPONSE      2   /* iSCSI service response (also TMF and Logout Response) */
#define BHS_STATUS        3   /* SCSI status (also Data-In with the S bit) */
#define BHS_EXPDATASN    36   /* ExpDataSN */
#define BHS_BIDI_RESIDUAL 40  /* Bidirectional Read Residual Count */
#define BHS_RESIDUAL     44   /* Residual Count (also Data-In with the S bit) */
/* Task Management Function Request (11.5) */
#define BHS_RTT          20   /* Referenced Task Tag */
#define BHS_REFCMDSN     32   /* RefCmdSN */
/* Data-Out, Data-In (11.7), R2T (11.8) */
#define BHS_DATASN       36   /* DataSN */
#define BHS_R2TSN        36   /* R2TSN */
#define BHS_BUFFER_OFFSET 40  /* Buffer Offset */
#define BHS_DDTL         44   /* R2T: Desired Data Transfer Length */
/* Login Request / Response (11.12, 11.13); Logout Request (11.14) */
#define BHS_VERSION_MAX   2   /* Version-max */
#define BHS_VERSION_MIN   3   /* Version-min (request), Version-active (response) */
#define BHS_ISID          8   /* ISID, 6 bytes */
#define BHS_ISID_LEN      6
#define BHS_TSIH         14   /* TSIH, 16 bits */
#define BHS_CID          20   /* CID, 16 bits (also Logout Request) */
#define BHS_STATUS_CLASS  36  /* Login Response: Status-Class */
#define BHS_STATUS_DETAIL 37  /* Login Response: Status-Detail */
/* Reject (11.17) */
#define BHS_REASON        2   /* Reject reason (REJECT_*) */

/* The reserved tag value: "no task" (ITT) or "no transfer" (TTT). */
#define ISCSI_TAG_RESERVED 0xffffffffu

/* Byte 0 */
#define BHS_OPCODE_MASK 0x3f
#define BHS_I_BIT 0x40   /* immediate delivery */
/* Byte 1 (flags): F is common, the rest depend on the opcode */
#define BHS_F_BIT 0x80   /* final */
#define CMD_R_BIT 0x40   /* SCSI Command: data will be read */
#define CMD_W_BIT 0x20   /* SCSI Command: data will be written */
#define CMD_ATTR_MASK 0x07  /* SCSI Command: task attribute */
#define RSP_BIDI_OVERFLOW  0x10  /* SCSI Response: o bit (bidirectional read residual) */
#define RSP_BIDI_UNDERFLOW 0x08  /* SCSI Response: u bit */
#define RSP_OVERFLOW  0x04  /* SCSI Response / Data-In: O bit (residual overflow) */
#define RSP_UNDERFLOW 0x02  /* SCSI Response / Data-In: U bit (residual underflow) */
#define DATAIN_A_BIT  0x40  /* Data-In: acknowledge (ErrorRecoveryLevel > 0; never set) */
#define DATAIN_S_BIT  0x01  /* Data-In: carries the status */
#define TEXT_C_BIT    0x40  /* Text Request/Response: continue */
#define LOGIN_T_BIT   0x80  /* Login: transit to the next stage */
#define LOGIN_C_BIT   0x40  /* Login: continue (text follows in the next PDU) */
#define LOGIN_CSG_SHIFT 2   /* Login: current stage, bits 2-3 */
#define LOGIN_STAGE_MASK 3  /* Login: CSG/NSG field width; NSG in bits 0-1 */
#define BHS_FUNC_MASK 0x7f  /* TMF function, Logout reason code */

/* Login: the version we speak (Version-max/min/active), and the stages
 * of the CSG and NSG fields (11.12.3) */
#define ISCSI_VERSION        0x00
#define STAGE_SECURITY       0   /* SecurityNegotiation */
#define STAGE_OPERATIONAL    1   /* LoginOperationalNegotiation */
#define STAGE_RESERVED       2
#define STAGE_FFP            3   /* FullFeaturePhase */

/* SCSI Response: response code (11.4.3); its data segment is the
 * SenseLength field, then the sense data (11.4.7.2) */
#define RSP_COMPLETED 0x00   /* command completed at target */
#define RSP_SENSE_LENGTH_LEN 2

/* Logout Request reason codes (11.14.1) and Logout Response codes (11.15.1) */
#define LOGOUT_CLOSE_SESSION      0
#define LOGOUT_CLOSE_CONNECTION   1
#define LOGOUT_REMOVE_FOR_RECOVERY 2
#define LOGOUT_RSP_CLOSED         0   /* connection or session closed */
#define LOGOUT_RSP_CID_NOT_FOUND  1
#define LOGOUT_RSP_NO_RECOVERY    2   /* connection recovery not supported */

/* Additional Header Segment types (11.2.2) and their fixed layout */
#define AHS_HDR_LEN        4   /* AHSLength (16 bits), AHSType, a specific byte */
#define AHS_TYPE           2
#define AHS_EXTENDED_CDB   1
#define AHS_BIDI_READ_LEN  2

/* Reject reasons (RFC 7143 11.17.1) */
#define REJECT_DIGEST_ERROR      0x02
#define REJECT_SNACK_REJECT      0x03
#define REJECT_PROTOCOL_ERROR    0x04
#define REJECT_CMD_NOT_SUPPORTED 0x05
#define REJECT_IMM_CMD_REJECT    0x06
#define REJECT_TASK_IN_PROGRESS  0x07
#define REJECT_INVALID_DATA_ACK  0x08
#define REJECT_INVALID_FIELD     0x09
#define REJECT_LONG_OP_REJECT    0x0a
#define REJECT_WAITING_LOGOUT    0x0c

static inline uint8_t bhs_opcode(const uint8_t *bhs) { return bhs[BHS_OPCODE] & BHS_OPCODE_MASK; }
static inline bool bhs_immediate(const uint8_t *bhs) { return bhs[BHS_OPCODE] & BHS_I_BIT; }
static inline uint8_t bhs_flags(const uint8_t *bhs) { return bhs[BHS_FLAGS]; }
static inline uint32_t bhs_dsl(const uint8_t *bhs) { return get_be24(bhs + BHS_DSL); }
static inline uint32_t bhs_ahslen(const uint8_t *bhs) { return (uint32_t)bhs[BHS_AHSLEN] * 4; }
static inline uint32_t bhs_itt(const uint8_t *bhs) { return get_be32(bhs + BHS_ITT); }
static inline uint32_t bhs_ttt(const uint8_t *bhs) { return get_be32(bhs + BHS_TTT); }
static inline uint32_t bhs_cmdsn(const uint8_t *bhs) { return get_be32(bhs + BHS_CMDSN); }

/* Serial number arithmetic (RFC 1982, 32 bits) */
static inline bool sn_lt(uint32_t a, uint32_t b) { return a != b && (int32_t)(a - b) < 0; }
static inline bool sn_le(uint32_t a, uint32_t b) { return a == b || (int32_t)(a - b) < 0; }

static inline uint32_t pad4(uint32_t n) { return (n + 3u) & ~3u; }

/* Human-readable opcode name for logs. */
const char *pdu_opcode_name(uint8_t op);

#endif
