/* The parameter table, the flat buffer, initialization and the activation arena of the models
 * in model.h. Forward and backward live in model_pass.c. */
#include "model/model.h"

#include "core/core.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bert_model *m;
    int cap;
} builder;

static int add_param(builder *b, const char *alias, int64_t d0, int64_t d1, bert_init_kind init,
                     const char *fmt, ...) CORE_PRINTF(6, 7);
static int add_param(builder *b, const char *alias, int64_t d0, int64_t d1, bert_init_kind init,
                     const char *fmt, ...) {
    bert_model *m = b->m;
    if (m->nparams == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        m->params = xrealloc(m->params, (size_t)b->cap * sizeof *m->params);
    }
    bert_param *p = &m->params[m->nparams];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    if (alias) snprintf(p->alias, sizeof p->alias, "%s", alias);
    p->ndim = d1 > 0 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1 > 0 ? d1 : 0;
    p->numel = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    /* every tensor starts on a 16-element boundary (64 bytes in fp32, 32 in bf16), so that GEMM
     * libraries may use their vector loads on any weight or bias; the gaps hold zeros that no
     * op reads, whose gradients stay zero and which AdamW leaves at zero */
    m->numel = (m->numel + BERT_PARAM_ALIGN - 1) / BERT_PARAM_ALIGN * BERT_PARAM_ALIGN;
    p->offset = m->numel;
    m->count += p->numel;
    p->init = init;
    p->decay = true;
    m->numel += p->numel;
    return m->nparams++;
}

static void build_crammed(bert_model *m, builder *bp) {
    builder b = *bp;
    const bert_config *c = &m->cfg;
    int H = c->H, I = c->I, I_out = c->glu ? I / 2 : I;
    m->wte = add_param(&b, "decoder.weight", c->V, H, BERT_INIT_NORMAL,
                       "encoder.embedding.word_embedding.weight");
    if (c->pos == BERT_POS_LEARNED)
        m->wpe = add_param(&b, NULL, c->max_pos, H, BERT_INIT_NORMAL,
                           "encoder.embedding.pos_embedding.embedding.weight");
    if (c->pos == BERT_POS_SCALED_SINUSOIDAL)
        m->pos_scale = add_param(&b, NULL, 1, 0, BERT_INIT_POS_SCALE,
                                 "encoder.embedding.pos_embedding.scale_factor");
    if (c->emb_norm) {
        m->emb_ln_w = add_param(&b, NULL, H, 0, BERT_INIT_ONE, "encoder.embedding.norm.weight");
        m->emb_ln_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "encoder.embedding.norm.bias");
    }
    for (int l = 0; l < c->L; l++) {
        bert_layer_idx *x = &m->layer[l];
        const char *p = "encoder.layers";
        x->ln1_w = add_param(&b, NULL, H, 0, BERT_INIT_ONE, "%s.%d.norm1.weight", p, l);
        x->ln1_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.%d.norm1.bias", p, l);
        x->ln2_w = add_param(&b, NULL, H, 0, BERT_INIT_ONE, "%s.%d.norm2.weight", p, l);
        x->ln2_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.%d.norm2.bias", p, l);
        x->qkv_w = add_param(&b, NULL, 3 * H, H, BERT_INIT_NORMAL,
                             "%s.%d.attn.self_attention.query_key_value.weight", p, l);
        if (c->qkv_bias)
            x->qkv_b = add_param(&b, NULL, 3 * H, 0, BERT_INIT_ZERO,
                                 "%s.%d.attn.self_attention.query_key_value.bias", p, l);
        x->o_w = add_param(&b, NULL, H, H, BERT_INIT_NORMAL, "%s.%d.attn.dense.weight", p, l);
        if (c->use_bias)
            x->o_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.%d.attn.dense.bias", p, l);
        x->f1_w = add_param(&b, NULL, I, H, BERT_INIT_NORMAL, "%s.%d.ffn.dense_in.weight", p, l);
        if (c->use_bias)
            x->f1_b = add_param(&b, NULL, I, 0, BERT_INIT_ZERO, "%s.%d.ffn.dense_in.bias", p, l);
        x->f2_w =
            add_param(&b, NULL, H, I_out, BERT_INIT_NORMAL, "%s.%d.ffn.dense_out.weight", p, l);
        if (c->use_bias)
            x->f2_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.%d.ffn.dense_out.bias", p, l);
    }
    if (c->final_norm) {
        m->fin_ln_w = add_param(&b, NULL, H, 0, BERT_INIT_ONE, "encoder.final_norm.weight");
        m->fin_ln_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "encoder.final_norm.bias");
    }
    if (c->num_labels > 0) {
        if (c->cls_ff) {
            m->pool_w =
                add_param(&b, NULL, c->head_dim, H, BERT_INIT_NORMAL, "pooler.dense.weight");
            m->pool_b = add_param(&b, NULL, c->head_dim, 0, BERT_INIT_ZERO, "pooler.dense.bias");
        }
        int in = c->cls_ff ? c->head_dim : H;
        m->cls_w = add_param(&b, NULL, c->num_labels, in, BERT_INIT_NORMAL, "head.weight");
        m->cls_b = add_param(&b, NULL, c->num_labels, 0, BERT_INIT_ZERO, "head.bias");
    } else {
        if (c->head_transform) {
            m->ht_w = add_param(&b, NULL, H, H, BERT_INIT_NORMAL, "prediction_head.dense.weight");
            if (c->use_bias)
                m->ht_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "prediction_head.dense.bias");
            m->ht_ln_w = add_param(&b, NULL, H, 0, BERT_INIT_ONE, "prediction_head.norm.weight");
            m->ht_ln_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "prediction_head.norm.bias");
        }
        if (c->decoder_bias)
            m->dec_b = add_param(&b, NULL, c->V, 0, BERT_INIT_ZERO, "decoder.bias");
    }
    *bp = b;
}

