/*
 * test_bootset.c - boot sets (src/storage/bootset.c) and the recording
 * of one boot (src/storage/bootrec.c).
 *
 * Merge: order, means, counts, an inherited set replaced by the first own
 * boot, which entries a bound drops, and the time of a 1M-entry merge.
 * File: round trips; the file cut at EVERY byte offset and a byte flipped
 * at every offset must decode to -EBADMSG or to a prefix of what was
 * written (whole blocks, *cut right); entries that break the rules under
 * a good CRC; huge counts in a header.  Plan: windows, sorting, joining,
 * max_read, the short last chunk.  Recording: chunk borders, repeats,
 * due after settle/max/full, order, four threads at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "storage/bootrec.h"
#include "storage/bootset.h"
#include "util/crc32c.h"

#define C BOOTSET_CHUNK
#define MS 1000000LL
#define S 1000000000LL

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void expect_entry(const struct bootset *bs, uint32_t i, uint32_t chunk, uint32_t at_ms,
			 uint32_t boots)
{
	assert_true(i < bs->n);
	assert_int_equal(bs->e[i].chunk, chunk);
	assert_int_equal(bs->e[i].at_ms, at_ms);
	assert_int_equal(bs->e[i].boots, boots);
}

/* Sorted by (at_ms, chunk), chunks unique and inside the disk. */
static void expect_sane(const struct bootset *bs)
{
	uint64_t chunks = (bs->disk_size + C - 1) / C;
	uint8_t *seen = calloc(1, (size_t)chunks + 1);

	assert_non_null(seen);
	assert_true(bs->n <= bs->cap || bs->n == 0);
	for (uint32_t i = 0; i < bs->n; i++) {
		assert_true(bs->e[i].chunk < chunks);
		assert_false(seen[bs->e[i].chunk]);
		seen[bs->e[i].chunk] = 1;
		assert_true(bs->e[i].boots >= 1);
		if (i)
			assert_true(bs->e[i - 1].at_ms < bs->e[i].at_ms ||
				    (bs->e[i - 1].at_ms == bs->e[i].at_ms &&
				     bs->e[i - 1].chunk < bs->e[i].chunk));
	}
	free(seen);
}

/* ---- merge ------------------------------------------------------------ */

static void test_merge_order_means_counts(void **state)
{
	struct bootset bs;
	struct bootset_hit b1[] = { { 3, 100 }, { 1, 200 }, { 7, 50 } };
	/* chunk 99 is past the disk, chunk 1 twice: both ignored */
	struct bootset_hit b2[] = { { 1, 101 }, { 5, 300 }, { 99, 1 }, { 1, 0 } };
	struct bootset_hit b3[] = { { 1, 100 }, { 7, 51 } };

	(void)state;
	bootset_init(&bs, 10 * (uint64_t)C);
	assert_int_equal(bootset_merge(&bs, b1, 3, 100), 0);
	assert_int_equal(bs.boots, 1);
	assert_int_equal(bs.n, 3);
	expect_entry(&bs, 0, 7, 50, 1);
	expect_entry(&bs, 1, 3, 100, 1);
	expect_entry(&bs, 2, 1, 200, 1);

	assert_int_equal(bootset_merge(&bs, b2, 4, 100), 0);
	assert_int_equal(bs.boots, 2);
	assert_int_equal(bs.n, 4);
	/* (200 + 101) / 2 = 150.5: rounded to 151 */
	expect_entry(&bs, 0, 7, 50, 1);
	expect_entry(&bs, 1, 3, 100, 1);
	expect_entry(&bs, 2, 1, 151, 2);
	expect_entry(&bs, 3, 5, 300, 1);

	assert_int_equal(bootset_merge(&bs, b3, 2, 100), 0);
	assert_int_equal(bs.boots, 3);
	/* (151 * 2 + 100) / 3 = 134; (50 + 51) / 2 = 50.5 -> 51 */
	expect_entry(&bs, 0, 7, 51, 2);
	expect_entry(&bs, 1, 3, 100, 1);
	expect_entry(&bs, 2, 1, 134, 3);
	expect_entry(&bs, 3, 5, 300, 1);
	assert_int_equal(bs.inherited_from, 0);
	expect_sane(&bs);

	/* nothing read: nothing changes, no boot counted */
	assert_int_equal(bootset_merge(&bs, b1, 0, 100), 0);
	assert_int_equal(bs.boots, 3);
	assert_int_equal(bs.n, 4);
	struct bootset_hit outside[] = { { 10, 5 }, { 1000, 6 } };
	assert_int_equal(bootset_merge(&bs, outside, 2, 100), 0);
	assert_int_equal(bs.boots, 3);
	assert_int_equal(bs.n, 4);
	/* a bound out of range */
	assert_int_equal(bootset_merge(&bs, b1, 3, 0), -EINVAL);
	assert_int_equal(bootset_merge(&bs, b1, 3, BOOTSET_MAX_CHUNKS_LIMIT + 1), -EINVAL);
	assert_int_equal(bs.boots, 3);
	expect_entry(&bs, 2, 1, 134, 3);

	/* equal times order by chunk */
	struct bootset_hit same[] = { { 9, 0 }, { 8, 0 } };
	assert_int_equal(bootset_merge(&bs, same, 2, 100), 0);
	expect_entry(&bs, 0, 8, 0, 1);
	expect_entry(&bs, 1, 9, 0, 1);
	expect_sane(&bs);
	bootset_free(&bs);
	assert_int_equal(bs.n, 0);
	assert_null(bs.e);
	assert_int_equal(bs.disk_size, 10 * (uint64_t)C);
	bootset_free(NULL);
}

