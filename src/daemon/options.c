/*
 * options.c - pristined's command line, turned into a struct config
 * (contract in options.h).  Every value goes through the parser of its
 * kind in util/parse.c, the one the configuration file and the API use,
 * so "20GiB" is a size everywhere; every problem is reported, not just
 * the first, each as "pristined: --OPTION: what is wrong".
 */
#include "daemon/options.h"
#include "boot/boot.h"
#include "daemon/listen.h"
#include "daemon/privs.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/version.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* The --help text. */
static void options_usage(FILE *f)
{
	fprintf(f,
		"usage: pristined --image PATH [options]    (quick mode)\n"
		"       pristined -c FILE [-v LEVEL] [-u NAME] [--zero-copy]\n"
		"                                             (configuration file, see pristine.conf(5))\n"
		"  -i, --image PATH        raw image file or block device to export as LUN 0\n"
		"  -l, --listen ADDR:PORT  portal to listen on (repeatable; default *:3260)\n"
		"  -s, --state DIR         state directory (default /var/lib/pristine)\n"
		"  -t, --target IQN        target name (default derived from the image name)\n"
		"  -r, --read-only         serve the image write-protected to all, no overlays\n"
		"  -q, --quota SIZE        space each client's overlay may hold (e.g. 20G; default none)\n"
		"  -f, --store-floor SIZE  free space to keep on the state file system (default 512M)\n"
		"  -S, --socket PATH       admin API socket (default STATE/pristined.sock)\n"
		"  -b, --block-size N      logical block size, 512 or 4096 (default 512)\n"
		"  -n, --nop-interval SECS idle time before a NOP-In ping, 0 = never (default 30)\n"
		"  -B, --boot-listen ADDR:PORT  serve iPXE boot scripts on http://ADDR:PORT/boot.ipxe\n"
		"  -P, --boot-portal HOST[:PORT] iSCSI portal the scripts name (default: the address\n"
		"                          the PC reached the boot endpoint at, and the first --listen port)\n"
		"  -e, --enroll auto|deny  auto: enroll every initiator that logs in or PC that boots\n"
		"                          (default); deny: only clients added with pristinectl\n"
		"  -p, --policy POLICY     persistent | reset-on-boot | scheduled (default persistent)\n"
		"  -R, --reset-at HH:MM    the daily reset time of the scheduled policy\n"
		"  -u, --user NAME         once every socket is bound, run as NAME with no capabilities\n"
		"                          (start as root; default: user = of -c FILE, else $PRISTINED_USER)\n"
		"      --zero-copy         send large reads straight from the page cache (splice)\n"
		"                          instead of through a buffer (default: off)\n"
		"      --console-listen ADDR:PORT  serve the web console (HTTPS) there; set its\n"
		"                          password with pristinectl console passwd (default: off)\n"
		"      --metrics-listen ADDR:PORT  serve Prometheus metrics on http://ADDR:PORT/metrics\n"
		"                          (default: off)\n"
		"      --no-prefetch       learn the PCs' boot sets but do not read them ahead\n"
		"                          (warm boots; default: prefetch on)\n"
		"      --boot-set-max SIZE the most of a version's disk its boot set covers,\n"
		"                          64K..64G (default 2G)\n"
		"  -v, --log-level LEVEL   error|warn|notice|info|debug (default info)\n"
		"  -h, --help              this text\n"
		"  -V, --version           print the version\n"
		"SIZE: bytes, or a number with K, M, G or T (powers of 1024): 512M, 20G, 20GiB.\n"
		"Exit status 2: a bad option or value, or a bad configuration file.\n");
}

enum { OPT_ZERO_COPY = 256, OPT_CONSOLE_LISTEN, OPT_METRICS_LISTEN, OPT_NO_PREFETCH,
       OPT_BOOT_SET_MAX };

