/* Training throughput of crammed-bert on one backend (CUDA bf16 by default): the bert-o4 step
 * (forward, backward, clipping to train.gradient_clipping, AdamW) at each microbatch asked for,
 * with tokens/s, MFU, device memory, a per-op time table and the GEMM floor of the same step.
 * Its PyTorch peer is bench/gpu_train_peer.py; scripts/gpu_check.sh bench runs both
 * (docs/gpu-bench.md). Usage: bench_gpu_train --help */
#include "config/config.h"
#include "core/core.h"
#include "data/data.h"
#include "model/model.h"
#include "ops/backend.h"
#include "ops/cuda/gpu.h"
#include "ops/ops.h"
#include "optim/adamw.h"
#include "train/train.h"
#include "train/train_report.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MB 16     /* microbatch sizes in one run */
#define MAX_OVR 64    /* config overrides */
#define MAX_SHAPES 64 /* distinct GEMM calls in one step */
#define RING 4        /* pre-collated batches the timed steps cycle through */
#define MASK_ID 6     /* <mask> in cram's tokenizers (<pad> <s> </s> <unk> <cls> <sep> <mask>) */

static void usage(FILE *f) {
    fputs("usage: bench_gpu_train [options] [--config-dir=DIR] [key=value ...]\n"
          "  --microbatch LIST   microbatch sizes, e.g. 128,256,512 (default)\n"
          "  --steps N           timed microsteps per microbatch (default 20)\n"
          "  --warmup K          untimed microsteps before them (default 3)\n"
          "  --profile-steps P   microsteps run again with every op timed (default 2; 0: none)\n"
          "  --accum A           optimizer update every A microsteps (default 1: every step)\n"
          "  --layers L          arch.num_transformer_layers (default: the arch's, 16)\n"
          "  --device D          cuda (default) or cpu: impl.device\n"
          "  --precision P       bf16 (default) or fp32: impl.precision\n"
          "  --seq S             sequence length (default 128)\n"
          "  --vocab V           vocabulary size (default 32768)\n"
          "  --seed N            weights and batches (default 1)\n"
          "key=value overrides go to the pretrain config after arch=crammed-bert train=bert-o4\n"
          "and the options above. MFU is taken against CRAM_PEAK_TFLOPS, default 989 (the dense\n"
          "bf16 peak of an H100/H200 SXM). Prints one RESULT line per microbatch; the first one's\n"
          "third field is tokens/s at the first microbatch.\n",
          f);
}

typedef struct bench_args {
    int mb[MAX_MB], nmb;
    int steps, warmup, profile_steps, accum, layers, seq, vocab;
    uint64_t seed;
    const char *device, *precision;
    char *ovr[MAX_OVR]; /* the user's overrides and --config-dir, in order */
    int novr;
} bench_args;

static int parse_int(const char *name, const char *s, int lo, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > 1 << 30) {
        fprintf(stderr, "bench_gpu_train: %s %s: expected a whole number >= %d\n", name, s, lo);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_list(const char *s, bench_args *a) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    a->nmb = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (a->nmb == MAX_MB) {
            fprintf(stderr, "bench_gpu_train: at most %d microbatch sizes\n", MAX_MB);
            return -1;
        }
        if (parse_int("--microbatch", t, 1, &a->mb[a->nmb++])) return -1;
    }
    if (a->nmb == 0) {
        fprintf(stderr, "bench_gpu_train: --microbatch needs at least one size\n");
        return -1;
    }
    return 0;
}

/* Returns 0, 1 for --help, -1 on a bad argument. */
static int parse_args(int argc, char **argv, bench_args *a) {
    *a = (bench_args){.steps = 20,
                      .warmup = 3,
                      .profile_steps = 2,
                      .accum = 1,
                      .seq = 128,
                      .vocab = 32768,
                      .seed = 1,
                      .device = "cuda",
                      .precision = "bf16"};
    parse_list("128,256,512", a);
    for (int k = 1; k < argc; k++) {
        char *arg = argv[k];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) return 1;
        if (strncmp(arg, "--config-dir", 12) == 0 || arg[0] == '~' ||
            (arg[0] != '-' && strchr(arg, '='))) {
            if (a->novr + 2 > MAX_OVR) {
                fprintf(stderr, "bench_gpu_train: too many overrides\n");
                return -1;
            }
            a->ovr[a->novr++] = arg;
            if (strcmp(arg, "--config-dir") == 0 && k + 1 < argc) a->ovr[a->novr++] = argv[++k];
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "bench_gpu_train: unexpected argument %s (see --help)\n", arg);
            return -1;
        }
        static const char *const known[] = {
            "--microbatch", "--steps", "--warmup", "--profile-steps", "--accum",    "--layers",
            "--seq",        "--vocab", "--seed",   "--device",        "--precision"};
        size_t len = strcspn(arg, "=");
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof *known && !ok; i++)
            ok = strlen(known[i]) == len && strncmp(arg, known[i], len) == 0;
        if (!ok) {
            fprintf(stderr, "bench_gpu_train: unknown option %.*s (see --help)\n", (int)len, arg);
            return -1;
        }
        char name[64];
        const char *val = strchr(arg, '=');
        if (val) {
            snprintf(name, sizeof name, "%.*s", (int)(val - arg), arg);
            val++;
        } else {
            snprintf(name, sizeof name, "%s", arg);
            if (k + 1 >= argc) {
                fprintf(stderr, "bench_gpu_train: %s needs a value\n", name);
                return -1;
            }
            val = argv[++k];
        }
        int rc = 0, seed = 0;
        if (strcmp(name, "--microbatch") == 0)
            rc = parse_list(val, a);
        else if (strcmp(name, "--steps") == 0)
            rc = parse_int(name, val, 1, &a->steps);
        else if (strcmp(name, "--warmup") == 0)
            rc = parse_int(name, val, 0, &a->warmup);
        else if (strcmp(name, "--profile-steps") == 0)
            rc = parse_int(name, val, 0, &a->profile_steps);
        else if (strcmp(name, "--accum") == 0)
            rc = parse_int(name, val, 1, &a->accum);
        else if (strcmp(name, "--layers") == 0)
            rc = parse_int(name, val, 1, &a->layers);
        else if (strcmp(name, "--seq") == 0)
            rc = parse_int(name, val, 1, &a->seq);
        else if (strcmp(name, "--vocab") == 0)
            rc = parse_int(name, val, 8, &a->vocab);
        else if (strcmp(name, "--seed") == 0)
            rc = parse_int(name, val, 0, &seed), a->seed = (uint64_t)seed;
        else if (strcmp(name, "--device") == 0)
            a->device = val;
        else
            a->precision = val;
        if (rc) return -1;
    }
    return 0;
}

