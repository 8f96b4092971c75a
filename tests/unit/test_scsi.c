/*
 * test_scsi.c - unit tests of the SCSI layer: CDBs driven straight into
 * scsi_target_exec() over raw backends on temporary files, one LU with
 * 512-byte and one with 4096-byte blocks, plus a read-only LU; and LUs
 * added and removed while other threads run commands on them.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "scsi/scsi.h"
#include "storage/backend.h"

#define DISK_BYTES (4u << 20)

struct fixture {
	char path[3][64];
	struct backend *be[3];
	struct scsi_target *t;
	struct scsi_nexus n1, n2;
};

static struct fixture F;

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	F.t = scsi_target_new();
	assert_non_null(F.t);
	for (int i = 0; i < 3; i++) {
		snprintf(F.path[i], sizeof(F.path[i]), "/tmp/pristine-unit-XXXXXX");
		int fd = mkstemp(F.path[i]);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, DISK_BYTES), 0);
		close(fd);
		assert_int_equal(backend_raw_open(F.path[i], i != 2, &F.be[i]), 0);
		struct scsi_lu_config cfg = {
			.be = F.be[i], .block_size = i == 1 ? 4096 : 512, .read_only = i == 2,
			.vendor = "PRISTINE", .product = "unit", .revision = "0001",
			.serial = i == 0 ? "S0" : i == 1 ? "S1" : "S2",
			.naa_id = 0x123456789abcdeull + (uint64_t)i,
			.target_name = "iqn.2024-01.org.pristine:unit",
		};
		assert_int_equal(scsi_target_add_lu(F.t, (uint64_t)i, &cfg), 0);
	}
	F.n1.id = 1;
	snprintf(F.n1.initiator_name, sizeof(F.n1.initiator_name), "iqn.a");
	snprintf(F.n1.port_name, sizeof(F.n1.port_name), "iqn.a,i,0x000000000001");
	F.n2.id = 2;
	snprintf(F.n2.initiator_name, sizeof(F.n2.initiator_name), "iqn.b");
	snprintf(F.n2.port_name, sizeof(F.n2.port_name), "iqn.b,i,0x000000000002");
	scsi_target_nexus_new(F.t, &F.n1);
	scsi_target_nexus_new(F.t, &F.n2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	scsi_target_nexus_gone(F.t, &F.n1);
	scsi_target_nexus_gone(F.t, &F.n2);
	scsi_target_free(F.t);
	for (int i = 0; i < 3; i++) {
		backend_close(F.be[i]);
		unlink(F.path[i]);
	}
	return 0;
}

/* Run one command; the caller frees cmd->data_in. */
static struct scsi_cmd run(const struct scsi_nexus *n, uint64_t lun, const uint8_t *cdb,
			   const void *out, uint32_t out_len, uint32_t edtl)
{
	static uint8_t cdb16[16];
	struct scsi_cmd c;

	memset(&c, 0, sizeof(c));
	memset(cdb16, 0, sizeof(cdb16));
	memcpy(cdb16, cdb, 16);
	c.cdb = cdb16;
	c.cdb_len = 16;
	c.lun = lun;
	c.nexus = n;
	c.attr = SCSI_ATTR_SIMPLE;
	c.write = out != NULL;
	c.read = out == NULL && edtl > 0;
	c.edtl = edtl;
	c.data_out = out;
	c.data_out_len = out ? out_len : 0;
	scsi_target_exec(F.t, &c);
	return c;
}

/* Sense key and ASC/ASCQ of a CHECK CONDITION, either format. */
static void sense_of(const struct scsi_cmd *c, uint8_t *key, uint16_t *asc)
{
	assert_int_equal(c->status, SAM_STAT_CHECK_CONDITION);
	if ((c->sense[0] & 0x7f) == 0x72) {
		*key = c->sense[1] & 0x0f;
		*asc = (uint16_t)(c->sense[2] << 8 | c->sense[3]);
	} else {
		*key = c->sense[2] & 0x0f;
		*asc = (uint16_t)(c->sense[12] << 8 | c->sense[13]);
	}
}

static void expect_sense(const struct scsi_cmd *c, uint8_t key, uint16_t asc)
{
	uint8_t k;
	uint16_t a;

	sense_of(c, &k, &a);
	assert_int_equal(k, key);
	assert_int_equal(a, asc);
}

static struct scsi_cmd rw10(const struct scsi_nexus *n, uint64_t lun, bool write, uint32_t lba,
			    uint16_t blocks, const void *out, uint32_t edtl)
{
	uint8_t cdb[16] = { write ? 0x2a : 0x28 };
	put32(cdb + 2, lba);
	cdb[7] = (uint8_t)(blocks >> 8);
	cdb[8] = (uint8_t)blocks;
	return run(n, lun, cdb, out, edtl, edtl);
}

static struct scsi_cmd inquiry(uint64_t lun, bool evpd, uint8_t page)
{
	uint8_t cdb[16] = { 0x12, evpd, page, 0x01, 0x00 };
	return run(&F.n1, lun, cdb, NULL, 0, 256);
}

/* The 16-byte NAA designator of an LU's page 0x83. */
static void naa_of(uint64_t lun, uint8_t out[16])
{
	struct scsi_cmd c = inquiry(lun, true, 0x83);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_true(c.data_in_len >= 24);
	assert_int_equal(c.data_in[5] & 0x0f, 3);       /* designator type NAA */
	assert_int_equal(c.data_in[7], 16);
	assert_int_equal(c.data_in[8] >> 4, 6);          /* NAA 6 */
	memcpy(out, c.data_in + 8, 16);
	free(c.data_in);
}

