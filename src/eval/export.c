/* `cram export SRC DST`: write a checkpoint (a cram folder or hf:PATH) as a Hugging Face folder.
 * BERT-architecture models become a BertForMaskedLM folder (config.json, model.safetensors with
 * HF names, tokenizer files) that `transformers` loads; crammed-bert keeps the reference's key
 * names and its model_config.json (scripts/crammed_bert_torch.py loads it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Paths are bounded buffers; a truncated one fails to open with a message that shows it. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "core/core.h"
#include "ops/backend.h"
#include "eval/eval.h"
#include "model/safetensors.h"

static int load_any(const ops *o, bert_model *m, tok_tokenizer **tok, const char *src, bool *hf,
                    char *err, size_t errlen) {
    const char *dir = src;
    char p[CORE_PATH_MAX + 32];
    *hf = false;
    if (strncmp(src, "hf:", 3) == 0)
        dir = src + 3 + (strncmp(src + 3, "//", 2) == 0 ? 2 : 0), *hf = true;
    snprintf(p, sizeof p, "%s/model_config.json", dir);
    struct stat st;
    if (!*hf && stat(p, &st) != 0) *hf = true;
    cfg_node *arch;
    if (*hf) {
        arch = hf_read_config(dir, err, errlen);
    } else {
        cfg_error ce = {0};
        arch = cfg_load_yaml_file(p, &ce);
        if (!arch) snprintf(err, errlen, "%s: %s", p, ce.msg);
    }
    if (!arch) return -1;
    cfg_node *root = cfg_new(CFG_MAP);
    cfg_map_set(root, "arch", arch);
    bert_config c;
    int rc = bert_config_from_cfg(&c, root, 0, err, errlen);
    cfg_free(root);
    if (rc) return -1;
    char terr[TOK_ERRLEN];
    if (tok_load(tok, dir, terr) != TOK_OK) {
        snprintf(err, errlen, "%s: cannot load the tokenizer: %s", dir, terr);
        return -1;
    }
    if (tok_vocab_size(*tok) != c.V) {
        snprintf(err, errlen, "%s: the model's vocabulary has %d entries, its tokenizer %d", dir,
                 c.V, tok_vocab_size(*tok));
        return -1;
    }
    c.num_labels = 0;
    c.sparse_pred = 0; /* decode every row (only the reference logits read it) */
    bert_init(m, &c, o);
    bert_init_weights(m, 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    int nl, nm;
    if (hf_load_weights(m, p, &nl, &nm, err, errlen)) return -1;
    if (nm) core_log_info("%d parameter(s) not in %s keep a fresh init (seed 0)", nm, p);
    return 0;
}

/* ids and MLM logits of a few fixed sentences, for scripts/check_export.py */
static int write_reference_logits(bert_model *m, const tok_tokenizer *tok, const char *path,
                                  char *err, size_t errlen) {
    static const char *text[4] = {
        "The quick brown fox jumps over the lazy dog.",
        "A checkpoint written by cram, read by transformers.", "In the beginning was the word.",
        "Cramming: training a language model on a single GPU in one day."};
    const int B = 4, S = 16;
    int32_t ids[4 * 16];
    float mask[4 * 16];
    int32_t pad = tok_special_id(tok, TOK_PAD);
    for (int b = 0; b < B; b++) {
        tok_encoding e = {0};
        char terr[TOK_ERRLEN];
        if (tok_encode_pair(tok, text[b], strlen(text[b]), "", 0, S, &e, terr) != TOK_OK) {
            snprintf(err, errlen, "%s", terr);
            return -1;
        }
        for (int s = 0; s < S; s++) {
            ids[b * S + s] = s < e.n ? e.ids[s] : (pad < 0 ? 0 : pad);
            mask[b * S + s] = s < e.n ? 1.0f : 0.0f;
        }
        tok_encoding_free(&e);
    }
    m->grad_enabled = false;
    bert_forward(m, ids, NULL, NULL, mask, B, S, false, 0, 0);
    if (m->nrows != B * S) {
        snprintf(err, errlen, "reference logits need a model that decodes every row");
        return -1;
    }
    size_t nlog = (size_t)B * S * m->cfg.V;
    float *logits = malloc(nlog * sizeof *logits);
    m->ops->download_act(m->ops, logits, m->logits, nlog);
    int64_t s_ids[2] = {B, S}, s_log[3] = {B, S, m->cfg.V};
    int32_t imask[4 * 16];
    for (int i = 0; i < B * S; i++)
        imask[i] = (int32_t)mask[i];
    st_write_tensor t[3] = {{"ids", ST_I32, 2, s_ids, ids},
                            {"mask", ST_I32, 2, s_ids, imask},
                            {"logits", ST_F32, 3, s_log, logits}};
    int rc = st_write(path, t, 3, NULL, NULL, 0, err, errlen) == ST_OK ? 0 : -1;
    free(logits);
    return rc;
}

