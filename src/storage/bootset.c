/*
 * bootset.c - a version's boot set: learning it from boots (merge), its
 * file (encode/decode) and the reads a prefetch of it makes (plan).
 * bootset.h is the contract, docs/bootset-format.md the file layout.
 *
 * Invariants of a struct bootset this file produces (PR_ASSERT'd in the
 * debug builds, never assumed of a decoded file, which is checked):
 *   B1 entries sorted by (at_ms, chunk), strictly: no chunk twice at the
 *      same time;
 *   B2 chunks unique and inside the disk;
 *   B3 every entry has boots >= 1, and at most bs->boots when the set is
 *      its own (inherited_from == 0);
 *   B4 n <= BOOTSET_MAX_CHUNKS_LIMIT.
 *
 * Every pass is a stable radix sort (rsort) or a linear walk: a merge
 * or a decode of BOOTSET_MAX_CHUNKS_LIMIT entries is linear in n
 * (about 0.1 s of CPU for a merge of 2^20 in the release build).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "storage/bootset.h"
#include "util/check.h"
#include "util/crc32c.h"

/* ---- the file layout (docs/bootset-format.md) ------------------------ */

#define BS_MAGIC "PRBOOTST"
#define BS_FORMAT 1u
#define BS_HDR 64u
#define BS_ENTRY 12u
#define BS_CRC 4u
#define BS_HDR_MAGIC 0
#define BS_HDR_FORMAT 8
#define BS_HDR_CHUNK 12
#define BS_HDR_DISK 16
#define BS_HDR_BOOTS 24
#define BS_HDR_INHERITED 28
#define BS_HDR_COUNT 32
#define BS_HDR_BLOCK 36
#define BS_HDR_RESERVED 40           /* 20 bytes of zeros */
#define BS_HDR_CRC 60

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* Chunks of a disk of size bytes (the last one may be short). */
static uint64_t disk_chunks(uint64_t size)
{
	return size / BOOTSET_CHUNK + (size % BOOTSET_CHUNK != 0);
}

/* ---- order and sorting --------------------------------------------------- */

