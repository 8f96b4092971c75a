/*
 * test_overlay_crash.c - power-cut simulation for the overlay (the idea
 * of SQLite's crash VFS, our own code), plus corruption and sticky-error
 * tests that need a scriptable file layer.
 *
 * The fake file system (struct fakefs, plugged in as struct ovl_io) keeps
 * every file as its durable content plus the operations done since its
 * last fsync (writes, truncates, hole punches), and the directory as its
 * durable entries plus the create/rename/unlink operations since the last
 * fsync of the directory.  At the chosen crash point (the Nth I/O call)
 * the power is cut: per file, each pending operation is dropped, kept, or
 * kept for a random subset of its 512-byte sectors (a torn write); in the
 * directory a random prefix of the pending operations survives (a rename
 * is durable only after the directory's fsync).  Creating the overlay
 * directory itself is modelled as immediately durable (the overlay syncs
 * the parent right after mkdir; the parent is not modelled).
 *
 * After the cut the overlay is reopened from what survived and every
 * 512-byte sector must read as one of the contents it had since the last
 * completed flush (a flush resets the candidates to the current content;
 * a write adds its data as a candidate before it is issued).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>

#include "util/crc32c.h"
#include "storage/backend.h"
#include "storage/overlay.h"
#include "util/log.h"

#define SECT 512u
#define DIRPATH "/fake/ovl"

/* ---- deterministic randomness ---- */

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t x = (*s += 0x9E3779B97F4A7C15ull);
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return n ? rnd_next(s) % n : 0;
}

/* ---- contents: tag 0 = golden, 1 = zeros, else a pattern ---- */

static uint8_t tag_byte(uint32_t tag, uint64_t o)
{
	if (tag == 1)
		return 0;
	uint64_t x = ((uint64_t)tag + 7) * 0x9E3779B97F4A7C15ull ^ (o / 8) * 0xD6E8FEB86659FD93ull;
	x ^= x >> 32;
	x *= 0xD6E8FEB86659FD93ull;
	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (o % 8)));
}

static void tag_fill(uint8_t *buf, uint32_t tag, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = tag_byte(tag, off + i);
}

/* ---- an in-memory golden image (read-only) ---- */

static int mem_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	tag_fill(buf, 0, off, len);
	return 0;
}

static int mem_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	return -EROFS;
}

static int mem_flush(struct backend *be)
{
	return 0;
}

static void mem_close(struct backend *be)
{
	free(be);
}

static const struct backend_ops mem_ops = {
	.read = mem_read, .write = mem_write, .flush = mem_flush, .close = mem_close,
};

static struct backend *mem_golden(uint64_t size)
{
	struct backend *be = calloc(1, sizeof(*be));
	be->ops = &mem_ops;
	be->size = size;
	be->read_only = true;
	snprintf(be->name, sizeof(be->name), "memgold");
	return be;
}

/* ---- the fake file system ---- */

enum { OP_WRITE, OP_TRUNC, OP_PUNCH };
enum { D_CREATE, D_RENAME, D_UNLINK };
enum { FD_FREE, FD_FILE, FD_DIR, FD_PARENT };

#define MAXINO 64
#define MAXDENT 16
#define MAXFD 32

struct fop {
	int kind;
	uint64_t off, len;
	uint8_t *data;
};

struct finode {
	bool used;
	uint8_t *cur, *dur;
	size_t cur_len, dur_len;
	struct fop *ops;
	size_t nops, cap;
};

struct dent {
	char name[16];
	int ino;
};

struct dop {
	int kind;
	char a[16], b[16];
	int ino;
};

struct fakefs {
	bool dir_exists;
	struct finode ino[MAXINO];
	struct dent cur[MAXDENT], dur[MAXDENT];
	int ncur, ndur;
	struct dop dops[256];
	int ndops;
	struct { int kind, ino; } fd[MAXFD];
	uint64_t opcount, crash_at;     /* crash_at 0 = never */
	bool crashed;
	uint64_t rng;                   /* drives the power cut */
	int fail_fsync;                 /* >0: the Nth fsync from now fails, no crash */
	const char *enospc;             /* writes to files whose name starts so: -ENOSPC */
	uint64_t mutations;             /* write-type calls, to prove "nothing changed" */
};

static void resize(uint8_t **buf, size_t *len, size_t nlen)
{
	if (nlen > *len) {
		*buf = realloc(*buf, nlen ? nlen : 1);
		memset(*buf + *len, 0, nlen - *len);
	}
	*len = nlen;
}

/* Apply op to a content buffer; keep: per-sector mask function (NULL = all). */
static void apply_op(uint8_t **buf, size_t *len, const struct fop *op, uint64_t *rng)
{
	if (op->kind == OP_TRUNC) {
		resize(buf, len, op->off);
		return;
	}
	for (uint64_t s = op->off; s < op->off + op->len;) {
		uint64_t e = (s / SECT + 1) * SECT;
		if (e > op->off + op->len)
			e = op->off + op->len;
		if (!rng || rnd_below(rng, 2)) {
			if (op->kind == OP_WRITE) {
				if (e > *len)
					resize(buf, len, e);
				memcpy(*buf + s, op->data + (s - op->off), e - s);
			} else if (s < *len) {
				memset(*buf + s, 0, (e < *len ? e : *len) - s);
			}
		}
		s = e;
	}
}

static void clear_ops(struct finode *f)
{
	for (size_t i = 0; i < f->nops; i++)
		free(f->ops[i].data);
	f->nops = 0;
}

