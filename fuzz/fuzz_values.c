/*
 * fuzz_values.c - libFuzzer harness: the values an admin types, through
 * the one parser of each kind (util/parse.h) and the client-field rules
 * (lab/rules.h) that the options, the configuration file, the API,
 * pristinectl and the boot endpoint share.
 * Input: one selector byte, then the value (cut at 511 bytes, NUL-ended).
 * What is checked, beyond "no crash, no leak, no UB":
 *   - a refusal fills its message, and the message is printable ASCII
 *     (it is logged and shown on terminals: no escape sequence from input);
 *   - a CHAP secret is never quoted back in a refusal (its message is the
 *     same as for any other secret of its length);
 *   - what is accepted is what the rule says, checked by a second,
 *     independent reading: a size is digits times the suffix's power of
 *     1024 and at most 2^63-1, a time of day is below 24:00 and prints
 *     back as typed, a name is [a-z0-9-] not starting with '-', a MAC or
 *     UUID comes out normalised and parses again to itself, a port is
 *     1..65535.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/rules.h"
#include "util/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A refusal's message: filled, printable, bounded. */
static void check_why(int rc, const char *why)
{
	if (rc == 0)
		return;
	if (!why[0])
		abort();
	for (const char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			abort();
}

/* Independent reading of an accepted SIZE. */
static void check_size(const char *s, uint64_t v)
{
	uint64_t n = 0, mul = 1;
	const char *p = s;

	for (; isdigit((unsigned char)*p); p++)
		if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
			abort();   /* accepted, yet its digits overflow */
	if (p == s)
		abort();
	switch (*p) {
	case 'k': case 'K': mul = 1ull << 10; p++; break;
	case 'm': case 'M': mul = 1ull << 20; p++; break;
	case 'g': case 'G': mul = 1ull << 30; p++; break;
	case 't': case 'T': mul = 1ull << 40; p++; break;
	default: break;
	}
	if (mul > 1 && *p == 'i')
		p++;
	if (*p == 'B')
		p++;
	if (*p || __builtin_mul_overflow(n, mul, &n) || n != v || v > PARSE_SIZE_MAX)
		abort();
}

static void check_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= PARSE_NAME_MAX || s[0] == '-')
		abort();
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			abort();
}

/* out is "xx:xx:xx:xx:xx:xx", lower-case hex, and a fixed point. */
static void check_mac(const char *out)
{
	char again[RULES_MAC_LEN], msg[200];

	if (strlen(out) != 17)
		abort();
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? out[i] != ':' : !(isdigit((unsigned char)out[i]) ||
						  (out[i] >= 'a' && out[i] <= 'f')))
			abort();
	if (rules_mac(out, again, msg, sizeof(msg)) || strcmp(again, out))
		abort();
}

static void check_uuid(const char *out)
{
	char again[RULES_UUID_LEN], msg[200];

	if (strlen(out) != 36)
		abort();
	for (const char *p = out; *p; p++)
		if (isupper((unsigned char)*p))
			abort();
	if (rules_uuid(out, again, msg, sizeof(msg)) || strcmp(again, out))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512], why[256], out[64];
	uint64_t v = 0;
	uint32_t bs = 0;
	unsigned u = 0;
	int m = -1, rc;

	if (size < 1)
		return 0;
	size_t n = size - 1 < sizeof(s) - 1 ? size - 1 : sizeof(s) - 1;
	memcpy(s, data + 1, n);
	s[n] = '\0';
	why[0] = '\0';
	switch (data[0] % 10) {
	case 0:
		rc = parse_size(s, &v, why, sizeof(why));
		if (rc == 0)
			check_size(s, v);
		break;
	case 1:
		rc = parse_block_size(s, &bs, why, sizeof(why));
		if (rc == 0 && !((bs == 512 && !strcmp(s, "512")) || (bs == 4096 && !strcmp(s, "4096"))))
			abort();
		break;
	case 2:
		rc = parse_uint(s, 1, 65535, &u, why, sizeof(why));
		if (rc == 0 && (u < 1 || u > 65535 || (unsigned)strtoul(s, NULL, 10) != u))
			abort();
		break;
	case 3:
		rc = parse_time_of_day(s, &m, why, sizeof(why));
		if (rc == 0) {
			char back[8], back0[8];
			if (m < 0 || m >= 24 * 60)
				abort();
			snprintf(back, sizeof(back), "%d:%02d", m / 60, m % 60);
			snprintf(back0, sizeof(back0), "%02d:%02d", m / 60, m % 60);
			if (strcmp(s, back) && strcmp(s, back0))
				abort();
		}
		break;
	case 4:
		rc = parse_name(s, "image", why, sizeof(why));
		if (rc == 0)
			check_name(s);
		if ((rc == 0) != parse_name_ok(s))
			abort();
		break;
	case 5:
		rc = parse_iqn(s, why, sizeof(why));
		if (rc == 0 && (strlen(s) >= PARSE_IQN_MAX || !parse_iqn_ok(s)))
			abort();
		break;
	case 6:
		rc = parse_portal(s, &u, why, sizeof(why));
		if (rc == 0 && (u < 1 || u > 65535 || strlen(s) >= PARSE_PORTAL_MAX))
			abort();
		break;
	case 7:
		rc = rules_mac(s, out, why, sizeof(why));
		if (rc == 0)
			check_mac(out);
		break;
	case 8:
		rc = rules_uuid(s, out, why, sizeof(why));
		if (rc == 0)
			check_uuid(out);
		break;
	default:
		rc = rules_chap_secret("chap-secret", s, why, sizeof(why));
		check_why(rc, why);
		if (rc) {
			/* a secret is never quoted back: the refusal of another
			 * secret of the same length reads the same */
			char other[sizeof(s)], why2[sizeof(why)];
			size_t len = strlen(s);
			memset(other, '~', len);
			other[len] = '\0';
			if (rules_chap_secret("chap-secret", other, why2, sizeof(why2)) &&
			    strcmp(why, why2))
				abort();
		}
		rc = rules_chap_name("chap-user", s, why, sizeof(why));
		break;
	}
	check_why(rc, why);
	return 0;
}
