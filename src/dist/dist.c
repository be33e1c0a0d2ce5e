/* The front of the dist module: reading the launcher's environment, choosing an implementation,
 * the single-process implementation (every collective is the identity), and the decisions built
 * from the collectives. The MPI and NCCL implementations live in dist_mpi.c and dist_nccl.c,
 * which CMake compiles only when it finds MPI (and NCCL with CUDA); the stubs below say so. */
#include "dist/dist_impl.h"

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the launcher's environment ----------------------------------------------------------- */

/* Open MPI's mpirun, then MPICH/Intel MPI's hydra (PMI). srun with PMIx names only the rank: the
 * size comes from Slurm then. */
static int env_int(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return (*end || v < 0 || v > 1 << 24) ? -1 : (int)v;
}

/* The announced world size, or 1 (and *launched false) without a launcher. */
static int env_world(bool *launched) {
    static const char *sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int v = env_int(sizes[i]);
        if (v >= 1) {
            *launched = true;
            return v;
        }
    }
    if (getenv("PMIX_RANK") || getenv("PMI_RANK")) {
        int v = env_int("SLURM_STEP_NUM_TASKS");
        if (v < 1) v = env_int("SLURM_NTASKS");
        *launched = true;
        return v >= 1 ? v : 2; /* a launcher without a size: ask MPI */
    }
    *launched = false;
    return 1;
}

int dist_env_world(void) {
    bool launched;
    return env_world(&launched);
}

/* ---- one process -------------------------------------------------------------------------- */

static void none_allreduce_floats(dist *d, float *buf, size_t n, bool average) {
    (void)d, (void)buf, (void)n, (void)average;
}
static void none_floats(dist *d, float *buf, size_t n) {
    (void)d, (void)buf, (void)n;
}
static void none_f64(dist *d, double *v, int n, dist_op op) {
    (void)d, (void)v, (void)n, (void)op;
}
static void none_i64(dist *d, int64_t *v, int n, dist_op op) {
    (void)d, (void)v, (void)n, (void)op;
}
static void none_bytes(dist *d, void *buf, size_t n) {
    (void)d, (void)buf, (void)n;
}
static void none_plain(dist *d) {
    (void)d;
}
static void none_set_stream(dist *d, void *stream) {
    (void)d, (void)stream;
}
static void none_abort(dist *d, int code) {
    (void)d, (void)code;
}
static void none_describe(const dist *d, char *out, size_t outlen) {
    (void)d;
    snprintf(out, outlen, "none: one process");
}

static const dist_impl none_impl = {
    .avg_start = none_floats,
    .avg_wait = none_plain,
    .progress = none_plain,
    .allreduce_floats = none_allreduce_floats,
    .bcast_floats = none_floats,
    .reduce_scatter_avg = none_floats,
    .all_gather = none_floats,
    .allreduce_f64 = none_f64,
    .allreduce_i64 = none_i64,
    .bcast_bytes = none_bytes,
    .barrier = none_plain,
    .set_stream = none_set_stream,
    .sync = none_plain,
    .describe = none_describe,
    .free = none_plain,
    .abort = none_abort,
};

static void set_single(dist *d, bool gpu_buffers) {
    memset(d, 0, sizeof *d);
    d->rank = 0;
    d->world = 1;
    d->local_rank = 0;
    d->local_world = 1;
    d->device = gpu_buffers ? 0 : -1;
    d->kind = DIST_NONE;
    d->name = "none";
    d->impl = &none_impl;
}

void dist_single(dist *d, bool gpu_buffers) {
    set_single(d, gpu_buffers);
}

/* ---- what this build holds ---------------------------------------------------------------- */

#ifndef CRAM_HAVE_MPI
int dist_mpi_open(dist *d, char *err, size_t errlen) {
    (void)d;
    snprintf(err, errlen,
             "this cram was built without MPI, so it cannot join a job of several processes "
             "(install libopenmpi-dev and rebuild)");
    return -1;
}
#endif

#ifndef CRAM_HAVE_NCCL
int dist_nccl_open(dist *d, bool with_mpi, char *err, size_t errlen) {
    (void)d, (void)with_mpi;
    snprintf(err, errlen,
             "this cram was built without NCCL, so GPU ranks cannot reduce gradients (it needs "
             "CUDA, MPI and nccl.h at build time)");
    return -1;
}

