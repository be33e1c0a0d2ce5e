/* TensorBoard event files (tboard.h).
 *
 * Why by hand: Debian 12 packages no C library for TensorBoard's event files or TFRecord
 * framing (only TensorFlow's own C++ code writes them), and protobuf-c would need the .proto
 * files, a code generator and still a CRC32C of our own. A writer needs 9 fields of 3 messages
 * (Event: wall_time, step, file_version, summary; Summary: value; Value: tag, simple_value), each
 * a varint, a fixed-width number or a length-prefixed run of bytes, so they are encoded here.
 * None of the libraries cram links has a CRC-32C (zlib's crc32 is the other polynomial), so it is
 * computed bit by bit below: records are a few hundred bytes per print step. */
#include "core/tboard.h"

#include "core/check.h"
#include "core/fileio.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TB_TAG_MAX 255
#define TB_WRITE_AT (256u * 1024u) /* buffered record bytes that trigger a write */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

struct tboard {
    int fd;
    bool failed;
    off_t written; /* bytes of whole records in the file */
    char path[CORE_PATH_MAX + 128];
    bytes out; /* framed records not yet written */
    bytes sum; /* the Summary of the event being gathered (its encoded Value fields) */
    bool pending;
    int64_t pending_step;
    double pending_time;
};

/* ---- CRC-32C ---- */

