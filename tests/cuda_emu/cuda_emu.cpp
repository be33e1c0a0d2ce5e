// The CUDA emulator's scheduler: a launch runs its blocks one after another on the calling
// thread, and a block's threads as cooperative fibers (ucontext) that switch only where a CUDA
// thread may wait: __syncthreads, __syncwarp, and a shuffle whose partner lane has not yet
// arrived. Everything is deterministic for a given order; the order is a knob (set_order)
// so that a test can run the same kernels twice, in opposite orders, and require the same bytes.
#include "cuda_runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define CUDA_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDA_EMU_ASAN 1
#endif
#endif
#ifdef CUDA_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace cuda_emu {

size_t smem_limit = 48 * 1024;
static int order;

namespace {

enum { STACK_BYTES = 128 * 1024, GUARD_BYTES = 4096, MAX_THREADS = 1024, RING = 64 };
enum state { READY, AT_BLOCK_BARRIER, AT_WARP_BARRIER, AT_SHUFFLE, DONE };

struct fiber {
    ucontext_t ctx;
    unsigned char *stack; // STACK_BYTES above a guard page
    state st;
    unsigned phase;        // the barrier generation it waits to see pass
    unsigned shfl_issued;  // shuffles whose value it has posted
    unsigned shfl_done;    // shuffles it has completed
    double shfl_val[RING]; // the values of its last RING shuffles, by shuffle number
    int shfl_mask[RING];   // and their lane masks
    void *fake_stack;      // AddressSanitizer's bookkeeping of the fiber's stack
};

struct block_run {
    void (*body)(void *);
    void *params;
    unsigned n;
    fiber *f;
    unsigned cur;
    unsigned arrived, phase; // __syncthreads
    unsigned warp_arrived[32], warp_phase[32];
    unsigned char *smem;
    ucontext_t sched;
    const void *sched_stack; // the scheduler's stack, for AddressSanitizer
    size_t sched_stack_size;
};

block_run *run; // the block being run
bool in_thread; // a fiber runs (else the scheduler)
std::vector<unsigned char *> stacks;

unsigned char *stack_for(unsigned t) {
    while (stacks.size() <= t) {
        void *m = mmap(NULL, STACK_BYTES + GUARD_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) fail("no memory for a fiber stack");
        mprotect(m, GUARD_BYTES, PROT_NONE); // an overflow faults instead of corrupting
        stacks.push_back((unsigned char *)m + GUARD_BYTES);
    }
    return stacks[t];
}

fiber &me() {
    return run->f[run->cur];
}

// From a fiber back to the scheduler; `finished` fibers are never resumed
void to_scheduler(bool finished) {
    fiber &f = me();
    (void)finished;
#ifdef CUDA_EMU_ASAN
    __sanitizer_start_switch_fiber(finished ? NULL : &f.fake_stack, run->sched_stack,
                                   run->sched_stack_size);
#endif
    swapcontext(&f.ctx, &run->sched);
#ifdef CUDA_EMU_ASAN
    __sanitizer_finish_switch_fiber(f.fake_stack, &run->sched_stack, &run->sched_stack_size);
#endif
}

void fiber_main() {
#ifdef CUDA_EMU_ASAN
    __sanitizer_finish_switch_fiber(NULL, &run->sched_stack, &run->sched_stack_size);
#endif
    run->body(run->params);
    me().st = DONE;
    to_scheduler(true);
    fail("a finished thread was resumed"); // not reached
}

bool runnable(const block_run &b, const fiber &f, unsigned t) {
    switch (f.st) {
    case READY:
        return true;
    case AT_BLOCK_BARRIER:
        return b.phase != f.phase;
    case AT_WARP_BARRIER:
        return b.warp_phase[t / 32] != f.phase;
    case AT_SHUFFLE: {
        unsigned g = f.shfl_issued - 1, partner = (t & ~31u) | ((t ^ f.shfl_mask[g % RING]) & 31u);
        return b.f[partner].shfl_issued > g;
    }
    default:
        return false;
    }
}

const char *state_name(state s) {
    static const char *names[] = {"running", "at __syncthreads", "at __syncwarp", "at a shuffle",
                                  "finished"};
    return names[s];
}

void deadlock(const block_run &b) {
    char what[256] = "";
    size_t at = 0;
    for (int s = READY; s <= DONE; s++) {
        unsigned k = 0, first = 0;
        for (unsigned t = b.n; t-- > 0;)
            if (b.f[t].st == s) k++, first = t;
        if (k && at < sizeof what)
            at += (size_t)snprintf(what + at, sizeof what - at, "; %u threads %s (the first %u)", k,
                                   state_name((state)s), first);
    }
    fail("deadlock, no thread can go on%s", what);
}

// (a function of its own: getcontext returns twice, which no caller's locals should see)
void fiber_init(fiber &f, unsigned t) {
    memset(&f, 0, sizeof f);
    getcontext(&f.ctx);
    f.stack = stack_for(t);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = STACK_BYTES;
    f.ctx.uc_link = NULL;
    makecontext(&f.ctx, fiber_main, 0);
}

void run_block(block_run &b) {
    for (unsigned t = 0; t < b.n; t++)
        fiber_init(b.f[t], t);
    unsigned done = 0;
    while (done < b.n) {
        bool moved = false;
        for (unsigned k = 0; k < b.n; k++) {
            unsigned t = order ? b.n - 1 - k : k;
            fiber &f = b.f[t];
            if (!runnable(b, f, t)) continue;
            f.st = READY;
            b.cur = t;
            threadIdx = dim3(t);
#ifdef CUDA_EMU_ASAN
            void *fake = NULL;
            __sanitizer_start_switch_fiber(&fake, f.stack, STACK_BYTES);
#endif
            in_thread = true;
            swapcontext(&b.sched, &f.ctx);
            in_thread = false;
#ifdef CUDA_EMU_ASAN
            __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
            moved = true;
            if (f.st == DONE) done++;
        }
        if (!moved) deadlock(b);
    }
}

} // namespace

