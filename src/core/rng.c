/* Streams over the Philox block function (see rng.h for the counter layout a GPU kernel must
 * follow). Draws consume 32-bit words from 128-bit blocks in order, so any stream is a pure
 * function of its tuple and the number of words drawn so far. */
#include "core/rng.h"

#include <math.h>
#include <string.h>

/* Fixed key for the key-derivation call, so that stream keys are not a simple function of the
 * seed: "cram" and "rng!" in ASCII. Changing it changes every random number cram draws. */
#define KEY_DERIVE_K0 0x6372616du
#define KEY_DERIVE_K1 0x726e6721u

void core_rng_key(uint32_t key[2], uint64_t seed, uint32_t rank, uint32_t stream) {
    /* Philox is a bijection for a fixed key, so distinct tuples give distinct 128-bit outputs;
     * keeping 64 bits of them makes a collision a 2^-64 event. */
    const uint32_t ctr[4] = {(uint32_t)seed, (uint32_t)(seed >> 32), rank, stream};
    const uint32_t k[2] = {KEY_DERIVE_K0, KEY_DERIVE_K1};
    uint32_t out[4];
    core_philox4x32_10(ctr, k, out);
    key[0] = out[0];
    key[1] = out[1];
}

void core_rng_init(core_rng *r, uint64_t seed, uint32_t rank, uint64_t step, uint32_t stream) {
    memset(r, 0, sizeof *r);
    core_rng_key(r->key, seed, rank, stream);
    r->ctr[2] = (uint32_t)step;
    r->ctr[3] = (uint32_t)(step >> 32);
    r->used = 4;
}

static void next_block(core_rng *r) {
    core_philox4x32_10(r->ctr, r->key, r->buf);
    /* The block index is 64 bits wide: no stream can run into the next step's counters. */
    if (++r->ctr[0] == 0) ++r->ctr[1];
    r->used = 0;
}

uint32_t core_rng_u32(core_rng *r) {
    if (r->used >= 4) next_block(r);
    return r->buf[r->used++];
}

uint64_t core_rng_u64(core_rng *r) {
    uint64_t lo = core_rng_u32(r);
    uint64_t hi = core_rng_u32(r);
    return lo | hi << 32;
}

float core_rng_uniform(core_rng *r) {
    /* 24 bits is what a float mantissa holds; more would round up to 1.0 sometimes. */
    return (float)(core_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

double core_rng_uniform_double(core_rng *r) {
    return (double)(core_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

uint32_t core_rng_below(core_rng *r, uint32_t n) {
    if (n == 0) return 0;
    /* Lemire, "Fast Random Integer Generation in an Interval" (2019): the high word of x * n is
     * in [0, n); rejecting the few low words below 2^32 mod n removes the bias. */
    uint64_t m = (uint64_t)core_rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)core_rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float core_rng_normal(core_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    /* u1 in (0, 1] so the log is finite; doubles keep the tails accurate out to ~6.7 sigma. */
    const double two_pi = 6.283185307179586476925286766559;
    double u1 = ((double)core_rng_u32(r) + 1.0) * (1.0 / 4294967296.0);
    double u2 = (double)core_rng_u32(r) * (1.0 / 4294967296.0);
    double radius = sqrt(-2.0 * log(u1));
    r->spare = (float)(radius * sin(two_pi * u2));
    r->has_spare = 1;
    return (float)(radius * cos(two_pi * u2));
}

void core_rng_save(const core_rng *r, core_rng *saved) {
    *saved = *r;
}

void core_rng_restore(core_rng *r, const core_rng *saved) {
    *r = *saved;
}
