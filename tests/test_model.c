/* The models against PyTorch: forward logits, loss, every parameter gradient and the losses of
 * 10 AdamW steps with clipping, for a small crammed-bert and a small post-LN BERT, read from
 * tests/fixtures/model/<name>.bin (written by scripts/make_model_reference.py). Also: parameter
 * counts of the real architectures, config errors, checkpoint names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "core/core.h"
#include "model/model.h"
#include "ops/backend.h"
#include "optim/adamw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixture reader ------------------------------------------------------------------------- */
typedef struct {
    char name[128];
    int is_int, ndim;
    uint32_t dims[4];
    size_t n;
    void *data;
} ref_tensor;

typedef struct {
    int n;
    ref_tensor *t;
} ref_file;

static int read_u32(FILE *f, uint32_t *v) {
    return fread(v, 4, 1, f) == 1 ? 0 : -1;
}

static void ref_load(ref_file *r, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s (run scripts/make_model_reference.py)", path);
    char magic[8];
    uint32_t version, count;
    assert_int_equal(fread(magic, 1, 8, f), 8);
    assert_memory_equal(magic, "CRAMREF\0", 8);
    assert_int_equal(read_u32(f, &version), 0);
    assert_int_equal(version, 1);
    assert_int_equal(read_u32(f, &count), 0);
    r->n = (int)count;
    r->t = calloc(count, sizeof *r->t);
    for (uint32_t i = 0; i < count; i++) {
        ref_tensor *t = &r->t[i];
        uint32_t len, dtype, ndim;
        assert_int_equal(read_u32(f, &len), 0);
        assert_true(len < sizeof t->name);
        assert_int_equal(fread(t->name, 1, len, f), len);
        assert_int_equal(read_u32(f, &dtype), 0);
        assert_int_equal(read_u32(f, &ndim), 0);
        assert_true(ndim <= 4);
        t->is_int = dtype == 1;
        t->ndim = (int)ndim;
        t->n = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            assert_int_equal(read_u32(f, &t->dims[d]), 0);
            t->n *= t->dims[d];
        }
        t->data = malloc(t->n * 4 + 4);
        assert_int_equal(fread(t->data, 4, t->n, f), t->n);
    }
    fclose(f);
}

static void ref_free(ref_file *r) {
    for (int i = 0; i < r->n; i++)
        free(r->t[i].data);
    free(r->t);
}

static const ref_tensor *ref_get(const ref_file *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->t[i].name, name) == 0) return &r->t[i];
    fail_msg("fixture has no tensor %s", name);
    return NULL;
}

/* ---- the backends under test ---------------------------------------------------------------
 * Every test that runs the model runs it on each backend row this machine can open (cpu,
 * cpu-bf16, cuda when present), with that row's tolerances against the PyTorch fp32 fixtures.
 * bf16 keeps 8 significant bits (relative rounding 2^-9); every activation and working weight is
 * rounded once per op, so after a few layers errors of a few 2^-8 relative to a tensor's largest
 * entry are the expected size, not a defect. */
typedef struct {
    double loss;   /* relative error of the loss */
    double logits; /* max |a-b| / max |b| */
    double grad;   /* the same per gradient tensor */
    double steps;  /* relative error of the losses of 10 AdamW steps */
    double same;   /* two computations that should agree (sparse vs dense decoding) */
} row_tol;

static row_tol tol_for(const ops *o) {
    if (o->act_bytes == 4) return (row_tol){1e-5, 1e-5, 1e-4, 1e-5, 1e-6};
    return (row_tol){1e-2, 3e-2, 6e-2, 2e-2, 1e-2};
}

#define FOR_EACH_ROW(o)                                                                            \
    for (int row_ = 0; row_ < 4; row_++)                                                           \
        for (const ops *o = row_open(row_); o; o = NULL)

static const ops *row_open(int k) {
    char why[256];
    const ops *o = backend_row(k, why, sizeof why);
    if (!o && why[0]) print_message("# %s\n", why);
    if (o) print_message("# backend row %s\n", o->name);
    return o;
}

/* ---- building models from the real configs ----------------------------------------------- */
static cfg_node *compose(int n, char *const *overrides) {
    cfg_search s;
    cfg_search_init(&s);
    cfg_search_default(&s);
    if (s.ndirs == 0) cfg_search_add(&s, "configs");
    cfg_error err = {0};
    cfg_node *root = cfg_compose(&s, "pretrain", n, overrides, &err);
    cfg_search_free(&s);
    if (!root) fail_msg("config: %s", err.msg);
    return root;
}

