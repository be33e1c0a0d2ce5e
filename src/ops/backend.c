/* impl.* -> a backend table (backend.h). */
#include "ops/backend.h"

#include "core/core.h"
#include "ops/cuda/gpu.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *cfg_s(const cfg_node *cfg, const char *path, const char *def) {
    return cfg ? cfg_str_or(cfg, path, def) : def;
}

/* Why no CUDA backend can run here, or NULL when one can. */
static const char *cuda_unusable(char *buf, size_t len) {
    if (!gpu_compiled())
        return "this cram was built without CUDA (nvcc was not found at build time)";
    gpu_info gi;
    char err[256];
    if (gpu_query(&gi, err, sizeof err)) {
        snprintf(buf, len, "the CUDA runtime failed: %.200s", err);
        return buf;
    }
    if (gi.count == 0)
        return "no CUDA GPU is visible (no driver, or CUDA_VISIBLE_DEVICES hides them)";
    return NULL;
}

int backend_choose(backend_choice *c, const cfg_node *cfg, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    const char *dev = cfg_s(cfg, "impl.device", "auto");
    const char *prec = cfg_s(cfg, "impl.precision", "auto");
    bool mixed = cfg ? cfg_bool_or(cfg, "impl.mixed_precision", false) : false;
    if (strcmp(dev, "auto") && strcmp(dev, "cpu") && strcmp(dev, "cuda"))
        return core_errorf(err, errlen, "impl.device=%s: expected auto, cpu or cuda", dev), 2;
    if (strcmp(prec, "auto") && strcmp(prec, "fp32") && strcmp(prec, "bf16"))
        return core_errorf(err, errlen, "impl.precision=%s: expected auto, fp32 or bf16", prec), 2;
    char buf[256];
    const char *no_cuda = strcmp(dev, "cpu") ? cuda_unusable(buf, sizeof buf) : NULL;
    if (strcmp(dev, "cuda") == 0) {
        if (no_cuda) return core_errorf(err, errlen, "impl.device=cuda: %s", no_cuda), 2;
        c->device = BACKEND_CUDA;
        snprintf(c->why, sizeof c->why, "impl.device=cuda");
    } else if (strcmp(dev, "auto") == 0) {
        c->device = no_cuda ? BACKEND_CPU : BACKEND_CUDA;
        snprintf(c->why, sizeof c->why, "impl.device=auto: %.200s",
                 no_cuda ? no_cuda : "a usable GPU");
    } else {
        c->device = BACKEND_CPU;
        snprintf(c->why, sizeof c->why, "impl.device=cpu");
    }
    if (strcmp(prec, "auto") == 0)
        c->bf16 = c->device == BACKEND_CUDA && mixed;
    else
        c->bf16 = strcmp(prec, "bf16") == 0;
    int cores = omp_get_num_procs();
    int64_t want = cfg ? cfg_int_or(cfg, "impl.threads", 0) : 0;
    c->threads = want > 0 && want < cores ? (int)want : cores;
    c->ftz = cfg ? cfg_bool_or(cfg, "impl.flush_denormals", true) : true;
    return 0;
}

/* The CUDA tables are opened once per (device, precision) and kept: a process that asks twice
 * (tests, the pretrain-then-eval job) shares one stream and one set of cuBLASLt plans. Returns
 * the kept table, or NULL with the reason in err. */
static const ops *cuda_row(int gpu, bool bf16, char *err, size_t errlen) {
    static const ops *rows[2][16];
    char buf[256];
    const char *why = cuda_unusable(buf, sizeof buf);
    if (!why && (gpu < 0 || gpu >= 16)) why = "no such GPU index";
    if (!why && !rows[bf16][gpu] && !(rows[bf16][gpu] = ops_cuda_open(gpu, bf16, buf, sizeof buf)))
        why = buf;
    if (why) {
        core_errorf(err, errlen, "cannot open the CUDA backend on GPU %d: %s", gpu, why);
        return NULL;
    }
    return rows[bf16][gpu];
}

const ops *backend_open(const backend_choice *c, int gpu, char *err, size_t errlen) {
    if (c->device == BACKEND_CUDA) {
        const ops *row = cuda_row(gpu, c->bf16, err, errlen);
        if (!row) return NULL;
        /* a copy per opening, as for the CPU rows, so that the description carries the reason */
        ops *o = xmalloc(sizeof *o);
        *o = *row;
        size_t l = strlen(o->desc);
        snprintf(o->desc + l, sizeof o->desc - l, " [%.250s]", c->why);
        return o;
    }
    int ftz_threads = ops_cpu_set_threads(c->threads, c->ftz);
    /* an opened table is a copy of the row with its own context and description */
    ops *o = xmalloc(sizeof *o);
    *o = *(c->bf16 ? ops_cpu_bf16() : ops_cpu());
    o->ctx = NULL;
    const char *sub = !c->ftz ? ", subnormals kept"
                      : ftz_threads == c->threads
                          ? ", subnormals flushed to zero"
                          : ", subnormals kept (no flush-to-zero mode here)";
    snprintf(o->desc, sizeof o->desc,
             "%s, %s activations and weights, %d thread(s)%s, BLAS %.150s [%.250s]", o->name,
             o->precision, c->threads, sub, ops_cpu_blas_info(), c->why);
    const char *guard = getenv("CRAM_GUARD_BACKEND");
    if (guard && strcmp(guard, "1") == 0) {
        /* a CPU test of the rule that callers touch backend memory only through the ops */
        size_t l = strlen(o->desc);
        snprintf(o->desc + l, sizeof o->desc - l,
                 " (guarded: backend memory inaccessible outside ops)");
        const ops *g = ops_guard_wrap(o); /* copies o */
        free(o);
        return g;
    }
    return o;
}

void backend_close(const ops *o) {
    free((void *)o);
}

const ops *backend_from_cfg(const cfg_node *cfg, char *err, size_t errlen) {
    backend_choice c;
    if (backend_choose(&c, cfg, err, errlen)) return NULL;
    return backend_open(&c, 0, err, errlen);
}

const ops *backend_row(int k, char *skip_reason, size_t len) {
    if (skip_reason && len) skip_reason[0] = '\0';
    if (k == 0) return ops_cpu();
    if (k == 1) return ops_cpu_bf16();
    if (k == 2 || k == 3) {
        char err[320];
        const ops *row = cuda_row(0, k == 3, err, sizeof err);
        if (row) return row;
        if (skip_reason && len)
            snprintf(skip_reason, len, "cuda %s row skipped: %s", k == 3 ? "bf16" : "fp32", err);
    }
    return NULL;
}
