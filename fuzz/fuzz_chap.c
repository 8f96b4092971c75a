/*
 * fuzz_chap.c - libFuzzer harness: CHAP (chap.c and the security stage of
 * login.c: AuthMethod, CHAP_A lists, CHAP_I/CHAP_C/CHAP_N/CHAP_R, hex and
 * base64 values, the response check, mutual CHAP).
 *
 * Byte 0 bit 0 picks one of two modes.
 *
 * Decode (bit 0 clear): chap_decode on the value in bytes 2.. (up to the
 * first NUL) into a buffer of exactly cap bytes (cap from byte 1: 1..128
 * or 960..1087; exact, so ASan sees any overrun), checked against a
 * reference decoder written here: a valid hex value, or canonical base64
 * (RFC 4648 with padding), that fits must decode to the same bytes;
 * anything else hex must be refused; a base64 value accepted must decode
 * like its canonical form (whitespace aside, which nettle skips).  The
 * value's bytes also go through chap_encode_hex and a base64 encoding and
 * must come back, and chap_equal must tell them from a changed copy.
 *
 * Login (bit 0 set): a conversation with a real connection thread over a
 * socketpair, as an initiator would hold it.  Byte 0: 2 = the client must
 * use CHAP (the chap_secret hook answers 1), 4 = mutual CHAP configured,
 * 8 = a discovery session, 16 = no automatic InitiatorName/TargetName/
 * SessionType on the first request.  The rest is up to 6 Login Requests
 * separated by 0xff bytes: the first byte of each is the request's flags
 * byte (T C CSG NSG), the rest its text ("key=value" NUL-separated) in
 * which these tokens are replaced:
 *   @R / @B  the right CHAP_R for the target's last challenge, hex / base64
 *   @W       a response made with a wrong secret
 *   @N / @M  the configured CHAP name / another one
 *   @C       a challenge of ours (16 bytes);  @E the target's own challenge
 *   @I       the target's CHAP_I
 * What must hold: a login that leaves the security stage while CHAP is
 * required (the hook said so, discovery sessions included) has sent @R
 * or @B for the current challenge; the target's CHAP_A is 5 or 7, its
 * CHAP_C as long as that digest, its CHAP_I 0..255; its mutual
 * CHAP_N/CHAP_R, when sent, are the configured name and the right answer
 * to the CHAP_I/CHAP_C of the request; no leak, no sanitizer report.
 * getrandom makes each challenge different, which the tokens make
 * harmless.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "proto/chap.h"
#include "fuzz_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- reference encodings ----------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;
	return p ? (int)(p - b64) : -1;
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "0x" + hex digits (odd count: implied leading 0).  Length or -1. */
static long ref_hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s), len = (n + 1) / 2, k = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (hexv(s[i]) < 0)
			return -1;
	if (n % 2) {
		if (cap)
			out[0] = (uint8_t)hexv(s[0]);
		k = 1;
		s++;
	}
	for (; k < len; k++, s += 2)
		if (k < cap)
			out[k] = (uint8_t)(hexv(s[0]) << 4 | hexv(s[1]));
	return (long)len;
}

/* Canonical base64: groups of 4, '=' padding only at the end, no bits
 * left over.  Length or -1; bytes past cap are not stored. */
static long ref_b64(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s), len = 0;

	if (n == 0 || n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		for (int j = 0; j < 4; j++) {
			if (s[i + j] == '=' && i + 4 == n && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad || (v[j] = b64val(s[i + j])) < 0)
				return -1;
		}
		uint32_t w = (uint32_t)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
		if ((pad == 2 && (w & 0xffff)) || (pad == 1 && (w & 0xff)))
			return -1;
		uint8_t b[3] = { (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w };
		for (int j = 0; j < 3 - pad; j++, len++)
			if (len < cap)
				out[len] = b[j];
	}
	return (long)len;
}

