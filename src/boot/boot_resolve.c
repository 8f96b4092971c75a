/*
 * boot_resolve.c - the lab's answer to the boot endpoint (boot/boot.h):
 * which PC asks, its script, and the reset policies a boot triggers.
 * It sits in boot/ because it uses both sides (boot -> lab, never the
 * other way); the daemon passes registry_boot_resolve as the boot hook.
 *
 * A boot request identifies a PC by MAC, then by an SMBIOS UUID an admin
 * set for a client (placeholder UUIDs - all zeros, all ones - never match).  Unknown
 * PCs follow the enroll policy: auto creates a client on the default
 * image (initiator iqn.2026-11.org.pristine:pc-<mac>), deny answers with a
 * message.  A known PC gets a script that sanboots its image - or the
 * draft, if it is an image's maintenance client - under its own initiator
 * name.
 *
 * Fetching the boot script is the moment a PC (re)boots, so a
 * reset-on-boot client's overlay is discarded then (and a scheduled reset
 * missed while it was online).  Never under a live session: a session left
 * over from the previous boot - from the same address as this request -
 * is ended first; a session from ANOTHER address means the request cannot
 * be this PC rebooting, so nothing is reset and the answer says why.
 *
 * Scheduled resets and the trash purger are in lab/schedule.c.
 */
#include "boot/boot_resolve.h"
#include "boot/boot.h"
#include "lab/bootsets.h"
#include "lab/clients.h"
#include "lab/images.h"
#include "util/log.h"
#include "util/events.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct peer_check {
	const char *initiator;
	const char *addr;             /* the boot request's peer */
	unsigned same, other;
	char other_peer[80];
};

/* Host part of "ADDR:PORT" / "[V6]:PORT" into out. */
static void host_of(const char *peer, char *out, size_t len)
{
	const char *end;

	if (peer[0] == '[') {
		end = strchr(peer, ']');
		snprintf(out, len, "%.*s", end ? (int)(end - peer - 1) : 0, peer + 1);
		return;
	}
	end = strrchr(peer, ':');
	snprintf(out, len, "%.*s", end ? (int)(end - peer) : (int)strlen(peer), peer);
}

static void count_peers(void *ctx, const struct iscsi_session_info *si)
{
	struct peer_check *pc = ctx;
	char host[80];

	if (strcasecmp(si->initiator, pc->initiator) != 0)
		return;
	host_of(si->peer, host, sizeof(host));
	/* IPv4 seen through an IPv6 socket */
	const char *h = strncmp(host, "::ffff:", 7) == 0 ? host + 7 : host;
	const char *a = strncmp(pc->addr, "::ffff:", 7) == 0 ? pc->addr + 7 : pc->addr;
	if (strcmp(h, a) == 0) {
		pc->same++;
	} else {
		pc->other++;
		snprintf(pc->other_peer, sizeof(pc->other_peer), "%s", h);
	}
}

/*
 * A UUID that identifies nothing: all zeros (QEMU's default, many cheap
 * boards) or all ones.  Such a UUID is shared by many PCs.
 */
static bool uuid_placeholder(const char *u)
{
	bool zero = true, ones = true;

	for (; *u; u++) {
		if (*u == '-')
			continue;
		zero &= *u == '0';
		ones &= *u == 'f';
	}
	return zero || ones;
}

/*
 * The client a boot request is: by MAC, else by a UUID an admin gave it
 * (never learned from requests: vendors ship boards with duplicate UUIDs).
 */
static struct client *find_by_boot_id(struct registry *reg, const struct boot_request *rq)
{
	struct client *c;

	if (rq->mac[0])
		for (c = reg->clients; c; c = c->next)
			if (c->mac[0] && strcmp(c->mac, rq->mac) == 0)
				return c;
	if (rq->uuid[0] && !uuid_placeholder(rq->uuid))
		for (c = reg->clients; c; c = c->next)
			if (c->uuid[0] && strcmp(c->uuid, rq->uuid) == 0)
				return c;
	return NULL;
}

