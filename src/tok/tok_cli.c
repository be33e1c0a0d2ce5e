/* `cram tokenizer train|encode key=value ...`: train a tokenizer on text files and save it in the
 * Hugging Face layout, or encode text with a saved tokenizer (or an HF BERT vocab.txt).
 * Exit codes: 0 ok, 1 runtime error, 2 usage error. */
#include "tok/tok_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f) {
    fprintf(
        f,
        "usage:\n"
        "  cram tokenizer train files=A.txt,B.txt out=DIR [tokenizer=WordPiece|WordPieceBERT|BPE]\n"
        "      [vocab_size=32768] [normalizer.force_lowercase=true] "
        "[normalizer.strip_accents=true]\n"
        "      [normalizer.force_english_keyboard=true] [normalizer.whitespace_escape=false]\n"
        "      [include_cls_token_in_corpus=false] [include_sep_token_in_corpus=true] "
        "[use_type_ids=false]\n"
        "      [seq_length=128] [threads=0]\n"
        "  cram tokenizer encode tokenizer=DIR|tokenizer.json|vocab.txt [text=\"...\"] "
        "[pair=\"...\"]\n"
        "      [special=true] [max_length=0]     (without text=, each stdin line is encoded)\n");
}

static int parse_bool(const char *v, bool *out) {
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "0"))
        *out = false;
    else
        return -1;
    return 0;
}

static int parse_int(const char *v, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == 0 || *end || x < 0 || x > (1L << 30)) return -1;
    *out = (int)x;
    return 0;
}

static int cmd_train(int argc, char **argv) {
    tok_options o;
    tok_options_default(&o);
    const char *files = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "tokenizer train: expected key=value, got '%s'\n", argv[i]);
            return 2;
        }
        *eq = 0;
        const char *k = argv[i], *v = eq + 1;
        int bad = 0;
        if (!strcmp(k, "files"))
            files = v;
        else if (!strcmp(k, "out"))
            out = v;
        else if (!strcmp(k, "tokenizer"))
            o.tokenizer = v;
        else if (!strcmp(k, "vocab_size"))
            bad = parse_int(v, &o.vocab_size);
        else if (!strcmp(k, "seq_length"))
            bad = parse_int(v, &o.seq_length);
        else if (!strcmp(k, "threads"))
            bad = parse_int(v, &o.threads);
        else if (!strcmp(k, "normalizer.force_lowercase"))
            bad = parse_bool(v, &o.normalizer.force_lowercase);
        else if (!strcmp(k, "normalizer.strip_accents"))
            bad = parse_bool(v, &o.normalizer.strip_accents);
        else if (!strcmp(k, "normalizer.force_english_keyboard"))
            bad = parse_bool(v, &o.normalizer.force_english_keyboard);
        else if (!strcmp(k, "normalizer.whitespace_escape"))
            bad = parse_bool(v, &o.normalizer.whitespace_escape);
        else if (!strcmp(k, "include_cls_token_in_corpus"))
            bad = parse_bool(v, &o.include_cls_token_in_corpus);
        else if (!strcmp(k, "include_sep_token_in_corpus"))
            bad = parse_bool(v, &o.include_sep_token_in_corpus);
        else if (!strcmp(k, "use_type_ids"))
            bad = parse_bool(v, &o.use_type_ids);
        else {
            fprintf(stderr, "tokenizer train: unknown option '%s'\n", k);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "tokenizer train: bad value '%s' for %s\n", v, k);
            return 2;
        }
    }
    if (!files || !out) {
        fprintf(stderr, "tokenizer train: files= and out= are required\n");
        usage(stderr);
        return 2;
    }
    char *list = strdup(files);
    const char *paths[1024];
    size_t np = 0;
    for (char *s = strtok(list, ","); s && np < 1024; s = strtok(NULL, ","))
        paths[np++] = s;
    char err[TOK_ERRLEN] = {0};
    tok_tokenizer *t = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = tok_train_files(&t, &o, paths, np, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(list);
    if (rc && !t) {
        fprintf(stderr, "tokenizer train: %s\n", err);
        return rc == TOK_EINVAL && strstr(err, "unknown tokenizer") ? 2 : 1;
    }
    if (rc) fprintf(stderr, "tokenizer train: warning: %s\n", err);
    int src = tok_save(t, out, err);
    if (src) {
        fprintf(stderr, "tokenizer train: %s\n", err);
        tok_free(t);
        return 1;
    }
    fprintf(stderr, "tokenizer train: %s vocabulary of %d tokens in %.2f s (%d threads) -> %s\n",
            o.tokenizer, tok_vocab_size(t),
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
            o.threads > 0 ? o.threads : omp_get_max_threads(), out);
    tok_free(t);
    return rc ? 1 : 0;
}

