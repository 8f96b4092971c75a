/*
 * ovl_ceph_check.c - storage/ovl_ceph.h against a real cluster: the
 * overlay (storage/overlay.h) with its files in Ceph, over an RBD golden
 * snapshot.  Driven by tests/ceph/test_ovl_ceph.sh, which starts the
 * cluster and checks Ceph's own view around these phases.  Built by the
 * Makefile under ASan/UBSan as build/asan/ovl_ceph_check.
 *
 *   ovl_ceph_check CONF POOL setup   the golden pristine.t.golden (a
 *                                    pattern, with a hole), snapshot v1
 *   ovl_ceph_check CONF POOL main    writes read back over golden, close
 *                                    and reopen, unmap, quota, a second
 *                                    open refused, discard, purge
 *   ovl_ceph_check CONF POOL crash   a child writes and flushes, is killed
 *                                    -9; the reopen (its lock broken as
 *                                    the previous instance's) finds every
 *                                    flushed write
 *   ovl_ceph_check CONF POOL fence   a live child holds an overlay; the
 *                                    parent opens it with the child named
 *                                    as the previous instance: the lock is
 *                                    broken, the child fenced - its later
 *                                    writes and flushes fail and land
 *                                    nowhere (data nor log)
 *   ovl_ceph_check CONF POOL full "FILL-CMD" "FREE-CMD"
 *                                    writes until FILL-CMD has made the
 *                                    pool full: -ENOSPC within a bound,
 *                                    not sticky (also a flush), nothing
 *                                    changed; after FREE-CMD it writes,
 *                                    flushes and reopens whole
 *   ovl_ceph_check CONF POOL bench SECONDS
 *                                    32 threads of 4 KiB random writes
 *                                    into a fresh overlay: prints IOPS
 *
 * Connects as client.admin.  Prints one "ok:" line per check (and
 * "gone: NAME" lines for the script to confirm with rbd/rados); the first
 * failed check prints "FAIL:" and exits 1.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "storage/overlay.h"
#include "storage/ovl_ceph.h"
#include "storage/rbd.h"
#include "storage/rbd_disk.h"
#include "storage/rbd_int.h"

#include "check_util.h"

#define G 4096u
#define GOLDEN "pristine.t.golden"
#define INDEX "pristine.t.overlays"

static struct rbd_cluster *cl;
static struct ovl_ceph *oc;
static rados_ioctx_t rio;
static const char *pool;
static char msg[512];

/* The golden snapshot, read-only. */
static struct backend *golden_open(void)
{
	return golden_open_at(cl, pool, GOLDEN, "v1");
}

/* overlay_open of dir over g through ovl_ceph (quota in bytes, 0 none):
 * its rc, *out on success. */
static uint64_t ckpt_bytes;     /* overlay_opts.checkpoint_bytes of every open */
static int ovl_try(const char *dir, struct backend *g, uint64_t quota, struct overlay **out)
{
	struct overlay_opts o = { .quota_bytes = quota, .io = ovl_ceph_io(oc), .base_id = "t",
				  .checkpoint_bytes = ckpt_bytes };

	return overlay_open(dir, g, &o, out);
}

static struct overlay *ovl(const char *dir, struct backend *g, uint64_t quota)
{
	struct overlay *ov;
	int rc = ovl_try(dir, g, quota, &ov);

	CHECK(rc == 0, "overlay_open %s: %s", dir, strerror(-rc));
	return ov;
}

/* Connect, and the ovl_ceph and pool context every phase uses. */
static void connect_all(const char *conf)
{
	int rc = rbd_cluster_connect(conf, "admin", &cl, msg, sizeof(msg));

	CHECK(rc == 0, "connect: %s", msg);
	rc = ovl_ceph_new(cl, pool, INDEX, &oc, msg, sizeof(msg));
	CHECK(rc == 0, "ovl_ceph_new: %s", msg);
	CHECK(rbd_pool_ioctx(cl, pool, &rio) == 0, "ioctx");
}

static void disconnect_all(void)
{
	rados_ioctx_destroy(rio);
	ovl_ceph_free(oc);
	rbd_cluster_close(cl);
}

