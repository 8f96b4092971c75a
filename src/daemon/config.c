/*
 * config.c - pristine.conf: reading it (libinih), checking every value and
 * cross-reference, applying defaults.  Contract in config.h, format in
 * pristine.conf(5).
 *
 * Line numbers: libinih's handler is not told which line a key came from,
 * so the text goes through our own line reader (ini_parse_stream), which
 * counts lines; libinih calls the handler for the line just read, so the
 * count is the key's line.  The reader also deals with everything that is
 * about whole lines, so that each problem gets its own message instead of
 * libinih's single "first bad line":
 *   - section headers are parsed here and handed on as blank lines
 *     (libinih cuts section names at 50 bytes and says nothing about a
 *     section without keys, and both matter to us);
 *   - a line that is not KEY = VALUE, too long or holds a NUL byte is
 *     reported here and handed on blank;
 *   - leading blanks are stripped, so an indented key is a key and never
 *     libinih's "continuation" of the previous value.
 * libinih is left with splitting KEY = VALUE, trimming blanks and cutting
 * inline " ; comments".
 *
 * Checks happen in two passes: each value when its line is read (syntax,
 * range, repeats), then, once the whole file is known, everything that
 * relates sections to each other (missing keys, unknown images,
 * duplicates, inherited defaults, CHAP pairs, file permissions).  Every
 * parse state the second pass needs - the line of each key - lives in
 * struct parser, not in the public struct.
 */
#include "daemon/config.h"
#include "storage/bootset.h"
#include "lab/rules.h"
#include "lab/statedir.h"
#include "boot/boot.h"
#include "daemon/privs.h"
#include "util/parse.h"
#include "storage/cache.h"
#include "storage/rbd.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define CFG_LINE_MAX 8192      /* longest line, newline included */
#define CFG_MSG_MAX 320        /* one message, "FILE:LINE: " excluded */
#define KEYS_MAX 40

enum sec_kind { SEC_NONE, SEC_SKIP, SEC_SERVER, SEC_DEFAULTS, SEC_IMAGE, SEC_CLIENT, SEC_NETWORK };

enum { SK_LISTEN, SK_STATE, SK_SOCKET, SK_LOG_LEVEL, SK_NOP, SK_FLOOR, SK_BOOT_LISTEN,
       SK_BOOT_PORTAL, SK_MAX_CONNS, SK_MAX_LOGINS_ADDR, SK_MAX_SESS_INI, SK_LOGIN_TIMEOUT,
       SK_SEND_TIMEOUT, SK_USER, SK_D_CHAP_USER, SK_D_CHAP_SECRET, SK_D_MUTUAL_USER,
       SK_D_MUTUAL_SECRET, SK_ZERO_COPY, SK_CEPH_CONF, SK_CEPH_ID, SK_RBD_CACHE,
       SK_CEPH_OP_TIMEOUT, SK_CLUSTER_NAME, SK_CLUSTER_ADDRESS, SK_CLUSTER_POOL,
       SK_CLUSTER_DEAD_AFTER, SK_CONSOLE_LISTEN, SK_CONSOLE_CERT, SK_CONSOLE_KEY,
       SK_CONSOLE_SESSION_TIMEOUT, SK_METRICS_LISTEN, SK_PREFETCH, SK_BOOT_SET_MAX, SK_N };
enum { DK_ENROLL, DK_IMAGE, DK_POLICY, DK_RESET_AT, DK_QUOTA, DK_WAKE_AT, DK_N };
enum { IK_PATH, IK_TARGET, IK_BLOCK_SIZE, IK_RBD, IK_WAKE_AT, IK_DISKS, IK_DISK_POLICY,
       IK_DISK_QUOTA, IK_N };
enum { NK_SUBNET, NK_INTERFACE, NK_BROADCAST, NK_WAKE_PORT, NK_N };
enum { CK_INITIATOR, CK_MAC, CK_IP, CK_IMAGE, CK_POLICY, CK_RESET_AT, CK_QUOTA,
       CK_CHAP_USER, CK_CHAP_SECRET, CK_MUTUAL_USER, CK_MUTUAL_SECRET, CK_DISKS, CK_N };

/* Key names of each section kind, indexed by the enums above. */
static const char *const server_keys[SK_N] = {
	"listen", "state", "socket", "log-level", "nop-interval", "store-floor", "boot-listen",
	"boot-portal", "max-connections", "max-logins-per-address", "max-sessions-per-initiator",
	"login-timeout", "send-timeout",
	"user", "discovery-chap-user", "discovery-chap-secret", "discovery-mutual-user",
	"discovery-mutual-secret", "zero-copy", "ceph-conf", "ceph-id", "rbd-cache",
	"ceph-op-timeout", "cluster-name", "cluster-address", "cluster-pool", "cluster-dead-after",
	"console-listen", "console-cert", "console-key", "console-session-timeout", "metrics-listen",
	"prefetch", "boot-set-max",
};
static const char *const defaults_keys[DK_N] = {
	"enroll", "image", "policy", "reset-at", "quota", "wake-at",
};
static const char *const image_keys[IK_N] = {
	"path", "target", "block-size", "rbd", "wake-at", "disks", "disk-policy", "disk-quota",
};
static const char *const network_keys[NK_N] = { "subnet", "interface", "broadcast", "wake-port" };
static const char *const client_keys[CK_N] = {
	"initiator", "mac", "ip", "image", "policy", "reset-at", "quota",
	"chap-user", "chap-secret", "mutual-user", "mutual-secret", "disks",
};

/* Where a section and each of its keys were seen; 0 = not present. */
struct sec_lines {
	int hdr;
	int key[KEYS_MAX];
};

struct cfg_msg {
	int line;
	char text[CFG_MSG_MAX];
};

struct parser {
	const char *fname;
	const char *text;
	size_t len, pos;
	int lineno;                   /* line last handed to libinih */
	struct config *cfg;
	struct sec_lines server, defaults;
	struct sec_lines *img_lines;  /* parallel to cfg->images */
	struct sec_lines *cli_lines;  /* parallel to cfg->clients */
	struct sec_lines *net_lines;  /* parallel to cfg->wake.nets */
	unsigned cap_images, cap_clients, cap_nets;
	enum sec_kind kind;           /* section the next keys belong to */
	unsigned idx;                 /* its index for SEC_IMAGE/SEC_CLIENT */
	int secret_line;              /* first line holding a CHAP secret */
	bool oom;
	unsigned nerr;                /* every error, even those not kept */
	struct cfg_msg msgs[CFG_MAX_ERRORS];
};

