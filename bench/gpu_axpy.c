// Bandwidth of the CUDA path's axpy kernel on device-resident data (reads x and y, writes y:
// 12 bytes per element). It checks the CUDA build's plumbing and timing method; the model's
// kernels get their own benchmarks. Usage: bench_gpu_axpy [n] [iters]
#include <stdio.h>
#include <stdlib.h>

#include "ops/cuda/gpu.h"

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : (size_t)1 << 28;
    int iters = argc > 2 ? atoi(argv[2]) : 50;
    if (n == 0 || iters <= 0) {
        fprintf(stderr, "usage: bench_gpu_axpy [n > 0] [iters > 0]\n");
        return 2;
    }
    gpu_info gi;
    char err[512] = "";
    if (!gpu_compiled() || gpu_query(&gi, err, sizeof err) || gi.count == 0) {
        printf("skipped: no usable GPU %s\n", err);
        return 77;
    }
    double ms;
    if (gpu_axpy_time(n, iters, &ms, err, sizeof err)) {
        fprintf(stderr, "bench_gpu_axpy: %s\n", err);
        return 1;
    }
    double gbs = 12.0 * (double)n / (ms * 1e-3) / 1e9;
    printf("cram axpy n=%zu: %.4f ms median of %d, %.1f GB/s on %s\n", n, ms, iters, gbs, gi.name);
    printf("RESULT cram_axpy_gbs %.2f\n", gbs);
    return 0;
}
