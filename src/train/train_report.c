/* The FLOP count behind a run's MFU figure, the peak it is measured against, and what a run
 * reports about its device: the GPU at start, the memory check before allocation, the peak
 * memory at the end (train_report.h). */
#include "train/train.h"
#include "train/train_report.h"

#include "core/core.h"
#include "model/model.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double train_flops_per_token(const bert_config *c, int S) {
    double L = c->L, H = c->H, I = c->I, V = c->V;
    double ffn = c->glu ? 1.5 * H * I : 2.0 * H * I;
    double share = c->sparse_pred > 0 ? c->sparse_pred : 1.0; /* decoded share of the rows */
    double head = c->head_transform ? H * H : 0.0;
    double n_eff = L * (4.0 * H * H + ffn) + share * (V * H + head);
    return 6.0 * n_eff + 12.0 * L * S * H;
}

/* ---- the dense peaks of known cards ---- */

typedef struct card_peak {
    const char *word; /* words of the device name, matched whole and without regard to case */
    int cc_major;     /* the card's compute capability, so a stray name match is rejected */
    double bf16;      /* dense bf16 tensor-core TFLOP/s with fp32 accumulation; 0: unknown */
    double fp32;      /* dense fp32 TFLOP/s on the CUDA cores (TF32 off); 0: unknown */
} card_peak;

/* The figures are the vendor's datasheet numbers without structured sparsity (the datasheets
 * print the sparse rate, twice these, beside a footnote). The first match wins, so the specific
 * names come before the general ones; a row of zeros keeps a variant from matching its sibling. */
static const card_peak card_peaks[] = {
    {"H100 PCIe", 9, 756, 51},    /* H100 datasheet, PCIe card */
    {"H100 NVL", 9, 835, 60},     /* H100 datasheet, NVL card */
    {"H200 NVL", 9, 835, 60},     /* H200 datasheet, NVL card */
    {"H100", 9, 989, 67},         /* SXM5 ("NVIDIA H100 80GB HBM3") */
    {"H200", 9, 989, 67},         /* SXM */
    {"GH200", 9, 989, 67},        /* the Grace Hopper module's GPU runs at the H100 SXM rate */
    {"A100", 8, 312, 19.5},       /* SXM4 and PCIe, 40 and 80 GB alike */
    {"A10", 8, 125, 31.2},        /* not the A10G, whose tensor rate is lower */
    {"A6000", 8, 154.8, 38.7},    /* RTX A6000 datasheet: 309.7 sparse */
    {"L40S", 8, 362, 91.6},       /* L40S datasheet: 362.05 dense */
    {"L4", 8, 121, 30.3},         /* L4 datasheet: 242 sparse */
    {"RTX 4090 D", 8, 0, 0},      /* fewer SMs than the 4090: no figure here */
    {"RTX 4090", 8, 165.2, 82.6}, /* Ada whitepaper: fp32 accumulation runs at half the fp16 rate */
};

/* Whether `word` occurs in `name` as whole words: no letter or digit right before or after. */
static bool has_words(const char *name, const char *word) {
    size_t n = strlen(name), w = strlen(word);
    for (size_t i = 0; i + w <= n; i++) {
        if (strncasecmp(name + i, word, w) != 0) continue;
        bool left = i == 0 || !isalnum((unsigned char)name[i - 1]);
        bool right = i + w == n || !isalnum((unsigned char)name[i + w]);
        if (left && right) return true;
    }
    return false;
}

double train_gpu_peak_tflops(const char *name, int cc_major, int cc_minor, bool bf16) {
    (void)cc_minor;
    if (!name) return 0;
    for (size_t k = 0; k < sizeof card_peaks / sizeof *card_peaks; k++) {
        const card_peak *p = &card_peaks[k];
        if (!has_words(name, p->word)) continue;
        if (cc_major > 0 && cc_major != p->cc_major) return 0;
        return bf16 ? p->bf16 : p->fp32;
    }
    return 0;
}

/* A positive finite number, or 0. */
static double positive(const char *s) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ')
        end++;
    return end != s && !*end && errno == 0 && isfinite(v) && v > 0 ? v : 0;
}

