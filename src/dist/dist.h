/* Data parallelism across processes: who this rank is, and the collectives a data-parallel
 * trainer needs (all-reduce of the flat gradient buffer, the per-µstep stop/non-finite vote,
 * broadcasts from rank 0). Three implementations behind one table, picked at run time: a single
 * process (every call is a no-op), MPI for CPU ranks, and NCCL bootstrapped through MPI for GPU
 * ranks. Launch and semantics: docs/dist.md. */
#ifndef CRAM_DIST_DIST_H
#define CRAM_DIST_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum dist_kind {
    DIST_NONE, /* one process: collectives are identities */
    DIST_MPI,  /* CPU ranks: host buffers, MPI collectives */
    DIST_NCCL, /* GPU ranks: device buffers through NCCL; host scalars and bytes through MPI */
} dist_kind;

typedef enum dist_op {
    DIST_SUM,
    DIST_MIN,
    DIST_MAX,
} dist_op;

struct dist_impl;

typedef struct dist {
    int rank, world;             /* this process among all of them */
    int local_rank, local_world; /* among the processes on this node */
    int device;                  /* GPU this rank drives (NCCL), -1 for CPU ranks */
    dist_kind kind;
    const char *name; /* "none", "mpi" or "nccl" */
    const struct dist_impl *impl;
    void *state; /* the implementation's own */
} dist;

/* ---- set-up ------------------------------------------------------------------------------- */

/* Joins the job this process was started in and sets the logger's rank (core_log_init) and a
 * die hook that aborts every rank (MPI_Abort) so that a failing rank cannot leave the others
 * waiting in a collective.
 *
 * backend is impl.dist_backend: "auto", "nccl", "mpi", "gloo" (the reference's CPU backend; an
 * alias of "mpi") or "none". gpu_buffers says where the float buffers handed to
 * dist_allreduce_* / dist_bcast_floats / the shard calls live (true: CUDA device memory).
 *   - Not started by a launcher (no mpirun/PMI environment), or started as one process: the
 *     single-process implementation, whatever backend says.
 *   - Several processes: "auto" and "nccl" give NCCL for GPU buffers and MPI for host buffers;
 *     "mpi"/"gloo" give MPI and refuse GPU buffers; "none" is an error (N copies of one run
 *     would write the same files).
 * Setting CRAM_DIST_FORCE=1 in the environment uses the named backend even for one process
 * (tests, and a way to exercise NCCL on one GPU).
 * With NCCL, the rank's GPU is selected (cudaSetDevice(d->device): the local rank, or 0 when each
 * rank sees a single GPU) before this returns: call it before any other CUDA work.
 * Returns 0, or -1 with a message (unknown backend, built without MPI/NCCL, more ranks on a node
 * than GPUs, MPI or NCCL start-up failed). */
int dist_init(dist *d, const char *backend, bool gpu_buffers, char *err, size_t errlen);
/* The one-process dist (rank 0 of 1, collectives are identities) without looking at the
 * environment: for library callers that run inside a process of their own. */
void dist_single(dist *d, bool gpu_buffers);
/* Finalizes (MPI_Finalize after destroying the NCCL communicator); collective: every rank must
 * call it. Leaves a single-process dist behind, so calling it twice is harmless. */
void dist_free(dist *d);

/* For error paths where the ranks may disagree (one rank failed to write a file while the others
 * went on into a collective): with several ranks, ends every rank's process with exit status
 * `code` (MPI_Abort) and does not return; with one process it returns and the caller exits as
 * usual. dist_free would hang there: MPI_Finalize waits for all ranks.
 *     int rc = train_run(...);
 *     if (rc != 0) dist_abort(&d, rc);
 *     dist_free(&d); */
void dist_abort(dist *d, int code);

/* The world size the launcher announced (OMPI_COMM_WORLD_SIZE, PMI_SIZE, ...), 1 when this
 * process was not started by a launcher. */
int dist_env_world(void);
/* True when this binary contains the implementation (NONE always). */
bool dist_compiled(dist_kind kind);
/* Loads the NCCL library (libnccl.so.2, or the file CRAM_NCCL_LIBRARY names) and resolves every
 * function the NCCL implementation calls; needs no GPU. Fills its version (e.g. 22809 for
 * 2.28.9). Returns 0, or -1 with a message (built without NCCL, library not found). */
int dist_nccl_probe(int *version, char *err, size_t errlen);
/* For logs: e.g. "mpi: rank 0 of 2 (local 0 of 2), Open MPI v4.1.4". */
void dist_describe(const dist *d, char *out, size_t outlen);

