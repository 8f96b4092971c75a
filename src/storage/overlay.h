/*
 * overlay.h - one client's copy-on-write overlay on top of a read-only
 * golden image.  Documented on disk in docs/overlay-format.md.
 *
 * An overlay is a directory holding the client's written blocks and the
 * map that says which blocks it holds.  Blocks the client never wrote are
 * read from the golden backend; writes land only in the overlay.  The
 * overlay is itself a struct backend, so a SCSI LU sits on it unchanged.
 *
 * Semantics are those of a disk with a volatile write cache (the LU
 * reports WCE=1): a write acknowledged before a completed flush (or
 * written with FUA) survives a crash of the daemon or of the machine; an
 * unflushed write may be lost, but a block never reads back as anything
 * other than its old or its new content.  Unmapped ranges read as zeros.
 *
 * Space: a quota per overlay, and a free-space floor for the file system
 * the store lives on.  A write that needs new space beyond either fails
 * with -ENOSPC (the SCSI layer answers SPACE ALLOCATION FAILED WRITE
 * PROTECT); overwrites of space already held and all reads keep working.
 *
 * Threading: every call may come from several connection threads at once
 * (an initiator's iPXE session and its OS session share one overlay).
 * Overlapping writes/unmaps are serialised by block range (G bytes, see
 * overlay_opts.block_size); others run in parallel.  overlay_close must
 * not race with other calls on the same overlay.
 *
 * Backend view (overlay_backend): read/write/flush/unmap/block_status as
 * in backend.h.  flush and FUA writes: fsync(data), then the metadata log.
 * unmap: whole G-blocks are released (hole punched), partial G-blocks at
 * the edges get zeros written (which may need space: -ENOSPC possible);
 * afterwards the range reads zeros (report LBPRZ=1; a good UNMAP
 * GRANULARITY is G).  block_status: written = mapped, unmapped = not,
 * never written = what the golden backend says.  A range outside the
 * disk is -EINVAL.
 *
 * Errors: after a failed data write (other than -ENOSPC/-EDQUOT) or any
 * failed sync or metadata write the overlay is in a sticky error state:
 * writes, unmaps and flushes return -EIO, reads keep working; close it and
 * open it again (what is durable on disk is consistent).  A store too full
 * for the metadata is not such a failure: a flush that finds no space
 * for its log record (or checkpoint) returns -ENOSPC with nothing changed
 * on disk and its blocks still to be flushed, and a later flush logs them.
 */
#ifndef PRISTINE_OVERLAY_H
#define PRISTINE_OVERLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/backend.h"

struct overlay;

/*
 * File I/O used by the overlay, so tests can put a crash-simulating layer
 * underneath (the idea of SQLite's crash VFS).  NULL = the real syscalls.
 * Each returns 0 or -errno (pread/pwrite: the full length or an error;
 * open: the fd).  open is also used with AT_FDCWD and O_DIRECTORY on the
 * overlay directory and its parent (to fsync them); punch deallocates a
 * range keeping the size and may answer -EOPNOTSUPP.  The struct and ctx
 * are borrowed: they must outlive the overlay.
 */
struct ovl_io {
	int (*open)(void *ctx, int dirfd, const char *name, int flags, int mode);
	int (*close)(void *ctx, int fd);
	int (*pread)(void *ctx, int fd, void *buf, size_t len, uint64_t off);
	int (*pwrite)(void *ctx, int fd, const void *buf, size_t len, uint64_t off);
	int (*fsync)(void *ctx, int fd);                  /* data + metadata */
	int (*ftruncate)(void *ctx, int fd, uint64_t len);
	int (*punch)(void *ctx, int fd, uint64_t off, uint64_t len);
	int (*renameat)(void *ctx, int dirfd, const char *from, const char *to);
	int (*unlinkat)(void *ctx, int dirfd, const char *name);
	int (*fstat_size)(void *ctx, int fd, uint64_t *size, uint64_t *allocated);
	void *ctx;
	/* Added for the overlay's own needs; every member is required. */
	int (*mkdirat)(void *ctx, int dirfd, const char *name, int mode); /* -EEXIST if there */
	int (*fs_free)(void *ctx, int fd, uint64_t *avail);  /* bytes free to us on fd's fs */
	/* Optional: exactly len bytes at off into the pipe pipe_wr by
	 * reference (util/splice.h).  NULL: the overlay's splice_read says
	 * -EOPNOTSUPP and callers read instead. */
	int (*splice)(void *ctx, int fd, int pipe_wr, size_t len, uint64_t off);
};

