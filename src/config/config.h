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
// Strict getters, for keys whose wrong value must stop the run: 0 with *out set, or -1 with
// a message in err (errlen bytes) that names the key, the value and what the key takes. A
// missing or null key gives def. cfg_int_in takes ints and floats that are whole numbers
// (8e6), in [lo, hi]; a fraction, a value outside [lo, hi] and any other type fail.
// cfg_num_in takes ints and floats in [lo, hi] (NaN never). cfg_bool_strict and
// cfg_str_strict take only booleans and strings.
int cfg_int_in(const cfg_node *root, const char *path, int64_t lo, int64_t hi, int64_t def,
               int64_t *out, char *err, size_t errlen);
int cfg_num_in(const cfg_node *root, const char *path, double lo, double hi, double def,
               double *out, char *err, size_t errlen);
int cfg_bool_strict(const cfg_node *root, const char *path, bool def, bool *out, char *err,
                    size_t errlen);
int cfg_str_strict(const cfg_node *root, const char *path, const char *def, const char **out,
                   char *err, size_t errlen);
// Every dotted key path of a tree (maps only; list elements are not paths). malloc'd array of
// malloc'd strings; *n gets the count.
char **cfg_all_paths(const cfg_node *root, int *n);
// The closest of `cands` to `word` by edit distance, or NULL when none is close enough.
const char *cfg_closest(const char *word, char *const *cands, int n);

// The one rule for the keys of a mapping, shared by the YAML reader and the command-line value
// parser ({a: 1}): NULL when the len bytes at key make a key, else what is wrong with it
// ("empty key", "NUL byte in a key").
const char *cfg_key_problem(const char *key, size_t len);

// ---- checks of what a job reads ------------------------------------------------------------
// A table of the keys a job's code reads, each with its kind and allowed values; a NULL path
// ends it. type: CFG_INT (a whole number in [ilo, ihi]), CFG_FLOAT (any number in [lo, hi],
// never NaN), CFG_BOOL or CFG_STR. A key must be present (a file cut short loses keys) unless
// CFG_CHECK_OPTIONAL; null is refused unless CFG_CHECK_NULL.
enum {
    CFG_CHECK_NULL = 1,     // null is allowed (it means "the default")
    CFG_CHECK_OPTIONAL = 2, // the key may be absent
    CFG_CHECK_ABOVE = 4,    // CFG_FLOAT: lo itself is excluded (budget > 0)
};
typedef struct {
    const char *path;
    cfg_type type;
    unsigned flags;
    int64_t ilo, ihi;
    double lo, hi;
} cfg_check;
#define CFG_CHECK_INT(path, lo, hi, flags)                                                         \
    { (path), CFG_INT, (flags), (lo), (hi), 0, 0 }
#define CFG_CHECK_NUM(path, lo, hi, flags)                                                         \
    { (path), CFG_FLOAT, (flags), 0, 0, (lo), (hi) }
#define CFG_CHECK_BOOL(path, flags)                                                                \
    { (path), CFG_BOOL, (flags), 0, 0, 0, 0 }
#define CFG_CHECK_STR(path, flags)                                                                 \
    { (path), CFG_STR, (flags), 0, 0, 0, 0 }

// What `cram pretrain` and `cram eval` read (src/config/cfg_check.c).
extern const cfg_check cfg_checks_pretrain[];
extern const cfg_check cfg_checks_eval[];
// The table of a primary config ("pretrain", "eval"), or NULL.
const cfg_check *cfg_checks_for(const char *primary);
// Checks a composed tree against a table: 0, or -1 with a message (err, errlen bytes) that
// names the first bad key, its value and what it takes. cfg_compose runs this (with file
// names for missing keys) for the pretrain and eval configs; a job that gets its tree in
// another way calls it itself.
int cfg_check_ranges(const cfg_node *root, const cfg_check *table, char *err, size_t errlen);

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
// interpolation and return the final tree. NULL on error. Every value must fit the type of the
// file that defined its key (an integer key takes whole numbers only: 1e3 becomes 1000, 1.5 is
// refused); a file with nothing in it, a group chosen twice and an unknown option are errors;
// for "pretrain" and "eval" the tree must also pass cfg_checks_for(primary), and a missing key
// is reported with the files that should have set it.
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
/* Hydra's `--cfg job|all|hydra` (also `--cfg=KIND`, `-c KIND`, with or without `--resolve`) on
 * a pretrain or eval command line: print the composed configuration as `cram config` does and
 * return the exit status; -1 when argv (the overrides, without the subcommand) has no such flag.
 * prog names the command in messages ("cram pretrain"). */
int cfg_cli_cfg_flag(const char *primary, const char *prog, int argc, char **argv);

#endif
