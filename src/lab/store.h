/*
 * store.h - where the lab keeps its state, behind one small interface:
 * the client records, each image's version record, the overlays of
 * clients and drafts, frozen layers, the trash and quarantine.  The
 * domain code (clients, images, drafts, disks) calls through it and never
 * names a file; today's local state directory (store_local.c, laid out by
 * statedir.h) is the first implementation, and a shared store (Ceph
 * RADOS) can be another without touching the domain.
 *
 * Each image has its store (image->store): the registry's, or one of its
 * own (an image on Ceph RBD: store_rbd.c) that places its disks and
 * versions elsewhere and hands records to the registry's.
 *
 * Places are named by a `where` string the store hands out (for the
 * local store, a path): store->ops->overlay_where gives a client's,
 * layer_where a draft's or a version's layer.  Records are JSON texts the
 * domain makes and parses; the store only keeps them, each replaced
 * atomically.
 *
 * Every op returns 0 or -errno; an op that loads returns -ENOENT when the
 * record does not exist.  Ops log nothing unless said: the caller names
 * what failed.  The registry lock serialises the calls, except purge
 * (the purger thread) which is safe alongside the others.
 */
#ifndef PRISTINE_LAB_STORE_H
#define PRISTINE_LAB_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct backend;
struct cow;
struct overlay_opts;
struct ovl_layer;
struct lab_store;

#define STORE_WHERE_MAX PATH_MAX

struct lab_store_ops {
	/* Make ready (folders...).  Idempotent. */
	int (*prepare)(struct lab_store *s);
	/* The client records: *out is a new reference (json_decref it).
	 * -EBADMSG (logged, with where) when it exists but does not parse. */
	int (*clients_load)(struct lab_store *s, json_t **out);
	int (*clients_save)(struct lab_store *s, const char *text);
	/* Image name's version record; image_prepare makes its place. */
	int (*image_prepare)(struct lab_store *s, const char *image, char *where, size_t len);
	int (*image_load)(struct lab_store *s, const char *image, json_t **out);
	int (*image_save)(struct lab_store *s, const char *image, const char *text);
	/* Call fn for every image that has a record (any order). */
	void (*images_list)(struct lab_store *s, void (*fn)(void *arg, const char *image), void *arg);
	/* Where a client's overlay on version of the store's image is (a
	 * store may ignore version: the local one does) / a layer of image
	 * is. */
	int (*overlay_where)(struct lab_store *s, const char *initiator, unsigned version, char *out,
			     size_t len);
	int (*layer_where)(struct lab_store *s, const char *image, const char *layer, char *out,
			   size_t len);
	/* Where a PC's overlay on image, given to it as an extra disk
	 * (lab/xdisk.h), is: locally STATE/disks/<image>/<escaped initiator>
	 * (the image's folder made here), on RBD the same as overlay_where
	 * (the image's own store). */
	int (*xdisk_where)(struct lab_store *s, const char *image, const char *initiator,
			   unsigned version, char *out, size_t len);
	/* Call fn for the initiator of every client overlay kept (and for
	 * each place that is not one, with initiator NULL and its name). */
	void (*overlays_list)(struct lab_store *s,
			      void (*fn)(void *arg, const char *initiator, const char *name), void *arg);
	/* Open (creating) an overlay at where over golden (overlay.h),
	 * as the lab holds it (cow.h).  base_root: the root of the version
	 * golden reads (see root_open; "" when it has none), which a store
	 * may build the overlay on (RBD: its clone's parent snapshot); an
	 * overlay that exists is reused.  oo's store floor is the local
	 * file system's: a store elsewhere ignores it. */
	int (*overlay_open)(struct lab_store *s, const char *where, const char *base_root,
			    struct backend *golden, const struct overlay_opts *oo, struct cow **out);
	/* Open the frozen layer at where (chain.h). */
	int (*layer_open)(struct lab_store *s, const char *where, uint64_t size, const char *base_id,
			  struct ovl_layer **out);
	/* Throw where away in constant time (label: what it was, for the
	 * admin reading the trash); -ENOENT if it does not exist. */
	int (*discard)(struct lab_store *s, const char *where, const char *label);
	/* Keep where aside, never deleted; its new place in to. */
	int (*quarantine)(struct lab_store *s, const char *where, char *to, size_t tolen);
	/* Reclaim the space of everything discarded.  Slow. */
	int (*purge)(struct lab_store *s);

