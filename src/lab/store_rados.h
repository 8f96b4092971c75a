/*
 * store_rados.h - what the registry of a gateway in a cluster needs from
 * its store beyond store.h (store_rados.c): the cluster's change lock,
 * the change notice, and whether a record moved since this gateway last
 * read or wrote it.  Every call takes a store made by store_rados_new
 * (store.h); store_is_rados tells.
 */
#ifndef PRISTINE_LAB_STORE_RADOS_H
#define PRISTINE_LAB_STORE_RADOS_H

#include <stdbool.h>
#include <stddef.h>

struct lab_store;

/* Longest RADOS object name of a record. */
#define OID_MAX 128

bool store_is_rados(const struct lab_store *s);
/* Unwatch, close, free.  NULL is a no-op. */
void store_rados_free(struct lab_store *s);
/*
 * Take the cluster's change lock for this gateway (a lease that expires
 * by itself if the gateway dies), waiting up to wait_ms.  0, -EBUSY with
 * holder = the gateway holding it, or -errno.
 */
int store_rados_lock(struct lab_store *s, unsigned wait_ms, char *holder, size_t len);
void store_rados_unlock(struct lab_store *s);
/* Tell every gateway (this one too) that the records changed.  Logged
 * when it fails; the others then see it at their next periodic check. */
void store_rados_notify(struct lab_store *s);
/* fn(arg) on a librados thread after every notice (and after a lost
 * watch was set up again).  0 or -errno. */
int store_rados_watch(struct lab_store *s, void (*fn)(void *arg), void *arg);
/* Whether the client records / the image index / image's record changed
 * in RADOS since this store last read or wrote it (true when it cannot
 * tell). */
bool store_rados_clients_moved(struct lab_store *s);
bool store_rados_index_moved(struct lab_store *s);
bool store_rados_image_moved(struct lab_store *s, const char *image);
/* Whether this gateway holds the change lock now. */
bool store_rados_in_change(struct lab_store *s);
/* Whether a save lost its compare-and-swap since the last call. */
bool store_rados_conflict(struct lab_store *s);

#endif
