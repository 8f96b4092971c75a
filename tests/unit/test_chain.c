/*
 * test_chain.c - frozen layers and version chains (src/storage/layer.c,
 * src/storage/chain.c) on the real file system.
 *
 * Layers are made the way the daemon makes them: a draft overlay over
 * version N's chain gets random writes and unmaps, is closed, and opened
 * again as layer N+1.  A byte-per-byte model of every version says what
 * each chain must read.  Also: zero layers, the short last block,
 * chain_replace under concurrent readers (old sources closed as soon as
 * it returns), limits and argument checks, corrupt layers, a layer open
 * that must not change a single file, and the RAM of the resolved map.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crc32c.h"
#include "storage/backend.h"
#include "storage/chain.h"
#include "storage/overlay.h"
#include "util/log.h"

#define BASE_ID "base-1"
#define MAXV 13                 /* versions 0..12 */

static char g_root[256];        /* per-run temporary directory */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Byte o of the content "seed" (seed 0 = the root image). */
static uint8_t pat_byte(uint64_t seed, uint64_t o)
{
	uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull ^ (o / 8) * 0xBF58476D1CE4E5B9ull;
	x ^= x >> 31;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (o % 8)));
}

static void pat_fill(uint8_t *buf, uint64_t seed, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat_byte(seed, off + i);
}

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", g_root, name);
}

/* A raw root image of size bytes with the seed-0 pattern (or sparse),
 * opened read-only. */
static struct backend *make_root(const char *name, uint64_t size, bool sparse)
{
	char p[512];
	struct backend *be;
	path_in(p, sizeof(p), name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (!sparse) {
		uint8_t *buf = malloc(1 << 20);
		for (uint64_t o = 0; o < size; o += 1 << 20) {
			size_t n = size - o < (1u << 20) ? size - o : (1u << 20);
			pat_fill(buf, 0, o, n);
			assert_int_equal(pwrite(fd, buf, n, (off_t)o), (ssize_t)n);
		}
		free(buf);
	}
	close(fd);
	assert_int_equal(backend_raw_open(p, false, &be), 0);
	return be;
}

/* Compare be's [off, off+len) with model; print where it differs. */
static void check_range(struct backend *be, const uint8_t *model, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	assert_int_equal(be->ops->read(be, buf, off, len), 0);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != model[off + i]) {
			print_error("%s: byte %llu differs (read %u, model %u; read at %llu+%zu)\n",
				    be->name, (unsigned long long)(off + i), buf[i], model[off + i],
				    (unsigned long long)off, len);
			fail();
		}
	}
	free(buf);
}

/*
 * The whole disk, random reads at any byte offset, and block_status:
 * runs cover the disk, and every unmapped run reads zeros.
 */
static void check_chain(struct backend *be, const uint8_t *model, uint64_t size, uint64_t *rng)
{
	check_range(be, model, 0, size);
	for (int i = 0; i < 150; i++) {
		uint64_t off = rnd(rng) % size;
		uint64_t max = size - off < (300u << 10) ? size - off : (300u << 10);
		check_range(be, model, off, (size_t)(rnd(rng) % max + 1));
	}
	for (uint64_t off = 0; off < size;) {
		uint64_t run = 0;
		bool mapped = true;
		assert_int_equal(be->ops->block_status(be, off, size - off, &run, &mapped), 0);
		assert_true(run >= 1 && run <= size - off);
		if (!mapped)
			for (uint64_t i = off; i < off + run; i++)
				assert_int_equal(model[i], 0);
		off += run;
	}
}

/* Versions 0..n of one image: chains[k] = root + layers[0..k-1]. */
struct stack {
	struct backend *root;
	uint64_t size;
	uint32_t bs;
	unsigned n;
	struct ovl_layer *layers[MAXV];
	struct backend *chains[MAXV];
	uint8_t *model[MAXV];
	char tag[16];
};

static void stack_init(struct stack *s, const char *tag, uint64_t size, uint32_t bs, bool sparse)
{
	char name[64];
	memset(s, 0, sizeof(*s));
	snprintf(s->tag, sizeof(s->tag), "%s", tag);
	snprintf(name, sizeof(name), "%s.root", tag);
	s->root = make_root(name, size, sparse);
	s->size = size;
	s->bs = bs;
	if (size <= (256u << 20)) {             /* no model for huge sparse disks */
		s->model[0] = malloc(size);
		if (sparse)
			memset(s->model[0], 0, size);
		else
			pat_fill(s->model[0], 0, 0, size);
	}
	assert_int_equal(chain_open(s->root, NULL, 0, "v0", &s->chains[0]), 0);
}

static void stack_free(struct stack *s)
{
	for (unsigned k = 0; k <= s->n; k++) {
		backend_close(s->chains[k]);
		free(s->model[k]);
	}
	for (unsigned k = 0; k < s->n; k++)
		ovl_layer_close(s->layers[k]);
	backend_close(s->root);
}

