/*
 * faultinject.c - an LD_PRELOAD shim that makes file I/O of a running
 * pristined fail on demand, for the fault-injection suite (tests/faults/).
 *
 * It wraps the calls the daemon's storage really makes (src/util/fullio.c,
 * src/storage/raw.c, overlay_io.c): open/openat/creat (+64), close,
 * pread/pwrite (+64, and the v/v2 forms), splice from a file (a read),
 * fsync, fdatasync,
 * sync_file_range, fallocate, ftruncate, rename/renameat/renameat2.
 * Each open records the file's absolute path (readlink of
 * /proc/self/fd/N) in an fd -> path table, and a rename moves the
 * recorded name along, so "the log" is still the log after log.tmp is
 * renamed over it.  Sockets and the daemon's own read/write are never
 * touched.
 *
 * Rules come from the file named by $FAULT_CTL, re-read whenever its
 * inode, size or mtime changes (checked on every wrapped call, so a rule
 * is in force for the very next call once the file is in place; write it
 * elsewhere and rename it over, so the shim never sees half a file).  One
 * rule per line, '#' comments, fields KEY=VALUE separated by spaces:
 *
 *   ops=read,write,sync,alloc,trunc,open,rename,all   (required)
 *   path=GLOB          fnmatch(3) pattern, no FNM_PATHNAME (required)
 *   errno=EIO          EIO ENOSPC EDQUOT EROFS ENOMEM EFBIG EAGAIN or a number
 *   from=B to=B        only reads/writes/allocs overlapping [from, to) bytes
 *   after=N            let the first N matching calls through
 *   times=N            fail at most N calls (default: all)
 *   torn=B             writes: really write the first B bytes, then fail
 *   delay_us=N         do not fail: sleep N microseconds, then do the call
 *                      (a slow store, e.g. 1 ms per read like a network disk;
 *                      the sleep holds no lock, so calls overlap)
 *
 * Each injected failure is reported on stderr (into the daemon's log) as
 * "faultinject: OP PATH off=.. len=.. -> ERRNO" ("read (splice)" for a
 * splice from a file; the first 100 per
 * load), and the count of failures per rule is rewritten to
 * $FAULT_CTL.hits after each one ("RULE_INDEX COUNT" lines), so a test
 * can tell that its fault really fired.  Without $FAULT_CTL nothing is
 * ever failed.
 *
 * With the ASan build the sanitizer runtime must come first in the
 * preload list: LD_PRELOAD="$(gcc -print-file-name=libasan.so) faultinject.so".
 * The sanitizer's own wrappers then call into ours (RTLD_NEXT), and ours
 * call libc's.  Internal work (reading the rules) uses raw syscalls, so
 * the shim never recurses into itself.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FI_MAX_FD    65536
#define FI_MAX_RULES 32
#define FI_REPORTS   100

enum {
	OP_READ = 1, OP_WRITE = 2, OP_SYNC = 4, OP_ALLOC = 8, OP_TRUNC = 16,
	OP_OPEN = 32, OP_RENAME = 64,
	OP_VIA_SPLICE = 128,    /* with OP_READ: the read is a splice (said in reports) */
};

struct rule {
	unsigned ops;
	char path[512];
	int err;
	uint64_t from, to;      /* to == 0: no range */
	long after, times;      /* times < 0: unlimited */
	long torn;              /* < 0: not torn */
	long delay_us;          /* > 0: a delay rule (never fails) */
	long seen, hits;
};

static pthread_mutex_t fi_lock = PTHREAD_MUTEX_INITIALIZER;
static char *fd_path[FI_MAX_FD];
static struct rule rules[FI_MAX_RULES];
static int nrules;
static struct stat ctl_st;      /* identity of the rules loaded */
static int ctl_loaded;
static int reports;
static const char *ctl_path;
static int fi_init_done;

/* ---- the real functions ------------------------------------------------ */

