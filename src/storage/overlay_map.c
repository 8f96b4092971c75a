/*
 * overlay_map.c - the overlay's in-memory block map: a 2-bit state per
 * G-block (ABSENT / PRESENT / ZERO) in a two-level table, plus the set of
 * blocks changed since the last flush.
 *
 * Top level: one pointer per leaf of OVL_LEAF_BLOCKS blocks.  A leaf that
 * was never touched is NULL (all ABSENT); a leaf that was unmapped as a
 * whole is the ZERO sentinel, so "unmap the whole disk" costs no RAM; any
 * other leaf is a 4 KiB array, 4 states per byte, block b at bits
 * 2*(b%4) of byte b/4.  RAM is therefore 4 KiB per leaf touched: 64 KiB
 * per GiB written densely at G=4K, and only the top array (8 bytes per
 * 64 MiB of disk) for an untouched disk.
 *
 * Dirty tracking mirrors this: per leaf NULL, DIRTY_ALL, or a bitmap with
 * one bit per chunk of DIRTY_CHUNK (64) blocks - 32 bytes - that exists
 * only between two flushes.  A flush logs the CURRENT state of every block
 * of a changed chunk; restating blocks that did not change is harmless
 * (their state is what the log or checkpoint already says, and every
 * PRESENT in memory has its data written before the flush syncs `data`),
 * and it keeps the map at its 2 bits per block: 64 KiB of RAM per GiB
 * written, where a bit per block added 32 KiB more (bench/memory.sh).
 *
 * Invariants of the map (asserted in debug builds, see overlay_int.h):
 *  M1  present is the number of PRESENT blocks inside the disk;
 *  M2  no block inside the disk has the unused state 3 (bits past the
 *      disk's end in the last leaf are never read and may hold anything);
 *  M3  leaves_alloc counts the real (allocated) leaves;
 *  M4  dirty_list holds each leaf whose dirty[] is not NULL exactly once,
 *      and dirty_alloc counts the dirty bitmaps (DIRTY_ALL is none);
 *      right after ovl_map_take_dirty nothing is dirty.
 * The counters are checked after every update (cheap bounds); the whole
 * of M1-M4 by ovl_map_check, which walks the map.
 *
 * Nothing here locks; struct overlay's mutex serialises every call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/overlay_int.h"
#include "util/check.h"

/* Sentinels: addresses only, never dereferenced. */
static uint8_t leaf_zero_obj;
static uint64_t dirty_all_obj;
#define LEAF_ZERO (&leaf_zero_obj)
#define DIRTY_ALL (&dirty_all_obj)

#define DIRTY_SHIFT 6                                  /* 64 blocks per dirty bit */
#define DIRTY_CHUNK (1u << DIRTY_SHIFT)
#define DIRTY_BITS  (OVL_LEAF_BLOCKS >> DIRTY_SHIFT)   /* 256 per leaf */
#define DIRTY_WORDS (DIRTY_BITS / 64)

#define PAT_PRESENT 0x5555555555555555ull
#define PAT_ZERO    0xaaaaaaaaaaaaaaaaull

static uint64_t state_pattern(enum ovl_state st)
{
	return st == OVL_PRESENT ? PAT_PRESENT : st == OVL_ZERO ? PAT_ZERO : 0;
}

/* Number of 2-bit fields in word w equal to PRESENT (01). */
static unsigned count_present_word(uint64_t w)
{
	return (unsigned)__builtin_popcountll(w & ~(w >> 1) & PAT_PRESENT);
}

static bool leaf_real(const uint8_t *l)
{
	return l != NULL && l != LEAF_ZERO;
}

/* The counters' bounds (a cheap part of M1-M4), after every update. */
static void assert_counters(const struct ovl_map *m)
{
	PR_ASSERT(m->present <= m->nblocks);
	PR_ASSERT(m->leaves_alloc <= m->nleaves);
	PR_ASSERT(m->ndirty <= m->nleaves && m->ndirty <= m->dirty_cap);
	PR_ASSERT(m->dirty_alloc <= m->ndirty);
}

