/*
 * login.c - the login phase (RFC 7143 section 6 and 11.12/11.13).
 *
 * Stages: SecurityNegotiation (0) -> LoginOperationalNegotiation (1) ->
 * FullFeaturePhase (3).  An initiator may skip stage 0 when no
 * authentication is required.  Text spread over several Login Requests (C
 * bit) is gathered before it is answered; the answer of each stage fits
 * one Login Response (it is a few hundred bytes).
 *
 * What decides the outcome:
 *   - InitiatorName on the first request (0x0207 when missing);
 *   - SessionType=Normal needs a TargetName we serve (0x0207 / 0x0203);
 *   - a TSIH other than 0 names an existing session: we allow one
 *     connection per session, so that is 0x0206 (or 0x020a if unknown);
 *   - the same initiator port (name + ISID) logging in again replaces its
 *     old session once the new login succeeds (session reinstatement);
 *   - AuthMethod must include None (CHAP comes with client configuration).
 */
#include "proto/conn.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LF_T 0x80
#define LF_C 0x40

/* Login state kept on the connection between Login Requests. */
struct login_state {
	int stage;                 /* stage the next request must be in */
	bool first_done;
	uint8_t isid[6];
	uint16_t tsih;
	struct negotiation neg;
	bool auth_none;            /* AuthMethod=None agreed (or never asked) */
	bool tpgt_sent;
	char *text;                /* gathered request text (C bit) */
	size_t text_len;
};


struct key_ctx {
	struct iscsi_conn *c;
	struct login_state *ls;
	struct kvbuf *out;
	int rc;
};

static int security_key(struct key_ctx *k, const char *key, const char *val)
{
	if (strcmp(key, "AuthMethod") == 0) {
		char tmp[ISCSI_VALUE_MAX + 1], *save = NULL, *tok;
		bool none = false;
		if (val) {
			snprintf(tmp, sizeof(tmp), "%s", val);
			for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				if (strcmp(tok, "None") == 0)
					none = true;
		}
		k->ls->auth_none = none;
		if (!none) {
			k->ls->neg.status = 0x0201;
			snprintf(k->ls->neg.err, sizeof(k->ls->neg.err),
				 "no common AuthMethod (offered %.60s)", val ? val : "");
			return -1;
		}
		return kvbuf_add(k->out, "AuthMethod", "None");
	}
	/* CHAP_* without AuthMethod=CHAP, or SendTargets during login. */
	return kvbuf_add(k->out, key, "Irrelevant");
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
 * connection is then closed by the caller.
 */
static int send_login_rsp(struct iscsi_conn *c, struct login_state *ls, uint8_t flags,
			  uint16_t status, const struct kvbuf *kv)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };

	bhs[0] = OP_LOGIN_RSP;
	bhs[1] = status ? 0 : flags;
	bhs[2] = 0;  /* version max */
	bhs[3] = 0;  /* version active */
	memcpy(bhs + 8, c->bhs + 8, 6);   /* ISID */
	put_be16(bhs + 14, status ? 0 : ls->tsih);
	put_be32(bhs + BHS_ITT, get_be32(c->bhs + BHS_ITT));
	put_be32(bhs + BHS_STATSN, c->statsn++);
	put_be32(bhs + BHS_EXPCMDSN, c->exp_cmdsn);
	put_be32(bhs + BHS_MAXCMDSN, status ? c->exp_cmdsn - 1 : conn_max_cmdsn(c));
	bhs[36] = (uint8_t)(status >> 8);
	bhs[37] = (uint8_t)status;
	return conn_send(c, bhs, kv && !status ? kv->buf : NULL, kv && !status ? (uint32_t)kv->len : 0);
}

static int login_fail(struct iscsi_conn *c, struct login_state *ls, uint16_t status, const char *why)
{
	char nb[ISCSI_NAME_MAX];

	log_notice("%s: login refused (0x%04x): %s [initiator %s]", c->peer, status, why,
		   log_safe(c->params.initiator_name[0] ? c->params.initiator_name : "?", nb, sizeof(nb)));
	send_login_rsp(c, ls, 0, status, NULL);
	return -1;
}

