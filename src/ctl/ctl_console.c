/*
 * ctl_console.c - pristinectl console passwd [--stdin]: set the web
 * console's password.  Asked twice on the terminal without echo, or read
 * as one line from standard input with --stdin (scripts); sent to the
 * daemon (POST /v1/console/passwd), which keeps only its Argon2id hash.
 * The password never appears on a command line (ps would show it).
 */
#include "ctl/ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PW_MAX 1024

/* Read one line from f into buf (len bytes), without its newline.
 * 0, or -1 on end of input or a line too long. */
static int read_line(FILE *f, char *buf, size_t len)
{
	size_t n;

	if (!fgets(buf, (int)len, f))
		return -1;
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(f))
		return -1;   /* longer than the buffer */
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 0;
}

/* Ask prompt on the terminal with echo off; the answer into buf. */
static int ask(FILE *tty, const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	int fd = fileno(tty), rc, echo_off;

	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	echo_off = tcgetattr(fd, &old) == 0;
	if (echo_off) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	rc = read_line(tty, buf, len);
	if (echo_off)
		tcsetattr(fd, TCSAFLUSH, &old);
	return rc;
}

static int console_passwd(const struct ctl *c, bool from_stdin)
{
	char pw[PW_MAX + 2], again[PW_MAX + 2];
	json_t *out = NULL, *body;
	int rc;

	if (from_stdin) {
		if (read_line(stdin, pw, sizeof(pw))) {
			fprintf(stderr, "pristinectl: no password on standard input (one line, at "
				"most %d bytes)\n", PW_MAX);
			return CTL_EUSAGE;
		}
	} else {
		FILE *tty = fopen("/dev/tty", "r+e");
		if (!tty) {
			fprintf(stderr, "pristinectl: no terminal to ask the password on (use --stdin)\n");
			return CTL_EUSAGE;
		}
		rc = ask(tty, "New console password: ", pw, sizeof(pw)) ||
		     ask(tty, "Again: ", again, sizeof(again));
		fclose(tty);
		if (rc) {
			fprintf(stderr, "pristinectl: no password read (at most %d bytes)\n", PW_MAX);
			return CTL_EUSAGE;
		}
		rc = strcmp(pw, again);
		memset(again, 0, sizeof(again));
		if (rc) {
			memset(pw, 0, sizeof(pw));
			fprintf(stderr, "pristinectl: the two passwords differ; nothing changed\n");
			return CTL_EUSAGE;
		}
	}
	body = json_pack("{s:s}", "password", pw);
	memset(pw, 0, sizeof(pw));
	if (!body) {
		fprintf(stderr, "pristinectl: the password must be UTF-8 text\n");
		return CTL_EUSAGE;
	}
	rc = ctl_call_json(c, "POST", "/v1/console/passwd", body, NULL, &out);
	if (rc)
		return rc;
	if (c->json)
		ctl_print_json(out, stdout);
	else
		printf("console password set (console sessions begun before have ended)\n");
	json_decref(out);
	return CTL_OK;
}

int do_console(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o)
{
	int rc;

	if (argc == 1 && !strcmp(argv[0], "passwd"))
		return (rc = opts_only(o, "console passwd", "s")) ? rc : console_passwd(c, o->from_stdin);
	return usage_error("console needs a verb: passwd [--stdin]");
}