static int config_for(bert_config *c, int n, char *const *overrides, int V, char *err, size_t len) {
    cfg_node *root = compose(n, overrides);
    int rc = bert_config_from_cfg(c, root, V, err, len);
    cfg_free(root);
    return rc;
}

/* max |a-b| / max |b| over a tensor */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return s > 0 ? d / s : d;
}

static double abs_max(const float *a, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s = fmax(s, fabs((double)a[i]));
    return s;
}

static void check_against(const ops *o, const char *fixture, int V, int n, char *const *overrides) {
    row_tol tol = tol_for(o);
    ref_file r;
    ref_load(&r, fixture);
    bert_config c;
    char err[512];
    if (config_for(&c, n, overrides, V, err, sizeof err)) fail_msg("%s", err);
    c.hidden_drop = c.attn_drop = c.emb_drop = 0.0f;
    bert_model m;
    bert_init(&m, &c, o);
    /* every parameter of the table comes from the fixture, and the counts agree */
    size_t loaded = 0;
    for (int i = 0; i < m.nparams; i++) {
        const ref_tensor *t = ref_get(&r, m.params[i].name);
        assert_int_equal(t->n, m.params[i].numel);
        bert_param_set(&m, i, t->data);
        loaded += t->n;
    }
    assert_int_equal(loaded, bert_num_params(&m));
    const ref_tensor *ids = ref_get(&r, "input_ids"), *labels = ref_get(&r, "labels");
    int B = (int)ids->dims[0], S = (int)ids->dims[1];
    const float *mask = c.num_labels > 0 ? ref_get(&r, "attention_mask")->data : NULL;
#define FORWARD()                                                                                  \
    (c.num_labels > 0                                                                              \
         ? bert_forward_cls(&m, ids->data, NULL, mask, labels->data, NULL, B, S, false, 0, 0)      \
         : bert_forward(&m, ids->data, NULL, labels->data, NULL, B, S, false, 0, 0))
    m.grad_enabled = false; /* keep the logits readable */
    double loss = FORWARD();
    const ref_tensor *rl = ref_get(&r, "loss"), *rlog = ref_get(&r, "logits");
    float ref_loss = ((float *)rl->data)[0];
    print_message("# %s: loss %.7f (PyTorch %.7f)\n", fixture, loss, (double)ref_loss);
    assert_true(fabs(loss - ref_loss) < tol.loss * fabs(ref_loss));
    float *logits = malloc(rlog->n * sizeof(float));
    if (c.num_labels > 0) {
        assert_int_equal(rlog->n, (size_t)B * c.num_labels);
        bert_cls_logits(&m, logits);
    } else {
        assert_int_equal(rlog->n, (size_t)m.nrows * c.V);
        m.ops->download_act(m.ops, logits, m.logits, rlog->n);
    }
    double e = rel_err(logits, rlog->data, rlog->n);
    print_message("# logits rel err %.3g\n", e);
    assert_true(e < tol.logits);
    free(logits);
    m.grad_enabled = true;
    assert_true(FORWARD() == loss);
    bert_zero_grad(&m);
    bert_backward(&m, 1.0f);
    double worst = 0.0;
    for (int i = 0; i < m.nparams; i++) {
        char gname[160];
        snprintf(gname, sizeof gname, "grad.%s", m.params[i].name);
        const ref_tensor *t = ref_get(&r, gname);
        float *g = malloc(t->n * sizeof(float));
        bert_grad_get(&m, i, g);
        double ge = rel_err(g, t->data, t->n);
        /* a key bias cannot change a softmax over keys: both gradients are rounding noise */
        if (strstr(m.params[i].name, "key.bias")) ge = abs_max(g, t->n) * 1e3 * (tol.grad / 1e-4);
        if (ge >= tol.grad) print_error("gradient of %s: rel err %.3g\n", m.params[i].name, ge);
        assert_true(ge < tol.grad);
        worst = fmax(worst, ge);
        free(g);
    }
    print_message("# worst gradient rel err %.3g over %d tensors\n", worst, m.nparams);
    /* 10 AdamW steps with clipping, same batch */
    const ref_tensor *steps = ref_get(&r, "step_losses");
    const float *want = steps->data;
    adamw_hparams hp = {.beta1 = 0.9, .beta2 = 0.98, .eps = 1e-12, .weight_decay = 0.01};
    bert_zero_grad(&m);
    for (int t = 0; t < (int)steps->n; t++) {
        double l = FORWARD();
        bert_backward(&m, 1.0f);
        adamw_model_step(&m, NULL, &hp, 1e-3, 0.5, t + 1);
        print_message("# step %d loss %.6f (PyTorch %.6f)\n", t, l, (double)want[t]);
        assert_true(fabs(l - want[t]) < tol.steps * fabs(want[t]));
    }
    bert_free(&m);
    ref_free(&r);
}

