/* tok encoding pipeline: split out special tokens in the raw text, normalize, pre-tokenize,
 * run the model per pre-token (through a per-thread word cache), apply the post-processor
 * template and longest-first truncation; plus batch encoding and decoding. */
#include "tok/tok_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

void tok_normalize_into(tok_norm_kind kind, const tok_norm_opts *o, const char *text, size_t len,
                        tok_strbuf *out);

/* ---- per-thread cache: pre-token bytes -> ids (direct mapped; words up to 40 bytes, 14 ids) ----
 */
#define WC_SLOTS 16384
#define WC_WORD 40
#define WC_IDS 14
typedef struct {
    uint64_t hash;
    uint8_t wlen, nids;
    char word[WC_WORD];
    int32_t ids[WC_IDS];
} wc_slot;
typedef struct {
    uint64_t uid;
    wc_slot *slots;
} word_cache;

static _Thread_local word_cache tls_cache;

static word_cache *get_cache(const tok_tokenizer *t) {
    word_cache *c = &tls_cache;
    if (!c->slots) {
        c->slots = calloc(WC_SLOTS, sizeof(wc_slot));
        if (!c->slots) return NULL;
        c->uid = t->uid;
    } else if (c->uid != t->uid) {
        memset(c->slots, 0, WC_SLOTS * sizeof(wc_slot));
        c->uid = t->uid;
    }
    return c;
}

typedef struct {
    const tok_tokenizer *t;
    tok_encoding *e;
    word_cache *cache;
    tok_strbuf bytes; /* BPE: the byte-level mapped pre-token */
} word_ctx;

static void model_word(word_ctx *c, const char *w, size_t n) {
    const tok_tokenizer *t = c->t;
    if (t->model == TOK_MODEL_WORDPIECE) {
        tok_wordpiece_word(t, w, n, c->e);
        return;
    }
    c->bytes.n = 0;
    for (size_t i = 0; i < n; i++)
        tok_sb_put_cp(&c->bytes, tok_byte_to_cp((uint8_t)w[i]));
    tok_bpe_word(t, c->bytes.v, c->bytes.n, c->e);
}

static void on_word(void *ctx, const char *w, size_t n) {
    word_ctx *c = ctx;
    tok_encoding *e = c->e;
    e->n_words++;
    if (!c->cache || n > WC_WORD) {
        model_word(c, w, n);
        return;
    }
    uint64_t h = tok_hash_bytes(w, n);
    wc_slot *s = &c->cache->slots[h & (WC_SLOTS - 1)];
    if (s->hash == h && s->wlen == n && memcmp(s->word, w, n) == 0) {
        for (int k = 0; k < s->nids; k++)
            tok_enc_push(e, s->ids[k], 0);
        return;
    }
    int32_t before = e->n;
    model_word(c, w, n);
    int32_t k = e->n - before;
    if (k <= WC_IDS) {
        s->hash = h;
        s->wlen = (uint8_t)n;
        s->nids = (uint8_t)k;
        memcpy(s->word, w, n);
        memcpy(s->ids, e->ids + before, (size_t)k * sizeof(int32_t));
    }
}

/* normalize + pre-tokenize + model one stretch of raw text without special tokens */
static void encode_plain(const tok_tokenizer *t, const char *text, size_t len, word_ctx *wc,
                         tok_strbuf *norm) {
    if (!len) return;
    norm->n = 0;
    tok_normalize_into(t->norm_kind, &t->norm, text, len, norm);
    const char *s = norm->v;
    size_t n = norm->n;
    tok_strbuf pre = {0};
    if (t->pre == TOK_PRE_BYTELEVEL && n > 0 &&
        s[0] != ' ') { /* add_prefix_space (not on empty text) */
        tok_sb_putc(&pre, ' ');
        tok_sb_put(&pre, s, n);
        s = pre.v;
        n = pre.n;
    }
    tok_pretokenize(t->pre, s, n, on_word, wc);
    free(pre.v);
}

/* longest special token starting at p, or -1 */
static int32_t special_at(const tok_tokenizer *t, const char *p, size_t left, size_t *mlen) {
    int32_t best = -1;
    size_t bl = 0;
    for (int k = 0; k < t->n_added; k++) {
        int32_t id = t->added[k];
        size_t l = t->tok_len[id];
        if (l > bl && l <= left && memcmp(p, t->tok[id], l) == 0) {
            best = id;
            bl = l;
        }
    }
    *mlen = bl;
    return best;
}

