/*
 * rbd_disk_check.c - storage/rbd_disk.h against a real cluster, driven by
 * tests/ceph/test_rbd_disk.sh (which starts the cluster and checks
 * Ceph's own view around these phases).  Built by the Makefile under
 * ASan/UBSan as build/asan/rbd_disk_check, linked with the library.
 *
 *   rbd_disk_check CONF POOL setup   the parent pristine.t.golden (a
 *                                    pattern, with a hole) and its snapshot v1
 *   rbd_disk_check CONF POOL main    clones, I/O, quota, unmap, racing
 *                                    first writes into one object, lock,
 *                                    reopen, snapshots, copy, trash, purge
 *   rbd_disk_check CONF POOL full "FILL-CMD" "FREE-CMD"
 *                                    a clone written until FILL-CMD has made
 *                                    the pool full: -ENOSPC within a bound,
 *                                    not sticky, nothing changed; after
 *                                    FREE-CMD it writes again
 *   rbd_disk_check CONF POOL hold    a clone opened, written, flushed;
 *                                    "held", then waits to be killed -9
 *   rbd_disk_check CONF POOL reopen  the same clone opened again once
 *                                    librbd lets it: how long, and the
 *                                    flushed write is there
 *   rbd_disk_check CONF POOL sticky BLOCK-CMD
 *                                    BLOCK-CMD ADDR blocklists this client:
 *                                    the failed write puts the disk in its
 *                                    sticky error, reads of golden go on
 *
 * Connects as client.admin.  Prints one "ok:" line per check; the first
 * failed check prints "FAIL:" and exits 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "storage/rbd.h"
#include "storage/rbd_disk.h"
#include "storage/rbd_int.h"

#include "check_util.h"

#define PARENT "pristine.t.golden"

static struct rbd_cluster *cl;
static const char *pool;
static char msg[512];

static struct backend *golden_open_on(struct rbd_cluster *on, const char *snap)
{
	return golden_open_at(on, pool, PARENT, snap);
}

static struct backend *golden_open(const char *snap)
{
	return golden_open_on(cl, snap);
}

static struct cow *disk_open(const char *name, struct backend *g, uint64_t quota)
{
	struct rbd_disk_opts o = { .quota_bytes = quota };
	struct cow *c;
	int rc = rbd_disk_open(cl, pool, name, g, &o, &c, msg, sizeof(msg));

	CHECK(rc == 0, "rbd_disk_open %s: %d %s", name, rc, msg);
	return c;
}

/* Threads writing the same disk at once: thread t writes 4 KiB pieces
 * with value 0x60+t at every object i with i % NT == t (objects shared
 * by no one else, many new: the held bitmap and its count race), and
 * reads each piece back at once. */
#define NT 4
struct racer {
	struct backend *be;
	int t;
	uint64_t osize, nobj;
	int rc;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	unsigned char buf[4096], back[4096];

	memset(buf, 0x60 + r->t, sizeof(buf));
	for (uint64_t i = (uint64_t)r->t; i < r->nobj && !r->rc; i += NT) {
		uint64_t off = i * r->osize + (i % 3) * 4096;
		if ((r->rc = r->be->ops->write(r->be, buf, off, sizeof(buf), false)) == 0 &&
		    (r->rc = r->be->ops->read(r->be, back, off, sizeof(back))) == 0 &&
		    memcmp(buf, back, sizeof(buf)) != 0)
			r->rc = -EILSEQ;
	}
	return NULL;
}