static void print_encoding(const tok_tokenizer *t, const tok_encoding *e) {
    fputs("tokens:", stdout);
    for (int32_t i = 0; i < e->n; i++) {
        uint32_t l;
        const char *s = tok_id_to_token(t, e->ids[i], &l);
        fputc(' ', stdout);
        fwrite(s, 1, l, stdout);
    }
    fputs("\nids:", stdout);
    for (int32_t i = 0; i < e->n; i++)
        printf(" %d", e->ids[i]);
    fputc('\n', stdout);
}

/* HF order: truncate the text to max_length minus the special tokens, then add them */
static int encode_single(const tok_tokenizer *t, const char *text, size_t len, bool special,
                         int max_length, tok_encoding *e, char *err) {
    int rc = tok_encode(t, text, len, false, e, err);
    if (rc) return rc;
    int32_t cls = t->special[TOK_CLS], sep = t->special[TOK_SEP];
    bool add_cls = special && t->include_cls && cls >= 0,
         add_sep = special && t->include_sep && sep >= 0;
    if (max_length > 0) tok_truncate_longest_first(e, NULL, max_length - add_cls - add_sep);
    if (add_cls) {
        tok_enc_push(e, 0, 0);
        memmove(e->ids + 1, e->ids, (size_t)(e->n - 1) * sizeof(int32_t));
        e->ids[0] = cls;
    }
    if (add_sep) tok_enc_push(e, sep, 0);
    return TOK_OK;
}

static int cmd_encode(int argc, char **argv) {
    const char *path = NULL, *text = NULL, *pair = NULL;
    bool special = true;
    int max_length = 0;
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "tokenizer encode: expected key=value, got '%s'\n", argv[i]);
            return 2;
        }
        *eq = 0;
        const char *k = argv[i], *v = eq + 1;
        int bad = 0;
        if (!strcmp(k, "tokenizer"))
            path = v;
        else if (!strcmp(k, "text"))
            text = v;
        else if (!strcmp(k, "pair"))
            pair = v;
        else if (!strcmp(k, "special"))
            bad = parse_bool(v, &special);
        else if (!strcmp(k, "max_length"))
            bad = parse_int(v, &max_length);
        else {
            fprintf(stderr, "tokenizer encode: unknown option '%s'\n", k);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "tokenizer encode: bad value '%s' for %s\n", v, k);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "tokenizer encode: tokenizer= is required\n");
        usage(stderr);
        return 2;
    }
    char err[TOK_ERRLEN] = {0};
    tok_tokenizer *t;
    if (tok_load(&t, path, err)) {
        fprintf(stderr, "tokenizer encode: %s\n", err);
        return 1;
    }
    tok_encoding e = {0};
    int rc = 0;
    if (text) {
        if (pair)
            rc = tok_encode_pair(t, text, strlen(text), pair, strlen(pair), max_length, &e, err);
        else
            rc = encode_single(t, text, strlen(text), special, max_length, &e, err);
        if (!rc) print_encoding(t, &e);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (!rc && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n') n--;
            rc = encode_single(t, line, (size_t)n, special, max_length, &e, err);
            if (!rc) print_encoding(t, &e);
        }
        free(line);
    }
    if (rc) fprintf(stderr, "tokenizer encode: %s\n", err);
    tok_encoding_free(&e);
    tok_free(t);
    return rc ? 1 : 0;
}

int tok_cli_main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(argv[1], "encode")) return cmd_encode(argc - 2, argv + 2);
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "tokenizer: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
