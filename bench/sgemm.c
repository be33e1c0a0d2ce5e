/* sgemm GFLOP/s of the OpenBLAS that cram loads, under each kernel choice. OpenBLAS picks its
 * kernels when it loads, so every setting runs in a fresh child process:
 *   bench_sgemm             all settings, one RESULT line each
 *   bench_sgemm --child     the current environment only */
#include "core/core.h"
#include "ops/ops.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static double gflops(int M, int N, int K, int ta, int tb) {
    float *A = xmalloc((size_t)M * K * sizeof(float)), *B = xmalloc((size_t)K * N * sizeof(float));
    float *C = xcalloc((size_t)M * N, sizeof(float));
    for (size_t i = 0; i < (size_t)M * K; i++)
        A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++)
        B[i] = (float)(i % 5) * 0.1f;
    int lda = ta ? M : K, ldb = tb ? K : N;
    ops_cpu_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N); /* warm up */
    int reps = 0;
    double t0 = core_now(), t;
    do {
        ops_cpu_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        reps++;
        t = core_now() - t0;
    } while (t < 1.0);
    free(A), free(B), free(C);
    return 2.0 * M * N * K * reps / t / 1e9;
}

static int child(const char *label) {
    printf("# %s: %s, %d threads\n", label, ops_cpu_blas_info(), omp_get_max_threads());
    struct {
        int M, N, K, ta, tb;
        const char *what;
    } shapes[] = {
        {1024, 2304, 768, 0, 1, "qkv fwd (N=1024 rows)"}, {1024, 3072, 768, 0, 1, "ffn in fwd"},
        {1024, 768, 1536, 0, 0, "ffn out dgrad"},         {3072, 768, 1024, 1, 0, "ffn in wgrad"},
        {256, 32768, 768, 0, 1, "sparse decoder fwd"},
    };
    double sum = 0.0;
    int n = (int)(sizeof shapes / sizeof *shapes);
    for (int k = 0; k < n; k++) {
        double g = gflops(shapes[k].M, shapes[k].N, shapes[k].K, shapes[k].ta, shapes[k].tb);
        sum += g;
        printf("RESULT sgemm setting=%s shape=%dx%dx%d%s%s gflops=%.1f  # %s\n", label, shapes[k].M,
               shapes[k].N, shapes[k].K, shapes[k].ta ? "_tA" : "", shapes[k].tb ? "_tB" : "", g,
               shapes[k].what);
    }
    printf("RESULT sgemm setting=%s mean_gflops=%.1f\n", label, sum / n);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
    struct {
        const char *label, *coretype, *autosel;
    } settings[] = {
        {"openblas-own-detection", NULL, "0"}, {"cram-default", NULL, NULL},
        {"Haswell", "Haswell", NULL},          {"SkylakeX", "SkylakeX", NULL},
        {"Cooperlake", "Cooperlake", NULL},
    };
    const char *outer = getenv("OPENBLAS_CORETYPE");
    if (outer)
        printf("# note: this environment sets OPENBLAS_CORETYPE=%s; cram respects it\n", outer);
    for (size_t k = 0; k < sizeof settings / sizeof *settings; k++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            unsetenv("OPENBLAS_CORETYPE");
            unsetenv("CRAM_BLAS_AUTOSELECT");
            if (settings[k].coretype) setenv("OPENBLAS_CORETYPE", settings[k].coretype, 1);
            if (settings[k].autosel) setenv("CRAM_BLAS_AUTOSELECT", settings[k].autosel, 1);
            execl("/proc/self/exe", argv[0], "--child", settings[k].label, (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
    }
    return 0;
}
