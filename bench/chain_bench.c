/*
 * chain_bench.c - what a deep version chain costs on reads
 * (src/storage/chain.c; docs/overlay-format.md, "Frozen layers and
 * version chains").  A program that prints numbers, not a test.
 *
 * Builds a root image and N layers the way the daemon does (a draft
 * overlay over the previous version's chain, each writing a random PCT%
 * of the 4 KiB blocks, closed, opened as a frozen layer), then measures
 * in-process through the backend API, for these chains:
 *   root     the root alone (a flat 1-version image)
 *   1 layer  root + the first layer (a 1-version chain)
 *   N layers root + all N layers
 *   union    root + ONE layer holding every block the N layers wrote,
 *            with version N's content: the same content and nearly the
 *            same fragmentation as "N layers", but depth 1
 * the workloads 4 KiB random reads (1 and 2 threads) and 1 MiB sequential
 * reads, each for BENCH_SECS, BENCH_ROUNDS rounds (median printed).  The
 * page cache is warm (every chain read whole once before measuring), so
 * the numbers are the chain's own costs (lookups, calls), not the disk.
 *
 * Build: make build/bench/chain_bench (Makefile, benchmarks section).
 * Run:   build/bench/chain_bench [DIR]      (scratch dir: $TMPDIR or /tmp)
 * Env:   BENCH_IMAGE_MIB (1024), BENCH_LAYERS (10), BENCH_PCT (5),
 *        BENCH_SECS (3), BENCH_ROUNDS (3).
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
#include "storage/chain.h"
#include "storage/overlay.h"
#include "util/log.h"

#define BS4K 4096u
#define MAX_LAYERS 64u

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "chain_bench: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 10) : def;
}

/* A root image of mib MiB of pseudo-random data (not sparse). */
static void make_root(const char *path, uint64_t mib)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint64_t *buf = malloc(1 << 20), seed = 0x9E3779B97F4A7C15ull;
	if (fd < 0 || !buf)
		die("root", errno);
	for (uint64_t i = 0; i < mib; i++) {
		for (size_t k = 0; k < (1 << 20) / 8; k++)
			buf[k] = rnd(&seed);
		if (pwrite(fd, buf, 1 << 20, (off_t)(i << 20)) != 1 << 20)
			die("root write", errno);
	}
	if (fsync(fd) < 0)
		die("root fsync", errno);
	close(fd);
	free(buf);
}

/* Open a draft over base in dir, let fill write into it, close it and
 * open it as a layer. */
static struct ovl_layer *make_layer(const char *dir, struct backend *base, uint32_t g,
				    void (*fill)(struct backend *, void *), void *arg)
{
	struct overlay *ov;
	struct ovl_layer *l;
	struct overlay_opts o = { .base_id = "bench", .block_size = g };
	int rc = overlay_open(dir, base, &o, &ov);
	if (rc < 0)
		die("overlay_open", rc);
	fill(overlay_backend(ov), arg);
	if ((rc = overlay_close(ov)) < 0)
		die("overlay_close", rc);
	if ((rc = ovl_layer_open(dir, base->size, "bench", &l)) < 0)
		die("ovl_layer_open", rc);
	return l;
}

/* Layer k: every 4 KiB block with probability pct%; src[] records it. */
struct rand_fill {
	uint8_t *src;           /* per block: last layer that wrote it (0 = root) */
	uint8_t *mine;          /* NULL, or per block: 1 if this layer wrote it */
	uint64_t nblk, pct, seed;
	unsigned k;
};

static void fill_random(struct backend *be, void *p)
{
	struct rand_fill *f = p;
	uint8_t buf[BS4K];
	for (uint64_t b = 0; b < f->nblk; b++) {
		if (rnd(&f->seed) % 1000 >= f->pct * 10)
			continue;
		memset(buf, (int)(f->k * 37 + b), sizeof(buf));
		int rc = be->ops->write(be, buf, b * BS4K, BS4K, false);
		if (rc < 0)
			die("layer write", rc);
		f->src[b] = (uint8_t)f->k;
		if (f->mine)
			f->mine[b] = 1;
		if (b % 256 == 255 && (rc = be->ops->flush(be)) < 0)
			die("layer flush", rc);
	}
}

/* The union layer: every block some layer wrote, with top's content. */
struct union_fill {
	const uint8_t *src;
	uint64_t nblk;
	struct backend *top;
};

static void fill_union(struct backend *be, void *p)
{
	struct union_fill *f = p;
	uint8_t buf[BS4K];
	for (uint64_t b = 0; b < f->nblk; b++) {
		if (!f->src[b])
			continue;
		int rc = f->top->ops->read(f->top, buf, b * BS4K, BS4K);
		if (rc == 0)
			rc = be->ops->write(be, buf, b * BS4K, BS4K, false);
		if (rc < 0)
			die("union write", rc);
	}
}

