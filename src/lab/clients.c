/*
 * clients.c - the client registry (see clients.h).
 */
#include "lab/clients.h"
#include "lab/bootsets.h"
#include "lab/records.h"
#include "lab/rules.h"
#include "lab/statedir.h"
#include "cluster/cluster.h"
#include "util/atomicfile.h"
#include "util/events.h"
#include "util/log.h"
#include "util/parse.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RESET_WAIT_S 15

/* Where d's image keeps its disks: its own store, else the registry's. */
static struct lab_store *disk_store(struct registry *reg, const struct disk *d)
{
	return d->img && d->img->store ? d->img->store : registry_store(reg);
}

/* Move c's untrusted overlay aside; never delete it. */
static void quarantine(struct registry *reg, struct client *c, const char *why)
{
	struct lab_store *st = disk_store(reg, &c->disk);
	char to[PATH_MAX];
	int rc = st->ops->quarantine(st, c->disk.dir, to, sizeof(to));

	if (rc == 0)
		log_err("overlay %s cannot be trusted (%s): kept aside as %s; the client starts "
			"from a fresh overlay", c->disk.dir, why, to);
	else
		log_err("overlay %s cannot be trusted (%s) and could not be moved aside: %s",
			c->disk.dir, why, strerror(-rc));
}

struct lab_store *registry_store(struct registry *reg)
{
	if (!reg->store) {
		/* a state path that does not fit was refused with the options */
		store_local_init(&reg->local_store, reg->state);
		reg->store = &reg->local_store;
	}
	return reg->store;
}

int registry_disk_open(struct registry *reg, struct disk *d)
{
	d->pf = reg->prefetch;
	return disk_open(d, disk_store(reg, d), reg->store_floor);
}

void client_free(struct client *c)
{
	if (!c)
		return;
	bootrec_destroy(&c->rec);
	free(c);
}

struct client *client_new(struct registry *reg, const char *initiator, struct image *img)
{
	struct client *c = calloc(1, sizeof(*c));
	char dir[PATH_MAX];

	if (!c)
		return NULL;
	bootrec_init(&c->rec);
	snprintf(c->initiator, sizeof(c->initiator), "%s", initiator);
	struct lab_store *st = img->store ? img->store : registry_store(reg);

	if (st->ops->overlay_where(st, initiator, img->current, dir, sizeof(dir)) ||
	    disk_init(&c->disk, initiator, img, img->current, dir, reg->default_quota)) {
		log_err("state directory path too long for client %s", initiator);
		client_free(c);
		return NULL;
	}
	boot_track_init(&c->boot);
	c->disk.rec = &c->rec;   /* its boot disk's reads make its boot set */
	c->policy = reg->default_policy;
	c->reset_at = reg->default_reset_at;
	if (c->policy == POLICY_SCHEDULED && c->reset_at < 0)
		c->policy = POLICY_PERSISTENT;
	return c;
}

int registry_add_image(struct registry *reg, struct image *img)
{
	int rc;

	if (reg->nimages == reg->images_cap) {
		unsigned cap = reg->images_cap ? reg->images_cap * 2 : 8;
		struct image **n = realloc(reg->images, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		reg->images = n;
		reg->images_cap = cap;
	}
	snprintf(img->tgt.name, sizeof(img->tgt.name), "%s", img->target);
	img->tgt.tpgt = 1;
	img->tgt.priv = img;
	rc = reg->hooks.add_target ? reg->hooks.add_target(reg->hooks.ctx, &img->tgt) : 0;
	if (rc)
		return rc;
	reg->images[reg->nimages++] = img;
	return 0;
}

struct image *registry_image(struct registry *reg, const char *name)
{
	for (unsigned i = 0; i < reg->nimages; i++)
		if (strcmp(reg->images[i]->name, name) == 0)
			return reg->images[i];
	return NULL;
}

/* The client's address rules as a JSON array of canonical texts. */
json_t *client_allow_json(const struct client *c)
{
	json_t *a = json_array();
	char t[NETADDR_TEXT_MAX];

	for (unsigned i = 0; i < c->nallow; i++) {
		netaddr_format(&c->allow[i], t, sizeof(t));
		json_array_append_new(a, json_string(t));
	}
	return a;
}

/*
 * Write STATE/clients.json: every client and the image it is bound to.
 * Atomic: a temporary file, fsync, rename, fsync of the directory.  Lock
 * held.  Returns 0 or -errno (logged).
 */
int bindings_save(struct registry *reg)
{
	json_t *arr = json_array(), *root;
	char *text;
	int rc;

	static const char *const origins[] = { "auto", "api", "config" };

	for (struct client *c = reg->clients; c; c = c->next) {
		json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "initiator", c->initiator,
				      "image", c->disk.img->name, "name", c->name, "origin", origins[c->origin]);
		if (c->quota_set)
			json_object_set_new(e, "quota_bytes", json_integer((json_int_t)c->disk.quota));
		json_object_set_new(e, "version", json_integer((json_int_t)c->disk.version));
		if (c->mac[0])
			json_object_set_new(e, "mac", json_string(c->mac));
		if (c->uuid[0])
			json_object_set_new(e, "uuid", json_string(c->uuid));
		json_object_set_new(e, "policy", json_string(rules_policy_name(c->policy)));
		if (c->reset_at >= 0)
			json_object_set_new(e, "reset_at", json_integer(c->reset_at));
		if (c->reset_due)
			json_object_set_new(e, "reset_due", json_true());
		if (c->nallow && c->origin != ORIGIN_CONFIG)
			json_object_set_new(e, "ip", client_allow_json(c));
		if (xdisk_any(c))
			json_object_set_new(e, "disks", xdisk_records_json(c));
		if (c->chap.user[0] && c->origin != ORIGIN_CONFIG)   /* the file is 0600 */
			json_object_set_new(e, "chap", json_pack("{s:s, s:s, s:s, s:s}",
				"user", c->chap.user, "secret", c->chap.secret,
				"mutual_user", c->chap.muser, "mutual_secret", c->chap.msecret));
		json_array_append_new(arr, e);
	}
	root = json_pack("{s:i, s:o}", "version", 1, "clients", arr);
	text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	rc = registry_store(reg)->ops->clients_save(registry_store(reg), text);
	if (rc)
		log_err("cannot save the client records: %s", strerror(-rc));
	else
		registry_records_saved(reg);   /* a gateway of a cluster: tell the others */
	free(text);
	return rc;
}

