/*
 * main.c - pristined: command line, quick mode, start and orderly stop.
 *
 * Quick mode exports one image as LUN 0 of one target:
 *   pristined --image PATH [--listen ADDR:PORT]... [--state DIR]
 *             [--target IQN] [--writable] [--block-size 512|4096]
 * Without --writable the image is opened read-only and the LUN is write
 * protected.  (Per-client copy-on-write overlays in the state directory
 * are the next layer; until then --writable exports the file itself and
 * exists for testing the target core on scratch images.)
 */
#include "daemon/listen.h"
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
#include <sys/stat.h>

#define PRISTINE_VERSION "0.1.0"

struct options {
	const char *image;
	const char *state;
	const char *target;
	const char *listen[MAX_PORTALS];
	unsigned nlisten;
	bool writable;
	uint32_t block_size;
	int nop_interval;          /* -1: default */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pristined --image PATH [options]\n"
		"  -i, --image PATH        raw image file or block device to export as LUN 0\n"
		"  -l, --listen ADDR:PORT  portal to listen on (repeatable; default *:3260)\n"
		"  -s, --state DIR         state directory (default /var/lib/pristine)\n"
		"  -t, --target IQN        target name (default derived from the image name)\n"
		"  -w, --writable          let clients write the image itself (testing only)\n"
		"  -b, --block-size N      logical block size, 512 or 4096 (default 512)\n"
		"  -n, --nop-interval SECS idle time before a NOP-In ping, 0 = never (default 30)\n"
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

/* Default target name: iqn.2026-11.org.pristine:<image base name>. */
static void default_target(const char *image, char *out, size_t len)
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
	snprintf(out, len, "iqn.2026-11.org.pristine:%s", n ? name : "image");
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "listen", required_argument, NULL, 'l' },
		{ "state", required_argument, NULL, 's' },
		{ "target", required_argument, NULL, 't' },
		{ "writable", no_argument, NULL, 'w' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "nop-interval", required_argument, NULL, 'n' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "config", required_argument, NULL, 'c' },
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
	while ((ch = getopt_long(argc, argv, "i:l:s:t:wb:n:v:c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'i': o->image = optarg; break;
		case 's': o->state = optarg; break;
		case 't': o->target = optarg; break;
		case 'w': o->writable = true; break;
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
		case 'c':
			fprintf(stderr, "pristined: configuration files are not supported yet; "
				"use quick mode (--image)\n");
			return -1;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("pristined %s\n", PRISTINE_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pristined: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!o->image) {
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
	struct iscsi_server srv;
	struct iscsi_target tgt = { 0 };
	struct iscsi_target *tgts[1] = { &tgt };
	struct portal_set ps = { .n = 0 };
	struct backend *be = NULL;
	struct scsi_target *shared = NULL;
	struct scsi_lu_config lc;
	char serial[17];
	sigset_t set;
	int rc = 1;

	if (parse_args(argc, argv, &o))
		return 2;
	/* Signals are read from a signalfd by the accept loop only. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	log_notice("pristined %s starting", PRISTINE_VERSION);
	if (ensure_state_dir(o.state))
		return 1;
	if (backend_raw_open(o.image, o.writable, &be))
		return 1;
	if (be->size < o.block_size || be->size % o.block_size) {
		log_err("%s: size %llu is not a whole number of %u-byte blocks", o.image,
			(unsigned long long)be->size, o.block_size);
		goto out;
	}

	if (o.target)
		snprintf(tgt.name, sizeof(tgt.name), "%s", o.target);
	else
		default_target(o.image, tgt.name, sizeof(tgt.name));
	tgt.tpgt = 1;
	shared = scsi_target_new();
	if (!shared)
		goto out;
	snprintf(serial, sizeof(serial), "%016llx", (unsigned long long)fnv1a(tgt.name));
	lc = (struct scsi_lu_config){
		.be = be, .block_size = o.block_size, .read_only = !o.writable,
		.vendor = "PRISTINE", .product = "golden image", .revision = "0001",
		.serial = serial, .naa_id = fnv1a(tgt.name) ^ 0x5a5a, .target_name = tgt.name,
	};
	if (scsi_target_add_lu(shared, 0, &lc)) {
		log_err("cannot create LUN 0");
		goto out;
	}
	log_notice("target %s LUN 0: %s, %llu bytes, %u-byte blocks, %s", tgt.name, o.image,
		   (unsigned long long)be->size, o.block_size, o.writable ? "WRITABLE (test mode)" : "read-only");

	iscsi_server_defaults(&srv);
	if (o.nop_interval >= 0)
		srv.nop_interval_s = (unsigned)o.nop_interval;
	srv.hooks = (struct iscsi_hooks){ .attach = shared_attach, .ctx = shared };
	srv.targets = tgts;
	srv.ntargets = 1;
	iscsi_server_init(&srv);
	for (unsigned i = 0; i < o.nlisten; i++)
		if (portal_add(&ps, o.listen[i]))
			goto out_portals;
	rc = portal_serve(&ps, &srv) ? 1 : 0;
out_portals:
	portal_close_all(&ps);
	iscsi_server_shutdown(&srv);
	pthread_mutex_destroy(&srv.lock);
	pthread_cond_destroy(&srv.cond);
out:
	scsi_target_free(shared);
	backend_close(be);
	log_notice("pristined stopped");
	return rc;
}
