// The CUDA backend's own kernels except attention and AdamW: embedding, LayerNorm, activations,
// rows, pooling, losses and the whole-buffer ops. Each mirrors the CPU row's arithmetic (the same
// formulas, often the same helper functions from ops_math.h and bf16.h); sums that the CPU does
// in one order are done here in a fixed order too (a fixed tree or fixed chunks), never with
// floating-point atomics, so results repeat bit for bit from run to run.
#include "ops/cuda/cuda_internal.h"
#include "ops/ops_math.h"

#include <cub/cub.cuh>

// ---- block reductions of XT = 256 threads, in a fixed order (shuffle tree per warp, then the
// warps in order); every thread gets the result -------------------------------------------------
enum { XT = 256 };

__device__ static float block_max(float v, float *sh) {
    v = warp_max(v);
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = v;
    __syncthreads();
    float m = sh[0];
    for (int w = 1; w < XT / 32; w++)
        m = fmaxf(m, sh[w]);
    __syncthreads();
    return m;
}
__device__ static double block_sum_d(double v, double *sh) {
    v = warp_sum_d(v);
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = v;
    __syncthreads();
    double s = 0.0;
    for (int w = 0; w < XT / 32; w++)
        s += sh[w];
    __syncthreads();
    return s;
}

// ---- fixed-order column sums: dst[j] += sum_i src[i, j] (F dst, A or F src) ----------------
// Stage 1: chunk c of the rows (a fixed number of chunks for a given row count) summed in row
// order per column; stage 2: the chunk sums added in chunk order.
enum { CS_CHUNKS_MAX = 128 };
static int cs_chunks(int N) {
    int c = (N + 63) / 64;
    return c < 1 ? 1 : (c > CS_CHUNKS_MAX ? CS_CHUNKS_MAX : c);
}

template <typename T>
__global__ static void k_colsum_partial(float *part, const void *src_v, int N, int OC, int chunks) {
    const T *src = (const T *)src_v;
    int j = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y;
    if (j >= OC) return;
    int len = (N + chunks - 1) / chunks, i0 = c * len, i1 = min(N, i0 + len);
    float s = 0.0f;
    for (int i = i0; i < i1; i++)
        s += ldA(src, (size_t)i * OC + j);
    part[(size_t)c * OC + j] = s;
}

__global__ static void k_colsum_final(float *dst, const float *part, int OC, int chunks) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= OC) return;
    float s = 0.0f;
    for (int c = 0; c < chunks; c++)
        s += part[(size_t)c * OC + j];
    dst[j] += s;
}

void cuda_colsum_add(const ops *o, float *dbias, const float *dout, int N, int OC) {
    if (N <= 0 || OC <= 0) return;
    int chunks = cs_chunks(N);
    float *part = (float *)ws_take(o, (size_t)chunks * OC * sizeof(float), "the bias gradient");
    dim3 g1((OC + 127) / 128, chunks);
    LAUNCH_A(o, k_colsum_partial, g1, 128, 0, part, dout, N, OC, chunks);
    k_colsum_final<<<(OC + 127) / 128, 128, 0, ctx_of(o)->stream>>>(dbias, part, OC, chunks);
    CK_LAUNCH();
}

// ---- embedding -------------------------------------------------------------------------------
template <typename T>
__global__ static void k_embed_fwd(void *out_v, const int32_t *ids, const int32_t *types,
                                   const void *wte_v, const void *wpe_v, const void *ps_v,
                                   const void *tte_v, int N, int S, int H) {
    T *out = (T *)out_v;
    const T *wte = (const T *)wte_v, *wpe = (const T *)wpe_v, *tte = (const T *)tte_v;
    float sc = ps_v ? ldA((const T *)ps_v, 0) : 1.0f;
    GRID_STRIDE(idx, (size_t)N * H) {
        size_t r = idx / H, h = idx % H;
        float x = ldA(wte, (size_t)ids[r] * H + h);
        if (wpe) x += sc * ldA(wpe, (r % S) * H + h);
        if (tte) x += ldA(tte, (size_t)(types ? types[r] : 0) * H + h);
        stA(out, idx, x);
    }
}

static void cu_embed_fwd(const ops *o, float *out, const int32_t *ids, const int32_t *types,
                         const float *wte, const float *wpe, const float *pos_scale,
                         const float *tte, int B, int S, int H) {
    int N = B * S;
    LAUNCH_A(o, k_embed_fwd, grid_for(o, (size_t)N * H, 256), 256, 0, out, ids, types, wte, wpe,
             pos_scale, tte, N, S, H);
}

