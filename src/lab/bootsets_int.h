/*
 * bootsets_int.h - what bootsets.c and bootsets_prefetch.c share (the
 * lab's warm boots, bootsets.h).  Lock: the registry's, held.
 */
#ifndef PRISTINE_LAB_BOOTSETS_INT_H
#define PRISTINE_LAB_BOOTSETS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "storage/prefetch.h"

struct registry;
struct image;
struct version;

/* The bound of a boot set in chunks (reg->bootset_max_chunks, or the
 * default when 0). */
uint32_t bootsets_max_chunks(const struct registry *reg);
/* Version v of img if it exists and is not deleted (its set's disk size
 * set), else NULL. */
struct version *bootsets_version(struct image *img, unsigned v);
/* bytes as "312 MiB" (KiB under 1 MiB, GiB from 10 GiB). */
void bootsets_size_text(uint64_t bytes, char *out, size_t len);

#endif
