/*
 * chain.c - an image version (a root backend plus frozen layers) as one
 * read-only struct backend whose reads cost the same whatever the number
 * of layers (chain.h is the contract; docs/overlay-format.md, section
 * "Frozen layers and version chains", the behaviour).
 *
 * Resolution, done once per chain_open/chain_replace: a SOURCE byte per
 * G-block, SRC_ROOT (0), layer k (k+1, 1..CHAIN_MAX_LAYERS, bottom
 * first) or SRC_ZERO, found by laying the layers' maps over each other
 * bottom first (a block's topmost non-ABSENT layer wins: PRESENT sources
 * that layer, ZERO gives zeros).  The table is two levels like the
 * overlay's map: one leaf of CHAIN_LEAF_BLOCKS source bytes per stretch of
 * the disk, and a leaf whose blocks all share one source is not stored
 * (leaf NULL, its source in fill[]), so RAM follows what the layers
 * touched, not the disk size.  The table never changes once built.
 *
 * Reads: look up the sources of the requested blocks, cut the request
 * only where the source changes, and serve each run with one call: a
 * root read, one pread of the layer's data file at the same offset
 * (identity-mapped), or a memset.  What is in memory (resident) is
 * asked the same way, run by run: the root's resident, mincore over the
 * layer's data file, and zeros are always held.
 *
 * Threading: rwlocks guard which resolution is current.  Reads and
 * block_status hold one shared across their I/O; chain_replace builds
 * the new resolution first, then takes them exclusive only to swap the
 * pointer, so it waits for the reads in flight and the old root and
 * layers are unused when it returns.  The locks prefer writers, so a
 * steady stream of readers cannot starve a replace.  There are
 * CHAIN_LOCK_SLOTS of them, each thread reading through its own slot:
 * with one rwlock for everybody, every read and its unlock bounce the
 * lock's cache line between CPUs; two threads reading 4 KiB from the
 * page cache then ran at 0.90-0.93 of the same preads without the chain,
 * against 0.94-0.97 with the slots (bench/chain_bench.c, 2 vCPUs).
 * A replace takes all slots in order; a reader holds only one, so
 * nothing can deadlock.
 *
 * Invariants of a resolution (debug builds assert them when it is built,
 * and C1 on every read; util/check.h):
 *  C1  every source byte (leaves and fill) is SRC_ROOT, SRC_ZERO or a
 *      layer 1..n;
 *  C2  every layer is frozen (read-only) and has the chain's size and G;
 *  C3  leaves_alloc counts the allocated leaves, and no allocated leaf
 *      has one source for all its blocks (res_compact gave those back).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/chain.h"
#include "storage/overlay_int.h"
#include "util/check.h"
#include "util/log.h"
#include "util/splice.h"

#define CHAIN_LEAF_BLOCKS 4096u         /* one leaf: 4 KiB of sources */
#define CHAIN_LOCK_SLOTS 16u            /* rwlocks per chain (threads share by slot) */
#define CACHE_LINE 64u
#define SRC_ROOT 0u
#define SRC_ZERO 255u                   /* layers are 1..CHAIN_MAX_LAYERS */

_Static_assert(CHAIN_MAX_LAYERS < SRC_ZERO, "source bytes: layers 1..250, 255 zeros");

/* One resolution: what a chain reads from.  Immutable once built. */
struct chain_res {
	struct backend *root;           /* borrowed */
	struct ovl_layer **layers;      /* borrowed layers, own array; src k+1 = layers[k] */
	unsigned n;
	uint32_t bs;                    /* G (the layers'; OVL_DEFAULT_BLOCK without any) */
	uint64_t size, nblocks, nleaves;
	uint8_t **leaf;                 /* NULL: every block of the leaf has source fill[i] */
	uint8_t *fill;
	uint64_t leaves_alloc;
};

/* A lock on a cache line of its own. */
struct chain_slot {
	_Alignas(CACHE_LINE) pthread_rwlock_t lock;
};

struct chain {
	struct backend be;              /* first: a struct backend * is a struct chain * */
	struct chain_res *res;          /* read under any slot, swapped under all */
	struct chain_slot slot[CHAIN_LOCK_SLOTS];
};

/* This thread's lock slot (threads are spread over the slots in the
 * order they first read any chain). */
static unsigned my_slot(void)
{
	static unsigned next;
	static __thread unsigned mine;          /* slot + 1; 0: none yet */

	if (!mine)
		mine = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % CHAIN_LOCK_SLOTS + 1;
	return mine - 1;
}

