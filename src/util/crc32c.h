/*
 * crc32c.h - CRC32C: the iSCSI header and data digests (RFC 7143 13.1)
 * and the overlay metadata checksums,
 * computed by ISA-L's crc32_iscsi (SSE4.2/PCLMUL accelerated).
 *
 * ISA-L returns the raw CRC register; the digest is its complement.  The
 * digest travels little-endian on the wire.
 */
#ifndef PRISTINE_UTIL_CRC32C_H
#define PRISTINE_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <isa-l/crc.h>

#define CRC32C_INIT 0xffffffffu

/* Feed len bytes into a running CRC register started at CRC32C_INIT. */
static inline uint32_t crc32c_update(uint32_t reg, const void *buf, size_t len)
{
	return crc32_iscsi((unsigned char *)buf, (int)len, reg);
}

static inline uint32_t crc32c_final(uint32_t reg) { return ~reg; }

static inline uint32_t crc32c(const void *buf, size_t len)
{
	return crc32c_final(crc32c_update(CRC32C_INIT, buf, len));
}

static inline void digest_put(uint8_t *p, uint32_t d)
{
	p[0] = (uint8_t)d; p[1] = (uint8_t)(d >> 8); p[2] = (uint8_t)(d >> 16); p[3] = (uint8_t)(d >> 24);
}

static inline uint32_t digest_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