static void test_merge_inherited(void **state)
{
	struct bootset parent, child;
	struct bootset_hit p1[] = { { 0, 10 }, { 1, 20 }, { 2, 30 } };
	struct bootset_hit own[] = { { 5, 7 }, { 1, 1000 } };

	(void)state;
	bootset_init(&parent, 8 * (uint64_t)C);
	assert_int_equal(bootset_merge(&parent, p1, 3, 100), 0);
	assert_int_equal(bootset_merge(&parent, p1, 3, 100), 0);
	assert_int_equal(bootset_copy(&child, &parent), 0);
	child.boots = 0;
	child.inherited_from = 4;
	/* the copy is its own memory */
	assert_ptr_not_equal(child.e, parent.e);
	child.e[0].at_ms = 11;
	assert_int_equal(parent.e[0].at_ms, 10);

	assert_int_equal(bootset_merge(&child, own, 2, 100), 0);
	/* replaced whole: only the own boot's chunks, its times, one boot */
	assert_int_equal(child.inherited_from, 0);
	assert_int_equal(child.boots, 1);
	assert_int_equal(child.n, 2);
	expect_entry(&child, 0, 5, 7, 1);
	expect_entry(&child, 1, 1, 1000, 1);
	/* and the next boot merges as usual */
	assert_int_equal(bootset_merge(&child, own, 1, 100), 0);
	assert_int_equal(child.boots, 2);
	expect_entry(&child, 0, 5, 7, 2);
	expect_entry(&child, 1, 1, 1000, 1);
	bootset_free(&child);

	/* an inherited set replaced by a boot larger than the bound */
	assert_int_equal(bootset_copy(&child, &parent), 0);
	child.boots = 0;
	child.inherited_from = 2;
	struct bootset_hit big[] = { { 7, 1 }, { 6, 2 }, { 3, 3 }, { 4, 4 } };
	assert_int_equal(bootset_merge(&child, big, 4, 2), 0);
	assert_int_equal(child.n, 2);
	expect_entry(&child, 0, 7, 1, 1);
	expect_entry(&child, 1, 6, 2, 1);
	bootset_free(&child);
	bootset_free(&parent);
}

static void test_merge_bound(void **state)
{
	struct bootset bs;
	struct bootset_hit b1[] = { { 0, 0 }, { 1, 10 }, { 2, 20 }, { 3, 30 } };
	struct bootset_hit b2[] = { { 0, 0 }, { 4, 5 }, { 2, 20 } };

	(void)state;
	bootset_init(&bs, 16 * (uint64_t)C);
	assert_int_equal(bootset_merge(&bs, b1, 4, 100), 0);
	/* 5 candidates for 3 places: 0 and 2 were read twice; of the
	 * others (read once) the latest go: 3, then 1 */
	assert_int_equal(bootset_merge(&bs, b2, 3, 3), 0);
	assert_int_equal(bs.n, 3);
	assert_int_equal(bs.boots, 2);
	expect_entry(&bs, 0, 0, 0, 2);
	expect_entry(&bs, 1, 4, 5, 1);
	expect_entry(&bs, 2, 2, 20, 2);
	/* a set larger than a lowered bound is cut at the next merge,
	 * keeping the most read even when they are the latest */
	struct bootset_hit b3[] = { { 9, 1 } };
	assert_int_equal(bootset_merge(&bs, b3, 1, 2), 0);
	assert_int_equal(bs.n, 2);
	expect_entry(&bs, 0, 0, 0, 2);
	expect_entry(&bs, 1, 2, 20, 2);
	expect_sane(&bs);
	bootset_free(&bs);
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_merge_big(void **state)
{
	const uint32_t n = BOOTSET_MAX_CHUNKS_LIMIT;
	struct bootset_hit *h = malloc((size_t)n * sizeof(*h));
	struct bootset bs;
	uint64_t s = 12345;
	double t0, t1, t2;

	(void)state;
	assert_non_null(h);
	/* a disk of 2M chunks; boot 1 reads 1M of them in random order */
	bootset_init(&bs, 2 * (uint64_t)n * C);
	for (uint32_t i = 0; i < n; i++)
		h[i] = (struct bootset_hit){ i * 2, i / 16 };
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rnd(&s) % (i + 1));
		uint32_t c = h[i].chunk;
		h[i].chunk = h[j].chunk;
		h[j].chunk = c;
	}
	t0 = cpu_s();
	assert_int_equal(bootset_merge(&bs, h, n, n), 0);
	t1 = cpu_s();
	assert_int_equal(bs.n, n);
	/* boot 2: half the same chunks, half new ones, over the bound */
	for (uint32_t i = 0; i < n; i++)
		h[i].chunk = (i % 2) ? h[i].chunk : i * 2 + 1;
	assert_int_equal(bootset_merge(&bs, h, n, n), 0);
	t2 = cpu_s();
	assert_int_equal(bs.n, n);
	print_message("merge of %u entries: %.3f s, then %.3f s of CPU\n", n,
		      t1 - t0, t2 - t1);
	/* CPU time, so that other work on the box does not count; well
	 * under a second in the release build (O(n log n) at worst);
	 * this sanitizer build, with its debug check of the result, takes
	 * about twice as long: a quadratic merge would take hours */
	assert_true(t1 - t0 < 2.0);
	assert_true(t2 - t1 < 2.0);
	/* every chunk read twice is kept (the bound dropped once-read ones) */
	uint32_t twice = 0;
	for (uint32_t i = 0; i < bs.n; i++)
		twice += bs.e[i].boots == 2;
	assert_int_equal(twice, n / 2);
	assert_int_equal(bs.boots, 2);
	expect_sane(&bs);
	free(h);
	bootset_free(&bs);
}

