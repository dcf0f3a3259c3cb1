// sweep_results.cc — cell.h5, sweep.h5 and summary.csv.
#include "sweep/sweep_results.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "eval/eval_data.h"
#include "io/h5_reader.h"
#include "io/h5_writer.h"

namespace qsweep {

namespace {
const char* const kMetricNames[] = {"perplexity",      "baseline_perplexity", "kl_divergence",
                                    "top1_agreement",  "bits_per_weight",     "model_bytes",
                                    "model_bits",      "quantize_seconds",    "eval_seconds",
                                    "seconds",         "predicted_score"};

size_t metric_index(const char* name) {
  for (size_t i = 0; i < sizeof(kMetricNames) / sizeof(kMetricNames[0]); ++i)
    if (!std::strcmp(kMetricNames[i], name)) return i;
  QS_ASSERT(false, "unknown metric " << name);
  return 0;
}

std::vector<double> metric_values(const CellMetrics& m) {
  return {m.perplexity, m.baseline_perplexity, m.kl_divergence, m.top1_agreement, m.bits_per_weight,
          m.model_bytes, m.model_bytes * 8, m.quantize_seconds, m.eval_seconds, m.seconds, m.predicted_score};
}


std::string num(double v) {
  if (std::isnan(v)) return "";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string cell_group(const ManifestCell& c) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "/cells/%04d-", c.index);
  return buf + c.id;
}

void write_params(H5Writer& w, const std::string& group, const ManifestCell& c) {
  w.group(group + "/params");
  for (const auto& [k, v] : c.params) w.attr(group + "/params", k, v);
}
}  // namespace

void write_cell_file(const std::string& path, const ManifestCell& cell, const CellMetrics& m,
                     const Provenance& prov) {
  H5Writer w(path);
  w.attr("/", "format", std::string("qsweep-cell"));
  w.attr("/", "format_version", int64_t(1));
  w.attr("/", "index", int64_t(cell.index));
  w.attr("/", "id", cell.id);
  w.attr("/", "label", cell.label);
  w.attr("/", "baseline", cell.baseline);
  w.attr("/", "status", std::string("complete"));
  const std::vector<double> v = metric_values(m);
  for (size_t i = 0; i < v.size(); ++i) w.attr("/", kMetricNames[i], v[i]);
  write_params(w, "", cell);
  prov.write(w);
  w.attr("/", "complete", int64_t(1));
  w.commit();
}

MergeReport survey_sweep(const std::string& dir, const Manifest& m) {
  MergeReport r;
  for (const auto& c : m.cells) {
    const CellStatus st = read_cell_status(dir, c.id);
    if (st.state == CellState::Complete) {
      ++r.complete;
    } else if (st.state == CellState::Failed) {
      ++r.failed;
      r.failed_cells.push_back((c.label.empty() ? c.id : c.label) + " (" + c.id + "): " + st.error);
    } else {
      ++r.pending;
      r.pending_cells.push_back(c.label.empty() ? c.id : c.label);
    }
  }
  return r;
}

