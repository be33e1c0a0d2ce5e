// Shared by the files of src/config only: the pieces of the checks that composition uses too.
#ifndef CRAM_CFG_INTERNAL_H
#define CRAM_CFG_INTERNAL_H

#include "config/config.h"

// cfg_load_yaml_file that also says whether the file holds no YAML node at all (nothing, or
// only blank lines and comments), which cfg_parse_yaml reads as an empty mapping.
cfg_node *cfg_load_yaml_file_ex(const char *path, bool *empty, cfg_error *err);

// true when f is a whole number that an int64_t holds; *out gets it.
bool cfg_whole(double f, int64_t *out);

// The entry of a table for a dotted path, or NULL.
const cfg_check *cfg_check_find(const cfg_check *table, const char *path);

// What a key of the entry takes, for messages: "an integer from 1 to 2147483647", "a number
// greater than 0 or null". Integer bounds are spelled out when `bounds` is set or narrower than
// the int64 range.
void cfg_check_phrase(const cfg_check *c, bool bounds, char *out, size_t len);

// Checks a present node against an entry: 0, or -1 with a message that names the key, the
// value (as `typed` on the command line, when not NULL) and what the key takes.
int cfg_check_node(const cfg_check *c, const cfg_node *n, const char *typed, char *msg, size_t len);

// "the string 'abc'", "the number 1.5", "null": a value for messages.
void cfg_describe(const cfg_node *v, char *out, size_t len);

#endif