static void phase_setup(void)
{
	rbd_image_t img;
	unsigned char *buf = golden_model();
	int rc;

	rc = rbd_image_create(cl, pool, GOLDEN, SIZE, 22, msg, sizeof(msg));
	CHECK(rc == 0, "rbd_image_create: %s", msg);
	CHECK(rbd_open(rio, GOLDEN, &img, NULL) == 0, "open golden");
	for (uint64_t off = 0; off < SIZE; off += 4 * MIB)
		if (off < HOLE_OFF || off >= HOLE_OFF + HOLE_LEN)
			CHECK(rbd_write(img, off, 4 * MIB, (char *)buf + off) == (ssize_t)(4 * MIB),
			      "golden write");
	rbd_close(img);
	rc = rbd_snap_ensure(cl, pool, GOLDEN, "v1", msg, sizeof(msg));
	CHECK(rc == 0, "snap_ensure: %s", msg);
	printf("ok: golden made\n");
	free(buf);
}

/* The marker's live INST of dir (read with librados here). */
static void inst_of(const char *dir, char inst[17])
{
	int n = rados_getxattr(rio, dir, "inst", inst, 16);

	CHECK(n == 16, "marker %s: inst xattr: %d", dir, n);
	inst[16] = '\0';
}

/* Whether object oid exists (0) or not (-ENOENT). */
static int obj_stat(const char *oid)
{
	uint64_t size;
	time_t mtime;

	return rados_stat(rio, oid, &size, &mtime);
}

/* Writes of several shapes read back; close and reopen; unmap. */
static void main_io(struct backend *g, unsigned char *model)
{
	const char *dir = "pristine.t.ovl.a";
	struct overlay *ov = ovl(dir, g, 0);
	struct backend *be = overlay_backend(ov);
	unsigned char *m;

	same(be, model, "a fresh overlay reads the golden");
	CHECK(put(be, model, 0, 4096, 0xa1, false) == 0, "write 0");
	CHECK(put(be, model, 4 * MIB - 8192, 16384, 0xa2, false) == 0, "write across 4 MiB");
	CHECK(put(be, model, 1000, 3000, 0xa3, false) == 0, "write inside a block");
	CHECK(put(be, model, HOLE_OFF + 512, 512, 0xa4, false) == 0, "write into the hole");
	CHECK(put(be, model, SIZE - 4096, 4096, 0xa5, false) == 0, "write the last block");
	CHECK(put(be, model, 7 * MIB + 100, 2 * MIB, 0xa6, false) == 0, "write 2 MiB unaligned");
	same(be, model, "written blocks from the overlay, the others from the golden");
	CHECK(be->ops->flush(be) == 0, "flush");
	CHECK(overlay_close(ov) == 0, "close");
	ov = ovl(dir, g, 0);
	be = overlay_backend(ov);
	same(be, model, "reopened: the same data");
	CHECK(be->ops->unmap(be, 8 * MIB, 4 * MIB) == 0, "unmap");
	memset(model + 8 * MIB, 0, 4 * MIB);
	CHECK(be->ops->unmap(be, 0, 4096) == 0, "unmap 0");
	memset(model, 0, 4096);
	same(be, model, "unmapped ranges read zeros");
	CHECK(overlay_close(ov) == 0, "close");
	ov = ovl(dir, g, 0);
	same(overlay_backend(ov), model, "reopened after the unmap: the same data");
	CHECK(overlay_close(ov) == 0, "close");
	m = golden_model();
	CHECK(memcmp(m, model, SIZE) != 0, "the model did not change");
	free(m);
}

