// The configuration tree: values, YAML reading (libyaml document API) and writing (libyaml
// emitter), dotted lookups, close-match suggestions and the canonical form used for hashing.
#include "config/config.h"
#include "config/cfg_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/check.h"
#include "core/hash.h"

// Bounds that keep hostile YAML (deep nesting, alias bombs) from exhausting the stack or memory.
#define CFG_MAX_DEPTH 64
#define CFG_MAX_NODES 200000

void cfg_set_error(cfg_error *err, int code, const char *fmt, ...) {
    if (!err) return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

// ---- values ------------------------------------------------------------------------------

cfg_node *cfg_new(cfg_type type) {
    cfg_node *n = xcalloc(1, sizeof *n);
    n->type = type;
    return n;
}

cfg_node *cfg_new_str(const char *s) {
    cfg_node *n = cfg_new(CFG_STR);
    n->s = xstrdup(s);
    return n;
}

cfg_node *cfg_clone(const cfg_node *src) {
    if (!src) return NULL;
    cfg_node *n = cfg_new(src->type);
    n->b = src->b;
    n->i = src->i;
    n->f = src->f;
    n->decl = src->decl;
    if (src->s) n->s = xstrdup(src->s);
    if (src->origin) n->origin = xstrdup(src->origin);
    if (src->n) {
        n->cap = src->n;
        n->items = xcalloc((size_t)n->cap, sizeof *n->items);
        if (src->keys) n->keys = xcalloc((size_t)n->cap, sizeof *n->keys);
        for (int k = 0; k < src->n; k++) {
            n->items[k] = cfg_clone(src->items[k]);
            if (src->keys) n->keys[k] = xstrdup(src->keys[k]);
        }
        n->n = src->n;
    }
    return n;
}

void cfg_free(cfg_node *n) {
    if (!n) return;
    for (int k = 0; k < n->n; k++) {
        cfg_free(n->items[k]);
        if (n->keys) free(n->keys[k]);
    }
    free(n->items);
    free(n->keys);
    free(n->s);
    free(n->origin);
    free(n);
}

const char *cfg_type_name(cfg_type t) {
    switch (t) {
    case CFG_NULL:
        return "null";
    case CFG_BOOL:
        return "boolean";
    case CFG_INT:
        return "integer";
    case CFG_FLOAT:
        return "number";
    case CFG_STR:
        return "string";
    case CFG_LIST:
        return "list";
    case CFG_MAP:
        return "mapping";
    }
    return "?";
}

static void grow(cfg_node *n, bool keyed) {
    if (n->n < n->cap) return;
    n->cap = n->cap ? 2 * n->cap : 8;
    n->items = xrealloc(n->items, (size_t)n->cap * sizeof *n->items);
    if (keyed) n->keys = xrealloc(n->keys, (size_t)n->cap * sizeof *n->keys);
}

cfg_node *cfg_map_get(const cfg_node *map, const char *key) {
    if (!map || map->type != CFG_MAP) return NULL;
    for (int k = 0; k < map->n; k++)
        if (strcmp(map->keys[k], key) == 0) return map->items[k];
    return NULL;
}

void cfg_map_set(cfg_node *map, const char *key, cfg_node *val) {
    for (int k = 0; k < map->n; k++) {
        if (strcmp(map->keys[k], key) == 0) {
            cfg_free(map->items[k]);
            map->items[k] = val;
            return;
        }
    }
    grow(map, true);
    map->keys[map->n] = xstrdup(key);
    map->items[map->n++] = val;
}

bool cfg_map_del(cfg_node *map, const char *key) {
    for (int k = 0; k < map->n; k++) {
        if (strcmp(map->keys[k], key) == 0) {
            cfg_free(map->items[k]);
            free(map->keys[k]);
            memmove(map->items + k, map->items + k + 1, (size_t)(map->n - k - 1) * sizeof(void *));
            memmove(map->keys + k, map->keys + k + 1, (size_t)(map->n - k - 1) * sizeof(void *));
            map->n--;
            return true;
        }
    }
    return false;
}

void cfg_list_push(cfg_node *list, cfg_node *val) {
    grow(list, false);
    list->items[list->n++] = val;
}

// ---- scalars -----------------------------------------------------------------------------

static bool one_of(const char *s, const char *const *words) {
    for (; *words; words++)
        if (strcmp(s, *words) == 0) return true;
    return false;
}

// Digits with optional '_' separators (YAML 1.1); at least one digit; returns chars used.
static size_t digits(const char *s, bool allow_underscore) {
    size_t k = 0;
    if (!isdigit((unsigned char)s[0])) return 0;
    while (isdigit((unsigned char)s[k]) || (allow_underscore && s[k] == '_'))
        k++;
    return k;
}

// Copies s without '_' into buf (numbers only, so bounded by the caller's check).
static void strip_underscores(const char *s, char *buf, size_t len) {
    size_t o = 0;
    for (; *s && o + 1 < len; s++)
        if (*s != '_') buf[o++] = *s;
    buf[o] = 0;
}

// YAML 1.1 integers, as PyYAML's SafeLoader reads them: 42, 900_000, 0x1f, 0b101 and 017
// (a leading 0 means octal; 09 is therefore not a number but a string).
static bool parse_int_text(const char *s, int64_t *out) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (strlen(s) > 64 || !isdigit((unsigned char)p[0])) return false;
    int base = 10;
    const char *d = p; // the digits (with '_'), after any 0x / 0b prefix
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'b'))
        base = p[1] == 'x' ? 16 : 2, d = p + 2;
    else if (p[0] == '0' && p[1])
        base = 8;
    size_t k = 0, nd = 0;
    for (; d[k]; k++) {
        int c = (unsigned char)d[k];
        if (c == '_') continue;
        bool ok = base == 16  ? isxdigit(c)
                  : base == 2 ? (c == '0' || c == '1')
                  : base == 8 ? (c >= '0' && c <= '7')
                              : isdigit(c);
        if (!ok) return false;
        nd++;
    }
    if (nd == 0) return false;
    char buf[72];
    buf[0] = s[0] == '-' ? '-' : '+';
    strip_underscores(d, buf + 1, sizeof buf - 1);
    errno = 0;
    long long v = strtoll(buf, NULL, base);
    if (errno) return false;
    *out = v;
    return true;
}