static void test_bytes_copy(void **state)
{
	struct bootset bs, cp;
	struct bootset_hit h[] = { { 0, 1 }, { 3, 2 } };

	(void)state;
	/* 3 whole chunks and a short one of 1000 bytes */
	bootset_init(&bs, 3 * (uint64_t)C + 1000);
	assert_int_equal(bootset_bytes(&bs), 0);
	assert_int_equal(bootset_merge(&bs, h, 2, 10), 0);
	assert_int_equal(bootset_bytes(&bs), C + 1000);
	assert_int_equal(bootset_copy(&cp, &bs), 0);
	assert_int_equal(cp.n, 2);
	assert_int_equal(cp.boots, 1);
	assert_int_equal(cp.disk_size, bs.disk_size);
	assert_memory_equal(cp.e, bs.e, 2 * sizeof(*cp.e));
	bootset_free(&bs);
	assert_int_equal(bootset_bytes(&cp), C + 1000);
	bootset_free(&cp);
	/* a copy of an empty set allocates nothing */
	bootset_init(&bs, C);
	assert_int_equal(bootset_copy(&cp, &bs), 0);
	assert_null(cp.e);
	bootset_free(&cp);
}

/* ---- the file --------------------------------------------------------- */

/* A set of n entries over a disk of 4n chunks (plus a short one), made by
 * merges, so it follows the rules. */
static void make_set(struct bootset *bs, uint32_t n, uint64_t seed)
{
	struct bootset_hit *h = malloc(((size_t)n + 1) * sizeof(*h));

	assert_non_null(h);
	bootset_init(bs, 4 * (uint64_t)n * C + 777);
	for (int boot = 0; boot < 3; boot++) {
		for (uint32_t i = 0; i < n; i++)
			h[i] = (struct bootset_hit){ (uint32_t)(rnd(&seed) % (4 * (uint64_t)n + 1)),
						     (uint32_t)(rnd(&seed) % 60000) };
		/* unique chunks: keep the first of each */
		uint32_t m = 0;
		for (uint32_t i = 0; i < n; i++) {
			bool dup = false;
			for (uint32_t j = 0; j < m && !dup; j++)
				dup = h[j].chunk == h[i].chunk;
			if (!dup)
				h[m++] = h[i];
		}
		assert_int_equal(bootset_merge(bs, h, m, n ? n : 1), 0);
	}
	free(h);
	assert_int_equal(bs->n, n);
}

static void expect_same_set(const struct bootset *a, const struct bootset *b)
{
	assert_int_equal(a->disk_size, b->disk_size);
	assert_int_equal(a->boots, b->boots);
	assert_int_equal(a->inherited_from, b->inherited_from);
	assert_int_equal(a->n, b->n);
	if (a->n)
		assert_memory_equal(a->e, b->e, a->n * sizeof(*a->e));
}

static size_t blocks_len(uint32_t n)
{
	return 64 + (size_t)n * 12 + (n + BOOTSET_BLOCK_ENTRIES - 1) / BOOTSET_BLOCK_ENTRIES * 4;
}

