/*
 * text.c - Text Request/Response (RFC 7143 11.10/11.11): SendTargets
 * discovery and full-feature-phase key negotiation.
 *
 * A request may arrive in pieces (C bit); it is gathered up to 64 KiB.  A
 * response longer than the initiator's MaxRecvDataSegmentLength goes out
 * in pieces: each carries C=1 and a target transfer tag, and the initiator
 * fetches the next with an empty Text Request quoting that tag.
 */
#include "proto/conn.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "addr:port,tpgt" of the portal this connection came in on. */
static void portal_string(const struct iscsi_conn *c, uint16_t tpgt, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "0.0.0.0";

	if (c->local.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->local;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u,%u", host, ntohs(s6->sin6_port), tpgt);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->local;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%u,%u", host, ntohs(s4->sin_port), tpgt);
	}
}

static int add_target(struct iscsi_conn *c, struct kvbuf *out, const struct iscsi_target *t)
{
	char portal[INET6_ADDRSTRLEN + 32];

	portal_string(c, t->tpgt, portal, sizeof(portal));
	if (kvbuf_add(out, "TargetName", "%s", t->name) ||
	    kvbuf_add(out, "TargetAddress", "%s", portal))
		return -1;
	return 0;
}

struct text_ctx {
	struct iscsi_conn *c;
	struct negotiation neg;
	struct kvbuf *out;
};

static int text_key(void *ctx, const char *key, const char *val)
{
	struct text_ctx *k = ctx;
	struct iscsi_conn *c = k->c;
	int rc = neg_key(&k->neg, key, val, k->out);

	if (rc != 1)
		return rc < 0 ? -1 : 0;
	if (strcmp(key, "SendTargets") == 0 && val) {
		struct iscsi_server *srv = c->srv;
		bool discovery = c->sess->discovery;
		unsigned nt = __atomic_load_n(&srv->ntargets, __ATOMIC_ACQUIRE);

		if (strcmp(val, "All") == 0) {
			/* All targets in discovery; a normal session sees only its own. */
			for (unsigned i = 0; i < nt; i++)
				if (discovery || srv->targets[i] == c->sess->target)
					if (add_target(c, k->out, srv->targets[i]))
						return -1;
			return 0;
		}
		if (val[0] == '\0') {
			if (!discovery && c->sess->target)
				return add_target(c, k->out, c->sess->target);
			return 0;
		}
		for (unsigned i = 0; i < nt; i++)
			if (strcasecmp(srv->targets[i]->name, val) == 0)
				return add_target(c, k->out, srv->targets[i]);
		return 0;  /* unknown target: an empty answer */
	}
	return kvbuf_add(k->out, key, "%s", val ? "Irrelevant" : "Reject") ? -1 : 0;
}

/* Send the next piece of c->text_out. */
static int text_send_piece(struct iscsi_conn *c, const uint8_t *req)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };
	size_t left = c->text_out.len - c->text_sent;
	uint32_t len = left > c->params.mrdsl_tx ? c->params.mrdsl_tx : (uint32_t)left;
	bool more = len < left;
	int rc;

	bhs[BHS_OPCODE] = OP_TEXT_RSP;
	bhs[BHS_FLAGS] = more ? TEXT_C_BIT : BHS_F_BIT;
	memcpy(bhs + BHS_LUN, req + BHS_LUN, 8);
	put_be32(bhs + BHS_ITT, get_be32(req + BHS_ITT));
	if (more) {
		c->text_ttt = conn_new_ttt(c);
		c->text_itt = get_be32(req + BHS_ITT);
	}
	put_be32(bhs + BHS_TTT, more ? c->text_ttt : ISCSI_TAG_RESERVED);
	rc = conn_send(c, bhs, c->text_out.buf ? c->text_out.buf + c->text_sent : NULL, len);
	c->text_sent += len;
	if (!more) {
		kvbuf_free(&c->text_out);
		c->text_sent = 0;
	}
	return rc;
}

int text_handle(struct iscsi_conn *c)
{
	uint32_t dsl = bhs_dsl(c->bhs), itt = get_be32(c->bhs + BHS_ITT), ttt = get_be32(c->bhs + BHS_TTT);
	bool final = c->bhs[BHS_FLAGS] & BHS_F_BIT, cont = c->bhs[BHS_FLAGS] & TEXT_C_BIT;
	struct text_ctx k;
	char *grown;
	int rc;

	if (!bhs_immediate(c->bhs) && cmd_window_check(c, get_be32(c->bhs + BHS_CMDSN)) < 0)
		return conn_discard_data(c, dsl);
	/* Negotiation may change what the workers' Data-In depends on
	 * (MaxRecvDataSegmentLength): nothing of ours is in flight meanwhile. */
	inflight_drain(c);
	if (final && cont) {
		if (conn_discard_data(c, dsl))
			return -1;
		return conn_reject(c, REJECT_PROTOCOL_ERROR);
	}
	/* The initiator asks for the next piece of a long answer. */
	if (ttt != ISCSI_TAG_RESERVED) {
		if (conn_discard_data(c, dsl))
			return -1;
		if (!c->text_out.len || ttt != c->text_ttt || itt != c->text_itt)
			return conn_reject(c, REJECT_INVALID_FIELD);
		return text_send_piece(c, c->bhs);
	}
	/* A new request abandons any unfetched answer. */
	kvbuf_free(&c->text_out);
	c->text_sent = 0;
	if (c->text_in.len && itt != c->text_in_itt)
		kvbuf_free(&c->text_in);
	if (c->text_in.len + dsl > ISCSI_TEXT_MAX) {
		log_warn("%s: text request larger than 64 KiB, closing", c->peer);
		conn_reject(c, REJECT_PROTOCOL_ERROR);
		return -1;
	}
	grown = realloc(c->text_in.buf, c->text_in.len + dsl + 1);
	if (!grown)
		return -1;
	c->text_in.buf = grown;
	c->text_in.cap = c->text_in.len + dsl + 1;
	if (conn_recv_data(c, c->text_in.buf + c->text_in.len, dsl))
		return -1;
	c->text_in.len += dsl;
	c->text_in_itt = itt;
	if (!final) {
		/* More request text follows: answer with an empty piece. */
		uint8_t bhs[ISCSI_BHS_LEN] = { 0 };
		bhs[BHS_OPCODE] = OP_TEXT_RSP;
		memcpy(bhs + BHS_LUN, c->bhs + BHS_LUN, 8);
		put_be32(bhs + BHS_ITT, itt);
		put_be32(bhs + BHS_TTT, conn_new_ttt(c));
		return conn_send(c, bhs, NULL, 0);
	}
	k.c = c;
	k.out = &c->text_out;
	neg_init(&k.neg, &c->params, &c->srv->prefs, false);
	rc = kv_parse(c->text_in.buf, c->text_in.len, text_key, &k);
	kvbuf_free(&c->text_in);
	if (rc) {
		log_warn("%s: text negotiation failed: %s", c->peer, k.neg.err[0] ? k.neg.err : "answer too long");
		kvbuf_free(&c->text_out);
		return conn_reject(c, REJECT_PROTOCOL_ERROR);
	}
	c->text_sent = 0;
	return text_send_piece(c, c->bhs);
}