/* With NCCL, collectives on float buffers are enqueued on this CUDA stream (a cudaStream_t; NULL
 * is the default stream) and ordered with the caller's kernels on it: the host must synchronize
 * the stream before it reads their results, as after any kernel. Ignored by the other
 * implementations, whose calls return with the result in place. */
void dist_set_stream(dist *d, void *cuda_stream);
/* Waits until the float collectives issued so far have finished (NCCL: stream sync). */
void dist_sync(dist *d);

/* ---- float buffers (the gradients and parameters: device memory for NCCL) ------------------
 * Errors in collectives are fatal: they report and abort every rank. */

void dist_allreduce_sum(dist *d, float *buf, size_t n);
/* Sum over ranks times 1/world: the data-parallel gradient average, once per optimizer step. */
void dist_allreduce_avg(dist *d, float *buf, size_t n);
/* Rank 0's buf to every rank (initial parameters, a resumed state). */
void dist_bcast_floats(dist *d, float *buf, size_t n);

/* Bucketed all-reduce, to overlap communication with the backward pass: as soon as the backward
 * has finished a slice of the flat gradient buffer (the last layers first), post its average with
 * dist_allreduce_avg_start; before the optimizer reads the gradients, dist_allreduce_wait. Every
 * rank must post the same slices in the same order. Until the wait, the posted slices must not be
 * touched and no other float collective may be issued. MPI makes progress on posted buckets only
 * inside MPI calls: a CPU trainer calls dist_progress between layers. With NCCL the buckets run on
 * a communication stream of their own, after the work already enqueued on the caller's stream, and
 * the wait makes the caller's stream wait for them (the host does not block). The result equals
 * dist_allreduce_avg's up to the summation order. */
void dist_allreduce_avg_start(dist *d, float *buf, size_t n);
void dist_allreduce_wait(dist *d);
void dist_progress(dist *d);

/* ZeRO-1 helpers. The buffer is cut into world shards of dist_shard_len(n) floats (n must be a
 * multiple of world: pad the flat buffer); rank r owns [r*len, (r+1)*len).
 * reduce_scatter_avg leaves the average over ranks in this rank's shard; the rest of buf is
 * undefined afterwards. all_gather copies every rank's shard to every rank. The pair moves the
 * same bytes as one all-reduce. */
size_t dist_shard_len(const dist *d, size_t n);
void dist_reduce_scatter_avg(dist *d, float *buf, size_t n);
void dist_all_gather(dist *d, float *buf, size_t n);

/* ---- host values (always host memory) ----------------------------------------------------- */

void dist_allreduce_f64(dist *d, double *v, int n, dist_op op);
void dist_allreduce_i64(dist *d, int64_t *v, int n, dist_op op);
void dist_allreduce_int(dist *d, int *v, int n, dist_op op);
/* Rank 0's n bytes to every rank. */
void dist_bcast_bytes(dist *d, void *buf, size_t n);
void dist_barrier(dist *d);

/* ---- decisions every rank must take together ---------------------------------------------- */

/* The per-µstep vote, one small all-reduce: `stop` is rank 0's decision (deadline, step cap,
 * early termination, a signal; other ranks' values are ignored), `nonfinite` is true when any
 * rank saw a non-finite loss, gradient or parameter. Every rank gets the same answer. */
typedef struct dist_vote {
    bool stop;
    bool nonfinite;
} dist_vote;
dist_vote dist_vote_step(dist *d, bool stop_rank0, bool nonfinite_here);

/* The mean of x over ranks (the logged loss, a rate). */
double dist_mean(dist *d, double x);

/* True on every rank when all ranks hold the same nbytes at p (host memory): a 64-bit hash
 * compared by MIN/MAX all-reduce. For checks that parameters did not drift apart. */
bool dist_same_everywhere(dist *d, const void *p, size_t nbytes);

/* Runs fn on rank 0 while the other ranks wait, then on the others: for work whose first run
 * fills a cache that later runs reuse (data_prepare building the token store; the others then
 * find and open it). per_node: each node's local rank 0 runs first instead (node-local disks).
 * When a first run fails the others do not run fn. Every rank returns the same verdict: 0, or -1
 * with this rank's message (or one naming the rank that failed). */
int dist_first_then_rest(dist *d, bool per_node, int (*fn)(void *ctx, char *err, size_t errlen),
                         void *ctx, char *err, size_t errlen);

#endif
