/*
 * console_session.c - the console's logins: the session cookie read out
 * of a Cookie header, tokens (256 random bits as hex, from libsodium's
 * CSPRNG, compared in constant time), and the table of live sessions
 * with their idle, absolute and password-change expiry (console_int.h).
 */
#include "console/console_int.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

int console_cookie_next(const char *header, const char *name, size_t *from, char *out,
			size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p;

	if (!header || *from > strlen(header))
		return -ENOENT;
	p = header + *from;
	while (*p) {
		const char *end, *v;
		size_t vlen;

		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (!end)
			end = p + strlen(p);
		*from = (size_t)(end - header);
		if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			v = p + nlen + 1;
			vlen = (size_t)(end - v);
			while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
				v++;
				vlen -= 2;
			}
			if (vlen >= outlen)
				return -EINVAL;
			for (size_t i = 0; i < vlen; i++)
				if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f ||
				    v[i] == '"' || v[i] == ',' || v[i] == '\\')
					return -EINVAL;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = end;
	}
	return -ENOENT;
}

bool console_token_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == CONSOLE_TOKEN_HEX;
}

void console_token_make(char *out)
{
	unsigned char raw[CONSOLE_TOKEN_BYTES];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, CONSOLE_TOKEN_HEX + 1, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
}

bool console_token_equal(const char *a, const char *b)
{
	return sodium_memcmp(a, b, CONSOLE_TOKEN_HEX) == 0;
}

void console_session_end(struct console_session *s)
{
	sodium_memzero(s, sizeof(*s));
}

struct console_session *console_session_new(struct console_core *cc, const char *peer,
					    int64_t now_ms)
{
	struct console_session *s = NULL;

	for (unsigned i = 0; i < CONSOLE_SESSIONS_MAX; i++) {
		struct console_session *t = &cc->sessions[i];
		if (!t->live) {
			s = t;
			break;
		}
		if (!s || t->used_ms < s->used_ms)
			s = t;
	}
	console_session_end(s);
	s->live = true;
	console_token_make(s->token);
	console_token_make(s->csrf);
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	s->begun_ms = s->used_ms = now_ms;
	s->generation = cc->auth.generation ? cc->auth.generation(cc->auth.ctx) : 0;
	return s;
}

/* Has s expired at now_ms? */
static bool session_expired(const struct console_core *cc, const struct console_session *s,
			    int64_t now_ms)
{
	if (now_ms - s->used_ms >= (int64_t)cc->idle_s * 1000)
		return true;
	if (now_ms - s->begun_ms >= (int64_t)cc->absolute_s * 1000)
		return true;
	return cc->auth.generation && cc->auth.generation(cc->auth.ctx) != s->generation;
}

struct console_session *console_session_find(struct console_core *cc, const char *token,
					     int64_t now_ms, bool *expired)
{
	struct console_session *found = NULL;

	if (expired)
		*expired = false;
	if (!console_token_valid(token))
		return NULL;
	/* Every slot is compared, in constant time: the time taken says
	 * nothing about which token is close. */
	for (unsigned i = 0; i < CONSOLE_SESSIONS_MAX; i++) {
		struct console_session *s = &cc->sessions[i];
		if (s->live && console_token_equal(s->token, token))
			found = s;
	}
	if (found && session_expired(cc, found, now_ms)) {
		console_session_end(found);
		if (expired)
			*expired = true;
		return NULL;
	}
	return found;
}