static const struct option longopts[] = {
	{ "image", required_argument, NULL, 'i' },
	{ "listen", required_argument, NULL, 'l' },
	{ "state", required_argument, NULL, 's' },
	{ "target", required_argument, NULL, 't' },
	{ "read-only", no_argument, NULL, 'r' },
	{ "quota", required_argument, NULL, 'q' },
	{ "store-floor", required_argument, NULL, 'f' },
	{ "socket", required_argument, NULL, 'S' },
	{ "block-size", required_argument, NULL, 'b' },
	{ "nop-interval", required_argument, NULL, 'n' },
	{ "log-level", required_argument, NULL, 'v' },
	{ "config", required_argument, NULL, 'c' },
	{ "boot-listen", required_argument, NULL, 'B' },
	{ "boot-portal", required_argument, NULL, 'P' },
	{ "enroll", required_argument, NULL, 'e' },
	{ "policy", required_argument, NULL, 'p' },
	{ "reset-at", required_argument, NULL, 'R' },
	{ "user", required_argument, NULL, 'u' },
	{ "zero-copy", no_argument, NULL, OPT_ZERO_COPY },
	{ "console-listen", required_argument, NULL, OPT_CONSOLE_LISTEN },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "no-prefetch", no_argument, NULL, OPT_NO_PREFETCH },
	{ "boot-set-max", required_argument, NULL, OPT_BOOT_SET_MAX },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};
static const char shortopts[] = ":i:l:s:t:rq:f:S:b:n:v:c:hVB:P:e:p:R:u:";

/* Options that only make sense in quick mode: -c FILE says all of it. */
static const char quick_only[] = "ilstrqfSbnBPepR";

struct opt_state {
	struct config *cfg;
	unsigned nbad;
	unsigned seen[OPT_BOOT_SET_MAX + 1];   /* times each option was given */
	const char *config;                 /* -c FILE */
	const char *user;                   /* --user */
	const char *image;
	const char *target;
	bool have_level, zero_copy, have_reset_at;
	enum log_level level;
};

