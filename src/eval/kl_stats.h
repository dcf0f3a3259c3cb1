// kl_stats.h — the KL-divergence and token-probability statistics llama.cpp's `llama-perplexity
// --kl-divergence` prints, computed with its definitions (examples/perplexity/perplexity.cpp):
// mean ± uncertainty = (Σx/n, sqrt((Σx²/n − mean²)/(n−1)), 0 when n ≤ 10); percentiles of the
// sorted per-token values by linear interpolation at fraction·(n−1), the median as the middle value
// (the mean of the two middle ones for even n); RMS Δp = sqrt(mean Δp²) ± ½·unc(Δp²)/RMS; same top
// p ± sqrt(p(1−p)/(n−1)); ln(PPL(Q)/PPL(base)) = mean NLL_Q − mean NLL_base with uncertainty
// sqrt(u_Q² + u_base² − 2·cov), cov = (Σ NLL_Q·NLL_base/n − mean_Q·mean_base)/(n−1) (0 when n < 10).
// Per-token inputs are exact (fp64 from the fp32 logits), where llama.cpp stores the base model's
// log-probabilities as 16-bit codes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qsweep {

// Per scored token, in window order: KL(base ‖ Q), NLL of the target under Q and under the base
// model, and 1 where both models' most probable token is the same.
struct TokenKl {
  std::vector<double> kl, nll, nll_base, same_top;
};

struct KlStats {
  int64_t n = 0;
  double kl_mean = 0, kl_unc = 0;
  // max, 99.9, 99, 95, 90, median, 10, 5, 1, 0.1, min (kKlPercentileNames)
  std::vector<double> kl_percentiles;
  double same_top = 0, same_top_unc = 0;      // fractions
  double dp_mean = 0, dp_unc = 0;             // mean Δp = p_Q(target) − p_base(target)
  double dp_rms = 0, dp_rms_unc = 0;
  double ln_ppl_ratio = 0, ln_ppl_ratio_unc = 0;
};

extern const char* const kKlPercentileNames[11];  // "max", "99.9%", ..., "min"
extern const double kKlPercentileFractions[11];   // 1, 0.999, ..., 0 (max and min exact)

KlStats kl_statistics(const TokenKl& t);

// The lines `qsweep eval --kl-divergence` prints after its others.
std::vector<std::string> kl_stats_lines(const KlStats& s);

}  // namespace qsweep
