/*
 * login.c - the login phase (RFC 7143 section 6 and 11.12/11.13).
 *
 * Stages: SecurityNegotiation (0) -> LoginOperationalNegotiation (1) ->
 * FullFeaturePhase (3) (STAGE_* in pdu.h).  An initiator may skip stage 0 when no
 * authentication is required.  Text spread over several Login Requests (C
 * bit) is gathered before it is answered; the answer of each stage fits
 * one Login Response (it is a few hundred bytes).
 *
 * What decides the outcome (status names from login_status.h):
 *   - InitiatorName on the first request (LOGIN_MISSING_PARAMETER when
 *     missing);
 *   - SessionType=Normal needs a TargetName we serve
 *     (LOGIN_MISSING_PARAMETER / LOGIN_NOT_FOUND);
 *   - a TSIH other than 0 names an existing session: we allow one
 *     connection per session, and do not look the TSIH up, so that is
 *     LOGIN_SESSION_DOES_NOT_EXIST;
 *   - the same initiator port (name + ISID) logging in again replaces its
 *     old session once the new login succeeds (session reinstatement);
 *   - security (RFC 7143 12.1.3): a client the daemon's chap_secret hook
 *     names must authenticate with CHAP (MD5 or SHA-256, optionally
 *     mutual) before it leaves stage 0; anything else is
 *     LOGIN_AUTHENTICATION_FAILED.  Other initiators must offer
 *     AuthMethod=None.  Discovery sessions are not
 *     authenticated.
 *
 * CHAP exchange (target side):
 *   START  --AuthMethod=...CHAP...-->  WAIT_A  (we answer AuthMethod=CHAP)
 *   WAIT_A --CHAP_A=list-->            WAIT_R  (we send CHAP_A, CHAP_I, CHAP_C)
 *   WAIT_R --CHAP_N, CHAP_R [, CHAP_I, CHAP_C]--> DONE (mutual: our CHAP_N, CHAP_R)
 * Every request in WAIT_A/WAIT_R must carry the next step; a challenge is
 * used for one response only.  Secrets, responses and challenges are never
 * logged.
 */
#include "proto/chap.h"
#include "proto/conn.h"
#include "proto/login_status.h"
#include "util/log.h"
#include "util/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Security keys of one request (see security_key). */
enum { SK_AUTH, SK_A, SK_I, SK_C, SK_N, SK_R, SK_COUNT };

/* Login state kept on the connection between Login Requests. */
struct login_state {
	int stage;                 /* stage the next request must be in */
	bool first_done;
	uint8_t isid[6];
	uint16_t tsih;
	struct negotiation neg;
	bool tpgt_sent;
	bool routed;               /* the route hook was asked */
	/* security stage */
	bool sec_known;            /* chap_secret hook asked */
	bool chap_required;
	enum { AUTH_START, AUTH_WAIT_A, AUTH_WAIT_R, AUTH_DONE } auth;
	int chap_alg;
	uint8_t chap_id;
	uint8_t chap_chal[CHAP_DIGEST_MAX];
	size_t chap_chal_len;
	struct iscsi_chap_creds creds;
	const char *sk[SK_COUNT];  /* security keys of this request (into text) */
	char *text;                /* gathered request text (C bit) */
	size_t text_len;
};


struct key_ctx {
	struct iscsi_conn *c;
	struct login_state *ls;
	struct kvbuf *out;
	int rc;
};

static const char *const sk_names[SK_COUNT] = {
	"AuthMethod", "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R"
};

/*
 * Security keys are only collected here (their values stay in ls->text):
 * the answer depends on the client, which is known once the whole request
 * is parsed.  security_step() handles them.
 */
static int security_key(struct key_ctx *k, const char *key, const char *val)
{
	struct login_state *ls = k->ls;

	for (int i = 0; i < SK_COUNT; i++) {
		if (strcmp(key, sk_names[i]))
			continue;
		if (ls->sk[i]) {
			ls->neg.status = LOGIN_INITIATOR_ERROR;
			snprintf(ls->neg.err, sizeof(ls->neg.err), "key %s sent twice", key);
			return -1;
		}
		if (!val) {
			ls->neg.status = LOGIN_AUTHENTICATION_FAILED;
			snprintf(ls->neg.err, sizeof(ls->neg.err), "malformed %s", key);
			return -1;
		}
		ls->sk[i] = val;
		return 0;
	}
	/* Other CHAP_* keys, or SendTargets during login. */
	return kvbuf_add(k->out, key, "Irrelevant");
}

