/* The guard row: a CPU row whose buffers the host cannot touch. Every buffer comes from mmap and
 * stays PROT_NONE except while one of the table's functions runs, so a caller that reads or
 * writes backend memory directly dies with SIGSEGV here, on the CPU, rather than on a GPU. It
 * also stops an op handed host memory where it expects backend memory, and the reverse. */
#include "ops/ops.h"

#include "core/core.h"

#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The record of live buffers is a fixed array inside the table's own allocation, so the single
 * free() backend_close does releases everything (nothing left for a leak checker to report). */
#define GUARD_MAX_BLOCKS 4096

typedef struct guard_block {
    char *p;      /* page-aligned start, as alloc returned it */
    size_t bytes; /* what the caller asked for: the end an op may reach */
    size_t len;   /* the mapping: bytes rounded up to whole pages */
} guard_block;

typedef struct guard {
    ops table; /* first, so the table pointer callers hold is the guard's */
    ops inner; /* a copy of the wrapped row, the `self` its functions see */
    int depth; /* > 0 while an op runs: the buffers are readable and writable */
    int n;
    guard_block blocks[GUARD_MAX_BLOCKS];
} guard;

static guard *guard_of(const ops *o) {
    return (guard *)(uintptr_t)o;
}

static void set_protection(const guard *g, int prot) {
    for (int i = 0; i < g->n; i++)
        if (mprotect(g->blocks[i].p, g->blocks[i].len, prot))
            core_die("guard backend: mprotect of %zu bytes failed", g->blocks[i].len);
}

static void enter(guard *g) {
    if (g->depth++ == 0) set_protection(g, PROT_READ | PROT_WRITE);
}

static void leave(guard *g) {
    if (--g->depth == 0) set_protection(g, PROT_NONE);
}

static _Noreturn void refuse(const char *op, const char *arg, const void *p, size_t bytes,
                             const char *why) {
    fprintf(stderr,
            "guard backend: %s: argument %s = %p (%zu bytes) %s; every buffer an op reads or "
            "writes must come from the table's alloc. The caller:\n",
            op, arg, p, bytes, why);
    void *frames[32];
    int k = backtrace(frames, 32);
    backtrace_symbols_fd(frames, k, STDERR_FILENO);
    abort();
}

/* p (when not NULL and bytes > 0) must lie in one live buffer with `bytes` bytes from p on. */
static void need(const guard *g, const char *op, const char *arg, const void *p, size_t bytes) {
    if (!p || !bytes) return;
    const char *c = p;
    for (int i = 0; i < g->n; i++) {
        const guard_block *b = &g->blocks[i];
        if (c < b->p || c >= b->p + b->bytes) continue;
        if (bytes > (size_t)(b->p + b->bytes - c))
            refuse(op, arg, p, bytes, "runs past the end of its buffer");
        return;
    }
    refuse(op, arg, p, bytes, "is not backend memory");
}

/* The host side of a transfer must be host memory: upload from a buffer is a copy. */
static void host(const guard *g, const char *op, const char *arg, const void *p, size_t bytes) {
    if (!p || !bytes) return;
    const char *c = p;
    for (int i = 0; i < g->n; i++) {
        const guard_block *b = &g->blocks[i];
        if (c < b->p + b->len && c + bytes > b->p)
            refuse(op, arg, p, bytes, "is backend memory where host memory belongs (use copy)");
    }
}

/* the argument's own name in the message */
#define NEED(g, op, p, bytes) need((g), (op), #p, (p), (bytes))
#define HOST(g, op, p, bytes) host((g), (op), #p, (p), (bytes))

/* ---- memory ------------------------------------------------------------------------------ */
static void *guard_alloc(const ops *o, size_t bytes) {
    guard *g = guard_of(o);
    if (g->n == GUARD_MAX_BLOCKS)
        core_die("guard backend: more than %d live buffers", GUARD_MAX_BLOCKS);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = (bytes + page - 1) / page * page;
    if (len == 0) len = page;
    /* anonymous pages are zeroed, as alloc promises; PROT_NONE unless an op is running */
    void *p = mmap(NULL, len, g->depth ? PROT_READ | PROT_WRITE : PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) core_die("guard backend: out of memory mapping %zu bytes", bytes);
    g->blocks[g->n++] = (guard_block){.p = p, .bytes = bytes ? bytes : 1, .len = len};
    return p;
}

