/*
 * bootsets_prefetch.c - warm boots, the lab's side (bootsets.h): queueing
 * a version's prefetch, cancelling it, and the "boot_set" JSON.
 *
 * Lifetime of a job's backend: the job does NOT hold a use of its version
 * (a prefetch must not make `image delete` refuse); instead every place
 * that closes a version's backend cancels its job first - image_delete
 * (bootsets_forget), and at daemon stop the prefetcher is freed (every
 * job cancelled, its thread stopped) before any image is closed
 * (daemon/setup.c).  The chain stays open between (image_version_get
 * opens it; nothing but those two closes it), and chain_replace under a
 * flatten is safe for the prefetcher (prefetch.h).
 *
 * The key of a version's job is ver->pf_key, a heap token of its own:
 * img->versions moves when a version is added.
 */
#include "lab/bootsets.h"
#include "lab/bootsets_int.h"
#include "lab/clients.h"
#include "lab/images.h"
#include "storage/bootset.h"
#include "storage/prefetch.h"
#include "util/iostats.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The window of a prefetch plan: first-read order kept 128 chunks (8 MiB)
 * at a time, sorted by offset inside. */
#define PLAN_WINDOW 128u
/* The longest run one resident call is asked about (a multiple of the
 * chunk). */
#define RESIDENT_RUN_MAX (1024u << 20)
/* How long a count of a set's bytes in memory is shown again. */
#define BOOTSET_RESIDENT_TTL_NS (2 * 1000000000LL)

int bootsets_prefetch(struct registry *reg, struct image *img, unsigned v, const char *why)
{
	struct bootset_extent *x = NULL;
	struct version *ver = bootsets_version(img, v);
	struct backend *be;
	char msg[256], name[IMAGE_NAME_MAX + 16], size[32];
	uint32_t n = 0;
	int rc;

	if (!ver)
		return -ENOENT;
	if (!reg->prefetch_on || !reg->prefetch)
		return -EPERM;
	if (!ver->bs.n)
		return -ENODATA;
	if (!ver->pf_key && !(ver->pf_key = malloc(1)))
		return -ENOMEM;
	/* opens its chain if nothing did yet; the use is not kept (above) */
	rc = image_version_get(img, v, &be, msg, sizeof(msg));
	if (rc) {
		log_warn("image %s v%u: no prefetch: %s", img->name, v, msg);
		return rc;
	}
	image_version_put(img, v);
	rc = bootset_plan(&ver->bs, PLAN_WINDOW, PREFETCH_MAX_READ, &x, &n);
	if (rc == 0) {
		snprintf(name, sizeof(name), "%s@v%u", img->name, v);
		rc = prefetch_queue(reg->prefetch, ver->pf_key, be, x, n, name);
	}
	free(x);
	if (rc) {
		log_warn("image %s v%u: its prefetch cannot be queued: %s", img->name, v, strerror(-rc));
		return rc;
	}
	bootsets_size_text(bootset_bytes(&ver->bs), size, sizeof(size));
	log_info("image %s v%u: prefetch of its boot set queued (%s, %u reads; %s)", img->name, v,
		 size, n, why);
	return 0;
}

/* How many clients are on version v of img. */
static unsigned pcs_on(struct registry *reg, struct image *img, unsigned v)
{
	unsigned n = 0;

	for (struct client *c = reg->clients; c; c = c->next)
		n += c->disk.img == img && c->disk.version == v;
	return n;
}

