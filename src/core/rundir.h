/* The per-run output folder, laid out as in cramming:
 * <base_dir>/<name>/<job>/<YYYY-MM-DD>/<HH-MM-SS>/ in local time. The working directory is never
 * changed; callers build every path from the folder this returns. */
#ifndef CRAM_CORE_RUNDIR_H
#define CRAM_CORE_RUNDIR_H

#include <stddef.h>
#include <time.h>

/* Creates the folder (and its parents) and writes its path, without a trailing slash, to out.
 * When that folder already exists, "-1", "-2", ... is appended to the time so that two runs
 * started in the same second never share a folder (mkdir decides, so this holds across
 * processes too). name and job must be non-empty and must not contain "/" or be "." or "..".
 * Returns 0, or -1 with a message in err (err may be NULL). */
int core_run_dir(char *out, size_t outlen, const char *base_dir, const char *name, const char *job,
                 time_t t, char *err, size_t errlen);

#endif
