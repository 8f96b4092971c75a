/*
 * ovl_ceph.c - the struct ovl_io of ovl_ceph.h: an overlay's files as
 * RADOS objects (info, log, map, *.tmp) and one plain RBD image (data).
 * The markers, the discard and the purge are in ovl_ceph_admin.c.
 *
 * Handles: a table of struct oc_handle behind c->mu; an fd is an index
 * into it.  Every operation copies what it needs out of its handle under
 * the lock (the names, the image handle) and does its I/O outside it, so
 * the worker threads of many overlays run their reads and writes in
 * parallel.  The overlay never closes an fd while another thread uses it
 * (overlay.h: close does not race with other calls), which is what makes
 * using a copied rbd_image_t after the unlock safe.
 *
 * A rename changes the names in every open handle of that file, as an fd
 * follows its inode: the overlay keeps the fd of log.tmp as its log after
 * renaming it to log.  Unlike a file system, a handle still open on the
 * NAME that was replaced now reads and writes the new content (there is
 * no unlinked inode to keep): the overlay closes its old log right after
 * the rename and never uses it in between (overlay_meta.c).
 *
 * Durability: a RADOS write is committed on the OSDs when it is
 * acknowledged, so fsync of an object is nothing; the data image is
 * opened on a connection with rbd_cache=false (rbd.c), so rbd_flush has
 * nothing to push either, but is called (a cache configured in ceph.conf
 * after all would need it).
 *
 * Objects are written whole or at an offset in one rados call each: the
 * overlay's small files stay far below the OSDs' limits (osd_max_write_size,
 * 90 MiB by default: a map of millions of runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/ovl_ceph_int.h"
#include "storage/rbd_disk.h"
#include "storage/rbd_int.h"
#include "util/log.h"

static struct ovl_ceph *oc_of(void *ctx)
{
	return ctx;
}

/* See ovl_ceph_int.h. */
int oc_space_err(int rc)
{
	return rc == -EDQUOT ? -ENOSPC : rc;
}

/* See ovl_ceph_int.h. */
void oc_oid(char *buf, const char *dir, const char *inst, const char *name)
{
	snprintf(buf, OC_OID_MAX, "%s.%s.%s", dir, inst, name);
}

