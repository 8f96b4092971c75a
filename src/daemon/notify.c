/*
 * notify.c - sd_notify readiness for systemd (see notify.h).
 *
 * libsystemd's sd_notify does the protocol (a datagram to the Unix
 * socket named by NOTIFY_SOCKET, abstract or not); this file only keeps
 * the daemon's own text out of the protocol's framing: a STATUS= value
 * must not carry a newline, or it would add fields of its own.
 */
#include "daemon/notify.h"
#include "util/log.h"

#include <stdlib.h>
#include <systemd/sd-daemon.h>

void notify_ready(const char *status)
{
	char safe[256];
	int rc;

	if (!getenv("NOTIFY_SOCKET"))
		return;
	if (status)
		rc = sd_notifyf(0, "READY=1\nSTATUS=%s", log_safe(status, safe, sizeof(safe)));
	else
		rc = sd_notify(0, "READY=1");
	if (rc < 0)
		log_warn("cannot tell systemd that pristined is ready: sd_notify: error %d", rc);
}

void notify_stopping(void)
{
	int rc;

	if (!getenv("NOTIFY_SOCKET"))
		return;
	rc = sd_notify(0, "STOPPING=1");
	if (rc < 0)
		log_warn("cannot tell systemd that pristined is stopping: sd_notify: error %d", rc);
}