static void build_hf(bert_model *m, builder *bp) {
    builder b = *bp;
    const bert_config *c = &m->cfg;
    int H = c->H, I = c->I;
    const char *e = "bert.embeddings";
    m->wte = add_param(&b, "cls.predictions.decoder.weight", c->V, H, BERT_INIT_NORMAL,
                       "%s.word_embeddings.weight", e);
    m->wpe =
        add_param(&b, NULL, c->max_pos, H, BERT_INIT_NORMAL, "%s.position_embeddings.weight", e);
    if (c->type_vocab > 0)
        m->tte = add_param(&b, NULL, c->type_vocab, H, BERT_INIT_NORMAL,
                           "%s.token_type_embeddings.weight", e);
    m->emb_ln_w = add_param(&b, NULL, H, 0, BERT_INIT_ONE, "%s.LayerNorm.weight", e);
    m->emb_ln_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.LayerNorm.bias", e);
    for (int l = 0; l < c->L; l++) {
        bert_layer_idx *x = &m->layer[l];
        const char *p = "bert.encoder.layer";
        /* q, k, v weights adjacent (then their biases) so that they form one [3H,H] matrix */
        x->qkv_w =
            add_param(&b, NULL, H, H, BERT_INIT_NORMAL, "%s.%d.attention.self.query.weight", p, l);
        add_param(&b, NULL, H, H, BERT_INIT_NORMAL, "%s.%d.attention.self.key.weight", p, l);
        add_param(&b, NULL, H, H, BERT_INIT_NORMAL, "%s.%d.attention.self.value.weight", p, l);
        x->qkv_b =
            add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.%d.attention.self.query.bias", p, l);
        add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.%d.attention.self.key.bias", p, l);
        add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.%d.attention.self.value.bias", p, l);
        x->o_w = add_param(&b, NULL, H, H, BERT_INIT_NORMAL, "%s.%d.attention.output.dense.weight",
                           p, l);
        x->o_b =
            add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.%d.attention.output.dense.bias", p, l);
        x->ln1_w = add_param(&b, NULL, H, 0, BERT_INIT_ONE,
                             "%s.%d.attention.output.LayerNorm.weight", p, l);
        x->ln1_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO,
                             "%s.%d.attention.output.LayerNorm.bias", p, l);
        x->f1_w =
            add_param(&b, NULL, I, H, BERT_INIT_NORMAL, "%s.%d.intermediate.dense.weight", p, l);
        x->f1_b = add_param(&b, NULL, I, 0, BERT_INIT_ZERO, "%s.%d.intermediate.dense.bias", p, l);
        x->f2_w = add_param(&b, NULL, H, I, BERT_INIT_NORMAL, "%s.%d.output.dense.weight", p, l);
        x->f2_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.%d.output.dense.bias", p, l);
        x->ln2_w = add_param(&b, NULL, H, 0, BERT_INIT_ONE, "%s.%d.output.LayerNorm.weight", p, l);
        x->ln2_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.%d.output.LayerNorm.bias", p, l);
    }
    if (c->num_labels > 0) {
        m->pool_w = add_param(&b, NULL, H, H, BERT_INIT_NORMAL, "bert.pooler.dense.weight");
        m->pool_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "bert.pooler.dense.bias");
        m->cls_w = add_param(&b, NULL, c->num_labels, H, BERT_INIT_NORMAL, "classifier.weight");
        m->cls_b = add_param(&b, NULL, c->num_labels, 0, BERT_INIT_ZERO, "classifier.bias");
    } else {
        const char *t = "cls.predictions.transform";
        m->ht_w = add_param(&b, NULL, H, H, BERT_INIT_NORMAL, "%s.dense.weight", t);
        m->ht_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.dense.bias", t);
        m->ht_ln_w = add_param(&b, NULL, H, 0, BERT_INIT_ONE, "%s.LayerNorm.weight", t);
        m->ht_ln_b = add_param(&b, NULL, H, 0, BERT_INIT_ZERO, "%s.LayerNorm.bias", t);
        m->dec_b = add_param(&b, "cls.predictions.decoder.bias", c->V, 0, BERT_INIT_ZERO,
                             "cls.predictions.bias");
    }
    *bp = b;
}

