/*
 * setup.c - start and orderly stop of pristined (contract in setup.h).
 *
 * Start, in this order: signals blocked (the accept loop reads them from a
 * signalfd), privileges prepared (before any thread), state directory
 * made, resolved and locked (before anything in it is read: a second
 * daemon on the same directory stops here), images opened, the iSCSI
 * server's settings, then either the registry (every client gets its own
 * overlay) or, in --read-only quick mode, one shared write-protected LU;
 * then the API, the portals, the boot endpoint, the drop of root,
 * readiness.  Stop undoes it backwards.  A
 * quick-mode configuration and a file's take the same steps: what differs
 * is in struct config (quick, read_only), not in branches here.
 */
#include "daemon/setup.h"
#include "admin/api.h"
#include "admin/metrics.h"
#include "admin/ops.h"
#include "boot/boot_resolve.h"
#include "boot/boot.h"
#include "cluster/cluster.h"
#include "console/console.h"
#include "daemon/listen.h"
#include "daemon/notify.h"
#include "daemon/privs.h"
#include "lab/bootsets.h"
#include "lab/clients.h"
#include "lab/jobs.h"
#include "lab/records.h"
#include "lab/store.h"
#include "lab/statedir.h"
#include "proto/iscsi.h"
#include "scsi/scsi.h"
#include "storage/backend.h"
#include "storage/cache.h"
#include "storage/prefetch.h"
#include "storage/rbd.h"
#include "util/atomicfile.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/version.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Everything a running daemon holds; zeroed, then filled by the start. */
struct daemon {
	const struct config *cfg;
	const char *cfg_path;
	char state[PATH_MAX];            /* cfg->state, absolute */
	int lock_fd;                     /* STATE's lock, held until exit */
	bool locked;
	struct iscsi_server srv;
	bool srv_started;
	struct portal_set ps;
	struct image **imgs;             /* opened, not yet the registry's */
	unsigned nimg;
	struct registry reg;
	bool reg_open;
	struct daemon_ctx dctx;
	struct control_ops ops;
	struct api *api;
	struct metrics_http *metrics;    /* GET /metrics (metrics-listen), NULL = off */
	struct boot_server *boot;
	struct boot_hooks boot_hooks;
	struct console *console;         /* the web console, NULL = off */
	struct scsi_target *shared;      /* --read-only: the one LU everyone sees */
	struct privs privs;
	struct rbd_cluster *ceph;        /* the Ceph connection when an image is on RBD */
	struct rcache *rcache;           /* their shared read cache, NULL = off */
	/* warm boots (lab/bootsets.h): the one prefetcher, NULL = prefetch
	 * off; lent to the registry, freed at stop before any image closes
	 * (its jobs read the versions' backends) */
	struct prefetcher *prefetch;
	struct cluster *cluster;         /* a gateway of a cluster (cluster-name), else NULL */
};

/* --read-only's attach hook: every initiator sees the shared LU. */
static int shared_attach(void *ctx, struct iscsi_target *t, const char *initiator,
			 struct scsi_target **scsi, void **handle, char *msg, size_t msglen)
{
	(void)t; (void)initiator; (void)msg; (void)msglen;
	*scsi = ctx;
	*handle = NULL;
	return 0;
}

/*
 * Take over from the previous instance of this gateway: read the Ceph
 * address it recorded in STATE/ceph-instance and let rbd_disk_open break
 * the exclusive locks that exact address still holds (it is dead or hung:
 * we hold STATE's lock, so it serves nothing; the break blocklists it),
 * then record ours, durably, before any disk is opened - so a clone
 * locked by us is always breakable by our successor.  Without a
 * record (a failed write) the next start waits out our watches (~30 s).
 */