static void test_crammed_bert_vs_pytorch(void **state) {
    (void)state;
    char *ov[] = {"arch=crammed-bert",
                  "train=bert-o4",
                  "arch.num_transformer_layers=2",
                  "arch.hidden_size=64",
                  "arch.intermed_size=256",
                  "arch.attention.num_attention_heads=4",
                  "arch.embedding.max_seq_length=16"};
    FOR_EACH_ROW(o) check_against(o, "tests/fixtures/model/crammed.bin", 512, 7, ov);
}

static void test_crammed_classifier_vs_pytorch(void **state) {
    (void)state;
    char *ov[] = {"arch=crammed-bert",
                  "arch.num_transformer_layers=1",
                  "arch.hidden_size=32",
                  "arch.intermed_size=64",
                  "arch.attention.num_attention_heads=2",
                  "arch.embedding.max_seq_length=16",
                  "arch.num_labels=3",
                  "arch.classification_head.pooler=zero_index",
                  "arch.classification_head.head_dim=48"};
    FOR_EACH_ROW(o) check_against(o, "tests/fixtures/model/classifier.bin", 128, 9, ov);
}

static void test_post_ln_bert_vs_pytorch(void **state) {
    (void)state;
    char *ov[] = {"arch=hf-bert-tiny",          "arch.hidden_size=32",
                  "arch.num_hidden_layers=2",   "arch.num_attention_heads=2",
                  "arch.intermediate_size=128", "arch.max_position_embeddings=64"};
    FOR_EACH_ROW(o) check_against(o, "tests/fixtures/model/bert.bin", 512, 6, ov);
}

/* SPEC 2.7 counts at V=32768 (the tied decoder counted once) */
static void test_parameter_counts(void **state) {
    (void)state;
    struct {
        const char *arch;
        size_t count;
        const char *first, *last;
    } want[] = {
        {"arch=crammed-bert", 119589889, "encoder.embedding.word_embedding.weight",
         "encoder.final_norm.bias"},
        {"arch=hf-bert-base", 111241472, "bert.embeddings.word_embeddings.weight",
         "cls.predictions.bias"},
        {"arch=hf-bert-tiny", 4706432, "bert.embeddings.word_embeddings.weight",
         "cls.predictions.bias"},
        {"arch=crammed-bert-simple", 110945024, "encoder.embedding.word_embedding.weight",
         "decoder.bias"},
        {"arch=sanity-check", 34603008, "word_embedding.weight", "transform.weight"},
        {"arch=bert-original", 111241472, "bert.embeddings.word_embeddings.weight",
         "cls.predictions.bias"},
    };
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        bert_config c;
        char err[512];
        char *ov[] = {(char *)want[k].arch};
        if (config_for(&c, 1, ov, 32768, err, sizeof err)) fail_msg("%s: %s", want[k].arch, err);
        bert_model m;
        bert_init(&m, &c, NULL);
        print_message("# %s: %zu parameters\n", want[k].arch, bert_num_params(&m));
        assert_int_equal(bert_num_params(&m), want[k].count);
        assert_string_equal(m.params[0].name, want[k].first);
        assert_string_equal(m.params[m.nparams - 1].name, want[k].last);
        bert_free(&m);
    }
}

