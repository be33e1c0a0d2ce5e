/* The training-state file for resuming a run (intermediate_state): progress counters, elapsed
 * budget, data-loader position, RNG state and the flat parameter / AdamW moment buffers, with a
 * checksum over everything. Written atomically; the reader checks magic, version, every size
 * and the checksum before it touches the caller's buffers, and reports errors instead of
 * aborting. Layout in docs/optim.md. */
#ifndef CRAM_TRAIN_TRAINSTATE_H
#define CRAM_TRAIN_TRAINSTATE_H

#include <stddef.h>
#include <stdint.h>

#define TS_VERSION 2    /* written; version 1 (no config_hash) is still read */
#define TS_MAX_POS 64   /* data-loader position words */
#define TS_MAX_RNG 1024 /* bytes of RNG state */

typedef enum ts_status {
    TS_OK = 0,
    TS_EIO = 1,       /* cannot open, map or write the file */
    TS_EFORMAT = 2,   /* not a training-state file, truncated, corrupt (checksum) */
    TS_EMISMATCH = 3, /* valid file, but it does not fit the caller's model (size, model hash) */
    TS_EINVAL = 4,    /* bad arguments */
} ts_status;

typedef struct ts_header {
    uint64_t step;       /* µsteps done */
    uint64_t opt_t;      /* optimizer updates done (AdamW's t) */
    double elapsed_s;    /* training time used so far (budget clock) */
    uint64_t seed;       /* the run's seed */
    uint64_t model_hash; /* caller's fingerprint of the parameter layout; checked on read */
    /* caller's fingerprint of the configuration that wrote the state; never checked here.
     * 0: unknown (a version 1 file, or a writer that does not set it) */
    uint64_t config_hash;
    uint32_t version; /* filled by ts_read: the file's format version */
    uint32_t npos;    /* data-loader position: opaque words */
    uint64_t pos[TS_MAX_POS];
    uint32_t rng_bytes; /* RNG state: opaque bytes (e.g. a core_rng) */
    unsigned char rng[TS_MAX_RNG];
    uint64_t n; /* floats in each of params, m, v */
} ts_header;

/* Write h and the three n-float buffers (h->n) atomically, as version TS_VERSION. */
ts_status ts_write(const char *path, const ts_header *h, const float *params, const float *m,
                   const float *v, char *err, size_t errlen);

/* Read and validate path (version 1 or 2). h receives the header. When params is not NULL, the file
 * must hold exactly n floats per buffer and, when expect_model_hash is not 0, that model hash
 * (TS_EMISMATCH otherwise); params, m and v are filled only after every check passed. With
 * params NULL only the header is returned (the whole file is still verified). */
ts_status ts_read(const char *path, ts_header *h, float *params, float *m, float *v, size_t n,
                  uint64_t expect_model_hash, char *err, size_t errlen);

#endif
