/*
 * test_records.c - the refresh of a gateway of a cluster (lab/records.h:
 * registry_clients_refresh, image_refresh) without Ceph: two registries,
 * "gateways" A and B, over two state directories that start as copies
 * (so the image has one uid, as in a cluster), each with fake hooks.
 * A's records, as A saved them, are applied to B as a refresh would:
 *   - clients added on A appear on B with their settings; one removed on
 *     A goes from B; a removal of a client online on B ends its sessions
 *     there (it was forced); a client moved while online on B keeps its
 *     disk until its sessions end;
 *   - a draft opened on A is recorded on B, not opened; committed on A,
 *     it is gone from B with its fate, which a late commit on B names
 *     ("committed as v2 by gateway gwA at ..."); B has v2 current;
 *   - a record of another history (another uid) changes nothing;
 *   - extra disks (lab/xdisk.h): a PC's own attachment made on A reaches
 *     B's client (same LUN, policy), a group attachment made on A
 *     reaches B's PCs of the image through the image record, and a
 *     removal on A takes the disk away on B.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lab/clients.h"
#include "lab/images.h"
#include "lab/store.h"
#include "lab/xdisk.h"
#include "util/log.h"

#define BS 512
#define PC1 "iqn.2010-04.org.ipxe:pc01"
#define PC2 "iqn.2010-04.org.ipxe:pc02"
#define ADMIN_PC "iqn.2010-04.org.ipxe:admin"

struct gw {
	char state[128];
	struct registry reg;
	struct image *img, *games;
	unsigned end_calls;
	void *handles[4];
	unsigned nhandles;
};

struct two {
	char root[64];
	char image[128], games[128];
	struct gw a, b;
};

static int fake_add_target(void *ctx, struct iscsi_target *t)
{
	(void)ctx;
	(void)t;
	return 0;
}

static void fake_end_sessions(void *ctx, const char *initiator)
{
	struct gw *g = ctx;

	(void)initiator;
	g->end_calls++;
	while (g->nhandles)
		registry_detach(&g->reg, g->handles[--g->nhandles]);
}

static void gw_open(struct two *t, struct gw *g)
{
	memset(&g->reg, 0, sizeof(g->reg));
	g->end_calls = g->nhandles = 0;
	snprintf(g->reg.state, sizeof(g->reg.state), "%s", g->state);
	g->reg.default_policy = POLICY_PERSISTENT;
	g->reg.default_reset_at = -1;
	g->reg.hooks = (struct lab_hooks){ .ctx = g, .add_target = fake_add_target,
					   .end_sessions = fake_end_sessions };
	g->img = calloc(1, sizeof(*g->img));
	assert_non_null(g->img);
	assert_int_equal(image_open_source(g->img, "img", t->image, "iqn.2026-11.org.pristine:img", BS), 0);
	assert_int_equal(image_load(&g->reg, g->img), 0);
	assert_int_equal(registry_add_image(&g->reg, g->img), 0);
	g->games = calloc(1, sizeof(*g->games));
	assert_non_null(g->games);
	assert_int_equal(image_open_source(g->games, "games", t->games,
					   "iqn.2026-11.org.pristine:games", BS), 0);
	assert_int_equal(image_load(&g->reg, g->games), 0);
	assert_int_equal(registry_add_image(&g->reg, g->games), 0);
	assert_int_equal(registry_open(&g->reg), 0);
}

static void gw_close(struct gw *g)
{
	registry_close(&g->reg);
	for (unsigned i = 0; i < g->reg.nimages; i++) {
		image_close(g->reg.images[i]);
		free(g->reg.images[i]);
	}
	free(g->reg.images);
}

static int setup(void **state)
{
	struct two *t = calloc(1, sizeof(*t));
	char cmd[400];
	FILE *f;

	snprintf(t->root, sizeof(t->root), "/tmp/test_records.XXXXXX");
	if (!t || !mkdtemp(t->root))
		return -1;
	snprintf(t->image, sizeof(t->image), "%s/golden.raw", t->root);
	snprintf(t->a.state, sizeof(t->a.state), "%s/a", t->root);
	snprintf(t->b.state, sizeof(t->b.state), "%s/b", t->root);
	snprintf(t->games, sizeof(t->games), "%s/games.raw", t->root);
	for (int i = 0; i < 2; i++) {
		f = fopen(i ? t->games : t->image, "w");
		if (!f || ftruncate(fileno(f), 4 << 20))
			return -1;
		fclose(f);
	}
	mkdir(t->a.state, 0700);
	/* one history: B starts from A's records (one uid) */
	gw_open(t, &t->a);
	gw_close(&t->a);
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", t->a.state, t->b.state);
	if (system(cmd))
		return -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct two *t = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->root);
	if (system(cmd))
		return -1;
	free(t);
	return 0;
}

