/* Unit tests for src/data: the MLM collator's counts, split and uniformity; the loader's rank
 * strides, shuffling and exact resume; rows files and their corruption checks; text, jsonl and
 * zstd sources; and a small end-to-end store build on a generated corpus. Everything is written
 * under a fresh mkdtemp folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"
#include "data/data.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static char tmp_root[256];

static const char *tpath(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", tmp_root, name);
    return out;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    fclose(fp);
}

static void write_text(const char *path, const char *s) {
    write_bytes(path, s, strlen(s));
}

/* ---- MLM ---------------------------------------------------------------------------------- */
static mlm_opts opts_for(double p, int32_t V) {
    mlm_opts o = {
        .mlm_probability = p, .use_80_20_rule = true, .mask_id = 6, .pad_id = 0, .vocab_size = V};
    return o;
}

static void fill_rows(int32_t *rows, int B, int S, int32_t V, uint64_t seed) {
    core_rng r;
    core_rng_init(&r, seed, 0, 0, 99);
    for (int k = 0; k < B * S; k++)
        rows[k] = 10 + (int32_t)core_rng_below(&r, (uint32_t)(V - 10));
}

static void test_mlm_rounding(void **state) {
    (void)state;
    mlm_opts o = opts_for(0.25, 1000);
    assert_int_equal(mlm_num_masked(&o, 128), 32);
    o.mlm_probability = 0.15;
    assert_int_equal(mlm_num_masked(&o, 128), 19);
    o.mlm_probability = 0.5;
    assert_int_equal(mlm_num_masked(&o, 5), 2); /* round(2.5) = 2, as Python rounds */
    assert_int_equal(mlm_num_masked(&o, 7), 4); /* round(3.5) = 4 */
    assert_true(mlm_round_half_even(25.6) == 26 && mlm_round_half_even(28.8) == 29);
    assert_true(mlm_round_half_even(15.2) == 15 && mlm_round_half_even(17.1) == 17);
    o.disable_mlm = true;
    assert_int_equal(mlm_num_masked(&o, 128), 0);
}

/* mlm_collate with the keys base, base + 1, ... (rows at consecutive places of the stream) */
static void collate_at(mlm_batch *b, const int32_t *rows, int B, int S, const mlm_opts *o,
                       uint64_t seed, uint64_t base) {
    uint64_t *keys = malloc(sizeof(uint64_t) * (size_t)(B ? B : 1));
    for (int i = 0; i < B; i++)
        keys[i] = base + (uint64_t)i;
    mlm_collate(b, rows, B, S, o, seed, keys);
    free(keys);
}

/* Per row: exactly m labels, the chosen split, positions sorted and equal to the labeled ones. */
static void check_split(double p, int want_mask, int want_rand, int want_keep) {
    const int B = 256, S = 128;
    const int32_t V = 30000;
    int32_t *rows = malloc(sizeof(int32_t) * B * S);
    fill_rows(rows, B, S, V, 1);
    mlm_opts o = opts_for(p, V);
    mlm_batch b;
    mlm_batch_init(&b, B, S, &o);
    int m = want_mask + want_rand + want_keep;
    assert_int_equal(b.M, m);
    collate_at(&b, rows, B, S, &o, 42, 7);
    int64_t total_rand = 0;
    for (int r = 0; r < B; r++) {
        int labeled = 0, masks = 0, changed = 0, kept = 0;
        for (int k = 0; k < S; k++) {
            int32_t lab = b.labels[r * S + k], in = b.input_ids[r * S + k], orig = rows[r * S + k];
            if (lab == -100) {
                assert_int_equal(in, orig);
                continue;
            }
            assert_int_equal(lab, orig);
            labeled++;
            if (in == o.mask_id)
                masks++;
            else if (in != orig)
                changed++;
            else
                kept++;
        }
        assert_int_equal(labeled, m);
        /* a random id may equal <mask> or the original (probability 1/V each) */
        assert_true(masks >= want_mask && masks <= want_mask + want_rand);
        assert_true(changed <= want_rand);
        assert_true(kept >= want_keep && kept <= want_keep + want_rand);
        total_rand += changed;
        for (int j = 0; j < m; j++) {
            int32_t pos = b.positions[r * m + j];
            if (j) assert_true(pos > b.positions[r * m + j - 1]);
            assert_int_not_equal(b.labels[r * S + pos], -100);
            assert_int_equal(b.targets[r * m + j], rows[r * S + pos]);
        }
    }
    assert_true(total_rand >= (int64_t)B * want_rand - 3);
    mlm_batch_free(&b);
    free(rows);
}

static void test_mlm_split(void **state) {
    (void)state;
    check_split(0.25, 26, 3, 3);
    check_split(0.15, 15, 2, 2);
}

/* Positions uniform (chi-square over 128 positions), random ids uniform over the vocabulary. */
static void test_mlm_uniform(void **state) {
    (void)state;
    const int B = 64, S = 128, steps = 64;
    const int32_t V = 64;
    int32_t *rows = malloc(sizeof(int32_t) * B * S);
    for (int k = 0; k < B * S; k++)
        rows[k] = 7; /* never equal to <mask> (6) */
    mlm_opts o = opts_for(0.25, V);
    mlm_batch b;
    mlm_batch_init(&b, B, S, &o);
    double pos_count[128] = {0}, id_count[64] = {0};
    double nrand = 0;
    for (int st = 0; st < steps; st++) {
        collate_at(&b, rows, B, S, &o, 5, (uint64_t)st * B);
        for (int k = 0; k < B * S; k++) {
            if (b.labels[k] != -100) pos_count[k % S]++;
            if (b.labels[k] != -100 && b.input_ids[k] != 6) {
                /* kept or random: random ids are those drawn, including 7 by chance; count all
                 * non-<mask> values except the kept 7s by subtracting the expectation below */
                id_count[b.input_ids[k]]++;
                nrand++;
            }
        }
    }
    double expect = (double)B * steps * 32 / S, chi = 0;
    for (int k = 0; k < S; k++)
        chi += (pos_count[k] - expect) * (pos_count[k] - expect) / expect;
    /* 127 degrees of freedom: mean 127, sd 16; 200 is beyond p = 1e-5 */
    assert_true(chi < 200);
    /* random ids: 3 per row drawn over 64 ids (one of which, 6, shows as <mask> and 7 also
     * collects the 3 kept per row): chi-square over the other 62 ids */
    double per_id = (double)B * steps * 3 / V, chi2 = 0;
    for (int k = 0; k < V; k++) {
        if (k == 6 || k == 7) continue;
        chi2 += (id_count[k] - per_id) * (id_count[k] - per_id) / per_id;
    }
    assert_true(chi2 < 110); /* 61 dof: mean 61, sd 11 */
    (void)nrand;
    mlm_batch_free(&b);
    free(rows);
}

