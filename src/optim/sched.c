/* LR schedules and the batch-size ramp. Each factor is written with the reference's operation
 * order (Python doubles), so that the same double comes out as from the Python formulas; the
 * fixture test checks this to the last bit for most schedules. */
#include "optim/sched.h"

#include "config/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const sched_names[SCHED_NKINDS] = {
    [SCHED_NONE] = "none",
    [SCHED_POLYNOMIAL_DECAY] = "polynomial-decay",
    [SCHED_COSINE_DECAY] = "cosine-decay",
    [SCHED_INVERSE_SQRT] = "inverse-sqrt",
    [SCHED_ONE_CYCLE] = "one-cycle",
    [SCHED_RAMP] = "ramp",
    [SCHED_TRIANGLE2] = "triangle2",
    [SCHED_HF_LINEAR] = "linear",
    [SCHED_HF_COSINE] = "cosine",
    [SCHED_HF_COSINE_RESTARTS] = "cosine_with_restarts",
    [SCHED_HF_POLYNOMIAL] = "polynomial",
    [SCHED_HF_CONSTANT] = "constant",
    [SCHED_HF_CONSTANT_WARMUP] = "constant_with_warmup",
    [SCHED_BUDGET_TRIANGLE1] = "budget-triangle1",
    [SCHED_BUDGET_TRIANGLE2] = "budget-triangle2",
    [SCHED_BUDGET_COSINE_DECAY] = "budget-cosine-decay",
    [SCHED_BUDGET_COSINE_ANNEALING] = "budget-cosine-annealing",
    [SCHED_BUDGET_LINEAR] = "budget-linear",
    [SCHED_BUDGET_CONSTANT] = "budget-constant",
    [SCHED_BUDGET_INVERSE_SQRT] = "budget-inverse-sqrt",
    [SCHED_BUDGET_ONE_CYCLE] = "budget-one-cycle",
    [SCHED_BUDGET_MULTI_CYCLE] = "budget-multi-cycle",
    [SCHED_BUDGET_RAMP] = "budget-ramp",
    [SCHED_BUDGET_INV_COSINE] = "budget-inv-cosine",
    [SCHED_BUDGET_POLYNOMIAL] = "budget-polynomial",
    [SCHED_BUDGET_DIVE] = "budget-dive",
    [SCHED_BUDGET_DIVE_SLOW] = "budget-dive-slow",
    [SCHED_BUDGET_DIVE_FAST] = "budget-dive-fast",
};

const char *sched_kind_name(sched_kind kind) {
    return (kind >= 0 && kind < SCHED_NKINDS) ? sched_names[kind] : "?";
}

bool sched_kind_is_budget(sched_kind kind) {
    return kind >= SCHED_BUDGET_TRIANGLE1 && kind < SCHED_NKINDS;
}

int sched_kind_parse(const char *name, sched_kind *out, char *err, size_t errlen) {
    if (name) {
        for (int k = 0; k < SCHED_NKINDS; k++)
            if (strcmp(name, sched_names[k]) == 0) {
                *out = (sched_kind)k;
                return 0;
            }
    }
    if (err && errlen) {
        const char *close =
            name ? cfg_closest(name, (char *const *)sched_names, SCHED_NKINDS) : NULL;
        size_t n =
            (size_t)snprintf(err, errlen, "unknown LR schedule '%s'", name ? name : "(null)");
        if (close && n < errlen)
            n += (size_t)snprintf(err + n, errlen - n, " (did you mean '%s'?)", close);
        if (n < errlen) n += (size_t)snprintf(err + n, errlen - n, "; valid schedules:");
        for (int k = 0; k < SCHED_NKINDS && n < errlen; k++)
            n += (size_t)snprintf(err + n, errlen - n, " %s", sched_names[k]);
    }
    return -1;
}

int64_t sched_steps_from_config(double x, int64_t steps) {
    if (!isfinite(x) || x < 0) return -1;
    if (x > 0 && x < 1) return (int64_t)(x * (double)steps);
    if (x != floor(x) || x > 9.0e18) return -1;
    return (int64_t)x;
}

static int fail(char *err, size_t errlen, const char *msg, const char *name) {
    if (err && errlen) snprintf(err, errlen, "LR schedule '%s': %s", name, msg);
    return -1;
}