int dist_nccl_probe(int *version, char *err, size_t errlen) {
    *version = 0;
    snprintf(err, errlen, "this cram was built without NCCL");
    return -1;
}
#endif

bool dist_compiled(dist_kind kind) {
    switch (kind) {
    case DIST_NONE:
        return true;
    case DIST_MPI:
#ifdef CRAM_HAVE_MPI
        return true;
#else
        return false;
#endif
    case DIST_NCCL:
#ifdef CRAM_HAVE_NCCL
        return true;
#else
        return false;
#endif
    }
    return false;
}

/* ---- choosing ----------------------------------------------------------------------------- */

static bool env_force(void) {
    const char *s = getenv("CRAM_DIST_FORCE");
    return s && *s && strcmp(s, "0") != 0;
}

int dist_init(dist *d, const char *backend, bool gpu_buffers, char *err, size_t errlen) {
    set_single(d, gpu_buffers);
    if (!backend || !*backend) backend = "auto";
    bool want_none = !strcmp(backend, "none");
    bool want_mpi = !strcmp(backend, "mpi") || !strcmp(backend, "gloo");
    bool want_auto = !strcmp(backend, "auto") || !strcmp(backend, "nccl");
    if (!want_none && !want_mpi && !want_auto) {
        snprintf(err, errlen,
                 "impl.dist_backend=%s is not a backend: choose auto, nccl, mpi, gloo or none",
                 backend);
        return -1;
    }

    bool launched;
    int env = env_world(&launched);
    if (env == 1 && !env_force()) {
        core_log_init(0);
        return 0; /* one process: nothing to join */
    }
    if (want_none) {
        core_log_init(0);
        if (env == 1) return 0;
        snprintf(err, errlen,
                 "started as %d processes but impl.dist_backend=none: every process would train "
                 "the same model and write the same files (use auto, or start one process)",
                 env);
        return -1;
    }
    if (want_mpi && gpu_buffers) {
        snprintf(err, errlen,
                 "impl.dist_backend=%s reduces host memory, but this run keeps its gradients on "
                 "the GPU: use impl.dist_backend=nccl (or auto)",
                 backend);
        return -1;
    }

    if (!gpu_buffers) {
        if (dist_mpi_open(d, err, errlen) != 0) {
            set_single(d, gpu_buffers);
            return -1;
        }
    } else {
        if (!dist_compiled(DIST_NCCL)) return dist_nccl_open(d, false, err, errlen);
        if (launched && dist_mpi_open(d, err, errlen) != 0) {
            set_single(d, gpu_buffers);
            return -1;
        }
        if (dist_nccl_open(d, launched, err, errlen) != 0) {
            if (launched) d->impl->free(d); /* the MPI part */
            set_single(d, gpu_buffers);
            return -1;
        }
    }
    core_log_init(d->rank);
    return 0;
}

void dist_free(dist *d) {
    if (d->impl) d->impl->free(d);
    set_single(d, false);
}

void dist_abort(dist *d, int code) {
    fflush(stdout);
    fflush(stderr);
    d->impl->abort(d, code);
}

void dist_describe(const dist *d, char *out, size_t outlen) {
    d->impl->describe(d, out, outlen);
}

void dist_set_stream(dist *d, void *cuda_stream) {
    d->impl->set_stream(d, cuda_stream);
}

void dist_sync(dist *d) {
    d->impl->sync(d);
}

/* ---- collectives -------------------------------------------------------------------------- */

void dist_allreduce_sum(dist *d, float *buf, size_t n) {
    if (n) d->impl->allreduce_floats(d, buf, n, false);
}

void dist_allreduce_avg(dist *d, float *buf, size_t n) {
    if (n) d->impl->allreduce_floats(d, buf, n, true);
}

void dist_bcast_floats(dist *d, float *buf, size_t n) {
    if (n) d->impl->bcast_floats(d, buf, n);
}

void dist_allreduce_avg_start(dist *d, float *buf, size_t n) {
    if (n) d->impl->avg_start(d, buf, n);
}

