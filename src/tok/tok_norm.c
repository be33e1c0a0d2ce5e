/* tok normalizers: the reference's sequence ("``"/"''" -> '"', NFD|NFKC, lowercase, strip marks,
 * collapse spaces, ASCII-only, whitespace escape) and Hugging Face's BertNormalizer, with an
 * all-ASCII fast path that gives byte-identical results to the general path. */
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static bool all_ascii(const uint8_t *s, size_t n) {
    size_t i = 0;
    uint64_t acc = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= s[i];
    return (acc & 0x8080808080808080ULL) == 0;
}

static int32_t lower_cp(int32_t c, int32_t *second) {
    return tok_lower(c, second);
}

/* HF's StripAccents: General_Category Mark, as of its Unicode 9.0 tables */
static bool is_mark(int32_t c) {
    return c >= 0x300 && tok_hf_strip_mark(c);
}

/* canonical combining class as HF's normalization tables (Unicode 9.0) see it */
static int ccc(int32_t c) {
    if (c < 0x300) return 0;
    int k = utf8proc_get_property(c)->combining_class;
    return k && tok_unicode_age(c) > TOK_HF_NORM_AGE ? 0 : k;
}

/* Canonical decomposition (compat adds compatibility mappings) of b into d, then canonical
 * reordering. */
static void decompose(const tok_cpbuf *b, tok_cpbuf *d, bool compat) {
    d->n = 0;
    tok_cp_reserve(d, b->n + 16);
    utf8proc_option_t opt = UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0);
    bool any_ccc = false;
    for (size_t i = 0; i < b->n; i++) {
        int32_t c = b->v[i];
        if ((c < 0xC0 && (c < 0x80 || !compat)) ||
            (c >= 0x560 && tok_unicode_age(c) > TOK_HF_NORM_AGE)) {
            /* nothing below U+00C0 has a canonical decomposition; newer characters are unknown to
             * HF */
            tok_cp_push(d, c);
            if (ccc(c)) any_ccc = true;
            continue;
        }
        for (;;) {
            tok_cp_reserve(d, d->n + 32);
            int bound = 0;
            utf8proc_ssize_t k = utf8proc_decompose_char(
                c, d->v + d->n, (utf8proc_ssize_t)(d->cap - d->n), opt, &bound);
            if (k < 0) {
                tok_cp_push(d, c);
                break;
            }
            if ((size_t)k <= d->cap - d->n) {
                for (utf8proc_ssize_t j = 0; j < k; j++)
                    if (ccc(d->v[d->n + j])) any_ccc = true;
                d->n += (size_t)k;
                break;
            }
            tok_cp_reserve(d, d->n + (size_t)k);
        }
    }
    if (!any_ccc) return;
    /* canonical ordering: stable sort of each run of non-starters by combining class */
    for (size_t i = 0; i + 1 < d->n;) {
        int ca = ccc(d->v[i]);
        int cb = ccc(d->v[i + 1]);
        if (ca > cb && cb > 0) {
            int32_t t = d->v[i];
            d->v[i] = d->v[i + 1];
            d->v[i + 1] = t;
            if (i > 0) i--;
        } else {
            i++;
        }
    }
}

static void decode_all(const char *text, size_t len, tok_cpbuf *b) {
    b->n = 0;
    tok_cp_reserve(b, len + 1);
    const uint8_t *u = (const uint8_t *)text;
    size_t i = 0;
    while (i < len)
        b->v[b->n++] = tok_utf8_next(u, len, &i);
}

/* replace every non-overlapping "cc" (scanning left to right) by '"' */
static void replace_double(tok_cpbuf *b, int32_t ch) {
    size_t o = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i] == ch && i + 1 < b->n && b->v[i + 1] == ch) {
            b->v[o++] = '"';
            i++;
        } else {
            b->v[o++] = b->v[i];
        }
    }
    b->n = o;
}

/* The tail of the reference sequence, streamed per code point:
 * lowercase -> strip marks -> collapse "  +" -> drop non-ASCII -> " " to U+4E00. */
typedef struct {
    const tok_norm_opts *o;
    tok_strbuf *out;
    bool last_space;
} tail_state;

static void tail_emit(tail_state *s, int32_t c) {
    if (s->o->strip_accents && is_mark(c)) return;
    if (c == ' ') {
        if (s->last_space) return;
        s->last_space = true;
    } else {
        s->last_space = false;
    }
    if (s->o->force_english_keyboard && c >= 0x80) return;
    if (c == ' ' && s->o->whitespace_escape) {
        tok_sb_put(s->out, "\xE4\xB8\x80", 3);
        return;
    }
    tok_sb_put_cp(s->out, c);
}

static void norm_cram_ascii(const tok_norm_opts *o, const uint8_t *s, size_t n, tok_strbuf *out) {
    tok_sb_reserve(out, out->n + (o->whitespace_escape ? 3 * n : n) + 1);
    char *d = out->v + out->n;
    bool last_space = false;
    /* The reference replaces "``" and then "''" in two passes; the two patterns share no
     * character and the replacement '"' is in neither, so one left-to-right pass is the same. */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '`' && i + 1 < n && s[i + 1] == '`') {
            c = '"';
            i++;
        } else if (c == '\'' && i + 1 < n && s[i + 1] == '\'') {
            c = '"';
            i++;
        }
        if (o->force_lowercase && c >= 'A' && c <= 'Z') c += 32;
        if (c == ' ') {
            if (last_space) continue;
            last_space = true;
            if (o->whitespace_escape) {
                memcpy(d, "\xE4\xB8\x80", 3);
                d += 3;
                continue;
            }
        } else {
            last_space = false;
        }
        *d++ = (char)c;
    }
    out->n = (size_t)(d - out->v);
    out->v[out->n] = 0;
}

