/*
 * test_config.c - unit tests of the configuration file (src/daemon/config.c):
 * a full file read field by field, defaults, every class of error with the
 * exact FILE:LINE it must name, several errors at once, and the checks that
 * need a real file (permissions with CHAP secrets, unreadable files).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "daemon/config.h"

static char err[8192];

/* Parse text from memory as "t.conf" with mode 0600. */
static int parse(const char *text, struct config *c)
{
	return config_parse("t.conf", text, strlen(text), 0600, c, err, sizeof(err));
}

/* Number of messages (lines) in err. */
static unsigned nmsgs(void)
{
	unsigned n = err[0] ? 1 : 0;
	for (const char *s = err; *s; s++)
		n += *s == '\n';
	return n;
}

/* text must fail with exactly one message, and that message must begin
 * with want ("t.conf:LINE: start of text"). */
static void expect_one(const char *text, const char *want)
{
	struct config c;
	int rc = parse(text, &c);

	if (rc != -EINVAL || nmsgs() != 1 || strncmp(err, want, strlen(want)) != 0) {
		print_error("input:\n%s\nrc %d, want message starting '%s', got:\n%s\n", text, rc,
			    want, err);
		fail();
	}
	assert_int_equal(c.nimages, 0);   /* zeroed on failure */
	assert_null(c.images);
}

