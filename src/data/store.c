/* The token store: rows files (train.bin, valid.bin) with a self-describing header and a payload
 * checksum, written by a streaming writer and read back through mmap; and the store folder (rows,
 * tokenizer/, meta.json) opened and checked as a whole. Format spec: docs/data.md. */
#include "data/data.h"

#include "core/core.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- checksum ----------------------------------------------------------------------------- */
/* FNV-style multiply-xor over 64-bit little-endian words: each step is a bijection of the state,
 * so changing any single word always changes the chunk hash. ~8x faster than byte-wise FNV. */
static uint64_t chunk_hash(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    if (k < n) {
        uint64_t w = 0;
        memcpy(&w, p + k, n - k);
        h = (h ^ w) * 0x100000001b3ull;
    }
    return h ^ (h >> 32);
}

uint64_t store_checksum(const void *payload, size_t n) {
    size_t nchunks = (n + STORE_CHUNK_BYTES - 1) / STORE_CHUNK_BYTES;
    uint64_t *hs = xmalloc((nchunks ? nchunks : 1) * sizeof *hs);
    const uint8_t *p = payload;
#pragma omp parallel for schedule(static)
    for (long c = 0; c < (long)nchunks; c++) {
        size_t off = (size_t)c * STORE_CHUNK_BYTES;
        size_t len = n - off < STORE_CHUNK_BYTES ? n - off : STORE_CHUNK_BYTES;
        hs[c] = chunk_hash(p + off, len);
    }
    core_hash s;
    core_hash_init(&s, 0x524f5753u);
    for (size_t c = 0; c < nchunks; c++)
        core_hash_update_u64(&s, hs[c]);
    free(hs);
    return core_hash_final(&s);
}

/* The same checksum, read through a 1 MiB buffer per thread with pread instead of touching the
 * mapping: verifying a large store then does not fill the process's RSS with its pages. */
static int checksum_file(const char *path, uint64_t n, uint64_t *out, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        core_errorf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    uint64_t nchunks = (n + STORE_CHUNK_BYTES - 1) / STORE_CHUNK_BYTES;
    uint64_t *hs = xmalloc((nchunks ? nchunks : 1) * sizeof *hs);
    int bad = 0;
#pragma omp parallel reduction(| : bad)
    {
        uint8_t *buf = xmalloc(STORE_CHUNK_BYTES);
#pragma omp for schedule(static)
        for (long c = 0; c < (long)nchunks; c++) {
            uint64_t off = (uint64_t)c * STORE_CHUNK_BYTES;
            size_t len = n - off < STORE_CHUNK_BYTES ? (size_t)(n - off) : STORE_CHUNK_BYTES;
            size_t got = 0;
            while (got < len) {
                ssize_t r =
                    pread(fd, buf + got, len - got, (off_t)(STORE_HEADER_BYTES + off + got));
                if (r <= 0) break;
                got += (size_t)r;
            }
            if (got != len) bad = 1;
            hs[c] = chunk_hash(buf, len);
        }
        free(buf);
    }
    close(fd);
    if (bad) {
        free(hs);
        core_errorf(err, errlen, "reading %s failed (truncated while open?)", path);
        return -1;
    }
    core_hash s;
    core_hash_init(&s, 0x524f5753u);
    for (uint64_t c = 0; c < nchunks; c++)
        core_hash_update_u64(&s, hs[c]);
    free(hs);
    *out = core_hash_final(&s);
    return 0;
}

/* ---- header ------------------------------------------------------------------------------- */
static void put_u32(uint8_t *p, uint32_t v) {
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++)
        v |= (uint32_t)p[k] << (8 * k);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static void header_pack(uint8_t h[STORE_HEADER_BYTES], int dtype, int32_t vocab, int32_t row_len,
                        int64_t rows, uint64_t checksum) {
    memset(h, 0, STORE_HEADER_BYTES);
    memcpy(h, STORE_MAGIC, 8);
    put_u32(h + 8, STORE_VERSION);
    put_u32(h + 12, (uint32_t)dtype);
    put_u32(h + 16, (uint32_t)vocab);
    put_u32(h + 20, (uint32_t)row_len);
    put_u64(h + 24, (uint64_t)rows);
    put_u64(h + 32, checksum);
    put_u64(h + 40, core_hash64(h, 40, 0));
}

