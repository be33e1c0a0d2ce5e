/* libFuzzer target for the tokenizer: normalize + encode + decode (WordPiece, BERT and byte-level
 * BPE tokenizers built from small vocabularies), and the tokenizer.json / vocab.txt readers (with
 * their duplicate-token checks). The first input byte picks the path; every input also goes
 * through the is-it-text check that corpus files get (tok_text_check). Build: CC=clang cmake -B
 * build-fuzz -DCRAM_FUZZ=ON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tok/tok.h"

static tok_tokenizer *wp, *bert, *bpe;

static tok_tokenizer *make(const char *kind, const char *const *toks, int n) {
    tok_options o;
    tok_options_default(&o);
    o.tokenizer = kind;
    o.include_cls_token_in_corpus = true;
    tok_tokenizer *t = NULL;
    uint32_t lens[64];
    for (int i = 0; i < n; i++)
        lens[i] = (uint32_t)strlen(toks[i]);
    if (tok_create(&t, &o, NULL) || tok_set_vocab(t, toks, lens, n, NULL)) abort();
    return t;
}

static void init(void) {
    static const char *const v[] = {
        "<pad>", "<s>", "</s>", "<unk>", "<cls>", "<sep>", "<mask>", "a",   "b", "c",   "##a",
        "##b",   "##c", "ab",   "##bc",  "abc",   "\"",    ".",      "##.", "e", "##e", "1"};
    static const char *const bv[] = {"[PAD]", "[UNK]", "[CLS]",    "[SEP]", "[MASK]",
                                     "a",     "##a",   "\xc3\xa9", "ab"};
    wp = make("WordPiece", v, (int)(sizeof(v) / sizeof(v[0])));
    bert = make("WordPieceBERT", bv, (int)(sizeof(bv) / sizeof(bv[0])));
    /* a BPE tokenizer trained on a fixed text */
    const char *docs[] = {"the cat sat on the mat", "hello world hello",
                          "\xc3\xa9t\xc3\xa9 caf\xc3\xa9"};
    size_t lens[] = {22, 17, 12};
    tok_options o;
    tok_options_default(&o);
    o.tokenizer = "BPE";
    o.vocab_size = 60;
    char err[TOK_ERRLEN];
    tok_train(&bpe, &o, docs, lens, 3,
              err); /* may return "vocab too small" but the tokenizer is usable */
    if (!bpe) abort();
}

static void roundtrip(const tok_tokenizer *t, const char *s, size_t n) {
    char err[TOK_ERRLEN];
    tok_encoding e = {0};
    if (tok_encode(t, s, n, true, &e, err) == 0) {
        char *d = NULL;
        size_t dn;
        if (tok_decode(t, e.ids, (size_t)e.n, (n & 1) != 0, &d, &dn, err) == 0) free(d);
    }
    size_t half = n / 2;
    int ml = (int)(n % 17);
    if (tok_encode_pair(t, s, half, s + half, n - half, ml, &e, err) == 0 && ml >= 3 && e.n > ml)
        abort();
    tok_encoding_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!wp) init();
    if (size < 1) return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    char err[TOK_ERRLEN];
    if (tok_text_check(s, n, data[0] & 1, "fuzz input", err, sizeof err) == 0 && err[0]) abort();
    tok_tokenizer *t = NULL;
    switch (data[0] % 5) {
    case 0: {
        char *out;
        size_t on;
        tok_norm_opts o = {data[0] & 8, data[0] & 16, data[0] & 32, data[0] & 64};
        if (tok_normalize_with((data[0] & 128) ? TOK_NORM_BERT : TOK_NORM_CRAM, &o, s, n, &out, &on,
                               err) == 0)
            free(out);
        roundtrip(wp, s, n);
        break;
    }
    case 1:
        roundtrip(bert, s, n);
        break;
    case 2:
        roundtrip(bpe, s, n);
        break;
    case 3:
        if (tok_load_tokenizer_json_mem(&t, s, n, err) == 0) {
            roundtrip(t, "hello world", 11);
            tok_free(t);
        }
        break;
    default:
        if (tok_load_vocab_txt_mem(&t, s, n, NULL, err) == 0) {
            roundtrip(t, s, n < 256 ? n : 256);
            tok_free(t);
        }
        break;
    }
    return 0;
}
