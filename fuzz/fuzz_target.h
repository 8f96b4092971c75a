/*
 * fuzz_target.h - shared by the harnesses that drive a real connection
 * thread (fuzz_pdu_stream, fuzz_chap): one iSCSI target whose LUN 0 is an
 * in-memory disk, served by g_srv, with an attach hook that gives every
 * normal session that LUN.  Header-only (each harness is one program).
 *
 * fuzz_target_setup(size, naa, hooks) once, before the first input:
 * hooks may add chap_secret/admit (attach is filled in).  After each
 * input, fuzz_target_wait() waits until every connection thread has
 * cleaned up, so leaks are attributed to the input that caused them.
 */
#ifndef PRISTINE_FUZZ_TARGET_H
#define PRISTINE_FUZZ_TARGET_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/iscsi.h"
#include "util/log.h"

#define FUZZ_TARGET_NAME "iqn.2024-01.fuzz:disk"

static uint8_t *g_mem;
static struct iscsi_server g_srv;
static struct iscsi_target g_tgt = { .name = FUZZ_TARGET_NAME, .tpgt = 1 };
static struct iscsi_target *g_tgts[1] = { &g_tgt };
static struct scsi_target *g_scsi;

static int ft_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	(void)be;
	memcpy(buf, g_mem + off, len);
	return 0;
}

static int ft_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	(void)be; (void)fua;
	memcpy(g_mem + off, buf, len);
	return 0;
}

static int ft_flush(struct backend *be) { (void)be; return 0; }
static void ft_close(struct backend *be) { (void)be; }

static const struct backend_ops ft_ops = {
	.read = ft_read, .write = ft_write, .flush = ft_flush, .close = ft_close,
};

static struct backend g_be = { .ops = &ft_ops };

static int ft_attach(void *ctx, struct iscsi_target *t, const char *initiator,
		     struct scsi_target **scsi, void **handle, char *msg, size_t msglen)
{
	(void)ctx; (void)t; (void)initiator; (void)msg; (void)msglen;
	*scsi = g_scsi;
	*handle = NULL;
	return 0;
}

/* The target, its LU of size bytes (serial/NAA from naa) and g_srv with
 * hooks (attach set here), no pings, a 2 s login time-out. */
static void fuzz_target_setup(uint64_t size, uint8_t naa, struct iscsi_hooks hooks)
{
	static char serial[17];   /* the LU may keep the pointer */
	struct scsi_lu_config lc = {
		.be = &g_be, .block_size = 512, .vendor = "PRISTINE", .product = "fuzz",
		.revision = "0001", .serial = serial, .naa_id = naa, .target_name = g_tgt.name,
	};

	snprintf(serial, sizeof(serial), "%016x", (unsigned)naa);
	g_mem = calloc(1, size);
	g_be.size = size;
	g_scsi = scsi_target_new();
	scsi_target_add_lu(g_scsi, 0, &lc);
	iscsi_server_defaults(&g_srv);
	g_srv.targets = g_tgts;
	g_srv.ntargets = 1;
	g_srv.nop_interval_s = 0;
	g_srv.login_timeout_s = 2;
	hooks.attach = ft_attach;
	g_srv.hooks = hooks;
	iscsi_server_init(&g_srv);
}

/* Wait (at most 5 s) until no connection thread is left. */
static void fuzz_target_wait(void)
{
	for (int i = 0; i < 5000; i++) {
		unsigned n;
		pthread_mutex_lock(&g_srv.lock);
		n = g_srv.nconns;
		pthread_mutex_unlock(&g_srv.lock);
		if (n == 0)
			break;
		usleep(1000);
	}
}

#endif
