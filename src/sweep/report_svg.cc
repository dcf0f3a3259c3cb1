// report_svg.cc — inline SVG scatter/line plots for report.html (no external library), the
// cells table's columns and number formatting, and the size-quality frontier.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "sweep/report_render.h"

namespace qsweep {

std::string report_format(double v, int decimals) {
  if (std::isnan(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::vector<ReportColumn> report_cell_columns(const ReportData& d) {
  std::vector<ReportColumn> c = {{"cell", "label"}, {"id", "id"}, {"status", "status"}};
  for (const std::string& a : d.axes) c.push_back({a.substr(a.find('.') + 1), a});
  c.push_back({"bits/weight", "bits_per_weight", 4});
  c.push_back({"size (MB)", "model_bytes", 3, 1e-6});
  const bool several = d.datasets.size() > 1;
  for (const std::string& n : d.datasets) {
    c.push_back({"ppl " + n, several ? "perplexity[" + n + "]" : "perplexity", 4});
    if (d.column(several ? "kl_divergence[" + n + "]" : "kl_divergence") >= 0)
      c.push_back({"KL " + n, several ? "kl_divergence[" + n + "]" : "kl_divergence", 5});
  }
  for (const std::string& t : d.task_sets) {
    c.push_back({"acc " + t, "acc[" + t + "]", 4});
    c.push_back({"acc_norm " + t, "acc_norm[" + t + "]", 4});
    c.push_back({"acc_llamacpp " + t, "acc_llamacpp[" + t + "]", 4});
  }
  bool allocated = false;  // [allocate] cells have a predicted score
  for (size_t r = 0; r < d.rows.size(); ++r) allocated |= std::isfinite(d.number(r, "predicted_score"));
  if (allocated) c.push_back({"predicted", "predicted_score", 6});
  c.push_back({"seconds", "seconds", 1});
  c.push_back({"error", "error"});
  std::vector<ReportColumn> out;
  for (const ReportColumn& x : c)
    if (d.column(x.csv) >= 0) out.push_back(x);
  return out;
}

std::vector<size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) idx.push_back(i);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] != x[b] ? x[a] < x[b] : y[a] < y[b]; });
  std::vector<size_t> front;
  double best = std::numeric_limits<double>::infinity();
  for (size_t i : idx)
    if (y[i] < best) {
      front.push_back(i);
      best = y[i];
    }
  return front;
}

std::string series_color(size_t i) {
  static const char* const k[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  return k[i % 10];
}

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string tick_label(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a != 0 && (a < 1e-3 || a >= 1e5)) std::snprintf(buf, sizeof buf, "%.0e", v);
  else std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// About n "nice" ticks (1, 2, 5 × 10^k) covering [lo, hi].
std::vector<double> linear_ticks(double lo, double hi, int n) {
  const double span = hi - lo > 0 ? hi - lo : 1;
  const double raw = span / n, mag = std::pow(10, std::floor(std::log10(raw)));
  const double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}

}  // namespace

