/* The CPU backend: every op of `struct ops` in fp32, GEMMs through OpenBLAS, the rest as
 * OpenMP loops. It is the reference the CUDA backend is tested against, so it favours plain
 * loops that read like the math; the GEMMs carry the cost. */
#include "ops/ops.h"

#include "core/core.h"
#include "ops/ops_math.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scratch: grow-only per-thread buffers (ops are never called concurrently) ---------- */
#define CPU_MAX_THREADS 256
static float *scratch_buf[CPU_MAX_THREADS];
static size_t scratch_len[CPU_MAX_THREADS];

/* Make sure every thread slot has n floats; call outside parallel regions. */
static void scratch_reserve(int nthreads, size_t n) {
    CORE_CHECK(nthreads <= CPU_MAX_THREADS, "too many threads (%d)", nthreads);
    for (int t = 0; t < nthreads; t++) {
        if (scratch_len[t] >= n) continue;
        free(scratch_buf[t]);
        scratch_buf[t] = xmalloc(n * sizeof(float));
        scratch_len[t] = n;
    }
}

/* slot 0's buffer, for use outside parallel regions */
static float *scratch_reserve_one(size_t n) {
    scratch_reserve(1, n);
    return scratch_buf[0];
}

/* ---- memory ------------------------------------------------------------------------------ */
static void *cpu_alloc(const ops *self, size_t bytes) {
    (void)self;
    size_t n = (bytes + 63) / 64 * 64;
    if (n == 0) n = 64;
    void *p = aligned_alloc(64, n);
    if (!p) core_die("out of memory allocating %zu bytes", bytes);
    memset(p, 0, n);
    return p;
}
static void cpu_free(const ops *self, void *p) {
    (void)self;
    free(p);
}
static void cpu_copy(const ops *self, void *dst, const void *src, size_t bytes) {
    (void)self;
    if (bytes) memcpy(dst, src, bytes);
}
static void cpu_memset0(const ops *self, void *dst, size_t bytes) {
    (void)self;
    if (bytes) memset(dst, 0, bytes);
}
static void cpu_sync(const ops *self) {
    (void)self;
}

/* ---- dense ------------------------------------------------------------------------------- */
static void cpu_matmul_fwd(const ops *self, float *out, const float *inp, const float *w,
                           const float *bias, int N, int C, int OC, int accum) {
    (void)self;
    float beta = accum ? 1.0f : 0.0f;
    if (bias) {
#pragma omp parallel for
        for (int i = 0; i < N; i++) {
            float *o = out + (size_t)i * OC;
            if (accum)
                for (int j = 0; j < OC; j++)
                    o[j] += bias[j];
            else
                memcpy(o, bias, (size_t)OC * sizeof(float));
        }
        beta = 1.0f;
    }
    ops_cpu_sgemm(0, 1, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC);
}

static void cpu_matmul_bwd(const ops *self, float *dinp, float *dw, float *dbias, const float *dout,
                           const float *inp, const float *w, int N, int C, int OC, int accum_dinp) {
    (void)self;
    /* dw and dbias first: dinp may alias inp (ops.h), and dw reads inp */
    if (dw) ops_cpu_sgemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (dbias) {
#pragma omp parallel for
        for (int j = 0; j < OC; j++) {
            float s = 0.0f;
            for (int i = 0; i < N; i++)
                s += dout[(size_t)i * OC + j];
            dbias[j] += s;
        }
    }
    if (dinp)
        ops_cpu_sgemm(0, 0, N, C, OC, 1.0f, dout, OC, w, C, accum_dinp ? 1.0f : 0.0f, dinp, C);
}

/* ---- embedding ----------------------------------------------------------------------------- */
static void cpu_embed_fwd(const ops *self, float *out, const int32_t *ids, const int32_t *types,
                          const float *wte, const float *wpe, const float *pos_scale,
                          const float *tte, int B, int S, int H) {
    (void)self;
    float sc = pos_scale ? pos_scale[0] : 1.0f;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            size_t r = (size_t)b * S + s;
            float *o = out + r * H;
            const float *e = wte + (size_t)ids[r] * H;
            for (int h = 0; h < H; h++)
                o[h] = e[h];
            if (wpe) {
                const float *p = wpe + (size_t)s * H;
                for (int h = 0; h < H; h++)
                    o[h] += sc * p[h];
            }
            if (tte) {
                const float *t = tte + (size_t)(types ? types[r] : 0) * H;
                for (int h = 0; h < H; h++)
                    o[h] += t[h];
            }
        }
}