__global__ static void k_iota(int32_t *v, int n, const int32_t *ids, int V, int *err) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        v[i] = i;
        if (ids[i] < 0 || ids[i] >= V) atomicOr(err, CUDA_ERR_ID);
    }
}

// One warp per sorted position; the warp at the head of a run of equal ids adds the run's rows,
// in row order (the sort is stable), onto the table row: the CPU's order of additions exactly.
template <typename T>
__global__ static void k_embed_runs(float *dwte, const void *dout_v, const int32_t *sid,
                                    const int32_t *srow, int N, int H, int V, int pad_id) {
    const T *dout = (const T *)dout_v;
    int p = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (p >= N) return;
    int id = sid[p];
    if ((p > 0 && sid[p - 1] == id) || id == pad_id || id < 0 || id >= V) return; // bad: flagged
    int q1 = p + 1;
    while (q1 < N && sid[q1] == id)
        q1++;
    for (int h = lane; h < H; h += 32) {
        float g = dwte[(size_t)id * H + h];
        for (int q = p; q < q1; q++)
            g += ldA(dout, (size_t)srow[q] * H + h);
        dwte[(size_t)id * H + h] = g;
    }
}

// dwpe[s] += dout[b, s] for b in order (learned positions)
template <typename T>
__global__ static void k_embed_pos(float *dwpe, const void *dout_v, int B, int S, int H) {
    const T *dout = (const T *)dout_v;
    GRID_STRIDE(idx, (size_t)S * H) {
        float g = dwpe[idx];
        for (int b = 0; b < B; b++)
            g += ldA(dout, (size_t)b * S * H + idx);
        dwpe[idx] = g;
    }
}

// token types: rows in a fixed number of chunks (cs_chunks, so grid.y stays small), chunk sums
// per (type, column), then the chunks in order
template <typename T>
__global__ static void k_embed_type_partial(float *part, const void *dout_v, const int32_t *types,
                                            int N, int H, int NT, int chunks, int *err) {
    const T *dout = (const T *)dout_v;
    int h = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y;
    if (h >= H) return;
    float *pc = part + (size_t)c * NT * H;
    for (int t = 0; t < NT; t++)
        pc[(size_t)t * H + h] = 0.0f;
    int len = (N + chunks - 1) / chunks, i0 = c * len, i1 = min(N, i0 + len);
    for (int r = i0; r < i1; r++) {
        int t = types ? types[r] : 0;
        if (t < 0 || t >= NT) {
            atomicOr(err, CUDA_ERR_ID);
            continue;
        }
        pc[(size_t)t * H + h] += ldA(dout, (size_t)r * H + h);
    }
}

__global__ static void k_embed_type_final(float *dtte, const float *part, int chunks, int H,
                                          int NT) {
    GRID_STRIDE(idx, (size_t)NT * H) {
        float g = dtte[idx];
        for (int c = 0; c < chunks; c++)
            g += part[(size_t)c * NT * H + idx];
        dtte[idx] = g;
    }
}

// dpos_scale += sum_r <dout_r, wpe_{r mod S}>: per-row dots in double, then a fixed tree
template <typename T>
__global__ static void k_embed_dots(float *dots, const void *dout_v, const void *wpe_v, int N,
                                    int S, int H) {
    const T *dout = (const T *)dout_v, *wpe = (const T *)wpe_v;
    int r = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (r >= N) return;
    double s = 0.0;
    for (int h = lane; h < H; h += 32)
        s += (double)ldA(dout, (size_t)r * H + h) * ldA(wpe, (size_t)(r % S) * H + h);
    s = warp_sum_d(s);
    if (lane == 0) dots[r] = (float)s;
}

__global__ static void k_sum_into(float *dst, const float *x, int n) {
    __shared__ double sh[XT / 32];
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += XT)
        s += x[i];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) dst[0] += (float)s;
}

