/* Every op of `struct ops`: backward against central finite differences of the forward (losses
 * accumulated in double, fp32 rows only), forward against naive loops, optimizer ops against
 * formulas, on every row backend_row lists (cpu, cpu-bf16, cuda when present); then the bf16
 * conversions and every op of the cpu-bf16 row against the fp32 row. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"
#include "ops/backend.h"
#include "ops/bf16.h"
#include "ops/cuda/fattn_math.h"
#include "ops/cuda/gpu.h"
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
    float *d = e->o->alloc(e->o, n * sizeof(float));
    if (h) e->o->upload(e->o, d, h, n * sizeof(float));
    return d;
}
static int32_t *dev_ints(fd_env *e, const int32_t *h, size_t n) {
    int32_t *d = e->o->alloc(e->o, n * sizeof(int32_t));
    e->o->upload(e->o, d, h, n * sizeof(int32_t));
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
        e->o->free(e->o, e->d_in[k]);
        e->o->free(e->o, e->d_grad[k]);
    }
    for (int k = 0; k < e->nout; k++) {
        e->o->free(e->o, e->d_out[k]);
        e->o->free(e->o, e->d_dout[k]);
    }
    for (int k = 0; k < MAXT; k++)
        if (e->aux[k]) e->o->free(e->o, e->aux[k]);
}

/* loss = sum_k <out_k, R_k>, accumulated in double */
static double eval_loss(fd_env *e, const fd_case *c, float *const *R) {
    for (int k = 0; k < e->nin; k++)
        e->o->upload(e->o, e->d_in[k], e->h_in[k], e->in_n[k] * sizeof(float));
    c->fwd(e);
    double L = 0.0;
    for (int k = 0; k < e->nout; k++) {
        float *h = malloc(e->out_n[k] * sizeof(float));
        e->o->download(e->o, h, e->d_out[k], e->out_n[k] * sizeof(float));
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
        o->download(o, g, e.d_grad[k], n * sizeof(float));
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
    e->o->matmul_fwd(e->o, e->d_out[0], e->d_in[0], e->d_in[1], e->d_in[2], TN, 5, 4, 0);
}
static void mm_bwd(fd_env *e) {
    e->o->matmul_bwd(e->o, e->d_grad[0], e->d_grad[1], e->d_grad[2], e->d_dout[0], e->d_in[0],
                     e->d_in[1], TN, 5, 4, 0);
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
    e->o->embed_fwd(e->o, e->d_out[0], e->aux[0], e->aux[1], e->d_in[0], e->d_in[1], NULL,
                    e->d_in[2], TB, TS, TH);
}
static void emb_bwd(fd_env *e) {
    e->o->embed_bwd(e->o, e->d_grad[0], e->d_grad[1], NULL, e->d_grad[2], e->d_dout[0], e->aux[0],
                    e->aux[1], e->d_in[1], NULL, -1, TB, TS, TH, TV, 2);
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
    e->o->embed_fwd(e->o, e->d_out[0], e->aux[0], NULL, e->d_in[0], e->aux[1], e->d_in[1], NULL, TB,
                    TS, TH);
}
static void embs_bwd(fd_env *e) {
    e->o->embed_bwd(e->o, e->d_grad[0], NULL, e->d_grad[1], NULL, e->d_dout[0], e->aux[0], NULL,
                    e->aux[1], e->d_in[1], -1, TB, TS, TH, TV, 0);
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
    e->o->layernorm_fwd(e->o, e->d_out[0], e->aux[0], e->aux[1], e->d_in[0], e->d_in[1], e->d_in[2],
                        TN, TH, 1e-5f);
}
static void ln_bwd(fd_env *e) {
    e->o->layernorm_bwd(e->o, e->d_grad[0], e->d_grad[1], e->d_grad[2], e->d_dout[0], e->d_in[0],
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
    e->o->residual_layernorm_fwd(e->o, e->d_out[0], e->d_out[1], e->aux[0], e->aux[1], e->d_in[0],
                                 e->d_in[1], e->d_in[2], e->d_in[3], TN, TH, 1e-5f);
}
static void rln_bwd(fd_env *e) {
    const ops *o = e->o;
    o->copy(o, e->d_grad[0], e->d_dout[0], TN * TH * sizeof(float));
    o->layernorm_bwd(o, e->d_grad[0], e->d_grad[2], e->d_grad[3], e->d_dout[1], e->d_out[0],
                     e->d_in[2], e->aux[0], e->aux[1], TN, TH, 1);
    o->copy(o, e->d_grad[1], e->d_grad[0], TN * TH * sizeof(float));
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
        e->o->attention_fwd(e->o, e->d_out[0], e->aux[0], e->d_in[0], usemask ? e->aux[1] : NULL,  \
                            &d, TB, TS, TNH, THD, 0.57f, layout);                                  \
    }                                                                                              \
    static void nm##_bwd(fd_env *e) {                                                              \
        ops_dropout d = att_drop(p);                                                               \
        e->o->attention_bwd(e->o, e->d_grad[0], e->d_dout[0], e->d_out[0], e->d_in[0], e->aux[0],  \
                            &d, TB, TS, TNH, THD, 0.57f, layout);                                  \
    }
ATT_CASE(att_il, OPS_QKV_HEAD_INTERLEAVED, 0, 0.0f)
ATT_CASE(att_blk_mask, OPS_QKV_BLOCKS, 1, 0.0f)
ATT_CASE(att_il_drop, OPS_QKV_HEAD_INTERLEAVED, 1, 0.3f)

static void glu_setup(fd_env *e) {
    add_in(e, TN * TI, 1, 1.5f);
    add_out(e, TN * TI / 2);
}
static void glu_fwd(fd_env *e) {
    e->o->gelu_glu_fwd(e->o, e->d_out[0], e->d_in[0], TN, TI);
}
static void glu_bwd(fd_env *e) {
    e->o->gelu_glu_bwd(e->o, e->d_grad[0], e->d_dout[0], e->d_in[0], TN, TI);
}

static void ew_setup(fd_env *e) {
    add_in(e, TN * TH, 1, 1.5f);
    add_out(e, TN * TH);
}
static void gelu_fwd(fd_env *e) {
    e->o->gelu_fwd(e->o, e->d_out[0], e->d_in[0], TN * TH);
}
static void gelu_bwd(fd_env *e) {
    e->o->gelu_bwd(e->o, e->d_grad[0], e->d_dout[0], e->d_in[0], TN * TH);
}
static void tanh_fwd(fd_env *e) {
    e->o->tanh_fwd(e->o, e->d_out[0], e->d_in[0], TN * TH);
}
static void tanh_bwd(fd_env *e) {
    e->o->tanh_bwd(e->o, e->d_grad[0], e->d_dout[0], e->d_out[0], TN * TH);
}
static void drop_fwd(fd_env *e) {
    ops_dropout d = att_drop(0.4f);
    e->o->dropout_fwd(e->o, e->d_out[0], e->d_in[0], &d, TN * TH);
}
static void drop_bwd(fd_env *e) {
    ops_dropout d = att_drop(0.4f);
    e->o->dropout_fwd(e->o, e->d_grad[0], e->d_dout[0], &d, TN * TH);
}
static void add_setup(fd_env *e) {
    add_in(e, TN * TH, 1, 1.0f);
    add_in(e, TN * TH, 1, 1.0f);
    add_out(e, TN * TH);
}
static void add_fwd(fd_env *e) {
    e->o->add(e->o, e->d_out[0], e->d_in[0], e->d_in[1], TN * TH);
}
static void add_bwd(fd_env *e) {
    e->o->copy(e->o, e->d_grad[0], e->d_dout[0], TN * TH * sizeof(float));
    e->o->copy(e->o, e->d_grad[1], e->d_dout[0], TN * TH * sizeof(float));
}

static const int32_t gather_idx[4] = {7, 2, 9, 0};
static void gat_setup(fd_env *e) {
    add_in(e, TN * TH, 1, 1.0f);
    add_out(e, 4 * TH);
    e->aux[0] = dev_ints(e, gather_idx, 4);
}
static void gat_fwd(fd_env *e) {
    e->o->gather_rows(e->o, e->d_out[0], e->d_in[0], e->aux[0], 4, TH);
}
static void gat_bwd(fd_env *e) {
    e->o->scatter_rows_add(e->o, e->d_grad[0], e->d_dout[0], e->aux[0], 4, TH);
}

static void pool_setup(fd_env *e) {
    add_in(e, TN * TH, 1, 1.0f);
    add_out(e, TB * TH);
}
static void pool0_fwd(fd_env *e) {
    e->o->pool_fwd(e->o, e->d_out[0], e->d_in[0], 0, TB, TS, TH);
}
static void pool0_bwd(fd_env *e) {
    e->o->pool_bwd(e->o, e->d_grad[0], e->d_dout[0], 0, TB, TS, TH);
}
static void pool1_fwd(fd_env *e) {
    e->o->pool_fwd(e->o, e->d_out[0], e->d_in[0], 1, TB, TS, TH);
}
static void pool1_bwd(fd_env *e) {
    e->o->pool_bwd(e->o, e->d_grad[0], e->d_dout[0], 1, TB, TS, TH);
}

static const int32_t xent_labels[TN] = {1, -100, 6, 0, 3, 3, -100, 2, 5, 4};
static void xent_setup(fd_env *e) {
    add_in(e, TN * TV, 1, 2.0f);
    add_out(e, TN);
    e->uniform_dout = 1;
    e->aux[0] = dev_ints(e, xent_labels, TN);
}
static void xent_fwd(fd_env *e) {
    e->o->xent_fwd_bwd(e->o, e->d_out[0], NULL, e->d_in[0], e->aux[0], TN, TV, 0.0f);
}
static void xent_bwd(fd_env *e) {
    e->aux[1] = dev_floats(e, NULL, TN);
    e->o->xent_fwd_bwd(e->o, e->aux[1], e->d_grad[0], e->d_in[0], e->aux[0], TN, TV, 1.0f);
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

/* ---- the rows under test ------------------------------------------------------------------ */
/* Row k of backend.h's list (0 cpu, 1 cpu-bf16, 2 cuda when present), skipping the missing
 * ones after saying why (once per row); NULL past the last. */
static const ops *next_row(int *k) {
    static unsigned said;
    for (;;) {
        char why[256];
        int i = (*k)++;
        const ops *o = backend_row(i, why, sizeof why);
        if (o) return o;
        if (!why[0]) return NULL;
        if (i < 32 && !(said & 1u << i)) print_message("# %s\n", why);
        if (i < 32) said |= 1u << i;
    }
}
#define FOR_EACH_ROW(o) for (int row_k_ = 0; ((o) = next_row(&row_k_)) != NULL;)

/* n elements on row o: A (activation type, act_bytes each) or F (fp32), from host floats h
 * (NULL: zeros) */
enum { KF = 0, KA = 1 };
static float *put(const ops *o, const float *h, size_t n, int kind) {
    float *d = o->alloc(o, n * (kind == KA ? (size_t)o->act_bytes : sizeof(float)));
    if (h && kind == KA) o->upload_act(o, d, h, n);
    if (h && kind == KF) o->upload(o, d, h, n * sizeof(float));
    return d;
}
static void get(const ops *o, float *h, const float *d, size_t n, int kind) {
    if (kind == KA)
        o->download_act(o, h, d, n);
    else
        o->download(o, h, d, n * sizeof(float));
}

/* the finite differences need fp32 activations: bf16 rounding swamps a 1e-2 step */
static void test_finite_differences(void **state) {
    (void)state;
    const ops *o;
    FOR_EACH_ROW(o) {
        if (o->act_bytes != 4) continue;
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
            run_case(o, &cases[k]);
    }
}

/* Rows with bf16 activations see inputs already rounded to bf16 and round their A outputs once:
 * their tolerances add half a bf16 ulp, at most 2^-8 of the value. */
static double act_round(const ops *o) {
    return o->act_bytes == 2 ? 0x1p-8 : 0.0;
}
static void quantize_for(const ops *o, float *x, size_t n) {
    if (o->act_bytes == 2) ops_bf16_quantize_n(x, n);
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
    const ops *o;
    FOR_EACH_ROW(o) {
        double q = act_round(o);
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
        quantize_for(o, qkv, nq);
        double *ref = malloc(no * sizeof(double));
        float *dq = put(o, qkv, nq, KA), *dout = put(o, NULL, no, KA);
        float *dp = o->alloc(o, o->attn_state_bytes(o, B, S, NH, HD));
        float *dm = put(o, mask, (size_t)B * S, KF);
        for (int layout = 0; layout < 2; layout++) {
            ops_dropout d = {0};
            o->attention_fwd(o, dout, dp, dq, dm, &d, B, S, NH, HD, 0.25f, layout);
            get(o, out, dout, no, KA);
            naive_attention(ref, qkv, mask, B, S, NH, HD, 0.25, layout);
            for (size_t i = 0; i < no; i++)
                assert_true(fabs(out[i] - ref[i]) < 1e-5 * (1 + fabs(ref[i])) + q * fabs(ref[i]));
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
        quantize_for(o, x, (size_t)N * C);
        quantize_for(o, w, (size_t)OC * C);
        quantize_for(o, bias, (size_t)OC);
        float *dx = put(o, x, (size_t)N * C, KA), *dw = put(o, w, (size_t)OC * C, KA),
              *db = put(o, bias, (size_t)OC, KA);
        float *dy = put(o, NULL, (size_t)N * OC, KA), *y = malloc((size_t)N * OC * 4);
        o->matmul_fwd(o, dy, dx, dw, db, N, C, OC, 0);
        get(o, y, dy, (size_t)N * OC, KA);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < OC; j++) {
                double acc = bias[j];
                for (int k = 0; k < C; k++)
                    acc += (double)x[i * C + k] * w[j * C + k];
                assert_true(fabs(y[i * OC + j] - acc) < 1e-4 * (1 + fabs(acc)) + q * fabs(acc));
            }
        o->free(o, dx), o->free(o, dw), o->free(o, db), o->free(o, dy), o->free(o, dq);
        o->free(o, dout), o->free(o, dp), o->free(o, dm);
        free(x), free(w), free(bias), free(y), free(qkv), free(out), free(ref);
    }
}

/* ---- optimizer and whole-buffer ops ------------------------------------------------------- */
static void test_adamw_and_reductions(void **state) {
    (void)state;
    const ops *o;
    FOR_EACH_ROW(o)
    for (int coupled = 1; coupled >= 0; coupled--) {
        enum { n = 1000 };
        float p[n], g[n], pa[n];
        double rp[n], rm[n], rv[n];
        core_rng r;
        core_rng_init(&r, 8, 0, 0, 1);
        for (int i = 0; i < n; i++) {
            p[i] = core_rng_normal(&r);
            rp[i] = p[i];
            rm[i] = rv[i] = 0.0;
        }
        float *dp = put(o, p, n, KF), *dg = put(o, NULL, n, KF), *dm = put(o, NULL, n, KF),
              *dv = put(o, NULL, n, KF);
        /* the working copy: a separate buffer where activations are not fp32 */
        float *dpa = o->act_bytes == 4 ? NULL : put(o, NULL, n, KA);
        double lr = 1e-3, b1 = 0.9, b2 = 0.98, eps = 1e-12, wd = 0.01, gs = 0.5;
        for (int t = 1; t <= 3; t++) {
            for (int i = 0; i < n; i++)
                g[i] = core_rng_normal(&r);
            o->upload(o, dg, g, sizeof g);
            o->adamw(o, dp, dpa, dg, dm, dv, n, lr, b1, b2, eps, wd, (float)gs, t, coupled);
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
        o->download(o, p, dp, sizeof p);
        for (int i = 0; i < n; i++)
            assert_true(fabs(p[i] - rp[i]) < 1e-6 * (1 + fabs(rp[i])));
        if (dpa) { /* the working copy is the new masters rounded, exactly */
            get(o, pa, dpa, n, KA);
            for (int i = 0; i < n; i++)
                assert_true(pa[i] == ops_bf16_quantize(p[i]));
            o->free(o, dpa);
        }
        double ss = 0.0, s = 0.0;
        for (int i = 0; i < n; i++)
            ss += (double)p[i] * p[i], s += p[i];
        assert_true(fabs(o->sumsq(o, dp, n) - ss) < 1e-9 * ss);
        assert_true(fabs(o->sum(o, dp, n) - s) < 1e-6 * (1 + fabs(s)));
        double *acc = o->alloc(o, sizeof(double)), host_acc;
        o->accumulate(o, acc, dp, n);
        o->accumulate(o, acc, dp, n);
        o->download(o, &host_acc, acc, sizeof host_acc);
        assert_true(fabs(host_acc - 2 * s) < 2e-6 * (1 + fabs(s)));
        o->free(o, acc);
        /* scale, fill and sum_act work on A buffers; doubling and 0.25 are exact in bf16 */
        quantize_for(o, p, n);
        float *da = put(o, p, n, KA);
        double sa = 0.0;
        for (int i = 0; i < n; i++)
            sa += p[i];
        assert_true(fabs(o->sum_act(o, da, n) - sa) < 1e-6 * (1 + fabs(sa)));
        o->scale(o, da, 2.0f, n);
        get(o, g, da, n, KA);
        for (int i = 0; i < n; i++)
            assert_true(g[i] == 2.0f * p[i]);
        o->fill(o, da, 0.25f, n);
        get(o, g, da, n, KA);
        for (int i = 0; i < n; i++)
            assert_true(g[i] == 0.25f);
        o->free(o, da);
        o->free(o, dp), o->free(o, dg), o->free(o, dm), o->free(o, dv);
    }
}

/* padding_idx: the pad row gets no lookup gradient; dropout keeps about 1-p, reproducibly */
static void test_embedding_pad_and_dropout_rate(void **state) {
    (void)state;
    const ops *o;
    FOR_EACH_ROW(o) {
        int32_t ids[6] = {0, 1, 0, 2, 1, 0};
        float dout[6 * 4];
        for (int i = 0; i < 24; i++)
            dout[i] = 1.0f;
        float *dg = put(o, NULL, 3 * 4, KF), *dd = put(o, dout, 24, KA);
        int32_t *di = o->alloc(o, sizeof ids);
        o->upload(o, di, ids, sizeof ids);
        o->embed_bwd(o, dg, NULL, NULL, NULL, dd, di, NULL, NULL, NULL, 0, 2, 3, 4, 3, 0);
        float g[12];
        o->download(o, g, dg, sizeof g);
        for (int h = 0; h < 4; h++) {
            assert_true(g[h] == 0.0f);
            assert_true(g[4 + h] == 2.0f);
            assert_true(g[8 + h] == 1.0f);
        }
        /* the vectorized mask equals the scalar definition, element for element, for a length
         * that ends mid-block and a step that uses both counter words */
        enum { n = 100003 };
        float *x = malloc(n * 4), *y = malloc(n * 4);
        float *dx = put(o, NULL, n, KA);
        const float ps[2] = {0.1f, 0.5f};
        for (int c = 0; c < 2; c++) {
            for (int i = 0; i < n; i++)
                x[i] = 1.0f;
            o->upload_act(o, dx, x, n);
            ops_dropout d = {.p = ps[c], .step = c ? (5ull << 32) + 17 : 17};
            core_rng_key(d.key, 3, 0, 9);
            o->dropout_fwd(o, dx, dx, &d, n);
            get(o, y, dx, n, KA);
            int kept = 0;
            float want = 1.0f / (1.0f - ps[c]);
            for (int i = 0; i < n; i++) {
                kept += y[i] != 0.0f;
                assert_true(y[i] == 0.0f || fabsf(y[i] - want) < 1e-6f + act_round(o) * want);
                assert_int_equal(y[i] != 0.0f, ops_dropout_keep(&d, (uint64_t)i));
            }
            double expect = (1.0 - ps[c]) * n;
            assert_true(fabs(kept - expect) < 600);
        }
        o->free(o, dg), o->free(o, dd), o->free(o, di), o->free(o, dx);
        free(x), free(y);
    }
}

/* attention dropout uses the mask of ops_dropout_keep at global index (b*NH+h)*S*S + i*S + j;
 * with S=5 the blocks start at every offset mod 4. V = identity makes the output the dropped
 * probabilities themselves. */
static void test_attention_dropout_mask(void **state) {
    (void)state;
    const ops *o;
    FOR_EACH_ROW(o) {
        enum { B = 3, S = 5, NH = 2, HD = S, H = NH * HD };
        float qkv[B * S * 3 * H], out[B * S * H], probs[B * NH * S * S];
        for (int i = 0; i < B * S * 3 * H; i++)
            qkv[i] = 0.1f * (float)((i * 37) % 11) - 0.5f;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < S; t++)
                for (int h = 0; h < NH; h++)
                    for (int j = 0; j < HD; j++)
                        qkv[(size_t)(b * S + t) * 3 * H + 2 * H + h * HD + j] =
                            t == j ? 1.0f : 0.0f;
        quantize_for(o, qkv, B * S * 3 * H);
        assert_true(o->attn_state_bytes(o, B, S, NH, HD) >= sizeof probs);
        float *dq = put(o, qkv, B * S * 3 * H, KA), *dout = put(o, NULL, B * S * H, KA);
        float *dp = o->alloc(o, o->attn_state_bytes(o, B, S, NH, HD));
        ops_dropout d = {.p = 0.4f, .step = 9};
        core_rng_key(d.key, 5, 0, 2);
        o->attention_fwd(o, dout, dp, dq, NULL, &d, B, S, NH, HD, 0.5f, OPS_QKV_BLOCKS);
        get(o, out, dout, B * S * H, KA);
        /* a backend that keeps another attention state than the probabilities is not checked */
        int have_probs = o->attn_state_bytes(o, B, S, NH, HD) == sizeof probs;
        if (have_probs) o->download(o, probs, dp, sizeof probs);
        for (int b = 0; b < B && have_probs; b++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < S; i++)
                    for (int j = 0; j < S; j++) {
                        uint64_t g = (((uint64_t)b * NH + h) * S + i) * S + j;
                        float p = probs[g], y = out[(size_t)(b * S + i) * H + h * HD + j];
                        float want = ops_dropout_keep(&d, g) ? p / 0.6f : 0.0f;
                        assert_true(fabsf(y - want) < 1e-6f + act_round(o) * fabsf(want));
                    }
        o->free(o, dq), o->free(o, dout), o->free(o, dp);
    }
}

/* ---- the fused CUDA attention's host-side arithmetic (fattn_math.h) -------------------------- */
static void test_fattn_math(void **state) {
    (void)state;
    /* the dropout bits four at a time are ops_dropout_keep's, at every alignment and across the
     * carry of the counter's low word */
    for (int k = 0; k < 3; k++) {
        ops_dropout d = {.p = 0.1f + 0.2f * (float)k, .step = 0x100000007ull * (uint64_t)k + 3};
        core_rng_key(d.key, 11, (uint32_t)k, 2);
        uint64_t thr = ops_fattn_drop_threshold(d.p);
        const uint64_t starts[2] = {0, (1ull << 34) - 512};
        for (int s0 = 0; s0 < 2; s0++)
            for (uint64_t i = starts[s0]; i < starts[s0] + 1024; i++) {
                unsigned bits = ops_fattn_keep4(&d, thr, i);
                for (unsigned u = 0; u < 4; u++)
                    assert_int_equal((bits >> u) & 1u, (unsigned)ops_dropout_keep(&d, i + u));
            }
    }
    /* the online softmax over key tiles, as the forward runs it, against the direct one: a tail
     * of 2 keys, masked keys, scores large enough that the running maximum moves */
    enum { S = 130, T = OPS_FATTN_TILE };
    core_rng r;
    core_rng_init(&r, 9, 0, 0, 4);
    float s[S];
    for (int j = 0; j < S; j++)
        s[j] = ops_fattn_score(8.0f * core_rng_normal(&r) + 0.2f * (float)j, 0.41f,
                               ops_fattn_key_bias(j % 9 == 4 ? 0.0f : 1.0f));
    float m = -INFINITY, l = 0.0f;
    for (int k0 = 0; k0 < S; k0 += T) {
        int nk = S - k0 < T ? S - k0 : T;
        float tmax = -INFINITY, ts = 0.0f;
        for (int j = 0; j < nk; j++)
            tmax = fmaxf(tmax, s[k0 + j]);
        float alpha = ops_fattn_step(&m, tmax);
        for (int j = 0; j < nk; j++)
            ts += ops_expf(s[k0 + j] - m);
        l = l * alpha + ts;
    }
    float lse = ops_fattn_lse(m, l);
    double mx = -1e300, sum = 0.0;
    for (int j = 0; j < S; j++)
        mx = fmax(mx, s[j]);
    for (int j = 0; j < S; j++)
        sum += exp(s[j] - mx);
    double want = mx + log(sum);
    assert_true(fabs(lse - want) <= 2e-6 * (1.0 + fabs(want)));
    for (int j = 0; j < S; j++)
        assert_true(fabs(ops_fattn_prob(s[j], lse) - exp(s[j] - want)) <= 1e-5);
    /* the backward passes fit the smallest shared memory per block of a card the bf16 row opens
     * on: 99 KiB (compute capability 8.6, 8.9, 12.x) */
    assert_true(ops_fattn_smem_bytes(3) <= ops_fattn_smem_bytes(4));
    assert_true(ops_fattn_smem_bytes(4) <= 99 * 1024);
}

/* ---- bf16 conversions (bf16.h) -------------------------------------------------------------- */
static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The bf16 of x by its definition: of the two bf16 values around x (the truncation and the next
 * one away from zero, with 2^128 standing for infinity), the nearer; on a tie the even one. */
static uint16_t bf16_reference(uint32_t u) {
    uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
    double x = fabs((double)from_bits(u)), a = fabs((double)from_bits(lo));
    double b = (hi & 0x7fffffffu) == 0x7f800000u ? ldexp(1.0, 128) : fabs((double)from_bits(hi));
    double da = x - a, db = b - x;
    if (da < db) return (uint16_t)(lo >> 16);
    if (db < da) return (uint16_t)(hi >> 16);
    return (lo >> 16) & 1u ? (uint16_t)(hi >> 16) : (uint16_t)(lo >> 16);
}

static void test_bf16_conversions(void **state) {
    (void)state;
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        {0x3f800000u, 0x3f80}, /* 1 */
        {0x3f808000u, 0x3f80}, /* 1 + 2^-8: a tie, down to the even 1 */
        {0x3f818000u, 0x3f82}, /* 1 + 3 * 2^-8: a tie, up to the even 1 + 2^-6 */
        {0x3f808001u, 0x3f81}, /* just past the tie: up */
        {0x3f807fffu, 0x3f80}, /* just before it: down */
        {0xbf808000u, 0xbf80}, /* negative ties go to even too */
        {0xbf818000u, 0xbf82},
        {0x3fffffffu, 0x4000}, /* 1.99999988 rounds up into the next binade: 2 */
        {0x3fff8000u, 0x4000}, /* a tie whose even neighbour is the next binade */
        {0xbfff8000u, 0xc000},
        {0x7f7f7fffu, 0x7f7f}, /* the largest float that stays finite */
        {0x7f7f8000u, 0x7f80}, /* the tie above the largest bf16 goes to infinity */
        {0x7f7fffffu, 0x7f80}, /* FLT_MAX: infinity */
        {0xff7fffffu, 0xff80},
        {0x7f800000u, 0x7f80}, /* +inf */
        {0xff800000u, 0xff80}, /* -inf */
        {0x00000000u, 0x0000}, /* +0 */
        {0x80000000u, 0x8000}, /* -0 */
        {0x00000001u, 0x0000}, /* the smallest subnormal: 0 */
        {0x80000001u, 0x8000}, /* -0 keeps its sign */
        {0x00008000u, 0x0000}, /* subnormal tie: to even 0 */
        {0x00018000u, 0x0002}, /* subnormal tie: to even 2 */
        {0x00008001u, 0x0001}, /* the smallest bf16 subnormal */
        {0x00010000u, 0x0001},
        {0x007fffffu, 0x0080}, /* the largest subnormal rounds up to the smallest normal */
        {0x00400000u, 0x0040}, /* an exact subnormal */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint16_t got = ops_bf16_round(from_bits(cases[i].in));
        if (got != cases[i].out)
            fail_msg("bf16(0x%08x) = 0x%04x, want 0x%04x", cases[i].in, got, cases[i].out);
        assert_true(bits_of(ops_bf16_float(got)) == (uint32_t)got << 16);
    }
    /* NaNs stay NaN (quiet, same sign) even when the payload is only in the dropped bits */
    static const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u,
                                    0x7fa00000u, 0x7fffffffu, 0x7f80ffffu};
    for (size_t i = 0; i < sizeof nans / sizeof *nans; i++) {
        uint16_t h = ops_bf16_round(from_bits(nans[i]));
        assert_true(isnan(ops_bf16_float(h)));
        assert_true((h & 0x0040u) != 0);
        assert_true((h & 0x8000u) == ((nans[i] >> 16) & 0x8000u));
    }
    /* a million random bit patterns against the definition */
    uint64_t st = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 1000000; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t u = (uint32_t)(st >> 32);
        if ((u & 0x7fffffffu) > 0x7f800000u) continue; /* NaN, checked above */
        uint16_t got = ops_bf16_round(from_bits(u)), want = bf16_reference(u);
        if (got != want) fail_msg("bf16(0x%08x) = 0x%04x, want 0x%04x", u, got, want);
    }
    /* every bf16 value converts to fp32 and back unchanged */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = ops_bf16_float((uint16_t)h);
        if (isnan(f)) continue;
        assert_int_equal(ops_bf16_round(f), h);
    }
    /* upload_act / download_act / refresh_weights on each row: the same rounding */
    const ops *o;
    FOR_EACH_ROW(o) {
        enum { n = sizeof cases / sizeof *cases };
        float x[n], y[n];
        for (int i = 0; i < n; i++)
            x[i] = from_bits(cases[i].in);
        float *d = put(o, x, n, KA), *w = put(o, x, n, KF), *wa = put(o, NULL, n, KA);
        get(o, y, d, n, KA);
        for (int i = 0; i < n; i++)
            assert_true(bits_of(y[i]) ==
                        (o->act_bytes == 2 ? (uint32_t)cases[i].out << 16 : cases[i].in));
        o->refresh_weights(o, wa, w, n);
        get(o, y, wa, n, KA);
        for (int i = 0; i < n; i++)
            assert_true(bits_of(y[i]) ==
                        (o->act_bytes == 2 ? (uint32_t)cases[i].out << 16 : cases[i].in));
        float nan = from_bits(0x7f800001u);
        o->upload_act(o, d, &nan, 1);
        get(o, y, d, 1, KA);
        assert_true(isnan(y[0]));
        /* raw byte ops move A elements of act_bytes each */
        float *e = put(o, NULL, n, KA);
        o->copy(o, e, wa, (size_t)n * o->act_bytes);
        get(o, y, e, n, KA);
        for (int i = 0; i < n; i++)
            assert_true(bits_of(y[i]) ==
                        (o->act_bytes == 2 ? (uint32_t)cases[i].out << 16 : cases[i].in));
        o->memset0(o, e, (size_t)n * o->act_bytes);
        o->sync(o);
        get(o, y, e, n, KA);
        for (int i = 0; i < n; i++)
            assert_true(bits_of(y[i]) == 0);
        o->free(o, d), o->free(o, w), o->free(o, wa), o->free(o, e);
        /* long transfers, back to back: a row that converts through a staging buffer in chunks
         * (the CUDA bf16 row) must finish with each chunk before rewriting it */
        size_t big = (size_t)5 << 19; /* 2.5 Mi elements */
        float *h1 = malloc(big * sizeof(float)), *h2 = malloc(big * sizeof(float));
        float *back = malloc(big * sizeof(float));
        for (size_t i = 0; i < big; i++) {
            h1[i] = (float)(i % 65521) * 0.37f + 0.1f;
            h2[i] = -(float)(i % 65519) * 1.3f;
        }
        float *d1 = put(o, h1, big, KA), *d2 = put(o, h2, big, KA);
        for (int k = 0; k < 2; k++) {
            const float *h = k ? h2 : h1;
            get(o, back, k ? d2 : d1, big, KA);
            for (size_t i = 0; i < big; i++)
                if (bits_of(back[i]) != bits_of(o->act_bytes == 2 ? ops_bf16_quantize(h[i]) : h[i]))
                    fail_msg("%s/%s: element %zu of a long transfer is %.9g, want %.9g", o->name,
                             o->precision, i, (double)back[i], (double)h[i]);
        }
        o->free(o, d1), o->free(o, d2);
        free(h1), free(h2), free(back);
    }
}

