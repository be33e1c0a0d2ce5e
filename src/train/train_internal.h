/* Private to src/train: the loop's resumable progress and the checkpoint writers/readers that
 * train.c and train_ckpt.c share. */
#ifndef CRAM_TRAIN_INTERNAL_H
#define CRAM_TRAIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "data/data.h"
#include "model/model.h"

/* Everything besides the weights and the optimizer moments that a resumed run needs to continue
 * exactly where the interrupted one stopped. */
typedef struct train_progress {
    int64_t step;         /* µsteps done */
    int64_t opt_t;        /* optimizer updates done (AdamW's t) */
    int64_t cur_bs;       /* batch size of the update being accumulated */
    int64_t acc;          /* sequences of all ranks accumulated towards it (0 at an update
                           * boundary) */
    double lr;            /* the lr the next update will use (the scheduler's last value) */
    double elapsed_s;     /* budget clock */
    loader_pos pos;       /* the loader's next row */
    int64_t rows;         /* sequences trained, all ranks (µsteps may differ in size) */
    double win_sum;       /* losses since the last print line ... */
    int64_t win_n;        /* ... and their count, so the printed average survives a resume */
    double last_loss;     /* last µstep's loss */
    uint64_t seed;        /* the run's seed (a resumed run keeps it) */
    uint64_t config_hash; /* this run's config fingerprint, written into every state */
    int64_t mbs_eff;      /* microbatch_size * world when written (a resume may change it) */
    int64_t world;
} train_progress;

/* A fingerprint of the parameter table (names, shapes, architecture, vocabulary). */
uint64_t ckpt_model_hash(const bert_model *m);

/* Save parameters, AdamW moments and progress to path (ts_write, atomic). When p->acc != 0
 * (between updates) the accumulated gradients go to "<path>.grads-<step>" first, so the state
 * can be written at any microbatch boundary. */
int ckpt_save_state(const char *path, const bert_model *m, const train_progress *p, char *err,
                    size_t errlen);

/* Read a state written by ckpt_save_state into m and p. Returns 0, or the ts_status of the
 * failure (TS_EFORMAT: unreadable; TS_EMISMATCH: another model) with a message. */
int ckpt_load_state(const char *path, bert_model *m, train_progress *p, char *err, size_t errlen);

/* The model's weights as model.safetensors holds them (the reference's names, its per-layer
 * norm_factor scalars and the tied decoder's second copy) written to path. */
int ckpt_write_model(const char *path, const bert_model *m, char *err, size_t errlen);

/* The final checkpoint folder <base>/<name>/checkpoints/<ArchNames>_<date>_<loss %.4f>/ with
 * model.safetensors (with a checksum of its data, st_write_checked), model_config.json and the
 * tokenizer files, written as "<folder>.tmp.<pid>" and renamed into place; a failed write
 * removes that temporary folder. out receives the path; a dry run writes nothing (out still
 * gets the path the folder would have). */
int ckpt_save_final(char *out, size_t outlen, const cfg_node *cfg, const bert_model *m,
                    const tok_tokenizer *tok, double loss, bool dryrun, char *err, size_t errlen);

/* Remove the leftovers of writes that a killed or crashed run of this name left behind:
 * "<folder>.tmp.<pid>" in <base_dir>/<name>/checkpoints/ and the training state's
 * "intermediate_state.bin[.grads-<step>].tmp.<pid>" in <base_dir>/<name>/, each when no process
 * with that pid runs, the process with that pid started after the file was last written, or the
 * file was last written before this process started. Logs one line per removal; returns the
 * count. ckpt_save_state and ckpt_save_final do this themselves before they write; call it at
 * the start of a run (rank 0) to free the space at once. */
int ckpt_remove_stale(const char *base_dir, const char *name);

#endif
