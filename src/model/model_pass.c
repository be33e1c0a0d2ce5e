/* Forward and backward of the models in model.h, written once against `struct ops`. Pre-LN
 * (crammed-bert) and post-LN (BERT) blocks share the buffers of bert_layer_acts; the comments
 * give the math each block computes. */
#include "model/model.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Dropout stream numbers: one per site, the layer folded in. */
enum { DS_EMB = 1, DS_ATTN = 2, DS_RES1 = 3, DS_RES2 = 4, DS_CLS = 5 };

/* A parameter as the kernels read it: the working copy (act_bytes per element). */
static float *W(const bert_model *m, int idx) {
    return idx < 0 ? NULL : (float *)((char *)m->wa + m->params[idx].offset * m->ops->act_bytes);
}
/* Bytes of n activations, and the activation n elements after p. */
static size_t A(const bert_model *m, size_t n) {
    return n * (size_t)m->ops->act_bytes;
}
static float *A_at(const bert_model *m, float *p, size_t n) {
    return (float *)((char *)p + A(m, n));
}
static float *G(const bert_model *m, int idx) {
    return idx < 0 ? NULL : m->g + m->params[idx].offset;
}

static ops_dropout drop_for(const bert_model *m, float p, int site, int layer) {
    ops_dropout d = {.p = m->training ? p : 0.0f, .step = m->step};
    core_rng_key(d.key, m->seed, m->rank, (uint32_t)(site + 16 * (layer + 1)));
    return d;
}

/* Pick the decoded rows like the reference: stable-sort the rows by "is masked" and keep the
 * last n, so the masked rows come first into the count. Returns the valid-label count. */
static int choose_rows(bert_model *m, const int32_t *labels, int N) {
    int n = m->nrows, k = 0;
    if (n == N) {
        for (int i = 0; i < N; i++)
            m->h_idx[i] = i;
    } else {
        int masked = 0;
        for (int i = 0; i < N; i++)
            masked += labels[i] != -100;
        int unmasked_take = n > masked ? n - masked : 0, skip_masked = masked > n ? masked - n : 0;
        /* the tail of the sorted order: the last `unmasked_take` unmasked rows, then the masked
         * rows after the first `skip_masked` */
        int seen_un = 0, n_un = N - masked;
        for (int i = 0; i < N; i++)
            if (labels[i] == -100) {
                if (seen_un++ >= n_un - unmasked_take) m->h_idx[k++] = i;
            }
        int seen_m = 0;
        for (int i = 0; i < N; i++)
            if (labels[i] != -100) {
                if (seen_m++ >= skip_masked) m->h_idx[k++] = i;
            }
        CORE_CHECK(k == n, "row selection chose %d of %d rows", k, n);
    }
    int valid = 0;
    for (int i = 0; i < n; i++) {
        m->h_labels[i] = labels[m->h_idx[i]];
        valid += m->h_labels[i] != -100;
    }
    return valid;
}

static void embed_forward(bert_model *m) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    int B = m->B, S = m->S, H = c->H, N = B * S;
    const float *wpe = c->pos == BERT_POS_LEARNED ? W(m, m->wpe) : m->pe;
    o->embed_fwd(o, m->emb, m->d_ids, m->d_types, W(m, m->wte), wpe, W(m, m->pos_scale),
                 W(m, m->tte), B, S, H);
    float *x0 = m->la[0].x;
    if (c->emb_norm)
        o->layernorm_fwd(o, x0, m->emb_m, m->emb_r, m->emb, W(m, m->emb_ln_w), W(m, m->emb_ln_b), N,
                         H, c->eps);
    else
        o->copy(o, x0, m->emb, A(m, (size_t)N * H));
    ops_dropout d = drop_for(m, c->emb_drop, DS_EMB, -1);
    if (d.p > 0) o->dropout_fwd(o, x0, x0, &d, (size_t)N * H);
}

