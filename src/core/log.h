/* The process-wide logger: one line per message, "[YYYY-MM-DD HH:MM:SS] message", written to the
 * terminal and, once a file is opened, the same line to the log file. Rank-aware so that a
 * data-parallel run prints its progress once, and thread-safe (one mutex). */
#ifndef CRAM_CORE_LOG_H
#define CRAM_CORE_LOG_H

#include "core/check.h"

#include <stdarg.h>

typedef enum core_log_level {
    CORE_LOG_INFO,
    CORE_LOG_WARN,
    CORE_LOG_ERROR,
} core_log_level;

/* Rank 0 prints everything; other ranks print only warnings and errors, prefixed "[rank r]".
 * Before this is called the logger behaves as rank 0. */
void core_log_init(int rank);
int core_log_rank(void);

/* Append to path (a resumed run keeps one log). Returns 0, or -1 with errno set. Replaces a log
 * file opened earlier. */
int core_log_open_file(const char *path);
void core_log_close(void);

/* Info goes to stdout; warnings and errors go to stderr (stdout is flushed first, so a terminal
 * shows them in order) so that they are seen even when stdout is redirected. Each line is
 * flushed to the log file at once: a crash must not eat the lines that explain it. */
void core_log_info(const char *fmt, ...) CORE_PRINTF(1, 2);
void core_log_warn(const char *fmt, ...) CORE_PRINTF(1, 2);
void core_log_error(const char *fmt, ...) CORE_PRINTF(1, 2);
void core_log_v(core_log_level level, const char *fmt, va_list ap) CORE_PRINTF(2, 0);

#endif
