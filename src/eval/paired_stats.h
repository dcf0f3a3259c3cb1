// paired_stats.h — the statistics of a paired comparison of two models on the same windows:
// Student's t quantiles (a 95% interval of a mean difference) and the exact two-sided sign test.
// Written from the definitions (regularised incomplete beta by its continued fraction, binomial
// tail by log-gamma sums); tests/e2e/compare.sh checks them against SciPy.
#pragma once
#include <cstdint>
#include <vector>

namespace qsweep {

// P(T <= t) for Student's t with df degrees of freedom.
double student_t_cdf(double t, double df);
// The q-quantile (0 < q < 1) of Student's t with df degrees of freedom.
double student_t_quantile(double q, double df);
// Two-sided exact sign test: n non-zero differences of which k are positive; p = min(1, 2·P(X ≤
// min(k, n−k))), X ~ Binomial(n, 1/2). 1 when n = 0.
double sign_test_p(int64_t k, int64_t n);

struct MeanInterval {
  double mean = 0, lo = 0, hi = 0;  // mean and its two-sided 95% Student-t interval
  int64_t n = 0;
};
// The mean of d with its 95% interval (n ≥ 2; with n = 1 the interval is the whole line).
MeanInterval mean_t_interval(const std::vector<double>& d);

}  // namespace qsweep