static void attention_forward(bert_model *m, int l, const float *inp, float *branch) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    const bert_layer_idx *p = &m->layer[l];
    bert_layer_acts *a = &m->la[l];
    int B = m->B, S = m->S, H = c->H, N = B * S, HD = H / c->NH;
    int layout = c->kind == BERT_ARCH_CRAMMED ? OPS_QKV_HEAD_INTERLEAVED : OPS_QKV_BLOCKS;
    o->matmul_fwd(o, a->qkv, inp, W(m, p->qkv_w), W(m, p->qkv_b), N, H, 3 * H, 0);
    ops_dropout d = drop_for(m, c->attn_drop, DS_ATTN, l);
    o->attention_fwd(o, a->atty, a->probs, a->qkv, m->has_mask ? m->d_mask : NULL, &d, B, S, c->NH,
                     HD, 1.0f / sqrtf((float)HD), layout);
    o->matmul_fwd(o, branch, a->atty, W(m, p->o_w), W(m, p->o_b), N, H, H, 0);
    ops_dropout r = drop_for(m, c->hidden_drop, DS_RES1, l);
    if (r.p > 0) o->dropout_fwd(o, branch, branch, &r, (size_t)N * H);
}

static void ffn_forward(bert_model *m, int l, const float *inp, float *branch) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    const bert_layer_idx *p = &m->layer[l];
    bert_layer_acts *a = &m->la[l];
    int N = m->B * m->S, H = c->H, I = c->I, I_act = c->glu ? I / 2 : I;
    o->matmul_fwd(o, a->fin, inp, W(m, p->f1_w), W(m, p->f1_b), N, H, I, 0);
    if (c->glu)
        o->gelu_glu_fwd(o, a->fact, a->fin, N, I);
    else
        o->gelu_fwd(o, a->fact, a->fin, (size_t)N * I);
    o->matmul_fwd(o, branch, a->fact, W(m, p->f2_w), W(m, p->f2_b), N, I_act, H, 0);
    ops_dropout r = drop_for(m, c->hidden_drop, DS_RES2, l);
    if (r.p > 0) o->dropout_fwd(o, branch, branch, &r, (size_t)N * H);
}

static void encoder_forward(bert_model *m) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    int N = m->B * m->S, H = c->H;
    float *tmp = m->dtmp; /* free during the forward pass */
    for (int l = 0; l < c->L; l++) {
        const bert_layer_idx *p = &m->layer[l];
        bert_layer_acts *a = &m->la[l];
        if (c->kind == BERT_ARCH_CRAMMED) {
            /* mid = x + attn(LN1(x)); x' = mid + ffn(LN2(mid)) */
            o->layernorm_fwd(o, a->ln1, a->ln1_m, a->ln1_r, a->x, W(m, p->ln1_w), W(m, p->ln1_b), N,
                             H, c->eps);
            attention_forward(m, l, a->ln1, tmp);
            o->residual_layernorm_fwd(o, a->mid, a->ln2, a->ln2_m, a->ln2_r, a->x, tmp,
                                      W(m, p->ln2_w), W(m, p->ln2_b), N, H, c->eps);
            ffn_forward(m, l, a->ln2, tmp);
            o->add(o, m->la[l + 1].x, a->mid, tmp, (size_t)N * H);
        } else {
            /* ln1 = LN1(x + attn(x)); x' = LN2(ln1 + ffn(ln1)) */
            attention_forward(m, l, a->x, tmp);
            o->residual_layernorm_fwd(o, a->mid, a->ln1, a->ln1_m, a->ln1_r, a->x, tmp,
                                      W(m, p->ln1_w), W(m, p->ln1_b), N, H, c->eps);
            ffn_forward(m, l, a->ln1, tmp);
            o->residual_layernorm_fwd(o, a->mid2, m->la[l + 1].x, a->ln2_m, a->ln2_r, a->ln1, tmp,
                                      W(m, p->ln2_w), W(m, p->ln2_b), N, H, c->eps);
        }
    }
    const float *xL = m->la[c->L].x;
    if (c->final_norm)
        o->layernorm_fwd(o, m->hfin, m->hfin_m, m->hfin_r, xL, W(m, m->fin_ln_w), W(m, m->fin_ln_b),
                         N, H, c->eps);
    else
        o->copy(o, m->hfin, xL, A(m, (size_t)N * H));
}

