/* data: raw-text sources, the streaming preprocessing pipeline, the versioned token store, the
 * rank-strided resumable loader and the MLM collator. Everything that reads user files returns
 * an error code with a message (never aborts); docs/data.md has the formats and the decisions. */
#ifndef CRAM_DATA_H
#define CRAM_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/fileio.h"
#include "tok/tok.h"

#define DATA_ERRLEN 1024

/* ---- sources ------------------------------------------------------------------------------ */
typedef enum { SRC_TEXT = 0, SRC_JSONL = 1 } src_format;
typedef enum { SRC_DOC_BLANK_LINE = 0, SRC_DOC_LINE = 1, SRC_DOC_FILE = 2 } src_docmode;

/* One source of a data config, with its file patterns already expanded (sorted, per pattern). */
typedef struct {
    char name[128];
    src_format format;
    src_docmode docs;
    char text_field[128]; /* jsonl only */
    char **files;         /* (nfiles) paths as opened; *.zst are decompressed while reading */
    int nfiles;
    int64_t concat;   /* concatenate_successive_entries: join k documents with no separator */
    int64_t max_docs; /* documents taken from this source (max_entries_in_raw_dataset) */
} src_spec;

typedef struct {
    src_spec *v;
    int n;
} src_list;

/* Reads data.sources (cram's `provider: local, path, format, documents, text_field` form and the
 * reference's `file_type: json, files: [...]` form). Relative paths are joined to root (the
 * resolved impl.path). A pattern matching nothing is an error naming the resolved path. */
int src_list_from_config(src_list *out, const cfg_node *data, const char *root, char *err,
                         size_t errlen);
/* Adds one source by hand (tests, tools): path is a file, a folder (all regular files below it,
 * sorted, hidden ones skipped) or a glob. */
int src_list_add(src_list *l, const char *name, const char *path, src_format f, src_docmode d,
                 const char *text_field, char *err, size_t errlen);
void src_list_free(src_list *l);

/* Streams the documents of every source in order. A document is valid until the next call.
 * Whitespace-only documents are skipped. The first TOK_TEXT_CHECK_BYTES of each file (after
 * decompression) are checked with tok_text_check before any of its documents is given: a file that
 * is not UTF-8 text is an error naming it (and the encoding it looks like), a few bad bytes a
 * warning. Bytes are passed on as they are; the tokenizer replaces what it cannot read. */
typedef struct src_reader src_reader;
int src_reader_open(src_reader **out, const src_list *l, char *err, size_t errlen);
/* 1: a document; 0: the end; -1: an error (message names the file and line). */
int src_reader_next(src_reader *r, const char **doc, size_t *len, char *err, size_t errlen);
uint64_t src_reader_bytes(const src_reader *r); /* text bytes read so far (after decompression) */
void src_reader_close(src_reader *r);

/* ---- token store files (train.bin / valid.bin) -------------------------------------------- */
#define STORE_MAGIC "CRAMROWS"
#define STORE_VERSION 1 /* of the rows files (their header) */
/* Of the store folder (meta.json's store_version). 2 records a checksum of every tokenizer file;
 * version 1 folders are still read, their tokenizer unchecked (store.tok_unchecked). */
#define STORE_DIR_VERSION 2
#define STORE_HEADER_BYTES 64
#define STORE_CHUNK_BYTES (1u << 20) /* checksum unit: the payload is hashed per MiB */

typedef enum {
    STORE_VERIFY_AUTO = 0, /* header + size always; payload checksum when it is <= 1 GiB */
    STORE_VERIFY_QUICK,    /* header + size only */
    STORE_VERIFY_FULL,     /* header + size + payload checksum */
} store_verify;

/* A mapped rows file: row_count rows of row_len ids, stored as u16 or u32 little-endian. */
typedef struct {
    core_mmap map;
    const uint8_t *payload;
    int dtype_bytes; /* 2 or 4 */
    int32_t vocab_size, row_len;
    int64_t row_count;
    uint64_t checksum;
    char path[CORE_PATH_MAX];
} store_rows;

