// Composition of a run's configuration from the config folders: defaults lists, group
// choices, command-line overrides and ${...} interpolation, with Hydra 1.1's semantics for
// the subset the reference's configs use.
#include "config/config.h"
#include "config/cfg_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/check.h"
#include "core/fileio.h"

#define MAX_COMPOSE_DEPTH 16
#define MAX_INTERP_DEPTH 32

// ---- search path -------------------------------------------------------------------------

void cfg_search_init(cfg_search *s) {
    memset(s, 0, sizeof *s);
}

void cfg_search_free(cfg_search *s) {
    for (int k = 0; k < s->ndirs; k++)
        free(s->dirs[k]);
    s->ndirs = 0;
}

int cfg_search_add(cfg_search *s, const char *dir) {
    if (s->ndirs == CFG_MAX_SEARCH || !core_is_dir(dir)) return -1;
    for (int k = 0; k < s->ndirs; k++)
        if (strcmp(s->dirs[k], dir) == 0) return 0;
    s->dirs[s->ndirs++] = xstrdup(dir);
    return 0;
}

int cfg_search_default(cfg_search *s) {
    const char *env = getenv("CRAM_CONFIG_PATH");
    if (env && *env) {
        char *copy = xstrdup(env), *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
            cfg_search_add(s, d);
        free(copy);
    }
    // Next to the program: <prefix>/bin/cram finds <prefix>/share/cram/configs, and
    // <repo>/build/cram finds <repo>/configs.
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        static const char *const rel[] = {"/../configs", "/../share/cram/configs", "/configs",
                                          "/../../configs"};
        for (size_t k = 0; k < sizeof rel / sizeof *rel; k++) {
            char dir[PATH_MAX + 32];
            snprintf(dir, sizeof dir, "%s%s", exe, rel[k]);
            char real[PATH_MAX];
            char probe[PATH_MAX + 48];
            snprintf(probe, sizeof probe, "%s/pretrain.yaml", dir);
            if (core_is_file(probe) && realpath(dir, real)) cfg_search_add(s, real);
        }
    }
#ifdef CRAM_SOURCE_CONFIGS
    // nothing found: the configs of the source tree this program was built from, if it is there
    if (s->ndirs == 0 && core_is_file(CRAM_SOURCE_CONFIGS "/pretrain.yaml"))
        cfg_search_add(s, CRAM_SOURCE_CONFIGS);
#endif
    return s->ndirs;
}

static bool find_config(const cfg_search *s, const char *group, const char *option, char *out,
                        size_t outlen) {
    for (int k = 0; k < s->ndirs; k++) {
        snprintf(out, outlen, "%s/%s%s%s.yaml", s->dirs[k], group, *group ? "/" : "", option);
        if (core_is_file(out)) return true;
    }
    return false;
}

static bool is_group(const cfg_search *s, const char *group) {
    char p[PATH_MAX];
    for (int k = 0; k < s->ndirs; k++) {
        snprintf(p, sizeof p, "%s/%s", s->dirs[k], group);
        if (core_is_dir(p)) return true;
    }
    return false;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_dir(const char *dir, const char *prefix, int depth, char ***out, int *n,
                     int *cap) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_') continue;
        char full[PATH_MAX], name[PATH_MAX];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        snprintf(name, sizeof name, "%s%s", prefix, e->d_name);
        if (core_is_dir(full)) {
            if (depth < 2) {
                char sub[PATH_MAX + 2];
                snprintf(sub, sizeof sub, "%s/", name);
                list_dir(full, sub, depth + 1, out, n, cap);
            }
            continue;
        }
        size_t len = strlen(name);
        if (len < 6 || strcmp(name + len - 5, ".yaml") != 0) continue;
        name[len - 5] = 0;
        bool dup = false;
        for (int k = 0; k < *n; k++)
            dup = dup || strcmp((*out)[k], name) == 0;
        if (dup) continue;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 16;
            *out = xrealloc(*out, (size_t)*cap * sizeof **out);
        }
        (*out)[(*n)++] = xstrdup(name);
    }
    closedir(d);
}

// The options of a group across the search path, sorted; sub-folders (v1/...) included.
static char **group_options(const cfg_search *s, const char *group, int *n) {
    char **out = NULL;
    int cap = 0;
    *n = 0;
    for (int k = 0; k < s->ndirs; k++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", s->dirs[k], group);
        list_dir(dir, "", 0, &out, n, &cap);
    }
    if (*n) qsort(out, (size_t)*n, sizeof *out, cmp_str);
    return out;
}

static void free_strs(char **v, int n) {
    for (int k = 0; k < n; k++)
        free(v[k]);
    free(v);
}

static void unknown_option_error(const cfg_search *s, const char *group, const char *option,
                                 cfg_error *err) {
    int n;
    char **opts = group_options(s, group, &n);
    char list[1024] = "";
    size_t o = 0;
    for (int k = 0; k < n && o < sizeof list - 64; k++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", k ? ", " : "", opts[k]);
    const char *near = cfg_closest(option, opts, n);
    if (n == 0)
        cfg_set_error(err, 2, "unknown config group '%s' (no folder %s/ in the config path)", group,
                      group);
    else if (near)
        cfg_set_error(err, 2, "unknown option '%s' for %s; did you mean %s=%s?\navailable: %s",
                      option, group, group, near, list);
    else
        cfg_set_error(err, 2, "unknown option '%s' for %s; available: %s", option, group, list);
    free_strs(opts, n);
}

// ---- command-line overrides --------------------------------------------------------------

typedef enum { OV_SET, OV_ADD, OV_FORCE, OV_DELETE } ov_kind;

typedef struct {
    ov_kind kind;
    bool group; // a group choice (arch=crammed-bert, eval/tasks=rte)
    bool used;
    char *key;
    char *text; // the value as typed (NULL for ~key)
    cfg_node *val;
} override;

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    return s;
}