static void push_op(struct finode *f, int kind, uint64_t off, uint64_t len, const void *data)
{
	if (f->nops == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->ops = realloc(f->ops, f->cap * sizeof(*f->ops));
	}
	struct fop *op = &f->ops[f->nops++];
	op->kind = kind;
	op->off = off;
	op->len = len;
	op->data = NULL;
	if (data) {
		op->data = malloc(len ? len : 1);
		memcpy(op->data, data, len);
	}
}

static int dir_find(struct dent *d, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(d[i].name, name) == 0)
			return i;
	return -1;
}

/* Apply a directory operation to an entry table. */
static void apply_dop(struct dent *d, int *n, const struct dop *op)
{
	int i = dir_find(d, *n, op->a);
	if (op->kind == D_CREATE) {
		if (i < 0 && *n < MAXDENT) {
			snprintf(d[*n].name, sizeof(d[*n].name), "%s", op->a);
			d[(*n)++].ino = op->ino;
		}
	} else if (op->kind == D_UNLINK) {
		if (i >= 0)
			d[i] = d[--*n];
	} else if (i >= 0) {
		int j = dir_find(d, *n, op->b);
		int ino = d[i].ino;
		if (j >= 0) {
			d[j] = d[--*n];
			i = dir_find(d, *n, op->a);
		}
		snprintf(d[i].name, sizeof(d[i].name), "%s", op->b);
		d[i].ino = ino;
	}
}

static void free_inode(struct finode *f)
{
	clear_ops(f);
	free(f->ops);
	free(f->cur);
	free(f->dur);
	memset(f, 0, sizeof(*f));
}

/* Drop inodes nothing refers to any more. */
static void fs_gc(struct fakefs *fs)
{
	bool ref[MAXINO] = { false };
	for (int i = 0; i < fs->ncur; i++)
		ref[fs->cur[i].ino] = true;
	for (int i = 0; i < fs->ndur; i++)
		ref[fs->dur[i].ino] = true;
	for (int i = 0; i < fs->ndops; i++)
		if (fs->dops[i].kind == D_CREATE)
			ref[fs->dops[i].ino] = true;
	for (int i = 0; i < MAXFD; i++)
		if (fs->fd[i].kind == FD_FILE)
			ref[fs->fd[i].ino] = true;
	for (int i = 0; i < MAXINO; i++)
		if (fs->ino[i].used && !ref[i])
			free_inode(&fs->ino[i]);
}

/* The power cut: what was not synced survives partly, at random. */
static void power_cut(struct fakefs *fs)
{
	for (int i = 0; i < MAXINO; i++) {
		struct finode *f = &fs->ino[i];
		if (!f->used)
			continue;
		for (size_t k = 0; k < f->nops; k++) {
			uint64_t r = rnd_below(&fs->rng, 3);
			if (r == 1)
				apply_op(&f->dur, &f->dur_len, &f->ops[k], NULL);
			else if (r == 2)
				apply_op(&f->dur, &f->dur_len, &f->ops[k],
					 f->ops[k].kind == OP_TRUNC ? NULL : &fs->rng);
		}
		clear_ops(f);
	}
	int keep = (int)rnd_below(&fs->rng, (uint64_t)fs->ndops + 1);
	for (int k = 0; k < keep; k++)
		apply_dop(fs->dur, &fs->ndur, &fs->dops[k]);
	fs->ndops = 0;
	fs->crashed = true;
}

/* Power back on: the durable state is all there is. */
static void reboot(struct fakefs *fs)
{
	for (int i = 0; i < MAXINO; i++) {
		struct finode *f = &fs->ino[i];
		if (!f->used)
			continue;
		clear_ops(f);
		free(f->cur);
		f->cur = malloc(f->dur_len ? f->dur_len : 1);
		if (f->dur_len)
			memcpy(f->cur, f->dur, f->dur_len);
		f->cur_len = f->dur_len;
	}
	memcpy(fs->cur, fs->dur, sizeof(fs->cur));
	fs->ncur = fs->ndur;
	fs->ndops = 0;
	memset(fs->fd, 0, sizeof(fs->fd));
	fs->crashed = false;
	fs->crash_at = 0;
	fs->opcount = 0;
	fs_gc(fs);
}

static void fs_free_all(struct fakefs *fs)
{
	for (int i = 0; i < MAXINO; i++)
		if (fs->ino[i].used)
			free_inode(&fs->ino[i]);
}

/* Every call counts; at crash_at the power goes, and stays gone. */
static int tick(struct fakefs *fs)
{
	if (fs->crashed)
		return -EIO;
	if (fs->crash_at && ++fs->opcount == fs->crash_at) {
		power_cut(fs);
		return -EIO;
	}
	if (!fs->crash_at)
		fs->opcount++;
	return 0;
}

static struct finode *fd_file(struct fakefs *fs, int fd)
{
	if (fd < 0 || fd >= MAXFD || fs->fd[fd].kind != FD_FILE)
		return NULL;
	return &fs->ino[fs->fd[fd].ino];
}

static int new_fd(struct fakefs *fs, int kind, int ino)
{
	for (int i = 3; i < MAXFD; i++) {
		if (fs->fd[i].kind == FD_FREE) {
			fs->fd[i].kind = kind;
			fs->fd[i].ino = ino;
			return i;
		}
	}
	return -EMFILE;
}

