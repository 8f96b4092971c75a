/*
 * params.h - iSCSI text keys: parsing key=value lists and negotiating the
 * login/operational keys of RFC 7143 section 13.
 *
 * A negotiation holds the values agreed so far on one connection.  The
 * initiator offers; we answer every key it sends exactly once, following
 * each key's result function (min, max, AND, OR, list, declarative).  The
 * values the daemon prefers come from struct neg_prefs.
 */
#ifndef PRISTINE_PARAMS_H
#define PRISTINE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISCSI_NAME_MAX 224     /* RFC 7143 4.2.7.1: 223 bytes + NUL */
#define ISCSI_KEY_MAX 63
#define ISCSI_VALUE_MAX 8192   /* longest value we accept (CHAP needs ~2 KiB) */
#define ISCSI_TEXT_MAX 65536   /* whole text negotiation, all PDUs together */

/* Values in force on a connection.  Defaults are RFC 7143's. */
struct iscsi_params {
	bool header_digest, data_digest;
	uint32_t mrdsl_tx;        /* largest data segment we may send (peer's MRDSL) */
	uint32_t mrdsl_rx;        /* largest data segment we accept (our MRDSL) */
	uint32_t max_burst, first_burst, max_r2t;
	bool initial_r2t, immediate_data, data_pdu_in_order, data_seq_in_order;
	uint32_t time2wait, time2retain, erl, max_conns;
	bool discovery;
	char initiator_name[ISCSI_NAME_MAX];
	char initiator_alias[256];
	char target_name[ISCSI_NAME_MAX];
};

/* What the daemon is willing to do. */
struct neg_prefs {
	uint32_t mrdsl;           /* our MaxRecvDataSegmentLength */
	uint32_t max_burst, first_burst, max_r2t;
	bool allow_digests;       /* accept CRC32C when offered */
};

/* A growable buffer of "key=value\0" pairs.  Owns buf (free with kvbuf_free). */
struct kvbuf {
	char *buf;
	size_t len, cap;
};

int kvbuf_add(struct kvbuf *kb, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kvbuf_free(struct kvbuf *kb);

struct negotiation {
	struct iscsi_params *p;
	const struct neg_prefs *prefs;
	uint64_t seen;            /* keys already received (bit per key) */
	bool in_login;            /* false: Text negotiation in full feature phase */
	bool mrdsl_declared;      /* we have sent our MaxRecvDataSegmentLength */
	/* set on error: login status class/detail and a message for the log */
	uint16_t status;
	char err[128];
};

/* Fill p with RFC 7143 defaults; our MRDSL from prefs. */
void params_defaults(struct iscsi_params *p, const struct neg_prefs *prefs);

void neg_init(struct negotiation *n, struct iscsi_params *p, const struct neg_prefs *prefs, bool in_login);

/*
 * Answer one key the initiator sent.  Returns 0 when the key was handled
 * (its answer, if any, appended to out), 1 when the key is not a
 * login/operational key (the caller handles it: security keys,
 * SendTargets), or -1 on an error that must fail the login (n->status and
 * n->err say why: e.g. a key sent twice).
 */
int neg_key(struct negotiation *n, const char *key, const char *val, struct kvbuf *out);

/* Called when the operational stage ends: declare our MRDSL if not yet
 * done and settle dependent values (FirstBurstLength <= MaxBurstLength). */
void neg_finish(struct negotiation *n, struct kvbuf *out);

/*
 * Iterate over "key=value\0" pairs in text[0..len); text[len] must be
 * writable (it is set to NUL).  Calls fn for each; a pair with no '=' or
 * an over-long value is passed with val NULL so the caller can answer
 * "Reject".  A pair whose key is empty or longer than 63 bytes cannot be
 * answered at all: kv_parse returns KV_MALFORMED.  Otherwise it stops and
 * returns fn's value when that is non-zero, or 0 after the last pair.
 */
#define KV_MALFORMED (-100)
typedef int (*kv_fn)(void *ctx, const char *key, const char *val);
int kv_parse(char *text, size_t len, kv_fn fn, void *ctx);

/*
 * Is s a well-formed iSCSI name (RFC 3720 3.2.6, RFC 3722)?  "iqn." with a
 * yyyy-mm date, "eui." with 16 hex digits or "naa." with 16 or 32; only
 * letters, digits, '-', '.', ':' and UTF-8 beyond ASCII; at most 223
 * bytes.  No '/', no spaces, no control characters, so a valid name is
 * also safe to show and to key files by.
 */
bool iscsi_name_valid(const char *s);

/* Parse an RFC 7143 numerical value (decimal or 0x hex).  0 or -1. */
int parse_number(const char *s, uint64_t *out);

#endif
