/*
 * test_statedir_lock.c - the state directory's lock (statedir_lock in
 * src/lab/statedir.c): one holder at a time, the holder's PID for the
 * message, released when its descriptor closes, a stale file never
 * blocks, the file kept 0600, links refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lab/statedir.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pristine-lock.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void lock_path(char *out, size_t len)
{
	assert_int_equal(statedir_file(out, len, dir, STATEDIR_LOCK), 0);
}

/* flock locks belong to open file descriptions: a second open in the same
 * process conflicts like another daemon would. */
static void test_one_holder(void **state)
{
	char path[PATH_MAX], buf[32] = "";
	struct stat st;
	long holder = -1;
	int fd, fd2, fd3, rfd;

	(void)state;
	fd = statedir_lock(dir, &holder);
	assert_true(fd >= 0);
	assert_int_equal(holder, 0);
	lock_path(path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	rfd = open(path, O_RDONLY);
	assert_true(rfd >= 0);
	assert_true(read(rfd, buf, sizeof(buf) - 1) > 0);
	close(rfd);
	assert_int_equal(atol(buf), (long)getpid());

	fd2 = statedir_lock(dir, &holder);
	assert_int_equal(fd2, -EWOULDBLOCK);
	assert_int_equal(holder, (long)getpid());

	close(fd);   /* as the kernel does when the holder dies */
	fd3 = statedir_lock(dir, &holder);
	assert_true(fd3 >= 0);
	close(fd3);
}

/* A file a dead daemon left, with another PID and loose bits: taken, made
 * 0600, our PID written over the old one. */
static void test_stale_file(void **state)
{
	char path[PATH_MAX], buf[32] = "";
	struct stat st;
	long holder = -1;
	FILE *f;
	int fd, rfd;

	(void)state;
	lock_path(path, sizeof(path));
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "999999999\n");
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0);
	fd = statedir_lock(dir, &holder);
	assert_true(fd >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	rfd = open(path, O_RDONLY);
	assert_true(rfd >= 0);
	assert_true(read(rfd, buf, sizeof(buf) - 1) > 0);
	close(rfd);
	assert_int_equal(atol(buf), (long)getpid());
	close(fd);
}

/* Root writes into the file: a symlink or a hard link to something else
 * is refused, and that something is left as it was. */
static void test_links_refused(void **state)
{
	char path[PATH_MAX], other[PATH_MAX], buf[16] = "";
	long holder = -1;
	FILE *f;
	int rfd;

	(void)state;
	lock_path(path, sizeof(path));
	snprintf(other, sizeof(other), "%s/precious", dir);
	f = fopen(other, "w");
	assert_non_null(f);
	fprintf(f, "keep me");
	fclose(f);

	assert_int_equal(symlink(other, path), 0);
	assert_true(statedir_lock(dir, &holder) < 0);
	assert_int_not_equal(statedir_lock(dir, &holder), -EWOULDBLOCK);
	assert_int_equal(unlink(path), 0);

	assert_int_equal(link(other, path), 0);
	assert_int_equal(statedir_lock(dir, &holder), -EPERM);
	assert_int_equal(unlink(path), 0);

	rfd = open(other, O_RDONLY);
	assert_true(rfd >= 0);
	assert_int_equal(read(rfd, buf, sizeof(buf) - 1), 7);
	close(rfd);
	assert_string_equal(buf, "keep me");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
