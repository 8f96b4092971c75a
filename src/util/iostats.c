/*
 * iostats.c - the data path's I/O counters and a PC's boot timing (see
 * iostats.h).
 */
#include "util/iostats.h"

#include <string.h>
#include <time.h>

#define US 1000LL
#define MS 1000000LL
#define SEC 1000000000LL

const int64_t iostats_lat_bounds_ns[IOSTATS_LAT_BUCKETS] = {
	100 * US, 250 * US, 500 * US, 1 * MS, 2500 * US, 5 * MS, 10 * MS, 25 * MS,
	50 * MS, 100 * MS, 250 * MS, 500 * MS, 1 * SEC, 2500 * MS, 5 * SEC, 10 * SEC,
};

const int64_t boot_bounds_s[BOOT_BUCKETS] = {
	5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 450, 600,
};

#define RLX memory_order_relaxed

int64_t iostats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

enum iostats_kind iostats_kind_of(uint8_t opcode)
{
	switch (opcode) {
	case 0x08: case 0x28: case 0xa8: case 0x88:             /* READ (6/10/12/16) */
		return IOSTATS_READ;
	case 0x0a: case 0x2a: case 0xaa: case 0x8a:             /* WRITE (6/10/12/16) */
	case 0x2e: case 0xae: case 0x8e:                        /* WRITE AND VERIFY */
		return IOSTATS_WRITE;
	default:
		return IOSTATS_OTHER;
	}
}

bool iostats_is_error(uint8_t status, const uint8_t *sense, uint32_t sense_len)
{
	uint8_t key;

	if (status != 0x02 || sense_len < 3)            /* CHECK CONDITION */
		return false;
	/* response code 0x72/0x73: descriptor format, key in byte 1 */
	key = (sense[0] & 0x7f) >= 0x72 ? sense[1] & 0x0f : sense[2] & 0x0f;
	return key == 0x03 || key == 0x04 || key == 0x07;  /* MEDIUM, HARDWARE, DATA PROTECT */
}

/* The bucket of a latency: the first bound it does not exceed. */
static unsigned lat_bucket(int64_t ns)
{
	unsigned i = 0;

	while (i < IOSTATS_LAT_BUCKETS && ns > iostats_lat_bounds_ns[i])
		i++;
	return i;
}

void iostats_cmd_done(struct iostats *st, enum iostats_kind kind, uint64_t bytes,
		      int64_t lat_ns, bool error)
{
	struct iostats_hist *h;

	if (!st)
		return;
	if (error)
		atomic_fetch_add_explicit(&st->errors, 1, RLX);
	if (kind == IOSTATS_OTHER)
		return;
	if (lat_ns < 0)
		lat_ns = 0;
	if (kind == IOSTATS_READ) {
		atomic_fetch_add_explicit(&st->read_cmds, 1, RLX);
		if (!error && bytes)
			atomic_fetch_add_explicit(&st->read_bytes, bytes, RLX);
		h = &st->read_lat;
	} else {
		atomic_fetch_add_explicit(&st->write_cmds, 1, RLX);
		if (!error && bytes)
			atomic_fetch_add_explicit(&st->write_bytes, bytes, RLX);
		h = &st->write_lat;
	}
	atomic_fetch_add_explicit(&h->bucket[lat_bucket(lat_ns)], 1, RLX);
	atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)lat_ns, RLX);
}

void iostats_snapshot(const struct iostats *st, struct iostats_snap *out)
{
	/* the loads take non-const pointers in some libcs */
	struct iostats *s = (struct iostats *)st;

	memset(out, 0, sizeof(*out));
	out->read_bytes = atomic_load_explicit(&s->read_bytes, RLX);
	out->read_cmds = atomic_load_explicit(&s->read_cmds, RLX);
	out->write_bytes = atomic_load_explicit(&s->write_bytes, RLX);
	out->write_cmds = atomic_load_explicit(&s->write_cmds, RLX);
	out->errors = atomic_load_explicit(&s->errors, RLX);
	for (unsigned i = 0; i <= IOSTATS_LAT_BUCKETS; i++) {
		out->read_lat[i] = atomic_load_explicit(&s->read_lat.bucket[i], RLX);
		out->write_lat[i] = atomic_load_explicit(&s->write_lat.bucket[i], RLX);
	}
	out->read_lat_sum_ns = atomic_load_explicit(&s->read_lat.sum_ns, RLX);
	out->write_lat_sum_ns = atomic_load_explicit(&s->write_lat.sum_ns, RLX);
}

