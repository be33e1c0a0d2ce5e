/* The numeric backend as a table of functions at layer granularity. The model is written once
 * against `struct ops`; the CPU backend (fp32, OpenBLAS + OpenMP) is the reference and a CUDA
 * backend (bf16 activations, fp32 master weights) can fill the same table.
 *
 * Rules every backend and every caller keep:
 * - Buffers that ops read or write are backend memory: they come from `alloc` and are filled or
 *   read only through `upload`/`download`/`memset0`. The model never dereferences them. All
 *   pointers are typed `float *`; a backend that stores activations in another type (bf16) says
 *   so in `act_bytes` and the model sizes and offsets activation buffers with it. Parameters,
 *   gradients, optimizer moments, per-row losses and the small index/label arrays are always
 *   4-byte elements (float or int32).
 * - Signatures: outputs first, then inputs, then shapes (B batch, S sequence, H hidden, NH heads,
 *   HD head width, I FFN width, V vocabulary, N rows = B*S or a row count).
 * - Parameter gradients are ACCUMULATED (+=), so microbatches add up; the caller zeroes them.
 *   Activation gradients are overwritten unless a parameter says `accum`.
 * - Dropout is a pure function of (seed, step, stream, element index) through Philox (see
 *   ops_dropout_keep below), so a backward pass or another backend regenerates the same mask.
 */