static void cfg_err(struct parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record one error at line (kept if fewer than CFG_MAX_ERRORS so far). */
static void cfg_err(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	if (p->nerr++ >= CFG_MAX_ERRORS)
		return;
	p->msgs[p->nerr - 1].line = line;
	va_start(ap, fmt);
	vsnprintf(p->msgs[p->nerr - 1].text, CFG_MSG_MAX, fmt, ap);
	va_end(ap);
}

/* A printable, bounded copy of text from the file, for messages. */
static const char *q(const char *s, char *buf, size_t len)
{
	return log_safe(s, buf, len);
}

/* "[server]", "[image win10]"... of the current section, for messages. */
static const char *sec_label(const struct parser *p, char *buf, size_t len)
{
	switch (p->kind) {
	case SEC_SERVER:   snprintf(buf, len, "[server]"); break;
	case SEC_DEFAULTS: snprintf(buf, len, "[defaults]"); break;
	case SEC_IMAGE:    snprintf(buf, len, "[image %s]", p->cfg->images[p->idx].name); break;
	case SEC_CLIENT:   snprintf(buf, len, "[client %s]", p->cfg->clients[p->idx].name); break;
	case SEC_NETWORK:  snprintf(buf, len, "[network %s]", p->cfg->wake.nets[p->idx].name); break;
	default:           snprintf(buf, len, "?"); break;
	}
	return buf;
}

/* ---- value syntax ------------------------------------------------------ */

/* Sizes, numbers, times, names, iSCSI names and portals are parsed by
 * util/parse.c, the same functions as the options and the API use; the
 * messages below are "KEY: " + what they say is wrong. */

/* ---- section headers -------------------------------------------------- */

/* Grow an array of n elements of size sz to hold n + 1.  0 or -1. */
static int grow(void **arr, unsigned *cap, unsigned n, size_t sz)
{
	void *na;
	unsigned ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	na = realloc(*arr, (size_t)ncap * sz);
	if (!na)
		return -1;
	*arr = na;
	*cap = ncap;
	return 0;
}

static void open_image(struct parser *p, const char *name, int line)
{
	struct config *c = p->cfg;
	struct cfg_image *im;
	void *nl;

	for (unsigned i = 0; i < c->nimages; i++)
		if (strcmp(c->images[i].name, name) == 0) {
			cfg_err(p, line, "duplicate section [image %s] (first on line %d)", name,
				c->images[i].line);
			return;
		}
	if (c->nimages >= CFG_MAX_IMAGES) {
		cfg_err(p, line, "too many images (at most %d)", CFG_MAX_IMAGES);
		return;
	}
	if (grow((void **)&c->images, &p->cap_images, c->nimages, sizeof(*c->images))) {
		p->oom = true;
		return;
	}
	/* img_lines always has cap_images entries, like images. */
	nl = realloc(p->img_lines, (size_t)p->cap_images * sizeof(*p->img_lines));
	if (!nl) {
		p->oom = true;
		return;
	}
	p->img_lines = nl;
	im = &c->images[c->nimages];
	memset(im, 0, sizeof(*im));
	memset(&p->img_lines[c->nimages], 0, sizeof(*p->img_lines));
	snprintf(im->name, sizeof(im->name), "%s", name);
	im->block_size = 512;
	im->wake_at = -1;
	im->line = line;
	p->img_lines[c->nimages].hdr = line;
	p->kind = SEC_IMAGE;
	p->idx = c->nimages++;
}

static void open_client(struct parser *p, const char *name, int line)
{
	struct config *c = p->cfg;
	struct client_decl *cl;
	void *nl;

	for (unsigned i = 0; i < c->nclients; i++)
		if (strcmp(c->clients[i].name, name) == 0) {
			cfg_err(p, line, "duplicate section [client %s] (first on line %d)", name,
				c->clients[i].line);
			return;
		}
	if (c->nclients >= CFG_MAX_CLIENTS) {
		cfg_err(p, line, "too many clients (at most %d)", CFG_MAX_CLIENTS);
		return;
	}
	if (grow((void **)&c->clients, &p->cap_clients, c->nclients, sizeof(*c->clients))) {
		p->oom = true;
		return;
	}
	/* cli_lines always has cap_clients entries, like clients. */
	nl = realloc(p->cli_lines, (size_t)p->cap_clients * sizeof(*p->cli_lines));
	if (!nl) {
		p->oom = true;
		return;
	}
	p->cli_lines = nl;
	cl = &c->clients[c->nclients];
	memset(cl, 0, sizeof(*cl));
	memset(&p->cli_lines[c->nclients], 0, sizeof(*p->cli_lines));
	snprintf(cl->name, sizeof(cl->name), "%s", name);
	cl->reset_at_min = -1;
	cl->line = line;
	p->cli_lines[c->nclients].hdr = line;
	p->kind = SEC_CLIENT;
	p->idx = c->nclients++;
}

/* [network NAME]: a subnet PCs are woken on (lab/wake.h). */
static void open_network(struct parser *p, const char *name, int line)
{
	struct wake_conf *w = &p->cfg->wake;
	struct wake_network *n;
	void *nl;

	for (unsigned i = 0; i < w->nnets; i++)
		if (strcmp(w->nets[i].name, name) == 0) {
			cfg_err(p, line, "duplicate section [network %s] (first on line %d)", name,
				w->nets[i].line);
			return;
		}
	if (w->nnets >= CFG_MAX_NETWORKS) {
		cfg_err(p, line, "too many networks (at most %d)", CFG_MAX_NETWORKS);
		return;
	}
	if (grow((void **)&w->nets, &p->cap_nets, w->nnets, sizeof(*w->nets))) {
		p->oom = true;
		return;
	}
	nl = realloc(p->net_lines, (size_t)p->cap_nets * sizeof(*p->net_lines));
	if (!nl) {
		p->oom = true;
		return;
	}
	p->net_lines = nl;
	n = &w->nets[w->nnets];
	memset(n, 0, sizeof(*n));
	memset(&p->net_lines[w->nnets], 0, sizeof(*p->net_lines));
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->port = WAKE_DEFAULT_PORT;
	n->line = line;
	p->net_lines[w->nnets].hdr = line;
	p->kind = SEC_NETWORK;
	p->idx = w->nnets++;
}

/*
 * A "[...]" line, s[0..n) with no blanks at either end.  Keys that follow
 * go to the section opened here, or are ignored (SEC_SKIP) after an error
 * in the header, so that one bad header gives one message.
 */
static void section_header(struct parser *p, const char *s, size_t n)
{
	const char *close = memchr(s, ']', n);
	const char *in, *in_end, *sp;
	char word[16], name[CFG_NAME_MAX], shown[80];
	size_t wl, nl, rest;
	int line = p->lineno;

	p->kind = SEC_SKIP;
	if (!close) {
		cfg_err(p, line, "section header without closing ']'");
		return;
	}
	rest = n - (size_t)(close + 1 - s);
	sp = close + 1;
	while (rest && isspace((unsigned char)*sp))
		sp++, rest--;
	if (rest && *sp != ';' && *sp != '#') {
		cfg_err(p, line, "unexpected text after section header");
		return;
	}
	in = s + 1;
	in_end = close;
	while (in < in_end && isspace((unsigned char)*in))
		in++;
	while (in_end > in && isspace((unsigned char)in_end[-1]))
		in_end--;
	{
		size_t il = (size_t)(in_end - in);
		char tmp[80];
		if (il >= sizeof(tmp))
			il = sizeof(tmp) - 1;
		memcpy(tmp, in, il);
		tmp[il] = '\0';
		q(tmp, shown, sizeof(shown));
	}
	for (wl = 0; in + wl < in_end && !isspace((unsigned char)in[wl]); wl++)
		;
	sp = in + wl;
	while (sp < in_end && isspace((unsigned char)*sp))
		sp++;
	nl = (size_t)(in_end - sp);
	if (wl >= sizeof(word))
		goto unknown;
	memcpy(word, in, wl);
	word[wl] = '\0';

	if (strcmp(word, "server") == 0 || strcmp(word, "defaults") == 0) {
		bool server = word[0] == 's';
		struct sec_lines *sl = server ? &p->server : &p->defaults;
		if (nl) {
			cfg_err(p, line, "[%s] takes no name", word);
			return;
		}
		if (sl->hdr) {
			cfg_err(p, line, "duplicate section [%s] (first on line %d)", word, sl->hdr);
			return;
		}
		sl->hdr = line;
		p->kind = server ? SEC_SERVER : SEC_DEFAULTS;
		return;
	}
	if (strcmp(word, "image") == 0 || strcmp(word, "client") == 0 || strcmp(word, "network") == 0) {
		if (!nl) {
			cfg_err(p, line, "[%s] needs a name: [%s NAME]", word, word);
			return;
		}
		if (nl < sizeof(name)) {
			memcpy(name, sp, nl);
			name[nl] = '\0';
		}
		if (nl >= sizeof(name) || !parse_name_ok(name)) {
			cfg_err(p, line, "invalid %s name in [%s]: use 1 to 63 lower-case letters, "
				"digits and '-', not starting with '-'", word, shown);
			return;
		}
		if (word[0] == 'i')
			open_image(p, name, line);
		else if (word[0] == 'n')
			open_network(p, name, line);
		else
			open_client(p, name, line);
		return;
	}
unknown:
	cfg_err(p, line, "unknown section [%s] (expected [server], [defaults], [image NAME], "
		"[client NAME] or [network NAME])", shown);
}

/* ---- the line reader --------------------------------------------------- */

/*
 * libinih's reader (an fgets lookalike): hand it the next line of the
 * text, or a blank line when the line was dealt with here (a section
 * header) or is broken (reported here).  Exactly one line per call, so
 * that p->lineno is the line libinih is working on.
 */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct parser *p = stream;
	const char *s, *nlp;
	size_t n, avail, i;
	bool was_space = false;

	if (p->pos >= p->len || num < 2)
		return NULL;
	s = p->text + p->pos;
	avail = p->len - p->pos;
	nlp = memchr(s, '\n', avail);
	n = nlp ? (size_t)(nlp - s) : avail;
	p->pos += nlp ? n + 1 : n;
	p->lineno++;
	str[0] = '\0';

	if (p->lineno == 1 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3, n -= 3;       /* UTF-8 byte order mark */
	if (memchr(s, '\0', n)) {
		cfg_err(p, p->lineno, "NUL byte in line");
		return str;
	}
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || *s == ';' || *s == '#')
		return str;
	if (*s == '[') {
		section_header(p, s, n);
		return str;
	}
	if (n + 2 > (size_t)num) {
		cfg_err(p, p->lineno, "line too long (at most %d characters)", num - 2);
		return str;
	}
	/* The separator as libinih finds it: the first '=' or ':' that is
	 * not inside an inline comment.  We accept '=' only. */
	for (i = 0; i < n; i++) {
		if (s[i] == '=' || s[i] == ':' || (was_space && s[i] == ';'))
			break;
		was_space = isspace((unsigned char)s[i]);
	}
	if (i == n || s[i] != '=') {
		cfg_err(p, p->lineno, "expected KEY = VALUE");
		return str;
	}
	if (i == 0) {
		cfg_err(p, p->lineno, "no key name before '='");
		return str;
	}
	memcpy(str, s, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

/* ---- keys ---------------------------------------------------------------- */

/* Copy a value that must be an absolute path.  0 or -1 (reported). */
static int set_path(struct parser *p, char *dst, const char *key, const char *val)
{
	char shown[64];

	if (val[0] != '/') {
		cfg_err(p, p->lineno, "%s: '%s' is not an absolute path", key,
			q(val, shown, sizeof(shown)));
		return -1;
	}
	if (strlen(val) >= PATH_MAX) {
		cfg_err(p, p->lineno, "%s: path too long (at most %d bytes)", key, PATH_MAX - 1);
		return -1;
	}
	memcpy(dst, val, strlen(val) + 1);
	return 0;
}

static void set_size(struct parser *p, uint64_t *dst, const char *key, const char *val)
{
	char why[200];

	if (parse_size(val, dst, why, sizeof(why)))
		cfg_err(p, p->lineno, "%s: %s", key, why);
}

int config_parse_boot_set_max(const char *s, uint64_t *out, char *why, size_t whylen)
{
	uint64_t v;

	if (parse_size(s, &v, why, whylen))
		return -EINVAL;
	v -= v % BOOTSET_CHUNK;
	if (v < BOOTSET_CHUNK || v > (uint64_t)BOOTSET_MAX_CHUNKS_LIMIT * BOOTSET_CHUNK) {
		snprintf(why, whylen, "'%.40s' is not between 64K and 64G", s);
		return -ERANGE;
	}
	*out = v;
	return 0;
}

static void set_policy(struct parser *p, enum client_policy *dst, const char *val)
{
	char shown[64];

	if (rules_parse_policy(val, dst))
		cfg_err(p, p->lineno, "policy: '%s' is not persistent, reset-on-boot or scheduled",
			q(val, shown, sizeof(shown)));
}

static void set_reset_at(struct parser *p, int *dst, const char *val)
{
	char why[200];

	if (parse_time_of_day(val, dst, why, sizeof(why)))
		cfg_err(p, p->lineno, "reset-at: %s", why);
}

/* An image name used as a value (existence is checked at the end). */
static void set_image_ref(struct parser *p, char *dst, const char *val)
{
	char why[200];

	if (parse_name(val, "image", why, sizeof(why))) {
		cfg_err(p, p->lineno, "image: %s", why);
		return;
	}
	memcpy(dst, val, strlen(val) + 1);
}

static void set_chap_name(struct parser *p, char *dst, const char *key, const char *val);
static void set_chap_secret(struct parser *p, char *dst, const char *key, const char *val);

/* A whole number from lo to hi. */
static void set_limit(struct parser *p, unsigned *dst, const char *key, const char *val,
		      unsigned lo, unsigned hi)
{
	char why[200];

	if (parse_uint(val, lo, hi, dst, why, sizeof(why)))
		cfg_err(p, p->lineno, "%s: %s", key, why);
}

/* One of two words: yes (true) or no (false). */
static void set_choice(struct parser *p, bool *dst, const char *key, const char *val,
		       const char *yes, const char *no)
{
	char shown[64];

	if (strcmp(val, yes) == 0)
		*dst = true;
	else if (strcmp(val, no) == 0)
		*dst = false;
	else
		cfg_err(p, p->lineno, "%s: '%s' is not %s or %s", key, q(val, shown, sizeof(shown)),
			yes, no);
}

static void server_key(struct parser *p, int k, const char *val)
{
	struct config *c = p->cfg;
	char shown[96], why[200];

	why[0] = '\0';
	switch (k) {
	case SK_LISTEN:
		if (parse_portal(val, NULL, why, sizeof(why))) {
			cfg_err(p, p->lineno, "listen: %s", why);
			return;
		}
		for (unsigned i = 0; i < c->nlisten; i++)
			if (strcmp(c->listen[i], val) == 0) {
				cfg_err(p, p->lineno, "listen %s given twice", val);
				return;
			}
		if (c->nlisten >= CFG_MAX_LISTEN) {
			cfg_err(p, p->lineno, "too many listen addresses (at most %d)", CFG_MAX_LISTEN);
			return;
		}
		snprintf(c->listen[c->nlisten++], sizeof(c->listen[0]), "%s", val);
		break;
	case SK_STATE:
		set_path(p, c->state, "state", val);
		break;
	case SK_SOCKET:
		set_path(p, c->socket, "socket", val);
		break;
	case SK_LOG_LEVEL:
		if (log_parse_level(val, &c->log_level))
			cfg_err(p, p->lineno, "log-level: '%s' is not error, warn, notice, info or debug",
				q(val, shown, sizeof(shown)));
		break;
	case SK_NOP:
		if (parse_seconds(val, 0, 3600, &c->nop_interval, why, sizeof(why)))
			cfg_err(p, p->lineno, "nop-interval: %s", why);
		break;
	case SK_FLOOR:
		set_size(p, &c->store_floor, "store-floor", val);
		break;
	case SK_MAX_CONNS:
		set_limit(p, &c->max_conns, "max-connections", val, 1, 65536);
		break;
	case SK_MAX_LOGINS_ADDR:
		set_limit(p, &c->max_logins_per_addr, "max-logins-per-address", val, 1, 65536);
		break;
	case SK_MAX_SESS_INI:
		set_limit(p, &c->max_sessions_per_initiator, "max-sessions-per-initiator", val, 1, 65536);
		break;
	case SK_LOGIN_TIMEOUT:
		set_limit(p, &c->login_timeout, "login-timeout", val, 1, 600);
		break;
	case SK_SEND_TIMEOUT:
		set_limit(p, &c->send_timeout, "send-timeout", val, 1, 3600);
		break;
	case SK_ZERO_COPY:
		set_choice(p, &c->zero_copy, "zero-copy", val, "yes", "no");
		break;
	case SK_D_CHAP_USER:
		set_chap_name(p, c->discovery_chap.user, "discovery-chap-user", val);
		break;
	case SK_D_CHAP_SECRET:
		set_chap_secret(p, c->discovery_chap.secret, "discovery-chap-secret", val);
		break;
	case SK_D_MUTUAL_USER:
		set_chap_name(p, c->discovery_chap.muser, "discovery-mutual-user", val);
		break;
	case SK_D_MUTUAL_SECRET:
		set_chap_secret(p, c->discovery_chap.msecret, "discovery-mutual-secret", val);
		break;
	case SK_BOOT_LISTEN:
		if (parse_portal(val, NULL, why, sizeof(why)))
			cfg_err(p, p->lineno, "boot-listen: %s", why);
		else
			snprintf(c->boot_listen, sizeof(c->boot_listen), "%s", val);
		break;
	case SK_USER:   /* privileges (issue 7): looked up at start, by privs.c */
		if (!privs_user_name_valid(val))
			cfg_err(p, p->lineno, "user: '%s' is not a user name ([A-Za-z0-9._-], at most %d)",
				q(val, shown, sizeof(shown)), PRIVS_NAME_MAX - 1);
		else
			snprintf(c->user, sizeof(c->user), "%s", val);
		break;
	case SK_CEPH_CONF:
		set_path(p, c->ceph_conf, "ceph-conf", val);
		break;
	case SK_CEPH_ID:
		if (strncmp(val, "client.", 7) == 0)
			cfg_err(p, p->lineno, "ceph-id: give the name without 'client.' (ceph-id = %s)",
				q(val + 7, shown, sizeof(shown)));
		else if (!rbd_id_valid(val))
			cfg_err(p, p->lineno, "ceph-id: '%s' is not a cephx client name "
				"([A-Za-z0-9._-], at most %d)", q(val, shown, sizeof(shown)), RBD_ID_MAX);
		else
			snprintf(c->ceph_id, sizeof(c->ceph_id), "%s", val);
		break;
	case SK_RBD_CACHE:
		if (parse_size(val, &c->rbd_cache, why, sizeof(why)))
			cfg_err(p, p->lineno, "rbd-cache: %s", why);
		else if (c->rbd_cache && c->rbd_cache < RCACHE_MIN_BYTES)
			cfg_err(p, p->lineno, "rbd-cache: '%s' is less than %lluK (0 turns the cache off)",
				q(val, shown, sizeof(shown)),
				(unsigned long long)(RCACHE_MIN_BYTES >> 10));
		break;
	case SK_CEPH_OP_TIMEOUT:
		if (parse_seconds(val, 0, 3600, &c->ceph_op_timeout, why, sizeof(why)))
			cfg_err(p, p->lineno, "ceph-op-timeout: %s", why);
		break;
	case SK_CLUSTER_NAME:
		if (!cfg_cluster_name_valid(val))
			cfg_err(p, p->lineno, "cluster-name: '%s' is not a gateway name ([a-z0-9][a-z0-9-], "
				"at most %d)", q(val, shown, sizeof(shown)), CFG_CLUSTER_NAME_MAX - 1);
		else
			snprintf(c->cluster_name, sizeof(c->cluster_name), "%s", val);
		break;
	case SK_CLUSTER_ADDRESS:
		if (!boot_host_valid(val) || !strchr(val, ':') || val[strlen(val) - 1] == ']' ||
		    strlen(val) >= sizeof(c->cluster_address))
			cfg_err(p, p->lineno, "cluster-address: '%s' is not HOST:PORT (the portal PCs are "
				"sent to: a numeric address or name and a port; [..] around IPv6)",
				q(val, shown, sizeof(shown)));
		else
			snprintf(c->cluster_address, sizeof(c->cluster_address), "%s", val);
		break;
	case SK_CLUSTER_POOL:
		if (!*val || strlen(val) >= sizeof(c->cluster_pool) || strpbrk(val, " /@\t"))
			cfg_err(p, p->lineno, "cluster-pool: '%s' is not a pool name",
				q(val, shown, sizeof(shown)));
		else
			snprintf(c->cluster_pool, sizeof(c->cluster_pool), "%s", val);
		break;
	case SK_CLUSTER_DEAD_AFTER:
		if (parse_seconds(val, 2, 300, &c->cluster_dead_after, why, sizeof(why)))
			cfg_err(p, p->lineno, "cluster-dead-after: %s", why);
		break;
	case SK_CONSOLE_LISTEN:
		if (parse_portal(val, NULL, why, sizeof(why)) || strlen(val) >= sizeof(c->console_listen))
			cfg_err(p, p->lineno, "console-listen: %s", why[0] ? why : "too long");
		else
			snprintf(c->console_listen, sizeof(c->console_listen), "%s", val);
		break;
	case SK_CONSOLE_CERT:
		set_path(p, c->console_cert, "console-cert", val);
		break;
	case SK_CONSOLE_KEY:
		set_path(p, c->console_key, "console-key", val);
		break;
	case SK_CONSOLE_SESSION_TIMEOUT:
		if (parse_seconds(val, 1, 7 * 86400, &c->console_session_timeout, why, sizeof(why)))
			cfg_err(p, p->lineno, "console-session-timeout: %s", why);
		break;
	case SK_PREFETCH:
		set_choice(p, &c->prefetch, "prefetch", val, "yes", "no");
		break;
	case SK_BOOT_SET_MAX:
		if (config_parse_boot_set_max(val, &c->boot_set_max, why, sizeof(why)))
			cfg_err(p, p->lineno, "boot-set-max: %s", why);
		break;
	case SK_METRICS_LISTEN:
		if (parse_portal(val, NULL, why, sizeof(why)) || strlen(val) >= sizeof(c->metrics_listen))
			cfg_err(p, p->lineno, "metrics-listen: %s", why[0] ? why : "too long");
		else
			snprintf(c->metrics_listen, sizeof(c->metrics_listen), "%s", val);
		break;
	case SK_BOOT_PORTAL:
		if (!boot_host_valid(val) || strlen(val) >= sizeof(c->boot_portal))
			cfg_err(p, p->lineno, "boot-portal: '%s' is not HOST or HOST:PORT (a name or a "
				"numeric address; [..] around IPv6; at most %zu bytes)",
				q(val, shown, sizeof(shown)), sizeof(c->boot_portal) - 1);
		else
			snprintf(c->boot_portal, sizeof(c->boot_portal), "%s", val);
		break;
	}
}

/* wake-at = HH:MM: the daily Wake-on-LAN time. */
static void set_wake_at(struct parser *p, int *dst, const char *val)
{
	char why[200];

	if (parse_time_of_day(val, dst, why, sizeof(why)))
		cfg_err(p, p->lineno, "wake-at: %s", why);
}

static void defaults_key(struct parser *p, int k, const char *val)
{
	struct config *c = p->cfg;

	switch (k) {
	case DK_ENROLL:
		set_choice(p, &c->enroll_auto, "enroll", val, "auto", "deny");
		break;
	case DK_IMAGE:
		set_image_ref(p, c->default_image, val);
		break;
	case DK_POLICY:
		set_policy(p, &c->default_policy, val);
		break;
	case DK_RESET_AT:
		set_reset_at(p, &c->default_reset_at, val);
		break;
	case DK_QUOTA:
		set_size(p, &c->default_quota, "quota", val);
		break;
	case DK_WAKE_AT:
		set_wake_at(p, &c->wake.default_at, val);
		break;
	}
}

/* disks = IMAGE[:POLICY[:QUOTA]] ... (lab/xdisk.h); the images named are
 * checked at the end (finish_disks). */
static void set_disks(struct parser *p, struct xdisk_decl *dst, unsigned *n, const char *val)
{
	char why[200];

	if (xdisk_parse_list(val, dst, n, why, sizeof(why)))
		cfg_err(p, p->lineno, "%s", why);
}

static void image_key(struct parser *p, int k, const char *val)
{
	struct cfg_image *im = &p->cfg->images[p->idx];
	char why[200];

	switch (k) {
	case IK_PATH:
		set_path(p, im->path, "path", val);
		break;
	case IK_TARGET:
		if (parse_iqn(val, why, sizeof(why))) {
			cfg_err(p, p->lineno, "target: %s", why);
			return;
		}
		snprintf(im->target, sizeof(im->target), "%s", val);
		break;
	case IK_BLOCK_SIZE:
		if (parse_block_size(val, &im->block_size, why, sizeof(why)))
			cfg_err(p, p->lineno, "block-size: %s", why);
		break;
	case IK_RBD: {
		struct rbd_spec sp;
		if (rbd_spec_parse(val, &sp, why, sizeof(why)))
			cfg_err(p, p->lineno, "rbd: %s", why);
		else
			rbd_spec_format(&sp, im->rbd, sizeof(im->rbd));
		break;
	}
	case IK_WAKE_AT:
		set_wake_at(p, &im->wake_at, val);
		break;
	case IK_DISKS:
		set_disks(p, im->disks, &im->ndisks, val);
		break;
	case IK_DISK_POLICY:
		if (xdisk_parse_policy(val, &im->disk_policy))
			cfg_err(p, p->lineno, "disk-policy: '%s' is not overlay, discard-on-boot or "
				"read-only", q(val, why, sizeof(why)));
		break;
	case IK_DISK_QUOTA:
		set_size(p, &im->disk_quota, "disk-quota", val);
		break;
	}
}

static void network_key(struct parser *p, int k, const char *val)
{
	struct wake_network *n = &p->cfg->wake.nets[p->idx];
	struct netaddr_rule r;
	struct in_addr a;
	char why[200], shown[64];
	size_t len;

	switch (k) {
	case NK_SUBNET:
		if (netaddr_parse(val, &r, why, sizeof(why))) {
			cfg_err(p, p->lineno, "subnet: %s", why);
			return;
		}
		if (r.family != AF_INET) {
			cfg_err(p, p->lineno, "subnet: '%s' is not an IPv4 network (Wake-on-LAN is "
				"an IPv4 broadcast)", q(val, shown, sizeof(shown)));
			return;
		}
		n->net = (uint32_t)r.addr[0] << 24 | (uint32_t)r.addr[1] << 16 |
			 (uint32_t)r.addr[2] << 8 | r.addr[3];
		n->prefix = r.prefix;
		break;
	case NK_INTERFACE:
		len = strlen(val);
		if (len >= WAKE_IFNAME_MAX || strpbrk(val, "/ \t:")) {
			cfg_err(p, p->lineno, "interface: '%s' is not an interface name (at most %d "
				"characters, no '/', ':' or blanks)", q(val, shown, sizeof(shown)),
				WAKE_IFNAME_MAX - 1);
			return;
		}
		snprintf(n->iface, sizeof(n->iface), "%s", val);
		break;
	case NK_BROADCAST:
		if (inet_pton(AF_INET, val, &a) != 1) {
			cfg_err(p, p->lineno, "broadcast: '%s' is not an IPv4 address",
				q(val, shown, sizeof(shown)));
			return;
		}
		n->broadcast = ntohl(a.s_addr);
		break;
	case NK_WAKE_PORT:
		if (parse_uint(val, 1, 65535, &n->port, why, sizeof(why)))
			cfg_err(p, p->lineno, "wake-port: %s", why);
		break;
	}
}

/* ip = A[, B...]: IPv4/IPv6 addresses or networks (ADDR/PREFIX), stored
 * canonical.  On any error the client keeps no address from this key. */
static void set_ips(struct parser *p, struct client_decl *cl, const char *val)
{
	char why[200];
	unsigned n;

	cl->nips = 0;
	if (netaddr_parse_list(val, cl->ip_rules, RULES_MAX_IPS, &n, why, sizeof(why))) {
		cfg_err(p, p->lineno, "ip: %s", why);
		return;
	}
	if (n == 0) {
		cfg_err(p, p->lineno, "ip: empty address in list");
		return;
	}
	for (unsigned i = 0; i < n; i++)
		netaddr_format(&cl->ip_rules[i], cl->ips[i], sizeof(cl->ips[i]));
	cl->nips = n;
}

/* chap-user / mutual-user: the CHAP name rule (lab/rules.h). */
static void set_chap_name(struct parser *p, char *dst, const char *key, const char *val)
{
	char msg[160];

	if (rules_chap_name(key, val, msg, sizeof(msg)))
		cfg_err(p, p->lineno, "%s", msg);
	else
		snprintf(dst, RULES_CHAP_MAX, "%s", val);
}

/* chap-secret / mutual-secret: the CHAP secret rule.  Never quoted back. */
static void set_chap_secret(struct parser *p, char *dst, const char *key, const char *val)
{
	char msg[160];

	if (rules_chap_secret(key, val, msg, sizeof(msg)))
		cfg_err(p, p->lineno, "%s", msg);
	else
		snprintf(dst, RULES_CHAP_MAX, "%s", val);
}

static void client_key(struct parser *p, int k, const char *val)
{
	struct client_decl *cl = &p->cfg->clients[p->idx];
	char why[200];

	switch (k) {
	case CK_INITIATOR:
		if (parse_iqn(val, why, sizeof(why))) {
			cfg_err(p, p->lineno, "initiator: %s", why);
			return;
		}
		/* iSCSI names compare without case (RFC 3722): keep one form. */
		for (size_t i = 0; val[i] && i + 1 < sizeof(cl->initiator); i++)
			cl->initiator[i] = (char)((unsigned char)val[i] < 0x80 ?
						  tolower((unsigned char)val[i]) : val[i]);
		break;
	case CK_MAC:
		if (rules_mac(val, cl->mac, why, sizeof(why)))
			cfg_err(p, p->lineno, "%s", why);
		break;
	case CK_IP:
		set_ips(p, cl, val);
		break;
	case CK_IMAGE:
		set_image_ref(p, cl->image, val);
		break;
	case CK_POLICY:
		set_policy(p, &cl->policy, val);
		break;
	case CK_RESET_AT:
		set_reset_at(p, &cl->reset_at_min, val);
		break;
	case CK_QUOTA:
		set_size(p, &cl->quota, "quota", val);
		break;
	case CK_CHAP_USER:
		set_chap_name(p, cl->chap_user, "chap-user", val);
		break;
	case CK_CHAP_SECRET:
		set_chap_secret(p, cl->chap_secret, "chap-secret", val);
		break;
	case CK_MUTUAL_USER:
		set_chap_name(p, cl->mutual_user, "mutual-user", val);
		break;
	case CK_MUTUAL_SECRET:
		set_chap_secret(p, cl->mutual_secret, "mutual-secret", val);
		break;
	case CK_DISKS:
		set_disks(p, cl->disks, &cl->ndisks, val);
		break;
	}
}

/*
 * libinih's handler: one KEY = VALUE of line p->lineno.  Errors are
 * recorded, never returned (libinih would only keep the first), so it
 * always returns 1.  section is libinih's idea of the section, always ""
 * here because headers never reach it; p->kind is the real one.
 */
bool cfg_cluster_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CFG_CLUSTER_NAME_MAX || !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	const char *const *keys;
	struct sec_lines *sl;
	char shown[64], label[96];
	int nkeys, k;

	(void)section;
	/* Secrets count wherever they are, even in a section in error: the
	 * file holds them all the same. */
	if (!p->secret_line && (strcmp(name, "chap-secret") == 0 ||
				strcmp(name, "mutual-secret") == 0 ||
				strcmp(name, "discovery-chap-secret") == 0 ||
				strcmp(name, "discovery-mutual-secret") == 0))
		p->secret_line = p->lineno;
	switch (p->kind) {
	case SEC_NONE:
		cfg_err(p, p->lineno, "'%s' outside of any section", q(name, shown, sizeof(shown)));
		return 1;
	case SEC_SKIP:
		return 1;
	case SEC_SERVER:   keys = server_keys; nkeys = SK_N; sl = &p->server; break;
	case SEC_DEFAULTS: keys = defaults_keys; nkeys = DK_N; sl = &p->defaults; break;
	case SEC_IMAGE:    keys = image_keys; nkeys = IK_N; sl = &p->img_lines[p->idx]; break;
	case SEC_CLIENT:   keys = client_keys; nkeys = CK_N; sl = &p->cli_lines[p->idx]; break;
	case SEC_NETWORK:  keys = network_keys; nkeys = NK_N; sl = &p->net_lines[p->idx]; break;
	default:
		return 1;
	}
	for (k = 0; k < nkeys; k++)
		if (strcmp(name, keys[k]) == 0)
			break;
	if (k == nkeys) {
		cfg_err(p, p->lineno, "unknown key '%s' in %s", q(name, shown, sizeof(shown)),
			sec_label(p, label, sizeof(label)));
		return 1;
	}
	if (sl->key[k] && !(p->kind == SEC_SERVER && k == SK_LISTEN)) {
		cfg_err(p, p->lineno, "%s given twice in %s (first on line %d)", keys[k],
			sec_label(p, label, sizeof(label)), sl->key[k]);
		return 1;
	}
	if (!sl->key[k])
		sl->key[k] = p->lineno;
	for (const char *v = value; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f) {
			cfg_err(p, p->lineno, "%s: control character in value", keys[k]);
			return 1;
		}
	if (!*value) {
		cfg_err(p, p->lineno, "%s: empty value", keys[k]);
		return 1;
	}
	switch (p->kind) {
	case SEC_SERVER:   server_key(p, k, value); break;
	case SEC_DEFAULTS: defaults_key(p, k, value); break;
	case SEC_IMAGE:    image_key(p, k, value); break;
	case SEC_CLIENT:   client_key(p, k, value); break;
	case SEC_NETWORK:  network_key(p, k, value); break;
	default: break;
	}
	return 1;
}

/* ---- whole-file checks -------------------------------------------------- */

static void check_chap(struct parser *p, const int *line, const char *prefix, const char *secret,
		       const char *msecret);
static void finish_disks(struct parser *p);

int config_fill_server(struct config *c, const char **key, char *why, size_t whylen)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

	if (c->nlisten == 0)
		snprintf(c->listen[c->nlisten++], sizeof(c->listen[0]), "%s", CFG_DEFAULT_LISTEN);
	if (!c->state[0])
		snprintf(c->state, sizeof(c->state), "%s", CFG_DEFAULT_STATE);
	if (!c->socket[0]) {
		if (strlen(c->state) + 1 + strlen(STATEDIR_SOCKET) > max) {
			*key = "state";
			snprintf(why, whylen, "the admin socket STATE/%s would be longer than a Unix "
				 "socket path may be (%zu bytes): give the socket a shorter path",
				 STATEDIR_SOCKET, max);
			return -1;
		}
		/* cannot be cut: just checked against a far smaller limit */
		if (snprintf(c->socket, sizeof(c->socket), "%s/%s", c->state, STATEDIR_SOCKET) < 0)
			c->socket[0] = '\0';
	} else if (strlen(c->socket) > max) {
		*key = "socket";
		snprintf(why, whylen, "path longer than a Unix socket path may be (%zu bytes)", max);
		return -1;
	}
	return 0;
}

