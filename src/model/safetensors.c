/* safetensors reader and writer. Layout: u64 little-endian header length N, N bytes of JSON
 * ({"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...},
 * padded with spaces), then the data section. Offsets are relative to the data section; the
 * tensors must tile it exactly (no gaps, no overlaps), as the Python library demands. */
#include "model/safetensors.h"

#include "core/check.h"
#include "core/hash.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[ST_NDTYPES] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2},   [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},   [ST_I16] = {"I16", 2},   [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
};

const char *st_dtype_name(st_dtype dt) {
    return (dt >= 0 && dt < ST_NDTYPES) ? dtypes[dt].name : "?";
}

size_t st_dtype_size(st_dtype dt) {
    return (dt >= 0 && dt < ST_NDTYPES) ? dtypes[dt].size : 0;
}

int st_dtype_parse(const char *name, st_dtype *out) {
    for (int k = 0; k < ST_NDTYPES; k++)
        if (strcmp(name, dtypes[k].name) == 0) {
            *out = (st_dtype)k;
            return 0;
        }
    return -1;
}

void st_close(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->ntensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->name);
    core_mmap_close(&f->map);
    memset(f, 0, sizeof *f);
}

/* A JSON number that is a whole number in [0, 2^53] (exact in a double). */
static bool json_uint(const cJSON *n, uint64_t *out) {
    if (!cJSON_IsNumber(n)) return false;
    double v = n->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0) || v != (double)(uint64_t)v) return false;
    *out = (uint64_t)v;
    return true;
}

typedef struct span {
    uint64_t begin, end;
    int idx;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parses one tensor entry; on error returns the message code. */
static st_status parse_tensor(st_tensor *t, const cJSON *e, const char *file, uint64_t data_len,
                              uint64_t *begin, uint64_t *end, char *err, size_t errlen) {
    const char *nm = e->string;
    if (!cJSON_IsObject(e))
        return core_errorf(err, errlen, "%s: tensor '%s': entry is not a JSON object", file, nm),
               ST_EFORMAT;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off))
        return core_errorf(err, errlen,
                           "%s: tensor '%s': needs \"dtype\" (string), \"shape\" and "
                           "\"data_offsets\" (arrays)",
                           file, nm),
               ST_EFORMAT;
    if (st_dtype_parse(dt->valuestring, &t->dtype) != 0)
        return core_errorf(err, errlen, "%s: tensor '%s': unsupported dtype '%.32s'", file, nm,
                           dt->valuestring),
               ST_EFORMAT;
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > ST_MAX_DIMS)
        return core_errorf(err, errlen, "%s: tensor '%s': %d dimensions (at most %d)", file, nm,
                           ndim, ST_MAX_DIMS),
               ST_EFORMAT;
    t->ndim = ndim;
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *it = sh->child; it; it = it->next, d++) {
        uint64_t v;
        if (!json_uint(it, &v))
            return core_errorf(err, errlen,
                               "%s: tensor '%s': shape entries must be whole numbers >= 0", file,
                               nm),
                   ST_EFORMAT;
        if (v != 0 && numel > UINT64_MAX / v)
            return core_errorf(err, errlen, "%s: tensor '%s': shape overflows", file, nm),
                   ST_EFORMAT;
        numel *= v;
        t->shape[d] = (int64_t)v;
    }
    t->numel = numel;
    uint64_t esz = st_dtype_size(t->dtype);
    if (numel > UINT64_MAX / esz)
        return core_errorf(err, errlen, "%s: tensor '%s': size overflows", file, nm), ST_EFORMAT;
    if (cJSON_GetArraySize(off) != 2 || !json_uint(off->child, begin) ||
        !json_uint(off->child->next, end))
        return core_errorf(err, errlen,
                           "%s: tensor '%s': data_offsets must be two whole numbers >= 0", file,
                           nm),
               ST_EFORMAT;
    if (*begin > *end || *end > data_len)
        return core_errorf(
                   err, errlen,
                   "%s: tensor '%s': data_offsets [%llu, %llu] outside the %llu-byte data section",
                   file, nm, (unsigned long long)*begin, (unsigned long long)*end,
                   (unsigned long long)data_len),
               ST_EFORMAT;
    if (*end - *begin != numel * esz)
        return core_errorf(
                   err, errlen,
                   "%s: tensor '%s': %llu bytes in the file, but %s with %llu elements needs %llu",
                   file, nm, (unsigned long long)(*end - *begin), st_dtype_name(t->dtype),
                   (unsigned long long)numel, (unsigned long long)(numel * esz)),
               ST_EFORMAT;
    t->nbytes = (size_t)(*end - *begin);
    return ST_OK;
}