static int f_open(void *ctx, int dirfd, const char *name, int flags, int mode)
{
	struct fakefs *fs = ctx;
	int rc = tick(fs);
	if (rc)
		return rc;
	if (flags & O_DIRECTORY) {
		if (strcmp(name, DIRPATH) != 0)
			return new_fd(fs, FD_PARENT, 0);
		return fs->dir_exists ? new_fd(fs, FD_DIR, 0) : -ENOENT;
	}
	if (dirfd < 0 || dirfd >= MAXFD || fs->fd[dirfd].kind != FD_DIR)
		return -EBADF;
	int i = dir_find(fs->cur, fs->ncur, name), ino;
	if (i < 0) {
		if (!(flags & O_CREAT))
			return -ENOENT;
		fs_gc(fs);
		for (ino = 0; ino < MAXINO && fs->ino[ino].used; ino++)
			;
		assert_true(ino < MAXINO);
		fs->ino[ino].used = true;
		struct dop op = { .kind = D_CREATE, .ino = ino };
		snprintf(op.a, sizeof(op.a), "%s", name);
		apply_dop(fs->cur, &fs->ncur, &op);
		assert_true(fs->ndops < 256);
		fs->dops[fs->ndops++] = op;
		fs->mutations++;
	} else {
		ino = fs->cur[i].ino;
		if ((flags & O_TRUNC) && fs->ino[ino].cur_len) {
			fs->ino[ino].cur_len = 0;
			push_op(&fs->ino[ino], OP_TRUNC, 0, 0, NULL);
			fs->mutations++;
		}
	}
	return new_fd(fs, FD_FILE, ino);
}

static int f_close(void *ctx, int fd)
{
	struct fakefs *fs = ctx;
	if (fd < 0 || fd >= MAXFD || fs->fd[fd].kind == FD_FREE)
		return -EBADF;
	fs->fd[fd].kind = FD_FREE;
	return 0;
}

static int f_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
	struct fakefs *fs = ctx;
	int rc = tick(fs);
	struct finode *f = fd_file(fs, fd);
	if (rc)
		return rc;
	if (!f)
		return -EBADF;
	if (off + len > f->cur_len)
		return -EIO;
	memcpy(buf, f->cur + off, len);
	return 0;
}

/* A full store for the files fs->enospc names (current directory names). */
static bool no_space_for(struct fakefs *fs, int fd)
{
	if (!fs->enospc || fd < 0 || fd >= MAXFD || fs->fd[fd].kind != FD_FILE)
		return false;
	for (int k = 0; k < fs->ncur; k++)
		if (fs->cur[k].ino == fs->fd[fd].ino &&
		    strncmp(fs->cur[k].name, fs->enospc, strlen(fs->enospc)) == 0)
			return true;
	return false;
}

static int f_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
	struct fakefs *fs = ctx;
	int rc = tick(fs);
	struct finode *f = fd_file(fs, fd);
	if (rc)
		return rc;
	if (!f)
		return -EBADF;
	if (no_space_for(fs, fd))
		return -ENOSPC;
	if (off + len > f->cur_len)
		resize(&f->cur, &f->cur_len, off + len);
	memcpy(f->cur + off, buf, len);
	push_op(f, OP_WRITE, off, len, buf);
	fs->mutations++;
	return 0;
}

static int f_fsync(void *ctx, int fd)
{
	struct fakefs *fs = ctx;
	int rc = tick(fs);
	if (rc)
		return rc;
	if (fs->fail_fsync && --fs->fail_fsync == 0)
		return -EIO;
	if (fd < 0 || fd >= MAXFD || fs->fd[fd].kind == FD_FREE)
		return -EBADF;
	if (fs->fd[fd].kind == FD_DIR) {
		for (int k = 0; k < fs->ndops; k++)
			apply_dop(fs->dur, &fs->ndur, &fs->dops[k]);
		fs->ndops = 0;
	} else if (fs->fd[fd].kind == FD_FILE) {
		struct finode *f = &fs->ino[fs->fd[fd].ino];
		for (size_t k = 0; k < f->nops; k++)
			apply_op(&f->dur, &f->dur_len, &f->ops[k], NULL);
		clear_ops(f);
	}
	return 0;
}

static int f_ftruncate(void *ctx, int fd, uint64_t len)
{
	struct fakefs *fs = ctx;
	int rc = tick(fs);
	struct finode *f = fd_file(fs, fd);
	if (rc)
		return rc;
	if (!f)
		return -EBADF;
	resize(&f->cur, &f->cur_len, len);
	push_op(f, OP_TRUNC, len, 0, NULL);
	fs->mutations++;
	return 0;
}

static int f_punch(void *ctx, int fd, uint64_t off, uint64_t len)
{
	struct fakefs *fs = ctx;
	int rc = tick(fs);
	struct finode *f = fd_file(fs, fd);
	if (rc)
		return rc;
	if (!f)
		return -EBADF;
	if (off < f->cur_len)
		memset(f->cur + off, 0, (off + len < f->cur_len ? off + len : f->cur_len) - off);
	push_op(f, OP_PUNCH, off, len, NULL);
	fs->mutations++;
	return 0;
}

static int f_renameat(void *ctx, int dirfd, const char *from, const char *to)
{
	struct fakefs *fs = ctx;
	int rc = tick(fs);
	if (rc)
		return rc;
	if (dir_find(fs->cur, fs->ncur, from) < 0)
		return -ENOENT;
	struct dop op = { .kind = D_RENAME };
	snprintf(op.a, sizeof(op.a), "%s", from);
	snprintf(op.b, sizeof(op.b), "%s", to);
	apply_dop(fs->cur, &fs->ncur, &op);
	assert_true(fs->ndops < 256);
	fs->dops[fs->ndops++] = op;
	fs->mutations++;
	return 0;
}

