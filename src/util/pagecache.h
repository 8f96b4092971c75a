/*
 * pagecache.h - how much of a file's byte range sits in the page cache
 * now (issue 18: "how much of a boot set is in memory").
 *
 * mincore(2) over a private, read-only mapping of the range, made and
 * unmapped slice by slice (PAGECACHE_SLICE bytes at most at a time), so
 * that a query of a whole 32 GiB disk needs neither a big vector nor a
 * big mapping that outlives the call.  Nothing is read: mapping a file
 * without touching it faults nothing in.
 *
 * An estimate: the kernel may drop or read in pages at any moment.  Since
 * Linux 5.2 mincore reports the page cache of a file only to a process
 * that owns the file or may write to it (else only pages it has mapped
 * itself: none here), so for a file the daemon may not write this counts
 * nothing - the daemon owns its state directory and runs as root or as
 * the owner of its images.
 */
#ifndef PRISTINE_PAGECACHE_H
#define PRISTINE_PAGECACHE_H

#include <stdint.h>

#define PAGECACHE_SLICE (32u << 20)

/*
 * Bytes of [off, off+len) of the file or block device fd (open for
 * reading) whose pages are in the page cache, into *bytes; a page only
 * partly inside the range counts for its part inside.  Pages past the
 * end of the file count as not resident.  0, or -errno of mmap/mincore
 * (-ENODEV: the file cannot be mapped); *bytes is then 0.
 */
int pagecache_resident(int fd, uint64_t off, uint64_t len, uint64_t *bytes);

#endif