static void test_inquiry_vpd(void **state)
{
	(void)state;
	struct scsi_cmd c = inquiry(0, false, 0);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_true(c.data_in_len >= 36);
	assert_int_equal(c.data_in[0], 0);
	assert_int_equal(c.data_in[2], 6);
	assert_memory_equal(c.data_in + 8, "PRISTINE", 8);
	free(c.data_in);

	c = inquiry(0, true, 0x00);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	const uint8_t want[] = { 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 };
	assert_int_equal(c.data_in[3], sizeof(want));
	assert_memory_equal(c.data_in + 4, want, sizeof(want));
	free(c.data_in);

	c = inquiry(1, true, 0x80);
	assert_memory_equal(c.data_in + 4, "S1", 2);
	free(c.data_in);

	uint8_t a[16], b[16];
	naa_of(0, a);
	naa_of(1, b);
	assert_memory_not_equal(a, b, 16);

	c = inquiry(1, true, 0xb0);
	assert_int_equal(c.data_in[3], 0x3c);
	assert_true(get32(c.data_in + 8) > 0);           /* max transfer length */
	assert_true(get32(c.data_in + 20) > 0);          /* max unmap LBA count */
	free(c.data_in);

	c = inquiry(0, true, 0xb1);
	assert_int_equal(c.data_in[5], 1);               /* non-rotating */
	free(c.data_in);

	c = inquiry(0, true, 0xb2);
	assert_int_equal(c.data_in[5] & 0xe4, 0xe4);     /* LBPU LBPWS LBPWS10 LBPRZ */
	free(c.data_in);

	c = inquiry(0, true, 0x42);
	expect_sense(&c, 0x5, 0x2400);

	c = inquiry(0, false, 0x80);                     /* page without EVPD */
	expect_sense(&c, 0x5, 0x2400);
	assert_int_equal(c.sense[15], 0xc0);             /* SKSV, C/D: CDB */
	assert_int_equal(c.sense[17], 2);                /* field pointer: byte 2 */

	c = inquiry(7, false, 0);                        /* no such LU */
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(c.data_in[0], 0x7f);
	free(c.data_in);
}

static void test_read_capacity(void **state)
{
	(void)state;
	for (uint64_t lun = 0; lun < 2; lun++) {
		uint32_t bs = lun ? 4096 : 512;
		uint8_t cdb10[16] = { 0x25 };
		struct scsi_cmd c = run(&F.n1, lun, cdb10, NULL, 0, 8);
		assert_int_equal(c.status, SAM_STAT_GOOD);
		assert_int_equal(get32(c.data_in), DISK_BYTES / bs - 1);
		assert_int_equal(get32(c.data_in + 4), bs);
		free(c.data_in);

		uint8_t cdb16[16] = { 0x9e, 0x10 };
		put32(cdb16 + 10, 32);
		c = run(&F.n1, lun, cdb16, NULL, 0, 32);
		assert_int_equal(c.status, SAM_STAT_GOOD);
		assert_int_equal(get32(c.data_in + 4), DISK_BYTES / bs - 1);
		assert_int_equal(get32(c.data_in + 8), bs);
		assert_int_equal(c.data_in[14] & 0xc0, 0xc0);   /* LBPME, LBPRZ */
		free(c.data_in);
	}
}

static void test_read_write(void **state)
{
	(void)state;
	for (uint64_t lun = 0; lun < 2; lun++) {
		uint32_t bs = lun ? 4096 : 512;
		uint8_t *buf = malloc(4 * bs);
		for (uint32_t i = 0; i < 4 * bs; i++)
			buf[i] = (uint8_t)(i * 7 + lun);
		struct scsi_cmd c = rw10(&F.n1, lun, true, 5, 4, buf, 4 * bs);
		assert_int_equal(c.status, SAM_STAT_GOOD);
		assert_int_equal(c.xfer_len, 4 * bs);
		c = rw10(&F.n1, lun, false, 5, 4, NULL, 4 * bs);
		assert_int_equal(c.status, SAM_STAT_GOOD);
		assert_int_equal(c.data_in_len, 4 * bs);
		assert_memory_equal(c.data_in, buf, 4 * bs);
		free(c.data_in);

		/* WRITE(16) with FUA, READ(16) back */
		uint8_t cdb[16] = { 0x8a, 0x08 };
		put64(cdb + 2, 9);
		put32(cdb + 10, 1);
		c = run(&F.n1, lun, cdb, buf, bs, bs);
		assert_int_equal(c.status, SAM_STAT_GOOD);
		cdb[0] = 0x88;
		cdb[1] = 0;
		c = run(&F.n1, lun, cdb, NULL, 0, bs);
		assert_memory_equal(c.data_in, buf, bs);
		free(c.data_in);
		free(buf);
	}
}

static void test_out_of_range(void **state)
{
	(void)state;
	uint32_t nb = DISK_BYTES / 512;
	struct scsi_cmd c = rw10(&F.n1, 0, false, nb - 1, 2, NULL, 1024);
	expect_sense(&c, 0x5, 0x2100);
	c = rw10(&F.n1, 0, false, nb + 1, 0, NULL, 0);
	expect_sense(&c, 0x5, 0x2100);
	c = rw10(&F.n1, 0, false, nb, 0, NULL, 0);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	c = rw10(&F.n1, 1, false, DISK_BYTES / 4096, 1, NULL, 4096);
	expect_sense(&c, 0x5, 0x2100);
	uint8_t bad[16] = { 0x28, 0x20 };                  /* RDPROTECT=1 */
	c = run(&F.n1, 0, bad, NULL, 0, 0);
	expect_sense(&c, 0x5, 0x2400);
	uint8_t unk[16] = { 0xc7 };
	c = run(&F.n1, 0, unk, NULL, 0, 0);
	expect_sense(&c, 0x5, 0x2000);
}