static void cpu_embed_bwd(const ops *self, float *dwte, float *dwpe, float *dpos_scale, float *dtte,
                          const float *dout, const int32_t *ids, const int32_t *types,
                          const float *wpe, const float *pos_scale, int pad_id, int B, int S, int H,
                          int V, int NT) {
    (void)self, (void)V, (void)NT;
    int N = B * S;
    /* rows may repeat: split the columns between threads instead of the rows */
    int nt = omp_get_max_threads();
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int h0 = (int)((long)H * t / T), h1 = (int)((long)H * (t + 1) / T);
        for (int r = 0; r < N; r++) {
            const float *d = dout + (size_t)r * H;
            if (ids[r] != pad_id) {
                float *g = dwte + (size_t)ids[r] * H;
                for (int h = h0; h < h1; h++)
                    g[h] += d[h];
            }
            if (dwpe && !pos_scale) {
                float *g = dwpe + (size_t)(r % S) * H;
                for (int h = h0; h < h1; h++)
                    g[h] += d[h];
            }
            if (dtte) {
                float *g = dtte + (size_t)(types ? types[r] : 0) * H;
                for (int h = h0; h < h1; h++)
                    g[h] += d[h];
            }
        }
    }
    if (wpe && pos_scale && dpos_scale) {
        /* per-row dot products, then a sum in row order */
        float *dots = scratch_reserve_one((size_t)N);
#pragma omp parallel for
        for (int r = 0; r < N; r++) {
            const float *d = dout + (size_t)r * H, *p = wpe + (size_t)(r % S) * H;
            double s = 0.0;
            for (int h = 0; h < H; h++)
                s += (double)d[h] * p[h];
            dots[r] = (float)s;
        }
        double acc = 0.0;
        for (int r = 0; r < N; r++)
            acc += dots[r];
        dpos_scale[0] += (float)acc;
    }
}

/* ---- layernorm ----------------------------------------------------------------------------- */
OPS_CLONES static void ln_row(float *o, float *mean, float *rstd, const float *x, const float *w,
                              const float *b, int H, float eps) {
    float m = 0.0f;
#pragma omp simd reduction(+ : m)
    for (int h = 0; h < H; h++)
        m += x[h];
    m /= (float)H;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int h = 0; h < H; h++) {
        float d = x[h] - m;
        v += d * d;
    }
    v /= (float)H;
    float rs = 1.0f / sqrtf(v + eps);
    if (b) {
#pragma omp simd
        for (int h = 0; h < H; h++)
            o[h] = (x[h] - m) * rs * w[h] + b[h];
    } else {
#pragma omp simd
        for (int h = 0; h < H; h++)
            o[h] = (x[h] - m) * rs * w[h];
    }
    *mean = m;
    *rstd = rs;
}

OPS_CLONES static void add_row(float *o, const float *a, const float *b, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        o[i] = a[i] + b[i];
}

/* one row of the LN backward; dw/db partial sums go to pdw/pdb */
OPS_CLONES static void ln_bwd_row(float *dx, float *pdw, float *pdb, const float *x, const float *g,
                                  const float *w, float m, float rs, int H, int accum) {
    float sum_dn = 0.0f, sum_dnx = 0.0f;
#pragma omp simd reduction(+ : sum_dn, sum_dnx)
    for (int h = 0; h < H; h++) {
        float xh = (x[h] - m) * rs, dn = g[h] * w[h];
        sum_dn += dn;
        sum_dnx += dn * xh;
        pdw[h] += g[h] * xh;
        pdb[h] += g[h];
    }
    sum_dn /= (float)H;
    sum_dnx /= (float)H;
    if (accum) {
#pragma omp simd
        for (int h = 0; h < H; h++)
            dx[h] += (g[h] * w[h] - sum_dn - (x[h] - m) * rs * sum_dnx) * rs;
    } else {
#pragma omp simd
        for (int h = 0; h < H; h++)
            dx[h] = (g[h] * w[h] - sum_dn - (x[h] - m) * rs * sum_dnx) * rs;
    }
}

static void cpu_layernorm_fwd(const ops *self, float *out, float *mean, float *rstd,
                              const float *inp, const float *w, const float *b, int N, int H,
                              float eps) {
    (void)self;
#pragma omp parallel for
    for (int i = 0; i < N; i++)
        ln_row(out + (size_t)i * H, mean + i, rstd + i, inp + (size_t)i * H, w, b, H, eps);
}

