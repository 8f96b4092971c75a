/*
 * fuzz_overlay_meta.c - libFuzzer harness: the overlay metadata loader
 * (overlay_meta.c: info, map checkpoint, log replay, torn tails, old
 * logs; overlay_map.c: ovl_map_load) and what an open overlay does with
 * the map it loaded (reads, writes, unmaps, flushes, the checkpoint of
 * close, a reopen).
 *
 * No disk I/O: an in-memory file layer (struct ovl_io) presents the input
 * as the overlay directory, over an in-memory golden image whose bytes
 * are a function of their offset.
 *
 * Input (all integers little-endian):
 *   0  u8  fix: checksums the harness recomputes before the open, so the
 *          fuzzer gets past them: 1 info, 2 map (header, body and body
 *          length), 4 log header, 8 log records; 16 data preallocated
 *          (every byte counts as allocated: init_space punches), 32 data
 *          of the wrong size, 64 punch unsupported, 128 mkdir creates
 *   1  u8  opt: bits 0-1 G of a new overlay (512, 4K, 64K, 1M); 4 tiny
 *          checkpoint threshold; 8 quota 64 KiB; 16 free-space floor
 *          (store nearly full); bits 5-6 base_id (0/3 the one in info,
 *          1 another one, 2 NULL); 128 golden answers block_status
 *   2  u8  fault: the Nth file operation from the read-write open on
 *          fails (0 = none), see byte 7
 *   3  u16 golden size in 512-byte units minus 1, used when info does
 *          not give a size of 1..32 MiB
 *   5  u8  files present: 1 info, 2 map, 4 log, 8 data
 *   6  u8  where the 64 KiB window of the operations starts
 *   7  u8  fault mode: 1 only the Nth operation fails (else it and all
 *          after it), 2 with -ENOSPC (else -EIO)
 *   8  then for info, map, log (when present): u16 length + bytes
 *      then operations, 4 bytes each: kind, u16 offset, length (see ops)
 *
 * What must hold (else abort): the read-only load (a frozen layer's,
 * which must change nothing) and the read-write open agree on the result
 * and on every block's state; an open fails only with -EBADMSG or
 * -ESTALE (or the injected error) and then changed nothing; the
 * present counter matches the map; data read back is what was written
 * or unmapped; close succeeds without a fault; the closed overlay always
 * reopens and, when it closed cleanly, holds every write; no file or
 * memory is leaked, ASan/UBSan stay quiet.
 *
 * Seeds: PRISTINE_FUZZ_SEEDS=DIR build/fuzz/fuzz_overlay_meta writes the
 * seed corpus (overlays made by the real code over this file layer) into
 * DIR and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"
#include "storage/overlay_int.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define DIRPATH    "/fuzz/ovl"
#define PAGE       4096u
#define MAX_FILES  16
#define MAX_FDS    32
#define FD_BASE    100
#define MAX_FSIZE  (64ull << 20)
#define MAX_GOLDEN (32ull << 20)
#define WIN        (64u << 10)
#define WIN_SECT   (WIN / 512)

#define FIX_INFO    0x01
#define FIX_MAP     0x02
#define FIX_LOGHDR  0x04
#define FIX_RECS    0x08
#define DATA_PREALLOC 0x10
#define DATA_BADSIZE  0x20
#define NO_PUNCH    0x40
#define MKDIR_NEW   0x80

#define OPT_TINY_CKPT 0x04
#define OPT_QUOTA     0x08
#define OPT_FLOOR     0x10
#define OPT_BSTATUS   0x80

/* ---- an in-memory directory ------------------------------------------ */

/* Page sentinels: INIT = the file's initial content (fill byte, counted
 * as allocated when prealloc), HOLE = zeros, not allocated. */
static uint8_t init_obj, hole_obj;
#define P_INIT (&init_obj)
#define P_HOLE (&hole_obj)

struct mfile {
	bool used, linked;
	char name[16];
	int refs;                 /* open fds */
	uint64_t size;
	uint8_t **pages;          /* ceil(size / PAGE) entries */
	size_t npages;
	uint8_t fill;
	bool prealloc;
};

struct mfd {
	int kind;                 /* 0 free, 1 file, 2 directory */
	int file;
	bool rdonly;
};

static struct {
	struct mfile f[MAX_FILES];
	struct mfd fd[MAX_FDS];
	bool mkdir_new, no_punch;
	uint64_t fs_avail;
	unsigned ops;             /* counted while fault_at != 0 */
	unsigned fault_at;
	bool fault_once;          /* only the fault_at-th fails, not all after it */
	int fault_err;            /* -EIO or -ENOSPC */
	bool faulted;
	bool forbid;              /* read-only load: any change aborts */
	unsigned changes;         /* creates, writes, truncates, renames... */
} fs;

static void change(void)
{
	if (fs.forbid)
		abort();              /* a frozen layer's load wrote something */
	fs.changes++;
}

/* The injected fault: true when this operation must fail. */
static bool fault(void)
{
	if (!fs.fault_at)
		return false;
	fs.ops++;
	if (fs.ops == fs.fault_at || (!fs.fault_once && fs.ops > fs.fault_at)) {
		fs.faulted = true;
		return true;
	}
	return false;
}

static void page_free(uint8_t *p)
{
	if (p != P_INIT && p != P_HOLE)
		free(p);
}

static void file_drop(struct mfile *f)
{
	for (size_t i = 0; i < f->npages; i++)
		page_free(f->pages[i]);
	free(f->pages);
	memset(f, 0, sizeof(*f));
}