/* Quota: -ENOSPC past it, used_bytes right, kept over a reopen. */
static void main_quota(struct backend *g)
{
	const char *dir = "pristine.t.ovl.q";
	struct overlay *ov = ovl(dir, g, 16 * G);
	struct backend *be = overlay_backend(ov);
	int rc;

	for (unsigned i = 0; i < 16; i++)
		CHECK(put(be, NULL, (uint64_t)i * 3 * G, G, 0xb0 + (int)i, false) == 0, "write %u", i);
	CHECK(overlay_used_bytes(ov) == 16 * G, "used %llu, want %u",
	      (unsigned long long)overlay_used_bytes(ov), 16 * G);
	rc = put(be, NULL, 100 * G, G, 0xbf, false);
	CHECK(rc == -ENOSPC, "a write past the quota: %d, not -ENOSPC", rc);
	CHECK(put(be, NULL, 3 * G, G, 0xbe, false) == 0, "an overwrite within the quota");
	CHECK(overlay_used_bytes(ov) == 16 * G, "used changed: %llu",
	      (unsigned long long)overlay_used_bytes(ov));
	printf("ok: quota: -ENOSPC past it, used_bytes = 16 blocks\n");
	CHECK(overlay_close(ov) == 0, "close");
	ov = ovl(dir, g, 16 * G);
	CHECK(overlay_used_bytes(ov) == 16 * G, "used after reopen %llu",
	      (unsigned long long)overlay_used_bytes(ov));
	rc = put(overlay_backend(ov), NULL, 101 * G, G, 0xbf, false);
	CHECK(rc == -ENOSPC, "after reopen, a write past the quota: %d", rc);
	printf("ok: quota: used_bytes and -ENOSPC the same after a reopen\n");
	CHECK(overlay_close(ov) == 0, "close");
}

/* A second open of a DIR open elsewhere fails and writes nothing. */
static void main_second(struct backend *g, const unsigned char *model)
{
	const char *dir = "pristine.t.ovl.a";
	struct overlay *ov = ovl(dir, g, 0), *ov2 = NULL;
	int rc = ovl_try(dir, g, 0, &ov2);

	CHECK(rc != 0 && !ov2, "a second open of an open overlay succeeded");
	printf("ok: a second open is refused (%s)\n", strerror(-rc));
	same(overlay_backend(ov), model, "the first open reads as before");
	CHECK(put(overlay_backend(ov), NULL, SIZE - 4096, 4096, 0xa5, false) == 0, "the first writes on");
	CHECK(overlay_close(ov) == 0, "close");
}

/* Discard: a new empty overlay at once; the old one stays until the
 * purge, which removes its image and objects. */
static void main_discard(struct backend *g)
{
	const char *dir = "pristine.t.ovl.a";
	char old[17], inst[17], name[256];
	unsigned char *m = golden_model();
	struct overlay *ov;
	uint64_t size;
	double t;

	CHECK(ovl_ceph_exists(oc, dir) == 0, "exists");
	CHECK(ovl_ceph_exists(oc, "pristine.t.ovl.none") == -ENOENT, "exists of none");
	CHECK(ovl_ceph_discard(oc, "pristine.t.ovl.none") == -ENOENT, "discard of none");
	inst_of(dir, old);
	/* as if a purge had dropped the index key while mkdir was between
	 * the key and the marker: the discard must set it again */
	{
		rados_write_op_t op = rados_create_write_op();
		const char *keys[1] = { dir };
		CHECK(op, "op");
		rados_write_op_omap_rm_keys(op, keys, 1);
		CHECK(rados_write_op_operate(op, rio, INDEX, NULL, 0) == 0, "drop the index key");
		rados_release_write_op(op);
	}
	t = now();
	CHECK(ovl_ceph_discard(oc, dir) == 0, "discard");
	printf("ok: discard in %.3f s\n", now() - t);
	inst_of(dir, inst);
	CHECK(strcmp(old, inst) != 0, "the INST did not change");
	snprintf(name, sizeof(name), "%s.%s.data", dir, old);
	CHECK(rbd_image_stat(cl, pool, name, &size) == 0, "the old data image is gone before the purge");
	snprintf(name, sizeof(name), "%s.%s.info", dir, old);
	CHECK(obj_stat(name) == 0, "the old info is gone before the purge");
	printf("ok: the old instance is kept until the purge\n");
	CHECK(ovl_ceph_purge(oc) == 0, "purge");
	snprintf(name, sizeof(name), "%s.%s.data", dir, old);
	CHECK(rbd_image_stat(cl, pool, name, &size) == -ENOENT, "old data image left by the purge");
	printf("gone: %s\n", name);
	const char *files[] = { "info", "log", "map" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s.%s.%s", dir, old, files[i]);
		CHECK(obj_stat(name) == -ENOENT, "%s left by the purge", name);
	}
	printf("gone: %s.%s.\n", dir, old);
	/* purged before any reopen (whose mkdir sets the index key too) */
	ov = ovl(dir, g, 0);
	same(overlay_backend(ov), m, "after the discard the overlay is empty (golden)");
	CHECK(put(overlay_backend(ov), NULL, 0, 4096, 0xd1, false) == 0, "write to the new one");
	CHECK(overlay_close(ov) == 0, "close");
	snprintf(name, sizeof(name), "%s.%s.data", dir, inst);
	CHECK(rbd_image_stat(cl, pool, name, &size) == 0, "the purge removed the live data");
	ov = ovl(dir, g, 0);
	memset(m, 0xd1, 4096);
	same(overlay_backend(ov), m, "the live overlay is whole after the purge");
	CHECK(overlay_close(ov) == 0, "close");
	CHECK(ovl_ceph_purge(oc) == 0, "purge again");
	printf("ok: purge: old image and objects gone, the live one whole\n");
	free(m);
}

