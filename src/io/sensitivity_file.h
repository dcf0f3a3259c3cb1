// sensitivity_file.h — sensitivity.h5, what `qsweep sensitivity` leaves for `qsweep allocate`:
//   root attributes  format "qsweep-sensitivity", model, calib, method, n_calib, seq_len, seed,
//                    palette ("bits:group,..."), scores ("output-error"), quantized_params,
//                    full_bits (every quantized linear at its stored dtype), other_bytes (every
//                    other tensor as stored), provenance
//   /palette/bits, /palette/group_size             one entry per candidate
//   /layers/name, /layers/out_features, /layers/in_features   one entry per linear, model order
//   /scores/output_error   [layer][candidate] flattened row-major: the layer's output error
//                          tr((W−Q)Σxxᵀ(W−Q)ᵀ)/(tokens·out) with that candidate alone
//   /scores/kl_probe       (with --score kl-probe) the same layout: mean KL(full ‖ probed) per
//                          position of the probe windows with that layer alone quantized
//                          (attributes probe_windows, probe_ctx, probe_source)
//   /scores/alpha          (with --score alpha) [layer]: the Alpha-Hill of the layer's weight
//                          (spectrum at fp64, k_frac attribute): one value per layer, the same
//                          for every candidate, so it ranks layers but cannot price candidates
//   /scores/fisher         (with --score fisher) [layer][candidate]: ½ Σ F (W − Q)², F the empirical
//                          Fisher diagonal over calibration windows (train/fisher.h; attributes
//                          windows, ctx, loss = the windows' mean NLL)
// /scores/<name> is where further scores go, with the [layer][candidate] layout.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/grid.h"

namespace qsweep {

struct Provenance;

struct SensitivityData {
  std::string model, calib, method, score = "output-error";
  int n_calib = 0, seq_len = 0;
  uint64_t seed = 0;
  std::vector<GridSpec> palette;
  std::vector<std::string> layers;
  std::vector<int> out_features, in_features;
  std::vector<double> output_error;  // [layer * palette.size() + candidate]
  std::vector<double> kl_probe;      // same layout; empty when not computed
  std::vector<double> alpha;         // [layer]; empty when not computed
  std::vector<double> fisher;        // [layer * palette.size() + candidate]; empty when not computed
  int fisher_windows = 0, fisher_ctx = 0;
  double fisher_loss = 0;
  double alpha_k_frac = 0;
  int probe_windows = 0, probe_ctx = 0;
  std::string probe_source;
  double quantized_params = 0, full_bits = 0, other_bytes = 0;
  double error(size_t layer, size_t cand) const { return output_error[layer * palette.size() + cand]; }
  // The score `name` ("output-error", "kl-probe" or "fisher") of a layer and candidate; throws when absent
  // (and for "alpha", which does not depend on the candidate).
  const std::vector<double>& scores(const std::string& name) const;
};

void write_sensitivity_file(const std::string& path, const SensitivityData& d, const Provenance& prov);
// Throws naming the file and the object when something is missing or inconsistent.
SensitivityData read_sensitivity_file(const std::string& path);

}  // namespace qsweep