static void cu_embed_bwd(const ops *o, float *dwte, float *dwpe, float *dpos_scale, float *dtte,
                         const float *dout, const int32_t *ids, const int32_t *types,
                         const float *wpe, const float *pos_scale, int pad_id, int B, int S, int H,
                         int V, int NT) {
    cuda_ctx *c = ctx_of(o);
    int N = B * S;
    if (N <= 0) return;
    if (dwte) {
        // a stable radix sort of (id, row) pairs groups equal ids with their rows in order
        int bits = 1;
        while (bits < 31 && (1 << bits) < V)
            bits++;
        size_t tmp = 0;
        uint32_t *keys = NULL;
        int32_t *vals = NULL;
        CK(cub::DeviceRadixSort::SortPairs(NULL, tmp, keys, keys, vals, vals, N, 0, bits,
                                           c->stream));
        size_t arr = ((size_t)N * sizeof(int32_t) + 255) / 256 * 256;
        char *w = ws_take(o, 3 * arr + tmp, "the embedding gradient's sort");
        int32_t *iota = (int32_t *)w, *sid = (int32_t *)(w + arr), *srow = (int32_t *)(w + 2 * arr);
        k_iota<<<grid_for(o, (size_t)N, 256), 256, 0, c->stream>>>(iota, N, ids, V, c->err);
        CK_LAUNCH();
        // ids are checked to lie in [0, V) above, so as unsigned keys they sort the same
        CK(cub::DeviceRadixSort::SortPairs(w + 3 * arr, tmp, (const uint32_t *)ids, (uint32_t *)sid,
                                           iota, srow, N, 0, bits, c->stream));
        unsigned blocks = (unsigned)(((size_t)N * 32 + 255) / 256);
        LAUNCH_A(o, k_embed_runs, blocks, 256, 0, dwte, dout, sid, srow, N, H, V, pad_id);
    }
    if (dwpe && !pos_scale)
        LAUNCH_A(o, k_embed_pos, grid_for(o, (size_t)S * H, 256), 256, 0, dwpe, dout, B, S, H);
    if (dtte) {
        if (NT <= 0) CUDA_DIE("embed_bwd: a type table's gradient without its row count");
        int chunks = cs_chunks(N);
        float *part =
            (float *)ws_take(o, (size_t)chunks * NT * H * sizeof(float), "the token-type gradient");
        dim3 g1((H + 127) / 128, chunks);
        LAUNCH_A(o, k_embed_type_partial, g1, 128, 0, part, dout, types, N, H, NT, chunks, c->err);
        k_embed_type_final<<<grid_for(o, (size_t)NT * H, 256), 256, 0, c->stream>>>(dtte, part,
                                                                                    chunks, H, NT);
        CK_LAUNCH();
    }
    if (wpe && pos_scale && dpos_scale) {
        float *dots = (float *)ws_take(o, (size_t)N * sizeof(float), "the position scale");
        LAUNCH_A(o, k_embed_dots, (unsigned)(((size_t)N * 32 + 255) / 256), 256, 0, dots, dout, wpe,
                 N, S, H);
        k_sum_into<<<1, XT, 0, c->stream>>>(dpos_scale, dots, N);
        CK_LAUNCH();
    }
}

// ---- LayerNorm: one warp per row, statistics in fp32 --------------------------------------
// mean and variance of the row x (as fp32), the CPU's two passes
template <typename T>
__device__ static void ln_stats(const T *x, int H, float eps, float *m_out, float *rs_out) {
    int lane = threadIdx.x % 32;
    float m = 0.0f;
    for (int h = lane; h < H; h += 32)
        m += ldA(x, h);
    m = warp_sum(m) / (float)H;
    float v = 0.0f;
    for (int h = lane; h < H; h += 32) {
        float d = ldA(x, h) - m;
        v += d * d;
    }
    v = warp_sum(v) / (float)H;
    *m_out = m;
    *rs_out = 1.0f / sqrtf(v + eps);
}

template <typename T>
__global__ static void k_layernorm_fwd(void *out_v, float *mean, float *rstd, const void *inp_v,
                                       const void *w_v, const void *b_v, int N, int H, float eps) {
    int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const T *x = (const T *)inp_v + (size_t)row * H, *w = (const T *)w_v, *b = (const T *)b_v;
    T *o = (T *)out_v + (size_t)row * H;
    float m, rs;
    ln_stats(x, H, eps, &m, &rs);
    for (int h = lane; h < H; h += 32) {
        float y = (ldA(x, h) - m) * rs * ldA(w, h);
        if (b) y += ldA(b, h);
        stA(o, h, y);
    }
    if (lane == 0) mean[row] = m, rstd[row] = rs;
}

// res_out = res + branch (stored, rounded to the activation type); out = LN(res_out as stored)
template <typename T>
__global__ static void k_residual_layernorm_fwd(void *res_out_v, void *out_v, float *mean,
                                                float *rstd, const void *res_v,
                                                const void *branch_v, const void *w_v,
                                                const void *b_v, int N, int H, float eps) {
    int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    size_t off = (size_t)row * H;
    const T *a = (const T *)res_v + off, *br = (const T *)branch_v + off;
    T *r = (T *)res_out_v + off;
    for (int h = lane; h < H; h += 32)
        stA(r, h, ldA(a, h) + ldA(br, h));
    __syncwarp(); // the row is read back by other lanes below
    const T *w = (const T *)w_v, *b = (const T *)b_v;
    T *o = (T *)out_v + off;
    float m, rs;
    ln_stats((const T *)r, H, eps, &m, &rs);
    for (int h = lane; h < H; h += 32) {
        float y = (ldA(r, h) - m) * rs * ldA(w, h);
        if (b) y += ldA(b, h);
        stA(o, h, y);
    }
    if (lane == 0) mean[row] = m, rstd[row] = rs;
}