static void test_read_only(void **state)
{
	(void)state;
	uint8_t buf[512] = { 1 };
	struct scsi_cmd c = rw10(&F.n1, 2, true, 0, 1, buf, 512);
	expect_sense(&c, 0x7, 0x2700);
	uint8_t param[24] = { 0, 22, 0, 16 };
	put64(param + 8, 0);
	put32(param + 16, 1);
	uint8_t unmap[16] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 24 };
	c = run(&F.n1, 2, unmap, param, 24, 24);
	expect_sense(&c, 0x7, 0x2700);
	uint8_t ws[16] = { 0x93, 0x08 };
	put32(ws + 10, 1);
	c = run(&F.n1, 2, ws, NULL, 0, 0);
	expect_sense(&c, 0x7, 0x2700);
	c = rw10(&F.n1, 2, false, 0, 1, NULL, 512);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	free(c.data_in);
	uint8_t ms[16] = { 0x1a, 0x08, 0x3f, 0, 255 };
	c = run(&F.n1, 2, ms, NULL, 0, 255);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(c.data_in[2] & 0x80, 0x80);      /* WP */
	free(c.data_in);
}

static void test_unmap_reads_zeros(void **state)
{
	(void)state;
	for (uint64_t lun = 0; lun < 2; lun++) {
		uint32_t bs = lun ? 4096 : 512;
		uint8_t *buf = malloc(8 * bs), *zero = calloc(1, 8 * bs);
		memset(buf, 0xab, 8 * bs);
		struct scsi_cmd c = rw10(&F.n1, lun, true, 16, 8, buf, 8 * bs);
		assert_int_equal(c.status, SAM_STAT_GOOD);
		uint8_t param[24] = { 0, 22, 0, 16 };
		put64(param + 8, 16);
		put32(param + 16, 8);
		uint8_t unmap[16] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 24 };
		c = run(&F.n1, lun, unmap, param, 24, 24);
		assert_int_equal(c.status, SAM_STAT_GOOD);
		c = rw10(&F.n1, lun, false, 16, 8, NULL, 8 * bs);
		assert_memory_equal(c.data_in, zero, 8 * bs);
		free(c.data_in);

		/* WRITE SAME(16) with UNMAP also yields zeros */
		c = rw10(&F.n1, lun, true, 16, 8, buf, 8 * bs);
		uint8_t ws[16] = { 0x93, 0x08 };
		put64(ws + 2, 16);
		put32(ws + 10, 8);
		c = run(&F.n1, lun, ws, buf, bs, bs);
		assert_int_equal(c.status, SAM_STAT_GOOD);
		c = rw10(&F.n1, lun, false, 16, 8, NULL, 8 * bs);
		assert_memory_equal(c.data_in, zero, 8 * bs);
		free(c.data_in);

		/* GET LBA STATUS answers for the LBA asked */
		uint8_t gls[16] = { 0x9e, 0x12 };
		put64(gls + 2, 16);
		put32(gls + 10, 24);
		c = run(&F.n1, lun, gls, NULL, 0, 24);
		assert_int_equal(c.status, SAM_STAT_GOOD);
		assert_int_equal(get32(c.data_in + 12), 16);
		free(c.data_in);
		free(buf);
		free(zero);
	}
}

static void test_compare_and_write(void **state)
{
	(void)state;
	uint8_t data[1024];
	memset(data, 'A', 512);
	struct scsi_cmd c = rw10(&F.n1, 0, true, 40, 1, data, 512);
	memset(data, 'A', 512);
	data[100] = 'X';
	memset(data + 512, 'B', 512);
	uint8_t caw[16] = { 0x89 };
	put64(caw + 2, 40);
	caw[13] = 1;
	c = run(&F.n1, 0, caw, data, 1024, 1024);
	expect_sense(&c, 0xe, 0x1d00);
	assert_int_equal(c.sense[0], 0xf0);               /* VALID, fixed */
	assert_int_equal(get32(c.sense + 3), 100);
	c = rw10(&F.n1, 0, false, 40, 1, NULL, 512);
	assert_int_equal(c.data_in[100], 'A');
	free(c.data_in);
	data[100] = 'A';
	c = run(&F.n1, 0, caw, data, 1024, 1024);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	c = rw10(&F.n1, 0, false, 40, 1, NULL, 512);
	assert_memory_equal(c.data_in, data + 512, 512);
	free(c.data_in);
	c = run(&F.n1, 0, caw, data, 512, 512);           /* wrong Data-Out size */
	expect_sense(&c, 0x5, 0x2400);
}

static struct scsi_cmd prout(const struct scsi_nexus *n, uint8_t sa, uint8_t type,
			     uint64_t key, uint64_t sakey)
{
	uint8_t p[24] = { 0 };
	put64(p, key);
	put64(p + 8, sakey);
	uint8_t cdb[16] = { 0x5f, sa, type, 0, 0, 0, 0, 0, 24 };
	return run(n, 0, cdb, p, 24, 24);
}

