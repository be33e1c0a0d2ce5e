/* The models: crammed-bert (pre-LN ScriptableCrammedBERT), the post-LN Hugging Face BERT
 * family and the sanity-check throughput model, built from the resolved `arch` config. One
 * parameter table drives allocation (params, grads and both AdamW moments in ONE fp32 buffer,
 * plus the working copy the kernels read), initialization, checkpoint names and weight-decay
 * groups. Forward and backward are written once against `struct ops`; no backend memory is
 * dereferenced here, and activations are sized by the backend's act_bytes. */
#ifndef CRAM_MODEL_MODEL_H
#define CRAM_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "ops/ops.h"

typedef enum {
    BERT_ARCH_CRAMMED = 0, /* ScriptableCrammedBERT: pre-LN, reference names */
    BERT_ARCH_HF = 1,      /* BertForMaskedLM: post-LN, Hugging Face names */
    BERT_ARCH_SANITY = 2,  /* SanityCheckLM: embedding + one linear, loss = mean output */
} bert_arch_kind;

typedef enum {
    BERT_POS_NONE = 0,
    BERT_POS_LEARNED,
    BERT_POS_SINUSOIDAL,
    BERT_POS_SCALED_SINUSOIDAL,
} bert_pos_kind;

typedef struct bert_config {
    bert_arch_kind kind;
    char arch_name[64]; /* the class name the reference logs, e.g. ScriptableCrammedBERT */
    int L, H, NH, I, V; /* layers, hidden, heads, FFN width (before GLU halving), vocab */
    int max_pos;        /* rows of the position table */
    int type_vocab;     /* token-type rows (0: none) */
    bool glu;           /* GELUglu FFN (I -> I/2) instead of GELU */
    bool use_bias;      /* biases in attention output and FFN dense layers */
    bool qkv_bias;
    bool decoder_bias;
    bool final_norm;     /* LN after the last block (crammed) */
    bool head_transform; /* dense + GELU + LN before the decoder */
    bool emb_norm;       /* LN after the embedding sum */
    bert_pos_kind pos;
    int pad_id;         /* embedding row without lookup gradient; -1 none */
    float eps;          /* every LayerNorm */
    float init_std;     /* normal init std after init.type */
    float hidden_drop;  /* residual branches */
    float attn_drop;    /* attention probabilities */
    float emb_drop;     /* after the embedding LN */
    double sparse_pred; /* share of rows decoded (0: all rows) */
    /* classification head; num_labels == 0 builds the pretraining head */
    int num_labels;
    int pool_mode; /* 0 zero_index, 1 avg */
    bool cls_ff;   /* pooler dense layer */
    int head_dim;
    float cls_drop;
} bert_config;

/* Fill `c` from the resolved config root (reads root.arch); vocab_size > 0 overrides
 * arch.embedding.vocab_size. Returns 0, or -1 with a message naming the offending key. */
int bert_config_from_cfg(bert_config *c, const cfg_node *root, int vocab_size, char *err,
                         size_t errlen);

typedef enum {
    BERT_INIT_NORMAL = 0, /* N(0, init_std) */
    BERT_INIT_ZERO,
    BERT_INIT_ONE,
    BERT_INIT_POS_SCALE, /* 1/sqrt(H) */
} bert_init_kind;

typedef struct bert_param {
    char name[96];  /* checkpoint name (reference names for crammed-bert, HF names for BERT) */
    char alias[96]; /* a second name the same tensor is also saved under (tied), or "" */
    int ndim;
    int64_t shape[2];
    size_t offset, numel; /* in floats, into each of the four parts of the flat buffer */
    bool decay;
    bert_init_kind init;
} bert_param;

/* Indices into the parameter table; -1 when the architecture has no such tensor. */
typedef struct bert_layer_idx {
    int ln1_w, ln1_b, qkv_w, qkv_b, o_w, o_b, ln2_w, ln2_b, f1_w, f1_b, f2_w, f2_b;
} bert_layer_idx;

