/*
 * pristinectl.c - the admin CLI.
 *
 * It talks to pristined's admin API, which arrives with image and client
 * management.  Until then it knows its own version and says plainly which
 * verbs are still to come, rather than pretending.
 */
#include <stdio.h>
#include <string.h>

#define PRISTINE_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pristinectl [--state DIR | --socket PATH] VERB ...\n"
		"verbs (planned): status, client, image, session, pxe\n"
		"This build of pristined has no admin API yet: only --version and --help work.\n");
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("pristinectl %s\n", PRISTINE_VERSION);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