/* ---- writer ------------------------------------------------------------------------------- */
int store_writer_open(store_writer *w, const char *path, int32_t vocab_size, int32_t row_len,
                      char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    if (vocab_size <= 0 || row_len <= 0) {
        core_errorf(err, errlen, "%s: bad shape (vocab %d, row length %d)", path, vocab_size,
                    row_len);
        return -1;
    }
    if (core_atomic_open(&w->f, path, err, errlen) != 0) return -1;
    w->dtype_bytes = vocab_size <= 65536 ? 2 : 4;
    w->vocab_size = vocab_size;
    w->row_len = row_len;
    w->chunk = xmalloc(STORE_CHUNK_BYTES);
    core_hash s;
    core_hash_init(&s, 0x524f5753u);
    w->combine = s.h;
    uint8_t h[STORE_HEADER_BYTES] = {0};
    if (fwrite(h, 1, sizeof h, w->f.fp) != sizeof h) {
        core_errorf(err, errlen, "writing %s: %s", path, strerror(errno));
        store_writer_abort(w);
        return -1;
    }
    return 0;
}

static int flush_chunk(store_writer *w, char *err, size_t errlen) {
    if (!w->chunk_used) return 0;
    uint64_t ch = chunk_hash(w->chunk, w->chunk_used);
    core_hash s = {w->combine};
    core_hash_update_u64(&s, ch);
    w->combine = s.h;
    w->nchunks++;
    if (fwrite(w->chunk, 1, w->chunk_used, w->f.fp) != w->chunk_used) {
        core_errorf(err, errlen, "writing %s: %s", w->f.path, strerror(errno));
        return -1;
    }
    w->chunk_used = 0;
    return 0;
}

int store_writer_append(store_writer *w, const int32_t *rows, int64_t nrows, char *err,
                        size_t errlen) {
    size_t n = (size_t)nrows * (size_t)w->row_len;
    for (size_t k = 0; k < n; k++) {
        if (w->chunk_used + (size_t)w->dtype_bytes > STORE_CHUNK_BYTES &&
            flush_chunk(w, err, errlen) != 0)
            return -1;
        uint32_t v = (uint32_t)rows[k];
        uint8_t *p = w->chunk + w->chunk_used;
        if (w->dtype_bytes == 2) {
            p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
        } else {
            put_u32(p, v);
        }
        w->chunk_used += (size_t)w->dtype_bytes;
    }
    w->row_count += nrows;
    return 0;
}

int store_writer_finish(store_writer *w, char *err, size_t errlen) {
    if (flush_chunk(w, err, errlen) != 0) goto fail;
    core_hash s = {w->combine};
    uint8_t h[STORE_HEADER_BYTES];
    header_pack(h, w->dtype_bytes, w->vocab_size, w->row_len, w->row_count, core_hash_final(&s));
    if (fseek(w->f.fp, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->f.fp) != sizeof h) {
        core_errorf(err, errlen, "writing %s: %s", w->f.path, strerror(errno));
        goto fail;
    }
    if (core_atomic_commit(&w->f, err, errlen) != 0) goto fail;
    free(w->chunk);
    w->chunk = NULL;
    return 0;
fail:
    store_writer_abort(w);
    return -1;
}

void store_writer_abort(store_writer *w) {
    core_atomic_abort(&w->f);
    free(w->chunk);
    w->chunk = NULL;
}