typedef struct bert_layer_acts {
    float *x;                   /* [N,H] block input */
    float *ln1, *ln1_m, *ln1_r; /* pre-LN: LN1(x); post-LN: LN1(mid) */
    float *qkv, *probs, *atty;  /* [N,3H], attention state, [N,H] */
    float *mid;                 /* [N,H] pre-LN: x + attn; post-LN: x + attn before LN1 */
    float *ln2, *ln2_m, *ln2_r; /* pre-LN: LN2(mid) */
    float *fin, *fact;          /* [N,I] FFN pre-activation, [N,I or I/2] */
    float *mid2;                /* post-LN: ln1 + ffn before LN2 */
} bert_layer_acts;

/* the element alignment of every tensor in the flat parameter buffer */
#define BERT_PARAM_ALIGN 16

typedef struct bert_model {
    bert_config cfg;
    const ops *ops;
    int nparams;
    bert_param *params;
    size_t numel; /* floats of the flat parameter buffer: the tensors, each starting on a
                   * BERT_PARAM_ALIGN boundary, and the zero gaps between them */
    size_t count; /* parameters (the tied decoder counted once): bert_num_params */
    /* one backend buffer of 4*numel floats: params | grads | adam m | adam v (fp32) */
    float *mem, *w, *g, *m, *v;
    /* the working copy of the weights the kernels read, numel elements of act_bytes: the fp32
     * masters themselves (wa == w) when act_bytes == 4, else its own buffer (bf16). Every write
     * of w goes through bert_weights_changed or the optimizer, which keep it current. */
    float *wa;
    /* parameter indices */
    int wte, wpe, pos_scale, tte, emb_ln_w, emb_ln_b, fin_ln_w, fin_ln_b;
    int ht_w, ht_b, ht_ln_w, ht_ln_b, dec_b, san_w;
    int pool_w, pool_b, cls_w, cls_b;
    bert_layer_idx *layer;
    float *pe; /* [max_pos,H] fixed sinusoid table (backend memory) or NULL */

    /* activations for the (B,S) of the last bert_acts_ensure */
    int B, S, nrows; /* nrows: decoded rows */
    void *arena;
    size_t arena_cap; /* bytes the arena holds; it is reused while a shape fits */
    float *emb, *emb_m, *emb_r;
    bert_layer_acts *la; /* L entries, plus la[L].x = last block output */
    float *hfin, *hfin_m, *hfin_r;
    float *gath, *ht_pre, *ht_act, *ht_ln, *ht_m, *ht_r, *logits, *dlogits, *losses;
    float *pooled, *pool_pre, *pool_act, *pool_drop, *cls_logits, *dcls;
    int32_t *d_ids, *d_types, *d_labels, *d_idx;
    float *d_mask, *d_targets, *hits; /* fp32: [B,S] mask, [B] regression targets, [rows] */
    double *d_acc; /* backend totals: [0] loss sum, [1] correct predictions (bert_eval_*) */
    /* backward scratch */
    float *dres, *dln, *dqkv, *datty, *dfin, *dfact, *dtmp, *dmid, *dhfin, *dgath, *dht;
    float *dpool;
    /* host copies for the step */
    int32_t *h_labels, *h_idx;
    int nvalid;
    bool has_mask, training;
    /* default true: the MLM forward also prepares the loss gradient, in place over the logits
     * (one [rows, V] buffer less); set false to read m->logits after a forward (validation) */
    bool grad_enabled;
    /* default true: the forward returns the loss, one small read to the host (on a GPU, a wait
     * for the forward to finish). false: the forward returns NAN; validation keeps its totals on
     * the backend (bert_eval_add), and the trainer reads the loss with bert_mlm_loss after the
     * backward is queued, so the device never waits for the host inside a microstep */
    bool fetch_loss;
    /* default 1: the backward's loss scale, when the caller knows it before the forward. The MLM
     * forward folds it into the loss gradient it prepares, so a backward with the same scale
     * needs no extra pass over the [rows, V] gradient (another scale still works: one pass). */
    float grad_scale;
    float xent_scale; /* the scale the last MLM forward folded in */
    uint64_t seed, step;
    uint32_t rank; /* data-parallel rank: keys the dropout masks (0 unless the trainer sets it) */
    double loss;
} bert_model;

/* Build the parameter table and allocate the flat buffer (zeroed). With o == NULL only the table
 * is built (parameter counts, names), nothing is allocated. */
void bert_init(bert_model *m, const bert_config *c, const ops *o);
void bert_free(bert_model *m);
/* Draw the initial weights from Philox (seed), then upload. See docs/model.md for the tied
 * decoder: like the reference, the pad row of a tied crammed-bert embedding is NOT zero. */