/* Take this thread's slot shared; returns the current resolution. */
static const struct chain_res *res_enter(struct chain *c, unsigned *slot)
{
	*slot = my_slot();
	pthread_rwlock_rdlock(&c->slot[*slot].lock);
	return c->res;
}

static void res_leave(struct chain *c, unsigned slot)
{
	pthread_rwlock_unlock(&c->slot[slot].lock);
}

static struct chain *chain_of(struct backend *be)
{
	return (struct chain *)be;
}

static void res_free(struct chain_res *r)
{
	if (!r)
		return;
	for (uint64_t i = 0; r->leaf && i < r->nleaves; i++)
		free(r->leaf[i]);
	free(r->leaf);
	free(r->fill);
	free(r->layers);
	free(r);
}

/* Blocks of leaf li inside the disk (the last leaf may be short). */
static uint64_t leaf_inside(const struct chain_res *r, uint64_t li)
{
	uint64_t first = li * CHAIN_LEAF_BLOCKS;
	return r->nblocks - first < CHAIN_LEAF_BLOCKS ? r->nblocks - first : CHAIN_LEAF_BLOCKS;
}

/* Give blocks [b, b+n) the source src.  Returns 0 or -ENOMEM. */
static int res_set(struct chain_res *r, uint64_t b, uint64_t n, uint8_t src)
{
	while (n > 0) {
		uint64_t li = b / CHAIN_LEAF_BLOCKS;
		uint64_t i = b % CHAIN_LEAF_BLOCKS;
		uint64_t k = CHAIN_LEAF_BLOCKS - i < n ? CHAIN_LEAF_BLOCKS - i : n;
		if (i == 0 && k >= leaf_inside(r, li)) {
			/* The whole leaf: no array needed. */
			if (r->leaf[li]) {
				free(r->leaf[li]);
				r->leaf[li] = NULL;
				r->leaves_alloc--;
			}
			r->fill[li] = src;
		} else if (r->leaf[li] || r->fill[li] != src) {
			if (!r->leaf[li]) {
				uint8_t *l = malloc(CHAIN_LEAF_BLOCKS);
				if (!l)
					return -ENOMEM;
				memset(l, r->fill[li], CHAIN_LEAF_BLOCKS);
				r->leaf[li] = l;
				r->leaves_alloc++;
			}
			memset(r->leaf[li] + i, src, k);
		}
		b += k;
		n -= k;
	}
	return 0;
}

/* Leaves whose blocks ended up with one source (one layer wrote half,
 * another the rest) are given back. */
static void res_compact(struct chain_res *r)
{
	for (uint64_t li = 0; li < r->nleaves; li++) {
		uint8_t *l = r->leaf[li];
		if (!l)
			continue;
		uint64_t inside = leaf_inside(r, li), i = 1;
		while (i < inside && l[i] == l[0])
			i++;
		if (i < inside)
			continue;
		r->fill[li] = l[0];
		free(l);
		r->leaf[li] = NULL;
		r->leaves_alloc--;
	}
}

/* Whether src names something of r (C1). */
static bool src_valid(const struct chain_res *r, uint8_t src)
{
	return src == SRC_ROOT || src == SRC_ZERO || src <= r->n;
}

/*
 * Check C1-C3 on a resolution just built: NULL, or which one is broken.
 * Walks every allocated leaf once (4 KiB each), as building it did.
 */
static const char *res_check(const struct chain_res *r)
{
	uint64_t leaves = 0;

	for (unsigned k = 0; k < r->n; k++)
		if (!r->layers[k]->ov.read_only || r->layers[k]->ov.size != r->size ||
		    r->layers[k]->ov.bs != r->bs)
			return "C2: a layer is writable or does not fit the chain";
	for (uint64_t li = 0; li < r->nleaves; li++) {
		const uint8_t *l = r->leaf[li];
		if (!l) {
			if (!src_valid(r, r->fill[li]))
				return "C1: a leaf's fill names no source";
			continue;
		}
		leaves++;
		uint64_t inside = leaf_inside(r, li);
		bool uniform = true;
		for (uint64_t i = 0; i < inside; i++) {
			if (!src_valid(r, l[i]))
				return "C1: a block's source names nothing";
			uniform = uniform && l[i] == l[0];
		}
		if (uniform)
			return "C3: an allocated leaf has one source for all its blocks";
	}
	if (leaves != r->leaves_alloc)
		return "C3: leaves_alloc differs from the allocated leaves";
	return NULL;
}

