/*
 * wake_clients.c - Wake-on-LAN of the registry's PCs: on request (the
 * API's wake) and daily at the wake-at times (called by the scheduler).
 * Which PCs, their MACs and addresses are read under the registry lock;
 * the packets are sent after it is dropped (wake_send sleeps between
 * its copies).
 */
#include "lab/clients.h"
#include "lab/wake.h"
#include "util/events.h"
#include "util/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A PC to wake, copied out of the registry. */
struct wake_target {
	char client[ISCSI_NAME_MAX];   /* its name, else its initiator */
	char image[IMAGE_NAME_MAX];
	char mac[18];
	uint32_t addr;
};

/* The name the API and the events use for c. */
static const char *shown_name(const struct client *c)
{
	return c->name[0] ? c->name : c->initiator;
}

uint32_t client_addr4(const struct registry *reg, const struct client *c)
{
	if (c->last_addr4 && wake_match(reg->wake, c->last_addr4))
		return c->last_addr4;
	for (unsigned i = 0; i < c->nallow; i++)
		if (c->allow[i].family == AF_INET)
			return (uint32_t)c->allow[i].addr[0] << 24 | (uint32_t)c->allow[i].addr[1] << 16 |
			       (uint32_t)c->allow[i].addr[2] << 8 | c->allow[i].addr[3];
	return c->last_addr4;
}

/* Copy c into t.  Lock held. */
static void target_of(const struct registry *reg, const struct client *c, struct wake_target *t)
{
	snprintf(t->client, sizeof(t->client), "%s", shown_name(c));
	snprintf(t->image, sizeof(t->image), "%s", c->disk.img ? c->disk.img->name : "");
	snprintf(t->mac, sizeof(t->mac), "%s", c->mac);
	t->addr = client_addr4(reg, c);
}

/* Append {"client","why"} to skipped. */
static void skip(json_t *skipped, const char *client, const char *why)
{
	json_array_append_new(skipped, json_pack("{s:s, s:s}", "client", client, "why", why));
}

/*
 * Choose the PCs of a wake request under the lock: targets get those to
 * wake (at most cap), skipped the others with their reason.  Returns how
 * many targets, or -errno with msg.
 */
static int wake_choose_pcs(struct registry *reg, const char *const *ids, unsigned n, bool all,
			   const char *image, struct wake_target *targets, unsigned cap,
			   json_t *skipped, char *msg, size_t msglen)
{
	unsigned nt = 0;
	int rc = 0;

	pthread_mutex_lock(&reg->lock);
	if (all && image && !registry_image(reg, image)) {
		snprintf(msg, msglen, "no image %s", image);
		rc = -ENOENT;
		goto out;
	}
	/* Every named PC must exist and have a MAC before anything is sent. */
	for (unsigned i = 0; !all && i < n; i++) {
		struct client *c = registry_find(reg, ids[i]);
		if (!c) {
			snprintf(msg, msglen, "no client %s", ids[i]);
			rc = -ENOENT;
			goto out;
		}
		if (!c->mac[0]) {
			snprintf(msg, msglen, "client %s has no MAC address to wake it by: set one "
				 "with pristinectl client set %s --mac AA:BB:CC:DD:EE:FF",
				 shown_name(c), shown_name(c));
			rc = -EINVAL;
			goto out;
		}
	}
	for (struct client *c = reg->clients; c && nt < cap; c = c->next) {
		bool chosen = false;
		if (all) {
			chosen = !image || (c->disk.img && strcmp(c->disk.img->name, image) == 0);
		} else {
			for (unsigned i = 0; i < n && !chosen; i++)
				chosen = registry_find(reg, ids[i]) == c;
		}
		if (!chosen)
			continue;
		if (c->disk.sessions) {
			skip(skipped, shown_name(c), "online: it is running, no wake needed");
			continue;
		}
		if (!c->mac[0]) {
			skip(skipped, shown_name(c), "no MAC address");
			continue;
		}
		target_of(reg, c, &targets[nt++]);
	}
	rc = (int)nt;
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

/* Send the packets for targets[0..n); why is for the events ("admin",
 * "daily at 07:50").  Fills woken/skipped when not NULL. */
static void wake_all(struct registry *reg, const struct wake_target *t, unsigned n,
		     const char *why, json_t *woken, json_t *skipped)
{
	char via[160], msg[200];

	for (unsigned i = 0; i < n; i++) {
		if (wake_send(reg->wake, t[i].mac, t[i].addr, via, sizeof(via), msg, sizeof(msg))) {
			log_warn("client %s: Wake-on-LAN failed: %s", t[i].client, msg);
			events_add(EV_ERROR, t[i].client, t[i].image, "wake failed: %s", msg);
			if (skipped)
				skip(skipped, t[i].client, msg);
			continue;
		}
		events_add(EV_WAKE, t[i].client, t[i].image, "woken (%s) via %s, MAC %s", why, via,
			   t[i].mac);
		if (woken)
			json_array_append_new(woken, json_pack("{s:s, s:s, s:s}", "client", t[i].client,
							       "mac", t[i].mac, "via", via));
	}
}

/* How many clients the registry has (the most a request can wake). */
static unsigned count_clients(struct registry *reg)
{
	unsigned n = 0;

	pthread_mutex_lock(&reg->lock);
	for (struct client *c = reg->clients; c; c = c->next)
		n++;
	pthread_mutex_unlock(&reg->lock);
	return n;
}

int registry_wake(struct registry *reg, const char *const *ids, unsigned n, bool all,
		  const char *image, json_t **out, char *msg, size_t msglen)
{
	/* Clients added in between are not woken by this request. */
	unsigned cap = count_clients(reg) + 1;
	struct wake_target *t = calloc(cap, sizeof(*t));
	json_t *woken = json_array(), *skipped = json_array();
	int nt;

	if (!t || !woken || !skipped) {
		snprintf(msg, msglen, "out of memory");
		nt = -ENOMEM;
		goto fail;
	}
	nt = wake_choose_pcs(reg, ids, n, all, image, t, cap, skipped, msg, msglen);
	if (nt < 0)
		goto fail;
	wake_all(reg, t, (unsigned)nt, "admin", woken, skipped);
	free(t);
	*out = json_pack("{s:o, s:o}", "woken", woken, "skipped", skipped);
	return 0;
fail:
	free(t);
	json_decref(woken);
	json_decref(skipped);
	return nt;
}

void registry_wake_daily(struct registry *reg, int64_t last, int64_t now)
{
	struct wake_target *t;
	unsigned cap, nt = 0;
	char why[32];

	if (!reg->wake || (!reg->wake->nats && reg->wake->default_at < 0))
		return;
	cap = count_clients(reg) + 1;
	t = calloc(cap, sizeof(*t));
	if (!t) {
		log_err("daily wake: out of memory");
		return;
	}
	pthread_mutex_lock(&reg->lock);
	for (struct client *c = reg->clients; c && nt < cap; c = c->next) {
		int at = wake_at_for(reg->wake, c->disk.img ? c->disk.img->name : NULL);
		if (!wake_time_came(at, last, now) || c->disk.sessions || !c->mac[0])
			continue;
		target_of(reg, c, &t[nt++]);
	}
	pthread_mutex_unlock(&reg->lock);
	for (unsigned i = 0; i < nt; i++) {
		int at = wake_at_for(reg->wake, t[i].image[0] ? t[i].image : NULL);
		snprintf(why, sizeof(why), "daily at %02d:%02d", at / 60, at % 60);
		wake_all(reg, &t[i], 1, why, NULL, NULL);
	}
	free(t);
}
