/*
 * store_rados.c - the registry's store of a gateway in a cluster
 * (store.h, store_rados.h): the records - client records, each image's
 * version record, the list of images - are rados_rec objects in the
 * cluster pool, shared by every gateway; everything that is a disk or a
 * local place (overlays of images still local, trash, quarantine) stays
 * with a local store over the state directory, to which those ops go.
 *
 * Objects (docs/cluster.md, "Shared records"):
 *   pristine.rec.clients        the client records (clients.json's text)
 *   pristine.rec.image.NAME     image NAME's version record (image.json's)
 *   pristine.rec.images         the index: {"images": [NAME...]}
 *   pristine.rec.notice         watched by every gateway; notified after
 *                               every change
 *   pristine.rec.lock           holds the cluster's change lock
 *   pristine.rec.bootset.NAME.v<N>  version N of image NAME's boot set
 *                               (lab/bootsets.h: binary, written whole,
 *                               no compare-and-swap: the last merge wins)
 *
 * The store keeps the RADOS version of every record it last read or
 * wrote, and saves only over that version (compare-and-swap): a save
 * over a record another gateway changed meanwhile fails -ECANCELED and
 * changes nothing.  An image record also says who saved it last, and
 * when ("saved_by", "saved_at"), for the message a gateway that lost a
 * race shows.
 */
#include "lab/store.h"
#include "lab/store_rados.h"
#include "storage/bootset.h"
#include "storage/rados_rec.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OID_CLIENTS "pristine.rec.clients"
#define OID_INDEX "pristine.rec.images"
#define OID_NOTICE "pristine.rec.notice"
#define OID_LOCK "pristine.rec.lock"
#define OID_IMAGE "pristine.rec.image."
#define OID_BOOTSET "pristine.rec.bootset."
/* Seconds the change lock outlives a gateway that died holding it. */
#define LOCK_LEASE_S 15
/* How long a notifier waits for the other gateways' acks. */
#define NOTIFY_TIMEOUT_MS 2000
#define INDEX_TRIES 20

struct known {
	char oid[OID_MAX];
	uint64_t ver;                 /* 0 = does not exist (as far as we know) */
	bool stale;                   /* saved merged: to be read again */
};

struct store_rados {
	struct lab_store base;        /* first: lab_store * is store_rados * */
	struct lab_store local;       /* disks and local places */
	struct rados_recs *recs;      /* owned */
	char gateway[64];
	pthread_mutex_t lock;         /* known[] */
	struct known *known;
	unsigned nknown, known_cap;
	uint64_t watch;
	bool watching;
	bool conflict;                /* a save lost its CAS (store_rados_conflict) */
	bool in_change;               /* the change lock is ours */
	char *clients_base;           /* the client records' text last read or saved */
};

static struct store_rados *ra(struct lab_store *s)
{
	return (struct store_rados *)s;
}

/* The entry of oid in known[], made (version 0) if missing; lock held.
 * NULL if out of memory. */
static struct known *known_of(struct store_rados *r, const char *oid)
{
	for (unsigned i = 0; i < r->nknown; i++)
		if (strcmp(r->known[i].oid, oid) == 0)
			return &r->known[i];
	if (r->nknown == r->known_cap) {
		unsigned cap = r->known_cap ? r->known_cap * 2 : 16;
		struct known *n = realloc(r->known, cap * sizeof(*n));
		if (!n)
			return NULL;
		r->known = n;
		r->known_cap = cap;
	}
	struct known *k = &r->known[r->nknown++];
	snprintf(k->oid, sizeof(k->oid), "%s", oid);
	k->ver = 0;
	k->stale = false;
	return k;
}

static void known_set(struct store_rados *r, const char *oid, uint64_t ver)
{
	pthread_mutex_lock(&r->lock);
	struct known *k = known_of(r, oid);
	if (k) {
		k->ver = ver;
		k->stale = false;
	}
	pthread_mutex_unlock(&r->lock);
}

/* oid holds more than this gateway has seen: moved() says so. */
static void known_stale(struct store_rados *r, const char *oid)
{
	pthread_mutex_lock(&r->lock);
	struct known *k = known_of(r, oid);
	if (k)
		k->stale = true;
	pthread_mutex_unlock(&r->lock);
}

/* The text last read or saved as the client records (lock held). */
static void base_set(struct store_rados *r, const char *text)
{
	char *n = text ? strdup(text) : NULL;

	pthread_mutex_lock(&r->lock);
	free(r->clients_base);
	r->clients_base = n;
	pthread_mutex_unlock(&r->lock);
}

