/*
 * test_check.c - the debug checks (src/util/check.h) and the map's
 * invariant checker (ovl_map_check, src/storage/overlay_map.c).
 *
 * ovl_map_check must pass every map the map code builds and name each
 * kind of damage (M1-M4) done to one by hand; damage past the disk's end
 * in the last leaf is not damage.  In the debug build (PRISTINE_DEBUG,
 * which make unit uses) a broken invariant must abort with file:line and
 * the condition on stderr: a map whose counter was broken by hand aborts
 * on its next update, and an overlay asked to log before its data was
 * synced aborts naming I1.  Without PRISTINE_DEBUG the same calls must
 * not abort and PR_ASSERT must not evaluate its condition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/overlay_int.h"
#include "util/check.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A map of 2 leaves and a short third with random updates, some dirty. */
static void random_map(struct ovl_map *m, uint64_t nb, uint64_t seed)
{
	assert_int_equal(ovl_map_init(m, nb), 0);
	for (int i = 0; i < 200; i++) {
		uint64_t b = rnd(&seed) % nb;
		uint64_t n = 1 + rnd(&seed) % (i % 10 == 0 ? nb - b : (nb - b < 300 ? nb - b : 300));
		assert_int_equal(ovl_map_set(m, b, n, (enum ovl_state)(rnd(&seed) % 3), i % 3 != 0), 0);
	}
}

static void test_map_check_passes(void **state)
{
	const uint64_t nb = 2 * OVL_LEAF_BLOCKS + 999;
	struct ovl_map m, back;
	struct ovl_run *runs;
	size_t nruns;
	uint8_t *body;
	size_t len;
	uint32_t ne;

	assert_int_equal(ovl_map_init(&m, nb), 0);
	assert_null(ovl_map_check(&m));                 /* empty */
	ovl_map_free(&m);
	random_map(&m, nb, 77);
	assert_true(m.ndirty > 0);
	assert_null(ovl_map_check(&m));                 /* with dirty leaves */
	assert_int_equal(ovl_map_take_dirty(&m, &runs, &nruns), 0);
	free(runs);
	assert_null(ovl_map_check(&m));                 /* after a flush's snapshot */
	assert_int_equal(ovl_map_serialize(&m, &body, &len, &ne), 0);
	assert_int_equal(ovl_map_init(&back, nb), 0);
	assert_int_equal(ovl_map_load(&back, body, len, ne), 0);
	assert_null(ovl_map_check(&back));              /* loaded from a checkpoint */
	free(body);
	ovl_map_free(&back);
	ovl_map_free(&m);
}

static void test_map_check_finds_damage(void **state)
{
	const uint64_t nb = 2 * OVL_LEAF_BLOCKS + 999;
	struct ovl_map m;
	const char *why;

	/* M1: the PRESENT counter */
	random_map(&m, nb, 5);
	m.present++;
	why = ovl_map_check(&m);
	assert_non_null(why);
	assert_non_null(strstr(why, "M1"));
	m.present--;
	assert_null(ovl_map_check(&m));

	/* M2: state 3 inside the disk (a PRESENT block makes leaf 0 an
	 * array, never a shared sentinel) */
	assert_int_equal(ovl_map_set(&m, 101, 3, OVL_PRESENT, false), 0);
	uint8_t *l = m.leaf[0], saved = l[40];
	l[40] |= 0x03;                                  /* a block of state 3 */
	why = ovl_map_check(&m);
	assert_non_null(why);
	assert_non_null(strstr(why, "M2"));
	l[40] = saved;
	assert_null(ovl_map_check(&m));

	/* M3: leaves_alloc */
	m.leaves_alloc++;
	why = ovl_map_check(&m);
	assert_non_null(why);
	assert_non_null(strstr(why, "M3"));
	m.leaves_alloc--;

	/* M4: a dirty leaf listed twice (and one dirty leaf not listed) */
	assert_true(m.ndirty >= 2);
	uint32_t keep = m.dirty_list[1];
	m.dirty_list[1] = m.dirty_list[0];
	why = ovl_map_check(&m);
	assert_non_null(why);
	assert_non_null(strstr(why, "M4"));
	m.dirty_list[1] = keep;
	/* M4: the bitmap count */
	m.dirty_alloc++;
	why = ovl_map_check(&m);
	assert_non_null(why);
	assert_non_null(strstr(why, "M4"));
	m.dirty_alloc--;
	assert_null(ovl_map_check(&m));
	ovl_map_free(&m);

	/* Past the end of the short last leaf anything goes: never read. */
	assert_int_equal(ovl_map_init(&m, OVL_LEAF_BLOCKS + 10), 0);
	assert_int_equal(ovl_map_set(&m, OVL_LEAF_BLOCKS, 2, OVL_PRESENT, true), 0);
	m.leaf[1][100] = 0xff;                          /* blocks 400..403 of the leaf */
	assert_null(ovl_map_check(&m));
	ovl_map_free(&m);
}

