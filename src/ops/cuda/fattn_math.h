/* The arithmetic of the CUDA backend's fused attention (ops_cuda_fattn.cu) that needs no GPU: its
 * shape limits, the layout of its state and shared memory, the online-softmax step, the log-sum-exp
 * and the dropout bits four elements at a time. The functions are OPS_FN (host and device under
 * nvcc), so test_ops.c holds them against the plain softmax and ops_dropout_keep on the CPU. */
#ifndef CRAM_OPS_CUDA_FATTN_MATH_H
#define CRAM_OPS_CUDA_FATTN_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/ops.h"
#include "ops/ops_math.h"

enum {
    OPS_FATTN_HD = 64,     /* the one head width the fused kernels take */
    OPS_FATTN_MAX_S = 512, /* the longest sequence they take */
    OPS_FATTN_TILE = 64,   /* query rows of a block, keys of a key tile */
    OPS_FATTN_WARPS = 4,   /* warps of a block: 16 rows of the tile each */
    OPS_FATTN_LDH = 72,    /* row stride, in elements, of a 64-column bf16 tile in shared memory */
    OPS_FATTN_LDF = 68,    /* row stride, in floats, of a warp's 16 x 64 fp32 tile */
};

/* The state the fused forward leaves for the backward, in floats: each query row's log-sum-exp
 * of its scores, [B, NH, S] at offset 0, then each key's padding bias (1 - mask) * -10000 (0
 * without a mask), [B, S] at offset B NH S: attention_bwd is not handed the mask, so the forward
 * keeps what it added. */
OPS_FN size_t ops_fattn_state_floats(int B, int S, int NH) {
    return (size_t)B * NH * S + (size_t)B * S;
}

/* Dynamic shared memory of one block that holds `tiles` bf16 tiles of 64 x 64 (the forward 3:
 * Q, K, V; each backward pass 4), two 16 x 64 fp32 tiles per warp (scores and the output or
 * dP; the bf16 operands P and dS are written over them) and two vectors of 64 floats. */
OPS_FN size_t ops_fattn_smem_bytes(int tiles) {
    return (size_t)tiles * OPS_FATTN_TILE * OPS_FATTN_LDH * 2 +
           (size_t)OPS_FATTN_WARPS * 2 * 16 * OPS_FATTN_LDF * 4 + 2 * OPS_FATTN_TILE * 4;
}

/* the plain kernels' score: scale q.k plus the key's padding bias */
OPS_FN float ops_fattn_key_bias(float mask) {
    return (1.0f - mask) * -10000.0f;
}
OPS_FN float ops_fattn_score(float dot, float scale, float bias) {
    return scale * dot + bias;
}

/* One key tile of a query row's online softmax. *m is the largest score seen so far (-INFINITY
 * before the first tile); the row's running sum l of exp(s - m) and its output accumulator are
 * to be multiplied by the returned factor before this tile's exp(s - *m) are added. */
OPS_FN float ops_fattn_step(float *m, float tile_max) {
    float mn = fmaxf(*m, tile_max);
    float alpha = ops_expf(*m - mn); /* the first tile: ops_expf clamps -inf, l and O are 0 */
    *m = mn;
    return alpha;
}

/* log sum_j exp(s_j) from the final (m, l), and the probability the backward recomputes from it */
OPS_FN float ops_fattn_lse(float m, float l) {
    return m + logf(l);
}
OPS_FN float ops_fattn_prob(float s, float lse) {
    return ops_expf(s - lse);
}

/* ops_dropout_keep(d, i) holds iff word i % 4 of the Philox block of counter i / 4 is at least
 * this threshold (p 2^32 is exact in a double; the words are integers). */
OPS_FN uint64_t ops_fattn_drop_threshold(float p) {
    return (uint64_t)ceil((double)p * 4294967296.0);
}

/* Bit k set iff word k of a Philox block clears the threshold */
OPS_FN unsigned ops_fattn_word_bits(const uint32_t w[4], uint64_t thr) {
    unsigned bits = 0;
    for (unsigned k = 0; k < 4; k++)
        bits |= (unsigned)((uint64_t)w[k] >= thr) << k;
    return bits;
}

/* Bit u (u < 4) set iff element idx0 + u survives ops_dropout_keep: one Philox block when the
 * four share a counter, two when they straddle two. (Fixed indices only, so that a GPU keeps
 * everything in registers.) */
OPS_FN unsigned ops_fattn_keep4(const ops_dropout *d, uint64_t thr, uint64_t idx0) {
    uint64_t c = idx0 >> 2;
    unsigned e = (unsigned)(idx0 & 3);
    uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), (uint32_t)d->step,
                       (uint32_t)(d->step >> 32)};
    uint32_t w[4];
    core_philox4x32_10(ctr, d->key, w);
    unsigned bits = ops_fattn_word_bits(w, thr);
    if (e) {
        c++;
        ctr[0] = (uint32_t)c, ctr[1] = (uint32_t)(c >> 32);
        core_philox4x32_10(ctr, d->key, w);
        bits |= ops_fattn_word_bits(w, thr) << 4;
    }
    return (bits >> e) & 0xfu;
}

#endif
