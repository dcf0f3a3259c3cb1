// compare.h — `qsweep compare A B`: two evaluations of the same windows, dataset by dataset.
// Per dataset: both perplexities, Δ% = (ppl_B / ppl_A − 1)·100, a 95% interval of Δ from the
// per-window paired differences of mean NLL (Student's t, shown as exp(Δ_NLL) − 1 in percent), an
// exact two-sided sign test over the windows, and the winner (lower perplexity; "tie" when the
// interval holds 0). Then the average row (mean of the perplexities) and the win count.
#pragma once
#include <string>
#include <vector>

namespace qsweep {

struct EvalDataset {
  std::string name, data;
  double perplexity = 0;
  std::vector<double> nll_sum, scored;  // per window
};

// The datasets of an eval.h5 (its /datasets groups; a file from before them is one dataset).
std::vector<EvalDataset> read_eval_datasets(const std::string& path);

struct DatasetComparison {
  std::string name;
  double ppl_a = 0, ppl_b = 0, delta_pct = 0, ci_lo_pct = 0, ci_hi_pct = 0, p_sign = 1;
  int64_t windows = 0, b_better = 0, a_better = 0;
  std::string winner;  // the label of A or B, or "tie"
};

// Pairs the datasets by name (both files must hold the same ones, with the same windows).
std::vector<DatasetComparison> compare_evaluations(const std::vector<EvalDataset>& a, const std::vector<EvalDataset>& b,
                                                   const std::string& label_a, const std::string& label_b,
                                                   const std::string& where_a, const std::string& where_b);

// The Markdown table: dataset, A, B, Δ%, CI, p, winner; the average row; the verdict.
std::string comparison_table(const std::vector<DatasetComparison>& rows, const std::string& label_a,
                             const std::string& label_b);

}  // namespace qsweep
