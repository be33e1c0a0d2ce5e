/* Hugging Face BERT folders: config.json -> a BertForMaskedLM arch config, model.safetensors
 * (keys with or without the `bert.` prefix) onto the post-LN model's parameter table, and the
 * export of a model as a folder that `transformers` loads (BertForMaskedLM) or, for
 * crammed-bert, the reference's key names. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Paths and messages are bounded buffers; a truncated path fails later with a message that
 * shows it, so the compiler's truncation warnings add nothing here. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "core/core.h"
#include "eval/eval.h"
#include "model/safetensors.h"

static void set_num(cfg_node *map, const char *key, const cfg_node *src, const char *skey) {
    const cfg_node *v = cfg_map_get(src, skey);
    if (v &&
        (v->type == CFG_INT || v->type == CFG_FLOAT || v->type == CFG_STR || v->type == CFG_BOOL))
        cfg_map_set(map, key, cfg_clone(v));
}

cfg_node *hf_read_config(const char *dir, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cfg_error ce = {0};
    cfg_node *j = cfg_load_yaml_file(path, &ce);
    if (!j) {
        core_errorf(err, errlen, "%s: cannot read the Hugging Face config: %s", path, ce.msg);
        return NULL;
    }
    if (j->type != CFG_MAP) {
        cfg_free(j);
        core_errorf(err, errlen, "%s: not a JSON object", path);
        return NULL;
    }
    const cfg_node *mt = cfg_map_get(j, "model_type");
    if (mt && mt->type == CFG_STR && strcmp(mt->s, "bert") != 0) {
        core_errorf(
            err, errlen,
            "%s: model_type '%s' is not a BERT checkpoint (cram imports the post-LN BERT family "
            "only)",
            path, mt->s);
        cfg_free(j);
        return NULL;
    }
    const cfg_node *archs = cfg_map_get(j, "architectures");
    if (archs && archs->type == CFG_LIST) {
        for (int k = 0; k < archs->n; k++) {
            const char *a = archs->items[k]->type == CFG_STR ? archs->items[k]->s : "";
            if (strncmp(a, "Bert", 4) != 0) {
                core_errorf(err, errlen, "%s: architecture '%s' is not a BERT model class", path,
                            a);
                cfg_free(j);
                return NULL;
            }
        }
    }
    cfg_node *arch = cfg_new(CFG_MAP);
    cfg_node *names = cfg_new(CFG_LIST);
    cfg_list_push(names, cfg_new_str("BertForMaskedLM"));
    cfg_map_set(arch, "architectures", names);
    static const char *keys[] = {"hidden_size",
                                 "num_hidden_layers",
                                 "num_attention_heads",
                                 "intermediate_size",
                                 "vocab_size",
                                 "max_position_embeddings",
                                 "type_vocab_size",
                                 "layer_norm_eps",
                                 "hidden_act",
                                 "hidden_dropout_prob",
                                 "attention_probs_dropout_prob",
                                 "initializer_range",
                                 "position_embedding_type"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        set_num(arch, keys[k], j, keys[k]);
    const cfg_node *v = cfg_map_get(arch, "vocab_size");
    if (!v || v->type != CFG_INT || v->i <= 0) {
        core_errorf(err, errlen, "%s: vocab_size is missing or not a positive integer", path);
        cfg_free(j), cfg_free(arch);
        return NULL;
    }
    cfg_free(j);
    return arch;
}

/* Buffers and heads a fine-tuning model drops on purpose (the MLM decoder and the
 * per-layer norm_factor buffers of crammed-bert; HF's position_ids buffer). */
static bool expected_unused(const char *name) {
    static const char *ends[] = {"position_ids", "norm_factor", "decoder.weight"};
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof ends / sizeof *ends; k++) {
        size_t e = strlen(ends[k]);
        if (n >= e && strcmp(name + n - e, ends[k]) == 0) return true;
    }
    return false;
}

