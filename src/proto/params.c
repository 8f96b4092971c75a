/*
 * params.c - iSCSI key negotiation (RFC 7143 sections 6 and 13).
 *
 * Every key the initiator sends gets exactly one answer:
 *   - a known key with a valid value: the result of its function;
 *   - a known key with an invalid or out-of-range value: "Reject" (the
 *     key keeps its current value);
 *   - an unknown key (including X- and X# extension keys): "NotUnderstood";
 *   - a key the target alone may declare: "Irrelevant"... no: "Reject".
 * A key sent twice in one negotiation fails the login (initiator error),
 * as RFC 7143 6.1 requires.
 */
#include "proto/login_status.h"
#include "proto/params.h"
#include "util/parse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- text buffers ---------------------------------------------------- */

int kvbuf_add(struct kvbuf *kb, const char *key, const char *fmt, ...)
{
	char val[ISCSI_VALUE_MAX + 1];
	va_list ap;
	size_t klen = strlen(key), vlen, need;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(val))
		return -EINVAL;
	vlen = (size_t)n;
	need = kb->len + klen + 1 + vlen + 1;
	if (need > ISCSI_TEXT_MAX)
		return -E2BIG;
	if (need > kb->cap) {
		size_t cap = kb->cap ? kb->cap : 512;
		char *nb;
		while (cap < need)
			cap *= 2;
		nb = realloc(kb->buf, cap);
		if (!nb)
			return -ENOMEM;
		kb->buf = nb;
		kb->cap = cap;
	}
	memcpy(kb->buf + kb->len, key, klen);
	kb->buf[kb->len + klen] = '=';
	memcpy(kb->buf + kb->len + klen + 1, val, vlen + 1);
	kb->len = need;
	return 0;
}

void kvbuf_free(struct kvbuf *kb)
{
	free(kb->buf);
	kb->buf = NULL;
	kb->len = kb->cap = 0;
}