int sched_init(sched *s, sched_kind kind, double base_lr, int64_t steps, double warmup,
               double cooldown, double budget_h, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    if (kind < 0 || kind >= SCHED_NKINDS) return fail(err, errlen, "unknown kind", "?");
    const char *name = sched_names[kind];
    if (!isfinite(base_lr) || base_lr < 0)
        return fail(err, errlen, "the learning rate must be a finite number >= 0", name);
    if (steps < 1) return fail(err, errlen, "steps must be >= 1", name);
    int64_t w = sched_steps_from_config(warmup, steps);
    int64_t c = sched_steps_from_config(cooldown, steps);
    if (w < 0)
        return fail(err, errlen,
                    "warmup_steps must be 0, a fraction in (0,1) or a whole number of steps", name);
    if (c < 0)
        return fail(err, errlen,
                    "cooldown_steps must be 0, a fraction in (0,1) or a whole number of steps",
                    name);
    if (sched_kind_is_budget(kind) && !(budget_h > 0 && isfinite(budget_h)))
        return fail(err, errlen, "a budget schedule needs budget > 0 hours", name);
    switch (kind) {
    case SCHED_INVERSE_SQRT:
    case SCHED_BUDGET_INVERSE_SQRT:
        /* lambda = sqrt(W/k): without warmup it is 0 everywhere (the reference divides by 0) */
        if (w < 1) return fail(err, errlen, "needs warmup_steps >= 1", name);
        if (c >= steps) return fail(err, errlen, "needs cooldown_steps < steps", name);
        break;
    case SCHED_POLYNOMIAL_DECAY:
    case SCHED_HF_POLYNOMIAL:
        if (!(base_lr > 1e-7))
            return fail(err, errlen, "the learning rate must be above lr_end = 1e-7", name);
        break;
    case SCHED_BUDGET_POLYNOMIAL:
        if (!(base_lr > 0)) return fail(err, errlen, "the learning rate must be > 0", name);
        break;
    case SCHED_BUDGET_MULTI_CYCLE:
        if (steps < 8) return fail(err, errlen, "needs steps >= 8 (8 cycles)", name);
        break;
    case SCHED_BUDGET_RAMP:
    case SCHED_RAMP:
    case SCHED_BUDGET_INV_COSINE:
    case SCHED_BUDGET_CONSTANT:
        if (c > steps) return fail(err, errlen, "needs cooldown_steps <= steps", name);
        break;
    default:
        break;
    }
    s->kind = kind;
    s->base_lr = base_lr;
    s->steps = steps;
    s->warmup = w;
    s->cooldown = c;
    s->budget_h = budget_h;
    return 0;
}

/* A number at <prefix>.<key>; a missing or null key gives def (when allow_missing). Unlike
 * cfg_num_or, a value of another type (and a missing key without allow_missing) is an error
 * that names the key. */
static int sched_num(const cfg_node *root, const char *prefix, const char *key, double def,
                     bool allow_missing, double *out, char *err, size_t errlen) {
    char path[256];
    snprintf(path, sizeof path, "%s.%s", prefix, key);
    const cfg_node *n = cfg_get(root, path);
    if (!n || n->type == CFG_NULL) {
        if (allow_missing) {
            *out = def;
            return 0;
        }
        if (err && errlen) snprintf(err, errlen, "%s: missing", path);
        return -1;
    }
    cfg_error e;
    if (cfg_get_num(root, path, out, &e) != 0) {
        if (err && errlen) snprintf(err, errlen, "%s", e.msg);
        return -1;
    }
    return 0;
}

int sched_init_from_cfg(sched *s, const cfg_node *root, const char *prefix, double base_lr,
                        int64_t steps, char *err, size_t errlen) {
    char path[256];
    snprintf(path, sizeof path, "%s.scheduler", prefix);
    const cfg_node *nm = cfg_get(root, path);
    const char *name = "none";
    if (nm && nm->type == CFG_STR)
        name = nm->s;
    else if (nm && nm->type != CFG_NULL) {
        if (err && errlen) snprintf(err, errlen, "%s: expected a schedule name", path);
        return -1;
    }
    sched_kind kind;
    if (sched_kind_parse(name, &kind, err, errlen) != 0) return -1;
    double w, c, budget, T = (double)steps;
    if (sched_num(root, prefix, "warmup_steps", 0, true, &w, err, errlen) ||
        sched_num(root, prefix, "cooldown_steps", 0, true, &c, err, errlen) ||
        sched_num(root, prefix, "budget", 0, true, &budget, err, errlen) ||
        (steps <= 0 && sched_num(root, prefix, "steps", 0, false, &T, err, errlen)))
        return -1;
    if (!(T >= 1 && T < 9e18 && T == floor(T))) {
        if (err && errlen) snprintf(err, errlen, "%s.steps: must be a whole number >= 1", prefix);
        return -1;
    }
    return sched_init(s, kind, base_lr, (int64_t)T, w, c, budget, err, errlen);
}

