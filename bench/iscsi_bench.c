/*
 * iscsi_bench.c - an iSCSI load generator for `make bench`: drives one LUN
 * of one target with libiscsi's asynchronous API and PRINTS NUMBERS
 * (IOPS, MiB/s, latency mean/p50/p99).  It never passes or fails on a
 * number; it exits non-zero only when it cannot do the I/O at all.
 *
 *   iscsi_bench -p HOST:PORT -T TARGET-IQN -w WORKLOAD [options]
 *
 * Workloads (-w):
 *   randread   random reads, uniform over the region (default 4 KiB, QD32)
 *   randwrite  random writes: a fixed pseudo-random permutation of the
 *              region's blocks, so a count-bounded run touches each block
 *              at most once and a second run with the same seed overwrites
 *              exactly the same blocks (default 4 KiB, QD32)
 *   seqread    sequential reads, wrapping at the region's end (1 MiB, QD8)
 *   seqwrite   sequential writes, wrapping likewise (1 MiB, QD8)
 *   boot       -N sessions (default 16) each read the same "boot set": the
 *              region (default 64 MiB) cut into extents of mixed sizes
 *              (4 KiB .. 1 MiB) read in one shuffled order, the same for
 *              every session, QD4 each, all starting at once.  Prints the
 *              aggregate throughput and each session's completion time
 *              (p50/p99/max).  Session i logs in as INITIATOR-i, so behind
 *              pristined every session has its own overlay.
 *   boot -G LUN:MIB   (a PC with a game disk) each session also reads the
 *              first MIB MiB of logical unit LUN, its "game", in the same
 *              iSCSI session as its boot set (one session, two LUNs, as a
 *              PC's initiator does): extents of 64 KiB .. 1 MiB (the
 *              files a game loads) in one shuffled order, the same for
 *              every session, -Q QD of them in flight beside the boot
 *              set's -q.  The game reads start with the boot set (all at
 *              once: the most the game can cost the boot) or, with -A,
 *              each session's once its own boot set is done.  Prints,
 *              besides the aggregate over both disks, each session's
 *              boot-set time (p50/p99/max) - what the game costs the
 *              boot - and its time for both.
 *   boot -S SPAN_MIB   (a boot set scattered over a big disk) the same
 *              extents, but placed at pseudo-random, non-overlapping,
 *              4 KiB-aligned offsets across SPAN_MIB MiB from the region
 *              start (-o), in address order as cut, with random gaps
 *              between them; the same placement and the same shuffled
 *              read order for every session (and every run with the same
 *              -s), so a boot set learned by one storm is what the next
 *              storm reads.  Without -S the extents tile the region.
 *
 * Options:
 *   -b BYTES   I/O size (multiple of the LU block size)
 *   -q QD      commands in flight per session
 *   -t SECS    stop issuing after this long (default 10; 0 = no limit)
 *   -n COUNT   stop after this many I/Os per session (default: no limit;
 *              a run needs -t or -n, and boot runs once through its set)
 *   -o MIB     region start (default 0)    -r MIB  region length (default:
 *              the rest of the LU; boot: 64)
 *   -N N       sessions (boot only; 1..256)
 *   -G LUN:MIB the game disk (boot only; see above)
 *   -Q QD      game reads in flight per session (default 4; -q + -Q <= 256)
 *   -A         game reads start after the session's boot set (default: with it)
 *   -S MIB     scatter the boot set over MIB MiB (boot only; >= -r; see above)
 *   -W SECS    before the run, each session reads one block (the region's
 *              first) and then stays idle SECS seconds: a PC that booted
 *              long ago (the target's boot timing has seen its reads
 *              settle) when the measured run starts
 *   -I IQN     initiator name (default iqn.2026-11.org.pristine.bench:client)
 *   -l LUN     logical unit to drive (default 0; tgt's disk is LUN 1, its
 *              LUN 0 being the controller tgt always creates)
 *   -s SEED    seed of the pseudo-random sequences (default 1)
 *   -L LABEL   label printed in the RESULT line
 *   -P         writes: every 512-byte sector written holds its own byte
 *              offset and the seed (then a fixed filler), so what a block
 *              contains depends only on the last run that wrote it, not on
 *              which command slot happened to write it (bench/versions.sh
 *              builds the same content as ten layers and as one)
 *
 * Output: a human-readable summary, then one line
 *   RESULT label=.. workload=.. key=value ...
 * for bench/run.sh (boot: client_cpu_s= is this program's own CPU time,
 * logins included).  Latency is per command, from submission to the
 * callback; completion times in boot mode are from the common start.
 *
 * Build: see the "# benchmarks" section of the Makefile (links -liscsi).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/resource.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define MAX_SESSIONS 256
#define MAX_QD 256
#define DRAIN_LIMIT_S 60.0   /* commands still in flight this long after the end: give up */
#define BOOT_LIMIT_S 600.0   /* issue window of runs without -t */
#define LOGIN_TRIES 10       /* logins tried per session before giving up */

enum workload { W_RANDREAD, W_RANDWRITE, W_SEQREAD, W_SEQWRITE, W_BOOT };

