/* End-to-end tests of the pretraining loop on a tiny crammed-bert (2 layers, H=64) and a small
 * real-text corpus (tests/fixtures/tok/corpus.txt.zst, 1 MB: KJV, fortunes, ...): the dryrun, the
 * run outputs, the loss falling, and exact resume (straight run vs. stopped by a signal between
 * two updates and resumed, and vs. resumed from a periodic state): the logged losses and the
 * final weights must agree bit for bit, on every backend row (fp32 and bf16 CPU, CUDA when a GPU
 * is usable). Everything is written under a fresh mkdtemp folder,
 * which is also the working directory (the summary table goes to ./tables). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "core/core.h"
#include "ops/backend.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "train/train.h"
#include "train/train_report.h"
#include "train/trainstate.h"

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[256];
static char corpus[CORE_PATH_MAX + 64];
static char launch_dir[CORE_PATH_MAX];

#define MAXSTEPS 256

/* The backend rows the loop tests run on (backend_row's order): fp32 CPU, the bf16-emulating
 * CPU backend, and CUDA in fp32 and bf16 when a GPU is usable. run() adds the row's impl
 * overrides and suffixes run names with it. */
enum { NROWS = 4 };
static const char *const row_args[NROWS][2] = {{"impl.precision=fp32", "impl.device=cpu"},
                                               {"impl.precision=bf16", "impl.device=cpu"},
                                               {"impl.precision=fp32", "impl.device=cuda"},
                                               {"impl.precision=bf16", "impl.device=cuda"}};
static const char *const row_suffix[NROWS] = {"", "-bf16", "-cuda", "-cuda-bf16"};
static int g_row;

static bool row_ok(int k) {
    char why[256];
    const ops *o = backend_row(k, why, sizeof why);
    if (!o && why[0]) printf("%s\n", why);
    if (o) printf("# backend row %s\n", o->name);
    return o != NULL;
}
#define FOR_EACH_ROW                                                                               \
    for (g_row = 0; g_row < NROWS; g_row++)                                                        \
        if (row_ok(g_row))

/* name with the row's suffix (a few live at once: a ring of buffers) */
static const char *rn(const char *name) {
    static char buf[8][160];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s%s", name, row_suffix[g_row]);
    return b;
}
static const char *rpath(const char *fmt, const char *name) {
    static char buf[8][CORE_PATH_MAX];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], fmt, rn(name));
    return b;
}

typedef struct {
    double loss[MAXSTEPS + 1];
    int64_t raise_at;      /* raise SIGTERM after this step (0: never) */
    int64_t copy_state_at; /* copy the intermediate state aside after this step (0: never) */
    char state[CORE_PATH_MAX], backup[CORE_PATH_MAX + 8];
} recorder;

static void after_step(void *ctx, int64_t step, double loss) {
    recorder *r = ctx;
    if (step <= MAXSTEPS) r->loss[step] = loss;
    if (r->raise_at && step == r->raise_at) raise(SIGTERM);
    if (r->copy_state_at && step == r->copy_state_at) {
        char cmd[3 * CORE_PATH_MAX];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", r->state, r->backup);
        assert_int_equal(system(cmd), 0);
    }
}

/* Compose the tiny job with extra overrides (NULL-terminated) and run it. */
static int run(const char *name, recorder *rec, train_result *res, ...) {
    char *args[64];
    int n = 0;
    static char a_path[CORE_PATH_MAX + 128], a_name[128];
    snprintf(a_path, sizeof a_path, "data.sources.kjv.path=%s", corpus);
    snprintf(a_name, sizeof a_name, "name=%s", rn(name));
    const char *fixed[] = {a_name,
                           "data=kjv",
                           "data.vocab_size=2000",
                           "data.validation_seqs=64",
                           a_path,
                           "impl.path=data",
                           "base_dir=outputs",
                           "arch=crammed-bert",
                           "arch.num_transformer_layers=2",
                           "arch.hidden_size=64",
                           "arch.intermed_size=256",
                           "arch.attention.num_attention_heads=4",
                           "train=bert-o4",
                           "impl=cpu",
                           "impl.threads=1",
                           "impl.microbatch_size=8",
                           "train.batch_size_quantum=8",
                           "budget=1000",
                           "seed=1234"};
    for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++)
        args[n++] = (char *)fixed[k];
    args[n++] = (char *)row_args[g_row][0];
    args[n++] = (char *)row_args[g_row][1];
    va_list ap;
    va_start(ap, res);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL)
        args[n++] = (char *)a;
    va_end(ap);
    cfg_error ce = {0};
    cfg_node *cfg = cfg_from_args("pretrain", n, args, &ce);
    if (!cfg) fail_msg("config: %s", ce.msg);
    train_hooks hooks = {.ctx = rec, .after_step = after_step};
    train_opts opts = {.hooks = rec ? &hooks : NULL, .argc = n, .argv = args};
    int rc = train_run(cfg, &opts, res);
    cfg_free(cfg);
    return rc;
}

static bool files_equal(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    char err[256];
    if (core_read_file(a, &x, &nx, err, sizeof err) || core_read_file(b, &y, &ny, err, sizeof err))
        fail_msg("%s", err);
    bool same = nx == ny && memcmp(x, y, nx) == 0;
    free(x), free(y);
    return same;
}

