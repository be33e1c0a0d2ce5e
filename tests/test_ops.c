/* Every op of `struct ops`: backward against central finite differences of the forward (losses
 * accumulated in double), forward against naive loops, optimizer ops against formulas. The
 * cases loop over a table of backends so a CUDA backend can be added next to the CPU one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"
#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXT 8

/* One op under test: up to MAXT float inputs (some differentiable), up to 2 float outputs.
 * fwd/bwd run the op on backend buffers; aux holds integer or constant side inputs. */
typedef struct fd_env {
    const ops *o;
    int nin, nout;
    size_t in_n[MAXT], out_n[2];
    float *h_in[MAXT], *d_in[MAXT], *d_out[2], *d_dout[2], *d_grad[MAXT];
    int diff[MAXT];
    void *aux[MAXT];
    int uniform_dout; /* the op's backward takes one scale, not a per-element gradient */
    core_rng rng;
} fd_env;

typedef struct fd_case {
    const char *name;
    void (*setup)(fd_env *e);
    void (*fwd)(fd_env *e);
    void (*bwd)(fd_env *e);
} fd_case;

static float *dev_floats(fd_env *e, const float *h, size_t n) {
    float *d = e->o->alloc(n * sizeof(float));
    if (h) e->o->upload(d, h, n * sizeof(float));
    return d;
}
static int32_t *dev_ints(fd_env *e, const int32_t *h, size_t n) {
    int32_t *d = e->o->alloc(n * sizeof(int32_t));
    e->o->upload(d, h, n * sizeof(int32_t));
    return d;
}
static void add_in(fd_env *e, size_t n, int diff, float scale) {
    int k = e->nin++;
    e->in_n[k] = n;
    e->diff[k] = diff;
    e->h_in[k] = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        e->h_in[k][i] = core_rng_normal(&e->rng) * scale;
}
static void add_out(fd_env *e, size_t n) {
    e->out_n[e->nout++] = n;
}

static void env_free(fd_env *e) {
    for (int k = 0; k < e->nin; k++) {
        free(e->h_in[k]);
        e->o->free(e->d_in[k]);
        e->o->free(e->d_grad[k]);
    }
    for (int k = 0; k < e->nout; k++) {
        e->o->free(e->d_out[k]);
        e->o->free(e->d_dout[k]);
    }
    for (int k = 0; k < MAXT; k++)
        if (e->aux[k]) e->o->free(e->aux[k]);
}

/* loss = sum_k <out_k, R_k>, accumulated in double */
static double eval_loss(fd_env *e, const fd_case *c, float *const *R) {
    for (int k = 0; k < e->nin; k++)
        e->o->upload(e->d_in[k], e->h_in[k], e->in_n[k] * sizeof(float));
    c->fwd(e);
    double L = 0.0;
    for (int k = 0; k < e->nout; k++) {
        float *h = malloc(e->out_n[k] * sizeof(float));
        e->o->download(h, e->d_out[k], e->out_n[k] * sizeof(float));
        for (size_t i = 0; i < e->out_n[k]; i++)
            L += (double)h[i] * R[k][i];
        free(h);
    }
    return L;
}