static void test_roundtrip(void **state)
{
	uint32_t sizes[] = { 0, 1, 255, 256, 257, 600, 1000 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct bootset bs, back;
		uint8_t *buf;
		size_t len;
		uint32_t cut = 99;

		make_set(&bs, sizes[i], 77 + i);
		if (i % 2) {
			bs.boots = 0;
			bs.inherited_from = (uint32_t)i;
		}
		assert_int_equal(bootset_encode(&bs, &buf, &len), 0);
		assert_int_equal(len, blocks_len(sizes[i]));
		assert_true(len <= BOOTSET_FILE_MAX);
		assert_int_equal(bootset_decode(buf, len, &back, &cut), 0);
		assert_int_equal(cut, 0);
		expect_same_set(&bs, &back);
		/* bytes after the last block change nothing */
		uint8_t *more = malloc(len + 5);
		assert_non_null(more);
		memcpy(more, buf, len);
		memset(more + len, 0xaa, 5);
		bootset_free(&back);
		assert_int_equal(bootset_decode(more, len + 5, &back, &cut), 0);
		assert_int_equal(cut, 0);
		expect_same_set(&bs, &back);
		free(more);
		bootset_free(&back);
		bootset_free(&bs);
		free(buf);
	}
	/* the file of the largest set is BOOTSET_FILE_MAX bytes */
	assert_int_equal(blocks_len(BOOTSET_MAX_CHUNKS_LIMIT), BOOTSET_FILE_MAX);
}

/* Decode and check: -EBADMSG (then empty) or a prefix of orig with *cut
 * right; returns the entries kept (-1 for -EBADMSG). */
static int64_t decode_prefix(const uint8_t *buf, size_t len, const struct bootset *orig)
{
	struct bootset d;
	uint32_t cut = 12345;
	int rc = bootset_decode(buf, len, &d, &cut);
	int64_t kept;

	if (rc == -EBADMSG) {
		assert_int_equal(d.n, 0);
		assert_null(d.e);
		return -1;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(d.disk_size, orig->disk_size);
	assert_int_equal(d.boots, orig->boots);
	assert_int_equal(d.inherited_from, orig->inherited_from);
	assert_true(d.n <= orig->n);
	assert_int_equal(cut, orig->n - d.n);
	/* whole blocks only */
	assert_true(d.n == orig->n || d.n % BOOTSET_BLOCK_ENTRIES == 0);
	if (d.n)
		assert_memory_equal(d.e, orig->e, d.n * sizeof(*d.e));
	kept = d.n;
	bootset_free(&d);
	return kept;
}

static void test_truncated_every_offset(void **state)
{
	struct bootset bs;
	uint8_t *buf;
	size_t len;

	(void)state;
	make_set(&bs, 600, 5);         /* blocks of 256, 256 and 88 */
	assert_int_equal(bootset_encode(&bs, &buf, &len), 0);
	for (size_t l = 0; l <= len; l++) {
		/* a copy of exactly l bytes, so ASan sees any read past it */
		uint8_t *t = malloc(l ? l : 1);
		assert_non_null(t);
		memcpy(t, buf, l);
		int64_t kept = decode_prefix(t, l, &bs);
		int64_t want;
		if (l < 64)
			want = -1;
		else if (l < blocks_len(256))
			want = 0;
		else if (l < blocks_len(512))
			want = 256;
		else if (l < len)
			want = 512;
		else
			want = 600;
		assert_int_equal(kept, want);
		free(t);
	}
	free(buf);
	bootset_free(&bs);
}

static void test_flipped_every_byte(void **state)
{
	struct bootset bs;
	uint8_t *buf;
	size_t len;
	const uint8_t masks[] = { 0x01, 0x80, 0xff };

	(void)state;
	make_set(&bs, 300, 9);         /* blocks of 256 and 44 */
	assert_int_equal(bootset_encode(&bs, &buf, &len), 0);
	for (size_t o = 0; o < len; o++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			buf[o] ^= masks[m];
			int64_t kept = decode_prefix(buf, len, &bs);
			buf[o] ^= masks[m];
			/* the header's CRC covers it all; a block's CRC its block */
			if (o < 64)
				assert_int_equal(kept, -1);
			else if (o < blocks_len(256))
				assert_int_equal(kept, 0);
			else
				assert_int_equal(kept, 256);
		}
	}
	free(buf);
	bootset_free(&bs);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* Set a header field and make the header's CRC right again. */
static void patch_header(uint8_t *buf, size_t off, uint32_t v)
{
	put32(buf + off, v);
	put32(buf + 60, crc32c(buf, 60));
}

static void test_header_bounds(void **state)
{
	struct bootset bs, d;
	uint8_t *buf, hdr[64];
	size_t len;
	uint32_t cut;

	(void)state;
	/* a disk of 2^36 chunks: a count of the hard bound fits it */
	bootset_init(&bs, (uint64_t)C << 36);
	assert_int_equal(bootset_encode(&bs, &buf, &len), 0);
	assert_int_equal(len, 64);
	memcpy(hdr, buf, 64);

	/* huge counts: refused, nothing allocated */
	patch_header(hdr, 32, UINT32_MAX);
	assert_int_equal(bootset_decode(hdr, 64, &d, &cut), -EBADMSG);
	assert_null(d.e);
	patch_header(hdr, 32, BOOTSET_MAX_CHUNKS_LIMIT + 1);
	assert_int_equal(bootset_decode(hdr, 64, &d, &cut), -EBADMSG);
	/* the bound itself over 64 bytes: nothing there, nothing allocated */
	patch_header(hdr, 32, BOOTSET_MAX_CHUNKS_LIMIT);
	assert_int_equal(bootset_decode(hdr, 64, &d, &cut), 0);
	assert_int_equal(cut, BOOTSET_MAX_CHUNKS_LIMIT);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.cap, 0);
	assert_null(d.e);
	bootset_free(&d);
	/* ... and over a few blocks' bytes: room for what is there only */
	uint8_t *big = calloc(1, 64 + 1000);
	assert_non_null(big);
	memcpy(big, hdr, 64);
	assert_int_equal(bootset_decode(big, 64 + 1000, &d, &cut), 0);
	assert_true(d.cap <= 1000 / 12);
	assert_int_equal(d.n, 0);
	bootset_free(&d);
	free(big);
	/* more entries than the disk has chunks */
	memcpy(hdr, buf, 64);
	put32(hdr + 16, 3 * C);
	put32(hdr + 20, 0);
	patch_header(hdr, 32, 4);
	assert_int_equal(bootset_decode(hdr, 64, &d, &cut), -EBADMSG);
	patch_header(hdr, 32, 3);
	assert_int_equal(bootset_decode(hdr, 64, &d, &cut), 0);
	assert_int_equal(cut, 3);
	bootset_free(&d);
	/* magic, format, chunk size, block size, reserved bytes */
	size_t offs[] = { 0, 8, 12, 36, 40, 56 };
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		memcpy(hdr, buf, 64);
		uint32_t v = (uint32_t)hdr[offs[i]] | (uint32_t)hdr[offs[i] + 1] << 8 |
			     (uint32_t)hdr[offs[i] + 2] << 16 | (uint32_t)hdr[offs[i] + 3] << 24;
		patch_header(hdr, offs[i], v ^ 1);
		assert_int_equal(bootset_decode(hdr, 64, &d, &cut), -EBADMSG);
	}
	free(buf);
	bootset_free(&bs);
}