static void test_mlm_determinism(void **state) {
    (void)state;
    const int B = 8, S = 128;
    int32_t rows[8 * 128];
    fill_rows(rows, B, S, 5000, 3);
    mlm_opts o = opts_for(0.25, 5000);
    mlm_batch a, b;
    mlm_batch_init(&a, B, S, &o);
    mlm_batch_init(&b, B, S, &o);
    collate_at(&a, rows, B, S, &o, 11, 100);
    collate_at(&b, rows, B, S, &o, 11, 100);
    assert_memory_equal(a.input_ids, b.input_ids, sizeof(int32_t) * B * S);
    assert_memory_equal(a.labels, b.labels, sizeof(int32_t) * B * S);
    collate_at(&b, rows, B, S, &o, 11, 101);
    assert_memory_not_equal(a.labels, b.labels, sizeof(int32_t) * B * S);
    collate_at(&b, rows, B, S, &o, 12, 100);
    assert_memory_not_equal(a.labels, b.labels, sizeof(int32_t) * B * S);
    /* a row's masks follow its key, not its microbatch: 8 rows at once or as 3 + 5 */
    mlm_batch c;
    mlm_batch_init(&c, B, S, &o);
    collate_at(&c, rows, 3, S, &o, 11, 100);
    assert_int_equal(c.B, 3);
    assert_memory_equal(a.input_ids, c.input_ids, sizeof(int32_t) * 3 * S);
    assert_memory_equal(a.labels, c.labels, sizeof(int32_t) * 3 * S);
    assert_memory_equal(a.positions, c.positions, sizeof(int32_t) * 3 * (size_t)a.M);
    collate_at(&c, rows + 3 * S, 5, S, &o, 11, 103);
    assert_memory_equal(a.input_ids + 3 * S, c.input_ids, sizeof(int32_t) * 5 * S);
    assert_memory_equal(a.labels + 3 * S, c.labels, sizeof(int32_t) * 5 * S);
    assert_memory_equal(a.targets + 3 * a.M, c.targets, sizeof(int32_t) * 5 * (size_t)a.M);
    collate_at(&c, rows, B, S, &o, 11, 100); /* back to the full size */
    assert_memory_equal(a.labels, c.labels, sizeof(int32_t) * B * S);
    mlm_batch_free(&c);
    mlm_batch_free(&a);
    mlm_batch_free(&b);
}

static void test_mlm_disable_and_drop(void **state) {
    (void)state;
    const int B = 4, S = 128;
    int32_t rows[4 * 128];
    fill_rows(rows, B, S, 5000, 4);
    rows[5] = 0; /* a pad id */
    mlm_opts o = opts_for(0.25, 5000);
    o.disable_mlm = true;
    mlm_batch b;
    mlm_batch_init(&b, B, S, &o);
    collate_at(&b, rows, B, S, &o, 1, 0);
    assert_memory_equal(b.input_ids, rows, sizeof rows);
    assert_int_equal(b.labels[5], -100);
    assert_int_equal(b.labels[6], rows[6]);
    mlm_batch_free(&b);
    o.disable_mlm = false;
    o.token_drop = 0.1;
    mlm_batch_init(&b, B, S, &o);
    assert_int_equal(b.S, 115);
    assert_int_equal(b.M, 0);
    collate_at(&b, rows, B, S, &o, 1, 0);
    for (int r = 0; r < B; r++) {
        int labeled = 0;
        for (int k = 0; k < b.S; k++)
            labeled += b.labels[r * b.S + k] != -100;
        assert_true(labeled <= 32 && labeled >= 20);
    }
    mlm_batch_free(&b);
}

/* ---- rows files --------------------------------------------------------------------------- */
static void make_rows_file(const char *path, int32_t V, int S, int64_t n) {
    store_writer w;
    char err[DATA_ERRLEN];
    assert_int_equal(store_writer_open(&w, path, V, S, err, sizeof err), 0);
    int32_t *row = malloc(sizeof(int32_t) * S);
    for (int64_t i = 0; i < n; i++) {
        row[0] = (int32_t)(i % V);
        for (int k = 1; k < S; k++)
            row[k] = (int32_t)((i * 31 + k * 7) % V);
        assert_int_equal(store_writer_append(&w, row, 1, err, sizeof err), 0);
    }
    free(row);
    assert_int_equal(store_writer_finish(&w, err, sizeof err), 0);
}

static void test_rows_roundtrip(void **state) {
    (void)state;
    char p[512], err[DATA_ERRLEN];
    int32_t Vs[2] = {1000, 70000};
    for (int t = 0; t < 2; t++) {
        tpath(p, sizeof p, t ? "rows32.bin" : "rows16.bin");
        make_rows_file(p, Vs[t], 16, 70000); /* > 1 MiB: several checksum chunks */
        store_rows r;
        assert_int_equal(store_rows_open(&r, p, STORE_VERIFY_FULL, err, sizeof err), 0);
        assert_int_equal(r.dtype_bytes, t ? 4 : 2);
        assert_int_equal(r.vocab_size, Vs[t]);
        assert_int_equal(r.row_len, 16);
        assert_int_equal(r.row_count, 70000);
        int32_t row[16];
        for (int64_t i = 0; i < 70000; i += 997) {
            store_rows_get(&r, i, row);
            assert_int_equal(row[0], (int32_t)(i % Vs[t]));
            assert_int_equal(row[15], (int32_t)((i * 31 + 15 * 7) % Vs[t]));
        }
        store_rows_close(&r);
    }
}

