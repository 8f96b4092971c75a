/*
 * datain.c - where the bytes of a Data-In PDU come from.
 *
 * PDU size: Data-In PDUs carry at most DATAIN_PDU_MAX (32 KiB), however
 * much the initiator would take (typically 256 KiB).  Each is one sendmsg
 * that TCP pushes at once, so the client copies one while we read and
 * send the next: over loopback on 2 CPUs 1 MiB reads ran 1.4x faster with
 * 32 KiB PDUs than with 256 KiB ones, and 256-PC boot storms 1.2x
 * (BENCHMARKS.md "Data-In").  The 48-byte header costs 0.15%.
 *
 * Everything but READ, and READs that fit in one PDU, arrive from the
 * SCSI layer in a buffer.  A READ of several 32 KiB PDUs is deferred
 * (scsi_cmd.defer_min) and read PDU by PDU into a buffer of one PDU just
 * before it is sent: a command holds 32 KiB, not up to 8 MiB, and the
 * bytes are still in the CPU's cache when sendmsg copies them (+3%).
 * Initiators that take less than 32 KiB per PDU (iPXE: 8 KiB) get the
 * whole command read at once, as before.  The LU's io_lock is held
 * shared from the first PDU to the last (scsi_cmd_data_begin/end in
 * command.c), so such a READ stays atomic against COMPARE AND WRITE and
 * WRITE ATOMIC (tests/proto/test_zero_copy.py checks it); it holds up
 * only those, not ordinary reads and writes.
 *
 * Deferring is for fast stores (inflight_fast: the page cache answers).
 * A deferred read does its I/O in the connection's one sender, one
 * command after another, so on a slow store (Ceph, a cold disk) READs of
 * up to DATAIN_WHOLE_MAX are read whole by the worker that executes
 * them: QD32 of them are 32 reads in flight to the store, not one.  They
 * hold at most conn_inflight x DATAIN_WHOLE_MAX per connection; longer
 * ones are still deferred.
 *
 * With zero-copy (an option, off by default: on loopback it costs more
 * than it saves, see BENCHMARKS.md) and no data digests, PDUs are as
 * large as the initiator takes, READs of 64 KiB and more are deferred,
 * and each PDU's bytes are spliced from the page cache of the
 * image/overlay files into a pipe and from the pipe into the socket: the
 * daemon copies nothing.
 *
 * Either way the bytes of a PDU are in hand before its header is sent: a
 * read that fails is still answered with CHECK CONDITION (after the PDUs
 * already sent), never with a half-sent PDU.  Whatever goes wrong on the
 * splice side (no pipe, a backend that cannot, an I/O error) falls back
 * to a plain read of that PDU, whose result counts.
 *
 * Pipes come from a small process-wide pool: a pipe is held only while
 * one PDU is filled and sent, so DATAIN_PIPES bounds them however many
 * connections there are (the kernel limits pipe memory per user), and a
 * connection that finds the pool empty reads into a buffer instead.
 */
#include "proto/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define DATAIN_PIPES      16u
#define DATAIN_PIPE_BYTES (1u << 20)

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct datain_pipe pool[DATAIN_PIPES];
static unsigned pool_free, pool_open;
static uint32_t pipe_bytes;             /* capacity of our pipes, once known */

