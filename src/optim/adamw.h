/* The optimizer over the model's flat fp32 buffer: PyTorch's AdamW (decoupled weight decay) and
 * classic Adam with L2 added to the gradient (bert-original), weight-decay groups as spans of
 * the buffer, clip_grad_norm_ semantics, and the one step pretraining and fine-tuning share.
 * The arithmetic is the backend's (ops->adamw, ops->sumsq): bit-identical for any thread
 * count on the CPU. */
#ifndef CRAM_OPTIM_ADAMW_H
#define CRAM_OPTIM_ADAMW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/ops.h"

typedef struct cfg_node cfg_node;
typedef struct bert_model bert_model;
typedef struct dist dist;

typedef struct adamw_hparams {
    double beta1, beta2, eps;
    double weight_decay; /* applied to spans whose decay flag is set */
    bool coupled;        /* false: AdamW, p -= lr*wd*p; true: Adam, g += wd*p (torch.optim.Adam) */
} adamw_hparams;

/* A run of the flat buffer that shares one decay flag (a parameter tensor, or several). */
typedef struct adamw_span {
    size_t offset, count;
    bool decay;
} adamw_span;

/* The backend's AdamW over every span: weight decay hp->weight_decay where span.decay, else 0.
 * p, g, m, v are the fp32 flat buffers (backend memory); pa, when not NULL, is the working
 * copy (act_bytes per element) the op rewrites from the new p. Spans must not overlap. */
void adamw_spans(const ops *o, float *p, float *pa, const float *g, float *m, float *v,
                 const adamw_span *spans, int nspans, double lr, const adamw_hparams *hp,
                 float grad_scale, int64_t t);

/* The model's decay spans (runs of neighbouring tensors with one decay flag); writes at most
 * cap of them and returns how many there are. */
int adamw_model_spans(const bert_model *m, adamw_span *spans, int cap);

/* THE optimizer step of pretraining and fine-tuning: average the gradients over the ranks of d
 * (NULL or one rank: nothing), clip to the global norm `clip` (0: no clipping), AdamW/Adam
 * update of the fp32 masters and the working copy, zero the gradients. Returns the gradient
 * norm before clipping (NAN when clip is 0: not computed). t >= 1 counts updates. */
double adamw_model_step(bert_model *m, dist *d, const adamw_hparams *hp, double lr, double clip,
                        int64_t t);

/* PyTorch clip_grad_norm_: coef = max_norm / (norm + 1e-6) in fp32, clamped to 1. */
float adamw_clip_coef(double norm, double max_norm);

/* The reference's decay groups: a parameter is *not* decayed when any of keys occurs in its
 * dotted name as a substring. */
bool adamw_name_decays(const char *name, const char *const *keys, int nkeys);

/* Reads `<prefix>.type` (AdamW or Adam), lr, betas, eps, weight_decay and amsgrad (must be
 * false) from a resolved config, e.g. prefix "train.optim". Returns 0, or -1 with a message. */
int adamw_hparams_from_cfg(const cfg_node *root, const char *prefix, adamw_hparams *hp, double *lr,
                           char *err, size_t errlen);

#endif
