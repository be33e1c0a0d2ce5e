/* Unit tests for src/core: Philox known answers and stream statistics, hashing, atomic files,
 * mmap, run folders, logging, progress output and the fatal-error wrappers (run in forked
 * children, since they exit). Everything touches only a fresh mkdtemp folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmp_root[256];

static const char *tmp_path(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", tmp_root, name);
    return out;
}

// noinline: after inlining, gcc -O3 mistakes the returned heap buffer for a dangling local.
__attribute__((noinline)) static char *slurp(const char *path, size_t *n) {
    char *buf = NULL;
    size_t len = 0;
    char err[256];
    if (core_read_file(path, &buf, &len, err, sizeof err) != 0)
        fail_msg("reading %s: %s", path, err);
    if (n) *n = len;
    return buf;
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int count_char(const char *s, char c) {
    int k = 0;
    for (; *s; s++)
        k += *s == c;
    return k;
}

/* Redirect a file descriptor (stdout or stderr) into a file so tests can read what was printed.
 * Flushing first keeps cmocka's own buffered output out of the capture. */
static int capture_begin(int fd, const char *path) {
    fflush(stdout);
    fflush(stderr);
    int saved = dup(fd);
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && f >= 0);
    dup2(f, fd);
    close(f);
    return saved;
}

static void capture_end(int fd, int saved) {
    fflush(stdout);
    fflush(stderr);
    dup2(saved, fd);
    close(saved);
}

/* ---------------------------------------------------------------- Philox and streams */

static void test_philox_kat(void **state) {
    (void)state;
    /* Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key, expected. */
    static const uint32_t kat[3][10] = {
        {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x6627e8d5,
         0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        core_philox4x32_10(&kat[i][0], &kat[i][4], out);
        for (int j = 0; j < 4; j++)
            assert_int_equal(out[j], kat[i][6 + j]);
    }
}

static void test_rng_counter_layout(void **state) {
    (void)state;
    /* The documented layout a GPU kernel relies on: word k of a fresh stream is word k % 4 of
     * philox(ctr = {k / 4, 0, step lo, step hi}, key). */
    const uint64_t step = 0x0000000500000007ull;
    core_rng r;
    core_rng_init(&r, 1234, 3, step, 2);
    uint32_t key[2];
    core_rng_key(key, 1234, 3, 2);
    assert_memory_equal(key, r.key, sizeof key);
    for (uint32_t k = 0; k < 64; k++) {
        uint32_t ctr[4] = {k / 4, 0, (uint32_t)step, (uint32_t)(step >> 32)};
        uint32_t out[4];
        core_philox4x32_10(ctr, key, out);
        assert_int_equal(core_rng_u32(&r), out[k % 4]);
    }
    /* u64 takes two words, the first as the low half. */
    core_rng a, b;
    core_rng_init(&a, 9, 0, 0, 0);
    core_rng_init(&b, 9, 0, 0, 0);
    uint64_t lo = core_rng_u32(&b), hi = core_rng_u32(&b);
    assert_true(core_rng_u64(&a) == (lo | hi << 32));
}

static void test_rng_reproducible_and_save_restore(void **state) {
    (void)state;
    core_rng a, b;
    core_rng_init(&a, 42, 1, 100, 7);
    core_rng_init(&b, 42, 1, 100, 7);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(core_rng_u32(&a), core_rng_u32(&b));

    /* Save in the middle of a block and with a Box-Muller spare pending. */
    (void)core_rng_u32(&a);
    (void)core_rng_normal(&a);
    core_rng saved, copy;
    core_rng_save(&a, &saved);
    memcpy(&copy, &a, sizeof a);
    float expect[100];
    for (int i = 0; i < 100; i++)
        expect[i] = i % 3 ? core_rng_normal(&a) : core_rng_uniform(&a);
    core_rng_restore(&b, &saved);
    for (int i = 0; i < 100; i++) {
        float v = i % 3 ? core_rng_normal(&b) : core_rng_uniform(&b);
        assert_memory_equal(&v, &expect[i], sizeof v);
    }
    for (int i = 0; i < 100; i++) {
        float v = i % 3 ? core_rng_normal(&copy) : core_rng_uniform(&copy);
        assert_memory_equal(&v, &expect[i], sizeof v);
    }
}

/* Fraction of equal bits between two streams' first n words: 0.5 for independent streams. */
static double bit_agreement(core_rng *a, core_rng *b, int n) {
    long same = 0;
    for (int i = 0; i < n; i++)
        same += 32 - __builtin_popcount(core_rng_u32(a) ^ core_rng_u32(b));
    return (double)same / (32.0 * n);
}

static void test_rng_tuples_independent(void **state) {
    (void)state;
    /* Each tuple differs from the base in exactly one field, including by one in the low bit,
     * in the high half of the 64-bit seed and step, and with rank and stream swapped. */
    const struct {
        uint64_t seed;
        uint32_t rank;
        uint64_t step;
        uint32_t stream;
    } t[] = {
        {1, 0, 0, 0}, {2, 0, 0, 0}, {1ull << 32 | 1, 0, 0, 0},
        {1, 1, 0, 0}, {1, 0, 1, 0}, {1, 0, 1ull << 32, 0},
        {1, 0, 0, 1}, {1, 0, 0, 0},
    };
    const int n = (int)(sizeof t / sizeof t[0]);
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            core_rng a, b;
            core_rng_init(&a, t[i].seed, t[i].rank, t[i].step, t[i].stream);
            core_rng_init(&b, t[j].seed, t[j].rank, t[j].step, t[j].stream);
            double agree = bit_agreement(&a, &b, 20000);
            if (i == 0 && j == n - 1) {
                assert_true(agree == 1.0); /* the same tuple twice */
                continue;
            }
            /* 640k bits: the standard deviation of the agreement is 0.0006. */
            if (fabs(agree - 0.5) > 0.004)
                fail_msg("tuples %d and %d agree on %.4f of bits", i, j, agree);
        }
    }
    /* rank 1 / stream 0 and rank 0 / stream 1 are different keys. */
    uint32_t k1[2], k2[2];
    core_rng_key(k1, 5, 1, 0);
    core_rng_key(k2, 5, 0, 1);
    assert_true(k1[0] != k2[0] || k1[1] != k2[1]);
}

