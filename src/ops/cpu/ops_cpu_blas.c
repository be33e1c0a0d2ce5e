/* Loading OpenBLAS at run time so that cram picks its fast kernels without the user knowing.
 * Debian's OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to SSE3 kernels
 * (about 4x slower); it reads OPENBLAS_CORETYPE only when the library loads. So cram does not
 * link it: on first use we choose a core type from cpuid (unless the environment sets one),
 * set the variable, then dlopen the OpenMP build (cram's own threads are OpenMP). */
#include "ops/ops.h"

#include "core/core.h"

#include <dlfcn.h>
#include <omp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

typedef void (*sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc);
typedef char *(*corename_fn)(void);
typedef int (*parallel_fn)(void);

static struct {
    pthread_once_t once;
    void *lib;
    sgemm_fn sgemm;
    corename_fn corename;
    parallel_fn parallel;
    char path[256];
    char info[512];
} blas = {.once = PTHREAD_ONCE_INIT};

/* The OpenBLAS core type for this CPU's vector units, or NULL to let OpenBLAS decide. */
static const char *coretype_from_cpuid(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return NULL;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return NULL;
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    int ymm_os = (xcr0_lo & 0x6) == 0x6, zmm_os = (xcr0_lo & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return NULL;
    int avx2 = (b >> 5) & 1, f512 = (b >> 16) & 1, bw512 = (b >> 30) & 1, vl512 = (b >> 31) & 1;
    unsigned a1 = 0, b1, c1, d1;
    __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
    int bf16 = (a1 >> 5) & 1;
    if (zmm_os && f512 && bw512 && vl512) return bf16 ? "Cooperlake" : "SkylakeX";
    if (ymm_os && avx2 && fma) return "Haswell";
#endif
    return NULL;
}

static void blas_load(void) {
    const char *user = getenv("OPENBLAS_CORETYPE");
    const char *chosen = NULL, *how = "set by the environment";
    const char *autosel = getenv("CRAM_BLAS_AUTOSELECT"); /* "0": leave OpenBLAS to itself */
    if ((!user || !*user) && !(autosel && strcmp(autosel, "0") == 0)) {
        chosen = coretype_from_cpuid();
        how = "chosen from cpuid";
        if (chosen) setenv("OPENBLAS_CORETYPE", chosen, 1);
    }
    const char *cands[] = {getenv("CRAM_OPENBLAS"),
                           "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
                           "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
                           "libopenblas.so.0", "libopenblas.so"};
    for (size_t k = 0; k < sizeof cands / sizeof *cands && !blas.lib; k++) {
        if (!cands[k] || !*cands[k]) continue;
        blas.lib = dlopen(cands[k], RTLD_NOW | RTLD_LOCAL);
        if (blas.lib) snprintf(blas.path, sizeof blas.path, "%s", cands[k]);
    }
    if (!blas.lib)
        core_die("cannot load OpenBLAS (%s); install libopenblas0-openmp or set CRAM_OPENBLAS",
                 dlerror());
    blas.sgemm = (sgemm_fn)dlsym(blas.lib, "cblas_sgemm");
    blas.corename = (corename_fn)dlsym(blas.lib, "openblas_get_corename");
    blas.parallel = (parallel_fn)dlsym(blas.lib, "openblas_get_parallel");
    if (!blas.sgemm) core_die("%s has no cblas_sgemm", blas.path);
    const char *core = blas.corename ? blas.corename() : "unknown";
    int par = blas.parallel ? blas.parallel() : -1;
    const char *env = getenv("OPENBLAS_CORETYPE");
    snprintf(blas.info, sizeof blas.info, "OpenBLAS %s kernels (OPENBLAS_CORETYPE=%s, %s), %s, %s",
             core, env ? env : "unset", env ? how : "none found", blas.path,
             par == 2   ? "openmp"
             : par == 1 ? "pthreads"
             : par == 0 ? "serial"
                        : "?");
    if (strstr(core, "rescott") || strstr(core, "ore2") || strstr(core, "ehalem"))
        core_log_warn("OpenBLAS runs its slow %s kernels: set OPENBLAS_CORETYPE (e.g. SkylakeX "
                      "or Haswell) to the newest type this CPU supports",
                      core);
}

void ops_cpu_blas_init(void) {
    pthread_once(&blas.once, blas_load);
}

/* ---- subnormal numbers ---------------------------------------------------------------------
 * Fine-tuning a trained model makes gradients below about 1e-38 common in the lower layers, and
 * x86 cores take a microcode assist for every subnormal operand or result: OpenBLAS's sgemm
 * falls from about 100 to below 1 GFLOP/s on such data. Flush-to-zero (results) and
 * denormals-are-zero (operands) are MXCSR bits of each thread. They are set in the calling
 * thread and in every thread of an OpenMP team of the given size; threads created later inherit
 * the creating thread's MXCSR, and the OpenMP build of OpenBLAS computes in the same threads. */
#if defined(__x86_64__) || defined(__i386__)
#include <pmmintrin.h>
#include <xmmintrin.h>
static void ftz_this_thread(bool on) {
    _MM_SET_FLUSH_ZERO_MODE(on ? _MM_FLUSH_ZERO_ON : _MM_FLUSH_ZERO_OFF);
    _MM_SET_DENORMALS_ZERO_MODE(on ? _MM_DENORMALS_ZERO_ON : _MM_DENORMALS_ZERO_OFF);
}
static bool ftz_this_thread_on(void) {
    return _MM_GET_FLUSH_ZERO_MODE() == _MM_FLUSH_ZERO_ON &&
           _MM_GET_DENORMALS_ZERO_MODE() == _MM_DENORMALS_ZERO_ON;
}
#elif defined(__aarch64__)
static void ftz_this_thread(bool on) {
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = on ? fpcr | (1ull << 24) : fpcr & ~(1ull << 24); /* FZ */
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
}
static bool ftz_this_thread_on(void) {
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (fpcr >> 24) & 1;
}
#else
static void ftz_this_thread(bool on) {
    (void)on;
}
static bool ftz_this_thread_on(void) {
    return false;
}
#endif

int ops_cpu_set_threads(int threads, bool flush_subnormals) {
    omp_set_num_threads(threads);
    ftz_this_thread(flush_subnormals);
    int on = 0;
#pragma omp parallel num_threads(threads) reduction(+ : on)
    {
        ftz_this_thread(flush_subnormals);
        on += ftz_this_thread_on();
    }
    return on;
}

const char *ops_cpu_blas_info(void) {
    ops_cpu_blas_init();
    return blas.info;
}

void ops_cpu_sgemm(int transa, int transb, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (!blas.sgemm) ops_cpu_blas_init();
    /* CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 */
    blas.sgemm(101, transa ? 112 : 111, transb ? 112 : 111, M, N, K, alpha, A, lda, B, ldb, beta, C,
               ldc);
}
