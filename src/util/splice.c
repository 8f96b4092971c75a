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

/* Call step until len bytes have moved: retried on EINTR and short
 * moves; 0, -errno, or -EIO when nothing moves. */
static int move_all(ssize_t (*step)(void *ctx, size_t len), void *ctx, size_t len)
{
	while (len > 0) {
		ssize_t n = step(ctx, len);
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

struct file_src {
	int fd, pipe_wr;
	loff_t pos;             /* advanced by splice */
};

static ssize_t file_step(void *ctx, size_t len)
{
	struct file_src *f = ctx;

	return splice(f->fd, &f->pos, f->pipe_wr, NULL, len, SPLICE_F_NONBLOCK);
}

static ssize_t zero_step(void *ctx, size_t len)
{
	struct iovec iov = { (void *)zero_run, len < ZERO_BYTES ? len : ZERO_BYTES };

	return vmsplice(*(int *)ctx, &iov, 1, SPLICE_F_NONBLOCK);
}

int splice_full(int fd, uint64_t off, int pipe_wr, size_t len)
{
	struct file_src f = { fd, pipe_wr, (loff_t)off };

	return move_all(file_step, &f, len);
}

int splice_zeros(int pipe_wr, size_t len)
{
	return move_all(zero_step, &pipe_wr, len);
}
