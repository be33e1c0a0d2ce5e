/* tok helpers: the open-addressing map, growable buffers, UTF-8 coding and the Unicode
 * character classes (word, space, punctuation) with Hugging Face tokenizers' definitions. */
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

void tok_errf(char *err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, TOK_ERRLEN, fmt, ap);
    va_end(ap);
}

static void *tok_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "tok: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

/* ---------------- map ---------------- */
void tok_map_init(tok_map *m, size_t cap_hint) {
    size_t cap = 16;
    while (cap < cap_hint * 2)
        cap <<= 1;
    m->cap = cap;
    m->n = 0;
    m->keys = calloc(cap, sizeof(uint64_t));
    m->vals = malloc(cap * sizeof(int64_t));
    if (!m->keys || !m->vals) {
        fprintf(stderr, "tok: out of memory (map of %zu)\n", cap);
        abort();
    }
}

void tok_map_free(tok_map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

int64_t *tok_map_get(const tok_map *m, uint64_t key) {
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1, i = tok_mix64(key) & mask;
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) return &m->vals[i];
        if (k == 0) return NULL;
        i = (i + 1) & mask;
    }
}

static void tok_map_grow(tok_map *m) {
    tok_map g;
    tok_map_init(&g, m->cap);
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) *tok_map_put(&g, m->keys[i], 0) = m->vals[i];
    tok_map_free(m);
    *m = g;
}

int64_t *tok_map_put(tok_map *m, uint64_t key, int64_t v0) {
    if (!m->cap) tok_map_init(m, 16);
    if ((m->n + 1) * 4 > m->cap * 3) tok_map_grow(m);
    size_t mask = m->cap - 1, i = tok_mix64(key) & mask;
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) return &m->vals[i];
        if (k == 0) {
            m->keys[i] = key;
            m->vals[i] = v0;
            m->n++;
            return &m->vals[i];
        }
        i = (i + 1) & mask;
    }
}

uint64_t tok_hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0x100000001B3ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ tok_mix64(w)) * 0x100000001B3ULL;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = tok_mix64(h ^ w ^ (n << 56));
    return h;
}

/* ---------------- buffers ---------------- */
void tok_cp_reserve(tok_cpbuf *b, size_t need) {
    if (need <= b->cap) return;
    size_t c = b->cap ? b->cap : 64;
    while (c < need)
        c *= 2;
    b->v = tok_xrealloc(b->v, c * sizeof(int32_t));
    b->cap = c;
}

void tok_cp_push(tok_cpbuf *b, int32_t c) {
    if (b->n == b->cap) tok_cp_reserve(b, b->n + 1);
    b->v[b->n++] = c;
}

void tok_sb_reserve(tok_strbuf *b, size_t need) {
    if (need <= b->cap) return;
    size_t c = b->cap ? b->cap : 64;
    while (c < need)
        c *= 2;
    b->v = tok_xrealloc(b->v, c);
    b->cap = c;
}

void tok_sb_put(tok_strbuf *b, const void *p, size_t n) {
    tok_sb_reserve(b, b->n + n + 1);
    memcpy(b->v + b->n, p, n);
    b->n += n;
    b->v[b->n] = 0;
}

void tok_sb_putc(tok_strbuf *b, char c) {
    tok_sb_reserve(b, b->n + 2);
    b->v[b->n++] = c;
    b->v[b->n] = 0;
}

void tok_sb_put_cp(tok_strbuf *b, int32_t c) {
    tok_sb_reserve(b, b->n + 5);
    b->n += tok_utf8_put(b->v + b->n, c);
    b->v[b->n] = 0;
}

void tok_encoding_free(tok_encoding *e) {
    free(e->ids);
    free(e->type_ids);
    memset(e, 0, sizeof(*e));
}

void tok_enc_push(tok_encoding *e, int32_t id, uint8_t type) {
    if (e->n == e->cap) {
        int32_t c = e->cap ? e->cap * 2 : 64;
        e->ids = tok_xrealloc(e->ids, (size_t)c * sizeof(int32_t));
        e->type_ids = tok_xrealloc(e->type_ids, (size_t)c);
        e->cap = c;
    }
    e->ids[e->n] = id;
    e->type_ids[e->n] = type;
    e->n++;
}

