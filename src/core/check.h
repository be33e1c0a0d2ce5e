/* Checking wrappers for the code paths where failure is fatal: allocation, files the program
 * itself writes or must have, and internal invariants. They report file:line and the errno text,
 * then exit(1). Parsers of user-supplied files must NOT use these: they return errors instead. */
#ifndef CRAM_CORE_CHECK_H
#define CRAM_CORE_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __GNUC__
#define CORE_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define CORE_PRINTF(fmt_idx, arg_idx)
#endif

/* Print "error: file:line: message" through the logger (stderr and the log file), run the die
 * hook if one is set, then exit(1). */
_Noreturn void core_die_at(const char *file, int line, const char *fmt, ...) CORE_PRINTF(3, 4);
#define core_die(...) core_die_at(__FILE__, __LINE__, __VA_ARGS__)

/* Called by CORE_CHECK; prints the failed condition's text before the message. */
_Noreturn void core_check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    CORE_PRINTF(4, 5);
#define CORE_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) core_check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__);                    \
    } while (0)

/* A hook run once before exit(1), e.g. so the dist module can MPI_Abort instead of leaving
 * the other ranks waiting in a collective forever. NULL removes it. */
void core_set_die_hook(void (*hook)(void));

/* For functions that report errors to their caller: format the message into err (when err is
 * not NULL and errlen > 0) and return -1, so `return core_errorf(err, errlen, ...)` reads well. */
int core_errorf(char *err, size_t errlen, const char *fmt, ...) CORE_PRINTF(3, 4);

void *core_malloc_check(size_t n, const char *file, int line);
void *core_calloc_check(size_t count, size_t size, const char *file, int line);
void *core_realloc_check(void *p, size_t n, const char *file, int line);
char *core_strdup_check(const char *s, const char *file, int line);
FILE *core_fopen_check(const char *path, const char *mode, const char *file, int line);
void core_fread_check(void *p, size_t size, size_t count, FILE *fp, const char *file, int line);
void core_fwrite_check(const void *p, size_t size, size_t count, FILE *fp, const char *file,
                       int line);
void core_fclose_check(FILE *fp, const char *file, int line);
void core_fseek_check(FILE *fp, int64_t offset, int whence, const char *file, int line);

#define xmalloc(n) core_malloc_check((n), __FILE__, __LINE__)
#define xcalloc(count, size) core_calloc_check((count), (size), __FILE__, __LINE__)
#define xrealloc(p, n) core_realloc_check((p), (n), __FILE__, __LINE__)
#define xstrdup(s) core_strdup_check((s), __FILE__, __LINE__)
#define xfopen(path, mode) core_fopen_check((path), (mode), __FILE__, __LINE__)
/* xfread reads exactly count items or dies (a short read is a truncated file, not EOF). */
#define xfread(p, size, count, fp) core_fread_check((p), (size), (count), (fp), __FILE__, __LINE__)
#define xfwrite(p, size, count, fp)                                                                \
    core_fwrite_check((p), (size), (count), (fp), __FILE__, __LINE__)
#define xfclose(fp) core_fclose_check((fp), __FILE__, __LINE__)
#define xfseek(fp, offset, whence) core_fseek_check((fp), (offset), (whence), __FILE__, __LINE__)

#endif
