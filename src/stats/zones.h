// zones.h — criticality zones per decoder block (`qsweep zones`), from the activation statistics
// the calibration pass stores (stats.h5 of `qsweep calibrate`, or the /blocks of a quantized.h5)
// and optionally the sensitivity scores. Per block:
//   sparsity      share of the MLP activation (down_proj input) below the sparsity threshold
//   kurtosis      the largest excess kurtosis of the block's four linear inputs
//   max_abs       the largest |x| over the block's linear inputs
//   entropy       mean attention entropy over heads (nats)
//   specialised   share of heads whose entropy is below the entropy threshold
//   sensitivity   (with scores) the block's summed output error at the reference candidate
// The rule (printed with the table): a block raises one signal for each of
//   sparsity > 0.15, entropy < 1.0, max_abs > 4 × the median block's max_abs,
//   sensitivity > 2 × the median block's sensitivity (when scores are given);
// 0 signals: safe, 1: transition, 2 or more: critical. The thresholds are options.
#pragma once
#include <string>
#include <vector>

namespace qsweep {

struct ZoneRule {
  double sparsity = 0.15, entropy = 1.0, max_abs_ratio = 4.0, sensitivity_ratio = 2.0;
  std::string describe(bool with_sensitivity) const;
};

struct BlockZone {
  int block = 0;
  double sparsity = 0, kurtosis = 0, max_abs = 0, entropy = 0, specialised = 0;
  double sensitivity = -1;  // < 0: no scores
  std::vector<std::string> signals;
  std::string zone;  // safe, transition, critical
};

// Features of every block of a stats file (throws naming the file and the missing object).
std::vector<BlockZone> read_block_features(const std::string& stats_path, double entropy_threshold);
// Applies the rule (medians over the blocks given).
void classify_zones(std::vector<BlockZone>& blocks, const ZoneRule& rule);

}  // namespace qsweep
