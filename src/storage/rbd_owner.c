/*
 * rbd_owner.c - who holds an RBD image's exclusive lock (rbd.h:
 * rbd_lock_elsewhere): what a gateway of a cluster asks before it
 * changes a disk - a client's overlay, a draft - that another gateway
 * may have open for writing (docs/cluster.md, "Shared records").
 */
#include "storage/rbd.h"
#include "storage/rbd_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A client overlay's data image: DIR.INST.data, INST in DIR's xattr
 * "inst" (storage/ovl_ceph.h); name gets it.  0, -ENOENT (no marker:
 * not an overlay) or -errno. */
static int overlay_data(rados_ioctx_t io, const char *dir, char *name, size_t len)
{
	char inst[32];
	int n = rados_getxattr(io, dir, "inst", inst, sizeof(inst) - 1);

	if (n < 0)
		return n;
	inst[n] = '\0';
	return snprintf(name, len, "%s.%s.data", dir, inst) >= (int)len ? -ENAMETOOLONG : 0;
}

int rbd_lock_elsewhere(struct rbd_cluster *c, const char *pool, const char *name, char *owner,
		       size_t len)
{
	char mine[RBD_ADDR_MAX] = "", data[RBD_NAME_MAX + 40], id[64], header[96];
	char tag[64], clients[512], cookies[512], addrs[512];
	size_t tl = sizeof(tag), cl = sizeof(clients), kl = sizeof(cookies), al = sizeof(addrs);
	rados_ioctx_t io;
	rbd_image_t img;
	int rc, excl = 0, found = 0;
	ssize_t n;

	if (owner && len)
		owner[0] = '\0';
	if ((rc = rbd_pool_ioctx(c, pool, &io)))
		return rc;
	rc = rbd_open_read_only(io, name, &img, NULL);
	if (rc == -ENOENT && overlay_data(io, name, data, sizeof(data)) == 0)
		rc = rbd_open_read_only(io, (name = data), &img, NULL);
	if (rc < 0) {
		rados_ioctx_destroy(io);
		return rc == -ENOENT ? 0 : rc;   /* no such image: nobody has it open */
	}
	rc = rbd_get_id(img, id, sizeof(id));
	rbd_close(img);
	if (rc < 0) {
		rados_ioctx_destroy(io);
		return rc;
	}
	/* librbd's exclusive lock is a RADOS lock "rbd_lock" on the header
	 * (a read-only open may not ask librbd for its owners) */
	snprintf(header, sizeof(header), "rbd_header.%s", id);
	rbd_cluster_addr(c, mine, sizeof(mine));
	n = rados_list_lockers(io, header, "rbd_lock", &excl, tag, &tl, clients, &cl, cookies, &kl,
			       addrs, &al);
	/* addrs: n NUL-terminated addresses one after the other */
	for (ssize_t i = 0, off = 0; i < n && off < (ssize_t)al && !found; i++) {
		const char *a = addrs + off;
		if (!mine[0] || !strstr(a, mine)) {
			found = 1;
			if (owner && len)
				snprintf(owner, len, "%s", a);
		}
		off += (ssize_t)strlen(a) + 1;
	}
	rados_ioctx_destroy(io);
	return n < 0 && n != -ENOENT ? (int)n : found;
}
