/*
 * target.c - a SCSI target: LUs addressed by LUN, command dispatch,
 * REPORT LUNS, nexus bookkeeping and task-management side effects.
 *
 * Dispatch order for a command to an existing LU follows SAM-5: look the
 * opcode up, report a pending unit attention (except for INQUIRY, REPORT
 * LUNS and REQUEST SENSE), reject unknown opcodes, check reservations,
 * then run the handler.
 *
 * LUs come and go while sessions run (a PC's extra disks, lab/xdisk.h).
 * An LU's life:
 *
 *   live     in its slot, found by LUN; every command takes a reference
 *            (refs, under lock) and drops it when done - a deferred read
 *            when the transport calls scsi_cmd_release
 *   gone     scsi_target_remove_lu marked it: no new command finds it (an
 *            absent LUN), its slot stays taken; the remover waits on
 *            drained until refs is 0
 *   freed    the remover empties the slot and its UA queues, frees it
 *
 * The hot path's cost: the increment under the lock the lookup takes
 * anyway, and one decrement (plus a load of t->removing) without it;
 * the lookup also pops the command's unit attention, so a command takes
 * t->lock once where it took it twice before (find_lu_ua).
 *
 * A remover may wait as long as a command holds its LU - a streamed
 * read until its last Data-In went out (at most the transport's send
 * timeout for a peer that stopped reading) - so it must not hold
 * anything such a command needs to finish.
 */
#include <errno.h>
#include <stdio.h>

#include "scsi/scsi_int.h"
#include "util/log.h"

/* Allocate an empty target.  Returns NULL when out of memory. */
struct scsi_target *scsi_target_new(void)
{
	struct scsi_target *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->drained, NULL);
	return t;
}

/* Free one LU (not its backend). */
static void lu_free(struct scsi_lu *lu)
{
	pthread_mutex_destroy(&lu->mode_lock);
	pthread_mutex_destroy(&lu->pr_lock);
	pthread_rwlock_destroy(&lu->io_lock);
	free(lu);
}

/* Free t, its LUs and its nexus states; backends stay with their owner.
 * Nothing may use t any more (no command, no removal under way). */
void scsi_target_free(struct scsi_target *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < SCSI_MAX_LUNS; i++)
		if (t->lus[i])
			lu_free(t->lus[i]);
	struct scsi_nexus_state *s = t->nexuses;
	while (s) {
		struct scsi_nexus_state *next = s->next;
		free(s);
		s = next;
	}
	pthread_cond_destroy(&t->drained);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Copy src into dst (size n) space-free; NULL becomes def. */
static void copy_str(char *dst, size_t n, const char *src, const char *def)
{
	snprintf(dst, n, "%s", src ? src : def);
}

/* The live LU at lun, or NULL.  t->lock held. */
static struct scsi_lu *live_lu_locked(struct scsi_target *t, uint64_t lun)
{
	for (unsigned i = 0; i < SCSI_MAX_LUNS; i++)
		if (lu_live(t->lus[i]) && t->lus[i]->lun == lun)
			return t->lus[i];
	return NULL;
}

/*
 * Create an LU from cfg at lun.  Validates the block size and that the
 * backend holds at least one block.  Returns 0, -EINVAL, -EEXIST,
 * -ENOSPC (all slots used, those of LUs still being removed included) or
 * -ENOMEM.  Sessions logged in are not told: scsi_target_luns_changed.
 */