/* ---- every op of the bf16 row against the fp32 row ------------------------------------------
 * Both rows get the same inputs, rounded to bf16 first, so the fp32 row computes exactly what
 * the bf16 row should before its final rounding. Tolerance rule, per output element b (fp32
 * row) and a (bf16 row):  |a - b| <= re * |b| + rr * s,  s = max |b| over the element's row
 * (the GEMM's output row, the LayerNorm row, ...):
 *   T_EXACT  re = rr = 0: copies, masks, the fp32 optimizer state, integer-valued outputs.
 *   T_ROUND  re = 2^-8: one rounding to bf16 of the same fp32 value (half an ulp of an 8-bit
 *            significand is at most 2^-8 of the value); rr = 2^-16 allows the last fp32 bits to
 *            differ (contraction, another backend's evaluation order) across a rounding edge.
 *   T_SUM    re = 2^-8, rr = 2^-10: A outputs of long fp32 reductions (GEMMs, attention,
 *            LayerNorm, means): the rounding plus room for another summation order, whose fp32
 *            error scales with the row's magnitude rather than the element's.
 *   T_FUSED  re = 2^-8, rr = 2^-6: outputs computed from a bf16-rounded intermediate the fp32
 *            row keeps in fp32 (residual_layernorm_fwd normalizes the rounded residual): an
 *            input error of 2^-8 relative, amplified by rstd and the weights, over the row.
 *   T_F      re = 1e-5, rr = 1e-6: F outputs (parameter gradients, mean/rstd, losses, the
 *            probabilities): fp32 on both rows, only the summation order may differ.
 *   T_FATTN  re = 2^-7, rr = 2^-6: the CUDA bf16 row's fused attention, which rounds P and dS to
 *            bf16 where they enter its tensor-core products (the CPU row keeps them fp32): an error
 *            of up to 2^-8 of each term, which grows with the row rather than the element. An
 *            emulation of the kernels on the CPU stayed within 2^-7 |b| + 0.004 s, and its rms
 *            error within 0.003 of the rms value, which rms_within() holds to 2^-7. */
