// gemm.cu — fp32 linear layer y = x * w^T through cuBLAS.
//
// Activations x[m, k] and weights w[n, k] are row-major, w in PyTorch nn.Linear layout, so
// y[m, n] = x * w^T. cuBLAS is column-major; a row-major matrix is its transpose in column-major,
// so we compute y^T (n x m, ld n) = w (viewed column-major as k x n, ld k, op T)
//                                    * x^T (viewed column-major as k x m, ld k, op N).
// The handle uses CUBLAS_PEDANTIC_MATH so results are true FP32 (no TF32), the reference that
// quantized kernels are measured against.
#include "qsweep/cuda/backend.h"

#include "bf16_operands.cuh"
#include "check.cuh"
#include "device_buffer.cuh"
#include "tf32x3.cuh"

#include <algorithm>
#include <stdexcept>

namespace qsweep::cuda {
namespace {

// Owns a cuBLAS handle for one wrapper call (the test wrappers are not hot paths).
class CublasHandle {
 public:
  CublasHandle() { CUBLAS_CHECK(cublasCreate(&handle_)); }
  ~CublasHandle() { cublasDestroy(handle_); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const noexcept { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

}  // namespace

void sgemm_xwt(const float* x, const float* w, float* y, int m, int n, int k) {
  if (m < 0 || n < 0 || k < 0) {
    throw std::invalid_argument("qsweep::cuda::sgemm_xwt: negative shape");
  }
  if (m == 0 || n == 0) return;
  const std::size_t y_count = static_cast<std::size_t>(m) * static_cast<std::size_t>(n);
  if (k == 0) {  // empty inner dimension: the product is all zeros
    std::fill(y, y + y_count, 0.0f);
    return;
  }

  detail::DeviceBuffer<float> d_x(x, static_cast<std::size_t>(m) * static_cast<std::size_t>(k));
  detail::DeviceBuffer<float> d_w(w, static_cast<std::size_t>(n) * static_cast<std::size_t>(k));
  detail::DeviceBuffer<float> d_y(y_count);

  CublasHandle handle;
  CUBLAS_CHECK(cublasSetMathMode(handle.get(), CUBLAS_PEDANTIC_MATH));
  const float alpha = 1.0f;
  const float beta = 0.0f;
  CUBLAS_CHECK(cublasSgemm(handle.get(), CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, d_w.get(), k,
                           d_x.get(), k, &beta, d_y.get(), n));
  d_y.download(y);
}

void gemm_xwt(const float* x, const float* w, float* y, int m, int n, int k, GemmArith arith) {
  if (arith == GemmArith::Fp32) return sgemm_xwt(x, w, y, m, n, k);
  if (m < 0 || n < 0 || k <= 0) throw std::invalid_argument("qsweep::cuda::gemm_xwt: bad shape");
  if (m == 0 || n == 0) return;
  const std::size_t mk = static_cast<std::size_t>(m) * k, nk = static_cast<std::size_t>(n) * k;
  detail::DeviceBuffer<float> d_x(x, mk), d_w(w, nk), d_y(static_cast<std::size_t>(m) * n);
  CublasHandle handle;
  const float one = 1.0f, zero = 0.0f;
  if (arith == GemmArith::Tf32x3) {
    detail::DeviceBuffer<float> x2(2 * mk), w2(2 * nk);
    detail::launch_split_tf32(d_x.get(), x2.get(), m, k, /*big_first=*/true, nullptr);
    detail::launch_split_tf32(d_w.get(), w2.get(), n, k, /*big_first=*/false, nullptr);
    detail::gemm_xwt_tf32x3(handle.get(), x2.get(), w2.get(), d_y.get(), m, n, k, 0.0f, n);
  } else if (arith == GemmArith::Tf32) {
    CUBLAS_CHECK(cublasGemmEx(handle.get(), CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, d_w.get(), CUDA_R_32F, k, d_x.get(),
                              CUDA_R_32F, k, &zero, d_y.get(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F_FAST_TF32,
                              CUBLAS_GEMM_DEFAULT));
  } else {
    detail::DeviceBuffer<__nv_bfloat16> x16(mk), w16(nk);
    detail::launch_round_bf16(d_x.get(), x16.get(), mk, nullptr);
    detail::launch_round_bf16(d_w.get(), w16.get(), nk, nullptr);
    GemmCall g = linear_forward_call(m, k, n);
    detail::gemm_bf16(handle.get(), g, w16.get(), x16.get(), d_y.get());
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  d_y.download(y);
}

}  // namespace qsweep::cuda
