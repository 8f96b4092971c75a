/*
 * images.h - golden images and their versions (the catalogue).
 *
 * An image is served under one target.  Its content has VERSIONS:
 *   v1        the source file (raw file or block device, opened read-only);
 *   v2, v3... each a frozen layer (a committed draft: an overlay directory
 *             in STATE/images/NAME/layers/) on top of its parent version.
 * A version may also have a ROOT file holding its whole content (v1's is
 * the source; `image flatten` writes one for the current version), where
 * the chain of layers below it stops.  The image's store (store.h) says
 * what a root is: a file here, or a snapshot in Ceph for an image on RBD,
 * where every version is a root (a clone's snapshot, still reading its
 * parent's in Ceph until flattened) and no layer is local.  A version is read through a chain
 * backend (storage/chain.h) that resolves its layers once.
 *
 * One version is CURRENT: clients that start (new, or reset) get it, and
 * keep the version they started on until their next reset (their overlay
 * records it).  A DRAFT is a writable overlay on the current version,
 * served only to one maintenance initiator; commit turns it into the next
 * version (which becomes current).  Rollback makes an older version
 * current.  Nothing is ever deleted while a client, a draft or a newer
 * version depends on it.
 *
 * Persistence: STATE/images/NAME/image.json, replaced atomically (tmp,
 * fsync, rename, fsync of the directory); each change's single rename is
 * its commit point.  Files a crash leaves unreferenced (a layer of a
 * draft never recorded, a flatten's *.tmp) are moved to STATE/trash at
 * start.
 *
 * Locking: everything here is protected by the registry lock (clients.h)
 * unless said otherwise.
 */
#ifndef PRISTINE_IMAGES_H
#define PRISTINE_IMAGES_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "lab/disk.h"
#include "lab/xdisk.h"
#include "proto/iscsi.h"
#include "storage/backend.h"
#include "storage/bootset.h"
#include "storage/chain.h"

#include <jansson.h>

#define IMAGE_MSG_MAX 256
#define IMAGE_NAME_MAX 64

enum image_origin { IMG_QUICK, IMG_CONFIG, IMG_API };

struct version {
	unsigned num;                 /* 1, 2, ... */
	unsigned parent;              /* 0 for v1 */
	int64_t time;                 /* unix time it was made */
	char message[IMAGE_MSG_MAX];
	char layer[64];               /* its layer dir under the image dir, "" for v1 */
	char root[PATH_MAX];          /* a file with its whole content, "" if none */
	/* runtime, opened on first use */
	struct backend *root_be;      /* opened root (not v1's: that is image->be) */
	struct backend *old_root_be;  /* the root a flatten replaced, closed with the image */
	struct ovl_layer *ol;         /* opened layer */
	struct backend *be;           /* the resolved chain */
	unsigned users;               /* clients/drafts/jobs reading it */
	unsigned *walk, nwalk;        /* versions whose files be reads (its layers, its root's) */
	bool deleted;                 /* removed by image delete; its number is not reused */
	/* Warm boots (lab/bootsets.h): its boot set (loaded at image_load,
	 * freed at image_close), and the key of its prefetch job (a heap
	 * token made at its first prefetch: versions[] moves when a version
	 * is added, a job's key must not; freed at image_close) */
	struct bootset bs;
	void *pf_key;
	/* its set's bytes in memory as last counted, when (monotonic ns,
	 * 0 = never) and how far its prefetch had read then: counted again
	 * after BOOTSET_RESIDENT_TTL_NS or once the prefetch read more */
	uint64_t res_bytes, res_pf_bytes;
	int64_t res_at_ns;
	bool res_known;
};

/* An image's draft: its disk's overlay is the future layer. */
struct draft {
	struct disk disk;             /* disk.initiator is the maintenance client */
	char layer[24];               /* its layer directory name ("L<n>") */
};

