/*
 * test_boot.c - the boot endpoint's checks and scripts (src/boot/boot_script.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "boot/boot.h"

static void test_mac(void **state)
{
	struct boot_request rq = { 0 };
	char err[64];

	(void)state;
	assert_int_equal(boot_parse_param(&rq, "mac", "52-54-00-AB-cd-0F", err, sizeof(err)), 0);
	assert_string_equal(rq.mac, "52:54:00:ab:cd:0f");
	assert_int_equal(boot_parse_param(&rq, "mac", "525400abcd10", err, sizeof(err)), 0);
	assert_string_equal(rq.mac, "52:54:00:ab:cd:10");
	assert_int_equal(boot_parse_param(&rq, "mac", "52:54:00:ab:cd:11", err, sizeof(err)), 0);
	assert_string_equal(rq.mac, "52:54:00:ab:cd:11");
	/* iPXE expands an unknown variable to "": not known, not an error */
	memset(&rq, 0, sizeof(rq));
	assert_int_equal(boot_parse_param(&rq, "mac", "", err, sizeof(err)), 0);
	assert_string_equal(rq.mac, "");
	const char *bad[] = { "52:54:00:ab:cd", "52:54:00:ab:cd:0f:00", "52-54:00-ab-cd-0f",
			      "5254-00ab-cd0f", "52:54:00:ab:cd:0g", ":52:54:00:ab:cd:0f",
			      "52:54:00:ab:cd:0f:", "52::54:00:ab:cd:0f", "${mac}", "52 54 00 ab cd 0f" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(boot_parse_param(&rq, "mac", bad[i], err, sizeof(err)), -EINVAL);
		assert_string_equal(rq.mac, "");
	}
}

static void test_uuid_ip(void **state)
{
	struct boot_request rq = { 0 };
	char err[64];

	(void)state;
	assert_int_equal(boot_parse_param(&rq, "uuid", "12345678-ABCD-1234-1234-123456789abc", err,
					  sizeof(err)), 0);
	assert_string_equal(rq.uuid, "12345678-abcd-1234-1234-123456789abc");
	assert_int_equal(boot_parse_param(&rq, "uuid", "12345678-ABCD-1234-1234-123456789ab", err,
					  sizeof(err)), -EINVAL);
	assert_int_equal(boot_parse_param(&rq, "uuid", "12345678xABCD-1234-1234-123456789abc", err,
					  sizeof(err)), -EINVAL);
	assert_int_equal(boot_parse_param(&rq, "ip", "10.0.2.15", err, sizeof(err)), 0);
	assert_string_equal(rq.ip, "10.0.2.15");
	assert_int_equal(boot_parse_param(&rq, "ip", "fd00::15", err, sizeof(err)), 0);
	assert_int_equal(boot_parse_param(&rq, "ip", "10.0.2.300", err, sizeof(err)), -EINVAL);
	assert_int_equal(boot_parse_param(&rq, "ip", "pc1.lab", err, sizeof(err)), -EINVAL);
	assert_int_equal(boot_parse_param(&rq, "whatever", "${x}", err, sizeof(err)), 0);
}

static void test_host(void **state)
{
	(void)state;
	assert_true(boot_host_valid("10.0.2.100"));
	assert_true(boot_host_valid("10.0.2.100:8180"));
	assert_true(boot_host_valid("boot.lab.example"));
	assert_true(boot_host_valid("boot:80"));
	assert_true(boot_host_valid("[fd00::1]"));
	assert_true(boot_host_valid("[fd00::1]:8180"));
	const char *bad[] = { "", ":80", "a:", "a:0", "a:65536", "a:123456", "a b", "a/b", "a$b",
			      "[fd00::1", "[nothex]:80", "fd00::1", "-a", ".a", "a:8x", "a|b",
			      "a\nb", "${host}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(boot_host_valid(bad[i]));
}

static void test_scripts(void **state)
{
	struct boot_request rq = { .mac = "52:54:00:ab:cd:0f" };
	struct boot_answer a = { .kind = BOOT_SANBOOT };
	char s[4096];

	(void)state;
	assert_true(boot_script_chain("10.0.2.100:8180", s, sizeof(s)) > 0);
	assert_non_null(strstr(s, "chain http://10.0.2.100:8180/boot.ipxe?mac=${mac:hexhyp}&uuid=${uuid}&ip=${ip}"));
	assert_int_equal(boot_script_chain("a b", s, sizeof(s)), -EINVAL);
	assert_int_equal(boot_script_chain("10.0.2.100", s, 20), -ENOSPC);

	snprintf(a.initiator, sizeof(a.initiator), "iqn.2026-11.org.pristine:pc-525400abcd0f");
	snprintf(a.target, sizeof(a.target), "iqn.2026-11.org.pristine:win10");
	snprintf(a.portal, sizeof(a.portal), "10.0.2.100:3260");
	snprintf(a.who, sizeof(a.who), "pc01");
	assert_true(boot_script(&a, &rq, s, sizeof(s)) > 0);
	assert_int_equal(strncmp(s, "#!ipxe\n", 7), 0);
	assert_non_null(strstr(s, "\nset initiator-iqn iqn.2026-11.org.pristine:pc-525400abcd0f\n"));
	assert_non_null(strstr(s, "\nsanboot iscsi:10.0.2.100::3260:0:iqn.2026-11.org.pristine:win10 || goto failed\n"));
	snprintf(a.portal, sizeof(a.portal), "[fd00::1]:3260");
	assert_true(boot_script(&a, &rq, s, sizeof(s)) > 0);
	assert_non_null(strstr(s, "sanboot iscsi:[fd00::1]::3260:0:"));
	snprintf(a.portal, sizeof(a.portal), "10.0.2.100");   /* no port: refused */
	assert_int_equal(boot_script(&a, &rq, s, sizeof(s)), -EINVAL);
	snprintf(a.portal, sizeof(a.portal), "10.0.2.100:3260");
	snprintf(a.target, sizeof(a.target), "iqn.x:a ${y}");
	assert_int_equal(boot_script(&a, &rq, s, sizeof(s)), -EINVAL);

	/* A message never carries variables, operators or line breaks out. */
	a.kind = BOOT_MESSAGE;
	snprintf(a.who, sizeof(a.who), "x\nshell");
	snprintf(a.message, sizeof(a.message), "pc ${x} online || shell\nreboot");
	assert_true(boot_script(&a, &rq, s, sizeof(s)) > 0);
	assert_null(strchr(s, '$'));
	assert_null(strchr(s, '|'));
	assert_null(strstr(s, "\nshell"));
	assert_null(strstr(s, "\nreboot"));
	assert_non_null(strstr(s, "echo pristine: pc ??x? online ?? shell?reboot\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_uuid_ip),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_scripts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
