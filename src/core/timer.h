/* Clocks: a monotonic clock for measuring durations (training budget, throughput) and local
 * wall-clock strings for log lines and output folder names. */
#ifndef CRAM_CORE_TIMER_H
#define CRAM_CORE_TIMER_H

#include <stddef.h>
#include <time.h>

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC): never jumps when the system clock
 * is set, so budgets and rates measured with it stay right. */
double core_now(void);

/* Format t as local time with strftime's fmt; returns out (empty string on failure). */
char *core_local_time_format(char *out, size_t outlen, time_t t, const char *fmt);

/* "YYYY-MM-DD HH:MM:SS" in local time; out should hold at least 20 bytes. */
char *core_wall_time_string(char *out, size_t outlen, time_t t);

/* A duration for humans: "42.0s", "3m05s", "2h07m", "1d03h". Negative or NaN gives "?". */
char *core_duration_string(char *out, size_t outlen, double seconds);

#endif
