/*
 * rules.c - the rules for a client's fields (see rules.h).
 */
#include "lab/rules.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int rules_chap_name(const char *key, const char *val, char *msg, size_t msglen)
{
	size_t n = strlen(val);

	if (n == 0) {
		snprintf(msg, msglen, "%s: empty", key);
		return -EINVAL;
	}
	if (n >= RULES_CHAP_MAX) {
		snprintf(msg, msglen, "%s: too long (at most %d bytes)", key, RULES_CHAP_MAX - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)val[i] <= 0x20 || (unsigned char)val[i] >= 0x7f) {
			snprintf(msg, msglen, "%s: only visible ASCII characters, no blanks", key);
			return -EINVAL;
		}
	return 0;
}

int rules_chap_secret(const char *key, const char *val, char *msg, size_t msglen)
{
	size_t n = strlen(val);

	if (n < RULES_SECRET_MIN || n >= RULES_CHAP_MAX) {
		snprintf(msg, msglen, "%s: %zu bytes; a CHAP secret must have %d to %d bytes "
			 "(at least 96 bits, RFC 7143 12.1.3)", key, n, RULES_SECRET_MIN, RULES_CHAP_MAX - 1);
		return -EINVAL;
	}
	return 0;
}

/* Count one more problem at key; its message buffer, or a scratch one
 * when out is full (the count goes on). */
static char *problem(struct rules_problem *out, unsigned max, unsigned *n, enum rules_chap_key key,
		     char *scratch)
{
	if (*n >= max) {
		(*n)++;
		return scratch;
	}
	out[*n].key = key;
	return out[(*n)++].msg;
}

unsigned rules_chap_pairs(const bool has[4], const char *secret, const char *msecret,
			  const char *p, struct rules_problem *out, unsigned max)
{
	char scratch[sizeof(out->msg)];
	const size_t len = sizeof(scratch);
	unsigned n = 0;

	if (has[RULES_CHAP_USER] && !has[RULES_CHAP_SECRET])
		snprintf(problem(out, max, &n, RULES_CHAP_USER, scratch), len,
			 "%schap-user needs %schap-secret (a CHAP user always needs a CHAP secret)", p, p);
	if (has[RULES_CHAP_SECRET] && !has[RULES_CHAP_USER])
		snprintf(problem(out, max, &n, RULES_CHAP_SECRET, scratch), len,
			 "%schap-secret needs %schap-user (CHAP settings need the CHAP user name too)", p, p);
	if (has[RULES_MUTUAL_USER] && !has[RULES_MUTUAL_SECRET])
		snprintf(problem(out, max, &n, RULES_MUTUAL_USER, scratch), len,
			 "%smutual-user needs %smutual-secret (mutual CHAP needs both the mutual user "
			 "and the mutual secret)", p, p);
	if (has[RULES_MUTUAL_SECRET] && !has[RULES_MUTUAL_USER])
		snprintf(problem(out, max, &n, RULES_MUTUAL_SECRET, scratch), len,
			 "%smutual-secret needs %smutual-user (mutual CHAP needs both the mutual user "
			 "and the mutual secret)", p, p);
	if ((has[RULES_MUTUAL_USER] || has[RULES_MUTUAL_SECRET]) && !has[RULES_CHAP_USER] &&
	    !has[RULES_CHAP_SECRET])
		snprintf(problem(out, max, &n, has[RULES_MUTUAL_USER] ? RULES_MUTUAL_USER :
				 RULES_MUTUAL_SECRET, scratch), len,
			 "mutual CHAP (%smutual-user, %smutual-secret) needs %schap-user and "
			 "%schap-secret too", p, p, p, p);
	if (secret && msecret && msecret[0] && strcmp(msecret, secret) == 0)
		snprintf(problem(out, max, &n, RULES_MUTUAL_SECRET, scratch), len,
			 "%smutual-secret must differ from %schap-secret", p, p);
	return n;
}

int rules_chap_creds(const char *user, const char *secret, const char *muser, const char *msecret,
		     struct iscsi_chap_creds *out, char *msg, size_t msglen)
{
	bool has[4] = { user != NULL, secret != NULL, muser != NULL, msecret != NULL };
	struct rules_problem pb;
	int rc;

