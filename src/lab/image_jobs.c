/*
 * image_jobs.c - the long image operations, run as background jobs
 * (jobs.h): flatten a version into a new root file while clients read
 * it, export a version to a file (raw, or any qemu-img format), import a
 * disk file of any qemu-img format as a new image.
 */
#include "lab/clients.h"
#include "lab/bootsets.h"
#include "lab/images.h"
#include "lab/jobs.h"
#include "lab/records.h"
#include "lab/statedir.h"
#include "storage/rbd.h"
#include "util/fullio.h"
#include "util/atomicfile.h"
#include "util/bytes.h"
#include "util/log.h"
#include "util/parse.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define COPY_CHUNK (1u << 20)

extern char **environ;

/* Formats qemu-img reads and writes that we offer. */
static bool format_valid(const char *f)
{
	static const char *const ok[] = { "raw", "qcow2", "vmdk", "vhdx", "vdi", "vpc", "qed" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(f, ok[i]) == 0)
			return true;
	return false;
}

/*
 * Copy be (size bytes) into a new sparse file at path (created 0600,
 * replacing one there), fsynced.  Progress from `base` to base+size of
 * `total`.  0 or -errno with msg.
 */
static int copy_to_file(struct job *j, struct backend *be, const char *path, uint64_t base,
			uint64_t total, char *msg, size_t msglen)
{
	uint8_t *buf = malloc(COPY_CHUNK);
	int fd, rc = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)be->size)) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		goto out;
	}
	for (uint64_t off = 0; off < be->size; off += COPY_CHUNK) {
		size_t n = be->size - off < COPY_CHUNK ? (size_t)(be->size - off) : COPY_CHUNK;
		if (job_cancelled(j)) {
			rc = -ECANCELED;
			snprintf(msg, msglen, "cancelled: the daemon is stopping");
			goto out;
		}
		rc = be->ops->read(be, buf, off, n);
		if (rc) {
			snprintf(msg, msglen, "read error at byte %llu: %s", (unsigned long long)off,
				 strerror(-rc));
			goto out;
		}
		if (!bytes_all_zero(buf, n) && (rc = pwrite_full(fd, buf, n, off))) {
			snprintf(msg, msglen, "%s: %s", path, strerror(-rc));
			goto out;
		}
		job_progress(j, base + off + n, total);
	}
	if (fsync(fd)) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(path);
	free(buf);
	return rc;
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		return 0;
	*(slash == dir ? slash + 1 : slash) = '\0';
	return atomicfile_sync_dir(dir);
}

/*
 * Run qemu-img with argv (argv[0] = "qemu-img"; "-p" given), turning its
 * "(NN.NN/100%)" progress into job progress from base to base+span of
 * total.  0 or -EIO with its last error line in msg.
 */
static int run_qemu_img(struct job *j, char *const argv[], uint64_t base, uint64_t span,
			uint64_t total, char *msg, size_t msglen)
{
	int out[2], err[2], status;
	posix_spawn_file_actions_t fa;
	char line[512], errbuf[1024];
	size_t ln = 0, en = 0;
	pid_t pid;
	FILE *ef;

	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	if (posix_spawnp(&pid, "qemu-img", &fa, NULL, argv, environ)) {
		posix_spawn_file_actions_destroy(&fa);
		close(out[0]); close(out[1]); close(err[0]); close(err[1]);
		snprintf(msg, msglen, "cannot run qemu-img (package qemu-utils): %s", strerror(errno));
		return -ENOENT;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);
	/* Progress on stdout, one "(x/100%)" per \r. */
	for (;;) {
		char ch;
		ssize_t r = read(out[0], &ch, 1);
		if (r <= 0)
			break;
		if (ch == '\r' || ch == '\n') {
			double pct;
			line[ln] = '\0';
			const char *p = strchr(line, '(');
			if (p && sscanf(p, "(%lf/100%%)", &pct) == 1 && pct >= 0 && pct <= 100)
				job_progress(j, base + (uint64_t)((double)span * pct / 100.0), total);
			ln = 0;
		} else if (ln + 1 < sizeof(line)) {
			line[ln++] = ch;
		}
		if (job_cancelled(j))
			kill(pid, SIGTERM);
	}
	close(out[0]);
	ef = fdopen(err[0], "r");
	errbuf[0] = '\0';
	while (ef && fgets(line, sizeof(line), ef)) {
		en = strlen(line);
		if (en > 1) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(errbuf, sizeof(errbuf), "%s", line);
		}
	}
	if (ef)
		fclose(ef);
	else
		close(err[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(msg, msglen, "qemu-img failed: %s", errbuf[0] ? errbuf : "no message");
		return -EIO;
	}
	return 0;
}