/* decay groups and tied names (SPEC 2.5, 3.2) */
static void test_names_and_decay(void **state) {
    (void)state;
    bert_config c;
    char err[512];
    char *ov[] = {"arch=crammed-bert"};
    assert_int_equal(config_for(&c, 1, ov, 32768, err, sizeof err), 0);
    bert_model m;
    bert_init(&m, &c, NULL);
    int i = bert_find_param(&m, "decoder.weight");
    assert_int_equal(i, m.wte);
    assert_true(m.params[m.wte].decay);
    assert_true(
        m.params[bert_find_param(&m, "encoder.embedding.pos_embedding.scale_factor")].decay);
    assert_false(m.params[bert_find_param(&m, "encoder.layers.3.norm1.weight")].decay);
    assert_false(m.params[bert_find_param(&m, "encoder.final_norm.bias")].decay);
    assert_true(m.params[bert_find_param(&m, "encoder.layers.15.ffn.dense_out.weight")].decay);
    assert_int_equal(
        m.params[bert_find_param(&m, "encoder.layers.0.ffn.dense_out.weight")].shape[1], 1536);
    bert_free(&m);
}

static void test_config_errors(void **state) {
    (void)state;
    struct {
        const char *override, *key;
    } bad[] = {
        {"arch.attention.causal_attention=True", "arch.attention.causal_attention"},
        {"arch.nonlin=ReLUglu", "arch.nonlin"},
        {"arch.norm=RMSNorm", "arch.norm"},
        {"arch.objective_layout=SCRIPT", "arch.objective_layout"},
        {"arch.attention.num_attention_heads=7", "heads"},
        {"arch.init.type=agd-orthogonal", "arch.init.type"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char *ov[] = {"arch=crammed-bert", (char *)bad[k].override};
        bert_config c;
        char err[512] = "";
        assert_int_equal(config_for(&c, 2, ov, 32768, err, sizeof err), -1);
        print_message("# %s -> %s\n", bad[k].override, err);
        assert_non_null(strstr(err, bad[k].key));
    }
}

/* the sanity-check model: loss is the mean output, its gradient is a constant */
static void test_sanity_check_model(void **state) {
    (void)state;
    bert_config c;
    char err[512];
    char *ov[] = {"arch=sanity-check", "arch.width=16"};
    assert_int_equal(config_for(&c, 2, ov, 50, err, sizeof err), 0);
    FOR_EACH_ROW(o) {
        bert_model m;
        bert_init(&m, &c, o);
        bert_init_weights(&m, 7);
        int32_t ids[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 0};
        double l = bert_forward(&m, ids, NULL, NULL, NULL, 2, 6, true, 1, 1);
        assert_true(isfinite(l));
        bert_zero_grad(&m);
        bert_backward(&m, 1.0f);
        float *g = malloc(m.params[m.wte].numel * sizeof(float));
        bert_grad_get(&m, m.wte, g);
        for (int h = 0; h < 16; h++)
            assert_true(g[h] == 0.0f); /* pad row */
        free(g);
        /* the transform's gradient: its backward overwrites the embedding output in place
         * (dinp aliases inp), which must not corrupt dw; checked against finite differences */
        size_t n = m.params[m.san_w].numel;
        float *w = malloc(n * sizeof(float)), *gw = malloc(n * sizeof(float));
        bert_param_get(&m, m.san_w, w);
        bert_grad_get(&m, m.san_w, gw);
        for (size_t j = 0; j < n; j += 37) {
            float v = w[j], eps = 1e-2f;
            w[j] = v + eps;
            bert_param_set(&m, m.san_w, w);
            double lp = bert_forward(&m, ids, NULL, NULL, NULL, 2, 6, true, 1, 1);
            w[j] = v - eps;
            bert_param_set(&m, m.san_w, w);
            double lm = bert_forward(&m, ids, NULL, NULL, NULL, 2, 6, true, 1, 1);
            w[j] = v;
            bert_param_set(&m, m.san_w, w);
            double fd = (lp - lm) / (2.0 * eps), tol = o->act_bytes == 4 ? 1e-3 : 5e-2;
            if (fabs(fd - gw[j]) > tol * fabs(fd) + 1e-5)
                fail_msg("%s: transform.weight[%zu]: analytic %.6g, finite difference %.6g",
                         o->name, j, (double)gw[j], fd);
        }
        free(w), free(gw);
        bert_free(&m);
    }
}

/* ---- whole-model gradients against finite differences, for the variants without a PyTorch
 * fixture (dropout on: the masks are a function of seed and step, so the loss is a fixed
 * function of the weights) ---------------------------------------------------------------- */
typedef struct {
    const char *what;
    int n;
    char *ov[12];
    int cls; /* 0 MLM, 1 regression, 3 three classes */
} fd_model_case;

static double model_loss(bert_model *m, const int32_t *ids, const int32_t *types,
                         const int32_t *labels, const float *mask, const float *targets, int B,
                         int S, int cls) {
    if (cls)
        return bert_forward_cls(m, ids, types, mask, cls > 1 ? labels : NULL,
                                cls == 1 ? targets : NULL, B, S, true, 11, 5);
    return bert_forward(m, ids, types, labels, NULL, B, S, true, 11, 5);
}

static void test_model_finite_differences(void **state) {
    (void)state;
    fd_model_case cases[] = {
        {"crammed-bert-simple",
         6,
         {"arch=crammed-bert-simple", "train=bert-o4", "arch.num_transformer_layers=2",
          "arch.hidden_size=16", "arch.intermed_size=32", "arch.attention.num_attention_heads=2"},
         0},
        {"crammed-bert variants",
         10,
         {"arch=crammed-bert", "train=bert-o4", "arch.num_transformer_layers=1",
          "arch.hidden_size=16", "arch.intermed_size=32", "arch.attention.num_attention_heads=4",
          "arch.embedding.pos_embedding=sinusoidal", "arch.embedding.normalization=False",
          "arch.final_norm=False", "arch.attention.qkv_bias=True"},
         0},
        {"hf-bert",
         5,
         {"arch=hf-bert-tiny", "arch.hidden_size=16", "arch.num_hidden_layers=2",
          "arch.intermediate_size=24", "arch.num_attention_heads=2"},
         0},
        {"crammed regression avg pool",
         7,
         {"arch=crammed-bert", "arch.num_transformer_layers=1", "arch.hidden_size=16",
          "arch.intermed_size=32", "arch.attention.num_attention_heads=2", "arch.num_labels=1",
          "arch.classification_head.head_dim=8"},
         1},
        {"hf classifier",
         6,
         {"arch=hf-bert-tiny", "arch.hidden_size=16", "arch.num_hidden_layers=1",
          "arch.intermediate_size=24", "arch.num_attention_heads=2", "+arch.num_labels=3"},
         3},
    };
    enum { B = 2, S = 8, V = 40 };
    int32_t ids[B * S], labels[B * S], types[B * S];
    float mask[B * S], targets[B] = {0.7f, -1.2f};
    core_rng r;
    core_rng_init(&r, 21, 0, 0, 0);
    for (int i = 0; i < B * S; i++) {
        ids[i] = (int32_t)core_rng_below(&r, V);
        labels[i] = (i % 4 == 1) ? (int32_t)core_rng_below(&r, V) : -100;
        types[i] = i % S >= S / 2;
        mask[i] = (i == 6 || i == 7 || i == 15) ? 0.0f : 1.0f;
    }
    int cls_labels[B] = {2, 0};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        fd_model_case *fc = &cases[k];
        bert_config c;
        char err[512];
        if (config_for(&c, fc->n, fc->ov, V, err, sizeof err)) fail_msg("%s: %s", fc->what, err);
        c.init_std = 0.3f;
        c.sparse_pred = c.sparse_pred > 0 ? 0.25 : 0.0;
        /* fp32 only: bf16 rounding of the forward is far larger than a finite difference step
         * can resolve; the bf16 row is held against the fp32 row and the fixtures instead */
        bert_model m;
        bert_init(&m, &c, ops_cpu());
        bert_init_weights(&m, 3);
        const int32_t *lab = fc->cls > 1 ? (const int32_t *)cls_labels : labels;
        const int32_t *ty = c.kind == BERT_ARCH_HF ? types : NULL;
        model_loss(&m, ids, ty, lab, mask, targets, B, S, fc->cls);
        bert_zero_grad(&m);
        bert_backward(&m, 1.0f);
        int bad = 0, checked = 0;
        for (int i = 0; i < m.nparams; i++) {
            size_t n = m.params[i].numel;
            float *w = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
            bert_param_get(&m, i, w);
            bert_grad_get(&m, i, g);
            /* the two largest gradient entries and one random entry */
            size_t pick[3] = {0, 0, core_rng_below(&r, (uint32_t)n)};
            for (size_t j = 0; j < n; j++)
                if (fabsf(g[j]) > fabsf(g[pick[0]]))
                    pick[1] = pick[0], pick[0] = j;
                else if (j != pick[0] && fabsf(g[j]) > fabsf(g[pick[1]]))
                    pick[1] = j;
            for (int q = 0; q < 3; q++) {
                size_t j = pick[q];
                float v = w[j], eps = 1e-2f * fmaxf(1.0f, fabsf(v));
                w[j] = v + eps;
                bert_param_set(&m, i, w);
                double lp = model_loss(&m, ids, ty, lab, mask, targets, B, S, fc->cls);
                w[j] = v - eps;
                bert_param_set(&m, i, w);
                double lm = model_loss(&m, ids, ty, lab, mask, targets, B, S, fc->cls);
                w[j] = v;
                bert_param_set(&m, i, w);
                double fd = (lp - lm) / (2.0 * eps);
                checked++;
                if (fabs(fd - g[j]) > 3e-2 * fabs(fd) + 2e-4) {
                    print_error("%s: %s[%zu]: analytic %.6g, finite difference %.6g\n", fc->what,
                                m.params[i].name, j, (double)g[j], fd);
                    bad++;
                }
            }
            free(w);
            free(g);
        }
        print_message("# %s: %d gradient entries checked\n", fc->what, checked);
        assert_int_equal(bad, 0);
        bert_free(&m);
    }
}