static void cpu_residual_layernorm_fwd(const ops *self, float *res_out, float *out, float *mean,
                                       float *rstd, const float *res, const float *branch,
                                       const float *w, const float *b, int N, int H, float eps) {
    (void)self;
#pragma omp parallel for
    for (int i = 0; i < N; i++) {
        float *r = res_out + (size_t)i * H;
        const float *x = res + (size_t)i * H, *y = branch + (size_t)i * H;
        add_row(r, x, y, (size_t)H);
        ln_row(out + (size_t)i * H, mean + i, rstd + i, r, w, b, H, eps);
    }
}

static void cpu_layernorm_bwd(const ops *self, float *dinp, float *dw, float *db, const float *dout,
                              const float *inp, const float *w, const float *mean,
                              const float *rstd, int N, int H, int accum) {
    (void)self;
    /* per-thread partial sums of dw/db, added in thread order afterwards: the result does not
     * depend on which thread finishes first */
    int nt = omp_get_max_threads();
    scratch_reserve(nt, 2 * (size_t)H);
    for (int t = 0; t < nt; t++)
        memset(scratch_buf[t], 0, 2 * (size_t)H * sizeof(float));
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        float *pdw = scratch_buf[t], *pdb = pdw + H;
#pragma omp for schedule(static)
        for (int i = 0; i < N; i++)
            ln_bwd_row(dinp + (size_t)i * H, pdw, pdb, inp + (size_t)i * H, dout + (size_t)i * H, w,
                       mean[i], rstd[i], H, accum);
    }
    for (int t = 0; t < nt; t++) {
        const float *pdw = scratch_buf[t], *pdb = pdw + H;
        if (dw)
            for (int h = 0; h < H; h++)
                dw[h] += pdw[h];
        if (db)
            for (int h = 0; h < H; h++)
                db[h] += pdb[h];
    }
}

/* ---- attention ------------------------------------------------------------------------------ */
/* Pointers to head h's q, k, v in batch b; each row strides 3H. */
static void qkv_ptrs(const float *qkv, int b, int h, int S, int NH, int HD, int layout, size_t *q,
                     size_t *k, size_t *v) {
    size_t H = (size_t)NH * HD, base = (size_t)b * S * 3 * H;
    if (layout == OPS_QKV_HEAD_INTERLEAVED) {
        *q = base + (size_t)h * 3 * HD;
        *k = *q + HD;
        *v = *q + 2 * (size_t)HD;
    } else {
        *q = base + (size_t)h * HD;
        *k = *q + H;
        *v = *q + 2 * H;
    }
    (void)qkv;
}

/* Philox4x32-10 of DROP_LANES consecutive counters {c, c+1, ...} (64-bit, split over words 0
 * and 1) with words 2 and 3 fixed, laid out so lane l's 4 words are w[4l..4l+3]: the word of
 * element 4(c+l)+j. Lanes are independent, so the rounds vectorize (32x32->64 multiplies).
 * The round is core_philox_round spelled out over lane arrays: calling it on a per-lane x[4]
 * keeps GCC 12 from vectorizing the loop. test_ops checks every word against it. */
enum { DROP_LANES = 16 };
OPS_CLONES static void philox_lanes(uint32_t *w, uint64_t c, uint32_t c2, uint32_t c3,
                                    const uint32_t key[2]) {
    uint32_t x0[DROP_LANES], x1[DROP_LANES], x2[DROP_LANES], x3[DROP_LANES];
    for (int l = 0; l < DROP_LANES; l++) {
        x0[l] = (uint32_t)(c + (uint64_t)l);
        x1[l] = (uint32_t)((c + (uint64_t)l) >> 32);
        x2[l] = c2;
        x3[l] = c3;
    }
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) k0 += CORE_PHILOX_W0, k1 += CORE_PHILOX_W1;
#pragma omp simd
        for (int l = 0; l < DROP_LANES; l++) {
            uint64_t p0 = (uint64_t)CORE_PHILOX_M0 * x0[l], p1 = (uint64_t)CORE_PHILOX_M1 * x2[l];
            uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1[l] ^ k0;
            uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3[l] ^ k1;
            x0[l] = y0;
            x1[l] = (uint32_t)p1;
            x2[l] = y2;
            x3[l] = (uint32_t)p0;
        }
    }
    for (int l = 0; l < DROP_LANES; l++) {
        w[4 * l] = x0[l];
        w[4 * l + 1] = x1[l];
        w[4 * l + 2] = x2[l];
        w[4 * l + 3] = x3[l];
    }
}