static void phase_race(struct backend *g)
{
	struct racer r[NT];
	pthread_t th[NT];
	unsigned char *m = malloc(SIZE);
	uint64_t osize = 1ull << RBD_DISK_ORDER, nobj = SIZE / osize;
	struct cow *c;
	int rc;

	CHECK(m, "malloc");
	if (nobj > 128)
		nobj = 128;
	rc = rbd_clone_make(cl, pool, PARENT, "v1", "pristine.t.race", 0, msg, sizeof(msg));
	CHECK(rc == 0, "clone race: %s", msg);
	c = disk_open("pristine.t.race", g, 0);
	for (int t = 0; t < NT; t++) {
		r[t] = (struct racer){ .be = cow_backend(c), .t = t, .osize = osize, .nobj = nobj };
		CHECK(pthread_create(&th[t], NULL, race, &r[t]) == 0, "pthread_create");
	}
	for (int t = 0; t < NT; t++) {
		pthread_join(th[t], NULL);
		CHECK(r[t].rc == 0, "racer %d: %d", t, r[t].rc);
	}
	CHECK(cow_used_bytes(c) == nobj * osize, "%d threads: used %llu, expected %llu", NT,
	      (unsigned long long)cow_used_bytes(c), (unsigned long long)(nobj * osize));
	fill_pattern(m, SIZE);
	for (uint64_t i = 0; i < nobj; i++)
		memset(m + i * osize + (i % 3) * 4096, 0x60 + (int)(i % NT), 4096);
	same(cow_backend(c), m, "4 threads writing and reading one disk at once");
	CHECK(cow_close(c) == 0, "close race");
	CHECK(rbd_image_trash(cl, pool, "pristine.t.race") == 0, "trash race");
	free(m);
}

/* First writes racing in one object: NF threads wait at a barrier, then
 * each writes its own 4 KiB block of the same fresh object at once (the
 * clone holds none of them: first writes, which rbd_disk.c turns into
 * whole-object writes); none of the writes may be lost, over NFOBJ
 * objects. */
#define NF 8
#define NFOBJ 16
struct firster {
	struct backend *be;
	pthread_barrier_t *bar;
	int t;
	uint64_t osize;
	int rc;
};

static void *first_race(void *arg)
{
	struct firster *f = arg;
	unsigned char buf[4096];

	memset(buf, 0x70 + f->t, sizeof(buf));
	for (uint64_t i = 0; i < NFOBJ; i++) {
		uint64_t off = (i + 1) * f->osize + (uint64_t)f->t * (f->osize / NF);
		int rc;
		pthread_barrier_wait(f->bar);
		if ((rc = f->be->ops->write(f->be, buf, off, sizeof(buf), false)) && !f->rc)
			f->rc = rc;
	}
	return NULL;
}

static void phase_first(struct backend *g)
{
	struct firster f[NF];
	pthread_t th[NF];
	pthread_barrier_t bar;
	unsigned char *m = malloc(SIZE);
	uint64_t osize = 1ull << RBD_DISK_ORDER;
	struct cow *c;
	int rc;

	CHECK(m, "malloc");
	CHECK((NFOBJ + 1) * osize <= SIZE && osize / NF >= 4096, "object size %llu",
	      (unsigned long long)osize);
	rc = rbd_clone_make(cl, pool, PARENT, "v1", "pristine.t.first", 0, msg, sizeof(msg));
	CHECK(rc == 0, "clone first: %s", msg);
	c = disk_open("pristine.t.first", g, 0);
	pthread_barrier_init(&bar, NULL, NF);
	for (int t = 0; t < NF; t++) {
		f[t] = (struct firster){ .be = cow_backend(c), .bar = &bar, .t = t, .osize = osize };
		CHECK(pthread_create(&th[t], NULL, first_race, &f[t]) == 0, "pthread_create");
	}
	for (int t = 0; t < NF; t++) {
		pthread_join(th[t], NULL);
		CHECK(f[t].rc == 0, "first writer %d: %d", t, f[t].rc);
	}
	pthread_barrier_destroy(&bar);
	CHECK(cow_used_bytes(c) == NFOBJ * osize, "used %llu after first writes into %d objects",
	      (unsigned long long)cow_used_bytes(c), NFOBJ);
	fill_pattern(m, SIZE);
	for (uint64_t i = 0; i < NFOBJ; i++)
		for (int t = 0; t < NF; t++)
			memset(m + (i + 1) * osize + (uint64_t)t * (osize / NF), 0x70 + t, 4096);
	same(cow_backend(c), m, "8 first writes at once into each fresh object: none lost");
	CHECK(cow_close(c) == 0, "close first");
	/* reopened: what Ceph holds, not the bitmap, reads the same */
	c = disk_open("pristine.t.first", g, 0);
	same(cow_backend(c), m, "the same after a reopen (from Ceph)");
	CHECK(cow_close(c) == 0, "close first again");
	CHECK(rbd_image_trash(cl, pool, "pristine.t.first") == 0, "trash first");
	free(m);
}

