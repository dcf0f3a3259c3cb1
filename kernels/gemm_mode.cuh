// gemm_mode.cuh — the engines' GEMMs on fp32 arrays in the run's compute dtype (core/device.h
// ComputeDtype): fp32 is cuBLAS SGEMM in the default math mode (true FP32, TF32 off: the path every
// accuracy bar of issue 12 is about); bf16 is cublasGemmEx with CUBLAS_COMPUTE_32F_FAST_16BF, which
// lets cuBLAS round the fp32 inputs to bf16 for the tensor cores and accumulate in fp32 (same
// arrays, no conversion pass of ours; --compute-dtype bf16). Column-major, as cuBLAS.
#pragma once

#include <cublas_v2.h>

#include <cstdint>

#include "check.cuh"
#include "qsweep/cuda/gemm_plan.h"

namespace qsweep::cuda::detail {

inline void sgemm(cublasHandle_t h, bool bf16, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                  const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta, float* C,
                  int ldc) {
  if (!bf16) {
    CUBLAS_CHECK(cublasSgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc));
    return;
  }
  CUBLAS_CHECK(cublasGemmEx(h, ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, beta, C, CUDA_R_32F, ldc,
                            CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT));
}

inline void sgemm_strided(cublasHandle_t h, bool bf16, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                          const float* alpha, const float* A, int lda, int64_t sa, const float* B, int ldb, int64_t sb,
                          const float* beta, float* C, int ldc, int64_t sc, int batch) {
  if (!bf16) {
    CUBLAS_CHECK(cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch));
    return;
  }
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, sa, B, CUDA_R_32F, ldb, sb,
                                          beta, C, CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F_FAST_16BF,
                                          CUBLAS_GEMM_DEFAULT));
}

// Issues one planned call (qsweep/cuda/gemm_plan.h: the calls tests/test_gemm_plan.cc checks on
// the CPU) with the device pointers of its operands.
inline void issue(cublasHandle_t h, bool bf16, const GemmCall& g, float* const (&ops)[kOperands]) {
  const float* A = ops[static_cast<int>(g.a)] + g.a_off;
  const float* B = ops[static_cast<int>(g.b)] + g.b_off;
  float* C = ops[static_cast<int>(g.c)] + g.c_off;
  const cublasOperation_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (g.batch == 1)
    sgemm(h, bf16, ta, tb, g.m, g.n, g.k, &g.alpha, A, g.lda, B, g.ldb, &g.beta, C, g.ldc);
  else
    sgemm_strided(h, bf16, ta, tb, g.m, g.n, g.k, &g.alpha, A, g.lda, g.stride_a, B, g.ldb, g.stride_b, &g.beta, C, g.ldc,
                  g.stride_c, g.batch);
}

}  // namespace qsweep::cuda::detail
