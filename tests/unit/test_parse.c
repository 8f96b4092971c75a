/*
 * test_parse.c - the value parsers shared by options, configuration file,
 * API and pristinectl (src/util/parse.c): what each takes, what it
 * refuses, the boundaries (2^63-1 bytes, port 65535, 23:59, 63-byte
 * names, 223-byte iSCSI names), that a refused value leaves *out alone,
 * and that messages quote the value safely.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "util/hash.h"
#include "util/parse.h"

static void size_ok(const char *s, uint64_t want)
{
	uint64_t v = 1;
	char why[256] = "";

	if (parse_size(s, &v, why, sizeof(why)))
		fail_msg("parse_size(%s) refused: %s", s, why);
	assert_true(v == want);
}

static void size_bad(const char *s, const char *want)
{
	uint64_t v = 77;
	char why[256] = "";

	assert_int_equal(parse_size(s, &v, why, sizeof(why)), -EINVAL);
	assert_true(v == 77);
	if (!strstr(why, want))
		fail_msg("parse_size(%s): '%s' lacks '%s'", s, why, want);
}

static void test_size(void **state)
{
	(void)state;
	size_ok("0", 0);
	size_ok("4096", 4096);
	size_ok("100B", 100);
	size_ok("1K", 1024);
	size_ok("1k", 1024);
	size_ok("512M", 512ull << 20);
	size_ok("20G", 20ull << 30);
	size_ok("20GiB", 20ull << 30);
	size_ok("20GB", 20ull << 30);
	size_ok("20Gi", 20ull << 30);
	size_ok("2t", 2ull << 40);
	size_ok("9223372036854775807", 9223372036854775807ull);
	size_ok("8388607T", 8388607ull << 40);
	size_bad("", "is not a size");
	size_bad("-1G", "'-1G' is not a size");
	size_bad("+1", "is not a size");
	size_bad(" 1", "is not a size");
	size_bad("1.5G", "is not a size");
	size_bad("5X", "'5X' is not a size");
	size_bad("1P", "is not a size");
	size_bad("1GiBx", "is not a size");
	size_bad("1iB", "is not a size");
	size_bad("G", "is not a size");
	size_bad("9223372036854775808", "too large");
	size_bad("18446744073709551616", "too large");
	size_bad("99999999999999999999999", "too large");
	size_bad("8388608T", "too large");
	size_bad("16E", "is not a size");
}

static void test_block_size(void **state)
{
	uint32_t b = 1;
	char why[128];

	(void)state;
	assert_int_equal(parse_block_size("512", &b, why, sizeof(why)), 0);
	assert_int_equal(b, 512);
	assert_int_equal(parse_block_size("4096", &b, why, sizeof(why)), 0);
	assert_int_equal(b, 4096);
	assert_int_equal(parse_block_size("4096junk", &b, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "'4096junk' is not 512 or 4096");
	assert_int_equal(parse_block_size("1024", &b, NULL, 0), -EINVAL);
	assert_int_equal(parse_block_size("04096", &b, NULL, 0), -EINVAL);
	assert_int_equal(parse_block_size("", &b, NULL, 0), -EINVAL);
	assert_int_equal(b, 4096);
}

static void test_uint_seconds(void **state)
{
	unsigned u = 9;
	char why[128];

	(void)state;
	assert_int_equal(parse_uint("1", 1, 65536, &u, why, sizeof(why)), 0);
	assert_int_equal(u, 1);
	assert_int_equal(parse_uint("65536", 1, 65536, &u, why, sizeof(why)), 0);
	assert_int_equal(u, 65536);
	assert_int_equal(parse_uint("0", 1, 65536, &u, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "'0' is not a number from 1 to 65536");
	assert_int_equal(parse_uint("65537", 1, 65536, &u, NULL, 0), -EINVAL);
	assert_int_equal(parse_uint("99999999999999999999999", 0, 10, &u, NULL, 0), -EINVAL);
	assert_int_equal(parse_uint("-1", 0, 10, &u, NULL, 0), -EINVAL);
	assert_int_equal(parse_uint("1 ", 0, 10, &u, NULL, 0), -EINVAL);
	assert_int_equal(parse_uint("", 0, 10, &u, NULL, 0), -EINVAL);
	assert_int_equal(u, 65536);
	assert_int_equal(parse_seconds("0", 0, 3600, &u, why, sizeof(why)), 0);
	assert_int_equal(u, 0);
	assert_int_equal(parse_seconds("3601", 0, 3600, &u, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "'3601' is not a number of seconds from 0 to 3600");
	assert_int_equal(parse_seconds("30s", 0, 3600, &u, NULL, 0), -EINVAL);
}

static void test_time_of_day(void **state)
{
	int m = -5;
	char why[128];

	(void)state;
	assert_int_equal(parse_time_of_day("00:00", &m, why, sizeof(why)), 0);
	assert_int_equal(m, 0);
	assert_int_equal(parse_time_of_day("7:05", &m, why, sizeof(why)), 0);
	assert_int_equal(m, 7 * 60 + 5);
	assert_int_equal(parse_time_of_day("23:59", &m, why, sizeof(why)), 0);
	assert_int_equal(m, 23 * 60 + 59);
	static const char *const bad[] = { "24:00", "23:60", "3", "3:5", "003:00", "12:00x",
					   ":30", "12-30", "", "-1:00", " 1:00" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = -5;
		if (parse_time_of_day(bad[i], &m, why, sizeof(why)) != -EINVAL || m != -5)
			fail_msg("parse_time_of_day(%s) taken", bad[i]);
		assert_non_null(strstr(why, "is not a time of day HH:MM (00:00 to 23:59)"));
	}
}

static void test_name(void **state)
{
	char why[200], long_name[80];

	(void)state;
	assert_int_equal(parse_name("pc01", "client", why, sizeof(why)), 0);
	assert_int_equal(parse_name("0", "client", why, sizeof(why)), 0);
	assert_int_equal(parse_name("win-10", "image", why, sizeof(why)), 0);
	memset(long_name, 'a', 63);
	long_name[63] = '\0';
	assert_int_equal(parse_name(long_name, "image", why, sizeof(why)), 0);
	long_name[63] = 'a';
	long_name[64] = '\0';
	assert_int_equal(parse_name(long_name, "image", why, sizeof(why)), -EINVAL);
	assert_int_equal(parse_name("Win10", "image", why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "'Win10' is not a valid image name"));
	assert_int_equal(parse_name("-x", "client", why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not a valid client name"));
	assert_int_equal(parse_name("", "client", NULL, 0), -EINVAL);
	assert_int_equal(parse_name("a_b", "client", NULL, 0), -EINVAL);
	assert_int_equal(parse_name("a.b", "client", NULL, 0), -EINVAL);
	assert_int_equal(parse_name("a b", "client", NULL, 0), -EINVAL);
	assert_true(parse_name_ok("a-"));
	assert_false(parse_name_ok("\xc3\xa9"));
}

static void test_iqn(void **state)
{
	char why[300], big[240];

	(void)state;
	assert_int_equal(parse_iqn("iqn.2024-01.test:pc01", why, sizeof(why)), 0);
	assert_int_equal(parse_iqn("IQN.2024-01.Test", why, sizeof(why)), 0);
	assert_int_equal(parse_iqn("iqn.2024-01.t:\xc3\xa9t\xc3\xa9", why, sizeof(why)), 0);
	assert_int_equal(parse_iqn("eui.0123456789ABCDEF", why, sizeof(why)), 0);
	assert_int_equal(parse_iqn("naa.0123456789abcdef", why, sizeof(why)), 0);
	assert_int_equal(parse_iqn("naa.0123456789abcdef0123456789abcdef", why, sizeof(why)), 0);
	static const char *const bad[] = { "", "pc01", "iqn.", "iqn.2024-01", "iqn.2024-01.",
					   "iqn.24-01.x", "iqn.2024_01.x", "iqn.2024-01.a b",
					   "iqn.2024-01.a/b", "eui.0123", "eui.0123456789abcdeg",
					   "naa.0123456789abcdef0", "iqn.2024-01.x\xc3",
					   "iqn.2024-01.x\xff" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_iqn(bad[i], why, sizeof(why)) != -EINVAL)
			fail_msg("parse_iqn(%s) taken", bad[i]);
	assert_int_equal(parse_iqn("pc01", why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "'pc01' is not a valid iSCSI name"));
	memcpy(big, "iqn.2024-01.x:", 14);
	memset(big + 14, 'a', 224 - 14);
	big[224] = '\0';
	assert_int_equal(parse_iqn(big, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "too long"));
	big[223] = '\0';     /* 223 bytes: the longest name */
	assert_int_equal(parse_iqn(big, why, sizeof(why)), 0);
	assert_true(parse_iqn_ok(big));
}

