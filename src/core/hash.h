/* A stable 64-bit hash for naming things on disk (the data cache folder is named by the hash of
 * the resolved data config). It is 64-bit FNV-1a with the seed xored into the offset basis, so
 * seed 0 gives textbook FNV-1a. Not cryptographic. Its values must never change: a change would
 * silently orphan every cache built before it. */
#ifndef CRAM_CORE_HASH_H
#define CRAM_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct core_hash {
    uint64_t h;
} core_hash;

void core_hash_init(core_hash *s, uint64_t seed);
void core_hash_update(core_hash *s, const void *p, size_t n);
/* Feeds the 8 bytes of v least significant first, so the result does not depend on the host's
 * byte order. */
void core_hash_update_u64(core_hash *s, uint64_t v);
/* Feeds the bytes of the string without its NUL. */
void core_hash_update_str(core_hash *s, const char *str);
uint64_t core_hash_final(const core_hash *s);

/* One-shot form: core_hash64(p, n, seed) equals init(seed) + update(p, n) + final. */
uint64_t core_hash64(const void *p, size_t n, uint64_t seed);

/* 16 lowercase hex digits and a NUL. */
void core_hash_hex(uint64_t h, char out[17]);

#endif
