/*
 * layer.c - a closed overlay opened read-only as a frozen layer of an
 * image version (chain.h is the contract, docs/overlay-format.md the
 * format and the section "Frozen layers and version chains").
 *
 * The loading is overlay_open's own (ovl_meta_open in overlay_meta.c,
 * with ov->read_only set): the same checks of info, map and log, the
 * same replay, so a layer sees exactly the blocks the overlay had when
 * it was closed.  What differs is that nothing may change: the data and
 * log files are opened O_RDONLY, a missing overlay is not created, a
 * torn log tail is ignored rather than cut off, and space is not
 * recounted (that would punch holes).  After loading only the data file
 * stays open; the map never changes again, so the chain reads it from
 * any number of threads without a lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "storage/chain.h"
#include "storage/overlay_int.h"
#include "util/check.h"
#include "util/log.h"
#include "util/pagecache.h"

/* Close whatever a (possibly half-opened) layer holds and free it. */
static void layer_destroy(struct ovl_layer *l)
{
	struct overlay *ov = &l->ov;
	const struct ovl_io *io = ov->io;

	if (ov->logfd >= 0)
		io->close(io->ctx, ov->logfd);
	if (ov->datafd >= 0)
		io->close(io->ctx, ov->datafd);
	if (ov->dirfd >= 0)
		io->close(io->ctx, ov->dirfd);
	ovl_map_free(&ov->map);
	free(ov->dir);
	free(l);
}

/* See chain.h. */
int ovl_layer_open(const char *dir, uint64_t size, const char *base_id, struct ovl_layer **out)
{
	struct ovl_layer *l;
	struct overlay *ov;
	bool created;
	int rc;

	*out = NULL;
	if (size == 0 || (base_id && strlen(base_id) > OVL_BASE_ID_MAX))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	ov = &l->ov;
	ov->io = ovl_io_default();
	ov->dirfd = ov->datafd = ov->logfd = -1;
	ov->size = size;
	ov->read_only = true;
	ov->dir = strdup(dir);
	if (!ov->dir) {
		rc = -ENOMEM;
		goto fail;
	}
	ov->dirfd = ov->io->open(ov->io->ctx, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY, 0);
	if (ov->dirfd < 0) {
		rc = ov->dirfd;
		goto fail;
	}
	rc = ovl_meta_open(ov, base_id, &created);
	if (rc < 0)
		goto fail;
	/* Frozen: loaded without a change, so nothing is dirty (M4). */
	PR_ASSERT(ov->read_only && ov->map.ndirty == 0);
	/* Only data is read from now on. */
	ov->io->close(ov->io->ctx, ov->logfd);
	ov->io->close(ov->io->ctx, ov->dirfd);
	ov->logfd = ov->dirfd = -1;
	*out = l;
	log_debug("layer %s: %llu blocks of %u bytes held", dir,
		  (unsigned long long)ov->map.present, ov->bs);
	return 0;
fail:
	if (rc != -EBADMSG && rc != -ESTALE)
		log_err("layer %s: cannot open: %s", dir, strerror(-rc));
	layer_destroy(l);
	return rc;
}

/* See chain.h. */
void ovl_layer_close(struct ovl_layer *l)
{
	if (l)
		layer_destroy(l);
}

/* See chain.h. */
uint32_t ovl_layer_block_size(const struct ovl_layer *l)
{
	return l->ov.bs;
}

/* See chain.h. */
uint64_t ovl_layer_bytes(const struct ovl_layer *l)
{
	return l->ov.map.present * l->ov.bs;
}

/* See overlay_int.h. */
int ovl_layer_resident(const struct ovl_layer *l, uint64_t off, uint64_t len, uint64_t *bytes)
{
	*bytes = 0;
	/* Only the real I/O has a file descriptor the kernel can map. */
	if (l->ov.io != ovl_io_default())
		return -EOPNOTSUPP;
	return pagecache_resident(l->ov.datafd, off, len, bytes);
}