void bootsets_prefetch_all(struct registry *reg)
{
	pthread_mutex_lock(&reg->lock);
	if (!reg->prefetch_on || !reg->prefetch) {
		pthread_mutex_unlock(&reg->lock);
		return;
	}
	for (unsigned i = 0; i < reg->nimages; i++) {
		struct image *img = reg->images[i];
		bootsets_prefetch(reg, img, img->current, "daemon start");
	}
	/* then the other versions PCs are on, most PCs first */
	for (;;) {
		struct image *best = NULL;
		unsigned bv = 0, bn = 0;
		for (unsigned i = 0; i < reg->nimages; i++) {
			struct image *img = reg->images[i];
			for (unsigned v = 1; v <= img->nversions; v++) {
				struct version *ver = &img->versions[v - 1];
				unsigned n;
				struct prefetch_status st;
				if (v == img->current || ver->deleted || !ver->bs.n)
					continue;
				if (ver->pf_key) {
					prefetch_get_status(reg->prefetch, ver->pf_key, &st);
					if (st.state != PREFETCH_NONE)
						continue;   /* queued in an earlier round */
				}
				n = pcs_on(reg, img, v);
				if (n > bn) {
					best = img;
					bv = v;
					bn = n;
				}
			}
		}
		if (!best || bootsets_prefetch(reg, best, bv, "daemon start: PCs on it"))
			break;
	}
	pthread_mutex_unlock(&reg->lock);
}

void bootsets_cancel(struct registry *reg, struct image *img, unsigned v)
{
	if (!reg->prefetch || v < 1 || v > img->nversions || !img->versions[v - 1].pf_key)
		return;
	prefetch_cancel(reg->prefetch, img->versions[v - 1].pf_key);
}

/* Bytes of ver's set held in memory by be: one resident call per run of
 * adjacent chunks - bootset_plan with the whole set as one window (sorted
 * by offset, joined, clipped to the disk).  -errno when it cannot tell. */
static int resident_bytes(struct version *ver, struct backend *be, uint64_t *out)
{
	struct bootset_extent *x = NULL;
	uint64_t sum = 0;
	uint32_t n = 0;
	int rc = 0;

	*out = 0;
	if (!ver->bs.n)
		return 0;
	if ((rc = bootset_plan(&ver->bs, ver->bs.n, RESIDENT_RUN_MAX, &x, &n)))
		return rc;
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		uint64_t got = 0;
		rc = be->ops->resident(be, x[i].off, x[i].len, &got);
		sum += got;
	}
	free(x);
	*out = sum;
	return rc;
}

json_t *bootset_json(struct registry *reg, struct image *img, unsigned v)
{
	struct version *ver = bootsets_version(img, v);
	struct prefetch_status st = { .state = PREFETCH_NONE };
	uint64_t res = 0;
	bool known = false;
	double secs = 0;

	if (!ver)
		return json_null();
	if (reg->prefetch && ver->pf_key)
		prefetch_get_status(reg->prefetch, ver->pf_key, &st);
	/* only a backend already open: showing must not open chains.
	 * Counting a big scattered set costs (a mincore per run: 0.2 s of
	 * CPU for 24000 chunks, under the registry lock), and a script or a
	 * console polling the versions must not take that from the PCs: the
	 * count is reused for BOOTSET_RESIDENT_TTL_NS - unless the prefetch
	 * read more meanwhile (then it is stale for sure). */
	int64_t now = iostats_now_ns();
	if (ver->res_at_ns && now - ver->res_at_ns < BOOTSET_RESIDENT_TTL_NS &&
	    ver->res_pf_bytes == st.done_bytes) {
		known = ver->res_known;
		res = ver->res_bytes;
	} else if (ver->be && ver->be->ops->resident) {
		known = resident_bytes(ver, ver->be, &res) == 0;
		ver->res_known = known;
		ver->res_bytes = res;
		ver->res_at_ns = now;
		ver->res_pf_bytes = st.done_bytes;
	}
	if (st.started_ns)
		secs = (double)((st.ended_ns ? st.ended_ns : iostats_now_ns()) - st.started_ns) / 1e9;
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:s, s:I, s:I, s:f}",
			 "bytes", (json_int_t)bootset_bytes(&ver->bs),
			 "chunks", (json_int_t)ver->bs.n,
			 "boots", (json_int_t)ver->bs.boots,
			 "inherited_from", (json_int_t)ver->bs.inherited_from,
			 "resident_bytes", (json_int_t)(known ? res : 0),
			 "resident_known", known,
			 "prefetch", prefetch_state_name(st.state),
			 "prefetched_bytes", (json_int_t)st.done_bytes,
			 "prefetch_total_bytes", (json_int_t)st.total_bytes,
			 "prefetch_seconds", secs);
}