int parse_number(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!s[2])
			return -1;
		v = strtoull(s + 2, &end, 16);
	} else {
		v = strtoull(s, &end, 10);
	}
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int kv_parse(char *text, size_t len, kv_fn fn, void *ctx)
{
	size_t i = 0;

	text[len] = '\0';
	while (i < len) {
		char *pair = text + i;
		size_t plen = strlen(pair), klen;
		char *eq;
		int rc;

		i += plen + 1;
		if (plen == 0)
			continue; /* stray NUL padding */
		eq = strchr(pair, '=');
		klen = eq ? (size_t)(eq - pair) : plen;
		if (klen == 0 || klen > ISCSI_KEY_MAX)
			return KV_MALFORMED;
		if (!eq || strlen(eq + 1) > ISCSI_VALUE_MAX) {
			if (eq)
				*eq = '\0';
			rc = fn(ctx, pair, NULL);
		} else {
			*eq = '\0';
			rc = fn(ctx, pair, eq + 1);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* The one iSCSI-name rule lives in util/parse.c (options, configuration
 * file and API use it too). */
bool iscsi_name_valid(const char *s)
{
	return parse_iqn_ok(s);
}

/* ---- the key table ---------------------------------------------------- */

enum key_kind {
	K_DIGEST,        /* list: CRC32C,None */
	K_NUM_MIN,       /* numeric, result = min */
	K_NUM_MAX,       /* numeric, result = max */
	K_BOOL_AND,
	K_BOOL_OR,
	K_MRDSL,         /* declarative numeric */
	K_DECL_NAME,     /* InitiatorName, TargetName, InitiatorAlias */
	K_SESSION_TYPE,
	K_TARGET_ONLY,   /* keys only the target may send */
	K_MARKINT,       /* OFMarkInt/IFMarkInt: irrelevant, markers are off */
	K_TASK_REPORTING,
	K_PROTO_LEVEL,
};

struct key_def {
	const char *name;
	enum key_kind kind;
	bool leading_only;
	uint64_t min, max;
};

enum {
	KI_HEADER_DIGEST, KI_DATA_DIGEST, KI_MAX_CONNS, KI_INITIAL_R2T, KI_IMMEDIATE,
	KI_MRDSL, KI_MAX_BURST, KI_FIRST_BURST, KI_T2WAIT, KI_T2RETAIN, KI_MAX_R2T,
	KI_PDU_ORDER, KI_SEQ_ORDER, KI_ERL, KI_INITIATOR_NAME, KI_TARGET_NAME,
	KI_INITIATOR_ALIAS, KI_SESSION_TYPE, KI_TARGET_ALIAS, KI_TARGET_ADDRESS,
	KI_TPGT, KI_OFMARKER, KI_IFMARKER, KI_OFMARKINT, KI_IFMARKINT,
	KI_TASK_REPORTING, KI_PROTO_LEVEL, KI_COUNT
};

static const struct key_def g_keys[KI_COUNT] = {
	[KI_HEADER_DIGEST]  = { "HeaderDigest", K_DIGEST, false, 0, 0 },
	[KI_DATA_DIGEST]    = { "DataDigest", K_DIGEST, false, 0, 0 },
	[KI_MAX_CONNS]      = { "MaxConnections", K_NUM_MIN, true, 1, 65535 },
	[KI_INITIAL_R2T]    = { "InitialR2T", K_BOOL_OR, true, 0, 0 },
	[KI_IMMEDIATE]      = { "ImmediateData", K_BOOL_AND, true, 0, 0 },
	[KI_MRDSL]          = { "MaxRecvDataSegmentLength", K_MRDSL, false, 512, 16777215 },
	[KI_MAX_BURST]      = { "MaxBurstLength", K_NUM_MIN, true, 512, 16777215 },
	[KI_FIRST_BURST]    = { "FirstBurstLength", K_NUM_MIN, true, 512, 16777215 },
	[KI_T2WAIT]         = { "DefaultTime2Wait", K_NUM_MAX, true, 0, 3600 },
	[KI_T2RETAIN]       = { "DefaultTime2Retain", K_NUM_MIN, true, 0, 3600 },
	[KI_MAX_R2T]        = { "MaxOutstandingR2T", K_NUM_MIN, true, 1, 65535 },
	[KI_PDU_ORDER]      = { "DataPDUInOrder", K_BOOL_OR, true, 0, 0 },
	[KI_SEQ_ORDER]      = { "DataSequenceInOrder", K_BOOL_OR, true, 0, 0 },
	[KI_ERL]            = { "ErrorRecoveryLevel", K_NUM_MIN, true, 0, 2 },
	[KI_INITIATOR_NAME] = { "InitiatorName", K_DECL_NAME, true, 0, 0 },
	[KI_TARGET_NAME]    = { "TargetName", K_DECL_NAME, true, 0, 0 },
	[KI_INITIATOR_ALIAS]= { "InitiatorAlias", K_DECL_NAME, false, 0, 0 },
	[KI_SESSION_TYPE]   = { "SessionType", K_SESSION_TYPE, true, 0, 0 },
	[KI_TARGET_ALIAS]   = { "TargetAlias", K_TARGET_ONLY, false, 0, 0 },
	[KI_TARGET_ADDRESS] = { "TargetAddress", K_TARGET_ONLY, false, 0, 0 },
	[KI_TPGT]           = { "TargetPortalGroupTag", K_TARGET_ONLY, true, 0, 0 },
	[KI_OFMARKER]       = { "OFMarker", K_BOOL_AND, false, 0, 0 },
	[KI_IFMARKER]       = { "IFMarker", K_BOOL_AND, false, 0, 0 },
	[KI_OFMARKINT]      = { "OFMarkInt", K_MARKINT, false, 0, 0 },
	[KI_IFMARKINT]      = { "IFMarkInt", K_MARKINT, false, 0, 0 },
	[KI_TASK_REPORTING] = { "TaskReporting", K_TASK_REPORTING, true, 0, 0 },
	[KI_PROTO_LEVEL]    = { "iSCSIProtocolLevel", K_PROTO_LEVEL, true, 0, 31 },
};

void params_defaults(struct iscsi_params *p, const struct neg_prefs *prefs)
{
	memset(p, 0, sizeof(*p));
	p->mrdsl_tx = 8192;
	p->mrdsl_rx = 8192;     /* until we declare ours */
	p->max_burst = 262144;
	p->first_burst = 65536;
	p->max_r2t = 1;
	p->initial_r2t = true;
	p->immediate_data = true;
	p->data_pdu_in_order = true;
	p->data_seq_in_order = true;
	p->time2wait = 2;
	p->time2retain = 20;
	p->erl = 0;
	p->max_conns = 1;
	(void)prefs;
}

void neg_init(struct negotiation *n, struct iscsi_params *p, const struct neg_prefs *prefs, bool in_login)
{
	memset(n, 0, sizeof(*n));
	n->p = p;
	n->prefs = prefs;
	n->in_login = in_login;
}

static int find_key(const char *key)
{
	for (int i = 0; i < KI_COUNT; i++)
		if (strcmp(g_keys[i].name, key) == 0)
			return i;
	return -1;
}

static int parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "Yes") == 0) { *out = true; return 0; }
	if (strcmp(v, "No") == 0) { *out = false; return 0; }
	return -1;
}

