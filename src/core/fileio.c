/* Atomic writes, mkdir -p, whole-file reads, read-only mmap and path joining (see fileio.h).
 * Errors come back as messages that name the path and the errno text; these functions are used
 * both where failure is fatal (the caller dies with the message) and where it is not. */
#include "core/fileio.h"

#include "core/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* The rename is only durable once the folder's entry is on disk too. Some filesystems cannot
 * fsync a folder (EINVAL); the rename has still happened there, so that is not an error. */
static int fsync_parent(const char *path, char *err, size_t errlen) {
    char dir[CORE_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return core_errorf(err, errlen, "cannot open folder %s to sync it: %s", dir,
                           strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL && e != EROFS)
        return core_errorf(err, errlen, "cannot sync folder %s: %s", dir, strerror(e));
    return 0;
}

int core_atomic_open(core_atomic_file *f, const char *path, char *err, size_t errlen) {
    f->fp = NULL;
    f->path[0] = '\0';
    f->tmp[0] = '\0';
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof f->path)
        return core_errorf(err, errlen, "bad path for atomic write (empty or too long): \"%.64s\"",
                           path);
    memcpy(f->path, path, len + 1);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        f->tmp[0] = '\0';
        return core_errorf(err, errlen,
                           "cannot create %s.tmp.*: %s (does the folder exist and is it "
                           "writable?)",
                           path, strerror(e));
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int e = errno;
        close(fd);
        unlink(f->tmp);
        f->tmp[0] = '\0';
        return core_errorf(err, errlen, "cannot open a stream on %s: %s", path, strerror(e));
    }
    return 0;
}

void core_atomic_abort(core_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    if (f->tmp[0]) unlink(f->tmp);
    f->fp = NULL;
    f->tmp[0] = '\0';
}

int core_atomic_commit(core_atomic_file *f, char *err, size_t errlen) {
    if (!f->fp)
        return core_errorf(err, errlen, "atomic commit of %s: the file is not open", f->path);
    /* fflush and fclose report write errors (a full disk) that earlier fwrites buffered away. */
    if (fflush(f->fp) != 0 || ferror(f->fp)) {
        int e = errno;
        core_atomic_abort(f);
        return core_errorf(err, errlen, "writing %s failed: %s", f->path, strerror(e));
    }
    if (fsync(fileno(f->fp)) != 0) {
        int e = errno;
        core_atomic_abort(f);
        return core_errorf(err, errlen, "cannot sync %s to disk: %s", f->path, strerror(e));
    }
    int rc = fclose(f->fp);
    f->fp = NULL;
    if (rc != 0) {
        int e = errno;
        core_atomic_abort(f);
        return core_errorf(err, errlen, "closing %s failed: %s", f->path, strerror(e));
    }
    if (rename(f->tmp, f->path) != 0) {
        int e = errno;
        core_atomic_abort(f);
        return core_errorf(err, errlen, "cannot rename the temporary file onto %s: %s", f->path,
                           strerror(e));
    }
    f->tmp[0] = '\0';
    return fsync_parent(f->path, err, errlen);
}

int core_atomic_write(const char *path, const void *buf, size_t n, char *err, size_t errlen) {
    core_atomic_file f;
    if (core_atomic_open(&f, path, err, errlen) != 0) return -1;
    if (n > 0 && fwrite(buf, 1, n, f.fp) != n) {
        int e = errno;
        core_atomic_abort(&f);
        return core_errorf(err, errlen, "writing %s failed: %s", path, strerror(e));
    }
    return core_atomic_commit(&f, err, errlen);
}

int core_mkdir_p(const char *path, char *err, size_t errlen) {
    char buf[CORE_PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return core_errorf(err, errlen, "bad folder path (empty or too long): \"%.64s\"", path);
    memcpy(buf, path, len + 1);
    /* Create each prefix that ends at a slash, then the whole path. */
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        if (buf[i - 1] == '/') continue; /* "a//b" or a trailing slash: nothing new to create */
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0) {
            int e = errno;
            struct stat st;
            if (e != EEXIST)
                return core_errorf(err, errlen, "cannot create folder %s: %s", buf, strerror(e));
            if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
                return core_errorf(err, errlen,
                                   "cannot create folder %s: a file of that name exists", buf);
        }
        buf[i] = saved;
    }
    return 0;
}

int core_read_file(const char *path, char **buf, size_t *n, char *err, size_t errlen) {
    *buf = NULL;
    *n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return core_errorf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    /* Start from the size stat reports but keep reading to EOF: /proc files and pipes report 0
     * and a growing file may report too little. */
    struct stat st;
    size_t cap = 4096;
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        cap = (size_t)st.st_size + 1;
    char *data = malloc(cap);
    size_t len = 0;
    while (data) {
        len += fread(data + len, 1, cap - len, fp);
        if (len < cap) break; /* EOF or error: told apart below */
        char *grown = realloc(data, cap * 2);
        if (!grown) {
            free(data);
            data = NULL;
            break;
        }
        data = grown;
        cap *= 2;
    }
    if (!data) {
        fclose(fp);
        return core_errorf(err, errlen, "out of memory reading %s", path);
    }
    if (ferror(fp)) {
        int e = errno;
        fclose(fp);
        free(data);
        return core_errorf(err, errlen, "read error in %s: %s", path, strerror(e));
    }
    fclose(fp);
    data[len] = '\0'; /* len < cap always holds here */
    *buf = data;
    *n = len;
    return 0;
}

int core_mmap_open(core_mmap *m, const char *path, char *err, size_t errlen) {
    m->ptr = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return core_errorf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return core_errorf(err, errlen, "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return core_errorf(err, errlen, "cannot map %s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd); /* mmap rejects length 0; an empty mapping needs no pages */
        return 0;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file alive */
    if (p == MAP_FAILED)
        return core_errorf(err, errlen, "cannot map %s (%lld bytes): %s", path,
                           (long long)st.st_size, strerror(e));
    m->ptr = p;
    m->size = (size_t)st.st_size;
    return 0;
}

void core_mmap_close(core_mmap *m) {
    if (m->ptr) munmap((void *)m->ptr, m->size);
    m->ptr = NULL;
    m->size = 0;
}

int core_path_join(char *out, size_t outlen, const char *a, const char *b) {
    int k;
    if (a[0] == '\0' || b[0] == '/') {
        k = snprintf(out, outlen, "%s", b);
    } else if (b[0] == '\0') {
        k = snprintf(out, outlen, "%s", a);
    } else {
        size_t alen = strlen(a);
        while (alen > 1 && a[alen - 1] == '/')
            alen--;
        const char *sep = a[alen - 1] == '/' ? "" : "/";
        k = snprintf(out, outlen, "%.*s%s%s", (int)alen, a, sep, b);
    }
    if (k < 0 || (size_t)k >= outlen) {
        if (outlen) out[0] = '\0';
        return -1;
    }
    return 0;
}

bool core_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool core_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void core_bytes_append(uint8_t **p, size_t *len, size_t *cap, const void *src, size_t n) {
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n)
            c *= 2;
        *p = xrealloc(*p, c);
        *cap = c;
    }
    if (n) memcpy(*p + *len, src, n);
    *len += n;
}