void dist_allreduce_wait(dist *d) {
    d->impl->avg_wait(d);
}

void dist_progress(dist *d) {
    d->impl->progress(d);
}

size_t dist_shard_len(const dist *d, size_t n) {
    return n / (size_t)d->world;
}

void dist_reduce_scatter_avg(dist *d, float *buf, size_t n) {
    CORE_CHECK(n % (size_t)d->world == 0, "%zu floats do not split into %d shards", n, d->world);
    if (n) d->impl->reduce_scatter_avg(d, buf, n);
}

void dist_all_gather(dist *d, float *buf, size_t n) {
    CORE_CHECK(n % (size_t)d->world == 0, "%zu floats do not split into %d shards", n, d->world);
    if (n) d->impl->all_gather(d, buf, n);
}

void dist_allreduce_f64(dist *d, double *v, int n, dist_op op) {
    if (n > 0) d->impl->allreduce_f64(d, v, n, op);
}

void dist_allreduce_i64(dist *d, int64_t *v, int n, dist_op op) {
    if (n > 0) d->impl->allreduce_i64(d, v, n, op);
}

/* a few flags: widened to 64 bits on the stack rather than one more entry per implementation */
void dist_allreduce_int(dist *d, int *v, int n, dist_op op) {
    int64_t w[64];
    for (int off = 0; off < n; off += 64) {
        int c = n - off < 64 ? n - off : 64;
        for (int i = 0; i < c; i++)
            w[i] = v[off + i];
        dist_allreduce_i64(d, w, c, op);
        for (int i = 0; i < c; i++)
            v[off + i] = (int)w[i];
    }
}

void dist_bcast_bytes(dist *d, void *buf, size_t n) {
    if (n) d->impl->bcast_bytes(d, buf, n);
}

void dist_barrier(dist *d) {
    d->impl->barrier(d);
}

/* ---- decisions ---------------------------------------------------------------------------- */

/* One MAX all-reduce carries both answers: only rank 0 contributes its stop decision, so the
 * maximum is rank 0's value (a broadcast); the non-finite flags are or-ed. */
dist_vote dist_vote_step(dist *d, bool stop_rank0, bool nonfinite_here) {
    int64_t v[2] = {d->rank == 0 && stop_rank0, nonfinite_here};
    dist_allreduce_i64(d, v, 2, DIST_MAX);
    return (dist_vote){.stop = v[0] != 0, .nonfinite = v[1] != 0};
}

double dist_mean(dist *d, double x) {
    dist_allreduce_f64(d, &x, 1, DIST_SUM);
    return x / d->world;
}

/* MIN of (h, -h) per 32-bit half gives both the smallest and the largest hash in one call. */
bool dist_same_everywhere(dist *d, const void *p, size_t nbytes) {
    uint64_t h = core_hash64(p, nbytes, 0);
    int64_t lo = (int64_t)(h & 0xffffffffu), hi = (int64_t)(h >> 32);
    int64_t v[4] = {lo, hi, -lo, -hi};
    dist_allreduce_i64(d, v, 4, DIST_MIN);
    return v[0] == -v[2] && v[1] == -v[3];
}

/* The lowest failing rank, or INT64_MAX when every rank succeeded (one MIN all-reduce). */
static int64_t lowest_failure(dist *d, bool failed) {
    int64_t v = failed ? d->rank : INT64_MAX;
    dist_allreduce_i64(d, &v, 1, DIST_MIN);
    return v;
}

int dist_first_then_rest(dist *d, bool per_node, int (*fn)(void *ctx, char *err, size_t errlen),
                         void *ctx, char *err, size_t errlen) {
    bool first = per_node ? d->local_rank == 0 : d->rank == 0;
    bool failed = first && fn(ctx, err, errlen) != 0;
    int64_t bad = lowest_failure(d, failed); /* also the barrier the others wait at */
    if (bad == INT64_MAX) {
        failed = !first && fn(ctx, err, errlen) != 0;
        bad = lowest_failure(d, failed);
    }
    if (bad == INT64_MAX) return 0;
    if (!failed) snprintf(err, errlen, "rank %lld failed (see its message)", (long long)bad);
    return -1;
}