// dinp of one row per warp: (g w - mean(g w) - xhat mean(g w xhat)) rstd
template <typename T>
__global__ static void k_layernorm_bwd_dx(void *dinp_v, const void *dout_v, const void *inp_v,
                                          const void *w_v, const float *mean, const float *rstd,
                                          int N, int H, int accum) {
    int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    size_t off = (size_t)row * H;
    const T *g = (const T *)dout_v + off, *x = (const T *)inp_v + off, *w = (const T *)w_v;
    T *dx = (T *)dinp_v + off;
    float m = mean[row], rs = rstd[row], s_dn = 0.0f, s_dnx = 0.0f;
    for (int h = lane; h < H; h += 32) {
        float xh = (ldA(x, h) - m) * rs, dn = ldA(g, h) * ldA(w, h);
        s_dn += dn;
        s_dnx += dn * xh;
    }
    s_dn = warp_sum(s_dn) / (float)H;
    s_dnx = warp_sum(s_dnx) / (float)H;
    // every lane has read its g before any lane writes dx (dx may alias g): the shuffles above
    // are a warp-wide barrier, and each lane rewrites only the elements it reads itself
    for (int h = lane; h < H; h += 32) {
        float v = (ldA(g, h) * ldA(w, h) - s_dn - (ldA(x, h) - m) * rs * s_dnx) * rs;
        stA(dx, h, accum ? ldA(dx, h) + v : v);
    }
}

// dw, db partial sums over a chunk of rows, per column, in row order
template <typename T>
__global__ static void k_layernorm_bwd_dwdb(float *part, const void *dout_v, const void *inp_v,
                                            const float *mean, const float *rstd, int N, int H,
                                            int chunks) {
    const T *g = (const T *)dout_v, *x = (const T *)inp_v;
    int h = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y;
    if (h >= H) return;
    int len = (N + chunks - 1) / chunks, i0 = c * len, i1 = min(N, i0 + len);
    float dw = 0.0f, db = 0.0f;
    for (int i = i0; i < i1; i++) {
        size_t k = (size_t)i * H + h;
        float gi = ldA(g, k);
        dw += gi * ((ldA(x, k) - mean[i]) * rstd[i]);
        db += gi;
    }
    part[(size_t)c * 2 * H + h] = dw;
    part[(size_t)c * 2 * H + H + h] = db;
}

__global__ static void k_layernorm_bwd_final(float *dw, float *db, const float *part, int H,
                                             int chunks) {
    int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    float sw = 0.0f, sb = 0.0f;
    for (int c = 0; c < chunks; c++) {
        sw += part[(size_t)c * 2 * H + h];
        sb += part[(size_t)c * 2 * H + H + h];
    }
    if (dw) dw[h] += sw;
    if (db) db[h] += sb;
}

static unsigned warps_grid(size_t rows) {
    return (unsigned)((rows * 32 + 255) / 256);
}

static void cu_layernorm_fwd(const ops *o, float *out, float *mean, float *rstd, const float *inp,
                             const float *w, const float *b, int N, int H, float eps) {
    if (N <= 0) return;
    LAUNCH_A(o, k_layernorm_fwd, warps_grid((size_t)N), 256, 0, out, mean, rstd, inp, w, b, N, H,
             eps);
}

static void cu_residual_layernorm_fwd(const ops *o, float *res_out, float *out, float *mean,
                                      float *rstd, const float *res, const float *branch,
                                      const float *w, const float *b, int N, int H, float eps) {
    if (N <= 0) return;
    LAUNCH_A(o, k_residual_layernorm_fwd, warps_grid((size_t)N), 256, 0, res_out, out, mean, rstd,
             res, branch, w, b, N, H, eps);
}

static void cu_layernorm_bwd(const ops *o, float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, const float *w, const float *mean, const float *rstd,
                             int N, int H, int accum) {
    if (N <= 0) return;
    // the weight gradients first: dinp may alias dout
    if (dw || db) {
        int chunks = cs_chunks(N);
        float *part = (float *)ws_take(o, (size_t)chunks * 2 * H * sizeof(float),
                                       "the LayerNorm weight gradient");
        dim3 g1((H + 127) / 128, chunks);
        LAUNCH_A(o, k_layernorm_bwd_dwdb, g1, 128, 0, part, dout, inp, mean, rstd, N, H, chunks);
        k_layernorm_bwd_final<<<(H + 127) / 128, 128, 0, ctx_of(o)->stream>>>(dw, db, part, H,
                                                                              chunks);
        CK_LAUNCH();
    }
    if (dinp)
        LAUNCH_A(o, k_layernorm_bwd_dx, warps_grid((size_t)N), 256, 0, dinp, dout, inp, w, mean,
                 rstd, N, H, accum);
}