static void guard_free(const ops *o, void *p) {
    guard *g = guard_of(o);
    if (!p) return;
    for (int i = 0; i < g->n; i++) {
        if (g->blocks[i].p != p) continue;
        if (munmap(g->blocks[i].p, g->blocks[i].len))
            core_die("guard backend: munmap of %zu bytes failed", g->blocks[i].len);
        g->blocks[i] = g->blocks[--g->n];
        return;
    }
    refuse("free", "p", p, 0, "is not the start of a live buffer");
}

static void guard_upload(const ops *o, void *dst, const void *host_src, size_t bytes) {
    guard *g = guard_of(o);
    NEED(g, "upload", dst, bytes);
    HOST(g, "upload", host_src, bytes);
    enter(g);
    g->inner.upload(&g->inner, dst, host_src, bytes);
    leave(g);
}

static void guard_download(const ops *o, void *host_dst, const void *src, size_t bytes) {
    guard *g = guard_of(o);
    NEED(g, "download", src, bytes);
    HOST(g, "download", host_dst, bytes);
    enter(g);
    g->inner.download(&g->inner, host_dst, src, bytes);
    leave(g);
}

static void guard_memset0(const ops *o, void *dst, size_t bytes) {
    guard *g = guard_of(o);
    NEED(g, "memset0", dst, bytes);
    enter(g);
    g->inner.memset0(&g->inner, dst, bytes);
    leave(g);
}

static void guard_copy(const ops *o, void *dst, const void *src, size_t bytes) {
    guard *g = guard_of(o);
    NEED(g, "copy", dst, bytes);
    NEED(g, "copy", src, bytes);
    enter(g);
    g->inner.copy(&g->inner, dst, src, bytes);
    leave(g);
}

static void guard_sync(const ops *o) {
    guard *g = guard_of(o);
    enter(g);
    g->inner.sync(&g->inner);
    leave(g);
}

/* element sizes of the three kinds of buffer (ops.h) */
static size_t act_sz(const guard *g, size_t n) {
    return n * (size_t)g->inner.act_bytes;
}
static size_t f32_sz(size_t n) {
    return n * sizeof(float);
}
static size_t i32_sz(size_t n) {
    return n * sizeof(int32_t);
}

static void guard_upload_act(const ops *o, float *dst, const float *host_src, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "upload_act", dst, act_sz(g, n));
    HOST(g, "upload_act", host_src, f32_sz(n));
    enter(g);
    g->inner.upload_act(&g->inner, dst, host_src, n);
    leave(g);
}

static void guard_download_act(const ops *o, float *host_dst, const float *src, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "download_act", src, act_sz(g, n));
    HOST(g, "download_act", host_dst, f32_sz(n));
    enter(g);
    g->inner.download_act(&g->inner, host_dst, src, n);
    leave(g);
}

static size_t guard_attn_state_bytes(const ops *o, int B, int S, int NH, int HD) {
    guard *g = guard_of(o);
    enter(g);
    size_t r = g->inner.attn_state_bytes(&g->inner, B, S, NH, HD);
    leave(g);
    return r;
}

static void guard_refresh_weights(const ops *o, float *wa, const float *w, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "refresh_weights", wa, act_sz(g, n));
    NEED(g, "refresh_weights", w, f32_sz(n));
    enter(g);
    g->inner.refresh_weights(&g->inner, wa, w, n);
    leave(g);
}

/* ---- dense ------------------------------------------------------------------------------- */
static void guard_matmul_fwd(const ops *o, float *out, const float *inp, const float *w,
                             const float *bias, int N, int C, int OC, int accum) {
    guard *g = guard_of(o);
    const char *op = "matmul_fwd";
    NEED(g, op, out, act_sz(g, (size_t)N * OC));
    NEED(g, op, inp, act_sz(g, (size_t)N * C));
    NEED(g, op, w, act_sz(g, (size_t)OC * C));
    NEED(g, op, bias, act_sz(g, (size_t)OC));
    enter(g);
    g->inner.matmul_fwd(&g->inner, out, inp, w, bias, N, C, OC, accum);
    leave(g);
}