static void layer_dir(const struct stack *s, unsigned k, char *buf, size_t len)
{
	char name[64];
	snprintf(name, sizeof(name), "%s.layer%u", s->tag, k);
	path_in(buf, len, name);
}

/* Open a draft overlay over the top version (dir of layer s->n). */
static struct overlay *draft_open(struct stack *s)
{
	char dir[512];
	struct overlay *ov = NULL;
	struct overlay_opts o = { .base_id = BASE_ID, .block_size = s->bs };
	layer_dir(s, s->n, dir, sizeof(dir));
	assert_int_equal(overlay_open(dir, s->chains[s->n], &o, &ov), 0);
	return ov;
}

static void draft_write(struct overlay *ov, uint8_t *model, uint64_t seed, uint64_t off, size_t len)
{
	struct backend *be = overlay_backend(ov);
	uint8_t *buf = malloc(len);
	pat_fill(buf, seed, off, len);
	assert_int_equal(be->ops->write(be, buf, off, len, false), 0);
	memcpy(model + off, buf, len);
	free(buf);
}

static void draft_unmap(struct overlay *ov, uint8_t *model, uint64_t off, uint64_t len)
{
	struct backend *be = overlay_backend(ov);
	assert_int_equal(be->ops->unmap(be, off, len), 0);
	memset(model + off, 0, len);
}

/* nops random writes/unmaps/flushes at sector offsets (mostly not
 * G-aligned), sizes from one sector to 256 KiB. */
static void draft_random(struct overlay *ov, uint8_t *model, uint64_t size, uint64_t *rng,
			 unsigned nops, uint64_t seed)
{
	uint64_t sectors = size / 512;
	for (unsigned i = 0; i < nops; i++) {
		unsigned what = (unsigned)(rnd(rng) % 100);
		uint64_t off = (rnd(rng) % sectors) * 512;
		uint64_t len = rnd(rng) % 4 == 0 ? (rnd(rng) % 512 + 1) * 512 : (rnd(rng) % 24 + 1) * 512;
		if (len > size - off)
			len = size - off;
		if (what < 70)
			draft_write(ov, model, seed * 1000 + i, off, (size_t)len);
		else if (what < 95)
			draft_unmap(ov, model, off, len);
		else
			assert_int_equal(overlay_backend(ov)->ops->flush(overlay_backend(ov)), 0);
	}
}

/* Close the draft, open it as layer n, and the chain of version n+1. */
static void draft_commit(struct stack *s, struct overlay *ov, uint8_t *model)
{
	char dir[512], name[16];
	assert_int_equal(overlay_close(ov), 0);
	layer_dir(s, s->n, dir, sizeof(dir));
	assert_int_equal(ovl_layer_open(dir, s->size, BASE_ID, &s->layers[s->n]), 0);
	assert_int_equal(ovl_layer_block_size(s->layers[s->n]), s->bs);
	s->n++;
	s->model[s->n] = model;
	snprintf(name, sizeof(name), "v%u", s->n);
	assert_int_equal(chain_open(s->root, s->layers, s->n, name, &s->chains[s->n]), 0);
}

/* Add one layer of random operations on top. */
static void stack_add_random(struct stack *s, uint64_t *rng, unsigned nops)
{
	uint8_t *model = malloc(s->size);
	memcpy(model, s->model[s->n], s->size);
	struct overlay *ov = draft_open(s);
	draft_random(ov, model, s->size, rng, nops, s->n + 1);
	draft_commit(s, ov, model);
}

/* 1..nl layers of random writes/unmaps: every version reads its model,
 * right after it is made and again once all the others exist. */
static void run_random_layers(const char *tag, uint64_t size, uint32_t bs, unsigned nl, uint64_t seed)
{
	struct stack s;
	uint64_t rng = seed;
	stack_init(&s, tag, size, bs, false);
	check_chain(s.chains[0], s.model[0], size, &rng);
	for (unsigned k = 1; k <= nl; k++) {
		stack_add_random(&s, &rng, 40);
		check_chain(s.chains[k], s.model[k], size, &rng);
		assert_int_equal(chain_block_size(s.chains[k]), bs);
		uint64_t held = ovl_layer_bytes(s.layers[k - 1]);
		assert_true(held > 0 && held % bs == 0 && held <= (size / bs + 1) * bs);
	}
	for (unsigned k = 0; k <= nl; k++)
		check_chain(s.chains[k], s.model[k], size, &rng);
	printf("%s: %u layers, G=%u, map of the top chain %llu bytes\n", tag, nl, bs,
	       (unsigned long long)chain_map_bytes(s.chains[nl]));
	stack_free(&s);
}

static void test_random_layers_4k(void **state)
{
	/* 6 MiB + 3 sectors: the last 4 KiB block is short. */
	run_random_layers("r4k", (6u << 20) + 1536, 4096, 12, 0x1234567ull);
}