/* The reader runs on user files: an allocation failure is an error with a message, never an
 * exit (core/check.h's x* wrappers are for the program's own data). */
static st_status oom(const char *file, char *err, size_t errlen) {
    core_errorf(err, errlen, "%s: out of memory while reading the header", file);
    return ST_EIO;
}

static st_status parse_metadata(st_file *f, const cJSON *e, char *err, size_t errlen) {
    if (cJSON_IsNull(e)) return ST_OK;
    if (!cJSON_IsObject(e))
        return core_errorf(err, errlen, "%s: __metadata__ is not a JSON object", f->name),
               ST_EFORMAT;
    int n = cJSON_GetArraySize(e);
    f->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    f->meta_values = calloc((size_t)n + 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values) return oom(f->name, err, errlen);
    for (const cJSON *it = e->child; it; it = it->next) {
        if (!cJSON_IsString(it) || !it->string)
            return core_errorf(err, errlen, "%s: __metadata__ value of '%s' is not a string",
                               f->name, it->string ? it->string : "?"),
                   ST_EFORMAT;
        char *k = strdup(it->string), *v = strdup(it->valuestring);
        if (!k || !v) {
            free(k), free(v);
            return oom(f->name, err, errlen);
        }
        f->meta_keys[f->nmeta] = k;
        f->meta_values[f->nmeta] = v;
        f->nmeta++;
    }
    return ST_OK;
}

