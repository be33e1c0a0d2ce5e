/* Files the program writes and reads whole: atomic replacement (temporary name, fsync, rename,
 * fsync of the folder) so a run killed at any moment leaves either the old or the new file,
 * never half of one; mkdir -p; whole-file reads; read-only mmap; path joining.
 * Everything here returns 0 or -1 with a message in err (err may be NULL); nothing exits. */
#ifndef CRAM_CORE_FILEIO_H
#define CRAM_CORE_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CORE_PATH_MAX 4096

/* Write n bytes of buf to path atomically. */
int core_atomic_write(const char *path, const void *buf, size_t n, char *err, size_t errlen);

/* Streaming form: write through f->fp, then commit (the file appears under path) or abort (the
 * temporary file is removed and path is untouched). Abort is safe after a failed open or a
 * commit, so cleanup code can call it unconditionally. The temporary name carries the pid, so
 * separate processes never clash; within one process, one writer per path at a time. */
typedef struct core_atomic_file {
    FILE *fp;
    char path[CORE_PATH_MAX];
    char tmp[CORE_PATH_MAX + 32]; /* "<path>.tmp.<pid>", in path's folder so rename is atomic */
} core_atomic_file;

int core_atomic_open(core_atomic_file *f, const char *path, char *err, size_t errlen);
int core_atomic_commit(core_atomic_file *f, char *err, size_t errlen);
void core_atomic_abort(core_atomic_file *f);

/* Create path and any missing parents (mode 0777 before umask); an existing folder is fine. */
int core_mkdir_p(const char *path, char *err, size_t errlen);

/* Read a whole file into a new buffer with a NUL after the last byte (so text can be parsed in
 * place); *n excludes the NUL. The caller frees *buf. */
int core_read_file(const char *path, char **buf, size_t *n, char *err, size_t errlen);

/* A read-only private mapping of a whole file. An empty file maps to ptr NULL, size 0. */
typedef struct core_mmap {
    const void *ptr;
    size_t size;
} core_mmap;

int core_mmap_open(core_mmap *m, const char *path, char *err, size_t errlen);
void core_mmap_close(core_mmap *m); /* safe on a zeroed or already closed mapping */

/* out = a "/" b with exactly one slash between; b absolute or a empty gives b. -1 when out is
 * too small (out then holds an empty string). */
int core_path_join(char *out, size_t outlen, const char *a, const char *b);

/* true when path names an existing folder / regular file (after following links) */
bool core_is_dir(const char *path);
bool core_is_file(const char *path);

/* Append n bytes at *p (holding *len of *cap bytes), growing it by doubling (xrealloc). */
void core_bytes_append(uint8_t **p, size_t *len, size_t *cap, const void *src, size_t n);

#endif
