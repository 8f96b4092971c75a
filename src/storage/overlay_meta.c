/*
 * overlay_meta.c - the overlay's on-disk metadata: the `info` header, the
 * `map` checkpoint and the append-only `log` (docs/overlay-format.md).
 *
 * Durability protocol (the caller, overlay.c, has synced `data` first):
 *   flush:      append records {gen, runs, crc32c} to log, fsync(log);
 *   checkpoint: log.tmp (header: base gen), fsync; map.tmp, fsync;
 *               rename map.tmp -> map, fsync(dir); rename log.tmp -> log,
 *               fsync(dir).
 * Every step that needs new space comes before the first rename, so a
 * store that is full fails a flush or a checkpoint with nothing changed
 * (a failed append is cut back off the log, the .tmp files are removed):
 * the caller may then keep going instead of failing the overlay.
 * Generations are contiguous: a map of gen M, then a log whose base is
 * L <= M and whose records are L+1, L+2, ...  Records <= M are already
 * in the map (a crash between the two renames leaves such a log).
 *
 * On open every byte read is input, not truth: magic, version, checksum,
 * and every count, index and range against the golden size.  A torn
 * record at the log's tail is what a crash mid-append leaves: it is cut
 * off.  Anything else invalid is -EBADMSG and nothing is changed.
 *
 * The same loader opens a closed overlay as a frozen layer (layer.c)
 * when ov->read_only is set: files are opened O_RDONLY, nothing is
 * created, and the repairs an open would make (cutting a torn tail,
 * replacing a log older than the map) are skipped: the map loaded is
 * the same, only the files stay as they are.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/crc32c.h"
#include "storage/overlay_int.h"
#include "util/check.h"
#include "util/log.h"

#define INFO_SIZE 512u
#define MAP_HDR   64u
#define FMT_VERSION 1u
#define REC_MAGIC 0x52444552u   /* bytes "REDR" on disk */
#define REC_HDR   16u
#define REC_RUN   16u
#define REC_TAIL  8u            /* crc32c + zero pad: records stay 8-aligned */
#define REC_MAX_RUNS 65536u     /* bigger flushes are split into records */

static const char INFO_MAGIC[8] = { 'P', 'R', 'S', 'T', 'O', 'V', 'L', 'I' };
static const char MAP_MAGIC[8]  = { 'P', 'R', 'S', 'T', 'O', 'V', 'L', 'M' };
static const char LOG_MAGIC[8]  = { 'P', 'R', 'S', 'T', 'O', 'V', 'L', 'L' };

/*
 * I3 on the in-memory generations (overlay_int.h): the log follows a
 * checkpoint no newer than the last durable generation, and a writable
 * overlay's log holds records exactly when generations followed its base.
 */
static void assert_gens(const struct overlay *ov)
{
	PR_ASSERT(ov->log_base <= ov->gen);
	PR_ASSERT(ov->log_end >= OVL_LOG_HDR);
	PR_ASSERT(ov->read_only || (ov->gen > ov->log_base) == (ov->log_end > OVL_LOG_HDR));
}

/* Log a corruption finding with where it was seen; returns -EBADMSG. */
static int corrupt(const struct overlay *ov, const char *file, uint64_t off, const char *what)
{
	log_err("overlay %s: %s corrupt at byte %llu: %s", ov->dir, file,
		(unsigned long long)off, what);
	return -EBADMSG;
}

static bool valid_block_size(uint32_t bs)
{
	return bs >= 512 && bs <= (1u << 20) && (bs & (bs - 1)) == 0;
}

/* Open name in the overlay directory through io. */
static int dopen(struct overlay *ov, const char *name, int flags)
{
	return ov->io->open(ov->io->ctx, ov->dirfd, name, flags, 0600);
}

/*
 * Write a small file name.tmp and fsync it.  With keep_fd its open fd is
 * returned in *keep_fd (caller closes), else it is closed.  On failure
 * the tmp file is removed again (it may hold space the store lacks).
 */