// The float forms the reference's YAML loader accepts: 1.5, 1., .5, 1e-3, 8e6, 1.0e+5,
// .inf, -.inf, .nan (underscores allowed in the mantissa).
static bool parse_float_text(const char *s, double *out) {
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    if (one_of(s, infs)) return (*out = INFINITY), true;
    if (one_of(s, ninfs)) return (*out = -INFINITY), true;
    if (one_of(s, nans)) return (*out = NAN), true;
    if (strlen(s) > 64) return false;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    size_t ip = digits(p, true);
    p += ip;
    bool dot = false, frac = false;
    if (*p == '.') {
        dot = true;
        p++;
        size_t fp = 0;
        while (isdigit((unsigned char)p[fp]) || p[fp] == '_')
            fp++;
        frac = fp > 0;
        p += fp;
    }
    if (ip == 0 && !frac) return false;
    bool expo = false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        size_t ep = digits(p, false);
        if (ep == 0) return false;
        p += ep;
        expo = true;
    }
    if (*p != 0 || (!dot && !expo)) return false;
    char buf[72];
    strip_underscores(s, buf, sizeof buf);
    *out = strtod(buf, NULL);
    return true;
}

cfg_node *cfg_scalar_from_text(const char *t) {
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes",
                                        "YES",  "on",   "On",   "ON",  NULL};
    static const char *const falses[] = {"false", "False", "FALSE", "no",  "No",
                                         "NO",    "off",   "Off",   "OFF", NULL};
    if (one_of(t, nulls)) return cfg_new(CFG_NULL);
    cfg_node *n;
    if (one_of(t, trues) || one_of(t, falses)) {
        n = cfg_new(CFG_BOOL);
        n->b = one_of(t, trues);
        return n;
    }
    int64_t iv;
    if (parse_int_text(t, &iv)) {
        n = cfg_new(CFG_INT);
        n->i = iv;
        return n;
    }
    double dv;
    if (parse_float_text(t, &dv)) {
        n = cfg_new(CFG_FLOAT);
        n->f = dv;
        return n;
    }
    return cfg_new_str(t);
}

