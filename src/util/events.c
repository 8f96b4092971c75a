/*
 * events.c - the console's event log: a ring of the newest EVENTS_MAX
 * events under one mutex (see events.h).
 */
#include "util/events.h"
#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event ev_ring[EVENTS_MAX];
static uint64_t ev_next = 1;     /* seq of the next event */

static const char *const kind_names[EV_KIND_N] = {
	"boot", "login", "logout", "refused", "reset", "image", "client", "wake", "error",
	"console",
};

const char *events_kind_name(enum event_kind k)
{
	return (unsigned)k < EV_KIND_N ? kind_names[k] : "?";
}

/* Copy s (may be NULL) into dst of len bytes, control bytes as '?'. */
static void copy_clean(char *dst, size_t len, const char *s)
{
	size_t i = 0;

	for (; s && s[i] && i + 1 < len; i++)
		dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	dst[i] = '\0';
}

void events_add(enum event_kind kind, const char *client, const char *image,
		const char *fmt, ...)
{
	struct event e;
	struct timespec ts;
	char raw[EVENTS_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	e.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	e.kind = kind;
	copy_clean(e.client, sizeof(e.client), client);
	copy_clean(e.image, sizeof(e.image), image);
	copy_clean(e.text, sizeof(e.text), raw);
	pthread_mutex_lock(&ev_lock);
	e.seq = ev_next++;
	ev_ring[e.seq % EVENTS_MAX] = e;
	pthread_mutex_unlock(&ev_lock);
	log_info("event %s%s%s%s%s: %s", events_kind_name(kind), e.client[0] ? " " : "", e.client,
		 e.image[0] ? " image " : "", e.image, e.text);
}

size_t events_since(uint64_t after, struct event *out, size_t max, uint64_t *last)
{
	uint64_t first, newest;
	size_t n = 0;

	pthread_mutex_lock(&ev_lock);
	newest = ev_next - 1;
	first = newest >= EVENTS_MAX ? newest - EVENTS_MAX + 1 : 1;
	if (after + 1 > first)
		first = after + 1;
	for (uint64_t s = first; s <= newest && n < max; s++)
		out[n++] = ev_ring[s % EVENTS_MAX];
	pthread_mutex_unlock(&ev_lock);
	if (last)
		*last = newest;
	return n;
}

void events_reset(void)
{
	pthread_mutex_lock(&ev_lock);
	ev_next = 1;
	memset(ev_ring, 0, sizeof(ev_ring));
	pthread_mutex_unlock(&ev_lock);
}