/* The parent with its pattern and a snapshot v1 (and v0, to drop). */
static void phase_setup(void)
{
	rados_ioctx_t io;
	rbd_image_t img;
	unsigned char *buf = malloc(SIZE);
	int rc, prot = 0;

	CHECK(buf, "malloc");
	fill_pattern(buf, SIZE);
	rc = rbd_image_create(cl, pool, PARENT, SIZE, 0, msg, sizeof(msg));
	CHECK(rc == 0, "rbd_image_create: %s", msg);
	rc = rbd_image_create(cl, pool, PARENT, SIZE, 0, msg, sizeof(msg));
	CHECK(rc == -EEXIST, "rbd_image_create of an existing image: %d, not -EEXIST", rc);
	printf("ok: image_create, -EEXIST the second time\n");
	CHECK(rbd_pool_ioctx(cl, pool, &io) == 0, "ioctx");
	CHECK(rbd_open(io, PARENT, &img, NULL) == 0, "open parent");
	for (uint64_t off = 0; off < SIZE; off += 4 * MIB)
		if (off < HOLE_OFF || off >= HOLE_OFF + HOLE_LEN)
			CHECK(rbd_write(img, off, 4 * MIB, (char *)buf + off) == (ssize_t)(4 * MIB),
			      "parent write");
	/* a crash between the snapshot and its protection, mended by ensure */
	CHECK(rbd_snap_create(img, "v1") == 0, "snap create v1");
	rbd_close(img);
	rc = rbd_snap_ensure(cl, pool, PARENT, "v1", msg, sizeof(msg));
	CHECK(rc == 0, "snap_ensure after an unprotected snapshot: %s", msg);
	rc = rbd_snap_ensure(cl, pool, PARENT, "v1", msg, sizeof(msg));
	CHECK(rc == 0, "snap_ensure again: %s", msg);
	CHECK(rbd_open_read_only(io, PARENT, &img, NULL) == 0, "open parent ro");
	CHECK(rbd_snap_is_protected(img, "v1", &prot) == 0 && prot, "v1 is not protected");
	rbd_close(img);
	printf("ok: snap_ensure protects a half-made snapshot, and is idempotent\n");
	rc = rbd_snap_ensure(cl, pool, PARENT, "v0", msg, sizeof(msg));
	CHECK(rc == 0, "snap_ensure v0: %s", msg);
	rados_ioctx_destroy(io);
	free(buf);
}

/* Whether image name is in the pool's trash. */
static bool in_trash(rados_ioctx_t io, const char *name)
{
	rbd_trash_image_info_t ents[64];
	size_t n = 64;
	bool found = false;

	CHECK(rbd_trash_list(io, ents, &n) >= 0, "trash list");
	for (size_t i = 0; i < n; i++)
		found |= strcmp(ents[i].name, name) == 0;
	rbd_trash_list_cleanup(ents, n);
	return found;
}