static void test_random_layers_16k(void **state)
{
	run_random_layers("r16k", (3u << 20) + 512 * 7, 16384, 5, 0xabcdef1ull);
}

/* G = 512: a leaf of the resolved map covers 2 MiB, so reads cross
 * leaves and the disk has several. */
static void test_random_layers_512(void **state)
{
	run_random_layers("r512", (5u << 20) + 1024, 512, 6, 0x5151ull);
}

/* Layers written at known places: sources, block_status, bytes held,
 * the short last block, a whole-disk unmap under a later write. */
static void test_known_layers(void **state)
{
	const uint64_t size = (1u << 20) + 2560;         /* last 4K block: 2560 bytes */
	struct stack s;
	uint64_t rng = 99;
	stack_init(&s, "known", size, 4096, false);

	uint8_t *m = malloc(size);
	memcpy(m, s.model[0], size);
	struct overlay *ov = draft_open(&s);
	draft_write(ov, m, 11, 8192, 3 * 4096);          /* blocks 2..4 whole */
	draft_write(ov, m, 12, size - 512, 512);         /* part of the short last block */
	draft_unmap(ov, m, 65536, 2 * 4096);             /* blocks 16, 17 */
	draft_commit(&s, ov, m);
	/* 3 whole blocks + the last one (copied up), the unmapped ones not. */
	assert_int_equal(ovl_layer_bytes(s.layers[0]), 4 * 4096);
	check_chain(s.chains[1], s.model[1], size, &rng);

	struct backend *c = s.chains[1];
	uint64_t run;
	bool mapped;
	assert_int_equal(c->ops->block_status(c, 8192 + 512, 65536, &run, &mapped), 0);
	assert_true(mapped);
	assert_int_equal(run, 3 * 4096 - 512);           /* to the end of the layer's run */
	assert_int_equal(c->ops->block_status(c, 65536 + 1024, 1u << 19, &run, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(run, 2 * 4096 - 1024);
	assert_int_equal(c->ops->block_status(c, size - 512, 512, &run, &mapped), 0);
	assert_true(mapped);
	assert_int_equal(run, 512);

	/* Version 2: unmap everything, then write one sector in the middle. */
	m = malloc(size);
	memcpy(m, s.model[1], size);
	ov = draft_open(&s);
	draft_unmap(ov, m, 0, size);
	draft_write(ov, m, 21, 512 * 1001, 512);
	draft_commit(&s, ov, m);
	assert_int_equal(ovl_layer_bytes(s.layers[1]), 4096);
	check_chain(s.chains[2], s.model[2], size, &rng);
	c = s.chains[2];
	assert_int_equal(c->ops->block_status(c, 0, size, &run, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(run, 512 * 1000 / 4096 * 4096);

	/* Version 1 did not change under version 2. */
	check_chain(s.chains[1], s.model[1], size, &rng);
	stack_free(&s);
}

/* No layers: the root's content and allocation, read-only ops. */
static void test_zero_layers(void **state)
{
	const uint64_t size = 3u << 20;
	char p[512];
	uint64_t rng = 5;
	struct backend *root = make_root("z.root", size, true);
	uint8_t *model = calloc(1, size);

	/* Data in the first MiB only; the rest is a hole. */
	path_in(p, sizeof(p), "z.root");
	int fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	pat_fill(model, 0, 0, 1u << 20);
	assert_int_equal(pwrite(fd, model, 1u << 20, 0), 1 << 20);
	close(fd);

	struct backend *c = NULL;
	assert_int_equal(chain_open(root, NULL, 0, "zero", &c), 0);
	assert_string_equal(c->name, "zero");
	assert_true(c->read_only);
	assert_int_equal(c->size, size);
	assert_int_equal(chain_block_size(c), 0);        /* no layer: any G */
	check_chain(c, model, size, &rng);

	uint64_t run, rrun;
	bool mapped, rmapped;
	for (uint64_t off = 0; off < size; off += 256u << 10) {
		assert_int_equal(c->ops->block_status(c, off, size - off, &run, &mapped), 0);
		assert_int_equal(root->ops->block_status(root, off, size - off, &rrun, &rmapped), 0);
		assert_int_equal(run, rrun);
		assert_int_equal(mapped, rmapped);
	}
	assert_int_equal(c->ops->block_status(c, 2u << 20, 4096, &run, &mapped), 0);
	assert_false(mapped);

	uint8_t buf[4096] = { 1 };
	assert_int_equal(c->ops->write(c, buf, 0, 4096, false), -EROFS);
	assert_int_equal(c->ops->write(c, buf, 0, 4096, true), -EROFS);
	assert_int_equal(c->ops->unmap(c, 0, 4096), -EROFS);
	assert_int_equal(c->ops->flush(c), 0);
	assert_int_equal(c->ops->read(c, buf, size - 512, 1024), -EINVAL);
	assert_int_equal(c->ops->read(c, buf, size, 0), 0);
	assert_int_equal(c->ops->block_status(c, size, 0, &run, &mapped), -EINVAL);
	check_range(c, model, 0, size);                  /* nothing changed */

	/* The map of a chain without layers is its top table only. */
	assert_true(chain_map_bytes(c) <= 64);
	backend_close(c);
	backend_close(root);
	free(model);
}

/* ---- chain_replace under readers ------------------------------------- */

struct reader {
	struct backend *chain;
	const uint8_t *model;
	uint64_t size, seed;
	volatile int *stop;
	uint64_t reads, bad;
	int err;
};

static void *reader_thread(void *p)
{
	struct reader *r = p;
	uint64_t rng = r->seed;
	uint8_t *buf = malloc(128u << 10);

	while (!__atomic_load_n(r->stop, __ATOMIC_SEQ_CST)) {
		uint64_t off = rnd(&rng) % r->size;
		uint64_t max = r->size - off < (128u << 10) ? r->size - off : (128u << 10);
		size_t len = (size_t)(rnd(&rng) % max + 1);
		int rc = r->chain->ops->read(r->chain, buf, off, len);
		if (rc < 0 && !r->err)
			r->err = rc;
		if (rc == 0 && memcmp(buf, r->model + off, len) != 0)
			r->bad++;
		r->reads++;
	}
	free(buf);
	return NULL;
}

/* Write the content of be into a new raw file (a flatten) and open it. */
static struct backend *flatten(struct backend *be, const char *name)
{
	char p[512];
	struct backend *flat;
	uint8_t *buf = malloc(1u << 20);
	path_in(p, sizeof(p), name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (uint64_t o = 0; o < be->size; o += 1u << 20) {
		size_t n = be->size - o < (1u << 20) ? (size_t)(be->size - o) : (1u << 20);
		assert_int_equal(be->ops->read(be, buf, o, n), 0);
		assert_int_equal(pwrite(fd, buf, n, (off_t)o), (ssize_t)n);
	}
	close(fd);
	free(buf);
	assert_int_equal(backend_raw_open(p, false, &flat), 0);
	return flat;
}

/* Fresh handles on the layers of s (what a daemon would hold per chain). */
static void open_layers(struct stack *s, struct ovl_layer **out)
{
	for (unsigned k = 0; k < s->n; k++) {
		char dir[512];
		layer_dir(s, k, dir, sizeof(dir));
		assert_int_equal(ovl_layer_open(dir, s->size, BASE_ID, &out[k]), 0);
	}
}

static void close_layers(struct ovl_layer **l, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		ovl_layer_close(l[k]);
}

static void test_replace_concurrent(void **state)
{
	const uint64_t size = (4u << 20) + 1024;
	const unsigned nl = 6, nthreads = 3, cycles = 40;
	struct stack s;
	uint64_t rng = 77;
	char rp[512];

	stack_init(&s, "rep", size, 4096, false);
	for (unsigned k = 0; k < nl; k++)
		stack_add_random(&s, &rng, 40);
	const uint8_t *model = s.model[nl];
	struct backend *flat = flatten(s.chains[nl], "rep.flat");

	/* The chain under test reads through its own handles, closed as
	 * soon as a replace has swapped them out: a read still using them
	 * would fail (closed fd) or trip ASan (freed map). */
	struct ovl_layer *cur[MAXV];
	struct backend *cur_root;
	path_in(rp, sizeof(rp), "rep.root");
	open_layers(&s, cur);
	assert_int_equal(backend_raw_open(rp, false, &cur_root), 0);
	struct backend *c = NULL;
	assert_int_equal(chain_open(cur_root, cur, nl, "rep", &c), 0);

	volatile int stop = 0;
	struct reader rd[3];
	pthread_t th[3];
	for (unsigned i = 0; i < nthreads; i++) {
		rd[i] = (struct reader){ .chain = c, .model = model, .size = size,
					 .seed = 1000 + i, .stop = &stop };
		assert_int_equal(pthread_create(&th[i], NULL, reader_thread, &rd[i]), 0);
	}
	uint64_t last = 0;
	for (unsigned cyc = 0; cyc < cycles; cyc++) {
		/* Wait until the readers made progress on the current sources. */
		for (int spin = 0; spin < 2000; spin++) {
			uint64_t sum = 0;
			for (unsigned i = 0; i < nthreads; i++)
				sum += __atomic_load_n(&rd[i].reads, __ATOMIC_RELAXED);
			if (sum >= last + 2 * nthreads) {
				last = sum;
				break;
			}
			usleep(500);
		}
		/* To the flat file, then back to fresh handles on the layers. */
		assert_int_equal(chain_replace(c, flat, NULL, 0), 0);
		close_layers(cur, nl);
		backend_close(cur_root);
		memset(cur, 0, sizeof(cur));
		usleep(1000);
		open_layers(&s, cur);
		assert_int_equal(backend_raw_open(rp, false, &cur_root), 0);
		assert_int_equal(chain_replace(c, cur_root, cur, nl), 0);
		/* A refused replace changes nothing. */
		assert_int_equal(chain_replace(c, cur_root, cur, CHAIN_MAX_LAYERS + 1), -E2BIG);
		assert_int_equal(chain_replace(c, s.chains[0], cur, nl), 0);   /* a chain as root */
		assert_int_equal(chain_replace(c, cur_root, cur, nl), 0);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
	uint64_t total = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(rd[i].err, 0);
		assert_int_equal(rd[i].bad, 0);
		total += rd[i].reads;
	}
	printf("chain_replace: %u cycles, %llu concurrent reads, all equal to the model\n", cycles,
	       (unsigned long long)total);
	assert_true(total >= (uint64_t)cycles * 2 * nthreads);
	check_range(c, model, 0, size);
	backend_close(c);
	close_layers(cur, nl);
	backend_close(cur_root);
	backend_close(flat);
	stack_free(&s);
}

/* ---- limits and argument checks -------------------------------------- */

static void test_limits(void **state)
{
	const uint64_t size = 1u << 20;
	struct stack s, t, u;
	uint64_t rng = 3;
	struct backend *c = NULL;

	stack_init(&s, "lim", size, 4096, false);
	stack_add_random(&s, &rng, 20);

	/* CHAIN_MAX_LAYERS copies of one layer: as if it were alone. */
	struct ovl_layer **many = malloc((CHAIN_MAX_LAYERS + 1) * sizeof(*many));
	for (unsigned k = 0; k <= CHAIN_MAX_LAYERS; k++)
		many[k] = s.layers[0];
	assert_int_equal(chain_open(s.root, many, CHAIN_MAX_LAYERS + 1, "big", &c), -E2BIG);
	assert_null(c);
	assert_int_equal(chain_open(s.root, many, CHAIN_MAX_LAYERS, "max", &c), 0);
	check_range(c, s.model[1], 0, size);
	backend_close(c);
	free(many);

	/* A layer of another image size; G differs between two layers. */
	stack_init(&t, "lim2", size + 4096, 4096, false);
	stack_add_random(&t, &rng, 5);
	stack_init(&u, "lim3", size, 16384, false);
	stack_add_random(&u, &rng, 5);
	struct ovl_layer *mix[2] = { s.layers[0], t.layers[0] };
	assert_int_equal(chain_open(s.root, mix, 1, "ok", &c), 0);
	backend_close(c);
	assert_int_equal(chain_open(s.root, mix, 2, "size", &c), -EINVAL);
	assert_int_equal(chain_open(t.root, mix, 2, "size", &c), -EINVAL);
	mix[1] = u.layers[0];                            /* same size, G 16K */
	assert_int_equal(chain_open(s.root, mix, 2, "g", &c), -EINVAL);
	assert_int_equal(chain_open(s.root, &mix[1], 1, "g16", &c), 0);  /* alone it fits */
	backend_close(c);
	mix[1] = NULL;
	assert_int_equal(chain_open(s.root, mix, 2, "null", &c), -EINVAL);
	assert_int_equal(chain_open(s.root, NULL, 1, "null", &c), -EINVAL);
	assert_int_equal(chain_open(NULL, NULL, 0, "null", &c), -EINVAL);
	assert_null(c);

	/* chain_replace: the same rules, plus the size of the chain. */
	assert_int_equal(chain_open(s.root, s.layers, 1, "r", &c), 0);
	assert_int_equal(chain_replace(c, t.root, NULL, 0), -EINVAL);
	mix[1] = u.layers[0];
	assert_int_equal(chain_replace(c, s.root, mix, 2), -EINVAL);
	check_range(c, s.model[1], 0, size);             /* unchanged */
	backend_close(c);

	/* ovl_layer_open: identity and arguments. */
	char dir[512];
	struct ovl_layer *l = NULL;
	layer_dir(&s, 0, dir, sizeof(dir));
	assert_int_equal(ovl_layer_open(dir, size + 512, BASE_ID, &l), -ESTALE);
	assert_int_equal(ovl_layer_open(dir, size, "other", &l), -ESTALE);
	assert_int_equal(ovl_layer_open(dir, 0, BASE_ID, &l), -EINVAL);
	assert_null(l);
	assert_int_equal(ovl_layer_open(dir, size, NULL, &l), 0);        /* size only */
	ovl_layer_close(l);
	ovl_layer_close(NULL);

	stack_free(&s);
	stack_free(&t);
	stack_free(&u);
}

/* ---- corrupt layers and a layer that must not be changed ------------- */

/* One file's identity: content, size, times, inode. */
struct fsnap {
	char name[256];
	uint32_t crc;
	struct stat st;
};

static uint32_t file_crc(const char *path)
{
	int fd = open(path, O_RDONLY);
	uint8_t buf[65536];
	uint32_t reg = CRC32C_INIT;
	ssize_t n;
	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		reg = crc32c_update(reg, buf, (size_t)n);
	close(fd);
	return crc32c_final(reg);
}

/* Every entry of dir (sorted), plus the directory itself as entry 0. */
static int dir_snap(const char *dir, struct fsnap *out, int max)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), k = 1;
	assert_true(n >= 0);
	memset(out, 0, sizeof(*out) * (size_t)max);
	snprintf(out[0].name, sizeof(out[0].name), ".");
	assert_int_equal(stat(dir, &out[0].st), 0);
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' && k < max) {
			char p[600];
			snprintf(p, sizeof(p), "%s/%s", dir, ents[i]->d_name);
			snprintf(out[k].name, sizeof(out[k].name), "%s", ents[i]->d_name);
			assert_int_equal(stat(p, &out[k].st), 0);
			out[k].crc = file_crc(p);
			k++;
		}
		free(ents[i]);
	}
	free(ents);
	return k;
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* dir now is exactly as in the snapshot: same names, bytes, sizes,
 * inodes, modification and change times. */
static void assert_unchanged(const char *dir, const struct fsnap *before, int n)
{
	struct fsnap now[16];
	int m = dir_snap(dir, now, 16);
	assert_int_equal(m, n);
	for (int i = 0; i < n; i++) {
		assert_string_equal(now[i].name, before[i].name);
		assert_int_equal(now[i].crc, before[i].crc);
		assert_int_equal(now[i].st.st_ino, before[i].st.st_ino);
		assert_int_equal(now[i].st.st_size, before[i].st.st_size);
		assert_int_equal(now[i].st.st_blocks, before[i].st.st_blocks);
		assert_true(same_time(now[i].st.st_mtim, before[i].st.st_mtim));
		assert_true(same_time(now[i].st.st_ctim, before[i].st.st_ctim));
	}
}

static void flip(const char *dir, const char *name, off_t off)
{
	char p[600];
	uint8_t ch;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &ch, 1, off), 1);
	ch ^= 0x40;
	assert_int_equal(pwrite(fd, &ch, 1, off), 1);
	close(fd);
}