static int f_unlinkat(void *ctx, int dirfd, const char *name)
{
	struct fakefs *fs = ctx;
	int rc = tick(fs);
	if (rc)
		return rc;
	if (dir_find(fs->cur, fs->ncur, name) < 0)
		return -ENOENT;
	struct dop op = { .kind = D_UNLINK };
	snprintf(op.a, sizeof(op.a), "%s", name);
	apply_dop(fs->cur, &fs->ncur, &op);
	assert_true(fs->ndops < 256);
	fs->dops[fs->ndops++] = op;
	fs->mutations++;
	return 0;
}

static int f_fstat_size(void *ctx, int fd, uint64_t *size, uint64_t *allocated)
{
	struct fakefs *fs = ctx;
	int rc = tick(fs);
	struct finode *f = fd_file(fs, fd);
	if (rc)
		return rc;
	if (!f)
		return -EBADF;
	*size = f->cur_len;
	*allocated = 0;
	for (size_t p = 0; p < f->cur_len; p += 4096) {
		size_t n = f->cur_len - p < 4096 ? f->cur_len - p : 4096;
		for (size_t i = 0; i < n; i++) {
			if (f->cur[p + i]) {
				*allocated += 4096;
				break;
			}
		}
	}
	return 0;
}

static int f_mkdirat(void *ctx, int dirfd, const char *name, int mode)
{
	struct fakefs *fs = ctx;
	int rc = tick(fs);
	if (rc)
		return rc;
	if (fs->dir_exists)
		return -EEXIST;
	fs->dir_exists = true;
	return 0;
}

static int f_fs_free(void *ctx, int fd, uint64_t *avail)
{
	*avail = 1ull << 40;
	return 0;
}

static struct ovl_io fake_io(struct fakefs *fs)
{
	return (struct ovl_io){
		.open = f_open, .close = f_close, .pread = f_pread, .pwrite = f_pwrite,
		.fsync = f_fsync, .ftruncate = f_ftruncate, .punch = f_punch,
		.renameat = f_renameat, .unlinkat = f_unlinkat, .fstat_size = f_fstat_size,
		.mkdirat = f_mkdirat, .fs_free = f_fs_free, .ctx = fs,
	};
}

/* ---- the workload and its model ---- */

#define W_OPS 70
#define CAP (W_OPS + 4)

struct model {
	uint64_t nsect;
	uint32_t *cur;          /* current tag per sector */
	uint16_t *ncand;        /* candidates since the last completed flush */
	uint32_t *cand;         /* nsect * CAP */
};

static void model_init(struct model *m, uint64_t size)
{
	m->nsect = size / SECT;
	m->cur = calloc(m->nsect, sizeof(*m->cur));
	m->ncand = calloc(m->nsect, sizeof(*m->ncand));
	m->cand = calloc(m->nsect * CAP, sizeof(*m->cand));
	for (uint64_t s = 0; s < m->nsect; s++)
		m->ncand[s] = 1;        /* cand 0 = golden */
}

static void model_free(struct model *m)
{
	free(m->cur);
	free(m->ncand);
	free(m->cand);
}

static void model_add(struct model *m, uint64_t s, uint32_t tag)
{
	uint32_t *c = m->cand + s * CAP;
	for (int i = 0; i < m->ncand[s]; i++)
		if (c[i] == tag)
			return;
	assert_true(m->ncand[s] < CAP);
	c[m->ncand[s]++] = tag;
}

static void model_flushed(struct model *m)
{
	for (uint64_t s = 0; s < m->nsect; s++) {
		m->cand[s * CAP] = m->cur[s];
		m->ncand[s] = 1;
	}
}

struct run_cfg {
	uint64_t seed;
	uint64_t size;
	uint32_t bs;
	uint64_t ckpt;
};

static struct overlay_opts opts_for(const struct run_cfg *c, const struct ovl_io *io)
{
	return (struct overlay_opts){ .io = io, .base_id = "crash", .block_size = c->bs,
				      .checkpoint_bytes = c->ckpt };
}

/*
 * Run the workload of cfg on fs (fresh), with the model following.  Stops
 * at the first error (expected only after a crash).  Returns the number
 * of I/O calls made when no crash was scheduled.
 */
static uint64_t workload(struct fakefs *fs, const struct run_cfg *c, struct model *m, uint32_t epoch)
{
	struct ovl_io io = fake_io(fs);
	struct overlay_opts o = opts_for(c, &io);
	struct backend *golden = mem_golden(c->size);
	struct overlay *ov = NULL;
	uint64_t rng = c->seed * 1000003u + 17 + epoch * 7919u;
	uint8_t *buf = malloc(64 << 10);

	if (overlay_open(DIRPATH, golden, &o, &ov) < 0)
		goto out;
	struct backend *be = overlay_backend(ov);
	for (uint32_t i = 0; i < W_OPS && !fs->crashed; i++) {
		uint32_t tag = i + 2 + epoch * 1000;
		uint64_t r = rnd_below(&rng, 100);
		uint64_t s = rnd_below(&rng, m->nsect), n;
		uint64_t kind = rnd_below(&rng, 3);
		n = kind == 0 ? 1 + rnd_below(&rng, 3) : kind == 1 ? 1 + rnd_below(&rng, 32)
								    : 8 * (1 + rnd_below(&rng, 16));
		if (kind == 2)
			s &= ~7ull;
		if (s + n > m->nsect)
			n = m->nsect - s;
		int rc;
		if (r < 60 || r >= 92) {
			bool fua = r >= 92;
			tag_fill(buf, tag, s * SECT, n * SECT);
			for (uint64_t k = s; k < s + n; k++)
				model_add(m, k, tag);
			rc = be->ops->write(be, buf, s * SECT, n * SECT, fua);
			if (rc == 0) {
				for (uint64_t k = s; k < s + n; k++)
					m->cur[k] = tag;
				if (fua)
					model_flushed(m);
			}
		} else if (r < 75) {
			for (uint64_t k = s; k < s + n; k++)
				model_add(m, k, 1);
			rc = be->ops->unmap(be, s * SECT, n * SECT);
			if (rc == 0)
				for (uint64_t k = s; k < s + n; k++)
					m->cur[k] = 1;
		} else {
			rc = be->ops->flush(be);
			if (rc == 0)
				model_flushed(m);
		}
		if (rc < 0) {
			assert_true(fs->crashed);   /* no error without a power cut */
			break;
		}
	}
	int rc = overlay_close(ov);
	if (!fs->crashed) {
		assert_int_equal(rc, 0);
		model_flushed(m);               /* close flushes */
	}
out:
	backend_close(golden);
	free(buf);
	return fs->opcount;
}

