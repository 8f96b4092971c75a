/*
 * cache.c - the shared chunk cache of immutable disks (cache.h).
 *
 * Invariants (each shard, under its lock):
 *   - every chunk in the shard's hash is LOADING or READY; a FAILED chunk
 *     has left the hash and lives only until its last reference goes;
 *   - a READY chunk is on the shard's LRU list, a LOADING one is not; its
 *     data never changes once READY, so a holder of a reference copies
 *     from it without the lock;
 *   - a chunk with refs > 0 is never freed or evicted;
 *   - bytes is the sum of len of the chunks in the hash.
 *
 * A chunk's life: a reader that finds no chunk inserts it LOADING with
 * one reference (it owns the load), reads it from the inner backend
 * without the lock, then publishes it READY (on the LRU list) or FAILED
 * (out of the hash, error kept for the waiters) and wakes the shard's
 * waiters.  Readers that find it LOADING take a reference and wait on
 * the shard's condition.  Whoever drops the last reference of a FAILED
 * chunk frees it; READY chunks are freed by eviction or at close.
 *
 * Deadlock freedom: a reader first claims every chunk of its window
 * (taking references, inserting what is missing), then loads every
 * chunk it owns, and only then waits for chunks others load.  A load
 * never waits for anything, so every wait ends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "storage/cache.h"
#include "util/check.h"

/* Chunks one reader claims at a time (a longer read is done in windows). */
#define WINDOW 32u

enum chunk_state { CH_LOADING, CH_READY, CH_FAILED };

struct chunk {
	uint64_t owner, idx;            /* the key: wrapper and chunk number */
	struct chunk *hnext;            /* hash chain */
	struct chunk *lprev, *lnext;    /* LRU list (READY only) */
	uint8_t *data;
	uint32_t len;
	enum chunk_state state;
	int err;                        /* FAILED: the inner read's error */
	unsigned refs;
};

struct shard {
	pthread_mutex_t lock;
	pthread_cond_t cond;            /* a LOADING chunk of this shard finished */
	struct chunk **buckets;
	size_t mask;                    /* buckets - 1 */
	struct chunk lru;               /* sentinel: lnext newest, lprev oldest */
	uint64_t bytes, cap, nchunks;
} __attribute__((aligned(64)));

struct rcache {
	uint32_t chunk;
	unsigned shift;                 /* log2(chunk) */
	uint64_t capacity;
	uint64_t next_owner;            /* keys of wrappers: never reused */
	uint64_t hits, waits, misses, inner_reads, inner_bytes, errors, evictions;
	struct shard shards[RCACHE_SHARDS];
};

struct cache_backend {
	struct backend be;              /* first: a struct backend * is a cache_backend * */
	struct rcache *rc;
	struct backend *inner;
	uint64_t owner;
};

/* One chunk of a reader's window. */
struct slot {
	struct chunk *c;
	struct shard *s;
	bool own;                       /* this reader loads it */
	bool copied;                    /* its part of the read is in place already */
};

/* The cache backend around be (be is its first member). */
static struct cache_backend *cb_of(struct backend *be)
{
	return (struct cache_backend *)be;
}

/* Add n to a counter (relaxed: counters order nothing). */
static void count(uint64_t *ctr, uint64_t n)
{
	__atomic_add_fetch(ctr, n, __ATOMIC_RELAXED);
}

/* A well-mixed hash of a key: shard from its low bits, bucket above. */
static uint64_t key_hash(uint64_t owner, uint64_t idx)
{
	uint64_t x = owner * 0x9E3779B97F4A7C15ull ^ idx;

	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 31;
	return x;
}

/* The shard holding key (owner, idx). */
static struct shard *shard_of(struct rcache *rc, uint64_t owner, uint64_t idx)
{
	return &rc->shards[key_hash(owner, idx) & (RCACHE_SHARDS - 1)];
}

/* The hash bucket of key in s.  Lock held. */
static struct chunk **bucket_of(struct shard *s, uint64_t owner, uint64_t idx)
{
	return &s->buckets[(key_hash(owner, idx) >> 8) & s->mask];
}

