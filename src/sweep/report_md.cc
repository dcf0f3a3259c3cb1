// report_md.cc — report.md: the report's tables in Markdown (baselines, cells, winner table with
// the study's average row and verdict per method pair); the plots are in report.html.
#include <cmath>
#include <sstream>

#include "sweep/report_render.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

namespace {
std::string md_cell(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return o;
}
}  // namespace

ReportData write_report(const std::string& dir) {
  ReportData d = read_report_data(dir);
  write_text_atomic(dir + "/report.html", report_html(d));
  write_text_atomic(dir + "/report.md", report_markdown(d));
  return d;
}

std::string report_markdown(const ReportData& d) {
  std::ostringstream o;
  o << "# qsweep report: " << d.dir << "\n\n";
  o << "- job: " << d.job << "\n- model: " << d.model << "\n- calibration: " << d.calib << "\n- evaluation: " << d.eval << "\n";
  if (!d.tasks.empty()) o << "- tasks: " << d.tasks << "\n";
  o << "\nPlots (size-quality frontier per dataset, per-layer output error): report.html.\n\n";
  if (!d.baseline_ppl.empty() || !d.baseline_acc.empty()) {
    o << "## Full precision\n\n| dataset or task set | perplexity | accuracy (llama.cpp's) |\n|---|---:|---:|\n";
    for (const auto& [n, v] : d.baseline_ppl) o << "| " << md_cell(n) << " | " << report_format(v, 4) << " | |\n";
    for (const auto& [n, v] : d.baseline_acc) o << "| " << md_cell(n) << " | | " << report_format(v, 4) << " |\n";
    o << "\n";
  }
  const std::vector<ReportColumn> cols = report_cell_columns(d);
  o << "## Cells\n\n|";
  for (const ReportColumn& c : cols) o << " " << md_cell(c.header) << " |";
  o << "\n|";
  for (const ReportColumn& c : cols) o << (c.decimals < 0 ? "---|" : "---:|");
  o << "\n";
  for (size_t r = 0; r < d.rows.size(); ++r) {
    o << "|";
    for (const ReportColumn& c : cols)
      o << " " << md_cell(c.decimals < 0 ? d.text(r, c.csv) : report_format(d.number(r, c.csv) * c.scale, c.decimals)) << " |";
    o << "\n";
  }
  o << "\n## Winner table\n\n";
  if (d.winners.empty()) {
    o << (d.method_axis.empty() ? "The grid has no method axis (quantize.method): nothing to pair.\n"
                                : "No two complete cells with the same setting to pair.\n");
    return o.str();
  }
  o << "Methods paired at the same setting, as `qsweep compare` prints them: per dataset, the average row and the verdict.\n";
  for (size_t i = 0; i < d.winners.size();) {
    const ReportWinner& w = d.winners[i];
    std::vector<DatasetComparison> rows;
    size_t j = i;
    for (; j < d.winners.size() && d.winners[j].cell_a == w.cell_a && d.winners[j].cell_b == w.cell_b; ++j)
      rows.push_back(d.winners[j].cmp);
    o << "\n**" << md_cell(w.setting) << ": " << w.a << " (A) vs " << w.b << " (B)** (cells " << w.cell_a << ", "
      << w.cell_b << ")\n\n"
      << comparison_table(rows, w.a, w.b);
    i = j;
  }
  o << "\n### Verdicts over every setting and dataset\n\n| A | B | A wins | B wins | ties | verdict |\n|---|---|---:|---:|---:|---|\n";
  for (const ReportVerdict& v : d.verdicts)
    o << "| " << v.a << " | " << v.b << " | " << v.a_wins << " | " << v.b_wins << " | " << v.ties << " | "
      << (v.a_wins > v.b_wins ? v.a : v.b_wins > v.a_wins ? v.b : "even") << " |\n";
  return o.str();
}

}  // namespace qsweep
