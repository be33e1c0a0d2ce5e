/* Raw-text sources: file patterns (file, folder, glob) expanded to sorted file lists, and a
 * streaming document reader over plain text or JSON lines, optionally zstd-compressed. The reader
 * holds one file open and one document in memory, whatever the corpus size. */
#include "data/data.h"

#include "core/core.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- file lists --------------------------------------------------------------------------- */
typedef struct {
    char **v;
    int n, cap;
} strvec;

static void strvec_push(strvec *s, const char *p) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->v = xrealloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    s->v[s->n++] = xstrdup(p);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file below dir (hidden names skipped), appended unsorted. */
static int walk_dir(strvec *out, const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        core_errorf(err, errlen, "cannot read folder %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[CORE_PATH_MAX];
        if (core_path_join(p, sizeof p, dir, e->d_name) != 0) continue;
        struct stat st;
        if (stat(p, &st) != 0) continue;
        if (S_ISDIR(st.st_mode))
            rc = walk_dir(out, p, err, errlen);
        else if (S_ISREG(st.st_mode))
            strvec_push(out, p);
    }
    closedir(d);
    return rc;
}

static int expand_path(strvec *out, const char *path, char *err, size_t errlen) {
    int first = out->n;
    if (strpbrk(path, "*?[")) {
        glob_t g;
        int rc = glob(path, 0, NULL, &g);
        if (rc == 0)
            for (size_t k = 0; k < g.gl_pathc; k++) {
                struct stat st;
                if (stat(g.gl_pathv[k], &st) == 0 && S_ISDIR(st.st_mode)) {
                    strvec sub = {0};
                    if (walk_dir(&sub, g.gl_pathv[k], err, errlen) != 0) return -1;
                    qsort(sub.v, (size_t)sub.n, sizeof *sub.v, cmp_str);
                    for (int j = 0; j < sub.n; j++)
                        strvec_push(out, sub.v[j]), free(sub.v[j]);
                    free(sub.v);
                } else {
                    strvec_push(out, g.gl_pathv[k]);
                }
            }
        globfree(&g);
        if (out->n == first) {
            core_errorf(err, errlen, "no file matches %s", path);
            return -1;
        }
        return 0;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        core_errorf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        if (walk_dir(out, path, err, errlen) != 0) return -1;
        qsort(out->v + first, (size_t)(out->n - first), sizeof *out->v, cmp_str);
        if (out->n == first) {
            core_errorf(err, errlen, "folder %s holds no files", path);
            return -1;
        }
        return 0;
    }
    strvec_push(out, path);
    return 0;
}

int src_list_add(src_list *l, const char *name, const char *path, src_format f, src_docmode d,
                 const char *text_field, char *err, size_t errlen) {
    strvec files = {0};
    if (expand_path(&files, path, err, errlen) != 0) {
        for (int k = 0; k < files.n; k++)
            free(files.v[k]);
        free(files.v);
        return -1;
    }
    l->v = xrealloc(l->v, (size_t)(l->n + 1) * sizeof *l->v);
    src_spec *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->format = f;
    s->docs = d;
    snprintf(s->text_field, sizeof s->text_field, "%s", text_field ? text_field : "text");
    s->files = files.v;
    s->nfiles = files.n;
    s->max_docs = INT64_MAX;
    return 0;
}