static void enc_b64(const uint8_t *in, size_t len, char *out)
{
	*out++ = '0';
	*out++ = 'b';
	for (size_t i = 0; i < len; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			w |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			w |= in[i + 2];
		*out++ = b64[w >> 18 & 63];
		*out++ = b64[w >> 12 & 63];
		*out++ = i + 1 < len ? b64[w >> 6 & 63] : '=';
		*out++ = i + 2 < len ? b64[w & 63] : '=';
	}
	*out = 0;
}

/* ---- decode mode ------------------------------------------------------- */

static void decode_one(const uint8_t *data, size_t size)
{
	/* 1..128 (16 and 32 are digests, 33 what login.c gives CHAP_R), or
	 * 960..1087 (1024 is CHAP_CHALLENGE_MAX) */
	size_t cap = data[1] < 128 ? (size_t)data[1] + 1 : (size_t)data[1] + 832;
	size_t vlen = strnlen((const char *)data + 2, size - 2);
	char *val = malloc(vlen + 1);
	uint8_t *out = malloc(cap), *ref = malloc(cap);
	long r = -1;
	int n;

	if (!val || !out || !ref)
		abort();
	memcpy(val, data + 2, vlen);
	val[vlen] = 0;

	n = chap_decode(val, out, cap);
	if (n == 0 || n < -1 || (n > 0 && (size_t)n > cap))
		abort();
	bool hex = vlen >= 2 && val[0] == '0' && (val[1] == 'x' || val[1] == 'X');
	bool base = vlen >= 2 && val[0] == '0' && (val[1] == 'b' || val[1] == 'B');
	if (hex)
		r = ref_hex(val + 2, ref, cap);
	else if (base)
		r = ref_b64(val + 2, ref, cap);
	if (r > 0 && (size_t)r <= cap) {
		if (n != r || memcmp(out, ref, (size_t)r) != 0)
			abort();          /* a good value refused or misread */
	} else if (n > 0 && (hex || !base)) {
		abort();              /* a bad value (or one too long) accepted */
	} else if (n > 0) {
		/* base64 the reference calls bad: nettle skips whitespace;
		 * without it the value must be good and say the same */
		char *strip = malloc(vlen + 1), *q = strip;
		if (!strip)
			abort();
		for (const char *p = val + 2; *p; p++)
			if (!strchr(" \t\n\v\f\r", *p))
				*q++ = *p;
		*q = 0;
		r = ref_b64(strip, ref, cap);
		if (r != n || memcmp(out, ref, (size_t)n) != 0)
			abort();
		free(strip);
	}

	/* Round trips of the value's own bytes, as far as they fit. */
	size_t m = vlen < cap ? vlen : cap;
	if (m > CHAP_CHALLENGE_MAX)
		m = CHAP_CHALLENGE_MAX;
	if (m > 0) {
		char *enc = malloc(3 + 2 * m + 4 * m / 3 + 8);
		if (!enc)
			abort();
		chap_encode_hex((const uint8_t *)val, m, enc);
		if (chap_decode(enc, out, cap) != (int)m || memcmp(out, val, m) != 0)
			abort();
		enc_b64((const uint8_t *)val, m, enc);
		if (chap_decode(enc, out, cap) != (int)m || memcmp(out, val, m) != 0)
			abort();
		free(enc);
		if (chap_equal((const uint8_t *)val, out, m) != true)
			abort();
		out[m - 1] ^= 1;
		if (chap_equal((const uint8_t *)val, out, m) != false)
			abort();
	}
	free(val);
	free(out);
	free(ref);
}

/* ---- login mode: the target --------------------------------------------- */

#define MEM_SIZE (1u << 20)
#define USER "fuzz-user"
#define SECRET "fuzz-secret-0123"
#define MUSER "fuzz-target"
#define MSECRET "fuzz-msecret-456"
#define INAME "iqn.2024-01.fuzz:init"
#define TNAME FUZZ_TARGET_NAME

static int g_flags;           /* byte 0 of the login being run */
static int g_required;        /* the hook told this login to use CHAP (atomic) */

