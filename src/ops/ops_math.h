/* Branch-free exp and GELU for the backends' loops: the CPU backend's compiler vectorizes them
 * (glibc's expf/erff are scalar calls), and the CUDA kernels call the same functions (OPS_FN is
 * __host__ __device__ under nvcc), so both backends evaluate one formula. Private to src/ops.
 * Accuracy: exp within 2 ulp on
 * [-87, 88] (inputs below flush to exp(-87.3) ~ 1e-38, harmless in softmax sums); the normal
 * CDF through Numerical Recipes' erfc (relative error below 1.2e-7 in exact arithmetic), which
 * keeps full relative accuracy in the negative tail where 1 + erf(x) cancels. */
#ifndef CRAM_OPS_MATH_H
#define CRAM_OPS_MATH_H

#include <stdint.h>
#include <string.h>

#include "ops/bf16.h" /* OPS_FN, ops_f32_from_bits */

/* The hot loops get AVX-512 and AVX2 clones picked at load time; the build stays generic. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__) && !defined(__CUDACC__)
#define OPS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OPS_CLONES
#endif

OPS_FN float ops_expf(float x_in) {
    /* NaN must not reach the float-to-int conversion below (undefined behaviour): it is
     * computed as 0 and put back at the end; both selects stay branch-free. */
    float x = x_in == x_in ? x_in : 0.0f;
    x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
    /* n = round(x / ln 2) with the 1.5 * 2^23 trick (exact here, no rint call) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    float scale = ops_f32_from_bits((uint32_t)(((int32_t)n + 127) << 23));
    return x_in == x_in ? p * scale : x_in;
}

/* erfc(z) for z >= 0 */
OPS_FN float ops_erfcf_pos(float z) {
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return t * ops_expf(-z * z + p);
}

/* Phi(x) = 0.5 * (1 + erf(x / sqrt 2)), the factor of the exact GELU */
OPS_FN float ops_normal_cdf(float x) {
    float e = 0.5f * ops_erfcf_pos((x < 0.0f ? -x : x) * 0.70710678118654752440f);
    return x < 0.0f ? e : 1.0f - e;
}

OPS_FN float ops_gelu(float x) {
    return x * ops_normal_cdf(x);
}

OPS_FN float ops_gelu_grad(float x) {
    return ops_normal_cdf(x) + x * 0.39894228040143267794f * ops_expf(-0.5f * x * x);
}

#endif
