/*
 * raw.c - the raw backend: an image file or block device accessed with
 * pread/pwrite.  Unmap punches holes (FALLOC_FL_PUNCH_HOLE|KEEP_SIZE) so
 * unmapped ranges read as zeros; where the file system refuses, zeros
 * are written instead.  Allocation state comes from SEEK_DATA/SEEK_HOLE.
 * What is in memory comes from mincore over a passing mapping
 * (util/pagecache.h).  The file descriptor's offset is never used, so
 * calls from many threads need no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/backend.h"
#include "util/fullio.h"
#include "util/log.h"
#include "util/pagecache.h"
#include "util/splice.h"

struct raw_backend {
	struct backend be;      /* first: a struct backend * is a raw_backend * */
	int fd;
	bool blockdev;
	bool no_punch;          /* fallocate refused once: write zeros */
};

/* The raw backend around be (be is its first member). */
static struct raw_backend *raw_of(struct backend *be)
{
	return (struct raw_backend *)be;
}

/* Log a failed read or write of the file (rate-limited); returns rc. */
static int raw_io_error(struct backend *be, const char *op, uint64_t off, size_t len, int rc)
{
	unsigned dropped = 0;

	if (ratelimit_ok(&be->err_rl, &dropped))
		log_err("raw %s: %s of %zu bytes at byte %llu failed: %s%s", be->name, op, len,
			(unsigned long long)off, strerror(-rc),
			dropped ? " (more errors of this file were not logged)" : "");
	return rc;
}

/* Read exactly len bytes at off; a short read (file shrank) is -EIO. */
static int raw_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	int rc = pread_full(raw_of(be)->fd, buf, len, off);

	return rc < 0 ? raw_io_error(be, "read", off, len, rc) : 0;
}

/* The same, into a pipe by reference; errors are the caller's read's to
 * log (backend.h). */
static int raw_splice_read(struct backend *be, int pipe_wr, uint64_t off, size_t len)
{
	return splice_full(raw_of(be)->fd, off, pipe_wr, len);
}

/* Write exactly len bytes at off; fua adds fdatasync before returning. */
static int raw_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	struct raw_backend *r = raw_of(be);
	int rc;

	if (be->read_only)
		return -EROFS;
	rc = pwrite_full(r->fd, buf, len, off);
	if (rc < 0)
		return raw_io_error(be, "write", off, len, rc);
	if (fua && fdatasync(r->fd) < 0)
		return raw_io_error(be, "sync", off, len, -errno);
	return 0;
}

/* fdatasync the file; nothing to do when opened read-only. */
static int raw_flush(struct backend *be)
{
	struct raw_backend *r = raw_of(be);

	if (be->read_only)
		return 0;
	return fdatasync(r->fd) < 0 ? raw_io_error(be, "sync", 0, 0, -errno) : 0;
}

/* Zero [off, off+len) by writing. */
static int raw_write_zeros(struct backend *be, uint64_t off, uint64_t len)
{
	size_t chunk = 1u << 20;
	uint8_t *z = calloc(1, chunk);
	int rc = 0;

	if (!z)
		return -ENOMEM;
	while (len > 0 && rc == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		rc = raw_write(be, z, off, n, false);
		off += n;
		len -= n;
	}
	free(z);
	return rc;
}

/* Deallocate [off, off+len); afterwards it reads as zeros. */
static int raw_unmap(struct backend *be, uint64_t off, uint64_t len)
{
	struct raw_backend *r = raw_of(be);

	if (be->read_only)
		return -EROFS;
	if (len == 0)
		return 0;
	if (!__atomic_load_n(&r->no_punch, __ATOMIC_RELAXED)) {
		if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len) == 0)
			return 0;
		if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL && errno != ENODEV)
			return -errno;
		__atomic_store_n(&r->no_punch, true, __ATOMIC_RELAXED);
		log_info("raw %s: hole punching not supported, unmap writes zeros", be->name);
	}
	return raw_write_zeros(be, off, len);
}

/* Allocation state from SEEK_DATA/SEEK_HOLE; everything is mapped when
 * the file system cannot tell. */
static int raw_block_status(struct backend *be, uint64_t off, uint64_t len,
			    uint64_t *run, bool *mapped)
{
	struct raw_backend *r = raw_of(be);

	*run = len;
	*mapped = true;
	if (r->blockdev)
		return 0;
	off_t data = lseek(r->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO) {           /* only a hole up to EOF */
			*mapped = false;
			return 0;
		}
		return 0;                       /* not supported: mapped */
	}
	if ((uint64_t)data > off) {
		*mapped = false;
		uint64_t n = (uint64_t)data - off;
		*run = n < len ? n : len;
		return 0;
	}
	off_t hole = lseek(r->fd, (off_t)off, SEEK_HOLE);
	if (hole > (off_t)off) {
		uint64_t n = (uint64_t)hole - off;
		*run = n < len ? n : len;
	}
	return 0;
}

/* Bytes of [off, off+len) in the page cache of the file or device (an
 * estimate: util/pagecache.h). */
static int raw_resident(struct backend *be, uint64_t off, uint64_t len, uint64_t *bytes)
{
	*bytes = 0;
	if (off > be->size || len > be->size - off)
		return -EINVAL;
	return pagecache_resident(raw_of(be)->fd, off, len, bytes);
}

/* Close the file and free the backend. */
static void raw_close(struct backend *be)
{
	struct raw_backend *r = raw_of(be);

	close(r->fd);
	free(r);
}

static const struct backend_ops raw_ops = {
	.read = raw_read,
	.splice_read = raw_splice_read,
	.write = raw_write,
	.flush = raw_flush,
	.unmap = raw_unmap,
	.close = raw_close,
	.block_status = raw_block_status,
	.resident = raw_resident,
};

/* See backend.h. */
int backend_raw_open(const char *path, bool writable, struct backend **out)
{
	struct stat st;
	int rc;

	*out = NULL;
	int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		log_err("raw: cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		log_err("raw: cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	uint64_t size;
	bool blockdev = S_ISBLK(st.st_mode);
	if (blockdev) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			rc = -errno;
			log_err("raw: cannot size %s: %s", path, strerror(errno));
			goto fail;
		}
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		rc = -EINVAL;
		log_err("raw: %s is neither a regular file nor a block device", path);
		goto fail;
	}
	struct raw_backend *r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		goto fail;
	}
	r->fd = fd;
	r->blockdev = blockdev;
	r->be.ops = &raw_ops;
	r->be.size = size;
	r->be.read_only = !writable;
	const char *base = strrchr(path, '/');
	snprintf(r->be.name, sizeof(r->be.name), "%s", base ? base + 1 : path);
	*out = &r->be;
	return 0;
fail:
	close(fd);
	return rc;
}