static void test_rows_corruption(void **state) {
    (void)state;
    char p[512], err[DATA_ERRLEN];
    tpath(p, sizeof p, "rows_bad.bin");
    make_rows_file(p, 1000, 32, 5000);
    /* flip one payload byte */
    FILE *fp = fopen(p, "r+b");
    fseek(fp, STORE_HEADER_BYTES + 4321, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, STORE_HEADER_BYTES + 4321, SEEK_SET);
    fputc(c ^ 0x10, fp);
    fclose(fp);
    store_rows r;
    assert_int_equal(store_rows_open(&r, p, STORE_VERIFY_QUICK, err, sizeof err), 0);
    store_rows_close(&r);
    assert_int_equal(store_rows_open(&r, p, STORE_VERIFY_FULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "corrupted"));
    assert_non_null(strstr(err, p));
    /* truncate */
    assert_int_equal(truncate(p, STORE_HEADER_BYTES + 1000), 0);
    assert_int_equal(store_rows_open(&r, p, STORE_VERIFY_QUICK, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(truncate(p, 10), 0);
    assert_int_equal(store_rows_open(&r, p, STORE_VERIFY_QUICK, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    /* a header byte */
    make_rows_file(p, 1000, 32, 10);
    fp = fopen(p, "r+b");
    fseek(fp, 20, SEEK_SET);
    fputc(64, fp);
    fclose(fp);
    assert_int_equal(store_rows_open(&r, p, STORE_VERIFY_QUICK, err, sizeof err), -1);
    assert_non_null(strstr(err, "header"));
    write_text(p, "hello, this is not a rows file at all, but long enough for a header....");
    assert_int_equal(store_rows_open(&r, p, STORE_VERIFY_QUICK, err, sizeof err), -1);
    assert_non_null(strstr(err, "magic"));
}

/* ---- loader ------------------------------------------------------------------------------- */
static void test_loader(void **state) {
    (void)state;
    char p[512], err[DATA_ERRLEN];
    tpath(p, sizeof p, "loader.bin");
    const int64_t N = 1003;
    make_rows_file(p, 5000, 4, N); /* row i starts with i */
    store_rows r;
    assert_int_equal(store_rows_open(&r, p, STORE_VERIFY_FULL, err, sizeof err), 0);
    for (int shuffle = 0; shuffle < 2; shuffle++) {
        const int W = 4, MBS = 8;
        unsigned char *seen = calloc((size_t)N, 1);
        int64_t per = 0;
        for (int rank = 0; rank < W; rank++) {
            loader l;
            assert_int_equal(loader_init(&l, &r, rank, W, MBS, shuffle, 17, err, sizeof err), 0);
            assert_int_equal(l.per_rank, N / W);
            per = l.per_rank;
            for (int64_t k = 0; k < l.per_rank; k++) {
                int64_t row = loader_row(&l, 0, k);
                assert_true(row >= 0 && row < N);
                assert_int_equal(seen[row], 0); /* disjoint across ranks, no repeats */
                seen[row] = 1;
            }
            if (shuffle) {
                int same = 0;
                for (int64_t k = 0; k < l.per_rank; k++)
                    same += loader_row(&l, 0, k) == loader_row(&l, 1, k);
                assert_true(same < l.per_rank / 10); /* a new order each epoch */
            } else {
                assert_int_equal(loader_row(&l, 0, 3), rank + 3 * W);
            }
        }
        int64_t total = 0;
        for (int64_t i = 0; i < N; i++)
            total += seen[i];
        assert_int_equal(total, per * W);
        free(seen);
    }
    /* exact resume, across an epoch boundary (501 rows per rank: microbatches of 16 run on
     * into the next epoch) */
    loader a, b;
    assert_int_equal(loader_init(&a, &r, 1, 2, 16, true, 99, err, sizeof err), 0);
    int32_t ba[16 * 4], bb[16 * 4];
    uint64_t ka[16], kb[16];
    loader_pos saved = {0, 0};
    for (int s = 0; s < 40; s++) {
        if (s == 25) saved = loader_tell(&a);
        loader_next(&a, ba, 16, ka);
    }
    assert_true(a.pos.epoch >= 1);
    assert_int_equal(loader_init(&b, &r, 1, 2, 16, true, 99, err, sizeof err), 0);
    loader_seek(&b, saved);
    loader_init(&a, &r, 1, 2, 16, true, 99, err, sizeof err);
    loader_seek(&a, saved);
    for (int s = 25; s < 60; s++) {
        loader_pos pa = loader_next(&a, ba, 16, ka), pb = loader_next(&b, bb, 16, kb);
        assert_int_equal(pa.epoch, pb.epoch);
        assert_int_equal(pa.index, pb.index);
        assert_memory_equal(ba, bb, sizeof ba);
        assert_memory_equal(ka, kb, sizeof ka);
    }
    /* the stream does not depend on how it is cut: 7 + 16 + 1 rows = 3 x 8 rows, keys
     * included; keys are the rows' places in the stream of all ranks */
    loader_init(&a, &r, 1, 2, 16, true, 99, err, sizeof err);
    loader_init(&b, &r, 1, 2, 16, true, 99, err, sizeof err);
    int32_t ra[24 * 4], rb[24 * 4];
    uint64_t kra[24], krb[24];
    for (int rep = 0; rep < 30; rep++) { /* about 1.4 epochs of 501 rows */
        loader_next(&a, ra, 7, kra);
        loader_next(&a, ra + 7 * 4, 16, kra + 7);
        loader_next(&a, ra + 23 * 4, 1, kra + 23);
        for (int c = 0; c < 3; c++)
            loader_next(&b, rb + c * 8 * 4, 8, krb + c * 8);
        assert_memory_equal(ra, rb, sizeof ra);
        assert_memory_equal(kra, krb, sizeof kra);
        for (int i = 0; i < 24; i++) {
            int64_t at = (int64_t)rep * 24 + i, e = at / 501, k = at % 501;
            assert_int_equal(kra[i], (uint64_t)(e * 1002 + 1 + 2 * k));
            assert_int_equal(ra[i * 4], loader_row(&a, e, k));
        }
    }
    assert_int_equal(a.pos.epoch, 1);
    assert_int_equal(a.pos.index, 30 * 24 - 501);
    /* too few rows */
    assert_int_equal(loader_init(&a, &r, 0, 8, 200, false, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "too few"));
    store_rows_close(&r);
}

/* ---- sources ------------------------------------------------------------------------------ */
static int read_all(src_list *l, char docs[][256], int max, char *err) {
    src_reader *r;
    assert_int_equal(src_reader_open(&r, l, err, DATA_ERRLEN), 0);
    const char *d;
    size_t n;
    int k = 0, rc;
    while ((rc = src_reader_next(r, &d, &n, err, DATA_ERRLEN)) == 1) {
        if (k < max) snprintf(docs[k], 256, "%.*s", (int)n, d);
        k++;
    }
    src_reader_close(r);
    return rc < 0 ? -1 : k;
}

static void write_zst(const char *path, const char *text) {
    size_t n = strlen(text), cap = ZSTD_compressBound(n);
    void *buf = malloc(cap);
    size_t z = ZSTD_compress(buf, cap, text, n, 3);
    assert_false(ZSTD_isError(z));
    write_bytes(path, buf, z);
    free(buf);
}

static void test_sources(void **state) {
    (void)state;
    char p[512], err[DATA_ERRLEN], docs[16][256];
    const char *txt = "first doc\nline two\n\n\n  \nsecond doc\r\n\nthird\n";
    tpath(p, sizeof p, "src");
    mkdir(p, 0777);
    tpath(p, sizeof p, "src/a.txt");
    write_text(p, txt);
    src_list l = {0};
    assert_int_equal(src_list_add(&l, "a", p, SRC_TEXT, SRC_DOC_BLANK_LINE, NULL, err, sizeof err),
                     0);
    assert_int_equal(read_all(&l, docs, 16, err), 3);
    assert_string_equal(docs[0], "first doc\nline two");
    assert_string_equal(docs[1], "second doc");
    assert_string_equal(docs[2], "third");
    src_list_free(&l);

    assert_int_equal(src_list_add(&l, "a", p, SRC_TEXT, SRC_DOC_LINE, NULL, err, sizeof err), 0);
    assert_int_equal(read_all(&l, docs, 16, err), 4);
    assert_string_equal(docs[1], "line two");
    src_list_free(&l);

    assert_int_equal(src_list_add(&l, "a", p, SRC_TEXT, SRC_DOC_FILE, NULL, err, sizeof err), 0);
    assert_int_equal(read_all(&l, docs, 16, err), 1);
    assert_string_equal(docs[0], "first doc\nline two\n\n\n  \nsecond doc\n\nthird");
    src_list_free(&l);

    /* zstd text, a folder (sorted), a glob */
    tpath(p, sizeof p, "src/b.txt.zst");
    write_zst(p, "zstd one\n\nzstd two\n");
    tpath(p, sizeof p, "src");
    assert_int_equal(
        src_list_add(&l, "dir", p, SRC_TEXT, SRC_DOC_BLANK_LINE, NULL, err, sizeof err), 0);
    assert_int_equal(l.v[0].nfiles, 2);
    assert_int_equal(read_all(&l, docs, 16, err), 5);
    assert_string_equal(docs[3], "zstd one");
    assert_string_equal(docs[4], "zstd two");
    src_list_free(&l);
    tpath(p, sizeof p, "src/*.zst");
    assert_int_equal(
        src_list_add(&l, "glob", p, SRC_TEXT, SRC_DOC_BLANK_LINE, NULL, err, sizeof err), 0);
    assert_int_equal(read_all(&l, docs, 16, err), 2);
    src_list_free(&l);

    /* JSON lines, plain and compressed */
    tpath(p, sizeof p, "j.jsonl");
    write_text(p, "{\"text\": \"json one\", \"meta\": 1}\n\n{\"text\": \"json\\ntwo\"}\n");
    assert_int_equal(src_list_add(&l, "j", p, SRC_JSONL, SRC_DOC_LINE, "text", err, sizeof err), 0);
    tpath(p, sizeof p, "j2.jsonl.zst");
    write_zst(p, "{\"body\": \"pile record\"}\n");
    assert_int_equal(src_list_add(&l, "z", p, SRC_JSONL, SRC_DOC_LINE, "body", err, sizeof err), 0);
    assert_int_equal(read_all(&l, docs, 16, err), 3);
    assert_string_equal(docs[1], "json\ntwo");
    assert_string_equal(docs[2], "pile record");
    src_list_free(&l);

    /* errors: bad JSON, wrong field, missing file, no glob match, damaged zstd */
    tpath(p, sizeof p, "bad.jsonl");
    write_text(p, "{\"text\": \"ok\"}\n{not json\n");
    assert_int_equal(src_list_add(&l, "bad", p, SRC_JSONL, SRC_DOC_LINE, "text", err, sizeof err),
                     0);
    assert_int_equal(read_all(&l, docs, 16, err), -1);
    assert_non_null(strstr(err, "bad.jsonl:2"));
    src_list_free(&l);
    tpath(p, sizeof p, "j.jsonl");
    assert_int_equal(src_list_add(&l, "f", p, SRC_JSONL, SRC_DOC_LINE, "content", err, sizeof err),
                     0);
    assert_int_equal(read_all(&l, docs, 16, err), -1);
    assert_non_null(strstr(err, "content"));
    src_list_free(&l);
    tpath(p, sizeof p, "missing.txt");
    assert_int_equal(src_list_add(&l, "m", p, SRC_TEXT, SRC_DOC_LINE, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing.txt"));
    tpath(p, sizeof p, "nothing*.txt");
    assert_int_equal(src_list_add(&l, "m", p, SRC_TEXT, SRC_DOC_LINE, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "no file matches"));
    src_list_free(&l);
    tpath(p, sizeof p, "broken.txt.zst");
    write_text(p, "this is not zstd data at all");
    assert_int_equal(src_list_add(&l, "z", p, SRC_TEXT, SRC_DOC_LINE, NULL, err, sizeof err), 0);
    assert_int_equal(read_all(&l, docs, 16, err), -1);
    assert_non_null(strstr(err, "zstd"));
    src_list_free(&l);
}

/* Files that are not UTF-8 text are refused before any of their documents is read: UTF-16 (with
 * and without a byte order mark, also inside zstd), random bytes, an ELF header; a few bad bytes
 * in real text only warn. */
static void test_sources_not_text(void **state) {
    (void)state;
    char p[512], err[DATA_ERRLEN], docs[16][256];
    const char *line = "The words of the text go on and on, line after line.\n\n";
    size_t ln = strlen(line), reps = 200;
    uint8_t *u16 = malloc(2 + 2 * ln * reps), *txt = malloc(ln * reps);
    size_t n16 = 0;
    u16[n16++] = 0xFF, u16[n16++] = 0xFE;
    for (size_t r = 0; r < reps; r++)
        for (size_t k = 0; k < ln; k++)
            u16[n16++] = (uint8_t)line[k], u16[n16++] = 0, txt[r * ln + k] = (uint8_t)line[k];
    src_list l = {0};
    tpath(p, sizeof p, "u16.txt");
    write_bytes(p, u16, n16);
    assert_int_equal(src_list_add(&l, "u", p, SRC_TEXT, SRC_DOC_BLANK_LINE, NULL, err, sizeof err),
                     0);
    assert_int_equal(read_all(&l, docs, 16, err), -1);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, "looks like UTF-16"));
    assert_non_null(strstr(err, "iconv -f UTF-16 -t UTF-8"));
    src_list_free(&l);
    /* no byte order mark: the NUL pattern */
    tpath(p, sizeof p, "u16le.txt");
    write_bytes(p, u16 + 2, n16 - 2);
    assert_int_equal(src_list_add(&l, "u", p, SRC_TEXT, SRC_DOC_LINE, NULL, err, sizeof err), 0);
    assert_int_equal(read_all(&l, docs, 16, err), -1);
    assert_non_null(strstr(err, "UTF-16 (little-endian, no byte order mark)"));
    src_list_free(&l);
    /* UTF-16 inside zstd (JSON lines) */
    tpath(p, sizeof p, "u16.jsonl.zst");
    size_t cap = ZSTD_compressBound(n16);
    void *z = malloc(cap);
    size_t zn = ZSTD_compress(z, cap, u16, n16, 3);
    write_bytes(p, z, zn);
    free(z);
    assert_int_equal(src_list_add(&l, "u", p, SRC_JSONL, SRC_DOC_LINE, "text", err, sizeof err), 0);
    assert_int_equal(read_all(&l, docs, 16, err), -1);
    assert_non_null(strstr(err, "u16.jsonl.zst (after zstd decompression) looks like UTF-16"));
    src_list_free(&l);
    /* random bytes after a line of text: the offset and line of the first bad byte */
    uint8_t rnd[65536];
    core_rng r;
    core_rng_init(&r, 7, 0, 0, 0);
    for (size_t k = 0; k < sizeof rnd; k++)
        rnd[k] = (uint8_t)core_rng_u64(&r);
    memcpy(rnd, "a line of text\n", 15);
    rnd[15] = 0x80; /* a stray continuation byte */
    tpath(p, sizeof p, "random.bin");
    write_bytes(p, rnd, sizeof rnd);
    assert_int_equal(src_list_add(&l, "r", p, SRC_TEXT, SRC_DOC_FILE, NULL, err, sizeof err), 0);
    assert_int_equal(read_all(&l, docs, 16, err), -1);
    assert_non_null(strstr(err, "random.bin does not look like text"));
    assert_non_null(strstr(err, "offset 15 (line 2), byte 0x80"));
    src_list_free(&l);
    memcpy(rnd,
           "\x7F"
           "ELF",
           4);
    tpath(p, sizeof p, "a.out");
    write_bytes(p, rnd, sizeof rnd);
    assert_int_equal(src_list_add(&l, "r", p, SRC_TEXT, SRC_DOC_FILE, NULL, err, sizeof err), 0);
    assert_int_equal(read_all(&l, docs, 16, err), -1);
    assert_non_null(strstr(err, "executable"));
    src_list_free(&l);
    /* a few bad bytes in 11 KB of text: read, with a warning */
    txt[100] = 0xFF, txt[200] = 0;
    tpath(p, sizeof p, "few.txt");
    write_bytes(p, txt, ln * reps);
    assert_int_equal(src_list_add(&l, "f", p, SRC_TEXT, SRC_DOC_BLANK_LINE, NULL, err, sizeof err),
                     0);
    assert_int_equal(read_all(&l, docs, 16, err), (int)reps);
    src_list_free(&l);
    free(u16);
    free(txt);
    /* a text file past the checked window (and past the reader's first buffer) is read whole */
    tpath(p, sizeof p, "big.txt");
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    size_t bytes = 0, lines = 0;
    while (bytes < TOK_TEXT_CHECK_BYTES + (1u << 20) + 12345) {
        int w = fprintf(fp, "line %zu of a long file, caf\xc3\xa9 and so on\n", lines++);
        bytes += (size_t)w;
    }
    fclose(fp);
    assert_int_equal(src_list_add(&l, "b", p, SRC_TEXT, SRC_DOC_LINE, NULL, err, sizeof err), 0);
    src_reader *rd;
    assert_int_equal(src_reader_open(&rd, &l, err, sizeof err), 0);
    const char *d;
    size_t dn, got = 0, last_len = 0;
    char last[64] = "";
    while (src_reader_next(rd, &d, &dn, err, sizeof err) == 1) {
        got++;
        last_len = dn;
        snprintf(last, sizeof last, "%.*s", (int)(dn < 60 ? dn : 60), d);
    }
    assert_int_equal(got, lines);
    assert_int_equal(src_reader_bytes(rd), bytes);
    char want[64];
    snprintf(want, sizeof want, "line %zu of a long file, caf\xc3\xa9 and so on", lines - 1);
    assert_string_equal(last, want);
    assert_int_equal(last_len, strlen(want));
    src_reader_close(rd);
    src_list_free(&l);
}

/* ---- end to end --------------------------------------------------------------------------- */
/* ~400 KB of English-like text: Zipf-distributed invented words, sentences ending in ".",
 * paragraphs separated by blank lines, some exact duplicates, invalid UTF-8 and a NUL byte. */
static void make_corpus(const char *dir, size_t bytes) {
    char p[1024];
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/part1.txt", dir);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    static const char *syl[] = {"ka",  "lo",  "mi",  "ne",  "ru", "sa", "to",  "vi",
                                "der", "ing", "the", "and", "qu", "st", "pre", "ly"};
    char words[400][16];
    core_rng r;
    core_rng_init(&r, 1234, 0, 0, 0);
    for (int w = 0; w < 400; w++) {
        int ns = 1 + (int)core_rng_below(&r, 3);
        words[w][0] = 0;
        for (int s = 0; s < ns; s++)
            strcat(words[w], syl[core_rng_below(&r, 16)]);
    }
    size_t written = 0;
    int para = 0;
    while (written < bytes) {
        char doc[4096];
        size_t n = 0;
        int sentences = 1 + (int)core_rng_below(&r, 6);
        for (int s = 0; s < sentences; s++) {
            int len = 3 + (int)core_rng_below(&r, 12);
            for (int k = 0; k < len; k++) {
                /* Zipf-ish: the minimum of two uniforms, squared */
                double u = core_rng_uniform_double(&r);
                int w = (int)(400 * u * u * u);
                n += (size_t)snprintf(doc + n, sizeof doc - n, "%s%s", k ? " " : "", words[w]);
            }
            n += (size_t)snprintf(doc + n, sizeof doc - n, "%s", s + 1 < sentences ? ". " : ".");
        }
        fwrite(doc, 1, n, fp);
        if (para % 50 == 0) fputs("\n\n", fp), fwrite(doc, 1, n, fp); /* an exact copy */
        if (para == 7) fwrite("bad \xff\xfe utf8 and a nul \0 byte", 1, 29, fp);
        fputs("\n\n", fp);
        written += n + 2;
        para++;
    }
    fclose(fp);
}

static cfg_node *compose_data(const char *data, const char *extra1, const char *extra2) {
    char ip[600], dg[64];
    snprintf(ip, sizeof ip, "impl.path=%s", tmp_root);
    snprintf(dg, sizeof dg, "data=%s", data);
    char *args[8] = {dg,
                     ip,
                     "data.vocab_size=300",
                     "data.validation_seqs=16",
                     "impl.threads=2",
                     "data.deduplicate_entries=True"};
    int n = 6;
    if (extra1) args[n++] = (char *)extra1;
    if (extra2) args[n++] = (char *)extra2;
    cfg_error ce = {0};
    cfg_node *cfg = cfg_from_args("pretrain", n, args, &ce);
    if (!cfg) fail_msg("compose: %s", ce.msg);
    return cfg;
}

static cfg_node *compose(const char *extra1, const char *extra2) {
    return compose_data("kjv", extra1, extra2);
}

static int config_available(void) {
    cfg_search s;
    cfg_search_init(&s);
    int n = cfg_search_default(&s);
    cfg_search_free(&s);
    return n > 0;
}

static void test_end_to_end(void **state) {
    (void)state;
    if (!config_available()) skip();
    char p[512], err[DATA_ERRLEN];
    tpath(p, sizeof p, "corpora");
    mkdir(p, 0777);
    tpath(p, sizeof p, "corpora/kjv");
    make_corpus(p, 400000);

    cfg_node *cfg = compose(NULL, NULL);
    store s;
    double t0 = core_now();
    if (data_prepare(&s, cfg, STORE_VERIFY_FULL, err, sizeof err) != 0) fail_msg("%s", err);
    printf("# built in %.2f s: %lld docs, %lld tokens, %lld rows\n", core_now() - t0,
           (long long)s.stats.documents, (long long)s.stats.tokens, (long long)s.stats.rows_train);
    assert_true(s.built);
    assert_int_equal(s.valid.row_count, 16);
    assert_int_equal(s.train.row_len, 128);
    assert_int_equal(s.train.vocab_size, 300);
    assert_int_equal(s.stats.rows_train + 16, s.stats.rows_packed);
    assert_true(s.stats.documents_dup > 0);
    assert_true(s.stats.documents + s.stats.documents_dup == s.stats.documents_read);
    assert_true(s.stats.tokens == s.stats.rows_packed * 128 + s.stats.tokens_dropped);
    int32_t sep = tok_special_id(s.tok, TOK_SEP), row[128];
    int64_t seps = 0;
    for (int64_t i = 0; i < s.train.row_count; i++) {
        store_rows_get(&s.train, i, row);
        for (int k = 0; k < 128; k++) {
            assert_true(row[k] >= 0 && row[k] < 300);
            seps += row[k] == sep;
        }
    }
    assert_true(seps > s.stats.documents / 2);
    mlm_opts mo;
    if (mlm_opts_from_config(&mo, cfg, s.tok, err, sizeof err) != 0) fail_msg("%s", err);
    assert_true(fabs(mo.mlm_probability - 0.15) < 1e-12); /* train=bert-base */
    assert_true(mo.use_80_20_rule && !mo.disable_mlm);
    assert_int_equal(mo.mask_id, tok_special_id(s.tok, TOK_MASK));
    assert_int_equal(mo.vocab_size, 300);
    char dir1[CORE_PATH_MAX];
    snprintf(dir1, sizeof dir1, "%s", s.dir);
    store_close(&s);

    /* reuse: same folder, not rebuilt, fast */
    t0 = core_now();
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err), 0);
    assert_false(s.built);
    assert_string_equal(s.dir, dir1);
    assert_true(core_now() - t0 < 1.0);
    store_close(&s);
    cfg_free(cfg);

    /* a changed data key gives another store; forbid_dataset_preprocessing refuses to build */
    cfg = compose("data.ordering=sentence-length-curriculum",
                  "impl.forbid_dataset_preprocessing=True");
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_non_null(strstr(err, "forbid_dataset_preprocessing"));
    cfg_free(cfg);
    cfg = compose("data.ordering=sentence-length-curriculum", NULL);
    if (data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err) != 0) fail_msg("%s", err);
    assert_true(s.built);
    assert_string_not_equal(s.dir, dir1);
    tok_encoding e = {0};
    char te[TOK_ERRLEN];
    assert_int_equal(tok_encode(s.tok, ".", 1, false, &e, te), TOK_OK);
    int32_t dot = e.ids[0];
    tok_encoding_free(&e);
    int prev = 1 << 30;
    for (int64_t i = 0; i < s.train.row_count; i++) {
        store_rows_get(&s.train, i, row);
        int c = 0;
        for (int k = 0; k < 128; k++)
            c += row[k] == dot;
        assert_true(c <= prev); /* descending count of "." */
        prev = c;
    }
    store_close(&s);
    cfg_free(cfg);

    /* corrupt the first store: flipped byte, then truncated */
    char bin[CORE_PATH_MAX + 16];
    snprintf(bin, sizeof bin, "%s/train.bin", dir1);
    FILE *fp = fopen(bin, "r+b");
    fseek(fp, STORE_HEADER_BYTES + 100, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, STORE_HEADER_BYTES + 100, SEEK_SET);
    fputc(c ^ 1, fp);
    fclose(fp);
    cfg = compose(NULL, NULL);
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_non_null(strstr(err, dir1));
    assert_non_null(strstr(err, "corrupted"));
    assert_non_null(strstr(err, "delete the folder"));
    struct stat st;
    stat(bin, &st);
    assert_int_equal(truncate(bin, st.st_size - 7), 0);
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_QUICK, err, sizeof err), -1);
    assert_non_null(strstr(err, dir1));
    assert_non_null(strstr(err, "truncated"));
    cfg_free(cfg);
}

