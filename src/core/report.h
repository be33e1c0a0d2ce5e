/* Run reports shared by pretraining and evaluation. */
#ifndef CRAM_CORE_REPORT_H
#define CRAM_CORE_REPORT_H

#include <stddef.h>
#include <stdint.h>

/* A duration the way Python's str(datetime.timedelta) prints it: "1:02:03.456789",
 * "2 days, 0:00:01". */
void core_format_timedelta(char *out, size_t outlen, double seconds);

/* Append one row to the tab-separated table <dir>/table_<table>.csv, writing the header first
 * when the file is missing or empty. Values must not contain tabs or newlines (they are
 * replaced by spaces). Returns 0 or -1 with a message. */
int core_table_append(const char *dir, const char *table, char *const *keys, char *const *values,
                      int n, char *err, size_t errlen);

/* A seed in [0, 2^32 - 1) from /dev/urandom (the clock when it cannot be read), as the
 * reference draws one for seed=null. */
uint64_t core_draw_seed(void);

#endif
