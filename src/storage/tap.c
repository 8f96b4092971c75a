/*
 * tap.c - the LU tap: a backend that passes every call through to the
 * one behind it and watches its reads (tap.h is the contract).
 *
 * Each tap carries its own ops table, a copy of inner's with read and
 * splice_read replaced, so that what inner cannot do (splice_read, unmap,
 * block_status, resident NULL) the tap cannot do either, and the callers'
 * NULL checks (the zero-copy Data-In path above all) see inner as it is.
 *
 * A read reads the monotonic clock once, before it goes to inner; when it
 * succeeded, the PC's recorder notes it (one relaxed load while it
 * records nothing) at that time - a cold read may take long, and its
 * place in the boot is when the PC wanted it - and, while the recorder is
 * idle (or there is none: a PC at work, not booting), the prefetcher is
 * told to yield, stamped with that time (the yield lasts
 * PREFETCH_YIELD_NS: a read's own length does not matter to it).  A failed splice_read is not noted: the
 * caller reads the range again with read (backend.h), which is.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/bootrec.h"
#include "storage/prefetch.h"
#include "storage/tap.h"
#include "util/iostats.h"

struct tap {
	struct backend be;              /* first: a struct backend * is a struct tap * */
	struct backend_ops ops;         /* be.ops: inner's, read paths wrapped */
	struct backend *inner;          /* borrowed */
	struct bootrec *rec;            /* borrowed, may be NULL */
	struct prefetcher *pf;          /* borrowed, may be NULL */
};

/* The tap around be (be is its first member). */
static struct tap *tap_of(struct backend *be)
{
	return (struct tap *)be;
}

/* A read of [off, off+len) asked for at t0 succeeded: note it, and tell
 * the prefetcher when the PC is not booting. */
static void tap_seen(struct tap *t, uint64_t off, size_t len, int64_t t0)
{
	if (t->rec)
		bootrec_note(t->rec, off, len, t0);
	if (t->pf && !(t->rec && bootrec_active(t->rec)))
		prefetch_note_busy(t->pf, t0);
}

/* inner's read, stamped and seen (no clock read with neither recorder
 * nor prefetcher). */
static int tap_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	struct tap *t = tap_of(be);

	if (!t->rec && !t->pf)
		return t->inner->ops->read(t->inner, buf, off, len);
	int64_t t0 = iostats_now_ns();
	int rc = t->inner->ops->read(t->inner, buf, off, len);
	if (rc == 0)
		tap_seen(t, off, len, t0);
	return rc;
}

/* inner's splice_read (only set when inner has one), stamped and seen
 * when it succeeded. */
static int tap_splice_read(struct backend *be, int pipe_wr, uint64_t off, size_t len)
{
	struct tap *t = tap_of(be);

	if (!t->rec && !t->pf)
		return t->inner->ops->splice_read(t->inner, pipe_wr, off, len);
	int64_t t0 = iostats_now_ns();
	int rc = t->inner->ops->splice_read(t->inner, pipe_wr, off, len);
	if (rc == 0)
		tap_seen(t, off, len, t0);
	return rc;
}

/* The other ops are inner's as they are (each set only when inner's is). */
static int tap_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	struct backend *in = tap_of(be)->inner;
	return in->ops->write(in, buf, off, len, fua);
}

static int tap_flush(struct backend *be)
{
	struct backend *in = tap_of(be)->inner;
	return in->ops->flush(in);
}

static int tap_unmap(struct backend *be, uint64_t off, uint64_t len)
{
	struct backend *in = tap_of(be)->inner;
	return in->ops->unmap(in, off, len);
}

static int tap_block_status(struct backend *be, uint64_t off, uint64_t len, uint64_t *run,
			    bool *mapped)
{
	struct backend *in = tap_of(be)->inner;
	return in->ops->block_status(in, off, len, run, mapped);
}

static int tap_resident(struct backend *be, uint64_t off, uint64_t len, uint64_t *bytes)
{
	struct backend *in = tap_of(be)->inner;
	return in->ops->resident(in, off, len, bytes);
}

/* Frees the tap only: inner, rec and pf are borrowed. */
static void tap_close(struct backend *be)
{
	free(tap_of(be));
}

/* See tap.h. */
int backend_tap_wrap(struct backend *inner, struct bootrec *rec, struct prefetcher *pf,
		     struct backend **out)
{
	struct tap *t;

	*out = NULL;
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	const struct backend_ops *io = inner->ops;
	t->ops.read = tap_read;
	t->ops.splice_read = io->splice_read ? tap_splice_read : NULL;
	t->ops.write = io->write ? tap_write : NULL;
	t->ops.flush = io->flush ? tap_flush : NULL;
	t->ops.unmap = io->unmap ? tap_unmap : NULL;
	t->ops.close = tap_close;
	t->ops.block_status = io->block_status ? tap_block_status : NULL;
	t->ops.resident = io->resident ? tap_resident : NULL;
	t->inner = inner;
	t->rec = rec;
	t->pf = pf;
	t->be.ops = &t->ops;
	t->be.size = inner->size;
	t->be.read_only = inner->read_only;
	memcpy(t->be.name, inner->name, sizeof(t->be.name));
	*out = &t->be;
	return 0;
}
