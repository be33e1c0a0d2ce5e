/* The pretraining job: the reference's loop (microbatch accumulation, batch ramp, scheduler
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

struct dist;

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
    const ops *ops;           /* NULL: opened from impl.* (ops/backend.h) for this run */
    struct dist *dist;        /* NULL: one process */
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

#endif
