/* `cram data`: build (or find and check) the token store of a pretrain config and print its
 * statistics; `cram data verify` checks every checksum; `cram data inspect [row=N] [split=valid]`
 * shows one row decoded and as tokens joined by "_". */
#include "data/data.h"

#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static void usage(FILE *f) {
    fputs("usage: cram data [verify|inspect] [--config-dir=DIR] [overrides...]\n"
          "\n"
          "  cram data data=kjv                 build the token store (or reuse it) and print "
          "statistics\n"
          "  cram data verify data=kjv          also check the checksum of every row file\n"
          "  cram data inspect data=kjv [row=N] [split=train|valid]\n"
          "                                     show a row as text and as tokens joined by \"_\"\n"
          "\n"
          "The store goes to <impl.path>/<data.name>_<tokenizer>x<vocab>_<hash>/ (impl.path\n"
          "defaults to data/ in the launch directory); relative source paths are resolved\n"
          "against impl.path, so data=debian-english reads data/corpora/debian-english/\n"
          "(written by scripts/fetch-corpus).\n",
          f);
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static void print_stats(const store *s, double wall) {
    const data_stats *st = &s->stats;
    printf("token store: %s (%s)\n", s->dir, s->built ? "built" : "reused");
    printf("documents:   %lld kept of %lld read (%lld duplicates, %lld trash removed)\n",
           (long long)st->documents, (long long)st->documents_read, (long long)st->documents_dup,
           (long long)st->documents_trash);
    printf("text:        %.1f MB read, %.1f MB tokenized; tokenizer trained on %.1f MB\n",
           (double)st->bytes_read / 1e6, (double)st->bytes / 1e6,
           (double)st->tok_train_bytes / 1e6);
    printf("tokens:      %lld (%lld left out as block remainders), unknown-token rate %.4f%%\n",
           (long long)st->tokens, (long long)st->tokens_dropped,
           st->tokens ? 100.0 * (double)st->unk_tokens / (double)st->tokens : 0.0);
    printf(
        "rows:        %lld train + %lld validation of %d tokens (%lld packed), %s ids, vocab %d\n",
        (long long)st->rows_train, (long long)st->rows_valid, s->train.row_len,
        (long long)st->rows_packed, s->train.dtype_bytes == 2 ? "u16" : "u32", s->train.vocab_size);
    if (s->built)
        printf("build:       %.1f s, %.2f MB/s of raw text\n", st->seconds,
               st->seconds > 0 ? (double)st->bytes_read / 1e6 / st->seconds : 0.0);
    printf("this run:    %.3f s, peak RSS %.1f MB\n", wall, peak_rss_mb());
}

static int inspect(const store *s, const char *row_arg, bool valid) {
    const store_rows *r = valid ? &s->valid : &s->train;
    if (r->row_count == 0) {
        fprintf(stderr, "cram data inspect: the %s split is empty\n", valid ? "valid" : "train");
        return 2;
    }
    int64_t row = -1;
    if (row_arg) { /* a decimal integer in [0, rows), nothing else */
        char *end = NULL;
        errno = 0;
        long long x = strtoll(row_arg, &end, 10);
        bool digits = row_arg[0] >= '0' && row_arg[0] <= '9';
        if (!digits || *end || errno == ERANGE || x >= r->row_count) {
            fprintf(stderr,
                    "cram data inspect: row=%s: row must be an integer in [0, %lld) for the %s "
                    "split (%lld rows); leave it out for a random row\n",
                    row_arg, (long long)r->row_count, valid ? "valid" : "train",
                    (long long)r->row_count);
            return 2;
        }
        row = (int64_t)x;
    }
    if (row < 0) {
        core_rng rng;
        core_rng_init(&rng, (uint64_t)time(NULL), 0, 0, 0);
        row = (int64_t)(core_rng_u64(&rng) % (uint64_t)r->row_count);
    }
    int32_t *ids = xmalloc((size_t)r->row_len * sizeof *ids);
    store_rows_get(r, row, ids);
    char *text = NULL, te[TOK_ERRLEN];
    size_t n = 0;
    printf("%s row %lld of %lld:\n", valid ? "valid" : "train", (long long)row,
           (long long)r->row_count);
    if (tok_decode(s->tok, ids, (size_t)r->row_len, false, &text, &n, te) == TOK_OK) {
        printf("%.*s\n", (int)n, text);
        free(text);
    } else {
        printf("(decode failed: %s)\n", te);
    }
    for (int k = 0; k < r->row_len; k++) {
        uint32_t len = 0;
        const char *t = tok_id_to_token(s->tok, ids[k], &len);
        printf("%s%.*s", k ? "_" : "", t ? (int)len : 3, t ? t : "???");
    }
    printf("\n");
    free(ids);
    return 0;
}

