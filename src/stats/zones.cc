// zones.cc — block features and the safe / transition / critical rule (see zones.h).
#include "stats/zones.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "io/h5_reader.h"

namespace qsweep {

std::string ZoneRule::describe(bool with_sensitivity) const {
  char buf[400], sens[96] = "";
  if (with_sensitivity) std::snprintf(sens, sizeof sens, "; sensitivity > %.3g x the median block's", sensitivity_ratio);
  std::snprintf(buf, sizeof buf,
                "one signal each for: MLP activation sparsity > %.3g; mean attention entropy < %.3g nats; "
                "max|x| > %.3g x the median block's%s. 0 signals: safe, 1: transition, 2 or more: critical.",
                sparsity, entropy, max_abs_ratio, sens);
  return buf;
}

std::vector<BlockZone> read_block_features(const std::string& path, double entropy_threshold) {
  H5Reader r(path);
  std::vector<std::string> names = r.children("/blocks");
  QS_CHECK(!names.empty(), path << ": no /blocks (expected the stats.h5 of qsweep calibrate or a quantized.h5)");
  std::vector<int> idx;
  for (const std::string& n : names) {
    char* end = nullptr;
    const long b = std::strtol(n.c_str(), &end, 10);
    QS_CHECK(end && *end == '\0', path << ": /blocks/" << n << " is not a block number");
    idx.push_back(static_cast<int>(b));
  }
  std::sort(idx.begin(), idx.end());
  std::vector<BlockZone> out;
  for (int b : idx) {
    const std::string g = "/blocks/" + std::to_string(b);
    BlockZone z;
    z.block = b;
    const std::string down = g + "/stats/down_proj";
    QS_CHECK(r.has_attr(down, "sparsity"), path << ": " << down << " has no sparsity (statistics from an older qsweep?)");
    z.sparsity = r.attr_double(down, "sparsity");
    for (const char* in : {"qkv", "o_proj", "gate_up", "down_proj"}) {
      const std::string s = g + "/stats/" + in;
      QS_CHECK(r.exists(s), path << ": missing " << s);
      z.kurtosis = std::max(z.kurtosis, r.attr_double(s, "excess_kurtosis"));
      for (double v : r.read_double(s + "/max_abs")) z.max_abs = std::max(z.max_abs, v);
    }
    const std::vector<double> ent = r.read_double(g + "/attention_entropy");
    QS_CHECK(!ent.empty(), path << ": " << g << "/attention_entropy is empty");
    double sum = 0;
    int low = 0;
    for (double e : ent) {
      sum += e;
      low += e < entropy_threshold;
    }
    z.entropy = sum / ent.size();
    z.specialised = static_cast<double>(low) / ent.size();
    out.push_back(z);
  }
  return out;
}

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
}  // namespace

void classify_zones(std::vector<BlockZone>& blocks, const ZoneRule& rule) {
  std::vector<double> mx, sens;
  for (const BlockZone& z : blocks) {
    mx.push_back(z.max_abs);
    if (z.sensitivity >= 0) sens.push_back(z.sensitivity);
  }
  const double mx_med = median(mx), sens_med = sens.size() == blocks.size() ? median(sens) : -1;
  for (BlockZone& z : blocks) {
    z.signals.clear();
    if (z.sparsity > rule.sparsity) z.signals.push_back("sparsity");
    if (z.entropy < rule.entropy) z.signals.push_back("entropy");
    if (z.max_abs > rule.max_abs_ratio * mx_med) z.signals.push_back("max_abs");
    if (sens_med >= 0 && z.sensitivity > rule.sensitivity_ratio * sens_med) z.signals.push_back("sensitivity");
    z.zone = z.signals.empty() ? "safe" : z.signals.size() == 1 ? "transition" : "critical";
  }
}

}  // namespace qsweep
