// sgra.h — SGRA, sensitivity-scaled training budgets for Block-AP (issue 16): per-block epochs,
// learning rate and patience from per-layer sensitivity scores (a `qsweep sensitivity` output).
// The rule, with gains g_e (--budget-epochs-gain, default 1) and g_lr (--budget-lr-gain, 0.5):
//   s_b  = mean over block b's linears of the layer's score at the chosen candidate;
//   S_b  = (s_b − min_b s) / (max_b s − min_b s) ∈ [0, 1]   (0.5 for every block when all equal);
//   epochs_b   = max(1, round(epochs · (1 + g_e·S_b)));
//   patience_b = round(patience · (1 + g_e·S_b));
//   lr_b       = lr · (1 + g_lr·(S_b − 0.5))      (weights and quantizer alike).
// The candidate is the palette entry equal to the quantized grid (bits and group size); without
// one, the palette's lowest bit width (its largest group on a tie), which ranks layers the same
// way in practice; the choice is logged.
#pragma once
#include <string>
#include <vector>

#include "quant/grid.h"

namespace qsweep {

struct SgraRule {
  double epochs_gain = 1.0, lr_gain = 0.5;
};

struct BlockBudget {
  double s = 0.5;  // normalised sensitivity S_b
  int epochs = 0, patience = 0;
  double lr_scale = 1.0;
};

// S_b per block from sensitivity.h5 at `path` (a file, or a folder holding sensitivity.h5):
// `score` is fisher, kl-probe or output-error, or "auto" (the first present of those, in that
// order); n_blocks ≤ 0: as many as the file's layers name. `note` receives what was chosen (score and candidate). Throws naming the file when the
// score is missing or a block has no layers.
std::vector<double> block_sensitivity(const std::string& path, const std::string& score, const GridSpec& grid, int n_blocks,
                                      std::string* note);

BlockBudget block_budget(double S, int epochs, int patience, const SgraRule& rule);

}  // namespace qsweep