static off_t file_size(const char *dir, const char *name)
{
	char p[600];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(stat(p, &st), 0);
	return st.st_size;
}

static void append_bytes(const char *dir, const char *name, const void *b, size_t n)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	close(fd);
}

static void rename_in(const char *dir, const char *from, const char *to)
{
	char a[600], b[600];
	snprintf(a, sizeof(a), "%s/%s", dir, from);
	snprintf(b, sizeof(b), "%s/%s", dir, to);
	assert_int_equal(rename(a, b), 0);
}

/*
 * Open dir as a layer over s's top version, read it through a chain
 * (must equal model) and close it; nothing in dir may change.
 */
static void layer_read_untouched(struct stack *s, const char *dir, const uint8_t *model)
{
	struct fsnap before[16];
	struct ovl_layer *all[MAXV], *l = NULL;
	struct backend *c = NULL;
	uint64_t rng = 42;
	int n = dir_snap(dir, before, 16);

	assert_int_equal(ovl_layer_open(dir, s->size, BASE_ID, &l), 0);
	memcpy(all, s->layers, s->n * sizeof(*all));
	all[s->n] = l;
	assert_int_equal(chain_open(s->root, all, s->n + 1, "untouched", &c), 0);
	check_chain(c, model, s->size, &rng);
	backend_close(c);
	ovl_layer_close(l);
	assert_unchanged(dir, before, n);
}