/* Write text to a fresh temporary file with the given mode; path in buf. */
static void write_file(char *path, size_t len, const char *text, mode_t mode)
{
	int fd;

	snprintf(path, len, "/tmp/test_config.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static const char full[] =
	"; pristine.conf used by test_full\n"                             /* 1 */
	"[server]\n"                                                       /* 2 */
	"listen = *:3260\n"                                                /* 3 */
	"listen = [fd00::1]:3261   ; second portal\n"                      /* 4 */
	"state = /srv/pristine\n"                                          /* 5 */
	"socket = /run/pristined.sock\n"                                   /* 6 */
	"log-level = debug\n"                                              /* 7 */
	"nop-interval = 0\n"                                               /* 8 */
	"store-floor = 2GiB\n"                                             /* 9 */
	"\n"                                                               /* 10 */
	"[defaults]\n"                                                     /* 11 */
	"enroll = deny\n"                                                  /* 12 */
	"image = win10\n"                                                  /* 13 */
	"policy = scheduled\n"                                             /* 14 */
	"reset-at = 03:00\n"                                               /* 15 */
	"quota = 20G\n"                                                    /* 16 */
	"\n"                                                               /* 17 */
	"[image win10]\n"                                                  /* 18 */
	"path = /srv/images/win10.img\n"                                   /* 19 */
	"\n"                                                               /* 20 */
	"[image linux]\n"                                                  /* 21 */
	"path = /dev/vg0/linux\n"                                          /* 22 */
	"target = iqn.2026-11.org.example:linux-lab\n"                     /* 23 */
	"block-size = 4096\n"                                              /* 24 */
	"\n"                                                               /* 25 */
	"[client pc01]\n"                                                  /* 26 */
	"initiator = iqn.2010-04.org.ipxe:PC01\n"                          /* 27 */
	"mac = 52-54-00-12-34-AB\n"                                        /* 28 */
	"ip = 10.0.0.21, fd00:0::21\n"                                     /* 29 */
	"image = linux\n"                                                  /* 30 */
	"policy = reset-on-boot\n"                                         /* 31 */
	"quota = 0\n"                                                      /* 32 */
	"chap-user = pc01\n"                                               /* 33 */
	"chap-secret = 0123456789ab\n"                                     /* 34 */
	"mutual-user = pristine\n"                                         /* 35 */
	"mutual-secret = ba9876543210\n"                                   /* 36 */
	"\n"                                                               /* 37 */
	"  [client pc02]   # indented, with a comment\n"                   /* 38 */
	"  initiator = iqn.2010-04.org.ipxe:pc02\n"                        /* 39 */
	"  reset-at = 22:30\n";                                            /* 40 */

static void test_full(void **state)
{
	struct config c;
	const struct client_decl *a, *b;

	assert_int_equal(parse(full, &c), 0);
	assert_string_equal(err, "");
	assert_int_equal(c.nlisten, 2);
	assert_string_equal(c.listen[0], "*:3260");
	assert_string_equal(c.listen[1], "[fd00::1]:3261");
	assert_string_equal(c.state, "/srv/pristine");
	assert_string_equal(c.socket, "/run/pristined.sock");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(c.nop_interval, 0);
	assert_true(c.store_floor == 2ull << 30);
	assert_false(c.enroll_auto);
	assert_string_equal(c.default_image, "win10");
	assert_int_equal(c.default_policy, POLICY_SCHEDULED);
	assert_int_equal(c.default_reset_at, 180);
	assert_true(c.default_quota == 20ull << 30);

	assert_int_equal(c.nimages, 2);
	assert_string_equal(c.images[0].name, "win10");
	assert_string_equal(c.images[0].path, "/srv/images/win10.img");
	assert_string_equal(c.images[0].target, "iqn.2026-11.org.pristine:win10");
	assert_int_equal(c.images[0].block_size, 512);
	assert_int_equal(c.images[0].line, 18);
	assert_string_equal(c.images[1].name, "linux");
	assert_string_equal(c.images[1].path, "/dev/vg0/linux");
	assert_string_equal(c.images[1].target, "iqn.2026-11.org.example:linux-lab");
	assert_int_equal(c.images[1].block_size, 4096);
	assert_int_equal(c.images[1].line, 21);
	assert_ptr_equal(cfg_image_find(&c, "linux"), &c.images[1]);
	assert_null(cfg_image_find(&c, "nope"));

	assert_int_equal(c.nclients, 2);
	a = &c.clients[0];
	assert_string_equal(a->name, "pc01");
	assert_string_equal(a->initiator, "iqn.2010-04.org.ipxe:pc01");  /* lower-cased */
	assert_string_equal(a->mac, "52:54:00:12:34:ab");
	assert_int_equal(a->nips, 2);
	assert_string_equal(a->ips[0], "10.0.0.21");
	assert_string_equal(a->ips[1], "fd00::21");
	assert_string_equal(a->image, "linux");
	assert_int_equal(a->policy, POLICY_RESET_ON_BOOT);
	assert_int_equal(a->reset_at_min, -1);
	assert_true(a->quota == 0);                  /* explicit 0 beats [defaults] */
	assert_string_equal(a->chap_user, "pc01");
	assert_string_equal(a->chap_secret, "0123456789ab");
	assert_string_equal(a->mutual_user, "pristine");
	assert_string_equal(a->mutual_secret, "ba9876543210");
	assert_int_equal(a->line, 26);

	b = &c.clients[1];                           /* everything from [defaults] */
	assert_string_equal(b->name, "pc02");
	assert_string_equal(b->mac, "");
	assert_int_equal(b->nips, 0);
	assert_string_equal(b->image, "win10");
	assert_int_equal(b->policy, POLICY_SCHEDULED);
	assert_int_equal(b->reset_at_min, 22 * 60 + 30);
	assert_true(b->quota == 20ull << 30);
	assert_string_equal(b->chap_user, "");
	assert_int_equal(b->line, 38);

	assert_ptr_equal(cfg_client_find(&c, "pc02"), b);
	assert_ptr_equal(cfg_client_find(&c, "IQN.2010-04.ORG.IPXE:PC01"), a);
	assert_null(cfg_client_find(&c, "pc03"));
	config_free(&c);
	assert_null(c.images);
	config_free(&c);                             /* twice is fine */
}

static void test_defaults(void **state)
{
	struct config c;

	assert_int_equal(parse("[image golden]\npath = /srv/golden.img\n", &c), 0);
	assert_int_equal(c.nlisten, 1);
	assert_string_equal(c.listen[0], "*:3260");
	assert_string_equal(c.state, "/var/lib/pristine");
	assert_string_equal(c.socket, "/var/lib/pristine/pristined.sock");
	assert_int_equal(c.log_level, LOG_INFO);
	assert_int_equal(c.nop_interval, 30);
	assert_true(c.store_floor == 512ull << 20);
	assert_true(c.enroll_auto);
	assert_string_equal(c.default_image, "golden");   /* the only image */
	assert_int_equal(c.default_policy, POLICY_PERSISTENT);
	assert_int_equal(c.default_reset_at, -1);
	assert_true(c.default_quota == 0);
	assert_int_equal(c.nclients, 0);
	assert_null(c.clients);
	assert_string_equal(c.images[0].target, "iqn.2026-11.org.pristine:golden");
	assert_int_equal(c.images[0].block_size, 512);
	config_free(&c);

	/* socket follows state */
	assert_int_equal(parse("[server]\nstate = /tmp/st\n[image a]\npath = /a\n", &c), 0);
	assert_string_equal(c.socket, "/tmp/st/pristined.sock");
	config_free(&c);

	/* several images, enroll deny: no default image, and that is fine */
	assert_int_equal(parse("[defaults]\nenroll = deny\n[image a]\npath = /a\n"
			       "[image b]\npath = /b\n[client x]\ninitiator = iqn.2001-01.x.y:z\n"
			       "image = b\n", &c), 0);
	assert_string_equal(c.default_image, "");
	assert_string_equal(c.clients[0].image, "b");
	config_free(&c);
}

/* Lexical details: CRLF, byte order mark, comments, sizes, long paths. */
static void test_syntax(void **state)
{
	struct config c;
	char *big;
	size_t n;

	assert_int_equal(parse("\xef\xbb\xbf[image a]\r\npath = /a\r\n# comment\r\n"
			       "; other comment\r\n[server]\r\nstore-floor = 1T\r\n", &c), 0);
	assert_string_equal(c.images[0].path, "/a");
	assert_true(c.store_floor == 1ull << 40);
	config_free(&c);

	/* sizes */
	{
		static const struct { const char *s; uint64_t v; } sizes[] = {
			{ "123", 123 }, { "512K", 512 << 10 }, { "512k", 512 << 10 },
			{ "20G", 20ull << 30 }, { "20GB", 20ull << 30 }, { "20GiB", 20ull << 30 },
			{ "3Mi", 3 << 20 }, { "7B", 7 }, { "8388607T", 8388607ull << 40 },
		};
		char text[128];
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			snprintf(text, sizeof(text), "[image a]\npath = /a\n[defaults]\nquota = %s\n",
				 sizes[i].s);
			assert_int_equal(parse(text, &c), 0);
			assert_true(c.default_quota == sizes[i].v);
			config_free(&c);
		}
	}

	/* a path of PATH_MAX - 1 bytes fits on a line */
	n = PATH_MAX + 64;
	big = malloc(n);
	assert_non_null(big);
	memcpy(big, "[image a]\npath = /", 18);
	memset(big + 18, 'x', PATH_MAX - 2);
	snprintf(big + 18 + PATH_MAX - 2, n - 18 - PATH_MAX + 2, "\n");
	assert_int_equal(parse(big, &c), 0);
	assert_int_equal(strlen(c.images[0].path), PATH_MAX - 1);
	config_free(&c);
	free(big);
}

/* Every class of error, alone in a file, with the line it must name. */
static void test_error_lines(void **state)
{
	static const struct { const char *text; const char *want; } cases[] = {
		/* sections */
		{ "[image a]\npath = /a\n[bogus]\n", "t.conf:3: unknown section [bogus]" },
		{ "[image a]\npath = /a\n[image a]\npath = /b\n",
		  "t.conf:3: duplicate section [image a] (first on line 1)" },
		{ "[image a]\npath = /a\n[server]\n[server]\n",
		  "t.conf:4: duplicate section [server] (first on line 3)" },
		{ "[image a]\npath = /a\n[image]\n", "t.conf:3: [image] needs a name" },
		{ "[image a]\npath = /a\n[image Win10]\n", "t.conf:3: invalid image name" },
		{ "[image a]\npath = /a\n[client -x]\n", "t.conf:3: invalid client name" },
		{ "[image a]\npath = /a\n[server x]\n", "t.conf:3: [server] takes no name" },
		{ "[image a]\npath = /a\n[server\n", "t.conf:3: section header without closing ']'" },
		{ "[image a]\npath = /a\n[server] x\n", "t.conf:3: unexpected text after section header" },
		/* lines and keys */
		{ "listen = *:3260\n[image a]\npath = /a\n", "t.conf:1: 'listen' outside of any section" },
		{ "[image a]\npath = /a\n\nsize = 3\n", "t.conf:4: unknown key 'size' in [image a]" },
		{ "[image a]\npath = /a\npath = /b\n",
		  "t.conf:3: path given twice in [image a] (first on line 2)" },
		{ "[image a]\npath = /a\n[server]\nlisten\n", "t.conf:4: expected KEY = VALUE" },
		{ "[image a]\npath = /a\n[server]\nstate: /x\n", "t.conf:4: expected KEY = VALUE" },
		{ "[image a]\npath = /a\n[server]\n= /x\n", "t.conf:4: no key name before '='" },
		{ "[image a]\npath = /a\n[server]\nstate =\n", "t.conf:4: state: empty value" },
		{ "[image a]\npath = /a\n[server]\nstate = ; only a comment\n",
		  "t.conf:4: state: empty value" },
		{ "[image a]\npath = /a\n[server]\nstate = /a\tb\n",
		  "t.conf:4: state: control character in value" },
		/* [server] values */
		{ "[image a]\npath = /a\n[server]\nlisten = 3260\n", "t.conf:4: listen: '3260' is not ADDR:PORT" },
		{ "[image a]\npath = /a\n[server]\nlisten = *:0\n", "t.conf:4: listen: '*:0'" },
		{ "[image a]\npath = /a\n[server]\nlisten = *:65536\n", "t.conf:4: listen: '*:65536'" },
		{ "[image a]\npath = /a\n[server]\nlisten = host.example:3260\n", "t.conf:4: listen:" },
		{ "[image a]\npath = /a\n[server]\nlisten = [10.0.0.1]:3260\n", "t.conf:4: listen:" },
		{ "[image a]\npath = /a\n[server]\nlisten = *:3260\nlisten = *:3260\n",
		  "t.conf:5: listen *:3260 given twice" },
		{ "[image a]\npath = /a\n[server]\nlisten = :1\nlisten = :2\nlisten = :3\nlisten = :4\n"
		  "listen = :5\nlisten = :6\nlisten = :7\nlisten = :8\nlisten = :9\n",
		  "t.conf:12: too many listen addresses (at most 8)" },
		{ "[image a]\npath = /a\n[server]\nstate = var/lib\n",
		  "t.conf:4: state: 'var/lib' is not an absolute path" },
		{ "[image a]\npath = /a\n[server]\nsocket = x.sock\n", "t.conf:4: socket: 'x.sock' is not an absolute path" },
		{ "[image a]\npath = /a\n[server]\nlog-level = loud\n", "t.conf:4: log-level: 'loud'" },
		{ "[image a]\npath = /a\n[server]\nnop-interval = 3601\n", "t.conf:4: nop-interval: '3601'" },
		{ "[image a]\npath = /a\n[server]\nnop-interval = -1\n", "t.conf:4: nop-interval: '-1'" },
		{ "[image a]\npath = /a\n[server]\nstore-floor = 5X\n", "t.conf:4: store-floor: '5X' is not a size" },
		{ "[image a]\npath = /a\n[server]\nstore-floor = 99999999999T\n", "t.conf:4: store-floor:" },
		{ "[image a]\npath = /a\n[server]\nstate = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		  "t.conf:4: state: the admin socket STATE/pristined.sock would be longer" },
		/* [defaults] */
		{ "[image a]\npath = /a\n[defaults]\nenroll = maybe\n", "t.conf:4: enroll: 'maybe' is not auto or deny" },
		{ "[image a]\npath = /a\n[defaults]\nimage = b\n", "t.conf:4: image b: there is no [image b]" },
		{ "[image a]\npath = /a\n[defaults]\npolicy = sometimes\n", "t.conf:4: policy: 'sometimes'" },
		{ "[image a]\npath = /a\n[defaults]\npolicy = scheduled\n",
		  "t.conf:4: policy = scheduled needs reset-at = HH:MM" },
		{ "[image a]\npath = /a\n[defaults]\nreset-at = 24:00\n", "t.conf:4: reset-at: '24:00'" },
		{ "[image a]\npath = /a\n[defaults]\nreset-at = 3:5\n", "t.conf:4: reset-at: '3:5'" },
		{ "[image a]\npath = /a\n[defaults]\nquota = -1G\n", "t.conf:4: quota: '-1G' is not a size" },
		{ "[image a]\npath = /a\n[defaults]\nquota = 16777215T\n", "t.conf:4: quota: '16777215T' is too large" },
		{ "[image a]\npath = /a\n[image b]\npath = /b\n",
		  "t.conf:3: several images and enroll = auto" },
		{ "[defaults]\nenroll = auto\n[image a]\npath = /a\n[image b]\npath = /b\n",
		  "t.conf:2: several images and enroll = auto" },
		/* [image] */
		{ "[image a]\n", "t.conf:1: [image a] has no path =" },
		{ "[image a]\npath = relative.img\n", "t.conf:2: path: 'relative.img' is not an absolute path" },
		{ "[image a]\npath = /a\ntarget = pristine-a\n", "t.conf:3: target: 'pristine-a' is not a valid iSCSI name" },
		{ "[image a]\npath = /a\nblock-size = 1024\n", "t.conf:3: block-size: '1024' is not 512 or 4096" },
		{ "[defaults]\nimage = a\n[image a]\npath = /a\ntarget = iqn.2000-01.x:t\n[image b]\npath = /b\n"
		  "target = IQN.2000-01.X:T\n",
		  "t.conf:8: target IQN.2000-01.X:T is already the target of [image a] (line 3)" },
		{ "[defaults]\nimage = b\n[image a]\npath = /a\n[image b]\npath = /b\n"
		  "target = iqn.2026-11.org.pristine:a\n",
		  "t.conf:7: target iqn.2026-11.org.pristine:a is already the target of [image a] (line 3)" },
		/* [client] */
		{ "[image a]\npath = /a\n[client x]\nmac = 52:54:00:00:00:01\n",
		  "t.conf:3: [client x] has no initiator =" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = pc01\n",
		  "t.conf:4: initiator: 'pc01' is not a valid iSCSI name" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\n"
		  "[client y]\n\ninitiator = IQN.2010-04.org.ipxe:PC01\n",
		  "t.conf:7: initiator iqn.2010-04.org.ipxe:pc01 is already [client x] (line 4)" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\n"
		  "mac = 52:54:00:00:00:01\n[client y]\ninitiator = iqn.2010-04.org.ipxe:pc02\n"
		  "mac = 52-54-00-00-00-01\n",
		  "t.conf:8: mac 52:54:00:00:00:01 is already [client x] (line 5)" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nmac = 52:54:00:00:01\n",
		  "t.conf:5: mac: '52:54:00:00:01' is not a MAC address" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nip = 10.0.0.300\n",
		  "t.conf:5: ip: '10.0.0.300': not an IPv4 or IPv6 address" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nip = 10.0.0.1,,10.0.0.2\n",
		  "t.conf:5: ip: empty address in list" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nip = ::1, 0::1\n",
		  "t.conf:5: ip: '0::1' listed twice" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\n"
		  "ip = 1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,1.1.1.8,1.1.1.9\n",
		  "t.conf:5: ip: too many addresses (at most 8)" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\n\nimage = b\n",
		  "t.conf:6: image b: there is no [image b]" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nimage = A\n",
		  "t.conf:5: image: 'A' is not a valid image name" },
		{ "[defaults]\nenroll = deny\n[image a]\npath = /a\n[image b]\npath = /b\n"
		  "[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\n",
		  "t.conf:7: [client x] has no image" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\npolicy = scheduled\n",
		  "t.conf:5: policy = scheduled needs reset-at" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nreset-at = 01:00\n",
		  "t.conf:5: reset-at only applies to policy = scheduled (this client's policy is persistent)" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nquota = lots\n",
		  "t.conf:5: quota: 'lots' is not a size" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nchap-user = u\n",
		  "t.conf:5: chap-user needs chap-secret" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\n"
		  "chap-secret = 0123456789ab\n",
		  "t.conf:5: chap-secret needs chap-user" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nchap-user = u\n"
		  "chap-secret = short\n",
		  "t.conf:6: chap-secret: 5 bytes; a CHAP secret must have 12 to 255" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nchap-user = u v\n"
		  "chap-secret = 0123456789ab\n",
		  "t.conf:5: chap-user: only visible ASCII characters" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\n"
		  "mutual-user = m\nmutual-secret = 0123456789ab\n",
		  "t.conf:5: mutual CHAP (mutual-user, mutual-secret) needs chap-user" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nchap-user = u\n"
		  "chap-secret = 0123456789ab\nmutual-user = m\n",
		  "t.conf:7: mutual-user needs mutual-secret" },
		{ "[image a]\npath = /a\n[client x]\ninitiator = iqn.2010-04.org.ipxe:pc01\nchap-user = u\n"
		  "chap-secret = 0123456789ab\nmutual-user = m\nmutual-secret = 0123456789ab\n",
		  "t.conf:8: mutual-secret must differ from chap-secret" },
		/* whole file */
		{ "", "t.conf:1: no [image NAME] section" },
		{ "[server]\nstate = /x\n", "t.conf:1: no [image NAME] section" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_one(cases[i].text, cases[i].want);
}

/* A NUL byte inside the text (the length is the literal's, not strlen's). */
static void test_nul_byte(void **state)
{
	struct config c;
	static const char t[] = "[image a]\npath = /a\n[server]\nstate = /x\0y\n";

	assert_int_equal(config_parse("t.conf", t, sizeof(t) - 1, 0600, &c, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "t.conf:4: NUL byte in line");
}

/* A line too long for the reader is one error, and the next line counts. */
static void test_long_line(void **state)
{
	struct config c;
	size_t n = 20000;
	char *t = malloc(n);

	assert_non_null(t);
	snprintf(t, n, "[image a]\npath = /");
	memset(t + strlen(t), 'x', 9000);
	snprintf(t + 18 + 9000, n - 18 - 9000, "\n[server]\nlog-level = x\n");
	assert_int_equal(parse(t, &c), -EINVAL);
	assert_int_equal(nmsgs(), 3);
	assert_non_null(strstr(err, "t.conf:1: [image a] has no path ="));
	assert_non_null(strstr(err, "t.conf:2: line too long (at most 8190 characters)"));
	assert_non_null(strstr(err, "t.conf:4: log-level: 'x'"));
	free(t);
}

/* Several errors reported together, sorted by line, each once. */
static void test_several_errors(void **state)
{
	struct config c;
	static const char t[] =
		"[server]\n"                                      /* 1 */
		"nop-interval = 9999\n"                           /* 2 */
		"[image a]\n"                                     /* 3 */
		"[client pc1]\n"                                  /* 4 */
		"initiator = iqn.2010-04.org.ipxe:pc1\n"          /* 5 */
		"image = zzz\n"                                   /* 6 */
		"colour = blue\n"                                 /* 7 */
		"[client pc2]\n"                                  /* 8 */
		"initiator = iqn.2010-04.org.ipxe:PC1\n";         /* 9 */

	assert_int_equal(parse(t, &c), -EINVAL);
	assert_string_equal(err,
		"t.conf:2: nop-interval: '9999' is not a number of seconds from 0 to 3600\n"
		"t.conf:3: [image a] has no path = (its raw image file or block device) and no rbd = "
		"(POOL/IMAGE[@SNAP] on Ceph)\n"
		"t.conf:6: image zzz: there is no [image zzz]\n"
		"t.conf:7: unknown key 'colour' in [client pc1]\n"
		"t.conf:9: initiator iqn.2010-04.org.ipxe:pc1 is already [client pc1] (line 5)");
}

/* More than CFG_MAX_ERRORS: the first ones and a count of the rest. */
static void test_many_errors(void **state)
{
	struct config c;
	char t[4096];
	size_t n = 0;

	n += (size_t)snprintf(t + n, sizeof(t) - n, "[image a]\npath = /a\n[server]\n");
	for (int i = 0; i < 30; i++)
		n += (size_t)snprintf(t + n, sizeof(t) - n, "bad%d = 1\n", i);
	assert_int_equal(parse(t, &c), -EINVAL);
	assert_int_equal(nmsgs(), CFG_MAX_ERRORS + 1);
	assert_non_null(strstr(err, "t.conf:4: unknown key 'bad0' in [server]\n"));
	assert_non_null(strstr(err, "t.conf:23: unknown key 'bad19' in [server]\n"));
	assert_null(strstr(err, "bad20"));
	assert_non_null(strstr(err, "\nt.conf: 10 more errors not shown"));

	/* a short err buffer is cut, still NUL-terminated */
	{
		char small[40];
		assert_int_equal(config_parse("t.conf", t, strlen(t), 0600, &c, small, sizeof(small)),
				 -EINVAL);
		assert_int_equal(strlen(small), sizeof(small) - 1);
		assert_int_equal(strncmp(small, "t.conf:4: unknown key", 21), 0);
	}
}

static const char with_secret[] =
	"[image a]\npath = /a\n"
	"[client x]\ninitiator = iqn.2010-04.org.ipxe:x\n"
	"chap-user = x\nchap-secret = 0123456789abcdef\n";   /* line 6 */

/* Files: permissions with secrets, a missing file, a directory. */
static void test_files(void **state)
{
	struct config c;
	char path[64], want[256];
	int rc;

	write_file(path, sizeof(path), with_secret, 0644);
	rc = config_load(path, &c, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	snprintf(want, sizeof(want), "%s:6: the file holds CHAP secrets but group or others may "
		 "access it: chmod 600 %s", path, path);
	assert_string_equal(err, want);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), -EINVAL);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
	assert_string_equal(c.clients[0].chap_secret, "0123456789abcdef");
	config_free(&c);
	unlink(path);

	/* no secrets: world-readable is fine */
	write_file(path, sizeof(path), "[image a]\npath = /a\n", 0644);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nimages, 1);
	config_free(&c);
	unlink(path);

	/* a file with no image at all */
	write_file(path, sizeof(path), "[server]\nlog-level = warn\n", 0600);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: no [image NAME] section", path);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);
	unlink(path);

	assert_int_equal(config_load("/nonexistent/pristine.conf", &c, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/pristine.conf: No such file or directory");
	assert_int_equal(config_load("/tmp", &c, err, sizeof(err)), -EISDIR);
}

/* The commented example shipped in docs/ must stay valid (tests run from
 * the top of the tree; skipped elsewhere). */
static void test_example(void **state)
{
	struct config c;
	int rc = config_load("docs/examples/pristine.conf", &c, err, sizeof(err));

	if (rc == -ENOENT)
		skip();
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_int_equal(c.nimages, 2);
	assert_int_equal(c.nclients, 2);
	assert_string_equal(c.default_image, "win10");
	config_free(&c);
}

/* A secret in a section that is itself in error still needs chmod 600. */
static void test_secret_in_bad_section(void **state)
{
	struct config c;
	static const char t[] = "[image a]\npath = /a\n[client A]\nchap-secret = 0123456789ab\n";

	assert_int_equal(config_parse("t.conf", t, strlen(t), 0644, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "t.conf:3: invalid client name"));
	assert_non_null(strstr(err, "t.conf:4: the file holds CHAP secrets"));
}

static void test_policy_names(void **state)
{
	enum client_policy p = POLICY_PERSISTENT;

	for (int i = POLICY_PERSISTENT; i <= POLICY_SCHEDULED; i++) {
		assert_int_equal(rules_parse_policy(rules_policy_name((enum client_policy)i), &p), 0);
		assert_int_equal(p, i);
	}
	assert_int_equal(rules_parse_policy("Persistent", &p), -EINVAL);
	assert_int_equal(rules_parse_policy("", &p), -EINVAL);
	assert_int_equal(p, POLICY_SCHEDULED);
}

/* Scheduled policy inherited from [defaults], time from the client. */
static void test_inheritance(void **state)
{
	struct config c;

	assert_int_equal(parse("[defaults]\npolicy = scheduled\nreset-at = 4:05\n[image a]\npath = /a\n"
			       "[client x]\ninitiator = iqn.2010-04.org.ipxe:x\n"
			       "[client y]\ninitiator = iqn.2010-04.org.ipxe:y\nreset-at = 23:59\n"
			       "[client z]\ninitiator = iqn.2010-04.org.ipxe:z\npolicy = persistent\n",
			       &c), 0);
	assert_int_equal(c.clients[0].policy, POLICY_SCHEDULED);
	assert_int_equal(c.clients[0].reset_at_min, 245);
	assert_int_equal(c.clients[1].reset_at_min, 23 * 60 + 59);
	assert_int_equal(c.clients[2].policy, POLICY_PERSISTENT);
	assert_int_equal(c.clients[2].reset_at_min, -1);
	config_free(&c);

	/* reset-at in [defaults] alone is a default for scheduled clients */
	assert_int_equal(parse("[defaults]\nreset-at = 02:00\n[image a]\npath = /a\n"
			       "[client x]\ninitiator = iqn.2010-04.org.ipxe:x\npolicy = scheduled\n",
			       &c), 0);
	assert_int_equal(c.default_policy, POLICY_PERSISTENT);
	assert_int_equal(c.clients[0].reset_at_min, 120);
	config_free(&c);
}

/* Images on Ceph RBD: rbd = POOL/IMAGE[@SNAP] instead of path =, with
 * [server] ceph-conf = and ceph-id =; every bad value a FILE:LINE error. */
static void test_rbd(void **state)
{
	static const struct { const char *text; const char *want; } bad[] = {
		{ "[server]\nceph-conf = /c\n[image a]\nrbd = pool\n",
		  "t.conf:4: rbd: 'pool' is not POOL/IMAGE or POOL/IMAGE@SNAP" },
		{ "[server]\nceph-conf = /c\n[image a]\nrbd = /img\n",
		  "t.conf:4: rbd: the pool name is empty" },
		{ "[server]\nceph-conf = /c\n[image a]\nrbd = p/\n",
		  "t.conf:4: rbd: the image name is empty" },
		{ "[server]\nceph-conf = /c\n[image a]\nrbd = p/i@\n",
		  "t.conf:4: rbd: the snapshot name is empty" },
		{ "[server]\nceph-conf = /c\n[image a]\nrbd = p/i/j\n",
		  "t.conf:4: rbd: the image name holds '/'" },
		{ "[server]\nceph-conf = /c\n[image a]\nrbd = p/i@s@t\n",
		  "t.conf:4: rbd: the snapshot name holds '@'" },
		{ "[server]\nceph-conf = /c\n[image a]\npath = /a\nrbd = p/i\n",
		  "t.conf:5: rbd: [image a] has path = already (line 4): give one of them" },
		{ "[image a]\nrbd = p/i@s\n",
		  "t.conf:2: rbd: an image on Ceph needs [server] ceph-conf = FILE" },
		{ "[server]\nceph-conf = ceph.conf\n[image a]\nrbd = p/i\n",
		  "t.conf:2: ceph-conf: 'ceph.conf' is not an absolute path" },
		{ "[server]\nceph-conf = /c\nceph-id = client.lab\n[image a]\nrbd = p/i\n",
		  "t.conf:3: ceph-id: give the name without 'client.' (ceph-id = lab)" },
		{ "[server]\nceph-conf = /c\nceph-id = a b\n[image a]\nrbd = p/i\n",
		  "t.conf:3: ceph-id: 'a b' is not a cephx client name" },
		{ "[server]\nceph-conf = /c\nceph-id = -x\n[image a]\nrbd = p/i\n",
		  "t.conf:3: ceph-id: '-x' is not a cephx client name" },
		{ "[server]\nceph-conf = /c\nceph-id = "
		  "a234567890123456789012345678901234567890123456789012345678901234\n[image a]\nrbd = p/i\n",
		  "t.conf:3: ceph-id: 'a234567890" },
	};
	struct config c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_one(bad[i].text, bad[i].want);

	/* the server section may come after the image */
	assert_int_equal(parse("[image win10]\nrbd = lab/win10@v1\n[image linux]\npath = /l\n"
			       "[server]\nceph-conf = /etc/ceph/lab.conf\nceph-id = pristine\n"
			       "[defaults]\nenroll = deny\n", &c), 0);
	assert_int_equal(c.nimages, 2);
	assert_string_equal(c.images[0].rbd, "lab/win10@v1");
	assert_string_equal(c.images[0].path, "");
	assert_string_equal(c.images[1].rbd, "");
	assert_string_equal(c.images[1].path, "/l");
	assert_string_equal(c.ceph_conf, "/etc/ceph/lab.conf");
	assert_string_equal(c.ceph_id, "pristine");
	config_free(&c);
	/* the head of an image; ceph-id defaults to admin */
	assert_int_equal(parse("[server]\nceph-conf = /c\n[image a]\nrbd = p/i\n", &c), 0);
	assert_string_equal(c.images[0].rbd, "p/i");
	assert_string_equal(c.ceph_id, "admin");
	config_free(&c);
	/* no Ceph at all: no conf needed, the default identity only */
	assert_int_equal(parse("[image a]\npath = /a\n", &c), 0);
	assert_string_equal(c.ceph_conf, "");
	config_free(&c);
}

/* [server] rbd-cache = SIZE: the shared read cache of versions on RBD;
 * 512M by default, 0 = off, otherwise at least RCACHE_MIN_BYTES. */
static void test_rbd_cache(void **state)
{
	struct config c;

	expect_one("[server]\nrbd-cache = lots\n[image a]\npath = /a\n",
		   "t.conf:2: rbd-cache: 'lots' is not a size");
	expect_one("[server]\nrbd-cache = 100K\n[image a]\npath = /a\n",
		   "t.conf:2: rbd-cache: '100K' is less than 1024K (0 turns the cache off)");
	assert_int_equal(parse("[image a]\npath = /a\n", &c), 0);
	assert_true(c.rbd_cache == 512ull << 20);
	config_free(&c);
	assert_int_equal(parse("[server]\nrbd-cache = 2G\nceph-conf = /c\n[image a]\nrbd = p/i@s\n",
			       &c), 0);
	assert_true(c.rbd_cache == 2ull << 30);
	config_free(&c);
	assert_int_equal(parse("[server]\nrbd-cache = 1M\n[image a]\npath = /a\n", &c), 0);
	assert_true(c.rbd_cache == 1ull << 20);
	config_free(&c);
	assert_int_equal(parse("[server]\nrbd-cache = 0\n[image a]\npath = /a\n", &c), 0);
	assert_true(c.rbd_cache == 0);
	config_free(&c);
}

/* [server] ceph-op-timeout = SECONDS: how long an OSD request may wait;
 * 0 (wait as long as the cluster needs) by default, at most an hour. */
static void test_ceph_op_timeout(void **state)
{
	struct config c;

	expect_one("[server]\nceph-op-timeout = soon\n[image a]\npath = /a\n",
		   "t.conf:2: ceph-op-timeout: 'soon' is not a number of seconds from 0 to 3600");
	expect_one("[server]\nceph-op-timeout = 3601\n[image a]\npath = /a\n",
		   "t.conf:2: ceph-op-timeout: '3601' is not a number of seconds from 0 to 3600");
	assert_int_equal(parse("[image a]\npath = /a\n", &c), 0);
	assert_int_equal(c.ceph_op_timeout, 0);
	config_free(&c);
	assert_int_equal(parse("[server]\nceph-op-timeout = 30\n[image a]\npath = /a\n", &c), 0);
	assert_int_equal(c.ceph_op_timeout, 30);
	config_free(&c);
}

/* [server] prefetch = yes|no (default yes) and boot-set-max = SIZE
 * (default 2G, 64K..64G, rounded down to 64K): warm boots. */
static void test_prefetch_keys(void **state)
{
	struct config c;

	expect_one("[server]\nprefetch = maybe\n[image a]\npath = /a\n", "t.conf:2: prefetch: ");
	expect_one("[server]\nboot-set-max = lots\n[image a]\npath = /a\n",
		   "t.conf:2: boot-set-max: 'lots' is not a size");
	expect_one("[server]\nboot-set-max = 32K\n[image a]\npath = /a\n",
		   "t.conf:2: boot-set-max: '32K' is not between 64K and 64G");
	expect_one("[server]\nboot-set-max = 65G\n[image a]\npath = /a\n",
		   "t.conf:2: boot-set-max: '65G' is not between 64K and 64G");
	assert_int_equal(parse("[image a]\npath = /a\n", &c), 0);
	assert_true(c.prefetch);
	assert_true(c.boot_set_max == 2ull << 30);
	config_free(&c);
	assert_int_equal(parse("[server]\nprefetch = no\nboot-set-max = 100K\n[image a]\npath = /a\n",
			       &c), 0);
	assert_false(c.prefetch);
	assert_true(c.boot_set_max == 64u << 10);   /* rounded down to a chunk */
	config_free(&c);
	assert_int_equal(parse("[server]\nprefetch = yes\nboot-set-max = 64G\n[image a]\npath = /a\n",
			       &c), 0);
	assert_true(c.prefetch);
	assert_true(c.boot_set_max == 64ull << 30);
	config_free(&c);
}

/* [network NAME] (Wake-on-LAN): subnet required and IPv4, the broadcast
 * address defaults to the subnet's, wake-port 9; wake-at = HH:MM in
 * [image] and [defaults]; errors with their lines. */
static void test_network_wake(void **state)
{
	struct config c;

	assert_int_equal(parse("[image a]\npath = /a\nwake-at = 07:50\n[image b]\npath = /b\n"
			       "[defaults]\nenroll = deny\nwake-at = 06:05\n"
			       "[network lab]\nsubnet = 10.1.2.0/24\ninterface = eth1\n"
			       "[network office]\nsubnet = 192.168.0.0/16\nbroadcast = 192.168.9.255\n"
			       "wake-port = 7\n", &c), 0);
	assert_int_equal(c.wake.nnets, 2);
	assert_string_equal(c.wake.nets[0].name, "lab");
	assert_true(c.wake.nets[0].net == 0x0a010200u);
	assert_int_equal(c.wake.nets[0].prefix, 24);
	assert_true(c.wake.nets[0].broadcast == 0x0a0102ffu);
	assert_string_equal(c.wake.nets[0].iface, "eth1");
	assert_int_equal(c.wake.nets[0].port, 9);
	assert_true(c.wake.nets[1].broadcast == 0xc0a809ffu);
	assert_string_equal(c.wake.nets[1].iface, "");
	assert_int_equal(c.wake.nets[1].port, 7);
	assert_int_equal(c.images[0].wake_at, 7 * 60 + 50);
	assert_int_equal(c.images[1].wake_at, -1);
	assert_int_equal(c.wake.default_at, 6 * 60 + 5);
	assert_int_equal(c.wake.nats, 1);
	assert_string_equal(c.wake.ats[0].image, "a");
	assert_int_equal(wake_at_for(&c.wake, "a"), 7 * 60 + 50);
	assert_int_equal(wake_at_for(&c.wake, "b"), 6 * 60 + 5);
	config_free(&c);
	assert_null(c.wake.nets);

	/* no [network], no wake-at: nothing */
	assert_int_equal(parse("[image a]\npath = /a\n", &c), 0);
	assert_int_equal(c.wake.nnets, 0);
	assert_int_equal(c.wake.default_at, -1);
	assert_int_equal(wake_at_for(&c.wake, "a"), -1);
	config_free(&c);

	expect_one("[image a]\npath = /a\n[network lab]\ninterface = eth0\n",
		   "t.conf:3: [network lab] has no subnet = ADDR/PREFIX");
	expect_one("[image a]\npath = /a\n[network lab]\nsubnet = 10.1.2.300/24\n",
		   "t.conf:4: subnet: ");
	expect_one("[image a]\npath = /a\n[network lab]\nsubnet = 10.1.2.7/24\n",
		   "t.conf:4: subnet: ");
	expect_one("[image a]\npath = /a\n[network lab]\nsubnet = fd00::/64\n",
		   "t.conf:4: subnet: 'fd00::/64' is not an IPv4 network");
	expect_one("[image a]\npath = /a\n[network lab]\nsubnet = 10.0.0.0/8\nbroadcast = ten\n",
		   "t.conf:5: broadcast: 'ten' is not an IPv4 address");
	expect_one("[image a]\npath = /a\n[network lab]\nsubnet = 10.0.0.0/8\nwake-port = 0\n",
		   "t.conf:5: wake-port: ");
	expect_one("[image a]\npath = /a\n[network lab]\nsubnet = 10.0.0.0/8\n"
		   "interface = a-very-long-interface\n", "t.conf:5: interface: ");
	expect_one("[image a]\npath = /a\n[network lab]\nsubnet = 10.0.0.0/8\n"
		   "[network lab]\nsubnet = 10.1.0.0/16\n",
		   "t.conf:5: duplicate section [network lab] (first on line 3)");
	expect_one("[image a]\npath = /a\n[network]\nsubnet = 10.0.0.0/8\n",
		   "t.conf:3: [network] needs a name: [network NAME]");
	expect_one("[image a]\npath = /a\nwake-at = 7:5\n", "t.conf:3: wake-at: ");
	expect_one("[image a]\npath = /a\nwake-at = 24:00\n", "t.conf:3: wake-at: ");
	expect_one("[image a]\npath = /a\n[defaults]\nwake-at = soon\n", "t.conf:4: wake-at: ");
	expect_one("[image a]\npath = /a\n[network lab]\nsubnet = 10.0.0.0/8\nmac = x\n",
		   "t.conf:5: unknown key 'mac' in [network lab]");
}

static void test_disks(void **state)
{
	struct config c;
	struct xdisk_decl d[XDISK_MAX + 1];
	unsigned n = 99;
	char msg[256];

	(void)state;
	assert_int_equal(parse("[image lab]\npath = /lab\ndisks = games data:read-only, "
			       "scratch:discard-on-boot:20G\n"
			       "[image games]\npath = /g\ndisk-policy = discard-on-boot\ndisk-quota = 50G\n"
			       "[image data]\npath = /d\n[image scratch]\npath = /s\n[image tools]\npath = /t\n"
			       "[defaults]\nenroll = deny\nimage = lab\n"
			       "[client pc1]\ninitiator = iqn.2026-01.test:pc1\ndisks = tools:read-only games::5G\n",
			       &c), 0);
	assert_int_equal(c.images[0].ndisks, 3);
	assert_string_equal(c.images[0].disks[0].image, "games");
	assert_false(c.images[0].disks[0].has_policy);
	assert_false(c.images[0].disks[0].has_quota);
	assert_string_equal(c.images[0].disks[1].image, "data");
	assert_true(c.images[0].disks[1].has_policy);
	assert_int_equal(c.images[0].disks[1].policy, XDISK_READ_ONLY);
	assert_int_equal(c.images[0].disks[2].policy, XDISK_DISCARD_ON_BOOT);
	assert_true(c.images[0].disks[2].has_quota);
	assert_true(c.images[0].disks[2].quota == 20ull << 30);
	assert_int_equal(c.images[1].disk_policy, XDISK_DISCARD_ON_BOOT);
	assert_true(c.images[1].disk_quota == 50ull << 30);
	assert_int_equal(c.images[2].disk_policy, XDISK_OVERLAY);   /* the default */
	assert_int_equal(c.images[2].disk_quota, 0);
	assert_int_equal(c.clients[0].ndisks, 2);
	assert_string_equal(c.clients[0].disks[0].image, "tools");
	assert_int_equal(c.clients[0].disks[0].policy, XDISK_READ_ONLY);
	assert_false(c.clients[0].disks[1].has_policy);   /* "games::5G": policy left out */
	assert_true(c.clients[0].disks[1].quota == 5ull << 30);
	config_free(&c);

	expect_one("[image lab]\npath = /lab\ndisks = games\n",
		   "t.conf:3: disks: games: there is no [image games]");
	expect_one("[image lab]\npath = /lab\ndisks = lab\n",
		   "t.conf:3: disks: lab is the boot image of these PCs (LUN 0)");
	expect_one("[image lab]\npath = /lab\ndisks = g g\n[image g]\npath = /g\n[defaults]\nenroll = deny\n",
		   "t.conf:3: disks: g is listed twice");
	expect_one("[image lab]\npath = /lab\ndisks = g:sometimes\n[image g]\npath = /g\n[defaults]\nenroll = deny\n",
		   "t.conf:3: disks: g: policy 'sometimes' is not overlay, discard-on-boot or read-only");
	expect_one("[image lab]\npath = /lab\ndisks = g:read-only:1G\n[image g]\npath = /g\n[defaults]\nenroll = deny\n",
		   "t.conf:3: disks: g: a read-only disk has no overlay, so no quota");
	expect_one("[image lab]\npath = /lab\ndisks = g:overlay:lots\n[image g]\npath = /g\n[defaults]\nenroll = deny\n",
		   "t.conf:3: disks: g: quota: ");
	expect_one("[image lab]\npath = /lab\ndisks = G_1\n", "t.conf:3: disks: ");
	expect_one("[image lab]\npath = /lab\ndisk-policy = maybe\n",
		   "t.conf:3: disk-policy: 'maybe' is not overlay, discard-on-boot or read-only");
	expect_one("[image lab]\npath = /lab\ndisk-policy = read-only\ndisk-quota = 1G\n",
		   "t.conf:4: disk-quota: [image lab] has disk-policy = read-only");
	expect_one("[image lab]\npath = /lab\n[image g]\npath = /g\n[client a]\n"
		   "initiator = iqn.2026-01.test:a\nimage = lab\ndisks = lab\n[defaults]\nenroll = deny\n",
		   "t.conf:8: disks: lab is the boot image of these PCs (LUN 0)");

	/* the list parser itself: 15 at most, separators, empty list */
	assert_int_equal(xdisk_parse_list("a b c d e f g h i j k l m n o", d, &n, msg, sizeof(msg)), 0);
	assert_int_equal(n, 15);
	assert_int_equal(xdisk_parse_list("a b c d e f g h i j k l m n o p", d, &n, msg, sizeof(msg)),
			 -EINVAL);
	assert_non_null(strstr(msg, "more than 15 extra disks"));
	assert_int_equal(xdisk_parse_list(" , ", d, &n, msg, sizeof(msg)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(xdisk_parse_list("a:overlay:1G:x", d, &n, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "too many ':'"));
	for (int p = XDISK_OVERLAY; p <= XDISK_READ_ONLY; p++) {
		enum xdisk_policy back;
		assert_int_equal(xdisk_parse_policy(xdisk_policy_name((enum xdisk_policy)p), &back), 0);
		assert_int_equal(back, p);
	}
	assert_string_equal(xdisk_policy_name((enum xdisk_policy)7), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_error_lines),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_several_errors),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_secret_in_bad_section),
		cmocka_unit_test(test_policy_names),
		cmocka_unit_test(test_inheritance),
		cmocka_unit_test(test_rbd),
		cmocka_unit_test(test_rbd_cache),
		cmocka_unit_test(test_ceph_op_timeout),
		cmocka_unit_test(test_network_wake),
		cmocka_unit_test(test_prefetch_keys),
		cmocka_unit_test(test_disks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