// ---- YAML in -----------------------------------------------------------------------------

const char *cfg_key_problem(const char *key, size_t len) {
    if (len == 0) return "empty key";
    if (memchr(key, 0, len)) return "NUL byte in a key";
    return NULL;
}

typedef struct {
    yaml_document_t *doc;
    const char *name;
    cfg_error *err;
    int made;
} yaml_conv;

static char *origin_at(const char *name, yaml_mark_t m) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s:%zu", name, m.line + 1);
    return xstrdup(buf);
}

static cfg_node *convert(yaml_conv *c, yaml_node_t *y, int depth) {
    if (depth > CFG_MAX_DEPTH) {
        cfg_set_error(c->err, 2, "%s:%zu:%zu: nesting deeper than %d levels", c->name,
                      y->start_mark.line + 1, y->start_mark.column + 1, CFG_MAX_DEPTH);
        return NULL;
    }
    if (++c->made > CFG_MAX_NODES) {
        cfg_set_error(c->err, 2, "%s: more than %d values (an alias loop?)", c->name,
                      CFG_MAX_NODES);
        return NULL;
    }
    cfg_node *n = NULL;
    switch (y->type) {
    case YAML_SCALAR_NODE: {
        const char *text = (const char *)y->data.scalar.value;
        if (strlen(text) != y->data.scalar.length) {
            cfg_set_error(c->err, 2, "%s:%zu:%zu: NUL byte inside a value", c->name,
                          y->start_mark.line + 1, y->start_mark.column + 1);
            return NULL;
        }
        const char *tag = (const char *)y->tag;
        bool plain = y->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (tag && strcmp(tag, YAML_STR_TAG) == 0 && !plain)
            n = cfg_new_str(text); // quoted: always a string
        else if (tag && strcmp(tag, YAML_STR_TAG) != 0 && strcmp(tag, "?") != 0 &&
                 strncmp(tag, "tag:yaml.org,2002:", 18) != 0) {
            cfg_set_error(c->err, 2, "%s:%zu:%zu: unsupported tag %s", c->name,
                          y->start_mark.line + 1, y->start_mark.column + 1, tag);
            return NULL;
        } else {
            n = cfg_scalar_from_text(text);
        }
        break;
    }
    case YAML_SEQUENCE_NODE:
        n = cfg_new(CFG_LIST);
        for (yaml_node_item_t *it = y->data.sequence.items.start; it < y->data.sequence.items.top;
             it++) {
            cfg_node *child = convert(c, yaml_document_get_node(c->doc, *it), depth + 1);
            if (!child) return cfg_free(n), NULL;
            cfg_list_push(n, child);
        }
        break;
    case YAML_MAPPING_NODE:
        n = cfg_new(CFG_MAP);
        for (yaml_node_pair_t *p = y->data.mapping.pairs.start; p < y->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
            if (k->type != YAML_SCALAR_NODE) {
                cfg_set_error(c->err, 2, "%s:%zu:%zu: keys must be plain words", c->name,
                              k->start_mark.line + 1, k->start_mark.column + 1);
                return cfg_free(n), NULL;
            }
            const char *key = (const char *)k->data.scalar.value;
            const char *bad = cfg_key_problem(key, k->data.scalar.length);
            if (bad) {
                cfg_set_error(c->err, 2, "%s:%zu:%zu: %s", c->name, k->start_mark.line + 1,
                              k->start_mark.column + 1, bad);
                return cfg_free(n), NULL;
            }
            if (cfg_map_get(n, key)) {
                cfg_set_error(c->err, 2, "%s:%zu:%zu: key '%s' appears twice", c->name,
                              k->start_mark.line + 1, k->start_mark.column + 1, key);
                return cfg_free(n), NULL;
            }
            yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
            cfg_node *child = convert(c, v, depth + 1);
            if (!child) return cfg_free(n), NULL;
            child->origin = origin_at(c->name, k->start_mark);
            cfg_map_set(n, key, child);
        }
        break;
    default:
        cfg_set_error(c->err, 2, "%s: empty YAML node", c->name);
        return NULL;
    }
    return n;
}

