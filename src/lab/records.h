/*
 * records.h - the registry of a gateway in a cluster (records.c): its
 * records live in RADOS (lab/store_rados.h), shared by every gateway.
 *
 * Every change runs as one cluster change:
 *   registry_change_begin: take the cluster's change lock (a short lease
 *     named after this gateway), then refresh from RADOS whatever record
 *     moved since this gateway last read it;
 *   the change itself (registry_add, image_commit, ...), whose saves are
 *     compare-and-swap on the versions read;
 *   registry_change_end: a save that lost its CAS turns the result into a
 *     clear error; notify every gateway; unlock.
 * Every gateway watches the notice object and refreshes within a second
 * of a change (a thread; also every REFRESH_EVERY_S seconds in case a
 * notice was lost).  A refresh never touches a PC online here unless the
 * change requires it (a forced removal ends its sessions).
 *
 * A single server (reg->cluster NULL): begin and end do nothing.
 */
#ifndef PRISTINE_LAB_RECORDS_H
#define PRISTINE_LAB_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

struct registry;
struct lab_store;

/*
 * Make reg a gateway of a cluster before anything is loaded into it:
 * store (store_rados_new; owned from now on) becomes its store, gateway
 * its name.  The change lock is taken for the start (images recorded,
 * clients loaded and saved), let go by registry_cluster_start.  0 or
 * -errno with msg (-EBUSY: another gateway holds the lock too long).
 */
int registry_cluster_init(struct registry *reg, struct lab_store *store, const char *gateway,
			  char *msg, size_t msglen);
/* After registry_open: the start's change ends (notified, unlocked);
 * watch the notices and start the refresh thread.  0 or -errno (logged). */
int registry_cluster_start(struct registry *reg);
/* Stop the refresh thread, unwatch, free (before registry_close).  A
 * registry that is no gateway: nothing. */
void registry_cluster_stop(struct registry *reg);
/* Stop (if not yet) and free it all, the store too (after the disks
 * were closed).  Nothing for a registry that is no gateway. */
void registry_cluster_free(struct registry *reg);

/* See above.  0, or -EBUSY / -errno with msg (nothing changed). */
int registry_change_begin(struct registry *reg, char *msg, size_t msglen);
/* rc is the change's result; returns it, or -ECANCELED with msg when a
 * save lost to another gateway's. */
int registry_change_end(struct registry *reg, int rc, char *msg, size_t msglen);
/* One change as a cluster change (call: the change, an int expression
 * run only when the lock was had), its result. */
#define CLUSTER_CHANGE(reg, call, err, errlen)                                 \
	(registry_change_begin((reg), (err), (errlen)) ?:                      \
	 registry_change_end((reg), (call), (err), (errlen)))
/* Bring reg in line with the records in RADOS (what moved).  Takes the
 * registry lock.  0 or -errno (logged). */
int registry_refresh(struct registry *reg);
/* Why a gateway of a cluster refuses an image in a local file. */
#define RECORDS_LOCAL_REFUSED                                                   \
	"a gateway of a cluster serves images on Ceph RBD only: a local file cannot be shared " \
	"with the other gateways (add a snapshot: image add NAME --rbd POOL/IMAGE@SNAP, or "      \
	"import it into Ceph: image import --rbd POOL)"
/* After the client records were saved (bindings_save): outside a
 * cluster change, the other gateways are told at once. */
void registry_records_saved(struct registry *reg);
/* Whether reg is a gateway of a cluster. */
bool registry_clustered(const struct registry *reg);

#endif