/* Free the file if nothing names or holds it. */
static void file_release(struct mfile *f)
{
	if (f->used && !f->linked && f->refs == 0)
		file_drop(f);
}

static int file_find(const char *name)
{
	for (int i = 0; i < MAX_FILES; i++)
		if (fs.f[i].used && fs.f[i].linked && strcmp(fs.f[i].name, name) == 0)
			return i;
	return -1;
}

static int file_new(const char *name)
{
	if (strlen(name) >= sizeof(fs.f[0].name))
		return -ENAMETOOLONG;
	for (int i = 0; i < MAX_FILES; i++) {
		if (!fs.f[i].used) {
			memset(&fs.f[i], 0, sizeof(fs.f[i]));
			fs.f[i].used = fs.f[i].linked = true;
			snprintf(fs.f[i].name, sizeof(fs.f[i].name), "%s", name);
			return i;
		}
	}
	return -ENOSPC;
}

/* Resize f: new pages are holes; bytes past a shrunk end are dropped. */
static int file_resize(struct mfile *f, uint64_t size)
{
	size_t np = (size_t)((size + PAGE - 1) / PAGE);

	if (size > MAX_FSIZE)
		return -EFBIG;
	if (size < f->size && size % PAGE && f->pages[size / PAGE] != P_HOLE) {
		uint8_t *p = f->pages[size / PAGE];
		if (p == P_INIT) {
			p = malloc(PAGE);
			if (!p)
				return -ENOMEM;
			memset(p, f->fill, PAGE);
			f->pages[size / PAGE] = p;
		}
		memset(p + size % PAGE, 0, PAGE - size % PAGE);
	}
	for (size_t i = np; i < f->npages; i++)
		page_free(f->pages[i]);
	if (np > f->npages) {
		uint8_t **n = realloc(f->pages, np * sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (size_t i = f->npages; i < np; i++)
			n[i] = P_HOLE;
		f->pages = n;
	}
	f->npages = np;
	f->size = size;
	return 0;
}

static void file_read(const struct mfile *f, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		size_t in = off % PAGE, n = PAGE - in < len ? PAGE - in : len;
		const uint8_t *p = f->pages[off / PAGE];
		if (p == P_INIT)
			memset(buf, f->fill, n);
		else if (p == P_HOLE)
			memset(buf, 0, n);
		else
			memcpy(buf, p + in, n);
		buf += n;
		off += n;
		len -= n;
	}
}

static int file_write(struct mfile *f, const uint8_t *buf, size_t len, uint64_t off)
{
	int rc;

	if (off > MAX_FSIZE || len > MAX_FSIZE - off)
		return -EFBIG;
	if (off + len > f->size && (rc = file_resize(f, off + len)) < 0)
		return rc;
	while (len) {
		size_t in = off % PAGE, n = PAGE - in < len ? PAGE - in : len;
		uint8_t *p = f->pages[off / PAGE];
		if (p == P_INIT || p == P_HOLE) {
			uint8_t *np = malloc(PAGE);
			if (!np)
				return -ENOMEM;
			memset(np, p == P_INIT ? f->fill : 0, PAGE);
			f->pages[off / PAGE] = p = np;
		}
		memcpy(p + in, buf, n);
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static struct mfd *getfd(int fd)
{
	if (fd < FD_BASE || fd >= FD_BASE + MAX_FDS || !fs.fd[fd - FD_BASE].kind)
		abort();              /* the overlay used an fd it does not hold */
	return &fs.fd[fd - FD_BASE];
}

static struct mfile *getfile(int fd)
{
	struct mfd *d = getfd(fd);
	if (d->kind != 1)
		abort();
	return &fs.f[d->file];
}

static int fd_new(int kind, int file, bool rdonly)
{
	for (int i = 0; i < MAX_FDS; i++) {
		if (!fs.fd[i].kind) {
			fs.fd[i] = (struct mfd){ kind, file, rdonly };
			if (kind == 1)
				fs.f[file].refs++;
			return FD_BASE + i;
		}
	}
	return -EMFILE;
}

static int m_open(void *ctx, int dirfd, const char *name, int flags, int mode)
{
	(void)ctx; (void)mode;
	if (fault())
		return fs.fault_err;
	if (dirfd == AT_FDCWD) {
		if (!(flags & O_DIRECTORY) || (flags & (O_CREAT | O_TRUNC)))
			abort();
		return fd_new(2, -1, true);
	}
	if (getfd(dirfd)->kind != 2 || (flags & O_DIRECTORY))
		abort();
	int i = file_find(name);
	if (i < 0) {
		if (!(flags & O_CREAT))
			return -ENOENT;
		change();
		i = file_new(name);
		if (i < 0)
			return i;
	} else if (flags & O_TRUNC) {
		change();
		int rc = file_resize(&fs.f[i], 0);
		if (rc < 0)
			return rc;
	}
	int fd = fd_new(1, i, (flags & O_ACCMODE) == O_RDONLY);
	if (fd < 0)
		file_release(&fs.f[i]);
	return fd;
}

static int m_close(void *ctx, int fd)
{
	struct mfd *d = getfd(fd);

	(void)ctx;
	if (d->kind == 1) {
		fs.f[d->file].refs--;
		file_release(&fs.f[d->file]);
	}
	d->kind = 0;
	return 0;
}

static int m_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
	struct mfile *f = getfile(fd);

	(void)ctx;
	if (fault())
		return fs.fault_err;
	if (off > f->size || len > f->size - off)
		return -EIO;          /* what pread_full says of a short read */
	file_read(f, buf, len, off);
	return 0;
}

static int m_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
	struct mfile *f = getfile(fd);

	(void)ctx;
	if (getfd(fd)->rdonly)
		abort();
	if (fault())
		return fs.fault_err;
	change();
	return file_write(f, buf, len, off);
}