static void parser_error(const yaml_parser_t *p, const char *buf, size_t len, const char *name,
                         cfg_error *err) {
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        // The reader (bad bytes, bad UTF-8) reports a byte offset, not a line and column.
        m.line = m.column = 0;
        for (size_t k = 0; k < p->problem_offset && k < len; k++) {
            if (buf[k] == '\n')
                m.line++, m.column = 0;
            else
                m.column++;
        }
    }
    cfg_set_error(err, 2, "%s:%zu:%zu: malformed YAML: %s%s%s", name, m.line + 1, m.column + 1,
                  p->problem ? p->problem : "syntax error", p->context ? " " : "",
                  p->context ? p->context : "");
}

// A first pass over the events, before libyaml's loader builds anything: refuses deep nesting
// (libyaml's scanner slows down with the square of the depth: 200000 '[' take a minute) and a
// second document in the stream (the reference's loader refuses it as well).
static bool yaml_prescan(const char *buf, size_t len, const char *name, cfg_error *err) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        cfg_set_error(err, 1, "%s: cannot start the YAML parser", name);
        return false;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int depth = 0, docs = 0;
    bool ok = true;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            parser_error(&p, buf, len, name, err);
            ok = false;
            break;
        }
        yaml_event_type_t t = ev.type;
        yaml_mark_t m = ev.start_mark;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT) break;
        if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            cfg_set_error(err, 2, "%s:%zu:%zu: a second YAML document; a config file holds one",
                          name, m.line + 1, m.column + 1);
            ok = false;
            break;
        }
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > CFG_MAX_DEPTH) {
                cfg_set_error(err, 2, "%s:%zu:%zu: nesting deeper than %d levels", name, m.line + 1,
                              m.column + 1, CFG_MAX_DEPTH);
                ok = false;
                break;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        }
    }
    yaml_parser_delete(&p);
    return ok;
}

static cfg_node *parse_yaml(const char *buf, size_t len, const char *name, bool *empty,
                            cfg_error *err) {
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_prescan(buf, len, name, err)) return NULL;
    if (!yaml_parser_initialize(&parser)) {
        cfg_set_error(err, 1, "%s: cannot start the YAML parser", name);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        parser_error(&parser, buf, len, name, err);
        yaml_parser_delete(&parser);
        return NULL;
    }
    cfg_node *out;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (empty) *empty = !root;
    if (!root) {
        out = cfg_new(CFG_MAP); // an empty file is an empty mapping
    } else {
        yaml_conv c = {.doc = &doc, .name = name, .err = err};
        out = convert(&c, root, 0);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return out;
}

cfg_node *cfg_parse_yaml(const char *buf, size_t len, const char *name, cfg_error *err) {
    return parse_yaml(buf, len, name, NULL, err);
}

cfg_node *cfg_load_yaml_file_ex(const char *path, bool *empty, cfg_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cfg_set_error(err, 2, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 14, len = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) buf = xrealloc(buf, cap *= 2);
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        cfg_set_error(err, 1, "%s: read error", path);
        return NULL;
    }
    cfg_node *n = parse_yaml(buf, len, path, empty, err);
    free(buf);
    return n;
}

cfg_node *cfg_load_yaml_file(const char *path, cfg_error *err) {
    return cfg_load_yaml_file_ex(path, NULL, err);
}

// ---- YAML out ----------------------------------------------------------------------------

