/*
 * rados_rec.c - small shared records in RADOS (contract in rados_rec.h).
 *
 * One I/O context on the records' pool.  librados reports an object's
 * version per I/O context (rados_get_last_version), so every op that
 * needs one runs under io_lock together with the op.  Watches are kept
 * in a list so that one lost (its error callback: the OSD restarted, our
 * session timed out) is set up again by the rewatch thread, which then
 * calls the user's fn: a change may have been missed meanwhile.
 */
#include "storage/rados_rec.h"
#include "storage/rbd_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The name of the change lock (RADOS locks have a name and a cookie). */
#define LOCK_NAME "pristine.change"
/* Seconds without a ping after which librados calls a watch lost. */
#define WATCH_TIMEOUT_S 10

struct rec_watch {
	struct rec_watch *next;
	struct rados_recs *r;
	char *oid;
	void (*fn)(void *arg);
	void *arg;
	uint64_t id;                  /* the handle given to the caller */
	uint64_t cookie;              /* librados's, changes at a re-watch */
	bool lost;
};

struct rados_recs {
	rados_ioctx_t io;
	pthread_mutex_t io_lock;      /* ops whose version is read after them */
	pthread_mutex_t w_lock;       /* the watch list and rewatch state */
	pthread_cond_t w_cond;
	struct rec_watch *watches;
	uint64_t next_id;
	pthread_t rewatcher;
	bool rewatcher_started, stopping;
};

/* ---------------------------------------------------------------- records */

int rados_recs_open(struct rbd_cluster *c, const char *pool, struct rados_recs **out, char *msg,
		    size_t msglen)
{
	struct rados_recs *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	if ((rc = rbd_pool_ioctx(c, pool, &r->io))) {
		snprintf(msg, msglen, "pool %s: %s", pool,
			 rc == -ENOENT ? "no such pool" : strerror(-rc));
		free(r);
		return rc;
	}
	pthread_mutex_init(&r->io_lock, NULL);
	pthread_mutex_init(&r->w_lock, NULL);
	pthread_cond_init(&r->w_cond, NULL);
	r->next_id = 1;
	*out = r;
	return 0;
}

void rados_recs_close(struct rados_recs *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->w_lock);
	r->stopping = true;
	pthread_cond_broadcast(&r->w_cond);
	pthread_mutex_unlock(&r->w_lock);
	if (r->rewatcher_started)
		pthread_join(r->rewatcher, NULL);
	while (r->watches) {
		struct rec_watch *w = r->watches;
		r->watches = w->next;
		if (!w->lost)
			rados_unwatch2(r->io, w->cookie);
		free(w->oid);
		free(w);
	}
	rados_watch_flush(rados_ioctx_get_cluster(r->io));
	rados_ioctx_destroy(r->io);
	pthread_mutex_destroy(&r->io_lock);
	pthread_mutex_destroy(&r->w_lock);
	pthread_cond_destroy(&r->w_cond);
	free(r);
}

int rados_rec_version(struct rados_recs *r, const char *oid, uint64_t *ver)
{
	rados_read_op_t op = rados_create_read_op();
	uint64_t size;
	time_t mtime;
	int prval = 0, rc;

	if (!op)
		return -ENOMEM;
	rados_read_op_stat(op, &size, &mtime, &prval);
	pthread_mutex_lock(&r->io_lock);
	rc = rados_read_op_operate(op, r->io, oid, 0);
	if (rc == 0)
		*ver = rados_get_last_version(r->io);
	pthread_mutex_unlock(&r->io_lock);
	rados_release_read_op(op);
	return rc < 0 ? rc : 0;
}

/* One read of oid's first want bytes into buf: 0 and *got, *ver. */
static int read_once(struct rados_recs *r, const char *oid, char *buf, size_t want, size_t *got,
		     uint64_t *ver)
{
	rados_read_op_t op = rados_create_read_op();
	int prval = 0, rc;

	if (!op)
		return -ENOMEM;
	*got = 0;
	rados_read_op_read(op, 0, want, buf, got, &prval);
	pthread_mutex_lock(&r->io_lock);
	rc = rados_read_op_operate(op, r->io, oid, 0);
	if (rc == 0)
		*ver = rados_get_last_version(r->io);
	pthread_mutex_unlock(&r->io_lock);
	rados_release_read_op(op);
	if (rc == 0 && prval < 0)
		rc = prval;
	return rc < 0 ? rc : 0;
}

int rados_rec_read(struct rados_recs *r, const char *oid, char **text, uint64_t *ver)
{
	size_t want = 64 << 10, got;
	char *buf = NULL;
	int rc;

	*text = NULL;
	/* Read more than it holds: a read that fills the buffer may have
	 * been cut, so it is done again with room for the whole object. */
	for (;;) {
		char *n = realloc(buf, want + 1);
		if (!n) {
			free(buf);
			return -ENOMEM;
		}
		buf = n;
		if ((rc = read_once(r, oid, buf, want, &got, ver))) {
			free(buf);
			return rc;
		}
		if (got < want)
			break;
		if (want > RADOS_REC_MAX) {
			free(buf);
			return -E2BIG;
		}
		want *= 4;
	}
	buf[got] = '\0';
	*text = buf;
	return 0;
}

