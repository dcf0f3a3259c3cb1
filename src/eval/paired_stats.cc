// paired_stats.cc — Student's t and the sign test for paired comparisons (see paired_stats.h).
#include "eval/paired_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qsweep {

namespace {
// Continued fraction of the regularised incomplete beta function (modified Lentz).
double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a - 1 + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1 + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-15) break;
  }
  return h;
}

// I_x(a, b).
double inc_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double lbt = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return std::exp(lbt) * beta_cf(a, b, x) / a;
  return 1 - std::exp(lbt) * beta_cf(b, a, 1 - x) / b;
}
}  // namespace

double student_t_cdf(double t, double df) {
  const double x = df / (df + t * t);
  const double tail = 0.5 * inc_beta(df / 2, 0.5, x);  // P(T > |t|)
  return t >= 0 ? 1 - tail : tail;
}

double student_t_quantile(double q, double df) {
  if (q == 0.5) return 0;
  double lo = -1, hi = 1;
  while (student_t_cdf(lo, df) > q) lo *= 2;
  while (student_t_cdf(hi, df) < q) hi *= 2;
  for (int i = 0; i < 200 && hi - lo > 1e-14 * std::max(1.0, std::fabs(hi)); ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, df) < q ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double sign_test_p(int64_t k, int64_t n) {
  if (n <= 0) return 1;
  const int64_t m = std::min(k, n - k);
  // P(X <= m) = Σ_{i<=m} C(n, i) / 2^n, summed in log space from the largest term down.
  std::vector<double> logs;
  for (int64_t i = 0; i <= m; ++i)
    logs.push_back(std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0) - n * std::log(2.0));
  const double top = *std::max_element(logs.begin(), logs.end());
  double s = 0;
  for (double l : logs) s += std::exp(l - top);
  return std::min(1.0, 2 * std::exp(top) * s);
}

MeanInterval mean_t_interval(const std::vector<double>& d) {
  MeanInterval r;
  r.n = static_cast<int64_t>(d.size());
  if (d.empty()) return r;
  double s = 0;
  for (double x : d) s += x;
  r.mean = s / r.n;
  if (r.n < 2) {
    r.lo = -std::numeric_limits<double>::infinity();
    r.hi = std::numeric_limits<double>::infinity();
    return r;
  }
  double ss = 0;
  for (double x : d) ss += (x - r.mean) * (x - r.mean);
  const double se = std::sqrt(ss / (r.n - 1) / r.n);
  const double t = student_t_quantile(0.975, static_cast<double>(r.n - 1));
  r.lo = r.mean - t * se;
  r.hi = r.mean + t * se;
  return r;
}

}  // namespace qsweep
