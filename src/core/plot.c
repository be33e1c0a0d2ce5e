/* Line plots as PNG (plot.h): a palette canvas, a 5x7 font, then a small PNG encoder.
 *
 * Why no libpng: the image is written once at the end of a run, and the encoder it needs is
 * short (chunks with a CRC-32, a zlib stream with an Adler-32, deflate with the fixed Huffman
 * code and matches against the pixel to the left and the one above, which is what a plot of
 * flat colours compresses with: about 10 kB instead of 400 kB stored). A library would be
 * one more to install and to carry to the GPU build machines. tests/test_report.c decodes the
 * images with libpng when it is installed. */
#include "core/plot.h"

#include "core/check.h"
#include "core/fileio.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W PLOT_WIDTH
#define H PLOT_HEIGHT
#define SCALE 2 /* every text is the 5x7 font drawn with 2x2 pixels */
#define ADV (6 * SCALE)
#define TEXT_H (8 * SCALE)

enum { C_BG, C_FG, C_GRID, C_LEGEND, C_SERIES }; /* palette indices; series colours follow */
static const uint32_t series_rgb[] = PLOT_SERIES_COLORS;
#define NCOLORS ((int)(sizeof series_rgb / sizeof series_rgb[0]))

/* Printable ASCII 0x20..0x7E, 5 columns each, bit 0 the top row; rows 0-6 above the baseline,
 * row 7 for the descenders of g, j, p, q and y. */
