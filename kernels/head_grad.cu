// head_grad.cu — qsweep/cuda/head_grad.h: the head as a loss and its input gradient on one GPU,
// the steps of train/grad_head.cc: RMSNorm of the scored rows (1/rms kept), ÷ divisor, logits by
// cuBLAS, a row kernel turning them into c·(softmax − onehot) with each row's NLL (fp64 sum of
// exponentials), dxh = dlogits·lm_head by cuBLAS, ÷ divisor, the RMSNorm backward; rows beyond
// the scored ones get zero gradient. The logits never leave the device.
#include "qsweep/cuda/head_grad.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "check.cuh"
#include "forward_ops.cuh"
#include "gemm_mode.cuh"
#include "grad_ops.cuh"
#include "grow.cuh"

namespace qsweep::cuda {

using detail::Grow;
using detail::put;

namespace {
constexpr const char* kHint = "lower --fisher-windows' context (--seq-len), or use a GPU with more memory";
}

struct HeadGrad::Impl {
  int H = 0, V = 0, ordinal = 0;
  float eps = 1e-5f, divisor = 1.0f;
  bool bf16 = false, uploaded = false;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  Grow<float> norm, lm_head, x, xh, logits, part;
  Grow<float> inv;
  Grow<int32_t> targets;
  Grow<double> nll;
  std::vector<double> nll_host;
  void bind() const { CUDA_CHECK(cudaSetDevice(ordinal)); }
};

HeadGrad::HeadGrad(int hidden, float eps, int ordinal, bool bf16_gemm) : impl_(new Impl) {
  Impl& m = *impl_;
  m.H = hidden, m.eps = eps, m.ordinal = ordinal, m.bf16 = bf16_gemm;
  m.bind();
  CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&m.blas));
  CUBLAS_CHECK(cublasSetStream(m.blas, m.stream));
  CUBLAS_CHECK(cublasSetMathMode(m.blas, CUBLAS_DEFAULT_MATH));  // FP32, no TF32
}

HeadGrad::~HeadGrad() {
  if (impl_->stream) cudaStreamSynchronize(impl_->stream);
  if (impl_->blas) cublasDestroy(impl_->blas);
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

void HeadGrad::upload(const float* norm, const float* lm_head, int vocab, float divisor) {
  Impl& m = *impl_;
  m.bind();
  if (vocab <= 0 || !norm || !lm_head) throw std::invalid_argument("HeadGrad::upload: no head");
  m.V = vocab, m.divisor = divisor;
  put(m.norm, norm, m.H, "final norm", m.stream);
  put(m.lm_head, lm_head, static_cast<std::size_t>(vocab) * m.H, "lm_head", m.stream);
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
  m.uploaded = true;
}

double HeadGrad::loss_and_grad(const float* x, int64_t x_rows, int64_t n, const int32_t* targets, float* dx) {
  Impl& m = *impl_;
  m.bind();
  if (!m.uploaded) throw std::logic_error("HeadGrad::loss_and_grad before upload");
  if (n <= 0 || n > x_rows || n > (int64_t(1) << 31) - 1)
    throw std::invalid_argument("HeadGrad: " + std::to_string(n) + " scored rows of " + std::to_string(x_rows));
  for (int64_t i = 0; i < n; ++i)
    if (targets[i] < 0 || targets[i] >= m.V)
      throw std::invalid_argument("HeadGrad: target " + std::to_string(targets[i]) + " outside the vocabulary of " +
                                  std::to_string(m.V));
  cudaStream_t s = m.stream;
  const int H = m.H, V = m.V, N = static_cast<int>(n);
  const std::size_t nH = static_cast<std::size_t>(n) * H;
  float* xs = put(m.x, x, nH, "the head's input rows", s);
  float* xh = m.xh.get(nH, "normed head input", kHint);
  float* inv = m.inv.get(static_cast<std::size_t>(n), "1/rms", kHint);
  float* lg = m.logits.get(static_cast<std::size_t>(n) * V, "logits", kHint);
  const int32_t* tg = put(m.targets, targets, static_cast<std::size_t>(n), "targets", s);
  double* nll = m.nll.get(static_cast<std::size_t>(n), "per-row NLL", kHint);
  detail::launch_norm_vectors(xs, xh, H, n, 1, H, m.norm.data(), m.eps, inv, s);
  if (m.divisor != 1.0f) detail::launch_divide(xh, m.divisor, static_cast<int64_t>(nH), s);
  // logits [n, V] = xh [n, H]·lm_headᵀ (gemm_plan.h's linear forward: X xh, W lm_head, Y logits).
  detail::issue(m.blas, m.bf16, linear_forward_call(N, H, V), {xh, m.lm_head.data(), lg});
  detail::launch_softmax_xent_rows(lg, n, V, tg, 1.0f / static_cast<float>(n), nll, s);
  // dxh [n, H] = dlogits [n, V]·lm_head [V, H] (the linear's dx: X dxh, W lm_head, Y dlogits).
  detail::issue(m.blas, m.bf16, linear_dx_call(N, H, V), {xh, m.lm_head.data(), lg});
  if (m.divisor != 1.0f) detail::launch_divide(xh, m.divisor, static_cast<int64_t>(nH), s);
  detail::launch_norm_vectors_backward(xs, m.norm.data(), inv, xh, xh, H, n, 1, H, m.part.get(nH, "norm gradients", kHint),
                                       s);
  m.nll_host.resize(static_cast<std::size_t>(n));
  CUDA_CHECK(cudaMemcpyAsync(m.nll_host.data(), nll, n * sizeof(double), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaMemcpyAsync(dx, xh, nH * sizeof(float), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  for (std::size_t i = nH; i < static_cast<std::size_t>(x_rows) * H; ++i) dx[i] = 0.0f;
  double loss = 0;
  for (double v : m.nll_host) loss += v;  // row order, as the CPU
  return loss / static_cast<double>(n);
}

}  // namespace qsweep::cuda