static void guard_matmul_bwd(const ops *o, float *dinp, float *dw, float *dbias, const float *dout,
                             const float *inp, const float *w, int N, int C, int OC,
                             int accum_dinp) {
    guard *g = guard_of(o);
    const char *op = "matmul_bwd";
    NEED(g, op, dinp, act_sz(g, (size_t)N * C));
    NEED(g, op, dw, f32_sz((size_t)OC * C));
    NEED(g, op, dbias, f32_sz((size_t)OC));
    NEED(g, op, dout, act_sz(g, (size_t)N * OC));
    NEED(g, op, inp, act_sz(g, (size_t)N * C));
    NEED(g, op, w, act_sz(g, (size_t)OC * C));
    enter(g);
    g->inner.matmul_bwd(&g->inner, dinp, dw, dbias, dout, inp, w, N, C, OC, accum_dinp);
    leave(g);
}

/* ---- embedding ----------------------------------------------------------------------------- */
static void guard_embed_fwd(const ops *o, float *out, const int32_t *ids, const int32_t *types,
                            const float *wte, const float *wpe, const float *pos_scale,
                            const float *tte, int B, int S, int H) {
    guard *g = guard_of(o);
    const char *op = "embed_fwd";
    size_t N = (size_t)B * S;
    NEED(g, op, out, act_sz(g, N * H));
    NEED(g, op, ids, i32_sz(N));
    NEED(g, op, types, i32_sz(N));
    NEED(g, op, wte, act_sz(g, (size_t)H)); /* the row count is not an argument: one row at least */
    NEED(g, op, wpe, act_sz(g, (size_t)S * H));
    NEED(g, op, pos_scale, act_sz(g, 1));
    NEED(g, op, tte, act_sz(g, (size_t)H));
    enter(g);
    g->inner.embed_fwd(&g->inner, out, ids, types, wte, wpe, pos_scale, tte, B, S, H);
    leave(g);
}

static void guard_embed_bwd(const ops *o, float *dwte, float *dwpe, float *dpos_scale, float *dtte,
                            const float *dout, const int32_t *ids, const int32_t *types,
                            const float *wpe, const float *pos_scale, int pad_id, int B, int S,
                            int H, int V, int NT) {
    guard *g = guard_of(o);
    const char *op = "embed_bwd";
    size_t N = (size_t)B * S;
    NEED(g, op, dwte, f32_sz((size_t)V * H));
    NEED(g, op, dwpe, f32_sz((size_t)S * H));
    NEED(g, op, dpos_scale, f32_sz(1));
    NEED(g, op, dtte, f32_sz((size_t)NT * H));
    NEED(g, op, dout, act_sz(g, N * H));
    NEED(g, op, ids, i32_sz(N));
    NEED(g, op, types, i32_sz(N));
    NEED(g, op, wpe, act_sz(g, (size_t)S * H));
    NEED(g, op, pos_scale, act_sz(g, 1));
    enter(g);
    g->inner.embed_bwd(&g->inner, dwte, dwpe, dpos_scale, dtte, dout, ids, types, wpe, pos_scale,
                       pad_id, B, S, H, V, NT);
    leave(g);
}

/* ---- layernorm ----------------------------------------------------------------------------- */
static void guard_layernorm_fwd(const ops *o, float *out, float *mean, float *rstd,
                                const float *inp, const float *w, const float *b, int N, int H,
                                float eps) {
    guard *g = guard_of(o);
    const char *op = "layernorm_fwd";
    NEED(g, op, out, act_sz(g, (size_t)N * H));
    NEED(g, op, mean, f32_sz((size_t)N));
    NEED(g, op, rstd, f32_sz((size_t)N));
    NEED(g, op, inp, act_sz(g, (size_t)N * H));
    NEED(g, op, w, act_sz(g, (size_t)H));
    NEED(g, op, b, act_sz(g, (size_t)H));
    enter(g);
    g->inner.layernorm_fwd(&g->inner, out, mean, rstd, inp, w, b, N, H, eps);
    leave(g);
}