/* ---------------- UTF-8 ---------------- */
int32_t tok_utf8_next(const uint8_t *s, size_t n, size_t *i) {
    size_t p = *i;
    uint8_t b0 = s[p];
    if (b0 < 0x80) {
        *i = p + 1;
        return b0;
    }
    int len;
    int32_t c, min;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
        c = b0 & 0x1F;
        min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        c = b0 & 0x0F;
        min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        c = b0 & 0x07;
        min = 0x10000;
    } else {
        *i = p + 1;
        return 0xFFFD;
    }
    if (p + (size_t)len > n) {
        *i = p + 1;
        return 0xFFFD;
    }
    for (int k = 1; k < len; k++) {
        uint8_t b = s[p + k];
        if ((b & 0xC0) != 0x80) {
            *i = p + 1;
            return 0xFFFD;
        }
        c = (c << 6) | (b & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        *i = p + 1;
        return 0xFFFD;
    }
    *i = p + (size_t)len;
    return c;
}

int tok_utf8_put(char *d, int32_t c) {
    uint8_t *o = (uint8_t *)d;
    if (c < 0x80) {
        o[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (uint8_t)(0xC0 | (c >> 6));
        o[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (c >> 12));
        o[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (c >> 18));
    o[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

bool tok_utf8_valid(const char *s, size_t n) {
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t j = i;
        int32_t c = tok_utf8_next(u, n, &j);
        if (c == 0xFFFD && !(j - i == 3 && u[i] == 0xEF && u[i + 1] == 0xBF && u[i + 2] == 0xBD))
            return false;
        i = j;
    }
    return true;
}

size_t tok_utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((uint8_t)s[i] & 0xC0) != 0x80;
    return c;
}

/* ---------------- Unicode classes ---------------- */
bool tok_u_is_space(int32_t c) {
    if (c < 0x80) return (c >= 9 && c <= 13) || c == 32;
    switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

/* Oniguruma's Unicode \w is UTS #18 "word": Alphabetic + Mark + Decimal_Number +
 * Connector_Punctuation
 * + Join_Control. Alphabetic = L* + Nl + Other_Alphabetic; the Other_Alphabetic code points outside
 * the Mark categories are the circled / squared / negative-squared Latin letters listed below. */
bool tok_u_is_word(int32_t c) {
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
    if (c == 0x200C || c == 0x200D) return true;
    if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
        (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189))
        return true;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}

static bool is_mark_cat(utf8proc_category_t k) {
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

/* Category changes since Unicode 8.0/9.0 (UnicodeData history): U+1734 Mn->Mc (14.0), U+1885..1886
 * Lo->Mn (9.0), U+A9BD Mc->Mn (12.0), U+111C9 Po->Mn (11.0), U+1CF2..1CF3 Mc->Lo (10.0), U+166D
 * Po->So (12.0, see tok_u_is_bert_punct). */
bool tok_hf_strip_mark(int32_t c) {
    if (c == 0x111C9) return false;
    if (c == 0x1CF2 || c == 0x1CF3) return true;
    return is_mark_cat(utf8proc_category(c)) && tok_unicode_age(c) <= TOK_HF_NORM_AGE;
}

bool tok_hf_bert_mn(int32_t c) {
    if (c == 0x1734) return true;
    if (c == 0x1885 || c == 0x1886 || c == 0xA9BD || c == 0x111C9) return false;
    return utf8proc_category(c) == UTF8PROC_CATEGORY_MN && !tok_unicode_age(c);
}

/* lowercase mappings new in Unicode 16.0 (utf8proc 2.8 has 15.0) */
static int32_t lower16(int32_t c) {
    switch (c) {
    case 0x1C89:
        return 0x1C8A;
    case 0xA7CB:
        return 0x0264;
    case 0xA7CC:
        return 0xA7CD;
    case 0xA7CE:
        return 0xA7CF;
    case 0xA7D2:
        return 0xA7D3;
    case 0xA7D4:
        return 0xA7D5;
    case 0xA7DA:
        return 0xA7DB;
    case 0xA7DC:
        return 0x019B;
    default:
        if (c >= 0x10D50 && c <= 0x10D65) return c + 0x20;
        if (c >= 0x16EA0 && c <= 0x16EB8) return c + 0x1B;
        return c;
    }
}

int32_t tok_lower(int32_t c, int32_t *second) {
    *second = -1;
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c == 0x130) { /* the one unconditional multi-char lowercase mapping (SpecialCasing.txt) */
        *second = 0x307;
        return 'i';
    }
    int32_t l = utf8proc_tolower(c);
    return l != c ? l : lower16(c);
}

/* BERT: ASCII punctuation (includes $+<=>^`|~) or any Unicode P* category (as of Unicode 8.0). */
bool tok_u_is_bert_punct(int32_t c) {
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
               (c >= 123 && c <= 126);
    if (c == 0x111C9 || c == 0x166D) return true; /* Po in 8.0 (now Mn, So) */
    if (tok_unicode_age(c)) return false;         /* HF's category table is Unicode 8.0 */
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return true;
    default:
        return false;
    }
}
