/*
 * records.c - the registry of a gateway in a cluster (contract in
 * records.h): cluster changes (lock, refresh, CAS, notify, unlock) and
 * the refresh thread that follows the other gateways' changes.
 *
 * Locks, always taken in this order: cl->change (one cluster change at a
 * time on this gateway: a change and a refresh never interleave), the
 * cluster's change lock in RADOS, reg->lock.  The watch callback only
 * sets cl->due and signals (it runs on a librados thread).
 */
#include "lab/records.h"
#include "lab/clients.h"
#include "lab/store_rados.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a change waits for another gateway's to end. */
#define LOCK_WAIT_MS 5000
/* A refresh anyway this often, should a notice be lost. */
#define REFRESH_EVERY_S 5

struct registry_cluster {
	struct lab_store *store;      /* owned (store_rados) */
	char gateway[64];
	pthread_mutex_t change;
	pthread_mutex_t lock;         /* due, stopping */
	pthread_cond_t cond;
	bool due, stopping, locked_at_start;
	pthread_t refresher;
	bool refresher_started;
};

bool registry_clustered(const struct registry *reg)
{
	return reg->cluster != NULL;
}

int registry_cluster_init(struct registry *reg, struct lab_store *store, const char *gateway,
			  char *msg, size_t msglen)
{
	struct registry_cluster *cl = calloc(1, sizeof(*cl));
	char holder[80];
	int rc;

	if (!cl) {
		store_rados_free(store);
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	cl->store = store;
	snprintf(cl->gateway, sizeof(cl->gateway), "%s", gateway);
	pthread_mutex_init(&cl->change, NULL);
	pthread_mutex_init(&cl->lock, NULL);
	pthread_cond_init(&cl->cond, NULL);
	reg->cluster = cl;
	reg->store = store;
	/* two gateways starting at once must not both record one image */
	rc = store_rados_lock(store, 4 * LOCK_WAIT_MS, holder, sizeof(holder));
	if (rc == -EBUSY)
		snprintf(msg, msglen, "the cluster's records are being changed through gateway %s; "
			 "start again in a moment", holder[0] ? holder : "?");
	else if (rc)
		snprintf(msg, msglen, "cannot take the cluster's change lock: %s", strerror(-rc));
	cl->locked_at_start = rc == 0;
	return rc;
}

/* A notice (librados thread): the refresh thread does the work. */
static void on_notice(void *arg)
{
	struct registry_cluster *cl = arg;

	pthread_mutex_lock(&cl->lock);
	cl->due = true;
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
}

/* Refresh after every notice, and every REFRESH_EVERY_S seconds. */
static void *refresher_main(void *arg)
{
	struct registry *reg = arg;
	struct registry_cluster *cl = reg->cluster;

	pthread_mutex_lock(&cl->lock);
	while (!cl->stopping) {
		if (!cl->due) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += REFRESH_EVERY_S;
			pthread_cond_timedwait(&cl->cond, &cl->lock, &ts);
			if (cl->stopping)
				break;
		}
		cl->due = false;
		pthread_mutex_unlock(&cl->lock);
		pthread_mutex_lock(&cl->change);
		registry_refresh(reg);
		pthread_mutex_unlock(&cl->change);
		pthread_mutex_lock(&cl->lock);
	}
	pthread_mutex_unlock(&cl->lock);
	return NULL;
}

int registry_cluster_start(struct registry *reg)
{
	struct registry_cluster *cl = reg->cluster;
	int rc;

	if (!cl)
		return 0;
	if (cl->locked_at_start) {
		store_rados_notify(cl->store);
		store_rados_unlock(cl->store);
		cl->locked_at_start = false;
	}
	if ((rc = store_rados_watch(cl->store, on_notice, cl))) {
		log_err("cluster: cannot watch the change notices (%s); changes on other gateways "
			"are seen every %d s only", strerror(-rc), REFRESH_EVERY_S);
	}
	if (pthread_create(&cl->refresher, NULL, refresher_main, reg) == 0)
		cl->refresher_started = true;
	else
		log_err("cluster: cannot start the refresh thread");
	log_notice("cluster: gateway %s, records in RADOS", cl->gateway);
	return 0;
}