/* src * keep / (1-p) for global element indices base..base+n-1, the mask of ops_dropout_keep:
 * element i keeps iff word i%4 of philox({i/4, step}) >= p * 2^32, i.e. >= ceil(p * 2^32) */
OPS_CLONES static void dropout_block(float *dst, const float *src, const ops_dropout *d,
                                     uint64_t base, size_t n) {
    if (!d || d->p <= 0.0f) {
        if (dst != src) memcpy(dst, src, n * sizeof(float));
        return;
    }
    float inv = 1.0f / (1.0f - d->p);
    uint64_t thr = (uint64_t)ceil((double)d->p * 4294967296.0); /* exact: p * 2^32 is a double */
    uint32_t c2 = (uint32_t)d->step, c3 = (uint32_t)(d->step >> 32);
    uint32_t w[4 * DROP_LANES];
    size_t i = 0;
    while (i < n) {
        uint64_t first = (base + i) >> 2;     /* first counter of this chunk */
        size_t e0 = (size_t)((base + i) & 3); /* its first word that belongs to us */
        size_t m = 4 * DROP_LANES - e0;       /* words of this chunk that we use */
        if (m > n - i) m = n - i;
        philox_lanes(w, first, c2, c3, d->key);
        const uint32_t *wi = w + e0;
        float *o = dst + i;
        const float *x = src + i;
#pragma omp simd
        for (size_t j = 0; j < m; j++)
            o[j] = (uint64_t)wi[j] >= thr ? x[j] * inv : 0.0f;
        i += m;
    }
}

/* row-wise softmax of the S x S scores, with the padding bias (1 - mask[key]) * -10000 */
OPS_CLONES static void softmax_rows(float *P, const float *mask, int S) {
    for (int i = 0; i < S; i++) {
        float *row = P + (size_t)i * S;
        if (mask) {
#pragma omp simd
            for (int j = 0; j < S; j++)
                row[j] += (1.0f - mask[j]) * -10000.0f;
        }
        float mx = row[0];
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < S; j++)
            mx = row[j] > mx ? row[j] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < S; j++) {
            row[j] = ops_expf(row[j] - mx);
            sum += row[j];
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int j = 0; j < S; j++)
            row[j] *= inv;
    }
}

/* dS = P * (dP - rowsum(P * dP)), in place over dP */
OPS_CLONES static void softmax_bwd_rows(float *dP, const float *P, int S) {
    for (int i = 0; i < S; i++) {
        float *d = dP + (size_t)i * S;
        const float *p = P + (size_t)i * S;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < S; j++)
            dot += p[j] * d[j];
#pragma omp simd
        for (int j = 0; j < S; j++)
            d[j] = p[j] * (d[j] - dot);
    }
}

static void cpu_attention_fwd(const ops *self, float *out, float *probs, const float *qkv,
                              const float *mask, const ops_dropout *drop, int B, int S, int NH,
                              int HD, float scale, int layout) {
    (void)self;
    int H = NH * HD, nt = omp_get_max_threads();
    int dodrop = drop && drop->p > 0.0f;
    if (dodrop) scratch_reserve(nt, (size_t)S * S);
#pragma omp parallel for collapse(2) num_threads(nt)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t q, k, v;
            qkv_ptrs(qkv, b, h, S, NH, HD, layout, &q, &k, &v);
            uint64_t pbase = ((uint64_t)b * NH + h) * S * S;
            float *P = probs + pbase;
            ops_cpu_sgemm(0, 1, S, S, HD, scale, qkv + q, 3 * H, qkv + k, 3 * H, 0.0f, P, S);
            softmax_rows(P, mask ? mask + (size_t)b * S : NULL, S);
            const float *Pd = P;
            if (dodrop) {
                float *tmp = scratch_buf[omp_get_thread_num()];
                dropout_block(tmp, P, drop, pbase, (size_t)S * S);
                Pd = tmp;
            }
            ops_cpu_sgemm(0, 0, S, HD, S, 1.0f, Pd, S, qkv + v, 3 * H, 0.0f,
                          out + (size_t)b * S * H + (size_t)h * HD, H);
        }
}