/* A copy of handle fd into *out (under the lock).  0 or -EBADF. */
static int hget(struct ovl_ceph *c, int fd, struct oc_handle *out)
{
	int rc = -EBADF;

	pthread_mutex_lock(&c->mu);
	if (fd >= 0 && (size_t)fd < c->nh && c->h[fd].kind != OC_FREE) {
		*out = c->h[fd];
		rc = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* The kind of handle fd and, for data, its image: the data path's
 * lookup, which copies no names.  0 or -EBADF. */
static int hget_img(struct ovl_ceph *c, int fd, enum oc_kind *kind, rbd_image_t *img)
{
	int rc = -EBADF;

	pthread_mutex_lock(&c->mu);
	if (fd >= 0 && (size_t)fd < c->nh && c->h[fd].kind != OC_FREE) {
		*kind = c->h[fd].kind;
		*img = c->h[fd].img;
		rc = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* Put h into a free slot of the table (grown as needed): its fd, or
 * -ENOMEM. */
static int hput(struct ovl_ceph *c, const struct oc_handle *h)
{
	int fd = -ENOMEM;

	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nh; i++) {
		if (c->h[i].kind == OC_FREE) {
			fd = (int)i;
			break;
		}
	}
	if (fd < 0) {
		size_t n = c->nh ? c->nh * 2 : 16;
		struct oc_handle *t = realloc(c->h, n * sizeof(*t));
		if (t) {
			memset(t + c->nh, 0, (n - c->nh) * sizeof(*t));
			fd = (int)c->nh;
			c->h = t;
			c->nh = n;
		}
	}
	if (fd >= 0)
		c->h[fd] = *h;
	pthread_mutex_unlock(&c->mu);
	return fd;
}

/* The object name of handle h (an OC_OBJ) into buf (OC_OID_MAX). */
static void h_oid(const struct oc_handle *h, char *buf)
{
	oc_oid(buf, h->dir, h->inst, h->name);
}

/* Whether name may be a file in a directory: 1..OC_FILE_MAX bytes, no
 * '/' (the overlay's names: info, log, map, data and their .tmp). */
static bool file_valid(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= OC_FILE_MAX && !strchr(name, '/');
}

/* Open an object of directory d: O_CREAT makes it (O_TRUNC: empty),
 * else it must exist (-ENOENT); O_TRUNC empties it.  Its fd or -errno. */
static int open_obj(struct ovl_ceph *c, const struct oc_handle *d, const char *name, int flags)
{
	struct oc_handle h = *d;
	char oid[OC_OID_MAX];
	uint64_t size;
	time_t mtime;
	int rc;

	h.kind = OC_OBJ;
	snprintf(h.name, sizeof(h.name), "%s", name);
	h_oid(&h, oid);
	if ((flags & O_CREAT) && (flags & O_TRUNC)) {
		rc = rados_write_full(c->rio, oid, "", 0);
	} else if (flags & O_CREAT) {
		rados_write_op_t op = rados_create_write_op();
		if (!op)
			return -ENOMEM;
		rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
		rc = rados_write_op_operate(op, c->rio, oid, NULL, 0);
		rados_release_write_op(op);
	} else {
		rc = rados_stat(c->rio, oid, &size, &mtime);
		if (rc == 0 && (flags & O_TRUNC))
			rc = rados_trunc(c->rio, oid, 0);
	}
	if (rc < 0)
		return oc_space_err(rc);
	return hput(c, &h);
}

/* Make DIR.INST.data exist (O_TRUNC: removed first, so it is new and
 * empty): a plain image of size 0, OVL_CEPH_ORDER objects (ftruncate
 * sizes it).  0 or -errno. */
static int make_data(struct ovl_ceph *c, const char *img, int flags)
{
	char msg[256];
	int rc;

	if (flags & O_TRUNC) {
		rc = rbd_remove(c->rio, img);
		if (rc < 0 && rc != -ENOENT)
			return rc;      /* -EBUSY: open elsewhere (a live writer) */
	}
	rc = rbd_image_create(c->cl, c->pool, img, 0, OVL_CEPH_ORDER, msg, sizeof(msg));
	if (rc == -EEXIST && !(flags & O_TRUNC))
		rc = 0;
	if (rc < 0)
		log_err("%s", msg);
	return oc_space_err(rc);
}

/* Open the data image of directory d (see ovl_ceph.h, "Fencing"):
 * read-only without a lock for O_RDONLY, else writable with the
 * exclusive lock taken.  Its fd or -errno (-EBUSY: another live
 * writer holds it; -ENOENT: missing without O_CREAT). */
static int open_data(struct ovl_ceph *c, const struct oc_handle *d, int flags)
{
	struct oc_handle h = *d;
	char img[OC_OID_MAX];
	const char *step = "open it";
	bool rw = (flags & O_ACCMODE) != O_RDONLY;
	int rc, fd;

	h.kind = OC_DATA_IMG;
	snprintf(h.name, sizeof(h.name), "%s", OC_DATA);
	h_oid(&h, img);
	if ((flags & O_CREAT) && (rc = make_data(c, img, flags)) < 0)
		return rc;
	rc = rw ? rbd_open(c->rio, img, &h.img, NULL) : rbd_open_read_only(c->rio, img, &h.img, NULL);
	if (rc < 0)
		return rc;
	if (rw) {
		rc = rbd_lock_take(c->cl, h.img, img, &step);
		if (rc < 0) {
			log_warn("rbd:%s/%s: cannot %s: %s%s", c->pool, img, step, strerror(-rc),
				 rc == -EBUSY || rc == -EROFS ? " (another writer holds it)" : "");
			rbd_close(h.img);
			return rc == -EROFS ? -EBUSY : rc;
		}
		h.locked = true;
	}
	if ((fd = hput(c, &h)) < 0) {
		if (h.locked)
			rbd_lock_release(h.img);
		rbd_close(h.img);
	}
	return fd;
}

/* open(AT_FDCWD, DIR or ".", O_DIRECTORY): a marker handle (INST read
 * now) or the parent's (fsync only).  Its fd or -errno. */
static int open_dir(struct ovl_ceph *c, const char *name)
{
	struct oc_handle h;
	int rc;

	memset(&h, 0, sizeof(h));
	if (strcmp(name, ".") == 0 || strcmp(name, "/") == 0) {
		h.kind = OC_PARENT;
		return hput(c, &h);
	}
	if (!oc_dir_valid(name))
		return -EINVAL;
	h.kind = OC_DIR;
	snprintf(h.dir, sizeof(h.dir), "%s", name);
	if ((rc = oc_marker_inst(c, name, h.inst)) < 0)
		return rc;
	return hput(c, &h);
}

/* The io's open (ovl_ceph.h).  An fd or -errno. */
static int oc_open(void *ctx, int dirfd, const char *name, int flags, int mode)
{
	struct ovl_ceph *c = oc_of(ctx);
	struct oc_handle d;
	int rc;

	if (dirfd == AT_FDCWD)
		return (flags & O_DIRECTORY) ? open_dir(c, name) : -EINVAL;
	if ((rc = hget(c, dirfd, &d)) < 0)
		return rc;
	if (d.kind != OC_DIR)
		return -ENOTDIR;
	if (!file_valid(name) || (flags & O_DIRECTORY))
		return -EINVAL;
	return strcmp(name, OC_DATA) == 0 ? open_data(c, &d, flags) : open_obj(c, &d, name, flags);
}

/* The io's close: the data image's lock released, the image closed
 * (librbd flushes what it still holds).  0 or -EBADF. */
static int oc_close(void *ctx, int fd)
{
	struct ovl_ceph *c = oc_of(ctx);
	struct oc_handle h;
	int rc = hget(c, fd, &h);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->mu);
	c->h[fd].kind = OC_FREE;
	c->h[fd].img = NULL;
	pthread_mutex_unlock(&c->mu);
	if (h.kind == OC_DATA_IMG) {
		if (h.locked)
			rbd_lock_release(h.img);
		rc = rbd_close(h.img);
	}
	return rc;
}

/* Read exactly len bytes at off: 0, -EIO when the file ends before, or
 * -errno. */
static int oc_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
	struct ovl_ceph *c = oc_of(ctx);
	struct oc_handle h;
	char oid[OC_OID_MAX];
	enum oc_kind kind;
	rbd_image_t img;
	size_t done = 0;
	int rc = hget_img(c, fd, &kind, &img);

	if (rc < 0)
		return rc;
	if (kind == OC_DATA_IMG) {
		while (done < len) {
			ssize_t r = rbd_read(img, off + done, len - done, (char *)buf + done);
			if (r <= 0)
				return r == 0 || r == -EINVAL ? -EIO : (int)r;
			done += (size_t)r;
		}
		return 0;
	}
	if (kind != OC_OBJ)
		return -EISDIR;
	if ((rc = hget(c, fd, &h)) < 0)
		return rc;
	h_oid(&h, oid);
	while (done < len) {
		/* rados_read answers an int: at most 1 GiB a call */
		size_t n = len - done > (1u << 30) ? (1u << 30) : len - done;
		int r = rados_read(c->rio, oid, (char *)buf + done, n, off + done);
		if (r <= 0)
			return r == 0 ? -EIO : r;
		done += (size_t)r;
	}
	return 0;
}

/* Write exactly len bytes at off.  0 or -errno (-ENOSPC: the pool is
 * full or at its quota; nothing was written). */
static int oc_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
	struct ovl_ceph *c = oc_of(ctx);
	struct oc_handle h;
	char oid[OC_OID_MAX];
	enum oc_kind kind;
	rbd_image_t img;
	size_t done = 0;
	int rc = hget_img(c, fd, &kind, &img);

	if (rc < 0)
		return rc;
	if (kind == OC_DATA_IMG) {
		while (done < len) {
			ssize_t r = rbd_write(img, off + done, len - done, (const char *)buf + done);
			if (r <= 0)
				return oc_space_err(r == 0 ? -EIO : (int)r);
			done += (size_t)r;
		}
		return 0;
	}
	if (kind != OC_OBJ)
		return -EISDIR;
	if ((rc = hget(c, fd, &h)) < 0)
		return rc;
	h_oid(&h, oid);
	return oc_space_err(rados_write(c->rio, oid, buf, len, off));
}