static void finish_server(struct parser *p)
{
	struct config *c = p->cfg;

	check_chap(p, &p->server.key[SK_D_CHAP_USER], "discovery-", c->discovery_chap.secret,
		   c->discovery_chap.msecret);
	if (!c->console_cert[0] != !c->console_key[0])
		cfg_err(p, p->server.key[c->console_cert[0] ? SK_CONSOLE_CERT : SK_CONSOLE_KEY],
			"console-cert and console-key go together (or neither: a self-signed "
			"certificate is made in STATE/console/)");

	if (!p->server.key[SK_SOCKET] || c->socket[0]) {
		const char *key;
		char why[200];

		if (config_fill_server(c, &key, why, sizeof(why)))
			cfg_err(p, strcmp(key, "socket") ? (p->server.key[SK_STATE] ? p->server.key[SK_STATE] : 1) :
				p->server.key[SK_SOCKET], "%s: %s", key, why);
	}
}

/* Every [network] has a subnet; the broadcast address defaults to the
 * subnet's; the images' wake-at go into the wake table. */
static void finish_wake(struct parser *p)
{
	struct wake_conf *w = &p->cfg->wake;
	unsigned n = 0;

	for (unsigned i = 0; i < w->nnets; i++) {
		struct wake_network *nw = &w->nets[i];
		if (!p->net_lines[i].key[NK_SUBNET]) {
			cfg_err(p, nw->line, "[network %s] has no subnet = ADDR/PREFIX (the IPv4 "
				"network its PCs are on)", nw->name);
			continue;
		}
		if (!p->net_lines[i].key[NK_BROADCAST])
			nw->broadcast = nw->net | (nw->prefix ? ~(0xffffffffu << (32 - nw->prefix)) :
						   0xffffffffu);
	}
	for (unsigned i = 0; i < p->cfg->nimages; i++)
		n += p->cfg->images[i].wake_at >= 0;
	if (!n)
		return;
	w->ats = calloc(n, sizeof(*w->ats));
	if (!w->ats) {
		cfg_err(p, 1, "out of memory");
		return;
	}
	for (unsigned i = 0; i < p->cfg->nimages; i++) {
		const struct cfg_image *im = &p->cfg->images[i];
		if (im->wake_at < 0)
			continue;
		snprintf(w->ats[w->nats].image, sizeof(w->ats[w->nats].image), "%s", im->name);
		w->ats[w->nats++].at = im->wake_at;
	}
}

