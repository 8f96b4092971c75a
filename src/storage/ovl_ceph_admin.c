/*
 * ovl_ceph_admin.c - the markers of overlays kept in Ceph (ovl_ceph.h):
 * making one (the io's mkdirat), reading its live INST, the discard (a
 * reset in constant time) and the purge that reclaims what was
 * discarded.  The file operations are in ovl_ceph.c.
 *
 * The marker DIR is a RADOS object: xattr "inst" = the live INST (16 hex
 * digits), omap = one key per discarded INST still to purge.  The store's
 * index object has one omap key per marker ever made.  Order of steps,
 * so that a crash anywhere leaves nothing the purge cannot find:
 *   mkdir    index key first, then the marker (exclusive create);
 *   discard  the index key set again (see ovl_ceph_discard), then one
 *            write op on the marker: compare "inst" with the INST read,
 *            set the new one, add the old one as an omap key - all or
 *            nothing;
 *   purge    the old INST's data image and objects go first, its key
 *            last; a marker that is gone drops its index key.
 *
 * The objects an INST can have are the overlay's small files: info, log,
 * map and their .tmp (overlay_meta.c); the purge removes exactly those
 * names (-ENOENT is fine).  A file name the overlay might add later must
 * be added to purge_names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "storage/ovl_ceph_int.h"
#include "storage/rbd_disk.h"
#include "util/log.h"

/* What an INST may hold besides its data image (see the header). */
static const char *const purge_names[] = {
	"info", "log", "map", "info.tmp", "log.tmp", "map.tmp",
};

/* Keys listed per omap read in the purge. */
#define OC_KEYS_PAGE 256

/* See ovl_ceph_int.h. */
bool oc_dir_valid(const char *dir)
{
	size_t n = strlen(dir), p = strlen(RBD_OWN_PREFIX);

	if (n <= p || n > OC_DIR_MAX || strncmp(dir, RBD_OWN_PREFIX, p) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (dir[i] <= ' ' || dir[i] > '~' || dir[i] == '/')
			return false;
	}
	return true;
}

/* Whether s is exactly 16 lowercase hex digits. */
static bool inst_valid(const char *s, size_t n)
{
	if (n != 16)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

/* See ovl_ceph_int.h. */
int oc_marker_inst(struct ovl_ceph *c, const char *dir, char inst[17])
{
	char buf[32];
	int rc = rados_getxattr(c->rio, dir, OC_INST_XATTR, buf, sizeof(buf));

	if (rc == -ENODATA)
		rc = -EBADMSG;          /* an object without "inst" is no marker of ours */
	if (rc < 0)
		return rc;
	if (!inst_valid(buf, (size_t)rc)) {
		log_err("ceph overlay %s: its marker's instance is not 16 hex digits", dir);
		return -EBADMSG;
	}
	memcpy(inst, buf, 16);
	inst[16] = '\0';
	return 0;
}

/* A new random INST into inst (16 hex digits and a NUL).  0 or -errno. */
static int new_inst(char inst[17])
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		return -EIO;
	snprintf(inst, 17, "%016llx", (unsigned long long)v);
	return 0;
}

/* Set omap key key (empty value) on object oid, creating it.  0 or
 * -errno. */
static int omap_add(struct ovl_ceph *c, const char *oid, const char *key)
{
	rados_write_op_t op = rados_create_write_op();
	const char *keys[1] = { key }, *vals[1] = { "" };
	size_t lens[1] = { 0 };
	int rc;

	if (!op)
		return -ENOMEM;
	rados_write_op_omap_set(op, keys, vals, lens, 1);
	rc = rados_write_op_operate(op, c->rio, oid, NULL, 0);
	rados_release_write_op(op);
	return oc_space_err(rc);
}

/* Remove omap key key of object oid.  0 or -errno. */
static int omap_drop(struct ovl_ceph *c, const char *oid, const char *key)
{
	rados_write_op_t op = rados_create_write_op();
	const char *keys[1] = { key };
	int rc;

	if (!op)
		return -ENOMEM;
	rados_write_op_omap_rm_keys(op, keys, 1);
	rc = rados_write_op_operate(op, c->rio, oid, NULL, 0);
	rados_release_write_op(op);
	return rc;
}

/* See ovl_ceph_int.h. */
int oc_mkdir(struct ovl_ceph *c, const char *dir)
{
	char inst[17];
	rados_write_op_t op;
	int rc;

	if (!oc_dir_valid(dir))
		return -EINVAL;
	if ((rc = omap_add(c, c->index, dir)) < 0)
		return rc;
	if ((rc = new_inst(inst)) < 0)
		return rc;
	if (!(op = rados_create_write_op()))
		return -ENOMEM;
	rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_setxattr(op, OC_INST_XATTR, inst, 16);
	rc = rados_write_op_operate(op, c->rio, dir, NULL, 0);
	rados_release_write_op(op);
	return oc_space_err(rc);
}

/* See ovl_ceph.h. */
int ovl_ceph_exists(struct ovl_ceph *c, const char *dir)
{
	uint64_t size;
	time_t mtime;

	if (!oc_dir_valid(dir))
		return -EINVAL;
	return rados_stat(c->rio, dir, &size, &mtime);
}