static void cpu_attention_bwd(const ops *self, float *dqkv, const float *dout, const float *out,
                              const float *qkv, const float *probs, const ops_dropout *drop, int B,
                              int S, int NH, int HD, float scale, int layout) {
    (void)self;
    (void)out; /* the probabilities are kept */
    int H = NH * HD, nt = omp_get_max_threads();
    int dodrop = drop && drop->p > 0.0f;
    scratch_reserve(nt, 2 * (size_t)S * S);
#pragma omp parallel for collapse(2) num_threads(nt)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t q, k, v;
            qkv_ptrs(qkv, b, h, S, NH, HD, layout, &q, &k, &v);
            uint64_t pbase = ((uint64_t)b * NH + h) * S * S;
            const float *P = probs + pbase;
            const float *dO = dout + (size_t)b * S * H + (size_t)h * HD;
            float *dP = scratch_buf[omp_get_thread_num()], *Pd = dP + (size_t)S * S;
            const float *Pv = P;
            if (dodrop) {
                dropout_block(Pd, P, drop, pbase, (size_t)S * S);
                Pv = Pd;
            }
            /* dV = Pd^T dO ; dPd = dO V^T */
            ops_cpu_sgemm(1, 0, S, HD, S, 1.0f, Pv, S, dO, H, 0.0f, dqkv + v, 3 * H);
            ops_cpu_sgemm(0, 1, S, S, HD, 1.0f, dO, H, qkv + v, 3 * H, 0.0f, dP, S);
            if (dodrop) dropout_block(dP, dP, drop, pbase, (size_t)S * S);
            softmax_bwd_rows(dP, P, S);
            /* dQ = scale dS K ; dK = scale dS^T Q */
            ops_cpu_sgemm(0, 0, S, HD, S, scale, dP, S, qkv + k, 3 * H, 0.0f, dqkv + q, 3 * H);
            ops_cpu_sgemm(1, 0, S, HD, S, scale, dP, S, qkv + q, 3 * H, 0.0f, dqkv + k, 3 * H);
        }
}

/* ---- activations ----------------------------------------------------------------------------- */
OPS_CLONES static void glu_fwd_row(float *o, const float *x, const float *g, int n) {
#pragma omp simd
    for (int j = 0; j < n; j++)
        o[j] = x[j] * ops_gelu(g[j]);
}

OPS_CLONES static void glu_bwd_row(float *dx, float *dg, const float *d, const float *x,
                                   const float *g, int n) {
#pragma omp simd
    for (int j = 0; j < n; j++) {
        dx[j] = d[j] * ops_gelu(g[j]);
        dg[j] = d[j] * x[j] * ops_gelu_grad(g[j]);
    }
}

OPS_CLONES static void gelu_fwd_row(float *o, const float *x, size_t n) {
#pragma omp simd
    for (size_t j = 0; j < n; j++)
        o[j] = ops_gelu(x[j]);
}

OPS_CLONES static void gelu_bwd_row(float *dx, const float *d, const float *x, size_t n) {
#pragma omp simd
    for (size_t j = 0; j < n; j++)
        dx[j] = d[j] * ops_gelu_grad(x[j]);
}

static void cpu_gelu_glu_fwd(const ops *self, float *out, const float *inp, int N, int I) {
    (void)self;
    int I2 = I / 2;
#pragma omp parallel for
    for (int i = 0; i < N; i++)
        glu_fwd_row(out + (size_t)i * I2, inp + (size_t)i * I, inp + (size_t)i * I + I2, I2);
}

static void cpu_gelu_glu_bwd(const ops *self, float *dinp, const float *dout, const float *inp,
                             int N, int I) {
    (void)self;
    int I2 = I / 2;
#pragma omp parallel for
    for (int i = 0; i < N; i++)
        glu_bwd_row(dinp + (size_t)i * I, dinp + (size_t)i * I + I2, dout + (size_t)i * I2,
                    inp + (size_t)i * I, inp + (size_t)i * I + I2, I2);
}

