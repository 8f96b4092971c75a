/*
 * overlay_io.c - the real struct ovl_io (plain syscalls) and the
 * full-length read/write helpers the overlay uses over any ovl_io.
 *
 * Keeping every file operation of the overlay behind struct ovl_io is
 * what lets the crash test (tests/unit/test_overlay_crash.c) put a
 * power-cut simulator underneath.  Nothing here keeps state, so calls
 * from many threads need no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "storage/overlay_int.h"
#include "util/fullio.h"
#include "util/splice.h"

/* openat(2), close-on-exec.  Returns the fd or -errno. */
static int rio_open(void *ctx, int dirfd, const char *name, int flags, int mode)
{
	int fd = openat(dirfd, name, flags | O_CLOEXEC, (mode_t)mode);
	return fd < 0 ? -errno : fd;
}

static int rio_close(void *ctx, int fd)
{
	return close(fd) < 0 ? -errno : 0;
}

/* Read exactly len bytes; end of file before that is -EIO. */
static int rio_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
	(void)ctx;
	return pread_full(fd, buf, len, off);
}

/* Move exactly len bytes into a pipe (splice.h). */
static int rio_splice(void *ctx, int fd, int pipe_wr, size_t len, uint64_t off)
{
	(void)ctx;
	return splice_full(fd, off, pipe_wr, len);
}

/* Write exactly len bytes. */
static int rio_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
	(void)ctx;
	return pwrite_full(fd, buf, len, off);
}

static int rio_fsync(void *ctx, int fd)
{
	return fsync(fd) < 0 ? -errno : 0;
}

static int rio_ftruncate(void *ctx, int fd, uint64_t len)
{
	return ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
}

/* Deallocate a range, keeping the size; -EOPNOTSUPP where unsupported. */
static int rio_punch(void *ctx, int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
		return errno == ENOSYS ? -EOPNOTSUPP : -errno;
	return 0;
}

static int rio_renameat(void *ctx, int dirfd, const char *from, const char *to)
{
	return renameat(dirfd, from, dirfd, to) < 0 ? -errno : 0;
}

static int rio_unlinkat(void *ctx, int dirfd, const char *name)
{
	return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
}

/* Apparent size and bytes actually allocated (st_blocks is in 512s). */
static int rio_fstat_size(void *ctx, int fd, uint64_t *size, uint64_t *allocated)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	*allocated = (uint64_t)st.st_blocks * 512u;
	return 0;
}

static int rio_mkdirat(void *ctx, int dirfd, const char *name, int mode)
{
	return mkdirat(dirfd, name, (mode_t)mode) < 0 ? -errno : 0;
}

/* Space an unprivileged writer may still use on fd's file system. */
static int rio_fs_free(void *ctx, int fd, uint64_t *avail)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return -errno;
	*avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	return 0;
}

static const struct ovl_io real_io = {
	.open = rio_open,
	.close = rio_close,
	.pread = rio_pread,
	.pwrite = rio_pwrite,
	.fsync = rio_fsync,
	.ftruncate = rio_ftruncate,
	.punch = rio_punch,
	.renameat = rio_renameat,
	.unlinkat = rio_unlinkat,
	.fstat_size = rio_fstat_size,
	.ctx = NULL,
	.mkdirat = rio_mkdirat,
	.fs_free = rio_fs_free,
	.splice = rio_splice,
};

/* See overlay.h. */
const struct ovl_io *ovl_io_default(void)
{
	return &real_io;
}

/* Read exactly len bytes at off through io.  0 or -errno. */
int ovl_read_full(const struct ovl_io *io, int fd, void *buf, size_t len, uint64_t off)
{
	return len ? io->pread(io->ctx, fd, buf, len, off) : 0;
}

/* Write exactly len bytes at off through io.  0 or -errno. */
int ovl_write_full(const struct ovl_io *io, int fd, const void *buf, size_t len, uint64_t off)
{
	return len ? io->pwrite(io->ctx, fd, buf, len, off) : 0;
}
