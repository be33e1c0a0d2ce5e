/* The core module in one include: checks, logging, clocks, random streams, files, hashing,
 * progress reports and run folders. Nothing in core knows about BERT. */
#ifndef CRAM_CORE_CORE_H
#define CRAM_CORE_CORE_H

#include "core/check.h"
#include "core/fileio.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/report.h"
#include "core/rng.h"
#include "core/rundir.h"
#include "core/timer.h"

#endif
