// The CUDA backend ("cuda"): the ops table on one NVIDIA GPU, in two precisions.
//
//   fp32  every A element is an fp32; GEMMs through cuBLASLt with CUBLAS_COMPUTE_32F (TF32 off):
//         the numbers of the fp32 CPU row up to summation order.
//   bf16  A elements (activations, their gradients, logits, the working copy of the weights) are
//         bf16; GEMMs read bf16 and accumulate in fp32, weight gradients land in fp32 buffers;
//         LayerNorm statistics, softmax, the loss and every reduction run in fp32 or wider. The
//         policy of the bf16-emulating CPU row (cpu-bf16), which is its oracle.
//
// What holds on both: no floating-point atomics anywhere (reductions are ordered two-stage sums,
// repeated embedding ids are summed in row order after a stable sort), so two runs give the same
// bytes; dropout masks are ops_dropout_keep's, element for element the CPU's; every buffer is
// allocated by the caller before its loop, and the ops use a scratch region reserved when the
// backend opens. This file holds memory, conversions at the edges and the table; the kernels live
// in ops_cuda_kernels.cu, ops_cuda_attention.cu (plain), ops_cuda_fattn.cu (fused, and the choice
// between the two), ops_cuda_gemm.cu and ops_cuda_adamw.cu.
#include "ops/cuda/cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- allocation bookkeeping (for gpu_alloc_stats and the end-of-run report) ----
typedef struct {
    void *p;
    size_t bytes;
} alloc_rec;
static alloc_rec *recs;
static size_t nrecs, caprecs, bytes_now, bytes_peak;

static void rec_add(void *p, size_t bytes) {
    if (nrecs == caprecs) {
        caprecs = caprecs ? 2 * caprecs : 256;
        recs = (alloc_rec *)realloc(recs, caprecs * sizeof *recs);
        if (!recs) CUDA_DIE("out of host memory");
    }
    recs[nrecs++] = {p, bytes};
    bytes_now += bytes;
    if (bytes_now > bytes_peak) bytes_peak = bytes_now;
}

static void rec_remove(void *p) {
    for (size_t i = nrecs; i-- > 0;)
        if (recs[i].p == p) {
            bytes_now -= recs[i].bytes;
            recs[i] = recs[--nrecs];
            return;
        }
}

extern "C" void gpu_alloc_stats(size_t *in_use, size_t *peak) {
    *in_use = bytes_now;
    *peak = bytes_peak;
}

static void *dev_alloc(int dev, size_t bytes, const char *what) {
    void *p = NULL;
    size_t n = (bytes + 255) / 256 * 256;
    if (n == 0) n = 256;
    cudaError_t e = cudaMalloc(&p, n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        CUDA_DIE("out of GPU memory: %s needs %zu bytes on GPU %d, %zu of %zu free (%s); cram "
                 "holds %zu bytes",
                 what, bytes, dev, fr, tot, cudaGetErrorString(e), bytes_now);
    }
    rec_add(p, n);
    return p;
}

static void dev_free(void *p) {
    if (!p) return;
    rec_remove(p);
    CK(cudaFree(p));
}

// ---- memory ops ----
static void cu_alloc_zero(const ops *o, void **out, size_t bytes) {
    cuda_ctx *c = ctx_of(o);
    *out = dev_alloc(c->dev, bytes, "a backend buffer");
    CK(cudaMemsetAsync(*out, 0, bytes ? bytes : 1, c->stream));
}
static void *cu_alloc(const ops *o, size_t bytes) {
    void *p;
    cu_alloc_zero(o, &p, bytes);
    return p;
}
static void cu_free(const ops *o, void *p) {
    if (!p) return;
    CK(cudaStreamSynchronize(ctx_of(o)->stream)); // nothing queued may still use it
    dev_free(p);
}

// Kernels flag bad inputs in a device word; it is read whenever the host waits for the stream.
static void check_err(const ops *o) {
    cuda_ctx *c = ctx_of(o);
    int e = 0;
    CK(cudaMemcpy(&e, c->err, sizeof e, cudaMemcpyDeviceToHost));
    if (e & CUDA_ERR_LABEL)
        CUDA_DIE("a label outside the vocabulary reached the cross-entropy on the GPU");
    if (e & CUDA_ERR_ID) CUDA_DIE("a token id or type outside its table reached the embedding");
}