static int m_fsync(void *ctx, int fd)
{
	(void)ctx;
	getfd(fd);
	return fault() ? fs.fault_err : 0;
}

static int m_ftruncate(void *ctx, int fd, uint64_t len)
{
	struct mfile *f = getfile(fd);

	(void)ctx;
	if (getfd(fd)->rdonly)
		abort();
	if (fault())
		return fs.fault_err;
	change();
	return file_resize(f, len);
}

static int m_punch(void *ctx, int fd, uint64_t off, uint64_t len)
{
	struct mfile *f = getfile(fd);

	(void)ctx;
	if (getfd(fd)->rdonly)
		abort();
	if (fault())
		return fs.fault_err;
	if (fs.no_punch)
		return -EOPNOTSUPP;
	change();
	if (off >= f->size)
		return 0;
	if (len > f->size - off)
		len = f->size - off;
	while (len) {
		size_t in = off % PAGE, n = PAGE - in < len ? (size_t)(PAGE - in) : (size_t)len;
		uint8_t **p = &f->pages[off / PAGE];
		if (n == PAGE) {
			page_free(*p);
			*p = P_HOLE;
		} else if (*p != P_HOLE) {
			if (*p == P_INIT) {
				uint8_t *np = malloc(PAGE);
				if (!np)
					return -ENOMEM;
				memset(np, f->fill, PAGE);
				*p = np;
			}
			memset(*p + in, 0, n);
		}
		off += n;
		len -= n;
	}
	return 0;
}

static int m_renameat(void *ctx, int dirfd, const char *from, const char *to)
{
	(void)ctx;
	getfd(dirfd);
	if (fault())
		return fs.fault_err;
	int i = file_find(from), j = file_find(to);
	if (i < 0)
		return -ENOENT;
	change();
	if (j >= 0 && j != i) {
		fs.f[j].linked = false;
		file_release(&fs.f[j]);
	}
	snprintf(fs.f[i].name, sizeof(fs.f[i].name), "%s", to);
	return 0;
}

static int m_unlinkat(void *ctx, int dirfd, const char *name)
{
	(void)ctx;
	getfd(dirfd);
	if (fault())
		return fs.fault_err;
	int i = file_find(name);
	if (i < 0)
		return -ENOENT;
	change();
	fs.f[i].linked = false;
	file_release(&fs.f[i]);
	return 0;
}

static int m_fstat_size(void *ctx, int fd, uint64_t *size, uint64_t *allocated)
{
	struct mfile *f = getfile(fd);
	uint64_t a = 0;

	(void)ctx;
	if (fault())
		return fs.fault_err;
	for (size_t i = 0; i < f->npages; i++)
		if (f->pages[i] != P_HOLE && (f->pages[i] != P_INIT || f->prealloc))
			a += PAGE;
	*size = f->size;
	*allocated = a;
	return 0;
}

static int m_mkdirat(void *ctx, int dirfd, const char *name, int mode)
{
	(void)ctx; (void)dirfd; (void)name; (void)mode;
	if (fault())
		return fs.fault_err;
	if (!fs.mkdir_new)
		return -EEXIST;
	fs.mkdir_new = false;
	change();
	return 0;
}

static int m_fs_free(void *ctx, int fd, uint64_t *avail)
{
	(void)ctx;
	getfd(fd);
	if (fault())
		return fs.fault_err;
	*avail = fs.fs_avail;
	return 0;
}

static const struct ovl_io mem_io = {
	.open = m_open, .close = m_close, .pread = m_pread, .pwrite = m_pwrite,
	.fsync = m_fsync, .ftruncate = m_ftruncate, .punch = m_punch,
	.renameat = m_renameat, .unlinkat = m_unlinkat, .fstat_size = m_fstat_size,
	.mkdirat = m_mkdirat, .fs_free = m_fs_free,
};

static void fs_reset(void)
{
	for (int i = 0; i < MAX_FILES; i++)
		if (fs.f[i].used)
			file_drop(&fs.f[i]);
	memset(&fs, 0, sizeof(fs));
}

static bool fds_open(void)
{
	for (int i = 0; i < MAX_FDS; i++)
		if (fs.fd[i].kind)
			return true;
	return false;
}

/* Put a whole file from bytes (the harness's setup: not a change). */
static int fs_put(const char *name, const uint8_t *buf, size_t len)
{
	int i = file_new(name);
	if (i < 0 || file_write(&fs.f[i], buf, len, 0) < 0)
		abort();
	return i;
}

/* Copy of a named file's bytes (malloc'd, caller frees), or NULL. */
static uint8_t *fs_get(const char *name, size_t *len)
{
	int i = file_find(name);
	if (i < 0)
		return NULL;
	uint8_t *b = malloc(fs.f[i].size ? fs.f[i].size : 1);
	if (!b)
		abort();
	file_read(&fs.f[i], b, fs.f[i].size, 0);
	*len = fs.f[i].size;
	return b;
}

/* ---- the golden image: byte = f(offset), read-only ------------------- */

static uint8_t gold_byte(uint64_t o)
{
	return (uint8_t)((o >> 9) * 151u + (o & 511) * 7u + 3u);
}

static int g_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	if (off > be->size || len > be->size - off)
		abort();
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = gold_byte(off + i);
	return 0;
}