static void guard_residual_layernorm_fwd(const ops *o, float *res_out, float *out, float *mean,
                                         float *rstd, const float *res, const float *branch,
                                         const float *w, const float *b, int N, int H, float eps) {
    guard *g = guard_of(o);
    const char *op = "residual_layernorm_fwd";
    NEED(g, op, res_out, act_sz(g, (size_t)N * H));
    NEED(g, op, out, act_sz(g, (size_t)N * H));
    NEED(g, op, mean, f32_sz((size_t)N));
    NEED(g, op, rstd, f32_sz((size_t)N));
    NEED(g, op, res, act_sz(g, (size_t)N * H));
    NEED(g, op, branch, act_sz(g, (size_t)N * H));
    NEED(g, op, w, act_sz(g, (size_t)H));
    NEED(g, op, b, act_sz(g, (size_t)H));
    enter(g);
    g->inner.residual_layernorm_fwd(&g->inner, res_out, out, mean, rstd, res, branch, w, b, N, H,
                                    eps);
    leave(g);
}

static void guard_layernorm_bwd(const ops *o, float *dinp, float *dw, float *db, const float *dout,
                                const float *inp, const float *w, const float *mean,
                                const float *rstd, int N, int H, int accum) {
    guard *g = guard_of(o);
    const char *op = "layernorm_bwd";
    NEED(g, op, dinp, act_sz(g, (size_t)N * H));
    NEED(g, op, dw, f32_sz((size_t)H));
    NEED(g, op, db, f32_sz((size_t)H));
    NEED(g, op, dout, act_sz(g, (size_t)N * H));
    NEED(g, op, inp, act_sz(g, (size_t)N * H));
    NEED(g, op, w, act_sz(g, (size_t)H));
    NEED(g, op, mean, f32_sz((size_t)N));
    NEED(g, op, rstd, f32_sz((size_t)N));
    enter(g);
    g->inner.layernorm_bwd(&g->inner, dinp, dw, db, dout, inp, w, mean, rstd, N, H, accum);
    leave(g);
}

/* ---- attention ----------------------------------------------------------------------------- */
static void guard_attention_fwd(const ops *o, float *out, float *probs, const float *qkv,
                                const float *mask, const ops_dropout *drop, int B, int S, int NH,
                                int HD, float scale, int layout) {
    guard *g = guard_of(o);
    const char *op = "attention_fwd";
    size_t N = (size_t)B * S, W = (size_t)NH * HD;
    NEED(g, op, out, act_sz(g, N * W));
    NEED(g, op, probs, g->inner.attn_state_bytes(&g->inner, B, S, NH, HD));
    NEED(g, op, qkv, act_sz(g, N * 3 * W));
    NEED(g, op, mask, f32_sz(N));
    enter(g);
    g->inner.attention_fwd(&g->inner, out, probs, qkv, mask, drop, B, S, NH, HD, scale, layout);
    leave(g);
}

static void guard_attention_bwd(const ops *o, float *dqkv, const float *dout, const float *out,
                                const float *qkv, const float *probs, const ops_dropout *drop,
                                int B, int S, int NH, int HD, float scale, int layout) {
    guard *g = guard_of(o);
    const char *op = "attention_bwd";
    size_t N = (size_t)B * S, W = (size_t)NH * HD;
    NEED(g, op, dqkv, act_sz(g, N * 3 * W));
    NEED(g, op, dout, act_sz(g, N * W));
    NEED(g, op, out, act_sz(g, N * W));
    NEED(g, op, qkv, act_sz(g, N * 3 * W));
    NEED(g, op, probs, g->inner.attn_state_bytes(&g->inner, B, S, NH, HD));
    enter(g);
    g->inner.attention_bwd(&g->inner, dqkv, dout, out, qkv, probs, drop, B, S, NH, HD, scale,
                           layout);
    leave(g);
}