static void bad(struct opt_state *st, const char *opt, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Report one problem with option opt ("--quota") and count it. */
static void bad(struct opt_state *st, const char *opt, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pristined: %s: ", opt);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	st->nbad++;
}

/* "--quota" for option character ch (every option has a long name). */
static const char *long_name(int ch, char *buf, size_t len)
{
	for (const struct option *o = longopts; o->name; o++)
		if (o->val == ch) {
			snprintf(buf, len, "--%s", o->name);
			return buf;
		}
	snprintf(buf, len, "-%c", ch);
	return buf;
}

/* Image name from its file name: lower case, [a-z0-9-], no extension. */
static void default_name(const char *image, char *out, size_t len)
{
	const char *base = strrchr(image, '/');
	char name[64];
	size_t n = 0;

	base = base ? base + 1 : image;
	for (; *base && *base != '.' && n < sizeof(name) - 1; base++) {
		unsigned char ch = (unsigned char)*base;
		name[n++] = isalnum(ch) || ch == '-' ? (char)tolower(ch) : '-';
	}
	name[n] = '\0';
	snprintf(out, len, "%s", n ? name : "image");
}

/* Copy a path option into dst[len]; refuse one that does not fit. */
static void set_path(struct opt_state *st, const char *opt, char *dst, size_t len, const char *v)
{
	if (strlen(v) >= len) {
		bad(st, opt, "path too long (at most %zu bytes)", len - 1);
		return;
	}
	memcpy(dst, v, strlen(v) + 1);
}

/* One option with its value v (NULL for a flag); ch as getopt gave it. */
static void one_option(struct opt_state *st, int ch, const char *v)
{
	struct config *c = st->cfg;
	char opt[32], why[256], shown[64];

	long_name(ch, opt, sizeof(opt));
	if (v && !v[0]) {
		bad(st, opt, "empty value");
		return;
	}
	if (st->seen[ch]++ && ch != 'l') {
		bad(st, opt, "given twice");
		return;
	}
	switch (ch) {
	case 'i':
		st->image = v;
		set_path(st, opt, c->images[0].path, sizeof(c->images[0].path), v);
		break;
	case 'c': st->config = v; break;
	case 's': set_path(st, opt, c->state, sizeof(c->state), v); break;
	case 'S': set_path(st, opt, c->socket, sizeof(c->socket), v); break;
	case 't':
		if (parse_iqn(v, why, sizeof(why)))
			bad(st, opt, "%s", why);
		st->target = v;
		break;
	case 'r': c->read_only = true; break;
	case 'q':
		if (parse_size(v, &c->default_quota, why, sizeof(why)))
			bad(st, opt, "%s", why);
		break;
	case 'f':
		if (parse_size(v, &c->store_floor, why, sizeof(why)))
			bad(st, opt, "%s", why);
		break;
	case 'b':
		if (parse_block_size(v, &c->images[0].block_size, why, sizeof(why)))
			bad(st, opt, "%s", why);
		break;
	case 'n':
		if (parse_seconds(v, 0, 3600, &c->nop_interval, why, sizeof(why)))
			bad(st, opt, "%s", why);
		break;
	case 'l':
		if (parse_portal(v, NULL, why, sizeof(why))) {
			bad(st, opt, "%s", why);
			break;
		}
		for (unsigned i = 0; i < c->nlisten; i++)
			if (strcmp(c->listen[i], v) == 0) {
				bad(st, opt, "%s given twice", v);
				return;
			}
		if (c->nlisten >= CFG_MAX_LISTEN || c->nlisten >= MAX_PORTALS) {
			bad(st, opt, "at most %d addresses", CFG_MAX_LISTEN);
			break;
		}
		snprintf(c->listen[c->nlisten++], sizeof(c->listen[0]), "%s", v);
		break;
	case 'B':
		if (parse_portal(v, NULL, why, sizeof(why)))
			bad(st, opt, "%s", why);
		else
			snprintf(c->boot_listen, sizeof(c->boot_listen), "%s", v);
		break;
	case OPT_CONSOLE_LISTEN:
	case OPT_METRICS_LISTEN: {
		char *dst = ch == OPT_CONSOLE_LISTEN ? c->console_listen : c->metrics_listen;

		if (parse_portal(v, NULL, why, sizeof(why)))
			bad(st, opt, "%s", why);
		else if (strlen(v) >= sizeof(c->console_listen))
			bad(st, opt, "too long");
		else
			snprintf(dst, sizeof(c->console_listen), "%s", v);
		break;
	}
	case 'P':
		if (!boot_host_valid(v) || strlen(v) >= sizeof(c->boot_portal))
			bad(st, opt, "'%s' is not HOST or HOST:PORT (a name or a numeric address; "
			    "[..] around IPv6; at most %zu bytes)", log_safe(v, shown, sizeof(shown)),
			    sizeof(c->boot_portal) - 1);
		else
			snprintf(c->boot_portal, sizeof(c->boot_portal), "%s", v);
		break;
	case 'e':
		if (strcmp(v, "auto") == 0)
			c->enroll_auto = true;
		else if (strcmp(v, "deny") == 0)
			c->enroll_auto = false;
		else
			bad(st, opt, "'%s' is not auto or deny", log_safe(v, shown, sizeof(shown)));
		break;
	case 'p':
		if (rules_parse_policy(v, &c->default_policy))
			bad(st, opt, "'%s' is not persistent, reset-on-boot or scheduled",
			    log_safe(v, shown, sizeof(shown)));
		break;
	case 'R':
		st->have_reset_at = true;
		if (parse_time_of_day(v, &c->default_reset_at, why, sizeof(why)))
			bad(st, opt, "%s", why);
		break;
	case 'u':
		if (!privs_user_name_valid(v))
			bad(st, opt, "'%s' is not a user name ([A-Za-z0-9._-], at most %d)",
			    log_safe(v, shown, sizeof(shown)), PRIVS_NAME_MAX - 1);
		st->user = v;
		break;
	case 'v':
		if (log_parse_level(v, &st->level))
			bad(st, opt, "'%s' is not error, warn, notice, info or debug",
			    log_safe(v, shown, sizeof(shown)));
		st->have_level = true;
		break;
	case OPT_ZERO_COPY: st->zero_copy = true; break;
	case OPT_NO_PREFETCH: c->prefetch = false; break;
	case OPT_BOOT_SET_MAX:
		if (config_parse_boot_set_max(v, &c->boot_set_max, why, sizeof(why)))
			bad(st, opt, "%s", why);
		break;
	}
}

/* What getopt could not take: argv[optind - 1] as typed. */
static void getopt_problem(struct opt_state *st, int ch, char **argv)
{
	const char *arg = argv[optind - 1];
	char opt[32], shown[64];

	if (ch == ':') {
		bad(st, optopt ? long_name(optopt, opt, sizeof(opt)) : log_safe(arg, shown, sizeof(shown)),
		    "needs a value");
		return;
	}
	if (optopt && strncmp(arg, "--", 2) != 0) {
		snprintf(opt, sizeof(opt), "-%c", optopt);
		bad(st, opt, "unknown option (see pristined --help)");
	} else if (strncmp(arg, "--", 2) == 0 && strchr(arg, '=') && optopt) {
		bad(st, long_name(optopt, opt, sizeof(opt)), "takes no value");
	} else {
		char name[64];
		size_t n = strcspn(arg, "=");
		snprintf(name, sizeof(name), "%.*s", (int)(n < 60 ? n : 60), arg);
		bad(st, log_safe(name, shown, sizeof(shown)), "unknown option (see pristined --help)");
	}
}

/* Quick mode: what the options left unsaid, and what they cannot say
 * together.  The image is cfg->images[0]. */
static void finish_quick(struct opt_state *st)
{
	struct config *c = st->cfg;
	struct cfg_image *im = &c->images[0];
	const char *key;
	char why[200];

	c->quick = true;
	default_name(st->image, im->name, sizeof(im->name));
	if (st->target)
		snprintf(im->target, sizeof(im->target), "%s", st->target);
	else
		snprintf(im->target, sizeof(im->target), "%s%s", CFG_TARGET_PREFIX, im->name);
	if (config_fill_server(c, &key, why, sizeof(why)))
		bad(st, strcmp(key, "socket") ? "--state" : "--socket", "%s", why);
	if (c->read_only && c->boot_listen[0])
		bad(st, "--boot-listen", "not with --read-only (it serves no clients of its own)");
	if (c->read_only && c->console_listen[0])
		bad(st, "--console-listen", "not with --read-only (no admin API to show)");
	if (c->default_policy == POLICY_SCHEDULED && !st->have_reset_at)
		bad(st, "--policy", "scheduled needs --reset-at HH:MM");
	if (st->have_reset_at && c->default_policy != POLICY_SCHEDULED)
		bad(st, "--reset-at", "only applies to --policy scheduled");
	if (c->default_policy != POLICY_SCHEDULED)
		c->default_reset_at = -1;
}

int options_parse(int argc, char **argv, struct config *cfg, const char **cfg_path)
{
	struct opt_state st = { .cfg = cfg };
	int ch, want = 0;

	*cfg_path = NULL;
	config_defaults(cfg);
	cfg->nimages = 1;
	cfg->images = calloc(1, sizeof(*cfg->images));
	if (!cfg->images) {
		fprintf(stderr, "pristined: out of memory\n");
		return OPTIONS_EXIT_BAD;
	}
	cfg->images[0].block_size = 512;
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (ch == 'h' || ch == 'V')
			want = ch;
		else if (ch == '?' || ch == ':')
			getopt_problem(&st, ch, argv);
		else
			one_option(&st, ch, optarg);
	}
	/* --help and --version answer a command line without bad options */
	if (want && !st.nbad) {
		if (want == 'h')
			options_usage(stdout);
		else
			printf("pristined %s\n", PRISTINE_VERSION);
		config_free(cfg);
		return OPTIONS_EXIT_OK;
	}
	for (int i = optind; i < argc; i++) {
		char shown[64];
		bad(&st, log_safe(argv[i], shown, sizeof(shown)), "unexpected argument (options "
		    "start with -; see pristined --help)");
	}
	if (st.config) {
		char opt[32];
		for (const char *q = quick_only; *q; q++)
			if (st.seen[(unsigned char)*q])
				bad(&st, long_name(*q, opt, sizeof(opt)), "quick mode only (with --image), "
				    "not with -c FILE: the file says it (pristine.conf(5))");
		for (int q = OPT_NO_PREFETCH; q <= OPT_BOOT_SET_MAX; q++)
			if (st.seen[q])
				bad(&st, long_name(q, opt, sizeof(opt)), "quick mode only (with --image), "
				    "not with -c FILE: the file says it (prefetch, boot-set-max)");
	} else if (!st.image) {
		if (!st.nbad)
			bad(&st, "--image", "missing: give --image PATH (quick mode) or -c FILE");
	} else {
		finish_quick(&st);
	}
	if (st.nbad) {
		config_free(cfg);
		return OPTIONS_EXIT_BAD;
	}
	if (st.config) {
		char err[4096];
		config_free(cfg);
		if (config_load(st.config, cfg, err, sizeof(err))) {
			fprintf(stderr, "%s\npristined: %s: not started\n", err, st.config);
			return OPTIONS_EXIT_BAD;
		}
		*cfg_path = st.config;
	}
	/* These apply to a file too, and win over it. */
	if (st.user)
		snprintf(cfg->user, sizeof(cfg->user), "%s", st.user);
	if (st.zero_copy)
		cfg->zero_copy = true;
	if (st.have_level)
		cfg->log_level = st.level;
	log_set_level(cfg->log_level);
	return 0;
}
