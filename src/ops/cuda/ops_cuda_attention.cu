// Bidirectional attention with the CPU row's arithmetic: per (batch, head), scores = scale Q K^T
// plus the padding bias (1 - mask[key]) * -10000, a softmax in fp32 saved as the state, dropout
// with ops_dropout_keep's mask over the probabilities (element index (b NH + h) S^2 + i S + j,
// as on the CPU), out = P_dropped V. One warp owns one query row (forward and dQ) or one key row
// (dK, dV), so every sum has one fixed order and nothing is accumulated with atomics.
//
// This is the plain version the backend is verified with: it keeps the S x S probabilities and
// reads K and V through the cache. The fused kernel that keeps only the log-sum-exp is a speed
// change that must reproduce these numbers.
#include "ops/cuda/cuda_internal.h"
#include "ops/ops_math.h"

enum { AW = 4 }; // warps per block

struct qkv_at {
    size_t base;    // row 0 of this (batch, head)
    size_t q, k, v; // offsets of the head's q, k and v inside a row
    size_t rs;      // row stride: 3 H
};

__device__ static qkv_at qkv_of(int b, int h, int S, int NH, int HD, int layout) {
    qkv_at a;
    size_t H = (size_t)NH * HD;
    a.rs = 3 * H;
    a.base = (size_t)b * S * a.rs;
    if (layout == OPS_QKV_HEAD_INTERLEAVED) {
        a.q = (size_t)h * 3 * HD;
        a.k = a.q + HD;
        a.v = a.q + 2 * (size_t)HD;
    } else {
        a.q = (size_t)h * HD;
        a.k = a.q + H;
        a.v = a.q + 2 * H;
    }
    return a;
}

// P after dropout: P * keep / (1 - p), or P when there is no dropout
__device__ __forceinline__ float dropped(const ops_dropout &d, bool on, float inv, uint64_t idx,
                                         float x) {
    return !on ? x : (ops_dropout_keep(&d, idx) ? x * inv : 0.0f);
}

template <typename T>
__global__ static void k_attn_fwd(void *out_v, float *probs, const void *qkv_v, const float *mask,
                                  ops_dropout drop, int S, int NH, int HD, float scale,
                                  int layout) {
    extern __shared__ float sm[];
    const T *qkv = (const T *)qkv_v;
    T *out = (T *)out_v;
    int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, i = blockIdx.y * AW + warp;
    if (i >= S) return;
    float *sq = sm + (size_t)warp * (HD + S), *sp = sq + HD;
    qkv_at a = qkv_of(b, h, S, NH, HD, layout);
    bool on = drop.p > 0.0f;
    float inv_keep = 1.0f / (1.0f - drop.p);
    uint64_t pbase = (uint64_t)bh * S * S + (uint64_t)i * S;
    for (int t = lane; t < HD; t += 32)
        sq[t] = ldA(qkv, a.base + (size_t)i * a.rs + a.q + t);
    __syncwarp();
    float mx = -INFINITY;
    for (int j = lane; j < S; j += 32) {
        const T *kj = qkv + a.base + (size_t)j * a.rs + a.k;
        float dot = 0.0f;
        for (int t = 0; t < HD; t++)
            dot += sq[t] * ldA(kj, t);
        float s = scale * dot;
        if (mask) s += (1.0f - mask[(size_t)b * S + j]) * -10000.0f;
        sp[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < S; j += 32) {
        float e = ops_expf(sp[j] - mx);
        sp[j] = e;
        sum += e;
    }
    float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < S; j += 32) {
        float p = sp[j] * inv;
        probs[pbase + j] = p;
        sp[j] = dropped(drop, on, inv_keep, pbase + j, p);
    }
    __syncwarp();
    size_t H = (size_t)NH * HD;
    for (int t = lane; t < HD; t += 32) {
        float acc = 0.0f;
        for (int j = 0; j < S; j++)
            acc += sp[j] * ldA(qkv, a.base + (size_t)j * a.rs + a.v + t);
        stA(out, ((size_t)b * S + i) * H + (size_t)h * HD + t, acc);
    }
}

