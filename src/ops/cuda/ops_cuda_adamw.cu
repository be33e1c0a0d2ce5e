// AdamW over the flat parameter buffer in one pass, writing the working copy (bf16, or a copy in
// fp32) as it goes. The arithmetic is the CPU row's, operation by operation, and this file is
// compiled without multiply-add contraction (CMakeLists.txt: -fmad=false), so each rounding
// happens where the CPU's does: the update is the CPU's bit for bit.
#include "ops/cuda/cuda_internal.h"

#include <math.h>

struct adamw_k {
    float b1, omb1, b2, omb2, eps, l2, decay, neg_step, bc2_sqrt, grad_scale;
    int coupled;
};

template <typename T>
__global__ static void k_adamw(float *p, void *pa_v, const float *g, float *m, float *v, size_t n,
                               adamw_k k) {
    T *pa = (T *)pa_v;
    GRID_STRIDE(i, n) {
        float pi = p[i] * k.decay;
        float gi = g[i] * k.grad_scale;
        if (k.coupled) gi = gi + k.l2 * pi;
        float mi = m[i] * k.b1 + k.omb1 * gi;
        float vi = v[i] * k.b2 + k.omb2 * gi * gi;
        float pn = pi + k.neg_step * mi / (sqrtf(vi) / k.bc2_sqrt + k.eps);
        p[i] = pn;
        m[i] = mi;
        v[i] = vi;
        if (pa) stA(pa, i, pn);
    }
}

static void cu_adamw(const ops *o, float *p, float *pa, const float *g, float *m, float *v,
                     size_t n, double lr, double beta1, double beta2, double eps,
                     double weight_decay, float grad_scale, int64_t t, int coupled) {
    if (!n) return;
    // the scalars as the CPU row forms them: in double, rounded to fp32 once
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    adamw_k k;
    k.neg_step = (float)(-(lr / bc1));
    k.bc2_sqrt = (float)sqrt(bc2);
    k.decay = coupled ? 1.0f : (float)(1.0 - lr * weight_decay);
    k.b1 = (float)beta1, k.omb1 = (float)(1.0 - beta1);
    k.b2 = (float)beta2, k.omb2 = (float)(1.0 - beta2);
    k.eps = (float)eps, k.l2 = (float)weight_decay, k.grad_scale = grad_scale;
    k.coupled = coupled;
    cuda_ctx *c = ctx_of(o);
    void *wa = pa == p ? NULL : pa; // fp32 with the masters as the working copy: nothing to write
    if (c->bf16 && pa == p) CUDA_DIE("adamw: the bf16 working copy cannot be the fp32 masters");
    LAUNCH_A(o, k_adamw, grid_for(o, n, 256), 256, 0, p, wa, g, m, v, n, k);
}

void cuda_fill_adamw(ops *t) {
    t->adamw = cu_adamw;
}