static void run_case(const ops *o, const fd_case *c) {
    fd_env e = {.o = o};
    core_rng_init(&e.rng, 1234, 0, 0, 7);
    c->setup(&e);
    float *R[2];
    for (int k = 0; k < e.nout; k++) {
        R[k] = malloc(e.out_n[k] * sizeof(float));
        for (size_t i = 0; i < e.out_n[k]; i++)
            R[k][i] = e.uniform_dout ? 1.0f : core_rng_normal(&e.rng);
        e.d_out[k] = dev_floats(&e, NULL, e.out_n[k]);
        e.d_dout[k] = dev_floats(&e, R[k], e.out_n[k]);
    }
    for (int k = 0; k < e.nin; k++) {
        e.d_in[k] = dev_floats(&e, e.h_in[k], e.in_n[k]);
        e.d_grad[k] = dev_floats(&e, NULL, e.in_n[k]);
    }
    eval_loss(&e, c, R);
    c->bwd(&e);
    int bad = 0;
    for (int k = 0; k < e.nin; k++) {
        if (!e.diff[k]) continue;
        size_t n = e.in_n[k];
        float *g = malloc(n * sizeof(float));
        o->download(g, e.d_grad[k], n * sizeof(float));
        double gmax = 0.0;
        for (size_t i = 0; i < n; i++)
            gmax = fmax(gmax, fabs(g[i]));
        int samples = n < 24 ? (int)n : 24;
        for (int s = 0; s < samples; s++) {
            size_t i = n <= 24 ? (size_t)s : core_rng_below(&e.rng, (uint32_t)n);
            float v = e.h_in[k][i];
            float eps = 1e-2f * fmaxf(1.0f, fabsf(v));
            e.h_in[k][i] = v + eps;
            double Lp = eval_loss(&e, c, R);
            e.h_in[k][i] = v - eps;
            double Lm = eval_loss(&e, c, R);
            e.h_in[k][i] = v;
            double fd = (Lp - Lm) / (2.0 * (double)eps);
            double err = fabs(fd - g[i]), tol = 2e-2 * fabs(fd) + 5e-3 * gmax + 1e-4;
            if (err > tol) {
                if (bad < 8)
                    print_error("%s: input %d element %zu: analytic %.6g, finite difference "
                                "%.6g\n",
                                c->name, k, i, (double)g[i], fd);
                bad++;
            }
        }
        free(g);
    }
    for (int k = 0; k < e.nout; k++)
        free(R[k]);
    env_free(&e);
    if (bad) fail_msg("%s: %d gradient mismatches", c->name, bad);
}

/* ---- the cases ---------------------------------------------------------------------------- */
enum { TB = 2, TS = 5, TNH = 2, THD = 3, TH = TNH * THD, TV = 7, TI = 8 };
#define TN (TB * TS)

static void mm_setup(fd_env *e) {
    add_in(e, TN * 5, 1, 1.0f); /* inp [N,5] */
    add_in(e, 4 * 5, 1, 1.0f);  /* w [4,5] */
    add_in(e, 4, 1, 1.0f);      /* b [4] */
    add_out(e, TN * 4);
}
static void mm_fwd(fd_env *e) {
    e->o->matmul_fwd(e->d_out[0], e->d_in[0], e->d_in[1], e->d_in[2], TN, 5, 4, 0);
}
static void mm_bwd(fd_env *e) {
    e->o->matmul_bwd(e->d_grad[0], e->d_grad[1], e->d_grad[2], e->d_dout[0], e->d_in[0], e->d_in[1],
                     TN, 5, 4, 0);
}

static const int32_t emb_ids[TN] = {1, 3, 3, 0, 6, 2, 2, 5, 4, 1};
static const int32_t emb_types[TN] = {0, 0, 1, 1, 1, 0, 1, 0, 0, 1};
static void emb_setup(fd_env *e) {
    add_in(e, TV * TH, 1, 1.0f); /* wte */
    add_in(e, TS * TH, 1, 1.0f); /* wpe */
    add_in(e, 2 * TH, 1, 1.0f);  /* tte */
    add_out(e, TN * TH);
    e->aux[0] = dev_ints(e, emb_ids, TN);
    e->aux[1] = dev_ints(e, emb_types, TN);
}
static void emb_fwd(fd_env *e) {
    e->o->embed_fwd(e->d_out[0], e->aux[0], e->aux[1], e->d_in[0], e->d_in[1], NULL, e->d_in[2], TB,
                    TS, TH);
}
static void emb_bwd(fd_env *e) {
    e->o->embed_bwd(e->d_grad[0], e->d_grad[1], NULL, e->d_grad[2], e->d_dout[0], e->aux[0],
                    e->aux[1], e->d_in[1], NULL, -1, TB, TS, TH);
}

