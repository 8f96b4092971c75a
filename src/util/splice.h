/*
 * splice.h - moving file data into a pipe without copying it (splice(2)):
 * the pipe then holds references to the page-cache pages, and a splice
 * from the pipe into a TCP socket sends them as they are.  Used for
 * Data-In when data digests are off (src/proto/datain.c).
 *
 * Both calls are all-or-error, like pread_full.  They never wait for
 * room in the pipe: one that fills up gives -EAGAIN (a pipe has room for
 * about its size in bytes, less when the range does not start on a page
 * boundary: every page it touches takes a slot).
 */
#ifndef PRISTINE_SPLICE_H
#define PRISTINE_SPLICE_H

#include <stddef.h>
#include <stdint.h>

/* Move exactly len bytes of fd at off into pipe_wr.  0, -errno, or -EIO
 * at end of file (the file shrank under us). */
int splice_full(int fd, uint64_t off, int pipe_wr, size_t len);
/* Put len zero bytes into pipe_wr (references to one static zero page
 * run, never written).  0 or -errno. */
int splice_zeros(int pipe_wr, size_t len);

#endif
