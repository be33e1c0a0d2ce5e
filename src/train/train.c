/* The pretraining loop and `cram pretrain`. One microbatch per iteration:
 * forward/backward with loss/accum, an optimizer update once the accumulated samples reach the
 * current (ramped) batch size, the scheduler stepped after EVERY microbatch, then the stopping
 * checks. All clocks are read here; the schedules are pure functions of what we pass them. */
#include "train/train.h"

#include "dist/dist.h"

#include "core/core.h"
#include "core/plot.h"
#include "core/tboard.h"
#include "data/data.h"
#include "model/model.h"
#include "ops/backend.h"
#include "optim/adamw.h"
#include "optim/sched.h"
#include "train/train_internal.h"
#include "train/train_report.h"
#include "train/trainstate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define ERRLEN 2048
/* Validation masks are drawn with this fixed seed, so every run is measured on the same
 * masked positions of the held-out rows. */
#define VALID_SEED 0x76616c6964ull
#define DRYRUN_STEPS 3
#define DRYRUN_VALID_BATCHES 3

/* ---- SIGINT / SIGTERM: a flag read at the next microbatch boundary, after validation and
 * after the final checkpoint; the handlers stay installed from the loop to the end of the run */
static volatile sig_atomic_t g_signal;
static void on_signal(int sig) {
    g_signal = sig;
}

/* ---- the test hook CRAM_TEST_KILL_AT=<phase>:<n> (docs/train.md): the process raises
 * CRAM_TEST_KILL_SIGNAL (default SIGKILL) at one chosen point, so tests can stop a run at an
 * exact place instead of by timing. Read once per run; nothing else reads it. ---- */
typedef enum kill_phase {
    KILL_NONE,
    KILL_STEP,       /* during µstep n: after its backward, before its update */
    KILL_SAVE,       /* the periodic state save at µstep n, cut after its first 64 KiB */
    KILL_SAVE_STATE, /* ... cut inside the state file (the gradient side file is complete) */
    KILL_VALID,      /* after validation batch n */
    KILL_FINAL,      /* the final checkpoint, cut after n KiB of a file (or right after it) */
} kill_phase;
static const char *const kill_names[] = {"", "step", "save", "save-state", "valid", "final"};
static struct {
    kill_phase phase;
    int64_t n;
    int sig;
} g_kill;

static void kill_arm(void) {
    memset(&g_kill, 0, sizeof g_kill);
    const char *at = getenv("CRAM_TEST_KILL_AT");
    if (!at || !*at) return;
    const char *colon = strchr(at, ':');
    char *end = NULL;
    long long n = colon ? strtoll(colon + 1, &end, 10) : -1;
    for (int k = KILL_STEP; colon && k <= KILL_FINAL; k++)
        if (strlen(kill_names[k]) == (size_t)(colon - at) &&
            strncmp(at, kill_names[k], (size_t)(colon - at)) == 0)
            g_kill.phase = (kill_phase)k;
    if (g_kill.phase == KILL_NONE || !end || *end || end == colon + 1 || n < 0) {
        g_kill.phase = KILL_NONE;
        core_log_warn("CRAM_TEST_KILL_AT=%s ignored: expected <phase>:<n>, phase step, save, "
                      "save-state, valid or final",
                      at);
        return;
    }
    g_kill.n = n;
    g_kill.sig = SIGKILL;
    const char *sg = getenv("CRAM_TEST_KILL_SIGNAL");
    if (sg && *sg) {
        if (strcmp(sg, "TERM") == 0 || strcmp(sg, "SIGTERM") == 0)
            g_kill.sig = SIGTERM;
        else if (strcmp(sg, "INT") == 0 || strcmp(sg, "SIGINT") == 0)
            g_kill.sig = SIGINT;
        else if (atoi(sg) > 0)
            g_kill.sig = atoi(sg);
    }
    core_log_warn("Test hook CRAM_TEST_KILL_AT=%s: this process raises signal %d there.", at,
                  g_kill.sig);
}

static void kill_now(void) {
    int sig = g_kill.sig;
    g_kill.phase = KILL_NONE; /* once */
    raise(sig);
}

/* A point of the run: raise the hook's signal when it names this one. */
static void kill_point(kill_phase ph, int64_t n) {
    if (g_kill.phase == ph && g_kill.n == n) kill_now();
}

static void on_xfsz(int sig) {
    (void)sig;
    raise(SIGKILL);
}

/* Before a write the hook names: true when it does. With SIGKILL, every file this process
 * writes from now on is capped at `bytes`, so the kernel stops the write midway (SIGXFSZ, turned
 * into SIGKILL here) and leaves what a crash would leave; call kill_now() after the write for
 * the case where it stayed below the cap (and for the other signals). */
static bool kill_cap_writes(kill_phase ph, int64_t n, uint64_t bytes) {
    if (g_kill.phase != ph || g_kill.n != n) return false;
    if (g_kill.sig == SIGKILL) {
        signal(SIGXFSZ, on_xfsz);
        struct rlimit rl;
        if (getrlimit(RLIMIT_FSIZE, &rl) == 0 &&
            (rl.rlim_max == RLIM_INFINITY || (rlim_t)bytes < rl.rlim_max)) {
            rl.rlim_cur = (rlim_t)bytes;
            setrlimit(RLIMIT_FSIZE, &rl);
        }
    }
    return true;
}

/* A value for a table cell, the way the reference's csv writer prints Python values. */
static char *cell(const cfg_node *n) {
    char buf[64];
    if (!n || n->type == CFG_NULL) return xstrdup("");
    switch (n->type) {
    case CFG_BOOL:
        return xstrdup(n->b ? "True" : "False");
    case CFG_INT:
        snprintf(buf, sizeof buf, "%lld", (long long)n->i);
        return xstrdup(buf);
    case CFG_FLOAT:
        cfg_format_float(n->f, buf, sizeof buf);
        return xstrdup(buf);
    case CFG_STR:
        return xstrdup(n->s);
    default:
        return cfg_canonical_json(n);
    }
}

/* The GFLOP/s that MFU is measured against: CRAM_PEAK_TFLOPS or CRAM_PEAK_GFLOPS, else on a GPU
 * the card's dense peak from cram's table (0 when the card is not in it: no MFU), else on the
 * CPU the best of three matmuls of the shape of a QKV projection (1024 x 768 -> 2304). */
static double peak_gflops(const train_device *dev, const ops *o, char *how, size_t howlen) {
    char note[400];
    double known = train_device_peak_known(dev, o, note, sizeof note);
    if (known >= 0) {
        snprintf(how, howlen, "%s", note);
        return known;
    }
    int N = 1024, C = 768, OC = 2304;
    size_t ab = (size_t)o->act_bytes; /* activations and working weights */
    float *a = o->alloc(o, (size_t)N * C * ab), *w = o->alloc(o, (size_t)OC * C * ab),
          *out = o->alloc(o, (size_t)N * OC * ab);
    o->fill(o, a, 0.01f, (size_t)N * C);
    o->fill(o, w, 0.02f, (size_t)OC * C);
    double best = 0;
    for (int r = 0; r < 4; r++) {
        double t = core_now();
        o->matmul_fwd(o, out, a, w, NULL, N, C, OC, 0);
        o->sync(o);
        t = core_now() - t;
        if (r > 0 && t > 0) best = fmax(best, 2.0 * N * C * OC / t / 1e9);
    }
    o->free(o, a), o->free(o, w), o->free(o, out);
    snprintf(how, howlen,
             "measured now: best %s matmul %dx%dx%d of 3, set CRAM_PEAK_GFLOPS or "
             "CRAM_PEAK_TFLOPS to fix it%s%.300s",
             o->precision, N, C, OC, note[0] ? "; " : "", note);
    return best;
}

/* MFU in percent of `cards` times the peak (one per GPU rank: tok_per_s counts every rank's
 * tokens), or NAN without a peak. */
static double mfu_percent(double tok_per_s, double flops_tok, double peak, int cards) {
    return peak > 0 ? 100.0 * tok_per_s * flops_tok / 1e9 / (peak * cards) : NAN;
}

/* "12.3% of 989 TFLOP/s" ("of 8 x 989 TFLOP/s" over 8 GPUs), or why there is no figure */
static void mfu_text(char *buf, size_t len, double tok_per_s, double flops_tok, double peak,
                     int cards) {
    char pk[32], times[16] = "";
    train_format_flops(pk, sizeof pk, peak);
    if (cards > 1) snprintf(times, sizeof times, "%d x ", cards);
    if (peak > 0)
        snprintf(buf, len, "%.1f%% of %s%s", mfu_percent(tok_per_s, flops_tok, peak, cards), times,
                 pk);
    else
        snprintf(buf, len, "not computed (no peak: set CRAM_PEAK_TFLOPS)");
}

static bool buffer_finite(const bert_model *m, const float *buf) {
    return isfinite(m->ops->sumsq(m->ops, buf, m->numel));
}

/* Validation MLM loss and accuracy over the held-out rows in microbatches (the last one
 * partial; max_batches > 0 stops after that many), dropout off, each row masked from VALID_SEED
 * and its index, so the measure does not depend on the microbatch size. The totals stay on the
 * backend until the end: per batch only the token ids go up and nothing comes back. */
