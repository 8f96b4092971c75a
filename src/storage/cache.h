/*
 * cache.h - one shared read path for immutable disks: a bounded
 * in-memory cache of fixed-size chunks that many read-only backends
 * (the versions a gateway serves from Ceph) read through.
 *
 * Why: a version on RBD has no page cache under it (librbd's cache is
 * per image handle and does not keep reads), so N PCs booting the same
 * version would read N copies of its boot set from the OSDs.  A version
 * never changes (it is a snapshot), so its chunks can be kept and shared
 * without any invalidation.
 *
 * Model: one struct rcache per daemon holds the memory (a byte budget)
 * and the counters.  backend_cache_wrap() puts a struct backend in front
 * of one immutable backend; every wrapper gets its own key, so the cache
 * is keyed by (wrapper, chunk number) and one budget serves every
 * version.  A chunk is RCACHE_CHUNK bytes of the inner disk at a multiple
 * of RCACHE_CHUNK (the last one is short when the size is not a multiple).
 *
 * Misses are single-flight: when many threads miss the same chunk at
 * once, one of them reads it from the inner backend and the others wait
 * for that read; a thread that misses a run of adjacent chunks reads the
 * run with one inner call.  An inner error is returned to the reader and
 * to every waiter and is not kept: the next read tries the inner backend
 * again.
 *
 * Memory: chunks held by the cache never exceed the budget, except for
 * chunks being read or copied at that moment (at most the bytes of the
 * reads in flight), which are counted and evicted as soon as they are
 * released.  Eviction is least-recently-used per shard; the cache is
 * split into RCACHE_SHARDS shards, each with its own lock and a share of
 * the budget, so readers on different chunks rarely contend.
 *
 * Threading: reads through any wrapper may come from any number of
 * threads.  Wrapping and closing a wrapper are not concurrent with reads
 * through that wrapper; rcache_free only after every wrapper is closed.
 */
#ifndef PRISTINE_CACHE_H
#define PRISTINE_CACHE_H

#include <stdint.h>

#include "storage/backend.h"

/* Default chunk: the unit of caching and of inner reads on a miss
 * (64 KiB: see BENCHMARKS.md, "Shared read cache"). */
#define RCACHE_CHUNK (64u << 10)
/* Lock shards (a power of two). */
#define RCACHE_SHARDS 16u
/* Smallest budget: one chunk per shard. */
#define RCACHE_MIN_BYTES ((uint64_t)RCACHE_SHARDS * RCACHE_CHUNK)

struct rcache;

/* What the cache has done since rcache_new (counted atomically; a
 * snapshot, the fields need not be consistent with each other). */
struct rcache_stats {
	uint64_t capacity;      /* the budget, bytes */
	uint64_t chunk;         /* chunk size, bytes */
	uint64_t bytes;         /* bytes of chunks held now */
	uint64_t chunks;        /* chunks held now */
	uint64_t hits;          /* chunks found in the cache */
	uint64_t waits;         /* chunks a reader waited for (another's miss) */
	uint64_t misses;        /* chunks read from an inner backend */
	uint64_t inner_reads;   /* calls to an inner backend's read */
	uint64_t inner_bytes;   /* bytes those calls asked for */
	uint64_t errors;        /* inner reads that failed */
	uint64_t evictions;     /* chunks dropped to stay in budget */
};

/*
 * A cache of at most bytes (rounded down to whole chunks; at least
 * RCACHE_MIN_BYTES) of chunk-byte chunks (a power of two from 4 KiB to
 * 4 MiB; 0 = RCACHE_CHUNK).  No memory is taken for data until reads
 * come.  0 and *out (release with rcache_free), -EINVAL for a bad chunk
 * or a budget under RCACHE_MIN_BYTES of that chunk, -ENOMEM.
 */
int rcache_new(uint64_t bytes, uint32_t chunk, struct rcache **out);
/* Free the cache and every chunk it holds.  Every wrapper must be
 * closed first.  NULL is a no-op. */
void rcache_free(struct rcache *rc);
/* The counters now (see struct rcache_stats). */
void rcache_get_stats(struct rcache *rc, struct rcache_stats *out);

/*
 * A read-only backend reading inner (which must be read-only and must
 * never change while wrapped: -EINVAL otherwise) through rc.  On success
 * *out owns inner: backend_close(*out) closes inner, drops the wrapper's
 * chunks from rc and frees the wrapper; rc is borrowed and must outlive
 * it.  On failure inner is left open and still the caller's.  The
 * wrapper has inner's size and name; write and unmap return -EROFS,
 * flush 0, block_status is inner's, resident counts the chunks held
 * now (not those being read), and there is no splice_read (the data is
 * in memory, not in a file).  0 or -errno (-ENOMEM).
 */
int backend_cache_wrap(struct rcache *rc, struct backend *inner, struct backend **out);

#endif
