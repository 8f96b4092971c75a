/*
 * boot_http.c - the boot endpoint's HTTP server (libmicrohttpd): GET
 * /boot.ipxe only, small requests, short timeouts, a bounded number of
 * connections per address (see boot.h).
 */
#include "boot/boot.h"
#include "util/log.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BOOT_THREADS 2
#define BOOT_MAX_CONNS 512
#define BOOT_PER_IP 16
#define BOOT_TIMEOUT_S 10
#define BOOT_CONN_MEM (16 * 1024)
#define SCRIPT_MAX 4096

struct boot_server {
	struct MHD_Daemon *mhd;
	const struct boot_hooks *hooks;
	char name[80];
	unsigned port;                /* the port we listen on */
};

static void boot_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("boot: %s", buf);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *msg)
{
	char buf[300];
	int n = snprintf(buf, sizeof(buf), "%s\n", msg);

	return reply(c, status, "text/plain", buf, (size_t)n);
}

/* The peer's numeric address. */
static void peer_of(struct MHD_Connection *c, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(out, len, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

/* host[:port] the client reached us at: its Host header, or our socket address. */
static int self_of(struct boot_server *b, struct MHD_Connection *c, struct boot_request *rq)
{
	const char *h = NULL;
	size_t hlen = 0;
	const union MHD_ConnectionInfo *ci;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];

	if (MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST,
					  strlen(MHD_HTTP_HEADER_HOST), &h, &hlen) != MHD_YES)
		h = NULL;
	if (h) {
		/* A NUL inside would cut the value short of what was sent. */
		if (strlen(h) != hlen || !boot_host_valid(h))
			return -EINVAL;
		snprintf(rq->self, sizeof(rq->self), "%s", h);
		snprintf(rq->host, sizeof(rq->host), "%s", h);
		if (h[0] == '[')
			rq->host[strcspn(rq->host, "]") + 1] = '\0';
		else
			rq->host[strcspn(rq->host, ":")] = '\0';
		return 0;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci || getsockname(ci->connect_fd, (struct sockaddr *)&ss, &sl))
		return -EIO;
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
		snprintf(rq->host, sizeof(rq->host), "%s", addr);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
		snprintf(rq->host, sizeof(rq->host), "[%s]", addr);
	}
	if (snprintf(rq->self, sizeof(rq->self), "%s:%u", rq->host, b->port) >= (int)sizeof(rq->self))
		return -EINVAL;
	return 0;
}

struct arg_ctx {
	struct boot_request *rq;
	char err[128];
	bool bad, any;
	unsigned n;
};

static enum MHD_Result take_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
			       const char *val, size_t val_size)
{
	struct arg_ctx *a = cls;

	(void)kind;
	if (strlen(key) != key_size || (val && strlen(val) != val_size)) {
		snprintf(a->err, sizeof(a->err), "NUL byte in a parameter");
		a->bad = true;
		return MHD_NO;
	}
	if (++a->n > 16) {
		snprintf(a->err, sizeof(a->err), "too many parameters");
		a->bad = true;
		return MHD_NO;
	}
	if (!strcmp(key, "mac") || !strcmp(key, "uuid") || !strcmp(key, "ip"))
		a->any = true;
	if (boot_parse_param(a->rq, key, val, a->err, sizeof(a->err))) {
		a->bad = true;
		return MHD_NO;
	}
	return MHD_YES;
}