uint32_t tboard_crc32c(const void *data, size_t n) {
    const uint8_t *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

uint32_t tboard_mask_crc(uint32_t crc) {
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* ---- protobuf wire format: only what Event, Summary and Value need ---- */

static void put(bytes *b, const void *src, size_t n) {
    core_bytes_append(&b->p, &b->n, &b->cap, src, n);
}

static void put_byte(bytes *b, uint8_t v) {
    put(b, &v, 1);
}

static void put_varint(bytes *b, uint64_t v) {
    uint8_t buf[10];
    size_t n = 0;
    do {
        buf[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) buf[n] |= 0x80;
        n++;
    } while (v);
    put(b, buf, n);
}

static void put_le(bytes *b, uint64_t v, int nbytes) {
    uint8_t buf[8];
    for (int i = 0; i < nbytes; i++)
        buf[i] = (uint8_t)(v >> (8 * i));
    put(b, buf, (size_t)nbytes);
}

/* key = field number << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32) */
#define PB_KEY(field, type) ((uint8_t)((field) << 3 | (type)))

static void put_double_field(bytes *b, int field, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    put_byte(b, PB_KEY(field, 1));
    put_le(b, u, 8);
}

static void put_bytes_field(bytes *b, int field, const void *p, size_t n) {
    put_byte(b, PB_KEY(field, 2));
    put_varint(b, n);
    put(b, p, n);
}

/* One TFRecord: length, masked CRC of the length, data, masked CRC of the data. */
static void put_record(bytes *out, const uint8_t *data, size_t n) {
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)n >> (8 * i));
    put(out, len, 8);
    put_le(out, tboard_mask_crc(tboard_crc32c(len, 8)), 4);
    put(out, data, n);
    put_le(out, tboard_mask_crc(tboard_crc32c(data, n)), 4);
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- writing ---- */

static void fail(tboard *tb, const char *what, int errnum) {
    if (!tb->failed)
        core_log_warn("TensorBoard events %s: %s: %s; no more events are written to it", tb->path,
                      what, strerror(errnum));
    tb->failed = true;
    tb->out.n = 0;
    tb->sum.n = 0;
    tb->pending = false;
}

/* Write the buffered records; 0, or the errno of a failed write (a partly written record is
 * then cut off again, so the file ends with a whole one). */
static int write_all(tboard *tb) {
    size_t off = 0;
    while (off < tb->out.n) {
        ssize_t w = write(tb->fd, tb->out.p + off, tb->out.n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            if (off && ftruncate(tb->fd, tb->written) != 0) {
                /* nothing more to do: readers stop at a cut-off record */
            }
            return e;
        }
        off += (size_t)w;
    }
    tb->written += (off_t)off;
    tb->out.n = 0;
    return 0;
}

static void write_out(tboard *tb) {
    int e = tb->failed ? 0 : write_all(tb);
    if (e) fail(tb, "write failed", e);
}

/* Turn the gathered Summary into one framed Event record. */
static void end_event(tboard *tb) {
    if (!tb->pending) return;
    bytes ev = {0};
    put_double_field(&ev, 1, tb->pending_time);
    put_byte(&ev, PB_KEY(2, 0));
    put_varint(&ev, (uint64_t)tb->pending_step); /* int64: two's complement, as protobuf does */
    put_bytes_field(&ev, 5, tb->sum.p, tb->sum.n);
    put_record(&tb->out, ev.p, ev.n);
    free(ev.p);
    tb->sum.n = 0;
    tb->pending = false;
    if (tb->out.n >= TB_WRITE_AT) write_out(tb);
}

tboard *tboard_open(const char *dir, char *err, size_t errlen) {
    if (core_mkdir_p(dir, err, errlen)) return NULL;
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    for (char *c = host; *c; c++)
        if (*c == '/' || (unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7F) *c = '_';
    tboard *tb = xcalloc(1, sizeof *tb);
    long long t = (long long)time(NULL);
    for (int k = 0;; k++) {
        int len;
        if (k == 0)
            len =
                snprintf(tb->path, sizeof tb->path, "%s/events.out.tfevents.%lld.%s", dir, t, host);
        else
            len = snprintf(tb->path, sizeof tb->path, "%s/events.out.tfevents.%lld.%s.%ld.%d", dir,
                           t, host, (long)getpid(), k);
        if (len < 0 || (size_t)len >= sizeof tb->path) {
            core_errorf(err, errlen, "event file path under %s too long", dir);
            free(tb);
            return NULL;
        }
        tb->fd = open(tb->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (tb->fd >= 0) break;
        if (errno != EEXIST || k == 100) {
            core_errorf(err, errlen, "cannot create %s: %s", tb->path, strerror(errno));
            free(tb);
            return NULL;
        }
    }
    bytes ev = {0};
    static const char version[] = "brain.Event:2";
    put_double_field(&ev, 1, wall_now());
    put_bytes_field(&ev, 3, version, sizeof version - 1);
    put_record(&tb->out, ev.p, ev.n);
    free(ev.p);
    int e = write_all(tb);
    if (e) {
        core_errorf(err, errlen, "cannot write %s: %s", tb->path, strerror(e));
        close(tb->fd);
        unlink(tb->path);
        free(tb->out.p);
        free(tb);
        return NULL;
    }
    return tb;
}

void tboard_scalar(tboard *tb, const char *tag, int64_t step, double value) {
    if (!tb || tb->failed || !tag || !tag[0]) return;
    if (tb->pending && step != tb->pending_step) end_event(tb);
    if (!tb->pending) {
        tb->pending = true;
        tb->pending_step = step;
        tb->pending_time = wall_now();
    }
    char clean[TB_TAG_MAX + 1];
    size_t n = 0;
    for (; tag[n] && n < TB_TAG_MAX; n++) {
        char c = tag[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '/' || c == '-';
        clean[n] = ok ? c : '_';
    }
    float f = (float)value;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    bytes v = {0};
    put_bytes_field(&v, 1, clean, n);
    put_byte(&v, PB_KEY(2, 5));
    put_le(&v, u, 4);
    put_bytes_field(&tb->sum, 1, v.p, v.n); /* Summary.value, repeated */
    free(v.p);
}

void tboard_flush(tboard *tb) {
    if (!tb || tb->failed) return;
    end_event(tb);
    write_out(tb);
}

void tboard_close(tboard *tb) {
    if (!tb) return;
    tboard_flush(tb);
    if (!tb->failed && fsync(tb->fd) != 0 && errno != EINVAL) fail(tb, "fsync failed", errno);
    if (close(tb->fd) != 0 && !tb->failed && errno != EINTR) fail(tb, "close failed", errno);
    free(tb->out.p);
    free(tb->sum.p);
    free(tb);
}

const char *tboard_path(const tboard *tb) {
    return tb ? tb->path : "";
}

bool tboard_ok(const tboard *tb) {
    return tb && !tb->failed;
}