static bool list_has(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, word, n) == 0 && (p[n] == ',' || p[n] == 0))
			return true;
	}
	return false;
}

/* Pick the first CHAP_A value of the initiator's list that we speak, or 0. */
static int pick_chap_alg(const char *list)
{
	char tmp[256], *save = NULL, *tok;
	uint64_t v;

	snprintf(tmp, sizeof(tmp), "%s", list);
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (parse_number(tok, &v) == 0 && v <= 255 && chap_digest_len((int)v))
			return (int)v;
	return 0;
}

#define AUTH_FAIL(ls, ...) \
	(snprintf((ls)->neg.err, sizeof((ls)->neg.err), __VA_ARGS__), LOGIN_AUTHENTICATION_FAILED)

/*
 * Check the initiator's proof, and answer its challenge (mutual CHAP).
 * Returns 0 or a login status with ls->neg.err set.
 */
static int chap_verify(struct login_state *ls, struct kvbuf *out)
{
	const char **sk = ls->sk;
	size_t dlen = chap_digest_len(ls->chap_alg);
	uint8_t got[CHAP_DIGEST_MAX + 1], want[CHAP_DIGEST_MAX];
	uint8_t chal[CHAP_CHALLENGE_MAX], mine[CHAP_DIGEST_MAX];
	size_t mine_len = ls->chap_chal_len;
	char hex[3 + 2 * CHAP_DIGEST_MAX];
	uint64_t id;
	int n, rc = 0;

	/* Our challenge is good for this one answer, right or wrong. */
	memcpy(mine, ls->chap_chal, mine_len);
	explicit_bzero(ls->chap_chal, sizeof(ls->chap_chal));
	ls->chap_chal_len = 0;
	if (!sk[SK_N] || !sk[SK_R]) {
		rc = AUTH_FAIL(ls, "CHAP_N or CHAP_R missing");
		goto out;
	}
	n = chap_decode(sk[SK_R], got, sizeof(got));
	if (n != (int)dlen) {
		rc = AUTH_FAIL(ls, "CHAP_R of the wrong length");
		goto out;
	}
	chap_response(ls->chap_alg, ls->chap_id, ls->creds.secret, mine, mine_len, want);
	/* The name is compared too, but only the response is secret. */
	if (!chap_equal(got, want, dlen) || strcmp(sk[SK_N], ls->creds.user) != 0) {
		rc = AUTH_FAIL(ls, "wrong CHAP name or response");
		goto out;
	}
	if (!sk[SK_I] && !sk[SK_C])
		goto out;
	/* Mutual: the initiator challenges us. */
	if (!sk[SK_I] || !sk[SK_C]) {
		rc = AUTH_FAIL(ls, "mutual CHAP needs both CHAP_I and CHAP_C");
		goto out;
	}
	if (!ls->creds.muser[0]) {
		rc = AUTH_FAIL(ls, "mutual CHAP asked but not configured for this client");
		goto out;
	}
	if (parse_number(sk[SK_I], &id) || id > 255) {
		rc = AUTH_FAIL(ls, "CHAP_I out of range");
		goto out;
	}
	n = chap_decode(sk[SK_C], chal, sizeof(chal));
	if (n < 1) {
		rc = AUTH_FAIL(ls, "CHAP_C malformed, empty or longer than %d bytes", CHAP_CHALLENGE_MAX);
		goto out;
	}
	if ((size_t)n == mine_len && memcmp(chal, mine, mine_len) == 0) {
		rc = AUTH_FAIL(ls, "CHAP_C reflects our own challenge");
		goto out;
	}
	chap_response(ls->chap_alg, (uint8_t)id, ls->creds.msecret, chal, (size_t)n, want);
	chap_encode_hex(want, dlen, hex);
	if (kvbuf_add(out, "CHAP_N", "%s", ls->creds.muser) || kvbuf_add(out, "CHAP_R", "%s", hex))
		rc = LOGIN_TARGET_ERROR;
	explicit_bzero(hex, sizeof(hex));
out:
	explicit_bzero(want, sizeof(want));
	explicit_bzero(mine, sizeof(mine));
	return rc;
}

