// Bidirectional attention with the CPU row's arithmetic: per (batch, head), scores = scale Q K^T
// plus the padding bias (1 - mask[key]) * -10000, a softmax in fp32 saved as the state, dropout
// with ops_dropout_keep's mask over the probabilities (element index (b NH + h) S^2 + i S + j,
// as on the CPU), out = P_dropped V. One warp owns one query row (forward and dQ) or one key row
// (dK, dV), so every sum has one fixed order and nothing is accumulated with atomics.
//
// This is the plain version the backend is verified with: it keeps the S x S probabilities. When a
// head's K and V (or dO and Q) fit in shared memory, a block of 8 warps stages them once and
// works through all S rows of its (batch, head); otherwise each warp reads them through the
// cache. The fused kernel that keeps only the log-sum-exp is a speed change that must reproduce
// these numbers.
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

// One matrix of S rows of HD elements that a kernel reads row by row: in place in global memory
// (row r at base + r * rs + off), or staged in shared memory (row r at s + r * (HD + 1): the odd
// stride puts the 32 rows a warp reads at once in 32 different banks).
template <typename T, bool ST>
struct rows_of {
    const T *g;
    size_t base, rs, off;
    const float *s;
    int ld;
    __device__ __forceinline__ float at(int r, int t) const {
        if (ST) return s[(size_t)r * ld + t];
        return ldA(g, base + (size_t)r * rs + off + t);
    }
};

// the block copies S x HD elements into shared memory (as fp32) before any warp starts
template <typename T>
__device__ static void stage(float *dst, const T *g, size_t base, size_t rs, size_t off, int S,
                             int HD) {
    for (int idx = threadIdx.x; idx < S * HD; idx += blockDim.x) {
        int r = idx / HD, t = idx % HD;
        dst[(size_t)r * (HD + 1) + t] = ldA(g, base + (size_t)r * rs + off + t);
    }
}

// The two matrices a kernel reads by rows (x and y carry g, base, rs and off): with ST the block
// stages both into the start of shared memory and waits for it, else they stay in place. Returns
// where the warps' own scratch begins.
template <typename T, bool ST>
__device__ static float *stage_pair(rows_of<T, ST> &x, rows_of<T, ST> &y, float *sm, int S,
                                    int HD) {
    size_t n = (size_t)S * (HD + 1);
    x.s = sm, y.s = sm + n, x.ld = y.ld = HD + 1;
    if (!ST) return sm;
    stage(sm, x.g, x.base, x.rs, x.off, S, HD);
    stage(sm + n, y.g, y.base, y.rs, y.off, S, HD);
    __syncthreads();
    return sm + 2 * n;
}

// Each warp takes rows warp_id, warp_id + warps, ... of its block's share: with grid.y blocks per
// (batch, head), block y starts at y * warps-per-block.
#define FOR_EACH_ROW_OF_WARP(i)                                                                    \
    for (int i = blockIdx.y * (blockDim.x / 32) + threadIdx.x / 32; i < S;                         \
         i += gridDim.y * (blockDim.x / 32))

