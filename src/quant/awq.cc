// awq.cc — AWQ scale search and the Gram-based output error.
#include "quant/awq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace qsweep {

double output_sq_error(const float* w, const float* what, int out, int in, const std::vector<double>& gram) {
  constexpr int kRows = 32;
  const int tiles = (out + kRows - 1) / kRows;
  std::vector<double> per_tile(static_cast<size_t>(tiles), 0.0);
#pragma omp parallel for schedule(dynamic, 1)
  for (int t = 0; t < tiles; ++t) {
    const int r0 = t * kRows, rn = std::min(kRows, out - r0);
    std::vector<double> d(static_cast<size_t>(rn) * in), dg(d.size());
    for (int r = 0; r < rn; ++r)
      for (int c = 0; c < in; ++c) {
        const size_t k = static_cast<size_t>(r0 + r) * in + c;
        d[static_cast<size_t>(r) * in + c] = static_cast<double>(w[k]) - static_cast<double>(what[k]);
      }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rn, in, in, 1.0, d.data(), in, gram.data(),
                in, 0.0, dg.data(), in);
    double s = 0;
    for (size_t k = 0; k < d.size(); ++k) s += d[k] * dg[k];
    per_tile[t] = s;
  }
  double total = 0;
  for (double v : per_tile) total += v;  // tile order: fixed
  return total;
}

AwqSearch awq_search(const std::vector<const float*>& weights, const std::vector<int>& outs, int in,
                     const std::vector<double>& gram, const std::vector<double>& salience,
                     const std::vector<GridSpec>& grids, int n_grid) {
  QS_CHECK(n_grid >= 1, "--awq-grid must be at least 1");
  AwqSearch best;
  double best_err = INFINITY;
  std::vector<float> s(in), scaled, back;
  for (int g = 0; g < n_grid; ++g) {
    const double alpha = static_cast<double>(g) / n_grid;
    float mx = 0, mn = INFINITY;
    for (int c = 0; c < in; ++c) {
      s[c] = std::max(static_cast<float>(std::pow(salience[c], alpha)), 1e-4f);
      mx = std::max(mx, s[c]);
      mn = std::min(mn, s[c]);
    }
    const float norm = std::sqrt(mx * mn);
    for (float& v : s) v /= norm;
    double err = 0;
    for (size_t k = 0; k < weights.size(); ++k) {
      const int out = outs[k];
      scaled.assign(weights[k], weights[k] + static_cast<size_t>(out) * in);
      for (int r = 0; r < out; ++r)
        for (int c = 0; c < in; ++c) scaled[static_cast<size_t>(r) * in + c] *= s[c];
      const QuantizedLinear q = quantize_rtn(scaled.data(), out, in, grids[k]);
      back = q.dequantize();
      for (int r = 0; r < out; ++r)
        for (int c = 0; c < in; ++c) back[static_cast<size_t>(r) * in + c] /= s[c];
      err += output_sq_error(weights[k], back.data(), out, in, gram);
    }
    best.errors.push_back(err);
    if (err < best_err) {
      best_err = err;
      best.alpha = alpha;
      best.scales = s;
    }
  }
  return best;
}

}  // namespace qsweep
