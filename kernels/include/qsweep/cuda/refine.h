// qsweep/cuda/refine.h — quant/refine.h's greedy-exact refinement on the GPU (kernels/refine.cu):
// per output row, coordinate descent on dᵀ(G + damp·diag G)d over single-code moves, the Gram
// resident for the call, r = G'd kept exact per move. A thread block per row; each step takes the
// move with the largest decrease (ties: the lowest column), where the CPU's sequential scan takes
// the first one within 1e-12·f of its running best — so the two may pick different moves at near
// ties; both only ever lower the objective and stop at a local minimum. Plain C++; throws
// std::runtime_error.
#pragma once

#include <cstdint>

namespace qsweep::cuda {

struct RefineTotals {
  int64_t moves = 0;
  double before = 0, after = 0;  // the objective summed over rows (in row order)
};

// codes [out, in] (updated in place), w [out, in] fp32, the grid per row and group: scales and
// zeros [out, groups], the column → group map col_group [in]; qmax = 2^bits − 1; gram [in, in].
RefineTotals refine_greedy_exact(int ordinal, uint8_t* codes, const float* w, int out, int in, const float* scales,
                                 const int32_t* zeros, int groups, const int32_t* col_group, int qmax,
                                 const double* gram, double damp);

}  // namespace qsweep::cuda
