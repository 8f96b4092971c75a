/*
 * test_params.c - unit tests of iSCSI key parsing and negotiation
 * (src/proto/params.c): result functions, rejections, name validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/params.h"

static const struct neg_prefs prefs = {
	.mrdsl = 262144, .max_burst = 1048576, .first_burst = 262144, .max_r2t = 8,
	.allow_digests = true,
};

/* Find key's answer in a kvbuf; NULL when absent. */
static const char *answer(const struct kvbuf *kb, const char *key)
{
	size_t klen = strlen(key);
	for (size_t i = 0; i < kb->len; i += strlen(kb->buf + i) + 1)
		if (strncmp(kb->buf + i, key, klen) == 0 && kb->buf[i + klen] == '=')
			return kb->buf + i + klen + 1;
	return NULL;
}

struct ctx {
	struct negotiation neg;
	struct kvbuf out;
	int unhandled;
};

static int feed(void *vc, const char *key, const char *val)
{
	struct ctx *c = vc;
	int rc = neg_key(&c->neg, key, val, &c->out);
	if (rc == 1)
		c->unhandled++;
	return rc < 0 ? -1 : 0;
}

/* Negotiate text (pairs separated by '\n' for readability). */
static int negotiate(struct ctx *c, struct iscsi_params *p, const char *text)
{
	size_t n = strlen(text);
	char *buf = malloc(n + 1);
	int rc;

	for (size_t i = 0; i < n; i++)
		buf[i] = text[i] == '\n' ? '\0' : text[i];
	params_defaults(p, &prefs);
	neg_init(&c->neg, p, &prefs, true);
	memset(&c->out, 0, sizeof(c->out));
	c->unhandled = 0;
	rc = kv_parse(buf, n, feed, c);
	free(buf);
	return rc;
}

static void test_min_max_and_booleans(void **state)
{
	struct iscsi_params p;
	struct ctx c;

	(void)state;
	assert_int_equal(negotiate(&c, &p, "MaxBurstLength=16777215\nFirstBurstLength=4096\n"
				       "DefaultTime2Wait=0\nDefaultTime2Retain=3600\nErrorRecoveryLevel=2\n"
				       "InitialR2T=Yes\nImmediateData=Yes\nDataPDUInOrder=No\n"
				       "MaxOutstandingR2T=64\nMaxConnections=8"), 0);
	assert_string_equal(answer(&c.out, "MaxBurstLength"), "1048576");   /* min(offer, ours) */
	assert_string_equal(answer(&c.out, "FirstBurstLength"), "4096");
	assert_string_equal(answer(&c.out, "DefaultTime2Wait"), "2");       /* max(0, 2) */
	assert_string_equal(answer(&c.out, "DefaultTime2Retain"), "20");    /* min(3600, 20) */
	assert_string_equal(answer(&c.out, "ErrorRecoveryLevel"), "0");
	assert_string_equal(answer(&c.out, "InitialR2T"), "Yes");           /* OR */
	assert_string_equal(answer(&c.out, "ImmediateData"), "Yes");        /* AND */
	assert_string_equal(answer(&c.out, "DataPDUInOrder"), "Yes");       /* OR with our Yes */
	assert_string_equal(answer(&c.out, "MaxOutstandingR2T"), "8");
	assert_string_equal(answer(&c.out, "MaxConnections"), "1");
	assert_int_equal(p.max_burst, 1048576);
	assert_int_equal(p.first_burst, 4096);
	assert_true(p.initial_r2t);
	kvbuf_free(&c.out);
}

static void test_first_burst_within_max_burst(void **state)
{
	struct iscsi_params p;
	struct ctx c;

	(void)state;
	assert_int_equal(negotiate(&c, &p, "MaxBurstLength=16384\nFirstBurstLength=65536"), 0);
	assert_string_equal(answer(&c.out, "FirstBurstLength"), "16384");
	kvbuf_free(&c.out);
}

static void test_rejects_and_unknown(void **state)
{
	struct iscsi_params p;
	struct ctx c;

	(void)state;
	assert_int_equal(negotiate(&c, &p, "MaxRecvDataSegmentLength=511\nMaxBurstLength=abc\n"
				       "InitialR2T=Maybe\nX-com.example.foo=1\nHeaderDigest=MD5\n"
				       "TargetAddress=1.2.3.4\nNoEquals\nAuthMethod=None"), 0);
	assert_string_equal(answer(&c.out, "MaxRecvDataSegmentLength"), "Reject");
	assert_string_equal(answer(&c.out, "MaxBurstLength"), "Reject");
	assert_string_equal(answer(&c.out, "InitialR2T"), "Reject");
	assert_string_equal(answer(&c.out, "X-com.example.foo"), "NotUnderstood");
	assert_string_equal(answer(&c.out, "HeaderDigest"), "Reject");
	assert_string_equal(answer(&c.out, "TargetAddress"), "Reject");
	assert_string_equal(answer(&c.out, "NoEquals"), "NotUnderstood");
	assert_int_equal(c.unhandled, 1);                 /* AuthMethod goes to the caller */
	assert_int_equal(p.max_burst, 262144);            /* rejected: default kept */
	kvbuf_free(&c.out);
}

