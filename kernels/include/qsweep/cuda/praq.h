// qsweep/cuda/praq.h — Robust-PRAQ's importance (stats/praq.h) computed where calibration's
// gate/up input already is, on the GPU (kernels/praq.cu), so `--awq-salience praq` no longer
// copies that input to the host at every block and chunk, and its four GEMMs per draw (rows ×
// inter × hidden each, the cost of PRAQ) run on cuBLAS instead of the host's cores.
//
// One draw over a tile of rows: x̃ = x + sd_t·z (z: standard-normal draws made on the host by the
// CPU's generator, in the CPU's order, and uploaded; sd_t = σ·RMS of row t, its Σx² summed in the
// CPU's order), g = x̃·W_gateᵀ and u = x̃·W_upᵀ (SGEMM, fp32 as the CPU's), the post-activation
// gains elementwise in fp64 as on the CPU, r = gains_g·(W_gate²)ᵀ + gains_u·(W_up²)ᵀ (two SGEMMs),
// then acc[j] += x̃²·(r/denom_j)/k by a thread per channel walking the rows in order (no atomics:
// the same sums every run). It differs from the CPU by the GEMMs' rounding only. Plain C++;
// throws std::runtime_error (out of memory names the buffer and the budget to lower).
#pragma once

#include <cstdint>
#include <memory>

namespace qsweep::cuda {

class PraqDevice {
 public:
  // Uploads, once per block: w_gate, w_up [inter, hidden]; gsq_t, usq_t [hidden, inter] (their
  // squares transposed, as stats/praq.cc keeps them); denom [hidden].
  PraqDevice(int ordinal, const float* w_gate, const float* w_up, const float* gsq_t, const float* usq_t,
             const double* denom, int inter, int hidden);
  ~PraqDevice();
  PraqDevice(const PraqDevice&) = delete;
  PraqDevice& operator=(const PraqDevice&) = delete;

  // Rows of x processed per call at most (the scratch is sized for it).
  static constexpr int64_t kMaxRows = 1024;
  // One draw over rows ≤ kMaxRows of x_device [rows, hidden] (on this device): z_host [rows,
  // hidden] the draws (nullptr: no noise), sigma σ, k the number of draws (the 1/k of the mean);
  // acc_host [hidden] is added to in place.
  void add_draw(const float* x_device, int64_t rows, const double* z_host, double sigma, int k, double* acc_host);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::cuda
