// spectrum.cc — layer enumeration, LPT plan, per-layer analysis and the gather in model order.
#include "stats/spectrum.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <regex>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "stats/gram_eigen.h"

namespace qsweep {

namespace {
const char* category_of(Linear l) {
  switch (l) {
    case Linear::Q: return "attn_q";
    case Linear::K: return "attn_k";
    case Linear::V: return "attn_v";
    case Linear::O: return "attn_o";
    case Linear::Gate: return "mlp_gate";
    case Linear::Up: return "mlp_up";
    case Linear::Down: return "mlp_down";
  }
  return "?";
}
}  // namespace

std::vector<SpectrumLayer> spectrum_layers(const LlamaWeights& model, const std::string& filter) {
  std::regex re;
  if (!filter.empty()) {
    try {
      re = std::regex(filter, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      QS_THROW("--filter-layers '" << filter << "' is not a valid ECMAScript regex: " << e.what());
    }
  }
  const ModelConfig& c = model.config();
  std::vector<SpectrumLayer> all;
  for (int b = 0; b < c.num_hidden_layers; ++b)
    for (int l = 0; l < kNumLinear; ++l) {
      const Linear L = static_cast<Linear>(l);
      SpectrumLayer s;
      s.name = linear_module_name(b, L);
      s.tensor = s.name + ".weight";
      s.category = category_of(L);
      const TensorInfo* t = model.checkpoint().find(s.tensor);
      s.out_features = t->shape[0];
      s.in_features = t->shape[1];
      all.push_back(s);
    }
  {
    SpectrumLayer s;
    s.name = "lm_head";
    s.tensor = model.lm_head_name();
    s.category = "lm_head";
    const TensorInfo* t = model.checkpoint().find(s.tensor);
    s.out_features = t->shape[0];
    s.in_features = t->shape[1];
    all.push_back(s);
  }
  std::vector<SpectrumLayer> out;
  for (auto& s : all) {
    if (!filter.empty() && !std::regex_search(s.name, re)) continue;
    s.cost = gram_eigen_cost(s.out_features, s.in_features);
    out.push_back(s);
  }
  QS_CHECK(!out.empty(), "--filter-layers '" << filter << "' matches none of the " << all.size()
                                             << " linear layers (names look like "
                                             << all.front().name << " and lm_head)");
  return out;
}

std::vector<int> lpt_assign(const std::vector<double>& cost, int ranks) {
  std::vector<size_t> order(cost.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cost[a] > cost[b]; });
  std::vector<double> load(static_cast<size_t>(ranks), 0.0);
  std::vector<int> owner(cost.size(), 0);
  for (size_t i : order) {
    const int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    owner[i] = r;
    load[r] += cost[i];
  }
  return owner;
}

namespace {

constexpr int kFixed = 19;  // numbers per (layer, precision) in the gather record

void pack(const LayerSpectrum& s, size_t idx, std::vector<double>& buf) {
  buf.push_back(static_cast<double>(idx));
  buf.push_back(s.seconds);
  for (const auto& p : s.per_precision) {
    const SpectralMetrics& m = p.m;
    const double v[kFixed] = {static_cast<double>(p.overflow), static_cast<double>(m.n_eigs),
                              static_cast<double>(m.k_used), m.alpha_hill, m.alpha_pl, m.pl_xmin,
                              static_cast<double>(m.pl_tail), m.pl_D, m.lambda_max,
                              m.spectral_norm, m.frobenius_norm, m.stable_rank,
                              m.log_spectral_norm, m.log_norm, m.alpha_weighted,
                              m.spectral_entropy, p.alpha_delta, p.alpha_delta_pct,
                              static_cast<double>(p.eigenvalues.size())};
    buf.insert(buf.end(), v, v + kFixed);
    buf.insert(buf.end(), p.eigenvalues.begin(), p.eigenvalues.end());
  }
}

size_t unpack(const std::vector<double>& buf, size_t pos, const std::vector<Precision>& precs,
              std::vector<LayerSpectrum>& out, int rank) {
  const size_t idx = static_cast<size_t>(buf[pos++]);
  LayerSpectrum& s = out[idx];
  s.seconds = buf[pos++];
  s.rank = rank;
  s.per_precision.resize(precs.size());
  for (size_t k = 0; k < precs.size(); ++k) {
    PrecisionSpectrum& p = s.per_precision[k];
    const double* v = buf.data() + pos;
    p.precision = precs[k];
    p.overflow = static_cast<int64_t>(v[0]);
    p.method = p.overflow > 0 ? "overflow" : "hill";
    SpectralMetrics& m = p.m;
    m.n_eigs = static_cast<int64_t>(v[1]);
    m.k_used = static_cast<int>(v[2]);
    m.alpha_hill = v[3]; m.alpha_pl = v[4]; m.pl_xmin = v[5];
    m.pl_tail = static_cast<int64_t>(v[6]); m.pl_D = v[7]; m.lambda_max = v[8];
    m.spectral_norm = v[9]; m.frobenius_norm = v[10]; m.stable_rank = v[11];
    m.log_spectral_norm = v[12]; m.log_norm = v[13]; m.alpha_weighted = v[14];
    m.spectral_entropy = v[15];
    p.alpha_delta = v[16];
    p.alpha_delta_pct = v[17];
    const size_t ne = static_cast<size_t>(v[18]);
    pos += kFixed;
    p.eigenvalues.assign(buf.begin() + pos, buf.begin() + pos + ne);
    pos += ne;
  }
  return pos;
}

LayerSpectrum analyse_layer(const LlamaWeights& model, const SpectrumLayer& layer,
                            const SpectrumOptions& opt) {
  Timer t;
  LayerSpectrum s;
  s.layer = layer;
  const int64_t n = layer.out_features * layer.in_features;
  std::vector<float> stored(static_cast<size_t>(n)), w(static_cast<size_t>(n));
  model.checkpoint().read_f32(layer.tensor, stored.data());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Precision p : opt.precisions) {
    PrecisionSpectrum ps;
    ps.precision = p;
    std::copy(stored.begin(), stored.end(), w.begin());
    ps.overflow = round_to_precision(w.data(), n, p);
    if (ps.overflow > 0) {
      ps.method = "overflow";  // never passed to LAPACK
      SpectralMetrics& m = ps.m;
      m.alpha_hill = m.alpha_pl = m.pl_xmin = m.pl_D = m.lambda_max = m.spectral_norm = nan;
      m.frobenius_norm = m.stable_rank = m.log_spectral_norm = m.log_norm = nan;
      m.alpha_weighted = m.spectral_entropy = nan;
    } else {
      ps.method = "hill";
      const std::vector<double> eig = gram_eigenvalues(w.data(), layer.out_features, layer.in_features);
      ps.m = spectral_metrics(eig, opt.k_frac);
      if (opt.save_eigenvalues)
        for (double v : eig)
          if (v > 0) ps.eigenvalues.push_back(v);
    }
    s.per_precision.push_back(std::move(ps));
  }
  // Change of α_hill against the highest precision analysed.
  size_t ref = 0;
  for (size_t k = 1; k < opt.precisions.size(); ++k)
    if (precision_rank(opt.precisions[k]) > precision_rank(opt.precisions[ref])) ref = k;
  const double a_ref = s.per_precision[ref].m.alpha_hill;
  for (auto& ps : s.per_precision) {
    ps.alpha_delta = ps.m.alpha_hill - a_ref;
    ps.alpha_delta_pct = 100.0 * ps.alpha_delta / a_ref;
  }
  s.seconds = t.seconds();
  return s;
}

}  // namespace

