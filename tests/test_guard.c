/* Unit tests for the guard row (src/ops/cpu/ops_guard.c): data moves through it as through the
 * row it wraps, and what it exists to catch is caught. A host read or write of a buffer, or of
 * one already freed, dies with SIGSEGV; a host pointer or a range past a buffer's end handed to
 * an op, or a buffer as the host side of a transfer, stops the process. Each violation runs in a
 * child process. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ops/ops.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_segv(int sig) {
    (void)sig;
    _exit(3);
}

/* Runs fn(o, p) in a child with stderr silenced; returns its wait status. A child that gets
 * SIGSEGV exits 3 (its own handler, so a sanitizer's handler does not step in); one that
 * survives exits 0. */
static int in_child(const ops *o, float *p, void (*fn)(const ops *, float *)) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 2);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        fn(o, p);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static bool segfaulted(int st) {
    return WIFEXITED(st) && WEXITSTATUS(st) == 3;
}

static bool aborted(int st) {
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void host_read(const ops *o, float *p) {
    (void)o;
    volatile float x = *(volatile float *)p;
    (void)x;
}

static void host_write(const ops *o, float *p) {
    (void)o;
    *(volatile float *)p = 1.0f;
}

static void fill_host_array(const ops *o, float *p) {
    (void)p;
    float host[4];
    o->fill(o, host, 1.0f, 4);
}

static void upload_from_buffer(const ops *o, float *p) {
    float *q = o->alloc(o, 4 * sizeof(float));
    o->upload(o, q, p, 4 * sizeof(float)); /* a buffer as the host side: that is a copy */
}

static void fill_past_end(const ops *o, float *p) {
    o->fill(o, p, 1.0f, 5); /* the buffer holds 4 */
}

static void test_guard_moves_data(void **state) {
    (void)state;
    const ops *o = ops_guard_wrap(ops_cpu());
    assert_string_equal(o->name, "cpu-guard");
    assert_true(o->device_memory);
    assert_int_equal(o->act_bytes, 4);
    /* out[2,2] = inp[2,3] @ w[2,3]^T + bias, through the guard and on host arrays directly */
    const float inp[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, bias[2] = {1, 2};
    float *d_inp = o->alloc(o, sizeof inp), *d_w = o->alloc(o, sizeof w);
    float *d_bias = o->alloc(o, sizeof bias), *d_out = o->alloc(o, 4 * sizeof(float));
    o->upload(o, d_inp, inp, sizeof inp);
    o->upload(o, d_w, w, sizeof w);
    o->upload_act(o, d_bias, bias, 2);
    o->matmul_fwd(o, d_out, d_inp, d_w, d_bias, 2, 3, 2, 0);
    float got[4], want[4];
    o->download(o, got, d_out, sizeof got);
    ops_cpu()->matmul_fwd(ops_cpu(), want, inp, w, bias, 2, 3, 2, 0);
    assert_memory_equal(got, want, sizeof got);
    assert_true(o->sum(o, d_out, 4) == (double)want[0] + want[1] + want[2] + want[3]);
    o->copy(o, d_inp, d_out, sizeof got);
    o->memset0(o, d_out, sizeof got);
    o->download_act(o, got, d_inp, 4);
    assert_memory_equal(got, want, sizeof got);
    assert_true(o->sumsq(o, d_out, 4) == 0.0);
    o->free(o, d_inp);
    o->free(o, d_w);
    o->free(o, d_bias);
    o->free(o, d_out);
    free((void *)o);
}

static void test_guard_bf16(void **state) {
    (void)state;
    const ops *o = ops_guard_wrap(ops_cpu_bf16());
    assert_int_equal(o->act_bytes, 2);
    assert_string_equal(o->precision, "bf16");
    const float x[3] = {1.0f, -2.5f, 0.375f};
    float *d = o->alloc(o, 3 * 2), got[3];
    o->upload_act(o, d, x, 3);
    o->scale(o, d, 2.0f, 3);
    o->download_act(o, got, d, 3);
    for (int i = 0; i < 3; i++)
        assert_true(got[i] == 2.0f * x[i]);
    assert_true(o->sum_act(o, d, 3) == 2.0 * (1.0 - 2.5 + 0.375));
    o->free(o, d);
    free((void *)o);
}

static void test_guard_catches(void **state) {
    (void)state;
    const ops *o = ops_guard_wrap(ops_cpu());
    float *p = o->alloc(o, 4 * sizeof(float));
    o->fill(o, p, 2.0f, 4);
    assert_true(segfaulted(in_child(o, p, host_read)));
    assert_true(segfaulted(in_child(o, p, host_write)));
    assert_true(aborted(in_child(o, p, fill_host_array)));
    assert_true(aborted(in_child(o, p, fill_past_end)));
    assert_true(aborted(in_child(o, p, upload_from_buffer)));
    assert_true(o->sum(o, p, 4) == 8.0); /* untouched by the children */
    o->free(o, p);
    assert_true(segfaulted(in_child(o, p, host_read))); /* unmapped now */
    free((void *)o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_moves_data),
        cmocka_unit_test(test_guard_bf16),
        cmocka_unit_test(test_guard_catches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
