/* The numeric backend as a table of functions at layer granularity. The model is written once
 * against `struct ops`; a backend is opened once per process from the impl config (backend.h)
 * and carries its own context (threads, stream, handles). Rows today: "cpu" (fp32, OpenBLAS +
 * OpenMP, the reference), "cpu-bf16" (the same kernels with bf16 activations and weights: the
 * oracle of the CUDA bf16 backend) and, when built, "cuda".
 *
 * Rules every backend and every caller keep:
 * - Buffers that ops read or write are backend memory: they come from `alloc` and are filled or
 *   read only through upload/download (raw bytes), upload_act/download_act (activations, from and
 *   to host floats) and memset0/copy. The model never dereferences them.
 * - Element types. All pointers are typed `float *`, but three kinds of buffer exist:
 *     A  activations, activation gradients, logits and the working copy of the weights: elements
 *        of act_bytes bytes (fp32 or bf16). Every `w`, `b`, `bias`, `wte`, `wpe`, `tte` and
 *        `pos_scale` an op reads is the working copy (type A).
 *     F  fp32 always: parameter gradients (dw, db, dbias, dwte, ...: fp32 accumulation), master
 *        weights, optimizer moments, LayerNorm mean/rstd, per-row losses, masks, regression
 *        targets, per-row hits and the inputs of sum/sumsq.
 *     I  int32 ids, types, labels and row indices.
 *   Each op's comment names its A arguments; every other float argument is F. The attention
 *   state (probs) is the backend's own: attn_state_bytes says how large it is.
 * - Signatures: the table first, then outputs, then inputs, then shapes (B batch, S sequence,
 *   H hidden, NH heads, HD head width, I FFN width, V vocabulary, N rows = B*S or a row count).
 * - Parameter gradients are ACCUMULATED (+=), so microbatches add up; the caller zeroes them.
 *   Activation gradients are overwritten unless a parameter says `accum`.
 * - Dropout is a pure function of (seed, step, stream, element index) through Philox (see
 *   ops_dropout_keep below), so a backward pass or another backend regenerates the same mask.
 * - Ops are called from one host thread, never concurrently; results are ordered as issued.
 */
#ifndef CRAM_OPS_OPS_H
#define CRAM_OPS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rng_philox.h"

#ifdef __CUDACC__
#define OPS_FN static inline __host__ __device__
#else
#define OPS_FN static inline
#endif

/* Which dropout mask: p is the drop probability (0 = identity), key = core_rng_key(seed, rank,
 * stream), step = the micro-step. A site in the network owns one stream number. */
typedef struct ops_dropout {
    float p;
    uint32_t key[2];
    uint64_t step;
} ops_dropout;

/* Element i is kept iff the i%4-th word of philox(ctr = {i/4, step}, key) >= p * 2^32. */
OPS_FN int ops_dropout_keep(const ops_dropout *d, uint64_t i) {
    uint32_t ctr[4] = {(uint32_t)(i >> 2), (uint32_t)(i >> 34), (uint32_t)d->step,
                       (uint32_t)(d->step >> 32)};
    uint32_t out[4];
    core_philox4x32_10(ctr, d->key, out);
    double thr = (double)d->p * 4294967296.0;
    return (double)out[i & 3] >= thr;
}

/* QKV layout of the fused projection output [N, 3H]. */
typedef enum {
    OPS_QKV_HEAD_INTERLEAVED = 0, /* per head h: [q_h | k_h | v_h], HD each (crammed-bert) */
    OPS_QKV_BLOCKS = 1,           /* [Q | K | V], heads inside each block (Hugging Face BERT) */
} ops_qkv_layout;

typedef struct ops ops;
struct ops {
    const char *name;      /* "cpu", "cpu-bf16", "cuda" */
    const char *precision; /* "fp32" or "bf16": the type of activations and the working weights */
    int act_bytes;         /* bytes per activation element: 4 (fp32) or 2 (bf16) */
    bool device_memory;    /* buffers live in GPU memory (the host cannot read them) */
    void *stream;          /* the backend's CUDA stream (NULL on the CPU), for dist_set_stream */
    void *ctx;             /* the backend's own state: threads, handles, workspace */
    char desc[512];        /* one line for the logs: what runs where with how many threads */

