// What the jobs read from their configuration, checked where the configuration is made: the
// tables of keys (kind, allowed range, null allowed, may be absent), the strict getters built on
// the same checks, and the messages that name the key, the value and what the key takes.
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_internal.h"

#define I32 INT32_MAX
#define I64 INT64_MAX

// Keys that both jobs read from impl/ (src/train, src/eval, src/ops/backend.c, src/data).
#define IMPL_CHECKS                                                                                \
    CFG_CHECK_STR("impl.name", CFG_CHECK_NULL), CFG_CHECK_STR("impl.device", 0),                   \
        CFG_CHECK_STR("impl.precision", 0), CFG_CHECK_STR("impl.path", 0),                         \
        CFG_CHECK_INT("impl.microbatch_size", 1, I32, 0),                                          \
        CFG_CHECK_INT("impl.threads", 0, I32, CFG_CHECK_NULL),                                     \
        CFG_CHECK_INT("impl.print_loss_every_nth_step", 1, I64, 0),                                \
        CFG_CHECK_INT("impl.save_every_nth_step", 1, I64, 0),                                      \
        CFG_CHECK_BOOL("impl.save_intermediate_checkpoints", 0),                                   \
        CFG_CHECK_BOOL("impl.resume_run_after_preempt", 0),                                        \
        CFG_CHECK_BOOL("impl.early_termination.enabled", 0),                                       \
        CFG_CHECK_NUM("impl.early_termination.budget", 0, INFINITY, 0),                            \
        CFG_CHECK_NUM("impl.early_termination.loss_threshold", -INFINITY, INFINITY, 0),            \
        CFG_CHECK_BOOL("impl.mixed_precision", 0), CFG_CHECK_BOOL("impl.flush_denormals", 0),      \
        CFG_CHECK_BOOL("impl.shuffle_in_dataloader", 0), CFG_CHECK_STR("impl.dist_backend", 0),    \
        CFG_CHECK_BOOL("impl.forbid_dataset_preprocessing", 0)

// The keys of the top-level file that both jobs read.
#define TOP_CHECKS                                                                                 \
    CFG_CHECK_STR("name", CFG_CHECK_NULL), CFG_CHECK_STR("base_dir", CFG_CHECK_NULL),              \
        CFG_CHECK_INT("seed", INT64_MIN, I64, CFG_CHECK_NULL), CFG_CHECK_BOOL("dryrun", 0)

const cfg_check cfg_checks_pretrain[] = {
    TOP_CHECKS,
    CFG_CHECK_NUM("budget", 0, INFINITY, CFG_CHECK_ABOVE),
    IMPL_CHECKS,
    CFG_CHECK_INT("train.steps", 1, I64, 0),
    CFG_CHECK_INT("train.batch_size", 1, I32, 0),
    CFG_CHECK_NUM("train.budget", 0, INFINITY, CFG_CHECK_ABOVE),
    CFG_CHECK_NUM("train.warmup_steps", 0, INFINITY, 0),
    CFG_CHECK_NUM("train.cooldown_steps", 0, INFINITY, 0),
    CFG_CHECK_NUM("train.batch_size_ramp", 0, INFINITY, 0),
    CFG_CHECK_INT("train.batch_size_quantum", 1, I32, CFG_CHECK_NULL | CFG_CHECK_OPTIONAL),
    CFG_CHECK_NUM("train.gradient_clipping", 0, INFINITY, CFG_CHECK_NULL),
    CFG_CHECK_BOOL("train.pretrain_in_train_mode", 0),
    CFG_CHECK_BOOL("train.reverse_dataset_order", 0),
    CFG_CHECK_STR("train.scheduler", CFG_CHECK_NULL),
    CFG_CHECK_STR("train.objective.name", 0),
    CFG_CHECK_NUM("train.objective.mlm_probability", 0, 1, 0),
    CFG_CHECK_NUM("train.objective.token_drop", 0, 1, 0),
    CFG_CHECK_BOOL("train.objective.use_80_20_rule", 0),
    CFG_CHECK_BOOL("train.objective.disable_mlm", 0),
    CFG_CHECK_STR("data.tokenizer", CFG_CHECK_OPTIONAL),
    CFG_CHECK_INT("data.vocab_size", 1, I32, 0),
    CFG_CHECK_INT("data.seq_length", 1, I32, 0),
    CFG_CHECK_NUM("data.max_entries_in_raw_dataset", 0, INFINITY, CFG_CHECK_OPTIONAL),
    CFG_CHECK_NUM("data.max_seq_in_tokenized_dataset", 0, INFINITY, CFG_CHECK_OPTIONAL),
    CFG_CHECK_NUM("data.trash_cutoff", -INFINITY, INFINITY, CFG_CHECK_OPTIONAL),
    CFG_CHECK_BOOL("data.deduplicate_entries", CFG_CHECK_OPTIONAL),
    CFG_CHECK_BOOL("data.remove_whitespaces", CFG_CHECK_OPTIONAL),
    CFG_CHECK_STR("data.ordering", CFG_CHECK_OPTIONAL),
    {0},
};

