// allocate_plan.h — from sensitivity scores and a budget to the plan JSON `quantize --plan` reads:
// what `qsweep allocate` does and what a sweep's [allocate] cells do before they quantize. The
// budget is checked against the model's shapes alone (check_budget), so a job file with an
// impossible budget fails before any work; allocate_plan then solves the exact multiple-choice
// knapsack (quant/allocate.h) over the request's candidates.
//   --target-avg-bits B  bits per quantized weight, as summary.csv's bits_per_weight
//   --target-size-mb S   the whole stored model in 10^6 bytes, as summary.csv's model_bytes
//   neither, with a strategy: the strategy's natural target (conservative 5.0, adaptive 4.0,
//   aggressive 3.0 bits per weight)
#pragma once
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "quant/allocate.h"
#include "quant/grid.h"

namespace qsweep {

struct SensitivityData;
class LlamaWeights;

struct AllocateRequest {
  double avg_bits = NAN, size_mb = NAN;
  std::string strategy, palette, score;  // empty: every scored candidate; the file's best score
};

// The quantizable linears' shapes and what the rest of the model stores.
struct ModelSizes {
  std::vector<std::string> layers;
  std::vector<std::pair<int, int>> shapes;  // (out, in)
  double quantized_params = 0, full_bits = 0, other_bytes = 0;
};
ModelSizes model_sizes(const LlamaWeights& model);  // the decoder's q..down projections
ModelSizes model_sizes(const SensitivityData& d);

double natural_target_bits(const std::string& strategy);  // throws for an unknown strategy
// The request's candidates: --palette, else the strategy's, else `scored` (all of them).
std::vector<GridSpec> request_palette(const AllocateRequest& q, const std::vector<GridSpec>& scored);
// Throws naming the option when the budget is negative or zero, above the full model, or below
// the smallest model the palette can make; returns the budget in bits of the quantized linears.
double check_budget(const ModelSizes& m, const std::vector<GridSpec>& palette, const AllocateRequest& q);
// "--target-avg-bits 3.5" / "--target-size-mb 60" / "adaptive's natural 4.0 bits per weight".
std::string budget_string(const AllocateRequest& q);

struct AllocateOutcome {
  nlohmann::json plan;  // {"default", "layers", "allocation": {..., predicted_score, ...}}
  AllocResult result;
  double budget_bits = 0;
  std::string score;
  std::vector<GridSpec> candidates;
  std::vector<std::pair<GridSpec, int>> counts;  // layers per chosen candidate
};
// `source` is recorded in the plan's allocation record (the sensitivity directory).
AllocateOutcome allocate_plan(const SensitivityData& d, const AllocateRequest& q, const std::string& source);
// The allocation's summary lines (for stdout and the cell log).
std::vector<std::string> allocation_lines(const AllocateOutcome& o, const SensitivityData& d);

}  // namespace qsweep