/* The host side of the MLM head: the rows to decode and their labels, uploaded before any kernel
 * of the microstep is queued, since an upload from pageable memory waits for the stream to
 * drain. Returns false when there is nothing to decode (no labels and a sparse head). */
static bool mlm_prepare(bert_model *m, const int32_t *labels) {
    const ops *o = m->ops;
    int N = m->B * m->S, R = m->nrows;
    if (!labels) {
        /* no labels: decode every row, loss 0 (only when all rows are decoded) */
        for (int i = 0; i < N; i++)
            m->h_labels[i] = -100;
        m->nvalid = 0;
        if (R != N) return false;
        for (int i = 0; i < N; i++)
            m->h_idx[i] = i;
    } else {
        m->nvalid = choose_rows(m, labels, N);
    }
    o->upload(o, m->d_idx, m->h_idx, (size_t)R * sizeof(int32_t));
    o->upload(o, m->d_labels, m->h_labels, (size_t)R * sizeof(int32_t));
    return true;
}

static double mlm_forward(bert_model *m, const int32_t *labels, bool prepared) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    int N = m->B * m->S, H = c->H, R = m->nrows;
    if (!prepared) return 0.0;
    const float *x = m->hfin;
    if (R != N) {
        o->gather_rows(o, m->gath, m->hfin, m->d_idx, R, H);
        x = m->gath;
    }
    if (c->head_transform) {
        o->matmul_fwd(o, m->ht_pre, x, W(m, m->ht_w), W(m, m->ht_b), R, H, H, 0);
        o->gelu_fwd(o, m->ht_act, m->ht_pre, (size_t)R * H);
        o->layernorm_fwd(o, m->ht_ln, m->ht_m, m->ht_r, m->ht_act, W(m, m->ht_ln_w),
                         W(m, m->ht_ln_b), R, H, c->eps);
        x = m->ht_ln;
    }
    o->matmul_fwd(o, m->logits, x, W(m, m->wte), W(m, m->dec_b), R, H, c->V, 0);
    /* the gradient of the mean loss comes out of the same pass; backward only rescales it */
    CORE_CHECK(m->grad_scale > 0 && isfinite(m->grad_scale), "bert_model.grad_scale is %g",
               (double)m->grad_scale);
    m->xent_scale = m->grad_scale;
    o->xent_fwd_bwd(o, m->losses, m->grad_enabled ? m->dlogits : NULL, m->logits, m->d_labels, R,
                    c->V, m->nvalid ? m->grad_scale / (float)m->nvalid : 0.0f);
    if (m->nvalid == 0) return labels ? NAN : 0.0;
    if (!m->fetch_loss) return NAN; /* read later (bert_mlm_loss) or kept on the backend */
    return o->sum(o, m->losses, (size_t)R) / m->nvalid;
}

double bert_mlm_loss(const bert_model *m) {
    CORE_CHECK(m->arena && m->cfg.num_labels == 0, "bert_mlm_loss needs an MLM forward");
    if (m->cfg.kind == BERT_ARCH_SANITY || m->nvalid == 0) return m->loss; /* set by the forward */
    return m->ops->sum(m->ops, m->losses, (size_t)m->nrows) / m->nvalid;
}