static void embs_setup(fd_env *e) {
    add_in(e, TV * TH, 1, 1.0f); /* wte */
    add_in(e, 1, 1, 1.0f);       /* scale */
    add_out(e, TN * TH);
    e->aux[0] = dev_ints(e, emb_ids, TN);
    float pe[TS * TH];
    for (int i = 0; i < TS * TH; i++)
        pe[i] = sinf((float)i);
    e->aux[1] = dev_floats(e, pe, TS * TH);
}
static void embs_fwd(fd_env *e) {
    e->o->embed_fwd(e->d_out[0], e->aux[0], NULL, e->d_in[0], e->aux[1], e->d_in[1], NULL, TB, TS,
                    TH);
}
static void embs_bwd(fd_env *e) {
    e->o->embed_bwd(e->d_grad[0], NULL, e->d_grad[1], NULL, e->d_dout[0], e->aux[0], NULL,
                    e->aux[1], e->d_in[1], -1, TB, TS, TH);
}

static void ln_setup(fd_env *e) {
    add_in(e, TN * TH, 1, 1.0f);
    add_in(e, TH, 1, 1.0f);
    add_in(e, TH, 1, 1.0f);
    add_out(e, TN * TH);
    e->aux[0] = dev_floats(e, NULL, TN);
    e->aux[1] = dev_floats(e, NULL, TN);
}
static void ln_fwd(fd_env *e) {
    e->o->layernorm_fwd(e->d_out[0], e->aux[0], e->aux[1], e->d_in[0], e->d_in[1], e->d_in[2], TN,
                        TH, 1e-5f);
}
static void ln_bwd(fd_env *e) {
    e->o->layernorm_bwd(e->d_grad[0], e->d_grad[1], e->d_grad[2], e->d_dout[0], e->d_in[0],
                        e->d_in[1], e->aux[0], e->aux[1], TN, TH, 1);
}

static void rln_setup(fd_env *e) {
    add_in(e, TN * TH, 1, 1.0f); /* res */
    add_in(e, TN * TH, 1, 1.0f); /* branch */
    add_in(e, TH, 1, 1.0f);
    add_in(e, TH, 1, 1.0f);
    add_out(e, TN * TH); /* res_out */
    add_out(e, TN * TH); /* ln out */
    e->aux[0] = dev_floats(e, NULL, TN);
    e->aux[1] = dev_floats(e, NULL, TN);
}
static void rln_fwd(fd_env *e) {
    e->o->residual_layernorm_fwd(e->d_out[0], e->d_out[1], e->aux[0], e->aux[1], e->d_in[0],
                                 e->d_in[1], e->d_in[2], e->d_in[3], TN, TH, 1e-5f);
}
static void rln_bwd(fd_env *e) {
    const ops *o = e->o;
    o->copy(e->d_grad[0], e->d_dout[0], TN * TH * sizeof(float));
    o->layernorm_bwd(e->d_grad[0], e->d_grad[2], e->d_grad[3], e->d_dout[1], e->d_out[0],
                     e->d_in[2], e->aux[0], e->aux[1], TN, TH, 1);
    o->copy(e->d_grad[1], e->d_grad[0], TN * TH * sizeof(float));
}