#define DECL_REAL(ret, name, ...) static ret (*real_##name)(__VA_ARGS__)

DECL_REAL(int, openat, int, const char *, int, ...);
DECL_REAL(int, openat64, int, const char *, int, ...);
DECL_REAL(int, close, int);
DECL_REAL(ssize_t, pread, int, void *, size_t, off_t);
DECL_REAL(ssize_t, pread64, int, void *, size_t, off_t);
DECL_REAL(ssize_t, splice, int, loff_t *, int, loff_t *, size_t, unsigned);
DECL_REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
DECL_REAL(ssize_t, pwrite64, int, const void *, size_t, off_t);
DECL_REAL(ssize_t, preadv, int, const struct iovec *, int, off_t);
DECL_REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t);
DECL_REAL(ssize_t, preadv2, int, const struct iovec *, int, off_t, int);
DECL_REAL(ssize_t, pwritev2, int, const struct iovec *, int, off_t, int);
DECL_REAL(int, fsync, int);
DECL_REAL(int, fdatasync, int);
DECL_REAL(int, sync_file_range, int, off_t, off_t, unsigned);
DECL_REAL(int, fallocate, int, int, off_t, off_t);
DECL_REAL(int, fallocate64, int, int, off_t, off_t);
DECL_REAL(int, ftruncate, int, off_t);
DECL_REAL(int, ftruncate64, int, off_t);
DECL_REAL(int, rename, const char *, const char *);
DECL_REAL(int, renameat, int, const char *, int, const char *);
DECL_REAL(int, renameat2, int, const char *, int, const char *, unsigned);

/* Look a real function up once; a missing one fails with ENOSYS. */
#define RESOLVE(name) do { \
	if (!real_##name) \
		real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name); \
} while (0)

/* ---- small helpers on raw syscalls (no recursion into the wrappers) --- */

static void fi_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fi_say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	syscall(SYS_write, 2, buf, (size_t)n);
}

static int err_of(const char *s)
{
	static const struct { const char *n; int v; } t[] = {
		{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT }, { "EROFS", EROFS },
		{ "ENOMEM", ENOMEM }, { "EFBIG", EFBIG }, { "EAGAIN", EAGAIN }, { "EBADF", EBADF },
		{ "EINVAL", EINVAL }, { "EPERM", EPERM }, { "EACCES", EACCES }, { "ENOENT", ENOENT },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].n) == 0)
			return t[i].v;
	int v = atoi(s);
	return v > 0 ? v : EIO;
}

static unsigned ops_of(const char *s)
{
	static const struct { const char *n; unsigned v; } t[] = {
		{ "read", OP_READ }, { "write", OP_WRITE }, { "sync", OP_SYNC },
		{ "alloc", OP_ALLOC }, { "trunc", OP_TRUNC }, { "open", OP_OPEN },
		{ "rename", OP_RENAME }, { "all", 0x7f },
	};
	unsigned v = 0;
	char buf[128];

	snprintf(buf, sizeof(buf), "%s", s);
	for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
			if (strcmp(w, t[i].n) == 0)
				v |= t[i].v;
	return v;
}

static const char *op_name(unsigned op)
{
	switch (op) {
	case OP_READ: return "read";
	case OP_WRITE: return "write";
	case OP_SYNC: return "sync";
	case OP_ALLOC: return "alloc";
	case OP_TRUNC: return "trunc";
	case OP_OPEN: return "open";
	default: return "rename";
	}
}

