/*
 * hooks.h - what the lab asks of the iSCSI server, as a small struct of
 * function pointers, so that a registry can be created and driven
 * without one (unit tests pass fakes; the daemon passes
 * lab_hooks_iscsi()).
 *
 * end_sessions is called WITHOUT the registry lock (the sessions' threads
 * take it to detach); add_target and foreach_session are called with it
 * held and must not call back into the registry.  A NULL hook is skipped
 * (no server: nothing to add, no session to end or count).
 */
#ifndef PRISTINE_LAB_HOOKS_H
#define PRISTINE_LAB_HOOKS_H

#include "proto/iscsi.h"

struct lab_hooks {
	void *ctx;
	/* Serve target t from now on (t is owned by its image).  0 or -errno. */
	int (*add_target)(void *ctx, struct iscsi_target *t);
	/* End every session of initiator; they detach on their own threads. */
	void (*end_sessions)(void *ctx, const char *initiator);
	/* Call fn(arg, info) for every live session. */
	void (*foreach_session)(void *ctx, void (*fn)(void *arg, const struct iscsi_session_info *si),
				void *arg);
};

/* Hooks that call srv (which must outlive the registry). */
struct lab_hooks lab_hooks_iscsi(struct iscsi_server *srv);

#endif
