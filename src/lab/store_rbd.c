/*
 * store_rbd.c - the store (store.h) of one image on Ceph RBD: its
 * drafts and versions are RBD images in the golden's pool, its client
 * overlays our own overlays (storage/overlay.h) kept in that pool through
 * storage/ovl_ceph.h; its records stay with the registry's store
 * (s->records).
 *
 * Names, all RBD_OWN_PREFIX + the image's uid (so that two images of one
 * pool, or a history started again, never meet) and deterministic, so a
 * restart finds what a crash left and reuses or replaces it:
 *   pristine.<uid>.L<n>                a draft, then version vN: its clone
 *                                      of the version it was opened on,
 *                                      frozen as snapshot FROZEN_SNAP
 *   pristine.<uid>.flat-v<N>           version N flattened (a flat copy),
 *                                      snapshot FROZEN_SNAP
 *   pristine.<uid>.v<N>.<initiator>    a client's overlay on version N:
 *                                      the DIR of ovl_ceph.h (a marker
 *                                      object, DIR.INST.data an RBD
 *                                      image, DIR.INST.* objects)
 *   pristine.<uid>.overlays            the index object of those DIRs
 * A place ("where") is POOL/NAME; a root (images.h) is rbd:POOL/NAME@SNAP,
 * v1's being the admin's golden snapshot.  docs/images.md, "Images on
 * Ceph RBD", has the table of what each verb does here and what a crash
 * leaves.
 *
 * Unlike the local store, the ops that fail log what Ceph said (librbd's
 * text, the pool and image named): the domain only has an errno.
 */
#include "lab/store.h"
#include "storage/rbd.h"
#include "storage/rbd_disk.h"
#include "storage/overlay.h"
#include "storage/ovl_ceph.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one snapshot of a frozen draft or a flat copy: the version. */
#define FROZEN_SNAP "v"

struct store_rbd {
	struct lab_store base;        /* first: lab_store * is store_rbd * */
	struct rbd_cluster *cl;       /* borrowed */
	char pool[RBD_POOL_MAX];
	const char *uid;              /* the image's (borrowed) */
	struct ovl_ceph *oc;          /* the clients' overlays (owned) */
};

static struct store_rbd *rbd_of(struct lab_store *s)
{
	return (struct store_rbd *)s;
}

/* The store records go to; NULL when none was set (image_load sets it). */
static struct lab_store *rec(struct lab_store *s)
{
	return s->records;
}

/* ------------------------------------------------------------ records */

static int rbd_prepare(struct lab_store *s)
{
	return rec(s) ? rec(s)->ops->prepare(rec(s)) : -ENOSYS;
}

static int rbd_clients_load(struct lab_store *s, json_t **out)
{
	return rec(s) ? rec(s)->ops->clients_load(rec(s), out) : -ENOSYS;
}

static int rbd_clients_save(struct lab_store *s, const char *text)
{
	return rec(s) ? rec(s)->ops->clients_save(rec(s), text) : -ENOSYS;
}

static int rbd_image_prepare(struct lab_store *s, const char *image, char *where, size_t len)
{
	return rec(s) ? rec(s)->ops->image_prepare(rec(s), image, where, len) : -ENOSYS;
}

static int rbd_image_load(struct lab_store *s, const char *image, json_t **out)
{
	return rec(s) ? rec(s)->ops->image_load(rec(s), image, out) : -ENOSYS;
}

static int rbd_image_save(struct lab_store *s, const char *image, const char *text)
{
	return rec(s) ? rec(s)->ops->image_save(rec(s), image, text) : -ENOSYS;
}

static void rbd_images_list(struct lab_store *s, void (*fn)(void *arg, const char *image), void *arg)
{
	if (rec(s))
		rec(s)->ops->images_list(rec(s), fn, arg);
}

/* Boot set files are records: kept where the records are (none there:
 * not kept). */
static int rbd_bootset_save(struct lab_store *s, const char *image, unsigned v, const uint8_t *buf,
			    size_t len)
{
	return rec(s) && rec(s)->ops->bootset_save ?
	       rec(s)->ops->bootset_save(rec(s), image, v, buf, len) : -ENOSYS;
}

static int rbd_bootset_load(struct lab_store *s, const char *image, unsigned v, uint8_t **buf,
			    size_t *len)
{
	return rec(s) && rec(s)->ops->bootset_load ?
	       rec(s)->ops->bootset_load(rec(s), image, v, buf, len) : -ENOENT;
}

static int rbd_bootset_remove(struct lab_store *s, const char *image, unsigned v)
{
	return rec(s) && rec(s)->ops->bootset_remove ?
	       rec(s)->ops->bootset_remove(rec(s), image, v) : -ENOENT;
}

