/* The GLUE task table (each task's files, columns, labels and metrics, in the standard
 * glue_data layout), the TSV reader, pair encoding and dynamic padding. Files are read as plain
 * TAB-split lines: quotes are ordinary characters (GLUE sentences hold unbalanced ones). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Paths and messages are bounded buffers; a truncated path fails later with a message that
 * shows it, so the compiler's truncation warnings add nothing here. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "core/core.h"
#include "eval/eval.h"

#define M1(a)                                                                                      \
    1, {                                                                                           \
        a                                                                                          \
    }
#define M2(a, b)                                                                                   \
    2, {                                                                                           \
        a, b                                                                                       \
    }

static const glue_task tasks[] = {
    {"cola",
     "CoLA",
     "train.tsv",
     "dev.tsv",
     NULL,
     false,
     NULL,
     NULL,
     NULL,
     3,
     -1,
     1,
     2,
     {"0", "1"},
     {"unacceptable", "acceptable"},
     M1(METRIC_MCC)},
    {"sst2",
     "SST-2",
     "train.tsv",
     "dev.tsv",
     NULL,
     true,
     "sentence",
     NULL,
     "label",
     0,
     -1,
     0,
     2,
     {"0", "1"},
     {"negative", "positive"},
     M1(METRIC_ACCURACY)},
    {"mrpc",
     "MRPC",
     "train.tsv",
     "dev.tsv",
     NULL,
     true,
     "#1 String",
     "#2 String",
     "Quality",
     0,
     0,
     0,
     2,
     {"0", "1"},
     {"not_equivalent", "equivalent"},
     M2(METRIC_F1, METRIC_ACCURACY)},
    {"stsb",
     "STS-B",
     "train.tsv",
     "dev.tsv",
     NULL,
     true,
     "sentence1",
     "sentence2",
     "score",
     0,
     0,
     0,
     1,
     {NULL},
     {NULL},
     M2(METRIC_PEARSON, METRIC_SPEARMAN)},
    {"qqp",
     "QQP",
     "train.tsv",
     "dev.tsv",
     NULL,
     true,
     "question1",
     "question2",
     "is_duplicate",
     0,
     0,
     0,
     2,
     {"0", "1"},
     {"not_duplicate", "duplicate"},
     M2(METRIC_F1, METRIC_ACCURACY)},
    {"mnli",
     "MNLI",
     "train.tsv",
     "dev_matched.tsv",
     "dev_mismatched.tsv",
     true,
     "sentence1",
     "sentence2",
     "gold_label",
     0,
     0,
     0,
     3,
     {"entailment", "neutral", "contradiction"},
     {"entailment", "neutral", "contradiction"},
     M1(METRIC_ACCURACY)},
    {"qnli",
     "QNLI",
     "train.tsv",
     "dev.tsv",
     NULL,
     true,
     "question",
     "sentence",
     "label",
     0,
     0,
     0,
     2,
     {"entailment", "not_entailment"},
     {"entailment", "not_entailment"},
     M1(METRIC_ACCURACY)},
    {"rte",
     "RTE",
     "train.tsv",
     "dev.tsv",
     NULL,
     true,
     "sentence1",
     "sentence2",
     "label",
     0,
     0,
     0,
     2,
     {"entailment", "not_entailment"},
     {"entailment", "not_entailment"},
     M1(METRIC_ACCURACY)},
    {"wnli",
     "WNLI",
     "train.tsv",
     "dev.tsv",
     NULL,
     true,
     "sentence1",
     "sentence2",
     "label",
     0,
     0,
     0,
     2,
     {"0", "1"},
     {"not_entailment", "entailment"},
     M1(METRIC_ACCURACY)},
};
static const int ntasks = (int)(sizeof tasks / sizeof *tasks);

int glue_ntasks(void) {
    return ntasks;
}
const glue_task *glue_task_at(int k) {
    return k >= 0 && k < ntasks ? &tasks[k] : NULL;
}
const glue_task *glue_task_find(const char *name) {
    for (int k = 0; k < ntasks; k++)
        if (strcmp(tasks[k].name, name) == 0) return &tasks[k];
    return NULL;
}

void glue_split_free(glue_split *s) {
    if (!s) return;
    free(s->path), free(s->buf), free(s->ex);
    memset(s, 0, sizeof *s);
}

/* Split one line (NUL-terminated, in place) at TABs; returns the field count (up to max). */
static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p; p++)
        if (*p == '\t') {
            *p = 0;
            if (n < max)
                f[n++] = p + 1;
            else
                return max + 1;
        }
    return n;
}

