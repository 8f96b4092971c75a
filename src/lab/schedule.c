/*
 * schedule.c - the registry's two background threads: scheduled resets
 * and the trash purger.
 *
 * Scheduled clients are reset daily at their reset-at time (local time):
 * at once when offline, else marked reset_due and reset at their next
 * boot (boot/boot_resolve.c).  The purger reclaims, through the store, the space
 * of whatever was discarded (resets, removed clients, drafts, deleted
 * versions), woken by purge_pending.  The scheduler also wakes, once a
 * day at their wake-at time, the offline PCs (lab/wake.h), with the lock
 * dropped while the packets go out.  Every second it merges the PCs'
 * boot recordings that settled into their versions' boot sets
 * (bootsets_tick, lab/bootsets.h).  Both wait on the registry's
 * condition variable and stop when reg->stopping is set.
 */
#include "lab/bootsets.h"
#include "lab/clients.h"
#include "util/iostats.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#define SCHED_TICK_S 20

/* One pass: reset the scheduled clients whose time came since the last pass.  Lock held. */
static void sched_pass(struct registry *reg, time_t now)
{
	char msg[256];

	for (struct client *c = reg->clients; c; c = c->next) {
		time_t at;
		if (c->policy != POLICY_SCHEDULED || c->reset_at < 0)
			continue;
		at = daily_last(now, c->reset_at);
		if (at <= reg->sched_last || at > now)
			continue;
		if (c->disk.sessions || c->disk.resetting || maintained_image(reg, c)) {
			if (!c->reset_due) {
				c->reset_due = true;
				bindings_save(reg);
				log_notice("client %s: scheduled reset at %02d:%02d while online: done at its "
					   "next boot", c->initiator, c->reset_at / 60, c->reset_at % 60);
			}
			continue;
		}
		if (client_reset_locked(reg, c, false, "scheduled", msg, sizeof(msg)))
			log_err("client %s: scheduled reset failed: %s", c->initiator, msg);
	}
	reg->sched_last = now;
}

void *registry_sched_main(void *arg)
{
	struct registry *reg = arg;
	struct timespec ts;
	unsigned ticks = 0;

	pthread_mutex_lock(&reg->lock);
	if (!reg->sched_last)
		reg->sched_last = time(NULL);
	if (!reg->wake_last)
		reg->wake_last = time(NULL);
	while (!reg->stopping) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;   /* boot recordings are looked at every second */
		pthread_cond_timedwait(&reg->cond, &reg->lock, &ts);
		if (reg->stopping)
			break;
		pthread_mutex_unlock(&reg->lock);
		bootsets_tick(reg, iostats_now_ns());
		pthread_mutex_lock(&reg->lock);
		if (reg->stopping)
			break;
		if (++ticks < SCHED_TICK_S)
			continue;
		ticks = 0;
		sched_pass(reg, time(NULL));
		if (reg->wake) {
			int64_t last = reg->wake_last, now = time(NULL);
			reg->wake_last = now;
			pthread_mutex_unlock(&reg->lock);
			registry_wake_daily(reg, last, now);
			pthread_mutex_lock(&reg->lock);
		}
	}
	pthread_mutex_unlock(&reg->lock);
	return NULL;
}

void *registry_purger_main(void *arg)
{
	struct registry *reg = arg;
	struct lab_store *st = registry_store(reg);

	pthread_mutex_lock(&reg->lock);
	for (;;) {
		while (!reg->purge_pending && !reg->stopping)
			pthread_cond_wait(&reg->cond, &reg->lock);
		if (reg->stopping)
			break;
		reg->purge_pending = false;
		pthread_mutex_unlock(&reg->lock);
		if (st->ops->purge(st))
			log_warn("could not reclaim all the space of discarded overlays");
		pthread_mutex_lock(&reg->lock);
		/* Images with a store of their own (on RBD) have their own
		 * trash.  An image stays until the registry closes, and so
		 * does its store; purge is safe without the lock. */
		for (unsigned i = 0; i < reg->nimages && !reg->stopping; i++) {
			struct lab_store *is = reg->images[i]->store;
			if (!is || is == st)
				continue;
			pthread_mutex_unlock(&reg->lock);
			if (is->ops->purge(is))
				log_warn("could not reclaim all the space of discarded overlays in Ceph");
			pthread_mutex_lock(&reg->lock);
		}
	}
	pthread_mutex_unlock(&reg->lock);
	return NULL;
}