static void norm_cram(const tok_norm_opts *o, const char *text, size_t len, tok_strbuf *out) {
    if (all_ascii((const uint8_t *)text, len)) {
        norm_cram_ascii(o, (const uint8_t *)text, len, out);
        return;
    }
    tok_cpbuf b = {0}, d = {0};
    decode_all(text, len, &b);
    replace_double(&b, '`');
    replace_double(&b, '\'');
    decompose(&b, &d, !o->strip_accents);
    if (!o->strip_accents) {
        utf8proc_ssize_t k = utf8proc_normalize_utf32(d.v, (utf8proc_ssize_t)d.n,
                                                      UTF8PROC_COMPOSE | UTF8PROC_STABLE);
        if (k >= 0) d.n = (size_t)k;
    }
    tok_sb_reserve(out, out->n + d.n + 1);
    tail_state st = {o, out, false};
    for (size_t i = 0; i < d.n; i++) {
        int32_t c = d.v[i], c2 = -1;
        if (o->force_lowercase) c = lower_cp(c, &c2);
        tail_emit(&st, c);
        if (c2 >= 0) tail_emit(&st, c2);
    }
    free(b.v);
    free(d.v);
}

/* ---------------- BertNormalizer (clean_text, handle_chinese_chars, strip_accents, lowercase)
 * ---------------- */
static bool bert_is_control(int32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    if (c < 0x20 || c == 0x7F) return true;
    if (c < 0x80) return false;
    utf8proc_category_t k = utf8proc_category(c);
    /* Rust unicode_categories' is_other(): Cc, Cf, Co as of Unicode 8.0 (unassigned code points are
     * kept) */
    if (tok_unicode_age(c)) return false;
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO ||
           k == UTF8PROC_CATEGORY_CS;
}

static bool bert_is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static void norm_bert(const char *text, size_t len, tok_strbuf *out) {
    const uint8_t *u = (const uint8_t *)text;
    if (all_ascii(u, len)) {
        tok_sb_reserve(out, out->n + len + 1);
        char *d = out->v + out->n;
        for (size_t i = 0; i < len; i++) {
            uint8_t c = u[i];
            if (c == 0 || bert_is_control(c)) continue;
            if (c == '\t' || c == '\n' || c == '\r' || tok_u_is_space(c)) c = ' ';
            if (c >= 'A' && c <= 'Z') c += 32;
            *d++ = (char)c;
        }
        out->n = (size_t)(d - out->v);
        out->v[out->n] = 0;
        return;
    }
    tok_cpbuf b = {0}, d = {0};
    tok_cp_reserve(&b, len + 1);
    size_t i = 0;
    while (i < len) {
        int32_t c = tok_utf8_next(u, len, &i);
        if (c == 0 || c == 0xFFFD || bert_is_control(c)) continue;
        if (tok_u_is_space(c)) c = ' ';
        if (bert_is_cjk(c)) {
            tok_cp_push(&b, ' ');
            tok_cp_push(&b, c);
            tok_cp_push(&b, ' ');
        } else {
            tok_cp_push(&b, c);
        }
    }
    decompose(&b, &d, false);
    tok_sb_reserve(out, out->n + d.n + 1);
    for (size_t k = 0; k < d.n; k++) {
        int32_t c = d.v[k], c2 = -1;
        if (c >= 0x300 && tok_hf_bert_mn(c)) continue;
        c = lower_cp(c, &c2);
        tok_sb_put_cp(out, c);
        if (c2 >= 0) tok_sb_put_cp(out, c2);
    }
    free(b.v);
    free(d.v);
}

/* Append the normalized form of text to out (internal entry point used by the encoder). */
void tok_normalize_into(tok_norm_kind kind, const tok_norm_opts *o, const char *text, size_t len,
                        tok_strbuf *out);
void tok_normalize_into(tok_norm_kind kind, const tok_norm_opts *o, const char *text, size_t len,
                        tok_strbuf *out) {
    switch (kind) {
    case TOK_NORM_CRAM:
        norm_cram(o, text, len, out);
        break;
    case TOK_NORM_BERT:
        norm_bert(text, len, out);
        break;
    default: { /* no normalizer: only make the text valid UTF-8 */
        const uint8_t *u = (const uint8_t *)text;
        if (all_ascii(u, len)) {
            tok_sb_put(out, text, len);
        } else {
            size_t i = 0;
            while (i < len)
                tok_sb_put_cp(out, tok_utf8_next(u, len, &i));
        }
        break;
    }
    }
    tok_sb_reserve(out, out->n + 1);
    out->v[out->n] = 0;
}

int tok_normalize_with(tok_norm_kind kind, const tok_norm_opts *o, const char *text, size_t len,
                       char **out, size_t *out_len, char *err) {
    if ((!text && len) || !out) {
        tok_errf(err, "tok_normalize: NULL argument");
        return TOK_EINVAL;
    }
    tok_norm_opts none = {0};
    tok_strbuf sb = {0};
    tok_normalize_into(kind, o ? o : &none, text ? text : "", len, &sb);
    if (!sb.v) tok_sb_reserve(&sb, 1), sb.v[0] = 0;
    *out = sb.v;
    if (out_len) *out_len = sb.n;
    return TOK_OK;
}

int tok_normalize(const tok_tokenizer *t, const char *text, size_t len, char **out, size_t *out_len,
                  char *err) {
    if (!t) {
        tok_errf(err, "tok_normalize: NULL tokenizer");
        return TOK_EINVAL;
    }
    return tok_normalize_with(t->norm_kind, &t->norm, text, len, out, out_len, err);
}
