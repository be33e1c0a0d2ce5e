// The CUDA emulator's <cuda_bf16.h>: the bf16 type as its 16 bits. The kernels under test do all
// their bf16 arithmetic through ops/bf16.h on raw bits; only WMMA operands have this type.
#ifndef CRAM_CUDA_EMU_BF16_H
#define CRAM_CUDA_EMU_BF16_H

#include <stdint.h>

struct __nv_bfloat16 {
    uint16_t x;
};

#endif
