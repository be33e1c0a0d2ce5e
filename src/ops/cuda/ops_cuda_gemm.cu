// matmul_fwd and matmul_bwd through cuBLASLt. cuBLASLt is column-major; a row-major [R, C]
// matrix is the column-major [C, R] one, so every product below is written for the transposes:
//   out[N,OC] = inp[N,C] w[OC,C]^T     is  out^T[OC,N]  = w^T . inp^T   (m=OC, n=N,  k=C)
//   dinp[N,C] = dout[N,OC] w[OC,C]     is  dinp^T[C,N]  = w^T . dout^T  (m=C,  n=N,  k=OC)
//   dw[OC,C] += dout^T inp             is  dw^T[C,OC]  += inp^T . dout  (m=C,  n=OC, k=N)
// Descriptors, layouts and the algorithm are made once per shape (types, transposes, leading
// dimensions, pointer alignment, epilogue) and kept: the heuristic runs on the first call of a
// shape only. The compute type is CUBLAS_COMPUTE_32F in both precisions: bf16 products
// accumulate in fp32, and fp32 ones never use TF32.
#include "ops/cuda/cuda_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct gemm_key {
    int ta, tb, m, n, k, lda, ldb, ldc;
    int abtype, ctype; // cudaDataType of A/B and of C/D
    int bias;          // epilogue BIAS
    int beta_nonzero;
    int align[4]; // alignment in bytes of A, B, C(=D) and the bias
} gemm_key;

struct gemm_plan {
    gemm_key key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
};

static int align_of(const void *p) {
    uintptr_t u = (uintptr_t)p;
    int a = 1;
    while (a < 256 && (u & (uintptr_t)a) == 0)
        a <<= 1;
    return a;
}

static gemm_plan *plan_for(cuda_ctx *c, const gemm_key *k) {
    for (int i = 0; i < c->nplans; i++)
        if (memcmp(&c->plans[i].key, k, sizeof *k) == 0) return &c->plans[i];
    if (c->nplans == c->cap_plans) {
        c->cap_plans = c->cap_plans ? 2 * c->cap_plans : 32;
        c->plans = (gemm_plan *)realloc(c->plans, (size_t)c->cap_plans * sizeof *c->plans);
        if (!c->plans) CUDA_DIE("out of host memory");
    }
    gemm_plan *g = &c->plans[c->nplans];
    memset(g, 0, sizeof *g);
    g->key = *k;
    cudaDataType_t ab = (cudaDataType_t)k->abtype, ct = (cudaDataType_t)k->ctype;
    LT(cublasLtMatmulDescCreate(&g->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = k->ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                      tb = k->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (k->bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                          sizeof epi));
        // the bias is a weight's working copy: the activation type, which is also D's here
        LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &ct,
                                          sizeof ct));
    }
    // stored shapes (before the transposes), column-major
    LT(cublasLtMatrixLayoutCreate(&g->la, ab, k->ta ? k->k : k->m, k->ta ? k->m : k->k, k->lda));
    LT(cublasLtMatrixLayoutCreate(&g->lb, ab, k->tb ? k->n : k->k, k->tb ? k->k : k->n, k->ldb));
    LT(cublasLtMatrixLayoutCreate(&g->lc, ct, k->m, k->n, k->ldc));
    cublasLtMatmulPreference_t pref;
    LT(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t wsb = CUDA_LT_WS_BYTES;
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb,
                                            sizeof wsb));
    static const cublasLtMatmulPreferenceAttributes_t al[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++) {
        uint32_t a = (uint32_t)k->align[i < 3 ? i : 2];
        LT(cublasLtMatmulPreferenceSetAttribute(pref, al[i], &a, sizeof a));
    }
    cublasLtMatmulHeuristicResult_t res;
    memset(&res, 0, sizeof res);
    int found = 0;
    // no algorithm may come back as CUBLAS_STATUS_NOT_SUPPORTED as well as found == 0
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(c->lt, g->desc, g->la, g->lb, g->lc, g->lc,
                                                       pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found < 1 || res.state != CUBLAS_STATUS_SUCCESS)
        CUDA_DIE("cuBLASLt has no algorithm for a %s GEMM m=%d n=%d k=%d (lda=%d ldb=%d ldc=%d, "
                 "transposes %d%d, alignments %d/%d/%d bytes%s, %s output): cuBLAS status %d/%d",
                 ab == CUDA_R_16BF ? "bf16" : "fp32", k->m, k->n, k->k, k->lda, k->ldb, k->ldc,
                 k->ta, k->tb, k->align[0], k->align[1], k->align[2], k->bias ? ", bias" : "",
                 ct == CUDA_R_16BF ? "bf16" : "fp32", (int)st, (int)res.state);
    g->algo = res.algo;
    c->nplans++;
    return g;
}

