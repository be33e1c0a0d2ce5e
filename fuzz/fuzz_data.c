// libFuzzer target for src/data's readers of user files: the rows-file header and checksum
// (store_rows_open with full verification, then every row read back), the document reader over
// the same bytes as plain text in each document mode, as JSON lines, and as zstd input (each
// file's text check included), and store_open with the bytes as meta.json of a small store whose
// rows and tokenizer files are valid (its store version, statistics and tokenizer checksums).
//
//   CC=clang cmake -S . -B build-fuzz -DCRAM_FUZZ=ON -DCRAM_CUDA=OFF
//   cmake --build build-fuzz --target fuzz_data
//   ./build-fuzz/fuzz_data -max_total_time=600 fuzz-corpus-data
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data.h"

static char dir[PATH_MAX];

static int write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(p, 1, n, f);
    fclose(f);
    return 0;
}

static void read_docs(const char *path, src_format fmt, src_docmode dm) {
    src_list l = {0};
    char err[DATA_ERRLEN];
    if (src_list_add(&l, "fuzz", path, fmt, dm, "text", err, sizeof err) != 0) return;
    src_reader *r;
    if (src_reader_open(&r, &l, err, sizeof err) == 0) {
        const char *d;
        size_t n;
        size_t total = 0;
        while (src_reader_next(r, &d, &n, err, sizeof err) == 1)
            total += n;
        (void)total;
        src_reader_close(r);
    }
    src_list_free(&l);
}

/* dir/store: train.bin (4 rows), valid.bin (2 rows) of 4 ids below 9, and a 9-token WordPiece
 * tokenizer; fuzz/corpus/data/meta-v2.json is a meta.json that opens it. */
static void make_store(void) {
    char p[PATH_MAX + 64], err[DATA_ERRLEN];
    snprintf(p, sizeof p, "%s/store", dir);
    if (mkdir(p, 0777) != 0) abort();
    static const int32_t rows[6 * 4] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2,
                                        3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5};
    const char *names[2] = {"train.bin", "valid.bin"};
    for (int k = 0; k < 2; k++) {
        store_writer w;
        snprintf(p, sizeof p, "%s/store/%s", dir, names[k]);
        if (store_writer_open(&w, p, 9, 4, err, sizeof err) ||
            store_writer_append(&w, rows + 16 * k, k ? 2 : 4, err, sizeof err) ||
            store_writer_finish(&w, err, sizeof err))
            abort();
    }
    static const char *const v[] = {"<pad>", "<s>",    "</s>", "<unk>", "<cls>",
                                    "<sep>", "<mask>", "a",    "##b"};
    uint32_t lens[9];
    for (int i = 0; i < 9; i++)
        lens[i] = (uint32_t)strlen(v[i]);
    tok_options o;
    tok_options_default(&o);
    tok_tokenizer *t = NULL;
    char te[TOK_ERRLEN];
    snprintf(p, sizeof p, "%s/store/tokenizer", dir);
    if (tok_create(&t, &o, te) || tok_set_vocab(t, v, lens, 9, te) || tok_save(t, p, te)) abort();
    tok_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/cram-fuzz-data-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) abort();
        make_store();
    }
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/rows.bin", dir);
    if (write_file(p, data, size) == 0) {
        store_rows r;
        char err[DATA_ERRLEN];
        if (store_rows_open(&r, p, STORE_VERIFY_FULL, err, sizeof err) == 0) {
            int32_t *row = malloc(sizeof(int32_t) * (size_t)r.row_len);
            for (int64_t i = 0; i < r.row_count; i++)
                store_rows_get(&r, i, row);
            free(row);
            store_rows_close(&r);
        }
    }
    snprintf(p, sizeof p, "%s/docs.txt", dir);
    if (write_file(p, data, size) == 0) {
        read_docs(p, SRC_TEXT, SRC_DOC_BLANK_LINE);
        read_docs(p, SRC_TEXT, SRC_DOC_LINE);
        read_docs(p, SRC_TEXT, SRC_DOC_FILE);
        read_docs(p, SRC_JSONL, SRC_DOC_LINE);
    }
    snprintf(p, sizeof p, "%s/docs.jsonl.zst", dir);
    if (write_file(p, data, size) == 0) read_docs(p, SRC_JSONL, SRC_DOC_LINE);
    snprintf(p, sizeof p, "%s/store/meta.json", dir);
    if (write_file(p, data, size) == 0) {
        store s;
        char err[DATA_ERRLEN], sdir[PATH_MAX + 16];
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        if (store_open(&s, sdir, STORE_VERIFY_FULL, err, sizeof err) == 0) store_close(&s);
    }
    return 0;
}
