/*
 * privs.c - giving up root after the start (see privs.h).
 *
 * Why the work is split in two: no_new_privs, the bounding set and the
 * ambient and inheritable sets are attributes of one thread, inherited by
 * the threads and children it creates later.  glibc applies setgroups,
 * setresgid and setresuid to every thread of the process (its "setxid"
 * broadcast), and the kernel clears the permitted and effective sets of
 * each thread whose uids all leave 0, but nothing broadcasts prctl or
 * capset.  So the per-thread part is done first, before pristined creates
 * any thread, and the uid switch last, once the sockets are bound, from
 * wherever the main thread is; privs_drop then reads every thread's
 * /proc/self/task/TID/status to prove the result.
 *
 * No libcap: prctl(2) and the capget/capset system calls are all this
 * needs, and /proc is what the admin would read anyway.
 *
 * The state directory: a fresh directory is created by root at start, and
 * systemd's own StateDirectory= would chown it to root at every start, so
 * the daemon takes ownership itself while still root (privs_own_state).
 * Handing files over as root in a tree the unprivileged user can write to
 * is the classic way to be tricked into chowning /etc/shadow, hence:
 * every entry is opened with O_PATH|O_NOFOLLOW and changed through that
 * descriptor (never by name), symlinks and other file systems are not
 * followed, and a root file with more than one hard link - which the
 * state never makes, but a planted link to a system file would have - is
 * refused rather than handed over.
 */
#include "daemon/privs.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define OWN_DEPTH_MAX 32      /* the state is a few levels deep */