// ---- activations -------------------------------------------------------------------------------
template <typename T>
__global__ static void k_glu_fwd(void *out_v, const void *inp_v, int N, int I) {
    const T *x = (const T *)inp_v;
    T *o = (T *)out_v;
    int I2 = I / 2;
    GRID_STRIDE(idx, (size_t)N * I2) {
        size_t i = idx / I2, j = idx % I2;
        stA(o, idx, ldA(x, i * I + j) * ops_gelu(ldA(x, i * I + I2 + j)));
    }
}

template <typename T>
__global__ static void k_glu_bwd(void *dinp_v, const void *dout_v, const void *inp_v, int N,
                                 int I) {
    const T *x = (const T *)inp_v, *d = (const T *)dout_v;
    T *dx = (T *)dinp_v;
    int I2 = I / 2;
    GRID_STRIDE(idx, (size_t)N * I2) {
        size_t i = idx / I2, j = idx % I2, a = i * I + j, g = a + I2;
        float dv = ldA(d, idx), xv = ldA(x, a), gv = ldA(x, g);
        stA(dx, a, dv * ops_gelu(gv));
        stA(dx, g, dv * xv * ops_gelu_grad(gv));
    }
}

// elementwise maps, one enum so one kernel serves them all
enum { EW_GELU, EW_GELU_BWD, EW_TANH, EW_TANH_BWD, EW_ADD, EW_SCALE, EW_FILL, EW_DROPOUT };

template <typename T>
__global__ static void k_ew(int kind, void *out_v, const void *a_v, const void *b_v, float s,
                            ops_dropout drop, size_t n) {
    T *out = (T *)out_v;
    const T *a = (const T *)a_v, *b = (const T *)b_v;
    float inv = 1.0f / (1.0f - drop.p);
    GRID_STRIDE(i, n) {
        float v;
        switch (kind) {
        case EW_GELU:
            v = ops_gelu(ldA(a, i));
            break;
        case EW_GELU_BWD:
            v = ldA(a, i) * ops_gelu_grad(ldA(b, i));
            break;
        case EW_TANH:
            v = tanhf(ldA(a, i));
            break;
        case EW_TANH_BWD: {
            float y = ldA(b, i);
            v = ldA(a, i) * (1.0f - y * y);
            break;
        }
        case EW_ADD:
            v = ldA(a, i) + ldA(b, i);
            break;
        case EW_SCALE:
            v = ldA(a, i) * s;
            break;
        case EW_FILL:
            v = s;
            break;
        default:
            v = ops_dropout_keep(&drop, i) ? ldA(a, i) * inv : 0.0f;
            break;
        }
        stA(out, i, v);
    }
}

static void ew(const ops *o, int kind, float *out, const float *a, const float *b, float s,
               const ops_dropout *drop, size_t n) {
    if (!n) return;
    ops_dropout d;
    memset(&d, 0, sizeof d);
    if (drop) d = *drop;
    LAUNCH_A(o, k_ew, grid_for(o, n, 256), 256, 0, kind, out, a, b, s, d, n);
}

