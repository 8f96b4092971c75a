/*
 * rbd.c - the read-only RBD backend and the cluster connection (rbd.h).
 *
 * Reads use librbd's synchronous rbd_read, not rbd_aio_read: the iSCSI
 * layer runs the commands of one connection on a worker pool
 * (proto/inflight.c, up to 32 in flight per connection), so a PC at queue
 * depth 32 already has 32 reads in flight to the OSDs, each on its own
 * thread; librbd's image handle takes concurrent calls.  Measured in
 * BENCHMARKS.md ("Commands in flight": 2.1x at QD32 on a one-node
 * cluster against one command at a time).
 *
 * Nothing here can write to the cluster: the image is opened with
 * rbd_open_read_only, and the write paths return -EROFS before reaching
 * librbd.  The connection's settings are made in rbd_cluster_connect
 * only: the identity (rados_create2), the file (rados_conf_read_file),
 * the bound on the connect (client_mount_timeout) and rados_connect.
 */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "storage/rbd.h"
#include "storage/rbd_int.h"
#include "util/log.h"

struct rbd_cluster {
	rados_t rados;
	char breakable[RBD_ADDR_MAX];   /* a previous instance's address, "" = none */
	bool (*may_break)(void *arg, const char *owner);   /* the cluster's policy, or NULL */
	void *may_break_arg;
	/* Addresses this connection blocklisted (rbd_cluster_fence), newest
	 * last, so that a dead gateway's N locks cost one blocklist, not N. */
	pthread_mutex_t fence_lock;
	char fenced[RBD_FENCED_MAX][RBD_ADDR_MAX];
	unsigned nfenced;
};

struct rbd_backend {
	struct backend be;      /* first: a struct backend * is an rbd_backend * */
	rados_ioctx_t io;
	rbd_image_t image;
};

/* The RBD backend around be (be is its first member). */
static struct rbd_backend *rbd_of(struct backend *be)
{
	return (struct rbd_backend *)be;
}