double train_peak_gflops_known(const char *env_tflops, const char *env_gflops, const char *gpu_name,
                               int cc_major, int cc_minor, bool bf16, char *how, size_t howlen) {
    char ignored[256] = "";
    double t = positive(env_tflops), g = positive(env_gflops);
    if (env_tflops && *env_tflops && t == 0)
        snprintf(ignored, sizeof ignored,
                 "; CRAM_PEAK_TFLOPS=%.40s ignored (not a positive number)", env_tflops);
    else if (env_gflops && *env_gflops && g == 0 && t == 0)
        snprintf(ignored, sizeof ignored,
                 "; CRAM_PEAK_GFLOPS=%.40s ignored (not a positive number)", env_gflops);
    if (t > 0) {
        snprintf(how, howlen, "from CRAM_PEAK_TFLOPS");
        return 1000.0 * t;
    }
    if (g > 0) {
        snprintf(how, howlen, "from CRAM_PEAK_GFLOPS");
        return g;
    }
    const char *prec = bf16 ? "bf16" : "fp32";
    if (!gpu_name) {
        snprintf(how, howlen, "%s", ignored[0] ? ignored + 2 : "");
        return -1;
    }
    double tf = train_gpu_peak_tflops(gpu_name, cc_major, cc_minor, bf16);
    if (tf > 0) {
        snprintf(how, howlen,
                 "the dense %s peak of the %.100s from cram's table; CRAM_PEAK_TFLOPS "
                 "overrides it%s",
                 prec, gpu_name, ignored);
        return 1000.0 * tf;
    }
    snprintf(how, howlen,
             "MFU is not computed: cram's table has no dense %s peak for the %.100s (compute "
             "capability %d.%d); set CRAM_PEAK_TFLOPS to the card's dense %s TFLOP/s (without "
             "sparsity) to get it%s",
             prec, gpu_name, cc_major, cc_minor, prec, ignored);
    return 0;
}

void train_format_flops(char *buf, size_t len, double gflops) {
    if (gflops >= 1000)
        snprintf(buf, len, "%.4g TFLOP/s", gflops / 1000);
    else
        snprintf(buf, len, "%.0f GFLOP/s", gflops);
}

void train_format_bytes(char *buf, size_t len, size_t bytes) {
    double b = (double)bytes;
    if (bytes >= ((size_t)1 << 30))
        snprintf(buf, len, "%.2f GiB", b / (double)(1 << 30));
    else if (bytes >= ((size_t)1 << 20))
        snprintf(buf, len, "%.1f MiB", b / (double)(1 << 20));
    else if (bytes >= 1024)
        snprintf(buf, len, "%.1f KiB", b / 1024.0);
    else
        snprintf(buf, len, "%zu bytes", bytes);
}

/* ---- the memory check ---- */

/* The largest B <= hi with B * world dividing batch, or 0. */
static int largest_divisor(int hi, int64_t batch, int world) {
    for (int b = hi; b >= 1; b--)
        if (batch % ((int64_t)b * world) == 0) return b;
    return 0;
}

