/*
 * fuzz_bootset.c - libFuzzer harness: a boot set's file (bootset_decode,
 * storage/bootset.c; docs/bootset-format.md), and what the daemon does
 * with a set it loaded: encode it again, merge a boot into it, plan its
 * prefetch.
 *
 * Input:
 *   0  u8  fix: checksums the harness recomputes before decoding, so that
 *          the fuzzer gets past them to the rules behind: 1 the header's
 *          CRC, 2 every block's CRC (blocks as the header's count cuts
 *          them); bits 2-7: the window of the plan (1..64)
 *   1  u8  the bound of the merge: 1 + this byte
 *   2  then the file's bytes
 *
 * What must hold (else abort), beyond "no crash, no leak, no UB":
 *   - decode returns 0 or -EBADMSG (-ENOMEM cannot happen here); after
 *     -EBADMSG the set is empty;
 *   - a decoded set keeps the rules: sorted by (at_ms, chunk), chunks
 *     unique and inside the disk, boots >= 1 (and at most the set's boots
 *     when it is its own), at most BOOTSET_MAX_CHUNKS_LIMIT entries, whole
 *     blocks only unless every entry was kept, and *cut = the header's
 *     count - the entries kept; its entries are the file's first ones,
 *     byte for byte;
 *   - encode(decoded) decodes to the same set with nothing cut, and is
 *     as long as the layout says;
 *   - a merge of a boot (the set's own chunks read backwards, and one
 *     past the disk) keeps the rules and the bound and counts one boot;
 *   - the plan reads only inside the disk, each read at most max_read,
 *     in whole chunks but for the disk's short end, and covers exactly
 *     bootset_bytes of the set.
 *
 * Seeds: PRISTINE_FUZZ_SEEDS=DIR build/fuzz/fuzz_bootset writes the seed
 * corpus (files made by the real encoder from merged boots) into DIR and
 * exits.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/bootset.h"
#include "util/crc32c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define HDR 64u
#define MAX_READ (4u * BOOTSET_CHUNK)

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_bootset: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static uint64_t chunks_of(uint64_t size)
{
	return size / BOOTSET_CHUNK + (size % BOOTSET_CHUNK != 0);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The rules of a set (see the file header). */
static void check_rules(const struct bootset *bs)
{
	uint64_t chunks = chunks_of(bs->disk_size);
	uint32_t *c;

	CHECK(bs->n <= BOOTSET_MAX_CHUNKS_LIMIT);
	CHECK(bs->n == 0 || (bs->e && bs->n <= bs->cap));
	for (uint32_t i = 0; i < bs->n; i++) {
		const struct bootset_entry *x = &bs->e[i];
		CHECK(x->chunk < chunks);
		CHECK(x->boots >= 1);
		CHECK(bs->inherited_from || x->boots <= bs->boots);
		if (i)
			CHECK(bs->e[i - 1].at_ms < x->at_ms ||
			      (bs->e[i - 1].at_ms == x->at_ms && bs->e[i - 1].chunk < x->chunk));
	}
	if (bs->n < 2)
		return;
	c = malloc((size_t)bs->n * sizeof(*c));
	CHECK(c);
	for (uint32_t i = 0; i < bs->n; i++)
		c[i] = bs->e[i].chunk;
	qsort(c, bs->n, sizeof(*c), cmp_u32);
	for (uint32_t i = 1; i < bs->n; i++)
		CHECK(c[i] != c[i - 1]);
	free(c);
}

static void same_set(const struct bootset *a, const struct bootset *b)
{
	CHECK(a->disk_size == b->disk_size && a->boots == b->boots &&
	      a->inherited_from == b->inherited_from && a->n == b->n);
	CHECK(a->n == 0 || memcmp(a->e, b->e, a->n * sizeof(*a->e)) == 0);
}

