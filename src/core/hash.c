/* 64-bit FNV-1a (Fowler, Noll, Vo): per byte, xor it in, then multiply by the FNV prime.
 * Simple, byte-order independent and fast enough for hashing configs and headers. */
#include "core/hash.h"

#include <string.h>

#define FNV64_OFFSET_BASIS 0xcbf29ce484222325ull
#define FNV64_PRIME 0x100000001b3ull

void core_hash_init(core_hash *s, uint64_t seed) {
    s->h = FNV64_OFFSET_BASIS ^ seed;
}

void core_hash_update(core_hash *s, const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = s->h;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= FNV64_PRIME;
    }
    s->h = h;
}

void core_hash_update_u64(core_hash *s, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    core_hash_update(s, b, sizeof b);
}

void core_hash_update_str(core_hash *s, const char *str) {
    core_hash_update(s, str, strlen(str));
}

uint64_t core_hash_final(const core_hash *s) {
    return s->h;
}

uint64_t core_hash64(const void *p, size_t n, uint64_t seed) {
    core_hash s;
    core_hash_init(&s, seed);
    core_hash_update(&s, p, n);
    return core_hash_final(&s);
}

void core_hash_hex(uint64_t h, char out[17]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[h & 15];
        h >>= 4;
    }
    out[16] = '\0';
}