/* the two doubles of bert_eval_* */
#define EVAL_TOTALS_BYTES (2 * sizeof(double))

/* bytes of the fixed sinusoid table, 0 when the model has none */
static size_t pos_table_bytes(const bert_config *c, const ops *o) {
    bool sinus = c->pos == BERT_POS_SINUSOIDAL || c->pos == BERT_POS_SCALED_SINUSOIDAL;
    if (c->kind == BERT_ARCH_SANITY || !sinus) return 0;
    return (size_t)c->max_pos * c->H * (size_t)o->act_bytes;
}

/* The allocations of bert_init, in bytes: what it allocates is read from here. */
static void plan_fixed(bert_mem_plan *p, const bert_config *c, size_t numel, const ops *o) {
    memset(p, 0, sizeof *p);
    p->numel = numel;
    p->state = 4 * numel * sizeof(float);
    p->working = o->act_bytes == 4 ? 0 : numel * (size_t)o->act_bytes;
    p->tables = EVAL_TOTALS_BYTES + pos_table_bytes(c, o);
}

void bert_init(bert_model *m, const bert_config *c, const ops *o) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->ops = o;
    m->wte = m->wpe = m->pos_scale = m->tte = m->emb_ln_w = m->emb_ln_b = -1;
    m->fin_ln_w = m->fin_ln_b = m->ht_w = m->ht_b = m->ht_ln_w = m->ht_ln_b = m->dec_b = -1;
    m->san_w = m->pool_w = m->pool_b = m->cls_w = m->cls_b = -1;
    m->layer = xcalloc((size_t)(c->L > 0 ? c->L : 1), sizeof *m->layer);
    for (int l = 0; l < c->L; l++) {
        bert_layer_idx *x = &m->layer[l];
        x->ln1_w = x->ln1_b = x->qkv_w = x->qkv_b = x->o_w = x->o_b = -1;
        x->ln2_w = x->ln2_b = x->f1_w = x->f1_b = x->f2_w = x->f2_b = -1;
    }
    m->grad_enabled = true;
    m->fetch_loss = true;
    m->grad_scale = 1.0f;
    builder b = {.m = m};
    if (c->kind == BERT_ARCH_CRAMMED) {
        build_crammed(m, &b);
    } else if (c->kind == BERT_ARCH_HF) {
        build_hf(m, &b);
    } else {
        m->wte = add_param(&b, NULL, c->V, c->H, BERT_INIT_NORMAL, "word_embedding.weight");
        m->san_w = add_param(&b, NULL, c->H, c->H, BERT_INIT_NORMAL, "transform.weight");
    }
    static char *const default_keys[] = {"bias", "LayerNorm.bias", "LayerNorm.weight", "norm"};
    bert_set_decay_keys(m, default_keys, 4);
    if (!o) return; /* the table only: counting and naming without memory */
    bert_mem_plan mp;
    plan_fixed(&mp, c, m->numel, o);
    m->mem = o->alloc(o, mp.state);
    m->w = m->mem;
    m->g = m->w + m->numel;
    m->m = m->g + m->numel;
    m->v = m->m + m->numel;
    m->wa = mp.working ? o->alloc(o, mp.working) : m->w;
    m->d_acc = o->alloc(o, EVAL_TOTALS_BYTES);
    size_t pe_bytes = pos_table_bytes(c, o);
    if (pe_bytes) {
        /* interleaved sin/cos, computed in fp32 like the reference's table */
        float *pe = xcalloc((size_t)c->max_pos * c->H, sizeof(float));
        for (int p = 0; p < c->max_pos; p++)
            for (int i = 0; i < c->H / 2; i++) {
                float div = expf((float)(2 * i) * (-logf(10000.0f) / (float)c->H));
                float a = (float)p * div;
                pe[(size_t)p * c->H + 2 * i] = sinf(a);
                pe[(size_t)p * c->H + 2 * i + 1] = cosf(a);
            }
        m->pe = o->alloc(o, pe_bytes);
        o->upload_act(o, m->pe, pe, (size_t)c->max_pos * c->H);
        free(pe);
    }
}

