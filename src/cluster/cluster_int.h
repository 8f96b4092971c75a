/*
 * cluster_int.h - what the files of src/cluster share (not an API): the
 * struct cluster, the gateway table as read at the last beat, and the
 * omap helpers over the two objects of the pool.
 *
 *   pristine.cluster.gw   omap: key gateway name -> its entry (JSON:
 *                         address, ceph_addr, beat (unix ms), state
 *                         up|stopped, sessions, pcs); key "drain.NAME"
 *                         present = gateway NAME is draining (written
 *                         by whichever gateway the admin asked)
 *   pristine.cluster.pc   omap: key initiator -> gateway name
 *
 * Locking: cl->lock protects the table copy, the flags and the cut-off
 * marks; no omap I/O is done while holding it, except cluster_route's
 * placement write, which serialises this gateway's placements (two
 * logins deciding at once here must see each other's choice).
 */
#ifndef PRISTINE_CLUSTER_INT_H
#define PRISTINE_CLUSTER_INT_H

#include <pthread.h>
#include <stdint.h>

#include <rados/librados.h>

#include "cluster/cluster.h"
#include "storage/rbd.h"

#define CLUSTER_GW_OID "pristine.cluster.gw"
#define CLUSTER_PC_OID "pristine.cluster.pc"
#define CLUSTER_DRAIN_PREFIX "drain."
/* Most gateways of one table we keep (a real cluster has 2 or 3). */
#define CLUSTER_GW_MAX 16

enum gw_state { GW_UP, GW_DRAINING, GW_STOPPED, GW_DEAD };

struct gw {
	char name[CLUSTER_NAME_MAX];
	char address[CLUSTER_ADDR_MAX];
	char ceph_addr[RBD_ADDR_MAX];
	int64_t beat_ms;              /* wall clock of its last write */
	bool stopped;                 /* its entry says so (it left) */
	bool draining;                /* a drain key names it */
	unsigned sessions, pcs;       /* its load at its last beat */
	bool cutoff;                  /* its address reached us: keepalived moved it */
};

struct cluster {
	struct rbd_cluster *rc;       /* borrowed */
	rados_ioctx_t io;
	struct cluster_opts o;        /* strings point into the copies below */
	char name[CLUSTER_NAME_MAX], address[CLUSTER_ADDR_MAX], pool[RBD_POOL_MAX];
	char ceph_addr[RBD_ADDR_MAX];
	unsigned beat_ms, dead_ms;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t beat;
	bool beat_started, stopping, fenced;
	struct gw gws[CLUSTER_GW_MAX];
	unsigned ngw;
	int64_t last_ok_mono;         /* monotonic ms of our last successful write, 0 = none */
	pthread_mutex_t place_lock;   /* serialises placements made here */
};

/* Clocks in milliseconds. */
int64_t cluster_now_ms(void);
int64_t cluster_mono_ms(void);

/* The state of g as seen at now_ms (wall clock).  Lock held. */
enum gw_state cluster_gw_state(const struct cluster *cl, const struct gw *g, int64_t now_ms);
const char *cluster_state_name(enum gw_state s);
/* g is live: up (not draining, not stopped) and beating.  Lock held. */
bool cluster_gw_live(const struct cluster *cl, const struct gw *g, int64_t now_ms);
/* The gateway called name in the table copy, or NULL.  Lock held. */
struct gw *cluster_gw_find(struct cluster *cl, const char *name);

/* Every key/value of oid's omap: fn(arg, key, val, vallen) for each.
 * An absent object has none.  0 or -errno. */
int cluster_omap_each(struct cluster *cl, const char *oid,
		      void (*fn)(void *arg, const char *key, const char *val, size_t len), void *arg);
/* Set key = val (a string) in oid's omap (val NULL: remove key).  0 or -errno. */
int cluster_omap_put(struct cluster *cl, const char *oid, const char *key, const char *val);

/* Read pristine.cluster.gw into cl's table copy.  0 or -errno. */
int cluster_table_read(struct cluster *cl);

/* The placement: initiator -> gateway, as a JSON object (new reference),
 * or NULL with *rc set. */
json_t *cluster_placement_read(struct cluster *cl, int *rc);

/* The gateway a PC without a usable placement goes to: the live gateway
 * (ours unless draining or stopped; the others up and beating) with the
 * fewest PCs placed on it in placement (initiator itself not counted),
 * ties to the highest hash of (initiator, gateway); ours when none is
 * live.  A name in cl's table (borrowed).  Lock held.  No I/O: the unit
 * tests call it on a table of their own. */
const char *cluster_choose(struct cluster *cl, json_t *placement, const char *initiator,
			   int64_t now);

/* One drain step of this gateway, from the beat thread: when we are
 * draining, end the sessions of the PCs placed here, one by one, and
 * clear their placement (place.c). */
void cluster_drain_step(struct cluster *cl);

/* The lock-break policy installed on the connection (place.c). */
bool cluster_may_break(void *arg, const char *owner_addr);

#endif