static void test_rng_uniform_moments(void **state) {
    (void)state;
    const int n = 1000000;
    core_rng r;
    core_rng_init(&r, 2024, 0, 0, 0);
    double sum = 0, sum2 = 0, dsum = 0, dsum2 = 0;
    for (int i = 0; i < n; i++) {
        float u = core_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        sum += u;
        sum2 += (double)u * u;
        double d = core_rng_uniform_double(&r);
        assert_true(d >= 0.0 && d < 1.0);
        dsum += d;
        dsum2 += d * d;
    }
    /* The mean's standard error is 0.00029 and the variance's about 0.00008: 5 sigma bounds. */
    double mean = sum / n, var = sum2 / n - mean * mean;
    assert_true(fabs(mean - 0.5) < 0.0015);
    assert_true(fabs(var - 1.0 / 12.0) < 0.0005);
    mean = dsum / n;
    var = dsum2 / n - mean * mean;
    assert_true(fabs(mean - 0.5) < 0.0015);
    assert_true(fabs(var - 1.0 / 12.0) < 0.0005);

    /* The largest possible words still give values below 1. */
    core_rng top;
    memset(&top, 0, sizeof top);
    top.used = 0;
    top.buf[0] = top.buf[1] = top.buf[2] = top.buf[3] = 0xffffffffu;
    assert_true(core_rng_uniform(&top) < 1.0f);
    top.used = 0;
    assert_true(core_rng_uniform_double(&top) < 1.0);
}