int64_t sched_fake_step(double elapsed_s, double budget_h, int64_t steps) {
    double elapsed_h = elapsed_s / 60 / 60;
    double k = elapsed_h / budget_h * (double)steps;
    if (!(k == k)) return 0;
    if (k >= 9.0e18) return INT64_C(9000000000000000000);
    if (k <= -9.0e18) return -INT64_C(9000000000000000000);
    return (int64_t)k; /* truncation toward zero, as int() */
}

/* Python's float % float (the result takes the divisor's sign). */
static double py_fmod(double x, double y) {
    double m = fmod(x, y);
    if (m != 0 && ((y < 0) != (m < 0))) m += y;
    return m;
}

/* Python's float // float. */
static double py_floordiv(double x, double y) {
    double mod = fmod(x, y);
    double div = (x - mod) / y;
    if (mod != 0 && ((y < 0) != (mod < 0))) div -= 1.0;
    if (div != 0) {
        double fl = floor(div);
        if (div - fl > 0.5) fl += 1.0;
        return fl;
    }
    return copysign(0.0, x / y);
}

static double max1(int64_t x) {
    return (double)(x > 1 ? x : 1);
}

/* min(base + k*(1-base)/(1-falloff)/T, 1/falloff - k/(T*falloff)) */
static double triangle(double k, double T, double base, double falloff) {
    double up = base + k * (1 - base) / (1 - falloff) / T;
    double down = 1 / falloff - k / (T * falloff);
    return up < down ? up : down;
}

static double inv_sqrt(double k, int64_t W, int64_t C, int64_t T) {
    double decay_factor = pow((double)W, 0.5);
    double decayed = decay_factor * pow((double)(T - C), -0.5);
    if (k < (double)W) return k * (1.0 / (double)W);
    if (k > (double)(T - C)) {
        if (C == 0) return 0.0; /* only past the end; the reference divides by zero here */
        return fmax(0.0, decayed * ((double)T - k) / (double)C);
    }
    return decay_factor * pow(k, -0.5);
}

static double budget_inv_sqrt(double k, int64_t W, int64_t C, int64_t T) {
    double decay_factor = pow((double)W, 0.5);
    double decayed = decay_factor * pow((double)(T - C), -0.5);
    if (k < (double)W) return k / (double)W;
    if (k > (double)(T - C)) {
        if (C == 0) return 0.0;
        return fmax(0.0, decayed * ((double)T - k) / (double)C);
    }
    return decay_factor * pow(k, -0.5);
}

/* HF polynomial decay with warmup (power 1): the value LambdaLR multiplies base_lr with. */
static double hf_polynomial(double k, int64_t W, int64_t T, double lr_init, double lr_end) {
    if (k < (double)W) return k / max1(W);
    if (k > (double)T) return lr_end / lr_init;
    double lr_range = lr_init - lr_end;
    double decay_steps = (double)(T - W);
    if (decay_steps <= 0) return lr_end / lr_init; /* W == T: the reference divides by zero */
    double pct_remaining = 1 - (k - (double)W) / decay_steps;
    double decay = lr_range * pct_remaining + lr_end;
    return decay / lr_init;
}

static double cosine_half(double k, int64_t W, int64_t T) {
    if (k < (double)W) return k / max1(W);
    double progress = (k - (double)W) / max1(T - W);
    return fmax(0.0, 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress)));
}

static double linear_warmup(double k, int64_t W, int64_t T) {
    if (k < (double)W) return k / max1(W);
    return fmax(0.0, ((double)T - k) / max1(T - W));
}

static double dive(double k, int64_t W, int64_t T, double falloff) {
    if (k < (double)W) return k / max1(W);
    double v = 1 / falloff - k / ((double)T * falloff);
    return fmax(0.0, v < 1.0 ? v : 1.0);
}

