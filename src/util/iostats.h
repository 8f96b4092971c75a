/*
 * iostats.h - I/O counters of the data path and boot timing, for
 * GET /v1/stats and Prometheus' /metrics (docs/metrics.md).
 *
 * A struct iostats is a set of cumulative counters: bytes and commands
 * read and written, I/O errors, and latency histograms of reads and
 * writes.  One lives in each client (its PC's traffic, kept across resets
 * and reconnections: it lives with the client, not with its LU) and one in
 * each image (the sum of every PC and the draft on it, kept separately so
 * a removed client's traffic stays counted).  The iSCSI layer adds to them
 * once per command, at its status (iostats_cmd_done): relaxed atomic adds
 * on the counters, no lock, no allocation.  Readers (the stats op) load
 * each counter on its own, so a snapshot may mix a command's bytes with
 * the previous command count: every counter is monotonic, which is all
 * Prometheus and the console's rates need.
 *
 * A struct boot_track times one PC's boots.  A boot begins when the boot
 * endpoint serves the PC its script (boot_begin, from_script) or at a
 * login of a PC that had no session (boot_begin, !from_script: ignored
 * while a boot is already open).  It ends when its reads settle (no READ
 * for BOOT_SETTLE_NS) or BOOT_MAX_NS after it began; its duration runs
 * from the script (or the first READ) to the last READ before the
 * settle.  The data path only stamps its reads (one relaxed exchange);
 * the rare transitions take the tracker's mutex.
 */
#ifndef PRISTINE_IOSTATS_H
#define PRISTINE_IOSTATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Latency buckets (upper bounds, ns): 100 us .. 10 s, then +Inf. */
#define IOSTATS_LAT_BUCKETS 16
extern const int64_t iostats_lat_bounds_ns[IOSTATS_LAT_BUCKETS];

/* Boot duration buckets (upper bounds, s), then +Inf. */
#define BOOT_BUCKETS 13
extern const int64_t boot_bounds_s[BOOT_BUCKETS];

#define BOOT_SETTLE_NS (5 * 1000000000LL)     /* no READ this long: booted */
#define BOOT_MAX_NS (600 * 1000000000LL)      /* a boot ends after 10 minutes */

/* A histogram: counts per bucket (not cumulative; +Inf last), sum in ns. */
struct iostats_hist {
	_Atomic uint64_t bucket[IOSTATS_LAT_BUCKETS + 1];
	_Atomic uint64_t sum_ns;
};

struct iostats {
	_Atomic uint64_t read_bytes, read_cmds, write_bytes, write_cmds, errors;
	struct iostats_hist read_lat, write_lat;
};

/* What one finished command was, for iostats_cmd_done. */
enum iostats_kind {
	IOSTATS_OTHER,                /* neither READ nor WRITE: only its errors count */
	IOSTATS_READ,
	IOSTATS_WRITE,
};

/* A plain copy of a struct iostats (a histogram's buckets not cumulative). */
struct iostats_snap {
	uint64_t read_bytes, read_cmds, write_bytes, write_cmds, errors;
	uint64_t read_lat[IOSTATS_LAT_BUCKETS + 1], write_lat[IOSTATS_LAT_BUCKETS + 1];
	uint64_t read_lat_sum_ns, write_lat_sum_ns;
};

struct boot_track {
	pthread_mutex_t mu;           /* transitions and the fields below _Atomic */
	_Atomic int64_t open_ns;      /* when the open boot began (monotonic), 0 = none */
	_Atomic int64_t last_read_ns; /* the newest READ's time, 0 = none since the boot began */
	_Atomic int64_t origin_ns;    /* the duration's start: script or first READ, 0 = not yet */
	uint64_t boots;               /* boots begun */
	int64_t last_ms;              /* duration of the last boot that ended, -1 = none */
	uint64_t hist[BOOT_BUCKETS + 1];   /* durations, per bucket (+Inf last) */
	uint64_t hist_count;
	int64_t hist_sum_ms;
};

/* A copy of a struct boot_track's results. */
struct boot_snap {
	uint64_t boots;
	int64_t last_ms;              /* -1 = no boot has ended */
	bool open;                    /* a boot is in progress */
	uint64_t hist[BOOT_BUCKETS + 1];
	uint64_t hist_count;
	int64_t hist_sum_ms;
};

/* The monotonic clock in ns (what every time here is measured on). */
int64_t iostats_now_ns(void);

/*
 * The kind of the command whose CDB starts with opcode: READ (6/10/12/16)
 * or WRITE (6/10/12/16, WRITE AND VERIFY 10/12/16), else IOSTATS_OTHER.
 */
enum iostats_kind iostats_kind_of(uint8_t opcode);

/*
 * Is a command that ended with status (SAM) and sense (sense_len bytes,
 * fixed or descriptor format) an I/O error of the store?  Only CHECK
 * CONDITION with MEDIUM ERROR, HARDWARE ERROR or DATA PROTECT (a full
 * overlay, a read-only store); ILLEGAL REQUEST (a bad CDB, an LBA out of
 * range), UNIT ATTENTION, ABORTED COMMAND and the rest are not.
 */
bool iostats_is_error(uint8_t status, const uint8_t *sense, uint32_t sense_len);

/*
 * Count one finished command in st (NULL: nothing): bytes are what it
 * moved (counted only when it succeeded: error false), lat_ns its time
 * from arrival to status.  Lock-free; callable from any thread.
 */
void iostats_cmd_done(struct iostats *st, enum iostats_kind kind, uint64_t bytes,
		      int64_t lat_ns, bool error);

/* A copy of st's counters (each loaded on its own). */
void iostats_snapshot(const struct iostats *st, struct iostats_snap *out);

/* A tracker with no boot yet (mutex made).  boot_track_destroy frees it. */
void boot_track_init(struct boot_track *b);
void boot_track_destroy(struct boot_track *b);

/*
 * A boot of this PC begins at now (ns, monotonic).  from_script: the boot
 * endpoint served its script - a boot still open ends first (at its last
 * READ) and a new one begins, timed from now; else a login of a PC with
 * no session: begins a boot timed from its first READ, unless one is open.
 */
void boot_begin(struct boot_track *b, int64_t now, bool from_script);

/* The data path: this PC's READ finished at now.  Lock-free unless it
 * ends a boot (the previous READ was BOOT_SETTLE_NS ago or more). */
void boot_note_read(struct boot_track *b, int64_t now);

/* End the open boot if it has settled or run out by now; then copy the
 * results into out (may be NULL). */
void boot_poll(struct boot_track *b, int64_t now, struct boot_snap *out);

#endif