/* ---- reader ------------------------------------------------------------------------------- */
int store_rows_open(store_rows *r, const char *path, store_verify v, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    char e2[512];
    if (core_mmap_open(&r->map, path, e2, sizeof e2) != 0) {
        core_errorf(err, errlen, "%s", e2);
        return -1;
    }
    const uint8_t *h = r->map.ptr;
    if (r->map.size < STORE_HEADER_BYTES) {
        core_errorf(err, errlen, "%s is truncated (%zu bytes, shorter than its header)", path,
                    r->map.size);
        goto fail;
    }
    if (memcmp(h, STORE_MAGIC, 8) != 0) {
        core_errorf(err, errlen, "%s is not a cram rows file (bad magic)", path);
        goto fail;
    }
    if (get_u64(h + 40) != core_hash64(h, 40, 0)) {
        core_errorf(err, errlen, "%s has a damaged header (header checksum mismatch)", path);
        goto fail;
    }
    uint32_t version = get_u32(h + 8);
    if (version != STORE_VERSION) {
        core_errorf(err, errlen, "%s has format version %u; this cram reads version %u", path,
                    version, STORE_VERSION);
        goto fail;
    }
    r->dtype_bytes = (int)get_u32(h + 12);
    r->vocab_size = (int32_t)get_u32(h + 16);
    r->row_len = (int32_t)get_u32(h + 20);
    r->row_count = (int64_t)get_u64(h + 24);
    r->checksum = get_u64(h + 32);
    if ((r->dtype_bytes != 2 && r->dtype_bytes != 4) || r->row_len <= 0 || r->vocab_size <= 0 ||
        r->row_count < 0 || (r->dtype_bytes == 2 && r->vocab_size > 65536)) {
        core_errorf(err, errlen, "%s has an invalid header (dtype %d, vocab %d, row length %d)",
                    path, r->dtype_bytes, r->vocab_size, r->row_len);
        goto fail;
    }
    uint64_t row_bytes = (uint64_t)r->row_len * (uint64_t)r->dtype_bytes;
    if (r->row_len > (1 << 24) || (uint64_t)r->row_count > (r->map.size / row_bytes) + 1) {
        core_errorf(err, errlen, "%s is truncated: the header promises %lld rows of %d ids", path,
                    (long long)r->row_count, r->row_len);
        goto fail;
    }
    uint64_t payload = (uint64_t)r->row_count * row_bytes;
    if (r->map.size - STORE_HEADER_BYTES != payload) {
        core_errorf(err, errlen, "%s is %s: %zu bytes of rows, the header promises %llu", path,
                    r->map.size - STORE_HEADER_BYTES < payload ? "truncated" : "too long",
                    r->map.size - STORE_HEADER_BYTES, (unsigned long long)payload);
        goto fail;
    }
    r->payload = h + STORE_HEADER_BYTES;
    bool full = v == STORE_VERIFY_FULL || (v == STORE_VERIFY_AUTO && payload <= (1ull << 30));
    if (full) {
        uint64_t sum;
        if (checksum_file(path, payload, &sum, err, errlen) != 0) goto fail;
        if (sum != r->checksum) {
            core_errorf(err, errlen, "%s is corrupted (payload checksum mismatch)", path);
            goto fail;
        }
    }
    return 0;
fail:
    core_mmap_close(&r->map);
    r->payload = NULL;
    return -1;
}

void store_rows_close(store_rows *r) {
    core_mmap_close(&r->map);
    r->payload = NULL;
}

void store_rows_get(const store_rows *r, int64_t i, int32_t *out) {
    size_t n = (size_t)r->row_len;
    const uint8_t *p = r->payload + (size_t)i * n * (size_t)r->dtype_bytes;
    if (r->dtype_bytes == 2)
        for (size_t k = 0; k < n; k++)
            out[k] = (int32_t)(p[2 * k] | (p[2 * k + 1] << 8));
    else
        for (size_t k = 0; k < n; k++)
            out[k] = (int32_t)get_u32(p + 4 * k);
}

/* ---- the folder --------------------------------------------------------------------------- */
int store_dir_name(char *out, size_t outlen, const cfg_node *data, char *err, size_t errlen) {
    const char *name = NULL, *tok = NULL;
    cfg_node *n = cfg_map_get(data, "name"), *t = cfg_map_get(data, "tokenizer"),
             *v = cfg_map_get(data, "vocab_size");
    if (n && n->type == CFG_STR) name = n->s;
    if (t && t->type == CFG_STR) tok = t->s;
    if (!name || !*name || strchr(name, '/')) {
        core_errorf(err, errlen, "data.name must be a non-empty folder name");
        return -1;
    }
    char hash[17];
    cfg_hash_hex(data, hash);
    int w;
    if (tok && v && v->type == CFG_INT)
        w = snprintf(out, outlen, "%s_%sx%lld_%s", name, tok, (long long)v->i, hash);
    else
        w = snprintf(out, outlen, "%s_%s", name, hash);
    if (w < 0 || (size_t)w >= outlen) {
        core_errorf(err, errlen, "store folder name too long");
        return -1;
    }
    for (char *c = out; *c; c++)
        if (*c == '/') *c = '-';
    return 0;
}

static int64_t jint(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? (int64_t)x->valuedouble : 0;
}

static void stats_from_json(data_stats *st, const cJSON *s) {
    st->documents_read = jint(s, "documents_read");
    st->documents_dup = jint(s, "documents_duplicate");
    st->documents_trash = jint(s, "documents_trash");
    st->documents = jint(s, "documents");
    st->bytes_read = jint(s, "bytes_read");
    st->bytes = jint(s, "bytes");
    st->tokens = jint(s, "tokens");
    st->tokens_dropped = jint(s, "tokens_dropped");
    st->unk_tokens = jint(s, "unk_tokens");
    st->rows_packed = jint(s, "rows_packed");
    st->rows_train = jint(s, "rows_train");
    st->rows_valid = jint(s, "rows_valid");
    st->tok_train_bytes = jint(s, "tokenizer_training_bytes");
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(s, "seconds");
    st->seconds = cJSON_IsNumber(x) ? x->valuedouble : 0;
}