/* rbd_flush for data; nothing for an object or a directory (see the
 * header). */
static int oc_fsync(void *ctx, int fd)
{
	struct ovl_ceph *c = oc_of(ctx);
	enum oc_kind kind;
	rbd_image_t img;
	int rc = hget_img(c, fd, &kind, &img);

	if (rc == 0 && kind == OC_DATA_IMG)
		rc = rbd_flush(img);
	return rc;
}

/* Set the size: rbd_resize for data, rados_trunc for an object (none
 * when it has that size already). */
static int oc_ftruncate(void *ctx, int fd, uint64_t len)
{
	struct ovl_ceph *c = oc_of(ctx);
	struct oc_handle h;
	char oid[OC_OID_MAX];
	uint64_t size;
	time_t mtime;
	int rc = hget(c, fd, &h);

	if (rc < 0)
		return rc;
	if (h.kind == OC_DATA_IMG)
		return oc_space_err(rbd_resize(h.img, len));
	if (h.kind != OC_OBJ)
		return -EISDIR;
	h_oid(&h, oid);
	/* the overlay cuts a failed log append off again: a RADOS write
	 * that failed wrote nothing, so on a full pool (where the trunc
	 * itself would be refused) there is nothing to cut */
	if (rados_stat(c->rio, oid, &size, &mtime) == 0 && size == len)
		return 0;
	return oc_space_err(rados_trunc(c->rio, oid, len));
}

