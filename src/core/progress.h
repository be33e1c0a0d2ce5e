/* A progress report for long host-side jobs (tokenizing, packing, shuffling). On a terminal it
 * redraws one line in place, at most ~10 times a second; into a file or pipe it prints a plain
 * line per 10% (every 10 s when the total is unknown), so log files never fill with \r frames.
 * Only rank 0 prints. One progress report belongs to one thread. */
#ifndef CRAM_CORE_PROGRESS_H
#define CRAM_CORE_PROGRESS_H

#include <stdint.h>

typedef struct core_progress {
    char label[64];
    uint64_t total; /* 0 = unknown: show the count and the rate only */
    uint64_t done;
    double t_start;
    double t_last_print;
    int tty;          /* stdout is a terminal when init ran */
    int silent;       /* not rank 0 */
    int tenths_shown; /* not a terminal: the last 10% mark printed */
    int finished;
} core_progress;

void core_progress_init(core_progress *p, const char *label, uint64_t total);
/* done is the absolute count so far, not an increment. */
void core_progress_update(core_progress *p, uint64_t done);
/* Prints the final line (count, time, rate); later calls to update or finish do nothing. */
void core_progress_finish(core_progress *p);

#endif
