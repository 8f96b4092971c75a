/*
 * pristinectl.c - the admin CLI: command line, verbs, human output.
 *
 * Each verb is one request to pristined's admin API (src/admin/api.h) on its
 * Unix socket.  Output is a table or a short report for people, or with
 * --json the daemon's JSON, indented, for scripts.  Exit codes are in
 * ctl.h: 0 done, 1 the daemon said no, 2 usage, 3 daemon unreachable.
 */
#include "ctl/ctl.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"
#include "util/version.h"
#define DEFAULT_STATE "/var/lib/pristine"


static void usage(FILE *f)
{
	fprintf(f,
		"usage: pristinectl [--state DIR | --socket PATH] [--json] VERB ...\n"
		"\n"
		"  status                      daemon version, uptime, targets, counts\n"
		"  client list                 clients, their image, overlay use and state\n"
		"  client show ID              one client (ID: its name or initiator IQN)\n"
		"  client reset ID [--disk IMAGE] [--force]\n"
		"                              discard a client's overlays, all its disks or the\n"
		"                              one on IMAGE (--force: even if online)\n"
		"  client add IQN [--name NAME] [--image IMAGE] [--quota SIZE] [--mac MAC]\n"
		"             [--uuid UUID] [--policy persistent|reset-on-boot|scheduled]\n"
		"             [--reset-at HH:MM] [--ip ADDR[/PREFIX][,...]]\n"
		"             [--chap-user NAME --chap-secret-file FILE\n"
		"              [--mutual-user NAME --mutual-secret-file FILE]]\n"
		"                              add a client before its first login\n"
		"  client remove ID [--force]  forget a client and discard its overlay\n"
		"  client set ID [--name NAME] [--image IMAGE] [--quota SIZE] [--mac MAC]\n"
		"             [--uuid UUID] [--policy POLICY] [--reset-at HH:MM]\n"
		"             [--ip ADDR[/PREFIX][,...] | --ip '']\n"
		"             [--chap-user NAME --chap-secret-file FILE\n"
		"              [--mutual-user NAME --mutual-secret-file FILE] | --no-chap] [--force]\n"
		"                              rename, move to another image (discards the\n"
		"                              overlay), change the quota; --ip binds the\n"
		"                              client to source addresses ('' = anywhere)\n"
		"  client disk add ID IMAGE [--policy P] [--quota SIZE]\n"
		"                              give the PC IMAGE as an extra disk (next free LUN);\n"
		"                              P: overlay, discard-on-boot, read-only\n"
		"  client disk remove ID IMAGE take the extra disk away (its overlay discarded)\n"
		"  client wake ID... | --all [--image IMAGE]\n"
		"                              send Wake-on-LAN to the PCs (those online are skipped)\n"
		"  events                      the event log: boots, logins, resets, commits, wakes\n"
		"  session list                iSCSI sessions\n"
		"  session kill TSIH           end a session\n"
		"  image list                  images, current version, draft\n"
		"  image add NAME PATH [--block-size 512|4096] [--target IQN]\n"
		"                              serve a raw file or block device (read-only)\n"
		"  image add NAME --rbd POOL/IMAGE@SNAP [--block-size N] [--target IQN]\n"
		"                              serve a snapshot on Ceph RBD (needs ceph-conf)\n"
		"  image import NAME FILE [--format FMT] [--block-size N] [--rbd POOL] [--no-wait]\n"
		"                              convert a qcow2/vmdk/vhdx/vdi/... file into a new image\n"
		"                              (--rbd: into a new RBD image in POOL)\n"
		"  image versions NAME         versions, messages, times, who depends on each, and\n"
		"                              its boot set: size, boots learned, share in memory\n"
		"  image show NAME             the same, with the extra disks its PCs get and how\n"
		"                              many PCs have it as an extra disk\n"
		"  image disk add NAME IMAGE [--policy P] [--quota SIZE]\n"
		"                              every PC of image NAME gets IMAGE as an extra disk\n"
		"  image disk remove NAME IMAGE\n"
		"                              take that extra disk from every PC of image NAME\n"
		"  image edit NAME --client C [--force]\n"
		"                              open a draft on the current version for client C\n"
		"  image commit NAME -m MSG [--force]\n"
		"                              the draft becomes the next, current version\n"
		"  image discard NAME [--force] throw the draft away\n"
		"  image rollback NAME VERSION make an older version current again\n"
		"  image delete NAME VERSION   free a version's space (refused while anything needs it)\n"
		"  image flatten NAME [--no-wait]\n"
		"                              merge the current version's layers into one file\n"
		"  image export NAME VERSION FILE [--format FMT] [--force] [--no-wait]\n"
		"                              write a version to a raw/qcow2/vmdk/... file\n"
		"  image prefetch NAME [--version N] [--wait]\n"
		"                              read a version's boot set into memory now (default\n"
		"                              the current; --wait: until done, with the time)\n"
		"  job list | job show N       background jobs (flatten, import, export)\n"
		"  cluster status              gateways of the cluster: address, state, last beat,\n"
		"                              sessions, PCs\n"
		"  cluster drain GW [--undo]   move the PCs of gateway GW to the others (--undo:\n"
		"                              GW takes PCs again)\n"
		"  cluster health              exit 0 if this gateway reaches Ceph, 1 if not\n"
		"                              (keepalived's track script)\n"
		"  console passwd [--stdin]    set the web console's password (asked twice, or\n"
		"                              one line from standard input)\n"
		"  pxe dnsmasq [--proxy | --full --range FIRST,LAST[,NETMASK]]\n"
		"              [--server IP] [--interface IF]\n"
		"                              print a dnsmasq configuration (proxy DHCP by\n"
		"                              default) that chains PCs to the boot endpoint\n"
		"\n"
		"options:\n"
		"  --state DIR    daemon state directory (default " DEFAULT_STATE "),\n"
		"                 the socket is DIR/pristined.sock\n"
		"  --socket PATH  the daemon's admin socket (overrides --state)\n"
		"  --json         print the daemon's JSON answer\n"
		"  --help, --version\n"
		"SIZE is bytes or a number with K, M, G or T (powers of 1024): 20G, 512M;\n"
		"0 means no quota.\n"
		"\n"
		"Exit status: 0 ok, 1 the daemon reported an error, 2 usage, 3 daemon unreachable.\n");
}