typedef struct tol {
    double re, rr;
} tol;
static const tol T_EXACT = {0.0, 0.0}, T_ROUND = {0x1p-8, 0x1p-16}, T_SUM = {0x1p-8, 0x1p-10},
                 T_FUSED = {0x1p-8, 0x1p-6}, T_F = {1e-5, 1e-6}, T_FATTN = {0x1p-7, 0x1p-6};

static const ops *RW[2]; /* [0] the fp32 row, [1] the bf16 row */
static int mismatches;
static core_rng trng;

/* What RW holds: the cpu-bf16 row against the cpu row (the tolerances above), or a CUDA row
 * against the CPU row of its own precision. Then both rows round the same fp32 numbers, up to
 * summation order and contraction: an A output may sit one ulp apart where the fp32 values
 * straddle a rounding edge (2^-7 of the value in bf16; 1e-5 covers fp32), and every T_EXACT
 * result (copies, masks, the optimizer, integer-valued outputs) stays exact. */
enum { CMP_BF16_VS_FP32, CMP_SAME_FP32, CMP_SAME_BF16 };
static int cmp_mode;

static tol adjust(tol t) {
    if (cmp_mode == CMP_BF16_VS_FP32 || (t.re == 0.0 && t.rr == 0.0)) return t;
    if (t.re == T_F.re && t.rr == T_F.rr) return t; /* fp32 on both rows already */
    if (cmp_mode == CMP_SAME_FP32) return (tol){1e-5, 1e-5};
    return (tol){0x1p-7, t.rr};
}