/* Frees the per-shape tables; the arena itself only when keep_arena is false. */
static void acts_free(bert_model *m, bool keep_arena) {
    if (m->arena && !keep_arena) {
        m->ops->free(m->ops, m->arena);
        m->arena = NULL;
        m->arena_cap = 0;
    }
    free(m->la);
    m->la = NULL;
    free(m->h_labels);
    free(m->h_idx);
    m->h_labels = m->h_idx = NULL;
    m->B = m->S = 0;
}

void bert_free(bert_model *m) {
    if (m->ops) acts_free(m, false);
    if (m->wa && m->wa != m->w) m->ops->free(m->ops, m->wa);
    if (m->d_acc) m->ops->free(m->ops, m->d_acc);
    if (m->mem) m->ops->free(m->ops, m->mem);
    if (m->pe) m->ops->free(m->ops, m->pe);
    free(m->params);
    free(m->layer);
    memset(m, 0, sizeof *m);
}

size_t bert_num_params(const bert_model *m) {
    return m->count;
}

int bert_find_param(const bert_model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0 || strcmp(m->params[i].alias, name) == 0) return i;
    return -1;
}

void bert_set_decay_keys(bert_model *m, char *const *keys, int nkeys) {
    for (int i = 0; i < m->nparams; i++) {
        m->params[i].decay = true;
        for (int k = 0; k < nkeys; k++)
            if (strstr(m->params[i].name, keys[k])) m->params[i].decay = false;
    }
}

void bert_log_summary(const bert_model *m) {
    char num[32], out[48];
    snprintf(num, sizeof num, "%zu", m->count);
    int len = (int)strlen(num), j = 0;
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) out[j++] = ',';
        out[j++] = num[i];
    }
    out[j] = 0;
    core_log_info("Model with architecture %s loaded with %s parameters.", m->cfg.arch_name, out);
}

