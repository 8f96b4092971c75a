/*
 * console_passwd.c - the console's password: kept only as libsodium's
 * crypto_pwhash_str (Argon2id with its INTERACTIVE limits: ~0.1 s and
 * 64 MiB per check, a slow hash made for passwords) in
 * STATE/console/passwd, 0600, replaced atomically (util/atomicfile.h).
 *
 * The file is read at every login, so a new password counts at once;
 * the generation counter makes every session begun under the old one
 * end.  Checks are capped at CONSOLE_VERIFY_MAX at once: each holds
 * 64 MiB, and a flood of logins must not take the box's memory.  A
 * check waits up to VERIFY_WAIT_MS for a turn, then is refused (429).
 */
#include "console/console.h"
#include "console/console_int.h"
#include "admin/ops.h"
#include "util/atomicfile.h"
#include "util/events.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VERIFY_WAIT_MS 2000

static pthread_mutex_t verify_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t verify_cv = PTHREAD_COND_INITIALIZER;
static unsigned verifying;
static unsigned generation;     /* under verify_lock */

unsigned console_passwd_generation(void *ctx)
{
	unsigned g;

	(void)ctx;
	pthread_mutex_lock(&verify_lock);
	g = generation;
	pthread_mutex_unlock(&verify_lock);
	return g;
}

/* Read STATE/console/passwd's hash into out (outlen bytes).  0, -ENOENT
 * when there is none, or -errno / -EINVAL (err set). */
static int passwd_read(const char *state, char *out, size_t outlen, char *err, size_t errlen)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd, rc = 0;

	if (snprintf(path, sizeof(path), "%s/" CONSOLE_DIR "/" CONSOLE_PASSWD_FILE, state) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		if (rc != -ENOENT)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	n = read(fd, out, outlen - 1);
	if (n < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	} else {
		out[n] = '\0';
		out[strcspn(out, "\n")] = '\0';
		if (!out[0]) {
			rc = -ENOENT;
		} else if (strncmp(out, crypto_pwhash_STRPREFIX, strlen(crypto_pwhash_STRPREFIX))) {
			snprintf(err, errlen, "%s: not a password hash this daemon knows; set the "
				 "password again (pristinectl console passwd)", path);
			rc = -EINVAL;
		}
	}
	close(fd);
	return rc;
}

int console_passwd_verify(void *ctx, const char *password, char *err, size_t errlen)
{
	const char *state = ctx;
	char hash[crypto_pwhash_STRBYTES + 2];
	struct timespec until;
	int rc;

	rc = passwd_read(state, hash, sizeof(hash), err, errlen);
	if (rc)
		return rc;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += VERIFY_WAIT_MS / 1000;
	pthread_mutex_lock(&verify_lock);
	while (verifying >= CONSOLE_VERIFY_MAX)
		if (pthread_cond_timedwait(&verify_cv, &verify_lock, &until) == ETIMEDOUT)
			break;
	if (verifying >= CONSOLE_VERIFY_MAX) {
		pthread_mutex_unlock(&verify_lock);
		return -EBUSY;
	}
	verifying++;
	pthread_mutex_unlock(&verify_lock);
	rc = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0 ? 0 : -EACCES;
	pthread_mutex_lock(&verify_lock);
	verifying--;
	pthread_cond_signal(&verify_cv);
	pthread_mutex_unlock(&verify_lock);
	return rc;
}

int console_passwd_op(void *ctx, json_t *body, json_t **out, char *err, size_t errlen)
{
	const struct daemon_ctx *d = ctx;
	char dir[PATH_MAX], hash[crypto_pwhash_STRBYTES + 1];
	json_t *pw = json_object_get(body, "password");
	const char *p;
	size_t len;
	int rc;

	if (!json_is_string(pw)) {
		snprintf(err, errlen, "the body must be {\"password\": \"...\"}");
		return -EINVAL;
	}
	p = json_string_value(pw);
	len = json_string_length(pw);
	if (strlen(p) != len) {
		snprintf(err, errlen, "the password must not hold a NUL byte");
		return -EINVAL;
	}
	if (len < CONSOLE_PASSWD_MIN) {
		snprintf(err, errlen, "password too short: at least %d characters", CONSOLE_PASSWD_MIN);
		return -EINVAL;
	}
	if (len > CONSOLE_PASSWD_MAX) {
		snprintf(err, errlen, "password too long: at most %d bytes", CONSOLE_PASSWD_MAX);
		return -EINVAL;
	}
	if (!d || !d->state) {
		snprintf(err, errlen, "this daemon has no state directory for the console password");
		return -ENOSYS;
	}
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium did not initialise");
		return -EIO;
	}
	if (crypto_pwhash_str(hash, p, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE)) {
		snprintf(err, errlen, "cannot hash the password: out of memory");
		return -ENOMEM;
	}
	if (snprintf(dir, sizeof(dir), "%s/" CONSOLE_DIR, d->state) >= (int)sizeof(dir)) {
		snprintf(err, errlen, "state directory path too long");
		return -ENAMETOOLONG;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return rc;
	}
	strcat(hash, "\n");
	rc = atomicfile_write(dir, CONSOLE_PASSWD_FILE, hash, strlen(hash), 0600);
	sodium_memzero(hash, sizeof(hash));
	if (rc) {
		snprintf(err, errlen, "%s/%s: %s", dir, CONSOLE_PASSWD_FILE, strerror(-rc));
		return rc;
	}
	pthread_mutex_lock(&verify_lock);
	generation++;
	pthread_mutex_unlock(&verify_lock);
	log_notice("console: password changed (every console session ends)");
	events_add(EV_CONSOLE, NULL, NULL, "console password changed");
	*out = json_object();
	return 0;
}