/* A new pipe of DATAIN_PIPE_BYTES, or of what the kernel lets us have. */
static int pipe_new(struct datain_pipe *p)
{
	int fd[2];

	if (pipe2(fd, O_CLOEXEC) < 0)
		return -1;
	int got = fcntl(fd[1], F_SETPIPE_SZ, (int)DATAIN_PIPE_BYTES);
	if (got < 0)
		got = fcntl(fd[1], F_GETPIPE_SZ);
	if (got <= 0) {
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	__atomic_store_n(&pipe_bytes, (uint32_t)got, __ATOMIC_RELAXED);
	p->rd = fd[0];
	p->wr = fd[1];
	return 0;
}

/* A pipe that may hold bytes nobody will send: closed (which drops
 * them), its place in the pool freed (also for a pipe never made, rd < 0). */
static void pipe_drop(struct datain_pipe *p)
{
	if (p->rd >= 0) {
		close(p->rd);
		close(p->wr);
	}
	p->rd = p->wr = -1;
	pthread_mutex_lock(&pool_lock);
	pool_open--;
	pthread_mutex_unlock(&pool_lock);
}

/* A pipe with room for len bytes, or false (then read into a buffer). */
static bool pipe_get(uint32_t len, struct datain_pipe *p)
{
	uint32_t cap = __atomic_load_n(&pipe_bytes, __ATOMIC_RELAXED);

	/* Every page the range touches takes a slot: two spare for an
	 * unaligned start and end. */
	if (cap && (uint64_t)len + 2 * 4096 > cap)
		return false;
	pthread_mutex_lock(&pool_lock);
	if (pool_free) {
		*p = pool[--pool_free];
		pthread_mutex_unlock(&pool_lock);
		return true;
	}
	if (pool_open == DATAIN_PIPES) {
		pthread_mutex_unlock(&pool_lock);
		return false;
	}
	pool_open++;
	pthread_mutex_unlock(&pool_lock);
	if (pipe_new(p) == 0 && (uint64_t)len + 2 * 4096 <= pipe_bytes)
		return true;
	pipe_drop(p);           /* none, or too small */
	return false;
}

/* Back to the pool: only an empty pipe (every byte sent). */
static void pipe_put(const struct datain_pipe *p)
{
	pthread_mutex_lock(&pool_lock);
	pool[pool_free++] = *p;
	pthread_mutex_unlock(&pool_lock);
}

/* May this connection's Data-In be spliced? */
static bool may_splice(const struct iscsi_conn *c)
{
	return c->srv->zero_copy && !c->params.data_digest;
}

uint32_t datain_pdu_max(const struct iscsi_conn *c)
{
	uint32_t mx = c->params.mrdsl_tx;

	return may_splice(c) || mx < DATAIN_PDU_MAX ? mx : DATAIN_PDU_MAX;
}

uint32_t datain_defer_min(const struct iscsi_conn *c)
{
	uint32_t pdu = datain_pdu_max(c);
	uint32_t seg = pdu < c->params.max_burst ? pdu : c->params.max_burst;
	uint32_t min;

	if (may_splice(c))
		min = seg >= DATAIN_SPLICE_MIN ? DATAIN_SPLICE_MIN : 0;
	else
		min = seg >= DATAIN_PDU_MAX ? seg + 1 : 0;
	/* A slow store: reads up to DATAIN_WHOLE_MAX are read at once, by
	 * the worker that executes them, so that they overlap. */
	if (min && min <= DATAIN_WHOLE_MAX && !inflight_fast(c))
		min = DATAIN_WHOLE_MAX + 1;
	return min;
}

int datain_prepare(const struct iscsi_conn *c, struct scsi_cmd *cmd, uint32_t off, uint32_t len,
		   struct datain_seg *ds)
{
	*ds = (struct datain_seg){ .len = len, .pipe = { -1, -1 } };
	if (!cmd->data_lu) {
		ds->buf = cmd->data_in + off;
		return 0;
	}
	if (len >= DATAIN_SPLICE_MIN && may_splice(c) && pipe_get(len, &ds->pipe)) {
		if (scsi_cmd_data_splice(cmd, ds->pipe.wr, off, len) == 0)
			return 0;
		pipe_drop(&ds->pipe);
	}
	ds->owned = scsi_cmd_data_read(cmd, off, len);
	ds->buf = ds->owned;
	return ds->owned ? 0 : -1;
}

int datain_send(struct iscsi_conn *c, uint8_t *bhs, struct datain_seg *ds, bool more)
{
	int rc;

	if (ds->pipe.rd < 0) {
		rc = conn_send(c, bhs, ds->buf, ds->len);
		free(ds->owned);
		ds->owned = NULL;
		return rc;
	}
	rc = conn_send_pipe(c, bhs, ds->pipe.rd, ds->len, more);
	if (rc == 0)
		pipe_put(&ds->pipe);
	else
		pipe_drop(&ds->pipe);
	ds->pipe.rd = ds->pipe.wr = -1;
	return rc;
}
