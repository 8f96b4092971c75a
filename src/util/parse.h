/*
 * parse.h - the one parser of each kind of value an admin types: sizes,
 * block sizes, whole numbers, seconds, times of day, image and client
 * names, iSCSI names and listening addresses.  pristined's options, the
 * configuration file, the admin API and pristinectl all call these, so a
 * value one of them takes, all of them take, and with the same words
 * when they refuse it.
 *
 * Every parser returns 0, or -EINVAL with *out untouched and `why` filled
 * with what is wrong with the value, e.g. "'5X' is not a size (...)".
 * The value is quoted (bounded and made printable), the option or key is
 * not: the caller prefixes it ("pristined: --quota: ", "t.conf:4: quota: ").
 * why may be NULL when whylen is 0.  Nothing here allocates or keeps a
 * pointer; all are thread-safe.
 */
#ifndef PRISTINE_UTIL_PARSE_H
#define PRISTINE_UTIL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARSE_NAME_MAX 64      /* image and client names: 1..63 bytes + NUL */
#define PARSE_IQN_MAX 224      /* iSCSI names: < 224 bytes (= ISCSI_NAME_MAX) */
#define PARSE_PORTAL_MAX 80    /* ADDR:PORT specs, NUL included */
#define PARSE_SIZE_MAX ((uint64_t)INT64_MAX)

/*
 * SIZE: a number of bytes, or a number followed by K, M, G or T (either
 * case; powers of 1024), then optionally 'i', then optionally 'B':
 * "0", "4096", "512M", "20G", "20GiB", "20GB", "20Gi" (and "100B").
 * Digits only before the suffix (no sign, blank or fraction); at most
 * PARSE_SIZE_MAX (2^63 - 1) bytes, overflow checked.
 */
/* The value of one hex digit (either case), or -1. */
int parse_hexdigit(char c);

int parse_size(const char *s, uint64_t *out, char *why, size_t whylen);

/* BLOCK SIZE: exactly "512" or "4096". */
int parse_block_size(const char *s, uint32_t *out, char *why, size_t whylen);

/* A whole number from lo to hi: decimal digits only, overflow checked. */
int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out, char *why, size_t whylen);

/* A number of seconds from lo to hi, like parse_uint, said as seconds. */
int parse_seconds(const char *s, unsigned lo, unsigned hi, unsigned *out, char *why,
		  size_t whylen);

/* TIME of day: "H:MM" or "HH:MM", 00:00 to 23:59, as minutes after
 * midnight in *minutes. */
int parse_time_of_day(const char *s, int *minutes, char *why, size_t whylen);

/* NAME of an image or client: 1 to 63 of [a-z0-9-], not starting with
 * '-'.  what ("image", "client") is only used in the message. */
int parse_name(const char *s, const char *what, char *why, size_t whylen);

/* iSCSI NAME (RFC 7143 4.2.7): iqn.YYYY-MM.domain[:anything] (ASCII
 * letters, digits, '-', '.', ':' and valid UTF-8), eui.<16 hex> or
 * naa.<16 or 32 hex>; shorter than PARSE_IQN_MAX. */
int parse_iqn(const char *s, char *why, size_t whylen);

/* ADDR:PORT to listen on, numeric addresses only: "*:PORT", ":PORT",
 * "A.B.C.D:PORT", "[V6]:PORT"; PORT 1..65535; shorter than
 * PARSE_PORTAL_MAX.  *port (may be NULL) receives the port. */
int parse_portal(const char *s, unsigned *port, char *why, size_t whylen);

/* The same checks as booleans, for callers that have their own message. */
bool parse_name_ok(const char *s);
bool parse_iqn_ok(const char *s);

#endif