static void load_inputs(bert_model *m, const int32_t *ids, const int32_t *types, const float *mask,
                        int B, int S, bool training, uint64_t seed, uint64_t step) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    bert_acts_ensure(m, B, S);
    int N = B * S;
    m->training = training;
    m->seed = seed;
    m->step = step;
    m->has_mask = mask != NULL;
    for (int i = 0; i < N; i++)
        CORE_CHECK(ids[i] >= 0 && ids[i] < c->V, "token id %d outside the vocabulary of %d", ids[i],
                   c->V);
    if (types)
        for (int i = 0; i < N; i++)
            CORE_CHECK(types[i] >= 0 && types[i] < (c->type_vocab > 0 ? c->type_vocab : 1),
                       "token type %d outside the %d types of the model", types[i], c->type_vocab);
    o->upload(o, m->d_ids, ids, (size_t)N * sizeof(int32_t));
    if (types)
        o->upload(o, m->d_types, types, (size_t)N * sizeof(int32_t));
    else
        o->memset0(o, m->d_types, (size_t)N * sizeof(int32_t));
    if (mask) o->upload(o, m->d_mask, mask, (size_t)N * sizeof(float));
}

double bert_forward_cls(bert_model *m, const int32_t *ids, const int32_t *types, const float *mask,
                        const int32_t *labels, const float *targets, int B, int S, bool training,
                        uint64_t seed, uint64_t step) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    CORE_CHECK(c->num_labels > 0 && c->kind != BERT_ARCH_SANITY, "the model has no classifier");
    load_inputs(m, ids, types, mask, B, S, training, seed, step);
    int NL = c->num_labels;
    /* the labels go up before any kernel is queued (a pageable upload waits for the stream) */
    m->nvalid = 0;
    if (NL > 1 && labels) {
        for (int i = 0; i < B; i++)
            m->nvalid += labels[i] != -100;
        o->upload(o, m->d_labels, labels, (size_t)B * sizeof(int32_t));
    } else if (NL == 1 && targets) {
        o->upload(o, m->d_targets, targets, (size_t)B * sizeof(float));
        m->nvalid = B;
    }
    embed_forward(m);
    encoder_forward(m);
    int H = c->H, D = c->cls_ff ? c->head_dim : H;
    o->pool_fwd(o, m->pooled, m->hfin, c->kind == BERT_ARCH_HF ? 0 : c->pool_mode, B, S, H);
    if (c->cls_ff)
        o->matmul_fwd(o, m->pool_pre, m->pooled, W(m, m->pool_w), W(m, m->pool_b), B, H, D, 0);
    else
        o->copy(o, m->pool_pre, m->pooled, A(m, (size_t)B * H));
    o->tanh_fwd(o, m->pool_act, m->pool_pre, (size_t)B * D);
    ops_dropout d = drop_for(m, c->cls_drop, DS_CLS, -1);
    o->dropout_fwd(o, m->pool_drop, m->pool_act, &d, (size_t)B * D);
    o->matmul_fwd(o, m->cls_logits, m->pool_drop, W(m, m->cls_w), W(m, m->cls_b), B, D, NL, 0);
    /* the loss over B rows: cross-entropy or squared error, gradients prepared in the same op */
    m->loss = 0.0;
    if (NL > 1 && labels) {
        o->xent_fwd_bwd(o, m->losses, m->dcls, m->cls_logits, m->d_labels, B, NL,
                        m->nvalid ? 1.0f / (float)m->nvalid : 0.0f);
        m->loss = m->nvalid ? o->sum(o, m->losses, (size_t)B) / m->nvalid : 0.0;
    } else if (NL == 1 && targets) {
        o->mse_fwd_bwd(o, m->losses, m->dcls, m->cls_logits, m->d_targets, B);
        m->loss = o->sum(o, m->losses, (size_t)B) / B;
    } else {
        o->memset0(o, m->dcls, A(m, (size_t)B * NL));
    }
    return m->loss;
}

void bert_cls_logits(const bert_model *m, float *host) {
    m->ops->download_act(m->ops, host, m->cls_logits, (size_t)m->B * m->cfg.num_labels);
}