void bert_init_weights(bert_model *m, uint64_t seed) {
    float *host = xcalloc(m->numel, sizeof(float)); /* the gaps between tensors stay zero */
    for (int i = 0; i < m->nparams; i++) {
        const bert_param *p = &m->params[i];
        float *w = host + p->offset;
        core_rng r;
        core_rng_init(&r, seed, 0, (uint64_t)i, 0x1417);
        for (size_t k = 0; k < p->numel; k++) {
            switch (p->init) {
            case BERT_INIT_NORMAL:
                w[k] = core_rng_normal(&r) * m->cfg.init_std;
                break;
            case BERT_INIT_ZERO:
                w[k] = 0.0f;
                break;
            case BERT_INIT_ONE:
                w[k] = 1.0f;
                break;
            case BERT_INIT_POS_SCALE:
                w[k] = 1.0f / sqrtf((float)m->cfg.H);
                break;
            }
        }
    }
    /* The reference re-draws the tied embedding when it visits the decoder, so the pad row of a
     * tied model is random; only the untied sanity-check model keeps it zero. */
    if (m->cfg.kind == BERT_ARCH_SANITY && m->cfg.pad_id >= 0)
        memset(host + m->params[m->wte].offset + (size_t)m->cfg.pad_id * m->cfg.H, 0,
               (size_t)m->cfg.H * sizeof(float));
    m->ops->upload(m->ops, m->w, host, m->numel * sizeof(float));
    m->ops->memset0(m->ops, m->g, 3 * m->numel * sizeof(float));
    free(host);
    bert_weights_changed(m);
}

void bert_param_get(const bert_model *m, int idx, float *host) {
    const bert_param *p = &m->params[idx];
    m->ops->download(m->ops, host, m->w + p->offset, p->numel * sizeof(float));
}
void bert_param_set(bert_model *m, int idx, const float *host) {
    const bert_param *p = &m->params[idx];
    m->ops->upload(m->ops, m->w + p->offset, host, p->numel * sizeof(float));
    if (m->wa != m->w)
        m->ops->refresh_weights(m->ops, (float *)((char *)m->wa + p->offset * m->ops->act_bytes),
                                m->w + p->offset, p->numel);
}

void bert_weights_changed(bert_model *m) {
    m->ops->refresh_weights(m->ops, m->wa, m->w, m->numel);
}

void bert_eval_reset(bert_model *m) {
    m->ops->memset0(m->ops, m->d_acc, 2 * sizeof(double));
}
void bert_eval_read(const bert_model *m, double *loss_sum, double *correct) {
    double acc[2];
    m->ops->download(m->ops, acc, m->d_acc, sizeof acc);
    *loss_sum = acc[0];
    *correct = acc[1];
}
void bert_grad_get(const bert_model *m, int idx, float *host) {
    const bert_param *p = &m->params[idx];
    m->ops->download(m->ops, host, m->g + p->offset, p->numel * sizeof(float));
}

void bert_zero_grad(bert_model *m) {
    m->ops->memset0(m->ops, m->g, m->numel * sizeof(float));
}

double bert_grad_norm(const bert_model *m) {
    return sqrt(m->ops->sumsq(m->ops, m->g, m->numel));
}

/* ---- activation arena ------------------------------------------------------------------- */
/* The arena is planned in bytes: activations (A) take the backend's act_bytes per element,
 * LayerNorm statistics, losses, masks and hits 4-byte floats (F), ids and labels int32 (I),
 * the attention state what the backend asks for. */
enum { ARENA_MAX = 2048 }; /* tensors: about 12 per layer, so room for very deep models */
typedef struct {
    size_t off; /* bytes */
    float **slots[ARENA_MAX];
    size_t offs[ARENA_MAX];
    int n;
    size_t act; /* bytes per activation element */
} arena_plan;

