/*
 * image_draft.c - the maintenance cycle of an image: open a draft, commit
 * it as the next version, discard it, roll back (see images.h).
 *
 * A draft (struct draft, images.h) is a disk (disk.h) of its own, not a
 * client: its overlay lives in STATE/images/NAME/layers/L<n> over the
 * version it was opened on, and only the maintenance initiator's
 * logins to the image's target attach to it.  Commit closes that overlay
 * (flushed and checkpointed) and records it as a frozen layer; the single
 * rename of image.json is the commit point.
 *
 * The maintenance client's own disk.  When the maintenance initiator is a
 * client of the same image, its own overlay (on whatever version it was)
 * is kept aside, untouched, while the draft is open: its logins see the
 * draft.  A commit then resets that client onto the new version - its old
 * overlay goes to the trash, logged and said in the commit's answer -
 * because the PC just made that version and must boot it, not come back
 * to its old overlay on an older one.  A discard undoes the edit: the
 * client boots its own disk again, as before.  Each step says so in msg
 * (a note on success).  A crash between the commit point and the reset
 * leaves the old overlay in place, shown truthfully as a client on its
 * old version; `client reset` moves it.
 */
#include "lab/clients.h"
#include "lab/bootsets.h"
#include "lab/images.h"
#include "lab/store.h"
#include "util/log.h"
#include "util/events.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A draft record: not opened yet.  NULL if out of memory or its path
 * does not fit. */
static struct draft *draft_new(struct image *img, const char *layer, unsigned base,
			       const char *initiator)
{
	struct draft *d = calloc(1, sizeof(*d));
	char dir[PATH_MAX];

	if (!d)
		return NULL;
	if (img->store->ops->layer_where(img->store, img->name, layer, dir, sizeof(dir)) ||
	    disk_init(&d->disk, initiator, img, base, dir, 0)) {
		free(d);
		return NULL;
	}
	d->disk.is_draft = true;
	snprintf(d->layer, sizeof(d->layer), "%s", layer);
	return d;
}

int draft_restore(struct registry *reg, struct image *img, const char *layer, unsigned base,
		  const char *initiator)
{
	struct draft *d = draft_new(img, layer, base, initiator);
	int rc;

	if (!d)
		return -ENOMEM;
	img->draft = d;
	img->draft_base = base;
	rc = registry_disk_open(reg, &d->disk);
	if (rc)
		log_err("image %s: its draft %s cannot be opened (%s); it stays recorded, untouched",
			img->name, d->disk.dir, strerror(-rc));
	return 0;
}

int draft_adopt(struct registry *reg, struct image *img, const char *layer, unsigned base,
		const char *initiator)
{
	struct draft *d = draft_new(img, layer, base, initiator);

	(void)reg;
	if (!d)
		return -ENOMEM;
	img->draft = d;
	img->draft_base = base;
	img->draft_fate[0] = '\0';
	return 0;
}

/* A draft that was never recorded: whatever its store made of it goes
 * to the trash (a local layer directory would also be swept at start;
 * an RBD clone would not). */
static void draft_place_drop(struct registry *reg, struct image *img, struct draft *d)
{
	char label[IMAGE_NAME_MAX + 40];

	snprintf(label, sizeof(label), "image-%s-%s", img->name, d->layer);
	if (img->store->ops->discard(img->store, d->disk.dir, label) == 0)
		reg->purge_pending = true;
}

/* Layers read to resolve version v: down to the nearest version with a root file. */
static unsigned chain_depth(const struct image *img, unsigned v)
{
	unsigned n = 0;

	while (v >= 1 && v <= img->nversions && !img->versions[v - 1].root[0]) {
		n++;
		v = img->versions[v - 1].parent;
	}
	return n;
}

static struct image *find_image(struct registry *reg, const char *name, char *msg, size_t msglen)
{
	struct image *img = registry_image(reg, name);

