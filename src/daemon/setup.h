/*
 * setup.h - the one start and stop of pristined, whatever made its
 * configuration (-c FILE or the quick-mode options, options.h).
 */
#ifndef PRISTINE_SETUP_H
#define PRISTINE_SETUP_H

#include "daemon/config.h"

/*
 * Serve cfg until SIGTERM or SIGINT: open the images, build the registry
 * (or, for cfg->read_only, one shared write-protected LU), bind the
 * portals, start the admin API and the boot endpoint, drop root if a user
 * is set (cfg->user, else $PRISTINED_USER), tell systemd we are ready;
 * then stop in order and release everything.  cfg_path (may be NULL) only
 * names the file in messages.  cfg is borrowed for the call.  Returns the
 * process's exit status: 0 after a clean stop, 1 when the start failed
 * or the stop was not clean (messages logged).
 */
int daemon_run(const struct config *cfg, const char *cfg_path);

#endif