/*
 * The security stage of one request, after its keys are parsed and the
 * initiator and target names checked.  Answers AuthMethod and the CHAP
 * steps into out.  Returns 0 or a login status with ls->neg.err set.
 */
static int security_step(struct iscsi_conn *c, struct login_state *ls, struct kvbuf *out, int csg)
{
	const char **sk = ls->sk;
	bool chap_keys = sk[SK_A] || sk[SK_I] || sk[SK_C] || sk[SK_N] || sk[SK_R];
	int rc;

	if (!ls->sec_known) {
		ls->sec_known = true;
		if (c->srv->hooks.chap_secret)
			ls->chap_required = c->srv->hooks.chap_secret(c->srv->hooks.ctx,
					c->params.initiator_name,
					c->params.discovery ? NULL : c->params.target_name, &ls->creds) > 0;
	}
	if (!ls->chap_required) {
		if (sk[SK_AUTH]) {
			if (!list_has(sk[SK_AUTH], "None"))
				return AUTH_FAIL(ls, "no common AuthMethod (offered %.60s)", sk[SK_AUTH]);
			if (kvbuf_add(out, "AuthMethod", "None"))
				return LOGIN_TARGET_ERROR;
		}
		for (int i = SK_A; i < SK_COUNT; i++)
			if (sk[i] && kvbuf_add(out, sk_names[i], "Irrelevant"))
				return LOGIN_TARGET_ERROR;
		return 0;
	}
	if (ls->auth == AUTH_DONE) {
		if (sk[SK_AUTH] || chap_keys)
			return AUTH_FAIL(ls, "security keys after authentication");
		return 0;
	}
	if (csg != 0)
		return AUTH_FAIL(ls, "CHAP required, security stage skipped");
	if (ls->auth == AUTH_START) {
		if (!sk[SK_AUTH])
			return AUTH_FAIL(ls, "CHAP required, no AuthMethod offered");
		if (!list_has(sk[SK_AUTH], "CHAP"))
			return AUTH_FAIL(ls, "CHAP required, offered AuthMethod=%.60s", sk[SK_AUTH]);
		if (kvbuf_add(out, "AuthMethod", "CHAP"))
			return LOGIN_TARGET_ERROR;
		ls->auth = AUTH_WAIT_A;
		if (!chap_keys)
			return 0;
	} else if (sk[SK_AUTH]) {
		return AUTH_FAIL(ls, "AuthMethod sent twice");
	}
	if (ls->auth == AUTH_WAIT_A) {
		char hex[3 + 2 * CHAP_DIGEST_MAX];
		if (!sk[SK_A] || sk[SK_N] || sk[SK_R] || sk[SK_I] || sk[SK_C])
			return AUTH_FAIL(ls, "expected CHAP_A");
		ls->chap_alg = pick_chap_alg(sk[SK_A]);
		if (!ls->chap_alg)
			return AUTH_FAIL(ls, "no common CHAP algorithm (offered CHAP_A=%.40s)", sk[SK_A]);
		ls->chap_chal_len = chap_digest_len(ls->chap_alg);
		if (chap_random(&ls->chap_id, 1) || chap_random(ls->chap_chal, ls->chap_chal_len)) {
			snprintf(ls->neg.err, sizeof(ls->neg.err), "getrandom failed");
			return LOGIN_TARGET_ERROR;
		}
		chap_encode_hex(ls->chap_chal, ls->chap_chal_len, hex);
		rc = kvbuf_add(out, "CHAP_A", "%d", ls->chap_alg) ||
		     kvbuf_add(out, "CHAP_I", "%u", ls->chap_id) || kvbuf_add(out, "CHAP_C", "%s", hex);
		ls->auth = AUTH_WAIT_R;
		return rc ? LOGIN_TARGET_ERROR : 0;
	}
	/* AUTH_WAIT_R */
	if (sk[SK_A])
		return AUTH_FAIL(ls, "CHAP_A sent twice");
	rc = chap_verify(ls, out);
	if (rc == 0)
		ls->auth = AUTH_DONE;
	return rc;
}