/* Recompute the CRCs fix asks for, in place. */
static void fix_crcs(uint8_t *b, size_t len, unsigned fix)
{
	if (len < HDR)
		return;
	if (fix & 1)
		put_le32(b + 60, crc32c(b, 60));
	if (fix & 2) {
		uint32_t count = le32(b + 32);
		size_t off = HDR;
		for (uint32_t done = 0; done < count; done += BOOTSET_BLOCK_ENTRIES) {
			uint32_t k = count - done < BOOTSET_BLOCK_ENTRIES ? count - done
									  : BOOTSET_BLOCK_ENTRIES;
			size_t blen = (size_t)k * 12;
			if (len - off < blen + 4)
				break;
			put_le32(b + off + blen, crc32c(b + off, blen));
			off += blen + 4;
		}
	}
}

/* A merge of a boot made of the set's chunks read backwards. */
static void check_merge(const struct bootset *bs, uint32_t bound)
{
	struct bootset m;
	struct bootset_hit *h = malloc(((size_t)bs->n + 1) * sizeof(*h));
	uint32_t n = 0;

	CHECK(h);
	CHECK(bootset_copy(&m, bs) == 0);
	for (uint32_t i = bs->n; i > 0; i--)
		h[n++] = (struct bootset_hit){ bs->e[i - 1].chunk, bs->n - i };
	/* past the disk: ignored */
	if (chunks_of(bs->disk_size) < UINT32_MAX)
		h[n++] = (struct bootset_hit){ (uint32_t)chunks_of(bs->disk_size), 0 };
	CHECK(bootset_merge(&m, h, n, bound) == 0);
	if (bs->n) {
		check_rules(&m);
		CHECK(m.n <= bound && m.n == (bs->n < bound ? bs->n : bound));
		CHECK(m.inherited_from == 0);
		CHECK(m.boots == (bs->inherited_from ? 1 : (bs->boots == UINT32_MAX ? bs->boots
										: bs->boots + 1)));
	} else {
		same_set(&m, bs);
	}
	bootset_free(&m);
	free(h);
}

/* The plan of the set in windows of window entries. */
static void check_plan(const struct bootset *bs, uint32_t window)
{
	struct bootset_extent *x;
	uint64_t total = 0;
	uint32_t n;

	CHECK(bootset_plan(bs, window, MAX_READ, &x, &n) == 0);
	CHECK(n <= bs->n);
	for (uint32_t i = 0; i < n; i++) {
		CHECK(x[i].len > 0 && x[i].len <= MAX_READ);
		CHECK(x[i].off % BOOTSET_CHUNK == 0);
		CHECK(x[i].off < bs->disk_size && x[i].len <= bs->disk_size - x[i].off);
		CHECK(x[i].len % BOOTSET_CHUNK == 0 || x[i].off + x[i].len == bs->disk_size);
		total += x[i].len;
	}
	CHECK(total == bootset_bytes(bs));
	free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bootset bs, again;
	uint8_t *b, *enc;
	size_t len, elen;
	uint32_t cut, cut2, window, bound;
	int rc;

	if (size < 2)
		return 0;
	window = 1 + (data[0] >> 2);
	bound = 1 + data[1];
	len = size - 2;
	b = malloc(len ? len : 1);
	CHECK(b);
	memcpy(b, data + 2, len);
	fix_crcs(b, len, data[0] & 3);

	rc = bootset_decode(b, len, &bs, &cut);
	CHECK(rc == 0 || rc == -EBADMSG);
	if (rc < 0) {
		CHECK(bs.n == 0 && bs.e == NULL);
		free(b);
		return 0;
	}
	check_rules(&bs);
	CHECK(len >= HDR);
	CHECK((uint64_t)cut + bs.n == le32(b + 32));
	CHECK(cut == 0 || bs.n % BOOTSET_BLOCK_ENTRIES == 0);
	/* the file's first entries, as written */
	for (uint32_t i = 0; i < bs.n; i++) {
		const uint8_t *p = b + HDR + (size_t)(i / BOOTSET_BLOCK_ENTRIES) * (BOOTSET_BLOCK_ENTRIES * 12 + 4) +
				   (size_t)(i % BOOTSET_BLOCK_ENTRIES) * 12;
		CHECK(bs.e[i].chunk == le32(p) && bs.e[i].at_ms == le32(p + 4) &&
		      bs.e[i].boots == le32(p + 8));
	}

	CHECK(bootset_encode(&bs, &enc, &elen) == 0);
	CHECK(elen == HDR + (size_t)bs.n * 12 +
		      (bs.n + BOOTSET_BLOCK_ENTRIES - 1) / BOOTSET_BLOCK_ENTRIES * 4);
	CHECK(bootset_decode(enc, elen, &again, &cut2) == 0);
	CHECK(cut2 == 0);
	same_set(&bs, &again);
	bootset_free(&again);
	free(enc);

	check_merge(&bs, bound);
	check_plan(&bs, window);
	bootset_free(&bs);
	free(b);
	return 0;
}

