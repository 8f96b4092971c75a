/*
 * chap.c - CHAP digests and value encodings (see chap.h).
 */
#include "proto/chap.h"
#include "util/parse.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <nettle/base64.h>
#include <nettle/md5.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

size_t chap_digest_len(int alg)
{
	switch (alg) {
	case CHAP_ALG_MD5:
		return MD5_DIGEST_SIZE;
	case CHAP_ALG_SHA256:
		return SHA256_DIGEST_SIZE;
	default:
		return 0;
	}
}

void chap_response(int alg, uint8_t id, const char *secret, const uint8_t *challenge,
		   size_t challenge_len, uint8_t *out)
{
	if (alg == CHAP_ALG_MD5) {
		struct md5_ctx m;
		md5_init(&m);
		md5_update(&m, 1, &id);
		md5_update(&m, strlen(secret), (const uint8_t *)secret);
		md5_update(&m, challenge_len, challenge);
		md5_digest(&m, MD5_DIGEST_SIZE, out);
		memset(&m, 0, sizeof(m));
	} else {
		struct sha256_ctx s;
		sha256_init(&s);
		sha256_update(&s, 1, &id);
		sha256_update(&s, strlen(secret), (const uint8_t *)secret);
		sha256_update(&s, challenge_len, challenge);
		sha256_digest(&s, SHA256_DIGEST_SIZE, out);
		memset(&s, 0, sizeof(s));
	}
}

int chap_decode(const char *val, uint8_t *out, size_t cap)
{
	size_t n;

	if (!val || val[0] != '0' || !val[1] || !val[2])
		return -1;
	n = strlen(val + 2);
	if (val[1] == 'x' || val[1] == 'X') {
		const char *p = val + 2;
		size_t len = (n + 1) / 2;
		if (len > cap)
			return -1;
		for (size_t i = 0; i < len; i++) {
			/* odd digit count: the first byte has only a low nibble */
			int hi = (i == 0 && n % 2) ? 0 : parse_hexdigit(*p++);
			int lo = parse_hexdigit(*p++);
			if (hi < 0 || lo < 0)
				return -1;
			out[i] = (uint8_t)(hi << 4 | lo);
		}
		return (int)len;
	}
	if (val[1] == 'b' || val[1] == 'B') {
		struct base64_decode_ctx b;
		uint8_t tmp[BASE64_DECODE_LENGTH(2 * CHAP_CHALLENGE_MAX)];
		size_t len = sizeof(tmp);
		/* 4 characters per 3 bytes: anything longer cannot fit cap */
		if (n % 4 || n / 4 * 3 > cap + 2 || n > 2 * CHAP_CHALLENGE_MAX)
			return -1;
		base64_decode_init(&b);
		if (!base64_decode_update(&b, &len, tmp, n, val + 2) || !base64_decode_final(&b) ||
		    len == 0 || len > cap)
			return -1;
		memcpy(out, tmp, len);
		return (int)len;
	}
	return -1;
}

void chap_encode_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	*out++ = '0';
	*out++ = 'x';
	for (size_t i = 0; i < len; i++) {
		*out++ = digits[in[i] >> 4];
		*out++ = digits[in[i] & 15];
	}
	*out = 0;
}

bool chap_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	return memeql_sec(a, b, n) != 0;
}

int chap_random(uint8_t *buf, size_t n)
{
	while (n) {
		ssize_t r = getrandom(buf, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}
