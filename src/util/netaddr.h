/*
 * netaddr.h - source-address rules: "ADDR" or "ADDR/PREFIX", IPv4 or
 * IPv6, and whether a peer's socket address falls inside one.
 *
 * Used to bind a client to the machines it may log in from.  An IPv4
 * peer seen through an IPv6 socket (::ffff:a.b.c.d) matches IPv4 rules.
 */
#ifndef PRISTINE_NETADDR_H
#define PRISTINE_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NETADDR_TEXT_MAX 64   /* longest rule text, NUL included */

struct netaddr_rule {
	int family;               /* AF_INET or AF_INET6 */
	uint8_t addr[16];         /* network byte order; host bits cleared */
	unsigned prefix;          /* 0..32 or 0..128 */
};

/*
 * Parse "ADDR" (a single host) or "ADDR/PREFIX".  Host bits below the
 * prefix must be zero (10.0.0.5/24 is refused: the admin meant something
 * else).  Returns 0, or -EINVAL with msg set to the reason, without the
 * text (msg may be NULL).
 */
int netaddr_parse(const char *text, struct netaddr_rule *r, char *msg, size_t msglen);

/*
 * Parse a comma-separated list of rules ("10.0.0.21, 10.0.1.0/24"), spaces
 * around items allowed, at most max, no duplicates.  An empty list gives
 * *n = 0.  Returns 0, or -EINVAL with msg naming the item (made safe for
 * logs) and the reason; rules and *n are then unspecified.
 */
int netaddr_parse_list(const char *list, struct netaddr_rule *rules, unsigned max, unsigned *n,
		       char *msg, size_t msglen);

/* Canonical text: "10.0.0.0/24", "fd00::/64", or a bare host address. */
void netaddr_format(const struct netaddr_rule *r, char *out, size_t outlen);

/* Does the peer address sa (AF_INET or AF_INET6) fall inside r? */
bool netaddr_match(const struct netaddr_rule *r, const struct sockaddr *sa);

/* Same rule (after canonicalisation)? */
bool netaddr_equal(const struct netaddr_rule *a, const struct netaddr_rule *b);

#endif