static void cu_gelu_glu_fwd(const ops *o, float *out, const float *inp, int N, int I) {
    if ((size_t)N * (I / 2) == 0) return;
    LAUNCH_A(o, k_glu_fwd, grid_for(o, (size_t)N * (I / 2), 256), 256, 0, out, inp, N, I);
}
static void cu_gelu_glu_bwd(const ops *o, float *dinp, const float *dout, const float *inp, int N,
                            int I) {
    if ((size_t)N * (I / 2) == 0) return;
    LAUNCH_A(o, k_glu_bwd, grid_for(o, (size_t)N * (I / 2), 256), 256, 0, dinp, dout, inp, N, I);
}
static void cu_gelu_fwd(const ops *o, float *out, const float *inp, size_t n) {
    ew(o, EW_GELU, out, inp, NULL, 0.0f, NULL, n);
}
static void cu_gelu_bwd(const ops *o, float *dinp, const float *dout, const float *inp, size_t n) {
    ew(o, EW_GELU_BWD, dinp, dout, inp, 0.0f, NULL, n);
}
static void cu_tanh_fwd(const ops *o, float *out, const float *inp, size_t n) {
    ew(o, EW_TANH, out, inp, NULL, 0.0f, NULL, n);
}
static void cu_tanh_bwd(const ops *o, float *dinp, const float *dout, const float *out, size_t n) {
    ew(o, EW_TANH_BWD, dinp, dout, out, 0.0f, NULL, n);
}
static void cu_dropout_fwd(const ops *o, float *out, const float *inp, const ops_dropout *drop,
                           size_t n) {
    if (!drop || drop->p <= 0.0f) {
        if (out != inp)
            CK(cudaMemcpyAsync(out, inp, n * (size_t)o->act_bytes, cudaMemcpyDeviceToDevice,
                               ctx_of(o)->stream));
        return;
    }
    ew(o, EW_DROPOUT, out, inp, NULL, 0.0f, drop, n);
}
static void cu_add(const ops *o, float *out, const float *a, const float *b, size_t n) {
    ew(o, EW_ADD, out, a, b, 0.0f, NULL, n);
}
static void cu_scale(const ops *o, float *x, float s, size_t n) {
    ew(o, EW_SCALE, x, x, NULL, s, NULL, n);
}
static void cu_fill(const ops *o, float *x, float value, size_t n) {
    ew(o, EW_FILL, x, NULL, NULL, value, NULL, n);
}

// ---- rows and pooling ---------------------------------------------------------------------------
template <typename T>
__global__ static void k_gather(void *out_v, const void *inp_v, const int32_t *idx, int n, int H) {
    T *o = (T *)out_v;
    const T *x = (const T *)inp_v;
    GRID_STRIDE(k, (size_t)n * H) {
        size_t i = k / H, h = k % H;
        o[k] = x[(size_t)idx[i] * H + h];
    }
}
template <typename T>
__global__ static void k_scatter_add(void *dinp_v, const void *dout_v, const int32_t *idx, int n,
                                     int H) {
    T *d = (T *)dinp_v;
    const T *g = (const T *)dout_v;
    GRID_STRIDE(k, (size_t)n * H) {
        size_t i = k / H, h = k % H, t = (size_t)idx[i] * H + h;
        stA(d, t, ldA(d, t) + ldA(g, k));
    }
}
template <typename T>
__global__ static void k_pool_fwd(void *out_v, const void *inp_v, int mode, int B, int S, int H) {
    T *o = (T *)out_v;
    const T *x = (const T *)inp_v;
    GRID_STRIDE(k, (size_t)B * H) {
        size_t b = k / H, h = k % H;
        const T *xb = x + b * S * H;
        if (mode == 0) {
            o[k] = xb[h];
            continue;
        }
        float s = 0.0f;
        for (int t = 0; t < S; t++)
            s += ldA(xb, (size_t)t * H + h);
        stA(o, k, s / (float)S);
    }
}
template <typename T>
__global__ static void k_pool_bwd(void *dinp_v, const void *dout_v, int mode, int B, int S, int H) {
    T *dx = (T *)dinp_v;
    const T *d = (const T *)dout_v;
    int rows = mode == 0 ? 1 : S;
    GRID_STRIDE(k, (size_t)B * rows * H) {
        size_t b = k / ((size_t)rows * H), t = (k / H) % rows, h = k % H;
        float g = ldA(d, b * H + h);
        size_t at = (b * S + t) * H + h;
        stA(dx, at, ldA(dx, at) + (mode == 0 ? g : g / (float)S));
    }
}

static void cu_gather_rows(const ops *o, float *out, const float *inp, const int32_t *idx, int n,
                           int H) {
    if ((size_t)n * H == 0) return;
    LAUNCH_A(o, k_gather, grid_for(o, (size_t)n * H, 256), 256, 0, out, inp, idx, n, H);
}
static void cu_scatter_rows_add(const ops *o, float *dinp, const float *dout, const int32_t *idx,
                                int n, int H) {
    if ((size_t)n * H == 0) return;
    LAUNCH_A(o, k_scatter_add, grid_for(o, (size_t)n * H, 256), 256, 0, dinp, dout, idx, n, H);
}
static void cu_pool_fwd(const ops *o, float *out, const float *inp, int mode, int B, int S, int H) {
    if ((size_t)B * H == 0) return;
    LAUNCH_A(o, k_pool_fwd, grid_for(o, (size_t)B * H, 256), 256, 0, out, inp, mode, B, S, H);
}
static void cu_pool_bwd(const ops *o, float *dinp, const float *dout, int mode, int B, int S,
                        int H) {
    size_t n = (size_t)B * (mode == 0 ? 1 : S) * H;
    if (!n) return;
    LAUNCH_A(o, k_pool_bwd, grid_for(o, n, 256), 256, 0, dinp, dout, mode, B, S, H);
}

