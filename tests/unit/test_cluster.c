/*
 * test_cluster.c - the cluster's placement and lock-break decisions
 * (src/cluster/cluster_place.c) on tables made here, without Ceph:
 * 32 PCs over two live gateways split 16/16; dead, stopped and draining
 * gateways get none; a PC's own placement does not count against its
 * gateway; with no live gateway a PC stays here; the lock of a live
 * gateway may never be broken, that of a dead, stopped or cut-off one
 * may.  (The Ceph side: tests/cluster/.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cluster/cluster_int.h"

#define NOW 1000000000LL

/* A table of n gateways gw1..gwn, all up and beating, we being gw1. */
static void table(struct cluster *cl, unsigned n)
{
	memset(cl, 0, sizeof(*cl));
	snprintf(cl->name, sizeof(cl->name), "gw1");
	cl->dead_ms = 5000;
	pthread_mutex_init(&cl->lock, NULL);
	for (unsigned i = 0; i < n; i++) {
		struct gw *g = &cl->gws[i];
		snprintf(g->name, sizeof(g->name), "gw%u", i + 1);
		snprintf(g->address, sizeof(g->address), "10.0.0.%u:3260", i + 1);
		snprintf(g->ceph_addr, sizeof(g->ceph_addr), "10.0.0.%u:0/%u", i + 1, 1000 + i);
		g->beat_ms = NOW - 300;
	}
	cl->ngw = n;
}

/* Place count PCs one after the other, as logins would; counts per gateway. */
static void place_all(struct cluster *cl, json_t *p, unsigned count, unsigned *per)
{
	char ini[64];

	for (unsigned i = 0; i < count; i++) {
		const char *g;
		snprintf(ini, sizeof(ini), "iqn.2024-01.test:pc%u", i);
		g = cluster_choose(cl, p, ini, NOW);
		json_object_set_new(p, ini, json_string(g));
		per[g[2] - '1']++;
	}
}

static void test_balance(void **state)
{
	struct cluster cl;
	unsigned per[3] = { 0 };
	json_t *p = json_object();

	(void)state;
	table(&cl, 2);
	place_all(&cl, p, 32, per);
	assert_int_equal(per[0], 16);
	assert_int_equal(per[1], 16);
	json_decref(p);

	/* three gateways: 11/11/10 in some order */
	table(&cl, 3);
	memset(per, 0, sizeof(per));
	p = json_object();
	place_all(&cl, p, 32, per);
	for (int i = 0; i < 3; i++)
		assert_true(per[i] == 10 || per[i] == 11);
	json_decref(p);
}

/* Equal loads: the hash decides, and it is not always the same gateway. */
static void test_ties(void **state)
{
	struct cluster cl;
	json_t *p = json_object();
	unsigned on1 = 0;
	char ini[64];

	(void)state;
	table(&cl, 2);
	for (unsigned i = 0; i < 64; i++) {
		snprintf(ini, sizeof(ini), "iqn.2024-01.test:pc%u", i);
		const char *a = cluster_choose(&cl, p, ini, NOW);
		assert_string_equal(a, cluster_choose(&cl, p, ini, NOW));   /* deterministic */
		on1 += strcmp(a, "gw1") == 0;
	}
	assert_true(on1 > 8 && on1 < 56);
	json_decref(p);
}

static void test_not_live(void **state)
{
	struct cluster cl;
	unsigned per[3] = { 0 };
	json_t *p = json_object();

	(void)state;
	table(&cl, 3);
	cl.gws[1].beat_ms = NOW - 6000;        /* gw2 dead */
	cl.gws[2].stopped = true;              /* gw3 left */
	place_all(&cl, p, 8, per);
	assert_int_equal(per[0], 8);
	json_decref(p);

	/* we drain: PCs go to the live other one */
	table(&cl, 2);
	memset(per, 0, sizeof(per));
	p = json_object();
	cl.gws[0].draining = true;
	place_all(&cl, p, 8, per);
	assert_int_equal(per[1], 8);
	json_decref(p);

	/* the other drains */
	table(&cl, 2);
	memset(per, 0, sizeof(per));
	p = json_object();
	cl.gws[1].draining = true;
	place_all(&cl, p, 8, per);
	assert_int_equal(per[0], 8);
	json_decref(p);

	/* nobody live but us, and we drain: served here rather than nowhere */
	table(&cl, 2);
	p = json_object();
	cl.gws[0].draining = true;
	cl.gws[1].beat_ms = NOW - 60000;
	assert_string_equal(cluster_choose(&cl, p, "iqn.2024-01.test:x", NOW), "gw1");
	json_decref(p);
}

/* A PC's own entry does not count against the gateway it is on. */
static void test_own_entry(void **state)
{
	struct cluster cl;
	json_t *p = json_object();

	(void)state;
	table(&cl, 2);
	json_object_set_new(p, "iqn.2024-01.test:a", json_string("gw1"));
	json_object_set_new(p, "iqn.2024-01.test:b", json_string("gw2"));
	json_object_set_new(p, "iqn.2024-01.test:c", json_string("gw2"));
	/* c re-chosen: gw1 1 (a), gw2 1 (b): a tie, either is right; a new
	 * PC d: gw1 1, gw2 2: gw1 */
	assert_string_equal(cluster_choose(&cl, p, "iqn.2024-01.test:d", NOW), "gw1");
	json_object_set_new(p, "iqn.2024-01.test:a", json_string("gw2"));
	/* a re-chosen, not counted on gw2: gw1 0, gw2 2 -> gw1 */
	assert_string_equal(cluster_choose(&cl, p, "iqn.2024-01.test:a", NOW), "gw1");
	json_decref(p);
}

static void test_may_break(void **state)
{
	struct cluster cl;

	(void)state;
	table(&cl, 3);
	cl.gws[1].beat_ms = cluster_now_ms();              /* gw2 live */
	cl.gws[2].beat_ms = cluster_now_ms();              /* gw3 live */
	assert_false(cluster_may_break(&cl, cl.gws[1].ceph_addr));
	assert_false(cluster_may_break(&cl, cl.gws[2].ceph_addr));
	cl.gws[2].draining = true;                         /* draining is live too */
	assert_false(cluster_may_break(&cl, cl.gws[2].ceph_addr));
	cl.gws[1].beat_ms = cluster_now_ms() - 6000;       /* gw2 dead */
	assert_true(cluster_may_break(&cl, cl.gws[1].ceph_addr));
	cl.gws[1].beat_ms = cluster_now_ms();
	cl.gws[1].stopped = true;                          /* gw2 left */
	assert_true(cluster_may_break(&cl, cl.gws[1].ceph_addr));
	cl.gws[2].cutoff = true;                           /* gw3's address reached us */
	assert_true(cluster_may_break(&cl, cl.gws[2].ceph_addr));
	/* our own entry is never "another gateway" */
	cl.gws[0].beat_ms = cluster_now_ms() - 60000;
	assert_false(cluster_may_break(&cl, cl.gws[0].ceph_addr));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_balance),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_not_live),
		cmocka_unit_test(test_own_entry),
		cmocka_unit_test(test_may_break),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