static void phase_main(void)
{
	struct backend *g = golden_open("v1"), *a, *b;
	struct cow *ca, *cb, *c2;
	unsigned char *ma = malloc(SIZE), *mb = malloc(SIZE);
	uint64_t osize = 1ull << RBD_DISK_ORDER, used, run, size, nobj;
	bool mapped;
	rados_ioctx_t io;
	double t;
	int rc;

	CHECK(ma && mb, "malloc");
	CHECK(rbd_pool_ioctx(cl, pool, &io) == 0, "ioctx");
	fill_pattern(ma, SIZE);
	fill_pattern(mb, SIZE);
	rc = rbd_clone_make(cl, pool, PARENT, "v1", "pristine.t.a", 0, msg, sizeof(msg));
	CHECK(rc == 0, "clone a: %s", msg);
	rc = rbd_clone_make(cl, pool, PARENT, "v1", "pristine.t.b", 0, msg, sizeof(msg));
	CHECK(rc == 0, "clone b: %s", msg);
	rc = rbd_clone_make(cl, pool, PARENT, "v1", "pristine.t.b", 0, msg, sizeof(msg));
	CHECK(rc == -EEXIST, "clone over an existing name: %d, not -EEXIST", rc);
	printf("ok: clone_make, -EEXIST the second time\n");
	ca = disk_open("pristine.t.a", g, 0);
	cb = disk_open("pristine.t.b", g, 0);
	a = cow_backend(ca);
	b = cow_backend(cb);
	CHECK(a->size == SIZE && !a->read_only, "a: size %llu", (unsigned long long)a->size);
	same(a, ma, "a fresh clone reads as its parent snapshot");
	CHECK(cow_used_bytes(ca) == 0, "fresh clone uses %llu", (unsigned long long)cow_used_bytes(ca));
	CHECK(a->ops->block_status(a, 0, SIZE, &run, &mapped) == 0 && mapped && run == SIZE,
	      "block_status of a fresh clone over golden (no op: mapped)");
	printf("ok: a fresh clone holds nothing\n");

	/* across the boundary of objects 0 and 1, unaligned; FUA; another */
	CHECK(put(a, ma, osize - 6144, 12288, 0xa1, false) == 0, "write a 1");
	CHECK(put(a, ma, 6 * osize + 512, 1024, 0xa2, true) == 0, "write a 2 (fua)");
	CHECK(put(a, ma, HOLE_OFF + 4096, 4096, 0xa3, false) == 0, "write a 3 (over the hole)");
	same(a, ma, "writes read back (object edges, FUA, over a hole)");
	same(b, mb, "the other clone is unaffected");
	CHECK(cow_used_bytes(ca) == 4 * osize, "used after 4 objects: %llu",
	      (unsigned long long)cow_used_bytes(ca));
	CHECK(a->ops->block_status(a, 6 * osize + 100, osize, &run, &mapped) == 0 && mapped &&
	      run == osize - 100, "block_status of a held object: run %llu", (unsigned long long)run);
	CHECK(a->ops->block_status(a, 2 * osize, osize, &run, &mapped) == 0 && mapped &&
	      run == osize, "block_status of an object not held");
	printf("ok: used_bytes %llu, block_status\n", (unsigned long long)cow_used_bytes(ca));

	/* unmap: a partial range over parent data, a whole object, one that
	 * spans a written object's edge */
	CHECK(a->ops->unmap(a, MIB + 512, 2 * MIB) == 0, "unmap 1");
	memset(ma + MIB + 512, 0, 2 * MIB);
	CHECK(a->ops->unmap(a, 2 * osize, osize) == 0, "unmap 2");
	memset(ma + 2 * osize, 0, osize);
	CHECK(a->ops->unmap(a, osize - 4096, 8192) == 0, "unmap 3");
	memset(ma + osize - 4096, 0, 8192);
	same(a, ma, "unmapped ranges read zeros, also over the parent's data");
	same(b, mb, "the other clone still reads its parent");

	/* quota: the clone holds 5 objects; no room for a sixth */
	used = cow_used_bytes(ca);
	cow_set_quota(ca, used);
	rc = put(a, NULL, 3 * osize, 4096, 0xee, false);
	CHECK(rc == -ENOSPC, "a write beyond the quota: %d, not -ENOSPC", rc);
	rc = a->ops->unmap(a, 4 * osize, 4096);
	CHECK(rc == -ENOSPC, "an unmap beyond the quota: %d, not -ENOSPC", rc);
	CHECK(cow_used_bytes(ca) == used, "used changed by refused writes");
	CHECK(cow_error(ca, NULL) == 0, "-ENOSPC made the disk sticky");
	same(a, ma, "quota: refused writes changed nothing");
	CHECK(put(a, ma, 6 * osize + 8192, 4096, 0xa4, false) == 0,
	      "an overwrite within held objects at the quota");
	cow_set_quota(ca, 0);
	CHECK(a->ops->flush(a) == 0, "flush");
	printf("ok: quota -> -ENOSPC, overwrites go on, flush\n");

	phase_race(g);
	phase_first(g);

	/* a second writer is refused, in bounded time; the first goes on */
	{
		struct rbd_disk_opts o = { 0 };
		t = now();
		rc = rbd_disk_open(cl, pool, "pristine.t.a", g, &o, &c2, msg, sizeof(msg));
		CHECK(rc < 0, "a second open of a clone in use succeeded");
		CHECK(now() - t < 30, "the second open took %.1f s", now() - t);
		printf("ok: second open refused in %.2f s: %s\n", now() - t, msg);
		CHECK(put(a, ma, 7 * osize, 4096, 0xa5, false) == 0, "write after a second open");
	}

	/* reopen: the bitmap comes back from Ceph */
	used = cow_used_bytes(ca);
	CHECK(cow_close(ca) == 0, "close a");
	ca = disk_open("pristine.t.a", g, 0);
	a = cow_backend(ca);
	CHECK(cow_used_bytes(ca) == used, "reopened: used %llu, was %llu",
	      (unsigned long long)cow_used_bytes(ca), (unsigned long long)used);
	CHECK(a->ops->block_status(a, 7 * osize, 4096, &run, &mapped) == 0 && mapped,
	      "reopened: block_status");
	same(a, ma, "reopened after close: the same content and held objects");
	/* a snapshot while the disk is open (its lock held by this handle:
	 * librbd asks the owner), as a draft's commit may */
	rc = rbd_snap_ensure(cl, pool, "pristine.t.a", "v2", msg, sizeof(msg));
	CHECK(rc == 0, "snap_ensure on the open clone: %s", msg);
	CHECK(put(a, NULL, 7 * osize, 4096, 0xa6, false) == 0, "write after the snapshot");
	printf("ok: snap_ensure on an open clone, which writes on\n");
	/* drop: a close without a flush */
	cow_drop(ca);

	/* snapshots, copy */
	rc = rbd_snap_drop(cl, pool, PARENT, "v1", msg, sizeof(msg));
	CHECK(rc == -EBUSY, "snap_drop with clones: %d, not -EBUSY (%s)", rc, msg);
	rc = rbd_snap_drop(cl, pool, PARENT, "v0", msg, sizeof(msg));
	CHECK(rc == 0, "snap_drop v0: %s", msg);
	rc = rbd_snap_drop(cl, pool, PARENT, "v0", msg, sizeof(msg));
	CHECK(rc == -ENOENT, "snap_drop of a dropped snapshot: %d", rc);
	printf("ok: snap_drop: -EBUSY with clones, 0, then -ENOENT\n");
	t = now();
	rc = rbd_image_copy(cl, pool, "pristine.t.a", "v2", "pristine.t.flat", msg, sizeof(msg));
	CHECK(rc == 0, "image_copy: %s", msg);
	printf("ok: image_copy in %.2f s\n", now() - t);
	rc = rbd_image_copy(cl, pool, "pristine.t.a", "v2", "pristine.t.flat", msg, sizeof(msg));
	CHECK(rc == -EEXIST, "image_copy over an existing image: %d", rc);
	{
		rbd_image_t fi;
		rbd_linked_image_spec_t ps;
		rbd_snap_spec_t ss;
		struct rbd_spec sp;
		struct backend *fb;
		char id[128], why[128];
		CHECK(rbd_open_read_only(io, "pristine.t.flat", &fi, NULL) == 0, "open flat");
		rc = rbd_get_parent(fi, &ps, &ss);
		CHECK(rc == -ENOENT, "the copy has a parent (%d)", rc);
		rbd_close(fi);
		snprintf(id, sizeof(id), "%s/pristine.t.flat", pool);
		CHECK(rbd_spec_parse(id, &sp, why, sizeof(why)) == 0, "spec");
		CHECK(backend_rbd_open(cl, &sp, &fb, id, sizeof(id), msg, sizeof(msg)) == 0, "%s", msg);
		same(fb, ma, "image_copy: a flat image with the clone's content");
		backend_close(fb);
	}
	CHECK(rbd_image_stat(cl, pool, "pristine.t.flat", &size) == 0 && size == SIZE, "stat flat");
	/* clones of an image with other (the default 4 MiB) objects, with
	 * smaller and larger objects than their parent's */
	rc = rbd_image_create(cl, pool, "pristine.t.p22", 8 * MIB, 22, msg, sizeof(msg));
	CHECK(rc == 0, "create p22: %s", msg);
	rc = rbd_snap_ensure(cl, pool, "pristine.t.p22", "v1", msg, sizeof(msg));
	CHECK(rc == 0, "snap p22: %s", msg);
	for (int ord = 16; ord <= 24; ord += 4) {
		char cname[64];
		rbd_image_t ci;
		rbd_image_info_t ii;
		snprintf(cname, sizeof(cname), "pristine.t.p22c%d", ord);
		rc = rbd_clone_make(cl, pool, "pristine.t.p22", "v1", cname, ord, msg, sizeof(msg));
		CHECK(rc == 0, "a clone with order %d of an order-22 parent: %s", ord, msg);
		CHECK(rbd_open_read_only(io, cname, &ci, NULL) == 0, "open %s", cname);
		CHECK(rbd_stat(ci, &ii, sizeof(ii)) == 0 && ii.order == ord, "%s: order %d", cname,
		      (int)ii.order);
		rbd_close(ci);
	}
	printf("ok: clones of an order-22 parent with orders 16, 20, 24\n");
	CHECK(rbd_image_stat(cl, pool, "pristine.t.nosuch", &size) == -ENOENT, "stat nosuch");
	printf("ok: image_stat\n");

	/* trash: constant time, the name free at once, purge */
	nobj = SIZE / osize < 256 ? SIZE / osize : 256;
	for (uint64_t i = 0; i < nobj; i++)
		CHECK(put(b, mb, i * osize, 4096, 0xb0 + (int)(i & 15), false) == 0, "write b");
	CHECK(cow_used_bytes(cb) == nobj * osize, "b holds %llu bytes",
	      (unsigned long long)cow_used_bytes(cb));
	cow_close(cb);
	t = now();
	rc = rbd_image_trash(cl, pool, "pristine.t.b");
	CHECK(rc == 0, "image_trash b: %d", rc);
	t = now() - t;
	CHECK(t < 2.0, "trash of an image holding %llu objects took %.2f s",
	      (unsigned long long)nobj, t);
	printf("ok: image_trash of %llu objects in %.3f s\n", (unsigned long long)nobj, t);
	CHECK(rbd_image_stat(cl, pool, "pristine.t.b", &size) == -ENOENT, "b still there");
	CHECK(in_trash(io, "pristine.t.b"), "b not in the trash");
	rc = rbd_clone_make(cl, pool, PARENT, "v1", "pristine.t.b", 0, msg, sizeof(msg));
	CHECK(rc == 0, "a new clone under a trashed name: %s", msg);
	cb = disk_open("pristine.t.b", g, 0);
	fill_pattern(mb, SIZE);
	same(cow_backend(cb), mb, "the new clone under the old name reads its parent");
	cow_close(cb);
	CHECK(rbd_image_trash(cl, pool, "pristine.t.nosuch") == -ENOENT, "trash nosuch");
	CHECK(rbd_image_trash(cl, pool, "pristine.t.b") == 0, "trash b again");
	CHECK(rbd_image_trash(cl, pool, "pristine.t.a") == 0, "trash a (with its snapshot v2)");
	rc = rbd_snap_drop(cl, pool, PARENT, "v1", msg, sizeof(msg));
	CHECK(rc == -EBUSY, "snap_drop with clones in the trash: %d, not -EBUSY", rc);
	printf("ok: snap_drop refused while clones are in the trash\n");
	rc = rbd_trash_purge_own(cl, pool);
	CHECK(rc == 0, "purge: %d", rc);
	CHECK(!in_trash(io, "pristine.t.a") && !in_trash(io, "pristine.t.b"),
	      "purge left our images in the trash");
	printf("ok: purge removed them\n");
	backend_close(g);
	rados_ioctx_destroy(io);
	free(ma);
	free(mb);
}