st_status st_parse(st_file *f, const void *buf, size_t len, const char *name, char *err,
                   size_t errlen) {
    memset(f, 0, sizeof *f);
    const unsigned char *b = buf;
    st_status rc = ST_OK;
    cJSON *root = NULL;
    span *spans = NULL;
    char **names = NULL;
    f->name = strdup(name ? name : "(memory)");
    if (!f->name) return oom(name ? name : "(memory)", err, errlen);
    if (len < 8) {
        core_errorf(err, errlen, "%s: %zu bytes: too short for the 8-byte header length", f->name,
                    len);
        rc = ST_EFORMAT;
        goto out;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    if (hlen > ST_MAX_HEADER) {
        core_errorf(
            err, errlen,
            "%s: header length %llu exceeds the limit of %llu bytes (not a safetensors file?)",
            f->name, (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
        rc = ST_EFORMAT;
        goto out;
    }
    if (hlen > len - 8) {
        core_errorf(err, errlen,
                    "%s: header length %llu runs past the end of the %zu-byte file (truncated?)",
                    f->name, (unsigned long long)hlen, len);
        rc = ST_EFORMAT;
        goto out;
    }
    const char *hdr = (const char *)b + 8;
    if (hlen < 2 || hdr[0] != '{') {
        core_errorf(err, errlen, "%s: header does not start with a JSON object", f->name);
        rc = ST_EFORMAT;
        goto out;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= hdr ? (size_t)(end - hdr) : 0;
        core_errorf(err, errlen, "%s: header is not valid JSON (near byte %zu)", f->name, at + 8);
        rc = ST_EFORMAT;
        goto out;
    }
    for (const char *p = end; p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            core_errorf(err, errlen,
                        "%s: unexpected bytes after the header's JSON object (byte %zu)", f->name,
                        (size_t)(p - hdr) + 8);
            rc = ST_EFORMAT;
            goto out;
        }
    if (!cJSON_IsObject(root)) {
        core_errorf(err, errlen, "%s: header is not a JSON object", f->name);
        rc = ST_EFORMAT;
        goto out;
    }
    const unsigned char *data = b + 8 + hlen;
    const uint64_t data_len = (uint64_t)len - 8 - hlen;
    int n = cJSON_GetArraySize(root);
    f->data = data;
    f->data_len = (size_t)data_len;
    f->tensors = calloc((size_t)n + 1, sizeof(st_tensor));
    spans = calloc((size_t)n + 1, sizeof(span));
    if (!f->tensors || !spans) {
        rc = oom(f->name, err, errlen);
        goto out;
    }
    bool seen_meta = false;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string) {
            core_errorf(err, errlen, "%s: header entry without a name", f->name);
            rc = ST_EFORMAT;
            goto out;
        }
        if (strcmp(e->string, "__metadata__") == 0) {
            if (seen_meta) {
                core_errorf(err, errlen, "%s: __metadata__ appears twice", f->name);
                rc = ST_EFORMAT;
                goto out;
            }
            seen_meta = true;
            if ((rc = parse_metadata(f, e, err, errlen)) != ST_OK) goto out;
            continue;
        }
        st_tensor *t = &f->tensors[f->ntensors];
        uint64_t begin = 0, stop = 0;
        if ((rc = parse_tensor(t, e, f->name, data_len, &begin, &stop, err, errlen)) != ST_OK)
            goto out;
        t->name = strdup(e->string);
        if (!t->name) {
            rc = oom(f->name, err, errlen);
            goto out;
        }
        t->data = data + begin;
        spans[f->ntensors] = (span){begin, stop, f->ntensors};
        f->ntensors++;
    }
    /* names must be unique (JSON objects may repeat keys; cJSON keeps both) */
    names = calloc((size_t)f->ntensors + 1, sizeof(char *));
    if (!names) {
        rc = oom(f->name, err, errlen);
        goto out;
    }
    for (int i = 0; i < f->ntensors; i++)
        names[i] = f->tensors[i].name;
    qsort(names, (size_t)f->ntensors, sizeof(char *), name_cmp);
    for (int i = 1; i < f->ntensors; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            core_errorf(err, errlen, "%s: tensor '%s' appears twice", f->name, names[i]);
            rc = ST_EFORMAT;
            goto out;
        }
    /* the tensors must tile the data section: sorted by offset, each starts where the last
     * ended, and the last ends at the end of the file */
    qsort(spans, (size_t)f->ntensors, sizeof(span), span_cmp);
    uint64_t expect = 0;
    for (int i = 0; i < f->ntensors; i++) {
        if (spans[i].begin != expect) {
            core_errorf(err, errlen, "%s: tensor '%s' starts at data byte %llu, expected %llu (%s)",
                        f->name, f->tensors[spans[i].idx].name, (unsigned long long)spans[i].begin,
                        (unsigned long long)expect,
                        spans[i].begin < expect ? "overlaps another tensor" : "gap before it");
            rc = ST_EFORMAT;
            goto out;
        }
        expect = spans[i].end;
    }
    if (expect != data_len) {
        core_errorf(err, errlen, "%s: the data section has %llu bytes but the tensors cover %llu",
                    f->name, (unsigned long long)data_len, (unsigned long long)expect);
        rc = ST_EFORMAT;
        goto out;
    }
out:
    cJSON_Delete(root);
    free(spans);
    free(names);
    if (rc != ST_OK) {
        core_mmap m = f->map;
        f->map = (core_mmap){0};
        st_close(f);
        f->map = m; /* the caller (st_open) unmaps */
    }
    return rc;
}

st_status st_open(st_file *f, const char *path, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    core_mmap m = {0};
    char e[512];
    if (core_mmap_open(&m, path, e, sizeof e) != 0)
        return core_errorf(err, errlen, "%s: cannot map the file: %s", path, e), ST_EIO;
    st_status rc = st_parse(f, m.ptr, m.size, path, err, errlen);
    if (rc != ST_OK) {
        core_mmap_close(&m);
        memset(f, 0, sizeof *f);
        return rc;
    }
    f->map = m;
    return ST_OK;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->ntensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *st_meta_get(const st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

st_status st_verify(const st_file *f, bool *present, char *err, size_t errlen) {
    *present = false;
    const char *want = st_meta_get(f, ST_META_CHECKSUM);
    if (!want) return ST_OK;
    *present = true;
    uint64_t w = 0;
    size_t k = 0;
    for (; k < 16; k++) {
        char c = want[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) break;
        w = w << 4 | (uint64_t)d;
    }
    if (k != 16 || want[16] != '\0')
        return core_errorf(err, errlen,
                           "%s: __metadata__ %s is '%.40s', not 16 hex digits: the header was "
                           "modified after the file was written; re-export or re-train it",
                           f->name, ST_META_CHECKSUM, want),
               ST_EFORMAT;
    uint64_t got = core_hash64(f->data, f->data_len, 0);
    if (got != w) {
        char hw[17], hg[17];
        core_hash_hex(w, hw);
        core_hash_hex(got, hg);
        return core_errorf(err, errlen,
                           "%s: checksum mismatch: the tensor data hashes to %s but the file "
                           "records %s (%s), so the file was modified or damaged after it was "
                           "written; re-export or re-train it",
                           f->name, hg, hw, ST_META_CHECKSUM),
               ST_EFORMAT;
    }
    return ST_OK;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

int st_tensor_to_f32(const st_tensor *t, float *out, size_t n) {
    if (n != t->numel) return -1;
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case ST_F32:
        if (n) memcpy(out, p, n * 4);
        return 0;
    case ST_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
            memcpy(&out[i], &bits, 4);
        }
        return 0;
    default:
        return -1;
    }
}

/* ---- writer ---- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *s, const char *x, size_t k) {
    if (s->n + k + 1 > s->cap) {
        while (s->n + k + 1 > s->cap)
            s->cap = s->cap ? 2 * s->cap : 1024;
        s->p = xrealloc(s->p, s->cap);
    }
    memcpy(s->p + s->n, x, k);
    s->n += k;
    s->p[s->n] = 0;
}

static void sb_puts(sbuf *s, const char *x) {
    sb_put(s, x, strlen(x));
}

/* A JSON string as serde_json writes it: quotes, backslashes and control bytes escaped, UTF-8
 * passed through. */
static void sb_json_str(sbuf *s, const char *x) {
    sb_put(s, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)x; *c; c++) {
        char tmp[8];
        switch (*c) {
        case '"':
            sb_put(s, "\\\"", 2);
            break;
        case '\\':
            sb_put(s, "\\\\", 2);
            break;
        case '\n':
            sb_put(s, "\\n", 2);
            break;
        case '\r':
            sb_put(s, "\\r", 2);
            break;
        case '\t':
            sb_put(s, "\\t", 2);
            break;
        case '\b':
            sb_put(s, "\\b", 2);
            break;
        case '\f':
            sb_put(s, "\\f", 2);
            break;
        default:
            if (*c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", *c);
                sb_puts(s, tmp);
            } else {
                sb_put(s, (const char *)c, 1);
            }
        }
    }
    sb_put(s, "\"", 1);
}

static st_status write_impl(const char *path, const st_write_tensor *tensors, int n,
                            const char *const *meta_keys, const char *const *meta_values, int nmeta,
                            bool checksum, char *err, size_t errlen) {
    uint64_t *nbytes = xcalloc((size_t)n + 1, sizeof(uint64_t));
    sbuf h = {0};
    st_status rc = ST_OK;
    for (int i = 0; i < n; i++) {
        const st_write_tensor *t = &tensors[i];
        if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0) {
            core_errorf(err, errlen, "%s: tensor %d has no usable name", path, i);
            rc = ST_EINVAL;
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0) {
                core_errorf(err, errlen, "%s: tensor '%s' given twice", path, t->name);
                rc = ST_EINVAL;
                goto out;
            }
        if (t->dtype < 0 || t->dtype >= ST_NDTYPES || t->ndim < 0 || t->ndim > ST_MAX_DIMS) {
            core_errorf(err, errlen, "%s: tensor '%s': bad dtype or rank", path, t->name);
            rc = ST_EINVAL;
            goto out;
        }
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 ||
                (t->shape[d] != 0 && numel > UINT64_MAX / 16 / (uint64_t)t->shape[d])) {
                core_errorf(err, errlen, "%s: tensor '%s': bad shape", path, t->name);
                rc = ST_EINVAL;
                goto out;
            }
            numel *= (uint64_t)t->shape[d];
        }
        nbytes[i] = numel * st_dtype_size(t->dtype);
        if (nbytes[i] && !t->data) {
            core_errorf(err, errlen, "%s: tensor '%s' has no data", path, t->name);
            rc = ST_EINVAL;
            goto out;
        }
    }
    sb_puts(&h, "{");
    bool first = true;
    if (nmeta > 0 || checksum) {
        sb_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (!meta_keys[i] || !meta_values[i]) {
                core_errorf(err, errlen, "%s: metadata entry %d is NULL", path, i);
                rc = ST_EINVAL;
                goto out;
            }
            if (checksum && strcmp(meta_keys[i], ST_META_CHECKSUM) == 0) {
                core_errorf(err, errlen, "%s: metadata key %s is the writer's own", path,
                            ST_META_CHECKSUM);
                rc = ST_EINVAL;
                goto out;
            }
            if (i) sb_puts(&h, ",");
            sb_json_str(&h, meta_keys[i]);
            sb_puts(&h, ":");
            sb_json_str(&h, meta_values[i]);
        }
        if (checksum) { /* the data section is the tensors' bytes in this order */
            core_hash hs;
            core_hash_init(&hs, 0);
            for (int i = 0; i < n; i++)
                if (nbytes[i]) core_hash_update(&hs, tensors[i].data, (size_t)nbytes[i]);
            char hex[17];
            core_hash_hex(core_hash_final(&hs), hex);
            if (nmeta > 0) sb_puts(&h, ",");
            sb_json_str(&h, ST_META_CHECKSUM);
            sb_puts(&h, ":");
            sb_json_str(&h, hex);
        }
        sb_puts(&h, "}");
        first = false;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const st_write_tensor *t = &tensors[i];
        char tmp[64];
        if (!first) sb_puts(&h, ",");
        first = false;
        sb_json_str(&h, t->name);
        sb_puts(&h, ":{\"dtype\":");
        sb_json_str(&h, st_dtype_name(t->dtype));
        sb_puts(&h, ",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(tmp, sizeof tmp, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            sb_puts(&h, tmp);
        }
        snprintf(tmp, sizeof tmp, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + nbytes[i]));
        sb_puts(&h, tmp);
        off += nbytes[i];
    }
    sb_puts(&h, "}");
    while ((8 + h.n) % 8 != 0)
        sb_puts(&h, " ");
    if (h.n > ST_MAX_HEADER) {
        core_errorf(err, errlen, "%s: header of %zu bytes is too large", path, h.n);
        rc = ST_EINVAL;
        goto out;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    core_atomic_file af;
    char e[512];
    if (core_atomic_open(&af, path, e, sizeof e) != 0) {
        core_errorf(err, errlen, "%s: %s", path, e);
        rc = ST_EIO;
        goto out;
    }
    bool ok = fwrite(len8, 1, 8, af.fp) == 8 && fwrite(h.p, 1, h.n, af.fp) == h.n;
    for (int i = 0; ok && i < n; i++)
        if (nbytes[i]) ok = fwrite(tensors[i].data, 1, nbytes[i], af.fp) == nbytes[i];
    if (!ok) {
        int e = errno;
        core_atomic_abort(&af);
        core_errorf(err, errlen, "%s: write failed: %s", path, strerror(e));
        rc = ST_EIO;
        goto out;
    }
    if (core_atomic_commit(&af, e, sizeof e) != 0) {
        core_atomic_abort(&af);
        core_errorf(err, errlen, "%s: %s", path, e);
        rc = ST_EIO;
        goto out;
    }
out:
    free(h.p);
    free(nbytes);
    return rc;
}

st_status st_write(const char *path, const st_write_tensor *tensors, int n,
                   const char *const *meta_keys, const char *const *meta_values, int nmeta,
                   char *err, size_t errlen) {
    return write_impl(path, tensors, n, meta_keys, meta_values, nmeta, false, err, errlen);
}

st_status st_write_checked(const char *path, const st_write_tensor *tensors, int n,
                           const char *const *meta_keys, const char *const *meta_values, int nmeta,
                           char *err, size_t errlen) {
    return write_impl(path, tensors, n, meta_keys, meta_values, nmeta, true, err, errlen);
}
