/*
 * options.h - pristined's command line.  Both ways of starting end in
 * the same struct config (config.h): `-c FILE` is config_load's, and quick
 * mode (`--image PATH ...`) is a configuration built here from the
 * options, with one image and no clients, so that setup.c starts both
 * through one code path.
 */
#ifndef PRISTINE_OPTIONS_H
#define PRISTINE_OPTIONS_H

#include "daemon/config.h"

#include <stdio.h>

/* options_parse's results besides 0 (start): the exit status to end with. */
#define OPTIONS_EXIT_OK 1      /* --help or --version printed: exit 0 */
#define OPTIONS_EXIT_BAD 2     /* a bad option, value or file: exit 2 */

/*
 * Turn argv into *cfg.  Returns 0 when the daemon should start: *cfg is
 * filled (release it with config_free) and *cfg_path is the -c FILE (a
 * pointer into argv) or NULL in quick mode.  Returns OPTIONS_EXIT_OK after
 * printing --help or --version, or OPTIONS_EXIT_BAD after printing to
 * stderr, for each bad option, "pristined: --OPTION: what is wrong" (for a
 * bad file, its FILE:LINE messages); *cfg then holds nothing to free.
 *
 * Quick-mode options are refused beside -c FILE (the file says all of
 * it); --user, --zero-copy and --log-level also apply to a file and win
 * over it.  Sets the log level.  Not thread-safe (getopt).
 */
int options_parse(int argc, char **argv, struct config *cfg, const char **cfg_path);

#endif