double sched_factor(const sched *s, int64_t step) {
    const double k = (double)step, T = (double)s->steps;
    const int64_t W = s->warmup, C = s->cooldown, Ti = s->steps;
    switch (s->kind) {
    case SCHED_NONE:
    case SCHED_HF_CONSTANT:
        return 1.0;
    case SCHED_POLYNOMIAL_DECAY:
    case SCHED_HF_POLYNOMIAL:
        return hf_polynomial(k, W, Ti, s->base_lr, 1e-7);
    case SCHED_COSINE_DECAY:
    case SCHED_HF_COSINE:
    case SCHED_BUDGET_COSINE_DECAY:
        return cosine_half(k, W, Ti);
    case SCHED_HF_LINEAR:
    case SCHED_BUDGET_LINEAR:
        return linear_warmup(k, W, Ti);
    case SCHED_HF_COSINE_RESTARTS: {
        if (k < (double)W) return k / max1(W);
        double progress = (k - (double)W) / max1(Ti - W);
        if (progress >= 1.0) return 0.0;
        return fmax(0.0, 0.5 * (1.0 + cos(M_PI * py_fmod(1.0 * progress, 1.0))));
    }
    case SCHED_HF_CONSTANT_WARMUP:
        if (k < (double)W) return k / (double)(W > 1 ? W : 1);
        return 1.0;
    case SCHED_INVERSE_SQRT:
        return inv_sqrt(k, W, C, Ti);
    case SCHED_BUDGET_INVERSE_SQRT:
        return budget_inv_sqrt(k, W, C, Ti);
    case SCHED_ONE_CYCLE:
    case SCHED_BUDGET_ONE_CYCLE:
        if (k < T / 2) return k / (T / 2);
        return 2 - k / (T / 2);
    case SCHED_RAMP:
    case SCHED_BUDGET_RAMP: {
        double max_lr = (double)(Ti - C) / T;
        if (k > (double)(Ti - C)) {
            if (C == 0) return 0.0;
            return fmax(0.0, max_lr * (T - k) / (double)C);
        }
        return k / T;
    }
    case SCHED_TRIANGLE2:
    case SCHED_BUDGET_TRIANGLE2:
        return triangle(k, T, 0.25, 0.25);
    case SCHED_BUDGET_TRIANGLE1:
        return triangle(k, T, 0.5, 0.25);
    case SCHED_BUDGET_COSINE_ANNEALING: {
        if (k < (double)W) return k / max1(W);
        double progress = (k - (double)W) / max1(Ti - W);
        return fmax(0.0, 0.5 * (1.0 + cos(M_PI * py_fmod(4.0 * progress, 1.0))));
    }
    case SCHED_BUDGET_CONSTANT:
        if (k < (double)W) return k / (double)W;
        if (k > (double)(Ti - C)) {
            if (C == 0) return 0.0;
            return fmax(0.0, (T - k) / (double)C);
        }
        return 1.0;
    case SCHED_BUDGET_MULTI_CYCLE: {
        int64_t c = (int64_t)(T / 8);
        int64_t j = step % c;
        if (j < 0) j += c;
        double jd = (double)j, half = (double)c / 2;
        if (jd < half) return jd / half;
        return 2 - jd / half;
    }
    case SCHED_BUDGET_INV_COSINE: {
        double ult = (double)(Ti - C);
        double max_lr = fmax(0.0, 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * (1 - ult / max1(Ti)))));
        double progress = 1 - k / max1(Ti);
        if (k > (double)(Ti - C)) {
            if (C == 0) return 0.0;
            return fmax(0.0, max_lr * (T - k) / (double)C);
        }
        return fmax(0.0, 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress)));
    }
    case SCHED_BUDGET_POLYNOMIAL:
        return hf_polynomial(k, W, Ti, s->base_lr, 0.0);
    case SCHED_BUDGET_DIVE:
        return dive(k, W, Ti, 0.5);
    case SCHED_BUDGET_DIVE_SLOW:
        return dive(k, W, Ti, 0.75);
    case SCHED_BUDGET_DIVE_FAST:
        return dive(k, W, Ti, 0.25);
    case SCHED_NKINDS:
        break;
    }
    return 1.0;
}