static const float att_mask[TN] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
static void att_setup_common(fd_env *e) {
    add_in(e, TN * 3 * TH, 1, 1.0f);
    add_out(e, TN * TH);
    e->aux[0] = dev_floats(e, NULL, (size_t)TB * TNH * TS * TS);
    e->aux[1] = dev_floats(e, att_mask, TN);
}
static ops_dropout att_drop(float p) {
    ops_dropout d = {.p = p, .step = 3};
    core_rng_key(d.key, 99, 0, 5);
    return d;
}
#define ATT_CASE(nm, layout, usemask, p)                                                           \
    static void nm##_fwd(fd_env *e) {                                                              \
        ops_dropout d = att_drop(p);                                                               \
        e->o->attention_fwd(e->d_out[0], e->aux[0], e->d_in[0], usemask ? e->aux[1] : NULL, &d,    \
                            TB, TS, TNH, THD, 0.57f, layout);                                      \
    }                                                                                              \
    static void nm##_bwd(fd_env *e) {                                                              \
        ops_dropout d = att_drop(p);                                                               \
        e->o->attention_bwd(e->d_grad[0], e->d_dout[0], e->d_in[0], e->aux[0], &d, TB, TS, TNH,    \
                            THD, 0.57f, layout);                                                   \
    }
ATT_CASE(att_il, OPS_QKV_HEAD_INTERLEAVED, 0, 0.0f)
ATT_CASE(att_blk_mask, OPS_QKV_BLOCKS, 1, 0.0f)
ATT_CASE(att_il_drop, OPS_QKV_HEAD_INTERLEAVED, 1, 0.3f)

static void glu_setup(fd_env *e) {
    add_in(e, TN * TI, 1, 1.5f);
    add_out(e, TN * TI / 2);
}
static void glu_fwd(fd_env *e) {
    e->o->gelu_glu_fwd(e->d_out[0], e->d_in[0], TN, TI);
}
static void glu_bwd(fd_env *e) {
    e->o->gelu_glu_bwd(e->d_grad[0], e->d_dout[0], e->d_in[0], TN, TI);
}

static void ew_setup(fd_env *e) {
    add_in(e, TN * TH, 1, 1.5f);
    add_out(e, TN * TH);
}
static void gelu_fwd(fd_env *e) {
    e->o->gelu_fwd(e->d_out[0], e->d_in[0], TN * TH);
}
static void gelu_bwd(fd_env *e) {
    e->o->gelu_bwd(e->d_grad[0], e->d_dout[0], e->d_in[0], TN * TH);
}
static void tanh_fwd(fd_env *e) {
    e->o->tanh_fwd(e->d_out[0], e->d_in[0], TN * TH);
}
static void tanh_bwd(fd_env *e) {
    e->o->tanh_bwd(e->d_grad[0], e->d_dout[0], e->d_out[0], TN * TH);
}
static void drop_fwd(fd_env *e) {
    ops_dropout d = att_drop(0.4f);
    e->o->dropout_fwd(e->d_out[0], e->d_in[0], &d, TN * TH);
}
static void drop_bwd(fd_env *e) {
    ops_dropout d = att_drop(0.4f);
    e->o->dropout_fwd(e->d_grad[0], e->d_dout[0], &d, TN * TH);
}
static void add_setup(fd_env *e) {
    add_in(e, TN * TH, 1, 1.0f);
    add_in(e, TN * TH, 1, 1.0f);
    add_out(e, TN * TH);
}
static void add_fwd(fd_env *e) {
    e->o->add(e->d_out[0], e->d_in[0], e->d_in[1], TN * TH);
}
static void add_bwd(fd_env *e) {
    e->o->copy(e->d_grad[0], e->d_dout[0], TN * TH * sizeof(float));
    e->o->copy(e->d_grad[1], e->d_dout[0], TN * TH * sizeof(float));
}

static const int32_t gather_idx[4] = {7, 2, 9, 0};
static void gat_setup(fd_env *e) {
    add_in(e, TN * TH, 1, 1.0f);
    add_out(e, 4 * TH);
    e->aux[0] = dev_ints(e, gather_idx, 4);
}
static void gat_fwd(fd_env *e) {
    e->o->gather_rows(e->d_out[0], e->d_in[0], e->aux[0], 4, TH);
}
static void gat_bwd(fd_env *e) {
    e->o->scatter_rows_add(e->d_grad[0], e->d_dout[0], e->aux[0], 4, TH);
}

