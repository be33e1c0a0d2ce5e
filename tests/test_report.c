/* Unit tests for the metric files a run writes besides metrics.jsonl: TensorBoard event files
 * (core/tboard.h) read back here record by record, with both CRCs and every protobuf field
 * decoded; and the loss-curve PNG (core/plot.h), whose chunks are checked here and which is
 * decoded with libpng when it is installed (loaded at run time, so the build does not need it).
 * Everything goes into a fresh mkdtemp folder, kept when CRAM_TEST_KEEP is set (for
 * scripts/check_tensorboard.py and for looking at the images). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"
#include "core/plot.h"
#include "core/tboard.h"

#include <dirent.h>
#include <dlfcn.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<png.h>)
#include <png.h>
#define HAVE_PNG_H 1
#endif
#endif

static char tmp_root[256];

static const char *tmp_path(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", tmp_root, name);
    return out;
}

__attribute__((noinline)) static uint8_t *slurp(const char *path, size_t *n) {
    char *buf = NULL;
    char err[256];
    if (core_read_file(path, &buf, n, err, sizeof err) != 0) fail_msg("reading %s: %s", path, err);
    return (uint8_t *)buf;
}

/* the event files in dir, sorted by name; returns how many (at most max) */
static int event_files(const char *dir, char names[][CORE_PATH_MAX], int max) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "events.out.tfevents.", 20) == 0 && n < max)
            snprintf(names[n++], CORE_PATH_MAX, "%s/%s", dir, e->d_name);
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[CORE_PATH_MAX];
            memcpy(t, names[j], sizeof t);
            memcpy(names[j], names[j - 1], sizeof t);
            memcpy(names[j - 1], t, sizeof t);
        }
    return n;
}

/* ---------------------------------------------------------------- CRC-32C */