static void finish_images(struct parser *p)
{
	struct config *c = p->cfg;

	if (c->cluster_name[0] && !c->ceph_conf[0] && !p->server.key[SK_CEPH_CONF])
		cfg_err(p, p->server.key[SK_CLUSTER_NAME], "cluster-name: a gateway of a cluster "
			"needs [server] ceph-conf = FILE (the records and the gateway table are in Ceph)");
	if (c->nimages == 0 && !c->cluster_name[0]) {
		cfg_err(p, 1, "no [image NAME] section: at least one image is required");
		return;
	}
	for (unsigned i = 0; i < c->nimages; i++) {
		struct cfg_image *im = &c->images[i];
		const struct sec_lines *sl = &p->img_lines[i];

		if (!sl->key[IK_PATH] && !sl->key[IK_RBD])
			cfg_err(p, im->line, "[image %s] has no path = (its raw image file or block device) "
				"and no rbd = (POOL/IMAGE[@SNAP] on Ceph)", im->name);
		else if (sl->key[IK_PATH] && sl->key[IK_RBD])
			cfg_err(p, sl->key[IK_RBD], "rbd: [image %s] has path = already (line %d): "
				"give one of them", im->name, sl->key[IK_PATH]);
		else if (sl->key[IK_RBD] && !c->ceph_conf[0] && !p->server.key[SK_CEPH_CONF])
			cfg_err(p, sl->key[IK_RBD], "rbd: an image on Ceph needs [server] ceph-conf = "
				"FILE (the cluster's ceph.conf, naming its monitors and keyring)");
		if (!im->target[0]) {
			if (sl->key[IK_TARGET])
				continue;     /* invalid, reported */
			snprintf(im->target, sizeof(im->target), "%s%s", CFG_TARGET_PREFIX, im->name);
		}
		for (unsigned j = 0; j < i; j++)
			if (strcasecmp(c->images[j].target, im->target) == 0) {
				cfg_err(p, sl->key[IK_TARGET] ? sl->key[IK_TARGET] : im->line,
					"target %s is already the target of [image %s] (line %d)",
					im->target, c->images[j].name, c->images[j].line);
				break;
			}
	}
}