struct image {
	char name[IMAGE_NAME_MAX];
	char target[ISCSI_NAME_MAX];  /* the target name it is served under */
	char path[PATH_MAX];          /* the source (v1): absolute, or rbd:POOL/IMAGE[@SNAP] */
	struct backend *be;           /* the source, opened read-only */
	/* The shared read cache (storage/cache.h) its versions on RBD are
	 * read through, set before they are opened; borrowed; NULL = none. */
	struct rcache *rcache;
	uint32_t block_size;
	char source_id[128];          /* identity of the source: path, size, mtime */
	char uid[17];                 /* random, made when the image was first seen */
	char dir[PATH_MAX];           /* STATE/images/NAME (where the store keeps it) */
	struct lab_store *store;      /* the registry's, set by image_load */
	enum image_origin origin;
	struct version *versions;     /* versions[i].num == i + 1 */
	unsigned nversions, current;
	struct draft *draft;          /* the open draft, or NULL */
	unsigned draft_base;          /* the version the draft is on */
	int64_t draft_opened;
	unsigned next_layer;          /* for naming layer directories */
	bool busy;                    /* a flatten runs */
	/* A gateway of a cluster: what became of the draft another gateway
	 * committed or dropped ("it was committed as v3 by gateway gw1 at
	 * 17:02:11"), "" = nothing to say; for the refusal of a late verb. */
	char draft_fate[160];
	/* Extra disks (lab/xdisk.h).  group: the attachments every PC of this
	 * image gets (LUN 1.. in this order), those of the configuration file
	 * first (group_config[i]), then the API's (kept in image.json).
	 * disk_policy / disk_quota: how this image is given as an extra disk
	 * when an attachment does not say. */
	struct xdisk_decl group[XDISK_MAX];
	bool group_config[XDISK_MAX];
	unsigned ngroup;
	enum xdisk_policy disk_policy;
	uint64_t disk_quota;
	struct iscsi_target tgt;
	struct iostats io;            /* its PCs' and draft's traffic since start (metrics) */
};

struct registry;
struct lab_store;

/* Bytes version v's frozen layer holds on disk (its data file's
 * allocated blocks); 0 for the root version or when unknown. */
uint64_t image_layer_bytes(const struct image *img, const struct version *v);

/*
 * Open the source of an image read-only and set name, target, path,
 * block size and source identity (not yet its versions).  0 or -errno,
 * logged.
 */
int image_open_source(struct image *img, const char *name, const char *path, const char *target,
		      uint32_t block_size);
/* img->path of an image whose source is on Ceph RBD starts with this. */
#define IMAGE_RBD_PREFIX "rbd:"
struct rbd_cluster;
/*
 * The same for a source on Ceph RBD: spec is POOL/IMAGE[@SNAP], opened
 * read-only through cl (borrowed: it must outlive the image); path
 * becomes "rbd:SPEC", the source identity the pool, image and snapshot
 * ids and the size.  Versions, drafts, flatten and export work on it as
 * on a file: a chain's root may be any backend (storage/chain.h), and
 * every layer and flattened file stays in the state directory.  When
 * img->rcache is set and spec names a snapshot, the source is read
 * through it (wrapped once here, so every client of every version shares
 * its chunks; a head may change, so it is not cached).  0 or -errno,
 * logged.
 */
int image_open_rbd(struct image *img, const char *name, struct rbd_cluster *cl, const char *spec,
		   const char *target, uint32_t block_size);
/*
 * Load (or create) the versions of img from STATE/images/NAME and clean
 * up what a crash left.  Refuses (-ESTALE, logged) when the source changed
 * while versions were built on it.  reg->state must be set.
 */
int image_load(struct registry *reg, struct image *img);
/* Images added through the API (origin api) found in STATE/images:
 * opened, loaded and appended to reg.  Errors are logged; they are skipped. */
void images_load_added(struct registry *reg);
/* Save img's image.json (atomic).  0 or -errno (logged). */
int image_save(struct registry *reg, struct image *img);
/*
 * A gateway of a cluster (lab/records.c): bring img in line with root,
 * its record as another gateway saved it - versions appended or deleted,
 * the current version, the draft made (recorded here, opened at its
 * maintenance client's login) or committed / dropped (closed here, its
 * place left to the gateway that did it; img->draft_fate says what
 * happened).  Lock held.  0 or -EBADMSG (logged: nothing changed).
 */
int image_refresh(struct registry *reg, struct image *img, json_t *root);
/* Close every version's files (at exit). */
void image_close(struct image *img);

/*
 * An image added through the API on Ceph RBD (image_rbd.c): spec is
 * POOL/IMAGE@SNAP (a snapshot: a head changes under the clients),
 * opened through reg->ceph behind reg->rcache.  -ENOTCONN when the
 * daemon is not connected to Ceph, -EINVAL for a bad spec, -ENOENT for
 * no such pool, image or snapshot; msg says which.
 */
int image_open_added_rbd(struct registry *reg, struct image *img, const char *name,
			 const char *spec, const char *target, uint32_t block_size, char *msg,
			 size_t msglen);
struct job;
/* Whether an import into pool can start: connected to Ceph, the pool
 * there.  0, -ENOTCONN, -EINVAL or -ENOENT with msg (image_rbd.c). */