static int chap_secret(void *ctx, const char *initiator, const char *target,
		       struct iscsi_chap_creds *cr)
{
	(void)ctx; (void)initiator; (void)target;
	if (!(g_flags & 2))
		return 0;
	__atomic_store_n(&g_required, 1, __ATOMIC_SEQ_CST);
	snprintf(cr->user, sizeof(cr->user), "%s", USER);
	snprintf(cr->secret, sizeof(cr->secret), "%s", SECRET);
	if (g_flags & 4) {
		snprintf(cr->muser, sizeof(cr->muser), "%s", MUSER);
		snprintf(cr->msecret, sizeof(cr->msecret), "%s", MSECRET);
	}
	return 1;
}

static void setup(void)
{
	/* PRISTINE_FUZZ_LOG=1: the daemon's log lines, to follow a login */
	log_set_level(getenv("PRISTINE_FUZZ_LOG") ? LOG_INFO : LOG_ERR);
	fuzz_target_setup(MEM_SIZE, 0xfe, (struct iscsi_hooks){ .chap_secret = chap_secret });
}

/* ---- login mode: the initiator ------------------------------------------ */

struct conv {
	int fd;
	int alg;                  /* from the target's CHAP_A, 0 = none yet */
	long id;                  /* its CHAP_I, -1 = none yet */
	char chal_str[3 + 2 * CHAP_DIGEST_MAX];
	uint8_t chal[CHAP_DIGEST_MAX];
	size_t chal_len;
	bool proved;              /* @R/@B sent for the current challenge */
};

/* Append s to the growing text buffer (bounded: the rest is dropped). */
static void put(char *buf, size_t *len, size_t cap, const char *s, size_t n)
{
	if (n > cap - *len)
		n = cap - *len;
	memcpy(buf + *len, s, n);
	*len += n;
}

/* The response to the current challenge with secret, hex or base64. */
static void response(const struct conv *cv, const char *secret, bool base, char *out)
{
	uint8_t d[CHAP_DIGEST_MAX];

	if (!cv->alg || cv->id < 0) {
		strcpy(out, "0x00");
		return;
	}
	chap_response(cv->alg, (uint8_t)cv->id, secret, cv->chal, cv->chal_len, d);
	if (base)
		enc_b64(d, chap_digest_len(cv->alg), out);
	else
		chap_encode_hex(d, chap_digest_len(cv->alg), out);
}

/* Expand the tokens of src[0..n) into buf. */
static size_t expand(struct conv *cv, const uint8_t *src, size_t n, char *buf, size_t cap,
		     size_t len)
{
	static const uint8_t ours[16] = { 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
					  0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf };
	char tmp[3 + 2 * 64];

	for (size_t i = 0; i < n; i++) {
		const char *s = NULL;
		if (src[i] == '@' && i + 1 < n) {
			switch (src[i + 1]) {
			case 'R':
			case 'B':
				response(cv, SECRET, src[i + 1] == 'B', tmp);
				cv->proved |= cv->alg != 0 && cv->id >= 0;
				s = tmp;
				break;
			case 'W':
				response(cv, "wrong-secret", false, tmp);
				s = tmp;
				break;
			case 'N': s = USER; break;
			case 'M': s = "someone-else"; break;
			case 'C':
				chap_encode_hex(ours, sizeof(ours), tmp);
				s = tmp;
				break;
			case 'E': s = cv->chal_str[0] ? cv->chal_str : "0x00"; break;
			case 'I':
				snprintf(tmp, sizeof(tmp), "%ld", cv->id < 0 ? 0 : cv->id);
				s = tmp;
				break;
			}
		}
		if (s) {
			put(buf, &len, cap, s, strlen(s));
			i++;
		} else {
			put(buf, &len, cap, (const char *)src + i, 1);
		}
	}
	return len;
}

#define VAL_MAX 4100          /* longer than any CHAP value the target takes */