/*
 * What qemu-img makes of file (format forced when given): its format into
 * fmt and its virtual size.  0, or -EIO/-EBADMSG with msg.
 */
static int probe_image(const char *file, const char *format, char *fmt, size_t fmtlen,
		       uint64_t *vsize, char *msg, size_t msglen)
{
	char *argv[] = { "qemu-img", "info", "--output=json", "-f", (char *)format, (char *)file, NULL };
	posix_spawn_file_actions_t fa;
	char out[65536];
	size_t n = 0;
	int pipefd[2], status;
	json_t *root;
	pid_t pid;

	if (!format || !format[0]) {
		argv[3] = (char *)file;   /* no -f: let qemu-img probe */
		argv[4] = NULL;
	}
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	if (posix_spawnp(&pid, "qemu-img", &fa, NULL, argv, environ)) {
		posix_spawn_file_actions_destroy(&fa);
		close(pipefd[0]);
		close(pipefd[1]);
		snprintf(msg, msglen, "cannot run qemu-img (package qemu-utils): %s", strerror(errno));
		return -ENOENT;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	for (;;) {
		ssize_t r = read(pipefd[0], out + n, sizeof(out) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof(out) - 1) {
			char sink[4096];   /* drain, so that qemu-img can exit */
			while (read(pipefd[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	out[n] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		out[strcspn(out, "\n")] = '\0';
		snprintf(msg, msglen, "%s is not a disk image qemu-img can read: %s", file,
			 out[0] ? out : "no message");
		return -EIO;
	}
	root = json_loads(out, 0, NULL);
	if (!json_is_string(json_object_get(root, "format")) ||
	    !json_is_integer(json_object_get(root, "virtual-size")) ||
	    json_integer_value(json_object_get(root, "virtual-size")) <= 0) {
		json_decref(root);
		snprintf(msg, msglen, "qemu-img info %s: unexpected answer", file);
		return -EBADMSG;
	}
	snprintf(fmt, fmtlen, "%s", json_string_value(json_object_get(root, "format")));
	*vsize = (uint64_t)json_integer_value(json_object_get(root, "virtual-size"));
	json_decref(root);
	return 0;
}

/*
 * Start a job over version v of img (the caller took a use of it, which
 * the job releases; on failure it is released here).  Lock held.
 */
static int start_version_job(struct image *img, unsigned v, const char *kind, job_fn fn, void *arg,
			     unsigned *job_id, char *msg, size_t msglen)
{
	int rc = job_start(kind, img->name, fn, arg, free, job_id);

	if (rc) {
		image_version_put(img, v);
		snprintf(msg, msglen, "cannot start the job: %s", strerror(-rc));
	}
	return rc;
}

/* ---------------------------------------------------------------- flatten */

struct flat_arg {
	struct registry *reg;
	struct image *img;
	unsigned v;
	struct backend *be;
	char tmp[PATH_MAX], final[PATH_MAX];
	char src_root[PATH_MAX];      /* the version's root before ("" if none) */
};

static int flatten_fn(struct job *j, void *p, char *msg, size_t msglen)
{
	struct flat_arg *a = p;
	struct image *img = a->img;
	struct lab_store *st = img->store;
	struct backend *root = NULL, *old_root = NULL;
	bool changing = false;
	char why[200];
	int rc;

	job_phase(j, "copying");
	if (st->ops->flatten) {
		/* The store copies inside itself (RBD: a new flat image). */
		rc = st->ops->flatten(st, img->name, a->v, a->src_root, a->final, sizeof(a->final), msg,
				      msglen);
	} else {
		rc = copy_to_file(j, a->be, a->tmp, 0, a->be->size, msg, msglen);
		if (rc == 0 && (rename(a->tmp, a->final) || fsync_dir_of(a->final))) {
			rc = -errno;
			snprintf(msg, msglen, "%s: %s", a->final, strerror(errno));
			unlink(a->tmp);
		}
	}
	if (rc == 0 && (rc = image_root_open(img, a->final, &root, why, sizeof(why))))
		snprintf(msg, msglen, "%s cannot be opened: %s", a->final, why);
	/* a gateway of a cluster records it as one cluster change */
	if (rc == 0) {
		changing = registry_change_begin(a->reg, msg, msglen) == 0;
		if (!changing) {
			rc = -EAGAIN;
			backend_close(root);
			root = NULL;
		}
	}
	pthread_mutex_lock(&a->reg->lock);
	if (rc == 0) {
		struct version *v = &img->versions[a->v - 1];
		snprintf(v->root, sizeof(v->root), "%s", a->final);
		rc = image_save(a->reg, img);
		if (rc) {
			snprintf(v->root, sizeof(v->root), "%s", a->src_root);
			snprintf(msg, msglen, "cannot record the flattened v%u: %s", a->v, strerror(-rc));
			backend_close(root);
			if (!st->ops->flatten)
				unlink(a->final);   /* (a flat RBD image left is replaced next time) */
		} else {
			/* From now on reads of v (and of the versions on it) come
			 * from the new file, content unchanged; the old root (a
			 * clone's snapshot) once nothing reads it. */
			old_root = v->root_be;
			v->root_be = root;
			image_reresolve(img, a->v);
			/* its new root file is cold */
			bootsets_prefetch(a->reg, img, a->v, "flattened");
			if (old_root)   /* a chain that could not switch may still read it */
				v->old_root_be = old_root;
			job_result(j, "v%u of %s flattened into %s", a->v, img->name, a->final);
		}
	}
	img->busy = false;
	image_version_put(img, a->v);
	pthread_mutex_unlock(&a->reg->lock);
	return changing ? registry_change_end(a->reg, rc, msg, msglen) : rc;
}

int image_flatten_start(struct registry *reg, const char *name, unsigned *job_id,
			char *msg, size_t msglen)
{
	struct flat_arg *a = calloc(1, sizeof(*a));
	struct image *img;
	int rc;

	if (!a)
		return -ENOMEM;
	pthread_mutex_lock(&reg->lock);
	img = registry_image(reg, name);
	if (!img) {
		snprintf(msg, msglen, "no image %s", name);
		rc = -ENOENT;
		goto fail;
	}
	if (img->busy) {
		snprintf(msg, msglen, "image %s is already being flattened", name);
		rc = -EBUSY;
		goto fail;
	}
	a->reg = reg;
	a->img = img;
	a->v = img->current;
	snprintf(a->src_root, sizeof(a->src_root), "%s", img->versions[a->v - 1].root);
	if (image_version_flat(img, &img->versions[a->v - 1])) {
		snprintf(msg, msglen, "v%u of %s is already one flat file (%s): nothing to flatten", a->v,
			 name, img->versions[a->v - 1].root);
		rc = -EINVAL;
		goto fail;
	}
	rc = image_version_get(img, a->v, &a->be, msg, msglen);
	if (rc)
		goto fail;
	if (statedir_flat(a->tmp, sizeof(a->tmp), img->dir, a->v, 1) ||
	    statedir_flat(a->final, sizeof(a->final), img->dir, a->v, 0)) {
		image_version_put(img, a->v);
		snprintf(msg, msglen, "state directory path too long");
		rc = -ENAMETOOLONG;
		goto fail;
	}
	img->busy = true;
	rc = start_version_job(img, a->v, "flatten", flatten_fn, a, job_id, msg, msglen);
	if (rc) {
		img->busy = false;
		goto fail;
	}
	pthread_mutex_unlock(&reg->lock);
	return 0;
fail:
	pthread_mutex_unlock(&reg->lock);
	free(a);
	return rc;
}

/* ----------------------------------------------------------------- export */

struct export_arg {
	struct registry *reg;
	struct image *img;
	unsigned v;
	struct backend *be;
	char file[PATH_MAX];
	char format[16];
};

static int export_fn(struct job *j, void *p, char *msg, size_t msglen)
{
	struct export_arg *a = p;
	char part[PATH_MAX + 16], raw[PATH_MAX + 16];
	uint64_t size = a->be->size;
	bool conv = strcmp(a->format, "raw") != 0;
	uint64_t total = conv ? 2 * size : size;
	int rc;

	snprintf(part, sizeof(part), "%s.part", a->file);
	snprintf(raw, sizeof(raw), "%s.part.raw", a->file);
	job_phase(j, "copying");
	rc = copy_to_file(j, a->be, conv ? raw : part, 0, total, msg, msglen);
	if (rc == 0 && conv) {
		char *argv[] = { "qemu-img", "convert", "-p", "-f", "raw", "-O", a->format, raw, part, NULL };
		job_phase(j, "converting");
		rc = run_qemu_img(j, argv, size, size, total, msg, msglen);
		unlink(raw);
		if (rc)
			unlink(part);
	}
	if (rc == 0 && (rename(part, a->file) || fsync_dir_of(a->file))) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", a->file, strerror(errno));
		unlink(part);
	}
	if (rc == 0)
		job_result(j, "v%u of %s exported to %s (%s)", a->v, a->img->name, a->file, a->format);
	pthread_mutex_lock(&a->reg->lock);
	image_version_put(a->img, a->v);
	pthread_mutex_unlock(&a->reg->lock);
	return rc;
}

int image_export_start(struct registry *reg, const char *name, unsigned v, const char *file,
		       const char *format, bool overwrite, unsigned *job_id, char *msg, size_t msglen)
{
	struct export_arg *a;
	struct image *img;
	struct stat st;
	int rc;

	if (!file || file[0] != '/') {
		snprintf(msg, msglen, "the export file must be an absolute path");
		return -EINVAL;
	}
	if (!format)
		format = "raw";
	if (!format_valid(format)) {
		snprintf(msg, msglen, "format %.20s: use raw, qcow2, vmdk, vhdx, vdi, vpc or qed", format);
		return -EINVAL;
	}
	if (stat(file, &st) == 0 && (!overwrite || !S_ISREG(st.st_mode))) {
		snprintf(msg, msglen, "%s exists%s", file, S_ISREG(st.st_mode) ? " (--force replaces it)" :
			 " and is not a regular file");
		return -EEXIST;
	}
	{
		/* Refused now rather than by a failed job: the directory must exist. */
		char dir[PATH_MAX];
		char *slash;
		snprintf(dir, sizeof(dir), "%s", file);
		slash = strrchr(dir, '/');
		*(slash == dir ? slash + 1 : slash) = '\0';
		if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
			snprintf(msg, msglen, "%s is not a directory: cannot export into it", dir);
			return -ENOENT;
		}
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	snprintf(a->file, sizeof(a->file), "%s", file);
	snprintf(a->format, sizeof(a->format), "%s", format);
	a->reg = reg;
	pthread_mutex_lock(&reg->lock);
	img = registry_image(reg, name);
	if (!img) {
		snprintf(msg, msglen, "no image %s", name);
		rc = -ENOENT;
		goto fail;
	}
	a->img = img;
	a->v = v ? v : img->current;
	rc = image_version_get(img, a->v, &a->be, msg, msglen);
	if (rc)
		goto fail;
	rc = start_version_job(img, a->v, "export", export_fn, a, job_id, msg, msglen);
	if (rc)
		goto fail;
	pthread_mutex_unlock(&reg->lock);
	return 0;
fail:
	pthread_mutex_unlock(&reg->lock);
	free(a);
	return rc;
}

/* ----------------------------------------------------------------- import */

struct import_arg {
	struct registry *reg;
	char name[IMAGE_NAME_MAX];
	char file[PATH_MAX];
	char format[16];
	uint32_t block_size;
	char pool[RBD_POOL_MAX];      /* "" = a local file; else into this RBD pool */
	char tmp[PATH_MAX], final[PATH_MAX];
};

static int import_fn(struct job *j, void *p, char *msg, size_t msglen)
{
	struct import_arg *a = p;
	struct stat st;
	bool regular = stat(a->file, &st) == 0 && S_ISREG(st.st_mode);
	uint64_t total = regular ? (uint64_t)st.st_size : 0;
	char *argv[12], fmt[32];
	uint64_t vsize;
	unsigned n = 0;
	int rc;

	/*
	 * qemu-img takes any file it does not recognise for raw data and
	 * rounds its size up to 512 bytes: a text file would become a disk.
	 * Raw data is only a disk if it holds whole blocks.
	 */
	job_phase(j, "checking");
	rc = probe_image(a->file, a->format, fmt, sizeof(fmt), &vsize, msg, msglen);
	if (rc == 0 && strcmp(fmt, "raw") == 0 && regular &&
	    (total == 0 || total % a->block_size)) {
		snprintf(msg, msglen, "%s is not a disk image: qemu-img sees raw data of %llu bytes, not a "
			 "whole number of %u-byte blocks", a->file, (unsigned long long)total,
			 a->block_size);
		rc = -EINVAL;
	} else if (rc == 0 && vsize % a->block_size) {
		snprintf(msg, msglen, "%s: its disk size %llu is not a whole number of %u-byte blocks",
			 a->file, (unsigned long long)vsize, a->block_size);
		rc = -EINVAL;
	}
	if (rc) {
		unlink(a->tmp);
		return rc;
	}
	argv[n++] = "qemu-img";
	argv[n++] = "convert";
	argv[n++] = "-p";
	if (a->format[0]) {
		argv[n++] = "-f";
		argv[n++] = a->format;
	}
	argv[n++] = "-O";
	argv[n++] = "raw";
	argv[n++] = a->file;
	argv[n++] = a->tmp;
	argv[n] = NULL;
	job_phase(j, "converting");
	if (a->pool[0]) {
		/* converted here, then written into Ceph: half the bar each */
		uint64_t whole = total ? 2 * total : 2 * vsize;
		rc = run_qemu_img(j, argv, 0, whole / 2, whole, msg, msglen);
		if (rc == 0)
			rc = image_rbd_import(a->reg, j, a->name, a->pool, a->tmp, a->block_size,
					      whole / 2, whole, msg, msglen);
		if (rc) {
			unlink(a->tmp);
			return rc;
		}
		job_result(j, "image %s imported from %s into Ceph pool %s", a->name, a->file, a->pool);
		return 0;
	}
	rc = run_qemu_img(j, argv, 0, total, total, msg, msglen);
	if (rc == 0 && (rename(a->tmp, a->final) || fsync_dir_of(a->final))) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", a->final, strerror(errno));
	}
	if (rc) {
		unlink(a->tmp);
		return rc;
	}
	job_phase(j, "adding");
	rc = CLUSTER_CHANGE(a->reg, image_add(a->reg, a->name, a->final, NULL, a->block_size, msg,
						msglen), msg, msglen);
	if (rc) {
		unlink(a->final);
		return rc;
	}
	job_result(j, "image %s imported from %s", a->name, a->file);
	return 0;
}

int image_import_start(struct registry *reg, const char *name, const char *file,
		       const char *format, uint32_t block_size, const char *pool, unsigned *job_id,
		       char *msg, size_t msglen)
{
	struct import_arg *a;
	char dir[PATH_MAX + 80];
	int fd, rc;

	if (parse_name(name, "image", msg, msglen))
		return -EINVAL;
	if (!file || file[0] != '/') {
		snprintf(msg, msglen, "the file to import must be an absolute path");
		return -EINVAL;
	}
	if (access(file, R_OK)) {
		snprintf(msg, msglen, "%s: %s", file, strerror(errno));
		return -ENOENT;
	}
	if (format && format[0] && !format_valid(format)) {
		snprintf(msg, msglen, "format %.20s: use raw, qcow2, vmdk, vhdx, vdi, vpc or qed", format);
		return -EINVAL;
	}
	if (block_size != 512 && block_size != 4096) {
		snprintf(msg, msglen, "block size must be 512 or 4096");
		return -EINVAL;
	}
	if (registry_clustered(reg) && (!pool || !pool[0])) {
		snprintf(msg, msglen, "%s", RECORDS_LOCAL_REFUSED);
		return -EINVAL;
	}
	if (pool && pool[0] && (rc = image_rbd_import_check(reg, pool, msg, msglen)))
		return rc;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->reg = reg;
	a->block_size = block_size;
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->file, sizeof(a->file), "%s", file);
	snprintf(a->format, sizeof(a->format), "%s", format ? format : "");
	snprintf(a->pool, sizeof(a->pool), "%s", pool ? pool : "");
	pthread_mutex_lock(&reg->lock);
	if (registry_image(reg, name)) {
		snprintf(msg, msglen, "an image is already called %s", name);
		rc = -EEXIST;
		goto fail;
	}
	statedir_sub(dir, sizeof(dir), reg->state, SD_IMPORTED);
	if (mkdir(dir, 0700) && errno != EEXIST) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	if (statedir_imported(a->final, sizeof(a->final), reg->state, name, 0) ||
	    statedir_imported(a->tmp, sizeof(a->tmp), reg->state, name, 1)) {
		snprintf(msg, msglen, "state directory path too long");
		rc = -ENAMETOOLONG;
		goto fail;
	}
	if (access(a->final, F_OK) == 0) {
		snprintf(msg, msglen, "%s exists already (an earlier import?): move it aside", a->final);
		rc = -EEXIST;
		goto fail;
	}
	/* The tmp file reserves the name: a second import of it is refused. */
	fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = errno == EEXIST ? -EEXIST : -errno;
		snprintf(msg, msglen, errno == EEXIST ? "an import of %s is already running" : "%s: cannot create",
			 errno == EEXIST ? name : a->tmp);
		goto fail;
	}
	close(fd);
	rc = job_start("import", name, import_fn, a, free, job_id);
	if (rc) {
		unlink(a->tmp);
		snprintf(msg, msglen, "cannot start the job: %s", strerror(-rc));
		goto fail;
	}
	pthread_mutex_unlock(&reg->lock);
	return 0;
fail:
	pthread_mutex_unlock(&reg->lock);
	free(a);
	return rc;
}