/* Deallocate a range of data (rbd_discard); -EOPNOTSUPP elsewhere. */
static int oc_punch(void *ctx, int fd, uint64_t off, uint64_t len)
{
	struct ovl_ceph *c = oc_of(ctx);
	enum oc_kind kind;
	rbd_image_t img;
	int rc = hget_img(c, fd, &kind, &img);

	if (rc < 0)
		return rc;
	if (kind != OC_DATA_IMG)
		return -EOPNOTSUPP;
	while (len > 0) {
		/* rbd_discard takes a uint64_t but answers an int: 1 GiB a call */
		uint64_t n = len > (1ull << 30) ? (1ull << 30) : len;
		rc = rbd_discard(img, off, n);
		if (rc < 0)
			return oc_space_err(rc);
		off += n;
		len -= n;
	}
	return 0;
}

/* Make every open handle on file from of directory d name to instead. */
static void rename_handles(struct ovl_ceph *c, const struct oc_handle *d, const char *from,
			   const char *to)
{
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nh; i++) {
		struct oc_handle *h = &c->h[i];
		if (h->kind == OC_OBJ && strcmp(h->dir, d->dir) == 0 &&
		    strcmp(h->inst, d->inst) == 0 && strcmp(h->name, from) == 0)
			snprintf(h->name, sizeof(h->name), "%s", to);
	}
	pthread_mutex_unlock(&c->mu);
}

/* Read the whole object oid into a new buffer (*buf, caller frees;
 * *len its size).  0 or -errno. */
static int read_whole(struct ovl_ceph *c, const char *oid, char **buf, size_t *len)
{
	uint64_t size;
	time_t mtime;
	int rc = rados_stat(c->rio, oid, &size, &mtime);

	*buf = NULL;
	if (rc < 0)
		return rc;
	if (size > (1u << 30))
		return -EFBIG;
	if (!(*buf = malloc(size ? size : 1)))
		return -ENOMEM;
	rc = size ? rados_read(c->rio, oid, *buf, size, 0) : 0;
	if (rc >= 0 && (uint64_t)rc != size)
		rc = -EIO;      /* changed under us: nobody else writes it */
	if (rc < 0) {
		free(*buf);
		*buf = NULL;
		return rc;
	}
	*len = size;
	return 0;
}

/* The io's renameat (ovl_ceph.h): to's content replaced by from's in one
 * write_full, then from removed; open handles on from follow.  Objects
 * only (-EOPNOTSUPP for data).  0 or -errno. */
static int oc_renameat(void *ctx, int dirfd, const char *from, const char *to)
{
	struct ovl_ceph *c = oc_of(ctx);
	struct oc_handle d;
	char src[OC_OID_MAX], dst[OC_OID_MAX];
	char *buf;
	size_t len;
	int rc = hget(c, dirfd, &d);

	if (rc < 0)
		return rc;
	if (d.kind != OC_DIR)
		return -ENOTDIR;
	if (!file_valid(from) || !file_valid(to))
		return -EINVAL;
	if (strcmp(from, OC_DATA) == 0 || strcmp(to, OC_DATA) == 0)
		return -EOPNOTSUPP;
	oc_oid(src, d.dir, d.inst, from);
	oc_oid(dst, d.dir, d.inst, to);
	if ((rc = read_whole(c, src, &buf, &len)) < 0)
		return rc;
	rc = oc_space_err(rados_write_full(c->rio, dst, buf, len));
	free(buf);
	if (rc < 0)
		return rc;
	rename_handles(c, &d, from, to);
	rc = rados_remove(c->rio, src);
	return rc == -ENOENT ? 0 : rc;
}

/* Remove a file of the directory: rbd_remove for data, rados_remove for
 * an object.  0 or -errno (-ENOENT: there is none). */
static int oc_unlinkat(void *ctx, int dirfd, const char *name)
{
	struct ovl_ceph *c = oc_of(ctx);
	struct oc_handle d;
	char oid[OC_OID_MAX];
	int rc = hget(c, dirfd, &d);

	if (rc < 0)
		return rc;
	if (d.kind != OC_DIR)
		return -ENOTDIR;
	if (!file_valid(name))
		return -EINVAL;
	oc_oid(oid, d.dir, d.inst, name);
	return strcmp(name, OC_DATA) == 0 ? rbd_remove(c->rio, oid) : rados_remove(c->rio, oid);
}

