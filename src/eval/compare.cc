// compare.cc — paired comparison of two evaluations (see compare.h).
#include "eval/compare.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "eval/eval_data.h"
#include "eval/paired_stats.h"
#include "io/h5_reader.h"

namespace qsweep {

std::vector<EvalDataset> read_eval_datasets(const std::string& path) {
  H5Reader r(path);
  QS_CHECK(r.has_attr("/", "format") && r.attr_string("/", "format") == "qsweep-eval",
           path << ": not a qsweep eval.h5 (root attribute format is not 'qsweep-eval')");
  std::vector<std::string> groups;
  if (r.has_attr("/", "datasets")) {
    const std::string list = r.attr_string("/", "datasets");
    size_t s = 0;
    while (s <= list.size()) {
      const size_t c = list.find(',', s);
      groups.push_back("/datasets/" + list.substr(s, c == std::string::npos ? std::string::npos : c - s));
      if (c == std::string::npos) break;
      s = c + 1;
    }
  } else {
    groups.push_back("/");
  }
  std::vector<EvalDataset> out;
  for (const std::string& g : groups) {
    QS_CHECK(r.exists(g == "/" ? "/windows" : g + "/windows"), path << ": " << g << " has no windows");
    EvalDataset d;
    d.data = r.attr_string(g, "data");
    d.name = g == "/" ? dataset_name(d.data) : g.substr(10);  // "/datasets/<name>"
    d.perplexity = r.attr_double(g, "perplexity");
    const std::string w = g == "/" ? "/windows" : g + "/windows";
    d.nll_sum = r.read_double(w + "/nll_sum");
    d.scored = r.read_double(w + "/scored");
    QS_CHECK(d.nll_sum.size() == d.scored.size() && !d.nll_sum.empty(), path << ": " << w << " is empty or inconsistent");
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<DatasetComparison> compare_evaluations(const std::vector<EvalDataset>& a, const std::vector<EvalDataset>& b,
                                                   const std::string& label_a, const std::string& label_b,
                                                   const std::string& where_a, const std::string& where_b) {
  QS_CHECK(a.size() == b.size(), where_a << " has " << a.size() << " dataset(s), " << where_b << " has " << b.size()
                                         << ": compare evaluations of the same data files");
  std::vector<DatasetComparison> rows;
  for (size_t i = 0; i < a.size(); ++i) {
    const EvalDataset& x = a[i];
    const EvalDataset* y = nullptr;
    for (const EvalDataset& c : b)
      if (c.name == x.name) y = &c;
    QS_CHECK(y, where_b << " has no dataset '" << x.name << "' (it has " << b.front().name << (b.size() > 1 ? ", ..." : "") << ")");
    QS_CHECK(x.scored == y->scored, "dataset " << x.name << ": the two evaluations did not score the same windows ("
                                               << x.scored.size() << " and " << y->scored.size()
                                               << " windows): use the same --ctx and --protocol");
    DatasetComparison c;
    c.name = x.name;
    c.ppl_a = x.perplexity;
    c.ppl_b = y->perplexity;
    c.delta_pct = (c.ppl_b / c.ppl_a - 1) * 100;
    std::vector<double> d;
    for (size_t k = 0; k < x.scored.size(); ++k) {
      if (x.scored[k] <= 0) continue;
      const double diff = y->nll_sum[k] / y->scored[k] - x.nll_sum[k] / x.scored[k];
      d.push_back(diff);
      if (diff < 0) ++c.b_better;
      if (diff > 0) ++c.a_better;
    }
    const MeanInterval mi = mean_t_interval(d);
    c.windows = mi.n;
    c.ci_lo_pct = std::expm1(mi.lo) * 100;
    c.ci_hi_pct = std::expm1(mi.hi) * 100;
    c.p_sign = sign_test_p(c.b_better, c.b_better + c.a_better);
    c.winner = (mi.lo <= 0 && mi.hi >= 0) ? "tie" : (mi.mean < 0 ? label_b : label_a);
    rows.push_back(c);
  }
  return rows;
}

std::string comparison_table(const std::vector<DatasetComparison>& rows, const std::string& label_a,
                             const std::string& label_b) {
  char buf[512];
  std::string s = "| dataset | A: " + label_a + " | B: " + label_b + " | Δ% | 95% CI of Δ% | p (sign) | winner |\n";
  s += "|---|---|---|---|---|---|---|\n";
  double sum_a = 0, sum_b = 0;
  int wins_a = 0, wins_b = 0, ties = 0;
  for (const DatasetComparison& r : rows) {
    std::snprintf(buf, sizeof buf, "| %s | %.4f | %.4f | %+.2f%% | [%+.2f%%, %+.2f%%] | %.3g | %s |\n", r.name.c_str(),
                  r.ppl_a, r.ppl_b, r.delta_pct, r.ci_lo_pct, r.ci_hi_pct, r.p_sign, r.winner.c_str());
    s += buf;
    sum_a += r.ppl_a;
    sum_b += r.ppl_b;
    if (r.winner == "tie") ++ties;
    else if (r.winner == label_b) ++wins_b;
    else ++wins_a;
  }
  const double ma = sum_a / rows.size(), mb = sum_b / rows.size();
  const char* avg_winner = mb < ma ? label_b.c_str() : mb > ma ? label_a.c_str() : "tie";
  std::snprintf(buf, sizeof buf, "| average | %.4f | %.4f | %+.2f%% | | | %s |\n", ma, mb, (mb / ma - 1) * 100, avg_winner);
  s += buf;
  std::snprintf(buf, sizeof buf, "wins: %s %d, %s %d, ties %d — ", label_a.c_str(), wins_a, label_b.c_str(), wins_b, ties);
  s += buf;
  if (wins_a == wins_b) s += "no winner (as many wins each)\n";
  else s += std::string("verdict: ") + (wins_b > wins_a ? label_b : label_a) + " wins on more datasets\n";
  s += "(Δ% = ppl_B/ppl_A − 1; CI: Student t over the per-window differences of mean NLL, as exp(Δ)−1; "
       "p: exact two-sided sign test over windows; a tie when the CI holds 0)\n";
  return s;
}

}  // namespace qsweep