/* The image a client found on disk is bound to, from clients.json.  With a
 * single image and no record (an older state directory), that image. */
static struct image *bound_image(struct registry *reg, json_t *bindings, const char *iqn)
{
	size_t i;
	json_t *e;

	json_array_foreach(json_object_get(bindings, "clients"), i, e) {
		const char *ini = json_string_value(json_object_get(e, "initiator"));
		const char *img = json_string_value(json_object_get(e, "image"));
		if (ini && img && strcasecmp(ini, iqn) == 0)
			return registry_image(reg, img);
	}
	return reg->nimages == 1 ? reg->images[0] : NULL;
}

/* Address rules of a clients.json record.  A rule that does not parse
 * (a hand-edited file) must not open the client to everyone: it is
 * logged and the client is then bound to no address at all (refused
 * until an admin sets --ip again). */
static void restore_allow(struct client *c, json_t *ips)
{
	size_t i;
	json_t *v;

	c->nallow = 0;
	if (!json_is_array(ips))
		return;
	json_array_foreach(ips, i, v) {
		const char *t = json_string_value(v);
		char why[80];
		if (c->nallow >= RULES_MAX_IPS || !t ||
		    netaddr_parse(t, &c->allow[c->nallow], why, sizeof(why))) {
			log_err("clients.json: client %s has an unusable address rule: it is refused "
				"until its addresses are set again (pristinectl client set --ip)",
				c->initiator);
			memset(&c->allow[0], 0, sizeof(c->allow[0]));
			c->allow[0].family = AF_UNSPEC;
			c->nallow = 1;
			return;
		}
		c->nallow++;
	}
}

/* CHAP of a clients.json record.  One that does not check out (a hand-
 * edited file) must not let the client in without CHAP: its login is
 * then refused until an admin sets CHAP again. */
static void restore_chap(struct client *c, json_t *o)
{
	struct client_boot_fields bf = { 0 };
	char msg[160];

	if (!o)
		return;
	bf.chap_user = json_string_value(json_object_get(o, "user"));
	bf.chap_secret = json_string_value(json_object_get(o, "secret"));
	bf.mutual_user = json_string_value(json_object_get(o, "mutual_user"));
	bf.mutual_secret = json_string_value(json_object_get(o, "mutual_secret"));
	if (bf.mutual_user && !bf.mutual_user[0] && bf.mutual_secret && !bf.mutual_secret[0])
		bf.mutual_user = bf.mutual_secret = NULL;
	if (!bf.chap_user || !bf.chap_user[0] ||
	    rules_chap_creds(bf.chap_user, bf.chap_secret, bf.mutual_user, bf.mutual_secret, &c->chap,
			     msg, sizeof(msg))) {
		log_err("clients.json: the CHAP settings of %s are unusable; it cannot log in until "
			"both its CHAP and its addresses are set again (pristinectl client set ID "
			"--chap-user ... --ip ...)", c->initiator);
		memset(&c->chap, 0, sizeof(c->chap));
		/* bound to no address at all: refused, never open */
		memset(&c->allow[0], 0, sizeof(c->allow[0]));
		c->allow[0].family = AF_UNSPEC;
		c->nallow = 1;
	}
}

/* Network-boot fields of a clients.json record (checked; bad ones dropped). */
static void restore_boot_fields(struct client *c, json_t *e)
{
	const char *mac = json_string_value(json_object_get(e, "mac"));
	const char *uuid = json_string_value(json_object_get(e, "uuid"));
	const char *pol = json_string_value(json_object_get(e, "policy"));
	json_t *at = json_object_get(e, "reset_at");
	char err[160];
	enum client_policy p;

	if (mac && rules_mac(mac, c->mac, err, sizeof(err)))
		log_warn("clients.json: client %s: %s; ignored", c->initiator, err);
	if (uuid && rules_uuid(uuid, c->uuid, err, sizeof(err)))
		log_warn("clients.json: client %s: %s; ignored", c->initiator, err);
	if (pol && rules_parse_policy(pol, &p) == 0)
		c->policy = p;
	if (json_is_integer(at) && json_integer_value(at) >= 0 && json_integer_value(at) < 24 * 60)
		c->reset_at = (int)json_integer_value(at);
	if (c->policy == POLICY_SCHEDULED && c->reset_at < 0)
		c->policy = POLICY_PERSISTENT;
	c->reset_due = json_is_true(json_object_get(e, "reset_due"));
	restore_allow(c, json_object_get(e, "ip"));
	restore_chap(c, json_object_get(e, "chap"));
}

/* The image version clients.json records for c (if on its image now). */
static void bound_version(json_t *bindings, struct client *c)
{
	size_t i;
	json_t *e;

	json_array_foreach(json_object_get(bindings, "clients"), i, e) {
		const char *ini = json_string_value(json_object_get(e, "initiator"));
		const char *img = json_string_value(json_object_get(e, "image"));
		json_int_t v = json_integer_value(json_object_get(e, "version"));
		if (ini && img && strcasecmp(ini, c->initiator) == 0 && strcmp(img, c->disk.img->name) == 0 &&
		    v >= 1 && v <= (json_int_t)c->disk.img->nversions)
			c->disk.version = (unsigned)v;
		if (ini && strcasecmp(ini, c->initiator) == 0 && c->origin == ORIGIN_CONFIG)
			c->reset_due = json_is_true(json_object_get(e, "reset_due"));
	}
}

/*
 * Recreate the clients added with the API (or enrolled automatically)
 * that clients.json records, unless the configuration declared them.
 * Records naming an image not served now are kept out (with a warning).
 */