static void pool_setup(fd_env *e) {
    add_in(e, TN * TH, 1, 1.0f);
    add_out(e, TB * TH);
}
static void pool0_fwd(fd_env *e) {
    e->o->pool_fwd(e->d_out[0], e->d_in[0], 0, TB, TS, TH);
}
static void pool0_bwd(fd_env *e) {
    e->o->pool_bwd(e->d_grad[0], e->d_dout[0], 0, TB, TS, TH);
}
static void pool1_fwd(fd_env *e) {
    e->o->pool_fwd(e->d_out[0], e->d_in[0], 1, TB, TS, TH);
}
static void pool1_bwd(fd_env *e) {
    e->o->pool_bwd(e->d_grad[0], e->d_dout[0], 1, TB, TS, TH);
}

static const int32_t xent_labels[TN] = {1, -100, 6, 0, 3, 3, -100, 2, 5, 4};
static void xent_setup(fd_env *e) {
    add_in(e, TN * TV, 1, 2.0f);
    add_out(e, TN);
    e->uniform_dout = 1;
    e->aux[0] = dev_ints(e, xent_labels, TN);
}
static void xent_fwd(fd_env *e) {
    e->o->xent_fwd_bwd(e->d_out[0], NULL, e->d_in[0], e->aux[0], TN, TV, 0.0f);
}
static void xent_bwd(fd_env *e) {
    e->aux[1] = dev_floats(e, NULL, TN);
    e->o->xent_fwd_bwd(e->aux[1], e->d_grad[0], e->d_in[0], e->aux[0], TN, TV, 1.0f);
}

static const fd_case cases[] = {
    {"matmul", mm_setup, mm_fwd, mm_bwd},
    {"embed learned+types", emb_setup, emb_fwd, emb_bwd},
    {"embed scaled sinusoid", embs_setup, embs_fwd, embs_bwd},
    {"layernorm", ln_setup, ln_fwd, ln_bwd},
    {"residual_layernorm", rln_setup, rln_fwd, rln_bwd},
    {"attention interleaved", att_setup_common, att_il_fwd, att_il_bwd},
    {"attention blocks masked", att_setup_common, att_blk_mask_fwd, att_blk_mask_bwd},
    {"attention dropout", att_setup_common, att_il_drop_fwd, att_il_drop_bwd},
    {"gelu_glu", glu_setup, glu_fwd, glu_bwd},
    {"gelu", ew_setup, gelu_fwd, gelu_bwd},
    {"tanh", ew_setup, tanh_fwd, tanh_bwd},
    {"dropout", ew_setup, drop_fwd, drop_bwd},
    {"add", add_setup, add_fwd, add_bwd},
    {"gather/scatter rows", gat_setup, gat_fwd, gat_bwd},
    {"pool zero_index", pool_setup, pool0_fwd, pool0_bwd},
    {"pool avg", pool_setup, pool1_fwd, pool1_bwd},
    {"softmax cross-entropy", xent_setup, xent_fwd, xent_bwd},
};

/* the backends under test; a CUDA backend joins here when compiled in */
static const ops *backend(int k) {
    return k == 0 ? ops_cpu() : NULL;
}

static void test_finite_differences(void **state) {
    (void)state;
    for (int b = 0; backend(b); b++)
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
            run_case(backend(b), &cases[k]);
}