static void test_corrupt_and_untouched(void **state)
{
	const uint64_t size = 2u << 20;
	struct stack s;
	uint64_t rng = 17;
	char dir[512], d2[512];
	struct ovl_layer *l = NULL;
	struct fsnap before[16];
	int n;

	stack_init(&s, "cor", size, 4096, false);
	stack_add_random(&s, &rng, 30);                  /* layer 0, closed cleanly */
	layer_dir(&s, 0, dir, sizeof(dir));

	/* A clean layer: map checkpoint, empty log. */
	layer_read_untouched(&s, dir, s.model[1]);
	struct { const char *file; off_t off; } cases[] = {
		{ "map", 3 }, { "map", 20 }, { "map", 64 + 9 }, { "map", 64 + 8 + 100 },
		{ "log", 1 }, { "log", 17 }, { "info", 13 }, { "info", 40 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		flip(dir, cases[i].file, cases[i].off);
		n = dir_snap(dir, before, 16);
		assert_int_equal(ovl_layer_open(dir, size, BASE_ID, &l), -EBADMSG);
		assert_null(l);
		assert_unchanged(dir, before, n);
		flip(dir, cases[i].file, cases[i].off);  /* repair */
	}
	rename_in(dir, "data", "data.moved");
	assert_int_equal(ovl_layer_open(dir, size, BASE_ID, &l), -EBADMSG);
	rename_in(dir, "data.moved", "data");
	rename_in(dir, "info", "info.moved");
	assert_int_equal(ovl_layer_open(dir, size, BASE_ID, &l), -EBADMSG);   /* a map, no info */
	rename_in(dir, "info.moved", "info");
	path_in(d2, sizeof(d2), "cor.none");
	assert_int_equal(ovl_layer_open(d2, size, BASE_ID, &l), -ENOENT);     /* no directory */
	assert_int_equal(mkdir(d2, 0700), 0);
	assert_int_equal(ovl_layer_open(d2, size, BASE_ID, &l), -ENOENT);     /* empty: no overlay */
	assert_int_equal(rmdir(d2), 0);                  /* and nothing was created */
	assert_null(l);

	/*
	 * A layer whose blocks are only in the log (three flushes, then
	 * dropped without the final checkpoint): replayed like overlay_open.
	 */
	uint8_t *m = malloc(size);
	memcpy(m, s.model[1], size);
	struct overlay *ov = draft_open(&s);
	struct backend *ob = overlay_backend(ov);
	for (int f = 0; f < 3; f++) {
		draft_random(ov, m, size, &rng, 8, 50 + f);
		assert_int_equal(ob->ops->flush(ob), 0);
	}
	overlay_drop(ov);
	layer_dir(&s, 1, dir, sizeof(dir));
	assert_true(file_size(dir, "log") > 64);
	layer_read_untouched(&s, dir, m);

	/* A flipped byte in the first record (valid ones follow): corrupt. */
	flip(dir, "log", 64 + 20);
	n = dir_snap(dir, before, 16);
	assert_int_equal(ovl_layer_open(dir, size, BASE_ID, &l), -EBADMSG);
	assert_unchanged(dir, before, n);
	flip(dir, "log", 64 + 20);

	/* A torn tail is ignored, and NOT cut off (overlay_open would). */
	uint8_t junk[40];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 5);
	off_t logsz = file_size(dir, "log");
	append_bytes(dir, "log", junk, sizeof(junk));
	layer_read_untouched(&s, dir, m);
	assert_int_equal(file_size(dir, "log"), logsz + (off_t)sizeof(junk));

	/*
	 * A crash between a checkpoint's two renames: a new map with the
	 * old log behind it.  overlay_open would write a fresh log; a layer
	 * reads the map and leaves the old log where it is.
	 */
	rename_in(dir, "log", "log.old");
	char oldlog[600], curlog[600];
	snprintf(oldlog, sizeof(oldlog), "%s/log.old", dir);
	snprintf(curlog, sizeof(curlog), "%s/log", dir);
	assert_int_equal(link(oldlog, curlog), 0);       /* both names, one file */
	struct overlay_opts o = { .base_id = BASE_ID };
	assert_int_equal(overlay_open(dir, s.chains[1], &o, &ov), 0);  /* cuts the tail */
	assert_int_equal(file_size(dir, "log"), logsz);
	assert_int_equal(overlay_close(ov), 0);          /* checkpoint: map + new log */
	assert_true(file_size(dir, "map") > 64);
	rename_in(dir, "log.old", "log");                /* the old log is back */
	assert_int_equal(file_size(dir, "log"), logsz);
	layer_read_untouched(&s, dir, m);

	/* The test can see a change: overlay_open replaces that log. */
	n = dir_snap(dir, before, 16);
	assert_int_equal(overlay_open(dir, s.chains[1], &o, &ov), 0);
	overlay_drop(ov);
	struct fsnap after[16];
	assert_int_equal(dir_snap(dir, after, 16), n);
	bool changed = false;
	for (int i = 0; i < n; i++)
		changed |= after[i].st.st_ino != before[i].st.st_ino || after[i].crc != before[i].crc;
	assert_true(changed);

	free(m);
	stack_free(&s);
}

