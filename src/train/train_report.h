/* What a run reports about the device it trains on: the GPU and its memory at start, the peak
 * its MFU is measured against, the memory check before anything is allocated, and the peak memory
 * at the end. Shared by `cram pretrain` and `cram eval`; the decisions are pure functions, so the
 * tests exercise them on the CPU. */
#ifndef CRAM_TRAIN_REPORT_H
#define CRAM_TRAIN_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "ops/cuda/gpu.h"
#include "ops/ops.h"

/* Device memory the check keeps free beyond the model's planned bytes, for what a run may still
 * take after the check: kernel modules loaded at their first launch, the libraries' own buffers
 * (cuBLASLt, NCCL), the rounding of allocations. The backend's cuBLASLt workspace and op scratch
 * are allocated when it opens, so the free figure the check reads has them out already. */
#define TRAIN_DEVICE_RESERVE_BYTES ((size_t)512 << 20)

/* Dense (no structured sparsity) peak of a GPU in TFLOP/s, by its name as the driver reports it
 * and its compute capability (cc_major 0: not checked): the bf16 tensor-core rate with fp32
 * accumulation when bf16, else the fp32 rate without TF32 (what the fp32 backend runs). 0 when
 * the card is not in cram's table. */
double train_gpu_peak_tflops(const char *name, int cc_major, int cc_minor, bool bf16);

/* The peak MFU is measured against, in GFLOP/s, as far as it is known without measuring:
 * env_tflops (the value of CRAM_PEAK_TFLOPS, NULL when unset), then env_gflops (CRAM_PEAK_GFLOPS)
 * when either holds a positive number, then on a GPU (gpu_name != NULL) the table above. how
 * receives where the figure comes from, or on an unknown GPU that MFU is not computed and how to
 * set the peak. Returns the peak, 0 for an unknown GPU, or -1 on the CPU without an override
 * (the caller measures one). */
double train_peak_gflops_known(const char *env_tflops, const char *env_gflops, const char *gpu_name,
                               int cc_major, int cc_minor, bool bf16, char *how, size_t howlen);

/* "48 GFLOP/s" below 1000 GFLOP/s, else "989 TFLOP/s" (4 significant digits). */
void train_format_flops(char *buf, size_t len, double gflops);
/* "2.50 GiB" (MiB below 1 GiB, KiB below 1 MiB, bytes below 1 KiB) */
void train_format_bytes(char *buf, size_t len, size_t bytes);

/* The device-memory check, before anything is allocated: whether the model of config c with
 * microbatches of B sequences of length S (bert_plan_memory) fits into free_bytes less
 * TRAIN_DEVICE_RESERVE_BYTES. When it does not, msg says the bytes needed and their parts, the
 * bytes free on `where` (a phrase such as "GPU 0 (NVIDIA H200)"), and the largest microbatch that
 * fits, with the largest one that also divides the batch (batch / world per rank; batch 0: no
 * such condition). mbs_key and batch_key name the settings in the message. When it fits, msg
 * gets a one-line summary for the log. Pure: o only answers element sizes. */
bool train_mem_fits(char *msg, size_t len, const bert_config *c, const ops *o, int B, int S,
                    int64_t batch, int world, size_t free_bytes, const char *where,
                    const char *mbs_key, const char *batch_key);

/* The device a run's backend works on. */
typedef struct train_device {
    bool gpu;       /* the backend is the CUDA table (its buffers live on a GPU) */
    int dev;        /* that GPU's index */
    bool have_info; /* info was read */
    gpu_info info;  /* name, compute capability, SMs, memory of GPU dev */
} train_device;

/* Fill d for backend o on GPU dev (ignored on the CPU). */
void train_device_init(train_device *d, const ops *o, int dev);
/* On a GPU, log its name, CUDA versions, compute capability, SM count and total and free memory;
 * nothing on the CPU. */
void train_device_log(const train_device *d);

/* The peak for MFU on d (train_peak_gflops_known with the environment): > 0, 0 for an unknown GPU
 * (how says how to set it), -1 on the CPU without an override. */
double train_device_peak_known(const train_device *d, const ops *o, char *how, size_t howlen);

/* The memory check of a run (train_mem_fits) on d: on a GPU against the free memory the driver
 * reports; on any backend against the figure of the test hook CRAM_TEST_DEVICE_FREE_BYTES=<bytes>
 * when it is set (tests reach the refusal without a GPU). Returns 0 with a line for the log in
 * msg when it fits ("" when nothing was checked: the CPU without the hook), or 2 with the
 * refusal in msg. */
int train_device_mem_check(const train_device *d, const ops *o, const bert_config *c, int B, int S,
                           int64_t batch, int world, const char *mbs_key, const char *batch_key,
                           char *msg, size_t len);

/* Device memory at the end of a run: the most the backend held (its own accounting) and what the
 * driver reports in use now (other processes and the CUDA context included). */
typedef struct train_device_mem {
    bool valid;
    size_t peak, in_use;        /* gpu_alloc_stats */
    size_t dev_used, dev_total; /* gpu_mem_info; dev_total 0 when the driver could not say */
} train_device_mem;
void train_device_mem_read(train_device_mem *m, const train_device *d);
/* The reference's closing line ("Max. Mem allocated: X GB. ...") for the log, into buf. */
void train_device_mem_line(char *buf, size_t len, const train_device_mem *m);

/* The system keys of a metrics_<name>.yaml, as the reference writes them (GPU, numGPUs, VRAM in
 * GiB of the backend's peak, RAM in GiB of this process's peak resident set, kWh), plus cram's
 * VRAM_device (GiB in use on the device at the end, driver's view). world: GPUs in the run. */
int train_format_system_yaml(char *buf, size_t len, const train_device *d,
                             const train_device_mem *m, int world, double ram_gib);

#endif
