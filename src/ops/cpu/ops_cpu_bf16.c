/* The bf16-emulating CPU backend ("cpu-bf16"): the numbers a bf16 GPU backend should produce,
 * computed on the CPU, so that every act_bytes == 2 path of the model runs in CI and a CUDA
 * bf16 backend has an oracle to be held against.
 *
 * Precision policy:
 * - Stored in bf16 (type A, 2 bytes): activations, activation gradients, logits and the working
 *   copy of the weights. fp32 -> bf16 rounds to nearest even once per op output (bf16.h).
 * - Computed in fp32: every op widens its A inputs to fp32 (exact) and runs the fp32 CPU row's
 *   code on them: GEMMs accumulate in fp32 (OpenBLAS sgemm), LayerNorm statistics, softmax,
 *   cross-entropy and every reduction in fp32 or wider. Outputs that accumulate (matmul accum,
 *   accum_dinp, layernorm_bwd accum, pool_bwd, scatter_rows_add, scale) read the bf16 output,
 *   add in fp32 and round once.
 * - Kept in fp32 (type F): parameter gradients (+=), master weights and AdamW moments (the
 *   update is the fp32 row's, bit for bit; the bf16 working copy is rounded from the new
 *   masters), LayerNorm mean/rstd, losses, hits, and the attention probabilities (the state).
 * - The one fused op, residual_layernorm_fwd, normalizes the residual it stores, i.e. the sum
 *   already rounded to bf16 (what a fused GPU kernel that keeps the bf16 residual does), so it
 *   equals add followed by layernorm_fwd and its mean/rstd match the backward's input.
 *
 * Mechanics: A inputs are widened into grow-only fp32 scratch slots owned by this file (ops
 * are never called concurrently), the fp32 row runs on the scratch, and A outputs are rounded
 * back. All inputs are widened before any output is written, so every aliasing the table allows
 * (in-place dropout, add, activations' backward, layernorm_bwd dinp == dout, xent dlogits ==
 * logits, matmul_bwd dinp == inp) behaves as if the buffers were distinct. Ops whose tables have
 * no size in the signature (embeddings, row scatter) and pure copies work on bf16 directly. */
#include "ops/ops.h"

#include "core/core.h"
#include "ops/bf16.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ops *F32; /* the fp32 CPU row, which does the arithmetic */

/* ---- scratch and conversions --------------------------------------------------------------- */
enum { NSLOT = 6 };
static float *slot_buf[NSLOT];
static size_t slot_len[NSLOT];

/* fp32 scratch slot k with room for n floats (contents undefined) */
static float *slot(int k, size_t n) {
    if (n == 0) n = 1;
    if (slot_len[k] < n) {
        free(slot_buf[k]);
        slot_buf[k] = xmalloc(n * sizeof(float));
        slot_len[k] = n;
    }
    return slot_buf[k];
}

/* below this many elements a conversion runs on one thread */
#define PAR_MIN 32768

static void widen(float *dst, const float *src_a, size_t n) {
    const uint16_t *s = (const uint16_t *)src_a;
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dst[i] = ops_bf16_float(s[i]);
}

static void narrow(float *dst_a, const float *src, size_t n) {
    uint16_t *d = (uint16_t *)dst_a;
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
    for (size_t i = 0; i < n; i++)
        d[i] = ops_bf16_round(src[i]);
}

/* narrow, and leave in src the values stored (the fp32 of the rounded bf16) */
static void narrow_keep(float *dst_a, float *src, size_t n) {
    uint16_t *d = (uint16_t *)dst_a;
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        uint16_t h = ops_bf16_round(src[i]);
        d[i] = h;
        src[i] = ops_bf16_float(h);
    }
}

/* the n A elements at a as fp32 in slot k; NULL stays NULL */
static float *in_a(int k, const float *a, size_t n) {
    if (!a) return NULL;
    float *f = slot(k, n);
    widen(f, a, n);
    return f;
}

static inline float ld(const uint16_t *p, size_t i) {
    return ops_bf16_float(p[i]);
}

/* ---- memory and conversions at the edges ----------------------------------------------------- */
static void bf_upload_act(const ops *self, float *dst, const float *host_src, size_t n) {
    (void)self;
    narrow(dst, host_src, n);
}
static void bf_download_act(const ops *self, float *host_dst, const float *src, size_t n) {
    (void)self;
    widen(host_dst, src, n);
}
static size_t bf_attn_state_bytes(const ops *self, int B, int S, int NH, int HD) {
    (void)self, (void)HD;
    return (size_t)B * NH * S * S * sizeof(float); /* fp32 softmax probabilities */
}
static void bf_refresh_weights(const ops *self, float *wa, const float *w, size_t n) {
    (void)self;
    CORE_CHECK((const void *)wa != (const void *)w,
               "refresh_weights: the bf16 working copy cannot share the fp32 masters' memory");
    narrow(wa, w, n);
}

