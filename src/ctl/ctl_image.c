/*
 * ctl_image.c - pristinectl's image and job verbs: add, import,
 * versions, the draft cycle (edit, commit, discard), rollback, flatten,
 * export, and following a background job with a progress bar.
 */
#include "ctl/ctl.h"
#include "util/parse.h"
#include "util/log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JOB_POLL_MS 200

static int image_path(const char *name, const char *suffix, char *buf, size_t len)
{
	char *e;
	int n;

	if (!name[0] || strlen(name) > 63)
		return usage_error("image NAME must be 1 to 63 characters: '%s'", name);
	e = ctl_path_escape(name);
	if (!e) {
		fprintf(stderr, "pristinectl: out of memory\n");
		return CTL_EREMOTE;
	}
	n = snprintf(buf, len, "/v1/images/%s%s", e, suffix);
	free(e);
	return n < 0 || (size_t)n >= len ? usage_error("image name too long") : 0;
}

/* An absolute path for a file named on the command line. */
static int abs_path(const char *in, char *out, size_t len)
{
	char cwd[PATH_MAX];
	int n;

	if (in[0] == '/')
		n = snprintf(out, len, "%s", in);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(out, len, "%s/%s", cwd, in);
	else
		return usage_error("cannot tell the current directory: give an absolute path");
	return n < 0 || (size_t)n >= len ? usage_error("path too long: %s", in) : 0;
}

static int parse_version(const char *s, unsigned *v)
{
	if (s[0] == 'v' || s[0] == 'V')
		s++;
	if (parse_uint(s, 1, 1000000, v, NULL, 0))
		return usage_error("VERSION must be a number like 3 or v3, not '%s'", s);
	return 0;
}

static void draw_bar(const json_t *j, bool tty)
{
	double p = json_real_value(json_object_get(j, "progress"));
	int w = 40, fill = (int)(p * w + 0.5);
	char done[32], total[32];

	if (!tty)
		return;
	ctl_fmt_size((uint64_t)ctl_int(j, "done_bytes"), done, sizeof(done));
	ctl_fmt_size((uint64_t)ctl_int(j, "total_bytes"), total, sizeof(total));
	fprintf(stderr, "\r%-10.10s [", ctl_str(j, "phase", ""));
	for (int i = 0; i < w; i++)
		fputc(i < fill ? '#' : ' ', stderr);
	fprintf(stderr, "] %5.1f%%  %s / %s   ", p * 100.0, done, total);
	fflush(stderr);
}

/*
 * Follow job id until it ends, drawing a progress bar on a terminal.
 * Prints its result (or the job's JSON with --json).  0 when it is done,
 * CTL_EREMOTE when it failed.
 */
static int follow_job(const struct ctl *c, int id)
{
	bool tty = isatty(2) && !c->json;
	char path[64], buf[600];
	json_t *j = NULL;
	int rc;

	snprintf(path, sizeof(path), "/v1/jobs/%d", id);
	for (;;) {
		struct timespec ts = { 0, JOB_POLL_MS * 1000000L };
		rc = ctl_call(c, "GET", path, NULL, NULL, &j);
		if (rc)
			return rc;
		if (strcmp(ctl_str(j, "state", ""), "running") != 0)
			break;
		draw_bar(j, tty);
		json_decref(j);
		nanosleep(&ts, NULL);
	}
	if (tty) {
		draw_bar(j, tty);
		fputc('\n', stderr);
	}
	if (c->json)
		ctl_print_json(j, stdout);
	rc = strcmp(ctl_str(j, "state", ""), "done") == 0 ? CTL_OK : CTL_EREMOTE;
	if (rc)
		fprintf(stderr, "pristinectl: job %d failed: %s\n", id,
			log_safe(ctl_str(j, "error", "?"), buf, sizeof(buf)));
	else if (!c->json)
		printf("%s\n", log_safe(ctl_str(j, "result", "done"), buf, sizeof(buf)));
	json_decref(j);
	return rc;
}

