/*
 * scsi_int.h - private to src/scsi: the LU and target structures, the
 * big-endian wire helpers, sense building and the per-command handlers.
 *
 * Locking (outermost first):
 *   target->lock   the LU slots, the nexus list and every unit attention
 *                  queue; LUs hold a reference count (refs) so a command
 *                  uses its LU without it
 *   lu->pr_lock    SPC-2 and persistent reservations of one LU
 *   lu->io_lock    rwlock: ordinary writes take it shared, COMPARE AND
 *                  WRITE takes it exclusive so its read-compare-write is
 *                  atomic with respect to every other writer
 *   lu->mode_lock  mode page values (D_SENSE, WCE, SWP ...)
 * pr.c raises unit attentions (target->lock) while holding pr_lock;
 * nothing takes pr_lock while holding target->lock.
 */
#ifndef PRISTINE_SCSI_INT_H
#define PRISTINE_SCSI_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi.h"

#include "util/bytes.h"

/* ---- sense keys and the additional sense codes we use (ASC << 8 | ASCQ) ---- */
enum {
	SK_NO_SENSE = 0x0, SK_RECOVERED_ERROR = 0x1, SK_NOT_READY = 0x2,
	SK_MEDIUM_ERROR = 0x3, SK_HARDWARE_ERROR = 0x4, SK_ILLEGAL_REQUEST = 0x5,
	SK_UNIT_ATTENTION = 0x6, SK_DATA_PROTECT = 0x7, SK_ABORTED_COMMAND = 0xb,
	SK_MISCOMPARE = 0xe,
};

enum {
	ASC_NO_ADDITIONAL = 0x0000,
	ASC_WRITE_ERROR = 0x0c00,
	ASC_UNRECOVERED_READ = 0x1100,
	ASC_MISCOMPARE_VERIFY = 0x1d00,
	ASC_PARAM_LIST_LENGTH = 0x1a00,
	ASC_INVALID_OPCODE = 0x2000,
	ASC_LBA_OUT_OF_RANGE = 0x2100,
	ASC_INVALID_FIELD_CDB = 0x2400,
	ASC_LUN_NOT_SUPPORTED = 0x2500,
	ASC_INVALID_FIELD_PARAM = 0x2600,
	ASC_PARAM_NOT_SUPPORTED = 0x2601,
	ASC_WRITE_PROTECTED = 0x2700,
	ASC_SPACE_ALLOC_FAILED_WP = 0x2707,
	ASC_POWER_ON = 0x2900,          /* POWER ON, RESET, OR BUS DEVICE RESET OCCURRED */
	ASC_POWER_ON_OCCURRED = 0x2901,
	ASC_BUS_RESET = 0x2902,
	ASC_DEVICE_RESET = 0x2903,
	ASC_NEXUS_LOSS = 0x2907,
	ASC_MODE_PARAMS_CHANGED = 0x2a01,
	ASC_RESERVATIONS_PREEMPTED = 0x2a03,
	ASC_RESERVATIONS_RELEASED = 0x2a04,
	ASC_REGISTRATIONS_PREEMPTED = 0x2a05,
	ASC_COMMANDS_CLEARED = 0x2f00,
	ASC_SAVING_NOT_SUPPORTED = 0x3900,
	ASC_MEDIUM_NOT_PRESENT = 0x3a00,
	ASC_REPORTED_LUNS_CHANGED = 0x3f0e,
	ASC_INSUFFICIENT_REG_RESOURCES = 0x5504,
	ASC_INVALID_FIELD_IU = 0x0e03,
	ASC_INTERNAL_TARGET_FAILURE = 0x4400,
	ASC_LOW_POWER_COND_ON = 0x5e00,
	ASC_MEDIUM_REMOVAL_PREVENTED = 0x5302,
};

/* ---- unit attentions ---- */

#define UA_QUEUE_MAX 8