bool privs_user_name_valid(const char *name)
{
	size_t n = 0;

	if (!name || !name[0] || name[0] == '-' || name[0] == '.')
		return false;
	for (; name[n]; n++) {
		unsigned char ch = (unsigned char)name[n];
		if (n >= PRIVS_NAME_MAX - 1)
			return false;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* Look name up in the user database.  0, -ENOENT, or -errno. */
static int lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	size_t len = 16384;
	char *buf = NULL;
	int rc;

	for (;;) {
		char *nb = realloc(buf, len);
		if (!nb) {
			rc = ENOMEM;
			break;
		}
		buf = nb;
		rc = getpwnam_r(name, &pw, buf, len, &res);
		if (rc != ERANGE || len >= (1u << 20))
			break;
		len *= 2;
	}
	if (rc == 0 && res) {
		*uid = pw.pw_uid;
		*gid = pw.pw_gid;
	}
	free(buf);
	if (rc)
		return -rc;
	return res ? 0 : -ENOENT;
}

/* Set the calling thread's inheritable capability set to empty, keeping
 * its permitted and effective sets (still needed until privs_drop). */
static int clear_inheritable(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	for (unsigned i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		data[i].inheritable = 0;
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

int privs_prepare(struct privs *p, const char *user)
{
	int rc, bits;

	memset(p, 0, sizeof(*p));
	if (!privs_user_name_valid(user)) {
		log_err("user '%s' is not a valid user name", user);
		return -1;
	}
	if (getuid() != 0 || geteuid() != 0) {
		log_err("user %s: pristined switches users only when started as root (it runs as "
			"uid %u); start it as root, or without --user / user =", user, (unsigned)geteuid());
		return -1;
	}
	rc = lookup_user(user, &p->uid, &p->gid);
	if (rc == -ENOENT) {
		log_err("user %s does not exist: create it with `useradd --system --no-create-home "
			"--shell /usr/sbin/nologin %s` (make install does), or name another user", user, user);
		return -1;
	}
	if (rc) {
		log_err("user %s: cannot look it up: %s", user, strerror(-rc));
		return -1;
	}
	if (p->uid == 0 || p->gid == 0) {
		log_err("user %s has uid %u and group %u: running as it would keep root's rights; "
			"name an unprivileged user", user, (unsigned)p->uid, (unsigned)p->gid);
		return -1;
	}
	snprintf(p->user, sizeof(p->user), "%s", user);

	/* A caller (a service manager) may have set securebits that keep
	 * capabilities across the uid change: refuse rather than run with them. */
	bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	if (bits < 0 || (bits & (SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP))) {
		log_err("user %s: securebits %#x keep capabilities across a uid change; not dropping "
			"root halfway", user, bits < 0 ? 0 : (unsigned)bits);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		log_err("prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		return -1;
	}
	/* EINVAL: a kernel without ambient capabilities (before 4.3) has none. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) {
		log_err("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %s", strerror(errno));
		return -1;
	}
	if ((rc = clear_inheritable())) {
		log_err("capset (clearing the inheritable set): %s", strerror(-rc));
		return -1;
	}
	/* The bounding set only limits what an execve could grant: emptying it
	 * now costs nothing that the start still needs. */
	for (int cap = 0; cap < 64; cap++) {
		int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (in < 0 && errno == EINVAL)
			break;   /* past the kernel's last capability */
		if (in < 0) {
			log_err("prctl(PR_CAPBSET_READ, %d): %s", cap, strerror(errno));
			return -1;
		}
		if (in && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) {
			log_err("cannot drop capability %d from the bounding set: %s (pristined needs "
				"CAP_SETPCAP at start to do so)", cap, strerror(errno));
			return -1;
		}
	}
	p->prepared = true;
	return 0;
}

/* ------------------------------------------------------------ the state */

struct own_walk {
	const struct privs *p;
	dev_t dev;              /* the state directory's file system */
	unsigned handed;        /* entries chowned */
	char path[PATH_MAX];    /* of the entry being looked at, for messages */
	size_t len;
	const char *state;
};

static int own_entry(struct own_walk *w, int fd, int depth);

/* Walk directory fd (an O_PATH descriptor): every entry, recursively. */
static int own_dir(struct own_walk *w, int fd, int depth)
{
	struct dirent *de;
	DIR *d;
	int dfd, rc = 0;

	if (depth >= OWN_DEPTH_MAX) {
		log_err("state directory: %s is more than %d levels deep; not handing it over",
			w->path, OWN_DEPTH_MAX);
		return -1;
	}
	/* "." through the O_PATH descriptor: the very directory checked. */
	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		log_err("state directory: cannot read %s: %s", w->path, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name), saved = w->len;
		int cfd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (w->len + 1 + nl >= sizeof(w->path)) {
			log_err("state directory: a path under %s is too long", w->path);
			rc = -1;
			break;
		}
		w->path[w->len++] = '/';
		memcpy(w->path + w->len, de->d_name, nl + 1);
		w->len += nl;
		cfd = openat(dirfd(d), de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (cfd >= 0) {
			rc = own_entry(w, cfd, depth + 1);
			close(cfd);
		} else if (errno != ENOENT) {   /* ENOENT: gone meanwhile (the purger) */
			log_err("state directory: %s: %s", w->path, strerror(errno));
			rc = -1;
		}
		w->len = saved;
		w->path[w->len] = '\0';
	}
	if (rc == 0 && errno) {
		log_err("state directory: reading %s: %s", w->path, strerror(errno));
		rc = -1;
	}
	closedir(d);
	return rc;
}

/* One entry (fd: O_PATH|O_NOFOLLOW, path in w->path): hand it over if
 * root's, refuse it if a third user's, then its contents if a directory. */
static int own_entry(struct own_walk *w, int fd, int depth)
{
	const struct privs *p = w->p;
	struct stat st;

	if (fstat(fd, &st)) {
		log_err("state directory: %s: %s", w->path, strerror(errno));
		return -1;
	}
	if (st.st_dev != w->dev)
		return 0;   /* another file system mounted in the state: not ours to change */
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return 0;   /* symlinks (not followed), the root-only admin socket, ... */
	if (st.st_uid != 0 && st.st_uid != p->uid) {
		log_err("state directory: %s belongs to uid %u, neither root nor %s: pristined hands "
			"over only root's files; if the state is meant for %s: chown -R %s: %s",
			w->path, (unsigned)st.st_uid, p->user, p->user, p->user, w->state);
		return -1;
	}
	if (st.st_uid == 0) {
		if (S_ISREG(st.st_mode) && st.st_nlink != 1) {
			log_err("state directory: %s is root's and has %lu hard links; pristined's own "
				"files have one: not handing it over (remove the other links)",
				w->path, (unsigned long)st.st_nlink);
			return -1;
		}
		if (fchownat(fd, "", p->uid, p->gid, AT_EMPTY_PATH)) {
			log_err("state directory: cannot give %s to %s: %s", w->path, p->user,
				strerror(errno));
			return -1;
		}
		w->handed++;
	}
	return S_ISDIR(st.st_mode) ? own_dir(w, fd, depth) : 0;
}

int privs_own_state(const struct privs *p, const char *state)
{
	struct own_walk *w;
	struct stat st;
	int fd, rc = -1;

	if (!p->prepared)
		return -1;
	w = calloc(1, sizeof(*w));
	if (!w) {
		log_err("state directory: out of memory");
		return -1;
	}
	w->p = p;
	w->state = state;
	fd = open(state, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		log_err("state directory %s: %s", state, strerror(errno));
		goto out;
	}
	if (strlen(state) >= sizeof(w->path)) {
		log_err("state directory %s: path too long", state);
		goto out;
	}
	w->dev = st.st_dev;
	w->len = strlen(state);
	memcpy(w->path, state, w->len + 1);
	rc = own_entry(w, fd, 0);
	if (rc == 0 && w->handed)
		log_notice("state directory %s: %u entr%s handed over to user %s", state, w->handed,
			   w->handed == 1 ? "y" : "ies", p->user);
out:
	if (fd >= 0)
		close(fd);
	free(w);
	return rc ? -1 : 0;
}

/* ------------------------------------------------------------- the drop */

/* Copy the value of line "Key:\tvalue" of a status file's text into out:
 * 0, or -1 when there is no such line (or it does not fit). */
static int status_field(const char *text, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key);
	const char *s = text;

	while (s && *s) {
		if (strncmp(s, key, kl) == 0 && s[kl] == ':') {
			const char *v = s + kl + 1, *e;
			size_t n;
			while (*v == '\t' || *v == ' ')
				v++;
			e = strchr(v, '\n');
			n = e ? (size_t)(e - v) : strlen(v);
			if (n >= outlen)
				return -1;
			memcpy(out, v, n);
			out[n] = '\0';
			return 0;
		}
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	return -1;
}

/* "a\tb\tc\td" are all id?  (Uid: and Gid: lines: real, effective,
 * saved, file system.) */
static bool all_ids(const char *v, unsigned id)
{
	unsigned n = 0;
	char *end;

	while (*v) {
		unsigned long x = strtoul(v, &end, 10);
		if (end == v || x != id)
			return false;
		n++;
		v = end;
		while (*v == '\t' || *v == ' ')
			v++;
	}
	return n == 4;
}

/* Check one thread's status file.  0, or -1 with the reason logged. */
static int check_task(const struct privs *p, const char *tid)
{
	static const char *const caps[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
	char path[64], text[8192], v[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%s/status", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;   /* ENOENT: the thread ended */
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0) {
		log_err("privileges: cannot read %s", path);
		return -1;
	}
	text[n] = '\0';
	if (status_field(text, "Uid", v, sizeof(v)) || !all_ids(v, (unsigned)p->uid) ||
	    status_field(text, "Gid", v, sizeof(v)) || !all_ids(v, (unsigned)p->gid)) {
		log_err("privileges: thread %s does not run as uid %u gid %u", tid, (unsigned)p->uid,
			(unsigned)p->gid);
		return -1;
	}
	for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (status_field(text, caps[i], v, sizeof(v))) {
			if (i == 4)
				continue;   /* no CapAmb line: a kernel without ambient sets */
			log_err("privileges: no %s line in %s", caps[i], path);
			return -1;
		}
		if (strtoull(v, NULL, 16) != 0) {
			log_err("privileges: thread %s still has capabilities: %s %s", tid, caps[i], v);
			return -1;
		}
	}
	if (status_field(text, "NoNewPrivs", v, sizeof(v)) == 0 && strcmp(v, "1") != 0) {
		log_err("privileges: thread %s has NoNewPrivs %s", tid, v);
		return -1;
	}
	return 0;
}

/* Every thread of the process: privileges really gone. */
static int check_all_tasks(const struct privs *p)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d;
	int rc = 0;

	d = opendir("/proc/self/task");
	if (!d) {
		log_err("privileges: cannot verify the drop: /proc/self/task: %s", strerror(errno));
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		rc = check_task(p, de->d_name);
		n++;
	}
	closedir(d);
	if (rc == 0 && n == 0) {
		log_err("privileges: cannot verify the drop: no thread in /proc/self/task");
		rc = -1;
	}
	/* Our own thread without relying on /proc's format: */
	if (rc == 0 && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		log_err("privileges: no_new_privs is not set");
		rc = -1;
	}
	return rc;
}

int privs_drop(const struct privs *p, const char *state)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	gid_t *groups = NULL;
	int ng, rc = -1;

	if (!p->prepared)
		return -1;
	/* Supplementary groups from the group database (e.g. disk, for block
	 * devices added at runtime), then the group, then the user. */
	if (initgroups(p->user, p->gid)) {
		log_err("user %s: initgroups: %s", p->user, strerror(errno));
		return -1;
	}
	if (setresgid(p->gid, p->gid, p->gid)) {
		log_err("user %s: setresgid(%u): %s", p->user, (unsigned)p->gid, strerror(errno));
		return -1;
	}
	if (setresuid(p->uid, p->uid, p->uid)) {
		log_err("user %s: setresuid(%u): %s", p->user, (unsigned)p->uid, strerror(errno));
		return -1;
	}
	/* There must be no way back. */
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0) {
		log_err("user %s: root could be regained after the switch; stopping", p->user);
		return -1;
	}
	if (getresuid(&ru, &eu, &su) || ru != p->uid || eu != p->uid || su != p->uid ||
	    getresgid(&rg, &eg, &sg) || rg != p->gid || eg != p->gid || sg != p->gid) {
		log_err("user %s: the uid/gid switch did not take", p->user);
		return -1;
	}
	ng = getgroups(0, NULL);
	if (ng < 0 || !(groups = calloc((size_t)ng + 1, sizeof(*groups))) ||
	    (ng = getgroups(ng, groups)) < 0) {
		log_err("user %s: getgroups: %s", p->user, ng < 0 ? strerror(errno) : "out of memory");
		goto out;
	}
	for (int i = 0; i < ng; i++)
		if (groups[i] == 0) {
			log_err("user %s is a member of group 0 (root): remove it from that group", p->user);
			goto out;
		}
	if (check_all_tasks(p))
		goto out;
	if (access(state, R_OK | W_OK | X_OK)) {
		log_err("state directory %s cannot be used by user %s: %s (it and every directory "
			"above it must be searchable by %s)", state, p->user, strerror(errno), p->user);
		goto out;
	}
	log_notice("running as user %s (uid %u, gid %u, %d group%s), no capabilities, no_new_privs",
		   p->user, (unsigned)p->uid, (unsigned)p->gid, ng, ng == 1 ? "" : "s");
	rc = 0;
out:
	free(groups);
	return rc;
}
