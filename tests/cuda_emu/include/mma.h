// The CUDA emulator's <mma.h>: nvcuda::wmma for bf16 16x16x16 with fp32 accumulation, the one
// shape the fused attention uses. A fragment holds the whole 16 x 16 matrix; lane 0 of the warp
// does each collective operation when it reaches it and the other lanes pass through (what a
// lane holds of a real fragment is unspecified, so kernels only move fragments through these
// calls). That lane 0 acts alone, at its own time, is what lets a missing __syncwarp around a
// load or store show as a wrong result. The pointer and stride rules of the CUDA documentation
// (256-bit aligned pointers, ldm a multiple of 16 bytes) are checked on every call.
#ifndef CRAM_CUDA_EMU_MMA_H
#define CRAM_CUDA_EMU_MMA_H

#include <stdint.h>
#include <string.h>

#include "cuda_bf16.h"
#include "cuda_runtime.h"
#include "ops/bf16.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the emulator has the 16x16x16 shape only");
    float x[16][16];
};

namespace detail {
inline bool acts() {
    return threadIdx.x % 32 == 0;
}
inline void check(const void *p, unsigned ldm, unsigned elem_bytes, const char *what) {
    if ((uintptr_t)p & 31u) cuda_emu::fail("wmma::%s: pointer %p not 256-bit aligned", what, p);
    if ((ldm * elem_bytes) % 16u)
        cuda_emu::fail("wmma::%s: ldm %u is not a multiple of 16 bytes", what, ldm);
}
inline constexpr bool is_row(row_major) {
    return true;
}
inline constexpr bool is_row(col_major) {
    return false;
}
} // namespace detail

template <typename Use, typename Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, __nv_bfloat16, Layout> &f,
                             const __nv_bfloat16 *p, unsigned ldm) {
    detail::check(p, ldm, 2, "load_matrix_sync");
    if (!detail::acts()) return;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            f.x[r][c] =
                ops_bf16_float(detail::is_row(Layout()) ? p[r * ldm + c].x : p[c * ldm + r].x);
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p,
                             unsigned ldm, layout_t layout) {
    detail::check(p, ldm, 4, "load_matrix_sync");
    if (!detail::acts()) return;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            f.x[r][c] = layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f,
                              unsigned ldm, layout_t layout) {
    detail::check(p, ldm, 4, "store_matrix_sync");
    if (!detail::acts()) return;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            (layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[r][c];
}
inline void fill_fragment(fragment<accumulator, 16, 16, 16, float> &f, float v) {
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            f.x[r][c] = v;
}
// d = a b + c, each product exact (bf16 x bf16 fits fp32) and summed in fp32 in k order
template <typename LA, typename LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                     const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
    if (!detail::acts()) return;
    float r[16][16];
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float s = c.x[m][n];
            for (int k = 0; k < 16; k++)
                s += a.x[m][k] * b.x[k][n];
            r[m][n] = s;
        }
    memcpy(d.x, r, sizeof r);
}

} // namespace wmma
} // namespace nvcuda

#endif