/*
 * After a crash: the overlay must open (a crash is never corruption),
 * every sector must be one of its candidates, and the overlay must keep
 * working (write, flush, close, reopen).  Returns false on a violation.
 */
static bool verify(struct fakefs *fs, const struct run_cfg *c, struct model *m, uint64_t point)
{
	struct ovl_io io = fake_io(fs);
	struct overlay_opts o = opts_for(c, &io);
	struct backend *golden = mem_golden(c->size);
	struct overlay *ov = NULL;
	uint8_t *disk = malloc(c->size), exp[SECT];
	bool ok = true;
	int rc = overlay_open(DIRPATH, golden, &o, &ov);

	if (rc < 0) {
		print_error("seed %llu crash point %llu: reopen failed: %d\n",
			    (unsigned long long)c->seed, (unsigned long long)point, rc);
		ok = false;
		goto out;
	}
	struct backend *be = overlay_backend(ov);
	assert_int_equal(be->ops->read(be, disk, 0, c->size), 0);
	for (uint64_t s = 0; s < m->nsect && ok; s++) {
		bool hit = false;
		for (int k = 0; k < m->ncand[s] && !hit; k++) {
			tag_fill(exp, m->cand[s * CAP + k], s * SECT, SECT);
			hit = memcmp(exp, disk + s * SECT, SECT) == 0;
			if (hit)
				m->cur[s] = m->cand[s * CAP + k];   /* what survived */
		}
		if (!hit) {
			print_error("seed %llu crash point %llu: sector %llu reads none of its %d "
				    "possible contents\n", (unsigned long long)c->seed,
				    (unsigned long long)point, (unsigned long long)s, m->ncand[s]);
			ok = false;
		}
	}
	/* Still usable: a flushed write survives another power cut (it is
	 * appended to whatever log recovery left), and a clean close. */
	uint64_t s = (point * 37) % (m->nsect - 4);
	tag_fill(exp, 100000, s * SECT, SECT);
	assert_int_equal(be->ops->write(be, exp, s * SECT, SECT, false), 0);
	memcpy(disk + s * SECT, exp, SECT);
	assert_int_equal(be->ops->flush(be), 0);
	m->cur[s] = 100000;
	model_flushed(m);
	fs->crash_at = fs->opcount + 1;         /* nothing pending: keeps all */
	be->ops->flush(be);
	overlay_close(ov);
	reboot(fs);
	for (int round = 0; round < 2; round++) {
		ov = NULL;
		rc = overlay_open(DIRPATH, golden, &o, &ov);
		if (rc < 0) {
			print_error("seed %llu point %llu: reopen %d failed: %d\n",
				    (unsigned long long)c->seed, (unsigned long long)point,
				    round + 2, rc);
			ok = false;
			goto out;
		}
		if (round == 0)
			assert_int_equal(overlay_close(ov), 0);
	}
	uint8_t *again = malloc(c->size);
	be = overlay_backend(ov);
	assert_int_equal(be->ops->read(be, again, 0, c->size), 0);
	if (memcmp(again, disk, c->size) != 0) {
		print_error("seed %llu point %llu: content changed across a clean reopen\n",
			    (unsigned long long)c->seed, (unsigned long long)point);
		ok = false;
	}
	free(again);
	assert_int_equal(overlay_close(ov), 0);
out:
	backend_close(golden);
	free(disk);
	return ok;
}

/*
 * A second power cut while recovering: open (which may cut a torn log
 * tail and punch lost blocks) and close (which checkpoints), cut at a
 * random call.  Recovery writes nothing new, so the model is unchanged.
 */
static void recovery_crash(struct fakefs *fs, const struct run_cfg *c, uint64_t seed)
{
	struct ovl_io io = fake_io(fs);
	struct overlay_opts o = opts_for(c, &io);
	struct backend *golden = mem_golden(c->size);
	struct overlay *ov = NULL;

	fs->crash_at = 1 + rnd_below(&seed, 30);
	fs->rng = seed;
	if (overlay_open(DIRPATH, golden, &o, &ov) == 0)
		overlay_close(ov);
	if (!fs->crashed)
		power_cut(fs);
	reboot(fs);
	backend_close(golden);
}