static void test_persistent_reservations(void **state)
{
	(void)state;
	uint8_t buf[512] = { 0 };
	assert_int_equal(prout(&F.n1, 0, 0, 0, 0x1111).status, SAM_STAT_GOOD);
	assert_int_equal(prout(&F.n2, 6, 0, 0, 0x2222).status, SAM_STAT_GOOD);
	/* re-register with a wrong key conflicts */
	assert_int_equal(prout(&F.n1, 0, 0, 0, 0x3333).status, SAM_STAT_RESERVATION_CONFLICT);
	/* write exclusive by n1 */
	assert_int_equal(prout(&F.n1, 1, 1, 0x1111, 0).status, SAM_STAT_GOOD);
	struct scsi_cmd c = rw10(&F.n2, 0, true, 0, 1, buf, 512);
	assert_int_equal(c.status, SAM_STAT_RESERVATION_CONFLICT);
	c = rw10(&F.n2, 0, false, 0, 1, NULL, 512);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	free(c.data_in);
	c = rw10(&F.n1, 0, true, 0, 1, buf, 512);
	assert_int_equal(c.status, SAM_STAT_GOOD);

	uint8_t rk[16] = { 0x5e, 0x00, 0, 0, 0, 0, 0, 0, 64 };
	c = run(&F.n2, 0, rk, NULL, 0, 64);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(get32(c.data_in + 4), 16);
	free(c.data_in);
	uint8_t rr[16] = { 0x5e, 0x01, 0, 0, 0, 0, 0, 0, 64 };
	c = run(&F.n2, 0, rr, NULL, 0, 64);
	assert_int_equal(get32(c.data_in + 4), 16);
	assert_int_equal(c.data_in[21], 1);
	free(c.data_in);

	/* n2 preempts n1: n1 loses its registration and gets a UA */
	assert_int_equal(prout(&F.n2, 4, 3, 0x2222, 0x1111).status, SAM_STAT_GOOD);
	uint8_t tur[16] = { 0 };
	c = run(&F.n1, 0, tur, NULL, 0, 0);
	expect_sense(&c, 0x6, 0x2a05);
	c = rw10(&F.n1, 0, false, 0, 1, NULL, 512);
	assert_int_equal(c.status, SAM_STAT_RESERVATION_CONFLICT);   /* EA held by n2 */
	c = run(&F.n1, 0, tur, NULL, 0, 0);                          /* TUR is allowed */
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(prout(&F.n2, 3, 0, 0x2222, 0).status, SAM_STAT_GOOD);   /* CLEAR */
	c = run(&F.n1, 0, tur, NULL, 0, 0);
	assert_int_equal(c.status, SAM_STAT_GOOD);

	/* SPC-2 RESERVE conflicts for the other nexus until released */
	uint8_t res[16] = { 0x16 }, rel[16] = { 0x17 };
	assert_int_equal(run(&F.n1, 0, res, NULL, 0, 0).status, SAM_STAT_GOOD);
	assert_int_equal(run(&F.n2, 0, res, NULL, 0, 0).status, SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(run(&F.n2, 0, rel, NULL, 0, 0).status, SAM_STAT_GOOD);
	assert_int_equal(run(&F.n2, 0, tur, NULL, 0, 0).status, SAM_STAT_RESERVATION_CONFLICT);
	scsi_target_nexus_gone(F.t, &F.n1);               /* nexus loss releases it */
	scsi_target_nexus_new(F.t, &F.n1);
	assert_int_equal(run(&F.n2, 0, tur, NULL, 0, 0).status, SAM_STAT_GOOD);
}

static void test_sense_formats_and_ua(void **state)
{
	(void)state;
	/* D_SENSE on via MODE SELECT(6) of the control page */
	uint8_t ms[16] = { 0x1a, 0x08, 0x0a, 0, 255 };
	struct scsi_cmd c = run(&F.n1, 0, ms, NULL, 0, 255);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	uint8_t page[16] = { 0 };
	memcpy(page + 4, c.data_in + 4, 12);
	free(c.data_in);
	page[4 + 2] |= 0x04;
	uint8_t sel[16] = { 0x15, 0x10, 0, 0, 16 };
	c = run(&F.n1, 0, sel, page, 16, 16);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	c = rw10(&F.n1, 0, false, 0xffffffff, 1, NULL, 512);
	assert_int_equal(c.sense[0], 0x72);
	expect_sense(&c, 0x5, 0x2100);
	/* the other nexus is told that mode parameters changed */
	uint8_t tur[16] = { 0 };
	c = run(&F.n2, 0, tur, NULL, 0, 0);
	expect_sense(&c, 0x6, 0x2a01);
	page[4 + 2] &= (uint8_t)~0x04;
	c = run(&F.n1, 0, sel, page, 16, 16);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	c = run(&F.n2, 0, tur, NULL, 0, 0);
	expect_sense(&c, 0x6, 0x2a01);
	c = rw10(&F.n1, 0, false, 0xffffffff, 1, NULL, 512);
	assert_int_equal(c.sense[0], 0x70);

	/* saved values cannot be read */
	uint8_t saved[16] = { 0x1a, 0, 0xc8, 0, 255 };
	c = run(&F.n1, 0, saved, NULL, 0, 255);
	expect_sense(&c, 0x5, 0x3900);

	/* LUN reset: every nexus sees the UA, REQUEST SENSE reports it */
	assert_int_equal(scsi_target_lun_reset(F.t, 0, &F.n1), 0);
	uint8_t rs[16] = { 0x03, 0, 0, 0, 252 };
	c = run(&F.n1, 0, rs, NULL, 0, 252);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(c.data_in[2] & 0x0f, 0x6);
	assert_int_equal(c.data_in[12], 0x29);
	free(c.data_in);
	c = run(&F.n1, 0, tur, NULL, 0, 0);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	c = run(&F.n2, 0, tur, NULL, 0, 0);
	expect_sense(&c, 0x6, 0x2903);
	assert_int_equal(scsi_target_lun_reset(F.t, 9, &F.n1), 1);
}

static void test_residuals(void **state)
{
	(void)state;
	/* READ of one block, EDTL 200: 200 bytes, xfer_len one block */
	struct scsi_cmd c = rw10(&F.n1, 0, false, 0, 1, NULL, 200);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(c.data_in_len, 200);
	assert_int_equal(c.xfer_len, 512);
	free(c.data_in);

	/* WRITE of two blocks with EDTL of one: only the first is written */
	uint8_t a[1024], b[1024];
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	c = rw10(&F.n1, 0, true, 60, 2, a, 1024);
	uint8_t cdb[16] = { 0x2a };
	put32(cdb + 2, 60);
	cdb[8] = 2;
	c = run(&F.n1, 0, cdb, b, 512, 512);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(c.xfer_len, 1024);
	c = rw10(&F.n1, 0, false, 60, 2, NULL, 1024);
	assert_memory_equal(c.data_in, b, 512);
	assert_memory_equal(c.data_in + 512, a, 512);
	free(c.data_in);

	/* INQUIRY: xfer_len is what was produced, within the allocation */
	uint8_t inq[16] = { 0x12, 0, 0, 0, 255 };
	c = run(&F.n1, 0, inq, NULL, 0, 255);
	assert_true(c.xfer_len < 255);
	assert_int_equal(c.data_in_len, c.xfer_len);
	free(c.data_in);
	inq[4] = 4;
	c = run(&F.n1, 0, inq, NULL, 0, 4);
	assert_int_equal(c.xfer_len, 4);
	assert_int_equal(c.data_in_len, 4);
	free(c.data_in);
}

static void test_report_luns_and_opcodes(void **state)
{
	(void)state;
	uint8_t rl[16] = { 0xa0 };
	put32(rl + 6, 256);
	struct scsi_cmd c = run(&F.n1, 5, rl, NULL, 0, 256);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(get32(c.data_in), 24);
	free(c.data_in);

	uint8_t rsoc[16] = { 0xa3, 0x0c, 0x01, 0x28 };
	put32(rsoc + 6, 64);
	c = run(&F.n1, 0, rsoc, NULL, 0, 64);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(c.data_in[1] & 0x07, 3);
	assert_int_equal(c.data_in[3], 10);
	assert_int_equal(c.data_in[4], 0x28);
	assert_int_equal(c.data_in[5] & 0x18, 0x18);      /* DPO, FUA */
	free(c.data_in);
	rsoc[2] = 0x01;
	rsoc[3] = 0x9e;                                    /* has service actions */
	c = run(&F.n1, 0, rsoc, NULL, 0, 64);
	expect_sense(&c, 0x5, 0x2400);
	/* reserved bit in a CDB is refused with a bit pointer */
	uint8_t tur[16] = { 0x00, 0x01 };
	c = run(&F.n1, 0, tur, NULL, 0, 0);
	expect_sense(&c, 0x5, 0x2400);
	assert_int_equal(c.sense[15], 0xc8);              /* SKSV, C/D, BPV, bit 0 */
	assert_int_equal(c.sense[17], 1);
}

static void test_extended_copy(void **state)
{
	(void)state;
	uint8_t data[2048];
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);
	struct scsi_cmd c = rw10(&F.n1, 0, true, 100, 4, data, 2048);
	assert_int_equal(c.status, SAM_STAT_GOOD);

	uint8_t p[16 + 32 + 28] = { 0 };
	p[0] = 5;                                          /* list id */
	p[3] = 32;                                         /* one CSCD */
	p[11] = 28;                                        /* one segment */
	uint8_t *t = p + 16;
	t[0] = 0xe4;
	t[4] = 0x01;
	t[5] = 0x03;
	t[7] = 16;
	naa_of(0, t + 8);
	t[30] = 0x02;                                      /* block size 512 */
	uint8_t *sg = p + 48;
	sg[0] = 0x02;
	sg[3] = 0x18;
	sg[11] = 4;                                        /* 4 blocks */
	put64(sg + 12, 100);
	put64(sg + 20, 200);
	uint8_t xc[16] = { 0x83 };
	put32(xc + 10, sizeof(p));
	c = run(&F.n1, 0, xc, p, sizeof(p), sizeof(p));
	assert_int_equal(c.status, SAM_STAT_GOOD);
	c = rw10(&F.n1, 0, false, 200, 4, NULL, 2048);
	assert_memory_equal(c.data_in, data, 2048);
	free(c.data_in);

	uint8_t rcr[16] = { 0x84, 0x00, 5 };
	put32(rcr + 10, 64);
	c = run(&F.n1, 0, rcr, NULL, 0, 64);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(c.data_in[4], 0x01);              /* completed */
	assert_int_equal(get32(c.data_in + 8), 2048);
	free(c.data_in);
	c = run(&F.n2, 0, rcr, NULL, 0, 64);               /* other nexus: none */
	expect_sense(&c, 0x5, 0x2400);

	/* a CSCD nobody has: COPY ABORTED */
	t[8 + 15] ^= 0xff;
	c = run(&F.n1, 0, xc, p, sizeof(p), sizeof(p));
	expect_sense(&c, 0xa, 0x0d02);
	c = run(&F.n1, 0, rcr, NULL, 0, 64);               /* failed copy: no status */
	expect_sense(&c, 0x5, 0x2400);
}