std::string svg_plot(const Plot& p, int W, int H) {
  const double L = 70, R = W >= 1000 ? 280 : 170, T = 30, B = 50;  // margins; the legend sits on the right
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const PlotSeries& s : p.series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (p.log_y && s.y[i] <= 0)) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  if (std::isfinite(p.hline) && (!p.log_y || p.hline > 0)) {
    y0 = std::min(y0, p.hline);
    y1 = std::max(y1, p.hline);
  }
  std::ostringstream o;
  o << "<figure><svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\" aria-label=\"" << html_escape(p.title) << "\">\n";
  o << "<text x=\"" << W / 2 << "\" y=\"18\" text-anchor=\"middle\" class=\"title\">" << html_escape(p.title) << "</text>\n";
  if (!std::isfinite(x0)) {
    o << "<text x=\"" << W / 2 << "\" y=\"" << H / 2 << "\" text-anchor=\"middle\">no finite values</text></svg></figure>\n";
    return o.str();
  }
  if (x1 == x0) { x0 -= 0.5; x1 += 0.5; }
  const bool logy = p.log_y && y0 > 0;
  auto fy = [&](double v) { return logy ? std::log10(v) : v; };
  double ly0 = fy(y0), ly1 = fy(y1);
  if (ly1 == ly0) { ly0 -= 0.5; ly1 += 0.5; }
  const double pad = (ly1 - ly0) * 0.06;
  ly0 -= pad;
  ly1 += pad;
  const double xpad = p.xticks_text.empty() ? (x1 - x0) * 0.05 : 0.5;
  x0 -= xpad;
  x1 += xpad;
  auto X = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double v) { return T + (ly1 - fy(v)) / (ly1 - ly0) * (H - T - B); };
  // Axes and ticks.
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" class=\"frame\"/>\n";
  std::vector<double> yt;
  if (logy) {
    for (double e = std::floor(ly0); e <= std::ceil(ly1); ++e)
      for (double m : {1.0, 2.0, 5.0}) {
        const double v = m * std::pow(10, e);
        if (fy(v) >= ly0 && fy(v) <= ly1 && (m == 1 || ly1 - ly0 < 2.5)) yt.push_back(v);
      }
  } else {
    yt = linear_ticks(ly0, ly1, 6);
  }
  for (double v : yt)
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << num(Y(v)) << "\" y2=\"" << num(Y(v))
      << "\" class=\"grid\"/><text x=\"" << L - 6 << "\" y=\"" << num(Y(v) + 4) << "\" text-anchor=\"end\">" << tick_label(v)
      << "</text>\n";
  if (p.xticks_text.empty()) {
    for (double v : linear_ticks(x0, x1, 8))
      o << "<text x=\"" << num(X(v)) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">" << tick_label(v) << "</text>\n";
  } else {
    // A tick where the label changes (e.g. the first layer of each block), at most ~24 of them.
    const size_t n = p.xticks_text.size();
    size_t changes = 0;
    for (size_t i = 0; i < n; ++i) changes += i == 0 || p.xticks_text[i] != p.xticks_text[i - 1];
    const size_t every = std::max<size_t>(1, (changes + 23) / 24);
    for (size_t i = 0, k = 0; i < n; ++i) {
      if (i > 0 && p.xticks_text[i] == p.xticks_text[i - 1]) continue;
      if (k++ % every) continue;
      o << "<text x=\"" << num(X(static_cast<double>(i))) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">"
        << html_escape(p.xticks_text[i]) << "</text>\n";
    }
  }
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\">" << html_escape(p.xlabel) << "</text>\n";
  o << "<text transform=\"translate(16," << (T + H - B) / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << html_escape(p.ylabel) << (logy ? " (log scale)" : "") << "</text>\n";
  if (std::isfinite(p.hline) && (!logy || p.hline > 0))
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << num(Y(p.hline)) << "\" y2=\"" << num(Y(p.hline))
      << "\" class=\"ref\"/><text x=\"" << W - R - 4 << "\" y=\"" << num(Y(p.hline) - 4) << "\" text-anchor=\"end\" class=\"reflabel\">"
      << html_escape(p.hline_label) << "</text>\n";
  // Series.
  for (size_t k = 0; k < p.series.size(); ++k) {
    const PlotSeries& s = p.series[k];
    if (s.line) {
      o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.6\" points=\"";
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!logy || s.y[i] > 0)) o << num(X(s.x[i])) << "," << num(Y(s.y[i])) << " ";
      o << "\"/>\n";
    }
    if (s.markers)
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (logy && s.y[i] <= 0)) continue;
        o << "<circle cx=\"" << num(X(s.x[i])) << "\" cy=\"" << num(Y(s.y[i])) << "\" r=\"4\" fill=\"" << s.color << "\">";
        if (i < s.tips.size()) o << "<title>" << html_escape(s.tips[i]) << "</title>";
        o << "</circle>\n";
      }
    const double ly = T + 14 + 18 * static_cast<double>(k);
    o << "<rect x=\"" << W - R + 12 << "\" y=\"" << ly - 9 << "\" width=\"12\" height=\"10\" fill=\"" << s.color
      << "\"/><text x=\"" << W - R + 30 << "\" y=\"" << ly << "\">" << html_escape(s.name) << "</text>\n";
  }
  o << "</svg></figure>\n";
  return o.str();
}

}  // namespace qsweep