/* got (bf16 row) against want (fp32 row), n elements in rows of rowlen (0: one row) */
static void check(const char *what, const float *got, const float *want, size_t n, tol t,
                  size_t rowlen) {
    t = adjust(t);
    if (rowlen == 0) rowlen = n ? n : 1;
    int bad = 0;
    double max_err = 0.0, max_rel = 0.0; /* the largest error, and relative to the row's max */
    for (size_t r0 = 0; r0 < n; r0 += rowlen) {
        size_t r1 = r0 + rowlen < n ? r0 + rowlen : n;
        double s = 0.0;
        for (size_t i = r0; i < r1; i++)
            s = fmax(s, fabs((double)want[i]));
        for (size_t i = r0; i < r1; i++) {
            double err = fabs((double)got[i] - want[i]), lim = t.re * fabs(want[i]) + t.rr * s;
            max_err = fmax(max_err, err);
            if (s > 0.0) max_rel = fmax(max_rel, err / s);
            if (err <= lim || (t.re == 0.0 && t.rr == 0.0 && bits_of(got[i]) == bits_of(want[i])))
                continue;
            if (bad++ < 4)
                print_error("%s: element %zu: %s/%s row %.9g, %s/%s row %.9g (error %.3g, limit "
                            "%.3g)\n",
                            what, i, RW[1]->name, RW[1]->precision, (double)got[i], RW[0]->name,
                            RW[0]->precision, (double)want[i], err, lim);
        }
    }
    if (bad) print_error("%s: %d of %zu elements outside the tolerance\n", what, bad, n);
    /* a GPU row's measured error against its CPU row, op by op, for the record */
    if (cmp_mode != CMP_BF16_VS_FP32)
        print_message("# %s/%s vs %s/%s  %-48s max |err| %.3g  max |err|/row max %.3g%s\n",
                      RW[1]->name, RW[1]->precision, RW[0]->name, RW[0]->precision, what, max_err,
                      max_rel, bad ? "  FAIL" : "");
    mismatches += bad;
}

/* random host values, rounded to bf16 (so both rows read the same numbers) */
static float *host_rand(size_t n, float scale) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        h[i] = ops_bf16_quantize(core_rng_normal(&trng) * scale);
    return h;
}

/* one logical buffer on both rows */
typedef struct twin {
    float *d[2];
    size_t n;
    int kind;
} twin;
static twin tw(const float *h, size_t n, int kind) {
    twin t = {.n = n, .kind = kind};
    for (int r = 0; r < 2; r++)
        t.d[r] = put(RW[r], h, n, kind);
    return t;
}
static twin tw_rand(size_t n, int kind, float scale) {
    float *h = host_rand(n, scale);
    twin t = tw(h, n, kind);
    free(h);
    return t;
}
static float *tw_get(const twin *t, int r) {
    float *h = malloc((t->n ? t->n : 1) * sizeof(float));
    get(RW[r], h, t->d[r], t->n, t->kind);
    return h;
}
static void tw_free(twin *t) {
    for (int r = 0; r < 2; r++)
        RW[r]->free(RW[r], t->d[r]);
}
/* the bf16 row's t against the fp32 row's */
static void expect(const char *what, const twin *t, tol tl, size_t rowlen) {
    float *a = tw_get(t, 1), *b = tw_get(t, 0);
    check(what, a, b, t->n, tl, rowlen);
    free(a), free(b);
}
/* a buffer of the bf16 row (n elements of kind) against the fp32 row's t */
static void expect_buf(const char *what, const float *d1, const twin *t, tol tl, size_t rowlen) {
    float *a = malloc(t->n * sizeof(float)), *b = tw_get(t, 0);
    get(RW[1], a, d1, t->n, t->kind);
    check(what, a, b, t->n, tl, rowlen);
    free(a), free(b);
}
/* a fresh buffer of the bf16 row holding the same values as t's (before any op ran on it) */
static float *clone1(const twin *t) {
    float *h = tw_get(t, 0), *d = put(RW[1], h, t->n, t->kind);
    free(h);
    return d;
}
static int32_t *ints(const ops *o, const int32_t *h, size_t n) {
    int32_t *d = o->alloc(o, n * sizeof(int32_t));
    o->upload(o, d, h, n * sizeof(int32_t));
    return d;
}
#define BOTH(call)                                                                                 \
    for (int r = 0; r < 2; r++) {                                                                  \
        const ops *o = RW[r];                                                                      \
        call;                                                                                      \
    }
#define D(t) ((t).d[r])

/* odd shapes: rows and widths not multiples of 4, 8 or 16 */
enum { MN = 37, MC = 45, MOC = 29 };