/*
 * Value of key in NUL-separated text (first occurrence; the last pair
 * may lack its NUL, which the target tolerates), copied into out
 * (VAL_MAX bytes), or NULL when absent or longer.
 */
static const char *find_key(const char *text, size_t len, const char *key, char *out)
{
	size_t kl = strlen(key);

	for (size_t o = 0; o < len;) {
		const char *p = text + o;
		size_t l = strnlen(p, len - o);
		if (l > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			if (l - kl - 1 >= VAL_MAX)
				return NULL;
			memcpy(out, p + kl + 1, l - kl - 1);
			out[l - kl - 1] = 0;
			return out;
		}
		o += l + 1;
	}
	return NULL;
}

static bool recv_all(int fd, uint8_t *buf, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (n) {
		if (poll(&pfd, 1, 1000) <= 0)
			return false;
		ssize_t r = recv(fd, buf, n, 0);
		if (r <= 0)
			return false;
		buf += r;
		n -= (size_t)r;
	}
	return true;
}

/* Check the mutual answer in rsp against the CHAP_I/CHAP_C we sent. */
static void check_mutual(const struct conv *cv, const char *req, size_t reqlen,
			 const char *rsp, size_t rsplen)
{
	static char bn[VAL_MAX], br[VAL_MAX], bi[VAL_MAX], bc[VAL_MAX];
	const char *n = find_key(rsp, rsplen, "CHAP_N", bn), *r = find_key(rsp, rsplen, "CHAP_R", br);
	const char *si = find_key(req, reqlen, "CHAP_I", bi), *sc = find_key(req, reqlen, "CHAP_C", bc);
	uint8_t chal[CHAP_CHALLENGE_MAX], got[CHAP_DIGEST_MAX + 1], want[CHAP_DIGEST_MAX];
	uint64_t id;

	if ((!r || !strcmp(r, "Irrelevant")) && (!n || !strcmp(n, "Irrelevant")))
		return;               /* none, or CHAP not asked of this client */
	if (!r || !n || !(g_flags & 4) || strcmp(n, MUSER) != 0 || !si || !sc || !cv->alg)
		abort();              /* a mutual answer nobody configured or asked for */
	int cl = chap_decode(sc, chal, sizeof(chal));
	if (parse_number(si, &id) || id > 255 || cl < 1)
		abort();              /* answered a challenge it should have refused */
	chap_response(cv->alg, (uint8_t)id, MSECRET, chal, (size_t)cl, want);
	if (chap_decode(r, got, sizeof(got)) != (int)chap_digest_len(cv->alg) ||
	    memcmp(got, want, chap_digest_len(cv->alg)) != 0)
		abort();              /* the wrong mutual response */
}

/*
 * Send one Login Request and read its answer.  Returns false when the
 * conversation is over (refused, or the connection closed).
 */
