/* Fatal-error reporting and the x* checking wrappers declared in check.h. Every message names
 * the caller's file:line and, where the C library gave one, the errno text, so a failure deep in
 * a training run can be traced without a debugger. */
#include "core/check.h"

#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static void (*die_hook)(void);

void core_set_die_hook(void (*hook)(void)) {
    die_hook = hook;
}

static _Noreturn void die_msg(const char *file, int line, const char *prefix, const char *msg) {
    core_log_error("%s:%d: %s%s", file, line, prefix, msg);
    /* Clear the hook first so a hook that itself dies cannot recurse. */
    void (*hook)(void) = die_hook;
    die_hook = NULL;
    if (hook) hook();
    exit(1);
}

void core_die_at(const char *file, int line, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die_msg(file, line, "", msg);
}

void core_check_failed(const char *file, int line, const char *cond, const char *fmt, ...) {
    char prefix[512];
    char msg[2048];
    snprintf(prefix, sizeof prefix, "check failed: %s: ", cond);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die_msg(file, line, prefix, msg);
}

/* A FILE* does not remember its path; on Linux /proc tells us, which makes "short read in
 * data/x/tokens.bin" possible instead of "short read in fd 7". */
static const char *stream_name(FILE *fp, char *out, size_t n) {
    int fd = fp ? fileno(fp) : -1;
    if (fd < 0) {
        snprintf(out, n, "(invalid stream)");
        return out;
    }
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, out, n - 1);
    if (len <= 0) {
        snprintf(out, n, "fd %d", fd);
        return out;
    }
    out[len] = '\0';
    return out;
}

void *core_malloc_check(size_t n, const char *file, int line) {
    /* malloc(0) may legally return NULL, which must not look like a failure. */
    void *p = malloc(n ? n : 1);
    if (!p) core_die_at(file, line, "out of memory allocating %zu bytes", n);
    return p;
}

void *core_calloc_check(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) core_die_at(file, line, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *core_realloc_check(void *p, size_t n, const char *file, int line) {
    /* realloc(p, 0) frees p in glibc and returns NULL; keep one byte so p stays valid. */
    void *q = realloc(p, n ? n : 1);
    if (!q) core_die_at(file, line, "out of memory reallocating to %zu bytes", n);
    return q;
}

char *core_strdup_check(const char *s, const char *file, int line) {
    if (!s) core_die_at(file, line, "xstrdup(NULL)");
    size_t n = strlen(s) + 1;
    char *p = core_malloc_check(n, file, line);
    memcpy(p, s, n);
    return p;
}

FILE *core_fopen_check(const char *path, const char *mode, const char *file, int line) {
    FILE *fp = fopen(path, mode);
    if (fp) return fp;
    int e = errno;
    int writing = strpbrk(mode, "wa+") != NULL;
    const char *hint = writing ? "does the folder exist and is it writable?"
                               : "does the file exist and is it readable?";
    core_die_at(file, line, "cannot open \"%s\" with mode \"%s\": %s (%s)", path, mode, strerror(e),
                hint);
}

void core_fread_check(void *p, size_t size, size_t count, FILE *fp, const char *file, int line) {
    size_t got = fread(p, size, count, fp);
    if (got == count) return;
    int e = errno;
    char name[512];
    stream_name(fp, name, sizeof name);
    if (feof(fp))
        core_die_at(file, line,
                    "unexpected end of file reading %s: got %zu of %zu items of %zu bytes "
                    "(is the file truncated or from another version?)",
                    name, got, count, size);
    core_die_at(file, line, "read error in %s: %s", name, strerror(e));
}

void core_fwrite_check(const void *p, size_t size, size_t count, FILE *fp, const char *file,
                       int line) {
    size_t put = fwrite(p, size, count, fp);
    if (put == count) return;
    int e = errno;
    char name[512];
    stream_name(fp, name, sizeof name);
    core_die_at(file, line, "write to %s failed after %zu of %zu items: %s%s", name, put, count,
                strerror(e), e == ENOSPC ? " (the disk is full)" : "");
}

void core_fclose_check(FILE *fp, const char *file, int line) {
    char name[512];
    stream_name(fp, name, sizeof name);
    /* fclose flushes buffered data, so a full disk often shows up only here. */
    if (fclose(fp) != 0)
        core_die_at(file, line, "closing %s failed: %s (its last writes may be lost)", name,
                    strerror(errno));
}

void core_fseek_check(FILE *fp, int64_t offset, int whence, const char *file, int line) {
    if (fseeko(fp, (off_t)offset, whence) == 0) return;
    int e = errno;
    char name[512];
    stream_name(fp, name, sizeof name);
    core_die_at(file, line, "seek to offset %lld (whence %d) in %s failed: %s", (long long)offset,
                whence, name, strerror(e));
}

int core_errorf(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}
