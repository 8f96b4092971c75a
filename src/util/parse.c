/*
 * parse.c - value parsers shared by the options, the configuration file,
 * the admin API and pristinectl.  Contracts in parse.h.
 */
#include "util/parse.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static void why_set(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Fill why (if there is room) and let the caller return -EINVAL. */
static void why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* s quoted for a message: printable and at most ~60 bytes. */
#define SHOWN(s, buf) log_safe((s), (buf), sizeof(buf))

/* Decimal digits only, into *v; false on no digit, another byte before
 * end, or a value above max.  *end (may be NULL) gets where digits stop. */
static bool digits(const char *s, uint64_t max, uint64_t *v, const char **end)
{
	uint64_t n = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (max - (uint64_t)(*p - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (!end && *p)
		return false;
	if (end)
		*end = p;
	*v = n;
	return true;
}

int parse_size(const char *s, uint64_t *out, char *why, size_t whylen)
{
	char shown[64];
	const char *p;
	unsigned shift = 0;
	uint64_t v;

	if (!digits(s, UINT64_MAX, &v, &p)) {
		if (strspn(s, "0123456789"))
			goto big;     /* digits, but more than 64 bits of them */
		goto bad;
	}
	switch (*p) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default: break;
	}
	if (shift && *++p == 'i')
		p++;
	if (*p == 'B')
		p++;
	if (*p)
		goto bad;
	if (v > (PARSE_SIZE_MAX >> shift)) {
big:
		why_set(why, whylen, "'%s' is too large (at most 2^63-1 bytes, about 8 EiB)",
			SHOWN(s, shown));
		return -EINVAL;
	}
	*out = v << shift;
	return 0;
bad:
	why_set(why, whylen, "'%s' is not a size (a number of bytes, or a number with K, M, G "
		"or T: 512M, 20G, 20GiB)", SHOWN(s, shown));
	return -EINVAL;
}

int parse_block_size(const char *s, uint32_t *out, char *why, size_t whylen)
{
	char shown[64];

	if (strcmp(s, "512") == 0)
		*out = 512;
	else if (strcmp(s, "4096") == 0)
		*out = 4096;
	else {
		why_set(why, whylen, "'%s' is not 512 or 4096", SHOWN(s, shown));
		return -EINVAL;
	}
	return 0;
}

/* parse_uint and parse_seconds: unit is "" or " of seconds". */
static int uint_in(const char *s, unsigned lo, unsigned hi, unsigned *out, const char *unit,
		   char *why, size_t whylen)
{
	char shown[64];
	uint64_t v;

	if (!digits(s, hi, &v, NULL) || v < lo) {
		why_set(why, whylen, "'%s' is not a number%s from %u to %u", SHOWN(s, shown), unit,
			lo, hi);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out, char *why, size_t whylen)
{
	return uint_in(s, lo, hi, out, "", why, whylen);
}

int parse_seconds(const char *s, unsigned lo, unsigned hi, unsigned *out, char *why,
		  size_t whylen)
{
	return uint_in(s, lo, hi, out, " of seconds", why, whylen);
}

int parse_time_of_day(const char *s, int *minutes, char *why, size_t whylen)
{
	char shown[64];
	size_t hl = strspn(s, "0123456789");
	uint64_t h, m;

	if (hl < 1 || hl > 2 || s[hl] != ':' || strspn(s + hl + 1, "0123456789") != 2 ||
	    s[hl + 3] != '\0')
		goto bad;
	h = (uint64_t)(s[0] - '0');
	if (hl == 2)
		h = h * 10 + (uint64_t)(s[1] - '0');
	m = (uint64_t)(s[hl + 1] - '0') * 10 + (uint64_t)(s[hl + 2] - '0');
	if (h > 23 || m > 59)
		goto bad;
	*minutes = (int)(h * 60 + m);
	return 0;
bad:
	why_set(why, whylen, "'%s' is not a time of day HH:MM (00:00 to 23:59)", SHOWN(s, shown));
	return -EINVAL;
}

bool parse_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= PARSE_NAME_MAX || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

int parse_name(const char *s, const char *what, char *why, size_t whylen)
{
	char shown[80];

	if (parse_name_ok(s))
		return 0;
	why_set(why, whylen, "'%s' is not a valid %s name (1 to %d lower-case letters, digits "
		"and '-', not starting with '-')", SHOWN(s, shown), what, PARSE_NAME_MAX - 1);
	return -EINVAL;
}

/* s[0..n) are hex digits and s[n] ends the string. */
static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return s[n] == '\0';
}

/* Length of the valid UTF-8 sequence at p (beyond ASCII), or 0. */
static size_t utf8_seq(const unsigned char *p)
{
	size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 :
		   p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : 0;

	if (p[0] >= 0xf8)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

bool parse_iqn_ok(const char *s)
{
	size_t len = strlen(s);
	const unsigned char *p;

	if (len == 0 || len >= PARSE_IQN_MAX)
		return false;
	if (strncasecmp(s, "eui.", 4) == 0)
		return is_hex(s + 4, 16);
	if (strncasecmp(s, "naa.", 4) == 0)
		return is_hex(s + 4, 16) || is_hex(s + 4, 32);
	if (strncasecmp(s, "iqn.", 4) != 0)
		return false;
	/* iqn.yyyy-mm.<reversed domain>[:<anything>] */
	for (int i = 4; i < 11; i++)
		if (i == 8 ? s[i] != '-' : !(s[i] >= '0' && s[i] <= '9'))
			return false;
	if (s[11] != '.' || !s[12])
		return false;
	for (p = (const unsigned char *)s + 12; *p;) {
		size_t n;
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == ':') {
			p++;
			continue;
		}
		if (*p < 0x80 || !(n = utf8_seq(p)))
			return false;
		p += n;
	}
	return true;
}

int parse_iqn(const char *s, char *why, size_t whylen)
{
	char shown[80];

	if (parse_iqn_ok(s))
		return 0;
	if (strlen(s) >= PARSE_IQN_MAX)
		why_set(why, whylen, "'%s' is too long for an iSCSI name (at most %d bytes)",
			SHOWN(s, shown), PARSE_IQN_MAX - 1);
	else
		why_set(why, whylen, "'%s' is not a valid iSCSI name (iqn.YYYY-MM.domain:..., "
			"eui.<16 hex>, naa.<16 or 32 hex>)", SHOWN(s, shown));
	return -EINVAL;
}

int parse_portal(const char *s, unsigned *port, char *why, size_t whylen)
{
	char shown[80], host[64];
	const char *colon = strrchr(s, ':');
	unsigned char addr[16];
	uint64_t pv;
	size_t hl;

	if (!colon || strlen(s) >= PARSE_PORTAL_MAX || strlen(colon + 1) > 5 ||
	    !digits(colon + 1, 65535, &pv, NULL) || pv == 0)
		goto bad;
	hl = (size_t)(colon - s);
	if (hl == 0 || (hl == 1 && s[0] == '*'))
		goto good;
	if (hl >= sizeof(host))
		goto bad;
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']')
			goto bad;
		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = '\0';
		if (inet_pton(AF_INET6, host, addr) != 1)
			goto bad;
		goto good;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, addr) != 1)
		goto bad;
good:
	if (port)
		*port = (unsigned)pv;
	return 0;
bad:
	why_set(why, whylen, "'%s' is not ADDR:PORT with a numeric address (e.g. *:3260, "
		"10.0.0.1:3260, [fd00::1]:3260)", SHOWN(s, shown));
	return -EINVAL;
}

int parse_hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