static void cls_backward(bert_model *m, float loss_scale) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    int B = m->B, N = B * m->S, H = c->H, D = c->cls_ff ? c->head_dim : H, NL = c->num_labels;
    float *ddrop = m->dpool, *dpre = A_at(m, m->dpool, (size_t)B * D);
    float *dpooled = A_at(m, dpre, (size_t)B * D);
    o->memset0(o, m->dhfin, A(m, (size_t)N * H));
    if (loss_scale != 1.0f) o->scale(o, m->dcls, loss_scale, (size_t)B * NL);
    o->matmul_bwd(o, ddrop, G(m, m->cls_w), G(m, m->cls_b), m->dcls, m->pool_drop, W(m, m->cls_w),
                  B, D, NL, 0);
    ops_dropout d = drop_for(m, c->cls_drop, DS_CLS, -1);
    o->dropout_fwd(o, ddrop, ddrop, &d, (size_t)B * D);
    o->tanh_bwd(o, dpre, ddrop, m->pool_act, (size_t)B * D);
    if (c->cls_ff)
        o->matmul_bwd(o, dpooled, G(m, m->pool_w), G(m, m->pool_b), dpre, m->pooled,
                      W(m, m->pool_w), B, H, D, 0);
    else
        o->copy(o, dpooled, dpre, A(m, (size_t)B * H));
    o->pool_bwd(o, m->dhfin, dpooled, c->kind == BERT_ARCH_HF ? 0 : c->pool_mode, B, m->S, H);
}

double bert_forward(bert_model *m, const int32_t *ids, const int32_t *types, const int32_t *labels,
                    const float *mask, int B, int S, bool training, uint64_t seed, uint64_t step) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    load_inputs(m, ids, types, mask, B, S, training, seed, step);
    int N = B * S;
    if (c->kind == BERT_ARCH_SANITY) {
        o->embed_fwd(o, m->emb, m->d_ids, NULL, W(m, m->wte), NULL, NULL, NULL, B, S, c->H);
        o->matmul_fwd(o, m->hfin, m->emb, W(m, m->san_w), NULL, N, c->H, c->H, 0);
        m->loss = o->sum_act(o, m->hfin, (size_t)N * c->H) / ((double)N * c->H);
        return m->loss;
    }
    CORE_CHECK(c->num_labels == 0, "bert_forward is the MLM model; use bert_forward_cls");
    bool prepared = mlm_prepare(m, labels);
    embed_forward(m);
    encoder_forward(m);
    m->loss = mlm_forward(m, labels, prepared);
    return m->loss;
}

/* ---- backward ---------------------------------------------------------------------------- */

static void attention_backward(bert_model *m, int l, const float *dbranch, const float *inp,
                               float *dinp, int accum) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    const bert_layer_idx *p = &m->layer[l];
    bert_layer_acts *a = &m->la[l];
    int B = m->B, S = m->S, H = c->H, N = B * S, HD = H / c->NH;
    int layout = c->kind == BERT_ARCH_CRAMMED ? OPS_QKV_HEAD_INTERLEAVED : OPS_QKV_BLOCKS;
    ops_dropout r = drop_for(m, c->hidden_drop, DS_RES1, l);
    if (r.p > 0) {
        o->dropout_fwd(o, m->dtmp, dbranch, &r, (size_t)N * H);
        dbranch = m->dtmp;
    }
    o->matmul_bwd(o, m->datty, G(m, p->o_w), G(m, p->o_b), dbranch, a->atty, W(m, p->o_w), N, H, H,
                  0);
    ops_dropout d = drop_for(m, c->attn_drop, DS_ATTN, l);
    o->attention_bwd(o, m->dqkv, m->datty, a->atty, a->qkv, a->probs, &d, B, S, c->NH, HD,
                     1.0f / sqrtf((float)HD), layout);
    o->matmul_bwd(o, dinp, G(m, p->qkv_w), G(m, p->qkv_b), m->dqkv, inp, W(m, p->qkv_w), N, H,
                  3 * H, accum);
}

