/* The MLM collator: exactly m = round(p*S) masked positions per row (a uniform
 * random subset by partial Fisher-Yates), the first round(0.8m) of them <mask>, the next
 * round(0.9m)-round(0.8m) a uniform random id, the rest unchanged; special tokens maskable.
 * All randomness comes from one counter-based stream per (seed, rank, step). */
#include "data/data.h"

#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double mlm_round_half_even(double x) {
    double r = nearbyint(x); /* the default rounding mode is to nearest, ties to even */
    return r;
}

int mlm_num_masked(const mlm_opts *o, int S) {
    if (o->disable_mlm) return 0;
    int m = (int)mlm_round_half_even(o->mlm_probability * S);
    return m < 0 ? 0 : m > S ? S : m;
}

int mlm_out_len(const mlm_opts *o, int S) {
    return o->token_drop > 0 ? (int)(S * (1.0 - o->token_drop)) : S;
}

int mlm_opts_from_config(mlm_opts *o, const cfg_node *cfg, const tok_tokenizer *t, char *err,
                         size_t errlen) {
    memset(o, 0, sizeof *o);
    cfg_error ce;
    double p = 0.25, td = 0;
    bool rule = true, dis = false;
    if (cfg_get_num(cfg, "train.objective.mlm_probability", &p, &ce) != 0 ||
        cfg_get_bool(cfg, "train.objective.use_80_20_rule", &rule, &ce) != 0 ||
        cfg_get_bool(cfg, "train.objective.disable_mlm", &dis, &ce) != 0 ||
        cfg_get_num(cfg, "train.objective.token_drop", &td, &ce) != 0) {
        snprintf(err, errlen, "%s", ce.msg);
        return -1;
    }
    if (p < 0 || p > 1 || td < 0 || td >= 1) {
        snprintf(err, errlen, "train.objective: mlm_probability %g or token_drop %g out of [0,1)",
                 p, td);
        return -1;
    }
    if (p == 0 && !dis) {
        snprintf(err, errlen,
                 "train.objective.mlm_probability=0 masks no token, so every MLM loss would be "
                 "NaN; use a value in (0, 1] (or train.objective.disable_mlm=True)");
        return -1;
    }
    o->mlm_probability = p;
    o->use_80_20_rule = rule;
    o->disable_mlm = dis;
    o->token_drop = td;
    o->mask_id = tok_special_id(t, TOK_MASK);
    o->pad_id = tok_special_id(t, TOK_PAD);
    o->vocab_size = tok_vocab_size(t);
    if (o->mask_id < 0 && !dis) {
        snprintf(err, errlen, "the tokenizer has no mask token");
        return -1;
    }
    return 0;
}

void mlm_batch_init(mlm_batch *b, int B, int S_in, const mlm_opts *o) {
    memset(b, 0, sizeof *b);
    b->B = b->cap = B;
    b->S = mlm_out_len(o, S_in);
    b->M = o->token_drop > 0 ? 0 : mlm_num_masked(o, S_in);
    b->input_ids = xmalloc((size_t)B * (size_t)b->S * sizeof(int32_t));
    b->labels = xmalloc((size_t)B * (size_t)b->S * sizeof(int32_t));
    b->positions = xmalloc(((size_t)B * (size_t)b->M + 1) * sizeof(int32_t));
    b->targets = xmalloc(((size_t)B * (size_t)b->M + 1) * sizeof(int32_t));
}

void mlm_batch_free(mlm_batch *b) {
    free(b->input_ids), free(b->labels), free(b->positions), free(b->targets);
    memset(b, 0, sizeof *b);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void mlm_collate(mlm_batch *out, const int32_t *rows, int B, int S_in, const mlm_opts *o,
                 uint64_t seed, const uint64_t *keys) {
    CORE_CHECK(B >= 0 && B <= out->cap, "mlm_collate: %d rows for a batch of %d", B, out->cap);
    out->B = B;
    core_rng rng;
    int S = S_in, m = mlm_num_masked(o, S);
    int n_mask = o->use_80_20_rule ? (int)mlm_round_half_even(0.8 * m) : m;
    int n_rand = o->use_80_20_rule ? (int)mlm_round_half_even(0.9 * m) - n_mask : 0;
    int32_t *idx = xmalloc((size_t)S * sizeof *idx);
    int32_t *in = xmalloc((size_t)S * sizeof *in), *lab = xmalloc((size_t)S * sizeof *lab);
    int S_out = mlm_out_len(o, S);
    for (int b = 0; b < out->B; b++) {
        core_rng_init(&rng, seed, 0, keys[b], MLM_RNG_STREAM);
        const int32_t *row = rows + (size_t)b * (size_t)S;
        memcpy(in, row, (size_t)S * sizeof *in);
        if (o->disable_mlm) {
            for (int k = 0; k < S; k++)
                lab[k] = row[k] == o->pad_id ? -100 : row[k];
        } else {
            for (int k = 0; k < S; k++)
                lab[k] = -100, idx[k] = k;
            for (int j = 0; j < m; j++) { /* partial Fisher-Yates: idx[0..m) is the subset */
                int r = j + (int)core_rng_below(&rng, (uint32_t)(S - j));
                int32_t t = idx[j];
                idx[j] = idx[r], idx[r] = t;
            }
            for (int j = 0; j < m; j++) {
                int pos = idx[j];
                lab[pos] = row[pos];
                if (j < n_mask)
                    in[pos] = o->mask_id;
                else if (j < n_mask + n_rand)
                    in[pos] = (int32_t)core_rng_below(&rng, (uint32_t)o->vocab_size);
            }
            if (out->M) {
                int32_t *pp = out->positions + (size_t)b * (size_t)out->M;
                memcpy(pp, idx, (size_t)m * sizeof *pp);
                qsort(pp, (size_t)m, sizeof *pp, cmp_i32);
                for (int j = 0; j < m; j++)
                    out->targets[(size_t)b * (size_t)m + j] = row[pp[j]];
            }
        }
        int32_t *oi = out->input_ids + (size_t)b * (size_t)S_out;
        int32_t *ol = out->labels + (size_t)b * (size_t)S_out;
        if (S_out == S) {
            memcpy(oi, in, (size_t)S * sizeof *oi);
            memcpy(ol, lab, (size_t)S * sizeof *ol);
        } else { /* token_drop: keep a random S_out positions, in their original order */
            for (int k = 0; k < S; k++)
                idx[k] = k;
            for (int j = 0; j < S_out; j++) {
                int r = j + (int)core_rng_below(&rng, (uint32_t)(S - j));
                int32_t t = idx[j];
                idx[j] = idx[r], idx[r] = t;
            }
            qsort(idx, (size_t)S_out, sizeof *idx, cmp_i32);
            for (int j = 0; j < S_out; j++)
                oi[j] = in[idx[j]], ol[j] = lab[idx[j]];
        }
    }
    free(idx), free(in), free(lab);
}
