/* The logger behind log.h. Lines are formatted into one stack buffer and written with a single
 * call per stream under a mutex, so threads never interleave halves of lines and logging never
 * allocates. */
#include "core/log.h"

#include "core/timer.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A logger is inherently process-wide; this is the module's only state. */
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static int log_rank;
static FILE *log_file;

void core_log_init(int rank) {
    pthread_mutex_lock(&log_mutex);
    log_rank = rank;
    pthread_mutex_unlock(&log_mutex);
}

int core_log_rank(void) {
    pthread_mutex_lock(&log_mutex);
    int r = log_rank;
    pthread_mutex_unlock(&log_mutex);
    return r;
}

int core_log_open_file(const char *path) {
    FILE *fp = fopen(path, "a");
    if (!fp) return -1;
    pthread_mutex_lock(&log_mutex);
    FILE *old = log_file;
    log_file = fp;
    pthread_mutex_unlock(&log_mutex);
    if (old) fclose(old);
    return 0;
}

void core_log_close(void) {
    pthread_mutex_lock(&log_mutex);
    FILE *old = log_file;
    log_file = NULL;
    pthread_mutex_unlock(&log_mutex);
    if (old) fclose(old);
}

void core_log_v(core_log_level level, const char *fmt, va_list ap) {
    char line[4096];
    char stamp[32];
    core_wall_time_string(stamp, sizeof stamp, time(NULL));

    pthread_mutex_lock(&log_mutex);
    int rank = log_rank;
    if (rank != 0 && level == CORE_LOG_INFO) {
        pthread_mutex_unlock(&log_mutex);
        return;
    }
    char rank_tag[32] = "";
    if (rank != 0) snprintf(rank_tag, sizeof rank_tag, "[rank %d] ", rank);
    const char *kind = level == CORE_LOG_WARN    ? "warning: "
                       : level == CORE_LOG_ERROR ? "error: "
                                                 : "";

    int head = snprintf(line, sizeof line, "[%s] %s%s", stamp, rank_tag, kind);
    int body = vsnprintf(line + head, sizeof line - (size_t)head, fmt, ap);
    size_t len = (size_t)head + (body > 0 ? (size_t)body : 0);
    if (len > sizeof line - 2) {
        /* Truncated: say so rather than silently cutting a message. */
        len = sizeof line - 2;
        memcpy(line + len - 3, "...", 3);
    }
    line[len++] = '\n';
    line[len] = '\0';

    if (level == CORE_LOG_INFO) {
        fputs(line, stdout);
        fflush(stdout);
    } else {
        fflush(stdout);
        fputs(line, stderr);
        fflush(stderr);
    }
    if (log_file) {
        fputs(line, log_file);
        fflush(log_file);
    }
    pthread_mutex_unlock(&log_mutex);
}

void core_log_info(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    core_log_v(CORE_LOG_INFO, fmt, ap);
    va_end(ap);
}

void core_log_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    core_log_v(CORE_LOG_WARN, fmt, ap);
    va_end(ap);
}

void core_log_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    core_log_v(CORE_LOG_ERROR, fmt, ap);
    va_end(ap);
}
