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
#include "train/train.h"

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

/* The backend rows the loop tests run on: fp32 CPU, the bf16-emulating CPU backend and CUDA
 * when a GPU is usable. run() adds the row's impl overrides and suffixes run names with it. */
static const char *const row_args[3][2] = {{"impl.precision=fp32", "impl.device=cpu"},
                                           {"impl.precision=bf16", "impl.device=cpu"},
                                           {"impl.precision=bf16", "impl.device=cuda"}};
static const char *const row_suffix[3] = {"", "-bf16", "-cuda"};
static int g_row;

static bool row_ok(int k) {
    char why[256];
    const ops *o = backend_row(k, why, sizeof why);
    if (!o && why[0]) printf("%s\n", why);
    if (o) printf("# backend row %s\n", o->name);
    return o != NULL;
}
#define FOR_EACH_ROW                                                                               \
    for (g_row = 0; g_row < 3; g_row++)                                                            \
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
        cmocka_unit_test(test_resume_from_periodic_state),
        cmocka_unit_test(test_resume_bad_state),
        cmocka_unit_test(test_stopping),
        cmocka_unit_test(test_resume_at_the_end),
        cmocka_unit_test(test_signal_after_the_loop),
        cmocka_unit_test(test_signal_state_unwritable),
        cmocka_unit_test(test_degenerate_settings),
        cmocka_unit_test(test_one_run_per_name),
        cmocka_unit_test(test_state_of_another_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
