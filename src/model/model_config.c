/* Reading the architecture from the resolved `arch` config: every key that changes the network
 * is honoured, and values cram does not implement are rejected with the key's name. */
#include "model/model.h"

#include "core/core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const cfg_node *arch;
    char *err;
    size_t errlen;
    int failed;
} reader;

static void fail(reader *r, const char *fmt, ...) CORE_PRINTF(2, 3);
static void fail(reader *r, const char *fmt, ...) {
    if (r->failed) return;
    r->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
}

static const cfg_node *node(reader *r, const char *key) {
    const cfg_node *n = cfg_get(r->arch, key);
    return (n && n->type != CFG_NULL) ? n : NULL;
}

/* The typed readers report a value of the wrong type (the shared getters would silently take
 * the default); a missing or null key gives def. */
static double num(reader *r, const char *key, double def) {
    const cfg_node *n = node(r, key);
    if (n && n->type != CFG_INT && n->type != CFG_FLOAT)
        fail(r, "arch.%s: expected a number, got %s", key, cfg_type_name(n->type));
    return cfg_num_or(r->arch, key, def);
}

static int integer(reader *r, const char *key, int def) {
    const cfg_node *n = node(r, key);
    if (n && n->type != CFG_INT) {
        fail(r, "arch.%s: expected an integer, got %s", key, cfg_type_name(n->type));
        return def;
    }
    return (int)cfg_int_or(r->arch, key, def);
}

static bool boolean(reader *r, const char *key, bool def) {
    const cfg_node *n = node(r, key);
    if (n && n->type != CFG_BOOL)
        fail(r, "arch.%s: expected True or False, got %s", key, cfg_type_name(n->type));
    return cfg_bool_or(r->arch, key, def);
}

static const char *str(reader *r, const char *key, const char *def) {
    const cfg_node *n = node(r, key);
    if (n && n->type == CFG_BOOL) return n->b ? "True" : "False";
    if (n && n->type != CFG_STR)
        fail(r, "arch.%s: expected a string, got %s", key, cfg_type_name(n->type));
    return cfg_str_or(r->arch, key, def);
}

/* key must equal one of the allowed values (case-sensitive, like the reference's lookups) */
static void require(reader *r, const char *key, const char *val, const char *allowed) {
    if (!val) return;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", allowed);
    for (char *tok = strtok(buf, "|"); tok; tok = strtok(NULL, "|"))
        if (strcmp(tok, val) == 0) return;
    fail(r, "arch.%s=%s is not supported by cram (supported: %s)", key, val, allowed);
}

static void require_bool(reader *r, const char *key, bool def, bool want) {
    if (node(r, key) && boolean(r, key, def) != want)
        fail(r, "arch.%s=%s is not supported by cram (only %s)", key, want ? "False" : "True",
             want ? "True" : "False");
}

static float init_std(reader *r, const char *type, double std, int H, int L) {
    if (strcmp(type, "normal") == 0) return (float)std;
    if (strcmp(type, "small") == 0) return (float)sqrt(2.0 / (5.0 * H));
    if (strcmp(type, "megatron") == 0) return (float)sqrt(1.0 / (3.0 * H));
    if (strcmp(type, "wang") == 0) return (float)(2.0 / L / sqrt((double)H));
    if (strcmp(type, "deepnorm") == 0) return (float)pow(8.0 * L, -0.25);
    fail(r,
         "arch.init.type=%s is not supported by cram (supported: normal|small|megatron|wang|"
         "deepnorm)",
         type);
    return (float)std;
}