int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pristinectl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(pristinectl --help lists the verbs)\n");
	return CTL_EUSAGE;
}

/*
 * Do one request.  On success (2xx with a JSON body) returns 0 with
 * *out owned by the caller.  Otherwise prints the reason on stderr and
 * returns the exit code; hint, when non-NULL, is added to a 409 answer.
 * The daemon's refusals say their cause and what lifts it (--force only
 * where it helps), so the verbs pass no hint: a fixed one would be false
 * for every other cause of a 409.
 */
int ctl_call(const struct ctl *c, const char *method, const char *path, const char *body,
	     const char *hint, json_t **out)
{
	struct ctl_reply r;
	char msg[1024];
	int rc;

	*out = NULL;
	rc = ctl_request(c->sock, method, path, body, &r);
	if (rc)
		return rc;
	if (r.status >= 200 && r.status < 300 && json_is_object(r.body)) {
		*out = r.body;
		return CTL_OK;
	}
	if (json_string_value(json_object_get(r.body, "error"))) {
		log_safe(json_string_value(json_object_get(r.body, "error")), msg, sizeof(msg));
		fprintf(stderr, "pristinectl: %s\n", msg);
		if (hint && r.status == 409 && !strstr(msg, "--force"))
			fprintf(stderr, "  %s\n", hint);
		/* A daemon older than this pristinectl does not route the request. */
		if (r.status == 405 || r.status == 501 ||
		    (r.status == 404 && !strcmp(msg, "no such route")))
			fprintf(stderr, "  (this pristined does not support %s %s; is it older "
				"than pristinectl?)\n", method, path);
	} else {
		fprintf(stderr, "pristinectl: unexpected answer from pristined (HTTP %ld%s)\n",
			r.status, r.body ? "" : ", not JSON");
	}
	json_decref(r.body);
	return CTL_EREMOTE;
}

/* One target entry: a string, or an object's name/iqn, or its JSON. */
static void print_target(const json_t *t)
{
	char buf[256];
	char *dump = NULL;
	const char *s = json_string_value(t);

	if (!s)
		s = ctl_str(t, "name", ctl_str(t, "iqn", NULL));
	if (!s)
		s = dump = json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY);
	printf("  %s\n", log_safe(s ? s : "?", buf, sizeof(buf)));
	free(dump);
}

/* One line for the shared read cache of versions on RBD, when the
 * daemon has one: how full, how often it answered, what it read. */
static void print_rbd_cache(const json_t *rc)
{
	char held[32], cap[32], inner[32];
	int64_t hits, waits, misses, all;

	if (!json_is_object(rc))
		return;
	ctl_fmt_size((uint64_t)ctl_int(rc, "bytes"), held, sizeof(held));
	ctl_fmt_size((uint64_t)ctl_int(rc, "capacity_bytes"), cap, sizeof(cap));
	ctl_fmt_size((uint64_t)ctl_int(rc, "inner_bytes"), inner, sizeof(inner));
	hits = ctl_int(rc, "hits");
	waits = ctl_int(rc, "waits");
	misses = ctl_int(rc, "misses");
	all = hits + waits + misses;
	printf("rbd cache: %s of %s, %" PRId64 " hits, %" PRId64 " waits, %" PRId64
	       " misses (%" PRId64 "%% from memory), %s read from Ceph\n", held, cap, hits, waits,
	       misses, all ? (hits + waits) * 100 / all : 0, inner);
}

static int verb_status(const struct ctl *c)
{
	char buf[256], up[32];
	json_t *st, *targets;
	size_t i;
	json_t *t;
	int rc;

	rc = ctl_call(c, "GET", "/v1/status", NULL, NULL, &st);
	if (rc)
		return rc;
	if (c->json) {
		ctl_print_json(st, stdout);
		goto out;
	}
	ctl_fmt_duration((uint64_t)ctl_int(st, "uptime_s"), up, sizeof(up));
	printf("pristined %s, up %s\n", log_safe(ctl_str(st, "version", "?"), buf, sizeof(buf)), up);
	printf("clients:  %" PRId64 "\n", ctl_int(st, "clients"));
	printf("sessions: %" PRId64 "\n", ctl_int(st, "sessions"));
	targets = json_object_get(st, "targets");
	printf("targets:%s\n", json_array_size(targets) ? "" : "  none");
	json_array_foreach(targets, i, t)
		print_target(t);
	print_rbd_cache(json_object_get(st, "rbd_cache"));
out:
	json_decref(st);
	return CTL_OK;
}