static int g_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	(void)be; (void)buf; (void)off; (void)len; (void)fua;
	abort();                  /* I4: the golden image is only ever read */
}

static int g_flush(struct backend *be) { (void)be; return 0; }
static void g_close(struct backend *be) { (void)be; }

/* Mapped in alternate 64 KiB stretches. */
static int g_status(struct backend *be, uint64_t off, uint64_t len, uint64_t *run, bool *mapped)
{
	if (len == 0 || off > be->size || len > be->size - off)
		abort();
	uint64_t end = (off | 0xffff) + 1;
	*run = end - off < len ? end - off : len;
	*mapped = (off >> 16) & 1;
	return 0;
}

static const struct backend_ops gold_ops = {
	.read = g_read, .write = g_write, .flush = g_flush, .close = g_close,
};
static const struct backend_ops gold_ops_bs = {
	.read = g_read, .write = g_write, .flush = g_flush, .close = g_close,
	.block_status = g_status,
};

/* ---- checksum fix-ups -------------------------------------------------- */

static void fix_info(uint8_t *p, size_t len)
{
	if (len == 512)
		ovl_put32(p + 508, crc32c(p, 508));
}

static void fix_map(uint8_t *p, size_t len)
{
	if (len < 64)
		return;
	ovl_put64(p + 40, len - 64);
	ovl_put32(p + 36, crc32c(p + 64, len - 64));
	ovl_put32(p + 60, crc32c(p, 60));
}

static void fix_log(uint8_t *p, size_t len, bool hdr, bool recs)
{
	if (len < OVL_LOG_HDR)
		return;
	if (hdr)
		ovl_put32(p + 60, crc32c(p, 60));
	if (!recs)
		return;
	for (size_t o = OVL_LOG_HDR; len - o >= 24;) {
		uint64_t n = ovl_get32(p + o + 4);
		if (ovl_get32(p + o) != 0x52444552u || n == 0 || n > (len - o - 24) / 16)
			break;
		size_t body = 16 + (size_t)n * 16;
		ovl_put32(p + o + body, crc32c(p + o, body));
		o += body + 8;
	}
}

/* ---- the run ------------------------------------------------------------ */

struct shadow {
	uint64_t base;            /* window start */
	uint8_t buf[WIN];
	bool known[WIN_SECT];
};

static struct shadow sh;

/* A write of src (NULL: an unmap, zeros) at window offset off returned
 * rc: the shadow now knows the range, or - refused for lack of space, or
 * failed under an injected fault - no longer knows what it holds.  Any
 * other outcome is a bug. */
static void shadow_done(int rc, uint64_t off, size_t len, const uint8_t *src)
{
	if (rc == 0) {
		if (src)
			memcpy(sh.buf + off, src, len);
		else
			memset(sh.buf + off, 0, len);
		memset(sh.known + off / 512, 1, len / 512);
	} else if (rc == -ENOSPC || (rc == -EIO && fs.faulted)) {
		memset(sh.known + off / 512, 0, len / 512);
	} else {
		abort();
	}
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned tag)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 13u + tag * 101u + 1u);
}

/* Read [off, off+len) of be and compare it with what the shadow knows. */
static int check_read(struct backend *be, uint64_t off, size_t len, uint8_t *buf)
{
	int rc = be->ops->read(be, buf, off, len);
	if (rc < 0)
		return rc;
	for (size_t s = 0; s < len / 512; s++) {
		uint64_t o = off + s * 512 - sh.base;
		if (sh.known[o / 512] && memcmp(buf + s * 512, sh.buf + o, 512) != 0)
			abort();          /* reads back other than what was written */
	}
	return 0;
}

/*
 * Operations on the open overlay, 4 input bytes each: kind % 8 (0 read,
 * 1 write, 2 FUA write, 3 unmap, 4 flush, 5 block_status, 6 read or write
 * anywhere, 7 write of zeros), u16 offset in 512-byte sectors of the
 * window (or 1/65536ths of the disk for kind 6), sectors - 1 (% 64).
 */
static void run_ops(struct overlay *ov, const uint8_t *p, size_t n, uint64_t size)
{
	struct backend *be = overlay_backend(ov);
	uint64_t wlen = size - sh.base < WIN ? size - sh.base : WIN;
	static uint8_t buf[64 * 512];

	for (size_t k = 0; k + 4 <= n && k / 4 < 64; k += 4) {
		unsigned kind = p[k] % 8;
		uint64_t off = (uint64_t)ovl_get16(p + k + 1) * 512 % (wlen & ~511ull ? wlen & ~511ull : 512);
		size_t len = (size_t)(p[k + 3] % 64 + 1) * 512;
		int rc;

		if (kind == 6) {
			/* anywhere on the disk: a read, or (bit 6 of the length
			 * byte) a write the shadow forgets where it overlaps */
			off = size / 65536 * ovl_get16(p + k + 1);
			len = len < size - off ? len : (size_t)(size - off);
			if (p[k + 3] & 64) {
				fill_pattern(buf, len, (unsigned)k);
				rc = be->ops->write(be, buf, off, len, false);
				if (rc < 0 && rc != -ENOSPC && !(rc == -EIO && fs.faulted))
					abort();
				for (uint64_t o = off / 512 * 512; o < off + len; o += 512)
					if (o >= sh.base && o - sh.base < WIN)
						sh.known[(o - sh.base) / 512] = false;
			} else {
				rc = be->ops->read(be, buf, off, len);
				if (rc < 0 && !fs.faulted)
					abort();
			}
			continue;
		}
		if (wlen < 512)
			return;           /* no whole sector in the window */
		if (len > (wlen & ~511ull) - off)
			len = (size_t)((wlen & ~511ull) - off);
		uint64_t abs = sh.base + off;
		switch (kind) {
		case 0:
			rc = check_read(be, abs, len, buf);
			if (rc < 0 && !fs.faulted)
				abort();
			break;
		case 1:
		case 2:
		case 7:
			if (kind == 7)
				memset(buf, 0, len);
			else
				fill_pattern(buf, len, (unsigned)k);
			shadow_done(be->ops->write(be, buf, abs, len, kind == 2), off, len, buf);
			break;
		case 3:
			shadow_done(be->ops->unmap(be, abs, len), off, len, NULL);
			break;
		case 4:
			rc = be->ops->flush(be);
			if (rc < 0 && !fs.faulted)
				abort();
			break;
		case 5: {
			uint64_t run = 0;
			bool mapped;
			rc = be->ops->block_status(be, abs, len, &run, &mapped);
			if (rc < 0 || run < 1 || run > len)
				abort();
			break;
		}
		}
	}
}

