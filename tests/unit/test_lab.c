/*
 * test_lab.c - unit tests of the lab's domain (src/lab/) with no iSCSI
 * server: a registry over a temporary state directory whose hooks are
 * fakes (they record what the lab asked and end "sessions" by calling
 * registry_detach, as a session thread would).
 *
 * Covered: a client added, written through its disk and read back; a
 * reset that asks the hooks to end its sessions, discards the overlay to
 * the trash and has the purger reclaim it; a restart that finds the same
 * clients in the store; bad CHAP/MAC/UUID refused by the API with the
 * message the configuration file gives; a draft made and discarded; the
 * atomic file write's failure paths; the state directory's names; a
 * counting store that sees every state change the domain makes; the
 * reset-on-boot policy, with the hooks listing and ending sessions.
 * Extra disks (lab/xdisk.h): LUNs in order and stable, added and removed
 * offline and online (the LU in the PC's target at once), refusals, one
 * disk and all disks reset, a restart keeping LUNs, versions and
 * overlays; discard-on-boot and read-only moves at a boot request; the
 * draft of an extra image at its maintenance PC's LUN; a corrupt overlay
 * quarantined at login.  Warm boots (lab/bootsets.h): a login begins a
 * boot, reads through the tap on its LU are recorded, the tick merges
 * them into the version's boot set and saves its file, a restart loads
 * the same set; a commit's new version inherits it; a version's delete
 * removes its file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "boot/boot.h"
#include "boot/boot_resolve.h"
#include "daemon/config.h"
#include "lab/bootsets.h"
#include "lab/clients.h"
#include "lab/images.h"
#include "lab/rules.h"
#include "lab/statedir.h"
#include "lab/store.h"
#include "lab/xdisk.h"
#include "scsi/scsi.h"
#include "storage/bootrec.h"
#include "storage/bootset.h"
#include "util/atomicfile.h"
#include "util/iostats.h"
#include "util/log.h"

#define IMG_SIZE (4u << 20)
#define BS 512
#define PC1 "iqn.2010-04.org.ipxe:pc01"
#define PC2 "iqn.2010-04.org.ipxe:pc02"
#define ADMIN_PC "iqn.2010-04.org.ipxe:admin"

/* What the fake hooks saw. */
struct fake_server {
	struct registry *reg;
	unsigned targets;             /* add_target calls */
	unsigned end_calls;           /* end_sessions calls */
	char ended[ISCSI_NAME_MAX];   /* initiator of the last one */
	void *handles[8];             /* "live sessions": attach handles */
	unsigned nhandles;
	char peer[80];                /* where those sessions come from ("ADDR:PORT") */
	char initiator[ISCSI_NAME_MAX];  /* whose they are */
};

struct lab {
	char root[64];                /* temporary directory */
	char state[128];
	char image[128];
	struct registry reg;
	struct image *img;
	struct fake_server fs;
};

static int fake_add_target(void *ctx, struct iscsi_target *t)
{
	struct fake_server *fs = ctx;

	(void)t;
	fs->targets++;
	return 0;
}

/* A session ends on its own thread: detach takes the registry lock. */
static void fake_end_sessions(void *ctx, const char *initiator)
{
	struct fake_server *fs = ctx;

	fs->end_calls++;
	snprintf(fs->ended, sizeof(fs->ended), "%s", initiator);
	while (fs->nhandles)
		registry_detach(fs->reg, fs->handles[--fs->nhandles]);
}

/* The live sessions, as the server would list them. */
static void fake_foreach_session(void *ctx, void (*fn)(void *arg, const struct iscsi_session_info *si),
				 void *arg)
{
	struct fake_server *fs = ctx;
	struct iscsi_session_info si = { .tsih = 1 };

	snprintf(si.initiator, sizeof(si.initiator), "%s", fs->initiator);
	snprintf(si.peer, sizeof(si.peer), "%s", fs->peer);
	for (unsigned i = 0; i < fs->nhandles; i++)
		fn(arg, &si);
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7);
}

/* A golden image file of IMG_SIZE bytes with a known pattern. */
static void make_image(const char *path)
{
	static uint8_t buf[IMG_SIZE];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	fill(buf, sizeof(buf), 1);
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
}

/* A store that counts what the domain asks of it and passes it on to a
 * local store: the domain must reach its state only through it. */
static struct lab_store g_local;
static struct lab_store_ops g_counting_ops;
static struct lab_store g_counting = { .ops = &g_counting_ops };
static unsigned n_clients_save, n_discard, n_overlay_open, n_image_save, n_purge;
static struct lab_store *g_store;   /* the store lab_open gives the registry, NULL = default */
static bool g_extra;   /* lab_open serves "games" and "data" too (extra disks, lab/xdisk.h) */

static int count_clients_save(struct lab_store *s, const char *text)
{
	(void)s;
	n_clients_save++;
	return g_local.ops->clients_save(&g_local, text);
}

static int count_discard(struct lab_store *s, const char *where, const char *label)
{
	(void)s;
	n_discard++;
	return g_local.ops->discard(&g_local, where, label);
}

static int count_overlay_open(struct lab_store *s, const char *where, const char *base_root,
			      struct backend *golden, const struct overlay_opts *oo, struct cow **out)
{
	(void)s;
	n_overlay_open++;
	return g_local.ops->overlay_open(&g_local, where, base_root, golden, oo, out);
}

static int count_image_save(struct lab_store *s, const char *image, const char *text)
{
	(void)s;
	n_image_save++;
	return g_local.ops->image_save(&g_local, image, text);
}

static int count_purge(struct lab_store *s)
{
	(void)s;
	n_purge++;
	return g_local.ops->purge(&g_local);
}

/* Open a registry over lab->state serving lab->image as "img". */
static void lab_open(struct lab *l)
{
	memset(&l->reg, 0, sizeof(l->reg));
	memset(&l->fs, 0, sizeof(l->fs));
	l->fs.reg = &l->reg;
	snprintf(l->reg.state, sizeof(l->reg.state), "%s", l->state);
	l->reg.enroll_auto = false;
	l->reg.default_policy = POLICY_PERSISTENT;
	l->reg.default_reset_at = -1;
	l->reg.hooks = (struct lab_hooks){ .ctx = &l->fs, .add_target = fake_add_target,
					   .end_sessions = fake_end_sessions,
					   .foreach_session = fake_foreach_session };
	l->reg.store = g_store;
	l->img = calloc(1, sizeof(*l->img));
	assert_non_null(l->img);
	assert_int_equal(image_open_source(l->img, "img", l->image, "iqn.2026-11.org.pristine:img", BS), 0);
	assert_int_equal(image_load(&l->reg, l->img), 0);
	assert_int_equal(registry_add_image(&l->reg, l->img), 0);
	assert_int_equal(l->fs.targets, 1);
	for (unsigned i = 0; g_extra && i < 2; i++) {
		static const char *const names[] = { "games", "data" };
		char path[256], target[128];
		struct image *im = calloc(1, sizeof(*im));
		assert_non_null(im);
		snprintf(path, sizeof(path), "%s/%s.raw", l->root, names[i]);
		snprintf(target, sizeof(target), "iqn.2026-11.org.pristine:%s", names[i]);
		if (access(path, F_OK))
			make_image(path);
		assert_int_equal(image_open_source(im, names[i], path, target, BS), 0);
		assert_int_equal(image_load(&l->reg, im), 0);
		assert_int_equal(registry_add_image(&l->reg, im), 0);
	}
	assert_int_equal(registry_open(&l->reg), 0);
}