	/* A version's ROOT (images.h: its whole content in one place; a
	 * string the store hands out and image.json records).  Open root
	 * read-only: *out (backend_close it).  -errno with msg. */
	int (*root_open)(struct lab_store *s, const char *root, struct backend **out, char *msg,
			 size_t msglen);
	/* Whether root stands alone (true), or its content still reads
	 * through its parent version's (an RBD clone's snapshot). */
	bool (*root_alone)(struct lab_store *s, const char *root);
	/* A draft at where becomes a frozen version (commit; it is closed):
	 * root gets the root the store made of it, or "" when the version is
	 * read as a layer (layer_open).  Idempotent: a commit that a crash
	 * cut short is done again whole.  0 or -errno with msg. */
	int (*freeze)(struct lab_store *s, const char *where, char *root, size_t rootlen, char *msg,
		      size_t msglen);
	/* Optional (NULL: the domain copies the version into a file,
	 * image_jobs.c): make a standalone root holding the content of
	 * version v of image, read now from root src; its new root into
	 * out.  A leftover of an interrupted flatten is replaced.  Slow. */
	int (*flatten)(struct lab_store *s, const char *image, unsigned v, const char *src, char *out,
		       size_t outlen, char *msg, size_t msglen);
	/* Optional (NULL: never): whether the disk at where is open for
	 * writing by another gateway of a cluster (its lock in Ceph held by
	 * another live client): 1 and owner = that client, 0, or -errno. */
	int (*open_elsewhere)(struct lab_store *s, const char *where, char *owner, size_t len);
	/* A version's boot set file (storage/bootset.h: small, binary),
	 * kept with version v of image and replaced atomically: locally
	 * STATE/images/<image>/bootset-v<v> (tmp, fsync, rename, fsync of the
	 * folder); in a cluster one RADOS object per version, written whole.
	 * load: *buf (free it), *len; -ENOENT when there is none, -EFBIG
	 * over BOOTSET_FILE_MAX.  remove: -ENOENT when none.  An image's own
	 * store (RBD) passes them to its records store.  Optional (NULL:
	 * boot sets are not kept and are learned again after a restart). */
	int (*bootset_save)(struct lab_store *s, const char *image, unsigned v, const uint8_t *buf,
			    size_t len);
	int (*bootset_load)(struct lab_store *s, const char *image, unsigned v, uint8_t **buf,
			    size_t *len);
	int (*bootset_remove)(struct lab_store *s, const char *image, unsigned v);
	/* Optional: free s (a store an image made for itself). */
	void (*free)(struct lab_store *s);
};

struct lab_store {
	const struct lab_store_ops *ops;
	char root[PATH_MAX];          /* the local store's state directory */
	/* Where a store that only places an image's disks keeps the records
	 * (NULL: itself); set by image_load. */
	struct lab_store *records;
	/* A client's disk is opened again at its next login after a reset,
	 * not at once: the RBD store's clone costs round trips that a reset
	 * need not wait for (docs/images.md, "Reset on RBD"). */
	bool open_at_login;
};

/* A local store over the state directory state (not created yet:
 * ops->prepare does).  -ENAMETOOLONG if state does not fit. */
int store_local_init(struct lab_store *s, const char *state);

struct rbd_cluster;
/*
 * A store for one image on Ceph RBD (store_rbd.c): its drafts, versions
 * and client overlays are images, snapshots and clones in pool, named
 * RBD_OWN_PREFIX + uid (the image's; borrowed, filled in by image_load)
 * + what they are.  Records go to s->records.  cl is borrowed.  NULL if
 * out of memory; release with ops->free.
 */
struct lab_store *store_rbd_new(struct rbd_cluster *cl, const char *pool, const char *uid);
/*
 * The registry's store of a gateway in a cluster (store_rados.c,
 * store_rados.h): the records in RADOS objects of pool through cl
 * (borrowed), shared by every gateway, saved with compare-and-swap on
 * the version last read (-ECANCELED when another gateway changed one
 * meanwhile); the local places in state.  gateway names this one (the
 * change lock's holder, an image record's "saved_by").  NULL with msg;
 * release with store_rados_free.
 */
struct lab_store *store_rados_new(struct rbd_cluster *cl, const char *pool, const char *state,
				  const char *gateway, char *msg, size_t msglen);

#endif
