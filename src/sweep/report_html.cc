// report_html.cc — report.html: one self-contained page (no network, no external files) with
// the sweep's baselines, the cells table, the winner table and verdicts, the size-quality frontier
// per dataset, the per-layer output error and the spectrum. Every table sorts by a click on a
// header (numbers by value: cells carry the full-precision value in data-v). The script records
// its own errors in <body data-errors> and sets <body data-ready="1"> when done (the browser test
// reads both).
#include <cmath>
#include <map>
#include <sstream>

#include "sweep/report_render.h"

namespace qsweep {

namespace {

const char* const kStyle = R"(body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4;cursor:pointer;user-select:none;white-space:nowrap}th.asc::after{content:" \25B2"}th.desc::after{content:" \25BC"}
td.t{text-align:left}tr:nth-child(even) td{background:#fafafa}td.win{font-weight:600}
.meta td{text-align:left}svg.plot text{font-size:11px;fill:#333}svg.plot .title{font-size:13px;font-weight:600}
svg.plot .frame{fill:none;stroke:#999}svg.plot .grid{stroke:#eee}svg.plot .ref{stroke:#555;stroke-dasharray:5 4}
svg.plot .reflabel{fill:#555}figure{margin:8px 0}.note{color:#666})";

const char* const kScript = R"(window.addEventListener('error', function (e) {
  var b = document.body; b.setAttribute('data-errors', (b.getAttribute('data-errors') || '') + e.message + ';');
});
function qsValue(td) { var v = td.getAttribute('data-v'); return v === null ? td.textContent : v; }
function qsSort(th) {
  var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
  var asc = !th.classList.contains('asc');
  Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.classList.remove('asc', 'desc'); });
  th.classList.add(asc ? 'asc' : 'desc');
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = qsValue(a.cells[col]), y = qsValue(b.cells[col]);
    var nx = parseFloat(x), ny = parseFloat(y), c;
    if (x === '' && y === '') c = 0; else if (x === '') c = 1; else if (y === '') c = -1;
    else if (!isNaN(nx) && !isNaN(ny) && isFinite(x) && isFinite(y)) c = nx - ny; else c = x.localeCompare(y);
    return asc ? c : -c;
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () { qsSort(th); });
});
document.body.setAttribute('data-ready', '1');)";

std::string td_num(double v, int decimals, double scale = 1) {
  if (std::isnan(v)) return "<td data-v=\"\"></td>";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v * scale);
  return "<td data-v=\"" + std::string(buf) + "\">" + report_format(v * scale, decimals) + "</td>";
}

std::string td_text(const std::string& s, const std::string& cls = "t") {
  return "<td class=\"" + cls + "\">" + html_escape(s) + "</td>";
}

void cells_table(std::ostringstream& o, const ReportData& d) {
  const std::vector<ReportColumn> cols = report_cell_columns(d);
  o << "<h2>Cells</h2>\n<p class=\"note\">" << d.rows.size()
    << " cells; click a header to sort. Accuracies are fractions; size: the quantized model in MB (the quantized linears' codes, scales and zero points, and every other tensor as stored).</p>\n";
  o << "<table class=\"sortable\" id=\"cells\"><thead><tr>";
  for (const ReportColumn& c : cols) o << "<th>" << html_escape(c.header) << "</th>";
  o << "</tr></thead><tbody>\n";
  for (size_t r = 0; r < d.rows.size(); ++r) {
    o << "<tr>";
    for (const ReportColumn& c : cols)
      o << (c.decimals < 0 ? td_text(d.text(r, c.csv)) : td_num(d.number(r, c.csv), c.decimals, c.scale));
    o << "</tr>\n";
  }
  o << "</tbody></table>\n";
}

void winner_tables(std::ostringstream& o, const ReportData& d) {
  o << "<h2>Winner table</h2>\n";
  if (d.winners.empty()) {
    o << "<p class=\"note\">" << (d.method_axis.empty() ? "The grid has no method axis (quantize.method): nothing to pair."
                                                        : "No two complete cells with the same setting to pair.")
      << "</p>\n";
    return;
  }
  o << "<p class=\"note\">Methods paired at the same setting, per dataset: Δ% = ppl(B)/ppl(A) − 1; 95% interval of Δ from the "
       "per-window paired differences of mean NLL (Student's t); p: exact two-sided sign test over the windows; "
       "a tie when the interval holds 0.</p>\n";
  o << "<table class=\"sortable\" id=\"winners\"><thead><tr><th>setting</th><th>dataset</th><th>A</th><th>B</th><th>ppl A</th>"
       "<th>ppl B</th><th>Δ%</th><th>CI low %</th><th>CI high %</th><th>p</th><th>winner</th></tr></thead><tbody>\n";
  for (const ReportWinner& w : d.winners) {
    const DatasetComparison& c = w.cmp;
    o << "<tr>" << td_text(w.setting) << td_text(c.name) << td_text(w.a) << td_text(w.b) << td_num(c.ppl_a, 4)
      << td_num(c.ppl_b, 4) << td_num(c.delta_pct, 2) << td_num(c.ci_lo_pct, 2) << td_num(c.ci_hi_pct, 2)
      << td_num(c.p_sign, 4) << td_text(c.winner, "t win") << "</tr>\n";
  }
  o << "</tbody></table>\n<h3>Verdicts</h3>\n<table class=\"sortable\" id=\"verdicts\"><thead><tr><th>A</th><th>B</th>"
       "<th>A wins</th><th>B wins</th><th>ties</th><th>verdict</th></tr></thead><tbody>\n";
  for (const ReportVerdict& v : d.verdicts) {
    const std::string verdict = v.a_wins > v.b_wins ? v.a : v.b_wins > v.a_wins ? v.b : "even";
    o << "<tr>" << td_text(v.a) << td_text(v.b) << td_num(v.a_wins, 0) << td_num(v.b_wins, 0) << td_num(v.ties, 0)
      << td_text(verdict, "t win") << "</tr>\n";
  }
  o << "</tbody></table>\n";
}

