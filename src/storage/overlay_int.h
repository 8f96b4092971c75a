/*
 * overlay_int.h - internals shared by the overlay's files (not an API):
 *   overlay.c       public calls, read/write/unmap/flush paths, reset
 *   overlay_map.c   the in-memory block map (2-bit state per G-block)
 *   overlay_meta.c  on-disk info header, map checkpoint, metadata log
 *   overlay_io.c    the real struct ovl_io and full-length I/O helpers
 *   layer.c         a closed overlay opened read-only as a frozen layer
 * The on-disk format is described in docs/overlay-format.md.
 *
 * Invariants:
 *  I1  a block is PRESENT in durable metadata (map + log) only after the
 *      data that made it PRESENT was synced (fsync(data) precedes the log
 *      record or checkpoint naming it);
 *  I2  a state change is visible in the in-memory map only after the data
 *      operation behind it (pwrite, punch) completed;
 *  I3  generations are contiguous: map gen M, log base L <= M, log records
 *      L+1, L+2, ... ; records <= M are already inside the map;
 *  I4  the golden backend is only ever read.
 * plus the map's own M1-M4 (overlay_map.c).
 *
 * Debug builds (PRISTINE_DEBUG: make asan, make unit, the fuzzers; see
 * util/check.h) assert the in-memory side of these with PR_ASSERT, never
 * anything read from disk (that is input: corruption returns -EBADMSG):
 *  I1  ovl_flush clears data_synced when it takes its snapshot and sets it
 *      after fsync(data); ovl_meta_append and ovl_meta_checkpoint assert
 *      it before they write metadata;
 *  I2  every map update of a write or unmap happens after its data
 *      operation succeeded, with its block range held, and leaves the
 *      whole range in the new state (asserted right after the update);
 *  I3  after open, create, every append and every checkpoint: log_base <=
 *      gen, and the log holds records (log_end past its header) exactly
 *      when gen > log_base (a writable overlay; a frozen layer may keep a
 *      log older than its map);
 *  I4  overlay_open asserts the golden backend is read-only (write and
 *      unmap fail), and the overlay only calls its read paths;
 *  M1-M4 after every map update (cheap bounds), and the whole map walked
 *      (ovl_map_check) at open, at each checkpoint, at flushes of small
 *      maps and at close.
 */
#ifndef PRISTINE_OVERLAY_INT_H
#define PRISTINE_OVERLAY_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/backend.h"
#include "storage/cow.h"
#include "storage/overlay.h"

enum ovl_state { OVL_ABSENT = 0, OVL_PRESENT = 1, OVL_ZERO = 2 };

/* A leaf is 4 KiB of 2-bit states: 16384 blocks (64 MiB of disk at G=4K). */
#define OVL_LEAF_BYTES  4096u
#define OVL_LEAF_BLOCKS (OVL_LEAF_BYTES * 4u)

#define OVL_DEFAULT_CKPT (4u << 20)
#define OVL_BASE_ID_MAX  255u

/* One run of blocks sharing a state, as logged. */
struct ovl_run {
	uint64_t first;
	uint32_t count;
	uint8_t state;
};

/*
 * The block map.  leaf[i] is NULL (all ABSENT), the ZERO sentinel (all
 * ZERO) or a 4 KiB array of states, so RAM follows what was written, not
 * the disk size.  dirty[i] tracks changes since the last flush the same
 * way (NULL clean, an "all" sentinel, or a bitmap freed at each flush).
 * Not thread-safe: struct overlay's lock protects it.
 */
struct ovl_map {
	uint64_t nblocks;
	uint32_t nleaves;
	uint8_t **leaf;
	uint64_t **dirty;
	uint32_t *dirty_list;   /* leaves with dirty != NULL, unordered */
	uint32_t ndirty, dirty_cap;
	uint64_t present;       /* blocks in state PRESENT */
	uint64_t leaves_alloc;  /* allocated state leaves (RAM accounting) */
	uint64_t dirty_alloc;   /* allocated dirty bitmaps */
};

int ovl_map_init(struct ovl_map *m, uint64_t nblocks);
void ovl_map_free(struct ovl_map *m);
enum ovl_state ovl_map_get(const struct ovl_map *m, uint64_t b);
uint64_t ovl_map_run(const struct ovl_map *m, uint64_t b, uint64_t max, enum ovl_state *st);
uint64_t ovl_map_count(const struct ovl_map *m, uint64_t b, uint64_t n, enum ovl_state st);
int ovl_map_set(struct ovl_map *m, uint64_t b, uint64_t n, enum ovl_state st, bool dirty);
int ovl_map_take_dirty(struct ovl_map *m, struct ovl_run **runs, size_t *nruns);
/* Mark the blocks of runs dirty again, their states unchanged: a flush
 * that could not log the runs it took hands them back, so the next flush
 * logs the blocks' states as they are then.  0, -EINVAL or -ENOMEM. */
