// The dist module. Run alone (ctest), it checks the single-process semantics: every collective is
// the identity, the votes and helpers give the local answer, launcher detection and backend
// choice, the build's MPI/NCCL probes, and (where a GPU exists) NCCL in one process on device
// buffers. Started by mpirun with several ranks (tests/cli_dist.sh does that), it checks the
// collectives across ranks: sum, average, broadcast, MIN/MAX, the stop vote, the ZeRO-1 pair,
// and that every rank ends up with the same bits; on a node with a GPU per rank it repeats them
// through NCCL (mpirun -np 1 -x CRAM_DIST_FORCE=1 does that on a one-GPU machine).
// CRAM_DIST_BENCH_FLOATS=n also times an all-reduce of n floats.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <math.h>

#include "core/core.h"
#include "ops/cuda/gpu.h"
#include "dist/dist.h"

#ifdef CRAM_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

/* ---- helpers ------------------------------------------------------------------------------ */

/* The launcher variables dist reads, saved so the single-process tests can fake a launcher. */
static const char *launcher_vars[] = {
    "OMPI_COMM_WORLD_SIZE", "PMI_SIZE",     "PMIX_RANK",      "PMI_RANK",
    "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "CRAM_DIST_FORCE"};
#define NVARS (sizeof launcher_vars / sizeof *launcher_vars)

static void clear_launcher(void) {
    for (size_t i = 0; i < NVARS; i++)
        unsetenv(launcher_vars[i]);
}

static float *filled(size_t n, uint64_t seed, uint32_t rank) {
    float *x = xmalloc(n * sizeof *x);
    core_rng r;
    core_rng_init(&r, seed, rank, 0, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = core_rng_normal(&r);
    return x;
}

/* ---- one process -------------------------------------------------------------------------- */

static void test_single_identity(void **state) {
    (void)state;
    clear_launcher();
    dist d;
    char err[512] = "";
    assert_int_equal(dist_init(&d, "auto", false, err, sizeof err), 0);
    assert_int_equal(d.kind, DIST_NONE);
    assert_string_equal(d.name, "none");
    assert_int_equal(d.rank, 0);
    assert_int_equal(d.world, 1);
    assert_int_equal(d.local_rank, 0);
    assert_int_equal(d.local_world, 1);
    assert_int_equal(d.device, -1);
    assert_int_equal(core_log_rank(), 0);

    /* float collectives leave the buffer alone, non-finite values included */
    size_t n = 1001;
    float *x = filled(n, 7, 0), *want = xmalloc(n * sizeof *want);
    x[3] = NAN;
    x[5] = INFINITY;
    memcpy(want, x, n * sizeof *x);
    dist_allreduce_sum(&d, x, n);
    dist_allreduce_avg(&d, x, n);
    dist_bcast_floats(&d, x, n);
    assert_int_equal(dist_shard_len(&d, n), n);
    dist_reduce_scatter_avg(&d, x, n);
    dist_all_gather(&d, x, n);
    dist_allreduce_avg_start(&d, x + 1, 500);
    dist_allreduce_avg_start(&d, x + 501, 500);
    dist_progress(&d);
    dist_allreduce_wait(&d);
    dist_sync(&d);
    assert_memory_equal(x, want, n * sizeof *x);

    double f[3] = {1.5, -2.0, 1e300};
    dist_allreduce_f64(&d, f, 3, DIST_SUM);
    assert_true(f[0] == 1.5 && f[1] == -2.0 && f[2] == 1e300);
    int64_t i64[2] = {INT64_MIN, 42};
    dist_allreduce_i64(&d, i64, 2, DIST_MAX);
    assert_true(i64[0] == INT64_MIN && i64[1] == 42);
    int iv[70];
    for (int i = 0; i < 70; i++)
        iv[i] = i - 35; /* more than one 64-int piece */
    dist_allreduce_int(&d, iv, 70, DIST_MIN);
    for (int i = 0; i < 70; i++)
        assert_int_equal(iv[i], i - 35);
    char bytes[5] = "abcd";
    dist_bcast_bytes(&d, bytes, sizeof bytes);
    assert_string_equal(bytes, "abcd");
    dist_barrier(&d);
    dist_abort(&d, 3); /* one process: returns, the caller exits */

    /* decisions are the local ones */
    dist_vote v = dist_vote_step(&d, false, false);
    assert_false(v.stop);
    assert_false(v.nonfinite);
    v = dist_vote_step(&d, true, true);
    assert_true(v.stop);
    assert_true(v.nonfinite);
    assert_true(dist_mean(&d, 3.25) == 3.25);
    assert_true(dist_same_everywhere(&d, x, n * sizeof *x));

    char desc[256];
    dist_describe(&d, desc, sizeof desc);
    assert_string_equal(desc, "none: one process");
    dist_free(&d);
    dist_free(&d); /* twice is harmless */
    assert_int_equal(d.world, 1);
    free(x);
    free(want);
}

typedef struct calls {
    int n;
    int fail; /* fail from this call on (1-based), 0 never */
    char path[256];
} calls;

static int count_call(void *ctx, char *err, size_t errlen) {
    calls *c = ctx;
    c->n++;
    if (c->path[0]) { /* append this rank's number: the order of the calls */
        FILE *f = fopen(c->path, "a");
        assert_non_null(f);
        fprintf(f, "%d\n", core_log_rank());
        fclose(f);
    }
    if (c->fail && c->n >= c->fail) {
        snprintf(err, errlen, "planned failure");
        return -1;
    }
    return 0;
}

static void test_single_first_then_rest(void **state) {
    (void)state;
    clear_launcher();
    dist d;
    char err[512] = "";
    assert_int_equal(dist_init(&d, "auto", false, err, sizeof err), 0);
    for (int per_node = 0; per_node < 2; per_node++) {
        calls c = {0};
        assert_int_equal(dist_first_then_rest(&d, per_node, count_call, &c, err, sizeof err), 0);
        assert_int_equal(c.n, 1); /* rank 0 is the only rank: once */
        c = (calls){.fail = 1};
        assert_int_equal(dist_first_then_rest(&d, per_node, count_call, &c, err, sizeof err), -1);
        assert_string_equal(err, "planned failure");
    }
    dist_free(&d);
}

static void test_backend_names(void **state) {
    (void)state;
    clear_launcher();
    const char *ok[] = {"auto", "nccl", "mpi", "gloo", "none", "", NULL};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        for (int gpu = 0; gpu < 2; gpu++) {
            dist d;
            char err[512] = "";
            assert_int_equal(dist_init(&d, ok[i], gpu, err, sizeof err), 0);
            assert_int_equal(d.kind, DIST_NONE); /* one process whatever the name */
            assert_int_equal(d.device, gpu ? 0 : -1);
            dist_free(&d);
        }
    }
    dist d;
    char err[512] = "";
    assert_int_equal(dist_init(&d, "gl00", false, err, sizeof err), -1);
    assert_non_null(strstr(err, "impl.dist_backend=gl00"));
    assert_non_null(strstr(err, "auto, nccl, mpi, gloo or none"));
    assert_int_equal(d.world, 1); /* still usable as one process */
}

static void test_env_world(void **state) {
    (void)state;
    clear_launcher();
    assert_int_equal(dist_env_world(), 1);
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    assert_int_equal(dist_env_world(), 4);
    clear_launcher();
    setenv("PMI_SIZE", "3", 1);
    assert_int_equal(dist_env_world(), 3);
    clear_launcher();
    setenv("OMPI_COMM_WORLD_SIZE", "x", 1); /* garbage is no launcher */
    assert_int_equal(dist_env_world(), 1);
    clear_launcher();
    setenv("SLURM_NTASKS", "8", 1); /* inside an allocation, but not started by srun */
    assert_int_equal(dist_env_world(), 1);
    setenv("PMIX_RANK", "0", 1);
    assert_int_equal(dist_env_world(), 8);
    setenv("SLURM_STEP_NUM_TASKS", "6", 1);
    assert_int_equal(dist_env_world(), 6);
    clear_launcher();
    setenv("OMPI_COMM_WORLD_SIZE", "1", 1); /* mpirun -np 1: nothing to join */
    dist d;
    char err[512] = "";
    assert_int_equal(dist_init(&d, "auto", false, err, sizeof err), 0);
    assert_int_equal(d.kind, DIST_NONE);
    clear_launcher();
}

/* Refusals that happen before any library is touched. */
static void test_refusals(void **state) {
    (void)state;
    dist d;
    char err[512] = "";
    clear_launcher();
    setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
    assert_int_equal(dist_init(&d, "none", false, err, sizeof err), -1);
    assert_non_null(strstr(err, "started as 3 processes but impl.dist_backend=none"));
    assert_int_equal(dist_init(&d, "mpi", true, err, sizeof err), -1);
    assert_non_null(strstr(err, "use impl.dist_backend=nccl"));
    assert_int_equal(dist_init(&d, "gloo", true, err, sizeof err), -1);
    if (!dist_compiled(DIST_MPI)) {
        assert_int_equal(dist_init(&d, "auto", false, err, sizeof err), -1);
        assert_non_null(strstr(err, "built without MPI"));
    }
    if (!dist_compiled(DIST_NCCL)) {
        assert_int_equal(dist_init(&d, "auto", true, err, sizeof err), -1);
        assert_non_null(strstr(err, "without NCCL"));
    }
    assert_int_equal(d.world, 1);
    clear_launcher();
}

static void test_nccl_probe(void **state) {
    (void)state;
    int version = -1;
    char err[512] = "";
    int rc = dist_nccl_probe(&version, err, sizeof err);
    if (!dist_compiled(DIST_NCCL)) {
        assert_int_equal(rc, -1);
        assert_int_equal(version, 0);
        assert_non_null(strstr(err, "without NCCL"));
        printf("nccl: not in this build\n");
        return;
    }
    if (rc != 0) { /* the build found nccl.h; this machine may still lack the library */
        printf("nccl: compiled in, library not loadable here: %s\n", err);
        assert_non_null(strstr(err, "CRAM_NCCL_LIBRARY"));
        return;
    }
    printf("nccl: library %d.%d.%d resolves every function cram calls\n", version / 10000,
           version / 100 % 100, version % 100);
    assert_true(version >= 21400);
}

/* ---- float collectives on device buffers (NCCL) ------------------------------------------- */

#ifdef CRAM_HAVE_CUDA
#define CUDA_OK(call) assert_int_equal((call), cudaSuccess)

/* The float collectives through d on device memory; returns the results to the host. x holds
 * this rank's input; world ranks each contributed the inputs filled(n, seed, r). */
static void device_collectives(dist *d, size_t n) {
    float *x = filled(n, 11, (uint32_t)d->rank), *got = xmalloc(n * sizeof *got);
    float *dx;
    CUDA_OK(cudaMalloc((void **)&dx, n * sizeof *dx));
    /* what the sum should be, computed here in rank order */
    float *sum = xcalloc(n, sizeof *sum);
    for (int r = 0; r < d->world; r++) {
        float *o = filled(n, 11, (uint32_t)r);
        for (size_t i = 0; i < n; i++)
            sum[i] += o[i];
        free(o);
    }
    float tol = 1e-6f * (float)d->world * 8.0f; /* |x| < 8: a few ulps of the largest sum */

    CUDA_OK(cudaMemcpy(dx, x, n * sizeof *x, cudaMemcpyHostToDevice));
    dist_allreduce_sum(d, dx, n);
    dist_sync(d);
    CUDA_OK(cudaMemcpy(got, dx, n * sizeof *x, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++)
        assert_float_equal(got[i], sum[i], tol);
    assert_true(dist_same_everywhere(d, got, n * sizeof *got));

    CUDA_OK(cudaMemcpy(dx, x, n * sizeof *x, cudaMemcpyHostToDevice));
    dist_allreduce_avg(d, dx, n);
    dist_sync(d);
    CUDA_OK(cudaMemcpy(got, dx, n * sizeof *x, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++)
        assert_float_equal(got[i], sum[i] / (float)d->world, tol);

    /* buckets, last slice first as a backward pass would post them */
    CUDA_OK(cudaMemcpy(dx, x, n * sizeof *x, cudaMemcpyHostToDevice));
    for (size_t end = n; end > 0;) {
        size_t b = end > 100000 ? 100000 : end;
        dist_allreduce_avg_start(d, dx + end - b, b);
        end -= b;
    }
    dist_allreduce_wait(d);
    dist_sync(d);
    CUDA_OK(cudaMemcpy(got, dx, n * sizeof *x, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++)
        assert_float_equal(got[i], sum[i] / (float)d->world, tol);

    /* ZeRO-1 pair: shard averages, then every shard everywhere */
    size_t m = n - n % (size_t)d->world;
    CUDA_OK(cudaMemcpy(dx, x, m * sizeof *x, cudaMemcpyHostToDevice));
    dist_reduce_scatter_avg(d, dx, m);
    dist_all_gather(d, dx, m);
    dist_sync(d);
    CUDA_OK(cudaMemcpy(got, dx, m * sizeof *x, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < m; i++)
        assert_float_equal(got[i], sum[i] / (float)d->world, tol);

    /* broadcast: rank 0's input everywhere */
    CUDA_OK(cudaMemcpy(dx, x, n * sizeof *x, cudaMemcpyHostToDevice));
    dist_bcast_floats(d, dx, n);
    dist_sync(d);
    CUDA_OK(cudaMemcpy(got, dx, n * sizeof *x, cudaMemcpyDeviceToHost));
    float *x0 = filled(n, 11, 0);
    assert_memory_equal(got, x0, n * sizeof *x0);

    CUDA_OK(cudaFree(dx));
    free(x0);
    free(x);
    free(got);
    free(sum);
}

static void test_nccl_one_process(void **state) {
    (void)state;
    gpu_info gi;
    char err[512] = "";
    if (gpu_query(&gi, err, sizeof err) || gi.count == 0) {
        printf("skipped: no usable GPU (%s)\n", err[0] ? err : "the CUDA runtime sees no device");
        skip();
    }
    int version;
    if (dist_nccl_probe(&version, err, sizeof err)) {
        printf("skipped: %s\n", err);
        skip();
    }
    clear_launcher();
    setenv("CRAM_DIST_FORCE", "1", 1);
    dist d;
    assert_int_equal(dist_init(&d, "nccl", true, err, sizeof err), 0);
    unsetenv("CRAM_DIST_FORCE");
    assert_int_equal(d.kind, DIST_NCCL);
    assert_int_equal(d.world, 1);
    assert_int_equal(d.device, 0);
    char desc[256];
    dist_describe(&d, desc, sizeof desc);
    printf("%s\n", desc);
    assert_non_null(strstr(desc, "nccl: rank 0 of 1"));
    device_collectives(&d, 1 << 20);
    dist_vote v = dist_vote_step(&d, true, false);
    assert_true(v.stop && !v.nonfinite);
    dist_barrier(&d);
    dist_free(&d);
    assert_int_equal(d.kind, DIST_NONE);
}
#else
static void test_nccl_one_process(void **state) {
    (void)state;
    printf("skipped: this build has no CUDA backend\n");
    skip();
}
#endif

/* ---- several ranks (under mpirun) --------------------------------------------------------- */

static dist g_dist; /* the job every multi-rank test runs in */

static void test_ranks_identity(void **state) {
    (void)state;
    dist *d = &g_dist;
    assert_int_equal(d->kind, DIST_MPI);
    assert_int_equal(d->world, dist_env_world());
    assert_true(d->rank >= 0 && d->rank < d->world);
    assert_true(d->local_rank >= 0 && d->local_rank < d->local_world);
    assert_true(d->local_world <= d->world);
    assert_int_equal(core_log_rank(), d->rank);
    int64_t ranks[2] = {d->rank, 1};
    dist_allreduce_i64(d, ranks, 2, DIST_SUM);
    assert_int_equal(ranks[0], (int64_t)d->world * (d->world - 1) / 2); /* every rank once */
    assert_int_equal(ranks[1], d->world);
}

/* Values every rank can recompute: exact small integers, so the sum has one right answer. */
static void test_ranks_sum_avg_exact(void **state) {
    (void)state;
    dist *d = &g_dist;
    int W = d->world;
    size_t n = ((size_t)1 << 20) + 3; /* big enough for the segmented (ring) algorithms */
    float *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++)
        x[i] = y[i] = (float)(d->rank + 1) + (float)(i % 7);
    dist_allreduce_sum(d, x, n);
    dist_allreduce_avg(d, y, n);
    size_t bad_sum = 0, bad_avg = 0;
    for (size_t i = 0; i < n; i++) {
        float s = (float)(W * (W + 1) / 2) + (float)W * (float)(i % 7);
        bad_sum += x[i] != s;
        bad_avg += fabsf(y[i] - s / (float)W) > 1e-6f * fabsf(s);
    }
    assert_int_equal(bad_sum, 0);
    assert_int_equal(bad_avg, 0);
    free(x);
    free(y);
}

/* Random values: the all-reduced sum against the sum in rank order, and bitwise agreement
 * between ranks (ranks that disagree would drift apart over training). */
static void test_ranks_sum_random(void **state) {
    (void)state;
    dist *d = &g_dist;
    size_t n = 3 * ((size_t)1 << 18) + 1;
    float *x = filled(n, 99, (uint32_t)d->rank);
    double *ref = xcalloc(n, sizeof *ref);
    for (int r = 0; r < d->world; r++) {
        float *o = filled(n, 99, (uint32_t)r);
        for (size_t i = 0; i < n; i++)
            ref[i] += o[i];
        free(o);
    }
    dist_allreduce_avg(d, x, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(x[i] - ref[i] / d->world);
        if (e > worst) worst = e;
    }
    /* each value is O(1): (W-1) roundings of a sum below ~8W, then one of the scaling */
    double bound = 8.0 * d->world * d->world * ldexp(1.0, -24);
    if (d->rank == 0) printf("random avg: worst |error| %.3g (bound %.3g)\n", worst, bound);
    assert_true(worst <= bound);
    assert_true(dist_same_everywhere(d, x, n * sizeof *x));
    free(x);
    free(ref);
}

static void test_ranks_bcast(void **state) {
    (void)state;
    dist *d = &g_dist;
    size_t n = 100003;
    float *x = filled(n, 5, (uint32_t)d->rank), *x0 = filled(n, 5, 0);
    dist_bcast_floats(d, x, n);
    assert_memory_equal(x, x0, n * sizeof *x);
    char msg[32];
    snprintf(msg, sizeof msg, "from rank %d", d->rank);
    dist_bcast_bytes(d, msg, sizeof msg);
    assert_string_equal(msg, "from rank 0");
    double clock = 100.0 + d->rank; /* the budget clock: rank 0's for everyone */
    dist_bcast_bytes(d, &clock, sizeof clock);
    assert_true(clock == 100.0);
    free(x);
    free(x0);
}

static void test_ranks_min_max(void **state) {
    (void)state;
    dist *d = &g_dist;
    int W = d->world, r = d->rank;
    double f[3] = {r + 0.5, -r - 0.5, r == W - 1 ? NAN : 1.0};
    double g[2] = {r + 0.5, -r - 0.5};
    dist_allreduce_f64(d, f, 2, DIST_MIN);
    dist_allreduce_f64(d, g, 2, DIST_MAX);
    assert_true(f[0] == 0.5 && f[1] == -W + 0.5);
    assert_true(g[0] == W - 0.5 && g[1] == -0.5);
    dist_allreduce_f64(d, &f[2], 1, DIST_SUM); /* a NaN anywhere is a NaN everywhere */
    assert_true(isnan(f[2]));
    int64_t big[2] = {(int64_t)r << 40, -((int64_t)r << 40)};
    dist_allreduce_i64(d, big, 2, DIST_MAX);
    assert_true(big[0] == (int64_t)(W - 1) << 40 && big[1] == 0);
    int flags[3] = {1, r != W - 1, r != 0}; /* train/'s allowed, no_recovery, !signalled */
    dist_allreduce_int(d, flags, 3, DIST_MIN);
    assert_int_equal(flags[0], 1);
    assert_int_equal(flags[1], 0);
    assert_int_equal(flags[2], 0);
    assert_true(dist_mean(d, (double)r) == (W - 1) / 2.0);
    dist_barrier(d);
}

static void test_ranks_vote(void **state) {
    (void)state;
    dist *d = &g_dist;
    int W = d->world, r = d->rank;
    dist_vote v = dist_vote_step(d, false, false);
    assert_false(v.stop);
    assert_false(v.nonfinite);
    v = dist_vote_step(d, r == 0, false); /* rank 0 decides */
    assert_true(v.stop);
    v = dist_vote_step(d, r != 0, false); /* the others' clocks do not count */
    assert_false(v.stop);
    v = dist_vote_step(d, false, r == W - 1); /* one rank saw a NaN: all know */
    assert_false(v.stop);
    assert_true(v.nonfinite);
}

static void test_ranks_same_everywhere(void **state) {
    (void)state;
    dist *d = &g_dist;
    size_t n = 4099;
    float *x = filled(n, 3, 0);
    assert_true(dist_same_everywhere(d, x, n * sizeof *x));
    if (d->rank == d->world - 1) x[n - 1] = nextafterf(x[n - 1], INFINITY); /* one ulp */
    if (d->world > 1) assert_false(dist_same_everywhere(d, x, n * sizeof *x));
    free(x);
}

static void test_ranks_zero1(void **state) {
    (void)state;
    dist *d = &g_dist;
    size_t n = (size_t)d->world * 12345;
    size_t len = dist_shard_len(d, n);
    assert_int_equal(len, 12345);
    float *x = filled(n, 21, (uint32_t)d->rank), *y = filled(n, 21, (uint32_t)d->rank);
    dist_allreduce_avg(d, y, n);
    dist_reduce_scatter_avg(d, x, n);
    /* my shard is the average (summation order may differ from the all-reduce's) */
    float *mine = x + (size_t)d->rank * len, *ref = y + (size_t)d->rank * len;
    for (size_t i = 0; i < len; i++)
        assert_float_equal(mine[i], ref[i], 4e-6f * d->world);
    dist_all_gather(d, x, n);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(x[i], y[i], 4e-6f * d->world);
    assert_true(dist_same_everywhere(d, x, n * sizeof *x));
    free(x);
    free(y);
}

/* Bucketed all-reduce (posted last slice first, as a backward pass would) against the blocking one:
 * the same averages up to summation order, and the same bits on every rank. */
static void test_ranks_buckets(void **state) {
    (void)state;
    dist *d = &g_dist;
    size_t n = 1000003, bucket = 65536;
    float *x = filled(n, 31, (uint32_t)d->rank), *y = filled(n, 31, (uint32_t)d->rank);
    dist_allreduce_avg(d, y, n);
    for (size_t end = n; end > 0;) {
        size_t b = end > bucket ? bucket : end;
        dist_allreduce_avg_start(d, x + end - b, b);
        dist_progress(d); /* between layers */
        end -= b;
    }
    dist_allreduce_wait(d);
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)x[i] - y[i]));
    assert_true(worst <= 8.0 * d->world * d->world * ldexp(1.0, -24));
    assert_true(dist_same_everywhere(d, x, n * sizeof *x));
    dist_allreduce_wait(d); /* nothing posted: returns */
    free(x);
    free(y);
}

static void test_ranks_first_then_rest(void **state) {
    (void)state;
    dist *d = &g_dist;
    char err[512] = "";
    calls c = {0};
    if (d->rank == 0) snprintf(c.path, sizeof c.path, "/tmp/cram_test_dist_%d.txt", (int)getpid());
    dist_bcast_bytes(d, c.path, sizeof c.path);
    for (int per_node = 0; per_node < 2; per_node++) {
        c.n = 0;
        assert_int_equal(dist_first_then_rest(d, per_node, count_call, &c, err, sizeof err), 0);
        assert_int_equal(c.n, 1);
        if (d->rank == 0) { /* one node here: rank 0 came first both times */
            FILE *f = fopen(c.path, "r");
            assert_non_null(f);
            int first = -1, lines = 1;
            assert_int_equal(fscanf(f, "%d", &first), 1);
            assert_int_equal(first, 0);
            for (int ch; (ch = fgetc(f)) != EOF;)
                lines += ch == '\n';
            fclose(f);
            assert_int_equal(lines - 1, d->world);
            remove(c.path);
        }
        dist_barrier(d);
    }
    /* rank 0 fails first: nobody else runs, everybody fails */
    c = (calls){.fail = 1};
    int rc = dist_first_then_rest(d, false, count_call, &c, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_int_equal(c.n, d->rank == 0 ? 1 : 0);
    if (d->rank > 0) assert_string_equal(err, "rank 0 failed (see its message)");
    /* the last rank fails in the second round: everybody fails */
    c = (calls){.fail = d->rank == d->world - 1 && d->world > 1 ? 1 : 0};
    rc = dist_first_then_rest(d, false, count_call, &c, err, sizeof err);
    assert_int_equal(rc, d->world > 1 ? -1 : 0);
}

/* NCCL across ranks: needs one GPU per rank on every node. */
static void test_ranks_nccl(void **state) {
    (void)state;
#ifdef CRAM_HAVE_CUDA
    dist *d = &g_dist;
    gpu_info gi;
    char err[512] = "";
    int version = 0;
    int64_t can = dist_compiled(DIST_NCCL) && !gpu_query(&gi, err, sizeof err) &&
                  gi.count >= d->local_world && !dist_nccl_probe(&version, err, sizeof err);
    dist_allreduce_i64(d, &can, 1, DIST_MIN); /* all ranks take the same branch */
    if (!can) {
        if (d->rank == 0) printf("skipped: NCCL across ranks needs a GPU per rank\n");
        skip();
    }
    dist n;
    assert_int_equal(dist_init(&n, "auto", true, err, sizeof err), 0);
    assert_int_equal(n.kind, DIST_NCCL);
    assert_int_equal(n.rank, d->rank);
    assert_int_equal(n.device, gi.count == 1 ? 0 : d->local_rank);
    device_collectives(&n, (1 << 20) + 5);
    dist_vote v = dist_vote_step(&n, n.rank == 0, n.rank == n.world - 1);
    assert_true(v.stop && v.nonfinite);
    dist_free(&n);
#else
    skip();
#endif
}

/* CRAM_DIST_BENCH_FLOATS=n: the median of 5 timed all-reduces (after one warm-up) of n floats. */
static void bench_allreduce(dist *d) {
    const char *s = getenv("CRAM_DIST_BENCH_FLOATS");
    if (!s || !*s) return;
    size_t n = (size_t)strtoull(s, NULL, 10);
    float *x = xcalloc(n, sizeof *x);
    double t[5];
    dist_allreduce_avg(d, x, n);
    for (int k = 0; k < 5; k++) {
        dist_barrier(d);
        double t0 = core_now();
        dist_allreduce_avg(d, x, n);
        t[k] = core_now() - t0;
        dist_allreduce_f64(d, &t[k], 1, DIST_MAX); /* the slowest rank's time */
    }
    for (int i = 0; i < 5; i++) /* sort five numbers */
        for (int j = i + 1; j < 5; j++)
            if (t[j] < t[i]) {
                double tmp = t[i];
                t[i] = t[j], t[j] = tmp;
            }
    if (d->rank == 0)
        printf("RESULT allreduce_ms %.1f floats=%zu MB=%.1f ranks=%d backend=%s min_ms=%.1f "
               "algbw_GBps=%.2f busbw_GBps=%.2f\n",
               t[2] * 1e3, n, n * 4e-6, d->world, d->name, t[0] * 1e3, n * 4e-9 / t[2],
               n * 4e-9 / t[2] * 2.0 * (d->world - 1) / d->world);
    free(x);
}

static int run_ranks(void) {
    char err[512] = "";
    /* a rank that hangs must not hang the job forever: SIGALRM kills it and mpirun the rest */
    alarm(240);
    if (dist_init(&g_dist, "auto", false, err, sizeof err)) {
        fprintf(stderr, "dist_init: %s\n", err);
        return 1;
    }
    char desc[256];
    dist_describe(&g_dist, desc, sizeof desc);
    if (g_dist.rank == 0) printf("%s\n", desc);
    const char *die = getenv("CRAM_DIST_TEST_DIE");
    if (die) { /* tests/cli_dist.sh: one rank fails, the others wait in a collective */
        if (g_dist.rank == 1) {
            if (!strcmp(die, "abort")) dist_abort(&g_dist, 5);
            core_die("planned failure on rank 1");
        }
        dist_barrier(&g_dist);
        return 0; /* not reached: rank 1's MPI_Abort ends every rank */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranks_identity),
        cmocka_unit_test(test_ranks_sum_avg_exact),
        cmocka_unit_test(test_ranks_sum_random),
        cmocka_unit_test(test_ranks_bcast),
        cmocka_unit_test(test_ranks_min_max),
        cmocka_unit_test(test_ranks_vote),
        cmocka_unit_test(test_ranks_same_everywhere),
        cmocka_unit_test(test_ranks_zero1),
        cmocka_unit_test(test_ranks_first_then_rest),
        cmocka_unit_test(test_ranks_buckets),
        cmocka_unit_test(test_ranks_nccl),
    };
    int64_t failed = cmocka_run_group_tests_name("dist across ranks", tests, NULL, NULL);
    bench_allreduce(&g_dist);
    dist_allreduce_i64(&g_dist, &failed, 1, DIST_MAX); /* one verdict for the job */
    dist_free(&g_dist);
    return failed ? 1 : 0;
}

int main(void) {
    /* mpirun -np 1 -x CRAM_DIST_FORCE=1: the same checks through MPI (and NCCL bootstrapped
     * through MPI) in a job of one, for machines with a single GPU */
    bool forced = getenv("CRAM_DIST_FORCE") && getenv("OMPI_COMM_WORLD_SIZE");
    if (dist_env_world() > 1 || forced) return run_ranks();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_identity),  cmocka_unit_test(test_single_first_then_rest),
        cmocka_unit_test(test_backend_names),    cmocka_unit_test(test_env_world),
        cmocka_unit_test(test_refusals),         cmocka_unit_test(test_nccl_probe),
        cmocka_unit_test(test_nccl_one_process),
    };
    return cmocka_run_group_tests_name("dist in one process", tests, NULL, NULL);
}