static int on_key(void *ctx, const char *key, const char *val)
{
	struct key_ctx *k = ctx;
	int rc;

	/* CHAP values are secrets: never log them. */
	if (log_get_level() >= LOG_DEBUG) {
		char kb[64], vb[128];
		log_debug("%s: login key %s=%s", k->c->peer, log_safe(key, kb, sizeof(kb)),
			  strncmp(key, "CHAP_", 5) ? (val ? log_safe(val, vb, sizeof(vb)) : "(invalid)") : "...");
	}
	rc = neg_key(&k->ls->neg, key, val, k->out);

	if (rc == 1)
		rc = security_key(k, key, val);
	return rc < 0 ? -1 : 0;
}

/*
 * Build and send a Login Response.  status != 0 means failure: the
 * connection is then closed by the caller; only a redirection (class 1)
 * carries text (TargetAddress).
 */
static int send_login_rsp(struct iscsi_conn *c, struct login_state *ls, uint8_t flags,
			  uint16_t status, const struct kvbuf *kv)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };

	bhs[BHS_OPCODE] = OP_LOGIN_RSP;
	bhs[BHS_FLAGS] = status ? 0 : flags;
	bhs[BHS_VERSION_MAX] = ISCSI_VERSION;
	bhs[BHS_VERSION_MIN] = ISCSI_VERSION;   /* Version-active */
	memcpy(bhs + BHS_ISID, c->bhs + BHS_ISID, BHS_ISID_LEN);
	put_be16(bhs + BHS_TSIH, status ? 0 : ls->tsih);
	put_be32(bhs + BHS_ITT, get_be32(c->bhs + BHS_ITT));
	put_be32(bhs + BHS_STATSN, c->statsn++);
	put_be32(bhs + BHS_EXPCMDSN, c->exp_cmdsn);
	put_be32(bhs + BHS_MAXCMDSN, status ? c->exp_cmdsn - 1 : conn_max_cmdsn(c));
	bhs[BHS_STATUS_CLASS] = login_status_class(status);
	bhs[BHS_STATUS_DETAIL] = login_status_detail(status);
	bool text = kv && (!status || login_status_class(status) == LOGIN_CLASS_REDIRECTION);

	return conn_send(c, bhs, text ? kv->buf : NULL, text ? (uint32_t)kv->len : 0);
}

const char *iscsi_refusal_name(enum iscsi_refusal r)
{
	static const char *const names[REFUSED_N] = { "unknown", "chap", "address", "limits", "other" };

	return (unsigned)r < REFUSED_N ? names[r] : "other";
}

/* The reason a refusal with status is counted under, unless told. */
static enum iscsi_refusal refusal_of(uint16_t status)
{
	switch (status) {
	case LOGIN_AUTHENTICATION_FAILED: return REFUSED_CHAP;
	case LOGIN_AUTHORIZATION_FAILED: return REFUSED_UNKNOWN;
	case LOGIN_OUT_OF_RESOURCES: return REFUSED_LIMITS;
	default: return REFUSED_OTHER;
	}
}

/* Refuse the login with status, counted under reason; returns -1. */
static int login_fail_as(struct iscsi_conn *c, struct login_state *ls, uint16_t status,
			 const char *why, enum iscsi_refusal reason)
{
	char nb[ISCSI_NAME_MAX];

	atomic_fetch_add_explicit(&c->srv->refused[reason], 1, memory_order_relaxed);

	log_notice("%s: login refused (0x%04x): %s [initiator %s]", c->peer, status, why,
		   log_safe(c->params.initiator_name[0] ? c->params.initiator_name : "?", nb, sizeof(nb)));
	events_add(EV_REFUSED, c->params.initiator_name, NULL, "login from %s refused: %s", c->peer, why);
	send_login_rsp(c, ls, 0, status, NULL);
	return -1;
}

static int login_fail(struct iscsi_conn *c, struct login_state *ls, uint16_t status, const char *why)
{
	return login_fail_as(c, ls, status, why, refusal_of(status));
}

/*
 * Send the initiator to another portal: status 0x0101 with
 * TargetAddress=addr,TPGT (RFC 7143 13.9); the connection then closes.
 * Returns -1 (the login ends here).
 */