// Splits s at top-level commas (outside brackets and quotes). Returns -1 on unbalanced input.
static int split_top(char *s, char **parts, int max) {
    int n = 0, depth = 0;
    char quote = 0;
    char *start = s;
    for (char *p = s;; p++) {
        if (quote) {
            if (*p == 0) return -1;
            if (*p == quote) quote = 0;
            continue;
        }
        if (*p == '\'' || *p == '"')
            quote = *p;
        else if (*p == '[' || *p == '{')
            depth++;
        else if (*p == ']' || *p == '}') {
            if (--depth < 0) return -1;
        } else if ((*p == ',' && depth == 0) || *p == 0) {
            if (n == max) return -1;
            bool end = *p == 0;
            *p = 0;
            parts[n++] = start;
            start = p + 1;
            if (end) break;
        }
    }
    return depth == 0 ? n : -1;
}

// The first ':' of a "key: value" item outside quotes and brackets, or NULL.
static char *key_colon(char *item) {
    char quote = 0;
    int depth = 0;
    for (char *p = item; *p; p++) {
        if (quote) {
            if (*p == quote) quote = 0;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '[' || *p == '{') {
            depth++;
        } else if (*p == ']' || *p == '}') {
            depth--;
        } else if (*p == ':' && depth == 0) {
            return p;
        }
    }
    return NULL;
}

// A key as written in {key: value}: trimmed, and without its quotes when quoted ('a b': 1), as
// YAML reads it.
static char *map_key(char *k) {
    k = trim(k);
    size_t n = strlen(k);
    if (n >= 2 && (k[0] == '\'' || k[0] == '"') && k[n - 1] == k[0]) {
        k[n - 1] = 0;
        k++;
    }
    return k;
}

// A value as typed on the command line: null, a scalar, a 'quoted string', [a, b] or {k: v}.
// The keys of {k: v} follow the rules of the YAML reader (cfg_key_problem, no key twice), so
// that what the command line builds is what a written config reads back as.
static cfg_node *parse_value(const char *text, int depth, cfg_error *err) {
    if (depth > 8) {
        cfg_set_error(err, 2, "value nested too deeply: %s", text);
        return NULL;
    }
    char *copy = xstrdup(text);
    char *t = trim(copy);
    size_t n = strlen(t);
    cfg_node *out = NULL;
    if (n >= 2 && (t[0] == '\'' || t[0] == '"') && t[n - 1] == t[0]) {
        t[n - 1] = 0;
        out = cfg_new_str(t + 1);
    } else if (n >= 2 && ((t[0] == '[' && t[n - 1] == ']') || (t[0] == '{' && t[n - 1] == '}'))) {
        bool map = t[0] == '{';
        t[n - 1] = 0;
        char *inner = trim(t + 1);
        out = cfg_new(map ? CFG_MAP : CFG_LIST);
        if (*inner) {
            char *parts[256];
            int np = split_top(inner, parts, 256);
            if (np < 0) {
                cfg_set_error(err, 2, "cannot read the value '%s' (unbalanced brackets or quotes)",
                              text);
                cfg_free(out);
                free(copy);
                return NULL;
            }
            for (int k = 0; k < np; k++) {
                char *item = parts[k];
                char *colon = map ? key_colon(item) : NULL;
                if (map && !colon) {
                    cfg_set_error(err, 2, "cannot read '%s' in '%s': expected key: value", item,
                                  text);
                    cfg_free(out);
                    free(copy);
                    return NULL;
                }
                const char *key = NULL, *bad = NULL;
                if (colon) {
                    *colon = 0;
                    key = map_key(item);
                    bad = cfg_key_problem(key, strlen(key));
                    if (!bad && cfg_map_get(out, key)) bad = "twice";
                }
                if (bad) {
                    if (strcmp(bad, "twice") == 0)
                        cfg_set_error(err, 2, "cannot read the value '%s': key '%s' appears twice",
                                      text, key);
                    else
                        cfg_set_error(err, 2, "cannot read the value '%s': %s", text, bad);
                    cfg_free(out);
                    free(copy);
                    return NULL;
                }
                cfg_node *v = parse_value(colon ? colon + 1 : item, depth + 1, err);
                if (!v) {
                    cfg_free(out);
                    free(copy);
                    return NULL;
                }
                if (map)
                    cfg_map_set(out, key, v);
                else
                    cfg_list_push(out, v);
            }
        }
    } else if (strchr("[]{}", t[0]) && n) {
        cfg_set_error(err, 2, "cannot read the value '%s' (unbalanced brackets)", text);
    } else {
        out = cfg_scalar_from_text(t);
    }
    free(copy);
    return out;
}

static void free_overrides(override *ov, int n) {
    for (int k = 0; k < n; k++) {
        free(ov[k].key);
        free(ov[k].text);
        cfg_free(ov[k].val);
    }
    free(ov);
}