/* The chunk with key in s, or NULL.  Lock held. */
static struct chunk *lookup(struct shard *s, uint64_t owner, uint64_t idx)
{
	for (struct chunk *c = *bucket_of(s, owner, idx); c; c = c->hnext)
		if (c->owner == owner && c->idx == idx)
			return c;
	return NULL;
}

/* Take c out of the hash (and off the LRU list when READY); its bytes
 * leave the shard's count.  Lock held. */
static void unhash(struct shard *s, struct chunk *c)
{
	struct chunk **pp = bucket_of(s, c->owner, c->idx);

	while (*pp != c)
		pp = &(*pp)->hnext;
	*pp = c->hnext;
	if (c->state == CH_READY) {
		c->lprev->lnext = c->lnext;
		c->lnext->lprev = c->lprev;
	}
	s->bytes -= c->len;
	s->nchunks--;
}

/* Put c at the newest end of the LRU list (c not on it).  Lock held. */
static void lru_push(struct shard *s, struct chunk *c)
{
	c->lprev = &s->lru;
	c->lnext = s->lru.lnext;
	s->lru.lnext->lprev = c;
	s->lru.lnext = c;
}

/* Mark a READY chunk just used.  Lock held. */
static void lru_touch(struct shard *s, struct chunk *c)
{
	c->lprev->lnext = c->lnext;
	c->lnext->lprev = c->lprev;
	lru_push(s, c);
}

static void chunk_free(struct chunk *c)
{
	free(c->data);
	free(c);
}

/* Drop the oldest unreferenced READY chunks while s is over its share
 * of the budget.  Lock held. */
static void evict(struct rcache *rc, struct shard *s)
{
	struct chunk *c = s->lru.lprev;

	while (s->bytes > s->cap && c != &s->lru) {
		struct chunk *prev = c->lprev;
		if (c->refs == 0) {
			unhash(s, c);
			chunk_free(c);
			count(&rc->evictions, 1);
		}
		c = prev;
	}
}

/* Bytes of chunk idx of a disk of size bytes. */
static uint32_t chunk_len(const struct rcache *rc, uint64_t size, uint64_t idx)
{
	uint64_t start = idx << rc->shift, left = size - start;

	return left < rc->chunk ? (uint32_t)left : rc->chunk;
}

/*
 * Claim chunk idx of cb for a read: take a reference to the chunk found
 * (a hit or a load in flight), or insert it LOADING for this reader to
 * load.  0, or -ENOMEM (nothing claimed).
 */
static int claim(struct cache_backend *cb, uint64_t idx, struct slot *sl)
{
	struct rcache *rc = cb->rc;
	struct shard *s = shard_of(rc, cb->owner, idx);
	struct chunk *c, *fresh = calloc(1, sizeof(*fresh));

	sl->s = s;
	sl->own = false;
	sl->copied = false;
	pthread_mutex_lock(&s->lock);
	if ((c = lookup(s, cb->owner, idx))) {
		c->refs++;
		if (c->state == CH_READY) {
			lru_touch(s, c);
			count(&rc->hits, 1);
		} else {
			count(&rc->waits, 1);
		}
	} else if ((c = fresh)) {
		fresh = NULL;
		c->owner = cb->owner;
		c->idx = idx;
		c->len = chunk_len(rc, cb->be.size, idx);
		c->state = CH_LOADING;
		c->refs = 1;
		struct chunk **b = bucket_of(s, c->owner, idx);
		c->hnext = *b;
		*b = c;
		s->bytes += c->len;
		s->nchunks++;
		sl->own = true;
		count(&rc->misses, 1);
	}
	pthread_mutex_unlock(&s->lock);
	free(fresh);
	sl->c = c;
	return c ? 0 : -ENOMEM;
}

/* End this reader's load of sl's chunk: READY when err is 0, else
 * FAILED (out of the hash, err kept); waiters are woken.  The reader
 * keeps its reference. */