static void ceph_take_over(struct daemon *d)
{
	char path[PATH_MAX], prev[RBD_ADDR_MAX] = "", mine[RBD_ADDR_MAX];
	FILE *f;
	int rc;

	if (statedir_file(path, sizeof(path), d->state, STATEDIR_CEPH_INSTANCE))
		return;
	if ((f = fopen(path, "re"))) {
		if (!fgets(prev, sizeof(prev), f))
			prev[0] = '\0';
		fclose(f);
		prev[strcspn(prev, "\n")] = '\0';
	}
	rbd_cluster_set_breakable(d->ceph, prev);
	if ((rc = rbd_cluster_addr(d->ceph, mine, sizeof(mine) - 1))) {
		log_warn("ceph: cannot read our client address: %s", strerror(-rc));
		return;
	}
	strcat(mine, "\n");
	if ((rc = atomicfile_write_text(d->state, STATEDIR_CEPH_INSTANCE, mine)))
		log_warn("%s: cannot record our Ceph address: %s (a restart after a crash waits "
			 "~30 s for each clone's lock)", path, strerror(-rc));
	mine[strcspn(mine, "\n")] = '\0';
	log_info("ceph: our address %s%s%s", mine, prev[0] ? ", previous instance " : "", prev);
}

/* Connect to the Ceph cluster of [server] ceph-conf/ceph-id, once, for
 * the images on RBD; bounded in time (storage/rbd.h).  0 or -1 (logged). */
static int connect_ceph(struct daemon *d)
{
	const struct config *c = d->cfg;
	char msg[768];

	struct rbd_connect_opts o = { .op_timeout_s = c->ceph_op_timeout };

	if (rbd_cluster_connect_opts(c->ceph_conf, c->ceph_id, &o, &d->ceph, msg, sizeof(msg))) {
		log_err("%s", msg);
		return -1;
	}
	log_notice("ceph: connected as client.%s (%s); OSD requests %s", c->ceph_id, c->ceph_conf,
		   c->ceph_op_timeout ? "time out (ceph-op-timeout)" : "wait for the cluster");
	if (d->locked)
		ceph_take_over(d);
	if (c->rbd_cache) {
		int rc = rcache_new(c->rbd_cache, 0, &d->rcache);
		if (rc) {
			log_err("rbd-cache: cannot make a cache of %llu bytes: %s",
				(unsigned long long)c->rbd_cache, strerror(-rc));
			return -1;
		}
		log_info("ceph: versions on RBD are read through a shared cache of %llu MiB",
			 (unsigned long long)(c->rbd_cache >> 20));
	}
	return 0;
}

/* Open every image of the configuration read-only.  0 or -1 (logged). */
static int open_images(struct daemon *d)
{
	const struct config *c = d->cfg;

	d->imgs = calloc(c->nimages, sizeof(*d->imgs));
	if (!d->imgs)
		return -1;
	d->nimg = c->nimages;
	/* ceph-conf alone connects too: images are added into Ceph later
	 * (pristinectl image add --rbd, import --rbd). */
	if (c->ceph_conf[0] && !c->read_only && connect_ceph(d))
		return -1;
	for (unsigned i = 0; i < c->nimages; i++) {
		const struct cfg_image *ci = &c->images[i];
		if (!(d->imgs[i] = calloc(1, sizeof(**d->imgs))))
			return -1;
		d->imgs[i]->origin = c->quick ? IMG_QUICK : IMG_CONFIG;
		if (ci->rbd[0] && !d->ceph && connect_ceph(d))
			return -1;
		d->imgs[i]->rcache = d->rcache;
		if (ci->rbd[0] ? image_open_rbd(d->imgs[i], ci->name, d->ceph, ci->rbd, ci->target,
						ci->block_size) :
		    image_open_source(d->imgs[i], ci->name, ci->path, ci->target, ci->block_size)) {
			if (d->cfg_path)
				log_err("%s:%d: image %s cannot be served", d->cfg_path, ci->line, ci->name);
			return -1;
		}
	}
	return 0;
}

/* Make the state directory if needed, keep its absolute path (paths
 * recorded in image.json must not depend on the cwd) and lock it for the
 * daemon's life (the lock survives the drop of root: it is the open
 * descriptor's).  0 or -1 (logged; another daemon's PID when it holds
 * the lock). */