int image_rbd_import_check(struct registry *reg, const char *pool, char *msg, size_t msglen);
/*
 * The Ceph half of an import (image_rbd.c's header has the steps and
 * what a crash leaves): the raw file raw becomes a new RBD image in
 * pool, snapshot v1, added as image name (block_size), raw removed.
 * Progress from base of total.  Lock not held.  0 or -errno with msg;
 * on failure nothing is left in Ceph.
 */
int image_rbd_import(struct registry *reg, struct job *j, const char *name, const char *pool,
		     const char *raw, uint32_t block_size, uint64_t base, uint64_t total, char *msg,
		     size_t msglen);
/* At start: what interrupted imports into Ceph left, removed. */
void image_rbd_sweep(struct registry *reg);
/* Open a version's root (not v1's) read-only through img's store, behind
 * the shared read cache when it is in Ceph.  0 and *out, or -errno with
 * msg. */
int image_root_open(struct image *img, const char *root, struct backend **out, char *msg,
		    size_t msglen);
/* Identity a client overlay or a layer over version v records. */
void image_version_id(const struct image *img, unsigned v, char *out, size_t len);
/*
 * The backend of version v, resolved on first use; takes a use (release
 * with image_version_put).  0 or -errno with msg.
 */
int image_version_get(struct image *img, unsigned v, struct backend **be, char *msg, size_t msglen);
void image_version_put(struct image *img, unsigned v);
/*
 * After version v got a root file (flatten): re-resolve every open chain
 * that reads through v so it reads v's new file instead (the content is
 * the same).  Lock held.
 */
void image_reresolve(struct image *img, unsigned v);

/* Who depends on version v: clients on it, a draft on it, versions whose
 * chain goes through it.  Filled into a JSON array by the ops. */

/*
 * The life cycle (each persisted before it returns; 0 or -errno with msg;
 * -ENOENT unknown image/version, -EEXIST a draft exists, -EINVAL bad
 * argument or no draft, -EBUSY the maintenance client is online).  A
 * refusal's msg says what lifts it (--force only when it would).
 * edit, commit and discard also fill msg on success, with a note for the
 * admin or "": what happens to the maintenance client's own disk on this
 * image - kept aside at edit, discarded at commit (the client moves to
 * the new version), given back at discard (image_draft.c).
 */
/* image_add's path is an absolute file, or rbd:POOL/IMAGE@SNAP (a
 * snapshot in Ceph, through reg->ceph: -ENOTCONN when the daemon has no
 * ceph-conf).  Recorded (origin api) and served again after a restart. */
int image_add(struct registry *reg, const char *name, const char *path, const char *target,
	      uint32_t block_size, char *msg, size_t msglen);
int image_edit(struct registry *reg, const char *name, const char *client, bool force,
	       char *msg, size_t msglen);
int image_commit(struct registry *reg, const char *name, const char *message, bool force,
		 unsigned *newv, char *msg, size_t msglen);
int image_discard(struct registry *reg, const char *name, bool force, char *msg, size_t msglen);
int image_rollback(struct registry *reg, const char *name, unsigned v, char *msg, size_t msglen);
/*
 * Delete version v and free its space: refused (-EBUSY, naming them) while
 * anything depends on it - it is current, a client or the draft is on it,
 * a job reads it, another version reads through its layer or root file -
 * and for v1 (the source; -EINVAL).  Persisted first, then its files go to
 * the trash.
 */
int image_delete(struct registry *reg, const char *name, unsigned v, char *msg, size_t msglen);
/* Whether version v's content is one root that stands alone (a file,
 * the golden, a flat RBD copy; not a clone's snapshot). */
bool image_version_flat(const struct image *img, const struct version *v);
/* Whether reading version u goes through version v's files.  Lock held. */
bool image_version_needs(const struct image *img, unsigned u, unsigned v);

/* Background jobs (jobs.h): 0 and *job_id, or -errno with msg. */
int image_flatten_start(struct registry *reg, const char *name, unsigned *job_id,
			char *msg, size_t msglen);
int image_export_start(struct registry *reg, const char *name, unsigned v, const char *file,
		       const char *format, bool overwrite, unsigned *job_id, char *msg, size_t msglen);
/* Import file (any qemu-img format) as image name: into a local file in
 * STATE/imported, or, when pool is set, into a new RBD image in pool
 * that pristine owns (image_rbd.c); NULL or "" = local. */
int image_import_start(struct registry *reg, const char *name, const char *file,
		       const char *format, uint32_t block_size, const char *pool, unsigned *job_id,
		       char *msg, size_t msglen);

#endif
