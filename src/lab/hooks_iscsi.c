/*
 * hooks_iscsi.c - the lab's hooks (hooks.h) served by the iSCSI server.
 */
#include "lab/hooks.h"

static int srv_add_target(void *ctx, struct iscsi_target *t)
{
	return iscsi_server_add_target(ctx, t);
}

static void srv_end_sessions(void *ctx, const char *initiator)
{
	iscsi_kill_initiator(ctx, initiator);
}

static void srv_foreach_session(void *ctx, void (*fn)(void *arg, const struct iscsi_session_info *si),
				void *arg)
{
	iscsi_session_foreach(ctx, fn, arg);
}

struct lab_hooks lab_hooks_iscsi(struct iscsi_server *srv)
{
	return (struct lab_hooks){ .ctx = srv, .add_target = srv_add_target,
				   .end_sessions = srv_end_sessions,
				   .foreach_session = srv_foreach_session };
}
