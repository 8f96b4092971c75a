/*
 * bootrec.c - recording one boot: the chunks a PC reads, in the order it
 * first reads them (bootrec.h is the contract).
 *
 * State: idle (active false, nothing allocated) or recording (active
 * true, seen and hits allocated, under mu).  active is written only under
 * mu; bootrec_note reads it once without the lock so that the data path
 * pays one relaxed load while idle, and again under mu, since the
 * recording may have ended in between.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/bootrec.h"

#define BOOTREC_FIRST_CAP 1024u

/* Free what a recording holds and go idle; mu held. */
static void rec_drop(struct bootrec *r)
{
	free(r->seen);
	free(r->hits);
	r->seen = NULL;
	r->hits = NULL;
	r->n = r->cap = 0;
	atomic_store_explicit(&r->active, false, memory_order_relaxed);
}

/* See bootrec.h. */
void bootrec_init(struct bootrec *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	atomic_init(&r->active, false);
}

/* See bootrec.h. */
void bootrec_destroy(struct bootrec *r)
{
	bootrec_cancel(r);
	pthread_mutex_destroy(&r->mu);
}

/* See bootrec.h. */
int bootrec_start(struct bootrec *r, unsigned version, uint64_t disk_size, uint32_t max_chunks,
		  int64_t now_ns)
{
	uint64_t chunks = disk_size / BOOTSET_CHUNK + (disk_size % BOOTSET_CHUNK != 0);
	uint32_t cap = max_chunks < BOOTREC_FIRST_CAP ? max_chunks : BOOTREC_FIRST_CAP;
	uint8_t *seen = NULL;
	struct bootset_hit *hits = NULL;
	int rc = 0;

	/* a chunk number is 32 bits */
	if (max_chunks < 1 || max_chunks > BOOTSET_MAX_CHUNKS_LIMIT || chunks == 0 ||
	    chunks > (uint64_t)UINT32_MAX + 1)
		rc = -EINVAL;
	if (!rc) {
		seen = calloc(1, (size_t)((chunks + 7) / 8));
		hits = malloc((size_t)cap * sizeof(*hits));
		if (!seen || !hits)
			rc = -ENOMEM;
	}
	pthread_mutex_lock(&r->mu);
	rec_drop(r);
	if (!rc) {
		r->seen = seen;
		r->hits = hits;
		r->cap = cap;
		r->n = 0;
		r->version = version;
		r->disk_size = disk_size;
		r->max_chunks = max_chunks;
		r->start_ns = r->last_new_ns = now_ns;
		r->hold = true;
		atomic_store_explicit(&r->active, true, memory_order_relaxed);
		seen = NULL;
		hits = NULL;
	}
	pthread_mutex_unlock(&r->mu);
	free(seen);
	free(hits);
	return rc;
}

/* ms from the start to now_ns, 0 before it, saturated. */
static uint32_t since_ms(int64_t start_ns, int64_t now_ns)
{
	int64_t ms = (now_ns - start_ns) / 1000000;

	if (now_ns <= start_ns)
		return 0;
	return ms > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* See bootrec.h. */
void bootrec_note(struct bootrec *r, uint64_t off, uint64_t len, int64_t now_ns)
{
	uint64_t first, last;

	if (!atomic_load_explicit(&r->active, memory_order_relaxed))
		return;
	if (len == 0)
		return;
	pthread_mutex_lock(&r->mu);
	if (!atomic_load_explicit(&r->active, memory_order_relaxed) || off >= r->disk_size)
		goto out;
	if (len > r->disk_size - off)
		len = r->disk_size - off;
	first = off / BOOTSET_CHUNK;
	last = (off + len - 1) / BOOTSET_CHUNK;
	for (uint64_t c = first; c <= last && r->n < r->max_chunks; c++) {
		uint8_t bit = (uint8_t)(1u << (c % 8));
		if (r->seen[c / 8] & bit)
			continue;
		if (r->n == r->cap) {
			uint32_t cap = r->cap > r->max_chunks / 2 ? r->max_chunks : r->cap * 2;
			struct bootset_hit *h = realloc(r->hits, (size_t)cap * sizeof(*h));
			if (!h)
				break;        /* not noted: a later read may note it */
			r->hits = h;
			r->cap = cap;
		}
		r->seen[c / 8] |= bit;
		r->hits[r->n++] = (struct bootset_hit){ (uint32_t)c, since_ms(r->start_ns, now_ns) };
		if (now_ns > r->last_new_ns)
			r->last_new_ns = now_ns;
	}
out:
	pthread_mutex_unlock(&r->mu);
}

/* See bootrec.h. */
bool bootrec_active(struct bootrec *r)
{
	return atomic_load_explicit(&r->active, memory_order_relaxed);
}

/* See bootrec.h. */
bool bootrec_due(struct bootrec *r, int64_t now_ns)
{
	bool due = false;

	if (!atomic_load_explicit(&r->active, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&r->mu);
	if (atomic_load_explicit(&r->active, memory_order_relaxed))
		due = (!r->hold && now_ns - r->last_new_ns >= BOOTREC_SETTLE_NS) ||
		      now_ns - r->start_ns >= BOOTREC_MAX_NS || r->n >= r->max_chunks;
	pthread_mutex_unlock(&r->mu);
	return due;
}

/* See bootrec.h. */
void bootrec_release(struct bootrec *r, int64_t now_ns)
{
	if (!atomic_load_explicit(&r->active, memory_order_relaxed))
		return;
	pthread_mutex_lock(&r->mu);
	if (atomic_load_explicit(&r->active, memory_order_relaxed) && r->hold) {
		r->hold = false;
		if (now_ns > r->last_new_ns)
			r->last_new_ns = now_ns;
	}
	pthread_mutex_unlock(&r->mu);
}

/* See bootrec.h. */
int bootrec_finish(struct bootrec *r, struct bootset_hit **hits, uint32_t *n, unsigned *version)
{
	int rc = 0;

	*hits = NULL;
	*n = 0;
	pthread_mutex_lock(&r->mu);
	if (!atomic_load_explicit(&r->active, memory_order_relaxed)) {
		rc = -ENOENT;
	} else {
		*n = r->n;
		*version = r->version;
		if (r->n) {
			*hits = r->hits;
			r->hits = NULL;
		}
		rec_drop(r);
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* See bootrec.h. */
void bootrec_cancel(struct bootrec *r)
{
	pthread_mutex_lock(&r->mu);
	rec_drop(r);
	pthread_mutex_unlock(&r->mu);
}
