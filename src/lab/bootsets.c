/*
 * bootsets.c - warm boots, the lab's side (bootsets.h): loading each
 * version's boot set, recording a PC's boot, merging and saving what it
 * read, inheriting a set at commit.  The prefetch and the JSON are in
 * bootsets_prefetch.c.
 *
 * The settle time of a recording (bootrec.h, BOOTREC_SETTLE_NS) can be
 * shortened for tests ONLY by the environment variable
 * PRISTINE_TEST_BOOTREC_SETTLE_MS, read here and nowhere else: the tick
 * asks bootrec_due as if the clock were ahead by the difference.
 */
#include "lab/bootsets.h"
#include "lab/bootsets_int.h"
#include "lab/clients.h"
#include "lab/images.h"
#include "lab/store.h"
#include "storage/bootrec.h"
#include "storage/bootset.h"
#include "util/events.h"
#include "util/iostats.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t bootsets_max_chunks(const struct registry *reg)
{
	uint32_t m = reg->bootset_max_chunks;

	if (m == 0)
		return BOOTSET_MAX_CHUNKS_DEFAULT;
	return m > BOOTSET_MAX_CHUNKS_LIMIT ? BOOTSET_MAX_CHUNKS_LIMIT : m;
}

struct version *bootsets_version(struct image *img, unsigned v)
{
	struct version *ver;

	if (v < 1 || v > img->nversions)
		return NULL;
	ver = &img->versions[v - 1];
	if (ver->deleted)
		return NULL;
	/* a version appended whole (commit, refresh) starts zeroed */
	if (!ver->bs.disk_size && img->be)
		ver->bs.disk_size = img->be->size;
	return ver;
}

void bootsets_size_text(uint64_t bytes, char *out, size_t len)
{
	if (bytes >= (10ull << 30))
		snprintf(out, len, "%llu GiB", (unsigned long long)(bytes >> 30));
	else if (bytes >= (1ull << 20))
		snprintf(out, len, "%llu MiB", (unsigned long long)(bytes >> 20));
	else
		snprintf(out, len, "%llu KiB", (unsigned long long)(bytes >> 10));
}

/* Save version v's set through img's store (a no-op for a store that
 * keeps none).  0 or -errno (logged). */
static int save(struct image *img, struct version *ver)
{
	struct lab_store *st = img->store;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (!st || !st->ops->bootset_save)
		return 0;
	rc = bootset_encode(&ver->bs, &buf, &len);
	if (rc == 0)
		rc = st->ops->bootset_save(st, img->name, ver->num, buf, len);
	free(buf);
	if (rc)
		log_warn("image %s v%u: its boot set cannot be saved: %s (kept in memory)", img->name,
			 ver->num, strerror(-rc));
	return rc;
}

/* Load one version's set from st into ver->bs (initialised empty first):
 * a torn file is cut, an unreadable one dropped, each logged and an
 * event. */
static void load_one(struct image *img, struct lab_store *st, struct version *ver)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	uint32_t cut = 0;
	int rc;

	bootset_init(&ver->bs, img->be ? img->be->size : 0);
	rc = st->ops->bootset_load(st, img->name, ver->num, &buf, &len);
	if (rc == -ENOENT)
		return;
	if (rc == 0)
		rc = bootset_decode(buf, len, &ver->bs, &cut);
	free(buf);
	if (rc == 0 && ver->bs.disk_size != (img->be ? img->be->size : 0)) {
		bootset_free(&ver->bs);
		ver->bs.disk_size = img->be ? img->be->size : 0;
		rc = -ESTALE;
	}
	if (rc) {
		bootset_init(&ver->bs, img->be ? img->be->size : 0);
		log_warn("image %s v%u: its boot set file cannot be used (%s): dropped, it is learned "
			 "again from the next boots", img->name, ver->num,
			 rc == -EBADMSG ? "corrupt" : rc == -ESTALE ? "made for another disk size" :
			 strerror(-rc));
		events_add(EV_ERROR, NULL, img->name, "v%u: boot set file dropped (%s)", ver->num,
			   rc == -EBADMSG ? "corrupt" : strerror(-rc));
		return;
	}
	if (cut) {
		log_warn("image %s v%u: its boot set file was torn or corrupt: %u chunk%s cut, %u kept",
			 img->name, ver->num, cut, cut == 1 ? "" : "s", ver->bs.n);
		events_add(EV_ERROR, NULL, img->name, "v%u: boot set file cut (%u chunks lost)", ver->num,
			   cut);
	}
}

void bootsets_load(struct registry *reg, struct image *img)
{
	struct lab_store *st = img->store;

	(void)reg;
	for (unsigned i = 0; i < img->nversions; i++) {
		struct version *ver = &img->versions[i];
		bootset_init(&ver->bs, img->be ? img->be->size : 0);
		if (!st || !st->ops->bootset_load)
			continue;
		if (ver->deleted) {
			/* a crash between the delete's record and its file's removal */
			if (st->ops->bootset_remove)
				st->ops->bootset_remove(st, img->name, ver->num);
			continue;
		}
		load_one(img, st, ver);
	}
}