/* Calls a 1 MiB read makes on average: runs of equal source. */
static double runs_per_mib(const uint8_t *src, uint64_t nblk)
{
	uint64_t runs = 0, per = (1u << 20) / BS4K;
	for (uint64_t b = 0; b < nblk; b++)
		runs += b % per == 0 || src[b] != src[b - 1];
	return (double)runs / (double)(nblk / per);
}

/* ---- measurements ---------------------------------------------------- */

/*
 * The floor for one chain: the same reads done without the chain code,
 * from a flat source array (a byte per block) and plain pread on the
 * files, runs of one source coalesced the same way.  What the kernel
 * costs for that placement of the data; chain / direct is the chain's
 * own overhead (lookup, lock, backend calls).
 */
struct direct {
	const uint8_t *src;     /* per 4 KiB block: index into fd[] */
	int fd[MAX_LAYERS + 2];
	uint64_t size;
};

static void direct_read(const struct direct *d, uint8_t *buf, uint64_t off, size_t len)
{
	uint64_t end = off + len;
	while (off < end) {
		uint64_t b = off / BS4K, e = b + 1;
		while (e * BS4K < end && d->src[e] == d->src[b])
			e++;
		size_t n = (size_t)((e * BS4K < end ? e * BS4K : end) - off);
		if (pread(d->fd[d->src[b]], buf, n, (off_t)off) != (ssize_t)n)
			die("direct pread", errno);
		buf += n;
		off += n;
	}
}

enum kind { RAND4K, SEQ1M };

struct job {                    /* one per thread, on its own cache lines */
	_Alignas(64) struct backend *be;
	const struct direct *direct;    /* set: read through it instead of be */
	enum kind kind;
	double secs;
	uint64_t seed, start;
	uint64_t ops;
	char pad[64];
};

static void *job_run(void *p)
{
	struct job *j = p;
	struct backend *be = j->be;
	const struct direct *d = j->direct;
	size_t len = j->kind == RAND4K ? BS4K : (1u << 20);
	uint8_t *buf = aligned_alloc(4096, len);
	uint64_t nblk = be->size / len, off = j->start, seed = j->seed, ops = 0;
	double t0 = now_s();

	if (!buf)
		die("buffer", ENOMEM);
	for (;;) {
		for (int i = 0; i < 16; i++) {
			if (j->kind == RAND4K) {
				off = (rnd(&seed) % nblk) * len;
			} else {
				off += len;
				if (off + len > be->size)
					off = 0;
			}
			if (d) {
				direct_read(d, buf, off, len);
			} else {
				int rc = be->ops->read(be, buf, off, len);
				if (rc < 0)
					die("read", rc);
			}
			ops++;
		}
		if (now_s() - t0 >= j->secs)
			break;
	}
	j->secs = now_s() - t0;
	j->ops = ops;
	free(buf);
	return NULL;
}

/* ops/s (4K: IOPS) or MiB/s (1M) of nthreads readers for secs, through
 * the chain be or, with d, directly. */
