/*
 * listen.h - TCP portals: parse "ADDR:PORT", bind, and run the accept loop
 * until SIGTERM/SIGINT.
 */
#ifndef PRISTINE_LISTEN_H
#define PRISTINE_LISTEN_H

#include "proto/iscsi.h"

#define MAX_PORTALS 8

struct portal_set {
	int fds[MAX_PORTALS];
	char names[MAX_PORTALS][80];
	unsigned n;
};

/*
 * Bind a portal.  spec is "HOST:PORT", "[V6]:PORT", "*:PORT" or ":PORT"
 * (every IPv4 and IPv6 address).  Returns 0 or -errno with a message
 * logged.
 */
int portal_add(struct portal_set *ps, const char *spec);
void portal_close_all(struct portal_set *ps);

/*
 * Accept connections on every portal and hand them to srv until SIGTERM
 * or SIGINT arrives.  The caller must have blocked those signals in every
 * thread (they are read from a signalfd here).  Returns 0 on a clean stop.
 */
int portal_serve(struct portal_set *ps, struct iscsi_server *srv);

#endif
