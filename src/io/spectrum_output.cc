// spectrum_output.cc — HDF5 and CSV writers for spectrum results. CSVs are written to a
// temporary name and renamed, like the HDF5 file, so no half-written table is left behind.
#include "io/spectrum_output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

#include "core/error.h"
#include "io/h5_writer.h"

namespace qsweep {

namespace {

struct MetricColumn {
  const char* name;
  std::function<double(const PrecisionSpectrum&)> get;
  bool integer;
};

const std::vector<MetricColumn>& metric_columns() {
  static const std::vector<MetricColumn> cols = {
      {"lambda_max", [](const PrecisionSpectrum& p) { return p.m.lambda_max; }, false},
      {"spectral_norm", [](const PrecisionSpectrum& p) { return p.m.spectral_norm; }, false},
      {"frobenius_norm", [](const PrecisionSpectrum& p) { return p.m.frobenius_norm; }, false},
      {"stable_rank", [](const PrecisionSpectrum& p) { return p.m.stable_rank; }, false},
      {"log_spectral_norm", [](const PrecisionSpectrum& p) { return p.m.log_spectral_norm; }, false},
      {"log_norm", [](const PrecisionSpectrum& p) { return p.m.log_norm; }, false},
      {"alpha_weighted", [](const PrecisionSpectrum& p) { return p.m.alpha_weighted; }, false},
      {"spectral_entropy", [](const PrecisionSpectrum& p) { return p.m.spectral_entropy; }, false},
      {"overflow", [](const PrecisionSpectrum& p) { return static_cast<double>(p.overflow); }, true},
      {"alpha_delta", [](const PrecisionSpectrum& p) { return p.alpha_delta; }, false},
      {"alpha_delta_pct", [](const PrecisionSpectrum& p) { return p.alpha_delta_pct; }, false},
  };
  return cols;
}

std::string num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char b[40];
  std::snprintf(b, sizeof(b), "%.17g", v);
  return b;
}

class AtomicText {
 public:
  explicit AtomicText(const std::string& path) : path_(path), tmp_(path + ".tmp") {
    f_ = std::fopen(tmp_.c_str(), "w");
    QS_CHECK(f_, tmp_ << ": cannot create");
  }
  ~AtomicText() {
    if (f_) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  void line(const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i) std::fputc(',', f_);
      std::fputs(cells[i].c_str(), f_);
    }
    std::fputc('\n', f_);
  }
  void commit() {
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    QS_CHECK(ok && std::rename(tmp_.c_str(), path_.c_str()) == 0, path_ << ": write failed");
  }

 private:
  std::string path_, tmp_;
  FILE* f_;
};

}  // namespace