/* Write 4 KiB pieces into a fresh clone until the pool is full. */
static void phase_full(const char *fill, const char *free_cmd)
{
	struct backend *g = golden_open("v1"), *a;
	struct cow *ca;
	unsigned char *ma = malloc(SIZE);
	uint64_t osize = 1ull << RBD_DISK_ORDER, off;
	double start;
	int rc;

	CHECK(ma, "malloc");
	fill_pattern(ma, SIZE);
	rc = rbd_clone_make(cl, pool, PARENT, "v1", "pristine.t.full", 0, msg, sizeof(msg));
	CHECK(rc == 0, "clone: %s", msg);
	ca = disk_open("pristine.t.full", g, 0);
	a = cow_backend(ca);
	CHECK(put(a, ma, 0, 4096, 0xf0, false) == 0, "first write");
	off = write_until_full(a, ma, fill, 0, osize + 4096);
	CHECK(cow_error(ca, NULL) == 0, "-ENOSPC of a full pool made the disk sticky");
	/* reads go on and show nothing of the refused write */
	same(a, ma, "a full pool: the refused write changed nothing, reads go on");
	CHECK(system(free_cmd) == 0, "%s failed", free_cmd);
	start = now();
	do {
		rc = put(a, NULL, off, 4096, 0xf2, false);
		if (rc == -ENOSPC)
			sleep(1);
	} while (rc == -ENOSPC && now() - start < 120);
	CHECK(rc == 0, "no write succeeded within 120 s of space coming back: %d", rc);
	memset(ma + off, 0xf2, 4096);
	printf("ok: writes go on %.1f s after space came back\n", now() - start);
	CHECK(cow_close(ca) == 0, "close");
	ca = disk_open("pristine.t.full", g, 0);
	same(cow_backend(ca), ma, "reopened after the full pool: the clone is whole");
	cow_close(ca);
	CHECK(rbd_image_trash(cl, pool, "pristine.t.full") == 0, "trash");
	CHECK(rbd_trash_purge_own(cl, pool) == 0, "purge");
	backend_close(g);
	free(ma);
}

