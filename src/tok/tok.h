/* tok: text normalization, pre-tokenization, WordPiece/BPE training and encoding, and the
 * Hugging Face compatible tokenizer files (vocab.txt, tokenizer.json, tokenizer_config.json).
 * Every function that reads user input returns an error code and fills a message buffer. */
#ifndef CRAM_TOK_H
#define CRAM_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOK_ERRLEN 512

typedef enum {
    TOK_OK = 0,
    TOK_EINVAL = 1, /* bad argument or option */
    TOK_EIO = 2,    /* file could not be read or written */
    TOK_EFORMAT = 3 /* malformed tokenizer.json / vocab.txt */
} tok_status;

/* Special tokens by role. cram's own vocabularies put them at ids 0..6 in this order;
 * HF BERT vocabularies have [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103. */
typedef enum {
    TOK_PAD,
    TOK_BOS,
    TOK_EOS,
    TOK_UNK,
    TOK_CLS,
    TOK_SEP,
    TOK_MASK,
    TOK_NROLES
} tok_role;

typedef enum { TOK_MODEL_WORDPIECE = 0, TOK_MODEL_BPE = 1 } tok_model_kind;
typedef enum { TOK_NORM_NONE = 0, TOK_NORM_CRAM = 1, TOK_NORM_BERT = 2 } tok_norm_kind;
typedef enum { TOK_PRE_WHITESPACE = 0, TOK_PRE_BERT = 1, TOK_PRE_BYTELEVEL = 2 } tok_pre_kind;

/* The reference's normalizer sequence (data config keys under `normalizer`). */
typedef struct {
    bool force_lowercase;
    bool strip_accents;
    bool force_english_keyboard;
    bool whitespace_escape;
} tok_norm_opts;

/* Mirrors the data config keys that shape a tokenizer. */
typedef struct {
    const char *tokenizer; /* "WordPiece" | "BPE" | "WordPieceBERT" */
    tok_norm_opts normalizer;
    int vocab_size;
    bool include_cls_token_in_corpus;
    bool include_sep_token_in_corpus;
    bool use_type_ids;
    int seq_length; /* model_max_length */
    int threads;    /* 0 = all cores (OpenMP default) */
    /* Training only: the order in which the "##x" continuation symbols get their ids (the ids break
     * ties between equally frequent pairs). Default (NULL): code point order. HF assigns them in
     * the order of a randomly seeded hash-map walk; passing the order read off an HF vocabulary
     * reproduces that HF run exactly. */
    const char *const *cont_symbol_order;
    int n_cont_symbol_order;
} tok_options;

void tok_options_default(
    tok_options *o); /* the-pile / bookcorpus defaults: WordPiece 32768, T/T/T/F, sep only */

typedef struct tok_tokenizer tok_tokenizer; /* opaque */

/* One encoded sequence. ids and type_ids are owned by the encoding (tok_encoding_free). */
typedef struct {
    int32_t *ids;      /* (n) */
    uint8_t *type_ids; /* (n) */
    int32_t n, cap;
    int32_t n_words; /* pre-tokens seen (statistics) */
} tok_encoding;

void tok_encoding_free(tok_encoding *e);

/* ---- building / freeing ---- */
/* An empty tokenizer with the settings of `o` (no vocabulary yet). */
int tok_create(tok_tokenizer **out, const tok_options *o, char *err);
void tok_free(tok_tokenizer *t);

/* Vocabulary: tokens[i] gets id i. Special tokens are found by their strings
 * (<pad> <s> </s> <unk> <cls> <sep> <mask>, or [PAD] [UNK] [CLS] [SEP] [MASK]). */
int tok_set_vocab(tok_tokenizer *t, const char *const *tokens, const uint32_t *lens, int32_t n,
                  char *err);

int32_t tok_vocab_size(const tok_tokenizer *t);
const char *tok_id_to_token(const tok_tokenizer *t, int32_t id,
                            uint32_t *len); /* NULL if out of range */
int32_t tok_token_to_id(const tok_tokenizer *t, const char *s, size_t len); /* -1 if absent */
int32_t tok_special_id(const tok_tokenizer *t, tok_role r);                 /* -1 if absent */
tok_model_kind tok_model(const tok_tokenizer *t);

/* ---- normalization and pre-tokenization ---- */
/* Normalize `len` bytes of text with the tokenizer's normalizer. Invalid UTF-8 bytes become U+FFFD
 * (documented replacement; HF only ever sees valid strings). *out is malloc'd, NUL-terminated. */
int tok_normalize(const tok_tokenizer *t, const char *text, size_t len, char **out, size_t *out_len,
                  char *err);
/* Same, with explicit settings (no tokenizer needed). */
int tok_normalize_with(tok_norm_kind kind, const tok_norm_opts *o, const char *text, size_t len,
                       char **out, size_t *out_len, char *err);