#define GLUE_MAX_COLS 64

static int find_col(char **hdr, int nh, const char *name) {
    for (int k = 0; k < nh; k++)
        if (strcmp(hdr[k], name) == 0) return k;
    return -1;
}

static int parse_label(const glue_task *t, const char *s, glue_example *e) {
    if (t->nlabels == 1) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || *end || errno || !isfinite(v)) return -1;
        e->target = (float)v, e->label = 0;
        return 0;
    }
    for (int k = 0; k < t->nlabels; k++)
        if (strcmp(s, t->labels[k]) == 0) {
            e->label = k, e->target = (float)k;
            return 0;
        }
    return -1;
}

int glue_parse(glue_split *s, const glue_task *t, const char *buf, size_t len, const char *name,
               char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->path = strdup(name);
    s->buf = malloc(len + 1);
    if (!s->path || !s->buf) return core_errorf(err, errlen, "%s: out of memory", name);
    memcpy(s->buf, buf, len);
    s->buf[len] = 0;
    if (memchr(s->buf, 0, len)) {
        glue_split_free(s);
        return core_errorf(err, errlen, "%s: contains a NUL byte: not a GLUE TSV file", name);
    }
    char *p = s->buf;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* MRPC's BOM */
    size_t cap = 0;
    int ia = t->idx_a, ib = t->idx_b, il = t->idx_label, need = 0, lineno = 0;
    char *f[GLUE_MAX_COLS + 1];
    bool first = true;
    while (*p) {
        char *line = p, *nl = strchr(p, '\n');
        if (nl)
            *nl = 0, p = nl + 1;
        else
            p += strlen(p);
        lineno++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') line[--ll] = 0;
        if (first && t->header) {
            first = false;
            int nh = split_tabs(line, f, GLUE_MAX_COLS);
            if (nh > GLUE_MAX_COLS) nh = GLUE_MAX_COLS;
            ia = find_col(f, nh, t->col_a);
            ib = t->col_b ? find_col(f, nh, t->col_b) : -1;
            il = find_col(f, nh, t->col_label);
            const char *miss = ia < 0                 ? t->col_a
                               : (t->col_b && ib < 0) ? t->col_b
                               : il < 0               ? t->col_label
                                                      : NULL;
            if (miss) {
                glue_split_free(s);
                return core_errorf(
                    err, errlen,
                    "%s:1: wrong columns for task %s: no column named '%s' in the header "
                    "(expected the standard glue_data %s layout)",
                    name, t->name, miss, t->dir);
            }
            continue;
        }
        first = false;
        if (ll == 0) continue; /* blank line (e.g. a trailing one) */
        need = ia > ib ? ia : ib;
        if (il > need) need = il;
        int nf = split_tabs(line, f, GLUE_MAX_COLS);
        if (nf <= need) {
            glue_split_free(s);
            return core_errorf(
                err, errlen,
                "%s:%d: wrong columns for task %s: %d TAB-separated field(s), need at least "
                "%d",
                name, lineno, t->name, nf, need + 1);
        }
        if (s->n == cap) {
            cap = cap ? 2 * cap : 1024;
            glue_example *ne = realloc(s->ex, cap * sizeof *ne);
            if (!ne) {
                glue_split_free(s);
                return core_errorf(err, errlen, "%s: out of memory", name);
            }
            s->ex = ne;
        }
        glue_example *e = &s->ex[s->n];
        e->a = f[ia], e->alen = (uint32_t)strlen(f[ia]);
        e->b = ib >= 0 ? f[ib] : "", e->blen = ib >= 0 ? (uint32_t)strlen(f[ib]) : 0;
        if (parse_label(t, f[il], e)) {
            char shown[48];
            snprintf(shown, sizeof shown, "%s", f[il]);
            glue_split_free(s);
            if (t->nlabels == 1)
                return core_errorf(err, errlen, "%s:%d: task %s: label '%s' is not a number", name,
                                   lineno, t->name, shown);
            return core_errorf(err, errlen,
                               "%s:%d: task %s: unknown label '%s' (expected %s%s%s%s%s)", name,
                               lineno, t->name, shown, t->labels[0], t->nlabels > 1 ? ", " : "",
                               t->nlabels > 1 ? t->labels[1] : "", t->nlabels > 2 ? ", " : "",
                               t->nlabels > 2 ? t->labels[2] : "");
        }
        s->n++;
    }
    if (s->n == 0) {
        glue_split_free(s);
        return core_errorf(err, errlen, "%s: task %s: the split is empty (no example rows)", name,
                           t->name);
    }
    return 0;
}