int hf_load_weights(bert_model *m, const char *path, int *nloaded, int *nmissing, char *err,
                    size_t errlen) {
    st_file f;
    if (st_open(&f, path, err, errlen) != ST_OK) return -1;
    bool summed = false;
    if (st_verify(&f, &summed, err, errlen) != ST_OK) {
        st_close(&f);
        return -1;
    }
    if (!summed)
        core_log_info("%s carries no %s checksum (a Hugging Face file or an older cram "
                      "checkpoint): loaded without an integrity check.",
                      path, ST_META_CHECKSUM);
    int loaded = 0, missing = 0, rc = 0;
    char *used = calloc((size_t)f.ntensors + 1, 1);
    size_t maxn = 0;
    for (int k = 0; k < m->nparams; k++)
        if (m->params[k].numel > maxn) maxn = m->params[k].numel;
    float *buf = malloc((maxn ? maxn : 1) * sizeof *buf);
    for (int k = 0; k < m->nparams && rc == 0; k++) {
        const bert_param *p = &m->params[k];
        const char *cands[4] = {p->name, NULL, p->alias[0] ? p->alias : NULL, NULL};
        if (strncmp(p->name, "bert.", 5) == 0) cands[1] = p->name + 5;
        if (p->alias[0] && strncmp(p->alias, "bert.", 5) == 0) cands[3] = p->alias + 5;
        const st_tensor *t = NULL;
        for (int c = 0; c < 4 && !t; c++)
            if (cands[c]) t = st_find(&f, cands[c]);
        if (!t) {
            missing++;
            continue;
        }
        used[t - f.tensors] = 1;
        /* the learned position table may be longer than the model's (512 vs 128 rows) */
        bool ok = t->numel == p->numel;
        int64_t d0 = p->ndim >= 1 ? p->shape[0] : 1;
        if (p->ndim == 2 && t->ndim == 2 && t->shape[1] == p->shape[1] && t->shape[0] != d0)
            ok = false;
        if (!ok) {
            char ts[64] = "", ps[64] = "";
            for (int d = 0; d < t->ndim; d++)
                snprintf(ts + strlen(ts), sizeof ts - strlen(ts), "%s%lld", d ? "," : "",
                         (long long)t->shape[d]);
            for (int d = 0; d < p->ndim; d++)
                snprintf(ps + strlen(ps), sizeof ps - strlen(ps), "%s%lld", d ? "," : "",
                         (long long)p->shape[d]);
            rc = core_errorf(
                err, errlen,
                "%s: tensor %s has shape [%s] but the model (from its config) needs [%s]: "
                "a checkpoint of another size or vocabulary",
                path, t->name, ts, ps);
            break;
        }
        if (st_tensor_to_f32(t, buf, p->numel)) {
            rc = core_errorf(err, errlen, "%s: tensor %s has dtype %s (need F32, F16 or BF16)",
                             path, t->name, st_dtype_name(t->dtype));
            break;
        }
        size_t bad = p->numel;
        for (size_t i = 0; i < p->numel && bad == p->numel; i++)
            if (!isfinite(buf[i])) bad = i;
        if (bad < p->numel) {
            rc = core_errorf(err, errlen,
                             "%s: tensor %s holds a non-finite value (%s at element %zu of %zu); "
                             "the checkpoint is broken (a run that diverged, or a damaged "
                             "file): re-train or re-export it",
                             path, t->name, isnan(buf[bad]) ? "NaN" : "Inf", bad, p->numel);
            break;
        }
        bert_param_set(m, k, buf);
        loaded++;
    }
    if (rc == 0) {
        int unexpected = 0;
        for (int i = 0; i < f.ntensors; i++)
            if (!used[i] && !expected_unused(f.tensors[i].name)) {
                if (unexpected < 8)
                    core_log_info("  not used from %s: %s", path, f.tensors[i].name);
                unexpected++;
            }
        if (unexpected > 8) core_log_info("  ... and %d more unused tensors", unexpected - 8);
    }
    free(buf), free(used);
    st_close(&f);
    if (nloaded) *nloaded = loaded;
    if (nmissing) *nmissing = missing;
    if (rc == 0 && loaded == 0)
        return core_errorf(err, errlen, "%s: no tensor matches a parameter of the model", path);
    return rc;
}

/* ---- export ---- */

static int write_text(const char *path, const char *text, char *err, size_t errlen) {
    return core_atomic_write(path, text, strlen(text), err, errlen);
}

static int export_config_json(const bert_model *m, const tok_tokenizer *tok, const char *path,
                              char *err, size_t errlen) {
    const bert_config *c = &m->cfg;
    char buf[2048];
    int pad = tok ? tok_special_id(tok, TOK_PAD) : 0;
    snprintf(buf, sizeof buf,
             "{\n  \"architectures\": [\"BertForMaskedLM\"],\n  \"model_type\": \"bert\",\n"
             "  \"attention_probs_dropout_prob\": %g,\n  \"hidden_act\": \"gelu\",\n"
             "  \"hidden_dropout_prob\": %g,\n  \"hidden_size\": %d,\n  \"initializer_range\": "
             "%g,\n  \"intermediate_size\": %d,\n  \"layer_norm_eps\": %g,\n"
             "  \"max_position_embeddings\": %d,\n  \"num_attention_heads\": %d,\n"
             "  \"num_hidden_layers\": %d,\n  \"pad_token_id\": %d,\n"
             "  \"position_embedding_type\": \"absolute\",\n  \"type_vocab_size\": %d,\n"
             "  \"vocab_size\": %d,\n  \"tie_word_embeddings\": true\n}\n",
             (double)c->attn_drop, (double)c->hidden_drop, c->H, (double)c->init_std, c->I,
             (double)c->eps, c->max_pos, c->NH, c->L, pad < 0 ? 0 : pad,
             c->type_vocab > 0 ? c->type_vocab : 2, c->V);
    return write_text(path, buf, err, errlen);
}

int hf_export(const bert_model *m, const tok_tokenizer *tok, const char *dir, char *err,
              size_t errlen) {
    if (m->cfg.kind == BERT_ARCH_SANITY)
        return core_errorf(err, errlen, "export: the sanity-check model has no BERT layout");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return core_errorf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
    float *host = malloc(m->numel * sizeof *host);
    if (!host) return core_errorf(err, errlen, "export: out of memory");
    int n = 0;
    st_write_tensor *t = calloc((size_t)m->nparams * 2 + 4, sizeof *t);
    size_t off = 0;
    for (int k = 0; k < m->nparams; k++) {
        const bert_param *p = &m->params[k];
        bert_param_get(m, k, host + off);
        t[n++] = (st_write_tensor){p->name, ST_F32, p->ndim, p->shape, host + off};
        if (p->alias[0])
            t[n++] = (st_write_tensor){p->alias, ST_F32, p->ndim, p->shape, host + off};
        off += p->numel;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const char *mk[1] = {"format"}, *mv[1] = {"pt"};
    int rc = st_write_checked(path, t, n, mk, mv, 1, err, errlen) == ST_OK ? 0 : -1;
    free(t), free(host);
    if (rc) return rc;
    if (m->cfg.kind == BERT_ARCH_HF) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (export_config_json(m, tok, path, err, errlen)) return -1;
    }
    if (tok) {
        char terr[TOK_ERRLEN];
        if (tok_save(tok, dir, terr) != TOK_OK)
            return core_errorf(err, errlen, "%s: %s", dir, terr);
    }
    return 0;
}