/* Per-nexus state the SCSI layer keeps while a session is logged in. */
struct scsi_nexus_state {
	uint64_t id;
	char port_name[256];
	char initiator_name[224];
	/* Pending unit attentions per LU slot, oldest first. */
	uint16_t ua[SCSI_MAX_LUNS][UA_QUEUE_MAX];
	unsigned ua_count[SCSI_MAX_LUNS];
	bool prevent[SCSI_MAX_LUNS];
	struct scsi_nexus_state *next;
};

/* ---- reservations ---- */

#define PR_MAX_REGS 64

struct pr_reg {
	char port_name[256];
	uint64_t key;
};

struct pr_state {
	/* SPC-2 RESERVE(6/10): holder's port name, empty if none. */
	char reserve_holder[256];
	bool reserved;
	/* Persistent reservations. */
	uint32_t generation;
	struct pr_reg regs[PR_MAX_REGS];
	unsigned nregs;
	bool pr_held;
	uint8_t pr_type;             /* 1,3,5,6,7,8 */
	char pr_holder[256];         /* port name; unused for all-registrants */
	bool aptpl;
};

/* ---- LU and target ---- */

struct scsi_lu {
	struct scsi_target *target;
	unsigned slot;               /* index into target->lus and UA arrays */
	uint64_t lun;
	/* Users right now: commands executing on it, a deferred read until
	 * scsi_cmd_release, an EXTENDED COPY's other LUs, task management.
	 * Taken under target->lock (target_lu_get), dropped without it
	 * (lu_put); the LU is freed only once it is 0 and the LU is gone.
	 * On a cache line of its own: every command writes it twice, and
	 * the fields around it are read by every command on other CPUs. */
	_Alignas(64) atomic_uint refs;
	char refs_pad[64 - sizeof(atomic_uint)];
	/* Being removed (scsi_target_remove_lu; under target->lock): no
	 * longer found by LUN nor reported, but its slot stays taken - its
	 * UA queues included - until the last reference is dropped. */
	bool gone;
	struct backend *be;
	uint32_t block_size;
	unsigned block_shift;
	uint64_t nblocks;
	bool read_only;
	char vendor[9], product[17], revision[5];
	char serial[65];
	uint64_t naa_id;
	char target_name[224];

	pthread_mutex_t mode_lock;
	bool wce;                    /* caching page WCE */
	bool d_sense;                /* control page D_SENSE */
	bool swp;                    /* control page SWP (software write protect) */
	uint8_t tst_tas;             /* control page byte 5 bits (TAS) */

	pthread_rwlock_t io_lock;
	struct io_ratelimit err_rl;  /* backend errors logged by sbc_io_error */
	int err_event;               /* the last -errno put in the event log (once per kind
				      * of error, not per command), 0 = none yet */
	pthread_mutex_t pr_lock;
	struct pr_state pr;
	/* Outcome of the last EXTENDED COPY (under pr_lock). */
	struct {
		bool valid;
		uint64_t nexus;
		uint8_t list_id, status;
		uint16_t segs;
		uint64_t bytes;
	} xc;
};

struct scsi_target {
	pthread_mutex_t lock;
	struct scsi_lu *lus[SCSI_MAX_LUNS];
	struct scsi_nexus_state *nexuses;
	/* Removals waiting for their LU's last reference (lu_put wakes
	 * them on drained only while this is non-zero, so the hot path
	 * pays one atomic load). */
	atomic_uint removing;
	pthread_cond_t drained;      /* with lock */
};

/* An LU that commands may reach: present in its slot and not being
 * removed.  Caller holds target->lock. */
static inline bool lu_live(const struct scsi_lu *lu)
{
	return lu && !lu->gone;
}

/* ---- command table (opcodes.c) ---- */

/* How a command behaves under reservations (SPC-4 5.13, SBC-3 4.17). */
enum pr_class {
	PRC_ALLOWED,      /* INQUIRY, REPORT LUNS, ... never conflicts */
	PRC_READ,         /* allowed under write-exclusive types, conflicts under exclusive access */
	PRC_WRITE,        /* conflicts under both */
	PRC_SPECIAL,      /* the handler decides (PR OUT, RESERVE, RELEASE, START STOP) */
};