int scsi_target_add_lu(struct scsi_target *t, uint64_t lun, const struct scsi_lu_config *cfg)
{
	int slot = -1, rc = 0;

	if (!cfg || !cfg->be || lun > 16383 ||
	    (cfg->block_size != 512 && cfg->block_size != 4096))
		return -EINVAL;
	if (cfg->be->size < cfg->block_size)
		return -EINVAL;
	/* aligned: refs has a cache line of its own (scsi_int.h) */
	struct scsi_lu *lu = aligned_alloc(_Alignof(struct scsi_lu), sizeof(*lu));
	if (!lu)
		return -ENOMEM;
	memset(lu, 0, sizeof(*lu));
	lu->target = t;
	lu->lun = lun;
	lu->be = cfg->be;
	lu->block_size = cfg->block_size;
	lu->block_shift = cfg->block_size == 4096 ? 12 : 9;
	lu->nblocks = cfg->be->size >> lu->block_shift;
	lu->read_only = cfg->read_only || cfg->be->read_only;
	copy_str(lu->vendor, sizeof(lu->vendor), cfg->vendor, "PRISTINE");
	copy_str(lu->product, sizeof(lu->product), cfg->product, "pristine disk");
	copy_str(lu->revision, sizeof(lu->revision), cfg->revision, "0001");
	copy_str(lu->serial, sizeof(lu->serial), cfg->serial, "0");
	copy_str(lu->target_name, sizeof(lu->target_name), cfg->target_name, "");
	lu->naa_id = cfg->naa_id;
	lu->wce = true;
	pthread_mutex_init(&lu->mode_lock, NULL);
	pthread_mutex_init(&lu->pr_lock, NULL);
	pthread_rwlock_init(&lu->io_lock, NULL);

	/* Duplicate check, slot choice and insertion in one critical
	 * section, so concurrent additions cannot collide. */
	pthread_mutex_lock(&t->lock);
	if (live_lu_locked(t, lun))
		rc = -EEXIST;
	for (unsigned i = 0; i < SCSI_MAX_LUNS && slot < 0; i++)
		if (!t->lus[i])
			slot = (int)i;
	if (rc == 0 && slot < 0)
		rc = -ENOSPC;
	if (rc == 0) {
		lu->slot = (unsigned)slot;
		t->lus[slot] = lu;
	}
	pthread_mutex_unlock(&t->lock);
	if (rc < 0)
		lu_free(lu);
	return rc;
}

/* See scsi_int.h.  The increment is under the lock, so a remover that
 * marked the LU gone (under the same lock) sees every reference. */
struct scsi_lu *target_lu_get(struct scsi_target *t, unsigned i)
{
	struct scsi_lu *lu = NULL;

	pthread_mutex_lock(&t->lock);
	if (i < SCSI_MAX_LUNS && lu_live(t->lus[i])) {
		lu = t->lus[i];
		atomic_fetch_add(&lu->refs, 1);
	}
	pthread_mutex_unlock(&t->lock);
	return lu;
}

/*
 * See scsi_int.h.  t is read before the decrement: once refs is 0 the
 * remover may free lu at any moment.  A remover raises t->removing
 * before it reads refs, so either it sees this decrement or this sees
 * it waiting (both sequentially consistent) and wakes it under the lock.
 */
void lu_put(struct scsi_lu *lu)
{
	struct scsi_target *t = lu->target;

	if (atomic_fetch_sub(&lu->refs, 1) == 1 && atomic_load(&t->removing)) {
		pthread_mutex_lock(&t->lock);
		pthread_cond_broadcast(&t->drained);
		pthread_mutex_unlock(&t->lock);
	}
}

/*
 * The live LU at lun with a reference taken (lu_put it), or NULL.  With
 * ua_of set, also pops the unit attention that nexus has to be told on
 * it into *ua (0: none) in the same critical section - one lock round
 * per command.
 */
static struct scsi_lu *find_lu_ua(struct scsi_target *t, uint64_t lun,
				  const struct scsi_nexus *ua_of, uint16_t *ua)
{
	struct scsi_lu *found;

	pthread_mutex_lock(&t->lock);
	found = live_lu_locked(t, lun);
	if (found)
		atomic_fetch_add(&found->refs, 1);
	if (ua) {
		*ua = 0;            /* no condition has ASC/ASCQ 0 */
		if (found && ua_of)
			ua_pop_locked(t, found->slot, ua_of, ua);
	}
	pthread_mutex_unlock(&t->lock);
	return found;
}