static int login_redirect(struct iscsi_conn *c, struct login_state *ls, const char *addr)
{
	struct kvbuf kv = { 0 };
	const struct iscsi_target *t = target_find(c->srv, c->params.target_name);
	char nb[ISCSI_NAME_MAX];

	log_info("%s: login of %s redirected to %s", c->peer,
		 log_safe(c->params.initiator_name, nb, sizeof(nb)), addr);
	if (kvbuf_add(&kv, "TargetAddress", "%s,%u", addr, t ? t->tpgt : 1) == 0)
		send_login_rsp(c, ls, 0, LOGIN_TARGET_MOVED_TEMPORARILY, &kv);
	else
		send_login_rsp(c, ls, 0, LOGIN_SERVICE_UNAVAILABLE, NULL);
	kvbuf_free(&kv);
	return -1;
}

void login_free(struct iscsi_conn *c)
{
	if (!c->login)
		return;
	free(c->login->text);
	explicit_bzero(c->login, sizeof(*c->login));  /* CHAP secrets */
	free(c->login);
	c->login = NULL;
}

/* Everything agreed: create the session and enter full feature phase. */
static int login_complete(struct iscsi_conn *c, struct login_state *ls, struct kvbuf *out, int csg)
{
	struct iscsi_session *s = calloc(1, sizeof(*s));
	char isid_hex[13];
	int rc;

	if (!s)
		return login_fail(c, ls, LOGIN_OUT_OF_RESOURCES, "out of memory");
	s->srv = c->srv;
	s->conn = c;
	s->discovery = c->params.discovery;
	s->target = s->discovery ? NULL : target_find(c->srv, c->params.target_name);
	memcpy(s->isid, ls->isid, 6);
	snprintf(isid_hex, sizeof(isid_hex), "%02x%02x%02x%02x%02x%02x", ls->isid[0], ls->isid[1],
		 ls->isid[2], ls->isid[3], ls->isid[4], ls->isid[5]);
	snprintf(s->nexus.initiator_name, sizeof(s->nexus.initiator_name), "%s", c->params.initiator_name);
	snprintf(s->nexus.port_name, sizeof(s->nexus.port_name), "%s,i,0x%s", c->params.initiator_name, isid_hex);
	s->nexus.tpgt = s->target ? s->target->tpgt : 1;

	s->since = (int64_t)time(NULL);
	if (c->srv->max_sessions_per_initiator &&
	    session_count_others(c->srv, c->params.initiator_name, ls->isid) >=
	    c->srv->max_sessions_per_initiator) {
		char why[80];
		free(s);
		snprintf(why, sizeof(why), "this initiator has %u sessions already (the limit)",
			 c->srv->max_sessions_per_initiator);
		return login_fail(c, ls, LOGIN_OUT_OF_RESOURCES, why);
	}
	if (s->target && c->srv->hooks.attach) {
		char msg[160] = "";
		int st = c->srv->hooks.attach(c->srv->hooks.ctx, s->target, c->params.initiator_name,
					      &s->scsi, &s->handle, msg, sizeof(msg));
		if (st) {
			free(s);
			return login_fail(c, ls, (uint16_t)st, msg[0] ? msg : "refused by the daemon");
		}
	}
	s->io.firmware = ls->isid[0] == 0x40 && ls->isid[1] == 0x00 && ls->isid[2] == 0x27 &&
			 ls->isid[3] == 0x23;
	if (s->target && s->scsi && c->srv->hooks.io_stats)
		c->srv->hooks.io_stats(c->srv->hooks.ctx, s->handle, c->params.initiator_name, &s->io);
	if (s->target && !s->scsi) {
		if (s->handle && c->srv->hooks.detach)
			c->srv->hooks.detach(c->srv->hooks.ctx, s->handle);
		free(s);
		return login_fail(c, ls, LOGIN_TARGET_ERROR, "no LUNs for this initiator");
	}
	/* Only a login that will succeed may end the old session of this
	 * initiator port, so a refused login never disturbs a working one. */
	session_reinstate(c->srv, c->params.initiator_name, ls->isid);
	session_register(c->srv, s);
	ls->tsih = s->tsih;
	c->sess = s;
	if (s->target) {
		scsi_target_nexus_new(s->scsi, &s->nexus);
		s->nexus_registered = true;
	}
	rc = send_login_rsp(c, ls, (uint8_t)(LOGIN_T_BIT | csg << LOGIN_CSG_SHIFT | STAGE_FFP), 0, out);
	if (rc)
		return -1;
	c->state = CONN_FFP;
	log_info("%s: %s session 0x%04x logged in: initiator %s isid %s%s%s, hd=%s dd=%s "
		 "mrdsl(rx/tx)=%u/%u burst=%u/%u r2t=%s imm=%s",
		 c->peer, s->discovery ? "discovery" : "normal", s->tsih, c->params.initiator_name,
		 isid_hex, s->target ? " target " : "", s->target ? s->target->name : "",
		 c->params.header_digest ? "crc32c" : "none", c->params.data_digest ? "crc32c" : "none",
		 c->params.mrdsl_rx, c->params.mrdsl_tx, c->params.first_burst, c->params.max_burst,
		 c->params.initial_r2t ? "yes" : "no", c->params.immediate_data ? "yes" : "no");
	if (!s->discovery)
		events_add(EV_LOGIN, c->params.initiator_name, NULL, "session 0x%04x from %s to %s",
			   s->tsih, c->peer, s->target ? s->target->name : "?");
	return 0;
}