typedef void (*scsi_handler)(struct scsi_lu *lu, struct scsi_cmd *cmd);

struct scsi_opdesc {
	uint8_t opcode;
	uint16_t sa;                 /* service action, if has_sa */
	bool has_sa;
	uint8_t cdb_len;
	enum pr_class prc;
	bool ua_exempt;              /* INQUIRY, REPORT LUNS, REQUEST SENSE: no UA report */
	scsi_handler handler;
	uint8_t usage[16];           /* CDB usage data for REPORT SUPPORTED OPCODES */
};

/* Look up a CDB's descriptor; NULL if unsupported.  *bad_sa is set when
 * the opcode exists but the service action does not. */
const struct scsi_opdesc *scsi_op_lookup(const uint8_t *cdb, bool *bad_sa);
void spc_report_supported_opcodes(struct scsi_lu *lu, struct scsi_cmd *cmd);
bool scsi_op_check_reserved(struct scsi_lu *lu, struct scsi_cmd *cmd, const struct scsi_opdesc *op);

/* ---- sense (sense.c) ---- */

/* Optional parts of a sense: information field and sense-key-specific. */
struct sense_extra {
	bool info_valid;
	uint64_t info;
	bool sks_valid;
	bool sks_cdb;                /* C/D: field pointer into the CDB (else param list) */
	bool sks_bpv;
	uint8_t sks_bit;
	uint16_t sks_field;
};

/* Fill cmd->sense for CHECK CONDITION in the format the LU's D_SENSE
 * selects (fixed if lu is NULL) and set the status. */
void scsi_sense_ex(struct scsi_lu *lu, struct scsi_cmd *cmd, uint8_t key,
		   uint16_t asc, const struct sense_extra *ex);
void scsi_sense(struct scsi_lu *lu, struct scsi_cmd *cmd, uint8_t key, uint16_t asc);
/* ILLEGAL REQUEST, INVALID FIELD IN CDB pointing at byte/bit of the CDB
 * (bit < 0: no bit pointer). */
void scsi_bad_cdb(struct scsi_lu *lu, struct scsi_cmd *cmd, unsigned byte, int bit);
/* ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST at byte/bit. */
void scsi_bad_param(struct scsi_lu *lu, struct scsi_cmd *cmd, unsigned byte, int bit);
/* Build sense bytes into buf (>= 18 or 20 bytes); returns the length. */
uint32_t scsi_sense_build(uint8_t *buf, bool desc, uint8_t key, uint16_t asc,
			  const struct sense_extra *ex);

/* ---- target helpers (target.c) ---- */

/* The live LU in slot i with a reference taken (release it with
 * lu_put), or NULL; safe against concurrent additions and removals. */
struct scsi_lu *target_lu_get(struct scsi_target *t, unsigned i);
/* Drop a reference target_lu_get (or the command dispatch) took; the
 * last one of an LU being removed wakes its remover.  lu may be freed
 * once this returns.  Takes target->lock only when a removal waits. */
void lu_put(struct scsi_lu *lu);


/* Hand len bytes of buf (malloc()ed, ownership passes) back as Data-In,
 * truncated to alloc_len and edtl; sets xfer_len = min(len, alloc_len). */
void scsi_data_in(struct scsi_cmd *cmd, uint8_t *buf, uint32_t len, uint32_t alloc_len);
/* calloc() that reports CHECK CONDITION on failure; returns NULL then. */
uint8_t *scsi_alloc(struct scsi_lu *lu, struct scsi_cmd *cmd, size_t len);

/* ---- unit attentions (ua.c); caller holds no LU lock ---- */