/* ---- forward against naive loops ------------------------------------------------------- */
static void naive_attention(double *out, const float *qkv, const float *mask, int B, int S, int NH,
                            int HD, double scale, int layout) {
    int H = NH * HD;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < S; i++) {
                double sc[64], mx = -1e300, sum = 0.0;
                for (int j = 0; j < S; j++) {
                    double d = 0.0;
                    for (int t = 0; t < HD; t++) {
                        int qo = layout ? h * HD + t : h * 3 * HD + t;
                        int ko = layout ? H + h * HD + t : h * 3 * HD + HD + t;
                        d += (double)qkv[((size_t)b * S + i) * 3 * H + qo] *
                             qkv[((size_t)b * S + j) * 3 * H + ko];
                    }
                    sc[j] = d * scale + (mask ? (1.0 - mask[b * S + j]) * -10000.0 : 0.0);
                    mx = fmax(mx, sc[j]);
                }
                for (int j = 0; j < S; j++)
                    sum += (sc[j] = exp(sc[j] - mx));
                for (int t = 0; t < HD; t++) {
                    double acc = 0.0;
                    for (int j = 0; j < S; j++) {
                        int vo = layout ? 2 * H + h * HD + t : h * 3 * HD + 2 * HD + t;
                        acc += sc[j] / sum * qkv[((size_t)b * S + j) * 3 * H + vo];
                    }
                    out[((size_t)b * S + i) * H + h * HD + t] = acc;
                }
            }
}

static void test_forward_naive(void **state) {
    (void)state;
    for (int bk = 0; backend(bk); bk++) {
        const ops *o = backend(bk);
        core_rng r;
        core_rng_init(&r, 5, 0, 0, 1);
        int B = 2, S = 33, NH = 3, HD = 16, H = NH * HD;
        size_t nq = (size_t)B * S * 3 * H, no = (size_t)B * S * H;
        float *qkv = malloc(nq * sizeof(float)), *out = malloc(no * sizeof(float));
        float mask[66];
        for (int i = 0; i < B * S; i++)
            mask[i] = (i % 7 == 3) ? 0.0f : 1.0f;
        for (size_t i = 0; i < nq; i++)
            qkv[i] = core_rng_normal(&r);
        double *ref = malloc(no * sizeof(double));
        float *dq = o->alloc(nq * 4), *dout = o->alloc(no * 4),
              *dp = o->alloc((size_t)B * NH * S * S * 4);
        float *dm = o->alloc(sizeof mask);
        o->upload(dq, qkv, nq * 4);
        o->upload(dm, mask, sizeof mask);
        for (int layout = 0; layout < 2; layout++) {
            ops_dropout d = {0};
            o->attention_fwd(dout, dp, dq, dm, &d, B, S, NH, HD, 0.25f, layout);
            o->download(out, dout, no * 4);
            naive_attention(ref, qkv, mask, B, S, NH, HD, 0.25, layout);
            for (size_t i = 0; i < no; i++)
                assert_true(fabs(out[i] - ref[i]) < 1e-5 * (1 + fabs(ref[i])));
        }
        /* matmul with bias, a GEMM-sized shape */
        int N = 70, C = 130, OC = 90;
        float *x = malloc((size_t)N * C * 4), *w = malloc((size_t)OC * C * 4),
              *bias = malloc(OC * 4);
        for (int i = 0; i < N * C; i++)
            x[i] = core_rng_normal(&r);
        for (int i = 0; i < OC * C; i++)
            w[i] = core_rng_normal(&r);
        for (int i = 0; i < OC; i++)
            bias[i] = core_rng_normal(&r);
        float *dx = o->alloc((size_t)N * C * 4), *dw = o->alloc((size_t)OC * C * 4),
              *db = o->alloc(OC * 4);
        float *dy = o->alloc((size_t)N * OC * 4), *y = malloc((size_t)N * OC * 4);
        o->upload(dx, x, (size_t)N * C * 4);
        o->upload(dw, w, (size_t)OC * C * 4);
        o->upload(db, bias, OC * 4);
        o->matmul_fwd(dy, dx, dw, db, N, C, OC, 0);
        o->download(y, dy, (size_t)N * OC * 4);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < OC; j++) {
                double acc = bias[j];
                for (int k = 0; k < C; k++)
                    acc += (double)x[i * C + k] * w[j * C + k];
                assert_true(fabs(y[i * OC + j] - acc) < 1e-4 * (1 + fabs(acc)));
            }
        o->free(dx), o->free(dw), o->free(db), o->free(dy), o->free(dq), o->free(dout), o->free(dp),
            o->free(dm);
        free(x), free(w), free(bias), free(y), free(qkv), free(out), free(ref);
    }
}

