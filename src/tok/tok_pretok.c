/* tok pre-tokenizers: Whitespace (\w+|[^\w\s]+), BERT (whitespace split, each punctuation
 * character alone) and GPT-2 byte-level (the GPT-2 regex; bytes mapped to printable code points).
 */
#include "tok/tok_internal.h"

#include <pthread.h>
#include <utf8proc.h>

/* classes: 1 word, 2 space, 0 other */
static inline int ascii_class(uint8_t c) {
    uint8_t l = c | 32;
    if ((l >= 'a' && l <= 'z') || (c >= '0' && c <= '9') || c == '_') return 1;
    return ((c >= 9 && c <= 13) || c == 32) ? 2 : 0;
}

static inline int ws_class(const uint8_t *u, size_t n, size_t *i) {
    if (u[*i] < 0x80) return ascii_class(u[(*i)++]);
    int32_t c = tok_utf8_next(u, n, i);
    return tok_u_is_word(c) ? 1 : tok_u_is_space(c) ? 2 : 0;
}

static void pre_whitespace(const char *text, size_t n, tok_word_fn fn, void *ctx) {
    const uint8_t *u = (const uint8_t *)text;
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        int k = ws_class(u, n, &i);
        if (k == 2) continue;
        size_t end = i;
        while (i < n) {
            size_t j = i;
            if (ws_class(u, n, &j) != k) break;
            i = end = j;
        }
        fn(ctx, text + start, end - start);
    }
}

static void pre_bert(const char *text, size_t n, tok_word_fn fn, void *ctx) {
    const uint8_t *u = (const uint8_t *)text;
    size_t i = 0, start = 0;
    bool in_word = false;
    while (i < n) {
        size_t p = i;
        int32_t c = tok_utf8_next(u, n, &i);
        if (tok_u_is_space(c)) {
            if (in_word) fn(ctx, text + start, p - start);
            in_word = false;
        } else if (tok_u_is_bert_punct(c)) {
            if (in_word) fn(ctx, text + start, p - start);
            in_word = false;
            fn(ctx, text + p, i - p);
        } else if (!in_word) {
            in_word = true;
            start = p;
        }
    }
    if (in_word) fn(ctx, text + start, n - start);
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
enum { C_L, C_N, C_S, C_O };
static int gpt2_class(int32_t c) {
    if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return C_L;
        if (c >= '0' && c <= '9') return C_N;
        if (tok_u_is_space(c)) return C_S;
        return C_O;
    }
    if (tok_u_is_space(c)) return C_S;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return C_L;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return C_N;
    default:
        return C_O;
    }
}

static int class_at(const uint8_t *u, size_t n, size_t i, size_t *next) {
    size_t j = i;
    int32_t c = tok_utf8_next(u, n, &j);
    if (next) *next = j;
    return gpt2_class(c);
}

static void pre_gpt2(const char *text, size_t n, tok_word_fn fn, void *ctx) {
    const uint8_t *u = (const uint8_t *)text;
    size_t i = 0;
    while (i < n) {
        size_t start = i, j;
        if (u[i] == '\'' && i + 1 < n) {
            uint8_t a = u[i + 1], b = i + 2 < n ? u[i + 2] : 0;
            size_t k = 0;
            if (a == 's' || a == 't' || a == 'm' || a == 'd')
                k = 2;
            else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                k = 3;
            if (k) {
                fn(ctx, text + i, k);
                i += k;
                continue;
            }
        }
        size_t p = i;
        if (u[p] == ' ' && p + 1 < n && class_at(u, n, p + 1, NULL) != C_S) p++;
        int k = class_at(u, n, p, &j);
        if (k != C_S) {
            i = j;
            while (i < n && class_at(u, n, i, &j) == k)
                i = j;
            fn(ctx, text + start, i - start);
            continue;
        }
        /* whitespace run: leave its last character for the next match if a non-space follows */
        size_t last = p;
        i = j;
        while (i < n && class_at(u, n, i, &j) == C_S) {
            last = i;
            i = j;
        }
        if (i < n && last > start) i = last;
        fn(ctx, text + start, i - start);
    }
}

void tok_pretokenize(tok_pre_kind kind, const char *text, size_t len, tok_word_fn fn, void *ctx) {
    if (!text || !len) return;
    switch (kind) {
    case TOK_PRE_BERT:
        pre_bert(text, len, fn, ctx);
        break;
    case TOK_PRE_BYTELEVEL:
        pre_gpt2(text, len, fn, ctx);
        break;
    default:
        pre_whitespace(text, len, fn, ctx);
        break;
    }
}

/* GPT-2 byte <-> code point map: printable Latin-1 bytes map to themselves, the rest to 256+k. */
static int32_t byte_map[256];
static int16_t cp_map[324];
static pthread_once_t maps_once = PTHREAD_ONCE_INIT;

static void build_maps(void) {
    int k = 0;
    for (int i = 0; i < 324; i++)
        cp_map[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        byte_map[b] = keep ? b : 256 + k++;
        cp_map[byte_map[b]] = (int16_t)b;
    }
}

int32_t tok_byte_to_cp(uint8_t b) {
    pthread_once(&maps_once, build_maps);
    return byte_map[b];
}

int tok_cp_to_byte(int32_t c) {
    pthread_once(&maps_once, build_maps);
    return (c >= 0 && c < 324) ? cp_map[c] : -1;
}
