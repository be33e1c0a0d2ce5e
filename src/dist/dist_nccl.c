/* The NCCL implementation: GPU ranks reduce device buffers with NCCL on the caller's stream; the
 * communicator is bootstrapped through MPI (rank 0 makes the unique id and broadcasts it), and
 * host values (the stop vote, byte broadcasts) keep going through MPI.
 *
 * libnccl is loaded with dlopen when a run asks for it, not linked: it is ~200 MB, and a binary
 * linked to it would not start on a machine without it, even for a one-GPU run that never
 * communicates. The header still types every call (each pointer has the type of the function
 * nccl.h declares). Compiled only when CMake finds CUDA, MPI and nccl.h. */
#include "dist/dist_impl.h"

#include "core/core.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct nccl_api {
    void *lib;
    int version;
    __typeof__(ncclGetVersion) *GetVersion;
    __typeof__(ncclGetUniqueId) *GetUniqueId;
    __typeof__(ncclCommInitRank) *CommInitRank;
    __typeof__(ncclCommFinalize) *CommFinalize;
    __typeof__(ncclCommDestroy) *CommDestroy;
    __typeof__(ncclCommGetAsyncError) *CommGetAsyncError;
    __typeof__(ncclGetErrorString) *GetErrorString;
    __typeof__(ncclGetLastError) *GetLastError;
    __typeof__(ncclAllReduce) *AllReduce;
    __typeof__(ncclBroadcast) *Broadcast;
    __typeof__(ncclReduceScatter) *ReduceScatter;
    __typeof__(ncclAllGather) *AllGather;
} nccl_api;

/* The library is loaded once per process and never unloaded (NCCL does not support that). */
static nccl_api api;

static void *sym(void *lib, const char *name, int *missing, char *err, size_t errlen) {
    void *p = dlsym(lib, name);
    if (!p && !*missing) {
        *missing = 1;
        snprintf(err, errlen, "the NCCL library lacks %s (NCCL 2.14 or newer is needed)", name);
    }
    return p;
}

static int load(char *err, size_t errlen) {
    if (api.lib) return 0;
    const char *env = getenv("CRAM_NCCL_LIBRARY");
    const char *names[] = {
        env && *env ? env : "libnccl.so.2", "libnccl.so",
#ifdef CRAM_NCCL_LIBRARY
        CRAM_NCCL_LIBRARY /* where the build found it */
#endif
    };
    void *lib = NULL;
    const char *why = "";
    for (size_t i = 0; i < sizeof names / sizeof *names && !lib; i++) {
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib && i == 0) why = dlerror();
    }
    if (!lib) {
        snprintf(err, errlen,
                 "cannot load the NCCL library (%s); put libnccl.so.2 on LD_LIBRARY_PATH or name "
                 "the file in CRAM_NCCL_LIBRARY",
                 why ? why : "not found");
        return -1;
    }
    nccl_api a = {.lib = lib};
    int missing = 0;
    a.GetVersion = (__typeof__(a.GetVersion))sym(lib, "ncclGetVersion", &missing, err, errlen);
    a.GetUniqueId = (__typeof__(a.GetUniqueId))sym(lib, "ncclGetUniqueId", &missing, err, errlen);
    a.CommInitRank =
        (__typeof__(a.CommInitRank))sym(lib, "ncclCommInitRank", &missing, err, errlen);
    a.CommFinalize =
        (__typeof__(a.CommFinalize))sym(lib, "ncclCommFinalize", &missing, err, errlen);
    a.CommDestroy = (__typeof__(a.CommDestroy))sym(lib, "ncclCommDestroy", &missing, err, errlen);
    a.CommGetAsyncError =
        (__typeof__(a.CommGetAsyncError))sym(lib, "ncclCommGetAsyncError", &missing, err, errlen);
    a.GetErrorString =
        (__typeof__(a.GetErrorString))sym(lib, "ncclGetErrorString", &missing, err, errlen);
    a.GetLastError =
        (__typeof__(a.GetLastError))sym(lib, "ncclGetLastError", &missing, err, errlen);
    a.AllReduce = (__typeof__(a.AllReduce))sym(lib, "ncclAllReduce", &missing, err, errlen);
    a.Broadcast = (__typeof__(a.Broadcast))sym(lib, "ncclBroadcast", &missing, err, errlen);
    a.ReduceScatter =
        (__typeof__(a.ReduceScatter))sym(lib, "ncclReduceScatter", &missing, err, errlen);
    a.AllGather = (__typeof__(a.AllGather))sym(lib, "ncclAllGather", &missing, err, errlen);
    if (missing) {
        dlclose(lib);
        return -1;
    }
    if (a.GetVersion(&a.version) != ncclSuccess) a.version = 0;
    api = a;
    return 0;
}

int dist_nccl_probe(int *version, char *err, size_t errlen) {
    *version = 0;
    if (load(err, errlen) != 0) return -1;
    *version = api.version;
    return 0;
}

/* ---- the communicator --------------------------------------------------------------------- */