/* ---- the timing wrapper: a copy of the backend's table whose every entry syncs, runs the
 * real op, syncs again and adds the time to that op's total. The model cannot tell the
 * difference; entries this file does not know (added to struct ops later) run untimed. ---- */

typedef enum {
    OP_ALLOC,
    OP_FREE,
    OP_UPLOAD,
    OP_DOWNLOAD,
    OP_MEMSET0,
    OP_COPY,
    OP_SYNC,
    OP_UPLOAD_ACT,
    OP_DOWNLOAD_ACT,
    OP_ATTN_STATE_BYTES,
    OP_REFRESH_WEIGHTS,
    OP_MATMUL_FWD,
    OP_MATMUL_BWD,
    OP_EMBED_FWD,
    OP_EMBED_BWD,
    OP_LAYERNORM_FWD,
    OP_RESIDUAL_LAYERNORM_FWD,
    OP_LAYERNORM_BWD,
    OP_ATTENTION_FWD,
    OP_ATTENTION_BWD,
    OP_GELU_GLU_FWD,
    OP_GELU_GLU_BWD,
    OP_GELU_FWD,
    OP_GELU_BWD,
    OP_TANH_FWD,
    OP_TANH_BWD,
    OP_DROPOUT_FWD,
    OP_ADD,
    OP_GATHER_ROWS,
    OP_SCATTER_ROWS_ADD,
    OP_POOL_FWD,
    OP_POOL_BWD,
    OP_XENT_FWD_BWD,
    OP_MSE_FWD_BWD,
    OP_COUNT_CORRECT,
    OP_ADAMW,
    OP_SUMSQ,
    OP_SUM,
    OP_SUM_ACT,
    OP_ACCUMULATE,
    OP_SCALE,
    OP_FILL,
    OP_COUNT
} op_id;

static const char *const op_names[OP_COUNT] = {
    [OP_ALLOC] = "alloc",
    [OP_FREE] = "free",
    [OP_UPLOAD] = "upload",
    [OP_DOWNLOAD] = "download",
    [OP_MEMSET0] = "memset0",
    [OP_COPY] = "copy",
    [OP_SYNC] = "sync",
    [OP_UPLOAD_ACT] = "upload_act",
    [OP_DOWNLOAD_ACT] = "download_act",
    [OP_ATTN_STATE_BYTES] = "attn_state_bytes",
    [OP_REFRESH_WEIGHTS] = "refresh_weights",
    [OP_MATMUL_FWD] = "matmul_fwd",
    [OP_MATMUL_BWD] = "matmul_bwd",
    [OP_EMBED_FWD] = "embed_fwd",
    [OP_EMBED_BWD] = "embed_bwd",
    [OP_LAYERNORM_FWD] = "layernorm_fwd",
    [OP_RESIDUAL_LAYERNORM_FWD] = "residual_layernorm_fwd",
    [OP_LAYERNORM_BWD] = "layernorm_bwd",
    [OP_ATTENTION_FWD] = "attention_fwd",
    [OP_ATTENTION_BWD] = "attention_bwd",
    [OP_GELU_GLU_FWD] = "gelu_glu_fwd",
    [OP_GELU_GLU_BWD] = "gelu_glu_bwd",
    [OP_GELU_FWD] = "gelu_fwd",
    [OP_GELU_BWD] = "gelu_bwd",
    [OP_TANH_FWD] = "tanh_fwd",
    [OP_TANH_BWD] = "tanh_bwd",
    [OP_DROPOUT_FWD] = "dropout_fwd",
    [OP_ADD] = "add",
    [OP_GATHER_ROWS] = "gather_rows",
    [OP_SCATTER_ROWS_ADD] = "scatter_rows_add",
    [OP_POOL_FWD] = "pool_fwd",
    [OP_POOL_BWD] = "pool_bwd",
    [OP_XENT_FWD_BWD] = "xent_fwd_bwd",
    [OP_MSE_FWD_BWD] = "mse_fwd_bwd",
    [OP_COUNT_CORRECT] = "count_correct",
    [OP_ADAMW] = "adamw",
    [OP_SUMSQ] = "sumsq",
    [OP_SUM] = "sum",
    [OP_SUM_ACT] = "sum_act",
    [OP_ACCUMULATE] = "accumulate",
    [OP_SCALE] = "scale",
    [OP_FILL] = "fill",
};

/* One distinct GEMM call of the step: its shape and which outputs it writes. */
enum { G_BIAS = 1, G_DINP = 2, G_DW = 4, G_ACCUM = 8 };
typedef struct gemm_shape {
    int bwd; /* 0 matmul_fwd, 1 matmul_bwd */
    int N, C, OC, flags;
    int64_t calls;
    double secs;     /* synced time in the profiled steps */
    double replay_s; /* time per call when replayed back to back */
} gemm_shape;

typedef struct timed_ops {
    ops o; /* first member: a pointer to it is a pointer to the whole */
    const ops *real;
    double secs[OP_COUNT];
    int64_t calls[OP_COUNT];
    gemm_shape gemm[MAX_SHAPES];
    int ngemm;
} timed_ops;

static timed_ops *tw(const ops *o) {
    return (timed_ops *)o;
}

static double tick(const ops *o) {
    const ops *r = tw(o)->real;
    r->sync(r);
    return core_now();
}

static double tock(const ops *o, op_id id, double t0) {
    timed_ops *t = tw(o);
    t->real->sync(t->real);
    double dt = core_now() - t0;
    t->secs[id] += dt;
    t->calls[id]++;
    return dt;
}