int login_handle(struct iscsi_conn *c)
{
	struct login_state *ls = c->login;
	uint8_t flags = c->bhs[BHS_FLAGS];
	bool transit = flags & LOGIN_T_BIT, cont = flags & LOGIN_C_BIT;
	int csg = (flags >> LOGIN_CSG_SHIFT) & LOGIN_STAGE_MASK, nsg = flags & LOGIN_STAGE_MASK;
	uint32_t dsl = bhs_dsl(c->bhs);
	struct kvbuf out = { 0 };
	struct key_ctx k;
	char *grown;
	int rc = -1, st;

	if (!ls) {
		ls = calloc(1, sizeof(*ls));
		if (!ls)
			return -1;
		c->login = ls;
		ls->stage = -1;
		neg_init(&ls->neg, &c->params, &c->srv->prefs, true);
	}
	/* Gather text (C bit) before answering it. */
	if (ls->text_len + dsl > ISCSI_TEXT_MAX) {
		rc = login_fail(c, ls, LOGIN_INITIATOR_ERROR, "login text larger than 64 KiB");
		goto out;
	}
	grown = realloc(ls->text, ls->text_len + dsl + 1);
	if (!grown)
		goto out;
	ls->text = grown;
	if (conn_recv_data(c, ls->text + ls->text_len, dsl))
		goto out;
	ls->text_len += dsl;

	if (!ls->first_done) {
		ls->first_done = true;
		memcpy(ls->isid, c->bhs + BHS_ISID, BHS_ISID_LEN);
		ls->tsih = get_be16(c->bhs + BHS_TSIH);
		c->cid = get_be16(c->bhs + BHS_CID);
		c->exp_cmdsn = get_be32(c->bhs + BHS_CMDSN);
		c->statsn = get_be32(c->bhs + BHS_EXPSTATSN);
		ls->stage = csg;
		if (c->bhs[BHS_VERSION_MIN] > ISCSI_VERSION) {   /* above what we speak */
			rc = login_fail(c, ls, LOGIN_UNSUPPORTED_VERSION, "unsupported iSCSI version");
			goto out;
		}
	} else if (memcmp(ls->isid, c->bhs + BHS_ISID, BHS_ISID_LEN) ||
		   ls->tsih != get_be16(c->bhs + BHS_TSIH) || c->cid != get_be16(c->bhs + BHS_CID)) {
		rc = login_fail(c, ls, LOGIN_INITIATOR_ERROR, "ISID/TSIH/CID changed during login");
		goto out;
	}
	if ((transit && cont) || csg == STAGE_RESERVED || csg == STAGE_FFP || csg != ls->stage ||
	    (transit && (nsg <= csg || nsg == STAGE_RESERVED))) {
		rc = login_fail(c, ls, LOGIN_INITIATOR_ERROR, "invalid login stage transition");
		goto out;
	}
	if (cont) {
		/* More text follows: acknowledge with an empty response. */
		rc = send_login_rsp(c, ls, (uint8_t)(csg << LOGIN_CSG_SHIFT), 0, NULL);
		goto out_keep;
	}

	k = (struct key_ctx){ .c = c, .ls = ls, .out = &out };
	memset(ls->sk, 0, sizeof(ls->sk));
	rc = kv_parse(ls->text, ls->text_len, on_key, &k);
	if (rc) {
		rc = login_fail(c, ls, ls->neg.status ? ls->neg.status : LOGIN_INITIATOR_ERROR,
				rc == KV_MALFORMED ? "malformed key (empty or longer than 63 bytes)" : ls->neg.err);
		goto out;
	}
	ls->text_len = 0;
	if (out.len > LOGIN_DSL_MAX) {
		/* Only a flood of unknown keys gets here; real initiators send ~20. */
		rc = login_fail(c, ls, LOGIN_INITIATOR_ERROR,
				"login answer would exceed 8 KiB (too many keys)");
		goto out;
	}

	if (!c->params.initiator_name[0]) {
		rc = login_fail(c, ls, LOGIN_MISSING_PARAMETER, "no InitiatorName");
		goto out;
	}
	if (!iscsi_name_valid(c->params.initiator_name)) {
		rc = login_fail(c, ls, LOGIN_INITIATOR_ERROR, "InitiatorName is not a valid iSCSI name");
		goto out;
	}
	if (ls->tsih != 0) {
		rc = login_fail(c, ls, LOGIN_SESSION_DOES_NOT_EXIST,
				"adding connections to a session is not supported");
		goto out;
	}
	if (!c->params.discovery) {
		if (!c->params.target_name[0]) {
			rc = login_fail(c, ls, LOGIN_MISSING_PARAMETER, "no TargetName");
			goto out;
		}
		if (!target_find(c->srv, c->params.target_name)) {
			rc = login_fail(c, ls, LOGIN_NOT_FOUND, "unknown target");
			goto out;
		}
		if (!ls->tpgt_sent) {
			ls->tpgt_sent = true;
			kvbuf_add(&out, "TargetPortalGroupTag", "%u",
				  target_find(c->srv, c->params.target_name)->tpgt);
		}
	}
	if (c->srv->hooks.admit) {
		char msg[240] = "";
		st = c->srv->hooks.admit(c->srv->hooks.ctx, c->params.initiator_name,
					 (const struct sockaddr *)&c->peer_addr, msg, sizeof(msg));
		if (st) {
			rc = login_fail_as(c, ls, (uint16_t)st, msg[0] ? msg : "refused by the daemon",
					   st == LOGIN_AUTHENTICATION_FAILED ? REFUSED_ADDRESS : refusal_of((uint16_t)st));
			goto out;
		}
	}
	if (!c->params.discovery && !ls->routed && c->srv->hooks.route) {
		char addr[ISCSI_ADDR_MAX] = "";
		ls->routed = true;
		st = c->srv->hooks.route(c->srv->hooks.ctx, c->params.initiator_name,
					 (const struct sockaddr *)&c->local, addr, sizeof(addr));
		if (st == LOGIN_TARGET_MOVED_TEMPORARILY && addr[0]) {
			rc = login_redirect(c, ls, addr);
			goto out;
		}
		if (st) {
			rc = login_fail(c, ls, st == LOGIN_TARGET_MOVED_TEMPORARILY ?
					LOGIN_SERVICE_UNAVAILABLE : (uint16_t)st,
					"no gateway of the cluster can serve it now");
			goto out;
		}
	}
	st = security_step(c, ls, &out, csg);
	if (st) {
		char why[200], nb[ISCSI_NAME_MAX];
		snprintf(why, sizeof(why), "authentication failed for %s: %s",
			 log_safe(c->params.initiator_name, nb, sizeof(nb)), ls->neg.err);
		rc = login_fail(c, ls, (uint16_t)st, why);
		goto out;
	}
	if (ls->chap_required && ls->auth != AUTH_DONE)
		transit = false;   /* stay in the security stage until CHAP is done */
	if (out.len > LOGIN_DSL_MAX) {
		rc = login_fail(c, ls, LOGIN_INITIATOR_ERROR,
				"login answer would exceed 8 KiB (too many keys)");
		goto out;
	}
	if (transit && nsg == STAGE_FFP) {
		neg_finish(&ls->neg, &out);
		rc = login_complete(c, ls, &out, csg);
		if (rc == 0)
			login_free(c);
		goto out_keep;
	}
	if (transit)
		ls->stage = nsg;
	rc = send_login_rsp(c, ls, (uint8_t)((transit ? LOGIN_T_BIT : 0) | csg << LOGIN_CSG_SHIFT |
					     (transit ? nsg : 0)), 0, &out);
	goto out_keep;
out:
	if (rc)
		login_free(c);
out_keep:
	kvbuf_free(&out);
	return rc;
}