int ovl_map_redirty(struct ovl_map *m, const struct ovl_run *runs, size_t nruns);
int ovl_map_serialize(const struct ovl_map *m, uint8_t **body, size_t *len, uint32_t *nentries);
int ovl_map_load(struct ovl_map *m, const uint8_t *body, size_t len, uint32_t nentries);
uint64_t ovl_map_mem_bytes(const struct ovl_map *m);
/* Check the map's invariants M1-M4 (overlay_map.c) by walking all of it:
 * NULL when they hold, else a static description of the first one broken.
 * Costs a pass over every allocated leaf (4 KiB each) and the top arrays:
 * run at open, checkpoint and close (PR_CHECK), not after every write. */
const char *ovl_map_check(const struct ovl_map *m);

/* A write or unmap in flight holds its block range (see overlay.c). */
struct ovl_range {
	uint64_t b0, b1;
	struct ovl_range *next;
};

struct overlay {
	struct backend be;              /* first: backend * is overlay * */
	struct cow cow;                 /* the lab's view (overlay_cow) */
	struct backend *golden;         /* borrowed */
	const struct ovl_io *io;        /* never NULL */
	char *dir;
	int dirfd, datafd, logfd;
	uint32_t bs;                    /* G */
	uint64_t size, nblocks;
	char base_id[OVL_BASE_ID_MAX + 1];
	uint64_t created;
	uint64_t ckpt_bytes;

	pthread_mutex_t lock;           /* map, ranges, space counters */
	pthread_cond_t range_cv;
	struct ovl_range *ranges;
	struct ovl_map map;
	uint64_t used;                  /* bytes allocated in data */
	uint64_t quota, floor;
	bool quota_warned;
	uint64_t fs_avail;              /* cached free space on the store */
	uint64_t fs_stamp_ns;
	uint64_t fs_alloc_since;        /* bytes allocated since fs_avail was read */

	pthread_mutex_t flush_lock;     /* one flush/checkpoint at a time */
	uint64_t gen;                   /* last durable generation */
	uint64_t log_base;              /* generation the log's header follows (I3) */
	uint64_t log_end;               /* append offset in log */
	bool data_synced;               /* data synced since the flush's snapshot (I1) */
	int error;                      /* sticky, atomic; 0 or -errno */
	const char *error_what;         /* the step that failed (static text) */
	uint64_t ckpt_defer;            /* after a checkpoint found no space: next try at this log_end */
	struct io_ratelimit space_rl;   /* "no space to flush" warnings */
	/* Frozen layer (layer.c): ovl_meta_open opens data and log O_RDONLY,
	 * never creates, and changes nothing (a torn log tail is ignored
	 * instead of cut off, an old log is not replaced). */
	bool read_only;
};

/*
 * A frozen layer: a closed overlay loaded by ovl_meta_open with
 * read_only set.  Only dir, io, bs, size, nblocks, base_id, map and
 * datafd are used (log and directory are closed after loading; no lock,
 * no golden).  Nothing changes after ovl_layer_open, so any number of
 * threads may read map and datafd without a lock.
 */
struct ovl_layer {
	struct overlay ov;
};

/* Bytes of [off, off+len) of the layer's data file (identity-mapped: the
 * disk's offsets) in the page cache now, into *bytes (util/pagecache.h:
 * an estimate).  0, -EOPNOTSUPP (not the real ovl_io), -errno.  Any
 * thread (layer.c). */
int ovl_layer_resident(const struct ovl_layer *l, uint64_t off, uint64_t len, uint64_t *bytes);

/* Full-length I/O and small helpers over ov->io (overlay_io.c). */
int ovl_read_full(const struct ovl_io *io, int fd, void *buf, size_t len, uint64_t off);
int ovl_write_full(const struct ovl_io *io, int fd, const void *buf, size_t len, uint64_t off);

/* Metadata (overlay_meta.c).  ovl_meta_open honours ov->read_only. */
int ovl_meta_create(struct overlay *ov);
int ovl_meta_open(struct overlay *ov, const char *base_id, bool *created);
int ovl_meta_append(struct overlay *ov, const struct ovl_run *runs, size_t nruns, bool *unchanged);
int ovl_meta_checkpoint(struct overlay *ov, const uint8_t *body, size_t len, uint32_t nentries,
			bool *unchanged);

#define OVL_LOG_HDR 64u

/* Little-endian field helpers: disk fields are never read through structs. */
static inline void ovl_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void ovl_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ovl_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t ovl_get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t ovl_get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static inline uint64_t ovl_get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#endif