int data_cli_main(int argc, char **argv) {
    double t0 = core_now();
    int k = 1;
    enum { BUILD, VERIFY, INSPECT } mode = BUILD;
    if (k < argc && strcmp(argv[k], "verify") == 0)
        mode = VERIFY, k++;
    else if (k < argc && strcmp(argv[k], "inspect") == 0)
        mode = INSPECT, k++;
    else if (k < argc && strcmp(argv[k], "build") == 0)
        k++;
    const char *row = NULL;
    bool valid = false;
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    for (; k < argc; k++) {
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            usage(stdout);
            free(rest);
            return 0;
        }
        if (mode == INSPECT && strncmp(argv[k], "row=", 4) == 0) {
            row = argv[k] + 4; /* checked against the split's row count once the store is open */
            continue;
        }
        if (mode == INSPECT && strncmp(argv[k], "split=", 6) == 0) {
            const char *v = argv[k] + 6;
            if (strcmp(v, "train") != 0 && strcmp(v, "valid") != 0) {
                fprintf(stderr, "cram data inspect: split=%s: split must be train or valid\n", v);
                free(rest);
                return 2;
            }
            valid = strcmp(v, "valid") == 0;
            continue;
        }
        rest[nrest++] = argv[k];
    }
    cfg_error ce = {0};
    cfg_node *cfg = cfg_from_args("pretrain", nrest, rest, &ce);
    free(rest);
    if (!cfg) {
        fprintf(stderr, "cram data: %s\n", ce.msg);
        return ce.code ? ce.code : 2;
    }
    store s;
    char err[DATA_ERRLEN] = "";
    int rc = 0;
    if (data_prepare(&s, cfg, mode == VERIFY ? STORE_VERIFY_FULL : STORE_VERIFY_AUTO, err,
                     sizeof err) != 0) {
        fprintf(stderr, "cram data: %s\n", err);
        rc = 1;
    } else {
        if (mode == INSPECT)
            rc = inspect(&s, row, valid);
        else
            print_stats(&s, core_now() - t0);
        if (mode == VERIFY) {
            printf("checksums:   train.bin and valid.bin verified\n");
            if (s.tok_unchecked)
                printf("tokenizer:   UNCHECKED: store version %d records no checksums of its "
                       "tokenizer files; rebuild the store to have them checked (rm -rf '%s', "
                       "then cram data with the same data settings)\n",
                       s.version, s.dir);
            else
                printf("tokenizer:   %d files verified against meta.json\n", s.tok_files);
        }
        store_close(&s);
    }
    cfg_free(cfg);
    return rc;
}

int data_tokenizer_cli(int argc, char **argv) {
    const char *out = NULL;
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    for (int k = 1; k < argc; k++) { // argv[0] is "train"
        if (strncmp(argv[k], "out=", 4) == 0)
            out = argv[k] + 4;
        else
            rest[nrest++] = argv[k];
    }
    if (!out || !*out) {
        fprintf(stderr, "usage: cram tokenizer train data=NAME out=DIR [overrides...]\n");
        free(rest);
        return 2;
    }
    cfg_error ce = {0};
    cfg_node *cfg = cfg_from_args("pretrain", nrest, rest, &ce);
    free(rest);
    if (!cfg) {
        fprintf(stderr, "cram tokenizer: %s\n", ce.msg);
        return ce.code ? ce.code : 2;
    }
    char err[DATA_ERRLEN] = "", root[CORE_PATH_MAX];
    tok_tokenizer *t = NULL;
    int rc = 1;
    double t0 = core_now();
    if (data_root(root, sizeof root, cfg, err, sizeof err) == 0 &&
        pipe_train_tokenizer(&t, cfg_get(cfg, "data"), root, 0, err, sizeof err) == 0) {
        char te[TOK_ERRLEN] = "";
        if (core_mkdir_p(out, err, sizeof err) == 0 && tok_save(t, out, te) == TOK_OK) {
            printf("tokenizer: %d tokens, trained in %.1f s, saved to %s\n", tok_vocab_size(t),
                   core_now() - t0, out);
            rc = 0;
        } else if (te[0]) {
            snprintf(err, sizeof err, "%s", te);
        }
    }
    if (rc) fprintf(stderr, "cram tokenizer: %s\n", err);
    tok_free(t);
    cfg_free(cfg);
    return rc;
}