/* Returns whether c->default_image names an existing image (or is ""
 * without that being an error), so clients inheriting it are checked. */
static bool finish_defaults(struct parser *p)
{
	struct config *c = p->cfg;
	bool ok = true;

	if (c->default_image[0]) {
		if (!cfg_image_find(c, c->default_image)) {
			cfg_err(p, p->defaults.key[DK_IMAGE], "image %s: there is no [image %s]",
				c->default_image, c->default_image);
			c->default_image[0] = '\0';
			ok = false;
		}
	} else if (p->defaults.key[DK_IMAGE]) {
		ok = false;           /* invalid name, reported */
	} else if (c->nimages == 1) {
		snprintf(c->default_image, sizeof(c->default_image), "%s", c->images[0].name);
	} else if (c->nimages > 1 && c->enroll_auto) {
		int line = p->defaults.key[DK_ENROLL] ? p->defaults.key[DK_ENROLL] :
			   p->defaults.hdr ? p->defaults.hdr : p->img_lines[1].hdr;
		cfg_err(p, line, "several images and enroll = auto: say which image auto-enrolled "
			"clients get with image = NAME in [defaults] (or set enroll = deny)");
		ok = false;
	}
	if (c->default_policy == POLICY_SCHEDULED && c->default_reset_at < 0 &&
	    !p->defaults.key[DK_RESET_AT])
		cfg_err(p, p->defaults.key[DK_POLICY], "policy = scheduled needs reset-at = HH:MM");
	return ok;
}

