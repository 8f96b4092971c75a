/*
 * fuzz_cdb.c - libFuzzer harness: SCSI CDB decoding and execution
 * (scsi_target_exec) over an in-memory backend, for both directions.
 * Input: byte 0 flags (read/write bit, 4K blocks, LUN 0/1), bytes 1-4
 * EDTL (capped), then a 16-byte CDB, then Data-Out.  Whatever the input,
 * the command must complete with data_in_len <= edtl and a sane sense.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE (1u << 20)

struct mem_backend {
	struct backend be;
	uint8_t *mem;
};

static int m_read(struct backend *be, void *buf, uint64_t off, size_t len)
{
	if (off + len > be->size)
		abort();                  /* the SCSI layer must check ranges */
	memcpy(buf, ((struct mem_backend *)be)->mem + off, len);
	return 0;
}

static int m_write(struct backend *be, const void *buf, uint64_t off, size_t len, bool fua)
{
	(void)fua;
	if (off + len > be->size)
		abort();
	memcpy(((struct mem_backend *)be)->mem + off, buf, len);
	return 0;
}

static int m_flush(struct backend *be) { (void)be; return 0; }

static int m_unmap(struct backend *be, uint64_t off, uint64_t len)
{
	if (off + len > be->size)
		abort();
	memset(((struct mem_backend *)be)->mem + off, 0, len);
	return 0;
}

static void m_close(struct backend *be) { (void)be; }

static const struct backend_ops mem_ops = {
	.read = m_read, .write = m_write, .flush = m_flush, .unmap = m_unmap, .close = m_close,
};

static struct scsi_target *targets[2];
static struct mem_backend mems[2];
static struct scsi_nexus nexus = { .id = 1, .initiator_name = "iqn.2024-01.fuzz:a",
				   .port_name = "iqn.2024-01.fuzz:a,i,0x000000000001", .tpgt = 1 };

static void setup(void)
{
	for (int i = 0; i < 2; i++) {
		struct scsi_lu_config lc = {
			.be = &mems[i].be, .block_size = i ? 4096 : 512, .read_only = false,
			.vendor = "PRISTINE", .product = "fuzz", .revision = "0001",
			.serial = "0123456789abcdef", .naa_id = 0x1234 + (uint64_t)i,
			.target_name = "iqn.2024-01.fuzz:t",
		};
		mems[i].mem = calloc(1, MEM_SIZE);
		mems[i].be = (struct backend){ .ops = &mem_ops, .size = MEM_SIZE };
		targets[i] = scsi_target_new();
		scsi_target_add_lu(targets[i], 0, &lc);
		scsi_target_nexus_new(targets[i], &nexus);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scsi_cmd cmd;
	struct scsi_target *t;
	uint8_t flags;
	uint32_t edtl;

	if (!targets[0])
		setup();
	if (size < 21)
		return 0;
	flags = data[0];
	edtl = ((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4]) % (2u << 20);
	t = targets[(flags >> 2) & 1];
	memset(&cmd, 0, sizeof(cmd));
	cmd.cdb = data + 5;
	cmd.cdb_len = 16;
	cmd.lun = (flags >> 3) & 1;
	cmd.nexus = &nexus;
	cmd.attr = SCSI_ATTR_SIMPLE;
	cmd.read = flags & 1;
	cmd.write = flags & 2;
	cmd.edtl = edtl;
	if (cmd.write) {
		size_t have = size - 21;
		cmd.data_out = data + 21;
		cmd.data_out_len = (uint32_t)(have < edtl ? have : edtl);
		cmd.edtl = cmd.data_out_len;
	}
	scsi_target_exec(t, &cmd);
	if (cmd.data_in_len > cmd.edtl || cmd.sense_len > SCSI_SENSE_MAX ||
	    (cmd.status == SAM_STAT_CHECK_CONDITION && cmd.sense_len == 0))
		abort();
	free(cmd.data_in);
	return 0;
}