/* "CRC32C,None" -> the first entry we support, or NULL. */
static const char *pick_digest(const char *list, bool allow_crc)
{
	char tmp[ISCSI_VALUE_MAX + 1];
	char *save = NULL, *tok;

	snprintf(tmp, sizeof(tmp), "%s", list);
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "None") == 0)
			return "None";
		if (strcmp(tok, "CRC32C") == 0 && allow_crc)
			return "CRC32C";
	}
	return NULL;
}

/* Is this a reply word rather than an offer? */
static bool is_reply_word(const char *v)
{
	return strcmp(v, "NotUnderstood") == 0 || strcmp(v, "Irrelevant") == 0 ||
	       strcmp(v, "Reject") == 0;
}

static uint32_t *num_slot(struct iscsi_params *p, int ki)
{
	switch (ki) {
	case KI_MAX_CONNS: return &p->max_conns;
	case KI_MAX_BURST: return &p->max_burst;
	case KI_FIRST_BURST: return &p->first_burst;
	case KI_T2WAIT: return &p->time2wait;
	case KI_T2RETAIN: return &p->time2retain;
	case KI_MAX_R2T: return &p->max_r2t;
	case KI_ERL: return &p->erl;
	default: return NULL;
	}
}

/* Our own value for a numeric key. */
static uint32_t num_ours(const struct negotiation *n, int ki)
{
	switch (ki) {
	case KI_MAX_CONNS: return 1;
	case KI_MAX_BURST: return n->prefs->max_burst;
	case KI_FIRST_BURST: return n->prefs->first_burst;
	case KI_T2WAIT: return 2;
	case KI_T2RETAIN: return 20;
	case KI_MAX_R2T: return n->prefs->max_r2t;
	case KI_ERL: return 0;       /* session recovery only */
	default: return 0;
	}
}

static bool *bool_slot(struct iscsi_params *p, int ki)
{
	switch (ki) {
	case KI_INITIAL_R2T: return &p->initial_r2t;
	case KI_IMMEDIATE: return &p->immediate_data;
	case KI_PDU_ORDER: return &p->data_pdu_in_order;
	case KI_SEQ_ORDER: return &p->data_seq_in_order;
	default: return NULL;
	}
}

/* Our own value for a boolean key: we take unsolicited and immediate data,
 * but insist on in-order data (what lets us receive straight into place). */
static bool bool_ours(int ki)
{
	switch (ki) {
	case KI_INITIAL_R2T: return false;
	case KI_IMMEDIATE: return true;
	case KI_PDU_ORDER: return true;
	case KI_SEQ_ORDER: return true;
	default: return false; /* markers */
	}
}

static int fail(struct negotiation *n, uint16_t status, const char *fmt, const char *key)
{
	n->status = status;
	snprintf(n->err, sizeof(n->err), fmt, key);
	return -1;
}

