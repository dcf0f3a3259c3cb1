// sgra.cc — SGRA's per-block training budgets (see sgra.h).
#include "train/sgra.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>
#include <sys/stat.h>

#include "core/error.h"
#include "io/sensitivity_file.h"

namespace qsweep {

namespace {
bool is_dir(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
// The block index of "model.layers.<b>.…" (−1 otherwise: lm_head).
int block_of(const std::string& name) {
  const std::string pre = "model.layers.";
  if (name.compare(0, pre.size(), pre) != 0) return -1;
  size_t i = pre.size();
  int b = 0;
  bool digit = false;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) b = b * 10 + (name[i] - '0'), digit = true;
  return digit && i < name.size() && name[i] == '.' ? b : -1;
}
}  // namespace

std::vector<double> block_sensitivity(const std::string& path, const std::string& score, const GridSpec& grid, int n_blocks,
                                      std::string* note) {
  const std::string file = is_dir(path) ? path + "/sensitivity.h5" : path;
  const SensitivityData d = read_sensitivity_file(file);
  std::string name = score;
  if (name == "auto") name = !d.fisher.empty() ? "fisher" : !d.kl_probe.empty() ? "kl-probe" : "output-error";
  QS_CHECK(name == "fisher" || name == "kl-probe" || name == "output-error",
           "--budget-score '" << score << "': expected auto, fisher, kl-probe or output-error");
  const std::vector<double>* v = nullptr;
  try {
    v = &d.scores(name);
  } catch (const std::exception& e) {
    QS_THROW(file << ": " << e.what());
  }
  QS_CHECK(!d.palette.empty(), file << ": /palette is empty");
  size_t cand = d.palette.size();
  for (size_t c = 0; c < d.palette.size(); ++c)
    if (d.palette[c].bits == grid.bits && d.palette[c].group_size == grid.group_size) cand = c;
  const bool exact = cand < d.palette.size();
  if (!exact) {
    cand = 0;
    for (size_t c = 1; c < d.palette.size(); ++c) {
      const GridSpec &a = d.palette[c], &b = d.palette[cand];
      if (a.bits < b.bits || (a.bits == b.bits && a.group_size > b.group_size)) cand = c;
    }
  }
  if (n_blocks <= 0)
    for (const std::string& l : d.layers) n_blocks = std::max(n_blocks, block_of(l) + 1);
  QS_CHECK(n_blocks > 0, file << ": no decoder layers (model.layers.<i>.*) in /layers/name");
  std::vector<double> sum(static_cast<size_t>(n_blocks), 0.0);
  std::vector<int> count(static_cast<size_t>(n_blocks), 0);
  for (size_t l = 0; l < d.layers.size(); ++l) {
    const int b = block_of(d.layers[l]);
    if (b < 0) continue;
    QS_CHECK(b < n_blocks, file << ": layer " << d.layers[l] << " is beyond the model's " << n_blocks << " blocks (another model's scores?)");
    const double x = (*v)[l * d.palette.size() + cand];
    QS_CHECK(std::isfinite(x), file << ": /scores/" << name << " of " << d.layers[l] << " is not finite");
    sum[static_cast<size_t>(b)] += x;
    ++count[static_cast<size_t>(b)];
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (int b = 0; b < n_blocks; ++b) {
    QS_CHECK(count[static_cast<size_t>(b)] > 0, file << ": no scores for block " << b << " (model.layers." << b << ".*)");
    sum[static_cast<size_t>(b)] /= count[static_cast<size_t>(b)];
    lo = std::min(lo, sum[static_cast<size_t>(b)]), hi = std::max(hi, sum[static_cast<size_t>(b)]);
  }
  for (double& s : sum) s = hi > lo ? (s - lo) / (hi - lo) : 0.5;
  if (note) {
    std::ostringstream o;
    o << "score " << name << " at candidate " << d.palette[cand].bits << ":" << d.palette[cand].group_size
      << (exact ? " (the quantized grid)" : " (no candidate equals the quantized grid: the lowest bit width)");
    *note = o.str();
  }
  return sum;
}

BlockBudget block_budget(double S, int epochs, int patience, const SgraRule& rule) {
  BlockBudget b;
  b.s = S;
  b.epochs = std::max(1, static_cast<int>(std::lround(epochs * (1 + rule.epochs_gain * S))));
  b.patience = static_cast<int>(std::lround(patience * (1 + rule.epochs_gain * S)));
  b.lr_scale = 1 + rule.lr_gain * (S - 0.5);
  return b;
}

}  // namespace qsweep
