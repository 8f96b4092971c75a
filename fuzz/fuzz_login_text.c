/*
 * fuzz_login_text.c - libFuzzer harness: iSCSI text key parsing and
 * negotiation (kv_parse + neg_key), the code every login PDU's data goes
 * through before anything else.  Input: raw text bytes as a Login Request
 * would carry them.  The answer must stay within the text limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct neg_prefs prefs = {
	.mrdsl = 262144, .max_burst = 16773120, .first_burst = 262144, .max_r2t = 8,
	.allow_digests = true,
};

struct ctx {
	struct negotiation neg;
	struct kvbuf out;
};

static int on_key(void *vc, const char *key, const char *val)
{
	struct ctx *c = vc;
	int rc = neg_key(&c->neg, key, val, &c->out);
	if (rc == 1)                      /* security keys: what login.c does */
		iscsi_name_valid(val ? val : "");
	return rc < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iscsi_params p;
	struct ctx c;
	char *text;

	if (size > ISCSI_TEXT_MAX)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	params_defaults(&p, &prefs);
	neg_init(&c.neg, &p, &prefs, size & 1);  /* login and full feature phase */
	memset(&c.out, 0, sizeof(c.out));
	kv_parse(text, size, on_key, &c);
	neg_finish(&c.neg, &c.out);
	if (c.out.len > ISCSI_TEXT_MAX || p.first_burst > p.max_burst ||
	    p.mrdsl_tx < 512 || p.mrdsl_tx > 16777215)
		abort();
	kvbuf_free(&c.out);
	free(text);
	return 0;
}
