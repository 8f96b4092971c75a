/*
 * listen.c - TCP portals and the accept loop (see listen.h).
 */
#include "daemon/listen.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

static int bind_one(struct portal_set *ps, int family, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int fd = -1, one = 1, rc;
	char name[80];

	if (ps->n >= MAX_PORTALS) {
		log_err("too many portals (at most %d)", MAX_PORTALS);
		return -E2BIG;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		log_err("portal %s:%s: %s", host ? host : "*", port, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 128))
		goto err;
	if (res->ai_family == AF_INET6)
		snprintf(name, sizeof(name), "[%s]:%s", host ? host : "::", port);
	else
		snprintf(name, sizeof(name), "%s:%s", host ? host : "0.0.0.0", port);
	freeaddrinfo(res);
	ps->fds[ps->n] = fd;
	snprintf(ps->names[ps->n], sizeof(ps->names[0]), "%s", name);
	ps->n++;
	log_notice("listening on %s", name);
	return 0;
err:
	rc = -errno;
	log_err("portal %s:%s: %s", host ? host : "*", port, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return rc;
}

int portal_add(struct portal_set *ps, const char *spec)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	size_t hl;

	if (!colon || !colon[1]) {
		log_err("portal '%s': expected ADDR:PORT", spec);
		return -EINVAL;
	}
	hl = (size_t)(colon - spec);
	if (hl >= sizeof(host)) {
		log_err("portal '%s': address too long", spec);
		return -EINVAL;
	}
	memcpy(host, spec, hl);
	host[hl] = '\0';
	if (hl == 0 || strcmp(host, "*") == 0) {
		int rc = bind_one(ps, AF_INET, NULL, colon + 1);
		if (rc)
			return rc;
		/* IPv6 may be disabled on this host: IPv4 alone is fine then. */
		if (bind_one(ps, AF_INET6, NULL, colon + 1))
			log_warn("no IPv6 portal on port %s", colon + 1);
		return 0;
	}
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		return bind_one(ps, AF_INET6, host + 1, colon + 1);
	}
	return bind_one(ps, AF_UNSPEC, host, colon + 1);
}

void portal_close_all(struct portal_set *ps)
{
	for (unsigned i = 0; i < ps->n; i++)
		close(ps->fds[i]);
	ps->n = 0;
}

int portal_serve(struct portal_set *ps, struct iscsi_server *srv)
{
	struct pollfd pfd[MAX_PORTALS + 1];
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return -errno;
	}
	for (unsigned i = 0; i < ps->n; i++)
		pfd[i] = (struct pollfd){ .fd = ps->fds[i], .events = POLLIN };
	pfd[ps->n] = (struct pollfd){ .fd = sfd, .events = POLLIN };

	for (;;) {
		int r = poll(pfd, ps->n + 1, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (pfd[ps->n].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				log_notice("signal %u: shutting down", si.ssi_signo);
			break;
		}
		for (unsigned i = 0; i < ps->n; i++) {
			int fd;
			if (!pfd[i].revents)
				continue;
			fd = accept4(ps->fds[i], NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0) {
				/* EMFILE and friends: back off instead of spinning. */
				if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
					log_warn("accept on %s: %s", ps->names[i], strerror(errno));
					usleep(100000);
				}
				continue;
			}
			iscsi_conn_start(srv, fd);
		}
	}
	close(sfd);
	return 0;
}
