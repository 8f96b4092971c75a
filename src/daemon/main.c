/*
 * main.c - pristined: the command line becomes a configuration
 * (options.c; quick mode and -c FILE alike), which setup.c serves.
 *
 * Quick mode exports one image as LUN 0 of one target:
 *   pristined --image PATH [--listen ADDR:PORT]... [--state DIR] ...
 * Config mode (-c FILE, pristine.conf(5)) serves every [image] and the
 * configured clients.  Exit status: 0 after a clean stop (or --help,
 * --version), 1 when the start fails or the stop is not clean, 2 for a
 * bad option, value or configuration file.
 */
#include "daemon/config.h"
#include "daemon/options.h"
#include "daemon/setup.h"

int main(int argc, char **argv)
{
	struct config cfg;
	const char *path;
	int rc = options_parse(argc, argv, &cfg, &path);

	if (rc == OPTIONS_EXIT_OK)
		return 0;
	if (rc)
		return 2;
	rc = daemon_run(&cfg, path);
	config_free(&cfg);
	return rc;
}