/* A backend whose every call fails with fake_err. */
static int fake_err;
static int fake_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	(void)be; (void)buf; (void)off; (void)len;
	return fake_err;
}
static int fake_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	(void)be; (void)buf; (void)off; (void)len; (void)fua;
	return fake_err;
}
static int fake_flush(struct backend *be)
{
	(void)be;
	return fake_err;
}
static void fake_close(struct backend *be)
{
	(void)be;
}

static void test_backend_errors(void **state)
{
	(void)state;
	static const struct backend_ops ops = {
		.read = fake_read, .write = fake_write, .flush = fake_flush, .close = fake_close,
	};
	struct backend be = { .ops = &ops, .size = 1 << 20 };
	struct scsi_lu_config cfg = { .be = &be, .block_size = 512, .serial = "F" };
	assert_int_equal(scsi_target_add_lu(F.t, 3, &cfg), 0);
	uint8_t buf[512] = { 0 };
	const struct { int err; uint8_t wkey; uint16_t wasc; uint16_t rasc; } cases[] = {
		{ -ENOSPC, 0x7, 0x2707, 0x1100 },
		{ -EDQUOT, 0x7, 0x2707, 0x1100 },
		{ -EROFS, 0x7, 0x2700, 0x1100 },
		{ -EIO, 0x3, 0x0c00, 0x1100 },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_err = cases[i].err;
		struct scsi_cmd c = rw10(&F.n1, 3, true, 0, 1, buf, 512);
		expect_sense(&c, cases[i].wkey, cases[i].wasc);
		c = rw10(&F.n1, 3, false, 0, 1, NULL, 512);
		if (cases[i].err == -EIO)
			expect_sense(&c, 0x3, cases[i].rasc);
		else
			assert_int_equal(c.status, SAM_STAT_CHECK_CONDITION);
		assert_null(c.data_in);
	}
	/* no unmap op: no thin provisioning advertised */
	struct scsi_cmd c = inquiry(3, true, 0xb2);
	assert_int_equal(c.data_in[5], 0);
	free(c.data_in);
}

