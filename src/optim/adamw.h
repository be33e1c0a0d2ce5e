/* Host reference optimizer over one flat fp32 buffer: PyTorch's AdamW (decoupled weight decay)
 * and classic Adam with L2 added to the gradient (bert-original), weight-decay groups as spans
 * of the buffer, and the global L2 gradient norm with clip_grad_norm_ semantics. OpenMP inside;
 * every result is bit-identical for any thread count (the norm sums fixed chunks in a fixed
 * order). */
#ifndef CRAM_OPTIM_ADAMW_H
#define CRAM_OPTIM_ADAMW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cfg_node cfg_node;

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

/* The update on n contiguous elements with weight decay wd (0: none). g is multiplied by
 * grad_scale first (clipping and loss-scale folding; 1 for none) and is not modified.
 * t >= 1 is the number of updates including this one (bias corrections). */
void adamw_update(float *p, const float *g, float *m, float *v, size_t n, double lr, double wd,
                  const adamw_hparams *hp, float grad_scale, int64_t t);

/* The update over every span: weight decay hp->weight_decay where span.decay, else 0. Spans
 * are independent (they may come in any order) and must not overlap. */
void adamw_step(float *p, const float *g, float *m, float *v, const adamw_span *spans, int nspans,
                double lr, const adamw_hparams *hp, float grad_scale, int64_t t);

/* Sum of squares in double: 256 fixed chunks, each summed with 8 interleaved accumulators, the
 * chunks added in order. The value depends on x and n only. */
double adamw_sumsq(const float *x, size_t n);

/* sqrt of adamw_sumsq. */
double adamw_global_norm(const float *g, size_t n);

/* PyTorch clip_grad_norm_: coef = max_norm / (norm + 1e-6) in fp32, clamped to 1. */
float adamw_clip_coef(double norm, double max_norm);

/* Clips g in place (multiplies by the coefficient when it is below 1) and returns the norm
 * before clipping. */
double adamw_clip_grad_norm(float *g, size_t n, double max_norm);

/* The reference's decay groups: a parameter is *not* decayed when any of keys occurs in its
 * dotted name as a substring. */
bool adamw_name_decays(const char *name, const char *const *keys, int nkeys);

/* Reads `<prefix>.type` (AdamW or Adam), lr, betas, eps, weight_decay and amsgrad (must be
 * false) from a resolved config, e.g. prefix "train.optim". Returns 0, or -1 with a message. */
int adamw_hparams_from_cfg(const cfg_node *root, const char *prefix, adamw_hparams *hp, double *lr,
                           char *err, size_t errlen);

#endif
