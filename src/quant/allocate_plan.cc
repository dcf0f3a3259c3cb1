// allocate_plan.cc — budgets, candidate palettes and the plan JSON of an allocation (see
// allocate_plan.h).
#include "quant/allocate_plan.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "core/dtype.h"
#include "core/error.h"
#include "io/sensitivity_file.h"
#include "model/llama_weights.h"
#include "quant/palette.h"

namespace qsweep {

namespace {
bool is_decoder_linear(const std::string& name) {
  return name.find("_proj.weight") != std::string::npos && name.rfind("model.layers.", 0) == 0;
}
}  // namespace

ModelSizes model_sizes(const LlamaWeights& model) {
  ModelSizes m;
  for (const std::string& name : model.checkpoint().tensor_names()) {
    const TensorInfo* t = model.checkpoint().find(name);
    if (!is_decoder_linear(name)) {
      m.other_bytes += static_cast<double>(t->numel()) * dtype_size(t->dtype);
      continue;
    }
    QS_CHECK(t->shape.size() == 2, name << ": expected a 2-D weight");
    m.layers.push_back(name.substr(0, name.size() - 7));
    m.shapes.push_back({static_cast<int>(t->shape[0]), static_cast<int>(t->shape[1])});
    m.quantized_params += static_cast<double>(t->numel());
    m.full_bits += static_cast<double>(t->numel()) * dtype_size(t->dtype) * 8;
  }
  return m;
}

ModelSizes model_sizes(const SensitivityData& d) {
  ModelSizes m;
  m.layers = d.layers;
  for (size_t l = 0; l < d.layers.size(); ++l) m.shapes.push_back({d.out_features[l], d.in_features[l]});
  m.quantized_params = d.quantized_params;
  m.full_bits = d.full_bits;
  m.other_bytes = d.other_bytes;
  return m;
}

double natural_target_bits(const std::string& strategy) {
  if (strategy == "conservative") return 5.0;
  if (strategy == "adaptive") return 4.0;
  if (strategy == "aggressive") return 3.0;
  throw Error("--strategy '" + strategy + "': expected conservative, adaptive or aggressive");
}

std::vector<GridSpec> request_palette(const AllocateRequest& q, const std::vector<GridSpec>& scored) {
  if (!q.palette.empty()) return parse_palette(q.palette);
  if (!q.strategy.empty()) return strategy_palette(q.strategy);
  return scored;
}

std::string budget_string(const AllocateRequest& q) {
  std::ostringstream s;
  if (!std::isnan(q.avg_bits))
    s << "--target-avg-bits " << q.avg_bits;
  else if (!std::isnan(q.size_mb))
    s << "--target-size-mb " << q.size_mb;
  else
    s << q.strategy << "'s natural target of " << natural_target_bits(q.strategy) << " bits per weight";
  return s.str();
}

double check_budget(const ModelSizes& m, const std::vector<GridSpec>& palette, const AllocateRequest& q) {
  QS_CHECK(std::isnan(q.avg_bits) || std::isnan(q.size_mb), "give exactly one budget: --target-avg-bits or --target-size-mb, not both");
  QS_CHECK(!palette.empty(), "allocate: no candidates");
  double avg = q.avg_bits;
  if (std::isnan(avg) && std::isnan(q.size_mb)) {
    QS_CHECK(!q.strategy.empty(), "give exactly one budget: --target-avg-bits or --target-size-mb (or a --strategy, whose natural target is used)");
    avg = natural_target_bits(q.strategy);
  }
  const std::string what = budget_string(q);
  double budget = 0;
  if (!std::isnan(avg)) {
    QS_CHECK(avg > 0, what << ": must be positive");
    QS_CHECK(avg * m.quantized_params <= m.full_bits, what << " is above the full model (" << m.full_bits / m.quantized_params
                                                           << " bits per weight as stored): nothing to allocate");
    budget = std::floor(avg * m.quantized_params + 1e-9 * avg * m.quantized_params);
  } else {
    QS_CHECK(q.size_mb > 0, what << ": must be positive");
    QS_CHECK(q.size_mb * 1e6 <= m.full_bits / 8 + m.other_bytes,
             what << " is above the full model (" << (m.full_bits / 8 + m.other_bytes) / 1e6 << " MB as stored): nothing to allocate");
    budget = std::floor(q.size_mb * 1e6 * 8 - m.other_bytes * 8);
    QS_CHECK(budget > 0, what << " leaves no room for the quantized linears (the other tensors take " << m.other_bytes / 1e6 << " MB)");
  }
  double smallest = 0;  // every layer at its smallest candidate
  for (const auto& [out, in] : m.shapes) {
    double s = INFINITY;
    for (const GridSpec& g : palette) s = std::min(s, std::round(quantized_bits(out, in, g)));
    smallest += s;
  }
  QS_CHECK(smallest <= budget, what << " is below the smallest possible model with the candidates " << palette_string(palette) << " ("
                                    << smallest / m.quantized_params << " bits per weight, "
                                    << (smallest / 8 + m.other_bytes) / 1e6 << " MB)");
  return budget;
}

AllocateOutcome allocate_plan(const SensitivityData& d, const AllocateRequest& q, const std::string& source) {
  AllocateOutcome o;
  o.score = q.score.empty() ? (d.kl_probe.empty() ? "output-error" : "kl-probe") : q.score;
  const std::vector<double>& sc = d.scores(o.score);
  o.candidates = request_palette(q, d.palette);
  std::vector<size_t> cands;  // indices into the scored palette
  for (const GridSpec& g : o.candidates) {
    size_t found = d.palette.size();
    for (size_t c = 0; c < d.palette.size(); ++c)
      if (d.palette[c].bits == g.bits && d.palette[c].group_size == g.group_size) found = c;
    QS_CHECK(found < d.palette.size(), "allocate: candidate " << g.bits << ":" << g.group_size << " was not scored (scored: "
                                                              << palette_string(d.palette) << ")");
    cands.push_back(found);
  }
  o.budget_bits = check_budget(model_sizes(d), o.candidates, q);
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
  o.result = allocate_exact(layers, static_cast<int64_t>(o.budget_bits));
  std::map<std::pair<int, int>, int> count;
  for (size_t l = 0; l < layers.size(); ++l) {
    const AllocCandidate& a = layers[l].candidates[o.result.choice[l]];
    ++count[{a.bits, a.group_size}];
  }
  auto most = count.begin();  // the plan's default: the most common choice
  for (auto it = count.begin(); it != count.end(); ++it) {
    if (it->second > most->second) most = it;
    GridSpec g;
    g.bits = it->first.first;
    g.group_size = it->first.second;
    o.counts.push_back({g, it->second});
  }
  o.plan = {{"default", {{"bits", most->first.first}, {"group_size", most->first.second}}}, {"layers", nlohmann::json::object()}};
  for (size_t l = 0; l < layers.size(); ++l) {
    const AllocCandidate& a = layers[l].candidates[o.result.choice[l]];
    o.plan["layers"][layers[l].name] = {{"bits", a.bits}, {"group_size", a.group_size}};
  }
  o.plan["allocation"] = {{"sensitivity", source}, {"score", o.score}, {"method", d.method},
                          {"budget", budget_string(q)}, {"candidates", palette_string(o.candidates)},
                          {"budget_bits", o.budget_bits}, {"size_bits", o.result.size_bits},
                          {"predicted_score", o.result.score},
                          {"bits_per_weight", o.result.size_bits / d.quantized_params},
                          {"model_bytes", o.result.size_bits / 8.0 + d.other_bytes},
                          {"assumption", "scores add over layers"}};
  return o;
}

std::vector<std::string> allocation_lines(const AllocateOutcome& o, const SensitivityData& d) {
  std::vector<std::string> out;
  char buf[512];
  std::snprintf(buf, sizeof(buf), "allocation: %zu layers, %zu candidates each (%s; score %s), exact (%lld branch-and-bound nodes)",
                d.layers.size(), o.candidates.size(), palette_string(o.candidates).c_str(), o.score.c_str(),
                static_cast<long long>(o.result.nodes));
  out.push_back(buf);
  std::snprintf(buf, sizeof(buf), "budget: %.0f bits of quantized linears; achieved %lld bits = %.6f bits per weight, model %.6f MB",
                o.budget_bits, static_cast<long long>(o.result.size_bits), o.result.size_bits / d.quantized_params,
                (o.result.size_bits / 8.0 + d.other_bytes) / 1e6);
  out.push_back(buf);
  std::snprintf(buf, sizeof(buf), "predicted score: %.9g (sum of per-layer %s; assumes the layers' scores add)", o.result.score,
                o.score.c_str());
  out.push_back(buf);
  for (const auto& [g, n] : o.counts) {
    std::snprintf(buf, sizeof(buf), "  W%d g%d: %d layer(s)", g.bits, g.group_size, n);
    out.push_back(buf);
  }
  return out;
}

}  // namespace qsweep
