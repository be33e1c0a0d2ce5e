/* Training-state file, version 2 (all integers little endian):
 *   0  "CRAMSTAT"   8  u32 version   12 u32 reserved (0)
 *   16 u64 step     24 u64 opt_t     32 f64 elapsed_s   40 u64 seed   48 u64 model_hash
 *   56 u64 n        64 u32 npos      68 u32 rng_bytes   72 u64 config_hash
 *   80 u64 pos[npos], then rng_bytes bytes padded with zeros to a multiple of 8,
 *   then f32 params[n], f32 m[n], f32 v[n], then u64 checksum = core_hash64(all bytes before).
 * Version 1 is the same without config_hash (pos[] starts at 72); it is still read, with
 * config_hash 0. Floats are stored as the host's IEEE-754 little-endian bytes (every machine
 * cram runs on). */
#include "train/trainstate.h"

#include "core/check.h"
#include "core/fileio.h"
#include "core/hash.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char ts_magic[8] = {'C', 'R', 'A', 'M', 'S', 'T', 'A', 'T'};
#define TS_FIXED_V1 72
#define TS_FIXED 80 /* version 2 */

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static size_t rng_padded(uint32_t k) {
    return ((size_t)k + 7) / 8 * 8;
}

/* The header bytes (fixed part, positions, RNG); returns their count. */
static size_t encode_header(unsigned char *buf, const ts_header *h) {
    memset(buf, 0, TS_FIXED + 8 * TS_MAX_POS + TS_MAX_RNG);
    memcpy(buf, ts_magic, 8);
    put_u32(buf + 8, TS_VERSION);
    put_u64(buf + 16, h->step);
    put_u64(buf + 24, h->opt_t);
    uint64_t e;
    memcpy(&e, &h->elapsed_s, 8);
    put_u64(buf + 32, e);
    put_u64(buf + 40, h->seed);
    put_u64(buf + 48, h->model_hash);
    put_u64(buf + 56, h->n);
    put_u32(buf + 64, h->npos);
    put_u32(buf + 68, h->rng_bytes);
    put_u64(buf + 72, h->config_hash);
    size_t off = TS_FIXED;
    for (uint32_t i = 0; i < h->npos; i++, off += 8)
        put_u64(buf + off, h->pos[i]);
    memcpy(buf + off, h->rng, h->rng_bytes);
    return off + rng_padded(h->rng_bytes);
}

ts_status ts_write(const char *path, const ts_header *h, const float *params, const float *m,
                   const float *v, char *err, size_t errlen) {
    if (h->npos > TS_MAX_POS || h->rng_bytes > TS_MAX_RNG)
        return core_errorf(err, errlen, "%s: too many position words or RNG bytes", path),
               TS_EINVAL;
    if (h->n && (!params || !m || !v))
        return core_errorf(err, errlen, "%s: missing parameter or moment buffers", path), TS_EINVAL;
    unsigned char hdr[TS_FIXED + 8 * TS_MAX_POS + TS_MAX_RNG];
    size_t hn = encode_header(hdr, h);
    core_hash hs;
    core_hash_init(&hs, 0);
    core_hash_update(&hs, hdr, hn);
    core_atomic_file af;
    char e[512];
    if (core_atomic_open(&af, path, e, sizeof e) != 0)
        return core_errorf(err, errlen, "%s: %s", path, e), TS_EIO;
    bool ok = fwrite(hdr, 1, hn, af.fp) == hn;
    const float *bufs[3] = {params, m, v};
    for (int b = 0; b < 3 && ok && h->n; b++) {
        size_t bytes = (size_t)h->n * sizeof(float);
        core_hash_update(&hs, bufs[b], bytes);
        ok = fwrite(bufs[b], 1, bytes, af.fp) == bytes;
    }
    unsigned char sum[8];
    put_u64(sum, core_hash_final(&hs));
    ok = ok && fwrite(sum, 1, 8, af.fp) == 8;
    if (!ok) {
        core_atomic_abort(&af);
        return core_errorf(err, errlen, "%s: write failed", path), TS_EIO;
    }
    if (core_atomic_commit(&af, e, sizeof e) != 0) {
        core_atomic_abort(&af);
        return core_errorf(err, errlen, "%s: %s", path, e), TS_EIO;
    }
    return TS_OK;
}