static void test_rng_normal_moments(void **state) {
    (void)state;
    const int n = 1000000;
    core_rng r;
    core_rng_init(&r, 7, 3, 11, 1);
    double sum = 0, sum2 = 0, sum4 = 0;
    int within1 = 0;
    for (int i = 0; i < n; i++) {
        double x = core_rng_normal(&r);
        assert_true(isfinite(x));
        sum += x;
        sum2 += x * x;
        sum4 += x * x * x * x;
        within1 += fabs(x) < 1.0;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    assert_true(fabs(mean) < 0.005);          /* standard error 0.001 */
    assert_true(fabs(var - 1.0) < 0.007);     /* standard error 0.0014 */
    assert_true(fabs(sum4 / n - 3.0) < 0.05); /* kurtosis of a normal */
    assert_true(fabs((double)within1 / n - 0.682689) < 0.0025);
}

static void test_rng_below(void **state) {
    (void)state;
    core_rng r;
    core_rng_init(&r, 99, 0, 0, 5);
    const int n = 1000000;
    long counts[10] = {0};
    for (int i = 0; i < n; i++) {
        uint32_t v = core_rng_below(&r, 10);
        assert_true(v < 10);
        counts[v]++;
    }
    double chi2 = 0;
    for (int k = 0; k < 10; k++) {
        double d = (double)counts[k] - n / 10.0;
        chi2 += d * d / (n / 10.0);
    }
    /* 9 degrees of freedom: P(chi2 > 27.88) = 0.001. */
    if (chi2 > 27.88) fail_msg("chi-square %.2f for core_rng_below(10)", chi2);

    /* n = 3 * 2^30: plain "x % n" would put half of all draws below 2^30; unbiased is 1/3. */
    const uint32_t big = 0xc0000000u;
    long low = 0;
    for (int i = 0; i < 300000; i++) {
        uint32_t v = core_rng_below(&r, big);
        assert_true(v < big);
        low += v < 0x40000000u;
    }
    assert_true(fabs((double)low / 300000 - 1.0 / 3.0) < 0.005);

    assert_int_equal(core_rng_below(&r, 0), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(core_rng_below(&r, 1), 0);
    for (int i = 0; i < 100; i++)
        assert_true(core_rng_below(&r, 0xffffffffu) < 0xffffffffu);
}

/* ---------------------------------------------------------------- hash */

static void test_hash_known_values(void **state) {
    (void)state;
    /* Published 64-bit FNV-1a test vectors; seed 0 must be textbook FNV-1a. */
    assert_true(core_hash64("", 0, 0) == 0xcbf29ce484222325ull);
    assert_true(core_hash64("a", 1, 0) == 0xaf63dc4c8601ec8cull);
    assert_true(core_hash64("foobar", 6, 0) == 0x85944171f73967e8ull);
    char hex[17];
    core_hash_hex(core_hash64("cram", 4, 0), hex);
    assert_string_equal(hex, "12466e908c83e95a");
    core_hash_hex(0xff, hex);
    assert_string_equal(hex, "00000000000000ff");
    core_hash_hex(0, hex);
    assert_string_equal(hex, "0000000000000000");
}

static void test_hash_incremental_and_sensitive(void **state) {
    (void)state;
    const char *text = "data.vocab_size=32768\ndata.seq_length=128\n";
    size_t n = strlen(text);
    uint64_t whole = core_hash64(text, n, 17);
    for (size_t cut = 0; cut <= n; cut++) {
        core_hash s;
        core_hash_init(&s, 17);
        core_hash_update(&s, text, cut);
        core_hash_update(&s, text + cut, n - cut);
        assert_true(core_hash_final(&s) == whole);
    }
    core_hash s;
    core_hash_init(&s, 17);
    core_hash_update_str(&s, text);
    assert_true(core_hash_final(&s) == whole);

    /* Every single-bit change of the input, and a change of seed, changes the hash. */
    char buf[128];
    memcpy(buf, text, n);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (char)(1 << bit);
            assert_true(core_hash64(buf, n, 17) != whole);
            buf[i] ^= (char)(1 << bit);
        }
    }
    assert_true(core_hash64(text, n, 18) != whole);
    assert_true(core_hash64(text, n - 1, 17) != whole);

    /* update_u64 is byte-order independent: little-endian bytes. */
    const unsigned char le[8] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
    core_hash_init(&s, 0);
    core_hash_update_u64(&s, 0x0102030405060708ull);
    assert_true(core_hash_final(&s) == core_hash64(le, 8, 0));
}

/* ---------------------------------------------------------------- files */

static int has_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        found |= strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return found;
}