static void finish_client(struct parser *p, unsigned i, bool default_image_ok)
{
	struct config *c = p->cfg;
	struct client_decl *cl = &c->clients[i];
	const struct sec_lines *sl = &p->cli_lines[i];
	const int *key = sl->key;

	/* identity */
	if (!key[CK_INITIATOR])
		cfg_err(p, cl->line, "[client %s] has no initiator = (its iSCSI initiator name)",
			cl->name);
	for (unsigned j = 0; cl->initiator[0] && j < i; j++)
		if (strcmp(c->clients[j].initiator, cl->initiator) == 0) {
			cfg_err(p, key[CK_INITIATOR], "initiator %s is already [client %s] (line %d)",
				cl->initiator, c->clients[j].name, p->cli_lines[j].key[CK_INITIATOR]);
			break;
		}
	for (unsigned j = 0; cl->mac[0] && j < i; j++)
		if (strcmp(c->clients[j].mac, cl->mac) == 0) {
			cfg_err(p, key[CK_MAC], "mac %s is already [client %s] (line %d)",
				cl->mac, c->clients[j].name, p->cli_lines[j].key[CK_MAC]);
			break;
		}

	/* image, with [defaults] applied */
	if (cl->image[0]) {
		if (!cfg_image_find(c, cl->image))
			cfg_err(p, key[CK_IMAGE], "image %s: there is no [image %s]", cl->image, cl->image);
	} else if (!key[CK_IMAGE]) {
		if (c->default_image[0])
			snprintf(cl->image, sizeof(cl->image), "%s", c->default_image);
		else if (default_image_ok && c->nimages)
			cfg_err(p, cl->line, "[client %s] has no image: set image = NAME here or in "
				"[defaults]", cl->name);
	}

	/* policy and reset time */
	if (!key[CK_POLICY])
		cl->policy = c->default_policy;
	if (cl->policy == POLICY_SCHEDULED) {
		if (cl->reset_at_min < 0)
			cl->reset_at_min = c->default_reset_at;
		if (cl->reset_at_min < 0 && key[CK_POLICY] && !key[CK_RESET_AT])
			cfg_err(p, key[CK_POLICY], "policy = scheduled needs reset-at = HH:MM "
				"(here or in [defaults])");
	} else {
		if (key[CK_RESET_AT])
			cfg_err(p, key[CK_RESET_AT], "reset-at only applies to policy = scheduled "
				"(this client's policy is %s)", rules_policy_name(cl->policy));
		cl->reset_at_min = -1;
	}
	if (!key[CK_QUOTA])
		cl->quota = c->default_quota;

	check_chap(p, &key[CK_CHAP_USER], "", cl->chap_secret, cl->mutual_secret);
}

