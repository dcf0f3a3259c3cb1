// report_render.h — `qsweep report`'s two outputs from ReportData: report.html (one self-contained
// file: inline CSS, a small script that sorts any table by a click on its header, inline SVG
// plots) and report.md (the same tables in Markdown), plus the pieces both share.
#pragma once
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "sweep/report_data.h"

namespace qsweep {

// A column of the cells table: its header, the summary.csv column, how to format it.
struct ReportColumn {
  std::string header, csv;
  int decimals = -1;  // -1: text; otherwise fixed decimals
  double scale = 1;   // shown value = value * scale (bytes to MB)
};
std::vector<ReportColumn> report_cell_columns(const ReportData& d);
std::string report_format(double v, int decimals);  // "" for NaN

// One series of an SVG plot.
struct PlotSeries {
  PlotSeries() = default;
  PlotSeries(std::string n, std::string c) : name(std::move(n)), color(std::move(c)) {}
  std::string name, color;
  std::vector<double> x, y;
  std::vector<std::string> tips;  // a tooltip per point (optional)
  bool line = false, markers = true;
};
struct Plot {
  std::string title, xlabel, ylabel;
  std::vector<PlotSeries> series;
  bool log_y = false;
  double hline = std::numeric_limits<double>::quiet_NaN();  // a dashed reference line (baseline)
  std::string hline_label;
  std::vector<std::string> xticks_text;  // when set: categorical x (index i at x = i)
};
std::string svg_plot(const Plot& p, int width = 760, int height = 380);
std::string series_color(size_t i);

// Points on the lower-left frontier: no other point has fewer bits and a lower value.
std::vector<size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y);

std::string report_html(const ReportData& d);
// Reads DIR and writes DIR/report.html and DIR/report.md (atomically); returns the data shown.
ReportData write_report(const std::string& dir);
std::string report_markdown(const ReportData& d);
std::string html_escape(const std::string& s);

}  // namespace qsweep
