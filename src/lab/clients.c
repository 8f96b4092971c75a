/*
 * clients.c - the client registry (see clients.h).
 */
#include "lab/clients.h"
#include "boot/boot.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/parse.h"

#include <jansson.h>

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

/* FNV-1a (util/hash.h) of "a|b": stable ids for VPD pages. */
static uint64_t fnv1a2(const char *a, const char *b)
{
	return fnv1a_add(fnv1a_add(fnv1a(a), "|"), b);
}

/*
 * Directory name of an initiator: lower-case letters, digits, '.', '-'
 * and ':' stay; every other byte becomes %XX.  Reversible, so the
 * registry can be rebuilt from the directory listing.
 */
static void escape_name(const char *iqn, char *out, size_t len)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)iqn; *p && n + 4 < len; p++) {
		unsigned char ch = (unsigned char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':')
			out[n++] = (char)ch;
		else
			n += (size_t)snprintf(out + n, len - n, "%%%02X", ch);
	}
	out[n] = '\0';
}

static int unescape_name(const char *in, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = in; *p; p++) {
		unsigned v;
		if (n + 1 >= len)
			return -1;
		if (*p == '%') {
			if (sscanf(p + 1, "%2X", &v) != 1)
				return -1;
			out[n++] = (char)v;
			p += 2;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	return iscsi_name_valid(out) ? 0 : -1;
}

static int mkdir_p(const char *path)
{
	if (mkdir(path, 0700) && errno != EEXIST) {
		log_err("%s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Build the LU of a client over its open overlay. */
static int client_make_lu(struct registry *reg, struct client *c)
{
	struct scsi_lu_config lc;
	char serial[17];
	uint64_t id = fnv1a2(c->img->target, c->initiator);

	snprintf(serial, sizeof(serial), "%016llx", (unsigned long long)id);
	lc = (struct scsi_lu_config){
		.be = overlay_backend(c->ov), .block_size = c->img->block_size, .read_only = false,
		.vendor = "PRISTINE", .product = "pristine disk", .revision = "0001",
		.serial = serial, .naa_id = id, .target_name = c->img->target,
	};
	c->scsi = scsi_target_new();
	if (!c->scsi)
		return -ENOMEM;
	if (scsi_target_add_lu(c->scsi, 0, &lc)) {
		scsi_target_free(c->scsi);
		c->scsi = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Move an untrusted overlay aside; never delete it. */
static void quarantine(struct registry *reg, const char *dirname, const char *why)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 64];

	if (snprintf(from, sizeof(from), "%s/overlays/%s", reg->state, dirname) >= (int)sizeof(from) ||
	    snprintf(to, sizeof(to), "%s/quarantine/%s.%lld", reg->state, dirname,
		     (long long)time(NULL)) >= (int)sizeof(to)) {
		log_err("overlay %s cannot be trusted (%s); its path is too long to move it aside",
			dirname, why);
		return;
	}
	if (rename(from, to) == 0)
		log_err("overlay %s cannot be trusted (%s): kept aside as %s; the client starts "
			"from a fresh overlay", dirname, why, to);
	else
		log_err("overlay %s cannot be trusted (%s) and could not be moved aside: %s",
			dirname, why, strerror(errno));
}

/* Open (creating if needed) the overlay of c over its version.  Lock held. */
int client_open(struct registry *reg, struct client *c)
{
	struct overlay_opts oo = { .quota_bytes = c->quota, .store_floor_bytes = reg->store_floor };
	char base[64], msg[256];
	struct backend *vbe;
	int rc;

	if (c->version < 1 || c->version > c->img->nversions)
		c->version = c->img->current;
	rc = image_version_get(c->img, c->version, &vbe, msg, sizeof(msg));
	if (rc) {
		log_err("%s", msg);
		return rc;
	}
	image_version_id(c->img, c->version, base, sizeof(base));
	oo.base_id = base;
	rc = overlay_open(c->dir, vbe, &oo, &c->ov);
	if (rc == 0) {
		rc = client_make_lu(reg, c);
		if (rc) {
			overlay_close(c->ov);
			c->ov = NULL;
		}
	}
	if (rc)
		image_version_put(c->img, c->version);
	else
		c->version_held = true;
	return rc;
}

int client_close(struct client *c, bool keep)
{
	int rc = 0;

	scsi_target_free(c->scsi);
	c->scsi = NULL;
	if (keep)
		rc = overlay_close(c->ov);
	else
		overlay_drop(c->ov);
	c->ov = NULL;
	if (c->version_held)
		image_version_put(c->img, c->version);
	c->version_held = false;
	return rc;
}

struct client *client_new(struct registry *reg, const char *initiator, struct image *img)
{
	struct client *c = calloc(1, sizeof(*c));
	char esc[ISCSI_NAME_MAX * 3 + 1];

	if (!c)
		return NULL;
	snprintf(c->initiator, sizeof(c->initiator), "%s", initiator);
	escape_name(initiator, esc, sizeof(esc));
	if (snprintf(c->dir, sizeof(c->dir), "%s/overlays/%s", reg->state, esc) >= (int)sizeof(c->dir)) {
		log_err("state directory path too long for client %s", initiator);
		free(c);
		return NULL;
	}
	c->img = img;
	c->version = img->current;
	c->quota = reg->default_quota;
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
	rc = iscsi_server_add_target(reg->srv, &img->tgt);
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
	char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
	json_t *arr = json_array(), *root;
	int fd = -1, dfd, rc = 0;
	char *text;

	static const char *const origins[] = { "auto", "api", "config" };

	for (struct client *c = reg->clients; c; c = c->next) {
		json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "initiator", c->initiator,
				      "image", c->img->name, "name", c->name, "origin", origins[c->origin]);
		if (c->quota_set)
			json_object_set_new(e, "quota_bytes", json_integer((json_int_t)c->quota));
		json_object_set_new(e, "version", json_integer((json_int_t)c->version));
		if (c->mac[0])
			json_object_set_new(e, "mac", json_string(c->mac));
		if (c->uuid[0])
			json_object_set_new(e, "uuid", json_string(c->uuid));
		json_object_set_new(e, "policy", json_string(cfg_policy_name(c->policy)));
		if (c->reset_at >= 0)
			json_object_set_new(e, "reset_at", json_integer(c->reset_at));
		if (c->reset_due)
			json_object_set_new(e, "reset_due", json_true());
		if (c->nallow && c->origin != ORIGIN_CONFIG)
			json_object_set_new(e, "ip", client_allow_json(c));
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
	snprintf(path, sizeof(path), "%s/clients.json", reg->state);
	snprintf(tmp, sizeof(tmp), "%s/clients.json.tmp", reg->state);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fsync(fd) ||
	    rename(tmp, path)) {
		rc = -errno;
		log_err("cannot save %s: %s", path, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	dfd = open(reg->state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
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
		if (c->nallow >= CFG_MAX_IPS || !t ||
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

static int chap_fields(const struct client_boot_fields *bf, struct iscsi_chap_creds *out,
		       char *msg, size_t msglen);

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
	if (!bf.chap_user || !bf.chap_user[0] || chap_fields(&bf, &c->chap, msg, sizeof(msg))) {
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
	struct boot_request rq = { 0 };
	char err[64];
	enum cfg_policy p;

	if (mac && boot_parse_param(&rq, "mac", mac, err, sizeof(err)) == 0)
		snprintf(c->mac, sizeof(c->mac), "%s", rq.mac);
	if (uuid && boot_parse_param(&rq, "uuid", uuid, err, sizeof(err)) == 0)
		snprintf(c->uuid, sizeof(c->uuid), "%s", rq.uuid);
	if (pol && cfg_parse_policy(pol, &p) == 0)
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
		if (ini && img && strcasecmp(ini, c->initiator) == 0 && strcmp(img, c->img->name) == 0 &&
		    v >= 1 && v <= (json_int_t)c->img->nversions)
			c->version = (unsigned)v;
		if (ini && strcasecmp(ini, c->initiator) == 0 && c->origin == ORIGIN_CONFIG)
			c->reset_due = json_is_true(json_object_get(e, "reset_due"));
	}
}

bool client_name_valid(const char *name)
{
	return parse_name_ok(name);   /* the one name rule (util/parse.h) */
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
		if (name && client_name_valid(name) && !registry_find(reg, name))
			snprintf(c->name, sizeof(c->name), "%s", name);
		c->origin = origin && strcmp(origin, "api") == 0 ? ORIGIN_API : ORIGIN_AUTO;
		restore_boot_fields(c, e);
		if (json_is_integer(q) && json_integer_value(q) >= 0) {
			c->quota = (uint64_t)json_integer_value(q);
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

int registry_configure(struct registry *reg, const struct cfg_client *cc, struct image *img,
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
	c->quota = quota;
	c->quota_set = true;
	memcpy(c->allow, cc->ip_rules, sizeof(c->allow));
	c->nallow = cc->nips;
	snprintf(c->chap.user, sizeof(c->chap.user), "%s", cc->chap_user);
	snprintf(c->chap.secret, sizeof(c->chap.secret), "%s", cc->chap_secret);
	snprintf(c->chap.muser, sizeof(c->chap.muser), "%s", cc->mutual_user);
	snprintf(c->chap.msecret, sizeof(c->chap.msecret), "%s", cc->mutual_secret);
	c->next = reg->clients;
	reg->clients = c;
	return 0;
}

static void *purger_main(void *arg)
{
	struct registry *reg = arg;
	char trash[PATH_MAX + 8];

	snprintf(trash, sizeof(trash), "%s/trash", reg->state);
	pthread_mutex_lock(&reg->lock);
	for (;;) {
		while (!reg->purge_pending && !reg->stopping)
			pthread_cond_wait(&reg->cond, &reg->lock);
		if (reg->stopping)
			break;
		reg->purge_pending = false;
		pthread_mutex_unlock(&reg->lock);
		if (overlay_trash_purge(trash))
			log_warn("could not reclaim all of %s", trash);
		pthread_mutex_lock(&reg->lock);
	}
	pthread_mutex_unlock(&reg->lock);
	return NULL;
}

/* An import a crash interrupted leaves STATE/imported/NAME.raw.tmp. */
static void sweep_imports(struct registry *reg)
{
	char dir[PATH_MAX + 16], from[PATH_MAX + 300], to[PATH_MAX + 320];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/imported", reg->state);
	d = opendir(dir);
	while (d && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".tmp") != 0)
			continue;
		snprintf(from, sizeof(from), "%s/%s", dir, de->d_name);
		snprintf(to, sizeof(to), "%s/trash/import-%lld-%s", reg->state, (long long)time(NULL),
			 de->d_name);
		if (rename(from, to) == 0)
			log_notice("%s was left by an interrupted import: moved to the trash", from);
	}
	if (d)
		closedir(d);
}

int registry_open(struct registry *reg)
{
	char path[PATH_MAX + 16];
	DIR *d;
	struct dirent *de;
	json_t *bindings;
	json_error_t jerr;
	int rc;

	pthread_mutex_init(&reg->lock, NULL);
	pthread_cond_init(&reg->cond, NULL);
	reg->started = (int64_t)time(NULL);
	const char *subs[] = { "overlays", "trash", "quarantine" };
	for (unsigned i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", reg->state, subs[i]);
		if ((rc = mkdir_p(path)))
			return rc;
	}
	snprintf(path, sizeof(path), "%s/clients.json", reg->state);
	bindings = json_load_file(path, 0, &jerr);
	if (!bindings && access(path, F_OK) == 0)
		log_err("%s: %s (line %d): client bindings ignored", path, jerr.text, jerr.line);
	restore_clients(reg, bindings);
	for (struct client *c = reg->clients; c; c = c->next)
		bound_version(bindings, c);
	snprintf(path, sizeof(path), "%s/overlays", reg->state);
	d = opendir(path);
	if (!d) {
		log_err("%s: %s", path, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		char iqn[ISCSI_NAME_MAX];
		struct client *c;
		struct image *img;

		if (de->d_name[0] == '.')
			continue;
		if (unescape_name(de->d_name, iqn, sizeof(iqn))) {
			log_warn("%s/%s: not an overlay of ours, ignored", path, de->d_name);
			continue;
		}
		c = registry_find(reg, iqn);
		if (!c) {
			img = bound_image(reg, bindings, iqn);
			if (!img) {
				log_warn("overlay of %s: bound to an image that is not served now; left untouched",
					 iqn);
				continue;
			}
			c = client_new(reg, iqn, img);
			if (!c)
				break;
			bound_version(bindings, c);
			c->next = reg->clients;
			reg->clients = c;
		}
		rc = client_open(reg, c);
		if (rc == -EBADMSG || rc == -ESTALE) {
			quarantine(reg, de->d_name, rc == -EBADMSG ? "metadata torn or corrupt" :
				   "made over another image");
			rc = client_open(reg, c);   /* a fresh, empty overlay */
		}
		if (rc) {
			/* Listed, offline; its next login tries again. */
			log_err("client %s: cannot open its overlay: %s", iqn, strerror(-rc));
			continue;
		}
		log_info("client %s: overlay verified, %llu bytes", iqn,
			 (unsigned long long)overlay_used_bytes(c->ov));
	}
	closedir(d);
	json_decref(bindings);
	bindings_save(reg);
	reg->purge_pending = true;   /* whatever a crash left in trash/ */
	sweep_imports(reg);
	if (pthread_create(&reg->purger, NULL, purger_main, reg) == 0)
		reg->purger_started = true;
	if (pthread_create(&reg->sched, NULL, registry_sched_main, reg) == 0)
		reg->sched_started = true;
	return 0;
}

void registry_close(struct registry *reg)
{
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
		if (c->ov && client_close(c, true))
			log_err("client %s: overlay closed with an error", c->initiator);
		free(c);
	}
	for (unsigned i = 0; i < reg->nimages; i++) {
		struct client *d = reg->images[i]->draft;
		if (d && d->ov && client_close(d, true))
			log_err("image %s: draft closed with an error", reg->images[i]->name);
		free(d);
		reg->images[i]->draft = NULL;
	}
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
			char list[CFG_MAX_IPS * NETADDR_TEXT_MAX] = "", t[NETADDR_TEXT_MAX];
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
			status = 0x0201;   /* authentication failure */
		}
	}
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
	struct client *c;
	int rc, status = 0;

	pthread_mutex_lock(&reg->lock);
	if (img->draft && strcasecmp(img->draft->initiator, initiator) == 0) {
		/* The maintenance client sees the draft, nothing else. */
		c = img->draft;
		goto attach;
	}
	c = registry_find(reg, initiator);
	if (c && c->img != img) {
		snprintf(msg, msglen, "client %s belongs to image %s, not to target %s",
			 initiator, c->img->name, t->name);
		status = 0x0202;   /* authorization failure */
		goto out;
	}
	if (!c) {
		if (!reg->enroll_auto) {
			snprintf(msg, msglen, "initiator %s is not a known client", initiator);
			status = 0x0202;   /* authorization failure */
			goto out;
		}
		c = client_new(reg, initiator, img);
		if (!c) {
			status = 0x0302;
			goto out;
		}
		c->next = reg->clients;
		reg->clients = c;
		bindings_save(reg);
		log_notice("client %s enrolled automatically on image %s", initiator, img->name);
	}
attach:
	if (c->resetting) {
		snprintf(msg, msglen, "client %s is being reset", initiator);
		status = 0x0301;   /* service unavailable: try again */
		goto out;
	}
	if (!c->ov) {
		rc = client_open(reg, c);
		if (rc) {
			snprintf(msg, msglen, "cannot open the overlay of %s: %s%s", initiator, strerror(-rc),
				 rc == -ENOSPC || rc == -EDQUOT ? " (the state directory's file system is "
				 "full: free space, e.g. reset or remove clients)" : "");
			/* out of resources (try later) when the store is full */
			status = rc == -ENOSPC || rc == -EDQUOT ? 0x0302 : 0x0300;
			goto out;
		}
	}
	c->sessions++;
	c->last_login = (int64_t)time(NULL);
	*scsi = c->scsi;
	*handle = c;
out:
	pthread_mutex_unlock(&reg->lock);
	return status;
}

void registry_detach(void *ctx, void *handle)
{
	struct registry *reg = ctx;
	struct client *c = handle;

	const char *what = NULL;
	int err;

	pthread_mutex_lock(&reg->lock);
	c->sessions--;
	/* An overlay that failed (EIO, a failed sync) refuses every write
	 * until it is reopened: once nobody uses it, close it, so the next
	 * login reopens it from what was flushed - no restart needed.  What
	 * its client wrote after the failure was never acknowledged by a
	 * flush.  Drafts are left to the admin (image discard/commit). */
	if (c->sessions == 0 && c->ov && !c->is_draft && !c->resetting &&
	    (err = overlay_error(c->ov, &what)) != 0) {
		log_notice("client %s: its overlay failed earlier (%s: %s); closed now that its last "
			   "session ended, it reopens from its last flushed state at the next login",
			   c->initiator, what ? what : "I/O", strerror(-err));
		client_close(c, true);
	}
	pthread_cond_broadcast(&reg->cond);
	pthread_mutex_unlock(&reg->lock);
}

/*
 * Make c idle for a change of its overlay: refuse while it has sessions
 * unless force, which ends them and waits.  On success c->resetting is set
 * (no session attaches) and the caller must clear it.  Lock held (it is
 * dropped while sessions end).  0, or -EBUSY with msg.
 */
int client_quiesce(struct registry *reg, struct client *c, bool force, const char *what,
		   char *msg, size_t msglen)
{
	struct timespec deadline;

	if (c->resetting) {
		snprintf(msg, msglen, "client %s is busy with another change", c->initiator);
		return -EBUSY;
	}
	if (c->sessions && !force) {
		snprintf(msg, msglen, "client %s is online (%u session%s); use --force to end them and %s",
			 c->initiator, c->sessions, c->sessions == 1 ? "" : "s", what);
		return -EBUSY;
	}
	c->resetting = true;
	if (!c->sessions)
		return 0;
	pthread_mutex_unlock(&reg->lock);
	iscsi_kill_initiator(reg->srv, c->initiator);
	pthread_mutex_lock(&reg->lock);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += RESET_WAIT_S;
	while (c->sessions) {
		if (pthread_cond_timedwait(&reg->cond, &reg->lock, &deadline) == ETIMEDOUT) {
			snprintf(msg, msglen, "sessions of %s did not end within %ds", c->initiator, RESET_WAIT_S);
			c->resetting = false;
			return -EBUSY;
		}
	}
	return 0;
}

/* Throw away c's overlay (constant time) and LU.  Quiesced, lock held. */
static int client_discard(struct registry *reg, struct client *c, char *msg, size_t msglen)
{
	char trash[PATH_MAX + 8];
	int rc;

	snprintf(trash, sizeof(trash), "%s/trash", reg->state);
	/* Nothing of it is kept: no final checkpoint, just let go. */
	client_close(c, false);
	rc = overlay_discard(c->dir, trash);
	if (rc == -ENOENT)
		return 0;   /* it never wrote anything */
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
	int rc = client_quiesce(reg, c, force, "reset", msg, msglen);

	if (rc)
		return rc;
	rc = client_discard(reg, c, msg, msglen);
	if (rc == 0) {
		unsigned old = c->version;
		c->version = c->img->current;
		c->reset_due = false;
		bindings_save(reg);
		if (old != c->version)
			log_notice("client %s reset (%s): overlay discarded, now on %s v%u (was v%u)",
				   c->initiator, why, c->img->name, c->version, old);
		else
			log_notice("client %s reset (%s): overlay discarded", c->initiator, why);
	}
	/* Reopen at once: the client is listed with an empty overlay. */
	if (client_open(reg, c))
		log_err("client %s: cannot create its new overlay", c->initiator);
	c->resetting = false;
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

/* A CHAP name: 1 to 255 visible ASCII characters. */
static bool chap_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= ISCSI_CHAP_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/*
 * The CHAP settings of bf, checked like a [client]'s (pristine.conf(5)),
 * into *out.  0 or -EINVAL with msg; secrets are never quoted back.
 */
static int chap_fields(const struct client_boot_fields *bf, struct iscsi_chap_creds *out,
		       char *msg, size_t msglen)
{
	const char *sec[2] = { bf->chap_secret, bf->mutual_secret };

	memset(out, 0, sizeof(*out));
	if (!bf->chap_user) {
		if (bf->chap_secret || bf->mutual_user || bf->mutual_secret) {
			snprintf(msg, msglen, "CHAP settings need the CHAP user name too");
			return -EINVAL;
		}
		return 0;
	}
	if (!bf->chap_user[0]) {
		if (bf->chap_secret || bf->mutual_user || bf->mutual_secret) {
			snprintf(msg, msglen, "an empty CHAP user turns CHAP off: give no secret with it");
			return -EINVAL;
		}
		return 0;
	}
	if (!chap_name_ok(bf->chap_user) || (bf->mutual_user && !chap_name_ok(bf->mutual_user))) {
		snprintf(msg, msglen, "a CHAP user name has 1 to 255 visible ASCII characters, no blanks");
		return -EINVAL;
	}
	if (!bf->chap_secret) {
		snprintf(msg, msglen, "a CHAP user needs a CHAP secret");
		return -EINVAL;
	}
	if (!bf->mutual_user != !bf->mutual_secret) {
		snprintf(msg, msglen, "mutual CHAP needs both the mutual user and the mutual secret");
		return -EINVAL;
	}
	for (int i = 0; i < 2; i++) {
		size_t n = sec[i] ? strlen(sec[i]) : 0;
		if (sec[i] && (n < CFG_SECRET_MIN || n >= ISCSI_CHAP_MAX)) {
			snprintf(msg, msglen, "a CHAP secret has %d to %d bytes (at least 96 bits, "
				 "RFC 7143 12.1.3); this one has %zu", CFG_SECRET_MIN, ISCSI_CHAP_MAX - 1, n);
			return -EINVAL;
		}
	}
	if (bf->mutual_secret && strcmp(bf->mutual_secret, bf->chap_secret) == 0) {
		snprintf(msg, msglen, "the mutual secret must differ from the CHAP secret");
		return -EINVAL;
	}
	snprintf(out->user, sizeof(out->user), "%s", bf->chap_user);
	snprintf(out->secret, sizeof(out->secret), "%s", bf->chap_secret);
	if (bf->mutual_user) {
		snprintf(out->muser, sizeof(out->muser), "%s", bf->mutual_user);
		snprintf(out->msecret, sizeof(out->msecret), "%s", bf->mutual_secret);
	}
	return 0;
}

/*
 * Check bf against c (the client it would change; others must not hold
 * the same MAC/UUID) and apply it when apply is true.  0 or -EINVAL /
 * -EEXIST with msg.  Lock held.
 */
static int boot_fields(struct registry *reg, struct client *c, const struct client_boot_fields *bf,
		       bool apply, char *msg, size_t msglen)
{
	struct boot_request rq = { 0 };
	enum cfg_policy pol = c->policy;
	int at = c->reset_at;
	char err[64], why[160];
	struct netaddr_rule rules[CFG_MAX_IPS];
	unsigned nrules = 0;
	struct iscsi_chap_creds chap;
	int rc;

	if (!bf)
		return 0;
	if (bf->mac && bf->mac[0] && boot_parse_param(&rq, "mac", bf->mac, err, sizeof(err))) {
		snprintf(msg, msglen, "'%.40s' is not a MAC address (aa:bb:cc:dd:ee:ff)", bf->mac);
		return -EINVAL;
	}
	if (bf->uuid && bf->uuid[0] && boot_parse_param(&rq, "uuid", bf->uuid, err, sizeof(err))) {
		snprintf(msg, msglen, "'%.40s' is not a UUID", bf->uuid);
		return -EINVAL;
	}
	if (bf->ip && netaddr_parse_list(bf->ip, rules, CFG_MAX_IPS, &nrules, why, sizeof(why))) {
		snprintf(msg, msglen, "ip: %s", why);
		return -EINVAL;
	}
	if ((rc = chap_fields(bf, &chap, msg, msglen)))
		return rc;
	if (bf->policy && cfg_parse_policy(bf->policy, &pol)) {
		snprintf(msg, msglen, "policy '%.30s': persistent, reset-on-boot or scheduled", bf->policy);
		return -EINVAL;
	}
	if (bf->reset_at && (at = cfg_parse_hhmm(bf->reset_at)) < 0) {
		snprintf(msg, msglen, "reset-at '%.20s': HH:MM", bf->reset_at);
		return -EINVAL;
	}
	if (pol == POLICY_SCHEDULED && at < 0) {
		snprintf(msg, msglen, "the scheduled policy needs a reset-at time (HH:MM)");
		return -EINVAL;
	}
	for (struct client *o = reg->clients; o; o = o->next) {
		if (o == c)
			continue;
		if (rq.mac[0] && strcmp(o->mac, rq.mac) == 0) {
			snprintf(msg, msglen, "MAC %s belongs to client %s already", rq.mac,
				 o->name[0] ? o->name : o->initiator);
			return -EEXIST;
		}
		if (rq.uuid[0] && strcmp(o->uuid, rq.uuid) == 0) {
			snprintf(msg, msglen, "UUID %s belongs to client %s already", rq.uuid,
				 o->name[0] ? o->name : o->initiator);
			return -EEXIST;
		}
	}
	if (!apply)
		return 0;
	if (bf->mac)
		snprintf(c->mac, sizeof(c->mac), "%s", rq.mac);
	if (bf->uuid)
		snprintf(c->uuid, sizeof(c->uuid), "%s", rq.uuid);
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
	if (name && name[0] && !client_name_valid(name)) {
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
		free(c);
		goto out;
	}
	snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
	c->origin = ORIGIN_API;
	c->quota_set = quota_set;
	c->quota = quota_set ? quota : reg->default_quota;
	c->next = reg->clients;
	reg->clients = c;
	bindings_save(reg);
	log_notice("client %s%s%s added on image %s", initiator, c->name[0] ? " as " : "", c->name, img->name);
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
	rc = client_quiesce(reg, c, force, "remove it", msg, msglen);
	if (rc)
		goto out;
	rc = client_discard(reg, c, msg, msglen);
	if (rc) {
		c->resetting = false;
		goto out;
	}
	for (pp = &reg->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	log_notice("client %s removed", c->initiator);
	free(c);
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
		if (name[0] && !client_name_valid(name)) {
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
		if (img == c->img)
			img = NULL;
	}
	rc = boot_fields(reg, c, bf, false, msg, msglen);
	if (rc)
		goto out;
	if (img) {
		/* Its overlay only makes sense over the old image. */
		rc = client_quiesce(reg, c, force, "move it to another image (its overlay is discarded)",
				    msg, msglen);
		if (rc)
			goto out;
		rc = client_discard(reg, c, msg, msglen);
		if (rc == 0) {
			log_notice("client %s moved from image %s to %s: overlay discarded", c->initiator,
				   c->img->name, img->name);
			c->img = img;
			c->version = img->current;
		}
		c->resetting = false;
		if (rc)
			goto out;
	}
	if (name)
		snprintf(c->name, sizeof(c->name), "%s", name);
	if (has_quota) {
		c->quota = quota;
		c->quota_set = true;
		if (c->ov)
			overlay_set_quota(c->ov, quota);
	}
	boot_fields(reg, c, bf, true, msg, msglen);
	bindings_save(reg);
out:
	pthread_mutex_unlock(&reg->lock);
	return rc;
}