/* Many flushes with a tiny checkpoint threshold: the log is replaced
 * (log.tmp renamed over log, its handle kept) again and again while the
 * overlay writes on; every state reads back, also after a reopen. */
static void main_checkpoints(struct backend *g)
{
	const char *dir = "pristine.t.ovl.ck";
	unsigned char *model = golden_model();
	struct overlay *ov;
	struct backend *be;

	ckpt_bytes = 200;
	ov = ovl(dir, g, 0);
	be = overlay_backend(ov);
	for (unsigned i = 0; i < 60; i++) {
		CHECK(put(be, model, (uint64_t)(i * 7919 % 8000) * G, G, 0x30 + (int)(i % 64), false) == 0,
		      "write %u", i);
		if (i % 10 == 9) {
			uint64_t off = (uint64_t)(i * 13 % 8000) * G;
			CHECK(be->ops->unmap(be, off, G) == 0, "unmap %u", i);
			memset(model + off, 0, G);
		}
		CHECK(be->ops->flush(be) == 0, "flush %u", i);
	}
	same(be, model, "60 flushes through repeated checkpoints read back");
	overlay_drop(ov);       /* no final checkpoint: the log is replayed */
	ov = ovl(dir, g, 0);
	same(overlay_backend(ov), model, "reopened after a drop: the same data");
	CHECK(overlay_close(ov) == 0, "close");
	ckpt_bytes = 0;
	free(model);
}

/* The purge leaves an old instance whose data image is still open (here:
 * discarded under an open overlay, as a gateway that has not let go of
 * it), and takes it once it is closed. */
static void main_purge_busy(struct backend *g)
{
	const char *dir = "pristine.t.ovl.busy";
	char old[17], name[256];
	struct overlay *ov = ovl(dir, g, 0);
	uint64_t size;

	CHECK(put(overlay_backend(ov), NULL, 0, G, 0xe1, false) == 0, "write");
	inst_of(dir, old);
	CHECK(ovl_ceph_discard(oc, dir) == 0, "discard");
	CHECK(ovl_ceph_purge(oc) == 0, "purge with an image open");
	snprintf(name, sizeof(name), "%s.%s.data", dir, old);
	CHECK(rbd_image_stat(cl, pool, name, &size) == 0, "the purge removed an open image");
	snprintf(name, sizeof(name), "%s.%s.log", dir, old);
	CHECK(obj_stat(name) == 0, "the purge removed the log of an open overlay");
	printf("ok: the purge leaves an instance whose image is open\n");
	CHECK(overlay_close(ov) == 0, "close");
	CHECK(ovl_ceph_purge(oc) == 0, "purge after the close");
	snprintf(name, sizeof(name), "%s.%s.data", dir, old);
	CHECK(rbd_image_stat(cl, pool, name, &size) == -ENOENT, "closed, and still not purged");
	snprintf(name, sizeof(name), "%s.%s.log", dir, old);
	CHECK(obj_stat(name) == -ENOENT, "closed, its log still there after the purge");
	printf("ok: ... and takes it once closed\n");
}