static void test_crash_points(void **state)
{
	const int seeds = 32, per_seed = 6;
	int points = 0, failures = 0;
	enum log_level lvl = log_get_level();

	log_set_level((enum log_level)(LOG_ERR - 1));     /* the cuts log a lot */
	for (int sd = 0; sd < seeds; sd++) {
		struct run_cfg c = {
			.seed = (uint64_t)sd,
			.size = (1u << 20) + 3 * SECT,          /* short last block */
			.bs = (sd % 3 == 2) ? 16384 : 4096,
			.ckpt = (sd % 4 == 3) ? (64u << 10) : 600,
		};
		struct model m;
		struct fakefs *fs = calloc(1, sizeof(*fs));
		model_init(&m, c.size);
		uint64_t total = workload(fs, &c, &m, 0);   /* dry run: count I/O calls */
		fs_free_all(fs);
		free(fs);
		model_free(&m);
		assert_true(total > 50);

		uint64_t prng = (uint64_t)sd * 7777 + 1;
		for (int k = 0; k < per_seed; k++) {
			fs = calloc(1, sizeof(*fs));
			model_init(&m, c.size);
			/* Two epochs: the second workload runs on the recovered
			 * overlay and is cut again.  The first point of a seed
			 * falls inside creation. */
			for (uint32_t ep = 0; ep < 2; ep++) {
				uint64_t point = (k == 0 && ep == 0) ? 1 + rnd_below(&prng, 12)
								     : 1 + rnd_below(&prng, total);
				fs->crash_at = point;
				fs->opcount = 0;
				fs->rng = (uint64_t)sd * 1000 + (uint64_t)k * 10 + ep;
				workload(fs, &c, &m, ep);
				if (!fs->crashed)
					power_cut(fs);  /* point past the end: cut anyway */
				reboot(fs);
				if (k % 2 == 1)
					recovery_crash(fs, &c, prng + ep);
				if (!verify(fs, &c, &m, point))
					failures++;
				points++;
			}
			fs_free_all(fs);
			free(fs);
			model_free(&m);
		}
	}
	log_set_level(lvl);
	printf("crash simulation: %d crash points, %d failures\n", points, failures);
	assert_int_equal(failures, 0);
}

/* Build an overlay whose log holds three records (no checkpoint) and
 * return the fake fs after a power cut that kept everything synced. */
static struct fakefs *three_records(uint64_t *rec_off, bool with_map)
{
	struct fakefs *fs = calloc(1, sizeof(*fs));
	struct ovl_io io = fake_io(fs);
	struct overlay_opts o = { .io = &io, .base_id = "c", .checkpoint_bytes = 1 << 20 };
	struct backend *golden = mem_golden(1 << 20);
	struct overlay *ov = NULL;
	uint8_t buf[8192];

	assert_int_equal(overlay_open(DIRPATH, golden, &o, &ov), 0);
	struct backend *be = overlay_backend(ov);
	if (with_map) {
		/* a checkpoint first: ZERO and PRESENT blocks in the map */
		tag_fill(buf, 9, 200000, sizeof(buf));
		assert_int_equal(be->ops->write(be, buf, 200000 & ~511u, sizeof(buf), false), 0);
		assert_int_equal(be->ops->unmap(be, 512 << 10, 256 << 10), 0);
		assert_int_equal(overlay_close(ov), 0);
		assert_int_equal(overlay_open(DIRPATH, golden, &o, &ov), 0);
		be = overlay_backend(ov);
	}
	for (uint32_t i = 0; i < 3; i++) {
		tag_fill(buf, 10 + i, i * 65536, sizeof(buf));
		assert_int_equal(be->ops->write(be, buf, i * 65536, sizeof(buf), false), 0);
		assert_int_equal(be->ops->flush(be), 0);
	}
	/* power cut with nothing pending: exactly the synced state */
	enum log_level lvl = log_get_level();
	log_set_level((enum log_level)(LOG_ERR - 1));
	fs->crash_at = fs->opcount + 1;
	be->ops->flush(be);
	overlay_close(ov);
	log_set_level(lvl);
	backend_close(golden);
	reboot(fs);
	int li = dir_find(fs->dur, fs->ndur, "log");
	assert_true(li >= 0);
	struct finode *f = &fs->ino[fs->dur[li].ino];
	/* records: 64-byte header, then 3 of (16 + 16*runs + 8) bytes */
	uint64_t off = 64;
	for (int i = 0; i < 3; i++) {
		rec_off[i] = off;
		uint32_t nruns = (uint32_t)f->dur[off + 4] | (uint32_t)f->dur[off + 5] << 8;
		off += 16 + 16 * (uint64_t)nruns + 8;
	}
	rec_off[3] = off;
	assert_int_equal(off, f->dur_len);
	return fs;
}

static struct finode *file_of(struct fakefs *fs, const char *name)
{
	int i = dir_find(fs->dur, fs->ndur, name);
	assert_true(i >= 0);
	return &fs->ino[fs->dur[i].ino];
}

/* Opens with the fake fs: returns overlay_open's result; on success
 * checks which of the three writes are visible. */
static int open_and_count(struct fakefs *fs, int *visible)
{
	struct ovl_io io = fake_io(fs);
	struct overlay_opts o = { .io = &io, .base_id = "c", .checkpoint_bytes = 1 << 20 };
	struct backend *golden = mem_golden(1 << 20);
	struct overlay *ov = NULL;
	uint8_t buf[8192], exp[8192];
	int rc = overlay_open(DIRPATH, golden, &o, &ov);

	*visible = 0;
	if (rc == 0) {
		struct backend *be = overlay_backend(ov);
		for (uint32_t i = 0; i < 3; i++) {
			assert_int_equal(be->ops->read(be, buf, i * 65536, sizeof(buf)), 0);
			tag_fill(exp, 10 + i, i * 65536, sizeof(exp));
			if (memcmp(buf, exp, sizeof(buf)) == 0)
				(*visible)++;
			else
				assert_int_equal(*visible, (int)i);  /* a prefix survives */
		}
		assert_int_equal(overlay_close(ov), 0);
	}
	backend_close(golden);
	reboot(fs);
	return rc;
}

