// src/ops/cuda/ops_cuda_fattn.cu compiled as C++ against the emulator's CUDA headers
// (include/): the target defines CRAM_CUDA_EMU and puts include/ first on the search path.
#include "ops/cuda/ops_cuda_fattn.cu"
