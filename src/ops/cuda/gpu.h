// The GPU entry points host code may call, as plain C. A build without CUDA provides the
// same functions (gpu_none.c), which report that no GPU support was compiled in.
#ifndef CRAM_GPU_H
#define CRAM_GPU_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int count;              // visible devices (0 when none or no driver)
    char name[256];         // device 0
    int cc_major, cc_minor; // compute capability of device 0
    size_t total_mem;       // bytes on device 0
    int sm_count;           // streaming multiprocessors of device 0
    int runtime_version;    // e.g. 13000
    int driver_version;     // 0 when no driver is loaded
} gpu_info;

// True when this binary was built with the CUDA backend.
bool gpu_compiled(void);
// Fills info. Returns 0 (count may be 0: no GPU is not an error), -1 with a message when
// the runtime itself fails.
int gpu_query(gpu_info *info, char *err, size_t errlen);
// y[i] = a * x[i] + y[i] on device 0, for host arrays of n floats (copied in and out).
// Returns 0, or -1 with a message naming the failing CUDA call.
int gpu_axpy(float *y, const float *x, float a, size_t n, char *err, size_t errlen);
// Properties of device `dev` (gpu_query reports device 0). Returns 0, or -1 with a message.
int gpu_device_query(int dev, gpu_info *info, char *err, size_t errlen);
// Memory of device `dev` as the driver sees it now (other processes included). Returns 0, or -1
// with a message (also in a build without CUDA).
int gpu_mem_info(int dev, size_t *free_bytes, size_t *total_bytes, char *err, size_t errlen);
// Device bytes the CUDA backend holds now and the most it has held since the process started
// (its own buffers, cuBLASLt workspace and scratch included); zeros without CUDA.
void gpu_alloc_stats(size_t *in_use, size_t *peak);

// The CUDA backend (ops_cuda.cu): the ops table on device `dev`, bf16 activations and working
// weights when bf16 is true, fp32 (TF32 off) otherwise. Returns NULL with a message when the
// device cannot be opened. ops_cuda_close frees its stream, handles and workspace.
struct ops;
const struct ops *ops_cuda_open(int dev, bool bf16, char *err, size_t errlen);
void ops_cuda_close(const struct ops *o);

// Times the axpy kernel on device-resident data: the median of `iters` launches, in
// milliseconds, measured with CUDA events after a warm-up. Returns 0 or -1 with a message.
int gpu_axpy_time(size_t n, int iters, double *median_ms, char *err, size_t errlen);

#endif
