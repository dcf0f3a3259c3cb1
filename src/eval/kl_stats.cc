// kl_stats.cc — llama.cpp's KL-divergence statistics (see kl_stats.h).
#include "eval/kl_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace qsweep {

const char* const kKlPercentileNames[11] = {"max", "99.9%", "99.0%", "95.0%", "90.0%", "median",
                                            "10.0%", "5.0%", "1.0%", "0.1%", "min"};
const double kKlPercentileFractions[11] = {1, 0.999, 0.99, 0.95, 0.9, 0.5, 0.1, 0.05, 0.01, 0.001, 0};

namespace {
struct MeanUnc {
  double mean, unc;
};
MeanUnc mean_and_uncertainty(double sum, double sum2, int64_t n) {
  if (n < 1) return {0, 0};
  const double f = sum / n;
  double df = sum2 / n - f * f;
  df = df > 0 && n > 10 ? std::sqrt(df / (n - 1)) : 0;
  return {f, df};
}
double percentile(const std::vector<double>& sorted, double fraction) {
  if (fraction <= 0) return sorted.front();
  if (fraction >= 1) return sorted.back();
  double p = fraction * static_cast<double>(sorted.size() - 1);
  const size_t ip = static_cast<size_t>(p);
  p -= static_cast<double>(ip);
  return (1 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
}
double median(const std::vector<double>& s) {
  const size_t n = s.size();
  return n % 2 == 0 ? 0.5 * (s[n / 2] + s[n / 2 - 1]) : s[n / 2];
}
}  // namespace

KlStats kl_statistics(const TokenKl& t) {
  const size_t n = t.kl.size();
  QS_ASSERT(t.nll.size() == n && t.nll_base.size() == n && t.same_top.size() == n, "kl_statistics: sizes");
  KlStats s;
  s.n = static_cast<int64_t>(n);
  if (n == 0) return s;
  double skl = 0, skl2 = 0, sq = 0, sq2 = 0, sb = 0, sb2 = 0, sqb = 0, sdp = 0, sdp2 = 0, sdp4 = 0, same = 0;
  for (size_t i = 0; i < n; ++i) {  // in token order: the sums do not depend on the rank count
    skl += t.kl[i];
    skl2 += t.kl[i] * t.kl[i];
    sq += t.nll[i];
    sq2 += t.nll[i] * t.nll[i];
    sb += t.nll_base[i];
    sb2 += t.nll_base[i] * t.nll_base[i];
    sqb += t.nll[i] * t.nll_base[i];
    const double dp = std::exp(-t.nll[i]) - std::exp(-t.nll_base[i]);
    sdp += dp;
    sdp2 += dp * dp;
    sdp4 += dp * dp * dp * dp;
    same += t.same_top[i];
  }
  const int64_t c = s.n;
  const MeanUnc kl = mean_and_uncertainty(skl, skl2, c);
  s.kl_mean = kl.mean;
  s.kl_unc = kl.unc;
  std::vector<double> sorted = t.kl;
  std::sort(sorted.begin(), sorted.end());
  for (int k = 0; k < 11; ++k)
    s.kl_percentiles.push_back(k == 5 ? median(sorted) : percentile(sorted, kKlPercentileFractions[k]));
  s.same_top = same / c;
  s.same_top_unc = c > 1 ? std::sqrt(s.same_top * (1 - s.same_top) / (c - 1)) : 0;
  const MeanUnc dp = mean_and_uncertainty(sdp, sdp2, c);
  s.dp_mean = dp.mean;
  s.dp_unc = dp.unc;
  const MeanUnc mse = mean_and_uncertainty(sdp2, sdp4, c);
  s.dp_rms = std::sqrt(mse.mean);
  s.dp_rms_unc = s.dp_rms > 0 ? 0.5 / s.dp_rms * mse.unc : 0;
  const MeanUnc lq = mean_and_uncertainty(sq, sq2, c), lb = mean_and_uncertainty(sb, sb2, c);
  const double cov = c < 10 ? 0 : (sqb / c - (sq / c) * (sb / c)) / (c - 1);
  s.ln_ppl_ratio = lq.mean - lb.mean;
  const double v = lq.unc * lq.unc + lb.unc * lb.unc - 2 * cov;
  s.ln_ppl_ratio_unc = v > 0 ? std::sqrt(v) : 0;
  return s;
}

std::vector<std::string> kl_stats_lines(const KlStats& s) {
  std::vector<std::string> out;
  char buf[256];
  auto add = [&](const char* fmt, auto... v) {
    std::snprintf(buf, sizeof buf, fmt, v...);
    out.emplace_back(buf);
  };
  add("kl statistics: %lld tokens (llama-perplexity --kl-divergence's definitions)", static_cast<long long>(s.n));
  add("kld mean: %.9f ± %.9f", s.kl_mean, s.kl_unc);
  for (int k = 0; k < 11; ++k) add("kld %s: %.9f", kKlPercentileNames[k], s.kl_percentiles[k]);
  add("same top p: %.6f ± %.6f %%", 100 * s.same_top, 100 * s.same_top_unc);
  add("mean delta p: %.6f ± %.6f %%", 100 * s.dp_mean, 100 * s.dp_unc);
  add("rms delta p: %.6f ± %.6f %%", 100 * s.dp_rms, 100 * s.dp_rms_unc);
  add("ln(ppl(q)/ppl(base)): %.9f ± %.9f", s.ln_ppl_ratio, s.ln_ppl_ratio_unc);
  return out;
}

}  // namespace qsweep
