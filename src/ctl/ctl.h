/*
 * ctl.h - pieces of pristinectl shared between its files: the HTTP
 * client for the daemon's admin socket (ctl_http.c) and the output
 * helpers (ctl_print.c).  The verbs live in pristinectl.c (status,
 * client, session), ctl_image.c (image, job), ctl_disk.c (client disk,
 * image disk) and ctl_pxe.c (pxe).
 */
#ifndef PRISTINE_CTL_H
#define PRISTINE_CTL_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of pristinectl. */
enum {
	CTL_OK = 0,		/* done */
	CTL_EREMOTE = 1,	/* the daemon answered with an error */
	CTL_EUSAGE = 2,		/* bad command line, or a verb not available yet */
	CTL_EUNREACH = 3,	/* cannot talk to the daemon */
};

/* One answer of the daemon. */
struct ctl_reply {
	long status;		/* HTTP status */
	json_t *body;		/* parsed JSON body (owned), NULL if none or not JSON */
};

/* Call once at start / end of the program (wraps curl's global state). */
int ctl_http_init(void);
void ctl_http_cleanup(void);

/*
 * Send method path (e.g. "GET", "/v1/status") with an optional JSON body
 * to the daemon listening on the Unix socket sock.  Returns 0 with *r
 * filled (any HTTP status; free r->body with json_decref), or
 * CTL_EUNREACH after printing on stderr why the daemon cannot be reached.
 */
int ctl_request(const char *sock, const char *method, const char *path, const char *body,
		struct ctl_reply *r);

/*
 * Percent-encode s for use as one path segment.  Returns a malloc'd
 * string the caller frees, or NULL when out of memory.
 */
char *ctl_path_escape(const char *s);

/* "1.2 GiB" style size into buf (binary units, one decimal). */
void ctl_fmt_size(uint64_t bytes, char *buf, size_t len);
/* obj's "quota_bytes" as a size into buf, or none when it is 0 or absent. */
void ctl_fmt_quota(const json_t *obj, const char *none, char *buf, size_t len);
/* "3d 04h", "1h 02m", "5m 03s", "42s" into buf. */
void ctl_fmt_duration(uint64_t secs, char *buf, size_t len);
/* Local "YYYY-MM-DD HH:MM:SS" for a Unix time, "-" for 0. */
void ctl_fmt_time(int64_t t, char *buf, size_t len);

/*
 * Any JSON value in words, for human output of fields pristinectl does
 * not know: null (and an empty array) is none, true/false are yes/no,
 * strings as they are, an array of scalars is "a, b, c", anything else
 * compact JSON.  Returns a malloc'd string the caller frees, or NULL when
 * out of memory.
 */
char *ctl_fmt_value(const json_t *v, const char *none);

/* Field accessors tolerant of missing or mistyped fields. */
const char *ctl_str(const json_t *obj, const char *key, const char *dflt);
int64_t ctl_int(const json_t *obj, const char *key);

/*
 * A text table: cells are copied (control characters and non-ASCII
 * bytes shown as '?', so columns stay aligned and a hostile name cannot
 * drive the terminal), then printed with columns padded to the widest
 * cell.  ctl_table_add returns 0 or -ENOMEM.
 */
