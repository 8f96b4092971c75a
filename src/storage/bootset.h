/*
 * bootset.h - a version's BOOT SET: the parts of its disk PCs read while
 * they boot, in the order they first read them, learned from their boots
 * and kept with the version (issue 18; docs/bootset-format.md).
 *
 * Unit: a CHUNK of BOOTSET_CHUNK bytes at a multiple of BOOTSET_CHUNK (the
 * last one of a disk may be short).  A boot set is a list of chunks, each
 * with when boots first read it (ms after the boot began, the mean over
 * the boots that read it) and how many boots read it, kept sorted by
 * (at_ms, chunk): the order a prefetch reads them in.
 *
 * Learning: one boot's reads (bootrec.h) are merged in with bootset_merge.
 * A set INHERITED from the parent version (a new version with no boot of
 * its own yet: the same disk addresses, read through the new layer) is
 * replaced whole by the first boot of its own.  Bounded: at most
 * max_chunks entries; when a merge goes over, the entries read by the
 * fewest boots go first (the latest of those first).
 *
 * File (bootset_encode/bootset_decode; docs/bootset-format.md has the
 * layout): a header with its own CRC32C, then the entries in blocks of
 * BOOTSET_BLOCK_ENTRIES, each block followed by the CRC32C of its bytes.
 * The file is replaced atomically (tmp, fsync, rename) by its keeper, so
 * a crash leaves the old or the new; if a torn or corrupt file is met
 * anyway, decode DROPS it (header unreadable: -EBADMSG) or CUTS it (the
 * entries of the whole blocks before the first bad or short block are
 * kept, in order; *cut says how many were lost) - it never returns an
 * entry that was not written.
 *
 * Threading: a struct bootset is plain data; its owner serialises access.
 */
#ifndef PRISTINE_BOOTSET_H
#define PRISTINE_BOOTSET_H

#include <stddef.h>
#include <stdint.h>

#define BOOTSET_CHUNK (64u << 10)
/* Default and hard bound of max_chunks (2 GiB and 64 GiB of disk). */
#define BOOTSET_MAX_CHUNKS_DEFAULT 32768u
#define BOOTSET_MAX_CHUNKS_LIMIT (1u << 20)
/* Entries per CRC-protected block of the file. */
#define BOOTSET_BLOCK_ENTRIES 256u
/* The largest a file can be (header + every block at the hard bound). */
#define BOOTSET_FILE_MAX ((size_t)64 + (size_t)BOOTSET_MAX_CHUNKS_LIMIT * 12u + \
			  (size_t)(BOOTSET_MAX_CHUNKS_LIMIT / BOOTSET_BLOCK_ENTRIES) * 4u)

struct bootset_entry {
	uint32_t chunk;               /* byte offset / BOOTSET_CHUNK */
	uint32_t at_ms;               /* first read, ms after the boot began (mean) */
	uint32_t boots;               /* boots that read it (>= 1) */
};

/* One chunk as one boot first read it (bootrec.h hands these out). */
struct bootset_hit {
	uint32_t chunk;
	uint32_t at_ms;
};

struct bootset {
	uint64_t disk_size;           /* bytes of the version's disk */
	uint32_t boots;               /* boots learned from (0 while inherited) */
	uint32_t inherited_from;      /* the version it came from, 0 = its own */
	uint32_t n, cap;              /* entries, allocated */
	struct bootset_entry *e;      /* sorted by (at_ms, chunk), chunks unique */
};

/* An empty boot set of a disk of disk_size bytes (nothing allocated). */
void bootset_init(struct bootset *bs, uint64_t disk_size);
/* Free its entries; it is empty again (disk_size kept).  NULL is a no-op. */
void bootset_free(struct bootset *bs);
/* A copy of src into *dst (dst not initialised before).  0 or -ENOMEM. */
int bootset_copy(struct bootset *dst, const struct bootset *src);
/* Bytes of disk its chunks cover (the last chunk of the disk may be short). */
uint64_t bootset_bytes(const struct bootset *bs);

/*
 * Merge one boot's hits (n of them, in the order first read, chunks
 * unique, each inside the disk: others are ignored) into bs, as
 * described above (an inherited set is replaced; boots counted; bounded
 * to max_chunks, 1..BOOTSET_MAX_CHUNKS_LIMIT).  n = 0 changes nothing.
 * 0 or -ENOMEM (bs unchanged) / -EINVAL (max_chunks out of range).
 */
int bootset_merge(struct bootset *bs, const struct bootset_hit *hits, uint32_t n,
		  uint32_t max_chunks);

/* The file's bytes of bs into a new buffer *buf (free it), *len bytes.
 * 0 or -ENOMEM. */
int bootset_encode(const struct bootset *bs, uint8_t **buf, size_t *len);
/*
 * Parse len bytes of a file into *out (initialised here; bootset_free
 * it).  0 with *cut = entries lost to a torn or corrupt tail (0 = whole);
 * -EBADMSG when nothing can be trusted (no header, a bad header CRC, a
 * bad magic or format version, counts out of bounds) - out is then
 * empty; -ENOMEM.  Entries that break the rules (a chunk past the disk,
 * twice, out of order) make the block they are in count as corrupt.
 * Never reads outside buf, never allocates more than the header's counts
 * allow (bounded by BOOTSET_MAX_CHUNKS_LIMIT).
 */
int bootset_decode(const uint8_t *buf, size_t len, struct bootset *out, uint32_t *cut);

/* One read of a prefetch. */
struct bootset_extent {
	uint64_t off;
	uint32_t len;
};
/*
 * The reads a prefetch of bs makes, in *out (free it), *n of them: the
 * entries taken in order in windows of window chunks, each window sorted
 * by offset and its adjacent chunks joined into reads of at most max_read
 * bytes (a multiple of BOOTSET_CHUNK), clipped to the disk.  So the
 * first-read order is kept window by window, and the disk sees large
 * sequential reads.  0 or -ENOMEM / -EINVAL (window 0, max_read not a
 * multiple of the chunk).
 */
int bootset_plan(const struct bootset *bs, uint32_t window, uint32_t max_read,
		 struct bootset_extent **out, uint32_t *n);

#endif
