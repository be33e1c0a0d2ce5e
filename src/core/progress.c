/* Progress lines (see progress.h). Terminal and file output differ on purpose: a terminal wants
 * one live line, a log file wants a few complete lines it can be grepped for. */
#include "core/progress.h"

#include "core/log.h"
#include "core/timer.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TTY_REDRAW_S 0.1
#define UNKNOWN_TOTAL_PRINT_S 10.0
#define BAR_WIDTH 20

void core_progress_init(core_progress *p, const char *label, uint64_t total) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->t_start = core_now();
    p->t_last_print = p->t_start;
    p->tty = isatty(fileno(stdout));
    p->silent = core_log_rank() != 0;
}

static void rate_string(char *out, size_t n, double rate) {
    if (rate >= 1e9)
        snprintf(out, n, "%.2fG/s", rate * 1e-9);
    else if (rate >= 1e6)
        snprintf(out, n, "%.2fM/s", rate * 1e-6);
    else if (rate >= 1e4)
        snprintf(out, n, "%.1fk/s", rate * 1e-3);
    else
        snprintf(out, n, "%.1f/s", rate);
}

/* Percent, rate and ETA of the state at time now, in the form both outputs share. */
static void describe(const core_progress *p, double now, char *out, size_t n) {
    double elapsed = now - p->t_start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    char rate_s[32];
    rate_string(rate_s, sizeof rate_s, rate);
    if (p->total == 0) {
        snprintf(out, n, "%llu (%s)", (unsigned long long)p->done, rate_s);
        return;
    }
    double frac = p->done >= p->total ? 1.0 : (double)p->done / (double)p->total;
    char eta[32];
    if (rate > 0)
        core_duration_string(eta, sizeof eta, (double)(p->total - p->done) / rate);
    else
        snprintf(eta, sizeof eta, "?");
    if (p->done >= p->total) snprintf(eta, sizeof eta, "0s");
    snprintf(out, n, "%.1f%% %llu/%llu (%s, ETA %s)", 100.0 * frac, (unsigned long long)p->done,
             (unsigned long long)p->total, rate_s, eta);
}

static void draw_tty(const core_progress *p, double now) {
    char text[192];
    describe(p, now, text, sizeof text);
    char bar[BAR_WIDTH + 1] = "";
    if (p->total > 0) {
        uint64_t filled = p->done >= p->total ? BAR_WIDTH : p->done * BAR_WIDTH / p->total;
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[i] = (uint64_t)i < filled ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
    }
    /* ESC[K clears what a longer previous frame left at the end of the line. */
    printf("\r%s %s%s%s %s\033[K", p->label, p->total ? "[" : "", bar, p->total ? "]" : "", text);
    fflush(stdout);
}

void core_progress_update(core_progress *p, uint64_t done) {
    if (p->finished || p->silent) return;
    p->done = done;
    double now = core_now();
    if (p->tty) {
        int complete = p->total > 0 && done >= p->total;
        if (now - p->t_last_print >= TTY_REDRAW_S || complete) {
            draw_tty(p, now);
            p->t_last_print = now;
        }
        return;
    }
    char text[192];
    if (p->total == 0) {
        if (now - p->t_last_print >= UNKNOWN_TOTAL_PRINT_S) {
            describe(p, now, text, sizeof text);
            printf("%s: %s\n", p->label, text);
            fflush(stdout);
            p->t_last_print = now;
        }
        return;
    }
    /* 10%..90% here; 100% is the finish line, so a finished job is not reported twice. When
     * an update jumps several marks, only the latest is printed. */
    int tenths = done >= p->total ? 10 : (int)(done * 10 / p->total);
    if (tenths > p->tenths_shown && tenths < 10) {
        p->tenths_shown = tenths;
        describe(p, now, text, sizeof text);
        printf("%s: %s\n", p->label, text);
        fflush(stdout);
        p->t_last_print = now;
    }
}

void core_progress_finish(core_progress *p) {
    if (p->finished) return;
    p->finished = 1;
    if (p->silent) return;
    double elapsed = core_now() - p->t_start;
    char count[64], took[32], rate_s[32];
    if (p->total > 0 && p->done != p->total)
        snprintf(count, sizeof count, "%llu/%llu", (unsigned long long)p->done,
                 (unsigned long long)p->total);
    else
        snprintf(count, sizeof count, "%llu", (unsigned long long)p->done);
    core_duration_string(took, sizeof took, elapsed);
    rate_string(rate_s, sizeof rate_s, elapsed > 0 ? (double)p->done / elapsed : 0);
    printf("%s%s: done, %s in %s (%s)%s\n", p->tty ? "\r" : "", p->label, count, took, rate_s,
           p->tty ? "\033[K" : "");
    fflush(stdout);
}