const cfg_check cfg_checks_eval[] = {
    TOP_CHECKS,
    IMPL_CHECKS,
    CFG_CHECK_STR("eval.name", 0),
    CFG_CHECK_STR("eval.checkpoint", 0),
    CFG_CHECK_STR("eval.data_dir", 0),
    CFG_CHECK_INT("eval.batch_size", 1, I32, 0),
    CFG_CHECK_INT("eval.epochs", 1, I32, 0),
    CFG_CHECK_INT("eval.max_seq_length", 1, I32, 0),
    CFG_CHECK_INT("eval.steps", 1, I64, CFG_CHECK_NULL),
    CFG_CHECK_NUM("eval.warmup_steps", 0, INFINITY, 0),
    CFG_CHECK_NUM("eval.cooldown_steps", 0, INFINITY, 0),
    CFG_CHECK_NUM("eval.batch_size_ramp", 0, INFINITY, 0),
    CFG_CHECK_NUM("eval.gradient_clipping", 0, INFINITY, CFG_CHECK_NULL),
    CFG_CHECK_STR("eval.scheduler", CFG_CHECK_NULL),
    CFG_CHECK_BOOL("eval.eval_in_train_mode", 0),
    CFG_CHECK_BOOL("eval.reference_warmup_carry_over", 0),
    {0},
};

const cfg_check *cfg_checks_for(const char *primary) {
    if (!primary) return NULL;
    if (strcmp(primary, "pretrain") == 0) return cfg_checks_pretrain;
    if (strcmp(primary, "eval") == 0) return cfg_checks_eval;
    return NULL;
}

const cfg_check *cfg_check_find(const cfg_check *table, const char *path) {
    for (; table && table->path; table++)
        if (strcmp(table->path, path) == 0) return table;
    return NULL;
}

bool cfg_whole(double f, int64_t *out) {
    // 2^63 is exact as a double; [-2^63, 2^63) is what an int64_t holds. NaN fails every test.
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0) || f != floor(f)) return false;
    *out = (int64_t)f;
    return true;
}

void cfg_describe(const cfg_node *v, char *out, size_t len) {
    char num[64];
    switch (v->type) {
    case CFG_NULL:
        snprintf(out, len, "null");
        break;
    case CFG_BOOL:
        snprintf(out, len, "the boolean %s", v->b ? "true" : "false");
        break;
    case CFG_INT:
        snprintf(out, len, "the integer %" PRId64, v->i);
        break;
    case CFG_FLOAT:
        cfg_format_float(v->f, num, sizeof num);
        snprintf(out, len, "the number %s", num);
        break;
    case CFG_STR:
        snprintf(out, len, "the string '%.200s'", v->s);
        break;
    case CFG_LIST:
        snprintf(out, len, "a list");
        break;
    case CFG_MAP:
        snprintf(out, len, "a mapping");
        break;
    }
}