/* See ovl_ceph.h.  The compare makes a discard that raced another (or a
 * mkdir after a purge) start over instead of losing an INST.  DIR's index
 * key is set again first: a purge that found the key while mkdir had not
 * made the marker yet dropped it (purge_dir), and without the key the
 * INST discarded here would never be purged. */
int ovl_ceph_discard(struct ovl_ceph *c, const char *dir)
{
	char old[17], inst[17];
	int rc = -ECANCELED;

	if (!oc_dir_valid(dir))
		return -EINVAL;
	if ((rc = ovl_ceph_exists(c, dir)) < 0)
		return rc;
	if ((rc = omap_add(c, c->index, dir)) < 0)
		return rc;
	rc = -ECANCELED;
	for (int tries = 0; tries < 8 && rc == -ECANCELED; tries++) {
		rados_write_op_t op;
		const char *keys[1] = { old }, *vals[1] = { "" };
		size_t lens[1] = { 0 };

		if ((rc = oc_marker_inst(c, dir, old)) < 0 || (rc = new_inst(inst)) < 0)
			return rc;
		if (!(op = rados_create_write_op()))
			return -ENOMEM;
		rados_write_op_cmpxattr(op, OC_INST_XATTR, LIBRADOS_CMPXATTR_OP_EQ, old, 16);
		rados_write_op_setxattr(op, OC_INST_XATTR, inst, 16);
		rados_write_op_omap_set(op, keys, vals, lens, 1);
		rc = oc_space_err(rados_write_op_operate(op, c->rio, dir, NULL, 0));
		rados_release_write_op(op);
	}
	return rc;
}

/* Free a key list of list_keys. */
static void keys_free(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

/* Every omap key of object oid into *keys (n of them; keys_free), in
 * pages.  0 or -errno (-ENOENT: no such object). */
static int list_keys(struct ovl_ceph *c, const char *oid, char ***keys, size_t *n)
{
	char **k = NULL;
	size_t cnt = 0, cap = 0;
	unsigned char more = 1;
	int rc = 0;

	while (more && rc == 0) {
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t it = NULL;
		int prval = 0;
		char *key, *val;
		size_t vlen;

		if (!op) {
			rc = -ENOMEM;
			break;
		}
		more = 0;
		rados_read_op_omap_get_keys2(op, cnt ? k[cnt - 1] : "", OC_KEYS_PAGE, &it, &more,
					     &prval);
		rc = rados_read_op_operate(op, c->rio, oid, 0);
		if (rc == 0)
			rc = prval;
		while (rc == 0 && rados_omap_get_next(it, &key, &val, &vlen) == 0 && key) {
			if (cnt == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				char **t = realloc(k, ncap * sizeof(*t));
				if (!t) {
					rc = -ENOMEM;
					break;
				}
				k = t;
				cap = ncap;
			}
			if (!(k[cnt] = strdup(key))) {
				rc = -ENOMEM;
				break;
			}
			cnt++;
		}
		if (it)
			rados_omap_get_end(it);
		rados_release_read_op(op);
	}
	if (rc < 0) {
		keys_free(k, cnt);
		return rc;
	}
	*keys = k;
	*n = cnt;
	return 0;
}

/* Remove old instance inst of dir: its data image, its objects, then its
 * key on the marker.  0, -EBUSY (the image is open elsewhere: left for
 * a later purge) or -errno. */
static int purge_inst(struct ovl_ceph *c, const char *dir, const char *inst)
{
	char oid[OC_OID_MAX];
	int rc;

	if (!inst_valid(inst, strlen(inst)))
		return omap_drop(c, dir, inst);         /* not ours: nothing to remove */
	oc_oid(oid, dir, inst, OC_DATA);
	rc = rbd_remove(c->rio, oid);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	for (size_t i = 0; i < sizeof(purge_names) / sizeof(purge_names[0]); i++) {
		oc_oid(oid, dir, inst, purge_names[i]);
		rc = rados_remove(c->rio, oid);
		if (rc < 0 && rc != -ENOENT)
			return rc;
	}
	return omap_drop(c, dir, inst);
}

/* Purge every discarded instance of marker dir; a marker that is gone
 * drops its index key.  0 or the first -errno (-EBUSY is no error). */
static int purge_dir(struct ovl_ceph *c, const char *dir)
{
	char **old;
	size_t n;
	int rc = list_keys(c, dir, &old, &n), first = 0;

	if (rc == -ENOENT)
		return omap_drop(c, c->index, dir);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		rc = purge_inst(c, dir, old[i]);
		if (rc == -EBUSY)
			log_info("ceph overlay %s: instance %s still open elsewhere: purged later", dir,
				 old[i]);
		else if (rc < 0 && !first)
			first = rc;
	}
	keys_free(old, n);
	return first;
}

/* See ovl_ceph.h. */
int ovl_ceph_purge(struct ovl_ceph *c)
{
	char **dirs;
	size_t n;
	int rc = list_keys(c, c->index, &dirs, &n), first = 0;

	if (rc == -ENOENT)
		return 0;       /* no overlay made yet */
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (!oc_dir_valid(dirs[i]))
			continue;       /* never touch what is not ours */
		rc = purge_dir(c, dirs[i]);
		if (rc < 0) {
			log_warn("ceph overlay %s: purge: %s", dirs[i], strerror(-rc));
			if (!first)
				first = rc;
		}
	}
	keys_free(dirs, n);
	return first;
}