static void validate(bert_model *m, const store_rows *rows, const mlm_opts *mo, int mbs,
                     int max_batches, double *loss_out, double *acc_out, int64_t *nrows_out) {
    *loss_out = *acc_out = NAN;
    *nrows_out = 0;
    if (rows->row_count == 0) return;
    int B = rows->row_count < mbs ? (int)rows->row_count : mbs;
    int64_t total = rows->row_count;
    if (max_batches > 0 && total > (int64_t)max_batches * B) total = (int64_t)max_batches * B;
    int S_in = rows->row_len;
    int32_t *ids = xmalloc((size_t)B * S_in * sizeof *ids);
    uint64_t *keys = xmalloc((size_t)B * sizeof *keys);
    mlm_batch b;
    mlm_batch_init(&b, B, S_in, mo);
    bool ge = m->grad_enabled, fl = m->fetch_loss;
    m->grad_enabled = false;
    m->fetch_loss = false;
    int64_t nvalid = 0;
    bool measured = false;
    for (int64_t k = 0, first = 0; first < total; k++, first += B) {
        int n = total - first < B ? (int)(total - first) : B;
        for (int i = 0; i < n; i++) {
            store_rows_get(rows, first + i, ids + (size_t)i * S_in);
            keys[i] = (uint64_t)(first + i);
        }
        mlm_collate(&b, ids, n, S_in, mo, VALID_SEED, keys);
        bert_forward(m, b.input_ids, NULL, b.labels, NULL, n, b.S, false, VALID_SEED, (uint64_t)k);
        kill_point(KILL_VALID, k + 1);
        if (m->cfg.kind == BERT_ARCH_SANITY || m->nvalid == 0) continue;
        if (!measured) bert_eval_reset(m);
        measured = true;
        bert_eval_add(m);
        nvalid += m->nvalid;
    }
    m->grad_enabled = ge;
    m->fetch_loss = fl;
    if (nvalid) {
        double loss_sum, correct;
        bert_eval_read(m, &loss_sum, &correct);
        *loss_out = loss_sum / (double)nvalid;
        *acc_out = correct / (double)nvalid;
    }
    *nrows_out = total;
    free(ids);
    free(keys);
    mlm_batch_free(&b);
}

static void log_startup(const ops *o) {
    struct utsname u;
    char host[256] = "?";
    gethostname(host, sizeof host);
    if (uname(&u) == 0)
        core_log_info("Platform: %s %s %s, cram: %s, backend: %s", u.sysname, u.release, u.machine,
                      CRAM_VERSION, o->name);
    core_log_info("CPUs: %ld on %s. Backend: %s", sysconf(_SC_NPROCESSORS_ONLN), host,
                  o->desc[0] ? o->desc : o->name);
}

static void log_random_row(const store *s, uint64_t seed) {
    const store_rows *r = &s->train;
    core_rng rng;
    core_rng_init(&rng, seed, 0, 0, 0x726f77u);
    int64_t row = (int64_t)(core_rng_u64(&rng) % (uint64_t)r->row_count);
    int32_t *ids = xmalloc((size_t)r->row_len * sizeof *ids);
    store_rows_get(r, row, ids);
    char *text = NULL, te[TOK_ERRLEN];
    size_t n = 0;
    if (tok_decode(s->tok, ids, (size_t)r->row_len, false, &text, &n, te) == TOK_OK) {
        core_log_info("Random training row %lld as text: %.*s", (long long)row, (int)n, text);
        free(text);
    }
    size_t cap = (size_t)r->row_len * 24 + 1, used = 0;
    char *toks = xmalloc(cap);
    toks[0] = '\0';
    for (int k = 0; k < r->row_len; k++) {
        uint32_t len = 0;
        const char *t = tok_id_to_token(s->tok, ids[k], &len);
        if (!t) t = "???", len = 3;
        if (len > 20) len = 20;
        used += (size_t)snprintf(toks + used, cap - used, "%s%.*s", k ? "_" : "", (int)len, t);
    }
    core_log_info("... and as tokens: %s", toks);
    free(toks);
    free(ids);
}

/* Everything the loop needs besides the model, set up from the config. */
typedef struct job {
    cfg_node *cfg;
    const char *name, *base_dir;
    bool dryrun;
    double budget_h;
    int64_t steps_cap, print_every, save_every, mbs;
    bool save_intermediate, resume, train_mode;
    double clip; /* 0: none */
    bool et_enabled;
    double et_budget_h, et_threshold;
    const char *troubleshoot;
    adamw_hparams hp;
    double base_lr;
    sched sch;
    ramp rmp;
    char run_dir[CORE_PATH_MAX];
    char state_path[CORE_PATH_MAX + 32];
    int64_t mbs_asked; /* a CPU dry run's microbatch before it was made small (0: unchanged) */
} job;

/* A dry run is a quick check: on the CPU its microbatch is at most this unless the command
 * line names impl.microbatch_size. */
#define DRYRUN_CPU_MBS 8

static int job_from_cfg(job *j, cfg_node *cfg, int64_t world, int64_t dry_mbs_cap, char *err,
                        size_t errlen) {
    memset(j, 0, sizeof *j);
    j->cfg = cfg;
    j->name = cfg_str_or(cfg, "name", "default");
    j->base_dir = cfg_str_or(cfg, "base_dir", "outputs");
    j->dryrun = cfg_bool_or(cfg, "dryrun", false);
    j->budget_h = cfg_num_or(cfg, "budget", 24);
    j->steps_cap = cfg_int_or(cfg, "train.steps", 900000);
    j->print_every = cfg_int_or(cfg, "impl.print_loss_every_nth_step", 1000);
    j->save_every = cfg_int_or(cfg, "impl.save_every_nth_step", 10000);
    j->save_intermediate = cfg_bool_or(cfg, "impl.save_intermediate_checkpoints", false);
    j->resume = cfg_bool_or(cfg, "impl.resume_run_after_preempt", false);
    j->train_mode = cfg_bool_or(cfg, "train.pretrain_in_train_mode", false);
    j->clip = cfg_num_or(cfg, "train.gradient_clipping", 0);
    j->et_enabled = cfg_bool_or(cfg, "impl.early_termination.enabled", false);
    j->et_budget_h = cfg_num_or(cfg, "impl.early_termination.budget", 3);
    j->et_threshold = cfg_num_or(cfg, "impl.early_termination.loss_threshold", 6.0);
    j->troubleshoot = cfg_str_or(cfg, "impl.troubleshoot_strategy", "none");
    j->mbs = cfg_int_or(cfg, "impl.microbatch_size", 128);
    if (j->dryrun && dry_mbs_cap > 0 && j->mbs > dry_mbs_cap) {
        j->mbs_asked = j->mbs;
        j->mbs = dry_mbs_cap;
    }
    if (j->print_every < 1 || j->save_every < 1 || j->mbs < 1 || !(j->budget_h > 0)) {
        snprintf(err, errlen,
                 "impl.print_loss_every_nth_step, impl.save_every_nth_step and "
                 "impl.microbatch_size must be >= 1 and budget > 0");
        return -1;
    }
    int64_t bs = cfg_int_or(cfg, "train.batch_size", 0);
    if (j->mbs > bs) {
        snprintf(err, errlen, "MBS is %lld, but BS is only %lld.", (long long)j->mbs,
                 (long long)bs);
        return -1;
    }
    const char *obj = cfg_str_or(cfg, "train.objective.name", "masked-lm");
    if (strcmp(obj, "masked-lm") != 0) {
        snprintf(err, errlen, "train.objective.name=%s: only masked-lm is implemented", obj);
        return -1;
    }
    /* settings that would train on nothing: refused before anything is built */
    double mp = cfg_num_or(cfg, "train.objective.mlm_probability", 0.25);
    int64_t S = cfg_int_or(cfg, "data.seq_length", 128);
    if (!cfg_bool_or(cfg, "train.objective.disable_mlm", false) &&
        (!(mp > 0 && mp <= 1) || mlm_round_half_even(mp * (double)S) < 1)) {
        snprintf(err, errlen,
                 "train.objective.mlm_probability=%g masks no token of a %lld-token row "
                 "(round(p x data.seq_length) must be at least 1: p above %.3g), so every MLM "
                 "loss would be NaN; use a value in (0, 1]",
                 mp, (long long)S, S > 0 ? 0.5 / (double)S : 1.0);
        return -1;
    }
    double vs = cfg_num_or(cfg, "data.validation_seqs", 0);
    if (vs < 0) {
        snprintf(err, errlen,
                 "data.validation_seqs=%g: the number of held-out rows must be >= 0 (0: no "
                 "validation)",
                 vs);
        return -1;
    }
    if (adamw_hparams_from_cfg(cfg, "train.optim", &j->hp, &j->base_lr, err, errlen)) return -1;
    if (sched_init_from_cfg(&j->sch, cfg, "train", j->base_lr, 0, err, errlen)) return -1;
    if (ramp_init_from_cfg(&j->rmp, cfg, "train", j->mbs * world, err, errlen)) return -1;
    if (j->rmp.batch_size % world || j->rmp.quantum % world) {
        snprintf(err, errlen,
                 "train.batch_size=%lld and train.batch_size_quantum=%lld must be multiples of the "
                 "%d ranks: every rank takes the same share of each update",
                 (long long)j->rmp.batch_size, (long long)j->rmp.quantum, (int)world);
        return -1;
    }
    return 0;
}

/* The pretrain summary row: the reference's columns, cram's validation numbers, then
 * every Data_/Arch_/Train_ key. */
