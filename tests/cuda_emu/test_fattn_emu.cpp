// test_fattn_emu: the CUDA bf16 row's fused attention (src/ops/cuda/ops_cuda_fattn.cu) run on the
// CPU, unchanged, by an emulator of the CUDA features it uses, and held against the cpu-bf16 row.
// CI has no GPU; this is what checks the kernels' indexing, tiling, masking, dropout, shared
// memory layout and synchronisation there. It cannot check speed, register or shared memory
// limits of a real card, or the tensor cores' own rounding.
//
// The emulator (tests/cuda_emu):
//   include/cuda_runtime.h  the CUDA builtins (__global__, threadIdx, __syncthreads, __syncwarp,
//                           __shfl_xor_sync, __ldg, uint4, ...) and the runtime calls the file
//                           makes; cublasLt.h and cuda_bf16.h are the types cuda_internal.h and
//                           the kernels name.
//   include/mma.h           nvcuda::wmma, bf16 16x16x16 with fp32 accumulation; lane 0 of a warp
//                           does each collective call, and pointers and strides are checked
//                           against the documented alignment rules.
//   cuda_emu.cpp            the scheduler: a launch runs its blocks one after another, and each
//                           block's threads as fibers on one OS thread that switch only at
//                           __syncthreads, __syncwarp and a shuffle whose partner has not arrived.
//                           Shared memory is a fresh heap block of exactly the launch's size, all
//                           bits set (NaN) so that reading what was never written shows.
//   fattn_emu.cpp           includes ops_cuda_fattn.cu; CRAM_CUDA_EMU makes its two pieces of CUDA
//                           syntax (the <<<>>> launch and the extern __shared__ array) emulator
//                           calls, nothing else changes.
// It is deterministic. A barrier that can never complete (a thread that skips it, or waits at
// another) is reported as a deadlock and fails at once. A missing barrier makes the result depend
// on the order in which threads run between barriers: every case runs twice, threads and blocks
// ascending and then descending, and the two runs must agree to the byte (the kernels promise no
// atomics, so a GPU gives the same bytes every time too), as well as match the reference.
//
// 18 cases take about 1.5 s here, 6 s under AddressSanitizer and UndefinedBehaviorSanitizer.
#include "ops/cuda/cuda_internal.h"
#include "ops/cuda/fattn_math.h"

extern "C" {
#include "core/rng.h"
}

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vector>

