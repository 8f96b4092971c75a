/*
 * test_overlay_map.c - the overlay's in-memory block map
 * (src/storage/overlay_map.c) against a plain one-byte-per-block model:
 * random range updates including whole and partial leaves and the short
 * last leaf, runs, counts, the PRESENT counter, dirty tracking (the runs
 * a flush would log rebuild the same map), checkpoint round trip, and
 * malformed checkpoint bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>

#include "storage/overlay_int.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void check_equal(const struct ovl_map *m, const uint8_t *model)
{
	uint64_t present = 0;
	for (uint64_t b = 0; b < m->nblocks; b++) {
		assert_int_equal(ovl_map_get(m, b), model[b]);
		present += model[b] == OVL_PRESENT;
	}
	assert_int_equal(m->present, present);
	/* runs agree with the model */
	for (uint64_t b = 0; b < m->nblocks;) {
		enum ovl_state st;
		uint64_t r = ovl_map_run(m, b, m->nblocks - b, &st);
		assert_true(r >= 1);
		for (uint64_t k = b; k < b + r; k++)
			assert_int_equal(model[k], st);
		if (b + r < m->nblocks)
			assert_int_not_equal(model[b + r], st);
		b += r;
	}
}

static void test_map_random(void **state)
{
	/* 3 leaves and a bit: whole leaves, leaf boundaries, short last leaf */
	const uint64_t nb = 3 * OVL_LEAF_BLOCKS + 777;
	struct ovl_map m, replay;
	uint8_t *model = calloc(nb, 1);
	uint64_t seed = 12345;

	assert_int_equal(ovl_map_init(&m, nb), 0);
	assert_int_equal(ovl_map_init(&replay, nb), 0);
	for (int round = 0; round < 60; round++) {
		int nops = 1 + (int)(rnd(&seed) % 20);
		for (int i = 0; i < nops; i++) {
			uint64_t b, n;
			switch (rnd(&seed) % 4) {
			case 0:         /* whole leaf (or the short last one) */
				b = (rnd(&seed) % 4) * OVL_LEAF_BLOCKS;
				n = nb - b < OVL_LEAF_BLOCKS ? nb - b : OVL_LEAF_BLOCKS;
				break;
			case 1:         /* across a leaf boundary */
				b = (1 + rnd(&seed) % 3) * OVL_LEAF_BLOCKS - 1 - rnd(&seed) % 100;
				n = 1 + rnd(&seed) % 300;
				break;
			case 2:         /* the whole disk */
				b = 0;
				n = nb;
				break;
			default:        /* small */
				b = rnd(&seed) % nb;
				n = 1 + rnd(&seed) % 70;
			}
			if (b + n > nb)
				n = nb - b;
			enum ovl_state st = (enum ovl_state)(rnd(&seed) % 3);
			if (rnd(&seed) % 8 == 0 && st != OVL_PRESENT)
				n = nb - b;
			assert_int_equal(ovl_map_set(&m, b, n, st, true), 0);
			memset(model + b, st, n);
			uint64_t c = ovl_map_count(&m, b, n, st);
			assert_int_equal(c, n);
		}
		check_equal(&m, model);
		/* what a flush would log rebuilds the map */
		struct ovl_run *runs;
		size_t nruns;
		assert_int_equal(ovl_map_take_dirty(&m, &runs, &nruns), 0);
		for (size_t i = 0; i < nruns; i++) {
			assert_true(runs[i].first + runs[i].count <= nb);
			if (i)
				assert_true(runs[i].first >= runs[i - 1].first + runs[i - 1].count);
			assert_int_equal(ovl_map_set(&replay, runs[i].first, runs[i].count,
						     (enum ovl_state)runs[i].state, false), 0);
		}
		free(runs);
		check_equal(&replay, model);
		assert_int_equal(m.ndirty, 0);
		/* checkpoint round trip */
		if (round % 10 == 9) {
			uint8_t *body;
			size_t len;
			uint32_t ne;
			struct ovl_map back;
			assert_int_equal(ovl_map_serialize(&m, &body, &len, &ne), 0);
			assert_int_equal(ovl_map_init(&back, nb), 0);
			assert_int_equal(ovl_map_load(&back, body, len, ne), 0);
			check_equal(&back, model);
			ovl_map_free(&back);
			free(body);
		}
	}
	/* untouched map: RAM is the top arrays only */
	struct ovl_map big;
	assert_int_equal(ovl_map_init(&big, 1ull << 29), 0);         /* 2 TiB at 4K */
	assert_int_equal(ovl_map_set(&big, 0, 1ull << 29, OVL_ZERO, true), 0);
	assert_true(ovl_map_mem_bytes(&big) < (1u << 20));
	struct ovl_run *runs;
	size_t nruns;
	assert_int_equal(ovl_map_take_dirty(&big, &runs, &nruns), 0);
	uint64_t total = 0;
	for (size_t i = 0; i < nruns; i++)
		total += runs[i].count;
	assert_int_equal(total, 1ull << 29);
	assert_int_equal(nruns, 1);            /* one run, not one per leaf */
	free(runs);
	ovl_map_free(&big);
	ovl_map_free(&m);
	ovl_map_free(&replay);
	free(model);
}

static void test_map_bad_bodies(void **state)
{
	const uint64_t nb = 2 * OVL_LEAF_BLOCKS + 5;
	struct ovl_map m, back;
	uint8_t *body;
	size_t len;
	uint32_t ne;

	assert_int_equal(ovl_map_init(&m, nb), 0);
	assert_int_equal(ovl_map_set(&m, 10, 20, OVL_PRESENT, false), 0);
	assert_int_equal(ovl_map_set(&m, OVL_LEAF_BLOCKS, OVL_LEAF_BLOCKS, OVL_ZERO, false), 0);
	assert_int_equal(ovl_map_set(&m, 2 * OVL_LEAF_BLOCKS, 2, OVL_PRESENT, false), 0);
	assert_int_equal(ovl_map_serialize(&m, &body, &len, &ne), 0);
	assert_int_equal(ne, 3);

	struct { size_t off; uint8_t val; uint32_t ne; size_t len; } cases[] = {
		{ 0, 9, 3, 0 },                         /* leaf index out of range */
		{ 4, 7, 3, 0 },                         /* unknown kind */
		{ 8 + 5, 0xff, 3, 0 },                  /* state 3 inside the disk */
		{ 0, 0, 4, 0 },                         /* more entries than bytes */
		{ 0, 0, 3, 1 },                         /* truncated body */
		{ 0, 0, 2, 0 },                         /* bytes left over */
		{ 8 + 4096, 0, 3, 0 },                  /* index not increasing */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *b = malloc(len);
		memcpy(b, body, len);
		if (cases[i].val || cases[i].off)
			b[cases[i].off] = cases[i].val;
		assert_int_equal(ovl_map_init(&back, nb), 0);
		assert_int_equal(ovl_map_load(&back, b, len - cases[i].len, cases[i].ne), -EBADMSG);
		ovl_map_free(&back);
		free(b);
	}
	free(body);
	ovl_map_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_random),
		cmocka_unit_test(test_map_bad_bodies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