static const uint8_t font[95][5] = {
    {0x00, 0x00, 0x00, 0x00, 0x00}, {0x00, 0x00, 0x5F, 0x00, 0x00}, {0x00, 0x07, 0x00, 0x07, 0x00},
    {0x14, 0x7F, 0x14, 0x7F, 0x14}, {0x24, 0x2A, 0x7F, 0x2A, 0x12}, {0x23, 0x13, 0x08, 0x64, 0x62},
    {0x36, 0x49, 0x55, 0x22, 0x50}, {0x00, 0x05, 0x03, 0x00, 0x00}, {0x00, 0x1C, 0x22, 0x41, 0x00},
    {0x00, 0x41, 0x22, 0x1C, 0x00}, {0x08, 0x2A, 0x1C, 0x2A, 0x08}, {0x08, 0x08, 0x3E, 0x08, 0x08},
    {0x00, 0x50, 0x30, 0x00, 0x00}, {0x08, 0x08, 0x08, 0x08, 0x08}, {0x00, 0x60, 0x60, 0x00, 0x00},
    {0x20, 0x10, 0x08, 0x04, 0x02}, {0x3E, 0x51, 0x49, 0x45, 0x3E}, {0x00, 0x42, 0x7F, 0x40, 0x00},
    {0x42, 0x61, 0x51, 0x49, 0x46}, {0x21, 0x41, 0x45, 0x4B, 0x31}, {0x18, 0x14, 0x12, 0x7F, 0x10},
    {0x27, 0x45, 0x45, 0x45, 0x39}, {0x3C, 0x4A, 0x49, 0x49, 0x30}, {0x01, 0x71, 0x09, 0x05, 0x03},
    {0x36, 0x49, 0x49, 0x49, 0x36}, {0x06, 0x49, 0x49, 0x29, 0x1E}, {0x00, 0x36, 0x36, 0x00, 0x00},
    {0x00, 0x56, 0x36, 0x00, 0x00}, {0x08, 0x14, 0x22, 0x41, 0x00}, {0x14, 0x14, 0x14, 0x14, 0x14},
    {0x00, 0x41, 0x22, 0x14, 0x08}, {0x02, 0x01, 0x51, 0x09, 0x06}, {0x32, 0x49, 0x79, 0x41, 0x3E},
    {0x7E, 0x11, 0x11, 0x11, 0x7E}, {0x7F, 0x49, 0x49, 0x49, 0x36}, {0x3E, 0x41, 0x41, 0x41, 0x22},
    {0x7F, 0x41, 0x41, 0x22, 0x1C}, {0x7F, 0x49, 0x49, 0x49, 0x41}, {0x7F, 0x09, 0x09, 0x09, 0x01},
    {0x3E, 0x41, 0x49, 0x49, 0x7A}, {0x7F, 0x08, 0x08, 0x08, 0x7F}, {0x00, 0x41, 0x7F, 0x41, 0x00},
    {0x20, 0x40, 0x41, 0x3F, 0x01}, {0x7F, 0x08, 0x14, 0x22, 0x41}, {0x7F, 0x40, 0x40, 0x40, 0x40},
    {0x7F, 0x02, 0x0C, 0x02, 0x7F}, {0x7F, 0x04, 0x08, 0x10, 0x7F}, {0x3E, 0x41, 0x41, 0x41, 0x3E},
    {0x7F, 0x09, 0x09, 0x09, 0x06}, {0x3E, 0x41, 0x51, 0x21, 0x5E}, {0x7F, 0x09, 0x19, 0x29, 0x46},
    {0x46, 0x49, 0x49, 0x49, 0x31}, {0x01, 0x01, 0x7F, 0x01, 0x01}, {0x3F, 0x40, 0x40, 0x40, 0x3F},
    {0x1F, 0x20, 0x40, 0x20, 0x1F}, {0x3F, 0x40, 0x38, 0x40, 0x3F}, {0x63, 0x14, 0x08, 0x14, 0x63},
    {0x07, 0x08, 0x70, 0x08, 0x07}, {0x61, 0x51, 0x49, 0x45, 0x43}, {0x00, 0x7F, 0x41, 0x41, 0x00},
    {0x02, 0x04, 0x08, 0x10, 0x20}, {0x00, 0x41, 0x41, 0x7F, 0x00}, {0x04, 0x02, 0x01, 0x02, 0x04},
    {0x40, 0x40, 0x40, 0x40, 0x40}, {0x00, 0x01, 0x02, 0x04, 0x00}, {0x20, 0x54, 0x54, 0x54, 0x78},
    {0x7F, 0x48, 0x44, 0x44, 0x38}, {0x38, 0x44, 0x44, 0x44, 0x20}, {0x38, 0x44, 0x44, 0x48, 0x7F},
    {0x38, 0x54, 0x54, 0x54, 0x18}, {0x08, 0x7E, 0x09, 0x01, 0x02}, {0x98, 0xA4, 0xA4, 0xA4, 0x7C},
    {0x7F, 0x08, 0x04, 0x04, 0x78}, {0x00, 0x44, 0x7D, 0x40, 0x00}, {0x00, 0x80, 0x80, 0x7D, 0x00},
    {0x7F, 0x10, 0x28, 0x44, 0x00}, {0x00, 0x41, 0x7F, 0x40, 0x00}, {0x7C, 0x04, 0x18, 0x04, 0x78},
    {0x7C, 0x08, 0x04, 0x04, 0x78}, {0x38, 0x44, 0x44, 0x44, 0x38}, {0xFC, 0x24, 0x24, 0x24, 0x18},
    {0x18, 0x24, 0x24, 0x24, 0xFC}, {0x7C, 0x08, 0x04, 0x04, 0x08}, {0x48, 0x54, 0x54, 0x54, 0x20},
    {0x04, 0x3F, 0x44, 0x40, 0x20}, {0x3C, 0x40, 0x40, 0x20, 0x7C}, {0x1C, 0x20, 0x40, 0x20, 0x1C},
    {0x3C, 0x40, 0x30, 0x40, 0x3C}, {0x44, 0x28, 0x10, 0x28, 0x44}, {0x9C, 0xA0, 0xA0, 0xA0, 0x7C},
    {0x44, 0x64, 0x54, 0x4C, 0x44}, {0x00, 0x08, 0x36, 0x41, 0x00}, {0x00, 0x00, 0x7F, 0x00, 0x00},
    {0x00, 0x41, 0x36, 0x08, 0x00}, {0x10, 0x08, 0x08, 0x10, 0x08},
};

/* ---- the canvas ---- */

typedef struct canvas {
    uint8_t *px;            /* W*H palette indices */
    int cx0, cy0, cx1, cy1; /* drawing is clipped to this rectangle (inclusive) */
} canvas;

static void dot(canvas *c, int x, int y, uint8_t col) {
    if (x >= c->cx0 && x <= c->cx1 && y >= c->cy0 && y <= c->cy1) c->px[(size_t)y * W + x] = col;
}

static void fill(canvas *c, int x0, int y0, int x1, int y1, uint8_t col) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            dot(c, x, y, col);
}