static void ffn_backward(bert_model *m, int l, const float *dbranch, const float *inp, float *dinp,
                         int accum) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    const bert_layer_idx *p = &m->layer[l];
    bert_layer_acts *a = &m->la[l];
    int N = m->B * m->S, H = c->H, I = c->I, I_act = c->glu ? I / 2 : I;
    ops_dropout r = drop_for(m, c->hidden_drop, DS_RES2, l);
    if (r.p > 0) {
        o->dropout_fwd(o, m->dtmp, dbranch, &r, (size_t)N * H);
        dbranch = m->dtmp;
    }
    o->matmul_bwd(o, m->dfact, G(m, p->f2_w), G(m, p->f2_b), dbranch, a->fact, W(m, p->f2_w), N,
                  I_act, H, 0);
    if (c->glu)
        o->gelu_glu_bwd(o, m->dfin, m->dfact, a->fin, N, I);
    else
        o->gelu_bwd(o, m->dfin, m->dfact, a->fin, (size_t)N * I);
    o->matmul_bwd(o, dinp, G(m, p->f1_w), G(m, p->f1_b), m->dfin, inp, W(m, p->f1_w), N, H, I,
                  accum);
}

static void mlm_backward(bert_model *m, float loss_scale) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    int N = m->B * m->S, H = c->H, R = m->nrows;
    o->memset0(o, m->dhfin, A(m, (size_t)N * H));
    if (m->nvalid == 0) return;
    CORE_CHECK(m->grad_enabled, "bert_backward after a forward without gradients");
    if (loss_scale != m->xent_scale) /* not what the forward folded in */
        o->scale(o, m->dlogits, loss_scale / m->xent_scale, (size_t)R * c->V);
    const float *x = R != N ? m->gath : m->hfin;
    const float *dec_in = c->head_transform ? m->ht_ln : x;
    float *ddec_in = c->head_transform ? m->dht : (R != N ? m->dgath : m->dhfin);
    o->matmul_bwd(o, ddec_in, G(m, m->wte), G(m, m->dec_b), m->dlogits, dec_in, W(m, m->wte), R, H,
                  c->V, 0);
    if (c->head_transform) {
        float *dx = R != N ? m->dgath : m->dhfin;
        o->layernorm_bwd(o, m->dht, G(m, m->ht_ln_w), G(m, m->ht_ln_b), m->dht, m->ht_act,
                         W(m, m->ht_ln_w), m->ht_m, m->ht_r, R, H, 0);
        o->gelu_bwd(o, m->dht, m->dht, m->ht_pre, (size_t)R * H);
        o->matmul_bwd(o, dx, G(m, m->ht_w), G(m, m->ht_b), m->dht, x, W(m, m->ht_w), R, H, H, 0);
    }
    if (R != N) o->scatter_rows_add(o, m->dhfin, m->dgath, m->d_idx, R, H);
}