static void lab_close(struct lab *l)
{
	registry_close(&l->reg);
	for (unsigned i = 0; i < l->reg.nimages; i++) {
		image_close(l->reg.images[i]);
		free(l->reg.images[i]);
	}
	free(l->reg.images);
	l->reg.images = NULL;
	l->reg.nimages = l->reg.images_cap = 0;
}

static int rm_tree(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static int setup(void **state)
{
	struct lab *l = calloc(1, sizeof(*l));

	snprintf(l->root, sizeof(l->root), "/tmp/test_lab.XXXXXX");
	if (!mkdtemp(l->root))
		return -1;
	snprintf(l->state, sizeof(l->state), "%s/state", l->root);
	snprintf(l->image, sizeof(l->image), "%s/golden.raw", l->root);
	mkdir(l->state, 0700);
	make_image(l->image);
	*state = l;
	return 0;
}

static int teardown(void **state)
{
	struct lab *l = *state;

	rm_tree(l->root);
	free(l);
	return 0;
}

/* Attach as initiator to the image's target, as a login would: the disk
 * its session sees. */
static struct disk *attach(struct lab *l, const char *initiator)
{
	struct scsi_target *scsi = NULL;
	void *handle = NULL;
	char msg[256] = "";
	int st = registry_attach(&l->reg, &l->img->tgt, initiator, &scsi, &handle, msg, sizeof(msg));

	if (st)
		print_error("attach %s: status %#x: %s\n", initiator, st, msg);
	assert_int_equal(st, 0);
	assert_non_null(scsi);
	l->fs.handles[l->fs.nhandles++] = handle;
	return handle;
}

/* Entries in dir (not . and ..); -1 if it cannot be read. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Wait up to 5 s for the purger to empty the trash. */
static void wait_trash_empty(const char *state)
{
	char trash[256];

	snprintf(trash, sizeof(trash), "%s/trash", state);
	for (int i = 0; i < 500 && count_entries(trash) != 0; i++)
		usleep(10000);
	assert_int_equal(count_entries(trash), 0);
}

static void test_client_write_reset_reload(void **state)
{
	struct lab *l = *state;
	struct client_boot_fields bf = { .mac = "52-54-00-00-00-01", .uuid = "0A1B2C3D-0000-4000-8000-00000000AAAA" };
	uint8_t wbuf[4096], rbuf[4096], gold[4096];
	char msg[256] = "", dir[PATH_MAX];
	struct backend *be;
	struct client *c;
	struct stat st;

	lab_open(l);
	assert_int_equal(registry_add(&l->reg, "pc-one", PC1, NULL, &bf, 0, false, msg, sizeof(msg)), 0);
	assert_int_equal(registry_add(&l->reg, NULL, PC2, "img", NULL, 0, false, msg, sizeof(msg)), 0);
	assert_int_equal(registry_add(&l->reg, NULL, PC1, NULL, NULL, 0, false, msg, sizeof(msg)), -EEXIST);

	/* write through its disk, read back; the golden image is untouched */
	assert_ptr_equal(attach(l, PC1), &registry_find(&l->reg, "pc-one")->disk);
	c = registry_find(&l->reg, PC1);
	assert_int_equal(c->disk.sessions, 1);
	be = cow_backend(c->disk.cow);
	fill(wbuf, sizeof(wbuf), 99);
	assert_int_equal(be->ops->write(be, wbuf, 8192, sizeof(wbuf), true), 0);
	assert_int_equal(be->ops->read(be, rbuf, 8192, sizeof(rbuf)), 0);
	assert_memory_equal(rbuf, wbuf, sizeof(wbuf));
	assert_true(cow_used_bytes(c->disk.cow) > 0);
	snprintf(dir, sizeof(dir), "%s", c->disk.dir);
	assert_int_equal(stat(dir, &st), 0);

	/* reset while online: refused without force, then the hooks end its session */
	assert_int_equal(registry_reset(&l->reg, PC1, false, msg, sizeof(msg)), -EBUSY);
	assert_non_null(strstr(msg, "is online"));
	assert_int_equal(l->fs.end_calls, 0);
	assert_int_equal(registry_reset(&l->reg, "pc-one", true, msg, sizeof(msg)), 0);
	assert_int_equal(l->fs.end_calls, 1);
	assert_string_equal(l->fs.ended, PC1);
	assert_int_equal(c->disk.sessions, 0);
	/* a fresh overlay: the golden data shows through again */
	assert_non_null(c->disk.cow);
	assert_int_equal(cow_used_bytes(c->disk.cow), 0);
	be = cow_backend(c->disk.cow);
	assert_int_equal(be->ops->read(be, rbuf, 8192, sizeof(rbuf)), 0);
	for (size_t i = 0; i < sizeof(gold); i++)   /* the golden file's pattern at 8192 */
		gold[i] = (uint8_t)(1 + (8192 + i) * 7);
	assert_memory_equal(rbuf, gold, sizeof(rbuf));
	wait_trash_empty(l->state);

	/* write again, then restart: the same clients come back from the store */
	assert_ptr_equal(attach(l, PC1), &c->disk);
	be = cow_backend(c->disk.cow);
	assert_int_equal(be->ops->write(be, wbuf, 0, sizeof(wbuf), true), 0);
	registry_detach(&l->reg, l->fs.handles[--l->fs.nhandles]);
	lab_close(l);

	lab_open(l);
	c = registry_find(&l->reg, "pc-one");
	assert_non_null(c);
	assert_string_equal(c->initiator, PC1);
	assert_string_equal(c->mac, "52:54:00:00:00:01");
	assert_string_equal(c->uuid, "0a1b2c3d-0000-4000-8000-00000000aaaa");
	assert_int_equal(c->origin, ORIGIN_API);
	assert_non_null(registry_find(&l->reg, PC2));
	assert_non_null(c->disk.cow);
	be = cow_backend(c->disk.cow);
	assert_int_equal(be->ops->read(be, rbuf, 0, sizeof(rbuf)), 0);
	assert_memory_equal(rbuf, wbuf, sizeof(rbuf));
	assert_int_equal(disk_used_bytes(&c->disk), cow_used_bytes(c->disk.cow));

	/* remove: gone from the store too */
	assert_int_equal(registry_remove(&l->reg, PC2, false, msg, sizeof(msg)), 0);
	lab_close(l);
	lab_open(l);
	assert_null(registry_find(&l->reg, PC2));
	assert_non_null(registry_find(&l->reg, PC1));
	lab_close(l);
}

/* The message the configuration file gives for one bad [client] key. */
static void config_message(const char *key_line, char *out, size_t len)
{
	char text[1024], err[2048] = "";
	struct config cfg;

	snprintf(text, sizeof(text), "[image a]\npath = /a\n[client x]\ninitiator = " PC1 "\n%s\n",
		 key_line);
	assert_int_equal(config_parse("t.conf", text, strlen(text), 0600, &cfg, err, sizeof(err)), -EINVAL);
	/* one message, "t.conf:LINE: " before it */
	assert_int_equal(strncmp(err, "t.conf:", 7), 0);
	assert_non_null(strchr(err + 7, ' '));
	assert_null(strchr(err, '\n'));
	snprintf(out, len, "%s", strchr(err + 7, ' ') + 1);
	if (strchr(out, '\n'))
		*strchr(out, '\n') = '\0';
}

static void test_bad_fields_same_as_config(void **state)
{
	struct lab *l = *state;
	static const struct {
		struct client_boot_fields bf;
		const char *conf;
	} cases[] = {
		{ { .mac = "52:54:00:00:01" }, "mac = 52:54:00:00:01" },
		{ { .mac = "52:54:00:00:00:0g" }, "mac = 52:54:00:00:00:0g" },
		{ { .chap_user = "u v", .chap_secret = "0123456789ab" }, "chap-user = u v\nchap-secret = 0123456789ab" },
		{ { .chap_user = "u", .chap_secret = "short" }, "chap-secret = short\nchap-user = u" },
		{ { .chap_user = "u" }, "chap-user = u" },
		{ { .chap_user = "u", .chap_secret = "0123456789ab", .mutual_user = "m" },
		  "chap-user = u\nchap-secret = 0123456789ab\nmutual-user = m" },
	};
	char msg[256], want[512];
	int rc;

	lab_open(l);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		msg[0] = '\0';
		rc = registry_add(&l->reg, NULL, PC1, NULL, &cases[i].bf, 0, false, msg, sizeof(msg));
		assert_int_equal(rc, -EINVAL);
		config_message(cases[i].conf, want, sizeof(want));
		if (strcmp(msg, want) != 0) {
			/* the file's line may hold a second problem after the first */
			print_error("case %zu: api '%s', config '%s'\n", i, msg, want);
			fail();
		}
		assert_null(registry_find(&l->reg, PC1));
	}
	/* the rules the file has no key for */
	msg[0] = '\0';
	assert_int_equal(registry_add(&l->reg, NULL, PC1, NULL,
				      &(struct client_boot_fields){ .uuid = "${uuid}" }, 0, false, msg,
				      sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "uuid: '${uuid}' is not a UUID"));
	assert_int_equal(registry_add(&l->reg, NULL, PC1, NULL,
				      &(struct client_boot_fields){ .chap_secret = "0123456789ab" }, 0,
				      false, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "CHAP settings need the CHAP user name too"));
	assert_int_equal(registry_add(&l->reg, NULL, PC1, NULL,
				      &(struct client_boot_fields){ .chap_user = "u", .chap_secret = "0123456789ab",
				      .mutual_user = "m", .mutual_secret = "0123456789ab" }, 0, false, msg,
				      sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "mutual-secret must differ from chap-secret"));
	/* a valid one, and a second client with its MAC */
	assert_int_equal(registry_add(&l->reg, NULL, PC1, NULL,
				      &(struct client_boot_fields){ .mac = "525400000001" }, 0, false, msg,
				      sizeof(msg)), 0);
	assert_string_equal(registry_find(&l->reg, PC1)->mac, "52:54:00:00:00:01");
	assert_int_equal(registry_add(&l->reg, NULL, PC2, NULL,
				      &(struct client_boot_fields){ .mac = "52:54:00:00:00:01" }, 0, false,
				      msg, sizeof(msg)), -EEXIST);
	lab_close(l);
}