/* A row of `client list`: name (or initiator), image, used, quota, state, sessions. */
static void client_row(const json_t *cl, const char **row, char buf[][CTL_ROW_BUF])
{
	const char *name = ctl_str(cl, "name", "");

	ctl_fmt_size((uint64_t)ctl_int(cl, "used_bytes"), buf[0], CTL_ROW_BUF);
	ctl_fmt_quota(cl, "-", buf[1], CTL_ROW_BUF);
	snprintf(buf[2], CTL_ROW_BUF, "%" PRId64, ctl_int(cl, "sessions"));
	row[0] = name[0] ? name : ctl_str(cl, "initiator", "?");
	row[1] = ctl_str(cl, "image", "-");
	row[2] = buf[0];
	row[3] = buf[1];
	row[4] = json_is_true(json_object_get(cl, "online")) ? "online" : "offline";
	row[5] = buf[2];
}

static int verb_client_list(const struct ctl *c)
{
	static const char *const head[] = { "NAME/INITIATOR", "IMAGE", "USED", "QUOTA", "STATE",
					    "SESSIONS" };

	return ctl_list(c, "/v1/clients", "clients", head, 6, client_row);
}

/* Build "/v1/clients/<escaped id><suffix>" into buf; 0 or CTL_EUSAGE. */
static int client_path(const char *id, const char *suffix, char *buf, size_t len)
{
	char *e;

	if (!id[0] || strlen(id) > 255)
		return usage_error("client ID must be 1 to 255 bytes: '%s'", id);
	e = ctl_path_escape(id);
	if (!e) {
		fprintf(stderr, "pristinectl: out of memory\n");
		return CTL_EUSAGE;
	}
	snprintf(buf, len, "/v1/clients/%s%s", e, suffix);
	free(e);
	return 0;
}

/* One "label: value" line of client show; value made safe to print. */
static void show_line(const char *label, const char *value)
{
	char buf[512], lb[80];

	snprintf(lb, sizeof(lb), "%s:", label);
	printf("%-12s %s\n", lb, log_safe(value, buf, sizeof(buf)));
}

/* A string field, or dflt when it is missing or null. */
static void show_str(const json_t *cl, const char *key, const char *label, const char *dflt)
{
	show_line(label, ctl_str(cl, key, dflt));
}

/* A Unix time field as local time, "never" for 0 or null. */
static void show_time(const json_t *cl, const char *key, const char *label)
{
	char when[64];
	int64_t t = ctl_int(cl, key);

	if (t > 0)
		ctl_fmt_time(t, when, sizeof(when));
	else
		snprintf(when, sizeof(when), "never");
	show_line(label, when);
}

/*
 * A client in words: every field the API sends, known ones in a fixed
 * order and format (sizes, local times, "never", "-" for nothing),
 * unknown ones (a newer daemon's) through ctl_fmt_value.  No raw JSON.
 */
static void print_client(const json_t *cl)
{
	static const char *const shown[] = {
		"name", "initiator", "image", "version", "target", "policy", "reset_at",
		"reset_due", "used_bytes", "quota_bytes", "online", "sessions", "maintenance",
		"last_login", "last_boot", "boots", "last_boot_seconds", "mac", "uuid", "boot_uuid", "ip", "chap", "origin",
		"overlay_error", "overlay_dir", "address", "disks",
	};
	char used[32], quota[32], line[320];
	const char *key, *err;
	json_t *v;
	char *text;

	show_str(cl, "name", "name", "-");
	show_str(cl, "initiator", "initiator", "-");
	if (ctl_int(cl, "version") > 0)
		snprintf(line, sizeof(line), "%s, version v%" PRId64, ctl_str(cl, "image", "-"),
			 ctl_int(cl, "version"));
	else
		snprintf(line, sizeof(line), "%s", ctl_str(cl, "image", "-"));
	show_line("image", line);
	show_str(cl, "target", "target", "-");
	if (json_is_string(json_object_get(cl, "reset_at")))
		snprintf(line, sizeof(line), "%s at %s", ctl_str(cl, "policy", "-"),
			 ctl_str(cl, "reset_at", "-"));
	else
		snprintf(line, sizeof(line), "%s", ctl_str(cl, "policy", "-"));
	if (json_is_true(json_object_get(cl, "reset_due")))
		snprintf(line + strlen(line), sizeof(line) - strlen(line), " (reset due at its next boot)");
	show_line("policy", line);
	ctl_fmt_size((uint64_t)ctl_int(cl, "used_bytes"), used, sizeof(used));
	snprintf(line, sizeof(line), "%s (%" PRId64 " bytes)", used, ctl_int(cl, "used_bytes"));
	show_line("used", line);
	ctl_fmt_quota(cl, "none", quota, sizeof(quota));
	show_line("quota", quota);
	snprintf(line, sizeof(line), "%s, %" PRId64 " session(s)%s",
		 json_is_true(json_object_get(cl, "online")) ? "online" : "offline",
		 ctl_int(cl, "sessions"),
		 json_is_true(json_object_get(cl, "maintenance")) ? ", image in maintenance" : "");
	show_line("state", line);
	show_time(cl, "last_login", "last login");
	show_time(cl, "last_boot", "last boot");
	/* boots (the boot endpoint's and logins without a session) since the
	 * daemon started, and how long the last one took (docs/metrics.md) */
	if (ctl_int(cl, "boots") > 0) {
		json_t *secs = json_object_get(cl, "last_boot_seconds");

		snprintf(line, sizeof(line), "%" PRId64 " since the daemon started", ctl_int(cl, "boots"));
		if (json_is_number(secs))
			snprintf(line + strlen(line), sizeof(line) - strlen(line), ", the last took %.1f s",
				 json_number_value(secs));
		show_line("boots", line);
	} else {
		show_line("boots", "none since the daemon started");
	}
	show_str(cl, "mac", "mac", "-");
	show_str(cl, "address", "address", "- (no IPv4 login or boot since the daemon started)");
	show_str(cl, "uuid", "uuid", "-");
	show_str(cl, "boot_uuid", "boot uuid", "-");
	text = ctl_fmt_value(json_object_get(cl, "ip"), "any");
	show_line("ip", text ? text : "?");
	free(text);
	show_str(cl, "chap", "chap", "-");
	show_str(cl, "origin", "origin", "-");
	err = ctl_str(cl, "overlay_error", NULL);
	show_line("overlay", err ? err : "ok");
	if (json_object_get(cl, "overlay_dir"))
		show_str(cl, "overlay_dir", "overlay dir", "-");
	/* Fields this version does not know (a newer daemon's): in words too. */
	json_object_foreach((json_t *)cl, key, v) {
		bool known = false;

		for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
			known |= strcmp(key, shown[i]) == 0;
		if (known)
			continue;
		text = ctl_fmt_value(v, "-");
		show_line(key, text ? text : "?");
		free(text);
	}
	ctl_print_client_disks(cl);
}

