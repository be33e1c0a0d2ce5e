/* What a pretraining run reports besides its log lines: the FLOP count behind the MFU figure,
 * durations printed like Python's timedelta, and rows of the tab-separated summary tables. */
#include "train/train.h"

#include "core/core.h"
#include "model/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

double train_flops_per_token(const bert_config *c, int S) {
    double L = c->L, H = c->H, I = c->I, V = c->V;
    double ffn = c->glu ? 1.5 * H * I : 2.0 * H * I;
    double share = c->sparse_pred > 0 ? c->sparse_pred : 1.0; /* decoded share of the rows */
    double head = c->head_transform ? H * H : 0.0;
    double n_eff = L * (4.0 * H * H + ffn) + share * (V * H + head);
    return 6.0 * n_eff + 12.0 * L * S * H;
}

void train_format_timedelta(char *out, size_t outlen, double seconds) {
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

int train_table_append(const char *dir, const char *table, char *const *keys, char *const *values,
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
