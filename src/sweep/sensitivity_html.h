// sensitivity_html.h — what `qsweep sensitivity` shows besides sensitivity.h5: the Spearman rank
// correlation between its scores over the layers, per candidate (output-error vs kl-probe, and
// each against alpha), and sensitivity.html — per score, the score of every layer per candidate
// on a log scale (layers in model order, blocks on the x axis), and the Spearman matrices.
#pragma once
#include <string>
#include <vector>

#include "io/sensitivity_file.h"

namespace qsweep {

struct SpearmanMatrix {
  std::vector<std::string> scores;     // the scores present, e.g. output-error, kl-probe, alpha
  std::vector<std::vector<double>> r;  // [i][j] over the layers
};
// For candidate `cand`; alpha (one value per layer) is compared as it is.
SpearmanMatrix sensitivity_spearman(const SensitivityData& d, size_t cand);

std::string sensitivity_html(const SensitivityData& d);

}  // namespace qsweep