/* Bresenham, every point drawn as a pen x pen square */
static void line(canvas *c, int x0, int y0, int x1, int y1, uint8_t col, int pen) {
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        fill(c, x0, y0, x0 + pen - 1, y0 + pen - 1, col);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

static int text_width(const char *s) {
    size_t n = s ? strlen(s) : 0;
    return n ? (int)n * ADV - SCALE : 0;
}

/* Text with its top-left corner at (x, y); vertical text reads upwards from (x, y), its first
 * character's bottom-left corner (glyph tops to the left). */
static void text(canvas *c, int x, int y, const char *s, uint8_t col, bool vertical) {
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        const uint8_t *g = font[(ch < 0x20 || ch > 0x7E ? '?' : ch) - 0x20];
        for (int i = 0; i < 5; i++)
            for (int r = 0; r < 8; r++) {
                if (!(g[i] >> r & 1)) continue;
                if (vertical)
                    fill(c, x + r * SCALE, y - (i + 1) * SCALE, x + (r + 1) * SCALE - 1,
                         y - i * SCALE - 1, col);
                else
                    fill(c, x + i * SCALE, y + r * SCALE, x + (i + 1) * SCALE - 1,
                         y + (r + 1) * SCALE - 1, col);
            }
        if (vertical)
            y -= ADV;
        else
            x += ADV;
    }
}

/* ---- axes ---- */

static double nice_step(double range, int target) {
    double raw = range / target;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* A tick label: fixed point with as many decimals as the step needs, or "1.5e6" style for very
 * large or very small numbers. */
static void tick_label(char *buf, size_t n, double v, double step, double maxabs) {
    if (fabs(v) < step * 1e-6) v = 0;
    int e = (int)floor(log10(step) + 1e-9);
    bool sci = maxabs >= 1e6 || maxabs < 1e-3;
    if (sci && v == 0) {
        snprintf(buf, n, "0");
    } else if (sci) {
        int digits = (int)floor(log10(maxabs) + 1e-9) - e;
        digits = digits < 0 ? 0 : digits > 6 ? 6 : digits;
        snprintf(buf, n, "%.*e", digits, v);
        /* "1.5e+06" -> "1.5e6", "2e-05" -> "2e-5" */
        char *x = strchr(buf, 'e');
        if (x) {
            char *src = x + 1, *dst = x + 1;
            if (*src == '+')
                src++;
            else if (*src == '-')
                *dst++ = *src++;
            while (*src == '0' && src[1])
                src++;
            memmove(dst, src, strlen(src) + 1);
        }
    } else {
        snprintf(buf, n, "%.*f", e < 0 ? -e : 0, v);
    }
}

typedef struct axis {
    double lo, hi, step, maxabs;
    int nticks;
    double ticks[64];
    char labels[64][32];
} axis;

static void axis_ticks(axis *a) {
    a->nticks = 0;
    a->step = nice_step(a->hi - a->lo, 6);
    a->maxabs = fmax(fabs(a->lo), fabs(a->hi));
    if (!(a->step > 0) || !isfinite(a->step)) return;
    for (double k = ceil(a->lo / a->step - 1e-9); a->nticks < 64; k++) {
        double v = k * a->step;
        if (v > a->hi + a->step * 1e-9) break;
        a->ticks[a->nticks] = v;
        tick_label(a->labels[a->nticks], sizeof a->labels[0], v, a->step, a->maxabs);
        a->nticks++;
    }
}

/* the range of the finite values, widened when empty or a single value */
static void axis_range(axis *a, double pad) {
    if (!(a->lo <= a->hi)) a->lo = 0, a->hi = 1;
    double d = (a->hi - a->lo) * pad;
    if (a->hi == a->lo) d = a->lo != 0 ? fabs(a->lo) * 0.05 : 0.5;
    a->lo -= d;
    a->hi += d;
}

static int to_px(double v) {
    if (!(v > -1e6)) v = -1e6; /* also NaN */
    if (!(v < 1e6)) v = 1e6;
    return (int)lround(v);
}

/* ---- PNG encoding ---- */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
    uint64_t bits; /* deflate's bit writer: pending bits, LSB first */
    int nbits;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    core_bytes_append(&b->p, &b->n, &b->cap, src, n);
}