/* Same config, another folder (absolute source path): byte-identical rows; the row cap holds. */
static void test_rebuild_identical(void **state) {
    (void)state;
    if (!config_available()) skip();
    char src[700], ip[700], err[DATA_ERRLEN];
    snprintf(src, sizeof src, "data.sources.kjv.path=%s/corpora/kjv", tmp_root);
    snprintf(ip, sizeof ip, "impl.path=%s/again", tmp_root);
    cfg_node *a = compose(src, NULL), *b = compose(src, ip);
    store sa, sb;
    if (data_prepare(&sa, a, STORE_VERIFY_FULL, err, sizeof err) != 0) fail_msg("%s", err);
    if (data_prepare(&sb, b, STORE_VERIFY_FULL, err, sizeof err) != 0) fail_msg("%s", err);
    assert_string_not_equal(sa.dir, sb.dir);
    assert_int_equal(sa.train.row_count, sb.train.row_count);
    assert_int_equal(sa.train.checksum, sb.train.checksum);
    assert_int_equal(sa.valid.checksum, sb.valid.checksum);
    assert_memory_equal(sa.train.payload, sb.train.payload,
                        (size_t)sa.train.row_count * 128 * (size_t)sa.train.dtype_bytes);
    store_close(&sa);
    store_close(&sb);
    cfg_free(a);
    cfg_free(b);
    a = compose(src, "data.max_seq_in_tokenized_dataset=100");
    if (data_prepare(&sa, a, STORE_VERIFY_FULL, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(sa.train.row_count, 100);
    assert_int_equal(sa.valid.row_count, 16);
    store_close(&sa);
    cfg_free(a);
}

static void test_pipeline_errors(void **state) {
    (void)state;
    if (!config_available()) skip();
    char p[512], err[DATA_ERRLEN];
    /* an empty corpus */
    cfg_node *cfg = compose("impl.path=/nonexistent-cram-test", NULL);
    store s;
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_non_null(strstr(err, "corpora/kjv"));
    cfg_free(cfg);
    tpath(p, sizeof p, "empty");
    mkdir(p, 0777);
    tpath(p, sizeof p, "empty/corpora");
    mkdir(p, 0777);
    tpath(p, sizeof p, "empty/corpora/kjv");
    mkdir(p, 0777);
    tpath(p, sizeof p, "empty/corpora/kjv/blank.txt");
    write_text(p, "\n\n   \n\t\n");
    char ip[600];
    snprintf(ip, sizeof ip, "impl.path=%s/empty", tmp_root);
    cfg = compose(ip, NULL);
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty"));
    cfg_free(cfg);
    /* too little text for the validation rows */
    tpath(p, sizeof p, "empty/corpora/kjv/blank.txt");
    write_text(p, "a few words only.\n\nand another short document here.\n");
    cfg = compose(ip, "data.vocab_size=40");
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_true(strstr(err, "validation_seqs") || strstr(err, "vocab"));
    cfg_free(cfg);
    /* a hub source (only the reference's sanity-check AG News has a generated stand-in) */
    cfg = compose_data("bookcorpus-wikipedia", NULL, NULL);
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_non_null(strstr(err, "local"));
    cfg_free(cfg);
}

/* A UTF-16 corpus stops the build at reading, with the file and the encoding named (it used to
 * reach tokenizer training and fail with "corpus too small for this vocabulary"); so does a
 * binary one (which used to build a store of control-character junk). */
static void test_pipeline_not_text(void **state) {
    (void)state;
    if (!config_available()) skip();
    char p[512], ip[600], err[DATA_ERRLEN];
    const char *dirs[] = {"nt", "nt/corpora", "nt/corpora/kjv"};
    for (int k = 0; k < 3; k++)
        mkdir(tpath(p, sizeof p, dirs[k]), 0777);
    const char *line = "And the words went on, and the text was long enough to learn from.\n\n";
    size_t ln = strlen(line), reps = 20000, n = 2;
    uint8_t *u16 = malloc(2 + 2 * ln * reps);
    u16[0] = 0xFF, u16[1] = 0xFE;
    for (size_t r = 0; r < reps; r++)
        for (size_t k = 0; k < ln; k++)
            u16[n++] = (uint8_t)line[k], u16[n++] = 0;
    tpath(p, sizeof p, "nt/corpora/kjv/bible16.txt");
    write_bytes(p, u16, n);
    free(u16);
    snprintf(ip, sizeof ip, "impl.path=%s/nt", tmp_root);
    cfg_node *cfg = compose(ip, NULL);
    store s;
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_non_null(strstr(err, "bible16.txt looks like UTF-16"));
    assert_null(strstr(err, "too small"));
    /* 2 MB of random bytes */
    uint8_t *rnd = malloc(2 << 20);
    core_rng r;
    core_rng_init(&r, 11, 0, 0, 0);
    for (size_t k = 0; k < (2u << 20); k++)
        rnd[k] = (uint8_t)core_rng_u64(&r);
    write_bytes(p, rnd, 2 << 20);
    free(rnd);
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_non_null(strstr(err, "bible16.txt does not look like text"));
    assert_non_null(strstr(err, "offset 0 (line 1)"));
    cfg_free(cfg);
}

static void flip_byte(const char *path, long off) {
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, off, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, off, SEEK_SET);
    fputc(c ^ 0x20, fp);
    fclose(fp);
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

/* The store records the size and checksum of each tokenizer file and checks them on every open:
 * a changed byte in any of them, or a missing tokenizer.json (which used to fall back silently to
 * vocab.txt with BERT's rules), is an error naming the file and how to rebuild. A version 1 store
 * (no checksums) still opens, marked unchecked. */
static void test_store_tokenizer_files(void **state) {
    (void)state;
    if (!config_available()) skip();
    char p[CORE_PATH_MAX + 64], ip[600], err[DATA_ERRLEN], dir[CORE_PATH_MAX];
    const char *dirs[] = {"tk", "tk/corpora"};
    for (int k = 0; k < 2; k++)
        mkdir(tpath(p, sizeof p, dirs[k]), 0777);
    make_corpus(tpath(p, sizeof p, "tk/corpora/kjv"), 200000);
    snprintf(ip, sizeof ip, "impl.path=%s/tk", tmp_root);
    cfg_node *cfg = compose(ip, NULL);
    store s;
    if (data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(s.version, STORE_DIR_VERSION);
    assert_false(s.tok_unchecked);
    assert_int_equal(s.tok_files, 4); /* tokenizer.json, vocab.txt and the two configs */
    snprintf(dir, sizeof dir, "%s", s.dir);
    store_close(&s);
    /* meta.json says so */
    char *meta;
    size_t mn;
    snprintf(p, sizeof p, "%s/meta.json", dir);
    assert_int_equal(core_read_file(p, &meta, &mn, err, sizeof err), 0);
    assert_non_null(strstr(meta, "\"store_version\":\t2"));
    assert_non_null(strstr(meta, "\"tokenizer_files\""));
    assert_non_null(strstr(meta, "\"vocab.txt\""));
    assert_non_null(strstr(meta, "\"fnv1a64\""));

    const char *names[] = {"vocab.txt", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json"};
    char saved[CORE_PATH_MAX + 80];
    for (int k = 0; k < 4; k++) {
        /* one changed byte (same size): refused by every verify mode */
        snprintf(p, sizeof p, "%s/tokenizer/%s", dir, names[k]);
        snprintf(saved, sizeof saved, "%s.orig", p);
        copy_file(p, saved);
        flip_byte(p, 30);
        assert_int_equal(store_open(&s, dir, STORE_VERIFY_QUICK, err, sizeof err), -1);
        char want[128];
        snprintf(want, sizeof want, "tokenizer/%s changed after the store was built", names[k]);
        assert_non_null(strstr(err, want));
        assert_non_null(strstr(err, "rm -rf"));
        assert_non_null(strstr(err, dir));
        copy_file(saved, p);
        unlink(saved);
    }
    /* restored: it opens again */
    assert_int_equal(store_open(&s, dir, STORE_VERIFY_FULL, err, sizeof err), 0);
    store_close(&s);
    /* tokenizer.json gone: an error, not vocab.txt with BERT's rules */
    snprintf(p, sizeof p, "%s/tokenizer/tokenizer.json", dir);
    snprintf(saved, sizeof saved, "%s.orig", p);
    assert_int_equal(rename(p, saved), 0);
    assert_int_equal(data_prepare(&s, cfg, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_non_null(strstr(err, "tokenizer/tokenizer.json is missing"));
    assert_non_null(strstr(err, "delete the folder"));
    assert_int_equal(rename(saved, p), 0);

    /* a version 1 store: same folder, meta.json without checksums */
    char *v1 = strdup(meta);
    char *at = strstr(v1, "\"store_version\":\t2");
    at[strlen("\"store_version\":\t")] = '1';
    char *tf = strstr(v1, ",\n\t\"tokenizer_files\"");
    assert_non_null(tf);
    char *end = strstr(tf, "\n\t}");
    assert_non_null(end);
    memmove(tf, end + 3, strlen(end + 3) + 1);
    snprintf(p, sizeof p, "%s/meta.json", dir);
    write_text(p, v1);
    if (store_open(&s, dir, STORE_VERIFY_FULL, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(s.version, 1);
    assert_true(s.tok_unchecked);
    assert_int_equal(s.tok_files, 0);
    store_close(&s);
    /* ... but a missing tokenizer.json is an error there too */
    snprintf(p, sizeof p, "%s/tokenizer/tokenizer.json", dir);
    assert_int_equal(rename(p, saved), 0);
    assert_int_equal(store_open(&s, dir, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_non_null(strstr(err, "tokenizer/tokenizer.json is missing"));
    assert_int_equal(rename(saved, p), 0);
    /* an unknown store version */
    at = strstr(v1, "\"store_version\":\t1");
    at[strlen("\"store_version\":\t")] = '7';
    snprintf(p, sizeof p, "%s/meta.json", dir);
    write_text(p, v1);
    assert_int_equal(store_open(&s, dir, STORE_VERIFY_AUTO, err, sizeof err), -1);
    assert_non_null(strstr(err, "store version 7"));
    write_text(p, meta);
    assert_int_equal(store_open(&s, dir, STORE_VERIFY_AUTO, err, sizeof err), 0);
    store_close(&s);
    free(v1);
    free(meta);
    cfg_free(cfg);
}

/* ---- harness ------------------------------------------------------------------------------ */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/cram-test-data-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlm_rounding),
        cmocka_unit_test(test_mlm_split),
        cmocka_unit_test(test_mlm_uniform),
        cmocka_unit_test(test_mlm_determinism),
        cmocka_unit_test(test_mlm_disable_and_drop),
        cmocka_unit_test(test_rows_roundtrip),
        cmocka_unit_test(test_rows_corruption),
        cmocka_unit_test(test_loader),
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_rebuild_identical),
        cmocka_unit_test(test_pipeline_errors),
        cmocka_unit_test(test_sources_not_text),
        cmocka_unit_test(test_pipeline_not_text),
        cmocka_unit_test(test_store_tokenizer_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