static void test_draft_made_and_discarded(void **state)
{
	struct lab *l = *state;
	char msg[256] = "", layer[PATH_MAX];
	unsigned newv = 0;
	struct stat st;
	struct disk *d;

	lab_open(l);
	assert_int_equal(image_edit(&l->reg, "img", ADMIN_PC, false, msg, sizeof(msg)), 0);
	assert_non_null(l->img->draft);
	assert_int_equal(image_edit(&l->reg, "img", ADMIN_PC, false, msg, sizeof(msg)), -EEXIST);
	snprintf(layer, sizeof(layer), "%s", l->img->draft->disk.dir);
	assert_int_equal(stat(layer, &st), 0);
	/* the maintenance initiator sees the draft */
	d = attach(l, ADMIN_PC);
	assert_ptr_equal(d, &l->img->draft->disk);
	assert_int_equal(d->sessions, 1);
	assert_true(d->is_draft);
	assert_string_equal(d->initiator, ADMIN_PC);
	/* a client's disk and a draft's are the same kind of thing */
	assert_non_null(strstr(d->dir, "/images/img/layers/L"));
	/* discard ends its session through the hooks, the layer goes to the trash */
	assert_int_equal(image_discard(&l->reg, "img", false, msg, sizeof(msg)), -EBUSY);
	assert_int_equal(image_discard(&l->reg, "img", true, msg, sizeof(msg)), 0);
	assert_int_equal(l->fs.end_calls, 1);
	assert_null(l->img->draft);
	assert_int_equal(stat(layer, &st), -1);
	wait_trash_empty(l->state);
	assert_int_equal(image_discard(&l->reg, "img", false, msg, sizeof(msg)), -EINVAL);

	/* a draft committed becomes v2, and survives a restart */
	assert_int_equal(image_edit(&l->reg, "img", ADMIN_PC, false, msg, sizeof(msg)), 0);
	assert_int_equal(image_commit(&l->reg, "img", "updates", false, &newv, msg, sizeof(msg)), 0);
	assert_int_equal(newv, 2);
	lab_close(l);
	lab_open(l);
	assert_int_equal(l->img->nversions, 2);
	assert_int_equal(l->img->current, 2);
	assert_null(l->img->draft);
	lab_close(l);
}

/* The maintenance client with its own disk on the image (image_draft.c):
 * kept aside at edit, moved to the new version at commit, given back at
 * discard - and each step says so in msg. */
