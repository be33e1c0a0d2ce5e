/* Reproducible random streams built on Philox4x32-10. A stream is named by the tuple
 * (seed, rank, step, stream): the same tuple gives the same numbers on any machine, thread
 * order or resume point, and different tuples give independent numbers. */
#ifndef CRAM_CORE_RNG_H
#define CRAM_CORE_RNG_H

#include "core/rng_philox.h"

#include <stdint.h>

/* Layout, so a GPU kernel can reproduce a stream without this code: the k-th 32-bit word drawn
 * from a fresh stream is word (k % 4) of philox4x32_10(ctr, key) with
 * ctr = {block lo, block hi, step lo, step hi}, block = k / 4. cuRAND uses the same layout (as
 * its curand_kernel.h implements it): curand_init(seed = key[0] | (uint64)key[1] << 32,
 * subsequence = step, offset = 4 * block) followed by curand() yields the same words. The key comes
 * from (seed, rank, stream), see core_rng_init.
 *
 * The struct is plain data: copy it (or memcpy, or write it to a checkpoint) to save a stream
 * position, copy it back to restore; core_rng_save/restore do exactly that. */
typedef struct core_rng {
    uint32_t key[2];
    uint32_t ctr[4];    /* the next block to generate: {block lo, block hi, step lo, step hi} */
    uint32_t buf[4];    /* the current block's output */
    uint32_t used;      /* words of buf already handed out; 4 = buf exhausted */
    uint32_t has_spare; /* Box-Muller makes normals in pairs; the second waits here */
    float spare;
} core_rng;

void core_rng_init(core_rng *r, uint64_t seed, uint32_t rank, uint64_t step, uint32_t stream);

/* The key core_rng_init derives from (seed, rank, stream), for GPU kernels that generate the
 * same stream from counters directly. */
void core_rng_key(uint32_t key[2], uint64_t seed, uint32_t rank, uint32_t stream);

uint32_t core_rng_u32(core_rng *r);
uint64_t core_rng_u64(core_rng *r);               /* two words: first is the low half */
float core_rng_uniform(core_rng *r);              /* [0, 1), 24 random bits */
double core_rng_uniform_double(core_rng *r);      /* [0, 1), 53 random bits */
uint32_t core_rng_below(core_rng *r, uint32_t n); /* unbiased in [0, n); n == 0 gives 0 */
float core_rng_normal(core_rng *r);               /* standard normal, Box-Muller */

void core_rng_save(const core_rng *r, core_rng *saved);
void core_rng_restore(core_rng *r, const core_rng *saved);

#endif
