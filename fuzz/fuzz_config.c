// libFuzzer target for src/config: YAML reading, writing and reading back, the canonical form,
// interpolation, and composition with command-line overrides.
//
// The input is split at its first NUL byte: the part before is a YAML text, the part after holds
// overrides, one per line. Without a NUL, the lines of the whole input are also tried as
// overrides. The YAML text is
//   1. parsed, written back as YAML (which must read back to the same tree: anything else is a
//      bug and aborts), hashed, looked up with every getter (the strict ones included) and
//      resolved;
//   2. composed as a primary config ("fuzzin") and as a group option (g=fz) next to the small
//      fixture tree tests/fixtures/config/fuzz/, with the overrides applied. Every composed tree
//      must make the round trip compose -> write YAML -> read back -> the same tree, both read
//      as a YAML document and composed again as a primary config of its own (what a run folder's
//      config.yaml and model_config.json go through).
// The fixture folder is $CRAM_FUZZ_CONFIG_DIR, else tests/fixtures/config/fuzz below the working
// directory or below the parent of the folder holding the fuzzer.
//
//   CC=clang cmake -S . -B build-fuzz -DCRAM_FUZZ=ON -DCRAM_CUDA=OFF
//   cmake --build build-fuzz --target fuzz_config
//   ./build-fuzz/fuzz_config -max_total_time=600 fuzz-corpus-config fuzz/corpus/config
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

#define MAX_OVERRIDES 12
#define MAX_OVERRIDE_LEN 512

static cfg_search search;
static char in_primary[PATH_MAX]; // <tmp>/fuzzin.yaml
static char in_group[PATH_MAX];   // <tmp>/g/fz.yaml
static char tmp_root[PATH_MAX];
static char back_dir[PATH_MAX];  // <tmp>/rt: holds back.yaml, a composed tree written out
static char back_file[PATH_MAX]; // <tmp>/rt/back.yaml
static cfg_search back_search;
static bool ready;

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void remove_tmp(void) {
    unlink(in_primary);
    unlink(in_group);
    unlink(back_file);
    rmdir(back_dir);
    char g[PATH_MAX + 8];
    snprintf(g, sizeof g, "%s/g", tmp_root);
    rmdir(g);
    rmdir(tmp_root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char dir[PATH_MAX] = "";
    const char *env = getenv("CRAM_FUZZ_CONFIG_DIR");
    if (env && is_dir(env)) {
        snprintf(dir, sizeof dir, "%s", env);
    } else if (is_dir("tests/fixtures/config/fuzz")) {
        snprintf(dir, sizeof dir, "tests/fixtures/config/fuzz");
    } else if (*argc > 0) {
        char exe[PATH_MAX];
        snprintf(exe, sizeof exe, "%s", (*argv)[0]);
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(exe, sizeof exe, ".");
        snprintf(dir, sizeof dir, "%.3000s/../tests/fixtures/config/fuzz", exe);
    }
    if (!is_dir(dir)) {
        fprintf(stderr, "fuzz_config: fixture folder not found; set CRAM_FUZZ_CONFIG_DIR\n");
        abort();
    }
    // the YAML text is written to a file on every run: prefer memory to disk
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir) tmpdir = is_dir("/dev/shm") ? "/dev/shm" : "/tmp";
    snprintf(tmp_root, sizeof tmp_root, "%.4000s/cram-fuzz-XXXXXX", tmpdir);
    if (!mkdtemp(tmp_root)) {
        perror("fuzz_config: mkdtemp");
        abort();
    }
    char g[PATH_MAX + 8];
    snprintf(g, sizeof g, "%s/g", tmp_root);
    if (mkdir(g, 0700) != 0) {
        perror("fuzz_config: mkdir");
        abort();
    }
    snprintf(back_dir, sizeof back_dir, "%.4000s/rt", tmp_root);
    if (mkdir(back_dir, 0700) != 0) {
        perror("fuzz_config: mkdir");
        abort();
    }
    snprintf(back_file, sizeof back_file, "%.4000s/back.yaml", back_dir);
    cfg_search_init(&back_search);
    if (cfg_search_add(&back_search, back_dir)) abort();
    snprintf(in_primary, sizeof in_primary, "%.4000s/fuzzin.yaml", tmp_root);
    snprintf(in_group, sizeof in_group, "%.4000s/g/fz.yaml", tmp_root);
    atexit(remove_tmp);
    cfg_search_init(&search);
    if (cfg_search_add(&search, tmp_root) || cfg_search_add(&search, dir)) abort();
    ready = true;
    return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

// Writes the tree, reads it back and insists on the same canonical form.
static void check_roundtrip(const cfg_node *root) {
    char *text = cfg_to_yaml(root);
    if (!text) return; // the emitter refused (reported as an error, not a crash)
    char *mem = NULL;
    size_t memlen = 0;
    FILE *f = open_memstream(&mem, &memlen);
    if (!f) abort();
    int rc = cfg_write_yaml(root, f);
    fclose(f);
    if (rc != 0 || strcmp(mem, text) != 0) {
        fprintf(stderr, "cfg_write_yaml and cfg_to_yaml disagree\n");
        abort();
    }
    free(mem);
    cfg_error err = {0};
    cfg_node *back = cfg_parse_yaml(text, strlen(text), "written", &err);
    if (!back) {
        fprintf(stderr, "written YAML does not read back: %s\n---\n%s\n---\n", err.msg, text);
        abort();
    }
    char *a = cfg_canonical_json(root), *b = cfg_canonical_json(back);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "YAML round trip changed the tree:\n%s\n%s\n---\n%s\n---\n", a, b, text);
        abort();
    }
    free(a);
    free(b);
    cfg_free(back);
    free(text);
}