/* librados's answers to a failed assert_version, as our one code. */
static int cas_rc(int rc)
{
	return rc == -ERANGE || rc == -EOVERFLOW ? -ECANCELED : rc;
}

int rados_rec_write(struct rados_recs *r, const char *oid, const char *text, uint64_t expect,
		    uint64_t *newver)
{
	size_t len = strlen(text);
	rados_write_op_t op;
	int rc;

	if (len > RADOS_REC_MAX)
		return -E2BIG;
	if (!(op = rados_create_write_op()))
		return -ENOMEM;
	if (expect == RADOS_REC_NEW)
		rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	else if (expect != RADOS_REC_ANY)
		rados_write_op_assert_version(op, expect);
	rados_write_op_write_full(op, text, len);
	pthread_mutex_lock(&r->io_lock);
	rc = rados_write_op_operate(op, r->io, oid, NULL, 0);
	if (rc == 0 && newver)
		*newver = rados_get_last_version(r->io);
	pthread_mutex_unlock(&r->io_lock);
	rados_release_write_op(op);
	return rc < 0 ? cas_rc(rc) : 0;
}

int rados_rec_remove(struct rados_recs *r, const char *oid, uint64_t expect)
{
	rados_write_op_t op = rados_create_write_op();
	int rc;

	if (!op)
		return -ENOMEM;
	if (expect != RADOS_REC_ANY && expect != RADOS_REC_NEW)
		rados_write_op_assert_version(op, expect);
	rados_write_op_remove(op);
	rc = rados_write_op_operate(op, r->io, oid, NULL, 0);
	rados_release_write_op(op);
	return rc < 0 ? cas_rc(rc) : 0;
}

int rados_rec_write_bytes(struct rados_recs *r, const char *oid, const void *buf, size_t len)
{
	int rc;

	pthread_mutex_lock(&r->io_lock);
	rc = rados_write_full(r->io, oid, buf, len);
	pthread_mutex_unlock(&r->io_lock);
	return rc < 0 ? rc : 0;
}

int rados_rec_read_bytes(struct rados_recs *r, const char *oid, size_t max, uint8_t **buf,
			 size_t *len)
{
	uint64_t size = 0;
	time_t mtime;
	uint8_t *b;
	int rc;

	*buf = NULL;
	if ((rc = rados_stat(r->io, oid, &size, &mtime)) < 0)
		return rc;
	if (size > max)
		return -EFBIG;
	if (!(b = malloc(size ? (size_t)size : 1)))
		return -ENOMEM;
	rc = size ? rados_read(r->io, oid, (char *)b, (size_t)size, 0) : 0;
	if (rc < 0) {
		free(b);
		return rc;
	}
	*buf = b;
	*len = (size_t)rc;   /* shorter if it shrank since the stat */
	return 0;
}