// Per query row i: dP_ij = dropout(dO_i . v_j), dot_i = sum_j P_ij dP_ij,
// dS_ij = P_ij (dP_ij - dot_i), dQ_i = scale sum_j dS_ij k_j; dot_i is kept for the key pass.
template <typename T>
__global__ static void k_attn_bwd_q(void *dqkv_v, float *dots, const void *dout_v,
                                    const void *qkv_v, const float *probs, ops_dropout drop, int S,
                                    int NH, int HD, float scale, int layout) {
    extern __shared__ float sm[];
    const T *qkv = (const T *)qkv_v, *dout = (const T *)dout_v;
    T *dqkv = (T *)dqkv_v;
    int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, i = blockIdx.y * AW + warp;
    if (i >= S) return;
    float *sdo = sm + (size_t)warp * (HD + S), *sd = sdo + HD;
    qkv_at a = qkv_of(b, h, S, NH, HD, layout);
    size_t H = (size_t)NH * HD, orow = ((size_t)b * S + i) * H + (size_t)h * HD;
    bool on = drop.p > 0.0f;
    float inv_keep = 1.0f / (1.0f - drop.p);
    uint64_t pbase = (uint64_t)bh * S * S + (uint64_t)i * S;
    for (int t = lane; t < HD; t += 32)
        sdo[t] = ldA(dout, orow + t);
    __syncwarp();
    float dot = 0.0f;
    for (int j = lane; j < S; j += 32) {
        const T *vj = qkv + a.base + (size_t)j * a.rs + a.v;
        float d = 0.0f;
        for (int t = 0; t < HD; t++)
            d += sdo[t] * ldA(vj, t);
        d = dropped(drop, on, inv_keep, pbase + j, d);
        sd[j] = d;
        dot += probs[pbase + j] * d;
    }
    dot = warp_sum(dot);
    for (int j = lane; j < S; j += 32)
        sd[j] = probs[pbase + j] * (sd[j] - dot);
    __syncwarp();
    for (int t = lane; t < HD; t += 32) {
        float acc = 0.0f;
        for (int j = 0; j < S; j++)
            acc += sd[j] * ldA(qkv, a.base + (size_t)j * a.rs + a.k + t);
        stA(dqkv, a.base + (size_t)i * a.rs + a.q + t, scale * acc);
    }
    if (lane == 0) dots[(size_t)bh * S + i] = dot;
}

// Per key row j: dV_j = sum_i Pdrop_ij dO_i, dK_j = scale sum_i dS_ij q_i, with dP_ij recomputed
// (the same dot product, in the same order, as the query pass).
template <typename T>
__global__ static void k_attn_bwd_kv(void *dqkv_v, const float *dots, const void *dout_v,
                                     const void *qkv_v, const float *probs, ops_dropout drop, int S,
                                     int NH, int HD, float scale, int layout) {
    extern __shared__ float sm[];
    const T *qkv = (const T *)qkv_v, *dout = (const T *)dout_v;
    T *dqkv = (T *)dqkv_v;
    int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, j = blockIdx.y * AW + warp;
    if (j >= S) return;
    float *sv = sm + (size_t)warp * (HD + 2 * S), *cv = sv + HD, *ck = cv + S;
    qkv_at a = qkv_of(b, h, S, NH, HD, layout);
    size_t H = (size_t)NH * HD;
    bool on = drop.p > 0.0f;
    float inv_keep = 1.0f / (1.0f - drop.p);
    for (int t = lane; t < HD; t += 32)
        sv[t] = ldA(qkv, a.base + (size_t)j * a.rs + a.v + t);
    __syncwarp();
    for (int i = lane; i < S; i += 32) {
        uint64_t idx = (uint64_t)bh * S * S + (uint64_t)i * S + j;
        const T *doi = dout + ((size_t)b * S + i) * H + (size_t)h * HD;
        float d = 0.0f;
        for (int t = 0; t < HD; t++)
            d += ldA(doi, t) * sv[t];
        float p = probs[idx];
        d = dropped(drop, on, inv_keep, idx, d);
        ck[i] = p * (d - dots[(size_t)bh * S + i]);
        cv[i] = dropped(drop, on, inv_keep, idx, p);
    }
    __syncwarp();
    for (int t = lane; t < HD; t += 32) {
        float accv = 0.0f, acck = 0.0f;
        for (int i = 0; i < S; i++) {
            accv += cv[i] * ldA(dout, ((size_t)b * S + i) * H + (size_t)h * HD + t);
            acck += ck[i] * ldA(qkv, a.base + (size_t)i * a.rs + a.q + t);
        }
        stA(dqkv, a.base + (size_t)j * a.rs + a.v + t, accv);
        stA(dqkv, a.base + (size_t)j * a.rs + a.k + t, scale * acck);
    }
}