static void phase_main(void)
{
	struct backend *g = golden_open();
	unsigned char *model = golden_model();

	main_io(g, model);
	main_quota(g);
	main_second(g, model);
	main_checkpoints(g);
	main_discard(g);
	main_purge_busy(g);
	free(model);
	backend_close(g);
}

/* The crash child's writes: write n goes to block n*5 (distinct), value
 * 1 + n % 250; a flush after every 4th, then "acked N" (writes < N are
 * durable) on fd. */
#define CRASH_WRITES 400
static void crash_child(const char *conf, int fd)
{
	struct backend *g;
	struct overlay *ov;
	struct backend *be;
	char addr[RBD_ADDR_MAX], line[RBD_ADDR_MAX + 16];

	connect_all(conf);
	ckpt_bytes = 300;       /* killed in the middle of checkpoints too */
	CHECK(rbd_cluster_addr(cl, addr, sizeof(addr)) == 0, "addr");
	g = golden_open();
	ov = ovl("pristine.t.ovl.crash", g, 0);
	be = overlay_backend(ov);
	snprintf(line, sizeof(line), "addr %s\n", addr);
	CHECK(write(fd, line, strlen(line)) > 0, "pipe");
	for (unsigned n = 0; n < CRASH_WRITES; n++) {
		CHECK(put(be, NULL, (uint64_t)n * 5 * G, G, 1 + (int)(n % 250), false) == 0, "child write");
		if (n % 4 == 3) {
			CHECK(be->ops->flush(be) == 0, "child flush");
			snprintf(line, sizeof(line), "acked %u\n", n + 1);
			CHECK(write(fd, line, strlen(line)) > 0, "pipe");
		}
	}
	for (;;)
		pause();
}