// Whether a composed tree, written out, composes back as itself: not when its top level has a
// defaults list, or a string holds "${" (an escaped \${...} in a value), since composition
// reads those.
static bool composes_back(const cfg_node *n, int depth) {
    if (n->type == CFG_STR) return !strstr(n->s, "${");
    for (int k = 0; k < n->n; k++) {
        if (depth == 0 && n->keys && strcmp(n->keys[k], "defaults") == 0) return false;
        if (!composes_back(n->items[k], depth + 1)) return false;
    }
    return true;
}

// The written tree composed again as a primary config, with no overrides: the same tree.
static void check_compose_roundtrip(const cfg_node *root) {
    if (root->type != CFG_MAP || !composes_back(root, 0)) return;
    char *text = cfg_to_yaml(root);
    if (!text) return;
    write_file(back_file, (const uint8_t *)text, strlen(text));
    cfg_error err = {0};
    cfg_node *back = cfg_compose(&back_search, "back", 0, NULL, &err);
    if (!back) {
        fprintf(stderr, "a written config does not compose back: %s\n---\n%s\n---\n", err.msg,
                text);
        abort();
    }
    char *a = cfg_canonical_json(root), *b = cfg_canonical_json(back);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "composing a written config changed it:\n%s\n%s\n---\n%s\n---\n", a, b,
                text);
        abort();
    }
    free(a);
    free(b);
    cfg_free(back);
    free(text);
}

// The strict getters on any key: a value or a message, never anything else.
static void strict_getters(const cfg_node *root, const char *path) {
    char msg[512];
    int64_t i;
    double d;
    bool b;
    const char *s;
    msg[0] = 0;
    if (cfg_int_in(root, path, 1, INT32_MAX, 7, &i, msg, sizeof msg) != 0 && !msg[0]) abort();
    if (cfg_int_in(root, path, INT64_MIN, INT64_MAX, 0, &i, msg, sizeof msg) == 0) {
        const cfg_node *n = cfg_get(root, path);
        // a whole number or the default, and the same value cfg_int_or gives
        if (n && n->type != CFG_NULL && cfg_int_or(root, path, 0) != i) abort();
    }
    msg[0] = 0;
    if (cfg_num_in(root, path, 0, 1, 0.5, &d, msg, sizeof msg) != 0 && !msg[0]) abort();
    if (cfg_num_in(root, path, 0, 1, 0.5, &d, msg, sizeof msg) == 0 && !(d >= 0 && d <= 1)) abort();
    (void)cfg_bool_strict(root, path, false, &b, msg, sizeof msg);
    (void)cfg_str_strict(root, path, "", &s, msg, sizeof msg);
    (void)cfg_int_or(root, path, 0);
}