static void gemm_note(const ops *o, int bwd, int N, int C, int OC, int flags, double dt) {
    timed_ops *t = tw(o);
    gemm_shape *g = NULL;
    for (int k = 0; k < t->ngemm && !g; k++) {
        gemm_shape *h = &t->gemm[k];
        if (h->bwd == bwd && h->N == N && h->C == C && h->OC == OC && h->flags == flags) g = h;
    }
    if (!g) {
        if (t->ngemm == MAX_SHAPES) return;
        g = &t->gemm[t->ngemm++];
        *g = (gemm_shape){.bwd = bwd, .N = N, .C = C, .OC = OC, .flags = flags};
    }
    g->calls++;
    g->secs += dt;
}

#define REAL(o) (tw(o)->real)

static void *w_alloc(const ops *o, size_t bytes) {
    double t0 = tick(o);
    void *p = REAL(o)->alloc(REAL(o), bytes);
    tock(o, OP_ALLOC, t0);
    return p;
}
static void w_free(const ops *o, void *p) {
    double t0 = tick(o);
    REAL(o)->free(REAL(o), p);
    tock(o, OP_FREE, t0);
}
static void w_upload(const ops *o, void *dst, const void *src, size_t bytes) {
    double t0 = tick(o);
    REAL(o)->upload(REAL(o), dst, src, bytes);
    tock(o, OP_UPLOAD, t0);
}
static void w_download(const ops *o, void *dst, const void *src, size_t bytes) {
    double t0 = tick(o);
    REAL(o)->download(REAL(o), dst, src, bytes);
    tock(o, OP_DOWNLOAD, t0);
}
static void w_memset0(const ops *o, void *dst, size_t bytes) {
    double t0 = tick(o);
    REAL(o)->memset0(REAL(o), dst, bytes);
    tock(o, OP_MEMSET0, t0);
}
static void w_copy(const ops *o, void *dst, const void *src, size_t bytes) {
    double t0 = tick(o);
    REAL(o)->copy(REAL(o), dst, src, bytes);
    tock(o, OP_COPY, t0);
}
static void w_sync(const ops *o) {
    double t0 = core_now();
    REAL(o)->sync(REAL(o));
    tw(o)->secs[OP_SYNC] += core_now() - t0;
    tw(o)->calls[OP_SYNC]++;
}
static void w_upload_act(const ops *o, float *dst, const float *src, size_t n) {
    double t0 = tick(o);
    REAL(o)->upload_act(REAL(o), dst, src, n);
    tock(o, OP_UPLOAD_ACT, t0);
}
static void w_download_act(const ops *o, float *dst, const float *src, size_t n) {
    double t0 = tick(o);
    REAL(o)->download_act(REAL(o), dst, src, n);
    tock(o, OP_DOWNLOAD_ACT, t0);
}
static size_t w_attn_state_bytes(const ops *o, int B, int S, int NH, int HD) {
    double t0 = tick(o);
    size_t n = REAL(o)->attn_state_bytes(REAL(o), B, S, NH, HD);
    tock(o, OP_ATTN_STATE_BYTES, t0);
    return n;
}
static void w_refresh_weights(const ops *o, float *wa, const float *w, size_t n) {
    double t0 = tick(o);
    REAL(o)->refresh_weights(REAL(o), wa, w, n);
    tock(o, OP_REFRESH_WEIGHTS, t0);
}
static void w_matmul_fwd(const ops *o, float *out, const float *inp, const float *w,
                         const float *bias, int N, int C, int OC, int accum) {
    double t0 = tick(o);
    REAL(o)->matmul_fwd(REAL(o), out, inp, w, bias, N, C, OC, accum);
    double dt = tock(o, OP_MATMUL_FWD, t0);
    gemm_note(o, 0, N, C, OC, (bias ? G_BIAS : 0) | (accum ? G_ACCUM : 0), dt);
}
static void w_matmul_bwd(const ops *o, float *dinp, float *dw, float *dbias, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC, int accum_dinp) {
    double t0 = tick(o);
    REAL(o)->matmul_bwd(REAL(o), dinp, dw, dbias, dout, inp, w, N, C, OC, accum_dinp);
    double dt = tock(o, OP_MATMUL_BWD, t0);
    int flags = (dinp ? G_DINP : 0) | (dw ? G_DW : 0) | (dbias ? G_BIAS : 0) |
                (dinp && accum_dinp ? G_ACCUM : 0);
    gemm_note(o, 1, N, C, OC, flags, dt);
}
static void w_embed_fwd(const ops *o, float *out, const int32_t *ids, const int32_t *types,
                        const float *wte, const float *wpe, const float *pos_scale,
                        const float *tte, int B, int S, int H) {
    double t0 = tick(o);
    REAL(o)->embed_fwd(REAL(o), out, ids, types, wte, wpe, pos_scale, tte, B, S, H);
    tock(o, OP_EMBED_FWD, t0);
}
static void w_embed_bwd(const ops *o, float *dwte, float *dwpe, float *dpos_scale, float *dtte,
                        const float *dout, const int32_t *ids, const int32_t *types,
                        const float *wpe, const float *pos_scale, int pad_id, int B, int S, int H,
                        int V, int NT) {
    double t0 = tick(o);
    REAL(o)->embed_bwd(REAL(o), dwte, dwpe, dpos_scale, dtte, dout, ids, types, wpe, pos_scale,
                       pad_id, B, S, H, V, NT);
    tock(o, OP_EMBED_BWD, t0);
}
static void w_layernorm_fwd(const ops *o, float *out, float *mean, float *rstd, const float *inp,
                            const float *w, const float *b, int N, int H, float eps) {
    double t0 = tick(o);
    REAL(o)->layernorm_fwd(REAL(o), out, mean, rstd, inp, w, b, N, H, eps);
    tock(o, OP_LAYERNORM_FWD, t0);
}
static void w_residual_layernorm_fwd(const ops *o, float *res_out, float *out, float *mean,
                                     float *rstd, const float *res, const float *branch,
                                     const float *w, const float *b, int N, int H, float eps) {
    double t0 = tick(o);
    REAL(o)->residual_layernorm_fwd(REAL(o), res_out, out, mean, rstd, res, branch, w, b, N, H,
                                    eps);
    tock(o, OP_RESIDUAL_LAYERNORM_FWD, t0);
}
static void w_layernorm_bwd(const ops *o, float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean, const float *rstd,
                            int N, int H, int accum) {
    double t0 = tick(o);
    REAL(o)->layernorm_bwd(REAL(o), dinp, dw, db, dout, inp, w, mean, rstd, N, H, accum);
    tock(o, OP_LAYERNORM_BWD, t0);
}
static void w_attention_fwd(const ops *o, float *out, float *probs, const float *qkv,
                            const float *mask, const ops_dropout *drop, int B, int S, int NH,
                            int HD, float scale, int layout) {
    double t0 = tick(o);
    REAL(o)->attention_fwd(REAL(o), out, probs, qkv, mask, drop, B, S, NH, HD, scale, layout);
    tock(o, OP_ATTENTION_FWD, t0);
}
static void w_attention_bwd(const ops *o, float *dqkv, const float *dout, const float *out,
                            const float *qkv, const float *probs, const ops_dropout *drop, int B,
                            int S, int NH, int HD, float scale, int layout) {
    double t0 = tick(o);
    REAL(o)->attention_bwd(REAL(o), dqkv, dout, out, qkv, probs, drop, B, S, NH, HD, scale, layout);
    tock(o, OP_ATTENTION_BWD, t0);
}
static void w_gelu_glu_fwd(const ops *o, float *out, const float *inp, int N, int I) {
    double t0 = tick(o);
    REAL(o)->gelu_glu_fwd(REAL(o), out, inp, N, I);
    tock(o, OP_GELU_GLU_FWD, t0);
}
static void w_gelu_glu_bwd(const ops *o, float *dinp, const float *dout, const float *inp, int N,
                           int I) {
    double t0 = tick(o);
    REAL(o)->gelu_glu_bwd(REAL(o), dinp, dout, inp, N, I);
    tock(o, OP_GELU_GLU_BWD, t0);
}
static void w_gelu_fwd(const ops *o, float *out, const float *inp, size_t n) {
    double t0 = tick(o);
    REAL(o)->gelu_fwd(REAL(o), out, inp, n);
    tock(o, OP_GELU_FWD, t0);
}
static void w_gelu_bwd(const ops *o, float *dinp, const float *dout, const float *inp, size_t n) {
    double t0 = tick(o);
    REAL(o)->gelu_bwd(REAL(o), dinp, dout, inp, n);
    tock(o, OP_GELU_BWD, t0);
}
static void w_tanh_fwd(const ops *o, float *out, const float *inp, size_t n) {
    double t0 = tick(o);
    REAL(o)->tanh_fwd(REAL(o), out, inp, n);
    tock(o, OP_TANH_FWD, t0);
}
static void w_tanh_bwd(const ops *o, float *dinp, const float *dout, const float *out, size_t n) {
    double t0 = tick(o);
    REAL(o)->tanh_bwd(REAL(o), dinp, dout, out, n);
    tock(o, OP_TANH_BWD, t0);
}
static void w_dropout_fwd(const ops *o, float *out, const float *inp, const ops_dropout *drop,
                          size_t n) {
    double t0 = tick(o);
    REAL(o)->dropout_fwd(REAL(o), out, inp, drop, n);
    tock(o, OP_DROPOUT_FWD, t0);
}
static void w_add(const ops *o, float *out, const float *a, const float *b, size_t n) {
    double t0 = tick(o);
    REAL(o)->add(REAL(o), out, a, b, n);
    tock(o, OP_ADD, t0);
}
static void w_gather_rows(const ops *o, float *out, const float *inp, const int32_t *idx, int n,
                          int H) {
    double t0 = tick(o);
    REAL(o)->gather_rows(REAL(o), out, inp, idx, n, H);
    tock(o, OP_GATHER_ROWS, t0);
}
static void w_scatter_rows_add(const ops *o, float *dinp, const float *dout, const int32_t *idx,
                               int n, int H) {
    double t0 = tick(o);
    REAL(o)->scatter_rows_add(REAL(o), dinp, dout, idx, n, H);
    tock(o, OP_SCATTER_ROWS_ADD, t0);
}
static void w_pool_fwd(const ops *o, float *out, const float *inp, int mode, int B, int S, int H) {
    double t0 = tick(o);
    REAL(o)->pool_fwd(REAL(o), out, inp, mode, B, S, H);
    tock(o, OP_POOL_FWD, t0);
}
static void w_pool_bwd(const ops *o, float *dinp, const float *dout, int mode, int B, int S,
                       int H) {
    double t0 = tick(o);
    REAL(o)->pool_bwd(REAL(o), dinp, dout, mode, B, S, H);
    tock(o, OP_POOL_BWD, t0);
}
static void w_xent_fwd_bwd(const ops *o, float *losses, float *dlogits, const float *logits,
                           const int32_t *labels, int N, int V, float grad_scale) {
    double t0 = tick(o);
    REAL(o)->xent_fwd_bwd(REAL(o), losses, dlogits, logits, labels, N, V, grad_scale);
    tock(o, OP_XENT_FWD_BWD, t0);
}
static void w_mse_fwd_bwd(const ops *o, float *losses, float *dpred, const float *pred,
                          const float *targets, int N) {
    double t0 = tick(o);
    REAL(o)->mse_fwd_bwd(REAL(o), losses, dpred, pred, targets, N);
    tock(o, OP_MSE_FWD_BWD, t0);
}
static void w_count_correct(const ops *o, float *hit, const float *logits, const int32_t *labels,
                            int N, int V) {
    double t0 = tick(o);
    REAL(o)->count_correct(REAL(o), hit, logits, labels, N, V);
    tock(o, OP_COUNT_CORRECT, t0);
}
static void w_adamw(const ops *o, float *p, float *pa, const float *g, float *m, float *v, size_t n,
                    double lr, double beta1, double beta2, double eps, double weight_decay,
                    float grad_scale, int64_t t, int coupled) {
    double t0 = tick(o);
    REAL(o)->adamw(REAL(o), p, pa, g, m, v, n, lr, beta1, beta2, eps, weight_decay, grad_scale, t,
                   coupled);
    tock(o, OP_ADAMW, t0);
}
static double w_sumsq(const ops *o, const float *x, size_t n) {
    double t0 = tick(o);
    double s = REAL(o)->sumsq(REAL(o), x, n);
    tock(o, OP_SUMSQ, t0);
    return s;
}
static double w_sum(const ops *o, const float *x, size_t n) {
    double t0 = tick(o);
    double s = REAL(o)->sum(REAL(o), x, n);
    tock(o, OP_SUM, t0);
    return s;
}
static double w_sum_act(const ops *o, const float *x, size_t n) {
    double t0 = tick(o);
    double s = REAL(o)->sum_act(REAL(o), x, n);
    tock(o, OP_SUM_ACT, t0);
    return s;
}
static void w_accumulate(const ops *o, double *acc, const float *x, size_t n) {
    double t0 = tick(o);
    REAL(o)->accumulate(REAL(o), acc, x, n);
    tock(o, OP_ACCUMULATE, t0);
}
static void w_scale(const ops *o, float *x, float s, size_t n) {
    double t0 = tick(o);
    REAL(o)->scale(REAL(o), x, s, n);
    tock(o, OP_SCALE, t0);
}
static void w_fill(const ops *o, float *x, float value, size_t n) {
    double t0 = tick(o);
    REAL(o)->fill(REAL(o), x, value, n);
    tock(o, OP_FILL, t0);
}