/* Every block's state, the present count and the generation agree. */
static void same_maps(const struct overlay *a, const struct overlay *b)
{
	if (a->nblocks != b->nblocks || a->bs != b->bs || a->gen != b->gen ||
	    a->map.present != b->map.present)
		abort();
	for (uint64_t i = 0; i < a->nblocks; i++)
		if (ovl_map_get(&a->map, i) != ovl_map_get(&b->map, i))
			abort();
}

/* The present counter is what the states say. */
static void present_exact(const struct overlay *ov)
{
	if (ovl_map_count(&ov->map, 0, ov->nblocks, OVL_PRESENT) != ov->map.present)
		abort();
}

/* Load as a frozen layer does (read-only, must change nothing). */
static int load_ro(uint64_t size, const char *base_id, struct overlay *ro)
{
	bool created;
	int rc;

	memset(ro, 0, sizeof(*ro));
	ro->io = &mem_io;
	ro->datafd = ro->logfd = -1;
	ro->size = size;
	ro->read_only = true;
	ro->dir = (char *)DIRPATH;
	ro->dirfd = m_open(NULL, AT_FDCWD, DIRPATH, O_RDONLY | O_DIRECTORY, 0);
	fs.forbid = true;
	rc = ovl_meta_open(ro, base_id, &created);
	fs.forbid = false;
	if (created)
		abort();
	return rc;
}

static void unload_ro(struct overlay *ro)
{
	if (ro->logfd >= 0)
		m_close(NULL, ro->logfd);
	if (ro->datafd >= 0)
		m_close(NULL, ro->datafd);
	m_close(NULL, ro->dirfd);
	ovl_map_free(&ro->map);
}

struct input {
	uint8_t fix, opt, fault, fault_mode, present, win;
	uint16_t size_units;
	const uint8_t *file[3];
	size_t flen[3];
	const uint8_t *ops;
	size_t nops;
};

static bool parse_input(const uint8_t *d, size_t n, struct input *in)
{
	size_t o = 8;

	if (n < 8)
		return false;
	memset(in, 0, sizeof(*in));
	in->fix = d[0];
	in->opt = d[1];
	in->fault = d[2];
	in->size_units = ovl_get16(d + 3);
	in->present = d[5];
	in->win = d[6];
	in->fault_mode = d[7];
	for (int i = 0; i < 3; i++) {
		if (!(in->present & (1u << i)))
			continue;
		if (n - o < 2)
			return false;
		size_t l = ovl_get16(d + o);
		o += 2;
		if (n - o < l)
			return false;
		in->file[i] = d + o;
		in->flen[i] = l;
		o += l;
	}
	in->ops = d + o;
	in->nops = n - o;
	return true;
}

static const char *const fnames[3] = { "info", "map", "log" };