void src_list_free(src_list *l) {
    for (int i = 0; i < l->n; i++) {
        for (int k = 0; k < l->v[i].nfiles; k++)
            free(l->v[i].files[k]);
        free(l->v[i].files);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static const char *node_str(const cfg_node *m, const char *key) {
    cfg_node *n = m ? cfg_map_get(m, key) : NULL;
    return n && n->type == CFG_STR ? n->s : NULL;
}

/* "~/x" → "$HOME/x"; relative → root/x. */
static int resolve(char *out, size_t outlen, const char *root, const char *p) {
    if (p[0] == '~' && (p[1] == '/' || p[1] == 0)) {
        const char *home = getenv("HOME");
        return core_path_join(out, outlen, home ? home : "/", p[1] ? p + 2 : "");
    }
    if (p[0] == '/') return snprintf(out, outlen, "%s", p) < (int)outlen ? 0 : -1;
    return core_path_join(out, outlen, root, p);
}

/* ---- a local stand-in for the reference's hub sanity-check corpus --------------------------
 * The reference's default data (sanity-check-2) reads AG News from the Hugging Face hub, which
 * cram never contacts. So that its first commands (`pretrain dryrun=True`, the installation
 * checks) work offline, the source `ag_news` with provider huggingface is replaced by generated
 * text of the same shape: one short "news item" per line, a title and two or three sentences of
 * pseudo-words drawn from a fixed Zipf-like lexicon, seeded so every machine writes the same
 * file. It is a plumbing check only (nothing in it is language); the log says so. */
#define STANDIN_DOCS 120000
#define STANDIN_WORDS 40000

static void standin_word(char *w, size_t cap, uint32_t k) {
    static const char *const on[] = {"b",  "c",  "d",  "f",  "g",  "h",  "j",  "k", "l",  "m",
                                     "n",  "p",  "r",  "s",  "t",  "v",  "w",  "z", "br", "ch",
                                     "cl", "dr", "gr", "pl", "sh", "st", "th", "tr"};
    static const char *const nu[] = {"a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"};
    core_rng r;
    core_rng_init(&r, 0x61676e657773ull, 0, k, 1); /* word k is a pure function of k */
    int syl = 1 + (int)core_rng_below(&r, 3) + (k > 2000) + (k > 15000);
    size_t n = 0;
    w[0] = 0;
    for (int i = 0; i < syl && n + 8 < cap; i++)
        n += (size_t)snprintf(w + n, cap - n, "%s%s", on[core_rng_below(&r, 28)],
                              nu[core_rng_below(&r, 10)]);
}

static int standin_write(const char *path, char *err, size_t errlen) {
    char(*lex)[24] = xmalloc(STANDIN_WORDS * sizeof *lex);
    for (uint32_t k = 0; k < STANDIN_WORDS; k++)
        standin_word(lex[k], sizeof lex[k], k);
    size_t len = 0, cap = 0;
    uint8_t *buf = NULL;
    core_rng r;
    core_rng_init(&r, 0x61676e657773ull, 0, 0, 2);
    for (int d = 0; d < STANDIN_DOCS; d++) {
        int nsent = 3 + (int)core_rng_below(&r, 2);
        for (int t = 0; t < nsent; t++) {
            int nw = (t == 0 ? 4 : 8) + (int)core_rng_below(&r, 8);
            for (int i = 0; i < nw; i++) {
                /* Zipf-like: the square of a uniform number favours the first words */
                double u = (double)core_rng_u32(&r) / 4294967296.0;
                const char *w = lex[(uint32_t)(u * u * u * STANDIN_WORDS)];
                char tmp[32];
                int n = snprintf(tmp, sizeof tmp, "%s%c%s", i ? " " : "",
                                 i == 0 ? (char)(w[0] - 32) : w[0], w + 1);
                core_bytes_append(&buf, &len, &cap, tmp, (size_t)n);
            }
            core_bytes_append(&buf, &len, &cap, t == 0 ? " - " : ". ", t == 0 ? 3 : 2);
        }
        core_bytes_append(&buf, &len, &cap, "\n", 1);
    }
    free(lex);
    int rc = core_atomic_write(path, buf, len, err, errlen);
    free(buf);
    return rc;
}

/* The stand-in's path under impl.path, written when missing; -1 with a message on failure. */
static int standin_path(char *out, size_t outlen, const char *root, const char *name, char *err,
                        size_t errlen) {
    char dir[CORE_PATH_MAX];
    if (core_path_join(dir, sizeof dir, root, "standin") ||
        snprintf(out, outlen, "%s/%s.txt", dir, name) >= (int)outlen)
        return core_errorf(err, errlen, "data source '%s': path too long", name);
    if (core_is_file(out)) return 0;
    if (core_mkdir_p(dir, err, errlen)) return -1;
    core_log_info("Data source '%s' lives on the Hugging Face hub, which cram does not contact: "
                  "writing a generated stand-in of the same shape to %s (pseudo-words, for "
                  "plumbing checks only).",
                  name, out);
    return standin_write(out, err, errlen);
}

static int add_source(src_list *l, const char *name, const cfg_node *s, const char *root,
                      int64_t max_docs, char *err, size_t errlen) {
    const char *provider = node_str(s, "provider");
    if (provider && strcmp(provider, "huggingface") == 0 && strcmp(name, "ag_news") == 0) {
        char path[CORE_PATH_MAX + 32];
        if (standin_path(path, sizeof path, root, name, err, errlen)) return -1;
        core_log_info("Data source 'ag_news': using the generated stand-in %s.", path);
        return src_list_add(l, name, path, SRC_TEXT, SRC_DOC_LINE, NULL, err, errlen);
    }
    if (provider && strcmp(provider, "local") != 0) {
        core_errorf(err, errlen,
                    "data source '%s' has provider '%s': cram reads local files only (no network); "
                    "give it `provider: local` and a `path` to your copy of the data",
                    name, provider);
        return -1;
    }
    src_format fmt = SRC_TEXT;
    const char *format = node_str(s, "format"), *file_type = node_str(s, "file_type");
    const char *f = format ? format : file_type;
    if (f) {
        if (strcmp(f, "text") == 0 || strcmp(f, "txt") == 0)
            fmt = SRC_TEXT;
        else if (strcmp(f, "jsonl") == 0 || strcmp(f, "json") == 0)
            fmt = SRC_JSONL;
        else {
            core_errorf(err, errlen, "data source '%s': unknown format '%s' (text or jsonl)", name,
                        f);
            return -1;
        }
    }
    src_docmode dm = SRC_DOC_BLANK_LINE;
    const char *docs = node_str(s, "documents");
    if (docs) {
        if (strcmp(docs, "blank-line") == 0)
            dm = SRC_DOC_BLANK_LINE;
        else if (strcmp(docs, "line") == 0)
            dm = SRC_DOC_LINE;
        else if (strcmp(docs, "file") == 0)
            dm = SRC_DOC_FILE;
        else {
            core_errorf(err, errlen,
                        "data source '%s': unknown documents '%s' (blank-line, line or file)", name,
                        docs);
            return -1;
        }
    }
    const char *field = node_str(s, "text_field");
    cfg_node *filter = cfg_map_get(s, "filter");
    if (filter && filter->type != CFG_NULL) {
        core_errorf(err, errlen, "data source '%s': `filter` on meta fields is not supported yet",
                    name);
        return -1;
    }
    /* the patterns: `path` (one string) or `files` (a list, or one string) */
    strvec pats = {0};
    const char *path = node_str(s, "path");
    if (path) strvec_push(&pats, path);
    cfg_node *files = cfg_map_get(s, "files");
    if (files && files->type == CFG_STR) strvec_push(&pats, files->s);
    if (files && files->type == CFG_LIST)
        for (int k = 0; k < files->n; k++)
            if (files->items[k]->type == CFG_STR) strvec_push(&pats, files->items[k]->s);
    int rc = 0;
    if (pats.n == 0) {
        core_errorf(err, errlen, "data source '%s' names no files: give it `path` or `files`",
                    name);
        rc = -1;
    }
    int first = l->n;
    for (int k = 0; rc == 0 && k < pats.n; k++) {
        char full[CORE_PATH_MAX];
        if (resolve(full, sizeof full, root, pats.v[k]) != 0) {
            core_errorf(err, errlen, "data source '%s': path too long", name);
            rc = -1;
            break;
        }
        char e2[DATA_ERRLEN];
        if (src_list_add(l, name, full, fmt, dm, field, e2, sizeof e2) != 0) {
            core_errorf(err, errlen,
                        "data source '%s': %s (relative paths are resolved against impl.path = %s; "
                        "scripts/fetch-corpus writes the local corpora)",
                        name, e2, root);
            rc = -1;
        }
    }
    /* one spec per pattern; the per-source cap and concatenation apply to each */
    for (int k = first; rc == 0 && k < l->n; k++) {
        cfg_node *c = cfg_map_get(s, "concatenate_successive_entries");
        l->v[k].concat = c && c->type == CFG_INT ? c->i : 0;
        l->v[k].max_docs = max_docs;
    }
    for (int k = 0; k < pats.n; k++)
        free(pats.v[k]);
    free(pats.v);
    return rc;
}

int src_list_from_config(src_list *out, const cfg_node *data, const char *root, char *err,
                         size_t errlen) {
    memset(out, 0, sizeof *out);
    cfg_node *srcs = cfg_map_get(data, "sources");
    if (!srcs || srcs->type != CFG_MAP || srcs->n == 0) {
        core_errorf(err, errlen, "data.sources is empty: the data config names no source");
        return -1;
    }
    double maxe = 1e18;
    cfg_node *m = cfg_map_get(data, "max_entries_in_raw_dataset");
    if (m && m->type == CFG_INT) maxe = (double)m->i;
    if (m && m->type == CFG_FLOAT) maxe = m->f;
    int64_t max_docs = maxe >= 9e18 ? INT64_MAX : (int64_t)maxe;
    for (int k = 0; k < srcs->n; k++) {
        if (add_source(out, srcs->keys[k], srcs->items[k], root, max_docs, err, errlen) != 0) {
            src_list_free(out);
            return -1;
        }
    }
    return 0;
}

/* ---- byte streams (plain or zstd) --------------------------------------------------------- */
typedef struct {
    FILE *fp;
    ZSTD_DStream *z;
    uint8_t *in;
    size_t in_size, in_pos, in_cap;
    bool eof;
} bstream;

static int bs_open(bstream *b, const char *path, char *err, size_t errlen) {
    memset(b, 0, sizeof *b);
    b->fp = fopen(path, "rb");
    if (!b->fp) {
        core_errorf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (ends_with(path, ".zst")) {
        b->z = ZSTD_createDStream();
        ZSTD_initDStream(b->z);
        b->in_cap = ZSTD_DStreamInSize();
        b->in = xmalloc(b->in_cap);
    }
    return 0;
}

static void bs_close(bstream *b) {
    if (b->fp) fclose(b->fp);
    if (b->z) ZSTD_freeDStream(b->z);
    free(b->in);
    memset(b, 0, sizeof *b);
}

/* Up to n bytes; 0 at the end; -1 on an error. */
static long bs_read(bstream *b, void *buf, size_t n, const char *path, char *err, size_t errlen) {
    if (!b->z) {
        size_t got = fread(buf, 1, n, b->fp);
        if (got == 0 && ferror(b->fp)) {
            core_errorf(err, errlen, "reading %s: %s", path, strerror(errno));
            return -1;
        }
        return (long)got;
    }
    ZSTD_outBuffer out = {buf, n, 0};
    while (out.pos == 0) {
        if (b->in_pos == b->in_size) {
            if (b->eof) return 0;
            b->in_size = fread(b->in, 1, b->in_cap, b->fp);
            b->in_pos = 0;
            if (b->in_size == 0) {
                if (ferror(b->fp)) {
                    core_errorf(err, errlen, "reading %s: %s", path, strerror(errno));
                    return -1;
                }
                b->eof = true;
                return 0; /* a truncated frame just ends the text */
            }
        }
        ZSTD_inBuffer in = {b->in, b->in_size, b->in_pos};
        size_t r = ZSTD_decompressStream(b->z, &out, &in);
        b->in_pos = in.pos;
        if (ZSTD_isError(r)) {
            core_errorf(err, errlen, "%s: zstd: %s (is the file complete?)", path,
                        ZSTD_getErrorName(r));
            return -1;
        }
    }
    return (long)out.pos;
}

/* ---- the document reader ------------------------------------------------------------------ */
struct src_reader {
    const src_list *l;
    int si, fi; /* current source and file */
    bool open;
    bstream bs;
    uint8_t *buf; /* read buffer */
    size_t buf_len, buf_pos, buf_cap;
    bool file_eof;
    int64_t line_no;
    char *line; /* the current line (no newline) */
    size_t line_len, line_cap;
    char *doc; /* the document being assembled */
    size_t doc_len, doc_cap;
    char *cat; /* concatenation of successive documents */
    size_t cat_len, cat_cap;
    int64_t taken; /* documents given from the current source */
    uint64_t bytes;
    int warnings; /* files with a few bad bytes reported so far */
};

#define SRC_MAX_WARNINGS 10

static void grow(char **p, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    *p = xrealloc(*p, c);
    *cap = c;
}

static void append(char **p, size_t *len, size_t *cap, const char *s, size_t n) {
    grow(p, cap, *len + n + 1);
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = 0;
}

int src_reader_open(src_reader **out, const src_list *l, char *err, size_t errlen) {
    (void)err, (void)errlen;
    src_reader *r = xcalloc(1, sizeof *r);
    r->l = l;
    r->buf_cap = 1 << 20; /* grows to TOK_TEXT_CHECK_BYTES for the first fill of a large file */
    r->buf = xmalloc(r->buf_cap);
    *out = r;
    return 0;
}

void src_reader_close(src_reader *r) {
    if (!r) return;
    if (r->open) bs_close(&r->bs);
    free(r->buf);
    free(r->line);
    free(r->doc);
    free(r->cat);
    free(r);
}

uint64_t src_reader_bytes(const src_reader *r) {
    return r->bytes;
}

static const char *cur_path(const src_reader *r) {
    return r->l->v[r->si].files[r->fi];
}

/* Next line of the current file into r->line: 1, 0 at the end of the file, -1 on an error. */
static int next_line(src_reader *r, char *err, size_t errlen) {
    r->line_len = 0;
    bool any = false;
    for (;;) {
        if (r->buf_pos == r->buf_len) {
            if (r->file_eof) break;
            long got = bs_read(&r->bs, r->buf, r->buf_cap, cur_path(r), err, errlen);
            if (got < 0) return -1;
            if (got == 0) {
                r->file_eof = true;
                break;
            }
            r->bytes += (uint64_t)got;
            r->buf_len = (size_t)got;
            r->buf_pos = 0;
        }
        uint8_t *start = r->buf + r->buf_pos;
        uint8_t *nl = memchr(start, '\n', r->buf_len - r->buf_pos);
        size_t n = nl ? (size_t)(nl - start) : r->buf_len - r->buf_pos;
        append(&r->line, &r->line_len, &r->line_cap, (const char *)start, n);
        any = true;
        r->buf_pos += n + (nl ? 1 : 0);
        if (nl) break;
    }
    if (!any) return 0;
    r->line_no++;
    if (r->line_len && r->line[r->line_len - 1] == '\r') r->line[--r->line_len] = 0;
    if (!r->line) append(&r->line, &r->line_len, &r->line_cap, "", 0);
    return 1;
}

static bool blank(const char *s, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (s[k] != ' ' && s[k] != '\t' && s[k] != '\r' && s[k] != '\f' && s[k] != '\v')
            return false;
    return true;
}

/* JSON lines: the text field of one record. 1 = found, 0 = blank line, -1 = error. */
static int json_doc(src_reader *r, const src_spec *s, char *err, size_t errlen) {
    if (blank(r->line, r->line_len)) return 0;
    cJSON *j = cJSON_ParseWithLength(r->line, r->line_len);
    if (!j) {
        core_errorf(err, errlen, "%s:%lld: not a JSON record", cur_path(r), (long long)r->line_no);
        return -1;
    }
    cJSON *t = cJSON_GetObjectItemCaseSensitive(j, s->text_field);
    if (!cJSON_IsString(t)) {
        core_errorf(err, errlen, "%s:%lld: the record has no string field '%s' (set text_field)",
                    cur_path(r), (long long)r->line_no, s->text_field);
        cJSON_Delete(j);
        return -1;
    }
    append(&r->doc, &r->doc_len, &r->doc_cap, t->valuestring, strlen(t->valuestring));
    cJSON_Delete(j);
    return 1;
}

/* One raw document of the current file into r->doc: 1, 0 at the end of the file, -1. */
static int file_doc(src_reader *r, char *err, size_t errlen) {
    const src_spec *s = &r->l->v[r->si];
    r->doc_len = 0;
    if (r->doc) r->doc[0] = 0;
    for (;;) {
        int rc = next_line(r, err, errlen);
        if (rc < 0) return -1;
        if (rc == 0)
            return s->docs == SRC_DOC_BLANK_LINE || s->docs == SRC_DOC_FILE
                       ? (r->doc_len && !blank(r->doc, r->doc_len))
                       : 0;
        if (s->format == SRC_JSONL) {
            rc = json_doc(r, s, err, errlen);
            if (rc != 0) return rc;
            continue;
        }
        bool b = blank(r->line, r->line_len);
        switch (s->docs) {
        case SRC_DOC_LINE:
            if (b) continue;
            append(&r->doc, &r->doc_len, &r->doc_cap, r->line, r->line_len);
            return 1;
        case SRC_DOC_BLANK_LINE:
            if (b) {
                if (r->doc_len) return 1;
                continue;
            }
            if (r->doc_len) append(&r->doc, &r->doc_len, &r->doc_cap, "\n", 1);
            append(&r->doc, &r->doc_len, &r->doc_cap, r->line, r->line_len);
            break;
        case SRC_DOC_FILE:
            if (r->doc_len || r->line_no > 1) append(&r->doc, &r->doc_len, &r->doc_cap, "\n", 1);
            append(&r->doc, &r->doc_len, &r->doc_cap, r->line, r->line_len);
            break;
        }
    }
}

/* Opens the current file and reads its first TOK_TEXT_CHECK_BYTES (after decompression) into the
 * buffer, where they are checked before any of its documents is given out: a file that is not
 * UTF-8 text (UTF-16/32, binary, mostly invalid UTF-8 or control characters) is an error naming
 * it; a few bad bytes are a warning. */
static int open_file(src_reader *r, char *err, size_t errlen) {
    const char *path = cur_path(r);
    if (bs_open(&r->bs, path, err, errlen) != 0) return -1;
    r->open = true;
    r->buf_len = r->buf_pos = 0;
    r->file_eof = false;
    r->line_no = 0;
    while (r->buf_len < TOK_TEXT_CHECK_BYTES) {
        if (r->buf_len == r->buf_cap) {
            r->buf_cap *= 2;
            r->buf = xrealloc(r->buf, r->buf_cap);
        }
        long got = bs_read(&r->bs, r->buf + r->buf_len, r->buf_cap - r->buf_len, path, err, errlen);
        if (got < 0) return -1;
        if (got == 0) {
            r->file_eof = true;
            break;
        }
        r->buf_len += (size_t)got;
    }
    r->bytes += r->buf_len;
    char name[CORE_PATH_MAX + 64], msg[DATA_ERRLEN];
    snprintf(name, sizeof name, "%s%s", path, r->bs.z ? " (after zstd decompression)" : "");
    int v = tok_text_check(r->buf, r->buf_len, r->file_eof, name, msg, sizeof msg);
    if (v < 0) {
        core_errorf(err, errlen, "%s", msg);
        return -1;
    }
    if (v > 0 && r->warnings++ < SRC_MAX_WARNINGS)
        core_log_warn("%s%s", msg,
                      r->warnings == SRC_MAX_WARNINGS ? " (further such warnings are not shown)"
                                                      : "");
    return 0;
}

/* One raw document from any file of the current source: 1, 0 when the source is done. */
static int source_doc(src_reader *r, char *err, size_t errlen) {
    const src_spec *s = &r->l->v[r->si];
    while (r->fi < s->nfiles) {
        if (!r->open && open_file(r, err, errlen) != 0) return -1;
        int rc = file_doc(r, err, errlen);
        if (rc != 0) return rc;
        bs_close(&r->bs);
        r->open = false;
        r->fi++;
    }
    return 0;
}

int src_reader_next(src_reader *r, const char **doc, size_t *len, char *err, size_t errlen) {
    while (r->si < r->l->n) {
        const src_spec *s = &r->l->v[r->si];
        if (r->taken < s->max_docs) {
            int64_t k = s->concat > 0 ? s->concat : 1;
            r->cat_len = 0;
            int64_t got = 0;
            int rc = 0;
            while (got < k && (rc = source_doc(r, err, errlen)) == 1) {
                if (blank(r->doc, r->doc_len)) continue;
                append(&r->cat, &r->cat_len, &r->cat_cap, r->doc, r->doc_len);
                got++;
            }
            if (rc < 0) return -1;
            if (got > 0) { /* a trailing group shorter than k is kept, not dropped */
                r->taken++;
                *doc = r->cat;
                *len = r->cat_len;
                return 1;
            }
        }
        if (r->open) bs_close(&r->bs);
        r->open = false;
        r->si++;
        r->fi = 0;
        r->taken = 0;
    }
    return 0;
}
