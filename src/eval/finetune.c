/* `cram eval`: find a checkpoint (cram or a local Hugging Face folder), then for every task of
 * eval.tasks build the sequence classifier (SPEC §2.6), fine-tune it (AdamW, schedule per µstep,
 * dropout on, microbatch accumulation), validate after every epoch and report the last epoch's
 * metrics; finally the GLUE means, metrics_<name>.yaml, a downstream table row and a summary. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Paths and messages are bounded buffers; a truncated path fails later with a message that
 * shows it, so the compiler's truncation warnings add nothing here. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "core/core.h"
#include "eval/eval.h"
#include "model/safetensors.h"

#include "data/data.h"
#include "optim/adamw.h"
#include "optim/sched.h"
#include "ops/backend.h"

#define ERRLEN 1024

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

/* latest / smallest: the best complete folder of root; every folder passed over is logged with
 * the reason. */
static int pick_checkpoint(ckpt *c, const char *root, const char *want, const char *name, char *err,
                           size_t errlen) {
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
            core_log_info("Skipping checkpoint folder %s: half-written (the temporary folder of a "
                          "save that was killed or failed).",
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
                core_log_info("Skipping checkpoint folder %s: no loss after the last '_' of its "
                              "name.",
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
            core_log_info("Skipping checkpoint folder %s: %s", p, why);
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
        core_log_info("eval.checkpoint=%s: %d folder(s) skipped, using %s.", want, skipped, c->dir);
    return 0;
}

/* eval.checkpoint: latest | smallest | hf:PATH | hf://PATH | an absolute path | a sub-folder of
 * <base_dir>/<name>/checkpoints. */
static int find_checkpoint(ckpt *c, const cfg_node *cfg, char *err, size_t errlen) {
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
        if (pick_checkpoint(c, root, want, name, err, errlen)) return -1;
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
} job;

/* bytes of one padded [mbs, S] batch buffer: S is at most max_len rounded up to 8 */
static size_t batch_bytes(const job *J) {
    return (size_t)J->mbs * (size_t)((J->max_len + 7) / 8 * 8) * 4;
}

static int validate(bert_model *m, const glue_encoded *e, const glue_task *t, const job *J,
                    double *out, int *nmetrics) {
    size_t n = e->n;
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
    }
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
    if (bert_config_from_cfg(&c, J->arch_root, 0, err, errlen)) {
        char tmp[ERRLEN];
        snprintf(tmp, sizeof tmp, "%s/%s: %s", J->ck->dir,
                 J->ck->hf ? "config.json" : "model_config.json", err);
        snprintf(err, errlen, "%s", tmp);
        return -1;
    }
    if (c.V != tok_vocab_size(J->tok)) {
        snprintf(err, errlen,
                 "%s: the model's vocabulary has %d entries but the checkpoint's tokenizer has %d",
                 J->ck->dir, c.V, tok_vocab_size(J->tok));
        return -1;
    }
    if (c.kind == BERT_ARCH_SANITY) {
        snprintf(err, errlen, "%s: a SanityCheckLM checkpoint cannot be fine-tuned", J->ck->dir);
        return -1;
    }
    if ((J->max_len + 7) / 8 * 8 > c.max_pos) { /* batches are padded to a multiple of 8 */
        snprintf(err, errlen,
                 "eval.max_seq_length=%d (padded to a multiple of 8) exceeds the %d positions of "
                 "the checkpoint %s",
                 J->max_len, c.max_pos, J->ck->dir);
        return -1;
    }
    c.num_labels = t->nlabels;
    bert_model m;
    bert_init(&m, &c, J->ops);
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
        for (b = 0; b < nsteps; b++, ustep++) {
            int S = glue_batch(&etr, order + b * J->mbs, J->mbs, pad < 0 ? 0 : pad, 8, ids, mask,
                               labels, targets);
            bool reg = t->nlabels == 1;
            loss = bert_forward_cls(&m, ids, NULL, mask, reg ? NULL : labels, reg ? targets : NULL,
                                    J->mbs, S, J->train_mode, J->seed, (uint64_t)ustep);
            if (!isfinite(loss)) {
                /* the reference stops a pretraining run on a non-finite loss; a diverged
                 * fine-tuning has no meaningful score either */
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
            sum += loss;
            if ((ustep + 1) % accum == 0)
                adamw_model_step(&m, NULL, &hp, sched_lr(&s, ustep, 0), clip, ++t_opt);
        }
        if (!R->failed && !weights_finite(&m)) {
            /* the last update of the epoch can break the weights after the last loss */
            core_log_error("Non-finite weights after step %lld of task %s (epoch %d): the task "
                           "failed and gets no score.",
                           (long long)ustep - 1, t->name, ep);
            R->failed = true;
        }
        if (R->failed) break;
        double dt = core_now() - t0;
        char eta[64];
        core_format_timedelta(eta, sizeof eta, dt * J->epochs);
        double tps = (double)b * J->max_len * J->mbs / (dt > 0 ? dt : 1e-9);
        core_log_info("Train loss %2.4f at step %lld with lr %.5f. [Avg: %2.4f] after epoch %d. "
                      "Perf: %2.4fmin per epoch (%.0ft/s). Estimated Total Train: %s.",
                      loss, (long long)(b - 1), sched_lr(&s, ustep, 0), sum / (double)(b ? b : 1),
                      ep, dt / 60, tps, eta);
        int nmet;
        validate(&m, &edv, t, J, R->v, &nmet);
        char msg[256];
        metric_msg(msg, sizeof msg, t, R->v, "");
        core_log_info("Validation metric is %s after epoch %d.", msg, ep);
    }
    if (t->dev_extra && !R->failed) {
        int nmet;
        validate(&m, &edx, t, J, R->extra, &nmet);
        R->has_extra = true;
        char msg[256];
        metric_msg(msg, sizeof msg, t, R->extra, "_extra");
        core_log_info("Extra validation metric is %s after finetuning.", msg);
    }
    R->steps = steps;
    R->seconds = core_now() - t_start;
    free(order), free(ids), free(labels), free(mask), free(targets);
    bert_free(&m);
    return 0;
}

/* ---- the job ---- */

static void usage(FILE *f) {
    fputs("usage: cram eval [--config-dir=DIR] [overrides...]\n\n"
          "Fine-tune and score a checkpoint on GLUE (SPEC 5). Examples:\n"
          "  cram eval name=X eval.checkpoint=latest impl.microbatch_size=16\n"
          "  cram eval eval/tasks=rte eval.data_dir=/path/to/glue_data "
          "eval.checkpoint=hf:data/hf/all-MiniLM-L6-v2\n"
          "eval.data_dir is a folder in the standard glue_data layout (CoLA/, SST-2/, MRPC/, "
          "STS-B/, QQP/, MNLI/, QNLI/, RTE/, WNLI/);\na relative one is taken under impl.path "
          "(data/ in the launch directory by default). See docs/eval.md.\n",
          f);
}

typedef struct backend_pick {
    const ops *ops;
    const char *why;
} backend_pick;

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
    if (J.mbs > J.batch) {
        /* the reference rejects this; impl changes speed only, so cram takes the batch size */
        J.mbs = J.batch;
    }
    if (J.mbs <= 0 || J.batch % J.mbs != 0) {
        fprintf(stderr,
                "cram eval: eval.batch_size=%d must be a multiple of impl.microbatch_size=%d\n",
                J.batch, J.mbs);
        return 2;
    }
    /* eval.data_dir: absolute, or under impl.path, resolved as the token stores resolve it
     * (data_root: relative to the launch directory, ~ expanded) */
    const char *dd = cfg_str_or(cfg, "eval.data_dir", "glue_data");
    char root[CORE_PATH_MAX], derr[512] = "";
    if (dd[0] == '/') {
        snprintf(J.data_dir, sizeof J.data_dir, "%s", dd);
    } else if (data_root(root, sizeof root, cfg, derr, sizeof derr) == 0) {
        snprintf(J.data_dir, sizeof J.data_dir, "%s/%s", root, dd);
    } else {
        fprintf(stderr, "cram eval: %s\n", derr);
        return 2;
    }

    J.ops = bc->ops;

    char run_dir[CORE_PATH_MAX];
    if (core_run_dir(run_dir, sizeof run_dir, base, name, "downstream", time(NULL), err,
                     sizeof err)) {
        fprintf(stderr, "cram eval: %s\n", err);
        return 1;
    }
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
    core_log_info("Seeding with random seed %llu on rank 0.", (unsigned long long)J.seed);
    core_log_info("--------------------------------------------------------------");
    core_log_info("-----------Launching downstream finetuning! -------------------");
    {
        char *yaml = cfg_to_yaml(cfg);
        core_log_info("Resolved configuration:\n%s", yaml);
        snprintf(path, sizeof path, "%s/config.yaml", run_dir);
        core_atomic_write(path, yaml, strlen(yaml), err, sizeof err);
        free(yaml);
    }
    (void)argc, (void)argv;

    ckpt ck;
    if (find_checkpoint(&ck, cfg, err, sizeof err)) {
        core_log_error("%s", err);
        return 2;
    }
    core_log_info("Checkpoint: %s (%s)", ck.dir, ck.hf ? "Hugging Face folder" : "cram");
    tok_tokenizer *tok = NULL;
    char terr[TOK_ERRLEN];
    if (tok_load(&tok, ck.dir, terr) != TOK_OK) {
        core_log_error("%s: cannot load the tokenizer: %s", ck.dir, terr);
        return 2;
    }
    J.tok = tok;
    cfg_node *arch_root = checkpoint_arch(&ck, cfg, err, sizeof err);
    if (!arch_root) {
        core_log_error("%s", err);
        tok_free(tok);
        return 2;
    }
    J.arch_root = arch_root;
    J.ck = &ck;

    const cfg_node *tasks = cfg_get(cfg, "eval.tasks");
    if (!tasks || tasks->type != CFG_MAP || tasks->n == 0) {
        core_log_error("eval.tasks: no tasks configured");
        return 2;
    }
    task_result *res = calloc((size_t)tasks->n, sizeof *res);
    int nres = 0, rc = 0;
    for (int k = 0; k < tasks->n; k++) {
        const glue_task *t = glue_task_find(tasks->keys[k]);
        if (!t) {
            core_log_error(
                "eval.tasks.%s: not a GLUE task cram knows (cola, sst2, mrpc, stsb, qqp, "
                "mnli, qnli, rte, wnli)",
                tasks->keys[k]);
            rc = 2;
            break;
        }
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
            char k1[96], k2[96];
            snprintf(k1, sizeof k1, "%s_amean", ename), snprintf(k2, sizeof k2, "%s_hmean", ename);
            snprintf(buf, sizeof buf, "%.17g", am);
            mk[nm] = strdup(k1), mv[nm] = strdup(buf), nm++;
            snprintf(buf, sizeof buf, "%.17g", hm);
            mk[nm] = strdup(k2), mv[nm] = strdup(buf), nm++;
        }
        /* metrics_<name>.yaml */
        size_t cap = 256 + (size_t)nm * 160, len = 0;
        char *y = malloc(cap);
        for (int k = 0; k < nm; k++)
            len += (size_t)snprintf(y + len, cap - len, "%s: %s\n", mk[k], mv[k]);
        snprintf(path, sizeof path, "%s/metrics_%s.yaml", run_dir, name);
        if (core_atomic_write(path, y, len, err, sizeof err)) core_log_warn("%s", err);
        free(y);
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
    cfg_free(arch_root);
    tok_free(tok);
    core_log_close();
    return rc;
}

int glue_cli_main(int argc, char **argv) {
    for (int k = 1; k < argc; k++)
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            usage(stdout);
            return 0;
        }
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