/* The file of entries e[0..n) as given (encode does not check them). */
static size_t encode_raw(const struct bootset_entry *e, uint32_t n, uint64_t disk, uint32_t boots,
			 uint32_t inherited, uint8_t **buf)
{
	struct bootset bs;
	size_t len;

	bootset_init(&bs, disk);
	bs.boots = boots;
	bs.inherited_from = inherited;
	bs.n = bs.cap = n;
	bs.e = (struct bootset_entry *)e;
	assert_int_equal(bootset_encode(&bs, buf, &len), 0);
	return len;
}

/* Decode e[0..n) (600 entries, three blocks) with entry bad at index at
 * set to x: the blocks before the one holding it are kept. */
static void expect_cut_at(struct bootset_entry *e, uint32_t n, uint32_t boots, uint32_t inherited,
			  uint32_t at, struct bootset_entry x, uint32_t kept)
{
	struct bootset_entry save = e[at];
	struct bootset d;
	uint8_t *buf;
	uint32_t cut;
	size_t len;

	e[at] = x;
	len = encode_raw(e, n, 2000 * (uint64_t)C, boots, inherited, &buf);
	assert_int_equal(bootset_decode(buf, len, &d, &cut), 0);
	assert_int_equal(d.n, kept);
	assert_int_equal(cut, n - kept);
	if (kept)
		assert_memory_equal(d.e, e, kept * sizeof(*e));
	e[at] = save;
	bootset_free(&d);
	free(buf);
}