template <typename T, bool ST>
__global__ static void k_attn_fwd(void *out_v, float *probs, const void *qkv_v, const float *mask,
                                  ops_dropout drop, int S, int NH, int HD, float scale,
                                  int layout) {
    extern __shared__ float sm[];
    const T *qkv = (const T *)qkv_v;
    T *out = (T *)out_v;
    int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    qkv_at a = qkv_of(b, h, S, NH, HD, layout);
    rows_of<T, ST> K = {qkv, a.base, a.rs, a.k, NULL, 0};
    rows_of<T, ST> Vm = {qkv, a.base, a.rs, a.v, NULL, 0};
    float *scratch = stage_pair(K, Vm, sm, S, HD);
    float *sq = scratch + (size_t)warp * (HD + S), *sp = sq + HD;
    bool on = drop.p > 0.0f;
    float inv_keep = 1.0f / (1.0f - drop.p);
    size_t H = (size_t)NH * HD;
    FOR_EACH_ROW_OF_WARP(i) {
        uint64_t pbase = (uint64_t)bh * S * S + (uint64_t)i * S;
        __syncwarp(); // the previous row's readers of sq and sp are done
        for (int t = lane; t < HD; t += 32)
            sq[t] = ldA(qkv, a.base + (size_t)i * a.rs + a.q + t);
        __syncwarp();
        float mx = -INFINITY;
        for (int j = lane; j < S; j += 32) {
            float dot = 0.0f;
            for (int t = 0; t < HD; t++)
                dot += sq[t] * K.at(j, t);
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
        for (int t = lane; t < HD; t += 32) {
            float acc = 0.0f;
            for (int j = 0; j < S; j++)
                acc += sp[j] * Vm.at(j, t);
            stA(out, ((size_t)b * S + i) * H + (size_t)h * HD + t, acc);
        }
    }
}

// Per query row i: dP_ij = dropout(dO_i . v_j), dot_i = sum_j P_ij dP_ij,
// dS_ij = P_ij (dP_ij - dot_i), dQ_i = scale sum_j dS_ij k_j; dot_i is kept for the key pass.
template <typename T, bool ST>
__global__ static void k_attn_bwd_q(void *dqkv_v, float *dots, const void *dout_v,
                                    const void *qkv_v, const float *probs, ops_dropout drop, int S,
                                    int NH, int HD, float scale, int layout) {
    extern __shared__ float sm[];
    const T *qkv = (const T *)qkv_v, *dout = (const T *)dout_v;
    T *dqkv = (T *)dqkv_v;
    int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    qkv_at a = qkv_of(b, h, S, NH, HD, layout);
    rows_of<T, ST> K = {qkv, a.base, a.rs, a.k, NULL, 0};
    rows_of<T, ST> Vm = {qkv, a.base, a.rs, a.v, NULL, 0};
    float *scratch = stage_pair(K, Vm, sm, S, HD);
    float *sdo = scratch + (size_t)warp * (HD + S), *sd = sdo + HD;
    size_t H = (size_t)NH * HD;
    bool on = drop.p > 0.0f;
    float inv_keep = 1.0f / (1.0f - drop.p);
    FOR_EACH_ROW_OF_WARP(i) {
        size_t orow = ((size_t)b * S + i) * H + (size_t)h * HD;
        uint64_t pbase = (uint64_t)bh * S * S + (uint64_t)i * S;
        __syncwarp();
        for (int t = lane; t < HD; t += 32)
            sdo[t] = ldA(dout, orow + t);
        __syncwarp();
        float dot = 0.0f;
        for (int j = lane; j < S; j += 32) {
            float d = 0.0f;
            for (int t = 0; t < HD; t++)
                d += sdo[t] * Vm.at(j, t);
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
                acc += sd[j] * K.at(j, t);
            stA(dqkv, a.base + (size_t)i * a.rs + a.q + t, scale * acc);
        }
        if (lane == 0) dots[(size_t)bh * S + i] = dot;
    }
}

// Per key row j: dV_j = sum_i Pdrop_ij dO_i, dK_j = scale sum_i dS_ij q_i, with dP_ij recomputed
// (the same dot product, in the same order, as the query pass).
template <typename T, bool ST>
__global__ static void k_attn_bwd_kv(void *dqkv_v, const float *dots, const void *dout_v,
                                     const void *qkv_v, const float *probs, ops_dropout drop, int S,
                                     int NH, int HD, float scale, int layout) {
    extern __shared__ float sm[];
    const T *qkv = (const T *)qkv_v, *dout = (const T *)dout_v;
    T *dqkv = (T *)dqkv_v;
    int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    qkv_at a = qkv_of(b, h, S, NH, HD, layout);
    size_t H = (size_t)NH * HD, obase = (size_t)b * S * H + (size_t)h * HD;
    rows_of<T, ST> DO = {dout, obase, H, 0, NULL, 0};
    rows_of<T, ST> Q = {qkv, a.base, a.rs, a.q, NULL, 0};
    float *scratch = stage_pair(DO, Q, sm, S, HD);
    float *sv = scratch + (size_t)warp * (HD + 2 * S), *cv = sv + HD, *ck = cv + S;
    bool on = drop.p > 0.0f;
    float inv_keep = 1.0f / (1.0f - drop.p);
    FOR_EACH_ROW_OF_WARP(j) {
        __syncwarp();
        for (int t = lane; t < HD; t += 32)
            sv[t] = ldA(qkv, a.base + (size_t)j * a.rs + a.v + t);
        __syncwarp();
        for (int i = lane; i < S; i += 32) {
            uint64_t idx = (uint64_t)bh * S * S + (uint64_t)i * S + j;
            float d = 0.0f;
            for (int t = 0; t < HD; t++)
                d += DO.at(i, t) * sv[t];
            float p = probs[idx];
            d = dropped(drop, on, inv_keep, idx, d);
            ck[i] = p * (d - dots[(size_t)bh * S + i]);
            cv[i] = dropped(drop, on, inv_keep, idx, p);
        }
        __syncwarp();
        for (int t = lane; t < HD; t += 32) {
            float accv = 0.0f, acck = 0.0f;
            for (int i = 0; i < S; i++) {
                accv += cv[i] * DO.at(i, t);
                acck += ck[i] * Q.at(i, t);
            }
            stA(dqkv, a.base + (size_t)j * a.rs + a.v + t, accv);
            stA(dqkv, a.base + (size_t)j * a.rs + a.k + t, scale * acck);
        }
    }
}

// Shared memory of one block: the staged matrices (2 S (HD + 1) floats) when staged, plus per
// warp the row scratch (HD + rows_of_s S floats).
static size_t smem_bytes(int S, int HD, int rows_of_s, bool staged, int warps) {
    size_t b = (size_t)warps * (HD + (size_t)rows_of_s * S);
    if (staged) b += 2 * (size_t)S * (HD + 1);
    return b * sizeof(float);
}

// The launch shape: staged with AWS warps per (batch, head) when the head's two matrices fit in
// shared memory (S <= 128 at head width 64 on every supported card), else in place with AW warps
// and one query row per warp.
enum { AWS = 8 };
typedef struct {
    bool staged;
    dim3 grid;
    unsigned threads;
    size_t smem;
} attn_launch;

static attn_launch plan_launch(const ops *o, int B, int S, int NH, int HD, int rows_of_s) {
    attn_launch l;
    int optin = ctx_of(o)->smem_optin;
    l.smem = smem_bytes(S, HD, rows_of_s, true, AWS);
    l.staged = l.smem <= (size_t)optin;
    if (l.staged) {
        l.grid = dim3((unsigned)(B * NH), 1);
        l.threads = AWS * 32;
    } else {
        l.smem = smem_bytes(S, HD, rows_of_s, false, AW);
        if (l.smem > (size_t)optin)
            CUDA_DIE("attention with S=%d and head width %d needs %zu bytes of shared memory per "
                     "block; this GPU allows %d",
                     S, HD, l.smem, optin);
        l.grid = dim3((unsigned)(B * NH), (unsigned)((S + AW - 1) / AW));
        l.threads = AW * 32;
    }
    return l;
}

static void allow_smem(const void *fn, size_t bytes) {
    if (bytes > 48 * 1024)
        CK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

static ops_dropout drop_or_none(const ops_dropout *d) {
    ops_dropout z;
    memset(&z, 0, sizeof z);
    return d ? *d : z;
}

// KERNEL<T, staged> for the row's element type and the plan
#define LAUNCH_ATT(o, KERNEL, l, ...)                                                              \
    do {                                                                                           \
        cudaStream_t st_ = ctx_of(o)->stream;                                                      \
        if (ctx_of(o)->bf16 && (l).staged) {                                                       \
            allow_smem((const void *)KERNEL<bf16s, true>, (l).smem);                               \
            KERNEL<bf16s, true><<<(l).grid, (l).threads, (l).smem, st_>>>(__VA_ARGS__);            \
        } else if (ctx_of(o)->bf16) {                                                              \
            allow_smem((const void *)KERNEL<bf16s, false>, (l).smem);                              \
            KERNEL<bf16s, false><<<(l).grid, (l).threads, (l).smem, st_>>>(__VA_ARGS__);           \
        } else if ((l).staged) {                                                                   \
            allow_smem((const void *)KERNEL<float, true>, (l).smem);                               \
            KERNEL<float, true><<<(l).grid, (l).threads, (l).smem, st_>>>(__VA_ARGS__);            \
        } else {                                                                                   \
            allow_smem((const void *)KERNEL<float, false>, (l).smem);                              \
            KERNEL<float, false><<<(l).grid, (l).threads, (l).smem, st_>>>(__VA_ARGS__);           \
        }                                                                                          \
        CK_LAUNCH();                                                                               \
    } while (0)

static void cu_attention_fwd(const ops *o, float *out, float *probs, const float *qkv,
                             const float *mask, const ops_dropout *drop, int B, int S, int NH,
                             int HD, float scale, int layout) {
    if (B <= 0 || S <= 0) return;
    attn_launch l = plan_launch(o, B, S, NH, HD, 1);
    ops_dropout d = drop_or_none(drop);
    LAUNCH_ATT(o, k_attn_fwd, l, out, probs, qkv, mask, d, S, NH, HD, scale, layout);
}

static void cu_attention_bwd(const ops *o, float *dqkv, const float *dout, const float *out,
                             const float *qkv, const float *probs, const ops_dropout *drop, int B,
                             int S, int NH, int HD, float scale, int layout) {
    (void)out; // the probabilities are kept
    if (B <= 0 || S <= 0) return;
    float *dots = (float *)ws_take(o, (size_t)B * NH * S * sizeof(float), "attention backward");
    ops_dropout d = drop_or_none(drop);
    attn_launch lq = plan_launch(o, B, S, NH, HD, 1), lkv = plan_launch(o, B, S, NH, HD, 2);
    LAUNCH_ATT(o, k_attn_bwd_q, lq, dqkv, dots, dout, qkv, probs, d, S, NH, HD, scale, layout);
    LAUNCH_ATT(o, k_attn_bwd_kv, lkv, dqkv, dots, dout, qkv, probs, d, S, NH, HD, scale, layout);
}

void cuda_fill_attention(ops *t) {
    t->attention_fwd = cu_attention_fwd;
    t->attention_bwd = cu_attention_bwd;
}