static int evaluated;

static bool count_eval(void)
{
	evaluated++;
	return true;
}

/*
 * Run fn in a child with stderr captured into out; returns the wait
 * status.
 */
static int in_child(void (*fn)(void), char *out, size_t outlen)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		fn();
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < outlen && (r = read(p[0], out + n, outlen - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(p[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

/* Break the map's PRESENT counter, then update the map. */
static void child_broken_counter(void)
{
	struct ovl_map m;

	if (ovl_map_init(&m, 1000) != 0)
		_exit(2);
	m.present = m.nblocks + 1;
	ovl_map_set(&m, 0, 1, OVL_ZERO, true);
	ovl_map_free(&m);
}

static void test_assert_fires(void **state)
{
	char out[4096];

	evaluated = 0;
	PR_ASSERT(count_eval());
	int st = in_child(child_broken_counter, out, sizeof(out));
#ifdef PRISTINE_DEBUG
	assert_int_equal(evaluated, 1);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGABRT);
	assert_non_null(strstr(out, "overlay_map.c:"));
	assert_non_null(strstr(out, "assertion failed: m->present <= m->nblocks"));
#else
	assert_int_equal(evaluated, 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
#endif
}

#define TDIR "/tmp/pristine-test-check"

/* An overlay over a read-only golden file; write a block, then call the
 * log append as if the flush had not synced data after its snapshot. */
static void child_unsynced_append(void)
{
	struct backend *golden;
	struct overlay *ov;
	struct ovl_run run = { 0, 1, OVL_PRESENT };
	bool unchanged;
	char buf[4096];

	memset(buf, 0x5a, sizeof(buf));
	if (backend_raw_open(TDIR "/golden", false, &golden) ||
	    overlay_open(TDIR "/ovl", golden, NULL, &ov))
		_exit(2);
	if (overlay_backend(ov)->ops->write(overlay_backend(ov), buf, 0, sizeof(buf), false))
		_exit(3);
	pthread_mutex_lock(&ov->flush_lock);
	ov->data_synced = false;
	ovl_meta_append(ov, &run, 1, &unchanged);
	pthread_mutex_unlock(&ov->flush_lock);
	overlay_close(ov);
	golden->ops->close(golden);
}

static void test_assert_i1(void **state)
{
	char out[4096];

	assert_int_equal(system("rm -rf " TDIR " && mkdir -p " TDIR
				" && truncate -s 1M " TDIR "/golden"), 0);
	int st = in_child(child_unsynced_append, out, sizeof(out));
#ifdef PRISTINE_DEBUG
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGABRT);
	assert_non_null(strstr(out, "overlay_meta.c:"));
	assert_non_null(strstr(out, "I1: log append before data was synced"));
#else
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
#endif
	assert_int_equal(system("rm -rf " TDIR), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_check_passes),
		cmocka_unit_test(test_map_check_finds_damage),
		cmocka_unit_test(test_assert_fires),
		cmocka_unit_test(test_assert_i1),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