static void phase_crash(const char *conf)
{
	int p[2];
	char buf[8192];
	size_t got = 0;
	unsigned acked = 0;
	char addr[RBD_ADDR_MAX] = "";
	pid_t pid;

	CHECK(pipe(p) == 0, "pipe");
	fflush(stdout);
	if ((pid = fork()) == 0) {
		close(p[0]);
		crash_child(conf, p[1]);
	}
	close(p[1]);
	/* read until enough is acknowledged, then kill it mid-stream */
	while (acked < 120) {
		ssize_t n = read(p[0], buf + got, sizeof(buf) - 1 - got);
		CHECK(n > 0, "the child died before 120 writes were acknowledged");
		got += (size_t)n;
		buf[got] = '\0';
		char *last = strstr(buf, "acked ");
		for (char *s = last; s; s = strstr(s + 1, "acked "))
			last = s;
		if (last)
			acked = (unsigned)atoi(last + 6);
		CHECK(got < sizeof(buf) - 1, "too much from the child");
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (ssize_t n; (n = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0;)
		got += (size_t)n;
	buf[got] = '\0';
	close(p[0]);
	for (char *s = strstr(buf, "acked "); s; s = strstr(s + 1, "acked "))
		acked = (unsigned)atoi(s + 6);
	CHECK(sscanf(buf, "addr %127s", addr) == 1, "no address from the child");
	printf("ok: child killed -9 after %u acknowledged writes\n", acked);

	connect_all(conf);
	rbd_cluster_set_breakable(cl, addr);
	struct backend *g = golden_open();
	double t = now();
	struct overlay *ov = ovl("pristine.t.ovl.crash", g, 0);
	printf("ok: reopened in %.1f s (the dead writer's lock broken)\n", now() - t);
	struct backend *be = overlay_backend(ov);
	unsigned char b[G];
	unsigned later = 0;
	for (unsigned n = 0; n < CRASH_WRITES; n++) {
		uint64_t off = (uint64_t)n * 5 * G;
		CHECK(be->ops->read(be, b, off, G) == 0, "read %u", n);
		bool is_new = b[0] == 1 + n % 250, is_old = b[0] == pat(off);
		for (unsigned i = 1; i < G; i++) {
			is_new = is_new && b[i] == b[0];
			is_old = is_old && b[i] == pat(off + i);
		}
		CHECK(n >= acked || is_new, "acknowledged write %u lost (of %u)", n, acked);
		CHECK(is_new || is_old, "write %u reads neither old nor new", n);
		later += n >= acked && is_new;
	}
	printf("ok: every acknowledged write is there (%u unacknowledged ones too)\n", later);
	CHECK(overlay_close(ov) == 0, "close");
	backend_close(g);
	disconnect_all();
}

/* The fenced child: holds the overlay, says "addr A" and "ready", waits
 * for a byte on in, then writes block 1 and flushes, and reports
 * "after W F end" (the two results). */
static void fence_child(const char *conf, int out, int in)
{
	struct backend *g, *be;
	struct overlay *ov;
	char addr[RBD_ADDR_MAX], line[RBD_ADDR_MAX + 32], go;
	int w, f;

	connect_all(conf);
	CHECK(rbd_cluster_addr(cl, addr, sizeof(addr)) == 0, "addr");
	g = golden_open();
	ov = ovl("pristine.t.ovl.fence", g, 0);
	be = overlay_backend(ov);
	CHECK(put(be, NULL, 0, G, 0x11, false) == 0 && be->ops->flush(be) == 0, "child write 0");
	snprintf(line, sizeof(line), "addr %s\nready\n", addr);
	CHECK(write(out, line, strlen(line)) > 0, "pipe");
	CHECK(read(in, &go, 1) == 1, "no go");
	w = put(be, NULL, G, G, 0x22, false);
	f = be->ops->flush(be);
	snprintf(line, sizeof(line), "after %d %d end\n", w, f);
	CHECK(write(out, line, strlen(line)) > 0, "pipe");
	for (;;)
		pause();
}

/* Read from fd into buf (size len, NUL-terminated) until it holds want
 * or 60 s pass; whether it does. */
static bool read_until(int fd, char *buf, size_t len, const char *want)
{
	size_t got = strlen(buf);
	double start = now();

	while (!strstr(buf, want) && now() - start < 60 && got < len - 1) {
		struct timeval tv = { .tv_sec = 1 };
		fd_set fs;
		FD_ZERO(&fs);
		FD_SET(fd, &fs);
		if (select(fd + 1, &fs, NULL, NULL, &tv) <= 0)
			continue;
		ssize_t n = read(fd, buf + got, len - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
	}
	return strstr(buf, want) != NULL;
}

static void phase_fence(const char *conf)
{
	int up[2], down[2], w = 0, f = 0;
	char buf[1024] = "", addr[RBD_ADDR_MAX] = "";
	unsigned char b[G];
	pid_t pid;

	CHECK(pipe(up) == 0 && pipe(down) == 0, "pipe");
	fflush(stdout);
	if ((pid = fork()) == 0) {
		close(up[0]);
		close(down[1]);
		fence_child(conf, up[1], down[0]);
	}
	close(up[1]);
	close(down[0]);
	CHECK(read_until(up[0], buf, sizeof(buf), "ready\n"), "the child did not get ready: %s", buf);
	CHECK(sscanf(buf, "addr %127s", addr) == 1, "no address from the child");
	connect_all(conf);
	rbd_cluster_set_breakable(cl, addr);
	struct backend *g = golden_open();
	struct overlay *ov = ovl("pristine.t.ovl.fence", g, 0);
	struct backend *be = overlay_backend(ov);
	printf("ok: opened while the previous instance still holds it (its lock broken)\n");
	CHECK(write(down[1], "g", 1) == 1, "go");
	CHECK(read_until(up[0], buf, sizeof(buf), " end\n"),
	      "the fenced child did not report within 60 s (hung?): %s", buf);
	CHECK(sscanf(strstr(buf, "after "), "after %d %d", &w, &f) == 2, "child said: %s", buf);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK(w < 0 || f < 0, "the fenced child's write (%d) and flush (%d) both succeeded", w, f);
	printf("ok: the fenced instance's write/flush fail (%d, %d)\n", w, f);
	CHECK(be->ops->read(be, b, 0, G) == 0 && b[0] == 0x11 && b[G - 1] == 0x11,
	      "the flushed write before the fence is lost");
	CHECK(be->ops->read(be, b, G, G) == 0 && b[0] == pat(G) && b[G - 1] == pat(2 * G - 1),
	      "the fenced write landed");
	CHECK(put(be, NULL, 2 * G, G, 0x33, false) == 0 && be->ops->flush(be) == 0, "new holder writes");
	CHECK(overlay_close(ov) == 0, "close");
	ov = ovl("pristine.t.ovl.fence", g, 0);
	be = overlay_backend(ov);
	CHECK(be->ops->read(be, b, G, G) == 0 && b[0] == pat(G), "the fenced write landed (reopen)");
	CHECK(be->ops->read(be, b, 2 * G, G) == 0 && b[0] == 0x33, "the new holder's write lost");
	printf("ok: nothing of the fenced instance landed; the new holder's writes did\n");
	CHECK(overlay_close(ov) == 0, "close");
	backend_close(g);
	close(up[0]);
	close(down[1]);
	disconnect_all();
}

/* A full pool: -ENOSPC, never a hang, never the sticky error. */
static void phase_full(const char *fill, const char *free_cmd)
{
	struct backend *g = golden_open();
	unsigned char *model = golden_model();
	struct overlay *ov = ovl("pristine.t.ovl.full", g, 0);
	struct backend *be = overlay_backend(ov);
	uint64_t off;
	double start;
	int rc;

	CHECK(put(be, model, 0, G, 0xf0, false) == 0 && be->ops->flush(be) == 0, "first write");
	off = write_until_full(be, model, fill, 5 * MIB + 3 * G, 5 * MIB + 3 * G);
	rc = be->ops->flush(be);
	CHECK(rc == 0 || rc == -ENOSPC, "flush in a full pool: %d", rc);
	CHECK(overlay_error(ov, NULL) == 0, "a full pool made the overlay sticky");
	printf("ok: a flush in the full pool: %s, not sticky\n", rc ? strerror(-rc) : "done");
	same(be, model, "a full pool: the refused write changed nothing, reads go on");
	CHECK(system(free_cmd) == 0, "%s failed", free_cmd);
	start = now();
	do {
		rc = put(be, NULL, off, G, 0xf2, false);
		if (rc == 0)
			rc = be->ops->flush(be);
		if (rc == -ENOSPC)
			sleep(1);
	} while (rc == -ENOSPC && now() - start < 120);
	CHECK(rc == 0, "no write and flush within 120 s of space coming back: %d", rc);
	memset(model + off, 0xf2, G);
	printf("ok: writes and flushes go on %.1f s after space came back\n", now() - start);
	CHECK(overlay_close(ov) == 0, "close");
	ov = ovl("pristine.t.ovl.full", g, 0);
	same(overlay_backend(ov), model, "reopened after the full pool: the overlay is whole");
	CHECK(overlay_close(ov) == 0, "close");
	backend_close(g);
	free(model);
}

struct bencher {
	struct backend *be;     /* the overlay, or NULL: img directly */
	rbd_image_t img;
	double until;
	unsigned seed;
	uint64_t done;
	int err;
};

/* One writer of the bench: 4 KiB random aligned writes until the end. */
static void *bench_one(void *arg)
{
	struct bencher *b = arg;
	unsigned char buf[4096];

	memset(buf, 0x5a, sizeof(buf));
	while (now() < b->until) {
		uint64_t blk = (uint64_t)rand_r(&b->seed) % (SIZE / 4096);
		int rc = b->be ? b->be->ops->write(b->be, buf, blk * 4096, 4096, false)
			       : (int)rbd_write(b->img, blk * 4096, 4096, (char *)buf);
		if (!b->be && rc == 4096)
			rc = 0;
		if (rc < 0) {
			b->err = rc;
			break;
		}
		b->done++;
	}
	return NULL;
}

#define BENCH_T 32
/* BENCH_T writers on be (or img) for seconds: the IOPS. */
static double bench_run(struct backend *be, rbd_image_t img, int seconds)
{
	struct bencher b[BENCH_T];
	pthread_t th[BENCH_T];
	uint64_t total = 0;
	double t0 = now();

	for (int i = 0; i < BENCH_T; i++) {
		b[i] = (struct bencher){ .be = be, .img = img, .until = t0 + seconds,
					 .seed = 77u + (unsigned)i };
		CHECK(pthread_create(&th[i], NULL, bench_one, &b[i]) == 0, "thread");
	}
	for (int i = 0; i < BENCH_T; i++) {
		pthread_join(th[i], NULL);
		CHECK(b[i].err == 0, "bench write: %s", strerror(-b[i].err));
		total += b[i].done;
	}
	return (double)total / (now() - t0);
}

/* The bench's load straight into a fresh plain image like an overlay's
 * data image: what librbd alone gives with synchronous writes from as
 * many threads.  Prints the IOPS. */
static void bench_raw(int round, int seconds)
{
	char name[64];
	rbd_image_t img;
	double iops;
	int rc;

	snprintf(name, sizeof(name), "pristine.t.bench.raw%d", round);
	rc = rbd_image_create(cl, pool, name, SIZE, OVL_CEPH_ORDER, msg, sizeof(msg));
	CHECK(rc == 0, "create: %s", msg);
	CHECK(rbd_open(rio, name, &img, NULL) == 0, "open raw");
	iops = bench_run(NULL, img, seconds);
	printf("bench: round %d: rbd_write alone, a fresh plain image, 4 KiB random writes, "
	       "%d threads: %.0f IOPS\n", round, BENCH_T, iops);
	rbd_close(img);
}

/* One round of the bench: a fresh overlay (named by round) through
 * ovl_ceph and bench_raw, in the order raw_first says.  Prints both. */
static void bench_round(struct backend *g, int round, int seconds, bool raw_first)
{
	char name[64];
	struct overlay *ov;
	double iops;

	if (raw_first)
		bench_raw(round, seconds);
	snprintf(name, sizeof(name), "pristine.t.ovl.bench%d", round);
	ov = ovl(name, g, 0);
	iops = bench_run(overlay_backend(ov), NULL, seconds);
	CHECK(overlay_backend(ov)->ops->flush(overlay_backend(ov)) == 0, "flush");
	printf("bench: round %d: ovl_ceph, a fresh overlay, 4 KiB random writes, %d threads: "
	       "%.0f IOPS\n", round, BENCH_T, iops);
	CHECK(overlay_close(ov) == 0, "close");
	if (!raw_first)
		bench_raw(round, seconds);
}

/* Two rounds in opposite orders, so that a busy moment of the machine
 * (or a cluster still settling) does not decide the comparison alone. */
static void phase_bench(int seconds)
{
	struct backend *g = golden_open();

	for (int round = 1; round <= 2; round++)
		bench_round(g, round, seconds, round == 2);
	backend_close(g);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s CONF POOL setup|main|crash|fence|full FILL FREE|bench SECONDS\n", argv[0]);
		return 2;
	}
	pool = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[3], "crash") == 0 || strcmp(argv[3], "fence") == 0) {
		/* these connect after their fork */
		if (argv[3][0] == 'c')
			phase_crash(argv[1]);
		else
			phase_fence(argv[1]);
		return 0;
	}
	connect_all(argv[1]);
	if (strcmp(argv[3], "setup") == 0)
		phase_setup();
	else if (strcmp(argv[3], "main") == 0)
		phase_main();
	else if (strcmp(argv[3], "full") == 0 && argc == 6)
		phase_full(argv[4], argv[5]);
	else if (strcmp(argv[3], "bench") == 0 && argc == 5)
		phase_bench(atoi(argv[4]));
	else
		die("unknown phase %s", argv[3]);
	disconnect_all();
	return 0;
}