static void restore_clients(struct registry *reg, json_t *bindings)
{
	size_t i;
	json_t *e;

	json_array_foreach(json_object_get(bindings, "clients"), i, e) {
		const char *ini = json_string_value(json_object_get(e, "initiator"));
		const char *img = json_string_value(json_object_get(e, "image"));
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *origin = json_string_value(json_object_get(e, "origin"));
		json_t *q = json_object_get(e, "quota_bytes");
		struct image *im;
		struct client *c;

		if (!ini || !img || !iscsi_name_valid(ini) || registry_find(reg, ini))
			continue;
		if (origin && strcmp(origin, "config") == 0)
			continue;  /* gone from the file: the file decides */
		im = registry_image(reg, img);
		if (!im) {
			log_warn("client %s: image %s is not served now; client left out", ini, img);
			continue;
		}
		c = client_new(reg, ini, im);
		if (!c)
			return;
		if (name && parse_name_ok(name) && !registry_find(reg, name))
			snprintf(c->name, sizeof(c->name), "%s", name);
		c->origin = origin && strcmp(origin, "api") == 0 ? ORIGIN_API : ORIGIN_AUTO;
		restore_boot_fields(c, e);
		if (json_is_integer(q) && json_integer_value(q) >= 0) {
			c->disk.quota = (uint64_t)json_integer_value(q);
			c->quota_set = true;
		}
		c->next = reg->clients;
		reg->clients = c;
	}
}

struct client *registry_find(struct registry *reg, const char *id)
{
	for (struct client *c = reg->clients; c; c = c->next)
		if (strcasecmp(c->initiator, id) == 0 || (c->name[0] && strcmp(c->name, id) == 0))
			return c;
	return NULL;
}

int registry_configure(struct registry *reg, const struct client_decl *cc, struct image *img,
		       uint64_t quota)
{
	struct client *c = client_new(reg, cc->initiator, img);
	const char *name = cc->name;

	if (!c)
		return -ENOMEM;
	snprintf(c->mac, sizeof(c->mac), "%s", cc->mac);
	c->policy = cc->policy;
	c->reset_at = cc->reset_at_min;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->origin = ORIGIN_CONFIG;
	c->disk.quota = quota;
	c->quota_set = true;
	memcpy(c->allow, cc->ip_rules, sizeof(c->allow));
	c->nallow = cc->nips;
	snprintf(c->chap.user, sizeof(c->chap.user), "%s", cc->chap_user);
	snprintf(c->chap.secret, sizeof(c->chap.secret), "%s", cc->chap_secret);
	snprintf(c->chap.muser, sizeof(c->chap.muser), "%s", cc->mutual_user);
	snprintf(c->chap.msecret, sizeof(c->chap.msecret), "%s", cc->mutual_secret);
	xdisk_own_configure(c, cc->disks, cc->ndisks);
	c->next = reg->clients;
	reg->clients = c;
	return 0;
}

/* An import a crash interrupted leaves STATE/imported/NAME.raw.tmp. */
static void sweep_imports(struct registry *reg)
{
	char dir[PATH_MAX], from[PATH_MAX], label[300];
	struct dirent *de;
	DIR *d;

	if (statedir_sub(dir, sizeof(dir), reg->state, SD_IMPORTED))
		return;
	d = opendir(dir);
	while (d && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".tmp") != 0)
			continue;
		if (snprintf(from, sizeof(from), "%s/%s", dir, de->d_name) >= (int)sizeof(from))
			continue;
		snprintf(label, sizeof(label), "import-%s", de->d_name);
		if (registry_store(reg)->ops->discard(registry_store(reg), from, label) == 0)
			log_notice("%s was left by an interrupted import: moved to the trash", from);
	}
	if (d)
		closedir(d);
}

/* The record of initiator in bindings (borrowed), or NULL. */
static json_t *client_record(json_t *bindings, const char *initiator)
{
	size_t i;
	json_t *e;

	json_array_foreach(json_object_get(bindings, "clients"), i, e) {
		const char *ini = json_string_value(json_object_get(e, "initiator"));
		if (ini && strcasecmp(ini, initiator) == 0)
			return e;
	}
	return NULL;
}

/* What registry_open's walk over the kept overlays needs. */
struct overlay_walk {
	struct registry *reg;
	json_t *bindings;
	bool nomem;
};

/* One kept overlay (initiator NULL: not one of ours): its client is
 * opened, made from the records if the configuration did not declare it. */
static void open_kept_overlay(void *arg, const char *iqn, const char *name)
{
	struct overlay_walk *w = arg;
	struct registry *reg = w->reg;
	struct client *c;
	struct image *img;
	int rc;

	if (!iqn) {
		log_warn("overlay %s: not an overlay of ours, ignored", name);
		return;
	}
	if (w->nomem)
		return;
	c = registry_find(reg, iqn);
	if (!c) {
		img = bound_image(reg, w->bindings, iqn);
		if (!img) {
			log_warn("overlay of %s: bound to an image that is not served now; left untouched",
				 iqn);
			return;
		}
		c = client_new(reg, iqn, img);
		if (!c) {
			w->nomem = true;
			return;
		}
		bound_version(w->bindings, c);
		c->next = reg->clients;
		reg->clients = c;
	}
	rc = registry_disk_open(reg, &c->disk);
	if (rc == -EBADMSG || rc == -ESTALE) {
		quarantine(reg, c, rc == -EBADMSG ? "metadata torn or corrupt" : "made over another image");
		rc = registry_disk_open(reg, &c->disk);   /* a fresh, empty overlay */
	}
	if (rc) {
		/* Listed, offline; its next login tries again. */
		log_err("client %s: cannot open its overlay: %s", iqn, strerror(-rc));
		return;
	}
	log_info("client %s: overlay verified, %llu bytes", iqn,
		 (unsigned long long)disk_used_bytes(&c->disk));
}