    /* ---- memory ---- */
    void *(*alloc)(const ops *o, size_t bytes); /* zeroed; dies on failure */
    void (*free)(const ops *o, void *p);
    /* raw bytes, host <-> backend and backend <-> backend */
    void (*upload)(const ops *o, void *dst, const void *host_src, size_t bytes);
    void (*download)(const ops *o, void *host_dst, const void *src, size_t bytes);
    void (*memset0)(const ops *o, void *dst, size_t bytes);
    void (*copy)(const ops *o, void *dst, const void *src, size_t bytes);
    void (*sync)(const ops *o);
    /* n host floats <-> n activation elements (converted when act_bytes != 4; bf16 rounds to
     * nearest even) */
    void (*upload_act)(const ops *o, float *dst, const float *host_src, size_t n);
    void (*download_act)(const ops *o, float *host_dst, const float *src, size_t n);
    /* Bytes of the attention state attention_fwd saves for attention_bwd (the probabilities on
     * the CPU; a fused kernel may keep the log-sum-exp instead). */
    size_t (*attn_state_bytes)(const ops *o, int B, int S, int NH, int HD);
    /* The working copy of the weights (act type) from the fp32 master weights, n elements.
     * wa == w (only possible when act_bytes == 4) is a no-op. */
    void (*refresh_weights)(const ops *o, float *wa, const float *w, size_t n);

    /* ---- dense layers ---- */
    /* out[N,OC] = inp[N,C] @ w[OC,C]^T (+ bias[OC]) (+ out if accum). A: out, inp, w, bias */
    void (*matmul_fwd)(const ops *o, float *out, const float *inp, const float *w,
                       const float *bias, int N, int C, int OC, int accum);
    /* dinp[N,C] (=/+= by accum_dinp) dout @ w; dw[OC,C] += dout^T @ inp; dbias[OC] += colsum.
     * Any of dinp, dw, dbias may be NULL. A: dinp, dout, inp, w (dinp may alias inp) */
    void (*matmul_bwd)(const ops *o, float *dinp, float *dw, float *dbias, const float *dout,
                       const float *inp, const float *w, int N, int C, int OC, int accum_dinp);

    /* ---- embedding ----
     * out[b,s,:] = wte[ids] + pos_scale * wpe[s] + tte[types (or 0 when types is NULL)]
     * wpe may be NULL (no positions); pos_scale NULL means 1; tte NULL means no type table.
     * A: out, wte, wpe, pos_scale, tte */
    void (*embed_fwd)(const ops *o, float *out, const int32_t *ids, const int32_t *types,
                      const float *wte, const float *wpe, const float *pos_scale, const float *tte,
                      int B, int S, int H);
    /* dwte[ids] += dout except rows whose id == pad_id (pad_id < 0: none); dwpe[s] += dout when
     * pos_scale is NULL, else dpos_scale += <dout, wpe>; dtte[type] += dout. V and NT are the
     * row counts of wte and tte (every id < V, every type < NT): a device backend sizes its
     * per-row bookkeeping by them. Repeated ids add up in row order on every backend.
     * A: dout, wpe, pos_scale */
    void (*embed_bwd)(const ops *o, float *dwte, float *dwpe, float *dpos_scale, float *dtte,
                      const float *dout, const int32_t *ids, const int32_t *types, const float *wpe,
                      const float *pos_scale, int pad_id, int B, int S, int H, int V, int NT);

    /* ---- layernorm: out = (x - mean) * rstd * w + b; mean/rstd [N] (F) saved for backward.
     * Statistics in fp32. A: out, inp, w, b; res_out, res, branch; dinp, dout ---- */
    void (*layernorm_fwd)(const ops *o, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int H, float eps);
    /* res_out = res + branch, then out = LN(res_out): the pre-LN residual step in one pass. The
     * LayerNorm reads res_out as stored (rounded to the activation type), so the fused op equals
     * add followed by layernorm_fwd on every backend. */
    void (*residual_layernorm_fwd)(const ops *o, float *res_out, float *out, float *mean,
                                   float *rstd, const float *res, const float *branch,
                                   const float *w, const float *b, int N, int H, float eps);
    /* dinp (=/+= by accum) LN backward; dw, db += */
    void (*layernorm_bwd)(const ops *o, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *mean, const float *rstd,
                          int N, int H, int accum);

    /* ---- attention (bidirectional) ----
     * qkv [B,S,3*NH*HD] in `layout`; out [B,S,NH*HD]; probs [B,NH,S,S] saved softmax (before
     * dropout). mask [B,S] (1 keep, 0 pad) or NULL: scores += (1-mask[key]) * -10000.
     * Softmax in fp32. A: out, qkv, dqkv, dout; probs: the backend's attention state */
    void (*attention_fwd)(const ops *o, float *out, float *probs, const float *qkv,
                          const float *mask, const ops_dropout *drop, int B, int S, int NH, int HD,
                          float scale, int layout);
    /* out is what attention_fwd wrote for the same qkv: a backward that keeps no probabilities
     * takes D_i = dout_i . out_i from it (a row may ignore it) */
    void (*attention_bwd)(const ops *o, float *dqkv, const float *dout, const float *out,
                          const float *qkv, const float *probs, const ops_dropout *drop, int B,
                          int S, int NH, int HD, float scale, int layout);

    /* ---- activations: every argument A ---- */
    /* out[N,I/2] = inp[:, :I/2] * gelu(inp[:, I/2:]) (exact erf GELU) */
    void (*gelu_glu_fwd)(const ops *o, float *out, const float *inp, int N, int I);
    void (*gelu_glu_bwd)(const ops *o, float *dinp, const float *dout, const float *inp, int N,
                         int I);
    void (*gelu_fwd)(const ops *o, float *out, const float *inp, size_t n);
    void (*gelu_bwd)(const ops *o, float *dinp, const float *dout, const float *inp, size_t n);
    void (*tanh_fwd)(const ops *o, float *out, const float *inp, size_t n);
    void (*tanh_bwd)(const ops *o, float *dinp, const float *dout, const float *out,
                     size_t n); /* uses out */
    /* out = inp * keep / (1-p); in place allowed. Backward is the same map on the gradient. */
    void (*dropout_fwd)(const ops *o, float *out, const float *inp, const ops_dropout *drop,
                        size_t n);
    void (*add)(const ops *o, float *out, const float *a, const float *b,
                size_t n); /* in place allowed */

    /* ---- rows: every float argument A ---- */
    /* out[i,:] = inp[idx[i],:] for i < n */
    void (*gather_rows)(const ops *o, float *out, const float *inp, const int32_t *idx, int n,
                        int H);
    /* dinp[idx[i],:] += dout[i,:] (indices distinct) */
    void (*scatter_rows_add)(const ops *o, float *dinp, const float *dout, const int32_t *idx,
                             int n, int H);
    /* Pool [B,S,H] -> [B,H]: mode 0 = position 0, 1 = mean over all S positions. */
    void (*pool_fwd)(const ops *o, float *out, const float *inp, int mode, int B, int S, int H);
    void (*pool_bwd)(const ops *o, float *dinp, const float *dout, int mode, int B, int S,
                     int H); /* += */

    /* ---- losses ----
     * Softmax cross-entropy over rows of logits [N,V]: losses[i] = -log softmax(logits_i)[y_i],
     * 0 where y_i == -100. When dlogits is not NULL it gets (softmax - onehot) * grad_scale
     * (0 on ignored rows); dlogits may alias logits. A: dlogits, logits. */
    void (*xent_fwd_bwd)(const ops *o, float *losses, float *dlogits, const float *logits,
                         const int32_t *labels, int N, int V, float grad_scale);

    /* Squared error for regression: losses[i] = (pred[i] - targets[i])^2 (fp32) and
     * dpred[i] = 2 * (pred[i] - targets[i]) / N. A: dpred, pred. */
    void (*mse_fwd_bwd)(const ops *o, float *losses, float *dpred, const float *pred,
                        const float *targets, int N);
    /* Masked accuracy without the logits leaving the backend: hit[i] = 1 when labels[i] != -100
     * and the first maximum of row i is labels[i], else 0. A: logits. */
    void (*count_correct)(const ops *o, float *hit, const float *logits, const int32_t *labels,
                          int N, int V);

    /* ---- whole-buffer ops (optimizer) ---- */
    /* PyTorch AdamW on n contiguous elements; g is multiplied by grad_scale first (clipping and
     * loss scaling fold in there); t >= 1 counts updates. The scalars come in double, as Python
     * floats reach torch: 1 - beta, lr / (1 - beta1^t) and 1 - lr * wd are formed in double and
     * rounded to fp32 once. coupled: torch.optim.Adam with L2
     * weight decay added to the gradient instead (bert-original). pa: the working copy (A) of
     * the same n weights, rewritten from the new p; NULL when the backend computes from p. */
    void (*adamw)(const ops *o, float *p, float *pa, const float *g, float *m, float *v, size_t n,
                  double lr, double beta1, double beta2, double eps, double weight_decay,
                  float grad_scale, int64_t t, int coupled);
    /* Reductions of F buffers to the host, fp64 accumulation in a fixed order: the same value
     * for any thread count, so runs and resumes are bit-reproducible. sum_act reads A. */
    double (*sumsq)(const ops *o, const float *x, size_t n);
    double (*sum)(const ops *o, const float *x, size_t n);
    double (*sum_act)(const ops *o, const float *x, size_t n);
    /* acc[0] += the fixed-order sum of x (F), with acc one double of backend memory: running
     * totals (validation loss and hits) that stay on the backend until the host asks. */
    void (*accumulate)(const ops *o, double *acc, const float *x, size_t n);
    /* A buffers */
    void (*scale)(const ops *o, float *x, float s, size_t n);
    void (*fill)(const ops *o, float *x, float value, size_t n);
};

/* The CPU rows. Applications open backends through backend.h; tests and benches that compare
 * backends may name these directly. Both load OpenBLAS on first use. */
const ops *ops_cpu(void);      /* fp32 */
const ops *ops_cpu_bf16(void); /* bf16 activations and working weights, fp32 accumulation */
/* A table over `inner` (a CPU row) whose buffers the host cannot touch outside an op: they are
 * PROT_NONE pages except while one of the table's functions runs, and an op handed a pointer
 * that is not such a buffer stops. device_memory is true. `inner` is copied; free the result with
 * free() (backend_close). CRAM_GUARD_BACKEND=1 makes backend_open return one (ops_guard.c). */
const ops *ops_guard_wrap(const ops *inner);

/* Load OpenBLAS (the OpenMP build when installed) with an OPENBLAS_CORETYPE chosen from the
 * CPU's features unless the environment already sets one. Safe to call more than once. */
void ops_cpu_blas_init(void);
/* Use `threads` OpenMP threads, and set flush-to-zero and denormals-are-zero in the calling
 * thread and every thread of the team (the BLAS computes in the same threads). Returns how many
 * threads of the team report both modes on (0 where the CPU has no such modes). */
int ops_cpu_set_threads(int threads, bool flush_subnormals);
/* "SkylakeX (OPENBLAS_CORETYPE=SkylakeX, chosen from cpuid), openmp build" and the like. */
const char *ops_cpu_blas_info(void);
/* Single-precision GEMM through the loaded OpenBLAS, row-major (cblas semantics), for benches. */
void ops_cpu_sgemm(int transa, int transb, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif
