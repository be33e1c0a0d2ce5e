/* Checkpoints of a pretraining run: the intermediate state for exact resume (trainstate.h plus a
 * gradient side file when the state is taken between two optimizer updates) and the final model
 * folder (safetensors with the reference's names, model_config.json, tokenizer files). */
#include "train/train_internal.h"

#include "core/core.h"
#include "model/safetensors.h"
#include "train/trainstate.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Version of the progress words in the state file's position slots. Version 2: the loader's
 * index counts rows (version 1: microbatches of mbs_eff / world rows) and W_ROWS holds the
 * sequences trained so far (version 1: step * mbs_eff). */
#define PROGRESS_VERSION 2
enum {
    W_VERSION,
    W_EPOCH,
    W_INDEX,
    W_CUR_BS,
    W_ACC,
    W_LR,
    W_HAS_GRADS,
    W_GRADS_SUM,
    W_WIN_SUM,
    W_WIN_N,
    W_LAST_LOSS,
    W_MBS_EFF,
    W_WORLD,
    W_COUNT_V1,
    W_ROWS = W_COUNT_V1,
    W_COUNT
};

static uint64_t dbits(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static double bitsd(uint64_t u) {
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- leftovers of killed or failed writes ----
 * Atomic writes go to "<target>.tmp.<pid>" and are renamed into place; a process killed in
 * between (or a crash) leaves that temporary behind: a training state is 3 x 4 bytes per
 * parameter (1.3 GB for the full crammed-bert), a checkpoint folder a third of that. */

/* The pid of a name that ends in ".tmp.<digits>", else 0. */
static long tmp_pid(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t) return 0;
    for (const char *n; (n = strstr(t + 1, ".tmp.")) != NULL;)
        t = n;
    const char *d = t + 5;
    if (!*d) return 0;
    long pid = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || pid > 100000000L) return 0;
        pid = pid * 10 + (*d - '0');
    }
    return pid;
}

/* When the process pid started (seconds since the epoch, from /proc), or -1 when unknown. */
static double proc_start_time(long pid) {
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    FILE *fp = fopen(p, "r");
    if (!fp) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *s = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!s) return -1;
    /* field 3 (state) follows ") "; starttime is field 22 */
    unsigned long long start = 0;
    int field = 2;
    for (const char *c = s + 1; *c && field < 22; c++)
        if (*c == ' ') {
            field++;
            if (field == 22) start = strtoull(c + 1, NULL, 10);
        }
    if (field != 22) return -1;
    fp = fopen("/proc/stat", "r");
    if (!fp) return -1;
    long long btime = -1;
    char line[256];
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "btime %lld", &btime) == 1) break;
    fclose(fp);
    long hz = sysconf(_SC_CLK_TCK);
    if (btime < 0 || hz <= 0) return -1;
    return (double)btime + (double)start / (double)hz;
}

/* Whether the temporary full (pid in its name, last written at mtime) can no longer be finished
 * by the process that wrote it; why says how we know. Our own pid is never stale here. */
static bool tmp_is_stale(long pid, double mtime, char *why, size_t whylen) {
    if (pid == (long)getpid()) return false;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
        snprintf(why, whylen, "process %ld is gone", pid);
        return true;
    }
    /* start times from /proc are good to a second; give them two */
    double started = proc_start_time(pid);
    if (started > 0 && mtime < started - 2) {
        snprintf(why, whylen, "process %ld started after it was last written: the pid was reused",
                 pid);
        return true;
    }
    double self = proc_start_time((long)getpid());
    if (self > 0 && mtime < self - 2) {
        snprintf(why, whylen, "last written before this run started");
        return true;
    }
    return false;
}

/* Remove path: a file, or a folder with everything in it (links are removed, not followed).
 * Adds the bytes freed to *bytes. */
static int remove_tree(const char *path, uint64_t *bytes) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0) return -1;
        *bytes += (uint64_t)st.st_size;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) return -1;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char sub[2 * CORE_PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (remove_tree(sub, bytes)) rc = -1;
    }
    closedir(d);
    if (rmdir(path) != 0) rc = -1;
    return rc;
}

/* Remove the stale temporaries in dir whose names start with prefix (every one when prefix is
 * ""), logging each; returns how many were removed. */
static int remove_stale_in(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        long pid = tmp_pid(e->d_name);
        if (pid <= 0) continue;
        char full[2 * CORE_PATH_MAX], why[160];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(full, &st) != 0) continue;
        double mtime = (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec;
        if (!tmp_is_stale(pid, mtime, why, sizeof why)) continue;
        uint64_t bytes = 0;
        bool folder = S_ISDIR(st.st_mode);
        if (remove_tree(full, &bytes) == 0) {
            core_log_info("Removed the leftover of an interrupted write: %s %s (%s; %.1f MB).",
                          folder ? "folder" : "file", full, why, (double)bytes / 1e6);
            removed++;
        } else {
            core_log_warn("Cannot remove the leftover of an interrupted write %s (%s): %s", full,
                          why, strerror(errno));
        }
    }
    closedir(d);
    return removed;
}

/* The folder and the name of path. */
static void split_path(const char *path, char *dir, size_t dirlen, char *base, size_t baselen) {
    const char *slash = strrchr(path, '/');
    if (slash) {
        snprintf(dir, dirlen, "%.*s", (int)(slash - path), path);
        if (!dir[0]) snprintf(dir, dirlen, "/");
        snprintf(base, baselen, "%s", slash + 1);
    } else {
        snprintf(dir, dirlen, ".");
        snprintf(base, baselen, "%s", path);
    }
}

/* Leftovers of the training state at path: "<state>.tmp.<pid>" and the gradient side files'
 * "<state>.grads-<step>.tmp.<pid>". */
static int remove_stale_state(const char *state_path) {
    char dir[CORE_PATH_MAX], base[CORE_PATH_MAX];
    split_path(state_path, dir, sizeof dir, base, sizeof base);
    return remove_stale_in(dir, base);
}

static void checkpoints_dir(char *out, size_t outlen, const cfg_node *cfg) {
    const char *base = "outputs", *name = "default";
    cfg_node *bn = cfg_get(cfg, "base_dir"), *nn = cfg_get(cfg, "name");
    if (bn && bn->type == CFG_STR) base = bn->s;
    if (nn && nn->type == CFG_STR) name = nn->s;
    snprintf(out, outlen, "%s/%s/checkpoints", base, name);
}

int ckpt_remove_stale(const char *base_dir, const char *name) {
    char dir[CORE_PATH_MAX], state[CORE_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/%s/checkpoints", base_dir, name);
    snprintf(state, sizeof state, "%s/%s/intermediate_state.bin", base_dir, name);
    return remove_stale_in(dir, "") + remove_stale_state(state);
}

uint64_t ckpt_model_hash(const bert_model *m) {
    core_hash h;
    core_hash_init(&h, 0x6d6f64656cull);
    core_hash_update_u64(&h, (uint64_t)m->cfg.kind);
    core_hash_update_u64(&h, (uint64_t)m->cfg.V);
    core_hash_update_u64(&h, (uint64_t)m->nparams);
    for (int i = 0; i < m->nparams; i++) {
        const bert_param *p = &m->params[i];
        core_hash_update_str(&h, p->name);
        core_hash_update_u64(&h, (uint64_t)p->ndim);
        for (int d = 0; d < p->ndim; d++)
            core_hash_update_u64(&h, (uint64_t)p->shape[d]);
        core_hash_update_u64(&h, (uint64_t)p->offset);
    }
    return core_hash_final(&h) | 1; /* never 0: 0 means "do not check" to ts_read */
}

/* ---- the gradient side file: "CRAMGRAD", u32 version, u32 0, u64 step, u64 n, f32 g[n],
 * u64 core_hash64 of everything before ---- */
static const char grad_magic[8] = {'C', 'R', 'A', 'M', 'G', 'R', 'A', 'D'};

static void grads_path(char *out, size_t outlen, const char *state, int64_t step) {
    snprintf(out, outlen, "%s.grads-%lld", state, (long long)step);
}

static int write_grads(const char *path, const float *g, uint64_t n, int64_t step, uint64_t *sum,
                       char *err, size_t errlen) {
    unsigned char head[32] = {0};
    memcpy(head, grad_magic, 8);
    uint32_t version = 1;
    memcpy(head + 8, &version, 4);
    uint64_t st = (uint64_t)step;
    memcpy(head + 16, &st, 8);
    memcpy(head + 24, &n, 8);
    core_hash h;
    core_hash_init(&h, 0);
    core_hash_update(&h, head, sizeof head);
    core_hash_update(&h, g, n * sizeof(float));
    *sum = core_hash_final(&h);
    core_atomic_file f;
    if (core_atomic_open(&f, path, err, errlen)) return -1;
    if (fwrite(head, 1, sizeof head, f.fp) != sizeof head ||
        fwrite(g, sizeof(float), n, f.fp) != n || fwrite(sum, 8, 1, f.fp) != 1) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        core_atomic_abort(&f);
        return -1;
    }
    return core_atomic_commit(&f, err, errlen);
}

static int read_grads(const char *path, float *g, uint64_t n, int64_t step, uint64_t sum, char *err,
                      size_t errlen) {
    core_mmap map;
    if (core_mmap_open(&map, path, err, errlen)) return -1;
    const unsigned char *p = map.ptr;
    int rc = -1;
    uint64_t fstep, fn, fsum;
    if (map.size != 32 + n * sizeof(float) + 8 || memcmp(p, grad_magic, 8) != 0) {
        snprintf(err, errlen, "%s: not the gradient file of this state (size or magic)", path);
        goto done;
    }
    memcpy(&fstep, p + 16, 8);
    memcpy(&fn, p + 24, 8);
    memcpy(&fsum, p + map.size - 8, 8);
    if (fstep != (uint64_t)step || fn != n || fsum != sum ||
        core_hash64(p, map.size - 8, 0) != fsum) {
        snprintf(err, errlen, "%s: gradient file does not match the state (step or checksum)",
                 path);
        goto done;
    }
    memcpy(g, p + 32, n * sizeof(float));
    rc = 0;
done:
    core_mmap_close(&map);
    return rc;
}

int ckpt_save_state(const char *path, const bert_model *m, const train_progress *p, char *err,
                    size_t errlen) {
    remove_stale_state(path);
    const ops *o = m->ops;
    size_t n = m->numel;
    float *host = malloc(3 * n * sizeof(float));
    if (!host) {
        snprintf(err, errlen, "out of memory staging the training state (%zu MB)",
                 3 * n * sizeof(float) >> 20);
        return -1;
    }
    ts_header h;
    memset(&h, 0, sizeof h);
    h.step = (uint64_t)p->step;
    h.opt_t = (uint64_t)p->opt_t;
    h.elapsed_s = p->elapsed_s;
    h.seed = p->seed;
    h.model_hash = ckpt_model_hash(m);
    h.config_hash = p->config_hash;
    h.n = n;
    h.npos = W_COUNT;
    h.pos[W_VERSION] = PROGRESS_VERSION;
    h.pos[W_EPOCH] = (uint64_t)p->pos.epoch;
    h.pos[W_INDEX] = (uint64_t)p->pos.index;
    h.pos[W_CUR_BS] = (uint64_t)p->cur_bs;
    h.pos[W_ACC] = (uint64_t)p->acc;
    h.pos[W_LR] = dbits(p->lr);
    h.pos[W_WIN_SUM] = dbits(p->win_sum);
    h.pos[W_WIN_N] = (uint64_t)p->win_n;
    h.pos[W_LAST_LOSS] = dbits(p->last_loss);
    h.pos[W_MBS_EFF] = (uint64_t)p->mbs_eff;
    h.pos[W_WORLD] = (uint64_t)p->world;
    h.pos[W_ROWS] = (uint64_t)p->rows;
    h.rng_bytes = 0; /* every random stream is keyed by (seed, rank, step): no state to keep */
    int rc = 0;
    if (p->acc != 0) {
        char gp[CORE_PATH_MAX + 32];
        grads_path(gp, sizeof gp, path, p->step);
        o->download(o, host, m->g, n * sizeof(float));
        uint64_t sum = 0;
        rc = write_grads(gp, host, n, p->step, &sum, err, errlen);
        h.pos[W_HAS_GRADS] = 1;
        h.pos[W_GRADS_SUM] = sum;
    }
    if (rc == 0) {
        o->download(o, host, m->w, n * sizeof(float));
        o->download(o, host + n, m->m, n * sizeof(float));
        o->download(o, host + 2 * n, m->v, n * sizeof(float));
        if (ts_write(path, &h, host, host + n, host + 2 * n, err, errlen) != TS_OK) rc = -1;
    }
    free(host);
    if (rc == 0) {
        /* gradient files of other steps are stale now */
        char dir[CORE_PATH_MAX], base[CORE_PATH_MAX], keep[CORE_PATH_MAX + 64];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        snprintf(base, sizeof base, "%s", slash ? slash + 1 : dir);
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
        snprintf(keep, sizeof keep, "%s.grads-%lld", base, (long long)p->step);
        char prefix[CORE_PATH_MAX + 8];
        snprintf(prefix, sizeof prefix, "%s.grads-", base);
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
            if (p->acc != 0 && strcmp(e->d_name, keep) == 0) continue;
            char full[2 * CORE_PATH_MAX + 2];
            snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
            unlink(full);
        }
        if (d) closedir(d);
    }
    return rc;
}

int ckpt_load_state(const char *path, bert_model *m, train_progress *p, char *err, size_t errlen) {
    const ops *o = m->ops;
    size_t n = m->numel;
    float *host = malloc(3 * n * sizeof(float));
    if (!host) {
        snprintf(err, errlen, "out of memory reading the training state");
        return TS_EIO;
    }
    ts_header h;
    ts_status st =
        ts_read(path, &h, host, host + n, host + 2 * n, n, ckpt_model_hash(m), err, errlen);
    bool v1 = st == TS_OK && h.npos >= W_COUNT_V1 && h.pos[W_VERSION] == 1;
    if (st == TS_OK && !v1 && (h.npos < W_COUNT || h.pos[W_VERSION] != PROGRESS_VERSION)) {
        snprintf(err, errlen, "%s: progress words of an unknown version", path);
        st = TS_EFORMAT;
    }
    if (st != TS_OK) {
        free(host);
        return st;
    }
    if (h.pos[W_HAS_GRADS]) {
        char gp[CORE_PATH_MAX + 32];
        grads_path(gp, sizeof gp, path, (int64_t)h.step);
        float *g = malloc(n * sizeof(float));
        if (!g || read_grads(gp, g, n, (int64_t)h.step, h.pos[W_GRADS_SUM], err, errlen)) {
            if (!g) snprintf(err, errlen, "out of memory reading %s", gp);
            free(g);
            free(host);
            return TS_EFORMAT;
        }
        o->upload(o, m->g, g, n * sizeof(float));
        free(g);
    } else {
        o->memset0(o, m->g, n * sizeof(float));
    }
    o->upload(o, m->w, host, n * sizeof(float));
    o->upload(o, m->m, host + n, n * sizeof(float));
    o->upload(o, m->v, host + 2 * n, n * sizeof(float));
    bert_weights_changed(m);
    free(host);
    p->step = (int64_t)h.step;
    p->opt_t = (int64_t)h.opt_t;
    p->elapsed_s = h.elapsed_s;
    p->seed = h.seed;
    p->pos.epoch = (int64_t)h.pos[W_EPOCH];
    p->pos.index = (int64_t)h.pos[W_INDEX];
    p->cur_bs = (int64_t)h.pos[W_CUR_BS];
    p->acc = (int64_t)h.pos[W_ACC];
    p->lr = bitsd(h.pos[W_LR]);
    p->win_sum = bitsd(h.pos[W_WIN_SUM]);
    p->win_n = (int64_t)h.pos[W_WIN_N];
    p->last_loss = bitsd(h.pos[W_LAST_LOSS]);
    p->mbs_eff = (int64_t)h.pos[W_MBS_EFF];
    p->world = (int64_t)h.pos[W_WORLD];
    if (v1) { /* microbatches of the same size throughout */
        p->pos.index *= p->mbs_eff / (p->world > 0 ? p->world : 1);
        p->rows = p->step * p->mbs_eff;
    } else {
        p->rows = (int64_t)h.pos[W_ROWS];
    }
    return 0;
}

/* ---- the final folder ---- */

int ckpt_write_model(const char *path, const bert_model *m, char *err, size_t errlen) {
    float *host = malloc(m->numel * sizeof(float) + 64);
    int ntens = 2 * m->nparams + m->cfg.L;
    st_write_tensor *t = calloc((size_t)ntens, sizeof *t);
    char(*names)[128] = calloc((size_t)m->cfg.L + 1, sizeof *names);
    if (!host || !t || !names) {
        free(host), free(t), free(names);
        snprintf(err, errlen, "out of memory writing %s", path);
        return -1;
    }
    m->ops->download(m->ops, host, m->w, m->numel * sizeof(float));
    int k = 0;
    for (int i = 0; i < m->nparams; i++) {
        const bert_param *p = &m->params[i];
        t[k++] = (st_write_tensor){p->name, ST_F32, p->ndim, p->shape, host + p->offset};
    }
    /* the reference keeps each attention's 1/sqrt(head width) as a persistent scalar buffer */
    static float norm_factor;
    if (m->cfg.kind == BERT_ARCH_CRAMMED) {
        norm_factor = 1.0f / sqrtf((float)(m->cfg.H / m->cfg.NH));
        for (int l = 0; l < m->cfg.L; l++) {
            snprintf(names[l], sizeof names[l], "encoder.layers.%d.attn.self_attention.norm_factor",
                     l);
            t[k++] = (st_write_tensor){names[l], ST_F32, 0, NULL, &norm_factor};
        }
    }
    for (int i = 0; i < m->nparams; i++) { /* the tied decoder: a second copy, as the reference */
        const bert_param *p = &m->params[i];
        if (p->alias[0])
            t[k++] = (st_write_tensor){p->alias, ST_F32, p->ndim, p->shape, host + p->offset};
    }
    const char *mk[] = {"format"}, *mv[] = {"pt"};
    st_status st = st_write_checked(path, t, k, mk, mv, 1, err, errlen);
    free(host), free(t), free(names);
    return st == ST_OK ? 0 : -1;
}

/* The resolved arch config as JSON with the vocabulary size filled in. */
static int write_model_config(const char *path, const cfg_node *cfg, int V, char *err,
                              size_t errlen) {
    const cfg_node *arch = cfg_get(cfg, "arch");
    cfg_node *a = arch ? cfg_clone(arch) : cfg_new(CFG_MAP);
    cfg_node *v = cfg_new(CFG_INT);
    v->i = V;
    cfg_node *emb = cfg_map_get(a, "embedding");
    if (emb && emb->type == CFG_MAP)
        cfg_map_set(emb, "vocab_size", v);
    else
        cfg_map_set(a, "vocab_size", v);
    char *json = cfg_canonical_json(a);
    int rc = core_atomic_write(path, json, strlen(json), err, errlen);
    free(json);
    cfg_free(a);
    return rc;
}

static int move_files(const char *from, const char *to, char *err, size_t errlen) {
    DIR *d = opendir(from);
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", from, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char a[2 * CORE_PATH_MAX], b[2 * CORE_PATH_MAX];
        snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        if (rename(a, b) != 0) {
            snprintf(err, errlen, "cannot move %s to %s: %s", a, b, strerror(errno));
            rc = -1;
            break;
        }
    }
    closedir(d);
    return rc;
}

int ckpt_save_final(char *out, size_t outlen, const cfg_node *cfg, const bert_model *m,
                    const tok_tokenizer *tok, double loss, bool dryrun, char *err, size_t errlen) {
    char ckdir[CORE_PATH_MAX];
    checkpoints_dir(ckdir, sizeof ckdir, cfg);
    char arch_names[256] = "";
    cfg_node *an = cfg_get(cfg, "arch.architectures");
    if (an && an->type == CFG_LIST)
        for (int i = 0; i < an->n; i++)
            if (an->items[i]->type == CFG_STR)
                strncat(arch_names, an->items[i]->s, sizeof arch_names - strlen(arch_names) - 1);
    if (!arch_names[0]) snprintf(arch_names, sizeof arch_names, "%s", m->cfg.arch_name);
    char date[16];
    core_local_time_format(date, sizeof date, time(NULL), "%Y-%m-%d");
    if (snprintf(out, outlen, "%s/%s_%s_%.4f", ckdir, arch_names, date, loss) >= (int)outlen) {
        snprintf(err, errlen, "checkpoint path too long");
        return -1;
    }
    /* a dry run writes no model, and no folder either: an empty one would be a checkpoint
     * without files for eval.checkpoint=latest to find */
    if (dryrun) return 0;
    remove_stale_in(ckdir, "");

    char tmp[CORE_PATH_MAX + 32], path[CORE_PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    if (core_mkdir_p(tmp, err, errlen)) return -1;
    char terr[TOK_ERRLEN] = "";
    int rc = -1;
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    if (ckpt_write_model(path, m, err, errlen)) goto fail;
    snprintf(path, sizeof path, "%s/model_config.json", tmp);
    if (write_model_config(path, cfg, m->cfg.V, err, errlen)) goto fail;
    if (tok_save(tok, tmp, terr) != TOK_OK) {
        snprintf(err, errlen, "saving the tokenizer to %s: %s", tmp, terr);
        goto fail;
    }
    /* a fresh folder appears whole; an existing one (same day, same loss) gets each file
     * replaced atomically */
    if (rename(tmp, out) == 0) return 0;
    if (errno != EEXIST && errno != ENOTEMPTY) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
        goto fail;
    }
    if (move_files(tmp, out, err, errlen) == 0) rc = 0;
fail : /* a failed write (a full disk, a file size limit) leaves no half-written folder behind */
{
    uint64_t bytes = 0;
    if (remove_tree(tmp, &bytes) != 0)
        core_log_warn("cannot remove the temporary folder %s: %s", tmp, strerror(errno));
}
    return rc;
}
