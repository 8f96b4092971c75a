/*
 * raw_target.c - BENCHMARK-ONLY daemon: serves one raw image file
 * WRITABLE as LUN 0, with no overlay, so that `make bench` can compare
 * "the same iSCSI and SCSI code over a plain file" with pristined's
 * copy-on-write overlay.
 *
 * The product deliberately has no way to let clients write a golden
 * image.  This program is that way, so it is never installed and never
 * built by `make` or `make check`: only `make bench` builds it (as
 * build/bench/raw_target).  Do not point it at an image you care about.
 *
 *   raw_target --image PATH [--listen ADDR:PORT] [--target IQN]
 *              [--block-size 512|4096]
 *
 * It links the very library objects pristined links (src/proto,
 * src/scsi, src/storage, src/daemon/listen.c ...) and wires them the way
 * pristined's --read-only mode does (one shared SCSI target handed to
 * every session by the attach hook), except that the backend is opened
 * for writing and the LU is not write-protected.  Stops on SIGTERM or
 * SIGINT.
 */
#include "daemon/listen.h"
#include "proto/iscsi.h"
#include "scsi/scsi.h"
#include "storage/backend.h"
#include "util/log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every initiator gets the one shared SCSI target (ctx); no handle. */
static int raw_attach(void *ctx, struct iscsi_target *t, const char *initiator,
		      struct scsi_target **scsi, void **handle, char *msg, size_t msglen)
{
	(void)t; (void)initiator; (void)msg; (void)msglen;
	*scsi = ctx;
	*handle = NULL;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: raw_target --image PATH [--listen ADDR:PORT] [--target IQN]"
		" [--block-size 512|4096]\n"
		"BENCHMARK ONLY: serves PATH writable, with no overlay.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "listen", required_argument, NULL, 'l' },
		{ "target", required_argument, NULL, 't' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *image = NULL, *listen = "127.0.0.1:3260";
	const char *target = "iqn.2026-11.org.pristine:bench-raw";
	uint32_t block_size = 512;
	struct iscsi_server srv;
	struct iscsi_target tgt = { 0 };
	struct iscsi_target *tgts[1] = { &tgt };
	struct portal_set ps = { .n = 0 };
	struct backend *be = NULL;
	struct scsi_target *shared = NULL;
	struct scsi_lu_config lc;
	sigset_t set;
	int ch, rc = 1;

	while ((ch = getopt_long(argc, argv, "i:l:t:b:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'i': image = optarg; break;
		case 'l': listen = optarg; break;
		case 't': target = optarg; break;
		case 'b': block_size = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!image || optind < argc || (block_size != 512 && block_size != 4096) ||
	    strlen(target) >= ISCSI_NAME_MAX) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (backend_raw_open(image, true, &be))
		return 1;
	if (be->size < block_size || be->size % block_size) {
		log_err("%s: size is not a whole number of %u-byte blocks", image, block_size);
		goto out;
	}
	snprintf(tgt.name, sizeof(tgt.name), "%s", target);
	tgt.tpgt = 1;

	shared = scsi_target_new();
	lc = (struct scsi_lu_config){
		.be = be, .block_size = block_size, .read_only = false,
		.vendor = "PRISTINE", .product = "bench raw", .revision = "0001",
		.serial = "bench-raw-0", .naa_id = 0x0be9c4, .target_name = tgt.name,
	};
	if (!shared || scsi_target_add_lu(shared, 0, &lc)) {
		log_err("cannot create LUN 0");
		goto out;
	}
	iscsi_server_defaults(&srv);
	srv.targets = tgts;
	srv.ntargets = 1;
	srv.hooks = (struct iscsi_hooks){ .attach = raw_attach, .ctx = shared };
	iscsi_server_init(&srv);
	log_notice("raw_target (benchmark only): %s LUN 0 = %s, writable, no overlay",
		   tgt.name, image);
	if (portal_add(&ps, listen) == 0)
		rc = portal_serve(&ps, &srv) ? 1 : 0;
	portal_close_all(&ps);
	iscsi_server_shutdown(&srv);
	pthread_mutex_destroy(&srv.lock);
	pthread_cond_destroy(&srv.cond);
out:
	scsi_target_free(shared);
	backend_close(be);
	return rc;
}