static void bf16_matmul(void) {
    char what[96];
    for (int bias = 0; bias < 2; bias++)
        for (int accum = 0; accum < 2; accum++) {
            twin x = tw_rand(MN * MC, KA, 1.0f), w = tw_rand(MOC * MC, KA, 0.5f);
            twin b = tw_rand(MOC, KA, 1.0f), y = tw_rand(MN * MOC, KA, 2.0f);
            BOTH(o->matmul_fwd(o, D(y), D(x), D(w), bias ? D(b) : NULL, MN, MC, MOC, accum));
            snprintf(what, sizeof what, "matmul_fwd bias=%d accum=%d", bias, accum);
            expect(what, &y, T_SUM, MOC);
            tw_free(&x), tw_free(&w), tw_free(&b), tw_free(&y);
        }
    /* backward: every combination of outputs, accum_dinp both ways; dw, dbias accumulate */
    for (int mask = 1; mask < 8; mask++)
        for (int accum = 0; accum < 2; accum++) {
            int want_dx = mask & 1, want_dw = mask & 2, want_db = mask & 4;
            twin x = tw_rand(MN * MC, KA, 1.0f), w = tw_rand(MOC * MC, KA, 0.5f);
            twin dy = tw_rand(MN * MOC, KA, 1.0f), dx = tw_rand(MN * MC, KA, 1.0f);
            twin dw = tw_rand(MOC * MC, KF, 1.0f), db = tw_rand(MOC, KF, 1.0f);
            BOTH(o->matmul_bwd(o, want_dx ? D(dx) : NULL, want_dw ? D(dw) : NULL,
                               want_db ? D(db) : NULL, D(dy), D(x), D(w), MN, MC, MOC, accum));
            snprintf(what, sizeof what, "matmul_bwd outputs=%d accum=%d dinp", mask, accum);
            expect(what, &dx, T_SUM, MC);
            snprintf(what, sizeof what, "matmul_bwd outputs=%d accum=%d dw", mask, accum);
            expect(what, &dw, T_F, MC);
            snprintf(what, sizeof what, "matmul_bwd outputs=%d accum=%d dbias", mask, accum);
            expect(what, &db, T_F, 0);
            tw_free(&x), tw_free(&w), tw_free(&dy), tw_free(&dx), tw_free(&dw), tw_free(&db);
        }
    /* dinp aliasing inp (the sanity model): dw must still see the input as it was. The fp32
     * row runs with distinct buffers (dinp starting as a copy of inp), the bf16 row aliased. */
    for (int accum = 0; accum < 2; accum++) {
        float *hx = host_rand(MN * MC, 1.0f);
        twin x = tw(hx, MN * MC, KA), dx = tw(hx, MN * MC, KA);
        free(hx);
        twin w = tw_rand(MOC * MC, KA, 0.5f), dy = tw_rand(MN * MOC, KA, 1.0f);
        twin dw = tw_rand(MOC * MC, KF, 1.0f);
        RW[0]->matmul_bwd(RW[0], dx.d[0], dw.d[0], NULL, dy.d[0], x.d[0], w.d[0], MN, MC, MOC,
                          accum);
        RW[1]->matmul_bwd(RW[1], dx.d[1], dw.d[1], NULL, dy.d[1], dx.d[1], w.d[1], MN, MC, MOC,
                          accum);
        snprintf(what, sizeof what, "matmul_bwd dinp==inp accum=%d dinp", accum);
        expect(what, &dx, T_SUM, MC);
        snprintf(what, sizeof what, "matmul_bwd dinp==inp accum=%d dw", accum);
        expect(what, &dw, T_F, MC);
        tw_free(&x), tw_free(&w), tw_free(&dy), tw_free(&dw), tw_free(&dx);
    }
    /* Operands one element into their buffers: the model packs its parameters without padding,
     * so a weight, its bias and its gradient may start at any element (a GPU row must not pick
     * GEMM kernels, or read a bias, that assume wider alignment). Every buffer has one element
     * more than its matrix; the first stays as set, on both rows. */
    for (int accum = 0; accum < 2; accum++) {
        twin x = tw_rand(MN * MC + 1, KA, 1.0f), w = tw_rand(MOC * MC + 1, KA, 0.5f);
        twin b = tw_rand(MOC + 1, KA, 1.0f), y = tw_rand(MN * MOC + 1, KA, 2.0f);
        twin dy = tw_rand(MN * MOC + 1, KA, 1.0f), dx = tw_rand(MN * MC + 1, KA, 1.0f);
        twin dw = tw_rand(MOC * MC + 1, KF, 1.0f), db = tw_rand(MOC + 1, KF, 1.0f);
#define AT1(t) ((float *)((char *)D(t) + ((t).kind == KA ? (size_t)o->act_bytes : sizeof(float))))
        BOTH(o->matmul_fwd(o, AT1(y), AT1(x), AT1(w), AT1(b), MN, MC, MOC, accum));
        BOTH(o->matmul_bwd(o, AT1(dx), AT1(dw), AT1(db), AT1(dy), AT1(x), AT1(w), MN, MC, MOC,
                           accum));
#undef AT1
        snprintf(what, sizeof what, "matmul_fwd odd offsets accum=%d", accum);
        expect(what, &y, T_SUM, 0);
        snprintf(what, sizeof what, "matmul_bwd odd offsets accum=%d dinp", accum);
        expect(what, &dx, T_SUM, 0);
        snprintf(what, sizeof what, "matmul_bwd odd offsets accum=%d dw", accum);
        expect(what, &dw, T_F, 0);
        snprintf(what, sizeof what, "matmul_bwd odd offsets accum=%d dbias", accum);
        expect(what, &db, T_F, 0);
        tw_free(&x), tw_free(&w), tw_free(&b), tw_free(&y), tw_free(&dy), tw_free(&dx);
        tw_free(&dw), tw_free(&db);
    }
}

static void bf16_embedding(void) {
    enum { B = 3, S = 5, H = 13, V = 11, P = 7, N = B * S };
    int32_t ids[N], types[N];
    for (int i = 0; i < N; i++) {
        ids[i] = (int32_t)core_rng_below(&trng, V);
        types[i] = (int32_t)core_rng_below(&trng, 2);
    }
    ids[4] = 2; /* the pad id below occurs */
    int32_t *di[2], *dt[2];
    for (int r = 0; r < 2; r++)
        di[r] = ints(RW[r], ids, N), dt[r] = ints(RW[r], types, N);
    twin wte = tw_rand(V * H, KA, 1.0f), wpe = tw_rand(P * H, KA, 1.0f);
    twin tte = tw_rand(2 * H, KA, 1.0f), sc = tw_rand(1, KA, 1.0f);
    twin out = tw(NULL, N * H, KA);
    BOTH(o->embed_fwd(o, D(out), di[r], dt[r], D(wte), D(wpe), NULL, D(tte), B, S, H));
    expect("embed_fwd wpe+tte", &out, T_ROUND, 0);
    BOTH(o->embed_fwd(o, D(out), di[r], NULL, D(wte), D(wpe), D(sc), NULL, B, S, H));
    expect("embed_fwd pos_scale", &out, T_ROUND, 0);
    BOTH(o->embed_fwd(o, D(out), di[r], NULL, D(wte), NULL, NULL, D(tte), B, S, H));
    expect("embed_fwd no positions, types NULL", &out, T_ROUND, 0);
    twin dout = tw_rand(N * H, KA, 1.0f), dwte = tw_rand(V * H, KF, 1.0f);
    twin dwpe = tw_rand(P * H, KF, 1.0f), dtte = tw_rand(2 * H, KF, 1.0f);
    twin dsc = tw_rand(1, KF, 1.0f);
    BOTH(o->embed_bwd(o, D(dwte), D(dwpe), NULL, D(dtte), D(dout), di[r], dt[r], D(wpe), NULL, 2, B,
                      S, H, V, 2));
    expect("embed_bwd dwte", &dwte, T_F, 0);
    expect("embed_bwd dwpe", &dwpe, T_F, 0);
    expect("embed_bwd dtte", &dtte, T_F, 0);
    BOTH(o->embed_bwd(o, D(dwte), NULL, D(dsc), NULL, D(dout), di[r], NULL, D(wpe), D(sc), -1, B, S,
                      H, V, 0));
    expect("embed_bwd pos_scale dwte", &dwte, T_F, 0);
    expect("embed_bwd dpos_scale", &dsc, T_F, 0);
    twin *all[] = {&wte, &wpe, &tte, &sc, &out, &dout, &dwte, &dwpe, &dtte, &dsc};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tw_free(all[i]);
    for (int r = 0; r < 2; r++)
        RW[r]->free(RW[r], di[r]), RW[r]->free(RW[r], dt[r]);
}

static void bf16_layernorm(void) {
    enum { N = MN, H = MC };
    const float eps = 1e-5f;
    twin x = tw_rand(N * H, KA, 2.0f), w = tw_rand(H, KA, 1.0f), b = tw_rand(H, KA, 0.5f);
    twin y = tw(NULL, N * H, KA), mean = tw(NULL, N, KF), rstd = tw(NULL, N, KF);
    for (int hasb = 0; hasb < 2; hasb++) {
        BOTH(
            o->layernorm_fwd(o, D(y), D(mean), D(rstd), D(x), D(w), hasb ? D(b) : NULL, N, H, eps));
        expect(hasb ? "layernorm_fwd out" : "layernorm_fwd out, b NULL", &y, T_SUM, H);
        expect("layernorm_fwd mean", &mean, T_F, 0);
        expect("layernorm_fwd rstd", &rstd, T_F, 0);
    }
    /* residual + LN: against the fp32 row, and on the bf16 row exactly add then layernorm_fwd */
    twin res = tw_rand(N * H, KA, 1.0f), br = tw_rand(N * H, KA, 1.0f), ro = tw(NULL, N * H, KA);
    BOTH(o->residual_layernorm_fwd(o, D(ro), D(y), D(mean), D(rstd), D(res), D(br), D(w), D(b), N,
                                   H, eps));
    expect("residual_layernorm_fwd res_out", &ro, T_ROUND, 0);
    expect("residual_layernorm_fwd out", &y, T_FUSED, H);
    {
        tol t = {0x1p-7, 0x1p-6}; /* statistics of the rounded residual */
        expect("residual_layernorm_fwd mean", &mean, t, 0);
        expect("residual_layernorm_fwd rstd", &rstd, t, 0);
    }
    {
        const ops *o = RW[1];
        size_t n = (size_t)N * H;
        float *s = put(o, NULL, n, KA), *y2 = put(o, NULL, n, KA), *m2 = put(o, NULL, N, KF);
        float *r2 = put(o, NULL, N, KF);
        o->add(o, s, res.d[1], br.d[1], n);
        o->layernorm_fwd(o, y2, m2, r2, s, w.d[1], b.d[1], N, H, eps);
        twin want[4] = {ro, y, mean, rstd};
        float *got[4] = {s, y2, m2, r2};
        const char *nm[4] = {"res_out", "out", "mean", "rstd"};
        for (int k = 0; k < 4; k++) {
            float *a = malloc(want[k].n * sizeof(float)), *c = tw_get(&want[k], 1);
            get(o, a, got[k], want[k].n, want[k].kind);
            char what[96];
            snprintf(what, sizeof what, "bf16 residual_layernorm_fwd %s == add + layernorm_fwd",
                     nm[k]);
            check(what, c, a, want[k].n, T_EXACT, 0);
            free(a), free(c);
        }
        /* res_out aliasing res */
        float *ra = clone1(&res);
        o->residual_layernorm_fwd(o, ra, y2, m2, r2, ra, br.d[1], w.d[1], b.d[1], N, H, eps);
        float *a = malloc(n * sizeof(float)), *c = tw_get(&ro, 1);
        get(o, a, ra, n, KA);
        check("bf16 residual_layernorm_fwd res_out==res", a, c, n, T_EXACT, 0);
        free(a), free(c);
        o->free(o, s), o->free(o, y2), o->free(o, m2), o->free(o, r2), o->free(o, ra);
    }
    /* backward from saved statistics both rows share (the fp32 row's, uploaded to both) */
    BOTH(o->layernorm_fwd(o, D(y), D(mean), D(rstd), D(x), D(w), D(b), N, H, eps));
    {
        float *m = tw_get(&mean, 0), *rs = tw_get(&rstd, 0);
        RW[1]->upload(RW[1], mean.d[1], m, N * sizeof(float));
        RW[1]->upload(RW[1], rstd.d[1], rs, N * sizeof(float));
        free(m), free(rs);
    }
    for (int accum = 0; accum < 2; accum++) {
        twin dy = tw_rand(N * H, KA, 1.0f), dx = tw_rand(N * H, KA, 1.0f);
        twin dw = tw_rand(H, KF, 1.0f), db = tw_rand(H, KF, 1.0f);
        float *dyx = clone1(&dy), *dw1 = clone1(&dw), *db1 = clone1(&db);
        BOTH(o->layernorm_bwd(o, D(dx), D(dw), D(db), D(dy), D(x), D(w), D(mean), D(rstd), N, H,
                              accum));
        char what[96];
        snprintf(what, sizeof what, "layernorm_bwd accum=%d dinp", accum);
        expect(what, &dx, T_SUM, H);
        snprintf(what, sizeof what, "layernorm_bwd accum=%d dw", accum);
        expect(what, &dw, T_F, 0);
        snprintf(what, sizeof what, "layernorm_bwd accum=%d db", accum);
        expect(what, &db, T_F, 0);
        if (!accum) { /* dinp aliasing dout (the MLM head transform) */
            const ops *o = RW[1];
            o->layernorm_bwd(o, dyx, dw1, db1, dyx, x.d[1], w.d[1], mean.d[1], rstd.d[1], N, H, 0);
            expect_buf("layernorm_bwd dinp==dout dinp", dyx, &dx, T_SUM, H);
            expect_buf("layernorm_bwd dinp==dout dw", dw1, &dw, T_F, 0);
        }
        RW[1]->free(RW[1], dyx), RW[1]->free(RW[1], dw1), RW[1]->free(RW[1], db1);
        tw_free(&dy), tw_free(&dx), tw_free(&dw), tw_free(&db);
    }
    tw_free(&x), tw_free(&w), tw_free(&b), tw_free(&y), tw_free(&mean), tw_free(&rstd);
    tw_free(&res), tw_free(&br), tw_free(&ro);
}