typedef struct nccl_state {
    mpi_state *mpi; /* host collectives when bootstrapped through MPI; NULL for one process */
    ncclComm_t comm;
    cudaStream_t stream; /* the caller's (dist_set_stream) */
    /* bucketed all-reduces: their own stream, ordered after the caller's work by events */
    cudaStream_t side;
    cudaEvent_t ready, done;
    bool posted;
} nccl_state;

static void nccl_check(ncclResult_t rc, const nccl_state *s, const char *what, const char *file,
                       int line) {
    if (rc == ncclSuccess) return;
    const char *last = s && s->comm ? api.GetLastError(s->comm) : "";
    core_die_at(file, line, "%s failed: %s%s%s", what, api.GetErrorString(rc),
                last && *last ? ": " : "", last ? last : "");
}
#define NCCL_CHECK(s, call) nccl_check((call), (s), #call, __FILE__, __LINE__)

static void cuda_check(cudaError_t rc, const char *what, const char *file, int line) {
    if (rc != cudaSuccess) core_die_at(file, line, "%s failed: %s", what, cudaGetErrorString(rc));
}
#define CUDA_CHECK(call) cuda_check((call), #call, __FILE__, __LINE__)

static void nccl_allreduce_floats(dist *d, float *buf, size_t n, bool average) {
    nccl_state *s = d->state;
    NCCL_CHECK(s, api.AllReduce(buf, buf, n, ncclFloat32, average ? ncclAvg : ncclSum, s->comm,
                                s->stream));
}

static void nccl_avg_start(dist *d, float *buf, size_t n) {
    nccl_state *s = d->state;
    if (!s->side) {
        CUDA_CHECK(cudaStreamCreateWithFlags(&s->side, cudaStreamNonBlocking));
        CUDA_CHECK(cudaEventCreateWithFlags(&s->ready, cudaEventDisableTiming));
        CUDA_CHECK(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming));
    }
    /* the bucket is final once the caller's stream got this far */
    CUDA_CHECK(cudaEventRecord(s->ready, s->stream));
    CUDA_CHECK(cudaStreamWaitEvent(s->side, s->ready, 0));
    NCCL_CHECK(s, api.AllReduce(buf, buf, n, ncclFloat32, ncclAvg, s->comm, s->side));
    s->posted = true;
}

static void nccl_avg_wait(dist *d) {
    nccl_state *s = d->state;
    if (!s->posted) return;
    CUDA_CHECK(cudaEventRecord(s->done, s->side));
    CUDA_CHECK(cudaStreamWaitEvent(s->stream, s->done, 0));
    s->posted = false;
}

static void nccl_progress(dist *d) {
    (void)d; /* NCCL's kernels make their own progress */
}

static void nccl_bcast_floats(dist *d, float *buf, size_t n) {
    nccl_state *s = d->state;
    NCCL_CHECK(s, api.Broadcast(buf, buf, n, ncclFloat32, 0, s->comm, s->stream));
}

/* NCCL's in-place forms: the shard sits at buf + rank * len on both sides */
static void nccl_reduce_scatter_avg(dist *d, float *buf, size_t n) {
    nccl_state *s = d->state;
    size_t len = n / (size_t)d->world;
    NCCL_CHECK(s, api.ReduceScatter(buf, buf + (size_t)d->rank * len, len, ncclFloat32, ncclAvg,
                                    s->comm, s->stream));
}

static void nccl_all_gather(dist *d, float *buf, size_t n) {
    nccl_state *s = d->state;
    size_t len = n / (size_t)d->world;
    NCCL_CHECK(
        s, api.AllGather(buf + (size_t)d->rank * len, buf, len, ncclFloat32, s->comm, s->stream));
}

/* host values go through MPI; one process has nothing to exchange */
static void nccl_allreduce_f64(dist *d, double *v, int n, dist_op op) {
    nccl_state *s = d->state;
    if (s->mpi) dist_mpi_allreduce_f64(s->mpi, v, n, op);
}

static void nccl_allreduce_i64(dist *d, int64_t *v, int n, dist_op op) {
    nccl_state *s = d->state;
    if (s->mpi) dist_mpi_allreduce_i64(s->mpi, v, n, op);
}

static void nccl_bcast_bytes(dist *d, void *buf, size_t n) {
    nccl_state *s = d->state;
    if (s->mpi) dist_mpi_bcast_bytes(s->mpi, buf, n);
}

static void nccl_sync(dist *d) {
    nccl_state *s = d->state;
    CUDA_CHECK(cudaStreamSynchronize(s->stream));
    ncclResult_t async = ncclSuccess;
    NCCL_CHECK(s, api.CommGetAsyncError(s->comm, &async));
    NCCL_CHECK(s, async);
}

static void nccl_barrier(dist *d) {
    nccl_sync(d);
    nccl_state *s = d->state;
    if (s->mpi) dist_mpi_barrier(s->mpi);
}

static void nccl_set_stream(dist *d, void *stream) {
    ((nccl_state *)d->state)->stream = (cudaStream_t)stream;
}

