// qsweep/cuda/gram_error.h — the CUDA twin of quant/awq.h output_sq_error for AWQ's scale search
// (kernels/gram_error.cu): Σ over rows of (w − ŵ)ᵀ G (w − ŵ) with the calibration Gram G resident
// on the GPU for the whole search, d = w − ŵ in fp64, d·G by cuBLAS dgemm over fixed row tiles, the
// tiles' sums added on the host in tile order (deterministic; not the CPU's bits). Plain C++;
// throws std::runtime_error.
//
// The whole candidate can run there too (scaled_rtn_error): the layer's weights uploaded once per
// search, each candidate's ŵ = RTN(w·diag(s))·diag(1/s) made on the device with the CPU's fp32
// operations (quant/grid.h: the same products, quotients and round-half-to-even, no fused
// multiply-add), so ŵ equals the CPU's bit for bit and only the error's summation differs.
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

  // Uploads the weights w [out, in] of one layer of the search; returns its index.
  int add_weights(const float* w, int out);
  // error(w_k, ŵ) for ŵ = RTN(w_k·diag(s)) on the grid (bits, group_size (-1: the row), sym),
  // divided by s again; s [in] host.
  double scaled_rtn_error(int k, const float* s, int bits, int group_size, bool sym);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::cuda