static uint64_t known_get(struct store_rados *r, const char *oid)
{
	pthread_mutex_lock(&r->lock);
	struct known *k = known_of(r, oid);
	uint64_t v = k ? k->ver : 0;
	pthread_mutex_unlock(&r->lock);
	return v;
}

/* Read record oid as JSON, remembering its version.  -ENOENT (version
 * 0 remembered), -EBADMSG (logged) or -errno. */
static int load(struct store_rados *r, const char *oid, json_t **out)
{
	json_error_t jerr;
	uint64_t ver = 0;
	char *text;
	int rc = rados_rec_read(r->recs, oid, &text, &ver);

	*out = NULL;
	if (rc == -ENOENT) {
		known_set(r, oid, 0);
		if (strcmp(oid, OID_CLIENTS) == 0)
			base_set(r, NULL);
	}
	if (rc)
		return rc;
	known_set(r, oid, ver);
	if (strcmp(oid, OID_CLIENTS) == 0)
		base_set(r, text);
	*out = json_loads(text, 0, &jerr);
	if (!*out) {
		log_err("record %s in RADOS: %s (line %d)", oid, jerr.text, jerr.line);
		free(text);
		return -EBADMSG;
	}
	free(text);
	return 0;
}

/* Save text as record oid over the version last seen (CAS). */
static int save(struct store_rados *r, const char *oid, const char *text)
{
	uint64_t ver = 0, was = known_get(r, oid);
	int rc = rados_rec_write(r->recs, oid, text, was ? was : RADOS_REC_NEW, &ver);

	if (rc == -EEXIST || rc == -ENOENT)
		rc = -ECANCELED;   /* made or removed by another gateway meanwhile */
	if (rc == 0)
		known_set(r, oid, ver);
	if (rc == 0 && strcmp(oid, OID_CLIENTS) == 0)
		base_set(r, text);
	if (rc == -ECANCELED) {
		log_warn("record %s: changed on another gateway meanwhile; not saved", oid);
		pthread_mutex_lock(&r->lock);
		r->conflict = true;
		pthread_mutex_unlock(&r->lock);
	}
	return rc;
}

static int image_oid(const char *image, char *oid, size_t len)
{
	return snprintf(oid, len, "%s%s", OID_IMAGE, image) >= (int)len ? -ENAMETOOLONG : 0;
}

/* ------------------------------------------------------------ records */

static int ra_prepare(struct lab_store *s)
{
	return ra(s)->local.ops->prepare(&ra(s)->local);
}

static int ra_clients_load(struct lab_store *s, json_t **out)
{
	return load(ra(s), OID_CLIENTS, out);
}

/* The entries of a client records text as a new object keyed by
 * initiator (lower case); {} for NULL or a text that does not parse. */
static json_t *by_initiator(const char *text)
{
	json_t *root = text ? json_loads(text, 0, NULL) : NULL, *map = json_object(), *e;
	size_t i;

	json_array_foreach(json_object_get(root, "clients"), i, e) {
		const char *ini = json_string_value(json_object_get(e, "initiator"));
		char key[300];
		size_t j;
		if (!ini)
			continue;
		for (j = 0; ini[j] && j < sizeof(key) - 1; j++)
			key[j] = (char)((ini[j] >= 'A' && ini[j] <= 'Z') ? ini[j] + 32 : ini[j]);
		key[j] = '\0';
		json_object_set(map, key, e);
	}
	json_decref(root);
	return map;
}

/*
 * A three-way merge of the client records, entry by entry: what this
 * gateway changed since base (added, changed, removed) over theirs, the
 * records as they are now in RADOS; everything else as theirs has it.
 * A new text (free it), or NULL if out of memory.
 */
static char *merge_clients(const char *base, const char *ours, const char *theirs)
{
	json_t *b = by_initiator(base), *o = by_initiator(ours), *t = by_initiator(theirs);
	json_t *arr = json_array(), *root, *v;
	const char *k;
	char *text;

	json_object_foreach(o, k, v) {
		json_t *was = json_object_get(b, k);
		if (!was || !json_equal(was, v))
			json_object_set(t, k, v);          /* ours: added or changed here */
	}
	json_object_foreach(b, k, v)
		if (!json_object_get(o, k))
			json_object_del(t, k);             /* removed here */
	json_object_foreach(t, k, v)
		json_array_append(arr, v);
	root = json_pack("{s:i, s:o}", "version", 1, "clients", arr);
	text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	json_decref(b);
	json_decref(o);
	json_decref(t);
	return text;
}

