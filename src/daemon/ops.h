/*
 * ops.h - the daemon's implementation of the admin API operations.
 */
#ifndef PRISTINE_OPS_H
#define PRISTINE_OPS_H

#include "control/control.h"
#include "daemon/clients.h"
#include "proto/iscsi.h"

struct daemon_ctx {
	struct registry *reg;
	struct iscsi_server *srv;
};

/* Fill ops with the daemon's operations over d (borrowed). */
void daemon_ops_init(struct daemon_ctx *d, struct control_ops *ops);

#endif