void bootsets_boot_begin(struct registry *reg, struct client *c, bool from_script)
{
	struct image *img = c->disk.img;
	unsigned v = c->disk.version;
	int rc;

	if (!img || !img->be)
		return;
	if (!from_script && bootrec_active(&c->rec))
		return;   /* its boot script began one already */
	if (!bootsets_version(img, v))
		v = img->current;   /* its disk opens on the current version */
	rc = bootrec_start(&c->rec, v, img->be->size, bootsets_max_chunks(reg), iostats_now_ns());
	if (rc)
		log_warn("client %s: its boot is not recorded: %s", c->initiator, strerror(-rc));
}

/* The test-only settle time (see the file's header), in ns; 0 = the
 * default. */
static int64_t test_settle_ns(void)
{
	static int64_t ns = -1;
	const char *e;

	if (ns < 0) {
		e = getenv("PRISTINE_TEST_BOOTREC_SETTLE_MS");
		ns = e && atoll(e) > 0 ? atoll(e) * 1000000LL : 0;
	}
	return ns;
}

/* Merge c's finished recording into the version it booted; that
 * version (NULL: nothing merged), for the caller to save.  Lock held. */
static struct version *learn(struct registry *reg, struct client *c)
{
	struct bootset_hit *hits = NULL;
	struct image *img = c->disk.img;
	struct version *ver;
	char size[32];
	unsigned v;
	uint32_t n = 0;
	int rc;

	if (bootrec_finish(&c->rec, &hits, &n, &v))
		return NULL;
	ver = img ? bootsets_version(img, v) : NULL;
	if (!ver || n == 0) {
		free(hits);   /* the version is gone, or nothing was read */
		return NULL;
	}
	rc = bootset_merge(&ver->bs, hits, n, bootsets_max_chunks(reg));
	free(hits);
	if (rc) {
		log_warn("image %s v%u: the boot of %s is not learned: %s", img->name, v, c->initiator,
			 strerror(-rc));
		return NULL;
	}
	bootsets_size_text(bootset_bytes(&ver->bs), size, sizeof(size));
	log_notice("image %s v%u: boot set learned from %s's boot: %s, %u boot%s", img->name, v,
		   c->name[0] ? c->name : c->initiator, size, ver->bs.boots,
		   ver->bs.boots == 1 ? "" : "s");
	return ver;
}

/* Versions one tick saves after its walk (see bootsets_tick). */
#define TICK_SAVES 16u

void bootsets_tick(struct registry *reg, int64_t now_ns)
{
	int64_t t = test_settle_ns();

	/* asked as if later by what the test settle time saves */
	if (t > 0 && t < BOOTREC_SETTLE_NS)
		now_ns += BOOTREC_SETTLE_NS - t;
	/* The versions merged into, each saved once after the walk (a storm
	 * of PCs settles within a tick or two: one file write per version,
	 * not one per PC); more than TICK_SAVES at once are saved at once.
	 * The lock is held throughout, so the version pointers stay put. */
	struct version *dirty[TICK_SAVES];
	struct image *dimg[TICK_SAVES];
	unsigned nd = 0;

	pthread_mutex_lock(&reg->lock);
	for (struct client *c = reg->clients; c; c = c->next) {
		struct version *ver;
		unsigned k = 0;
		if (!bootrec_due(&c->rec, now_ns) || !(ver = learn(reg, c)))
			continue;
		while (k < nd && dirty[k] != ver)
			k++;
		if (k < nd)
			continue;
		if (nd == TICK_SAVES)
			save(c->disk.img, ver);
		else {
			dirty[nd] = ver;
			dimg[nd++] = c->disk.img;
		}
	}
	for (unsigned k = 0; k < nd; k++)
		save(dimg[k], dirty[k]);
	pthread_mutex_unlock(&reg->lock);
}

void bootsets_inherit(struct registry *reg, struct image *img, unsigned newv, unsigned parent)
{
	struct version *nv = bootsets_version(img, newv), *pv = bootsets_version(img, parent);
	struct bootset copy;

	(void)reg;
	if (!nv || !pv || nv->bs.n || !pv->bs.n)
		return;
	if (bootset_copy(&copy, &pv->bs)) {
		log_warn("image %s v%u: cannot inherit the boot set of v%u: out of memory", img->name,
			 newv, parent);
		return;
	}
	bootset_free(&nv->bs);
	nv->bs = copy;
	nv->bs.inherited_from = parent;
	nv->bs.boots = 0;
	save(img, nv);
	log_info("image %s v%u: inherits the boot set of v%u (%u chunks)", img->name, newv, parent,
		 nv->bs.n);
}

void bootsets_forget(struct registry *reg, struct image *img, unsigned v)
{
	struct version *ver = v >= 1 && v <= img->nversions ? &img->versions[v - 1] : NULL;
	struct lab_store *st = img->store;
	int rc;

	if (!ver)
		return;
	bootsets_cancel(reg, img, v);
	if (reg->prefetch && ver->pf_key)
		prefetch_forget(reg->prefetch, ver->pf_key);
	bootset_free(&ver->bs);
	if (st && st->ops->bootset_remove && (rc = st->ops->bootset_remove(st, img->name, v)) &&
	    rc != -ENOENT)
		log_warn("image %s v%u: its boot set file stays: %s", img->name, v, strerror(-rc));
}
