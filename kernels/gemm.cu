// gemm.cu — fp32 linear layer y = x * w^T through cuBLAS.
//
// Activations x[m, k] and weights w[n, k] are row-major, w in PyTorch nn.Linear layout, so
// y[m, n] = x * w^T. cuBLAS is column-major; a row-major matrix is its transpose in column-major,
// so we compute y^T (n x m, ld n) = w (viewed column-major as k x n, ld k, op T)
//                                    * x^T (viewed column-major as k x m, ld k, op N).
// The handle uses CUBLAS_PEDANTIC_MATH so results are true FP32 (no TF32), the reference that
// quantized kernels are measured against.
#include "qsweep/cuda/backend.h"

#include "check.cuh"
#include "device_buffer.cuh"

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

}  // namespace qsweep::cuda