ts_status ts_read(const char *path, ts_header *h, float *params, float *m, float *v, size_t n,
                  uint64_t expect_model_hash, char *err, size_t errlen) {
    memset(h, 0, sizeof *h);
    core_mmap map = {0};
    char e[512];
    if (core_mmap_open(&map, path, e, sizeof e) != 0)
        return core_errorf(err, errlen, "%s: %s", path, e), TS_EIO;
    const unsigned char *p = map.ptr;
    const size_t len = map.size;
    ts_status rc = TS_OK;
    if (len < 8 || memcmp(p, ts_magic, 8) != 0) {
        core_errorf(err, errlen, "%s: not a cram training-state file (bad magic)", path);
        rc = TS_EFORMAT;
        goto out;
    }
    if (len < 12) {
        core_errorf(err, errlen, "%s: truncated (%zu bytes)", path, len);
        rc = TS_EFORMAT;
        goto out;
    }
    uint32_t version = get_u32(p + 8);
    if (version != 1 && version != TS_VERSION) {
        core_errorf(err, errlen, "%s: training-state version %u, this build reads versions 1 to %u",
                    path, version, TS_VERSION);
        rc = TS_EFORMAT;
        goto out;
    }
    const size_t fixed = version == 1 ? TS_FIXED_V1 : TS_FIXED;
    if (len < fixed + 8) {
        core_errorf(err, errlen, "%s: truncated (%zu bytes)", path, len);
        rc = TS_EFORMAT;
        goto out;
    }
    uint64_t fn = get_u64(p + 56);
    uint32_t npos = get_u32(p + 64), rng_bytes = get_u32(p + 68);
    if (npos > TS_MAX_POS || rng_bytes > TS_MAX_RNG) {
        core_errorf(err, errlen, "%s: corrupt header (%u position words, %u RNG bytes)", path, npos,
                    rng_bytes);
        rc = TS_EFORMAT;
        goto out;
    }
    size_t hn = fixed + 8 * (size_t)npos + rng_padded(rng_bytes);
    if (fn > (SIZE_MAX - hn - 8) / 12 || len != hn + 12 * fn + 8) {
        core_errorf(
            err, errlen,
            "%s: file has %zu bytes, but its header (%llu parameters) says %llu: truncated or "
            "corrupt",
            path, len, (unsigned long long)fn,
            fn > (SIZE_MAX - hn - 8) / 12 ? 0ULL : (unsigned long long)(hn + 12 * fn + 8));
        rc = TS_EFORMAT;
        goto out;
    }
    uint64_t want = get_u64(p + len - 8), got = core_hash64(p, len - 8, 0);
    if (want != got) {
        core_errorf(err, errlen,
                    "%s: checksum mismatch (stored %016llx, computed %016llx): the file is corrupt",
                    path, (unsigned long long)want, (unsigned long long)got);
        rc = TS_EFORMAT;
        goto out;
    }
    h->step = get_u64(p + 16);
    h->opt_t = get_u64(p + 24);
    uint64_t eb = get_u64(p + 32);
    memcpy(&h->elapsed_s, &eb, 8);
    h->seed = get_u64(p + 40);
    h->model_hash = get_u64(p + 48);
    h->config_hash = version == 1 ? 0 : get_u64(p + 72);
    h->version = version;
    h->n = fn;
    h->npos = npos;
    for (uint32_t i = 0; i < npos; i++)
        h->pos[i] = get_u64(p + fixed + 8 * i);
    h->rng_bytes = rng_bytes;
    memcpy(h->rng, p + fixed + 8 * npos, rng_bytes);
    if (!params) goto out;
    if (fn != n) {
        core_errorf(err, errlen,
                    "%s: holds %llu parameters, the model has %zu (a different architecture?)",
                    path, (unsigned long long)fn, n);
        rc = TS_EMISMATCH;
        goto out;
    }
    if (expect_model_hash && h->model_hash != expect_model_hash) {
        core_errorf(err, errlen, "%s: parameter layout %016llx differs from the model's %016llx",
                    path, (unsigned long long)h->model_hash, (unsigned long long)expect_model_hash);
        rc = TS_EMISMATCH;
        goto out;
    }
    if (n) {
        memcpy(params, p + hn, n * sizeof(float));
        memcpy(m, p + hn + n * sizeof(float), n * sizeof(float));
        memcpy(v, p + hn + 2 * n * sizeof(float), n * sizeof(float));
    }
out:
    core_mmap_close(&map);
    return rc;
}