/* ---- boots ---------------------------------------------------------------- */

void boot_track_init(struct boot_track *b)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->mu, NULL);
	b->last_ms = -1;
}

void boot_track_destroy(struct boot_track *b)
{
	pthread_mutex_destroy(&b->mu);
}

/* End the open boot; its last READ was at last (0 = none).  b->mu held. */
static void boot_end_locked(struct boot_track *b, int64_t last)
{
	int64_t open = atomic_load_explicit(&b->open_ns, RLX);

	/* A boot that read nothing has no duration: counted, not timed. */
	if (open && last && b->origin_ns && last >= b->origin_ns) {
		if (last > open + BOOT_MAX_NS)
			last = open + BOOT_MAX_NS;
		int64_t ms = (last - b->origin_ns) / MS;
		unsigned i = 0;

		if (ms < 0)
			ms = 0;
		while (i < BOOT_BUCKETS && ms > boot_bounds_s[i] * 1000)
			i++;
		b->hist[i]++;
		b->hist_count++;
		b->hist_sum_ms += ms;
		b->last_ms = ms;
	}
	atomic_store_explicit(&b->open_ns, 0, RLX);
	b->origin_ns = 0;
}

void boot_begin(struct boot_track *b, int64_t now, bool from_script)
{
	pthread_mutex_lock(&b->mu);
	if (atomic_load_explicit(&b->open_ns, RLX)) {
		if (!from_script) {
			pthread_mutex_unlock(&b->mu);
			return;
		}
		boot_end_locked(b, atomic_load_explicit(&b->last_read_ns, RLX));
	}
	b->boots++;
	b->origin_ns = from_script ? now : 0;
	atomic_store_explicit(&b->last_read_ns, 0, RLX);
	atomic_store_explicit(&b->open_ns, now, memory_order_release);
	pthread_mutex_unlock(&b->mu);
}

void boot_note_read(struct boot_track *b, int64_t now)
{
	int64_t prev;

	if (!atomic_load_explicit(&b->open_ns, RLX))
		return;
	prev = atomic_exchange_explicit(&b->last_read_ns, now, RLX);
	if (prev && now - prev < BOOT_SETTLE_NS && b->origin_ns)
		return;
	/* The first READ of a boot, or one after a settle: rare. */
	pthread_mutex_lock(&b->mu);
	if (atomic_load_explicit(&b->open_ns, RLX)) {
		if (prev && now - prev >= BOOT_SETTLE_NS)
			boot_end_locked(b, prev);
		else if (!b->origin_ns)
			b->origin_ns = now;
	}
	pthread_mutex_unlock(&b->mu);
}

void boot_poll(struct boot_track *b, int64_t now, struct boot_snap *out)
{
	int64_t open, last;

	pthread_mutex_lock(&b->mu);
	open = atomic_load_explicit(&b->open_ns, RLX);
	last = atomic_load_explicit(&b->last_read_ns, RLX);
	if (open && ((last && now - last >= BOOT_SETTLE_NS) || now - open >= BOOT_MAX_NS))
		boot_end_locked(b, last);
	if (out) {
		out->boots = b->boots;
		out->last_ms = b->last_ms;
		out->open = atomic_load_explicit(&b->open_ns, RLX) != 0;
		memcpy(out->hist, b->hist, sizeof(out->hist));
		out->hist_count = b->hist_count;
		out->hist_sum_ms = b->hist_sum_ms;
	}
	pthread_mutex_unlock(&b->mu);
}