static void encode_body(const tok_tokenizer *t, const char *text, size_t len, tok_encoding *e) {
    word_ctx wc = {t, e, get_cache(t), {0}};
    tok_strbuf norm = {0};
    uint8_t first[256] = {0};
    for (int k = 0; k < t->n_added; k++)
        if (t->tok_len[t->added[k]]) first[(uint8_t)t->tok[t->added[k]][0]] = 1;
    size_t seg = 0;
    for (size_t i = 0; i < len; i++) {
        if (!first[(uint8_t)text[i]]) continue;
        size_t ml;
        int32_t id = special_at(t, text + i, len - i, &ml);
        if (id < 0) continue;
        encode_plain(t, text + seg, i - seg, &wc, &norm);
        tok_enc_push(e, id, 0);
        i += ml - 1;
        seg = i + 1;
    }
    encode_plain(t, text + seg, len - seg, &wc, &norm);
    free(norm.v);
    free(wc.bytes.v);
}

static void set_types(tok_encoding *e, int32_t from, uint8_t type) {
    for (int32_t i = from; i < e->n; i++)
        e->type_ids[i] = type;
}

int tok_encode(const tok_tokenizer *t, const char *text, size_t len, bool add_special,
               tok_encoding *e, char *err) {
    if (!t || !e || (!text && len)) {
        tok_errf(err, "tok_encode: NULL argument");
        return TOK_EINVAL;
    }
    if (t->n_vocab == 0) {
        tok_errf(err, "tok_encode: the tokenizer has no vocabulary");
        return TOK_EINVAL;
    }
    e->n = 0;
    e->n_words = 0;
    int32_t cls = t->special[TOK_CLS], sep = t->special[TOK_SEP];
    if (add_special && t->include_cls && cls >= 0) tok_enc_push(e, cls, 0);
    encode_body(t, text ? text : "", len, e);
    if (add_special && t->include_sep && sep >= 0) tok_enc_push(e, sep, 0);
    return TOK_OK;
}

static void enc_truncate(tok_encoding *e, int32_t n) {
    if (n < 0) n = 0;
    if (e->n > n) e->n = n;
}

void tok_truncate_longest_first(tok_encoding *a, tok_encoding *b, int max_length) {
    if (max_length < 0) max_length = 0;
    int32_t total = a->n + (b ? b->n : 0);
    if (total <= max_length) return;
    if (!b) {
        enc_truncate(a, max_length);
        return;
    }
    int32_t n1 = a->n, n2 = b->n, m = max_length;
    bool swap = n1 > n2;
    if (swap) {
        int32_t x = n1;
        n1 = n2;
        n2 = x;
    }
    if (n1 > m)
        n2 = n1;
    else
        n2 = n1 > m - n1 ? n1 : m - n1;
    if (n1 + n2 > m) {
        n1 = m / 2;
        n2 = n1 + m % 2;
    }
    if (swap) {
        int32_t x = n1;
        n1 = n2;
        n2 = x;
    }
    enc_truncate(a, n1);
    enc_truncate(b, n2);
}

int tok_encode_pair(const tok_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                    int max_length, tok_encoding *e, char *err) {
    if (!t || !e || (!a && alen) || (!b && blen)) {
        tok_errf(err, "tok_encode_pair: NULL argument");
        return TOK_EINVAL;
    }
    if (t->n_vocab == 0) {
        tok_errf(err, "tok_encode_pair: the tokenizer has no vocabulary");
        return TOK_EINVAL;
    }
    tok_encoding ea = {0}, eb = {0};
    encode_body(t, a ? a : "", alen, &ea);
    encode_body(t, b ? b : "", blen, &eb);
    int32_t cls = t->special[TOK_CLS], sep = t->special[TOK_SEP];
    int n_special = (cls >= 0) + 2 * (sep >= 0);
    if (max_length > 0)
        tok_truncate_longest_first(&ea, &eb, max_length > n_special ? max_length - n_special : 0);
    e->n = 0;
    e->n_words = ea.n_words + eb.n_words;
    uint8_t tb = t->use_type_ids ? 1 : 0;
    if (cls >= 0) tok_enc_push(e, cls, 0);
    for (int32_t i = 0; i < ea.n; i++)
        tok_enc_push(e, ea.ids[i], 0);
    if (sep >= 0) tok_enc_push(e, sep, 0);
    int32_t from = e->n;
    for (int32_t i = 0; i < eb.n; i++)
        tok_enc_push(e, eb.ids[i], 0);
    if (sep >= 0) tok_enc_push(e, sep, 0);
    set_types(e, from, tb);
    tok_encoding_free(&ea);
    tok_encoding_free(&eb);
    return TOK_OK;
}

