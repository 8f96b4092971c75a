/*
 * ua.c - unit attention conditions (SAM-5 5.14, SPC-4 7.5.x).
 *
 * A unit attention belongs to one I_T nexus and one LU.  They live in the
 * per-nexus state the target keeps for every logged-in session, so a
 * nexus that logs out loses its pending conditions, and a new one starts
 * with none (we deliberately raise no POWER ON at login; see
 * docs/conformance.md).  All functions take target->lock themselves.
 */
#include "scsi/scsi_int.h"

/* Find the state of nexus id; caller holds t->lock.  NULL if unknown. */
struct scsi_nexus_state *ua_find(struct scsi_target *t, uint64_t id)
{
	for (struct scsi_nexus_state *s = t->nexuses; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

/* Queue asc for one nexus and LU slot; a duplicate is not queued twice,
 * and a full queue drops the oldest condition.  Caller holds t->lock. */
static void ua_push(struct scsi_nexus_state *s, unsigned slot, uint16_t asc)
{
	unsigned n = s->ua_count[slot];

	for (unsigned i = 0; i < n; i++)
		if (s->ua[slot][i] == asc)
			return;
	if (n == UA_QUEUE_MAX) {
		memmove(&s->ua[slot][0], &s->ua[slot][1], (UA_QUEUE_MAX - 1) * sizeof(uint16_t));
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

/* Raise asc on every LU for every nexus except `except`. */
void ua_raise_all_luns(struct scsi_target *t, const struct scsi_nexus *except, uint16_t asc)
{
	for (unsigned i = 0; i < SCSI_MAX_LUNS; i++)
		if (target_lu_at(t, i))
			ua_raise_all(t, i, except, asc);
}

/* Remove and return the oldest unit attention of (n, slot). */
bool ua_pop(struct scsi_target *t, unsigned slot, const struct scsi_nexus *n, uint16_t *asc)
{
	bool found = false;

	if (!n)
		return false;
	pthread_mutex_lock(&t->lock);
	struct scsi_nexus_state *s = ua_find(t, n->id);
	if (s && s->ua_count[slot]) {
		*asc = s->ua[slot][0];
		memmove(&s->ua[slot][0], &s->ua[slot][1], (UA_QUEUE_MAX - 1) * sizeof(uint16_t));
		s->ua_count[slot]--;
		found = true;
	}
	pthread_mutex_unlock(&t->lock);
	return found;
}