/* Whether the n attachments in d name images that exist and not boot
 * itself ("" = any); problems reported at line. */
static void check_attachments(struct parser *p, const struct xdisk_decl *d, unsigned n,
			      const char *boot, int line)
{
	for (unsigned k = 0; k < n; k++) {
		const struct cfg_image *x = cfg_image_find(p->cfg, d[k].image);
		if (!x)
			cfg_err(p, line, "disks: %s: there is no [image %s]", d[k].image, d[k].image);
		else if (strcmp(d[k].image, boot) == 0)
			cfg_err(p, line, "disks: %s is the boot image of these PCs (LUN 0); an extra "
				"disk is another image", d[k].image);
		else if (!d[k].has_policy && x->disk_policy == XDISK_READ_ONLY && d[k].has_quota &&
			 d[k].quota)
			cfg_err(p, line, "disks: %s is read-only ([image %s] disk-policy): it has no "
				"overlay, so no quota", d[k].image, d[k].image);
	}
}

/*
 * The extra disks (lab/xdisk.h): every image an image's or a client's
 * disks = names exists and is not the PCs' own boot image; a read-only
 * disk has no quota; a client's own list and its image's together stay
 * within XDISK_MAX LUNs (its own entry for an image its group gives too
 * takes the group's LUN).
 */
static void finish_disks(struct parser *p)
{
	struct config *c = p->cfg;

	for (unsigned i = 0; i < c->nimages; i++) {
		const struct cfg_image *im = &c->images[i];
		if (im->disk_policy == XDISK_READ_ONLY && im->disk_quota)
			cfg_err(p, p->img_lines[i].key[IK_DISK_QUOTA], "disk-quota: [image %s] has "
				"disk-policy = read-only: no overlay, so no quota", im->name);
		check_attachments(p, im->disks, im->ndisks, im->name, p->img_lines[i].key[IK_DISKS]);
	}
	for (unsigned i = 0; i < c->nclients; i++) {
		const struct client_decl *cl = &c->clients[i];
		const struct cfg_image *boot = cl->image[0] ? cfg_image_find(c, cl->image) : NULL;
		int line = p->cli_lines[i].key[CK_DISKS];
		unsigned total = boot ? boot->ndisks : 0;

		if (!cl->ndisks)
			continue;
		check_attachments(p, cl->disks, cl->ndisks, cl->image, line);
		for (unsigned k = 0; k < cl->ndisks; k++) {
			bool in_group = false;
			for (unsigned g = 0; boot && g < boot->ndisks; g++)
				in_group |= strcmp(boot->disks[g].image, cl->disks[k].image) == 0;
			total += !in_group;
		}
		if (total > XDISK_MAX)
			cfg_err(p, line, "disks: [client %s] would have %u extra disks with its image's "
				"(at most %d: LUN 1..%d)", cl->name, total, XDISK_MAX, XDISK_MAX);
	}
}

