/* What runs report besides their log lines: durations printed like Python's timedelta, rows of
 * the tab-separated summary tables, and a seed drawn when the config leaves it null. */
#include "core/report.h"

#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void core_format_timedelta(char *out, size_t outlen, double seconds) {
    if (!(seconds >= 0) || seconds > 1e15) {
        snprintf(out, outlen, "?");
        return;
    }
    long long us = llround(seconds * 1e6);
    long long days = us / 86400000000LL;
    us -= days * 86400000000LL;
    long long h = us / 3600000000LL, m = us / 60000000LL % 60, s = us / 1000000 % 60,
              frac = us % 1000000;
    char day[32] = "";
    if (days) snprintf(day, sizeof day, "%lld day%s, ", days, days == 1 ? "" : "s");
    if (frac)
        snprintf(out, outlen, "%s%lld:%02lld:%02lld.%06lld", day, h, m, s, frac);
    else
        snprintf(out, outlen, "%s%lld:%02lld:%02lld", day, h, m, s);
}

static void put_field(FILE *f, const char *s) {
    for (; *s; s++)
        fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

int core_table_append(const char *dir, const char *table, char *const *keys, char *const *values,
                      int n, char *err, size_t errlen) {
    if (core_mkdir_p(dir, err, errlen)) return -1;
    char path[CORE_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/table_%s.csv", dir, table) >= (int)sizeof path) {
        snprintf(err, errlen, "table path too long under %s", dir);
        return -1;
    }
    FILE *f = fopen(path, "a+");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    fseek(f, 0, SEEK_END);
    if (ftell(f) == 0) {
        for (int i = 0; i < n; i++) {
            if (i) fputc('\t', f);
            put_field(f, keys[i]);
        }
        fputc('\n', f);
    }
    for (int i = 0; i < n; i++) {
        if (i) fputc('\t', f);
        put_field(f, values[i] ? values[i] : "");
    }
    fputc('\n', f);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

uint64_t core_draw_seed(void) {
    uint32_t x = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, &x, sizeof x) != (ssize_t)sizeof x) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint32_t)(ts.tv_nsec ^ ts.tv_sec * 2654435761u ^ (uint32_t)getpid() * 40503u);
    }
    if (fd >= 0) close(fd);
    return x == UINT32_MAX ? 0 : x; /* [0, 2^32 - 1) as the reference */
}
