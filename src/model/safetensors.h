/* safetensors files (the Hugging Face format of model.safetensors): a reader that maps the file
 * and validates every header field against the file, and an atomic writer that lays files out
 * as the Python library does. The reader never aborts on bad input: every failure is an error
 * code with a message naming the file. */
#ifndef CRAM_MODEL_SAFETENSORS_H
#define CRAM_MODEL_SAFETENSORS_H

#include "core/fileio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
/* The Python library refuses headers above 100 MB; so do we (a corrupt length must not make
 * us allocate gigabytes). */
#define ST_MAX_HEADER ((uint64_t)100000000)

typedef enum st_status {
    ST_OK = 0,
    ST_EIO = 1,     /* the file could not be opened, mapped or written */
    ST_EFORMAT = 2, /* the file is not a valid safetensors file */
    ST_EINVAL = 3,  /* bad arguments to the writer */
} st_status;

typedef enum st_dtype {
    ST_F32 = 0,
    ST_F16,
    ST_BF16,
    ST_F64,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U8,
    ST_BOOL,
    ST_NDTYPES
} st_dtype;

const char *st_dtype_name(st_dtype dt);              /* "F32", ... */
size_t st_dtype_size(st_dtype dt);                   /* bytes per element */
int st_dtype_parse(const char *name, st_dtype *out); /* 0, or -1 when unknown */

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim; /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    const void *data; /* into the file's data section; may be unaligned, read with memcpy */
    size_t nbytes;
} st_tensor;

typedef struct st_file {
    core_mmap map;      /* st_open's mapping; zeroed for st_parse */
    char *name;         /* the path (or the name given to st_parse), for messages */
    st_tensor *tensors; /* in header order */
    int ntensors;
    char **meta_keys; /* __metadata__, in header order */
    char **meta_values;
    int nmeta;
    const unsigned char *data; /* the data section: every byte after the header */
    size_t data_len;
} st_file;

/* Map and parse path. On failure f is left closed (st_close is still safe). */
st_status st_open(st_file *f, const char *path, char *err, size_t errlen);
/* Parse a whole file held in memory; the tensors point into buf, which must outlive f. */
st_status st_parse(st_file *f, const void *buf, size_t len, const char *name, char *err,
                   size_t errlen);
void st_close(st_file *f); /* safe on a zeroed or closed st_file */

const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta_get(const st_file *f, const char *key);

/* The checksum cram writes into __metadata__ (st_write_checked): 16 lowercase hex digits of
 * core_hash64 (64-bit FNV-1a, seed 0, core/hash.h) over the data section, i.e. over the bytes of
 * every tensor in file order. Metadata values are strings, as the format requires. */
#define ST_META_CHECKSUM "cram_data_fnv1a64"

/* Check the data section against ST_META_CHECKSUM. ST_OK with *present = true when it matches,
 * ST_OK with *present = false when the file carries no such key (a Hugging Face file, or one cram
 * wrote before it added checksums), ST_EFORMAT with a message naming the file when the value is
 * malformed or differs from the data (the file changed after it was written). */
st_status st_verify(const st_file *f, bool *present, char *err, size_t errlen);

/* Convert a F32, F16 or BF16 tensor to n floats (n must equal numel). -1 otherwise. */
int st_tensor_to_f32(const st_tensor *t, float *out, size_t n);

/* ---- writer ---- */
typedef struct st_write_tensor {
    const char *name;
    st_dtype dtype;
    int ndim;
    const int64_t *shape;
    const void *data; /* numel * dtype size bytes, little endian */
} st_write_tensor;

/* Write the tensors in the given order (data contiguous, header padded with spaces so the data
 * starts at a multiple of 8, as the Python library does) with optional string metadata
 * (nmeta key/value pairs; keys and values are copied into the header verbatim, JSON-escaped),
 * atomically: path holds either its old content or the complete new file. */
st_status st_write(const char *path, const st_write_tensor *tensors, int n,
                   const char *const *meta_keys, const char *const *meta_values, int nmeta,
                   char *err, size_t errlen);
/* st_write with ST_META_CHECKSUM added after the caller's metadata: what cram writes for every
 * model file (checkpoints, exports), so st_verify can tell a damaged file on load. The caller's
 * keys must not include ST_META_CHECKSUM. */
st_status st_write_checked(const char *path, const st_write_tensor *tensors, int n,
                           const char *const *meta_keys, const char *const *meta_values, int nmeta,
                           char *err, size_t errlen);

#endif