void cfg_format_float(double v, char *out, size_t outlen) {
    if (isnan(v)) {
        snprintf(out, outlen, ".nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, outlen, v > 0 ? ".inf" : "-.inf");
        return;
    }
    // Shortest digits that round-trip, then Python's layout: fixed notation for exponents
    // in [-4, 16), scientific otherwise; always a '.' so it reads back as a float.
    char sci[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec - 1, v);
        if (strtod(sci, NULL) == v) break;
    }
    char *e = strchr(sci, 'e');
    int exp10 = atoi(e + 1);
    *e = 0;
    char mant[24] = {0};
    int m = 0;
    bool neg = sci[0] == '-';
    for (const char *p = sci + neg; *p; p++)
        if (isdigit((unsigned char)*p)) mant[m++] = *p;
    while (m > 1 && mant[m - 1] == '0')
        mant[--m] = 0;
    char body[64];
    if (exp10 >= -4 && exp10 < 16) {
        int o = 0;
        if (exp10 < 0) {
            o += snprintf(body + o, sizeof body - o, "0.");
            for (int k = 0; k < -exp10 - 1; k++)
                body[o++] = '0';
            o += snprintf(body + o, sizeof body - o, "%s", mant);
        } else {
            for (int k = 0; k <= exp10; k++)
                body[o++] = k < m ? mant[k] : '0';
            body[o++] = '.';
            if (m > exp10 + 1)
                o += snprintf(body + o, sizeof body - o, "%s", mant + exp10 + 1);
            else
                body[o++] = '0';
            body[o] = 0;
        }
    } else {
        snprintf(body, sizeof body, "%c.%se%c%02d", mant[0], m > 1 ? mant + 1 : "0",
                 exp10 < 0 ? '-' : '+', abs(exp10));
    }
    snprintf(out, outlen, "%s%s", neg ? "-" : "", body);
}

static int emit_scalar(yaml_emitter_t *em, const char *text, yaml_scalar_style_t style) {
    yaml_event_t ev;
    // This fails on text that is not UTF-8 (a command-line value, an environment variable) and
    // then leaves ev untouched: emitting it anyway would hand libyaml a stale event.
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1, 1,
                                      style))
        return 0;
    return yaml_emitter_emit(em, &ev);
}