/* Open after damage: 0 or an error; reads everything when it opens. */
static int open_and_count_any(struct fakefs *fs, int *visible)
{
	struct ovl_io io = fake_io(fs);
	struct overlay_opts o = { .io = &io, .base_id = "c", .checkpoint_bytes = 1 << 20 };
	struct backend *golden = mem_golden(1 << 20);
	struct overlay *ov = NULL;
	uint8_t *buf = malloc(1 << 20);
	int rc = overlay_open(DIRPATH, golden, &o, &ov);

	*visible = 0;
	if (rc == 0) {
		struct backend *be = overlay_backend(ov);
		assert_int_equal(be->ops->read(be, buf, 0, 1 << 20), 0);
		assert_int_equal(be->ops->write(be, buf, 4096, 4096, true), 0);
		assert_int_equal(overlay_close(ov), 0);
	}
	free(buf);
	backend_close(golden);
	reboot(fs);
	return rc;
}

static void test_corrupt_log(void **state)
{
	uint64_t off[4];
	int vis;

	/* A flipped byte in record 1 or 2 (valid records follow): corrupt,
	 * and nothing is written. */
	for (int r = 0; r < 2; r++) {
		for (uint64_t at = 0; at < 40; at += 7) {
			struct fakefs *fs = three_records(off, false);
			struct finode *log = file_of(fs, "log");
			size_t len = log->dur_len;
			log->dur[off[r] + at] ^= 0x10;
			log->cur[off[r] + at] ^= 0x10;
			fs->mutations = 0;
			assert_int_equal(open_and_count(fs, &vis), -EBADMSG);
			assert_int_equal(fs->mutations, 0);
			assert_int_equal(file_of(fs, "log")->dur_len, len);
			fs_free_all(fs);
			free(fs);
		}
	}
	/* A flipped byte in the last record: indistinguishable from a torn
	 * append, so it is dropped and the overlay opens with two writes. */
	struct fakefs *fs = three_records(off, false);
	struct finode *log = file_of(fs, "log");
	log->dur[off[2] + 20] ^= 1;
	log->cur[off[2] + 20] ^= 1;
	assert_int_equal(open_and_count(fs, &vis), 0);
	assert_int_equal(vis, 2);           /* (close checkpointed: log now empty) */
	fs_free_all(fs);
	free(fs);
	/* Torn tails of every length: half a record, zeros, a lone magic. */
	for (uint64_t cut = off[2] + 1; cut < off[3]; cut += 5) {
		fs = three_records(off, false);
		log = file_of(fs, "log");
		log->dur_len = log->cur_len = cut;
		assert_int_equal(open_and_count(fs, &vis), 0);
		assert_int_equal(vis, 2);
		fs_free_all(fs);
		free(fs);
	}
	fs = three_records(off, false);
	log = file_of(fs, "log");
	resize(&log->dur, &log->dur_len, off[3] + 4096);
	resize(&log->cur, &log->cur_len, off[3] + 4096);
	assert_int_equal(open_and_count(fs, &vis), 0);
	assert_int_equal(vis, 3);
	fs_free_all(fs);
	free(fs);
	/* A run past the disk end under a valid checksum is no torn append:
	 * corrupt even in the last record. */
	for (int r = 0; r < 3; r += 2) {
		fs = three_records(off, false);
		log = file_of(fs, "log");
		uint8_t *rec = log->dur + off[r];
		uint32_t nruns = (uint32_t)rec[4] | (uint32_t)rec[5] << 8 | (uint32_t)rec[6] << 16 |
				 (uint32_t)rec[7] << 24;
		rec[16] = 0;                    /* first block of run 0 := 256 */
		rec[17] = 1;
		digest_put(rec + 16 + 16 * nruns, crc32c(rec, 16 + 16 * nruns));
		memcpy(log->cur, log->dur, log->dur_len);
		assert_int_equal(open_and_count(fs, &vis), -EBADMSG);
		fs_free_all(fs);
		free(fs);
	}
}

/*
 * Fuzz the metadata parsers: random byte flips, runs of garbage and
 * truncations in info, map and log.  Opening must give 0 or -EBADMSG
 * (never crash, never another error), and an overlay that opens must
 * read and close cleanly.
 */
static void test_fuzz_meta(void **state)
{
	const char *files[] = { "info", "map", "log" };
	uint64_t off[4], seed = 99;
	int opened = 0, refused = 0;
	enum log_level lvl = log_get_level();

	log_set_level((enum log_level)(LOG_ERR - 1));
	for (int it = 0; it < 400; it++) {
		struct fakefs *fs = three_records(off, true);
		struct finode *f = file_of(fs, files[rnd_below(&seed, 3)]);
		int kind = (int)rnd_below(&seed, 4);
		if (kind == 3 && f->dur_len > 1) {
			f->dur_len = 1 + rnd_below(&seed, f->dur_len - 1);
		} else {
			int n = kind == 2 ? 1 + (int)rnd_below(&seed, 64) : 1 + (int)rnd_below(&seed, 3);
			uint64_t at = rnd_below(&seed, f->dur_len);
			for (int k = 0; k < n; k++) {
				uint64_t p = kind == 2 ? at + (uint64_t)k : rnd_below(&seed, f->dur_len);
				if (p < f->dur_len)
					f->dur[p] = kind == 2 ? (uint8_t)rnd_next(&seed)
							      : f->dur[p] ^ (uint8_t)(1u << rnd_below(&seed, 8));
			}
		}
		f->cur_len = 0;
		resize(&f->cur, &f->cur_len, f->dur_len);
		memcpy(f->cur, f->dur, f->dur_len);
		int vis, rc = open_and_count_any(fs, &vis);
		if (rc == 0)
			opened++;
		else if (rc == -EBADMSG)
			refused++;
		else
			fail_msg("fuzz iteration %d: open returned %d", it, rc);
		fs_free_all(fs);
		free(fs);
	}
	log_set_level(lvl);
	printf("metadata fuzz: %d opened (damage in a dropped tail or unused bytes), %d refused\n",
	       opened, refused);
	assert_true(refused > opened);
}

