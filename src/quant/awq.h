// awq.h — the AWQ scale search (Lin et al. 2023, as AutoAWQ does it) for a group of linear
// layers sharing one input: for α in {0, 1/n, …, (n−1)/n}, s = x̄^α clamped at 1e-4 and
// normalised by sqrt(max(s)·min(s)) (x̄ = per-channel mean |x|, or root mean x² with l2
// salience); the group's error Σ_t ||W x_t − Q(W·diag(s))·diag(s)⁻¹ x_t||² over all calibration
// tokens, summed over the group's linears, is evaluated exactly as Σ_rows δᵀ (Σ_t x_t x_tᵀ) δ
// from the reduced Gram matrix — no pass over the activations, identical on any rank count.
// The α with the least error wins (ties: the smaller α).
#pragma once
#include <vector>

#include "model/llama_weights.h"
#include "quant/grid.h"
#include "stats/activation_stats.h"

namespace qsweep {

struct AwqSearch {
  double alpha = 0;
  std::vector<float> scales;  // s, per input channel
  std::vector<double> errors;  // per grid point, Σ squared output error
};

// weights[k] is [outs[k], in]; gram = Σ x xᵀ [in, in]; salience per input channel.
AwqSearch awq_search(const std::vector<const float*>& weights, const std::vector<int>& outs, int in,
                     const std::vector<double>& gram, const std::vector<double>& salience,
                     const std::vector<GridSpec>& grids, int n_grid);

// AWQ's clipping search (AutoAWQ's auto_clip): for each output row and group, try clipping the
// weights to ±max|w|·(1 − i/n_grid), i = 0..n_grid/2 − 1, and keep the threshold whose quantized
// group has the least output error Σ_t (δ·x_t)² over the calibration tokens — evaluated exactly
// from the Gram block of the group. Clips w [out, in] in place; returns the mean shrink chosen.
double awq_clip(float* w, int out, int in, const std::vector<double>& gram, const GridSpec& grid,
                int n_grid = 20);

// Applies AWQ scales s of the group reading `input` to a block in full precision: the group's
// linears get W·diag(s), and s⁻¹ is folded into what produces the input (input_layernorm for
// q/k/v, post_attention_layernorm for gate/up, up_proj's rows for down, v_proj's rows for o),
// so the block computes the same function. This stays exact for the families' extras: qwen3's
// q/k norms act on q_proj/k_proj outputs, which the input fold leaves unchanged (and v_proj, whose
// rows take o_proj's fold, has no norm); MiniCPM's residual factor multiplies o_proj's and
// down_proj's outputs, which their folds leave unchanged too. Power-of-two scales make the folded
// block bit-identical (test_model_families.cc checks both).
void awq_apply_scales(BlockWeights& w, BlockInput input, const std::vector<float>& s);

// Σ over rows of δ_rᵀ G δ_r for δ = w − what [out, in]: the summed squared output error over the
// calibration tokens whose Gram matrix is G. Deterministic for any thread count; on a CUDA device
// (core/device.h) computed there (qsweep/cuda/gram_error.h: the same products, another sum order).
double output_sq_error(const float* w, const float* what, int out, int in, const std::vector<double>& gram);

}  // namespace qsweep