/* The scores scale q_i . k_j + (1 - mask_j) * -10000 in double, [B, NH, S, S] */
static double *scores_reference(const float *qkv, const float *mask, int B, int S, int NH, int HD,
                                double scale, int layout) {
    size_t H = (size_t)NH * HD;
    double *sc = malloc((size_t)B * NH * S * S * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t qo = layout ? (size_t)h * HD : (size_t)h * 3 * HD, ko = layout ? H : (size_t)HD;
            double *row = sc + ((size_t)b * NH + h) * S * S;
            for (int i = 0; i < S; i++) {
                const float *q = qkv + ((size_t)b * S + i) * 3 * H + qo;
                for (int j = 0; j < S; j++) {
                    const float *k = qkv + ((size_t)b * S + j) * 3 * H + qo + ko;
                    double d = 0.0;
                    for (int t = 0; t < HD; t++)
                        d += (double)q[t] * k[t];
                    row[(size_t)i * S + j] =
                        d * scale + (mask ? (1.0 - mask[b * S + j]) * -10000.0 : 0.0);
                }
            }
        }
    return sc;
}

/* log sum_j exp(score_ij) per row of n rows of S scores */
static double *lse_of(const double *sc, size_t n, int S) {
    double *lse = malloc(n * sizeof(double));
    for (size_t r = 0; r < n; r++) {
        const double *x = sc + r * S;
        double mx = -1e300, sum = 0.0;
        for (int j = 0; j < S; j++)
            mx = fmax(mx, x[j]);
        for (int j = 0; j < S; j++)
            sum += exp(x[j] - mx);
        lse[r] = mx + log(sum);
    }
    return lse;
}

/* the rms of got - want within lim times the rms of want: a bias spread over many elements shows
 * here long before it reaches the per-element tolerance */
static void rms_within(const char *what, const float *got, const float *want, size_t n,
                       double lim) {
    double se = 0.0, sw = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)got[i] - want[i];
        se += e * e, sw += (double)want[i] * want[i];
    }
    double rel = sw > 0.0 ? sqrt(se / sw) : sqrt(se);
    print_message("# %s/%s  %-48s rms error / rms %.3g%s\n", RW[1]->name, RW[1]->precision, what,
                  rel, rel <= lim ? "" : "  FAIL");
    if (!(rel <= lim)) {
        print_error("%s: rms error %.3g of the rms value, more than %.3g\n", what, rel, lim);
        mismatches++;
    }
}

/* One attention case on both rows. The state is the probabilities on a CPU row and the plain
 * CUDA kernels; the CUDA bf16 row's fused kernels keep the log-sum-exp and the keys' bias
 * (fattn_math.h) instead, which is checked against double sums, and run twice to the same bytes. */
static void attention_case(int B, int S, int NH, int HD, int layout, int usemask, float p) {
    int H = NH * HD;
    size_t nq = (size_t)B * S * 3 * H, no = (size_t)B * S * H, np = (size_t)B * NH * S * S;
    const float scale = 0.41f;
    assert_int_equal(RW[0]->attn_state_bytes(RW[0], B, S, NH, HD), np * sizeof(float));
    size_t sb = RW[1]->attn_state_bytes(RW[1], B, S, NH, HD);
    int fused = sb != np * sizeof(float);
    if (fused) { /* only the CUDA bf16 row's fused kernels keep another state */
        assert_true(RW[1]->device_memory && RW[1]->act_bytes == 2);
        assert_true(HD == OPS_FATTN_HD && S <= OPS_FATTN_MAX_S);
        assert_int_equal(sb, ops_fattn_state_floats(B, S, NH) * sizeof(float));
    }
    float *mask = malloc((size_t)B * S * sizeof(float));
    for (int i = 0; i < B * S; i++)
        mask[i] = i % S == S - 1 || i % 7 == 3 ? 0.0f : 1.0f;
    float *hq = host_rand(nq, 1.0f);
    twin qkv = tw(hq, nq, KA), out = tw(NULL, no, KA), m = tw(mask, (size_t)B * S, KF);
    twin probs = tw(NULL, np, KF), dout = tw_rand(no, KA, 1.0f), dqkv = tw(NULL, nq, KA);
    float *st1 = RW[1]->alloc(RW[1], sb); /* the row's own state, when it is not the probs */
    float *state[2] = {probs.d[0], fused ? st1 : probs.d[1]};
    ops_dropout d = {.p = p, .step = 11};
    core_rng_key(d.key, 7, 0, 3);
    BOTH(o->attention_fwd(o, D(out), state[r], D(qkv), usemask ? D(m) : NULL, &d, B, S, NH, HD,
                          scale, layout));
    BOTH(o->attention_bwd(o, D(dqkv), D(dout), D(out), D(qkv), state[r], &d, B, S, NH, HD, scale,
                          layout));
    char what[128], w2[160];
    snprintf(what, sizeof what, "attention S=%d NH=%d HD=%d layout=%d mask=%d p=%.1f", S, NH, HD,
             layout, usemask, (double)p);
    snprintf(w2, sizeof w2, "%s out", what);
    expect(w2, &out, fused ? T_FATTN : T_SUM, (size_t)H);
    snprintf(w2, sizeof w2, "%s dqkv", what);
    expect(w2, &dqkv, fused ? T_FATTN : T_SUM, (size_t)3 * H);
    /* the reference log-sum-exp of the fused state, itself checked on the probabilities of the
     * bf16 rows that keep them: P_ij = exp(s_ij - lse_i) */
    size_t nrows = (size_t)B * NH * S;
    double *sc = NULL, *lse = NULL;
    if (fused || (HD == OPS_FATTN_HD && RW[1]->act_bytes == 2)) {
        sc = scores_reference(hq, usemask ? mask : NULL, B, S, NH, HD, scale, layout);
        lse = lse_of(sc, nrows, S);
    }
    if (!fused) {
        snprintf(w2, sizeof w2, "%s probs", what);
        expect(w2, &probs, T_F, (size_t)S);
        if (lse) {
            float *hp = tw_get(&probs, 1);
            for (size_t row = 0; row < nrows; row++)
                for (int j = 0; j < S; j++) {
                    double want = exp(sc[row * S + j] - lse[row]);
                    if (fabs(hp[row * S + j] - want) > 1e-5)
                        fail_msg("%s: P[%zu][%d] = %.9g, exp(s - lse) = %.9g", what, row, j,
                                 (double)hp[row * S + j], want);
                }
            free(hp);
        }
    } else {
        float *a = tw_get(&out, 1), *b = tw_get(&out, 0);
        snprintf(w2, sizeof w2, "%s out", what);
        rms_within(w2, a, b, no, 0x1p-7);
        free(a), free(b);
        a = tw_get(&dqkv, 1), b = tw_get(&dqkv, 0);
        snprintf(w2, sizeof w2, "%s dqkv", what);
        rms_within(w2, a, b, nq, 0x1p-7);
        free(a), free(b);
        /* the state: the log-sum-exp of each row, then each key's bias */
        const ops *o = RW[1];
        float *hs = malloc(sb), *hs2 = malloc(sb);
        o->download(o, hs, st1, sb);
        for (size_t i = 0; i < nrows; i++)
            if (!(fabs(hs[i] - lse[i]) <= 1e-5 * (1.0 + fabs(lse[i]))))
                fail_msg("%s: log-sum-exp of row %zu is %.9g, want %.9g", what, i, (double)hs[i],
                         lse[i]);
        for (int i = 0; i < B * S; i++)
            assert_true(hs[(size_t)B * NH * S + i] ==
                        (usemask ? ops_fattn_key_bias(mask[i]) : 0.0f));
        /* no atomics: a second run gives the same bytes */
        float *o2 = put(o, NULL, no, KA), *dq2 = put(o, NULL, nq, KA), *st2 = o->alloc(o, sb);
        o->attention_fwd(o, o2, st2, qkv.d[1], usemask ? m.d[1] : NULL, &d, B, S, NH, HD, scale,
                         layout);
        o->attention_bwd(o, dq2, dout.d[1], o2, qkv.d[1], st2, &d, B, S, NH, HD, scale, layout);
        o->download(o, hs2, st2, sb);
        assert_memory_equal(hs, hs2, sb);
        float *x1 = malloc(nq * sizeof(float)), *x2 = malloc(nq * sizeof(float));
        get(o, x1, out.d[1], no, KA), get(o, x2, o2, no, KA);
        assert_memory_equal(x1, x2, no * sizeof(float));
        get(o, x1, dqkv.d[1], nq, KA), get(o, x2, dq2, nq, KA);
        assert_memory_equal(x1, x2, nq * sizeof(float));
        o->free(o, o2), o->free(o, dq2), o->free(o, st2);
        free(hs), free(hs2), free(x1), free(x2);
    }
    RW[1]->free(RW[1], st1);
    free(sc), free(lse), free(hq), free(mask);
    tw_free(&qkv), tw_free(&out), tw_free(&probs), tw_free(&m), tw_free(&dout), tw_free(&dqkv);
}

