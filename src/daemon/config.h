/*
 * config.h - the configuration file of pristined (`pristined -c FILE`):
 * an INI file with [server], [defaults], [image NAME], [client NAME] and
 * [network NAME] sections, read with libinih and turned into one fully validated
 * struct config.  The file format is documented in pristine.conf(5).
 *
 * Nothing here touches the images, the state directory or the network:
 * a loaded config only promises that every value is well-formed and that
 * the sections agree with each other (unique names, initiators and MACs,
 * images that exist, CHAP keys that come in pairs...).  Whether an image
 * path exists or a portal can be bound is for the daemon to find out.
 *
 * Errors: every problem found is reported as "FILE:LINE: message", one
 * message per line, all of them (up to CFG_MAX_ERRORS), so that an admin
 * can fix the whole file in one go.  LINE is the line of the offending
 * key or section header; for a key that refers to something else (an
 * image name, a second use of an initiator) it is the line of the key
 * that refers.  Secrets are never quoted in messages.
 */
#ifndef PRISTINE_CONFIG_H
#define PRISTINE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lab/rules.h"
#include "lab/wake.h"
#include "proto/iscsi.h"
#include "util/netaddr.h"

#include "util/log.h"

#define CFG_MAX_LISTEN 8       /* listen = lines in [server] */
#define CFG_MAX_IMAGES 256
#define CFG_MAX_CLIENTS 4096
#define CFG_MAX_NETWORKS 64    /* [network NAME] sections */
#define CFG_MAX_ERRORS 20      /* messages kept; more are only counted */
#define CFG_MAX_FILE (1u << 20) /* a larger file is refused */
#define CFG_NAME_MAX 64        /* image/client names: [a-z0-9][a-z0-9-]{0,62} */
#define CFG_TARGET_MAX 224     /* = ISCSI_NAME_MAX */
#define CFG_DEFAULT_STATE "/var/lib/pristine"
#define CFG_DEFAULT_LISTEN "*:3260"
#define CFG_TARGET_PREFIX "iqn.2026-11.org.pristine:"
#define CFG_RBD_MAX 400        /* rbd = POOL/IMAGE@SNAP, see storage/rbd.h */
#define CFG_CEPH_ID_MAX 64     /* ceph-id = NAME (client.NAME): RBD_ID_MAX + 1 */
#define CFG_DEFAULT_CEPH_ID "admin"
#define CFG_CLUSTER_NAME_MAX 32          /* cluster-name: [a-z0-9][a-z0-9-]{0,30} */
#define CFG_RBD_POOL_MAX 128             /* RBD_POOL_MAX */
#define CFG_DEFAULT_CLUSTER_POOL "rbd"
#define CFG_DEFAULT_CLUSTER_DEAD_AFTER 5
/* [server] console-session-timeout: idle seconds before a console login ends */
#define CFG_DEFAULT_CONSOLE_SESSION_TIMEOUT 1800
/* [server] rbd-cache: the shared read cache of versions on RBD */
#define CFG_DEFAULT_RBD_CACHE (512ull << 20)


/* [image NAME]: exactly one of path and rbd is set. */
struct cfg_image {
	char name[CFG_NAME_MAX];
	char path[PATH_MAX];             /* absolute; not checked for existence; "" = on RBD */
	char rbd[CFG_RBD_MAX];           /* POOL/IMAGE[@SNAP] (storage/rbd.h), "" = a file */
	char target[CFG_TARGET_MAX];     /* valid iSCSI name, unique among images */
	uint32_t block_size;             /* 512 or 4096 */
	int wake_at;                     /* wake-at: minutes after midnight, -1 = none */
	/* disks = : the extra disks every PC of this image gets (its group,
	 * lab/xdisk.h), LUN 1.. in this order; each names another [image] */
	struct xdisk_decl disks[XDISK_MAX];
	unsigned ndisks;
	/* disk-policy, disk-quota: how this image is given as an extra disk
	 * when an attachment does not say (default overlay, no quota) */
	enum xdisk_policy disk_policy;
	uint64_t disk_quota;
	int line;                        /* line of its [image NAME] header */
};

/*
 * A client with every default of [defaults] already applied: image,
 * policy, reset_at_min and quota are the values in force for it.
 */