/*
 * Saved over the version last seen.  Outside a cluster change (an
 * enrolment at login or boot, a scheduled reset: they cannot wait for the
 * change lock) a save that lost to another gateway's is merged, entry by
 * entry, with what is in RADOS now, and the records are marked to be
 * read again (the refresh brings the other gateway's entries in).
 */
static int ra_clients_save(struct lab_store *s, const char *text)
{
	struct store_rados *r = ra(s);
	bool stale;
	int rc;

	pthread_mutex_lock(&r->lock);
	struct known *k = known_of(r, OID_CLIENTS);
	stale = k && k->stale;
	pthread_mutex_unlock(&r->lock);
	/* Merged before and not read since: what this gateway holds lacks
	 * the other's entries, so a plain save would drop them - merge. */
	rc = stale && !r->in_change ? -ECANCELED : save(r, OID_CLIENTS, text);
	for (int i = 0; i < INDEX_TRIES && rc == -ECANCELED && !r->in_change; i++) {
		char *theirs = NULL, *base, *merged;
		uint64_t ver = 0;
		int lrc = rados_rec_read(r->recs, OID_CLIENTS, &theirs, &ver);

		if (lrc && lrc != -ENOENT)
			return lrc;
		pthread_mutex_lock(&r->lock);
		base = r->clients_base ? strdup(r->clients_base) : NULL;
		r->conflict = false;      /* merged: not the admin's conflict */
		pthread_mutex_unlock(&r->lock);
		merged = merge_clients(base, text, theirs);
		free(base);
		free(theirs);
		if (!merged)
			return -ENOMEM;
		known_set(r, OID_CLIENTS, lrc == -ENOENT ? 0 : ver);
		rc = save(r, OID_CLIENTS, merged);
		free(merged);
		if (rc == 0) {
			known_stale(r, OID_CLIENTS);
			base_set(r, text);    /* what this gateway holds */
			log_info("client records: merged with another gateway's change");
		}
	}
	return rc;
}

/* A local place too: an image's flattened files and imports stay there. */
static int ra_image_prepare(struct lab_store *s, const char *image, char *where, size_t len)
{
	return ra(s)->local.ops->image_prepare(&ra(s)->local, image, where, len);
}

static int ra_image_load(struct lab_store *s, const char *image, json_t **out)
{
	char oid[OID_MAX];
	int rc = image_oid(image, oid, sizeof(oid));

	return rc ? rc : load(ra(s), oid, out);
}

/* Add image to the index (CAS, retried while others add theirs). */
static int index_add(struct store_rados *r, const char *image)
{
	for (int i = 0; i < INDEX_TRIES; i++) {
		json_t *root = NULL, *arr, *e;
		size_t j;
		bool there = false;
		char *text;
		int rc = load(r, OID_INDEX, &root);

		if (rc == -ENOENT)
			root = json_pack("{s:[]}", "images");
		else if (rc)
			return rc;
		arr = json_object_get(root, "images");
		if (!json_is_array(arr)) {
			json_decref(root);
			return -EBADMSG;
		}
		json_array_foreach(arr, j, e)
			there = there || (json_is_string(e) && strcmp(json_string_value(e), image) == 0);
		if (there) {
			json_decref(root);
			return 0;
		}
		json_array_append_new(arr, json_string(image));
		text = json_dumps(root, JSON_SORT_KEYS);
		json_decref(root);
		if (!text)
			return -ENOMEM;
		rc = save(r, OID_INDEX, text);
		free(text);
		if (rc != -ECANCELED)
			return rc;
	}
	return -EBUSY;
}

/* The record, stamped with who saves it and when, saved over the
 * version last seen; a new one is added to the index. */
static int ra_image_save(struct lab_store *s, const char *image, const char *text)
{
	struct store_rados *r = ra(s);
	char oid[OID_MAX], *stamped;
	json_t *root;
	bool fresh;
	int rc;

	if ((rc = image_oid(image, oid, sizeof(oid))))
		return rc;
	if (!(root = json_loads(text, 0, NULL)))
		return -EINVAL;
	json_object_set_new(root, "saved_by", json_string(r->gateway));
	json_object_set_new(root, "saved_at", json_integer((json_int_t)time(NULL)));
	stamped = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	if (!stamped)
		return -ENOMEM;
	fresh = known_get(r, oid) == 0;
	rc = save(r, oid, stamped);
	free(stamped);
	if (rc == 0 && fresh)
		rc = index_add(r, image);
	return rc;
}