/* ---- LUs added and removed while sessions run ---- */

/* The LUN list of a REPORT LUNS by n (single-level LUNs < 256). */
static unsigned report_luns(const struct scsi_nexus *n, uint64_t *luns, unsigned max)
{
	uint8_t rl[16] = { 0xa0 };
	put32(rl + 6, 256);
	struct scsi_cmd c = run(n, 0, rl, NULL, 0, 256);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	unsigned count = get32(c.data_in) / 8;
	assert_true(count <= max);
	for (unsigned i = 0; i < count; i++)
		luns[i] = c.data_in[8 + 8 * i + 1];
	free(c.data_in);
	return count;
}

/* The LU config the fixture gave LUN i (its backend F.be[i]). */
static struct scsi_lu_config lu_cfg(int i)
{
	return (struct scsi_lu_config){
		.be = F.be[i], .block_size = i == 1 ? 4096 : 512, .read_only = i == 2,
		.serial = "R", .naa_id = 0x42 + (uint64_t)i,
		.target_name = "iqn.2024-01.org.pristine:unit",
	};
}

static void expect_absent(const struct scsi_nexus *n, uint64_t lun)
{
	uint8_t tur[16] = { 0 };
	struct scsi_cmd c = run(n, lun, tur, NULL, 0, 0);
	expect_sense(&c, 0x5, 0x2500);
	c = rw10(n, lun, false, 0, 1, NULL, 4096);
	expect_sense(&c, 0x5, 0x2500);
	assert_null(c.data_in);
	/* INQUIRY: peripheral qualifier 3, no device type */
	c = inquiry(lun, false, 0);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(c.data_in[0], 0x7f);
	free(c.data_in);
	/* REQUEST SENSE: LOGICAL UNIT NOT SUPPORTED as its data */
	uint8_t rs[16] = { 0x03, 0, 0, 0, 252 };
	c = run(n, lun, rs, NULL, 0, 252);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(c.data_in[2] & 0x0f, 0x5);
	assert_int_equal(c.data_in[12], 0x25);
	free(c.data_in);
	assert_false(scsi_target_has_lun(F.t, lun));
	assert_int_equal(scsi_target_lun_reset(F.t, lun, n), 1);
}

/* REPORT LUNS before and after a removal; a removed LUN answers as one
 * that never existed; the LUN can be added again, and starts clean. */
static void test_remove_lu(void **state)
{
	(void)state;
	uint64_t luns[SCSI_MAX_LUNS];
	uint8_t pat[4096];

	memset(pat, 0x5a, sizeof(pat));
	struct scsi_cmd c = rw10(&F.n1, 1, true, 3, 1, pat, 4096);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(report_luns(&F.n1, luns, SCSI_MAX_LUNS), 3);
	assert_true(luns[0] == 0 && luns[1] == 1 && luns[2] == 2);

	/* pending conditions on LUN 1 must not outlive it */
	assert_int_equal(scsi_target_lun_reset(F.t, 1, &F.n1), 0);
	assert_int_equal(scsi_target_remove_lu(F.t, 1), 0);
	assert_int_equal(scsi_target_remove_lu(F.t, 1), -ENOENT);
	assert_int_equal(scsi_target_remove_lu(F.t, 7), -ENOENT);
	assert_int_equal(report_luns(&F.n2, luns, SCSI_MAX_LUNS), 2);
	assert_true(luns[0] == 0 && luns[1] == 2);
	expect_absent(&F.n1, 1);
	expect_absent(&F.n2, 1);
	/* the others are untouched (their own UA aside) */
	c = rw10(&F.n1, 0, false, 0, 1, NULL, 512);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	free(c.data_in);

	/* back, on the same medium: same data, no stale unit attention */
	struct scsi_lu_config cfg = lu_cfg(1);
	assert_int_equal(scsi_target_add_lu(F.t, 1, &cfg), 0);
	assert_int_equal(scsi_target_add_lu(F.t, 1, &cfg), -EEXIST);
	assert_true(scsi_target_has_lun(F.t, 1));
	assert_int_equal(report_luns(&F.n1, luns, SCSI_MAX_LUNS), 3);
	c = rw10(&F.n2, 1, false, 3, 1, NULL, 4096);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_memory_equal(c.data_in, pat, 4096);
	free(c.data_in);
	c = rw10(&F.n1, 1, false, 3, 1, NULL, 4096);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	free(c.data_in);

	/* every LU gone: REPORT LUNS is empty, LUN 0 absent too */
	for (uint64_t l = 0; l < 3; l++)
		assert_int_equal(scsi_target_remove_lu(F.t, l), 0);
	assert_int_equal(report_luns(&F.n1, luns, SCSI_MAX_LUNS), 0);
	expect_absent(&F.n1, 0);
}

/* REPORTED LUNS DATA HAS CHANGED: once per nexus and LU, on every LU
 * (a new one included, not a removed one), after a reset of higher
 * precedence, and not consumed by INQUIRY or REPORT LUNS. */