/* A failed sync makes the overlay refuse writes and flushes; reads work. */
static void test_sticky_error(void **state)
{
	struct fakefs *fs = calloc(1, sizeof(*fs));
	struct ovl_io io = fake_io(fs);
	struct overlay_opts o = { .io = &io, .base_id = "s" };
	struct backend *golden = mem_golden(1 << 20);
	struct overlay *ov = NULL;
	uint8_t buf[4096], exp[4096];

	assert_int_equal(overlay_open(DIRPATH, golden, &o, &ov), 0);
	struct backend *be = overlay_backend(ov);
	tag_fill(buf, 5, 0, sizeof(buf));
	assert_int_equal(be->ops->write(be, buf, 0, sizeof(buf), false), 0);
	fs->fail_fsync = 1;
	assert_int_equal(be->ops->flush(be), -EIO);
	assert_int_equal(be->ops->write(be, buf, 8192, sizeof(buf), false), -EIO);
	assert_int_equal(be->ops->unmap(be, 0, 4096), -EIO);
	assert_int_equal(be->ops->flush(be), -EIO);
	assert_int_equal(be->ops->read(be, exp, 0, sizeof(exp)), 0);
	assert_memory_equal(buf, exp, sizeof(buf));
	assert_int_equal(be->ops->read(be, exp, 8192, sizeof(exp)), 0);
	tag_fill(buf, 0, 8192, sizeof(buf));
	assert_memory_equal(buf, exp, sizeof(buf));
	assert_int_equal(overlay_close(ov), -EIO);
	backend_close(golden);
	fs_free_all(fs);
	free(fs);
}

/*
 * A full store while flushing is not an I/O error: the flush fails with
 * -ENOSPC and nothing changed, the overlay keeps working (no sticky
 * error), and once there is space the same changes are flushed; after a
 * reopen every write flushed then is there.  Also when only the
 * checkpoint's .tmp files find no space: the flush falls back to the log.
 */
static void test_flush_enospc_retry(void **state)
{
	struct fakefs *fs = calloc(1, sizeof(*fs));
	struct ovl_io io = fake_io(fs);
	struct overlay_opts o = { .io = &io, .base_id = "n", .checkpoint_bytes = 64 };
	struct backend *golden = mem_golden(1 << 20);
	struct overlay *ov = NULL;
	uint8_t buf[4096], got[4096];
	const char *what;

	(void)state;
	assert_int_equal(overlay_open(DIRPATH, golden, &o, &ov), 0);
	struct backend *be = overlay_backend(ov);
	tag_fill(buf, 1, 0, sizeof(buf));
	assert_int_equal(be->ops->write(be, buf, 0, sizeof(buf), false), 0);
	assert_int_equal(be->ops->flush(be), 0);

	/* the log (and any checkpoint) finds no space */
	tag_fill(buf, 2, 8192, sizeof(buf));
	assert_int_equal(be->ops->write(be, buf, 8192, sizeof(buf), false), 0);
	fs->enospc = "log";
	assert_int_equal(be->ops->flush(be), -ENOSPC);
	assert_int_equal(overlay_error(ov, &what), 0);
	tag_fill(buf, 3, 16384, sizeof(buf));
	assert_int_equal(be->ops->write(be, buf, 16384, sizeof(buf), false), 0);
	assert_int_equal(be->ops->read(be, got, 8192, sizeof(got)), 0);
	tag_fill(buf, 2, 8192, sizeof(buf));
	assert_memory_equal(buf, got, sizeof(got));
	/* only the checkpoint's temporary files find no space: the log takes it */
	fs->enospc = "map.tmp";
	assert_int_equal(be->ops->flush(be), 0);
	assert_int_equal(overlay_error(ov, &what), 0);
	tag_fill(buf, 4, 24576, sizeof(buf));
	assert_int_equal(be->ops->write(be, buf, 24576, sizeof(buf), false), 0);
	fs->enospc = NULL;
	assert_int_equal(be->ops->flush(be), 0);
	assert_int_equal(overlay_close(ov), 0);

	assert_int_equal(overlay_open(DIRPATH, golden, &o, &ov), 0);
	be = overlay_backend(ov);
	for (int k = 0; k < 4; k++) {
		assert_int_equal(be->ops->read(be, got, (uint64_t)k * 8192, sizeof(got)), 0);
		tag_fill(buf, (uint32_t)k + 1, (uint64_t)k * 8192, sizeof(buf));
		assert_memory_equal(buf, got, sizeof(got));
	}
	assert_int_equal(overlay_close(ov), 0);
	backend_close(golden);
	fs_free_all(fs);
	free(fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_enospc_retry),
		cmocka_unit_test(test_sticky_error),
		cmocka_unit_test(test_corrupt_log),
		cmocka_unit_test(test_fuzz_meta),
		cmocka_unit_test(test_crash_points),
	};
	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