/*
 * Check root + layers and resolve them into a new resolution.  Returns
 * 0 and *out, -EINVAL (no root, size 0, a NULL layer, a layer of another
 * size or G), -E2BIG (too many layers) or -ENOMEM.
 */
static int res_build(struct backend *root, struct ovl_layer *const *layers, unsigned n,
		     struct chain_res **out)
{
	struct chain_res *r;
	int rc = 0;

	*out = NULL;
	if (n > CHAIN_MAX_LAYERS)
		return -E2BIG;
	if (!root || root->size == 0 || (n > 0 && !layers))
		return -EINVAL;
	uint32_t bs = n > 0 && layers[0] ? ovl_layer_block_size(layers[0]) : OVL_DEFAULT_BLOCK;
	for (unsigned k = 0; k < n; k++) {
		if (!layers[k] || layers[k]->ov.size != root->size || layers[k]->ov.bs != bs) {
			log_err("chain: layer %u (%s) does not fit the chain (size %llu, G %u)", k,
				layers[k] ? layers[k]->ov.dir : "NULL", (unsigned long long)root->size, bs);
			return -EINVAL;
		}
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->root = root;
	r->n = n;
	r->bs = bs;
	r->size = root->size;
	r->nblocks = (r->size - 1) / bs + 1;
	r->nleaves = (r->nblocks - 1) / CHAIN_LEAF_BLOCKS + 1;
	if (r->nleaves > SIZE_MAX / sizeof(*r->leaf)) {
		rc = -ENOMEM;
		goto fail;
	}
	r->leaf = calloc(r->nleaves, sizeof(*r->leaf));
	r->fill = calloc(r->nleaves, 1);
	r->layers = calloc(n ? n : 1, sizeof(*r->layers));
	if (!r->leaf || !r->fill || !r->layers) {
		rc = -ENOMEM;
		goto fail;
	}
	for (unsigned k = 0; k < n; k++) {
		const struct ovl_map *m = &layers[k]->ov.map;
		r->layers[k] = layers[k];
		for (uint64_t b = 0; b < r->nblocks;) {
			enum ovl_state st;
			uint64_t run = ovl_map_run(m, b, r->nblocks - b, &st);
			if (st == OVL_PRESENT)
				rc = res_set(r, b, run, (uint8_t)(k + 1));
			else if (st == OVL_ZERO)
				rc = res_set(r, b, run, SRC_ZERO);
			if (rc < 0)
				goto fail;
			b += run;
		}
	}
	res_compact(r);
	PR_CHECK(res_check(r));
	*out = r;
	return 0;
fail:
	res_free(r);
	return rc;
}

/* Source of block b. */
static uint8_t res_src(const struct chain_res *r, uint64_t b)
{
	const uint8_t *l = r->leaf[b / CHAIN_LEAF_BLOCKS];
	return l ? l[b % CHAIN_LEAF_BLOCKS] : r->fill[b / CHAIN_LEAF_BLOCKS];
}

/* Length of the prefix of p[0..n) whose bytes all equal s. */
static uint64_t same_prefix(const uint8_t *p, uint64_t n, uint8_t s)
{
	const uint64_t pat = 0x0101010101010101ull * s;
	uint64_t i = 0;

	while (i + 8 <= n) {
		uint64_t w;
		memcpy(&w, p + i, sizeof(w));
		if (w != pat)
			break;
		i += 8;
	}
	while (i < n && p[i] == s)
		i++;
	return i;
}

/*
 * Length (1..max) of the run of blocks from b sharing b's source, which
 * is stored in *src.  max >= 1 and b + max <= nblocks.
 */
static uint64_t res_run(const struct chain_res *r, uint64_t b, uint64_t max, uint8_t *src)
{
	uint8_t s = res_src(r, b);
	uint64_t n = 0;

	*src = s;
	while (n < max) {
		uint64_t cur = b + n, li = cur / CHAIN_LEAF_BLOCKS;
		uint64_t i = cur % CHAIN_LEAF_BLOCKS;
		uint64_t lim = CHAIN_LEAF_BLOCKS - i < max - n ? CHAIN_LEAF_BLOCKS - i : max - n;
		const uint8_t *l = r->leaf[li];
		uint64_t k = l ? same_prefix(l + i, lim, s) : r->fill[li] == s ? lim : 0;
		n += k;
		if (k < lim)
			break;
	}
	return n;
}

/* The SCSI layer checks ranges; this keeps a bug there off the map. */
static bool bad_range(const struct backend *be, uint64_t off, uint64_t len)
{
	return off > be->size || len > be->size - off;
}

/* Bytes from off to the end of the run of blocks [b, b+run), cut at end. */
static uint64_t run_bytes(const struct chain_res *r, uint64_t b, uint64_t run, uint64_t off,
			  uint64_t end)
{
	uint64_t e = (b + run) * r->bs;
	return (e < end ? e : end) - off;
}

/* n bytes at off from source src of r, into buf or (buf NULL) the pipe. */
static int read_src(const struct chain_res *r, uint8_t src, uint8_t *buf, int pipe_wr, uint64_t off,
		    size_t n)
{
	struct backend *root = r->root;
	PR_ASSERT(src_valid(r, src));
	const struct overlay *l = src > SRC_ROOT && src != SRC_ZERO ? &r->layers[src - 1]->ov : NULL;

	if (buf) {
		if (src == SRC_ROOT)
			return root->ops->read(root, buf, off, n);
		if (src == SRC_ZERO) {
			memset(buf, 0, n);
			return 0;
		}
		return ovl_read_full(l->io, l->datafd, buf, n, off);
	}
	if (src == SRC_ROOT)
		return root->ops->splice_read ? root->ops->splice_read(root, pipe_wr, off, n) : -EOPNOTSUPP;
	if (src == SRC_ZERO)
		return splice_zeros(pipe_wr, n);
	return l->io->splice ? l->io->splice(l->io->ctx, l->datafd, pipe_wr, n, off) : -EOPNOTSUPP;
}

/* A read into buf or (buf NULL) the pipe: one call per run of blocks
 * with the same source. */
static int read_runs(struct backend *be, uint8_t *buf, int pipe_wr, uint64_t off, size_t len)
{
	struct chain *c = chain_of(be);
	uint64_t end = off + len;
	int rc = 0;

	if (bad_range(be, off, len))
		return -EINVAL;
	unsigned slot;
	const struct chain_res *r = res_enter(c, &slot);
	while (off < end && rc == 0) {
		uint64_t b = off / r->bs, last = (end - 1) / r->bs;
		uint8_t src;
		uint64_t run = res_run(r, b, last - b + 1, &src);
		size_t n = (size_t)run_bytes(r, b, run, off, end);
		rc = read_src(r, src, buf, pipe_wr, off, n);
		if (buf)
			buf += n;
		off += n;
	}
	res_leave(c, slot);
	return rc;
}

static int chain_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	return read_runs(be, buf, -1, off, len);
}

