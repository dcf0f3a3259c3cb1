// spectral_metrics.h — heavy-tail metrics of an eigenvalue spectrum (as in WeightWatcher):
//  - Alpha-Hill: k = max(1, min(n-1, floor(k_frac n))), α = 1 + k / Σ_{i<=k} ln(λ_i / λ_{k+1});
//  - the power-law fit WeightWatcher reports (pl_ks): every eigenvalue but the largest is a
//    candidate x_min; the tail {λ >= x_min} (m values) gets the closed-form MLE
//    α = 1 + m / Σ ln(λ/x_min) and the Kolmogorov-Smirnov distance D between its empirical CDF
//    (powerlaw's convention: i/m at the i-th smallest, 0-based) and 1 − (λ/x_min)^(1−α); the
//    x_min with the least D wins;
//  - norms and shape: λ_max, spectral and Frobenius norms, stable rank, log norms, α-weighted,
//    normalised spectral entropy.
// Input: eigenvalues sorted descending; only λ > 0 are used (n = their count).
#pragma once
#include <cstdint>
#include <vector>

namespace qsweep {

struct HillFit {
  double alpha;
  int k;
};
struct PowerLawFit {
  double alpha, xmin, D;
  int64_t tail;  // m
};

HillFit alpha_hill(const std::vector<double>& desc_pos, double k_frac);
PowerLawFit power_law_ks(const std::vector<double>& desc_pos);

struct SpectralMetrics {
  int64_t n_eigs = 0;
  int k_used = 0;
  double alpha_hill = 0, alpha_pl = 0, pl_xmin = 0, pl_D = 0;
  int64_t pl_tail = 0;
  double lambda_max = 0, spectral_norm = 0, frobenius_norm = 0, stable_rank = 0;
  double log_spectral_norm = 0, log_norm = 0, alpha_weighted = 0, spectral_entropy = 0;
};

// All metrics of a spectrum (descending, may hold zeros/negatives, which are dropped).
SpectralMetrics spectral_metrics(const std::vector<double>& eig_desc, double k_frac);

}  // namespace qsweep
