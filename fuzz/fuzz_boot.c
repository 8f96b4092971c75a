/*
 * fuzz_boot.c - libFuzzer harness: what a boot request carries (the query
 * parameters and the Host header, boot_parse_param / boot_host_valid) and
 * the scripts made from it (boot_script_chain / boot_script).
 * Input: "key=value" records separated by 0x1e (so values may hold
 * newlines); "host=" is the Host header, "who=" the client's name and a
 * message, others are query parameters.  Whatever passes the checks must make a script with
 * no way out of its line: no newline, '$' or '|' from the input, so no
 * injected iPXE command or variable.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Lines of the script that carry request data must be what we wrote. */
static void check_script(const char *s, int n)
{
	int lines = 0;

	if (n < 0)
		return;
	if ((size_t)n != strlen(s))
		abort();
	for (const char *p = s; *p; p++) {
		lines += *p == '\n';
		if (*p == '|' && p[1] != '|' && p[-1] != '|')
			abort();
	}
	/* The fixed shapes: chain 8 lines, message 7, sanboot 11. */
	if (lines != 7 && lines != 8 && lines != 11)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct boot_request rq = { 0 };
	struct boot_answer a = { 0 };
	char buf[4096], line[600], err[128], script[4096];
	size_t n = size < sizeof(buf) - 1 ? size : sizeof(buf) - 1;
	char *save = NULL;

	memcpy(buf, data, n);
	buf[n] = '\0';
	snprintf(rq.self, sizeof(rq.self), "10.0.0.1:8180");
	for (char *l = strtok_r(buf, "\x1e", &save); l; l = strtok_r(NULL, "\x1e", &save)) {
		char *eq = strchr(l, '=');
		if (!eq)
			continue;
		*eq = '\0';
		snprintf(line, sizeof(line), "%s", eq + 1);
		if (strcmp(l, "host") == 0) {
			if (boot_host_valid(line)) {
				if (strpbrk(line, "$|\n\r /?#&;\"'\\"))
					abort();
				snprintf(rq.self, sizeof(rq.self), "%s", line);
			}
		} else if (strcmp(l, "who") == 0) {
			snprintf(a.who, sizeof(a.who), "%s", line);
			snprintf(a.message, sizeof(a.message), "%s", line);
		} else if (boot_parse_param(&rq, l, line, err, sizeof(err)) == 0) {
			if (strpbrk(rq.mac, "$|\n ") || strpbrk(rq.uuid, "$|\n ") || strpbrk(rq.ip, "$|\n "))
				abort();
		}
	}
	check_script(script, boot_script_chain(rq.self, script, sizeof(script)));
	a.kind = BOOT_MESSAGE;
	check_script(script, boot_script(&a, &rq, script, sizeof(script)));
	a.kind = BOOT_SANBOOT;
	snprintf(a.initiator, sizeof(a.initiator), "iqn.2026-11.org.pristine:pc-1");
	snprintf(a.target, sizeof(a.target), "iqn.2026-11.org.pristine:img");
	snprintf(a.portal, sizeof(a.portal), "%s", rq.self);
	check_script(script, boot_script(&a, &rq, script, sizeof(script)));
	return 0;
}