void login_free(struct iscsi_conn *c)
{
	if (!c->login)
		return;
	free(c->login->text);
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
		return login_fail(c, ls, 0x0302, "out of memory");
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
	if (s->target && c->srv->hooks.attach) {
		char msg[160] = "";
		int st = c->srv->hooks.attach(c->srv->hooks.ctx, s->target, c->params.initiator_name,
					      &s->scsi, &s->handle, msg, sizeof(msg));
		if (st) {
			free(s);
			return login_fail(c, ls, (uint16_t)st, msg[0] ? msg : "refused by the daemon");
		}
	}
	if (s->target && !s->scsi) {
		if (s->handle && c->srv->hooks.detach)
			c->srv->hooks.detach(c->srv->hooks.ctx, s->handle);
		free(s);
		return login_fail(c, ls, 0x0300, "no LUNs for this initiator");
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
	rc = send_login_rsp(c, ls, (uint8_t)(LF_T | csg << 2 | 3), 0, out);
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
	return 0;
}

int login_handle(struct iscsi_conn *c)
{
	struct login_state *ls = c->login;
	uint8_t flags = c->bhs[1];
	bool transit = flags & LF_T, cont = flags & LF_C;
	int csg = (flags >> 2) & 3, nsg = flags & 3;
	uint32_t dsl = bhs_dsl(c->bhs);
	struct kvbuf out = { 0 };
	struct key_ctx k;
	char *grown;
	int rc = -1;

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
		rc = login_fail(c, ls, 0x0200, "login text larger than 64 KiB");
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
		memcpy(ls->isid, c->bhs + 8, 6);
		ls->tsih = get_be16(c->bhs + 14);
		c->cid = get_be16(c->bhs + 20);
		c->exp_cmdsn = get_be32(c->bhs + BHS_CMDSN);
		c->statsn = get_be32(c->bhs + BHS_EXPSTATSN);
		ls->stage = csg;
		if (c->bhs[3] > 0x00) { /* version-min above what we speak */
			rc = login_fail(c, ls, 0x0205, "unsupported iSCSI version");
			goto out;
		}
	} else if (memcmp(ls->isid, c->bhs + 8, 6) || ls->tsih != get_be16(c->bhs + 14) ||
		   c->cid != get_be16(c->bhs + 20)) {
		rc = login_fail(c, ls, 0x0200, "ISID/TSIH/CID changed during login");
		goto out;
	}
	if ((transit && cont) || csg == 2 || csg == 3 || csg != ls->stage ||
	    (transit && (nsg <= csg || nsg == 2))) {
		rc = login_fail(c, ls, 0x0200, "invalid login stage transition");
		goto out;
	}
	if (cont) {
		/* More text follows: acknowledge with an empty response. */
		rc = send_login_rsp(c, ls, (uint8_t)(csg << 2), 0, NULL);
		goto out_keep;
	}

	k = (struct key_ctx){ .c = c, .ls = ls, .out = &out };
	rc = kv_parse(ls->text, ls->text_len, on_key, &k);
	if (rc) {
		rc = login_fail(c, ls, ls->neg.status ? ls->neg.status : 0x0200,
				rc == KV_MALFORMED ? "malformed key (empty or longer than 63 bytes)" : ls->neg.err);
		goto out;
	}
	ls->text_len = 0;
	if (out.len > LOGIN_DSL_MAX) {
		/* Only a flood of unknown keys gets here; real initiators send ~20. */
		rc = login_fail(c, ls, 0x0200, "login answer would exceed 8 KiB (too many keys)");
		goto out;
	}

	if (!c->params.initiator_name[0]) {
		rc = login_fail(c, ls, 0x0207, "no InitiatorName");
		goto out;
	}
	if (!iscsi_name_valid(c->params.initiator_name)) {
		rc = login_fail(c, ls, 0x0200, "InitiatorName is not a valid iSCSI name");
		goto out;
	}
	if (ls->tsih != 0) {
		rc = login_fail(c, ls, 0x020a, "adding connections to a session is not supported");
		goto out;
	}
	if (!c->params.discovery) {
		if (!c->params.target_name[0]) {
			rc = login_fail(c, ls, 0x0207, "no TargetName");
			goto out;
		}
		if (!target_find(c->srv, c->params.target_name)) {
			rc = login_fail(c, ls, 0x0203, "unknown target");
			goto out;
		}
		if (!ls->tpgt_sent) {
			ls->tpgt_sent = true;
			kvbuf_add(&out, "TargetPortalGroupTag", "%u",
				  target_find(c->srv, c->params.target_name)->tpgt);
		}
	}
	if (transit && nsg == 3) {
		neg_finish(&ls->neg, &out);
		rc = login_complete(c, ls, &out, csg);
		if (rc == 0)
			login_free(c);
		goto out_keep;
	}
	if (transit)
		ls->stage = nsg;
	rc = send_login_rsp(c, ls, (uint8_t)((transit ? LF_T : 0) | csg << 2 | (transit ? nsg : 0)), 0, &out);
	goto out_keep;
out:
	if (rc)
		login_free(c);
out_keep:
	kvbuf_free(&out);
	return rc;
}