void bert_backward(bert_model *m, float loss_scale) {
    const ops *o = m->ops;
    const bert_config *c = &m->cfg;
    int B = m->B, S = m->S, N = B * S, H = c->H;
    CORE_CHECK(m->arena, "bert_backward before bert_forward");
    if (c->kind == BERT_ARCH_SANITY) {
        o->fill(o, m->dhfin, loss_scale / ((float)N * H), (size_t)N * H);
        o->matmul_bwd(o, m->emb, G(m, m->san_w), NULL, m->dhfin, m->emb, W(m, m->san_w), N, H, H,
                      0);
        /* m->emb now holds d(embedding); sanity-check keeps the pad row's gradient at zero */
        o->embed_bwd(o, G(m, m->wte), NULL, NULL, NULL, m->emb, m->d_ids, NULL, NULL, NULL,
                     c->pad_id, B, S, H, c->V, 0);
        return;
    }
    if (c->num_labels > 0)
        cls_backward(m, loss_scale);
    else
        mlm_backward(m, loss_scale);
    float *dres = m->dres;
    const float *xL = m->la[c->L].x;
    if (c->final_norm)
        o->layernorm_bwd(o, dres, G(m, m->fin_ln_w), G(m, m->fin_ln_b), m->dhfin, xL,
                         W(m, m->fin_ln_w), m->hfin_m, m->hfin_r, N, H, 0);
    else
        o->copy(o, dres, m->dhfin, A(m, (size_t)N * H));
    for (int l = c->L - 1; l >= 0; l--) {
        const bert_layer_idx *p = &m->layer[l];
        bert_layer_acts *a = &m->la[l];
        if (c->kind == BERT_ARCH_CRAMMED) {
            /* dres = d x'; d mid = dres + LN2'(ffn'(dres)); d x = d mid + LN1'(attn'(d mid)) */
            ffn_backward(m, l, dres, a->ln2, m->dln, 0);
            o->layernorm_bwd(o, dres, G(m, p->ln2_w), G(m, p->ln2_b), m->dln, a->mid,
                             W(m, p->ln2_w), a->ln2_m, a->ln2_r, N, H, 1);
            attention_backward(m, l, dres, a->ln1, m->dln, 0);
            o->layernorm_bwd(o, dres, G(m, p->ln1_w), G(m, p->ln1_b), m->dln, a->x, W(m, p->ln1_w),
                             a->ln1_m, a->ln1_r, N, H, 1);
        } else {
            /* d mid2 = LN2'(dres); d ln1 = d mid2 + ffn'(d mid2); d mid = LN1'(d ln1);
             * d x = d mid + attn'(d mid) */
            o->layernorm_bwd(o, m->dmid, G(m, p->ln2_w), G(m, p->ln2_b), dres, a->mid2,
                             W(m, p->ln2_w), a->ln2_m, a->ln2_r, N, H, 0);
            ffn_backward(m, l, m->dmid, a->ln1, dres, 0);
            o->add(o, dres, dres, m->dmid, (size_t)N * H);
            o->layernorm_bwd(o, m->dmid, G(m, p->ln1_w), G(m, p->ln1_b), dres, a->mid,
                             W(m, p->ln1_w), a->ln1_m, a->ln1_r, N, H, 0);
            attention_backward(m, l, m->dmid, a->x, dres, 0);
            o->add(o, dres, dres, m->dmid, (size_t)N * H);
        }
    }
    /* embedding: dropout, LN, lookup */
    ops_dropout d = drop_for(m, c->emb_drop, DS_EMB, -1);
    if (d.p > 0) o->dropout_fwd(o, dres, dres, &d, (size_t)N * H);
    float *demb = dres;
    if (c->emb_norm) {
        o->layernorm_bwd(o, m->dln, G(m, m->emb_ln_w), G(m, m->emb_ln_b), dres, m->emb,
                         W(m, m->emb_ln_w), m->emb_m, m->emb_r, N, H, 0);
        demb = m->dln;
    }
    const float *wpe = c->pos == BERT_POS_LEARNED ? W(m, m->wpe) : m->pe;
    o->embed_bwd(o, G(m, m->wte), c->pos == BERT_POS_LEARNED ? G(m, m->wpe) : NULL,
                 G(m, m->pos_scale), G(m, m->tte), demb, m->d_ids, m->d_types,
                 c->pos == BERT_POS_NONE ? NULL : wpe, W(m, m->pos_scale), c->pad_id, B, S, H, c->V,
                 c->type_vocab);
}

void bert_eval_add(bert_model *m) {
    const ops *o = m->ops;
    CORE_CHECK(m->arena && m->cfg.num_labels == 0 && m->cfg.kind != BERT_ARCH_SANITY,
               "bert_eval_add needs an MLM forward");
    CORE_CHECK(!m->grad_enabled, "bert_eval_add needs the logits: set grad_enabled = false");
    if (m->nvalid == 0) return;
    o->accumulate(o, &m->d_acc[0], m->losses, (size_t)m->nrows);
    o->count_correct(o, m->hits, m->logits, m->d_labels, m->nrows, m->cfg.V);
    o->accumulate(o, &m->d_acc[1], m->hits, (size_t)m->nrows);
}
