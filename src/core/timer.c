/* Monotonic and wall-clock time helpers (see timer.h). Local time goes through localtime_r so
 * the helpers are safe to call from several threads. */
#include "core/timer.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

double core_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

char *core_local_time_format(char *out, size_t outlen, time_t t, const char *fmt) {
    if (outlen == 0) return out;
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, outlen, fmt, &tm) == 0) out[0] = '\0';
    return out;
}

char *core_wall_time_string(char *out, size_t outlen, time_t t) {
    return core_local_time_format(out, outlen, t, "%Y-%m-%d %H:%M:%S");
}

char *core_duration_string(char *out, size_t outlen, double seconds) {
    if (!(seconds >= 0) || isinf(seconds)) {
        snprintf(out, outlen, "?");
        return out;
    }
    if (seconds < 60) {
        snprintf(out, outlen, "%.1fs", seconds);
        return out;
    }
    unsigned long long s = (unsigned long long)seconds;
    if (s < 3600)
        snprintf(out, outlen, "%llum%02llus", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, outlen, "%lluh%02llum", s / 3600, (s % 3600) / 60);
    else
        snprintf(out, outlen, "%llud%02lluh", s / 86400, (s % 86400) / 3600);
    return out;
}