std::vector<LayerSpectrum> run_spectrum(const LlamaWeights& model, const SpectrumOptions& opt,
                                        const Comm& comm) {
  QS_CHECK(opt.k_frac > 0 && opt.k_frac < 1, "--k-frac " << opt.k_frac << " must lie in (0, 1)");
  QS_CHECK(!opt.precisions.empty(), "--precisions is empty");
  const std::vector<SpectrumLayer> layers = spectrum_layers(model, opt.filter);
  std::vector<double> cost;
  for (const auto& l : layers) cost.push_back(l.cost * opt.precisions.size());
  const std::vector<int> owner = lpt_assign(cost, comm.size());
  std::vector<size_t> mine;
  for (size_t i = 0; i < layers.size(); ++i)
    if (owner[i] == comm.rank()) mine.push_back(i);
  // Biggest first inside the rank too, so threads finish together.
  std::stable_sort(mine.begin(), mine.end(), [&](size_t a, size_t b) { return cost[a] > cost[b]; });

  std::vector<LayerSpectrum> local(mine.size());
  Progress progress("spectrum", static_cast<long>(mine.size()), "layers (rank 0)");
  long done = 0;
  Error first_error("");
  bool failed = false;
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t j = 0; j < mine.size(); ++j) {
    try {
      local[j] = analyse_layer(model, layers[mine[j]], opt);
    } catch (const Error& e) {
#pragma omp critical(spectrum_error)
      if (!failed) {
        failed = true;
        first_error = e;
      }
    }
#pragma omp critical(spectrum_progress)
    if (opt.progress) progress.update(++done);
  }
  // A layer that failed on this rank alone fails the command on every rank, before the gather.
  comm.agree_or_throw(failed ? (*first_error.what() ? first_error.what() : "spectrum: a layer failed") : "");
  if (opt.progress) progress.finish();

  std::vector<double> buf;
  for (size_t j = 0; j < mine.size(); ++j) pack(local[j], mine[j], buf);
  const std::vector<double> all = comm.allgatherv(buf);
  std::vector<LayerSpectrum> out(layers.size());
  size_t pos = 0;
  while (pos < all.size()) {
    const size_t idx = static_cast<size_t>(all[pos]);
    pos = unpack(all, pos, opt.precisions, out, owner[idx]);
  }
  for (size_t i = 0; i < layers.size(); ++i) out[i].layer = layers[i];
  return out;
}

}  // namespace qsweep
