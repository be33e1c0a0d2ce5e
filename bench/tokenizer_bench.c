/* Tokenizer benchmark: encode throughput (one thread, all threads) and training time on a text
 * file, one document per line. `bench/tokenizer.sh` builds it and runs HF tokenizers on the same
 * text in the same run. Also forwards `cli ...` to tok_cli_main (the `cram tokenizer` command).
 *   tokenizer_bench encode TOKENIZER FILE [reps]
 *   tokenizer_bench train FILE VOCAB_SIZE [threads] [WordPiece|BPE]
 *   tokenizer_bench convert SRC DIR        (load a tokenizer or vocab.txt, save tokenizer.json
 * etc.) tokenizer_bench cli train|encode key=value ... */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fileio.h"
#include "tok/tok.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static size_t split(char *buf, size_t n, const char ***docs, size_t **lens) {
    size_t cap = 1024, k = 0, i = 0;
    *docs = malloc(cap * sizeof(char *));
    *lens = malloc(cap * sizeof(size_t));
    while (i < n) {
        char *nl = memchr(buf + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - buf) : n;
        if (k == cap) {
            cap *= 2;
            *docs = realloc(*docs, cap * sizeof(char *));
            *lens = realloc(*lens, cap * sizeof(size_t));
        }
        (*docs)[k] = buf + i;
        (*lens)[k] = end - i;
        k++;
        i = end + 1;
    }
    return k;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "cli")) {
        argv[1] = "tokenizer";
        return tok_cli_main(argc - 1, argv + 1);
    }
    if (argc == 4 &&
        !strcmp(argv[1], "convert")) { /* load any tokenizer, save it in the HF layout */
        char e[TOK_ERRLEN];
        tok_tokenizer *t;
        if (tok_load(&t, argv[2], e) || tok_save(t, argv[3], e)) {
            fprintf(stderr, "%s\n", e);
            return 1;
        }
        tok_free(t);
        return 0;
    }
    if (argc < 4) {
        fprintf(stderr,
                "usage: %s encode TOKENIZER FILE [reps] | train FILE VOCAB [threads] [kind] | cli "
                "...\n",
                argv[0]);
        return 2;
    }
    char err[TOK_ERRLEN] = {0};
    char *buf;
    size_t n;
    const char *file = !strcmp(argv[1], "encode") ? argv[3] : argv[2];
    if (core_read_file(file, &buf, &n, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const char **docs;
    size_t *lens;
    size_t nd = split(buf, n, &docs, &lens);
    if (!strcmp(argv[1], "encode")) {
        tok_tokenizer *t;
        if (tok_load(&t, argv[2], err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        int reps = argc > 4 ? atoi(argv[4]) : 3;
        tok_encoding *enc = calloc(nd, sizeof(tok_encoding));
        int maxt = omp_get_max_threads();
        int threads[2] = {1, maxt};
        for (int k = 0; k < (maxt > 1 ? 2 : 1); k++) {
            omp_set_num_threads(threads[k]);
            double best = 1e30;
            size_t ntok = 0;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                tok_encode_batch(t, docs, lens, nd, false, enc, err);
                double dt = now() - t0;
                if (dt < best) best = dt;
            }
            for (size_t i = 0; i < nd; i++)
                ntok += (size_t)enc[i].n;
            printf("cram encode  threads=%d  %.3f s  %.1f MB/s  %.2f Mtok/s  (%zu tokens, %zu "
                   "bytes)\n",
                   threads[k], best, (double)n / best / 1e6, (double)ntok / best / 1e6, ntok, n);
        }
        for (size_t i = 0; i < nd; i++)
            tok_encoding_free(&enc[i]);
        free(enc);
        tok_free(t);
    } else if (!strcmp(argv[1], "train")) {
        tok_options o;
        tok_options_default(&o);
        o.vocab_size = atoi(argv[3]);
        o.threads = argc > 4 ? atoi(argv[4]) : 0;
        if (argc > 5) o.tokenizer = argv[5];
        tok_tokenizer *t = NULL;
        double t0 = now();
        int rc = tok_train(&t, &o, docs, lens, nd, err);
        double dt = now() - t0;
        printf("cram train   threads=%d  %.3f s  vocab %d  %s\n",
               o.threads ? o.threads : omp_get_max_threads(), dt, t ? tok_vocab_size(t) : 0,
               rc ? err : "");
        if (t && argc > 6 && tok_save(t, argv[6], err)) fprintf(stderr, "%s\n", err);
        tok_free(t);
    }
    free(docs);
    free(lens);
    free(buf);
    return 0;
}
