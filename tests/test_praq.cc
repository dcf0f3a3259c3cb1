// test_praq.cc — Robust-PRAQ's importance (stats/praq.h) against a direct float64 evaluation of
// its formula, the "loud silence" cases it exists for (a channel loud only where the gate is closed
// loses importance; one feeding an open gate keeps it), and noise draws that depend on the chunk
// and draw only (the same chunk twice gives the same sums; another chunk other ones).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "stats/praq.h"

namespace qsweep {
namespace {

struct Data {
  int H = 12, I = 20;
  int64_t T = 37;
  std::vector<float> wg, wu, x;
};

Data make(uint64_t seed) {
  Data d;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  d.wg.resize(static_cast<size_t>(d.I) * d.H);
  d.wu.resize(d.wg.size());
  d.x.resize(static_cast<size_t>(d.T) * d.H);
  for (float& v : d.wg) v = nd(rng);
  for (float& v : d.wu) v = nd(rng);
  for (float& v : d.x) v = nd(rng);
  return d;
}

std::vector<double> direct(const Data& d) {  // the formula in praq.h, float64, no noise
  std::vector<double> acc(static_cast<size_t>(d.H), 0.0);
  for (int64_t t = 0; t < d.T; ++t) {
    std::vector<double> g(static_cast<size_t>(d.I)), u(g.size());
    for (int i = 0; i < d.I; ++i)
      for (int j = 0; j < d.H; ++j) {
        g[i] += static_cast<double>(d.wg[i * d.H + j]) * d.x[t * d.H + j];
        u[i] += static_cast<double>(d.wu[i * d.H + j]) * d.x[t * d.H + j];
      }
    for (int j = 0; j < d.H; ++j) {
      double num = 0, den = 0;
      for (int i = 0; i < d.I; ++i) {
        const double s = 1 / (1 + std::exp(-g[i])), silu = g[i] * s, ds = s * (1 + g[i] * (1 - s));
        const double a = d.wg[i * d.H + j], b = d.wu[i * d.H + j];
        num += a * a * ds * ds * u[i] * u[i] + b * b * silu * silu;
        den += a * a + b * b;
      }
      acc[j] += static_cast<double>(d.x[t * d.H + j]) * d.x[t * d.H + j] * num / den;
    }
  }
  return acc;
}

PraqSpec spec(const Data& d, double noise, int samples) {
  PraqSpec s;
  s.w_gate = d.wg.data();
  s.w_up = d.wu.data();
  s.inter = d.I;
  s.hidden = d.H;
  s.noise_std = noise;
  s.samples = samples;
  return s;
}

TEST(Praq, MatchesTheFormulaInFloat64) {
  const Data d = make(3);
  PraqAccumulator p(spec(d, 0, 3));
  std::vector<double> acc(static_cast<size_t>(d.H), 0.0);
  p.add(d.x.data(), d.T, 0, acc.data());
  const std::vector<double> ref = direct(d);
  for (int j = 0; j < d.H; ++j) EXPECT_NEAR(acc[j] / ref[j], 1.0, 1e-4) << "channel " << j;
}

TEST(Praq, LoudSilence) {
  // Channel 0 is loud only on tokens where every gate is strongly closed; channel 1 is quiet but
  // feeds open gates. Same RMS-style magnitude would favour channel 0; PRAQ must favour channel 1.
  Data d = make(5);
  d.H = 2;
  d.I = 4;
  d.T = 40;
  d.wg.assign(static_cast<size_t>(d.I) * d.H, 0.f);
  d.wu.assign(d.wg.size(), 1.f);
  for (int i = 0; i < d.I; ++i) {
    d.wg[i * d.H + 0] = -4.f;  // channel 0 drives the gates far negative (SiLU ≈ 0, SiLU' ≈ 0)
    d.wg[i * d.H + 1] = 0.5f;  // channel 1 keeps them near the steep part
  }
  d.x.assign(static_cast<size_t>(d.T) * d.H, 0.f);
  for (int64_t t = 0; t < d.T; ++t) {
    d.x[t * d.H + 0] = t % 10 == 0 ? 6.f : 0.f;  // rarely, very loud
    d.x[t * d.H + 1] = 0.8f;
  }
  PraqAccumulator p(spec(d, 0, 1));
  std::vector<double> acc(2, 0.0);
  p.add(d.x.data(), d.T, 0, acc.data());
  double l2_0 = 0, l2_1 = 0;
  for (int64_t t = 0; t < d.T; ++t) l2_0 += d.x[t * d.H] * d.x[t * d.H], l2_1 += d.x[t * d.H + 1] * d.x[t * d.H + 1];
  EXPECT_GT(l2_0, l2_1);      // AWQ's L2 salience ranks the loud channel first
  EXPECT_LT(acc[0], acc[1]);  // PRAQ ranks the one feeding open gates first
}

TEST(Praq, NoiseDrawsDependOnChunkAndDrawOnly) {
  const Data d = make(9);
  PraqAccumulator p(spec(d, 0.1, 3));
  std::vector<double> a(static_cast<size_t>(d.H), 0.0), b = a, c = a, clean = a;
  p.add(d.x.data(), d.T, 4, a.data());
  p.add(d.x.data(), d.T, 4, b.data());
  p.add(d.x.data(), d.T, 5, c.data());
  PraqAccumulator(spec(d, 0, 3)).add(d.x.data(), d.T, 4, clean.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (int j = 0; j < d.H; ++j) EXPECT_NEAR(a[j] / clean[j], 1.0, 0.2);  // small noise, small change
  EXPECT_NE(a, clean);
}

}  // namespace
}  // namespace qsweep