static void cu_sync(const ops *o) {
    CK(cudaStreamSynchronize(ctx_of(o)->stream));
    check_err(o);
}
static void cu_upload(const ops *o, void *dst, const void *src, size_t bytes) {
    // from pageable memory the driver stages the source before the call returns (the behaviour
    // every CUDA program that reuses its host buffers rests on), so the caller may reuse it
    if (bytes) CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx_of(o)->stream));
}
static void cu_download(const ops *o, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx_of(o)->stream));
    cu_sync(o);
}
static void cu_memset0(const ops *o, void *dst, size_t bytes) {
    if (bytes) CK(cudaMemsetAsync(dst, 0, bytes, ctx_of(o)->stream));
}
static void cu_copy(const ops *o, void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src)
        CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_of(o)->stream));
}

// The bf16 conversions go through a fixed pinned buffer, CUDA_STAGE_ELEMS elements at a time. An
// upload from it is a true asynchronous copy that still reads it after cudaMemcpyAsync returns,
// so before the host rewrites the buffer it waits for the event recorded after the last upload
// from it; a download into it is waited for (cu_sync) before the host converts it.
static uint16_t *stage(cuda_ctx *c) {
    if (c->stage_busy) {
        CK(cudaEventSynchronize(c->stage_ev));
        c->stage_busy = false;
    }
    return c->host_stage;
}

static void cu_upload_act(const ops *o, float *dst, const float *src, size_t n) {
    cuda_ctx *c = ctx_of(o);
    if (!c->bf16) return cu_upload(o, dst, src, n * sizeof(float));
    uint16_t *d = (uint16_t *)dst;
    for (size_t i = 0; i < n; i += CUDA_STAGE_ELEMS) {
        size_t len = n - i < (size_t)CUDA_STAGE_ELEMS ? n - i : (size_t)CUDA_STAGE_ELEMS;
        uint16_t *h = stage(c);
        ops_bf16_round_n(h, src + i, len);
        CK(cudaMemcpyAsync(d + i, h, len * sizeof(uint16_t), cudaMemcpyHostToDevice, c->stream));
        CK(cudaEventRecord(c->stage_ev, c->stream));
        c->stage_busy = true;
    }
}
static void cu_download_act(const ops *o, float *dst, const float *src, size_t n) {
    cuda_ctx *c = ctx_of(o);
    if (!c->bf16) return cu_download(o, dst, src, n * sizeof(float));
    const uint16_t *s = (const uint16_t *)src;
    for (size_t i = 0; i < n; i += CUDA_STAGE_ELEMS) {
        size_t len = n - i < (size_t)CUDA_STAGE_ELEMS ? n - i : (size_t)CUDA_STAGE_ELEMS;
        uint16_t *h = stage(c);
        // into pinned memory the copy is asynchronous: the stream is waited for before reading
        CK(cudaMemcpyAsync(h, s + i, len * sizeof(uint16_t), cudaMemcpyDeviceToHost, c->stream));
        cu_sync(o);
        ops_bf16_float_n(dst + i, h, len);
    }
}

static size_t cu_attn_state_bytes(const ops *o, int B, int S, int NH, int HD) {
    (void)o, (void)HD;
    return (size_t)B * NH * S * S * sizeof(float); // the fp32 softmax probabilities
}

// ---- the table ----
static ops cuda_proto(void) {
    ops t;
    memset(&t, 0, sizeof t);
    t.name = "cuda";
    t.device_memory = true;
    t.alloc = cu_alloc;
    t.free = cu_free;
    t.upload = cu_upload;
    t.download = cu_download;
    t.memset0 = cu_memset0;
    t.copy = cu_copy;
    t.sync = cu_sync;
    t.upload_act = cu_upload_act;
    t.download_act = cu_download_act;
    t.attn_state_bytes = cu_attn_state_bytes;
    cuda_fill_gemm(&t);
    cuda_fill_kernels(&t);
    cuda_fill_attention(&t);
    cuda_fill_adamw(&t);
    return t;
}

// Every entry filled: a missing kernel is a build defect, caught when the backend opens.
static const char *first_missing(const ops *t) {
    const void *const *f = (const void *const *)&t->alloc;
    const void *const *end = (const void *const *)(&t->fill + 1);
    static const char *unknown = "an op";
    for (; f < end; f++)
        if (!*f) return unknown;
    return NULL;
}