void frontier_plots(std::ostringstream& o, const ReportData& d) {
  o << "<h2>Size and quality</h2>\n<p class=\"note\">Each point a cell (hover for its label); the line joins the "
       "frontier: cells no other cell beats with fewer bits per weight. Dashed: the full-precision model.</p>\n";
  const int mc = d.column(d.method_axis);
  const bool several = d.datasets.size() > 1;
  for (const std::string& n : d.datasets) {
    const std::string col = several ? "perplexity[" + n + "]" : "perplexity";
    Plot p;
    p.title = "perplexity on " + n + " vs bits per weight";
    p.xlabel = "bits per weight";
    p.ylabel = "perplexity";
    std::map<std::string, size_t> series;
    std::vector<double> ax, ay;
    for (size_t r = 0; r < d.rows.size(); ++r) {
      const std::string m = mc >= 0 ? d.rows[r][mc] : "cells";
      if (!series.count(m)) {
        series[m] = p.series.size();
        p.series.push_back({m, series_color(p.series.size())});
      }
      PlotSeries& s = p.series[series[m]];
      s.x.push_back(d.number(r, "bits_per_weight"));
      s.y.push_back(d.number(r, col));
      s.tips.push_back(d.text(r, "label") + ": " + report_format(s.y.back(), 4));
      ax.push_back(s.x.back());
      ay.push_back(s.y.back());
    }
    PlotSeries front{"frontier", "#444"};
    front.line = true;
    front.markers = false;
    for (size_t i : pareto_front(ax, ay)) {
      front.x.push_back(ax[i]);
      front.y.push_back(ay[i]);
    }
    p.series.push_back(front);
    double lo = INFINITY, hi = 0;
    for (double v : ay)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    p.log_y = hi > 3 * lo;
    if (d.baseline_ppl.count(n)) {
      p.hline = d.baseline_ppl.at(n);
      p.hline_label = "full precision " + report_format(p.hline, 4);
    }
    o << svg_plot(p);
  }
  for (const std::string& t : d.task_sets) {
    Plot p;
    p.title = "accuracy (llama.cpp's) on " + t + " vs bits per weight";
    p.xlabel = "bits per weight";
    p.ylabel = "accuracy";
    std::map<std::string, size_t> series;
    for (size_t r = 0; r < d.rows.size(); ++r) {
      const std::string m = mc >= 0 ? d.rows[r][mc] : "cells";
      if (!series.count(m)) {
        series[m] = p.series.size();
        p.series.push_back({m, series_color(p.series.size())});
      }
      PlotSeries& s = p.series[series[m]];
      s.x.push_back(d.number(r, "bits_per_weight"));
      s.y.push_back(d.number(r, "acc_llamacpp[" + t + "]"));
      s.tips.push_back(d.text(r, "label") + ": " + report_format(s.y.back(), 4));
    }
    if (d.baseline_acc.count(t)) {
      p.hline = d.baseline_acc.at(t);
      p.hline_label = "full precision " + report_format(p.hline, 4);
    }
    o << svg_plot(p);
  }
}

// [allocate] cells: the score each allocation predicted (the sum of its layers' scores) against
// the KL measured on every evaluation file, with the line y = x.
void allocation_plot(std::ostringstream& o, const ReportData& d) {
  if (d.column("predicted_score") < 0) return;
  Plot p;
  p.title = "allocations: predicted score vs measured KL-divergence";
  p.xlabel = "predicted (sum of per-layer scores)";
  p.ylabel = "measured KL";
  const bool several = d.datasets.size() > 1;
  double hi = 0;
  for (size_t k = 0; k < d.datasets.size(); ++k) {
    const std::string col = several ? "kl_divergence[" + d.datasets[k] + "]" : "kl_divergence";
    if (d.column(col) < 0) continue;
    PlotSeries s{d.datasets[k], series_color(k)};
    for (size_t r = 0; r < d.rows.size(); ++r) {
      const double x = d.number(r, "predicted_score"), y = d.number(r, col);
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      s.x.push_back(x);
      s.y.push_back(y);
      s.tips.push_back(d.text(r, "label") + ": predicted " + report_format(x, 6) + ", measured " + report_format(y, 6));
      hi = std::max(hi, std::max(x, y));
    }
    if (!s.x.empty()) p.series.push_back(s);
  }
  if (p.series.empty()) return;
  PlotSeries diag{"y = x", "#888"};
  diag.line = true;
  diag.markers = false;
  diag.x = {0, hi};
  diag.y = {0, hi};
  p.series.push_back(diag);
  o << "<h2>Mixed-precision allocations</h2>\n<p class=\"note\">Each point an [allocate] cell: the summed per-layer "
       "score its plan was chosen by (scores assumed to add over layers) against the KL-divergence measured on each "
       "evaluation file. Only the in-domain text is on the scores' scale when they are kl-probe scores of that text.</p>\n"
    << svg_plot(p, 560, 420);
}

