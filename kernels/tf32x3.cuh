// tf32x3.cuh — --compute-dtype tf32x3: fp32 GEMMs at tensor-core speed with fp32-level accuracy
// ("3xTF32", qsweep/cuda/tf32_split.h). An operand is stored split, row by row, as [big | small]
// or [small | big] (2K columns for K), so that one cuBLAS TF32 GEMM over the 2K columns of
// X2 = [Xbig | Xsmall] and W2 = [Wsmall | Wbig] gives the two small cross terms, and a second over
// the first K columns of X2 and the last K of W2 adds Xbig·Wbigᵀ (small terms first, the large
// term last, as fp32 emulation on tensor cores is done). The operands are exact TF32 numbers, so
// cuBLAS's conversion for CUBLAS_COMPUTE_32F_FAST_TF32 loses nothing; accumulation is fp32.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace qsweep::cuda::detail {

// src row-major [rows, cols] → dst row-major [rows, 2·cols]: each row as [big | small]
// (big_first) or [small | big] (tf32_split.h).
void launch_split_tf32(const float* src, float* dst, int64_t rows, int cols, bool big_first, cudaStream_t s);

// y [M, N] (row-major, ld ldy) = x·wᵀ + beta·y through the split operands: x2 = [xbig | xsmall]
// [M, 2K] and w2 = [wsmall | wbig] [N, 2K] (launch_split_tf32), two TF32 GEMMs (header comment).
void gemm_xwt_tf32x3(cublasHandle_t h, const float* x2, const float* w2, float* y, int M, int N, int K, float beta,
                     int ldy);

}  // namespace qsweep::cuda::detail