/* The live LU at lun with a reference taken (lu_put it), or NULL. */
static struct scsi_lu *find_lu(struct scsi_target *t, uint64_t lun)
{
	return find_lu_ua(t, lun, NULL, NULL);
}

/* See scsi.h. */
bool scsi_target_has_lun(struct scsi_target *t, uint64_t lun)
{
	bool found;

	pthread_mutex_lock(&t->lock);
	found = live_lu_locked(t, lun) != NULL;
	pthread_mutex_unlock(&t->lock);
	return found;
}

/*
 * See scsi.h.  Marks the LU gone under the lock (from then on find_lu
 * skips it), waits for its references, then empties its slot and the
 * slot's per-nexus state - pending unit attentions, PREVENT - so an LU
 * added there later starts clean, and frees it.
 */
int scsi_target_remove_lu(struct scsi_target *t, uint64_t lun)
{
	struct scsi_lu *lu;

	pthread_mutex_lock(&t->lock);
	lu = live_lu_locked(t, lun);
	if (!lu) {
		pthread_mutex_unlock(&t->lock);
		return -ENOENT;
	}
	lu->gone = true;
	atomic_fetch_add(&t->removing, 1);
	while (atomic_load(&lu->refs) > 0)
		pthread_cond_wait(&t->drained, &t->lock);
	atomic_fetch_sub(&t->removing, 1);
	t->lus[lu->slot] = NULL;
	for (struct scsi_nexus_state *s = t->nexuses; s; s = s->next) {
		s->ua_count[lu->slot] = 0;
		s->prevent[lu->slot] = false;
	}
	pthread_mutex_unlock(&t->lock);
	lu_free(lu);
	return 0;
}

/* See scsi.h: one REPORTED LUNS DATA HAS CHANGED per nexus and live LU
 * (ua.c queues a condition already pending only once) - but for iPXE's
 * nexuses, which a unit attention would only break (ua.c). */
void scsi_target_luns_changed(struct scsi_target *t)
{
	ua_luns_changed(t);
}

/*
 * Attach buf (malloc()ed, len valid bytes; ownership passes to cmd) as the
 * command's Data-In, cut to the CDB's allocation length and to EDTL.
 */
void scsi_data_in(struct scsi_cmd *cmd, uint8_t *buf, uint32_t len, uint32_t alloc_len)
{
	uint32_t n = len < alloc_len ? len : alloc_len;

	cmd->xfer_len = n;
	if (n > cmd->edtl)
		n = cmd->edtl;
	free(cmd->data_in);
	if (n == 0) {
		free(buf);
		buf = NULL;
	}
	cmd->data_in = buf;
	cmd->data_in_len = n;
}

