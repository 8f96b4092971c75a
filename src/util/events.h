/*
 * events.h - the event log an admin reads in the console: boots, logins
 * refused, resets, commits, errors, wakes.  A fixed ring of the newest
 * EVENTS_MAX events in memory (the daemon's log keeps the full story;
 * this is what the console shows), each numbered by a sequence that only
 * grows, so a reader asks for what is newer than the last it saw.
 *
 * Thread-safe (one mutex; an event is a few hundred bytes copied), never
 * blocks on I/O: callable from any thread, including the data path's
 * error paths.  Every event is also logged at info level.
 */
#ifndef PRISTINE_EVENTS_H
#define PRISTINE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define EVENTS_MAX 512
#define EVENTS_TEXT_MAX 200
#define EVENTS_NAME_MAX 224   /* a client name or an IQN, an image name */

/* What happened; events_kind_name gives the word the API uses. */
enum event_kind {
	EV_BOOT,        /* a PC asked for its boot script or first logged in */
	EV_LOGIN,       /* a session of a PC began */
	EV_LOGOUT,      /* ... ended */
	EV_REFUSED,     /* a login was refused (unknown, CHAP, address, limits) */
	EV_RESET,       /* a PC's overlay was discarded (admin, policy, schedule) */
	EV_IMAGE,       /* an image changed: draft, commit, discard, rollback, flatten... */
	EV_CLIENT,      /* a client was added, removed or changed */
	EV_WAKE,        /* a Wake-on-LAN packet was sent */
	EV_ERROR,       /* an I/O or storage error a PC or an image met */
	EV_CONSOLE,     /* a console login, logout or refused console login */
	EV_KIND_N
};

struct event {
	uint64_t seq;                   /* 1, 2, ... in order of events_add */
	int64_t time_ms;                /* wall clock, ms since the epoch */
	enum event_kind kind;
	char client[EVENTS_NAME_MAX];   /* the PC's name (or IQN), "" = none */
	char image[EVENTS_NAME_MAX];    /* "" = none */
	char text[EVENTS_TEXT_MAX];     /* one line, already safe to show */
};

/* "boot", "login", "logout", "refused", "reset", "image", "client",
 * "wake", "error", "console". */
const char *events_kind_name(enum event_kind k);

/*
 * Add an event.  client and image may be NULL; text is formatted and cut
 * to one line of EVENTS_TEXT_MAX - 1 bytes, control bytes replaced (it may
 * hold wire text).  The oldest event is dropped when the ring is full.
 */
void events_add(enum event_kind kind, const char *client, const char *image,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Copy the events with seq > after, oldest first, into out (at most max);
 * returns how many.  *last (may be NULL) receives the newest seq there
 * is (0 = none yet), so a reader that got fewer than it missed knows.
 */
size_t events_since(uint64_t after, struct event *out, size_t max, uint64_t *last);

/* Forget every event (tests). */
void events_reset(void);

#endif