int tok_encode_batch(const tok_tokenizer *t, const char *const *texts, const size_t *lens, size_t n,
                     bool add_special, tok_encoding *outs, char *err) {
    if (!t || (n && (!texts || !lens || !outs))) {
        tok_errf(err, "tok_encode_batch: NULL argument");
        return TOK_EINVAL;
    }
    int fail = 0;
    int nt = t->threads > 0 ? t->threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 64) num_threads(nt) reduction(| : fail)
    for (size_t i = 0; i < n; i++)
        fail |= tok_encode(t, texts[i], lens[i], add_special, &outs[i], NULL) != TOK_OK;
    if (fail) {
        tok_errf(err, "tok_encode_batch: some inputs could not be encoded");
        return TOK_EINVAL;
    }
    return TOK_OK;
}

/* ---------------- decoding ---------------- */
static bool is_special_id(const tok_tokenizer *t, int32_t id) {
    for (int k = 0; k < t->n_added; k++)
        if (t->added[k] == id) return true;
    return false;
}

/* HF's WordPiece decoder cleanup, applied to each piece (with its leading space) */
static void cleanup_append(tok_strbuf *out, const char *s, size_t n) {
    static const char *const from[] = {" .",  " ?",      " !",  " ,",   " ' ", " n't",
                                       " 'm", " do not", " 's", " 've", " 're"};
    static const char *const to[] = {".",  "?",      "!",  ",",   "'",  "n't",
                                     "'m", " don't", "'s", "'ve", "'re"};
    tok_strbuf a = {0}, b = {0};
    tok_sb_put(&a, s, n);
    for (size_t r = 0; r < sizeof(from) / sizeof(from[0]); r++) {
        size_t fl = strlen(from[r]), tl = strlen(to[r]);
        b.n = 0;
        tok_sb_reserve(&b, a.n + 1);
        for (size_t i = 0; i < a.n;) {
            if (i + fl <= a.n && memcmp(a.v + i, from[r], fl) == 0) {
                tok_sb_put(&b, to[r], tl);
                i += fl;
            } else {
                tok_sb_putc(&b, a.v[i++]);
            }
        }
        tok_strbuf x = a;
        a = b;
        b = x;
    }
    tok_sb_put(out, a.v, a.n);
    free(a.v);
    free(b.v);
}

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, bool skip_special, char **out,
               size_t *out_len, char *err) {
    if (!t || !out || (n && !ids)) {
        tok_errf(err, "tok_decode: NULL argument");
        return TOK_EINVAL;
    }
    tok_strbuf sb = {0}, piece = {0};
    tok_sb_reserve(&sb, 16);
    sb.v[0] = 0;
    size_t emitted = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab) {
            free(sb.v);
            free(piece.v);
            tok_errf(err, "tok_decode: id %d out of range (vocab %d)", id, t->n_vocab);
            return TOK_EINVAL;
        }
        if (skip_special && is_special_id(t, id)) continue;
        const char *s = t->tok[id];
        size_t l = t->tok_len[id];
        if (t->model == TOK_MODEL_BPE) {
            const uint8_t *u = (const uint8_t *)s;
            size_t k = 0;
            while (k < l) {
                size_t p = k;
                int32_t c = tok_utf8_next(u, l, &k);
                int b = tok_cp_to_byte(c);
                if (b >= 0)
                    tok_sb_putc(&sb, (char)b);
                else
                    tok_sb_put(&sb, s + p, k - p);
            }
            continue;
        }
        piece.n = 0;
        if (emitted > 0) {
            if (l >= (size_t)t->prefix_len && memcmp(s, t->prefix, (size_t)t->prefix_len) == 0) {
                s += t->prefix_len;
                l -= (size_t)t->prefix_len;
            } else {
                tok_sb_putc(&piece, ' ');
            }
        }
        tok_sb_put(&piece, s, l);
        cleanup_append(&sb, piece.v, piece.n);
        emitted++;
    }
    free(piece.v);
    if (t->model == TOK_MODEL_BPE && !tok_utf8_valid(sb.v, sb.n)) { /* from_utf8_lossy */
        tok_strbuf v = {0};
        const uint8_t *u = (const uint8_t *)sb.v;
        size_t k = 0;
        while (k < sb.n)
            tok_sb_put_cp(&v, tok_utf8_next(u, sb.n, &k));
        if (!v.v) tok_sb_reserve(&v, 1), v.v[0] = 0;
        free(sb.v);
        sb = v;
    }
    *out = sb.v;
    if (out_len) *out_len = sb.n;
    return TOK_OK;
}