/* ---- optimizer and whole-buffer ops ------------------------------------------------------- */
static void test_adamw_and_reductions(void **state) {
    (void)state;
    for (int bk = 0; backend(bk); bk++)
        for (int coupled = 1; coupled >= 0; coupled--) {
            const ops *o = backend(bk);
            enum { n = 1000 };
            float p[n], g[n], m[n], v[n];
            double rp[n], rm[n], rv[n];
            core_rng r;
            core_rng_init(&r, 8, 0, 0, 1);
            for (int i = 0; i < n; i++) {
                p[i] = core_rng_normal(&r);
                rp[i] = p[i];
                m[i] = v[i] = 0.0f;
                rm[i] = rv[i] = 0.0;
            }
            float *dp = o->alloc(sizeof p), *dg = o->alloc(sizeof g), *dm = o->alloc(sizeof m),
                  *dv = o->alloc(sizeof v);
            o->upload(dp, p, sizeof p);
            double lr = 1e-3, b1 = 0.9, b2 = 0.98, eps = 1e-12, wd = 0.01, gs = 0.5;
            for (int t = 1; t <= 3; t++) {
                for (int i = 0; i < n; i++)
                    g[i] = core_rng_normal(&r);
                o->upload(dg, g, sizeof g);
                o->adamw(dp, dg, dm, dv, n, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd,
                         (float)gs, t, coupled);
                for (int i = 0; i < n; i++) {
                    double gi = g[i] * gs;
                    if (coupled)
                        gi += wd * rp[i];
                    else
                        rp[i] *= 1 - lr * wd;
                    rm[i] = b1 * rm[i] + (1 - b1) * gi;
                    rv[i] = b2 * rv[i] + (1 - b2) * gi * gi;
                    double den = sqrt(rv[i]) / sqrt(1 - pow(b2, t)) + eps;
                    rp[i] -= lr / (1 - pow(b1, t)) * rm[i] / den;
                }
            }
            o->download(p, dp, sizeof p);
            for (int i = 0; i < n; i++)
                assert_true(fabs(p[i] - rp[i]) < 1e-6 * (1 + fabs(rp[i])));
            double ss = 0.0, s = 0.0;
            for (int i = 0; i < n; i++)
                ss += (double)p[i] * p[i], s += p[i];
            assert_true(fabs(o->sumsq(dp, n) - ss) < 1e-9 * ss);
            assert_true(fabs(o->sum(dp, n) - s) < 1e-6 * (1 + fabs(s)));
            o->scale(dp, 2.0f, n);
            o->download(g, dp, sizeof g);
            for (int i = 0; i < n; i++)
                assert_true(g[i] == 2.0f * p[i]);
            o->fill(dp, 0.25f, n);
            o->download(g, dp, sizeof g);
            for (int i = 0; i < n; i++)
                assert_true(g[i] == 0.25f);
            o->free(dp), o->free(dg), o->free(dm), o->free(dv);
        }
}