/* ---- dense ----------------------------------------------------------------------------------- */
static void bf_matmul_fwd(const ops *self, float *out, const float *inp, const float *w,
                          const float *bias, int N, int C, int OC, int accum) {
    (void)self;
    size_t no = (size_t)N * OC;
    const float *fi = in_a(0, inp, (size_t)N * C), *fw = in_a(1, w, (size_t)OC * C);
    const float *fb = in_a(2, bias, (size_t)OC);
    float *fo = accum ? in_a(3, out, no) : slot(3, no);
    F32->matmul_fwd(F32, fo, fi, fw, fb, N, C, OC, accum);
    narrow(out, fo, no);
}

static void bf_matmul_bwd(const ops *self, float *dinp, float *dw, float *dbias, const float *dout,
                          const float *inp, const float *w, int N, int C, int OC, int accum_dinp) {
    (void)self;
    size_t ni = (size_t)N * C;
    const float *fd = in_a(0, dout, (size_t)N * OC);
    const float *fi = dw ? in_a(1, inp, ni) : NULL; /* read only for dw */
    const float *fw = dinp ? in_a(2, w, (size_t)OC * C) : NULL;
    float *fx = NULL;
    if (dinp) fx = accum_dinp ? in_a(3, dinp, ni) : slot(3, ni);
    F32->matmul_bwd(F32, fx, dw, dbias, fd, fi, fw, N, C, OC, accum_dinp);
    if (dinp) narrow(dinp, fx, ni);
}

/* ---- embedding: the tables' row counts are not in the signature, so rows are read in place --- */
static void bf_embed_fwd(const ops *self, float *out, const int32_t *ids, const int32_t *types,
                         const float *wte, const float *wpe, const float *pos_scale,
                         const float *tte, int B, int S, int H) {
    (void)self;
    const uint16_t *te = (const uint16_t *)wte, *pe = (const uint16_t *)wpe;
    const uint16_t *tt = (const uint16_t *)tte;
    uint16_t *o16 = (uint16_t *)out;
    float sc = pos_scale ? ld((const uint16_t *)pos_scale, 0) : 1.0f;
    /* the fp32 row's order: e, then + sc * p, then + t; one rounding at the end */
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            size_t r = (size_t)b * S + s;
            const uint16_t *e = te + (size_t)ids[r] * H;
            const uint16_t *p = pe ? pe + (size_t)s * H : NULL;
            const uint16_t *t = tt ? tt + (size_t)(types ? types[r] : 0) * H : NULL;
            uint16_t *o = o16 + r * H;
            for (int h = 0; h < H; h++) {
                float x = ld(e, (size_t)h);
                if (p) x += sc * ld(p, (size_t)h);
                if (t) x += ld(t, (size_t)h);
                o[h] = ops_bf16_round(x);
            }
        }
}

static void bf_embed_bwd(const ops *self, float *dwte, float *dwpe, float *dpos_scale, float *dtte,
                         const float *dout, const int32_t *ids, const int32_t *types,
                         const float *wpe, const float *pos_scale, int pad_id, int B, int S, int H,
                         int V, int NT) {
    (void)self;
    const float *fd = in_a(0, dout, (size_t)B * S * H);
    /* the fp32 row reads wpe (positions 0..S-1) only for dpos_scale, and pos_scale only as a
     * flag */
    const float *fp = wpe && pos_scale && dpos_scale ? in_a(1, wpe, (size_t)S * H) : NULL;
    const float *fs = in_a(2, pos_scale, 1);
    F32->embed_bwd(F32, dwte, dwpe, dpos_scale, dtte, fd, ids, types, fp, fs, pad_id, B, S, H, V,
                   NT);
}

/* ---- layernorm ----------------------------------------------------------------------------- */
static void bf_layernorm_fwd(const ops *self, float *out, float *mean, float *rstd,
                             const float *inp, const float *w, const float *b, int N, int H,
                             float eps) {
    (void)self;
    size_t n = (size_t)N * H;
    const float *fi = in_a(0, inp, n), *fw = in_a(1, w, (size_t)H), *fb = in_a(2, b, (size_t)H);
    float *fo = slot(3, n);
    F32->layernorm_fwd(F32, fo, mean, rstd, fi, fw, fb, N, H, eps);
    narrow(out, fo, n);
}

