/* bfloat16 <-> fp32, shared by the bf16-emulating CPU backend (cpu/ops_cpu_bf16.c), the tests
 * and, later, the CUDA kernels (the functions are OPS_FN: __host__ __device__ under nvcc).
 *
 * A bf16 value is the upper 16 bits of an fp32: sign, the same 8-bit exponent, 7 fraction bits.
 * fp32 -> bf16 rounds to nearest, ties to even, which carries into the exponent when needed
 * (0x3fffffff -> 2.0; values past the largest bf16 become infinity); infinities stay; a NaN
 * stays a NaN (made quiet, so that dropping the low payload bits cannot turn it into an
 * infinity); subnormals round like any other value. bf16 -> fp32 is exact. */
#ifndef CRAM_OPS_BF16_H
#define CRAM_OPS_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/ops.h" /* OPS_FN */

OPS_FN uint32_t ops_f32_bits(float f) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

OPS_FN float ops_f32_from_bits(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

/* fp32 -> bf16 bits, round to nearest even; NaN -> quiet NaN of the same sign */
OPS_FN uint16_t ops_bf16_round(float f) {
    uint32_t u = ops_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    /* adding 0x7fff plus the lowest kept bit rounds half to even; the carry may run into the
     * exponent, which is the right answer (the next binade, or infinity) */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* bf16 bits -> fp32, exact */
OPS_FN float ops_bf16_float(uint16_t h) {
    return ops_f32_from_bits((uint32_t)h << 16);
}

/* the fp32 value nearest to f that bf16 can hold (f rounded to bf16 and back) */
OPS_FN float ops_bf16_quantize(float f) {
    return ops_bf16_float(ops_bf16_round(f));
}

/* Serial array forms (the CPU backend has OpenMP versions of its own). */
static inline void ops_bf16_round_n(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] = ops_bf16_round(src[i]);
}
static inline void ops_bf16_float_n(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] = ops_bf16_float(src[i]);
}
static inline void ops_bf16_quantize_n(float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] = ops_bf16_quantize(x[i]);
}

#endif