// ---- losses and metrics: one block per row ------------------------------------------------------
template <typename T>
__global__ static void k_xent(float *losses, void *dl_v, const void *lg_v, const int32_t *labels,
                              int V, float grad_scale, int *err) {
    __shared__ float shf[XT / 32];
    __shared__ double shd[XT / 32];
    int i = blockIdx.x;
    const T *x = (const T *)lg_v + (size_t)i * V;
    T *d = dl_v ? (T *)dl_v + (size_t)i * V : NULL;
    int y = labels[i];
    if (y == -100 || y < 0 || y >= V) {
        if (threadIdx.x == 0) {
            losses[i] = y == -100 ? 0.0f : __int_as_float(0x7fc00000);
            if (y != -100) atomicOr(err, CUDA_ERR_LABEL);
        }
        if (d)
            for (int j = threadIdx.x; j < V; j += XT)
                stA(d, j, 0.0f);
        return;
    }
    float xy = ldA(x, y); // read before any thread writes d, which may alias the logits
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += XT)
        mx = fmaxf(mx, ldA(x, j));
    mx = block_max(mx, shf); // a barrier: every read of x[y] is done
    float s = 0.0f;
    for (int j = threadIdx.x; j < V; j += XT)
        s += ops_expf(ldA(x, j) - mx);
    double sum = block_sum_d((double)s, shd);
    if (d) {
        float inv = (float)(1.0 / sum) * grad_scale;
        for (int j = threadIdx.x; j < V; j += XT) {
            float v = ops_expf(ldA(x, j) - mx) * inv;
            if (j == y) v -= grad_scale;
            stA(d, j, v);
        }
    }
    if (threadIdx.x == 0) losses[i] = mx + (float)log(sum) - xy;
}

static void cu_xent_fwd_bwd(const ops *o, float *losses, float *dlogits, const float *logits,
                            const int32_t *labels, int N, int V, float grad_scale) {
    if (N <= 0) return;
    LAUNCH_A(o, k_xent, (unsigned)N, XT, 0, losses, dlogits, logits, labels, V, grad_scale,
             ctx_of(o)->err);
}

template <typename T>
__global__ static void k_mse(float *losses, void *dpred_v, const void *pred_v, const float *targets,
                             int N) {
    const T *p = (const T *)pred_v;
    T *dp = (T *)dpred_v;
    GRID_STRIDE(i, (size_t)N) {
        float diff = ldA(p, i) - targets[i];
        losses[i] = diff * diff;
        stA(dp, i, 2.0f * diff / (float)N);
    }
}
static void cu_mse_fwd_bwd(const ops *o, float *losses, float *dpred, const float *pred,
                           const float *targets, int N) {
    if (N <= 0) return;
    LAUNCH_A(o, k_mse, grid_for(o, (size_t)N, 256), 256, 0, losses, dpred, pred, targets, N);
}

// the first maximum of each row (ties to the lower index, like the CPU's strict >)
template <typename T>
__global__ static void k_count_correct(float *hit, const void *lg_v, const int32_t *labels, int V) {
    __shared__ float sv[XT];
    __shared__ int si[XT];
    int i = blockIdx.x;
    const T *x = (const T *)lg_v + (size_t)i * V;
    float bv = ldA(x, 0);
    int bi = 0;
    for (int j = threadIdx.x; j < V; j += XT) {
        float v = ldA(x, j);
        if (v > bv) bv = v, bi = j;
    }
    sv[threadIdx.x] = bv, si[threadIdx.x] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int t = 1; t < XT; t++)
            if (sv[t] > bv || (sv[t] == bv && si[t] < bi)) bv = sv[t], bi = si[t];
        hit[i] = labels[i] != -100 && bi == labels[i] ? 1.0f : 0.0f;
    }
}
static void cu_count_correct(const ops *o, float *hit, const float *logits, const int32_t *labels,
                             int N, int V) {
    if (N <= 0) return;
    LAUNCH_A(o, k_count_correct, (unsigned)N, XT, 0, hit, logits, labels, V);
}

// ---- reductions to the host: the CPU's 256 chunks, each a fixed tree in double ------------
enum { RED_CHUNKS = 256 };