/* Latency histogram: exact below 64 ns, then 64 sub-buckets per power of
 * two (worst-case error under 1.6%). */
#define HIST_SUB 64
#define HIST_BUCKETS (HIST_SUB * 60)

struct hist {
	uint64_t n[HIST_BUCKETS];
	uint64_t count;
	double sum_ns;
};

struct extent {
	uint64_t off;                  /* bytes from the region start */
	uint32_t len;
};

struct session;

/* One command slot; a session has qd of them, then gqd game slots. */
struct slot {
	struct session *s;
	uint64_t t0;                   /* submission time, ns */
	struct scsi_iovec iov;
	uint8_t *buf;
	bool busy;
	bool game;                     /* reads the game disk (-G) */
};

struct session {
	struct bench *b;
	struct iscsi_context *iscsi;
	unsigned id;
	unsigned inflight;
	uint64_t issued, completed;
	uint64_t seq_pos;              /* next block index (seq), perm index (randwrite), extent (boot) */
	uint64_t rnd;
	uint64_t t_done;               /* ns, boot: when its last command completed */
	bool stop;                     /* issue nothing more (the boot set's slots) */
	/* -G: the game slots' own count, position, stop; when the boot set's
	 * last command completed (t_done is the session's last, both disks) */
	unsigned g_inflight;
	uint64_t g_pos;
	bool g_stop;
	uint64_t t_boot;
	struct slot slots[MAX_QD];
};