/* Write one seed: the fix byte, the bound byte, the file of bs. */
static void seed_write(const char *dir, const char *name, uint8_t fix, const struct bootset *bs,
		       size_t cut_to)
{
	char path[4096];
	uint8_t *buf;
	size_t len;
	FILE *f;

	if (bootset_encode(bs, &buf, &len) < 0)
		exit(1);
	if (cut_to && cut_to < len)
		len = cut_to;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fputc(fix, f) == EOF || fputc(7, f) == EOF || fwrite(buf, 1, len, f) != len ||
	    fclose(f)) {
		perror(path);
		exit(1);
	}
	free(buf);
}

/* A set of boots boots of about n chunks each over a disk of size bytes. */
static void seed_set(struct bootset *bs, uint64_t size, uint32_t n, unsigned boots, uint32_t seed)
{
	struct bootset_hit *h = malloc(((size_t)n + 1) * sizeof(*h));
	uint64_t chunks = chunks_of(size);

	if (!h)
		exit(1);
	bootset_init(bs, size);
	for (unsigned b = 0; b < boots; b++) {
		uint32_t m = 0;
		for (uint32_t i = 0; i < n && i < chunks; i++) {
			seed = seed * 1103515245u + 12345u;
			/* chunks walked with a stride coprime to nothing in
			 * particular: unique while i < chunks */
			h[m++] = (struct bootset_hit){ (uint32_t)((i * 7u + b) % chunks), (seed >> 8) % 30000 };
		}
		/* drop repeats (a stride may wrap onto a chunk seen) */
		uint32_t w = 0;
		for (uint32_t i = 0; i < m; i++) {
			bool dup = false;
			for (uint32_t j = 0; j < w && !dup; j++)
				dup = h[j].chunk == h[i].chunk;
			if (!dup)
				h[w++] = h[i];
		}
		if (bootset_merge(bs, h, w, BOOTSET_MAX_CHUNKS_DEFAULT) < 0)
			exit(1);
	}
	free(h);
}

static void make_seeds(const char *dir)
{
	struct bootset bs;

	bootset_init(&bs, 0);
	seed_write(dir, "empty_nodisk", 0, &bs, 0);
	bootset_init(&bs, 1u << 30);
	seed_write(dir, "empty", 0, &bs, 0);

	seed_set(&bs, 1u << 30, 10, 1, 1);
	seed_write(dir, "one_boot_10", 0 | 4 * 3, &bs, 0);
	bootset_free(&bs);

	seed_set(&bs, 40ull * BOOTSET_CHUNK + 777, 30, 3, 2);
	seed_write(dir, "three_boots_short_end", 4 * 63, &bs, 0);
	seed_write(dir, "three_boots_fixcrc", 3 | 4 * 5, &bs, 0);
	bootset_free(&bs);

	seed_set(&bs, 2000ull * BOOTSET_CHUNK, 600, 2, 3);
	seed_write(dir, "blocks_600", 4 * 15, &bs, 0);
	seed_write(dir, "blocks_600_torn", 4 * 15, &bs, HDR + 256 * 12 + 4 + 100);
	seed_write(dir, "blocks_600_fixcrc", 3, &bs, 0);
	bootset_free(&bs);

	seed_set(&bs, 1000ull * BOOTSET_CHUNK, 40, 2, 4);
	bs.boots = 0;
	bs.inherited_from = 12;
	seed_write(dir, "inherited", 4 * 7, &bs, 0);
	bootset_free(&bs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("PRISTINE_FUZZ_SEEDS");

	(void)argc; (void)argv;
	if (dir) {
		make_seeds(dir);
		exit(0);
	}
	return 0;
}
