/*
 * inflight.c - many SCSI commands of one connection in flight at once.
 *
 * The connection's thread reads PDUs; a command that may overlap others
 * (command.c decides: READ, WRITE, SYNCHRONIZE CACHE, task attribute
 * SIMPLE, all data received) is handed to a worker here and the thread
 * reads on.  A worker executes it (scsi_target_exec: the backend I/O)
 * and then sends its response.  Everything else waits for a drain (no
 * command of the connection in flight) and runs on the connection's
 * thread, so ORDERED, HEAD OF QUEUE, task management, logout and every
 * command we do not parallelise see all earlier commands finished and
 * answered.
 *
 * Fast stores: a command the page cache answers executes in a few
 * microseconds, less than waking a worker costs, so while a connection's
 * recent commands executed that fast (a moving average of their times,
 * under INLINE_MAX_NS) its thread executes them itself - still in between
 * the workers' ones, as SIMPLE allows.  One slow command (a cache miss on
 * a network store) lifts the average and the next ones go to the workers;
 * their times bring it back down when the store is fast again.
 *
 * What is timed is the I/O.  A read that is streamed (deferred,
 * datain.c: its data read PDU by PDU while it is sent) is timed where it
 * reads, in send_result: one sample per command, its time per
 * DATAIN_PDU_MAX bytes (about one read call's).  Everything else is timed
 * around its execution (cmd_exec_timed).  So a streamed read of a
 * fast connection runs on its thread too, as before commands were in
 * flight (page cache: bench/ab.sh, BENCHMARKS.md), and goes to a worker
 * when the store is slow.  There it is no longer streamed
 * (datain_defer_min): a streamed read's I/O happens in the connection's
 * one sender, one command after another, so on a slow store reads up to
 * DATAIN_WHOLE_MAX are read whole by the worker that executes them, in
 * parallel.  A whole read counts as at most four PDUs (command.c,
 * WHOLE_PDUS): a network store may return 1 MiB in one call as fast as
 * 32 KiB, and going back to streaming on that evidence would cost one
 * call per PDU on the connection's thread; counted whole, 1 MiB from the
 * page cache (~100 us) would keep a connection that turned slow once on
 * the workers for good.
 *
 * Bounds: srv->cmd_workers threads for the whole server, started only as
 * work arrives; at most srv->conn_inflight commands of one connection in
 * flight - the connection's thread waits for a slot before it submits
 * another, so it stops reading and TCP holds the initiator back.  The
 * CmdSN window (conn_max_cmdsn) counts the commands in flight, minus
 * those already executed, so a response never advertises its own
 * command as still taking a slot.
 *
 * Sending: responses go out in the order commands finish.  The first
 * worker to finish a command of a connection becomes its sender and
 * sends every response queued on c->done until the queue is empty;
 * others queue theirs and go back to work.  So one slow reader of a
 * connection holds at most one worker (until send_timeout_s), and a
 * worker that is sending does not count against cmd_workers: the pool
 * starts another to execute meanwhile (at most one sender per
 * connection, so at most cmd_workers + max_conns threads), and peers
 * that stop reading cannot starve everyone else's commands.  The sender
 * holds no lock across a send but send_mu, per PDU.
 *
 * End of a connection (inflight_end): c->dead stops further sends (their
 * work is freed unsent), shutdown(2) unblocks a sender, and the thread
 * waits until nothing is in flight and nobody sends - only then may the
 * connection, its session and its LUNs go.
 */
#include "proto/conn.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKER_STACK (512 * 1024)
/* Commands executing in less than this on average run on the
 * connection's thread (see inflight_fast). */
#define INLINE_MAX_NS 50000

/* One command handed to a worker.  Owns its task. */
struct iscsi_job {
	struct iscsi_job *next;
	struct iscsi_conn *c;
	struct iscsi_task *t;
	bool read;
	struct scsi_cmd cmd;
};

struct iscsi_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* work queued, or stop */
	struct iscsi_job *head, **tail;
	unsigned queued;              /* jobs in the queue */
	unsigned idle;                /* threads waiting on cv */
	unsigned senders;             /* threads sending a connection's responses */
	unsigned nthreads;
	unsigned max;                 /* threads executing, at most (cmd_workers) */
	unsigned cap;                 /* threads, at most: max + one sender per connection */
	pthread_t *threads;           /* cap of them */
	bool stop;
};

int inflight_pool_init(struct iscsi_server *srv)
{
	struct iscsi_pool *p;

	srv->pool = NULL;
	if (srv->cmd_workers == 0)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cap = srv->cmd_workers + srv->max_conns;
	p->threads = calloc(p->cap, sizeof(*p->threads));
	if (!p->threads) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->tail = &p->head;
	p->max = srv->cmd_workers;
	srv->pool = p;
	return 0;
}

void inflight_pool_stop(struct iscsi_server *srv)
{
	struct iscsi_pool *p = srv->pool;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p);
	srv->pool = NULL;
}

void inflight_conn_init(struct iscsi_conn *c)
{
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->send_mu, NULL);
	pthread_cond_init(&c->idle, NULL);
	c->done = NULL;
	c->done_tail = &c->done;
}

void inflight_conn_destroy(struct iscsi_conn *c)
{
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->send_mu);
	pthread_cond_destroy(&c->idle);
}

/*
 * A job has executed: queue its response on its connection and, unless
 * another worker is sending there already, send the queue until it is
 * empty.  Frees the job (and every job it sends).  After the last unlock
 * of c->mu here, c may be gone.
 */