/* Parse the rules text into rules[] / nrules.  fi_lock held. */
static void parse_rules(char *text)
{
	nrules = 0;
	reports = 0;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && nrules < FI_MAX_RULES;
	     line = strtok_r(NULL, "\n", &save)) {
		struct rule r = { .err = EIO, .times = -1, .torn = -1 };
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '#' || *line == '\0')
			continue;
		for (char *s2 = NULL, *f = strtok_r(line, " \t", &s2); f; f = strtok_r(NULL, " \t", &s2)) {
			char *eq = strchr(f, '=');
			if (!eq)
				continue;
			*eq = '\0';
			const char *v = eq + 1;
			if (strcmp(f, "ops") == 0)
				r.ops = ops_of(v);
			else if (strcmp(f, "path") == 0)
				snprintf(r.path, sizeof(r.path), "%s", v);
			else if (strcmp(f, "errno") == 0)
				r.err = err_of(v);
			else if (strcmp(f, "from") == 0)
				r.from = strtoull(v, NULL, 0);
			else if (strcmp(f, "to") == 0)
				r.to = strtoull(v, NULL, 0);
			else if (strcmp(f, "after") == 0)
				r.after = strtol(v, NULL, 0);
			else if (strcmp(f, "times") == 0)
				r.times = strtol(v, NULL, 0);
			else if (strcmp(f, "torn") == 0)
				r.torn = strtol(v, NULL, 0);
			else if (strcmp(f, "delay_us") == 0)
				r.delay_us = strtol(v, NULL, 0);
		}
		if (r.ops && r.path[0])
			rules[nrules++] = r;
	}
	fi_say("faultinject: %d rule%s loaded from %s\n", nrules, nrules == 1 ? "" : "s", ctl_path);
}

