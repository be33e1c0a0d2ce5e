// Shared by the CUDA backend's translation units (ops_cuda*.cu): the backend context, error
// checks, the activation element types and launch helpers. Not a public header: host code sees
// the backend only through gpu.h and the ops table.
#ifndef CRAM_CUDA_INTERNAL_H
#define CRAM_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "ops/cuda/gpu.h"
#include "ops/ops.h"
void core_die_at(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
}
#include "ops/bf16.h"

#define CUDA_DIE(...) core_die_at(__FILE__, __LINE__, __VA_ARGS__)

// A failing CUDA runtime call ends the process with the call's text and the runtime's reason:
// the ops table has no error returns (the CPU rows die on out-of-memory the same way).
#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) CUDA_DIE("%s failed: %s", #call, cudaGetErrorString(e_));           \
    } while (0)
#define CK_LAUNCH() CK(cudaGetLastError())
#define LT(call)                                                                                   \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) CUDA_DIE("%s failed: cuBLAS status %d", #call, (int)s_);  \
    } while (0)

// The scratch every op may use while it runs (ops run one after another on one stream, so one
// region serves all). Its size is fixed when the backend opens; an op that would need more
// stops the process with the sizes, before it launches anything.
enum { CUDA_WS_BYTES = 96 << 20, CUDA_LT_WS_BYTES = 32 << 20 };
// bf16 elements of the pinned buffer that upload_act and download_act convert through, in chunks
enum { CUDA_STAGE_ELEMS = 1 << 20 };

typedef struct gemm_plan gemm_plan;

// Which attention kernels run (CRAM_CUDA_ATTN, read once when the backend opens): auto takes the
// fused kernels of ops_cuda_fattn.cu where they apply and the plain ones elsewhere; plain always
// the plain ones; fused stops the process on a call the fused kernels cannot take.
enum { CUDA_ATTN_AUTO, CUDA_ATTN_PLAIN, CUDA_ATTN_FUSED };

typedef struct cuda_ctx {
    int dev;
    bool bf16;
    int sm_count;
    int smem_optin; // the most dynamic shared memory one block may ask for
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lt_ws;          // cuBLASLt workspace
    char *ws;             // op scratch, CUDA_WS_BYTES
    int *err;             // device flag: kernels set bits on bad input (see CUDA_ERR_*)
    uint16_t *host_stage; // pinned host staging of the bf16 conversions, CUDA_STAGE_ELEMS
    cudaEvent_t stage_ev; // recorded after each upload from host_stage
    bool stage_busy;      // an upload from host_stage may still be reading it
    gemm_plan *plans;     // cuBLASLt descriptors and algorithms, one per GEMM shape
    int nplans, cap_plans;
    int attn_mode;    // CUDA_ATTN_*
    bool fattn_ready; // the fused attention's kernels can launch here (bf16 row, shared memory)
    // the plain attention's entries, to which the fused one hands the calls it does not take
    decltype(ops::attention_fwd) attn_plain_fwd;
    decltype(ops::attention_bwd) attn_plain_bwd;
    decltype(ops::attn_state_bytes) attn_plain_state_bytes;
} cuda_ctx;

enum { CUDA_ERR_LABEL = 1, CUDA_ERR_ID = 2 };

static inline cuda_ctx *ctx_of(const ops *o) {
    return (cuda_ctx *)o->ctx;
}

// bytes [0, need) of the scratch; dies when the fixed region is too small
static inline char *ws_take(const ops *o, size_t need, const char *what) {
    if (need > CUDA_WS_BYTES)
        CUDA_DIE("%s needs %zu bytes of GPU scratch, more than the %d reserved", what, need,
                 (int)CUDA_WS_BYTES);
    return ctx_of(o)->ws;
}

// ---- activation element types: fp32, or bf16 stored as its 16 bits ----
struct bf16s {
    uint16_t x;
};
__device__ __forceinline__ float ldA(const float *p, size_t i) {
    return p[i];
}
__device__ __forceinline__ float ldA(const bf16s *p, size_t i) {
    return ops_bf16_float(p[i].x);
}
__device__ __forceinline__ void stA(float *p, size_t i, float v) {
    p[i] = v;
}
__device__ __forceinline__ void stA(bf16s *p, size_t i, float v) {
    p[i].x = ops_bf16_round(v);
}

// Launches KERNEL<float> or KERNEL<bf16s> by the row's precision; A arguments are passed as
// void pointers and cast inside the kernel.
#define LAUNCH_A(o, KERNEL, grid, block, smem, ...)                                                \
    do {                                                                                           \
        if (ctx_of(o)->bf16)                                                                       \
            KERNEL<bf16s><<<(grid), (block), (smem), ctx_of(o)->stream>>>(__VA_ARGS__);            \
        else                                                                                       \
            KERNEL<float><<<(grid), (block), (smem), ctx_of(o)->stream>>>(__VA_ARGS__);            \
        CK_LAUNCH();                                                                               \
    } while (0)

// blocks of `threads` for n grid-stride items: enough to fill the GPU, no more than needed
static inline unsigned grid_for(const ops *o, size_t n, int threads) {
    size_t want = (n + (size_t)threads - 1) / (size_t)threads;
    size_t cap = (size_t)ctx_of(o)->sm_count * 16;
    if (want > cap) want = cap;
    return want ? (unsigned)want : 1u;
}

#define GRID_STRIDE(i, n)                                                                          \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

// Table fillers, one per translation unit.
void cuda_fill_gemm(ops *t);      // ops_cuda_gemm.cu: matmul_fwd, matmul_bwd
void cuda_fill_kernels(ops *t);   // ops_cuda_kernels.cu: embedding, LayerNorm, activations, rows,
                                  // losses, whole-buffer ops
void cuda_fill_attention(ops *t); // ops_cuda_attention.cu
void cuda_fill_adamw(ops *t);     // ops_cuda_adamw.cu
// ops_cuda_fattn.cu: takes over the table's attention entries (attention_fwd, attention_bwd,
// attn_state_bytes), keeping the plain ones in c, and prepares its kernels' shared memory
void cuda_fattn_open(ops *t, cuda_ctx *c);
void cuda_gemm_free(cuda_ctx *c);
// dbias[j] += sum over rows of dout[:, j], in a fixed order (ops_cuda_kernels.cu)
void cuda_colsum_add(const ops *o, float *dbias, const float *dout_a, int N, int OC);

#endif
