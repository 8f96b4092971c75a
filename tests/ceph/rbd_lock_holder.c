/*
 * rbd_lock_holder.c - a second, live client holding the exclusive lock of
 * an RBD image, for tests/ceph/test_rbd_kill.sh: pristined must never
 * break a lock whose owner is not its own previous instance.
 *
 *   rbd_lock_holder CONF POOL IMAGE
 *       connects as client.admin, opens POOL/IMAGE, takes its exclusive
 *       lock through the API (librbd then refuses to hand it over),
 *       prints "held ADDR" (its client address), and waits for a line on
 *       stdin; then checks that it still owns the lock and can write and
 *       flush 4 KiB at byte 0 (it was neither broken nor blocklisted),
 *       prints "ok: still the owner, wrote", releases and exits 0.
 *       Any failure prints "FAIL: ..." and exits 1.
 *
 * Plain librados/librbd: nothing of pristine's is linked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

/* Print why and exit 1. */
static void die(const char *what, int rc)
{
	printf("FAIL: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	fflush(stdout);
	exit(1);
}

int main(int argc, char **argv)
{
	rados_t cl;
	rados_ioctx_t io;
	rbd_image_t img;
	char *addrs = NULL, line[64], buf[4096];
	int rc, owner = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: %s CONF POOL IMAGE\n", argv[0]);
		return 2;
	}
	if ((rc = rados_create2(&cl, "ceph", "client.admin", 0)) < 0)
		die("rados_create2", rc);
	if ((rc = rados_conf_read_file(cl, argv[1])) < 0)
		die(argv[1], rc);
	rados_conf_set(cl, "rbd_cache", "false");
	if ((rc = rados_connect(cl)) < 0)
		die("connect", rc);
	if ((rc = rados_ioctx_create(cl, argv[2], &io)) < 0)
		die(argv[2], rc);
	if ((rc = rbd_open(io, argv[3], &img, NULL)) < 0)
		die(argv[3], rc);
	if ((rc = rbd_lock_acquire(img, RBD_LOCK_MODE_EXCLUSIVE)) < 0)
		die("lock_acquire", rc);
	if ((rc = rados_getaddrs(cl, &addrs)) < 0)
		die("getaddrs", rc);
	printf("held %s\n", addrs);
	fflush(stdout);
	free(addrs);
	if (!fgets(line, sizeof(line), stdin))
		line[0] = '\0';
	if ((rc = rbd_is_exclusive_lock_owner(img, &owner)) < 0 || !owner)
		die("the lock was taken away from us", rc < 0 ? rc : 1);
	memset(buf, 0x4c, sizeof(buf));
	if ((rc = (int)rbd_write(img, 0, sizeof(buf), buf)) != (int)sizeof(buf))
		die("write (blocklisted?)", rc < 0 ? rc : 5);
	if ((rc = rbd_flush(img)) < 0)
		die("flush", rc);
	printf("ok: still the owner, wrote\n");
	fflush(stdout);
	rbd_lock_release(img);
	rbd_close(img);
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
	return 0;
}