struct config {
	/* how it was made: false = config_load (-c FILE); true = built from
	 * pristined's quick-mode options (options.h), with exactly one image,
	 * no clients, and read_only possible */
	bool quick;
	bool read_only;                  /* quick --read-only: no overlays, no API */
	/* [server] */
	char listen[CFG_MAX_LISTEN][80]; /* portal specs as listen.h takes them */
	unsigned nlisten;                /* >= 1 */
	char state[PATH_MAX];            /* absolute */
	char socket[PATH_MAX];           /* absolute, fits a sockaddr_un */
	char boot_listen[80];            /* HTTP boot endpoint ADDR:PORT, "" = off */
	char boot_portal[80];            /* iSCSI portal told to clients, "" = automatic */
	enum log_level log_level;
	unsigned nop_interval;           /* seconds, 0 = no pings */
	uint64_t store_floor;            /* bytes */
	char user[33];                   /* run as this user after start (privs.h), "" = stay */
	/* CHAP every discovery session must pass ("" user = none) */
	struct iscsi_chap_creds discovery_chap;
	/* limits (see pristine.conf(5)) */
	unsigned max_conns;              /* iSCSI connections at once */
	unsigned max_logins_per_addr;    /* connections still logging in, per address */
	unsigned max_sessions_per_initiator;
	unsigned login_timeout;          /* seconds */
	unsigned send_timeout;           /* seconds a peer may read nothing */
	bool zero_copy;                  /* splice large Data-In from the page cache */
	/* Ceph, for images on RBD: the cluster's ceph.conf (absolute, "" =
	 * none; required when an image has rbd =) and the cephx identity */
	char ceph_conf[PATH_MAX];
	char ceph_id[CFG_CEPH_ID_MAX];   /* without "client."; default "admin" */
	uint64_t rbd_cache;              /* bytes of the shared read cache of versions on
					  * RBD (storage/cache.h), 0 = off */
	unsigned ceph_op_timeout;        /* seconds an OSD request may take before the
					  * PC gets an error, 0 = wait (rbd.h) */
	/* A gateway of a cluster (docs/cluster.md): its name ("" = a single
	 * server, no cluster), the portal PCs are sent to (its floating
	 * service address HOST:PORT; "" = its first listen), the pool of the
	 * cluster's records and gateway table, and the seconds without a
	 * heartbeat after which a gateway counts as dead. */
	char cluster_name[CFG_CLUSTER_NAME_MAX];
	char cluster_address[80];
	char cluster_pool[CFG_RBD_POOL_MAX];
	unsigned cluster_dead_after;
	/* the web console (src/console/, pristine.conf(5)): HTTPS on
	 * console_listen, "" = off; cert and key PEM files, both "" = a
	 * self-signed pair made at first start in STATE/console/ */
	char console_listen[80];
	char console_cert[PATH_MAX];
	char console_key[PATH_MAX];
	unsigned console_session_timeout;  /* seconds a console login may stay idle */
	/* Prometheus metrics (admin/metrics.h): plain HTTP GET /metrics on
	 * metrics_listen, "" = off */
	char metrics_listen[80];
	/* Warm boots (issue 18, lab/bootsets.h): learn each version's boot
	 * set and prefetch it (prefetch = yes|no, default yes; quick mode
	 * --no-prefetch), at most boot_set_max bytes of it per version
	 * (boot-set-max = SIZE, default 2G: BOOTSET_MAX_CHUNKS_DEFAULT
	 * chunks; at most 64G) */
	bool prefetch;
	uint64_t boot_set_max;
	/* [defaults] */
	bool enroll_auto;                /* unknown initiators are enrolled */
	char default_image[CFG_NAME_MAX];/* image of auto-enrolled clients, "" = none */
	enum client_policy default_policy;
	int default_reset_at;            /* minutes after midnight, -1 = none */
	uint64_t default_quota;          /* bytes, 0 = none */
	/* sections, in file order; owned, freed by config_free */
	struct cfg_image *images;
	unsigned nimages;                /* >= 1 */
	struct client_decl *clients;
	unsigned nclients;
	/* [network NAME] sections, the images' wake-at and [defaults]
	 * wake-at (default_at, -1 = none), for Wake-on-LAN (lab/wake.h) */
	struct wake_conf wake;
};

/*
 * Read and validate the configuration file at path into *out.
 *
 * On success returns 0: *out is filled and owns its arrays (release them
 * with config_free).  On failure *out holds nothing that needs freeing
 * (it is zeroed) and err receives a message:
 *   -EINVAL  the file is invalid: err holds every "FILE:LINE: message",
 *            newline-separated (no trailing newline), cut to errlen;
 *   -EFBIG   the file is larger than CFG_MAX_FILE;
 *   -ENOMEM  out of memory;
 *   -errno   the file cannot be opened or read.
 * A file that holds CHAP secrets must not be readable by group or others
 * (checked with fstat on the open file): -EINVAL, "chmod 600".
 *
 * Not thread-safe: it sets libinih's global options (line length...) for the
 * duration of the call.  err may be NULL only if errlen is 0.
 */
int config_load(const char *path, struct config *out, char *err, size_t errlen);

/*
 * Parse a configuration held in memory: text[0..len) (need not be
 * NUL-terminated; a NUL byte inside is an error).  fname is only used in
 * messages; mode is the file's permission bits, for the CHAP secrets
 * check (pass 0600 when there is no file).  Same results and ownership
 * as config_load, except that it never returns -errno from I/O.
 */
int config_parse(const char *fname, const char *text, size_t len, unsigned mode,
		 struct config *out, char *err, size_t errlen);

/* Fill *c with the values every configuration starts from (the defaults
 * of pristine.conf(5)); no list, no image, nothing to free. */
void config_defaults(struct config *c);
/* Whether s may name a gateway (cluster-name): [a-z0-9][a-z0-9-]*, at
 * most CFG_CLUSTER_NAME_MAX - 1 bytes. */
bool cfg_cluster_name_valid(const char *s);

/*
 * Fill what the file or the command line left out of the server's
 * settings: the portal *:3260, the state directory /var/lib/pristine,
 * the admin socket STATE/pristined.sock.  0, or -1 with *key ("state" or
 * "socket": what to change) and why, when the socket path cannot be.
 */
int config_fill_server(struct config *c, const char **key, char *why, size_t whylen);

/* Release what config_load/config_parse allocated and zero *c.  NULL and
 * an already freed or zeroed config are fine. */
void config_free(struct config *c);


/* The image named name, or NULL.  The pointer is into c->images. */
const struct cfg_image *cfg_image_find(const struct config *c, const char *name);

/* The client whose name is id, or whose initiator is id (compared without
 * regard to case), or NULL.  The pointer is into c->clients. */
const struct client_decl *cfg_client_find(const struct config *c, const char *id);

/* boot-set-max = SIZE (and --boot-set-max): a size (parse_size) rounded
 * down to a multiple of 64K, 64K..64G.  0 and *out, or -EINVAL/-ERANGE
 * with why. */
int config_parse_boot_set_max(const char *s, uint64_t *out, char *why, size_t whylen);

#endif