static int verb_client_show(const struct ctl *c, const char *id)
{
	char path[1024];
	json_t *cl;
	int rc;

	rc = client_path(id, "", path, sizeof(path));
	if (rc)
		return rc;
	rc = ctl_call(c, "GET", path, NULL, NULL, &cl);
	if (rc)
		return rc;
	if (c->json)
		ctl_print_json(cl, stdout);
	else
		print_client(cl);
	json_decref(cl);
	return CTL_OK;
}

/* client reset ID [--disk IMAGE]: all its disks, or the one on IMAGE. */
static int verb_client_reset(const struct ctl *c, const char *id, bool force, const char *disk)
{
	char path[1024], buf[512], img[128];
	json_t *res, *body;
	int rc;

	rc = client_path(id, "/reset", path, sizeof(path));
	if (rc)
		return rc;
	if (disk && (!disk[0] || strlen(disk) > 63))
		return usage_error("--disk IMAGE must be 1 to 63 characters: '%s'", disk);
	body = json_pack("{s:b}", "force", force);
	if (!body || (disk && json_object_set_new(body, "disk", json_string(disk)))) {
		json_decref(body);
		fprintf(stderr, "pristinectl: out of memory (or IMAGE is not UTF-8)\n");
		return CTL_EREMOTE;
	}
	rc = ctl_call_json(c, "POST", path, body, NULL, &res);
	if (rc)
		return rc;
	if (c->json)
		ctl_print_json(res, stdout);
	else if (disk)
		printf("client %s: disk %s reset\n", log_safe(ctl_str(res, "name", ctl_str(res, "reset", id)),
		       buf, sizeof(buf)), log_safe(disk, img, sizeof(img)));
	else
		printf("client %s reset\n", log_safe(ctl_str(res, "name", ctl_str(res, "reset", id)), buf, sizeof(buf)));
	json_decref(res);
	return CTL_OK;
}

/*
 * Read a CHAP secret from file ("-" = standard input): the first line,
 * without its newline.  Secrets are not taken on the command line, where
 * every user could read them in ps.  Returns 0 or an exit code.
 */