static void publish(struct slot *sl, int err)
{
	struct shard *s = sl->s;
	struct chunk *c = sl->c;

	pthread_mutex_lock(&s->lock);
	if (err) {
		unhash(s, c);
		c->state = CH_FAILED;
		c->err = err;
	} else {
		c->state = CH_READY;
		lru_push(s, c);
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Drop a reader's reference to sl's chunk: a FAILED chunk is freed by
 * its last holder; a shard over budget evicts. */
static void release(struct rcache *rc, struct slot *sl)
{
	struct shard *s = sl->s;
	struct chunk *c = sl->c;
	bool gone;

	pthread_mutex_lock(&s->lock);
	gone = --c->refs == 0 && c->state == CH_FAILED;
	if (s->bytes > s->cap)
		evict(rc, s);
	pthread_mutex_unlock(&s->lock);
	if (gone)
		chunk_free(c);
}

/*
 * Load the run of owned chunks sl[0..n) (adjacent chunk numbers) with
 * one inner read, then publish them all, READY or FAILED with the read's
 * error.  dst: where the run's bytes go in the reader's buffer when the
 * read covers the whole run (read there, then copied into the chunks,
 * which are marked copied), else NULL (a run of several chunks is read
 * into a scratch buffer).  0 or -errno.
 */
static int load_run(struct cache_backend *cb, struct slot *sl, unsigned n, uint8_t *dst)
{
	struct rcache *rc = cb->rc;
	uint64_t off = sl[0].c->idx << rc->shift, total = 0;
	uint8_t *tmp = NULL, *into;
	int rc_ = 0;

	for (unsigned i = 0; i < n; i++) {
		total += sl[i].c->len;
		if (!(sl[i].c->data = malloc(sl[i].c->len)))
			rc_ = -ENOMEM;
	}
	if (!rc_ && !dst && n > 1 && !(tmp = malloc(total)))
		rc_ = -ENOMEM;
	into = dst ? dst : tmp ? tmp : sl[0].c->data;
	if (!rc_) {
		count(&rc->inner_reads, 1);
		count(&rc->inner_bytes, total);
		rc_ = cb->inner->ops->read(cb->inner, into, off, total);
		if (rc_)
			count(&rc->errors, 1);
	}
	for (unsigned i = 0, at = 0; i < n; at += sl[i].c->len, i++) {
		if (!rc_ && into != sl[0].c->data)
			memcpy(sl[i].c->data, into + at, sl[i].c->len);
		sl[i].copied = !rc_ && dst;
		publish(&sl[i], rc_);
	}
	free(tmp);
	return rc_;
}

/* Copy the part of chunk c that [off, off+len) covers into buf (which
 * holds that range). */
static void copy_out(struct rcache *rc, const struct chunk *c, uint8_t *buf, uint64_t off,
		     size_t len)
{
	uint64_t cs = c->idx << rc->shift, from = cs > off ? cs : off;
	uint64_t to = cs + c->len < off + len ? cs + c->len : off + len;

	memcpy(buf + (from - off), c->data + (from - cs), (size_t)(to - from));
}

/*
 * Read [off, off+len), which lies within chunks first..first+n-1
 * (n <= WINDOW), into buf: claim, load what this reader owns, wait for
 * the rest, copy, release.  Every chunk claimed is published and
 * released whatever fails.  0 or -errno (the first error met).
 */
static int read_window(struct cache_backend *cb, uint8_t *buf, uint64_t off, size_t len,
		       uint64_t first, unsigned n)
{
	struct rcache *rc = cb->rc;
	struct slot sl[WINDOW];
	unsigned claimed = 0;
	int err = 0;

	for (; claimed < n; claimed++)
		if ((err = claim(cb, first + claimed, &sl[claimed])))
			break;
	/* Load owned runs; after an error the rest fail with it unread. */
	for (unsigned i = 0; i < claimed;) {
		unsigned j = i;
		if (!sl[i].own) {
			i++;
			continue;
		}
		while (j < claimed && sl[j].own)
			j++;
		if (err) {
			for (unsigned k = i; k < j; k++)
				publish(&sl[k], err);
		} else {
			uint64_t from = sl[i].c->idx << rc->shift;
			uint64_t to = (sl[j - 1].c->idx << rc->shift) + sl[j - 1].c->len;
			bool inside = from >= off && to <= off + len;
			err = load_run(cb, &sl[i], j - i, inside ? buf + (from - off) : NULL);
		}
		i = j;
	}
	for (unsigned i = 0; i < claimed; i++) {
		struct chunk *c = sl[i].c;
		if (!sl[i].own) {
			pthread_mutex_lock(&sl[i].s->lock);
			while (c->state == CH_LOADING)
				pthread_cond_wait(&sl[i].s->cond, &sl[i].s->lock);
			pthread_mutex_unlock(&sl[i].s->lock);
		}
		/* READY or FAILED is final: read without the lock. */
		if (c->state == CH_FAILED) {
			if (!err)
				err = c->err;
		} else if (!err && !sl[i].copied) {
			copy_out(rc, c, buf, off, len);
		}
		release(rc, &sl[i]);
	}
	return err;
}

/* Read through the cache, a window of chunks at a time. */
static int cache_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	struct cache_backend *cb = cb_of(be);
	unsigned shift = cb->rc->shift;
	uint8_t *p = buf;

	if (off > be->size || len > be->size - off)
		return -EINVAL;
	while (len > 0) {
		uint64_t first = off >> shift, wend = (first + WINDOW) << shift;
		size_t n = off + len < wend ? len : (size_t)(wend - off);
		uint64_t last = (off + n - 1) >> shift;
		int rc = read_window(cb, p, off, n, first, (unsigned)(last - first + 1));
		if (rc)
			return rc;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int cache_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	return -EROFS;
}

static int cache_flush(struct backend *be)
{
	return 0;
}

static int cache_unmap(struct backend *be, uint64_t off, uint64_t len)
{
	return -EROFS;
}

/* The inner disk's allocation state (it never changes). */
static int cache_block_status(struct backend *be, uint64_t off, uint64_t len, uint64_t *run,
			      bool *mapped)
{
	struct backend *in = cb_of(be)->inner;

	if (!in->ops->block_status) {
		*run = len;
		*mapped = true;
		return 0;
	}
	return in->ops->block_status(in, off, len, run, mapped);
}

/*
 * backend resident: bytes of [off, off+len) in chunks held READY now -
 * a chunk being read does not count yet.  Looks each chunk up under its
 * shard's lock without touching the LRU order (asking is not using).
 */
static int cache_resident(struct backend *be, uint64_t off, uint64_t len, uint64_t *bytes)
{
	struct cache_backend *cb = cb_of(be);
	struct rcache *rc = cb->rc;
	uint64_t end = off + len, held = 0;

	*bytes = 0;
	if (off > be->size || len > be->size - off)
		return -EINVAL;
	if (len == 0)
		return 0;
	for (uint64_t idx = off >> rc->shift, last = (end - 1) >> rc->shift; idx <= last; idx++) {
		struct shard *s = shard_of(rc, cb->owner, idx);
		struct chunk *c;
		bool ready;
		pthread_mutex_lock(&s->lock);
		ready = (c = lookup(s, cb->owner, idx)) && c->state == CH_READY;
		pthread_mutex_unlock(&s->lock);
		if (!ready)
			continue;
		uint64_t cs = idx << rc->shift, ce = cs + chunk_len(rc, be->size, idx);
		held += (ce < end ? ce : end) - (cs > off ? cs : off);
	}
	*bytes = held;
	return 0;
}

/* Drop the wrapper's chunks (none is referenced: no read runs through
 * it), close inner, free the wrapper. */
static void cache_close(struct backend *be)
{
	struct cache_backend *cb = cb_of(be);
	struct rcache *rc = cb->rc;

	for (unsigned i = 0; i < RCACHE_SHARDS; i++) {
		struct shard *s = &rc->shards[i];
		pthread_mutex_lock(&s->lock);
		for (size_t b = 0; b <= s->mask; b++) {
			struct chunk **pp = &s->buckets[b];
			while (*pp) {
				struct chunk *c = *pp;
				if (c->owner != cb->owner) {
					pp = &c->hnext;
					continue;
				}
				PR_ASSERT(c->refs == 0 && c->state == CH_READY);
				unhash(s, c);   /* unlinks *pp */
				chunk_free(c);
			}
		}
		pthread_mutex_unlock(&s->lock);
	}
	backend_close(cb->inner);
	free(cb);
}

static const struct backend_ops cache_ops = {
	.read = cache_read,
	.write = cache_write,
	.flush = cache_flush,
	.unmap = cache_unmap,
	.close = cache_close,
	.block_status = cache_block_status,
	.resident = cache_resident,
};

/* See cache.h. */
int backend_cache_wrap(struct rcache *rc, struct backend *inner, struct backend **out)
{
	struct cache_backend *cb;

	*out = NULL;
	if (!inner->read_only)
		return -EINVAL;
	if (!(cb = calloc(1, sizeof(*cb))))
		return -ENOMEM;
	cb->rc = rc;
	cb->inner = inner;
	cb->owner = __atomic_add_fetch(&rc->next_owner, 1, __ATOMIC_RELAXED);
	cb->be.ops = &cache_ops;
	cb->be.size = inner->size;
	cb->be.read_only = true;
	memcpy(cb->be.name, inner->name, sizeof(cb->be.name));
	*out = &cb->be;
	return 0;
}

/* See cache.h. */
int rcache_new(uint64_t bytes, uint32_t chunk, struct rcache **out)
{
	struct rcache *rc;
	uint64_t per;
	size_t nb = 16;

	*out = NULL;
	if (chunk == 0)
		chunk = RCACHE_CHUNK;
	if (chunk < 4096 || chunk > (4u << 20) || (chunk & (chunk - 1)) ||
	    bytes < (uint64_t)RCACHE_SHARDS * chunk)
		return -EINVAL;
	if (!(rc = calloc(1, sizeof(*rc))))
		return -ENOMEM;
	rc->chunk = chunk;
	rc->shift = (unsigned)__builtin_ctz(chunk);
	per = bytes / chunk / RCACHE_SHARDS;     /* chunks per shard */
	rc->capacity = per * chunk * RCACHE_SHARDS;
	/* About two buckets per chunk a shard may hold. */
	while (nb < 2 * per && nb < ((size_t)1 << 24))
		nb <<= 1;
	for (unsigned i = 0; i < RCACHE_SHARDS; i++) {
		struct shard *s = &rc->shards[i];
		pthread_mutex_init(&s->lock, NULL);
		pthread_cond_init(&s->cond, NULL);
		s->lru.lnext = s->lru.lprev = &s->lru;
		s->cap = per * chunk;
		s->mask = nb - 1;
		if (!(s->buckets = calloc(nb, sizeof(*s->buckets)))) {
			rcache_free(rc);
			return -ENOMEM;
		}
	}
	*out = rc;
	return 0;
}

/* See cache.h. */
void rcache_free(struct rcache *rc)
{
	if (!rc)
		return;
	for (unsigned i = 0; i < RCACHE_SHARDS; i++) {
		struct shard *s = &rc->shards[i];
		if (s->buckets) {
			for (size_t b = 0; b <= s->mask; b++) {
				struct chunk *c = s->buckets[b], *next;
				for (; c; c = next) {
					next = c->hnext;
					chunk_free(c);
				}
			}
			free(s->buckets);
		}
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
	}
	free(rc);
}

/* See cache.h. */
void rcache_get_stats(struct rcache *rc, struct rcache_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->capacity = rc->capacity;
	out->chunk = rc->chunk;
	for (unsigned i = 0; i < RCACHE_SHARDS; i++) {
		struct shard *s = &rc->shards[i];
		pthread_mutex_lock(&s->lock);
		out->bytes += s->bytes;
		out->chunks += s->nchunks;
		pthread_mutex_unlock(&s->lock);
	}
	out->hits = __atomic_load_n(&rc->hits, __ATOMIC_RELAXED);
	out->waits = __atomic_load_n(&rc->waits, __ATOMIC_RELAXED);
	out->misses = __atomic_load_n(&rc->misses, __ATOMIC_RELAXED);
	out->inner_reads = __atomic_load_n(&rc->inner_reads, __ATOMIC_RELAXED);
	out->inner_bytes = __atomic_load_n(&rc->inner_bytes, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&rc->errors, __ATOMIC_RELAXED);
	out->evictions = __atomic_load_n(&rc->evictions, __ATOMIC_RELAXED);
}