/* A write that fails for another reason than space (the client is
 * blocklisted by BLOCK-CMD ADDR): the disk's sticky error.  Golden is read
 * through a second connection, which is not blocklisted. */
static void phase_sticky(const char *conf, const char *block_cmd)
{
	struct rbd_cluster *cl2;
	struct backend *g, *a;
	struct cow *ca;
	unsigned char *ma = malloc(SIZE), *buf = malloc(4096);
	uint64_t osize = 1ull << RBD_DISK_ORDER;
	char *addrs = NULL, cmd[512];
	const char *what = NULL;
	double start, t;
	int rc;

	CHECK(ma && buf, "malloc");
	fill_pattern(ma, SIZE);
	CHECK(rbd_cluster_connect(conf, "admin", &cl2, msg, sizeof(msg)) == 0, "connect 2: %s", msg);
	g = golden_open_on(cl2, "v1");
	rc = rbd_clone_make(cl, pool, PARENT, "v1", "pristine.t.sticky", 0, msg, sizeof(msg));
	CHECK(rc == 0, "clone: %s", msg);
	ca = disk_open("pristine.t.sticky", g, 0);
	a = cow_backend(ca);
	CHECK(put(a, ma, 0, 4096, 0x51, false) == 0, "first write");
	CHECK(rados_getaddrs(rbd_cluster_rados(cl), &addrs) == 0 && addrs, "getaddrs");
	snprintf(cmd, sizeof(cmd), "%s %s", block_cmd, addrs);
	CHECK(system(cmd) == 0, "%s failed", cmd);
	printf("ok: blocklisted %s\n", addrs);
	start = now();
	do {
		rc = put(a, NULL, osize, 4096, 0x52, false);
	} while (rc == 0 && now() - start < 60 && (usleep(200000), 1));
	CHECK(rc == -EIO, "a write of a blocklisted client: %d, not -EIO", rc);
	CHECK(cow_error(ca, &what) < 0 && what && strcmp(what, "write") == 0,
	      "no sticky error after a failed write (%s)", what ? what : "-");
	printf("ok: a failed write (%.1f s after the blocklist): -EIO, sticky error \"%s\"\n",
	       now() - start, what);
	t = now();
	CHECK(put(a, NULL, 0, 4096, 0x53, false) == -EIO, "a write after the error");
	CHECK(a->ops->unmap(a, 0, 4096) == -EIO, "an unmap after the error");
	CHECK(a->ops->flush(a) == -EIO, "a flush after the error");
	CHECK(now() - t < 1, "the sticky error took %.1f s to answer", now() - t);
	/* reads of objects the clone does not hold go on (golden) */
	CHECK(a->ops->read(a, buf, 4 * osize, 4096) == 0 && memcmp(buf, ma + 4 * osize, 4096) == 0,
	      "a read of golden data after the error");
	printf("ok: writes, unmaps, flushes -EIO at once; reads of golden data go on\n");
	rc = cow_close(ca);
	CHECK(rc < 0, "close of a disk in error returned %d", rc);
	backend_close(g);
	rbd_cluster_close(cl2);
	free(addrs);
	free(ma);
	free(buf);
}

