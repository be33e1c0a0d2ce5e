// Configuration: a tree of YAML values composed the way Hydra 1.1 composes the reference's
// configs (defaults lists, group=option, a.b.c=value, +key, ${a.b} interpolation), with type
// checks and error messages that name the file, the key and a close match.
#ifndef CRAM_CONFIG_H
#define CRAM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    CFG_NULL = 0,
    CFG_BOOL,
    CFG_INT,
    CFG_FLOAT,
    CFG_STR,
    CFG_LIST,
    CFG_MAP,
} cfg_type;

typedef struct cfg_node cfg_node;
struct cfg_node {
    cfg_type type;
    bool b;
    int64_t i;
    double f;
    char *s;          // CFG_STR: the text (may hold ${...} until resolved)
    cfg_node **items; // CFG_LIST, CFG_MAP: children, in file order
    char **keys;      // CFG_MAP: key of each child
    int n, cap;
    // Where the key was first defined, and the type it had there. An override must keep that
    // type; CFG_NULL means "anything" (an empty value or an interpolation in the defining file).
    char *origin; // "file:line" or "command line"
    cfg_type decl;
};

// Errors from anything a user can hand us: a message to print and an exit code (2 = the
// user's input is wrong, 1 = the system failed).
typedef struct {
    int code;
    char msg[2048];
} cfg_error;

// Fill err (may be NULL) with a formatted message and an exit code.
void cfg_set_error(cfg_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// ---- values ------------------------------------------------------------------------------
cfg_node *cfg_new(cfg_type type);
cfg_node *cfg_new_str(const char *s);
cfg_node *cfg_clone(const cfg_node *n);
void cfg_free(cfg_node *n);
const char *cfg_type_name(cfg_type t);
// A map's child by key (not a dotted path); NULL when absent.
cfg_node *cfg_map_get(const cfg_node *map, const char *key);
// Insert or replace a map entry; takes ownership of val.
void cfg_map_set(cfg_node *map, const char *key, cfg_node *val);
bool cfg_map_del(cfg_node *map, const char *key);
void cfg_list_push(cfg_node *list, cfg_node *val);
// Interpret the text of a YAML plain scalar (null, bool, int, float or string) as the
// reference's loader does: 1e-3, 8e6 and 900_000 are numbers; True/False are booleans.
cfg_node *cfg_scalar_from_text(const char *text);

// ---- YAML in and out ---------------------------------------------------------------------
// Parse one YAML document. `name` is used in messages ("file:line:col: problem").
cfg_node *cfg_parse_yaml(const char *buf, size_t len, const char *name, cfg_error *err);
cfg_node *cfg_load_yaml_file(const char *path, cfg_error *err);
// Write the tree as block YAML that cfg_parse_yaml reads back to the same tree.
int cfg_write_yaml(const cfg_node *root, FILE *f);
char *cfg_to_yaml(const cfg_node *root); // malloc'd
// Format a double the way Python's repr does (shortest round trip), as YAML reads it back.
void cfg_format_float(double v, char *out, size_t outlen);

// ---- lookup ------------------------------------------------------------------------------
// Dotted path lookup ("train.optim.lr"); NULL when any part is missing.
cfg_node *cfg_get(const cfg_node *root, const char *path);
// Typed getters: 0 on success; on a missing key or a wrong type, -1 with a message naming
// the key. cfg_get_num accepts ints and floats; cfg_get_str fails on null.
int cfg_get_num(const cfg_node *root, const char *path, double *out, cfg_error *err);
int cfg_get_int(const cfg_node *root, const char *path, int64_t *out, cfg_error *err);
int cfg_get_bool(const cfg_node *root, const char *path, bool *out, cfg_error *err);
int cfg_get_str(const cfg_node *root, const char *path, const char **out, cfg_error *err);
// Value-or-default getters, for keys whose absence or odd type simply means "the default":
// the value at a dotted path, or def when the path is missing, null or of another type.
// cfg_num_or takes ints and floats; cfg_int_or takes ints and truncates floats toward zero
// (clamped to the int64 range; NaN gives def); cfg_str_or gives the node's own text.
double cfg_num_or(const cfg_node *root, const char *path, double def);
int64_t cfg_int_or(const cfg_node *root, const char *path, int64_t def);
bool cfg_bool_or(const cfg_node *root, const char *path, bool def);
const char *cfg_str_or(const cfg_node *root, const char *path, const char *def);
// Every dotted key path of a tree (maps only; list elements are not paths). malloc'd array of
// malloc'd strings; *n gets the count.
char **cfg_all_paths(const cfg_node *root, int *n);
// The closest of `cands` to `word` by edit distance, or NULL when none is close enough.
const char *cfg_closest(const char *word, char *const *cands, int n);

// ---- canonical form and hash ------------------------------------------------------------
// A JSON text of the subtree with map keys sorted, so that the order of keys in the files
// never changes it. malloc'd.
char *cfg_canonical_json(const cfg_node *n);
// 16 hex digits of a stable hash of the canonical form.
void cfg_hash_hex(const cfg_node *n, char out[17]);

// ---- composition -------------------------------------------------------------------------
#define CFG_MAX_SEARCH 8
typedef struct {
    char *dirs[CFG_MAX_SEARCH]; // config roots, searched in order
    int ndirs;
} cfg_search;

void cfg_search_init(cfg_search *s);
void cfg_search_free(cfg_search *s);
int cfg_search_add(cfg_search *s, const char *dir);
// The roots a plain `cram` uses: $CRAM_CONFIG_PATH (colon separated), then the configs/
// folder next to the binary's install or build tree. Returns the number of roots found.
int cfg_search_default(cfg_search *s);

// Compose `primary` ("pretrain" or "eval") with command-line overrides, resolve every
// interpolation and return the final tree. NULL on error.
cfg_node *cfg_compose(const cfg_search *s, const char *primary, int noverrides,
                      char *const *overrides, cfg_error *err);
// Replace every ${...} by its value (called by cfg_compose; exposed for tests and for
// configs read back from run folders).
int cfg_resolve(cfg_node *root, cfg_error *err);

// ---- command line ------------------------------------------------------------------------
// Compose `primary` from a subcommand's arguments: `--config-dir=DIR` adds a config root in
// front of the default ones, everything else is an override.
cfg_node *cfg_from_args(const char *primary, int argc, char **argv, cfg_error *err);
// `cram config ...`; argv[0] is "config".
int cfg_cli_main(int argc, char **argv);

#endif
