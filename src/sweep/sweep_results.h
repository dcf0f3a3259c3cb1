// sweep_results.h — a cell's result file (cell.h5, the completion marker) and the sweep's
// assembled outputs: sweep.h5 (every cell in grid order with its parameters, status, timings,
// metrics and quantized weights, the shared baselines/spectrum/statistics, and a /table of
// columns for pandas) and summary.csv (one row per cell).
#pragma once
#include <limits>
#include <string>
#include <vector>

#include "io/provenance.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

struct CellMetrics {
  static constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  double perplexity = kNone, baseline_perplexity = kNone, kl_divergence = kNone, top1_agreement = kNone;
  double bits_per_weight = kNone, model_bytes = kNone;
  double quantize_seconds = 0, eval_seconds = 0, seconds = 0;
  double predicted_score = kNone;  // [allocate] cells: the allocation's summed per-layer score
};

// Written by the cell group's first rank after its stage files; `complete` is the last attribute.
void write_cell_file(const std::string& path, const ManifestCell& cell, const CellMetrics& m,
                     const Provenance& prov);

struct MergeReport {
  int complete = 0, failed = 0, pending = 0;
  std::vector<std::string> failed_cells;   // "label (id): error"
  std::vector<std::string> pending_cells;  // labels
};

// Cell outcomes without writing anything.
MergeReport survey_sweep(const std::string& dir, const Manifest& m);
// Writes DIR/sweep.h5 and DIR/summary.csv; throws (writing nothing) while a cell is pending.
MergeReport merge_sweep(const std::string& dir, const Provenance& prov);

}  // namespace qsweep
