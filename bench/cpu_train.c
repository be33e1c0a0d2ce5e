/* Training throughput of cram's CPU backend against the same crammed-bert in PyTorch
 * (bench/cpu_train_peer.py), measured in the same run, alternating the two so that load from
 * other processes hits both alike. One training step = forward + backward + clipping + AdamW on
 * one microbatch of 128-token rows with 25% masked (sparse prediction), dropout off (bert-o4).
 *   bench_cpu_train [small|full|both] [steps] [rounds]      (default: both 3 2)
 * PyTorch runs twice per round, as installed and with OpenBLAS-openmp + tcmalloc; the better
 * counts. CRAM_BENCH_NO_PEER=1 skips PyTorch; CRAM_PEER_PLAIN=1 skips the tuned variant;
 * CRAM_PYTHON picks the interpreter.
 * Prints RESULT lines: tokens/s of each, the ratio, GFLOP/s and the share of the sgemm rate. */
#include "config/config.h"
#include "core/core.h"
#include "model/model.h"
#include "ops/backend.h"
#include "ops/ops.h"
#include "optim/adamw.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name;
    int L, H, I, NH, mb;
} bench_cfg;

static double sgemm_peak(void) {
    int M = 1024, N = 2304, K = 768;
    float *A = xcalloc((size_t)M * K, 4), *B = xcalloc((size_t)N * K, 4),
          *C = xcalloc((size_t)M * N, 4);
    ops_cpu_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
    int reps = 0;
    double t0 = core_now(), t;
    do {
        ops_cpu_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
        reps++;
        t = core_now() - t0;
    } while (t < 1.5);
    free(A), free(B), free(C);
    return 2.0 * M * N * K * reps / t / 1e9;
}

/* the collator's masking: 32 of 128 positions per row, 26 <mask> / 3 random / 3 kept */
static void make_batch(int32_t *ids, int32_t *labels, int B, int S, int V, core_rng *r) {
    for (int i = 0; i < B * S; i++) {
        ids[i] = 7 + (int32_t)core_rng_below(r, (uint32_t)V - 7);
        labels[i] = -100;
    }
    int m = (int)lround(0.25 * S);
    int *perm = xmalloc((size_t)S * sizeof(int));
    for (int b = 0; b < B; b++) {
        for (int s = 0; s < S; s++)
            perm[s] = s;
        for (int k = 0; k < m; k++) {
            int j = k + (int)core_rng_below(r, (uint32_t)(S - k));
            int t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
            int p = b * S + perm[k];
            labels[p] = ids[p];
            if (k < (int)lround(0.8 * m))
                ids[p] = 6;
            else if (k < (int)lround(0.9 * m))
                ids[p] = (int32_t)core_rng_below(r, (uint32_t)V);
        }
    }
    free(perm);
}

static double flops_per_token(const bench_cfg *c, int V, int S) {
    double neff = c->L * (4.0 * c->H * c->H + 1.5 * c->H * c->I) + 0.25 * V * c->H;
    return 6.0 * neff + 12.0 * c->L * S * c->H;
}

static double run_cram(const bench_cfg *bc, int steps, double *loss_out) {
    char ov[6][96];
    snprintf(ov[0], 96, "arch=crammed-bert");
    snprintf(ov[1], 96, "train=bert-o4");
    snprintf(ov[2], 96, "arch.num_transformer_layers=%d", bc->L);
    snprintf(ov[3], 96, "arch.hidden_size=%d", bc->H);
    snprintf(ov[4], 96, "arch.intermed_size=%d", bc->I);
    snprintf(ov[5], 96, "arch.attention.num_attention_heads=%d", bc->NH);
    char *ovp[6] = {ov[0], ov[1], ov[2], ov[3], ov[4], ov[5]};
    cfg_search s;
    cfg_search_init(&s);
    if (cfg_search_default(&s) == 0) cfg_search_add(&s, "configs");
    cfg_error cerr = {0};
    cfg_node *root = cfg_compose(&s, "pretrain", 6, ovp, &cerr);
    cfg_search_free(&s);
    if (!root) core_die("config: %s", cerr.msg);
    bert_config c;
    char err[512];
    if (bert_config_from_cfg(&c, root, 32768, err, sizeof err)) core_die("%s", err);
    const ops *o = backend_from_cfg(root, err, sizeof err); /* impl.device, threads, precision */
    if (!o) core_die("%s", err);
    adamw_hparams hp = {.beta1 = 0.9, .beta2 = 0.98, .eps = 1e-12, .weight_decay = 0.01};
    cfg_free(root);
    bert_model m;
    bert_init(&m, &c, o);
    bert_init_weights(&m, 1);
    int B = bc->mb, S = 128;
    int32_t *ids = xmalloc((size_t)B * S * 4), *labels = xmalloc((size_t)B * S * 4);
    core_rng r;
    core_rng_init(&r, 3, 0, 0, 0);
    double t0 = 0.0, loss = 0.0;
    for (int step = 0; step <= steps; step++) {
        if (step == 1) t0 = core_now(); /* step 0 warms up (allocations, page faults) */
        make_batch(ids, labels, B, S, c.V, &r);
        loss = bert_forward(&m, ids, NULL, labels, NULL, B, S, false, 1, (uint64_t)step);
        bert_backward(&m, 1.0f);
        adamw_model_step(&m, NULL, &hp, 1e-3, 0.5, step + 1);
    }
    double tps = (double)steps * B * S / (core_now() - t0);
    *loss_out = loss;
    free(ids), free(labels);
    bert_free(&m);
    backend_close(o);
    return tps;
}