int neg_key(struct negotiation *n, const char *key, const char *val, struct kvbuf *out)
{
	struct iscsi_params *p = n->p;
	const struct key_def *kd;
	uint64_t num;
	int ki = find_key(key);

	if (ki < 0) {
		/* Security keys and SendTargets belong to the caller. */
		if (strcmp(key, "AuthMethod") == 0 || strncmp(key, "CHAP_", 5) == 0 ||
		    strcmp(key, "SendTargets") == 0)
			return 1;
		return kvbuf_add(out, key, "NotUnderstood") ? fail(n, LOGIN_TARGET_ERROR, "reply too long at %s", key) : 0;
	}
	kd = &g_keys[ki];
	if (n->seen & (1ull << ki))
		return fail(n, LOGIN_INITIATOR_ERROR, "key %s sent twice", key);
	n->seen |= 1ull << ki;

	if (!val)
		goto reject;
	/* An initiator echoing a reply word about a key we declared: no answer. */
	if (is_reply_word(val))
		return 0;
	if (!n->in_login && kd->leading_only)
		goto reject;

	switch (kd->kind) {
	case K_DIGEST: {
		const char *pick = pick_digest(val, n->prefs->allow_digests);
		if (!pick)
			goto reject;
		if (ki == KI_HEADER_DIGEST)
			p->header_digest = pick[0] == 'C';
		else
			p->data_digest = pick[0] == 'C';
		return kvbuf_add(out, key, "%s", pick);
	}
	case K_NUM_MIN:
	case K_NUM_MAX: {
		uint32_t ours = num_ours(n, ki), res;
		if (parse_number(val, &num) || num < kd->min || num > kd->max)
			goto reject;
		if (kd->kind == K_NUM_MIN)
			res = num < ours ? (uint32_t)num : ours;
		else
			res = num > ours ? (uint32_t)num : ours;
		/* FirstBurstLength may not exceed MaxBurstLength (RFC 7143 13.14). */
		if (ki == KI_FIRST_BURST && res > p->max_burst)
			res = p->max_burst;
		*num_slot(p, ki) = res;
		return kvbuf_add(out, key, "%u", res);
	}
	case K_BOOL_AND:
	case K_BOOL_OR: {
		bool b, res;
		if (parse_bool(val, &b))
			goto reject;
		res = kd->kind == K_BOOL_AND ? (b && bool_ours(ki)) : (b || bool_ours(ki));
		if (bool_slot(p, ki))
			*bool_slot(p, ki) = res;
		return kvbuf_add(out, key, "%s", res ? "Yes" : "No");
	}
	case K_MRDSL:
		if (parse_number(val, &num) || num < kd->min || num > kd->max)
			goto reject;
		p->mrdsl_tx = (uint32_t)num;
		/* Declarative: no answer to theirs, but we declare ours once. */
		if (!n->mrdsl_declared) {
			n->mrdsl_declared = true;
			p->mrdsl_rx = n->prefs->mrdsl;
			return kvbuf_add(out, key, "%u", n->prefs->mrdsl);
		}
		return 0;
	case K_DECL_NAME: {
		char *dst = ki == KI_INITIATOR_NAME ? p->initiator_name :
			    ki == KI_TARGET_NAME ? p->target_name : p->initiator_alias;
		size_t cap = ki == KI_INITIATOR_ALIAS ? sizeof(p->initiator_alias) : ISCSI_NAME_MAX;
		size_t len = strlen(val);
		if (len == 0 || len >= cap)
			goto reject;
		memcpy(dst, val, len + 1);
		return 0;
	}
	case K_SESSION_TYPE:
		if (strcmp(val, "Discovery") == 0)
			p->discovery = true;
		else if (strcmp(val, "Normal") == 0)
			p->discovery = false;
		else
			goto reject;
		return 0;
	case K_TARGET_ONLY:
		goto reject;
	case K_MARKINT:
		return kvbuf_add(out, key, "Irrelevant");
	case K_TASK_REPORTING: {
		/* We report tasks the RFC 3720 way only. */
		char tmp[ISCSI_VALUE_MAX + 1], *save = NULL, *tok;
		snprintf(tmp, sizeof(tmp), "%s", val);
		for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (strcmp(tok, "RFC3720") == 0)
				return kvbuf_add(out, key, "RFC3720");
		goto reject;
	}
	case K_PROTO_LEVEL:
		if (parse_number(val, &num) || num > kd->max)
			goto reject;
		return kvbuf_add(out, key, "%u", num < 1 ? 0u : 1u);
	}
reject:
	return kvbuf_add(out, key, "Reject") ? fail(n, LOGIN_TARGET_ERROR, "reply too long at %s", key) : 0;
}

void neg_finish(struct negotiation *n, struct kvbuf *out)
{
	struct iscsi_params *p = n->p;

	if (!n->mrdsl_declared) {
		n->mrdsl_declared = true;
		p->mrdsl_rx = n->prefs->mrdsl;
		kvbuf_add(out, "MaxRecvDataSegmentLength", "%u", n->prefs->mrdsl);
	}
	if (p->first_burst > p->max_burst)
		p->first_burst = p->max_burst;
}
