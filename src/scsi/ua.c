/*
 * ua.c - unit attention conditions (SAM-5 5.14, SPC-4 7.5.x).
 *
 * A unit attention belongs to one I_T nexus and one LU.  They live in the
 * per-nexus state the target keeps for every logged-in session, so a
 * nexus that logs out loses its pending conditions, and a new one starts
 * with none (we deliberately raise no POWER ON at login; see
 * docs/conformance.md).  All functions but ua_pop_locked take
 * target->lock themselves.
 *
 * Each (nexus, LU) keeps a short queue: a condition already pending is
 * not queued again, so it is reported once however often it was raised
 * (e.g. REPORTED LUNS DATA HAS CHANGED after two LUs were added).  The
 * reset class (ASC 29h: power on, resets, nexus loss) is reported before
 * the others, as SAM-5's precedence of unit attentions has it; within a
 * class the oldest first.
 */
#include <strings.h>

#include "scsi/scsi_int.h"

/* Find the state of nexus id; caller holds t->lock.  NULL if unknown. */
struct scsi_nexus_state *ua_find(struct scsi_target *t, uint64_t id)
{
	for (struct scsi_nexus_state *s = t->nexuses; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

/* Precedence of a condition: 0 (the reset class, reported first) or 1. */
static int ua_rank(uint16_t asc)
{
	return (asc >> 8) == 0x29 ? 0 : 1;
}

/* Remove entry i of (s, slot)'s queue.  Caller holds t->lock. */
static void ua_drop(struct scsi_nexus_state *s, unsigned slot, unsigned i)
{
	memmove(&s->ua[slot][i], &s->ua[slot][i + 1], (UA_QUEUE_MAX - 1 - i) * sizeof(uint16_t));
	s->ua_count[slot]--;
}

/* Queue asc for one nexus and LU slot; a duplicate is not queued twice,
 * and a full queue drops its oldest condition of the lowest precedence
 * (a reset is never lost to a flood of lesser news).  Caller holds
 * t->lock. */
static void ua_push(struct scsi_nexus_state *s, unsigned slot, uint16_t asc)
{
	unsigned n = s->ua_count[slot];

	for (unsigned i = 0; i < n; i++)
		if (s->ua[slot][i] == asc)
			return;
	if (n == UA_QUEUE_MAX) {
		unsigned victim = 0;
		for (unsigned i = 0; i < n; i++)
			if (ua_rank(s->ua[slot][i]) > ua_rank(s->ua[slot][victim]))
				victim = i;
		ua_drop(s, slot, victim);
		n--;
	}
	s->ua[slot][n] = asc;
	s->ua_count[slot] = n + 1;
}

/* Raise asc on LU slot for every nexus except `except` (may be NULL). */
void ua_raise_all(struct scsi_target *t, unsigned slot, const struct scsi_nexus *except, uint16_t asc)
{
	pthread_mutex_lock(&t->lock);
	for (struct scsi_nexus_state *s = t->nexuses; s; s = s->next)
		if (!except || s->id != except->id)
			ua_push(s, slot, asc);
	pthread_mutex_unlock(&t->lock);
}

/* Raise asc on LU slot for every nexus whose initiator port is port_name. */
void ua_raise_port(struct scsi_target *t, unsigned slot, const char *port_name, uint16_t asc)
{
	pthread_mutex_lock(&t->lock);
	for (struct scsi_nexus_state *s = t->nexuses; s; s = s->next)
		if (strcmp(s->port_name, port_name) == 0)
			ua_push(s, slot, asc);
	pthread_mutex_unlock(&t->lock);
}

/* Raise asc on every live LU for every nexus but except (NULL: none)
 * and, with skip_ipxe, iPXE's - in one critical section: an LU added or
 * removed meanwhile is either told or not there. */
static void raise_live_luns(struct scsi_target *t, const struct scsi_nexus *except,
			    bool skip_ipxe, uint16_t asc)
{
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < SCSI_MAX_LUNS; i++) {
		if (!lu_live(t->lus[i]))
			continue;
		for (struct scsi_nexus_state *s = t->nexuses; s; s = s->next)
			if ((!except || s->id != except->id) && !(skip_ipxe && s->ipxe))
				ua_push(s, i, asc);
	}
	pthread_mutex_unlock(&t->lock);
}

/* Raise asc on every live LU for every nexus except `except`. */
void ua_raise_all_luns(struct scsi_target *t, const struct scsi_nexus *except, uint16_t asc)
{
	raise_live_luns(t, except, false, asc);
}

/*
 * See scsi_int.h.  iPXE's initiator sends ISID 40h 00h 27h 23h + a random
 * qualifier: type 01b (IANA enterprise number), number 10019.  It fails a
 * READ or WRITE that ends in CHECK CONDITION (only its first TEST UNIT
 * READY is retried) and never sends REPORT LUNS after the first: a unit
 * attention on the boot LU would fail the BIOS or boot loader reading
 * through it, for news it has no use for.
 */
bool ua_port_is_ipxe(const char *port_name)
{
	const char *isid = strstr(port_name, ",i,0x");

	return isid && strncasecmp(isid + 5, "40002723", 8) == 0 && strlen(isid + 5) == 12;
}

/* See scsi_int.h. */
void ua_luns_changed(struct scsi_target *t)
{
	raise_live_luns(t, NULL, true, ASC_REPORTED_LUNS_CHANGED);
}

/* Remove and return the unit attention of (n, slot) to report now: the
 * oldest of the highest precedence.  Caller holds t->lock. */
bool ua_pop_locked(struct scsi_target *t, unsigned slot, const struct scsi_nexus *n,
		   uint16_t *asc)
{
	struct scsi_nexus_state *s = n ? ua_find(t, n->id) : NULL;

	if (!s || !s->ua_count[slot])
		return false;
	unsigned pick = 0;
	for (unsigned i = 1; i < s->ua_count[slot]; i++)
		if (ua_rank(s->ua[slot][i]) < ua_rank(s->ua[slot][pick]))
			pick = i;
	*asc = s->ua[slot][pick];
	ua_drop(s, slot, pick);
	return true;
}

/* ua_pop_locked, taking t->lock. */
bool ua_pop(struct scsi_target *t, unsigned slot, const struct scsi_nexus *n, uint16_t *asc)
{
	bool found;

	if (!n)
		return false;
	pthread_mutex_lock(&t->lock);
	found = ua_pop_locked(t, slot, n, asc);
	pthread_mutex_unlock(&t->lock);
	return found;
}
