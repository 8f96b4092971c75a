/*
 * clients.h - the client registry: who the diskless PCs are, and each
 * one's overlay and LUNs.
 *
 * A client is an initiator name bound to an image, with one disk
 * (disk.h: overlay + LU + version hold + sessions).  Its overlay is kept
 * by the registry's store (store.h; locally STATE/overlays/<escaped
 * initiator name>/) and opened when the daemon starts (verified; one
 * that cannot be trusted is quarantined and reported, never deleted).
 * Every session of a client - iPXE's and the OS's at once - shares the
 * one disk.
 *
 * Which image each client is bound to is kept in the client records
 * (locally STATE/clients.json), so a restart reopens every overlay over
 * the right image.  A client logs in only through its own image's target.
 *
 * Reset discards the overlay in constant time (the store's discard: a
 * rename into STATE/trash/), and the purger (schedule.c) reclaims the
 * space.  The registry reaches the iSCSI server only through its hooks
 * (hooks.h), so it runs without one in unit tests.
 *
 * Locking: one registry mutex; attach/detach run on connection threads,
 * the API ops on API threads.
 */
#ifndef PRISTINE_CLIENTS_H
#define PRISTINE_CLIENTS_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lab/rules.h"
#include "lab/disk.h"
#include "lab/hooks.h"
#include "lab/images.h"
#include "lab/store.h"
#include "lab/wake.h"
#include "lab/xdisk.h"
#include "proto/iscsi.h"
#include "storage/backend.h"
#include "storage/bootrec.h"
#include "storage/overlay.h"

enum client_origin {
	ORIGIN_AUTO,                  /* enrolled at its first login */
	ORIGIN_API,                   /* added with pristinectl client add */
	ORIGIN_CONFIG,                /* a [client] of the configuration file */
};

struct client {
	struct client *next;
	char name[64];                /* its name, "" if it has none */
	enum client_origin origin;
	bool quota_set;               /* quota chosen for it, not the default */
	char initiator[ISCSI_NAME_MAX];
	struct disk disk;             /* its image (disk.img), overlay, LU, sessions */
	/* Its extra disks (lab/xdisk.h): x[lun - 1], NULL where no disk;
	 * their LUs sit in disk.scsi while it is open.  own: its own
	 * attachments (own_config[i]: of the configuration file). */
	struct xdisk *x[XDISK_MAX];
	struct xdisk_decl own[XDISK_MAX];
	bool own_config[XDISK_MAX];
	unsigned nown;
	int64_t last_login;           /* unix time, 0 = never since start */
	/* network boot (boot endpoint) */
	char mac[18];                 /* "aa:bb:cc:dd:ee:ff" or "" */
	char uuid[37];                /* SMBIOS UUID an admin set (matched), or "" */
	char boot_uuid[37];           /* the UUID its last boot request reported (shown only) */
	enum client_policy policy;       /* persistent, reset-on-boot, scheduled */
	int reset_at;                 /* scheduled: minutes after midnight, local time */
	bool reset_due;               /* scheduled reset missed while online: at next boot */
	int64_t last_boot;            /* unix time of its last boot script, 0 = never */
	/* metrics (util/iostats.h): its traffic and boots since the daemon
	 * started, kept across resets; resets under the registry lock */
	struct iostats io;
	struct boot_track boot;
	uint64_t resets;
	/* source addresses it may log in from (ip =, --ip); 0 = from anywhere */
	struct netaddr_rule allow[RULES_MAX_IPS];
	unsigned nallow;
	/* CHAP ([client] chap-* or client add/set --chap-*): "" = none */
	struct iscsi_chap_creds chap;
	/* IPv4 address (host order) of its last login or boot, 0 = none
	 * since start: the network it is woken on (lab/wake.h) */
	uint32_t last_addr4;
	/* Warm boots (lab/bootsets.h): the recording of its boot in
	 * progress, fed by the tap on its boot disk's LU; its own lock */
	struct bootrec rec;
};

struct rbd_cluster;
struct rcache;
struct registry_cluster;