static void bf_residual_layernorm_fwd(const ops *self, float *res_out, float *out, float *mean,
                                      float *rstd, const float *res, const float *branch,
                                      const float *w, const float *b, int N, int H, float eps) {
    (void)self;
    size_t n = (size_t)N * H;
    const float *fr = in_a(0, res, n), *fb = in_a(1, branch, n);
    const float *fw = in_a(2, w, (size_t)H), *fbias = in_a(3, b, (size_t)H);
    float *fs = slot(4, n), *fo = slot(5, n);
    F32->add(F32, fs, fr, fb, n);
    narrow_keep(res_out, fs, n); /* the LN below normalizes the residual as stored */
    F32->layernorm_fwd(F32, fo, mean, rstd, fs, fw, fbias, N, H, eps);
    narrow(out, fo, n);
}

static void bf_layernorm_bwd(const ops *self, float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, const float *w, const float *mean, const float *rstd,
                             int N, int H, int accum) {
    (void)self;
    size_t n = (size_t)N * H;
    const float *fd = in_a(0, dout, n), *fi = in_a(1, inp, n), *fw = in_a(2, w, (size_t)H);
    float *fx = accum && dinp ? in_a(3, dinp, n) : slot(3, n);
    F32->layernorm_bwd(F32, fx, dw, db, fd, fi, fw, mean, rstd, N, H, accum);
    if (dinp) narrow(dinp, fx, n);
}

/* ---- attention: qkv, out, dout and dqkv in bf16; the probabilities (state) in fp32 ---------- */
static void bf_attention_fwd(const ops *self, float *out, float *probs, const float *qkv,
                             const float *mask, const ops_dropout *drop, int B, int S, int NH,
                             int HD, float scale, int layout) {
    (void)self;
    size_t no = (size_t)B * S * NH * HD;
    const float *fq = in_a(0, qkv, 3 * no);
    float *fo = slot(1, no);
    F32->attention_fwd(F32, fo, probs, fq, mask, drop, B, S, NH, HD, scale, layout);
    narrow(out, fo, no);
}

static void bf_attention_bwd(const ops *self, float *dqkv, const float *dout, const float *out,
                             const float *qkv, const float *probs, const ops_dropout *drop, int B,
                             int S, int NH, int HD, float scale, int layout) {
    (void)self;
    size_t no = (size_t)B * S * NH * HD;
    const float *fd = in_a(0, dout, no), *fq = in_a(1, qkv, 3 * no);
    float *fx = slot(2, 3 * no);
    (void)out; /* the probabilities are kept */
    F32->attention_bwd(F32, fx, fd, NULL, fq, probs, drop, B, S, NH, HD, scale, layout);
    narrow(dqkv, fx, 3 * no);
}

/* ---- activations ------------------------------------------------------------------------------
 */
static void bf_gelu_glu_fwd(const ops *self, float *out, const float *inp, int N, int I) {
    (void)self;
    size_t ni = (size_t)N * I, no = (size_t)N * (I / 2);
    const float *fi = in_a(0, inp, ni);
    float *fo = slot(1, no);
    F32->gelu_glu_fwd(F32, fo, fi, N, I);
    narrow(out, fo, no);
}

static void bf_gelu_glu_bwd(const ops *self, float *dinp, const float *dout, const float *inp,
                            int N, int I) {
    (void)self;
    size_t ni = (size_t)N * I, no = (size_t)N * (I / 2);
    const float *fd = in_a(0, dout, no), *fi = in_a(1, inp, ni);
    float *fx = slot(2, ni);
    F32->gelu_glu_bwd(F32, fx, fd, fi, N, I);
    narrow(dinp, fx, ni);
}

static void bf_gelu_fwd(const ops *self, float *out, const float *inp, size_t n) {
    (void)self;
    float *f = in_a(0, inp, n);
    F32->gelu_fwd(F32, f, f, n); /* elementwise: in place on the scratch */
    narrow(out, f, n);
}

static void bf_gelu_bwd(const ops *self, float *dinp, const float *dout, const float *inp,
                        size_t n) {
    (void)self;
    float *fd = in_a(0, dout, n);
    const float *fi = in_a(1, inp, n);
    F32->gelu_bwd(F32, fd, fd, fi, n);
    narrow(dinp, fd, n);
}

static void bf_tanh_fwd(const ops *self, float *out, const float *inp, size_t n) {
    (void)self;
    float *f = in_a(0, inp, n);
    F32->tanh_fwd(F32, f, f, n);
    narrow(out, f, n);
}