#ifndef CRAM_OPS_OPS_H
#define CRAM_OPS_OPS_H

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
    const char *name;
    int act_bytes; /* bytes per activation element (4 on CPU) */

    /* ---- memory ---- */
    void *(*alloc)(size_t bytes); /* zeroed; dies on failure */
    void (*free)(void *p);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*memset0)(void *dst, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes); /* backend to backend */
    void (*sync)(void);

    /* ---- dense layers ---- */
    /* out[N,OC] = inp[N,C] @ w[OC,C]^T (+ bias[OC]) (+ out if accum) */
    void (*matmul_fwd)(float *out, const float *inp, const float *w, const float *bias, int N,
                       int C, int OC, int accum);
    /* dinp[N,C] (=/+= by accum_dinp) dout @ w; dw[OC,C] += dout^T @ inp; dbias[OC] += colsum.
     * Any of dinp, dw, dbias may be NULL. */
    void (*matmul_bwd)(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                       const float *w, int N, int C, int OC, int accum_dinp);

    /* ---- embedding ----
     * out[b,s,:] = wte[ids] + pos_scale * wpe[s] + tte[types (or 0 when types is NULL)]
     * wpe may be NULL (no positions); pos_scale NULL means 1; tte NULL means no type table. */
    void (*embed_fwd)(float *out, const int32_t *ids, const int32_t *types, const float *wte,
                      const float *wpe, const float *pos_scale, const float *tte, int B, int S,
                      int H);
    /* dwte[ids] += dout except rows whose id == pad_id (pad_id < 0: none); dwpe[s] += dout when
     * pos_scale is NULL, else dpos_scale += <dout, wpe>; dtte[type] += dout. */
    void (*embed_bwd)(float *dwte, float *dwpe, float *dpos_scale, float *dtte, const float *dout,
                      const int32_t *ids, const int32_t *types, const float *wpe,
                      const float *pos_scale, int pad_id, int B, int S, int H);

    /* ---- layernorm: out = (x - mean) * rstd * w + b; mean/rstd [N] saved for backward ---- */
    void (*layernorm_fwd)(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int H, float eps);
    /* res_out = res + branch, then out = LN(res_out): the pre-LN residual step in one pass. */
    void (*residual_layernorm_fwd)(float *res_out, float *out, float *mean, float *rstd,
                                   const float *res, const float *branch, const float *w,
                                   const float *b, int N, int H, float eps);
    /* dinp (=/+= by accum) LN backward; dw, db += */
    void (*layernorm_bwd)(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, const float *mean, const float *rstd, int N, int H,
                          int accum);

    /* ---- attention (bidirectional) ----
     * qkv [B,S,3*NH*HD] in `layout`; out [B,S,NH*HD]; probs [B,NH,S,S] saved softmax (before
     * dropout). mask [B,S] (1 keep, 0 pad) or NULL: scores += (1-mask[key]) * -10000. */
    void (*attention_fwd)(float *out, float *probs, const float *qkv, const float *mask,
                          const ops_dropout *drop, int B, int S, int NH, int HD, float scale,
                          int layout);
    void (*attention_bwd)(float *dqkv, const float *dout, const float *qkv, const float *probs,
                          const ops_dropout *drop, int B, int S, int NH, int HD, float scale,
                          int layout);

    /* ---- activations ---- */
    /* out[N,I/2] = inp[:, :I/2] * gelu(inp[:, I/2:]) (exact erf GELU) */
    void (*gelu_glu_fwd)(float *out, const float *inp, int N, int I);
    void (*gelu_glu_bwd)(float *dinp, const float *dout, const float *inp, int N, int I);
    void (*gelu_fwd)(float *out, const float *inp, size_t n);
    void (*gelu_bwd)(float *dinp, const float *dout, const float *inp, size_t n);
    void (*tanh_fwd)(float *out, const float *inp, size_t n);
    void (*tanh_bwd)(float *dinp, const float *dout, const float *out, size_t n); /* uses out */
    /* out = inp * keep / (1-p); in place allowed. Backward is the same map on the gradient. */
    void (*dropout_fwd)(float *out, const float *inp, const ops_dropout *drop, size_t n);
    void (*add)(float *out, const float *a, const float *b, size_t n); /* in place allowed */

    /* ---- rows ---- */
    /* out[i,:] = inp[idx[i],:] for i < n */
    void (*gather_rows)(float *out, const float *inp, const int32_t *idx, int n, int H);
    /* dinp[idx[i],:] += dout[i,:] (indices distinct) */
    void (*scatter_rows_add)(float *dinp, const float *dout, const int32_t *idx, int n, int H);
    /* Pool [B,S,H] -> [B,H]: mode 0 = position 0, 1 = mean over all S positions. */
    void (*pool_fwd)(float *out, const float *inp, int mode, int B, int S, int H);
    void (*pool_bwd)(float *dinp, const float *dout, int mode, int B, int S, int H); /* += */

    /* ---- losses ----
     * Softmax cross-entropy over rows of logits [N,V]: losses[i] = -log softmax(logits_i)[y_i],
     * 0 where y_i == -100. When dlogits is not NULL it gets (softmax - onehot) * grad_scale
     * (0 on ignored rows); dlogits may alias logits. */
    void (*xent_fwd_bwd)(float *losses, float *dlogits, const float *logits, const int32_t *labels,
                         int N, int V, float grad_scale);

    /* ---- whole-buffer ops (optimizer) ---- */
    /* PyTorch AdamW on n contiguous elements; g is multiplied by grad_scale first (clipping and
     * loss scaling fold in there); t >= 1 counts updates. coupled: torch.optim.Adam with L2
     * weight decay added to the gradient instead (bert-original). */
    void (*adamw)(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, float grad_scale, int64_t t,
                  int coupled);
    /* Reductions to the host, fp64 accumulation in a fixed order: the same value for any
     * thread count, so runs and resumes are bit-reproducible. */
    double (*sumsq)(const float *x, size_t n);
    double (*sum)(const float *x, size_t n);
    void (*scale)(float *x, float s, size_t n);
    void (*fill)(float *x, float value, size_t n);
};

/* The CPU backend (always available). Loads OpenBLAS on first use; see ops_cpu_blas_init. */
const ops *ops_cpu(void);

/* Load OpenBLAS (the OpenMP build when installed) with an OPENBLAS_CORETYPE chosen from the
 * CPU's features unless the environment already sets one. Safe to call more than once. */
void ops_cpu_blas_init(void);
/* "SkylakeX (OPENBLAS_CORETYPE=SkylakeX, chosen from cpuid), openmp build" and the like. */
const char *ops_cpu_blas_info(void);
/* Single-precision GEMM through the loaded OpenBLAS, row-major (cblas semantics), for benches. */
void ops_cpu_sgemm(int transa, int transb, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif
