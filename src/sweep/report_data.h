// report_data.h — what `qsweep report DIR` shows, read from a merged sweep directory: the cells'
// table (summary.csv, every column), the datasets and task sets (sweep.json), the full-precision
// baselines' perplexities, the winner table (paired comparisons of methods per setting and dataset,
// eval/compare.h), each complete cell's per-layer output error (its quantized.h5) and the
// shared spectrum's Alpha-Hill per layer when the sweep has one.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "eval/compare.h"

namespace qsweep {

struct ReportWinner {
  std::string setting;       // the cells' other parameters, e.g. "bits=3 group-size=64"
  std::string a, b;          // the two methods
  std::string cell_a, cell_b;
  DatasetComparison cmp;     // one dataset
};

struct ReportVerdict {
  std::string a, b;
  int a_wins = 0, b_wins = 0, ties = 0;
};

struct ReportData {
  std::string dir, job, model, calib, eval, tasks;
  std::vector<std::string> columns;               // summary.csv's header
  std::vector<std::vector<std::string>> rows;     // its rows (cells in grid order)
  std::vector<std::string> axes;                  // e.g. quantize.method
  std::vector<std::string> datasets, task_sets;   // names
  std::map<std::string, double> baseline_ppl;     // per dataset (first baseline)
  std::map<std::string, double> baseline_acc;     // per task set: acc_llamacpp of the first baseline
  std::string method_axis;                        // "quantize.method" when it is an axis
  std::vector<ReportWinner> winners;
  std::vector<ReportVerdict> verdicts;
  // Per-layer output error of each complete cell (layers in model order).
  std::vector<std::string> layer_names;
  std::vector<std::string> layer_cells;           // cell labels, one per series
  std::vector<std::string> layer_methods;         // their method (colour)
  std::vector<std::vector<double>> layer_error;   // [series][layer]
  // The shared spectrum: Alpha-Hill per layer (first precision), when present.
  std::vector<std::string> spectrum_layers;
  std::vector<double> spectrum_alpha;
  std::string spectrum_column;

  int column(const std::string& name) const;  // -1 when absent
  double number(size_t row, const std::string& col) const;  // NaN when absent or empty
  std::string text(size_t row, const std::string& col) const;
};

// Reads DIR (after qsweep run or merge: summary.csv and sweep.json must exist).
ReportData read_report_data(const std::string& dir);

// RFC 4180 CSV (quoted fields with doubled quotes and embedded commas/newlines).
std::vector<std::vector<std::string>> parse_csv(const std::string& text);

}  // namespace qsweep
