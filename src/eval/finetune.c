/* `cram eval`: check every input first (the checkpoint, the data folder and each task's files),
 * then for every task of eval.tasks build the sequence classifier, fine-tune it (AdamW, schedule
 * per microbatch, dropout on, microbatch accumulation) with a progress report, validate after
 * every epoch and report the last epoch's metrics; finally the GLUE means, metrics_<name>.yaml, a
 * downstream table row and a summary. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Paths and messages are bounded buffers; a truncated path fails later with a message that
 * shows it, so the compiler's truncation warnings add nothing here. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "core/core.h"
#include "core/tboard.h"
#include "eval/eval.h"
#include "model/safetensors.h"

#include "data/data.h"
#include "optim/adamw.h"
#include "optim/sched.h"
#include "ops/backend.h"
#include "train/train_report.h"

#define ERRLEN 1024

/* A growing list of owned strings: the problems the input check finds, and the notes it keeps
 * for the log file that does not exist yet while it runs. */
typedef struct strlist {
    char **s;
    int n, cap;
} strlist;

static void sl_addf(strlist *l, const char *fmt, ...) CORE_PRINTF(2, 3);
static void sl_addf(strlist *l, const char *fmt, ...) {
    char buf[2 * ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (int k = 0; k < l->n; k++) /* the same message twice says nothing new */
        if (strcmp(l->s[k], buf) == 0) return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **g = realloc(l->s, (size_t)cap * sizeof *g);
        if (!g) return;
        l->s = g, l->cap = cap;
    }
    char *d = strdup(buf);
    if (d) l->s[l->n++] = d;
}

