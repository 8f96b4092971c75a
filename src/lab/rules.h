/*
 * rules.h - the rules for a client's fields, one copy of each, shared by
 * the configuration file (daemon/config.c) and the admin API
 * (clients.c): CHAP names and secrets and how they go together, MAC
 * addresses, SMBIOS UUIDs, reset policies; and a client as the file
 * declares it (struct client_decl).
 *
 * Every check writes a one-line message that begins with the key it is
 * about ("chap-secret: ...", "mac: ..."), the same from the file (which
 * puts FILE:LINE before it) and from the API; a secret is never quoted
 * back.  Pure functions: no I/O, no locks.
 */
#ifndef PRISTINE_RULES_H
#define PRISTINE_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/iscsi.h"
#include "util/netaddr.h"
#include "util/parse.h"
#include "lab/xdisk.h"

#include <stdint.h>

/* CHAP names and secrets: up to RULES_CHAP_MAX - 1 bytes (the wire's limit). */
#define RULES_CHAP_MAX ISCSI_CHAP_MAX
/* A CHAP secret has at least 12 bytes: 96 bits, RFC 7143 12.1.3. */
#define RULES_SECRET_MIN 12
/* "aa:bb:cc:dd:ee:ff" and "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" with their NUL. */
#define RULES_MAC_LEN 18
#define RULES_UUID_LEN 37
/* Source addresses (ip = ...) one client may be bound to. */
#define RULES_MAX_IPS 8

/* When a client's overlay is discarded (pristine.conf(5) "policy"). */
enum client_policy { POLICY_PERSISTENT, POLICY_RESET_ON_BOOT, POLICY_SCHEDULED };

/* "persistent", "reset-on-boot", "scheduled" ("?" for anything else). */
const char *rules_policy_name(enum client_policy p);
/* One of the names above (exact, lower-case).  0, or -EINVAL with *out
 * untouched. */
int rules_parse_policy(const char *s, enum client_policy *out);

/*
 * A client as the configuration file declares it ([client NAME]):
 * config_load fills these, registry_configure turns each into a client.
 */
struct client_decl {
	char name[PARSE_NAME_MAX];
	char initiator[PARSE_IQN_MAX];  /* valid iSCSI name, stored lower-case */
	char mac[RULES_MAC_LEN];                 /* "aa:bb:cc:dd:ee:ff" (lower-case) or "" */
	/* ip = : the source addresses it may log in from, as canonical text
	 * ("10.0.0.21", "10.0.1.0/24") and parsed; nips 0 = from anywhere */
	char ips[RULES_MAX_IPS][NETADDR_TEXT_MAX];
	struct netaddr_rule ip_rules[RULES_MAX_IPS];
	unsigned nips;
	char image[PARSE_NAME_MAX];        /* names an entry of config.images */
	enum client_policy policy;
	int reset_at_min;                /* POLICY_SCHEDULED: minutes after midnight; else -1 */
	uint64_t quota;                  /* bytes, 0 = none */
	/* CHAP: all "" when the client logs in without authentication;
	 * mutual_* are "" unless the target must authenticate too. */
	char chap_user[RULES_CHAP_MAX], chap_secret[RULES_CHAP_MAX];
	char mutual_user[RULES_CHAP_MAX], mutual_secret[RULES_CHAP_MAX];
	/* disks = : its own extra disks (lab/xdisk.h), after its image's */
	struct xdisk_decl disks[XDISK_MAX];
	unsigned ndisks;
	int line;                        /* line of its [client NAME] header */
};


/*
 * A CHAP user name (key "chap-user", "mutual-user"...): 1 to 255 visible
 * ASCII characters, no blanks.  0 or -EINVAL with msg.
 */
int rules_chap_name(const char *key, const char *val, char *msg, size_t msglen);
/* A CHAP secret: RULES_SECRET_MIN to 255 bytes.  0 or -EINVAL with msg
 * (which gives its length, never its text). */
int rules_chap_secret(const char *key, const char *val, char *msg, size_t msglen);

/* The four CHAP keys of a client, in this order. */
enum rules_chap_key { RULES_CHAP_USER, RULES_CHAP_SECRET, RULES_MUTUAL_USER, RULES_MUTUAL_SECRET };

/* One broken CHAP pairing: which key it is reported at, and why. */
struct rules_problem {
	enum rules_chap_key key;
	char msg[160];
};

/*
 * How the CHAP keys go together: a user needs its secret and a secret its
 * user, mutual CHAP comes in pairs and only on top of one-way CHAP, and
 * the mutual secret differs from the one-way secret.  has[k] says whether
 * key k was given; secret and msecret are the values ("" or NULL when
 * absent).  Key names in messages get prefix ("discovery-" or "").
 * Fills up to max problems in order of the checks above and returns how
 * many there were (0 = fine).
 */
unsigned rules_chap_pairs(const bool has[4], const char *secret, const char *msecret,
			  const char *prefix, struct rules_problem *out, unsigned max);

/*
 * A whole CHAP setting as the API gives it, checked (names, secrets,
 * pairs) and copied into *out (zeroed first).  user NULL with the others
 * NULL = nothing; "" user = CHAP off (then the others must be NULL).  0
 * or -EINVAL with the message of the first problem.
 */
int rules_chap_creds(const char *user, const char *secret, const char *muser, const char *msecret,
		     struct iscsi_chap_creds *out, char *msg, size_t msglen);

/*
 * A MAC address, "52:54:00:12:34:01", with '-' throughout, or 12 bare hex digits, normalised to lower
 * case with ':' into out.  0 or -EINVAL with msg ("mac: '...' is not a
 * MAC address like ...").
 */
int rules_mac(const char *val, char out[RULES_MAC_LEN], char *msg, size_t msglen);
/* An SMBIOS UUID, 8-4-4-4-12 hex digits, normalised to lower case. */
int rules_uuid(const char *val, char out[RULES_UUID_LEN], char *msg, size_t msglen);

#endif
