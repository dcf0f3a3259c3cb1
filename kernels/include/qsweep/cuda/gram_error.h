// qsweep/cuda/gram_error.h — the CUDA twin of quant/awq.h output_sq_error for AWQ's scale search
// (kernels/gram_error.cu): Σ over rows of (w − ŵ)ᵀ G (w − ŵ) with the calibration Gram G resident
// on the GPU for the whole search, d = w − ŵ in fp64, d·G by cuBLAS dgemm over fixed row tiles, the
// tiles' sums added on the host in tile order (deterministic; not the CPU's bits). Plain C++;
// throws std::runtime_error.
#pragma once

#include <memory>

namespace qsweep::cuda {

class GramError {
 public:
  // G [in, in] row-major fp64 (symmetric), uploaded once.
  GramError(int ordinal, const double* gram, int in);
  ~GramError();
  GramError(const GramError&) = delete;
  GramError& operator=(const GramError&) = delete;
  // w, what [out, in] row-major fp32 host.
  double error(const float* w, const float* what, int out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::cuda