static void test_atomic_write_and_read(void **state) {
    (void)state;
    char dir[512], path[600], err[512];
    tmp_path(dir, sizeof dir, "atomic");
    assert_int_equal(core_mkdir_p(dir, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/state.bin", dir);

    assert_int_equal(core_atomic_write(path, "first", 5, err, sizeof err), 0);
    size_t n;
    char *got = slurp(path, &n);
    assert_int_equal(n, 5);
    assert_string_equal(got, "first"); /* NUL-terminated */
    free(got);

    assert_int_equal(core_atomic_write(path, "second!", 7, err, sizeof err), 0);
    got = slurp(path, &n);
    assert_int_equal(n, 7);
    assert_string_equal(got, "second!");
    free(got);
    assert_false(has_temp_files(dir));

    assert_int_equal(core_atomic_write(path, "", 0, err, sizeof err), 0);
    got = slurp(path, &n);
    assert_int_equal(n, 0);
    assert_int_equal(got[0], '\0');
    free(got);

    /* A missing folder is an error with a message, not a crash; nothing is created. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no/such/folder/x.bin", dir);
    err[0] = '\0';
    assert_int_equal(core_atomic_write(missing, "x", 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "no/such/folder/x.bin"));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(access(missing, F_OK), -1);
    /* err may be NULL. */
    assert_int_equal(core_atomic_write(missing, "x", 1, NULL, 0), -1);
}

static void test_atomic_stream_commit_abort(void **state) {
    (void)state;
    char dir[512], path[600], err[512];
    tmp_path(dir, sizeof dir, "atomic_stream");
    assert_int_equal(core_mkdir_p(dir, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    write_text(path, "old good checkpoint");

    /* Killed half-way (abort): the old file is intact and the temp file is gone. */
    core_atomic_file f;
    assert_int_equal(core_atomic_open(&f, path, err, sizeof err), 0);
    assert_non_null(f.fp);
    fputs("half of a new one", f.fp);
    fflush(f.fp);
    assert_true(has_temp_files(dir));
    char *got = slurp(path, NULL);
    assert_string_equal(got, "old good checkpoint"); /* not visible before commit */
    free(got);
    core_atomic_abort(&f);
    assert_false(has_temp_files(dir));
    got = slurp(path, NULL);
    assert_string_equal(got, "old good checkpoint");
    free(got);
    core_atomic_abort(&f); /* twice is harmless */

    /* Commit: the new content appears and no temp file is left. */
    assert_int_equal(core_atomic_open(&f, path, err, sizeof err), 0);
    for (int i = 0; i < 1000; i++)
        fprintf(f.fp, "%d\n", i);
    assert_int_equal(core_atomic_commit(&f, err, sizeof err), 0);
    assert_null(f.fp);
    assert_false(has_temp_files(dir));
    size_t n;
    got = slurp(path, &n);
    assert_int_equal(n, 3890);
    assert_memory_equal(got, "0\n1\n2\n", 6);
    free(got);
    core_atomic_abort(&f); /* after commit: a no-op that must not remove the file */
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(core_atomic_commit(&f, err, sizeof err), -1);

    /* Failed open leaves the struct safe to abort. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/missing/x", dir);
    assert_int_equal(core_atomic_open(&f, bad, err, sizeof err), -1);
    assert_null(f.fp);
    core_atomic_abort(&f);
}

static void test_mkdir_p(void **state) {
    (void)state;
    char dir[512], err[512];
    tmp_path(dir, sizeof dir, "mk/a/b//c/");
    assert_int_equal(core_mkdir_p(dir, err, sizeof err), 0);
    struct stat st;
    char check[600];
    tmp_path(check, sizeof check, "mk/a/b/c");
    assert_int_equal(stat(check, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(core_mkdir_p(dir, err, sizeof err), 0); /* existing is fine */

    char file[600];
    tmp_path(file, sizeof file, "mk/a/file");
    write_text(file, "x");
    char below[700];
    snprintf(below, sizeof below, "%s/sub", file);
    assert_int_equal(core_mkdir_p(file, err, sizeof err), -1);
    assert_non_null(strstr(err, "a file of that name exists"));
    assert_int_equal(core_mkdir_p(below, err, sizeof err), -1);
    assert_int_equal(core_mkdir_p("", err, sizeof err), -1);
}

static void test_read_file_errors(void **state) {
    (void)state;
    char path[512], err[512];
    char *buf = (char *)1;
    size_t n = 99;
    tmp_path(path, sizeof path, "does-not-exist.txt");
    assert_int_equal(core_read_file(path, &buf, &n, err, sizeof err), -1);
    assert_null(buf);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "does-not-exist.txt"));
    assert_non_null(strstr(err, "No such file"));

    /* A file larger than the first guess, and a /proc file whose size stat reports as 0. */
    tmp_path(path, sizeof path, "big.txt");
    FILE *fp = fopen(path, "wb");
    for (int i = 0; i < 100000; i++)
        fputc('a' + i % 26, fp);
    fclose(fp);
    char *got = slurp(path, &n);
    assert_int_equal(n, 100000);
    assert_int_equal(got[99999], 'a' + 99999 % 26);
    assert_int_equal(got[100000], '\0');
    free(got);
    got = slurp("/proc/self/status", &n);
    assert_true(n > 0);
    assert_non_null(strstr(got, "Name:"));
    free(got);
}

static void test_mmap(void **state) {
    (void)state;
    char path[512], err[512];
    tmp_path(path, sizeof path, "tokens.bin");
    uint16_t data[5000];
    for (int i = 0; i < 5000; i++)
        data[i] = (uint16_t)(i * 7);
    assert_int_equal(core_atomic_write(path, data, sizeof data, err, sizeof err), 0);

    core_mmap m;
    assert_int_equal(core_mmap_open(&m, path, err, sizeof err), 0);
    assert_int_equal(m.size, sizeof data);
    assert_memory_equal(m.ptr, data, sizeof data);
    core_mmap_close(&m);
    assert_null(m.ptr);
    core_mmap_close(&m); /* twice is harmless */

    tmp_path(path, sizeof path, "empty.bin");
    write_text(path, "");
    assert_int_equal(core_mmap_open(&m, path, err, sizeof err), 0);
    assert_null(m.ptr);
    assert_int_equal(m.size, 0);
    core_mmap_close(&m);

    tmp_path(path, sizeof path, "missing.bin");
    assert_int_equal(core_mmap_open(&m, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing.bin"));
    assert_int_equal(core_mmap_open(&m, tmp_root, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
}

static void test_path_join(void **state) {
    (void)state;
    char out[64];
    assert_int_equal(core_path_join(out, sizeof out, "outputs", "run"), 0);
    assert_string_equal(out, "outputs/run");
    assert_int_equal(core_path_join(out, sizeof out, "outputs/", "run"), 0);
    assert_string_equal(out, "outputs/run");
    assert_int_equal(core_path_join(out, sizeof out, "outputs///", "run"), 0);
    assert_string_equal(out, "outputs/run");
    assert_int_equal(core_path_join(out, sizeof out, "/", "etc"), 0);
    assert_string_equal(out, "/etc");
    assert_int_equal(core_path_join(out, sizeof out, "", "run"), 0);
    assert_string_equal(out, "run");
    assert_int_equal(core_path_join(out, sizeof out, "outputs", ""), 0);
    assert_string_equal(out, "outputs");
    assert_int_equal(core_path_join(out, sizeof out, "outputs", "/abs"), 0);
    assert_string_equal(out, "/abs");
    char small[8];
    assert_int_equal(core_path_join(small, sizeof small, "outputs", "run"), -1);
    assert_string_equal(small, "");
}

/* ---------------------------------------------------------------- run folders */

static void test_run_dir(void **state) {
    (void)state;
    /* Local time decides the folder names; pin the zone so the expected names are fixed. */
    setenv("TZ", "UTC", 1);
    tzset();
    const time_t t = 1700000000; /* 2023-11-14 22:13:20 UTC */
    char base[512], out[1024], expect[1024], err[512];
    tmp_path(base, sizeof base, "outputs/nested");

    assert_int_equal(core_run_dir(out, sizeof out, base, "bert-c5", "pretrain", t, err, sizeof err),
                     0);
    snprintf(expect, sizeof expect, "%s/bert-c5/pretrain/2023-11-14/22-13-20", base);
    assert_string_equal(out, expect);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* Same second again: a suffixed sibling, never the same folder. */
    for (int k = 1; k <= 2; k++) {
        assert_int_equal(
            core_run_dir(out, sizeof out, base, "bert-c5", "pretrain", t, err, sizeof err), 0);
        snprintf(expect, sizeof expect, "%s/bert-c5/pretrain/2023-11-14/22-13-20-%d", base, k);
        assert_string_equal(out, expect);
        assert_int_equal(stat(out, &st), 0);
    }
    /* Another job of the same run name gets its own tree. */
    assert_int_equal(
        core_run_dir(out, sizeof out, base, "bert-c5", "eval", t + 61, err, sizeof err), 0);
    snprintf(expect, sizeof expect, "%s/bert-c5/eval/2023-11-14/22-14-21", base);
    assert_string_equal(out, expect);

    assert_int_equal(core_run_dir(out, sizeof out, base, "", "pretrain", t, err, sizeof err), -1);
    assert_non_null(strstr(err, "run name"));
    assert_int_equal(core_run_dir(out, sizeof out, base, "..", "pretrain", t, err, sizeof err), -1);
    assert_int_equal(core_run_dir(out, sizeof out, base, "a/b", "pretrain", t, err, sizeof err),
                     -1);
    assert_int_equal(core_run_dir(out, sizeof out, base, "x", "", t, err, sizeof err), -1);
    assert_non_null(strstr(err, "job name"));

    /* Too small an output buffer is an error and leaves no stray folder behind. */
    char tiny[16];
    assert_int_equal(core_run_dir(tiny, sizeof tiny, base, "tiny", "pretrain", t, err, sizeof err),
                     -1);
    snprintf(expect, sizeof expect, "%s/tiny/pretrain/2023-11-14/22-13-20", base);
    assert_int_equal(access(expect, F_OK), -1);

    /* A base folder that cannot be created. */
    char file[600];
    tmp_path(file, sizeof file, "plainfile");
    write_text(file, "x");
    assert_int_equal(core_run_dir(out, sizeof out, file, "n", "pretrain", t, err, sizeof err), -1);
}

/* ---------------------------------------------------------------- clocks */

static void test_timer(void **state) {
    (void)state;
    double a = core_now();
    double b = core_now();
    assert_true(b >= a);
    assert_true(a > 0);

    setenv("TZ", "UTC", 1);
    tzset();
    char s[32];
    assert_string_equal(core_wall_time_string(s, sizeof s, 1700000000), "2023-11-14 22:13:20");
    assert_string_equal(core_local_time_format(s, sizeof s, 0, "%Y/%m/%d"), "1970/01/01");
    char tiny[4];
    assert_string_equal(core_wall_time_string(tiny, sizeof tiny, 1700000000), "");

    assert_string_equal(core_duration_string(s, sizeof s, 42.04), "42.0s");
    assert_string_equal(core_duration_string(s, sizeof s, 185), "3m05s");
    assert_string_equal(core_duration_string(s, sizeof s, 7620), "2h07m");
    assert_string_equal(core_duration_string(s, sizeof s, 97200), "1d03h");
    assert_string_equal(core_duration_string(s, sizeof s, -1), "?");
    assert_string_equal(core_duration_string(s, sizeof s, NAN), "?");
    assert_string_equal(core_duration_string(s, sizeof s, INFINITY), "?");
}

/* ---------------------------------------------------------------- logging */

/* "[YYYY-MM-DD HH:MM:SS] " */
static int has_stamp(const char *line) {
    const char *shape = "[dddd-dd-dd dd:dd:dd] ";
    for (int i = 0; shape[i]; i++) {
        if (shape[i] == 'd' ? (line[i] < '0' || line[i] > '9') : line[i] != shape[i]) return 0;
    }
    return 1;
}

static void test_log_lines_and_ranks(void **state) {
    (void)state;
    char logp[512], outp[512], errp[512];
    tmp_path(logp, sizeof logp, "run.log");
    tmp_path(outp, sizeof outp, "stdout.txt");
    tmp_path(errp, sizeof errp, "stderr.txt");
    unlink(logp);

    assert_int_equal(core_log_open_file(logp), 0);
    int so = capture_begin(STDOUT_FILENO, outp);
    int se = capture_begin(STDERR_FILENO, errp);
    core_log_init(0);
    core_log_info("step %d loss %.2f", 10, 7.25);
    core_log_warn("low %s", "memory");
    core_log_init(2);
    core_log_info("rank 2 info is not shown");
    core_log_error("rank %d failed", 2);
    core_log_init(0);
    capture_end(STDERR_FILENO, se);
    capture_end(STDOUT_FILENO, so);
    core_log_close();

    char *file = slurp(logp, NULL);
    char *out = slurp(outp, NULL);
    char *err = slurp(errp, NULL);
    assert_int_equal(count_char(file, '\n'), 3);
    assert_null(strstr(file, "not shown"));
    assert_null(strstr(out, "not shown"));

    /* The log file holds exactly the terminal's lines: info from stdout, the rest from stderr. */
    char *l1 = file, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    assert_true(has_stamp(l1) && has_stamp(l2) && has_stamp(l3));
    assert_memory_equal(l1 + 22, "step 10 loss 7.25\n", 18);
    assert_memory_equal(l2 + 22, "warning: low memory\n", 20);
    assert_memory_equal(l3 + 22, "[rank 2] error: rank 2 failed\n", 30);
    assert_int_equal(strlen(out), (size_t)(l2 - l1));
    assert_memory_equal(out, l1, strlen(out));
    assert_string_equal(err, l2);

    /* Reopening appends: a resumed run keeps one log. */
    assert_int_equal(core_log_open_file(logp), 0);
    so = capture_begin(STDOUT_FILENO, outp);
    core_log_info("resumed");
    capture_end(STDOUT_FILENO, so);
    core_log_close();
    free(file);
    file = slurp(logp, NULL);
    assert_int_equal(count_char(file, '\n'), 4);
    assert_non_null(strstr(file, "] resumed\n"));

    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/run.log", tmp_root);
    assert_int_equal(core_log_open_file(bad), -1);
    assert_int_equal(errno, ENOENT);
    free(file);
    free(out);
    free(err);
}

static void test_log_truncates_long_lines(void **state) {
    (void)state;
    char logp[512], outp[512];
    tmp_path(logp, sizeof logp, "long.log");
    tmp_path(outp, sizeof outp, "long_stdout.txt");
    unlink(logp);
    static char big[10000];
    memset(big, 'x', sizeof big - 1);
    assert_int_equal(core_log_open_file(logp), 0);
    int so = capture_begin(STDOUT_FILENO, outp);
    core_log_info("%s", big);
    capture_end(STDOUT_FILENO, so);
    core_log_close();
    size_t n;
    char *file = slurp(logp, &n);
    assert_true(n < 4096);
    assert_int_equal(count_char(file, '\n'), 1);
    assert_memory_equal(file + n - 4, "...\n", 4);
    free(file);
}

static void *log_thread(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 200; i++)
        core_log_info("thread %d line %03d end", id, i);
    return NULL;
}

static void test_log_threads(void **state) {
    (void)state;
    char logp[512], outp[512];
    tmp_path(logp, sizeof logp, "threads.log");
    tmp_path(outp, sizeof outp, "threads_stdout.txt");
    unlink(logp);
    assert_int_equal(core_log_open_file(logp), 0);
    int so = capture_begin(STDOUT_FILENO, outp);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, log_thread, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    capture_end(STDOUT_FILENO, so);
    core_log_close();

    /* Every line whole: a stamp, one message, in each of the two outputs. */
    const char *paths[2] = {logp, outp};
    for (int p = 0; p < 2; p++) {
        char *text = slurp(paths[p], NULL);
        int lines = 0, seen[4] = {0};
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            int id, i;
            char tail[8];
            assert_true(has_stamp(line));
            assert_int_equal(sscanf(line + 22, "thread %d line %d %7s", &id, &i, tail), 3);
            assert_string_equal(tail, "end");
            assert_true(id >= 0 && id < 4);
            assert_int_equal(i, seen[id]); /* each thread's lines in its own order */
            seen[id]++;
            lines++;
        }
        assert_int_equal(lines, 800);
        free(text);
    }
}

/* ---------------------------------------------------------------- progress */

static char *progress_run(const char *name, uint64_t total, const uint64_t *updates, int n) {
    char path[512];
    tmp_path(path, sizeof path, name);
    int so = capture_begin(STDOUT_FILENO, path);
    core_progress p;
    core_progress_init(&p, "packing", total);
    for (int i = 0; i < n; i++)
        core_progress_update(&p, updates[i]);
    core_progress_finish(&p);
    core_progress_update(&p, total + 5); /* after finish: ignored */
    core_progress_finish(&p);
    capture_end(STDOUT_FILENO, so);
    return slurp(path, NULL);
}

static void test_progress_not_a_tty(void **state) {
    (void)state;
    uint64_t steps[1001];
    for (int i = 0; i <= 1000; i++)
        steps[i] = (uint64_t)i;
    char *text = progress_run("progress1.txt", 1000, steps, 1001);
    /* One line per 10% up to 90%, then the finish line; no carriage returns or escapes. */
    assert_null(strchr(text, '\r'));
    assert_null(strchr(text, '\033'));
    assert_int_equal(count_char(text, '\n'), 10);
    char *line = text;
    for (int k = 1; k <= 9; k++) {
        char expect[64];
        snprintf(expect, sizeof expect, "packing: %d.0%% %d/1000 (", 10 * k, 100 * k);
        assert_memory_equal(line, expect, strlen(expect));
        assert_non_null(strstr(line, "ETA "));
        line = strchr(line, '\n') + 1;
    }
    assert_memory_equal(line, "packing: done, 1000 in ", 23);
    assert_int_equal(*(strchr(line, '\n') + 1), '\0');
    free(text);

    /* Jumps print only the latest mark crossed; an early finish shows done/total. */
    const uint64_t jumps[] = {0, 550, 560, 990};
    text = progress_run("progress2.txt", 1000, jumps, 4);
    assert_int_equal(count_char(text, '\n'), 3);
    assert_memory_equal(text, "packing: 55.0% 550/1000", 23);
    line = strchr(text, '\n') + 1;
    assert_memory_equal(line, "packing: 99.0% 990/1000", 23);
    line = strchr(line, '\n') + 1;
    assert_memory_equal(line, "packing: done, 990/1000 in ", 27);
    free(text);

    /* Unknown total: no percentages, the count in the finish line. */
    uint64_t many[5000];
    for (int i = 0; i < 5000; i++)
        many[i] = (uint64_t)i + 1;
    text = progress_run("progress3.txt", 0, many, 5000);
    assert_null(strchr(text, '%'));
    assert_null(strchr(text, '\r'));
    assert_non_null(strstr(text, "packing: done, 5000 in "));
    free(text);

    /* Other ranks print nothing. */
    core_log_init(1);
    text = progress_run("progress4.txt", 1000, steps, 1001);
    core_log_init(0);
    assert_string_equal(text, "");
    free(text);
}

static void test_progress_tty(void **state) {
    (void)state;
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        if (master >= 0) close(master);
        skip();
    }
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    assert_true(slave >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(slave, STDOUT_FILENO);

    core_progress p;
    core_progress_init(&p, "shuffle", 200);
    assert_true(p.tty);
    core_progress_update(&p, 200); /* completion always redraws */
    core_progress_finish(&p);

    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(slave);

    char text[4096];
    size_t n = 0;
    struct pollfd pfd = {.fd = master, .events = POLLIN};
    while (n < sizeof text - 1 && poll(&pfd, 1, 500) > 0) {
        ssize_t k = read(master, text + n, sizeof text - 1 - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    close(master);
    text[n] = '\0';
    /* A redrawn line: carriage return, a full bar, the percentage, the clear-to-end escape,
     * then the finish line over it. */
    assert_non_null(strstr(text, "\rshuffle [####################] 100.0% 200/200"));
    assert_non_null(strstr(text, "\033[K"));
    assert_non_null(strstr(text, "\rshuffle: done, 200 in "));
}

/* ---------------------------------------------------------------- fatal checks */

typedef void (*death_fn)(const char *arg);

/* Run fn in a child with stdout and stderr captured; returns the exit status and the output. */
static int run_death(death_fn fn, const char *arg, char *msg, size_t msglen) {
    char path[512];
    tmp_path(path, sizeof path, "death.txt");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        fn(arg);
        _exit(99); /* fn should not return */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    char *text = slurp(path, NULL);
    snprintf(msg, msglen, "%s", text);
    free(text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void die_fopen(const char *path) {
    FILE *fp = xfopen(path, "wb");
    (void)fp;
}

static void die_fopen_read(const char *path) {
    FILE *fp = xfopen(path, "rb");
    (void)fp;
}

static void die_check(const char *arg) {
    int value = 7;
    (void)arg;
    CORE_CHECK(value == 8, "value was %d", value);
}

static void hook(void) {
    fputs("hook ran\n", stderr);
}

static void die_with_hook(const char *arg) {
    core_set_die_hook(hook);
    core_die("giving up on %s", arg);
}

static void die_short_read(const char *path) {
    FILE *fp = xfopen(path, "rb");
    char buf[100];
    xfread(buf, 1, sizeof buf, fp);
}

static void die_seek(const char *path) {
    FILE *fp = xfopen(path, "rb");
    xfseek(fp, -10, SEEK_SET);
}

/* ASan reports huge allocations itself instead of returning NULL, so skip that case there. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#ifndef TEST_ASAN
static void die_oom(const char *arg) {
    (void)arg;
    void *p = xmalloc(SIZE_MAX / 2);
    (void)p;
}
#endif

static void test_check_wrappers_die(void **state) {
    (void)state;
    char msg[4096], path[512];

    tmp_path(path, sizeof path, "no/such/folder/out.bin");
    assert_int_equal(run_death(die_fopen, path, msg, sizeof msg), 1);
    assert_true(has_stamp(msg));
    assert_non_null(strstr(msg, "error: "));
    assert_non_null(strstr(msg, "test_core.c:"));
    assert_non_null(strstr(msg, "no/such/folder/out.bin"));
    assert_non_null(strstr(msg, "mode \"wb\""));
    assert_non_null(strstr(msg, "No such file or directory"));
    assert_non_null(strstr(msg, "does the folder exist"));

    assert_int_equal(run_death(die_fopen_read, path, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "does the file exist"));

    assert_int_equal(run_death(die_check, NULL, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "test_core.c:"));
    assert_non_null(strstr(msg, "check failed: value == 8: value was 7"));

    assert_int_equal(run_death(die_with_hook, "the run", msg, sizeof msg), 1);
    char *at = strstr(msg, "giving up on the run");
    assert_non_null(at);
    assert_non_null(strstr(at, "hook ran")); /* after the message */

    tmp_path(path, sizeof path, "short.bin");
    write_text(path, "only 17 bytes...");
    assert_int_equal(run_death(die_short_read, path, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "unexpected end of file"));
    assert_non_null(strstr(msg, "short.bin")); /* named via /proc/self/fd */
    assert_non_null(strstr(msg, "got 16 of 100"));

    assert_int_equal(run_death(die_seek, path, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "seek to offset -10"));
    assert_non_null(strstr(msg, "Invalid argument"));

#ifndef TEST_ASAN
    assert_int_equal(run_death(die_oom, NULL, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "out of memory allocating"));
#endif
}

static void test_check_wrappers_succeed(void **state) {
    (void)state;
    char *p = xmalloc(0);
    assert_non_null(p);
    free(p);
    int *z = xcalloc(100, sizeof *z);
    for (int i = 0; i < 100; i++)
        assert_int_equal(z[i], 0);
    z = xrealloc(z, 1000 * sizeof *z);
    z[999] = 5;
    free(z);
    char *s = xstrdup("hello");
    assert_string_equal(s, "hello");
    free(s);

    char path[512];
    tmp_path(path, sizeof path, "roundtrip.bin");
    FILE *fp = xfopen(path, "wb");
    const uint32_t v[3] = {1, 2, 3};
    xfwrite(v, sizeof v[0], 3, fp);
    xfclose(fp);
    fp = xfopen(path, "rb");
    uint32_t w = 0;
    xfseek(fp, 2 * sizeof w, SEEK_SET);
    xfread(&w, sizeof w, 1, fp);
    assert_int_equal(w, 3);
    xfread(&w, sizeof w, 0, fp); /* reading nothing at EOF is fine */
    xfclose(fp);
}

/* ---------------------------------------------------------------- setup */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/cram-test-core-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_kat),
        cmocka_unit_test(test_rng_counter_layout),
        cmocka_unit_test(test_rng_reproducible_and_save_restore),
        cmocka_unit_test(test_rng_tuples_independent),
        cmocka_unit_test(test_rng_uniform_moments),
        cmocka_unit_test(test_rng_normal_moments),
        cmocka_unit_test(test_rng_below),
        cmocka_unit_test(test_hash_known_values),
        cmocka_unit_test(test_hash_incremental_and_sensitive),
        cmocka_unit_test(test_atomic_write_and_read),
        cmocka_unit_test(test_atomic_stream_commit_abort),
        cmocka_unit_test(test_mkdir_p),
        cmocka_unit_test(test_read_file_errors),
        cmocka_unit_test(test_mmap),
        cmocka_unit_test(test_path_join),
        cmocka_unit_test(test_run_dir),
        cmocka_unit_test(test_timer),
        cmocka_unit_test(test_log_lines_and_ranks),
        cmocka_unit_test(test_log_truncates_long_lines),
        cmocka_unit_test(test_log_threads),
        cmocka_unit_test(test_progress_not_a_tty),
        cmocka_unit_test(test_progress_tty),
        cmocka_unit_test(test_check_wrappers_die),
        cmocka_unit_test(test_check_wrappers_succeed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
