// sensitivity_html.cc — Spearman matrices and sensitivity.html (see sensitivity_html.h).
#include "sweep/sensitivity_html.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "quant/kl_probe.h"
#include "sweep/report_render.h"

namespace qsweep {

namespace {
// The named score of every layer at candidate `cand`.
std::vector<double> column(const SensitivityData& d, const std::string& name, size_t cand) {
  std::vector<double> v;
  if (name == "alpha") return d.alpha;
  const std::vector<double>& s = d.scores(name);
  for (size_t l = 0; l < d.layers.size(); ++l) v.push_back(s[l * d.palette.size() + cand]);
  return v;
}

std::vector<std::string> present(const SensitivityData& d) {
  std::vector<std::string> n = {"output-error"};
  if (!d.kl_probe.empty()) n.push_back("kl-probe");
  if (!d.fisher.empty()) n.push_back("fisher");
  if (!d.alpha.empty()) n.push_back("alpha");
  return n;
}

std::string block_label(const std::string& layer) {  // model.layers.7.mlp.down_proj -> b7
  const std::string p = "model.layers.";
  if (layer.rfind(p, 0) != 0) return layer;
  return "b" + layer.substr(p.size(), layer.find('.', p.size()) - p.size());
}
}  // namespace

SpearmanMatrix sensitivity_spearman(const SensitivityData& d, size_t cand) {
  SpearmanMatrix m;
  m.scores = present(d);
  std::vector<std::vector<double>> cols;
  for (const std::string& s : m.scores) cols.push_back(column(d, s, cand));
  m.r.assign(cols.size(), std::vector<double>(cols.size(), 1.0));
  for (size_t i = 0; i < cols.size(); ++i)
    for (size_t j = 0; j < cols.size(); ++j)
      if (i != j) m.r[i][j] = spearman(cols[i], cols[j]);
  return m;
}

std::string sensitivity_html(const SensitivityData& d) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>qsweep sensitivity</title><style>"
    << "body{font:14px system-ui,sans-serif;margin:24px;max-width:1400px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}"
    << "table{border-collapse:collapse;margin:8px 0}svg.plot text{font-size:11px}svg.plot .title{font-size:13px;font-weight:600}"
    << "svg.plot .frame{fill:none;stroke:#999}svg.plot .grid{stroke:#eee}"
    << "</style></head><body><h1>Per-layer sensitivity</h1><p>" << html_escape(d.model) << ", method " << html_escape(d.method)
    << ", " << d.n_calib << " calibration windows of " << d.seq_len << " tokens from " << html_escape(d.calib) << "; "
    << d.layers.size() << " layers x " << d.palette.size() << " candidates";
  if (!d.kl_probe.empty())
    h << "; kl-probe on " << d.probe_windows << " windows of " << d.probe_ctx << " tokens from " << html_escape(d.probe_source);
  if (!d.fisher.empty())
    h << "; fisher (½ Σ F (W − Q)², empirical Fisher diagonal) over " << d.fisher_windows << " calibration windows of " << d.fisher_ctx
      << " tokens (their mean NLL " << d.fisher_loss << ")";
  h << ".</p>\n";
  std::vector<std::string> ticks;
  for (const std::string& l : d.layers) ticks.push_back(block_label(l));
  for (const std::string& name : present(d)) {
    Plot p;
    p.title = name == "alpha" ? "Alpha-Hill per layer (the same for every candidate)" : name + " per layer and candidate";
    p.xlabel = "layer (model order; ticks at blocks)";
    p.ylabel = name;
    p.log_y = name != "alpha";
    p.xticks_text = ticks;
    const size_t n_series = name == "alpha" ? 1 : d.palette.size();
    for (size_t c = 0; c < n_series; ++c) {
      PlotSeries s(name == "alpha" ? "alpha" : "W" + std::to_string(d.palette[c].bits) + " g" + std::to_string(d.palette[c].group_size),
                   series_color(c));
      const std::vector<double> v = column(d, name, c);
      for (size_t l = 0; l < v.size(); ++l) {
        if (p.log_y && !(v[l] > 0)) continue;  // a zero score has no place on a log axis
        s.x.push_back(static_cast<double>(l));
        s.y.push_back(v[l]);
        s.tips.push_back(d.layers[l]);
      }
      s.line = true;
      s.markers = d.layers.size() <= 64;
      p.series.push_back(std::move(s));
    }
    h << "<figure>" << svg_plot(p, 1000, 380) << "</figure>\n";
  }
  h << "<h2>Spearman rank correlation over the layers, per candidate</h2>\n";
  for (size_t c = 0; c < d.palette.size(); ++c) {
    const SpearmanMatrix m = sensitivity_spearman(d, c);
    h << "<table><caption>W" << d.palette[c].bits << " g" << d.palette[c].group_size << "</caption><tr><th></th>";
    for (const std::string& s : m.scores) h << "<th>" << s << "</th>";
    h << "</tr>";
    for (size_t i = 0; i < m.scores.size(); ++i) {
      h << "<tr><th>" << m.scores[i] << "</th>";
      for (size_t j = 0; j < m.scores.size(); ++j) {
        const double r = m.r[i][j];
        const int shade = std::isfinite(r) ? static_cast<int>(255 - 120 * std::fabs(r)) : 255;
        char buf[128];
        std::snprintf(buf, sizeof buf, "<td style=\"background:rgb(%d,%d,255)\">%.4f</td>", shade, shade, r);
        h << buf;
      }
      h << "</tr>";
    }
    h << "</table>\n";
  }
  h << "</body></html>\n";
  return h.str();
}

}  // namespace qsweep