/* The wrapper around `real`; counters start at zero. */
static void timed_ops_init(timed_ops *t, const ops *real) {
    memset(t, 0, sizeof *t);
    t->o = *real; /* name, precision, act_bytes, stream, ctx and any entry not replaced below */
    t->real = real;
    ops *o = &t->o;
    o->alloc = w_alloc, o->free = w_free, o->upload = w_upload, o->download = w_download;
    o->memset0 = w_memset0, o->copy = w_copy, o->sync = w_sync, o->upload_act = w_upload_act;
    o->download_act = w_download_act, o->attn_state_bytes = w_attn_state_bytes;
    o->refresh_weights = w_refresh_weights, o->matmul_fwd = w_matmul_fwd;
    o->matmul_bwd = w_matmul_bwd, o->embed_fwd = w_embed_fwd, o->embed_bwd = w_embed_bwd;
    o->layernorm_fwd = w_layernorm_fwd, o->residual_layernorm_fwd = w_residual_layernorm_fwd;
    o->layernorm_bwd = w_layernorm_bwd, o->attention_fwd = w_attention_fwd;
    o->attention_bwd = w_attention_bwd, o->gelu_glu_fwd = w_gelu_glu_fwd;
    o->gelu_glu_bwd = w_gelu_glu_bwd, o->gelu_fwd = w_gelu_fwd, o->gelu_bwd = w_gelu_bwd;
    o->tanh_fwd = w_tanh_fwd, o->tanh_bwd = w_tanh_bwd, o->dropout_fwd = w_dropout_fwd;
    o->add = w_add, o->gather_rows = w_gather_rows, o->scatter_rows_add = w_scatter_rows_add;
    o->pool_fwd = w_pool_fwd, o->pool_bwd = w_pool_bwd, o->xent_fwd_bwd = w_xent_fwd_bwd;
    o->mse_fwd_bwd = w_mse_fwd_bwd, o->count_correct = w_count_correct, o->adamw = w_adamw;
    o->sumsq = w_sumsq, o->sum = w_sum, o->sum_act = w_sum_act, o->accumulate = w_accumulate;
    o->scale = w_scale, o->fill = w_fill;
}