/* Make oid exist (empty) if it does not.  0 or -errno. */
static int ensure(struct rados_recs *r, const char *oid)
{
	rados_write_op_t op = rados_create_write_op();
	int rc;

	if (!op)
		return -ENOMEM;
	rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
	rc = rados_write_op_operate(op, r->io, oid, NULL, 0);
	rados_release_write_op(op);
	return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------ lock */

/* The cookie of oid's change lock's holder into out ("" if none). */
static void lock_holder(struct rados_recs *r, const char *oid, char *out, size_t len)
{
	char tag[64], clients[512], cookies[512], addrs[512];
	size_t tl = sizeof(tag), cl = sizeof(clients), kl = sizeof(cookies), al = sizeof(addrs);
	int excl = 0;
	ssize_t n = rados_list_lockers(r->io, oid, LOCK_NAME, &excl, tag, &tl, clients, &cl, cookies,
				       &kl, addrs, &al);

	if (n > 0)
		snprintf(out, len, "%s", cookies);   /* the first, NUL-terminated */
	else
		snprintf(out, len, "%s", "");
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rados_rec_lock(struct rados_recs *r, const char *oid, const char *cookie, const char *desc,
		   unsigned lease_s, unsigned wait_ms, char *holder, size_t holderlen)
{
	struct timeval lease = { .tv_sec = lease_s };
	int64_t end = now_ms() + wait_ms;
	int rc;

	if (holder && holderlen)
		holder[0] = '\0';
	if ((rc = ensure(r, oid)))
		return rc;
	for (;;) {
		rc = rados_lock_exclusive(r->io, oid, LOCK_NAME, cookie, desc, &lease, 0);
		/* -EEXIST: this connection already holds it under cookie
		 * (another thread's change): wait like for anyone else. */
		if (rc != -EBUSY && rc != -EEXIST)
			return rc < 0 ? rc : 0;
		if (now_ms() >= end)
			break;
		usleep(50 * 1000);
	}
	if (holder && holderlen)
		lock_holder(r, oid, holder, holderlen);
	return -EBUSY;
}

void rados_rec_unlock(struct rados_recs *r, const char *oid, const char *cookie)
{
	rados_unlock(r->io, oid, LOCK_NAME, cookie);
}

/* -------------------------------------------------------- watch, notify */

/* A notice: acknowledged at once (the notifier waits for acks), then fn. */
static void on_notify(void *arg, uint64_t notify_id, uint64_t cookie, uint64_t notifier_id,
		      void *data, size_t data_len)
{
	struct rec_watch *w = arg;

	(void)notifier_id;
	(void)data;
	(void)data_len;
	rados_notify_ack(w->r->io, w->oid, notify_id, cookie, NULL, 0);
	w->fn(w->arg);
}

/* The watch was lost: the rewatch thread sets it up again. */
static void on_error(void *arg, uint64_t cookie, int err)
{
	struct rec_watch *w = arg;

	(void)cookie;
	(void)err;
	pthread_mutex_lock(&w->r->w_lock);
	w->lost = true;
	pthread_cond_broadcast(&w->r->w_cond);
	pthread_mutex_unlock(&w->r->w_lock);
}

/* Set up every lost watch again (once a second until it works), then
 * tell its owner that something may have changed meanwhile. */
static void *rewatch_main(void *arg)
{
	struct rados_recs *r = arg;

	pthread_mutex_lock(&r->w_lock);
	while (!r->stopping) {
		struct rec_watch *lost = NULL;
		for (struct rec_watch *w = r->watches; w && !lost; w = w->next)
			if (w->lost)
				lost = w;
		if (!lost) {
			pthread_cond_wait(&r->w_cond, &r->w_lock);
			continue;
		}
		uint64_t old = lost->cookie, cookie = 0;
		pthread_mutex_unlock(&r->w_lock);
		rados_unwatch2(r->io, old);
		int rc = ensure(r, lost->oid);
		if (rc == 0)
			rc = rados_watch3(r->io, lost->oid, &cookie, on_notify, on_error,
					  WATCH_TIMEOUT_S, lost);
		pthread_mutex_lock(&r->w_lock);
		if (rc == 0) {
			lost->cookie = cookie;
			lost->lost = false;
			pthread_mutex_unlock(&r->w_lock);
			lost->fn(lost->arg);
			pthread_mutex_lock(&r->w_lock);
		} else if (!r->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&r->w_cond, &r->w_lock, &ts);
		}
	}
	pthread_mutex_unlock(&r->w_lock);
	return NULL;
}

int rados_rec_watch(struct rados_recs *r, const char *oid, void (*fn)(void *arg), void *arg,
		    uint64_t *handle)
{
	struct rec_watch *w = calloc(1, sizeof(*w));
	int rc;

	if (!w || !(w->oid = strdup(oid))) {
		free(w);
		return -ENOMEM;
	}
	w->r = r;
	w->fn = fn;
	w->arg = arg;
	if ((rc = ensure(r, oid)) ||
	    (rc = rados_watch3(r->io, oid, &w->cookie, on_notify, on_error, WATCH_TIMEOUT_S, w)) < 0) {
		free(w->oid);
		free(w);
		return rc;
	}
	pthread_mutex_lock(&r->w_lock);
	if (!r->rewatcher_started &&
	    pthread_create(&r->rewatcher, NULL, rewatch_main, r) == 0)
		r->rewatcher_started = true;
	w->id = r->next_id++;
	w->next = r->watches;
	r->watches = w;
	*handle = w->id;
	pthread_mutex_unlock(&r->w_lock);
	return 0;
}

void rados_rec_unwatch(struct rados_recs *r, uint64_t handle)
{
	struct rec_watch **p, *w = NULL;

	pthread_mutex_lock(&r->w_lock);
	for (p = &r->watches; *p; p = &(*p)->next)
		if ((*p)->id == handle) {
			w = *p;
			*p = w->next;
			break;
		}
	pthread_mutex_unlock(&r->w_lock);
	if (!w)
		return;
	if (!w->lost)
		rados_unwatch2(r->io, w->cookie);
	/* no callback may still run on w once it is freed */
	rados_watch_flush(rados_ioctx_get_cluster(r->io));
	free(w->oid);
	free(w);
}

int rados_rec_notify(struct rados_recs *r, const char *oid, unsigned timeout_ms)
{
	char *reply = NULL;
	size_t reply_len = 0;
	int rc = rados_notify2(r->io, oid, "", 0, timeout_ms ? timeout_ms : 1, &reply, &reply_len);

	if (reply)
		rados_buffer_free(reply);
	return rc < 0 ? rc : 0;
}
