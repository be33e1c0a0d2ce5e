/* eval: GLUE task table and TSV readers, metrics, Hugging Face BERT import/export and the
 * per-task fine-tuning loop behind `cram eval` and `cram export` (docs/eval.md). Readers of user
 * files return an error code with a message naming the file and never abort. */
#ifndef CRAM_EVAL_EVAL_H
#define CRAM_EVAL_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "model/model.h"
#include "tok/tok.h"

#define GLUE_ERRLEN 512

/* ---- metrics (metric.c): all values are fractions, as HF `evaluate` returns them ---- */
double metric_accuracy(const int32_t *pred, const int32_t *ref, size_t n);
/* binary F1 with positive label 1; 0 when there is no true positive (sklearn zero_division) */
double metric_f1(const int32_t *pred, const int32_t *ref, size_t n);
/* Matthews correlation (sklearn: 0 when the denominator is 0, also for multi-class) */
double metric_mcc(const int32_t *pred, const int32_t *ref, size_t n, int nclasses);
/* Pearson r; NaN when either input is constant (scipy returns nan then) */
double metric_pearson(const double *x, const double *y, size_t n);
/* Spearman rho: Pearson of the average ranks (ties share their mean rank) */
double metric_spearman(const double *x, const double *y, size_t n);
double metric_amean(const double *v, int n);
/* harmonic mean; 0 when any value is <= 0 (scipy's hmean needs positive values) */
double metric_hmean(const double *v, int n);

typedef enum {
    METRIC_ACCURACY = 0,
    METRIC_F1,
    METRIC_MCC,
    METRIC_PEARSON,
    METRIC_SPEARMAN,
} metric_kind;
const char *metric_name(metric_kind k); /* "accuracy", "f1", "matthews_correlation", ... */
/* The reference's substitute when a metric cannot be computed: the metric of predictions [0,1]
 * against references [1,0]. */
double metric_bad_score(metric_kind k);
/* One metric on predictions (class ids in ipred, or regression outputs in fpred) against the
 * references; a NaN result or a non-finite regression prediction gives metric_bad_score and
 * sets *substituted (may be NULL). */
double metric_compute(metric_kind k, const int32_t *ipred, const int32_t *iref, const float *fpred,
                      const float *fref, size_t n, int nclasses, bool *substituted);

/* ---- GLUE tasks (glue.c) ---- */
#define GLUE_MAX_METRICS 2
typedef struct glue_task {
    const char *name;  /* config name: cola, sst2, ... */
    const char *dir;   /* folder in the standard glue_data layout: CoLA, SST-2, ... */
    const char *train; /* file names inside dir */
    const char *dev;
    const char *dev_extra; /* MNLI mismatched, else NULL */
    bool header;           /* false: CoLA */
    /* columns: by header name, or by index (header == false); text_b NULL/-1 for single text */
    const char *col_a, *col_b, *col_label;
    int idx_a, idx_b, idx_label; /* used when header == false */
    int nlabels;                 /* 1: regression */
    const char *labels[3];       /* the strings of labels 0, 1, 2 in the file */
    const char *label_names[3];  /* the reference's class names */
    int nmetrics;
    metric_kind metrics[GLUE_MAX_METRICS]; /* [0] is the target metric */
} glue_task;

const glue_task *glue_task_find(const char *name); /* NULL if unknown */
int glue_ntasks(void);
const glue_task *glue_task_at(int k);

typedef struct glue_example {
    const char *a, *b; /* into the split's text buffer; b == "" for single-sentence tasks */
    uint32_t alen, blen;
    int32_t label; /* class id (classification) */
    float target;  /* regression target */
} glue_example;

typedef struct glue_split {
    char *path; /* the file it came from */
    char *buf;  /* owned copy of the file, texts point into it */
    glue_example *ex;
    size_t n;
} glue_split;

/* Parse one TSV file held in memory (name is used in messages). Returns 0, or -1 with a message
 * that names the file (and line) for wrong columns, unknown labels or an empty split. */
int glue_parse(glue_split *s, const glue_task *t, const char *buf, size_t len, const char *name,
               char *err, size_t errlen);
/* Read <data_dir>/<task dir>/<file>; a missing folder or file is an error naming it. */
int glue_load(glue_split *s, const glue_task *t, const char *data_dir, const char *file, char *err,
              size_t errlen);
void glue_split_free(glue_split *s);

/* Encoded split: every example as <cls> A <sep> B <sep> (single texts: B empty), truncated
 * longest-first to max_len. */
typedef struct glue_encoded {
    int32_t **ids; /* [n][len[i]] */
    int32_t *len;
    int32_t *label;
    float *target;
    size_t n;
} glue_encoded;
int glue_encode(glue_encoded *e, const glue_split *s, const tok_tokenizer *tok, int max_len,
                char *err, size_t errlen);
void glue_encoded_free(glue_encoded *e);

/* Build a padded batch of the examples idx[0..B): S = longest rounded up to a multiple of
 * `multiple`; ids padded with pad_id on the right, mask 1/0. ids and mask hold B*S_max. Returns S.
 */
int glue_batch(const glue_encoded *e, const size_t *idx, int B, int32_t pad_id, int multiple,
               int32_t *ids, float *mask, int32_t *labels, float *targets);

/* ---- Hugging Face folders (hf.c) ---- */
/* Read config.json of a BERT-family checkpoint into an arch config tree (BertForMaskedLM keys).
 * Returns NULL with a message naming the file. */
cfg_node *hf_read_config(const char *dir, char *err, size_t errlen);
/* Copy every tensor of <dir>/model.safetensors whose name (with or without a `bert.` prefix)
 * names a model parameter; shape mismatches are errors naming the file. nloaded and nmissing count
 * model parameters found / left at their init (may be NULL). Logs the unexpected keys. A file
 * whose __metadata__ records cram's payload checksum must match it; any non-finite value in a
 * loaded tensor is an error naming the tensor (the checkpoint is broken). */
int hf_load_weights(bert_model *m, const char *path, int *nloaded, int *nmissing, char *err,
                    size_t errlen);
/* Write the model (BERT_ARCH_HF or crammed) as a Hugging Face folder: config.json,
 * model.safetensors and the tokenizer files. */
int hf_export(const bert_model *m, const tok_tokenizer *tok, const char *dir, char *err,
              size_t errlen);

/* ---- commands (finetune.c, export.c) ---- */
int glue_cli_main(int argc, char **argv);   /* cram eval */
int export_cli_main(int argc, char **argv); /* cram export */

#endif
