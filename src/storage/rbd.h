/*
 * rbd.h - golden images on Ceph RBD: a read-only struct backend over
 * librbd, and the one connection to the cluster it reads through.
 *
 * A daemon holds at most one rbd_cluster (one cephx identity, one
 * ceph.conf); every RBD image it serves is opened through it.  The
 * cluster outlives its images: close every backend opened on it before
 * rbd_cluster_close.
 *
 * The backend never writes: the image is opened with rbd_open_read_only
 * (at a snapshot when the spec names one, else the image head), so
 * librbd itself refuses any write, takes no exclusive lock and registers
 * no watch.  write and unmap return -EROFS, flush 0, there is no
 * splice_read and no block_status (everything counts as mapped).
 *
 * Threading: reads may come from many threads at once (librbd's image
 * handle is safe for concurrent I/O); open and close are not concurrent
 * with anything on the same backend or cluster.
 */
#ifndef PRISTINE_RBD_H
#define PRISTINE_RBD_H

#include <stdbool.h>
#include <stddef.h>

#include "storage/backend.h"

/* Lengths of a spec's parts (RBD itself allows longer names; ours fit
 * a log line and image.json). */
#define RBD_POOL_MAX 128
#define RBD_NAME_MAX 128
/* Seconds rados_connect may take (monitors reached, cephx done) before
 * the start gives up: an unreachable cluster is an error, not a hang. */
#define RBD_CONNECT_TIMEOUT_S 15

/* POOL/IMAGE[@SNAP], parsed. */
struct rbd_spec {
	char pool[RBD_POOL_MAX];
	char image[RBD_NAME_MAX];
	char snap[RBD_NAME_MAX];        /* "" = the image head */
};

struct rbd_cluster;

/*
 * Parse s as POOL/IMAGE[@SNAP]: each part non-empty, printable ASCII
 * without spaces, '/' or '@' (and fitting the sizes above).  0 and *out,
 * or -1 with why (what is wrong, for the caller to prefix with its key).
 */
int rbd_spec_parse(const char *s, struct rbd_spec *out, char *why, size_t whylen);

/* Most bytes of a cephx client id (the NAME of client.NAME). */
#define RBD_ID_MAX 63

/* Whether id may name a cephx client here (client.ID): 1..RBD_ID_MAX of
 * [A-Za-z0-9._-], not starting with '.' or '-', without "client.". */
bool rbd_id_valid(const char *id);

/* "POOL/IMAGE" or "POOL/IMAGE@SNAP" into buf (cut to len). */
void rbd_spec_format(const struct rbd_spec *sp, char *buf, size_t len);

/*
 * Connect to the cluster that conf_file (a ceph.conf: mon host, keyring)
 * describes, as client.ID (id without the "client." prefix), cephx key
 * from the keyring the file names.  The monitors must answer within
 * RBD_CONNECT_TIMEOUT_S.  0 and *out (release with rbd_cluster_close),
 * or -errno with msg saying what failed (the file, the monitors and the
 * identity named; librados' error text).
 */
int rbd_cluster_connect(const char *conf_file, const char *id, struct rbd_cluster **out,
			char *msg, size_t msglen);

/* Settings of a connection (rbd_cluster_connect: all zero). */
struct rbd_connect_opts {
	/* Seconds an OSD request (a read, write, flush of any image of the
	 * connection) may take before it fails -ETIMEDOUT (librados'
	 * rados_osd_op_timeout); 0 = wait as long as the cluster needs - a
	 * PC's command waits through an OSD restart or a stalled cluster.
	 * With a bound, a dead cluster gives the PC an error (MEDIUM ERROR)
	 * instead of a stuck command, and a write that timed out puts its
	 * disk in the sticky error (rbd_disk.c), lifted when the PC's last
	 * session ends (the next login reopens the clone). */
	unsigned op_timeout_s;
};
/* rbd_cluster_connect with settings o (NULL = all zero). */
int rbd_cluster_connect_opts(const char *conf_file, const char *id,
			     const struct rbd_connect_opts *o, struct rbd_cluster **out,
			     char *msg, size_t msglen);
/* Shut the connection down.  NULL is a no-op. */
void rbd_cluster_close(struct rbd_cluster *c);

/*
 * Install the lock-break policy of a cluster of gateways (cluster.h):
 * when rbd_disk_open finds an image's exclusive lock held by another
 * owner than the breakable address (rbd_cluster_set_breakable, below),
 * it asks may_break(arg, owner_addr); true breaks the lock after the
 * owner is blocklisted (once per owner address and connection: a dead
 * gateway's many locks cost one new OSD map), so it can never write
 * again.  false leaves the lock (the open fails).  may_break runs on the opening thread.  NULL removes the
 * policy (a single server has none: only its previous instance's locks
 * are broken).  Call it before disks are opened or while none opens.
 */
void rbd_cluster_set_break_policy(struct rbd_cluster *c,
				  bool (*may_break)(void *arg, const char *owner_addr), void *arg);

/* Most bytes of a client address (rbd_cluster_addr), with its NUL. */
#define RBD_ADDR_MAX 128

/*
 * This connection's client address as the cluster sees it: the owner
 * string of every exclusive lock it takes (e.g. "127.0.0.1:0/3861726402";
 * the nonce makes it unique to this connection, never reused).  0 and
 * buf, or -errno (-ENAMETOOLONG: longer than len).
 */
int rbd_cluster_addr(struct rbd_cluster *c, char *buf, size_t len);

/*
 * Name the address (rbd_cluster_addr) of the previous instance of this
 * gateway - the one that served the same state directory before this
 * process took its lock - or NULL/"" for none.  rbd_disk_open then breaks
 * an exclusive lock held by exactly that owner (rbd_disk.h: "a lock left
 * by a crash").  Call before any rbd_disk_open; the caller must know that
 * the owner is dead or can no longer write: the state directory's lock
 * (lab/statedir.h) proves no other pristined serves that state.  An
 * address longer than RBD_ADDR_MAX - 1 is ignored.  The address is also
 * blocklisted at once (for RBD_FENCE_S seconds): its watches go, so an
 * image it had open for writing (a half-imported one the start sweeps
 * away) is free without waiting ~30 s for the OSDs' watch timeout.
 */
#define RBD_FENCE_S 3600
void rbd_cluster_set_breakable(struct rbd_cluster *c, const char *addr);

/*
 * Whether the RBD image pool/name - or, when name is a client overlay's
 * directory (storage/ovl_ceph.h), its data image - has its exclusive
 * lock held by a client other than c: 1 and owner = that client's address
 * (cut to len), 0 (nobody, or c itself; no such image), or -errno.  What
 * a gateway of a cluster asks before it changes a disk another gateway
 * may have open (rbd_owner.c).
 */
int rbd_lock_elsewhere(struct rbd_cluster *c, const char *pool, const char *name, char *owner,
		       size_t len);

/*
 * Open the RBD image sp read-only through c, at sp->snap when set.
 * 0 and *out (a backend named "rbd:POOL/IMAGE[@SNAP]", release with
 * backend_close; it borrows c), or -errno with msg (-ENOENT: no such
 * pool, image or snapshot).  *id receives a string identifying what is
 * read, for image.json: the pool's id, the image's id and the
 * snapshot's id, or "head" (cut to idlen).
 */
int backend_rbd_open(struct rbd_cluster *c, const struct rbd_spec *sp, struct backend **out,
		     char *id, size_t idlen, char *msg, size_t msglen);

#endif