static void test_luns_changed_ua(void **state)
{
	(void)state;
	uint8_t tur[16] = { 0 };
	uint64_t luns[SCSI_MAX_LUNS];
	struct scsi_cmd c;

	assert_int_equal(scsi_target_remove_lu(F.t, 2), 0);
	scsi_target_luns_changed(F.t);
	scsi_target_luns_changed(F.t);          /* twice: still reported once */
	c = inquiry(0, false, 0);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	free(c.data_in);
	assert_int_equal(report_luns(&F.n1, luns, SCSI_MAX_LUNS), 2);
	for (uint64_t lun = 0; lun < 2; lun++) {
		c = run(&F.n1, lun, tur, NULL, 0, 0);
		expect_sense(&c, 0x6, 0x3f0e);
		c = run(&F.n1, lun, tur, NULL, 0, 0);
		assert_int_equal(c.status, SAM_STAT_GOOD);
	}
	/* the other nexus has its own, reported through REQUEST SENSE too */
	uint8_t rs[16] = { 0x03, 0, 0, 0, 252 };
	c = run(&F.n2, 0, rs, NULL, 0, 252);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_int_equal(c.data_in[2] & 0x0f, 0x6);
	assert_int_equal(c.data_in[12], 0x3f);
	assert_int_equal(c.data_in[13], 0x0e);
	free(c.data_in);
	c = run(&F.n2, 0, tur, NULL, 0, 0);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	c = rw10(&F.n2, 1, false, 0, 1, NULL, 4096);
	expect_sense(&c, 0x6, 0x3f0e);
	assert_null(c.data_in);
	c = rw10(&F.n2, 1, false, 0, 1, NULL, 4096);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	free(c.data_in);
	/* the removed LUN has none to report */
	expect_absent(&F.n1, 2);

	/* an LU added: every LU tells every nexus, the new one included */
	struct scsi_lu_config cfg = lu_cfg(2);
	assert_int_equal(scsi_target_add_lu(F.t, 5, &cfg), 0);
	scsi_target_luns_changed(F.t);
	/* a reset raised after it is reported first, then the change */
	assert_int_equal(scsi_target_lun_reset(F.t, 0, &F.n1), 0);
	c = run(&F.n1, 0, tur, NULL, 0, 0);
	expect_sense(&c, 0x6, 0x2903);
	c = run(&F.n1, 0, tur, NULL, 0, 0);
	expect_sense(&c, 0x6, 0x3f0e);
	c = run(&F.n1, 0, tur, NULL, 0, 0);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	for (uint64_t lun = 1; lun <= 5; lun += 4) {
		for (int k = 0; k < 2; k++) {
			const struct scsi_nexus *n = k ? &F.n2 : &F.n1;
			c = run(n, lun, tur, NULL, 0, 0);
			expect_sense(&c, 0x6, 0x3f0e);
			c = run(n, lun, tur, NULL, 0, 0);
			assert_int_equal(c.status, SAM_STAT_GOOD);
		}
	}
	/* a nexus that logs in later has nothing pending */
	struct scsi_nexus n3 = { .id = 3 };
	snprintf(n3.port_name, sizeof(n3.port_name), "iqn.c,i,0x000000000003");
	scsi_target_nexus_new(F.t, &n3);
	c = run(&n3, 5, tur, NULL, 0, 0);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	scsi_target_nexus_gone(F.t, &n3);
}

/* A thread that removes one LUN and notes when that returned. */
struct remover {
	pthread_t th;
	uint64_t lun;
	int rc;
	int done;                   /* __atomic */
};