void bert_init_weights(bert_model *m, uint64_t seed);
/* "Model with architecture X loaded with N parameters." */
void bert_log_summary(const bert_model *m);
size_t bert_num_params(const bert_model *m);
int bert_find_param(const bert_model *m, const char *name); /* index or -1 (name or alias) */
/* decay = no key is a substring of the name (the reference's limited_decay_keys) */
void bert_set_decay_keys(bert_model *m, char *const *keys, int nkeys);

/* Allocate the activation arena for batches of B sequences of length S (once per shape). */
void bert_acts_ensure(bert_model *m, int B, int S);

/* Backend bytes a model of config c holds on backend o once bert_init and bert_acts_ensure(B, S)
 * have run, computed by the same layout code as the allocations themselves, before anything is
 * allocated (o only answers act_bytes and attn_state_bytes). */
typedef struct bert_mem_plan {
    size_t numel;   /* parameters */
    size_t state;   /* fp32 weights, gradients and both AdamW moments: 16 bytes per parameter */
    size_t working; /* the working copy of the weights when it is not the fp32 masters (bf16) */
    size_t tables;  /* the sinusoid position table and the validation totals */
    size_t acts;    /* the activation arena of one (B, S) microbatch, backward scratch included */
    size_t total;
} bert_mem_plan;
void bert_plan_memory(bert_mem_plan *p, const bert_config *c, const ops *o, int B, int S);
/* The largest microbatch B in [1, B_max] whose bert_plan_memory total is at most avail bytes,
 * or 0 when not even B = 1 fits. */
int bert_plan_max_batch(const bert_config *c, const ops *o, int S, size_t avail, int B_max);

/* One forward pass of the pretraining model (num_labels == 0) or the classifier.
 * ids [B,S] host; labels host: [B,S] MLM labels (-100 ignored) or NULL; for a classifier [B]
 * class ids (or float bit patterns for regression, see bert_forward_cls). mask [B,S] host (1 keep,
 * 0 pad) or NULL. training enables dropout, keyed by (seed, step). Returns the loss. */
double bert_forward(bert_model *m, const int32_t *ids, const int32_t *types, const int32_t *labels,
                    const float *mask, int B, int S, bool training, uint64_t seed, uint64_t step);
/* The MLM loss of the last forward (the mean over its labelled tokens; NAN when there were
 * none, 0 without labels), read from the backend: for a forward run with fetch_loss false. */
double bert_mlm_loss(const bert_model *m);
/* The sequence classifier (cfg.num_labels > 0): pooler (zero_index or avg), dense +
 * Tanh + dropout, head. labels [B] class ids for num_labels > 1, targets [B] for regression
 * (num_labels == 1, MSE); both NULL: logits only, loss 0. Logits stay readable through
 * bert_cls_logits until the next forward. */
double bert_forward_cls(bert_model *m, const int32_t *ids, const int32_t *types, const float *mask,
                        const int32_t *labels, const float *targets, int B, int S, bool training,
                        uint64_t seed, uint64_t step);
void bert_cls_logits(const bert_model *m, float *host); /* [B, num_labels] */

/* Backward of the last forward: parameter gradients += d(loss_scale * loss)/dw. */
void bert_backward(bert_model *m, float loss_scale);
void bert_zero_grad(bert_model *m);

/* Global L2 norm of the gradient buffer. */
double bert_grad_norm(const bert_model *m);
/* The fp32 master weights were written (init, load, resume, import): refresh the working copy. */
void bert_weights_changed(bert_model *m);

/* Validation totals that stay on the backend: bert_eval_reset zeroes them, bert_eval_add adds
 * the last MLM forward's summed loss and correct predictions (argmax == label over the decoded
 * rows with a label), bert_eval_read downloads the two numbers (16 bytes). */
void bert_eval_reset(bert_model *m);
void bert_eval_add(bert_model *m);
void bert_eval_read(const bert_model *m, double *loss_sum, double *correct);

/* Host <-> backend copies of one parameter (numel floats of the fp32 masters; set refreshes
 * that parameter's working copy). */
void bert_param_get(const bert_model *m, int idx, float *host);
void bert_param_set(bert_model *m, int idx, const float *host);
void bert_grad_get(const bert_model *m, int idx, float *host);

#endif