namespace {

// The tolerances test_ops holds the GPU's fused attention to (T_FATTN, rms_within): per element
// 2^-7 of the value plus 2^-6 of its row's largest, and an rms error of 2^-7 of the rms value.
const double TOL_REL = 0x1p-7, TOL_ROW = 0x1p-6, TOL_RMS = 0x1p-7;
// The smallest opt-in shared memory of a card the bf16 row opens on (8.6, 8.9, 12.x)
const size_t SMEM_OPTIN = 99 * 1024;

struct emu_row {
    ops table;
    cuda_ctx ctx;
};

// The cpu-bf16 table (host memory, bf16 elements) with the fused attention over its attention
// entries, as cuda_fattn_open puts it over the CUDA row's: the calls it does not take go to the
// cpu-bf16 kernels.
void emu_row_open(emu_row *r, bool bf16, int optin, int mode) {
    memset(r, 0, sizeof *r);
    r->table = *ops_cpu_bf16();
    r->table.name = "cuda-emu";
    r->ctx.bf16 = bf16;
    r->ctx.smem_optin = optin;
    r->ctx.attn_mode = mode;
    r->ctx.ws = (char *)malloc(CUDA_WS_BYTES);
    if (!r->ctx.ws) abort();
    r->table.ctx = &r->ctx;
    cuda_fattn_open(&r->table, &r->ctx);
}
void emu_row_close(emu_row *r) {
    free(r->ctx.ws);
}

struct stats {
    double max_rel = 0, max_over = 0, rms = 0; // max |err| / row max, max (|err| - lim) / row max
    int bad = 0;
};

// got against want in rows of rowlen: |err| <= 2^-7 |want| + 2^-6 max|want over the row|
stats compare(const float *got, const float *want, size_t n, size_t rowlen) {
    stats st;
    double se = 0, sw = 0;
    for (size_t r0 = 0; r0 < n; r0 += rowlen) {
        double s = 0;
        for (size_t i = r0; i < r0 + rowlen; i++)
            s = fmax(s, fabs((double)want[i]));
        for (size_t i = r0; i < r0 + rowlen; i++) {
            double err = fabs((double)got[i] - want[i]),
                   lim = TOL_REL * fabs(want[i]) + TOL_ROW * s;
            se += err * err, sw += (double)want[i] * want[i];
            if (!(err <= lim)) st.bad++;
            if (s > 0) {
                st.max_rel = fmax(st.max_rel, err / s);
                st.max_over = fmax(st.max_over, (err - TOL_REL * fabs(want[i])) / s);
            }
            if (err != err) st.max_rel = INFINITY;
        }
    }
    st.rms = sw > 0 ? sqrt(se / sw) : sqrt(se);
    if (!(st.rms <= TOL_RMS)) st.bad++;
    return st;
}

struct attn_case {
    int B, S, NH, layout, mask;
    float p;
    int offset; // bf16 elements by which the emulated row's qkv, out, dout and dqkv are shifted
};

double worst_out, worst_dq, worst_rms, worst_lse;

// One call of the fused forward and backward on the emulated row, in one thread order
struct emu_result {
    std::vector<uint16_t> out, dqkv;
    std::vector<float> state;
};
emu_result run_emu(const ops *o, const attn_case &c, const std::vector<float> &qkv,
                   const std::vector<float> &dout, const std::vector<float> &mask, ops_dropout *d,
                   float scale, int order) {
    int HD = OPS_FATTN_HD;
    size_t nq = qkv.size(), no = dout.size(), off = (size_t)c.offset;
    size_t sb = o->attn_state_bytes(o, c.B, c.S, c.NH, HD);
    uint16_t *bq = (uint16_t *)o->alloc(o, (nq + off) * 2),
             *bo = (uint16_t *)o->alloc(o, (no + off) * 2);
    uint16_t *bd = (uint16_t *)o->alloc(o, (no + off) * 2),
             *bdq = (uint16_t *)o->alloc(o, (nq + off) * 2);
    float *st = (float *)o->alloc(o, sb), *m = (float *)o->alloc(o, mask.size() * 4);
    float *q = (float *)(bq + off), *out = (float *)(bo + off);
    float *dq = (float *)(bdq + off), *dO = (float *)(bd + off);
    o->upload_act(o, q, qkv.data(), nq);
    o->upload_act(o, dO, dout.data(), no);
    o->upload(o, m, mask.data(), mask.size() * 4);
    // every output starts as NaN, so that an element no thread writes shows
    std::vector<unsigned char> ones(sb > nq * 2 ? sb : nq * 2, 0xff);
    o->upload(o, out, ones.data(), no * 2);
    o->upload(o, dq, ones.data(), nq * 2);
    o->upload(o, st, ones.data(), sb);
    cuda_emu::set_order(order);
    o->attention_fwd(o, out, st, q, c.mask ? m : NULL, d, c.B, c.S, c.NH, HD, scale, c.layout);
    o->attention_bwd(o, dq, dO, out, q, st, d, c.B, c.S, c.NH, HD, scale, c.layout);
    emu_result r;
    r.out.resize(no), r.dqkv.resize(nq), r.state.resize(sb / 4);
    o->download(o, r.out.data(), out, no * 2);
    o->download(o, r.dqkv.data(), dq, nq * 2);
    o->download(o, r.state.data(), st, sb);
    o->free(o, bq), o->free(o, bo), o->free(o, bd), o->free(o, bdq), o->free(o, st), o->free(o, m);
    return r;
}

std::vector<float> as_float(const std::vector<uint16_t> &x) {
    std::vector<float> f(x.size());
    for (size_t i = 0; i < x.size(); i++)
        f[i] = ops_bf16_float(x[i]);
    return f;
}

// The number of failed checks of one case
int run_case(const ops *emu, const attn_case &c, core_rng *rng) {
    int B = c.B, S = c.S, NH = c.NH, HD = OPS_FATTN_HD, H = NH * HD;
    size_t nq = (size_t)B * S * 3 * H, no = (size_t)B * S * H, rows = (size_t)B * NH * S;
    const float scale = 0.41f;
    std::vector<float> qkv(nq), dout(no), mask((size_t)B * S);
    for (auto &x : qkv)
        x = ops_bf16_quantize(core_rng_normal(rng));
    for (auto &x : dout)
        x = ops_bf16_quantize(core_rng_normal(rng));
    for (int i = 0; i < B * S; i++) // test_ops' pattern: the last key and every 7th padded
        mask[i] = i % S == S - 1 || i % 7 == 3 ? 0.0f : 1.0f;
    ops_dropout d;
    memset(&d, 0, sizeof d);
    d.p = c.p, d.step = 11;
    core_rng_key(d.key, 7, 0, 3);

    // the reference: the cpu-bf16 row
    const ops *R = ops_cpu_bf16();
    float *rq = (float *)R->alloc(R, nq * 2), *ro = (float *)R->alloc(R, no * 2);
    float *rd = (float *)R->alloc(R, no * 2), *rdq = (float *)R->alloc(R, nq * 2);
    float *rp = (float *)R->alloc(R, R->attn_state_bytes(R, B, S, NH, HD));
    float *rm = (float *)R->alloc(R, mask.size() * 4);
    R->upload_act(R, rq, qkv.data(), nq);
    R->upload_act(R, rd, dout.data(), no);
    R->upload(R, rm, mask.data(), mask.size() * 4);
    R->attention_fwd(R, ro, rp, rq, c.mask ? rm : NULL, &d, B, S, NH, HD, scale, c.layout);
    R->attention_bwd(R, rdq, rd, ro, rq, rp, &d, B, S, NH, HD, scale, c.layout);
    std::vector<float> want_out(no), want_dq(nq);
    R->download_act(R, want_out.data(), ro, no);
    R->download_act(R, want_dq.data(), rdq, nq);
    R->free(R, rq), R->free(R, ro), R->free(R, rd), R->free(R, rdq), R->free(R, rp), R->free(R, rm);

    int bad = 0;
    size_t sb = emu->attn_state_bytes(emu, B, S, NH, HD);
    if (sb != ops_fattn_state_floats(B, S, NH) * sizeof(float)) {
        printf("  state of %zu bytes: the fused kernels did not take the call\n", sb);
        return 1;
    }
    emu_result a = run_emu(emu, c, qkv, dout, mask, &d, scale, 0);
    emu_result b = run_emu(emu, c, qkv, dout, mask, &d, scale, 1);
    std::vector<float> got_out = as_float(a.out), got_dq = as_float(a.dqkv);
    stats so = compare(got_out.data(), want_out.data(), no, (size_t)H);
    stats sd = compare(got_dq.data(), want_dq.data(), nq, (size_t)3 * H);
    bad += so.bad + sd.bad;
    // the state: each row's log-sum-exp against double sums, then each key's bias exactly
    double lse_err = 0;
    std::vector<double> sc(S);
    for (int bb = 0; bb < B; bb++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < S; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < S; j++) {
                    size_t qo = c.layout == OPS_QKV_BLOCKS ? (size_t)h * HD : (size_t)h * 3 * HD;
                    size_t ko = c.layout == OPS_QKV_BLOCKS ? (size_t)H + h * HD : qo + HD;
                    const float *qi = &qkv[((size_t)bb * S + i) * 3 * H + qo];
                    const float *kj = &qkv[((size_t)bb * S + j) * 3 * H + ko];
                    double dot = 0;
                    for (int e = 0; e < HD; e++)
                        dot += (double)qi[e] * kj[e];
                    sc[j] = scale * dot + (c.mask ? ops_fattn_key_bias(mask[bb * S + j]) : 0.0);
                    mx = fmax(mx, sc[j]);
                }
                for (int j = 0; j < S; j++)
                    sum += exp(sc[j] - mx);
                double want = mx + log(sum), got = a.state[((size_t)bb * NH + h) * S + i];
                double e = fabs(got - want) / (1 + fabs(want));
                lse_err = e == e ? fmax(lse_err, e) : INFINITY;
            }
    if (!(lse_err <= 1e-5)) bad++;
    int bias_bad = 0;
    for (int i = 0; i < B * S; i++)
        bias_bad += a.state[rows + i] != (c.mask ? ops_fattn_key_bias(mask[i]) : 0.0f);
    bad += bias_bad != 0;
    // the other thread order: the same bytes
    bool same = a.out == b.out && a.dqkv == b.dqkv &&
                memcmp(a.state.data(), b.state.data(), a.state.size() * 4) == 0;
    bad += !same;
    printf("  B=%d S=%3d NH=%d layout=%d mask=%d p=%.1f offset=%d | out %.2e (%.2e) rms %.2e | "
           "dqkv %.2e (%.2e) rms %.2e | lse %.1e%s%s%s\n",
           B, S, NH, c.layout, c.mask, (double)c.p, c.offset, so.max_rel, so.max_over, so.rms,
           sd.max_rel, sd.max_over, sd.rms, lse_err, bias_bad ? " KEY BIAS WRONG" : "",
           same ? "" : " ORDER CHANGES THE BYTES", bad ? "  FAIL" : "");
    worst_out = fmax(worst_out, so.max_rel), worst_dq = fmax(worst_dq, sd.max_rel);
    worst_rms = fmax(worst_rms, fmax(so.rms, sd.rms)), worst_lse = fmax(worst_lse, lse_err);
    return bad;
}

