/*
 * bootrec.h - recording ONE boot of one PC: which chunks (bootset.h) of
 * its boot disk it reads, in the order it first reads them, from
 * bootrec_start until the boot settles.  The lab keeps one per client and
 * merges what it recorded into the version's boot set (bootset_merge).
 *
 * The data path calls bootrec_note on every read of the PC's boot disk
 * (storage/tap.h); when no recording is on that costs one relaxed atomic
 * load.  While one is on, a read takes the recorder's mutex (one PC's
 * sessions only contend with each other).
 *
 * A recording SETTLES when no chunk it had not seen was read for
 * BOOTREC_SETTLE_NS, and ends at the latest BOOTREC_MAX_NS after it began
 * or when it holds max_chunks chunks (reads after that are not noted):
 * bootrec_due says so; the owner then calls bootrec_finish.
 *
 * A recording is HELD from its start - it does not settle - until
 * bootrec_release: a PC's boot firmware (iPXE) reads a little, then the
 * PC may load its kernel by other means (TFTP, HTTP) for longer than the
 * settle time before its OS logs in and reads the rest.  The owner
 * releases it when a session that is not the firmware's logs in (the OS);
 * a boot whose OS never logs in ends at BOOTREC_MAX_NS.
 *
 * Threading: every call may come from any thread.
 */
#ifndef PRISTINE_BOOTREC_H
#define PRISTINE_BOOTREC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/bootset.h"

#define BOOTREC_SETTLE_NS (10 * 1000000000LL)
#define BOOTREC_MAX_NS (300 * 1000000000LL)

struct bootrec {
	pthread_mutex_t mu;
	_Atomic bool active;
	/* under mu */
	int64_t start_ns, last_new_ns;
	uint64_t disk_size;
	uint32_t max_chunks;
	uint8_t *seen;                /* a bit per chunk of the disk */
	struct bootset_hit *hits;     /* in the order first read */
	uint32_t n, cap;
	unsigned version;             /* the owner's: what the boot reads */
	bool hold;                    /* does not settle until bootrec_release */
};

/* An idle recorder.  bootrec_destroy frees it. */
void bootrec_init(struct bootrec *r);
void bootrec_destroy(struct bootrec *r);
/*
 * Begin recording a boot of version (the owner's label, kept) of a disk
 * of disk_size bytes at now_ns (the monotonic clock, util/iostats.h
 * iostats_now_ns); max_chunks 1..BOOTSET_MAX_CHUNKS_LIMIT.  A recording
 * in progress is dropped first.  0 or -ENOMEM / -EINVAL (then idle).
 */
int bootrec_start(struct bootrec *r, unsigned version, uint64_t disk_size, uint32_t max_chunks,
		  int64_t now_ns);
/* A read of [off, off + len) at now_ns: its chunks not seen yet are
 * appended.  Nothing when idle. */
void bootrec_note(struct bootrec *r, uint64_t off, uint64_t len, int64_t now_ns);
/* The recording on (if any) may settle from now_ns on (see above): the
 * settle time counts from now_ns.  Nothing when idle or released. */
void bootrec_release(struct bootrec *r, int64_t now_ns);
/* Whether a recording is on. */
bool bootrec_active(struct bootrec *r);
/* Whether the recording on should end at now_ns (settled, too long, full);
 * false when idle. */
bool bootrec_due(struct bootrec *r, int64_t now_ns);
/*
 * End the recording: its hits (in order) into *hits (free it), *n of
 * them, its version into *version; idle afterwards.  -ENOENT when idle.
 */
int bootrec_finish(struct bootrec *r, struct bootset_hit **hits, uint32_t *n, unsigned *version);
/* Drop the recording in progress (if any); idle afterwards. */
void bootrec_cancel(struct bootrec *r);

#endif