/* a one-layer crammed-bert of width 16 for the MLM head tests */
static char *tiny_mlm[] = {
    "arch=crammed-bert",   "train=bert-o4",         "arch.num_transformer_layers=1",
    "arch.hidden_size=16", "arch.intermed_size=32", "arch.attention.num_attention_heads=2"};

/* sparse prediction picks rows like argsort(is_masked)[-n:]: fewer masked rows than n are
 * padded with ignored rows, more are cut from the front; the loss equals the dense model's loss
 * over the same labels */
static void test_sparse_row_choice(void **state) {
    (void)state;
    bert_config c;
    char err[512];
    assert_int_equal(config_for(&c, 6, tiny_mlm, 30, err, sizeof err), 0);
    bert_config dense = c;
    dense.sparse_pred = 0.0;
    FOR_EACH_ROW(o) {
        double same = tol_for(o).same;
        bert_model ms, md;
        bert_init(&ms, &c, o);
        bert_init(&md, &dense, o);
        bert_init_weights(&ms, 4);
        bert_init_weights(&md, 4);
        int32_t ids[8] = {3, 9, 6, 12, 6, 20, 7, 6};
        /* n = round(0.25 * 8) = 2 */
        int32_t one[8] = {-100, -100, 5, -100, -100, -100, -100, -100};
        int32_t four[8] = {-100, 4, 5, -100, 8, -100, 2, 9};
        int32_t last_two[8] = {-100, -100, -100, -100, -100, -100, 2, 9};
        double a = bert_forward(&ms, ids, NULL, one, NULL, 1, 8, false, 0, 0);
        double b = bert_forward(&md, ids, NULL, one, NULL, 1, 8, false, 0, 0);
        assert_int_equal(ms.nrows, 2);
        assert_true(fabs(a - b) < same * fabs(b));
        a = bert_forward(&ms, ids, NULL, four, NULL, 1, 8, false, 0, 0);
        b = bert_forward(&md, ids, NULL, last_two, NULL, 1, 8, false, 0, 0);
        assert_true(fabs(a - b) < same * fabs(b));
        bert_free(&ms);
        bert_free(&md);
    }
}

