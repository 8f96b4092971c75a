/*
 * check_util.h - what the two cluster checkers (tests/ceph/rbd_disk_check.c
 * and tests/ceph/ovl_ceph_check.c) share: stopping on a failed check, a
 * clock, the golden's byte pattern and a model of it, whole-disk
 * comparison, writes that keep a model, the golden snapshot opened
 * read-only, and writing into a filling pool until it refuses.
 * check_util.c implements it; the Makefile links it into both.
 *
 * Every check that fails prints one "FAIL:" line and exits 1; every
 * passed check that prints says "ok:".
 */
#ifndef PRISTINE_TESTS_CHECK_UTIL_H
#define PRISTINE_TESTS_CHECK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/backend.h"
#include "storage/rbd.h"

#define MIB (1ull << 20)
#define SIZE (32 * MIB)         /* the golden: 8 objects of 4 MiB */
#define HOLE_OFF (20 * MIB)     /* never written in the golden: zeros */
#define HOLE_LEN (4 * MIB)

/* Stop the test: prints "FAIL: " and the message, exits 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define CHECK(cond, ...) do { if (!(cond)) die(__VA_ARGS__); } while (0)

/* Seconds on the monotonic clock. */
double now(void);

/* The golden's byte at off: a pattern that differs per 4 KiB block, zero
 * in the hole. */
unsigned char pat(uint64_t off);

/* buf[i] = pat(i) for the first len bytes. */
void fill_pattern(unsigned char *buf, uint64_t len);

/* A model of the golden's SIZE bytes of content (caller frees). */
unsigned char *golden_model(void);

/* Whole-disk read of be equals model (else names the first difference);
 * prints "ok: what". */
void same(struct backend *be, const unsigned char *model, const char *what);

/* Write len bytes of value v at off through be (fua as given), and into
 * model (when not NULL) if it worked.  Returns the write's rc. */
int put(struct backend *be, unsigned char *model, uint64_t off, size_t len, int v, bool fua);

/* POOL/IMAGE@SNAP on cluster cl opened read-only (caller closes it). */
struct backend *golden_open_at(struct rbd_cluster *cl, const char *pool, const char *image,
			       const char *snap);

/* Run fill (a shell command that makes the pool full), then write 4 KiB
 * pieces of 0xf1 through be at first, first + step, ... (mod SIZE) until
 * one is refused with -ENOSPC: each write within 20 s, the refusal within
 * 120 s.  The pieces that land go into model.  Prints an "ok:" line and
 * returns the refused piece's offset. */
uint64_t write_until_full(struct backend *be, unsigned char *model, const char *fill,
			  uint64_t first, uint64_t step);

#endif