static int chain_splice_read(struct backend *be, int pipe_wr, uint64_t off, size_t len)
{
	return read_runs(be, NULL, pipe_wr, off, len);
}

static int chain_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	return -EROFS;
}

static int chain_unmap(struct backend *be, uint64_t off, uint64_t len)
{
	return -EROFS;
}

/* Nothing is ever written, so there is nothing to make durable. */
static int chain_flush(struct backend *be)
{
	return 0;
}

/*
 * backend block_status: a block from a layer is mapped, zeros are not,
 * a block from the root is what the root says (mapped when it cannot
 * tell).
 */
static int chain_block_status(struct backend *be, uint64_t off, uint64_t len, uint64_t *run,
			      bool *mapped)
{
	struct chain *c = chain_of(be);
	int rc = 0;

	if (len == 0 || bad_range(be, off, len))
		return -EINVAL;
	unsigned slot;
	const struct chain_res *r = res_enter(c, &slot);
	uint64_t b = off / r->bs, last = (off + len - 1) / r->bs;
	uint8_t src;
	uint64_t blocks = res_run(r, b, last - b + 1, &src);
	uint64_t n = run_bytes(r, b, blocks, off, off + len);
	*run = n;
	*mapped = src != SRC_ZERO;
	if (src == SRC_ROOT && r->root->ops->block_status)
		rc = r->root->ops->block_status(r->root, off, n, run, mapped);
	res_leave(c, slot);
	return rc;
}

/*
 * backend resident: bytes of [off, off+len) that a read would find in
 * memory - per run of blocks with one source, the root's resident, the
 * page cache of the layer's data file, or (zeros) the whole run.  A
 * few system calls per run.  -EOPNOTSUPP when a run comes from a root
 * that cannot tell; -EINVAL past the end.
 */