/* hold: open a fresh clone, write and flush, say "held" and wait to be
 * killed.  reopen: open it again as soon as librbd lets us (the dead
 * holder's lock), print how long that took, check the flushed write. */
static void phase_hold(void)
{
	struct backend *g = golden_open("v1");
	struct cow *c;
	int rc = rbd_clone_make(cl, pool, PARENT, "v1", "pristine.t.crash", 0, msg, sizeof(msg));

	CHECK(rc == 0, "clone crash: %s", msg);
	c = disk_open("pristine.t.crash", g, 0);
	CHECK(put(cow_backend(c), NULL, 0, 4096, 0xc1, false) == 0, "write");
	CHECK(cow_backend(c)->ops->flush(cow_backend(c)) == 0, "flush");
	printf("held\n");
	for (;;)
		pause();
}

static void phase_reopen(void)
{
	struct backend *g = golden_open("v1");
	struct rbd_disk_opts o = { 0 };
	struct cow *c = NULL;
	unsigned char buf[4096], want[4096];
	double start = now();
	int rc, tries = 0;

	do {
		rc = rbd_disk_open(cl, pool, "pristine.t.crash", g, &o, &c, msg, sizeof(msg));
		tries++;
		if (rc < 0)
			sleep(1);
	} while (rc < 0 && now() - start < 120);
	CHECK(rc == 0, "no open within 120 s of the holder's death: %s", msg);
	printf("ok: reopened %.1f s after the holder was killed (%d tries%s%s)\n", now() - start,
	       tries, tries > 1 ? "; first refusal: " : "", tries > 1 ? msg : "");
	memset(want, 0xc1, sizeof(want));
	CHECK(cow_backend(c)->ops->read(cow_backend(c), buf, 0, 4096) == 0 &&
	      memcmp(buf, want, 4096) == 0, "the flushed write of the killed holder is lost");
	CHECK(put(cow_backend(c), NULL, 4096, 4096, 0xc2, false) == 0, "write after the reopen");
	printf("ok: its flushed write is there, and the new holder writes\n");
	CHECK(cow_close(c) == 0, "close");
	CHECK(rbd_image_trash(cl, pool, "pristine.t.crash") == 0, "trash crash");
	backend_close(g);
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: %s CONF POOL setup|main|full FILL FREE|hold|reopen|sticky BLOCK\n", argv[0]);
		return 2;
	}
	pool = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = rbd_cluster_connect(argv[1], "admin", &cl, msg, sizeof(msg));
	CHECK(rc == 0, "connect: %s", msg);
	if (strcmp(argv[3], "setup") == 0)
		phase_setup();
	else if (strcmp(argv[3], "main") == 0)
		phase_main();
	else if (strcmp(argv[3], "full") == 0 && argc == 6)
		phase_full(argv[4], argv[5]);
	else if (strcmp(argv[3], "hold") == 0)
		phase_hold();
	else if (strcmp(argv[3], "reopen") == 0)
		phase_reopen();
	else if (strcmp(argv[3], "sticky") == 0 && argc == 5)
		phase_sticky(argv[1], argv[4]);
	else
		die("unknown phase %s", argv[3]);
	rbd_cluster_close(cl);
	return 0;
}
