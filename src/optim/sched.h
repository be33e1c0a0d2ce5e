/* Learning-rate schedules and the batch-size ramp as pure functions of training progress (the
 * µstep counter, or elapsed wall-clock seconds against the hour budget). Nothing here reads the
 * clock: the training loop measures time and passes it in. Formulas and every deviation from
 * the reference are in docs/optim.md. */
#ifndef CRAM_OPTIM_SCHED_H
#define CRAM_OPTIM_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every schedule name the config accepts (train.scheduler / eval.scheduler). */
typedef enum sched_kind {
    SCHED_NONE = 0, /* "none": the base lr throughout */
    /* step schedules (argument: the µstep counter) */
    SCHED_POLYNOMIAL_DECAY,   /* "polynomial-decay": HF polynomial, lr_end 1e-7, power 1 */
    SCHED_COSINE_DECAY,       /* "cosine-decay": HF cosine with warmup, half a cycle */
    SCHED_INVERSE_SQRT,       /* "inverse-sqrt" */
    SCHED_ONE_CYCLE,          /* "one-cycle" */
    SCHED_RAMP,               /* "ramp" */
    SCHED_TRIANGLE2,          /* "triangle2" */
    SCHED_HF_LINEAR,          /* "linear" */
    SCHED_HF_COSINE,          /* "cosine" (same as cosine-decay) */
    SCHED_HF_COSINE_RESTARTS, /* "cosine_with_restarts" (one cycle, as HF's default) */
    SCHED_HF_POLYNOMIAL,      /* "polynomial" (same as polynomial-decay) */
    SCHED_HF_CONSTANT,        /* "constant" (HF ignores the warmup here) */
    SCHED_HF_CONSTANT_WARMUP, /* "constant_with_warmup" */
    /* budget schedules (argument: the fake step from elapsed time) */
    SCHED_BUDGET_TRIANGLE1,
    SCHED_BUDGET_TRIANGLE2,
    SCHED_BUDGET_COSINE_DECAY,
    SCHED_BUDGET_COSINE_ANNEALING,
    SCHED_BUDGET_LINEAR,
    SCHED_BUDGET_CONSTANT,
    SCHED_BUDGET_INVERSE_SQRT,
    SCHED_BUDGET_ONE_CYCLE,
    SCHED_BUDGET_MULTI_CYCLE,
    SCHED_BUDGET_RAMP,
    SCHED_BUDGET_INV_COSINE,
    SCHED_BUDGET_POLYNOMIAL, /* fixed: the decay follows the fake step (docs/optim.md) */
    SCHED_BUDGET_DIVE,       /* fixed: constant 1, then linear to 0 over the last 50% */
    SCHED_BUDGET_DIVE_SLOW,  /* ... over the last 75% */
    SCHED_BUDGET_DIVE_FAST,  /* ... over the last 25% */
    SCHED_NKINDS
} sched_kind;

/* name -> kind. On an unknown name: -1, and err says the name, the closest valid one (when
 * one is close) and the full list. */
int sched_kind_parse(const char *name, sched_kind *out, char *err, size_t errlen);
const char *sched_kind_name(sched_kind kind);
bool sched_kind_is_budget(sched_kind kind);

/* A warmup/cooldown value from the config as a µstep count: x in (0,1) is a fraction of steps
 * and becomes int(x * steps) (truncated, as Python's int()); 0 and whole numbers >= 1 are taken
 * as they are. Negative, non-finite or fractional values above 1 give -1. */
int64_t sched_steps_from_config(double x, int64_t steps);

/* One configured schedule; fill it with sched_init. */
typedef struct sched {
    sched_kind kind;
    double base_lr;   /* lr = base_lr * factor */
    int64_t steps;    /* T: train.steps (µsteps) */
    int64_t warmup;   /* W, already converted from a fraction */
    int64_t cooldown; /* C, likewise */
    double budget_h;  /* hour budget; budget schedules only */
} sched;

/* Validates the combination (e.g. inverse-sqrt needs warmup >= 1, polynomial needs
 * base_lr > 1e-7, budget schedules need budget_h > 0) and converts warmup/cooldown fractions
 * with sched_steps_from_config. Returns 0, or -1 with a message. */
int sched_init(sched *s, sched_kind kind, double base_lr, int64_t steps, double warmup,
               double cooldown, double budget_h, char *err, size_t errlen);

/* sched_init from a resolved config: <prefix>.scheduler (null means "none"), .warmup_steps,
 * .cooldown_steps (missing: 0), .steps (unless steps > 0 is given, as eval computes it per
 * task) and .budget (missing: 0, fine for step schedules). E.g. prefix "train" or "eval". */
typedef struct cfg_node cfg_node;
int sched_init_from_cfg(sched *s, const cfg_node *root, const char *prefix, double base_lr,
                        int64_t steps, char *err, size_t errlen);

/* The budget schedules' fake step: int(elapsed_h / budget_h * steps) with
 * elapsed_h = elapsed_s / 60 / 60 (the reference's operation order, so the same double comes
 * out). Saturates instead of overflowing. */
int64_t sched_fake_step(double elapsed_s, double budget_h, int64_t steps);

/* The schedule's multiplier at step k: the µstep counter for step schedules, the fake step for
 * budget schedules. */
double sched_factor(const sched *s, int64_t k);

/* The learning rate with PyTorch LambdaLR semantics: `step` counts scheduler steps taken so far
 * (0 at construction, +1 after every µstep). Budget schedules use fake step 0 when step == 0
 * (the reference's initial evaluation), else sched_fake_step(elapsed_s, ...); step schedules
 * ignore elapsed_s. The value returned after µstep n is the lr of the next optimizer update. */
double sched_lr(const sched *s, int64_t step, double elapsed_s);

/* ---- batch-size ramp (train.batch_size_ramp) ----
 * The batch grows in steps of `quantum` sequences (train.batch_size_quantum; null: one
 * microbatch of all ranks, as the reference does). A quantum that does not depend on the
 * microbatch keeps the recipe's batch schedule when a larger microbatch is used for speed: the
 * training loop then ends an update with a partial microbatch. */
typedef struct ramp {
    int64_t batch_size; /* train.batch_size: the final (and, without ramp, the only) batch */
    double ramp;        /* 0: none; (0,1): share of the budget; >= 1: µsteps */
    int64_t steps;      /* train.steps */
    double budget_h;
    int64_t quantum; /* the batch grows by multiples of this many sequences */
} ramp;

/* Validates (mbs_eff <= batch_size, ramp >= 0, budget > 0 when 0 < ramp < 1, quantum >= 0).
 * quantum 0 means mbs_eff; a quantum above batch_size is batch_size. */
int ramp_init(ramp *r, int64_t batch_size, double ramp_value, int64_t steps, double budget_h,
              int64_t mbs_eff, int64_t quantum, char *err, size_t errlen);
/* ramp_init from <prefix>.batch_size, .batch_size_ramp, .steps, .budget and
 * .batch_size_quantum (missing or null: one microbatch). */
int ramp_init_from_cfg(ramp *r, const cfg_node *root, const char *prefix, int64_t mbs_eff,
                       char *err, size_t errlen);
/* The batch size before the first update: batch_size without a ramp, else one quantum. */
int64_t ramp_initial_batch(const ramp *r);
/* The batch size after an optimizer update that happened at µstep counter `ustep` with
 * `elapsed_s` seconds of budget used (the reference's schedule_batch_size, in quanta). */
int64_t ramp_batch_size(const ramp *r, int64_t ustep, double elapsed_s);

#endif