int registry_open(struct registry *reg)
{
	struct lab_store *st = registry_store(reg);
	struct overlay_walk w = { .reg = reg };
	int rc;

	pthread_mutex_init(&reg->lock, NULL);
	pthread_cond_init(&reg->cond, NULL);
	reg->started = (int64_t)time(NULL);
	if ((rc = st->ops->prepare(st)))
		return rc;
	rc = st->ops->clients_load(st, &w.bindings);
	if (rc && rc != -ENOENT)
		log_err("the client records cannot be read (%s): client bindings ignored", strerror(-rc));
	restore_clients(reg, w.bindings);
	for (struct client *c = reg->clients; c; c = c->next)
		bound_version(w.bindings, c);
	st->ops->overlays_list(st, open_kept_overlay, &w);
	/* extra disks: the LUNs and versions recorded, then the attachments
	 * in force (opened at each PC's first login) */
	for (struct client *c = reg->clients; c; c = c->next) {
		xdisk_restore(reg, c, json_object_get(client_record(w.bindings, c->initiator), "disks"));
		xdisk_sync(reg, c);
	}
	json_decref(w.bindings);
	bindings_save(reg);
	reg->purge_pending = true;   /* whatever a crash left in trash/ */
	sweep_imports(reg);
	image_rbd_sweep(reg);
	if (pthread_create(&reg->purger, NULL, registry_purger_main, reg) == 0)
		reg->purger_started = true;
	if (pthread_create(&reg->sched, NULL, registry_sched_main, reg) == 0)
		reg->sched_started = true;
	return registry_cluster_start(reg);   /* a gateway of a cluster: follow the others */
}

void registry_close(struct registry *reg)
{
	registry_cluster_stop(reg);   /* no refresh from here on */
	pthread_mutex_lock(&reg->lock);
	reg->stopping = true;
	pthread_cond_broadcast(&reg->cond);
	pthread_mutex_unlock(&reg->lock);
	if (reg->purger_started)
		pthread_join(reg->purger, NULL);
	if (reg->sched_started)
		pthread_join(reg->sched, NULL);
	while (reg->clients) {
		struct client *c = reg->clients;
		reg->clients = c->next;
		xdisk_free_all(reg, c, false);   /* before the target they sit in */
		if (c->disk.cow && disk_close(&c->disk, true))
			log_err("client %s: overlay closed with an error", c->initiator);
		client_free(c);
	}
	for (unsigned i = 0; i < reg->nimages; i++) {
		struct draft *d = reg->images[i]->draft;
		if (d && d->disk.cow && disk_close(&d->disk, true))
			log_err("image %s: draft closed with an error", reg->images[i]->name);
		free(d);
		reg->images[i]->draft = NULL;
	}
	registry_cluster_free(reg);
	pthread_mutex_destroy(&reg->lock);
	pthread_cond_destroy(&reg->cond);
}

/*
 * A client bound to source addresses logs in only from them - normal and
 * discovery sessions alike, so a borrowed name learns nothing either.
 * Unknown initiators pass here: the enroll policy decides at attach.
 */
int registry_admit(void *ctx, const char *initiator, const struct sockaddr *peer,
		   char *msg, size_t msglen)
{
	struct registry *reg = ctx;
	struct client *c;
	int status = 0;

	pthread_mutex_lock(&reg->lock);
	c = registry_find(reg, initiator);
	if (c && c->nallow) {
		bool ok = false;
		for (unsigned i = 0; i < c->nallow && !ok; i++)
			ok = netaddr_match(&c->allow[i], peer);
		if (!ok) {
			char list[RULES_MAX_IPS * NETADDR_TEXT_MAX] = "", t[NETADDR_TEXT_MAX];
			size_t n = 0;
			for (unsigned i = 0; i < c->nallow; i++) {
				netaddr_format(&c->allow[i], t, sizeof(t));
				n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
						      c->allow[i].family == AF_UNSPEC ? "(unusable rule)" : t);
				if (n >= sizeof(list))
					break;
			}
			snprintf(msg, msglen, "initiator name of client %s used from an address it "
				 "is not bound to (%s): possible spoofing", c->name[0] ? c->name : c->initiator,
				 list);
			status = LOGIN_AUTHENTICATION_FAILED;
		}
	}
	/* Where it logs in from is where it is woken (lab/wake.h). */
	if (c && !status && peer->sa_family == AF_INET)
		c->last_addr4 = ntohl(((const struct sockaddr_in *)peer)->sin_addr.s_addr);
	pthread_mutex_unlock(&reg->lock);
	return status;
}

/*
 * Whether initiator must log in with CHAP: for a normal session by its
 * client entry, whatever the target (a client logs in only through its
 * own image's target, which attach checks afterwards); for a discovery
 * session (target NULL) by [server] discovery-chap-*.
 */
int registry_chap_secret(void *ctx, const char *initiator, const char *target,
			 struct iscsi_chap_creds *cr)
{
	struct registry *reg = ctx;
	struct client *c;
	int required = 0;

	pthread_mutex_lock(&reg->lock);
	if (!target) {
		/* discovery: one set of credentials for every initiator */
		if (reg->discovery_chap.user[0]) {
			*cr = reg->discovery_chap;
			required = 1;
		}
		pthread_mutex_unlock(&reg->lock);
		return required;
	}
	c = registry_find(reg, initiator);
	if (c && c->chap.user[0]) {
		*cr = c->chap;
		required = 1;
	}
	pthread_mutex_unlock(&reg->lock);
	return required;
}

int registry_attach(void *ctx, struct iscsi_target *t, const char *initiator,
		    struct scsi_target **scsi, void **handle, char *msg, size_t msglen)
{
	struct registry *reg = ctx;
	struct image *img = t->priv;
	struct client *c = NULL;
	struct disk *d;
	int rc, status = 0;

