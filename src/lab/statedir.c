/*
 * statedir.c - the state directory's layout and its trash and quarantine
 * moves (see statedir.h).
 */
#include "lab/statedir.h"
#include "util/atomicfile.h"
#include "proto/iscsi.h"
#include "util/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const sub_names[] = {
	[SD_OVERLAYS] = "overlays", [SD_IMAGES] = "images", [SD_TRASH] = "trash",
	[SD_QUARANTINE] = "quarantine", [SD_IMPORTED] = "imported", [SD_DISKS] = "disks",
};

/* snprintf into out, -ENAMETOOLONG if it does not fit. */
__attribute__((format(printf, 3, 4)))
static int fmt(char *out, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(out, len, f, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int statedir_mkdir(const char *path)
{
	if (mkdir(path, 0700) && errno != EEXIST) {
		int rc = -errno;
		log_err("%s: %s", path, strerror(errno));
		return rc;
	}
	return 0;
}

int statedir_prepare(const char *state)
{
	char path[PATH_MAX];
	int rc;

	for (unsigned i = 0; i < sizeof(sub_names) / sizeof(sub_names[0]); i++) {
		if (i == SD_IMPORTED)
			continue;   /* made by the first import */
		if ((rc = statedir_sub(path, sizeof(path), state, i)) || (rc = statedir_mkdir(path)))
			return rc;
	}
	return 0;
}

int statedir_sub(char *out, size_t len, const char *state, enum statedir_sub sub)
{
	return fmt(out, len, "%s/%s", state, sub_names[sub]);
}

int statedir_file(char *out, size_t len, const char *state, const char *file)
{
	return fmt(out, len, "%s/%s", state, file);
}

int statedir_overlay(char *out, size_t len, const char *state, const char *initiator)
{
	char esc[ISCSI_NAME_MAX * 3 + 1];

	statedir_escape(initiator, esc, sizeof(esc));
	return fmt(out, len, "%s/overlays/%s", state, esc);
}

int statedir_xdisk(char *out, size_t len, const char *state, const char *image,
		   const char *initiator)
{
	char esc[ISCSI_NAME_MAX * 3 + 1];

	if (!initiator)
		return fmt(out, len, "%s/disks/%s", state, image);
	statedir_escape(initiator, esc, sizeof(esc));
	return fmt(out, len, "%s/disks/%s/%s", state, image, esc);
}

int statedir_image(char *out, size_t len, const char *state, const char *name)
{
	return fmt(out, len, "%s/images/%s", state, name);
}

int statedir_layer(char *out, size_t len, const char *imgdir, const char *layer)
{
	if (!layer)
		return fmt(out, len, "%s/layers", imgdir);
	return fmt(out, len, "%s/layers/%s", imgdir, layer);
}

int statedir_flat(char *out, size_t len, const char *imgdir, unsigned v, int tmp)
{
	return fmt(out, len, "%s/flat-v%u.raw%s", imgdir, v, tmp ? ".tmp" : "");
}

int statedir_imported(char *out, size_t len, const char *state, const char *name, int tmp)
{
	return fmt(out, len, "%s/imported/%s.raw%s", state, name, tmp ? ".tmp" : "");
}

void statedir_escape(const char *iqn, char *out, size_t len)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)iqn; *p && n + 4 < len; p++) {
		unsigned char ch = (unsigned char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':')
			out[n++] = (char)ch;
		else
			n += (size_t)snprintf(out + n, len - n, "%%%02X", ch);
	}
	out[n] = '\0';
}

int statedir_unescape(const char *in, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = in; *p; p++) {
		unsigned v;
		if (n + 1 >= len)
			return -1;
		if (*p == '%') {
			/* exactly two hex digits: never step past the end */
			if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]) ||
			    sscanf(p + 1, "%2X", &v) != 1)
				return -1;
			out[n++] = (char)v;
			p += 2;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	return iscsi_name_valid(out) ? 0 : -1;
}

/* The directory path is in, into out. */
static void parent_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, len, ".");
	else if (slash == path)
		snprintf(out, len, "/");
	else
		snprintf(out, len, "%.*s", (int)(slash - path), path);
}

/* Rename path to dest and make both directories durable. */
static int move_synced(const char *path, const char *dest_dir, const char *dest)
{
	char parent[PATH_MAX];
	int rc;

	if (rename(path, dest))
		return -errno;
	parent_of(path, parent, sizeof(parent));
	rc = atomicfile_sync_dir(parent);
	if (rc == 0)
		rc = atomicfile_sync_dir(dest_dir);
	return rc;
}

int statedir_trash(const char *state, const char *path, const char *label)
{
	static unsigned counter;
	char trash[PATH_MAX], to[PATH_MAX];
	struct timespec ts;
	int rc;

	if ((rc = statedir_sub(trash, sizeof(trash), state, SD_TRASH)))
		return rc;
	if (mkdir(trash, 0700) && errno != EEXIST)
		return -errno;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Unique across restarts (time) and within one (counter). */
	if ((rc = fmt(to, sizeof(to), "%s/%s.%lld%09ld.%u", trash, label, (long long)ts.tv_sec,
		      ts.tv_nsec, __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST))))
		return rc;
	return move_synced(path, trash, to);
}

int statedir_quarantine(const char *state, const char *path, char *to, size_t tolen)
{
	char q[PATH_MAX], dest[PATH_MAX];
	const char *base = strrchr(path, '/');
	int rc;

	if ((rc = statedir_sub(q, sizeof(q), state, SD_QUARANTINE)))
		return rc;
	if (mkdir(q, 0700) && errno != EEXIST)
		return -errno;
	if ((rc = fmt(dest, sizeof(dest), "%s/%s.%lld", q, base ? base + 1 : path, (long long)time(NULL))))
		return rc;
	rc = move_synced(path, q, dest);
	if (rc == 0 && to)
		snprintf(to, tolen, "%s", dest);
	return rc;
}

/* The PID a lock file names, 0 if it names none. */
static long lock_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char *end;
	long pid;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	return end != buf && pid > 0 ? pid : 0;
}

int statedir_lock(const char *state, long *holder)
{
	char path[PATH_MAX], pid[24];
	struct stat st;
	int fd, rc, n;

	*holder = 0;
	if ((rc = statedir_file(path, sizeof(path), state, STATEDIR_LOCK))) {
		log_err("%s/%s: %s", state, STATEDIR_LOCK, strerror(-rc));
		return rc;
	}
	/* No O_TRUNC: nothing is written before the checks below. */
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ELOOP)
			log_err("%s is a symbolic link; remove it and start again", path);
		else
			log_err("%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		log_err("%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		rc = -EPERM;
		log_err("%s is not a plain file of its own (a link?); remove it and start again", path);
		goto fail;
	}
	/* Whoever can open the file can lock it: only its owner may. */
	if ((st.st_mode & 077) && fchmod(fd, 0600)) {
		rc = -errno;
		log_err("%s: cannot make it 0600: %s", path, strerror(errno));
		goto fail;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		rc = -errno;
		if (rc == -EWOULDBLOCK)
			*holder = lock_holder(fd);
		else
			log_err("%s: cannot lock: %s", path, strerror(-rc));
		goto fail;
	}
	/* Informative only: the flock is what counts. */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("%s: cannot record our PID: %s", path, strerror(errno));
	return fd;
fail:
	close(fd);
	return rc;
}
