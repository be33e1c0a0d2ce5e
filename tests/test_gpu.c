// The CUDA path end to end: device query and a kernel whose result must equal the CPU's
// bit for bit. Skips (exit 77, with the reason) where no GPU can run it.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "core/rng.h"
#include "ops/cuda/gpu.h"

static void test_query(void **state) {
    (void)state;
    gpu_info gi;
    char err[512] = "";
    assert_int_equal(gpu_query(&gi, err, sizeof err), 0);
    assert_true(gi.count > 0);
    assert_true(gi.name[0] != 0);
    assert_true(gi.cc_major >= 5);
    assert_true(gi.total_mem > ((size_t)1 << 30));
    printf("gpu 0: %s, compute capability %d.%d, %.1f GiB, runtime %d, driver %d\n", gi.name,
           gi.cc_major, gi.cc_minor, (double)gi.total_mem / (1 << 30), gi.runtime_version,
           gi.driver_version);
}

static void check_axpy(size_t n, float a) {
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *want = malloc(n * sizeof *want);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(want);
    core_rng r;
    core_rng_init(&r, 1234, 0, n, 0);
    for (size_t i = 0; i < n; i++) {
        x[i] = core_rng_normal(&r);
        y[i] = core_rng_normal(&r);
        want[i] = fmaf(a, x[i], y[i]);
    }
    char err[512] = "";
    int rc = gpu_axpy(y, x, a, n, err, sizeof err);
    if (rc) fprintf(stderr, "gpu_axpy: %s\n", err);
    assert_int_equal(rc, 0);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += memcmp(&y[i], &want[i], sizeof(float)) != 0;
    assert_int_equal(bad, 0);
    free(x);
    free(y);
    free(want);
}

static void test_axpy(void **state) {
    (void)state;
    check_axpy(1, 2.0f);
    check_axpy(3, 1.5f); // only the trailing scalar path
    check_axpy(1000, -0.5f);
    check_axpy(1003, -0.25f);                   // float4 body and a 3-element tail
    check_axpy((size_t)1 << 24, 0.37f);         // many blocks
    check_axpy(((size_t)1 << 26) + 4003, 0.5f); // more float4s than the capped grid (2^16 blocks)
}

int main(void) {
    gpu_info gi;
    char err[512] = "";
    if (!gpu_compiled()) {
        printf("skipped: this build has no CUDA backend (nvcc was not found)\n");
        return 77;
    }
    if (gpu_query(&gi, err, sizeof err) || gi.count == 0) {
        printf("skipped: no usable GPU (%s)\n", err[0] ? err : "the CUDA runtime sees no device");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_axpy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