/* Re-read $FAULT_CTL if it changed since the last load.  fi_lock held. */
static void refresh_rules(void)
{
	struct stat st;

	if (syscall(SYS_newfstatat, AT_FDCWD, ctl_path, &st, 0) < 0) {
		if (ctl_loaded && nrules)
			fi_say("faultinject: %s gone, no rules\n", ctl_path);
		nrules = 0;
		ctl_loaded = 0;
		return;
	}
	if (ctl_loaded && st.st_ino == ctl_st.st_ino && st.st_size == ctl_st.st_size &&
	    st.st_mtim.tv_sec == ctl_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == ctl_st.st_mtim.tv_nsec)
		return;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, ctl_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[16384];
	size_t len = 0;
	for (;;) {
		ssize_t n = syscall(SYS_read, fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	syscall(SYS_close, fd);
	buf[len] = '\0';
	ctl_st = st;
	ctl_loaded = 1;
	parse_rules(buf);
}

/* Rewrite $FAULT_CTL.hits: one "INDEX HITS" line per rule.  fi_lock held. */
static void write_hits(void)
{
	char name[PATH_MAX], tmp[PATH_MAX], buf[1024];
	size_t len = 0;

	snprintf(name, sizeof(name), "%s.hits", ctl_path);
	snprintf(tmp, sizeof(tmp), "%s.hits.tmp", ctl_path);
	for (int i = 0; i < nrules && len < sizeof(buf) - 32; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%d %ld\n", i, rules[i].hits);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	syscall(SYS_write, fd, buf, len);
	syscall(SYS_close, fd);
	syscall(SYS_renameat, AT_FDCWD, tmp, AT_FDCWD, name);
}

/* A child forked while another thread held fi_lock (a job spawning
 * qemu-img, say) would deadlock on its first open before exec. */
static void fi_prefork(void) { pthread_mutex_lock(&fi_lock); }
static void fi_postfork(void) { pthread_mutex_unlock(&fi_lock); }

__attribute__((constructor)) static void fi_ctor(void)
{
	pthread_atfork(fi_prefork, fi_postfork, fi_postfork);
}

static void fi_init(void)
{
	if (fi_init_done)
		return;
	ctl_path = getenv("FAULT_CTL");
	fi_init_done = 1;
}

/*
 * Should this call fail?  op is one OP_*; path the file's recorded path
 * (NULL: not a tracked file).  Returns 0 to let it through, or the errno
 * to fail with; *torn is set to the bytes to really write first (-1 none).
 */
static int should_fail(unsigned op, const char *path, uint64_t off, uint64_t len, long *torn)
{
	int err = 0;
	long delay_us = 0;

	*torn = -1;
	if (!path)
		return 0;
	pthread_mutex_lock(&fi_lock);
	fi_init();
	if (!ctl_path)
		goto out;
	refresh_rules();
	for (int i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];
		if (!(r->ops & op) || fnmatch(r->path, path, 0) != 0)
			continue;
		if (r->to && (op & (OP_READ | OP_WRITE | OP_ALLOC)) &&
		    (off >= r->to || off + (len ? len : 1) <= r->from))
			continue;
		if (r->seen++ < r->after)
			continue;
		if (r->times >= 0 && r->hits >= r->times)
			continue;
		r->hits++;
		if (r->delay_us > 0) {
			/* Delays are not reported: there may be millions. */
			delay_us = r->delay_us;
			break;
		}
		err = r->err;
		if (op == OP_WRITE && r->torn >= 0 && (uint64_t)r->torn < len)
			*torn = r->torn;
		if (reports++ < FI_REPORTS)
			fi_say("faultinject: %s%s %s off=%llu len=%llu -> %s%s (rule %d, hit %ld)\n",
			       op_name(op & ~(unsigned)OP_VIA_SPLICE),
			       op & OP_VIA_SPLICE ? " (splice)" : "", path, (unsigned long long)off, (unsigned long long)len,
			       strerrorname_np(err) ? strerrorname_np(err) : "?",
			       *torn >= 0 ? " (torn)" : "", i, r->hits);
		write_hits();
		break;
	}
out:
	pthread_mutex_unlock(&fi_lock);
	if (delay_us > 0) {
		struct timespec ts = { delay_us / 1000000, (delay_us % 1000000) * 1000 };
		while (syscall(SYS_nanosleep, &ts, &ts) < 0 && errno == EINTR)
			;
	}
	return err;
}

static const char *path_of_fd(int fd)
{
	return fd >= 0 && fd < FI_MAX_FD ? fd_path[fd] : NULL;
}

/* Record fd's absolute path after a successful open (or forget it). */
static void track(int fd)
{
	char link[64], buf[PATH_MAX];

	if (fd < 0 || fd >= FI_MAX_FD)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = syscall(SYS_readlinkat, AT_FDCWD, link, buf, sizeof(buf) - 1);
	char *p = NULL;
	if (n > 0) {
		buf[n] = '\0';
		p = strdup(buf);
	}
	pthread_mutex_lock(&fi_lock);
	free(fd_path[fd]);
	fd_path[fd] = p;
	pthread_mutex_unlock(&fi_lock);
}

static void untrack(int fd)
{
	if (fd < 0 || fd >= FI_MAX_FD)
		return;
	pthread_mutex_lock(&fi_lock);
	free(fd_path[fd]);
	fd_path[fd] = NULL;
	pthread_mutex_unlock(&fi_lock);
}

/* The path an open/rename names: absolute, or relative to dirfd's. */
static void full_path(int dirfd, const char *name, char *out, size_t len)
{
	if (name[0] == '/') {
		snprintf(out, len, "%s", name);
		return;
	}
	char cwd[PATH_MAX] = ".";
	if (dirfd == AT_FDCWD) {
		long n = syscall(SYS_getcwd, cwd, sizeof(cwd));
		if (n <= 0)
			snprintf(cwd, sizeof(cwd), ".");
	} else {
		pthread_mutex_lock(&fi_lock);
		const char *d = path_of_fd(dirfd);
		snprintf(cwd, sizeof(cwd), "%s", d ? d : "?");
		pthread_mutex_unlock(&fi_lock);
	}
	snprintf(out, len, "%s/%s", cwd, name);
}

/* After a successful rename, fds recorded under from now carry to. */
static void retrack(const char *from, const char *to)
{
	pthread_mutex_lock(&fi_lock);
	for (int fd = 0; fd < FI_MAX_FD; fd++) {
		if (fd_path[fd] && strcmp(fd_path[fd], from) == 0) {
			char *p = strdup(to);
			if (p) {
				free(fd_path[fd]);
				fd_path[fd] = p;
			}
		}
	}
	pthread_mutex_unlock(&fi_lock);
}

/* ---- wrappers ------------------------------------------------------------ */

static int open_common(int (*fn)(int, const char *, int, ...), int dirfd, const char *name,
		       int flags, mode_t mode)
{
	char p[PATH_MAX];
	long torn;

	if (name) {
		full_path(dirfd, name, p, sizeof(p));
		int e = should_fail(OP_OPEN, p, 0, 0, &torn);
		if (e) {
			errno = e;
			return -1;
		}
	}
	if (!fn) {
		errno = ENOSYS;
		return -1;
	}
	int fd = fn(dirfd, name, flags, mode);
	if (fd >= 0)
		track(fd);
	return fd;
}

#define MODE_ARG(flags, mode) do { \
	if ((flags) & (O_CREAT | __O_TMPFILE)) { \
		va_list ap; va_start(ap, flags); mode = va_arg(ap, int); va_end(ap); \
	} \
} while (0)

int openat(int dirfd, const char *name, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	RESOLVE(openat);
	return open_common(real_openat, dirfd, name, flags, mode);
}

int openat64(int dirfd, const char *name, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	RESOLVE(openat64);
	return open_common(real_openat64, dirfd, name, flags, mode);
}

int open(const char *name, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	RESOLVE(openat);
	return open_common(real_openat, AT_FDCWD, name, flags, mode);
}

int open64(const char *name, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	RESOLVE(openat64);
	return open_common(real_openat64, AT_FDCWD, name, flags, mode);
}

int creat(const char *name, mode_t mode)
{
	RESOLVE(openat);
	return open_common(real_openat, AT_FDCWD, name, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int close(int fd)
{
	RESOLVE(close);
	untrack(fd);
	return real_close(fd);
}

static uint64_t iov_len(const struct iovec *iov, int n)
{
	uint64_t s = 0;
	for (int i = 0; i < n; i++)
		s += iov[i].iov_len;
	return s;
}

#define FAIL_IF(op, fd, off, len) do { \
	long torn_; \
	int e_ = should_fail(op, path_of_fd(fd), (uint64_t)(off), (uint64_t)(len), &torn_); \
	if (e_) { errno = e_; return -1; } \
} while (0)

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	RESOLVE(pread);
	FAIL_IF(OP_READ, fd, off, n);
	return real_pread(fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
	RESOLVE(pread64);
	FAIL_IF(OP_READ, fd, off, n);
	return real_pread64(fd, buf, n, off);
}

/* splice(2) from a file is a read of it (zero-copy Data-In: the daemon
 * moves page-cache pages into a pipe); a pipe or socket source (no
 * offset) is never failed. */
ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t n, unsigned flags)
{
	RESOLVE(splice);
	if (off_in)
		FAIL_IF(OP_READ | OP_VIA_SPLICE, in, *off_in, n);
	return real_splice(in, off_in, out, off_out, n, flags);
}

/* A write: maybe fail, maybe after writing a torn prefix for real. */
static ssize_t write_common(ssize_t (*fn)(int, const void *, size_t, off_t), int fd,
			    const void *buf, size_t n, off_t off)
{
	long torn;
	int e = should_fail(OP_WRITE, path_of_fd(fd), (uint64_t)off, n, &torn);

	if (e) {
		if (torn > 0 && fn)
			fn(fd, buf, (size_t)torn, off);
		errno = e;
		return -1;
	}
	if (!fn) {
		errno = ENOSYS;
		return -1;
	}
	return fn(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	RESOLVE(pwrite);
	return write_common(real_pwrite, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	RESOLVE(pwrite64);
	return write_common(real_pwrite64, fd, buf, n, off);
}

ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	RESOLVE(preadv);
	FAIL_IF(OP_READ, fd, off, iov_len(iov, cnt));
	return real_preadv(fd, iov, cnt, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	RESOLVE(pwritev);
	FAIL_IF(OP_WRITE, fd, off, iov_len(iov, cnt));
	return real_pwritev(fd, iov, cnt, off);
}

ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	RESOLVE(preadv2);
	FAIL_IF(OP_READ, fd, off, iov_len(iov, cnt));
	return real_preadv2(fd, iov, cnt, off, flags);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	RESOLVE(pwritev2);
	FAIL_IF(OP_WRITE, fd, off, iov_len(iov, cnt));
	return real_pwritev2(fd, iov, cnt, off, flags);
}

int fsync(int fd)
{
	RESOLVE(fsync);
	FAIL_IF(OP_SYNC, fd, 0, 0);
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	RESOLVE(fdatasync);
	FAIL_IF(OP_SYNC, fd, 0, 0);
	return real_fdatasync(fd);
}

int sync_file_range(int fd, off_t off, off_t n, unsigned flags)
{
	RESOLVE(sync_file_range);
	FAIL_IF(OP_SYNC, fd, off, n);
	return real_sync_file_range(fd, off, n, flags);
}

int fallocate(int fd, int mode, off_t off, off_t n)
{
	RESOLVE(fallocate);
	FAIL_IF(OP_ALLOC, fd, off, n);
	return real_fallocate(fd, mode, off, n);
}

int fallocate64(int fd, int mode, off_t off, off_t n)
{
	RESOLVE(fallocate64);
	FAIL_IF(OP_ALLOC, fd, off, n);
	return real_fallocate64(fd, mode, off, n);
}

int ftruncate(int fd, off_t n)
{
	RESOLVE(ftruncate);
	FAIL_IF(OP_TRUNC, fd, n, 0);
	return real_ftruncate(fd, n);
}

int ftruncate64(int fd, off_t n)
{
	RESOLVE(ftruncate64);
	FAIL_IF(OP_TRUNC, fd, n, 0);
	return real_ftruncate64(fd, n);
}

/* A rename: maybe fail (matched on the source), else move the records. */
static int rename_common(int fromfd, const char *from, int tofd, const char *to,
			 int (*call)(int, const char *, int, const char *, unsigned), unsigned flags)
{
	char pf[PATH_MAX], pt[PATH_MAX];
	long torn;

	full_path(fromfd, from, pf, sizeof(pf));
	full_path(tofd, to, pt, sizeof(pt));
	int e = should_fail(OP_RENAME, pf, 0, 0, &torn);
	if (e) {
		errno = e;
		return -1;
	}
	int rc = call(fromfd, from, tofd, to, flags);
	if (rc == 0)
		retrack(pf, pt);
	return rc;
}

static int call_renameat(int a, const char *b, int c, const char *d, unsigned f)
{
	(void)f;
	RESOLVE(renameat);
	if (!real_renameat) {
		errno = ENOSYS;
		return -1;
	}
	return real_renameat(a, b, c, d);
}

static int call_renameat2(int a, const char *b, int c, const char *d, unsigned f)
{
	RESOLVE(renameat2);
	if (!real_renameat2) {
		errno = ENOSYS;
		return -1;
	}
	return real_renameat2(a, b, c, d, f);
}

static int call_rename(int a, const char *b, int c, const char *d, unsigned f)
{
	(void)a; (void)c; (void)f;
	RESOLVE(rename);
	if (!real_rename) {
		errno = ENOSYS;
		return -1;
	}
	return real_rename(b, d);
}

int rename(const char *from, const char *to)
{
	return rename_common(AT_FDCWD, from, AT_FDCWD, to, call_rename, 0);
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
	return rename_common(fromfd, from, tofd, to, call_renameat, 0);
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags)
{
	return rename_common(fromfd, from, tofd, to, call_renameat2, flags);
}