static bool exists(const char *dir, const char *file) {
    char p[2 * CORE_PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return access(p, F_OK) == 0;
}

static void test_dryrun(void **state) {
    (void)state;
    train_result res;
    assert_int_equal(run("dry", NULL, &res, "dryrun=True", NULL), 0);
    assert_int_equal(res.stop, TRAIN_STOP_DRYRUN);
    assert_int_equal(res.step, 3);
    assert_string_equal(res.checkpoint_dir, "");
    assert_true(exists(res.run_dir, "config.yaml"));
    assert_true(exists(res.run_dir, "dry_pretrain.log"));
    assert_false(exists("outputs/dry", "intermediate_state.bin"));
    assert_false(exists("tables", "table_pretrain_reports.csv"));
    assert_true(isfinite(res.val_loss));
}

/* The loss of the tiny model falls on real text: 120 updates of 8 rows, lr 4e-3 x 0.25. */
static void loss_falls(void) {
    recorder *rec = calloc(1, sizeof *rec);
    train_result res;
    assert_int_equal(run("falls", rec, &res, "train.steps=120", "train.optim.lr=4e-3",
                         "impl.print_loss_every_nth_step=20", NULL),
                     0);
    assert_int_equal(res.stop, TRAIN_STOP_STEPS);
    double first = 0, last = 0;
    for (int k = 1; k <= 10; k++)
        first += rec->loss[k] / 10, last += rec->loss[110 + k] / 10;
    printf("loss: first 10 steps %.4f, last 10 steps %.4f; validation %.4f (acc %.3f)\n", first,
           last, res.val_loss, res.val_acc);
    assert_true(first > 7.0);        /* about ln(2000) = 7.6 at the start */
    assert_true(last < first - 1.0); /* and clearly lower after 120 steps */
    assert_true(res.val_loss < first - 1.0);
    assert_true(res.checkpoint_dir[0] != '\0');
    assert_true(exists(res.checkpoint_dir, "model.safetensors"));
    assert_true(exists(res.checkpoint_dir, "model_config.json"));
    assert_true(exists(res.checkpoint_dir, "tokenizer.json"));
    assert_true(exists(res.run_dir, "metrics.jsonl"));
    assert_true(exists("tables", "table_pretrain_reports.csv"));
    free(rec);
}

static void test_loss_falls(void **state) {
    (void)state;
    FOR_EACH_ROW loss_falls();
    g_row = 0;
}

/* Accumulation over 2 microbatches, dropout on, a step schedule with warmup: every piece of
 * state a resume must restore is exercised. */
#define RESUME_ARGS                                                                                \
    "train.batch_size=16", "train.batch_size_ramp=0", "train.pretrain_in_train_mode=True",         \
        "train.scheduler=cosine-decay", "train.warmup_steps=4", "train.steps=14",                  \
        "impl.print_loss_every_nth_step=3"

static void check_same(const recorder *a, const recorder *b, int from, int to,
                       const train_result *ra, const train_result *rb) {
    for (int k = from; k <= to; k++) {
        if (memcmp(&a->loss[k], &b->loss[k], sizeof(double)) != 0)
            fail_msg("step %d: loss %.17g straight vs %.17g resumed", k, a->loss[k], b->loss[k]);
    }
    char pa[2 * CORE_PATH_MAX], pb[2 * CORE_PATH_MAX];
    snprintf(pa, sizeof pa, "%s/model.safetensors", ra->checkpoint_dir);
    snprintf(pb, sizeof pb, "%s/model.safetensors", rb->checkpoint_dir);
    assert_true(files_equal(pa, pb));
    assert_true(memcmp(&ra->val_loss, &rb->val_loss, sizeof(double)) == 0);
}

static void resume_after_signal(void) {
    recorder *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    train_result ra, rb;
    assert_int_equal(run("straight", a, &ra, RESUME_ARGS, NULL), 0);
    assert_int_equal(ra.step, 14);
    assert_int_equal(ra.updates, 7);

    /* SIGTERM after step 5: between two updates, so the gradients are saved too */
    b->raise_at = 5;
    assert_int_equal(run("preempted", b, &rb, RESUME_ARGS, NULL), 0);
    assert_int_equal(rb.stop, TRAIN_STOP_SIGNAL);
    assert_int_equal(rb.step, 5);
    assert_string_equal(rb.checkpoint_dir, "");
    assert_true(exists(rpath("outputs/%s", "preempted"), "intermediate_state.bin"));
    assert_true(exists(rpath("outputs/%s", "preempted"), "intermediate_state.bin.grads-5"));
    b->raise_at = 0;
    assert_int_equal(
        run("preempted", b, &rb, RESUME_ARGS, "impl.resume_run_after_preempt=True", NULL), 0);
    assert_int_equal(rb.step, 14);
    assert_int_equal(rb.updates, 7);
    check_same(a, b, 1, 14, &ra, &rb);

    /* a second signal-free resume of a finished state is a fresh continuation: not tested */
    free(a), free(b);
}

static void test_resume_after_signal(void **state) {
    (void)state;
    FOR_EACH_ROW resume_after_signal();
    g_row = 0;
}

/* Two runs with the same seed give the same bytes: no step of the loop (dropout, masking, the
 * data order, a reduction, the embedding gradient of repeated ids, a GEMM) depends on timing or
 * scheduling. On a GPU this is what "no floating-point atomics" buys. */
static void two_runs_identical(void) {
    recorder *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    train_result ra, rb;
    assert_int_equal(run("twin-a", a, &ra, RESUME_ARGS, NULL), 0);
    assert_int_equal(run("twin-b", b, &rb, RESUME_ARGS, NULL), 0);
    assert_int_equal(ra.step, 14);
    check_same(a, b, 1, 14, &ra, &rb);
    free(a), free(b);
}

static void test_two_runs_identical(void **state) {
    (void)state;
    FOR_EACH_ROW two_runs_identical();
    g_row = 0;
}

/* The relative difference of two checkpoints' weights: |a - b| / |a| over all tensors (L2). */
static double weights_rel_diff(const char *dir_a, const char *dir_b) {
    char pa[2 * CORE_PATH_MAX], pb[2 * CORE_PATH_MAX], err[256];
    snprintf(pa, sizeof pa, "%s/model.safetensors", dir_a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", dir_b);
    st_file a, b;
    assert_int_equal(st_open(&a, pa, err, sizeof err), ST_OK);
    assert_int_equal(st_open(&b, pb, err, sizeof err), ST_OK);
    assert_int_equal(a.ntensors, b.ntensors);
    double d2 = 0, a2 = 0;
    for (int i = 0; i < a.ntensors; i++) {
        const st_tensor *ta = &a.tensors[i], *tb = st_find(&b, ta->name);
        assert_non_null(tb);
        assert_true(ta->numel == tb->numel);
        float *x = malloc(ta->numel * sizeof *x + 4), *y = malloc(ta->numel * sizeof *y + 4);
        assert_int_equal(st_tensor_to_f32(ta, x, ta->numel), 0);
        assert_int_equal(st_tensor_to_f32(tb, y, tb->numel), 0);
        for (uint64_t k = 0; k < ta->numel; k++) {
            d2 += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
            a2 += (double)x[k] * x[k];
        }
        free(x), free(y);
    }
    st_close(&a), st_close(&b);
    return a2 > 0 ? sqrt(d2 / a2) : sqrt(d2);
}

/* The microbatch is a speed setting, not part of the recipe: with the batch-size quantum, 16-row
 * updates made of 2 x 8, 4 x 4 or 6 + 6 + 4 rows train the same model (the same rows, masks and
 * per-sequence weights; only the order of floating-point sums differs), and a batch ramp keeps
 * its schedule (test_optim). Dropout off and a constant lr: both are keyed by the µstep. */
#define MICRO_ARGS                                                                                 \
    "train.batch_size=16", "train.batch_size_ramp=0", "train.pretrain_in_train_mode=False",        \
        "train.scheduler=none", "impl.print_loss_every_nth_step=4"

static void microbatch_independent(void) {
    train_result r8, r4, r6;
    assert_int_equal(run("micro8", NULL, &r8, MICRO_ARGS, "train.steps=16", NULL), 0);
    assert_int_equal(
        run("micro4", NULL, &r4, MICRO_ARGS, "train.steps=32", "impl.microbatch_size=4", NULL), 0);
    assert_int_equal(
        run("micro6", NULL, &r6, MICRO_ARGS, "train.steps=24", "impl.microbatch_size=6", NULL), 0);
    assert_int_equal(r8.updates, 8);
    assert_int_equal(r4.updates, 8);
    assert_int_equal(r6.updates, 8); /* 6 + 6 + 4 rows per update */
    double w4 = weights_rel_diff(r8.checkpoint_dir, r4.checkpoint_dir);
    double w6 = weights_rel_diff(r8.checkpoint_dir, r6.checkpoint_dir);
    double v4 = fabs(r4.val_loss - r8.val_loss) / r8.val_loss;
    double v6 = fabs(r6.val_loss - r8.val_loss) / r8.val_loss;
    printf("microbatch 8 vs 4 / 6 after 8 updates: weights %.2e / %.2e, validation loss %.2e / "
           "%.2e (relative)\n",
           w4, w6, v4, v6);
    /* fp32: rounding only; bf16: activations rounded differently per microbatch shape */
    double tol_w = g_row % 2 ? 3e-3 : 1e-6, tol_v = g_row % 2 ? 1e-4 : 1e-6;
    assert_true(w4 < tol_w && w6 < tol_w);
    assert_true(v4 < tol_v && v6 < tol_v);
    /* stopped by a signal in the middle of an update at microbatch 8 and resumed at 4: 5 µsteps
     * of 8 rows, then 22 of 4 make the same 8 updates of 16 rows */
    recorder *rec = calloc(1, sizeof *rec);
    rec->raise_at = 5;
    train_result rw;
    assert_int_equal(run("micro-switch", rec, &rw, MICRO_ARGS, "train.steps=16", NULL), 0);
    assert_int_equal(rw.stop, TRAIN_STOP_SIGNAL);
    rec->raise_at = 0;
    assert_int_equal(run("micro-switch", rec, &rw, MICRO_ARGS, "train.steps=27",
                         "impl.microbatch_size=4", "impl.resume_run_after_preempt=True", NULL),
                     0);
    free(rec);
    assert_int_equal(rw.step, 27);
    assert_int_equal(rw.updates, 8);
    double wr = weights_rel_diff(r8.checkpoint_dir, rw.checkpoint_dir);
    printf("microbatch 8 vs 8 then (resumed) 4: weights %.2e\n", wr);
    assert_true(wr < tol_w);
    /* a state whose progress words are version 1 (the loader's index in microbatches, no row
     * count; written before microbatches could be partial) resumes at the same row: patch the
     * state of a run stopped after 6 µsteps of 8 rows back to version 1 and resume it */
    rec = calloc(1, sizeof *rec);
    rec->raise_at = 6;
    assert_int_equal(run("micro-v1", rec, &rw, MICRO_ARGS, "train.steps=16", NULL), 0);
    const char *sp = rpath("outputs/%s/intermediate_state.bin", "micro-v1");
    ts_header h;
    char err[256];
    size_t nf = 0;
    assert_int_equal(ts_read(sp, &h, NULL, NULL, NULL, 0, 0, err, sizeof err), TS_OK);
    nf = h.n;
    float *buf = malloc(3 * nf * sizeof *buf);
    assert_int_equal(ts_read(sp, &h, buf, buf + nf, buf + 2 * nf, nf, 0, err, sizeof err), TS_OK);
    assert_int_equal(h.pos[0], 2);  /* progress version */
    assert_int_equal(h.pos[2], 48); /* the loader's row */
    assert_int_equal(h.pos[13], 48);
    h.pos[0] = 1;
    h.pos[2] = 6; /* microbatches of 8 */
    h.pos[13] = 0;
    h.npos = 13;
    assert_int_equal(ts_write(sp, &h, buf, buf + nf, buf + 2 * nf, err, sizeof err), TS_OK);
    free(buf);
    rec->raise_at = 0;
    assert_int_equal(run("micro-v1", rec, &rw, MICRO_ARGS, "train.steps=16",
                         "impl.resume_run_after_preempt=True", NULL),
                     0);
    free(rec);
    assert_int_equal(rw.updates, 8);
    wr = weights_rel_diff(r8.checkpoint_dir, rw.checkpoint_dir);
    printf("microbatch 8 vs resumed from a version 1 state: weights %.2e\n", wr);
    assert_true(wr < tol_w);
    /* the same initial weights trained on other rows end far apart: the test can fail */
    train_result rs;
    assert_int_equal(run("micro-rev", NULL, &rs, MICRO_ARGS, "train.steps=16",
                         "train.reverse_dataset_order=True", NULL),
                     0);
    double ws = weights_rel_diff(r8.checkpoint_dir, rs.checkpoint_dir);
    printf("microbatch 8, rows in order vs reversed: weights %.2e\n", ws);
    assert_true(ws > 10 * tol_w);
}

static void test_microbatch_independent(void **state) {
    (void)state;
    FOR_EACH_ROW microbatch_independent();
    g_row = 0;
}

static void resume_from_periodic_state(void) {
    recorder *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    train_result ra, rb;
    assert_int_equal(run("straight2", a, &ra, RESUME_ARGS, NULL), 0);
    /* states every 4 steps; keep the one of step 8 as if the process had died at step 10 */
    snprintf(b->state, sizeof b->state, "%s",
             rpath("outputs/%s/intermediate_state.bin", "periodic"));
    snprintf(b->backup, sizeof b->backup, "%s.kept", b->state);
    b->copy_state_at = 10;
    assert_int_equal(run("periodic", b, &rb, RESUME_ARGS, "impl.save_intermediate_checkpoints=True",
                         "impl.save_every_nth_step=4", NULL),
                     0);
    assert_int_equal(rename(b->backup, b->state), 0);
    b->copy_state_at = 0;
    memset(b->loss, 0, sizeof b->loss);
    assert_int_equal(
        run("periodic", b, &rb, RESUME_ARGS, "impl.resume_run_after_preempt=True", NULL), 0);
    assert_int_equal(rb.step, 14);
    for (int k = 1; k <= 8; k++)
        assert_true(b->loss[k] == 0.0); /* steps 1..8 were not run again */
    check_same(a, b, 9, 14, &ra, &rb);
    free(a), free(b);
}

static void test_resume_from_periodic_state(void **state) {
    (void)state;
    FOR_EACH_ROW resume_from_periodic_state();
    g_row = 0;
}

/* A corrupt state is moved aside and the run starts fresh; another model is refused. */
static void test_resume_bad_state(void **state) {
    (void)state;
    train_result res;
    assert_int_equal(core_mkdir_p("outputs/bad", NULL, 0), 0);
    FILE *f = fopen("outputs/bad/intermediate_state.bin", "wb");
    assert_non_null(f);
    fputs("not a state", f);
    fclose(f);
    assert_int_equal(
        run("bad", NULL, &res, "train.steps=2", "impl.resume_run_after_preempt=True", NULL), 0);
    assert_int_equal(res.step, 2);
    assert_true(exists("outputs/bad", "intermediate_state.bin.unreadable"));

    recorder *r = calloc(1, sizeof *r);
    r->raise_at = 2;
    assert_int_equal(run("other", r, &res, "train.steps=4", NULL), 0);
    assert_int_equal(res.stop, TRAIN_STOP_SIGNAL);
    assert_int_equal(run("other", NULL, &res, "train.steps=4", "arch.hidden_size=32",
                         "impl.resume_run_after_preempt=True", NULL),
                     2);
    free(r);
}

/* The other ways a run ends: the wall-clock budget, early termination, a non-finite loss. */
static void test_stopping(void **state) {
    (void)state;
    train_result res;
    /* 0.0002 h = 0.72 s of budget; the step cap is far away */
    assert_int_equal(run("deadline", NULL, &res, "budget=0.0002", "train.steps=100000", NULL), 0);
    assert_int_equal(res.stop, TRAIN_STOP_DEADLINE);
    assert_true(res.step > 1 && res.step < 100000);
    assert_true(res.checkpoint_dir[0] != '\0');

    assert_int_equal(run("early", NULL, &res, "train.steps=100",
                         "impl.early_termination.enabled=True", "impl.early_termination.budget=0",
                         "impl.early_termination.loss_threshold=1.0",
                         "impl.print_loss_every_nth_step=4", NULL),
                     0);
    assert_int_equal(res.stop, TRAIN_STOP_EARLY);
    assert_int_equal(res.step, 4);

    /* an absurd learning rate: the weights overflow after the first update */
    assert_int_equal(run("nan", NULL, &res, "train.steps=20", "train.optim.lr=1e30",
                         "train.gradient_clipping=null", NULL),
                     1);
    assert_int_equal(res.stop, TRAIN_STOP_NONFINITE);
    assert_true(res.step < 20);
    assert_string_equal(res.checkpoint_dir, "");
}

/* ---- exact resume at every instant (fp32 row) ----
 * A job whose last update falls on the cap (13 µsteps, batch 16 = 2 microbatches: the cap is in
 * the middle of an accumulation) with an lr that is not 0 at the cap, so one more microbatch
 * after it would change the weights. */
#define CAP_ARGS                                                                                   \
    "train.batch_size=16", "train.batch_size_ramp=0", "train.pretrain_in_train_mode=True",         \
        "train.scheduler=inverse-sqrt", "train.warmup_steps=4", "train.steps=13",                  \
        "impl.print_loss_every_nth_step=3"
#define RESUME "impl.resume_run_after_preempt=True"

static void same_model(const train_result *a, const train_result *b) {
    char pa[2 * CORE_PATH_MAX], pb[2 * CORE_PATH_MAX];
    assert_true(a->checkpoint_dir[0] && b->checkpoint_dir[0]);
    snprintf(pa, sizeof pa, "%s/model.safetensors", a->checkpoint_dir);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b->checkpoint_dir);
    if (!files_equal(pa, pb)) fail_msg("%s differs from %s", pb, pa);
    assert_true(memcmp(&a->val_loss, &b->val_loss, sizeof(double)) == 0);
}

static bool none_trained(const recorder *r) {
    for (int k = 0; k <= MAXSTEPS; k++)
        if (r->loss[k] != 0.0) return false;
    return true;
}

/* Whether the run's log holds text. */
static bool log_has(const train_result *res, const char *name, const char *text) {
    char p[2 * CORE_PATH_MAX], *buf = NULL, err[256];
    size_t n = 0;
    snprintf(p, sizeof p, "%s/%s_pretrain.log", res->run_dir, name);
    if (core_read_file(p, &buf, &n, err, sizeof err)) fail_msg("%s", err);
    bool found = strstr(buf, text) != NULL;
    if (!found) printf("# %s has no '%s'\n", p, text);
    free(buf);
    return found;
}

/* A state saved at the cap (a periodic save at the last µstep, or a finished run rerun with
 * resume) or past the budget: the resumed run trains no microbatch and writes the
 * uninterrupted run's weights. */
static void test_resume_at_the_end(void **state) {
    (void)state;
    recorder *b = calloc(1, sizeof *b);
    train_result ra, rb, rc;
    assert_int_equal(run("capstraight", NULL, &ra, CAP_ARGS, NULL), 0);
    assert_int_equal(ra.step, 13);
    assert_int_equal(run("cap", NULL, &rb, CAP_ARGS, "impl.save_intermediate_checkpoints=True",
                         "impl.save_every_nth_step=13", NULL),
                     0);
    assert_true(exists("outputs/cap", "intermediate_state.bin.grads-13"));
    same_model(&ra, &rb);
    /* the finished job again, resumed: its state is at the cap */
    assert_int_equal(run("cap", b, &rc, CAP_ARGS, RESUME, NULL), 0);
    assert_int_equal(rc.stop, TRAIN_STOP_STEPS);
    assert_int_equal(rc.step, 13);
    assert_int_equal(rc.updates, ra.updates);
    assert_true(none_trained(b));
    same_model(&ra, &rc);
    /* and once more with the budget used up (the state holds about a second) */
    assert_int_equal(run("cap", b, &rc, CAP_ARGS, RESUME, "budget=0.00000001", NULL), 0);
    assert_int_equal(rc.stop, TRAIN_STOP_DEADLINE);
    assert_int_equal(rc.step, 13);
    assert_true(none_trained(b));
    same_model(&ra, &rc);
    free(b);
}

static void hook(const char *at, const char *sig) {
    if (at) {
        setenv("CRAM_TEST_KILL_AT", at, 1);
        setenv("CRAM_TEST_KILL_SIGNAL", sig, 1);
    } else {
        unsetenv("CRAM_TEST_KILL_AT");
        unsetenv("CRAM_TEST_KILL_SIGNAL");
    }
}

/* SIGTERM during validation and during the final checkpoint write: the state is saved (the
 * periodic saves, every 5 µsteps, do not hit the cap of 13), the exit status is 0, and the
 * resumed run writes the uninterrupted run's weights without training again. */
static void test_signal_after_the_loop(void **state) {
    (void)state;
    recorder *b = calloc(1, sizeof *b);
    train_result ra, rb;
    assert_int_equal(run("capstraight2", NULL, &ra, CAP_ARGS, NULL), 0);
    static const char *const at[] = {"valid:2", "final:100000"};
    static const char *const names[] = {"termvalid", "termfinal"};
    for (int k = 0; k < 2; k++) {
        hook(at[k], "TERM");
        int rc = run(names[k], NULL, &rb, CAP_ARGS, "impl.save_intermediate_checkpoints=True",
                     "impl.save_every_nth_step=5", NULL);
        hook(NULL, NULL);
        assert_int_equal(rc, 0);
        assert_int_equal(rb.step, 13);
        assert_true(log_has(&rb, names[k], "Received signal 15"));
        assert_true(log_has(&rb, names[k], "saved the training state at step 13"));
        if (k == 0) {
            assert_int_equal(rb.stop, TRAIN_STOP_SIGNAL);
            assert_string_equal(rb.checkpoint_dir, ""); /* validation was cut short */
        } else {
            same_model(&ra, &rb); /* the final write was complete */
        }
        memset(b->loss, 0, sizeof b->loss);
        assert_int_equal(run(names[k], b, &rb, CAP_ARGS, RESUME, NULL), 0);
        assert_int_equal(rb.step, 13);
        assert_true(none_trained(b));
        same_model(&ra, &rb);
    }
    free(b);
}

/* A signal whose state cannot be written ends the run with status 1 and says so. */
static void test_signal_state_unwritable(void **state) {
    (void)state;
    recorder *r = calloc(1, sizeof *r);
    train_result res;
    /* a folder where the state file should go: the rename onto it fails */
    assert_int_equal(core_mkdir_p("outputs/unwritable/intermediate_state.bin", NULL, 0), 0);
    r->raise_at = 3;
    assert_int_equal(run("unwritable", r, &res, "train.steps=10", NULL), 1);
    assert_int_equal(res.stop, TRAIN_STOP_SIGNAL);
    assert_true(log_has(&res, "unwritable", "was NOT saved"));
    /* the same during validation */
    hook("valid:1", "TERM");
    int rc = run("unwritable", NULL, &res, "train.steps=3", NULL);
    hook(NULL, NULL);
    assert_int_equal(rc, 1);
    free(r);
}

/* Settings that would train on nothing are refused before anything is built. */
static void test_degenerate_settings(void **state) {
    (void)state;
    train_result res;
    assert_int_equal(
        run("mlm0", NULL, &res, "train.objective.mlm_probability=0", "train.steps=3", NULL), 2);
    assert_int_equal(
        run("mlm0", NULL, &res, "train.objective.mlm_probability=0.001", "train.steps=3", NULL), 2);
    assert_int_equal(run("valneg", NULL, &res, "data.validation_seqs=-1", "train.steps=3", NULL),
                     2);
    assert_false(exists("outputs", "mlm0"));
    assert_false(exists("outputs", "valneg"));
}

/* A second run of a name that is running is refused; the lock goes with its holder. */
static void test_one_run_per_name(void **state) {
    (void)state;
    train_result res;
    assert_int_equal(core_mkdir_p("outputs/busy", NULL, 0), 0);
    int fd = open("outputs/busy/.lock", O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    assert_int_equal(run("busy", NULL, &res, "train.steps=2", NULL), 2);
    assert_false(exists("outputs/busy", "pretrain")); /* refused before the run folder */
    close(fd);
    assert_int_equal(run("busy", NULL, &res, "train.steps=2", NULL), 0);
    /* the run released it */
    fd = open("outputs/busy/.lock", O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    close(fd);
}

/* A state adopted by a run of another configuration: a warning names the keys. A state file
 * of format version 1 (no configuration fingerprint) still resumes. */
static void test_state_of_another_config(void **state) {
    (void)state;
    recorder *r = calloc(1, sizeof *r);
    train_result res;
    r->raise_at = 4;
    assert_int_equal(run("otherconf", r, &res, CAP_ARGS, NULL), 0);
    assert_int_equal(res.stop, TRAIN_STOP_SIGNAL);
    char *buf = NULL, err[256];
    size_t n = 0;
    const char *st = "outputs/otherconf/intermediate_state.bin";
    assert_int_equal(core_read_file(st, &buf, &n, err, sizeof err), 0);
    assert_int_equal(run("otherconf", NULL, &res, CAP_ARGS, RESUME, "train.steps=15",
                         "train.optim.weight_decay=0.02", NULL),
                     0);
    assert_int_equal(res.step, 15);
    assert_true(log_has(&res, "otherconf",
                        "another configuration: train.optim.weight_decay (was 0.01, now 0.02), "
                        "train.steps (was 13, now 15)"));
    /* the same state as format version 1: no fingerprint at 72..79, version 1, new checksum */
    assert_true(n > 88 && buf[8] == 2);
    memmove(buf + 72, buf + 80, n - 80);
    n -= 8;
    buf[8] = 1;
    uint64_t sum = core_hash64(buf, n - 8, 0);
    for (int i = 0; i < 8; i++)
        buf[n - 8 + i] = (char)(sum >> (8 * i));
    assert_int_equal(core_atomic_write(st, buf, n, err, sizeof err), 0);
    assert_int_equal(run("otherconf", NULL, &res, CAP_ARGS, RESUME, NULL), 0);
    assert_true(log_has(&res, "otherconf", "Successfully loaded state with metadata {step: 4,"));
    assert_true(log_has(&res, "otherconf", "(format version 1) does not record"));
    assert_int_equal(res.step, 13);
    free(buf);
    free(r);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- what a run reports about its device (train_report.h): pure functions, checked here on
 * the CPU ---- */

static void test_gpu_peak_table(void **state) {
    (void)state;
    struct {
        const char *name;
        int cc_major, cc_minor;
        double bf16, fp32;
    } cases[] = {
        {"NVIDIA H100 80GB HBM3", 9, 0, 989, 67},
        {"NVIDIA H200", 9, 0, 989, 67},
        {"NVIDIA H100 PCIe", 9, 0, 756, 51},
        {"NVIDIA H100 NVL", 9, 0, 835, 60},
        {"NVIDIA GH200 480GB", 9, 0, 989, 67},
        {"NVIDIA A100-SXM4-80GB", 8, 0, 312, 19.5},
        {"NVIDIA A100 80GB PCIe", 8, 0, 312, 19.5},
        {"NVIDIA A10", 8, 6, 125, 31.2},
        {"NVIDIA A10G", 8, 6, 0, 0}, /* a whole-word match: not the A10 */
        {"NVIDIA RTX A6000", 8, 6, 154.8, 38.7},
        {"NVIDIA L40S", 8, 9, 362, 91.6},
        {"NVIDIA L40", 8, 9, 0, 0},
        {"NVIDIA L4", 8, 9, 121, 30.3},
        {"NVIDIA GeForce RTX 4090", 8, 9, 165.2, 82.6},
        {"NVIDIA GeForce RTX 4090 D", 8, 9, 0, 0},
        {"nvidia h100 80gb hbm3", 0, 0, 989, 67}, /* any case; cc 0: not checked */
        {"NVIDIA H100 80GB HBM3", 8, 0, 0, 0},    /* a name that lies about its generation */
        {"Tesla T4", 7, 5, 0, 0},
        {"", 9, 0, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        double b = train_gpu_peak_tflops(cases[k].name, cases[k].cc_major, cases[k].cc_minor, true);
        double f =
            train_gpu_peak_tflops(cases[k].name, cases[k].cc_major, cases[k].cc_minor, false);
        if (b != cases[k].bf16 || f != cases[k].fp32)
            fail_msg("%s: bf16 %g, fp32 %g; expected %g, %g", cases[k].name, b, f, cases[k].bf16,
                     cases[k].fp32);
    }
    assert_true(train_gpu_peak_tflops(NULL, 9, 0, true) == 0);
}

static void test_peak_resolution(void **state) {
    (void)state;
    char how[512];
    /* CRAM_PEAK_TFLOPS first, then CRAM_PEAK_GFLOPS, on any device */
    assert_true(train_peak_gflops_known("2.5", "100", "NVIDIA H200", 9, 0, true, how, sizeof how) ==
                2500);
    assert_non_null(strstr(how, "CRAM_PEAK_TFLOPS"));
    assert_true(train_peak_gflops_known(NULL, "100", NULL, 0, 0, false, how, sizeof how) == 100);
    assert_non_null(strstr(how, "CRAM_PEAK_GFLOPS"));
    assert_true(train_peak_gflops_known("abc", "50", NULL, 0, 0, false, how, sizeof how) == 50);
    /* a known card: its dense peak in the run's precision */
    assert_true(train_peak_gflops_known(NULL, NULL, "NVIDIA H200", 9, 0, true, how, sizeof how) ==
                989000);
    assert_non_null(strstr(how, "dense bf16 peak of the NVIDIA H200"));
    assert_true(train_peak_gflops_known("", "", "NVIDIA A100-SXM4-40GB", 8, 0, false, how,
                                        sizeof how) == 19500);
    assert_non_null(strstr(how, "fp32"));
    /* an unknown card: no MFU, and the message says how to get one */
    assert_true(train_peak_gflops_known(NULL, NULL, "NVIDIA B200", 10, 0, true, how, sizeof how) ==
                0);
    assert_non_null(strstr(how, "MFU is not computed"));
    assert_non_null(strstr(how, "NVIDIA B200 (compute capability 10.0)"));
    assert_non_null(strstr(how, "set CRAM_PEAK_TFLOPS"));
    /* the CPU without an override measures; a bad value is named */
    assert_true(train_peak_gflops_known(NULL, NULL, NULL, 0, 0, false, how, sizeof how) == -1);
    assert_string_equal(how, "");
    assert_true(train_peak_gflops_known("-3", NULL, NULL, 0, 0, false, how, sizeof how) == -1);
    assert_non_null(strstr(how, "CRAM_PEAK_TFLOPS=-3 ignored"));
    assert_true(train_peak_gflops_known(NULL, "1e999", NULL, 0, 0, false, how, sizeof how) == -1);
    assert_non_null(strstr(how, "CRAM_PEAK_GFLOPS=1e999 ignored"));

    char buf[64];
    train_format_flops(buf, sizeof buf, 989000);
    assert_string_equal(buf, "989 TFLOP/s");
    train_format_flops(buf, sizeof buf, 154800);
    assert_string_equal(buf, "154.8 TFLOP/s");
    train_format_flops(buf, sizeof buf, 92.3);
    assert_string_equal(buf, "92 GFLOP/s");
    train_format_bytes(buf, sizeof buf, (size_t)5 << 29);
    assert_string_equal(buf, "2.50 GiB");
    train_format_bytes(buf, sizeof buf, (size_t)3 << 20);
    assert_string_equal(buf, "3.0 MiB");
    train_format_bytes(buf, sizeof buf, 16);
    assert_string_equal(buf, "16 bytes");
}

/* A bert_config from the real configs with overrides (NULL-terminated). */
static void config_of(bert_config *c, int V, ...) {
    char *args[32];
    int n = 0;
    va_list ap;
    va_start(ap, V);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL)
        args[n++] = (char *)a;
    va_end(ap);
    cfg_error ce = {0};
    cfg_node *cfg = cfg_from_args("pretrain", n, args, &ce);
    if (!cfg) fail_msg("config: %s", ce.msg);
    char err[512];
    if (bert_config_from_cfg(c, cfg, V, err, sizeof err)) fail_msg("%s", err);
    cfg_free(cfg);
}

#define TINY_CRAMMED                                                                               \
    "arch=crammed-bert", "arch.num_transformer_layers=2", "arch.hidden_size=64",                   \
        "arch.intermed_size=256", "arch.attention.num_attention_heads=4"

/* The plan is what bert_init and bert_acts_ensure allocate: the arena byte for byte, the flat
 * buffer and the working copy by their element counts. */
static void test_memory_plan_matches_allocation(void **state) {
    (void)state;
    bert_config cs[4];
    config_of(&cs[0], 500, TINY_CRAMMED, NULL);
    config_of(&cs[1], 500, "arch=crammed-bert", "arch.num_transformer_layers=1",
              "arch.hidden_size=32", "arch.intermed_size=64",
              "arch.attention.num_attention_heads=2", "arch.embedding.pos_embedding=sinusoidal",
              NULL);
    config_of(&cs[2], 300, "arch=hf-bert-tiny", "arch.hidden_size=16", "arch.num_hidden_layers=2",
              "arch.intermediate_size=24", "arch.num_attention_heads=2", NULL);
    cs[3] = cs[0];
    cs[3].num_labels = 3; /* the classifier of fine-tuning */
    for (int row = 0; row < 2; row++) {
        const ops *o = row ? ops_cpu_bf16() : ops_cpu();
        for (int k = 0; k < 4; k++) {
            bert_mem_plan p;
            bert_plan_memory(&p, &cs[k], o, 4, 32);
            bert_model m;
            bert_init(&m, &cs[k], o);
            bert_acts_ensure(&m, 4, 32);
            assert_int_equal(p.numel, m.numel);
            assert_int_equal(p.acts, m.arena_cap);
            assert_int_equal(p.state, 16 * m.numel);
            assert_int_equal(p.working, row ? 2 * m.numel : 0);
            assert_int_equal(p.total, p.state + p.working + p.tables + p.acts);
            size_t pe = m.pe ? (size_t)m.cfg.max_pos * m.cfg.H * o->act_bytes : 0;
            assert_int_equal(p.tables, 2 * sizeof(double) + pe);
            if (k == 1) assert_non_null(m.pe);
            bert_free(&m);
        }
    }
}

/* The search finds the largest microbatch that fits, given any free figure. */
static void test_memory_search(void **state) {
    (void)state;
    bert_config c;
    config_of(&c, 2000, TINY_CRAMMED, NULL);
    const ops *o = ops_cpu_bf16();
    bert_mem_plan p1, p5, p6;
    bert_plan_memory(&p1, &c, o, 1, 128);
    bert_plan_memory(&p5, &c, o, 5, 128);
    bert_plan_memory(&p6, &c, o, 6, 128);
    assert_true(p1.total < p5.total && p5.total < p6.total);
    assert_int_equal(bert_plan_max_batch(&c, o, 128, p5.total, 64), 5);
    assert_int_equal(bert_plan_max_batch(&c, o, 128, p6.total - 1, 64), 5);
    assert_int_equal(bert_plan_max_batch(&c, o, 128, p5.total - 1, 64), 4);
    assert_int_equal(bert_plan_max_batch(&c, o, 128, p5.total, 3), 3); /* the bound holds */
    assert_int_equal(bert_plan_max_batch(&c, o, 128, p1.total - 1, 64), 0);
    assert_int_equal(bert_plan_max_batch(&c, o, 128, (size_t)1 << 50, 100000), 100000);
}

/* The verdict and its message, for free figures that fit, need a smaller microbatch, need one
 * that divides the batch, and fit nothing. */
static void test_memory_check_message(void **state) {
    (void)state;
    bert_config c;
    config_of(&c, 2000, TINY_CRAMMED, NULL);
    const ops *o = ops_cpu_bf16();
    const size_t R = TRAIN_DEVICE_RESERVE_BYTES;
    bert_mem_plan p1, p3, p8;
    bert_plan_memory(&p1, &c, o, 1, 128);
    bert_plan_memory(&p3, &c, o, 3, 128);
    bert_plan_memory(&p8, &c, o, 8, 128);
    char msg[2048], num[64];
    const char *mk = "impl.microbatch_size", *bk = "train.batch_size", *gpu = "GPU 0 (X)";
    /* fits: a summary line */
    assert_true(train_mem_fits(msg, sizeof msg, &c, o, 8, 128, 8192, 1, R + p8.total, gpu, mk, bk));
    assert_non_null(strstr(msg, "Device memory: impl.microbatch_size=8 at sequence length 128"));
    assert_non_null(strstr(msg, "bf16 working weights"));
    /* 3 fits, 2 is the largest divisor of the batch: bytes needed, bytes free, both sizes */
    size_t fr = R + p3.total;
    assert_false(train_mem_fits(msg, sizeof msg, &c, o, 8, 128, 8192, 1, fr, gpu, mk, bk));
    assert_non_null(strstr(msg, "not enough memory on GPU 0 (X) for impl.microbatch_size=8"));
    snprintf(num, sizeof num, "(%zu bytes), ", p8.total + R);
    assert_non_null(strstr(msg, num));
    snprintf(num, sizeof num, "(%zu bytes) are free", fr);
    assert_non_null(strstr(msg, num));
    assert_non_null(strstr(msg, "The largest microbatch that fits is 3; the largest that fits and "
                                "divides train.batch_size=8192 is 2: set impl.microbatch_size=2"));
    /* without a batch to divide, the largest that fits */
    assert_false(train_mem_fits(msg, sizeof msg, &c, o, 8, 128, 0, 1, fr, gpu, mk, bk));
    assert_non_null(
        strstr(msg, "The largest microbatch that fits is 3: set impl.microbatch_size=3"));
    /* over ranks, the microbatch times the world must divide the batch */
    assert_false(train_mem_fits(msg, sizeof msg, &c, o, 8, 128, 8, 2, fr, gpu, mk, bk));
    assert_non_null(strstr(msg, "fits is 3; the largest that fits and divides "
                                "train.batch_size=8 over 2 ranks is 2"));
    assert_false(train_mem_fits(msg, sizeof msg, &c, o, 8, 128, 12, 2, fr, gpu, mk, bk));
    assert_non_null(strstr(msg, "fits is 3: set impl.microbatch_size=3"));
    assert_false(train_mem_fits(msg, sizeof msg, &c, o, 8, 128, 7, 2, fr, gpu, mk, bk));
    assert_non_null(strstr(msg, "but none up to it divides train.batch_size=7"));
    /* nothing fits: below the reserve, or below one sequence */
    assert_false(train_mem_fits(msg, sizeof msg, &c, o, 8, 128, 8192, 1, R / 2, gpu, mk, bk));
    assert_non_null(strstr(msg, "Not even a microbatch of 1 fits"));
    assert_false(
        train_mem_fits(msg, sizeof msg, &c, o, 8, 128, 8192, 1, R + p1.total - 1, gpu, mk, bk));
    assert_non_null(strstr(msg, "Not even a microbatch of 1 fits"));
    /* a microbatch of 1 that does not fit has nothing smaller to offer */
    assert_false(train_mem_fits(msg, sizeof msg, &c, o, 1, 128, 8192, 1, R, gpu, mk, bk));
    assert_non_null(strstr(msg, "Not even a microbatch of 1 fits"));
}

/* The test hook drives the check on the CPU; without it the CPU is not checked. */
static void test_memory_check_hook(void **state) {
    (void)state;
    bert_config c;
    config_of(&c, 2000, TINY_CRAMMED, NULL);
    const ops *o = ops_cpu();
    train_device d;
    train_device_init(&d, o, 0);
    assert_false(d.gpu);
    char msg[2048];
    const char *mk = "impl.microbatch_size", *bk = "train.batch_size";
    unsetenv("CRAM_TEST_DEVICE_FREE_BYTES");
    assert_int_equal(train_device_mem_check(&d, o, &c, 8, 128, 8192, 1, mk, bk, msg, sizeof msg),
                     0);
    assert_string_equal(msg, "");
    setenv("CRAM_TEST_DEVICE_FREE_BYTES", "1000", 1);
    assert_int_equal(train_device_mem_check(&d, o, &c, 8, 128, 8192, 1, mk, bk, msg, sizeof msg),
                     2);
    assert_non_null(strstr(msg, "CRAM_TEST_DEVICE_FREE_BYTES"));
    assert_non_null(strstr(msg, "(1000 bytes) are free"));
    setenv("CRAM_TEST_DEVICE_FREE_BYTES", "1099511627776", 1);
    assert_int_equal(train_device_mem_check(&d, o, &c, 8, 128, 8192, 1, mk, bk, msg, sizeof msg),
                     0);
    assert_non_null(strstr(msg, "Device memory: "));
    setenv("CRAM_TEST_DEVICE_FREE_BYTES", "lots", 1); /* ignored with a warning */
    assert_int_equal(train_device_mem_check(&d, o, &c, 8, 128, 8192, 1, mk, bk, msg, sizeof msg),
                     0);
    assert_string_equal(msg, "");
    unsetenv("CRAM_TEST_DEVICE_FREE_BYTES");
}

/* The system keys of metrics_<name>.yaml and the closing memory line. */
static void test_system_keys(void **state) {
    (void)state;
    char buf[1024];
    train_device cpu = {0};
    train_device_mem none = {0};
    train_format_system_yaml(buf, sizeof buf, &cpu, &none, 1, 0.25);
    assert_string_equal(buf, "GPU: ''\nnumGPUs: 0\nVRAM: 0.0\nVRAM_device: 0.0\nRAM: 0.250\n"
                             "kWh: .nan\n");
    train_device gpu = {.gpu = true, .have_info = true};
    snprintf(gpu.info.name, sizeof gpu.info.name, "NVIDIA H200 'test'");
    train_device_mem mem = {.valid = true,
                            .peak = (size_t)3 << 29,
                            .dev_used = (size_t)2 << 30,
                            .dev_total = (size_t)140 << 30};
    train_format_system_yaml(buf, sizeof buf, &gpu, &mem, 2, 1.5);
    assert_string_equal(buf, "GPU: 'NVIDIA H200 ''test'''\nnumGPUs: 2\nVRAM: 1.500000\n"
                             "VRAM_device: 2.000000\nRAM: 1.500\nkWh: .nan\n");
    train_device_mem_line(buf, sizeof buf, &mem);
    assert_string_equal(buf, "Max. Mem allocated: 1.500 GB (cram's device buffers at their "
                             "peak). In use on the device: 2.000 GB of 140.000 GB (the driver's "
                             "view: CUDA context and other processes included).");
}

static int setup(void **state) {
    (void)state;
    if (!getcwd(launch_dir, sizeof launch_dir)) return -1;
    snprintf(corpus, sizeof corpus, "%s/tests/fixtures/tok/corpus.txt.zst", launch_dir);
    if (access(corpus, R_OK) != 0) return -1;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/cram_train_XXXXXX");
    if (!mkdtemp(tmp_root)) return -1;
    setenv("CRAM_PEAK_GFLOPS", "100", 1); /* skip the matmul measurement */
    return chdir(tmp_root);
}

static int teardown(void **state) {
    (void)state;
    if (chdir(launch_dir)) return -1;
    if (getenv("CRAM_KEEP_TEST_DIR")) return 0;
    return nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    if (!getenv("CRAM_CONFIG_PATH")) {
        fprintf(stderr, "CRAM_CONFIG_PATH is not set (ctest sets it)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dryrun),
        cmocka_unit_test(test_loss_falls),
        cmocka_unit_test(test_resume_after_signal),
        cmocka_unit_test(test_two_runs_identical),
        cmocka_unit_test(test_microbatch_independent),
        cmocka_unit_test(test_resume_from_periodic_state),
        cmocka_unit_test(test_resume_bad_state),
        cmocka_unit_test(test_stopping),
        cmocka_unit_test(test_resume_at_the_end),
        cmocka_unit_test(test_signal_after_the_loop),
        cmocka_unit_test(test_signal_state_unwritable),
        cmocka_unit_test(test_degenerate_settings),
        cmocka_unit_test(test_one_run_per_name),
        cmocka_unit_test(test_state_of_another_config),
        cmocka_unit_test(test_gpu_peak_table),
        cmocka_unit_test(test_peak_resolution),
        cmocka_unit_test(test_memory_plan_matches_allocation),
        cmocka_unit_test(test_memory_search),
        cmocka_unit_test(test_memory_check_message),
        cmocka_unit_test(test_memory_check_hook),
        cmocka_unit_test(test_system_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