struct ctl_table {
	size_t ncols, nrows, cap;
	char **cells;		/* nrows * ncols strings, row-major */
};
void ctl_table_init(struct ctl_table *t, size_t ncols);
int ctl_table_add(struct ctl_table *t, const char *const *row);
void ctl_table_print(const struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* Print v as indented JSON plus a newline (the --json output). */
void ctl_print_json(const json_t *v, FILE *f);

#include <stdbool.h>

struct ctl {
	char sock[4096];
	bool json;
};

/*
 * A list verb's row maker: fill row[0..ncols-1] for member e of the list;
 * a cell may point into e (valid while e is) or into one of the
 * CTL_ROW_BUFS scratch buffers of CTL_ROW_BUF bytes each (valid until the
 * next row).
 */
#define CTL_ROW_BUFS 4
#define CTL_ROW_BUF 32
typedef void ctl_row_fn(const json_t *e, const char **row, char buf[][CTL_ROW_BUF]);

/*
 * A list verb: GET path; with --json the answer as it is, else the array
 * under key as a table (head: ncols titles, one row a member by fill) or
 * "no <key>" when it is empty.  CTL_OK, CTL_EREMOTE when out of memory
 * (said on stderr), or ctl_call's exit code.
 */
int ctl_list(const struct ctl *c, const char *path, const char *key, const char *const *head,
	     size_t ncols, ctl_row_fn *fill);

/* Options given after the verb; which verbs take which is checked per verb. */
struct ctl_opts {
	bool force;
	bool no_wait;		/* --no-wait: start a job and return its id */
	bool all;		/* client wake --all */
	const char *name;	/* --name, NULL if absent */
	const char *image;	/* --image */
	const char *quota;	/* --quota, as typed */
	const char *client;	/* --client */
	const char *message;	/* -m / --message */
	const char *format;	/* --format */
	const char *block_size;	/* --block-size */
	const char *target;	/* --target */
	const char *rbd;	/* --rbd: POOL/IMAGE@SNAP (image add), POOL (import) */
	const char *mac;	/* --mac */
	const char *uuid;	/* --uuid */
	const char *policy;	/* --policy */
	const char *disk;	/* client reset --disk IMAGE */
	const char *reset_at;	/* --reset-at HH:MM */
	const char *ip;		/* --ip ADDR[/PREFIX][,...] ("" = anywhere) */
	const char *chap_user;	/* --chap-user NAME */
	const char *chap_secret_file;	/* --chap-secret-file FILE ("-" = stdin) */
	const char *mutual_user;	/* --mutual-user NAME */
	const char *mutual_secret_file;	/* --mutual-secret-file FILE */
	bool no_chap;		/* --no-chap */
	bool proxy;		/* pxe dnsmasq --proxy */
	bool full;		/* pxe dnsmasq --full */
	const char *server;	/* --server IP */
	const char *interface;	/* --interface IF */
	const char *range;	/* --range FIRST,LAST[,NETMASK] */
	bool undo;		/* cluster drain --undo */
	bool from_stdin;	/* console passwd --stdin */
	const char *version;	/* image prefetch --version N */
	bool wait;		/* image prefetch --wait */
};

/* Print a usage error (printf-style) and return CTL_EUSAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * One request (body: JSON text or NULL).  0 with *out (owned) on a 2xx
 * JSON answer; otherwise the reason is printed and the exit code returned;
 * hint is added to a 409 answer.
 */
int ctl_call(const struct ctl *c, const char *method, const char *path, const char *body,
	     const char *hint, json_t **out);
/* The same with a JSON body (reference stolen). */
int ctl_call_json(const struct ctl *c, const char *method, const char *path, json_t *body,
		  const char *hint, json_t **out);
/*
 * Refuse the options a verb does not take: allowed is a string of letters,
 * f --force, n --name, i --image, q --quota, c --client, m --message,
 * F --format, b --block-size, t --target, w --no-wait, P --proxy,
 * D --full, S --server, I --interface, R --range, r --rbd, u --undo, a --all,
 * p --policy, d --disk.  0 or CTL_EUSAGE
 * with the reason printed.
 */
int opts_only(const struct ctl_opts *o, const char *verb, const char *allowed);
/* image VERB ... and job VERB ... (ctl_image.c). */
int do_image(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o);
int do_job(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o);
/* Warm boots (ctl_bootset.c): a version's BOOT SET ("312 MiB"), LEARNED
 * ("14 boots", "from v2") and IN MEMORY ("100%", "prefetching 37%")
 * columns from its JSON ("-" where nothing); and image prefetch NAME
 * [--version N] [--wait] (wait: until the job ends; exit 0 when done). */
void ctl_boot_set_cols(const json_t *ver, char *size, size_t slen, char *learned, size_t llen,
		       char *mem, size_t mlen);
int ctl_image_prefetch(const struct ctl *c, const char *name, const char *version, bool wait);
/* client wake NAME... | --all [--image X], and events (ctl_wake.c);
 * argv is what follows "wake" / "events". */
int ctl_client_wake(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o);
int ctl_events(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o);
/* cluster status | drain GW [--undo] | health (ctl_cluster.c). */
int do_cluster(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o);
/* ctl_console.c: console passwd [--stdin]. */
int do_console(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o);
/*
 * ctl_disk.c: client disk add|remove PC IMAGE and image disk add|remove
 * LAB IMAGE (group: the latter); argv is what follows "disk".
 */
int ctl_disk_verb(const struct ctl *c, bool group, int argc, char **argv,
		  const struct ctl_opts *o);
/* The DISKS table of client show (its "disks", LUN 0 first); nothing
 * when the daemon sent none. */
void ctl_print_client_disks(const json_t *cl);
/* image show: its group's extra disks ("disks") and, for an image given
 * as an extra disk, how many PCs have it ("disk_of"). */
void ctl_print_image_disks(const json_t *img);
/* pxe VERB ... (ctl_pxe.c): pxe dnsmasq prints a dnsmasq configuration. */
int do_pxe(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o);

#endif