static void write_table(const job *j, const store *s, const train_result *res, double total_s,
                        const double *losses, int nlosses, double mean_step_time,
                        int64_t last_epoch, const train_device *dev, const train_device_mem *mem) {
    enum { MAXCOLS = 512 };
    char *keys[MAXCOLS], *vals[MAXCOLS];
    int n = 0;
    char buf[CORE_PATH_MAX + 64];
#define COL(k, ...)                                                                                \
    do {                                                                                           \
        snprintf(buf, sizeof buf, __VA_ARGS__);                                                    \
        keys[n] = xstrdup(k);                                                                      \
        vals[n++] = xstrdup(buf);                                                                  \
    } while (0)
    const char *dir = strrchr(s->dir, '/');
    dir = dir ? dir + 1 : s->dir;
    char dataset[CORE_PATH_MAX];
    snprintf(dataset, sizeof dataset, "%s", dir);
    char *us = strrchr(dataset, '_');
    const char *hash = us ? us + 1 : "";
    char dsname[CORE_PATH_MAX];
    snprintf(dsname, sizeof dsname, "%.*s", us ? (int)(us - dataset) : (int)strlen(dataset),
             dataset);
    char arch[256] = "";
    cfg_node *an = cfg_get(j->cfg, "arch.architectures");
    if (an && an->type == CFG_LIST)
        for (int i = 0; i < an->n; i++)
            if (an->items[i]->type == CFG_STR)
                snprintf(arch + strlen(arch), sizeof arch - strlen(arch), "%s%s", i ? " " : "",
                         an->items[i]->s);
    char td[64];
    core_format_timedelta(td, sizeof td, total_s);
    COL("name", "%s", j->name);
    keys[n] = xstrdup("budget"), vals[n++] = cell(cfg_get(j->cfg, "budget"));
    COL("dataset", "%s", dsname);
    COL("backend", "%s", cfg_str_or(j->cfg, "impl.name", "?"));
    COL("arch", "%s", arch);
    if (nlosses > 0)
        COL("loss", "%.17g", losses[nlosses - 1]);
    else
        COL("loss", "%s", "");
    COL("final_step", "%lld", (long long)res->step);
    COL("final_epoch", "%lld", (long long)last_epoch);
    if (mean_step_time > 0)
        COL("step_time", "%.17g", mean_step_time);
    else
        COL("step_time", "%s", "");
    static const char *lk[] = {"loss100k", "loss200k", "loss300k"};
    for (int k = 0; k < 3; k++) {
        int64_t idx = (int64_t)(k + 1) * 100000 / j->print_every; /* the reference's index */
        if (idx < nlosses)
            COL(lk[k], "%.17g", losses[idx]);
        else
            COL(lk[k], "%s", "");
    }
    COL("total_time", "%s", td);
    keys[n] = xstrdup("batch_size"), vals[n++] = cell(cfg_get(j->cfg, "train.batch_size"));
    keys[n] = xstrdup("lr"), vals[n++] = cell(cfg_get(j->cfg, "train.optim.lr"));
    keys[n] = xstrdup("warmup"), vals[n++] = cell(cfg_get(j->cfg, "train.warmup_steps"));
    keys[n] = xstrdup("steps"), vals[n++] = cell(cfg_get(j->cfg, "train.steps"));
    COL("seed", "%llu", (unsigned long long)res->seed);
    COL("dataset_hash", "%s", hash);
    COL("base_dir", "%s", j->base_dir);
    keys[n] = xstrdup("impl_path"), vals[n++] = cell(cfg_get(j->cfg, "impl.path"));
    COL("local_folder", "%s", j->run_dir);
    COL("val_loss", "%.6f", res->val_loss);
    COL("val_acc", "%.6f", res->val_acc);
    COL("tok_per_s", "%.1f", res->tok_per_s);
    COL("GPU", "%s", dev->gpu && dev->have_info ? dev->info.name : "");
    COL("VRAM", "%.6f", mem->valid ? (double)mem->peak / (double)(1 << 30) : 0.0);
    static const char *groups[][2] = {{"data", "Data_"}, {"arch", "Arch_"}, {"train", "Train_"}};
    for (int g = 0; g < 3; g++) {
        cfg_node *grp = cfg_get(j->cfg, groups[g][0]);
        if (!grp || grp->type != CFG_MAP) continue;
        for (int i = 0; i < grp->n && n < MAXCOLS; i++) {
            snprintf(buf, sizeof buf, "%s%s", groups[g][1], grp->keys[i]);
            keys[n] = xstrdup(buf);
            vals[n++] = cell(grp->items[i]);
        }
    }
#undef COL
    char err[ERRLEN];
    if (core_table_append("tables", "pretrain_reports", keys, vals, n, err, sizeof err))
        core_log_warn("summary table not written: %s", err);
    for (int i = 0; i < n; i++)
        free(keys[i]), free(vals[i]);
}