/* ---- activations --------------------------------------------------------------------------- */
static void guard_gelu_glu_fwd(const ops *o, float *out, const float *inp, int N, int I) {
    guard *g = guard_of(o);
    NEED(g, "gelu_glu_fwd", out, act_sz(g, (size_t)N * (I / 2)));
    NEED(g, "gelu_glu_fwd", inp, act_sz(g, (size_t)N * I));
    enter(g);
    g->inner.gelu_glu_fwd(&g->inner, out, inp, N, I);
    leave(g);
}

static void guard_gelu_glu_bwd(const ops *o, float *dinp, const float *dout, const float *inp,
                               int N, int I) {
    guard *g = guard_of(o);
    NEED(g, "gelu_glu_bwd", dinp, act_sz(g, (size_t)N * I));
    NEED(g, "gelu_glu_bwd", dout, act_sz(g, (size_t)N * (I / 2)));
    NEED(g, "gelu_glu_bwd", inp, act_sz(g, (size_t)N * I));
    enter(g);
    g->inner.gelu_glu_bwd(&g->inner, dinp, dout, inp, N, I);
    leave(g);
}

/* the elementwise maps over n activations: (out, inp) forward, (dinp, dout, x) backward */
static void guard_gelu_fwd(const ops *o, float *out, const float *inp, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "gelu_fwd", out, act_sz(g, n));
    NEED(g, "gelu_fwd", inp, act_sz(g, n));
    enter(g);
    g->inner.gelu_fwd(&g->inner, out, inp, n);
    leave(g);
}

static void guard_gelu_bwd(const ops *o, float *dinp, const float *dout, const float *inp,
                           size_t n) {
    guard *g = guard_of(o);
    NEED(g, "gelu_bwd", dinp, act_sz(g, n));
    NEED(g, "gelu_bwd", dout, act_sz(g, n));
    NEED(g, "gelu_bwd", inp, act_sz(g, n));
    enter(g);
    g->inner.gelu_bwd(&g->inner, dinp, dout, inp, n);
    leave(g);
}

static void guard_tanh_fwd(const ops *o, float *out, const float *inp, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "tanh_fwd", out, act_sz(g, n));
    NEED(g, "tanh_fwd", inp, act_sz(g, n));
    enter(g);
    g->inner.tanh_fwd(&g->inner, out, inp, n);
    leave(g);
}

static void guard_tanh_bwd(const ops *o, float *dinp, const float *dout, const float *out,
                           size_t n) {
    guard *g = guard_of(o);
    NEED(g, "tanh_bwd", dinp, act_sz(g, n));
    NEED(g, "tanh_bwd", dout, act_sz(g, n));
    NEED(g, "tanh_bwd", out, act_sz(g, n));
    enter(g);
    g->inner.tanh_bwd(&g->inner, dinp, dout, out, n);
    leave(g);
}

static void guard_dropout_fwd(const ops *o, float *out, const float *inp, const ops_dropout *drop,
                              size_t n) {
    guard *g = guard_of(o);
    NEED(g, "dropout_fwd", out, act_sz(g, n));
    NEED(g, "dropout_fwd", inp, act_sz(g, n));
    enter(g);
    g->inner.dropout_fwd(&g->inner, out, inp, drop, n);
    leave(g);
}

static void guard_add(const ops *o, float *out, const float *a, const float *b, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "add", out, act_sz(g, n));
    NEED(g, "add", a, act_sz(g, n));
    NEED(g, "add", b, act_sz(g, n));
    enter(g);
    g->inner.add(&g->inner, out, a, b, n);
    leave(g);
}

/* ---- rows ---------------------------------------------------------------------------------- */
static void guard_gather_rows(const ops *o, float *out, const float *inp, const int32_t *idx, int n,
                              int H) {
    guard *g = guard_of(o);
    NEED(g, "gather_rows", out, act_sz(g, (size_t)n * H));
    NEED(g, "gather_rows", inp, act_sz(g, (size_t)H)); /* rows of inp: not an argument */
    NEED(g, "gather_rows", idx, i32_sz((size_t)n));
    enter(g);
    g->inner.gather_rows(&g->inner, out, inp, idx, n, H);
    leave(g);
}