void ua_raise_all(struct scsi_target *t, unsigned slot, const struct scsi_nexus *except, uint16_t asc);
void ua_raise_port(struct scsi_target *t, unsigned slot, const char *port_name, uint16_t asc);
void ua_raise_all_luns(struct scsi_target *t, const struct scsi_nexus *except, uint16_t asc);
/* Pop the UA to report now for (nexus, slot) - the reset class first,
 * else the oldest; returns false if none.  _locked: t->lock held. */
bool ua_pop(struct scsi_target *t, unsigned slot, const struct scsi_nexus *n, uint16_t *asc);
bool ua_pop_locked(struct scsi_target *t, unsigned slot, const struct scsi_nexus *n,
		   uint16_t *asc);
struct scsi_nexus_state *ua_find(struct scsi_target *t, uint64_t id);

/* ---- SPC handlers (spc.c, vpd.c, mode.c) ---- */
void spc_inquiry(struct scsi_lu *lu, struct scsi_cmd *cmd);
void spc_inquiry_no_lu(struct scsi_cmd *cmd);
int vpd_page(struct scsi_lu *lu, uint8_t page, uint8_t *buf, uint32_t *len);
void spc_request_sense(struct scsi_lu *lu, struct scsi_cmd *cmd);
void spc_test_unit_ready(struct scsi_lu *lu, struct scsi_cmd *cmd);
void spc_start_stop_unit(struct scsi_lu *lu, struct scsi_cmd *cmd);
void spc_prevent_allow(struct scsi_lu *lu, struct scsi_cmd *cmd);
void spc_mode_sense(struct scsi_lu *lu, struct scsi_cmd *cmd);
void spc_mode_select(struct scsi_lu *lu, struct scsi_cmd *cmd);
void spc_report_luns(struct scsi_target *t, struct scsi_cmd *cmd);
void sbc_read_defect_data(struct scsi_lu *lu, struct scsi_cmd *cmd);

/* ---- SBC handlers (sbc.c, sbc_lbp.c) ---- */
void sbc_read(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_write(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_verify(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_write_verify(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_orwrite(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_compare_and_write(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_sync_cache(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_prefetch(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_read_capacity10(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_read_capacity16(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_unmap(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_write_same(struct scsi_lu *lu, struct scsi_cmd *cmd);
void sbc_get_lba_status(struct scsi_lu *lu, struct scsi_cmd *cmd);
/* Map a backend error of a read or write to sense. */
void sbc_io_error(struct scsi_lu *lu, struct scsi_cmd *cmd, int err, bool write);
/* Is the LU write protected right now (config, backend, or SWP)? */
bool sbc_write_protected(struct scsi_lu *lu);

/* ---- third-party copy (xcopy.c) ---- */
void spc_extended_copy(struct scsi_lu *lu, struct scsi_cmd *cmd);
void spc_receive_copy_results(struct scsi_lu *lu, struct scsi_cmd *cmd);

/* ---- reservations (pr.c) ---- */
/* Returns true (and sets RESERVATION CONFLICT) if cmd may not run now. */
bool pr_check_conflict(struct scsi_lu *lu, struct scsi_cmd *cmd, const struct scsi_opdesc *op);
void pr_reserve(struct scsi_lu *lu, struct scsi_cmd *cmd);
void pr_release(struct scsi_lu *lu, struct scsi_cmd *cmd);
void pr_in(struct scsi_lu *lu, struct scsi_cmd *cmd);
void pr_out(struct scsi_lu *lu, struct scsi_cmd *cmd);
/* Nexus gone / LU reset: drop the SPC-2 reservation held by port (or any). */
void pr_drop_reserve(struct scsi_lu *lu, const char *port_name);

/* Limits we advertise (vpd.c uses them, sbc checks them). */
#define SBC_MAX_XFER_BYTES   (8u << 20)      /* 8 MiB per command */
#define SBC_MAX_UNMAP_BLOCKS (1u << 20)
#define SBC_MAX_UNMAP_DESCS  256u
#define SBC_MAX_WS_BLOCKS    65535u
#define SBC_MAX_CAW_BLOCKS   255u
#define SBC_MAX_ATOMIC_BLOCKS 256u

#endif
