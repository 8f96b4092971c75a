/*
 * rbd_import.c - a new RBD image filled from a local raw file, and its
 * removal when the import does not finish (rbd_import.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "storage/rbd_disk.h"
#include "storage/rbd_import.h"
#include "storage/rbd_int.h"
#include "util/fullio.h"
#include "util/bytes.h"
#include "util/log.h"

#define FILL_CHUNK (4u << 20)

/* See rbd_import.h. */
int rbd_pool_check(struct rbd_cluster *c, const char *pool, char *msg, size_t msglen)
{
	rados_ioctx_t io;
	int rc = rbd_pool_ioctx(c, pool, &io);

	if (rc < 0) {
		snprintf(msg, msglen, rc == -ENOENT ? "ceph: no pool %s in the cluster (rados lspools)" :
			 "ceph: pool %s: %s", pool, strerror(-rc));
		return rc;
	}
	rados_ioctx_destroy(io);
	return 0;
}

/* Write the non-zero pieces of fd (size bytes) into img, flushed. */
static int fill(int fd, rbd_image_t img, uint64_t size, rbd_fill_step step, void *arg)
{
	char *buf = malloc(FILL_CHUNK);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t off = 0; off < size && rc == 0; off += FILL_CHUNK) {
		size_t n = (size_t)(size - off < FILL_CHUNK ? size - off : FILL_CHUNK);
		if ((rc = pread_full(fd, buf, n, (off_t)off)))
			break;
		if (!bytes_all_zero(buf, n)) {
			ssize_t w = rbd_write(img, off, n, buf);
			if (w != (ssize_t)n) {
				rc = w < 0 ? (int)w : -EIO;
				break;
			}
		}
		if (step && step(arg, off + n, size))
			rc = -ECANCELED;
	}
	if (rc == 0)
		rc = rbd_flush(img);
	free(buf);
	return rc;
}

/* See rbd_import.h. */
int rbd_image_fill(struct rbd_cluster *c, const char *pool, const char *name, const char *path,
		   rbd_fill_step step, void *arg, char *msg, size_t msglen)
{
	const char *what = "create it";
	rados_ioctx_t io;
	rbd_image_t img;
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if ((rc = rbd_image_create(c, pool, name, (uint64_t)st.st_size, RBD_IMPORT_ORDER, msg,
				   msglen)) < 0) {
		close(fd);
		return rc;
	}
	if ((rc = rbd_pool_ioctx(c, pool, &io)) < 0) {
		snprintf(msg, msglen, "ceph: pool %s: %s", pool, strerror(-rc));
		close(fd);
		return rc;
	}
	what = "open it";
	if ((rc = rbd_open(io, name, &img, NULL)) == 0) {
		what = "write it";
		rc = fill(fd, img, (uint64_t)st.st_size, step, arg);
		rbd_close(img);
	}
	close(fd);
	if (rc < 0) {
		/* no half image under the name: never served, and a retry
		 * must not meet -EEXIST */
		int r = rbd_remove(io, name);
		if (r < 0)
			log_warn("rbd:%s/%s: cannot remove the half-made import: %s", pool, name,
				 strerror(-r));
		snprintf(msg, msglen, "rbd:%s/%s: cannot %s: %s", pool, name, what, strerror(-rc));
	}
	rados_ioctx_destroy(io);
	return rc;
}

/* See rbd_import.h. */
int rbd_image_remove_all(struct rbd_cluster *c, const char *pool, const char *name, char *msg,
			 size_t msglen)
{
	rbd_snap_info_t snaps[16];
	int max = 16, n, rc;
	rados_ioctx_t io;
	rbd_image_t img;

	if ((rc = rbd_pool_ioctx(c, pool, &io)) < 0) {
		snprintf(msg, msglen, "ceph: pool %s: %s", pool, strerror(-rc));
		return rc;
	}
	rc = rbd_open(io, name, &img, NULL);
	if (rc == 0) {
		n = rbd_snap_list(img, snaps, &max);
		for (int i = 0; i < n && rc == 0; i++) {
			int prot = 0;
			rbd_snap_is_protected(img, snaps[i].name, &prot);
			if (prot)
				rc = rbd_snap_unprotect(img, snaps[i].name);
			if (rc == 0)
				rc = rbd_snap_remove(img, snaps[i].name);
			if (rc < 0)
				snprintf(msg, msglen, "rbd:%s/%s@%s: cannot remove the snapshot: %s", pool,
					 name, snaps[i].name, strerror(-rc));
		}
		if (n > 0)
			rbd_snap_list_end(snaps);
		else if (n < 0)
			rc = n;
		rbd_close(img);
	} else if (rc == -ENOENT) {
		/* no header: not there, or a create a kill cut short (its
		 * directory entry may remain): rbd_remove clears either */
		rc = 0;
	}
	if (rc == 0 && (rc = rbd_remove(io, name)) < 0)
		snprintf(msg, msglen, "rbd:%s/%s: cannot remove it: %s", pool, name, strerror(-rc));
	else if (rc == -ENOENT)
		snprintf(msg, msglen, "rbd:%s/%s: no such image", pool, name);
	rados_ioctx_destroy(io);
	return rc;
}