// Which kernels an emulated row's dispatch chooses: 1 fused, 0 plain (by the state's size)
int dispatch(bool bf16, int optin, int mode, int B, int S, int NH, int HD) {
    emu_row r;
    emu_row_open(&r, bf16, optin, mode);
    size_t sb = r.table.attn_state_bytes(&r.table, B, S, NH, HD);
    emu_row_close(&r);
    return sb == ops_fattn_state_floats(B, S, NH) * sizeof(float) ? 1 : 0;
}

int check_dispatch() {
    struct {
        bool bf16;
        int optin, mode, S, HD, want;
        const char *what;
    } t[] = {
        {true, (int)SMEM_OPTIN, CUDA_ATTN_AUTO, 512, 64, 1, "bf16, S=512, HD=64"},
        {true, (int)SMEM_OPTIN, CUDA_ATTN_AUTO, 513, 64, 0, "S=513"},
        {true, (int)SMEM_OPTIN, CUDA_ATTN_AUTO, 128, 32, 0, "HD=32"},
        {false, (int)SMEM_OPTIN, CUDA_ATTN_AUTO, 128, 64, 0, "the fp32 row"},
        {true, 48 * 1024, CUDA_ATTN_AUTO, 128, 64, 0, "48 KiB of shared memory"},
        {true, (int)SMEM_OPTIN, CUDA_ATTN_PLAIN, 128, 64, 0, "CRAM_CUDA_ATTN=plain"},
        {true, (int)SMEM_OPTIN, CUDA_ATTN_FUSED, 128, 64, 1, "CRAM_CUDA_ATTN=fused"},
    };
    int bad = 0;
    for (auto &x : t) {
        int got = dispatch(x.bf16, x.optin, x.mode, 2, x.S, 2, x.HD);
        if (got != x.want) {
            printf("dispatch: %s takes the %s kernels\n", x.what, got ? "fused" : "plain");
            bad++;
        }
    }
    return bad;
}

} // namespace