static void read_crammed(reader *r, bert_config *c) {
    c->kind = BERT_ARCH_CRAMMED;
    c->L = integer(r, "num_transformer_layers", 16);
    c->H = integer(r, "hidden_size", 768);
    c->I = integer(r, "intermed_size", 3072);
    c->hidden_drop = (float)num(r, "hidden_dropout_prob", 0.1);
    require(r, "norm", str(r, "norm", "LayerNorm"), "LayerNorm");
    c->eps = (float)num(r, "norm_eps", 1e-12);
    const char *scheme = str(r, "norm_scheme", "pre");
    if (scheme && strcmp(scheme, "pre") != 0)
        core_log_warn("arch.norm_scheme=%s is ignored: ScriptableCrammedBERT is always pre-LN "
                      "(as in the reference)",
                      scheme);
    const char *nonlin = str(r, "nonlin", "GELUglu");
    require(r, "nonlin", nonlin, "GELUglu|GELU");
    c->glu = nonlin && strcmp(nonlin, "GELUglu") == 0;
    require_bool(r, "tie_weights", true, true);
    c->decoder_bias = boolean(r, "decoder_bias", false);
    const cfg_node *sp = node(r, "sparse_prediction");
    if (!sp || (sp->type == CFG_BOOL && !sp->b))
        c->sparse_pred = 0.0;
    else
        c->sparse_pred = num(r, "sparse_prediction", 0.0);
    require(r, "loss", str(r, "loss", "cross-entropy"), "cross-entropy");
    require(r, "objective_layout", str(r, "objective_layout", "MLM"), "MLM");
    int V = integer(r, "embedding.vocab_size", 0);
    if (V > 0) c->V = V;
    const char *pos = str(r, "embedding.pos_embedding", "scaled-sinusoidal");
    require(r, "embedding.pos_embedding", pos, "scaled-sinusoidal|sinusoidal|learned|None|none");
    c->pos = !pos                                    ? BERT_POS_NONE
             : strcmp(pos, "scaled-sinusoidal") == 0 ? BERT_POS_SCALED_SINUSOIDAL
             : strcmp(pos, "sinusoidal") == 0        ? BERT_POS_SINUSOIDAL
             : strcmp(pos, "learned") == 0           ? BERT_POS_LEARNED
                                                     : BERT_POS_NONE;
    c->emb_drop = (float)num(r, "embedding.dropout_prob", 0.1);
    c->pad_id = integer(r, "embedding.pad_token_id", 0);
    c->max_pos = integer(r, "embedding.max_seq_length", 128);
    int edim = integer(r, "embedding.embedding_dim", c->H);
    if (edim != c->H)
        fail(r,
             "arch.embedding.embedding_dim=%d differs from arch.hidden_size=%d: not supported "
             "by cram",
             edim, c->H);
    c->emb_norm = boolean(r, "embedding.normalization", true);
    require(r, "attention.type", str(r, "attention.type", "self-attention"), "self-attention");
    require_bool(r, "attention.causal_attention", false, false);
    c->NH = integer(r, "attention.num_attention_heads", 12);
    c->attn_drop = (float)num(r, "attention.dropout_prob", 0.1);
    require_bool(r, "attention.skip_output_projection", false, false);
    c->qkv_bias = boolean(r, "attention.qkv_bias", false);
    const cfg_node *rot = node(r, "attention.rotary_embedding");
    if (rot && !(rot->type == CFG_BOOL && !rot->b))
        fail(r, "arch.attention.rotary_embedding is not supported by cram (only False)");
    require(r, "attention.sequence_op", str(r, "attention.sequence_op", "torch-softmax"),
            "torch-softmax");
    const char *itype = str(r, "init.type", "normal");
    double istd = num(r, "init.std", 0.02);
    if (itype) c->init_std = init_std(r, itype, istd, c->H, c->L);
    if (integer(r, "ffn_layer_frequency", 1) != 1)
        fail(r, "arch.ffn_layer_frequency must be 1 in cram");
    c->head_transform = !boolean(r, "skip_head_transform", true);
    c->use_bias = boolean(r, "use_bias", false);
    c->final_norm = boolean(r, "final_norm", true);
    c->num_labels = integer(r, "num_labels", 0);
    const char *pool = str(r, "classification_head.pooler", "avg");
    require(r, "classification_head.pooler", pool, "zero_index|avg");
    c->pool_mode = pool && strcmp(pool, "avg") == 0 ? 1 : 0;
    c->cls_ff = boolean(r, "classification_head.include_ff_layer", true);
    c->head_dim = integer(r, "classification_head.head_dim", 1024);
    require(r, "classification_head.nonlin", str(r, "classification_head.nonlin", "Tanh"), "Tanh");
    c->cls_drop = (float)num(r, "classification_head.classifier_dropout", 0.1);
}

/* Hugging Face BertConfig keys with their defaults; ScriptableMaskedLM (v1) configs end up here
 * too, as in the reference, where only the keys BertConfig knows take effect. */
