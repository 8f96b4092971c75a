/*
 * check_util.c - the helpers the cluster checkers share (check_util.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_util.h"

/* Print "FAIL: " and the message, exit 1. */
void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("FAIL: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	exit(1);
}

/* Seconds on the monotonic clock. */
double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The golden's byte at off: differs per 4 KiB block; zero in the hole. */
unsigned char pat(uint64_t off)
{
	if (off >= HOLE_OFF && off < HOLE_OFF + HOLE_LEN)
		return 0;
	return (unsigned char)((off >> 12) * 37 + (off & 0xfff) * 11 + 1);
}

/* The pattern into buf from offset 0. */
void fill_pattern(unsigned char *buf, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		buf[i] = pat(i);
}

/* A freshly allocated model of the golden; the caller frees it. */
unsigned char *golden_model(void)
{
	unsigned char *m = malloc(SIZE);

	CHECK(m, "malloc");
	fill_pattern(m, SIZE);
	return m;
}

/* Read all of be and compare with model; dies at the first difference. */
void same(struct backend *be, const unsigned char *model, const char *what)
{
	unsigned char *buf = malloc(SIZE);
	int rc;

	CHECK(buf, "malloc");
	/* in uneven pieces, so runs across held and not held objects are read */
	for (uint64_t off = 0; off < SIZE;) {
		uint64_t n = 3 * MIB + 4096;
		if (n > SIZE - off)
			n = SIZE - off;
		rc = be->ops->read(be, buf + off, off, (size_t)n);
		CHECK(rc == 0, "%s: read at %llu: %d", what, (unsigned long long)off, rc);
		off += n;
	}
	for (uint64_t i = 0; i < SIZE; i++)
		CHECK(buf[i] == model[i], "%s: byte %llu is %#x, expected %#x", what,
		      (unsigned long long)i, buf[i], model[i]);
	free(buf);
	printf("ok: %s\n", what);
}

/* One write of len bytes of v; the model follows only a write that worked. */
int put(struct backend *be, unsigned char *model, uint64_t off, size_t len, int v, bool fua)
{
	unsigned char *buf = malloc(len);
	int rc;

	CHECK(buf, "malloc");
	memset(buf, v, len);
	rc = be->ops->write(be, buf, off, len, fua);
	if (rc == 0 && model)
		memset(model + off, v, len);
	free(buf);
	return rc;
}

/* Parse POOL/IMAGE@SNAP and open it read-only; dies if either fails. */
struct backend *golden_open_at(struct rbd_cluster *cl, const char *pool, const char *image,
			       const char *snap)
{
	struct rbd_spec sp;
	struct backend *g;
	char id[128], why[128], msg[512];
	int rc;

	snprintf(id, sizeof(id), "%s/%s@%s", pool, image, snap);
	CHECK(rbd_spec_parse(id, &sp, why, sizeof(why)) == 0, "spec %s: %s", id, why);
	rc = backend_rbd_open(cl, &sp, &g, id, sizeof(id), msg, sizeof(msg));
	CHECK(rc == 0, "golden open: %s", msg);
	return g;
}

/* Fill the pool and write on until -ENOSPC, each write in bounded time:
 * 0 until the OSD and the monitors have seen the pool full, then -ENOSPC. */
uint64_t write_until_full(struct backend *be, unsigned char *model, const char *fill,
			  uint64_t first, uint64_t step)
{
	uint64_t off = first;
	double t, worst = 0, start;
	int rc = 0, n = 0;

	CHECK(system(fill) == 0, "%s failed", fill);
	start = now();
	while (now() - start < 120) {
		t = now();
		rc = put(be, NULL, off, 4096, 0xf1, false);
		t = now() - t;
		worst = t > worst ? t : worst;
		CHECK(t < 20, "a write took %.1f s (rc %d): a hang on a full pool", t, rc);
		if (rc == -ENOSPC)
			break;
		CHECK(rc == 0, "write in a filling pool: %d", rc);
		memset(model + off, 0xf1, 4096);
		n++;
		off = (off + step) % SIZE;
	}
	CHECK(rc == -ENOSPC, "no -ENOSPC in 120 s of writes into a full pool");
	printf("ok: full pool -> -ENOSPC after %d writes in %.1f s, the slowest %.2f s\n", n,
	       now() - start, worst);
	return off;
}
