/* The MPI implementation: CPU ranks reduce host buffers with MPI collectives on a private
 * duplicate of MPI_COMM_WORLD. Also the host half of the NCCL implementation (its bootstrap, the
 * stop vote and byte broadcasts). Compiled only when CMake finds MPI. */
#include "dist/dist_impl.h"

#include "core/core.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A posted bucket: the request and the slice it averages once it completes. */
typedef struct mpi_bucket {
    MPI_Request req;
    float *buf;
    size_t n;
} mpi_bucket;

struct mpi_state {
    MPI_Comm comm;
    bool we_initialized; /* MPI_Init was ours, so MPI_Finalize is too */
    mpi_bucket *posted;  /* bucketed all-reduces in flight */
    int nposted, cap;
};

/* MPI counts are int: big buffers go in pieces of at most 2^30 elements. */
#define MPI_CHUNK ((size_t)1 << 30)

static MPI_Comm comm_of(const dist *d) {
    return ((const mpi_state *)d->state)->comm;
}

static void mpi_check(int rc, const char *what, const char *file, int line) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    core_die_at(file, line, "%s failed: %.*s", what, len, msg);
}
#define MPI_CHECK(call) mpi_check((call), #call, __FILE__, __LINE__)

/* A failing rank takes the job down instead of leaving the others in a collective forever. */
static void abort_all(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) MPI_Abort(MPI_COMM_WORLD, 1);
}

_Noreturn void dist_mpi_abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code); /* not reached */
}

static void mpi_abort(dist *d, int code) {
    if (d->world > 1) dist_mpi_abort(code);
}

static MPI_Op op_of(dist_op op) {
    switch (op) {
    case DIST_MIN:
        return MPI_MIN;
    case DIST_MAX:
        return MPI_MAX;
    case DIST_SUM:
        break;
    }
    return MPI_SUM;
}

static void scale(float *buf, size_t n, float s) {
#pragma omp parallel for schedule(static) if (n > ((size_t)1 << 20))
    for (size_t i = 0; i < n; i++)
        buf[i] *= s;
}

static void mpi_allreduce_floats(dist *d, float *buf, size_t n, bool average) {
    for (size_t off = 0; off < n; off += MPI_CHUNK) {
        size_t c = n - off < MPI_CHUNK ? n - off : MPI_CHUNK;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)c, MPI_FLOAT, MPI_SUM, comm_of(d)));
    }
    /* 1/world is exact for power-of-two worlds; else within one rounding of a division */
    if (average && d->world > 1) scale(buf, n, 1.0f / (float)d->world);
}

static void mpi_avg_start(dist *d, float *buf, size_t n) {
    mpi_state *m = d->state;
    for (size_t off = 0; off < n; off += MPI_CHUNK) {
        size_t c = n - off < MPI_CHUNK ? n - off : MPI_CHUNK;
        if (m->nposted == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 64;
            m->posted = xrealloc(m->posted, (size_t)m->cap * sizeof *m->posted);
        }
        mpi_bucket *b = &m->posted[m->nposted++];
        b->buf = buf + off;
        b->n = c;
        MPI_CHECK(
            MPI_Iallreduce(MPI_IN_PLACE, b->buf, (int)c, MPI_FLOAT, MPI_SUM, m->comm, &b->req));
    }
}

static void mpi_avg_wait(dist *d) {
    mpi_state *m = d->state;
    for (int i = 0; i < m->nposted; i++) {
        MPI_CHECK(MPI_Wait(&m->posted[i].req, MPI_STATUS_IGNORE));
        if (d->world > 1) scale(m->posted[i].buf, m->posted[i].n, 1.0f / (float)d->world);
    }
    m->nposted = 0;
}

static void mpi_progress(dist *d) {
    mpi_state *m = d->state;
    for (int i = 0; i < m->nposted; i++) {
        int done = 0; /* a completed request becomes MPI_REQUEST_NULL; waiting on it is a no-op */
        MPI_CHECK(MPI_Test(&m->posted[i].req, &done, MPI_STATUS_IGNORE));
    }
}

static void mpi_bcast_floats(dist *d, float *buf, size_t n) {
    for (size_t off = 0; off < n; off += MPI_CHUNK) {
        size_t c = n - off < MPI_CHUNK ? n - off : MPI_CHUNK;
        MPI_CHECK(MPI_Bcast(buf + off, (int)c, MPI_FLOAT, 0, comm_of(d)));
    }
}

/* MPI's in-place reduce-scatter leaves the shard at the front of buf; it belongs at the rank's
 * offset (NCCL's convention, and where all_gather expects it). */
static void mpi_reduce_scatter_avg(dist *d, float *buf, size_t n) {
    size_t len = n / (size_t)d->world;
    CORE_CHECK(len <= INT_MAX, "shard of %zu floats is too large for one MPI call", len);
    MPI_CHECK(
        MPI_Reduce_scatter_block(MPI_IN_PLACE, buf, (int)len, MPI_FLOAT, MPI_SUM, comm_of(d)));
    float *mine = buf + (size_t)d->rank * len;
    if (mine != buf) memmove(mine, buf, len * sizeof *buf);
    scale(mine, len, 1.0f / (float)d->world);
}