int export_cli_main(int argc, char **argv) {
    const char *src = NULL, *dst = NULL, *ref = NULL;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            printf("usage: cram export SRC DST [--reference-logits=FILE]\n\n"
                   "SRC: a cram checkpoint folder (model_config.json) or hf:PATH (a local Hugging "
                   "Face folder).\nDST: the folder to write (BertForMaskedLM layout for BERT "
                   "architectures; crammed-bert keeps its\nreference key names, see "
                   "scripts/crammed_bert_torch.py). --reference-logits writes the ids and MLM "
                   "logits\nof four fixed sentences for scripts/check_export.py.\n");
            return 0;
        }
        if (strncmp(argv[k], "--reference-logits=", 19) == 0)
            ref = argv[k] + 19;
        else if (!src)
            src = argv[k];
        else if (!dst)
            dst = argv[k];
        else {
            fprintf(stderr, "cram export: unexpected argument '%s'\n", argv[k]);
            return 2;
        }
    }
    if (!src || !dst) {
        fprintf(stderr, "usage: cram export SRC DST [--reference-logits=FILE]\n");
        return 2;
    }
    core_log_init(0);
    char err[1024];
    /* export reads and writes fp32 masters; the backend (impl.device=auto, fp32) only runs the
     * forward for --reference-logits */
    const ops *o = backend_from_cfg(NULL, err, sizeof err);
    if (!o) {
        fprintf(stderr, "cram export: %s\n", err);
        return 2;
    }
    bert_model m;
    tok_tokenizer *tok = NULL;
    bool hf;
    memset(&m, 0, sizeof m);
    if (load_any(o, &m, &tok, src, &hf, err, sizeof err)) {
        fprintf(stderr, "cram export: %s\n", err);
        tok_free(tok);
        bert_free(&m);
        backend_close(o);
        return 2;
    }
    int rc = hf_export(&m, tok, dst, err, sizeof err);
    if (rc == 0 && m.cfg.kind == BERT_ARCH_CRAMMED && !hf) {
        /* the reference's model_config.json travels with its key names */
        char from[CORE_PATH_MAX + 32], to[CORE_PATH_MAX + 32];
        snprintf(from, sizeof from, "%s/model_config.json", src);
        snprintf(to, sizeof to, "%s/model_config.json", dst);
        char *buf = NULL;
        size_t n = 0;
        rc = core_read_file(from, &buf, &n, err, sizeof err) ||
             core_atomic_write(to, buf, n, err, sizeof err);
        free(buf);
    }
    if (rc == 0 && ref) rc = write_reference_logits(&m, tok, ref, err, sizeof err);
    if (rc)
        fprintf(stderr, "cram export: %s\n", err);
    else
        printf("wrote %s (%s)\n", dst,
               m.cfg.kind == BERT_ARCH_HF ? "BertForMaskedLM" : "crammed-bert, reference names");
    bert_free(&m);
    tok_free(tok);
    backend_close(o);
    return rc ? 1 : 0;
}