	if (!img)
		snprintf(msg, msglen, "no image %s", name);
	return img;
}

/* The draft of image name, for verb ("commit", "discard").  Lock held.
 * NULL with *rc (-ENOENT no image, -EINVAL no draft) and msg set. */
static struct draft *find_draft(struct registry *reg, const char *name, const char *verb,
				 struct image **imgp, int *rc, char *msg, size_t msglen)
{
	struct image *img = find_image(reg, name, msg, msglen);

	*imgp = img;
	if (!img) {
		*rc = -ENOENT;
		return NULL;
	}
	if (!img->draft && img->draft_fate[0]) {
		/* a gateway of a cluster: another one was first */
		snprintf(msg, msglen, "image %s has no draft: %s", name, img->draft_fate);
		*rc = -EINVAL;
	} else if (!img->draft) {
		if (strcmp(verb, "commit") == 0)
			snprintf(msg, msglen, "image %s has no draft to commit (image edit %s --client C "
				 "opens one)", name, name);
		else
			snprintf(msg, msglen, "image %s has no draft to %s", name, verb);
		*rc = -EINVAL;
	}
	return img->draft;
}

/* How an admin names c: its name, else its initiator. */
static const char *client_label(const struct client *c)
{
	return c->name[0] ? c->name : c->initiator;
}

/* The client whose own disk on img is kept aside while it maintains d,
 * or NULL (the maintenance initiator is no client, or one of another
 * image).  Lock held. */
static struct client *maintainer_of(struct registry *reg, struct image *img, const struct draft *d)
{
	struct client *c = registry_find(reg, d->disk.initiator);

	return c && c->disk.img == img ? c : NULL;
}

/*
 * After a commit of img (now current): the maintenance client c leaves
 * its old overlay for a fresh one on the new version, so that its next
 * boot shows what it just made.  What happened goes into note.  Lock
 * held.
 */
static void maintainer_to_current(struct registry *reg, struct image *img, struct client *c,
				  char *note, size_t notelen)
{
	unsigned old = c->disk.version;
	char why[64 + IMAGE_NAME_MAX], err[256] = "", size[48] = "";

	if (c->disk.cow)   /* a closed overlay's size is not known here */
		snprintf(size, sizeof(size), " (%.1f MiB written)",
			 (double)disk_used_bytes(&c->disk) / (1024.0 * 1024.0));
	snprintf(why, sizeof(why), "it made v%u of %s", img->current, img->name);
	if (client_reset_locked(reg, c, false, why, err, sizeof(err))) {
		log_warn("image %s: its maintenance client %s stays on v%u: %s", img->name, c->initiator,
			 old, err);
		snprintf(note, notelen, "%s keeps its own disk on v%u (%s): client reset %s moves it to "
			 "v%u", client_label(c), old, err, client_label(c), img->current);
		return;
	}
	snprintf(note, notelen, "%s now boots v%u: its own disk on v%u, kept aside since image edit%s, "
		 "went to the trash", client_label(c), img->current, old, size);
}

