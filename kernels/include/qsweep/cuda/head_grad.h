// qsweep/cuda/head_grad.h — the CUDA twin of train/grad_ops.h's head loss for the fisher score:
// final RMSNorm of the first n rows of x, ÷ the logit divisor (minicpm), lm_head, log-softmax, the
// mean NLL of the targets, and its gradient with respect to x (dloss 1; the norm's and lm_head's
// own gradients are not needed there). fp32, cuBLAS (TF32 off; bf16 GEMMs with bf16_gemm); the
// softmax's sum of exponentials and the NLLs in fp64, as on the CPU. The head's weights are
// uploaded once and stay. Plain C++; errors throw std::runtime_error.
#pragma once

#include <cstdint>
#include <memory>

namespace qsweep::cuda {

class HeadGrad {
 public:
  HeadGrad(int hidden, float eps, int ordinal, bool bf16_gemm);
  ~HeadGrad();
  HeadGrad(const HeadGrad&) = delete;
  HeadGrad& operator=(const HeadGrad&) = delete;

  // norm [hidden], lm_head [vocab, hidden] host arrays; divisor 1: none.
  void upload(const float* norm, const float* lm_head, int vocab, float divisor);
  // x [x_rows, hidden] host; rows 0..n−1 scored against targets[n] (each in [0, vocab)). Returns
  // the mean NLL; dx [x_rows, hidden] host receives d(mean NLL)/dx (0 on rows n and beyond).
  double loss_and_grad(const float* x, int64_t x_rows, int64_t n, const int32_t* targets, float* dx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::cuda