static enum MHD_Result boot_handler(void *cls, struct MHD_Connection *c, const char *url,
				    const char *method, const char *version, const char *upload,
				    size_t *upload_len, void **con_cls)
{
	struct boot_server *b = cls;
	struct boot_request rq = { 0 };
	struct boot_answer ans = { 0 };
	struct arg_ctx a = { .rq = &rq };
	char script[SCRIPT_MAX];
	enum MHD_Result ret;
	int n, rc;

	(void)version; (void)upload;
	if (!*con_cls) {
		/* First call, headers only: refuse what we will not serve now,
		 * before any body is read (a reply may be queued only here or
		 * once the body is in). */
		*con_cls = (void *)1;
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			return text(c, 405, "GET /boot.ipxe");
		if (strcmp(url, "/boot.ipxe"))
			return text(c, 404, "pristine boot endpoint: GET /boot.ipxe");
		return MHD_YES;
	}
	if (*upload_len) {
		/* A GET with a body: drop the body, answer once it is in. */
		*con_cls = (void *)2;
		*upload_len = 0;
		return MHD_YES;
	}
	if (*con_cls == (void *)2)
		return text(c, 413, "no request body here");
	peer_of(c, rq.peer, sizeof(rq.peer));
	if (self_of(b, c, &rq)) {
		log_warn("boot: request from %s with a bad Host header: refused", rq.peer);
		return text(c, 400, "bad Host header");
	}
	MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, take_arg, &a);
	if (a.bad) {
		log_warn("boot: request from %s refused: %s", rq.peer, a.err);
		return text(c, 400, a.err);
	}
	if (!a.any) {
		n = boot_script_chain(rq.self, script, sizeof(script));
		if (n < 0)
			return text(c, 500, "cannot make the script");
		log_debug("boot: %s: first step, chain with iPXE's variables", rq.peer);
		return reply(c, 200, "text/plain", script, (size_t)n);
	}
	rc = b->hooks->resolve(b->hooks->ctx, &rq, &ans);
	if (rc) {
		log_err("boot: request from %s (mac %s): %s", rq.peer, rq.mac[0] ? rq.mac : "-",
			strerror(-rc));
		return text(c, 500, "the boot server failed; see its log");
	}
	n = boot_script(&ans, &rq, script, sizeof(script));
	if (n < 0)
		log_err("boot: cannot write the script for %s: %s", ans.who, strerror(-n));
	explicit_bzero(&ans, sizeof(ans));   /* CHAP secrets */
	if (n < 0) {
		explicit_bzero(script, sizeof(script));
		return text(c, 500, "cannot make the script");
	}
	ret = reply(c, 200, "text/plain", script, (size_t)n);   /* copied */
	explicit_bzero(script, (size_t)n);
	return ret;
}

/*
 * Log the URLs the endpoint answers on, in a form an admin can copy into
 * the DHCP server's configuration: the one address fd is bound to, or,
 * bound to every address of its family, "http://<any IPv4 address>:PORT"
 * and then each address this host has now, one line each (the host may
 * gain others later: the wildcard line says so).  Logs only.
 */
static void log_urls(int fd, const char *name)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct ifaddrs *ifs = NULL;
	char host[INET6_ADDRSTRLEN];
	const void *addr;
	bool v6, any;
	unsigned port;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
		log_notice("boot endpoint on %s", name);
		return;
	}
	v6 = ss.ss_family == AF_INET6;
	if (v6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		addr = &s6->sin6_addr;
		port = ntohs(s6->sin6_port);
		any = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
		addr = &s4->sin_addr;
		port = ntohs(s4->sin_port);
		any = s4->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	if (!any) {
		inet_ntop(ss.ss_family, addr, host, sizeof(host));
		log_notice("boot endpoint on http://%s%s%s:%u/boot.ipxe", v6 ? "[" : "", host,
			   v6 ? "]" : "", port);
		return;
	}
	log_notice("boot endpoint on http://<any %s address>:%u/boot.ipxe; this host's now:",
		   v6 ? "IPv6" : "IPv4", port);
	if (getifaddrs(&ifs)) {
		log_warn("boot: cannot list this host's addresses: %s", strerror(errno));
		return;
	}
	for (const struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != ss.ss_family || !(i->ifa_flags & IFF_UP))
			continue;
		addr = v6 ? (const void *)&((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr
			  : (const void *)&((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
		if (v6 && IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)addr))
			continue;   /* needs a zone: not a URL a DHCP server can hand out */
		inet_ntop(ss.ss_family, addr, host, sizeof(host));
		log_notice("boot endpoint on http://%s%s%s:%u/boot.ipxe (%s)", v6 ? "[" : "", host,
			   v6 ? "]" : "", port, i->ifa_name);
	}
	freeifaddrs(ifs);
}

int boot_start(int fd, const char *name, const struct boot_hooks *hooks, struct boot_server **out)
{
	struct boot_server *b = calloc(1, sizeof(*b));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	b->hooks = hooks;
	snprintf(b->name, sizeof(b->name), "%s", name);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		b->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
				((struct sockaddr_in6 *)&ss)->sin6_port);
	b->mhd = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG,
				  0, NULL, NULL, boot_handler, b,
				  MHD_OPTION_EXTERNAL_LOGGER, boot_mhd_log, NULL,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_THREAD_POOL_SIZE, (unsigned)BOOT_THREADS,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)BOOT_MAX_CONNS,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)BOOT_PER_IP,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)BOOT_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)BOOT_CONN_MEM,
				  MHD_OPTION_END);
	if (!b->mhd) {
		log_err("boot: cannot start the HTTP server on %s", name);
		close(fd);
		free(b);
		return -EIO;
	}
	log_urls(fd, name);
	*out = b;
	return 0;
}

void boot_stop(struct boot_server *b)
{
	if (!b)
		return;
	MHD_stop_daemon(b->mhd);
	free(b);
}