static void format_bound(double v, char *out, size_t len) {
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, len, "%.0f", v);
    else
        cfg_format_float(v, out, len);
}

void cfg_check_phrase(const cfg_check *c, bool bounds, char *out, size_t len) {
    const char *orn = c->flags & CFG_CHECK_NULL ? " or null" : "";
    char a[64], b[64];
    switch (c->type) {
    case CFG_INT:
        if (c->ilo == INT64_MIN && c->ihi == INT64_MAX && !bounds)
            snprintf(out, len, "an integer%s", orn);
        else if (c->ihi == INT64_MAX && c->ilo != INT64_MIN)
            snprintf(out, len, "an integer >= %" PRId64 "%s", c->ilo, orn);
        else if (c->ilo == INT64_MIN && c->ihi != INT64_MAX)
            snprintf(out, len, "an integer <= %" PRId64 "%s", c->ihi, orn);
        else
            snprintf(out, len, "an integer from %" PRId64 " to %" PRId64 "%s", c->ilo, c->ihi, orn);
        return;
    case CFG_FLOAT:
        format_bound(c->lo, a, sizeof a);
        format_bound(c->hi, b, sizeof b);
        if (c->flags & CFG_CHECK_ABOVE) {
            if (isinf(c->hi))
                snprintf(out, len, "a number greater than %s%s", a, orn);
            else
                snprintf(out, len, "a number greater than %s and at most %s%s", a, b, orn);
        } else if (isinf(c->lo) && isinf(c->hi)) {
            snprintf(out, len, "a number%s", orn);
        } else if (isinf(c->hi)) {
            snprintf(out, len, "a number >= %s%s", a, orn);
        } else {
            snprintf(out, len, "a number from %s to %s%s", a, b, orn);
        }
        return;
    case CFG_BOOL:
        snprintf(out, len, "true or false%s", orn);
        return;
    case CFG_STR:
        snprintf(out, len, "a string%s", orn);
        return;
    default:
        snprintf(out, len, "a value");
    }
}

// The text of a scalar as a command line writes it; false for a list or a mapping.
static bool scalar_text(const cfg_node *n, char *out, size_t len) {
    switch (n->type) {
    case CFG_NULL:
        snprintf(out, len, "null");
        return true;
    case CFG_BOOL:
        snprintf(out, len, "%s", n->b ? "true" : "false");
        return true;
    case CFG_INT:
        snprintf(out, len, "%" PRId64, n->i);
        return true;
    case CFG_FLOAT:
        cfg_format_float(n->f, out, len);
        return true;
    case CFG_STR:
        snprintf(out, len, "%.200s", n->s);
        return true;
    default:
        return false;
    }
}

int cfg_check_node(const cfg_check *c, const cfg_node *n, const char *typed, char *msg,
                   size_t len) {
    bool bounds = false;   // the right kind of value, outside the allowed range
    bool fraction = false; // a number with a fractional part for an integer key
    if (n->type == CFG_NULL) {
        if (c->flags & CFG_CHECK_NULL) return 0;
    } else if (c->type == CFG_INT && (n->type == CFG_INT || n->type == CFG_FLOAT)) {
        int64_t v = n->i;
        if (n->type == CFG_FLOAT && !cfg_whole(n->f, &v)) {
            fraction = !isinf(n->f) && n->f != floor(n->f) && !isnan(n->f);
            bounds = !fraction && !isnan(n->f);
        } else if (v >= c->ilo && v <= c->ihi) {
            return 0;
        } else {
            bounds = true;
        }
    } else if (c->type == CFG_FLOAT && (n->type == CFG_INT || n->type == CFG_FLOAT)) {
        double v = n->type == CFG_INT ? (double)n->i : n->f;
        if ((c->flags & CFG_CHECK_ABOVE ? v > c->lo : v >= c->lo) && v <= c->hi) return 0;
        bounds = true;
    } else if (c->type == n->type && (c->type == CFG_BOOL || c->type == CFG_STR)) {
        return 0;
    }
    char text[256], takes[160], what[300];
    bool scalar = scalar_text(n, text, sizeof text);
    if (typed) snprintf(text, sizeof text, "%.200s", typed), scalar = true;
    cfg_check_phrase(c, bounds, takes, sizeof takes);
    if (bounds)
        snprintf(what, sizeof what, "%s", text);
    else if (fraction)
        snprintf(what, sizeof what, "the fraction %s", text);
    else
        cfg_describe(n, what, sizeof what);
    if (scalar)
        snprintf(msg, len, "%s=%s: %s takes %s, not %s", c->path, text, c->path, takes, what);
    else
        snprintf(msg, len, "%s: %s takes %s, not %s", c->path, c->path, takes, what);
    return -1;
}