static void mpi_all_gather(dist *d, float *buf, size_t n) {
    size_t len = n / (size_t)d->world;
    CORE_CHECK(len <= INT_MAX, "shard of %zu floats is too large for one MPI call", len);
    MPI_CHECK(
        MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, (int)len, MPI_FLOAT, comm_of(d)));
}

void dist_mpi_allreduce_f64(mpi_state *m, double *v, int n, dist_op op) {
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, op_of(op), m->comm));
}

void dist_mpi_allreduce_i64(mpi_state *m, int64_t *v, int n, dist_op op) {
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT64_T, op_of(op), m->comm));
}

void dist_mpi_bcast_bytes(mpi_state *m, void *buf, size_t n) {
    for (size_t off = 0; off < n; off += MPI_CHUNK) {
        size_t c = n - off < MPI_CHUNK ? n - off : MPI_CHUNK;
        MPI_CHECK(MPI_Bcast((char *)buf + off, (int)c, MPI_BYTE, 0, m->comm));
    }
}

void dist_mpi_barrier(mpi_state *m) {
    MPI_CHECK(MPI_Barrier(m->comm));
}

static void mpi_allreduce_f64(dist *d, double *v, int n, dist_op op) {
    dist_mpi_allreduce_f64(d->state, v, n, op);
}

static void mpi_allreduce_i64(dist *d, int64_t *v, int n, dist_op op) {
    dist_mpi_allreduce_i64(d->state, v, n, op);
}

static void mpi_bcast_bytes(dist *d, void *buf, size_t n) {
    dist_mpi_bcast_bytes(d->state, buf, n);
}

static void mpi_barrier(dist *d) {
    dist_mpi_barrier(d->state);
}

static void mpi_set_stream(dist *d, void *stream) {
    (void)d, (void)stream;
}

static void mpi_sync(dist *d) {
    (void)d;
}

const char *dist_mpi_library(void) {
    static char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    if (!lib[0]) {
        int len = 0;
        MPI_Get_library_version(lib, &len);
        lib[strcspn(lib, ",\n")] = 0; /* "Open MPI v4.1.4" */
    }
    return lib;
}

static void mpi_describe(const dist *d, char *out, size_t outlen) {
    snprintf(out, outlen, "mpi: rank %d of %d (local %d of %d), %s", d->rank, d->world,
             d->local_rank, d->local_world, dist_mpi_library());
}

void dist_mpi_close(mpi_state *m) {
    if (!m) return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) {
        MPI_Comm_free(&m->comm);
        if (m->we_initialized) MPI_Finalize();
    }
    if (m->we_initialized) core_set_die_hook(NULL); /* another open dist still wants it */
    free(m->posted);
    free(m);
}

static void mpi_free(dist *d) {
    dist_mpi_close(d->state);
    d->state = NULL;
}

static const dist_impl mpi_impl = {
    .avg_start = mpi_avg_start,
    .avg_wait = mpi_avg_wait,
    .progress = mpi_progress,
    .allreduce_floats = mpi_allreduce_floats,
    .bcast_floats = mpi_bcast_floats,
    .reduce_scatter_avg = mpi_reduce_scatter_avg,
    .all_gather = mpi_all_gather,
    .allreduce_f64 = mpi_allreduce_f64,
    .allreduce_i64 = mpi_allreduce_i64,
    .bcast_bytes = mpi_bcast_bytes,
    .barrier = mpi_barrier,
    .set_stream = mpi_set_stream,
    .sync = mpi_sync,
    .describe = mpi_describe,
    .free = mpi_free,
    .abort = mpi_abort,
};

int dist_mpi_open(dist *d, char *err, size_t errlen) {
    int init = 0, rc;
    MPI_Initialized(&init);
    bool ours = false;
    if (!init) {
        /* FUNNELED: OpenMP threads compute, only the main thread talks to MPI */
        int provided = 0;
        rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            snprintf(err, errlen, "MPI_Init_thread failed (code %d)", rc);
            return -1;
        }
        ours = true;
    }
    core_set_die_hook(abort_all);

    mpi_state *s = xcalloc(1, sizeof *s);
    s->we_initialized = ours;
    MPI_Comm_dup(MPI_COMM_WORLD, &s->comm);
    MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s->comm, &d->rank);
    MPI_Comm_size(s->comm, &d->world);

    /* the local rank picks the GPU: ranks that share memory share a node */
    MPI_Comm node;
    MPI_Comm_split_type(s->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &d->local_rank);
    MPI_Comm_size(node, &d->local_world);
    MPI_Comm_free(&node);

    d->kind = DIST_MPI;
    d->name = "mpi";
    d->device = -1;
    d->impl = &mpi_impl;
    d->state = s;
    return 0;
}
