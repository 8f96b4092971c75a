/*
 * tap_bench.c - what the LU tap (src/storage/tap.c) costs on the data
 * path.  A program that prints numbers, not a test.
 *
 * 64 KiB reads at random 64 KiB-aligned offsets of a raw file whose pages
 * are all in the page cache (read whole once first), in-process through
 * the backend API, by 1 and 2 threads, through:
 *   raw        the raw backend itself
 *   tap        a tap in front of it, with an idle boot recorder and a
 *              prefetcher (a PC that is not booting: what every read
 *              pays in steady state)
 *   tap+rec    the same while the recorder records (a booting PC: its
 *              mutex per read, a bitmap lookup per chunk)
 * The modes take turns in short rounds (BENCH_ROUNDS of BENCH_MS each,
 * median printed), so that a machine whose load changes meanwhile
 * treats them alike.  Two numbers per read: CPU ns (the readers' own
 * thread CPU time / reads: what the read path costs, hardly touched by
 * other programs on a busy box) and wall ns (wall time x threads /
 * reads), each with the difference to raw.
 *
 * Build: make build/bench/tap_bench (Makefile, benchmarks section).
 * Run:   build/bench/tap_bench [DIR]        (scratch dir: $TMPDIR or /tmp)
 * Env:   BENCH_IMAGE_MIB (256), BENCH_MS (200), BENCH_ROUNDS (31).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/backend.h"
#include "storage/bootrec.h"
#include "storage/prefetch.h"
#include "storage/tap.h"
#include "util/iostats.h"
#include "util/log.h"

#define READ_LEN (64u << 10)
#define MAX_ROUNDS 201

enum mode { M_RAW, M_TAP, M_REC, M_MODES };
static const char *const mode_name[M_MODES] = { "raw", "tap", "tap+rec" };

struct worker {
	struct backend *be;
	uint64_t size;
	int64_t until_ns;
	uint64_t seed;
	uint64_t reads;
	int64_t cpu_ns;                 /* the thread's CPU time while reading */
};