/* After an action that started a job: follow it, or print its id. */
static int job_started(const struct ctl *c, json_t *res, bool no_wait)
{
	int id = (int)ctl_int(res, "job");

	if (no_wait) {
		if (c->json)
			ctl_print_json(res, stdout);
		else
			printf("job %d started (pristinectl job show %d)\n", id, id);
		json_decref(res);
		return CTL_OK;
	}
	json_decref(res);
	return follow_job(c, id);
}

static int verb_image_list(const struct ctl *c)
{
	const char *hdr[] = { "NAME", "SIZE", "CURRENT", "VERSIONS", "CLIENTS", "DRAFT", "TARGET" };
	struct ctl_table t;
	json_t *res, *e;
	size_t i;
	int rc = ctl_call(c, "GET", "/v1/images", NULL, NULL, &res);

	if (rc)
		return rc;
	if (c->json) {
		ctl_print_json(res, stdout);
		json_decref(res);
		return CTL_OK;
	}
	ctl_table_init(&t, 7);
	ctl_table_add(&t, hdr);
	json_array_foreach(json_object_get(res, "images"), i, e) {
		char name[128], size[32], cur[16], nv[16], ncl[16], draft[300], tgt[300];
		const json_t *d = json_object_get(e, "draft");
		ctl_fmt_size((uint64_t)ctl_int(e, "size_bytes"), size, sizeof(size));
		snprintf(cur, sizeof(cur), "v%lld", (long long)ctl_int(e, "current"));
		snprintf(nv, sizeof(nv), "%lld", (long long)ctl_int(e, "versions"));
		snprintf(ncl, sizeof(ncl), "%lld", (long long)ctl_int(e, "clients"));
		if (json_is_object(d)) {
			char who[256];
			log_safe(ctl_str(d, "client", "?"), who, sizeof(who));
			snprintf(draft, sizeof(draft), "on v%lld for %s%s", (long long)ctl_int(d, "base"), who,
				 json_is_true(json_object_get(d, "online")) ? " (online)" : "");
		} else {
			snprintf(draft, sizeof(draft), "-");
		}
		const char *row[] = { log_safe(ctl_str(e, "name", "?"), name, sizeof(name)), size, cur, nv,
				      ncl, draft, log_safe(ctl_str(e, "target", "?"), tgt, sizeof(tgt)) };
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	json_decref(res);
	return CTL_OK;
}

/* Comma-separated dependents of one version, or "-". */
static void fmt_dependents(const json_t *v, char *buf, size_t len)
{
	const json_t *dep = json_object_get(v, "dependents"), *e;
	size_t i, n = 0;
	char tmp[256];

	buf[0] = '\0';
	if (json_is_true(json_object_get(v, "current")))
		n += (size_t)snprintf(buf + n, len - n, "current");
	if (json_is_true(json_object_get(dep, "draft")) && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%sdraft", n ? ", " : "");
	json_array_foreach(json_object_get(dep, "versions"), i, e)
		if (n < len)
			n += (size_t)snprintf(buf + n, len - n, "%sv%lld", n ? ", " : "",
					      (long long)json_integer_value(e));
	json_array_foreach(json_object_get(dep, "clients"), i, e)
		if (n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
					      log_safe(json_string_value(e), tmp, sizeof(tmp)));
	if (!buf[0])
		snprintf(buf, len, "-");
}

static int verb_image_versions(const struct ctl *c, const char *name)
{
	const char *hdr[] = { "VERSION", "PARENT", "MADE", "SIZE", "MESSAGE", "DEPENDED ON BY",
			      "BOOT SET", "LEARNED", "IN MEMORY" };
	char path[256];
	struct ctl_table t;
	json_t *res, *v;
	size_t i;
	int rc = image_path(name, "", path, sizeof(path));

	if (rc || (rc = ctl_call(c, "GET", path, NULL, NULL, &res)))
		return rc;
	if (c->json) {
		ctl_print_json(res, stdout);
		json_decref(res);
		return CTL_OK;
	}
	ctl_table_init(&t, 9);
	ctl_table_add(&t, hdr);
	json_array_foreach(json_object_get(res, "version_list"), i, v) {
		char ver[24], par[16], made[64], size[32], msg[300], deps[1024];
		char bss[32], learned[32], mem[32];
		snprintf(ver, sizeof(ver), "v%lld%s", (long long)ctl_int(v, "version"),
			 json_is_true(json_object_get(v, "current")) ? " *" :
			 json_is_true(json_object_get(v, "deleted")) ? " (deleted)" : "");
		if (ctl_int(v, "parent"))
			snprintf(par, sizeof(par), "v%lld", (long long)ctl_int(v, "parent"));
		else
			snprintf(par, sizeof(par), "-");
		ctl_fmt_time(ctl_int(v, "time"), made, sizeof(made));
		if (ctl_int(v, "parent"))
			ctl_fmt_size((uint64_t)ctl_int(v, "layer_bytes"), size, sizeof(size));
		else
			snprintf(size, sizeof(size), "source");
		log_safe(ctl_str(v, "message", ""), msg, sizeof(msg));
		fmt_dependents(v, deps, sizeof(deps));
		ctl_boot_set_cols(v, bss, sizeof(bss), learned, sizeof(learned), mem, sizeof(mem));
		const char *row[] = { ver, par, made, size, msg, deps, bss, learned, mem };
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	{
		const json_t *d = json_object_get(res, "draft");
		char who[256], used[32];
		if (json_is_object(d)) {
			ctl_fmt_size((uint64_t)ctl_int(d, "used_bytes"), used, sizeof(used));
			printf("draft: on v%lld, maintenance client %s%s, %s written\n",
			       (long long)ctl_int(d, "base"), log_safe(ctl_str(d, "client", "?"), who, sizeof(who)),
			       json_is_true(json_object_get(d, "online")) ? " (online)" : "", used);
		}
		if (json_is_string(json_object_get(res, "wake_at")))
			printf("daily wake (Wake-on-LAN): %s\n",
			       log_safe(ctl_str(res, "wake_at", "?"), who, sizeof(who)));
	}
	ctl_print_image_disks(res);
	json_decref(res);
	return CTL_OK;
}

/* POST an image action; prints a one-line report (and the daemon's note,
 * if any).  body stolen.  No 409 hint: the daemon's refusal says what
 * lifts it. */
static int image_action(const struct ctl *c, const char *name, const char *action, json_t *body,
			const char *done_fmt, json_t **res_out)
{
	char path[256], suffix[32], buf[256];
	json_t *res;
	int rc;

	snprintf(suffix, sizeof(suffix), "/%s", action);
	rc = image_path(name, suffix, path, sizeof(path));
	if (rc) {
		json_decref(body);
		return rc;
	}
	rc = ctl_call_json(c, "POST", path, body, NULL, &res);
	if (rc)
		return rc;
	if (res_out) {
		*res_out = res;
		return CTL_OK;
	}
	if (c->json)
		ctl_print_json(res, stdout);
	else if (done_fmt) {
		char note[1024];
		printf(done_fmt, log_safe(name, buf, sizeof(buf)), (long long)ctl_int(res, "current"));
		/* edit/commit/discard: what became of the maintenance client's own disk */
		if (json_string_value(json_object_get(res, "note")))
			printf("%s\n", log_safe(json_string_value(json_object_get(res, "note")), note,
						sizeof(note)));
	}
	json_decref(res);
	return CTL_OK;
}

static int block_size_opt(const struct ctl_opts *o, json_t *body)
{
	uint32_t bs;
	char why[128];

	if (!o->block_size)
		return 0;
	if (parse_block_size(o->block_size, &bs, why, sizeof(why))) {
		json_decref(body);
		return usage_error("--block-size: %s", why);
	}
	json_object_set_new(body, "block_size", json_integer((json_int_t)bs));
	return 0;
}

static int verb_image_add(const struct ctl *c, const char *name, const char *file,
			  const struct ctl_opts *o, bool import)
{
	char path[PATH_MAX], buf[256];
	json_t *body, *res;
	int rc = file ? abs_path(file, path, sizeof(path)) : 0;

	if (rc)
		return rc;
	/* add --rbd names a snapshot in Ceph instead of a file */
	if (file)
		body = json_pack("{s:s, s:s, s:b}", "name", name, "path", path, "import", import);
	else
		body = json_pack("{s:s, s:s}", "name", name, "rbd", o->rbd);
	if (body && file && o->rbd)
		json_object_set_new(body, "rbd_pool", json_string(o->rbd));
	if (!body) {
		fprintf(stderr, "pristinectl: name and path must be UTF-8\n");
		return CTL_EUSAGE;
	}
	if ((rc = block_size_opt(o, body)))
		return rc;
	if (o->format)
		json_object_set_new(body, "format", json_string(o->format));
	if (o->target)
		json_object_set_new(body, "target", json_string(o->target));
	rc = ctl_call_json(c, "POST", "/v1/images", body, NULL, &res);
	if (rc)
		return rc;
	if (import)
		return job_started(c, res, o->no_wait);
	if (c->json)
		ctl_print_json(res, stdout);
	else
		printf("image %s added: target %s\n", log_safe(name, buf, sizeof(buf)),
		       ctl_str(res, "target", "?"));
	json_decref(res);
	return CTL_OK;
}

int do_image(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o)
{
	const char *v = argc ? argv[0] : "";
	char what[40];
	unsigned ver;
	json_t *res;
	int rc;

	if (!argc)
		return usage_error("image needs a verb: list, add, import, versions, show, edit, commit, "
				   "discard, rollback, delete, flatten, export, prefetch, disk add|remove");
	snprintf(what, sizeof(what), "image %s", v);
	if (!strcmp(v, "list") && argc == 1)
		return (rc = opts_only(o, what, "")) ? rc : verb_image_list(c);
	if (!strcmp(v, "add") && argc == 3 && o->rbd)
		return usage_error("image add serves a FILE or --rbd POOL/IMAGE@SNAP, not both");
	if (!strcmp(v, "add") && argc == 3)
		return (rc = opts_only(o, what, "bt")) ? rc : verb_image_add(c, argv[1], argv[2], o, false);
	if (!strcmp(v, "add") && argc == 2 && o->rbd)
		return (rc = opts_only(o, what, "btr")) ? rc : verb_image_add(c, argv[1], NULL, o, false);
	if (!strcmp(v, "import") && argc == 3)
		return (rc = opts_only(o, what, "bFwr")) ? rc : verb_image_add(c, argv[1], argv[2], o, true);
	if ((!strcmp(v, "versions") || !strcmp(v, "show")) && argc == 2)
		return (rc = opts_only(o, what, "")) ? rc : verb_image_versions(c, argv[1]);
	if (!strcmp(v, "disk"))
		return ctl_disk_verb(c, true, argc - 1, argv + 1, o);
	if (!strcmp(v, "edit") && argc == 2) {
		if ((rc = opts_only(o, what, "cf")))
			return rc;
		if (!o->client)
			return usage_error("image edit needs --client C: the maintenance client");
		return image_action(c, argv[1], "edit",
				    json_pack("{s:s, s:b}", "client", o->client, "force", o->force),
				    "image %s: draft opened on v%lld\n", NULL);
	}
	if (!strcmp(v, "commit") && argc == 2) {
		if ((rc = opts_only(o, what, "mf")))
			return rc;
		if (!o->message || !o->message[0])
			return usage_error("image commit needs -m MESSAGE");
		return image_action(c, argv[1], "commit",
				    json_pack("{s:s, s:b}", "message", o->message, "force", o->force),
				    "image %s: committed, v%lld is current\n", NULL);
	}
	if (!strcmp(v, "discard") && argc == 2)
		return (rc = opts_only(o, what, "f")) ? rc :
			image_action(c, argv[1], "discard", json_pack("{s:b}", "force", o->force),
				     "image %s: draft discarded (current v%lld)\n", NULL);
	if (!strcmp(v, "rollback") && argc == 3) {
		if ((rc = opts_only(o, what, "")) || (rc = parse_version(argv[2], &ver)))
			return rc;
		return image_action(c, argv[1], "rollback", json_pack("{s:i}", "version", (int)ver),
				    "image %s: v%lld is current\n", NULL);
	}
	if (!strcmp(v, "delete") && argc == 3) {
		if ((rc = opts_only(o, what, "")) || (rc = parse_version(argv[2], &ver)))
			return rc;
		return image_action(c, argv[1], "delete", json_pack("{s:i}", "version", (int)ver),
				    "image %s: version deleted (current v%lld)\n", NULL);
	}
	if (!strcmp(v, "flatten") && argc == 2) {
		if ((rc = opts_only(o, what, "w")) ||
		    (rc = image_action(c, argv[1], "flatten", json_object(), NULL, &res)))
			return rc;
		return job_started(c, res, o->no_wait);
	}
	if (!strcmp(v, "export") && argc == 4) {
		char path[PATH_MAX];
		json_t *body;
		if ((rc = opts_only(o, what, "Ffw")) || (rc = parse_version(argv[2], &ver)) ||
		    (rc = abs_path(argv[3], path, sizeof(path))))
			return rc;
		body = json_pack("{s:i, s:s, s:b}", "version", (int)ver, "file", path, "force", o->force);
		if (o->format)
			json_object_set_new(body, "format", json_string(o->format));
		if ((rc = image_action(c, argv[1], "export", body, NULL, &res)))
			return rc;
		return job_started(c, res, o->no_wait);
	}
	if (!strcmp(v, "prefetch") && argc == 2)
		return (rc = opts_only(o, what, "VW")) ? rc :
			ctl_image_prefetch(c, argv[1], o->version, o->wait);
	if (!strcmp(v, "list") || !strcmp(v, "add") || !strcmp(v, "import") || !strcmp(v, "versions") ||
	    !strcmp(v, "show") || !strcmp(v, "edit") || !strcmp(v, "commit") || !strcmp(v, "discard") ||
	    !strcmp(v, "rollback") || !strcmp(v, "flatten") || !strcmp(v, "export") ||
	    !strcmp(v, "delete") || !strcmp(v, "prefetch"))
		return usage_error("wrong arguments for image %s", v);
	return usage_error("unknown image verb '%s'", v);
}

int do_job(const struct ctl *c, int argc, char **argv, const struct ctl_opts *o)
{
	const char *v = argc ? argv[0] : "";
	int rc = opts_only(o, "job verbs", "");
	json_t *res, *e;
	size_t i;

	if (rc)
		return rc;
	if (!strcmp(v, "show") && argc == 2) {
		unsigned id;
		if (parse_uint(argv[1], 1, 999999999, &id, NULL, 0))
			return usage_error("job id must be a number, not '%s'", argv[1]);
		return follow_job(c, (int)id);
	}
	if (!strcmp(v, "list") && argc == 1) {
		const char *hdr[] = { "JOB", "KIND", "IMAGE", "STATE", "PROGRESS", "RESULT" };
		struct ctl_table t;
		if ((rc = ctl_call(c, "GET", "/v1/jobs", NULL, NULL, &res)))
			return rc;
		if (c->json) {
			ctl_print_json(res, stdout);
			json_decref(res);
			return CTL_OK;
		}
		ctl_table_init(&t, 6);
		ctl_table_add(&t, hdr);
		json_array_foreach(json_object_get(res, "jobs"), i, e) {
			char id[16], img[128], prog[16], result[300];
			snprintf(id, sizeof(id), "%lld", (long long)ctl_int(e, "id"));
			snprintf(prog, sizeof(prog), "%.0f%%",
				 json_real_value(json_object_get(e, "progress")) * 100.0);
			log_safe(ctl_str(e, "error", ctl_str(e, "result", "")), result, sizeof(result));
			const char *row[] = { id, ctl_str(e, "kind", "?"),
					      log_safe(ctl_str(e, "image", "?"), img, sizeof(img)),
					      ctl_str(e, "state", "?"), prog, result };
			ctl_table_add(&t, row);
		}
		ctl_table_print(&t, stdout);
		ctl_table_free(&t);
		json_decref(res);
		return CTL_OK;
	}
	return usage_error("job needs a verb: list, show N");
}