/* ---- the GEMM floor: each GEMM call of the step replayed back to back on scratch buffers of
 * random values (no sync between calls), so launch gaps and the other ops drop out ---- */

static double gemm_flops(const gemm_shape *g) {
    double one = 2.0 * g->N * g->C * g->OC;
    if (!g->bwd) return one;
    return one * ((g->flags & G_DINP ? 1 : 0) + (g->flags & G_DW ? 1 : 0));
}

/* n activations of random values: one block goes up from the host, device copies repeat it */
static void fill_random_act(const ops *o, float *dst, size_t n, core_rng *r) {
    size_t blk = n < ((size_t)1 << 20) ? n : (size_t)1 << 20, ab = (size_t)o->act_bytes;
    float *h = xmalloc(blk * sizeof *h);
    for (size_t k = 0; k < blk; k++)
        h[k] = 0.05f * core_rng_normal(r);
    o->upload_act(o, dst, h, blk);
    free(h);
    for (size_t done = blk; done < n;) {
        size_t c = n - done < done ? n - done : done;
        o->copy(o, (char *)dst + done * ab, dst, c * ab);
        done += c;
    }
}

static void gemm_replay(const ops *o, gemm_shape *g, int n, int profile_steps) {
    size_t in = 1, w = 1, out = 1, oc = 1, ab = (size_t)o->act_bytes;
    for (int k = 0; k < n; k++) {
        size_t N = (size_t)g[k].N, C = (size_t)g[k].C, OC = (size_t)g[k].OC;
        in = N * C > in ? N * C : in;
        w = OC * C > w ? OC * C : w;
        out = N * OC > out ? N * OC : out;
        oc = OC > oc ? OC : oc;
    }
    core_rng r;
    core_rng_init(&r, 11, 0, 0, 0);
    float *A = o->alloc(o, in * ab), *W = o->alloc(o, w * ab), *Y = o->alloc(o, out * ab);
    float *dA = o->alloc(o, in * ab), *dW = o->alloc(o, w * 4), *bias = o->alloc(o, oc * ab);
    float *dbias = o->alloc(o, oc * 4);
    fill_random_act(o, A, in, &r);
    fill_random_act(o, W, w, &r);
    fill_random_act(o, Y, out, &r);
    fill_random_act(o, bias, oc, &r);
    for (int k = 0; k < n; k++) {
        gemm_shape *s = &g[k];
        int per_step = (int)(s->calls / (profile_steps > 0 ? profile_steps : 1));
        if (per_step < 1) per_step = 1;
        int rounds = 0, calls = 0;
        double t0 = 0, dt = 0;
        for (;;) { /* one untimed round, then rounds until 50 ms and 3 rounds have passed */
            for (int c = 0; c < per_step; c++) {
                if (s->bwd)
                    o->matmul_bwd(o, s->flags & G_DINP ? dA : NULL, s->flags & G_DW ? dW : NULL,
                                  s->flags & G_BIAS ? dbias : NULL, Y, A, W, s->N, s->C, s->OC,
                                  (s->flags & G_ACCUM) != 0);
                else
                    o->matmul_fwd(o, Y, A, W, s->flags & G_BIAS ? bias : NULL, s->N, s->C, s->OC,
                                  (s->flags & G_ACCUM) != 0);
            }
            o->sync(o);
            if (rounds++ == 0) {
                t0 = core_now();
                continue;
            }
            calls += per_step;
            dt = core_now() - t0;
            if (dt > 0.05 && rounds > 3) break;
        }
        s->replay_s = dt / calls;
    }
    o->free(o, A), o->free(o, W), o->free(o, Y), o->free(o, dA), o->free(o, dW);
    o->free(o, bias), o->free(o, dbias);
}