	pthread_mutex_lock(&reg->lock);
	if (img->draft && strcasecmp(img->draft->disk.initiator, initiator) == 0) {
		/* The maintenance client sees the draft, nothing else. */
		d = &img->draft->disk;
		goto attach;
	}
	c = registry_find(reg, initiator);
	if (c && c->disk.img != img) {
		snprintf(msg, msglen, "client %s belongs to image %s, not to target %s",
			 initiator, c->disk.img->name, t->name);
		status = LOGIN_AUTHORIZATION_FAILED;
		goto out;
	}
	if (!c) {
		if (!reg->enroll_auto) {
			snprintf(msg, msglen, "initiator %s is not a known client", initiator);
			status = LOGIN_AUTHORIZATION_FAILED;
			goto out;
		}
		c = client_new(reg, initiator, img);
		if (!c) {
			status = LOGIN_OUT_OF_RESOURCES;
			goto out;
		}
		c->next = reg->clients;
		reg->clients = c;
		bindings_save(reg);
		log_notice("client %s enrolled automatically on image %s", initiator, img->name);
	}
	d = &c->disk;
attach:
	if (d->resetting) {
		snprintf(msg, msglen, "client %s is being reset", initiator);
		status = LOGIN_SERVICE_UNAVAILABLE;   /* try again */
		goto out;
	}
	if (!d->cow) {
		rc = registry_disk_open(reg, d);
		if (rc) {
			snprintf(msg, msglen, "cannot open the overlay of %s: %s%s", initiator, strerror(-rc),
				 rc == -ENOSPC || rc == -EDQUOT ? " (the state directory's file system is "
				 "full: free space, e.g. reset or remove clients)" : "");
			/* out of resources (try later) when the store is full */
			status = rc == -ENOSPC || rc == -EDQUOT ? LOGIN_OUT_OF_RESOURCES : LOGIN_TARGET_ERROR;
			goto out;
		}
	}
	/* its extra disks into its target (lab/xdisk.h): a PC enrolled
	 * just now gets its group's */
	if (c && d == &c->disk) {
		if (xdisk_sync(reg, c))
			bindings_save(reg);
		xdisk_open_all(reg, c);
	}
	/* a PC's login with no session open: a boot (iostats.h), unless
	 * its boot script began one already */
	if (c && d == &c->disk && d->sessions == 0) {
		boot_begin(&c->boot, iostats_now_ns(), false);
		bootsets_boot_begin(reg, c, false);
	}
	d->sessions++;
	if (c)
		c->last_login = (int64_t)time(NULL);
	*scsi = d->scsi;
	*handle = d;
out:
	pthread_mutex_unlock(&reg->lock);
	return status;
}

void registry_io_stats(void *ctx, void *handle, const char *initiator,
		       struct iscsi_io_stats *out)
{
	struct registry *reg = ctx;
	struct disk *d = handle;
	struct client *c;

	(void)initiator;
	pthread_mutex_lock(&reg->lock);
	/* A client outlives its disk's sessions (removal ends them first),
	 * an image the daemon.  A draft's session counts for its image
	 * only: its maintenance client's removal would not end it. */
	c = d->is_draft ? NULL : (struct client *)((char *)d - offsetof(struct client, disk));
	out->pc = c ? &c->io : NULL;
	out->boot = c ? &c->boot : NULL;
	out->image = &d->img->io;
	/* The OS logged in: the boot its firmware began may settle now
	 * (storage/bootrec.h: held until then). */
	if (c && !out->firmware)
		bootrec_release(&c->rec, iostats_now_ns());
	pthread_mutex_unlock(&reg->lock);
}

/* The client whose boot disk d is (not a draft's). */
static struct client *disk_client(struct disk *d)
{
	return (struct client *)((char *)d - offsetof(struct client, disk));
}

/* handle is the disk the session attached to (a client's or a draft's). */
void registry_detach(void *ctx, void *handle)
{
	struct registry *reg = ctx;
	struct disk *d = handle;
	const char *what = NULL;
	int err;

	pthread_mutex_lock(&reg->lock);
	d->sessions--;
	/* An overlay that failed (EIO, a failed sync) refuses every write
	 * until it is reopened: once nobody uses it, close it, so the next
	 * login reopens it from what was flushed - no restart needed.  What
	 * its client wrote after the failure was never acknowledged by a
	 * flush.  Drafts are left to the admin (image discard/commit). */
	if (d->sessions == 0 && d->cow && !d->is_draft && !d->resetting &&
	    (err = disk_error(d, &what)) != 0) {
		log_notice("client %s: its overlay failed earlier (%s: %s); closed now that its last "
			   "session ended, it reopens from its last flushed state at the next login",
			   d->initiator, what ? what : "I/O", strerror(-err));
		xdisk_close_all(disk_client(d));   /* their LUs sit in its target */
		disk_close(d, true);
	} else if (reg->gateways && d->sessions == 0 && d->cow && !d->is_draft && !d->resetting) {
		xdisk_close_all(disk_client(d));
		if (disk_close(d, true))
			log_err("client %s: overlay closed with an error", d->initiator);
		cluster_released(reg->gateways, d->initiator);
	}
	pthread_cond_broadcast(&reg->cond);
	pthread_mutex_unlock(&reg->lock);
}

int disk_quiesce(struct registry *reg, struct disk *d, bool force, const char *what,
		 char *msg, size_t msglen)
{
	struct timespec deadline;

	/* Each refusal says what would lift it: --force only where it helps. */
	if (d->resetting) {
		if (d->is_draft)
			snprintf(msg, msglen, "the draft of %s is busy with another change (a commit or a "
				 "discard); try again when it ends", d->img->name);
		else
			snprintf(msg, msglen, "client %s is busy with another change (a reset, a removal or a "
				 "move); try again when it ends", d->initiator);
		return -EBUSY;
	}
	if (registry_clustered(reg) && !d->cow) {
		/* a gateway of a cluster: the disk may be open on another one */
		struct lab_store *st = disk_store(reg, d);
		char owner[128];
		if (st->ops->open_elsewhere && st->ops->open_elsewhere(st, d->dir, owner, sizeof(owner)) > 0) {
			if (d->is_draft)
				snprintf(msg, msglen, "the draft of %s is open on another gateway (Ceph client "
					 "%s): nothing was changed; %s it through that gateway, or once its "
					 "maintenance client is offline there", d->img->name, owner, what);
			else
				snprintf(msg, msglen, "the disk of client %s is open on another gateway (Ceph "
					 "client %s): nothing was changed; %s through that gateway, or once "
					 "the client is offline there", d->initiator, owner, what);
			return -EBUSY;
		}
	}
	if (d->sessions && !force) {
		if (d->is_draft)
			snprintf(msg, msglen, "the maintenance client %s is online on the draft of %s (%u "
				 "session%s): shut it down first, or use --force to end its sessions and %s",
				 d->initiator, d->img->name, d->sessions, d->sessions == 1 ? "" : "s", what);
		else
			snprintf(msg, msglen, "client %s is online (%u session%s); use --force to end them and %s",
				 d->initiator, d->sessions, d->sessions == 1 ? "" : "s", what);
		return -EBUSY;
	}
	d->resetting = true;
	if (!d->sessions)
		return 0;
	pthread_mutex_unlock(&reg->lock);
	if (reg->hooks.end_sessions)
		reg->hooks.end_sessions(reg->hooks.ctx, d->initiator);
	pthread_mutex_lock(&reg->lock);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += RESET_WAIT_S;
	while (d->sessions) {
		if (pthread_cond_timedwait(&reg->cond, &reg->lock, &deadline) == ETIMEDOUT) {
			snprintf(msg, msglen, "sessions of %s did not end within %ds; nothing was changed, "
				 "try again", d->initiator, RESET_WAIT_S);
			d->resetting = false;
			return -EBUSY;
		}
	}
	return 0;
}