/* May a boot request from peer (numeric text) speak for c? */
static bool peer_allowed(const struct client *c, const char *peer)
{
	struct sockaddr_storage ss;

	if (!c->nallow)
		return true;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, peer, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, peer, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return false;
	for (unsigned i = 0; i < c->nallow; i++)
		if (netaddr_match(&c->allow[i], (struct sockaddr *)&ss))
			return true;
	return false;
}

static struct image *enroll_image(struct registry *reg)
{
	if (reg->default_image[0])
		return registry_image(reg, reg->default_image);
	return reg->nimages == 1 ? reg->images[0] : NULL;
}

/* A new client for an unknown PC.  Lock held.  NULL with ans set if not. */
static struct client *enroll(struct registry *reg, const struct boot_request *rq,
			     struct boot_answer *ans)
{
	struct image *img = enroll_image(reg);
	char iqn[ISCSI_NAME_MAX], name[64], hex[13];
	struct client *c;
	unsigned n = 0;

	if (!rq->mac[0]) {
		ans->kind = BOOT_MESSAGE;
		snprintf(ans->message, sizeof(ans->message),
			 "this PC sent no MAC address; it cannot be enrolled automatically");
		return NULL;
	}
	if (!img) {
		ans->kind = BOOT_MESSAGE;
		snprintf(ans->message, sizeof(ans->message), "no default image for new PCs (MAC %s): "
			 "set image in [defaults] of the configuration", rq->mac);
		return NULL;
	}
	for (const char *p = rq->mac; *p; p++)
		if (*p != ':')
			hex[n++] = *p;
	hex[n] = '\0';
	snprintf(iqn, sizeof(iqn), "iqn.2026-11.org.pristine:pc-%s", hex);
	c = registry_find(reg, iqn);
	if (c) {
		/* Known by that initiator (e.g. removed MAC): take the MAC again. */
		snprintf(c->mac, sizeof(c->mac), "%s", rq->mac);
		bindings_save(reg);
		return c;
	}
	c = client_new(reg, iqn, img);
	if (!c) {
		ans->kind = BOOT_MESSAGE;
		snprintf(ans->message, sizeof(ans->message), "out of memory");
		return NULL;
	}
	snprintf(name, sizeof(name), "pc-%s", hex);
	if (!registry_find(reg, name))
		snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->mac, sizeof(c->mac), "%s", rq->mac);
	c->origin = ORIGIN_AUTO;
	c->next = reg->clients;
	reg->clients = c;
	bindings_save(reg);
	log_notice("client %s (MAC %s) enrolled at boot on image %s", iqn, rq->mac, img->name);
	return c;
}

/*
 * Whether a boot request from rq can be c rebooting: none of its
 * sessions comes from another address.  0, or -EBUSY with ans set
 * (what says what was not done).  Stale sessions from its own address
 * are logged; the caller ends them.
 */
static int boot_is_reboot(struct registry *reg, struct client *c, const struct boot_request *rq,
			  const char *what, struct boot_answer *ans)
{
	struct peer_check pc = { .initiator = c->initiator, .addr = rq->peer };

	if (!c->disk.sessions)
		return 0;
	if (reg->hooks.foreach_session)
		reg->hooks.foreach_session(reg->hooks.ctx, count_peers, &pc);
	if (pc.other) {
		ans->kind = BOOT_MESSAGE;
		snprintf(ans->message, sizeof(ans->message), "%s is online from %s; a boot request "
			 "from %s cannot be that PC rebooting: %s", c->initiator,
			 pc.other_peer, rq->peer, what);
		log_warn("boot: %s", ans->message);
		return -EBUSY;
	}
	log_notice("boot: %s reboots with %u stale session%s from %s: ending them", c->initiator,
		   pc.same, pc.same == 1 ? "" : "s", rq->peer);
	return 0;
}

