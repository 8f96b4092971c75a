/*
 * cow.h - a client's (or a draft's) writable copy-on-write disk over one
 * version of an image, as the lab sees it: a backend to serve, the space
 * it holds against a quota, a sticky error, and close or drop.
 *
 * Two kinds implement it: the local overlay (storage/overlay.h: a
 * directory in the state directory, overlay_cow) and the RBD clone
 * (storage/rbd_disk.h: a clone of the version's snapshot in Ceph,
 * rbd_disk_open).  The lab holds a struct cow * and never asks which.
 *
 * Threading: backend I/O from many threads; the other calls as the
 * implementation's header says (the lab makes them under its registry
 * lock); close/drop must not race with anything on the same cow.
 */
#ifndef PRISTINE_COW_H
#define PRISTINE_COW_H

#include <stdint.h>

#include "storage/backend.h"

struct cow;

struct cow_ops {
	/* The backend view (owned by the cow: never backend_close it). */
	struct backend *(*backend)(struct cow *c);
	/* Bytes of space it holds (for display and the quota). */
	uint64_t (*used_bytes)(const struct cow *c);
	/* Its sticky error: 0 when healthy, else -errno and *what (may be
	 * NULL) the step that failed (static text or NULL). */
	int (*error)(const struct cow *c, const char **what);
	/* Change the quota (0 = none); lowering it only refuses new space. */
	void (*set_quota)(struct cow *c, uint64_t quota_bytes);
	/* Flush, close and free (always); 0 or the sticky error. */
	int (*close)(struct cow *c);
	/* Close and free without flushing (about to be discarded). */
	void (*drop)(struct cow *c);
};

struct cow {
	const struct cow_ops *ops;
};

static inline struct backend *cow_backend(struct cow *c) { return c->ops->backend(c); }
static inline uint64_t cow_used_bytes(const struct cow *c) { return c->ops->used_bytes(c); }
static inline int cow_error(const struct cow *c, const char **what) { return c->ops->error(c, what); }
static inline void cow_set_quota(struct cow *c, uint64_t q) { c->ops->set_quota(c, q); }
static inline int cow_close(struct cow *c) { return c ? c->ops->close(c) : 0; }
static inline void cow_drop(struct cow *c) { if (c) c->ops->drop(c); }

#endif