/* Throw away c's overlay (constant time) and LU; wake the purger.
 * Quiesced, lock held.  0 or -errno with msg. */
static int client_discard(struct registry *reg, struct client *c, char *msg, size_t msglen)
{
	const char *base = strrchr(c->disk.dir, '/');
	char label[PATH_MAX + 16];
	int rc;

	snprintf(label, sizeof(label), "overlay-%s", base ? base + 1 : c->disk.dir);
	xdisk_close_all(c);   /* their LUs sit in the target that goes */
	rc = disk_discard(&c->disk, disk_store(reg, &c->disk), label);
	if (rc) {
		snprintf(msg, msglen, "cannot discard the overlay of %s: %s", c->initiator, strerror(-rc));
		return rc;
	}
	reg->purge_pending = true;
	pthread_cond_broadcast(&reg->cond);
	return 0;
}

int client_reset_locked(struct registry *reg, struct client *c, bool force, const char *why,
		       char *msg, size_t msglen)
{
	int rc = disk_quiesce(reg, &c->disk, force, "reset", msg, msglen);

	if (rc)
		return rc;
	rc = client_discard(reg, c, msg, msglen);
	if (rc == 0) {
		unsigned old = c->disk.version;
		c->disk.version = c->disk.img->current;
		c->reset_due = false;
		c->resets++;
		reg->resets++;
		bindings_save(reg);
		if (old != c->disk.version)
			log_notice("client %s reset (%s): overlay discarded, now on %s v%u (was v%u)",
				   c->initiator, why, c->disk.img->name, c->disk.version, old);
		else
			log_notice("client %s reset (%s): overlay discarded", c->initiator, why);
		events_add(EV_RESET, c->name[0] ? c->name : c->initiator, c->disk.img->name,
			   "reset (%s): overlay discarded, on v%u", why, c->disk.version);
	}
	/* Reopen at once: the client is listed with an empty overlay (a
	 * store that says so opens it at the next login instead). */
	if (!disk_store(reg, &c->disk)->open_at_login && registry_disk_open(reg, &c->disk))
		log_err("client %s: cannot create its new overlay", c->initiator);
	c->disk.resetting = false;
	return rc;
}