static int secret_field(json_t *body, const char *key, const char *file)
{
	char buf[1024];
	FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	size_t n;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "pristinectl: %s: %s\n", file, strerror(errno));
		return CTL_EUSAGE;
	}
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	if (f != stdin)
		fclose(f);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	if (n == 0) {
		fprintf(stderr, "pristinectl: %s: no secret in it\n", file);
		rc = CTL_EUSAGE;
	} else if (json_object_set_new(body, key, json_string(buf))) {
		fprintf(stderr, "pristinectl: the secret in %s is not UTF-8 text\n", file);
		rc = CTL_EUSAGE;
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/*
 * Put the --name, --image and --quota of o into the JSON object body.
 * Returns 0, CTL_EUSAGE for a bad SIZE (message printed), or
 * CTL_EREMOTE when out of memory.
 */
static int body_fields(json_t *body, const struct ctl_opts *o)
{
	uint64_t quota;
	char why[200];
	int rc = 0;

	/* the daemon's own SIZE parser, so what the options and the file
	 * take is taken here, and refused before asking the daemon */
	if (o->quota && parse_size(o->quota, &quota, why, sizeof(why)))
		return usage_error("--quota: %s", why);
	if (o->name)
		rc |= json_object_set_new(body, "name", json_string(o->name));
	if (o->image)
		rc |= json_object_set_new(body, "image", json_string(o->image));
	if (o->quota)
		rc |= json_object_set_new(body, "quota_bytes", json_integer((json_int_t)quota));
	if (o->mac)
		rc |= json_object_set_new(body, "mac", json_string(o->mac));
	if (o->uuid)
		rc |= json_object_set_new(body, "uuid", json_string(o->uuid));
	if (o->policy)
		rc |= json_object_set_new(body, "policy", json_string(o->policy));
	if (o->reset_at)
		rc |= json_object_set_new(body, "reset_at", json_string(o->reset_at));
	if (o->ip)
		rc |= json_object_set_new(body, "ip", json_string(o->ip));
	if (o->no_chap && (o->chap_user || o->chap_secret_file || o->mutual_user ||
			   o->mutual_secret_file))
		return usage_error("--no-chap does not go with other CHAP options");
	if (o->no_chap)
		rc |= json_object_set_new(body, "chap_user", json_string(""));
	if (o->chap_user)
		rc |= json_object_set_new(body, "chap_user", json_string(o->chap_user));
	if (o->mutual_user)
		rc |= json_object_set_new(body, "mutual_user", json_string(o->mutual_user));
	if (!rc && o->chap_secret_file &&
	    (rc = secret_field(body, "chap_secret", o->chap_secret_file)))
		return rc;
	if (!rc && o->mutual_secret_file &&
	    (rc = secret_field(body, "mutual_secret", o->mutual_secret_file)))
		return rc;
	if (rc) {
		fprintf(stderr, "pristinectl: out of memory (or an option is not UTF-8)\n");
		return CTL_EREMOTE;
	}
	return 0;
}

/*
 * Send body (reference stolen) as JSON with method to path; see call().
 * Returns 0 with *out owned by the caller, or the exit code.
 */
int ctl_call_json(const struct ctl *c, const char *method, const char *path, json_t *body,
		  const char *hint, json_t **out)
{
	char *text = json_dumps(body, JSON_COMPACT);
	int rc;

	json_decref(body);
	*out = NULL;
	if (!text) {
		fprintf(stderr, "pristinectl: cannot encode the request\n");
		return CTL_EREMOTE;
	}
	rc = ctl_call(c, method, path, text, hint, out);
	free(text);
	return rc;
}

static int verb_client_add(const struct ctl *c, const char *iqn, const struct ctl_opts *o)
{
	char buf[512], img[256], quota[32];
	json_t *body, *cl;
	int rc;

	if (!iqn[0])
		return usage_error("client add needs the client's initiator IQN");
	body = json_object();
	if (!body || json_object_set_new(body, "initiator", json_string(iqn))) {
		json_decref(body);
		fprintf(stderr, "pristinectl: out of memory (or the IQN is not UTF-8)\n");
		return CTL_EREMOTE;
	}
	rc = body_fields(body, o);
	if (rc) {
		json_decref(body);
		return rc;
	}
	rc = ctl_call_json(c, "POST", "/v1/clients", body, NULL, &cl);
	if (rc)
		return rc;
	if (c->json) {
		ctl_print_json(cl, stdout);
	} else {
		log_safe(ctl_str(cl, "image", "-"), img, sizeof(img));
		if (ctl_int(cl, "quota_bytes") > 0) {
			ctl_fmt_quota(cl, "none", quota, sizeof(quota));
			printf("client %s added (image %s, quota %s)\n",
			       log_safe(ctl_str(cl, "name", iqn), buf, sizeof(buf)), img, quota);
		} else {
			printf("client %s added (image %s)\n",
			       log_safe(ctl_str(cl, "name", iqn), buf, sizeof(buf)), img);
		}
	}
	json_decref(cl);
	return CTL_OK;
}

static int verb_client_remove(const struct ctl *c, const char *id, bool force)
{
	char path[1024], buf[512];
	json_t *res;
	int rc;

	rc = client_path(id, "/remove", path, sizeof(path));
	if (rc)
		return rc;
	/* No 409 hint: the daemon's message says when --force helps, and a
	 * client of the configuration file is a 409 that --force cannot move. */
	rc = ctl_call(c, "POST", path, force ? "{\"force\":true}" : "{\"force\":false}", NULL, &res);
	if (rc)
		return rc;
	if (c->json)
		ctl_print_json(res, stdout);
	else
		printf("client %s removed\n", log_safe(ctl_str(res, "removed", id), buf, sizeof(buf)));
	json_decref(res);
	return CTL_OK;
}

/*
 * client set: the answer is the client as it is now; the line printed
 * names what was asked for, with the daemon's values.
 */
static int verb_client_set(const struct ctl *c, const char *id, const struct ctl_opts *o)
{
	char path[1024], buf[512], line[1024] = "", quota[32];
	json_t *body, *cl;
	size_t n = 0;
	int rc;

	if (!o->name && !o->image && !o->quota && !o->mac && !o->policy && !o->reset_at && !o->uuid &&
	    !o->ip && !o->chap_user && !o->no_chap && !o->chap_secret_file && !o->mutual_user &&
	    !o->mutual_secret_file)
		return usage_error("client set needs at least one of --name, --image, --quota, --mac, "
				   "--uuid, --policy, --reset-at, --ip, --chap-user, --no-chap");
	rc = client_path(id, "/set", path, sizeof(path));
	if (rc)
		return rc;
	body = json_object();
	if (!body) {
		fprintf(stderr, "pristinectl: out of memory\n");
		return CTL_EREMOTE;
	}
	rc = body_fields(body, o);
	if (!rc && o->force && json_object_set_new(body, "force", json_true()))
		rc = CTL_EREMOTE;
	if (rc) {
		json_decref(body);
		return rc;
	}
	rc = ctl_call_json(c, "POST", path, body, NULL, &cl);	/* no hint: see remove */
	if (rc)
		return rc;
	if (c->json) {
		ctl_print_json(cl, stdout);
		goto out;
	}
	if (o->name) {
		const char *nm = ctl_str(cl, "name", "");

		n += (size_t)snprintf(line + n, sizeof(line) - n, "%sname %s", n ? ", " : "",
				      log_safe(nm[0] ? nm : "none", buf, sizeof(buf)));
	}
	if (o->image && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%simage %s", n ? ", " : "",
				      log_safe(ctl_str(cl, "image", "-"), buf, sizeof(buf)));
	if (o->quota && n < sizeof(line)) {
		ctl_fmt_quota(cl, "none", quota, sizeof(quota));
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%squota %s", n ? ", " : "", quota);
	}
	if (o->mac && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%smac %s", n ? ", " : "",
				      log_safe(ctl_str(cl, "mac", "none"), buf, sizeof(buf)));
	if (o->ip && n < sizeof(line)) {
		json_t *ips = json_object_get(cl, "ip"), *v;
		size_t i;

		n += (size_t)snprintf(line + n, sizeof(line) - n, "%sip ", n ? ", " : "");
		if (!json_array_size(ips) && n < sizeof(line))
			n += (size_t)snprintf(line + n, sizeof(line) - n, "any");
		json_array_foreach(ips, i, v)
			if (n < sizeof(line))
				n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", i ? "," : "",
						      log_safe(json_string_value(v) ? json_string_value(v) : "?",
							       buf, sizeof(buf)));
	}
	if ((o->chap_user || o->no_chap || o->chap_secret_file || o->mutual_user ||
	     o->mutual_secret_file) && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%schap %s", n ? ", " : "",
				      log_safe(ctl_str(cl, "chap", "?"), buf, sizeof(buf)));
	if ((o->policy || o->reset_at) && n < sizeof(line))
		snprintf(line + n, sizeof(line) - n, "%spolicy %s%s%s", n ? ", " : "",
			 log_safe(ctl_str(cl, "policy", "-"), buf, sizeof(buf)),
			 json_is_string(json_object_get(cl, "reset_at")) ? " at " : "",
			 ctl_str(cl, "reset_at", ""));
	printf("client %s: %s\n", log_safe(id, buf, sizeof(buf)), line);
out:
	json_decref(cl);
	return CTL_OK;
}