static void plan_bytes(arena_plan *a, float **slot, size_t bytes) {
    CORE_CHECK(a->n < ARENA_MAX, "activation arena plan: more than %d tensors", ARENA_MAX);
    a->slots[a->n] = slot;
    a->offs[a->n] = a->off;
    a->n++;
    a->off += (bytes + 63) / 64 * 64; /* 64-byte aligned tensors */
}
static void plan(arena_plan *a, float **slot, size_t n) { /* n activations */
    plan_bytes(a, slot, n * a->act);
}
static void plan_f32(arena_plan *a, float **slot, size_t n) {
    plan_bytes(a, slot, n * sizeof(float));
}

/* The arena of m for batches (B, S), laid out in a: sets m->B, m->S and m->nrows and allocates
 * m->la, whose slots the plan points into. o answers the element sizes. bert_acts_ensure
 * allocates exactly what this lays out, and bert_plan_memory reports it. */
static void acts_layout(bert_model *m, const ops *o, int B, int S, arena_plan *a) {
    const bert_config *c = &m->cfg;
    size_t N = (size_t)B * S, H = c->H, I = c->I;
    size_t I_act = c->glu ? I / 2 : I;
    int L = c->L;
    m->B = B;
    m->S = S;
    m->nrows = (c->kind == BERT_ARCH_CRAMMED && c->sparse_pred > 0 && c->num_labels == 0)
                   ? (int)lround(c->sparse_pred * (double)N)
                   : (int)N;
    /* Python's round is half-to-even */
    if (c->kind == BERT_ARCH_CRAMMED && c->sparse_pred > 0 && c->num_labels == 0) {
        double x = c->sparse_pred * (double)N, f = floor(x);
        m->nrows = (int)(x - f == 0.5 ? (fmod(f, 2.0) == 0.0 ? f : f + 1.0) : nearbyint(x));
    }
    size_t R = (size_t)m->nrows;
    m->la = xcalloc((size_t)L + 1, sizeof *m->la);
    a->act = (size_t)o->act_bytes;
    if (c->kind == BERT_ARCH_SANITY) {
        plan(a, &m->emb, N * H);
        plan(a, &m->hfin, N * H);
        plan(a, &m->dhfin, N * H);
    } else {
        plan(a, &m->emb, N * H);
        plan_f32(a, &m->emb_m, N);
        plan_f32(a, &m->emb_r, N);
        for (int l = 0; l <= L; l++) {
            bert_layer_acts *x = &m->la[l];
            plan(a, &x->x, N * H);
            if (l == L) break;
            plan(a, &x->ln1, N * H);
            plan_f32(a, &x->ln1_m, N);
            plan_f32(a, &x->ln1_r, N);
            plan(a, &x->qkv, N * 3 * H);
            plan_bytes(a, &x->probs, o->attn_state_bytes(o, B, S, c->NH, c->H / c->NH));
            plan(a, &x->atty, N * H);
            plan(a, &x->mid, N * H);
            plan(a, &x->ln2, N * H);
            plan_f32(a, &x->ln2_m, N);
            plan_f32(a, &x->ln2_r, N);
            plan(a, &x->fin, N * I);
            plan(a, &x->fact, N * I_act);
            if (c->kind == BERT_ARCH_HF) plan(a, &x->mid2, N * H);
        }
        plan(a, &m->hfin, N * H);
        plan_f32(a, &m->hfin_m, N);
        plan_f32(a, &m->hfin_r, N);
        if (c->num_labels == 0) {
            plan(a, &m->gath, R * H);
            plan(a, &m->ht_pre, R * H);
            plan(a, &m->ht_act, R * H);
            plan(a, &m->ht_ln, R * H);
            plan_f32(a, &m->ht_m, R);
            plan_f32(a, &m->ht_r, R);
            plan(a, &m->logits, R * c->V);
            plan_f32(a, &m->losses, R);
            plan(a, &m->dgath, R * H);
            plan(a, &m->dht, R * H);
        } else {
            size_t D = c->cls_ff ? (size_t)c->head_dim : H;
            plan(a, &m->pooled, (size_t)B * H);
            plan(a, &m->pool_pre, (size_t)B * D);
            plan(a, &m->pool_act, (size_t)B * D);
            plan(a, &m->pool_drop, (size_t)B * D);
            plan(a, &m->cls_logits, (size_t)B * c->num_labels);
            plan(a, &m->dcls, (size_t)B * c->num_labels);
            plan_f32(a, &m->losses, (size_t)B);
            plan(a, &m->dpool, (size_t)B * (D > H ? D : H) * 3);
        }
        plan(a, &m->dres, N * H);
        plan(a, &m->dln, N * H);
        plan(a, &m->dqkv, N * 3 * H);
        plan(a, &m->datty, N * H);
        plan(a, &m->dfin, N * I);
        plan(a, &m->dfact, N * I_act);
        plan(a, &m->dtmp, N * H);
        plan(a, &m->dmid, N * H);
        plan(a, &m->dhfin, N * H);
        plan_f32(a, &m->d_mask, N);
    }
    plan_f32(a, &m->d_targets, (size_t)B);
    plan_f32(a, &m->hits, N);
    plan_f32(a, (float **)&m->d_ids, N);
    plan_f32(a, (float **)&m->d_types, N);
    plan_f32(a, (float **)&m->d_labels, N);
    plan_f32(a, (float **)&m->d_idx, N);
}

