/*
 * tap.h - a backend in front of a PC's LU that passes every call through
 * to the backend behind it and watches its reads for warm boots
 * (issue 18): each read (read or splice_read) is noted in the PC's boot
 * recorder (bootrec.h; nothing while it records nothing), and a read
 * while the recorder is idle (a PC that is not booting) tells the
 * prefetcher to yield (prefetch.h).
 *
 * Cost on the data path: one monotonic clock read, two relaxed atomic
 * loads (the recorder's state, the prefetcher's stamp) and at most once a
 * millisecond a store of the stamp, per read when nothing is recorded.
 *
 * The tap does not own inner: closing the tap frees only the tap.  rec
 * and pf are borrowed and must outlive it (either may be NULL: nothing
 * recorded / nobody told).  write, flush, unmap and block_status are
 * inner's as they are (NULL where inner's are NULL); size, read_only and
 * name are inner's.
 */
#ifndef PRISTINE_TAP_H
#define PRISTINE_TAP_H

#include "storage/backend.h"

struct bootrec;
struct prefetcher;

/* 0 and *out (backend_close it before inner), or -ENOMEM. */
int backend_tap_wrap(struct backend *inner, struct bootrec *rec, struct prefetcher *pf,
		     struct backend **out);

#endif
