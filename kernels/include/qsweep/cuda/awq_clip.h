// qsweep/cuda/awq_clip.h — the CUDA twin of quant/awq.h awq_clip's search (kernels/awq_clip.cu):
// for every (output row, group) the clipping thresholds ±max|w|·(1 − i/n_grid), i < n_grid/2, each
// clipped group quantized with the CPU's fp32 operations (quant/grid.h, no fused multiply-add, so
// the candidates' ŵ are the CPU's bits) and scored by δᵀ G_gg δ on the group's diagonal block of the
// Gram (fp64; summed in another order than the CPU, so a near tie may pick the other threshold).
// Plain C++; throws std::runtime_error.
#pragma once

#include <cstdint>
#include <vector>

namespace qsweep::cuda {

// w [out, in] row-major; blocks: the ng diagonal blocks of the Gram, block g [n_g, n_g] row-major
// (n_g = min(G, in − g·G)), concatenated. Writes the chosen index i per (row, group) into
// best_i [out · ng] (row-major).
void awq_clip_search(int ordinal, const float* w, int out, int in, const std::vector<double>& blocks, int group_len,
                     int bits, bool sym, int n_grid, int32_t* best_i);

}  // namespace qsweep::cuda
