/* The preprocessing pipeline (the reference's, with cram's changes), streaming so that memory stays
 * bounded whatever the corpus size: documents and rows pass through bucket files on disk
 * (scatter to buckets, then each bucket alone in memory), never through one in-memory table.
 *   A read:    sources -> doc buckets, bucket = hash(doc) (so duplicates share a bucket)
 *   B shuffle: per bucket: exact-duplicate removal, Fisher-Yates (seed 89) -> docs.shuf
 *   C tokenizer: trained on a prefix of docs.shuf (at most PIPE_TOK_TRAIN_BYTES of text);
 *              with remove_trash, docs failing the chars-per-token rule are dropped and the
 *              tokenizer is trained again on what is left
 *   D encode:  chunks of docs, tok_encode_batch (OpenMP), packed per block of 1024 documents;
 *              the first validation_seqs rows -> valid.bin, the rest -> row buckets
 *              (random buckets, or one bucket per count of the curriculum token)
 *   E order:   buckets in order (shuffled inside for `randomized`) -> train.bin, capped. */
#include "data/data.h"

#include "core/core.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <signal.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PIPE_VERSION 1
#define PIPE_TOK_TRAIN_BYTES ((size_t)512 << 20) /* cap on text held in memory for tok_train */
#define PIPE_BUCKET_TARGET ((uint64_t)64 << 20)  /* bytes per bucket aimed at */
#define PIPE_BUCKET_LIMIT ((uint64_t)512 << 20)  /* a bucket above this is split again */
#define PIPE_CHUNK_BYTES ((size_t)32 << 20)      /* text per encoding chunk */
#define PIPE_BLOCK_DOCS 1024                     /* packing block */
#define PIPE_SEED_DOCS 89u
#define PIPE_SEED_ROWS 233u

static double peak_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

typedef enum { ORDER_RANDOM, ORDER_SENTENCE, ORDER_FRAGMENT, ORDER_NONE } pipe_order;

typedef struct {
    tok_options topt;
    int S;
    int64_t max_docs, max_rows, valid_rows;
    int trash; /* 0 off, 1 = self-trained tokenizer */
    double trash_cutoff;
    bool dedup, remove_ws;
    pipe_order order;
    char tmp[CORE_PATH_MAX]; /* the folder being built */
} pipe_opts;

static int64_t cap_of(double v) {
    return v >= 9e18 ? INT64_MAX : v < 0 ? 0 : (int64_t)v;
}

static int opts_from_config(pipe_opts *o, const cfg_node *d, int threads, char *err,
                            size_t errlen) {
    memset(o, 0, sizeof *o);
    tok_options_default(&o->topt);
    cfg_node *t = cfg_map_get(d, "tokenizer");
    if (!t || t->type != CFG_STR) {
        core_errorf(err, errlen, "data.tokenizer must name a tokenizer to train (WordPiece, BPE)");
        return -1;
    }
    o->topt.tokenizer = t->s;
    cfg_node *nz = cfg_map_get(d, "normalizer");
    o->topt.normalizer.force_lowercase = cfg_bool_or(nz, "force_lowercase", false);
    o->topt.normalizer.strip_accents = cfg_bool_or(nz, "strip_accents", false);
    o->topt.normalizer.force_english_keyboard = cfg_bool_or(nz, "force_english_keyboard", false);
    o->topt.normalizer.whitespace_escape = cfg_bool_or(nz, "whitespace_escape", false);
    o->topt.vocab_size = (int)cfg_num_or(d, "vocab_size", 0);
    o->S = (int)cfg_num_or(d, "seq_length", 128);
    o->topt.seq_length = o->S;
    o->topt.include_cls_token_in_corpus = cfg_bool_or(d, "include_cls_token_in_corpus", false);
    o->topt.include_sep_token_in_corpus = cfg_bool_or(d, "include_sep_token_in_corpus", true);
    o->topt.use_type_ids = cfg_bool_or(d, "use_type_ids", false);
    o->topt.threads = threads;
    if (o->topt.vocab_size < 16 || o->S < 2) {
        core_errorf(err, errlen, "data.vocab_size (%d) and data.seq_length (%d) are too small",
                    o->topt.vocab_size, o->S);
        return -1;
    }
    o->max_docs = cap_of(cfg_num_or(d, "max_entries_in_raw_dataset", 1e19));
    o->max_rows = cap_of(cfg_num_or(d, "max_seq_in_tokenized_dataset", 1e19));
    if (cfg_num_or(d, "validation_seqs", 0) < 0) {
        core_errorf(err, errlen, "data.validation_seqs=%g: must be >= 0 (0: no held-out rows)",
                    cfg_num_or(d, "validation_seqs", 0));
        return -1;
    }
    o->valid_rows = cap_of(cfg_num_or(d, "validation_seqs", 0));
    cfg_node *rt = cfg_map_get(d, "remove_trash");
    if (rt && rt->type == CFG_BOOL) o->trash = rt->b;
    if (rt && rt->type == CFG_STR) {
        if (strcmp(rt->s, "self") != 0) {
            core_errorf(err, errlen, "data.remove_trash must be True, False or self, not '%s'",
                        rt->s);
            return -1;
        }
        o->trash = 1;
    }
    o->trash_cutoff = cfg_num_or(d, "trash_cutoff", 0.3);
    o->dedup = cfg_bool_or(d, "deduplicate_entries", false);
    o->remove_ws = cfg_bool_or(d, "remove_whitespaces", false);
    if (cfg_bool_or(d, "named_entity_simplification", false)) {
        core_errorf(err, errlen,
                    "data.named_entity_simplification needs spaCy and is not supported");
        return -1;
    }
    const char *os = cfg_str_or(d, "ordering", "randomized");
    if (strcmp(os, "randomized") == 0)
        o->order = ORDER_RANDOM;
    else if (strcmp(os, "sentence-length-curriculum") == 0)
        o->order = ORDER_SENTENCE;
    else if (strcmp(os, "fragment-curriculum") == 0)
        o->order = ORDER_FRAGMENT;
    else if (strcmp(os, "none") == 0)
        o->order = ORDER_NONE;
    else {
        core_errorf(err, errlen,
                    "data.ordering '%s' is not supported (randomized, sentence-length-curriculum, "
                    "fragment-curriculum, none)",
                    os);
        return -1;
    }
    return 0;
}