/* the activation arena is reused across shapes: after a longer batch, a shorter one gives the
 * same loss and gradients, bit for bit, as a model that never saw the longer one */
static void test_arena_reuse_across_shapes(void **state) {
    (void)state;
    char *ov[] = {"arch=crammed-bert",
                  "train=bert-o4",
                  "arch.num_transformer_layers=2",
                  "arch.hidden_size=16",
                  "arch.intermed_size=32",
                  "arch.attention.num_attention_heads=2",
                  "arch.num_labels=3",
                  "arch.classification_head.head_dim=8"};
    bert_config c;
    char err[512];
    assert_int_equal(config_for(&c, 8, ov, 30, err, sizeof err), 0);
    FOR_EACH_ROW(o) {
        bert_model used, fresh;
        bert_init(&used, &c, o);
        bert_init(&fresh, &c, o);
        bert_init_weights(&used, 6);
        bert_init_weights(&fresh, 6);
        enum { B = 2, SL = 24, SS = 8 };
        int32_t ids[B * SL], labels[B] = {2, 1};
        float mask[B * SL];
        for (int i = 0; i < B * SL; i++) {
            ids[i] = 1 + (i * 7) % 29;
            mask[i] = (i % SL) < SL - 3 ? 1.0f : 0.0f;
        }
        bert_forward_cls(&used, ids, NULL, mask, labels, NULL, B, SL, true, 3, 1);
        bert_backward(&used, 1.0f);
        size_t cap = used.arena_cap;
        void *arena = used.arena;
        bert_zero_grad(&used);
        int32_t sids[B * SS];
        float smask[B * SS];
        for (int i = 0; i < B * SS; i++) {
            sids[i] = 1 + (i * 5) % 29;
            smask[i] = (i % SS) < SS - 1 ? 1.0f : 0.0f;
        }
        double a = bert_forward_cls(&used, sids, NULL, smask, labels, NULL, B, SS, true, 3, 2);
        double b = bert_forward_cls(&fresh, sids, NULL, smask, labels, NULL, B, SS, true, 3, 2);
        assert_true(used.arena == arena && used.arena_cap == cap); /* no new allocation */
        assert_true(a == b);
        bert_backward(&used, 1.0f);
        bert_backward(&fresh, 1.0f);
        float *ga = malloc(used.numel * sizeof(float)), *gb = malloc(used.numel * sizeof(float));
        used.ops->download(used.ops, ga, used.g, used.numel * sizeof(float));
        fresh.ops->download(fresh.ops, gb, fresh.g, fresh.numel * sizeof(float));
        assert_memory_equal(ga, gb, used.numel * sizeof(float));
        free(ga), free(gb);
        bert_free(&used);
        bert_free(&fresh);
    }
}

