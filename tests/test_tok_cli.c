/* `cram tokenizer train|encode` through tok_cli_main: exit codes (0 ok, 1 runtime, 2 usage),
 * the files train writes, and what encode prints. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tok/tok.h"

static char g_dir[64];

static int run(const char *const *args, char *out, size_t outcap) {
    char *argv[32];
    int argc = 0;
    for (; args[argc]; argc++)
        argv[argc] = strdup(args[argc]);
    argv[argc] = NULL;
    char path[128];
    snprintf(path, sizeof(path), "%s/stdout.txt", g_dir);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    dup2(fd, 1);
    close(fd);
    int rc = tok_cli_main(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    if (out) {
        FILE *f = fopen(path, "rb");
        size_t n = fread(out, 1, outcap - 1, f);
        out[n] = 0;
        fclose(f);
    }
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return rc;
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/cram_tokcli_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char p[128];
    snprintf(p, sizeof(p), "%s/a.txt", g_dir);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < 200; i++)
        fprintf(f,
                "The quick brown fox jumps over the lazy dog %d times. Caf\xc3\xa9 na\xc3\xafve "
                "fa\xc3\xa7"
                "ade!\n",
                i);
    fclose(f);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_usage_errors(void **state) {
    (void)state;
    const char *a1[] = {"tokenizer", NULL};
    assert_int_equal(run(a1, NULL, 0), 2);
    const char *a2[] = {"tokenizer", "frobnicate", NULL};
    assert_int_equal(run(a2, NULL, 0), 2);
    const char *a3[] = {"tokenizer", "train", "files=x", NULL};
    assert_int_equal(run(a3, NULL, 0), 2);
    const char *a4[] = {"tokenizer", "train", "files=x", "out=y", "vocab_size=abc", NULL};
    assert_int_equal(run(a4, NULL, 0), 2);
    const char *a5[] = {"tokenizer", "encode", "nonsense", NULL};
    assert_int_equal(run(a5, NULL, 0), 2);
    const char *a6[] = {"tokenizer", "encode", "tokenizer=/nonexistent/dir", "text=hi", NULL};
    assert_int_equal(run(a6, NULL, 0), 1);
    const char *a7[] = {"tokenizer", "train", "files=/nonexistent.txt", "out=/tmp/x", NULL};
    assert_int_equal(run(a7, NULL, 0), 1);
}

static void test_train_encode(void **state) {
    (void)state;
    char files[128], out[128], tokarg[140], buf[4096];
    snprintf(files, sizeof(files), "files=%s/a.txt", g_dir);
    snprintf(out, sizeof(out), "out=%s/tok", g_dir);
    const char *tr[] = {"tokenizer",           "train",     files, out, "vocab_size=120",
                        "tokenizer=WordPiece", "threads=2", NULL};
    assert_int_equal(run(tr, NULL, 0), 0);
    const char *names[] = {"tokenizer.json", "vocab.txt", "tokenizer_config.json",
                           "special_tokens_map.json"};
    for (int i = 0; i < 4; i++) {
        char p[192];
        struct stat st;
        snprintf(p, sizeof(p), "%s/tok/%s", g_dir, names[i]);
        assert_int_equal(stat(p, &st), 0);
    }
    snprintf(tokarg, sizeof(tokarg), "tokenizer=%s/tok", g_dir);
    const char *en[] = {"tokenizer", "encode", tokarg, "text=The Caf\xc3\xa9 fox", NULL};
    assert_int_equal(run(en, buf, sizeof(buf)), 0);
    assert_non_null(strstr(buf, "tokens: the"));
    assert_non_null(strstr(buf, "<sep>"));
    assert_non_null(strstr(buf, "ids: "));
    /* a vocabulary smaller than the alphabet cannot be reached: runtime error, files still written
     */
    const char *small[] = {"tokenizer", "train", files, out, "vocab_size=8", NULL};
    assert_int_equal(run(small, NULL, 0), 1);
    /* BPE */
    const char *bpe[] = {"tokenizer", "train", files, out, "vocab_size=100", "tokenizer=BPE", NULL};
    assert_int_equal(run(bpe, NULL, 0), 0);
    const char *en2[] = {"tokenizer", "encode", tokarg, "text=quick fox", "special=false", NULL};
    assert_int_equal(run(en2, buf, sizeof(buf)), 0);
    assert_non_null(strstr(buf, "tokens: \xc4\xa0"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_train_encode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