/*
 * CHAP keys come in pairs, and mutual only on top of one-way.  line[0..3]
 * are the lines of the user, secret, mutual user and mutual secret keys
 * (0 = absent), named prefix + "chap-user" etc.
 */
static void check_chap(struct parser *p, const int *line, const char *prefix, const char *secret,
		       const char *msecret)
{
	bool has[4] = { line[0] != 0, line[1] != 0, line[2] != 0, line[3] != 0 };
	struct rules_problem pb[6];
	unsigned n = rules_chap_pairs(has, secret, msecret, prefix, pb, 6);

	for (unsigned i = 0; i < n && i < 6; i++) {
		int l = line[pb[i].key];
		/* mutual keys without one-way CHAP: at the first of them */
		if (!has[0] && !has[1] && has[2] && has[3] && line[3] < line[2])
			l = line[3];
		cfg_err(p, l, "%s", pb[i].msg);
	}
}

/* Lay the kept messages out in err, sorted by line (stable). */
static void format_errors(const struct parser *p, char *err, size_t errlen)
{
	unsigned kept = p->nerr < CFG_MAX_ERRORS ? p->nerr : CFG_MAX_ERRORS;
	unsigned order[CFG_MAX_ERRORS];
	size_t used = 0;

	if (!errlen)
		return;
	err[0] = '\0';
	for (unsigned i = 0; i < kept; i++) {
		unsigned j = i;
		for (; j > 0 && p->msgs[order[j - 1]].line > p->msgs[i].line; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	for (unsigned i = 0; i < kept && used + 1 < errlen; i++) {
		int n = snprintf(err + used, errlen - used, "%s%s:%d: %s", i ? "\n" : "", p->fname,
				 p->msgs[order[i]].line, p->msgs[order[i]].text);
		if (n < 0)
			break;
		used += (size_t)n < errlen - used ? (size_t)n : errlen - used - 1;
	}
	if (p->nerr > kept && used + 1 < errlen)
		snprintf(err + used, errlen - used, "\n%s: %u more errors not shown", p->fname,
			 p->nerr - kept);
}

/* ---- API ------------------------------------------------------------------ */

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = LOG_INFO;
	c->nop_interval = 30;
	c->max_conns = 1024;
	c->max_logins_per_addr = 16;
	c->max_sessions_per_initiator = 8;
	c->login_timeout = 15;
	c->send_timeout = 60;
	c->zero_copy = false;
	snprintf(c->ceph_id, sizeof(c->ceph_id), "%s", CFG_DEFAULT_CEPH_ID);
	c->store_floor = 512ull << 20;
	c->prefetch = true;
	c->boot_set_max = (uint64_t)BOOTSET_MAX_CHUNKS_DEFAULT * BOOTSET_CHUNK;
	c->rbd_cache = CFG_DEFAULT_RBD_CACHE;
	snprintf(c->cluster_pool, sizeof(c->cluster_pool), "%s", CFG_DEFAULT_CLUSTER_POOL);
	c->cluster_dead_after = CFG_DEFAULT_CLUSTER_DEAD_AFTER;
	c->console_session_timeout = CFG_DEFAULT_CONSOLE_SESSION_TIMEOUT;
	c->enroll_auto = true;
	c->default_policy = POLICY_PERSISTENT;
	c->default_reset_at = -1;
	c->wake.default_at = -1;
}

int config_parse(const char *fname, const char *text, size_t len, unsigned mode,
		 struct config *out, char *err, size_t errlen)
{
	struct parser *p;
	int rc, ini_rc;
	int saved_max_line;
	bool saved_stack, saved_multi, saved_inline, saved_stop, saved_novalue;

	memset(out, 0, sizeof(*out));
	if (errlen)
		err[0] = '\0';
	if (len > CFG_MAX_FILE) {
		if (errlen)
			snprintf(err, errlen, "%s: larger than %u bytes", fname, CFG_MAX_FILE);
		return -EFBIG;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		if (errlen)
			snprintf(err, errlen, "%s: out of memory", fname);
		return -ENOMEM;
	}
	p->fname = fname;
	p->text = text;
	p->len = len;
	p->cfg = out;
	p->kind = SEC_NONE;
	config_defaults(out);

	/* libinih's options are process globals (Debian builds it with
	 * runtime options): lines long enough for a PATH_MAX path, on the
	 * stack, with the syntax the reader above expects. */
	saved_max_line = ini_max_line;
	saved_stack = ini_use_stack;
	saved_multi = ini_allow_multiline;
	saved_inline = ini_allow_inline_comments;
	saved_stop = ini_stop_on_first_error;
	saved_novalue = ini_allow_no_value;
	ini_max_line = CFG_LINE_MAX;
	ini_use_stack = true;
	ini_allow_multiline = false;
	ini_allow_inline_comments = true;
	ini_stop_on_first_error = false;
	ini_allow_no_value = false;
	ini_rc = ini_parse_stream(cfg_reader, p, cfg_handler, p);
	ini_max_line = saved_max_line;
	ini_use_stack = saved_stack;
	ini_allow_multiline = saved_multi;
	ini_allow_inline_comments = saved_inline;
	ini_stop_on_first_error = saved_stop;
	ini_allow_no_value = saved_novalue;

	if (ini_rc < 0 || p->oom) {
		rc = -ENOMEM;
		if (errlen)
			snprintf(err, errlen, "%s: out of memory", fname);
		goto out;
	}
	if (ini_rc > 0)       /* the reader should have caught it */
		cfg_err(p, ini_rc, "syntax error");

	finish_server(p);
	finish_images(p);
	finish_wake(p);
	{
		bool image_ok = finish_defaults(p);
		for (unsigned i = 0; i < out->nclients; i++)
			finish_client(p, i, image_ok);
	}
	finish_disks(p);
	if (p->secret_line && (mode & 077))
		cfg_err(p, p->secret_line, "the file holds CHAP secrets but group or others may "
			"access it: chmod 600 %s", fname);

	rc = 0;
	if (p->nerr) {
		format_errors(p, err, errlen);
		rc = -EINVAL;
	}
out:
	free(p->img_lines);
	free(p->cli_lines);
	free(p->net_lines);
	free(p);
	if (rc)
		config_free(out);
	return rc;
}

int config_load(const char *path, struct config *out, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st)) {
		rc = -errno;
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto fail;
	}
	for (;;) {
		ssize_t n;
		if (len == cap) {
			char *nb;
			if (cap > CFG_MAX_FILE) {
				rc = -EFBIG;
				if (errlen)
					snprintf(err, errlen, "%s: larger than %u bytes", path, CFG_MAX_FILE);
				goto out;
			}
			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			if (!nb) {
				rc = -ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	rc = config_parse(path, buf, len, (unsigned)(st.st_mode & 07777), out, err, errlen);
	goto out;
fail:
	if (errlen)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->images);
	free(c->clients);
	free(c->wake.nets);
	free(c->wake.ats);
	memset(c, 0, sizeof(*c));
}



const struct cfg_image *cfg_image_find(const struct config *c, const char *name)
{
	for (unsigned i = 0; i < c->nimages; i++)
		if (strcmp(c->images[i].name, name) == 0)
			return &c->images[i];
	return NULL;
}

const struct client_decl *cfg_client_find(const struct config *c, const char *id)
{
	for (unsigned i = 0; i < c->nclients; i++)
		if (strcmp(c->clients[i].name, id) == 0 || strcasecmp(c->clients[i].initiator, id) == 0)
			return &c->clients[i];
	return NULL;
}