static int chain_resident(struct backend *be, uint64_t off, uint64_t len, uint64_t *bytes)
{
	struct chain *c = chain_of(be);
	uint64_t end = off + len, held = 0;
	int rc = 0;

	*bytes = 0;
	if (bad_range(be, off, len))
		return -EINVAL;
	unsigned slot;
	const struct chain_res *r = res_enter(c, &slot);
	while (off < end && rc == 0) {
		uint64_t b = off / r->bs, last = (end - 1) / r->bs, got = 0;
		uint8_t src;
		uint64_t run = res_run(r, b, last - b + 1, &src);
		uint64_t n = run_bytes(r, b, run, off, end);
		PR_ASSERT(src_valid(r, src));
		if (src == SRC_ZERO)
			got = n;
		else if (src != SRC_ROOT)
			rc = ovl_layer_resident(r->layers[src - 1], off, n, &got);
		else if (r->root->ops->resident)
			rc = r->root->ops->resident(r->root, off, n, &got);
		else
			rc = -EOPNOTSUPP;
		held += got;
		off += n;
	}
	res_leave(c, slot);
	if (rc == 0)
		*bytes = held;
	return rc;
}

/* Frees the chain's own memory only: root and layers are borrowed. */
static void chain_close(struct backend *be)
{
	struct chain *c = chain_of(be);

	res_free(c->res);
	for (unsigned i = 0; i < CHAIN_LOCK_SLOTS; i++)
		pthread_rwlock_destroy(&c->slot[i].lock);
	free(c);
}

static const struct backend_ops chain_ops = {
	.read = chain_read,
	.splice_read = chain_splice_read,
	.write = chain_write,
	.flush = chain_flush,
	.unmap = chain_unmap,
	.close = chain_close,
	.block_status = chain_block_status,
	.resident = chain_resident,
};

/* See chain.h. */
int chain_open(struct backend *root, struct ovl_layer *const *layers, unsigned n,
	       const char *name, struct backend **out)
{
	struct chain_res *r;
	pthread_rwlockattr_t attr;
	int rc;

	*out = NULL;
	rc = res_build(root, layers, n, &r);
	if (rc < 0)
		return rc;
	/* The slots' alignment is more than malloc promises. */
	struct chain *c = aligned_alloc(CACHE_LINE, sizeof(*c));
	if (!c) {
		res_free(r);
		return -ENOMEM;
	}
	memset(c, 0, sizeof(*c));
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (unsigned i = 0; i < CHAIN_LOCK_SLOTS && rc == 0; i++) {
		rc = -pthread_rwlock_init(&c->slot[i].lock, &attr);
		if (rc < 0)
			while (i-- > 0)
				pthread_rwlock_destroy(&c->slot[i].lock);
	}
	pthread_rwlockattr_destroy(&attr);
	if (rc < 0) {
		res_free(r);
		free(c);
		return rc;
	}
	c->res = r;
	c->be.ops = &chain_ops;
	c->be.size = root->size;
	c->be.read_only = true;
	snprintf(c->be.name, sizeof(c->be.name), "%s", name ? name : "chain");
	log_debug("chain %s: %u layers, G=%u, map %llu bytes", c->be.name, n, r->bs,
		  (unsigned long long)chain_map_bytes(&c->be));
	*out = &c->be;
	return 0;
}

/* See chain.h. */
int chain_replace(struct backend *chain, struct backend *root, struct ovl_layer *const *layers,
		  unsigned n)
{
	struct chain *c = chain_of(chain);
	struct chain_res *r, *old;
	int rc;

	if (!chain || (root && root->size != chain->size))
		return -EINVAL;
	rc = res_build(root, layers, n, &r);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < CHAIN_LOCK_SLOTS; i++)
		pthread_rwlock_wrlock(&c->slot[i].lock);
	old = c->res;
	c->res = r;
	for (unsigned i = 0; i < CHAIN_LOCK_SLOTS; i++)
		pthread_rwlock_unlock(&c->slot[i].lock);
	res_free(old);
	return 0;
}

/* See chain.h. */
uint32_t chain_block_size(const struct backend *chain)
{
	struct chain *c = chain_of((struct backend *)chain);   /* the lock is not the value */

	unsigned slot;
	const struct chain_res *r = res_enter(c, &slot);
	uint32_t bs = r->n > 0 ? r->bs : 0;
	res_leave(c, slot);
	return bs;
}

/* See chain.h. */
uint64_t chain_map_bytes(const struct backend *chain)
{
	struct chain *c = chain_of((struct backend *)chain);   /* the lock is not the value */

	unsigned slot;
	const struct chain_res *r = res_enter(c, &slot);
	uint64_t bytes = r->nleaves * (sizeof(*r->leaf) + sizeof(*r->fill)) +
			 r->leaves_alloc * CHAIN_LEAF_BLOCKS;
	res_leave(c, slot);
	return bytes;
}