static void test_duplicate_key_fails(void **state)
{
	struct iscsi_params p;
	struct ctx c;

	(void)state;
	assert_int_equal(negotiate(&c, &p, "MaxBurstLength=8192\nMaxBurstLength=4096"), -1);
	assert_int_equal(c.neg.status, 0x0200);
	kvbuf_free(&c.out);
}

static void test_malformed_keys(void **state)
{
	struct iscsi_params p;
	struct ctx c;
	char longkey[200];

	(void)state;
	assert_int_equal(negotiate(&c, &p, "=value"), KV_MALFORMED);
	kvbuf_free(&c.out);
	memset(longkey, 'k', 70);
	strcpy(longkey + 70, "=1");
	assert_int_equal(negotiate(&c, &p, longkey), KV_MALFORMED);
	kvbuf_free(&c.out);
}

static void test_digests_and_mrdsl(void **state)
{
	struct iscsi_params p;
	struct ctx c;

	(void)state;
	assert_int_equal(negotiate(&c, &p, "HeaderDigest=CRC32C,None\nDataDigest=None,CRC32C\n"
				       "MaxRecvDataSegmentLength=512"), 0);
	assert_string_equal(answer(&c.out, "HeaderDigest"), "CRC32C");  /* first we support */
	assert_string_equal(answer(&c.out, "DataDigest"), "None");
	assert_string_equal(answer(&c.out, "MaxRecvDataSegmentLength"), "262144"); /* ours, declared */
	assert_true(p.header_digest);
	assert_false(p.data_digest);
	assert_int_equal(p.mrdsl_tx, 512);
	assert_int_equal(p.mrdsl_rx, 262144);
	kvbuf_free(&c.out);
}

static void test_leading_only_in_full_feature(void **state)
{
	struct iscsi_params p;
	struct negotiation n;
	struct kvbuf out = { 0 };

	(void)state;
	params_defaults(&p, &prefs);
	neg_init(&n, &p, &prefs, false);
	assert_int_equal(neg_key(&n, "MaxBurstLength", "4096", &out), 0);
	assert_string_equal(answer(&out, "MaxBurstLength"), "Reject");
	kvbuf_free(&out);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(iscsi_name_valid("iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-ls"));
	assert_true(iscsi_name_valid("iqn.2010-04.org.ipxe:00000000-0000-0000-0000-525400123456"));
	assert_true(iscsi_name_valid("iqn.1991-05.com.microsoft:desk-01"));
	assert_true(iscsi_name_valid("eui.0123456789ABCDEF"));
	assert_true(iscsi_name_valid("naa.52004567BA64678D"));
	assert_true(iscsi_name_valid("iqn.2024-01.example:caf\xc3\xa9"));
	assert_false(iscsi_name_valid(""));
	assert_false(iscsi_name_valid("../state-escape"));
	assert_false(iscsi_name_valid("iqn.2024-01.test:a/b"));
	assert_false(iscsi_name_valid("iqn.2024-01.test: space"));
	assert_false(iscsi_name_valid("iqn.2024-01.test:\xff\xfe"));
	assert_false(iscsi_name_valid("iqn.24-01.test"));
	assert_false(iscsi_name_valid("iqn.2024-01."));
	assert_false(iscsi_name_valid("eui.0123"));
	assert_false(iscsi_name_valid("naa.0123456789abcdefX"));
}

static void test_numbers(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse_number("8192", &v), 0);
	assert_int_equal(v, 8192);
	assert_int_equal(parse_number("0x2000", &v), 0);
	assert_int_equal(v, 8192);
	assert_int_equal(parse_number("", &v), -1);
	assert_int_equal(parse_number("-1", &v), -1);
	assert_int_equal(parse_number("12abc", &v), -1);
	assert_int_equal(parse_number("0x", &v), -1);
	assert_int_equal(parse_number("99999999999999999999999", &v), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_min_max_and_booleans),
		cmocka_unit_test(test_first_burst_within_max_burst),
		cmocka_unit_test(test_rejects_and_unknown),
		cmocka_unit_test(test_duplicate_key_fails),
		cmocka_unit_test(test_malformed_keys),
		cmocka_unit_test(test_digests_and_mrdsl),
		cmocka_unit_test(test_leading_only_in_full_feature),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