static void test_rules_under_good_crc(void **state)
{
	struct bootset_entry e[600];
	struct bootset d;
	uint8_t *buf;
	uint32_t cut;
	size_t len;

	(void)state;
	/* chunk 3i at 10i ms, read by 1..3 boots of 3 */
	for (uint32_t i = 0; i < 600; i++)
		e[i] = (struct bootset_entry){ 3 * i, 10 * i, 1 + i % 3 };
	len = encode_raw(e, 600, 2000 * (uint64_t)C, 3, 0, &buf);
	assert_int_equal(bootset_decode(buf, len, &d, &cut), 0);
	assert_int_equal(d.n, 600);
	bootset_free(&d);
	free(buf);

	/* a chunk past the disk (2000 chunks) in the second block */
	expect_cut_at(e, 600, 3, 0, 300, (struct bootset_entry){ 2000, 3000, 1 }, 256);
	/* the last chunk of the disk is fine */
	expect_cut_at(e, 600, 3, 0, 599, (struct bootset_entry){ 1999, 5990, 1 }, 600);
	/* a chunk of the first block again in the third, in order by time */
	expect_cut_at(e, 600, 3, 0, 520, (struct bootset_entry){ 3 * 7, 5200, 1 }, 512);
	/* ... and twice in one block */
	expect_cut_at(e, 600, 3, 0, 5, (struct bootset_entry){ 3 * 2, 50, 1 }, 0);
	/* out of order by time: within a block, and across a block border */
	expect_cut_at(e, 600, 3, 0, 100, (struct bootset_entry){ 3 * 100, 5, 1 }, 0);
	expect_cut_at(e, 600, 3, 0, 256, (struct bootset_entry){ 3 * 256, 2540, 1 }, 256);
	/* the same time: ordered by chunk */
	expect_cut_at(e, 600, 3, 0, 257, (struct bootset_entry){ 3 * 256 - 1, 2560, 1 }, 256);
	expect_cut_at(e, 600, 3, 0, 257, (struct bootset_entry){ 3 * 256 + 1, 2560, 1 }, 600);
	/* boots: 0, or more than the set's own */
	expect_cut_at(e, 600, 3, 0, 599, (struct bootset_entry){ 3 * 599, 5990, 0 }, 512);
	expect_cut_at(e, 600, 3, 0, 300, (struct bootset_entry){ 3 * 300, 3000, 4 }, 256);
	/* an inherited set keeps its parent's counts (boots 0) */
	expect_cut_at(e, 600, 0, 7, 300, (struct bootset_entry){ 3 * 300, 3000, 4 }, 600);
	/* an own set of no boots can hold nothing */
	expect_cut_at(e, 600, 0, 0, 0, e[0], 0);
}

/* ---- the plan --------------------------------------------------------- */

static void expect_ext(const struct bootset_extent *x, uint32_t i, uint64_t chunk, uint32_t len)
{
	assert_int_equal(x[i].off, chunk * C);
	assert_int_equal(x[i].len, len);
}

static void test_plan(void **state)
{
	struct bootset bs;
	struct bootset_extent *x;
	uint32_t n;
	/* 10 whole chunks and a short 11th of 1000 bytes */
	struct bootset_hit h[] = { { 5, 1 }, { 3, 2 }, { 4, 3 }, { 10, 4 },
				   { 0, 5 }, { 1, 6 }, { 2, 7 }, { 8, 8 } };

	(void)state;
	bootset_init(&bs, 10 * (uint64_t)C + 1000);
	assert_int_equal(bootset_plan(&bs, 4, 2 * C, &x, &n), 0);
	assert_int_equal(n, 0);
	free(x);
	assert_int_equal(bootset_merge(&bs, h, 8, 100), 0);

	/* windows of 4: {5,3,4,10} then {0,1,2,8}; reads of at most 2 chunks */
	assert_int_equal(bootset_plan(&bs, 4, 2 * C, &x, &n), 0);
	assert_int_equal(n, 6);
	expect_ext(x, 0, 3, 2 * C);
	expect_ext(x, 1, 5, C);
	expect_ext(x, 2, 10, 1000);
	expect_ext(x, 3, 0, 2 * C);
	expect_ext(x, 4, 2, C);
	expect_ext(x, 5, 8, C);
	free(x);

	/* one window: 0..5 in one read of 6 chunks, 8, and the short 10 */
	assert_int_equal(bootset_plan(&bs, 1000, 1u << 20, &x, &n), 0);
	assert_int_equal(n, 3);
	expect_ext(x, 0, 0, 6 * C);
	expect_ext(x, 1, 8, C);
	expect_ext(x, 2, 10, 1000);
	free(x);

	/* windows of 1: the first-read order, one chunk a read */
	assert_int_equal(bootset_plan(&bs, 1, 1u << 20, &x, &n), 0);
	assert_int_equal(n, 8);
	for (uint32_t i = 0; i < 8; i++)
		expect_ext(x, i, h[i].chunk, h[i].chunk == 10 ? 1000 : C);
	free(x);

	/* a short last chunk joined to the one before it */
	struct bootset_hit tail[] = { { 9, 0 } };
	assert_int_equal(bootset_merge(&bs, tail, 1, 100), 0);
	assert_int_equal(bootset_plan(&bs, 1000, 1u << 20, &x, &n), 0);
	assert_int_equal(n, 2);
	expect_ext(x, 0, 0, 6 * C);
	expect_ext(x, 1, 8, 2 * C + 1000);
	free(x);

	/* arguments */
	x = (void *)1;
	assert_int_equal(bootset_plan(&bs, 0, C, &x, &n), -EINVAL);
	assert_null(x);
	assert_int_equal(bootset_plan(&bs, 4, 0, &x, &n), -EINVAL);
	assert_int_equal(bootset_plan(&bs, 4, C + 512, &x, &n), -EINVAL);
	bootset_free(&bs);
}

/* ---- recording one boot ---------------------------------------------- */

