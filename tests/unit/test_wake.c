/*
 * test_wake.c - unit tests of Wake-on-LAN's pure parts (src/lab/wake.c):
 * the magic packet byte by byte, MAC parsing, the choice of a network
 * for an address, the daily wake time (wake_at_for, wake_time_came).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lab/wake.h"

static void test_packet(void **state)
{
	const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
	uint8_t p[WAKE_PACKET_LEN + 1];

	memset(p, 0x5a, sizeof(p));
	wake_packet(mac, p);
	for (int i = 0; i < 6; i++)
		assert_int_equal(p[i], 0xff);
	for (int r = 0; r < 16; r++)
		assert_memory_equal(p + 6 + 6 * r, mac, 6);
	assert_int_equal(p[WAKE_PACKET_LEN], 0x5a);   /* 102 bytes, not one more */
	assert_int_equal(WAKE_PACKET_LEN, 102);
}

static void test_mac_parse(void **state)
{
	uint8_t m[6];
	const uint8_t want[6] = { 0xaa, 0xbb, 0xcc, 0x01, 0x02, 0xff };

	assert_int_equal(wake_mac_parse("aa:bb:cc:01:02:ff", m), 0);
	assert_memory_equal(m, want, 6);
	assert_int_equal(wake_mac_parse("AA-BB-CC-01-02-FF", m), 0);
	assert_memory_equal(m, want, 6);
	assert_int_equal(wake_mac_parse("", m), -EINVAL);
	assert_int_equal(wake_mac_parse("aa:bb:cc:01:02", m), -EINVAL);
	assert_int_equal(wake_mac_parse("aa:bb:cc:01:02:ff:00", m), -EINVAL);
	assert_int_equal(wake_mac_parse("aa:bb:cc:01:02:fg", m), -EINVAL);
	assert_int_equal(wake_mac_parse("aabbcc:01:02:ff", m), -EINVAL);
}

static void test_choose(void **state)
{
	struct wake_network nets[2] = {
		{ .name = "lab", .net = 0x0a000000u, .prefix = 24, .broadcast = 0x0a0000ffu, .port = 9 },
		{ .name = "office", .net = 0x0a000100u, .prefix = 24, .broadcast = 0x0a0001ffu, .port = 9 },
	};
	struct wake_conf wc = { .nets = nets, .nnets = 2, .default_at = -1 };

	assert_ptr_equal(wake_match(&wc, 0x0a000005u), &nets[0]);
	assert_ptr_equal(wake_match(&wc, 0x0a0001feu), &nets[1]);
	assert_null(wake_match(&wc, 0x0a000205u));
	assert_null(wake_match(&wc, 0));
	assert_null(wake_match(NULL, 0x0a000005u));
	assert_ptr_equal(wake_choose(&wc, 0x0a000005u), &nets[0]);
	assert_ptr_equal(wake_choose(&wc, 0x0a000105u), &nets[1]);
	/* no match and several networks: none (255.255.255.255) */
	assert_null(wake_choose(&wc, 0xc0a80001u));
	assert_null(wake_choose(&wc, 0));
	/* the only network is the default */
	wc.nnets = 1;
	assert_null(wake_match(&wc, 0xc0a80001u));
	assert_ptr_equal(wake_choose(&wc, 0xc0a80001u), &nets[0]);
	assert_ptr_equal(wake_choose(&wc, 0), &nets[0]);
	wc.nnets = 0;
	assert_null(wake_choose(&wc, 0x0a000005u));
	assert_null(wake_choose(NULL, 0x0a000005u));
}

static void test_wake_at(void **state)
{
	struct wake_image_at ats[1] = { { .image = "lab", .at = 7 * 60 + 50 } };
	struct wake_conf wc = { .ats = ats, .nats = 1, .default_at = -1 };

	assert_int_equal(wake_at_for(&wc, "lab"), 470);
	assert_int_equal(wake_at_for(&wc, "other"), -1);
	wc.default_at = 360;
	assert_int_equal(wake_at_for(&wc, "other"), 360);
	assert_int_equal(wake_at_for(&wc, NULL), 360);
	assert_int_equal(wake_at_for(NULL, "lab"), -1);
}

/* Unix time of local HH:MM:SS on a fixed day. */
static int64_t local_at(int h, int m, int s)
{
	struct tm tm = { .tm_year = 126, .tm_mon = 2, .tm_mday = 10, .tm_hour = h, .tm_min = m,
			 .tm_sec = s, .tm_isdst = -1 };
	return (int64_t)mktime(&tm);
}

static void test_time_came(void **state)
{
	int at = 7 * 60 + 50;

	setenv("TZ", "UTC0", 1);
	tzset();
	/* the clock passed 07:50 since the last look */
	assert_true(wake_time_came(at, local_at(7, 49, 50), local_at(7, 50, 10)));
	assert_true(wake_time_came(at, local_at(7, 49, 59), local_at(7, 50, 0)));
	/* not yet, or already seen */
	assert_false(wake_time_came(at, local_at(7, 49, 0), local_at(7, 49, 59)));
	assert_false(wake_time_came(at, local_at(7, 50, 0), local_at(7, 50, 20)));
	assert_false(wake_time_came(at, local_at(8, 0, 0), local_at(23, 0, 0)));
	/* across midnight: 23:59 seen at 00:00:10 */
	assert_true(wake_time_came(23 * 60 + 59, local_at(23, 58, 50), local_at(0, 0, 10) + 86400));
	/* none, or a clock that went back */
	assert_false(wake_time_came(-1, local_at(7, 0, 0), local_at(8, 0, 0)));
	assert_false(wake_time_came(at, local_at(8, 0, 0), local_at(7, 0, 0)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_packet),
		cmocka_unit_test(test_mac_parse),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_wake_at),
		cmocka_unit_test(test_time_came),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
