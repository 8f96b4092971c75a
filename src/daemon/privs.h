/*
 * privs.h - pristined gives up root after its start (--user NAME,
 * `user = NAME` in pristine.conf(5)).
 *
 * Root is needed only to start: to bind ports below 1024, to open golden
 * images and block devices whatever their owner, to create the root-only
 * admin socket.  Once every socket is bound and every image is open, the
 * daemon becomes NAME (its primary group and its supplementary groups
 * from the group database), with no capability left, and with
 * no_new_privs set, so that nothing it ever executes (qemu-img jobs) can
 * gain privileges either.  The switch is one-way.
 *
 * Three calls, in this order, from the main thread:
 *
 *   privs_prepare   before any thread is created: resolves NAME, checks
 *                   that the daemon runs as root, sets no_new_privs,
 *                   clears the ambient and inheritable sets and empties
 *                   the capability bounding set.  These are per-thread
 *                   attributes that threads and children inherit, which
 *                   is why they must be set before the first thread;
 *                   the capabilities in use (permitted, effective) stay
 *                   until privs_drop.
 *   privs_own_state while still root, after the start has written what it
 *                   writes: hands the state directory over to NAME (see
 *                   privs.c for what is and is not handed over).
 *   privs_drop      after every listening socket is bound: groups, gid,
 *                   uid, then checks every thread of the process in
 *                   /proc/self/task, and that NAME can use the state
 *                   directory.
 *
 * Errors: every call returns 0, or -1 after logging what went wrong and
 * how to fix it; the daemon must then not serve (a failed drop is never
 * ignored: half-dropped is not a state to run in).
 */
#ifndef PRISTINE_PRIVS_H
#define PRISTINE_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

#define PRIVS_NAME_MAX 33     /* user names: 1..32 bytes + NUL */

struct privs {
	char user[PRIVS_NAME_MAX];
	uid_t uid;
	gid_t gid;
	bool prepared;            /* privs_prepare succeeded */
};

/*
 * A plausible user name: 1..32 of [A-Za-z0-9._-], not starting with '-'
 * or '.'.  Only the syntax; whether the user exists is privs_prepare's.
 */
bool privs_user_name_valid(const char *name);

/*
 * Resolve user (a name) into *p and narrow what the process may ever
 * gain (see above).  Must be called as root (real and effective uid 0)
 * and before any thread exists.  A user with uid 0 or primary gid 0 is
 * refused: it would drop nothing.
 */
int privs_prepare(struct privs *p, const char *user);

/*
 * Hand the state directory state (an absolute path without symlinks,
 * e.g. from realpath) over to p's user: the directory and everything
 * below it that root owns becomes the user's.  Sockets (the admin
 * socket), symlinks and other file systems are left alone; an entry
 * owned by a third user, or a root file with several hard links, stops
 * the start with the command that fixes it.
 */
int privs_own_state(const struct privs *p, const char *state);

/*
 * Become p's user for good (process-wide: glibc applies set*id to every
 * thread), then verify it in every thread: Uid and Gid, no capability
 * in any set, no_new_privs.  Then check that the user can read, write
 * and search state.
 */
int privs_drop(const struct privs *p, const char *state);

#endif
