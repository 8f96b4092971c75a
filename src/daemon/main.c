/*
 * main.c - pristined: command line, quick mode, start and orderly stop.
 *
 * Quick mode exports one image as LUN 0 of one target:
 *   pristined --image PATH [--listen ADDR:PORT]... [--state DIR]
 *             [--target IQN] [--block-size 512|4096] [--quota SIZE] ...
 * The image is opened read-only, always.  Every initiator that logs in is
 * enrolled with its own copy-on-write overlay in STATE/overlays/, which
 * persists across restarts until an admin resets it (pristinectl client
 * reset).  --read-only instead serves the image write-protected to every
 * initiator, with no overlays.  The admin API listens on
 * STATE/pristined.sock (or --socket).
 *
 * Config mode (-c FILE, pristine.conf(5)) serves every [image] under its
 * own target, declares the configured clients, and follows [defaults]
 * enroll = auto|deny for initiators nobody configured.
 */
#include "admin/api.h"
#include "lab/clients.h"
#include "lab/jobs.h"
#include "daemon/config.h"
#include "daemon/listen.h"
#include "daemon/notify.h"
#include "daemon/privs.h"
#include "boot/boot.h"
#include "admin/ops.h"
#include "proto/iscsi.h"
#include "scsi/scsi.h"
#include "storage/backend.h"
#include "util/log.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>

#define PRISTINE_VERSION "0.1.0"

struct options {
	const char *config;
	const char *image;
	const char *state;
	const char *target;
	const char *listen[MAX_PORTALS];
	unsigned nlisten;
	bool read_only;
	const char *socket;
	uint64_t quota;
	uint64_t floor;
	uint32_t block_size;
	int nop_interval;          /* -1: default */
	const char *boot_listen;   /* HTTP boot endpoint, NULL = off */
	const char *boot_portal;
	enum cfg_policy policy;
	int reset_at;
	const char *user;          /* --user: run as this user after binding */
	bool zero_copy;            /* --zero-copy */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pristined --image PATH [options]    (quick mode)\n"
		"       pristined -c FILE [-v LEVEL]          (configuration file, see pristine.conf(5))\n"
		"  -i, --image PATH        raw image file or block device to export as LUN 0\n"
		"  -l, --listen ADDR:PORT  portal to listen on (repeatable; default *:3260)\n"
		"  -s, --state DIR         state directory (default /var/lib/pristine)\n"
		"  -t, --target IQN        target name (default derived from the image name)\n"
		"  -r, --read-only         serve the image write-protected to all, no overlays\n"
		"  -q, --quota SIZE        space each client's overlay may hold (e.g. 20G; default none)\n"
		"  -f, --store-floor SIZE  free space to keep on the state file system (default 512M)\n"
		"  -S, --socket PATH       admin API socket (default STATE/pristined.sock)\n"
		"  -b, --block-size N      logical block size, 512 or 4096 (default 512)\n"
		"  -n, --nop-interval SECS idle time before a NOP-In ping, 0 = never (default 30)\n"
		"  -B, --boot-listen ADDR:PORT  serve iPXE boot scripts on http://ADDR:PORT/boot.ipxe\n"
		"  -P, --boot-portal HOST[:PORT] iSCSI portal the scripts name (default: the address\n"
		"                          the PC reached the boot endpoint at, and the first --listen port)\n"
		"  -p, --policy POLICY     persistent | reset-on-boot | scheduled (default persistent)\n"
		"  -R, --reset-at HH:MM    the daily reset time of the scheduled policy\n"
		"  -u, --user NAME         once every socket is bound, run as NAME with no capabilities\n"
		"                          (start as root; default: user = of -c FILE, else $PRISTINED_USER)\n"
		"      --zero-copy         send large reads straight from the page cache (splice)\n"
		"                          instead of through a buffer (default: off)\n"
		"  -v, --log-level LEVEL   error|warn|notice|info|debug (default info)\n"
		"  -h, --help              this text\n"
		"  -V, --version           print the version\n");
}

/* FNV-1a: a stable 64-bit id from a name, for VPD identifiers. */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Until per-client overlays are wired in: every initiator shares LUN 0. */
static int shared_attach(void *ctx, struct iscsi_target *t, const char *initiator,
			 struct scsi_target **scsi, void **handle, char *msg, size_t msglen)
{
	(void)t; (void)initiator; (void)msg; (void)msglen;
	*scsi = ctx;
	*handle = NULL;
	return 0;
}

