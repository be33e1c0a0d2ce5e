/* AdamW / Adam on the host, written in the order of PyTorch's single-tensor implementation so
 * that fp32 results stay within about 1e-6 (relative) of torch.optim: scalars are computed in
 * double (Python floats) and rounded to float where torch rounds them. */
#include "optim/adamw.h"

#include "config/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The elementwise loop as an orphaned worksharing loop: the enclosing parallel region's team
 * splits it (no barrier at the end: spans never overlap). The loops are branch-free so that GCC
 * vectorizes them at -O3 with -fno-math-errno (harmless here: v >= 0, so sqrtf never sets
 * errno); a per-function optimize attribute or pragma does not reach the sqrtf builtin. */
static void update_body(float *p, const float *g, float *m, float *v, size_t n, double lr,
                        double wd, const adamw_hparams *hp, float grad_scale, int64_t t) {
    const double bc1 = 1 - pow(hp->beta1, (double)t);
    const double bc2 = 1 - pow(hp->beta2, (double)t);
    const float b1 = (float)hp->beta1, omb1 = (float)(1 - hp->beta1);
    const float b2 = (float)hp->beta2, omb2 = (float)(1 - hp->beta2);
    const float neg_step = (float)(-(lr / bc1));
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)hp->eps;
    const float decay_mul = (float)(1 - lr * wd); /* AdamW: param.mul_(1 - lr*wd) */
    const float l2 = (float)wd;                   /* Adam: grad.add(param, alpha=wd) */
    const ptrdiff_t N = (ptrdiff_t)n;
    /* two branch-free loops so both vectorize; multiplying by a grad_scale of 1 is exact */
    if (hp->coupled && wd != 0) { /* Adam with wd 0 is AdamW with wd 0: below */
#pragma omp for schedule(static) nowait
        for (ptrdiff_t i = 0; i < N; i++) {
            float pi = p[i];
            float gi = g[i] * grad_scale;
            gi = gi + l2 * pi;
            float mi = m[i] * b1 + omb1 * gi;
            float vi = v[i] * b2 + omb2 * gi * gi;
            p[i] = pi + neg_step * mi / (sqrtf(vi) / bc2_sqrt + eps);
            m[i] = mi;
            v[i] = vi;
        }
    } else {
#pragma omp for schedule(static) nowait
        for (ptrdiff_t i = 0; i < N; i++) {
            float pi = p[i] * decay_mul;
            float gi = g[i] * grad_scale;
            float mi = m[i] * b1 + omb1 * gi;
            float vi = v[i] * b2 + omb2 * gi * gi;
            p[i] = pi + neg_step * mi / (sqrtf(vi) / bc2_sqrt + eps);
            m[i] = mi;
            v[i] = vi;
        }
    }
}

void adamw_update(float *p, const float *g, float *m, float *v, size_t n, double lr, double wd,
                  const adamw_hparams *hp, float grad_scale, int64_t t) {
    /* called from inside a parallel region, this inner region has one thread (nesting is off),
     * so the loop then runs on the calling thread */
#pragma omp parallel
    update_body(p, g, m, v, n, lr, wd, hp, grad_scale, t);
}

void adamw_step(float *p, const float *g, float *m, float *v, const adamw_span *spans, int nspans,
                double lr, const adamw_hparams *hp, float grad_scale, int64_t t) {
    /* one parallel region; each span's loop is a worksharing loop without a barrier */
#pragma omp parallel
    for (int s = 0; s < nspans; s++) {
        const adamw_span *sp = &spans[s];
        update_body(p + sp->offset, g + sp->offset, m + sp->offset, v + sp->offset, sp->count, lr,
                    sp->decay ? hp->weight_decay : 0.0, hp, grad_scale, t);
    }
}

#define SUMSQ_CHUNKS 256

double adamw_sumsq(const float *x, size_t n) {
    double part[SUMSQ_CHUNKS];
    const size_t chunk = (n + SUMSQ_CHUNKS - 1) / SUMSQ_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < SUMSQ_CHUNKS; c++) {
        size_t lo = (size_t)c * chunk, hi = lo + chunk;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
        double acc[8] = {0};
        size_t i = lo;
        for (; i + 8 <= hi; i += 8)
            for (int k = 0; k < 8; k++)
                acc[k] += (double)x[i + k] * (double)x[i + k];
        for (int k = 0; i < hi; i++, k++)
            acc[k] += (double)x[i] * (double)x[i];
        part[c] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
    double total = 0;
    for (int c = 0; c < SUMSQ_CHUNKS; c++)
        total += part[c];
    return total;
}

double adamw_global_norm(const float *g, size_t n) {
    return sqrt(adamw_sumsq(g, n));
}

float adamw_clip_coef(double norm, double max_norm) {
    float coef = (float)max_norm / ((float)norm + 1e-6f);
    if (coef != coef) return coef; /* NaN stays NaN, as torch.clamp does */
    return coef < 1.0f ? coef : 1.0f;
}

double adamw_clip_grad_norm(float *g, size_t n, double max_norm) {
    double norm = adamw_global_norm(g, n);
    float coef = adamw_clip_coef(norm, max_norm);
    if (!(coef < 1.0f) && coef == coef) return norm;
    const ptrdiff_t N = (ptrdiff_t)n;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t i = 0; i < N; i++)
        g[i] *= coef;
    return norm;
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
