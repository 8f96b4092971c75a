/*
 * netaddr.c - source-address rules (see netaddr.h).
 */
#include "util/netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *msg, size_t msglen, const char *why)
{
	if (msg && msglen)
		snprintf(msg, msglen, "%s", why);
	return -EINVAL;
}

int netaddr_parse(const char *text, struct netaddr_rule *r, char *msg, size_t msglen)
{
	char buf[NETADDR_TEXT_MAX];
	const char *slash;
	unsigned max, bytes;
	size_t n = strlen(text);

	memset(r, 0, sizeof(*r));
	if (n == 0 || n >= sizeof(buf))
		return fail(msg, msglen, "not an address");
	memcpy(buf, text, n + 1);
	slash = strchr(buf, '/');
	if (slash)
		buf[slash - buf] = '\0';
	r->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(r->family, buf, r->addr) != 1)
		return fail(msg, msglen, "not an IPv4 or IPv6 address");
	max = r->family == AF_INET ? 32 : 128;
	r->prefix = max;
	if (slash) {
		const char *p = text + (slash - buf) + 1;
		char *end;
		unsigned long v;

		if (*p < '0' || *p > '9' || strlen(p) > 3)
			return fail(msg, msglen, "the prefix length is not a number");
		v = strtoul(p, &end, 10);
		if (*end || v > max)
			return fail(msg, msglen, "prefix length out of range");
		r->prefix = (unsigned)v;
	}
	/* Refuse set host bits: "10.0.0.5/24" is a typo, not a network. */
	bytes = max / 8;
	for (unsigned i = 0; i < bytes; i++) {
		unsigned first = i * 8;
		uint8_t host = first >= r->prefix ? 0xff :
			       first + 8 <= r->prefix ? 0 : (uint8_t)(0xff >> (r->prefix - first));
		if (r->addr[i] & host)
			return fail(msg, msglen, "address bits set beyond the prefix length");
	}
	return 0;
}

/* item as printable ASCII for a message (anything else becomes '?'). */
static void shown(const char *item, size_t len, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; i < len && i + 1 < outlen; i++)
		out[i] = item[i] >= 0x20 && item[i] < 0x7f ? item[i] : '?';
	out[i] = '\0';
}

int netaddr_parse_list(const char *list, struct netaddr_rule *rules, unsigned max, unsigned *n,
		       char *msg, size_t msglen)
{
	const char *s = list;
	char item[NETADDR_TEXT_MAX], show[NETADDR_TEXT_MAX], why[80];

	*n = 0;
	while (isspace((unsigned char)*s))
		s++;
	if (!*s)
		return 0;
	for (;;) {
		const char *e = strchr(s, ',');
		size_t il = e ? (size_t)(e - s) : strlen(s);

		while (il && isspace((unsigned char)*s))
			s++, il--;
		while (il && isspace((unsigned char)s[il - 1]))
			il--;
		shown(s, il, show, sizeof(show));
		if (il == 0) {
			snprintf(msg, msglen, "empty address in list");
			return -EINVAL;
		}
		if (il >= sizeof(item)) {
			snprintf(msg, msglen, "'%.40s...': address too long", show);
			return -EINVAL;
		}
		if (*n >= max) {
			snprintf(msg, msglen, "too many addresses (at most %u)", max);
			return -EINVAL;
		}
		memcpy(item, s, il);
		item[il] = '\0';
		if (netaddr_parse(item, &rules[*n], why, sizeof(why))) {
			snprintf(msg, msglen, "'%s': %s (use ADDR or ADDR/PREFIX)", show, why);
			return -EINVAL;
		}
		for (unsigned i = 0; i < *n; i++)
			if (netaddr_equal(&rules[i], &rules[*n])) {
				snprintf(msg, msglen, "'%s' listed twice", show);
				return -EINVAL;
			}
		(*n)++;
		if (!e)
			return 0;
		s = e + 1;
	}
}

void netaddr_format(const struct netaddr_rule *r, char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN];
	unsigned max = r->family == AF_INET ? 32 : 128;

	if (!inet_ntop(r->family, r->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	if (r->prefix == max)
		snprintf(out, outlen, "%s", a);
	else
		snprintf(out, outlen, "%s/%u", a, r->prefix);
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, full))
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((a[full] & mask) != (b[full] & mask))
			return false;
	}
	return true;
}

bool netaddr_match(const struct netaddr_rule *r, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *peer;
	int family;

	if (sa->sa_family == AF_INET) {
		peer = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		peer = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		family = AF_INET6;
		if (r->family == AF_INET && memcmp(peer, v4mapped, 12) == 0) {
			peer += 12;
			family = AF_INET;
		}
	} else {
		return false;
	}
	return family == r->family && prefix_equal(peer, r->addr, r->prefix);
}

bool netaddr_equal(const struct netaddr_rule *a, const struct netaddr_rule *b)
{
	return a->family == b->family && a->prefix == b->prefix &&
	       memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}