static void bf_tanh_bwd(const ops *self, float *dinp, const float *dout, const float *out,
                        size_t n) {
    (void)self;
    float *fd = in_a(0, dout, n);
    const float *fo = in_a(1, out, n);
    F32->tanh_bwd(F32, fd, fd, fo, n);
    narrow(dinp, fd, n);
}

static void bf_dropout_fwd(const ops *self, float *out, const float *inp, const ops_dropout *drop,
                           size_t n) {
    (void)self;
    if (!drop || drop->p <= 0.0f) { /* the identity: bf16 in, the same bf16 out */
        if (out != inp && n) memcpy(out, inp, n * sizeof(uint16_t));
        return;
    }
    float *f = in_a(0, inp, n);
    F32->dropout_fwd(F32, f, f, drop, n); /* the same Philox mask, element for element */
    narrow(out, f, n);
}

static void bf_add(const ops *self, float *out, const float *a, const float *b, size_t n) {
    (void)self;
    float *fa = in_a(0, a, n);
    const float *fb = in_a(1, b, n);
    F32->add(F32, fa, fa, fb, n);
    narrow(out, fa, n);
}

/* ---- rows ------------------------------------------------------------------------------------ */
static void bf_gather_rows(const ops *self, float *out, const float *inp, const int32_t *idx, int n,
                           int H) {
    (void)self;
    uint16_t *o = (uint16_t *)out;
    const uint16_t *x = (const uint16_t *)inp;
#pragma omp parallel for
    for (int i = 0; i < n; i++)
        memcpy(o + (size_t)i * H, x + (size_t)idx[i] * H, (size_t)H * sizeof(uint16_t));
}

static void bf_scatter_rows_add(const ops *self, float *dinp, const float *dout, const int32_t *idx,
                                int n, int H) {
    (void)self;
    uint16_t *d16 = (uint16_t *)dinp;
    const uint16_t *g16 = (const uint16_t *)dout;
#pragma omp parallel for
    for (int i = 0; i < n; i++) {
        uint16_t *d = d16 + (size_t)idx[i] * H;
        const uint16_t *g = g16 + (size_t)i * H;
        for (int h = 0; h < H; h++)
            d[h] = ops_bf16_round(ld(d, (size_t)h) + ld(g, (size_t)h));
    }
}

static void bf_pool_fwd(const ops *self, float *out, const float *inp, int mode, int B, int S,
                        int H) {
    (void)self;
    size_t no = (size_t)B * H;
    if (mode == 0) { /* position 0 of each sequence: a copy */
        uint16_t *o = (uint16_t *)out;
        const uint16_t *x = (const uint16_t *)inp;
        for (int b = 0; b < B; b++)
            memcpy(o + (size_t)b * H, x + (size_t)b * S * H, (size_t)H * sizeof(uint16_t));
        return;
    }
    const float *fi = in_a(0, inp, (size_t)B * S * H);
    float *fo = slot(1, no);
    F32->pool_fwd(F32, fo, fi, mode, B, S, H);
    narrow(out, fo, no);
}

static void bf_pool_bwd(const ops *self, float *dinp, const float *dout, int mode, int B, int S,
                        int H) {
    (void)self;
    uint16_t *x16 = (uint16_t *)dinp;
    const uint16_t *d16 = (const uint16_t *)dout;
    /* the fp32 row's expression per element, rounded once */
#pragma omp parallel for
    for (int b = 0; b < B; b++) {
        const uint16_t *d = d16 + (size_t)b * H;
        uint16_t *dx = x16 + (size_t)b * S * H;
        for (int t = 0; t < (mode == 0 ? 1 : S); t++)
            for (int h = 0; h < H; h++) {
                float g = ld(d, (size_t)h);
                float add = mode == 0 ? g : g / (float)S;
                size_t k = (size_t)t * H + h;
                dx[k] = ops_bf16_round(ld(dx, k) + add);
            }
    }
}

/* ---- losses and metrics ------------------------------------------------------------------- */
static void bf_xent_fwd_bwd(const ops *self, float *losses, float *dlogits, const float *logits,
                            const int32_t *labels, int N, int V, float grad_scale) {
    (void)self;
    size_t n = (size_t)N * V;
    float *f = in_a(0, logits, n);
    /* the fp32 row allows dlogits == logits: the gradient overwrites the scratch */
    F32->xent_fwd_bwd(F32, losses, dlogits ? f : NULL, f, labels, N, V, grad_scale);
    if (dlogits) narrow(dlogits, f, n);
}