static void nccl_describe(const dist *d, char *out, size_t outlen) {
    const nccl_state *s = d->state;
    snprintf(out, outlen, "nccl: rank %d of %d (local %d of %d), GPU %d, NCCL %d.%d.%d%s%s",
             d->rank, d->world, d->local_rank, d->local_world, d->device, api.version / 10000,
             api.version / 100 % 100, api.version % 100, s->mpi ? " over " : " (one process)",
             s->mpi ? dist_mpi_library() : "");
}

static void nccl_free(dist *d) {
    nccl_state *s = d->state;
    if (!s) return;
    nccl_avg_wait(d);
    cudaStreamSynchronize(s->stream);
    if (s->side) {
        cudaStreamDestroy(s->side);
        cudaEventDestroy(s->ready);
        cudaEventDestroy(s->done);
    }
    if (s->comm) {
        api.CommFinalize(s->comm);
        api.CommDestroy(s->comm);
    }
    dist_mpi_close(s->mpi);
    free(s);
    d->state = NULL;
}

static void nccl_abort(dist *d, int code) {
    nccl_state *s = d->state;
    if (s->mpi && d->world > 1) dist_mpi_abort(code); /* the GPU's work dies with the process */
}

static const dist_impl nccl_impl = {
    .avg_start = nccl_avg_start,
    .avg_wait = nccl_avg_wait,
    .progress = nccl_progress,
    .allreduce_floats = nccl_allreduce_floats,
    .bcast_floats = nccl_bcast_floats,
    .reduce_scatter_avg = nccl_reduce_scatter_avg,
    .all_gather = nccl_all_gather,
    .allreduce_f64 = nccl_allreduce_f64,
    .allreduce_i64 = nccl_allreduce_i64,
    .bcast_bytes = nccl_bcast_bytes,
    .barrier = nccl_barrier,
    .set_stream = nccl_set_stream,
    .sync = nccl_sync,
    .describe = nccl_describe,
    .free = nccl_free,
    .abort = nccl_abort,
};

/* Every rank learns whether every rank got this far, so that a rank that cannot start (no
 * library, too few GPUs) does not leave the others inside ncclCommInitRank. */
static bool all_ok(mpi_state *m, bool ok) {
    if (!m) return ok;
    int64_t v = ok;
    dist_mpi_allreduce_i64(m, &v, 1, DIST_MIN);
    return v != 0;
}

int dist_nccl_open(dist *d, bool with_mpi, char *err, size_t errlen) {
    mpi_state *m = with_mpi ? d->state : NULL;
    int ok = load(err, errlen) == 0;
    int ngpu = 0, device = 0;
    if (ok) {
        /* GPU = local rank. One visible GPU is taken as a launcher that gives each rank its own
         * (CUDA_VISIBLE_DEVICES per task, as srun --gpus-per-task does); if the ranks really
         * share it, ncclCommInitRank reports the duplicate GPU. */
        cudaError_t rc = cudaGetDeviceCount(&ngpu);
        device = ngpu == 1 ? 0 : d->local_rank;
        if (rc != cudaSuccess || ngpu == 0) {
            snprintf(err, errlen, "rank %d: no usable GPU (%s)", d->rank,
                     rc != cudaSuccess ? cudaGetErrorString(rc) : "none visible");
            ok = 0;
        } else if (ngpu > 1 && d->local_world > ngpu) {
            snprintf(err, errlen,
                     "%d ranks on this node but %d GPUs visible: start at most one rank per GPU",
                     d->local_world, ngpu);
            ok = 0;
        } else if ((rc = cudaSetDevice(device)) != cudaSuccess) {
            snprintf(err, errlen, "rank %d: cudaSetDevice(%d): %s", d->rank, device,
                     cudaGetErrorString(rc));
            ok = 0;
        }
    }
    if (!all_ok(m, ok)) {
        if (ok) snprintf(err, errlen, "another rank could not start NCCL (see its message)");
        return -1;
    }

    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    ncclResult_t rc = ncclSuccess;
    if (d->rank == 0) rc = api.GetUniqueId(&id);
    if (!all_ok(m, rc == ncclSuccess)) {
        snprintf(err, errlen, "ncclGetUniqueId failed: %s", api.GetErrorString(rc));
        return -1;
    }
    if (m) dist_mpi_bcast_bytes(m, &id, sizeof id);

    nccl_state *s = xcalloc(1, sizeof *s);
    s->mpi = m;
    rc = api.CommInitRank(&s->comm, d->world, id, d->rank);
    if (!all_ok(m, rc == ncclSuccess)) {
        snprintf(err, errlen, "ncclCommInitRank (rank %d of %d) failed: %s", d->rank, d->world,
                 api.GetErrorString(rc));
        if (rc == ncclSuccess) api.CommDestroy(s->comm);
        free(s);
        return -1;
    }
    d->device = device;
    d->kind = DIST_NCCL;
    d->name = "nccl";
    d->impl = &nccl_impl;
    d->state = s;
    return 0;
}
