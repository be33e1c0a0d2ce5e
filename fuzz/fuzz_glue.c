/* libFuzzer target for the GLUE TSV reader: any byte string, read as any task's file, must parse
 * or fail with a message naming the file, never crash or read outside the buffer; every parsed
 * example's texts lie inside the split's own copy and its label is in range. */
#include "eval/eval.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const glue_task *t = glue_task_at(data[0] % glue_ntasks());
    data++, size--;
    char *buf = malloc(size ? size : 1); /* private copy: ASan catches reads past the end */
    if (size) memcpy(buf, data, size);
    glue_split s;
    char err[GLUE_ERRLEN];
    if (glue_parse(&s, t, buf, size, "fuzz.tsv", err, sizeof err) == 0) {
        size_t blen = size + 1; /* the split's copy holds the input and a final NUL */
        for (size_t i = 0; i < s.n; i++) {
            const glue_example *e = &s.ex[i];
            if (e->a < s.buf || e->a + e->alen >= s.buf + blen) abort();
            if (e->blen && (e->b < s.buf || e->b + e->blen >= s.buf + blen)) abort();
            if (t->nlabels > 1 && (e->label < 0 || e->label >= t->nlabels)) abort();
        }
        glue_split_free(&s);
    } else if (!strstr(err, "fuzz.tsv")) {
        abort();
    }
    free(buf);
    return 0;
}