int image_edit(struct registry *reg, const char *name, const char *client, bool force,
	       char *msg, size_t msglen)
{
	struct client *c;
	struct draft *d;
	struct image *img;
	char layer[24];
	const char *ini;
	int rc;

	msg[0] = '\0';
	pthread_mutex_lock(&reg->lock);
	img = find_image(reg, name, msg, msglen);
	if (!img) {
		rc = -ENOENT;
		goto out;
	}
	if (img->draft) {
		/* --force cannot help: one draft per image. */
		snprintf(msg, msglen, "image %s already has a draft (on v%u, for %s), and an image has one "
			 "draft at a time: commit it (image commit %s -m MESSAGE) or discard it (image "
			 "discard %s) first", name, img->draft_base, img->draft->disk.initiator, name, name);
		rc = -EEXIST;
		goto out;
	}
	if (img->busy) {
		snprintf(msg, msglen, "image %s is being flattened; try again when the job ends", name);
		rc = -EBUSY;
		goto out;
	}
	if (chain_depth(img, img->current) >= CHAIN_MAX_LAYERS) {
		/* Its commit would stack one layer more than a chain can read
		 * (and could not be flattened either). */
		snprintf(msg, msglen, "v%u of %s stacks %u layers, the most a version can have: flatten it "
			 "(image flatten %s) before opening a draft", img->current, name, CHAIN_MAX_LAYERS, name);
		rc = -EBUSY;
		goto out;
	}
	c = registry_find(reg, client);
	if (c) {
		ini = c->initiator;
	} else if (iscsi_name_valid(client) && strchr(client, '.')) {
		ini = client;
	} else {
		snprintf(msg, msglen, "no client %s (give a client name or an initiator name)", client);
		rc = -ENOENT;
		goto out;
	}
	if (c && c->disk.img == img && c->disk.sessions) {
		/* Its sessions show its own disk; from now on it must see the draft. */
		rc = disk_quiesce(reg, &c->disk, force, "open the draft (it sees the draft at its next "
				  "login)", msg, msglen);
		if (rc)
			goto out;
		c->disk.resetting = false;
	}
	/* A PC with img as an extra disk sees the draft at that LUN from its
	 * next login (lab/xdisk.h, MAINTENANCE). */
	if (c && c->disk.img != img &&
	    (rc = xdisk_draft_quiesce(reg, img, c->initiator, force, "open the draft (it sees the "
				      "draft at its next login)", msg, msglen)))
		goto out;
	/* A fresh layer name: never one a version uses (its place is
	 * cleared below). */
	for (bool used = true; used;) {
		snprintf(layer, sizeof(layer), "L%u", img->next_layer++);
		used = false;
		for (unsigned i = 0; i < img->nversions && !used; i++)
			used = strcmp(img->versions[i].layer, layer) == 0;
	}
	d = draft_new(img, layer, img->current, ini);
	if (!d) {
		rc = -ENOMEM;
		goto out;
	}
	rc = registry_disk_open(reg, &d->disk);
	if (rc) {
		snprintf(msg, msglen, "cannot create the draft of %s: %s", name, strerror(-rc));
		draft_place_drop(reg, img, d);
		free(d);
		goto out;
	}
	img->draft = d;
	img->draft_fate[0] = '\0';
	img->draft_base = img->current;
	img->draft_opened = (int64_t)time(NULL);
	rc = image_save(reg, img);
	if (rc) {
		/* Not recorded: its place is an orphan. */
		snprintf(msg, msglen, "cannot record the draft of %s: %s", name, strerror(-rc));
		img->draft = NULL;
		disk_close(&d->disk, false);
		draft_place_drop(reg, img, d);
		free(d);
		goto out;
	}
	log_notice("image %s: draft opened on v%u for %s", name, img->draft_base, ini);
	events_add(EV_IMAGE, c && c->name[0] ? c->name : ini, name, "draft opened on v%u",
		   img->draft_base);
	if (c && c->disk.img == img) {
		log_notice("image %s: %s keeps its own disk (on v%u) aside while it maintains the draft",
			   name, c->initiator, c->disk.version);
		snprintf(msg, msglen, "%s boots the draft from its next login; its own disk on v%u is kept "
			 "aside: image commit discards it (%s then boots the new version), image discard "
			 "gives it back", client_label(c), c->disk.version, client_label(c));
	}
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

int image_commit(struct registry *reg, const char *name, const char *message, bool force,
		 unsigned *newv, char *msg, size_t msglen)
{
	struct version *vers, nv = { 0 };
	struct client *maint;
	struct draft *d;
	struct image *img;
	char base[64];
	int rc;

	msg[0] = '\0';
	if (!message || !message[0]) {
		snprintf(msg, msglen, "a commit needs a message (-m)");
		return -EINVAL;
	}
	pthread_mutex_lock(&reg->lock);
	d = find_draft(reg, name, "commit", &img, &rc, msg, msglen);
	if (!d)
		goto out;
	/* its maintenance PC's LUN on it (lab/xdisk.h) goes first */
	rc = xdisk_draft_quiesce(reg, img, d->disk.initiator, force, "commit", msg, msglen);
	if (rc)
		goto out;
	rc = disk_quiesce(reg, &d->disk, force, "commit", msg, msglen);
	if (rc)
		goto out;
	vers = realloc(img->versions, (img->nversions + 1) * sizeof(*vers));
	if (!vers) {
		rc = -ENOMEM;
		goto undo;
	}
	img->versions = vers;
	/* Everything written reaches the disk, with a final checkpoint. */
	if (d->disk.cow && (rc = disk_close(&d->disk, true))) {
		snprintf(msg, msglen, "the draft of %s could not be flushed: %s; nothing committed", name,
			 strerror(-rc));
		goto undo;
	}
	nv.num = img->nversions + 1;
	nv.parent = img->draft_base;
	nv.time = (int64_t)time(NULL);
	snprintf(nv.message, sizeof(nv.message), "%s", message);
	snprintf(nv.layer, sizeof(nv.layer), "%s", d->layer);
	image_version_id(img, nv.parent, base, sizeof(base));
	{
		/* The store freezes it: a root of its own (RBD: a protected
		 * snapshot of the draft's clone), or a layer read as it is. */
		char why[200] = "";
		rc = img->store->ops->freeze(img->store, d->disk.dir, nv.root, sizeof(nv.root), why,
					     sizeof(why));
		if (rc) {
			snprintf(msg, msglen, "the draft of %s cannot be frozen: %s; nothing committed", name,
				 why);
			goto undo;
		}
	}
	if (!nv.root[0])
		rc = img->store->ops->layer_open(img->store, d->disk.dir, img->be->size, base, &nv.ol);
	if (rc) {
		snprintf(msg, msglen, "the draft of %s cannot be read back as a layer: %s; nothing committed",
			 name, strerror(-rc));
		goto undo;
	}
	img->versions[img->nversions++] = nv;
	img->current = nv.num;
	img->draft = NULL;
	rc = image_save(reg, img);
	if (rc) {
		snprintf(msg, msglen, "cannot record v%u of %s: %s; nothing committed", nv.num, name,
			 strerror(-rc));
		ovl_layer_close(nv.ol);
		img->nversions--;
		img->current = nv.parent;   /* the draft was on the current version */
		img->draft = d;
		goto undo;
	}
	log_notice("image %s: draft committed as v%u (\"%s\"), now current", name, nv.num, message);
	events_add(EV_IMAGE, NULL, name, "committed v%u: %s", nv.num, message);
	*newv = nv.num;
	/* warm boots: the same disk addresses, read through the new layer */
	bootsets_inherit(reg, img, nv.num, nv.parent);
	bootsets_prefetch(reg, img, nv.num, "committed, now current");
	maint = maintainer_of(reg, img, d);
	if (maint)
		maintainer_to_current(reg, img, maint, msg, msglen);
	xdisk_draft_committed(reg, img, d->disk.initiator);
	free(d);
	goto out;
undo:
	d->disk.resetting = false;
	if (!d->disk.cow && registry_disk_open(reg, &d->disk))
		log_err("image %s: the draft cannot be reopened", name);
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

int image_discard(struct registry *reg, const char *name, bool force, char *msg, size_t msglen)
{
	char label[IMAGE_NAME_MAX + 40];
	struct client *maint;
	struct draft *d;
	struct image *img;
	int rc;

	msg[0] = '\0';
	pthread_mutex_lock(&reg->lock);
	d = find_draft(reg, name, "discard", &img, &rc, msg, msglen);
	if (!d)
		goto out;
	rc = xdisk_draft_quiesce(reg, img, d->disk.initiator, force, "discard the draft", msg, msglen);
	if (rc)
		goto out;
	rc = disk_quiesce(reg, &d->disk, force, "discard the draft", msg, msglen);
	if (rc)
		goto out;
	img->draft = NULL;
	rc = image_save(reg, img);
	if (rc) {
		snprintf(msg, msglen, "cannot record that the draft of %s is discarded: %s", name,
			 strerror(-rc));
		img->draft = d;
		d->disk.resetting = false;
		goto out;
	}
	snprintf(label, sizeof(label), "draft-%s-%s", img->name, d->layer);
	if (disk_discard(&d->disk, img->store, label))
		log_warn("image %s: the discarded draft %s stays until the next start", name, d->disk.dir);
	reg->purge_pending = true;
	pthread_cond_broadcast(&reg->cond);
	log_notice("image %s: draft discarded", name);
	events_add(EV_IMAGE, NULL, name, "draft discarded");
	maint = maintainer_of(reg, img, d);
	if (maint) {
		/* The edit is undone: it boots what it booted before. */
		unsigned v = maint->disk.version;
		size_t n = (size_t)snprintf(msg, msglen, "%s boots its own disk again, on v%u as before "
					    "image edit", client_label(maint), v);
		if (v != img->current && n < msglen)
			snprintf(msg + n, msglen - n, " (client reset %s moves it to v%u, the current one)",
				 client_label(maint), img->current);
	}
	free(d);
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

int image_rollback(struct registry *reg, const char *name, unsigned v, char *msg, size_t msglen)
{
	struct backend *be;
	struct image *img;
	unsigned old;
	int rc;

	pthread_mutex_lock(&reg->lock);
	img = find_image(reg, name, msg, msglen);
	if (!img) {
		rc = -ENOENT;
		goto out;
	}
	if (v < 1 || v > img->nversions || img->versions[v - 1].deleted) {
		snprintf(msg, msglen, "image %s has no version %u (it has v1..v%u%s)", name, v,
			 img->nversions, v >= 1 && v <= img->nversions ? "; that one was deleted" : "");
		rc = -ENOENT;
		goto out;
	}
	if (img->draft) {
		snprintf(msg, msglen, "image %s has a draft open on v%u: commit or discard it first", name,
			 img->draft_base);
		rc = -EBUSY;
		goto out;
	}
	if (v == img->current) {
		rc = 0;
		goto out;
	}
	/* Make sure it can be read before clients are sent to it. */
	rc = image_version_get(img, v, &be, msg, msglen);
	if (rc)
		goto out;
	image_version_put(img, v);
	old = img->current;
	img->current = v;
	rc = image_save(reg, img);
	if (rc) {
		snprintf(msg, msglen, "cannot record the rollback of %s: %s", name, strerror(-rc));
		img->current = old;
		goto out;
	}
	log_notice("image %s: v%u is current again (was v%u); clients move to it at their next reset",
		   name, v, old);
	events_add(EV_IMAGE, NULL, name, "rolled back to v%u (was v%u)", v, old);
	bootsets_prefetch(reg, img, v, "rolled back to, now current");
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

int image_delete(struct registry *reg, const char *name, unsigned v, char *msg, size_t msglen)
{
	char from[PATH_MAX], label[IMAGE_NAME_MAX + 100];
	const struct client *xc;
	struct version *ver;
	struct image *img;
	unsigned n = 0;
	int rc = -EBUSY;

	pthread_mutex_lock(&reg->lock);
	img = find_image(reg, name, msg, msglen);
	if (!img) {
		rc = -ENOENT;
		goto out;
	}
	if (v < 1 || v > img->nversions || img->versions[v - 1].deleted) {
		snprintf(msg, msglen, "image %s has no version %u", name, v);
		rc = -ENOENT;
		goto out;
	}
	ver = &img->versions[v - 1];
	if (v == 1) {
		snprintf(msg, msglen, "v1 is the source of image %s (%s); it cannot be deleted", name,
			 img->path);
		rc = -EINVAL;
		goto out;
	}
	if (v == img->current) {
		snprintf(msg, msglen, "v%u is the current version of %s; roll back to another first", v, name);
		goto out;
	}
	if (img->draft && img->draft_base == v) {
		snprintf(msg, msglen, "the draft of %s is on v%u; commit or discard it first", name, v);
		goto out;
	}
	for (struct client *c = reg->clients; c; c = c->next)
		if (c->disk.img == img && c->disk.version == v && n++ == 0)
			snprintf(msg, msglen, "client %s is on v%u", c->name[0] ? c->name : c->initiator, v);
	if (!n && (xc = xdisk_version_user(reg, img, v)) != NULL && n++ == 0)
		snprintf(msg, msglen, "client %s has it as an extra disk on v%u",
			 xc->name[0] ? xc->name : xc->initiator, v);
	if (n) {
		size_t l = strlen(msg);
		snprintf(msg + l, msglen - l, "%s; reset %s first", n > 1 ? " (and others)" : "",
			 n > 1 ? "them" : "it");
		goto out;
	}
	if (ver->users) {
		snprintf(msg, msglen, "v%u of %s is in use (a job or a session reads it)", v, name);
		goto out;
	}
	for (unsigned u = 1; u <= img->nversions; u++)
		if (u != v && !img->versions[u - 1].deleted && image_version_needs(img, u, v)) {
			snprintf(msg, msglen, "v%u of %s reads through v%u; delete v%u first, or flatten "
				 "it", u, name, v, u);
			goto out;
		}
	ver->deleted = true;
	rc = image_save(reg, img);
	if (rc) {
		ver->deleted = false;
		snprintf(msg, msglen, "cannot record the deletion: %s", strerror(-rc));
		goto out;
	}
	/* Nothing reads it any more: close it (its prefetch cancelled
	 * first) and move its files away. */
	bootsets_forget(reg, img, v);
	backend_close(ver->be);
	ver->be = NULL;
	ovl_layer_close(ver->ol);
	ver->ol = NULL;
	backend_close(ver->root_be);
	ver->root_be = NULL;
	snprintf(label, sizeof(label), "image-%s-v%u-%s", img->name, v, ver->layer);
	if ((rc = img->store->ops->layer_where(img->store, img->name, ver->layer, from, sizeof(from))) == 0)
		rc = img->store->ops->discard(img->store, from, label);
	if (rc == -EBUSY) {
		/* The store still holds something made on it (RBD: a clone of
		 * its snapshot, e.g. a client's from before a flatten). */
		ver->deleted = false;
		if (image_save(reg, img))
			log_err("image %s: v%u is recorded as deleted but its layer stays", name, v);
		snprintf(msg, msglen, "v%u of %s still has clones in its store (clients that started on a "
			 "version made on it before a flatten); reset them first", v, name);
		goto out;
	}
	if (rc)
		log_warn("image %s v%u: its layer %s stays until the next start: %s", name, v, ver->layer,
			 strerror(-rc));
	if (ver->root[0]) {
		snprintf(label, sizeof(label), "image-%s-flat-v%u.raw", img->name, v);
		/* -ENOENT: the root was the layer's own (RBD), gone with it. */
		if ((rc = img->store->ops->discard(img->store, ver->root, label)) && rc != -ENOENT)
			log_warn("image %s v%u: %s stays until the next start: %s", name, v, ver->root,
				 strerror(-rc));
	}
	ver->layer[0] = ver->root[0] = '\0';
	reg->purge_pending = true;
	pthread_cond_broadcast(&reg->cond);
	log_notice("image %s: v%u deleted", name, v);
	events_add(EV_IMAGE, NULL, name, "v%u deleted", v);
	rc = 0;
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}
