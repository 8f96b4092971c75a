/*
 * pagecache.c - page cache residency of a file range (pagecache.h).
 *
 * Each slice is mapped PROT_READ/MAP_PRIVATE and unmapped before the
 * next: a mapping never touched costs no memory, and with the mapping
 * gone at once nothing of the file stays pinned by the daemon.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/pagecache.h"

/* The page size (sysconf once; it never changes). */
static uint64_t page_size(void)
{
	static uint64_t ps;
	uint64_t p = __atomic_load_n(&ps, __ATOMIC_RELAXED);

	if (!p) {
		long v = sysconf(_SC_PAGESIZE);
		p = v > 0 ? (uint64_t)v : 4096u;
		__atomic_store_n(&ps, p, __ATOMIC_RELAXED);
	}
	return p;
}

/*
 * Resident bytes of [off, end) where the slice [start, start+maplen)
 * (page aligned, maplen a multiple of the page size) covers it: one
 * mapping, one mincore, unmapped at once.  0 or -errno.
 */
static int slice_resident(int fd, uint64_t start, uint64_t maplen, uint64_t off, uint64_t end,
			  uint64_t *bytes)
{
	static const unsigned max_pages = PAGECACHE_SLICE / 4096u;
	unsigned char vec[PAGECACHE_SLICE / 4096u];
	uint64_t ps = page_size(), npages = maplen / ps;
	int rc = 0;

	if (npages > max_pages)
		return -EINVAL;
	void *p = mmap(NULL, maplen, PROT_READ, MAP_PRIVATE, fd, (off_t)start);
	if (p == MAP_FAILED)
		return -errno;
	if (mincore(p, maplen, vec) < 0)
		rc = -errno;
	munmap(p, maplen);
	for (uint64_t i = 0; rc == 0 && i < npages; i++) {
		if (!(vec[i] & 1))
			continue;
		uint64_t a = start + i * ps, b = a + ps;
		a = a > off ? a : off;
		b = b < end ? b : end;
		if (b > a)
			*bytes += b - a;
	}
	return rc;
}

/* See pagecache.h. */
int pagecache_resident(int fd, uint64_t off, uint64_t len, uint64_t *bytes)
{
	uint64_t ps = page_size(), end = off + len;
	/* The slice never needs more vector than PAGECACHE_SLICE / 4 KiB
	 * bytes, whatever the page size. */
	uint64_t slice = PAGECACHE_SLICE / 4096u * ps;
	int rc = 0;

	*bytes = 0;
	if (len == 0)
		return 0;
	if (end < off)
		return -EINVAL;
	for (uint64_t at = off - off % ps; at < end && rc == 0; at += slice) {
		uint64_t left = end - at;
		uint64_t maplen = left < slice ? (left + ps - 1) / ps * ps : slice;
		rc = slice_resident(fd, at, maplen, off, end, bytes);
	}
	if (rc)
		*bytes = 0;
	return rc;
}
