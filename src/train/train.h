/* The pretraining job: the loop of SPEC 3.3 (microbatch accumulation, batch ramp, scheduler
 * stepping every microbatch, clipping, wall-clock deadline, step cap, early termination,
 * non-finite handling), its logging (print line, metrics.jsonl, summary table), the final
 * checkpoint folder, intermediate states with exact resume, and `cram pretrain`.
 * What runs print and save, and the resume semantics: docs/train.md. */
#ifndef CRAM_TRAIN_TRAIN_H
#define CRAM_TRAIN_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/fileio.h"
#include "ops/ops.h"

/* The seam for data-parallel training. The single-process version (train_dist_single) has
 * rank 0 of 1 and no-op collectives; an MPI/NCCL module fills the same table. */
typedef struct train_dist {
    int rank, world;
    void *ctx;
    /* buf (backend memory, n floats) <- mean over ranks; called once per optimizer update */
    void (*allreduce_mean)(void *ctx, float *buf, size_t n);
    /* rank 0's bytes to every rank: the budget clock, so all ranks follow one schedule */
    void (*bcast)(void *ctx, void *buf, size_t bytes);
    /* element-wise minimum over ranks: the stop/recovery flags, every microbatch */
    void (*allreduce_min_int)(void *ctx, int *v, int n);
} train_dist;

void train_dist_single(train_dist *d);

/* Hooks for tests and tools; every field may be NULL. */
typedef struct train_hooks {
    void *ctx;
    /* after every microbatch (the loss of that microbatch) */
    void (*after_step)(void *ctx, int64_t step, double loss);
} train_hooks;

typedef enum train_stop {
    TRAIN_STOP_NONE = 0,
    TRAIN_STOP_DEADLINE, /* budget hours used up */
    TRAIN_STOP_STEPS,    /* train.steps reached */
    TRAIN_STOP_EARLY,    /* impl.early_termination */
    TRAIN_STOP_NONFINITE,
    TRAIN_STOP_SIGNAL, /* SIGINT/SIGTERM: state saved, no final checkpoint */
    TRAIN_STOP_DRYRUN,
    TRAIN_STOP_DATA, /* (never: the loader cycles through epochs) */
} train_stop;

typedef struct train_result {
    train_stop stop;
    int64_t step;         /* µsteps done (counting the resumed ones) */
    int64_t updates;      /* optimizer updates done */
    double last_loss;     /* loss of the last µstep */
    double avg_loss;      /* last print window's mean (NAN before the first print) */
    double val_loss;      /* validation MLM loss (NAN when not measured) */
    double val_acc;       /* share of masked tokens predicted right */
    double tok_per_s;     /* over the whole loop of this process */
    double train_seconds; /* loop time of this process */
    double peak_gflops;   /* what MFU is measured against */
    uint64_t seed;
    char run_dir[CORE_PATH_MAX];
    char checkpoint_dir[CORE_PATH_MAX]; /* "" when none was written */
} train_result;

typedef struct train_opts {
    const ops *ops;           /* NULL: the CPU backend */
    const train_dist *dist;   /* NULL: single process */
    const train_hooks *hooks; /* NULL: none */
    int argc;                 /* the overrides as given, saved as overrides.yaml */
    char *const *argv;
} train_opts;

/* Run one pretraining job from a composed `pretrain` config. cfg is modified: a null seed is
 * replaced by the drawn one. Returns 0, 1 (system failure) or 2 (bad input), with res filled. */
int train_run(cfg_node *cfg, const train_opts *opts, train_result *res);

/* `cram pretrain [--config-dir=DIR] [overrides...]`; argv[0] is "pretrain". */
int train_cli_main(int argc, char **argv);

/* ---- pieces shared by the loop, the checkpoint code and later the eval job ---- */

/* FLOPs per trained token (forward + backward): 6 N_eff + 12 L S H, with N_eff the matmul
 * parameters a token touches (the sparse decoder counted at its decoded share). */
typedef struct bert_config bert_config;
double train_flops_per_token(const bert_config *c, int S);

/* A duration the way Python's str(datetime.timedelta) prints it: "1:02:03.456789",
 * "2 days, 0:00:01". */
void train_format_timedelta(char *out, size_t outlen, double seconds);

/* Append one row to the tab-separated table <dir>/table_<table>.csv, writing the header first
 * when the file is missing or empty. Values must not contain tabs or newlines (they are
 * replaced by spaces). Returns 0 or -1 with a message. */
int train_table_append(const char *dir, const char *table, char *const *keys, char *const *values,
                       int n, char *err, size_t errlen);

#endif