static void test_maintainer_own_disk(void **state)
{
	struct lab *l = *state;
	char msg[1024] = "";
	unsigned newv = 0;
	struct client *c;
	struct disk *d;

	lab_open(l);
	assert_int_equal(registry_add(&l->reg, NULL, ADMIN_PC, NULL, NULL, 0, false, msg, sizeof(msg)), 0);
	c = registry_find(&l->reg, ADMIN_PC);
	assert_non_null(c);
	d = attach(l, ADMIN_PC);
	assert_ptr_equal(d, &c->disk);
	/* online on its own disk: --force helps, and is said to */
	assert_int_equal(image_edit(&l->reg, "img", ADMIN_PC, false, msg, sizeof(msg)), -EBUSY);
	assert_non_null(strstr(msg, "use --force to end them and open the draft"));
	assert_int_equal(image_edit(&l->reg, "img", ADMIN_PC, true, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "its own disk on v1 is kept aside"));
	assert_int_equal(c->disk.version, 1);
	/* a second draft: --force does not help, and is not suggested */
	assert_int_equal(image_edit(&l->reg, "img", PC2, true, msg, sizeof(msg)), -EEXIST);
	assert_null(strstr(msg, "--force"));
	d = attach(l, ADMIN_PC);
	assert_true(d->is_draft);
	assert_int_equal(image_commit(&l->reg, "img", "updates", false, &newv, msg, sizeof(msg)), -EBUSY);
	assert_non_null(strstr(msg, "is online on the draft of img (1 session): shut it down first, "
			       "or use --force to end its sessions and commit"));
	assert_int_equal(image_commit(&l->reg, "img", "updates", true, &newv, msg, sizeof(msg)), 0);
	assert_int_equal(newv, 2);
	assert_non_null(strstr(msg, "now boots v2: its own disk on v1"));
	assert_int_equal(c->disk.version, 2);
	assert_ptr_equal(attach(l, ADMIN_PC), &c->disk);
	/* a discard gives its own disk back, on the version it was */
	assert_int_equal(image_edit(&l->reg, "img", ADMIN_PC, true, msg, sizeof(msg)), 0);
	assert_int_equal(image_discard(&l->reg, "img", false, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "boots its own disk again, on v2 as before image edit"));
	assert_int_equal(c->disk.version, 2);
	assert_ptr_equal(attach(l, ADMIN_PC), &c->disk);
	/* nothing to discard: no --force in the message */
	assert_int_equal(image_discard(&l->reg, "img", true, msg, sizeof(msg)), -EINVAL);
	assert_null(strstr(msg, "--force"));
	while (l->fs.nhandles)
		registry_detach(&l->reg, l->fs.handles[--l->fs.nhandles]);
	lab_close(l);
	lab_open(l);
	c = registry_find(&l->reg, ADMIN_PC);
	assert_non_null(c);
	assert_int_equal(c->disk.version, 2);
	lab_close(l);
}