struct registry {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char state[PATH_MAX];
	struct image **images;        /* every image served (append-only) */
	unsigned nimages, images_cap;
	struct client *clients;
	uint64_t default_quota;
	uint64_t store_floor;
	bool enroll_auto;
	struct iscsi_chap_creds discovery_chap;  /* "" user = discovery without CHAP */
	/* network boot */
	char default_image[64];       /* image of PCs enrolled at boot, "" = the only one */
	enum client_policy default_policy;
	int default_reset_at;
	char boot_portal[80];         /* HOST[:PORT] told to PCs, "" = as they reached us */
	unsigned iscsi_port;          /* port of the first portal */
	pthread_t sched;
	bool sched_started;
	int64_t sched_last;
	struct lab_hooks hooks;       /* the iSCSI server, or a test's fakes */
	/* The cluster this gateway is part of (borrowed, the daemon's; NULL
	 * = a single server).  In a cluster a client's disk is closed when
	 * its last session ends (its overlay's lock in Ceph released, so
	 * another gateway can take the PC) and opened again at its next
	 * login here. */
	struct cluster *gateways;
	struct lab_store *store;      /* where the state is kept; NULL = local_store in state */
	struct lab_store local_store;
	pthread_t purger;
	bool purger_started, purge_pending, stopping;
	int64_t started;
	uint64_t resets;              /* client resets since start (metrics) */
	/* The Ceph connection and the shared read cache of RBD versions
	 * (borrowed, the daemon's; NULL = not connected / no cache): what
	 * image add --rbd and import --rbd use (image_rbd.c). */
	struct rbd_cluster *ceph;
	struct rcache *rcache;
	/* A gateway of a cluster (lab/records.h): its records' state, NULL =
	 * a single server. */
	struct registry_cluster *cluster;
	/* Wake-on-LAN (lab/wake.h): the networks and daily wake times
	 * (borrowed, the configuration's; NULL = none), and when the
	 * scheduler last looked for a wake time (unix time) */
	const struct wake_conf *wake;
	int64_t wake_last;
	/* Warm boots (lab/bootsets.h): the daemon's prefetcher (borrowed;
	 * NULL = prefetch off: boot sets are still learned), whether the
	 * configuration has prefetch on, and the bound of a boot set in
	 * chunks (storage/bootset.h; 0 = BOOTSET_MAX_CHUNKS_DEFAULT) */
	struct prefetcher *prefetch;
	bool prefetch_on;
	uint32_t bootset_max_chunks;
};

/*
 * Prepare the state directory (overlays/, trash/, quarantine/), open and
 * verify every overlay found there, start the trash purger.  Returns 0 or
 * -errno with a message logged.
 */
int registry_open(struct registry *reg);
/*
 * Declare a configured client before registry_open: bound to img, with its
 * own quota (0 = none).  Its overlay is opened by registry_open if it
 * exists, or at its first login.  Returns 0 or -errno.
 */
int registry_configure(struct registry *reg, const struct client_decl *cc, struct image *img,
		       uint64_t quota);

/* Close every overlay (flushing it) and stop the purger. */
void registry_close(struct registry *reg);

/* The iSCSI attach/detach hooks (see iscsi.h). */
int registry_attach(void *ctx, struct iscsi_target *t, const char *initiator,
		    struct scsi_target **scsi, void **handle, char *msg, size_t msglen);
void registry_detach(void *ctx, void *handle);
/* The iSCSI io_stats hook: a session of handle's disk counts in its
 * client's and image's counters (a draft's: its image's only). */
void registry_io_stats(void *ctx, void *handle, const char *initiator,
		       struct iscsi_io_stats *out);
/* c's address rules as a new JSON array of canonical texts ("10.0.0.0/24"). */
json_t *client_allow_json(const struct client *c);
/* The iSCSI admit hook: refuses a bound client's name from elsewhere. */
int registry_admit(void *ctx, const char *initiator, const struct sockaddr *peer,
		   char *msg, size_t msglen);
/* The iSCSI chap_secret hook: a configured client's CHAP settings. */
int registry_chap_secret(void *ctx, const char *initiator, const char *target,
			 struct iscsi_chap_creds *cr);

/* The image called name, or NULL.  Lock held (or before registry_open). */
struct image *registry_image(struct registry *reg, const char *name);
/*
 * Serve img (loaded, see images.h) from now on: appended to reg->images
 * and its target to the iSCSI server.  Lock held (or before registry_open
 * with reg->hooks set).  0 or -errno.
 */
int registry_add_image(struct registry *reg, struct image *img);

/* Find a client by name or initiator name (case-insensitive).  Lock held by caller. */
struct client *registry_find(struct registry *reg, const char *id);

/*
 * Add a client (pristinectl client add): initiator (valid iSCSI name, not
 * yet a client), optional name ([a-z0-9][a-z0-9-]*, unique), image (by
 * name; NULL = the only image), quota (bytes; quota_set false = default).
 * Persisted.  Returns 0, or -EINVAL/-EEXIST/-ENOENT with msg.
 */
/* Network-boot and binding settings of a client, as given to the API
 * (NULL = not given / unchanged; "" clears mac, uuid and ip).  ip is a
 * comma-separated list of ADDR or ADDR/PREFIX.  Checked by
 * registry_add/set. */
struct client_boot_fields {
	const char *mac, *uuid, *policy, *reset_at, *ip;
	/* CHAP: chap_user NULL = unchanged, "" = none (the others must then be
	 * absent); else chap_secret is required and mutual_* go together. */
	const char *chap_user, *chap_secret, *mutual_user, *mutual_secret;
};

int registry_add(struct registry *reg, const char *name, const char *initiator, const char *image,
		 const struct client_boot_fields *bf,
		 uint64_t quota, bool quota_set, char *msg, size_t msglen);