/* A row of `session list`: TSIH, initiator, target, peer, type, since. */
static void session_row(const json_t *s, const char **row, char buf[][CTL_ROW_BUF])
{
	snprintf(buf[0], CTL_ROW_BUF, "%" PRId64, ctl_int(s, "tsih"));
	ctl_fmt_time(ctl_int(s, "since"), buf[1], CTL_ROW_BUF);
	row[0] = buf[0];
	row[1] = ctl_str(s, "initiator", "-");
	row[2] = ctl_str(s, "target", "-");
	row[3] = ctl_str(s, "peer", "-");
	row[4] = ctl_str(s, "type", "-");
	row[5] = buf[1];
}

static int verb_session_list(const struct ctl *c)
{
	static const char *const head[] = { "TSIH", "INITIATOR", "TARGET", "PEER", "TYPE", "SINCE" };

	return ctl_list(c, "/v1/sessions", "sessions", head, 6, session_row);
}

static int verb_session_kill(const struct ctl *c, const char *arg)
{
	char path[64];
	unsigned tsih;
	json_t *res;
	int rc;

	if (parse_uint(arg, 1, 65535, &tsih, NULL, 0))
		return usage_error("TSIH must be a number from 1 to 65535, not '%s'", arg);
	snprintf(path, sizeof(path), "/v1/sessions/%u", tsih);
	rc = ctl_call(c, "DELETE", path, NULL, NULL, &res);
	if (rc)
		return rc;
	if (c->json)
		ctl_print_json(res, stdout);
	else
		printf("session %u ended\n", tsih);
	json_decref(res);
	return CTL_OK;
}

int opts_only(const struct ctl_opts *o, const char *verb, const char *allowed)
{
	const char *bad = o->force && !strchr(allowed, 'f') ? "--force" :
			  o->all && !strchr(allowed, 'a') ? "--all" :
			  o->name && !strchr(allowed, 'n') ? "--name" :
			  o->image && !strchr(allowed, 'i') ? "--image" :
			  o->quota && !strchr(allowed, 'q') ? "--quota" :
			  o->client && !strchr(allowed, 'c') ? "--client" :
			  o->message && !strchr(allowed, 'm') ? "--message" :
			  o->format && !strchr(allowed, 'F') ? "--format" :
			  o->block_size && !strchr(allowed, 'b') ? "--block-size" :
			  o->target && !strchr(allowed, 't') ? "--target" :
			  o->rbd && !strchr(allowed, 'r') ? "--rbd" :
			  o->no_wait && !strchr(allowed, 'w') ? "--no-wait" :
			  o->proxy && !strchr(allowed, 'P') ? "--proxy" :
			  o->full && !strchr(allowed, 'D') ? "--full" :
			  o->server && !strchr(allowed, 'S') ? "--server" :
			  o->interface && !strchr(allowed, 'I') ? "--interface" :
			  o->range && !strchr(allowed, 'R') ? "--range" :
			  o->mac && !strchr(allowed, 'M') ? "--mac" :
			  o->policy && !strchr(allowed, 'p') ? "--policy" :
			  o->disk && !strchr(allowed, 'd') ? "--disk" :
			  o->reset_at && !strchr(allowed, 'A') ? "--reset-at" :
			  o->uuid && !strchr(allowed, 'U') ? "--uuid" :
			  o->ip && !strchr(allowed, 'X') ? "--ip" :
			  o->undo && !strchr(allowed, 'u') ? "--undo" :
			  o->from_stdin && !strchr(allowed, 's') ? "--stdin" :
			  o->version && !strchr(allowed, 'V') ? "--version" :
			  o->wait && !strchr(allowed, 'W') ? "--wait" :
			  (o->chap_user || o->no_chap || o->chap_secret_file || o->mutual_user ||
			   o->mutual_secret_file) && !strchr(allowed, 'C') ? "--chap-*" : NULL;

	if (!bad)
		return 0;
	return usage_error("%s does not go with %s", bad, verb);
}