static void guard_scatter_rows_add(const ops *o, float *dinp, const float *dout, const int32_t *idx,
                                   int n, int H) {
    guard *g = guard_of(o);
    NEED(g, "scatter_rows_add", dinp, act_sz(g, (size_t)H)); /* rows of dinp: not an argument */
    NEED(g, "scatter_rows_add", dout, act_sz(g, (size_t)n * H));
    NEED(g, "scatter_rows_add", idx, i32_sz((size_t)n));
    enter(g);
    g->inner.scatter_rows_add(&g->inner, dinp, dout, idx, n, H);
    leave(g);
}

static void guard_pool_fwd(const ops *o, float *out, const float *inp, int mode, int B, int S,
                           int H) {
    guard *g = guard_of(o);
    NEED(g, "pool_fwd", out, act_sz(g, (size_t)B * H));
    NEED(g, "pool_fwd", inp, act_sz(g, (size_t)B * S * H));
    enter(g);
    g->inner.pool_fwd(&g->inner, out, inp, mode, B, S, H);
    leave(g);
}

static void guard_pool_bwd(const ops *o, float *dinp, const float *dout, int mode, int B, int S,
                           int H) {
    guard *g = guard_of(o);
    NEED(g, "pool_bwd", dinp, act_sz(g, (size_t)B * S * H));
    NEED(g, "pool_bwd", dout, act_sz(g, (size_t)B * H));
    enter(g);
    g->inner.pool_bwd(&g->inner, dinp, dout, mode, B, S, H);
    leave(g);
}

/* ---- losses -------------------------------------------------------------------------------- */
static void guard_xent_fwd_bwd(const ops *o, float *losses, float *dlogits, const float *logits,
                               const int32_t *labels, int N, int V, float grad_scale) {
    guard *g = guard_of(o);
    const char *op = "xent_fwd_bwd";
    NEED(g, op, losses, f32_sz((size_t)N));
    NEED(g, op, dlogits, act_sz(g, (size_t)N * V));
    NEED(g, op, logits, act_sz(g, (size_t)N * V));
    NEED(g, op, labels, i32_sz((size_t)N));
    enter(g);
    g->inner.xent_fwd_bwd(&g->inner, losses, dlogits, logits, labels, N, V, grad_scale);
    leave(g);
}

static void guard_mse_fwd_bwd(const ops *o, float *losses, float *dpred, const float *pred,
                              const float *targets, int N) {
    guard *g = guard_of(o);
    const char *op = "mse_fwd_bwd";
    NEED(g, op, losses, f32_sz((size_t)N));
    NEED(g, op, dpred, act_sz(g, (size_t)N));
    NEED(g, op, pred, act_sz(g, (size_t)N));
    NEED(g, op, targets, f32_sz((size_t)N));
    enter(g);
    g->inner.mse_fwd_bwd(&g->inner, losses, dpred, pred, targets, N);
    leave(g);
}

static void guard_count_correct(const ops *o, float *hit, const float *logits,
                                const int32_t *labels, int N, int V) {
    guard *g = guard_of(o);
    const char *op = "count_correct";
    NEED(g, op, hit, f32_sz((size_t)N));
    NEED(g, op, logits, act_sz(g, (size_t)N * V));
    NEED(g, op, labels, i32_sz((size_t)N));
    enter(g);
    g->inner.count_correct(&g->inner, hit, logits, labels, N, V);
    leave(g);
}

/* ---- whole buffers ------------------------------------------------------------------------- */
static void guard_adamw(const ops *o, float *p, float *pa, const float *g_, float *m, float *v,
                        size_t n, double lr, double beta1, double beta2, double eps,
                        double weight_decay, float grad_scale, int64_t t, int coupled) {
    guard *g = guard_of(o);
    NEED(g, "adamw", p, f32_sz(n));
    NEED(g, "adamw", pa, act_sz(g, n));
    need(g, "adamw", "g", g_, f32_sz(n));
    NEED(g, "adamw", m, f32_sz(n));
    NEED(g, "adamw", v, f32_sz(n));
    enter(g);
    g->inner.adamw(&g->inner, p, pa, g_, m, v, n, lr, beta1, beta2, eps, weight_decay, grad_scale,
                   t, coupled);
    leave(g);
}