int store_rows_open(store_rows *r, const char *path, store_verify v, char *err, size_t errlen);
void store_rows_close(store_rows *r);
/* Row i as int32 ids: out (row_len). */
void store_rows_get(const store_rows *r, int64_t i, int32_t *out);
/* The payload checksum (per-MiB word hashes combined with core_hash; OpenMP over chunks). */
uint64_t store_checksum(const void *payload, size_t n);

/* Streaming writer: rows are appended as int32 and converted; finish writes the header last. */
typedef struct {
    core_atomic_file f;
    int dtype_bytes;
    int32_t vocab_size, row_len;
    int64_t row_count;
    uint8_t *chunk; /* (STORE_CHUNK_BYTES) */
    size_t chunk_used;
    uint64_t nchunks;
    uint64_t combine; /* core_hash state over the chunk hashes */
} store_writer;

int store_writer_open(store_writer *w, const char *path, int32_t vocab_size, int32_t row_len,
                      char *err, size_t errlen);
int store_writer_append(store_writer *w, const int32_t *rows, int64_t nrows, char *err,
                        size_t errlen);
int store_writer_finish(store_writer *w, char *err, size_t errlen);
void store_writer_abort(store_writer *w);

/* ---- the pipeline and the store folder ---------------------------------------------------- */
typedef struct {
    int64_t documents_read;  /* documents the sources gave */
    int64_t documents_dup;   /* removed as exact duplicates */
    int64_t documents_trash; /* removed by the chars-per-token rule */
    int64_t documents;       /* documents tokenized */
    int64_t bytes_read;      /* raw text bytes read */
    int64_t bytes;           /* text bytes of the tokenized documents */
    int64_t tokens;          /* ids produced, <sep>/<cls> included */
    int64_t tokens_dropped;  /* block remainders (< seq_length) that packing leaves out */
    int64_t unk_tokens;      /* <unk> among tokens */
    int64_t rows_packed;     /* rows before the cap */
    int64_t rows_train, rows_valid;
    int64_t tok_train_bytes; /* text the tokenizer was trained on */
    double seconds;          /* build time */
} data_stats;

/* An open store folder: rows, tokenizer and statistics. */
typedef struct {
    char dir[CORE_PATH_MAX];
    store_rows train, valid; /* valid.row_count may be 0 */
    tok_tokenizer *tok;
    data_stats stats;
    bool built;         /* data_prepare built it in this call (false: reused) */
    int version;        /* STORE_DIR_VERSION, or 1 */
    int tok_files;      /* tokenizer files whose checksum was verified on opening */
    bool tok_unchecked; /* a version 1 folder: no checksums of its tokenizer files to verify */
} store;

/* "<data.name>_<tokenizer>x<vocab>_<cfg_hash_hex(data)>" */
int store_dir_name(char *out, size_t outlen, const cfg_node *data, char *err, size_t errlen);
/* Opens and checks a store folder: meta.json, both rows files (their payload checksum as v asks),
 * and always every tokenizer file against the size and FNV-1a checksum meta.json records for it
 * (a missing or changed file is an error; nothing falls back to vocab.txt). */
int store_open(store *s, const char *dir, store_verify v, char *err, size_t errlen);
/* The tokenizer files of a store folder's tokenizer/ as meta.json records them: an object
 * {"name": {"bytes": n, "fnv1a64": "16 hex digits"}} over every regular file there, by name. */
struct cJSON;
int store_tokenizer_files_json(const char *tok_dir, struct cJSON *obj, char *err, size_t errlen);
void store_close(store *s);

/* The folder of corpora and stores: impl.path, ~ expanded; a relative one is taken from the
 * launch directory like base_dir (not placed under base_dir as in the reference). */
int data_root(char *out, size_t outlen, const cfg_node *cfg, char *err, size_t errlen);

/* Build the store for cfg.data into out_dir (which must not exist; built under a temporary name
 * and renamed when complete). root resolves relative source paths. */
/* Train the tokenizer a store build would train (same settings and text cap), from the data
 * config's sources in their own order, without building a store. */
int pipe_train_tokenizer(tok_tokenizer **out, const cfg_node *data, const char *root, int threads,
                         char *err, size_t errlen);
/* `cram tokenizer train data=X out=DIR [overrides]`: the tokenizer of a data config. */
int data_tokenizer_cli(int argc, char **argv);
int pipe_build(const cfg_node *data, const char *root, const char *out_dir, int threads,
               data_stats *st, char *err, size_t errlen);

