// cmd_allocate.cc — `qsweep allocate`: a per-layer (bits, group size) plan under a size budget from
// the scores of `qsweep sensitivity`, chosen by the exact multiple-choice knapsack (quant/
// allocate.h: minimum total score, one candidate per layer, size within the budget; scores are
// assumed additive over layers). Writes the plan JSON `qsweep quantize --plan` reads and prints
// the allocation: achieved bits per weight and size, predicted total score, per-layer choices.
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "io/sensitivity_file.h"
#include "quant/allocate.h"
#include "quant/palette.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

namespace po = boost::program_options;

int cmd_allocate(const CommandContext& ctx) {
  std::string sens_dir, output, palette, score;
  double avg_bits = NAN, size_mb = NAN;
  po::options_description desc("qsweep allocate options");
  desc.add_options()("help,h", "show this help")
      ("sensitivity", po::value(&sens_dir)->required(), "output directory of qsweep sensitivity (its sensitivity.h5)")
      ("target-avg-bits", po::value(&avg_bits), "budget: bits per quantized weight (codes + fp16 scale + b-bit zero per group, as summary.csv's bits_per_weight)")
      ("target-size-mb", po::value(&size_mb), "budget: the whole stored model in MB (10^6 bytes: the quantized linears plus every other tensor as stored, as summary.csv's model_bytes)")
      ("palette", po::value(&palette), "only these scored candidates (BITS:GROUP,...; default: every scored one)")
      ("score", po::value(&score), "the score to minimise: kl-probe or output-error (default: kl-probe when the file has it)")
      ("output", po::value(&output)->required(), "the plan JSON to write (for qsweep quantize --plan)");
  po::variables_map vm;
  if (!parse_args("allocate", "qsweep allocate --sensitivity DIR (--target-avg-bits B | --target-size-mb S) --output PLAN.json",
                  desc, ctx.args, vm))
    return 0;
  QS_CHECK(std::isnan(avg_bits) != std::isnan(size_mb), "allocate: give exactly one budget: --target-avg-bits or --target-size-mb");
  const SensitivityData d = read_sensitivity_file(sens_dir + "/sensitivity.h5");
  if (score.empty()) score = d.kl_probe.empty() ? "output-error" : "kl-probe";
  const std::vector<double>& sc = d.scores(score);
  std::vector<size_t> cands;  // palette indices in use
  if (palette.empty()) {
    for (size_t c = 0; c < d.palette.size(); ++c) cands.push_back(c);
  } else {
    for (const GridSpec& g : parse_palette(palette)) {
      size_t found = d.palette.size();
      for (size_t c = 0; c < d.palette.size(); ++c)
        if (d.palette[c].bits == g.bits && d.palette[c].group_size == g.group_size) found = c;
      QS_CHECK(found < d.palette.size(), "--palette: " << g.bits << ":" << g.group_size << " was not scored (scored: "
                                                       << palette_string(d.palette) << ")");
      cands.push_back(found);
    }
  }
  // The budget in bits of the quantized linears.
  double budget = 0;
  if (!std::isnan(avg_bits)) {
    QS_CHECK(avg_bits > 0, "--target-avg-bits " << avg_bits << " must be positive");
    QS_CHECK(avg_bits * d.quantized_params <= d.full_bits,
             "--target-avg-bits " << avg_bits << " is above the full model (" << d.full_bits / d.quantized_params
                                  << " bits per weight as stored): nothing to allocate");
    budget = std::floor(avg_bits * d.quantized_params + 1e-9 * avg_bits * d.quantized_params);
  } else {
    QS_CHECK(size_mb > 0, "--target-size-mb " << size_mb << " must be positive");
    QS_CHECK(size_mb * 1e6 <= d.full_bits / 8 + d.other_bytes,
             "--target-size-mb " << size_mb << " is above the full model (" << (d.full_bits / 8 + d.other_bytes) / 1e6
                                 << " MB as stored): nothing to allocate");
    budget = std::floor(size_mb * 1e6 * 8 - d.other_bytes * 8);
    QS_CHECK(budget > 0, "--target-size-mb " << size_mb << " leaves no room for the quantized linears (the other tensors take "
                                             << d.other_bytes / 1e6 << " MB)");
  }
  std::vector<AllocLayer> layers(d.layers.size());
  for (size_t l = 0; l < d.layers.size(); ++l) {
    layers[l].name = d.layers[l];
    for (size_t c : cands) {
      AllocCandidate a;
      a.bits = d.palette[c].bits;
      a.group_size = d.palette[c].group_size;
      a.size_bits = std::llround(quantized_bits(d.out_features[l], d.in_features[l], d.palette[c]));
      a.score = sc[l * d.palette.size() + c];
      layers[l].candidates.push_back(a);
    }
  }
  const AllocResult r = allocate_exact(layers, static_cast<int64_t>(budget));
  // The plan: every layer named (the default is the most common choice).
  std::map<std::pair<int, int>, int> count;
  for (size_t l = 0; l < layers.size(); ++l) {
    const AllocCandidate& a = layers[l].candidates[r.choice[l]];
    ++count[{a.bits, a.group_size}];
  }
  auto most = count.begin();
  for (auto it = count.begin(); it != count.end(); ++it)
    if (it->second > most->second) most = it;
  nlohmann::json plan = {{"default", {{"bits", most->first.first}, {"group_size", most->first.second}}}, {"layers", nlohmann::json::object()}};
  for (size_t l = 0; l < layers.size(); ++l) {
    const AllocCandidate& a = layers[l].candidates[r.choice[l]];
    plan["layers"][layers[l].name] = {{"bits", a.bits}, {"group_size", a.group_size}};
  }
  plan["allocation"] = {{"sensitivity", sens_dir}, {"score", score}, {"method", d.method},
                        {"budget_bits", budget}, {"size_bits", r.size_bits}, {"predicted_score", r.score},
                        {"bits_per_weight", r.size_bits / d.quantized_params},
                        {"model_bytes", r.size_bits / 8.0 + d.other_bytes},
                        {"assumption", "scores add over layers"}};
  if (ctx.comm.rank() == 0) write_text_atomic(output, plan.dump(1) + "\n");
  result("allocation: %zu layers, %zu candidates each (score %s), exact (%lld branch-and-bound nodes)", layers.size(), cands.size(),
         score.c_str(), static_cast<long long>(r.nodes));
  result("budget: %.0f bits of quantized linears; achieved %lld bits = %.6f bits per weight, model %.6f MB",
         budget, static_cast<long long>(r.size_bits), r.size_bits / d.quantized_params, (r.size_bits / 8.0 + d.other_bytes) / 1e6);
  result("predicted score: %.9g (sum of per-layer %s; assumes the layers' scores add)", r.score, score.c_str());
  for (const auto& [k, n] : count) result("  W%d g%d: %d layer(s)", k.first, k.second, n);
  log_info("wrote %s", output.c_str());
  return 0;
}

}  // namespace qsweep