void store_close(store *s) {
    store_rows_close(&s->train);
    store_rows_close(&s->valid);
    if (s->tok) tok_free(s->tok);
    s->tok = NULL;
}

/* ---- tokenizer files ------------------------------------------------------------------------ */
static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* FNV-1a 64 of a file's bytes (core_hash64 with seed 0 is textbook FNV-1a). */
static int hash_file(const char *path, uint64_t *h, size_t *n, char *err, size_t errlen) {
    char *buf = NULL;
    if (core_read_file(path, &buf, n, err, errlen) != 0) return -1;
    *h = core_hash64(buf, *n, 0);
    free(buf);
    return 0;
}

int store_tokenizer_files_json(const char *tok_dir, cJSON *obj, char *err, size_t errlen) {
    DIR *d = opendir(tok_dir);
    if (!d) {
        core_errorf(err, errlen, "cannot read %s: %s", tok_dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[CORE_PATH_MAX];
        struct stat st;
        if (core_path_join(p, sizeof p, tok_dir, e->d_name) != 0 || stat(p, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        names = xrealloc(names, (nn + 1) * sizeof *names);
        names[nn++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_names);
    int rc = nn ? 0 : core_errorf(err, errlen, "%s holds no tokenizer files", tok_dir);
    for (size_t k = 0; k < nn; k++) {
        char p[CORE_PATH_MAX], hex[17];
        uint64_t h;
        size_t n;
        core_path_join(p, sizeof p, tok_dir, names[k]);
        if (rc == 0 && hash_file(p, &h, &n, err, errlen) == 0) {
            cJSON *f = cJSON_AddObjectToObject(obj, names[k]);
            cJSON_AddNumberToObject(f, "bytes", (double)n);
            core_hash_hex(h, hex);
            cJSON_AddStringToObject(f, "fnv1a64", hex);
        } else {
            rc = -1;
        }
        free(names[k]);
    }
    free(names);
    return rc;
}

/* Every tokenizer file meta.json records is there with its size and checksum; tokenizer.json must
 * be among them (tok_save always writes it, and without it tok_load would read vocab.txt with
 * BERT's rules: another tokenizer). */
static int check_tokenizer_files(store *s, const cJSON *files, char *e2, size_t e2len) {
    char tdir[CORE_PATH_MAX], p[CORE_PATH_MAX], e3[DATA_ERRLEN / 2];
    core_path_join(tdir, sizeof tdir, s->dir, "tokenizer");
    if (!cJSON_IsObject(files) || !cJSON_GetObjectItemCaseSensitive(files, "tokenizer.json")) {
        snprintf(e2, e2len, "meta.json records no checksum of tokenizer/tokenizer.json");
        return -1;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        const char *name = f->string;
        const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(f, "bytes");
        const cJSON *sum = cJSON_GetObjectItemCaseSensitive(f, "fnv1a64");
        if (!name || !*name || name[0] == '.' || strchr(name, '/') || !cJSON_IsNumber(bytes) ||
            !cJSON_IsString(sum)) {
            snprintf(e2, e2len, "meta.json: a damaged entry in tokenizer_files");
            return -1;
        }
        core_path_join(p, sizeof p, tdir, name);
        uint64_t h;
        size_t n;
        if (access(p, F_OK) != 0) {
            snprintf(e2, e2len,
                     "its tokenizer file tokenizer/%s is missing (the store was built with it; "
                     "cram does not fall back to another file, which could be another tokenizer)",
                     name);
            return -1;
        }
        if (hash_file(p, &h, &n, e3, sizeof e3) != 0) {
            snprintf(e2, e2len, "its tokenizer file tokenizer/%s: %s", name, e3);
            return -1;
        }
        char hex[17];
        core_hash_hex(h, hex);
        if ((double)n != bytes->valuedouble || strcmp(hex, sum->valuestring) != 0) {
            snprintf(
                e2, e2len,
                "its tokenizer file tokenizer/%s changed after the store was built (%zu bytes, "
                "FNV-1a %s; meta.json records %.0f bytes, %s)",
                name, n, hex, bytes->valuedouble, sum->valuestring);
            return -1;
        }
        s->tok_files++;
    }
    return 0;
}

static int rebuild_errorf(char *err, size_t errlen, const char *dir, const char *fmt, ...)
    CORE_PRINTF(4, 5);
static int rebuild_errorf(char *err, size_t errlen, const char *dir, const char *fmt, ...) {
    char what[DATA_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return core_errorf(err, errlen,
                       "%s; delete the folder to rebuild it: rm -rf '%s', then run the command "
                       "again (or cram data with the same data settings)",
                       what, dir);
}

int store_open(store *s, const char *dir, store_verify v, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    char p[CORE_PATH_MAX], e2[DATA_ERRLEN];
    /* meta.json first: it is written last, so a store without it was never finished */
    core_path_join(p, sizeof p, dir, "meta.json");
    char *meta = NULL;
    size_t n = 0;
    if (core_read_file(p, &meta, &n, e2, sizeof e2) != 0)
        return rebuild_errorf(err, errlen, dir, "token store %s is incomplete or unreadable: %s",
                              dir, e2);
    cJSON *j = cJSON_ParseWithLength(meta, n);
    free(meta);
    const cJSON *ver = j ? cJSON_GetObjectItemCaseSensitive(j, "store_version") : NULL;
    if (!j || !cJSON_IsNumber(ver)) {
        cJSON_Delete(j);
        return rebuild_errorf(err, errlen, dir, "token store %s: meta.json is damaged", dir);
    }
    s->version = (int)ver->valuedouble;
    if (s->version != STORE_DIR_VERSION && s->version != 1) {
        int got = s->version;
        cJSON_Delete(j);
        return rebuild_errorf(err, errlen, dir,
                              "token store %s was written by another cram (store version %d; this "
                              "cram reads versions 1 to %d)",
                              dir, got, STORE_DIR_VERSION);
    }
    stats_from_json(&s->stats, cJSON_GetObjectItemCaseSensitive(j, "stats"));
    int trc = 0;
    if (s->version >= 2) {
        trc = check_tokenizer_files(s, cJSON_GetObjectItemCaseSensitive(j, "tokenizer_files"), e2,
                                    sizeof e2);
    } else { /* version 1 recorded no checksums, but it always saved a tokenizer.json */
        s->tok_unchecked = true;
        core_path_join(p, sizeof p, dir, "tokenizer/tokenizer.json");
        if (access(p, F_OK) != 0) {
            snprintf(e2, sizeof e2,
                     "its tokenizer file tokenizer/tokenizer.json is missing (the store was built "
                     "with it; cram does not fall back to vocab.txt, which would load another "
                     "tokenizer)");
            trc = -1;
        }
    }
    cJSON_Delete(j);
    if (trc != 0) {
        store_close(s);
        return rebuild_errorf(err, errlen, dir, "token store %s is unusable: %s", dir, e2);
    }
    if (s->tok_unchecked)
        core_log_warn("token store %s has store version 1, which records no checksums of its "
                      "tokenizer files: its tokenizer is unchecked. Rebuild it to have it checked: "
                      "rm -rf '%s', then run the command again",
                      dir, dir);

    core_path_join(p, sizeof p, dir, "train.bin");
    if (store_rows_open(&s->train, p, v, e2, sizeof e2) != 0) goto fail;
    core_path_join(p, sizeof p, dir, "valid.bin");
    if (store_rows_open(&s->valid, p, v, e2, sizeof e2) != 0) goto fail;
    if (s->valid.vocab_size != s->train.vocab_size || s->valid.row_len != s->train.row_len) {
        snprintf(e2, sizeof e2, "train.bin and valid.bin disagree on their shapes");
        goto fail;
    }
    if (s->train.row_count != s->stats.rows_train || s->valid.row_count != s->stats.rows_valid) {
        snprintf(e2, sizeof e2, "row counts differ from meta.json");
        goto fail;
    }
    core_path_join(p, sizeof p, dir, "tokenizer");
    char te[TOK_ERRLEN];
    if (tok_load(&s->tok, p, te) != TOK_OK) {
        snprintf(e2, sizeof e2, "tokenizer: %s", te);
        goto fail;
    }
    if (tok_vocab_size(s->tok) != s->train.vocab_size) {
        snprintf(e2, sizeof e2, "the tokenizer has %d entries, the rows say %d",
                 tok_vocab_size(s->tok), s->train.vocab_size);
        goto fail;
    }
    return 0;
fail:
    store_close(s);
    return rebuild_errorf(err, errlen, dir, "token store %s is unusable: %s", dir, e2);
}