/* Set up an empty map for nblocks blocks.  Returns 0 or -ENOMEM. */
int ovl_map_init(struct ovl_map *m, uint64_t nblocks)
{
	memset(m, 0, sizeof(*m));
	m->nblocks = nblocks;
	uint64_t nl = (nblocks + OVL_LEAF_BLOCKS - 1) / OVL_LEAF_BLOCKS;
	if (nl > UINT32_MAX)
		return -EFBIG;
	m->nleaves = (uint32_t)nl;
	m->leaf = calloc(nl ? nl : 1, sizeof(*m->leaf));
	m->dirty = calloc(nl ? nl : 1, sizeof(*m->dirty));
	if (!m->leaf || !m->dirty) {
		ovl_map_free(m);
		return -ENOMEM;
	}
	return 0;
}

/* Release everything the map owns; safe on a zeroed or half-built map. */
void ovl_map_free(struct ovl_map *m)
{
	for (uint32_t i = 0; m->leaf && i < m->nleaves; i++)
		if (leaf_real(m->leaf[i]))
			free(m->leaf[i]);
	for (uint32_t i = 0; m->dirty && i < m->nleaves; i++)
		if (m->dirty[i] && m->dirty[i] != DIRTY_ALL)
			free(m->dirty[i]);
	free(m->leaf);
	free(m->dirty);
	free(m->dirty_list);
	memset(m, 0, sizeof(*m));
}

static enum ovl_state leaf_get(const uint8_t *l, uint32_t i)
{
	if (l == NULL)
		return OVL_ABSENT;
	if (l == LEAF_ZERO)
		return OVL_ZERO;
	return (enum ovl_state)((l[i >> 2] >> ((i & 3) * 2)) & 3);
}

/* State of block b (b < nblocks). */
enum ovl_state ovl_map_get(const struct ovl_map *m, uint64_t b)
{
	PR_ASSERT(b < m->nblocks);
	return leaf_get(m->leaf[b / OVL_LEAF_BLOCKS], (uint32_t)(b % OVL_LEAF_BLOCKS));
}

/*
 * Length (1..max) of the run of blocks from b sharing b's state, which is
 * stored in *st.  max >= 1 and b + max <= nblocks.
 */
uint64_t ovl_map_run(const struct ovl_map *m, uint64_t b, uint64_t max, enum ovl_state *st)
{
	enum ovl_state s = ovl_map_get(m, b);
	uint64_t pat = state_pattern(s);
	uint64_t n = 0;

	PR_ASSERT(max >= 1 && max <= m->nblocks - b);
	*st = s;
	while (n < max) {
		uint64_t cur = b + n;
		const uint8_t *l = m->leaf[cur / OVL_LEAF_BLOCKS];
		uint32_t i = (uint32_t)(cur % OVL_LEAF_BLOCKS);
		if (!leaf_real(l)) {
			if (leaf_get(l, 0) != s)
				break;
			n += OVL_LEAF_BLOCKS - i;       /* whole rest of a uniform leaf */
			continue;
		}
		if ((i & 31) == 0 && max - n >= 32) {
			uint64_t w;
			memcpy(&w, l + i / 4, sizeof(w));
			if (w == pat) {
				n += 32;
				continue;
			}
		}
		if (leaf_get(l, i) != s)
			break;
		n++;
	}
	return n < max ? n : max;
}

/* Blocks in [b, b+n) whose state is st. */
uint64_t ovl_map_count(const struct ovl_map *m, uint64_t b, uint64_t n, enum ovl_state st)
{
	uint64_t c = 0;

	while (n > 0) {
		enum ovl_state s;
		uint64_t r = ovl_map_run(m, b, n, &s);
		if (s == st)
			c += r;
		b += r;
		n -= r;
	}
	return c;
}

