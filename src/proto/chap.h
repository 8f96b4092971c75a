/*
 * chap.h - CHAP (RFC 1994 as used by iSCSI, RFC 7143 section 12.1.3):
 * digests, challenges and the encoding of binary values in login keys.
 *
 * Digests come from nettle; comparisons of responses are constant-time.
 * Nothing here logs: callers must never log secrets, responses or
 * challenges either.
 */
#ifndef PRISTINE_CHAP_H
#define PRISTINE_CHAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CHAP_A values (IANA PPP authentication algorithms registry). */
#define CHAP_ALG_MD5 5
#define CHAP_ALG_SHA256 7

#define CHAP_DIGEST_MAX 32            /* SHA-256 */
#define CHAP_CHALLENGE_MAX 1024       /* longest CHAP_C we accept from an initiator */

/* Digest size of alg (16 or 32), or 0 when we do not speak it. */
size_t chap_digest_len(int alg);

/*
 * out = H(id || secret || challenge), chap_digest_len(alg) bytes.  alg
 * must be one chap_digest_len() accepts.
 */
void chap_response(int alg, uint8_t id, const char *secret, const uint8_t *challenge,
		   size_t challenge_len, uint8_t *out);

/*
 * Decode a CHAP binary value: "0x"/"0X" + hex digits (an odd count has an
 * implied leading 0) or "0b"/"0B" + base64.  At most cap bytes.  Returns
 * the length, or -1 when the value is malformed, empty or too long.
 */
int chap_decode(const char *val, uint8_t *out, size_t cap);

/* "0x" + 2 * len lowercase hex digits + NUL into out (3 + 2 * len bytes). */
void chap_encode_hex(const uint8_t *in, size_t len, char *out);

/* Constant-time equality of two n-byte strings. */
bool chap_equal(const uint8_t *a, const uint8_t *b, size_t n);

/* Fill buf with n bytes from the kernel CSPRNG (getrandom).  0 or -1. */
int chap_random(uint8_t *buf, size_t n);

#endif