static void test_atomicfile(void **state)
{
	struct lab *l = *state;
	char dir[256], path[300], buf[64] = "";
	int fd;

	snprintf(dir, sizeof(dir), "%s/af", l->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(atomicfile_write_text(dir, "f.json", "{\"a\":1}"), 0);
	snprintf(path, sizeof(path), "%s/f.json", dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 7);
	close(fd);
	assert_string_equal(buf, "{\"a\":1}");
	assert_int_equal(count_entries(dir), 1);   /* no .tmp left */

	/* a directory that does not exist, a file where the directory should be */
	snprintf(path, sizeof(path), "%s/missing", l->root);
	assert_int_equal(atomicfile_write_text(path, "f.json", "x"), -ENOENT);
	snprintf(path, sizeof(path), "%s/f.json", dir);
	assert_int_equal(atomicfile_write_text(path, "g.json", "x"), -ENOTDIR);
	/* the rename fails (a non-empty directory is in the way): error, temp removed */
	snprintf(path, sizeof(path), "%s/d", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/d/x", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_true(atomicfile_write_text(dir, "d", "x") < 0);
	assert_int_equal(count_entries(dir), 2);   /* f.json, d: no d.tmp */
	{
		char big[PATH_MAX + 10];
		memset(big, 'n', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(atomicfile_write_text(dir, big, "x"), -ENAMETOOLONG);
	}
	/* a failed write leaves the old content */
	snprintf(path, sizeof(path), "%s/f.json", dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 7);
	close(fd);
	assert_string_equal(buf, "{\"a\":1}");
}

static void test_statedir(void **state)
{
	struct lab *l = *state;
	char out[PATH_MAX], back[ISCSI_NAME_MAX], p[300], q[PATH_MAX];
	int fd;

	assert_int_equal(statedir_overlay(out, sizeof(out), "/s", "iqn.2010-04.org.ipxe:PC1"), 0);
	assert_string_equal(out, "/s/overlays/iqn.2010-04.org.ipxe:pc1");
	assert_int_equal(statedir_unescape(strrchr(out, '/') + 1, back, sizeof(back)), 0);
	assert_string_equal(back, "iqn.2010-04.org.ipxe:pc1");
	assert_int_equal(statedir_unescape("iqn.2010-04.org.ipxe%3Apc1", back, sizeof(back)), 0);
	assert_string_equal(back, "iqn.2010-04.org.ipxe:pc1");
	assert_int_equal(statedir_unescape("iqn.2010-04.org.ipxe%20pc1", back, sizeof(back)), -1);
	assert_int_equal(statedir_unescape("not%2", back, sizeof(back)), -1);
	assert_int_equal(statedir_image(out, sizeof(out), "/s", "win10"), 0);
	assert_string_equal(out, "/s/images/win10");
	assert_int_equal(statedir_layer(out, sizeof(out), "/s/images/win10", "L3"), 0);
	assert_string_equal(out, "/s/images/win10/layers/L3");
	assert_int_equal(statedir_flat(out, sizeof(out), "/s/images/win10", 4, 1), 0);
	assert_string_equal(out, "/s/images/win10/flat-v4.raw.tmp");
	assert_int_equal(statedir_image(out, 20, "/a/long/state/dir", "win10"), -ENAMETOOLONG);

	/* one trash move, one quarantine move */
	assert_int_equal(statedir_prepare(l->state), 0);
	snprintf(p, sizeof(p), "%s/overlays/x", l->state);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(statedir_trash(l->state, p, "overlay-x"), 0);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(q, sizeof(q), "%s/trash", l->state);
	assert_int_equal(count_entries(q), 1);
	assert_int_equal(statedir_trash(l->state, p, "overlay-x"), -ENOENT);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	close(fd);
	assert_int_equal(statedir_quarantine(l->state, p, q, sizeof(q)), 0);
	assert_non_null(strstr(q, "/quarantine/x."));
	assert_int_equal(access(q, F_OK), 0);
}

/* A boot request from peer for mac, resolved by the lab. */
static void boot(struct lab *l, const char *mac, const char *peer, struct boot_answer *ans)
{
	struct boot_request rq = { 0 };

	snprintf(rq.mac, sizeof(rq.mac), "%s", mac);
	snprintf(rq.peer, sizeof(rq.peer), "%s", peer);
	snprintf(rq.host, sizeof(rq.host), "10.0.0.1");
	memset(ans, 0, sizeof(*ans));
	assert_int_equal(registry_boot_resolve(&l->reg, &rq, ans), 0);
}

/* Reset-on-boot: a boot request is the PC rebooting - its stale session
 * (same address) is ended through the hooks and its overlay discarded;
 * a request while it is online from ANOTHER address resets nothing. */
static void test_boot_policy(void **state)
{
	struct lab *l = *state;
	struct client_boot_fields bf = { .mac = "52:54:00:00:00:07", .policy = "reset-on-boot" };
	uint8_t wbuf[4096];
	struct boot_answer ans;
	char msg[256] = "";
	struct backend *be;
	struct disk *d;

	lab_open(l);
	assert_int_equal(registry_add(&l->reg, "pc7", PC1, NULL, &bf, 0, false, msg, sizeof(msg)), 0);
	d = attach(l, PC1);
	be = cow_backend(d->cow);
	fill(wbuf, sizeof(wbuf), 5);
	assert_int_equal(be->ops->write(be, wbuf, 0, sizeof(wbuf), true), 0);
	snprintf(l->fs.initiator, sizeof(l->fs.initiator), "%s", PC1);
	snprintf(l->fs.peer, sizeof(l->fs.peer), "10.0.0.7:51000");

	/* online from 10.0.0.7: a request from 10.0.0.8 is not this PC rebooting */
	boot(l, "52:54:00:00:00:07", "10.0.0.8", &ans);
	assert_int_equal(ans.kind, BOOT_MESSAGE);
	assert_non_null(strstr(ans.message, "nothing was reset"));
	assert_int_equal(l->fs.end_calls, 0);
	assert_true(disk_used_bytes(d) > 0);

	/* from its own address: the stale session ends, the overlay goes */
	boot(l, "52:54:00:00:00:07", "10.0.0.7", &ans);
	assert_int_equal(ans.kind, BOOT_SANBOOT);
	assert_string_equal(ans.initiator, PC1);
	assert_string_equal(ans.target, "iqn.2026-11.org.pristine:img");
	assert_int_equal(l->fs.end_calls, 1);
	assert_int_equal(d->sessions, 0);
	assert_non_null(d->cow);
	assert_int_equal(disk_used_bytes(d), 0);

	/* an unknown PC with enroll = deny gets a message */
	boot(l, "52:54:00:00:00:99", "10.0.0.9", &ans);
	assert_int_equal(ans.kind, BOOT_MESSAGE);
	assert_non_null(strstr(ans.message, "is not a client"));
	lab_close(l);
}

/* Every state change of the domain goes through the store it is given. */
static void test_store_seam(void **state)
{
	struct lab *l = *state;
	char msg[256] = "";
	struct disk *d;

	assert_int_equal(store_local_init(&g_local, l->state), 0);
	g_counting_ops = *g_local.ops;   /* the ops not counted run on its own root */
	memcpy(g_counting.root, g_local.root, sizeof(g_counting.root));
	g_counting_ops.clients_save = count_clients_save;
	g_counting_ops.discard = count_discard;
	g_counting_ops.overlay_open = count_overlay_open;
	g_counting_ops.image_save = count_image_save;
	g_counting_ops.purge = count_purge;
	g_store = &g_counting;

	lab_open(l);
	assert_ptr_equal(registry_store(&l->reg), &g_counting);
	assert_true(n_image_save >= 1);   /* a new history recorded */
	n_clients_save = n_discard = n_overlay_open = n_image_save = 0;
	assert_int_equal(registry_add(&l->reg, NULL, PC1, NULL, NULL, 0, false, msg, sizeof(msg)), 0);
	assert_int_equal(n_clients_save, 1);
	d = attach(l, PC1);
	assert_int_equal(n_overlay_open, 1);
	assert_non_null(d->cow);
	assert_int_equal(registry_reset(&l->reg, PC1, true, msg, sizeof(msg)), 0);
	assert_int_equal(n_discard, 1);
	assert_int_equal(n_overlay_open, 2);   /* reopened empty */
	wait_trash_empty(l->state);
	assert_true(n_purge >= 1);
	assert_int_equal(image_edit(&l->reg, "img", ADMIN_PC, false, msg, sizeof(msg)), 0);
	assert_int_equal(n_overlay_open, 3);
	assert_int_equal(n_image_save, 1);
	assert_int_equal(image_discard(&l->reg, "img", false, msg, sizeof(msg)), 0);
	assert_int_equal(n_discard, 2);
	assert_int_equal(n_image_save, 2);
	lab_close(l);
	g_store = NULL;
}

static void test_rules(void **state)
{
	char msg[256], mac[RULES_MAC_LEN], uuid[RULES_UUID_LEN];
	bool has[4] = { true, false, false, false };
	struct rules_problem pb[6];
	struct iscsi_chap_creds cr;

	(void)state;
	assert_int_equal(rules_mac("52-54-00-AB-cd-01", mac, msg, sizeof(msg)), 0);
	assert_string_equal(mac, "52:54:00:ab:cd:01");
	assert_int_equal(rules_mac("5254000000\n1", mac, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "mac: '5254000000?1' is not a MAC address like 52:54:00:12:34:01");
	/* one rule for the file, the API and the boot endpoint: bare hex is
	 * taken, a mix of ':' and '-' is a typo */
	assert_int_equal(rules_mac("525400ABcd01", mac, msg, sizeof(msg)), 0);
	assert_string_equal(mac, "52:54:00:ab:cd:01");
	assert_int_equal(rules_mac("52:54-00:ab:cd:01", mac, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(rules_mac("52-54-00-ab-cd:01", mac, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(rules_uuid("12345678-9ABC-def0-1234-56789abcdef0", uuid, msg, sizeof(msg)), 0);
	assert_string_equal(uuid, "12345678-9abc-def0-1234-56789abcdef0");
	assert_int_equal(rules_uuid("123456789-abc-def0-1234-56789abcdef0", uuid, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(rules_chap_secret("chap-secret", "01234567890", msg, sizeof(msg)), -EINVAL);
	assert_null(strstr(msg, "01234567890"));   /* a secret is never quoted back */
	assert_int_equal(rules_chap_secret("chap-secret", "012345678901", msg, sizeof(msg)), 0);
	assert_int_equal(rules_chap_pairs(has, "", "", "discovery-", pb, 6), 1);
	assert_int_equal(pb[0].key, RULES_CHAP_USER);
	assert_string_equal(pb[0].msg, "discovery-chap-user needs discovery-chap-secret "
			    "(a CHAP user always needs a CHAP secret)");
	assert_int_equal(rules_chap_creds("", NULL, NULL, NULL, &cr, msg, sizeof(msg)), 0);
	assert_string_equal(cr.user, "");
	assert_int_equal(rules_chap_creds("", "0123456789ab", NULL, NULL, &cr, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(rules_chap_creds("u", "0123456789ab", "m", "0123456789ac", &cr, msg, sizeof(msg)), 0);
	assert_string_equal(cr.muser, "m");
}


/* c's extra disk at lun (NULL if none). */
static struct xdisk *xd(struct lab *l, const char *id, unsigned lun)
{
	struct client *c = registry_find(&l->reg, id);

	assert_non_null(c);
	return c->x[lun - 1];
}

/* Write a block of seed through x's open overlay. */
static void xwrite(struct xdisk *x, uint8_t seed)
{
	uint8_t buf[4096];
	struct backend *be;

	assert_non_null(x->disk.cow);
	be = cow_backend(x->disk.cow);
	fill(buf, sizeof(buf), seed);
	assert_int_equal(be->ops->write(be, buf, 0, sizeof(buf), true), 0);
}

/* Extra disks: LUNs given in order and kept while their attachment
 * stays, added and removed offline and online (the LU in the PC's target
 * at once), refusals, one disk reset (force when online: the PC's session
 * stays) and all of them, and a restart that finds the same LUNs,
 * versions and overlays. */
static void test_xdisk_luns_online(void **state)
{
	struct lab *l = *state;
	struct scsi_target *scsi;
	char msg[256] = "", path[512];
	struct client *c;
	struct xdisk *g;
	json_t *js;

	g_extra = true;
	lab_open(l);
	assert_int_equal(registry_group_xdisk_add(&l->reg, "img", "games", NULL, false, 0, msg,
						  sizeof(msg)), 0);
	assert_int_equal(registry_add(&l->reg, "pc1", PC1, "img", NULL, 0, false, msg, sizeof(msg)), 0);
	assert_non_null(xd(l, PC1, 1));
	assert_string_equal(xd(l, PC1, 1)->disk.img->name, "games");
	assert_true(xd(l, PC1, 1)->from_group);
	assert_int_equal(registry_xdisk_add(&l->reg, "pc1", "data", "read-only", false, 0, msg,
					    sizeof(msg)), 0);
	assert_string_equal(xd(l, PC1, 2)->disk.img->name, "data");
	assert_int_equal(xd(l, PC1, 2)->policy, XDISK_READ_ONLY);

	/* refusals, each saying why */
	assert_int_equal(registry_xdisk_add(&l->reg, "pc1", "img", NULL, false, 0, msg, sizeof(msg)),
			 -EINVAL);
	assert_non_null(strstr(msg, "boot image"));
	assert_int_equal(registry_xdisk_add(&l->reg, "pc1", "data", NULL, false, 0, msg, sizeof(msg)),
			 -EEXIST);
	assert_int_equal(registry_xdisk_add(&l->reg, "pc1", "nosuch", NULL, false, 0, msg, sizeof(msg)),
			 -ENOENT);
	assert_int_equal(registry_xdisk_add(&l->reg, "nobody", "data", NULL, false, 0, msg, sizeof(msg)),
			 -ENOENT);
	assert_int_equal(registry_xdisk_add(&l->reg, "pc1", "games", "sometimes", false, 0, msg,
					    sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "overlay, discard-on-boot or read-only"));
	assert_int_equal(registry_xdisk_remove(&l->reg, "pc1", "games", msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "image disk remove img games"));
	assert_int_equal(registry_group_xdisk_add(&l->reg, "img", "games", NULL, false, 0, msg,
						  sizeof(msg)), -EEXIST);
	assert_int_equal(registry_reset_disks(&l->reg, "pc1", "nosuch", false, msg, sizeof(msg)),
			 -ENOENT);

	/* a login opens them into the PC's target: LUN 1 over an overlay in
	 * STATE/disks/games/, LUN 2 the version itself */
	attach(l, PC1);
	c = registry_find(&l->reg, PC1);
	scsi = c->disk.scsi;
	g = xd(l, PC1, 1);
	assert_true(scsi_target_has_lun(scsi, 1));
	assert_true(scsi_target_has_lun(scsi, 2));
	assert_false(scsi_target_has_lun(scsi, 3));
	assert_non_null(g->disk.cow);
	assert_null(xd(l, PC1, 2)->disk.cow);
	assert_true(xd(l, PC1, 2)->disk.read_only);
	snprintf(path, sizeof(path), "%s/disks/games/", l->state);
	assert_memory_equal(g->disk.dir, path, strlen(path));
	xwrite(g, 42);
	assert_true(disk_used_bytes(&g->disk) > 0);
	assert_int_equal(disk_used_bytes(&c->disk), 0);   /* not the boot overlay */
	js = client_disks_json(&l->reg, c);
	assert_int_equal(json_array_size(js), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(js, 1), "from")), "group");
	assert_string_equal(json_string_value(json_object_get(json_array_get(js, 2), "policy")),
			    "read-only");
	json_decref(js);

	/* online: removed and added again live; the other LUN never moves */
	assert_int_equal(registry_xdisk_remove(&l->reg, "pc1", "data", msg, sizeof(msg)), 0);
	assert_false(scsi_target_has_lun(scsi, 2));
	assert_null(xd(l, PC1, 2));
	assert_int_equal(registry_group_xdisk_remove(&l->reg, "img", "games", msg, sizeof(msg)), 0);
	assert_false(scsi_target_has_lun(scsi, 1));
	assert_int_equal(registry_xdisk_add(&l->reg, "pc1", "data", NULL, false, 0, msg, sizeof(msg)), 0);
	assert_string_equal(xd(l, PC1, 1)->disk.img->name, "data");   /* the lowest free LUN */
	assert_true(scsi_target_has_lun(scsi, 1));
	assert_int_equal(registry_group_xdisk_add(&l->reg, "img", "games", NULL, false, 0, msg,
						  sizeof(msg)), 0);
	g = xd(l, PC1, 2);
	assert_string_equal(g->disk.img->name, "games");
	assert_true(scsi_target_has_lun(scsi, 2));
	assert_int_equal(disk_used_bytes(&g->disk), 0);   /* removal discarded its overlay */
	assert_int_equal(l->fs.end_calls, 0);
	assert_int_equal(c->disk.sessions, 1);

	/* one disk reset: force needed online, swaps that LU only */
	xwrite(g, 7);
	xwrite(xd(l, PC1, 1), 8);
	assert_int_equal(registry_reset_disks(&l->reg, "pc1", "games", false, msg, sizeof(msg)), -EBUSY);
	assert_non_null(strstr(msg, "--force"));
	assert_true(disk_used_bytes(&g->disk) > 0);
	assert_int_equal(registry_reset_disks(&l->reg, "pc1", "games", true, msg, sizeof(msg)), 0);
	assert_int_equal(disk_used_bytes(&g->disk), 0);
	assert_true(scsi_target_has_lun(scsi, 2));
	assert_int_equal(c->disk.sessions, 1);
	assert_int_equal(l->fs.end_calls, 0);
	assert_true(disk_used_bytes(&xd(l, PC1, 1)->disk) > 0);

	/* a restart: same LUNs, the overlay kept, opened at the next login */
	xwrite(g, 9);
	registry_detach(&l->reg, l->fs.handles[--l->fs.nhandles]);
	lab_close(l);
	lab_open(l);
	c = registry_find(&l->reg, PC1);
	assert_string_equal(xd(l, PC1, 1)->disk.img->name, "data");
	assert_string_equal(xd(l, PC1, 2)->disk.img->name, "games");
	assert_false(xd(l, PC1, 1)->from_group);
	assert_true(xd(l, PC1, 2)->from_group);
	assert_false(disk_is_open(&xd(l, PC1, 2)->disk));   /* not at start */
	attach(l, PC1);
	assert_true(disk_used_bytes(&xd(l, PC1, 2)->disk) > 0);
	assert_true(disk_used_bytes(&xd(l, PC1, 1)->disk) > 0);

	/* reset of all: the boot disk as ever (sessions ended), then each */
	assert_int_equal(registry_reset_disks(&l->reg, "pc1", NULL, false, msg, sizeof(msg)), -EBUSY);
	assert_int_equal(registry_reset_disks(&l->reg, "pc1", NULL, true, msg, sizeof(msg)), 0);
	assert_int_equal(l->fs.end_calls, 1);
	attach(l, PC1);
	assert_int_equal(disk_used_bytes(&xd(l, PC1, 2)->disk), 0);
	assert_int_equal(disk_used_bytes(&xd(l, PC1, 1)->disk), 0);
	assert_true(scsi_target_has_lun(registry_find(&l->reg, PC1)->disk.scsi, 2));

	/* the configuration file's attachments change in the file */
	xdisk_group_configure(registry_image(&l->reg, "img"), registry_image(&l->reg, "img")->group, 1,
			      XDISK_OVERLAY, 0);
	assert_int_equal(registry_group_xdisk_remove(&l->reg, "img", "games", msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "configuration file"));
	registry_detach(&l->reg, l->fs.handles[--l->fs.nhandles]);
	lab_close(l);
	g_extra = false;
}

/* At a boot request: a discard-on-boot disk is discarded, a read-only
 * one moved to its image's new current version; an overlay one kept.
 * Never at a mere login. */
static void test_xdisk_boot_policies(void **state)
{
	struct lab *l = *state;
	struct client_boot_fields bf = { .mac = "52:54:00:00:00:08" };
	struct boot_answer ans;
	char msg[256] = "";
	unsigned newv;

	g_extra = true;
	lab_open(l);
	assert_int_equal(registry_add(&l->reg, "pc8", PC1, "img", &bf, 0, false, msg, sizeof(msg)), 0);
	assert_int_equal(registry_xdisk_add(&l->reg, "pc8", "games", "discard-on-boot", false, 0, msg,
					    sizeof(msg)), 0);
	assert_int_equal(registry_xdisk_add(&l->reg, "pc8", "data", "read-only", false, 0, msg,
					    sizeof(msg)), 0);
	attach(l, PC1);
	xwrite(xd(l, PC1, 1), 3);
	assert_int_equal(xd(l, PC1, 2)->disk.version, 1);

	/* data gets a v2 */
	assert_int_equal(image_edit(&l->reg, "data", ADMIN_PC, false, msg, sizeof(msg)), 0);
	assert_int_equal(image_commit(&l->reg, "data", "new files", false, &newv, msg, sizeof(msg)), 0);
	assert_int_equal(newv, 2);
	/* a login (a reconnect) changes nothing */
	attach(l, PC1);
	assert_int_equal(xd(l, PC1, 2)->disk.version, 1);
	assert_true(disk_used_bytes(&xd(l, PC1, 1)->disk) > 0);

	/* the boot: stale sessions of the same address end, both move */
	snprintf(l->fs.initiator, sizeof(l->fs.initiator), "%s", PC1);
	snprintf(l->fs.peer, sizeof(l->fs.peer), "10.0.0.8:51000");
	boot(l, "52:54:00:00:00:08", "10.0.0.8", &ans);
	assert_int_equal(ans.kind, BOOT_SANBOOT);
	assert_int_equal(l->fs.end_calls, 1);
	assert_int_equal(xd(l, PC1, 2)->disk.version, 2);
	attach(l, PC1);
	assert_int_equal(disk_used_bytes(&xd(l, PC1, 1)->disk), 0);
	assert_non_null(xd(l, PC1, 2)->disk.ro_be);
	registry_detach(&l->reg, l->fs.handles[--l->fs.nhandles]);
	lab_close(l);

	/* the version is recorded */
	lab_open(l);
	assert_int_equal(xd(l, PC1, 2)->disk.version, 2);
	assert_int_equal(xd(l, PC1, 1)->policy, XDISK_DISCARD_ON_BOOT);
	lab_close(l);
	g_extra = false;
}

/* MAINTENANCE: a PC that maintains the draft of one of its extra disks'
 * images finds the draft at that LUN (its own disk kept aside), boots its
 * own system still, and after the commit gets the new version there. */
static void test_xdisk_maintenance(void **state)
{
	struct lab *l = *state;
	struct client_boot_fields bf = { .mac = "52:54:00:00:00:09" };
	uint8_t buf[4096], rbuf[4096];
	struct boot_answer ans;
	struct backend *be;
	char msg[256] = "";
	struct xdisk *x;
	struct image *games;
	unsigned newv;
	json_t *js;

	g_extra = true;
	lab_open(l);
	games = registry_image(&l->reg, "games");
	assert_int_equal(registry_add(&l->reg, "pc9", PC1, "img", &bf, 0, false, msg, sizeof(msg)), 0);
	assert_int_equal(registry_xdisk_add(&l->reg, "pc9", "games", NULL, false, 0, msg, sizeof(msg)), 0);
	attach(l, PC1);
	x = xd(l, PC1, 1);
	xwrite(x, 0x11);

	/* online: the draft's edit ends its sessions only with force */
	assert_int_equal(image_edit(&l->reg, "games", "pc9", false, msg, sizeof(msg)), -EBUSY);
	assert_non_null(strstr(msg, "--force"));
	assert_null(games->draft);
	assert_int_equal(image_edit(&l->reg, "games", "pc9", true, msg, sizeof(msg)), 0);
	assert_int_equal(l->fs.end_calls, 1);

	/* its next login: LUN 1 is the draft, its own disk closed */
	attach(l, PC1);
	assert_true(x->on_draft);
	assert_false(disk_is_open(&x->disk));
	assert_true(scsi_target_has_lun(registry_find(&l->reg, PC1)->disk.scsi, 1));
	js = client_disks_json(&l->reg, registry_find(&l->reg, PC1));
	assert_true(json_is_true(json_object_get(json_array_get(js, 1), "draft")));
	json_decref(js);
	be = cow_backend(games->draft->disk.cow);
	fill(buf, sizeof(buf), 0x22);
	assert_int_equal(be->ops->write(be, buf, 65536, sizeof(buf), true), 0);

	/* a boot request: it boots its own system, not the game disk */
	snprintf(l->fs.initiator, sizeof(l->fs.initiator), "%s", PC1);
	snprintf(l->fs.peer, sizeof(l->fs.peer), "10.0.0.9:51000");
	boot(l, "52:54:00:00:00:09", "10.0.0.9", &ans);
	assert_int_equal(ans.kind, BOOT_SANBOOT);
	assert_string_equal(ans.target, "iqn.2026-11.org.pristine:img");

	/* commit: refused online without force; then its disk is on v2 */
	assert_int_equal(image_commit(&l->reg, "games", "patch", false, &newv, msg, sizeof(msg)), -EBUSY);
	assert_true(x->on_draft);
	assert_int_equal(image_commit(&l->reg, "games", "patch", true, &newv, msg, sizeof(msg)), 0);
	assert_int_equal(newv, 2);
	assert_false(x->on_draft);
	assert_int_equal(x->disk.version, 2);
	attach(l, PC1);
	assert_true(disk_is_open(&x->disk));
	assert_int_equal(disk_used_bytes(&x->disk), 0);   /* the old overlay went */
	be = cow_backend(x->disk.cow);
	assert_int_equal(be->ops->read(be, rbuf, 65536, sizeof(rbuf)), 0);
	assert_memory_equal(rbuf, buf, sizeof(buf));      /* what it made as the draft */
	while (l->fs.nhandles)
		registry_detach(&l->reg, l->fs.handles[--l->fs.nhandles]);
	lab_close(l);
	g_extra = false;
}

/* An extra disk's overlay found corrupt at its login is quarantined (kept
 * for the admin) and the PC gets a fresh one on that LUN. */
static void test_xdisk_quarantine(void **state)
{
	struct lab *l = *state;
	char msg[256] = "", data[PATH_MAX + 8], q[256];

	g_extra = true;
	lab_open(l);
	assert_int_equal(registry_group_xdisk_add(&l->reg, "img", "games", NULL, false, 0, msg,
						  sizeof(msg)), 0);
	assert_int_equal(registry_add(&l->reg, "pc1", PC1, "img", NULL, 0, false, msg, sizeof(msg)), 0);
	attach(l, PC1);
	xwrite(xd(l, PC1, 1), 0x44);
	snprintf(data, sizeof(data), "%s/data", xd(l, PC1, 1)->disk.dir);
	registry_detach(&l->reg, l->fs.handles[--l->fs.nhandles]);
	lab_close(l);
	assert_int_equal(truncate(data, 0), 0);   /* torn: its size no longer the image's */

	lab_open(l);
	attach(l, PC1);
	assert_true(disk_is_open(&xd(l, PC1, 1)->disk));
	assert_int_equal(disk_used_bytes(&xd(l, PC1, 1)->disk), 0);
	snprintf(q, sizeof(q), "%s/quarantine", l->state);
	assert_int_equal(count_entries(q), 1);
	{
		/* named with its image: the PC's boot overlay ends the same */
		DIR *dq = opendir(q);
		struct dirent *de;
		bool named = false;
		while (dq && (de = readdir(dq)) != NULL)
			named |= strncmp(de->d_name, "disk-games-iqn.2010-04.org.ipxe:pc01.", 37) == 0;
		if (dq)
			closedir(dq);
		assert_true(named);
	}
	registry_detach(&l->reg, l->fs.handles[--l->fs.nhandles]);
	lab_close(l);
	g_extra = false;
}

/* Whether STATE/images/img/bootset-v<v> exists. */
static bool bootset_file(struct lab *l, unsigned v)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/images/img/" STATEDIR_BOOTSET_FMT, l->state, v);
	return access(path, F_OK) == 0;
}

static void test_bootsets_learn_keep_inherit(void **state)
{
	struct lab *l = *state;
	/* scattered reads, the order a boot reads them: chunks 16, 0, 48 (and 0 again) */
	static const uint64_t offs[] = { 1u << 20, 0, 3u * (1u << 20) + 512, 4096 };
	struct bootset_entry first[3];
	char msg[256] = "";
	uint8_t buf[4096];
	unsigned newv = 0;
	struct client *c;
	struct backend *tap;
	json_t *j;

	lab_open(l);
	assert_int_equal(registry_add(&l->reg, NULL, PC1, "img", NULL, 0, false, msg, sizeof(msg)), 0);
	attach(l, PC1);   /* a login with no session: a boot begins */
	c = registry_find(&l->reg, PC1);
	assert_true(bootrec_active(&c->rec));
	{
		/* the login's io_stats hook: a firmware's session (iPXE) keeps
		 * the recording held however long it is quiet; the OS's
		 * releases it (storage/bootrec.h) */
		struct iscsi_io_stats io = { .firmware = true };
		registry_io_stats(&l->reg, &c->disk, PC1, &io);
		bootsets_tick(&l->reg, iostats_now_ns() + BOOTREC_SETTLE_NS + 1000000000LL);
		assert_true(bootrec_active(&c->rec));
		io = (struct iscsi_io_stats){ .firmware = false };
		registry_io_stats(&l->reg, &c->disk, PC1, &io);
	}
	tap = c->disk.tap;   /* what the LU reads through */
	assert_non_null(tap);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		assert_int_equal(tap->ops->read(tap, buf, offs[i], sizeof(buf)), 0);
		usleep(3000);   /* a set is kept sorted by (ms, chunk): distinct ms */
	}
	/* not settled yet: nothing merged */
	bootsets_tick(&l->reg, iostats_now_ns());
	assert_int_equal(l->img->versions[0].bs.n, 0);
	assert_false(bootset_file(l, 1));
	/* settled: merged into v1 and saved */
	bootsets_tick(&l->reg, iostats_now_ns() + BOOTREC_SETTLE_NS + 1000000000LL);
	assert_false(bootrec_active(&c->rec));
	assert_int_equal(l->img->versions[0].bs.n, 3);
	assert_int_equal(l->img->versions[0].bs.boots, 1);
	assert_true(bootset_file(l, 1));
	memcpy(first, l->img->versions[0].bs.e, sizeof(first));
	assert_int_equal(first[0].chunk, 16);   /* first-read order */
	assert_int_equal(first[1].chunk, 0);
	assert_int_equal(first[2].chunk, 48);
	pthread_mutex_lock(&l->reg.lock);
	j = bootset_json(&l->reg, l->img, 1);
	pthread_mutex_unlock(&l->reg.lock);
	assert_int_equal(json_integer_value(json_object_get(j, "bytes")), 3 * BOOTSET_CHUNK);
	assert_int_equal(json_integer_value(json_object_get(j, "boots")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "inherited_from")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "prefetch")), "none");
	json_decref(j);
	/* prefetch is off in this registry: refused as such */
	pthread_mutex_lock(&l->reg.lock);
	assert_int_equal(bootsets_prefetch(&l->reg, l->img, 1, "test"), -EPERM);
	pthread_mutex_unlock(&l->reg.lock);
	registry_detach(&l->reg, l->fs.handles[--l->fs.nhandles]);
	lab_close(l);

	/* a restart loads the same set */
	lab_open(l);
	assert_int_equal(l->img->versions[0].bs.n, 3);
	assert_int_equal(l->img->versions[0].bs.boots, 1);
	assert_memory_equal(l->img->versions[0].bs.e, first, sizeof(first));

	/* commit: v2 inherits v1's set, saved */
	assert_int_equal(image_edit(&l->reg, "img", ADMIN_PC, false, msg, sizeof(msg)), 0);
	assert_int_equal(image_commit(&l->reg, "img", "updates", false, &newv, msg, sizeof(msg)), 0);
	assert_int_equal(newv, 2);
	assert_int_equal(l->img->versions[1].bs.n, 3);
	assert_int_equal(l->img->versions[1].bs.inherited_from, 1);
	assert_int_equal(l->img->versions[1].bs.boots, 0);
	assert_true(bootset_file(l, 2));
	lab_close(l);
	lab_open(l);
	assert_int_equal(l->img->versions[1].bs.inherited_from, 1);
	assert_int_equal(l->img->versions[1].bs.n, 3);
	/* a version deleted takes its file with it */
	assert_int_equal(image_rollback(&l->reg, "img", 1, msg, sizeof(msg)), 0);
	assert_int_equal(image_delete(&l->reg, "img", 2, msg, sizeof(msg)), 0);
	assert_false(bootset_file(l, 2));
	assert_true(bootset_file(l, 1));
	lab_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_client_write_reset_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_fields_same_as_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_draft_made_and_discarded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maintainer_own_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomicfile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statedir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_seam, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boot_policy, setup, teardown),
		cmocka_unit_test(test_rules),
		cmocka_unit_test_setup_teardown(test_xdisk_luns_online, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xdisk_boot_policies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xdisk_maintenance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xdisk_quarantine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bootsets_learn_keep_inherit, setup, teardown),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
