/* The pretraining loader: a rank-strided stream of rows from a mapped store, sequential or
 * shuffled per epoch through a keyed Feistel bijection (random access, no per-row memory), so a
 * position (epoch, row) is all that a checkpoint needs to resume exactly. The stream does not
 * depend on how it is cut into microbatches. */
#include "data/data.h"

#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static uint64_t mix64(uint64_t z) { /* splitmix64's finalizer */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A bijection of [0, n): a 4-round balanced Feistel network on the smallest even-bit square
 * domain >= n, with cycle walking back into [0, n) (expected < 4 steps). */
static uint64_t permute(uint64_t x, uint64_t n, uint64_t key) {
    if (n <= 1) return 0;
    int bits = 1;
    while (bits < 64 && (1ull << bits) < n)
        bits++;
    int half = (bits + 1) / 2;
    uint64_t mask = (1ull << half) - 1;
    do {
        uint64_t lo = x & mask, hi = x >> half;
        for (uint64_t r = 0; r < 4; r++) {
            uint64_t f = mix64(lo ^ mix64(key + r)) & mask;
            uint64_t t = hi ^ f;
            hi = lo;
            lo = t;
        }
        x = (hi << half) | lo;
    } while (x >= n);
    return x;
}

int loader_init(loader *l, const store_rows *rows, int rank, int world, int64_t mbs, bool shuffle,
                uint64_t seed, char *err, size_t errlen) {
    memset(l, 0, sizeof *l);
    if (world < 1 || rank < 0 || rank >= world || mbs < 1) {
        if (err)
            snprintf(err, errlen, "loader: bad rank %d of %d or microbatch %lld", rank, world,
                     (long long)mbs);
        return -1;
    }
    l->rows = rows;
    l->rank = rank;
    l->world = world;
    l->shuffle = shuffle;
    l->seed = seed;
    l->per_rank = rows->row_count / world;
    if (l->per_rank < mbs) {
        if (err)
            snprintf(err, errlen,
                     "%s has %lld rows: too few for %d rank(s) with microbatches of %lld",
                     rows->path, (long long)rows->row_count, world, (long long)mbs);
        return -1;
    }
    return 0;
}

int64_t loader_row(const loader *l, int64_t epoch, int64_t k) {
    uint64_t n = (uint64_t)l->rows->row_count;
    uint64_t pos = (uint64_t)l->rank + (uint64_t)l->world * (uint64_t)k;
    uint64_t idx = pos;
    if (l->shuffle) idx = permute(pos, n, mix64(l->seed ^ mix64((uint64_t)epoch + 0x10adull)));
    if (l->reverse) idx = n - 1 - idx;
    return (int64_t)idx;
}

loader_pos loader_next(loader *l, int32_t *out, int64_t n, uint64_t *keys) {
    loader_pos at = l->pos;
    int32_t S = l->rows->row_len;
    uint64_t per_epoch = (uint64_t)l->per_rank * (uint64_t)l->world;
    for (int64_t b = 0; b < n; b++) {
        int64_t k = l->pos.index;
        store_rows_get(l->rows, loader_row(l, l->pos.epoch, k), out + b * S);
        if (keys)
            keys[b] = (uint64_t)l->pos.epoch * per_epoch + (uint64_t)l->rank +
                      (uint64_t)l->world * (uint64_t)k;
        if (++l->pos.index >= l->per_rank) {
            l->pos.index = 0;
            l->pos.epoch++;
        }
    }
    return at;
}

loader_pos loader_tell(const loader *l) {
    return l->pos;
}

void loader_seek(loader *l, loader_pos p) {
    l->pos = p;
    if (l->pos.index >= l->per_rank || l->pos.index < 0) {
        l->pos.epoch += l->pos.index / l->per_rank;
        l->pos.index %= l->per_rank;
        if (l->pos.index < 0) l->pos.index += l->per_rank, l->pos.epoch--;
    }
}