/*
 * The reset a boot means for c (reset-on-boot, or a scheduled reset that
 * is due).  0 (done or nothing to do), or -EBUSY with ans set.
 */
static int reset_at_boot(struct registry *reg, struct client *c, const struct boot_request *rq,
			 struct boot_answer *ans)
{
	char msg[256];
	int rc;

	if (c->policy != POLICY_RESET_ON_BOOT && !c->reset_due)
		return 0;
	if (boot_is_reboot(reg, c, rq, "nothing was reset", ans))
		return -EBUSY;
	rc = client_reset_locked(reg, c, true, c->reset_due ? "scheduled, at boot" : "reset-on-boot",
				 msg, sizeof(msg));
	if (rc) {
		ans->kind = BOOT_MESSAGE;
		snprintf(ans->message, sizeof(ans->message), "%s could not be reset: %s", c->initiator, msg);
		log_err("boot: %s", ans->message);
		return rc;
	}
	return 0;
}

/*
 * What a boot means for c's extra disks (lab/xdisk.h): discard-on-boot
 * ones discarded, read-only ones moved to their image's current version,
 * once its stale sessions (same address) are ended.  0, or -EBUSY with
 * ans set.  A disk that fails is logged; the PC boots with the others.
 */
static int extra_disks_at_boot(struct registry *reg, struct client *c,
			       const struct boot_request *rq, struct boot_answer *ans)
{
	char msg[256];

	if (!xdisk_boot_due(c))
		return 0;
	if (boot_is_reboot(reg, c, rq, "its disks were not reset", ans))
		return -EBUSY;
	if (c->disk.sessions) {
		if (disk_quiesce(reg, &c->disk, true, "boot", msg, sizeof(msg))) {
			ans->kind = BOOT_MESSAGE;
			snprintf(ans->message, sizeof(ans->message), "%s: its disks could not be reset: %s",
				 c->initiator, msg);
			log_err("boot: %s", ans->message);
			return -EBUSY;
		}
		c->disk.resetting = false;
	}
	xdisk_at_boot(reg, c);
	return 0;
}

/* The PC's IPv4 address (host order) for Wake-on-LAN: the one iPXE
 * reported, else the TCP peer's; 0 = neither is IPv4. */
static uint32_t boot_addr4(const struct boot_request *rq)
{
	struct in_addr a;

	if (inet_pton(AF_INET, rq->ip[0] ? rq->ip : rq->peer, &a) == 1)
		return ntohl(a.s_addr);
	return 0;
}

