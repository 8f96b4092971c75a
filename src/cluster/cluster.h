/*
 * cluster.h - several gateways (pristined) on one Ceph pool: who they
 * are, which gateway serves which PC, and who may take a PC over from
 * whom (docs/cluster.md).
 *
 * The gateway table lives in Ceph (pool's object "pristine.cluster.gw",
 * one omap entry per gateway: its address, its Ceph client address, its
 * last heartbeat, its load, up / draining / stopped).  Each gateway
 * writes its entry every beat (1 s) and reads the table back; a gateway
 * whose entry is older than dead_after is DEAD.
 *
 * Placement ("pristine.cluster.pc", one omap entry per PC: the gateway
 * serving it) is sticky: a PC goes back to the gateway it had (its cache
 * is warm there) while that gateway is up and not draining; a PC without
 * one, or whose gateway is dead, draining or stopped, is placed on the
 * live gateway with the fewest PCs (ties broken by a hash of the PC's
 * name, so two gateways deciding at once mostly agree).  A login that
 * reaches the wrong gateway is redirected (iSCSI login status 0x0101,
 * TargetAddress = the right gateway's address), which iPXE, libiscsi,
 * open-iscsi and Windows follow.
 *
 * Fencing: a PC's overlay is written by the one gateway holding its
 * exclusive lock in Ceph (rbd_lock_take).  A gateway may break the lock
 * of another only when that gateway is dead, stopped, or cut off from
 * the PCs (its address now reaches us: keepalived moved it), and
 * breaking blocklists the old owner's Ceph client address first: from
 * then on every write it sends is refused by the OSDs, so a half-dead
 * gateway can never write after the takeover.  A gateway that finds
 * itself blocklisted stops (opts.fenced): a supervisor (systemd's
 * Restart=) starts it again with a new Ceph identity and it rejoins.
 *
 * A single server (no cluster-name) never calls any of this.
 *
 * Dependencies: util and storage only; lab, admin and daemon use it.
 * Threading: every function may be called from any thread.
 */
#ifndef PRISTINE_CLUSTER_H
#define PRISTINE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <jansson.h>

struct rbd_cluster;
struct cluster;

#define CLUSTER_NAME_MAX 32
#define CLUSTER_ADDR_MAX 80
#define CLUSTER_BEAT_MS 1000

struct cluster_opts {
	const char *name;             /* this gateway (cluster-name) */
	const char *address;          /* HOST:PORT PCs are sent to (cluster-address) */
	const char *pool;             /* where the table is (cluster-pool) */
	unsigned dead_after_s;        /* cluster-dead-after */
	unsigned beat_ms;             /* 0 = CLUSTER_BEAT_MS (tests may shorten it) */
	/* This gateway's load now, asked at every beat (NULL: 0, 0). */
	void (*load)(void *arg, unsigned *sessions, unsigned *pcs);
	/* End every session of initiator here (drain); may be NULL. */
	void (*end_sessions)(void *arg, const char *initiator);
	/* This gateway was fenced (its Ceph client is blocklisted): nothing
	 * it writes reaches Ceph any more.  Called once, from the beat
	 * thread; the daemon logs it and exits (status 75) so that its
	 * supervisor starts it again.  NULL: exit(75). */
	void (*fenced)(void *arg);
	void *arg;
};

/*
 * Join the cluster through c (borrowed): write our entry (up), read the
 * table, install the lock-break policy on c (rbd_cluster_set_break_policy)
 * and start the beat thread.  A live gateway of the same name (another
 * process, beating) is refused (-EEXIST with msg).  0 and *out, or -errno
 * with msg.
 */
int cluster_join(struct rbd_cluster *c, const struct cluster_opts *o, struct cluster **out,
		 char *msg, size_t msglen);
/* Leave: mark our entry stopped (its PCs are placed elsewhere at once),
 * stop the beat thread, free.  NULL is a no-op. */
void cluster_leave(struct cluster *cl);

enum cluster_route {
	CLUSTER_HERE,                 /* serve the login here */
	CLUSTER_ELSEWHERE,            /* redirect it to *addr */
	CLUSTER_UNAVAILABLE,          /* no gateway can take it now (we are cut off
				       * from Ceph): "service unavailable, retry" */
};
/*
 * Where initiator's session is served.  local: the address the PC's
 * connection reached us on (a failover address tells us its gateway is
 * cut off from the PCs: the PC is taken over here).  Records the
 * placement when it changes.  addr gets HOST:PORT for CLUSTER_ELSEWHERE.
 */
enum cluster_route cluster_route(struct cluster *cl, const char *initiator,
				 const struct sockaddr *local, char *addr, size_t addrlen);
/* The PC's disk was closed here (its last session ended): nothing of
 * ours holds its lock any more. */
void cluster_released(struct cluster *cl, const char *initiator);

/* The table and the placement as JSON (GET /api/cluster: {"self": NAME,
 * "gateways": [{name, address, ceph_addr, state: up|draining|stopped|dead,
 * beat_age_ms, sessions, pcs, placed}], "pcs": [{initiator, gateway}]}).
 * 0 and *out (json_decref) or -errno. */
int cluster_status(struct cluster *cl, json_t **out);
/*
 * Drain gateway name (on: move its PCs elsewhere - the gateway ends
 * their sessions one by one and they log in again, redirected; off:
 * take PCs again).  Any gateway may be asked.  0, or -ENOENT / -errno
 * with msg.
 */
int cluster_drain(struct cluster *cl, const char *name, bool on, char *msg, size_t msglen);
/* Whether our own entry was written within dead_after (we can reach
 * Ceph): what keepalived's health check asks (GET /api/cluster/health). */
bool cluster_healthy(struct cluster *cl);

#endif