/* A's client records, as a refresh on another gateway reads them. */
static json_t *clients_of(struct gw *g)
{
	struct lab_store *st = registry_store(&g->reg);
	json_t *j = NULL;

	assert_int_equal(st->ops->clients_load(st, &j), 0);
	return j;
}

/* A's image record, stamped as store_rados stamps it. */
static json_t *image_of(struct gw *g)
{
	struct lab_store *st = registry_store(&g->reg);
	json_t *j = NULL;

	assert_int_equal(st->ops->image_load(st, "img", &j), 0);
	json_object_set_new(j, "saved_by", json_string("gwA"));
	json_object_set_new(j, "saved_at", json_integer(1700000000));
	return j;
}

static void refresh_clients(struct gw *g, json_t *j)
{
	pthread_mutex_lock(&g->reg.lock);
	assert_int_equal(registry_clients_refresh(&g->reg, j), 0);
	pthread_mutex_unlock(&g->reg.lock);
	json_decref(j);
}

static int refresh_image(struct gw *g, json_t *j)
{
	int rc;

	pthread_mutex_lock(&g->reg.lock);
	rc = image_refresh(&g->reg, g->img, j);
	pthread_mutex_unlock(&g->reg.lock);
	json_decref(j);
	return rc;
}

static void attach(struct gw *g, const char *initiator)
{
	struct scsi_target *scsi = NULL;
	void *handle = NULL;
	char msg[256] = "";

	assert_int_equal(registry_attach(&g->reg, &g->img->tgt, initiator, &scsi, &handle, msg,
					 sizeof(msg)), 0);
	g->handles[g->nhandles++] = handle;
}

/* g's client id's extra disk on games: its LUN (0 = none), its policy
 * into pol. */
static unsigned games_lun(struct gw *g, const char *id, char pol[32])
{
	unsigned lun = 0;
	json_t *js, *d;
	size_t i;

	pthread_mutex_lock(&g->reg.lock);
	js = client_disks_json(&g->reg, registry_find(&g->reg, id));
	pthread_mutex_unlock(&g->reg.lock);
	json_array_foreach(js, i, d)
		if (strcmp(json_string_value(json_object_get(d, "image")), "games") == 0) {
			lun = (unsigned)json_integer_value(json_object_get(d, "lun"));
			snprintf(pol, 32, "%s", json_string_value(json_object_get(d, "policy")));
		}
	json_decref(js);
	return lun;
}

static void test_xdisks_follow(void **state)
{
	struct two *t = *state;
	char pol[32] = "", msg[256] = "";

	gw_open(t, &t->a);
	gw_open(t, &t->b);
	assert_int_equal(registry_add(&t->a.reg, "pc1", PC1, "img", &(struct client_boot_fields){ 0 },
				      0, false, msg, sizeof(msg)), 0);
	assert_int_equal(registry_add(&t->a.reg, "pc2", PC2, "img", &(struct client_boot_fields){ 0 },
				      0, false, msg, sizeof(msg)), 0);
	refresh_clients(&t->b, clients_of(&t->a));
	assert_int_equal(games_lun(&t->b, "pc1", pol), 0);

	/* pc1's own attachment, made on A */
	assert_int_equal(registry_xdisk_add(&t->a.reg, "pc1", "games", "read-only", false, 0, msg,
					    sizeof(msg)), 0);
	refresh_clients(&t->b, clients_of(&t->a));
	assert_int_equal(games_lun(&t->b, "pc1", pol), 1);
	assert_string_equal(pol, "read-only");
	assert_int_equal(games_lun(&t->b, "pc2", pol), 0);

	/* the group's, made on A: pc2 gets it through img's record */
	assert_int_equal(registry_group_xdisk_add(&t->a.reg, "img", "games", "overlay", false, 0, msg,
						  sizeof(msg)), 0);
	assert_int_equal(refresh_image(&t->b, image_of(&t->a)), 0);
	refresh_clients(&t->b, clients_of(&t->a));
	assert_int_equal(games_lun(&t->b, "pc2", pol), 1);
	assert_string_equal(pol, "overlay");
	assert_int_equal(games_lun(&t->b, "pc1", pol), 1);
	assert_string_equal(pol, "read-only");      /* its own still wins */

	/* removed on A: gone on B */
	assert_int_equal(registry_group_xdisk_remove(&t->a.reg, "img", "games", msg, sizeof(msg)), 0);
	assert_int_equal(registry_xdisk_remove(&t->a.reg, "pc1", "games", msg, sizeof(msg)), 0);
	assert_int_equal(refresh_image(&t->b, image_of(&t->a)), 0);
	refresh_clients(&t->b, clients_of(&t->a));
	assert_int_equal(games_lun(&t->b, "pc1", pol), 0);
	assert_int_equal(games_lun(&t->b, "pc2", pol), 0);
	gw_close(&t->a);
	gw_close(&t->b);
}

