/*
 * store.h - where the lab keeps its state, behind one small interface:
 * the client records, each image's version record, the overlays of
 * clients and drafts, frozen layers, the trash and quarantine.  The
 * domain code (clients, images, drafts, disks) calls through it and never
 * names a file; today's local state directory (store_local.c, laid out by
 * statedir.h) is the first implementation, and a shared store (Ceph
 * RADOS) can be another without touching the domain.
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
	/* Where a client's overlay is / a layer of image is. */
	int (*overlay_where)(struct lab_store *s, const char *initiator, char *out, size_t len);
	int (*layer_where)(struct lab_store *s, const char *image, const char *layer, char *out,
			   size_t len);
	/* Call fn for the initiator of every client overlay kept (and for
	 * each place that is not one, with initiator NULL and its name). */
	void (*overlays_list)(struct lab_store *s,
			      void (*fn)(void *arg, const char *initiator, const char *name), void *arg);
	/* Open (creating) an overlay at where over golden (overlay.h),
	 * as the lab holds it (cow.h). */
	int (*overlay_open)(struct lab_store *s, const char *where, struct backend *golden,
			    const struct overlay_opts *oo, struct cow **out);
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
};

struct lab_store {
	const struct lab_store_ops *ops;
	char root[PATH_MAX];          /* the local store's state directory */
};

/* A local store over the state directory state (not created yet:
 * ops->prepare does).  -ENAMETOOLONG if state does not fit. */
int store_local_init(struct lab_store *s, const char *state);

#endif