/* ---- one microbatch size ---- */

typedef struct mb_result {
    int mb;
    double tok_s, mfu, step_ms, loss, peak_gib, inuse_gib;
} mb_result;

static void print_profile(const timed_ops *t, int P, double step_s, int gpu) {
    int idx[OP_COUNT], n = 0;
    double total = 0;
    for (int k = 0; k < OP_COUNT; k++)
        if (t->calls[k] > 0 && k != OP_SYNC) idx[n++] = k, total += t->secs[k];
    for (int i = 1; i < n; i++) /* longest first */
        for (int j = i; j > 0 && t->secs[idx[j]] > t->secs[idx[j - 1]]; j--) {
            int x = idx[j];
            idx[j] = idx[j - 1], idx[j - 1] = x;
        }
    printf("# per-op time over %d profiled microstep(s), each op between two syncs (ms per "
           "microstep):\n",
           P);
    printf("#   %-24s %10s %10s %7s\n", "op", "calls", "ms", "share");
    for (int k = 0; k < n; k++) {
        int i = idx[k];
        printf("#   %-24s %10.1f %10.3f %6.1f%%\n", op_names[i], (double)t->calls[i] / P,
               1e3 * t->secs[i] / P, 100.0 * t->secs[i] / total);
    }
    printf("#   %-24s %10s %10.3f   (unsynchronised microstep: %.3f ms)\n", "total", "",
           1e3 * total / P, 1e3 * step_s);
    if (gpu)
        printf("# Syncing around each op adds a launch and a host round trip to every op, so "
               "the sum exceeds the unsynchronised microstep.\n");

    printf("# GEMMs of one microstep (N x C -> OC; bwd: dinp and/or dW), synced time in the "
           "step beside the\n# same calls replayed back to back on random data (the GEMM "
           "floor):\n");
    printf("#   %-4s %7s %6s %6s %-9s %6s %10s %10s %9s\n", "", "N", "C", "OC", "writes", "calls",
           "step ms", "floor ms", "TFLOP/s");
    double floor = 0, synced = 0, flops = 0;
    for (int k = 0; k < t->ngemm; k++) {
        const gemm_shape *g = &t->gemm[k];
        double calls = (double)g->calls / P, f = calls * g->replay_s;
        char writes[32];
        snprintf(writes, sizeof writes, "%s%s%s%s", g->bwd ? (g->flags & G_DINP ? "dx" : "") : "y",
                 g->bwd && (g->flags & G_DW) ? (g->flags & G_DINP ? "+dW" : "dW") : "",
                 g->flags & G_BIAS ? "+b" : "", g->flags & G_ACCUM ? "+=" : "");
        printf("#   %-4s %7d %6d %6d %-9s %6.1f %10.3f %10.3f %9.2f\n", g->bwd ? "bwd" : "fwd",
               g->N, g->C, g->OC, writes, calls, 1e3 * g->secs / P, 1e3 * f,
               g->replay_s > 0 ? gemm_flops(g) / g->replay_s / 1e12 : 0.0);
        floor += f;
        synced += g->secs / P;
        flops += calls * gemm_flops(g);
    }
    printf("# GEMM floor: %.3f ms per microstep (%.3g TFLOP at %.3g TFLOP/s), %.0f%% of the "
           "unsynchronised microstep; GEMMs synced in the step: %.3f ms\n",
           1e3 * floor, flops / 1e12, floor > 0 ? flops / floor / 1e12 : 0.0,
           100.0 * floor / step_s, 1e3 * synced);
}

/* What the memory plan (bert_plan_memory: the bytes cram pretrain checks before it allocates)
 * says on this backend row: beside each measured peak, and the largest microbatch that fits on
 * the 80 GB and 141 GB cards (their memory as nvidia-smi reports it, less the reserve the
 * trainer keeps for library workspaces and the CUDA context). */
static void memory_report(const ops *o, const bert_config *bc, int S, const mb_result *res, int n,
                          bool gpu) {
    printf("# memory plan (%s, %s, sequence %d):\n", o->name, o->precision, S);
    for (int k = 0; k < n; k++) {
        bert_mem_plan p;
        bert_plan_memory(&p, bc, o, res[k].mb, S);
        char meas[64] = "";
        if (gpu)
            snprintf(meas, sizeof meas, ", measured peak %.2f GiB (%+.1f%%)", res[k].peak_gib,
                     100.0 * (res[k].peak_gib * 1073741824.0 / (double)p.total - 1.0));
        printf("#   microbatch %d: planned %.2f GiB (state %.2f, working weights %.2f, "
               "activations %.2f)%s\n",
               res[k].mb, p.total / 1073741824.0, p.state / 1073741824.0, p.working / 1073741824.0,
               p.acts / 1073741824.0, meas);
    }
    static const struct {
        const char *card;
        double mib;
    } cards[] = {{"H100 80GB (81,559 MiB)", 81559}, {"H200 (143,771 MiB)", 143771}};
    for (size_t k = 0; k < sizeof cards / sizeof *cards; k++) {
        size_t bytes = (size_t)(cards[k].mib * 1048576.0) - TRAIN_DEVICE_RESERVE_BYTES;
        int best = bert_plan_max_batch(bc, o, S, bytes, 1 << 20);
        printf("RESULT gpu_memory max_microbatch=%d card=\"%s\" precision=%s sequence=%d\n", best,
               cards[k].card, o->precision, S);
    }
}

