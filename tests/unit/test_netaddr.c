/*
 * test_netaddr.c - source-address rules (src/util/netaddr.c): parsing,
 * canonical text, matching IPv4, IPv6 and IPv4-mapped peers at prefix
 * boundaries, and lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <string.h>

#include "util/netaddr.h"

static struct sockaddr_storage peer(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

static bool matches(const char *rule, const char *ip)
{
	struct netaddr_rule r;
	struct sockaddr_storage ss = peer(ip);

	assert_int_equal(netaddr_parse(rule, &r, NULL, 0), 0);
	return netaddr_match(&r, (struct sockaddr *)&ss);
}

static void test_parse_and_format(void **state)
{
	static const struct { const char *in, *out; } ok[] = {
		{ "10.0.0.21", "10.0.0.21" }, { "10.0.0.0/24", "10.0.0.0/24" },
		{ "10.0.0.0/32", "10.0.0.0" }, { "0.0.0.0/0", "0.0.0.0/0" },
		{ "fd00:0::21", "fd00::21" }, { "FD00::/64", "fd00::/64" }, { "::/0", "::/0" },
		{ "10.0.0.6/31", "10.0.0.6/31" },
	};
	static const char *const bad[] = {
		"", "10.0.0.5/24", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1",
		"10.0.0.0/+8", "10.0.0.0/ 8", "10.0.0", "host.example", "10.0.0.0/8/8",
		"fd00::1/64", "1.2.3.4 ", "10.0.0.0/0008",
		"0123456789012345678901234567890123456789012345678901234567890123456789",
	};
	char out[NETADDR_TEXT_MAX], msg[80];
	struct netaddr_rule r;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(netaddr_parse(ok[i].in, &r, msg, sizeof(msg)), 0);
		netaddr_format(&r, out, sizeof(out));
		assert_string_equal(out, ok[i].out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = 0;
		assert_int_equal(netaddr_parse(bad[i], &r, msg, sizeof(msg)), -EINVAL);
		assert_true(msg[0] != 0);
	}
}

static void test_match(void **state)
{
	(void)state;
	assert_true(matches("10.0.0.21", "10.0.0.21"));
	assert_false(matches("10.0.0.21", "10.0.0.22"));
	assert_true(matches("10.0.0.0/24", "10.0.0.255"));
	assert_false(matches("10.0.0.0/24", "10.0.1.0"));
	assert_true(matches("10.0.0.6/31", "10.0.0.7"));
	assert_false(matches("10.0.0.6/31", "10.0.0.8"));
	assert_true(matches("10.0.0.0/9", "10.127.255.255"));
	assert_false(matches("10.0.0.0/9", "10.128.0.0"));
	assert_true(matches("0.0.0.0/0", "192.168.1.1"));
	/* an IPv4 peer through an IPv6 socket */
	assert_true(matches("10.0.0.0/24", "::ffff:10.0.0.9"));
	assert_false(matches("10.0.0.0/24", "::ffff:10.0.1.9"));
	assert_false(matches("10.0.0.0/24", "fd00::a00:9"));
	/* families never mix otherwise */
	assert_false(matches("::/0", "10.0.0.1"));
	assert_false(matches("0.0.0.0/0", "fd00::1"));
	assert_true(matches("fd00::/64", "fd00::1234:5678"));
	assert_false(matches("fd00::/64", "fd00:0:0:1::1"));
	assert_true(matches("fd00::/63", "fd00:0:0:1::1"));
	assert_true(matches("::1", "::1"));
}

static void test_unspec_peer(void **state)
{
	struct sockaddr_storage ss;
	struct netaddr_rule r;

	(void)state;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	assert_int_equal(netaddr_parse("0.0.0.0/0", &r, NULL, 0), 0);
	assert_false(netaddr_match(&r, (struct sockaddr *)&ss));
}

static void test_list(void **state)
{
	struct netaddr_rule r[4];
	char msg[160];
	unsigned n;

	(void)state;
	assert_int_equal(netaddr_parse_list(" 10.0.0.21 ,fd00::/64,10.1.0.0/16", r, 4, &n, msg,
					    sizeof(msg)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(netaddr_parse_list("", r, 4, &n, msg, sizeof(msg)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(netaddr_parse_list("   ", r, 4, &n, msg, sizeof(msg)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(netaddr_parse_list("1.1.1.1,,2.2.2.2", r, 4, &n, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "empty"));
	assert_int_equal(netaddr_parse_list("1.1.1.1,1.1.1.1/32", r, 4, &n, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "twice"));
	assert_int_equal(netaddr_parse_list("1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5", r, 4, &n, msg,
					    sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "at most 4"));
	assert_int_equal(netaddr_parse_list("1.1.1.1,\x1b[31m", r, 4, &n, msg, sizeof(msg)), -EINVAL);
	assert_null(strchr(msg, '\x1b'));   /* made safe for logs */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_format),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_unspec_peer),
		cmocka_unit_test(test_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