/* ---- RAM of the resolved map ----------------------------------------- */

static void test_map_ram(void **state)
{
	const uint64_t size = 64ull << 30;               /* sparse: nothing on disk */
	struct stack s;
	uint64_t rng = 8;
	stack_init(&s, "ram", size, 4096, true);
	uint64_t top = chain_map_bytes(s.chains[0]);

	/* Layer 1: 16 sectors spread over the disk. */
	struct overlay *ov = draft_open(&s);
	struct backend *ob = overlay_backend(ov);
	uint8_t buf[512];
	memset(buf, 0x77, sizeof(buf));
	uint64_t offs[16];
	for (int i = 0; i < 16; i++) {
		offs[i] = (rnd(&rng) % (size / 512)) * 512;
		assert_int_equal(ob->ops->write(ob, buf, offs[i], 512, false), 0);
	}
	assert_int_equal(overlay_close(ov), 0);
	char dir[512];
	layer_dir(&s, 0, dir, sizeof(dir));
	assert_int_equal(ovl_layer_open(dir, size, BASE_ID, &s.layers[0]), 0);
	s.n = 1;
	assert_int_equal(chain_open(s.root, s.layers, 1, "ram1", &s.chains[1]), 0);
	uint64_t one = chain_map_bytes(s.chains[1]);
	printf("map RAM, 64 GiB disk at G=4K: no layer %llu bytes, 16 sectors written %llu bytes "
	       "(a byte per block would be %llu)\n", (unsigned long long)top,
	       (unsigned long long)one, (unsigned long long)(size / 4096));
	assert_true(top <= size / 4096 / 256);           /* <= 1/256 of a byte per block */
	assert_true(one <= top + 16 * 4096);
	uint8_t rb[512];
	for (int i = 0; i < 16; i++) {
		assert_int_equal(s.chains[1]->ops->read(s.chains[1], rb, offs[i], 512), 0);
		assert_memory_equal(rb, buf, 512);
	}

	/* Layer 2: the whole disk unmapped: uniform again, no leaves. */
	ov = draft_open(&s);
	ob = overlay_backend(ov);
	assert_int_equal(ob->ops->unmap(ob, 0, size), 0);
	assert_int_equal(overlay_close(ov), 0);
	layer_dir(&s, 1, dir, sizeof(dir));
	assert_int_equal(ovl_layer_open(dir, size, BASE_ID, &s.layers[1]), 0);
	s.n = 2;
	assert_int_equal(chain_open(s.root, s.layers, 2, "ram2", &s.chains[2]), 0);
	assert_int_equal(chain_map_bytes(s.chains[2]), top);
	uint64_t run;
	bool mapped;
	assert_int_equal(s.chains[2]->ops->block_status(s.chains[2], 0, size, &run, &mapped), 0);
	assert_false(mapped);
	assert_int_equal(run, size);
	stack_free(&s);
}

