/* libFuzzer target for the safetensors reader: any byte string must parse or fail with a
 * message, never crash, leak or read outside the buffer; an accepted file's tensors must lie
 * inside it and convert without faults, and its checksum check must answer without faults. */
#include "model/safetensors.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy, so reads past the end are caught by ASan */
    uint8_t *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    st_file f;
    char err[256];
    if (st_parse(&f, buf, size, "fuzz", err, sizeof err) == ST_OK) {
        for (int i = 0; i < f.ntensors; i++) {
            const st_tensor *t = &f.tensors[i];
            const uint8_t *p = t->data;
            if (p < buf || p + t->nbytes > buf + size) abort();
            if (t->nbytes != t->numel * st_dtype_size(t->dtype)) abort();
            if (st_find(&f, t->name) == NULL) abort();
            if (t->numel <= 4096) {
                float out[4096];
                (void)st_tensor_to_f32(t, out, (size_t)t->numel);
            }
        }
        for (int i = 0; i < f.nmeta; i++)
            if (!st_meta_get(&f, f.meta_keys[i])) abort();
        /* the payload checksum: absent, matching, or a mismatch with a message */
        bool present = false;
        char verr[256] = "";
        if (st_verify(&f, &present, verr, sizeof verr) != ST_OK && verr[0] == 0) abort();
    } else if (err[0] == 0) {
        abort(); /* every failure carries a message */
    }
    st_close(&f);
    free(buf);
    return 0;
}