static void make_batches(mlm_batch *ring, const mlm_opts *mo, int B, int S, uint64_t seed) {
    int32_t *rows = xmalloc((size_t)B * S * sizeof *rows);
    uint64_t *keys = xmalloc((size_t)B * sizeof *keys);
    core_rng r;
    core_rng_init(&r, seed, 0, 0, 1);
    for (int k = 0; k < RING; k++) {
        for (size_t i = 0; i < (size_t)B * S; i++)
            rows[i] = 7 + (int32_t)core_rng_below(&r, (uint32_t)(mo->vocab_size - 7));
        for (int i = 0; i < B; i++)
            keys[i] = (uint64_t)k * (uint64_t)B + (uint64_t)i;
        mlm_batch_init(&ring[k], B, S, mo);
        mlm_collate(&ring[k], rows, B, S, mo, seed, keys);
    }
    free(rows);
    free(keys);
}

/* forward + backward, and the optimizer update every accum-th microstep */
static double microstep(bert_model *m, const mlm_batch *b, const adamw_hparams *hp, double lr,
                        double clip, int accum, int64_t *k) {
    /* as cram pretrain does: the scale folded into the loss gradient, forward and backward
     * queued back to back, the loss read after both (fetch_loss false from the set-up) */
    m->grad_scale = 1.0f / (float)accum;
    bert_forward(m, b->input_ids, NULL, b->labels, NULL, b->B, b->S, false, 1, (uint64_t)*k);
    bert_backward(m, 1.0f / (float)accum);
    double loss = bert_mlm_loss(m);
    ++*k;
    if (*k % accum == 0) adamw_model_step(m, NULL, hp, lr, clip, *k / accum);
    return loss;
}

static void run_microbatch(const ops *o, bool gpu, const bert_config *bc, const cfg_node *cfg,
                           const bench_args *a, int B, double flops_tok, double peak_tflops,
                           mb_result *res) {
    int S = a->seq;
    char err[512];
    adamw_hparams hp;
    double lr;
    if (adamw_hparams_from_cfg(cfg, "train.optim", &hp, &lr, err, sizeof err)) core_die("%s", err);
    double clip = cfg_num_or(cfg, "train.gradient_clipping", 0);
    mlm_opts mo = {.mlm_probability = cfg_num_or(cfg, "train.objective.mlm_probability", 0.25),
                   .use_80_20_rule = cfg_bool_or(cfg, "train.objective.use_80_20_rule", true),
                   .mask_id = MASK_ID,
                   .pad_id = 0,
                   .vocab_size = bc->V};
    mlm_batch ring[RING];
    make_batches(ring, &mo, B, S, a->seed);

    bert_model m;
    bert_init(&m, bc, o);
    bert_init_weights(&m, a->seed);
    m.fetch_loss = false; /* microstep() reads the loss after the backward */
    cfg_node *dk = cfg_get(cfg, "train.limited_decay_keys");
    if (dk && dk->type == CFG_LIST) {
        char *keys[32];
        int nk = 0;
        for (int i = 0; i < dk->n && nk < 32; i++)
            if (dk->items[i]->type == CFG_STR) keys[nk++] = dk->items[i]->s;
        bert_set_decay_keys(&m, keys, nk);
    }
    bert_acts_ensure(&m, B, S);

    int64_t k = 0;
    double loss = 0;
    for (int s = 0; s < a->warmup; s++)
        loss = microstep(&m, &ring[s % RING], &hp, lr, clip, a->accum, &k);
    o->sync(o);
    double t0 = core_now();
    for (int s = 0; s < a->steps; s++)
        loss = microstep(&m, &ring[s % RING], &hp, lr, clip, a->accum, &k);
    o->sync(o);
    double dt = core_now() - t0;
    size_t inuse = 0, peak = 0;
    gpu_alloc_stats(&inuse, &peak);

    *res = (mb_result){.mb = B,
                       .tok_s = (double)a->steps * B * S / dt,
                       .step_ms = 1e3 * dt / a->steps,
                       .loss = loss,
                       .peak_gib = peak / 1073741824.0,
                       .inuse_gib = inuse / 1073741824.0};
    res->mfu = peak_tflops > 0 ? res->tok_s * flops_tok / (peak_tflops * 1e12) : NAN;
    char mem[96] = "n/a (no device memory)";
    if (gpu)
        snprintf(mem, sizeof mem, "%.2f GiB (in use after the steps: %.2f GiB)", res->peak_gib,
                 res->inuse_gib);
    char mfu[32] = "n/a";
    if (isfinite(res->mfu)) snprintf(mfu, sizeof mfu, "%.1f%%", 100 * res->mfu);
    char peak_s[32] = "n/a";
    if (gpu) snprintf(peak_s, sizeof peak_s, "%.2f", res->peak_gib);
    printf("RESULT gpu_train %.0f microbatch=%d mfu=%s step_ms=%.3f loss=%.4f peak_mem_gib=%s\n",
           res->tok_s, B, mfu, res->step_ms, loss, peak_s);
    printf("# microbatch %d: %.0f tokens/s, MFU %s, %.3f ms per microstep, loss %.4f after %lld "
           "microsteps, peak device memory %s\n",
           B, res->tok_s, mfu, res->step_ms, loss, (long long)k, mem);
    fflush(stdout);

    if (a->profile_steps > 0) {
        timed_ops *t = xmalloc(sizeof *t);
        timed_ops_init(t, o);
        m.ops = &t->o;
        microstep(&m, &ring[0], &hp, lr, clip, a->accum, &k); /* settles the wrapper */
        timed_ops_init(t, o);
        for (int s = 0; s < a->profile_steps; s++)
            microstep(&m, &ring[s % RING], &hp, lr, clip, a->accum, &k);
        m.ops = o;
        gemm_replay(o, t->gemm, t->ngemm, a->profile_steps);
        print_profile(t, a->profile_steps, dt / a->steps, gpu);
        free(t);
        fflush(stdout);
    }
    bert_free(&m);
    for (int r = 0; r < RING; r++)
        mlm_batch_free(&ring[r]);
}

