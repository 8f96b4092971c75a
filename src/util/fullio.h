/*
 * fullio.h - positional reads and writes of an exact length: retried on
 * EINTR and short transfers, so callers see all-or-error.
 */
#ifndef PRISTINE_FULLIO_H
#define PRISTINE_FULLIO_H

#include <stddef.h>
#include <stdint.h>

/* Read exactly len bytes at off.  0, -errno, or -EIO at end of file. */
int pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Write exactly len bytes at off.  0 or -errno (-EIO if nothing moves). */
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

#endif