static void bf16_attention(void) {
    /* S, NH, HD: odd sizes, and the crammed-bert head width at the longest sequence */
    static const int shapes[3][3] = {{5, 3, 4}, {33, 2, 7}, {512, 1, 64}};
    for (int sh = 0; sh < 3; sh++)
        for (int layout = 0; layout < 2; layout++)
            for (int usemask = 0; usemask < 2; usemask++)
                for (int drop = 0; drop < 2; drop++) {
                    if (sh == 2 && (layout || usemask != drop)) continue; /* two cases */
                    attention_case(2, shapes[sh][0], shapes[sh][1], shapes[sh][2], layout, usemask,
                                   drop ? 0.3f : 0.0f);
                }
}

/* Head width 64 at S <= 512: the shapes of the CUDA bf16 row's fused kernels (other rows take
 * them like any other): a whole number of 64-row tiles (128, 512) and tails (33: one partial
 * tile; 65: one row past a tile; 200: three tiles and 8 rows). */
static void bf16_attention_hd64(void) {
    static const int shapes[5][2] = {{128, 4}, {512, 2}, {33, 2}, {65, 1}, {200, 3}};
    for (int sh = 0; sh < 5; sh++)
        for (int layout = 0; layout < 2; layout++)
            for (int usemask = 0; usemask < 2; usemask++)
                for (int drop = 0; drop < 2; drop++) {
                    if (shapes[sh][0] >= 200 && layout != drop) continue; /* four cases */
                    attention_case(2, shapes[sh][0], shapes[sh][1], OPS_FATTN_HD, layout, usemask,
                                   drop ? 0.3f : 0.0f);
                }
}

static void bf16_elementwise(void) {
    enum { N = MN, I = 46, n = 10007 }; /* n: more than two of the CPU's 4096-element blocks */
    twin g = tw_rand(N * I, KA, 1.5f), go = tw(NULL, N * I / 2, KA);
    twin gd = tw_rand(N * I / 2, KA, 1.0f), gdx = tw(NULL, N * I, KA);
    BOTH(o->gelu_glu_fwd(o, D(go), D(g), N, I));
    expect("gelu_glu_fwd", &go, T_ROUND, 0);
    BOTH(o->gelu_glu_bwd(o, D(gdx), D(gd), D(g), N, I));
    expect("gelu_glu_bwd", &gdx, T_ROUND, 0);
    tw_free(&g), tw_free(&go), tw_free(&gd), tw_free(&gdx);

    twin x = tw_rand(n, KA, 1.5f), y = tw(NULL, n, KA), dy = tw_rand(n, KA, 1.0f);
    twin dx = tw(NULL, n, KA);
    float *th = tw_get(&x, 0); /* tanh outputs, the input of tanh_bwd */
    for (int i = 0; i < n; i++)
        th[i] = ops_bf16_quantize(tanhf(th[i]));
    twin t = tw(th, n, KA);
    free(th);
    BOTH(o->gelu_fwd(o, D(y), D(x), n));
    expect("gelu_fwd", &y, T_ROUND, 0);
    BOTH(o->tanh_fwd(o, D(y), D(x), n));
    expect("tanh_fwd", &y, T_ROUND, 0);
    for (int op = 0; op < 2; op++) {
        const char *nm = op ? "tanh_bwd" : "gelu_bwd";
        float *dd = clone1(&dy); /* dinp aliasing dout on the bf16 row */
        if (op) {
            BOTH(o->tanh_bwd(o, D(dx), D(dy), D(t), n));
            RW[1]->tanh_bwd(RW[1], dd, dd, t.d[1], n);
        } else {
            BOTH(o->gelu_bwd(o, D(dx), D(dy), D(x), n));
            RW[1]->gelu_bwd(RW[1], dd, dd, x.d[1], n);
        }
        expect(nm, &dx, T_ROUND, 0);
        char what[64];
        snprintf(what, sizeof what, "%s dinp==dout", nm);
        expect_buf(what, dd, &dx, T_ROUND, 0);
        RW[1]->free(RW[1], dd);
    }
    /* dropout: p = 0 is the identity; p > 0 drops the same elements as the fp32 row */
    for (int pi = 0; pi < 2; pi++) {
        ops_dropout d = {.p = pi ? 0.3f : 0.0f, .step = (5ull << 32) + 3};
        core_rng_key(d.key, 17, 0, 4);
        float *xi = clone1(&x);
        BOTH(o->dropout_fwd(o, D(y), D(x), &d, n));
        RW[1]->dropout_fwd(RW[1], xi, xi, &d, n);
        expect(pi ? "dropout_fwd p=0.3" : "dropout_fwd p=0", &y, pi ? T_ROUND : T_EXACT, 0);
        expect_buf("dropout_fwd in place", xi, &y, pi ? T_ROUND : T_EXACT, 0);
        float *a = tw_get(&y, 1), *b = tw_get(&y, 0), *xin = tw_get(&x, 0);
        for (int i = 0; i < n; i++) {
            assert_true(xin[i] != 0.0f); /* so a zero output means dropped */
            if ((a[i] == 0.0f) != (b[i] == 0.0f))
                fail_msg("dropout p=%.1f: element %d dropped on one row only", (double)d.p, i);
            assert_int_equal(a[i] != 0.0f, !pi || ops_dropout_keep(&d, (uint64_t)i));
        }
        free(a), free(b), free(xin);
        RW[1]->free(RW[1], xi);
    }
    /* add, out of place and in place on either operand */
    twin a = tw_rand(n, KA, 1.0f), b = tw_rand(n, KA, 3.0f);
    BOTH(o->add(o, D(y), D(a), D(b), n));
    expect("add", &y, T_ROUND, 0);
    for (int side = 0; side < 2; side++) {
        float *aa = clone1(&a), *bb = clone1(&b);
        RW[1]->add(RW[1], side ? bb : aa, aa, bb, n);
        expect_buf(side ? "add out==b" : "add out==a", side ? bb : aa, &y, T_ROUND, 0);
        RW[1]->free(RW[1], aa), RW[1]->free(RW[1], bb);
    }
    /* scale and fill (A buffers) */
    BOTH(o->copy(o, D(y), D(a), (size_t)n * o->act_bytes));
    BOTH(o->scale(o, D(y), 0.3f, n));
    expect("scale", &y, T_ROUND, 0);
    BOTH(o->fill(o, D(y), 0.1f, n));
    expect("fill", &y, T_ROUND, 0);
    double s0 = RW[0]->sum_act(RW[0], a.d[0], n), s1 = RW[1]->sum_act(RW[1], a.d[1], n);
    assert_true(fabs(s1 - s0) <= 1e-12 * (1.0 + fabs(s0)));
    tw_free(&x), tw_free(&y), tw_free(&dy), tw_free(&dx), tw_free(&t), tw_free(&a), tw_free(&b);
}

static void bf16_rows_and_pool(void) {
    enum { R = 13, H = 13, n = 5, B = 3 };
    static const int32_t idx[n] = {7, 2, 12, 0, 5};
    int32_t *di[2];
    for (int r = 0; r < 2; r++)
        di[r] = ints(RW[r], idx, n);
    twin x = tw_rand(R * H, KA, 1.0f), g = tw(NULL, n * H, KA), dg = tw_rand(n * H, KA, 1.0f);
    BOTH(o->gather_rows(o, D(g), D(x), di[r], n, H));
    expect("gather_rows", &g, T_EXACT, 0);
    BOTH(o->scatter_rows_add(o, D(x), D(dg), di[r], n, H));
    expect("scatter_rows_add", &x, T_ROUND, 0);
    tw_free(&x), tw_free(&g), tw_free(&dg);
    for (int r = 0; r < 2; r++)
        RW[r]->free(RW[r], di[r]);
    for (int S = 5; S <= 33; S += 28)
        for (int mode = 0; mode < 2; mode++) {
            twin in = tw_rand((size_t)B * S * H, KA, 1.0f), out = tw(NULL, B * H, KA);
            twin dout = tw_rand(B * H, KA, 1.0f), dx = tw_rand((size_t)B * S * H, KA, 1.0f);
            BOTH(o->pool_fwd(o, D(out), D(in), mode, B, S, H));
            BOTH(o->pool_bwd(o, D(dx), D(dout), mode, B, S, H));
            char what[64];
            snprintf(what, sizeof what, "pool_fwd mode=%d S=%d", mode, S);
            expect(what, &out, mode ? T_SUM : T_EXACT, H);
            snprintf(what, sizeof what, "pool_bwd mode=%d S=%d", mode, S);
            expect(what, &dx, T_ROUND, 0);
            tw_free(&in), tw_free(&out), tw_free(&dout), tw_free(&dx);
        }
}

static void bf16_losses(void) {
    enum { N = MN, V = 29 };
    float *h = host_rand((size_t)N * V, 3.0f);
    for (int v = 0; v < V; v++)
        h[v] = 0.5f; /* row 0: all equal, the first maximum is 0 */
    /* labels: ignored rows, rows whose label is the first maximum (hits), random ones */
    int32_t labels[N];
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (h[(size_t)i * V + v] > h[(size_t)i * V + best]) best = v;
        labels[i] = i % 6 == 4 ? -100 : i % 3 == 0 ? best : (int32_t)core_rng_below(&trng, V);
    }
    int32_t *dl[2];
    for (int r = 0; r < 2; r++)
        dl[r] = ints(RW[r], labels, N);
    twin lg = tw(h, (size_t)N * V, KA), loss = tw(NULL, N, KF), dlg = tw(NULL, (size_t)N * V, KA);
    free(h);
    BOTH(o->xent_fwd_bwd(o, D(loss), NULL, D(lg), dl[r], N, V, 0.5f));
    expect("xent losses, no dlogits", &loss, T_F, 0);
    BOTH(o->xent_fwd_bwd(o, D(loss), D(dlg), D(lg), dl[r], N, V, 0.5f));
    expect("xent losses", &loss, T_F, 0);
    expect("xent dlogits", &dlg, T_ROUND, V);
    {
        const ops *o = RW[1];
        float *a = clone1(&lg), *l1 = put(o, NULL, N, KF);
        o->xent_fwd_bwd(o, l1, a, a, dl[1], N, V, 0.5f);
        expect_buf("xent dlogits==logits", a, &dlg, T_ROUND, V);
        expect_buf("xent dlogits==logits losses", l1, &loss, T_F, 0);
        o->free(o, a), o->free(o, l1);
    }
    twin hit = tw(NULL, N, KF);
    BOTH(o->count_correct(o, D(hit), D(lg), dl[r], N, V));
    expect("count_correct", &hit, T_EXACT, 0);
    {
        float *hh = tw_get(&hit, 1);
        for (int i = 0; i < N; i++)
            if (labels[i] != -100 && i % 3 == 0) assert_true(hh[i] == 1.0f);
        free(hh);
    }
    twin pred = tw_rand(N, KA, 1.0f), tgt = tw_rand(N, KF, 1.0f), dpred = tw(NULL, N, KA);
    BOTH(o->mse_fwd_bwd(o, D(loss), D(dpred), D(pred), D(tgt), N));
    expect("mse losses", &loss, T_F, 0);
    expect("mse dpred", &dpred, T_ROUND, 0);
    tw_free(&lg), tw_free(&loss), tw_free(&dlg), tw_free(&hit), tw_free(&pred), tw_free(&tgt);
    tw_free(&dpred);
    for (int r = 0; r < 2; r++)
        RW[r]->free(RW[r], dl[r]);
}