static bool exchange(struct conv *cv, uint8_t flags, const char *text, size_t len, uint32_t n)
{
	uint8_t bhs[48] = { 0 }, pad[4] = { 0 };
	static uint8_t data[65536 + 4];

	bhs[0] = 0x43;
	bhs[1] = flags;
	bhs[5] = (uint8_t)(len >> 16);
	bhs[6] = (uint8_t)(len >> 8);
	bhs[7] = (uint8_t)len;
	bhs[8] = 0x40;            /* ISID: random type */
	bhs[13] = 1;
	bhs[19] = (uint8_t)n;     /* ITT */
	bhs[27] = 1;              /* CmdSN */
	bhs[31] = (uint8_t)n;     /* ExpStatSN */
	if (send(cv->fd, bhs, 48, MSG_NOSIGNAL) != 48 ||
	    (len && send(cv->fd, text, len, MSG_NOSIGNAL) != (ssize_t)len) ||
	    (len % 4 && send(cv->fd, pad, 4 - len % 4, MSG_NOSIGNAL) != (ssize_t)(4 - len % 4)))
		return false;
	if (!recv_all(cv->fd, bhs, 48))
		return false;
	uint32_t dsl = (uint32_t)bhs[5] << 16 | bhs[6] << 8 | bhs[7];
	if ((bhs[0] & 0x3f) != 0x23)
		return false;         /* a Reject: the login is over */
	if (dsl > 65536)
		abort();
	if (!recv_all(cv->fd, data, (dsl + 3) & ~3u))
		return false;
	uint16_t status = (uint16_t)(bhs[36] << 8 | bhs[37]);
	if (status)
		return false;
	const char *rsp = (const char *)data;

	/* Out of the security stage (or answered in a later one) while
	 * CHAP is required: only the right response gets there. */
	int csg = (bhs[1] >> 2) & 3;
	if (__atomic_load_n(&g_required, __ATOMIC_SEQ_CST) && (csg > 0 || (bhs[1] & 0x80)) &&
	    !cv->proved)
		abort();
	check_mutual(cv, text, len, rsp, dsl);
	static char ba[VAL_MAX], bi[VAL_MAX], bc[VAL_MAX];
	const char *a = find_key(rsp, dsl, "CHAP_A", ba), *i = find_key(rsp, dsl, "CHAP_I", bi);
	const char *c = find_key(rsp, dsl, "CHAP_C", bc);
	bool irrelevant = (!a || !strcmp(a, "Irrelevant")) && (!i || !strcmp(i, "Irrelevant")) &&
			  (!c || !strcmp(c, "Irrelevant"));   /* CHAP not asked of this client */
	if (!irrelevant) {
		uint64_t av, iv;
		if (!a || !i || !c || parse_number(a, &av) || (av != 5 && av != 7) ||
		    parse_number(i, &iv) || iv > 255)
			abort();          /* a challenge we could not answer */
		int cl = chap_decode(c, cv->chal, sizeof(cv->chal));
		if (cl != (int)chap_digest_len((int)av) || strlen(c) >= sizeof(cv->chal_str))
			abort();
		cv->alg = (int)av;
		cv->id = (long)iv;
		cv->chal_len = (size_t)cl;
		snprintf(cv->chal_str, sizeof(cv->chal_str), "%s", c);
		cv->proved = false;   /* a new challenge needs a new response */
	}
	return (bhs[1] & 0x83) != 0x83;   /* logged in: the conversation is over */
}

static void login_one(const uint8_t *data, size_t size)
{
	static const char normal[] = "InitiatorName=" INAME "\0TargetName=" TNAME "\0SessionType=Normal";
	static const char disc[] = "InitiatorName=" INAME "\0SessionType=Discovery";
	static char text[16384];
	struct conv cv = { .fd = -1, .id = -1 };
	int sv[2];

	g_flags = data[0];
	__atomic_store_n(&g_required, 0, __ATOMIC_SEQ_CST);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return;
	if (iscsi_conn_start(&g_srv, sv[0])) {
		close(sv[1]);
		return;
	}
	cv.fd = sv[1];
	size_t o = 1;
	for (uint32_t n = 0; n < 6 && o < size; n++) {
		const uint8_t *end = memchr(data + o, 0xff, size - o);
		size_t seg = end ? (size_t)(end - (data + o)) : size - o;
		size_t len = 0;
		uint8_t flags = seg ? data[o] : 0x87;
		if (n == 0 && !(g_flags & 16)) {
			const char *pre = g_flags & 8 ? disc : normal;
			size_t pl = g_flags & 8 ? sizeof(disc) : sizeof(normal);
			put(text, &len, sizeof(text), pre, pl);   /* with its NUL */
		}
		if (seg > 1)
			len = expand(&cv, data + o + 1, seg - 1, text, sizeof(text), len);
		o += seg + 1;
		if (!exchange(&cv, flags, text, len, n + 1))
			break;
	}
	close(sv[1]);
	fuzz_target_wait();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g_scsi)
		setup();
	if (size < 2 || size > 65536)
		return 0;
	if (data[0] & 1)
		login_one(data, size);
	else
		decode_one(data, size);
	return 0;
}