/* Zeroed buffer for a response; on failure completes cmd with an error. */
uint8_t *scsi_alloc(struct scsi_lu *lu, struct scsi_cmd *cmd, size_t len)
{
	uint8_t *p = calloc(1, len ? len : 1);

	if (!p)
		scsi_sense(lu, cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
	return p;
}

/*
 * REPORT LUNS (SPC-4 6.33).  Select reports 0x00, 0x01 (well-known: none
 * here), 0x02 (all) and 0x10-0x12 are accepted; others are an invalid field.
 */
void spc_report_luns(struct scsi_target *t, struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint8_t sel = cdb[2];
	uint32_t alloc = get_be32(cdb + 6);

	if (sel != 0x00 && sel != 0x01 && sel != 0x02 && (sel < 0x10 || sel > 0x12)) {
		scsi_bad_cdb(NULL, cmd, 2, -1);
		return;
	}
	if (alloc < 16) {
		scsi_bad_cdb(NULL, cmd, 6, -1);
		return;
	}
	uint8_t *buf = scsi_alloc(NULL, cmd, 8 + 8 * SCSI_MAX_LUNS);
	if (!buf)
		return;
	uint32_t n = 0;
	if (sel != 0x01 && sel != 0x11) {
		pthread_mutex_lock(&t->lock);
		for (unsigned i = 0; i < SCSI_MAX_LUNS; i++)
			if (lu_live(t->lus[i]))
				scsi_lun_encode(buf + 8 + 8 * n++, t->lus[i]->lun);
		pthread_mutex_unlock(&t->lock);
	}
	put_be32(buf, 8 * n);
	cmd->status = SAM_STAT_GOOD;
	scsi_data_in(cmd, buf, 8 + 8 * n, alloc);
}

/* A command addressed to a LUN that has no LU (SPC-4 4.6.x, SAM-5), or
 * whose LU is removed or being removed. */
static void exec_no_lu(struct scsi_target *t, struct scsi_cmd *cmd)
{
	switch (cmd->cdb[0]) {
	case 0x12:
		spc_inquiry_no_lu(cmd);
		return;
	case 0x03: {
		uint8_t alloc = cmd->cdb[4];
		uint8_t *buf = scsi_alloc(NULL, cmd, 32);
		if (!buf)
			return;
		uint32_t len = scsi_sense_build(buf, cmd->cdb[1] & 1, SK_ILLEGAL_REQUEST,
						ASC_LUN_NOT_SUPPORTED, NULL);
		cmd->status = SAM_STAT_GOOD;
		scsi_data_in(cmd, buf, len, alloc);
		return;
	}
	default:
		scsi_sense(NULL, cmd, SK_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
	}
}

/* Run cmd on lu (a reference held; ua the unit attention find_lu_ua
 * popped for it, 0 if none): opcode, reservations, then the handler. */
static void exec_lu(struct scsi_lu *lu, const struct scsi_opdesc *op, bool bad_sa, uint16_t ua,
		    struct scsi_cmd *cmd)
{
	if (ua) {
		scsi_sense(lu, cmd, SK_UNIT_ATTENTION, ua);
		return;
	}
	if (!op) {
		if (bad_sa)
			scsi_bad_cdb(lu, cmd, 1, 4);
		else
			scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return;
	}
	if (cmd->cdb_len < op->cdb_len) {
		scsi_sense(lu, cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return;
	}
	if (pr_check_conflict(lu, cmd, op))
		return;
	if (scsi_op_check_reserved(lu, cmd, op))
		return;
	op->handler(lu, cmd);
}

/* Execute one command; see scsi.h. */
void scsi_target_exec(struct scsi_target *t, struct scsi_cmd *cmd)
{
	static const uint8_t zero_cdb[16];

	cmd->status = SAM_STAT_GOOD;
	cmd->sense_len = 0;
	cmd->data_in = NULL;
	cmd->data_in_len = 0;
	cmd->data_lu = NULL;
	cmd->held_lu = NULL;
	cmd->xfer_len = 0;
	if (!cmd->cdb || cmd->cdb_len < 6) {
		if (!cmd->cdb)
			cmd->cdb = zero_cdb;
		scsi_sense(NULL, cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return;
	}
	if (cmd->cdb[0] == 0xa0) {
		spc_report_luns(t, cmd);
		return;
	}
	bool bad_sa = false;
	const struct scsi_opdesc *op = scsi_op_lookup(cmd->cdb, &bad_sa);
	uint16_t ua;
	/* INQUIRY, REPORT LUNS and REQUEST SENSE leave a unit attention
	 * pending; everything else, unknown opcodes included, reports it. */
	struct scsi_lu *lu = find_lu_ua(t, cmd->lun, op && op->ua_exempt ? NULL : cmd->nexus, &ua);
	if (!lu) {
		exec_no_lu(t, cmd);
		return;
	}
	exec_lu(lu, op, bad_sa, ua, cmd);
	/* A deferred read (data_lu is lu) keeps lu until scsi_cmd_release. */
	if (cmd->data_lu)
		cmd->held_lu = lu;
	else
		lu_put(lu);
}

/* See scsi.h. */
void scsi_cmd_release(struct scsi_cmd *cmd)
{
	if (cmd->held_lu) {
		lu_put(cmd->held_lu);
		cmd->held_lu = NULL;
	}
}

/* A session logged in: give it an empty per-nexus state. */
void scsi_target_nexus_new(struct scsi_target *t, const struct scsi_nexus *n)
{
	struct scsi_nexus_state *s = calloc(1, sizeof(*s));

	if (!s) {
		log_err("scsi: out of memory for nexus state");
		return;
	}
	s->id = n->id;
	snprintf(s->port_name, sizeof(s->port_name), "%s", n->port_name);
	snprintf(s->initiator_name, sizeof(s->initiator_name), "%s", n->initiator_name);
	s->ipxe = ua_port_is_ipxe(n->port_name);
	pthread_mutex_lock(&t->lock);
	s->next = t->nexuses;
	t->nexuses = s;
	pthread_mutex_unlock(&t->lock);
}

/* A session ended: forget its state and its SPC-2 reservations. */
void scsi_target_nexus_gone(struct scsi_target *t, const struct scsi_nexus *n)
{
	pthread_mutex_lock(&t->lock);
	for (struct scsi_nexus_state **pp = &t->nexuses; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == n->id) {
			struct scsi_nexus_state *s = *pp;
			*pp = s->next;
			free(s);
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; i < SCSI_MAX_LUNS; i++) {
		struct scsi_lu *lu = target_lu_get(t, i);
		if (lu) {
			pr_drop_reserve(lu, n->port_name);
			lu_put(lu);
		}
	}
}

/* Reset one LU's volatile state: SPC-2 reservation and PREVENT. */
static void lu_reset(struct scsi_target *t, struct scsi_lu *lu)
{
	pr_drop_reserve(lu, NULL);
	pthread_mutex_lock(&t->lock);
	for (struct scsi_nexus_state *s = t->nexuses; s; s = s->next)
		s->prevent[lu->slot] = false;
	pthread_mutex_unlock(&t->lock);
}

/* LOGICAL UNIT RESET: clear the LU's volatile state and raise BUS DEVICE
 * RESET FUNCTION OCCURRED for every nexus, the issuer's included
 * (SAM-5 6.3; libiscsi's MultipathIO.Reset checks every path). */
int scsi_target_lun_reset(struct scsi_target *t, uint64_t lun, const struct scsi_nexus *by)
{
	struct scsi_lu *lu = find_lu(t, lun);

	if (!lu)
		return 1;
	lu_reset(t, lu);
	(void)by;
	ua_raise_all(t, lu->slot, NULL, ASC_DEVICE_RESET);
	lu_put(lu);
	return 0;
}

/* TARGET WARM/COLD RESET: every LU as for a LUN reset; the transport drops
 * the sessions itself on a cold reset. */
int scsi_target_reset(struct scsi_target *t, const struct scsi_nexus *by, bool cold)
{
	for (unsigned i = 0; i < SCSI_MAX_LUNS; i++) {
		struct scsi_lu *lu = target_lu_get(t, i);
		if (lu) {
			lu_reset(t, lu);
			lu_put(lu);
		}
	}
	/* Every nexus, the issuer's included (SAM-5 6.3): POWER ON for a
	 * cold reset, POWER ON, RESET, OR BUS DEVICE RESET OCCURRED for a
	 * warm one (what libiscsi's Reserve6.TargetWarmReset tolerates). */
	(void)by;
	ua_raise_all_luns(t, NULL, cold ? ASC_POWER_ON_OCCURRED : ASC_POWER_ON);
	return 0;
}

/* CLEAR/ABORT TASK SET: our tasks run to completion before the transport
 * sees the TMF, and the control page reports TST=0 with TAS=0, so no
 * other nexus has anything to be told. */
void scsi_target_task_set_cleared(struct scsi_target *t, uint64_t lun, const struct scsi_nexus *by)
{
	(void)t;
	(void)lun;
	(void)by;
}