int main(int argc, char **argv) {
    bench_args a;
    int pr = parse_args(argc, argv, &a);
    if (pr) {
        usage(pr > 0 ? stdout : stderr);
        return pr > 0 ? 0 : 2;
    }
    /* the recipe, then the options, then the user's overrides: the last word wins */
    char dev[64], prec[64], layers[64];
    snprintf(dev, sizeof dev, "impl.device=%s", a.device);
    snprintf(prec, sizeof prec, "impl.precision=%s", a.precision);
    snprintf(layers, sizeof layers, "arch.num_transformer_layers=%d", a.layers);
    char *ovr[MAX_OVR + 8];
    int n = 0;
    ovr[n++] = "arch=crammed-bert";
    ovr[n++] = "train=bert-o4";
    ovr[n++] = dev;
    ovr[n++] = prec;
    if (a.layers > 0) ovr[n++] = layers;
    for (int k = 0; k < a.novr; k++)
        ovr[n++] = a.ovr[k];
    cfg_error ce = {0};
    cfg_node *cfg = cfg_from_args("pretrain", n, ovr, &ce);
    if (!cfg) {
        fprintf(stderr, "bench_gpu_train: %s\n", ce.msg);
        return 2;
    }
    char err[512] = "";
    bert_config bc;
    if (bert_config_from_cfg(&bc, cfg, a.vocab, err, sizeof err)) {
        fprintf(stderr, "bench_gpu_train: %s\n", err);
        cfg_free(cfg);
        return 2;
    }
    if (a.seq > bc.max_pos) {
        fprintf(stderr, "bench_gpu_train: --seq %d exceeds arch.embedding.max_seq_length %d\n",
                a.seq, bc.max_pos);
        cfg_free(cfg);
        return 2;
    }
    backend_choice choice;
    const ops *o = NULL;
    if (backend_choose(&choice, cfg, err, sizeof err) == 0)
        o = backend_open(&choice, 0, err, sizeof err);
    if (!o) {
        fprintf(stderr, "bench_gpu_train: %s\n", err);
        cfg_free(cfg);
        return 2;
    }

    bool gpu = choice.device == BACKEND_CUDA;
    double flops_tok = train_flops_per_token(&bc, a.seq), peak_tflops = 989.0;
    const char *env = getenv("CRAM_PEAK_TFLOPS");
    char peak_how[160] = "the dense bf16 peak of an H100/H200 SXM; CRAM_PEAK_TFLOPS overrides";
    if (env && atof(env) > 0) {
        peak_tflops = atof(env);
        snprintf(peak_how, sizeof peak_how, "CRAM_PEAK_TFLOPS");
    } else if (!gpu) {
        peak_tflops = 0; /* a GPU's peak says nothing about a CPU */
    } else {
        /* the card's own dense peak for this precision when cram's table knows it */
        gpu_info gi;
        double t = 0;
        if (gpu_query(&gi, err, sizeof err) == 0 && gi.count > 0)
            t = train_gpu_peak_tflops(gi.name, gi.cc_major, gi.cc_minor, choice.bf16);
        if (t > 0) {
            peak_tflops = t;
            snprintf(peak_how, sizeof peak_how, "the dense %s peak of the %.100s from cram's table",
                     choice.bf16 ? "bf16" : "fp32", gi.name);
        }
    }
    printf("# bench_gpu_train: %s, %d layers, hidden %d, %d heads, FFN %d, vocabulary %d, "
           "sequence %d, %.0f%% of rows decoded\n",
           bc.arch_name, bc.L, bc.H, bc.NH, bc.I, bc.V, a.seq, 100 * bc.sparse_pred);
    printf("# backend: %s\n", o->desc);
    if (gpu) {
        gpu_info gi;
        if (gpu_query(&gi, err, sizeof err) == 0 && gi.count > 0)
            printf("# device: %s, compute capability %d.%d, %.1f GiB\n", gi.name, gi.cc_major,
                   gi.cc_minor, gi.total_mem / 1073741824.0);
    }
    printf("# microstep: forward + backward (dropout off, as bert-o4), optimizer update every %d "
           "microstep(s): clipping to %g, %s lr %g; %d warm-up + %d timed microsteps\n",
           a.accum, cfg_num_or(cfg, "train.gradient_clipping", 0),
           cfg_str_or(cfg, "train.optim.type", "AdamW"), cfg_num_or(cfg, "train.optim.lr", 0),
           a.warmup, a.steps);
    printf("# batches: uniform random ids 7..%d masked by the library's collator (mlm_collate: "
           "%g of each row, 80/10/10), %d batches in turn\n",
           bc.V - 1, cfg_num_or(cfg, "train.objective.mlm_probability", 0.25), RING);
    if (peak_tflops > 0)
        printf("# MFU: %.1f MFLOP per token (train_flops_per_token) against %.0f TFLOP/s (%s)\n",
               flops_tok / 1e6, peak_tflops, peak_how);
    else
        printf("# MFU: n/a on the CPU (%.1f MFLOP per token; set CRAM_PEAK_TFLOPS to get one)\n",
               flops_tok / 1e6);
    fflush(stdout);

    mb_result res[MAX_MB];
    for (int k = 0; k < a.nmb; k++)
        run_microbatch(o, gpu, &bc, cfg, &a, a.mb[k], flops_tok, peak_tflops, &res[k]);

    printf("# summary (%s, %s):\n#   %10s %12s %7s %10s %12s\n", o->name, o->precision,
           "microbatch", "tokens/s", "MFU", "ms/step", "peak GiB");
    for (int k = 0; k < a.nmb; k++) {
        char mfu[32] = "n/a", mem[32] = "n/a";
        if (isfinite(res[k].mfu)) snprintf(mfu, sizeof mfu, "%.1f%%", 100 * res[k].mfu);
        if (gpu) snprintf(mem, sizeof mem, "%.2f", res[k].peak_gib);
        printf("#   %10d %12.0f %7s %10.3f %12s\n", res[k].mb, res[k].tok_s, mfu, res[k].step_ms,
               mem);
    }
    if (gpu)
        printf("# peak device memory is the most the backend has held since the program "
               "started, so a later microbatch's figure covers the earlier ones\n");
    memory_report(o, &bc, a.seq, res, a.nmb, gpu);
    backend_close(o);
    cfg_free(cfg);
    return 0;
}