/* fstat_size's allocated when the store cannot count it cheaply (an
 * overlay in Ceph, storage/ovl_ceph.h): the overlay then starts its space
 * counter from its PRESENT blocks (times G) instead.  Data that a crash
 * lost before its flush then holds space nobody counts until a reset. */
#define OVL_ALLOC_UNKNOWN UINT64_MAX

/* The real thing (plain syscalls); what io == NULL means. */
const struct ovl_io *ovl_io_default(void);

struct overlay_opts {
	uint64_t quota_bytes;         /* 0 = no quota */
	uint64_t store_floor_bytes;   /* keep this much free on the file system; 0 = none */
	const struct ovl_io *io;      /* NULL = real I/O */
	/* Identity of the golden image the overlay belongs to (size is checked
	 * against golden->size too).  An overlay made over another base is
	 * refused with -ESTALE. */
	const char *base_id;
	/* Tracking granularity G in bytes for a NEW overlay: a power of two,
	 * 512..1 MiB; 0 = default (OVL_DEFAULT_BLOCK).  An existing overlay
	 * keeps the G recorded in its info file; this is then ignored. */
	uint32_t block_size;
	/* Checkpoint the map once the metadata log is this long; 0 = default
	 * (4 MiB).  Tests make it tiny to exercise checkpoints. */
	uint64_t checkpoint_bytes;
};

#define OVL_DEFAULT_BLOCK 4096u

/*
 * Open the overlay in directory dir (created, with an empty overlay, if it
 * does not exist) over golden (borrowed; must outlive the overlay).
 * opts may be NULL (all defaults); it is not kept.  Verifies every
 * checksum it relies on.  Returns 0 and *out (release with
 * overlay_close), or:
 *   -EBADMSG  metadata torn or corrupt (details logged): not trusted;
 *   -ESTALE   made over another golden image;
 *   -EINVAL   bad opts (block_size, base_id longer than 255) or golden
 *             of size 0;
 *   other -errno for I/O errors.
 * On error nothing in dir is changed or deleted.  A torn tail of the
 * metadata log (a crash during a flush) is not an error: it is cut off.
 */
int overlay_open(const char *dir, struct backend *golden, const struct overlay_opts *opts,
		 struct overlay **out);

/* The backend view of the overlay (owned by it).  Its close op is
 * overlay_close (result logged): call one or the other, never both. */
struct backend *overlay_backend(struct overlay *ov);

struct cow;
/* The overlay as the lab holds it (storage/cow.h), owned by ov: its ops
 * are overlay_backend, overlay_used_bytes, overlay_error,
 * overlay_set_quota, overlay_close and overlay_drop.  cow_close or
 * cow_drop frees ov: call those or overlay_close/drop, never both. */
struct cow *overlay_cow(struct overlay *ov);

/* Bytes of space the overlay holds (data blocks actually allocated):
 * st_blocks of `data` at open, then +/- G per block written/unmapped. */
uint64_t overlay_used_bytes(const struct overlay *ov);
/* The sticky error the overlay is in: 0 when healthy, else the -errno
 * that put it there, and *what (may be NULL) the step that failed
 * ("data write", "data sync", "log append", "checkpoint", ...: static
 * text, or NULL).  For status displays; any thread. */
int overlay_error(const struct overlay *ov, const char **what);
/* Change the quota of an open overlay (0 = none).  Lowering it below the
 * usage only refuses new space; nothing is released.  A warning is logged
 * each time usage crosses 80% of the quota. */
void overlay_set_quota(struct overlay *ov, uint64_t quota_bytes);

/* Flush, write a checkpoint of the map, close the files and free ov
 * (always, even on error; NULL is a no-op).  Returns 0 or the sticky
 * error the overlay is in (then the last flush may not have happened). */
int overlay_close(struct overlay *ov);

/* Close and free ov WITHOUT flushing or checkpointing: for an overlay
 * about to be discarded (a reset), where close's final checkpoint (a
 * write of the whole map) would be wasted.  Unflushed writes are lost, as
 * in a crash; what is on disk stays consistent.  NULL is a no-op. */
void overlay_drop(struct overlay *ov);

/* Delete everything in trash_dir (not trash_dir itself; symlinks are not
 * followed): the space of what was moved there (lab/statedir.h's
 * statedir_trash, the one trash move).  Slow; call from a background thread.  0 (also when
 * trash_dir does not exist) or the first -errno met (it carries on). */
int overlay_trash_purge(const char *trash_dir);

#endif