static void one(const struct input *in)
{
	static const uint32_t gs[4] = { 512, 4096, 65536, 1u << 20 };
	uint8_t *copy[3] = { NULL, NULL, NULL };
	char base_buf[OVL_BASE_ID_MAX + 1];
	const char *base_id = "fuzz-golden";
	uint64_t size = ((uint64_t)in->size_units + 1) * 512;
	struct overlay ro, *ov = NULL, *ov2 = NULL;
	bool lost = true;
	int rc_ro, rc;

	fs_reset();
	fs.mkdir_new = (in->fix & MKDIR_NEW) && !(in->present & 15);  /* a new dir is empty */
	fs.no_punch = in->fix & NO_PUNCH;
	fs.fs_avail = in->opt & OPT_FLOOR ? (1u << 20) + (128u << 10) : 1ull << 40;

	for (int i = 0; i < 3; i++) {
		if (!(in->present & (1u << i)))
			continue;
		copy[i] = malloc(in->flen[i] ? in->flen[i] : 1);
		if (!copy[i])
			abort();
		memcpy(copy[i], in->file[i], in->flen[i]);
	}
	if (copy[0] && (in->fix & FIX_INFO))
		fix_info(copy[0], in->flen[0]);
	if (copy[1] && (in->fix & FIX_MAP))
		fix_map(copy[1], in->flen[1]);
	if (copy[2])
		fix_log(copy[2], in->flen[2], in->fix & FIX_LOGHDR, in->fix & FIX_RECS);
	if (copy[0] && in->flen[0] == 512) {
		uint64_t s = ovl_get64(copy[0] + 16);
		uint16_t idlen = ovl_get16(copy[0] + 32);
		if (s >= 1 && s <= MAX_GOLDEN)
			size = s;
		if (idlen <= OVL_BASE_ID_MAX && ((in->opt >> 5) & 3) % 3 == 0) {
			memcpy(base_buf, copy[0] + 34, idlen);
			base_buf[idlen] = '\0';
			base_id = base_buf;
		}
	}
	if (((in->opt >> 5) & 3) == 1)
		base_id = "fuzz-other";
	else if (((in->opt >> 5) & 3) == 2)
		base_id = NULL;
	for (int i = 0; i < 3; i++)
		if (copy[i])
			fs_put(fnames[i], copy[i], in->flen[i]);
	if (in->present & 8) {
		int i = file_new("data");
		uint64_t ds = size;
		if (in->fix & DATA_BADSIZE)
			ds = size > 512 ? size - 512 : size + 512;
		if (file_resize(&fs.f[i], ds) < 0)
			abort();
		fs.f[i].fill = 0xd5;
		fs.f[i].prealloc = in->fix & DATA_PREALLOC;
		for (size_t p = 0; p < fs.f[i].npages; p++)
			fs.f[i].pages[p] = P_INIT;
	}

	uint64_t start = size / 256 * in->win;
	sh.base = start - start % 512;
	memset(sh.known, 0, sizeof(sh.known));

	struct backend golden = {
		.ops = in->opt & OPT_BSTATUS ? &gold_ops_bs : &gold_ops, .size = size,
		.read_only = true, .name = "golden",
	};
	struct overlay_opts opts = {
		.quota_bytes = in->opt & OPT_QUOTA ? 64u << 10 : 0,
		.store_floor_bytes = in->opt & OPT_FLOOR ? 1u << 20 : 0,
		.io = &mem_io, .base_id = base_id, .block_size = gs[in->opt & 3],
		.checkpoint_bytes = in->opt & OPT_TINY_CKPT ? 200 : 0,
	};

	rc_ro = load_ro(size, base_id, &ro);
	if (rc_ro != 0 && rc_ro != -EBADMSG && rc_ro != -ESTALE && rc_ro != -ENOENT)
		abort();

	fs.changes = 0;
	fs.fault_at = in->fault;
	fs.fault_once = in->fault_mode & 1;
	fs.fault_err = in->fault_mode & 2 ? -ENOSPC : -EIO;
	rc = overlay_open(DIRPATH, &golden, &opts, &ov);
	int rc_open = rc;
	if (rc == 0 && rc_ro != 0 && rc_ro != -ENOENT)
		abort();              /* a failing file turned a refused overlay into one that opens */
	if (rc == -EBADMSG || rc == -ESTALE) {
		if (fs.changes || rc != rc_ro)
			abort();          /* "on error nothing in dir is changed"; a
					   * failing file is never taken for corruption */
	} else if (rc != 0 && !(rc == fs.fault_err && fs.faulted)) {
		abort();
	}
	if (!fs.faulted) {
		if (rc_ro == -ENOENT ? rc != 0 : rc != rc_ro)
			abort();          /* the two loaders disagree */
		if (rc == 0 && rc_ro == 0)
			same_maps(&ro, ov);
	}
	if (rc_ro == 0)
		present_exact(&ro);
	unload_ro(&ro);
	if (rc == -EBADMSG || rc == -ESTALE)
		goto out;

	if (rc == 0) {
		present_exact(ov);
		run_ops(ov, in->ops, in->nops, size);
		present_exact(ov);
		bool sticky = __atomic_load_n(&ov->error, __ATOMIC_SEQ_CST) != 0;
		rc = overlay_close(ov);
		ov = NULL;
		if ((rc < 0 || sticky) && !fs.faulted)
			abort();
		/* What a clean close leaves holds every write; after a failure
		 * only what an earlier flush made durable is certain. */
		lost = rc < 0 || sticky;
	}

	/* Whatever failed, the overlay reopens: a closed or half-created one
	 * (the in-memory files lose nothing), or one whose open failed before
	 * it changed anything opens as its input does. */
	int expect = rc_open == 0 || rc_ro == -ENOENT ? 0 : rc_ro;
	fs.fault_at = 0;
	opts.quota_bytes = 0;
	opts.store_floor_bytes = 0;
	rc = overlay_open(DIRPATH, &golden, &opts, &ov2);
	if (rc != expect)
		abort();
	if (rc < 0)
		goto out;
	present_exact(ov2);
	if (lost)
		memset(sh.known, 0, sizeof(sh.known));
	uint64_t wlen = size - sh.base < WIN ? size - sh.base : WIN;
	static uint8_t buf[WIN];
	if (check_read(overlay_backend(ov2), sh.base, (size_t)(wlen & ~511ull), buf) < 0)
		abort();
	if (overlay_close(ov2) < 0)
		abort();
out:
	for (int i = 0; i < 3; i++)
		free(copy[i]);
	if (fds_open())
		abort();              /* a file left open */
	fs_reset();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in;

	if (size > (1u << 20) || !parse_input(data, size, &in))
		return 0;
	one(&in);
	return 0;
}

/* ---- seed corpus ---------------------------------------------------------- */

