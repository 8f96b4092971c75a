/*
 * boot.h - the HTTP boot endpoint: iPXE chains to
 * http://SERVER:PORT/boot.ipxe and gets a script made for that PC.
 *
 * Two steps.  A request without identification (what a DHCP server's
 * boot file name points at) gets a script that chains again, adding
 * iPXE's own variables: ?mac=${mac:hexhyp}&uuid=${uuid}&ip=${ip}.  The
 * second request is resolved by the daemon (struct boot_hooks) into a
 * sanboot of the PC's image under its own initiator name, or a message
 * (unknown PC under enroll = deny, a PC that is online elsewhere...).
 *
 * Everything in a request is hostile until checked: parameters are
 * parsed strictly (boot_parse_param), the Host header is accepted only
 * as a name or numeric address (boot_host_valid), and nothing from the
 * request reaches a script without passing those checks.
 *
 * The HTTP side (boot_http.c) uses libmicrohttpd: a few threads, bounded
 * connections per address, short timeouts, GET only.
 */
#ifndef PRISTINE_BOOT_H
#define PRISTINE_BOOT_H

#include <stdbool.h>
#include <stddef.h>

#define BOOT_HOST_MAX 256

struct boot_request {
	char mac[18];                 /* "aa:bb:cc:dd:ee:ff", "" if not given */
	char uuid[37];                /* lower-case 8-4-4-4-12, "" if not given */
	char ip[46];                  /* the address iPXE reports, "" if not given */
	char peer[46];                /* the TCP peer, numeric */
	char host[BOOT_HOST_MAX];     /* Host header (validated), "" if none */
	char self[BOOT_HOST_MAX];     /* host[:port] to chain back to */
};

enum boot_kind {
	BOOT_SANBOOT,                 /* boot the target as initiator */
	BOOT_MESSAGE,                 /* show message, wait, give up (next boot device) */
};

struct boot_answer {
	enum boot_kind kind;
	char initiator[224];
	char target[224];
	char portal[BOOT_HOST_MAX + 8];   /* HOST:PORT of the iSCSI portal */
	char who[256];                /* for the script's comment and the log */
	char message[512];
	/* CHAP the PC logs in with ("" = none; mutual_* "" = one-way): written
	 * into the script as iPXE settings, each boot_setting_safe().  The
	 * HTTP layer wipes the answer and the script once sent. */
	char chap_user[256], chap_secret[256];
	char mutual_user[256], mutual_secret[256];
};

/*
 * Can v be an iPXE setting value in a script, exactly as is?  Visible
 * ASCII without '$' (iPXE expands ${...} everywhere), quotes, backslash
 * or '#'; not empty.
 */
bool boot_setting_safe(const char *v);

struct boot_hooks {
	/* Fill ans for rq.  Called on an HTTP thread; returns 0, or -errno
	 * (then the client gets HTTP 500 and the reason is logged). */
	int (*resolve)(void *ctx, const struct boot_request *rq, struct boot_answer *ans);
	void *ctx;
};

/*
 * Check and store one query parameter into rq: mac (12 hex digits,
 * separated by ':' or '-' or not at all), uuid (8-4-4-4-12 hex), ip
 * (numeric IPv4 or IPv6).  An empty value means "not known" (iPXE
 * expands unknown variables to "").  Unknown keys are ignored.  0 or
 * -EINVAL (err set).
 */
int boot_parse_param(struct boot_request *rq, const char *key, const char *val,
		     char *err, size_t errlen);
/* HOST or HOST:PORT: a DNS name, a numeric IPv4, or [IPv6]. */
bool boot_host_valid(const char *s);
/*
 * The scripts.  boot_script_chain: the first step (chain back to
 * http://SELF/boot.ipxe with iPXE's variables).  boot_script: the answer.
 * Return the length written, or -ENOSPC.
 */
int boot_script_chain(const char *self, char *out, size_t len);
int boot_script(const struct boot_answer *a, const struct boot_request *rq, char *out, size_t len);

struct boot_server;

/*
 * Serve the endpoint on an already listening TCP socket fd (taken over).
 * hooks is borrowed.  0 and *out, or -errno (logged).
 */
int boot_start(int fd, const char *name, const struct boot_hooks *hooks, struct boot_server **out);
void boot_stop(struct boot_server *b);

#endif
