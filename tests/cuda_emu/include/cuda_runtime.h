// The CUDA emulator's <cuda_runtime.h>: the CUDA C++ builtins and the few runtime calls the
// fused attention uses, for compiling a .cu file as plain C++ with CRAM_CUDA_EMU defined. A
// launch runs each block's threads as cooperative fibers on the calling thread (cuda_emu.cpp);
// see test_fattn_emu.cpp for the model and its checks.
#ifndef CRAM_CUDA_EMU_RUNTIME_H
#define CRAM_CUDA_EMU_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <tuple>
#include <utility>

#ifndef CRAM_CUDA_EMU
#error "the CUDA emulator's headers are for translation units built with CRAM_CUDA_EMU"
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) {
    return uint4{a, b, c, d};
}

// The running thread's coordinates, set by the scheduler before it resumes a thread.
extern dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace cuda_emu {
// Reports a fault of the emulated program (a deadlock, a misaligned operand, a bad launch) and
// ends the process: a test that hits one fails, it never hangs.
[[noreturn]] void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sync_block();
void sync_warp(unsigned mask);
double shfl_xor(unsigned mask, double v, int lane_mask);
unsigned char *dynamic_smem();
// Runs a kernel of `params` over the grid, block after block (see cuda_emu.cpp)
void run_grid(void (*body)(void *), void *params, dim3 grid, dim3 block, size_t smem);
// The most dynamic shared memory a launch may ask for (a card's opt-in limit)
extern size_t smem_limit;
// The order in which blocks, and the threads of a block, take their turns: 0 ascending, 1
// descending. Results of a race-free kernel do not depend on it.
void set_order(int descending);

template <typename... P>
struct launch_of {
    void (*kernel)(P...);
    std::tuple<P...> args;
    static void body(void *self) {
        launch_of *l = (launch_of *)self;
        std::apply(l->kernel, l->args); // each thread gets its own copy of the parameters
    }
};
} // namespace cuda_emu

template <typename... P, typename... A>
void cuda_emu_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, void *stream,
                     A &&...args) {
    (void)stream; // one stream: launches run in issue order, each to its end
    cuda_emu::launch_of<P...> l{kernel, std::tuple<P...>(std::forward<A>(args)...)};
    cuda_emu::run_grid(&cuda_emu::launch_of<P...>::body, &l, grid, block, smem);
}

inline void __syncthreads() {
    cuda_emu::sync_block();
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    cuda_emu::sync_warp(mask);
}
inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
    return (float)cuda_emu::shfl_xor(mask, v, lane_mask);
}
inline double __shfl_xor_sync(unsigned mask, double v, int lane_mask) {
    return cuda_emu::shfl_xor(mask, v, lane_mask);
}
inline uint4 __ldg(const uint4 *p) {
    if ((uintptr_t)p & 15u)
        cuda_emu::fail("__ldg of a uint4 at %p, not 16-byte aligned", (void *)p);
    return *p;
}
[[noreturn]] inline void __trap() {
    cuda_emu::fail("__trap()");
}
inline int min(int a, int b) {
    return a < b ? a : b;
}

// ---- the runtime calls ----
typedef struct cuda_emu_stream *cudaStream_t;
typedef struct cuda_emu_event *cudaEvent_t;
typedef enum { cudaSuccess = 0 } cudaError_t;
enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize,
    cudaFuncAttributePreferredSharedMemoryCarveout
};
enum { cudaSharedmemCarveoutMaxShared = 100 };
inline cudaError_t cudaFuncSetAttribute(const void *, cudaFuncAttribute, int) {
    return cudaSuccess;
}
inline cudaError_t cudaGetLastError() {
    return cudaSuccess;
}
inline const char *cudaGetErrorString(cudaError_t) {
    return "no error";
}

#endif