/*
 * Remove a client and discard its overlay.  Refused for clients of the
 * configuration file, and while online unless force.  Persisted.
 */
int registry_remove(struct registry *reg, const char *id, bool force, char *msg, size_t msglen);
/*
 * Change a client: name and/or quota and/or image (NULL / has_quota false
 * = unchanged).  A new image discards the overlay (it belongs to the old
 * one): refused while online unless force.  Clients of the configuration
 * file are changed in the file.  Persisted.
 */
int registry_set(struct registry *reg, const char *id, const char *name, const char *image,
		 const struct client_boot_fields *bf,
		 bool has_quota, uint64_t quota, bool force, char *msg, size_t msglen);

/*
 * Reset a client: discard its overlay.  Refused with -EBUSY while it has
 * sessions unless force, which ends them first.  -ENOENT if unknown.
 * msg gets a one-line explanation on error.
 */
int registry_reset(struct registry *reg, const char *id, bool force, char *msg, size_t msglen);

/* The scheduled-reset and purger threads (schedule.c), started by
 * registry_open; arg is the registry. */
void *registry_sched_main(void *arg);
void *registry_purger_main(void *arg);
/*
 * Wake PCs (lab_wake.c): ids (n of them) or, with all, every PC (of
 * image when not NULL).  PCs online or without a MAC are skipped with a
 * reason; *out gets {"woken":[{client,mac,via}], "skipped":[{client,why}]}.
 * Takes the lock, sends without it.  0, or -ENOENT (an unknown id or
 * image) / -ENOMEM with msg.
 */
int registry_wake(struct registry *reg, const char *const *ids, unsigned n, bool all,
		  const char *image, json_t **out, char *msg, size_t msglen);
/* The daily wake: wake the offline PCs whose wake-at came in (last, now]
 * (lab_wake.c).  Called by the scheduler without the lock. */
void registry_wake_daily(struct registry *reg, int64_t last, int64_t now);
/* c's IPv4 address for choosing its network (lab/wake.h): its last login
 * or boot address when a [network] holds it, else the first IPv4 of its
 * ip = rules, else its last address, else 0.  Lock held. */
uint32_t client_addr4(const struct registry *reg, const struct client *c);

/* The image whose draft c maintains, if any.  Lock held. */
struct image *maintained_image(struct registry *reg, const struct client *c);

/* ---- for the image life cycle (image_draft.c) and boot/boot_resolve.c; lock held ---- */
/*
 * Make d idle for a change of its overlay: refuse while it has sessions
 * unless force, which ends them (through reg->hooks) and waits.  On
 * success d->resetting is set (no session attaches) and the caller must
 * clear it.  The lock is dropped while sessions end.  0, or -EBUSY with
 * msg, which says what lifts the refusal: "use --force to end them and
 * <what>" only when sessions are the cause (a draft's: "the maintenance
 * client ... is online on the draft"); another change in progress,
 * or sessions that would not end, say try again.
 */
int disk_quiesce(struct registry *reg, struct disk *d, bool force, const char *what,
		 char *msg, size_t msglen);
/* A new client record (not yet listed): initiator on img's current
 * version with the registry's defaults.  NULL if out of memory or its
 * overlay path does not fit (logged). */
struct client *client_new(struct registry *reg, const char *initiator, struct image *img);
/* Free a client made by client_new whose disks are closed (its recorder too). */
void client_free(struct client *c);
/* Open d with the registry's settings (see disk_open). */
int registry_disk_open(struct registry *reg, struct disk *d);
/* The registry's store: reg->store, or a local one over reg->state made
 * on first use.  Lock held (or before registry_open). */
struct lab_store *registry_store(struct registry *reg);
/* Reset c (see registry_reset); why is for the log ("admin", "boot"...). */
int client_reset_locked(struct registry *reg, struct client *c, bool force, const char *why,
			char *msg, size_t msglen);
/* Save STATE/clients.json (atomic). */
int bindings_save(struct registry *reg);
/*
 * A gateway of a cluster (lab/records.c): bring the clients in line with
 * bindings, the client records another gateway saved - clients added,
 * removed (their sessions here end: the removal was forced) and changed
 * (settings, image and version: a disk open here with no session is
 * closed, so its next login opens the right one; one online here keeps
 * its disk).  Lock held (dropped while sessions end).  0 or -ENOMEM.
 */
int registry_clients_refresh(struct registry *reg, json_t *bindings);
/* Rebuild a draft recorded in image.json (at start). */
int draft_restore(struct registry *reg, struct image *img, const char *layer, unsigned base,
		  const char *initiator);
/* The same for a draft another gateway made: recorded, not opened (its
 * maintenance client's login opens it).  0 or -ENOMEM. */
int draft_adopt(struct registry *reg, struct image *img, const char *layer, unsigned base,
		const char *initiator);

#endif