static void __attribute__((noreturn)) die(const char *what, int rc)
{
	fprintf(stderr, "tap_bench: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

static unsigned env_uint(const char *name, unsigned def)
{
	const char *v = getenv(name);
	return v && *v ? (unsigned)strtoul(v, NULL, 10) : def;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* This thread's CPU time, ns. */
static int64_t cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Read 64 KiB at random aligned offsets until the deadline. */
static void *work(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = aligned_alloc(4096, READ_LEN);
	uint64_t slots = w->size / READ_LEN;

	if (!buf)
		die("buffer", -ENOMEM);
	int64_t c0 = cpu_now();
	while (iostats_now_ns() < w->until_ns) {
		for (int i = 0; i < 64; i++) {
			int rc = w->be->ops->read(w->be, buf, rnd(&w->seed) % slots * READ_LEN, READ_LEN);
			if (rc)
				die("read", rc);
		}
		w->reads += 64;
	}
	w->cpu_ns = cpu_now() - c0;
	free(buf);
	return NULL;
}

/* n threads read be for ms: CPU ns and wall ns per read into *cpu, *wall. */
static void run(struct backend *be, uint64_t size, unsigned n, unsigned ms, uint64_t seed,
		double *cpu, double *wall)
{
	struct worker w[2];
	pthread_t t[2];
	int64_t t0 = iostats_now_ns(), until = t0 + (int64_t)ms * 1000000LL, cpu_ns = 0;
	uint64_t reads = 0;

	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct worker){ be, size, until, seed * 0x9E3779B97F4A7C15ull + i + 1, 0, 0 };
		if (pthread_create(&t[i], NULL, work, &w[i]))
			die("thread", -errno);
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		reads += w[i].reads;
		cpu_ns += w[i].cpu_ns;
	}
	*wall = (double)(iostats_now_ns() - t0) * n / (double)reads;
	*cpu = (double)cpu_ns / (double)reads;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	uint64_t size = (uint64_t)env_uint("BENCH_IMAGE_MIB", 256) << 20;
	unsigned ms = env_uint("BENCH_MS", 200), rounds = env_uint("BENCH_ROUNDS", 31);
	char path[4096];
	struct backend *raw, *tap, *taprec, *be[M_MODES];
	struct bootrec idle, rec;
	struct prefetcher *pf;
	int rc;

	if (rounds < 1 || rounds > MAX_ROUNDS || ms < 10 || size < READ_LEN)
		die("BENCH_ROUNDS 1..201, BENCH_MS >= 10, BENCH_IMAGE_MIB >= 1", -EINVAL);
	log_set_level(LOG_WARN);
	snprintf(path, sizeof(path), "%s/tap_bench.XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0)
		die(path, -errno);
	uint8_t *chunk = malloc(1u << 20);
	for (uint64_t o = 0; o < size; o += 1u << 20) {
		for (size_t i = 0; i < (1u << 20); i++)
			chunk[i] = (uint8_t)(o + i * 7);
		if (pwrite(fd, chunk, 1u << 20, (off_t)o) != (ssize_t)(1u << 20))
			die("write", -errno);
	}
	close(fd);
	if ((rc = backend_raw_open(path, false, &raw)))
		die("open", rc);
	unlink(path);
	/* Warm: every page in the page cache. */
	for (uint64_t o = 0; o < size; o += 1u << 20)
		if ((rc = raw->ops->read(raw, chunk, o, 1u << 20)))
			die("warm", rc);
	free(chunk);

	bootrec_init(&idle);
	bootrec_init(&rec);
	if ((rc = prefetcher_new(&pf)) || (rc = backend_tap_wrap(raw, &idle, pf, &tap)) ||
	    (rc = backend_tap_wrap(raw, &rec, pf, &taprec)))
		die("tap", rc);
	be[M_RAW] = raw;
	be[M_TAP] = tap;
	be[M_REC] = taprec;

	printf("tap_bench: 64 KiB random reads of a warm %llu MiB raw file, %u rounds of %u ms per mode (median)\n",
	       (unsigned long long)(size >> 20), rounds, ms);
	printf("%-8s %8s %12s %10s %12s %10s\n", "threads", "mode", "cpu ns/read", "vs raw",
	       "wall ns/read", "vs raw");
	for (unsigned n = 1; n <= 2; n++) {
		double cpu[M_MODES][MAX_ROUNDS], wall[M_MODES][MAX_ROUNDS];
		for (unsigned r = 0; r < rounds; r++) {
			for (int m = 0; m < M_MODES; m++) {
				/* A recording as long as a boot's: restarted each
				 * round, never full (every chunk of the disk fits). */
				if (m == M_REC && (rc = bootrec_start(&rec, 1, size,
								       (uint32_t)(size / BOOTSET_CHUNK),
								       iostats_now_ns())))
					die("bootrec_start", rc);
				/* The same offsets for every mode of a round. */
				run(be[m], size, n, ms, r + 1, &cpu[m][r], &wall[m][r]);
			}
		}
		double mc[M_MODES], mw[M_MODES];
		for (int m = 0; m < M_MODES; m++) {
			qsort(cpu[m], rounds, sizeof(double), cmp_double);
			qsort(wall[m], rounds, sizeof(double), cmp_double);
			mc[m] = cpu[m][rounds / 2];
			mw[m] = wall[m][rounds / 2];
		}
		for (int m = 0; m < M_MODES; m++)
			printf("%-8u %8s %12.0f %+10.0f %12.0f %+10.0f\n", n, mode_name[m], mc[m],
			       mc[m] - mc[M_RAW], mw[m], mw[m] - mw[M_RAW]);
	}
	backend_close(taprec);
	backend_close(tap);
	prefetcher_free(pf);
	bootrec_destroy(&rec);
	bootrec_destroy(&idle);
	backend_close(raw);
	return 0;
}
