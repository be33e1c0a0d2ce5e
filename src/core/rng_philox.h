/* The Philox4x32-10 block function (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3",
 * SC11; the Random123 algorithm, which cuRAND calls Philox4_32_10). Header-only and
 * host/device-qualified on purpose: CUDA kernels include it to reproduce the CPU's numbers. */
#ifndef CRAM_CORE_RNG_PHILOX_H
#define CRAM_CORE_RNG_PHILOX_H

#include <stdint.h>

#ifdef __CUDACC__
#define CORE_PHILOX_FN static inline __host__ __device__
#else
#define CORE_PHILOX_FN static inline
#endif

/* Multipliers and Weyl key increments from the Philox paper. */
#define CORE_PHILOX_M0 0xD2511F53u
#define CORE_PHILOX_M1 0xCD9E8D57u
#define CORE_PHILOX_W0 0x9E3779B9u
#define CORE_PHILOX_W1 0xBB67AE85u

CORE_PHILOX_FN void core_philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
#ifdef __CUDA_ARCH__
    *hi = __umulhi(a, b);
    *lo = a * b;
#else
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
#endif
}

/* One round of the Feistel-like network: two 32x32->64 multiplies, the high halves xored with
 * the other two words and the round key. */
CORE_PHILOX_FN void core_philox_round(uint32_t x[4], uint32_t k0, uint32_t k1) {
    uint32_t hi0, lo0, hi1, lo1;
    core_philox_mulhilo(CORE_PHILOX_M0, x[0], &hi0, &lo0);
    core_philox_mulhilo(CORE_PHILOX_M1, x[2], &hi1, &lo1);
    uint32_t y0 = hi1 ^ x[1] ^ k0;
    uint32_t y2 = hi0 ^ x[3] ^ k1;
    x[0] = y0;
    x[1] = lo1;
    x[2] = y2;
    x[3] = lo0;
}

/* out = Philox4x32-10(ctr, key): 128 random bits that depend only on (ctr, key). For a fixed key
 * it is a bijection of the counter, so distinct counters never repeat a block. */
CORE_PHILOX_FN void core_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                                       uint32_t out[4]) {
    uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += CORE_PHILOX_W0;
            k1 += CORE_PHILOX_W1;
        }
        core_philox_round(x, k0, k1);
    }
    out[0] = x[0];
    out[1] = x[1];
    out[2] = x[2];
    out[3] = x[3];
}

#endif