static void test_portal(void **state)
{
	unsigned port = 0;
	char why[200];

	(void)state;
	assert_int_equal(parse_portal("*:3260", &port, why, sizeof(why)), 0);
	assert_int_equal(port, 3260);
	assert_int_equal(parse_portal(":1", &port, why, sizeof(why)), 0);
	assert_int_equal(port, 1);
	assert_int_equal(parse_portal("10.0.0.1:65535", &port, why, sizeof(why)), 0);
	assert_int_equal(port, 65535);
	assert_int_equal(parse_portal("[fd00::1]:3260", NULL, why, sizeof(why)), 0);
	assert_int_equal(parse_portal("[::]:80", NULL, why, sizeof(why)), 0);
	static const char *const bad[] = { "3260", "*:0", "*:65536", "*:", "*:3260x", "*:003260",
					   "host:3260", "10.0.0.300:3260", "fd00::1:3260",
					   "[fd00::1:3260", "[10.0.0.1]:3260", "[]:3260", "*:-1", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		port = 7;
		if (parse_portal(bad[i], &port, why, sizeof(why)) != -EINVAL || port != 7)
			fail_msg("parse_portal(%s) taken", bad[i]);
		assert_non_null(strstr(why, "is not ADDR:PORT with a numeric address"));
	}
}

/* Values are quoted printable and bounded: a message can go to a log. */
static void test_messages_safe(void **state)
{
	char why[300], big[2000];
	uint64_t v;

	(void)state;
	assert_int_equal(parse_size("1\x1b[31m", &v, why, sizeof(why)), -EINVAL);
	assert_null(strchr(why, '\x1b'));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse_name(big, "client", why, sizeof(why)), -EINVAL);
	assert_true(strlen(why) < 200);
	/* a short buffer is cut, never overrun */
	assert_int_equal(parse_size("zzz", &v, why, 8), -EINVAL);
	assert_int_equal(strlen(why), 7);
}

static void test_hash(void **state)
{
	(void)state;
	/* FNV-1a 64 reference values */
	assert_true(fnv1a("") == 0xcbf29ce484222325ull);
	assert_true(fnv1a("a") == 0xaf63dc4c8601ec8cull);
	assert_true(fnv1a_add(fnv1a("fo"), "o") == fnv1a("foo"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_block_size),
		cmocka_unit_test(test_uint_seconds),
		cmocka_unit_test(test_time_of_day),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_iqn),
		cmocka_unit_test(test_portal),
		cmocka_unit_test(test_messages_safe),
		cmocka_unit_test(test_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
