/* Unit tests for src/config: YAML scalars and documents, float formatting, writing and reading
 * back, canonical form and hash, typed getters, and composition, both with the real configs/
 * tree (CRAM_CONFIG_PATH) and with the small fixture tree in tests/fixtures/config/ that holds
 * the awkward cases (cycles, missing targets, type clashes between files, _self_ placement,
 * multi-select and optional defaults, malformed files). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fixture_dir[1024];

// ---- helpers -----------------------------------------------------------------------------

#define assert_contains(hay, needle) assert_contains_at(hay, needle, __FILE__, __LINE__)
static void assert_contains_at(const char *hay, const char *needle, const char *file, int line) {
    if (!hay || !strstr(hay, needle)) {
        fprintf(stderr, "%s:%d: expected to find \"%s\" in \"%s\"\n", file, line, needle,
                hay ? hay : "(null)");
        fail();
    }
}

#define assert_not_contains(hay, needle) assert_not_contains_at(hay, needle, __FILE__, __LINE__)
static void assert_not_contains_at(const char *hay, const char *needle, const char *file,
                                   int line) {
    if (hay && strstr(hay, needle)) {
        fprintf(stderr, "%s:%d: did not expect \"%s\" in \"%s\"\n", file, line, needle, hay);
        fail();
    }
}

static cfg_node *parse(const char *text) {
    cfg_error err = {0};
    cfg_node *n = cfg_parse_yaml(text, strlen(text), "t.yaml", &err);
    if (!n) fail_msg("parse failed: %s", err.msg);
    return n;
}

// Parsing must fail; returns the message (static buffer).
static const char *parse_fail(const char *text, size_t len) {
    static cfg_error err;
    memset(&err, 0, sizeof err);
    cfg_node *n = cfg_parse_yaml(text, len, "t.yaml", &err);
    if (n) {
        char *y = cfg_canonical_json(n);
        fprintf(stderr, "expected a parse error, got %s\n", y);
        free(y);
        cfg_free(n);
        fail();
    }
    assert_int_equal(err.code, 2);
    assert_true(strlen(err.msg) > 0);
    return err.msg;
}

static void check_float(const cfg_node *n, double want) {
    assert_non_null(n);
    assert_int_equal(n->type, CFG_FLOAT);
    assert_true(n->f == want);
}

static void check_int(const cfg_node *n, int64_t want) {
    assert_non_null(n);
    assert_int_equal(n->type, CFG_INT);
    assert_true(n->i == want);
}

static void check_str(const cfg_node *n, const char *want) {
    assert_non_null(n);
    assert_int_equal(n->type, CFG_STR);
    assert_string_equal(n->s, want);
}

static void check_bool(const cfg_node *n, bool want) {
    assert_non_null(n);
    assert_int_equal(n->type, CFG_BOOL);
    assert_int_equal(n->b, want);
}

// cfg_scalar_from_text, checked and freed.
static void scalar_float(const char *t, double want) {
    cfg_node *n = cfg_scalar_from_text(t);
    if (n->type != CFG_FLOAT) fail_msg("'%s' read as %s, not a float", t, cfg_type_name(n->type));
    check_float(n, want);
    cfg_free(n);
}

static void scalar_int(const char *t, int64_t want) {
    cfg_node *n = cfg_scalar_from_text(t);
    if (n->type != CFG_INT) fail_msg("'%s' read as %s, not an int", t, cfg_type_name(n->type));
    check_int(n, want);
    cfg_free(n);
}

static void scalar_str(const char *t) {
    cfg_node *n = cfg_scalar_from_text(t);
    if (n->type != CFG_STR) fail_msg("'%s' read as %s, not a string", t, cfg_type_name(n->type));
    check_str(n, t);
    cfg_free(n);
}

static void scalar_bool(const char *t, bool want) {
    cfg_node *n = cfg_scalar_from_text(t);
    if (n->type != CFG_BOOL) fail_msg("'%s' read as %s, not a bool", t, cfg_type_name(n->type));
    check_bool(n, want);
    cfg_free(n);
}

static void scalar_null(const char *t) {
    cfg_node *n = cfg_scalar_from_text(t);
    if (n->type != CFG_NULL) fail_msg("'%s' read as %s, not null", t, cfg_type_name(n->type));
    cfg_free(n);
}

static void fmt_is(double v, const char *want) {
    char buf[64];
    cfg_format_float(v, buf, sizeof buf);
    if (strcmp(buf, want) != 0) fail_msg("format(%.17g) = '%s', want '%s'", v, buf, want);
}

// Composition with the real tree; fails the test on error.
static cfg_node *compose_real(const char *primary, int n, char *const *ov) {
    cfg_search s;
    cfg_search_init(&s);
    assert_true(cfg_search_default(&s) > 0);
    cfg_error err = {0};
    cfg_node *root = cfg_compose(&s, primary, n, ov, &err);
    cfg_search_free(&s);
    if (!root) fail_msg("compose %s failed: %s", primary, err.msg);
    return root;
}

// Composition with the real tree that must fail; returns the message.
static const char *compose_real_fail(const char *primary, int n, char *const *ov) {
    static cfg_error err;
    memset(&err, 0, sizeof err);
    cfg_search s;
    cfg_search_init(&s);
    assert_true(cfg_search_default(&s) > 0);
    cfg_node *root = cfg_compose(&s, primary, n, ov, &err);
    cfg_search_free(&s);
    if (root) {
        cfg_free(root);
        fail_msg("compose %s with %d overrides should have failed", primary, n);
    }
    assert_int_equal(err.code, 2);
    return err.msg;
}

static cfg_node *compose_fix(const char *primary, int n, char *const *ov, cfg_error *err) {
    cfg_search s;
    cfg_search_init(&s);
    assert_int_equal(cfg_search_add(&s, fixture_dir), 0);
    cfg_node *root = cfg_compose(&s, primary, n, ov, err);
    cfg_search_free(&s);
    return root;
}

static cfg_node *compose_fix_ok(const char *primary, int n, char *const *ov) {
    cfg_error err = {0};
    cfg_node *root = compose_fix(primary, n, ov, &err);
    if (!root) fail_msg("compose %s failed: %s", primary, err.msg);
    return root;
}

static const char *compose_fix_fail(const char *primary, int n, char *const *ov) {
    static cfg_error err;
    memset(&err, 0, sizeof err);
    cfg_node *root = compose_fix(primary, n, ov, &err);
    if (root) {
        char *j = cfg_canonical_json(root);
        fprintf(stderr, "compose %s should have failed, got %s\n", primary, j);
        free(j);
        cfg_free(root);
        fail();
    }
    assert_int_equal(err.code, 2);
    return err.msg;
}

#define OV(...) (char *[]){__VA_ARGS__}, (int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *))
#define REAL(primary, ...) real_compose_v(primary, OV(__VA_ARGS__))
#define REAL_FAIL(primary, ...) real_fail_v(primary, OV(__VA_ARGS__))
#define FIX(primary, ...) fix_v(primary, OV(__VA_ARGS__))
#define FIX_FAIL(primary, ...) fix_fail_v(primary, OV(__VA_ARGS__))
static cfg_node *real_compose_v(const char *p, char **ov, int n) {
    return compose_real(p, n, ov);
}
static const char *real_fail_v(const char *p, char **ov, int n) {
    return compose_real_fail(p, n, ov);
}
static cfg_node *fix_v(const char *p, char **ov, int n) {
    return compose_fix_ok(p, n, ov);
}
static const char *fix_fail_v(const char *p, char **ov, int n) {
    return compose_fix_fail(p, n, ov);
}

static double num_at(const cfg_node *root, const char *path) {
    double v = 0;
    cfg_error err = {0};
    if (cfg_get_num(root, path, &v, &err)) fail_msg("%s", err.msg);
    return v;
}

static const char *str_at(const cfg_node *root, const char *path) {
    const char *v = NULL;
    cfg_error err = {0};
    if (cfg_get_str(root, path, &v, &err)) fail_msg("%s", err.msg);
    return v;
}

static char *xstrdup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static int setup(void **state) {
    (void)state;
    char cwd[900];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(fixture_dir, sizeof fixture_dir, "%s/tests/fixtures/config", cwd);
    if (access(fixture_dir, R_OK) != 0) {
        fprintf(stderr, "run from the repository root (no %s)\n", fixture_dir);
        return -1;
    }
    if (!getenv("CRAM_CONFIG_PATH")) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg, "%s/configs", cwd);
        setenv("CRAM_CONFIG_PATH", cfg, 1);
    }
    return 0;
}

// ---- scalars -----------------------------------------------------------------------------

static void test_scalar_numbers(void **state) {
    (void)state;
    scalar_float("1e-3", 0.001);
    scalar_float("8e6", 8e6);
    scalar_float("1E5", 1e5);
    scalar_float("1.0e+5", 1e5);
    scalar_float("1.", 1.0);
    scalar_float(".5", 0.5);
    scalar_float("-1.5", -1.5);
    scalar_float("+2.25", 2.25);
    scalar_float("1_000.5", 1000.5);
    scalar_float("0.1", 0.1);
    scalar_float("4e-5", 4e-5);
    scalar_float("1e10", 1e10);
    scalar_float(".inf", INFINITY);
    scalar_float("+.inf", INFINITY);
    scalar_float("-.Inf", -INFINITY);
    scalar_float("09.5", 9.5);
    cfg_node *nan = cfg_scalar_from_text(".nan");
    assert_int_equal(nan->type, CFG_FLOAT);
    assert_true(isnan(nan->f));
    cfg_free(nan);

    scalar_int("0", 0);
    scalar_int("-2", -2);
    scalar_int("+7", 7);
    scalar_int("900_000", 900000);
    scalar_int("30_000", 30000);
    scalar_int("8192", 8192);
    scalar_int("9223372036854775807", INT64_MAX);
    scalar_int("-9223372036854775808", INT64_MIN);
    // YAML 1.1 (PyYAML, the reference's loader): hex, binary and a leading-0 octal
    scalar_int("0x10", 16);
    scalar_int("-0x1f", -31);
    scalar_int("0b101", 5);
    scalar_int("010", 8);
    scalar_int("0_17", 15);

    // not numbers
    scalar_str("09"); // a leading 0 means octal, and 9 is no octal digit
    scalar_str("0x");
    scalar_str("0xg1");
    scalar_str("0b2");
    scalar_str("1e");
    scalar_str("e5");
    scalar_str("1e-");
    scalar_str("1.2.3");
    scalar_str("--1");
    scalar_str("1e-3x");
    scalar_str("1 2");
    scalar_str("inf");
    scalar_str("nan");
    scalar_str(".");
    scalar_str("-");
    scalar_str("_1");
    scalar_str("abc");
    scalar_str("1.5e3.2");
    // out of range: never a wrapped integer
    cfg_node *big = cfg_scalar_from_text("9223372036854775808");
    assert_true(big->type != CFG_INT);
    cfg_free(big);
    char longnum[200];
    memset(longnum, '1', sizeof longnum - 1);
    longnum[sizeof longnum - 1] = 0;
    cfg_node *huge = cfg_scalar_from_text(longnum);
    assert_true(huge->type != CFG_INT);
    cfg_free(huge);
}

static void test_scalar_bool_null(void **state) {
    (void)state;
    static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes", "on", "ON"};
    static const char *const f[] = {"false", "False", "FALSE", "no", "No", "off", "OFF"};
    for (size_t k = 0; k < sizeof t / sizeof *t; k++)
        scalar_bool(t[k], true);
    for (size_t k = 0; k < sizeof f / sizeof *f; k++)
        scalar_bool(f[k], false);
    scalar_null("null");
    scalar_null("Null");
    scalar_null("NULL");
    scalar_null("~");
    scalar_null("");
    scalar_str("tRUE");
    scalar_str("nul");
    scalar_str("None");
    scalar_str("y");
    scalar_str("nulls");
}

static void test_yaml_scalars_in_document(void **state) {
    (void)state;
    const char *doc = "lr: 1e-3\n"
                      "big: 8e6\n"
                      "steps: 900_000\n"
                      "one: 1.\n"
                      "half: .5\n"
                      "neg: -2\n"
                      "hex: 0x10\n"
                      "t1: True\n"
                      "f1: False\n"
                      "t2: true\n"
                      "f2: false\n"
                      "n1: null\n"
                      "n2: ~\n"
                      "empty:\n"
                      "q1: '1e-3'\n"
                      "q2: \"true\"\n"
                      "q3: ''\n"
                      "q4: 'null'\n"
                      "inf: .inf\n"
                      "word: hello world\n"
                      "interp: ${a.b}\n"
                      "folded: >-\n  two\n  lines\n";
    cfg_node *n = parse(doc);
    assert_int_equal(n->type, CFG_MAP);
    check_float(cfg_get(n, "lr"), 0.001);
    check_float(cfg_get(n, "big"), 8000000.0);
    check_int(cfg_get(n, "steps"), 900000);
    check_float(cfg_get(n, "one"), 1.0);
    check_float(cfg_get(n, "half"), 0.5);
    check_int(cfg_get(n, "neg"), -2);
    check_int(cfg_get(n, "hex"), 16);
    check_bool(cfg_get(n, "t1"), true);
    check_bool(cfg_get(n, "f1"), false);
    check_bool(cfg_get(n, "t2"), true);
    check_bool(cfg_get(n, "f2"), false);
    assert_int_equal(cfg_get(n, "n1")->type, CFG_NULL);
    assert_int_equal(cfg_get(n, "n2")->type, CFG_NULL);
    assert_int_equal(cfg_get(n, "empty")->type, CFG_NULL);
    check_str(cfg_get(n, "q1"), "1e-3");
    check_str(cfg_get(n, "q2"), "true");
    check_str(cfg_get(n, "q3"), "");
    check_str(cfg_get(n, "q4"), "null");
    check_float(cfg_get(n, "inf"), INFINITY);
    check_str(cfg_get(n, "word"), "hello world");
    check_str(cfg_get(n, "interp"), "${a.b}");
    check_str(cfg_get(n, "folded"), "two lines");
    // keys keep file order; each value remembers where its key was written
    assert_int_equal(n->n, 22);
    assert_string_equal(n->keys[0], "lr");
    assert_string_equal(n->keys[21], "folded");
    assert_string_equal(cfg_get(n, "steps")->origin, "t.yaml:3");
    cfg_free(n);
}

static void test_yaml_lists_and_maps(void **state) {
    (void)state;
    cfg_node *n = parse("a:\n"
                        "  b:\n"
                        "    c: 1\n"
                        "    d: [x, 2, 3.5, null, [y]]\n"
                        "  e:\n"
                        "    - k: v\n"
                        "    - - 1\n"
                        "      - 2\n"
                        "  f: {}\n"
                        "  g: []\n"
                        "  h: {p: 1, q: {r: s}}\n");
    check_int(cfg_get(n, "a.b.c"), 1);
    cfg_node *d = cfg_get(n, "a.b.d");
    assert_int_equal(d->type, CFG_LIST);
    assert_int_equal(d->n, 5);
    check_str(d->items[0], "x");
    check_int(d->items[1], 2);
    check_float(d->items[2], 3.5);
    assert_int_equal(d->items[3]->type, CFG_NULL);
    assert_int_equal(d->items[4]->type, CFG_LIST);
    check_str(d->items[4]->items[0], "y");
    cfg_node *e = cfg_get(n, "a.e");
    assert_int_equal(e->type, CFG_LIST);
    assert_int_equal(e->n, 2);
    check_str(cfg_map_get(e->items[0], "k"), "v");
    assert_int_equal(e->items[1]->n, 2);
    assert_int_equal(cfg_get(n, "a.f")->type, CFG_MAP);
    assert_int_equal(cfg_get(n, "a.f")->n, 0);
    assert_int_equal(cfg_get(n, "a.g")->type, CFG_LIST);
    assert_int_equal(cfg_get(n, "a.g")->n, 0);
    check_str(cfg_get(n, "a.h.q.r"), "s");
    // lookups that are not paths
    assert_null(cfg_get(n, "a.b.d.x"));
    assert_null(cfg_get(n, "a..b"));
    assert_null(cfg_get(n, "a."));
    assert_null(cfg_get(n, ".a"));
    assert_null(cfg_get(n, "a.nope"));
    assert_null(cfg_get(n, "a.b.c.d"));
    cfg_free(n);

    // other roots: an empty document is an empty mapping, a scalar or a list is kept
    cfg_node *empty = parse("");
    assert_int_equal(empty->type, CFG_MAP);
    assert_int_equal(empty->n, 0);
    cfg_free(empty);
    cfg_node *comment = parse("# nothing\n");
    assert_int_equal(comment->type, CFG_MAP);
    cfg_free(comment);
    cfg_node *sc = parse("5\n");
    check_int(sc, 5);
    cfg_free(sc);
    cfg_node *ls = parse("- a\n- b\n");
    assert_int_equal(ls->type, CFG_LIST);
    assert_int_equal(ls->n, 2);
    cfg_free(ls);
    // anchors and aliases are expanded into copies
    cfg_node *al = parse("base: &b {x: 1, y: [2]}\ncopy: *b\n");
    check_int(cfg_get(al, "copy.x"), 1);
    assert_int_equal(cfg_get(al, "copy.y")->n, 1);
    assert_true(cfg_get(al, "copy") != cfg_get(al, "base"));
    cfg_free(al);
}

static void test_yaml_duplicate_and_bad_keys(void **state) {
    (void)state;
    const char *msg = parse_fail("a: 1\nb: 2\na: 3\n", 15);
    assert_contains(msg, "t.yaml:3:1:");
    assert_contains(msg, "'a' appears twice");
    msg = parse_fail("top:\n  x: 1\n  y: 2\n  x: 3\n", 25);
    assert_contains(msg, "t.yaml:4:3:");
    // same key, one quoted: the same key for YAML
    msg = parse_fail("a: 1\n'a': 2\n", 12);
    assert_contains(msg, "appears twice");
    msg = parse_fail("[1]: x\n", 7);
    assert_contains(msg, "t.yaml:1:1:");
    assert_contains(msg, "keys must be plain words");
    msg = parse_fail("'': 1\n", 6);
    assert_contains(msg, "empty key");
    msg = parse_fail("a: !custom 1\n", 13);
    assert_contains(msg, "t.yaml:1:4:");
    assert_contains(msg, "unsupported tag");
}

static void test_yaml_malformed_positions(void **state) {
    (void)state;
    // "1\n  b" is one plain scalar, then ':' on line 2, column 4 is not allowed
    const char *t1 = "a: 1\n  b: 2\n";
    const char *msg = parse_fail(t1, strlen(t1));
    assert_contains(msg, "t.yaml:2:4: malformed YAML");
    assert_contains(msg, "mapping values are not allowed");
    // a tab cannot start a token: line 3, column 1
    const char *t2 = "a:\n  b: 1\n\tc: 2\n";
    msg = parse_fail(t2, strlen(t2));
    assert_contains(msg, "t.yaml:3:1:");
    // an unclosed flow sequence: the problem is reported where the scanner gave up (line 3)
    const char *t3 = "a: 1\nb: [1, 2\nc: 3\n";
    msg = parse_fail(t3, strlen(t3));
    assert_contains(msg, "t.yaml:3:");
    assert_contains(msg, "malformed YAML");
    // unterminated quote: reported at the end of the input
    const char *t4 = "a: 'open\n";
    msg = parse_fail(t4, strlen(t4));
    assert_contains(msg, "t.yaml:2:1:");
    // two documents are not one config
    const char *t5 = "a: 1\n---\nb: 2\n";
    msg = parse_fail(t5, strlen(t5));
    assert_contains(msg, "t.yaml:2:1: a second YAML document");
    const char *t6 = "a: 1\n...\n---\n";
    msg = parse_fail(t6, strlen(t6));
    assert_contains(msg, "t.yaml:3:1: a second YAML document");
    // an explicit document start and end around one document are fine
    const char *t7 = "---\na: 1\n...\n";
    cfg_node *one = parse(t7);
    check_int(cfg_get(one, "a"), 1);
    cfg_free(one);
    // a file name with a path is kept whole in the message
    cfg_error err = {0};
    assert_null(cfg_parse_yaml(t1, strlen(t1), "dir/sub/file.yaml", &err));
    assert_contains(err.msg, "dir/sub/file.yaml:2:4:");
    // NULL error pointer is allowed
    assert_null(cfg_parse_yaml(t1, strlen(t1), "x", NULL));
}

static void test_yaml_nul_bytes(void **state) {
    (void)state;
    // a raw NUL in the input is a control character YAML does not allow
    static const char raw[] = "a: 1\nb: x\0y\n";
    const char *msg = parse_fail(raw, sizeof raw - 1);
    assert_contains(msg, "t.yaml:2:");
    // an escaped \0 decodes to a NUL inside the value: refused, not truncated
    static const char esc[] = "a: \"x\\0y\"\n";
    msg = parse_fail(esc, sizeof esc - 1);
    assert_contains(msg, "t.yaml:1:4: NUL byte");
    static const char esckey[] = "\"k\\0\": 1\n";
    msg = parse_fail(esckey, sizeof esckey - 1);
    assert_contains(msg, "NUL byte in a key");
    // the length given is respected: bytes after it are not read
    static const char cut[] = "a: 1\nzzz: [";
    cfg_error err = {0};
    cfg_node *n = cfg_parse_yaml(cut, 5, "t.yaml", &err);
    assert_non_null(n);
    assert_int_equal(n->n, 1);
    cfg_free(n);
    // invalid UTF-8 is an error, not a crash
    static const char bad8[] = "a: \xff\xfe\n";
    parse_fail(bad8, sizeof bad8 - 1);
}

static char *nested(int depth, const char *open, const char *leaf, const char *close) {
    size_t lo = strlen(open), lc = strlen(close), ll = strlen(leaf);
    char *buf = malloc((size_t)depth * (lo + lc) + ll + 1);
    size_t o = 0;
    for (int k = 0; k < depth; k++)
        memcpy(buf + o, open, lo), o += lo;
    memcpy(buf + o, leaf, ll), o += ll;
    for (int k = 0; k < depth; k++)
        memcpy(buf + o, close, lc), o += lc;
    buf[o] = 0;
    return buf;
}

static void test_yaml_deep_nesting(void **state) {
    (void)state;
    char *ok = nested(50, "[", "1", "]");
    cfg_node *n = parse(ok);
    assert_int_equal(n->type, CFG_LIST);
    cfg_free(n);
    free(ok);
    char *deep = nested(100, "[", "1", "]");
    assert_contains(parse_fail(deep, strlen(deep)), "nesting deeper than 64");
    free(deep);
    // 64 levels are allowed, 65 are not
    char *at = nested(64, "[", "1", "]");
    cfg_node *n64 = parse(at);
    cfg_free(n64);
    free(at);
    char *over = nested(65, "[", "1", "]");
    parse_fail(over, strlen(over));
    free(over);
    char *deepmap = nested(100, "{a: ", "1", "}");
    assert_contains(parse_fail(deepmap, strlen(deepmap)), "nesting deeper than 64");
    free(deepmap);
    // very deep: no stack overflow anywhere (libyaml or ours), and no minute-long scan
    char *very = nested(200000, "[", "", "]");
    assert_contains(parse_fail(very, strlen(very)), "t.yaml:1:65: nesting deeper than 64");
    free(very);
    char *veryblock = malloc(200001 * 2);
    size_t o = 0;
    for (int k = 0; k < 100000; k++)
        veryblock[o++] = '-', veryblock[o++] = ' ';
    veryblock[o] = 0;
    assert_contains(parse_fail(veryblock, o), "nesting deeper than 64");
    free(veryblock);
}

static void test_yaml_alias_bombs(void **state) {
    (void)state;
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                       "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    assert_contains(parse_fail(bomb, strlen(bomb)), "more than 200000 values");
    // an alias to the node that contains it: an infinitely deep tree
    const char *self = "a: &x [1, *x]\n";
    parse_fail(self, strlen(self));
    const char *selfmap = "a: &x {k: *x}\n";
    parse_fail(selfmap, strlen(selfmap));
    // an alias to an anchor that does not exist
    const char *unknown = "a: *nope\n";
    assert_contains(parse_fail(unknown, strlen(unknown)), "t.yaml:1:4:");
}

// ---- float formatting ----------------------------------------------------------------------

static void test_format_float(void **state) {
    (void)state;
    fmt_is(0.0001, "0.0001");
    fmt_is(1e-05, "1.0e-05");
    fmt_is(1.5e-05, "1.5e-05");
    fmt_is(8e6, "8000000.0");
    fmt_is(0.1, "0.1");
    fmt_is(1e16, "1.0e+16");
    fmt_is(1e15, "1000000000000000.0");
    fmt_is(2.5, "2.5");
    fmt_is(-0.0, "-0.0");
    fmt_is(0.0, "0.0");
    fmt_is(1.0, "1.0");
    fmt_is(-2.0, "-2.0");
    fmt_is(123456789.123, "123456789.123");
    fmt_is(1e10, "10000000000.0");
    fmt_is(4e-5, "4.0e-05");
    fmt_is(0.00012, "0.00012");
    fmt_is(1e-12, "1.0e-12");
    fmt_is(1.0 / 3.0, "0.3333333333333333");
    fmt_is(0.1 + 0.2, "0.30000000000000004");
    fmt_is(1.7976931348623157e308, "1.7976931348623157e+308");
    fmt_is(5e-324, "5.0e-324");
    fmt_is(-1.25e100, "-1.25e+100");
    fmt_is(INFINITY, ".inf");
    fmt_is(-INFINITY, "-.inf");
    fmt_is(NAN, ".nan");
    // a small buffer truncates instead of overflowing
    char small[4];
    cfg_format_float(123456.5, small, sizeof small);
    assert_int_equal(strlen(small), 3);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void roundtrip_one(double x) {
    char buf[64];
    cfg_format_float(x, buf, sizeof buf);
    cfg_node *n = cfg_scalar_from_text(buf);
    if (n->type != CFG_FLOAT || memcmp(&n->f, &x, sizeof x) != 0)
        fail_msg("%.17g formatted as '%s' reads back as %s %.17g", x, buf, cfg_type_name(n->type),
                 n->f);
    // and through a whole YAML document
    char doc[96];
    snprintf(doc, sizeof doc, "v: %s\n", buf);
    cfg_error err = {0};
    cfg_node *d = cfg_parse_yaml(doc, strlen(doc), "r", &err);
    assert_non_null(d);
    assert_true(memcmp(&cfg_map_get(d, "v")->f, &x, sizeof x) == 0);
    cfg_free(d);
    cfg_free(n);
}

static void test_format_float_roundtrip_random(void **state) {
    (void)state;
    for (int k = 0; k < 10000; k++) {
        uint64_t bits = next_u64();
        double x;
        memcpy(&x, &bits, sizeof x);
        if (isnan(x) || isinf(x)) continue;
        roundtrip_one(x);
    }
    // values of ordinary size, where the fixed/scientific switch happens
    for (int k = 0; k < 10000; k++) {
        double m = (double)(next_u64() >> 11) / 9007199254740992.0;
        int e = (int)(next_u64() % 44) - 22;
        double x = m * pow(10.0, e) * ((k & 1) ? -1 : 1);
        roundtrip_one(x);
    }
    // short decimals stay short
    for (int k = 1; k < 2000; k++) {
        char want[32], got[64];
        snprintf(want, sizeof want, "%d.%d", k / 100, k % 100);
        double x = strtod(want, NULL);
        cfg_format_float(x, got, sizeof got);
        assert_true(strtod(got, NULL) == x);
        assert_true(strlen(got) <= strlen(want) + 1);
    }
}

// ---- writing YAML and reading it back --------------------------------------------------------

static void assert_same_tree(const cfg_node *a, const cfg_node *b) {
    char *ja = cfg_canonical_json(a), *jb = cfg_canonical_json(b);
    if (strcmp(ja, jb) != 0) {
        fprintf(stderr, "trees differ:\n%s\n%s\n", ja, jb);
        fail();
    }
    free(ja);
    free(jb);
}

static void yaml_roundtrip(const cfg_node *root) {
    char *text = cfg_to_yaml(root);
    assert_non_null(text);
    cfg_error err = {0};
    cfg_node *back = cfg_parse_yaml(text, strlen(text), "written.yaml", &err);
    if (!back) fail_msg("written YAML does not parse: %s\n%s", err.msg, text);
    assert_same_tree(root, back);
    // the same text through cfg_write_yaml on a FILE
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(cfg_write_yaml(root, f), 0);
    long len = ftell(f);
    assert_int_equal((size_t)len, strlen(text));
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = 0;
    assert_string_equal(buf, text);
    free(buf);
    fclose(f);
    cfg_free(back);
    free(text);
}

static void test_write_yaml_roundtrip_composed(void **state) {
    (void)state;
    cfg_node *root = REAL("pretrain", "arch=crammed-bert", "train=bert-o4", "train.optim.lr=1e-4");
    char *text = cfg_to_yaml(root);
    assert_contains(text, "\n    lr: 0.0001\n");
    assert_contains(text, "\n  norm_eps: 1.0e-12\n");
    assert_contains(text, "\n  max_raw_chunk_size: 8000000.0\n");
    assert_contains(text, "\nseed: null\n");
    assert_contains(text, "\n  - LayerNorm.bias\n");
    free(text);
    yaml_roundtrip(root);
    cfg_free(root);
    cfg_node *ev = REAL("eval", "eval/tasks=[rte,cola]");
    yaml_roundtrip(ev);
    cfg_free(ev);
}

static void test_write_yaml_roundtrip_awkward(void **state) {
    (void)state;
    cfg_node *m = cfg_new(CFG_MAP);
    static const char *const strs[] = {
        "1e-3",      "true", "False",   "",       "null",        "~",       " lead",
        "trail ",    "a: b", "#x",      "- item", "multi\nline", "${x}",    "caf\xc3\xa9",
        "0x10",      "010",  "09",      "[1, 2]", "{a: 1}",      "'q'",     "\"dq\"",
        "tab\there", "yes",  "Off",     ".inf",   ".5",          "900_000", "@at",
        "`tick",     "%pct", "&anchor", "*alias", "!tag",        "|",       ">",
        "?",         ":",    "-",       "---",    "...",         "a #b",    "\\",
        "\x01"};
    for (size_t k = 0; k < sizeof strs / sizeof *strs; k++) {
        char key[16];
        snprintf(key, sizeof key, "s%zu", k);
        cfg_map_set(m, key, cfg_new_str(strs[k]));
    }
    // keys that look like other types, or need quoting
    cfg_map_set(m, "1", cfg_scalar_from_text("1"));
    cfg_map_set(m, "true", cfg_new(CFG_NULL));
    cfg_map_set(m, "null", cfg_new_str("x"));
    cfg_map_set(m, "a key: with colon", cfg_new_str("v"));
    cfg_map_set(m, "-dash", cfg_new_str("v"));
    cfg_map_set(m, "floats", parse("[0.1, -0.0, 1.0e+16, 5.0e-324, .inf, -.inf, 8000000.0]"));
    cfg_map_set(m, "ints", parse("[0, -1, 9223372036854775807, -9223372036854775808]"));
    cfg_map_set(m, "empty_list", cfg_new(CFG_LIST));
    cfg_map_set(m, "empty_map", cfg_new(CFG_MAP));
    cfg_map_set(m, "nested", parse("{a: [[], {}, [{b: [1]}]], c: {d: {e: null}}}"));
    yaml_roundtrip(m);
    cfg_free(m);
    // roots other than a mapping
    cfg_node *l = parse("[1, a, {b: c}]");
    yaml_roundtrip(l);
    cfg_free(l);
    cfg_node *s = cfg_new_str("just text");
    yaml_roundtrip(s);
    cfg_free(s);
    cfg_node *e = cfg_new(CFG_MAP);
    yaml_roundtrip(e);
    cfg_free(e);
}

static void test_write_yaml_refuses_bad_text(void **state) {
    (void)state;
    // text that is not UTF-8 cannot be written as YAML: an error, never a crash or stale output
    cfg_node *m = cfg_new(CFG_MAP);
    cfg_map_set(m, "a", cfg_new_str("fine"));
    cfg_map_set(m, "b", cfg_new_str("bad \x86 byte"));
    assert_null(cfg_to_yaml(m));
    FILE *f = tmpfile();
    assert_int_equal(cfg_write_yaml(m, f), -1);
    fclose(f);
    cfg_free(m);
    cfg_node *s = cfg_new_str("\xff");
    assert_null(cfg_to_yaml(s));
    cfg_free(s);
    cfg_node *l = parse("[1, 2]");
    cfg_list_push(l, cfg_new_str("\xc3"));
    assert_null(cfg_to_yaml(l));
    cfg_free(l);
}

// ---- canonical form and hash -----------------------------------------------------------------

static void test_canonical_and_hash(void **state) {
    (void)state;
    cfg_node *a = parse("x: 1\ny: {b: [1, 2], a: 0.5}\nz: text\n");
    cfg_node *b = parse("z: text\ny:\n  a: 0.5\n  b:\n    - 1\n    - 2\nx: 1\n");
    cfg_node *c = parse("x: 1\ny: {b: [2, 1], a: 0.5}\nz: text\n"); // list order matters
    cfg_node *d = parse("x: 1\ny: {b: [1, 2], a: 0.25}\nz: text\n");
    cfg_node *e = parse("x: '1'\ny: {b: [1, 2], a: 0.5}\nz: text\n"); // type matters
    char *ja = cfg_canonical_json(a);
    assert_string_equal(ja, "{\"x\":1,\"y\":{\"a\":0.5,\"b\":[1,2]},\"z\":\"text\"}");
    free(ja);
    char ha[17], hb[17], hc[17], hd[17], he[17];
    cfg_hash_hex(a, ha);
    cfg_hash_hex(b, hb);
    cfg_hash_hex(c, hc);
    cfg_hash_hex(d, hd);
    cfg_hash_hex(e, he);
    assert_int_equal(strlen(ha), 16);
    for (int k = 0; k < 16; k++)
        assert_non_null(strchr("0123456789abcdef", ha[k]));
    assert_string_equal(ha, hb);
    assert_string_not_equal(ha, hc);
    assert_string_not_equal(ha, hd);
    assert_string_not_equal(ha, he);
    // strings are escaped as JSON
    cfg_node *s = cfg_new_str("q\"b\\n\n\x01");
    char *js = cfg_canonical_json(s);
    assert_string_equal(js, "\"q\\\"b\\\\n\\u000a\\u0001\"");
    free(js);
    cfg_free(s);
    // scalars of every kind
    cfg_node *all = parse("[null, true, false, -3, 1.0e-05, 2.0, '']");
    char *jall = cfg_canonical_json(all);
    assert_string_equal(jall, "[null,true,false,-3,1.0e-05,2.0,\"\"]");
    free(jall);
    cfg_free(all);
    cfg_free(a);
    cfg_free(b);
    cfg_free(c);
    cfg_free(d);
    cfg_free(e);
    // the composed config hashes the same whichever order the overrides come in
    cfg_node *r1 = REAL("pretrain", "budget=48", "train.optim.lr=1e-4", "arch=crammed-bert");
    cfg_node *r2 = REAL("pretrain", "arch=crammed-bert", "train.optim.lr=0.0001", "budget=48");
    cfg_node *r3 = REAL("pretrain", "arch=crammed-bert", "train.optim.lr=0.0002", "budget=48");
    char h1[17], h2[17], h3[17];
    cfg_hash_hex(r1, h1);
    cfg_hash_hex(r2, h2);
    cfg_hash_hex(r3, h3);
    assert_string_equal(h1, h2);
    assert_string_not_equal(h1, h3);
    cfg_free(r1);
    cfg_free(r2);
    cfg_free(r3);
}

// ---- values and typed getters ----------------------------------------------------------------

static void test_typed_getters(void **state) {
    (void)state;
    cfg_node *n = parse("a: {big: 8e6, half: 0.5, i: 12, s: text, nul: ~, b: True, neg: -3e3,\n"
                        "    huge: 1e300, l: [1]}\n");
    cfg_error err = {0};
    int64_t i = 0;
    assert_int_equal(cfg_get_int(n, "a.big", &i, &err), 0);
    assert_true(i == 8000000);
    assert_int_equal(cfg_get_int(n, "a.i", &i, &err), 0);
    assert_true(i == 12);
    assert_int_equal(cfg_get_int(n, "a.neg", &i, &err), 0);
    assert_true(i == -3000);
    assert_int_equal(cfg_get_int(n, "a.half", &i, &err), -1);
    assert_contains(err.msg, "a.half");
    assert_contains(err.msg, "whole number");
    assert_int_equal(cfg_get_int(n, "a.huge", &i, &err), -1);
    assert_int_equal(cfg_get_int(n, "a.s", &i, &err), -1);
    assert_contains(err.msg, "not a string");
    assert_int_equal(cfg_get_int(n, "a.missing", &i, &err), -1);
    assert_contains(err.msg, "missing config key a.missing");
    double d = 0;
    assert_int_equal(cfg_get_num(n, "a.i", &d, &err), 0);
    assert_true(d == 12.0);
    assert_int_equal(cfg_get_num(n, "a.half", &d, &err), 0);
    assert_true(d == 0.5);
    assert_int_equal(cfg_get_num(n, "a.b", &d, &err), -1);
    assert_contains(err.msg, "a.b must be a number, not a boolean");
    const char *s = NULL;
    assert_int_equal(cfg_get_str(n, "a.s", &s, &err), 0);
    assert_string_equal(s, "text");
    assert_int_equal(cfg_get_str(n, "a.nul", &s, &err), -1);
    assert_contains(err.msg, "a.nul must be a string");
    assert_int_equal(cfg_get_str(n, "a.i", &s, &err), -1);
    assert_contains(err.msg, "not an integer");
    bool b = false;
    assert_int_equal(cfg_get_bool(n, "a.b", &b, &err), 0);
    assert_true(b);
    assert_int_equal(cfg_get_bool(n, "a.s", &b, &err), -1);
    assert_int_equal(cfg_get_bool(n, "a.l", &b, &err), -1);
    assert_contains(err.msg, "not a list");
    cfg_free(n);
}

// The value-or-default getters: the value when the path holds the right type, def otherwise
// (missing key, missing parent, null, another type), on a nested path or on a sub-node.
static void test_or_getters(void **state) {
    (void)state;
    cfg_node *n = parse("a: {big: 8e6, half: 2.75, i: 12, s: text, nul: ~, b: False, neg: -3.9,\n"
                        "    huge: 1e300, nhuge: -1e300, l: [1], e: ''}\n"
                        "deep: {x: {y: {z: 7, t: yes, w: word}}}\n"
                        "top: 3\n");
    cfg_node *nan = cfg_new(CFG_FLOAT);
    nan->f = NAN;
    cfg_map_set(cfg_get(n, "a"), "nan", nan);
    // numbers: ints and floats, def for everything else
    assert_true(cfg_num_or(n, "a.i", -1) == 12.0);
    assert_true(cfg_num_or(n, "a.half", -1) == 2.75);
    assert_true(cfg_num_or(n, "a.big", -1) == 8e6);
    assert_true(cfg_num_or(n, "a.missing", -1) == -1.0);
    assert_true(cfg_num_or(n, "nowhere.at.all", 0.5) == 0.5);
    assert_true(cfg_num_or(n, "a.nul", 0.5) == 0.5);
    assert_true(cfg_num_or(n, "a.s", 0.5) == 0.5);
    assert_true(cfg_num_or(n, "a.b", 0.5) == 0.5);
    assert_true(cfg_num_or(n, "a.l", 0.5) == 0.5);
    assert_true(cfg_num_or(n, "a", 0.5) == 0.5); // a mapping
    assert_true(cfg_num_or(n, "deep.x.y.z", 0) == 7.0);
    assert_true(cfg_num_or(n, "top", 0) == 3.0);
    assert_true(cfg_num_or(n, "a.i.more", 0.5) == 0.5); // a path through a scalar
    assert_true(cfg_num_or(n, "a.", 0.5) == 0.5);
    assert_true(cfg_num_or(NULL, "a.i", 0.5) == 0.5);
    // integers: ints as they are, floats truncated toward zero and clamped, def otherwise
    assert_true(cfg_int_or(n, "a.i", -1) == 12);
    assert_true(cfg_int_or(n, "a.big", -1) == 8000000);
    assert_true(cfg_int_or(n, "a.half", -1) == 2);
    assert_true(cfg_int_or(n, "a.neg", 0) == -3);
    assert_true(cfg_int_or(n, "a.huge", 0) == INT64_MAX);
    assert_true(cfg_int_or(n, "a.nhuge", 0) == INT64_MIN);
    assert_true(cfg_int_or(n, "a.nan", 5) == 5);
    // the edges of the int64 range: no conversion out of range (the clang sanitizer build
    // checks float-cast-overflow)
    static const struct {
        double f;
        int64_t want;
    } edges[] = {
        {9223372036854775808.0, INT64_MAX},                    // 2^63
        {9223372036854774784.0, INT64_C(9223372036854774784)}, // the largest double below
        {-9223372036854775808.0, INT64_MIN},                   // -2^63 itself fits
        {-9223372036854777856.0, INT64_MIN},                   // the next double below
        {INFINITY, INT64_MAX},
        {-INFINITY, INT64_MIN},
        {-0.5, 0},
    };
    for (size_t k = 0; k < sizeof edges / sizeof *edges; k++) {
        cfg_node *e = cfg_new(CFG_FLOAT);
        e->f = edges[k].f;
        cfg_map_set(cfg_get(n, "a"), "edge", e);
        assert_true(cfg_int_or(n, "a.edge", 5) == edges[k].want);
    }
    assert_true(cfg_int_or(n, "a.missing", 5) == 5);
    assert_true(cfg_int_or(n, "a.nul", 5) == 5);
    assert_true(cfg_int_or(n, "a.s", 5) == 5);
    assert_true(cfg_int_or(n, "a.b", 5) == 5); // a boolean is not a number
    assert_true(cfg_int_or(n, "deep.x.y.z", 0) == 7);
    // booleans: only true/false nodes
    assert_false(cfg_bool_or(n, "a.b", true));
    assert_true(cfg_bool_or(n, "deep.x.y.t", false));
    assert_true(cfg_bool_or(n, "a.missing", true));
    assert_true(cfg_bool_or(n, "a.nul", true));
    assert_true(cfg_bool_or(n, "a.i", true)); // 12 is not a boolean
    assert_false(cfg_bool_or(n, "a.s", false));
    // strings: only string nodes (a number is not its text), the empty string included
    assert_string_equal(cfg_str_or(n, "a.s", "def"), "text");
    assert_string_equal(cfg_str_or(n, "a.e", "def"), "");
    assert_string_equal(cfg_str_or(n, "deep.x.y.w", "def"), "word");
    assert_string_equal(cfg_str_or(n, "a.missing", "def"), "def");
    assert_string_equal(cfg_str_or(n, "a.nul", "def"), "def");
    assert_string_equal(cfg_str_or(n, "a.i", "def"), "def");
    assert_string_equal(cfg_str_or(n, "a.b", "def"), "def");
    assert_null(cfg_str_or(n, "a.missing", NULL));
    // a sub-node as the root, a single key as the path (how the data pipeline reads data.*)
    const cfg_node *sub = cfg_get(n, "deep.x.y");
    assert_non_null(sub);
    assert_true(cfg_int_or(sub, "z", 0) == 7);
    assert_true(cfg_bool_or(sub, "t", false));
    assert_true(cfg_num_or(sub, "deep", 0.25) == 0.25);
    assert_true(cfg_num_or(cfg_get(n, "a.nothing"), "z", 0.25) == 0.25); // absent sub-node
    cfg_free(n);
}

static void test_node_basics(void **state) {
    (void)state;
    cfg_node *m = cfg_new(CFG_MAP);
    for (int k = 0; k < 20; k++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", k);
        cfg_node *v = cfg_new(CFG_INT);
        v->i = k;
        cfg_map_set(m, key, v);
    }
    assert_int_equal(m->n, 20);
    cfg_node *v = cfg_new_str("replaced");
    cfg_map_set(m, "k5", v);
    assert_int_equal(m->n, 20);
    assert_ptr_equal(cfg_map_get(m, "k5"), v);
    assert_true(cfg_map_del(m, "k0"));
    assert_false(cfg_map_del(m, "k0"));
    assert_int_equal(m->n, 19);
    assert_string_equal(m->keys[0], "k1");
    assert_null(cfg_map_get(m, "k0"));
    assert_null(cfg_map_get(NULL, "k1"));
    cfg_node *c = cfg_clone(m);
    assert_same_tree(m, c);
    cfg_map_set(c, "k1", cfg_new(CFG_NULL));
    check_int(cfg_map_get(m, "k1"), 1); // a deep copy
    cfg_free(c);
    assert_null(cfg_clone(NULL));
    cfg_free(NULL);
    int np = 0;
    cfg_node *tree = parse("a: {b: {c: 1}, d: [ {e: 1} ]}\nf: 2\n");
    char **paths = cfg_all_paths(tree, &np);
    assert_int_equal(np, 5);
    assert_string_equal(paths[0], "a");
    assert_string_equal(paths[1], "a.b");
    assert_string_equal(paths[2], "a.b.c");
    assert_string_equal(paths[3], "a.d");
    assert_string_equal(paths[4], "f");
    assert_string_equal(cfg_closest("a.b.cc", paths, np), "a.b.c");
    assert_null(cfg_closest("zzzzzz", paths, np));
    assert_null(cfg_closest("x", paths, 0));
    for (int k = 0; k < np; k++)
        free(paths[k]);
    free(paths);
    cfg_free(tree);
    cfg_free(m);
    assert_string_equal(cfg_type_name(CFG_FLOAT), "number");
    assert_string_equal(cfg_type_name(CFG_MAP), "mapping");
}

// ---- interpolation on a parsed tree ----------------------------------------------------------

static void test_resolve(void **state) {
    (void)state;
    setenv("CRAM_TEST_ENV", "from-env", 1);
    unsetenv("CRAM_TEST_UNSET");
    cfg_node *n = parse("a: {b: 3, f: 0.5, t: True, s: word, m: {x: 1}, l: [1, 2], z: ~}\n"
                        "int: ${a.b}\n"
                        "float: ${a.f}\n"
                        "bool: ${ a.t }\n"
                        "map: ${a.m}\n"
                        "list: ${a.l}\n"
                        "nul: ${a.z}\n"
                        "text: b=${a.b} f=${a.f} t=${a.t} s=${a.s} z=${a.z}\n"
                        "chain: ${int}\n"
                        "escaped: \\${a.b}\n"
                        "env: ${oc.env:CRAM_TEST_ENV}\n"
                        "envdef: ${oc.env:CRAM_TEST_UNSET,fallback}\n"
                        "envnum: ${oc.env:CRAM_TEST_UNSET, 5}\n"
                        "year: ${now:%Y}\n"
                        "inlist:\n  - ${a.b}\n  - x${a.s}\n");
    cfg_error err = {0};
    if (cfg_resolve(n, &err)) fail_msg("%s", err.msg);
    check_int(cfg_get(n, "int"), 3);
    check_float(cfg_get(n, "float"), 0.5);
    check_bool(cfg_get(n, "bool"), true);
    assert_int_equal(cfg_get(n, "map")->type, CFG_MAP);
    check_int(cfg_get(n, "map.x"), 1);
    assert_int_equal(cfg_get(n, "list")->n, 2);
    assert_int_equal(cfg_get(n, "nul")->type, CFG_NULL);
    check_str(cfg_get(n, "text"), "b=3 f=0.5 t=True s=word z=None");
    check_int(cfg_get(n, "chain"), 3);
    check_str(cfg_get(n, "escaped"), "${a.b}");
    check_str(cfg_get(n, "env"), "from-env");
    check_str(cfg_get(n, "envdef"), "fallback");
    check_int(cfg_get(n, "envnum"), 5);
    const char *year = cfg_get(n, "year")->s;
    assert_int_equal(strlen(year), 4);
    assert_true(atoi(year) >= 2024);
    cfg_node *il = cfg_get(n, "inlist");
    check_int(il->items[0], 3);
    check_str(il->items[1], "xword");
    // resolving twice changes nothing (except for a literal "${" that came from "\${": the
    // resolved text no longer says that it was escaped, so it is dropped here)
    assert_true(cfg_map_del(n, "escaped"));
    char *j1 = cfg_canonical_json(n);
    assert_int_equal(cfg_resolve(n, &err), 0);
    char *j2 = cfg_canonical_json(n);
    assert_string_equal(j1, j2);
    free(j1);
    free(j2);
    cfg_free(n);

    static const struct {
        const char *doc, *want;
    } bad[] = {
        {"a: ${b}\nb: ${a}\n", "cycle"},
        {"a:\n  b: ${a}\n", "cycle"},
        {"a: x${a}\n", "cycle"},
        {"a: ${nope}\n", "a: ${nope} refers to a missing key"},
        {"abc: 1\nx: ${abd}\n", "did you mean ${abc}?"},
        {"a: ${foo:bar}\n", "unknown resolver"},
        {"a: ${oc.env:CRAM_TEST_UNSET}\n", "CRAM_TEST_UNSET is not set"},
        {"a: ${.b}\nb: 1\n", "relative interpolation"},
        {"m: {x: 1}\na: x${m}\n", "cannot put a mapping"},
        {"a: x${b\nb: 1\n", "unterminated"},
        {"l:\n  - ${nope}\n", "l[0]"},
        {"a: ${}\n", "a: empty interpolation ${}"},
        {"a: x${ }y\n", "a: empty interpolation"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        cfg_node *b = parse(bad[k].doc);
        memset(&err, 0, sizeof err);
        if (cfg_resolve(b, &err) == 0) {
            char *j = cfg_canonical_json(b);
            fail_msg("resolving %s should fail, got %s", bad[k].doc, j);
        }
        assert_int_equal(err.code, 2);
        assert_contains(err.msg, bad[k].want);
        cfg_free(b);
    }
}

// ---- composition with the real configs -------------------------------------------------------

static void test_compose_issue_example(void **state) {
    (void)state;
    cfg_node *r =
        REAL("pretrain", "arch=crammed-bert", "train=bert-o4", "train.optim.lr=1e-4", "budget=48");
    check_float(cfg_get(r, "train.optim.lr"), 0.0001);
    check_int(cfg_get(r, "train.budget"), 48);
    check_int(cfg_get(r, "budget"), 48);
    check_float(cfg_get(r, "arch.sparse_prediction"), 0.25);
    check_int(cfg_get(r, "arch.embedding.embedding_dim"), 768);
    cfg_node *keys = cfg_get(r, "train.limited_decay_keys");
    assert_int_equal(keys->type, CFG_LIST);
    assert_int_equal(keys->n, 4);
    check_str(keys->items[0], "bias");
    check_str(keys->items[1], "LayerNorm.bias");
    check_str(keys->items[2], "LayerNorm.weight");
    check_str(keys->items[3], "norm");
    check_str(cfg_get(r, "train.name"), "bert-o4");
    check_str(cfg_get(r, "arch.architectures")->items[0], "ScriptableCrammedBERT");
    check_float(cfg_get(r, "train.objective.mlm_probability"), 0.25);
    check_int(cfg_get(r, "train.steps"), 900000);
    check_float(cfg_get(r, "train.batch_size_ramp"), 0.6);
    check_float(cfg_get(r, "train.optim.eps"), 1e-12);
    cfg_node *betas = cfg_get(r, "train.optim.betas");
    check_float(betas->items[0], 0.9);
    check_float(betas->items[1], 0.98);
    // nothing is left unresolved anywhere
    char *y = cfg_to_yaml(r);
    assert_not_contains(y, "${");
    free(y);
    cfg_free(r);
}

static void test_compose_pretrain_defaults(void **state) {
    (void)state;
    cfg_node *r = compose_real("pretrain", 0, NULL);
    check_str(cfg_get(r, "arch.architectures")->items[0], "BertForMaskedLM"); // hf-bert-tiny
    check_str(cfg_get(r, "data.name"), "sanity-check-2");
    assert_non_null(cfg_get(r, "data.sources.ag_news"));
    check_str(cfg_get(r, "train.name"), "bert-base");
    check_float(cfg_get(r, "train.optim.lr"), 5e-4);
    check_str(cfg_get(r, "train.optim.type"), "AdamW");
    check_int(cfg_get(r, "train.warmup_steps"), 30000);
    check_str(cfg_get(r, "impl.name"), "torch-default");
    check_str(cfg_get(r, "impl.device"), "auto");
    check_int(cfg_get(r, "impl.microbatch_size"), 128);
    check_float(cfg_get(r, "impl.max_raw_chunk_size"), 8e6);
    check_bool(cfg_get(r, "wandb.enabled"), false);
    check_int(cfg_get(r, "budget"), 24);
    check_int(cfg_get(r, "train.budget"), 24);
    assert_int_equal(cfg_get(r, "seed")->type, CFG_NULL);
    check_str(cfg_get(r, "name"), "default");
    check_str(cfg_get(r, "base_dir"), "outputs");
    check_bool(cfg_get(r, "dryrun"), false);
    assert_null(cfg_get(r, "defaults"));
    assert_null(cfg_get(r, "train.defaults"));
    // top-level groups come in defaults order, then the primary file's own keys (_self_ last)
    assert_string_equal(r->keys[0], "arch");
    assert_string_equal(r->keys[1], "data");
    assert_string_equal(r->keys[2], "impl");
    assert_string_equal(r->keys[3], "wandb");
    assert_string_equal(r->keys[4], "train");
    assert_string_equal(r->keys[5], "base_dir");
    // typed getters on the composed tree
    int64_t steps = 0, chunk = 0;
    cfg_error err = {0};
    assert_int_equal(cfg_get_int(r, "train.steps", &steps, &err), 0);
    assert_true(steps == 900000);
    assert_int_equal(cfg_get_int(r, "impl.max_raw_chunk_size", &chunk, &err), 0);
    assert_true(chunk == 8000000);
    const char *seed;
    assert_int_equal(cfg_get_str(r, "seed", &seed, &err), -1);
    cfg_free(r);
}

static void test_compose_self_order(void **state) {
    (void)state;
    // train/bert-o4.yaml sets optim.lr: 1e-3 after its defaults pulled optim/adam (0.0005)
    cfg_node *r = REAL("pretrain", "train=bert-o4");
    check_float(cfg_get(r, "train.optim.lr"), 1e-3);
    check_str(cfg_get(r, "train.optim.type"), "AdamW"); // from optim/adam
    check_float(cfg_get(r, "train.optim.weight_decay"), 0.01);
    // the command line wins over both
    cfg_node *r2 = REAL("pretrain", "train=bert-o4", "train.optim.lr=3e-3");
    check_float(cfg_get(r2, "train.optim.lr"), 3e-3);
    cfg_free(r2);
    cfg_free(r);
    // an integer typed for a float key is stored as a float
    cfg_node *r3 = REAL("pretrain", "train.optim.lr=1");
    check_float(cfg_get(r3, "train.optim.lr"), 1.0);
    cfg_free(r3);
}

static void test_compose_eval_defaults(void **state) {
    (void)state;
    cfg_node *r = compose_real("eval", 0, NULL);
    cfg_node *tasks = cfg_get(r, "eval.tasks");
    assert_non_null(tasks);
    assert_int_equal(tasks->type, CFG_MAP);
    assert_int_equal(tasks->n, 8);
    static const char *const want[] = {"cola", "mnli", "mrpc", "qnli",
                                       "qqp",  "rte",  "sst2", "stsb"};
    for (int k = 0; k < 8; k++)
        assert_string_equal(tasks->keys[k], want[k]);
    check_str(cfg_get(r, "eval.tasks.cola.collection"), "glue");
    check_float(cfg_get(r, "eval.optim.lr"), 4e-5);
    check_str(cfg_get(r, "eval.name"), "GLUE");
    check_str(cfg_get(r, "eval.path"), str_at(r, "impl.path"));
    check_str(cfg_get(r, "wandb.project"), "cramming-eval");
    assert_null(cfg_get(r, "budget"));
    assert_null(cfg_get(r, "arch"));
    cfg_free(r);
    // eval.path follows impl.path when that is overridden
    cfg_node *r2 = REAL("eval", "impl.path=/tmp/cramdata");
    check_str(cfg_get(r2, "eval.path"), "/tmp/cramdata");
    cfg_free(r2);
    // the reference's eval command line
    cfg_node *r3 = REAL("eval", "eval=GLUE_sane", "name=x", "eval.checkpoint=latest",
                        "impl.microbatch_size=16", "impl.shuffle_in_dataloader=True",
                        "impl.compile_torch=False");
    check_int(cfg_get(r3, "impl.microbatch_size"), 16);
    check_bool(cfg_get(r3, "impl.shuffle_in_dataloader"), true);
    check_bool(cfg_get(r3, "impl.compile_torch"), false);
    check_str(cfg_get(r3, "name"), "x");
    cfg_free(r3);
}

static void test_compose_eval_tasks_override(void **state) {
    (void)state;
    cfg_node *r = REAL("eval", "eval/tasks=rte");
    cfg_node *tasks = cfg_get(r, "eval.tasks");
    assert_int_equal(tasks->n, 1);
    assert_string_equal(tasks->keys[0], "rte");
    check_str(cfg_get(r, "eval.tasks.rte.collection"), "super_glue");
    check_float(cfg_get(r, "eval.optim.lr"), 4e-5);
    cfg_free(r);
    cfg_node *r2 = REAL("eval", "eval/tasks=[rte,cola]");
    tasks = cfg_get(r2, "eval.tasks");
    assert_int_equal(tasks->n, 2);
    assert_string_equal(tasks->keys[0], "rte");
    assert_string_equal(tasks->keys[1], "cola");
    cfg_free(r2);
    const char *msg = REAL_FAIL("eval", "eval/tasks=[rte,colaa]");
    assert_contains(msg, "did you mean eval/tasks=cola?");
    // a group that the pretrain config does not compose
    msg = REAL_FAIL("pretrain", "eval/tasks=rte");
    assert_contains(msg, "eval/tasks");
    assert_contains(msg, "defaults");
}

static void test_compose_arch_variants(void **state) {
    (void)state;
    cfg_node *a = REAL("pretrain", "arch=v1/bert-original");
    cfg_node *b = REAL("pretrain", "arch=bert-original");
    assert_same_tree(cfg_get(a, "arch"), cfg_get(b, "arch"));
    check_int(cfg_get(a, "arch.embedding.embedding_dim"), num_at(a, "arch.hidden_size"));
    cfg_free(a);
    cfg_free(b);
    cfg_node *c = REAL("pretrain", "impl=cpu");
    check_str(cfg_get(c, "impl.name"), "cpu");
    check_str(cfg_get(c, "impl.device"), "cpu");
    check_int(cfg_get(c, "impl.microbatch_size"), 16);
    check_int(cfg_get(c, "impl.threads"), 0);
    check_bool(cfg_get(c, "impl.mixed_precision"), false);
    check_str(cfg_get(c, "impl.path"), "data"); // from impl/_default
    cfg_free(c);
    // every arch option composes and resolves
    static const char *const archs[] = {"crammed-bert",    "crammed-bert-simple", "hf-bert-base",
                                        "sanity-check",    "v1/bert-c5",          "v1/funnel-c2",
                                        "v1/recurrent-c2", "v1/crammed-bamboo"};
    for (size_t k = 0; k < sizeof archs / sizeof *archs; k++) {
        char ov[64];
        snprintf(ov, sizeof ov, "arch=%s", archs[k]);
        char *argv[] = {ov};
        cfg_node *r = compose_real("pretrain", 1, argv);
        assert_non_null(cfg_get(r, "arch.architectures"));
        cfg_free(r);
    }
}

static void test_compose_interpolation_follows_override(void **state) {
    (void)state;
    cfg_node *r = REAL("pretrain", "arch=crammed-bert", "arch.hidden_dropout_prob=0.2",
                       "arch.hidden_size=512", "train.objective.mlm_probability=0.4");
    check_float(cfg_get(r, "arch.classification_head.classifier_dropout"), 0.2);
    check_int(cfg_get(r, "arch.embedding.embedding_dim"), 512);
    check_float(cfg_get(r, "arch.sparse_prediction"), 0.4);
    cfg_free(r);
    // an override may itself be an interpolation
    cfg_node *r2 = REAL("pretrain", "name=${train.name}", "budget=${impl.microbatch_size}");
    check_str(cfg_get(r2, "name"), "bert-base");
    check_int(cfg_get(r2, "train.budget"), 128);
    cfg_free(r2);
    // replacing the interpolation itself breaks the link
    cfg_node *r3 = REAL("pretrain", "train.budget=2", "budget=10");
    check_int(cfg_get(r3, "train.budget"), 2);
    cfg_free(r3);
}

static void test_compose_add_and_delete(void **state) {
    (void)state;
    cfg_node *r = REAL("pretrain", "+train.new.key=3", "~train.optim.amsgrad",
                       "+train.sequence_curriculum.lengths=[32,64,128]", "+top=x",
                       "+train.m={a: 1, b: 'two'}", "+train.q='1e-3'", "++train.optim.lr=2e-4",
                       "++train.forced=7");
    check_int(cfg_get(r, "train.new.key"), 3);
    assert_null(cfg_get(r, "train.optim.amsgrad"));
    assert_non_null(cfg_get(r, "train.optim.eps"));
    cfg_node *l = cfg_get(r, "train.sequence_curriculum.lengths");
    assert_int_equal(l->type, CFG_LIST);
    assert_int_equal(l->n, 3);
    check_int(l->items[2], 128);
    check_str(cfg_get(r, "top"), "x");
    check_int(cfg_get(r, "train.m.a"), 1);
    check_str(cfg_get(r, "train.m.b"), "two");
    check_str(cfg_get(r, "train.q"), "1e-3");
    check_float(cfg_get(r, "train.optim.lr"), 2e-4);
    check_int(cfg_get(r, "train.forced"), 7);
    cfg_free(r);

    const char *msg = REAL_FAIL("pretrain", "+train.optim.lr=1");
    assert_contains(msg, "already exists");
    assert_contains(msg, "train.optim.lr=1");
    msg = REAL_FAIL("pretrain", "~train.optim.nope");
    assert_contains(msg, "unknown key train.optim.nope");
    msg = REAL_FAIL("pretrain", "~arch");
    assert_contains(msg, "cannot delete the group");
    // a value below a scalar
    msg = REAL_FAIL("pretrain", "+budget.x=1");
    assert_contains(msg, "not a mapping");
}

static void test_compose_typed_overrides(void **state) {
    (void)state;
    cfg_node *r =
        REAL("pretrain", "seed=null", "name=123", "budget=0.5", "dryrun=True",
             "impl.microbatch_size=2", "data.tokenizer=1e-3", "train.gradient_clipping=1");
    assert_int_equal(cfg_get(r, "seed")->type, CFG_NULL);
    check_str(cfg_get(r, "name"), "123");            // name is a string in pretrain.yaml
    check_str(cfg_get(r, "data.tokenizer"), "1e-3"); // kept as typed, not "0.001"
    check_float(cfg_get(r, "budget"), 0.5);
    check_float(cfg_get(r, "train.budget"), 0.5);
    check_bool(cfg_get(r, "dryrun"), true);
    check_int(cfg_get(r, "impl.microbatch_size"), 2);
    check_int(cfg_get(r, "train.gradient_clipping"), 1); // declared empty: anything goes
    cfg_free(r);
    cfg_node *r2 = REAL("pretrain", "seed=42", "name=null");
    check_int(cfg_get(r2, "seed"), 42);
    assert_int_equal(cfg_get(r2, "name")->type, CFG_NULL);
    cfg_free(r2);

    const char *msg = REAL_FAIL("pretrain", "train.optim.lr=abc");
    assert_contains(msg, "train.optim.lr=abc");
    assert_contains(msg, "takes a number");
    assert_contains(msg, "the string 'abc'");
    assert_contains(msg, "train/optim/adam.yaml:5");
    msg = REAL_FAIL("pretrain", "budget=abc");
    assert_contains(msg, "budget takes a number"); // hours: 24 in the file, 0.5 allowed
    msg = REAL_FAIL("pretrain", "dryrun=5");
    assert_contains(msg, "takes a boolean");
    assert_contains(msg, "the integer 5");
    msg = REAL_FAIL("pretrain", "train.limited_decay_keys=x");
    assert_contains(msg, "takes a list");
    msg = REAL_FAIL("pretrain", "train.objective=3");
    assert_contains(msg, "takes a mapping");
}

static void test_compose_unknown_key(void **state) {
    (void)state;
    const char *msg = REAL_FAIL("pretrain", "train.optim.lrr=1");
    assert_contains(msg, "unknown key train.optim.lrr");
    assert_contains(msg, "did you mean train.optim.lr?");
    msg = REAL_FAIL("pretrain", "foo=1");
    assert_contains(msg, "unknown key foo");
    assert_contains(msg, "+key=value");
    msg = REAL_FAIL("pretrain", "impl.microbatchsize=2");
    assert_contains(msg, "did you mean impl.microbatch_size?");
    msg = REAL_FAIL("pretrain", "nothere.at.all=1");
    assert_contains(msg, "unknown key nothere.at.all");
}

static void test_compose_unknown_option(void **state) {
    (void)state;
    const char *msg = REAL_FAIL("pretrain", "arch=crammed-bret");
    assert_contains(msg, "unknown option 'crammed-bret' for arch");
    assert_contains(msg, "did you mean arch=crammed-bert?");
    assert_contains(msg, "crammed-bert-simple");
    assert_contains(msg, "v1/bert-original");
    assert_not_contains(msg, "_default");
    msg = REAL_FAIL("pretrain", "impl=cpuu");
    assert_contains(msg, "did you mean impl=cpu?");
    assert_not_contains(msg, "_default"); // files starting with _ are not options
    msg = REAL_FAIL("pretrain", "train=zzzzzzzzzzzz");
    assert_not_contains(msg, "did you mean");
    assert_contains(msg, "bert-o4");
    msg = REAL_FAIL("pretrain", "arch=../pretrain");
    assert_contains(msg, "not a config option name");
    msg = REAL_FAIL("pretrain", "arch=5");
    assert_contains(msg, "expected the name of an option");
    msg = REAL_FAIL("pretrain", "+nogroup/x=y");
    assert_contains(msg, "unknown config group 'nogroup/x'");
}

static void test_compose_nested_group_override(void **state) {
    (void)state;
    cfg_node *r = REAL("pretrain", "train/optim=adam_classic");
    check_str(cfg_get(r, "train.optim.type"), "Adam");
    check_float(cfg_get(r, "train.optim.betas")->items[1], 0.999);
    assert_null(cfg_get(r, "train.optim.fused")); // only optim/adam has it
    cfg_free(r);
    // bert-o4's own optim keys still apply on top of the chosen optimizer
    cfg_node *r2 = REAL("pretrain", "train=bert-o4", "train/optim=adam_classic");
    check_str(cfg_get(r2, "train.optim.type"), "Adam");
    check_float(cfg_get(r2, "train.optim.lr"), 1e-3);
    cfg_free(r2);
    cfg_node *r3 = REAL("pretrain", "train/optim_mod=sam");
    assert_non_null(cfg_get(r3, "train.optim_mod.name"));
    check_str(cfg_get(r3, "train.optim_mod.name"), "SAM");
    cfg_free(r3);
    cfg_node *r4 = REAL("eval", "eval/optim=adam", "eval.optim.lr=1e-5");
    check_float(cfg_get(r4, "eval.optim.lr"), 1e-5);
    cfg_free(r4);
}

static void test_compose_group_add(void **state) {
    (void)state;
    // Hydra: +group=option appends a group the defaults list lacks; wandb is already there
    const char *msg = REAL_FAIL("pretrain", "+wandb=default");
    assert_contains(msg, "+wandb=default");
    assert_contains(msg, "already in the defaults list");
    msg = REAL_FAIL("pretrain", "+train/optim=adam");
    assert_contains(msg, "already in the defaults list");
    // plain and forced selection both replace it
    cfg_node *r = REAL("pretrain", "wandb=default");
    check_bool(cfg_get(r, "wandb.enabled"), true);
    check_str(cfg_get(r, "wandb.project"), "cramming-pretrain");
    cfg_free(r);
    cfg_node *r2 = REAL("pretrain", "++wandb=default");
    check_bool(cfg_get(r2, "wandb.enabled"), true);
    cfg_free(r2);
    // eval.yaml's own wandb.project (after _self_) still wins over the group file
    cfg_node *r3 = REAL("eval", "wandb=default");
    check_str(cfg_get(r3, "wandb.project"), "cramming-eval");
    cfg_free(r3);
    // a group that is not in the defaults list: + adds it, plain selection is refused
    msg = REAL_FAIL("eval", "arch=crammed-bert");
    assert_contains(msg, "+arch=crammed-bert");
    cfg_node *r4 = REAL("eval", "+arch=crammed-bert", "+train=bert-o4", "+budget=5");
    check_int(cfg_get(r4, "arch.hidden_size"), 768);
    check_float(cfg_get(r4, "arch.sparse_prediction"), 0.25); // resolves across added groups
    check_int(cfg_get(r4, "train.budget"), 5);
    cfg_free(r4);
    // group=null leaves the group out
    cfg_node *r5 = REAL("pretrain", "wandb=null");
    assert_null(cfg_get(r5, "wandb.enabled"));
    cfg_free(r5);
}

static void test_compose_override_syntax(void **state) {
    (void)state;
    const char *msg = REAL_FAIL("pretrain", "arch");
    assert_contains(msg, "expected key=value");
    msg = REAL_FAIL("pretrain", "a b=1");
    assert_contains(msg, "is not a key");
    msg = REAL_FAIL("pretrain", "=1");
    assert_contains(msg, "is not a key");
    msg = REAL_FAIL("pretrain", "train..optim=1");
    assert_contains(msg, "is not a key");
    msg = REAL_FAIL("pretrain", "+train.l=[1,2");
    assert_contains(msg, "unbalanced");
    msg = REAL_FAIL("pretrain", "+train.l=[1,[2]");
    assert_contains(msg, "unbalanced");
    msg = REAL_FAIL("pretrain", "+train.m={a}");
    assert_contains(msg, "expected key: value");
    msg = REAL_FAIL("pretrain", "+train.m=[[[[[[[[[[[1]]]]]]]]]]]");
    assert_contains(msg, "nested too deeply");
    // the value keeps everything after the first '='
    cfg_node *r = REAL("pretrain", "name=a=b", "+train.s='x,y'", "+train.e=");
    check_str(cfg_get(r, "name"), "a=b");
    check_str(cfg_get(r, "train.s"), "x,y");
    assert_int_equal(cfg_get(r, "train.e")->type, CFG_NULL);
    cfg_free(r);
}

static void test_compose_override_encoding(void **state) {
    (void)state;
    const char *msg = REAL_FAIL("pretrain", "name=caf\xe9");
    assert_contains(msg, "override for name");
    assert_contains(msg, "not valid UTF-8");
    msg = REAL_FAIL("pretrain", "name=a\x01"
                                "b");
    assert_contains(msg, "not valid UTF-8");
    msg = REAL_FAIL("pretrain", "+x=\xed\xa0\x80"); // a UTF-16 surrogate
    assert_contains(msg, "not valid UTF-8");
    msg = REAL_FAIL("pretrain", "+x=\xc0\xaf"); // an overlong '/'
    assert_contains(msg, "not valid UTF-8");
    cfg_node *r = REAL("pretrain", "name=caf\xc3\xa9-\xf0\x9f\x98\x80", "+x=a\tb");
    check_str(cfg_get(r, "name"), "caf\xc3\xa9-\xf0\x9f\x98\x80");
    yaml_roundtrip(r);
    cfg_free(r);
    // an environment variable that is not text is refused where it is used
    setenv("CRAM_TEST_BINARY", "\xff\xfe", 1);
    cfg_node *n = parse("a: ${oc.env:CRAM_TEST_BINARY}\n");
    cfg_error err = {0};
    assert_int_equal(cfg_resolve(n, &err), -1);
    assert_contains(err.msg, "CRAM_TEST_BINARY is not valid UTF-8");
    cfg_free(n);
    unsetenv("CRAM_TEST_BINARY");
}

static void test_compose_no_config(void **state) {
    (void)state;
    cfg_search s;
    cfg_search_init(&s);
    cfg_error err = {0};
    assert_null(cfg_compose(&s, "pretrain", 0, NULL, &err));
    assert_int_equal(err.code, 2);
    assert_contains(err.msg, "no config folder");
    assert_int_equal(cfg_search_add(&s, "/nonexistent/cram/configs"), -1);
    assert_int_equal(cfg_search_add(&s, fixture_dir), 0);
    assert_int_equal(cfg_search_add(&s, fixture_dir), 0); // no duplicate
    assert_int_equal(s.ndirs, 1);
    assert_null(cfg_compose(&s, "pretrain", 0, NULL, &err));
    assert_contains(err.msg, "no config pretrain.yaml");
    cfg_search_free(&s);
    // --config-dir in front of the default roots; a missing folder is an error
    char arg[1100];
    snprintf(arg, sizeof arg, "--config-dir=%s", fixture_dir);
    char *argv[] = {arg, "lr=0.25"};
    cfg_node *r = cfg_from_args("plain", 2, argv, &err);
    if (!r) fail_msg("%s", err.msg);
    check_float(cfg_get(r, "lr"), 0.25);
    cfg_free(r);
    char *argv2[] = {"--config-dir", fixture_dir};
    r = cfg_from_args("pretrain", 2, argv2, &err);
    assert_non_null(r); // the fixture has no pretrain.yaml: found in the default roots
    cfg_free(r);
    // CRAM_CONFIG_PATH: colon separated, searched in order, missing folders skipped
    char *saved = xstrdup_or_null(getenv("CRAM_CONFIG_PATH"));
    char path[4200];
    snprintf(path, sizeof path, "/nonexistent/a:%s::%s/configs-not-here:%s/opt", fixture_dir,
             fixture_dir, fixture_dir);
    setenv("CRAM_CONFIG_PATH", path, 1);
    cfg_search_init(&s);
    assert_true(cfg_search_default(&s) >= 2);
    assert_string_equal(s.dirs[0], fixture_dir);
    assert_true(strstr(s.dirs[1], "/opt") != NULL);
    cfg_search_free(&s);
    if (saved)
        setenv("CRAM_CONFIG_PATH", saved, 1);
    else
        unsetenv("CRAM_CONFIG_PATH");
    free(saved);
    char *argv3[] = {"--config-dir=/nonexistent/dir"};
    assert_null(cfg_from_args("pretrain", 1, argv3, &err));
    assert_contains(err.msg, "/nonexistent/dir");
    assert_int_equal(err.code, 2);
}

// ---- strict types (integer keys, ranges, key rules, messages) ------------------------------

// A temporary config folder, searched in front of the real tree; removed by tmp_tree_free.
typedef struct {
    char dir[256];
} tmp_tree;

static void tmp_tree_init(tmp_tree *t) {
    snprintf(t->dir, sizeof t->dir, "/tmp/cram-test-config-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
}

static void tmp_write(tmp_tree *t, const char *rel, const char *text) {
    char path[600], cmd[1400];
    snprintf(path, sizeof path, "%s/%s", t->dir, rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
    *slash = '/';
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

// The real configs/<rel> up to the first line that starts with `stop`, written to the same place
// in t: a file cut short at a line boundary.
static void tmp_cut(tmp_tree *t, const char *rel, const char *stop) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", getenv("CRAM_CONFIG_PATH"), rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[16384], line[4096];
    size_t o = 0;
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, stop, strlen(stop)) == 0) {
            found = true;
            break;
        }
        assert_true(o + strlen(line) < sizeof buf);
        memcpy(buf + o, line, strlen(line));
        o += strlen(line);
    }
    buf[o] = 0;
    fclose(f);
    if (!found) fail_msg("%s has no line starting with %s", path, stop);
    tmp_write(t, rel, buf);
}

static void tmp_tree_free(tmp_tree *t) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    assert_int_equal(system(cmd), 0);
}

// Composes primary from t's folder, then the real tree; NULL with err filled on failure.
static cfg_node *tmp_compose(tmp_tree *t, bool with_real, const char *primary, int n,
                             char *const *ov, cfg_error *err) {
    cfg_search s;
    cfg_search_init(&s);
    assert_int_equal(cfg_search_add(&s, t->dir), 0);
    if (with_real) assert_int_equal(cfg_search_add(&s, getenv("CRAM_CONFIG_PATH")), 0);
    memset(err, 0, sizeof *err);
    cfg_node *root = cfg_compose(&s, primary, n, ov, err);
    cfg_search_free(&s);
    return root;
}

static void test_compose_integer_keys(void **state) {
    (void)state;
    // a fraction for an integer key is refused, with the key, the value and the range
    const char *msg = REAL_FAIL("pretrain", "impl.microbatch_size=1.5");
    assert_contains(msg, "impl.microbatch_size=1.5: impl.microbatch_size takes an integer from 1 "
                         "to 2147483647");
    assert_contains(msg, "impl/_default.yaml:");
    assert_contains(msg, "not the fraction 1.5");
    msg = REAL_FAIL("pretrain", "impl.microbatch_size=16.5");
    assert_contains(msg, "not the fraction 16.5");
    msg = REAL_FAIL("eval", "impl.microbatch_size=16.5");
    assert_contains(msg, "impl.microbatch_size=16.5");
    // whole numbers past the range, however written
    msg = REAL_FAIL("pretrain", "impl.microbatch_size=1e30");
    assert_contains(msg, "impl.microbatch_size=1e30: impl.microbatch_size takes an integer from 1 "
                         "to 2147483647");
    assert_contains(msg, "not 1e30");
    msg = REAL_FAIL("pretrain", "impl.microbatch_size=3e9");
    assert_contains(msg, "from 1 to 2147483647, not 3e9");
    msg = REAL_FAIL("pretrain", "impl.microbatch_size=0");
    assert_contains(msg, "impl.microbatch_size=0: impl.microbatch_size takes an integer from 1 to "
                         "2147483647, not 0");
    msg = REAL_FAIL("pretrain", "impl.microbatch_size=.inf");
    assert_contains(msg, "not .inf");
    msg = REAL_FAIL("pretrain", "impl.microbatch_size=.nan");
    assert_contains(msg, "not the number .nan");
    msg = REAL_FAIL("pretrain", "seed=1e300");
    assert_contains(msg, "seed=1e300: seed takes an integer from -9223372036854775808 to "
                         "9223372036854775807 or null, not 1e300");
    msg = REAL_FAIL("eval", "seed=-1e300");
    assert_contains(msg, "seed=-1e300: seed takes an integer from -9223372036854775808");
    msg = REAL_FAIL("pretrain", "seed=9223372036854775808.0");
    assert_contains(msg, "seed takes an integer from");
    // seed is an integer or null: a string is not seed 0
    msg = REAL_FAIL("pretrain", "seed=abc");
    assert_contains(msg, "seed=abc: seed takes an integer or null, not the string 'abc'");
    msg = REAL_FAIL("eval", "seed=1.5");
    assert_contains(msg, "not the fraction 1.5");
    // the allowed range of a number key, by name
    msg = REAL_FAIL("pretrain", "budget=-1");
    assert_contains(msg, "budget=-1: budget takes a number greater than 0, not -1");
    msg = REAL_FAIL("pretrain", "budget=0");
    assert_contains(msg, "budget=0: budget takes a number greater than 0");
    msg = REAL_FAIL("pretrain", "train.batch_size=0");
    assert_contains(msg, "train.batch_size=0: train.batch_size takes an integer from 1");
    msg = REAL_FAIL("pretrain", "impl.print_loss_every_nth_step=-3");
    assert_contains(msg, "impl.print_loss_every_nth_step takes an integer >= 1, not -3");
    msg = REAL_FAIL("eval", "eval.batch_size=0");
    assert_contains(msg, "eval.batch_size=0: eval.batch_size takes an integer from 1");
    msg = REAL_FAIL("pretrain", "train.objective.mlm_probability=1.5");
    assert_contains(msg, "takes a number from 0 to 1, not 1.5");
    msg = REAL_FAIL("pretrain", "dryrun=null");
    assert_contains(msg, "dryrun=null: dryrun takes true or false, not null");
    // a key of the files only (no job range): the file's type decides
    msg = REAL_FAIL("pretrain", "arch.hidden_size=2.5");
    assert_contains(msg, "arch.hidden_size takes an integer (as set in");
    msg = REAL_FAIL("pretrain", "arch.hidden_size=1e30");
    assert_contains(msg, "takes an integer from -9223372036854775808 to 9223372036854775807");
    // whole numbers however written (YAML 1.1: 1e3 is a float) become integers
    cfg_node *r = REAL("pretrain", "impl.microbatch_size=1e3", "seed=7.0", "train.steps=1.0e+6",
                       "arch.hidden_size=512.0", "train.batch_size=2_048");
    check_int(cfg_get(r, "impl.microbatch_size"), 1000);
    check_int(cfg_get(r, "seed"), 7);
    check_int(cfg_get(r, "train.steps"), 1000000);
    check_int(cfg_get(r, "arch.hidden_size"), 512);
    check_int(cfg_get(r, "train.batch_size"), 2048);
    yaml_roundtrip(r);
    cfg_free(r);
    // keys written as whole numbers that mean any number keep taking fractions
    r = REAL("pretrain", "train=bert-o4", "budget=0.5", "train.warmup_steps=0.06",
             "train.cooldown_steps=0.1", "train.batch_size_ramp=0.5",
             "impl.early_termination.budget=1.5", "seed=-5");
    check_float(cfg_get(r, "budget"), 0.5);
    check_float(cfg_get(r, "train.budget"), 0.5);
    check_float(cfg_get(r, "train.warmup_steps"), 0.06);
    check_float(cfg_get(r, "impl.early_termination.budget"), 1.5);
    check_int(cfg_get(r, "seed"), -5);
    cfg_free(r);
    // an interpolation that gives a fraction to an integer key
    msg = FIX_FAIL("plain", "steps=${lr}");
    assert_contains(msg, "steps takes an integer");
    assert_contains(msg, "its interpolation gave the number 0.5");
    r = FIX("plain", "steps=${nested.deep.key}");
    check_int(cfg_get(r, "steps"), 1);
    cfg_free(r);
    msg = REAL_FAIL("pretrain", "impl.microbatch_size=${train.optim.lr}");
    assert_contains(msg, "impl.microbatch_size takes an integer from 1 to 2147483647");
}

static void test_compose_integer_keys_in_files(void **state) {
    (void)state;
    tmp_tree t;
    tmp_tree_init(&t);
    tmp_write(&t, "g/a.yaml", "n: 5\nx: 1.5\n");
    tmp_write(&t, "frac.yaml", "defaults:\n  - g: a\n  - _self_\ng:\n  n: 2.5\n");
    tmp_write(&t, "whole.yaml", "defaults:\n  - g: a\n  - _self_\ng:\n  n: 3.0\n  x: 2\n");
    tmp_write(&t, "huge.yaml", "defaults:\n  - g: a\n  - _self_\ng:\n  n: 1e300\n");
    cfg_error err;
    assert_null(tmp_compose(&t, false, "frac", 0, NULL, &err));
    assert_int_equal(err.code, 2);
    assert_contains(err.msg, "frac.yaml:5: g.n is an integer in");
    assert_contains(err.msg, "g/a.yaml:1, but this file sets it to the number 2.5");
    assert_null(tmp_compose(&t, false, "huge", 0, NULL, &err));
    assert_contains(err.msg, "the number 1.0e+300, which is not an integer from");
    cfg_node *r = tmp_compose(&t, false, "whole", 0, NULL, &err);
    if (!r) fail_msg("%s", err.msg);
    check_int(cfg_get(r, "g.n"), 3);
    check_int(cfg_get(r, "g.x"), 2); // a float key takes an integer
    cfg_free(r);
    tmp_tree_free(&t);
}

static void test_strict_getters(void **state) {
    (void)state;
    cfg_node *n = parse("a: {big: 8e6, half: 0.5, i: 12, s: text, nul: ~, b: True, neg: -3e3,\n"
                        "    huge: 1e300, top: 9223372036854775807, l: [1], inf: .inf}\n");
    cfg_node *nan = cfg_new(CFG_FLOAT);
    nan->f = NAN;
    cfg_map_set(cfg_get(n, "a"), "nan", nan);
    char err[512];
    int64_t i = 0;
    assert_int_equal(cfg_int_in(n, "a.big", 1, INT64_MAX, 0, &i, err, sizeof err), 0);
    assert_true(i == 8000000);
    assert_int_equal(cfg_int_in(n, "a.neg", INT64_MIN, 0, 0, &i, err, sizeof err), 0);
    assert_true(i == -3000);
    assert_int_equal(cfg_int_in(n, "a.top", 0, INT64_MAX, 0, &i, err, sizeof err), 0);
    assert_true(i == INT64_MAX);
    // missing and null: the default
    assert_int_equal(cfg_int_in(n, "a.missing", 1, 10, 7, &i, err, sizeof err), 0);
    assert_true(i == 7);
    assert_int_equal(cfg_int_in(n, "a.nul", 1, 10, 8, &i, err, sizeof err), 0);
    assert_true(i == 8);
    // fractions, ranges, types: refused, naming the key and the value
    assert_int_equal(cfg_int_in(n, "a.half", 0, 10, 0, &i, err, sizeof err), -1);
    assert_contains(err, "a.half=0.5: a.half takes an integer from 0 to 10, not the fraction 0.5");
    assert_int_equal(cfg_int_in(n, "a.i", 1, 10, 0, &i, err, sizeof err), -1);
    assert_contains(err, "a.i=12: a.i takes an integer from 1 to 10, not 12");
    assert_int_equal(cfg_int_in(n, "a.huge", INT64_MIN, INT64_MAX, 0, &i, err, sizeof err), -1);
    assert_contains(err, "a.huge takes an integer from -9223372036854775808 to "
                         "9223372036854775807, not 1.0e+300");
    assert_int_equal(cfg_int_in(n, "a.inf", 0, INT64_MAX, 0, &i, err, sizeof err), -1);
    assert_int_equal(cfg_int_in(n, "a.nan", 0, INT64_MAX, 0, &i, err, sizeof err), -1);
    assert_contains(err, "not the number .nan");
    assert_int_equal(cfg_int_in(n, "a.s", 0, 10, 0, &i, err, sizeof err), -1);
    assert_contains(err, "a.s=text: a.s takes an integer from 0 to 10, not the string 'text'");
    assert_int_equal(cfg_int_in(n, "a.b", 0, 10, 0, &i, err, sizeof err), -1);
    assert_contains(err, "not the boolean true");
    assert_int_equal(cfg_int_in(n, "a.l", 0, 10, 0, &i, err, sizeof err), -1);
    assert_contains(err, "a.l: a.l takes an integer from 0 to 10, not a list");
    double d = 0;
    assert_int_equal(cfg_num_in(n, "a.half", 0, 1, 0, &d, err, sizeof err), 0);
    assert_true(d == 0.5);
    assert_int_equal(cfg_num_in(n, "a.i", 0, 100, 0, &d, err, sizeof err), 0);
    assert_true(d == 12.0);
    assert_int_equal(cfg_num_in(n, "a.nul", 0, 1, 0.25, &d, err, sizeof err), 0);
    assert_true(d == 0.25);
    assert_int_equal(cfg_num_in(n, "a.big", 0, 1, 0, &d, err, sizeof err), -1);
    assert_contains(err, "a.big=8000000.0: a.big takes a number from 0 to 1, not 8000000.0");
    assert_int_equal(cfg_num_in(n, "a.nan", -INFINITY, INFINITY, 0, &d, err, sizeof err), -1);
    assert_contains(err, "a.nan takes a number, not .nan");
    assert_int_equal(cfg_num_in(n, "a.s", 0, 1, 0, &d, err, sizeof err), -1);
    assert_contains(err, "not the string 'text'");
    bool b = false;
    assert_int_equal(cfg_bool_strict(n, "a.b", false, &b, err, sizeof err), 0);
    assert_true(b);
    assert_int_equal(cfg_bool_strict(n, "a.missing", true, &b, err, sizeof err), 0);
    assert_true(b);
    assert_int_equal(cfg_bool_strict(n, "a.i", false, &b, err, sizeof err), -1);
    assert_contains(err, "a.i=12: a.i takes true or false, not the integer 12");
    const char *str = NULL;
    assert_int_equal(cfg_str_strict(n, "a.s", "d", &str, err, sizeof err), 0);
    assert_string_equal(str, "text");
    assert_int_equal(cfg_str_strict(n, "a.nul", "d", &str, err, sizeof err), 0);
    assert_string_equal(str, "d");
    assert_int_equal(cfg_str_strict(n, "a.i", "d", &str, err, sizeof err), -1);
    assert_contains(err, "a.i takes a string, not the integer 12");
    cfg_free(n);
}

static void test_check_ranges(void **state) {
    (void)state;
    static const cfg_check table[] = {
        CFG_CHECK_NUM("budget", 0, INFINITY, CFG_CHECK_ABOVE),
        CFG_CHECK_INT("impl.microbatch_size", 1, INT32_MAX, 0),
        CFG_CHECK_INT("seed", INT64_MIN, INT64_MAX, CFG_CHECK_NULL),
        CFG_CHECK_STR("maybe", CFG_CHECK_OPTIONAL),
        {0},
    };
    char err[512];
    cfg_node *n = parse("budget: 2\nimpl: {microbatch_size: 8}\nseed:\n");
    assert_int_equal(cfg_check_ranges(n, table, err, sizeof err), 0);
    cfg_free(n);
    n = parse("budget: -1\nimpl: {microbatch_size: 8}\nseed:\n");
    assert_int_equal(cfg_check_ranges(n, table, err, sizeof err), -1);
    assert_string_equal(err, "budget=-1: budget takes a number greater than 0, not -1");
    cfg_free(n);
    n = parse("budget: 1\nimpl: {microbatch_size: 8}\n");
    assert_int_equal(cfg_check_ranges(n, table, err, sizeof err), -1);
    assert_contains(err, "the config has no seed");
    cfg_free(n);
    n = parse("budget: 1\nimpl: {microbatch_size: 8.0}\nseed: 3\nmaybe: 2\n");
    assert_int_equal(cfg_check_ranges(n, table, err, sizeof err), -1);
    assert_contains(err, "maybe=2: maybe takes a string, not the integer 2");
    cfg_free(n);
    // the built-in tables accept what the shipped configs compose to
    assert_ptr_equal(cfg_checks_for("pretrain"), cfg_checks_pretrain);
    assert_ptr_equal(cfg_checks_for("eval"), cfg_checks_eval);
    assert_null(cfg_checks_for("plain"));
    cfg_node *r = REAL("pretrain", "seed=3");
    assert_int_equal(cfg_check_ranges(r, cfg_checks_pretrain, err, sizeof err), 0);
    cfg_node *bs = cfg_get(r, "train.batch_size");
    bs->i = 0; // a tree changed after composition, as a job might get one
    assert_int_equal(cfg_check_ranges(r, cfg_checks_pretrain, err, sizeof err), -1);
    assert_contains(err, "train.batch_size=0: train.batch_size takes an integer from 1");
    cfg_free(r);
    r = REAL("eval", "seed=3");
    assert_int_equal(cfg_check_ranges(r, cfg_checks_eval, err, sizeof err), 0);
    cfg_free(r);
}

// Every option of the groups the jobs read composes under the jobs' checks.
static void test_compose_every_option(void **state) {
    (void)state;
    static const char *const groups[][2] = {
        {"pretrain", "impl"}, {"pretrain", "data"}, {"pretrain", "train"},
        {"pretrain", "arch"}, {"eval", "eval"},     {"eval", "impl"},
    };
    const char *root = getenv("CRAM_CONFIG_PATH");
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        char cmd[1400];
        snprintf(cmd, sizeof cmd,
                 "cd '%s/%s' && find . -name '*.yaml' ! -name '_*' ! -path './sources/*' "
                 "! -path './*/*/*' | sed 's|^\\./||; s|\\.yaml$||' | sort",
                 root, groups[g][1]);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char line[256];
        int count = 0;
        while (fgets(line, sizeof line, p)) {
            line[strcspn(line, "\n")] = 0;
            if (strchr(line, '/') && strcmp(groups[g][1], "eval") == 0) continue; // sub-groups
            if (strncmp(line, "optim", 5) == 0 || strncmp(line, "tasks", 5) == 0) continue;
            char arg[300];
            snprintf(arg, sizeof arg, "%s=%s", groups[g][1], line);
            char *ov[] = {arg};
            cfg_node *r = compose_real(groups[g][0], 1, ov);
            cfg_free(r);
            count++;
        }
        pclose(p);
        assert_true(count > 0);
    }
}

static void test_override_keys_follow_yaml_rules(void **state) {
    (void)state;
    // an empty key: the YAML reader's words
    const char *yaml_msg = parse_fail("'': b\n", 6);
    assert_contains(yaml_msg, "empty key");
    const char *msg = REAL_FAIL("pretrain", "+arch.extra={: b}");
    assert_contains(msg, "cannot read the value '{: b}': empty key");
    msg = REAL_FAIL("pretrain", "+arch.extra={'': b}");
    assert_contains(msg, ": empty key");
    msg = REAL_FAIL("pretrain", "+arch.extra={a: {: 1}}");
    assert_contains(msg, ": empty key");
    msg = REAL_FAIL("pretrain", "+arch.extra=[1, {: 1}]");
    assert_contains(msg, ": empty key");
    // a key twice
    yaml_msg = parse_fail("{a: 1, a: 2}\n", 13);
    assert_contains(yaml_msg, "key 'a' appears twice");
    msg = REAL_FAIL("pretrain", "+arch.extra={a: 1, a: 2}");
    assert_contains(msg, "cannot read the value '{a: 1, a: 2}': key 'a' appears twice");
    // quoted keys lose their quotes, as in YAML; a ':' inside them is part of the key
    cfg_node *r = REAL("pretrain", "+arch.extra={'a b': 1, \"c:d\": x, e.f: [1, 2]}");
    cfg_node *e = cfg_get(r, "arch.extra");
    assert_int_equal(e->n, 3);
    assert_string_equal(e->keys[0], "a b");
    assert_string_equal(e->keys[1], "c:d");
    check_str(e->items[1], "x");
    assert_string_equal(e->keys[2], "e.f");
    cfg_node *y = parse("{'a b': 1, \"c:d\": x, e.f: [1, 2]}\n");
    char *ja = cfg_canonical_json(e), *jb = cfg_canonical_json(y);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
    cfg_free(y);
    // what the command line makes, written out, reads back the same
    yaml_roundtrip(r);
    cfg_free(r);
}

static void test_compose_group_messages(void **state) {
    (void)state;
    const char *msg = REAL_FAIL("pretrain", "arch=crammed-bert", "arch=hf-bert-tiny");
    assert_contains(msg, "arch=crammed-bert and arch=hf-bert-tiny: the group arch is chosen twice");
    assert_not_contains(msg, "no 'arch' in its defaults");
    msg = REAL_FAIL("pretrain", "data=kjv", "data=nope");
    assert_contains(msg, "unknown option 'nope' for data");
    assert_contains(msg, "kjv");
    assert_not_contains(msg, "no 'data' in its defaults");
    msg = REAL_FAIL("pretrain", "train/optim=adam", "+train/optim=adam");
    assert_contains(msg, "chosen twice");
    msg = REAL_FAIL("eval", "eval/tasks=[rte,nope]");
    assert_contains(msg, "unknown option 'nope' for eval/tasks");
    // a group that the defaults list lacks still says how to add it
    msg = REAL_FAIL("eval", "arch=crammed-bert");
    assert_contains(msg, "no 'arch' in its defaults; write +arch=crammed-bert");
}

static void test_compose_cut_files(void **state) {
    (void)state;
    tmp_tree t;
    tmp_tree_init(&t);
    cfg_error err;
    // an empty primary file (or one with comments only) says so
    tmp_write(&t, "pretrain.yaml", "");
    char *name[] = {"name=x"};
    assert_null(tmp_compose(&t, true, "pretrain", 1, name, &err));
    assert_int_equal(err.code, 2);
    assert_contains(err.msg, "/pretrain.yaml: the file is empty");
    assert_not_contains(err.msg, "unknown key");
    tmp_write(&t, "pretrain.yaml", "# nothing but a comment\n\n");
    assert_null(tmp_compose(&t, true, "pretrain", 0, NULL, &err));
    assert_contains(err.msg, "the file is empty");
    // and so does an empty option file
    tmp_write(&t, "pretrain.yaml", "{}\n");
    tmp_write(&t, "arch/hollow.yaml", "\n");
    tmp_write(&t, "withgroup.yaml", "defaults:\n  - arch: hf-bert-tiny\n");
    char *hollow[] = {"arch=hollow"};
    assert_null(tmp_compose(&t, true, "withgroup", 1, hollow, &err));
    assert_contains(err.msg, "arch/hollow.yaml: the file is empty");
    // {} is an empty config on purpose; no job table for another primary
    tmp_write(&t, "other.yaml", "{}\n");
    cfg_node *r = tmp_compose(&t, true, "other", 0, NULL, &err);
    if (!r) fail_msg("%s", err.msg);
    cfg_free(r);
    tmp_tree_free(&t);

    // a primary cut after its defaults list: the missing keys name the file
    tmp_tree_init(&t);
    tmp_cut(&t, "pretrain.yaml", "base_dir:");
    assert_null(tmp_compose(&t, true, "pretrain", 0, NULL, &err));
    assert_contains(err.msg, "the composed pretrain config has no name, which cram reads");
    assert_contains(err.msg, t.dir);
    assert_contains(err.msg, "/pretrain.yaml (is a file cut short?)");
    tmp_tree_free(&t);
    // impl/_default.yaml cut before microbatch_size: the message names the impl files
    tmp_tree_init(&t);
    tmp_cut(&t, "impl/_default.yaml", "microbatch_size:");
    assert_null(tmp_compose(&t, true, "pretrain", 0, NULL, &err));
    assert_contains(err.msg, "has no impl.microbatch_size");
    assert_contains(err.msg, "impl/_default.yaml");
    assert_contains(err.msg, "impl/torch-default.yaml");
    assert_null(tmp_compose(&t, true, "eval", 0, NULL, &err));
    assert_contains(err.msg, "the composed eval config has no impl.microbatch_size");
    tmp_tree_free(&t);
    // a train file cut short
    tmp_tree_init(&t);
    tmp_cut(&t, "train/bert-base.yaml", "warmup_steps:");
    assert_null(tmp_compose(&t, true, "pretrain", 0, NULL, &err));
    assert_contains(err.msg, "train/bert-base.yaml (is a file cut short?)");
    tmp_tree_free(&t);
    // keys taken away on the command line
    const char *msg = REAL_FAIL("pretrain", "~impl.threads");
    assert_contains(msg, "~impl.threads removes impl.threads, which cram reads");
    msg = REAL_FAIL("pretrain", "~train.objective");
    assert_contains(msg, "~train.objective removes train.objective.name");
    msg = REAL_FAIL("pretrain", "impl=null");
    assert_contains(msg, "impl=null leaves out the group impl, but cram reads impl.");
}

// ---- composition with the fixture tree -------------------------------------------------------

static void test_fixture_cycle_and_missing(void **state) {
    (void)state;
    const char *msg = compose_fix_fail("cycle", 0, NULL);
    assert_contains(msg, "cycle");
    msg = compose_fix_fail("missing", 0, NULL);
    assert_contains(msg, "model.depth: ${model.dpth} refers to a missing key");
    assert_contains(msg, "did you mean ${model.depth}?");
    msg = compose_fix_fail("resolver", 0, NULL);
    assert_contains(msg, "unknown resolver in ${oc.decode:abc}");
    // a cycle made on the command line
    msg = FIX_FAIL("plain", "lr=${ref}");
    assert_contains(msg, "cycle");
}

static void test_fixture_type_mismatch(void **state) {
    (void)state;
    char first[1200], mism[1200], second[1200];
    snprintf(first, sizeof first, "%s/num/first.yaml:1", fixture_dir);
    snprintf(mism, sizeof mism, "%s/mismatch.yaml:7", fixture_dir);
    snprintf(second, sizeof second, "%s/num/second.yaml:1", fixture_dir);
    const char *msg = compose_fix_fail("mismatch", 0, NULL);
    assert_contains(msg, mism);
    assert_contains(msg, first);
    assert_contains(msg, "num.value is an integer");
    assert_contains(msg, "the string 'abc'");
    msg = compose_fix_fail("mismatch_multi", 0, NULL);
    assert_contains(msg, second);
    assert_contains(msg, first);
    assert_contains(msg, "the string 'text'");
    // the command line is checked against the file that declared the key
    msg = FIX_FAIL("plain", "steps=many");
    assert_contains(msg, "steps takes an integer");
    assert_contains(msg, "plain.yaml:7");
    // a whole number may replace an integer (and becomes one), any number a number, and null
    // anything; an integer key refuses a fraction
    cfg_node *r = FIX("plain", "steps=2.5e1", "lr=null", "flag=null", "nothing=[1]");
    check_int(cfg_get(r, "steps"), 25);
    assert_int_equal(cfg_get(r, "lr")->type, CFG_NULL);
    assert_int_equal(cfg_get(r, "ref")->type, CFG_NULL);
    check_str(cfg_get(r, "text"), "lr=None, steps=25");
    cfg_free(r);
    msg = FIX_FAIL("plain", "steps=2.5");
    assert_contains(msg, "steps=2.5: steps takes an integer");
    assert_contains(msg, "plain.yaml:7");
    assert_contains(msg, "not the fraction 2.5");
}

static void test_fixture_self_placement(void **state) {
    (void)state;
    cfg_node *first = compose_fix_ok("self_first", 0, NULL);
    check_str(cfg_get(first, "opt.x"), "from_a");
    check_int(cfg_get(first, "opt.y"), 1);
    check_int(cfg_get(first, "opt.only_self"), 1);
    assert_string_equal(cfg_get(first, "opt")->keys[0], "x"); // self came first
    assert_string_equal(cfg_get(first, "opt")->keys[1], "only_self");
    cfg_free(first);
    cfg_node *last = compose_fix_ok("self_last", 0, NULL);
    check_str(cfg_get(last, "opt.x"), "self");
    check_int(cfg_get(last, "opt.y"), 1);
    assert_string_equal(cfg_get(last, "opt")->keys[1], "y"); // group file came first
    cfg_free(last);
    cfg_node *impl = compose_fix_ok("self_implicit", 0, NULL);
    check_str(cfg_get(impl, "opt.x"), "self");
    cfg_free(impl);
    // choosing another option keeps _self_ on top
    cfg_node *b = FIX("self_last", "opt=b");
    check_str(cfg_get(b, "opt.x"), "self");
    check_int(cfg_get(b, "opt.y"), 2);
    cfg_free(b);
    cfg_node *bf = FIX("self_first", "opt=b");
    check_str(cfg_get(bf, "opt.x"), "from_b");
    cfg_free(bf);
    // a keyless entry merges a same-group file (_base) before the option's own keys
    cfg_node *u = compose_fix_ok("underscore", 0, NULL);
    check_str(cfg_get(u, "sub.x"), "one");
    check_int(cfg_get(u, "sub.shared"), 1);
    cfg_free(u);
    cfg_node *u2 = FIX("underscore", "sub=two");
    check_str(cfg_get(u2, "sub.x"), "two");
    assert_null(cfg_get(u2, "sub.shared"));
    cfg_free(u2);
}

static void test_fixture_multi_and_optional(void **state) {
    (void)state;
    cfg_node *m = compose_fix_ok("multi", 0, NULL);
    cfg_node *tasks = cfg_get(m, "tasks");
    assert_int_equal(tasks->n, 2);
    assert_string_equal(tasks->keys[0], "t2"); // list order
    assert_string_equal(tasks->keys[1], "t1");
    check_int(cfg_get(m, "tasks.t1.n"), 10); // the file's own keys win
    check_str(cfg_get(m, "tasks.t1.name"), "first");
    cfg_free(m);
    cfg_node *m2 = FIX("multi", "tasks=t2");
    tasks = cfg_get(m2, "tasks");
    assert_int_equal(tasks->n, 2); // t2, then the file's own tasks.t1.n
    assert_null(cfg_get(m2, "tasks.t1.name"));
    cfg_free(m2);
    cfg_node *m3 = FIX("multi", "tasks=[]");
    assert_null(cfg_get(m3, "tasks.t2"));
    cfg_free(m3);

    cfg_node *o = compose_fix_ok("optional", 0, NULL);
    assert_null(cfg_get(o, "opt.x")); // not_there was skipped
    check_int(cfg_get(o, "tasks.t1.n"), 1);
    check_bool(cfg_get(o, "kept"), true);
    cfg_free(o);
    const char *msg = compose_fix_fail("required", 0, NULL);
    assert_contains(msg, "unknown option 'not_there' for opt");
    assert_contains(msg, "a, b");
}

static void test_fixture_malformed_files(void **state) {
    (void)state;
    char want[1200];
    const char *msg = compose_fix_fail("malformed", 0, NULL);
    snprintf(want, sizeof want, "%s/malformed.yaml:4:", fixture_dir);
    assert_contains(msg, want);
    assert_contains(msg, "malformed YAML");
    msg = compose_fix_fail("pulls_bad", 0, NULL);
    snprintf(want, sizeof want, "%s/bad/broken.yaml:3:1:", fixture_dir);
    assert_contains(msg, want);
    msg = compose_fix_fail("selfloop", 0, NULL);
    assert_contains(msg, "nest deeper");
    msg = compose_fix_fail("nosuchprimary", 0, NULL);
    assert_contains(msg, "no config nosuchprimary.yaml");
}

static void test_fixture_overrides(void **state) {
    (void)state;
    cfg_node *r =
        FIX("plain", "lr=0.125", "nested.deep.key=5", "+nested.deep.other=x", "opt=b", "opt.y=3");
    check_float(cfg_get(r, "lr"), 0.125);
    check_float(cfg_get(r, "ref"), 0.125);
    check_str(cfg_get(r, "text"), "lr=0.125, steps=10");
    check_int(cfg_get(r, "nested.deep.key"), 5);
    check_str(cfg_get(r, "nested.deep.other"), "x");
    check_str(cfg_get(r, "opt.x"), "from_b");
    check_int(cfg_get(r, "opt.y"), 3);
    cfg_free(r);
    // the last of two overrides of one key wins
    cfg_node *r2 = FIX("plain", "lr=1", "lr=2");
    check_float(cfg_get(r2, "lr"), 2.0);
    cfg_free(r2);
    const char *msg = FIX_FAIL("plain", "nested.deep.kye=1");
    assert_contains(msg, "did you mean nested.deep.key?");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_numbers),
        cmocka_unit_test(test_scalar_bool_null),
        cmocka_unit_test(test_yaml_scalars_in_document),
        cmocka_unit_test(test_yaml_lists_and_maps),
        cmocka_unit_test(test_yaml_duplicate_and_bad_keys),
        cmocka_unit_test(test_yaml_malformed_positions),
        cmocka_unit_test(test_yaml_nul_bytes),
        cmocka_unit_test(test_yaml_deep_nesting),
        cmocka_unit_test(test_yaml_alias_bombs),
        cmocka_unit_test(test_format_float),
        cmocka_unit_test(test_format_float_roundtrip_random),
        cmocka_unit_test(test_write_yaml_roundtrip_composed),
        cmocka_unit_test(test_write_yaml_roundtrip_awkward),
        cmocka_unit_test(test_write_yaml_refuses_bad_text),
        cmocka_unit_test(test_canonical_and_hash),
        cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_or_getters),
        cmocka_unit_test(test_node_basics),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_compose_issue_example),
        cmocka_unit_test(test_compose_pretrain_defaults),
        cmocka_unit_test(test_compose_self_order),
        cmocka_unit_test(test_compose_eval_defaults),
        cmocka_unit_test(test_compose_eval_tasks_override),
        cmocka_unit_test(test_compose_arch_variants),
        cmocka_unit_test(test_compose_interpolation_follows_override),
        cmocka_unit_test(test_compose_add_and_delete),
        cmocka_unit_test(test_compose_typed_overrides),
        cmocka_unit_test(test_compose_unknown_key),
        cmocka_unit_test(test_compose_unknown_option),
        cmocka_unit_test(test_compose_nested_group_override),
        cmocka_unit_test(test_compose_group_add),
        cmocka_unit_test(test_compose_override_syntax),
        cmocka_unit_test(test_compose_override_encoding),
        cmocka_unit_test(test_compose_no_config),
        cmocka_unit_test(test_compose_integer_keys),
        cmocka_unit_test(test_compose_integer_keys_in_files),
        cmocka_unit_test(test_strict_getters),
        cmocka_unit_test(test_check_ranges),
        cmocka_unit_test(test_compose_every_option),
        cmocka_unit_test(test_override_keys_follow_yaml_rules),
        cmocka_unit_test(test_compose_group_messages),
        cmocka_unit_test(test_compose_cut_files),
        cmocka_unit_test(test_fixture_cycle_and_missing),
        cmocka_unit_test(test_fixture_type_mismatch),
        cmocka_unit_test(test_fixture_self_placement),
        cmocka_unit_test(test_fixture_multi_and_optional),
        cmocka_unit_test(test_fixture_malformed_files),
        cmocka_unit_test(test_fixture_overrides),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
