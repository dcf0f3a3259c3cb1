// praq.h — Robust-PRAQ's risk-aware post-activation importance of the gate/up projections' input
// channels (the AWQ study's variant; `--awq-salience praq`). With g = W_gate x, u = W_up x and the
// MLP's gated output h = SiLU(g) ⊙ u, a quantization error on weight (i, j) moves h_i to first
// order by SiLU'(g_i)·u_i·Δ_ij·x_j (through the gate) or SiLU(g_i)·Δ_ij·x_j (through up). The
// importance of input channel j is the RMS of x_j weighted by that post-activation gain of the
// units it feeds, averaged over the units with the weights' squares:
//
//   I_j² = mean_t  x̃_tj² · r_tj,
//   r_tj = [ Σ_i W_gate,ij² (SiLU'(g̃_ti) ũ_ti)² + Σ_i W_up,ij² SiLU(g̃_ti)² ] / [ Σ_i W_gate,ij² + Σ_i W_up,ij² ]
//
// so a channel that is quiet on average but large where the gate sits on SiLU's steep part or
// near its sign change (SiLU'(0) = 1/2, so crossings count) is kept, and one that is loud only
// where the gate is closed (SiLU' ≈ 0, SiLU ≈ 0) is not — AWQ's mean-magnitude salience sees
// neither. Robust: x̃ = x + ε, ε ~ N(0, (σ·RMS(x_t))²) per token t (RMS over that token's
// channels), averaged over k draws whose seeds depend only on (seed, block, chunk, draw), so the
// importance is the same on any rank count. Where the formula's quantity is quadratic in x (AWQ's
// own scale-search error) the noise is added in closed form instead (quantize_model.cc).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace qsweep {

namespace cuda {
class PraqDevice;  // qsweep/cuda/praq.h (CUDA builds)
}

struct PraqSpec {
  const float* w_gate = nullptr;  // [inter, hidden]
  const float* w_up = nullptr;    // [inter, hidden]
  int inter = 0, hidden = 0;
  double noise_std = 0;  // σ, relative to each token's RMS
  int samples = 1;       // k (1 when σ = 0)
  uint64_t seed = 0;
  int block = 0;
};

class PraqAccumulator {
 public:
  explicit PraqAccumulator(const PraqSpec& s);
  // acc[j] += Σ_t x̃_tj² r_tj / k for the rows of chunk `chunk` (its global index).
  void add(const float* x, int64_t rows, int64_t chunk, double* acc);
  // The same for x in the memory of GPU `ordinal` (a device forward's input, never copied to the
  // host): the draws made here by the same generator, the rest on the GPU (qsweep/cuda/praq.h;
  // the weights uploaded at the first call). Equal to add() up to the GEMMs' rounding.
  void add_device(const float* x_device, int64_t rows, int64_t chunk, int ordinal, double* acc);

 private:
  PraqSpec s_;
  std::shared_ptr<cuda::PraqDevice> dev_;  // made at the first add_device
  std::vector<float> gsq_t_, usq_t_;  // [hidden, inter]: W_gate², W_up² transposed
  std::vector<double> denom_;         // [hidden]
};

}  // namespace qsweep
