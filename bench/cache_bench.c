/*
 * cache_bench.c - what the shared read cache (src/storage/cache.c) saves
 * and costs when many clients read the same RBD version.  A program that
 * prints numbers, not a test.
 *
 * T threads (the PCs of a boot storm) read the same blocks of one RBD
 * image, in-process through the backend API (no iSCSI), each in its own
 * order, either straight from librbd or through a cache of the chunk size
 * given.  Two workloads:
 *   seq    every thread reads the whole image in IO-byte reads, starting
 *          at its own offset (a boot's long reads)
 *   sparse every thread reads the same seeded random 4 KiB blocks (PCT%
 *          of the image) in its own random order (a boot's scattered
 *          small reads: bigger chunks read more than is asked)
 * It prints the time, the bytes the threads got per second, and the bytes
 * asked of librbd (the OSDs' work): with the cache its counters, without
 * it what the threads asked.
 *
 * Build: make build/bench/cache_bench (Makefile, benchmarks section).
 * Run:   build/bench/cache_bench CEPH_CONF ID POOL/IMAGE@SNAP THREADS
 *            seq|sparse IO|PCT CHUNK      (CHUNK 0: no cache)
 * bench/cache.sh runs it against a throwaway cluster (tests/lib/ceph.sh).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/backend.h"
#include "storage/cache.h"
#include "storage/rbd.h"

struct job {
	struct backend *be;
	const uint64_t *blocks;         /* sparse: the block numbers */
	size_t nblocks;
	unsigned id;
	size_t io;
	bool sparse;
	uint64_t got;                   /* bytes read */
	int rc;
	pthread_barrier_t *start;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One client: its reads in its own order; the first error ends it. */
static void *run(void *arg)
{
	struct job *j = arg;
	uint64_t size = j->be->size, seed = 0x9E3779B97F4A7C15ull * (j->id + 1);
	uint8_t *buf = malloc(j->sparse ? 4096 : j->io);

	pthread_barrier_wait(j->start);
	if (!buf) {
		j->rc = -ENOMEM;
		return NULL;
	}
	if (j->sparse) {
		/* A random walk over the shared list: a permutation per thread. */
		size_t *order = malloc(j->nblocks * sizeof(*order));
		for (size_t i = 0; order && i < j->nblocks; i++)
			order[i] = i;
		for (size_t i = j->nblocks; order && i > 1; i--) {
			size_t k = rnd(&seed) % i, t = order[i - 1];
			order[i - 1] = order[k];
			order[k] = t;
		}
		for (size_t i = 0; order && i < j->nblocks && !j->rc; i++) {
			j->rc = j->be->ops->read(j->be, buf, j->blocks[order[i]] * 4096, 4096);
			j->got += 4096;
		}
		if (!order)
			j->rc = -ENOMEM;
		free(order);
	} else {
		uint64_t n = size / j->io, first = (uint64_t)j->id * 7 % n;
		for (uint64_t k = 0; k < n && !j->rc; k++) {
			j->rc = j->be->ops->read(j->be, buf, (first + k) % n * j->io, j->io);
			j->got += j->io;
		}
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct rbd_cluster *cl;
	struct rbd_spec sp;
	struct backend *be;
	struct rcache *rc = NULL;
	char msg[512], id[96];
	unsigned threads, chunk;
	bool sparse;
	size_t io = 0, nblocks = 0;
	uint64_t *blocks = NULL, got = 0, seed = 42;
	pthread_barrier_t start;

	if (argc != 8) {
		fprintf(stderr, "usage: %s CEPH_CONF ID POOL/IMAGE@SNAP THREADS seq|sparse IO|PCT CHUNK\n",
			argv[0]);
		return 2;
	}
	threads = (unsigned)atoi(argv[4]);
	sparse = !strcmp(argv[5], "sparse");
	chunk = (unsigned)strtoul(argv[7], NULL, 0);
	if (threads < 1 || threads > 1024 || rbd_spec_parse(argv[3], &sp, msg, sizeof(msg))) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	if (rbd_cluster_connect(argv[1], argv[2], &cl, msg, sizeof(msg)) ||
	    backend_rbd_open(cl, &sp, &be, id, sizeof(id), msg, sizeof(msg))) {
		fprintf(stderr, "%s\n", msg);
		return 1;
	}
	if (sparse) {
		uint64_t nb = be->size / 4096, pct = strtoull(argv[6], NULL, 0);
		/* every block with probability PCT%, in disk order */
		blocks = malloc(nb * sizeof(*blocks));
		for (uint64_t b = 0; blocks && b < nb; b++)
			if (rnd(&seed) % 100 < pct)
				blocks[nblocks++] = b;
	} else {
		io = strtoul(argv[6], NULL, 0);
	}
	if ((sparse && !blocks) || (!sparse && (io < 512 || io > (8u << 20) || be->size % io))) {
		fprintf(stderr, "bad IO size or no memory\n");
		return 2;
	}
	if (chunk) {
		/* room for the whole image: no eviction in this measurement */
		int e = rcache_new(be->size * 2 > (64u << 20) ? be->size * 2 : 64u << 20, chunk, &rc);
		struct backend *w;
		if (e || (e = backend_cache_wrap(rc, be, &w))) {
			fprintf(stderr, "cache: %s\n", strerror(-e));
			return 1;
		}
		be = w;
	}
	struct job *jobs = calloc(threads, sizeof(*jobs));
	pthread_t *th = calloc(threads, sizeof(*th));
	if (!jobs || !th)
		return 1;
	pthread_barrier_init(&start, NULL, threads + 1);
	for (unsigned i = 0; i < threads; i++) {
		jobs[i] = (struct job){ .be = be, .blocks = blocks, .nblocks = nblocks, .id = i,
					.io = io, .sparse = sparse, .start = &start };
		pthread_create(&th[i], NULL, run, &jobs[i]);
	}
	pthread_barrier_wait(&start);
	double t0 = now();
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].rc) {
			fprintf(stderr, "thread %u: read failed: %s\n", i, strerror(-jobs[i].rc));
			return 1;
		}
		got += jobs[i].got;
	}
	double secs = now() - t0;
	uint64_t inner = got, reads = 0;
	if (rc) {
		struct rcache_stats s;
		rcache_get_stats(rc, &s);
		inner = s.inner_bytes;
		reads = s.inner_reads;
	}
	printf("%-6s threads %3u  %s %-7s chunk %-7s  %6.2f s  %8.1f MiB/s to clients  "
	       "%8.1f MiB from librbd (%5.2fx the data)%s%llu calls\n",
	       sparse ? "sparse" : "seq", threads, sparse ? "pct" : "io", argv[6],
	       chunk ? argv[7] : "none", secs, got / secs / 1048576.0, inner / 1048576.0,
	       (double)inner / (double)(got / threads), rc ? "  " : "  ~",
	       (unsigned long long)(rc ? reads : got / (sparse ? 4096 : io)));
	backend_close(be);
	rcache_free(rc);
	rbd_cluster_close(cl);
	free(blocks);
	free(jobs);
	free(th);
	return 0;
}
