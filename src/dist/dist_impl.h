/* Private to src/dist: the function table each implementation fills, and the constructors of
 * the MPI and NCCL implementations (compiled only when CMake found them; dist.c has stubs). */
#ifndef CRAM_DIST_DIST_IMPL_H
#define CRAM_DIST_DIST_IMPL_H

#include "dist/dist.h"

typedef struct dist_impl {
    void (*allreduce_floats)(dist *d, float *buf, size_t n, bool average);
    void (*bcast_floats)(dist *d, float *buf, size_t n);
    void (*reduce_scatter_avg)(dist *d, float *buf, size_t n);
    void (*all_gather)(dist *d, float *buf, size_t n);
    void (*allreduce_f64)(dist *d, double *v, int n, dist_op op);
    void (*allreduce_i64)(dist *d, int64_t *v, int n, dist_op op);
    void (*bcast_bytes)(dist *d, void *buf, size_t n);
    void (*barrier)(dist *d);
    void (*avg_start)(dist *d, float *buf, size_t n); /* bucketed all-reduce: post one */
    void (*avg_wait)(dist *d);                        /* ... finish all posted */
    void (*progress)(dist *d);
    void (*set_stream)(dist *d, void *stream);
    void (*sync)(dist *d);
    void (*describe)(const dist *d, char *out, size_t outlen);
    void (*free)(dist *d);
    void (*abort)(dist *d, int code); /* ends every rank; may return when there is one */
} dist_impl;

/* MPI_Init (if no one did), rank/world/local rank, the die hook. Fills d, sets d->impl to the MPI
 * table and d->state to its mpi_state. Returns 0 or -1 with a message. */
int dist_mpi_open(dist *d, char *err, size_t errlen);

/* The MPI pieces the NCCL implementation reuses for host values and its bootstrap. */
typedef struct mpi_state mpi_state;
void dist_mpi_allreduce_f64(mpi_state *m, double *v, int n, dist_op op);
void dist_mpi_allreduce_i64(mpi_state *m, int64_t *v, int n, dist_op op);
void dist_mpi_bcast_bytes(mpi_state *m, void *buf, size_t n);
void dist_mpi_barrier(mpi_state *m);
/* Frees the communicator; if dist_mpi_open initialized MPI, finalizes it and removes the die hook.
 */
void dist_mpi_close(mpi_state *m);
const char *dist_mpi_library(void);      /* "Open MPI v4.1.4" */
_Noreturn void dist_mpi_abort(int code); /* MPI_Abort(MPI_COMM_WORLD, code) */

/* NCCL on top of an open MPI dist (d->state is its mpi_state; any world size) or alone (one
 * process, forced; d->state NULL). Loads libnccl at run time, selects the GPU, creates the
 * communicator; on success d->state becomes the NCCL state, which owns the MPI state. Returns 0
 * or -1 with a message (d unchanged). */
int dist_nccl_open(dist *d, bool with_mpi, char *err, size_t errlen);

#endif