static int emit_node(yaml_emitter_t *em, const cfg_node *n) {
    yaml_event_t ev;
    char buf[64];
    switch (n->type) {
    case CFG_NULL:
        return emit_scalar(em, "null", YAML_PLAIN_SCALAR_STYLE);
    case CFG_BOOL:
        return emit_scalar(em, n->b ? "true" : "false", YAML_PLAIN_SCALAR_STYLE);
    case CFG_INT:
        snprintf(buf, sizeof buf, "%lld", (long long)n->i);
        return emit_scalar(em, buf, YAML_PLAIN_SCALAR_STYLE);
    case CFG_FLOAT:
        cfg_format_float(n->f, buf, sizeof buf);
        return emit_scalar(em, buf, YAML_PLAIN_SCALAR_STYLE);
    case CFG_STR: {
        // Quote strings that would read back as another type ("1e-3", "true", "").
        cfg_node *probe = cfg_scalar_from_text(n->s);
        bool quote = probe->type != CFG_STR;
        cfg_free(probe);
        return emit_scalar(em, n->s,
                           quote ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
    }
    case CFG_LIST:
        if (!yaml_sequence_start_event_initialize(
                &ev, NULL, NULL, 1, n->n ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return 0;
        for (int k = 0; k < n->n; k++)
            if (!emit_node(em, n->items[k])) return 0;
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev);
    case CFG_MAP:
        if (!yaml_mapping_start_event_initialize(
                &ev, NULL, NULL, 1, n->n ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return 0;
        for (int k = 0; k < n->n; k++) {
            if (!emit_scalar(em, n->keys[k], YAML_ANY_SCALAR_STYLE)) return 0;
            if (!emit_node(em, n->items[k])) return 0;
        }
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev);
    }
    return 0;
}

static int write_handler(void *data, unsigned char *buf, size_t size) {
    return fwrite(buf, 1, size, (FILE *)data) == size;
}

int cfg_write_yaml(const cfg_node *root, FILE *f) {
    yaml_emitter_t em;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&em)) return -1;
    yaml_emitter_set_output(&em, write_handler, f);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, 1 << 20);
    int ok = 1;
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    ok = ok && yaml_emitter_emit(&em, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    ok = ok && yaml_emitter_emit(&em, &ev);
    ok = ok && emit_node(&em, root);
    yaml_document_end_event_initialize(&ev, 1);
    ok = ok && yaml_emitter_emit(&em, &ev);
    yaml_stream_end_event_initialize(&ev);
    ok = ok && yaml_emitter_emit(&em, &ev);
    ok = ok && yaml_emitter_flush(&em);
    yaml_emitter_delete(&em);
    return ok ? 0 : -1;
}

char *cfg_to_yaml(const cfg_node *root) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CORE_CHECK(f != NULL, "open_memstream failed");
    int rc = cfg_write_yaml(root, f);
    fclose(f);
    if (rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

// ---- lookup ------------------------------------------------------------------------------

cfg_node *cfg_get(const cfg_node *root, const char *path) {
    const cfg_node *cur = root;
    const char *p = path;
    char key[256];
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t k = dot ? (size_t)(dot - p) : strlen(p);
        if (k == 0 || k >= sizeof key) return NULL;
        memcpy(key, p, k);
        key[k] = 0;
        cur = cfg_map_get(cur, key);
        p += k + (dot ? 1 : 0);
        if (dot && !*p) return NULL;
    }
    return (cfg_node *)cur;
}

// "a string", "an integer": a type's name with its article, for messages.
static const char *a_type(cfg_type t) {
    return t == CFG_INT     ? "an integer"
           : t == CFG_NULL  ? "null"
           : t == CFG_BOOL  ? "a boolean"
           : t == CFG_FLOAT ? "a number"
           : t == CFG_STR   ? "a string"
           : t == CFG_LIST  ? "a list"
                            : "a mapping";
}

static cfg_node *get_typed(const cfg_node *root, const char *path, cfg_error *err) {
    cfg_node *n = cfg_get(root, path);
    if (!n) cfg_set_error(err, 2, "missing config key %s", path);
    return n;
}

int cfg_get_num(const cfg_node *root, const char *path, double *out, cfg_error *err) {
    cfg_node *n = get_typed(root, path, err);
    if (!n) return -1;
    if (n->type == CFG_INT) return (*out = (double)n->i), 0;
    if (n->type == CFG_FLOAT) return (*out = n->f), 0;
    cfg_set_error(err, 2, "config key %s must be a number, not %s", path, a_type(n->type));
    return -1;
}

int cfg_get_int(const cfg_node *root, const char *path, int64_t *out, cfg_error *err) {
    cfg_node *n = get_typed(root, path, err);
    if (!n) return -1;
    if (n->type == CFG_INT) return (*out = n->i), 0;
    // 8e6 and friends are floats in YAML but whole numbers in meaning.
    if (n->type == CFG_FLOAT && n->f == floor(n->f) && fabs(n->f) < 9.2e18)
        return (*out = (int64_t)n->f), 0;
    cfg_set_error(err, 2, "config key %s must be a whole number, not %s", path,
                  n->type == CFG_FLOAT ? "a fraction" : a_type(n->type));
    return -1;
}

int cfg_get_bool(const cfg_node *root, const char *path, bool *out, cfg_error *err) {
    cfg_node *n = get_typed(root, path, err);
    if (!n) return -1;
    if (n->type == CFG_BOOL) return (*out = n->b), 0;
    cfg_set_error(err, 2, "config key %s must be true or false, not %s", path, a_type(n->type));
    return -1;
}

int cfg_get_str(const cfg_node *root, const char *path, const char **out, cfg_error *err) {
    cfg_node *n = get_typed(root, path, err);
    if (!n) return -1;
    if (n->type == CFG_STR) return (*out = n->s), 0;
    cfg_set_error(err, 2, "config key %s must be a string, not %s", path, a_type(n->type));
    return -1;
}

double cfg_num_or(const cfg_node *root, const char *path, double def) {
    const cfg_node *n = cfg_get(root, path);
    if (n && n->type == CFG_INT) return (double)n->i;
    if (n && n->type == CFG_FLOAT) return n->f;
    return def;
}

int64_t cfg_int_or(const cfg_node *root, const char *path, int64_t def) {
    const cfg_node *n = cfg_get(root, path);
    if (n && n->type == CFG_INT) return n->i;
    if (!n || n->type != CFG_FLOAT || isnan(n->f)) return def;
    // 2^63 is exact as a double; anything at or past it would overflow the conversion.
    if (n->f >= 9223372036854775808.0) return INT64_MAX;
    if (n->f <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)n->f;
}

bool cfg_bool_or(const cfg_node *root, const char *path, bool def) {
    const cfg_node *n = cfg_get(root, path);
    return n && n->type == CFG_BOOL ? n->b : def;
}

const char *cfg_str_or(const cfg_node *root, const char *path, const char *def) {
    const cfg_node *n = cfg_get(root, path);
    return n && n->type == CFG_STR ? n->s : def;
}

static void collect_paths(const cfg_node *n, const char *prefix, char ***out, int *cnt, int *cap) {
    if (!n || n->type != CFG_MAP) return;
    for (int k = 0; k < n->n; k++) {
        size_t len = strlen(prefix) + strlen(n->keys[k]) + 2;
        char *p = xmalloc(len);
        snprintf(p, len, "%s%s%s", prefix, *prefix ? "." : "", n->keys[k]);
        if (*cnt == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            *out = xrealloc(*out, (size_t)*cap * sizeof **out);
        }
        (*out)[(*cnt)++] = p;
        collect_paths(n->items[k], p, out, cnt, cap);
    }
}

char **cfg_all_paths(const cfg_node *root, int *n) {
    char **out = NULL;
    int cap = 0;
    *n = 0;
    collect_paths(root, "", &out, n, &cap);
    return out;
}

static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 512 || lb > 512) return (size_t)-1;
    size_t *row = xmalloc((lb + 1) * sizeof *row);
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