/* One PyTorch run; tuned = OpenBLAS's OpenMP build behind libblas.so.3 plus tcmalloc (the
 * best configuration on an idle machine, DESIGN.md), else as Debian installs it. */
static double run_peer_once(const bench_cfg *bc, int steps, int tuned) {
    char cmd[768];
    const char *py = getenv("CRAM_PYTHON") ? getenv("CRAM_PYTHON") : "/usr/bin/python3";
    char envs[256] = "";
    if (tuned) {
        snprintf(envs, sizeof envs, "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp %s",
                 access("/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4", R_OK) == 0
                     ? "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4 "
                     : "");
    }
    snprintf(cmd, sizeof cmd,
             "env %s%s bench/cpu_train_peer.py --layers %d --hidden %d --intermed %d "
             "--heads %d --microbatch %d --steps %d --threads %d",
             envs, py, bc->L, bc->H, bc->I, bc->NH, bc->mb, steps, omp_get_max_threads());
    FILE *p = popen(cmd, "r");
    if (!p) return -1.0;
    char line[512];
    double tps = -1.0;
    while (fgets(line, sizeof line, p)) {
        char *q = strstr(line, "tokens_per_s=");
        if (strncmp(line, "RESULT", 6) == 0 && q) tps = atof(q + 13);
    }
    pclose(p);
    return tps;
}

/* the better of the two peer configurations, measured one after the other */
static double run_peer(const bench_cfg *bc, int steps) {
    if (getenv("CRAM_BENCH_NO_PEER")) return -1.0; /* cram alone, e.g. under perf */
    double plain = run_peer_once(bc, steps, 0);
    double tuned = getenv("CRAM_PEER_PLAIN") ? -1.0 : run_peer_once(bc, steps, 1);
    printf("#   pytorch as installed %.0f tokens/s, with OpenBLAS-openmp + tcmalloc %.0f\n", plain,
           tuned);
    return fmax(plain, tuned);
}

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "both";
    int steps = argc > 2 ? atoi(argv[2]) : 3, rounds = argc > 3 ? atoi(argv[3]) : 2;
    bench_cfg cfgs[] = {{"small", 4, 256, 1024, 4, 16}, {"full", 16, 768, 3072, 12, 8}};
    printf("# %s, %d threads\n", ops_cpu_blas_info(), omp_get_max_threads());
    double peak = sgemm_peak();
    printf("# sgemm 1024x2304x768 at start: %.1f GFLOP/s (re-measured before every round; the "
           "best is the peak)\n",
           peak);
    for (int k = 0; k < 2; k++) {
        if (strcmp(which, "both") != 0 && strcmp(which, cfgs[k].name) != 0) continue;
        const bench_cfg *bc = &cfgs[k];
        double best_c = 0.0, best_p = 0.0, loss = 0.0, ratios[16];
        int nr = 0;
        for (int r = 0; r < rounds && r < 16; r++) {
            double pk = sgemm_peak();
            peak = fmax(peak, pk);
            double c = run_cram(bc, steps, &loss), p = run_peer(bc, steps);
            printf("# %s round %d: cram %.0f tokens/s (loss %.3f), pytorch %.0f tokens/s, ratio "
                   "%.2f, sgemm %.1f GFLOP/s\n",
                   bc->name, r, c, loss, p, p > 0 ? c / p : 0.0, pk);
            fflush(stdout);
            best_c = fmax(best_c, c);
            best_p = fmax(best_p, p);
            if (p > 0) ratios[nr++] = c / p;
        }
        /* median of the per-round ratios: each pair ran back to back under similar load */
        for (int i = 1; i < nr; i++)
            for (int j = i; j > 0 && ratios[j] < ratios[j - 1]; j--) {
                double t = ratios[j];
                ratios[j] = ratios[j - 1];
                ratios[j - 1] = t;
            }
        double med =
            nr ? (nr % 2 ? ratios[nr / 2] : 0.5 * (ratios[nr / 2 - 1] + ratios[nr / 2])) : 0;
        double fpt = flops_per_token(bc, 32768, 128);
        printf("RESULT cpu_train model=%s microbatch=%d cram_tokens_per_s=%.0f "
               "pytorch_tokens_per_s=%.0f ratio_of_best=%.2f median_round_ratio=%.2f "
               "cram_gflops=%.1f cram_share_of_best_sgemm=%.0f%% pytorch_gflops=%.1f\n",
               bc->name, bc->mb, best_c, best_p, best_p > 0 ? best_c / best_p : 0.0, med,
               best_c * fpt / 1e9, 100.0 * best_c * fpt / 1e9 / peak, best_p * fpt / 1e9);
        fflush(stdout);
    }
    return 0;
}