void layer_plots(std::ostringstream& o, const ReportData& d) {
  if (d.layer_error.empty() && d.spectrum_alpha.empty()) return;
  o << "<h2>Per layer</h2>\n";
  std::vector<std::string> ticks;
  for (const std::string& n : d.layer_names) {
    const size_t p = n.find("layers.");
    ticks.push_back(p == std::string::npos ? n : n.substr(p + 7, n.find('.', p + 7) - p - 7));
  }
  if (!d.layer_error.empty()) {
    Plot p;
    p.title = "output error per layer (mean squared, per token and output; quantized.h5 output_error)";
    p.xlabel = "layer (model order; tick: block)";
    p.ylabel = "output error";
    p.log_y = true;
    p.xticks_text = ticks;
    for (size_t k = 0; k < d.layer_error.size(); ++k) {
      PlotSeries s{d.layer_cells[k], series_color(k)};
      s.line = true;
      for (size_t i = 0; i < d.layer_names.size(); ++i) {
        s.x.push_back(static_cast<double>(i));
        s.y.push_back(d.layer_error[k][i]);
        s.tips.push_back(d.layer_cells[k] + " " + d.layer_names[i]);
      }
      p.series.push_back(s);
    }
    o << svg_plot(p, 1000, 420);
  }
  if (!d.spectrum_alpha.empty()) {
    Plot p;
    p.title = "Alpha-Hill per layer (" + d.spectrum_column + ", shared spectrum)";
    p.xlabel = "layer (model order)";
    p.ylabel = "alpha";
    PlotSeries s{"alpha", series_color(0)};
    s.line = true;
    for (size_t i = 0; i < d.spectrum_alpha.size(); ++i) {
      s.x.push_back(static_cast<double>(i));
      s.y.push_back(d.spectrum_alpha[i]);
      s.tips.push_back(d.spectrum_layers[i]);
      const size_t q = d.spectrum_layers[i].find("layers.");
      p.xticks_text.push_back(q == std::string::npos ? d.spectrum_layers[i]
                                                     : d.spectrum_layers[i].substr(q + 7, d.spectrum_layers[i].find('.', q + 7) - q - 7));
    }
    p.series.push_back(s);
    o << svg_plot(p, 1000, 380);
  }
}

}  // namespace

std::string report_html(const ReportData& d) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>qsweep report: " << html_escape(d.dir)
    << "</title>\n<style>" << kStyle << "</style></head>\n<body>\n<h1>qsweep report: " << html_escape(d.dir) << "</h1>\n";
  o << "<table class=\"meta\"><tbody><tr><td>job</td><td>" << html_escape(d.job) << "</td></tr><tr><td>model</td><td>"
    << html_escape(d.model) << "</td></tr><tr><td>calibration</td><td>" << html_escape(d.calib)
    << "</td></tr><tr><td>evaluation</td><td>" << html_escape(d.eval) << "</td></tr>";
  if (!d.tasks.empty()) o << "<tr><td>tasks</td><td>" << html_escape(d.tasks) << "</td></tr>";
  o << "</tbody></table>\n";
  if (!d.baseline_ppl.empty() || !d.baseline_acc.empty()) {
    o << "<h2>Full precision</h2>\n<table class=\"sortable\" id=\"baseline\"><thead><tr><th>dataset or task set</th><th>perplexity</th>"
         "<th>accuracy (llama.cpp's)</th></tr></thead><tbody>\n";
    for (const auto& [n, v] : d.baseline_ppl) o << "<tr>" << td_text(n) << td_num(v, 4) << td_num(NAN, 4) << "</tr>\n";
    for (const auto& [n, v] : d.baseline_acc) o << "<tr>" << td_text(n) << td_num(NAN, 4) << td_num(v, 4) << "</tr>\n";
    o << "</tbody></table>\n";
  }
  cells_table(o, d);
  winner_tables(o, d);
  frontier_plots(o, d);
  allocation_plot(o, d);
  layer_plots(o, d);
  o << "<script>\n" << kScript << "\n</script>\n</body></html>\n";
  return o.str();
}

}  // namespace qsweep