/* client VERB ...: args are what follows "client", options removed. */
static int do_client(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o)
{
	const char *v = argc ? argv[0] : "";
	char what[32];
	int rc;

	if (!argc)
		return usage_error("client needs a verb: list, show ID, reset ID, add IQN, "
				   "remove ID, set ID, disk add|remove ID IMAGE, wake ID...");
	snprintf(what, sizeof(what), "client %s", v);
	if (!strcmp(v, "list") && argc == 1)
		return (rc = opts_only(o, what, "")) ? rc : verb_client_list(c);
	if (!strcmp(v, "show") && argc == 2)
		return (rc = opts_only(o, what, "")) ? rc : verb_client_show(c, argv[1]);
	if (!strcmp(v, "reset") && argc == 2)
		return (rc = opts_only(o, what, "fd")) ? rc :
			verb_client_reset(c, argv[1], o->force, o->disk);
	if (!strcmp(v, "disk"))
		return ctl_disk_verb(c, false, argc - 1, argv + 1, o);
	if (!strcmp(v, "add") && argc == 2)
		return (rc = opts_only(o, what, "niqMpAUXC")) ? rc : verb_client_add(c, argv[1], o);
	if (!strcmp(v, "remove") && argc == 2)
		return (rc = opts_only(o, what, "f")) ? rc : verb_client_remove(c, argv[1], o->force);
	if (!strcmp(v, "set") && argc == 2)
		return (rc = opts_only(o, what, "fniqMpAUXC")) ? rc : verb_client_set(c, argv[1], o);
	if (!strcmp(v, "wake"))
		return (rc = opts_only(o, what, "ia")) ? rc : ctl_client_wake(c, argc - 1, argv + 1, o);
	if (argc == 1 && !strcmp(v, "add"))
		return usage_error("client add needs the client's initiator IQN");
	if (argc == 1 && (!strcmp(v, "show") || !strcmp(v, "reset") || !strcmp(v, "remove") ||
			  !strcmp(v, "set")))
		return usage_error("client %s needs a client ID (its name or IQN)", v);
	if (!strcmp(v, "list") || !strcmp(v, "show") || !strcmp(v, "reset") ||
	    !strcmp(v, "add") || !strcmp(v, "remove") || !strcmp(v, "set"))
		return usage_error("wrong arguments for client %s", v);
	return usage_error("unknown client verb '%s'", v);
}

/* session VERB ...: args are what follows "session". */
static int do_session(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o)
{
	const char *v = argc ? argv[0] : "";
	int rc = opts_only(o, "session verbs", "");

	if (rc)
		return rc;
	if (!strcmp(v, "list") && argc == 1)
		return verb_session_list(c);
	if (!strcmp(v, "kill") && argc == 2)
		return verb_session_kill(c, argv[1]);
	if (!strcmp(v, "list") || !strcmp(v, "kill"))
		return usage_error("wrong arguments for session %s", v);
	return usage_error("session needs a verb: list, kill TSIH");
}

/*
 * Take a global option at argv[*i] (with its value in the same word
 * after '=' or in the next one) into *val.  Returns 1 if consumed, 0 if
 * argv[*i] is not this option, -1 when its value is missing.
 */
static int take_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n))
		return 0;
	if (argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n])
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