extern "C" const ops *ops_cuda_open(int dev, bool bf16, char *err, size_t errlen) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        snprintf(err, errlen, "no CUDA GPU is visible (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return NULL;
    }
    if (dev < 0 || dev >= count) {
        snprintf(err, errlen, "GPU %d does not exist (%d visible)", dev, count);
        return NULL;
    }
    cudaDeviceProp p;
    if ((e = cudaSetDevice(dev)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&p, dev)) != cudaSuccess) {
        snprintf(err, errlen, "cannot use GPU %d: %s", dev, cudaGetErrorString(e));
        return NULL;
    }
    if (bf16 && p.major < 8) {
        snprintf(err, errlen,
                 "GPU %d (%s, compute capability %d.%d) has no bf16 tensor cores; use "
                 "impl.precision=fp32",
                 dev, p.name, p.major, p.minor);
        return NULL;
    }
    int attn_mode = CUDA_ATTN_AUTO;
    const char *am = getenv("CRAM_CUDA_ATTN");
    if (am && *am && strcmp(am, "auto")) {
        if (strcmp(am, "plain") == 0)
            attn_mode = CUDA_ATTN_PLAIN;
        else if (strcmp(am, "fused") == 0)
            attn_mode = CUDA_ATTN_FUSED;
        else {
            snprintf(err, errlen, "CRAM_CUDA_ATTN=%.64s: expected auto, plain or fused", am);
            return NULL;
        }
    }
    cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
    ops *t = (ops *)calloc(1, sizeof *t);
    if (!c || !t) {
        free(c), free(t);
        snprintf(err, errlen, "out of host memory");
        return NULL;
    }
    c->dev = dev;
    c->bf16 = bf16;
    c->sm_count = p.multiProcessorCount;
    c->smem_optin = (int)p.sharedMemPerBlockOptin;
    c->attn_mode = attn_mode;
    CK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    LT(cublasLtCreate(&c->lt));
    c->lt_ws = dev_alloc(dev, CUDA_LT_WS_BYTES, "the cuBLASLt workspace");
    c->ws = (char *)dev_alloc(dev, CUDA_WS_BYTES, "the op scratch");
    c->err = (int *)dev_alloc(dev, sizeof(int), "the error flag");
    CK(cudaMemsetAsync(c->err, 0, sizeof(int), c->stream));
    CK(cudaEventCreateWithFlags(&c->stage_ev, cudaEventDisableTiming));
    CK(cudaMallocHost((void **)&c->host_stage, CUDA_STAGE_ELEMS * sizeof(uint16_t)));
    *t = cuda_proto();
    t->precision = bf16 ? "bf16" : "fp32";
    t->act_bytes = bf16 ? 2 : 4;
    t->stream = c->stream;
    t->ctx = c;
    cuda_fattn_open(t, c);
    const char *miss = first_missing(t);
    if (miss) CUDA_DIE("the CUDA table lacks %s", miss);
    const char *attn = attn_mode == CUDA_ATTN_PLAIN   ? "; plain attention (CRAM_CUDA_ATTN=plain)"
                       : attn_mode == CUDA_ATTN_FUSED ? "; fused attention (CRAM_CUDA_ATTN=fused)"
                       : c->fattn_ready ? "; fused attention at head width 64 and S <= 512"
                                        : "";
    snprintf(t->desc, sizeof t->desc,
             "cuda, %s activations and weights%s, GPU %d: %.120s (compute capability %d.%d, "
             "%.1f GiB, %d SMs)%s",
             t->precision, bf16 ? " (fp32 masters and accumulation)" : " (TF32 off)", dev, p.name,
             p.major, p.minor, (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
             p.multiProcessorCount, attn);
    CK(cudaStreamSynchronize(c->stream));
    return t;
}

extern "C" void ops_cuda_close(const ops *o) {
    if (!o) return;
    cuda_ctx *c = ctx_of(o);
    cudaStreamSynchronize(c->stream);
    cuda_gemm_free(c);
    dev_free(c->lt_ws);
    dev_free(c->ws);
    dev_free(c->err);
    cublasLtDestroy(c->lt);
    cudaStreamDestroy(c->stream);
    cudaEventDestroy(c->stage_ev);
    cudaFreeHost(c->host_stage);
    free(c);
    free((void *)o);
}