static bool valid_key(const char *k) {
    if (!*k || *k == '.' || k[strlen(k) - 1] == '.' || strstr(k, "..")) return false;
    for (const char *p = k; *p; p++)
        if (!(*p == '_' || *p == '-' || *p == '.' || *p == '/' || *p == '@' ||
              (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return false;
    return true;
}

// Values end up in YAML, which holds UTF-8 text only (and no control characters but tab).
static bool valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int extra;
        uint32_t cp;
        if (*p < 0x80) {
            if (*p < 0x20 && *p != '\t') return false;
            p++;
            continue;
        } else if ((*p & 0xE0) == 0xC0) {
            extra = 1, cp = *p & 0x1F;
        } else if ((*p & 0xF0) == 0xE0) {
            extra = 2, cp = *p & 0x0F;
        } else if ((*p & 0xF8) == 0xF0) {
            extra = 3, cp = *p & 0x07;
        } else {
            return false;
        }
        p++;
        for (int k = 0; k < extra; k++, p++) {
            if ((*p & 0xC0) != 0x80) return false;
            cp = cp << 6 | (*p & 0x3F);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    }
    return true;
}

static override *parse_overrides(const cfg_search *s, int n, char *const *args, cfg_error *err) {
    override *ov = xcalloc((size_t)(n ? n : 1), sizeof *ov);
    for (int k = 0; k < n; k++) {
        const char *a = args[k];
        override *o = &ov[k];
        if (strncmp(a, "++", 2) == 0)
            o->kind = OV_FORCE, a += 2;
        else if (a[0] == '+')
            o->kind = OV_ADD, a += 1;
        else if (a[0] == '~')
            o->kind = OV_DELETE, a += 1;
        const char *eq = strchr(a, '=');
        if (!eq && o->kind != OV_DELETE) {
            cfg_set_error(err, 2,
                          "cannot read the override '%s': expected key=value (e.g. "
                          "train.optim.lr=1e-4 or arch=crammed-bert)",
                          args[k]);
            free_overrides(ov, n);
            return NULL;
        }
        o->key = eq ? strndup(a, (size_t)(eq - a)) : xstrdup(a);
        if (!valid_key(o->key)) {
            cfg_set_error(err, 2, "cannot read the override '%s': '%s' is not a key", args[k],
                          o->key);
            free_overrides(ov, n);
            return NULL;
        }
        if (eq) {
            if (!valid_utf8(eq + 1)) {
                cfg_set_error(err, 2,
                              "cannot read the override for %s: the value is not valid UTF-8",
                              o->key);
                free_overrides(ov, n);
                return NULL;
            }
            o->text = xstrdup(eq + 1);
            o->val = parse_value(o->text, 0, err);
            if (!o->val) {
                free_overrides(ov, n);
                return NULL;
            }
        }
        // Hydra's rule: a key with '/' names a group; a bare key names one when such a
        // group folder exists (arch, data, train, impl, eval, wandb).
        o->group = strchr(o->key, '/') || (!strchr(o->key, '.') && is_group(s, o->key));
        if (o->group && o->kind == OV_DELETE) {
            cfg_set_error(err, 2, "cannot delete the group '%s'; use %s=null to leave it out",
                          o->key, o->key);
            free_overrides(ov, n);
            return NULL;
        }
        if (o->group) {
            bool ok = o->val->type == CFG_STR || o->val->type == CFG_NULL;
            if (o->val->type == CFG_LIST) {
                ok = true;
                for (int j = 0; j < o->val->n; j++)
                    ok = ok && o->val->items[j]->type == CFG_STR;
            }
            if (!ok) {
                cfg_set_error(err, 2,
                              "%s: expected the name of an option of the group %s, got '%s'",
                              args[k], o->key, o->text);
                free_overrides(ov, n);
                return NULL;
            }
        }
    }
    return ov;
}

// ---- merging with type checks ------------------------------------------------------------

// The type a key is declared with: what the defining file wrote, or "anything" for an empty
// value or an interpolation whose type is only known after resolution.
static cfg_type declared(const cfg_node *n) {
    if (n->type == CFG_STR && strstr(n->s, "${")) return CFG_NULL;
    return n->type;
}

static void mark_declared(cfg_node *n) {
    n->decl = declared(n);
    for (int k = 0; k < n->n; k++)
        mark_declared(n->items[k]);
}

typedef enum { FIT_OK, FIT_TYPE, FIT_FRACTION, FIT_RANGE } fit_result;

// Whether v may take the place of a value declared `want`: null and interpolations always may;
// a number may replace a number, except that an integer key takes only whole numbers (1e3 and
// 1000.0 are turned into the integer 1000; 1.5 and 1e30 are refused).
static fit_result fit(cfg_type want, cfg_node *v) {
    if (want == CFG_NULL || v->type == CFG_NULL) return FIT_OK;
    if (v->type == CFG_STR && strstr(v->s, "${")) return FIT_OK;
    bool vnum = v->type == CFG_INT || v->type == CFG_FLOAT;
    if (want == CFG_INT && v->type == CFG_FLOAT) {
        int64_t i;
        if (cfg_whole(v->f, &i)) {
            v->type = CFG_INT;
            v->i = i;
            v->f = 0;
            return FIT_OK;
        }
        if (isnan(v->f)) return FIT_TYPE;
        return isinf(v->f) || v->f == floor(v->f) ? FIT_RANGE : FIT_FRACTION;
    }
    if (want == CFG_INT || want == CFG_FLOAT) return vnum ? FIT_OK : FIT_TYPE;
    return want == v->type ? FIT_OK : FIT_TYPE;
}

// "a string", "an integer": a type's name with its article, for messages.
static const char *a_type(cfg_type t) {
    switch (t) {
    case CFG_INT:
        return "an integer";
    case CFG_NULL:
        return "a null";
    case CFG_BOOL:
        return "a boolean";
    case CFG_FLOAT:
        return "a number";
    case CFG_STR:
        return "a string";
    case CFG_LIST:
        return "a list";
    case CFG_MAP:
        return "a mapping";
    }
    return "a value";
}

// A config file that was read, and the package (dotted path) its keys went to.
typedef struct {
    char *pkg, *path;
} loaded_file;

typedef struct {
    const cfg_search *s;
    override *ov;
    int nov;
    cfg_error *err;
    const cfg_check *checks; // what the job reads (NULL: no checks)
    loaded_file *files;
    int nfiles, capfiles;
} composer;

// What a key at `path` takes: the type its defining file gave it, except that a key the job
// reads as any number (budget: 24 is hours, 0.5 included) takes any number.
static cfg_type want_type(const composer *c, const char *path, cfg_type decl) {
    const cfg_check *ck = cfg_check_find(c->checks, path);
    if (ck && ck->type == CFG_FLOAT && decl == CFG_INT) return CFG_FLOAT;
    return decl;
}

// How an integer key is described in a message: with the job's range when it has one.
static void int_phrase(const composer *c, const char *path, bool bounds, char *out, size_t len) {
    const cfg_check *ck = cfg_check_find(c->checks, path);
    cfg_check any = CFG_CHECK_INT(path, INT64_MIN, INT64_MAX, 0);
    cfg_check_phrase(ck && ck->type == CFG_INT ? ck : &any, bounds, out, len);
}

static char *join_path(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s%s%s", a, *a && *b ? "." : "", b);
    return p;
}

static int merge(composer *c, cfg_node *dst, const cfg_node *src, const char *prefix) {
    for (int k = 0; k < src->n; k++) {
        const char *key = src->keys[k];
        const cfg_node *sv = src->items[k];
        char path[1024];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
        cfg_node *dv = cfg_map_get(dst, key);
        if (!dv) {
            cfg_map_set(dst, key, cfg_clone(sv));
            continue;
        }
        if (dv->type == CFG_MAP && sv->type == CFG_MAP) {
            if (merge(c, dv, sv, path)) return -1;
            continue;
        }
        cfg_node *nv = cfg_clone(sv);
        fit_result f = fit(want_type(c, path, dv->decl), nv);
        if (f != FIT_OK) {
            char what[300], takes[160];
            cfg_describe(sv, what, sizeof what);
            if (f == FIT_RANGE) int_phrase(c, path, true, takes, sizeof takes);
            cfg_set_error(c->err, 2, "%s: %s is %s in %s, but this file sets it to %s%s%s",
                          sv->origin ? sv->origin : "?", path, a_type(dv->decl),
                          dv->origin ? dv->origin : "an earlier file", what,
                          f == FIT_RANGE ? ", which is not " : "", f == FIT_RANGE ? takes : "");
            cfg_free(nv);
            return -1;
        }
        if (dv->decl != CFG_NULL) {
            nv->decl = dv->decl;
            free(nv->origin);
            nv->origin = dv->origin ? xstrdup(dv->origin) : NULL;
        }
        cfg_map_set(dst, key, nv);
    }
    return 0;
}

// The map at a dotted package path below `root`, created when missing.
static cfg_node *package_map(cfg_node *root, const char *package, cfg_error *err) {
    cfg_node *cur = root;
    char *copy = xstrdup(package), *save = NULL;
    for (char *part = strtok_r(copy, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
        cfg_node *next = cfg_map_get(cur, part);
        if (!next) {
            next = cfg_new(CFG_MAP);
            cfg_map_set(cur, part, next);
        } else if (next->type == CFG_NULL) {
            cfg_node *m = cfg_new(CFG_MAP);
            m->origin = next->origin ? xstrdup(next->origin) : NULL;
            cfg_map_set(cur, part, m);
            next = m;
        } else if (next->type != CFG_MAP) {
            cfg_set_error(err, 2, "cannot place the config group at '%s': '%s' already holds %s",
                          package, part, a_type(next->type));
            free(copy);
            return NULL;
        }
        cur = next;
    }
    free(copy);
    return cur;
}

// ---- the defaults list ---------------------------------------------------------------------

static cfg_node *compose_file(composer *c, const char *group, const char *option, const char *pkg,
                              int depth);

// Composes the option(s) `choice` of `group` and merges them at `package` below result, whose
// own package is pkg.
static int merge_group(composer *c, cfg_node *result, const char *group, const char *package,
                       const cfg_node *choice, bool optional, const char *pkg, int depth) {
    cfg_node *target = package_map(result, package, c->err);
    if (!target) return -1;
    char *full = join_path(pkg, package);
    int rc = 0;
    const cfg_node *const *opts = (const cfg_node *const *)&choice;
    int nopts = 1;
    if (choice->type == CFG_LIST) opts = (const cfg_node *const *)choice->items, nopts = choice->n;
    for (int k = 0; k < nopts && rc == 0; k++) {
        const cfg_node *o = opts[k];
        if (o->type == CFG_NULL) continue;
        if (o->type != CFG_STR) {
            cfg_set_error(c->err, 2, "defaults entry for group %s: options must be names", group);
            rc = -1;
            break;
        }
        if (optional) {
            char path[PATH_MAX];
            if (!find_config(c->s, group, o->s, path, sizeof path)) continue;
        }
        cfg_node *sub = compose_file(c, group, o->s, full, depth + 1);
        rc = sub ? merge(c, target, sub, full) : -1;
        cfg_free(sub);
    }
    free(full);
    return rc;
}

static override *group_override(composer *c, const char *group) {
    for (int k = 0; k < c->nov; k++)
        if (c->ov[k].group && strcmp(c->ov[k].key, group) == 0) return &c->ov[k];
    return NULL;
}

// Loads group/option.yaml and everything its defaults list pulls in. The result is rooted at
// the file's own package: the caller places it.
static cfg_node *compose_file(composer *c, const char *group, const char *option, const char *pkg,
                              int depth) {
    char path[PATH_MAX];
    if (depth > MAX_COMPOSE_DEPTH) {
        cfg_set_error(c->err, 2, "defaults lists nest deeper than %d (a cycle through %s/%s?)",
                      MAX_COMPOSE_DEPTH, group, option);
        return NULL;
    }
    if (!*option || strstr(option, "..") || option[0] == '/') {
        cfg_set_error(c->err, 2, "'%s' is not a config option name", option);
        return NULL;
    }
    if (!find_config(c->s, group, option, path, sizeof path)) {
        if (!*group)
            cfg_set_error(
                c->err, 2,
                "no config %s.yaml in the config path (set CRAM_CONFIG_PATH or --config-dir)",
                option);
        else
            unknown_option_error(c->s, group, option, c->err);
        return NULL;
    }
    bool empty = false;
    cfg_node *file = cfg_load_yaml_file_ex(path, &empty, c->err);
    if (!file) return NULL;
    if (empty) {
        // Hydra reads an empty file as an empty config; here it is far more often a file cut
        // short or not saved, so it is refused ({} is an empty config on purpose).
        cfg_set_error(c->err, 2, "%s: the file is empty (write {} for an empty config)", path);
        cfg_free(file);
        return NULL;
    }
    if (c->nfiles == c->capfiles) {
        c->capfiles = c->capfiles ? 2 * c->capfiles : 16;
        c->files = xrealloc(c->files, (size_t)c->capfiles * sizeof *c->files);
    }
    c->files[c->nfiles++] = (loaded_file){xstrdup(pkg), xstrdup(path)};
    if (file->type != CFG_MAP) {
        cfg_set_error(c->err, 2, "%s: expected key: value pairs at the top level", path);
        cfg_free(file);
        return NULL;
    }
    mark_declared(file);
    cfg_node *defaults = NULL;
    for (int k = 0; k < file->n; k++) {
        if (strcmp(file->keys[k], "defaults") == 0) {
            defaults = file->items[k];
            file->items[k] = NULL;
            cfg_map_del(file, "defaults");
            break;
        }
    }
    if (defaults && defaults->type != CFG_LIST && defaults->type != CFG_NULL) {
        cfg_set_error(c->err, 2, "%s: 'defaults' must be a list", path);
        cfg_free(defaults);
        cfg_free(file);
        return NULL;
    }
    cfg_node *result = cfg_new(CFG_MAP);
    bool self_done = false;
    int n = defaults ? defaults->n : 0;
    int rc = 0;
    for (int k = 0; k <= n && rc == 0; k++) {
        const cfg_node *e = k < n ? defaults->items[k] : NULL;
        if (!e) { // _self_ goes last when the list does not place it
            if (!self_done) rc = merge(c, result, file, pkg);
            break;
        }
        if (e->type == CFG_STR) {
            if (strcmp(e->s, "_self_") == 0) {
                rc = merge(c, result, file, pkg);
                self_done = true;
            } else {
                cfg_node *sub = compose_file(c, group, e->s, pkg, depth + 1);
                rc = sub ? merge(c, result, sub, pkg) : -1;
                cfg_free(sub);
            }
            continue;
        }
        if (e->type != CFG_MAP || e->n != 1) {
            cfg_set_error(c->err, 2, "%s: each defaults entry is a name or 'group: option'", path);
            rc = -1;
            break;
        }
        const char *key = e->keys[0];
        bool optional = false;
        if (strncmp(key, "override ", 9) == 0) key += 9;
        if (strncmp(key, "optional ", 9) == 0) key += 9, optional = true;
        if (strncmp(key, "hydra", 5) == 0 || strncmp(key, "/hydra", 6) == 0) continue;
        char sub_group[PATH_MAX], package[PATH_MAX];
        snprintf(sub_group, sizeof sub_group, "%s%s%s", group, *group ? "/" : "", key);
        snprintf(package, sizeof package, "%s", key);
        for (char *p = package; *p; p++)
            if (*p == '/') *p = '.';
        const cfg_node *choice = e->items[0];
        override *o = group_override(c, sub_group);
        if (o && o->kind == OV_ADD) {
            // Hydra: "+group=option" only appends a group the defaults list lacks.
            cfg_set_error(c->err, 2,
                          "+%s=%s: %s is already in the defaults list (%s); write %s=%s to "
                          "change it, or ++%s=%s",
                          o->key, o->text, o->key, path, o->key, o->text, o->key, o->text);
            rc = -1;
            break;
        }
        if (o) {
            choice = o->val;
            o->used = true;
        }
        rc = merge_group(c, result, sub_group, package, choice, optional, pkg, depth);
    }
    cfg_free(defaults);
    cfg_free(file);
    if (rc) {
        cfg_free(result);
        return NULL;
    }
    return result;
}

// ---- value overrides ---------------------------------------------------------------------

static void unknown_key_error(const cfg_node *root, const char *key, const char *what,
                              cfg_error *err) {
    int n;
    char **paths = cfg_all_paths(root, &n);
    const char *near = cfg_closest(key, paths, n);
    if (near)
        cfg_set_error(err, 2, "unknown key %s; did you mean %s?", key, near);
    else
        cfg_set_error(err, 2, "unknown key %s%s", key, what);
    free_strs(paths, n);
}

static cfg_node *parent_of(cfg_node *root, const char *key, const char **last) {
    const char *dot = strrchr(key, '.');
    *last = dot ? dot + 1 : key;
    if (!dot) return root;
    char *parent = strndup(key, (size_t)(dot - key));
    cfg_node *p = cfg_get(root, parent);
    free(parent);
    return p;
}

// Make a command-line value fit the declared type: scalars become strings where the file
// holds a string, ints become floats where it holds a float.
static cfg_node *coerce(const composer *c, const override *o, const cfg_node *target,
                        cfg_error *err) {
    cfg_node *v = cfg_clone(o->val);
    cfg_type decl = target ? target->decl : CFG_NULL;
    cfg_type want = want_type(c, o->key, decl);
    if (decl == CFG_STR && (v->type == CFG_INT || v->type == CFG_FLOAT || v->type == CFG_BOOL)) {
        cfg_free(v);
        char *copy = xstrdup(o->text);
        v = cfg_new_str(trim(copy));
        free(copy);
    } else if (decl == CFG_FLOAT && v->type == CFG_INT) {
        v->type = CFG_FLOAT;
        v->f = (double)v->i;
    }
    fit_result f = target ? fit(want, v) : FIT_OK;
    if (f != FIT_OK) {
        char what[300], takes[160];
        const char *where = target->origin ? target->origin : "its config file";
        if (f == FIT_TYPE) {
            cfg_describe(v, what, sizeof what);
            snprintf(takes, sizeof takes, "%s", a_type(want));
        } else {
            char num[64], *copy = xstrdup(o->text);
            cfg_format_float(v->f, num, sizeof num);
            snprintf(what, sizeof what, "%s%.200s", f == FIT_FRACTION ? "the fraction " : "",
                     f == FIT_FRACTION ? num : trim(copy));
            free(copy);
            int_phrase(c, o->key, f == FIT_RANGE, takes, sizeof takes);
        }
        cfg_set_error(err, 2, "%s=%s: %s takes %s (as set in %s), not %s", o->key, o->text, o->key,
                      takes, where, what);
        cfg_free(v);
        return NULL;
    }
    mark_declared(v);
    if (target) v->decl = target->decl;
    v->origin = xstrdup("command line");
    return v;
}

static int apply_value_override(const composer *c, cfg_node *root, const override *o,
                                cfg_error *err) {
    const char *last;
    cfg_node *parent = parent_of(root, o->key, &last);
    cfg_node *target = parent ? cfg_map_get(parent, last) : NULL;
    if (o->kind == OV_DELETE) {
        if (!target) {
            unknown_key_error(root, o->key, "", err);
            return -1;
        }
        cfg_map_del(parent, last);
        return 0;
    }
    if (o->kind == OV_SET && !target) {
        unknown_key_error(root, o->key, " (to add a new key, write +key=value)", err);
        return -1;
    }
    if (o->kind == OV_ADD && target) {
        cfg_set_error(err, 2, "+%s=%s: the key %s already exists; write %s=%s to change it", o->key,
                      o->text, o->key, o->key, o->text);
        return -1;
    }
    if (!parent) {
        // Adding a.b.c where a.b does not exist yet: create the maps on the way.
        char *pkg = strndup(o->key, (size_t)(last - 1 - o->key));
        parent = package_map(root, pkg, err);
        free(pkg);
        if (!parent) return -1;
    }
    if (parent->type != CFG_MAP) {
        cfg_set_error(err, 2, "%s: the parent of %s is %s, not a mapping", o->key, last,
                      a_type(parent->type));
        return -1;
    }
    cfg_node *v = coerce(c, o, target, err);
    if (!v) return -1;
    cfg_map_set(parent, last, v);
    return 0;
}

// ---- interpolation -----------------------------------------------------------------------

static int resolve_node(cfg_node *root, cfg_node *n, const char *path, int depth, cfg_error *err);

static int scalar_text(const cfg_node *v, char *out, size_t len) {
    switch (v->type) {
    case CFG_NULL:
        snprintf(out, len, "None");
        return 0;
    case CFG_BOOL:
        snprintf(out, len, "%s", v->b ? "True" : "False");
        return 0;
    case CFG_INT:
        snprintf(out, len, "%lld", (long long)v->i);
        return 0;
    case CFG_FLOAT:
        cfg_format_float(v->f, out, len);
        return 0;
    case CFG_STR:
        snprintf(out, len, "%s", v->s);
        return 0;
    default:
        return -1;
    }
}

// Evaluates one ${...} body: a key path, or a resolver (now:, oc.env:). Returns a new node.
static cfg_node *eval_expr(cfg_node *root, const char *expr, const char *path, int depth,
                           cfg_error *err) {
    if (strncmp(expr, "now:", 4) == 0) {
        char buf[256];
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        if (strftime(buf, sizeof buf, expr + 4, &tm) == 0) buf[0] = 0;
        return cfg_new_str(buf);
    }
    if (strncmp(expr, "oc.env:", 7) == 0) {
        char *copy = xstrdup(expr + 7);
        char *comma = strchr(copy, ',');
        if (comma) *comma = 0;
        const char *v = getenv(trim(copy));
        if (v && !valid_utf8(v)) {
            cfg_set_error(err, 2, "%s: environment variable %s is not valid UTF-8 text", path,
                          trim(copy));
            free(copy);
            return NULL;
        }
        cfg_node *out = v ? cfg_new_str(v) : comma ? parse_value(comma + 1, 0, err) : NULL;
        if (!v && !comma)
            cfg_set_error(err, 2, "%s: environment variable %s is not set", path, trim(copy));
        free(copy);
        return out;
    }
    if (strchr(expr, ':')) {
        cfg_set_error(err, 2, "%s: unknown resolver in ${%s}", path, expr);
        return NULL;
    }
    if (!*expr) {
        cfg_set_error(err, 2, "%s: empty interpolation ${}", *path ? path : "(top level)");
        return NULL;
    }
    if (expr[0] == '.') {
        cfg_set_error(err, 2, "%s: relative interpolation ${%s} is not supported; use the full key",
                      path, expr);
        return NULL;
    }
    cfg_node *target = cfg_get(root, expr);
    if (!target) {
        int n;
        char **paths = cfg_all_paths(root, &n);
        const char *near = cfg_closest(expr, paths, n);
        cfg_set_error(err, 2, "%s: ${%s} refers to a missing key%s%s%s", path, expr,
                      near ? "; did you mean ${" : "", near ? near : "", near ? "}?" : "");
        free_strs(paths, n);
        return NULL;
    }
    if (resolve_node(root, target, expr, depth + 1, err)) return NULL;
    return cfg_clone(target);
}

static int resolve_string(cfg_node *root, cfg_node *n, const char *path, int depth,
                          cfg_error *err) {
    const char *s = n->s;
    size_t len = strlen(s);
    // A value that is exactly one ${...} takes the referenced value with its type.
    if (strncmp(s, "${", 2) == 0 && s[len - 1] == '}' && !strchr(s + 2, '$') &&
        strchr(s, '}') == s + len - 1) {
        char *expr = strndup(s + 2, len - 3);
        cfg_node *v = eval_expr(root, trim(expr), path, depth, err);
        free(expr);
        if (!v) return -1;
        free(n->s);
        n->s = v->s;
        v->s = NULL;
        n->type = v->type;
        n->b = v->b, n->i = v->i, n->f = v->f;
        n->items = v->items, n->keys = v->keys, n->n = v->n, n->cap = v->cap;
        v->items = NULL, v->keys = NULL, v->n = 0;
        cfg_free(v);
        return 0;
    }
    char *out = NULL;
    size_t olen = 0;
    FILE *f = open_memstream(&out, &olen);
    CORE_CHECK(f != NULL, "open_memstream failed");
    const char *p = s;
    int rc = 0;
    while (*p && rc == 0) {
        if (p[0] == '\\' && p[1] == '$' && p[2] == '{') {
            fputs("${", f);
            p += 3;
            continue;
        }
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p + 2, '}');
            if (!close) {
                cfg_set_error(err, 2, "%s: unterminated ${ in '%s'", path, s);
                rc = -1;
                break;
            }
            char *expr = strndup(p + 2, (size_t)(close - p - 2));
            cfg_node *v = eval_expr(root, trim(expr), path, depth, err);
            free(expr);
            char text[1024];
            if (!v) {
                rc = -1;
            } else if (scalar_text(v, text, sizeof text)) {
                cfg_set_error(err, 2, "%s: cannot put %s ${%.*s} inside a string", path,
                              a_type(v->type), (int)(close - p - 2), p + 2);
                rc = -1;
            } else {
                fputs(text, f);
            }
            cfg_free(v);
            p = close + 1;
            continue;
        }
        fputc(*p++, f);
    }
    fclose(f);
    if (rc == 0) {
        free(n->s);
        n->s = out;
    } else {
        free(out);
    }
    return rc;
}

static int resolve_node(cfg_node *root, cfg_node *n, const char *path, int depth, cfg_error *err) {
    if (depth > MAX_INTERP_DEPTH) {
        cfg_set_error(err, 2, "%s: interpolations refer to each other in a cycle", path);
        return -1;
    }
    if (n->type == CFG_STR) {
        if (!strstr(n->s, "${")) return 0;
        return resolve_string(root, n, path, depth, err);
    }
    for (int k = 0; k < n->n; k++) {
        char sub[1024];
        if (n->keys)
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", n->keys[k]);
        else
            snprintf(sub, sizeof sub, "%s[%d]", path, k);
        if (resolve_node(root, n->items[k], sub, depth, err)) return -1;
    }
    return 0;
}

int cfg_resolve(cfg_node *root, cfg_error *err) {
    return resolve_node(root, root, "", 0, err);
}

// ---- the whole job -----------------------------------------------------------------------

// Group choices on the command line name options that exist, and each group once.
static int check_group_overrides(const composer *c, char *const *args) {
    for (int k = 0; k < c->nov; k++) {
        const override *o = &c->ov[k];
        if (!o->group) continue;
        const cfg_node *const *names = (const cfg_node *const *)&o->val;
        int n = 1;
        if (o->val->type == CFG_LIST) names = (const cfg_node *const *)o->val->items, n = o->val->n;
        for (int j = 0; j < n; j++) {
            const cfg_node *name = names[j];
            if (name->type != CFG_STR) continue; // null: leave the group out
            char path[PATH_MAX];
            if (!*name->s || strstr(name->s, "..") || name->s[0] == '/') {
                cfg_set_error(c->err, 2, "'%s' is not a config option name", name->s);
                return -1;
            }
            if (!find_config(c->s, o->key, name->s, path, sizeof path)) {
                unknown_option_error(c->s, o->key, name->s, c->err);
                return -1;
            }
        }
    }
    for (int k = 0; k < c->nov; k++) {
        for (int j = 0; c->ov[k].group && j < k; j++) {
            if (c->ov[j].group && strcmp(c->ov[j].key, c->ov[k].key) == 0) {
                cfg_set_error(c->err, 2, "%s and %s: the group %s is chosen twice; keep one",
                              args[j], args[k], c->ov[k].key);
                return -1;
            }
        }
    }
    return 0;
}

// The files whose package holds `key` most closely, for a message: "a.yaml, b.yaml".
static void files_for(const composer *c, const char *key, char *out, size_t len) {
    size_t best = 0;
    bool found = false;
    for (int k = 0; k < c->nfiles; k++) {
        const char *p = c->files[k].pkg;
        size_t n = strlen(p);
        bool holds = n == 0 || (strncmp(key, p, n) == 0 && key[n] == '.');
        if (holds && (!found || n > best)) best = n, found = true;
    }
    size_t o = 0;
    out[0] = 0;
    for (int k = 0; found && k < c->nfiles && o + 8 < len; k++) {
        if (strlen(c->files[k].pkg) != best) continue;
        if (best && strncmp(key, c->files[k].pkg, best) != 0) continue;
        o += (size_t)snprintf(out + o, len - o, "%s%s", o ? ", " : "", c->files[k].path);
    }
}

// A key the job reads is not in the composed tree: say why, as closely as the composer knows.
static void missing_key_error(const composer *c, const char *primary, const char *key) {
    for (int k = c->nov - 1; k >= 0; k--) {
        const override *o = &c->ov[k];
        char at[PATH_MAX]; // the key's package: train/optim is train.optim
        snprintf(at, sizeof at, "%s", o->key);
        for (char *p = at; *p; p++)
            if (*p == '/') *p = '.';
        size_t n = strlen(at);
        bool covers = strncmp(key, at, n) == 0 && (key[n] == 0 || key[n] == '.');
        if (o->kind == OV_DELETE && covers) {
            cfg_set_error(c->err, 2, "~%s removes %s, which cram reads; set it instead", o->key,
                          key);
            return;
        }
        if (o->group && o->val->type == CFG_NULL && covers) {
            cfg_set_error(c->err, 2, "%s=null leaves out the group %s, but cram reads %s", o->key,
                          o->key, key);
            return;
        }
    }
    char files[2048];
    files_for(c, key, files, sizeof files);
    cfg_set_error(c->err, 2,
                  "the composed %s config has no %s, which cram reads; it should be set by %s "
                  "(is a file cut short?)",
                  primary, key, *files ? files : "the config files");
}

// Before interpolation (which would stop at the first ${...} that refers to a lost key): the
// keys the job reads are all there.
static int check_present(const composer *c, const char *primary, const cfg_node *root) {
    for (const cfg_check *ck = c->checks; ck && ck->path; ck++) {
        if (ck->flags & CFG_CHECK_OPTIONAL || cfg_get(root, ck->path)) continue;
        missing_key_error(c, primary, ck->path);
        return -1;
    }
    return 0;
}

// After interpolation: integer keys hold integers (an interpolation may have given 2.0 or 2.5),
// and the keys the job reads are present and hold what it takes.
static int check_composed(const composer *c, const char *primary, cfg_node *n, const char *path) {
    if (n->decl == CFG_INT && n->type == CFG_FLOAT && want_type(c, path, CFG_INT) == CFG_INT) {
        fit_result f = fit(CFG_INT, n);
        if (f != FIT_OK) {
            char what[300], takes[160];
            cfg_describe(n, what, sizeof what);
            int_phrase(c, path, f == FIT_RANGE, takes, sizeof takes);
            cfg_set_error(c->err, 2, "%s takes %s (as set in %s), but its interpolation gave %s",
                          path, takes, n->origin ? n->origin : "its config file", what);
            return -1;
        }
    }
    for (int k = 0; k < n->n; k++) {
        if (!n->keys) continue;
        char *sub = join_path(path, n->keys[k]);
        int rc = check_composed(c, primary, n->items[k], sub);
        free(sub);
        if (rc) return -1;
    }
    if (*path) return 0;
    // the root: the job's table (present keys: check_present)
    for (const cfg_check *ck = c->checks; ck && ck->path; ck++) {
        cfg_node *v = cfg_get(n, ck->path);
        if (!v) continue;
        int64_t i;
        if (ck->type == CFG_INT && v->type == CFG_FLOAT && cfg_whole(v->f, &i)) {
            v->type = CFG_INT; // seed=7.0 is seed 7
            v->i = i;
            v->f = 0;
        }
        const char *typed = NULL; // the value as the command line wrote it
        for (int k = 0; v->origin && strcmp(v->origin, "command line") == 0 && k < c->nov; k++)
            if (!c->ov[k].group && c->ov[k].text && strcmp(c->ov[k].key, ck->path) == 0)
                typed = c->ov[k].text;
        char msg[1024];
        if (cfg_check_node(ck, v, typed, msg, sizeof msg)) {
            cfg_set_error(c->err, 2, "%s", msg);
            return -1;
        }
    }
    return 0;
}

cfg_node *cfg_compose(const cfg_search *s, const char *primary, int noverrides,
                      char *const *overrides, cfg_error *err) {
    if (s->ndirs == 0) {
        cfg_set_error(err, 2,
                      "no config folder found: set CRAM_CONFIG_PATH or pass --config-dir=DIR");
        return NULL;
    }
    override *ov = parse_overrides(s, noverrides, overrides, err);
    if (!ov) return NULL;
    composer c = {
        .s = s, .ov = ov, .nov = noverrides, .err = err, .checks = cfg_checks_for(primary)};
    cfg_node *root = NULL;
    if (check_group_overrides(&c, overrides) == 0) root = compose_file(&c, "", primary, "", 0);
    // +group=option adds a group the defaults list does not have.
    for (int k = 0; root && k < noverrides; k++) {
        override *o = &ov[k];
        if (!o->group || o->used) continue;
        if (o->kind == OV_SET) {
            cfg_set_error(
                err, 2, "%s=%s: the %s config has no '%s' in its defaults; write +%s=%s to add it",
                o->key, o->text, primary, o->key, o->key, o->text);
            cfg_free(root);
            root = NULL;
            break;
        }
        char package[PATH_MAX];
        snprintf(package, sizeof package, "%s", o->key);
        for (char *p = package; *p; p++)
            if (*p == '/') *p = '.';
        o->used = true;
        if (merge_group(&c, root, o->key, package, o->val, false, "", 0)) {
            cfg_free(root);
            root = NULL;
        }
    }
    for (int k = 0; root && k < noverrides; k++) {
        if (ov[k].group) continue;
        if (apply_value_override(&c, root, &ov[k], err)) {
            cfg_free(root);
            root = NULL;
        }
    }
    if (root && (check_present(&c, primary, root) || cfg_resolve(root, err) ||
                 check_composed(&c, primary, root, ""))) {
        cfg_free(root);
        root = NULL;
    }
    free_overrides(ov, noverrides);
    for (int k = 0; k < c.nfiles; k++) {
        free(c.files[k].pkg);
        free(c.files[k].path);
    }
    free(c.files);
    return root;
}