static void ra_images_list(struct lab_store *s, void (*fn)(void *arg, const char *image), void *arg)
{
	json_t *root = NULL, *e;
	size_t i;

	if (load(ra(s), OID_INDEX, &root))
		return;
	json_array_foreach(json_object_get(root, "images"), i, e)
		if (json_is_string(e))
			fn(arg, json_string_value(e));
	json_decref(root);
}

/* ---------------------------------------------- places: the local store */

static int ra_xdisk_where(struct lab_store *s, const char *image, const char *initiator,
			  unsigned version, char *out, size_t len)
{
	return ra(s)->local.ops->xdisk_where(&ra(s)->local, image, initiator, version, out, len);
}

static int ra_overlay_where(struct lab_store *s, const char *initiator, unsigned version, char *out,
			    size_t len)
{
	return ra(s)->local.ops->overlay_where(&ra(s)->local, initiator, version, out, len);
}

static int ra_layer_where(struct lab_store *s, const char *image, const char *layer, char *out,
			  size_t len)
{
	return ra(s)->local.ops->layer_where(&ra(s)->local, image, layer, out, len);
}

static void ra_overlays_list(struct lab_store *s,
			     void (*fn)(void *arg, const char *initiator, const char *name), void *arg)
{
	ra(s)->local.ops->overlays_list(&ra(s)->local, fn, arg);
}

static int ra_overlay_open(struct lab_store *s, const char *where, const char *base_root,
			   struct backend *golden, const struct overlay_opts *oo, struct cow **out)
{
	return ra(s)->local.ops->overlay_open(&ra(s)->local, where, base_root, golden, oo, out);
}

static int ra_layer_open(struct lab_store *s, const char *where, uint64_t size, const char *base_id,
			 struct ovl_layer **out)
{
	return ra(s)->local.ops->layer_open(&ra(s)->local, where, size, base_id, out);
}

static int ra_discard(struct lab_store *s, const char *where, const char *label)
{
	return ra(s)->local.ops->discard(&ra(s)->local, where, label);
}

static int ra_quarantine(struct lab_store *s, const char *where, char *to, size_t tolen)
{
	return ra(s)->local.ops->quarantine(&ra(s)->local, where, to, tolen);
}

static int ra_purge(struct lab_store *s)
{
	return ra(s)->local.ops->purge(&ra(s)->local);
}

static int ra_root_open(struct lab_store *s, const char *root, struct backend **out, char *msg,
			size_t msglen)
{
	return ra(s)->local.ops->root_open(&ra(s)->local, root, out, msg, msglen);
}

static bool ra_root_alone(struct lab_store *s, const char *root)
{
	return ra(s)->local.ops->root_alone(&ra(s)->local, root);
}

static int ra_freeze(struct lab_store *s, const char *where, char *root, size_t rootlen, char *msg,
		     size_t msglen)
{
	return ra(s)->local.ops->freeze(&ra(s)->local, where, root, rootlen, msg, msglen);
}

static int bootset_oid(const char *image, unsigned v, char *oid, size_t len)
{
	return snprintf(oid, len, "%s%s.v%u", OID_BOOTSET, image, v) >= (int)len ? -ENAMETOOLONG : 0;
}

static int ra_bootset_save(struct lab_store *s, const char *image, unsigned v, const uint8_t *buf,
			   size_t len)
{
	char oid[OID_MAX];
	int rc = bootset_oid(image, v, oid, sizeof(oid));

	return rc ? rc : rados_rec_write_bytes(ra(s)->recs, oid, buf, len);
}

static int ra_bootset_load(struct lab_store *s, const char *image, unsigned v, uint8_t **buf,
			   size_t *len)
{
	char oid[OID_MAX];
	int rc = bootset_oid(image, v, oid, sizeof(oid));

	return rc ? rc : rados_rec_read_bytes(ra(s)->recs, oid, BOOTSET_FILE_MAX, buf, len);
}

static int ra_bootset_remove(struct lab_store *s, const char *image, unsigned v)
{
	char oid[OID_MAX];
	int rc = bootset_oid(image, v, oid, sizeof(oid));

	return rc ? rc : rados_rec_remove(ra(s)->recs, oid, RADOS_REC_ANY);
}

