// spectral_metrics.cc — Hill, power-law KS fit and the norm metrics.
#include "stats/spectral_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace qsweep {

HillFit alpha_hill(const std::vector<double>& l, double k_frac) {
  const int64_t n = static_cast<int64_t>(l.size());
  if (n < 2) return {std::numeric_limits<double>::quiet_NaN(), 0};
  const int64_t k = std::max<int64_t>(1, std::min<int64_t>(n - 1, static_cast<int64_t>(std::floor(k_frac * n))));
  double s = 0;
  for (int64_t i = 0; i < k; ++i) s += std::log(l[i] / l[k]);
  return {s > 0 ? 1.0 + static_cast<double>(k) / s : std::numeric_limits<double>::quiet_NaN(),
          static_cast<int>(k)};
}

PowerLawFit power_law_ks(const std::vector<double>& l) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  PowerLawFit best{nan, nan, std::numeric_limits<double>::infinity(), 0};
  const int64_t n = static_cast<int64_t>(l.size());
  // prefix[j] = Σ_{i<j} ln λ_i (descending order), so Σ_tail ln(λ/x_min) = prefix[m] - m ln x_min.
  std::vector<double> prefix(static_cast<size_t>(n + 1), 0.0);
  for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + std::log(l[i]);
  for (int64_t j = 1; j < n; ++j) {  // candidate x_min = l[j]: all but the largest
    const double xmin = l[j];
    if (j + 1 < n && l[j + 1] == xmin) continue;  // repeated value: its last occurrence has the full tail
    const int64_t m = j + 1;                       // tail = l[0..j]
    const double s = prefix[m] - static_cast<double>(m) * std::log(xmin);
    if (!(s > 0)) continue;
    const double alpha = 1.0 + static_cast<double>(m) / s;
    // KS over the tail in ascending order: x_(i) = l[j - i], empirical CDF i/m.
    double D = 0;
    for (int64_t i = 0; i < m; ++i) {
      const double x = l[j - i];
      const double theo = 1.0 - std::pow(x / xmin, 1.0 - alpha);
      D = std::max(D, std::fabs(theo - static_cast<double>(i) / static_cast<double>(m)));
    }
    if (D <= best.D) best = {alpha, xmin, D, m};  // ties: the smaller x_min, as WeightWatcher
  }
  if (best.tail == 0) best.D = nan;
  return best;
}

SpectralMetrics spectral_metrics(const std::vector<double>& eig_desc, double k_frac) {
  std::vector<double> l;
  for (double v : eig_desc)
    if (v > 0) l.push_back(v);
  SpectralMetrics m;
  m.n_eigs = static_cast<int64_t>(l.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (l.empty()) {
    m.alpha_hill = m.alpha_pl = m.pl_xmin = m.pl_D = m.lambda_max = m.spectral_norm = nan;
    m.frobenius_norm = m.stable_rank = m.log_spectral_norm = m.log_norm = m.alpha_weighted = nan;
    m.spectral_entropy = nan;
    return m;
  }
  const HillFit h = alpha_hill(l, k_frac);
  m.alpha_hill = h.alpha;
  m.k_used = h.k;
  const PowerLawFit pl = power_law_ks(l);
  m.alpha_pl = pl.alpha;
  m.pl_xmin = pl.xmin;
  m.pl_tail = pl.tail;
  m.pl_D = pl.D;
  double sum = 0;
  for (double v : l) sum += v;
  m.lambda_max = l[0];
  m.spectral_norm = std::sqrt(l[0]);
  m.frobenius_norm = std::sqrt(sum);
  m.stable_rank = sum / l[0];
  m.log_spectral_norm = std::log10(l[0]);
  m.log_norm = std::log10(sum);
  m.alpha_weighted = m.alpha_hill * m.log_spectral_norm;
  if (l.size() > 1) {
    double e = 0;
    for (double v : l) {
      const double p = v / sum;
      e -= p * std::log(p);
    }
    m.spectral_entropy = e / std::log(static_cast<double>(l.size()));
  } else {
    m.spectral_entropy = nan;
  }
  return m;
}

}  // namespace qsweep