void bert_acts_ensure(bert_model *m, int B, int S) {
    if (m->B == B && m->S == S && m->arena) return;
    /* keep the arena across shapes: fine-tuning pads each batch to its own length, and a fresh
     * allocation per batch costs page faults on hundreds of MB */
    acts_free(m, true);
    const bert_config *c = &m->cfg;
    CORE_CHECK(c->kind == BERT_ARCH_SANITY || S <= c->max_pos,
               "sequence length %d exceeds the %d positions of arch.embedding.max_seq_length", S,
               c->max_pos);
    arena_plan a = {0};
    acts_layout(m, m->ops, B, S, &a);
    size_t N = (size_t)B * S;
    if (m->arena && a.off <= m->arena_cap) {
        m->ops->memset0(m->ops, m->arena, a.off); /* same state as a fresh allocation */
    } else {
        if (m->arena) m->ops->free(m->ops, m->arena);
        m->arena = m->ops->alloc(m->ops, a.off);
        m->arena_cap = a.off;
    }
    for (int i = 0; i < a.n; i++)
        *a.slots[i] = (float *)((char *)m->arena + a.offs[i]);
    m->dlogits = m->logits; /* the loss gradient replaces the logits in place */
    m->h_labels = xcalloc(N, sizeof(int32_t));
    m->h_idx = xcalloc(N, sizeof(int32_t));
}

/* bert_plan_memory for a table-only model t (bert_init without a backend) */
static void plan_model(bert_mem_plan *p, bert_model *t, const ops *o, int B, int S) {
    plan_fixed(p, &t->cfg, t->numel, o);
    arena_plan a = {0};
    acts_layout(t, o, B, S, &a);
    free(t->la);
    t->la = NULL;
    p->acts = a.off;
    p->total = p->state + p->working + p->tables + p->acts;
}

void bert_plan_memory(bert_mem_plan *p, const bert_config *c, const ops *o, int B, int S) {
    bert_model t;
    bert_init(&t, c, NULL);
    plan_model(p, &t, o, B, S);
    bert_free(&t);
}

int bert_plan_max_batch(const bert_config *c, const ops *o, int S, size_t avail, int B_max) {
    bert_model t;
    bert_init(&t, c, NULL);
    bert_mem_plan p;
    if (S > 0 && B_max > INT_MAX / S) B_max = INT_MAX / S; /* rows are counted in int */
    /* the bytes grow with B: bisect for the last B that fits */
    int lo = 0, hi = B_max; /* lo fits (0: nothing), everything above hi does not */
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        plan_model(&p, &t, o, mid, S);
        if (p.total <= avail)
            lo = mid;
        else
            hi = mid - 1;
    }
    bert_free(&t);
    return lo;
}