static void write_overrides(const char *run_dir, int argc, char *const *argv) {
    char path[CORE_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/overrides.yaml", run_dir);
    size_t cap = 64, used = 0;
    for (int i = 0; i < argc; i++)
        cap += strlen(argv[i]) * 2 + 8;
    char *buf = xmalloc(cap);
    used += (size_t)snprintf(buf, cap, "%s", argc ? "" : "[]\n");
    for (int i = 0; i < argc; i++) {
        used += (size_t)snprintf(buf + used, cap - used, "- '");
        for (const char *c = argv[i]; *c; c++) {
            if (*c == '\'') buf[used++] = '\'';
            buf[used++] = *c;
        }
        used += (size_t)snprintf(buf + used, cap - used, "'\n");
    }
    char err[ERRLEN];
    if (core_atomic_write(path, buf, used, err, sizeof err)) core_log_warn("%s", err);
    free(buf);
}

/* metrics_<name>.yaml: the reference's keys (its system keys from train_format_system_yaml), then
 * cram's tok_per_s, mfu_percent and validation numbers. */
static void write_metrics_yaml(const job *j, const bert_model *m, const train_result *res,
                               const train_device *dev, const train_device_mem *mem, int world,
                               double mfu) {
    char path[CORE_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics_%s.yaml", j->run_dir, j->name);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "num_params: %zu\n", bert_num_params(m));
    n += train_format_system_yaml(buf + n, sizeof buf - (size_t)n, dev, mem, world,
                                  (double)ru.ru_maxrss / (1024.0 * 1024.0));
    char mfu_s[32] = ".nan";
    if (isfinite(mfu)) snprintf(mfu_s, sizeof mfu_s, "%.3f", mfu);
    n += snprintf(buf + n, sizeof buf - (size_t)n,
                  "tok_per_s: %.1f\nmfu_percent: %s\nval_loss: %.6f\nval_acc: %.6f\nsteps: %lld\n",
                  res->tok_per_s, mfu_s, res->val_loss, res->val_acc, (long long)res->step);
    char err[ERRLEN];
    if (core_atomic_write(path, buf, (size_t)n, err, sizeof err)) core_log_warn("%s", err);
}

/* Everything one pretraining run holds, from set-up to the final checkpoint. */
typedef struct run {
    job J;
    dist *d;
    dist single; /* when the caller gives no dist */
    const ops *o;
    bool own_ops;         /* opened here from impl.*: closed at the end */
    train_device dev;     /* the GPU the backend runs on, if any */
    train_device_mem mem; /* its memory at the end */
    const train_hooks *hooks;
    int rank;
    uint64_t seed;
    double t_launch;
    char err[ERRLEN];
    /* built */
    store s;
    bool have_store;
    mlm_opts mo;
    loader ld;
    mlm_batch mb;
    bool have_batch;
    bert_model m;
    bool have_model;
    int S_in;
    double peak, flops_tok;
    train_progress P;
    /* the loop's reporting */
    FILE *metrics;
    double *hist_loss, step_time_sum;
    int64_t *hist_step; /* the µstep of each hist_loss entry (the loss curve's x) */
    tboard *tb;         /* TensorBoard events beside metrics.jsonl (rank 0) */
    int nhist, caphist;
    /* the run's life */
    int lock_fd;          /* <base_dir>/<name>/.lock, flock'ed (rank 0), or -1 */
    uint64_t config_hash; /* of the arch, data and train groups, stored in every state */
    int64_t state_step;   /* the µstep the state file holds from this run (-1: none) */
    bool signal_unsaved;  /* a signal came, but its state could not be written */
    bool signals_on;      /* our SIGINT/SIGTERM handlers are installed ... */
    struct sigaction old_int, old_term; /* ... in place of these */
} run;

/* ---- the replay dump: a benchmark hook, not a feature of the product.
 * CRAM_DUMP_BATCHES=<dir> (CRAM_DUMP_STEPS=<n>, default 300) makes a single-process run write
 * <dir>/init.safetensors (the weights before the first µstep, under the checkpoint's names) and
 * <dir>/batches.bin: the first n microbatches as the model saw them, with the lr and gradient
 * scale each used and cram's loss, so that bench/pretrain_peer.py can train a PyTorch model on
 * exactly the same steps and compare the losses. batches.bin is written under a temporary name
 * and renamed once complete. Little endian; its layout (version 1):
 *   header: "CRAMRPL\0", u32 version, u32 record count, i32 L, H, NH, I, V, max_pos, pad_id,
 *           glu, final_norm, train_mode, coupled (Adam instead of AdamW), u32 nparams;
 *           f64 norm eps, sparse_pred, clip (0: none), beta1, beta2, adam eps, weight_decay;
 *           then per parameter: u32 name length, the name, u32 decay (1: weight decay applies)
 *   record: i64 µstep, i32 rows, i32 seq, i32 input_ids[rows*seq], i32 labels[rows*seq],
 *           f64 lr (passed to the update that follows, or the scheduler's current value),
 *           u32 update (1: an optimizer update follows this µstep), f32 grad scale of the
 *           backward (the µstep's share of the update's sequences), f64 loss. rows may differ
 *           between records: the last µstep of an update can be partial.
 * Unset, it costs one getenv per run. */
#define REPLAY_MAGIC "CRAMRPL\0"
#define REPLAY_VERSION 1u

typedef struct replay_dump {
    FILE *f;                       /* <dir>/batches.bin.tmp while open; NULL: off */
    char path[CORE_PATH_MAX + 32]; /* <dir>/batches.bin */
    char tmp[CORE_PATH_MAX + 48];  /* <dir>/batches.bin.tmp */
    int64_t want, done;            /* records asked for and written */
} replay_dump;

/* The dump's folder, or NULL when the hook is off. */
static const char *replay_dir(void) {
    const char *d = getenv("CRAM_DUMP_BATCHES");
    return d && *d ? d : NULL;
}

static bool replay_put(replay_dump *rd, const void *p, size_t n) {
    return fwrite(p, 1, n, rd->f) == n;
}

static void replay_abort(replay_dump *rd, const char *why) {
    core_log_warn("CRAM_DUMP_BATCHES: %s: %s; no replay dump", rd->tmp, why);
    fclose(rd->f);
    remove(rd->tmp);
    rd->f = NULL;
}

/* Write init.safetensors and the header of batches.bin; any failure turns the hook off with a
 * warning (the run itself goes on). */
static void replay_open(replay_dump *rd, const bert_model *m, const job *J) {
    const char *dir = replay_dir();
    memset(rd, 0, sizeof *rd);
    if (!dir) return;
    const char *n = getenv("CRAM_DUMP_STEPS");
    char *end = NULL;
    rd->want = n && *n ? strtoll(n, &end, 10) : 300;
    if ((n && *n && *end) || rd->want < 1) {
        core_log_warn("CRAM_DUMP_STEPS=%s: expected a positive count; no replay dump", n);
        return;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        core_log_warn("CRAM_DUMP_BATCHES: cannot make %s: %s; no replay dump", dir,
                      strerror(errno));
        return;
    }
    char path[CORE_PATH_MAX + 32], err[512];
    snprintf(path, sizeof path, "%s/init.safetensors", dir);
    if (ckpt_write_model(path, m, err, sizeof err)) {
        core_log_warn("CRAM_DUMP_BATCHES: %s; no replay dump", err);
        return;
    }
    snprintf(rd->path, sizeof rd->path, "%s/batches.bin", dir);
    snprintf(rd->tmp, sizeof rd->tmp, "%s/batches.bin.tmp", dir);
    rd->f = fopen(rd->tmp, "wb");
    if (!rd->f) {
        core_log_warn("CRAM_DUMP_BATCHES: cannot write %s: %s; no replay dump", rd->tmp,
                      strerror(errno));
        return;
    }
    const bert_config *c = &m->cfg;
    uint32_t u[3] = {REPLAY_VERSION, 0, (uint32_t)m->nparams};
    int32_t i[11] = {c->L,      c->H,   c->NH,         c->I,          c->V,         c->max_pos,
                     c->pad_id, c->glu, c->final_norm, J->train_mode, J->hp.coupled};
    double f[7] = {c->eps,      c->sparse_pred, J->clip,           J->hp.beta1,
                   J->hp.beta2, J->hp.eps,      J->hp.weight_decay};
    bool ok = replay_put(rd, REPLAY_MAGIC, 8) && replay_put(rd, u, 2 * sizeof *u) &&
              replay_put(rd, i, sizeof i) && replay_put(rd, &u[2], sizeof u[2]) &&
              replay_put(rd, f, sizeof f);
    for (int k = 0; ok && k < m->nparams; k++) {
        uint32_t len = (uint32_t)strlen(m->params[k].name), decay = m->params[k].decay;
        ok = replay_put(rd, &len, sizeof len) && replay_put(rd, m->params[k].name, len) &&
             replay_put(rd, &decay, sizeof decay);
    }
    if (!ok) {
        replay_abort(rd, strerror(errno));
        return;
    }
    core_log_info("CRAM_DUMP_BATCHES: the initial weights are in %s; the first %lld µsteps go to "
                  "%s",
                  path, (long long)rd->want, rd->path);
}

/* Patch the record count, flush to disk and rename into place. */
static void replay_close(replay_dump *rd) {
    if (!rd->f) return;
    uint32_t count = (uint32_t)rd->done;
    bool ok = fseek(rd->f, 12, SEEK_SET) == 0 && replay_put(rd, &count, sizeof count) &&
              fflush(rd->f) == 0 && fsync(fileno(rd->f)) == 0;
    if (!ok) {
        replay_abort(rd, strerror(errno));
        return;
    }
    fclose(rd->f);
    rd->f = NULL;
    if (rename(rd->tmp, rd->path) != 0) {
        core_log_warn("CRAM_DUMP_BATCHES: cannot rename %s: %s", rd->tmp, strerror(errno));
        return;
    }
    core_log_info("CRAM_DUMP_BATCHES: %lld µsteps in %s", (long long)rd->done, rd->path);
}

static void replay_record(replay_dump *rd, int64_t step, const mlm_batch *mb, int rows, double lr,
                          bool update, float grad_scale, double loss) {
    if (!rd->f) return;
    int32_t shape[2] = {rows, mb->S};
    size_t n = (size_t)rows * (size_t)mb->S;
    uint32_t up = update;
    bool ok = replay_put(rd, &step, sizeof step) && replay_put(rd, shape, sizeof shape) &&
              replay_put(rd, mb->input_ids, n * sizeof *mb->input_ids) &&
              replay_put(rd, mb->labels, n * sizeof *mb->labels) &&
              replay_put(rd, &lr, sizeof lr) && replay_put(rd, &up, sizeof up) &&
              replay_put(rd, &grad_scale, sizeof grad_scale) && replay_put(rd, &loss, sizeof loss);
    if (!ok) {
        replay_abort(rd, strerror(errno));
        return;
    }
    if (++rd->done >= rd->want) replay_close(rd);
}

/* ---- one run per name at a time ---- */

/* Take the advisory lock <base_dir>/<name>/.lock for the run's life (it goes with the process,
 * so a killed run never blocks its resume). Returns 0, or 2 with a message when another live
 * process holds it; a lock file that cannot be made only costs the guard (a warning). */
static int take_lock(run *r) {
    const job *J = &r->J;
    char dir[CORE_PATH_MAX], path[CORE_PATH_MAX + 16], e[512];
    r->lock_fd = -1;
    snprintf(dir, sizeof dir, "%s/%s", J->base_dir, J->name);
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = -1;
    if (core_mkdir_p(dir, e, sizeof e) == 0) fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        core_log_warn("cannot create the lock file %s (%s): another run named %s could use the "
                      "same folder at the same time",
                      path, strerror(errno), J->name);
        return 0;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int en = errno;
        char holder[32] = "";
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        if (en != EWOULDBLOCK) {
            core_log_warn("cannot lock %s (%s): another run named %s could use the same folder "
                          "at the same time",
                          path, strerror(en), J->name);
            return 0;
        }
        snprintf(r->err, sizeof r->err,
                 "another run named %.256s is still running in %.600s (process %s holds "
                 "%.600s); wait for it "
                 "to end or stop it (then resume with impl.resume_run_after_preempt=True), or "
                 "choose another name= or base_dir=",
                 J->name, dir, holder[0] ? holder : "?", path);
        return 2;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        core_log_warn("cannot write the pid into %s: %s", path, strerror(errno));
    r->lock_fd = fd;
    return 0;
}

/* ---- which configuration wrote a state ---- */

static const char *const cfg_groups[] = {"arch", "data", "train"};

/* A fingerprint of the groups that decide what is trained (impl.*, name, base_dir, budget and
 * the seed are left out: a resume may change them). Never 0. */
static uint64_t config_hash(const cfg_node *cfg) {
    core_hash h;
    core_hash_init(&h, 0x636f6e666967ull);
    for (size_t g = 0; g < sizeof cfg_groups / sizeof *cfg_groups; g++) {
        const cfg_node *n = cfg_get(cfg, cfg_groups[g]);
        char *json = n ? cfg_canonical_json(n) : xstrdup("null");
        core_hash_update_str(&h, cfg_groups[g]);
        core_hash_update_str(&h, json);
        free(json);
    }
    return core_hash_final(&h) | 1;
}

/* Append "path (was A, now B)" to out for each leaf where a and b differ, at most 8. */
static void cfg_diff(const cfg_node *a, const cfg_node *b, const char *path, char *out,
                     size_t outlen, int *count) {
    if (*count >= 8) return;
    if (a && b && a->type == CFG_MAP && b->type == CFG_MAP) {
        char sub[512];
        for (int i = 0; i < a->n; i++) {
            snprintf(sub, sizeof sub, "%s.%s", path, a->keys[i]);
            cfg_diff(a->items[i], cfg_map_get(b, a->keys[i]), sub, out, outlen, count);
        }
        for (int i = 0; i < b->n; i++)
            if (!cfg_map_get(a, b->keys[i])) {
                snprintf(sub, sizeof sub, "%s.%s", path, b->keys[i]);
                cfg_diff(NULL, b->items[i], sub, out, outlen, count);
            }
        return;
    }
    char *ja = a ? cfg_canonical_json(a) : xstrdup("(none)");
    char *jb = b ? cfg_canonical_json(b) : xstrdup("(none)");
    if (strcmp(ja, jb) != 0) {
        size_t used = strlen(out);
        if (*count == 7)
            snprintf(out + used, outlen - used, "%s...", used ? ", " : "");
        else
            snprintf(out + used, outlen - used, "%s%s (was %.40s, now %.40s)", used ? ", " : "",
                     path, ja, jb);
        (*count)++;
    }
    free(ja), free(jb);
}

/* The state about to be adopted was written under config fingerprint `want`, not ours: find a
 * run folder of this name whose config.yaml has that fingerprint and log the keys that differ. */
static void warn_config_differs(const run *r, const cfg_node *cfg, uint64_t want) {
    const job *J = &r->J;
    char top[CORE_PATH_MAX + 16], diff[2048] = "";
    snprintf(top, sizeof top, "%s/%s/pretrain", J->base_dir, J->name);
    int count = 0;
    bool found = false;
    DIR *d1 = opendir(top);
    struct dirent *e1, *e2;
    while (d1 && !found && (e1 = readdir(d1)) != NULL) {
        if (e1->d_name[0] == '.') continue;
        char day[2 * CORE_PATH_MAX];
        snprintf(day, sizeof day, "%s/%s", top, e1->d_name);
        DIR *d2 = opendir(day);
        while (d2 && !found && (e2 = readdir(d2)) != NULL) {
            if (e2->d_name[0] == '.') continue;
            char yaml[3 * CORE_PATH_MAX];
            snprintf(yaml, sizeof yaml, "%s/%s/config.yaml", day, e2->d_name);
            if (access(yaml, R_OK) != 0) continue;
            cfg_error ce = {0};
            cfg_node *old = cfg_load_yaml_file(yaml, &ce);
            if (old && config_hash(old) == want) {
                found = true;
                for (size_t g = 0; g < sizeof cfg_groups / sizeof *cfg_groups; g++)
                    cfg_diff(cfg_get(old, cfg_groups[g]), cfg_get(cfg, cfg_groups[g]),
                             cfg_groups[g], diff, sizeof diff, &count);
            }
            if (old) cfg_free(old);
        }
        if (d2) closedir(d2);
    }
    if (d1) closedir(d1);
    if (found && count > 0)
        core_log_warn("The intermediate state was written by a run with another configuration: "
                      "%s. Continuing it with this run's configuration.",
                      diff);
    else
        core_log_warn("The intermediate state was written by a run with another arch, data or "
                      "train configuration (no run folder under %s has that configuration, so the "
                      "keys cannot be named). Continuing it with this run's configuration.",
                      top);
}

/* ---- SIGINT / SIGTERM ---- */

static void signals_install(run *r) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second signal ends the process at once */
    sigemptyset(&sa.sa_mask);
    g_signal = 0;
    sigaction(SIGINT, &sa, &r->old_int);
    sigaction(SIGTERM, &sa, &r->old_term);
    r->signals_on = true;
}

static void signals_restore(run *r) {
    if (!r->signals_on) return;
    sigaction(SIGINT, &r->old_int, NULL);
    sigaction(SIGTERM, &r->old_term, NULL);
    r->signals_on = false;
}

/* A signal came (`when` says where): keep the state of this µstep boundary so a resumed run
 * continues exactly here, unless the state file holds this step already. Rank 0. Returns 0, or
 * 1 when the state could not be written. */
static int save_for_signal(run *r, const train_progress *P, const char *when) {
    int sig = (int)g_signal;
    if (r->state_step == P->step) {
        core_log_info("Received signal %d%s: the training state of step %lld is already in %s. "
                      "Resume with impl.resume_run_after_preempt=True.",
                      sig, when, (long long)P->step, r->J.state_path);
        return 0;
    }
    if (ckpt_save_state(r->J.state_path, &r->m, P, r->err, sizeof r->err)) {
        core_log_error("Received signal %d%s, but the training state of step %lld was NOT saved: "
                       "%s",
                       sig, when, (long long)P->step, r->err);
        return 1;
    }
    r->state_step = P->step;
    core_log_info("Received signal %d%s: saved the training state at step %lld to %s. Resume with "
                  "impl.resume_run_after_preempt=True.",
                  sig, when, (long long)P->step, r->J.state_path);
    return 0;
}

/* The job from the config, the backend, the run folder with its config and log, the seed.
 * Returns 0, or the exit code. */
static int run_setup(run *r, cfg_node *cfg, const train_opts *opts, train_result *res) {
    r->t_launch = core_now();
    if (opts && opts->dist) {
        r->d = opts->dist;
    } else {
        dist_single(&r->single, false);
        r->d = &r->single;
    }
    r->hooks = opts ? opts->hooks : NULL;
    r->rank = r->d->rank;
    r->lock_fd = -1;
    r->state_step = -1;
    core_log_init(r->rank);
    kill_arm();
    job *J = &r->J;
    /* a dry run on the CPU with the config's microbatch (128 by default) would take minutes and
     * gigabytes for a full-size model: it gets a small one unless the command line asks */
    bool mbs_given = false;
    for (int k = 0; opts && k < opts->argc; k++) {
        const char *a = opts->argv[k];
        a += strspn(a, "+");
        mbs_given |= strncmp(a, "impl.microbatch_size=", 21) == 0;
    }
    bool on_cpu = true;
    if (opts && opts->ops) {
        on_cpu = !opts->ops->device_memory;
    } else {
        backend_choice bc;
        char tmp[256];
        on_cpu = backend_choose(&bc, cfg, tmp, sizeof tmp) != 0 || bc.device == BACKEND_CPU;
    }
    int64_t cap = on_cpu && !mbs_given ? DRYRUN_CPU_MBS : 0;
    if (job_from_cfg(J, cfg, r->d->world, cap, r->err, sizeof r->err)) {
        core_log_error("%s", r->err);
        return 2;
    }
    if (replay_dir() && r->d->world > 1) {
        core_log_error("CRAM_DUMP_BATCHES (the replay dump of bench/pretrain_peer.py) records one "
                       "process's microbatches: run it without mpirun, or unset it");
        return 2;
    }
    /* one run of this name at a time: rank 0 holds the lock, every rank learns the verdict */
    int locked = r->rank == 0 ? take_lock(r) : 0;
    dist_bcast_bytes(r->d, &locked, sizeof locked);
    if (locked) {
        core_log_error("%s", r->rank == 0 ? r->err : "rank 0 could not lock the run's folder");
        return locked;
    }
    r->config_hash = config_hash(cfg);
    if (opts && opts->ops) {
        r->o = opts->ops;
    } else {
        r->o = backend_from_cfg(cfg, r->err, sizeof r->err);
        if (!r->o) {
            core_log_error("%s", r->err);
            return 2;
        }
        r->own_ops = true;
    }

    /* the run folder, its config (exactly `cram config pretrain <args>`) and the log;
     * rank 0 makes the folder, the others learn its name */
    int ok = r->rank != 0 || core_run_dir(J->run_dir, sizeof J->run_dir, J->base_dir, J->name,
                                          "pretrain", time(NULL), r->err, sizeof r->err) == 0;
    dist_allreduce_int(r->d, &ok, 1, DIST_MIN);
    if (!ok) {
        core_log_error("%s", r->rank == 0 ? r->err : "rank 0 could not create the run folder");
        return 1;
    }
    dist_bcast_bytes(r->d, J->run_dir, sizeof J->run_dir);
    snprintf(res->run_dir, sizeof res->run_dir, "%s", J->run_dir);
    char path[CORE_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s_pretrain.log", J->run_dir, J->name);
    if (r->rank == 0 && core_log_open_file(path) != 0)
        core_log_warn("cannot open the log file %s: %s", path, strerror(errno));
    if (r->rank == 0) {
        char *yaml = cfg_to_yaml(cfg);
        snprintf(path, sizeof path, "%s/config.yaml", J->run_dir);
        if (core_atomic_write(path, yaml, strlen(yaml), r->err, sizeof r->err))
            core_log_warn("%s", r->err);
        free(yaml);
        write_overrides(J->run_dir, opts ? opts->argc : 0, opts ? opts->argv : NULL);
    }
    snprintf(J->state_path, sizeof J->state_path, "%s/%s/intermediate_state.bin", J->base_dir,
             J->name);

    /* seed: null draws one and records it in the config, so it is logged and tabulated */
    cfg_node *sn = cfg_get(cfg, "seed");
    if (!sn || sn->type == CFG_NULL) {
        r->seed = core_draw_seed();
        dist_bcast_bytes(r->d, &r->seed, sizeof r->seed); /* one seed for all ranks */
        cfg_node *v = cfg_new(CFG_INT);
        v->i = (int64_t)r->seed;
        cfg_map_set(cfg, "seed", v);
    } else {
        r->seed = (uint64_t)cfg_int_or(cfg, "seed", 0);
    }
    log_startup(r->o);
    train_device_init(&r->dev, r->o, r->d->device);
    train_device_log(&r->dev);
    core_log_info("Data-parallel processes: %d", r->d->world);
    core_log_info("Seeding with random seed %llu on rank 0.", (unsigned long long)r->seed);
    core_log_info("--------------------------------------------------------------");
    core_log_info("--------------Launching pretraining run! ---------------------");
    {
        char *yaml = cfg_to_yaml(cfg);
        core_log_info("Resolved configuration:\n%s", yaml);
        free(yaml);
    }
    core_log_info("Run folder: %s", J->run_dir);
    if (J->mbs_asked)
        core_log_info("Dry run on the CPU: microbatch %lld instead of impl.microbatch_size=%lld, "
                      "so that the check takes about a minute (name impl.microbatch_size on the "
                      "command line to keep it).",
                      (long long)J->mbs, (long long)J->mbs_asked);
    /* under the lock, the leftovers of killed writes of this name are nobody's */
    if (r->rank == 0) ckpt_remove_stale(J->base_dir, J->name);
    return 0;
}

/* The token store, the batches, the model and the progress (from the intermediate state when
 * resuming). Returns 0, or the exit code. */
static int run_build(run *r, cfg_node *cfg, train_result *res) {
    job *J = &r->J;
    char *err = r->err;
    size_t errlen = sizeof r->err;
    if (data_prepare(&r->s, cfg, STORE_VERIFY_AUTO, err, errlen)) {
        core_log_error("%s", err);
        return 1;
    }
    r->have_store = true;
    bert_config bc;
    if (bert_config_from_cfg(&bc, cfg, tok_vocab_size(r->s.tok), err, errlen) ||
        mlm_opts_from_config(&r->mo, cfg, r->s.tok, err, errlen)) {
        core_log_error("%s", err);
        return 2;
    }
    r->S_in = r->s.train.row_len;
    if (loader_init(&r->ld, &r->s.train, r->rank, r->d->world, J->mbs,
                    cfg_bool_or(cfg, "impl.shuffle_in_dataloader", false), r->seed, err, errlen)) {
        core_log_error("%s", err);
        return 2;
    }
    r->ld.reverse = cfg_bool_or(cfg, "train.reverse_dataset_order", false);
    mlm_batch_init(&r->mb, (int)J->mbs, r->S_in, &r->mo);
    r->have_batch = true;
    if (bc.kind != BERT_ARCH_SANITY && r->mb.S > bc.max_pos) {
        core_log_error("data.seq_length %d exceeds arch.embedding.max_seq_length %d", r->mb.S,
                       bc.max_pos);
        return 2;
    }

    /* on a device: everything the run holds must fit before any of it is allocated */
    char mem[2048];
    int mc = train_device_mem_check(&r->dev, r->o, &bc, (int)J->mbs, r->mb.S,
                                    cfg_int_or(cfg, "train.batch_size", 0), r->d->world,
                                    "impl.microbatch_size", "train.batch_size", mem, sizeof mem);
    int fits = mc == 0;
    dist_allreduce_int(r->d, &fits, 1, DIST_MIN);
    if (!fits) {
        core_log_error("%s",
                       mc ? mem : "another rank's device lacks the memory (its log says why)");
        return 2;
    }
    if (mem[0]) core_log_info("%s", mem);

    bert_model *m = &r->m;
    bert_init(m, &bc, r->o);
    r->have_model = true;
    m->rank = (uint32_t)r->rank;
    bert_init_weights(m, r->seed);
    cfg_node *dk = cfg_get(cfg, "train.limited_decay_keys");
    if (dk && dk->type == CFG_LIST) {
        char **keys = xcalloc((size_t)dk->n + 1, sizeof *keys);
        int nk = 0;
        for (int i = 0; i < dk->n; i++)
            if (dk->items[i]->type == CFG_STR) keys[nk++] = dk->items[i]->s;
        bert_set_decay_keys(m, keys, nk);
        free(keys);
    }
    bert_acts_ensure(m, (int)J->mbs, r->mb.S);
    m->fetch_loss = false; /* the loop reads each loss after the backward (bert_mlm_loss) */
    if (r->rank == 0) {
        bert_log_summary(m);
        log_random_row(&r->s, r->seed);
    }
    char how[512];
    r->peak = peak_gflops(&r->dev, r->o, how, sizeof how);
    r->flops_tok = train_flops_per_token(&bc, r->mb.S);
    res->peak_gflops = r->peak;
    char pk[32] = "none";
    if (r->peak >= 1000)
        train_format_flops(pk, sizeof pk, r->peak);
    else if (r->peak > 0)
        snprintf(pk, sizeof pk, "%.1f GFLOP/s", r->peak);
    core_log_info("MFU reference: %s (%s); %.1f MFLOP per trained token.", pk, how,
                  r->flops_tok / 1e6);

    /* progress, possibly from the intermediate state */
    train_progress *P = &r->P;
    memset(P, 0, sizeof *P);
    P->seed = r->seed;
    P->config_hash = r->config_hash;
    P->mbs_eff = J->mbs * r->d->world;
    P->world = r->d->world;
    P->cur_bs = ramp_initial_batch(&J->rmp);
    P->lr = sched_lr(&J->sch, 0, 0.0);
    P->last_loss = NAN;
    if (J->resume && access(J->state_path, F_OK) == 0) {
        core_log_info("Loading intermediate checkpoint from previous run: %s", J->state_path);
        train_progress L = *P;
        int st = ckpt_load_state(J->state_path, m, &L, err, errlen);
        if (st == TS_EMISMATCH || (st == 0 && L.world != P->world)) {
            if (st == 0)
                snprintf(err, errlen,
                         "%.1024s was written by %lld ranks; resume with the same world size "
                         "(%d now): each rank reads its own share of the data",
                         J->state_path, (long long)L.world, r->d->world);
            core_log_error("cannot resume: %s", err);
            return 2;
        } else if (st != 0) {
            char bad[CORE_PATH_MAX + 64];
            snprintf(bad, sizeof bad, "%s.unreadable", J->state_path);
            rename(J->state_path, bad);
            core_log_warn("Checkpoint file unreadable or corrupted (%s); moved to %s, starting "
                          "fresh.",
                          err, bad);
            bert_init_weights(m, r->seed);
            bert_zero_grad(m);
        } else {
            if (L.seed != r->seed)
                core_log_info("Continuing with the interrupted run's seed %llu (not %llu).",
                              (unsigned long long)L.seed, (unsigned long long)r->seed);
            ts_header h;
            char herr[512];
            if (r->rank == 0 &&
                ts_read(J->state_path, &h, NULL, NULL, NULL, 0, 0, herr, sizeof herr) == TS_OK) {
                if (h.config_hash == 0)
                    core_log_info("The intermediate state (format version %u) does not record "
                                  "its configuration.",
                                  h.version);
                else if (h.config_hash != r->config_hash)
                    warn_config_differs(r, cfg, h.config_hash);
            }
            int64_t mbs_now = P->mbs_eff;
            *P = L;
            if (L.mbs_eff != mbs_now)
                core_log_info("The state was written with microbatch %lld per rank; going on with "
                              "%lld. The data stream, its masks and the batch schedule go on "
                              "unchanged.",
                              (long long)(L.mbs_eff / (L.world ? L.world : 1)),
                              (long long)(mbs_now / (L.world ? L.world : 1)));
            P->mbs_eff = mbs_now;
            r->state_step = P->step; /* the state file holds this step */
            loader_seek(&r->ld, P->pos);
            core_log_info("Successfully loaded state with metadata {step: %lld, elapsed: %.3f, "
                          "updates: %lld, epoch: %lld, row: %lld}",
                          (long long)P->step, P->elapsed_s, (long long)P->opt_t,
                          (long long)P->pos.epoch, (long long)P->pos.index);
        }
    }
    res->seed = P->seed;
    return 0;
}

/* The microbatch loop until the budget, the step cap, early termination, a non-finite stop, a
 * signal or the end of a dry run. */
static train_stop run_loop(run *r, train_result *res) {
    job J = r->J; /* read-only here */
    dist *d = r->d;
    int rank = r->rank;
    char *err = r->err;
    const train_hooks *hooks = r->hooks;
    train_progress P = r->P;
    int world = d->world;
    int32_t *rows = xmalloc((size_t)J.mbs * r->S_in * sizeof *rows);
    uint64_t *keys = xmalloc((size_t)J.mbs * sizeof *keys);
    char path[CORE_PATH_MAX + 64];
    if (rank == 0) {
        snprintf(path, sizeof path, "%s/metrics.jsonl", J.run_dir);
        r->metrics = fopen(path, "a");
        if (!r->metrics) core_log_warn("cannot open %s: %s", path, strerror(errno));
        if (!r->tb && !(r->tb = tboard_open(J.run_dir, err, sizeof r->err)))
            core_log_warn("no TensorBoard events: %s", err);
    }
    FILE *metrics = r->metrics;
    const int64_t S_out = r->mb.S; /* tokens per trained sequence */
    double peak = r->peak, flops_tok = r->flops_tok;
    int cards = r->dev.gpu ? d->world : 1; /* the peak is per GPU */

    signals_install(r); /* until the end of the run (run_free) */

    /* the replay dump's initial weights are written before the clocks start, so that the
     * budget schedules see the same time as without the hook */
    replay_dump rd = {0};
    if (replay_dir() && rank == 0) {
        if (P.step > 0)
            core_log_warn("CRAM_DUMP_BATCHES: a resumed run does not start from its initial "
                          "weights and optimizer state; no replay dump");
        else
            replay_open(&rd, &r->m, &J);
    }

    /* Start the clocks now */
    double t_start = core_now() - P.elapsed_s, t_loop = core_now(), t_print = t_loop;
    int64_t first_step = P.step, print_step = P.step; /* the µstep of the last print */
    int64_t first_rows = P.rows, print_rows = P.rows;
    train_stop stop = TRAIN_STOP_NONE;
    double el = P.elapsed_s;
    /* A resumed state may be at the end already (saved at the last µstep, during validation or
     * the final write, or by a finished run): then not one more microbatch, or the result would
     * differ from the uninterrupted run's. */
    bool at_end = P.step > 0 && (el / 3600.0 > J.budget_h || P.step >= J.steps_cap);
    if (at_end) {
        stop = el / 3600.0 > J.budget_h ? TRAIN_STOP_DEADLINE : TRAIN_STOP_STEPS;
        core_log_info("The resumed state is at step %lld of train.steps=%lld, %.3f s into a "
                      "budget of %g h: nothing left to train.",
                      (long long)P.step, (long long)J.steps_cap, el, J.budget_h);
        core_log_info("Reached deadline. Stopping training ...");
    }
    while (!at_end) {
        int64_t step = P.step + 1;
        /* a whole microbatch of every rank, or what is left of the update: each rank takes the
         * same share (the batch and the quantum are multiples of the world size) */
        int64_t left = P.cur_bs - P.acc, n_all = left < P.mbs_eff ? left : P.mbs_eff;
        int n = (int)(n_all / world);
        loader_next(&r->ld, rows, n, keys);
        mlm_collate(&r->mb, rows, n, r->S_in, &r->mo, P.seed, keys);
        /* the microbatch's share of the update: 1/accum when every microbatch is whole, as the
         * reference scales its loss; the forward folds it into the loss gradient */
        float grad_scale = (float)((double)n_all / (double)P.cur_bs);
        r->m.grad_scale = grad_scale;
        /* forward and backward queued back to back; the loss is read after both (fetch_loss is
         * false from the set-up on) */
        bert_forward(&r->m, r->mb.input_ids, NULL, r->mb.labels, NULL, n, r->mb.S, J.train_mode,
                     P.seed, (uint64_t)step);
        bert_backward(&r->m, grad_scale);
        double loss = bert_mlm_loss(&r->m);
        kill_point(KILL_STEP, step);
        P.step = step;
        P.acc += n_all;
        P.rows += n_all;
        el = core_now() - t_start;
        dist_bcast_bytes(d, &el, sizeof el); /* one clock for every rank */
        replay_record(&rd, step, &r->mb, n, P.lr, P.acc >= P.cur_bs, grad_scale, loss);
        if (P.acc >= P.cur_bs) {
            P.acc = 0;
            P.opt_t++;
            adamw_model_step(&r->m, d, &J.hp, P.lr, J.clip, P.opt_t);
            P.cur_bs = ramp_batch_size(&J.rmp, step, el);
        }
        P.lr = sched_lr(&J.sch, step, el); /* every microbatch */
        P.last_loss = loss;
        P.win_sum += loss;
        P.win_n++;
        if (hooks && hooks->after_step) hooks->after_step(hooks->ctx, step, loss);

        int allowed = 1, no_recovery = 1, signalled = g_signal != 0;
        if (el / 3600.0 > J.budget_h || step >= J.steps_cap) {
            allowed = 0;
            stop = el / 3600.0 > J.budget_h ? TRAIN_STOP_DEADLINE : TRAIN_STOP_STEPS;
            core_log_info("Reached deadline. Stopping training ...");
        }
        if (step % J.print_every == 0) {
            double avg = P.win_sum / (double)(P.win_n ? P.win_n : 1);
            double now = core_now();
            /* per µstep over the µsteps this process ran since the last print (fewer than
             * print_every in the first window after a resume) */
            int64_t nrun = step - print_step > 0 ? step - print_step : 1;
            double tt = (now - t_print) / (double)nrun;
            double tps =
                now > t_print ? (double)((P.rows - print_rows) * S_out) / (now - t_print) : 0;
            char td[64], mfu[96];
            mfu_text(mfu, sizeof mfu, tps, flops_tok, peak, cards);
            /* the reference's estimate is step time x train.steps; the budget ends a run first
             * when it is shorter */
            double est = tt * (double)J.steps_cap;
            if (est > J.budget_h * 3600.0) est = J.budget_h * 3600.0;
            core_format_timedelta(td, sizeof td, est);
            core_log_info("Train loss %.4f at step %lld with lr %.5f. [Avg: %.4f]  Perf: %.4fs per "
                          "step (%.0ft/s). Estimated Total Train: %s. MFU: %s.",
                          loss, (long long)step, P.lr, avg, tt, tps, td, mfu);
            if (metrics) {
                loader_pos lp = loader_tell(&r->ld);
                fprintf(metrics,
                        "{\"step\": %lld, \"epoch\": %lld, \"tokens\": %lld, \"loss\": %.6f, "
                        "\"last_loss\": %.6f, \"lr\": %.8g, \"batch_size\": %lld, "
                        "\"tok_per_s\": %.1f, \"elapsed\": %.3f}\n",
                        (long long)step, (long long)lp.epoch, (long long)(P.rows * S_out), avg,
                        loss, P.lr, (long long)P.cur_bs, tps, el);
                fflush(metrics);
            }
            tboard_scalar(r->tb, "train/loss", step, avg);
            tboard_scalar(r->tb, "train/last_loss", step, loss);
            tboard_scalar(r->tb, "train/lr", step, P.lr);
            tboard_scalar(r->tb, "train/batch_size", step, (double)P.cur_bs);
            tboard_scalar(r->tb, "train/tokens_per_s", step, tps);
            if (peak > 0)
                tboard_scalar(r->tb, "train/mfu_percent", step,
                              mfu_percent(tps, flops_tok, peak, cards));
            tboard_scalar(r->tb, "train/tokens", step, (double)(P.rows * S_out));
            tboard_flush(r->tb);
            if (r->nhist == r->caphist) {
                r->caphist = r->caphist ? 2 * r->caphist : 64;
                r->hist_loss = xrealloc(r->hist_loss, (size_t)r->caphist * sizeof *r->hist_loss);
                r->hist_step = xrealloc(r->hist_step, (size_t)r->caphist * sizeof *r->hist_step);
            }
            r->hist_step[r->nhist] = step;
            r->hist_loss[r->nhist++] = avg;
            r->step_time_sum += tt;
            res->avg_loss = avg;
            P.win_sum = 0;
            P.win_n = 0;
            t_print = now;
            print_step = step;
            print_rows = P.rows;
            if (J.et_enabled && avg > J.et_threshold && el / 3600.0 > J.et_budget_h) {
                allowed = 0;
                stop = TRAIN_STOP_EARLY;
                core_log_info("Loss higher than allowed threshold. Stopping training early...");
            }
        }
        if (J.save_intermediate && step % J.save_every == 0 && isfinite(loss) && rank == 0 &&
            !J.dryrun) {
            P.elapsed_s = el;
            P.pos = loader_tell(&r->ld);
            bool hook = kill_cap_writes(KILL_SAVE, step, 64 << 10) ||
                        kill_cap_writes(KILL_SAVE_STATE, step,
                                        (uint64_t)r->m.numel * sizeof(float) + (64 << 10));
            if (ckpt_save_state(J.state_path, &r->m, &P, err, sizeof r->err))
                core_log_warn("intermediate state not saved: %s", err);
            else
                r->state_step = step;
            if (hook) kill_now();
        }
        if (!isfinite(loss)) {
            core_log_info("Non-finite loss in step %lld on device %d.", (long long)step, rank);
            bool recover = strstr(J.troubleshoot, "recover_checkpoint") != NULL;
            if (!buffer_finite(&r->m, r->m.g)) {
                if (strstr(J.troubleshoot, "dump_nan_grads")) {
                    core_log_info("Non-finite gradients in step %lld, dumping...", (long long)step);
                    bert_zero_grad(&r->m);
                } else if (recover) {
                    no_recovery = 0;
                } else {
                    allowed = 0;
                    stop = TRAIN_STOP_NONFINITE;
                    core_log_info("Stopping training due to non-finite grads in step %lld.",
                                  (long long)step);
                }
            }
            if (!buffer_finite(&r->m, r->m.w)) {
                if (recover) {
                    no_recovery = 0;
                } else {
                    allowed = 0;
                    stop = TRAIN_STOP_NONFINITE;
                    core_log_info("Stopping training due to non-finite parameters in step %lld.",
                                  (long long)step);
                }
            }
        }
        int flags[3] = {allowed, no_recovery, !signalled};
        dist_allreduce_int(d, flags, 3, DIST_MIN);
        if (!flags[2]) {
            /* preempted: keep the state of this microbatch boundary and leave */
            if (!J.dryrun && rank == 0) {
                P.elapsed_s = el;
                P.pos = loader_tell(&r->ld);
                if (save_for_signal(r, &P, "")) r->signal_unsaved = true;
            }
            stop = TRAIN_STOP_SIGNAL;
            break;
        }
        if (J.dryrun && step >= DRYRUN_STEPS) {
            if (stop == TRAIN_STOP_NONE) stop = TRAIN_STOP_DRYRUN;
            break;
        }
        if (!flags[0]) {
            if (stop == TRAIN_STOP_NONE) stop = TRAIN_STOP_STEPS; /* another rank decided */
            break;
        }
        if (!flags[1]) {
            core_log_info("Attempting reload of checkpoint on device %d.", rank);
            train_progress L = P;
            if (ckpt_load_state(J.state_path, &r->m, &L, err, sizeof r->err)) {
                core_log_error("cannot reload the intermediate state: %s", err);
                stop = TRAIN_STOP_NONFINITE;
                break;
            }
            P = L;
            r->state_step = P.step;
            loader_seek(&r->ld, P.pos);
            t_start = core_now() - P.elapsed_s;
        }
    }
    replay_close(&rd); /* a run shorter than CRAM_DUMP_STEPS */
    /* where the run stands, for a state written after the loop (a signal during validation or
     * the final write) */
    P.elapsed_s = el;
    P.pos = loader_tell(&r->ld);
    double loop_s = core_now() - t_loop;
    res->stop = stop;
    res->step = P.step;
    res->updates = P.opt_t;
    res->last_loss = P.last_loss;
    res->train_seconds = loop_s;
    res->tok_per_s = loop_s > 0 ? (double)((P.rows - first_rows) * S_out) / loop_s : 0;
    char mfu[96];
    mfu_text(mfu, sizeof mfu, res->tok_per_s, flops_tok, peak, cards);
    core_log_info("Trained %lld microbatches (%lld updates) in %.1f s: %.0f tokens/s, MFU %s.",
                  (long long)(P.step - first_step), (long long)P.opt_t, loop_s, res->tok_per_s,
                  mfu);
    if (metrics) fclose(metrics);
    r->metrics = NULL;
    free(rows);
    free(keys);
    r->P = P;
    return stop;
}

/* loss.png in the run folder: the printed training loss per µstep and the validation point. */
static void write_loss_png(run *r, double val_loss) {
    if (r->nhist == 0) return;
    double *xs = xmalloc((size_t)r->nhist * sizeof *xs);
    for (int i = 0; i < r->nhist; i++)
        xs[i] = (double)r->hist_step[i];
    double vx = (double)r->P.step;
    plot_series ser[2] = {{xs, r->hist_loss, r->nhist, "train (mean since the last print)", false},
                          {&vx, &val_loss, isfinite(val_loss) ? 1 : 0, "validation", true}};
    char title[256], path[CORE_PATH_MAX + 32];
    snprintf(title, sizeof title, "%.200s: pretraining MLM loss", r->J.name);
    snprintf(path, sizeof path, "%s/loss.png", r->J.run_dir);
    if (plot_png_series(path, title, "step (microbatch)", "loss", ser, 2, r->err, sizeof r->err))
        core_log_warn("loss curve not written: %s", r->err);
    free(xs);
}

/* Validation, the summary table, the final checkpoint and the metrics file. A signal during
 * validation saves the state (when the file does not hold this step already) and skips the
 * rest; one during the final write lets it finish, then saves the state. Returns the exit
 * code: 0, or 1 when a signal's state or the final checkpoint could not be written or the
 * loss went non-finite. */
static int run_finish(run *r, train_stop stop, train_result *res) {
    const job J = r->J;
    int rank = r->rank, rc = 0;
    char *err = r->err;
    train_progress P = r->P;
    /* nothing to keep from a dry run or a non-finite stop */
    bool keep_state = !J.dryrun && stop != TRAIN_STOP_NONFINITE;
    if (stop == TRAIN_STOP_SIGNAL) {
        if (r->signal_unsaved) rc = 1;
    } else {
        double vl = NAN, va = NAN;
        int64_t vrows = 0;
        if (!g_signal)
            validate(&r->m, &r->s.valid, &r->mo, (int)J.mbs, J.dryrun ? DRYRUN_VALID_BATCHES : 0,
                     &vl, &va, &vrows);
        int go = !g_signal;
        dist_allreduce_int(r->d, &go, 1, DIST_MIN);
        res->val_loss = vl;
        res->val_acc = va;
        if (vrows > 0) {
            core_log_info("Validation MLM loss %.4f, accuracy %.2f%% on %lld held-out rows "
                          "(fixed masks, dropout off).",
                          vl, 100.0 * va, (long long)vrows);
            tboard_scalar(r->tb, "val/loss", P.step, vl);
            tboard_scalar(r->tb, "val/accuracy", P.step, va);
        } else if (go)
            core_log_info("No validation rows in the store (data.validation_seqs=0).");
        if (rank == 0) write_loss_png(r, vrows > 0 ? vl : NAN);
        tboard_close(r->tb);
        r->tb = NULL;
        if (!go) {
            stop = res->stop = TRAIN_STOP_SIGNAL;
            if (rank == 0 && keep_state)
                rc = save_for_signal(r, &P, " during validation");
            else if (rank == 0)
                core_log_info("Received signal %d during validation: stopping (nothing to save).",
                              (int)g_signal);
        }
    }
    /* everything is allocated and validation has run: the peaks are final */
    train_device_mem_read(&r->mem, &r->dev);
    if (stop != TRAIN_STOP_SIGNAL) {
        if (!J.dryrun && rank == 0)
            write_table(&J, &r->s, res, core_now() - r->t_launch, r->hist_loss, r->nhist,
                        r->nhist ? r->step_time_sum / r->nhist : 0, loader_tell(&r->ld).epoch,
                        &r->dev, &r->mem);
        if (rank == 0) {
            double loss = P.last_loss;
            if (!isfinite(loss) && J.save_intermediate && access(J.state_path, F_OK) == 0) {
                train_progress L = P;
                if (ckpt_load_state(J.state_path, &r->m, &L, err, sizeof r->err) == 0) loss = 16.0;
            }
            if (isfinite(loss)) {
                bool hook =
                    !J.dryrun && kill_cap_writes(KILL_FINAL, g_kill.n, (uint64_t)g_kill.n << 10);
                if (ckpt_save_final(res->checkpoint_dir, sizeof res->checkpoint_dir, J.cfg, &r->m,
                                    r->s.tok, loss, J.dryrun, err, sizeof r->err)) {
                    core_log_error("final checkpoint not written: %s", err);
                    res->checkpoint_dir[0] = '\0';
                    rc = 1;
                } else if (!J.dryrun) {
                    core_log_info("Final checkpoint: %s", res->checkpoint_dir);
                } else {
                    core_log_info("Dry run: no model files (folder %s).", res->checkpoint_dir);
                    res->checkpoint_dir[0] = '\0';
                }
                if (hook) kill_now();
            } else {
                core_log_warn("The last loss is not finite: no final checkpoint written.");
            }
        }
        if (stop == TRAIN_STOP_NONFINITE && rc == 0) rc = 1;
    }
    if (rank == 0)
        write_metrics_yaml(
            &J, &r->m, res, &r->dev, &r->mem, r->d->world,
            mfu_percent(res->tok_per_s, r->flops_tok, r->peak, r->dev.gpu ? r->d->world : 1));
    if (stop != TRAIN_STOP_SIGNAL && g_signal && rank == 0) {
        /* the final checkpoint is complete; keep the state too, as a signal promises */
        if (keep_state && save_for_signal(r, &P, " while the final checkpoint was written")) rc = 1;
    }
    {
        char td[64];
        core_format_timedelta(td, sizeof td, core_now() - r->t_launch);
        core_log_info("-------------------------------------------------------------");
        core_log_info("Finished running job %s with total train time: %s", J.name, td);
        if (r->mem.valid) {
            char line[512];
            train_device_mem_line(line, sizeof line, &r->mem);
            core_log_info("%s", line);
        }
        core_log_info("-----------------Shutdown complete.--------------------------");
    }
    return rc;
}

static void run_free(run *r) {
    signals_restore(r);
    if (r->lock_fd >= 0) close(r->lock_fd); /* releases the lock */
    r->lock_fd = -1;
    if (r->have_model) bert_free(&r->m);
    if (r->have_batch) mlm_batch_free(&r->mb);
    if (r->have_store) store_close(&r->s);
    free(r->hist_loss);
    free(r->hist_step);
    tboard_close(r->tb);
    if (r->own_ops) backend_close(r->o);
    core_log_close();
}

int train_run(cfg_node *cfg, const train_opts *opts, train_result *res) {
    memset(res, 0, sizeof *res);
    res->avg_loss = res->val_loss = res->val_acc = res->last_loss = NAN;
    run *r = xcalloc(1, sizeof *r);
    int rc = run_setup(r, cfg, opts, res);
    if (rc == 0) rc = run_build(r, cfg, res);
    if (rc == 0) rc = run_finish(r, run_loop(r, res), res);
    run_free(r);
    free(r);
    return rc;
}

static void usage(FILE *f) {
    fputs(
        "usage: cram pretrain [--config-dir=DIR] [overrides...]\n"
        "\n"
        "Pretrains a masked language model under a wall-clock budget, e.g.\n"
        "  cram pretrain name=mine arch=crammed-bert train=bert-o4 data=debian-english "
        "impl=cpu budget=24\n"
        "\n"
        "Writes <base_dir>/<name>/pretrain/<date>/<time>/ (config.yaml, the log, metrics.jsonl),\n"
        "the final model to <base_dir>/<name>/checkpoints/<arch>_<date>_<loss>/ and a row to\n"
        "tables/table_pretrain_reports.csv. SIGINT/SIGTERM save the training state; continue\n"
        "with impl.resume_run_after_preempt=True. `cram config pretrain ...` shows the config.\n",
        f);
}

int train_cli_main(int argc, char **argv) {
    for (int k = 1; k < argc; k++)
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    int shown = cfg_cli_cfg_flag("pretrain", "cram pretrain", argc - 1, argv + 1);
    if (shown >= 0) return shown; /* --cfg job: the configuration, no run */
    cfg_error ce = {0};
    cfg_node *cfg = cfg_from_args("pretrain", argc - 1, argv + 1, &ce);
    if (!cfg) {
        fprintf(stderr, "cram pretrain: %s\n", ce.msg);
        return ce.code ? ce.code : 2;
    }
    /* the backend is chosen before the ranks join (NCCL needs to know where the gradients
     * live) and opened after (on the rank's GPU) */
    char err[512] = "";
    backend_choice bc;
    if (backend_choose(&bc, cfg, err, sizeof err)) {
        fprintf(stderr, "cram pretrain: %s\n", err);
        cfg_free(cfg);
        return 2;
    }
    // Under mpirun every rank runs this; alone, dist_init gives the no-op single process.
    dist d;
    if (dist_init(&d, cfg_str_or(cfg, "impl.dist_backend", "auto"), bc.device == BACKEND_CUDA, err,
                  sizeof err)) {
        fprintf(stderr, "cram pretrain: %s\n", err);
        cfg_free(cfg);
        return 2;
    }
    const ops *o = backend_open(&bc, d.device < 0 ? 0 : d.device, err, sizeof err);
    if (!o) {
        fprintf(stderr, "cram pretrain: %s\n", err);
        cfg_free(cfg);
        if (d.world > 1) dist_abort(&d, 2);
        dist_free(&d);
        return 2;
    }
    if (o->stream) dist_set_stream(&d, o->stream);
    train_opts opts = {.ops = o, .argc = argc - 1, .argv = argv + 1, .dist = &d};
    train_result res;
    int rc = train_run(cfg, &opts, &res);
    cfg_free(cfg);
    if (rc != 0 && d.world > 1) dist_abort(&d, rc); // the other ranks may wait in a collective
    backend_close(o);
    dist_free(&d);
    return rc;
}