static void read_hf(reader *r, bert_config *c) {
    c->kind = BERT_ARCH_HF;
    c->L = integer(r, "num_hidden_layers", 12);
    c->H = integer(r, "hidden_size", 768);
    c->NH = integer(r, "num_attention_heads", 12);
    c->I = integer(r, "intermediate_size", 3072);
    require(r, "hidden_act", str(r, "hidden_act", "gelu"), "gelu");
    c->hidden_drop = (float)num(r, "hidden_dropout_prob", 0.1);
    c->attn_drop = (float)num(r, "attention_probs_dropout_prob", 0.1);
    c->emb_drop = c->hidden_drop;
    c->max_pos = integer(r, "max_position_embeddings", 512);
    c->type_vocab = integer(r, "type_vocab_size", 2);
    c->init_std = (float)num(r, "initializer_range", 0.02);
    c->eps = (float)num(r, "layer_norm_eps", 1e-12);
    require(r, "position_embedding_type", str(r, "position_embedding_type", "absolute"),
            "absolute");
    int V = integer(r, "vocab_size", 0);
    if (V > 0) c->V = V;
    c->pos = BERT_POS_LEARNED;
    c->glu = false;
    c->use_bias = c->qkv_bias = c->decoder_bias = true;
    c->head_transform = true;
    c->emb_norm = true;
    c->final_norm = false;
    c->pad_id = -1; /* pretraining builds the HF model with pad_token_id=None */
    c->sparse_pred = 0.0;
    c->num_labels = integer(r, "num_labels", 0);
    c->pool_mode = 0;
    c->cls_ff = true;
    c->head_dim = c->H;
    c->cls_drop = c->hidden_drop;
}

int bert_config_from_cfg(bert_config *c, const cfg_node *root, int vocab_size, char *err,
                         size_t errlen) {
    memset(c, 0, sizeof *c);
    reader r = {.arch = cfg_get(root, "arch"), .err = err, .errlen = errlen};
    if (!r.arch || r.arch->type != CFG_MAP) {
        snprintf(err, errlen, "the config has no arch section");
        return -1;
    }
    const cfg_node *names = cfg_get(r.arch, "architectures");
    const char *name = NULL;
    if (names && names->type == CFG_LIST && names->n > 0 && names->items[0]->type == CFG_STR)
        name = names->items[0]->s;
    if (!name) {
        snprintf(err, errlen, "arch.architectures: expected a list with the model class name");
        return -1;
    }
    snprintf(c->arch_name, sizeof c->arch_name, "%s", name);
    c->V = vocab_size;
    if (strcmp(name, "ScriptableCrammedBERT") == 0) {
        read_crammed(&r, c);
    } else if (strcmp(name, "SanityCheckLM") == 0) {
        c->kind = BERT_ARCH_SANITY;
        c->H = integer(&r, "width", 1024);
        c->init_std = 0.02f; /* torch defaults are not reproduced; the model is a speed test */
        c->pad_id = 0;
    } else if (strcmp(name, "BertForMaskedLM") == 0 || strcmp(name, "ScriptableMaskedLM") == 0) {
        if (strcmp(name, "ScriptableMaskedLM") == 0)
            core_log_warn("arch.architectures=ScriptableMaskedLM is built as a stock "
                          "BertForMaskedLM from the keys BertConfig knows, as in the reference");
        read_hf(&r, c);
        snprintf(c->arch_name, sizeof c->arch_name, "BertForMaskedLM");
    } else {
        snprintf(err, errlen,
                 "arch.architectures=%s is not supported by cram (supported: "
                 "ScriptableCrammedBERT, BertForMaskedLM, ScriptableMaskedLM, SanityCheckLM)",
                 name);
        return -1;
    }
    if (vocab_size > 0) c->V = vocab_size;
    if (r.failed) return -1;
    if (c->V <= 0) {
        snprintf(err, errlen, "arch.embedding.vocab_size: the vocabulary size is unknown");
        return -1;
    }
    if (c->kind != BERT_ARCH_SANITY) {
        if (c->NH <= 0 || c->H % c->NH != 0) {
            snprintf(err, errlen, "arch: hidden_size %d is not a multiple of the %d heads", c->H,
                     c->NH);
            return -1;
        }
        if (c->glu && c->I % 2) {
            snprintf(err, errlen, "arch.intermed_size=%d must be even for a GLU", c->I);
            return -1;
        }
        if (c->L <= 0 || c->I <= 0 || c->H <= 0) {
            snprintf(err, errlen, "arch: layers, hidden and intermediate sizes must be positive");
            return -1;
        }
    }
    return 0;
}