/* The set's order: (at_ms, chunk). */
static int cmp_time(const void *a, const void *b)
{
	const struct bootset_entry *x = a, *y = b;

	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

/* A chunk and where it was met (an entry's index or a hit's position). */
struct bs_pos {
	uint32_t chunk;
	uint32_t pos;
};

/*
 * Sort n elements of size bytes at base by key(element), an unsigned of
 * bits bits, STABLY (equal keys keep their order), a digit a pass from
 * the lowest (16 bits, 8 for small arrays so that the counting costs
 * nothing next to them); a pass whose digit is the same everywhere is
 * skipped.  Linear in n: a qsort of a million entries costs several
 * times more, and far more under the sanitizers.  0 or -ENOMEM (base
 * unchanged).
 */
static int rsort(void *base, size_t n, size_t size, uint64_t (*key)(const void *), unsigned bits)
{
	unsigned dbits = n < 4096 ? 8 : 16;
	size_t nd = (size_t)1 << dbits, mask = nd - 1;
	uint8_t *src = base, *dst, *tmp;
	size_t *count;

	if (n < 2)
		return 0;
	tmp = malloc(n * size);
	count = malloc(nd * sizeof(*count));
	if (!tmp || !count) {
		free(tmp);
		free(count);
		return -ENOMEM;
	}
	dst = tmp;
	for (unsigned shift = 0; shift < bits; shift += dbits) {
		size_t sum = 0;
		memset(count, 0, nd * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[(key(src + i * size) >> shift) & mask]++;
		if (count[(key(src) >> shift) & mask] == n)
			continue;
		for (size_t d = 0; d < nd; d++) {
			size_t c = count[d];
			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			memcpy(dst + count[(key(src + i * size) >> shift) & mask]++ * size,
			       src + i * size, size);
		uint8_t *t = src;
		src = dst;
		dst = t;
	}
	if (src != base)
		memcpy(base, src, n * size);
	free(tmp);
	free(count);
	return 0;
}

static uint64_t key_pos(const void *p) { return ((const struct bs_pos *)p)->chunk; }
static uint64_t key_u32(const void *p) { return *(const uint32_t *)p; }

static uint64_t key_time(const void *p)
{
	const struct bootset_entry *x = p;

	return (uint64_t)x->at_ms << 32 | x->chunk;
}

/* NULL when e[0..n) keeps B1-B4 for a disk of size bytes and boots
 * (own: inherited 0), else the first rule broken.  Debug builds only
 * (PR_CHECK): it sorts a copy. */
static const char *bs_check(const struct bootset *bs)
{
	uint64_t chunks = disk_chunks(bs->disk_size);
	struct bs_pos *p;
	const char *why = NULL;

	if (bs->n > BOOTSET_MAX_CHUNKS_LIMIT || bs->n > bs->cap)
		return "count over the bound";
	for (uint32_t i = 0; i < bs->n; i++) {
		const struct bootset_entry *x = &bs->e[i];
		if (x->chunk >= chunks)
			return "chunk past the disk";
		if (x->boots == 0 || (!bs->inherited_from && x->boots > bs->boots))
			return "entry boots out of range";
		if (i && cmp_time(&bs->e[i - 1], x) >= 0)
			return "entries out of order";
	}
	if (bs->n < 2)
		return NULL;
	p = malloc((size_t)bs->n * sizeof(*p));
	if (!p)
		return NULL;          /* nothing to say without memory */
	for (uint32_t i = 0; i < bs->n; i++)
		p[i] = (struct bs_pos){ bs->e[i].chunk, i };
	if (rsort(p, bs->n, sizeof(*p), key_pos, 32) < 0) {
		free(p);
		return NULL;
	}
	for (uint32_t i = 1; i < bs->n && !why; i++)
		if (p[i].chunk == p[i - 1].chunk)
			why = "chunk twice";
	free(p);
	return why;
}

/* ---- the set ---------------------------------------------------------- */

/* See bootset.h. */
void bootset_init(struct bootset *bs, uint64_t disk_size)
{
	memset(bs, 0, sizeof(*bs));
	bs->disk_size = disk_size;
}

/* See bootset.h. */
void bootset_free(struct bootset *bs)
{
	if (!bs)
		return;
	free(bs->e);
	bs->e = NULL;
	bs->n = bs->cap = 0;
	bs->boots = 0;
	bs->inherited_from = 0;
}

/* See bootset.h. */
int bootset_copy(struct bootset *dst, const struct bootset *src)
{
	*dst = *src;
	dst->e = NULL;
	dst->cap = dst->n;
	if (src->n) {
		dst->e = malloc((size_t)src->n * sizeof(*dst->e));
		if (!dst->e) {
			bootset_init(dst, src->disk_size);
			return -ENOMEM;
		}
		memcpy(dst->e, src->e, (size_t)src->n * sizeof(*dst->e));
	}
	return 0;
}

/* See bootset.h. */
uint64_t bootset_bytes(const struct bootset *bs)
{
	uint64_t chunks = disk_chunks(bs->disk_size), bytes = 0;

	for (uint32_t i = 0; i < bs->n; i++) {
		uint64_t off = (uint64_t)bs->e[i].chunk * BOOTSET_CHUNK;
		if (bs->e[i].chunk >= chunks)
			continue;
		bytes += bs->disk_size - off < BOOTSET_CHUNK ? bs->disk_size - off : BOOTSET_CHUNK;
	}
	return bytes;
}

/*
 * The valid hits of one boot (inside the disk, each chunk's first
 * occurrence) sorted by chunk, with their position in hits, into a new
 * array *out of *m.  0 or -ENOMEM.
 */
static int hits_by_chunk(const struct bootset_hit *hits, uint32_t n, uint64_t chunks,
			 struct bs_pos **out, uint32_t *m)
{
	struct bs_pos *p = malloc((size_t)n * sizeof(*p));
	uint32_t k = 0, w = 0;

	if (!p)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if (hits[i].chunk < chunks)
			p[k++] = (struct bs_pos){ hits[i].chunk, i };
	/* stable: a repeat follows its first occurrence */
	if (rsort(p, k, sizeof(*p), key_pos, 32) < 0) {
		free(p);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < k; i++)
		if (!w || p[w - 1].chunk != p[i].chunk)
			p[w++] = p[i];
	*out = p;
	*m = w;
	return 0;
}

/* The mean of a chunk's at_ms over its boots and one more boot at t,
 * rounded to the nearest ms. */
static uint32_t mean_ms(uint32_t at_ms, uint32_t boots, uint32_t t)
{
	uint64_t sum = (uint64_t)at_ms * boots + t, k = (uint64_t)boots + 1;

	return (uint32_t)((sum + k / 2) / k);
}

/*
 * Cut e[0..*k) (sorted by time, *k > max) to max entries, kept in order:
 * those read by the most boots; of those read by the fewest boots that
 * stay, the earliest (the latest go first).  0 or -ENOMEM.
 */
static int bound(struct bootset_entry *e, uint32_t *k, uint32_t max)
{
	uint32_t *b = malloc((size_t)*k * sizeof(*b)), n = *k, w = 0, gt = 0, eq, t;

	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		b[i] = e[i].boots;
	if (rsort(b, n, sizeof(*b), key_u32, 32) < 0) {
		free(b);
		return -ENOMEM;
	}
	/* the fewest boots an entry kept has: t; all above it stay */
	t = b[n - max];
	for (uint32_t i = n; i > 0 && b[i - 1] > t; i--)
		gt++;
	free(b);
	eq = max - gt;
	for (uint32_t i = 0; i < n; i++) {
		if (e[i].boots > t) {
			e[w++] = e[i];
		} else if (e[i].boots == t && eq) {
			e[w++] = e[i];
			eq--;
		}
	}
	PR_ASSERT(w == max);
	*k = w;
	return 0;
}

/* See bootset.h. */
int bootset_merge(struct bootset *bs, const struct bootset_hit *hits, uint32_t n,
		  uint32_t max_chunks)
{
	uint64_t chunks = disk_chunks(bs->disk_size);
	bool replace = bs->inherited_from != 0;
	struct bs_pos *h = NULL, *old = NULL;
	struct bootset_entry *e = NULL;
	uint32_t m, k = 0, have = replace ? 0 : bs->n;
	int rc;

	if (max_chunks < 1 || max_chunks > BOOTSET_MAX_CHUNKS_LIMIT)
		return -EINVAL;
	if (n == 0)
		return 0;
	rc = hits_by_chunk(hits, n, chunks, &h, &m);
	if (rc < 0)
		return rc;
	if (m == 0) {
		/* nothing of this disk was read: no boot to learn from */
		free(h);
		return 0;
	}
	rc = -ENOMEM;
	e = malloc(((size_t)have + m) * sizeof(*e));
	old = malloc(((size_t)have + 1) * sizeof(*old));
	if (!e || !old)
		goto out;
	/* the entries kept, by chunk, joined with the hits by chunk */
	for (uint32_t i = 0; i < have; i++)
		old[i] = (struct bs_pos){ bs->e[i].chunk, i };
	if (rsort(old, have, sizeof(*old), key_pos, 32) < 0)
		goto out;
	uint32_t i = 0, j = 0;
	while (i < have || j < m) {
		if (j == m || (i < have && old[i].chunk < h[j].chunk)) {
			e[k++] = bs->e[old[i++].pos];
		} else if (i == have || h[j].chunk < old[i].chunk) {
			e[k++] = (struct bootset_entry){ h[j].chunk, hits[h[j].pos].at_ms, 1 };
			j++;
		} else {
			const struct bootset_entry *x = &bs->e[old[i++].pos];
			uint32_t t = hits[h[j++].pos].at_ms;
			e[k++] = (struct bootset_entry){ x->chunk, mean_ms(x->at_ms, x->boots, t),
							 x->boots == UINT32_MAX ? x->boots : x->boots + 1 };
		}
	}
	if (rsort(e, k, sizeof(*e), key_time, 64) < 0)
		goto out;
	if (k > max_chunks && bound(e, &k, max_chunks) < 0)
		goto out;
	free(bs->e);
	bs->e = e;
	bs->n = bs->cap = k;
	bs->boots = replace ? 1 : (bs->boots == UINT32_MAX ? bs->boots : bs->boots + 1);
	bs->inherited_from = 0;
	e = NULL;
	rc = 0;
	PR_CHECK(bs_check(bs));
out:
	free(e);
	free(old);
	free(h);
	return rc;
}

/* ---- the file --------------------------------------------------------- */

/* Bytes of a file of count entries. */
static size_t file_len(uint32_t count)
{
	size_t blocks = count / BOOTSET_BLOCK_ENTRIES + (count % BOOTSET_BLOCK_ENTRIES != 0);

	return BS_HDR + (size_t)count * BS_ENTRY + blocks * BS_CRC;
}

/* See bootset.h. */
int bootset_encode(const struct bootset *bs, uint8_t **buf, size_t *len)
{
	size_t total = file_len(bs->n);
	uint8_t *b = calloc(1, total), *p;

	*buf = NULL;
	*len = 0;
	if (!b)
		return -ENOMEM;
	memcpy(b + BS_HDR_MAGIC, BS_MAGIC, 8);
	put_le32(b + BS_HDR_FORMAT, BS_FORMAT);
	put_le32(b + BS_HDR_CHUNK, BOOTSET_CHUNK);
	put_le64(b + BS_HDR_DISK, bs->disk_size);
	put_le32(b + BS_HDR_BOOTS, bs->boots);
	put_le32(b + BS_HDR_INHERITED, bs->inherited_from);
	put_le32(b + BS_HDR_COUNT, bs->n);
	put_le32(b + BS_HDR_BLOCK, BOOTSET_BLOCK_ENTRIES);
	put_le32(b + BS_HDR_CRC, crc32c(b, BS_HDR_CRC));
	p = b + BS_HDR;
	for (uint32_t i = 0; i < bs->n; i += BOOTSET_BLOCK_ENTRIES) {
		uint32_t k = bs->n - i < BOOTSET_BLOCK_ENTRIES ? bs->n - i : BOOTSET_BLOCK_ENTRIES;
		uint8_t *start = p;
		for (uint32_t j = i; j < i + k; j++, p += BS_ENTRY) {
			put_le32(p, bs->e[j].chunk);
			put_le32(p + 4, bs->e[j].at_ms);
			put_le32(p + 8, bs->e[j].boots);
		}
		put_le32(p, crc32c(start, (size_t)(p - start)));
		p += BS_CRC;
	}
	PR_ASSERT((size_t)(p - b) == total);
	*buf = b;
	*len = total;
	return 0;
}

/* The header of a file into out (no entries); false when it cannot be
 * trusted. */
static bool decode_header(const uint8_t *b, size_t len, struct bootset *out, uint32_t *count)
{
	uint64_t disk;
	uint32_t n;

	if (len < BS_HDR || get_le32(b + BS_HDR_CRC) != crc32c(b, BS_HDR_CRC))
		return false;
	if (memcmp(b + BS_HDR_MAGIC, BS_MAGIC, 8) || get_le32(b + BS_HDR_FORMAT) != BS_FORMAT ||
	    get_le32(b + BS_HDR_CHUNK) != BOOTSET_CHUNK ||
	    get_le32(b + BS_HDR_BLOCK) != BOOTSET_BLOCK_ENTRIES)
		return false;
	for (unsigned i = BS_HDR_RESERVED; i < BS_HDR_CRC; i++)
		if (b[i])
			return false;
	disk = get_le64(b + BS_HDR_DISK);
	n = get_le32(b + BS_HDR_COUNT);
	if (n > BOOTSET_MAX_CHUNKS_LIMIT || n > disk_chunks(disk))
		return false;
	bootset_init(out, disk);
	out->boots = get_le32(b + BS_HDR_BOOTS);
	out->inherited_from = get_le32(b + BS_HDR_INHERITED);
	*count = n;
	return true;
}

/*
 * Of e[0..n) (sorted, each chunk inside the disk), the number of entries
 * before the first block that repeats a chunk of an earlier entry (n when
 * none does).  -1 without memory.
 */
static int64_t first_repeat_block(const struct bootset_entry *e, uint32_t n)
{
	struct bs_pos *p;
	uint32_t first = n;

	if (n < 2)
		return n;
	p = malloc((size_t)n * sizeof(*p));
	if (!p)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		p[i] = (struct bs_pos){ e[i].chunk, i };
	/* stable: in (chunk, pos) order a repeat follows an earlier occurrence */
	if (rsort(p, n, sizeof(*p), key_pos, 32) < 0) {
		free(p);
		return -1;
	}
	for (uint32_t i = 1; i < n; i++)
		if (p[i].chunk == p[i - 1].chunk && p[i].pos < first)
			first = p[i].pos;
	free(p);
	return first == n ? n : (int64_t)(first - first % BOOTSET_BLOCK_ENTRIES);
}

/* See bootset.h. */
int bootset_decode(const uint8_t *buf, size_t len, struct bootset *out, uint32_t *cut)
{
	uint64_t chunks;
	uint32_t count, room, kept = 0;
	const uint8_t *p, *end = buf + len;
	int64_t upto;

	bootset_init(out, 0);
	*cut = 0;
	if (!decode_header(buf, len, out, &count)) {
		bootset_init(out, 0);
		return -EBADMSG;
	}
	chunks = disk_chunks(out->disk_size);
	/* allocate no more than the header's count, nor more than the bytes
	 * there are can hold */
	room = (uint32_t)((len - BS_HDR) / BS_ENTRY < count ? (len - BS_HDR) / BS_ENTRY : count);
	if (room) {
		out->e = malloc((size_t)room * sizeof(*out->e));
		if (!out->e) {
			bootset_init(out, 0);
			return -ENOMEM;
		}
		out->cap = room;
	}
	p = buf + BS_HDR;
	while (kept < count) {
		uint32_t k = count - kept < BOOTSET_BLOCK_ENTRIES ? count - kept : BOOTSET_BLOCK_ENTRIES;
		size_t blen = (size_t)k * BS_ENTRY;
		bool good = true;

		if ((size_t)(end - p) < blen + BS_CRC || get_le32(p + blen) != crc32c(p, blen))
			break;        /* short (torn) or corrupt: cut here */
		PR_ASSERT(kept + k <= room);
		for (uint32_t j = 0; j < k && good; j++) {
			const uint8_t *q = p + (size_t)j * BS_ENTRY;
			struct bootset_entry x = { get_le32(q), get_le32(q + 4), get_le32(q + 8) };
			struct bootset_entry *prev = kept + j ? &out->e[kept + j - 1] : NULL;
			if (x.chunk >= chunks || x.boots == 0 ||
			    (!out->inherited_from && x.boots > out->boots) ||
			    (prev && cmp_time(prev, &x) >= 0))
				good = false;
			else
				out->e[kept + j] = x;
		}
		if (!good)
			break;        /* an entry breaking the rules: the block is corrupt */
		kept += k;
		p += blen + BS_CRC;
	}
	upto = first_repeat_block(out->e, kept);
	if (upto < 0) {
		bootset_free(out);
		bootset_init(out, 0);
		return -ENOMEM;
	}
	kept = (uint32_t)upto;
	out->n = kept;
	if (!kept) {
		free(out->e);
		out->e = NULL;
		out->cap = 0;
	}
	*cut = count - kept;
	PR_CHECK(bs_check(out));
	return 0;
}

/* ---- the plan --------------------------------------------------------- */

/* See bootset.h. */
int bootset_plan(const struct bootset *bs, uint32_t window, uint32_t max_read,
		 struct bootset_extent **out, uint32_t *n)
{
	uint64_t chunks = disk_chunks(bs->disk_size);
	uint32_t per = max_read / BOOTSET_CHUNK, k = 0, wlen;
	struct bootset_extent *x;
	uint32_t *w;

	*out = NULL;
	*n = 0;
	if (window == 0 || max_read == 0 || max_read % BOOTSET_CHUNK)
		return -EINVAL;
	if (bs->n == 0)
		return 0;
	wlen = window < bs->n ? window : bs->n;
	x = malloc((size_t)bs->n * sizeof(*x));
	w = malloc((size_t)wlen * sizeof(*w));
	if (!x || !w) {
		free(x);
		free(w);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < bs->n; i += wlen) {
		uint32_t m = 0, end = bs->n - i < wlen ? bs->n : i + wlen;
		for (uint32_t j = i; j < end; j++)
			if (bs->e[j].chunk < chunks)
				w[m++] = bs->e[j].chunk;
		if (rsort(w, m, sizeof(*w), key_u32, 32) < 0) {
			free(w);
			free(x);
			return -ENOMEM;
		}
		for (uint32_t j = 0; j < m;) {
			/* a run of adjacent chunks, at most per of them */
			uint32_t r = 1;
			while (j + r < m && r < per && w[j + r] == w[j + r - 1] + 1)
				r++;
			uint64_t off = (uint64_t)w[j] * BOOTSET_CHUNK;
			uint64_t len = (uint64_t)r * BOOTSET_CHUNK;
			if (len > bs->disk_size - off)
				len = bs->disk_size - off;
			x[k++] = (struct bootset_extent){ off, (uint32_t)len };
			j += r;
			/* a chunk twice in a window (never in a checked set) is read once */
			while (j < m && w[j] == w[j - 1])
				j++;
		}
	}
	free(w);
	*out = x;
	*n = k;
	return 0;
}