int main(int argc, char **argv)
{
	const char *state = DEFAULT_STATE, *sock = NULL, *verb;
	struct ctl c = { .json = false };
	struct ctl_opts o = { .force = false };
	char *args[64];
	int nargs = 0, rc, i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		int t;

		if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
			printf("pristinectl %s\n", PRISTINE_VERSION);
			return CTL_OK;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return CTL_OK;
		}
		if (!strcmp(a, "--json")) {
			c.json = true;
			continue;
		}
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		t = take_value(argc, argv, &i, "--state", &state);
		if (!t)
			t = take_value(argc, argv, &i, "--socket", &sock);
		if (t < 0)
			return usage_error("%s needs a value", a);
		if (!t)
			return usage_error("unknown option '%s'", a);
	}
	if (i >= argc) {
		usage(stderr);
		return CTL_EUSAGE;
	}
	verb = argv[i++];
	/*
	 * After the verb, options may appear anywhere; the verb checks which
	 * it takes.  "--" ends them (an ID or a value may start with '-').
	 */
	for (; i < argc; i++) {
		const char *a = argv[i];
		int t;

		if (!strcmp(a, "--")) {
			while (++i < argc && nargs < (int)(sizeof(args) / sizeof(args[0])))
				args[nargs++] = argv[i];
			if (i < argc)
				return usage_error("too many arguments");
			break;
		}
		if (!strcmp(a, "--json")) {
			c.json = true;
			continue;
		}
		if (!strcmp(a, "--force")) {
			o.force = true;
			continue;
		}
		if (!strcmp(a, "--no-wait")) {
			o.no_wait = true;
			continue;
		}
		if (!strcmp(a, "--wait")) {
			o.wait = true;
			continue;
		}
		if (!strcmp(a, "--all")) {
			o.all = true;
			continue;
		}
		if (!strcmp(a, "--undo")) {
			o.undo = true;
			continue;
		}
		if (!strcmp(a, "--stdin")) {
			o.from_stdin = true;
			continue;
		}
		if (!strcmp(a, "--no-chap")) {
			o.no_chap = true;
			continue;
		}
		if (!strcmp(a, "--proxy") || !strcmp(a, "--full")) {
			*(a[2] == 'p' ? &o.proxy : &o.full) = true;
			continue;
		}
		if (a[0] == '-' && a[1]) {
			t = take_value(argc, argv, &i, "--name", &o.name);
			if (!t)
				t = take_value(argc, argv, &i, "--image", &o.image);
			if (!t)
				t = take_value(argc, argv, &i, "--quota", &o.quota);
			if (!t)
				t = take_value(argc, argv, &i, "--client", &o.client);
			if (!t)
				t = take_value(argc, argv, &i, "--message", &o.message);
			if (!t)
				t = take_value(argc, argv, &i, "-m", &o.message);
			if (!t)
				t = take_value(argc, argv, &i, "--format", &o.format);
			if (!t)
				t = take_value(argc, argv, &i, "--block-size", &o.block_size);
			if (!t)
				t = take_value(argc, argv, &i, "--target", &o.target);
			if (!t)
				t = take_value(argc, argv, &i, "--rbd", &o.rbd);
			if (!t)
				t = take_value(argc, argv, &i, "--server", &o.server);
			if (!t)
				t = take_value(argc, argv, &i, "--interface", &o.interface);
			if (!t)
				t = take_value(argc, argv, &i, "--range", &o.range);
			if (!t)
				t = take_value(argc, argv, &i, "--mac", &o.mac);
			if (!t)
				t = take_value(argc, argv, &i, "--policy", &o.policy);
			if (!t)
				t = take_value(argc, argv, &i, "--disk", &o.disk);
			if (!t)
				t = take_value(argc, argv, &i, "--reset-at", &o.reset_at);
			if (!t)
				t = take_value(argc, argv, &i, "--uuid", &o.uuid);
			if (!t)
				t = take_value(argc, argv, &i, "--version", &o.version);
			if (!t)
				t = take_value(argc, argv, &i, "--ip", &o.ip);
			if (!t)
				t = take_value(argc, argv, &i, "--chap-user", &o.chap_user);
			if (!t)
				t = take_value(argc, argv, &i, "--chap-secret-file", &o.chap_secret_file);
			if (!t)
				t = take_value(argc, argv, &i, "--mutual-user", &o.mutual_user);
			if (!t)
				t = take_value(argc, argv, &i, "--mutual-secret-file", &o.mutual_secret_file);
			if (t < 0)
				return usage_error("%s needs a value", a);
			if (!t)
				return usage_error("unknown option '%s'", a);
			continue;
		}
		if (nargs >= (int)(sizeof(args) / sizeof(args[0])))
			return usage_error("too many arguments");
		args[nargs++] = argv[i];
	}
	if (sock)
		rc = snprintf(c.sock, sizeof(c.sock), "%s", sock);
	else
		rc = snprintf(c.sock, sizeof(c.sock), "%s/pristined.sock", state);
	if (rc < 0 || (size_t)rc >= sizeof(c.sock))
		return usage_error("socket path too long");

	if (!strcmp(verb, "help")) {
		usage(stdout);
		return CTL_OK;
	}
	if (strcmp(verb, "status") && strcmp(verb, "client") && strcmp(verb, "events") &&
	    strcmp(verb, "session") &&
	    strcmp(verb, "image") && strcmp(verb, "job") && strcmp(verb, "pxe") &&
	    strcmp(verb, "cluster") && strcmp(verb, "console"))
		return usage_error("unknown verb '%s'", verb);
	if (!strcmp(verb, "status") && (nargs || (rc = opts_only(&o, "status", ""))))
		return nargs ? usage_error("status takes no arguments") : rc;
	if (ctl_http_init()) {
		fprintf(stderr, "pristinectl: cannot initialise libcurl\n");
		return CTL_EUNREACH;
	}
	if (!strcmp(verb, "status"))
		rc = verb_status(&c);
	else if (!strcmp(verb, "client"))
		rc = do_client(&c, nargs, args, &o);
	else if (!strcmp(verb, "events"))
		rc = ctl_events(&c, nargs, args, &o);
	else if (!strcmp(verb, "image"))
		rc = do_image(&c, nargs, args, &o);
	else if (!strcmp(verb, "job"))
		rc = do_job(&c, nargs, args, &o);
	else if (!strcmp(verb, "pxe"))
		rc = do_pxe(&c, nargs, args, &o);
	else if (!strcmp(verb, "cluster"))
		rc = do_cluster(&c, nargs, args, &o);
	else if (!strcmp(verb, "console"))
		rc = do_console(&c, nargs, args, &o);
	else
		rc = do_session(&c, nargs, args, &o);
	ctl_http_cleanup();
	return rc;
}
