/*
 * console_rate.c - the console's login rate limit: each address may fail
 * CONSOLE_RATE_FAILS times within CONSOLE_RATE_WINDOW_S, then it is
 * refused (429) until the oldest of those failures leaves the window.
 * An attempt counts as a failure from its start (so a burst of parallel
 * attempts cannot slip past the count while the hash is being checked),
 * and a success forgets the address's own failures, no other's.  The
 * table holds CONSOLE_RATE_MAX addresses; when full, the one whose
 * newest failure is oldest goes.  An IPv6 address counts by its /64: one
 * host commonly holds a whole /64, and would otherwise get a fresh count
 * per address.
 */
#include "console/console_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The key peer counts under (out: CONSOLE_ADDR_MAX bytes): an IPv4
 * address as is, an IPv6 one as its /64. */
static void rate_key(const char *peer, char *out)
{
	unsigned char a[16];

	if (strchr(peer, ':') && inet_pton(AF_INET6, peer, a) == 1) {
		memset(a + 8, 0, 8);
		if (inet_ntop(AF_INET6, a, out, CONSOLE_ADDR_MAX)) {
			strncat(out, "/64", CONSOLE_ADDR_MAX - strlen(out) - 1);
			return;
		}
	}
	snprintf(out, CONSOLE_ADDR_MAX, "%s", peer);
}

/* The slot of peer, or NULL. */
static struct console_rate *rate_find(struct console_core *cc, const char *peer)
{
	for (unsigned i = 0; i < CONSOLE_RATE_MAX; i++)
		if (cc->rate[i].peer[0] && strcmp(cc->rate[i].peer, peer) == 0)
			return &cc->rate[i];
	return NULL;
}

/* The newest failure of r. */
static int64_t rate_newest(const struct console_rate *r)
{
	return r->fail_ms[(r->next + CONSOLE_RATE_FAILS - 1) % CONSOLE_RATE_FAILS];
}

/* A slot for peer: a free one, else the stalest. */
static struct console_rate *rate_take(struct console_core *cc, const char *peer, int64_t now_ms)
{
	struct console_rate *r = NULL;

	for (unsigned i = 0; i < CONSOLE_RATE_MAX; i++) {
		struct console_rate *t = &cc->rate[i];
		if (!t->peer[0]) {
			r = t;
			break;
		}
		if (!r || rate_newest(t) < rate_newest(r))
			r = t;
	}
	memset(r, 0, sizeof(*r));
	snprintf(r->peer, sizeof(r->peer), "%s", peer);
	/* An empty ring: "failures" long before the window. */
	for (unsigned i = 0; i < CONSOLE_RATE_FAILS; i++)
		r->fail_ms[i] = now_ms - (int64_t)CONSOLE_RATE_WINDOW_S * 1000 - 1;
	return r;
}

int console_rate_attempt(struct console_core *cc, const char *peer, int64_t now_ms,
			 unsigned *retry_s, bool *first_refusal)
{
	char key[CONSOLE_ADDR_MAX];
	struct console_rate *r;
	int64_t oldest, left;

	rate_key(peer, key);
	r = rate_find(cc, key);
	if (!r)
		r = rate_take(cc, key, now_ms);
	/* The ring's next slot holds the oldest of the last FAILS failures. */
	oldest = r->fail_ms[r->next];
	left = oldest + (int64_t)CONSOLE_RATE_WINDOW_S * 1000 - now_ms;
	if (left > 0) {
		*retry_s = (unsigned)((left + 999) / 1000);
		*first_refusal = !r->logged;
		r->logged = true;
		return -EAGAIN;
	}
	r->logged = false;
	r->fail_ms[r->next] = now_ms;
	r->next = (r->next + 1) % CONSOLE_RATE_FAILS;
	return 0;
}

void console_rate_clear(struct console_core *cc, const char *peer)
{
	char key[CONSOLE_ADDR_MAX];
	struct console_rate *r;

	rate_key(peer, key);
	r = rate_find(cc, key);

	if (r)
		memset(r, 0, sizeof(*r));
}
