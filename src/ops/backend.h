/* The one place that turns impl.device, impl.precision and impl.threads into a backend table.
 * Train, eval, export and the benches call only this; nothing else sets up OpenBLAS, OpenMP or
 * a GPU. Choosing is split from opening because the data-parallel layer must start in between:
 * it needs to know whether gradients will live in GPU memory, and it picks the rank's GPU.
 *
 *     backend_choice bc;
 *     if (backend_choose(&bc, cfg, err, sizeof err)) ... exit 2
 *     dist_init(&d, backend, bc.device == BACKEND_CUDA, ...);
 *     const ops *o = backend_open(&bc, d.device, err, sizeof err);
 */
#ifndef CRAM_OPS_BACKEND_H
#define CRAM_OPS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "ops/ops.h"

typedef enum backend_device {
    BACKEND_CPU = 0,
    BACKEND_CUDA = 1,
} backend_device;

typedef struct backend_choice {
    backend_device device;
    bool bf16;     /* bf16 activations and working weights (fp32 masters and accumulation) */
    int threads;   /* CPU threads the backend will use */
    bool ftz;      /* CPU: flush subnormal operands and results to zero (impl.flush_denormals) */
    char why[256]; /* how the choice was made, for the log */
} backend_choice;

/* Reads impl.device (auto | cpu | cuda), impl.precision (auto | fp32 | bf16; auto is bf16 on a
 * GPU when impl.mixed_precision is set, fp32 on the CPU), impl.threads (0: every core) and
 * impl.flush_denormals (default true), and
 * checks them against this build and machine. "auto" without a usable GPU chooses the CPU and
 * says why in c->why. Returns 0, or 2 with a message: an unknown value, or impl.device=cuda
 * where no CUDA backend can run (the message says why). */
int backend_choose(backend_choice *c, const cfg_node *cfg, char *err, size_t errlen);

/* Opens the chosen backend; gpu is the device index for CUDA (the rank's GPU), ignored on the
 * CPU. Returns the table, or NULL with a message. The table lives until backend_close. */
const ops *backend_open(const backend_choice *c, int gpu, char *err, size_t errlen);
void backend_close(const ops *o);

/* choose + open in one call, for single-process tools (export, benches). */
const ops *backend_from_cfg(const cfg_node *cfg, char *err, size_t errlen);

/* Every backend table this build can open on this machine, for tests that run one suite over
 * each: 0 "cpu", 1 "cpu-bf16", 2 "cuda" fp32 and 3 "cuda" bf16 on GPU 0 when a GPU is usable
 * (opened once, kept for the process). NULL past the end; skip_reason (optional) receives why a
 * row is missing, and stays empty past the last row. */
const ops *backend_row(int k, char *skip_reason, size_t len);

#endif
