/*
 * fuzz_config.c - libFuzzer harness: the configuration file parser
 * (config_parse: line reader, libinih, every value and cross-check).
 * Input: the bytes of a pristine.conf.  The file's mode alternates between
 * 0600 and 0644 with the input's length, so the CHAP permission check runs
 * both ways.  A config that loads must keep the promises of config.h; one
 * that does not must leave nothing allocated and name a line in each
 * message.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "storage/rbd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What config.h promises of every config that loads. */
static void check(const struct config *c)
{
	if (c->nlisten < 1 || c->nlisten > CFG_MAX_LISTEN || c->nimages < 1 ||
	    c->state[0] != '/' || c->socket[0] != '/' || c->nop_interval > 3600)
		abort();
	if (c->default_image[0] && !cfg_image_find(c, c->default_image))
		abort();
	for (unsigned i = 0; i < c->nimages; i++) {
		const struct cfg_image *im = &c->images[i];
		struct rbd_spec sp;
		char why[256];
		/* exactly one source: an absolute path, or an RBD spec that
		 * parses again, with the cluster's ceph.conf named */
		if (!im->path[0] == !im->rbd[0] || (im->path[0] && im->path[0] != '/') ||
		    (im->rbd[0] && (rbd_spec_parse(im->rbd, &sp, why, sizeof(why)) ||
				    c->ceph_conf[0] != '/')) ||
		    !im->target[0] || (im->block_size != 512 && im->block_size != 4096))
			abort();
	}
	for (unsigned i = 0; i < c->nclients; i++) {
		const struct client_decl *cl = &c->clients[i];
		if (!cl->initiator[0] || !cfg_image_find(c, cl->image) || cl->nips > RULES_MAX_IPS)
			abort();
		if ((cl->policy == POLICY_SCHEDULED) != (cl->reset_at_min >= 0) ||
		    cl->reset_at_min >= 24 * 60)
			abort();
		if (!cl->chap_user[0] != !cl->chap_secret[0] ||
		    !cl->mutual_user[0] != !cl->mutual_secret[0] ||
		    (cl->mutual_user[0] && !cl->chap_user[0]))
			abort();
		if (cfg_client_find(c, cl->initiator) != &c->clients[i])
			abort();
	}
}

/* Every message of err begins "fuzz.conf:LINE: " with LINE >= 1, but the
 * last, which may be the "N more errors" summary.  Quoted text from the
 * input never holds a newline, so each newline starts a message. */
static bool lines_ok(const char *err)
{
	static const char pfx[] = "fuzz.conf:";

	for (const char *m = err; m; m = strchr(m, '\n')) {
		if (*m == '\n')
			m++;
		if (strncmp(m, pfx, sizeof(pfx) - 1) != 0)
			return false;
		m += sizeof(pfx) - 1;
		if (!(*m >= '1' && *m <= '9') && !(*m == ' ' && !strchr(m, '\n')))
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char err[16384];    /* never cut: 20 messages fit */
	struct config c;
	int rc;

	rc = config_parse("fuzz.conf", (const char *)data, size, size & 1 ? 0644 : 0600,
			  &c, err, sizeof(err));
	if (rc == 0) {
		check(&c);
		config_free(&c);
	} else if (rc != -EINVAL && rc != -EFBIG && rc != -ENOMEM) {
		abort();
	} else if (c.images || c.clients || strlen(err) >= sizeof(err) || !lines_ok(err)) {
		abort();
	}
	return 0;
}
