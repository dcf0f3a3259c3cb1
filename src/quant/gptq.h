// gptq.h — GPTQ (Frantar et al. 2022), as the reference implementation does it, in fp64:
// H = 2 X Xᵀ / n; dead columns (H_ii = 0) get H_ii = 1 and W[:, i] = 0; optional act-order
// (columns by decreasing H_ii, with static groups: each column keeps the grid of its original
// group, computed from W before any update); damping λ = damp · mean(diag H) added to the
// diagonal, raised ×10 and retried while the Cholesky factorisation fails; U = chol(H⁻¹) upper;
// columns quantized in blocks of 128 with the error propagated inside the block column by column
// and to the rest of W with one GEMM per block. Group grids (without act-order) come from W as
// it stands at the start of the block holding the group's first column — the reference's
// behaviour. Deterministic for any thread count (row-parallel loops, fixed GEMM tiling).
#pragma once
#include "quant/grid.h"

namespace qsweep {

struct GptqOptions {
  double damp = 0.01;
  int block_size = 128;
  bool act_order = false;
};

struct GptqResult {
  QuantizedLinear q;
  double damp_used = 0;  // the damping fraction that made the factorisation succeed
  int dead_columns = 0;
};

// w [out, in]; xtx = Σ x xᵀ [in, in] over `tokens` calibration tokens.
GptqResult gptq_quantize(const float* w, int out, int in, const std::vector<double>& xtx,
                         double tokens, const GridSpec& grid, const GptqOptions& opt);

}  // namespace qsweep
