// Device query and a vector kernel: the smallest real use of the CUDA runtime, so the CUDA
// build, its link and its test path exist before the model's kernels do.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "ops/cuda/gpu.h"
}

#define CUDA_TRY(call)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            snprintf(err, errlen, "%s:%d: %s failed: %s", __FILE__, __LINE__, #call,               \
                     cudaGetErrorString(e_));                                                      \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

// One float4 (16-byte load and store) per thread and iteration; cudaMalloc's alignment makes the
// casts valid. The n % 4 trailing elements go to the first threads of the grid.
__global__ static void axpy_kernel(float *y, const float *x, float a, size_t n) {
    size_t n4 = n / 4, stride = (size_t)gridDim.x * blockDim.x;
    size_t first = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    float4 *y4 = (float4 *)y;
    const float4 *x4 = (const float4 *)x;
    for (size_t i = first; i < n4; i += stride) {
        float4 xv = x4[i], yv = y4[i];
        yv.x = fmaf(a, xv.x, yv.x);
        yv.y = fmaf(a, xv.y, yv.y);
        yv.z = fmaf(a, xv.z, yv.z);
        yv.w = fmaf(a, xv.w, yv.w);
        y4[i] = yv;
    }
    if (first < n % 4) y[n4 * 4 + first] = fmaf(a, x[n4 * 4 + first], y[n4 * 4 + first]);
}

// Enough blocks for one float4 per thread (capped; the kernel's stride loop covers the rest).
static void launch_axpy(float *y, const float *x, float a, size_t n) {
    size_t blocks = (n / 4 + 255) / 256;
    if (blocks < 1) blocks = 1;
    if (blocks > (1u << 16)) blocks = 1u << 16;
    axpy_kernel<<<(unsigned)blocks, 256>>>(y, x, a, n);
}

extern "C" bool gpu_compiled(void) {
    return true;
}

extern "C" int gpu_query(gpu_info *info, char *err, size_t errlen) {
    return gpu_device_query(0, info, err, errlen);
}

extern "C" int gpu_device_query(int dev, gpu_info *info, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    cudaRuntimeGetVersion(&info->runtime_version);
    cudaDriverGetVersion(&info->driver_version);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) {
        cudaGetLastError(); // clear the sticky "no device" state
        return 0;
    }
    if (e != cudaSuccess) {
        snprintf(err, errlen, "cudaGetDeviceCount failed: %s", cudaGetErrorString(e));
        return -1;
    }
    info->count = count;
    if (dev < 0 || (count > 0 && dev >= count)) {
        snprintf(err, errlen, "GPU %d does not exist (%d visible)", dev, count);
        return -1;
    }
    if (count > 0) {
        cudaDeviceProp p;
        e = cudaGetDeviceProperties(&p, dev);
        if (e != cudaSuccess) {
            snprintf(err, errlen, "cudaGetDeviceProperties failed: %s", cudaGetErrorString(e));
            return -1;
        }
        snprintf(info->name, sizeof info->name, "%s", p.name);
        info->cc_major = p.major;
        info->cc_minor = p.minor;
        info->total_mem = p.totalGlobalMem;
        info->sm_count = p.multiProcessorCount;
    }
    return 0;
}

extern "C" int gpu_mem_info(int dev, size_t *free_bytes, size_t *total_bytes, char *err,
                            size_t errlen) {
    int prev = 0;
    *free_bytes = *total_bytes = 0;
    CUDA_TRY(cudaGetDevice(&prev));
    CUDA_TRY(cudaSetDevice(dev));
    CUDA_TRY(cudaMemGetInfo(free_bytes, total_bytes));
    CUDA_TRY(cudaSetDevice(prev));
    return 0;
fail:
    return -1;
}

extern "C" int gpu_axpy(float *y, const float *x, float a, size_t n, char *err, size_t errlen) {
    float *dx = NULL, *dy = NULL;
    CUDA_TRY(cudaMalloc(&dx, n * sizeof(float)));
    CUDA_TRY(cudaMalloc(&dy, n * sizeof(float)));
    CUDA_TRY(cudaMemcpy(dx, x, n * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(dy, y, n * sizeof(float), cudaMemcpyHostToDevice));
    launch_axpy(dy, dx, a, n);
    CUDA_TRY(cudaGetLastError());
    CUDA_TRY(cudaMemcpy(y, dy, n * sizeof(float), cudaMemcpyDeviceToHost));
    cudaFree(dx);
    cudaFree(dy);
    return 0;
fail:
    cudaFree(dx);
    cudaFree(dy);
    return -1;
}

__global__ static void fill_kernel(float *p, size_t n, float scale) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        p[i] = scale * (float)((i * 2654435761u) % 1000u) - 0.5f * scale * 1000.0f; // not zeros
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

extern "C" int gpu_axpy_time(size_t n, int iters, double *median_ms, char *err, size_t errlen) {
    float *dx = NULL, *dy = NULL;
    float *times = (float *)calloc((size_t)iters, sizeof(float));
    cudaEvent_t start = NULL, stop = NULL;
    int blocks = 132 * 8; // for the fill kernel: a few waves on a Hopper part
    if (!times) {
        snprintf(err, errlen, "out of host memory");
        return -1;
    }
    CUDA_TRY(cudaMalloc(&dx, n * sizeof(float)));
    CUDA_TRY(cudaMalloc(&dy, n * sizeof(float)));
    CUDA_TRY(cudaEventCreate(&start));
    CUDA_TRY(cudaEventCreate(&stop));
    fill_kernel<<<blocks, 256>>>(dx, n, 1e-3f);
    fill_kernel<<<blocks, 256>>>(dy, n, 2e-3f);
    for (int k = 0; k < 5; k++)
        launch_axpy(dy, dx, 0.5f, n);
    CUDA_TRY(cudaGetLastError());
    for (int k = 0; k < iters; k++) {
        CUDA_TRY(cudaEventRecord(start));
        launch_axpy(dy, dx, 0.5f, n);
        CUDA_TRY(cudaEventRecord(stop));
        CUDA_TRY(cudaEventSynchronize(stop));
        CUDA_TRY(cudaEventElapsedTime(&times[k], start, stop));
    }
    qsort(times, (size_t)iters, sizeof(float), cmp_float);
    *median_ms = times[iters / 2];
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaFree(dx);
    cudaFree(dy);
    free(times);
    return 0;
fail:
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    cudaFree(dx);
    cudaFree(dy);
    free(times);
    return -1;
}