/* Image name from its file name: lower case, [a-z0-9-], no extension. */
static void default_name(const char *image, char *out, size_t len)
{
	const char *base = strrchr(image, '/');
	char name[64];
	size_t n = 0;

	base = base ? base + 1 : image;
	for (; *base && *base != '.' && n < sizeof(name) - 1; base++) {
		unsigned char ch = (unsigned char)*base;
		name[n++] = isalnum(ch) || ch == '-' ? (char)tolower(ch) : '-';
	}
	name[n] = '\0';
	snprintf(out, len, "%s", n ? name : "image");
}

/* "123", "512K", "20G", "1T" -> bytes.  0 or -1. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;

	if (end == s || *s == '-')
		return -1;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -1;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end || (shift && v > (~0ull >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "listen", required_argument, NULL, 'l' },
		{ "state", required_argument, NULL, 's' },
		{ "target", required_argument, NULL, 't' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "quota", required_argument, NULL, 'q' },
		{ "store-floor", required_argument, NULL, 'f' },
		{ "socket", required_argument, NULL, 'S' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "nop-interval", required_argument, NULL, 'n' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "config", required_argument, NULL, 'c' },
		{ "boot-listen", required_argument, NULL, 'B' },
		{ "boot-portal", required_argument, NULL, 'P' },
		{ "policy", required_argument, NULL, 'p' },
		{ "reset-at", required_argument, NULL, 'R' },
		{ "user", required_argument, NULL, 'u' },
		{ "zero-copy", no_argument, NULL, 'Z' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	enum log_level lvl;

	memset(o, 0, sizeof(*o));
	o->state = "/var/lib/pristine";
	o->block_size = 512;
	o->nop_interval = -1;
	o->floor = 512ull << 20;
	o->reset_at = -1;
	while ((ch = getopt_long(argc, argv, "i:l:s:t:rq:f:S:b:n:v:c:hVB:P:p:R:u:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'i': o->image = optarg; break;
		case 's': o->state = optarg; break;
		case 't': o->target = optarg; break;
		case 'r': o->read_only = true; break;
		case 'S': o->socket = optarg; break;
		case 'q':
		case 'f':
			if (parse_size(optarg, ch == 'q' ? &o->quota : &o->floor)) {
				fprintf(stderr, "pristined: bad size '%s' (e.g. 512M, 20G)\n", optarg);
				return -1;
			}
			break;
		case 'l':
			if (o->nlisten >= MAX_PORTALS) {
				fprintf(stderr, "pristined: at most %d --listen\n", MAX_PORTALS);
				return -1;
			}
			o->listen[o->nlisten++] = optarg;
			break;
		case 'b':
			o->block_size = (uint32_t)strtoul(optarg, NULL, 10);
			if (o->block_size != 512 && o->block_size != 4096) {
				fprintf(stderr, "pristined: --block-size must be 512 or 4096\n");
				return -1;
			}
			break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 3600) {
				fprintf(stderr, "pristined: --nop-interval must be 0..3600 seconds\n");
				return -1;
			}
			o->nop_interval = (int)v;
			break;
		}
		case 'v':
			if (log_parse_level(optarg, &lvl)) {
				fprintf(stderr, "pristined: unknown log level '%s'\n", optarg);
				return -1;
			}
			log_set_level(lvl);
			break;
		case 'c': o->config = optarg; break;
		case 'B': o->boot_listen = optarg; break;
		case 'P':
			if (!boot_host_valid(optarg)) {
				fprintf(stderr, "pristined: --boot-portal wants HOST or HOST:PORT\n");
				return -1;
			}
			o->boot_portal = optarg;
			break;
		case 'p':
			if (cfg_parse_policy(optarg, &o->policy)) {
				fprintf(stderr, "pristined: --policy is persistent, reset-on-boot or scheduled\n");
				return -1;
			}
			break;
		case 'R':
			if ((o->reset_at = cfg_parse_hhmm(optarg)) < 0) {
				fprintf(stderr, "pristined: --reset-at wants HH:MM\n");
				return -1;
			}
			break;
		case 'u':
			if (!privs_user_name_valid(optarg)) {
				fprintf(stderr, "pristined: --user '%s' is not a user name\n", optarg);
				return -1;
			}
			o->user = optarg;
			break;
		case 'Z': o->zero_copy = true; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("pristined %s\n", PRISTINE_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pristined: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!o->image == !o->config) {
		fprintf(stderr, "pristined: give either --image PATH (quick mode) or -c FILE\n");
		usage(stderr);
		return -1;
	}
	if (o->target && (strlen(o->target) >= ISCSI_NAME_MAX || strncmp(o->target, "iqn.", 4) != 0)) {
		fprintf(stderr, "pristined: --target must be an iqn. name shorter than %d bytes\n",
			ISCSI_NAME_MAX);
		return -1;
	}
	if (o->nlisten == 0)
		o->listen[o->nlisten++] = "*:3260";
	return 0;
}

static int ensure_state_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		log_err("state directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		log_err("state directory %s is not a directory", dir);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	struct config cfg = { 0 };
	bool have_cfg = false;
	struct iscsi_server srv;
	struct portal_set ps = { .n = 0 };
	struct image **imgs = NULL;
	unsigned nimg = 0;
	struct registry reg = { 0 };
	struct daemon_ctx dctx = { .reg = &reg, .srv = &srv };
	struct control_ops ops;
	struct api *api = NULL;
	struct boot_server *boot = NULL;
	struct boot_hooks boot_hooks = { .resolve = registry_boot_resolve, .ctx = &reg };
	char boot_listen[80] = "";
	struct scsi_target *shared = NULL;
	char sock[PATH_MAX + 32], state[PATH_MAX];
	const char *listen[MAX_PORTALS];
	unsigned nlisten;
	uint64_t floor, quota;
	int nop;
	bool reg_open = false;
	struct privs privs = { .prepared = false };
	const char *user;
	sigset_t set;
	int rc = 1;

	iscsi_server_defaults(&srv);
	if (parse_args(argc, argv, &o))
		return 2;
	if (o.read_only && o.boot_listen) {
		fprintf(stderr, "pristined: --read-only serves no clients of its own: no --boot-listen\n");
		return 2;
	}
	if (o.policy == POLICY_SCHEDULED && o.reset_at < 0) {
		fprintf(stderr, "pristined: --policy scheduled needs --reset-at HH:MM\n");
		return 2;
	}
	if (o.config && (o.read_only || o.image || o.boot_listen || o.boot_portal || o.reset_at >= 0 ||
			 o.policy != POLICY_PERSISTENT)) {
		fprintf(stderr, "pristined: -c FILE takes everything from the file (no --image, --read-only, "
			"--boot-*, --policy, --reset-at)\n");
		return 2;
	}
	if (o.config) {
		char err[4096];
		if (config_load(o.config, &cfg, err, sizeof(err))) {
			fprintf(stderr, "%s\npristined: %s: not started\n", err, o.config);
			return 2;
		}
		have_cfg = true;
		if (log_get_level() == LOG_INFO)   /* -v on the command line wins */
			log_set_level(cfg.log_level);
	}
	/* Signals are read from a signalfd by the accept loop only. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	log_notice("pristined %s starting%s%s", PRISTINE_VERSION, have_cfg ? " with " : "",
		   have_cfg ? o.config : "");
	/* Privileges (issue 7): --user, else the file's user =, else the
	 * environment's PRISTINED_USER (the systemd unit's default).  The
	 * per-thread part of the drop must precede every thread. */
	user = o.user ? o.user : have_cfg && cfg.user[0] ? cfg.user : getenv("PRISTINED_USER");
	if (user && user[0] && privs_prepare(&privs, user))
		goto out;
	nimg = have_cfg ? cfg.nimages : 1;
	imgs = calloc(nimg, sizeof(*imgs));
	for (unsigned i = 0; imgs && i < nimg; i++)
		if (!(imgs[i] = calloc(1, sizeof(**imgs))))
			goto out;
	if (!imgs)
		goto out;
	if (have_cfg) {
		snprintf(state, sizeof(state), "%s", cfg.state);
		for (unsigned i = 0; i < cfg.nlisten; i++)
			listen[i] = cfg.listen[i];
		nlisten = cfg.nlisten;
		snprintf(sock, sizeof(sock), "%s", cfg.socket);
		snprintf(boot_listen, sizeof(boot_listen), "%s", cfg.boot_listen);
		floor = cfg.store_floor;
		quota = cfg.default_quota;
		nop = (int)cfg.nop_interval;
		for (unsigned i = 0; i < nimg; i++) {
			const struct cfg_image *ci = &cfg.images[i];
			imgs[i]->origin = IMG_CONFIG;
			if (image_open_source(imgs[i], ci->name, ci->path, ci->target, ci->block_size)) {
				log_err("%s:%d: image %s cannot be served", o.config, ci->line, ci->name);
				goto out;
			}
		}
	} else {
		char name[64], target[ISCSI_NAME_MAX];
		snprintf(state, sizeof(state), "%s", o.state);
		for (unsigned i = 0; i < o.nlisten; i++)
			listen[i] = o.listen[i];
		nlisten = o.nlisten;
		if (o.socket)
			snprintf(sock, sizeof(sock), "%s", o.socket);
		else
			snprintf(sock, sizeof(sock), "%s/pristined.sock", o.state);
		floor = o.floor;
		if (o.boot_listen)
			snprintf(boot_listen, sizeof(boot_listen), "%s", o.boot_listen);
		quota = o.quota;
		nop = o.nop_interval;
		default_name(o.image, name, sizeof(name));
		if (o.target)
			snprintf(target, sizeof(target), "%s", o.target);
		else
			snprintf(target, sizeof(target), "iqn.2026-11.org.pristine:%s", name);
		imgs[0]->origin = IMG_QUICK;
		if (image_open_source(imgs[0], name, o.image, target, o.block_size))
			goto out;
	}
	if (ensure_state_dir(state))
		goto out;
	{
		/* Paths recorded in image.json must not depend on the cwd. */
		char real[PATH_MAX];
		if (!realpath(state, real) || strlen(real) >= sizeof(state) - 64) {
			log_err("state directory %s: %s", state, strerror(errno));
			goto out;
		}
		snprintf(state, sizeof(state), "%s", real);
	}

	if (nop >= 0)
		srv.nop_interval_s = (unsigned)nop;
	if (have_cfg) {
		srv.max_conns = cfg.max_conns;
		srv.max_logins_per_addr = cfg.max_logins_per_addr;
		srv.max_sessions_per_initiator = cfg.max_sessions_per_initiator;
		srv.login_timeout_s = cfg.login_timeout;
		srv.send_timeout_s = cfg.send_timeout;
		srv.zero_copy = cfg.zero_copy;
		reg.discovery_chap = cfg.discovery_chap;
	}
	if (o.zero_copy)
		srv.zero_copy = true;

	if (o.read_only) {
		struct scsi_lu_config lc;
		char serial[17];
		uint64_t id = fnv1a(imgs[0]->target);

		shared = scsi_target_new();
		snprintf(serial, sizeof(serial), "%016llx", (unsigned long long)id);
		lc = (struct scsi_lu_config){
			.be = imgs[0]->be, .block_size = imgs[0]->block_size, .read_only = true,
			.vendor = "PRISTINE", .product = "golden image", .revision = "0001",
			.serial = serial, .naa_id = id ^ 0x5a5a, .target_name = imgs[0]->target,
		};
		if (!shared || scsi_target_add_lu(shared, 0, &lc)) {
			log_err("cannot create LUN 0");
			goto out;
		}
		srv.hooks = (struct iscsi_hooks){ .attach = shared_attach, .ctx = shared };
		snprintf(imgs[0]->tgt.name, sizeof(imgs[0]->tgt.name), "%s", imgs[0]->target);
		imgs[0]->tgt.tpgt = 1;
		imgs[0]->tgt.priv = imgs[0];
		if (iscsi_server_add_target(&srv, &imgs[0]->tgt))
			goto out;
	} else {
		snprintf(reg.state, sizeof(reg.state), "%s", state);
		reg.default_quota = quota;
		reg.store_floor = floor;
		reg.enroll_auto = have_cfg ? cfg.enroll_auto : true;
		reg.hooks = lab_hooks_iscsi(&srv);   /* lab: the registry asks the server through hooks */
		reg.default_policy = have_cfg ? cfg.default_policy : o.policy;
		reg.default_reset_at = have_cfg ? cfg.default_reset_at : o.reset_at;
		if (have_cfg)
			snprintf(reg.default_image, sizeof(reg.default_image), "%s", cfg.default_image);
		if (have_cfg || o.boot_portal)
			snprintf(reg.boot_portal, sizeof(reg.boot_portal), "%s",
				 have_cfg ? cfg.boot_portal : o.boot_portal);
		{
			const char *colon = strrchr(listen[0], ':');
			reg.iscsi_port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 3260;
		}
		for (unsigned i = 0; i < nimg; i++) {
			if (image_load(&reg, imgs[i]) || registry_add_image(&reg, imgs[i]))
				goto out;
			imgs[i] = NULL;   /* the registry's now */
		}
		images_load_added(&reg);
		for (unsigned i = 0; have_cfg && i < cfg.nclients; i++) {
			const struct cfg_client *cc = &cfg.clients[i];
			struct image *img = registry_image(&reg, cc->image);
			if (!img || registry_configure(&reg, cc, img, cc->quota ? cc->quota : quota))
				goto out;
		}
		if (registry_open(&reg))
			goto out;
		reg_open = true;
		srv.hooks = (struct iscsi_hooks){ .admit = registry_admit,
						  .chap_secret = registry_chap_secret,
						  .attach = registry_attach, .detach = registry_detach,
						  .ctx = &reg };
	}
	for (unsigned i = 0; i < srv.ntargets; i++) {
		const struct image *im = srv.targets[i]->priv;
		log_notice("target %s LUN 0: %s, %llu bytes, %u-byte blocks, %s", im->target,
			   im->path, (unsigned long long)im->be->size, im->block_size,
			   o.read_only ? "read-only for every client" : "one copy-on-write overlay per client");
	}

	iscsi_server_init(&srv);
	if (!o.read_only) {
		daemon_ops_init(&dctx, &ops);
		if (api_start(sock, &ops, &api))
			goto out_srv;
		log_notice("admin API on %s", sock);
	}
	for (unsigned i = 0; i < nlisten; i++)
		if (portal_add(&ps, listen[i]))
			goto out_portals;
	if (boot_listen[0]) {
		struct portal_set bps = { .n = 0 };
		if (portal_add(&bps, boot_listen))
			goto out_portals;
		/* boot_start owns the socket from here, on success or not. */
		if (boot_start(bps.fds[0], boot_listen, &boot_hooks, &boot))
			goto out_portals;
		dctx.boot_listen = boot_listen;
	}
	/* Privileges (issue 7): every socket is bound, every image open. */
	if (privs.prepared && (privs_own_state(&privs, state) || privs_drop(&privs, state)))
		goto out_portals;
	{
		char st[160];
		snprintf(st, sizeof(st), "serving %u target%s on %u portal%s%s", srv.ntargets,
			 srv.ntargets == 1 ? "" : "s", ps.n, ps.n == 1 ? "" : "s",
			 boot ? ", boot endpoint on" : "");
		notify_ready(st);
	}
	rc = portal_serve(&ps, &srv) ? 1 : 0;
	notify_stopping();
out_portals:
	portal_close_all(&ps);
	boot_stop(boot);
	if (api)
		api_stop(api);
	jobs_stop();
out_srv:
	if (iscsi_server_shutdown(&srv)) {
		/* Threads still use the overlays: exiting without freeing them is
		 * safe, freeing them is not.  Flushed data is on disk already. */
		log_err("pristined stopped with connections still busy");
		return 1;
	}
	pthread_mutex_destroy(&srv.lock);
	pthread_cond_destroy(&srv.cond);
out:
	if (reg_open)
		registry_close(&reg);
	scsi_target_free(shared);
	for (unsigned i = 0; reg_open && i < reg.nimages; i++) {
		image_close(reg.images[i]);
		free(reg.images[i]);
	}
	free(reg.images);
	for (unsigned i = 0; imgs && i < nimg; i++) {
		if (imgs[i])
			image_close(imgs[i]);
		free(imgs[i]);
	}
	free(imgs);
	if (srv.targets_cap)
		free(srv.targets);
	if (have_cfg)
		config_free(&cfg);
	log_notice("pristined stopped");
	return rc;
}