/* Find the store of a composed pretrain config (cfg.data, cfg.impl, cfg.base_dir); build it when
 * missing unless impl.forbid_dataset_preprocessing. */
int data_prepare(store *s, const cfg_node *cfg, store_verify v, char *err, size_t errlen);

/* ---- the loader --------------------------------------------------------------------------- */
/* Where a loader stands: row `index` (of this rank's rows) of `epoch`. Saving and restoring it
 * resumes exactly. */
typedef struct {
    int64_t epoch, index;
} loader_pos;

/* Rank r of w reads rows perm(r), perm(r+w), ... of each epoch (DistributedSampler with
 * drop_last: every rank reads row_count / w rows per epoch) as one stream that the caller cuts
 * into microbatches of any size; a microbatch may run on into the next epoch. perm is the
 * identity, or a seeded pseudo-random bijection per epoch when shuffling (no per-row memory). */
typedef struct {
    const store_rows *rows;
    int rank, world;
    bool shuffle, reverse;
    uint64_t seed;
    int64_t per_rank; /* rows per epoch on each rank */
    loader_pos pos;
} loader;

/* mbs: the largest microbatch, only to refuse a store with fewer rows per rank. */
int loader_init(loader *l, const store_rows *rows, int rank, int world, int64_t mbs, bool shuffle,
                uint64_t seed, char *err, size_t errlen);
/* The global row index of this rank's k-th row in epoch e. */
int64_t loader_row(const loader *l, int64_t epoch, int64_t k);
/* Fill out (n, row_len) with the next n rows and advance; returns the position of the first.
 * keys (n entries, may be NULL) receives each row's place in the stream of all ranks,
 * epoch * (per_rank * world) + rank + world * k: the key of its MLM masks, the same whatever
 * the microbatch size. */
loader_pos loader_next(loader *l, int32_t *out, int64_t n, uint64_t *keys);
loader_pos loader_tell(const loader *l);
void loader_seek(loader *l, loader_pos p);

/* ---- the MLM collator ------------------------------------------------------------------- */
typedef struct {
    double mlm_probability;
    bool use_80_20_rule;
    bool disable_mlm;
    double token_drop;
    int32_t mask_id, pad_id, vocab_size;
} mlm_opts;

/* From train.objective.* and the tokenizer's special ids. */
int mlm_opts_from_config(mlm_opts *o, const cfg_node *cfg, const tok_tokenizer *t, char *err,
                         size_t errlen);
double mlm_round_half_even(double x);
int mlm_num_masked(const mlm_opts *o, int S); /* round(p*S); 0 with disable_mlm */
int mlm_out_len(const mlm_opts *o, int S);    /* S, or int(S*(1-token_drop)) */

/* Fixed shapes. positions are row-local and sorted ascending, so that flattening them row by
 * row gives the order of labels != -100; targets are the original ids there. With token_drop >
 * 0 the count of masked positions varies per row: M is 0 and only labels carry them. */
typedef struct {
    int32_t B, S, M;    /* B = rows of the last collate; S = output length */
    int32_t cap;        /* rows allocated */
    int32_t *input_ids; /* (B, S) */
    int32_t *labels;    /* (B, S), -100 where no loss */
    int32_t *positions; /* (B, M) */
    int32_t *targets;   /* (B, M) */
} mlm_batch;

void mlm_batch_init(mlm_batch *b, int B, int S_in, const mlm_opts *o);
void mlm_batch_free(mlm_batch *b);
/* rows (B, S_in) with B <= out->B; out->B becomes B. Randomness: row b draws from the core_rng
 * stream (seed, 0, keys[b], MLM_RNG_STREAM), so a row's masks depend on its place in the data
 * stream only, not on the microbatch it lands in, and any row can be regenerated. */
#define MLM_RNG_STREAM 0x6d6c6d72u
void mlm_collate(mlm_batch *out, const int32_t *rows, int B, int S_in, const mlm_opts *o,
                 uint64_t seed, const uint64_t *keys);

/* ---- command line ------------------------------------------------------------------------- */
/* `cram data [verify|inspect] key=value...`; argv[0] is "data". */
int data_cli_main(int argc, char **argv);

#endif