static size_t smem_bytes(const ops *o, int S, int HD, int rows_of_s) {
    size_t b = (size_t)AW * (HD + (size_t)rows_of_s * S) * sizeof(float);
    if (b > (size_t)ctx_of(o)->smem_optin)
        CUDA_DIE("attention with S=%d and head width %d needs %zu bytes of shared memory per "
                 "block; this GPU allows %d",
                 S, HD, b, ctx_of(o)->smem_optin);
    return b;
}

template <typename T>
static void allow_smem(const void *fn, size_t bytes) {
    if (bytes > 48 * 1024)
        CK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

static ops_dropout drop_or_none(const ops_dropout *d) {
    ops_dropout z;
    memset(&z, 0, sizeof z);
    return d ? *d : z;
}

static void cu_attention_fwd(const ops *o, float *out, float *probs, const float *qkv,
                             const float *mask, const ops_dropout *drop, int B, int S, int NH,
                             int HD, float scale, int layout) {
    if (B <= 0 || S <= 0) return;
    size_t sm = smem_bytes(o, S, HD, 1);
    dim3 grid((unsigned)(B * NH), (unsigned)((S + AW - 1) / AW));
    ops_dropout d = drop_or_none(drop);
    if (ctx_of(o)->bf16) {
        allow_smem<bf16s>((const void *)k_attn_fwd<bf16s>, sm);
        k_attn_fwd<bf16s><<<grid, AW * 32, sm, ctx_of(o)->stream>>>(out, probs, qkv, mask, d, S, NH,
                                                                    HD, scale, layout);
    } else {
        allow_smem<float>((const void *)k_attn_fwd<float>, sm);
        k_attn_fwd<float><<<grid, AW * 32, sm, ctx_of(o)->stream>>>(out, probs, qkv, mask, d, S, NH,
                                                                    HD, scale, layout);
    }
    CK_LAUNCH();
}

static void cu_attention_bwd(const ops *o, float *dqkv, const float *dout, const float *qkv,
                             const float *probs, const ops_dropout *drop, int B, int S, int NH,
                             int HD, float scale, int layout) {
    if (B <= 0 || S <= 0) return;
    float *dots = (float *)ws_take(o, (size_t)B * NH * S * sizeof(float), "attention backward");
    size_t sq = smem_bytes(o, S, HD, 1), skv = smem_bytes(o, S, HD, 2);
    dim3 grid((unsigned)(B * NH), (unsigned)((S + AW - 1) / AW));
    ops_dropout d = drop_or_none(drop);
    cudaStream_t st = ctx_of(o)->stream;
    if (ctx_of(o)->bf16) {
        allow_smem<bf16s>((const void *)k_attn_bwd_q<bf16s>, sq);
        allow_smem<bf16s>((const void *)k_attn_bwd_kv<bf16s>, skv);
        k_attn_bwd_q<bf16s>
            <<<grid, AW * 32, sq, st>>>(dqkv, dots, dout, qkv, probs, d, S, NH, HD, scale, layout);
        CK_LAUNCH();
        k_attn_bwd_kv<bf16s>
            <<<grid, AW * 32, skv, st>>>(dqkv, dots, dout, qkv, probs, d, S, NH, HD, scale, layout);
    } else {
        allow_smem<float>((const void *)k_attn_bwd_q<float>, sq);
        allow_smem<float>((const void *)k_attn_bwd_kv<float>, skv);
        k_attn_bwd_q<float>
            <<<grid, AW * 32, sq, st>>>(dqkv, dots, dout, qkv, probs, d, S, NH, HD, scale, layout);
        CK_LAUNCH();
        k_attn_bwd_kv<float>
            <<<grid, AW * 32, skv, st>>>(dqkv, dots, dout, qkv, probs, d, S, NH, HD, scale, layout);
    }
    CK_LAUNCH();
}

void cuda_fill_attention(ops *t) {
    t->attention_fwd = cu_attention_fwd;
    t->attention_bwd = cu_attention_bwd;
}
