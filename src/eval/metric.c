/* GLUE metrics as HF `evaluate` computes them (sklearn accuracy/F1/MCC, scipy Pearson/Spearman),
 * the 9-number GLUE means and the reference's bad-score substitute. Sums run in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

double metric_accuracy(const int32_t *pred, const int32_t *ref, size_t n) {
    if (n == 0) return NAN;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += pred[i] == ref[i];
    return (double)ok / (double)n;
}

double metric_f1(const int32_t *pred, const int32_t *ref, size_t n) {
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        tp += pred[i] == 1 && ref[i] == 1;
        fp += pred[i] == 1 && ref[i] != 1;
        fn += pred[i] != 1 && ref[i] == 1;
    }
    if (tp == 0) return 0.0; /* sklearn's zero_division result (also when precision is 0/0) */
    return 2.0 * (double)tp / (double)(2 * tp + fp + fn);
}

/* sklearn's multi-class form; for two classes it is the usual (tp*tn - fp*fn)/sqrt(...) */
double metric_mcc(const int32_t *pred, const int32_t *ref, size_t n, int nclasses) {
    if (nclasses < 2) nclasses = 2;
    double *tsum = calloc((size_t)nclasses, sizeof *tsum),
           *psum = calloc((size_t)nclasses, sizeof *psum);
    double correct = 0, N = 0;
    for (size_t i = 0; i < n; i++) {
        if (ref[i] < 0 || ref[i] >= nclasses || pred[i] < 0 || pred[i] >= nclasses) continue;
        tsum[ref[i]] += 1, psum[pred[i]] += 1, N += 1;
        correct += pred[i] == ref[i];
    }
    double tp = 0, pp = 0, tt = 0;
    for (int c = 0; c < nclasses; c++) {
        tp += tsum[c] * psum[c];
        pp += psum[c] * psum[c];
        tt += tsum[c] * tsum[c];
    }
    free(tsum), free(psum);
    double cov_tp = correct * N - tp, cov_pp = N * N - pp, cov_tt = N * N - tt;
    if (cov_pp * cov_tt == 0) return 0.0;
    return cov_tp / sqrt(cov_tt * cov_pp);
}

double metric_pearson(const double *x, const double *y, size_t n) {
    if (n < 2) return NAN;
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++)
        mx += x[i], my += y[i];
    mx /= (double)n, my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
    }
    if (sxx == 0 || syy == 0) return NAN;
    double r = sxy / (sqrt(sxx) * sqrt(syy));
    return r > 1 ? 1 : r < -1 ? -1 : r; /* scipy clips too */
}

static const double *rank_key;
static int rank_cmp(const void *a, const void *b) {
    double x = rank_key[*(const size_t *)a], y = rank_key[*(const size_t *)b];
    if (x < y) return -1;
    if (x > y) return 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* average ranks (1-based), ties share the mean of their positions, as scipy.stats.rankdata */
static void avg_ranks(const double *x, size_t n, double *r) {
    size_t *ord = malloc(n * sizeof *ord);
    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    rank_key = x;
    qsort(ord, n, sizeof *ord, rank_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && x[ord[j + 1]] == x[ord[i]])
            j++;
        double avg = 0.5 * (double)(i + j) + 1.0;
        for (size_t k = i; k <= j; k++)
            r[ord[k]] = avg;
        i = j + 1;
    }
    free(ord);
}

double metric_spearman(const double *x, const double *y, size_t n) {
    if (n < 2) return NAN;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i])) return NAN;
    double *rx = malloc(n * sizeof *rx), *ry = malloc(n * sizeof *ry);
    avg_ranks(x, n, rx);
    avg_ranks(y, n, ry);
    double r = metric_pearson(rx, ry, n);
    free(rx), free(ry);
    return r;
}

double metric_amean(const double *v, int n) {
    if (n <= 0) return NAN;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s / n;
}

double metric_hmean(const double *v, int n) {
    if (n <= 0) return NAN;
    double s = 0;
    for (int i = 0; i < n; i++) {
        if (!(v[i] > 0)) return 0.0;
        s += 1.0 / v[i];
    }
    return n / s;
}

const char *metric_name(metric_kind k) {
    switch (k) {
    case METRIC_ACCURACY:
        return "accuracy";
    case METRIC_F1:
        return "f1";
    case METRIC_MCC:
        return "matthews_correlation";
    case METRIC_PEARSON:
        return "pearson";
    case METRIC_SPEARMAN:
        return "spearmanr";
    }
    return "?";
}

double metric_bad_score(metric_kind k) {
    const int32_t p[2] = {0, 1}, r[2] = {1, 0};
    const double pd[2] = {0, 1}, rd[2] = {1, 0};
    switch (k) {
    case METRIC_ACCURACY:
        return metric_accuracy(p, r, 2);
    case METRIC_F1:
        return metric_f1(p, r, 2);
    case METRIC_MCC:
        return metric_mcc(p, r, 2, 2);
    case METRIC_PEARSON:
        return metric_pearson(pd, rd, 2);
    case METRIC_SPEARMAN:
        return metric_spearman(pd, rd, 2);
    }
    return NAN;
}

double metric_compute(metric_kind k, const int32_t *ipred, const int32_t *iref, const float *fpred,
                      const float *fref, size_t n, int nclasses, bool *substituted) {
    double v = NAN;
    if (k == METRIC_PEARSON || k == METRIC_SPEARMAN) {
        double *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y);
        bool finite = true;
        for (size_t i = 0; i < n; i++) {
            x[i] = fpred[i], y[i] = fref[i];
            finite = finite && isfinite(x[i]);
        }
        if (finite) v = k == METRIC_PEARSON ? metric_pearson(x, y, n) : metric_spearman(x, y, n);
        free(x), free(y);
    } else if (k == METRIC_ACCURACY) {
        v = metric_accuracy(ipred, iref, n);
    } else if (k == METRIC_F1) {
        v = metric_f1(ipred, iref, n);
    } else if (k == METRIC_MCC) {
        v = metric_mcc(ipred, iref, n, nclasses);
    }
    bool bad = !isfinite(v);
    if (substituted) *substituted = bad;
    return bad ? metric_bad_score(k) : v;
}