static void test_crc32c_known_answers(void **state) {
    (void)state;
    assert_int_equal(tboard_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(tboard_crc32c("", 0), 0u);
    uint8_t b[32];
    memset(b, 0, sizeof b); /* RFC 3720 B.4 */
    assert_int_equal(tboard_crc32c(b, sizeof b), 0x8A9136AAu);
    memset(b, 0xFF, sizeof b);
    assert_int_equal(tboard_crc32c(b, sizeof b), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    assert_int_equal(tboard_crc32c(b, sizeof b), 0x46DD794Eu);
    /* ((c >> 15) | (c << 17)) + 0xa282ead8 on 32 bits */
    assert_int_equal(tboard_mask_crc(0xE3069283u), 0xC78AB0E5u);
    assert_int_equal(tboard_mask_crc(0), 0xA282EAD8u);
}

/* ---------------------------------------------------------------- event files */

/* A minimal protobuf reader for the three messages. */
typedef struct pb {
    const uint8_t *p, *end;
} pb;

static uint64_t pb_varint(pb *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        assert_true(r->p < r->end);
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return v;
    }
    fail_msg("varint longer than 10 bytes");
    return 0;
}

static uint64_t pb_le(pb *r, int n) {
    assert_true(r->end - r->p >= n);
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static pb pb_sub(pb *r) {
    uint64_t n = pb_varint(r);
    assert_true(n <= (uint64_t)(r->end - r->p));
    pb s = {r->p, r->p + n};
    r->p += n;
    return s;
}

typedef struct value {
    char tag[256];
    float v;
} value;

typedef struct event {
    double wall_time;
    bool has_step, has_version, has_summary;
    int64_t step;
    char version[32];
    int nvalues;
    value values[8];
} event;

static void decode_value(pb r, value *v) {
    bool tag = false, simple = false;
    while (r.p < r.end) {
        uint64_t key = pb_varint(&r);
        if (key == (1 << 3 | 2)) {
            pb s = pb_sub(&r);
            size_t n = (size_t)(s.end - s.p);
            assert_true(n < sizeof v->tag);
            memcpy(v->tag, s.p, n);
            v->tag[n] = 0;
            tag = true;
        } else if (key == (2 << 3 | 5)) {
            uint32_t u = (uint32_t)pb_le(&r, 4);
            memcpy(&v->v, &u, 4);
            simple = true;
        } else {
            fail_msg("unexpected Value field key %llu", (unsigned long long)key);
        }
    }
    assert_true(tag && simple);
}

static void decode_event(pb r, event *e) {
    memset(e, 0, sizeof *e);
    while (r.p < r.end) {
        uint64_t key = pb_varint(&r);
        if (key == (1 << 3 | 1)) {
            uint64_t u = pb_le(&r, 8);
            memcpy(&e->wall_time, &u, 8);
        } else if (key == (2 << 3 | 0)) {
            e->step = (int64_t)pb_varint(&r);
            e->has_step = true;
        } else if (key == (3 << 3 | 2)) {
            pb s = pb_sub(&r);
            size_t n = (size_t)(s.end - s.p);
            assert_true(n < sizeof e->version);
            memcpy(e->version, s.p, n);
            e->has_version = true;
        } else if (key == (5 << 3 | 2)) {
            pb s = pb_sub(&r);
            e->has_summary = true;
            while (s.p < s.end) {
                assert_int_equal(pb_varint(&s), 1 << 3 | 2); /* Summary.value */
                assert_true(e->nvalues < 8);
                decode_value(pb_sub(&s), &e->values[e->nvalues++]);
            }
        } else {
            fail_msg("unexpected Event field key %llu", (unsigned long long)key);
        }
    }
}

/* Read every record of an event file, checking the framing and both CRCs. */
static int read_events(const char *path, event *ev, int max) {
    size_t n;
    uint8_t *buf = slurp(path, &n);
    pb r = {buf, buf + n};
    int k = 0;
    while (r.p < r.end) {
        assert_true(r.end - r.p >= 12);
        uint8_t lenb[8];
        memcpy(lenb, r.p, 8);
        uint64_t len = pb_le(&r, 8);
        uint32_t lcrc = (uint32_t)pb_le(&r, 4);
        assert_int_equal(lcrc, tboard_mask_crc(tboard_crc32c(lenb, 8)));
        assert_true(len + 4 <= (uint64_t)(r.end - r.p));
        pb data = {r.p, r.p + len};
        r.p += len;
        uint32_t dcrc = (uint32_t)pb_le(&r, 4);
        assert_int_equal(dcrc, tboard_mask_crc(tboard_crc32c(data.p, (size_t)len)));
        assert_true(k < max);
        decode_event(data, &ev[k++]);
    }
    free(buf);
    return k;
}

static void test_tboard_roundtrip(void **state) {
    (void)state;
    char dir[512], err[256], names[4][CORE_PATH_MAX];
    tmp_path(dir, sizeof dir, "tb/run1"); /* created by tboard_open */
    double t0 = (double)time(NULL);
    tboard *tb = tboard_open(dir, err, sizeof err);
    assert_non_null(tb);
    assert_true(tboard_ok(tb));
    assert_non_null(strstr(tboard_path(tb), "/events.out.tfevents."));
    tboard_scalar(tb, "train/loss", 10, 7.5);
    tboard_scalar(tb, "train/lr", 10, 1e-3);
    tboard_scalar(tb, "train/loss", 20, 6.25);
    tboard_scalar(tb, "odd tag:\xc3\xa9!", 20, -2.0); /* kept as odd_tag____ */
    tboard_scalar(tb, "", 20, 1.0);                   /* dropped */
    tboard_scalar(tb, NULL, 20, 1.0);                 /* dropped */
    tboard_flush(tb);
    tboard_scalar(tb, "val/loss", 20, 5.5); /* same step after a flush: a new event */
    tboard_scalar(tb, "val/accuracy", 30, NAN);
    tboard_scalar(tb, "big/step", (int64_t)1 << 40, 1e30);
    tboard_scalar(tb, "neg/step", -3, 3.0);
    tboard_close(tb);

    assert_int_equal(event_files(dir, names, 4), 1);
    event ev[16];
    int n = read_events(names[0], ev, 16);
    assert_int_equal(n, 7);
    /* the file version record */
    assert_true(ev[0].has_version && !ev[0].has_step && !ev[0].has_summary);
    assert_string_equal(ev[0].version, "brain.Event:2");
    assert_true(fabs(ev[0].wall_time - t0) < 60);
    static const int64_t steps[] = {10, 20, 20, 30, (int64_t)1 << 40, -3};
    static const int nvals[] = {2, 2, 1, 1, 1, 1};
    for (int i = 1; i < n; i++) {
        assert_true(ev[i].has_step && ev[i].has_summary && !ev[i].has_version);
        assert_true(ev[i].step == steps[i - 1]);
        assert_int_equal(ev[i].nvalues, nvals[i - 1]);
        assert_true(ev[i].wall_time >= ev[0].wall_time && ev[i].wall_time - t0 < 60);
    }
    assert_string_equal(ev[1].values[0].tag, "train/loss");
    assert_true(ev[1].values[0].v == 7.5f);
    assert_string_equal(ev[1].values[1].tag, "train/lr");
    assert_true(ev[1].values[1].v == (float)1e-3);
    assert_string_equal(ev[2].values[0].tag, "train/loss");
    assert_true(ev[2].values[0].v == 6.25f);
    assert_string_equal(ev[2].values[1].tag, "odd_tag____");
    assert_true(ev[2].values[1].v == -2.0f);
    assert_string_equal(ev[3].values[0].tag, "val/loss");
    assert_true(ev[3].values[0].v == 5.5f);
    assert_string_equal(ev[4].values[0].tag, "val/accuracy");
    assert_true(isnan(ev[4].values[0].v));
    assert_true(ev[5].values[0].v == 1e30f);
    assert_string_equal(ev[6].values[0].tag, "neg/step");

    /* a second writer in the same folder (and second) gets its own file */
    tboard *a = tboard_open(dir, err, sizeof err), *b = tboard_open(dir, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_not_equal(tboard_path(a), tboard_path(b));
    tboard_scalar(a, "x", 1, 1.0);
    tboard_close(a);
    tboard_close(b);
    assert_int_equal(event_files(dir, names, 4), 3);
    for (int i = 0; i < 3; i++)
        assert_true(read_events(names[i], ev, 16) >= 1);
}

/* Many scalars: the buffer is written on its own when it grows, and long tags are cut. */
static void test_tboard_many(void **state) {
    (void)state;
    char dir[512], err[256], names[2][CORE_PATH_MAX];
    tmp_path(dir, sizeof dir, "tb/many");
    tboard *tb = tboard_open(dir, err, sizeof err);
    assert_non_null(tb);
    char longtag[400];
    memset(longtag, 'a', sizeof longtag - 1);
    longtag[sizeof longtag - 1] = 0;
    for (int s = 0; s < 20000; s++) {
        tboard_scalar(tb, "train/loss", s, 10.0 - s * 1e-4);
        tboard_scalar(tb, longtag, s, s);
        if (s % 1000 == 999) tboard_flush(tb);
    }
    tboard_close(tb);
    assert_int_equal(event_files(dir, names, 2), 1);
    event *ev = malloc(20001 * sizeof *ev);
    assert_int_equal(read_events(names[0], ev, 20001), 20001);
    for (int s = 0; s < 20000; s += 997) {
        assert_true(ev[s + 1].step == s);
        assert_true(ev[s + 1].values[0].v == (float)(10.0 - s * 1e-4));
        assert_int_equal(strlen(ev[s + 1].values[1].tag), 255);
    }
    free(ev);
}

/* NULL writers do nothing; a folder that cannot be made is an error; a write error is reported
 * once and the caller goes on. */
static void test_tboard_errors(void **state) {
    (void)state;
    tboard_scalar(NULL, "x", 1, 1.0);
    tboard_flush(NULL);
    tboard_close(NULL);
    assert_false(tboard_ok(NULL));
    assert_string_equal(tboard_path(NULL), "");

    char file[512], dir[600], err[256] = "";
    tmp_path(file, sizeof file, "plainfile");
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(dir, sizeof dir, "%s/sub", file);
    assert_null(tboard_open(dir, err, sizeof err));
    assert_true(err[0] != 0);

    /* the file size limit makes write() fail with EFBIG once the header is out */
    char logp[512];
    tmp_path(dir, sizeof dir, "tb/full");
    tmp_path(logp, sizeof logp, "full.stderr");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(logp, "w", stderr)) _exit(10);
        signal(SIGXFSZ, SIG_IGN);
        tboard *tb = tboard_open(dir, err, sizeof err);
        if (!tb) _exit(11);
        struct rlimit rl = {4096, 4096};
        if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(12);
        for (int s = 0; s < 2000; s++) {
            tboard_scalar(tb, "train/loss", s, 1.0);
            tboard_scalar(tb, "train/lr", s, 1.0);
            if (s % 10 == 0) tboard_flush(tb);
        }
        bool ok = tboard_ok(tb);
        tboard_close(tb);
        _exit(ok ? 13 : 0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    size_t n;
    char *log = (char *)slurp(logp, &n);
    int warnings = 0;
    for (const char *p = log; (p = strstr(p, "TensorBoard events")) != NULL; p++)
        warnings++;
    assert_int_equal(warnings, 1);
    assert_non_null(strstr(log, "no more events"));
    free(log);
    /* what stays in the file is whole records: a partly written one is cut off */
    char names[2][CORE_PATH_MAX];
    assert_int_equal(event_files(dir, names, 2), 1);
    event *ev = malloc(128 * sizeof *ev);
    int n_ev = read_events(names[0], ev, 128);
    assert_true(n_ev > 10);
    assert_string_equal(ev[0].version, "brain.Event:2");
    for (int i = 1; i < n_ev; i++)
        assert_true(ev[i].step == i - 1 && ev[i].nvalues == 2);
    free(ev);
}

/* ---------------------------------------------------------------- PNG */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t crc32_ref(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

/* Signature, chunk order and CRCs, IHDR; returns the file size. */
static size_t check_png_structure(const char *path) {
    size_t n;
    uint8_t *b = slurp(path, &n);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    assert_true(n > 8 + 25);
    assert_memory_equal(b, sig, 8);
    size_t at = 8;
    int k = 0;
    bool iend = false;
    while (at < n) {
        assert_true(n - at >= 12);
        uint32_t len = be32(b + at);
        assert_true(len <= n - at - 12);
        const uint8_t *type = b + at + 4;
        assert_int_equal(be32(b + at + 8 + len), crc32_ref(type, 4 + (size_t)len));
        if (k == 0) {
            assert_memory_equal(type, "IHDR", 4);
            assert_int_equal(len, 13);
            assert_int_equal(be32(type + 4), PLOT_WIDTH);
            assert_int_equal(be32(type + 8), PLOT_HEIGHT);
            assert_int_equal(type[12], 8); /* bit depth */
            assert_int_equal(type[13], 3); /* palette */
        }
        if (memcmp(type, "IEND", 4) == 0) {
            iend = true;
            assert_int_equal(at + 12 + len, n);
        }
        at += 12 + (size_t)len;
        k++;
    }
    assert_true(iend && k >= 4);
    free(b);
    return n;
}

/* RGB pixels decoded by libpng (NULL when libpng cannot be loaded: the check is skipped). */
static uint8_t *decode_png(const char *path, int *w, int *h) {
#ifdef HAVE_PNG_H
    typedef int (*begin_fn)(png_imagep, const char *);
    typedef int (*finish_fn)(png_imagep, png_const_colorp, void *, png_int_32, void *);
    typedef void (*free_fn)(png_imagep);
    void *lib = dlopen("libpng16.so.16", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return NULL;
    begin_fn begin = (begin_fn)dlsym(lib, "png_image_begin_read_from_file");
    finish_fn finish = (finish_fn)dlsym(lib, "png_image_finish_read");
    free_fn pfree = (free_fn)dlsym(lib, "png_image_free");
    assert_true(begin && finish && pfree);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!begin(&img, path)) fail_msg("libpng: %s: %s", path, img.message);
    img.format = PNG_FORMAT_RGB;
    *w = (int)img.width, *h = (int)img.height;
    uint8_t *rgb = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(rgb);
    if (!finish(&img, NULL, rgb, 0, NULL)) fail_msg("libpng: %s: %s", path, img.message);
    pfree(&img);
    dlclose(lib);
    return rgb;
#else
    (void)path, (void)w, (void)h;
    return NULL;
#endif
}

static bool is_rgb(const uint8_t *px, uint32_t rgb) {
    return px[0] == (rgb >> 16 & 0xFF) && px[1] == (rgb >> 8 & 0xFF) && px[2] == (rgb & 0xFF);
}

static bool libpng_note_printed;

static uint8_t *decode_or_note(const char *path) {
    int w = 0, h = 0;
    uint8_t *rgb = decode_png(path, &w, &h);
    if (!rgb) {
        if (!libpng_note_printed)
            print_message("libpng16 (libpng-dev) not found: images are not decoded\n");
        libpng_note_printed = true;
        return NULL;
    }
    assert_int_equal(w, PLOT_WIDTH);
    assert_int_equal(h, PLOT_HEIGHT);
    return rgb;
}

static void test_plot_loss_curve(void **state) {
    (void)state;
    enum { N = 300 };
    double x[N], y[N], vx[3] = {1000, 2000, 3000}, vy[3] = {8.1, 5.2, 4.4};
    for (int i = 0; i < N; i++) {
        x[i] = 10.0 * (i + 1);
        y[i] = 2.0 + 8.0 * exp(-x[i] / 700.0);
    }
    char path[512], err[256];
    tmp_path(path, sizeof path, "loss.png");
    plot_series s[2] = {{x, y, N, "train loss", false}, {vx, vy, 3, "validation", true}};
    assert_int_equal(plot_png_series(path, "Pretraining loss: tiny-run", "step", "MLM loss", s, 2,
                                     err, sizeof err),
                     0);
    size_t size = check_png_structure(path);
    assert_true(size < 60000); /* flat colours compress */

    uint8_t *rgb = decode_or_note(path);
    if (!rgb) return;
    static const uint32_t colors[] = PLOT_SERIES_COLORS;
    long bg = 0, dark = 0;
    for (int i = 0; i < PLOT_WIDTH * PLOT_HEIGHT; i++) {
        bg += is_rgb(rgb + 3 * i, PLOT_BACKGROUND);
        dark += rgb[3 * i] == 0 && rgb[3 * i + 1] == 0 && rgb[3 * i + 2] == 0;
    }
    assert_true(bg > PLOT_WIDTH * PLOT_HEIGHT / 2);
    assert_true(dark > 2000); /* frame, ticks and text */
    /* the falling curve: in most columns of the middle, a first blue pixel that moves down as
     * the column moves right */
    int cols = 0, rising = 0, prev = -1, orange = 0;
    for (int cx = 200; cx < 700; cx += 5) {
        int first = -1;
        for (int cy = 0; cy < PLOT_HEIGHT && first < 0; cy++)
            if (is_rgb(rgb + 3 * (cy * PLOT_WIDTH + cx), colors[0])) first = cy;
        if (first < 0) continue;
        cols++;
        if (prev >= 0 && first < prev - 1) rising++;
        prev = first;
    }
    assert_true(cols > 80);
    assert_true(rising < 3);
    for (int i = 0; i < PLOT_WIDTH * PLOT_HEIGHT; i++)
        orange += is_rgb(rgb + 3 * i, colors[1]);
    assert_true(orange >= 3 * 49); /* three 7x7 markers, one more in the legend */
    free(rgb);
}

/* Unusual data still gives a valid image; bad arguments are errors. */
static void test_plot_edge_cases(void **state) {
    (void)state;
    char path[512], err[256];
    double one = 5, nan = NAN, xs[4] = {0, 1, 2, 3};
    double big[4] = {1e12, 3e12, -2e12, 5e11}, tiny[4] = {1e-7, 3e-7, 2e-7, 2.5e-7};
    double flat[4] = {3, 3, 3, 3}, mixed[4] = {1, NAN, INFINITY, -1};
    struct {
        const char *name;
        const double *x, *y;
        int n;
    } cases[] = {
        {"empty.png", xs, flat, 0},  {"one.png", &one, &one, 1}, {"nan.png", &nan, &nan, 1},
        {"big.png", xs, big, 4},     {"tiny.png", xs, tiny, 4},  {"flat.png", xs, flat, 4},
        {"mixed.png", xs, mixed, 4}, {"bigx.png", big, xs, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tmp_path(path, sizeof path, cases[i].name);
        assert_int_equal(plot_png(path, "edge \x01\xff case", cases[i].x, cases[i].y, cases[i].n,
                                  NULL, NULL, err, sizeof err),
                         0);
        check_png_structure(path);
        free(decode_or_note(path));
    }
    /* noise in four colours, lines and markers: many short runs and literals for the encoder */
    enum { N = 4000 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    core_rng rng;
    core_rng_init(&rng, 7, 0, 0, 0);
    for (int i = 0; i < N; i++)
        x[i] = i, y[i] = core_rng_uniform(&rng);
    plot_series s[4];
    for (int k = 0; k < 4; k++)
        s[k] = (plot_series){x + k * (N / 4), y + k * (N / 4), N / 4, "s", k % 2 == 1};
    tmp_path(path, sizeof path, "noise.png");
    assert_int_equal(plot_png_series(path, "noise", "i", "u", s, 4, err, sizeof err), 0);
    check_png_structure(path);
    free(decode_or_note(path));
    free(x), free(y);

    tmp_path(path, sizeof path, "no/such/folder/x.png");
    assert_int_equal(plot_png(path, "t", xs, flat, 4, NULL, NULL, err, sizeof err), -1);
    assert_true(err[0] != 0);
    tmp_path(path, sizeof path, "bad.png");
    assert_int_equal(plot_png(path, "t", NULL, flat, 4, NULL, NULL, err, sizeof err), -1);
    assert_int_equal(plot_png_series(path, "t", NULL, NULL, NULL, -1, err, sizeof err), -1);
    assert_int_equal(access(path, F_OK), -1);
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
    snprintf(tmp_root, sizeof tmp_root, "%s/cram-test-report-XXXXXX",
             base && *base ? base : "/tmp");
    return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    if (getenv("CRAM_TEST_KEEP")) {
        printf("test_report: files kept in %s\n", tmp_root);
        return 0;
    }
    return nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_answers), cmocka_unit_test(test_tboard_roundtrip),
        cmocka_unit_test(test_tboard_many),          cmocka_unit_test(test_tboard_errors),
        cmocka_unit_test(test_plot_loss_curve),      cmocka_unit_test(test_plot_edge_cases),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
