// refine.h — rounding refinements that run after a base quantizer (rtn, awq, gptq) and move single
// codes between the two grid points around each weight's unrounded code u = w/s + z (clamped to
// the grid): floor(u) and floor(u)+1. A code that is neither (possible after GPTQ) may move to the
// nearer of the two. Scales, zero points and g_idx stay as the base method set them.
//
//   greedy        per output row and per group, separately: x̄ = the mean calibration input the
//                 layer sees (AWQ-scaled when AWQ ran) with the top `outlier_percent` of |x̄| over
//                 the layer's channels set to 0; the group's mean-output error is
//                 e = Σ_j x̄_j (w_j − ŵ_j). Repeatedly make the single move that reduces |e| the
//                 most, until none does.
//   greedy-exact  per output row: the same moves, minimising the row's full output error
//                 (w − ŵ)ᵀ G (w − ŵ), G = Σxxᵀ of the inputs the layer sees: coordinate descent,
//                 each step the move with the largest decrease (kept exact with r = G(w − ŵ)).
//                 `damp` μ minimises (w − ŵ)ᵀ (G + μ·diag G) (w − ŵ) instead: it shrinks the
//                 channel correlations of the calibration Gram, which the moves otherwise exploit
//                 to the full though other text does not share them (qsweep's default μ = 1;
//                 μ = 0: the exact Gram). From nearest rounding (rtn, awq) every move raises the
//                 diagonal term, so a lower damped objective means a lower exact one as well; μ is
//                 invariant to AWQ's per-channel scaling, unlike GPTQ-style damping by mean(diag)·I.
// Both only ever lower their objective (ties and increases are never taken), so they terminate.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/grid.h"

namespace qsweep {

enum class Refine { None, Greedy, GreedyExact };
Refine parse_refine(const std::string& s);  // none | greedy | greedy-exact; throws otherwise
const char* refine_name(Refine r);

struct RefineResult {
  int64_t moves = 0;
  double before = 0, after = 0;  // the objective summed over rows (and groups): Σ|e| or Σ dᵀGd
};

// w: the weights the codes approximate [out, in] (AWQ: the scaled weights); xbar: per input
// channel, the mean input the layer sees.
RefineResult refine_greedy(QuantizedLinear& q, const float* w, const std::vector<double>& xbar, double outlier_percent);
// gram: [in, in] Σxxᵀ of the inputs the layer sees; objective dᵀ(G + damp·diag G)d.
RefineResult refine_greedy_exact(QuantizedLinear& q, const float* w, const std::vector<double>& gram, double damp = 0);

// Masked x̄ (the top `outlier_percent` of |x̄| set to 0; ties broken by channel index).
std::vector<double> mask_outliers(std::vector<double> xbar, double outlier_percent);

}  // namespace qsweep