static void job_finished(struct iscsi_job *j)
{
	struct iscsi_conn *c = j->c;
	struct iscsi_pool *p = c->srv->pool;

	pthread_mutex_lock(&c->mu);
	j->next = NULL;
	*c->done_tail = j;
	c->done_tail = &j->next;
	c->completing++;
	if (c->sending) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	c->sending = true;
	pthread_mutex_lock(&p->mu);      /* lock order: c->mu, then p->mu */
	p->senders++;
	pthread_mutex_unlock(&p->mu);
	while (c->done) {
		struct iscsi_job *d = c->done;
		bool dead = c->dead;

		c->done = d->next;
		if (!c->done)
			c->done_tail = &c->done;
		pthread_mutex_unlock(&c->mu);
		if (dead) {
			cmd_discard(&d->cmd);
		} else if (cmd_send_result(c, d->t, &d->cmd)) {
			/* The peer is gone or stopped reading: end the connection
			 * (its thread wakes from recv and cleans up). */
			pthread_mutex_lock(&c->mu);
			c->dead = true;
			pthread_mutex_unlock(&c->mu);
			shutdown(c->fd, SHUT_RDWR);
		}
		task_free(d->t);
		free(d);
		pthread_mutex_lock(&c->mu);
		c->completing--;
		c->inflight--;
		pthread_cond_broadcast(&c->idle);
	}
	c->sending = false;
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->mu);
	/* c may be gone from here on; the pool outlives every connection. */
	pthread_mutex_lock(&p->mu);
	p->senders--;
	pthread_mutex_unlock(&p->mu);
}

/* A worker: execute queued jobs until the pool stops. */
static void *worker_main(void *arg)
{
	struct iscsi_pool *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct iscsi_job *j;

		while (!p->head && !p->stop) {
			p->idle++;
			pthread_cond_wait(&p->cv, &p->mu);
			p->idle--;
		}
		if (!p->head)
			break;                  /* stopping, and nothing left */
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = &p->head;
		p->queued--;
		pthread_mutex_unlock(&p->mu);
		cmd_exec_timed(j->c, j->t, j->read, &j->cmd);
		job_finished(j);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Queue j; start a thread when none is free to take it.  p->mu held.
 * false when no thread exists to run it (j not queued). */
static bool pool_queue(struct iscsi_pool *p, struct iscsi_job *j)
{
	if (p->stop)
		return false;
	if (p->queued + 1 > p->idle && p->nthreads - p->senders < p->max && p->nthreads < p->cap) {
		pthread_attr_t attr;
		int rc;

		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, WORKER_STACK);
		rc = pthread_create(&p->threads[p->nthreads], &attr, worker_main, p);
		pthread_attr_destroy(&attr);
		if (rc == 0)
			p->nthreads++;
		else if (p->nthreads == 0)
			return false;
		else
			log_warn("cannot start a command worker: %s", strerror(rc));
	}
	j->next = NULL;
	*p->tail = j;
	p->tail = &j->next;
	p->queued++;
	pthread_cond_signal(&p->cv);
	return true;
}

int inflight_submit(struct iscsi_conn *c, struct iscsi_task *t, bool read)
{
	struct iscsi_pool *p = c->srv->pool;
	unsigned cap = c->srv->conn_inflight ? c->srv->conn_inflight : 1;
	struct iscsi_job *j;
	bool queued;

	if (!p)
		return -1;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -1;
	j->c = c;
	j->t = t;
	j->read = read;
	pthread_mutex_lock(&c->mu);
	while (c->inflight >= cap)
		pthread_cond_wait(&c->idle, &c->mu);
	c->inflight++;
	pthread_mutex_unlock(&c->mu);

	pthread_mutex_lock(&p->mu);
	queued = pool_queue(p, j);
	pthread_mutex_unlock(&p->mu);
	if (queued)
		return 0;
	pthread_mutex_lock(&c->mu);
	c->inflight--;
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->mu);
	free(j);
	return -1;
}

int64_t inflight_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void inflight_note_exec(struct iscsi_conn *c, int64_t ns)
{
	uint32_t old = __atomic_load_n(&c->exec_ns, __ATOMIC_RELAXED);
	int64_t avg = old + (ns - (int64_t)old) / 8;

	/* Racing updates may lose one sample: it is only a hint. */
	if (avg < 0)
		avg = 0;
	if (avg > UINT32_MAX)
		avg = UINT32_MAX;
	__atomic_store_n(&c->exec_ns, (uint32_t)avg, __ATOMIC_RELAXED);
}

bool inflight_fast(const struct iscsi_conn *c)
{
	return __atomic_load_n(&c->exec_ns, __ATOMIC_RELAXED) < INLINE_MAX_NS;
}

void inflight_drain(struct iscsi_conn *c)
{
	pthread_mutex_lock(&c->mu);
	while (c->inflight > 0)
		pthread_cond_wait(&c->idle, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

void inflight_end(struct iscsi_conn *c)
{
	pthread_mutex_lock(&c->mu);
	c->dead = true;
	if (c->inflight > 0 || c->sending) {
		log_debug("%s: waiting for %u commands in flight", c->peer, c->inflight);
		shutdown(c->fd, SHUT_RDWR);
	}
	while (c->inflight > 0 || c->sending)
		pthread_cond_wait(&c->idle, &c->mu);
	pthread_mutex_unlock(&c->mu);
}
