/*
 * fuzz_pdu_stream.c - libFuzzer harness: the whole iSCSI connection path.
 * Each input is a byte stream sent by an "initiator" over a socketpair to a
 * real connection thread (iscsi_conn_start): PDU framing, login and key
 * negotiation, full feature phase dispatch, R2T/Data-Out, text, TMF,
 * logout, against a target with one LU on an in-memory disk.  The target's
 * answers are read and dropped; the input ends with EOF.  Each run waits
 * until the connection thread has cleaned up, so leaks are attributed to
 * the input that caused them.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "proto/iscsi.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE (4u << 20)

static uint8_t *g_mem;

static int m_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	(void)be;
	memcpy(buf, g_mem + off, len);
	return 0;
}

static int m_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	(void)be; (void)fua;
	memcpy(g_mem + off, buf, len);
	return 0;
}

static int m_flush(struct backend *be) { (void)be; return 0; }
static void m_close(struct backend *be) { (void)be; }

static const struct backend_ops mem_ops = {
	.read = m_read, .write = m_write, .flush = m_flush, .close = m_close,
};

static struct backend g_be = { .ops = &mem_ops, .size = MEM_SIZE };
static struct iscsi_server g_srv;
static struct iscsi_target g_tgt = { .name = "iqn.2024-01.fuzz:disk", .tpgt = 1 };
static struct iscsi_target *g_tgts[1] = { &g_tgt };
static struct scsi_target *g_scsi;

static int attach(void *ctx, struct iscsi_target *t, const char *initiator,
		  struct scsi_target **scsi, void **handle, char *msg, size_t msglen)
{
	(void)ctx; (void)t; (void)initiator; (void)msg; (void)msglen;
	*scsi = g_scsi;
	*handle = NULL;
	return 0;
}

static void setup(void)
{
	struct scsi_lu_config lc = {
		.be = &g_be, .block_size = 512, .vendor = "PRISTINE", .product = "fuzz",
		.revision = "0001", .serial = "00000000000000ff", .naa_id = 0xff,
		.target_name = g_tgt.name,
	};

	log_set_level(LOG_ERR);
	g_mem = calloc(1, MEM_SIZE);
	g_scsi = scsi_target_new();
	scsi_target_add_lu(g_scsi, 0, &lc);
	iscsi_server_defaults(&g_srv);
	g_srv.targets = g_tgts;
	g_srv.ntargets = 1;
	g_srv.nop_interval_s = 0;
	g_srv.login_timeout_s = 2;
	g_srv.hooks = (struct iscsi_hooks){ .attach = attach };
	iscsi_server_init(&g_srv);
}

/* Drain whatever the target sent; never block for long. */
static void drain(int fd, int ms)
{
	uint8_t buf[65536];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (poll(&pfd, 1, ms) > 0) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	size_t off = 0;

	if (!g_scsi)
		setup();
	if (size > (1u << 20))
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 0;
	if (iscsi_conn_start(&g_srv, sv[0])) {
		close(sv[1]);
		return 0;
	}
	while (off < size) {
		ssize_t n = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno != EAGAIN)
			break;
		drain(sv[1], n > 0 ? 0 : 5);
	}
	shutdown(sv[1], SHUT_WR);
	drain(sv[1], 100);
	close(sv[1]);
	/* Wait for the connection thread to finish its cleanup. */
	for (int i = 0; i < 5000; i++) {
		unsigned n;
		pthread_mutex_lock(&g_srv.lock);
		n = g_srv.nconns;
		pthread_mutex_unlock(&g_srv.lock);
		if (n == 0)
			break;
		usleep(1000);
	}
	return 0;
}