static void test_rec_note(void **state)
{
	struct bootrec r;
	struct bootset_hit *h;
	uint32_t n;
	unsigned v = 0;
	const int64_t t0 = 1000 * S;

	(void)state;
	bootrec_init(&r);
	/* idle: nothing noted, nothing due, nothing to finish */
	bootrec_note(&r, 0, C, t0);
	assert_false(bootrec_active(&r));
	assert_false(bootrec_due(&r, t0 + 1000 * S));
	assert_int_equal(bootrec_finish(&r, &h, &n, &v), -ENOENT);

	assert_int_equal(bootrec_start(&r, 0, 0, 10, t0), -EINVAL);
	assert_int_equal(bootrec_start(&r, 0, C, 0, t0), -EINVAL);
	assert_int_equal(bootrec_start(&r, 0, C, BOOTSET_MAX_CHUNKS_LIMIT + 1, t0), -EINVAL);
	assert_false(bootrec_active(&r));

	/* 10 whole chunks and a short one of 512 bytes */
	assert_int_equal(bootrec_start(&r, 42, 10 * (uint64_t)C + 512, 100, t0), 0);
	assert_true(bootrec_active(&r));
	bootrec_note(&r, C - 512, 1024, t0 + 5 * MS);         /* chunks 0 and 1 */
	bootrec_note(&r, 0, 100, t0 + 6 * MS);                /* seen */
	bootrec_note(&r, C + 7, 0, t0 + 6 * MS);              /* empty */
	bootrec_note(&r, 3 * (uint64_t)C, 2 * C + 1, t0 + 7 * MS);   /* 3, 4, 5 */
	bootrec_note(&r, 4 * (uint64_t)C, C, t0 + 8 * MS);    /* seen */
	bootrec_note(&r, 11 * (uint64_t)C, C, t0 + 9 * MS);   /* past the disk */
	bootrec_note(&r, 10 * (uint64_t)C + 100, 9999, t0 + 2500 * MS);  /* 10, clipped */
	bootrec_note(&r, 2 * (uint64_t)C, 1, t0 - 5 * MS);    /* a clock behind: 0 ms */
	assert_int_equal(bootrec_finish(&r, &h, &n, &v), 0);
	assert_false(bootrec_active(&r));
	assert_int_equal(v, 42);
	assert_int_equal(n, 7);
	uint32_t chunks[] = { 0, 1, 3, 4, 5, 10, 2 }, ms[] = { 5, 5, 7, 7, 7, 2500, 0 };
	for (uint32_t i = 0; i < 7; i++) {
		assert_int_equal(h[i].chunk, chunks[i]);
		assert_int_equal(h[i].at_ms, ms[i]);
	}
	free(h);

	/* a restart drops the recording in progress; cancel ends it */
	assert_int_equal(bootrec_start(&r, 1, 4 * (uint64_t)C, 100, t0), 0);
	bootrec_note(&r, 0, C, t0);
	assert_int_equal(bootrec_start(&r, 2, 4 * (uint64_t)C, 100, t0), 0);
	bootrec_note(&r, C, C, t0 + MS);
	assert_int_equal(bootrec_finish(&r, &h, &n, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(n, 1);
	assert_int_equal(h[0].chunk, 1);
	free(h);
	assert_int_equal(bootrec_start(&r, 3, 4 * (uint64_t)C, 100, t0), 0);
	bootrec_note(&r, 0, C, t0);
	bootrec_cancel(&r);
	assert_false(bootrec_active(&r));
	assert_int_equal(bootrec_finish(&r, &h, &n, &v), -ENOENT);
	/* nothing read: no hits */
	assert_int_equal(bootrec_start(&r, 4, 4 * (uint64_t)C, 100, t0), 0);
	assert_int_equal(bootrec_finish(&r, &h, &n, &v), 0);
	assert_int_equal(n, 0);
	free(h);
	bootrec_destroy(&r);
}

static void test_rec_due(void **state)
{
	struct bootrec r;
	struct bootset_hit *h;
	uint32_t n;
	unsigned v;
	const int64_t t0 = 50 * S;

	(void)state;
	bootrec_init(&r);
	/* held from its start (the firmware's part of a boot): never
	 * settles, only ends at BOOTREC_MAX_NS; released at t0 + S (the OS
	 * logged in), it settles BOOTREC_SETTLE_NS after the last new chunk
	 * or the release */
	assert_int_equal(bootrec_start(&r, 1, 1000 * (uint64_t)C, 100, t0), 0);
	bootrec_note(&r, 0, C, t0);
	assert_false(bootrec_due(&r, t0 + BOOTREC_SETTLE_NS * 3));
	assert_false(bootrec_due(&r, t0 + BOOTREC_MAX_NS - 1));
	assert_true(bootrec_due(&r, t0 + BOOTREC_MAX_NS));
	bootrec_release(&r, t0 + S);
	assert_false(bootrec_due(&r, t0 + S + BOOTREC_SETTLE_NS - 1));
	assert_true(bootrec_due(&r, t0 + S + BOOTREC_SETTLE_NS));
	bootrec_cancel(&r);

	/* released at once (an OS's login): settles BOOTREC_SETTLE_NS after
	 * the last new chunk */
	assert_int_equal(bootrec_start(&r, 1, 1000 * (uint64_t)C, 100, t0), 0);
	bootrec_release(&r, t0);
	assert_false(bootrec_due(&r, t0 + BOOTREC_SETTLE_NS - 1));
	bootrec_note(&r, 0, C, t0 + S);
	assert_false(bootrec_due(&r, t0 + BOOTREC_SETTLE_NS));
	bootrec_note(&r, 0, C, t0 + 5 * S);     /* not new: does not keep it going */
	assert_false(bootrec_due(&r, t0 + S + BOOTREC_SETTLE_NS - 1));
	assert_true(bootrec_due(&r, t0 + S + BOOTREC_SETTLE_NS));
	bootrec_cancel(&r);

	/* never settles: ends BOOTREC_MAX_NS after it began */
	assert_int_equal(bootrec_start(&r, 1, 1000 * (uint64_t)C, 1000, t0), 0);
	int64_t t = t0;
	uint64_t c = 0;
	for (; t < t0 + BOOTREC_MAX_NS - S; t += S) {
		bootrec_note(&r, c++ * C, 1, t);
		assert_false(bootrec_due(&r, t));
	}
	bootrec_note(&r, c++ * C, 1, t0 + BOOTREC_MAX_NS - 1);
	assert_false(bootrec_due(&r, t0 + BOOTREC_MAX_NS - 1));
	assert_true(bootrec_due(&r, t0 + BOOTREC_MAX_NS));
	assert_int_equal(bootrec_finish(&r, &h, &n, &v), 0);
	assert_int_equal(n, c);
	free(h);

	/* full: max_chunks chunks, later ones not noted */
	assert_int_equal(bootrec_start(&r, 1, 1000 * (uint64_t)C, 3, t0), 0);
	bootrec_note(&r, 0, 2 * C, t0);
	assert_false(bootrec_due(&r, t0));
	bootrec_note(&r, 5 * (uint64_t)C, 3 * C, t0 + MS);
	assert_true(bootrec_due(&r, t0 + MS));
	bootrec_note(&r, 100 * (uint64_t)C, C, t0 + 2 * MS);
	assert_int_equal(bootrec_finish(&r, &h, &n, &v), 0);
	assert_int_equal(n, 3);
	assert_int_equal(h[2].chunk, 5);
	free(h);
	bootrec_destroy(&r);
}

#define REC_THREADS 4
#define REC_CHUNKS 20000u

struct rec_arg {
	struct bootrec *r;
	unsigned t;
};

/* Read every chunk of the disk, in a thread's own order, in reads of 1
 * to 3 chunks that start anywhere in a chunk. */
static void *rec_reader(void *p)
{
	struct rec_arg *a = p;
	uint64_t s = 99 + a->t;

	for (uint32_t i = 0; i < REC_CHUNKS; i++) {
		uint64_t c = (uint64_t)(i * 7919u + a->t * 5003u) % REC_CHUNKS;
		uint64_t off = c * C + rnd(&s) % C;
		bootrec_note(a->r, off, 1 + rnd(&s) % (2 * C), 1000 * S + i * MS);
	}
	return NULL;
}

static void test_rec_threads(void **state)
{
	struct bootrec r;
	pthread_t th[REC_THREADS];
	struct rec_arg a[REC_THREADS];
	struct bootset_hit *h;
	uint32_t n;
	unsigned v;
	uint8_t *seen = calloc(1, REC_CHUNKS);

	(void)state;
	assert_non_null(seen);
	bootrec_init(&r);
	assert_int_equal(bootrec_start(&r, 9, (uint64_t)REC_CHUNKS * C, BOOTSET_MAX_CHUNKS_LIMIT,
				       1000 * S), 0);
	for (unsigned t = 0; t < REC_THREADS; t++) {
		a[t] = (struct rec_arg){ &r, t };
		assert_int_equal(pthread_create(&th[t], NULL, rec_reader, &a[t]), 0);
	}
	for (unsigned t = 0; t < REC_THREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(bootrec_finish(&r, &h, &n, &v), 0);
	/* every chunk once: nothing lost, nothing twice */
	assert_int_equal(n, REC_CHUNKS);
	for (uint32_t i = 0; i < n; i++) {
		assert_true(h[i].chunk < REC_CHUNKS);
		assert_false(seen[h[i].chunk]);
		seen[h[i].chunk] = 1;
	}
	free(h);
	free(seen);
	bootrec_destroy(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_order_means_counts),
		cmocka_unit_test(test_merge_inherited),
		cmocka_unit_test(test_merge_bound),
		cmocka_unit_test(test_merge_big),
		cmocka_unit_test(test_bytes_copy),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_truncated_every_offset),
		cmocka_unit_test(test_flipped_every_byte),
		cmocka_unit_test(test_header_bounds),
		cmocka_unit_test(test_rules_under_good_crc),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_rec_note),
		cmocka_unit_test(test_rec_due),
		cmocka_unit_test(test_rec_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