/* A dense layer: one source per block costs about a byte per block,
 * and a layer written whole is uniform again. */
static void test_map_dense(void **state)
{
	const uint64_t size = 32u << 20;
	const uint64_t nblk = size / 4096;
	struct stack s;
	uint64_t rng = 12;
	stack_init(&s, "dense", size, 4096, false);
	uint64_t top = chain_map_bytes(s.chains[0]);

	uint8_t *m = malloc(size);
	memcpy(m, s.model[0], size);
	struct overlay *ov = draft_open(&s);
	for (uint64_t b = 0; b < nblk; b += 2)
		draft_write(ov, m, 7, b * 4096, 4096);
	draft_commit(&s, ov, m);
	uint64_t half = chain_map_bytes(s.chains[1]);
	assert_true(half >= nblk && half <= top + nblk + 4096);

	m = malloc(size);
	memcpy(m, s.model[1], size);
	ov = draft_open(&s);
	for (uint64_t b = 1; b < nblk; b += 2)
		draft_write(ov, m, 8, b * 4096, 4096);
	draft_commit(&s, ov, m);
	/* Every block now from a layer, but from two different ones. */
	assert_true(chain_map_bytes(s.chains[2]) >= nblk);
	check_chain(s.chains[2], s.model[2], size, &rng);

	m = malloc(size);
	memcpy(m, s.model[2], size);
	ov = draft_open(&s);
	draft_write(ov, m, 9, 0, (size_t)size);
	draft_commit(&s, ov, m);
	assert_int_equal(chain_map_bytes(s.chains[3]), top);
	check_chain(s.chains[3], s.model[3], size, &rng);

	/* Zeros from two layers (each unmaps a part of every leaf) make
	 * uniform leaves again. */
	for (unsigned part = 0; part < 2; part++) {
		m = malloc(size);
		memcpy(m, s.model[s.n], size);
		ov = draft_open(&s);
		for (uint64_t o = part * 8192; o < size; o += 16384)
			draft_unmap(ov, m, o, 8192);
		draft_commit(&s, ov, m);
	}
	assert_int_equal(chain_map_bytes(s.chains[5]), top);
	check_chain(s.chains[5], s.model[5], size, &rng);
	stack_free(&s);
}

static int setup(void **state)
{
	snprintf(g_root, sizeof(g_root), "%s/chaintest.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(g_root))
		return -1;
	log_set_level(LOG_WARN);
	return 0;
}

static int teardown(void **state)
{
	overlay_trash_purge(g_root);
	rmdir(g_root);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_layers_4k),
		cmocka_unit_test(test_random_layers_16k),
		cmocka_unit_test(test_random_layers_512),
		cmocka_unit_test(test_known_layers),
		cmocka_unit_test(test_zero_layers),
		cmocka_unit_test(test_replace_concurrent),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_corrupt_and_untouched),
		cmocka_unit_test(test_map_ram),
		cmocka_unit_test(test_map_dense),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
