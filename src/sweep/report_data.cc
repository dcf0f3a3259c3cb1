// report_data.cc — reading a sweep directory for `qsweep report` (see report_data.h).
#include "sweep/report_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "eval/eval_data.h"
#include "io/h5_reader.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = any = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      any = true;
    } else if (c == '\n') {
      row.push_back(field);
      rows.push_back(row);
      row.clear();
      field.clear();
      any = false;
    } else if (c != '\r') {
      field += c;
      any = true;
    }
  }
  if (any || !field.empty() || !row.empty()) {
    row.push_back(field);
    rows.push_back(row);
  }
  return rows;
}

int ReportData::column(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return static_cast<int>(i);
  return -1;
}

std::string ReportData::text(size_t row, const std::string& col) const {
  const int c = column(col);
  return c < 0 || static_cast<size_t>(c) >= rows[row].size() ? "" : rows[row][c];
}

double ReportData::number(size_t row, const std::string& col) const {
  const std::string t = text(row, col);
  if (t.empty()) return std::nan("");
  try {
    return std::stod(t);
  } catch (...) {
    return std::nan("");
  }
}

namespace {

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  QS_CHECK(in, path << ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Model order of a linear's name: block number, then q k v o gate up down, then the rest.
std::pair<long, int> layer_order(const std::string& name) {
  long block = 1L << 40;
  const size_t p = name.find("layers.");
  if (p != std::string::npos) block = std::strtol(name.c_str() + p + 7, nullptr, 10);
  static const char* const kModules[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  int m = 7;
  for (int i = 0; i < 7; ++i)
    if (name.find(kModules[i]) != std::string::npos) m = i;
  return {block, m};
}

void sort_layers(std::vector<std::string>& names) {
  std::stable_sort(names.begin(), names.end(),
                   [](const std::string& a, const std::string& b) { return layer_order(a) < layer_order(b); });
}

void read_winners(ReportData& d) {
  const int mc = d.column(d.method_axis);
  if (mc < 0) return;
  // Setting of a row: every axis value except the method's.
  auto setting = [&](size_t r) {
    std::string s;
    for (const std::string& a : d.axes)
      if (a != d.method_axis) s += (s.empty() ? "" : " ") + a.substr(a.find('.') + 1) + "=" + d.text(r, a);
    return s.empty() ? std::string("all") : s;
  };
  std::vector<std::string> methods;
  for (size_t r = 0; r < d.rows.size(); ++r)
    if (std::find(methods.begin(), methods.end(), d.rows[r][mc]) == methods.end()) methods.push_back(d.rows[r][mc]);
  for (size_t i = 0; i < methods.size(); ++i)
    for (size_t j = i + 1; j < methods.size(); ++j) {
      ReportVerdict v;
      v.a = methods[i];
      v.b = methods[j];
      for (size_t ra = 0; ra < d.rows.size(); ++ra) {
        if (d.rows[ra][mc] != methods[i] || d.text(ra, "status") != "complete") continue;
        for (size_t rb = 0; rb < d.rows.size(); ++rb) {
          if (d.rows[rb][mc] != methods[j] || d.text(rb, "status") != "complete" || setting(rb) != setting(ra)) continue;
          const std::string ea = cell_dir(d.dir, d.text(ra, "id")) + "/eval.h5", eb = cell_dir(d.dir, d.text(rb, "id")) + "/eval.h5";
          if (!file_exists(ea) || !file_exists(eb)) continue;
          for (const DatasetComparison& c :
               compare_evaluations(read_eval_datasets(ea), read_eval_datasets(eb), methods[i], methods[j], ea, eb)) {
            d.winners.push_back({setting(ra), methods[i], methods[j], d.text(ra, "id"), d.text(rb, "id"), c});
            (c.winner == methods[i] ? v.a_wins : c.winner == methods[j] ? v.b_wins : v.ties)++;
          }
        }
      }
      if (v.a_wins + v.b_wins + v.ties > 0) d.verdicts.push_back(v);
    }
}

void read_layers(ReportData& d) {
  const int mc = d.column(d.method_axis);
  for (size_t r = 0; r < d.rows.size(); ++r) {
    if (d.text(r, "status") != "complete") continue;
    const std::string q = cell_dir(d.dir, d.text(r, "id")) + "/quantized.h5";
    if (!file_exists(q)) continue;
    H5Reader h(q);
    std::vector<std::string> names = h.children("/layers");
    sort_layers(names);
    if (d.layer_names.empty()) d.layer_names = names;
    if (names != d.layer_names) continue;  // another layer set (e.g. lm_head quantized): not on the same axis
    std::vector<double> e;
    for (const std::string& n : names)
      e.push_back(h.has_attr("/layers/" + n, "output_error") ? h.attr_double("/layers/" + n, "output_error") : std::nan(""));
    d.layer_error.push_back(e);
    d.layer_cells.push_back(d.text(r, "label").empty() ? d.text(r, "id") : d.text(r, "label"));
    d.layer_methods.push_back(mc >= 0 ? d.rows[r][mc] : "");
  }
}

void read_spectrum(ReportData& d) {
  const std::string p = d.dir + "/shared/spectrum/precision_alpha_hill_results.csv";
  if (!file_exists(p)) return;
  const auto rows = parse_csv(read_whole(p));
  if (rows.size() < 2) return;
  int name = -1, alpha = -1;
  for (size_t i = 0; i < rows[0].size(); ++i) {
    if (rows[0][i] == "layer_name") name = static_cast<int>(i);
    if (alpha < 0 && rows[0][i].rfind("alpha_", 0) == 0 && rows[0][i].find("alpha_pl") != 0 &&
        rows[0][i].find("alpha_delta") != 0 && rows[0][i].find("alpha_weighted") != 0)
      alpha = static_cast<int>(i);
  }
  if (name < 0 || alpha < 0) return;
  d.spectrum_column = rows[0][alpha];
  for (size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() <= static_cast<size_t>(std::max(name, alpha))) continue;
    d.spectrum_layers.push_back(rows[r][name]);
    d.spectrum_alpha.push_back(rows[r][alpha].empty() ? std::nan("") : std::stod(rows[r][alpha]));
  }
}

}  // namespace

ReportData read_report_data(const std::string& dir) {
  ReportData d;
  d.dir = dir;
  QS_CHECK(file_exists(dir + "/summary.csv"), dir << ": no summary.csv (finish the sweep with qsweep run --resume, or qsweep merge " << dir << ")");
  const Manifest m = read_manifest(dir);
  d.job = m.job_path;
  d.model = m.model;
  d.calib = m.calib;
  d.eval = m.eval_data;
  d.tasks = m.tasks;
  d.axes = m.axes;
  for (const std::string& a : d.axes)  // [quantize.NAME] variants are the methods when there are some
    if (a == "quantize.variant" || (a == "quantize.method" && d.method_axis.empty())) d.method_axis = a;
  if (!m.eval_data.empty()) d.datasets = dataset_names(split_data_list(m.eval_data, dir + ": eval"));
  if (!m.tasks.empty()) d.task_sets = dataset_names(split_data_list(m.tasks, dir + ": tasks"));
  auto rows = parse_csv(read_whole(dir + "/summary.csv"));
  QS_CHECK(!rows.empty(), dir << "/summary.csv: empty");
  d.columns = rows.front();
  for (size_t r = 1; r < rows.size(); ++r) {
    QS_CHECK(rows[r].size() == d.columns.size(), dir << "/summary.csv: row " << r + 1 << " has " << rows[r].size()
                                                      << " fields, the header " << d.columns.size());
    d.rows.push_back(rows[r]);
  }
  if (!m.baselines.empty()) {
    const std::string b = baseline_dir(dir, m.baselines.front()) + "/eval.h5";
    if (file_exists(b)) {
      H5Reader h(b);
      for (const std::string& n : d.datasets) {
        const std::string g = d.datasets.size() > 1 || h.exists("/datasets/" + n) ? "/datasets/" + n : "/";
        if (h.has_attr(g, "perplexity")) d.baseline_ppl[n] = h.attr_double(g, "perplexity");
      }
      for (const std::string& t : d.task_sets)
        if (h.has_attr("/tasks/" + t, "acc_llamacpp")) d.baseline_acc[t] = h.attr_double("/tasks/" + t, "acc_llamacpp");
    }
  }
  read_winners(d);
  read_layers(d);
  read_spectrum(d);
  return d;
}

}  // namespace qsweep