/* Size and allocated bytes: data's size and OVL_ALLOC_UNKNOWN, an
 * object's size twice, a directory 0. */
static int oc_fstat_size(void *ctx, int fd, uint64_t *size, uint64_t *allocated)
{
	struct ovl_ceph *c = oc_of(ctx);
	struct oc_handle h;
	char oid[OC_OID_MAX];
	time_t mtime;
	int rc = hget(c, fd, &h);

	if (rc < 0)
		return rc;
	*size = *allocated = 0;
	if (h.kind == OC_DATA_IMG) {
		rc = rbd_get_size(h.img, size);
		*allocated = OVL_ALLOC_UNKNOWN;
	} else if (h.kind == OC_OBJ) {
		h_oid(&h, oid);
		rc = rados_stat(c->rio, oid, size, &mtime);
		*allocated = *size;
	}
	return rc;
}

/* The io's mkdirat: only AT_FDCWD (see oc_mkdir). */
static int oc_mkdirat(void *ctx, int dirfd, const char *name, int mode)
{
	return dirfd == AT_FDCWD ? oc_mkdir(oc_of(ctx), name) : -EINVAL;
}

/* The cluster's free bytes (rados_cluster_stat), read at most once a
 * second.  0 or -errno. */
static int oc_fs_free(void *ctx, int fd, uint64_t *avail)
{
	struct ovl_ceph *c = oc_of(ctx);
	struct rados_cluster_stat_t st;
	time_t now = time(NULL);
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	if (c->free_at && now - c->free_at < 1) {
		*avail = c->free_bytes;
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	pthread_mutex_unlock(&c->mu);
	if ((rc = rados_cluster_stat(rbd_cluster_rados(c->cl), &st)) < 0)
		return rc;
	*avail = st.kb_avail * 1024u;
	pthread_mutex_lock(&c->mu);
	c->free_bytes = *avail;
	c->free_at = now;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static const struct ovl_io oc_io_ops = {
	.open = oc_open,
	.close = oc_close,
	.pread = oc_pread,
	.pwrite = oc_pwrite,
	.fsync = oc_fsync,
	.ftruncate = oc_ftruncate,
	.punch = oc_punch,
	.renameat = oc_renameat,
	.unlinkat = oc_unlinkat,
	.fstat_size = oc_fstat_size,
	.ctx = NULL,
	.mkdirat = oc_mkdirat,
	.fs_free = oc_fs_free,
	.splice = NULL,
};

/* See ovl_ceph.h. */
int ovl_ceph_new(struct rbd_cluster *cl, const char *pool, const char *index, struct ovl_ceph **out,
		 char *msg, size_t msglen)
{
	struct ovl_ceph *c;
	int rc;

	*out = NULL;
	if (strlen(pool) >= RBD_POOL_MAX || strlen(index) >= OC_OID_MAX || !index[0]) {
		snprintf(msg, msglen, "ceph overlays: pool or index name too long or empty");
		return -EINVAL;
	}
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	if ((rc = rbd_pool_ioctx(cl, pool, &c->rio)) < 0) {
		snprintf(msg, msglen, "ceph overlays: pool %s: %s", pool, strerror(-rc));
		free(c);
		return rc;
	}
	pthread_mutex_init(&c->mu, NULL);
	c->cl = cl;
	snprintf(c->pool, sizeof(c->pool), "%s", pool);
	snprintf(c->index, sizeof(c->index), "%s", index);
	c->io = oc_io_ops;
	c->io.ctx = c;
	*out = c;
	return 0;
}

/* See ovl_ceph.h. */
const struct ovl_io *ovl_ceph_io(struct ovl_ceph *c)
{
	return &c->io;
}

/* See ovl_ceph.h.  Handles still open (a caller that did not close its
 * overlays) have their images closed, and are logged. */
void ovl_ceph_free(struct ovl_ceph *c)
{
	size_t left = 0;

	if (!c)
		return;
	for (size_t i = 0; i < c->nh; i++) {
		if (c->h[i].kind == OC_FREE)
			continue;
		left++;
		if (c->h[i].kind == OC_DATA_IMG) {
			if (c->h[i].locked)
				rbd_lock_release(c->h[i].img);
			rbd_close(c->h[i].img);
		}
	}
	if (left)
		log_warn("ceph overlays: %zu file(s) still open at the end", left);
	rados_ioctx_destroy(c->rio);
	pthread_mutex_destroy(&c->mu);
	free(c->h);
	free(c);
}