/* The loss scale folded into the MLM forward (bert_model.grad_scale) gives the gradients of a
 * separate scaling pass, and a backward with another scale than the folded one still scales
 * right: the same gradients within rounding, on every row. */
static void test_folded_loss_scale(void **state) {
    (void)state;
    bert_config c;
    char err[512];
    assert_int_equal(config_for(&c, 6, tiny_mlm, 40, err, sizeof err), 0);
    FOR_EACH_ROW(o) {
        enum { B = 2, S = 16 };
        int32_t ids[B * S], labels[B * S];
        for (int i = 0; i < B * S; i++) {
            ids[i] = 1 + (i * 11) % 39;
            labels[i] = i % 4 == 1 ? (i * 3) % 39 : -100;
        }
        const float s = 0.125f, other = 0.3f;
        float *g[3];
        for (int k = 0; k < 3; k++) {
            bert_model m;
            bert_init(&m, &c, o);
            bert_init_weights(&m, 5);
            m.grad_scale = k == 0 ? 1.0f : s; /* 0: a separate pass; 1: folded; 2: folded s */
            double loss = bert_forward(&m, ids, NULL, labels, NULL, B, S, false, 1, 1);
            assert_true(isfinite(loss));
            bert_backward(&m, k == 2 ? other : s); /* 2: backward with another scale */
            g[k] = malloc(m.numel * sizeof(float));
            m.ops->download(m.ops, g[k], m.g, m.numel * sizeof(float));
            if (k == 2) /* the gradient of scale `other`, compare it at scale s */
                for (size_t i = 0; i < m.numel; i++)
                    g[k][i] *= s / other;
            size_t n = m.numel;
            bert_free(&m);
            if (k == 0) continue;
            double d = 0, a = 0;
            for (size_t i = 0; i < n; i++) {
                d = fmax(d, fabs((double)g[k][i] - g[0][i]));
                a = fmax(a, fabs((double)g[0][i]));
            }
            print_message("%s: folded scale (%s backward): max diff %.2e of %.2e\n", o->name,
                          k == 1 ? "same" : "other", d, a);
            assert_true(a > 0);
            assert_true(d <= (o->act_bytes == 4 ? 1e-6 : 2e-2) * a);
        }
        for (int k = 0; k < 3; k++)
            free(g[k]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crammed_bert_vs_pytorch),
        cmocka_unit_test(test_post_ln_bert_vs_pytorch),
        cmocka_unit_test(test_crammed_classifier_vs_pytorch),
        cmocka_unit_test(test_model_finite_differences),
        cmocka_unit_test(test_sparse_row_choice),
        cmocka_unit_test(test_arena_reuse_across_shapes),
        cmocka_unit_test(test_folded_loss_scale),
        cmocka_unit_test(test_parameter_counts),
        cmocka_unit_test(test_names_and_decay),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_sanity_check_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