void set_order(int descending) {
    order = descending;
}

void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda emulator: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (run) fprintf(stderr, " (block (%u, %u), thread %u)", blockIdx.x, blockIdx.y, threadIdx.x);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}

void sync_block() {
    block_run &b = *run;
    if (++b.arrived == b.n) { // the last to arrive releases the others and goes on
        b.arrived = 0, b.phase++;
        return;
    }
    me().phase = b.phase, me().st = AT_BLOCK_BARRIER;
    to_scheduler(false);
}

void sync_warp(unsigned mask) {
    if (mask != 0xffffffffu) fail("__syncwarp(0x%x): only whole warps are emulated", mask);
    block_run &b = *run;
    unsigned w = b.cur / 32;
    if (++b.warp_arrived[w] == 32) {
        b.warp_arrived[w] = 0, b.warp_phase[w]++;
        return;
    }
    me().phase = b.warp_phase[w], me().st = AT_WARP_BARRIER;
    to_scheduler(false);
}

// A shuffle waits for its partner lane only: it orders no other memory and does not gather the
// warp, so the lanes between two __syncwarp() calls run as far apart as the hardware lets them.
double shfl_xor(unsigned mask, double v, int lane_mask) {
    if (mask != 0xffffffffu) fail("shuffle with mask 0x%x: only whole warps are emulated", mask);
    if (lane_mask <= 0 || lane_mask >= 32) fail("shuffle with lane mask %d", lane_mask);
    block_run &b = *run;
    fiber &f = me();
    unsigned t = b.cur, g = f.shfl_issued, partner = (t & ~31u) | ((t ^ (unsigned)lane_mask) & 31u);
    for (unsigned l = t & ~31u; l < (t & ~31u) + 32; l++)
        if (g >= RING && b.f[l].shfl_done <= g - RING)
            fail("a lane is %d shuffles ahead of lane %u", RING, l % 32);
    f.shfl_val[g % RING] = v, f.shfl_mask[g % RING] = lane_mask;
    f.shfl_issued++;
    if (b.f[partner].shfl_issued <= g) {
        f.st = AT_SHUFFLE;
        to_scheduler(false);
    }
    const fiber &p = b.f[partner];
    if (p.shfl_mask[g % RING] != lane_mask)
        fail("shuffle %u of lane %u (xor %d) meets lane %u's shuffle with xor %d", g, t % 32,
             lane_mask, partner % 32, p.shfl_mask[g % RING]);
    f.shfl_done++;
    return p.shfl_val[g % RING];
}

unsigned char *dynamic_smem() {
    return run->smem;
}

void run_grid(void (*body)(void *), void *params, dim3 grid, dim3 block, size_t smem) {
    unsigned n = block.x * block.y * block.z;
    if (block.y != 1 || block.z != 1 || n == 0 || n > MAX_THREADS || n % 32)
        fail("launch of (%u, %u, %u) threads: whole warps along x only", block.x, block.y, block.z);
    if (grid.x == 0 || grid.y == 0 || grid.z != 1 || grid.y > 65535)
        fail("launch of a (%u, %u, %u) grid", grid.x, grid.y, grid.z);
    if (smem > smem_limit)
        fail("launch with %zu bytes of shared memory, more than the %zu allowed", smem, smem_limit);
    if (run) fail("a launch from inside a kernel");
    std::vector<fiber> fibers(n);
    block_run b;
    memset(&b, 0, sizeof b);
    b.body = body, b.params = params, b.n = n, b.f = fibers.data();
    gridDim = grid, blockDim = block;
    for (unsigned k = 0; k < grid.x * grid.y; k++) {
        unsigned id = order ? grid.x * grid.y - 1 - k : k;
        blockIdx = dim3(id % grid.x, id / grid.x);
        // exactly the size asked for, so that AddressSanitizer sees an overrun; all bits set (NaN
        // in bf16 and fp32), so that a read of what the block never wrote shows in the results
        void *mem = NULL;
        if (posix_memalign(&mem, 128, smem ? smem : 1)) fail("no memory for shared memory");
        b.smem = (unsigned char *)mem;
        memset(b.smem, 0xff, smem);
        b.arrived = b.phase = 0;
        memset(b.warp_arrived, 0, sizeof b.warp_arrived);
        run = &b;
        run_block(b);
        run = NULL;
        free(b.smem);
    }
}

} // namespace cuda_emu