Summary summarize(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  Summary s;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.count = static_cast<int64_t>(v.size());
  if (v.empty()) {
    s.mean = s.std = s.min = s.median = s.max = s.q25 = s.q75 = nan;
    return s;
  }
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / v.size();
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(ss / (v.size() - 1)) : nan;
  auto q = [&](double f) {  // linear interpolation, pandas' default
    const double pos = f * (v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(v.size() - 1, lo + 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
  };
  s.min = v.front();
  s.max = v.back();
  s.median = q(0.5);
  s.q25 = q(0.25);
  s.q75 = q(0.75);
  return s;
}

void write_spectrum_csv(const std::string& path, const std::vector<LayerSpectrum>& layers,
                        const std::vector<Precision>& precs) {
  AtomicText out(path);
  std::vector<std::string> h = {"layer_name", "category", "out_features", "in_features", "numel"};
  for (Precision p : precs)
    for (const char* c : {"alpha_", "k_used_", "n_eigs_", "method_"}) h.push_back(c + std::string(precision_name(p)));
  for (Precision p : precs)
    for (const char* c : {"alpha_pl_", "pl_xmin_", "pl_tail_", "pl_D_"}) h.push_back(c + std::string(precision_name(p)));
  for (Precision p : precs)
    for (const auto& mc : metric_columns()) h.push_back(std::string(mc.name) + "_" + precision_name(p));
  out.line(h);
  for (const auto& l : layers) {
    std::vector<std::string> r = {l.layer.name, l.layer.category, std::to_string(l.layer.out_features),
                                  std::to_string(l.layer.in_features),
                                  std::to_string(l.layer.out_features * l.layer.in_features)};
    for (const auto& p : l.per_precision) {
      r.push_back(num(p.m.alpha_hill));
      r.push_back(std::to_string(p.m.k_used));
      r.push_back(std::to_string(p.m.n_eigs));
      r.push_back(p.method);
    }
    for (const auto& p : l.per_precision) {
      r.push_back(num(p.m.alpha_pl));
      r.push_back(num(p.m.pl_xmin));
      r.push_back(std::to_string(p.m.pl_tail));
      r.push_back(num(p.m.pl_D));
    }
    for (const auto& p : l.per_precision)
      for (const auto& mc : metric_columns())
        r.push_back(mc.integer ? std::to_string(static_cast<int64_t>(mc.get(p))) : num(mc.get(p)));
    out.line(r);
  }
  out.commit();
}

void write_spectrum_summary_csv(const std::string& path, const std::vector<LayerSpectrum>& layers,
                                const std::vector<Precision>& precs) {
  AtomicText out(path);
  out.line({"precision", "count", "mean", "std", "min", "median", "max", "q25", "q75"});
  for (size_t k = 0; k < precs.size(); ++k) {
    std::vector<double> a;
    for (const auto& l : layers) a.push_back(l.per_precision[k].m.alpha_hill);
    const Summary s = summarize(a);
    out.line({precision_name(precs[k]), std::to_string(s.count), num(s.mean), num(s.std), num(s.min),
              num(s.median), num(s.max), num(s.q25), num(s.q75)});
  }
  out.commit();
}

void write_spectrum_h5(const std::string& path, const std::vector<LayerSpectrum>& layers,
                       const SpectrumRunInfo& info) {
  H5Writer w(path);
  w.attr("/", "format", std::string("qsweep-spectrum"));
  w.attr("/", "format_version", int64_t(1));
  w.attr("/", "model", info.model);
  w.attr("/", "filter_layers", info.filter);
  w.attr("/", "k_frac", info.k_frac);
  std::string pl;
  for (Precision p : info.precisions) pl += (pl.empty() ? "" : ",") + std::string(precision_name(p));
  w.attr("/", "precisions", pl);
  info.provenance.write(w);

  std::vector<std::string> names, cats;
  std::vector<int64_t> outf, inf, numel, rank;
  std::vector<double> secs;
  for (const auto& l : layers) {
    names.push_back(l.layer.name);
    cats.push_back(l.layer.category);
    outf.push_back(l.layer.out_features);
    inf.push_back(l.layer.in_features);
    numel.push_back(l.layer.out_features * l.layer.in_features);
    secs.push_back(l.seconds);
    rank.push_back(l.rank);
  }
  w.group("/layers");
  w.dataset("/layers/name", names);
  w.dataset("/layers/category", cats);
  w.dataset("/layers/out_features", outf);
  w.dataset("/layers/in_features", inf);
  w.dataset("/layers/numel", numel);
  w.group("/timing");  // provenance: excluded from comparisons
  w.dataset("/timing/seconds", secs);
  w.dataset("/timing/rank", rank);
  w.group("/precisions");
  for (size_t k = 0; k < info.precisions.size(); ++k) {
    const std::string g = std::string("/precisions/") + precision_name(info.precisions[k]);
    w.group(g);
    std::vector<std::string> method;
    std::vector<int64_t> k_used, n_eigs, pl_tail;
    std::vector<double> a, apl, xmin, D;
    for (const auto& l : layers) {
      const auto& p = l.per_precision[k];
      method.push_back(p.method);
      k_used.push_back(p.m.k_used);
      n_eigs.push_back(p.m.n_eigs);
      a.push_back(p.m.alpha_hill);
      apl.push_back(p.m.alpha_pl);
      xmin.push_back(p.m.pl_xmin);
      pl_tail.push_back(p.m.pl_tail);
      D.push_back(p.m.pl_D);
    }
    w.dataset(g + "/alpha_hill", a);
    w.dataset(g + "/k_used", k_used);
    w.dataset(g + "/n_eigs", n_eigs);
    w.dataset(g + "/method", method);
    w.dataset(g + "/alpha_pl", apl);
    w.dataset(g + "/pl_xmin", xmin);
    w.dataset(g + "/pl_tail", pl_tail);
    w.dataset(g + "/pl_D", D);
    for (const auto& mc : metric_columns()) {
      std::vector<double> v;
      for (const auto& l : layers) v.push_back(mc.get(l.per_precision[k]));
      if (mc.integer) {
        std::vector<int64_t> iv(v.begin(), v.end());
        w.dataset(g + "/" + mc.name, iv);
      } else {
        w.dataset(g + "/" + mc.name, v);
      }
    }
    if (info.save_eigenvalues) {
      w.group(g + "/eigenvalues");
      for (const auto& l : layers) w.dataset(g + "/eigenvalues/" + l.layer.name, l.per_precision[k].eigenvalues);
    }
  }
  w.commit();
}

}  // namespace qsweep
