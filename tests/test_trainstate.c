/* Unit tests for src/train/trainstate: round trip of every field, atomic replacement, and
 * rejection of corrupt files (every flipped byte, every truncation, bad magic/version,
 * mismatched model) without touching the caller's buffers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/fileio.h"
#include "core/rng.h"
#include "train/trainstate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_root[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/cram_ts_XXXXXX");
    return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

#define N 1000

/* A plain write (no fsync): the corruption loops write the file a thousand times. */
static void write_plain(const char *path, const void *buf, size_t n) {
    unlink(path); /* truncating in place makes ext4 flush on close (auto_da_alloc) */
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void fill(ts_header *h, float *p, float *m, float *v) {
    memset(h, 0, sizeof *h);
    h->step = 123456789012ULL;
    h->opt_t = 4321;
    h->elapsed_s = 3600.0 * 23.5 + 1.0 / 3;
    h->seed = 0xdeadbeefcafeULL;
    h->model_hash = 0x0123456789abcdefULL;
    h->npos = 3;
    h->pos[0] = 7;
    h->pos[1] = UINT64_MAX;
    h->pos[2] = 42;
    core_rng r;
    core_rng_init(&r, 1, 2, 3, 4);
    (void)core_rng_u32(&r);
    h->rng_bytes = sizeof r;
    memcpy(h->rng, &r, sizeof r);
    h->n = N;
    for (int i = 0; i < N; i++) {
        p[i] = sinf((float)i);
        m[i] = 1e-3f * i;
        v[i] = 1e-6f * i;
    }
}

static void test_round_trip(void **state) {
    (void)state;
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/state.bin", tmp_root);
    static float p[N], m[N], v[N], p2[N], m2[N], v2[N];
    ts_header h, g;
    fill(&h, p, m, v);
    assert_int_equal(ts_write(path, &h, p, m, v, err, sizeof err), TS_OK);
    assert_int_equal(ts_read(path, &g, p2, m2, v2, N, h.model_hash, err, sizeof err), TS_OK);
    assert_true(g.step == h.step && g.opt_t == h.opt_t && g.seed == h.seed);
    assert_memory_equal(&g.elapsed_s, &h.elapsed_s, sizeof(double));
    assert_int_equal(g.npos, 3);
    assert_memory_equal(g.pos, h.pos, 3 * sizeof(uint64_t));
    assert_int_equal(g.rng_bytes, h.rng_bytes);
    assert_memory_equal(g.rng, h.rng, h.rng_bytes);
    assert_memory_equal(p2, p, sizeof p);
    assert_memory_equal(m2, m, sizeof m);
    assert_memory_equal(v2, v, sizeof v);
    /* the restored RNG continues the stream */
    core_rng a, b;
    memcpy(&a, h.rng, sizeof a);
    memcpy(&b, g.rng, sizeof b);
    assert_int_equal(core_rng_u32(&a), core_rng_u32(&b));
    /* header only */
    assert_int_equal(ts_read(path, &g, NULL, NULL, NULL, 0, 0, err, sizeof err), TS_OK);
    assert_int_equal(g.n, N);
    /* replacing keeps exactly one file, with the new content */
    h.step++;
    assert_int_equal(ts_write(path, &h, p, m, v, err, sizeof err), TS_OK);
    assert_int_equal(ts_read(path, &g, p2, m2, v2, N, 0, err, sizeof err), TS_OK);
    assert_true(g.step == h.step);
    /* an empty model and odd RNG sizes are fine */
    h.n = 0;
    h.rng_bytes = 5;
    h.npos = 0;
    assert_int_equal(ts_write(path, &h, NULL, NULL, NULL, err, sizeof err), TS_OK);
    assert_int_equal(ts_read(path, &g, p2, m2, v2, 0, 0, err, sizeof err), TS_OK);
    assert_int_equal(g.rng_bytes, 5);
}

static void test_mismatch_and_errors(void **state) {
    (void)state;
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/state2.bin", tmp_root);
    static float p[N], m[N], v[N], q[N], qm[N], qv[N];
    ts_header h, g;
    fill(&h, p, m, v);
    assert_int_equal(ts_write(path, &h, p, m, v, err, sizeof err), TS_OK);
    for (int i = 0; i < N; i++)
        q[i] = qm[i] = qv[i] = -7.0f;
    assert_int_equal(ts_read(path, &g, q, qm, qv, N - 1, 0, err, sizeof err), TS_EMISMATCH);
    assert_non_null(strstr(err, "1000 parameters"));
    assert_int_equal(ts_read(path, &g, q, qm, qv, N, 99, err, sizeof err), TS_EMISMATCH);
    assert_non_null(strstr(err, "layout"));
    for (int i = 0; i < N; i++)
        assert_true(q[i] == -7.0f && qm[i] == -7.0f && qv[i] == -7.0f);
    /* argument errors */
    h.npos = TS_MAX_POS + 1;
    assert_int_equal(ts_write(path, &h, p, m, v, err, sizeof err), TS_EINVAL);
    h.npos = 1;
    assert_int_equal(ts_write(path, &h, NULL, m, v, err, sizeof err), TS_EINVAL);
    /* missing file, unwritable folder */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope/state.bin", tmp_root);
    assert_int_equal(ts_read(missing, &g, q, qm, qv, N, 0, err, sizeof err), TS_EIO);
    assert_non_null(strstr(err, missing));
    assert_int_equal(ts_write(missing, &h, p, m, v, err, sizeof err), TS_EIO);
    /* not a state file */
    char other[600];
    snprintf(other, sizeof other, "%s/other.bin", tmp_root);
    assert_int_equal(core_atomic_write(other, "hello world, not a state file", 29, err, sizeof err),
                     0);
    assert_int_equal(ts_read(other, &g, q, qm, qv, N, 0, err, sizeof err), TS_EFORMAT);
    assert_non_null(strstr(err, "magic"));
    assert_int_equal(core_atomic_write(other, "", 0, err, sizeof err), 0);
    assert_int_equal(ts_read(other, &g, q, qm, qv, N, 0, err, sizeof err), TS_EFORMAT);
}

/* Every single flipped byte and every truncation is rejected as a format error, and the
 * caller's buffers stay untouched. */
static void test_corruption(void **state) {
    (void)state;
    char path[512], bad[600], err[512];
    snprintf(path, sizeof path, "%s/state3.bin", tmp_root);
    snprintf(bad, sizeof bad, "%s/bad.bin", tmp_root);
    enum { n = 16 };
    float p[n], m[n], v[n], q[n], qm[n], qv[n];
    ts_header h, g;
    static float bp[N], bm[N], bv[N];
    fill(&h, bp, bm, bv);
    h.n = n;
    memcpy(p, bp, sizeof p), memcpy(m, bm, sizeof m), memcpy(v, bv, sizeof v);
    assert_int_equal(ts_write(path, &h, p, m, v, err, sizeof err), TS_OK);
    char *buf;
    size_t len;
    assert_int_equal(core_read_file(path, &buf, &len, err, sizeof err), 0);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (char)(1 << bit);
            write_plain(bad, buf, len);
            buf[i] ^= (char)(1 << bit);
            for (int k = 0; k < n; k++)
                q[k] = qm[k] = qv[k] = -7.0f;
            ts_status rc = ts_read(bad, &g, q, qm, qv, n, 0, err, sizeof err);
            if (rc != TS_EFORMAT) fail_msg("flip of byte %zu bit %d: status %d", i, bit, rc);
            for (int k = 0; k < n; k++)
                assert_true(q[k] == -7.0f && qm[k] == -7.0f && qv[k] == -7.0f);
        }
    }
    for (size_t cut = 0; cut < len; cut++) {
        write_plain(bad, buf, cut);
        ts_status rc = ts_read(bad, &g, q, qm, qv, n, 0, err, sizeof err);
        if (rc != TS_EFORMAT) fail_msg("truncation to %zu bytes: status %d", cut, rc);
    }
    /* a newer version is refused with a clear message (the version is checked before the
     * checksum, so the message names it) */
    buf[8] = 3;
    assert_int_equal(core_atomic_write(bad, buf, len, err, sizeof err), 0);
    assert_int_equal(ts_read(bad, &g, q, qm, qv, n, 0, err, sizeof err), TS_EFORMAT);
    assert_non_null(strstr(err, "version 3"));
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_mismatch_and_errors),
        cmocka_unit_test(test_corruption),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
