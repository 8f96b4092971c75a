/*
 * scsi.h - SCSI target emulation: a direct-access block device (SPC-4/SBC-3)
 * behind the iSCSI layer.
 *
 * The transport (iSCSI) collects a command's whole Data-Out before calling
 * scsi_target_exec(), and sends whatever Data-In the command produced
 * afterwards; it never interprets a CDB itself.  Everything a command needs
 * to be answered correctly - status, sense, how many bytes it would have
 * transferred (for residuals) - comes back in struct scsi_cmd.
 *
 * Threading: scsi_target_exec() may be called concurrently from many
 * connection threads, for the same or different LUs.  The SCSI layer
 * serialises what must be serialised (reservations, unit attentions,
 * COMPARE AND WRITE) itself.
 */
#ifndef PRISTINE_SCSI_H
#define PRISTINE_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/backend.h"

#define SCSI_SENSE_MAX 252
#define SCSI_MAX_LUNS  16

/* SAM status codes */
enum {
	SAM_STAT_GOOD = 0x00,
	SAM_STAT_CHECK_CONDITION = 0x02,
	SAM_STAT_CONDITION_MET = 0x04,
	SAM_STAT_BUSY = 0x08,
	SAM_STAT_RESERVATION_CONFLICT = 0x18,
	SAM_STAT_TASK_SET_FULL = 0x28,
	SAM_STAT_ACA_ACTIVE = 0x30,
	SAM_STAT_TASK_ABORTED = 0x40,
};

/*
 * An I_T nexus: one iSCSI session.  The transport owns it; it must stay
 * valid until scsi_target_nexus_gone() has been called for it.
 * port_name is the SCSI initiator port name, "<iqn>,i,0x<isid hex>".
 * id is unique for the daemon's lifetime (never reused).
 */
struct scsi_nexus {
	uint64_t id;
	char initiator_name[224];
	char port_name[256];
	uint16_t tpgt;
};

/* Task attributes as carried in the iSCSI SCSI Command PDU (ATTR field). */
enum scsi_task_attr {
	SCSI_ATTR_UNTAGGED = 0, SCSI_ATTR_SIMPLE = 1, SCSI_ATTR_ORDERED = 2,
	SCSI_ATTR_HEAD_OF_QUEUE = 3, SCSI_ATTR_ACA = 4,
};

struct scsi_cmd {
	/* ---- inputs, set by the transport ---- */
	const uint8_t *cdb;          /* 16 bytes, or more with an AHS */
	unsigned cdb_len;
	uint64_t lun;                /* flat LUN number (0..16383) */
	const struct scsi_nexus *nexus;
	enum scsi_task_attr attr;
	bool read;                   /* R bit */
	bool write;                  /* W bit */
	uint32_t edtl;               /* Expected Data Transfer Length */
	/* Data-Out received: exactly edtl bytes when write is set, else NULL/0.
	 * Owned by the transport. */
	const uint8_t *data_out;
	uint32_t data_out_len;
	/* A READ of at least this many bytes may be deferred (0: never): it
	 * then reads nothing, leaves data_in NULL and sets data_lu; the
	 * transport moves the data itself with scsi_cmd_data_splice() or
	 * scsi_cmd_data_read() below, straight from the medium. */
	uint32_t defer_min;

	/* ---- outputs, set by the SCSI layer ---- */
	uint8_t status;              /* SAM_STAT_* */
	uint8_t sense[SCSI_SENSE_MAX];
	uint32_t sense_len;          /* 0 if no sense data */
	/* Data-In: malloc()ed by the SCSI layer, freed by the transport with
	 * free().  data_in_len bytes are valid, data_in_len <= edtl. */
	uint8_t *data_in;
	uint32_t data_in_len;
	/* A deferred read (defer_min): data_in_len bytes of data_lu's medium
	 * from byte data_off; NULL otherwise. */
	struct scsi_lu *data_lu;
	uint64_t data_off;
	/* The LU a deferred read keeps in use (it can not be removed) until
	 * scsi_cmd_release(); private to the SCSI layer. */
	struct scsi_lu *held_lu;
	/* Bytes the command would move per its CDB (allocation length or
	 * blocks * block size), for the residual: if xfer_len > edtl the
	 * transport reports overflow of xfer_len - edtl; if less, underflow
	 * of edtl - xfer_len.  For a read that produced fewer bytes than its
	 * allocation length (e.g. INQUIRY), set xfer_len = bytes produced. */
	uint32_t xfer_len;
};

/* Description of one LU, used to create it. */
struct scsi_lu_config {
	struct backend *be;          /* borrowed; must outlive the LU */
	uint32_t block_size;         /* 512 or 4096 */
	bool read_only;              /* writes fail with DATA PROTECT */
	const char *vendor;          /* INQUIRY, <= 8 chars */
	const char *product;         /* <= 16 chars */
	const char *revision;        /* <= 4 chars */
	const char *serial;          /* VPD 0x80 */
	uint64_t naa_id;             /* 60-bit stable id for VPD 0x83 NAA type 6 (low bits) */
	const char *target_name;     /* target IQN, for VPD 0x83 SCSI name designator */
};

struct scsi_lu;
struct scsi_target;