static int write_tmp(struct overlay *ov, const char *tmp, const uint8_t *a, size_t alen,
		     const uint8_t *b, size_t blen, int *keep_fd)
{
	const struct ovl_io *io = ov->io;
	int rc;
	int fd = dopen(ov, tmp, O_RDWR | O_CREAT | O_TRUNC);

	if (fd < 0)
		return fd;
	rc = ovl_write_full(io, fd, a, alen, 0);
	if (rc == 0)
		rc = ovl_write_full(io, fd, b, blen, alen);
	if (rc == 0)
		rc = io->fsync(io->ctx, fd);
	if (rc == 0 && keep_fd) {
		*keep_fd = fd;
		return 0;
	}
	io->close(io->ctx, fd);
	if (rc < 0)
		io->unlinkat(io->ctx, ov->dirfd, tmp);
	return rc;
}

/* Rename tmp over name and fsync the directory. */
static int commit_tmp(struct overlay *ov, const char *tmp, const char *name)
{
	const struct ovl_io *io = ov->io;
	int rc = io->renameat(io->ctx, ov->dirfd, tmp, name);

	if (rc == 0)
		rc = io->fsync(io->ctx, ov->dirfd);
	return rc;
}

/*
 * Write a whole small file atomically: name.tmp, fsync, rename to name,
 * fsync the directory.  With keep_fd the open fd of the new file is
 * returned in *keep_fd (caller closes), else it is closed.
 */
static int write_atomic(struct overlay *ov, const char *tmp, const char *name,
			const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, int *keep_fd)
{
	int fd = -1;
	int rc = write_tmp(ov, tmp, a, alen, b, blen, &fd);

	if (rc < 0)
		return rc;
	rc = commit_tmp(ov, tmp, name);
	if (rc == 0 && keep_fd) {
		*keep_fd = fd;
		return 0;
	}
	ov->io->close(ov->io->ctx, fd);
	return rc;
}

/* The 64-byte log header naming the checkpoint generation it follows. */
static void log_header(const struct overlay *ov, uint8_t *h, uint64_t base_gen)
{
	memset(h, 0, OVL_LOG_HDR);
	memcpy(h, LOG_MAGIC, 8);
	ovl_put32(h + 8, FMT_VERSION);
	ovl_put32(h + 12, ov->bs);
	ovl_put64(h + 16, base_gen);
	ovl_put64(h + 24, ov->nblocks);
	ovl_put32(h + 60, crc32c(h, 60));
}

/*
 * Create a fresh, empty overlay in ov->dir (ov->bs, size, base_id set):
 * data sized like the golden image, an empty log, then info LAST, so an
 * overlay with an info file is always complete.  Leaves datafd/logfd open.
 */
int ovl_meta_create(struct overlay *ov)
{
	const struct ovl_io *io = ov->io;
	uint8_t h[OVL_LOG_HDR], info[INFO_SIZE];
	int rc;

	rc = io->unlinkat(io->ctx, ov->dirfd, "map");
	if (rc < 0 && rc != -ENOENT)
		return rc;
	ov->datafd = dopen(ov, "data", O_RDWR | O_CREAT | O_TRUNC);
	if (ov->datafd < 0)
		return ov->datafd;
	rc = io->ftruncate(io->ctx, ov->datafd, ov->size);
	if (rc == 0)
		rc = io->fsync(io->ctx, ov->datafd);
	if (rc < 0)
		return rc;
	log_header(ov, h, 0);
	rc = write_atomic(ov, "log.tmp", "log", h, sizeof(h), NULL, 0, &ov->logfd);
	if (rc < 0)
		return rc;

	memset(info, 0, sizeof(info));
	memcpy(info, INFO_MAGIC, 8);
	ovl_put32(info + 8, FMT_VERSION);
	ovl_put32(info + 12, ov->bs);
	ovl_put64(info + 16, ov->size);
	ov->created = (uint64_t)time(NULL);
	ovl_put64(info + 24, ov->created);
	size_t idlen = strlen(ov->base_id);
	ovl_put16(info + 32, (uint16_t)idlen);
	memcpy(info + 34, ov->base_id, idlen);
	ovl_put32(info + INFO_SIZE - 4, crc32c(info, INFO_SIZE - 4));
	rc = write_atomic(ov, "info.tmp", "info", info, sizeof(info), NULL, 0, NULL);
	if (rc < 0)
		return rc;
	ov->gen = 0;
	ov->log_base = 0;
	ov->log_end = OVL_LOG_HDR;
	assert_gens(ov);
	PR_CHECK(ovl_map_check(&ov->map));
	return 0;
}