struct bench {
	enum workload w;
	const char *portal, *target, *initiator, *label;
	uint32_t bs;                   /* I/O size, bytes */
	unsigned qd, nsess;
	double secs;
	uint64_t count;                /* per session; 0 = unlimited */
	uint64_t region_off, region_len; /* bytes; region_len 0 = to the end */
	uint64_t span;                 /* boot -S: bytes the set is scattered over, 0 = not */
	unsigned idle;                 /* -W: seconds idle after one read, before the run */
	uint64_t seed;
	int lun;                       /* -l */
	bool stamp;                    /* -P */
	uint32_t lbsize;               /* LU logical block size */
	uint64_t lu_bytes;
	uint64_t nblocks;              /* region_len / bs (I/O-sized blocks) */
	uint32_t *perm;                /* randwrite: permutation of nblocks */
	struct extent *ext;            /* boot: the boot set */
	size_t next;
	uint64_t t_start, t_stop_issue;
	uint64_t bytes;
	struct hist lat;
	struct session *sess[MAX_SESSIONS];
	int failed;                    /* a command failed: stop everything */
	unsigned login_retries;        /* logins tried again (LOGIN_TRIES) */
	/* -G: the game disk */
	bool game;
	int game_lun;
	unsigned gqd;                  /* -Q */
	bool game_after;               /* -A */
	uint64_t game_len;             /* bytes read from its start */
	uint32_t game_lbsize;
	uint64_t game_lu_bytes;
	struct extent *gext;
	size_t gnext;
	uint64_t boot_bytes, game_bytes;
	struct hist glat;              /* game commands' latency (lat: the boot set's) */
	char game_result[400];         /* its RESULT fields (report_game) */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("iscsi_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* xorshift64: the pseudo-random sequence; *s must not be 0. */
static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Histogram bucket of a value in ns (see struct hist). */
static unsigned hist_idx(uint64_t v)
{
	unsigned msb, idx;

	if (v < HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	idx = (msb - 5u) * HIST_SUB + (unsigned)((v >> (msb - 6u)) & (HIST_SUB - 1));
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Lower bound in ns of bucket i (the inverse of hist_idx). */
static uint64_t hist_val(unsigned i)
{
	unsigned msb;

	if (i < HIST_SUB)
		return i;
	msb = i / HIST_SUB + 5u;
	return (1ull << msb) | ((uint64_t)(i % HIST_SUB) << (msb - 6u));
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->n[hist_idx(v)]++;
	h->count++;
	h->sum_ns += (double)v;
}

/* The value at quantile q (0..1) in ns; 0 for an empty histogram. */
static uint64_t hist_q(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->count), seen = 0;

	if (!h->count)
		return 0;
	if (want >= h->count)
		want = h->count - 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen > want)
			return hist_val(i);
	}
	return hist_val(HIST_BUCKETS - 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * region bytes cut into extents whose sizes are drawn from sizes[0..nsizes),
 * in one shuffled order (seed s, not 0).  Stores a new array (the caller
 * frees it) in *out and returns the number of extents.
 */
static size_t make_extents(uint64_t region, const uint32_t *sizes, size_t nsizes, uint64_t s,
			   struct extent **out)
{
	size_t n = 0, cap = (size_t)(region / 4096) + 1;
	uint64_t off = 0;
	struct extent *ext = calloc(cap, sizeof(*ext));

	if (!ext)
		die("out of memory");
	while (off < region && n < cap) {
		uint64_t len = sizes[rnd_next(&s) % nsizes];

		if (len > region - off)
			len = region - off;
		ext[n].off = off;
		ext[n].len = (uint32_t)len;
		off += len;
		n++;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(rnd_next(&s) % (i + 1));
		struct extent t = ext[i];

		ext[i] = ext[j];
		ext[j] = t;
	}
	*out = ext;
	return n;
}

/*
 * The boot set: region_len bytes cut into extents of mixed sizes (mostly
 * small, like the files and metadata an OS reads while booting), in one
 * shuffled order.  Sets b->ext and returns the number of extents.
 */
static size_t make_boot_set(struct bench *b)
{
	static const uint32_t sizes[] = {
		4096, 4096, 4096, 4096, 4096, 4096, 16384, 16384, 16384, 16384,
		32768, 32768, 32768, 65536, 65536, 65536, 131072, 131072, 262144, 1048576,
	};

	return make_extents(b->region_len, sizes, sizeof(sizes) / sizeof(sizes[0]),
			    b->seed * 0x9e3779b97f4a7c15ull | 1, &b->ext);
}

/*
 * -S: spread the boot set's n extents (which tile [0, region_len), in a
 * shuffled order) over [0, span): each keeps its length and its place in
 * the read order, and moves up by a gap total that grows with its
 * address, so they stay in address order and never overlap.  The gaps:
 * n sorted pseudo-random cut points in [0, span - region_len], in 4 KiB
 * units (so offsets stay 4 KiB-aligned).  Same seed, same placement.
 */
static void scatter_boot_set(struct bench *b, size_t n)
{
	uint64_t s = b->seed * 0x94d049bb133111ebull | 1;
	uint64_t slack = (b->span - b->region_len) / 4096;
	size_t *byaddr = malloc(n * sizeof(*byaddr));
	uint64_t *cut = malloc(n * sizeof(*cut));

	if (!byaddr || !cut)
		die("out of memory");
	/* Before the move, extent offsets are distinct multiples of 4 KiB
	 * below region_len: index them by address with a bucket per 4 KiB. */
	size_t nb = (size_t)(b->region_len / 4096);
	size_t *at = malloc(nb * sizeof(*at));

	if (!at)
		die("out of memory");
	for (size_t i = 0; i < nb; i++)
		at[i] = SIZE_MAX;
	for (size_t i = 0; i < n; i++)
		at[b->ext[i].off / 4096] = i;
	size_t k = 0;
	for (size_t i = 0; i < nb; i++)
		if (at[i] != SIZE_MAX)
			byaddr[k++] = at[i];
	for (size_t i = 0; i < n; i++)
		cut[i] = slack ? rnd_next(&s) % (slack + 1) : 0;
	qsort(cut, n, sizeof(*cut), cmp_u64);
	for (size_t i = 0; i < k; i++)
		b->ext[byaddr[i]].off += cut[i] * 4096;
	free(at);
	free(cut);
	free(byaddr);
}

/*
 * The game (-G): game_len bytes in extents of 64 KiB .. 1 MiB (a game's
 * levels, textures, sounds read file by file), one shuffled order.  Sets
 * b->gext and returns the number of extents.
 */
static size_t make_game_set(struct bench *b)
{
	static const uint32_t sizes[] = {
		65536, 131072, 131072, 262144, 262144, 524288, 524288, 1048576, 1048576, 1048576,
	};

	return make_extents(b->game_len, sizes, sizeof(sizes) / sizeof(sizes[0]),
			    b->seed * 0xd1b54a32d192ed03ull | 1, &b->gext);
}

/* randwrite: a permutation of the region's nblocks I/O-sized blocks. */
static void make_perm(struct bench *b)
{
	uint64_t s = b->seed * 0x2545f4914f6cdd1dull | 1;

	if (b->nblocks > UINT32_MAX)
		die("region too large for randwrite");
	b->perm = malloc(b->nblocks * sizeof(*b->perm));
	if (!b->perm)
		die("out of memory");
	for (uint64_t i = 0; i < b->nblocks; i++)
		b->perm[i] = (uint32_t)i;
	for (uint64_t i = b->nblocks - 1; i > 0; i--) {
		uint64_t j = rnd_next(&s) % (i + 1);
		uint32_t t = b->perm[i];

		b->perm[i] = b->perm[j];
		b->perm[j] = t;
	}
}

static void submit(struct session *s, struct slot *sl);

/* Command completion: account, then refill the slot unless stopping. */
static void done_cb(struct iscsi_context *iscsi, int status, void *command_data, void *priv)
{
	struct slot *sl = priv;
	struct session *s = sl->s;
	struct bench *b = s->b;
	struct scsi_task *task = command_data;
	uint64_t t = now_ns();

	if (status != SCSI_STATUS_GOOD) {
		fprintf(stderr, "iscsi_bench: session %u: %s command failed, status 0x%x: %s\n",
			s->id, sl->game ? "game" : "boot", status, iscsi_get_error(iscsi));
		b->failed = 1;
	} else {
		hist_add(sl->game ? &b->glat : &b->lat, t - sl->t0);
		b->bytes += sl->iov.iov_len;
		*(sl->game ? &b->game_bytes : &b->boot_bytes) += sl->iov.iov_len;
	}
	if (task)
		scsi_free_scsi_task(task);
	sl->busy = false;
	s->inflight--;
	if (sl->game)
		s->g_inflight--;
	s->completed++;
	if (!(sl->game ? s->g_stop : s->stop) && !b->failed)
		submit(s, sl);
	if (!sl->game && s->inflight - s->g_inflight == 0 && (s->stop || b->failed) && !s->t_boot) {
		s->t_boot = t;
		/* -A: this PC's game starts now that it has booted. */
		if (b->game && b->game_after && !b->failed)
			for (unsigned i = b->qd; i < b->qd + b->gqd; i++)
				submit(s, &s->slots[i]);
	}
	if (s->inflight == 0 && ((s->stop && (!b->game || s->g_stop)) || b->failed))
		s->t_done = t;
}

/*
 * Issue the session's next command on slot sl, or mark the session
 * stopped when its budget (time, count, boot set) is used up.
 */
static void submit(struct session *s, struct slot *sl)
{
	struct bench *b = s->b;
	uint64_t off, len = b->bs, t = now_ns();
	struct scsi_task *task;
	bool write = b->w == W_RANDWRITE || b->w == W_SEQWRITE;

	if (sl->game) {
		if (s->g_pos >= b->gnext || (b->t_stop_issue && t >= b->t_stop_issue)) {
			s->g_stop = true;
			return;
		}
		off = b->gext[s->g_pos].off;
		len = b->gext[s->g_pos].len;
		s->g_pos++;
		sl->iov.iov_base = sl->buf;
		sl->iov.iov_len = len;
		sl->t0 = t;
		task = iscsi_read16_iov_task(s->iscsi, b->game_lun, off / b->game_lbsize, (uint32_t)len,
					     (int)b->game_lbsize, 0, 0, 0, 0, 0, done_cb, sl, &sl->iov, 1);
		if (!task) {
			fprintf(stderr, "iscsi_bench: session %u: cannot queue: %s\n", s->id,
				iscsi_get_error(s->iscsi));
			b->failed = 1;
			s->g_stop = true;
			return;
		}
		sl->busy = true;
		s->inflight++;
		s->g_inflight++;
		return;
	}
	if ((b->count && s->issued >= b->count) || (b->t_stop_issue && t >= b->t_stop_issue)) {
		s->stop = true;
		return;
	}
	switch (b->w) {
	case W_RANDREAD:
		off = (rnd_next(&s->rnd) % b->nblocks) * b->bs;
		break;
	case W_RANDWRITE:
		off = (uint64_t)b->perm[s->seq_pos++ % b->nblocks] * b->bs;
		break;
	case W_SEQREAD:
	case W_SEQWRITE:
		off = (s->seq_pos++ % b->nblocks) * b->bs;
		break;
	case W_BOOT:
	default:
		if (s->seq_pos >= b->next) {
			s->stop = true;
			return;
		}
		off = b->ext[s->seq_pos].off;
		len = b->ext[s->seq_pos].len;
		s->seq_pos++;
		break;
	}
	off += b->region_off;
	if (write && b->stamp)
		for (uint64_t i = 0; i < len; i += 512) {
			uint64_t v[2] = { off + i, b->seed };

			memcpy(sl->buf + i, v, sizeof(v));
			memset(sl->buf + i + sizeof(v), 0x5a, 512 - sizeof(v));
		}
	sl->iov.iov_base = sl->buf;
	sl->iov.iov_len = len;
	sl->t0 = t;
	if (write)
		task = iscsi_write16_task(s->iscsi, b->lun, off / b->lbsize, sl->buf, (uint32_t)len,
					  (int)b->lbsize, 0, 0, 0, 0, 0, done_cb, sl);
	else
		task = iscsi_read16_iov_task(s->iscsi, b->lun, off / b->lbsize, (uint32_t)len,
					     (int)b->lbsize, 0, 0, 0, 0, 0, done_cb, sl, &sl->iov, 1);
	if (!task) {
		fprintf(stderr, "iscsi_bench: session %u: cannot queue: %s\n", s->id,
			iscsi_get_error(s->iscsi));
		b->failed = 1;
		s->stop = true;
		return;
	}
	sl->busy = true;
	s->inflight++;
	s->issued++;
}

/*
 * READ CAPACITY(16) of lun on s's session: its block size and size in
 * bytes into *lbsize and *bytes.  Tried a few times (a unit attention may
 * answer first); dies when it gets no good answer.
 */
static void read_capacity(struct session *s, int lun, uint32_t *lbsize, uint64_t *bytes)
{
	struct scsi_task *task = NULL;
	struct scsi_readcapacity16 *rc16;

	for (int tries = 0; tries < 5; tries++) {
		task = iscsi_readcapacity16_sync(s->iscsi, lun);
		if (task && task->status == SCSI_STATUS_GOOD)
			break;
		if (task)
			scsi_free_scsi_task(task);
		task = NULL;
	}
	if (!task)
		die("READ CAPACITY(16) of LUN %d: %s", lun, iscsi_get_error(s->iscsi));
	rc16 = scsi_datain_unmarshall(task);
	if (!rc16 || !rc16->block_length)
		die("READ CAPACITY(16) of LUN %d: bad answer", lun);
	*lbsize = rc16->block_length;
	*bytes = (rc16->returned_lba + 1) * rc16->block_length;
	scsi_free_scsi_task(task);
}

/*
 * Log in as initiator, read the LU's geometry (and the game LU's, -G)
 * into b (first session), give the session its qd (+ gqd) slots.
 */
static struct session *session_open(struct bench *b, unsigned id, const char *initiator)
{
	struct session *s = calloc(1, sizeof(*s));
	size_t maxlen = b->w == W_BOOT ? 1048576 : b->bs;
	uint32_t lbsize;
	uint64_t bytes;

	if (!s)
		die("out of memory");
	s->b = b;
	s->id = id;
	s->rnd = (b->seed + id) * 0x9e3779b97f4a7c15ull | 1;
	/* A login that a cluster's gateway redirects (status 0x0101) can lose
	 * a race in libiscsi's synchronous connect with the first gateway
	 * closing the connection: a few fresh tries, each counted. */
	for (int tries = 1;; tries++) {
		s->iscsi = iscsi_create_context(initiator);
		if (!s->iscsi)
			die("cannot create an iSCSI context");
		iscsi_set_targetname(s->iscsi, b->target);
		iscsi_set_session_type(s->iscsi, ISCSI_SESSION_NORMAL);
		iscsi_set_header_digest(s->iscsi, ISCSI_HEADER_DIGEST_NONE);
		if (!iscsi_full_connect_sync(s->iscsi, b->portal, 0))
			break;
		if (tries == LOGIN_TRIES)
			die("login to %s at %s as %s: %s", b->target, b->portal, initiator,
			    iscsi_get_error(s->iscsi));
		iscsi_destroy_context(s->iscsi);
		b->login_retries++;
		usleep(100000);
	}
	/* A unit attention (power on, reset) may answer the first commands. */
	read_capacity(s, b->lun, &lbsize, &bytes);
	if (id == 0) {
		b->lbsize = lbsize;
		b->lu_bytes = bytes;
	}
	if (b->game) {
		read_capacity(s, b->game_lun, &lbsize, &bytes);
		if (id == 0) {
			b->game_lbsize = lbsize;
			b->game_lu_bytes = bytes;
		}
	}
	for (unsigned i = 0; i < b->qd + b->gqd; i++) {
		s->slots[i].s = s;
		s->slots[i].game = i >= b->qd;
		s->slots[i].buf = aligned_alloc(4096, (maxlen + 4095) & ~(size_t)4095);
		if (!s->slots[i].buf)
			die("out of memory");
		/* Written data differs from the image's and between slots. */
		memset(s->slots[i].buf, 0xa5 ^ (int)(i + 1), maxlen);
	}
	return s;
}

static void session_close(struct session *s)
{
	iscsi_logout_sync(s->iscsi);
	iscsi_destroy_context(s->iscsi);
	for (unsigned i = 0; i < s->b->qd + s->b->gqd; i++)
		free(s->slots[i].buf);
	free(s);
}

/*
 * -W: every session reads the region's first block (synchronously), then
 * all stay idle b->idle seconds, so the target sees PCs that booted
 * before.  Dies when a read fails.
 */
static void idle_first(struct bench *b)
{
	for (unsigned i = 0; i < b->nsess; i++) {
		struct scsi_task *task = iscsi_read16_sync(b->sess[i]->iscsi, b->lun,
							   b->region_off / b->lbsize, b->lbsize,
							   (int)b->lbsize, 0, 0, 0, 0, 0);

		if (!task || task->status != SCSI_STATUS_GOOD)
			die("session %u: the read before the idle wait failed: %s", i,
			    iscsi_get_error(b->sess[i]->iscsi));
		scsi_free_scsi_task(task);
	}
	sleep(b->idle);
}

/*
 * Run every session until each has stopped issuing and drained, polling
 * all their sockets.  Bounded: gives up DRAIN_LIMIT_S after the end of the
 * issue window.
 */
static void run(struct bench *b)
{
	struct pollfd pfd[MAX_SESSIONS];
	uint64_t limit;

	b->t_start = now_ns();
	if (b->secs > 0)
		b->t_stop_issue = b->t_start + (uint64_t)(b->secs * 1e9);
	/* Count-bounded and boot runs get BOOT_LIMIT_S to finish. */
	limit = (b->t_stop_issue ? b->t_stop_issue : b->t_start + (uint64_t)(BOOT_LIMIT_S * 1e9)) +
		(uint64_t)(DRAIN_LIMIT_S * 1e9);
	for (unsigned i = 0; i < b->nsess; i++)
		for (unsigned j = 0; j < b->qd + (b->game_after ? 0 : b->gqd); j++)
			submit(b->sess[i], &b->sess[i]->slots[j]);
	for (;;) {
		unsigned live = 0;
		uint64_t t = now_ns();

		for (unsigned i = 0; i < b->nsess; i++) {
			struct session *s = b->sess[i];

			if (s->inflight == 0 && !s->stop)
				s->stop = true;  /* nothing could be issued */
			if (s->inflight == 0 && b->game && !s->g_stop)
				s->g_stop = true;
			if (s->inflight == 0 && !s->t_boot)
				s->t_boot = t;
			if (s->inflight == 0 && !s->t_done)
				s->t_done = t;
			if (s->inflight)
				live++;
			pfd[i].fd = iscsi_get_fd(s->iscsi);
			pfd[i].events = (short)iscsi_which_events(s->iscsi);
			pfd[i].revents = 0;
		}
		if (!live)
			break;
		if (t > limit)
			die("commands still in flight %.0f s after the end", DRAIN_LIMIT_S);
		if (poll(pfd, b->nsess, 1000) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (unsigned i = 0; i < b->nsess; i++)
			if (pfd[i].revents &&
			    iscsi_service(b->sess[i]->iscsi, pfd[i].revents) < 0)
				die("session %u: %s", i, iscsi_get_error(b->sess[i]->iscsi));
		if (b->failed)
			die("a command failed");
	}
}

static const char *wname(enum workload w)
{
	static const char *n[] = { "randread", "randwrite", "seqread", "seqwrite", "boot" };

	return n[w];
}

/* CPU seconds (user + system) this process has used so far: the load
 * generator's own cost, which shares the box with the target. */
static double cpu_secs(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/*
 * -G: print the game disk's part of a boot run (per-session boot-set
 * times, the bytes each disk gave, the game's command latency) and keep
 * its RESULT fields in b->game_result.  secs: the run's wall time.
 */
static void report_game(struct bench *b, double secs)
{
	uint64_t boot[MAX_SESSIONS];
	double bp50, bp99, bmx;

	for (unsigned i = 0; i < b->nsess; i++)
		boot[i] = b->sess[i]->t_boot - b->t_start;
	qsort(boot, b->nsess, sizeof(boot[0]), cmp_u64);
	bp50 = (double)boot[(b->nsess - 1) / 2] / 1e9;
	bp99 = (double)boot[(size_t)(0.99 * (b->nsess - 1) + 0.5)] / 1e9;
	bmx = (double)boot[b->nsess - 1] / 1e9;
	printf("  game disk: LUN %d, %.0f MiB x %u sessions (QD%u each, %zu extents, %s the boot set;"
	       " one iSCSI session per PC for both LUNs)\n"
	       "  per-session boot set (LUN %d) done p50 %.3f s, p99 %.3f s, max %.3f s;"
	       " the times above are for both disks\n"
	       "  read: boot set %.1f MiB, game %.1f MiB (%.1f MiB/s of the aggregate);"
	       " game command latency p50 %.0f us, p99 %.0f us\n",
	       b->game_lun, (double)b->game_len / 1048576.0, b->nsess, b->gqd, b->gnext,
	       b->game_after ? "after" : "with", b->lun, bp50, bp99, bmx,
	       (double)b->boot_bytes / 1048576.0, (double)b->game_bytes / 1048576.0,
	       (double)b->game_bytes / 1048576.0 / secs,
	       hist_q(&b->glat, 0.5) / 1e3, hist_q(&b->glat, 0.99) / 1e3);
	snprintf(b->game_result, sizeof(b->game_result),
		 " game_lun=%d game_mib=%.0f game_qd=%u game_start=%s boot_p50_s=%.3f boot_p99_s=%.3f"
		 " boot_max_s=%.3f boot_bytes=%" PRIu64 " game_bytes=%" PRIu64
		 " game_lat_p50_us=%.0f game_lat_p99_us=%.0f",
		 b->game_lun, (double)b->game_len / 1048576.0, b->gqd, b->game_after ? "after" : "with",
		 bp50, bp99, bmx, b->boot_bytes, b->game_bytes,
		 hist_q(&b->glat, 0.5) / 1e3, hist_q(&b->glat, 0.99) / 1e3);
}

static void report(struct bench *b)
{
	uint64_t t_end = 0, ios = 0;
	double secs, mibs;

	for (unsigned i = 0; i < b->nsess; i++) {
		if (b->sess[i]->t_done > t_end)
			t_end = b->sess[i]->t_done;
		ios += b->sess[i]->completed;
	}
	secs = (double)(t_end - b->t_start) / 1e9;
	if (secs <= 0)
		secs = 1e-9;
	mibs = (double)b->bytes / 1048576.0 / secs;
	if (b->w == W_BOOT) {
		uint64_t done[MAX_SESSIONS];

		for (unsigned i = 0; i < b->nsess; i++)
			done[i] = b->sess[i]->t_done - b->t_start;
		qsort(done, b->nsess, sizeof(done[0]), cmp_u64);
		/* Nearest rank: p99 of 16 sessions is the slowest one. */
		double p50 = (double)done[(b->nsess - 1) / 2] / 1e9;
		double p99 = (double)done[(size_t)(0.99 * (b->nsess - 1) + 0.5)] / 1e9;
		double mx = (double)done[b->nsess - 1] / 1e9;
		printf("boot set %.0f MiB x %u sessions (QD%u each, %zu extents): %.2f s, %.1f MiB/s aggregate%s;\n"
		       "  per-session completion p50 %.3f s, p99 %.3f s, max %.3f s; command latency p50 %.0f us, p99 %.0f us\n",
		       (double)b->region_len / 1048576.0, b->nsess, b->qd, b->next, secs, mibs,
		       b->game ? " (both disks)" : "",
		       p50, p99, mx, hist_q(&b->lat, 0.5) / 1e3, hist_q(&b->lat, 0.99) / 1e3);
		if (b->login_retries)
			printf("  %u login(s) tried again before the run\n", b->login_retries);
		if (b->game)
			report_game(b, secs);
		char span[40] = "";

		if (b->span) {
			snprintf(span, sizeof(span), " span_mib=%.0f", (double)b->span / 1048576.0);
			printf("  scattered over %.0f MiB from offset %.0f MiB (-S)\n",
			       (double)b->span / 1048576.0, (double)b->region_off / 1048576.0);
		}
		printf("RESULT label=%s workload=boot sessions=%u qd=%u set_mib=%.0f secs=%.3f mibs=%.1f"
		       " done_p50_s=%.3f done_p99_s=%.3f done_max_s=%.3f lat_p50_us=%.0f lat_p99_us=%.0f"
		       " login_retries=%u client_cpu_s=%.2f%s%s\n",
		       b->label, b->nsess, b->qd, (double)b->region_len / 1048576.0, secs, mibs,
		       p50, p99, mx, hist_q(&b->lat, 0.5) / 1e3, hist_q(&b->lat, 0.99) / 1e3,
		       b->login_retries, cpu_secs(), b->game ? b->game_result : "", span);
		return;
	}
	double mean = b->lat.count ? b->lat.sum_ns / (double)b->lat.count / 1e3 : 0;
	printf("%s %u B QD%u: %" PRIu64 " I/Os in %.2f s: %.0f IOPS, %.1f MiB/s; latency mean %.0f us, p50 %.0f us, p99 %.0f us\n",
	       wname(b->w), b->bs, b->qd, ios, secs, (double)ios / secs, mibs, mean,
	       hist_q(&b->lat, 0.5) / 1e3, hist_q(&b->lat, 0.99) / 1e3);
	printf("RESULT label=%s workload=%s bs=%u qd=%u ios=%" PRIu64 " secs=%.3f iops=%.0f mibs=%.1f"
	       " lat_mean_us=%.1f lat_p50_us=%.1f lat_p99_us=%.1f\n",
	       b->label, wname(b->w), b->bs, b->qd, ios, secs, (double)ios / secs, mibs, mean,
	       hist_q(&b->lat, 0.5) / 1e3, hist_q(&b->lat, 0.99) / 1e3);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: iscsi_bench -p HOST:PORT -T TARGET -w randread|randwrite|seqread|seqwrite|boot\n"
		"         [-b BYTES] [-q QD] [-t SECS] [-n COUNT] [-o MIB] [-r MIB] [-N SESSIONS]\n"
		"         [-I INITIATOR] [-l LUN] [-s SEED] [-L LABEL] [-P] [-G LUN:MIB [-Q QD] [-A]] [-S MIB] [-W SECS]\n"
		"Prints numbers; see the header of bench/iscsi_bench.c.\n");
	exit(2);
}

static uint64_t num(const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof(*b));
	char name[300];
	int ch;
	bool have_t = false;

	if (!b)
		die("out of memory");
	b->w = W_RANDREAD;
	b->secs = 10;
	b->seed = 1;
	b->nsess = 1;
	b->initiator = "iqn.2026-11.org.pristine.bench:client";
	b->label = "-";
	while ((ch = getopt(argc, argv, "p:T:w:b:q:t:n:o:r:N:I:l:s:L:PG:Q:AS:W:h")) != -1) {
		switch (ch) {
		case 'p': b->portal = optarg; break;
		case 'T': b->target = optarg; break;
		case 'w':
			if (!strcmp(optarg, "randread")) b->w = W_RANDREAD;
			else if (!strcmp(optarg, "randwrite")) b->w = W_RANDWRITE;
			else if (!strcmp(optarg, "seqread")) b->w = W_SEQREAD;
			else if (!strcmp(optarg, "seqwrite")) b->w = W_SEQWRITE;
			else if (!strcmp(optarg, "boot")) b->w = W_BOOT;
			else usage();
			break;
		case 'b': b->bs = (uint32_t)num(optarg, 16u << 20); break;
		case 'q': b->qd = (unsigned)num(optarg, MAX_QD); break;
		case 't': b->secs = (double)num(optarg, 86400); have_t = true; break;
		case 'n': b->count = num(optarg, UINT64_MAX); break;
		case 'o': b->region_off = num(optarg, 1ull << 30) << 20; break;
		case 'r': b->region_len = num(optarg, 1ull << 30) << 20; break;
		case 'N': b->nsess = (unsigned)num(optarg, MAX_SESSIONS); break;
		case 'I': b->initiator = optarg; break;
		case 'l': b->lun = (int)num(optarg, 16383); break;
		case 's': b->seed = num(optarg, UINT64_MAX); break;
		case 'L': b->label = optarg; break;
		case 'P': b->stamp = true; break;
		case 'G': {
			char *colon = strchr(optarg, ':');

			if (!colon)
				usage();
			*colon = '\0';
			b->game = true;
			b->game_lun = (int)num(optarg, 16383);
			b->game_len = num(colon + 1, 1ull << 30) << 20;
			if (!b->game_len)
				usage();
			break;
		}
		case 'Q': b->gqd = (unsigned)num(optarg, MAX_QD); break;
		case 'A': b->game_after = true; break;
		case 'S':
			b->span = num(optarg, 1ull << 30) << 20;
			if (!b->span)
				usage();
			break;
		case 'W': b->idle = (unsigned)num(optarg, 3600); break;
		default: usage();
		}
	}
	if (!b->portal || !b->target || optind < argc || b->nsess == 0 || b->qd > MAX_QD)
		usage();
	if (b->w != W_BOOT && b->nsess != 1) {
		fprintf(stderr, "iscsi_bench: -N is for -w boot only\n");
		usage();
	}
	if (b->w != W_BOOT && (b->game || b->gqd || b->game_after)) {
		fprintf(stderr, "iscsi_bench: -G, -Q and -A are for -w boot only\n");
		usage();
	}
	if (b->w != W_BOOT && b->span) {
		fprintf(stderr, "iscsi_bench: -S is for -w boot only\n");
		usage();
	}
	if (!b->game && (b->gqd || b->game_after)) {
		fprintf(stderr, "iscsi_bench: -Q and -A need -G\n");
		usage();
	}
	if (b->w == W_BOOT) {
		if (!have_t)
			b->secs = 0;    /* once through the set; the drain limit still bounds it */
		if (!b->region_len)
			b->region_len = 64ull << 20;
		if (!b->qd)
			b->qd = 4;
		b->bs = 0;
		if (b->span && b->span < b->region_len) {
			fprintf(stderr, "iscsi_bench: -S SPAN must be at least the boot set (-r)\n");
			usage();
		}
	} else {
		bool seq = b->w == W_SEQREAD || b->w == W_SEQWRITE;

		if (!b->bs)
			b->bs = seq ? 1048576 : 4096;
		if (!b->qd)
			b->qd = seq ? 8 : 32;
		if (!b->secs && !b->count) {
			fprintf(stderr, "iscsi_bench: a run needs -t SECS or -n COUNT\n");
			usage();
		}
	}
	if (b->qd == 0)
		usage();
	if (b->game && !b->gqd)
		b->gqd = 4;
	if (b->qd + b->gqd > MAX_QD) {
		fprintf(stderr, "iscsi_bench: -q plus -Q must be at most %d\n", MAX_QD);
		usage();
	}

	for (unsigned i = 0; i < b->nsess; i++) {
		if (b->w == W_BOOT)
			snprintf(name, sizeof(name), "%s-%u", b->initiator, i);
		else
			snprintf(name, sizeof(name), "%s", b->initiator);
		b->sess[i] = session_open(b, i, name);
	}
	if (!b->region_len && b->region_off < b->lu_bytes)
		b->region_len = b->lu_bytes - b->region_off;
	if (b->span && b->region_off + b->span > b->lu_bytes)
		die("scatter span %" PRIu64 "+%" PRIu64 " bytes is outside the LU (%" PRIu64 " bytes)",
		    b->region_off, b->span, b->lu_bytes);
	if (b->region_off + b->region_len > b->lu_bytes || !b->region_len)
		die("region %" PRIu64 "+%" PRIu64 " bytes is outside the LU (%" PRIu64 " bytes)",
		    b->region_off, b->region_len, b->lu_bytes);
	if (b->region_off % b->lbsize || (b->bs && b->bs % b->lbsize))
		die("offsets and sizes must be multiples of the %u-byte block", b->lbsize);
	if (b->game) {
		if (b->game_len > b->game_lu_bytes)
			die("the game region (%" PRIu64 " bytes) is larger than LUN %d (%" PRIu64 " bytes)",
			    b->game_len, b->game_lun, b->game_lu_bytes);
		if (b->game_len % b->game_lbsize)
			die("the game region must be a multiple of the %u-byte block", b->game_lbsize);
		b->gnext = make_game_set(b);
	}
	if (b->w == W_BOOT) {
		b->next = make_boot_set(b);
		if (b->span)
			scatter_boot_set(b, b->next);
	} else {
		b->nblocks = b->region_len / b->bs;
		if (!b->nblocks)
			die("region smaller than one I/O");
		if (b->w == W_RANDWRITE)
			make_perm(b);
	}
	if (b->idle)
		idle_first(b);
	run(b);
	report(b);
	for (unsigned i = 0; i < b->nsess; i++)
		session_close(b->sess[i]);
	free(b->perm);
	free(b->ext);
	free(b->gext);
	free(b);
	return 0;
}