static void put_be32(bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static void put_bits(bytes *b, uint32_t v, int n) {
    b->bits |= (uint64_t)v << b->nbits;
    b->nbits += n;
    while (b->nbits >= 8) {
        uint8_t x = (uint8_t)b->bits;
        put(b, &x, 1);
        b->bits >>= 8;
        b->nbits -= 8;
    }
}

/* Huffman codes go most significant bit first */
static void put_code(bytes *b, uint32_t code, int len) {
    uint32_t r = 0;
    for (int i = 0; i < len; i++)
        r |= ((code >> i) & 1u) << (len - 1 - i);
    put_bits(b, r, len);
}

/* a literal/length symbol of the fixed code (RFC 1951 3.2.6) */
static void put_sym(bytes *b, int sym) {
    if (sym < 144)
        put_code(b, 0x30u + (uint32_t)sym, 8);
    else if (sym < 256)
        put_code(b, 0x190u + (uint32_t)(sym - 144), 9);
    else if (sym < 280)
        put_code(b, (uint32_t)(sym - 256), 7);
    else
        put_code(b, 0xC0u + (uint32_t)(sym - 280), 8);
}

static const uint16_t len_base[29] = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                      15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                      67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {
    1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static void put_match(bytes *b, int len, int dist) {
    int i = 28;
    while (len_base[i] > len)
        i--;
    put_sym(b, 257 + i);
    put_bits(b, (uint32_t)(len - len_base[i]), len_extra[i]);
    int d = 29;
    while (dist_base[d] > dist)
        d--;
    put_code(b, (uint32_t)d, 5);
    put_bits(b, (uint32_t)(dist - dist_base[d]), dist_extra[d]);
}

/* One final fixed-Huffman block; matches only at distance 1 and at the row stride. */
static void deflate_fixed(bytes *b, const uint8_t *d, size_t n, size_t stride) {
    put_bits(b, 1, 1); /* BFINAL */
    put_bits(b, 1, 2); /* BTYPE 01: fixed codes */
    size_t i = 0;
    while (i < n) {
        size_t best = 0, bestd = 0, dists[2] = {1, stride};
        for (int k = 0; k < 2; k++) {
            size_t dd = dists[k], m = 0;
            if (dd > i || dd > 32768) continue;
            while (m < 258 && i + m < n && d[i + m] == d[i + m - dd])
                m++;
            if (m > best) best = m, bestd = dd;
        }
        if (best >= 3) {
            put_match(b, (int)best, (int)bestd);
            i += best;
        } else {
            put_sym(b, d[i++]);
        }
    }
    put_sym(b, 256);
    if (b->nbits) put_bits(b, 0, 8 - b->nbits);
}

static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

static void put_chunk(bytes *png, const char type[4], const bytes *data) {
    put_be32(png, (uint32_t)data->n);
    size_t at = png->n;
    put(png, type, 4);
    if (data->n) put(png, data->p, data->n);
    put_be32(png, crc32_png(png->p + at, png->n - at));
}

static void encode_png(bytes *png, const uint8_t *px, const uint32_t *pal, int npal) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    put(png, sig, 8);
    bytes c = {0};
    put_be32(&c, W);
    put_be32(&c, H);
    uint8_t ihdr[5] = {8, 3, 0, 0,
                       0}; /* depth 8, palette, deflate, adaptive filters, no interlace */
    put(&c, ihdr, 5);
    put_chunk(png, "IHDR", &c);
    c.n = 0;
    for (int i = 0; i < npal; i++) {
        uint8_t rgb[3] = {(uint8_t)(pal[i] >> 16), (uint8_t)(pal[i] >> 8), (uint8_t)pal[i]};
        put(&c, rgb, 3);
    }
    put_chunk(png, "PLTE", &c);
    /* the filtered rows: filter type 0, then the row */
    size_t stride = (size_t)W + 1, n = stride * H;
    uint8_t *raw = xmalloc(n);
    for (int y = 0; y < H; y++) {
        raw[(size_t)y * stride] = 0;
        memcpy(raw + (size_t)y * stride + 1, px + (size_t)y * W, W);
    }
    uint32_t a = 1, s = 0; /* Adler-32 */
    for (size_t i = 0; i < n; i++) {
        a = (a + raw[i]) % 65521u;
        s = (s + a) % 65521u;
    }
    c.n = 0;
    /* zlib header: deflate, 32K window, no dictionary; (0x78 << 8 | 0x01) % 31 == 0 */
    uint8_t zhdr[2] = {0x78, 0x01};
    put(&c, zhdr, 2);
    deflate_fixed(&c, raw, n, stride);
    put_be32(&c, s << 16 | a);
    put_chunk(png, "IDAT", &c);
    c.n = 0;
    put_chunk(png, "IEND", &c);
    free(c.p);
    free(raw);
}

/* ---- the plot ---- */

int plot_png_series(const char *path, const char *title, const char *xlabel, const char *ylabel,
                    const plot_series *s, int ns, char *err, size_t errlen) {
    if (ns < 0 || (ns > 0 && !s)) return core_errorf(err, errlen, "plot: no series given");
    for (int k = 0; k < ns; k++)
        if (s[k].n < 0 || (s[k].n > 0 && (!s[k].x || !s[k].y)))
            return core_errorf(err, errlen, "plot: series %d has no data", k);
    axis *ax = xcalloc(2, sizeof *ax), *ay = ax + 1;
    ax->lo = ay->lo = INFINITY;
    ax->hi = ay->hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            ax->lo = fmin(ax->lo, x), ax->hi = fmax(ax->hi, x);
            ay->lo = fmin(ay->lo, y), ay->hi = fmax(ay->hi, y);
        }
    bool markers = false; /* markers are padded in, not cut at the frame */
    for (int k = 0; k < ns; k++)
        markers |= s[k].points && s[k].n > 0;
    axis_range(ax, markers ? 0.02 : 0);
    axis_range(ay, 0.05);
    axis_ticks(ax);
    axis_ticks(ay);

    /* layout: the plot area [L, L + pw) x [T, T + ph) */
    int ylw = 0;
    for (int i = 0; i < ay->nticks; i++)
        if (text_width(ay->labels[i]) > ylw) ylw = text_width(ay->labels[i]);
    int L = 12 + (ylabel && *ylabel ? TEXT_H + 12 : 0) + ylw + 10;
    int T = title && *title ? 20 + TEXT_H + 14 : 20;
    int B = 12 + TEXT_H + (xlabel && *xlabel ? 14 + TEXT_H : 0) + 16, R = 30;
    int pw = W - L - R, ph = H - T - B;

    canvas cv = {xcalloc((size_t)W * H, 1), 0, 0, W - 1, H - 1}, *c = &cv; /* C_BG == 0 */
    double xs = (pw - 1) / (ax->hi - ax->lo), ys = (ph - 1) / (ay->hi - ay->lo);
#define PX(v) to_px(L + ((v)-ax->lo) * xs)
#define PY(v) to_px(T + ph - 1 - ((v)-ay->lo) * ys)
    for (int i = 0; i < ax->nticks; i++) {
        int x = PX(ax->ticks[i]);
        line(c, x, T, x, T + ph - 1, C_GRID, 1);
        line(c, x, T + ph, x, T + ph + 4, C_FG, 1);
    }
    for (int i = 0; i < ay->nticks; i++) {
        int y = PY(ay->ticks[i]);
        line(c, L, y, L + pw - 1, y, C_GRID, 1);
        line(c, L - 5, y, L - 1, y, C_FG, 1);
        text(c, L - 8 - text_width(ay->labels[i]), y - TEXT_H / 2, ay->labels[i], C_FG, false);
    }
    int last_right = -1000;
    for (int i = 0; i < ax->nticks; i++) {
        int w = text_width(ax->labels[i]), x = PX(ax->ticks[i]) - w / 2;
        if (x + w > W - 2) x = W - 2 - w;
        if (x < 2) x = 2;
        if (x < last_right + 2 * ADV) continue; /* would crowd the previous label */
        text(c, x, T + ph + 10, ax->labels[i], C_FG, false);
        last_right = x + w;
    }
    line(c, L - 1, T - 1, L + pw, T - 1, C_FG, 1); /* the frame */
    line(c, L - 1, T + ph, L + pw, T + ph, C_FG, 1);
    line(c, L - 1, T - 1, L - 1, T + ph, C_FG, 1);
    line(c, L + pw, T - 1, L + pw, T + ph, C_FG, 1);
    if (title && *title) {
        int w = text_width(title);
        text(c, w < W - 20 ? (W - w) / 2 : 10, 20, title, C_FG, false);
    }
    if (xlabel && *xlabel)
        text(c, L + (pw - text_width(xlabel)) / 2, H - 12 - TEXT_H, xlabel, C_FG, false);
    if (ylabel && *ylabel) text(c, 12, T + (ph + text_width(ylabel)) / 2, ylabel, C_FG, true);

    /* the series, clipped to the plot area */
    c->cx0 = L, c->cy0 = T, c->cx1 = L + pw - 1, c->cy1 = T + ph - 1;
    for (int k = 0; k < ns; k++) {
        uint8_t col = (uint8_t)(C_SERIES + k % NCOLORS);
        bool have = false;
        int px = 0, py = 0;
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) {
                have = false;
                continue;
            }
            int qx = PX(x), qy = PY(y);
            if (s[k].points)
                fill(c, qx - 3, qy - 3, qx + 3, qy + 3, col);
            else if (have)
                line(c, px, py, qx, qy, col, 2);
            else if (i + 1 >= s[k].n || !isfinite(s[k].x[i + 1]) || !isfinite(s[k].y[i + 1]))
                fill(c, qx - 2, qy - 2, qx + 2, qy + 2, col); /* a point on its own */
            px = qx, py = qy, have = true;
        }
    }
