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

#include "fuzz_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE (4u << 20)

static void setup(void)
{
	log_set_level(LOG_ERR);
	fuzz_target_setup(MEM_SIZE, 0xff, (struct iscsi_hooks){ 0 });
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
	fuzz_target_wait();
	return 0;
}
