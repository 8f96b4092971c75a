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

#define BHS_I_BIT 0x40   /* immediate delivery, byte 0 */
#define BHS_F_BIT 0x80   /* final, byte 1 */

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

/* Common BHS offsets */
#define BHS_OPCODE    0
#define BHS_FLAGS     1
#define BHS_AHSLEN    4
#define BHS_DSL       5   /* 24 bits */
#define BHS_LUN       8   /* 8 bytes */
#define BHS_ITT      16
#define BHS_TTT      20
#define BHS_CMDSN    24   /* initiator PDUs */
#define BHS_EXPSTATSN 28
#define BHS_STATSN   24   /* target PDUs */
#define BHS_EXPCMDSN 28
#define BHS_MAXCMDSN 32

static inline uint8_t bhs_opcode(const uint8_t *bhs) { return bhs[0] & 0x3f; }
static inline bool bhs_immediate(const uint8_t *bhs) { return bhs[0] & BHS_I_BIT; }
static inline uint32_t bhs_dsl(const uint8_t *bhs) { return get_be24(bhs + BHS_DSL); }
static inline uint32_t bhs_ahslen(const uint8_t *bhs) { return (uint32_t)bhs[BHS_AHSLEN] * 4; }

/* Serial number arithmetic (RFC 1982, 32 bits) */
static inline bool sn_lt(uint32_t a, uint32_t b) { return a != b && (int32_t)(a - b) < 0; }
static inline bool sn_le(uint32_t a, uint32_t b) { return a == b || (int32_t)(a - b) < 0; }

static inline uint32_t pad4(uint32_t n) { return (n + 3u) & ~3u; }

/* Human-readable opcode name for logs. */
const char *pdu_opcode_name(uint8_t op);

#endif
