/* AdamW's hyper-parameters from the config, the clipping coefficient, the decay groups, and the
 * one optimizer step the product runs (all-reduce, clip, update, zero, working copy). The update
 * itself is the backend's `adamw` op, written in the order of PyTorch's single-tensor AdamW. */
#include "optim/adamw.h"

#include "config/config.h"
#include "dist/dist.h"
#include "model/model.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

void adamw_spans(const ops *o, float *p, float *pa, const float *g, float *m, float *v,
                 const adamw_span *spans, int nspans, double lr, const adamw_hparams *hp,
                 float grad_scale, int64_t t) {
    for (int s = 0; s < nspans; s++) {
        const adamw_span *sp = &spans[s];
        size_t off = sp->offset;
        o->adamw(o, p + off, pa ? (float *)((char *)pa + off * (size_t)o->act_bytes) : NULL,
                 g + off, m + off, v + off, sp->count, lr, hp->beta1, hp->beta2, hp->eps,
                 sp->decay ? hp->weight_decay : 0.0, grad_scale, t, hp->coupled);
    }
}

int adamw_model_spans(const bert_model *m, adamw_span *spans, int cap) {
    /* runs of neighbouring tensors with the same decay flag make one span each */
    int n = 0, i = 0;
    while (i < m->nparams) {
        int j = i;
        while (j + 1 < m->nparams && m->params[j + 1].decay == m->params[i].decay)
            j++;
        size_t off = m->params[i].offset;
        if (n < cap)
            spans[n] = (adamw_span){off, m->params[j].offset + m->params[j].numel - off,
                                    m->params[i].decay};
        n++;
        i = j + 1;
    }
    return n;
}

double adamw_model_step(bert_model *m, dist *d, const adamw_hparams *hp, double lr, double clip,
                        int64_t t) {
    const ops *o = m->ops;
    if (d && d->world > 1) dist_allreduce_avg(d, m->g, m->numel);
    double norm = NAN;
    float gs = 1.0f;
    if (clip > 0) {
        norm = sqrt(o->sumsq(o, m->g, m->numel));
        gs = adamw_clip_coef(norm, clip);
    }
    int n = adamw_model_spans(m, NULL, 0);
    adamw_span stack[64], *spans = n <= 64 ? stack : xmalloc((size_t)n * sizeof *spans);
    adamw_model_spans(m, spans, n);
    adamw_spans(o, m->w, m->wa == m->w ? NULL : m->wa, m->g, m->m, m->v, spans, n, lr, hp, gs, t);
    if (spans != stack) free(spans);
    o->memset0(o, m->g, m->numel * sizeof(float));
    return norm;
}

float adamw_clip_coef(double norm, double max_norm) {
    float coef = (float)max_norm / ((float)norm + 1e-6f);
    if (coef != coef) return coef; /* NaN stays NaN, as torch.clamp does */
    return coef < 1.0f ? coef : 1.0f;
}

bool adamw_name_decays(const char *name, const char *const *keys, int nkeys) {
    for (int k = 0; k < nkeys; k++)
        if (keys[k] && strstr(name, keys[k])) return false;
    return true;
}

static int get_num(const cfg_node *root, const char *prefix, const char *key, double *out,
                   char *err, size_t errlen) {
    char path[256];
    cfg_error e;
    snprintf(path, sizeof path, "%s.%s", prefix, key);
    if (cfg_get_num(root, path, out, &e) != 0) {
        if (err && errlen) snprintf(err, errlen, "%s", e.msg);
        return -1;
    }
    return 0;
}

int adamw_hparams_from_cfg(const cfg_node *root, const char *prefix, adamw_hparams *hp, double *lr,
                           char *err, size_t errlen) {
    char path[256];
    cfg_error e;
    memset(hp, 0, sizeof *hp);
    const char *type = NULL;
    snprintf(path, sizeof path, "%s.type", prefix);
    if (cfg_get_str(root, path, &type, &e) != 0) {
        if (err && errlen) snprintf(err, errlen, "%s", e.msg);
        return -1;
    }
    if (strcmp(type, "AdamW") == 0)
        hp->coupled = false;
    else if (strcmp(type, "Adam") == 0)
        hp->coupled = true;
    else {
        if (err && errlen)
            snprintf(err, errlen, "%s: optimizer '%s' is not implemented (valid: AdamW, Adam)",
                     path, type);
        return -1;
    }
    if (get_num(root, prefix, "lr", lr, err, errlen) ||
        get_num(root, prefix, "eps", &hp->eps, err, errlen) ||
        get_num(root, prefix, "weight_decay", &hp->weight_decay, err, errlen))
        return -1;
    snprintf(path, sizeof path, "%s.betas", prefix);
    const cfg_node *betas = cfg_get(root, path);
    double b[2];
    if (!betas || betas->type != CFG_LIST || betas->n != 2) {
        if (err && errlen) snprintf(err, errlen, "%s: expected a list of two numbers", path);
        return -1;
    }
    for (int k = 0; k < 2; k++) {
        const cfg_node *it = betas->items[k];
        if (it->type == CFG_INT)
            b[k] = (double)it->i;
        else if (it->type == CFG_FLOAT)
            b[k] = it->f;
        else {
            if (err && errlen) snprintf(err, errlen, "%s: expected a list of two numbers", path);
            return -1;
        }
        if (!(b[k] >= 0 && b[k] < 1)) {
            if (err && errlen) snprintf(err, errlen, "%s: each beta must be in [0, 1)", path);
            return -1;
        }
    }
    hp->beta1 = b[0];
    hp->beta2 = b[1];
    snprintf(path, sizeof path, "%s.amsgrad", prefix);
    const cfg_node *ams = cfg_get(root, path);
    if (ams && ams->type == CFG_BOOL && ams->b) {
        if (err && errlen) snprintf(err, errlen, "%s: amsgrad=True is not implemented", path);
        return -1;
    }
    if (!(*lr >= 0) || !(hp->eps > 0) || !(hp->weight_decay >= 0)) {
        if (err && errlen)
            snprintf(err, errlen, "%s: need lr >= 0, eps > 0 and weight_decay >= 0", prefix);
        return -1;
    }
    return 0;
}