MergeReport merge_sweep(const std::string& dir, const Provenance& prov) {
  const Manifest m = read_manifest(dir);
  MergeReport rep = survey_sweep(dir, m);
  if (rep.pending > 0) {
    std::string list;
    for (size_t i = 0; i < rep.pending_cells.size() && i < 8; ++i) list += "\n  " + rep.pending_cells[i];
    QS_THROW(dir << ": " << rep.pending << " of " << m.cells.size()
                 << " cells have no result yet (run qsweep run --resume to finish them):" << list);
  }
  for (const auto& b : m.baselines)
    QS_CHECK(file_exists(baseline_dir(dir, b) + "/eval.h5"), dir << ": the full-precision baseline " << b << " is missing (run qsweep run --resume)");
  QS_CHECK(!m.spectrum || file_exists(dir + "/shared/spectrum/results.h5"), dir << ": the shared spectrum is missing (run qsweep run --resume)");
  QS_CHECK(!m.calibrate || file_exists(dir + "/shared/calibrate/stats.h5"), dir << ": the shared statistics are missing (run qsweep run --resume)");

  H5Writer w(dir + "/sweep.h5");
  w.attr("/", "format", std::string("qsweep-sweep"));
  w.attr("/", "format_version", int64_t(1));
  w.attr("/", "job_path", m.job_path);
  w.attr("/", "job_text", m.job_text);
  w.attr("/", "model", m.model);
  w.attr("/", "calib", m.calib);
  w.attr("/", "eval", m.eval_data);
  w.attr("/", "tasks", m.tasks);
  std::string axes;
  for (const auto& a : m.axes) axes += (axes.empty() ? "" : ",") + a;
  w.attr("/", "axes", axes);
  w.attr("/", "n_cells", int64_t(m.cells.size()));
  w.attr("/", "n_complete", int64_t(rep.complete));
  w.attr("/", "n_failed", int64_t(rep.failed));
  std::map<std::string, double> baseline_ppl;
  w.group("/baselines");
  for (const auto& b : m.baselines) {
    const std::string p = baseline_dir(dir, b) + "/eval.h5";
    w.copy_file(p, "/baselines/" + b);
    baseline_ppl[b] = H5Reader(p).attr_double("/", "perplexity");
  }
  if (m.spectrum) w.copy_file(dir + "/shared/spectrum/results.h5", "/spectrum");
  if (m.calibrate) w.copy_file(dir + "/shared/calibrate/stats.h5", "/calibrate");

  // Columns for /table and summary.csv.
  std::vector<std::string> param_keys;
  for (const auto& c : m.cells)
    for (const auto& [k, v] : c.params) {
      bool seen = false;
      for (const auto& x : param_keys) seen |= x == k;
      if (!seen) param_keys.push_back(k);
    }
  constexpr size_t kM = sizeof(kMetricNames) / sizeof(kMetricNames[0]);
  std::vector<std::vector<double>> metric_cols(kM);
  // With several evaluation files, each file's figures as columns <metric>[<dataset>].
  std::vector<std::string> names;
  if (!m.eval_data.empty()) names = dataset_names(split_data_list(m.eval_data, dir + ": eval"));
  if (names.size() < 2) names.clear();
  const char* const kPerData[] = {"perplexity", "baseline_perplexity", "kl_divergence", "top1_agreement"};
  std::vector<std::string> data_cols;
  for (const std::string& n : names)
    for (const char* k : kPerData) data_cols.push_back(std::string(k) + "[" + n + "]");
  // Each task file's accuracies (the cell's, then its baseline's): <metric>[<task set>].
  std::vector<std::string> task_names;
  if (!m.tasks.empty()) task_names = dataset_names(split_data_list(m.tasks, dir + ": tasks"));
  const char* const kPerTask[] = {"acc", "acc_norm", "acc_llamacpp"};
  for (const std::string& n : task_names)
    for (const char* who : {"", "baseline_"})
      for (const char* k : kPerTask) data_cols.push_back(std::string(who) + k + "[" + n + "]");
  std::vector<std::vector<double>> data_vals(data_cols.size());
  // A dataset's attribute in an eval.h5 (NaN when absent).
  auto dataset_attr = [](const H5Reader& r, const std::string& name, const char* attr) {
    const std::string g = "/datasets/" + name;
    return r.exists(g) && r.has_attr(g, attr) ? r.attr_double(g, attr) : CellMetrics::kNone;
  };
  std::vector<std::string> ids, labels, states, errors;
  std::vector<int64_t> indices;
  std::ostringstream csv;
  csv << "index,id,label,status";
  for (const auto& k : param_keys) csv << "," << csv_field(k);
  for (const char* n : kMetricNames) csv << "," << n;
  for (const std::string& n : data_cols) csv << "," << csv_field(n);
  csv << ",error\n";

  w.group("/cells");
  for (const auto& c : m.cells) {
    const std::string g = cell_group(c);
    const std::string cd = cell_dir(dir, c.id);
    const CellStatus st = read_cell_status(dir, c.id);
    std::vector<double> mv(kM, CellMetrics::kNone);
    if (st.state == CellState::Complete) {
      w.copy_file(cd + "/cell.h5", g);
      H5Reader r(cd + "/cell.h5");
      for (size_t i = 0; i < kM; ++i)
        if (r.has_attr("/", kMetricNames[i])) mv[i] = r.attr_double("/", kMetricNames[i]);
      double& bits = mv[metric_index("model_bits")];  // absent from older cell files
      if (std::isnan(bits)) bits = mv[metric_index("model_bytes")] * 8;
      w.copy_file(cd + "/quantized.h5", g + "/quantized");
      if (file_exists(cd + "/eval.h5")) w.copy_file(cd + "/eval.h5", g + "/eval");
    } else {
      w.group(g);
      w.attr(g, "index", int64_t(c.index));
      w.attr(g, "id", c.id);
      w.attr(g, "label", c.label);
      w.attr(g, "baseline", c.baseline);
      w.attr(g, "status", std::string("failed"));
      w.attr(g, "error", st.error);
      if (!c.baseline.empty()) mv[1] = baseline_ppl[c.baseline];
      write_params(w, g, c);
    }
    indices.push_back(c.index);
    ids.push_back(c.id);
    labels.push_back(c.label);
    states.push_back(st.state == CellState::Complete ? "complete" : "failed");
    errors.push_back(st.error);
    for (size_t i = 0; i < kM; ++i) metric_cols[i].push_back(mv[i]);
    csv << c.index << "," << c.id << "," << csv_field(c.label) << "," << states.back();
    for (const auto& k : param_keys) {
      std::string v;
      for (const auto& [pk, pv] : c.params)
        if (pk == k) v = pv;
      csv << "," << csv_field(v);
    }
    for (double x : mv) csv << "," << num(x);
    if (!names.empty() || !task_names.empty()) {  // each eval.h5 opened once per cell
      const std::string ev = cd + "/eval.h5";
      const std::string base = c.baseline.empty() ? "" : baseline_dir(dir, c.baseline) + "/eval.h5";
      std::unique_ptr<H5Reader> er, br;
      if (st.state == CellState::Complete && file_exists(ev)) er = std::make_unique<H5Reader>(ev);
      if (!base.empty() && file_exists(base)) br = std::make_unique<H5Reader>(base);
      for (size_t d = 0; d < names.size(); ++d) {
        const double v[4] = {er ? dataset_attr(*er, names[d], "perplexity") : CellMetrics::kNone,
                             br ? dataset_attr(*br, names[d], "perplexity") : CellMetrics::kNone,
                             er ? dataset_attr(*er, names[d], "kl_divergence") : CellMetrics::kNone,
                             er ? dataset_attr(*er, names[d], "top1_agreement") : CellMetrics::kNone};
        for (int k = 0; k < 4; ++k) {
          data_vals[d * 4 + k].push_back(v[k]);
          csv << "," << num(v[k]);
        }
      }
      size_t col = names.size() * 4;
      for (const std::string& n : task_names)
        for (const H5Reader* r : {er.get(), br.get()})
          for (const char* k : kPerTask) {
            const std::string g = "/tasks/" + n;
            const double v = r && r->exists(g) && r->has_attr(g, k) ? r->attr_double(g, k) : CellMetrics::kNone;
            data_vals[col++].push_back(v);
            csv << "," << num(v);
          }
    }
    csv << "," << csv_field(st.error) << "\n";
  }
  w.group("/table");
  w.dataset("/table/index", indices);
  w.dataset("/table/id", ids);
  w.dataset("/table/label", labels);
  w.dataset("/table/status", states);
  w.dataset("/table/error", errors);
  for (size_t i = 0; i < kM; ++i) w.dataset(std::string("/table/") + kMetricNames[i], metric_cols[i]);
  for (size_t i = 0; i < data_cols.size(); ++i) w.dataset("/table/" + data_cols[i], data_vals[i]);
  prov.write(w);
  w.attr("/", "complete", int64_t(1));
  write_text_atomic(dir + "/summary.csv", csv.str());
  w.commit();
  return rep;
}

}  // namespace qsweep