int cfg_check_ranges(const cfg_node *root, const cfg_check *table, char *err, size_t errlen) {
    char msg[1024];
    for (const cfg_check *c = table; c && c->path; c++) {
        const cfg_node *n = cfg_get(root, c->path);
        if (!n) {
            if (c->flags & CFG_CHECK_OPTIONAL) continue;
            if (err && errlen)
                snprintf(err, errlen, "the config has no %s, which cram reads (%s)", c->path,
                         "a file cut short, or a key removed with ~?");
            return -1;
        }
        if (cfg_check_node(c, n, NULL, msg, sizeof msg)) {
            if (err && errlen) snprintf(err, errlen, "%s", msg);
            return -1;
        }
    }
    return 0;
}

// ---- strict getters ----------------------------------------------------------------------

// The node at path for a strict getter: NULL (use the default) when missing or null.
static const cfg_node *strict_node(const cfg_node *root, const char *path) {
    const cfg_node *n = cfg_get(root, path);
    return n && n->type != CFG_NULL ? n : NULL;
}

static int strict_fail(const cfg_check *c, const cfg_node *n, char *err, size_t errlen) {
    char msg[1024];
    if (cfg_check_node(c, n, NULL, msg, sizeof msg) == 0) return 0;
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return -1;
}

int cfg_int_in(const cfg_node *root, const char *path, int64_t lo, int64_t hi, int64_t def,
               int64_t *out, char *err, size_t errlen) {
    const cfg_node *n = strict_node(root, path);
    if (!n) return (*out = def), 0;
    cfg_check c = CFG_CHECK_INT(path, lo, hi, 0);
    if (strict_fail(&c, n, err, errlen)) return -1;
    int64_t v = n->i;
    if (n->type == CFG_FLOAT) cfg_whole(n->f, &v); // checked above: whole and in range
    *out = v;
    return 0;
}

int cfg_num_in(const cfg_node *root, const char *path, double lo, double hi, double def,
               double *out, char *err, size_t errlen) {
    const cfg_node *n = strict_node(root, path);
    if (!n) return (*out = def), 0;
    cfg_check c = CFG_CHECK_NUM(path, lo, hi, 0);
    if (strict_fail(&c, n, err, errlen)) return -1;
    *out = n->type == CFG_INT ? (double)n->i : n->f;
    return 0;
}

int cfg_bool_strict(const cfg_node *root, const char *path, bool def, bool *out, char *err,
                    size_t errlen) {
    const cfg_node *n = strict_node(root, path);
    if (!n) return (*out = def), 0;
    cfg_check c = CFG_CHECK_BOOL(path, 0);
    if (strict_fail(&c, n, err, errlen)) return -1;
    *out = n->b;
    return 0;
}

int cfg_str_strict(const cfg_node *root, const char *path, const char *def, const char **out,
                   char *err, size_t errlen) {
    const cfg_node *n = strict_node(root, path);
    if (!n) return (*out = def), 0;
    cfg_check c = CFG_CHECK_STR(path, 0);
    if (strict_fail(&c, n, err, errlen)) return -1;
    *out = n->s;
    return 0;
}