static void bf_mse_fwd_bwd(const ops *self, float *losses, float *dpred, const float *pred,
                           const float *targets, int N) {
    (void)self;
    const float *fp = in_a(0, pred, (size_t)N);
    float *fd = slot(1, (size_t)N);
    F32->mse_fwd_bwd(F32, losses, fd, fp, targets, N);
    narrow(dpred, fd, (size_t)N);
}

static void bf_count_correct(const ops *self, float *hit, const float *logits,
                             const int32_t *labels, int N, int V) {
    (void)self;
    const float *f = in_a(0, logits, (size_t)N * V);
    F32->count_correct(F32, hit, f, labels, N, V);
}

/* ---- optimizer and whole-buffer ops ---------------------------------------------------------- */
static void bf_adamw(const ops *self, float *p, float *pa, const float *g, float *m, float *v,
                     size_t n, double lr, double beta1, double beta2, double eps,
                     double weight_decay, float grad_scale, int64_t t, int coupled) {
    (void)self;
    F32->adamw(F32, p, NULL, g, m, v, n, lr, beta1, beta2, eps, weight_decay, grad_scale, t,
               coupled);
    if (pa) narrow(pa, p, n);
}

static double bf_sum_act(const ops *self, const float *x, size_t n) {
    (void)self;
    const float *f = in_a(0, x, n);
    return F32->sum(F32, f, n);
}

static void bf_scale(const ops *self, float *x, float s, size_t n) {
    (void)self;
    uint16_t *h = (uint16_t *)x;
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
    for (size_t i = 0; i < n; i++)
        h[i] = ops_bf16_round(ops_bf16_float(h[i]) * s);
}

static void bf_fill(const ops *self, float *x, float value, size_t n) {
    (void)self;
    uint16_t *h = (uint16_t *)x, v = ops_bf16_round(value);
#pragma omp parallel for simd schedule(static) if (parallel : n >= PAR_MIN)
    for (size_t i = 0; i < n; i++)
        h[i] = v;
}

static ops bf16_ops = {
    .name = "cpu-bf16",
    .precision = "bf16",
    .act_bytes = 2,
    .device_memory = false,
    .upload_act = bf_upload_act,
    .download_act = bf_download_act,
    .attn_state_bytes = bf_attn_state_bytes,
    .refresh_weights = bf_refresh_weights,
    .matmul_fwd = bf_matmul_fwd,
    .matmul_bwd = bf_matmul_bwd,
    .embed_fwd = bf_embed_fwd,
    .embed_bwd = bf_embed_bwd,
    .layernorm_fwd = bf_layernorm_fwd,
    .residual_layernorm_fwd = bf_residual_layernorm_fwd,
    .layernorm_bwd = bf_layernorm_bwd,
    .attention_fwd = bf_attention_fwd,
    .attention_bwd = bf_attention_bwd,
    .gelu_glu_fwd = bf_gelu_glu_fwd,
    .gelu_glu_bwd = bf_gelu_glu_bwd,
    .gelu_fwd = bf_gelu_fwd,
    .gelu_bwd = bf_gelu_bwd,
    .tanh_fwd = bf_tanh_fwd,
    .tanh_bwd = bf_tanh_bwd,
    .dropout_fwd = bf_dropout_fwd,
    .add = bf_add,
    .gather_rows = bf_gather_rows,
    .scatter_rows_add = bf_scatter_rows_add,
    .pool_fwd = bf_pool_fwd,
    .pool_bwd = bf_pool_bwd,
    .xent_fwd_bwd = bf_xent_fwd_bwd,
    .mse_fwd_bwd = bf_mse_fwd_bwd,
    .count_correct = bf_count_correct,
    .adamw = bf_adamw,
    .sum_act = bf_sum_act,
    .scale = bf_scale,
    .fill = bf_fill,
};

const ops *ops_cpu_bf16(void) {
    if (!F32) {
        const ops *c = ops_cpu();
        /* memory, sync and the reductions of F buffers are the fp32 row's */
        bf16_ops.alloc = c->alloc;
        bf16_ops.free = c->free;
        bf16_ops.upload = c->upload;
        bf16_ops.download = c->download;
        bf16_ops.memset0 = c->memset0;
        bf16_ops.copy = c->copy;
        bf16_ops.sync = c->sync;
        bf16_ops.sumsq = c->sumsq;
        bf16_ops.sum = c->sum;
        bf16_ops.accumulate = c->accumulate;
        snprintf(bf16_ops.desc, sizeof bf16_ops.desc,
                 "cpu-bf16 (bf16 activations and working weights, fp32 compute), BLAS: %s",
                 ops_cpu_blas_info());
        F32 = c;
    }
    return &bf16_ops;
}