/* Size of an open file through io, or -errno. */
static int file_size(struct overlay *ov, int fd, uint64_t *size)
{
	uint64_t alloc;
	return ov->io->fstat_size(ov->io->ctx, fd, size, &alloc);
}

/*
 * Load `map` (absent = empty map of generation 0).  Sets *gen.
 * Returns 0, -EBADMSG, or -errno.
 */
static int load_map(struct overlay *ov, uint64_t *gen)
{
	const struct ovl_io *io = ov->io;
	uint8_t h[MAP_HDR];
	uint8_t *body = NULL;
	uint64_t size;
	int rc;
	int fd = dopen(ov, "map", O_RDONLY);

	*gen = 0;
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	rc = file_size(ov, fd, &size);
	if (rc < 0)
		goto out;
	if (size < MAP_HDR) {
		rc = corrupt(ov, "map", 0, "shorter than its header");
		goto out;
	}
	rc = ovl_read_full(io, fd, h, MAP_HDR, 0);
	if (rc < 0)
		goto out;
	if (memcmp(h, MAP_MAGIC, 8) != 0 || ovl_get32(h + 60) != crc32c(h, 60)) {
		rc = corrupt(ov, "map", 0, "bad magic or header checksum");
		goto out;
	}
	uint64_t body_len = ovl_get64(h + 40);
	if (ovl_get32(h + 8) != FMT_VERSION || ovl_get32(h + 12) != ov->bs ||
	    ovl_get64(h + 24) != ov->nblocks || body_len != size - MAP_HDR) {
		rc = corrupt(ov, "map", 8, "header does not match the overlay");
		goto out;
	}
	body = malloc(body_len ? body_len : 1);
	if (!body) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ovl_read_full(io, fd, body, body_len, MAP_HDR);
	if (rc < 0)
		goto out;
	if (crc32c(body, body_len) != ovl_get32(h + 36)) {
		rc = corrupt(ov, "map", MAP_HDR, "body checksum");
		goto out;
	}
	rc = ovl_map_load(&ov->map, body, body_len, ovl_get32(h + 32));
	if (rc == -EBADMSG)
		corrupt(ov, "map", MAP_HDR, "malformed leaf table");
	if (rc == 0)
		*gen = ovl_get64(h + 16);
out:
	free(body);
	io->close(io->ctx, fd);
	return rc;
}

/*
 * Check one record at buf[off..size): sets *len and *gen.  Returns 0 when
 * it is whole and valid; -EAGAIN when it is not a whole record with a good
 * checksum (what a torn append looks like); -EBADMSG when the checksum is
 * good but the content is impossible (runs outside the disk, bad state):
 * no crash writes that, so it is corruption wherever it is.
 */
static int parse_record(const struct overlay *ov, const uint8_t *buf, uint64_t size,
			uint64_t off, uint64_t *len, uint64_t *gen)
{
	if (size - off < REC_HDR + REC_TAIL || ovl_get32(buf + off) != REC_MAGIC)
		return -EAGAIN;
	uint64_t nruns = ovl_get32(buf + off + 4);
	if (nruns == 0 || nruns > REC_MAX_RUNS ||
	    nruns * REC_RUN > size - off - REC_HDR - REC_TAIL)
		return -EAGAIN;
	uint64_t body = REC_HDR + nruns * REC_RUN;
	const uint8_t *r = buf + off;
	if (ovl_get32(r + body) != crc32c(r, body) || ovl_get32(r + body + 4) != 0)
		return -EAGAIN;
	for (uint64_t i = 0; i < nruns; i++) {
		const uint8_t *p = r + REC_HDR + i * REC_RUN;
		uint64_t first = ovl_get64(p);
		uint32_t count = ovl_get32(p + 8);
		if (count == 0 || first >= ov->nblocks || count > ov->nblocks - first ||
		    p[12] > OVL_ZERO || p[13] || p[14] || p[15])
			return -EBADMSG;
	}
	*len = body + REC_TAIL;
	*gen = ovl_get64(r + 8);
	return 0;
}