static void exercise_tree(cfg_node *root) {
    check_roundtrip(root);
    char hex[17];
    cfg_hash_hex(root, hex);
    int np = 0;
    char **paths = cfg_all_paths(root, &np);
    cfg_error err = {0};
    for (int k = 0; k < np && k < 8; k++) {
        double d;
        int64_t i;
        bool b;
        const char *s;
        (void)cfg_get(root, paths[k]);
        (void)cfg_get_num(root, paths[k], &d, &err);
        (void)cfg_get_int(root, paths[k], &i, &err);
        (void)cfg_get_bool(root, paths[k], &b, &err);
        (void)cfg_get_str(root, paths[k], &s, &err);
        strict_getters(root, paths[k]);
    }
    char msg[512];
    (void)cfg_check_ranges(root, cfg_checks_pretrain, msg, sizeof msg);
    (void)cfg_check_ranges(root, cfg_checks_eval, msg, sizeof msg);
    if (np) (void)cfg_closest(paths[np - 1], paths, np);
    for (int k = 0; k < np; k++)
        free(paths[k]);
    free(paths);
    cfg_node *copy = cfg_clone(root);
    if (cfg_resolve(copy, &err) == 0) check_roundtrip(copy);
    cfg_free(copy);
}

static void compose(const char *primary, int n, char **ov, const char *extra) {
    char *args[MAX_OVERRIDES + 1];
    int na = 0;
    if (extra) args[na++] = (char *)extra;
    for (int k = 0; k < n; k++)
        args[na++] = ov[k];
    cfg_error err = {0};
    cfg_node *root = cfg_compose(&search, primary, na, args, &err);
    if (!root) {
        if (err.code != 1 && err.code != 2) abort(); // every failure carries a message and code
        return;
    }
    check_roundtrip(root);
    check_compose_roundtrip(root);
    cfg_free(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ready) return 0;
    const uint8_t *nul = memchr(data, 0, size);
    size_t ylen = nul ? (size_t)(nul - data) : size;

    // 1. the YAML text on its own
    cfg_error err = {0};
    cfg_node *root = cfg_parse_yaml((const char *)data, ylen, "fuzz.yaml", &err);
    if (root) {
        exercise_tree(root);
        cfg_free(root);
    } else if (err.code != 1 && err.code != 2) {
        abort();
    }

    // 2. overrides: the lines after the NUL, or else the lines of the whole input
    const uint8_t *ob = nul ? nul + 1 : data;
    size_t olen = nul ? size - ylen - 1 : size;
    char *ov[MAX_OVERRIDES];
    int nov = 0;
    size_t start = 0;
    for (size_t k = 0; k <= olen && nov < MAX_OVERRIDES; k++) {
        if (k == olen || ob[k] == '\n' || ob[k] == 0) {
            size_t len = k - start;
            if (len > 0 && len <= MAX_OVERRIDE_LEN) {
                ov[nov] = malloc(len + 1);
                memcpy(ov[nov], ob + start, len);
                ov[nov][len] = 0;
                nov++;
            }
            start = k + 1;
        }
    }

    // 3. composition: the fixture primary with the overrides, and the YAML text as a primary
    //    config and as the option g=fz of the fixture's group g
    write_file(in_primary, data, ylen);
    write_file(in_group, data, ylen);
    compose("fuzz", nov, ov, NULL);
    if (nul) {
        compose("fuzzin", nov, ov, NULL);
        compose("fuzz", nov, ov, "g=fz");
    } else {
        compose("fuzzin", 0, ov, NULL);
        compose("fuzz", 0, ov, "g=fz");
    }
    for (int k = 0; k < nov; k++)
        free(ov[k]);
    return 0;
}
