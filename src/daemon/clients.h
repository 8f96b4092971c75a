/*
 * clients.h - the client registry: who the diskless PCs are, and each
 * one's overlay and LUNs.
 *
 * A client is an initiator name bound to an image.  Its overlay lives in
 * STATE/overlays/<escaped initiator name>/ and is opened when the daemon
 * starts (verified; an overlay that cannot be trusted is moved to
 * STATE/quarantine/ and reported, never deleted).  Every session of a
 * client - iPXE's and the OS's at once - shares one overlay and one LU.
 *
 * Which image each client is bound to is kept in STATE/clients.json, so
 * a restart reopens every overlay over the right image.  A client logs in
 * only through its own image's target.
 *
 * Reset discards the overlay in constant time (a rename into
 * STATE/trash/), and a background thread reclaims the space.
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

#include "proto/iscsi.h"
#include "storage/backend.h"
#include "storage/overlay.h"

struct image {
	char name[64];
	char target[ISCSI_NAME_MAX];  /* the target name it is served under */
	char path[PATH_MAX];
	struct backend *be;           /* opened read-only */
	uint32_t block_size;
	char base_id[128];            /* what overlays record as their base */
};

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
	char dir[PATH_MAX];
	struct image *img;
	struct overlay *ov;           /* open while the client is enrolled */
	struct scsi_target *scsi;     /* LUN 0 over the overlay */
	unsigned sessions;
	bool resetting;
	uint64_t quota;
	int64_t last_login;           /* unix time, 0 = never since start */
};

struct registry {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char state[PATH_MAX];
	struct image **images;        /* every image served; borrowed */
	unsigned nimages;
	struct client *clients;
	uint64_t default_quota;
	uint64_t store_floor;
	bool enroll_auto;
	struct iscsi_server *srv;
	pthread_t purger;
	bool purger_started, purge_pending, stopping;
	int64_t started;
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
int registry_configure(struct registry *reg, const char *name, const char *initiator,
		       struct image *img, uint64_t quota);

/* Close every overlay (flushing it) and stop the purger. */
void registry_close(struct registry *reg);

/* The iSCSI attach/detach hooks (see iscsi.h). */
int registry_attach(void *ctx, struct iscsi_target *t, const char *initiator,
		    struct scsi_target **scsi, void **handle, char *msg, size_t msglen);
void registry_detach(void *ctx, void *handle);

/* The image called name, or NULL. */
struct image *registry_image(struct registry *reg, const char *name);

/* Find a client by name or initiator name (case-insensitive).  Lock held by caller. */
struct client *registry_find(struct registry *reg, const char *id);

/*
 * Add a client (pristinectl client add): initiator (valid iSCSI name, not
 * yet a client), optional name ([a-z0-9][a-z0-9-]*, unique), image (by
 * name; NULL = the only image), quota (bytes; quota_set false = default).
 * Persisted.  Returns 0, or -EINVAL/-EEXIST/-ENOENT with msg.
 */
int registry_add(struct registry *reg, const char *name, const char *initiator, const char *image,
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
		 bool has_quota, uint64_t quota, bool force, char *msg, size_t msglen);
/* Name rule shared with the configuration file. */
bool client_name_valid(const char *name);

/*
 * Reset a client: discard its overlay.  Refused with -EBUSY while it has
 * sessions unless force, which ends them first.  -ENOENT if unknown.
 * msg gets a one-line explanation on error.
 */
int registry_reset(struct registry *reg, const char *id, bool force, char *msg, size_t msglen);

#endif