#define EW_BLOCK 4096
static void cpu_gelu_fwd(const ops *self, float *out, const float *inp, size_t n) {
    (void)self;
    size_t nb = (n + EW_BLOCK - 1) / EW_BLOCK;
#pragma omp parallel for
    for (size_t k = 0; k < nb; k++) {
        size_t i0 = k * EW_BLOCK;
        gelu_fwd_row(out + i0, inp + i0, n - i0 < EW_BLOCK ? n - i0 : EW_BLOCK);
    }
}
static void cpu_gelu_bwd(const ops *self, float *dinp, const float *dout, const float *inp,
                         size_t n) {
    (void)self;
    size_t nb = (n + EW_BLOCK - 1) / EW_BLOCK;
#pragma omp parallel for
    for (size_t k = 0; k < nb; k++) {
        size_t i0 = k * EW_BLOCK;
        gelu_bwd_row(dinp + i0, dout + i0, inp + i0, n - i0 < EW_BLOCK ? n - i0 : EW_BLOCK);
    }
}
static void cpu_tanh_fwd(const ops *self, float *out, const float *inp, size_t n) {
    (void)self;
#pragma omp parallel for
    for (size_t i = 0; i < n; i++)
        out[i] = tanhf(inp[i]);
}
static void cpu_tanh_bwd(const ops *self, float *dinp, const float *dout, const float *out,
                         size_t n) {
    (void)self;
#pragma omp parallel for
    for (size_t i = 0; i < n; i++)
        dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

static void cpu_dropout_fwd(const ops *self, float *out, const float *inp, const ops_dropout *drop,
                            size_t n) {
    (void)self;
    const size_t blk = 4096;
    size_t nb = (n + blk - 1) / blk;
#pragma omp parallel for
    for (size_t k = 0; k < nb; k++) {
        size_t i0 = k * blk, len = n - i0 < blk ? n - i0 : blk;
        dropout_block(out + i0, inp + i0, drop, i0, len);
    }
}

static void cpu_add(const ops *self, float *out, const float *a, const float *b, size_t n) {
    (void)self;
    size_t nb = (n + EW_BLOCK - 1) / EW_BLOCK;
#pragma omp parallel for
    for (size_t k = 0; k < nb; k++) {
        size_t i0 = k * EW_BLOCK;
        add_row(out + i0, a + i0, b + i0, n - i0 < EW_BLOCK ? n - i0 : EW_BLOCK);
    }
}

/* ---- rows ------------------------------------------------------------------------------------ */
static void cpu_gather_rows(const ops *self, float *out, const float *inp, const int32_t *idx,
                            int n, int H) {
    (void)self;
#pragma omp parallel for
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * H, inp + (size_t)idx[i] * H, (size_t)H * sizeof(float));
}
static void cpu_scatter_rows_add(const ops *self, float *dinp, const float *dout,
                                 const int32_t *idx, int n, int H) {
    (void)self;
#pragma omp parallel for
    for (int i = 0; i < n; i++) {
        float *d = dinp + (size_t)idx[i] * H;
        const float *g = dout + (size_t)i * H;
        for (int h = 0; h < H; h++)
            d[h] += g[h];
    }
}
static void cpu_pool_fwd(const ops *self, float *out, const float *inp, int mode, int B, int S,
                         int H) {
    (void)self;
#pragma omp parallel for
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * H;
        const float *x = inp + (size_t)b * S * H;
        if (mode == 0) {
            memcpy(o, x, (size_t)H * sizeof(float));
            continue;
        }
        for (int h = 0; h < H; h++) {
            float s = 0.0f;
            for (int t = 0; t < S; t++)
                s += x[(size_t)t * H + h];
            o[h] = s / (float)S;
        }
    }
}
static void cpu_pool_bwd(const ops *self, float *dinp, const float *dout, int mode, int B, int S,
                         int H) {
    (void)self;
#pragma omp parallel for
    for (int b = 0; b < B; b++) {
        const float *d = dout + (size_t)b * H;
        float *dx = dinp + (size_t)b * S * H;
        for (int t = 0; t < (mode == 0 ? 1 : S); t++)
            for (int h = 0; h < H; h++)
                dx[(size_t)t * H + h] += mode == 0 ? d[h] : d[h] / (float)S;
    }
}

/* ---- losses ---------------------------------------------------------------------------------- */
/* -log softmax(x)[y]; with d, also (softmax - onehot) * grad_scale (d may alias x) */
OPS_CLONES static float xent_row(float *d, const float *x, int y, int V, float grad_scale) {
    float mx = x[0];
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < V; j++)
        mx = x[j] > mx ? x[j] : mx;
    float xy = x[y]; /* before d, which may alias the logits, is written */
    /* blocks of 1024 summed in float, blocks added in double */
    double sum = 0.0;
    for (int j0 = 0; j0 < V; j0 += 1024) {
        int j1 = j0 + 1024 < V ? j0 + 1024 : V;
        float s = 0.0f;
        if (d) {
#pragma omp simd reduction(+ : s)
            for (int j = j0; j < j1; j++) {
                d[j] = ops_expf(x[j] - mx);
                s += d[j];
            }
        } else {
#pragma omp simd reduction(+ : s)
            for (int j = j0; j < j1; j++)
                s += ops_expf(x[j] - mx);
        }
        sum += s;
    }
    if (d) {
        float inv = (float)(1.0 / sum) * grad_scale;
#pragma omp simd
        for (int j = 0; j < V; j++)
            d[j] *= inv;
        d[y] -= grad_scale;
    }
    return mx + (float)log(sum) - xy;
}

