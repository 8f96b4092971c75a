/*
 * splice.c - file data and zeros into a pipe by reference (see splice.h).
 */
#include "util/splice.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>

#define ZERO_BYTES 65536u

/* Never written: vmsplice takes references to these pages, and a later
 * write would change what an earlier Data-In PDU still has to send. */
static const _Alignas(4096) unsigned char zero_run[ZERO_BYTES];

int splice_full(int fd, uint64_t off, int pipe_wr, size_t len)
{
	loff_t pos = (loff_t)off;

	while (len > 0) {
		ssize_t n = splice(fd, &pos, pipe_wr, NULL, len, SPLICE_F_NONBLOCK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		len -= (size_t)n;
	}
	return 0;
}

int splice_zeros(int pipe_wr, size_t len)
{
	while (len > 0) {
		struct iovec iov = { (void *)zero_run, len < ZERO_BYTES ? len : ZERO_BYTES };
		ssize_t n = vmsplice(pipe_wr, &iov, 1, SPLICE_F_NONBLOCK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		len -= (size_t)n;
	}
	return 0;
}