const char *cfg_closest(const char *word, char *const *cands, int n) {
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    for (int k = 0; k < n; k++) {
        size_t d = edit_distance(word, cands[k]);
        if (d < bestd) bestd = d, best = cands[k];
    }
    // Close enough: a few typos, scaled with the length of what was typed.
    size_t limit = strlen(word) / 3;
    if (limit < 2) limit = 2;
    return bestd <= limit ? best : NULL;
}

// ---- canonical form ----------------------------------------------------------------------

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static int cmp_key_index(const void *a, const void *b, void *keys) {
    char **k = keys;
    return strcmp(k[*(const int *)a], k[*(const int *)b]);
}

static void canonical(FILE *f, const cfg_node *n) {
    char buf[64];
    switch (n->type) {
    case CFG_NULL:
        fputs("null", f);
        break;
    case CFG_BOOL:
        fputs(n->b ? "true" : "false", f);
        break;
    case CFG_INT:
        fprintf(f, "%lld", (long long)n->i);
        break;
    case CFG_FLOAT:
        cfg_format_float(n->f, buf, sizeof buf);
        fputs(buf, f);
        break;
    case CFG_STR:
        json_string(f, n->s);
        break;
    case CFG_LIST:
        fputc('[', f);
        for (int k = 0; k < n->n; k++) {
            if (k) fputc(',', f);
            canonical(f, n->items[k]);
        }
        fputc(']', f);
        break;
    case CFG_MAP: {
        int *idx = xmalloc((size_t)(n->n ? n->n : 1) * sizeof *idx);
        for (int k = 0; k < n->n; k++)
            idx[k] = k;
        qsort_r(idx, (size_t)n->n, sizeof *idx, cmp_key_index, n->keys);
        fputc('{', f);
        for (int k = 0; k < n->n; k++) {
            if (k) fputc(',', f);
            json_string(f, n->keys[idx[k]]);
            fputc(':', f);
            canonical(f, n->items[idx[k]]);
        }
        fputc('}', f);
        free(idx);
        break;
    }
    }
}

char *cfg_canonical_json(const cfg_node *n) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CORE_CHECK(f != NULL, "open_memstream failed");
    canonical(f, n);
    fclose(f);
    return buf;
}

void cfg_hash_hex(const cfg_node *n, char out[17]) {
    char *text = cfg_canonical_json(n);
    core_hash_hex(core_hash64(text, strlen(text), 0), out);
    free(text);
}
