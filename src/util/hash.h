/*
 * hash.h - FNV-1a (64-bit): a stable id from a string, for the serial
 * numbers and NAA identifiers of LUs (the same name gives the same id on
 * every start, which initiators rely on to recognise a disk).  Not for
 * anything an attacker chooses to collide.
 */
#ifndef PRISTINE_UTIL_HASH_H
#define PRISTINE_UTIL_HASH_H

#include <stdint.h>

#define FNV1A_INIT 0xcbf29ce484222325ull

/* Fold the bytes of s (up to its NUL) into h and return the new hash;
 * start with FNV1A_INIT.  Chain calls to hash several strings. */
static inline uint64_t fnv1a_add(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The FNV-1a hash of one string. */
static inline uint64_t fnv1a(const char *s)
{
	return fnv1a_add(FNV1A_INIT, s);
}

#endif