int main(void) {
    ops_cpu_set_threads(1, false);
    cuda_emu::smem_limit = SMEM_OPTIN;
    int bad = check_dispatch();
    // S: one partial tile (33), whole tiles (64, 128), three tiles and 8 rows (200), the longest
    // (512); layouts, mask and dropout crossed on the small shapes, and buffers not 16-byte
    // aligned (offset 1: the kernels' element-wise loads and stores)
    std::vector<attn_case> cases;
    for (int layout = 0; layout < 2; layout++)
        for (int mask = 0; mask < 2; mask++)
            for (int drop = 0; drop < 2; drop++)
                cases.push_back({2, 33, 2, layout, mask, drop ? 0.3f : 0.0f, layout ^ drop});
    for (int k = 0; k < 4; k++)
        cases.push_back({1, 64, 3, k & 1, k >> 1, (k & 1) == (k >> 1) ? 0.3f : 0.0f, 0});
    cases.push_back({2, 128, 4, OPS_QKV_HEAD_INTERLEAVED, 1, 0.3f, 0});
    cases.push_back({2, 128, 2, OPS_QKV_BLOCKS, 0, 0.1f, 1});
    cases.push_back({1, 128, 2, OPS_QKV_BLOCKS, 1, 0.0f, 0});
    cases.push_back({1, 200, 2, OPS_QKV_BLOCKS, 1, 0.3f, 0});
    cases.push_back({1, 200, 2, OPS_QKV_HEAD_INTERLEAVED, 0, 0.0f, 1});
    cases.push_back({1, 512, 2, OPS_QKV_HEAD_INTERLEAVED, 1, 0.1f, 0});
    emu_row emu;
    emu_row_open(&emu, true, (int)SMEM_OPTIN, CUDA_ATTN_AUTO);
    core_rng rng;
    core_rng_init(&rng, 44, 0, 0, 3);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (auto &c : cases)
        bad += run_case(&emu.table, c, &rng);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    emu_row_close(&emu);
    printf("%zu cases in %.1f s: worst max|err|/row max out %.2e, dqkv %.2e; worst rms %.2e; "
           "worst lse %.1e; %d failed checks\n",
           cases.size(), (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
           worst_out, worst_dq, worst_rms, worst_lse, bad);
    return bad ? 1 : 0;
}