int glue_load(glue_split *s, const glue_task *t, const char *data_dir, const char *file, char *err,
              size_t errlen) {
    memset(s, 0, sizeof *s);
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/%s", data_dir, t->dir);
    if (!core_is_dir(data_dir))
        return core_errorf(
            err, errlen,
            "%s: GLUE data folder not found. Get GLUE in the standard glue_data layout (CoLA/, "
            "SST-2/, MRPC/, ... each with train.tsv and dev.tsv, e.g. from the GLUE "
            "benchmark's download_glue_data.py) and set eval.data_dir to it (docs/eval.md)",
            data_dir);
    if (!core_is_dir(dir))
        return core_errorf(err, errlen, "%s: task folder of %s not found in eval.data_dir", dir,
                           t->name);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *fp = fopen(path, "rb");
    if (!fp) return core_errorf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 > cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf), fclose(fp);
                return core_errorf(err, errlen, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return core_errorf(err, errlen, "%s: read error", path);
    }
    int rc = glue_parse(s, t, buf ? buf : "", n, path, err, errlen);
    free(buf);
    return rc;
}

void glue_encoded_free(glue_encoded *e) {
    if (!e) return;
    for (size_t i = 0; i < e->n; i++)
        free(e->ids ? e->ids[i] : NULL);
    free(e->ids), free(e->len), free(e->label), free(e->target);
    memset(e, 0, sizeof *e);
}

int glue_encode(glue_encoded *e, const glue_split *s, const tok_tokenizer *tok, int max_len,
                char *err, size_t errlen) {
    memset(e, 0, sizeof *e);
    e->n = s->n;
    e->ids = calloc(s->n, sizeof *e->ids);
    e->len = calloc(s->n, sizeof *e->len);
    e->label = calloc(s->n, sizeof *e->label);
    e->target = calloc(s->n, sizeof *e->target);
    if (!e->ids || !e->len || !e->label || !e->target) {
        glue_encoded_free(e);
        return core_errorf(err, errlen, "%s: out of memory encoding", s->path);
    }
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 64) reduction(| : bad)
    for (size_t i = 0; i < s->n; i++) {
        tok_encoding enc = {0};
        char terr[TOK_ERRLEN];
        const glue_example *x = &s->ex[i];
        if (tok_encode_pair(tok, x->a, x->alen, x->b, x->blen, max_len, &enc, terr) != TOK_OK) {
            bad |= 1;
            tok_encoding_free(&enc);
            continue;
        }
        e->ids[i] = malloc((size_t)(enc.n ? enc.n : 1) * sizeof(int32_t));
        if (!e->ids[i])
            bad |= 1;
        else
            memcpy(e->ids[i], enc.ids, (size_t)enc.n * sizeof(int32_t));
        e->len[i] = enc.n;
        e->label[i] = x->label;
        e->target[i] = x->target;
        tok_encoding_free(&enc);
    }
    if (bad) {
        glue_encoded_free(e);
        return core_errorf(err, errlen, "%s: encoding failed", s->path);
    }
    return 0;
}

int glue_batch(const glue_encoded *e, const size_t *idx, int B, int32_t pad_id, int multiple,
               int32_t *ids, float *mask, int32_t *labels, float *targets) {
    int S = 0;
    for (int b = 0; b < B; b++)
        if (e->len[idx[b]] > S) S = e->len[idx[b]];
    if (multiple > 1) S = (S + multiple - 1) / multiple * multiple;
    for (int b = 0; b < B; b++) {
        const size_t i = idx[b];
        for (int s = 0; s < S; s++) {
            bool in = s < e->len[i];
            ids[(size_t)b * S + s] = in ? e->ids[i][s] : pad_id;
            mask[(size_t)b * S + s] = in ? 1.0f : 0.0f;
        }
        if (labels) labels[b] = e->label[i];
        if (targets) targets[b] = e->target[i];
    }
    return S;
}
