/* tok internals shared by the files of src/tok: the tokenizer struct, a small open-addressing
 * map, UTF-8 and Unicode class helpers. Not part of the public API. */
#ifndef CRAM_TOK_INTERNAL_H
#define CRAM_TOK_INTERNAL_H

#include "tok/tok.h"

#include <stdarg.h>
#include <stdio.h>

/* ---- u64 -> i64 open-addressing map (key 0 is reserved for "empty"; callers add 1 if needed) ----
 */
typedef struct {
    uint64_t *keys;
    int64_t *vals;
    size_t cap, n; /* cap is a power of two */
} tok_map;

void tok_map_init(tok_map *m, size_t cap_hint);
void tok_map_free(tok_map *m);
int64_t *tok_map_get(const tok_map *m, uint64_t key);       /* NULL if absent */
int64_t *tok_map_put(tok_map *m, uint64_t key, int64_t v0); /* returns slot; inserts v0 if absent */

static inline uint64_t tok_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}
uint64_t tok_hash_bytes(const void *p, size_t n);

/* ---- growable buffers ---- */
typedef struct {
    int32_t *v;
    size_t n, cap;
} tok_cpbuf;
void tok_cp_push(tok_cpbuf *b, int32_t c);
void tok_cp_reserve(tok_cpbuf *b, size_t need);

typedef struct {
    char *v;
    size_t n, cap;
} tok_strbuf;
void tok_sb_reserve(tok_strbuf *b, size_t need);
void tok_sb_put(tok_strbuf *b, const void *p, size_t n);
void tok_sb_putc(tok_strbuf *b, char c);
void tok_sb_put_cp(tok_strbuf *b, int32_t c);

/* ---- UTF-8 ---- */
/* Decode one code point at s[*i] (n bytes total); invalid sequences give U+FFFD and consume one
 * byte. */
int32_t tok_utf8_next(const uint8_t *s, size_t n, size_t *i);
int tok_utf8_put(char *dst, int32_t c); /* returns bytes written (1..4) */
bool tok_utf8_valid(const char *s, size_t n);
size_t tok_utf8_count(const char *s, size_t n);

/* ---- Unicode classes as Hugging Face tokenizers sees them ---- */
bool tok_u_is_space(int32_t c); /* White_Space (onig \s, Rust char::is_whitespace) */
bool tok_u_is_word(int32_t c);  /* onig \w: Alphabetic, Mark, Nd, Pc, Join_Control */
bool tok_u_is_bert_punct(int32_t c);
/* Unicode version that assigned c as major*10+minor when after 8.0 (90 = 9.0 ...), else 0.
 * HF's tables: NFD/NFKC and combining marks know Unicode 9.0 (TOK_HF_NORM_AGE), BertNormalizer's
 * and BertPreTokenizer's categories 8.0; newer code points are treated as unassigned there, as HF
 * does. */
int tok_unicode_age(int32_t c);
#define TOK_HF_NORM_AGE 90
/* The few code points whose general category changed since HF's tables (8.0 for BERT, 9.0 for
 * StripAccents): is it a mark (M*) for StripAccents, a nonspacing mark / punctuation for BERT. */
bool tok_hf_strip_mark(int32_t c);
bool tok_hf_bert_mn(int32_t c);
/* lowercase as Rust's char::to_lowercase (Unicode 16.0): utf8proc's Unicode 15.0 mapping plus the
 * mappings Unicode 16.0 added, and U+0130 -> "i\u0307"; *second is -1 or a second code point */
int32_t tok_lower(int32_t c, int32_t *second);

/* ---- the tokenizer ---- */
#define TOK_MAX_ADDED 32

struct tok_tokenizer {
    tok_model_kind model;
    tok_norm_kind norm_kind;
    tok_norm_opts norm;
    tok_pre_kind pre;
    char kind_name[32]; /* "WordPiece", "BPE", "WordPieceBERT" */

    /* vocabulary: id -> string (pointers into one arena), string -> id */
    int32_t n_vocab;
    char **tok;        /* (n_vocab) */
    uint32_t *tok_len; /* (n_vocab) */
    char *arena;
    tok_map str2id; /* key = 64-bit hash of the string | 1; the string is compared on lookup */
    uint64_t
        uid; /* changes whenever the vocabulary is re-indexed (keys the per-thread word cache) */

    /* WordPiece: byte trie over all tokens; edges in a map keyed (node << 8 | byte) + 1 */
    tok_map trie_edges;
    int32_t *trie_id; /* (n_nodes) token id ending at node or -1 */
    int32_t n_nodes, cap_nodes;
    int32_t cont_node; /* node reached by the continuation prefix, -1 if none */
    char prefix[16];
    int prefix_len;
    int max_input_chars; /* 100 */

    /* BPE: merges keyed ((a << 32) | b) + 1 -> (rank << 32) | new id */
    tok_map merges;
    int32_t n_merges;
    int32_t *merge_a, *merge_b; /* (n_merges), in rank order, for saving */

    /* special tokens: by role, and the added-token list matched in raw text */
    int32_t special[TOK_NROLES];
    int32_t added[TOK_MAX_ADDED];
    int n_added;

    /* post-processor and wrapper settings */
    bool include_cls, include_sep, use_type_ids;
    int model_max_length;
    int threads;
};

void tok_errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Build the lookup structures (hash, trie, special roles) after tok/tok_len are set. */
int tok_index_vocab(tok_tokenizer *t, char *err);
/* Byte-level alphabet (GPT-2 mapping): byte -> code point, and back (-1 when not in the map). */
int32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(int32_t c);

/* Encode one pre-token into ids (appends to e). */
void tok_wordpiece_word(const tok_tokenizer *t, const char *w, size_t n, tok_encoding *e);
void tok_bpe_word(const tok_tokenizer *t, const char *w, size_t n, tok_encoding *e);
void tok_enc_push(tok_encoding *e, int32_t id, uint8_t type);

#endif