static void test_clients_follow(void **state)
{
	struct two *t = *state;
	struct client_boot_fields mac = { .mac = "52:54:00:00:00:07" };
	struct client *c;
	char msg[256] = "";

	gw_open(t, &t->a);
	gw_open(t, &t->b);
	assert_int_equal(registry_add(&t->a.reg, "pc1", PC1, "img", &mac, 1 << 20, true, msg, sizeof(msg)), 0);
	assert_int_equal(registry_add(&t->a.reg, NULL, PC2, "img", &(struct client_boot_fields){ 0 }, 0,
				      false, msg, sizeof(msg)), 0);
	refresh_clients(&t->b, clients_of(&t->a));
	c = registry_find(&t->b.reg, "pc1");
	assert_non_null(c);
	assert_string_equal(c->initiator, PC1);
	assert_string_equal(c->mac, "52:54:00:00:00:07");
	assert_int_equal(c->disk.quota, 1 << 20);
	assert_non_null(registry_find(&t->b.reg, PC2));

	/* PC2 online on B, then removed on A (with --force there): its
	 * session on B is ended, it is gone from B */
	attach(&t->b, PC2);
	assert_int_equal(registry_remove(&t->a.reg, PC2, true, msg, sizeof(msg)), 0);
	refresh_clients(&t->b, clients_of(&t->a));
	assert_null(registry_find(&t->b.reg, PC2));
	assert_int_equal(t->b.end_calls, 1);

	/* pc1 online on B, its quota changed on A: settings follow, the
	 * disk it is on stays open */
	attach(&t->b, PC1);
	assert_int_equal(registry_set(&t->a.reg, "pc1", NULL, NULL, &(struct client_boot_fields){ 0 },
				      true, 2 << 20, false, msg, sizeof(msg)), 0);
	refresh_clients(&t->b, clients_of(&t->a));
	c = registry_find(&t->b.reg, "pc1");
	assert_non_null(c);
	assert_int_equal(c->disk.quota, 2 << 20);
	assert_non_null(c->disk.cow);
	assert_int_equal(c->disk.sessions, 1);
	assert_int_equal(t->b.end_calls, 1);
	registry_detach(&t->b.reg, t->b.handles[--t->b.nhandles]);
	gw_close(&t->b);
	gw_close(&t->a);
}

static void test_draft_follows(void **state)
{
	struct two *t = *state;
	char msg[256] = "";
	unsigned newv = 0;
	json_t *other;

	gw_open(t, &t->a);
	gw_open(t, &t->b);
	assert_int_equal(image_edit(&t->a.reg, "img", ADMIN_PC, false, msg, sizeof(msg)), 0);
	assert_int_equal(refresh_image(&t->b, image_of(&t->a)), 0);
	assert_non_null(t->b.img->draft);
	assert_null(t->b.img->draft->disk.cow);   /* recorded, not opened */
	assert_string_equal(t->b.img->draft->disk.initiator, ADMIN_PC);

	/* another history: refused, nothing changed */
	other = image_of(&t->a);
	json_object_set_new(other, "uid", json_string("0123456789abcdef"));
	json_object_set_new(other, "current", json_integer(1));
	assert_int_equal(refresh_image(&t->b, other), -EBADMSG);
	assert_non_null(t->b.img->draft);

	assert_int_equal(image_commit(&t->a.reg, "img", "through A", false, &newv, msg, sizeof(msg)), 0);
	assert_int_equal(newv, 2);
	assert_int_equal(refresh_image(&t->b, image_of(&t->a)), 0);
	assert_null(t->b.img->draft);
	assert_int_equal(t->b.img->nversions, 2);
	assert_int_equal(t->b.img->current, 2);
	assert_string_equal(t->b.img->versions[1].message, "through A");
	/* the late commit on B says what happened */
	assert_int_equal(image_commit(&t->b.reg, "img", "through B", false, &newv, msg, sizeof(msg)),
			 -EINVAL);
	assert_non_null(strstr(msg, "image img has no draft: it was committed as v2 by gateway gwA at"));
	/* a rollback on A follows too */
	assert_int_equal(image_rollback(&t->a.reg, "img", 1, msg, sizeof(msg)), 0);
	assert_int_equal(refresh_image(&t->b, image_of(&t->a)), 0);
	assert_int_equal(t->b.img->current, 1);
	gw_close(&t->b);
	gw_close(&t->a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clients_follow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_draft_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xdisks_follow, setup, teardown),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