/* Create/destroy a target: a set of LUs addressed by LUN. */
struct scsi_target *scsi_target_new(void);
/* Frees the target and every LU attached to it (not the backends). */
void scsi_target_free(struct scsi_target *t);
/* Create an LU from cfg and attach it at lun.  Returns 0 or -errno. */
int scsi_target_add_lu(struct scsi_target *t, uint64_t lun, const struct scsi_lu_config *cfg);

/*
 * Execute one command.  Always completes: every error is reported through
 * cmd->status/sense.  Handles REPORT LUNS, INQUIRY/REQUEST SENSE for an
 * absent LUN (a removed one included), and dispatches the rest to the LU,
 * which stays in use until this returns - or, for a deferred read, until
 * scsi_cmd_release().
 */
void scsi_target_exec(struct scsi_target *t, struct scsi_cmd *cmd);

/*
 * Data-In of a deferred read (cmd->data_lu set).  The transport calls
 * scsi_cmd_data_begin() before the first piece and scsi_cmd_data_end()
 * with what begin returned after the last, whatever happened: in between
 * the LU's io_lock is held shared, so the whole read is atomic against
 * COMPARE AND WRITE, ORWRITE and WRITE ATOMIC as a READ done at once is
 * (ordinary reads and writes are not held up).
 *
 * Each piece: len bytes from byte pos of the command's data.  _splice moves them into the pipe pipe_wr by
 * reference (backend splice_read: the pipe must have room; on any error
 * the pipe may hold part and the caller falls back to _read).  _read
 * returns them in a new malloc()ed buffer (the caller frees it), or NULL
 * after turning cmd into a CHECK CONDITION (MEDIUM ERROR when the medium
 * failed, logged; HARDWARE ERROR without memory; data_lu cleared): the
 * transport then sends that status instead of the rest.
 */
struct scsi_lu *scsi_cmd_data_begin(struct scsi_cmd *cmd);
/*
 * The transport is done with cmd (its result sent, or dropped unsent):
 * lets go of the LU a deferred read kept in use, so scsi_target_remove_lu
 * may proceed.  Call it once after every scsi_target_exec() of a command
 * that may have been deferred (after scsi_cmd_data_end); harmless
 * otherwise, and idempotent.
 */
void scsi_cmd_release(struct scsi_cmd *cmd);
void scsi_cmd_data_end(struct scsi_lu *lu);
int scsi_cmd_data_splice(struct scsi_cmd *cmd, int pipe_wr, uint32_t pos, uint32_t len);
uint8_t *scsi_cmd_data_read(struct scsi_cmd *cmd, uint32_t pos, uint32_t len);

/* A session logged in (new nexus).  Sets up per-nexus state (e.g. a
 * POWER ON unit attention is NOT raised; see docs/conformance.md). */
void scsi_target_nexus_new(struct scsi_target *t, const struct scsi_nexus *n);
/* A session ended: drop its SPC-2 RESERVE and per-nexus state.  Persistent
 * reservations survive, as SPC requires. */
void scsi_target_nexus_gone(struct scsi_target *t, const struct scsi_nexus *n);

/* Task management effects on the SCSI side (the transport aborts its own
 * queued tasks itself).  Each returns a TMF response code:
 * 0 = function complete, 5 = not supported, 1 = LUN does not exist. */
int scsi_target_lun_reset(struct scsi_target *t, uint64_t lun, const struct scsi_nexus *by);
int scsi_target_reset(struct scsi_target *t, const struct scsi_nexus *by, bool cold);
/* CLEAR TASK SET / ABORT TASK SET side effects (unit attention for other
 * nexuses where TST/TAS say so). */
void scsi_target_task_set_cleared(struct scsi_target *t, uint64_t lun, const struct scsi_nexus *by);

/*
 * Data-Out bytes the command in cdb will consume, at most edtl: the
 * transport solicits only these and reports the rest as a residual.
 * Returns edtl for commands it does not know.
 */
uint32_t scsi_target_data_out_len(struct scsi_target *t, uint64_t lun, const uint8_t *cdb,
				  unsigned cdb_len, uint32_t edtl);

/*
 * The 8-byte SAM LUN field <-> a flat LUN number.  Decoding accepts
 * single-level peripheral (bus 0) and flat space addressing; anything else
 * is UINT64_MAX, a LUN that does not exist.  Encoding takes lun < 16384.
 */
uint64_t scsi_lun_decode(const uint8_t *p);
void scsi_lun_encode(uint8_t *p, uint64_t lun);

/*
 * Remove the LU at lun while commands may run (an extra disk taken from
 * an online PC, lab/xdisk.h): from now on no new command reaches it (it
 * is an absent LUN), the commands already on it - deferred reads
 * included - finish first (this waits for them), then it is freed (not
 * its backend, which the caller may close once this returns).  0 or
 * -ENOENT.
 */
int scsi_target_remove_lu(struct scsi_target *t, uint64_t lun);
/*
 * The LU inventory changed while sessions are logged in (an LU added or
 * removed): every nexus of t gets the unit attention REPORTED LUNS DATA
 * HAS CHANGED (ASC 3Fh, ASCQ 0Eh) on each LU it can reach, reported once
 * (SPC-4 6.33: an initiator then sends REPORT LUNS again).
 */
void scsi_target_luns_changed(struct scsi_target *t);

/* Does this LUN exist? */
bool scsi_target_has_lun(struct scsi_target *t, uint64_t lun);

#endif