/* Callback per pre-token (byte span of the normalized text). */
typedef void (*tok_word_fn)(void *ctx, const char *word, size_t len);
void tok_pretokenize(tok_pre_kind kind, const char *text, size_t len, tok_word_fn fn, void *ctx);

/* ---- encoding ---- */
/* add_special: apply the post-processor template (single: [<cls>] $A [<sep>]). */
int tok_encode(const tok_tokenizer *t, const char *text, size_t len, bool add_special,
               tok_encoding *out, char *err);
/* Pair: <cls> A <sep> B <sep> (type id 1 on B when use_type_ids); max_length > 0 truncates
 * longest-first. */
int tok_encode_pair(const tok_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                    int max_length, tok_encoding *out, char *err);
/* Encode n texts in parallel (OpenMP, dynamic schedule). outs must hold n zeroed encodings. */
int tok_encode_batch(const tok_tokenizer *t, const char *const *texts, const size_t *lens, size_t n,
                     bool add_special, tok_encoding *outs, char *err);
/* Truncate one sequence (no special tokens yet) or a pair to max_length, HF longest-first rules. */
void tok_truncate_longest_first(tok_encoding *a, tok_encoding *b, int max_length);
/* Decode ids to text (WordPiece: "##" joins, HF cleanup; BPE: byte-level). Special tokens skipped
 * if asked. */
int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, bool skip_special, char **out,
               size_t *out_len, char *err);

/* ---- training ---- */
/* Train a new vocabulary of exactly o->vocab_size entries on the given documents (the model kind,
 * normalizer and pre-tokenizer come from `o`). Deterministic for any thread count. */
int tok_train(tok_tokenizer **out, const tok_options *o, const char *const *docs,
              const size_t *lens, size_t n_docs, char *err);
/* Training from files: each file is read whole and split into lines (one document per line). */
int tok_train_files(tok_tokenizer **out, const tok_options *o, const char *const *paths,
                    size_t n_paths, char *err);

/* ---- files ---- */
/* Writes tokenizer.json, tokenizer_config.json, special_tokens_map.json and vocab.txt (WordPiece).
 */
int tok_save(const tok_tokenizer *t, const char *dir, char *err);
int tok_save_tokenizer_json(const tok_tokenizer *t, const char *path, char *err);
int tok_save_vocab_txt(const tok_tokenizer *t, const char *path, char *err);
/* Loads a directory (tokenizer.json, else vocab.txt) or a single file (*.json or vocab text).
 * A bare vocab.txt gets BERT's rules (BertNormalizer, BertPreTokenizer, [CLS] A [SEP]). */
int tok_load(tok_tokenizer **out, const char *path, char *err);
int tok_load_tokenizer_json_mem(tok_tokenizer **out, const char *json, size_t len, char *err);
int tok_load_vocab_txt_mem(tok_tokenizer **out, const char *data, size_t len, const tok_options *o,
                           char *err);

/* ---- is it text? ---- */
/* Counts over the first bytes of a file. Control characters: C0 controls other than \t \n \v \f
 * \r, and DEL (NUL is counted apart). Invalid UTF-8: each maximal bad sequence once (a sequence
 * cut at the end of the bytes counts only when they are the whole file). */
typedef struct {
    size_t checked;
    size_t nul, ctrl, invalid;
    size_t nul_mod4[4]; /* NUL bytes by offset mod 4: the fingerprint of UTF-16/32 */
    size_t first_bad;   /* offset of the first NUL, control character or bad sequence; SIZE_MAX */
    size_t first_bad_line; /* its line, 1-based */
    uint8_t first_bad_byte;
} tok_text_stats;
void tok_text_scan(const void *data, size_t n, bool complete, tok_text_stats *st);

/* How much of a file cram looks at, and when it refuses it: at least TOK_TEXT_MIN_BAD NUL bytes,
 * control characters and invalid UTF-8 sequences together, making up TOK_TEXT_MAX_BAD_SHARE of
 * the bytes looked at. */
#define TOK_TEXT_CHECK_BYTES ((size_t)4 << 20)
#define TOK_TEXT_MIN_BAD 8
#define TOK_TEXT_MAX_BAD_SHARE 0.01

/* Decides whether data (the first n bytes of a file; complete: the whole file) is UTF-8 text.
 * 0: text. 1: text with a few bad bytes (msg: a warning naming them). -1: not text (msg: why,
 * naming `name`: a UTF-16/32 byte order mark or NUL pattern with the iconv command that converts
 * it, a binary format by its magic number, or the share of NUL / control / invalid bytes with the
 * offset and line of the first). */
int tok_text_check(const void *data, size_t n, bool complete, const char *name, char *msg,
                   size_t msglen);

/* ---- command line (argv[0] = "tokenizer", argv[1] = "train" | "encode") ---- */
int tok_cli_main(int argc, char **argv);

#endif