static void cpu_xent_fwd_bwd(const ops *self, float *losses, float *dlogits, const float *logits,
                             const int32_t *labels, int N, int V, float grad_scale) {
    (void)self;
#pragma omp parallel for
    for (int i = 0; i < N; i++) {
        const float *x = logits + (size_t)i * V;
        float *d = dlogits ? dlogits + (size_t)i * V : NULL;
        int y = labels[i];
        if (y == -100) {
            losses[i] = 0.0f;
            if (d) memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        CORE_CHECK(y >= 0 && y < V, "label %d outside the vocabulary of %d", y, V);
        losses[i] = xent_row(d, x, y, V, grad_scale);
    }
}

/* ---- optimizer / whole buffer ---------------------------------------------------------------- */
/* One block of PyTorch's single-tensor update, in torch's operation order (see cpu_adamw). */
OPS_CLONES static void adamw_block(float *p, const float *g, float *m, float *v, size_t n, float b1,
                                   float omb1, float b2, float omb2, float eps, float l2,
                                   float decay, float neg_step, float bc2_sqrt, float grad_scale,
                                   int coupled) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * decay; /* AdamW: param.mul_(1 - lr * wd) (1 when coupled) */
        float gi = g[i] * grad_scale;
        if (coupled) gi = gi + l2 * pi; /* Adam: grad.add(param, alpha=wd) */
        float mi = m[i] * b1 + omb1 * gi;
        float vi = v[i] * b2 + omb2 * gi * gi;
        p[i] = pi + neg_step * mi / (sqrtf(vi) / bc2_sqrt + eps);
        m[i] = mi;
        v[i] = vi;
    }
}

static void cpu_adamw(const ops *self, float *p, float *pa, const float *g, float *m, float *v,
                      size_t n, double lr, double beta1, double beta2, double eps,
                      double weight_decay, float grad_scale, int64_t t, int coupled) {
    (void)self;
    /* PyTorch's single-tensor AdamW (or Adam with L2 added to the gradient when coupled),
     * operation by operation: the scalars are Python floats there, formed in double and rounded
     * to fp32 where they meet the tensors, so fp32 results agree to the last bits */
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    float neg_step = (float)(-(lr / bc1)), bc2_sqrt = (float)sqrt(bc2);
    float decay = coupled ? 1.0f : (float)(1.0 - lr * weight_decay);
    float b1 = (float)beta1, omb1 = (float)(1.0 - beta1);
    float b2 = (float)beta2, omb2 = (float)(1.0 - beta2);
    size_t nb = (n + EW_BLOCK - 1) / EW_BLOCK;
#pragma omp parallel for
    for (size_t k = 0; k < nb; k++) {
        size_t i0 = k * EW_BLOCK;
        adamw_block(p + i0, g + i0, m + i0, v + i0, n - i0 < EW_BLOCK ? n - i0 : EW_BLOCK, b1, omb1,
                    b2, omb2, (float)eps, (float)weight_decay, decay, neg_step, bc2_sqrt,
                    grad_scale, coupled);
    }
    if (pa && pa != p) memcpy(pa, p, n * sizeof(float));
}

/* Reductions in a fixed order (256 chunks, each summed in order, chunks added in order), so
 * that the value does not depend on the thread count or the scheduling. */
#define RED_CHUNKS 256
static double reduce(const float *x, size_t n, int square) {
    double part[RED_CHUNKS];
    size_t len = (n + RED_CHUNKS - 1) / RED_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < RED_CHUNKS; c++) {
        size_t i0 = (size_t)c * len, i1 = i0 + len < n ? i0 + len : n;
        double s = 0.0;
        for (size_t i = i0; i < i1; i++)
            s += square ? (double)x[i] * x[i] : (double)x[i];
        part[c] = s;
    }
    double s = 0.0;
    for (int c = 0; c < RED_CHUNKS; c++)
        s += part[c];
    return s;
}
static double cpu_sumsq(const ops *self, const float *x, size_t n) {
    (void)self;
    return reduce(x, n, 1);
}
static double cpu_sum(const ops *self, const float *x, size_t n) {
    (void)self;
    return reduce(x, n, 0);
}
static void cpu_scale(const ops *self, float *x, float s, size_t n) {
    (void)self;
#pragma omp parallel for
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}
static void cpu_fill(const ops *self, float *x, float value, size_t n) {
    (void)self;
#pragma omp parallel for
    for (size_t i = 0; i < n; i++)
        x[i] = value;
}