static double guard_sumsq(const ops *o, const float *x, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "sumsq", x, f32_sz(n));
    enter(g);
    double r = g->inner.sumsq(&g->inner, x, n);
    leave(g);
    return r;
}

static double guard_sum(const ops *o, const float *x, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "sum", x, f32_sz(n));
    enter(g);
    double r = g->inner.sum(&g->inner, x, n);
    leave(g);
    return r;
}

static double guard_sum_act(const ops *o, const float *x, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "sum_act", x, act_sz(g, n));
    enter(g);
    double r = g->inner.sum_act(&g->inner, x, n);
    leave(g);
    return r;
}

static void guard_accumulate(const ops *o, double *acc, const float *x, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "accumulate", acc, sizeof *acc);
    NEED(g, "accumulate", x, f32_sz(n));
    enter(g);
    g->inner.accumulate(&g->inner, acc, x, n);
    leave(g);
}

static void guard_scale(const ops *o, float *x, float s, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "scale", x, act_sz(g, n));
    enter(g);
    g->inner.scale(&g->inner, x, s, n);
    leave(g);
}

static void guard_fill(const ops *o, float *x, float value, size_t n) {
    guard *g = guard_of(o);
    NEED(g, "fill", x, act_sz(g, n));
    enter(g);
    g->inner.fill(&g->inner, x, value, n);
    leave(g);
}

const ops *ops_guard_wrap(const ops *inner) {
    static bool hinted;
    if (!hinted) {
        fprintf(stderr, "guard backend: backend memory is inaccessible outside ops\n");
        hinted = true;
    }
    guard *g = xcalloc(1, sizeof *g);
    g->inner = *inner;
    ops *t = &g->table;
    *t = (ops){
        .name = "cpu-guard",
        .precision = inner->precision,
        .act_bytes = inner->act_bytes,
        .device_memory = true, /* callers take the paths they would take on a GPU */
        .stream = NULL,
        .ctx = inner->ctx,
        .alloc = guard_alloc,
        .free = guard_free,
        .upload = guard_upload,
        .download = guard_download,
        .memset0 = guard_memset0,
        .copy = guard_copy,
        .sync = guard_sync,
        .upload_act = guard_upload_act,
        .download_act = guard_download_act,
        .attn_state_bytes = guard_attn_state_bytes,
        .refresh_weights = guard_refresh_weights,
        .matmul_fwd = guard_matmul_fwd,
        .matmul_bwd = guard_matmul_bwd,
        .embed_fwd = guard_embed_fwd,
        .embed_bwd = guard_embed_bwd,
        .layernorm_fwd = guard_layernorm_fwd,
        .residual_layernorm_fwd = guard_residual_layernorm_fwd,
        .layernorm_bwd = guard_layernorm_bwd,
        .attention_fwd = guard_attention_fwd,
        .attention_bwd = guard_attention_bwd,
        .gelu_glu_fwd = guard_gelu_glu_fwd,
        .gelu_glu_bwd = guard_gelu_glu_bwd,
        .gelu_fwd = guard_gelu_fwd,
        .gelu_bwd = guard_gelu_bwd,
        .tanh_fwd = guard_tanh_fwd,
        .tanh_bwd = guard_tanh_bwd,
        .dropout_fwd = guard_dropout_fwd,
        .add = guard_add,
        .gather_rows = guard_gather_rows,
        .scatter_rows_add = guard_scatter_rows_add,
        .pool_fwd = guard_pool_fwd,
        .pool_bwd = guard_pool_bwd,
        .xent_fwd_bwd = guard_xent_fwd_bwd,
        .mse_fwd_bwd = guard_mse_fwd_bwd,
        .count_correct = guard_count_correct,
        .adamw = guard_adamw,
        .sumsq = guard_sumsq,
        .sum = guard_sum,
        .sum_act = guard_sum_act,
        .accumulate = guard_accumulate,
        .scale = guard_scale,
        .fill = guard_fill,
    };
    snprintf(t->desc, sizeof t->desc, "%s", inner->desc);
    return t;
}