static int prepare_state(struct daemon *d)
{
	const char *dir = d->cfg->state;
	char real[PATH_MAX];
	struct stat st;
	long holder;
	int fd;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		log_err("state directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		log_err("state directory %s is not a directory", dir);
		return -1;
	}
	if (!realpath(dir, real) || strlen(real) >= sizeof(d->state) - 64) {
		log_err("state directory %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(d->state, sizeof(d->state), "%s", real);
	if ((fd = statedir_lock(d->state, &holder)) == -EWOULDBLOCK) {
		char pid[32] = "";
		if (holder)
			snprintf(pid, sizeof(pid), " (PID %ld)", holder);
		log_err("state directory %s is in use by another pristined%s; stop it first "
			"(systemctl stop pristined) or give this one another state directory",
			d->state, pid);
		return -1;
	}
	if (fd < 0)
		return -1;
	d->lock_fd = fd;
	d->locked = true;
	return 0;
}

/* The iSCSI server's limits and timers, from the configuration. */
static void server_settings(struct daemon *d)
{
	const struct config *c = d->cfg;

	iscsi_server_defaults(&d->srv);
	d->srv.nop_interval_s = c->nop_interval;
	d->srv.max_conns = c->max_conns;
	d->srv.max_logins_per_addr = c->max_logins_per_addr;
	d->srv.max_sessions_per_initiator = c->max_sessions_per_initiator;
	d->srv.login_timeout_s = c->login_timeout;
	d->srv.send_timeout_s = c->send_timeout;
	d->srv.zero_copy = c->zero_copy;
}

/* --read-only: image 0 as LUN 0 of its target, the same LU for everyone,
 * no overlays, no registry.  0 or -1. */
static int start_read_only(struct daemon *d)
{
	struct image *im = d->imgs[0];
	struct scsi_lu_config lc;
	char serial[17];
	uint64_t id = fnv1a(im->target);

	d->shared = scsi_target_new();
	snprintf(serial, sizeof(serial), "%016llx", (unsigned long long)id);
	lc = (struct scsi_lu_config){
		.be = im->be, .block_size = im->block_size, .read_only = true,
		.vendor = "PRISTINE", .product = "golden image", .revision = "0001",
		.serial = serial, .naa_id = id ^ 0x5a5a, .target_name = im->target,
	};
	if (!d->shared || scsi_target_add_lu(d->shared, 0, &lc)) {
		log_err("cannot create LUN 0");
		return -1;
	}
	d->srv.hooks = (struct iscsi_hooks){ .attach = shared_attach, .ctx = d->shared };
	snprintf(im->tgt.name, sizeof(im->tgt.name), "%s", im->target);
	im->tgt.tpgt = 1;
	im->tgt.priv = im;
	return iscsi_server_add_target(&d->srv, &im->tgt) ? -1 : 0;
}

/*
 * A gateway of a cluster ([server] cluster-name): its registry keeps its
 * records in RADOS, in cluster-pool, shared with the other gateways
 * (lab/records.h), and serves images on Ceph RBD only.  Before anything
 * is loaded into the registry; the change lock it takes for the start is
 * let go when registry_open ends.  A single server: nothing.  0 or -1
 * (logged).
 */
static int setup_records(struct daemon *d)
{
	const struct config *c = d->cfg;
	struct lab_store *st;
	char msg[300];

	if (!c->cluster_name[0])
		return 0;
	for (unsigned i = 0; i < c->nimages; i++)
		if (!c->images[i].rbd[0]) {
			log_err("%s:%d: image %s: %s", d->cfg_path ? d->cfg_path : "config",
				c->images[i].line, c->images[i].name, RECORDS_LOCAL_REFUSED);
			return -1;
		}
	if (!d->ceph && connect_ceph(d))
		return -1;
	st = store_rados_new(d->ceph, c->cluster_pool, d->state, c->cluster_name, msg, sizeof(msg));
	if (!st) {
		log_err("cluster: the records in pool %s: %s", c->cluster_pool, msg);
		return -1;
	}
	if (registry_cluster_init(&d->reg, st, c->cluster_name, msg, sizeof(msg))) {
		log_err("cluster: %s", msg);
		return -1;
	}
	return 0;
}

/*
 * The registry, built from the configuration: its settings, the opened
 * images (handed over: d->imgs[i] becomes NULL), the images added through
 * the API, the configured clients, then open (overlays, purger) and the
 * iSCSI hooks.  The one place that knows how a registry is assembled.
 * 0 or -1 (logged).
 */
static int build_registry(struct daemon *d)
{
	const struct config *c = d->cfg;
	struct registry *reg = &d->reg;
	unsigned port = 3260;

	snprintf(reg->state, sizeof(reg->state), "%s", d->state);
	reg->default_quota = c->default_quota;
	reg->store_floor = c->store_floor;
	reg->enroll_auto = c->enroll_auto;
	reg->hooks = lab_hooks_iscsi(&d->srv);   /* the registry asks the server through hooks */
	reg->default_policy = c->default_policy;
	reg->default_reset_at = c->default_reset_at;
	reg->discovery_chap = c->discovery_chap;
	/* quick mode leaves it "" (= the only image, while there is one) */
	if (!c->quick)
		snprintf(reg->default_image, sizeof(reg->default_image), "%s", c->default_image);
	snprintf(reg->boot_portal, sizeof(reg->boot_portal), "%s", c->boot_portal);
	parse_portal(c->listen[0], &port, NULL, 0);   /* checked when read: cannot fail */
	reg->iscsi_port = port;
	reg->ceph = d->ceph;
	reg->rcache = d->rcache;
	reg->wake = &c->wake;      /* Wake-on-LAN: networks, wake-at (c outlives reg) */
	reg->prefetch_on = c->prefetch;
	reg->bootset_max_chunks = c->boot_set_max ? (uint32_t)(c->boot_set_max / BOOTSET_CHUNK) : 0;
	if (c->prefetch && prefetcher_new(&d->prefetch))
		log_warn("warm boots: the prefetch thread cannot start; boot sets are learned, not "
			 "prefetched");
	reg->prefetch = d->prefetch;   /* before any disk opens: their taps tell it */
	if (setup_records(d))
		return -1;
	for (unsigned i = 0; i < d->nimg; i++) {
		const struct cfg_image *ci = &c->images[i];
		/* its PCs' extra disks and how it is one (lab/xdisk.h) */
		xdisk_group_configure(d->imgs[i], ci->disks, ci->ndisks, ci->disk_policy, ci->disk_quota);
		if (image_load(reg, d->imgs[i]) || registry_add_image(reg, d->imgs[i]))
			return -1;
		d->imgs[i] = NULL;   /* the registry's now */
	}
	images_load_added(reg);
	for (unsigned i = 0; i < c->nclients; i++) {
		const struct client_decl *cc = &c->clients[i];
		struct image *img = registry_image(reg, cc->image);
		if (!img || registry_configure(reg, cc, img, cc->quota ? cc->quota : c->default_quota))
			return -1;
	}
	if (registry_open(reg))
		return -1;
	d->reg_open = true;
	bootsets_prefetch_all(reg);   /* the boot sets of what PCs boot next */
	d->srv.hooks = (struct iscsi_hooks){ .admit = registry_admit,
					     .chap_secret = registry_chap_secret,
					     .attach = registry_attach, .detach = registry_detach,
					     .io_stats = registry_io_stats,
					     .ctx = reg };
	return 0;
}

/* Exit status of a gateway that was fenced (pristined.8): its supervisor
 * (systemd's Restart=on-failure) starts it again, with a new Ceph
 * identity, and it rejoins. */
#define EXIT_FENCED 75

/* Counting a gateway's load: normal sessions, and the distinct PCs
 * among them (a PC may have two: iPXE's and its OS's). */
struct load_count {
	unsigned sessions, pcs;
	char seen[64][ISCSI_NAME_MAX];
};

static void load_one(void *arg, const struct iscsi_session_info *si)
{
	struct load_count *lc = arg;
	unsigned i;

	if (si->discovery)
		return;
	lc->sessions++;
	for (i = 0; i < lc->pcs && i < 64; i++)
		if (strcmp(lc->seen[i], si->initiator) == 0)
			return;
	if (lc->pcs < 64)
		snprintf(lc->seen[lc->pcs], ISCSI_NAME_MAX, "%s", si->initiator);
	lc->pcs++;   /* past 64 PCs a PC with two sessions counts twice: a load figure */
}

/* cluster_opts.load: this gateway's sessions and PCs now. */
static void cluster_load(void *arg, unsigned *sessions, unsigned *pcs)
{
	struct daemon *d = arg;
	struct load_count *lc = calloc(1, sizeof(*lc));

	*sessions = *pcs = 0;
	if (!lc)
		return;
	iscsi_session_foreach(&d->srv, load_one, lc);
	*sessions = lc->sessions;
	*pcs = lc->pcs;
	free(lc);
}

/* cluster_opts.end_sessions: a drain sends a PC to another gateway. */
static void cluster_end_sessions(void *arg, const char *initiator)
{
	struct daemon *d = arg;

	iscsi_kill_initiator(&d->srv, initiator);
}

/* cluster_opts.fenced: Ceph refuses our writes; stop at once, without
 * flushing anything (nothing would get through), and let the supervisor
 * start a new instance. */
static void cluster_fenced(void *arg)
{
	(void)arg;
	log_err("pristined exits (status %d) because it was fenced; systemd starts it again "
		"and it rejoins the cluster", EXIT_FENCED);
	_exit(EXIT_FENCED);
}

/* The iSCSI route hook (iscsi.h) over cluster_route; ctx is the registry. */
static int cluster_login_route(void *ctx, const char *initiator, const struct sockaddr *local,
			       char *addr, size_t addrlen)
{
	struct registry *reg = ctx;

	switch (cluster_route(reg->gateways, initiator, local, addr, addrlen)) {
	case CLUSTER_HERE:
		return 0;
	case CLUSTER_ELSEWHERE:
		return LOGIN_TARGET_MOVED_TEMPORARILY;
	case CLUSTER_UNAVAILABLE:
		break;
	}
	return LOGIN_SERVICE_UNAVAILABLE;
}

/*
 * A gateway of a cluster (cluster-name set): join it through the Ceph
 * connection (which installs the lock-break policy before any disk is
 * opened), hand it to the registry, and ask it where each login goes.
 * The cluster address is cluster-address, else the first listen (which
 * must then name an address, not a wildcard).  Nothing for a single
 * server.  0 or -1 (logged).
 */
static int setup_cluster(struct daemon *d)
{
	const struct config *c = d->cfg;
	struct cluster_opts o;
	char addr[sizeof(c->cluster_address)], msg[512];
	int rc;

	if (!c->cluster_name[0])
		return 0;
	if (!d->ceph) {
		log_err("cluster-name: a gateway of a cluster needs the Ceph connection (ceph-conf)");
		return -1;
	}
	snprintf(addr, sizeof(addr), "%s", c->cluster_address[0] ? c->cluster_address : c->listen[0]);
	if (addr[0] == '*' || addr[0] == ':' || strncmp(addr, "0.0.0.0:", 8) == 0 ||
	    strncmp(addr, "[::]:", 5) == 0 || !strchr(addr, ':')) {
		log_err("cluster-address: the first listen (%s) is not an address PCs can be sent to: "
			"set cluster-address = HOST:PORT (this gateway's service address)", c->listen[0]);
		return -1;
	}
	o = (struct cluster_opts){
		.name = c->cluster_name, .address = addr, .pool = c->cluster_pool,
		.dead_after_s = c->cluster_dead_after, .load = cluster_load,
		.end_sessions = cluster_end_sessions, .fenced = cluster_fenced, .arg = d,
	};
	/* tests shorten the beat (the production beat is CLUSTER_BEAT_MS) */
	if (getenv("PRISTINE_CLUSTER_BEAT_MS"))
		o.beat_ms = (unsigned)atoi(getenv("PRISTINE_CLUSTER_BEAT_MS"));
	if ((rc = cluster_join(d->ceph, &o, &d->cluster, msg, sizeof(msg)))) {
		log_err("%s", msg);
		return -1;
	}
	d->reg.gateways = d->cluster;
	d->srv.hooks.route = cluster_login_route;
	return 0;
}

/* The web console on cfg->console_listen, if set: "*:PORT" is every IPv4
 * address (one socket, like the boot endpoint).  0 or -1 (logged). */
static int start_console(struct daemon *d)
{
	const struct config *c = d->cfg;
	struct portal_set cps = { .n = 0 };
	const char *colon = strrchr(c->console_listen, ':');
	char spec[sizeof(c->console_listen) + 16];

	if (!c->console_listen[0])
		return 0;
	if (c->read_only) {
		log_err("console-listen: the console needs the admin API (not with --read-only)");
		return -1;
	}
	if (colon && (colon == c->console_listen || (colon - c->console_listen == 1 &&
						     c->console_listen[0] == '*')))
		snprintf(spec, sizeof(spec), "0.0.0.0%s", colon);
	else
		snprintf(spec, sizeof(spec), "%s", c->console_listen);
	if (portal_add(&cps, spec))
		return -1;
	for (unsigned i = 1; i < cps.n; i++)
		close(cps.fds[i]);     /* one socket: the first address */
	return console_start(cps.fds[0], &(struct console_opts){
		.listen = c->console_listen, .cert = c->console_cert, .key = c->console_key,
		.state = d->state, .idle_timeout_s = c->console_session_timeout }, &d->ops,
		&d->console) ? -1 : 0;
}

/* The API, the portals, the boot endpoint, the drop of root.  0 or -1. */
static int start_services(struct daemon *d)
{
	const struct config *c = d->cfg;

	if (!c->read_only) {
		d->dctx = (struct daemon_ctx){ .reg = &d->reg, .srv = &d->srv, .rcache = d->rcache,
					       .cluster = d->cluster };
		daemon_ops_init(&d->dctx, &d->ops);
		d->dctx.state = d->state;
		d->ops.console_passwd = console_passwd_op;
		if (api_start(c->socket, &d->ops, &d->api))
			return -1;
		log_notice("admin API on %s", c->socket);
		if (c->metrics_listen[0]) {
			struct portal_set mps = { .n = 0 };

			if (portal_add(&mps, c->metrics_listen))
				return -1;
			for (unsigned i = 1; i < mps.n; i++)
				close(mps.fds[i]);     /* one socket: the first address */
			if (metrics_http_start(mps.fds[0], c->metrics_listen, stats_collect, &d->dctx,
					       &d->metrics))
				return -1;
		}
	}
	if (start_console(d))
		return -1;
	for (unsigned i = 0; i < c->nlisten; i++)
		if (portal_add(&d->ps, c->listen[i]))
			return -1;
	if (c->boot_listen[0]) {
		struct portal_set bps = { .n = 0 };
		const char *colon = strrchr(c->boot_listen, ':');
		char spec[sizeof(c->boot_listen) + 16];

		/* The boot endpoint serves one socket: "*:PORT" (or ":PORT") is
		 * every IPv4 address, where iPXE fetches its script, and not also
		 * an IPv6 socket that nothing would answer on. */
		if (colon && (colon == c->boot_listen || (colon - c->boot_listen == 1 &&
							    c->boot_listen[0] == '*')))
			snprintf(spec, sizeof(spec), "0.0.0.0%s", colon);
		else
			snprintf(spec, sizeof(spec), "%s", c->boot_listen);
		if (portal_add(&bps, spec))
			return -1;
		d->boot_hooks = (struct boot_hooks){ .resolve = registry_boot_resolve, .ctx = &d->reg };
		/* boot_start owns the socket from here, on success or not. */
		if (boot_start(bps.fds[0], c->boot_listen, &d->boot_hooks, &d->boot))
			return -1;
		d->dctx.boot_listen = c->boot_listen;
	}
	/* Privileges (issue 7): every socket is bound, every image open. */
	if (d->privs.prepared && (privs_own_state(&d->privs, d->state) ||
				  privs_drop(&d->privs, d->state)))
		return -1;
	return 0;
}

/* Everything up to serving.  0 or -1; what was started is in *d. */
static int start(struct daemon *d)
{
	const struct config *c = d->cfg;
	const char *user = c->user[0] ? c->user : getenv("PRISTINED_USER");
	sigset_t set;

	/* Signals are read from a signalfd by the accept loop only. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	log_notice("pristined %s starting%s%s", PRISTINE_VERSION, d->cfg_path ? " with " : "",
		   d->cfg_path ? d->cfg_path : "");
	/* Privileges (issue 7): the option, else the file's user =, else the
	 * environment's PRISTINED_USER (the systemd unit's default).  The
	 * per-thread part of the drop must precede every thread. */
	if (user && user[0] && privs_prepare(&d->privs, user))
		return -1;
	if (prepare_state(d) || open_images(d))
		return -1;
	server_settings(d);
	if (c->read_only ? start_read_only(d) : build_registry(d) || setup_cluster(d))
		return -1;
	for (unsigned i = 0; i < d->srv.ntargets; i++) {
		const struct image *im = d->srv.targets[i]->priv;
		log_notice("target %s LUN 0: %s, %llu bytes, %u-byte blocks, %s", im->target,
			   im->path, (unsigned long long)im->be->size, im->block_size,
			   c->read_only ? "read-only for every client" :
			   "one copy-on-write overlay per client");
	}
	iscsi_server_init(&d->srv);
	d->srv_started = true;
	return start_services(d);
}

/* Stop what start() started, backwards.  false when connections would
 * not end: then nothing they may use is freed. */
static bool stop(struct daemon *d)
{
	if (d->srv_started) {
		portal_close_all(&d->ps);
		boot_stop(d->boot);
		console_stop(d->console);
		metrics_http_stop(d->metrics);
		if (d->api)
			api_stop(d->api);
		jobs_stop();
		if (iscsi_server_shutdown(&d->srv)) {
			/* Threads still use the overlays: exiting without freeing
			 * them is safe, freeing them is not.  Flushed data is on
			 * disk already. */
			log_err("pristined stopped with connections still busy");
			return false;
		}
		pthread_mutex_destroy(&d->srv.lock);
		pthread_cond_destroy(&d->srv.cond);
	}
	if (d->reg_open)
		registry_close(&d->reg);
	else
		registry_cluster_free(&d->reg);   /* a start that failed after setup_records */
	scsi_target_free(d->shared);
	/* every prefetch job cancelled (and the taps gone with the disks)
	 * before the versions' backends close */
	d->reg.prefetch = NULL;
	prefetcher_free(d->prefetch);
	d->prefetch = NULL;
	for (unsigned i = 0; d->reg_open && i < d->reg.nimages; i++) {
		image_close(d->reg.images[i]);
		free(d->reg.images[i]);
	}
	free(d->reg.images);
	for (unsigned i = 0; d->imgs && i < d->nimg; i++) {
		if (d->imgs[i])
			image_close(d->imgs[i]);
		free(d->imgs[i]);
	}
	free(d->imgs);
	cluster_leave(d->cluster);      /* after every disk closed: our locks are gone */
	rcache_free(d->rcache);         /* after every image read through it */
	rbd_cluster_close(d->ceph);     /* likewise */
	/* the server's target array (grown by iscsi_server_add_target) */
	if (d->srv.targets_cap)
		free(d->srv.targets);
	return true;
}

int daemon_run(const struct config *cfg, const char *cfg_path)
{
	struct daemon *d = calloc(1, sizeof(*d));
	int rc = 1;

	if (!d) {
		log_err("out of memory");
		return 1;
	}
	d->cfg = cfg;
	d->cfg_path = cfg_path;
	if (start(d) == 0) {
		char st[160];
		snprintf(st, sizeof(st), "serving %u target%s on %u portal%s%s%s", d->srv.ntargets,
			 d->srv.ntargets == 1 ? "" : "s", d->ps.n, d->ps.n == 1 ? "" : "s",
			 d->boot ? ", boot endpoint on " : "", d->boot ? cfg->boot_listen : "");
		notify_ready(st);
		rc = portal_serve(&d->ps, &d->srv) ? 1 : 0;
		notify_stopping();
	}
	if (!stop(d))
		return 1;   /* d is left to the exit, see stop() */
	if (d->locked)
		close(d->lock_fd);   /* the last thing: STATE is free now */
	free(d);
	log_notice("pristined stopped");
	return rc;
}
