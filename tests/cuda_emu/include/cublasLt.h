// The CUDA emulator's <cublasLt.h>: the types cuda_internal.h names, nothing that runs.
#ifndef CRAM_CUDA_EMU_CUBLASLT_H
#define CRAM_CUDA_EMU_CUBLASLT_H

typedef struct cuda_emu_lt_handle *cublasLtHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0 } cublasStatus_t;

#endif