static void sl_free(strlist *l) {
    for (int k = 0; k < l->n; k++)
        free(l->s[k]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

/* dst <- src, recursively for maps (eval.arch_modifications over the checkpoint's arch) */
static void cfg_merge(cfg_node *dst, const cfg_node *src) {
    for (int k = 0; k < src->n; k++) {
        cfg_node *d = cfg_map_get(dst, src->keys[k]);
        if (d && d->type == CFG_MAP && src->items[k]->type == CFG_MAP)
            cfg_merge(d, src->items[k]);
        else
            cfg_map_set(dst, src->keys[k], cfg_clone(src->items[k]));
    }
}

/* ---- the checkpoint ---- */

typedef struct ckpt {
    char dir[CORE_PATH_MAX];
    bool hf; /* a Hugging Face folder (config.json) instead of a cram one (model_config.json) */
    bool verified; /* latest/smallest already parsed the weights and checked their checksum */
} ckpt;

/* Whether dir holds a whole checkpoint: a config, the weights, a tokenizer, and weights that
 * parse and match their checksum (when they carry one). Otherwise why says what is wrong. */
static bool checkpoint_complete(const char *dir, char *why, size_t whylen) {
    char p[CORE_PATH_MAX + 32], p2[CORE_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/model_config.json", dir);
    snprintf(p2, sizeof p2, "%s/config.json", dir);
    if (!core_is_file(p) && !core_is_file(p2)) {
        snprintf(why, whylen,
                 "neither model_config.json nor config.json (an empty folder, e.g. of a dry run)");
        return false;
    }
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    snprintf(p2, sizeof p2, "%s/vocab.txt", dir);
    if (!core_is_file(p) && !core_is_file(p2)) {
        snprintf(why, whylen, "no tokenizer.json or vocab.txt");
        return false;
    }
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (!core_is_file(p)) {
        snprintf(why, whylen, "no model.safetensors");
        return false;
    }
    st_file f;
    bool summed = false;
    if (st_open(&f, p, why, whylen) != ST_OK) return false;
    st_status st = st_verify(&f, &summed, why, whylen);
    st_close(&f);
    return st == ST_OK;
}

/* A folder that an atomic write left behind: "<name>.tmp.<pid>". */
static bool is_temp_name(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t) return false;
    while (strstr(t + 1, ".tmp."))
        t = strstr(t + 1, ".tmp.");
    t += 5;
    if (!*t) return false;
    for (; *t; t++)
        if (*t < '0' || *t > '9') return false;
    return true;
}

typedef struct cand {
    char name[256];
    double key; /* larger is better */
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* latest / smallest: the best complete folder of root; every folder passed over gets a note
 * with the reason (logged once the log file is open). */
static int pick_checkpoint(ckpt *c, const char *root, const char *want, const char *name,
                           strlist *notes, char *err, size_t errlen) {
    DIR *d = opendir(root);
    if (!d) {
        snprintf(err, errlen,
                 "%s: no checkpoints of run '%s' (pretrain with name=%s first, or set "
                 "eval.checkpoint to a folder or hf:PATH)",
                 root, name, name);
        return -1;
    }
    cand *cs = NULL;
    int n = 0, cap = 0, skipped = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[CORE_PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", root, e->d_name);
        struct stat st;
        if (stat(p, &st) || !S_ISDIR(st.st_mode)) continue;
        if (is_temp_name(e->d_name)) {
            sl_addf(notes,
                    "Skipping checkpoint folder %s: half-written (the temporary folder of a save "
                    "that was killed or failed).",
                    p);
            skipped++;
            continue;
        }
        double key;
        if (want[0] == 'l') {
            key = (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec;
        } else { /* the whole loss after the last '_' (the reference reads 5 characters) */
            const char *u = strrchr(e->d_name, '_');
            char *end;
            key = u ? -strtod(u + 1, &end) : NAN;
            if (!u || *end || !isfinite(key)) {
                sl_addf(notes,
                        "Skipping checkpoint folder %s: no loss after the last '_' of its name.",
                        p);
                skipped++;
                continue;
            }
        }
        if (strlen(e->d_name) >= sizeof cs->name) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            cand *g = realloc(cs, (size_t)cap * sizeof *cs);
            if (!g) {
                free(cs);
                closedir(d);
                snprintf(err, errlen, "%s: out of memory listing the checkpoints", root);
                return -1;
            }
            cs = g;
        }
        snprintf(cs[n].name, sizeof cs[n].name, "%s", e->d_name);
        cs[n++].key = key;
    }
    closedir(d);
    qsort(cs, (size_t)n, sizeof *cs, cand_cmp);
    int found = -1;
    for (int k = 0; k < n && found < 0; k++) {
        char p[CORE_PATH_MAX + 256], why[ERRLEN];
        snprintf(p, sizeof p, "%s/%s", root, cs[k].name);
        if (checkpoint_complete(p, why, sizeof why)) {
            found = k;
            snprintf(c->dir, sizeof c->dir, "%s", p);
        } else {
            sl_addf(notes, "Skipping checkpoint folder %s: %s", p, why);
            skipped++;
        }
    }
    free(cs);
    if (found < 0) {
        snprintf(err, errlen,
                 "%s: no complete checkpoint folder for eval.checkpoint=%s (%d skipped; the log "
                 "says why)",
                 root, want, skipped);
        return -1;
    }
    if (skipped)
        sl_addf(notes, "eval.checkpoint=%s: %d folder(s) skipped, using %s.", want, skipped,
                c->dir);
    c->verified = true;
    return 0;
}

/* eval.checkpoint: latest | smallest | hf:PATH | hf://PATH | an absolute path | a sub-folder of
 * <base_dir>/<name>/checkpoints. */
static int find_checkpoint(ckpt *c, const cfg_node *cfg, strlist *notes, char *err, size_t errlen) {
    const char *want = cfg_str_or(cfg, "eval.checkpoint", "latest");
    const char *base = cfg_str_or(cfg, "base_dir", "outputs"),
               *name = cfg_str_or(cfg, "name", "default");
    memset(c, 0, sizeof *c);
    if (strncmp(want, "hf:", 3) == 0) {
        const char *p = want + 3;
        if (strncmp(p, "//", 2) == 0) p += 2;
        snprintf(c->dir, sizeof c->dir, "%s", p);
        c->hf = true;
        if (!core_is_dir(c->dir)) {
            snprintf(err, errlen,
                     "eval.checkpoint=%s: %s is not a local folder. cram never downloads from the "
                     "Hugging Face hub; point it at a folder with config.json, model.safetensors "
                     "and vocab.txt or tokenizer.json (docs/eval.md)",
                     want, c->dir);
            return -1;
        }
        return 0;
    }
    char root[CORE_PATH_MAX];
    snprintf(root, sizeof root, "%s/%s/checkpoints", base, name);
    if (want[0] == '/') {
        snprintf(c->dir, sizeof c->dir, "%s", want);
    } else if (strcmp(want, "latest") == 0 || strcmp(want, "smallest") == 0) {
        if (pick_checkpoint(c, root, want, name, notes, err, errlen)) return -1;
    } else {
        snprintf(c->dir, sizeof c->dir, "%s/%s", root, want);
    }
    if (!core_is_dir(c->dir)) {
        snprintf(err, errlen, "%s: checkpoint folder not found", c->dir);
        return -1;
    }
    char p[CORE_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/model_config.json", c->dir);
    if (!core_is_file(p)) {
        snprintf(p, sizeof p, "%s/config.json", c->dir);
        if (!core_is_file(p)) {
            snprintf(err, errlen,
                     "%s: neither model_config.json (cram) nor config.json (Hugging Face)", c->dir);
            return -1;
        }
        c->hf = true;
    }
    return 0;
}

/* The arch config (as root.arch) of the classifier: the checkpoint's, with
 * eval.arch_modifications merged over a cram checkpoint's (the reference applies none to hub
 * models). */
static cfg_node *checkpoint_arch(const ckpt *c, const cfg_node *cfg, char *err, size_t errlen) {
    cfg_node *arch;
    if (c->hf) {
        arch = hf_read_config(c->dir, err, errlen);
        if (!arch) return NULL;
    } else {
        char p[CORE_PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/model_config.json", c->dir);
        cfg_error ce = {0};
        arch = cfg_load_yaml_file(p, &ce);
        if (!arch || arch->type != CFG_MAP) {
            snprintf(err, errlen, "%s: cannot read the model config: %s", p, ce.msg);
            cfg_free(arch);
            return NULL;
        }
        const cfg_node *mods = cfg_get(cfg, "eval.arch_modifications");
        if (mods && mods->type == CFG_MAP) cfg_merge(arch, mods);
    }
    cfg_node *root = cfg_new(CFG_MAP);
    cfg_map_set(root, "arch", arch);
    return root;
}

/* ---- one task ---- */

typedef struct task_result {
    const glue_task *t;
    double v[GLUE_MAX_METRICS], extra[GLUE_MAX_METRICS];
    bool has_extra;
    bool failed; /* training diverged (non-finite loss or weights): no score */
    int64_t steps;
    double seconds;
} task_result;

typedef struct job {
    const cfg_node *cfg;
    const ckpt *ck;
    const cfg_node *arch_root;
    const tok_tokenizer *tok;
    char data_dir[CORE_PATH_MAX];
    int mbs, batch, epochs, max_len;
    bool shuffle, dryrun, train_mode;
    uint64_t seed;
    int64_t carry_warmup; /* reference_warmup_carry_over: the first task's warmup, else -1 */
    const ops *ops;
    train_device dev; /* the GPU the backend runs on, if any */
    bool trained;     /* a training step has run (a failure before it leaves no run folder) */
    /* progress: a bar on a terminal, else a log line when progress_every_s have passed since
     * the last line (t_line) */
    bool tty;
    double progress_every_s;
    double t_line;
    tboard *tb; /* TensorBoard events in the run folder; per task, the step is the epoch */
} job;

/* The checks of the classifier's config that do not depend on the task: it parses, its
 * vocabulary matches the tokenizer's, it is a BERT and eval.max_seq_length fits its positions. */
static int model_config_check(const job *J, const ckpt *ck, const cfg_node *arch_root,
                              const tok_tokenizer *tok, bert_config *c, char *err, size_t errlen) {
    if (bert_config_from_cfg(c, arch_root, 0, err, errlen)) {
        char tmp[ERRLEN];
        snprintf(tmp, sizeof tmp, "%s/%s: %s", ck->dir,
                 ck->hf ? "config.json" : "model_config.json", err);
        snprintf(err, errlen, "%s", tmp);
        return -1;
    }
    if (c->V != tok_vocab_size(tok)) {
        snprintf(err, errlen,
                 "%s: the model's vocabulary has %d entries but the checkpoint's tokenizer has %d",
                 ck->dir, c->V, tok_vocab_size(tok));
        return -1;
    }
    if (c->kind == BERT_ARCH_SANITY) {
        snprintf(err, errlen, "%s: a SanityCheckLM checkpoint cannot be fine-tuned", ck->dir);
        return -1;
    }
    if ((J->max_len + 7) / 8 * 8 > c->max_pos) { /* batches are padded to a multiple of 8 */
        snprintf(err, errlen,
                 "eval.max_seq_length=%d (padded to a multiple of 8) exceeds the %d positions of "
                 "the checkpoint %s",
                 J->max_len, c->max_pos, ck->dir);
        return -1;
    }
    return 0;
}

/* Whether a progress line is due (not on a terminal, where the bar shows progress); marks it
 * printed. */
static bool line_due(job *J) {
    if (J->tty) return false;
    double now = core_now();
    if (now - J->t_line < J->progress_every_s) return false;
    J->t_line = now;
    return true;
}

/* bytes of one padded [mbs, S] batch buffer: S is at most max_len rounded up to 8 */
static size_t batch_bytes(const job *J) {
    return (size_t)J->mbs * (size_t)((J->max_len + 7) / 8 * 8) * 4;
}

/* Scores m on an encoded dev split; what names the split in the progress report. *seconds gets
 * the time it took. */
static int validate(bert_model *m, const glue_encoded *e, const glue_task *t, job *J,
                    const char *what, double *out, int *nmetrics, double *seconds) {
    size_t n = e->n;
    double t0 = core_now();
    core_progress bar;
    if (J->tty) {
        char label[64];
        snprintf(label, sizeof label, "%s validation (%s)", t->name, what);
        core_progress_init(&bar, label, (uint64_t)n);
    }
    if (J->dryrun && n > (size_t)J->mbs * 3) n = (size_t)J->mbs * 3; /* 3 batches */
    int32_t *ipred = malloc(n * sizeof *ipred), *ids = malloc(batch_bytes(J));
    float *fpred = malloc(n * sizeof *fpred), *mask = malloc(batch_bytes(J));
    float *logits = malloc((size_t)J->mbs * 3 * sizeof *logits);
    size_t *idx = malloc((size_t)J->mbs * sizeof *idx);
    int32_t pad = tok_special_id(J->tok, TOK_PAD);
    m->grad_enabled = false;
    for (size_t b0 = 0; b0 < n; b0 += (size_t)J->mbs) {
        int B = (int)(n - b0 < (size_t)J->mbs ? n - b0 : (size_t)J->mbs);
        for (int b = 0; b < B; b++)
            idx[b] = b0 + (size_t)b;
        int S = glue_batch(e, idx, B, pad < 0 ? 0 : pad, 8, ids, mask, NULL, NULL);
        bert_forward_cls(m, ids, NULL, mask, NULL, NULL, B, S, false, J->seed, 0);
        bert_cls_logits(m, logits);
        for (int b = 0; b < B; b++) {
            const float *l = logits + (size_t)b * t->nlabels;
            int arg = 0;
            for (int k = 1; k < t->nlabels; k++)
                if (l[k] > l[arg]) arg = k;
            ipred[b0 + b] = arg;
            fpred[b0 + b] = l[0];
        }
        size_t done = b0 + (size_t)B;
        if (J->tty) {
            core_progress_update(&bar, (uint64_t)done);
        } else if (done < n && line_due(J)) {
            double dt = core_now() - t0, rate = dt > 0 ? (double)done / dt : 0;
            char eta[32];
            core_duration_string(eta, sizeof eta, rate > 0 ? (double)(n - done) / rate : NAN);
            core_log_info("Task %s: validation on %s: %zu/%zu rows, %.1f rows/s, ETA %s.", t->name,
                          what, done, n, rate, eta);
        }
    }
    if (J->tty) core_progress_finish(&bar);
    *seconds = core_now() - t0;
    m->grad_enabled = true;
    *nmetrics = t->nmetrics;
    for (int k = 0; k < t->nmetrics; k++) {
        bool sub = false;
        out[k] =
            metric_compute(t->metrics[k], ipred, e->label, fpred, e->target, n, t->nlabels, &sub);
        if (sub)
            core_log_info("Value Error in metrics computation, maybe non-finite values in "
                          "prediction. Returning backup score.");
    }
    free(ipred), free(ids), free(fpred), free(mask), free(logits), free(idx);
    return 0;
}

static void metric_msg(char *buf, size_t len, const glue_task *t, const double *v,
                       const char *suffix) {
    buf[0] = 0;
    for (int k = 0; k < t->nmetrics; k++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s%s: %2.4f", k ? " " : "",
                 metric_name(t->metrics[k]), suffix, v[k]);
}

static int fit_task(job *J, const glue_task *t, task_result *R, const glue_encoded *etr_p,
                    const glue_encoded *edv_p, const glue_encoded *edx_p, char *err, size_t errlen);

/* Every weight of m is finite. */
static bool weights_finite(const bert_model *m) {
    float *host = malloc(m->numel * sizeof *host);
    if (!host) return true; /* cannot tell; the next loss will */
    m->ops->download(m->ops, host, m->w, m->numel * sizeof *host);
    bool ok = true;
    for (size_t i = 0; i < m->numel && ok; i++)
        ok = isfinite(host[i]);
    free(host);
    return ok;
}

static int run_task(job *J, const glue_task *t, task_result *R, char *err, size_t errlen) {
    memset(R, 0, sizeof *R);
    R->t = t;
    glue_split tr, dv, dx = {0};
    if (glue_load(&tr, t, J->data_dir, t->train, err, errlen)) return -1;
    if (glue_load(&dv, t, J->data_dir, t->dev, err, errlen)) {
        glue_split_free(&tr);
        return -1;
    }
    if (t->dev_extra && glue_load(&dx, t, J->data_dir, t->dev_extra, err, errlen)) {
        glue_split_free(&tr), glue_split_free(&dv);
        return -1;
    }
    core_log_info("Task %s: encoding %zu training and %zu validation examples (up to %d tokens "
                  "each).",
                  t->name, tr.n, dv.n + dx.n, J->max_len);
    glue_encoded etr = {0}, edv = {0}, edx = {0};
    int rc = glue_encode(&etr, &tr, J->tok, J->max_len, err, errlen) ||
             glue_encode(&edv, &dv, J->tok, J->max_len, err, errlen) ||
             (t->dev_extra && glue_encode(&edx, &dx, J->tok, J->max_len, err, errlen));
    glue_split_free(&tr), glue_split_free(&dv), glue_split_free(&dx);
    if (rc == 0) rc = fit_task(J, t, R, &etr, &edv, &edx, err, errlen);
    glue_encoded_free(&etr), glue_encoded_free(&edv), glue_encoded_free(&edx);
    return rc ? -1 : 0;
}

/* Builds the classifier, loads the pretrained weights, fine-tunes and validates one task on
 * encoded splits (owned by the caller). */
static int fit_task(job *J, const glue_task *t, task_result *R, const glue_encoded *etr_p,
                    const glue_encoded *edv_p, const glue_encoded *edx_p, char *err,
                    size_t errlen) {
    const glue_encoded etr = *etr_p, edv = *edv_p, edx = *edx_p;
    /* the classifier, then the pretrained weights */
    bert_config c;
    if (model_config_check(J, J->ck, J->arch_root, J->tok, &c, err, errlen)) return -1;
    c.num_labels = t->nlabels;
    bert_model m;
    bert_init(&m, &c, J->ops);
    /* the arena of the longest padded batch now (what check_memory planned), so that no batch
     * allocates device memory inside the loop; shorter batches reuse it */
    bert_acts_ensure(&m, J->mbs, (J->max_len + 7) / 8 * 8);
    bert_init_weights(&m, J->seed);
    char wpath[CORE_PATH_MAX + 32];
    snprintf(wpath, sizeof wpath, "%s/model.safetensors", J->ck->dir);
    int nl = 0, nm = 0;
    if (hf_load_weights(&m, wpath, &nl, &nm, err, errlen)) {
        bert_free(&m);
        return -1;
    }
    int64_t nb = (int64_t)(etr.n / (size_t)J->mbs); /* drop_last */
    if (nb == 0) {
        snprintf(err, errlen, "%s/%s/%s: %zu training examples, fewer than one microbatch of %d",
                 J->data_dir, t->dir, t->train, etr.n, J->mbs);
        bert_free(&m);
        return -1;
    }
    int epochs = J->dryrun ? 1 : J->epochs;
    int64_t steps = nb * J->epochs;
    core_log_info("Finetuning task %s with %d classes for %lld steps.", t->name, t->nlabels,
                  (long long)steps);
    core_log_info("Loaded %d tensors from %s (%d new parameters stay at their init).", nl, wpath,
                  nm);

    /* optimizer and schedule */
    adamw_hparams hp;
    double lr0;
    if (adamw_hparams_from_cfg(J->cfg, "eval.optim", &hp, &lr0, err, errlen) ||
        (hp.coupled && (snprintf(err, errlen, "eval.optim.type=Adam is not supported here"), 1))) {
        bert_free(&m);
        return -1;
    }
    const cfg_node *dk = cfg_get(J->cfg, "eval.limited_decay_keys");
    if (dk && dk->type == CFG_LIST) {
        char *keys[32];
        int nk = 0;
        for (int k = 0; k < dk->n && nk < 32; k++)
            if (dk->items[k]->type == CFG_STR) keys[nk++] = dk->items[k]->s;
        bert_set_decay_keys(&m, keys, nk);
    }
    sched s;
    if (sched_init_from_cfg(&s, J->cfg, "eval", lr0, steps, err, errlen)) {
        bert_free(&m);
        return -1;
    }
    if (J->carry_warmup >= 0)
        s.warmup = J->carry_warmup;
    else if (cfg_bool_or(J->cfg, "eval.reference_warmup_carry_over", false))
        J->carry_warmup = s.warmup;
    double clip = cfg_num_or(J->cfg, "eval.gradient_clipping", 0);
    int accum = J->batch / J->mbs;

    size_t *order = malloc(etr.n * sizeof *order);
    for (size_t i = 0; i < etr.n; i++)
        order[i] = i;
    int32_t *ids = malloc(batch_bytes(J)), *labels = malloc((size_t)J->mbs * 4);
    float *mask = malloc(batch_bytes(J)), *targets = malloc((size_t)J->mbs * 4);
    int32_t pad = tok_special_id(J->tok, TOK_PAD);
    int64_t ustep = 0, t_opt = 0;
    double t_start = core_now();
    /* progress: the steps this run takes, the training time of the finished epochs, and the
     * validation time per row once one validation has been measured */
    const int64_t run_steps = (J->dryrun ? 1 : nb) * epochs;
    const size_t dev_rows = J->dryrun && edv.n > (size_t)J->mbs * 3 ? (size_t)J->mbs * 3 : edv.n,
                 extra_rows = J->dryrun && edx.n > (size_t)J->mbs * 3 ? (size_t)J->mbs * 3 : edx.n;
    double train_s = 0, val_s_per_row = -1;
    J->t_line = core_now();
    for (int ep = 0; ep < epochs; ep++) {
        if (J->shuffle) { /* a fresh permutation per epoch (Fisher-Yates on Philox) */
            core_rng rng;
            core_rng_init(&rng, J->seed, 0, (uint64_t)ep, 0x676c7565u);
            for (size_t i = etr.n - 1; i > 0; i--) {
                size_t j = core_rng_below(&rng, (uint32_t)(i + 1));
                size_t tmp = order[i];
                order[i] = order[j], order[j] = tmp;
            }
        }
        double t0 = core_now(), sum = 0, loss = 0;
        int64_t nsteps = J->dryrun ? 1 : nb, b;
        core_progress bar;
        if (J->tty) core_progress_init(&bar, t->name, (uint64_t)nsteps);
        for (b = 0; b < nsteps; b++, ustep++) {
            int S = glue_batch(&etr, order + b * J->mbs, J->mbs, pad < 0 ? 0 : pad, 8, ids, mask,
                               labels, targets);
            bool reg = t->nlabels == 1;
            loss = bert_forward_cls(&m, ids, NULL, mask, reg ? NULL : labels, reg ? targets : NULL,
                                    J->mbs, S, J->train_mode, J->seed, (uint64_t)ustep);
            if (!isfinite(loss)) {
                /* the reference stops a pretraining run on a non-finite loss; a diverged
                 * fine-tuning has no meaningful score either */
                if (J->tty) core_progress_finish(&bar);
                core_log_error("Non-finite train loss (%s) at step %lld of task %s (epoch %d): "
                               "the task failed and gets no score.",
                               isnan(loss) ? "nan"
                               : loss > 0  ? "inf"
                                           : "-inf",
                               (long long)ustep, t->name, ep);
                R->failed = true;
                break;
            }
            bert_backward(&m, 1.0f / (float)accum);
            J->trained = true;
            sum += loss;
            if ((ustep + 1) % accum == 0)
                adamw_model_step(&m, NULL, &hp, sched_lr(&s, ustep, 0), clip, ++t_opt);
            if (J->tty) {
                /* the label carries what the bar cannot: the epoch and the running loss */
                snprintf(bar.label, sizeof bar.label, "%s epoch %d of %d, loss avg %.4f", t->name,
                         ep + 1, epochs, sum / (double)(b + 1));
                core_progress_update(&bar, (uint64_t)(b + 1));
            } else if (b + 1 < nsteps && line_due(J)) {
                double now = core_now(), ep_s = now - t0;
                int64_t done = ustep + 1;
                double per_step = (train_s + ep_s) / (double)done;
                double per_row = val_s_per_row >= 0 ? val_s_per_row : per_step / J->mbs / 3;
                double left = (double)(run_steps - done) * per_step +
                              (double)(epochs - ep) * (double)dev_rows * per_row +
                              (t->dev_extra ? (double)extra_rows * per_row : 0);
                char eta[32];
                core_duration_string(eta, sizeof eta, left);
                core_log_info("Task %s: step %lld/%lld (epoch %d of %d), loss avg %.4f, %.0f t/s, "
                              "ETA %s for the task.",
                              t->name, (long long)done, (long long)run_steps, ep + 1, epochs,
                              sum / (double)(b + 1),
                              ep_s > 0 ? (double)(b + 1) * J->max_len * J->mbs / ep_s : 0, eta);
            }
        }
        if (J->tty) core_progress_finish(&bar);
        if (!R->failed && !weights_finite(&m)) {
            /* the last update of the epoch can break the weights after the last loss */
            core_log_error("Non-finite weights after step %lld of task %s (epoch %d): the task "
                           "failed and gets no score.",
                           (long long)ustep - 1, t->name, ep);
            R->failed = true;
        }
        if (R->failed) break;
        double dt = core_now() - t0;
        train_s += dt;
        char eta[64];
        core_format_timedelta(eta, sizeof eta, dt * J->epochs);
        double tps = (double)b * J->max_len * J->mbs / (dt > 0 ? dt : 1e-9);
        core_log_info("Train loss %2.4f at step %lld with lr %.5f. [Avg: %2.4f] after epoch %d. "
                      "Perf: %2.4fmin per epoch (%.0ft/s). Estimated Total Train: %s.",
                      loss, (long long)(b - 1), sched_lr(&s, ustep, 0), sum / (double)(b ? b : 1),
                      ep, dt / 60, tps, eta);
        J->t_line = core_now(); /* the epoch's line counts as a progress line */
        int nmet;
        double vs;
        char what[128];
        snprintf(what, sizeof what, "%s/%s", t->dir, t->dev);
        validate(&m, &edv, t, J, what, R->v, &nmet, &vs);
        if (dev_rows) val_s_per_row = vs / (double)dev_rows;
        char msg[256];
        metric_msg(msg, sizeof msg, t, R->v, "");
        core_log_info("Validation metric is %s after epoch %d.", msg, ep);
        char tag[160];
        snprintf(tag, sizeof tag, "%s/train_loss", t->name);
        tboard_scalar(J->tb, tag, ep + 1, sum / (double)(b ? b : 1));
        snprintf(tag, sizeof tag, "%s/lr", t->name);
        tboard_scalar(J->tb, tag, ep + 1, sched_lr(&s, ustep, 0));
        for (int k = 0; k < t->nmetrics; k++) {
            snprintf(tag, sizeof tag, "%s/%s", t->name, metric_name(t->metrics[k]));
            tboard_scalar(J->tb, tag, ep + 1, R->v[k]);
        }
        tboard_flush(J->tb);
    }
    if (t->dev_extra && !R->failed) {
        int nmet;
        double vs;
        char what[128];
        snprintf(what, sizeof what, "%s/%s", t->dir, t->dev_extra);
        validate(&m, &edx, t, J, what, R->extra, &nmet, &vs);
        R->has_extra = true;
        char msg[256];
        metric_msg(msg, sizeof msg, t, R->extra, "_extra");
        core_log_info("Extra validation metric is %s after finetuning.", msg);
        for (int k = 0; k < t->nmetrics; k++) {
            char tag[160];
            snprintf(tag, sizeof tag, "%s/%s_extra", t->name, metric_name(t->metrics[k]));
            tboard_scalar(J->tb, tag, J->epochs, R->extra[k]);
        }
    }
    R->steps = steps;
    R->seconds = core_now() - t_start;
    free(order), free(ids), free(labels), free(mask), free(targets);
    bert_free(&m);
    return 0;
}

/* ---- the inputs, checked before anything runs ---- */

/* What the input check found and keeps for the run: the checkpoint, its tokenizer and arch, the
 * row counts of each task's files, and notes for the log file. */
typedef struct inputs {
    ckpt ck;
    bool have_ck;
    tok_tokenizer *tok;
    cfg_node *arch_root;
    strlist notes;     /* logged once the log file is open */
    strlist tasks_ok;  /* configured tasks whose files are all present and readable */
    strlist task_rows; /* one line per task for the log */
    int ntask_problems, nother_problems;
    int nsched_problems; /* eval.scheduler & co. that do not fit a task's step count */
} inputs;

static void inputs_free(inputs *in) {
    tok_free(in->tok);
    cfg_free(in->arch_root);
    sl_free(&in->notes), sl_free(&in->tasks_ok), sl_free(&in->task_rows);
    memset(in, 0, sizeof *in);
}

/* The files of task t in data_dir: each is read and parsed (a file that cannot be opened, has
 * the wrong columns, an unknown label or no rows is a problem), and training must fill at least
 * one microbatch. Returns whether all is well. */
static bool check_task_files(const job *J, const glue_task *t, strlist *problems, inputs *in) {
    char dir[CORE_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/%s", J->data_dir, t->dir);
    if (!core_is_dir(dir)) {
        sl_addf(problems,
                "%s: task folder of %s not found in eval.data_dir (it needs %s%s%s and %s)", dir,
                t->name, t->train, t->dev_extra ? ", " : "", t->dev_extra ? t->dev : "",
                t->dev_extra ? t->dev_extra : t->dev);
        return false;
    }
    const char *files[3] = {t->train, t->dev, t->dev_extra};
    size_t rows[3] = {0, 0, 0};
    bool ok = true;
    for (int f = 0; f < 3 && files[f]; f++) {
        glue_split sp;
        char err[ERRLEN];
        if (glue_load(&sp, t, J->data_dir, files[f], err, sizeof err)) {
            sl_addf(problems, "%s", err);
            ok = false;
            continue;
        }
        rows[f] = sp.n;
        glue_split_free(&sp);
    }
    if (ok && rows[0] < (size_t)J->mbs) {
        sl_addf(problems, "%s/%s: %zu training examples, fewer than one microbatch of %d", dir,
                t->train, rows[0], J->mbs);
        ok = false;
    }
    if (ok) {
        char dev_files[256];
        if (t->dev_extra)
            snprintf(dev_files, sizeof dev_files, "%s/%s and %s/%s", t->dir, t->dev, t->dir,
                     t->dev_extra);
        else
            snprintf(dev_files, sizeof dev_files, "%s/%s", t->dir, t->dev);
        sl_addf(&in->task_rows, "Task %s: %zu training rows (%s/%s), %zu validation rows (%s).",
                t->name, rows[0], t->dir, t->train, rows[1] + rows[2], dev_files);
        /* the schedule is built from the task's step count */
        adamw_hparams hp;
        double lr0;
        sched sc;
        char err[ERRLEN];
        int64_t steps = (int64_t)(rows[0] / (size_t)J->mbs) * J->epochs;
        if (adamw_hparams_from_cfg(J->cfg, "eval.optim", &hp, &lr0, err, sizeof err) == 0 &&
            sched_init_from_cfg(&sc, J->cfg, "eval", lr0, steps, err, sizeof err) != 0) {
            /* a configuration problem: the files are fine */
            sl_addf(problems, "task %s: %s", t->name, err);
            in->nsched_problems++;
        }
    }
    return ok;
}

/* On a GPU (or under the test hook CRAM_TEST_DEVICE_FREE_BYTES, train_report.h): the classifier
 * of the task with the most classes, its optimizer state and the activations of a microbatch of
 * the longest rows must fit into the free device memory. */
static void check_memory(const job *J, const bert_config *arch, inputs *in, strlist *problems) {
    if (J->mbs <= 0 || J->batch % J->mbs != 0) return; /* a problem of its own already */
    bert_config c = *arch;
    c.num_labels = 1;
    const cfg_node *tasks = cfg_get(J->cfg, "eval.tasks");
    for (int k = 0; tasks && tasks->type == CFG_MAP && k < tasks->n; k++) {
        const glue_task *t = glue_task_find(tasks->keys[k]);
        if (t && t->nlabels > c.num_labels) c.num_labels = t->nlabels;
    }
    char msg[2 * ERRLEN];
    if (train_device_mem_check(&J->dev, J->ops, &c, J->mbs, (J->max_len + 7) / 8 * 8, J->batch, 1,
                               "impl.microbatch_size", "eval.batch_size", msg, sizeof msg))
        sl_addf(problems, "%s", msg);
    else if (msg[0])
        sl_addf(&in->notes, "%s", msg);
}

/* The checkpoint: found, a config that parses into a BERT this tokenizer and max_seq_length fit,
 * a tokenizer that loads, weights that parse and match their checksum. */
static void check_checkpoint(const job *J, inputs *in, strlist *problems) {
    char err[ERRLEN];
    if (find_checkpoint(&in->ck, J->cfg, &in->notes, err, sizeof err)) {
        sl_addf(problems, "%s", err);
        /* a folder without a config: say what else it lacks */
        const char *d = in->ck.dir;
        char p1[CORE_PATH_MAX + 32], p2[CORE_PATH_MAX + 32];
        if (!d[0] || !core_is_dir(d)) return;
        snprintf(p1, sizeof p1, "%s/tokenizer.json", d);
        snprintf(p2, sizeof p2, "%s/vocab.txt", d);
        if (!core_is_file(p1) && !core_is_file(p2))
            sl_addf(problems, "%s: no tokenizer (tokenizer.json or vocab.txt)", d);
        snprintf(p1, sizeof p1, "%s/model.safetensors", d);
        if (!core_is_file(p1)) sl_addf(problems, "%s: no weights file (model.safetensors)", d);
        return;
    }
    in->have_ck = true;
    const ckpt *c = &in->ck;
    char terr[TOK_ERRLEN];
    if (tok_load(&in->tok, c->dir, terr) != TOK_OK) {
        sl_addf(problems, "%s: cannot load the tokenizer: %s", c->dir, terr);
        in->tok = NULL;
    }
    in->arch_root = checkpoint_arch(c, J->cfg, err, sizeof err);
    if (!in->arch_root) sl_addf(problems, "%s", err);
    if (!c->verified) {
        char p[CORE_PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/model.safetensors", c->dir);
        st_file f = {0};
        bool summed = false;
        if (!core_is_file(p))
            sl_addf(problems, "%s: no weights file (model.safetensors)", c->dir);
        else if (st_open(&f, p, err, sizeof err) != ST_OK ||
                 st_verify(&f, &summed, err, sizeof err) != ST_OK)
            sl_addf(problems, "%s", err);
        st_close(&f);
    }
    bert_config bc;
    if (!in->tok || !in->arch_root) return;
    if (model_config_check(J, c, in->arch_root, in->tok, &bc, err, sizeof err))
        sl_addf(problems, "%s", err);
    else
        check_memory(J, &bc, in, problems);
}

/* Whether a command-line word needs quotes for a POSIX shell. */
static bool needs_quotes(const char *a) {
    if (!*a) return true;
    for (const char *p = a; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,^",
                    *p))
            return true;
    return false;
}

/* "cram eval <the same words, less the task list> 'eval/tasks=[a,b]'" into out. */
static void suggest_command(char *out, size_t len, int argc, char **argv, const strlist *tasks) {
    snprintf(out, len, "cram eval");
    for (int k = 0; k < argc; k++) {
        const char *a = argv[k];
        if (a[0] == '+') a++;
        if (strncmp(a, "eval/tasks=", 11) == 0) continue;
        size_t o = strlen(out);
        if (!needs_quotes(argv[k])) {
            snprintf(out + o, len - o, " %s", argv[k]);
            continue;
        }
        snprintf(out + o, len - o, " '");
        for (const char *p = argv[k]; *p; p++) { /* ' becomes '\'' */
            o = strlen(out);
            snprintf(out + o, len - o, *p == '\'' ? "'\\''" : "%c", *p);
        }
        o = strlen(out);
        snprintf(out + o, len - o, "'");
    }
    size_t o = strlen(out);
    snprintf(out + o, len - o, " 'eval/tasks=[");
    for (int k = 0; k < tasks->n; k++) {
        o = strlen(out);
        snprintf(out + o, len - o, "%s%s", k ? "," : "", tasks->s[k]);
    }
    o = strlen(out);
    snprintf(out + o, len - o, "]'");
}

/* Every input of the run, before any output folder exists or any step runs. Returns 0, or 2
 * after logging every problem at once and how to run with what is there. */
static int check_inputs(job *J, inputs *in, const char *derr, int argc, char **argv) {
    strlist problems = {0};
    if (J->mbs <= 0 || J->batch % J->mbs != 0)
        sl_addf(&problems, "eval.batch_size=%d must be a multiple of impl.microbatch_size=%d",
                J->batch, J->mbs);
    bool data_ok = false;
    if (derr[0])
        sl_addf(&problems, "eval.data_dir: %s", derr);
    else if (!core_is_dir(J->data_dir))
        sl_addf(&problems,
                "%s: GLUE data folder (eval.data_dir) not found. Get GLUE in the standard "
                "glue_data layout (CoLA/, SST-2/, MRPC/, ... each with train.tsv and dev.tsv, e.g. "
                "from the GLUE benchmark's download_glue_data.py) and set eval.data_dir to it "
                "(docs/eval.md)",
                J->data_dir);
    else
        data_ok = true;
    {
        adamw_hparams hp;
        double lr0;
        char err[ERRLEN];
        if (adamw_hparams_from_cfg(J->cfg, "eval.optim", &hp, &lr0, err, sizeof err))
            sl_addf(&problems, "%s", err);
        else if (hp.coupled)
            sl_addf(&problems, "eval.optim.type=Adam is not supported here (use AdamW)");
    }
    int nconfig = problems.n;
    const cfg_node *tasks = cfg_get(J->cfg, "eval.tasks");
    if (!tasks || tasks->type != CFG_MAP || tasks->n == 0)
        sl_addf(&problems, "eval.tasks: no tasks configured (e.g. eval/tasks=rte or "
                           "'eval/tasks=[cola,rte]')");
    else
        for (int k = 0; k < tasks->n; k++) {
            const glue_task *t = glue_task_find(tasks->keys[k]);
            if (!t) {
                sl_addf(&problems,
                        "eval.tasks.%s: not a GLUE task cram knows (cola, sst2, mrpc, stsb, qqp, "
                        "mnli, qnli, rte, wnli)",
                        tasks->keys[k]);
                continue;
            }
            if (data_ok && J->mbs > 0 && check_task_files(J, t, &problems, in))
                sl_addf(&in->tasks_ok, "%s", t->name);
        }
    in->ntask_problems = problems.n - nconfig - in->nsched_problems;
    int before_ck = problems.n;
    check_checkpoint(J, in, &problems);
    in->nother_problems = nconfig + in->nsched_problems + problems.n - before_ck;
    if (problems.n == 0) {
        sl_free(&problems);
        return 0;
    }

    for (int k = 0; k < in->notes.n; k++)
        core_log_info("%s", in->notes.s[k]);
    core_log_error("cram eval cannot start: %d problem(s) with its inputs, found before any "
                   "step ran (nothing was trained and no run folder was made):",
                   problems.n);
    for (int k = 0; k < problems.n; k++)
        core_log_error("  - %s", problems.s[k]);
    /* how to run with what is there */
    strlist present = {0};
    const char *whose = "configured tasks whose files are all present";
    if (in->ntask_problems && data_ok) {
        if (in->tasks_ok.n) {
            for (int k = 0; k < in->tasks_ok.n; k++)
                sl_addf(&present, "%s", in->tasks_ok.s[k]);
        } else { /* none of the configured ones: the tasks the folder does hold */
            whose = "GLUE tasks whose files eval.data_dir holds";
            for (int k = 0; k < glue_ntasks(); k++) {
                const glue_task *t = glue_task_at(k);
                char p1[CORE_PATH_MAX + 64], p2[CORE_PATH_MAX + 64];
                snprintf(p1, sizeof p1, "%s/%s/%s", J->data_dir, t->dir, t->train);
                snprintf(p2, sizeof p2, "%s/%s/%s", J->data_dir, t->dir, t->dev);
                if (core_is_file(p1) && core_is_file(p2)) sl_addf(&present, "%s", t->name);
            }
        }
        if (present.n) {
            char names[512] = "", cmd[4096];
            for (int k = 0; k < present.n; k++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "",
                         present.s[k]);
            suggest_command(cmd, sizeof cmd, argc, argv, &present);
            core_log_error("The %s: %s. To run %s%s:", whose, names,
                           present.n == 1 ? "that one" : "those",
                           in->nother_problems ? " once the other problems are fixed" : "");
            core_log_error("  %s", cmd);
        } else {
            core_log_error("eval.data_dir (%s) holds no GLUE task in the standard glue_data "
                           "layout (a task folder such as RTE/ with train.tsv and dev.tsv).",
                           J->data_dir);
        }
    }
    sl_free(&present);
    sl_free(&problems);
    return 2;
}

/* ---- the run folder ---- */

/* <base>/<name>/downstream/<date>/<time>/ and which of its parents this run made, so that a run
 * that stops before its first step can take the folder back. */
typedef struct run_folder {
    char dir[CORE_PATH_MAX];
    char made[4][CORE_PATH_MAX]; /* parents made by this run, innermost first */
    int nmade;
} run_folder;

static int run_folder_make(run_folder *rf, const char *base, const char *name, char *err,
                           size_t errlen) {
    memset(rf, 0, sizeof *rf);
    time_t now = time(NULL);
    char date[16], levels[4][CORE_PATH_MAX];
    core_local_time_format(date, sizeof date, now, "%Y-%m-%d");
    snprintf(levels[0], sizeof levels[0], "%s", base);
    snprintf(levels[1], sizeof levels[1], "%s/%s", base, name);
    snprintf(levels[2], sizeof levels[2], "%s/%s/downstream", base, name);
    snprintf(levels[3], sizeof levels[3], "%s/%s/downstream/%s", base, name, date);
    bool existed[4];
    for (int k = 0; k < 4; k++)
        existed[k] = core_is_dir(levels[k]);
    if (core_run_dir(rf->dir, sizeof rf->dir, base, name, "downstream", now, err, errlen))
        return -1;
    for (int k = 3; k >= 0; k--)
        if (!existed[k]) snprintf(rf->made[rf->nmade++], sizeof rf->made[0], "%s", levels[k]);
    return 0;
}

/* Removes what this run wrote into its folder (config.yaml, the log), the folder and the
 * parents it made, when they are empty. */
static void run_folder_remove(const run_folder *rf, const char *name) {
    char p[CORE_PATH_MAX + 128];
    snprintf(p, sizeof p, "%s/config.yaml", rf->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/%s_eval.log", rf->dir, name);
    unlink(p);
    DIR *d = opendir(rf->dir); /* the (empty) TensorBoard event file */
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, "events.out.tfevents.", 20) == 0) {
            snprintf(p, sizeof p, "%s/%s", rf->dir, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
    if (rmdir(rf->dir) != 0) return;
    for (int k = 0; k < rf->nmade; k++)
        if (rmdir(rf->made[k]) != 0) return;
}

/* ---- the job ---- */

static void usage(FILE *f) {
    fputs(
        "usage: cram eval [--config-dir=DIR] [KEY=VALUE | GROUP=OPTION ...]\n"
        "\n"
        "Fine-tunes a pretrained checkpoint on each GLUE task of the list, scores it on the dev\n"
        "split after every epoch and reports the last epoch's numbers, their mean over the tasks,\n"
        "metrics_<name>.yaml in the run folder <base_dir>/<name>/downstream/<date>/<time>/ and a\n"
        "row in tables/table_downstream_reports.csv. Every input is checked before the first\n"
        "step; missing ones are listed together (exit status 2).\n"
        "\n"
        "Main keys:\n"
        "  eval.checkpoint=latest      newest complete checkpoint of run <name> (default)\n"
        "  eval.checkpoint=smallest    the one with the smallest loss in its folder name\n"
        "  eval.checkpoint=FOLDER      a folder under <base_dir>/<name>/checkpoints/, or an\n"
        "                              absolute path to a checkpoint folder\n"
        "  eval.checkpoint=hf:FOLDER   a local Hugging Face BERT folder (config.json,\n"
        "                              model.safetensors, vocab.txt or tokenizer.json)\n"
        "  eval.data_dir=DIR           GLUE in the standard glue_data layout (CoLA/, SST-2/,\n"
        "                              MRPC/, STS-B/, QQP/, MNLI/, QNLI/, RTE/, WNLI/); a "
        "relative\n"
        "                              path is taken under impl.path (default data/glue_data)\n"
        "  eval=GLUE_sane              the task list and hyperparameters of a preset (default)\n"
        "  eval/tasks=rte, 'eval/tasks=[cola,rte]'   only these tasks\n"
        "  eval.epochs=N, eval.batch_size=N, eval.optim.lr=X, eval.max_seq_length=N\n"
        "  impl.microbatch_size=N      examples per forward pass (speed only; gradients are\n"
        "                              accumulated up to eval.batch_size)\n"
        "  impl.device=auto|cpu|cuda, impl.precision=auto|fp32|bf16, impl.threads=N\n"
        "                              where it runs and in which precision\n"
        "  name=X, base_dir=DIR, seed=N, dryrun=True (one step per task, no table row)\n"
        "\n"
        "Progress: a bar on a terminal; otherwise a line about every 30 s (step, loss, tokens/s,\n"
        "ETA of the task; rows done during validation).\n"
        "\n"
        "Examples:\n"
        "  cram eval name=X eval.checkpoint=latest eval.data_dir=/path/to/glue_data \\\n"
        "      impl.microbatch_size=16\n"
        "  cram eval 'eval/tasks=[rte,mrpc]' eval.epochs=3 eval.data_dir=/path/to/glue_data \\\n"
        "      eval.checkpoint=hf:data/hf/all-MiniLM-L6-v2\n"
        "\n"
        "More in docs/eval.md.\n",
        f);
}

typedef struct backend_pick {
    const ops *ops;
    const char *why;
} backend_pick;

/* The seconds between progress lines when stdout is not a terminal: 30, or the test hook
 * CRAM_TEST_EVAL_PROGRESS_S (a number >= 0; 0 prints a line after every step and batch). */
static double progress_period(void) {
    const char *env = getenv("CRAM_TEST_EVAL_PROGRESS_S");
    if (!env || !*env) return 30.0;
    char *end;
    double v = strtod(env, &end);
    if (end == env || *end || !(v >= 0) || isinf(v)) {
        core_log_warn("CRAM_TEST_EVAL_PROGRESS_S=%s ignored: expected a number of seconds >= 0",
                      env);
        return 30.0;
    }
    core_log_info("Test hook CRAM_TEST_EVAL_PROGRESS_S=%s: a progress line every %g s.", env, v);
    return v;
}

static int job_main(cfg_node *cfg, const backend_pick *bc, int argc, char **argv) {
    char err[ERRLEN] = "";
    core_log_init(0);
    job J = {.cfg = cfg, .carry_warmup = -1};
    const char *name = cfg_str_or(cfg, "name", "default"),
               *base = cfg_str_or(cfg, "base_dir", "outputs");
    J.dryrun = cfg_bool_or(cfg, "dryrun", false);
    J.batch = (int)cfg_int_or(cfg, "eval.batch_size", 16);
    J.mbs = (int)cfg_int_or(cfg, "impl.microbatch_size", 16);
    J.epochs = (int)cfg_int_or(cfg, "eval.epochs", 5);
    J.max_len = (int)cfg_int_or(cfg, "eval.max_seq_length", 128);
    J.shuffle = cfg_bool_or(cfg, "impl.shuffle_in_dataloader", false);
    J.train_mode = cfg_bool_or(cfg, "eval.eval_in_train_mode", true);
    J.tty = isatty(STDOUT_FILENO);
    if (J.mbs > J.batch) {
        /* the reference rejects this; impl changes speed only, so cram takes the batch size */
        J.mbs = J.batch;
    }
    /* eval.data_dir: absolute, or under impl.path, resolved as the token stores resolve it
     * (data_root: relative to the launch directory, ~ expanded) */
    const char *dd = cfg_str_or(cfg, "eval.data_dir", "glue_data");
    char root[CORE_PATH_MAX], derr[512] = "";
    if (dd[0] == '/')
        snprintf(J.data_dir, sizeof J.data_dir, "%s", dd);
    else if (data_root(root, sizeof root, cfg, derr, sizeof derr) == 0)
        snprintf(J.data_dir, sizeof J.data_dir, "%s/%s", root, dd);
    J.ops = bc->ops;
    train_device_init(&J.dev, J.ops, 0);

    /* every input before any folder or step */
    inputs in = {0};
    if (check_inputs(&J, &in, derr, argc, argv)) {
        inputs_free(&in);
        return 2;
    }
    const ckpt ck = in.ck;
    const tok_tokenizer *tok = in.tok;
    J.tok = tok;
    J.arch_root = in.arch_root;
    J.ck = &ck;
    const cfg_node *tasks = cfg_get(cfg, "eval.tasks");

    run_folder rf;
    if (run_folder_make(&rf, base, name, err, sizeof err)) {
        fprintf(stderr, "cram eval: %s\n", err);
        inputs_free(&in);
        return 1;
    }
    const char *run_dir = rf.dir;
    if (!(J.tb = tboard_open(run_dir, err, sizeof err)))
        core_log_warn("no TensorBoard events: %s", err);
    char path[CORE_PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/%s_eval.log", run_dir, name);
    if (core_log_open_file(path) != 0) core_log_warn("cannot open the log file %s", path);
    cfg_node *sn = cfg_get(cfg, "seed");
    if (!sn || sn->type == CFG_NULL) {
        cfg_node *v = cfg_new(CFG_INT);
        v->i = (int64_t)core_draw_seed();
        cfg_map_set(cfg, "seed", v);
    }
    J.seed = (uint64_t)cfg_int_or(cfg, "seed", 0);
    core_log_info("Backend: %s (%s).", bc->ops->desc, bc->why);
    train_device_log(&J.dev);
    core_log_info("Seeding with random seed %llu on rank 0.", (unsigned long long)J.seed);
    J.progress_every_s = progress_period();
    core_log_info("--------------------------------------------------------------");
    core_log_info("-----------Launching downstream finetuning! -------------------");
    {
        char *yaml = cfg_to_yaml(cfg);
        core_log_info("Resolved configuration:\n%s", yaml);
        snprintf(path, sizeof path, "%s/config.yaml", run_dir);
        core_atomic_write(path, yaml, strlen(yaml), err, sizeof err);
        free(yaml);
    }
    for (int k = 0; k < in.notes.n; k++)
        core_log_info("%s", in.notes.s[k]);
    core_log_info("Checkpoint: %s (%s)", ck.dir, ck.hf ? "Hugging Face folder" : "cram");
    core_log_info("Inputs checked: the checkpoint and the files of %d task(s).", in.tasks_ok.n);
    for (int k = 0; k < in.task_rows.n; k++)
        core_log_info("%s", in.task_rows.s[k]);

    task_result *res = calloc((size_t)tasks->n, sizeof *res);
    int nres = 0, rc = 0;
    for (int k = 0; k < tasks->n; k++) {
        const glue_task *t = glue_task_find(tasks->keys[k]);
        if (run_task(&J, t, &res[nres], err, sizeof err)) {
            core_log_error("%s", err);
            rc = 2;
            break;
        }
        nres++;
    }
    /* tasks whose training diverged: no score, no means, no table row, exit status 1 */
    int nfailed = 0;
    char failed[256] = "";
    for (int k = 0; k < nres; k++)
        if (res[k].failed)
            snprintf(failed + strlen(failed), sizeof failed - strlen(failed), "%s%s",
                     nfailed++ ? ", " : "", res[k].t->name);
    if (rc == 0) {
        /* the target metrics of every task (config order), then their means */
        double tv[32];
        int nt = 0;
        char *mk[96], *mv[96];
        int nm = 0;
        char buf[64];
        for (int k = 0; k < nres; k++) {
            const task_result *R = &res[k];
            if (R->failed) continue;
            const cfg_node *tm = cfg_get(cfg_map_get(tasks, R->t->name), "target_metrics");
            for (int j = 0; j < R->t->nmetrics; j++) {
                for (int x = 0; x < (R->has_extra ? 2 : 1); x++) {
                    double v = x ? R->extra[j] : R->v[j];
                    char key[96];
                    snprintf(key, sizeof key, "%s%s", metric_name(R->t->metrics[j]),
                             x ? "_extra" : "");
                    bool target = false;
                    if (tm && tm->type == CFG_LIST)
                        for (int q = 0; q < tm->n; q++)
                            if (tm->items[q]->type == CFG_STR && strcmp(tm->items[q]->s, key) == 0)
                                target = true;
                    if (target && nt < 32) tv[nt++] = v;
                    char full[128];
                    snprintf(full, sizeof full, "%s_%s", R->t->name, key);
                    snprintf(buf, sizeof buf, "%.17g", v);
                    mk[nm] = strdup(full), mv[nm] = strdup(buf), nm++;
                }
            }
        }
        const char *ename = cfg_str_or(cfg, "eval.name", "GLUE");
        double am = metric_amean(tv, nt), hm = metric_hmean(tv, nt);
        if (nfailed) {
            core_log_error("No overall average metric on evaluation %s: %d task(s) failed (%s).",
                           ename, nfailed, failed);
        } else {
            core_log_info("Overall average metric on evaluation %s is %.2f.", ename, am);
            char tag[160];
            snprintf(tag, sizeof tag, "%s/amean", ename);
            tboard_scalar(J.tb, tag, 0, am);
            snprintf(tag, sizeof tag, "%s/hmean", ename);
            tboard_scalar(J.tb, tag, 0, hm);
            char k1[96], k2[96];
            snprintf(k1, sizeof k1, "%s_amean", ename), snprintf(k2, sizeof k2, "%s_hmean", ename);
            snprintf(buf, sizeof buf, "%.17g", am);
            mk[nm] = strdup(k1), mv[nm] = strdup(buf), nm++;
            snprintf(buf, sizeof buf, "%.17g", hm);
            mk[nm] = strdup(k2), mv[nm] = strdup(buf), nm++;
        }
        /* metrics_<name>.yaml: the metrics, then the system keys the reference adds */
        train_device_mem mem;
        train_device_mem_read(&mem, &J.dev);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        size_t cap = 1024 + (size_t)nm * 160, len = 0;
        char *y = malloc(cap);
        for (int k = 0; k < nm; k++)
            len += (size_t)snprintf(y + len, cap - len, "%s: %s\n", mk[k], mv[k]);
        len += (size_t)train_format_system_yaml(y + len, cap - len, &J.dev, &mem, 1,
                                                (double)ru.ru_maxrss / (1024.0 * 1024.0));
        snprintf(path, sizeof path, "%s/metrics_%s.yaml", run_dir, name);
        if (core_atomic_write(path, y, len, err, sizeof err)) core_log_warn("%s", err);
        free(y);
        if (mem.valid) {
            char line[512];
            train_device_mem_line(line, sizeof line, &mem);
            core_log_info("%s", line);
        }
        /* the summary table: one row per run (not in dryrun; not when a task failed, since the
         * row stands for the whole evaluation) */
        if (nfailed && !J.dryrun)
            core_log_info("No row in tables/table_downstream_reports.csv: %d task(s) failed.",
                          nfailed);
        if (!J.dryrun && !nfailed) {
            char *tk[128], *tvv[128];
            int n = 0;
            tk[n] = strdup("name"), tvv[n++] = strdup(name);
            tk[n] = strdup("checkpoint"), tvv[n++] = strdup(ck.dir);
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)J.seed);
            tk[n] = strdup("seed"), tvv[n++] = strdup(buf);
            for (int k = 0; k < nm && n < 100; k++)
                tk[n] = strdup(mk[k]), tvv[n++] = strdup(mv[k]);
            tk[n] = strdup("impl_path"), tvv[n++] = strdup(cfg_str_or(cfg, "impl.path", "data"));
            tk[n] = strdup("local_folder"), tvv[n++] = strdup(run_dir);
            static const char *ekeys[] = {"name",           "optim.lr",  "batch_size",
                                          "epochs",         "scheduler", "warmup_steps",
                                          "max_seq_length", "data_dir"};
            for (size_t k = 0; k < sizeof ekeys / sizeof *ekeys; k++) {
                char p[64], key[80];
                snprintf(p, sizeof p, "eval.%s", ekeys[k]);
                snprintf(key, sizeof key, "Eval_%s", ekeys[k]);
                const cfg_node *v = cfg_get(cfg, p);
                char *txt = v ? cfg_canonical_json(v) : strdup("");
                tk[n] = strdup(key), tvv[n++] = txt;
            }
            if (core_table_append("tables", "downstream_reports", tk, tvv, n, err, sizeof err))
                core_log_warn("%s", err);
            for (int k = 0; k < n; k++)
                free(tk[k]), free(tvv[k]);
        }
        /* a small human-readable table */
        printf("\n%-8s %-22s %8s %8s %9s\n", "task", "metric", "value", "steps", "time");
        for (int k = 0; k < nres; k++) {
            const task_result *R = &res[k];
            if (R->failed) {
                printf("%-8s %-22s %8s\n", R->t->name, "FAILED (non-finite)", "-");
                continue;
            }
            for (int j = 0; j < R->t->nmetrics; j++) {
                char tm[32];
                core_format_timedelta(tm, sizeof tm, R->seconds);
                printf("%-8s %-22s %8.2f %8lld %9.9s\n", R->t->name, metric_name(R->t->metrics[j]),
                       100 * R->v[j], (long long)R->steps, tm);
                if (R->has_extra)
                    printf("%-8s %-22s %8.2f\n", "", "accuracy_extra (mm)", 100 * R->extra[j]);
            }
        }
        if (!nfailed)
            printf("%-8s %-22s %8.2f\n%-8s %-22s %8.2f\n", ename, "amean", 100 * am, "", "hmean",
                   100 * hm);
        printf("run folder: %s\n", run_dir);
        for (int k = 0; k < nm; k++)
            free(mk[k]), free(mv[k]);
        if (nfailed) rc = 1;
    }
    free(res);
    tboard_close(J.tb);
    J.tb = NULL;
    if (rc == 2 && !J.trained) {
        /* stopped before its first step (e.g. weights that do not load): everything it said is
         * on the terminal, and an almost empty run folder would only be clutter */
        core_log_info("No step ran: removing the run folder %s.", run_dir);
        core_log_close();
        run_folder_remove(&rf, name);
    }
    core_log_close();
    inputs_free(&in);
    return rc;
}

int glue_cli_main(int argc, char **argv) {
    for (int k = 1; k < argc; k++)
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    int shown = cfg_cli_cfg_flag("eval", "cram eval", argc - 1, argv + 1);
    if (shown >= 0) return shown; /* --cfg job: the configuration, no run */
    cfg_error ce = {0};
    cfg_node *cfg = cfg_from_args("eval", argc - 1, argv + 1, &ce);
    if (!cfg) {
        fprintf(stderr, "cram eval: %s\n", ce.msg);
        return ce.code ? ce.code : 2;
    }
    /* the backend: impl.device, impl.precision and impl.threads */
    char err[ERRLEN];
    backend_choice choice;
    const ops *o = NULL;
    if (backend_choose(&choice, cfg, err, sizeof err) == 0)
        o = backend_open(&choice, 0, err, sizeof err);
    if (!o) {
        fprintf(stderr, "cram eval: %s\n", err);
        cfg_free(cfg);
        return 2;
    }
    backend_pick pick = {.ops = o, .why = choice.why};
    int rc = job_main(cfg, &pick, argc - 1, argv + 1);
    backend_close(o);
    cfg_free(cfg);
    return rc;
}