/* Serialise the directory as an input with the given header and ops. */
static void seed_write(const char *dir, const char *name, uint8_t fix, uint8_t opt,
		       uint64_t size, uint8_t win, const uint8_t *ops, size_t nops,
		       const uint8_t *override_log, size_t override_len)
{
	uint8_t *out = malloc(1u << 20), present = 0;
	size_t o = 8;
	char path[4096];

	if (!out)
		abort();
	for (int i = 0; i < 3; i++) {
		size_t len = 0;
		uint8_t *b = fs_get(fnames[i], &len);
		if (i == 2 && override_log) {
			free(b);
			b = malloc(override_len);
			memcpy(b, override_log, override_len);
			len = override_len;
		}
		if (!b)
			continue;
		if (len > 65535)
			abort();
		present |= (uint8_t)(1u << i);
		ovl_put16(out + o, (uint16_t)len);
		memcpy(out + o + 2, b, len);
		o += 2 + len;
		free(b);
	}
	if (file_find("data") >= 0)
		present |= 8;
	out[0] = fix;
	out[1] = opt;
	out[2] = 0;
	ovl_put16(out + 3, (uint16_t)((size + 511) / 512 - 1));
	out[5] = present;
	out[6] = win;
	out[7] = 0;
	if (nops)
		memcpy(out + o, ops, nops);
	o += nops;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(out, 1, o, f) != o || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	free(out);
}

static struct backend seed_golden(uint64_t size)
{
	return (struct backend){ .ops = &gold_ops, .size = size, .read_only = true, .name = "golden" };
}

static struct overlay *seed_open(struct backend *g, uint32_t bs)
{
	struct overlay_opts o = { .io = &mem_io, .base_id = "fuzz-golden", .block_size = bs };
	struct overlay *ov;
	if (overlay_open(DIRPATH, g, &o, &ov) < 0)
		abort();
	return ov;
}

/* Write n scattered runs of sectors, seeded by k. */
static void seed_scatter(struct overlay *ov, unsigned n, unsigned k)
{
	struct backend *be = overlay_backend(ov);
	static uint8_t buf[16 * 512];
	uint64_t sects = be->size / 512;

	for (unsigned i = 0; i < n; i++) {
		uint64_t s = ((uint64_t)(i + 1) * 2654435761u * (k + 1)) % sects;
		size_t len = (size_t)(1 + (i * 7 + k) % 16) * 512;
		if (len > be->size - s * 512)
			len = (size_t)(be->size - s * 512);
		fill_pattern(buf, len, i + k);
		if (be->ops->write(be, buf, s * 512, len, false) < 0)
			abort();
		if (i % 5 == 4 && be->ops->unmap(be, s * 512, 512) < 0)
			abort();
	}
}

static void seed_flush(struct overlay *ov)
{
	struct backend *be = overlay_backend(ov);
	if (be->ops->flush(be) < 0)
		abort();
}

