// The GPU entry points of a build without CUDA: they say so instead of failing to link.
#include "ops/cuda/gpu.h"

#include <stdio.h>
#include <string.h>

bool gpu_compiled(void) {
    return false;
}

int gpu_query(gpu_info *info, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    memset(info, 0, sizeof *info);
    return 0;
}

int gpu_axpy(float *y, const float *x, float a, size_t n, char *err, size_t errlen) {
    (void)y, (void)x, (void)a, (void)n;
    snprintf(err, errlen, "this cram was built without CUDA (nvcc was not found at build time)");
    return -1;
}

int gpu_axpy_time(size_t n, int iters, double *median_ms, char *err, size_t errlen) {
    (void)n, (void)iters, (void)median_ms;
    snprintf(err, errlen, "this cram was built without CUDA (nvcc was not found at build time)");
    return -1;
}

int gpu_device_query(int dev, gpu_info *info, char *err, size_t errlen) {
    (void)dev, (void)err, (void)errlen;
    memset(info, 0, sizeof *info);
    return 0;
}

int gpu_mem_info(int dev, size_t *free_bytes, size_t *total_bytes, char *err, size_t errlen) {
    (void)dev;
    *free_bytes = *total_bytes = 0;
    snprintf(err, errlen, "this cram was built without CUDA (nvcc was not found at build time)");
    return -1;
}

void gpu_alloc_stats(size_t *in_use, size_t *peak) {
    *in_use = *peak = 0;
}

const struct ops *ops_cuda_open(int dev, bool bf16, char *err, size_t errlen) {
    (void)dev, (void)bf16;
    snprintf(err, errlen, "this cram was built without CUDA (nvcc was not found at build time)");
    return NULL;
}

void ops_cuda_close(const struct ops *o) {
    (void)o;
}
