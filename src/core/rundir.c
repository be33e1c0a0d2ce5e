/* Run folder creation (see rundir.h). The leaf folder is claimed with a plain mkdir, which
 * fails with EEXIST for every process but one, so concurrent runs cannot collide. */
#include "core/rundir.h"

#include "core/fileio.h"
#include "core/timer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_SUFFIX 10000

static int bad_component(const char *s) {
    return s[0] == '\0' || strchr(s, '/') != NULL || strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

static void set_err(char *err, size_t errlen, const char *msg, const char *what) {
    if (err && errlen) snprintf(err, errlen, "%s%s", msg, what);
}

int core_run_dir(char *out, size_t outlen, const char *base_dir, const char *name, const char *job,
                 time_t t, char *err, size_t errlen) {
    if (outlen) out[0] = '\0';
    if (bad_component(name)) {
        set_err(err, errlen, "bad run name (empty, \".\", \"..\" or containing \"/\"): ", name);
        return -1;
    }
    if (bad_component(job)) {
        set_err(err, errlen, "bad job name (empty, \".\", \"..\" or containing \"/\"): ", job);
        return -1;
    }
    char date[16], clock[16];
    core_local_time_format(date, sizeof date, t, "%Y-%m-%d");
    core_local_time_format(clock, sizeof clock, t, "%H-%M-%S");

    char parent[CORE_PATH_MAX], tmp[CORE_PATH_MAX];
    if (core_path_join(tmp, sizeof tmp, base_dir, name) != 0 ||
        core_path_join(parent, sizeof parent, tmp, job) != 0 ||
        core_path_join(tmp, sizeof tmp, parent, date) != 0) {
        set_err(err, errlen, "run folder path too long under ", base_dir);
        return -1;
    }
    memcpy(parent, tmp, sizeof parent);
    if (core_mkdir_p(parent, err, errlen) != 0) return -1;

    for (int k = 0; k < MAX_SUFFIX; k++) {
        char leaf[32];
        if (k == 0)
            snprintf(leaf, sizeof leaf, "%s", clock);
        else
            snprintf(leaf, sizeof leaf, "%s-%d", clock, k);
        char path[CORE_PATH_MAX];
        if (core_path_join(path, sizeof path, parent, leaf) != 0) {
            set_err(err, errlen, "run folder path too long under ", parent);
            return -1;
        }
        if (mkdir(path, 0777) == 0) {
            if ((size_t)snprintf(out, outlen, "%s", path) >= outlen) {
                set_err(err, errlen, "output buffer too small for run folder ", path);
                rmdir(path);
                if (outlen) out[0] = '\0';
                return -1;
            }
            return 0;
        }
        if (errno != EEXIST) {
            if (err && errlen)
                snprintf(err, errlen, "cannot create run folder %s: %s", path, strerror(errno));
            return -1;
        }
    }
    set_err(err, errlen, "too many runs in the same second under ", parent);
    return -1;
}