static const struct lab_store_ops rados_ops = {
	.prepare = ra_prepare,
	.clients_load = ra_clients_load,
	.clients_save = ra_clients_save,
	.image_prepare = ra_image_prepare,
	.image_load = ra_image_load,
	.image_save = ra_image_save,
	.images_list = ra_images_list,
	.overlay_where = ra_overlay_where,
	.xdisk_where = ra_xdisk_where,
	.layer_where = ra_layer_where,
	.overlays_list = ra_overlays_list,
	.overlay_open = ra_overlay_open,
	.layer_open = ra_layer_open,
	.discard = ra_discard,
	.quarantine = ra_quarantine,
	.purge = ra_purge,
	.root_open = ra_root_open,
	.root_alone = ra_root_alone,
	.freeze = ra_freeze,
	.bootset_save = ra_bootset_save,
	.bootset_load = ra_bootset_load,
	.bootset_remove = ra_bootset_remove,
};

struct lab_store *store_rados_new(struct rbd_cluster *cl, const char *pool, const char *state,
				  const char *gateway, char *msg, size_t msglen)
{
	struct store_rados *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	r->base.ops = &rados_ops;
	if (store_local_init(&r->local, state) ||
	    snprintf(r->base.root, sizeof(r->base.root), "%s", state) >= (int)sizeof(r->base.root)) {
		snprintf(msg, msglen, "state directory path too long");
		free(r);
		return NULL;
	}
	snprintf(r->gateway, sizeof(r->gateway), "%s", gateway);
	if (rados_recs_open(cl, pool, &r->recs, msg, msglen)) {
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	return &r->base;
}

void store_rados_free(struct lab_store *s)
{
	struct store_rados *r = ra(s);

	if (!s)
		return;
	if (r->watching)
		rados_rec_unwatch(r->recs, r->watch);
	rados_recs_close(r->recs);
	pthread_mutex_destroy(&r->lock);
	free(r->known);
	free(r->clients_base);
	free(r);
}

/* ------------------------------------------------ the cluster's change */

int store_rados_lock(struct lab_store *s, unsigned wait_ms, char *holder, size_t len)
{
	struct store_rados *r = ra(s);
	int rc = rados_rec_lock(r->recs, OID_LOCK, r->gateway, r->gateway, LOCK_LEASE_S, wait_ms,
				holder, len);

	if (rc == 0)
		r->in_change = true;
	return rc;
}

void store_rados_unlock(struct lab_store *s)
{
	ra(s)->in_change = false;
	rados_rec_unlock(ra(s)->recs, OID_LOCK, ra(s)->gateway);
}

bool store_rados_in_change(struct lab_store *s)
{
	return ra(s)->in_change;
}

void store_rados_notify(struct lab_store *s)
{
	int rc = rados_rec_notify(ra(s)->recs, OID_NOTICE, NOTIFY_TIMEOUT_MS);

	if (rc && rc != -ETIMEDOUT)
		log_warn("cluster: change notice not sent (%s): the other gateways see the change "
			 "at their next check", strerror(-rc));
}

int store_rados_watch(struct lab_store *s, void (*fn)(void *arg), void *arg)
{
	struct store_rados *r = ra(s);
	int rc = rados_rec_watch(r->recs, OID_NOTICE, fn, arg, &r->watch);

	r->watching = rc == 0;
	return rc;
}

/* Whether oid's version in RADOS is not the one we last saw. */
static bool moved(struct store_rados *r, const char *oid)
{
	uint64_t ver = 0;
	int rc = rados_rec_version(r->recs, oid, &ver);

	if (rc == -ENOENT)
		ver = 0;
	else if (rc)
		return true;   /* cannot tell: read it again */
	pthread_mutex_lock(&r->lock);
	struct known *k = known_of(r, oid);
	bool stale = k && k->stale;
	pthread_mutex_unlock(&r->lock);
	return stale || ver != known_get(r, oid);
}

bool store_rados_clients_moved(struct lab_store *s)
{
	return moved(ra(s), OID_CLIENTS);
}

bool store_rados_index_moved(struct lab_store *s)
{
	return moved(ra(s), OID_INDEX);
}

bool store_rados_image_moved(struct lab_store *s, const char *image)
{
	char oid[OID_MAX];

	return image_oid(image, oid, sizeof(oid)) == 0 && moved(ra(s), oid);
}

bool store_is_rados(const struct lab_store *s)
{
	return s && s->ops == &rados_ops;
}

bool store_rados_conflict(struct lab_store *s)
{
	struct store_rados *r = ra(s);
	bool was;

	pthread_mutex_lock(&r->lock);
	was = r->conflict;
	r->conflict = false;
	pthread_mutex_unlock(&r->lock);
	return was;
}