static void *remover_main(void *arg)
{
	struct remover *r = arg;

	r->rc = scsi_target_remove_lu(F.t, r->lun);
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* A READ of blocks at lba of lun that the SCSI layer defers (the
 * transport would stream it): data_lu set, nothing read yet. */
static struct scsi_cmd deferred_read(const struct scsi_nexus *n, uint64_t lun, uint8_t *cdb,
				     uint32_t lba, uint16_t blocks, uint32_t edtl)
{
	struct scsi_cmd c;

	memset(cdb, 0, 16);
	cdb[0] = 0x28;
	put32(cdb + 2, lba);
	cdb[7] = (uint8_t)(blocks >> 8);
	cdb[8] = (uint8_t)blocks;
	memset(&c, 0, sizeof(c));
	c.cdb = cdb;
	c.cdb_len = 16;
	c.lun = lun;
	c.nexus = n;
	c.attr = SCSI_ATTR_SIMPLE;
	c.read = true;
	c.edtl = edtl;
	c.defer_min = 1;
	scsi_target_exec(F.t, &c);
	return c;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* A removal waits for a deferred read in progress - until the transport
 * released the command, not merely until its data went out - while new
 * commands already find the LUN absent. */
static void test_remove_waits_for_deferred_read(void **state)
{
	(void)state;
	uint8_t pat[1024], cdb[16];

	memset(pat, 0xc3, sizeof(pat));
	struct scsi_cmd w = rw10(&F.n1, 0, true, 8, 2, pat, 1024);
	assert_int_equal(w.status, SAM_STAT_GOOD);
	struct scsi_cmd c = deferred_read(&F.n1, 0, cdb, 8, 2, 1024);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	assert_non_null(c.data_lu);
	assert_null(c.data_in);

	struct remover r = { .lun = 0 };
	assert_int_equal(pthread_create(&r.th, NULL, remover_main, &r), 0);
	sleep_ms(50);
	assert_int_equal(__atomic_load_n(&r.done, __ATOMIC_SEQ_CST), 0);
	/* already gone for everything new */
	uint8_t tur[16] = { 0 };
	struct scsi_cmd t2 = run(&F.n2, 0, tur, NULL, 0, 0);
	expect_sense(&t2, 0x5, 0x2500);

	struct scsi_lu *held = scsi_cmd_data_begin(&c);
	uint8_t *a = scsi_cmd_data_read(&c, 0, 512);
	uint8_t *b = scsi_cmd_data_read(&c, 512, 512);
	assert_non_null(a);
	assert_non_null(b);
	assert_memory_equal(a, pat, 512);
	assert_memory_equal(b, pat + 512, 512);
	free(a);
	free(b);
	scsi_cmd_data_end(held);
	sleep_ms(20);
	assert_int_equal(__atomic_load_n(&r.done, __ATOMIC_SEQ_CST), 0);
	scsi_cmd_release(&c);
	scsi_cmd_release(&c);                   /* idempotent */
	assert_int_equal(pthread_join(r.th, NULL), 0);
	assert_int_equal(r.rc, 0);
	assert_false(scsi_target_has_lun(F.t, 0));

	/* a command that was not deferred holds nothing after exec */
	c = deferred_read(&F.n1, 1, cdb, 0, 1, 4096);
	assert_int_equal(c.status, SAM_STAT_GOOD);
	scsi_cmd_release(&c);
	struct scsi_cmd t3 = run(&F.n1, 1, tur, NULL, 0, 0);
	assert_int_equal(t3.status, SAM_STAT_GOOD);
	assert_int_equal(scsi_target_remove_lu(F.t, 1), 0);
}

/* ---- readers in a loop while the LU comes and goes ---- */

#define CHURN_CYCLES 40
#define CHURN_WAIT_MS 5000      /* per state change; far above what it takes */

struct reader {
	pthread_t th;
	const struct scsi_nexus *n;
	const uint8_t *pat;          /* 4096 bytes LBA 0 of LUN 1 holds */
	unsigned long good, ua, absent, bad;   /* __atomic */
};

static int churn_stop;          /* __atomic */

/* One READ of LUN 1's block 0 (every other one deferred and streamed as
 * the transport does); classify the answer. */
static void reader_one(struct reader *r, bool defer)
{
	uint8_t cdb[16] = { 0x28 };
	struct scsi_cmd c;

	cdb[8] = 1;
	memset(&c, 0, sizeof(c));
	c.cdb = cdb;
	c.cdb_len = 16;
	c.lun = 1;
	c.nexus = r->n;
	c.read = true;
	c.edtl = 4096;
	c.defer_min = defer ? 1 : 0;
	scsi_target_exec(F.t, &c);
	unsigned long *count = &r->bad;
	if (c.status == SAM_STAT_GOOD) {
		uint8_t *data = c.data_in;
		if (c.data_lu) {
			struct scsi_lu *lu = scsi_cmd_data_begin(&c);
			data = scsi_cmd_data_read(&c, 0, 4096);
			scsi_cmd_data_end(lu);
		}
		if (data && memcmp(data, r->pat, 4096) == 0)
			count = &r->good;
		if (data != c.data_in)
			free(data);
	} else if (c.status == SAM_STAT_CHECK_CONDITION && c.sense_len >= 14) {
		uint16_t asc = (uint16_t)(c.sense[12] << 8 | c.sense[13]);
		uint8_t key = c.sense[2] & 0x0f;
		if (key == 0x6 && asc == 0x3f0e)
			count = &r->ua;
		else if (key == 0x5 && asc == 0x2500)
			count = &r->absent;
	}
	free(c.data_in);
	scsi_cmd_release(&c);
	__atomic_add_fetch(count, 1, __ATOMIC_SEQ_CST);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	bool defer = false;

	while (!__atomic_load_n(&churn_stop, __ATOMIC_SEQ_CST)) {
		reader_one(r, defer);
		defer = !defer;
	}
	return NULL;
}

/* Wait until *counter of every reader moved past since[]; false after
 * CHURN_WAIT_MS. */
static bool wait_all(struct reader *rd, unsigned n, size_t field, const unsigned long *since)
{
	for (int ms = 0; ms < CHURN_WAIT_MS; ms++) {
		unsigned moved = 0;
		for (unsigned i = 0; i < n; i++) {
			unsigned long *v = (unsigned long *)((char *)&rd[i] + field);
			moved += __atomic_load_n(v, __ATOMIC_SEQ_CST) > since[i];
		}
		if (moved == n)
			return true;
		sleep_ms(1);
	}
	return false;
}

/* Two sessions read LUN 1 in a loop while it is removed and added back
 * CHURN_CYCLES times (the inventory change announced each time): every
 * answer is the data, the unit attention or an absent LUN - never
 * anything else, never a use after free (ASan) - and each cycle is seen
 * by both readers in both states. */
static void test_remove_while_reading(void **state)
{
	(void)state;
	uint8_t pat[4096];
	struct reader rd[2] = { { .n = &F.n1, .pat = pat }, { .n = &F.n2, .pat = pat } };
	unsigned long since[2];
	struct scsi_lu_config cfg = lu_cfg(1);

	for (unsigned i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 7 + 1);
	struct scsi_cmd w = rw10(&F.n1, 1, true, 0, 1, pat, 4096);
	assert_int_equal(w.status, SAM_STAT_GOOD);
	__atomic_store_n(&churn_stop, 0, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&rd[i].th, NULL, reader_main, &rd[i]), 0);
	bool ok = true;
	for (int cycle = 0; cycle < CHURN_CYCLES && ok; cycle++) {
		assert_int_equal(scsi_target_remove_lu(F.t, 1), 0);
		scsi_target_luns_changed(F.t);
		for (unsigned i = 0; i < 2; i++)
			since[i] = __atomic_load_n(&rd[i].absent, __ATOMIC_SEQ_CST);
		ok = wait_all(rd, 2, offsetof(struct reader, absent), since);
		assert_int_equal(scsi_target_add_lu(F.t, 1, &cfg), 0);
		scsi_target_luns_changed(F.t);
		for (unsigned i = 0; i < 2; i++)
			since[i] = __atomic_load_n(&rd[i].good, __ATOMIC_SEQ_CST);
		ok = ok && wait_all(rd, 2, offsetof(struct reader, good), since);
	}
	__atomic_store_n(&churn_stop, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(pthread_join(rd[i].th, NULL), 0);
	assert_true(ok);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(rd[i].bad, 0);
		/* an LU that came back announced itself: once per return at most */
		assert_true(rd[i].ua >= 1 && rd[i].ua <= CHURN_CYCLES);
		assert_true(rd[i].good >= CHURN_CYCLES);
		assert_true(rd[i].absent >= CHURN_CYCLES);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inquiry_vpd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_capacity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmap_reads_zeros, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compare_and_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persistent_reservations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sense_formats_and_ua, setup, teardown),
		cmocka_unit_test_setup_teardown(test_residuals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_luns_and_opcodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extended_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_lu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_luns_changed_ua, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_waits_for_deferred_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_while_reading, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