/* Copy one part of a spec [s, s+n) into dst (size cap): 0, or -1 with why. */
static int spec_part(const char *what, const char *s, size_t n, char *dst, size_t cap,
		     char *why, size_t whylen)
{
	if (n == 0) {
		snprintf(why, whylen, "the %s name is empty (POOL/IMAGE or POOL/IMAGE@SNAP)", what);
		return -1;
	}
	if (n >= cap) {
		snprintf(why, whylen, "the %s name is longer than %zu characters", what, cap - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == '@') {
			snprintf(why, whylen, "the %s name holds '%c'; POOL/IMAGE or POOL/IMAGE@SNAP "
				 "with no space, '/' or '@' in a name", what,
				 ch > ' ' && ch < 0x7f ? ch : '?');
			return -1;
		}
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* See rbd.h. */
int rbd_spec_parse(const char *s, struct rbd_spec *out, char *why, size_t whylen)
{
	const char *slash = strchr(s, '/'), *at, *end = s + strlen(s);

	memset(out, 0, sizeof(*out));
	if (!slash) {
		snprintf(why, whylen, "'%.80s' is not POOL/IMAGE or POOL/IMAGE@SNAP", s);
		return -1;
	}
	at = strchr(slash + 1, '@');
	if (spec_part("pool", s, (size_t)(slash - s), out->pool, sizeof(out->pool), why, whylen) ||
	    spec_part("image", slash + 1, (size_t)((at ? at : end) - slash - 1), out->image,
		      sizeof(out->image), why, whylen) ||
	    (at && spec_part("snapshot", at + 1, (size_t)(end - at - 1), out->snap,
			     sizeof(out->snap), why, whylen)))
		return -1;
	return 0;
}

/* See rbd.h. */
bool rbd_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > RBD_ID_MAX || id[0] == '.' || id[0] == '-' ||
	    strncmp(id, "client.", 7) == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* See rbd.h. */
void rbd_spec_format(const struct rbd_spec *sp, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%s%s", sp->pool, sp->image, sp->snap[0] ? "@" : "", sp->snap);
}

/* See rbd.h. */
int rbd_cluster_connect(const char *conf_file, const char *id, struct rbd_cluster **out,
			char *msg, size_t msglen)
{
	return rbd_cluster_connect_opts(conf_file, id, NULL, out, msg, msglen);
}

/* See rbd.h. */
int rbd_cluster_connect_opts(const char *conf_file, const char *id,
			     const struct rbd_connect_opts *o, struct rbd_cluster **out,
			     char *msg, size_t msglen)
{
	struct rbd_cluster *c;
	char name[160], mons[256] = "?", keyring[256] = "", tmo[16];
	int rc;

	*out = NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	pthread_mutex_init(&c->fence_lock, NULL);
	snprintf(name, sizeof(name), "client.%s", id);
	if ((rc = rados_create2(&c->rados, "ceph", name, 0)) < 0) {
		snprintf(msg, msglen, "ceph: cannot create a client %s: %s", name, strerror(-rc));
		c->rados = NULL;
		goto fail;
	}
	if ((rc = rados_conf_read_file(c->rados, conf_file)) < 0) {
		snprintf(msg, msglen, "ceph-conf %s cannot be read: %s", conf_file, strerror(-rc));
		goto fail;
	}
	rados_conf_get(c->rados, "mon_host", mons, sizeof(mons));
	if (rados_conf_get(c->rados, "keyring", keyring, sizeof(keyring)) < 0)
		keyring[0] = '\0';
	/* Bound the connect; the OSD requests later wait as long as they
	 * must (a PC waits through an OSD restart rather than seeing errors)
	 * unless o bounds them (rbd.h's rbd_connect_opts says the tradeoff). */
	snprintf(tmo, sizeof(tmo), "%d", RBD_CONNECT_TIMEOUT_S);
	rados_conf_set(c->rados, "client_mount_timeout", tmo);
	rados_conf_set(c->rados, "rados_mon_op_timeout", tmo);
	snprintf(tmo, sizeof(tmo), "%u", o ? o->op_timeout_s : 0);
	rados_conf_set(c->rados, "rados_osd_op_timeout", tmo);
	/* No librbd cache on any image of this connection: librbd has no
	 * per-write FUA, so a cached FUA write would need a whole-image flush,
	 * and a writeback cache would hold acknowledged data in this process
	 * (lost with it).  Without it every write rbd_disk.c acknowledges was
	 * committed by the OSDs, and the shared read path above the golden
	 * does the caching where it pays (one copy for every PC). */
	rados_conf_set(c->rados, "rbd_cache", "false");
	/* Breaking a lock fences its owner, but we do it ourselves, once per
	 * owner, before the break (rbd_cluster_fence, rbd_lock_take): each
	 * blocklist is a new OSD map (about a second on the monitors), and a
	 * dead gateway's PCs would otherwise be taken over a second apiece. */
	rados_conf_set(c->rados, "rbd_blocklist_on_break_lock", "false");
	if ((rc = rados_connect(c->rados)) < 0) {
		snprintf(msg, msglen, "cannot connect to the Ceph cluster at %s (from %s) as %s "
			 "(key from keyring %s): %s%s",
			 mons[0] ? mons : "(no mon host)", conf_file, name,
			 keyring[0] ? keyring : "(none set)", strerror(-rc),
			 rc == -ETIMEDOUT ? " (no monitor answered)" :
			 rc == -EACCES || rc == -EPERM ? " (check the key in its keyring)" :
			 rc == -ENOENT ? " (no keyring with its key?)" : "");
		goto fail;
	}
	*out = c;
	return 0;
fail:
	if (c->rados)
		rados_shutdown(c->rados);
	free(c);
	return rc;
}

/* See rbd.h. */
void rbd_cluster_close(struct rbd_cluster *c)
{
	if (!c)
		return;
	rados_shutdown(c->rados);
	pthread_mutex_destroy(&c->fence_lock);
	free(c);
}

/* See rbd.h. */
int rbd_cluster_addr(struct rbd_cluster *c, char *buf, size_t len)
{
	char *addrs = NULL;
	int rc = rados_getaddrs(c->rados, &addrs);

	if (rc < 0)
		return rc;
	if (!addrs || !addrs[0] || strlen(addrs) >= len) {
		rc = addrs && addrs[0] ? -ENAMETOOLONG : -ENOENT;
	} else {
		snprintf(buf, len, "%s", addrs);
		rc = 0;
	}
	free(addrs);
	return rc;
}

/* See rbd.h. */
void rbd_cluster_set_breakable(struct rbd_cluster *c, const char *addr)
{
	int rc;

	snprintf(c->breakable, sizeof(c->breakable), "%s",
		 addr && strlen(addr) < sizeof(c->breakable) ? addr : "");
	if (!c->breakable[0])
		return;
	/* Fence it now: its watches go at once, so what it had open (a
	 * clone, a half-imported image) can be locked or removed without
	 * waiting for the OSDs' watch timeout. */
	rc = rbd_cluster_fence(c, c->breakable);
	if (rc < 0)
		log_warn("ceph: cannot blocklist our previous instance %s: %s (what it had open "
			 "waits for its watches to time out, ~30 s)", c->breakable, strerror(-rc));
	else
		log_info("ceph: our previous instance %s is blocklisted for %d s", c->breakable,
			 RBD_FENCE_S);
}

/* See rbd_int.h. */
int rbd_cluster_fence(struct rbd_cluster *c, const char *addr)
{
	int rc = 0;
	bool known = false;

	pthread_mutex_lock(&c->fence_lock);
	for (unsigned i = 0; i < c->nfenced && !known; i++)
		known = strcmp(c->fenced[i], addr) == 0;
	if (!known && (rc = rados_blocklist_add(c->rados, (char *)addr, RBD_FENCE_S)) == 0 &&
	    strlen(addr) < RBD_ADDR_MAX) {
		if (c->nfenced == RBD_FENCED_MAX) {     /* forget the oldest: at worst blocklisted again */
			memmove(c->fenced[0], c->fenced[1], sizeof(c->fenced[0]) * (RBD_FENCED_MAX - 1));
			c->nfenced--;
		}
		snprintf(c->fenced[c->nfenced++], RBD_ADDR_MAX, "%s", addr);
	}
	pthread_mutex_unlock(&c->fence_lock);
	return rc;
}

/* See rbd_int.h. */
const char *rbd_cluster_breakable(struct rbd_cluster *c)
{
	return c->breakable[0] ? c->breakable : NULL;
}

void rbd_cluster_set_break_policy(struct rbd_cluster *c,
				  bool (*may_break)(void *arg, const char *owner_addr), void *arg)
{
	c->may_break = may_break;
	c->may_break_arg = arg;
}

/* See rbd_int.h. */
bool rbd_cluster_may_break(struct rbd_cluster *c, const char *owner)
{
	return c->may_break && c->may_break(c->may_break_arg, owner);
}

/* See rbd_int.h. */
bool rbd_cluster_has_break_policy(struct rbd_cluster *c)
{
	return c->may_break != NULL;
}

/* See rbd_int.h. */
rados_t rbd_cluster_rados(struct rbd_cluster *c)
{
	return c->rados;
}

/* See rbd_int.h. */
int rbd_pool_ioctx(struct rbd_cluster *c, const char *pool, rados_ioctx_t *io)
{
	int rc = rados_ioctx_create(c->rados, pool, io);

	if (rc < 0) {
		*io = NULL;
		return rc;
	}
	rados_set_pool_full_try(*io);
	return 0;
}

/* Read exactly len bytes at off; a short read or an error is logged
 * (rate-limited) and returned as -EIO / -errno. */
static int rbd_be_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	struct rbd_backend *r = rbd_of(be);
	char *p = buf;

	while (len > 0) {
		ssize_t n = rbd_read(r->image, off, len, p);
		if (n <= 0) {
			int rc = n < 0 ? (int)n : -EIO;
			unsigned dropped = 0;
			if (ratelimit_ok(&be->err_rl, &dropped))
				log_err("%s: read of %zu bytes at byte %llu failed: %s%s", be->name, len,
					(unsigned long long)off, strerror(-rc),
					dropped ? " (more errors of this image were not logged)" : "");
			return rc;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* A golden image is never written. */
static int rbd_be_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	return -EROFS;
}

/* Nothing was written: nothing to make durable. */
static int rbd_be_flush(struct backend *be)
{
	return 0;
}

/* A golden image is never unmapped either. */
static int rbd_be_unmap(struct backend *be, uint64_t off, uint64_t len)
{
	return -EROFS;
}

/* Close the image and its pool's I/O context; free the backend. */
static void rbd_be_close(struct backend *be)
{
	struct rbd_backend *r = rbd_of(be);

	rbd_close(r->image);
	rados_ioctx_destroy(r->io);
	free(r);
}

static const struct backend_ops rbd_ops = {
	.read = rbd_be_read,
	.write = rbd_be_write,
	.flush = rbd_be_flush,
	.unmap = rbd_be_unmap,
	.close = rbd_be_close,
};

/* See rbd.h. */
int backend_rbd_open(struct rbd_cluster *c, const struct rbd_spec *sp, struct backend **out,
		     char *id, size_t idlen, char *msg, size_t msglen)
{
	struct rbd_backend *r;
	char spec[RBD_POOL_MAX + 2 * RBD_NAME_MAX + 2], imgid[64] = "?";
	uint64_t size, snapid = 0;
	int rc;

	*out = NULL;
	rbd_spec_format(sp, spec, sizeof(spec));
	if (!(r = calloc(1, sizeof(*r))))
		return -ENOMEM;
	if ((rc = rados_ioctx_create(c->rados, sp->pool, &r->io)) < 0) {
		snprintf(msg, msglen, "rbd:%s: pool %s: %s", spec, sp->pool, strerror(-rc));
		r->io = NULL;
		goto fail;
	}
	/* The golden image is never opened for writing. */
	rc = rbd_open_read_only(r->io, sp->image, &r->image, sp->snap[0] ? sp->snap : NULL);
	if (rc < 0) {
		snprintf(msg, msglen, "rbd:%s: cannot open the image%s read-only: %s", spec,
			 sp->snap[0] ? " at its snapshot" : "", strerror(-rc));
		r->image = NULL;
		goto fail;
	}
	if ((rc = rbd_get_size(r->image, &size)) < 0 ||
	    (sp->snap[0] && (rc = rbd_snap_get_id(r->image, sp->snap, &snapid)) < 0)) {
		snprintf(msg, msglen, "rbd:%s: cannot read its size or snapshot: %s", spec,
			 strerror(-rc));
		goto fail;
	}
	if (rbd_get_id(r->image, imgid, sizeof(imgid)) < 0)
		snprintf(imgid, sizeof(imgid), "?");
	if (sp->snap[0])
		snprintf(id, idlen, "%lld/%s@%llu", (long long)rados_ioctx_get_id(r->io), imgid,
			 (unsigned long long)snapid);
	else
		snprintf(id, idlen, "%lld/%s@head", (long long)rados_ioctx_get_id(r->io), imgid);
	r->be.ops = &rbd_ops;
	r->be.size = size;
	r->be.read_only = true;
	/* the name is for logs: a long spec is cut, never an error */
	snprintf(r->be.name, sizeof(r->be.name), "rbd:%.*s", (int)sizeof(r->be.name) - 5, spec);
	*out = &r->be;
	return 0;
fail:
	if (r->image)
		rbd_close(r->image);
	if (r->io)
		rados_ioctx_destroy(r->io);
	free(r);
	return rc;
}