/* Apply a parsed (valid) record's runs to the map, not as dirty. */
static int apply_record(struct overlay *ov, const uint8_t *r)
{
	uint32_t nruns = ovl_get32(r + 4);

	for (uint32_t i = 0; i < nruns; i++) {
		const uint8_t *p = r + REC_HDR + (uint64_t)i * REC_RUN;
		int rc = ovl_map_set(&ov->map, ovl_get64(p), ovl_get32(p + 8),
				     (enum ovl_state)p[12], false);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * Replay the log over a map of generation map_gen.  Sets ov->gen, *end,
 * the offset after the last valid record, *torn when bytes after it must
 * be cut off, and *base_out, the log's base generation.  Returns 0,
 * -EBADMSG or -errno.
 */
static int replay_log(struct overlay *ov, uint64_t map_gen, uint64_t *end, bool *torn,
		      uint64_t *base_out)
{
	const struct ovl_io *io = ov->io;
	uint8_t *buf = NULL;
	uint64_t size;
	int rc;

	*torn = false;
	rc = file_size(ov, ov->logfd, &size);
	if (rc < 0)
		return rc;
	if (size < OVL_LOG_HDR)
		return corrupt(ov, "log", 0, "shorter than its header");
	if (size > SIZE_MAX / 2)
		return corrupt(ov, "log", 0, "absurd size");
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	rc = ovl_read_full(io, ov->logfd, buf, size, 0);
	if (rc < 0)
		goto out;
	if (memcmp(buf, LOG_MAGIC, 8) != 0 || ovl_get32(buf + 60) != crc32c(buf, 60)) {
		rc = corrupt(ov, "log", 0, "bad magic or header checksum");
		goto out;
	}
	uint64_t base = ovl_get64(buf + 16);
	if (ovl_get32(buf + 8) != FMT_VERSION || ovl_get32(buf + 12) != ov->bs ||
	    ovl_get64(buf + 24) != ov->nblocks) {
		rc = corrupt(ov, "log", 8, "header does not match the overlay");
		goto out;
	}
	if (base > map_gen) {
		rc = corrupt(ov, "log", 16, "follows a checkpoint newer than the map");
		goto out;
	}
	ov->gen = map_gen;
	uint64_t off = OVL_LOG_HDR, expect = base + 1, len, gen;
	while (off < size) {
		rc = parse_record(ov, buf, size, off, &len, &gen);
		if (rc == -EBADMSG) {
			corrupt(ov, "log", off, "record with impossible runs");
			goto out;
		}
		if (rc < 0) {
			rc = 0;
			break;
		}
		if (gen != expect) {
			rc = corrupt(ov, "log", off, "generation out of sequence");
			goto out;
		}
		if (gen > map_gen) {
			/* A log older than the map ends before it (I3). */
			if (base < map_gen) {
				rc = corrupt(ov, "log", off, "record newer than the map in an old log");
				goto out;
			}
			rc = apply_record(ov, buf + off);
			if (rc < 0)
				goto out;
			ov->gen = gen;
		}
		expect++;
		off += len;
	}
	if (off < size) {
		/* A crash mid-append leaves garbage only at the very end; a
		 * valid record after the bad one means real corruption. */
		for (uint64_t p = off + 8; p + REC_HDR + REC_TAIL <= size; p += 8) {
			if (parse_record(ov, buf, size, p, &len, &gen) != -EAGAIN) {
				rc = corrupt(ov, "log", off, "invalid record followed by valid ones");
				goto out;
			}
		}
		log_warn("overlay %s: log has a torn tail at byte %llu (%llu bytes), %s",
			 ov->dir, (unsigned long long)off, (unsigned long long)(size - off),
			 ov->read_only ? "ignored" : "dropped");
		*torn = true;
	}
	*end = off;
	*base_out = base;
out:
	free(buf);
	return rc;
}

/*
 * Nothing says an overlay here was ever complete (no map, log at most a
 * header): a crash during creation.  Else -EBADMSG: info was lost.
 */
static int check_unfinished(struct overlay *ov)
{
	uint64_t size;
	int rc, fd = dopen(ov, "map", O_RDONLY);

	if (fd >= 0) {
		ov->io->close(ov->io->ctx, fd);
		return corrupt(ov, "info", 0, "missing while a map exists");
	}
	if (fd != -ENOENT)
		return fd;      /* a map we cannot open is not a missing one */
	fd = dopen(ov, "log", O_RDONLY);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	rc = file_size(ov, fd, &size);
	ov->io->close(ov->io->ctx, fd);
	if (rc == 0 && size > OVL_LOG_HDR)
		rc = corrupt(ov, "info", 0, "missing while the log holds records");
	return rc;
}

/*
 * Open the overlay's metadata in ov->dirfd, or create a fresh overlay
 * when there is none (*created).  ov->size, ov->bs (for creation) and
 * ov->base_id are set; base_id NULL skips the identity check.  On return
 * datafd/logfd are open and the map loaded; ov->gen, log_end set.
 * Returns 0, -EBADMSG, -ESTALE or -errno.  Before success nothing is
 * written; afterwards only a torn log tail is cut off.
 *
 * With ov->read_only (a frozen layer): data and log are opened O_RDONLY,
 * nothing is ever written; no info and no evidence of use is -ENOENT
 * (there is no overlay to open) instead of a creation; a torn tail is
 * ignored and an old log left in place.  ov->log_end is then the end of
 * the valid records, not an append offset.
 */
int ovl_meta_open(struct overlay *ov, const char *base_id, bool *created)
{
	const struct ovl_io *io = ov->io;
	uint8_t info[INFO_SIZE];
	uint64_t size, map_gen, end, base;
	bool torn;
	int rc, fd;

	*created = false;
	fd = dopen(ov, "info", O_RDONLY);
	if (fd == -ENOENT) {
		rc = check_unfinished(ov);
		if (rc < 0)
			return rc;
		if (ov->read_only)
			return -ENOENT;         /* nothing to open, nothing to create */
		ov->nblocks = (ov->size + ov->bs - 1) / ov->bs;
		rc = ovl_map_init(&ov->map, ov->nblocks);
		if (rc == 0)
			rc = ovl_meta_create(ov);
		*created = rc == 0;
		return rc;
	}
	if (fd < 0)
		return fd;
	rc = file_size(ov, fd, &size);
	if (rc == 0 && size != INFO_SIZE)
		rc = corrupt(ov, "info", 0, "wrong size");
	if (rc == 0)
		rc = ovl_read_full(io, fd, info, INFO_SIZE, 0);
	io->close(io->ctx, fd);
	if (rc < 0)
		return rc;
	uint32_t bs = ovl_get32(info + 12);
	uint16_t idlen = ovl_get16(info + 32);
	if (memcmp(info, INFO_MAGIC, 8) != 0 || ovl_get32(info + INFO_SIZE - 4) != crc32c(info, INFO_SIZE - 4))
		return corrupt(ov, "info", 0, "bad magic or checksum");
	if (ovl_get32(info + 8) != FMT_VERSION || !valid_block_size(bs) || idlen > OVL_BASE_ID_MAX)
		return corrupt(ov, "info", 8, "unknown version or bad field");
	if (ovl_get64(info + 16) != ov->size ||
	    (base_id && (strlen(base_id) != idlen || memcmp(base_id, info + 34, idlen) != 0))) {
		log_err("overlay %s: made over another golden image (size %llu, base '%.*s')",
			ov->dir, (unsigned long long)ovl_get64(info + 16), (int)idlen, info + 34);
		return -ESTALE;
	}
	memcpy(ov->base_id, info + 34, idlen);
	ov->base_id[idlen] = '\0';
	ov->bs = bs;
	ov->created = ovl_get64(info + 24);
	ov->nblocks = (ov->size + bs - 1) / bs;
	rc = ovl_map_init(&ov->map, ov->nblocks);
	if (rc < 0)
		return rc;

	int rw = ov->read_only ? O_RDONLY : O_RDWR;
	ov->datafd = dopen(ov, "data", rw);
	if (ov->datafd < 0)
		return ov->datafd == -ENOENT ? corrupt(ov, "data", 0, "missing") : ov->datafd;
	rc = file_size(ov, ov->datafd, &size);
	if (rc < 0)
		return rc;
	if (size != ov->size)
		return corrupt(ov, "data", 0, "size differs from the golden image");
	ov->logfd = dopen(ov, "log", rw);
	if (ov->logfd < 0)
		return ov->logfd == -ENOENT ? corrupt(ov, "log", 0, "missing") : ov->logfd;
	rc = load_map(ov, &map_gen);
	if (rc < 0)
		return rc;
	rc = replay_log(ov, map_gen, &end, &torn, &base);
	if (rc < 0)
		return rc;
	/* Validated: only now may anything change.  A frozen layer is left
	 * as it is: its map is complete without these repairs. */
	if (!ov->read_only && base < map_gen) {
		/* A crash between a checkpoint's two renames left the old log;
		 * appending to it would break the generation sequence. */
		uint8_t h[OVL_LOG_HDR];
		int newlog = -1;
		log_header(ov, h, map_gen);
		rc = write_atomic(ov, "log.tmp", "log", h, sizeof(h), NULL, 0, &newlog);
		if (rc < 0)
			return rc;
		io->close(io->ctx, ov->logfd);
		ov->logfd = newlog;
		end = OVL_LOG_HDR;
		base = map_gen;
	} else if (!ov->read_only && torn) {
		rc = io->ftruncate(io->ctx, ov->logfd, end);
		if (rc == 0)
			rc = io->fsync(io->ctx, ov->logfd);
		if (rc < 0)
			return rc;
	}
	ov->log_end = end;
	ov->log_base = base;
	/* The map and generations built from validated input (I3, M1-M4). */
	assert_gens(ov);
	PR_CHECK(ovl_map_check(&ov->map));
	return 0;
}

/*
 * Append the runs of one flush to the log as records of at most
 * REC_MAX_RUNS runs, generations ov->gen+1..., in one write, then fsync
 * the log.  The caller synced data first (I1).  On success ov->gen and
 * ov->log_end advance.  Returns 0 or -errno; *unchanged is then true
 * when the write itself failed for lack of space (-ENOSPC, -EDQUOT) and
 * whatever part of it landed was cut off again, so the log is exactly as
 * before (the caller may retry the runs later); false when the log's
 * state is unknown (the caller goes sticky; the next open cuts a torn
 * tail off).
 */
int ovl_meta_append(struct overlay *ov, const struct ovl_run *runs, size_t nruns, bool *unchanged)
{
	const struct ovl_io *io = ov->io;
	size_t nrec = (nruns + REC_MAX_RUNS - 1) / REC_MAX_RUNS;
	size_t total = nrec * (REC_HDR + REC_TAIL) + nruns * REC_RUN;
	uint8_t *buf = calloc(1, total ? total : 1);
	uint64_t gen = ov->gen;
	size_t o = 0;
	int rc;

	PR_ASSERT_MSG(!ov->read_only && ov->data_synced, "I1: log append before data was synced");
	*unchanged = false;
	if (!buf) {
		*unchanged = true;
		return -ENOMEM;
	}
	for (size_t done = 0; done < nruns;) {
		size_t n = nruns - done < REC_MAX_RUNS ? nruns - done : REC_MAX_RUNS;
		uint8_t *r = buf + o;
		ovl_put32(r, REC_MAGIC);
		ovl_put32(r + 4, (uint32_t)n);
		ovl_put64(r + 8, ++gen);
		for (size_t i = 0; i < n; i++) {
			uint8_t *p = r + REC_HDR + i * REC_RUN;
			ovl_put64(p, runs[done + i].first);
			ovl_put32(p + 8, runs[done + i].count);
			p[12] = runs[done + i].state;
		}
		size_t body = REC_HDR + n * REC_RUN;
		ovl_put32(r + body, crc32c(r, body));
		o += body + REC_TAIL;
		done += n;
	}
	rc = ovl_write_full(io, ov->logfd, buf, total, ov->log_end);
	if (rc == -ENOSPC || rc == -EDQUOT) {
		/* Part of the records may have landed: cut them off, so the
		 * next append starts on a clean end (a shorter record written
		 * over a longer torn one would leave its remains behind). */
		*unchanged = io->ftruncate(io->ctx, ov->logfd, ov->log_end) == 0;
	} else if (rc < 0) {
		/* Any other failure makes the overlay sticky (no append
		 * follows in this open), and the next open cuts a torn tail
		 * off: no cut here, which on a store that timed out (Ceph)
		 * would only add its timeouts to the PC's wait. */
		*unchanged = false;
	} else {
		rc = io->fsync(io->ctx, ov->logfd);
	}
	if (rc == 0) {
		ov->log_end += total;
		ov->gen = gen;
	}
	assert_gens(ov);
	free(buf);
	return rc;
}

/*
 * Write a checkpoint of generation ov->gen+1 from a serialised map (taken
 * before the caller synced data), then replace the log with an empty one
 * following it.  Both new files are written and synced first; then map
 * is renamed into place before the new log (I3).  Returns 0 or -errno
 * (the caller goes sticky); *unchanged is true when the failure came
 * before the first rename: the .tmp files are gone and the overlay's
 * files are as before, so the log stays usable.
 */
int ovl_meta_checkpoint(struct overlay *ov, const uint8_t *body, size_t len, uint32_t nentries,
			bool *unchanged)
{
	const struct ovl_io *io = ov->io;
	uint64_t gen = ov->gen + 1;
	uint8_t h[MAP_HDR], lh[OVL_LOG_HDR];
	int newlog = -1;
	int rc;

	PR_ASSERT_MSG(!ov->read_only && ov->data_synced, "I1: checkpoint before data was synced");
	*unchanged = true;
	memset(h, 0, sizeof(h));
	memcpy(h, MAP_MAGIC, 8);
	ovl_put32(h + 8, FMT_VERSION);
	ovl_put32(h + 12, ov->bs);
	ovl_put64(h + 16, gen);
	ovl_put64(h + 24, ov->nblocks);
	ovl_put32(h + 32, nentries);
	ovl_put32(h + 36, crc32c(body, len));
	ovl_put64(h + 40, len);
	ovl_put32(h + 60, crc32c(h, 60));
	log_header(ov, lh, gen);
	rc = write_tmp(ov, "log.tmp", lh, sizeof(lh), NULL, 0, &newlog);
	if (rc < 0)
		return rc;
	rc = write_tmp(ov, "map.tmp", h, sizeof(h), body, len, NULL);
	if (rc < 0) {
		io->close(io->ctx, newlog);
		io->unlinkat(io->ctx, ov->dirfd, "log.tmp");
		return rc;
	}
	*unchanged = false;
	rc = commit_tmp(ov, "map.tmp", "map");
	if (rc == 0)
		rc = commit_tmp(ov, "log.tmp", "log");
	if (rc < 0) {
		io->close(io->ctx, newlog);
		return rc;
	}
	io->close(io->ctx, ov->logfd);
	ov->logfd = newlog;
	ov->log_end = OVL_LOG_HDR;
	ov->gen = gen;
	ov->log_base = gen;
	assert_gens(ov);
	return 0;
}