int registry_reset(struct registry *reg, const char *id, bool force, char *msg, size_t msglen)
{
	struct client *c;
	int rc;

	pthread_mutex_lock(&reg->lock);
	c = registry_find(reg, id);
	if (!c) {
		snprintf(msg, msglen, "no client %s", id);
		rc = -ENOENT;
	} else {
		rc = client_reset_locked(reg, c, force, "admin", msg, msglen);
	}
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

static struct image *pick_image(struct registry *reg, const char *image, char *msg, size_t msglen)
{
	struct image *img;

	if (!image) {
		if (reg->nimages == 1)
			return reg->images[0];
		snprintf(msg, msglen, "several images are served: say which one (--image)");
		return NULL;
	}
	img = registry_image(reg, image);
	if (!img)
		snprintf(msg, msglen, "no image %s", image);
	return img;
}

/*
 * Check bf against c (the client it would change; others must not hold
 * the same MAC/UUID) and apply it when apply is true.  0 or -EINVAL /
 * -EEXIST with msg.  Lock held.
 */
static int boot_fields(struct registry *reg, struct client *c, const struct client_boot_fields *bf,
		       bool apply, char *msg, size_t msglen)
{
	char mac[RULES_MAC_LEN] = "", uuid[RULES_UUID_LEN] = "";
	enum client_policy pol = c->policy;
	int at = c->reset_at;
	char why[160];
	struct netaddr_rule rules[RULES_MAX_IPS];
	unsigned nrules = 0;
	struct iscsi_chap_creds chap;
	int rc;

	if (!bf)
		return 0;
	if (bf->mac && bf->mac[0] && (rc = rules_mac(bf->mac, mac, msg, msglen)))
		return rc;
	if (bf->uuid && bf->uuid[0] && (rc = rules_uuid(bf->uuid, uuid, msg, msglen)))
		return rc;
	if (bf->ip && netaddr_parse_list(bf->ip, rules, RULES_MAX_IPS, &nrules, why, sizeof(why))) {
		snprintf(msg, msglen, "ip: %s", why);
		return -EINVAL;
	}
	if ((rc = rules_chap_creds(bf->chap_user, bf->chap_secret, bf->mutual_user, bf->mutual_secret,
				   &chap, msg, msglen)))
		return rc;
	if (bf->policy && rules_parse_policy(bf->policy, &pol)) {
		snprintf(msg, msglen, "policy '%.30s': persistent, reset-on-boot or scheduled", bf->policy);
		return -EINVAL;
	}
	if (bf->reset_at && parse_time_of_day(bf->reset_at, &at, why, sizeof(why))) {
		snprintf(msg, msglen, "reset-at: %s", why);
		return -EINVAL;
	}
	if (pol == POLICY_SCHEDULED && at < 0) {
		snprintf(msg, msglen, "the scheduled policy needs a reset-at time (HH:MM)");
		return -EINVAL;
	}
	for (struct client *o = reg->clients; o; o = o->next) {
		if (o == c)
			continue;
		if (mac[0] && strcmp(o->mac, mac) == 0) {
			snprintf(msg, msglen, "MAC %s belongs to client %s already", mac,
				 o->name[0] ? o->name : o->initiator);
			return -EEXIST;
		}
		if (uuid[0] && strcmp(o->uuid, uuid) == 0) {
			snprintf(msg, msglen, "UUID %s belongs to client %s already", uuid,
				 o->name[0] ? o->name : o->initiator);
			return -EEXIST;
		}
	}
	if (!apply)
		return 0;
	if (bf->mac)
		snprintf(c->mac, sizeof(c->mac), "%s", mac);
	if (bf->uuid)
		snprintf(c->uuid, sizeof(c->uuid), "%s", uuid);
	if (bf->ip) {
		memcpy(c->allow, rules, sizeof(rules[0]) * nrules);
		c->nallow = nrules;
	}
	if (bf->chap_user) {
		c->chap = chap;
		log_notice("client %s: CHAP %s", c->initiator, !chap.user[0] ? "turned off" :
			   chap.muser[0] ? "set (mutual)" : "set (one-way)");
	}
	explicit_bzero(&chap, sizeof(chap));
	c->policy = pol;
	c->reset_at = at;
	return 0;
}

int registry_add(struct registry *reg, const char *name, const char *initiator, const char *image,
		 const struct client_boot_fields *bf,
		 uint64_t quota, bool quota_set, char *msg, size_t msglen)
{
	struct client *c;
	struct image *img;
	int rc = 0;

	if (!iscsi_name_valid(initiator)) {
		snprintf(msg, msglen, "'%.80s' is not a valid iSCSI initiator name", initiator);
		return -EINVAL;
	}
	if (name && name[0] && !parse_name_ok(name)) {
		snprintf(msg, msglen, "name '%.70s': use a-z, 0-9 and '-', at most 63 characters", name);
		return -EINVAL;
	}
	pthread_mutex_lock(&reg->lock);
	if (registry_find(reg, initiator)) {
		snprintf(msg, msglen, "%s is already a client", initiator);
		rc = -EEXIST;
		goto out;
	}
	if (name && name[0] && registry_find(reg, name)) {
		snprintf(msg, msglen, "a client is already called %s", name);
		rc = -EEXIST;
		goto out;
	}
	img = pick_image(reg, image, msg, msglen);
	if (!img) {
		rc = image ? -ENOENT : -EINVAL;
		goto out;
	}
	c = client_new(reg, initiator, img);
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	rc = boot_fields(reg, c, bf, true, msg, msglen);
	if (rc) {
		client_free(c);
		goto out;
	}
	snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
	c->origin = ORIGIN_API;
	c->quota_set = quota_set;
	c->disk.quota = quota_set ? quota : reg->default_quota;
	c->next = reg->clients;
	reg->clients = c;
	xdisk_sync(reg, c);   /* its image's group's disks */
	bindings_save(reg);
	log_notice("client %s%s%s added on image %s", initiator, c->name[0] ? " as " : "", c->name, img->name);
	events_add(EV_CLIENT, c->name[0] ? c->name : initiator, img->name, "client %s added", initiator);
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

/*
 * The client an API change may touch: found by id, and not one of the
 * configuration file (those change in the file).  Lock held.  Sets *rc to
 * -ENOENT or -EBUSY with msg and returns NULL otherwise.
 */
static struct client *find_changeable(struct registry *reg, const char *id, const char *verb,
				      int *rc, char *msg, size_t msglen)
{
	struct client *c = registry_find(reg, id);

	if (!c) {
		snprintf(msg, msglen, "no client %s", id);
		*rc = -ENOENT;
		return NULL;
	}
	if (c->origin == ORIGIN_CONFIG) {
		snprintf(msg, msglen, "client %s is defined in the configuration file: %s it there",
			 c->name[0] ? c->name : c->initiator, verb);
		*rc = -EBUSY;
		return NULL;
	}
	return c;
}

int registry_remove(struct registry *reg, const char *id, bool force, char *msg, size_t msglen)
{
	struct client *c, **pp;
	int rc;

	pthread_mutex_lock(&reg->lock);
	c = find_changeable(reg, id, "remove", &rc, msg, msglen);
	if (!c)
		goto out;
	rc = disk_quiesce(reg, &c->disk, force, "remove it", msg, msglen);
	if (rc)
		goto out;
	rc = client_discard(reg, c, msg, msglen);
	if (rc) {
		c->disk.resetting = false;
		goto out;
	}
	xdisk_free_all(reg, c, true);   /* its overlays on its extra disks go too */
	for (pp = &reg->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	log_notice("client %s removed", c->initiator);
	events_add(EV_CLIENT, c->name[0] ? c->name : c->initiator, NULL, "client %s removed", c->initiator);
	client_free(c);
	bindings_save(reg);
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

int registry_set(struct registry *reg, const char *id, const char *name, const char *image,
		 const struct client_boot_fields *bf,
		 bool has_quota, uint64_t quota, bool force, char *msg, size_t msglen)
{
	struct client *c, *other;
	struct image *img = NULL;
	int rc = 0;

	pthread_mutex_lock(&reg->lock);
	c = find_changeable(reg, id, "change", &rc, msg, msglen);
	if (!c)
		goto out;
	if (name) {
		other = name[0] ? registry_find(reg, name) : NULL;
		if (name[0] && !parse_name_ok(name)) {
			snprintf(msg, msglen, "name '%.70s': use a-z, 0-9 and '-', at most 63 characters", name);
			rc = -EINVAL;
			goto out;
		}
		if (other && other != c) {
			snprintf(msg, msglen, "a client is already called %s", name);
			rc = -EEXIST;
			goto out;
		}
	}
	if (image) {
		img = registry_image(reg, image);
		if (!img) {
			snprintf(msg, msglen, "no image %s", image);
			rc = -ENOENT;
			goto out;
		}
		if (img == c->disk.img)
			img = NULL;
	}
	rc = boot_fields(reg, c, bf, false, msg, msglen);
	if (rc)
		goto out;
	if (img) {
		/* Its overlay only makes sense over the old image. */
		rc = disk_quiesce(reg, &c->disk, force, "move it to another image (its overlay is discarded)",
				    msg, msglen);
		if (rc)
			goto out;
		rc = client_discard(reg, c, msg, msglen);
		if (rc == 0) {
			log_notice("client %s moved from image %s to %s: overlay discarded", c->initiator,
				   c->disk.img->name, img->name);
			c->disk.img = img;
			c->disk.version = img->current;
			/* Its next overlay is placed by its new image's store. */
			if (disk_store(reg, &c->disk)->ops->overlay_where(disk_store(reg, &c->disk),
					c->initiator, c->disk.version, c->disk.dir, sizeof(c->disk.dir)))
				log_err("client %s: the place of its overlay does not fit", c->initiator);
			xdisk_sync(reg, c);   /* its new image's group's disks */
		}
		c->disk.resetting = false;
		if (rc)
			goto out;
	}
	if (name)
		snprintf(c->name, sizeof(c->name), "%s", name);
	if (has_quota) {
		c->disk.quota = quota;
		c->quota_set = true;
		if (c->disk.cow)
			cow_set_quota(c->disk.cow, quota);
	}
	boot_fields(reg, c, bf, true, msg, msglen);
	bindings_save(reg);
	events_add(EV_CLIENT, c->name[0] ? c->name : c->initiator, c->disk.img->name, "client changed");
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

/* The image whose draft c maintains, if any (clients.h).  Lock held. */
struct image *maintained_image(struct registry *reg, const struct client *c)
{
	for (unsigned i = 0; i < reg->nimages; i++)
		if (reg->images[i]->draft && strcasecmp(reg->images[i]->draft->disk.initiator, c->initiator) == 0)
			return reg->images[i];
	return NULL;
}

/* ---- a gateway of a cluster: the records changed on another gateway ---- */

/* c is to be on image img at version v (another gateway's record): a
 * disk open here with no session is closed (kept) so that its next
 * login opens the right one; one online here is left as it is. */
static void client_rebind(struct registry *reg, struct client *c, struct image *img, unsigned v)
{
	if (c->disk.img == img && c->disk.version == v)
		return;
	if (c->disk.sessions) {
		log_warn("client %s: changed on another gateway while online here; it keeps its "
			 "disk until its sessions end", c->initiator);
		return;
	}
	xdisk_close_all(c);
	if (c->disk.cow && disk_close(&c->disk, true))
		log_err("client %s: overlay closed with an error", c->initiator);
	c->disk.img = img;
	c->disk.version = v;
	if (disk_store(reg, &c->disk)->ops->overlay_where(disk_store(reg, &c->disk), c->initiator, v,
							   c->disk.dir, sizeof(c->disk.dir)))
		log_err("client %s: the place of its overlay does not fit", c->initiator);
}

/* Settings of a record applied to c (name, quota, boot fields). */
static void client_apply(struct registry *reg, struct client *c, json_t *e)
{
	const char *name = json_string_value(json_object_get(e, "name"));
	json_t *q = json_object_get(e, "quota_bytes");
	struct client *other = name && name[0] ? registry_find(reg, name) : NULL;

	if (name && (!name[0] || (parse_name_ok(name) && (!other || other == c))))
		snprintf(c->name, sizeof(c->name), "%s", name);
	if (c->origin == ORIGIN_CONFIG)
		return;   /* the file decides the rest */
	c->mac[0] = c->uuid[0] = '\0';
	c->nallow = 0;
	memset(&c->chap, 0, sizeof(c->chap));
	c->policy = reg->default_policy;
	c->reset_at = -1;
	restore_boot_fields(c, e);
	if (json_is_integer(q) && json_integer_value(q) >= 0) {
		c->disk.quota = (uint64_t)json_integer_value(q);
		c->quota_set = true;
	} else {
		c->disk.quota = reg->default_quota;
		c->quota_set = false;
	}
	if (c->disk.cow)
		cow_set_quota(c->disk.cow, c->disk.quota);
}

/* Whether the records list initiator. */
static bool recorded_client(json_t *bindings, const char *initiator)
{
	size_t i;
	json_t *e;

	json_array_foreach(json_object_get(bindings, "clients"), i, e) {
		const char *ini = json_string_value(json_object_get(e, "initiator"));
		if (ini && strcasecmp(ini, initiator) == 0)
			return true;
	}
	return false;
}

int registry_clients_refresh(struct registry *reg, json_t *bindings)
{
	struct client **pp;
	unsigned added = 0, removed = 0;
	size_t i;
	json_t *e;

	/* gone: removed on another gateway (its sessions here end) */
	for (pp = &reg->clients; *pp;) {
		struct client *c = *pp;
		char msg[200];
		if (c->origin == ORIGIN_CONFIG || recorded_client(bindings, c->initiator) ||
		    maintained_image(reg, c)) {
			pp = &c->next;
			continue;
		}
		if (disk_quiesce(reg, &c->disk, true, "remove it", msg, sizeof(msg))) {
			log_warn("client %s: removed on another gateway, still busy here: %s",
				 c->initiator, msg);
			pp = &c->next;
			continue;
		}
		/* its overlay was thrown away by the gateway that removed it */
		xdisk_free_all(reg, c, false);
		if (c->disk.cow && disk_close(&c->disk, false))
			log_err("client %s: overlay closed with an error", c->initiator);
		/* the list may have changed while the lock was dropped */
		for (pp = &reg->clients; *pp && *pp != c; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = c->next;
		client_free(c);
		removed++;
		pp = &reg->clients;
	}
	json_array_foreach(json_object_get(bindings, "clients"), i, e) {
		const char *ini = json_string_value(json_object_get(e, "initiator"));
		const char *iname = json_string_value(json_object_get(e, "image"));
		json_int_t v = json_integer_value(json_object_get(e, "version"));
		struct image *img = iname ? registry_image(reg, iname) : NULL;
		struct client *c;

		if (!ini || !img || !iscsi_name_valid(ini))
			continue;
		if (v < 1 || v > (json_int_t)img->nversions)
			v = img->current;
		c = registry_find(reg, ini);
		if (!c) {
			const char *origin = json_string_value(json_object_get(e, "origin"));
			if (origin && strcmp(origin, "config") == 0)
				continue;   /* another gateway's file */
			if (!(c = client_new(reg, ini, img)))
				return -ENOMEM;
			c->origin = origin && strcmp(origin, "api") == 0 ? ORIGIN_API : ORIGIN_AUTO;
			c->next = reg->clients;
			reg->clients = c;
			added++;
		}
		client_apply(reg, c, e);
		c->reset_due = json_is_true(json_object_get(e, "reset_due"));
		client_rebind(reg, c, img, (unsigned)v);
		xdisk_refresh(reg, c, json_object_get(e, "disks"));
	}
	if (added || removed)
		log_info("cluster: client records changed elsewhere: %u added, %u removed here",
			 added, removed);
	return 0;
}