/* padding_idx: the pad row gets no lookup gradient; dropout keeps about 1-p, reproducibly */
static void test_embedding_pad_and_dropout_rate(void **state) {
    (void)state;
    const ops *o = ops_cpu();
    int32_t ids[6] = {0, 1, 0, 2, 1, 0};
    float dout[6 * 4];
    for (int i = 0; i < 24; i++)
        dout[i] = 1.0f;
    float *dg = o->alloc(3 * 4 * 4), *dd = o->alloc(sizeof dout);
    int32_t *di = o->alloc(sizeof ids);
    o->upload(di, ids, sizeof ids);
    o->upload(dd, dout, sizeof dout);
    o->embed_bwd(dg, NULL, NULL, NULL, dd, di, NULL, NULL, NULL, 0, 2, 3, 4);
    float g[12];
    o->download(g, dg, sizeof g);
    for (int h = 0; h < 4; h++) {
        assert_true(g[h] == 0.0f);
        assert_true(g[4 + h] == 2.0f);
        assert_true(g[8 + h] == 1.0f);
    }
    /* the vectorized mask equals the scalar definition, element for element, for a length that
     * ends mid-block and a step that uses both counter words */
    enum { n = 100003 };
    float *x = malloc(n * 4), *y = malloc(n * 4);
    float *dx = o->alloc(n * 4);
    const float ps[2] = {0.1f, 0.5f};
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < n; i++)
            x[i] = 1.0f;
        o->upload(dx, x, n * 4);
        ops_dropout d = {.p = ps[c], .step = c ? (5ull << 32) + 17 : 17};
        core_rng_key(d.key, 3, 0, 9);
        o->dropout_fwd(dx, dx, &d, n);
        o->download(y, dx, n * 4);
        int kept = 0;
        for (int i = 0; i < n; i++) {
            kept += y[i] != 0.0f;
            assert_true(y[i] == 0.0f || fabsf(y[i] - 1.0f / (1.0f - ps[c])) < 1e-6f);
            assert_int_equal(y[i] != 0.0f, ops_dropout_keep(&d, (uint64_t)i));
        }
        double want = (1.0 - ps[c]) * n;
        assert_true(fabs(kept - want) < 600);
    }
    o->free(dg), o->free(dd), o->free(di), o->free(dx);
    free(x), free(y);
}

/* attention dropout uses the mask of ops_dropout_keep at global index (b*NH+h)*S*S + i*S + j;
 * with S=5 the blocks start at every offset mod 4. V = identity makes the output the dropped
 * probabilities themselves. */
static void test_attention_dropout_mask(void **state) {
    (void)state;
    const ops *o = ops_cpu();
    enum { B = 3, S = 5, NH = 2, HD = S, H = NH * HD };
    float qkv[B * S * 3 * H], out[B * S * H], probs[B * NH * S * S];
    for (int i = 0; i < B * S * 3 * H; i++)
        qkv[i] = 0.1f * (float)((i * 37) % 11) - 0.5f;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < S; t++)
            for (int h = 0; h < NH; h++)
                for (int j = 0; j < HD; j++)
                    qkv[(size_t)(b * S + t) * 3 * H + 2 * H + h * HD + j] = t == j ? 1.0f : 0.0f;
    float *dq = o->alloc(sizeof qkv), *dout = o->alloc(sizeof out), *dp = o->alloc(sizeof probs);
    o->upload(dq, qkv, sizeof qkv);
    ops_dropout d = {.p = 0.4f, .step = 9};
    core_rng_key(d.key, 5, 0, 2);
    o->attention_fwd(dout, dp, dq, NULL, &d, B, S, NH, HD, 0.5f, OPS_QKV_BLOCKS);
    o->download(out, dout, sizeof out);
    o->download(probs, dp, sizeof probs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < S; i++)
                for (int j = 0; j < S; j++) {
                    uint64_t g = (((uint64_t)b * NH + h) * S + i) * S + j;
                    float p = probs[g], y = out[(size_t)(b * S + i) * H + h * HD + j];
                    float want = ops_dropout_keep(&d, g) ? p / 0.6f : 0.0f;
                    assert_true(fabsf(y - want) < 1e-6f);
                }
    o->free(dq), o->free(dout), o->free(dp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_forward_naive),
        cmocka_unit_test(test_adamw_and_reductions),
        cmocka_unit_test(test_embedding_pad_and_dropout_rate),
        cmocka_unit_test(test_attention_dropout_mask),
    };
    printf("# %s\n", ops_cpu_blas_info());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