bool train_mem_fits(char *msg, size_t len, const bert_config *c, const ops *o, int B, int S,
                    int64_t batch, int world, size_t free_bytes, const char *where,
                    const char *mbs_key, const char *batch_key) {
    if (world < 1) world = 1;
    bert_mem_plan p;
    bert_plan_memory(&p, c, o, B, S);
    size_t usable =
        free_bytes > TRAIN_DEVICE_RESERVE_BYTES ? free_bytes - TRAIN_DEVICE_RESERVE_BYTES : 0;
    char need[32], fr[32], st[32], wk[32], tb[32], ac[32], res[32];
    train_format_bytes(need, sizeof need, p.total);
    train_format_bytes(fr, sizeof fr, free_bytes);
    train_format_bytes(st, sizeof st, p.state);
    train_format_bytes(wk, sizeof wk, p.working);
    train_format_bytes(tb, sizeof tb, p.tables);
    train_format_bytes(ac, sizeof ac, p.acts);
    train_format_bytes(res, sizeof res, TRAIN_DEVICE_RESERVE_BYTES);
    char parts[256];
    if (p.working) {
        snprintf(parts, sizeof parts,
                 "fp32 weights, gradients and AdamW moments %s, %s working weights %s, activations "
                 "%s, tables %s",
                 st, o->precision, wk, ac, tb);
    } else {
        snprintf(parts, sizeof parts,
                 "fp32 weights, gradients and AdamW moments %s, activations %s, tables %s", st, ac,
                 tb);
    }
    if (p.total <= usable) {
        snprintf(msg, len,
                 "Device memory: %s=%d at sequence length %d needs %s for the model (%s); %s has "
                 "%s free, %s of it kept in reserve.",
                 mbs_key, B, S, need, parts, where, fr, res);
        return true;
    }
    size_t all = p.total + TRAIN_DEVICE_RESERVE_BYTES;
    char needall[32];
    train_format_bytes(needall, sizeof needall, all);
    int n = snprintf(msg, len,
                     "not enough memory on %s for %s=%d at sequence length %d: the run needs %s "
                     "(%zu bytes), %s for the model (%s) and a reserve of %s for library "
                     "workspaces, kernels and scratch, but %s (%zu bytes) are free. ",
                     where, mbs_key, B, S, needall, all, need, parts, res, fr, free_bytes);
    if (n < 0 || (size_t)n >= len) return false;
    char *tail = msg + n;
    size_t tlen = len - (size_t)n;
    int best = B > 1 ? bert_plan_max_batch(c, o, S, usable, B - 1) : 0;
    if (best == 0) {
        bert_mem_plan one;
        bert_plan_memory(&one, c, o, 1, S);
        char n1[32];
        train_format_bytes(n1, sizeof n1, one.total);
        snprintf(tail, tlen,
                 "Not even a microbatch of 1 fits (it needs %s): free memory on the device, or use "
                 "a smaller model or a shorter sequence.",
                 n1);
        return false;
    }
    int div = batch > 0 ? largest_divisor(best, batch, world) : best;
    char per_rank[64] = "";
    if (world > 1) snprintf(per_rank, sizeof per_rank, " over %d ranks", world);
    if (div == best)
        snprintf(tail, tlen,
                 "The largest microbatch that fits is %d: set %s=%d (the batch size stays; "
                 "gradients are accumulated over more microbatches).",
                 best, mbs_key, best);
    else if (div > 0)
        snprintf(tail, tlen,
                 "The largest microbatch that fits is %d; the largest that fits and divides "
                 "%s=%lld%s is %d: set %s=%d (the batch size stays; gradients are accumulated over "
                 "more microbatches).",
                 best, batch_key, (long long)batch, per_rank, div, mbs_key, div);
    else
        snprintf(tail, tlen,
                 "The largest microbatch that fits is %d, but none up to it divides %s=%lld%s: "
                 "set %s=%d and a %s it divides.",
                 best, batch_key, (long long)batch, per_rank, mbs_key, best, batch_key);
    return false;
}

/* ---- the device of a run ---- */

void train_device_init(train_device *d, const ops *o, int dev) {
    memset(d, 0, sizeof *d);
    /* the CUDA table; a CPU table may also keep its buffers out of the host's reach (a test
     * wrapper), which makes it no GPU */
    d->gpu = o->device_memory && strcmp(o->name, "cuda") == 0;
    d->dev = dev < 0 ? 0 : dev;
    if (!d->gpu) return;
    char err[256];
    if (gpu_device_query(d->dev, &d->info, err, sizeof err) != 0) {
        core_log_warn("cannot read the properties of GPU %d: %s", d->dev, err);
        return;
    }
    d->have_info = true;
}

void train_device_log(const train_device *d) {
    if (!d->gpu || !d->have_info) return;
    char err[256];
    size_t fr = 0, total = 0;
    char ft[32] = "?", tt[32];
    if (gpu_mem_info(d->dev, &fr, &total, err, sizeof err) == 0)
        train_format_bytes(ft, sizeof ft, fr);
    train_format_bytes(tt, sizeof tt, d->info.total_mem);
    const gpu_info *g = &d->info;
    core_log_info("GPU : %s. CUDA: %d.%d (driver %d.%d).", g->name, g->runtime_version / 1000,
                  g->runtime_version % 1000 / 10, g->driver_version / 1000,
                  g->driver_version % 1000 / 10);
    core_log_info(
        "GPU %d (%d visible): compute capability %d.%d, %d SMs, memory %s total, %s free.", d->dev,
        g->count, g->cc_major, g->cc_minor, g->sm_count, tt, ft);
}

double train_device_peak_known(const train_device *d, const ops *o, char *how, size_t howlen) {
    bool bf16 = strcmp(o->precision, "bf16") == 0;
    const char *name = NULL;
    if (d->gpu) name = d->have_info ? d->info.name : "GPU (its name could not be read)";
    return train_peak_gflops_known(getenv("CRAM_PEAK_TFLOPS"), getenv("CRAM_PEAK_GFLOPS"), name,
                                   d->info.cc_major, d->info.cc_minor, bf16, how, howlen);
}