static double measure(struct backend *be, const struct direct *d, enum kind kind,
		      unsigned nthreads, double secs)
{
	struct job jobs[8];
	pthread_t th[8];
	double rate = 0;

	for (unsigned i = 0; i < nthreads; i++) {
		jobs[i] = (struct job){ .be = be, .direct = d, .kind = kind, .secs = secs,
					.seed = 0x1234567ull * (i + 1),
					.start = (be->size / nthreads) * i / (1u << 20) * (1u << 20) };
		if (pthread_create(&th[i], NULL, job_run, &jobs[i]) != 0)
			die("pthread_create", errno);
	}
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		rate += (double)jobs[i].ops / jobs[i].secs;
	}
	return rate;            /* SEQ1M reads 1 MiB per op: ops/s is MiB/s */
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Read be whole once (warms the page cache); optionally compare with other. */
static void read_whole(struct backend *be, struct backend *other)
{
	uint8_t *a = malloc(1 << 20), *b = malloc(1 << 20);
	for (uint64_t off = 0; off < be->size; off += 1 << 20) {
		int rc = be->ops->read(be, a, off, 1 << 20);
		if (rc < 0)
			die("warm read", rc);
		if (other) {
			if ((rc = other->ops->read(other, b, off, 1 << 20)) < 0)
				die("warm read", rc);
			if (memcmp(a, b, 1 << 20) != 0) {
				fprintf(stderr, "chain_bench: %s and %s differ near %llu\n", be->name,
					other->name, (unsigned long long)off);
				exit(1);
			}
		}
	}
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	const char *parent = argc > 1 ? argv[1] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	uint64_t mib = env_u64("BENCH_IMAGE_MIB", 1024);
	unsigned nl = (unsigned)env_u64("BENCH_LAYERS", 10);
	uint64_t pct = env_u64("BENCH_PCT", 5);
	double secs = (double)env_u64("BENCH_SECS", 3);
	unsigned rounds = (unsigned)env_u64("BENCH_ROUNDS", 3);
	char dir[512], p[600];
	struct backend *root;
	struct ovl_layer *layers[MAX_LAYERS + 1], *uni;
	int rc;

	if (nl < 1 || nl > MAX_LAYERS || mib < 1 || rounds < 1 || rounds > 15 || secs <= 0) {
		fprintf(stderr, "chain_bench: BENCH_LAYERS 1..%u, BENCH_ROUNDS 1..15\n", MAX_LAYERS);
		return 2;
	}
	log_set_level(LOG_WARN);
	snprintf(dir, sizeof(dir), "%s/chainbench.XXXXXX", parent);
	if (!mkdtemp(dir))
		die("mkdtemp", errno);
	uint64_t size = mib << 20, nblk = size / BS4K;
	uint8_t *src = calloc(nblk, 1), *src1 = calloc(nblk, 1), *srcu = calloc(nblk, 1);
	if (!src || !src1 || !srcu)
		die("src", ENOMEM);

	double t0 = now_s();
	snprintf(p, sizeof(p), "%s/root.img", dir);
	make_root(p, mib);
	if ((rc = backend_raw_open(p, false, &root)) < 0)
		die("root open", rc);
	double t_root = now_s() - t0;

	/* Layers 1..nl, each a draft over the chain of the version below. */
	struct backend *below = NULL;
	t0 = now_s();
	for (unsigned k = 1; k <= nl; k++) {
		if ((rc = chain_open(root, layers, k - 1, "below", &below)) < 0)
			die("chain_open", rc);
		struct rand_fill f = { src, k == 1 ? src1 : NULL, nblk, pct, 0xC0FFEEull + k, k };
		snprintf(p, sizeof(p), "%s/layer%u", dir, k);
		layers[k - 1] = make_layer(p, below, BS4K, fill_random, &f);
		backend_close(below);
	}
	double t_layers = now_s() - t0;

	struct backend *c_root, *c_one, *c_all, *c_uni;
	if ((rc = chain_open(root, NULL, 0, "root", &c_root)) < 0 ||
	    (rc = chain_open(root, layers, 1, "1 layer", &c_one)) < 0)
		die("chain_open", rc);
	t0 = now_s();
	if ((rc = chain_open(root, layers, nl, "N layers", &c_all)) < 0)
		die("chain_open", rc);
	double t_resolve = now_s() - t0;
	struct union_fill uf = { src, nblk, c_all };
	snprintf(p, sizeof(p), "%s/union", dir);
	uni = make_layer(p, root, BS4K, fill_union, &uf);
	if ((rc = chain_open(root, &uni, 1, "union", &c_uni)) < 0)
		die("chain_open", rc);

	/* Warm every file through the chains; the union must read as N. */
	read_whole(c_root, NULL);
	read_whole(c_one, NULL);
	read_whole(c_uni, c_all);

	/* The same reads without the chain (see struct direct). */
	uint8_t *src0 = calloc(nblk, 1);
	struct direct dir_root = { src0, { -1 }, size }, dir_one = { src1, { -1 }, size },
		      dir_all = { src, { -1 }, size }, dir_uni = { srcu, { -1 }, size };
	snprintf(p, sizeof(p), "%s/root.img", dir);
	dir_root.fd[0] = dir_one.fd[0] = dir_all.fd[0] = dir_uni.fd[0] = open(p, O_RDONLY);
	for (unsigned k = 1; k <= nl; k++) {
		snprintf(p, sizeof(p), "%s/layer%u/data", dir, k);
		dir_all.fd[k] = open(p, O_RDONLY);
		if (dir_all.fd[k] < 0)
			die(p, errno);
	}
	dir_one.fd[1] = dir_all.fd[1];
	snprintf(p, sizeof(p), "%s/union/data", dir);
	dir_uni.fd[1] = open(p, O_RDONLY);
	if (!src0 || dir_root.fd[0] < 0 || dir_uni.fd[1] < 0)
		die("direct files", errno);

	uint64_t from_layers = 0, from_one = 0;
	for (uint64_t b = 0; b < nblk; b++) {
		srcu[b] = src[b] != 0;
		from_layers += src[b] != 0;
		from_one += src1[b];
	}

	printf("chain_bench: %llu MiB image, %u layers each writing a random %llu%% of the 4 KiB blocks, G=4096\n",
	       (unsigned long long)mib, nl, (unsigned long long)pct);
	printf("  in-process through the backend API (no iSCSI); %ld CPUs; scratch %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), dir);
	printf("  page cache WARM: every chain was read whole before measuring, reads never wait for the disk,\n"
	       "  so this measures the chain's own cost (map lookups, calls per read), not storage\n");
	printf("  root written in %.1f s, %u layers built in %.1f s; chain_open of %u layers: %.1f ms\n",
	       t_root, nl, t_layers, nl, t_resolve * 1e3);
	printf("  blocks from layers: 1 layer %.1f%%, %u layers %.1f%%\n",
	       100.0 * (double)from_one / (double)nblk, nl, 100.0 * (double)from_layers / (double)nblk);
	printf("  calls per 1 MiB read (runs of one source): root 1.0, 1 layer %.1f, %u layers %.1f, union %.1f\n",
	       runs_per_mib(src1, nblk), nl, runs_per_mib(src, nblk), runs_per_mib(srcu, nblk));
	printf("  resolved map RAM: root %llu B, 1 layer %llu B, %u layers %llu B, union %llu B\n",
	       (unsigned long long)chain_map_bytes(c_root), (unsigned long long)chain_map_bytes(c_one),
	       nl, (unsigned long long)chain_map_bytes(c_all), (unsigned long long)chain_map_bytes(c_uni));
	printf("  %u rounds x %.0f s per measurement (about %.0f s in all), medians; rows: through the chain,\n"
	       "  then 'direct' = the same preads without the chain code (the kernel's share), then their ratio\n\n",
	       rounds, secs, rounds * secs * 3 * 8);

	struct { const char *name; enum kind kind; unsigned threads; const char *unit; } wl[] = {
		{ "4K random read, 1 thread", RAND4K, 1, "IOPS" },
		{ "4K random read, 2 threads", RAND4K, 2, "IOPS" },
		{ "1M sequential read, 1 thread", SEQ1M, 1, "MiB/s" },
	};
	struct backend *chains[4] = { c_root, c_one, c_all, c_uni };
	const struct direct *directs[4] = { &dir_root, &dir_one, &dir_all, &dir_uni };
	char hdr[32];
	snprintf(hdr, sizeof(hdr), "%u layers", nl);
	printf("%-29s %-5s %-13s %10s %10s %10s %10s  %7s %7s %7s\n", "workload", "unit", "", "root",
	       "1 layer", hdr, "union", "N/1", "N/root", "N/union");
	for (size_t w = 0; w < sizeof(wl) / sizeof(wl[0]); w++) {
		double v[2][4][15], med[2][4];
		for (unsigned r = 0; r < rounds; r++)
			for (int c = 0; c < 4; c++)     /* interleaved: drift hits all alike */
				for (int d = 0; d < 2; d++)
					v[d][c][r] = measure(chains[c], d ? directs[c] : NULL,
							     wl[w].kind, wl[w].threads, secs);
		for (int d = 0; d < 2; d++)
			for (int c = 0; c < 4; c++)
				med[d][c] = median(v[d][c], rounds);
		for (int d = 0; d < 2; d++)
			printf("%-29s %-5s %-13s %10.0f %10.0f %10.0f %10.0f  %7.3f %7.3f %7.3f\n",
			       d ? "" : wl[w].name, wl[w].unit, d ? "direct" : "chain", med[d][0],
			       med[d][1], med[d][2], med[d][3], med[d][2] / med[d][1],
			       med[d][2] / med[d][0], med[d][2] / med[d][3]);
		printf("%-29s %-5s %-13s %10.3f %10.3f %10.3f %10.3f\n", "", "", "chain/direct",
		       med[0][0] / med[1][0], med[0][1] / med[1][1], med[0][2] / med[1][2],
		       med[0][3] / med[1][3]);
		fflush(stdout);
	}
	close(dir_root.fd[0]);
	for (unsigned k = 1; k <= nl; k++)
		close(dir_all.fd[k]);
	close(dir_uni.fd[1]);
	free(src0);

	for (int c = 0; c < 4; c++)
		backend_close(chains[c]);
	ovl_layer_close(uni);
	for (unsigned k = 0; k < nl; k++)
		ovl_layer_close(layers[k]);
	backend_close(root);
	free(src);
	free(src1);
	free(srcu);
	overlay_trash_purge(dir);
	rmdir(dir);
	return 0;
}