template <typename T>
__global__ static void k_reduce(double *part, const void *x_v, size_t n, int square) {
    __shared__ double sh[XT / 32];
    const T *x = (const T *)x_v;
    size_t len = (n + RED_CHUNKS - 1) / RED_CHUNKS, i0 = (size_t)blockIdx.x * len;
    size_t i1 = i0 + len < n ? i0 + len : n;
    double s = 0.0;
    for (size_t i = i0 + threadIdx.x; i < i1; i += XT) {
        double v = ldA(x, i);
        s += square ? v * v : v;
    }
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ static void k_reduce_final(double *out, const double *part, int add) {
    double s = 0.0;
    for (int c = 0; c < RED_CHUNKS; c++)
        s += part[c];
    *out = add ? *out + s : s;
}

// the fixed-order sum into dst (device), of F (act = false) or A elements
static void reduce_to(const ops *o, double *dst, const float *x, size_t n, int square, bool act,
                      int add) {
    cuda_ctx *c = ctx_of(o);
    double *part = (double *)ws_take(o, (RED_CHUNKS + 1) * sizeof(double), "a reduction");
    if (act && c->bf16)
        k_reduce<bf16s><<<RED_CHUNKS, XT, 0, c->stream>>>(part, x, n, square);
    else
        k_reduce<float><<<RED_CHUNKS, XT, 0, c->stream>>>(part, x, n, square);
    CK_LAUNCH();
    k_reduce_final<<<1, 1, 0, c->stream>>>(dst ? dst : part + RED_CHUNKS, part, add);
    CK_LAUNCH();
}

static double reduce_host(const ops *o, const float *x, size_t n, int square, bool act) {
    double r = 0.0;
    if (!n) return 0.0;
    reduce_to(o, NULL, x, n, square, act, 0);
    double *part = (double *)ctx_of(o)->ws;
    o->download(o, &r, part + RED_CHUNKS, sizeof r);
    return r;
}
static double cu_sumsq(const ops *o, const float *x, size_t n) {
    return reduce_host(o, x, n, 1, false);
}
static double cu_sum(const ops *o, const float *x, size_t n) {
    return reduce_host(o, x, n, 0, false);
}
static double cu_sum_act(const ops *o, const float *x, size_t n) {
    return reduce_host(o, x, n, 0, true);
}
static void cu_accumulate(const ops *o, double *acc, const float *x, size_t n) {
    if (n) reduce_to(o, acc, x, n, 0, false, 1);
}

// ---- the working copy of the weights -----------------------------------------------------------
__global__ static void k_narrow(uint16_t *dst, const float *src, size_t n) {
    GRID_STRIDE(i, n) dst[i] = ops_bf16_round(src[i]);
}
static void cu_refresh_weights(const ops *o, float *wa, const float *w, size_t n) {
    cuda_ctx *c = ctx_of(o);
    if (!n || (void *)wa == (const void *)w) {
        if (c->bf16 && n)
            CUDA_DIE("refresh_weights: the bf16 working copy cannot share the fp32 "
                     "masters' memory");
        return;
    }
    if (!c->bf16) {
        CK(cudaMemcpyAsync(wa, w, n * sizeof(float), cudaMemcpyDeviceToDevice, c->stream));
        return;
    }
    k_narrow<<<grid_for(o, n, 256), 256, 0, c->stream>>>((uint16_t *)wa, w, n);
    CK_LAUNCH();
}

void cuda_fill_kernels(ops *t) {
    t->embed_fwd = cu_embed_fwd;
    t->embed_bwd = cu_embed_bwd;
    t->layernorm_fwd = cu_layernorm_fwd;
    t->residual_layernorm_fwd = cu_residual_layernorm_fwd;
    t->layernorm_bwd = cu_layernorm_bwd;
    t->gelu_glu_fwd = cu_gelu_glu_fwd;
    t->gelu_glu_bwd = cu_gelu_glu_bwd;
    t->gelu_fwd = cu_gelu_fwd;
    t->gelu_bwd = cu_gelu_bwd;
    t->tanh_fwd = cu_tanh_fwd;
    t->tanh_bwd = cu_tanh_bwd;
    t->dropout_fwd = cu_dropout_fwd;
    t->add = cu_add;
    t->gather_rows = cu_gather_rows;
    t->scatter_rows_add = cu_scatter_rows_add;
    t->pool_fwd = cu_pool_fwd;
    t->pool_bwd = cu_pool_bwd;
    t->xent_fwd_bwd = cu_xent_fwd_bwd;
    t->mse_fwd_bwd = cu_mse_fwd_bwd;
    t->count_correct = cu_count_correct;
    t->sumsq = cu_sumsq;
    t->sum = cu_sum;
    t->sum_act = cu_sum_act;
    t->accumulate = cu_accumulate;
    t->scale = cu_scale;
    t->fill = cu_fill;
    t->refresh_weights = cu_refresh_weights;
}
