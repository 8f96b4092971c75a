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
 * Each returns 0 or -errno (pread/pwrite: the full length or an error).
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
};

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
 * Verifies every checksum it relies on.  Returns 0 and *out, or:
 *   -EBADMSG  metadata torn or corrupt (details logged): not trusted;
 *   -ESTALE   made over another golden image;
 *   other -errno for I/O errors.
 * On error nothing in dir is changed or deleted.
 */
int overlay_open(const char *dir, struct backend *golden, const struct overlay_opts *opts,
		 struct overlay **out);

/* The backend view of the overlay (owned by it; do not close it). */
struct backend *overlay_backend(struct overlay *ov);

/* Bytes of space the overlay holds (data blocks actually allocated). */
uint64_t overlay_used_bytes(const struct overlay *ov);
/* Change the quota of an open overlay (0 = none). */
void overlay_set_quota(struct overlay *ov, uint64_t quota_bytes);

/* Flush and close.  Returns 0 or the sticky error the overlay is in. */
int overlay_close(struct overlay *ov);

/*
 * Discard the overlay in dir in constant time: the directory is renamed
 * into trash_dir (same file system) and a fresh empty overlay takes its
 * place on the next overlay_open.  The overlay must not be open.  The
 * space is reclaimed by overlay_trash_purge(), run in the background.
 */
int overlay_discard(const char *dir, const char *trash_dir);
/* Delete everything in trash_dir.  Slow; call from a background thread. */
int overlay_trash_purge(const char *trash_dir);

#endif
