/* Line plots as PNG images, e.g. the loss curve a run leaves in its folder (docs/metrics.md).
 * PLOT_WIDTH x PLOT_HEIGHT pixels, white background, axes with numeric ticks and a light grid,
 * a title, axis labels, one or more series and a legend when any series has a label. Text uses
 * a built-in 5x7 bitmap font (with descenders) (printable ASCII; other bytes print as '?').
 *
 * The PNG is encoded here (8-bit palette, deflate with fixed Huffman codes and run-length
 * matches), so no image or compression library is needed; it is written atomically (temporary
 * file, fsync, rename), so a reader never sees half an image. */
#ifndef CRAM_CORE_PLOT_H
#define CRAM_CORE_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#define PLOT_WIDTH 800
#define PLOT_HEIGHT 500

/* Series colours in order (0xRRGGBB), then they repeat; the background is white. */
#define PLOT_SERIES_COLORS                                                                         \
    { 0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728 }
#define PLOT_BACKGROUND 0xffffff

typedef struct plot_series {
    const double *x, *y; /* n points; a non-finite x or y is skipped and breaks the line */
    int n;
    const char *label; /* legend text; NULL or "" for none */
    bool points;       /* a square marker at each point instead of a line (e.g. validation) */
} plot_series;

/* Draw the series over axes that cover every finite point (y padded by 5%, x by 2% when a
 * series has markers) and write the PNG to path. title, xlabel and ylabel may be NULL. Series
 * without finite points draw nothing; with none at all the axes span [0, 1]. The legend goes to
 * the corner of the plot area where it hides the fewest drawn pixels. Returns 0, or -1 with a
 * message in err (path is then untouched). */
int plot_png_series(const char *path, const char *title, const char *xlabel, const char *ylabel,
                    const plot_series *s, int ns, char *err, size_t errlen);

/* One line series without a legend. */
int plot_png(const char *path, const char *title, const double *x, const double *y, int n,
             const char *xlabel, const char *ylabel, char *err, size_t errlen);

#endif