/* ---- bucket files ------------------------------------------------------------------------- */
/* K append-only files; records are either u32-length-prefixed (documents) or fixed size (rows). */
typedef struct {
    FILE **f;
    char **path;
    uint64_t *bytes;
    int k;
} buckets;

static int buckets_open(buckets *b, const char *dir, const char *prefix, int k, char *err,
                        size_t errlen) {
    memset(b, 0, sizeof *b);
    b->k = k;
    b->f = xcalloc((size_t)k, sizeof *b->f);
    b->path = xcalloc((size_t)k, sizeof *b->path);
    b->bytes = xcalloc((size_t)k, sizeof *b->bytes);
    for (int i = 0; i < k; i++) {
        char name[64], p[CORE_PATH_MAX];
        snprintf(name, sizeof name, "%s.%d", prefix, i);
        core_path_join(p, sizeof p, dir, name);
        b->path[i] = xstrdup(p);
        b->f[i] = fopen(p, "w+b");
        if (!b->f[i]) {
            core_errorf(err, errlen, "cannot create %s: %s", p, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int bucket_put(buckets *b, int i, const void *p, size_t n, bool lenpfx, char *err,
                      size_t errlen) {
    uint32_t len = (uint32_t)n;
    if ((lenpfx && fwrite(&len, 4, 1, b->f[i]) != 1) || fwrite(p, 1, n, b->f[i]) != n) {
        core_errorf(err, errlen, "writing %s: %s (disk full?)", b->path[i], strerror(errno));
        return -1;
    }
    b->bytes[i] += n + (lenpfx ? 4 : 0);
    return 0;
}

/* Load bucket i whole (and delete its file). */
static int bucket_load(buckets *b, int i, uint8_t **out, size_t *n, char *err, size_t errlen) {
    size_t sz = (size_t)b->bytes[i];
    *out = xmalloc(sz ? sz : 1);
    *n = sz;
    if (fflush(b->f[i]) != 0 || fseek(b->f[i], 0, SEEK_SET) != 0 ||
        fread(*out, 1, sz, b->f[i]) != sz) {
        core_errorf(err, errlen, "reading back %s: %s", b->path[i], strerror(errno));
        free(*out);
        *out = NULL;
        return -1;
    }
    fclose(b->f[i]);
    b->f[i] = NULL;
    unlink(b->path[i]);
    return 0;
}

static void buckets_close(buckets *b) {
    for (int i = 0; i < b->k; i++) {
        if (b->f[i]) fclose(b->f[i]), unlink(b->path[i]);
        free(b->path[i]);
    }
    free(b->f);
    free(b->path);
    free(b->bytes);
    memset(b, 0, sizeof *b);
}

static int nbuckets_for(uint64_t bytes) {
    uint64_t k = (bytes + PIPE_BUCKET_TARGET - 1) / PIPE_BUCKET_TARGET;
    return k < 1 ? 1 : k > 256 ? 256 : (int)k; /* parent + split stay under 1024 fds */
}

/* ---- documents on disk: a sequential reader of u32-length-prefixed records ----------------- */
typedef struct {
    FILE *fp;
    char *buf;
    size_t cap;
} docfile;

/* 1 = a document in d->buf (len in *n), 0 = end, -1 = error */
static int docfile_next(docfile *d, size_t *n) {
    uint32_t len;
    if (fread(&len, 4, 1, d->fp) != 1) return ferror(d->fp) ? -1 : 0;
    if (len + 1 > d->cap) {
        d->cap = (size_t)len + 1 > 2 * d->cap ? (size_t)len + 1 : 2 * d->cap;
        d->buf = xrealloc(d->buf, d->cap);
    }
    if (fread(d->buf, 1, len, d->fp) != len) return -1;
    d->buf[len] = 0;
    *n = len;
    return 1;
}

/* ---- pass A: read every source into hash buckets ----------------------------------------- */
static uint64_t estimate_bytes(const src_list *l) {
    uint64_t total = 0;
    for (int i = 0; i < l->n; i++)
        for (int k = 0; k < l->v[i].nfiles; k++) {
            struct stat st;
            if (stat(l->v[i].files[k], &st) != 0) continue;
            size_t n = strlen(l->v[i].files[k]);
            bool zst = n > 4 && strcmp(l->v[i].files[k] + n - 4, ".zst") == 0;
            total += (uint64_t)st.st_size * (zst ? 4 : 1);
        }
    return total;
}

static size_t strip_ws(char *s, size_t n) {
    size_t w = 0;
    for (size_t k = 0; k < n; k++)
        if (s[k] != ' ' && s[k] != '\t' && s[k] != '\n' && s[k] != '\r' && s[k] != '\f' &&
            s[k] != '\v')
            s[w++] = s[k];
    return w;
}

static int pass_read(const src_list *l, const pipe_opts *o, buckets *b, data_stats *st, char *err,
                     size_t errlen) {
    src_reader *r;
    if (src_reader_open(&r, l, err, errlen) != 0) return -1;
    core_progress pg;
    core_progress_init(&pg, "reading documents", 0);
    const char *doc;
    size_t len;
    int rc;
    char *ws = NULL;
    size_t ws_cap = 0;
    while ((rc = src_reader_next(r, &doc, &len, err, errlen)) == 1) {
        if (len > UINT32_MAX - 1) {
            core_errorf(err, errlen, "a document of %zu bytes is too large (limit 4 GiB)", len);
            rc = -1;
            break;
        }
        if (o->remove_ws) {
            if (len + 1 > ws_cap) ws_cap = len + 1, ws = xrealloc(ws, ws_cap);
            memcpy(ws, doc, len);
            len = strip_ws(ws, len);
            doc = ws;
            if (!len) continue;
        }
        st->documents_read++;
        uint64_t h = core_hash64(doc, len, PIPE_SEED_DOCS);
        if (bucket_put(b, (int)(h % (uint64_t)b->k), doc, len, true, err, errlen) != 0) {
            rc = -1;
            break;
        }
        if ((st->documents_read & 1023) == 0)
            core_progress_update(&pg, (uint64_t)st->documents_read);
    }
    core_progress_update(&pg, (uint64_t)st->documents_read);
    core_progress_finish(&pg);
    st->bytes_read = (int64_t)src_reader_bytes(r);
    src_reader_close(r);
    free(ws);
    return rc < 0 ? -1 : 0;
}

/* ---- pass B: per bucket, drop exact duplicates and shuffle -------------------------------- */
typedef struct {
    FILE *out;
    const pipe_opts *o;
    data_stats *st;
    int64_t kept;
    uint64_t kept_bytes;
    uint64_t bucket_serial; /* names each processed bucket's random stream */
} shuf_ctx;

static int shuffle_bucket(shuf_ctx *c, uint8_t *buf, size_t n, int depth, char *err, size_t errlen);

/* A bucket above the limit (the size estimate was far off) is split again by another hash. */
static int split_bucket(shuf_ctx *c, uint8_t *buf, size_t n, int depth, char *err, size_t errlen) {
    buckets sub;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "docs.split%d", depth);
    int k = nbuckets_for(n);
    if (k < 2) k = 2;
    if (buckets_open(&sub, c->o->tmp, prefix, k, err, errlen) != 0) return -1;
    int rc = 0;
    for (size_t p = 0; rc == 0 && p + 4 <= n;) {
        uint32_t len;
        memcpy(&len, buf + p, 4);
        uint64_t h = core_hash64(buf + p + 4, len, PIPE_SEED_DOCS + 1000u * (uint64_t)(depth + 1));
        rc = bucket_put(&sub, (int)(h % (uint64_t)k), buf + p + 4, len, true, err, errlen);
        p += 4 + (size_t)len;
    }
    free(buf);
    for (int i = 0; rc == 0 && i < k; i++) {
        uint8_t *b2;
        size_t n2;
        rc = bucket_load(&sub, i, &b2, &n2, err, errlen);
        if (rc == 0) rc = shuffle_bucket(c, b2, n2, depth + 1, err, errlen);
    }
    buckets_close(&sub);
    return rc;
}

/* Takes ownership of buf. */
static int shuffle_bucket(shuf_ctx *c, uint8_t *buf, size_t n, int depth, char *err,
                          size_t errlen) {
    if (n > PIPE_BUCKET_LIMIT && depth < 3) return split_bucket(c, buf, n, depth, err, errlen);
    size_t cnt = 0;
    for (size_t p = 0; p + 4 <= n; cnt++) {
        uint32_t len;
        memcpy(&len, buf + p, 4);
        p += 4 + (size_t)len;
    }
    size_t *off = xmalloc((cnt ? cnt : 1) * sizeof *off);
    cnt = 0;
    for (size_t p = 0; p + 4 <= n;) {
        uint32_t len;
        memcpy(&len, buf + p, 4);
        off[cnt++] = p;
        p += 4 + (size_t)len;
    }
    size_t keep = cnt;
    if (c->o->dedup && cnt > 1) {
        /* open addressing over (hash, index); equal hashes are compared byte for byte, so the
         * first occurrence in reading order is kept and only exact copies go */
        size_t cap = 1;
        while (cap < 2 * cnt)
            cap <<= 1;
        uint64_t *hk = xcalloc(cap, sizeof *hk);
        size_t *hv = xmalloc(cap * sizeof *hv);
        keep = 0;
        for (size_t i = 0; i < cnt; i++) {
            uint32_t len;
            memcpy(&len, buf + off[i], 4);
            const uint8_t *d = buf + off[i] + 4;
            uint64_t h = core_hash64(d, len, 7) | 1;
            size_t s = (size_t)h & (cap - 1);
            bool dup = false;
            while (hk[s]) {
                if (hk[s] == h) {
                    uint32_t l2;
                    memcpy(&l2, buf + hv[s], 4);
                    if (l2 == len && memcmp(buf + hv[s] + 4, d, len) == 0) {
                        dup = true;
                        break;
                    }
                }
                s = (s + 1) & (cap - 1);
            }
            if (dup) continue;
            hk[s] = h;
            hv[s] = off[i];
            off[keep++] = off[i];
        }
        c->st->documents_dup += (int64_t)(cnt - keep);
        free(hk);
        free(hv);
    }
    core_rng rng;
    core_rng_init(&rng, PIPE_SEED_DOCS, 0, c->bucket_serial++, 1);
    for (size_t i = keep; i > 1; i--) {
        size_t j = (size_t)core_rng_below(&rng, (uint32_t)i);
        size_t t = off[i - 1];
        off[i - 1] = off[j];
        off[j] = t;
    }
    int rc = 0;
    for (size_t i = 0; i < keep && c->kept < c->o->max_docs; i++) {
        uint32_t len;
        memcpy(&len, buf + off[i], 4);
        if (fwrite(buf + off[i], 1, 4 + (size_t)len, c->out) != 4 + (size_t)len) {
            core_errorf(err, errlen, "writing the shuffled documents: %s (disk full?)",
                        strerror(errno));
            rc = -1;
            break;
        }
        c->kept++;
        c->kept_bytes += len;
    }
    free(off);
    free(buf);
    return rc;
}

/* ---- pass C: tokenizer training (and trash removal) -------------------------------------- */
/* Documents held for tokenizer training: one arena of at most PIPE_TOK_TRAIN_BYTES of text
 * (a first document larger than that is still taken). */
typedef struct {
    char *arena;
    size_t used, cap, n, dcap;
    size_t *offs, *lens;
} tok_docs;

/* Adds a document; false (nothing added) once the text would pass the cap. */
static bool tok_docs_add(tok_docs *d, const char *doc, size_t n) {
    if (d->used + n > PIPE_TOK_TRAIN_BYTES && d->n > 0) return false;
    if (d->used + n + 1 > d->cap) {
        d->cap = (d->used + n + 1) * 2;
        if (d->cap > PIPE_TOK_TRAIN_BYTES + n + 1) d->cap = PIPE_TOK_TRAIN_BYTES + n + 1;
        d->arena = xrealloc(d->arena, d->cap);
    }
    if (d->n == d->dcap) {
        d->dcap = d->dcap ? 2 * d->dcap : 4096;
        d->offs = xrealloc(d->offs, d->dcap * sizeof *d->offs);
        d->lens = xrealloc(d->lens, d->dcap * sizeof *d->lens);
    }
    memcpy(d->arena + d->used, doc, n);
    d->offs[d->n] = d->used;
    d->lens[d->n++] = n;
    d->used += n;
    return true;
}

static void tok_docs_free(tok_docs *d) {
    free(d->arena), free(d->offs), free(d->lens);
    memset(d, 0, sizeof *d);
}

/* Trains on the gathered documents, then frees them. */
static int tok_docs_train(tok_tokenizer **out, const tok_options *o, tok_docs *d, char *err,
                          size_t errlen) {
    const char **docs = xmalloc((d->n ? d->n : 1) * sizeof *docs);
    for (size_t i = 0; i < d->n; i++)
        docs[i] = d->arena + d->offs[i];
    core_log_info("training the %s tokenizer (vocab %d) on %zu documents, %.1f MB", o->tokenizer,
                  o->vocab_size, d->n, (double)d->used / 1e6);
    double t0 = core_now();
    char te[TOK_ERRLEN] = "";
    int trc = tok_train(out, o, docs, d->lens, d->n, te);
    free(docs);
    tok_docs_free(d);
    if (trc != TOK_OK) return core_errorf(err, errlen, "tokenizer training failed: %s", te);
    core_log_info("tokenizer trained in %.1f s (peak RSS so far %.0f MB)", core_now() - t0,
                  peak_mb());
    return 0;
}

/* The first documents of f (the shuffled corpus), up to the cap. */
static int train_tokenizer(tok_tokenizer **out, const pipe_opts *o, FILE *f, data_stats *st,
                           char *err, size_t errlen) {
    rewind(f);
    docfile d = {f, NULL, 0};
    tok_docs td = {0};
    size_t n;
    int rc;
    while ((rc = docfile_next(&d, &n)) == 1)
        if (!tok_docs_add(&td, d.buf, n)) break;
    free(d.buf);
    if (rc < 0) {
        tok_docs_free(&td);
        return core_errorf(err, errlen, "reading back the shuffled documents failed");
    }
    st->tok_train_bytes = (int64_t)td.used;
    return tok_docs_train(out, &o->topt, &td, err, errlen);
}

/* A chunk of documents read from a docfile: documents until PIPE_CHUNK_BYTES of text (or the
 * end); one document larger than that makes a chunk of its own. */
typedef struct {
    char *arena;
    size_t used, cap;
    size_t *offs, *lens;
    const char **ptrs;
    size_t n, dcap;
    tok_encoding *enc;
    size_t enc_cap;
} chunk;

static int chunk_read(chunk *c, docfile *d) {
    c->used = c->n = 0;
    size_t n;
    int rc = 0;
    while (c->used < PIPE_CHUNK_BYTES && (rc = docfile_next(d, &n)) == 1) {
        if (c->used + n > c->cap) {
            c->cap = (c->used + n) * 2;
            c->arena = xrealloc(c->arena, c->cap);
        }
        if (c->n == c->dcap) {
            c->dcap = c->dcap ? 2 * c->dcap : 4096;
            c->offs = xrealloc(c->offs, c->dcap * sizeof *c->offs);
            c->lens = xrealloc(c->lens, c->dcap * sizeof *c->lens);
            c->ptrs = xrealloc(c->ptrs, c->dcap * sizeof *c->ptrs);
        }
        memcpy(c->arena + c->used, d->buf, n);
        c->offs[c->n] = c->used;
        c->lens[c->n++] = n;
        c->used += n;
    }
    for (size_t i = 0; i < c->n; i++)
        c->ptrs[i] = c->arena + c->offs[i];
    return rc < 0 ? -1 : 0;
}

static int chunk_encode(chunk *c, const tok_tokenizer *t, char *err, size_t errlen) {
    if (c->n > c->enc_cap) {
        c->enc = xrealloc(c->enc, c->n * sizeof *c->enc);
        memset(c->enc + c->enc_cap, 0, (c->n - c->enc_cap) * sizeof *c->enc);
        c->enc_cap = c->n;
    }
    /* fresh encodings per chunk: reused ones would keep, slot by slot, the largest document ever
     * seen there, and that grows with the corpus */
    for (size_t i = 0; i < c->enc_cap; i++)
        tok_encoding_free(&c->enc[i]);
    memset(c->enc, 0, c->enc_cap * sizeof *c->enc);
    char te[TOK_ERRLEN] = "";
    if (tok_encode_batch(t, c->ptrs, c->lens, c->n, true, c->enc, te) != TOK_OK) {
        core_errorf(err, errlen, "encoding failed: %s", te);
        return -1;
    }
    return 0;
}

static void chunk_free(chunk *c) {
    for (size_t i = 0; i < c->enc_cap; i++)
        tok_encoding_free(&c->enc[i]);
    free(c->enc), free(c->arena), free(c->offs), free(c->lens), free(c->ptrs);
    memset(c, 0, sizeof *c);
}

static int64_t utf8_chars(const char *s, size_t n) {
    int64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((uint8_t)s[i] & 0xC0) != 0x80;
    return k;
}

/* Keeps a document iff #tokens < cutoff * #characters (tokens with the post-processor's
 * specials, characters as Python counts them: code points). */
static int pass_trash(const tok_tokenizer *t, const pipe_opts *o, FILE *in, FILE *out,
                      data_stats *st, char *err, size_t errlen) {
    rewind(in);
    docfile d = {in, NULL, 0};
    chunk c = {0};
    int rc = 0;
    for (;;) {
        if (chunk_read(&c, &d) != 0) {
            core_errorf(err, errlen, "reading back the shuffled documents failed");
            rc = -1;
            break;
        }
        if (!c.n) break;
        if ((rc = chunk_encode(&c, t, err, errlen)) != 0) break;
        for (size_t i = 0; i < c.n; i++) {
            int64_t chars = utf8_chars(c.ptrs[i], c.lens[i]);
            if ((double)c.enc[i].n < o->trash_cutoff * (double)chars) {
                uint32_t len = (uint32_t)c.lens[i];
                if (fwrite(&len, 4, 1, out) != 1 || fwrite(c.ptrs[i], 1, len, out) != len) {
                    core_errorf(err, errlen, "writing the filtered documents: %s", strerror(errno));
                    rc = -1;
                    break;
                }
            } else {
                st->documents_trash++;
            }
        }
        if (rc) break;
    }
    chunk_free(&c);
    free(d.buf);
    return rc;
}

/* ---- pass D: encode, pack, split off validation rows, scatter rows ------------------------ */
typedef struct {
    const pipe_opts *o;
    store_writer *valid;
    buckets *rows;
    int32_t key_id; /* curriculum token, or -1 */
    int dtype;
    core_rng rng;
    uint8_t *rowbuf; /* one row in store dtype */
    data_stats *st;
} pack_ctx;

static int emit_row(pack_ctx *p, const int32_t *row, char *err, size_t errlen) {
    int S = p->o->S;
    p->st->rows_packed++;
    if (p->st->rows_valid < p->o->valid_rows) {
        p->st->rows_valid++;
        return store_writer_append(p->valid, row, 1, err, errlen);
    }
    int b;
    if (p->key_id >= 0) {
        int cnt = 0;
        for (int k = 0; k < S; k++)
            cnt += row[k] == p->key_id;
        b = S - cnt; /* bucket 0 = most occurrences: buckets are read in order */
    } else {
        b = (int)core_rng_below(&p->rng, (uint32_t)p->rows->k);
    }
    for (int k = 0; k < S; k++) {
        uint32_t v = (uint32_t)row[k];
        if (p->dtype == 2)
            p->rowbuf[2 * k] = (uint8_t)v, p->rowbuf[2 * k + 1] = (uint8_t)(v >> 8);
        else
            memcpy(p->rowbuf + 4 * k, &v, 4);
    }
    return bucket_put(p->rows, b, p->rowbuf, (size_t)S * (size_t)p->dtype, false, err, errlen);
}

/* Rows are cut as soon as seq_length ids are pending, so only one row's worth of ids waits
 * between documents; at the end of each block of 1024 documents the pending rest (< seq_length)
 * is left out, which is exactly the reference's per-block packing. */
static int pass_encode(const tok_tokenizer *t, pack_ctx *p, FILE *in, char *err, size_t errlen) {
    rewind(in);
    docfile d = {in, NULL, 0};
    chunk c = {0};
    int S = p->o->S, rc = 0;
    int32_t unk = tok_special_id(t, TOK_UNK);
    int32_t *pend = xmalloc((size_t)S * sizeof *pend);
    int pn = 0, in_block = 0;
    core_progress pg;
    core_progress_init(&pg, "encoding", (uint64_t)p->st->documents);
    int64_t done = 0;
    for (;;) {
        if (chunk_read(&c, &d) != 0) {
            core_errorf(err, errlen, "reading back the documents failed");
            rc = -1;
            break;
        }
        if (!c.n) break;
        if ((rc = chunk_encode(&c, t, err, errlen)) != 0) break;
        for (size_t i = 0; rc == 0 && i < c.n; i++) {
            const tok_encoding *e = &c.enc[i];
            p->st->bytes += (int64_t)c.lens[i];
            p->st->tokens += e->n;
            for (int32_t k = 0; rc == 0 && k < e->n; k++) {
                p->st->unk_tokens += e->ids[k] == unk;
                pend[pn++] = e->ids[k];
                if (pn == S) rc = emit_row(p, pend, err, errlen), pn = 0;
            }
            if (++in_block == PIPE_BLOCK_DOCS) p->st->tokens_dropped += pn, pn = 0, in_block = 0;
        }
        done += (int64_t)c.n;
        core_progress_update(&pg, (uint64_t)done);
    }
    p->st->tokens_dropped += pn;
    core_progress_finish(&pg);
    chunk_free(&c);
    free(d.buf);
    free(pend);
    return rc;
}

/* ---- pass E: buckets in order into train.bin --------------------------------------------- */
static void rows_decode(int32_t *out, const uint8_t *p, size_t n, int dtype) {
    for (size_t j = 0; j < n; j++) {
        uint32_t v;
        if (dtype == 2)
            v = (uint32_t)(p[2 * j] | (p[2 * j + 1] << 8));
        else
            memcpy(&v, p + 4 * j, 4);
        out[j] = (int32_t)v;
    }
}

/* Random order: each bucket (sized to fit in memory) is loaded and shuffled. Curricula: the
 * buckets are already in sort order and are streamed through, whatever their size. */
static int pass_order(const pipe_opts *o, buckets *b, store_writer *w, data_stats *st, int dtype,
                      char *err, size_t errlen) {
    size_t row_bytes = (size_t)o->S * (size_t)dtype;
    const size_t batch = 4096;
    int32_t *rows = xmalloc(batch * (size_t)o->S * sizeof *rows);
    uint8_t *raw = xmalloc(batch * row_bytes);
    int rc = 0;
    for (int i = 0; rc == 0 && i < b->k && st->rows_train < o->max_rows; i++) {
        if (o->order != ORDER_RANDOM) {
            if (fflush(b->f[i]) != 0 || fseek(b->f[i], 0, SEEK_SET) != 0) {
                core_errorf(err, errlen, "reading back %s: %s", b->path[i], strerror(errno));
                rc = -1;
                break;
            }
            size_t got;
            while (rc == 0 && st->rows_train < o->max_rows &&
                   (got = fread(raw, row_bytes, batch, b->f[i])) > 0) {
                int64_t left = o->max_rows - st->rows_train;
                if ((int64_t)got > left) got = (size_t)left;
                rows_decode(rows, raw, got * (size_t)o->S, dtype);
                rc = store_writer_append(w, rows, (int64_t)got, err, errlen);
                st->rows_train += (int64_t)got;
            }
            continue;
        }
        uint8_t *buf;
        size_t n;
        if ((rc = bucket_load(b, i, &buf, &n, err, errlen)) != 0) break;
        size_t cnt = n / row_bytes;
        size_t *perm = xmalloc((cnt ? cnt : 1) * sizeof *perm);
        for (size_t k = 0; k < cnt; k++)
            perm[k] = k;
        core_rng rng;
        core_rng_init(&rng, PIPE_SEED_ROWS, 0, (uint64_t)i, 2);
        for (size_t k = cnt; k > 1; k--) {
            size_t j = core_rng_below(&rng, (uint32_t)k), t = perm[k - 1];
            perm[k - 1] = perm[j], perm[j] = t;
        }
        for (size_t k = 0; rc == 0 && k < cnt && st->rows_train < o->max_rows; k++) {
            rows_decode(rows, buf + perm[k] * row_bytes, (size_t)o->S, dtype);
            rc = store_writer_append(w, rows, 1, err, errlen);
            st->rows_train++;
        }
        free(perm);
        free(buf);
    }
    free(rows);
    free(raw);
    return rc;
}

/* ---- meta.json ---------------------------------------------------------------------------- */
static int write_meta(const char *dir, const cfg_node *data, const data_stats *st,
                      const tok_tokenizer *t, char *err, size_t errlen) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "cram token store");
    cJSON_AddNumberToObject(j, "store_version", STORE_DIR_VERSION);
    cJSON_AddNumberToObject(j, "pipeline_version", PIPE_VERSION);
    char hash[17], when[32];
    cfg_hash_hex(data, hash);
    cJSON_AddStringToObject(j, "data_hash", hash);
    cJSON_AddStringToObject(j, "created", core_wall_time_string(when, sizeof when, time(NULL)));
    char *canon = cfg_canonical_json(data);
    cJSON *dj = cJSON_Parse(canon);
    free(canon);
    cJSON_AddItemToObject(j, "data", dj ? dj : cJSON_CreateNull());
    cJSON *s = cJSON_AddObjectToObject(j, "stats");
    cJSON_AddNumberToObject(s, "documents_read", (double)st->documents_read);
    cJSON_AddNumberToObject(s, "documents_duplicate", (double)st->documents_dup);
    cJSON_AddNumberToObject(s, "documents_trash", (double)st->documents_trash);
    cJSON_AddNumberToObject(s, "documents", (double)st->documents);
    cJSON_AddNumberToObject(s, "bytes_read", (double)st->bytes_read);
    cJSON_AddNumberToObject(s, "bytes", (double)st->bytes);
    cJSON_AddNumberToObject(s, "tokens", (double)st->tokens);
    cJSON_AddNumberToObject(s, "tokens_dropped", (double)st->tokens_dropped);
    cJSON_AddNumberToObject(s, "unk_tokens", (double)st->unk_tokens);
    cJSON_AddNumberToObject(s, "unk_rate",
                            st->tokens ? (double)st->unk_tokens / (double)st->tokens : 0);
    cJSON_AddNumberToObject(s, "rows_packed", (double)st->rows_packed);
    cJSON_AddNumberToObject(s, "rows_train", (double)st->rows_train);
    cJSON_AddNumberToObject(s, "rows_valid", (double)st->rows_valid);
    cJSON_AddNumberToObject(s, "tokenizer_training_bytes", (double)st->tok_train_bytes);
    cJSON_AddNumberToObject(s, "seconds", st->seconds);
    cJSON *sp = cJSON_AddObjectToObject(j, "special_ids");
    static const char *names[TOK_NROLES] = {"pad", "bos", "eos", "unk", "cls", "sep", "mask"};
    for (int r = 0; r < TOK_NROLES; r++)
        cJSON_AddNumberToObject(sp, names[r], tok_special_id(t, (tok_role)r));
    /* the tokenizer files as saved, checked whenever the store is opened */
    char p[CORE_PATH_MAX];
    core_path_join(p, sizeof p, dir, "tokenizer");
    if (store_tokenizer_files_json(p, cJSON_AddObjectToObject(j, "tokenizer_files"), err, errlen) !=
        0) {
        cJSON_Delete(j);
        return -1;
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    core_path_join(p, sizeof p, dir, "meta.json");
    size_t n = strlen(text);
    text = xrealloc(text, n + 2);
    text[n] = '\n', text[n + 1] = 0;
    int rc = core_atomic_write(p, text, n + 1, err, errlen);
    free(text);
    return rc;
}

/* ---- the whole build ---------------------------------------------------------------------- */
static void rm_tree(const char *dir) {
    static const char *names[] = {"train.bin", "valid.bin", "meta.json", "docs.shuf", "docs.clean"};
    char p[CORE_PATH_MAX];
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        core_path_join(p, sizeof p, dir, names[k]);
        unlink(p);
    }
    core_path_join(p, sizeof p, dir, "tokenizer");
    static const char *tnames[] = {"tokenizer.json", "tokenizer_config.json",
                                   "special_tokens_map.json", "vocab.txt", "merges.txt"};
    char q[CORE_PATH_MAX];
    for (size_t k = 0; k < sizeof tnames / sizeof *tnames; k++) {
        core_path_join(q, sizeof q, p, tnames[k]);
        unlink(q);
    }
    rmdir(p);
    rmdir(dir);
}

int pipe_train_tokenizer(tok_tokenizer **out, const cfg_node *data, const char *root, int threads,
                         char *err, size_t errlen) {
    pipe_opts o;
    if (opts_from_config(&o, data, threads, err, errlen)) return -1;
    src_list l;
    if (src_list_from_config(&l, data, root, err, errlen)) return -1;
    src_reader *r = NULL;
    if (src_reader_open(&r, &l, err, errlen)) {
        src_list_free(&l);
        return -1;
    }
    // The sources in their own order (nothing else is built, so no shuffle), up to the same
    // cap on text in memory as a store build.
    tok_docs td = {0};
    const char *doc;
    size_t n;
    int rc;
    while ((rc = src_reader_next(r, &doc, &n, err, errlen)) == 1)
        if ((int64_t)td.n >= o.max_docs || !tok_docs_add(&td, doc, n)) break;
    src_reader_close(r);
    src_list_free(&l);
    if (rc < 0 || td.n == 0) {
        tok_docs_free(&td);
        return rc < 0 ? -1
                      : core_errorf(err, errlen, "the data config's sources hold no documents");
    }
    return tok_docs_train(out, &o.topt, &td, err, errlen);
}

int pipe_build(const cfg_node *data, const char *root, const char *out_dir, int threads,
               data_stats *st, char *err, size_t errlen) {
    double t0 = core_now();
    memset(st, 0, sizeof *st);
    pipe_opts o;
    if (opts_from_config(&o, data, threads, err, errlen) != 0) return -1;
    src_list l;
    if (src_list_from_config(&l, data, root, err, errlen) != 0) return -1;
    if (snprintf(o.tmp, sizeof o.tmp, "%s.tmp.%d", out_dir, (int)getpid()) >= (int)sizeof o.tmp) {
        core_errorf(err, errlen, "store path too long");
        src_list_free(&l);
        return -1;
    }
    rm_tree(o.tmp);
    if (core_mkdir_p(o.tmp, err, errlen) != 0) {
        src_list_free(&l);
        return -1;
    }
    int rc = -1;
    buckets db = {0}, rb = {0};
    FILE *shuf = NULL, *clean = NULL;
    tok_tokenizer *tok = NULL;
    store_writer vw = {0}, tw = {0};
    bool vw_open = false, tw_open = false;
    char p[CORE_PATH_MAX];

    /* A */
    uint64_t est = estimate_bytes(&l);
    if (buckets_open(&db, o.tmp, "docs", nbuckets_for(est), err, errlen) != 0) goto done;
    if (pass_read(&l, &o, &db, st, err, errlen) != 0) goto done;
    if (st->documents_read == 0) {
        core_errorf(err, errlen,
                    "the corpus is empty: the sources hold no documents (%lld bytes read)",
                    (long long)st->bytes_read);
        goto done;
    }
    /* B */
    core_path_join(p, sizeof p, o.tmp, "docs.shuf");
    shuf = fopen(p, "w+b");
    if (!shuf) {
        core_errorf(err, errlen, "cannot create %s: %s", p, strerror(errno));
        goto done;
    }
    shuf_ctx sc = {shuf, &o, st, 0, 0, 0};
    for (int i = 0; i < db.k; i++) {
        uint8_t *buf;
        size_t n;
        if (bucket_load(&db, i, &buf, &n, err, errlen) != 0) goto done;
        if (shuffle_bucket(&sc, buf, n, 0, err, errlen) != 0) goto done;
    }
    buckets_close(&db);
    st->documents = sc.kept;
    core_log_info("%lld documents read (%.1f MB), %lld exact duplicates removed, %lld kept "
                  "(%.1f s)",
                  (long long)st->documents_read, (double)st->bytes_read / 1e6,
                  (long long)st->documents_dup, (long long)sc.kept, core_now() - t0);
    core_log_info("peak RSS after reading and shuffling: %.0f MB", peak_mb());
    if (fflush(shuf) != 0) {
        core_errorf(err, errlen, "writing the shuffled documents: %s", strerror(errno));
        goto done;
    }
    /* C */
    if (train_tokenizer(&tok, &o, shuf, st, err, errlen) != 0) goto done;
    FILE *docs = shuf;
    if (o.trash) {
        core_path_join(p, sizeof p, o.tmp, "docs.clean");
        clean = fopen(p, "w+b");
        if (!clean) {
            core_errorf(err, errlen, "cannot create %s: %s", p, strerror(errno));
            goto done;
        }
        if (pass_trash(tok, &o, shuf, clean, st, err, errlen) != 0) goto done;
        st->documents -= st->documents_trash;
        core_log_info("trash removal (cutoff %.2f tokens per character): %lld documents dropped",
                      o.trash_cutoff, (long long)st->documents_trash);
        if (st->documents == 0) {
            core_errorf(err, errlen,
                        "trash removal dropped every document (data.trash_cutoff %.2f)",
                        o.trash_cutoff);
            goto done;
        }
        fflush(clean);
        tok_free(tok);
        tok = NULL;
        if (train_tokenizer(&tok, &o, clean, st, err, errlen) != 0) goto done;
        docs = clean;
    }
    if (tok_vocab_size(tok) != o.topt.vocab_size) {
        core_errorf(err, errlen,
                    "the tokenizer reached %d entries, not data.vocab_size = %d (corpus too "
                    "small for this vocabulary?)",
                    tok_vocab_size(tok), o.topt.vocab_size);
        goto done;
    }
    /* D */
    int32_t V = tok_vocab_size(tok);
    int dtype = V <= 65536 ? 2 : 4;
    core_path_join(p, sizeof p, o.tmp, "valid.bin");
    if (store_writer_open(&vw, p, V, o.S, err, errlen) != 0) goto done;
    vw_open = true;
    uint64_t rows_est = (uint64_t)(sc.kept_bytes / 3) * (uint64_t)dtype; /* ~3+ bytes a token */
    int nrb = o.order == ORDER_RANDOM ? nbuckets_for(rows_est)
              : o.order == ORDER_NONE ? 1
                                      : o.S + 1;
    if (buckets_open(&rb, o.tmp, "rows", nrb, err, errlen) != 0) goto done;
    pack_ctx pc = {.o = &o,
                   .valid = &vw,
                   .rows = &rb,
                   .key_id = -1,
                   .dtype = dtype,
                   .rowbuf = xmalloc((size_t)o.S * 4),
                   .st = st};
    core_rng_init(&pc.rng, PIPE_SEED_ROWS, 0, 0, 3);
    if (o.order == ORDER_SENTENCE) {
        /* like the reference: the first id of encode(".") */
        tok_encoding e = {0};
        char te[TOK_ERRLEN];
        if (tok_encode(tok, ".", 1, false, &e, te) == TOK_OK && e.n > 0) pc.key_id = e.ids[0];
        tok_encoding_free(&e);
        if (pc.key_id < 0) {
            core_errorf(err, errlen,
                        "sentence-length-curriculum: the tokenizer has no id for \".\"");
            free(pc.rowbuf);
            goto done;
        }
    }
    if (o.order == ORDER_FRAGMENT) pc.key_id = tok_special_id(tok, TOK_SEP);
    double t_enc = core_now();
    int prc = pass_encode(tok, &pc, docs, err, errlen);
    free(pc.rowbuf);
    if (prc != 0) goto done;
    core_log_info("encoded %lld documents into %lld tokens, %lld rows in %.1f s (peak RSS %.0f MB)",
                  (long long)st->documents, (long long)st->tokens, (long long)st->rows_packed,
                  core_now() - t_enc, peak_mb());
    if (st->rows_packed <= o.valid_rows) {
        core_errorf(err, errlen,
                    "the corpus packs into only %lld rows of %d tokens, not more than "
                    "data.validation_seqs = %lld: add text or lower data.validation_seqs",
                    (long long)st->rows_packed, o.S, (long long)o.valid_rows);
        goto done;
    }
    vw_open = false;
    if (store_writer_finish(&vw, err, errlen) != 0) goto done;
    /* E */
    core_path_join(p, sizeof p, o.tmp, "train.bin");
    if (store_writer_open(&tw, p, V, o.S, err, errlen) != 0) goto done;
    tw_open = true;
    double t_ord = core_now();
    if (pass_order(&o, &rb, &tw, st, dtype, err, errlen) != 0) goto done;
    tw_open = false;
    if (store_writer_finish(&tw, err, errlen) != 0) goto done;
    buckets_close(&rb);
    core_log_info("ordered and wrote %lld training rows in %.1f s (peak RSS %.0f MB)",
                  (long long)st->rows_train, core_now() - t_ord, peak_mb());
    /* tokenizer, meta.json last, then the rename that makes the store visible */
    core_path_join(p, sizeof p, o.tmp, "tokenizer");
    char te[TOK_ERRLEN] = "";
    if (core_mkdir_p(p, err, errlen) != 0) goto done;
    if (tok_save(tok, p, te) != TOK_OK) {
        core_errorf(err, errlen, "saving the tokenizer: %s", te);
        goto done;
    }
    fclose(shuf), shuf = NULL;
    if (clean) fclose(clean), clean = NULL;
    core_path_join(p, sizeof p, o.tmp, "docs.shuf");
    unlink(p);
    core_path_join(p, sizeof p, o.tmp, "docs.clean");
    unlink(p);
    st->seconds = core_now() - t0;
    if (write_meta(o.tmp, data, st, tok, err, errlen) != 0) goto done;
    if (rename(o.tmp, out_dir) != 0) {
        if (errno == EEXIST || errno == ENOTEMPTY) { /* another process finished first */
            rm_tree(o.tmp);
            rc = 0;
            goto done;
        }
        core_errorf(err, errlen, "cannot rename %s to %s: %s", o.tmp, out_dir, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (vw_open) store_writer_abort(&vw);
    if (tw_open) store_writer_abort(&tw);
    if (db.k) buckets_close(&db);
    if (rb.k) buckets_close(&rb);
    if (shuf) fclose(shuf);
    if (clean) fclose(clean);
    if (tok) tok_free(tok);
    if (rc != 0) rm_tree(o.tmp);
    src_list_free(&l);
    return rc;
}

/* ---- finding or building the store of a config ------------------------------------------- */
int data_root(char *out, size_t outlen, const cfg_node *cfg, char *err, size_t errlen) {
    /* Relative to the launch directory, like base_dir itself (cram never changes directory):
     * `data` sits beside `outputs`, where scripts/fetch-corpus puts data/corpora/. */
    const char *path = cfg_str_or(cfg, "impl.path", "");
    if (!path[0]) path = "data";
    int rc;
    if (path[0] == '~' && (path[1] == '/' || path[1] == 0)) {
        const char *home = getenv("HOME");
        rc = core_path_join(out, outlen, home ? home : "/", path[1] ? path + 2 : "");
    } else {
        rc = snprintf(out, outlen, "%s", path) < (int)outlen ? 0 : -1;
    }
    if (rc != 0) core_errorf(err, errlen, "impl.path is too long");
    return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Temporary folders of builds whose process is gone (killed, crashed) are deleted. */
static void remove_stale_builds(const char *dir) {
    char pat[CORE_PATH_MAX + 16];
    snprintf(pat, sizeof pat, "%s.tmp.*", dir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0) return;
    for (size_t k = 0; k < g.gl_pathc; k++) {
        const char *dot = strrchr(g.gl_pathv[k], '.');
        char *end;
        long pid = strtol(dot + 1, &end, 10);
        if (*end || pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
            core_log_info("removing %s, left by an interrupted build", g.gl_pathv[k]);
            nftw(g.gl_pathv[k], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
    }
    globfree(&g);
}

int data_prepare(store *s, const cfg_node *cfg, store_verify v, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    const cfg_node *data = cfg_get(cfg, "data");
    if (!data || data->type != CFG_MAP) {
        core_errorf(err, errlen, "the config has no data section");
        return -1;
    }
    char root[CORE_PATH_MAX], name[512], dir[CORE_PATH_MAX];
    if (data_root(root, sizeof root, cfg, err, errlen) != 0) return -1;
    if (store_dir_name(name, sizeof name, data, err, errlen) != 0) return -1;
    if (core_path_join(dir, sizeof dir, root, name) != 0) {
        core_errorf(err, errlen, "store path too long");
        return -1;
    }
    struct stat stt;
    if (stat(dir, &stt) == 0) return store_open(s, dir, v, err, errlen);
    if (cfg_bool_or(cfg, "impl.forbid_dataset_preprocessing", false)) {
        core_errorf(
            err, errlen,
            "no token store at %s and impl.forbid_dataset_preprocessing is set: build it first "
            "(cram data with the same data settings)",
            dir);
        return -1;
    }
    remove_stale_builds(dir);
    cfg_node *th = cfg_get(cfg, "impl.threads");
    int threads = th && th->type == CFG_INT ? (int)th->i : 0;
    if (threads <= 0 || threads > omp_get_num_procs()) threads = omp_get_num_procs();
    core_log_info("building token store %s", dir);
    data_stats st;
    if (pipe_build(data, root, dir, threads, &st, err, errlen) != 0) return -1;
    if (store_open(s, dir, v, err, errlen) != 0) return -1;
    s->built = true;
    return 0;
}
