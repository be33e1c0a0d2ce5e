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
