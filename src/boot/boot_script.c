/*
 * boot_script.c - the boot endpoint's pure parts: checking what a request
 * carries, and writing iPXE scripts (see boot.h).  No I/O, so the unit
 * tests and the fuzzer drive it directly.
 */
#include "boot/boot.h"
#include "lab/rules.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int boot_parse_param(struct boot_request *rq, const char *key, const char *val,
		     char *err, size_t errlen)
{
	unsigned char addr[16];
	char why[120];   /* rules_*'s message quotes the value: not echoed to the wire */

	if (!val)
		val = "";
	if (strcmp(key, "mac") == 0) {
		if (val[0] && rules_mac(val, rq->mac, why, sizeof(why))) {
			snprintf(err, errlen, "mac: not a MAC address");
			return -EINVAL;
		}
	} else if (strcmp(key, "uuid") == 0) {
		if (val[0] && rules_uuid(val, rq->uuid, why, sizeof(why))) {
			snprintf(err, errlen, "uuid: not a UUID");
			return -EINVAL;
		}
	} else if (strcmp(key, "ip") == 0) {
		if (val[0]) {
			if (strlen(val) >= sizeof(rq->ip) ||
			    (inet_pton(AF_INET, val, addr) != 1 && inet_pton(AF_INET6, val, addr) != 1)) {
				snprintf(err, errlen, "ip: not a numeric address");
				return -EINVAL;
			}
			snprintf(rq->ip, sizeof(rq->ip), "%s", val);
		}
	}
	return 0;
}

static bool name_valid(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!(isalnum((unsigned char)c) || c == '-' || c == '.'))
			return false;
	}
	return s[0] != '-' && s[0] != '.';
}

bool boot_host_valid(const char *s)
{
	const char *end;
	size_t hl, n = strlen(s);
	unsigned char addr[16];
	char host[64];

	if (n == 0 || n >= BOOT_HOST_MAX)
		return false;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || (size_t)(end - s - 1) >= sizeof(host))
			return false;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		if (inet_pton(AF_INET6, host, addr) != 1)
			return false;
		end++;
	} else {
		end = strchr(s, ':');
		if (!end)
			end = s + n;
		hl = (size_t)(end - s);
		if (!name_valid(s, hl))
			return false;
	}
	if (*end == '\0')
		return true;
	if (*end != ':' || !end[1] || strlen(end + 1) > 5)
		return false;
	for (const char *p = end + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	unsigned long port = strtoul(end + 1, NULL, 10);
	return port >= 1 && port <= 65535;
}

/* Append to out; -ENOSPC when it does not fit. */
__attribute__((format(printf, 4, 5)))
static int put(char *out, size_t len, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(out + *n, len - *n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= len - *n)
		return -ENOSPC;
	*n += (size_t)r;
	return 0;
}

/* Text safe on an iPXE echo/comment line: no variables, operators, quotes. */
static void safe_text(const char *in, char *out, size_t len)
{
	size_t n = 0;

	for (; *in && n + 1 < len; in++) {
		unsigned char c = (unsigned char)*in;
		out[n++] = (isalnum(c) || strchr(" .,:;_()/@=+-", c)) ? (char)c : '?';
	}
	out[n] = '\0';
}

bool boot_setting_safe(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++)
		if (*v <= 0x20 || *v >= 0x7f || strchr("$\"'\\#", *v))
			return false;
	return true;
}

/* The CHAP settings of a, if any. */
static int put_chap(char *out, size_t len, size_t *n, const struct boot_answer *a)
{
	if (!a->chap_user[0])
		return 0;
	if (!boot_setting_safe(a->chap_user) || !boot_setting_safe(a->chap_secret) ||
	    (a->mutual_user[0] && (!boot_setting_safe(a->mutual_user) ||
				   !boot_setting_safe(a->mutual_secret))))
		return -EINVAL;
	if (put(out, len, n, "set username %s\nset password %s\n", a->chap_user, a->chap_secret))
		return -ENOSPC;
	if (a->mutual_user[0] && put(out, len, n, "set reverse-username %s\nset reverse-password %s\n",
				     a->mutual_user, a->mutual_secret))
		return -ENOSPC;
	return 0;
}

int boot_script_chain(const char *self, char *out, size_t len)
{
	size_t n = 0;

	if (!boot_host_valid(self))
		return -EINVAL;
	if (put(out, len, &n, "#!ipxe\n"
		"# pristine: identify this PC, then boot it\n"
		"chain http://%s/boot.ipxe?mac=${mac:hexhyp}&uuid=${uuid}&ip=${ip} || goto failed\n"
		"exit\n"
		":failed\n"
		"echo pristine: the boot server at %s did not answer\n"
		"sleep 10\n"
		"exit 1\n", self, self))
		return -ENOSPC;
	return (int)n;
}

int boot_script(const struct boot_answer *a, const struct boot_request *rq, char *out, size_t len)
{
	char who[260], msg[600], host[BOOT_HOST_MAX];
	const char *colon;
	size_t n = 0;
	int rc;

	safe_text(a->who, who, sizeof(who));
	if (a->kind == BOOT_MESSAGE) {
		safe_text(a->message, msg, sizeof(msg));
		rc = put(out, len, &n, "#!ipxe\n"
			 "# pristine: %s\n"
			 "echo\n"
			 "echo pristine: %s\n"
			 "echo\n"
			 "sleep 30\n"
			 "exit 1\n", who, msg);
		return rc ? rc : (int)n;
	}
	/* The portal is HOST:PORT with HOST a name, IPv4 or [IPv6]. */
	colon = strrchr(a->portal, ':');
	if (!colon || !boot_host_valid(a->portal) || (a->portal[0] == '[' && colon[-1] != ']'))
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - a->portal), a->portal);
	for (const char *p = a->initiator; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr(".-:", *p)))
			return -EINVAL;
	for (const char *p = a->target; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr(".-:", *p)))
			return -EINVAL;
	rc = put(out, len, &n, "#!ipxe\n"
		 "# pristine: %s%s%s\n"
		 "set initiator-iqn %s\n", who, rq->mac[0] ? " mac " : "", rq->mac, a->initiator);
	if (!rc)
		rc = put_chap(out, len, &n, a);
	if (!rc)
		rc = put(out, len, &n,
		 ":retry\n"
		 "sanboot iscsi:%s::%s:0:%s || goto failed\n"
		 "exit\n"
		 ":failed\n"
		 "echo pristine: could not boot %s from %s\n"
		 "echo pristine: trying again in 10 seconds\n"
		 "sleep 10\n"
		 "goto retry\n",
		 host, colon + 1, a->target, a->target, a->portal);
	return rc ? rc : (int)n;
}