// D = A.B (+ D when beta) (+ bias), column-major, with the plan of this shape
static void gemm(const ops *o, int ta, int tb, int m, int n, int k, const void *A, int lda,
                 const void *B, int ldb, void *D, int ldc, bool d_fp32, float beta,
                 const void *bias) {
    if (m <= 0 || n <= 0) return;
    cuda_ctx *c = ctx_of(o);
    if (k <= 0) { // an empty product: adding it changes nothing; other uses are a caller bug
        if (beta != 0.0f && !bias) return;
        CUDA_DIE("a GEMM with an empty inner dimension (m=%d n=%d)", m, n);
    }
    gemm_key key;
    memset(&key, 0, sizeof key);
    key.ta = ta, key.tb = tb, key.m = m, key.n = n, key.k = k;
    key.lda = lda, key.ldb = ldb, key.ldc = ldc;
    key.abtype = c->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    key.ctype = d_fp32 || !c->bf16 ? CUDA_R_32F : CUDA_R_16BF;
    key.bias = bias != NULL;
    key.beta_nonzero = beta != 0.0f;
    key.align[0] = align_of(A), key.align[1] = align_of(B), key.align[2] = align_of(D);
    key.align[3] = bias ? align_of(bias) : 0;
    gemm_plan *g = plan_for(c, &key);
    if (bias)
        LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                          sizeof bias));
    float alpha = 1.0f;
    LT(cublasLtMatmul(c->lt, g->desc, &alpha, A, g->la, B, g->lb, &beta, D, g->lc, D, g->lc,
                      &g->algo, c->lt_ws, CUDA_LT_WS_BYTES, c->stream));
}

static void cu_matmul_fwd(const ops *o, float *out, const float *inp, const float *w,
                          const float *bias, int N, int C, int OC, int accum) {
    // cuBLASLt's alignment preferences cover A, B, C and D but not the epilogue's bias, and its
    // kernels may read the bias in 16-byte vectors: a bias that starts elsewhere (the model packs
    // its parameters without padding) is read from an aligned copy in the scratch
    if (bias && align_of(bias) < 16 && N > 0 && OC > 0) {
        size_t nb = (size_t)OC * (size_t)o->act_bytes;
        void *a = ws_take(o, nb, "an aligned copy of a bias");
        CK(cudaMemcpyAsync(a, bias, nb, cudaMemcpyDeviceToDevice, ctx_of(o)->stream));
        bias = (const float *)a;
    }
    gemm(o, 1, 0, OC, N, C, w, C, inp, C, out, OC, false, accum ? 1.0f : 0.0f, bias);
}

static void cu_matmul_bwd(const ops *o, float *dinp, float *dw, float *dbias, const float *dout,
                          const float *inp, const float *w, int N, int C, int OC, int accum_dinp) {
    // dw first: dinp may alias inp, which dw reads; the stream keeps the order
    if (dw) gemm(o, 0, 1, C, OC, N, inp, C, dout, OC, dw, C, true, 1.0f, NULL);
    if (dbias) cuda_colsum_add(o, dbias, dout, N, OC);
    if (dinp)
        gemm(o, 0, 0, C, N, OC, w, C, dout, OC, dinp, C, false, accum_dinp ? 1.0f : 0.0f, NULL);
}

void cuda_gemm_free(cuda_ctx *c) {
    for (int i = 0; i < c->nplans; i++) {
        cublasLtMatmulDescDestroy(c->plans[i].desc);
        cublasLtMatrixLayoutDestroy(c->plans[i].la);
        cublasLtMatrixLayoutDestroy(c->plans[i].lb);
        cublasLtMatrixLayoutDestroy(c->plans[i].lc);
    }
    free(c->plans);
    c->plans = NULL;
    c->nplans = c->cap_plans = 0;
}

void cuda_fill_gemm(ops *t) {
    t->matmul_fwd = cu_matmul_fwd;
    t->matmul_bwd = cu_matmul_bwd;
}