#undef PX
#undef PY

    /* the legend, inside the plot area */
    int nl = 0, lw = 0;
    for (int k = 0; k < ns; k++)
        if (s[k].label && *s[k].label) {
            nl++;
            if (text_width(s[k].label) > lw) lw = text_width(s[k].label);
        }
    if (nl) {
        int bw = 10 + 24 + 8 + lw + 10, bh = 8 + nl * (TEXT_H + 8);
        /* the corner of the plot area where it hides the fewest drawn points */
        int x0 = L + pw - 10 - bw, y0 = T + 10;
        long best = -1;
        for (int corner = 0; corner < 4; corner++) {
            int cx = corner & 1 ? L + 10 : L + pw - 10 - bw;
            int cy = corner & 2 ? T + ph - 10 - bh : T + 10;
            long hidden = 0;
            for (int y = cy; y < cy + bh; y++)
                for (int x = cx; x < cx + bw; x++)
                    if (x >= 0 && x < W && y >= 0 && y < H)
                        hidden += c->px[(size_t)y * W + x] >= C_SERIES;
            if (best < 0 || hidden < best) best = hidden, x0 = cx, y0 = cy;
        }
        fill(c, x0, y0, x0 + bw - 1, y0 + bh - 1, C_BG);
        line(c, x0, y0, x0 + bw - 1, y0, C_LEGEND, 1);
        line(c, x0, y0 + bh - 1, x0 + bw - 1, y0 + bh - 1, C_LEGEND, 1);
        line(c, x0, y0, x0, y0 + bh - 1, C_LEGEND, 1);
        line(c, x0 + bw - 1, y0, x0 + bw - 1, y0 + bh - 1, C_LEGEND, 1);
        int y = y0 + 8;
        for (int k = 0; k < ns; k++) {
            if (!s[k].label || !*s[k].label) continue;
            uint8_t col = (uint8_t)(C_SERIES + k % NCOLORS);
            int my = y + TEXT_H / 2;
            if (s[k].points)
                fill(c, x0 + 10 + 12 - 3, my - 3, x0 + 10 + 12 + 3, my + 3, col);
            else
                line(c, x0 + 10, my - 1, x0 + 10 + 23, my - 1, col, 2);
            text(c, x0 + 10 + 24 + 8, y, s[k].label, C_FG, false);
            y += TEXT_H + 8;
        }
    }

    uint32_t pal[C_SERIES + NCOLORS] = {PLOT_BACKGROUND, 0x000000, 0xdddddd, 0x999999};
    for (int k = 0; k < NCOLORS; k++)
        pal[C_SERIES + k] = series_rgb[k];
    bytes png = {0};
    encode_png(&png, cv.px, pal, C_SERIES + NCOLORS);
    int rc = core_atomic_write(path, png.p, png.n, err, errlen);
    free(png.p);
    free(cv.px);
    free(ax);
    return rc;
}

int plot_png(const char *path, const char *title, const double *x, const double *y, int n,
             const char *xlabel, const char *ylabel, char *err, size_t errlen) {
    plot_series s = {x, y, n, NULL, false};
    return plot_png_series(path, title, xlabel, ylabel, &s, 1, err, errlen);
}