/* ------------------------------------------------------------- places */

/* An initiator name as part of an RBD name: [a-z0-9.-] stay, every
 * other byte (':' too, which QEMU's rbd: specs would split on) %XX. */
static void escape(const char *in, char *out, size_t len)
{
	size_t n = 0;

	for (; *in && n + 4 < len; in++) {
		unsigned char ch = (unsigned char)*in;
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-')
			out[n++] = (char)ch;
		else
			n += (size_t)snprintf(out + n, len - n, "%%%02x", ch);
	}
	out[n] = '\0';
}

/* "POOL/pristine.<uid>.<what>" into out: 0 or -ENAMETOOLONG (RBD names
 * are kept to RBD_NAME_MAX). */
static int own_where(struct store_rbd *r, const char *what, char *out, size_t len)
{
	char name[RBD_NAME_MAX];

	if (snprintf(name, sizeof(name), "%s%s.%s", RBD_OWN_PREFIX, r->uid, what) >= (int)sizeof(name) ||
	    snprintf(out, len, "%s/%s", r->pool, name) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* Whether image (a name in our pool) is a client's overlay,
 * pristine.<uid>.v<N>.<initiator>, rather than a draft, a version or a
 * flat copy (L<n>, flat-v<N>). */
static bool is_client(struct store_rbd *r, const char *image)
{
	char own[RBD_NAME_MAX];
	size_t n;

	snprintf(own, sizeof(own), "%s%s.", RBD_OWN_PREFIX, r->uid);
	n = strlen(own);
	return strncmp(image, own, n) == 0 && image[n] == 'v' && image[n + 1] >= '0' &&
	       image[n + 1] <= '9';
}

static int rbd_overlay_where(struct lab_store *s, const char *initiator, unsigned version, char *out,
			     size_t len)
{
	char esc[RBD_NAME_MAX], what[RBD_NAME_MAX];

	escape(initiator, esc, sizeof(esc));
	if (snprintf(what, sizeof(what), "v%u.%s", version, esc) >= (int)sizeof(what))
		return -ENAMETOOLONG;
	return own_where(rbd_of(s), what, out, len);
}

/* An extra disk's overlay is a clone like a client's: the image names
 * the store already. */
static int rbd_xdisk_where(struct lab_store *s, const char *image, const char *initiator,
			   unsigned version, char *out, size_t len)
{
	(void)image;
	return rbd_overlay_where(s, initiator, version, out, len);
}

static int rbd_layer_where(struct lab_store *s, const char *image, const char *layer, char *out,
			   size_t len)
{
	(void)image;   /* the uid names the image */
	return own_where(rbd_of(s), layer, out, len);
}

/* No listing: a client's overlay is found by its name when the client
 * (from the records) opens. */
static void rbd_overlays_list(struct lab_store *s,
			      void (*fn)(void *arg, const char *initiator, const char *name), void *arg)
{
	(void)s;
	(void)fn;
	(void)arg;
}

/* where or a root (rbd:POOL/NAME[@SNAP]) parsed; the pool must be ours.
 * 0 or -EINVAL (logged). */
static int parse_place(struct store_rbd *r, const char *place, struct rbd_spec *sp)
{
	char why[160];

	if (strncmp(place, "rbd:", 4) == 0)
		place += 4;
	if (rbd_spec_parse(place, sp, why, sizeof(why))) {
		log_err("rbd place %s: %s", place, why);
		return -EINVAL;
	}
	if (strcmp(sp->pool, r->pool) != 0) {
		log_err("rbd place %s: not in pool %s", place, r->pool);
		return -EXDEV;
	}
	return 0;
}

/* ------------------------------------------------------------- disks */

/*
 * A client's overlay kept as an RBD clone named DIR, by pristine before
 * overlays moved into ovl_ceph (2026-12-06; docs/images.md, "PC overlays
 * on RBD"): served as it is, so an upgrade loses no PC's data; its next
 * reset trashes it (rbd_discard) and the PC gets an overlay in the new
 * layout.
 */
static int legacy_clone_open(struct store_rbd *r, const struct rbd_spec *me, struct backend *golden,
			     const struct overlay_opts *oo, struct cow **out)
{
	struct rbd_disk_opts o = { .quota_bytes = oo ? oo->quota_bytes : 0 };
	char msg[512];
	int rc = rbd_disk_open(r->cl, r->pool, me->image, golden, &o, out, msg, sizeof(msg));

	if (rc)
		log_err("%s", msg);
	else
		log_notice("rbd %s/%s: an overlay kept as an RBD clone (an older pristine): served "
			   "as it is until the client's next reset", r->pool, me->image);
	return rc;
}

/*
 * A client's overlay at where (its DIR in ovl_ceph.h: the image part of
 * where), the overlay's own code and format over golden, made if it does
 * not exist.  oo as the lab gives it, but the local file system's floor
 * means nothing here (the pool's free space is the io's fs_free).
 */
static int client_open(struct store_rbd *r, const struct rbd_spec *me, struct backend *golden,
		       const struct overlay_opts *oo, struct cow **out)
{
	struct overlay_opts o = oo ? *oo : (struct overlay_opts){ 0 };
	struct overlay *ov;
	uint64_t size;
	int rc;

	if (ovl_ceph_exists(r->oc, me->image) == -ENOENT &&
	    rbd_image_stat(r->cl, r->pool, me->image, &size) == 0)
		return legacy_clone_open(r, me, golden, oo, out);
	o.store_floor_bytes = 0;
	o.io = ovl_ceph_io(r->oc);
	rc = overlay_open(me->image, golden, &o, &ov);
	if (rc) {
		log_err("rbd %s/%s: the overlay cannot be opened: %s", r->pool, me->image,
			strerror(-rc));
		return rc;
	}
	*out = overlay_cow(ov);
	return 0;
}

/*
 * A client's overlay (see client_open), or a draft: the clone at where,
 * on the version whose root is base_root, made if it does not exist (a
 * clone that exists is reused: a restart, or a crash after it was made),
 * then opened writable over golden.  A draft stays a clone because its
 * commit snapshots it: versions are RBD snapshots.
 */
static int rbd_overlay_open(struct lab_store *s, const char *where, const char *base_root,
			    struct backend *golden, const struct overlay_opts *oo, struct cow **out)
{
	struct store_rbd *r = rbd_of(s);
	struct rbd_disk_opts o = { .quota_bytes = oo ? oo->quota_bytes : 0 };
	struct rbd_spec me, parent;
	char msg[512];
	uint64_t size;
	int rc;

	*out = NULL;
	if ((rc = parse_place(r, where, &me)))
		return rc;
	if (is_client(r, me.image))
		return client_open(r, &me, golden, oo, out);
	if ((rc = parse_place(r, base_root, &parent)))
		return rc;
	if (!parent.snap[0]) {
		log_err("rbd %s: its version %s is no snapshot and cannot be cloned", where, base_root);
		return -EINVAL;
	}
	rc = rbd_image_stat(r->cl, r->pool, me.image, &size);
	if (rc == -ENOENT) {
		/* A clone needs its parent snapshot protected (the golden's
		 * too: Ceph then refuses to remove it under the clients). */
		rc = rbd_snap_ensure(r->cl, r->pool, parent.image, parent.snap, msg, sizeof(msg));
		if (rc == 0)
			rc = rbd_clone_make(r->cl, r->pool, parent.image, parent.snap, me.image, 0, msg,
					    sizeof(msg));
		if (rc == 0)
			log_info("rbd %s: cloned from %s@%s", where, parent.image, parent.snap);
		else if (rc == -EEXIST)
			rc = 0;
		else
			log_err("%s", msg);
	} else if (rc == 0 && size != golden->size) {
		log_err("rbd %s: %llu bytes, its version %llu: not a clone of it", where,
			(unsigned long long)size, (unsigned long long)golden->size);
		rc = -ESTALE;
	} else if (rc) {
		log_err("rbd %s: %s", where, strerror(-rc));
	}
	if (rc)
		return rc;
	rc = rbd_disk_open(r->cl, r->pool, me.image, golden, &o, out, msg, sizeof(msg));
	if (rc)
		log_err("%s", msg);
	return rc;
}

/* Versions here are roots (snapshots), never layers. */
static int rbd_layer_open(struct lab_store *s, const char *where, uint64_t size, const char *base_id,
			  struct ovl_layer **out)
{
	(void)s;
	(void)size;
	(void)base_id;
	log_err("rbd %s: a version on RBD is a snapshot, not a layer", where);
	*out = NULL;
	return -EOPNOTSUPP;
}

/*
 * Throw where (or a root) away in constant time.  A client's overlay:
 * ovl_ceph_discard, one RADOS op (a reset waits for this; its space goes
 * at the next purge).  A draft, a version or a flat copy: its snapshot
 * dropped first (-EBUSY while a clone of it exists, even one in the
 * trash), then the image moved to the RBD trash.  Only names this store
 * made are touched.
 */
static int rbd_discard(struct lab_store *s, const char *where, const char *label)
{
	struct store_rbd *r = rbd_of(s);
	char msg[512], own[RBD_NAME_MAX];
	struct rbd_spec sp;
	int rc;

	(void)label;   /* RBD's trash keeps the image's own name */
	if ((rc = parse_place(r, where, &sp)))
		return rc;
	snprintf(own, sizeof(own), "%s%s.", RBD_OWN_PREFIX, r->uid);
	if (strncmp(sp.image, own, strlen(own)) != 0) {
		log_err("rbd %s: not an image of ours, left alone", where);
		return -EPERM;
	}
	if (!sp.snap[0] && is_client(r, sp.image)) {
		rc = ovl_ceph_discard(r->oc, sp.image);
		if (rc == -ENOENT)   /* none, or a clone of an older pristine */
			rc = rbd_image_trash(r->cl, r->pool, sp.image);
		if (rc && rc != -ENOENT)
			log_err("rbd %s: the overlay cannot be discarded: %s", where, strerror(-rc));
		return rc;
	}
	rc = rbd_snap_drop(r->cl, r->pool, sp.image, sp.snap[0] ? sp.snap : FROZEN_SNAP, msg,
			   sizeof(msg));
	if (rc && rc != -ENOENT) {
		if (rc != -EBUSY)
			log_err("%s", msg);
		return rc;
	}
	rc = rbd_image_trash(r->cl, r->pool, sp.image);
	if (rc && rc != -ENOENT)
		log_err("rbd %s: cannot move it to the trash: %s", where, strerror(-rc));
	return rc;
}

/* Nothing is set aside in Ceph: a clone librbd opens is consistent. */
static int rbd_quarantine(struct lab_store *s, const char *where, char *to, size_t tolen)
{
	(void)s;
	if (tolen)
		to[0] = '\0';
	log_err("rbd %s: cannot be set aside in Ceph", where);
	return -EOPNOTSUPP;
}

/* The RBD trash (drafts, versions, flat copies) and the discarded
 * client overlays; the first error, after trying both. */
static int rbd_purge(struct lab_store *s)
{
	struct store_rbd *r = rbd_of(s);
	int rc = rbd_trash_purge_own(r->cl, r->pool);
	int rc2 = ovl_ceph_purge(r->oc);

	return rc ? rc : rc2;
}

/* ------------------------------------------------------------- roots */

static int rbd_root_open(struct lab_store *s, const char *root, struct backend **out, char *msg,
			 size_t msglen)
{
	struct store_rbd *r = rbd_of(s);
	struct rbd_spec sp;
	char id[96];
	int rc;

	if ((rc = parse_place(r, root, &sp))) {
		snprintf(msg, msglen, "not a snapshot in pool %s", r->pool);
		return rc;
	}
	return backend_rbd_open(r->cl, &sp, out, id, sizeof(id), msg, msglen);
}

/* The golden and flat copies stand alone; a frozen draft is a clone. */
static bool rbd_root_alone(struct lab_store *s, const char *root)
{
	struct store_rbd *r = rbd_of(s);
	char own[RBD_NAME_MAX];
	struct rbd_spec sp;

	if (parse_place(r, root, &sp))
		return true;
	snprintf(own, sizeof(own), "%s%s.L", RBD_OWN_PREFIX, r->uid);
	return strncmp(sp.image, own, strlen(own)) != 0;
}

/* The root of image name: rbd:POOL/NAME@FROZEN_SNAP. */
static int frozen_root(struct store_rbd *r, const char *name, char *out, size_t len)
{
	return snprintf(out, len, "rbd:%s/%s@%s", r->pool, name, FROZEN_SNAP) >= (int)len ?
		-ENAMETOOLONG : 0;
}

/*
 * Commit: the draft's clone gets a protected snapshot.  One a commit cut
 * short (a crash before image.json recorded it) left behind is stale -
 * the draft was written since - so it is dropped and taken again.
 */
static int rbd_freeze(struct lab_store *s, const char *where, char *root, size_t rootlen, char *msg,
		      size_t msglen)
{
	struct store_rbd *r = rbd_of(s);
	struct rbd_spec sp;
	int rc;

	if ((rc = parse_place(r, where, &sp))) {
		snprintf(msg, msglen, "%s is not a place in pool %s", where, r->pool);
		return rc;
	}
	rc = rbd_snap_drop(r->cl, r->pool, sp.image, FROZEN_SNAP, msg, msglen);
	if (rc && rc != -ENOENT)
		return rc;
	if ((rc = rbd_snap_ensure(r->cl, r->pool, sp.image, FROZEN_SNAP, msg, msglen)))
		return rc;
	if ((rc = frozen_root(r, sp.image, root, rootlen)))
		snprintf(msg, msglen, "name too long");
	return rc;
}

/*
 * Flatten version v: rbd_image_copy of its snapshot into a new flat
 * image, then its snapshot.  A copy a crash cut short (never recorded)
 * is thrown away and made again.
 */
static int rbd_flatten(struct lab_store *s, const char *image, unsigned v, const char *src, char *out,
		       size_t outlen, char *msg, size_t msglen)
{
	struct store_rbd *r = rbd_of(s);
	char what[32], dst[RBD_POOL_MAX + RBD_NAME_MAX + 2];
	struct rbd_spec from, to;
	int rc;

	(void)image;
	snprintf(what, sizeof(what), "flat-v%u", v);
	if ((rc = parse_place(r, src, &from)) || (rc = own_where(r, what, dst, sizeof(dst))) ||
	    (rc = parse_place(r, dst, &to))) {
		snprintf(msg, msglen, "bad place for the flat copy of %s", src);
		return rc;
	}
	rc = rbd_image_copy(r->cl, r->pool, from.image, from.snap, to.image, msg, msglen);
	if (rc == -EEXIST) {
		log_notice("rbd %s: left by an interrupted flatten, made again", dst);
		rc = rbd_discard(s, dst, "flat");
		if (rc == 0 || rc == -ENOENT)
			rc = rbd_image_copy(r->cl, r->pool, from.image, from.snap, to.image, msg, msglen);
		else
			snprintf(msg, msglen, "%s (left by an interrupted flatten) cannot be replaced: %s", dst,
				 strerror(-rc));
	}
	if (rc == 0)
		rc = rbd_snap_ensure(r->cl, r->pool, to.image, FROZEN_SNAP, msg, msglen);
	if (rc == 0 && (rc = frozen_root(r, to.image, out, outlen)))
		snprintf(msg, msglen, "name too long");
	return rc;
}

/* The overlays opened through r->oc are closed by now (the image's
 * disks go before its store). */
static void rbd_free(struct lab_store *s)
{
	ovl_ceph_free(rbd_of(s)->oc);
	free(rbd_of(s));
}

/* The lock of the draft's clone, or of a client overlay's data image. */
static int rbd_open_elsewhere(struct lab_store *s, const char *where, char *owner, size_t len)
{
	struct store_rbd *r = rbd_of(s);
	struct rbd_spec sp;
	int rc = parse_place(r, where, &sp);

	return rc ? rc : rbd_lock_elsewhere(r->cl, r->pool, sp.image, owner, len);
}

static const struct lab_store_ops rbd_ops = {
	.prepare = rbd_prepare,
	.clients_load = rbd_clients_load,
	.clients_save = rbd_clients_save,
	.image_prepare = rbd_image_prepare,
	.image_load = rbd_image_load,
	.image_save = rbd_image_save,
	.images_list = rbd_images_list,
	.bootset_save = rbd_bootset_save,
	.bootset_load = rbd_bootset_load,
	.bootset_remove = rbd_bootset_remove,
	.overlay_where = rbd_overlay_where,
	.xdisk_where = rbd_xdisk_where,
	.layer_where = rbd_layer_where,
	.overlays_list = rbd_overlays_list,
	.overlay_open = rbd_overlay_open,
	.layer_open = rbd_layer_open,
	.discard = rbd_discard,
	.quarantine = rbd_quarantine,
	.purge = rbd_purge,
	.root_open = rbd_root_open,
	.root_alone = rbd_root_alone,
	.freeze = rbd_freeze,
	.open_elsewhere = rbd_open_elsewhere,
	.flatten = rbd_flatten,
	.free = rbd_free,
};

struct lab_store *store_rbd_new(struct rbd_cluster *cl, const char *pool, const char *uid)
{
	struct store_rbd *r = calloc(1, sizeof(*r));
	char index[RBD_NAME_MAX], msg[512];
	int rc;

	if (!r)
		return NULL;
	r->base.ops = &rbd_ops;
	r->base.open_at_login = true;
	r->cl = cl;
	snprintf(r->pool, sizeof(r->pool), "%s", pool);
	r->uid = uid;
	snprintf(index, sizeof(index), "%s%s.overlays", RBD_OWN_PREFIX, uid);
	if ((rc = ovl_ceph_new(cl, r->pool, index, &r->oc, msg, sizeof(msg)))) {
		log_err("rbd pool %s: the clients' overlays cannot be kept there: %s", r->pool, msg);
		free(r);
		return NULL;
	}
	return &r->base;
}