/* The test hook CRAM_TEST_DEVICE_FREE_BYTES=<bytes>: the memory check runs with this free figure
 * on any backend, the CPU included, so tests reach the refusal without a GPU. Returns whether
 * it is set (and valid). */
static bool hook_free_bytes(size_t *free_bytes) {
    const char *env = getenv("CRAM_TEST_DEVICE_FREE_BYTES");
    if (!env || !*env) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(env, &end, 10);
    if (end == env || *end || errno || env[0] == '-') {
        core_log_warn("CRAM_TEST_DEVICE_FREE_BYTES=%s ignored: expected a number of bytes", env);
        return false;
    }
    core_log_warn("Test hook CRAM_TEST_DEVICE_FREE_BYTES=%s: the device memory check runs with "
                  "this free figure.",
                  env);
    *free_bytes = (size_t)v;
    return true;
}

int train_device_mem_check(const train_device *d, const ops *o, const bert_config *c, int B, int S,
                           int64_t batch, int world, const char *mbs_key, const char *batch_key,
                           char *msg, size_t len) {
    size_t fr = 0, total = 0;
    char where[320], err[256];
    msg[0] = '\0';
    if (hook_free_bytes(&fr)) {
        snprintf(where, sizeof where, "the test device of CRAM_TEST_DEVICE_FREE_BYTES");
    } else if (d->gpu) {
        if (gpu_mem_info(d->dev, &fr, &total, err, sizeof err) != 0) {
            core_log_warn("device memory not checked: %s", err);
            return 0;
        }
        snprintf(where, sizeof where, "GPU %d (%.256s)", d->dev, d->have_info ? d->info.name : "?");
    } else {
        return 0; /* host memory: the operating system decides */
    }
    return train_mem_fits(msg, len, c, o, B, S, batch, world, fr, where, mbs_key, batch_key) ? 0
                                                                                             : 2;
}

void train_device_mem_read(train_device_mem *m, const train_device *d) {
    memset(m, 0, sizeof *m);
    if (!d->gpu) return;
    m->valid = true;
    gpu_alloc_stats(&m->in_use, &m->peak);
    size_t fr = 0, total = 0;
    char err[256];
    if (gpu_mem_info(d->dev, &fr, &total, err, sizeof err) == 0 && total >= fr) {
        m->dev_used = total - fr;
        m->dev_total = total;
    }
}

void train_device_mem_line(char *buf, size_t len, const train_device_mem *m) {
    const double gib = (double)(1 << 30);
    int n = snprintf(buf, len, "Max. Mem allocated: %.3f GB (cram's device buffers at their peak).",
                     (double)m->peak / gib);
    if (n > 0 && (size_t)n < len && m->dev_total > 0)
        snprintf(buf + n, len - (size_t)n,
                 " In use on the device: %.3f GB of %.3f GB (the driver's view: CUDA context and "
                 "other processes included).",
                 (double)m->dev_used / gib, (double)m->dev_total / gib);
}

int train_format_system_yaml(char *buf, size_t len, const train_device *d,
                             const train_device_mem *m, int world, double ram_gib) {
    const double gib = (double)(1 << 30);
    char name[2 * sizeof d->info.name + 1] = "";
    if (d->gpu && d->have_info) { /* a single-quoted YAML scalar doubles its quotes */
        size_t j = 0;
        for (const char *s = d->info.name; *s && j + 2 < sizeof name; s++) {
            if (*s == '\'') name[j++] = '\'';
            name[j++] = *s;
        }
        name[j] = '\0';
    }
    if (!d->gpu || !m->valid)
        return snprintf(buf, len,
                        "GPU: '%s'\nnumGPUs: %d\nVRAM: 0.0\nVRAM_device: 0.0\nRAM: %.3f\nkWh: "
                        ".nan\n",
                        name, d->gpu ? (world < 1 ? 1 : world) : 0, ram_gib);
    return snprintf(
        buf, len, "GPU: '%s'\nnumGPUs: %d\nVRAM: %.6f\nVRAM_device: %.6f\nRAM: %.3f\nkWh: .nan\n",
        name, world < 1 ? 1 : world, (double)m->peak / gib, (double)m->dev_used / gib, ram_gib);
}