int registry_boot_resolve(void *ctx, const struct boot_request *rq, struct boot_answer *ans)
{
	struct registry *reg = ctx;
	struct image *img;
	struct client *c;

	pthread_mutex_lock(&reg->lock);
	c = find_by_boot_id(reg, rq);
	if (!c && !reg->enroll_auto) {
		ans->kind = BOOT_MESSAGE;
		snprintf(ans->who, sizeof(ans->who), "unknown PC");
		snprintf(ans->message, sizeof(ans->message), "this PC (MAC %s%s%s) is not a client of "
			 "this server. Ask the administrator: pristinectl client add IQN --mac %s",
			 rq->mac[0] ? rq->mac : "?", rq->uuid[0] ? ", UUID " : "", rq->uuid,
			 rq->mac[0] ? rq->mac : "MAC");
		log_notice("boot: unknown PC from %s (MAC %s, UUID %s) refused (enroll = deny)", rq->peer,
			   rq->mac[0] ? rq->mac : "-", rq->uuid[0] ? rq->uuid : "-");
		events_add(EV_REFUSED, NULL, NULL, "boot from %s refused: unknown PC (MAC %s), enroll = deny",
			   rq->peer, rq->mac[0] ? rq->mac : "-");
		goto out;
	}
	if (!c && !(c = enroll(reg, rq, ans)))
		goto out;
	snprintf(ans->who, sizeof(ans->who), "%s", c->name[0] ? c->name : c->initiator);
	if (!peer_allowed(c, rq->peer)) {
		/* Its script may carry its CHAP secret, and the request may reset
		 * it: only from where the PC may log in at all. */
		ans->kind = BOOT_MESSAGE;
		snprintf(ans->message, sizeof(ans->message), "%s may not boot from this address (%s)",
			 ans->who, rq->peer);
		log_warn("boot: request for %s (MAC %s) from %s, an address it is not bound to: "
			 "refused (possible spoofing)", c->initiator, rq->mac[0] ? rq->mac : "-", rq->peer);
		events_add(EV_REFUSED, ans->who, NULL, "boot from %s refused: an address it is not bound to",
			   rq->peer);
		goto out;
	}
	if (c->chap.user[0] &&
	    (!boot_setting_safe(c->chap.user) || !boot_setting_safe(c->chap.secret) ||
	     (c->chap.muser[0] && (!boot_setting_safe(c->chap.muser) ||
				   !boot_setting_safe(c->chap.msecret))))) {
		ans->kind = BOOT_MESSAGE;
		snprintf(ans->message, sizeof(ans->message), "the CHAP settings of %s cannot be put in "
			 "an iPXE script; the administrator must change them", ans->who);
		log_err("boot: the CHAP name or secret of %s has blanks, $, quotes, \\ or #, which an "
			"iPXE script cannot carry: choose another", c->initiator);
		goto out;
	}
	snprintf(c->boot_uuid, sizeof(c->boot_uuid), "%s", rq->uuid);
	img = maintained_image(reg, c);
	if (img && xdisk_has(c, img))
		img = NULL;   /* an extra disk's draft: at its LUN, it boots its own system */
	if (img) {
		/* It boots the draft: its own overlay is not what it sees, keep it. */
		log_notice("boot: %s boots the draft of image %s (maintenance)", c->initiator, img->name);
	} else {
		img = c->disk.img;
		if (reset_at_boot(reg, c, rq, ans) || extra_disks_at_boot(reg, c, rq, ans))
			goto out;
	}
	c->last_boot = (int64_t)time(NULL);
	boot_begin(&c->boot, iostats_now_ns(), true);
	if (img == c->disk.img)   /* not the draft a maintenance PC boots */
		bootsets_boot_begin(reg, c, true);
	ans->kind = BOOT_SANBOOT;
	snprintf(ans->initiator, sizeof(ans->initiator), "%s", c->initiator);
	snprintf(ans->target, sizeof(ans->target), "%s", img->target);
	if (reg->boot_portal[0] && strchr(reg->boot_portal, ':') &&
	    reg->boot_portal[strlen(reg->boot_portal) - 1] != ']')
		snprintf(ans->portal, sizeof(ans->portal), "%s", reg->boot_portal);
	else
		snprintf(ans->portal, sizeof(ans->portal), "%s:%u",
			 reg->boot_portal[0] ? reg->boot_portal : rq->host, reg->iscsi_port);
	if (c->chap.user[0]) {
		snprintf(ans->chap_user, sizeof(ans->chap_user), "%s", c->chap.user);
		snprintf(ans->chap_secret, sizeof(ans->chap_secret), "%s", c->chap.secret);
		snprintf(ans->mutual_user, sizeof(ans->mutual_user), "%s", c->chap.muser);
		snprintf(ans->mutual_secret, sizeof(ans->mutual_secret), "%s", c->chap.msecret);
	}
	log_info("boot: %s (MAC %s) from %s: sanboot %s via %s", c->initiator,
		 rq->mac[0] ? rq->mac : "-", rq->peer, img->target, ans->portal);
	c->last_addr4 = boot_addr4(rq);
	events_add(EV_BOOT, ans->who, img->name, "boot script served to %s (MAC %s)%s", rq->peer,
		   rq->mac[0] ? rq->mac : "-", img == c->disk.img ? "" : ", the draft (maintenance)");
out:
	pthread_mutex_unlock(&reg->lock);
	return 0;
}