	memset(out, 0, sizeof(*out));
	if (user && !user[0]) {
		if (secret || muser || msecret) {
			snprintf(msg, msglen, "an empty CHAP user turns CHAP off: give no secret with it");
			return -EINVAL;
		}
		return 0;
	}
	if (rules_chap_pairs(has, secret, msecret, "", &pb, 1)) {
		snprintf(msg, msglen, "%s", pb.msg);
		return -EINVAL;
	}
	if (!user)
		return 0;
	if ((rc = rules_chap_name("chap-user", user, msg, msglen)) ||
	    (rc = rules_chap_secret("chap-secret", secret, msg, msglen)) ||
	    (muser && (rc = rules_chap_name("mutual-user", muser, msg, msglen))) ||
	    (msecret && (rc = rules_chap_secret("mutual-secret", msecret, msg, msglen))))
		return rc;
	snprintf(out->user, sizeof(out->user), "%s", user);
	snprintf(out->secret, sizeof(out->secret), "%s", secret);
	if (muser) {
		snprintf(out->muser, sizeof(out->muser), "%s", muser);
		snprintf(out->msecret, sizeof(out->msecret), "%s", msecret);
	}
	return 0;
}

/* val as a message may show it: at most 40 bytes, anything not printable
 * ASCII as '?' (a value may hold control characters). */
static const char *shown(const char *val, char *buf, size_t len)
{
	size_t i;

	for (i = 0; val[i] && i < 40 && i + 1 < len; i++)
		buf[i] = (unsigned char)val[i] < 0x20 || (unsigned char)val[i] >= 0x7f ? '?' : val[i];
	buf[i] = '\0';
	return buf;
}

int rules_mac(const char *val, char out[RULES_MAC_LEN], char *msg, size_t msglen)
{
	char m[RULES_MAC_LEN], buf[48];
	size_t n = strlen(val);

	if (n == 12) {   /* bare hex digits, as iPXE's ${mac:hexraw} gives them */
		for (int i = 0; i < 12; i++) {
			if (!isxdigit((unsigned char)val[i]))
				goto bad;
			m[i / 2 * 3 + i % 2] = (char)tolower((unsigned char)val[i]);
			if (i % 2)
				m[i / 2 * 3 + 2] = i == 11 ? '\0' : ':';
		}
		memcpy(out, m, sizeof(m));
		return 0;
	}
	if (n != 17)
		goto bad;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			/* ':' or '-', the same one throughout: a mix is a typo */
			if ((val[i] != ':' && val[i] != '-') || val[i] != val[2])
				goto bad;
			m[i] = ':';
		} else {
			if (!isxdigit((unsigned char)val[i]))
				goto bad;
			m[i] = (char)tolower((unsigned char)val[i]);
		}
	}
	m[17] = '\0';
	memcpy(out, m, sizeof(m));
	return 0;
bad:
	snprintf(msg, msglen, "mac: '%s' is not a MAC address like 52:54:00:12:34:01",
		 shown(val, buf, sizeof(buf)));
	return -EINVAL;
}

int rules_uuid(const char *val, char out[RULES_UUID_LEN], char *msg, size_t msglen)
{
	char u[RULES_UUID_LEN], buf[48];

	if (strlen(val) != 36)
		goto bad;
	for (unsigned i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? val[i] != '-' : !isxdigit((unsigned char)val[i]))
			goto bad;
		u[i] = (char)tolower((unsigned char)val[i]);
	}
	u[36] = '\0';
	memcpy(out, u, sizeof(u));
	return 0;
bad:
	snprintf(msg, msglen, "uuid: '%s' is not a UUID like 12345678-9abc-def0-1234-56789abcdef0",
		 shown(val, buf, sizeof(buf)));
	return -EINVAL;
}

const char *rules_policy_name(enum client_policy p)
{
	switch (p) {
	case POLICY_PERSISTENT:    return "persistent";
	case POLICY_RESET_ON_BOOT: return "reset-on-boot";
	case POLICY_SCHEDULED:     return "scheduled";
	}
	return "?";
}

int rules_parse_policy(const char *s, enum client_policy *out)
{
	if (strcmp(s, "persistent") == 0)
		*out = POLICY_PERSISTENT;
	else if (strcmp(s, "reset-on-boot") == 0)
		*out = POLICY_RESET_ON_BOOT;
	else if (strcmp(s, "scheduled") == 0)
		*out = POLICY_SCHEDULED;
	else
		return -EINVAL;
	return 0;
}
