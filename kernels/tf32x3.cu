// tf32x3.cu — tf32x3.cuh: the splitting kernel and the two-GEMM fp32-emulating product.
#include "tf32x3.cuh"

#include "check.cuh"
#include "qsweep/cuda/tf32_split.h"

namespace qsweep::cuda::detail {

namespace {

// Grid-stride over the source elements; element (r, c) goes to columns c and cols + c of row r.
__global__ void split_tf32_kernel(const float* __restrict__ src, float* __restrict__ dst, int64_t rows, int cols,
                                  bool big_first) {
  const int64_t n = rows * cols, stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t r = i / cols, c = i - r * cols;
    const Tf32Pair p = tf32_split(src[i]);
    float* row = dst + r * 2 * cols;
    row[c] = big_first ? p.big : p.small;
    row[cols + c] = big_first ? p.small : p.big;
  }
}

}  // namespace

void launch_split_tf32(const float* src, float* dst, int64_t rows, int cols, bool big_first, cudaStream_t s) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  const int64_t threads = 256;
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 16384) blocks = 16384;  // grid-stride beyond
  split_tf32_kernel<<<static_cast<unsigned>(blocks), static_cast<unsigned>(threads), 0, s>>>(src, dst, rows, cols,
                                                                                             big_first);
  CUDA_CHECK(cudaGetLastError());
}

void gemm_xwt_tf32x3(cublasHandle_t h, const float* x2, const float* w2, float* y, int M, int N, int K, float beta,
                     int ldy) {
  // Column-major yᵀ [N, M] = w2ᵀ-view · x2ᵀ-view (gemm_plan.h's linear_forward_call with ld 2K).
  const float one = 1.0f;
  const int ld = 2 * K;
  // Small terms: [wsmall | wbig] · [xbig | xsmall] over 2K = wsmall·xbig + wbig·xsmall.
  CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, 2 * K, &one, w2, CUDA_R_32F, ld, x2, CUDA_R_32F, ld,
                            &beta, y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
  // The large term: wbig (w2's last K columns) · xbig (x2's first K), added.
  CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w2 + K, CUDA_R_32F, ld, x2, CUDA_R_32F, ld, &one,
                            y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
}

}  // namespace qsweep::cuda::detail