double sched_lr(const sched *s, int64_t step, double elapsed_s) {
    int64_t k = step;
    if (sched_kind_is_budget(s->kind))
        k = step == 0 ? 0 : sched_fake_step(elapsed_s, s->budget_h, s->steps);
    return s->base_lr * sched_factor(s, k);
}

/* ---- batch-size ramp ---- */

int ramp_init(ramp *r, int64_t batch_size, double ramp_value, int64_t steps, double budget_h,
              int64_t mbs_eff, int64_t quantum, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    const char *msg = NULL;
    if (quantum == 0) quantum = mbs_eff; /* the reference: the batch grows by microbatches */
    if (quantum > batch_size && batch_size >= 1) quantum = batch_size; /* small test batches */
    if (mbs_eff < 1 || batch_size < 1)
        msg = "batch_size and the microbatch size must be >= 1";
    else if (mbs_eff > batch_size)
        msg = "the microbatch is larger than the batch";
    else if (!isfinite(ramp_value) || ramp_value < 0)
        msg = "batch_size_ramp must be >= 0";
    else if (ramp_value > 0 && ramp_value < 1 && !(budget_h > 0 && isfinite(budget_h) && steps > 0))
        msg = "a batch_size_ramp below 1 needs budget > 0 and steps >= 1";
    else if (quantum < 1)
        msg = "batch_size_quantum must be >= 1";
    if (msg) {
        if (err && errlen)
            snprintf(err, errlen, "batch ramp (MBS %lld, BS %lld, ramp %g, quantum %lld): %s",
                     (long long)mbs_eff, (long long)batch_size, ramp_value, (long long)quantum,
                     msg);
        return -1;
    }
    r->batch_size = batch_size;
    r->ramp = ramp_value;
    r->steps = steps;
    r->budget_h = budget_h;
    r->quantum = quantum;
    return 0;
}

int ramp_init_from_cfg(ramp *r, const cfg_node *root, const char *prefix, int64_t mbs_eff,
                       char *err, size_t errlen) {
    double bs, rv, T, budget, q;
    if (sched_num(root, prefix, "batch_size", 0, false, &bs, err, errlen) ||
        sched_num(root, prefix, "batch_size_ramp", 0, true, &rv, err, errlen) ||
        sched_num(root, prefix, "steps", 0, false, &T, err, errlen) ||
        sched_num(root, prefix, "budget", 0, true, &budget, err, errlen) ||
        sched_num(root, prefix, "batch_size_quantum", 0, true, &q, err, errlen))
        return -1;
    if (!(bs >= 1 && bs < 9e18 && bs == floor(bs)) || !(T >= 0 && T < 9e18 && T == floor(T))) {
        if (err && errlen)
            snprintf(err, errlen, "%s.batch_size and %s.steps must be whole numbers", prefix,
                     prefix);
        return -1;
    }
    char qp[256];
    snprintf(qp, sizeof qp, "%s.batch_size_quantum", prefix);
    const cfg_node *qn = cfg_get(root, qp);
    if (qn && qn->type != CFG_NULL && !(q >= 1 && q < 9e18 && q == floor(q))) {
        if (err && errlen)
            snprintf(err, errlen,
                     "%s=%g: expected a whole number of sequences >= 1 (or null: one microbatch)",
                     qp, q);
        return -1;
    }
    return ramp_init(r, (int64_t)bs, rv, (int64_t)T, budget, mbs_eff, (int64_t)q, err, errlen);
}

int64_t ramp_initial_batch(const ramp *r) {
    return r->ramp == 0 ? r->batch_size : r->quantum;
}

int64_t ramp_batch_size(const ramp *r, int64_t ustep, double elapsed_s) {
    const double bs = (double)r->batch_size, q = (double)r->quantum;
    if (r->ramp > 0 && r->ramp < 1) {
        /* fake step without the step-0 special case of the LR schedules */
        int64_t fake = sched_fake_step(elapsed_s, r->budget_h, r->steps);
        double step_bs = bs / ((double)r->steps * r->ramp);
        int64_t nb = (int64_t)(py_floordiv((double)fake * step_bs, q) + 1) * r->quantum;
        return nb < r->batch_size ? nb : r->batch_size;
    }
    if ((double)ustep < r->ramp) {
        double step_bs = bs / r->ramp;
        double grow = py_floordiv((double)ustep * step_bs, q) + 1;
        return (int64_t)grow * r->quantum;
    }
    return r->batch_size;
}