void registry_cluster_stop(struct registry *reg)
{
	struct registry_cluster *cl = reg->cluster;

	if (!cl)
		return;
	pthread_mutex_lock(&cl->lock);
	cl->stopping = true;
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
	if (cl->refresher_started)
		pthread_join(cl->refresher, NULL);
	if (cl->locked_at_start)
		store_rados_unlock(cl->store);
	cl->locked_at_start = false;
}

void registry_cluster_free(struct registry *reg)
{
	struct registry_cluster *cl = reg->cluster;

	if (!cl)
		return;
	registry_cluster_stop(reg);
	if (reg->store == cl->store)
		reg->store = NULL;
	store_rados_free(cl->store);
	pthread_mutex_destroy(&cl->change);
	pthread_mutex_destroy(&cl->lock);
	pthread_cond_destroy(&cl->cond);
	free(cl);
	reg->cluster = NULL;
}

int registry_change_begin(struct registry *reg, char *msg, size_t msglen)
{
	struct registry_cluster *cl = reg->cluster;
	char holder[80];
	int rc;

	if (!cl)
		return 0;
	pthread_mutex_lock(&cl->change);
	rc = store_rados_lock(cl->store, LOCK_WAIT_MS, holder, sizeof(holder));
	if (rc) {
		if (rc == -EBUSY)
			snprintf(msg, msglen, "the cluster's records are being changed through gateway %s; "
				 "nothing was changed, try again in a moment", holder[0] ? holder : "?");
		else
			snprintf(msg, msglen, "cannot take the cluster's change lock (%s); nothing was "
				 "changed", strerror(-rc));
		pthread_mutex_unlock(&cl->change);
		return rc == -EBUSY ? -EBUSY : -EAGAIN;
	}
	store_rados_conflict(cl->store);   /* a stale flag of a save outside a change */
	registry_refresh(reg);
	return 0;
}

int registry_change_end(struct registry *reg, int rc, char *msg, size_t msglen)
{
	struct registry_cluster *cl = reg->cluster;

	if (!cl)
		return rc;
	if (store_rados_conflict(cl->store) && rc == 0) {
		snprintf(msg, msglen, "the records changed on another gateway meanwhile, so this change "
			 "was not recorded in the cluster; try again");
		rc = -ECANCELED;
	}
	store_rados_notify(cl->store);
	store_rados_unlock(cl->store);
	pthread_mutex_unlock(&cl->change);
	if (rc == -ECANCELED)
		on_notice(cl);   /* read the records again */
	return rc;
}

int registry_refresh(struct registry *reg)
{
	struct registry_cluster *cl = reg->cluster;
	struct lab_store *st;
	json_t *root;
	int rc = 0;

	if (!cl)
		return 0;
	st = cl->store;
	pthread_mutex_lock(&reg->lock);
	if (store_rados_index_moved(st))
		images_load_added(reg);
	for (unsigned i = 0; i < reg->nimages; i++) {
		struct image *img = reg->images[i];
		if (!store_rados_image_moved(st, img->name))
			continue;
		if ((rc = st->ops->image_load(st, img->name, &root)) == 0) {
			image_refresh(reg, img, root);
			json_decref(root);
		}
	}
	if (store_rados_clients_moved(st)) {
		rc = st->ops->clients_load(st, &root);
		if (rc == 0) {
			rc = registry_clients_refresh(reg, root);
			json_decref(root);
		} else if (rc != -ENOENT) {
			log_err("cluster: the client records cannot be read: %s", strerror(-rc));
		}
	}
	pthread_mutex_unlock(&reg->lock);
	return rc == -ENOENT ? 0 : rc;
}

void registry_records_saved(struct registry *reg)
{
	struct registry_cluster *cl = reg->cluster;

	/* a change notifies at its end; a save outside one (an enrolment,
	 * a scheduled reset) tells the others now */
	if (cl && !cl->locked_at_start && !store_rados_in_change(cl->store))
		store_rados_notify(cl->store);
}