/* AdamW: the fp32 masters and moments bit-identical to the fp32 row, the working copy exactly
 * the masters rounded; the reductions of F buffers are the same numbers */
static void bf16_optimizer(void) {
    enum { n = 1003 };
    for (int coupled = 0; coupled < 2; coupled++) {
        twin p = tw_rand(n, KF, 1.0f), m = tw(NULL, n, KF), v = tw(NULL, n, KF);
        twin pa = tw(NULL, n, KA);
        for (int t = 1; t <= 3; t++) {
            twin g = tw_rand(n, KF, 1.0f);
            RW[0]->adamw(RW[0], p.d[0], NULL, g.d[0], m.d[0], v.d[0], n, 1e-3, 0.9, 0.98, 1e-6,
                         0.01, 0.7f, t, coupled);
            RW[1]->adamw(RW[1], p.d[1], pa.d[1], g.d[1], m.d[1], v.d[1], n, 1e-3, 0.9, 0.98, 1e-6,
                         0.01, 0.7f, t, coupled);
            tw_free(&g);
        }
        expect("adamw p", &p, T_EXACT, 0);
        expect("adamw m", &m, T_EXACT, 0);
        expect("adamw v", &v, T_EXACT, 0);
        float *hp = tw_get(&p, 1), *hpa = tw_get(&pa, 1);
        for (int i = 0; i < n; i++)
            if (bits_of(hpa[i]) !=
                bits_of(RW[1]->act_bytes == 2 ? ops_bf16_quantize(hp[i]) : hp[i]))
                fail_msg("adamw: working copy %d is %.9g, the master rounds to %.9g", i,
                         (double)hpa[i], (double)ops_bf16_quantize(hp[i]));
        free(hp), free(hpa);
        /* the same fixed order on the CPU rows; another fixed order (in double) on a GPU */
        double slack = cmp_mode == CMP_BF16_VS_FP32 ? 0.0 : 1e-12;
        double q0 = RW[0]->sumsq(RW[0], p.d[0], n), q1 = RW[1]->sumsq(RW[1], p.d[1], n);
        double s0 = RW[0]->sum(RW[0], p.d[0], n), s1 = RW[1]->sum(RW[1], p.d[1], n);
        assert_true(fabs(q0 - q1) <= slack * fabs(q0));
        assert_true(fabs(s0 - s1) <= slack * (1.0 + fabs(s0)) * n);
        double acc[2];
        for (int r = 0; r < 2; r++) {
            double *d = RW[r]->alloc(RW[r], sizeof(double));
            RW[r]->accumulate(RW[r], d, p.d[r], n);
            RW[r]->download(RW[r], &acc[r], d, sizeof(double));
            RW[r]->free(RW[r], d);
        }
        assert_true(fabs(acc[0] - acc[1]) <= slack * (1.0 + fabs(acc[0])) * n);
        tw_free(&p), tw_free(&m), tw_free(&v), tw_free(&pa);
    }
}

/* The op-by-op suite with row held against ref under the given tolerance mode; returns the
 * number of elements outside the tolerance. */
static int run_pair_suite(const ops *ref, const ops *row, int mode, uint64_t seed) {
    RW[0] = ref;
    RW[1] = row;
    cmp_mode = mode;
    core_rng_init(&trng, seed, 0, 0, 3);
    mismatches = 0;
    bf16_matmul();
    bf16_embedding();
    bf16_layernorm();
    bf16_attention();
    bf16_attention_hd64();
    bf16_elementwise();
    bf16_rows_and_pool();
    bf16_losses();
    bf16_optimizer();
    return mismatches;
}

static void test_bf16_row_against_fp32(void **state) {
    (void)state;
    RW[0] = ops_cpu();
    RW[1] = ops_cpu_bf16();
    assert_string_equal(RW[1]->name, "cpu-bf16");
    assert_string_equal(RW[1]->precision, "bf16");
    assert_int_equal(RW[1]->act_bytes, 2);
    assert_false(RW[1]->device_memory);
    int bad = run_pair_suite(RW[0], RW[1], CMP_BF16_VS_FP32, 42);
    if (bad) fail_msg("%d elements of the bf16 row outside the tolerance", bad);
}

/* A bf16 CUDA row opened with CRAM_CUDA_ATTN=mode (the variable is read when a row opens) */
static const ops *open_with_attn(const char *mode, char *err, size_t len) {
    const char *old = getenv("CRAM_CUDA_ATTN");
    char *keep = old ? strdup(old) : NULL;
    setenv("CRAM_CUDA_ATTN", mode, 1);
    const ops *o = ops_cuda_open(0, true, err, len);
    if (keep)
        setenv("CRAM_CUDA_ATTN", keep, 1);
    else
        unsetenv("CRAM_CUDA_ATTN");
    free(keep);
    return o;
}

/* CRAM_CUDA_ATTN: a value other than auto, plain or fused is refused; fused keeps the fused
 * state; plain keeps the probabilities on the bf16 row and holds the CPU's numbers at head width
 * 64 to the plain kernels' tolerance. */
static void cuda_attn_switch(void) {
    char err[256];
    assert_null(open_with_attn("bogus", err, sizeof err));
    assert_non_null(strstr(err, "CRAM_CUDA_ATTN"));
    const ops *f = open_with_attn("fused", err, sizeof err);
    if (!f) fail_msg("CRAM_CUDA_ATTN=fused: %s", err);
    assert_int_equal(f->attn_state_bytes(f, 2, 128, 4, 64),
                     ops_fattn_state_floats(2, 128, 4) * sizeof(float));
    ops_cuda_close(f);
    const ops *p = open_with_attn("plain", err, sizeof err);
    if (!p) fail_msg("CRAM_CUDA_ATTN=plain: %s", err);
    assert_int_equal(p->attn_state_bytes(p, 2, 128, 4, 64), (size_t)2 * 4 * 128 * 128 * 4);
    print_message("# %s, CRAM_CUDA_ATTN=plain\n", p->desc);
    RW[0] = ops_cpu_bf16();
    RW[1] = p;
    cmp_mode = CMP_SAME_BF16;
    core_rng_init(&trng, 45, 0, 0, 3);
    mismatches = 0;
    bf16_attention_hd64();
    ops_cuda_close(p);
    if (mismatches)
        fail_msg("%d elements of the plain attention (CRAM_CUDA_ATTN=plain) outside the tolerance",
                 mismatches);
}

/* Each CUDA row against the CPU row of its precision, through the same op-by-op suite: fp32
 * on the GPU against the fp32 CPU row, bf16 on the GPU against the bf16-emulating CPU row. On a
 * machine without a usable GPU the test skips with the reason, unless CRAM_REQUIRE_GPU=1 (set by
 * the GPU check script), where the missing GPU is a failure. */
static void test_cuda_rows_against_cpu(void **state) {
    (void)state;
    char why[256];
    const ops *c32 = backend_row(2, why, sizeof why);
    if (!c32) {
        const char *req = getenv("CRAM_REQUIRE_GPU");
        if (req && strcmp(req, "1") == 0) fail_msg("CRAM_REQUIRE_GPU=1, but %s", why);
        print_message("# skipped: %s\n", why);
        skip();
    }
    const ops *c16 = backend_row(3, why, sizeof why);
    if (!c16) fail_msg("the CUDA fp32 row opened but the bf16 one did not: %s", why);
    const ops *pairs[2][2] = {{ops_cpu(), c32}, {ops_cpu_bf16(), c16}};
    for (int k = 0; k < 2; k++) {
        print_message("# %s\n", pairs[k][1]->desc);
        int bad = run_pair_suite(pairs[k][0], pairs[k][1], k == 0 ? CMP_SAME_FP32 : CMP_SAME_BF16,
                                 43 + (uint64_t)k);
        if (bad)
            fail_msg("%d elements of the %s/%s row outside the tolerance", bad, pairs[k][1]->name,
                     pairs[k][1]->precision);
    }
    cuda_attn_switch();
}

/* The CPU rows run with flush-to-zero and denormals-are-zero in every thread when asked: a
 * product that would be subnormal comes out 0 in the OpenMP team's threads, and kept otherwise. */
static void test_subnormals_flushed(void **state) {
    (void)state;
#if defined(__x86_64__) || defined(__aarch64__)
    const ops *o = ops_cpu();
    enum { n = 4096 }; /* several OpenMP chunks, so more than one thread scales */
    float *x = o->alloc(o, n * sizeof(float)), h[n];
    int threads = 2;
    for (int on = 0; on <= 1; on++) {
        assert_int_equal(ops_cpu_set_threads(threads, on), on ? threads : 0);
        o->fill(o, x, 1e-30f, n);
        o->scale(o, x, 1e-10f, n); /* 1e-40 is subnormal in fp32 */
        o->download(o, h, x, sizeof h);
        for (int i = 0; i < n; i++)
            assert_true(on ? h[i] == 0.0f : h[i] > 0.0f);
    }
    ops_cpu_set_threads(threads, false); /* the other tests check subnormal arithmetic */
    o->free(o, x);
#else
    skip();
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subnormals_flushed),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_forward_naive),
        cmocka_unit_test(test_adamw_and_reductions),
        cmocka_unit_test(test_embedding_pad_and_dropout_rate),
        cmocka_unit_test(test_attention_dropout_mask),
        cmocka_unit_test(test_fattn_math),
        cmocka_unit_test(test_bf16_conversions),
        cmocka_unit_test(test_bf16_row_against_fp32),
        cmocka_unit_test(test_cuda_rows_against_cpu),
    };
    printf("# %s\n", ops_cpu_blas_info());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