static void make_seeds(const char *dir)
{
	/* A few operations to append: write, read, unmap, FUA write, flush,
	 * block status, read elsewhere, write zeros, read. */
	static const uint8_t ops[] = {
		1, 3, 0, 7,   0, 0, 0, 15,   3, 5, 0, 9,   2, 40, 0, 2,
		4, 0, 0, 0,   5, 0, 0, 63,   6, 0, 128, 7,   7, 1, 0, 1,   0, 0, 0, 63,
	};
	const uint8_t ALL = FIX_INFO | FIX_MAP | FIX_LOGHDR | FIX_RECS;
	struct backend g;
	struct overlay *ov;
	uint8_t *log = NULL;
	size_t loglen = 0;

	/* 1. nothing there: created by the open */
	fs_reset();
	seed_write(dir, "new_4k", ALL, 1, 1 << 20, 0, ops, sizeof(ops), NULL, 0);
	seed_write(dir, "new_512_tinyckpt", ALL, 0 | OPT_TINY_CKPT, 3 << 20, 7, ops, sizeof(ops), NULL, 0);
	seed_write(dir, "new_quota_floor", ALL | MKDIR_NEW, 1 | OPT_QUOTA | OPT_FLOOR, 2 << 20, 0,
		   ops, sizeof(ops), NULL, 0);

	/* 2. created and closed: info and a bare log */
	fs_reset();
	g = seed_golden(1 << 20);
	ov = seed_open(&g, 4096);
	overlay_close(ov);
	seed_write(dir, "empty_closed", ALL, 1, g.size, 0, ops, sizeof(ops), NULL, 0);
	seed_write(dir, "empty_closed_nofix", 0, 1 | OPT_BSTATUS, g.size, 0, ops, sizeof(ops), NULL, 0);
	/* no info but a bare log: a crash during creation */
	{
		int i = file_find("info");
		fs.f[i].linked = false;
		file_release(&fs.f[i]);
	}
	seed_write(dir, "unfinished_create", ALL, 1, g.size, 0, ops, sizeof(ops), NULL, 0);

	/* 3. flushed writes in the log, no checkpoint (dropped: a crash) */
	fs_reset();
	g = seed_golden(1 << 20);
	ov = seed_open(&g, 4096);
	seed_scatter(ov, 20, 1);
	seed_flush(ov);
	seed_scatter(ov, 10, 2);
	seed_flush(ov);
	overlay_drop(ov);
	seed_write(dir, "log_records", ALL, 1, g.size, 0, ops, sizeof(ops), NULL, 0);
	seed_write(dir, "log_records_nofix", 0, 1, g.size, 0, NULL, 0, NULL, 0);
	seed_write(dir, "log_records_prealloc", ALL | DATA_PREALLOC, 1, g.size, 0, ops, sizeof(ops),
		   NULL, 0);
	seed_write(dir, "log_records_nopunch", ALL | DATA_PREALLOC | NO_PUNCH, 1, g.size, 0, ops,
		   sizeof(ops), NULL, 0);
	seed_write(dir, "log_records_baddata", ALL | DATA_BADSIZE, 1, g.size, 0, NULL, 0, NULL, 0);
	seed_write(dir, "log_records_other_base", ALL, 1 | 0x20, g.size, 0, NULL, 0, NULL, 0);
	seed_write(dir, "log_records_null_base", ALL, 1 | 0x40, g.size, 0, ops, sizeof(ops), NULL, 0);
	/* the same with a torn tail: the last record cut short, or garbage */
	log = fs_get("log", &loglen);
	seed_write(dir, "log_torn_cut", ALL & ~FIX_RECS, 1, g.size, 0, ops, sizeof(ops), log, loglen - 20);
	{
		uint8_t *l2 = malloc(loglen + 40);
		memcpy(l2, log, loglen);
		memset(l2 + loglen, 0x5a, 40);
		ovl_put32(l2 + loglen, 0x52444552u);
		seed_write(dir, "log_torn_garbage", ALL & ~FIX_RECS, 1, g.size, 0, ops, sizeof(ops), l2,
			   loglen + 40);
		free(l2);
	}

	/* 4. checkpoint of close (map + empty log), then more flushed records */
	ov = seed_open(&g, 4096);
	overlay_close(ov);
	seed_write(dir, "checkpoint", ALL, 1, g.size, 0, ops, sizeof(ops), NULL, 0);
	ov = seed_open(&g, 4096);
	seed_scatter(ov, 8, 3);
	seed_flush(ov);
	overlay_drop(ov);
	seed_write(dir, "checkpoint_log", ALL, 1, g.size, 0, ops, sizeof(ops), NULL, 0);
	/* the old log next to a newer map: a crash between the renames */
	free(log);
	log = fs_get("log", &loglen);
	ov = seed_open(&g, 4096);
	overlay_close(ov);
	seed_write(dir, "old_log_new_map", ALL, 1, g.size, 0, ops, sizeof(ops), log, loglen);
	free(log);
	log = NULL;
	/* a map without info */
	{
		int i = file_find("info");
		fs.f[i].linked = false;
		file_release(&fs.f[i]);
	}
	seed_write(dir, "map_no_info", ALL, 1, g.size, 0, NULL, 0, NULL, 0);

	/* 5. G = 512 over 16.5 MiB: three leaves, a whole one ZERO, a short last */
	fs_reset();
	g = seed_golden((33u << 19) + 1536);
	ov = seed_open(&g, 512);
	{
		struct backend *be = overlay_backend(ov);
		seed_scatter(ov, 12, 4);
		if (be->ops->unmap(be, 8u << 20, 8u << 20) < 0)   /* leaf 1 */
			abort();
	}
	overlay_close(ov);
	seed_write(dir, "g512_zero_leaf", ALL, 0, g.size, 200, ops, sizeof(ops), NULL, 0);
	ov = seed_open(&g, 512);
	seed_scatter(ov, 6, 5);
	seed_flush(ov);
	overlay_drop(ov);
	seed_write(dir, "g512_leaves_log", ALL, 0 | OPT_TINY_CKPT, g.size, 255, ops, sizeof(ops), NULL, 0);

	/* 6. G = 64 KiB, size not a multiple of G */
	fs_reset();
	g = seed_golden((1u << 20) + 4608);
	ov = seed_open(&g, 65536);
	seed_scatter(ov, 10, 6);
	seed_flush(ov);
	overlay_drop(ov);
	seed_write(dir, "g64k_short_last", ALL, 2, g.size, 255, ops, sizeof(ops), NULL, 0);

	/* 7. G = 1 MiB, a checkpoint */
	fs_reset();
	g = seed_golden(5u << 20);
	ov = seed_open(&g, 1u << 20);
	seed_scatter(ov, 4, 7);
	overlay_close(ov);
	seed_write(dir, "g1m_checkpoint", ALL, 3, g.size, 30, ops, sizeof(ops), NULL, 0);

	/* 8. with file faults injected */
	fs_reset();
	g = seed_golden(1 << 20);
	ov = seed_open(&g, 4096);
	seed_scatter(ov, 10, 8);
	seed_flush(ov);
	overlay_drop(ov);
	for (unsigned f = 1; f <= 25; f += 6) {
		char name[32];
		unsigned mode = f / 6 % 4;
		snprintf(name, sizeof(name), "fault_%u_%s%s", f, mode & 1 ? "once_" : "",
			 mode & 2 ? "enospc" : "eio");
		seed_write(dir, name, ALL, 1, g.size, 0, ops, sizeof(ops), NULL, 0);
		/* the fault bytes are at offsets 2 and 7 */
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		FILE *fp = fopen(path, "r+b");
		if (!fp || fseek(fp, 2, SEEK_SET) || fputc((int)f, fp) == EOF ||
		    fseek(fp, 7, SEEK_SET) || fputc((int)mode, fp) == EOF || fclose(fp)) {
			perror(path);
			exit(1);
		}
	}
	fs_reset();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("PRISTINE_FUZZ_SEEDS");

	(void)argc; (void)argv;
	/* Every rejected input logs its corruption finding at error level;
	 * the harness checks the return codes instead, so silence them
	 * (PRISTINE_FUZZ_LOG=1 keeps them, to see why an input was refused). */
	if (!getenv("PRISTINE_FUZZ_LOG"))
		log_set_level((enum log_level)(LOG_ERR - 1));
	if (dir) {
		make_seeds(dir);
		exit(0);
	}
	return 0;
}