static void cpu_accumulate(const ops *self, double *acc, const float *x, size_t n) {
    (void)self;
    *acc += reduce(x, n, 0);
}

/* ---- losses and metrics that stay on the backend --------------------------------------------- */
static void cpu_mse_fwd_bwd(const ops *self, float *losses, float *dpred, const float *pred,
                            const float *targets, int N) {
    (void)self;
    for (int i = 0; i < N; i++) {
        float diff = pred[i] - targets[i];
        losses[i] = diff * diff;
        dpred[i] = 2.0f * diff / (float)N;
    }
}

static void cpu_count_correct(const ops *self, float *hit, const float *logits,
                              const int32_t *labels, int N, int V) {
    (void)self;
#pragma omp parallel for
    for (int i = 0; i < N; i++) {
        const float *row = logits + (size_t)i * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        hit[i] = labels[i] != -100 && best == labels[i] ? 1.0f : 0.0f;
    }
}

/* ---- activations are fp32 here: conversions are copies ------------------------------------- */
static void cpu_upload_act(const ops *self, float *dst, const float *src, size_t n) {
    (void)self;
    if (n) memcpy(dst, src, n * sizeof(float));
}
static size_t cpu_attn_state_bytes(const ops *self, int B, int S, int NH, int HD) {
    (void)self, (void)HD;
    return (size_t)B * NH * S * S * sizeof(float); /* the softmax probabilities */
}
static void cpu_refresh_weights(const ops *self, float *wa, const float *w, size_t n) {
    (void)self;
    if (wa != w && n) memcpy(wa, w, n * sizeof(float));
}

static ops cpu_ops = {
    .name = "cpu",
    .precision = "fp32",
    .act_bytes = 4,
    .upload_act = cpu_upload_act,
    .download_act = cpu_upload_act,
    .attn_state_bytes = cpu_attn_state_bytes,
    .refresh_weights = cpu_refresh_weights,
    .mse_fwd_bwd = cpu_mse_fwd_bwd,
    .count_correct = cpu_count_correct,
    .accumulate = cpu_accumulate,
    .sum_act = cpu_sum,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .memset0 = cpu_memset0,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .matmul_fwd = cpu_matmul_fwd,
    .matmul_bwd = cpu_matmul_bwd,
    .embed_fwd = cpu_embed_fwd,
    .embed_bwd = cpu_embed_bwd,
    .layernorm_fwd = cpu_layernorm_fwd,
    .residual_layernorm_fwd = cpu_residual_layernorm_fwd,
    .layernorm_bwd = cpu_layernorm_bwd,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd = cpu_attention_bwd,
    .gelu_glu_fwd = cpu_gelu_glu_fwd,
    .gelu_glu_bwd = cpu_gelu_glu_bwd,
    .gelu_fwd = cpu_gelu_fwd,
    .gelu_bwd = cpu_gelu_bwd,
    .tanh_fwd = cpu_tanh_fwd,
    .tanh_bwd = cpu_tanh_bwd,
    .dropout_fwd = cpu_dropout_fwd,
    .add = cpu_add,
    .gather_rows = cpu_gather_rows,
    .scatter_rows_add = cpu_scatter_rows_add,
    .pool_fwd = cpu_pool_fwd,
    .pool_bwd = cpu_pool_bwd,
    .xent_fwd_bwd = cpu_xent_fwd_bwd,
    .adamw = cpu_adamw,
    .sumsq = cpu_sumsq,
    .sum = cpu_sum,
    .scale = cpu_scale,
    .fill = cpu_fill,
};

const ops *ops_cpu(void) {
    ops_cpu_blas_init();
    if (!cpu_ops.desc[0])
        snprintf(cpu_ops.desc, sizeof cpu_ops.desc, "cpu (fp32), BLAS: %s", ops_cpu_blas_info());
    return &cpu_ops;
}