/* Record leaf li in the dirty list if it is not there yet (dirty[li] NULL). */
static int dirty_list_add(struct ovl_map *m, uint32_t li)
{
	if (m->ndirty == m->dirty_cap) {
		uint32_t cap = m->dirty_cap ? m->dirty_cap * 2 : 16;
		uint32_t *nl = realloc(m->dirty_list, cap * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		m->dirty_list = nl;
		m->dirty_cap = cap;
	}
	m->dirty_list[m->ndirty++] = li;
	return 0;
}

/* Mark blocks [i, i+n) of leaf li dirty (their chunks). */
static int mark_dirty(struct ovl_map *m, uint32_t li, uint32_t i, uint32_t n)
{
	uint64_t *d = m->dirty[li];

	if (d == DIRTY_ALL)
		return 0;
	if (d == NULL && dirty_list_add(m, li) < 0)
		return -ENOMEM;
	if (n == OVL_LEAF_BLOCKS) {
		if (d) {
			free(d);
			m->dirty_alloc--;
		}
		m->dirty[li] = DIRTY_ALL;
		return 0;
	}
	if (d == NULL) {
		d = calloc(DIRTY_WORDS, sizeof(uint64_t));
		if (!d) {
			m->ndirty--;            /* undo dirty_list_add */
			return -ENOMEM;
		}
		m->dirty[li] = d;
		m->dirty_alloc++;
	}
	for (uint32_t c = i >> DIRTY_SHIFT; c <= (i + n - 1) >> DIRTY_SHIFT; c++)
		d[c / 64] |= 1ull << (c & 63);
	return 0;
}

/* See overlay_int.h. */
int ovl_map_redirty(struct ovl_map *m, const struct ovl_run *runs, size_t nruns)
{
	for (size_t k = 0; k < nruns; k++) {
		uint64_t b = runs[k].first, n = runs[k].count;
		if (b >= m->nblocks || n > m->nblocks - b)
			return -EINVAL;
		while (n > 0) {
			uint32_t li = (uint32_t)(b / OVL_LEAF_BLOCKS);
			uint32_t i = (uint32_t)(b % OVL_LEAF_BLOCKS);
			uint32_t c = OVL_LEAF_BLOCKS - i;
			if (c > n)
				c = (uint32_t)n;
			int rc = mark_dirty(m, li, i, c);
			if (rc < 0)
				return rc;
			b += c;
			n -= c;
		}
	}
	return 0;
}

/* Set blocks [i, i+n) of leaf li to st, keeping m->present exact. */
static int leaf_set(struct ovl_map *m, uint32_t li, uint32_t i, uint32_t n, enum ovl_state st)
{
	uint8_t *l = m->leaf[li];
	uint64_t first = (uint64_t)li * OVL_LEAF_BLOCKS;
	uint64_t inside = m->nblocks - first < OVL_LEAF_BLOCKS ? m->nblocks - first : OVL_LEAF_BLOCKS;

	/* The whole (possibly short last) leaf: no need for an array. */
	if (i == 0 && n >= inside && st != OVL_PRESENT) {
		m->present -= ovl_map_count(m, first, inside, OVL_PRESENT);
		if (leaf_real(l)) {
			free(l);
			m->leaves_alloc--;
		}
		m->leaf[li] = st == OVL_ZERO ? LEAF_ZERO : NULL;
		return 0;
	}
	if (!leaf_real(l)) {
		if (leaf_get(l, 0) == st)
			return 0;
		uint8_t *nl = malloc(OVL_LEAF_BYTES);
		if (!nl)
			return -ENOMEM;
		memset(nl, l == LEAF_ZERO ? 0xaa : 0, OVL_LEAF_BYTES);
		m->leaf[li] = l = nl;
		m->leaves_alloc++;
	}
	uint64_t pat = state_pattern(st);
	for (uint32_t k = i; k < i + n;) {
		if ((k & 31) == 0 && i + n - k >= 32) {
			uint64_t w;
			memcpy(&w, l + k / 4, sizeof(w));
			m->present -= count_present_word(w);
			m->present += count_present_word(pat);
			memcpy(l + k / 4, &pat, sizeof(pat));
			k += 32;
		} else {
			unsigned sh = (k & 3) * 2;
			enum ovl_state old = (enum ovl_state)((l[k >> 2] >> sh) & 3);
			m->present -= old == OVL_PRESENT;
			m->present += st == OVL_PRESENT;
			l[k >> 2] = (uint8_t)((l[k >> 2] & ~(3u << sh)) | ((unsigned)st << sh));
			k++;
		}
	}
	return 0;
}

/*
 * Set blocks [b, b+n) to st; with dirty, remember them for the next
 * flush.  Returns 0 or -ENOMEM (then a prefix of the range may be set).
 */
int ovl_map_set(struct ovl_map *m, uint64_t b, uint64_t n, enum ovl_state st, bool dirty)
{
	PR_ASSERT(b <= m->nblocks && n <= m->nblocks - b);
	PR_ASSERT(st == OVL_ABSENT || st == OVL_PRESENT || st == OVL_ZERO);
	while (n > 0) {
		uint32_t li = (uint32_t)(b / OVL_LEAF_BLOCKS);
		uint32_t i = (uint32_t)(b % OVL_LEAF_BLOCKS);
		uint32_t k = OVL_LEAF_BLOCKS - i;
		if (k > n)
			k = (uint32_t)n;
		int rc = leaf_set(m, li, i, k, st);
		if (rc == 0 && dirty) {
			/* A short last leaf set whole counts as whole. */
			uint64_t left = m->nblocks - (uint64_t)li * OVL_LEAF_BLOCKS;
			if (left > OVL_LEAF_BLOCKS)
				left = OVL_LEAF_BLOCKS;
			rc = mark_dirty(m, li, i, (i == 0 && k >= left) ? OVL_LEAF_BLOCKS : k);
		}
		if (rc < 0)
			return rc;
		b += k;
		n -= k;
	}
	assert_counters(m);
	return 0;
}

/* Append run {first, count, state} to a growing array, merging with the last. */
static int runs_push(struct ovl_run **runs, size_t *n, size_t *cap, uint64_t first,
		     uint64_t count, enum ovl_state st)
{
	while (count > 0) {
		uint32_t c = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
		struct ovl_run *last = *n ? &(*runs)[*n - 1] : NULL;
		if (last && last->state == st && last->first + last->count == first &&
		    (uint64_t)last->count + c <= UINT32_MAX) {
			last->count += c;
		} else {
			if (*n == *cap) {
				size_t nc = *cap ? *cap * 2 : 64;
				struct ovl_run *nr = realloc(*runs, nc * sizeof(*nr));
				if (!nr)
					return -ENOMEM;
				*runs = nr;
				*cap = nc;
			}
			(*runs)[(*n)++] = (struct ovl_run){ first, c, (uint8_t)st };
		}
		first += c;
		count -= c;
	}
	return 0;
}

/* Emit runs of the current states of blocks [b, b+n). */
static int runs_of_range(const struct ovl_map *m, uint64_t b, uint64_t n,
			 struct ovl_run **runs, size_t *cnt, size_t *cap)
{
	while (n > 0) {
		enum ovl_state s;
		uint64_t r = ovl_map_run(m, b, n, &s);
		int rc = runs_push(runs, cnt, cap, b, r, s);
		if (rc < 0)
			return rc;
		b += r;
		n -= r;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Describe every block changed since the last call - every block of each
 * changed 64-block chunk - as runs of its CURRENT
 * state (intermediate states do not matter: the record replaces them),
 * in ascending block order, and forget the changes.  *runs is malloc'd
 * (caller frees; NULL when nothing changed).  Returns 0 or -ENOMEM.
 */
int ovl_map_take_dirty(struct ovl_map *m, struct ovl_run **runs, size_t *nruns)
{
	size_t n = 0, cap = 0;
	int rc = 0;

	*runs = NULL;
	*nruns = 0;
	if (m->ndirty > 1)
		qsort(m->dirty_list, m->ndirty, sizeof(uint32_t), cmp_u32);
	for (uint32_t k = 0; k < m->ndirty && rc == 0; k++) {
		uint32_t li = m->dirty_list[k];
		uint64_t first = (uint64_t)li * OVL_LEAF_BLOCKS;
		uint64_t inside = m->nblocks - first < OVL_LEAF_BLOCKS ? m->nblocks - first : OVL_LEAF_BLOCKS;
		uint64_t *d = m->dirty[li];
		if (d == DIRTY_ALL) {
			rc = runs_of_range(m, first, inside, runs, &n, &cap);
			continue;
		}
		for (uint32_t c = 0; c < DIRTY_BITS && rc == 0;) {
			if (!(d[c / 64] >> (c & 63) & 1)) {
				c++;
				continue;
			}
			uint32_t e = c;
			while (e < DIRTY_BITS && (d[e / 64] >> (e & 63) & 1))
				e++;
			uint64_t from = (uint64_t)c << DIRTY_SHIFT, to = (uint64_t)e << DIRTY_SHIFT;
			if (to > inside)
				to = inside;
			if (from < to)
				rc = runs_of_range(m, first + from, to - from, runs, &n, &cap);
			c = e;
		}
	}
	if (rc < 0) {
		free(*runs);
		*runs = NULL;
		return rc;
	}
	for (uint32_t k = 0; k < m->ndirty; k++) {
		uint32_t li = m->dirty_list[k];
		if (m->dirty[li] != DIRTY_ALL) {
			free(m->dirty[li]);
			m->dirty_alloc--;
		}
		m->dirty[li] = NULL;
	}
	m->ndirty = 0;
	*nruns = n;
	/* M4 right after: nothing dirty; the runs cover the changes in
	 * ascending order, inside the disk, one state each. */
	PR_ASSERT(m->dirty_alloc == 0);
	for (size_t k = 0; k < n; k++) {
		const struct ovl_run *r = &(*runs)[k];
		PR_ASSERT(r->count > 0 && r->first < m->nblocks && r->count <= m->nblocks - r->first);
		PR_ASSERT(r->state <= OVL_ZERO);
		PR_ASSERT(k == 0 || (*runs)[k - 1].first + (*runs)[k - 1].count <= r->first);
	}
	assert_counters(m);
	return 0;
}

#define ENTRY_LEAF 1u   /* a 4 KiB leaf follows */
#define ENTRY_ZERO 2u   /* the whole leaf is ZERO */

/*
 * Serialise the map for a checkpoint: for each non-ABSENT leaf in index
 * order, {u32 index, u32 kind} and, for kind LEAF, its 4096 bytes.
 * *body is malloc'd (caller frees).  Returns 0 or -ENOMEM.
 */
int ovl_map_serialize(const struct ovl_map *m, uint8_t **body, size_t *len, uint32_t *nentries)
{
	size_t sz = 0;
	uint32_t ne = 0;

	for (uint32_t i = 0; i < m->nleaves; i++) {
		if (m->leaf[i]) {
			sz += 8 + (m->leaf[i] == LEAF_ZERO ? 0 : OVL_LEAF_BYTES);
			ne++;
		}
	}
	uint8_t *p = malloc(sz ? sz : 1);
	if (!p)
		return -ENOMEM;
	size_t o = 0;
	for (uint32_t i = 0; i < m->nleaves; i++) {
		if (!m->leaf[i])
			continue;
		ovl_put32(p + o, i);
		ovl_put32(p + o + 4, m->leaf[i] == LEAF_ZERO ? ENTRY_ZERO : ENTRY_LEAF);
		o += 8;
		if (m->leaf[i] != LEAF_ZERO) {
			memcpy(p + o, m->leaf[i], OVL_LEAF_BYTES);
			o += OVL_LEAF_BYTES;
		}
	}
	*body = p;
	*len = sz;
	*nentries = ne;
	return 0;
}

/*
 * Fill an empty map from a checkpoint body (untrusted bytes: every index,
 * kind, length and state is checked).  Returns 0, -EBADMSG when the body
 * is malformed, or -ENOMEM.
 */
int ovl_map_load(struct ovl_map *m, const uint8_t *body, size_t len, uint32_t nentries)
{
	size_t o = 0;
	int64_t prev = -1;

	for (uint32_t e = 0; e < nentries; e++) {
		if (len - o < 8)
			return -EBADMSG;
		uint32_t li = ovl_get32(body + o), kind = ovl_get32(body + o + 4);
		o += 8;
		if (li >= m->nleaves || (int64_t)li <= prev)
			return -EBADMSG;
		prev = li;
		uint64_t first = (uint64_t)li * OVL_LEAF_BLOCKS;
		uint64_t inside = m->nblocks - first < OVL_LEAF_BLOCKS ? m->nblocks - first : OVL_LEAF_BLOCKS;
		if (kind == ENTRY_ZERO) {
			m->leaf[li] = LEAF_ZERO;
			continue;
		}
		if (kind != ENTRY_LEAF || len - o < OVL_LEAF_BYTES)
			return -EBADMSG;
		uint8_t *l = malloc(OVL_LEAF_BYTES);
		if (!l)
			return -ENOMEM;
		memcpy(l, body + o, OVL_LEAF_BYTES);
		o += OVL_LEAF_BYTES;
		m->leaf[li] = l;
		m->leaves_alloc++;
		for (uint32_t i = 0; i < OVL_LEAF_BLOCKS; i++) {
			enum ovl_state s = leaf_get(l, i);
			if (i >= inside)
				break;          /* past the disk end: never read */
			if ((int)s == 3) {
				return -EBADMSG;
			} else if (s == OVL_PRESENT) {
				m->present++;
			}
		}
	}
	if (o != len)
		return -EBADMSG;
	assert_counters(m);
	return 0;
}

/* Check the leaf entries of one real leaf l (inside blocks of it): add
 * its PRESENT blocks to *present; false when a block has state 3 (M2). */
static bool leaf_tally(const uint8_t *l, uint64_t inside, uint64_t *present)
{
	uint64_t i = 0;

	for (; i + 32 <= inside; i += 32) {
		uint64_t w;
		memcpy(&w, l + i / 4, sizeof(w));
		if (w & (w >> 1) & PAT_PRESENT)
			return false;
		*present += count_present_word(w);
	}
	for (; i < inside; i++) {
		enum ovl_state s = leaf_get(l, (uint32_t)i);
		if ((int)s == 3)
			return false;
		*present += s == OVL_PRESENT;
	}
	return true;
}

/* See overlay_int.h. */
const char *ovl_map_check(const struct ovl_map *m)
{
	uint64_t present = 0, leaves = 0, bitmaps = 0, marked = 0;
	const char *why = NULL;

	for (uint32_t li = 0; li < m->nleaves; li++) {
		uint64_t first = (uint64_t)li * OVL_LEAF_BLOCKS;
		uint64_t inside = m->nblocks - first < OVL_LEAF_BLOCKS ? m->nblocks - first : OVL_LEAF_BLOCKS;
		if (leaf_real(m->leaf[li])) {
			leaves++;
			if (!leaf_tally(m->leaf[li], inside, &present))
				return "M2: a block inside the disk has state 3";
		}
		if (m->dirty[li]) {
			marked++;
			bitmaps += m->dirty[li] != DIRTY_ALL;
		}
	}
	if (present != m->present)
		return "M1: the PRESENT counter differs from the PRESENT blocks";
	if (leaves != m->leaves_alloc)
		return "M3: leaves_alloc differs from the allocated leaves";
	if (bitmaps != m->dirty_alloc)
		return "M4: dirty_alloc differs from the dirty bitmaps";
	if (marked != m->ndirty)
		return "M4: the dirty list's length differs from the dirty leaves";
	/* As many entries as dirty leaves: each dirty and none twice. */
	uint8_t *seen = calloc(m->nleaves / 8 + 1, 1);
	if (!seen)
		return NULL;            /* cannot tell without memory: not a finding */
	for (uint32_t k = 0; k < m->ndirty && !why; k++) {
		uint32_t li = m->dirty_list[k];
		if (li >= m->nleaves || !m->dirty[li])
			why = "M4: the dirty list names a leaf that is not dirty";
		else if (seen[li / 8] & (1u << (li % 8)))
			why = "M4: the dirty list names a leaf twice";
		else
			seen[li / 8] |= (uint8_t)(1u << (li % 8));
	}
	free(seen);
	return why;
}

/* Bytes of RAM the map holds now (tables, leaves, dirty bitmaps). */
uint64_t ovl_map_mem_bytes(const struct ovl_map *m)
{
	return (uint64_t)m->nleaves * (sizeof(*m->leaf) + sizeof(*m->dirty)) +
	       m->leaves_alloc * OVL_LEAF_BYTES + m->dirty_alloc * DIRTY_WORDS * sizeof(uint64_t) +
	       (uint64_t)m->dirty_cap * sizeof(uint32_t);
}
