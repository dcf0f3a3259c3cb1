// test_refine.cc — the greedy rounding refinements (quant/refine.h) against independent
// recomputations: each only lowers its objective (per row and group for greedy, per row for
// greedy-exact), moves only between floor(u) and floor(u)+1, stops where no single move helps,
// and masks the top share of |x̄|; a GPTQ-style code that is neither candidate moves to the nearer.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <random>

#include "core/error.h"
#include "quant/grid.h"
#include "quant/refine.h"

namespace qsweep {
namespace {

struct Case {
  int out = 6, in = 96;
  GridSpec g;
  std::vector<float> w;
  std::vector<double> xbar, gram;
};

Case make_case(uint64_t seed, int bits, int group) {
  Case c;
  c.g.bits = bits;
  c.g.group_size = group;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  c.w.resize(static_cast<size_t>(c.out) * c.in);
  for (float& v : c.w) v = nd(rng);
  const int T = 200;
  std::vector<double> x(static_cast<size_t>(T) * c.in);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < c.in; ++j) x[static_cast<size_t>(t) * c.in + j] = 0.3 + (j % 7 == 0 ? 4.0 : 1.0) * nd(rng);  // a few loud channels
  c.xbar.assign(static_cast<size_t>(c.in), 0.0);
  c.gram.assign(static_cast<size_t>(c.in) * c.in, 0.0);
  for (int t = 0; t < T; ++t)
    for (int a = 0; a < c.in; ++a) {
      c.xbar[static_cast<size_t>(a)] += x[static_cast<size_t>(t) * c.in + a] / T;
      for (int b = 0; b < c.in; ++b) c.gram[static_cast<size_t>(a) * c.in + b] += x[static_cast<size_t>(t) * c.in + a] * x[static_cast<size_t>(t) * c.in + b];
    }
  return c;
}

double group_error(const Case& c, const QuantizedLinear& q, const std::vector<double>& xm, int r, int grp) {
  const int gl = q.grid.group_len(q.in), G = q.grid.groups(q.in);
  double e = 0;
  for (int j = grp * gl; j < std::min(q.in, (grp + 1) * gl); ++j) {
    const size_t gi = static_cast<size_t>(r) * G + grp;
    const double what = (q.codes[static_cast<size_t>(r) * q.in + j] - q.zeros[gi]) * static_cast<double>(q.scales[gi]);
    e += xm[static_cast<size_t>(j)] * (c.w[static_cast<size_t>(r) * q.in + j] - what);
  }
  return e;
}

double row_error(const Case& c, const QuantizedLinear& q, int r) {
  const int G = q.grid.groups(q.in), gl = q.grid.group_len(q.in);
  std::vector<double> d(static_cast<size_t>(q.in));
  for (int j = 0; j < q.in; ++j) {
    const size_t gi = static_cast<size_t>(r) * G + j / gl;
    d[static_cast<size_t>(j)] = c.w[static_cast<size_t>(r) * q.in + j] - (q.codes[static_cast<size_t>(r) * q.in + j] - q.zeros[gi]) * static_cast<double>(q.scales[gi]);
  }
  double f = 0;
  for (int a = 0; a < q.in; ++a)
    for (int b = 0; b < q.in; ++b) f += d[static_cast<size_t>(a)] * c.gram[static_cast<size_t>(a) * q.in + b] * d[static_cast<size_t>(b)];
  return f;
}

// Every code is floor(u) or floor(u)+1 (clamped) of its unrounded code.
void expect_neighbours(const Case& c, const QuantizedLinear& q) {
  const int G = q.grid.groups(q.in), gl = q.grid.group_len(q.in), qmax = (1 << q.grid.bits) - 1;
  for (int r = 0; r < q.out; ++r)
    for (int j = 0; j < q.in; ++j) {
      const size_t gi = static_cast<size_t>(r) * G + j / gl;
      const double u = c.w[static_cast<size_t>(r) * q.in + j] / q.scales[gi] + q.zeros[gi];
      const int lo = static_cast<int>(std::clamp(std::floor(u), 0.0, double(qmax)));
      const int hi = static_cast<int>(std::clamp(std::floor(u) + 1, 0.0, double(qmax)));
      const int code = q.codes[static_cast<size_t>(r) * q.in + j];
      EXPECT_TRUE(code == lo || code == hi) << "row " << r << " col " << j << ": code " << code << ", u " << u;
    }
}

TEST(Refine, GreedyLowersEveryGroupsMeanOutputError) {
  for (int bits : {2, 3, 4})
    for (int group : {32, 64}) {
      const Case c = make_case(7 + bits * 10 + group, bits, group);
      const QuantizedLinear base = quantize_rtn(c.w.data(), c.out, c.in, c.g);
      QuantizedLinear q = base;
      const RefineResult rr = refine_greedy(q, c.w.data(), c.xbar, 0.05);
      const std::vector<double> xm = mask_outliers(c.xbar, 0.05);
      double before = 0, after = 0;
      for (int r = 0; r < c.out; ++r)
        for (int grp = 0; grp < c.g.groups(c.in); ++grp) {
          const double b = std::fabs(group_error(c, base, xm, r, grp)), a = std::fabs(group_error(c, q, xm, r, grp));
          EXPECT_LE(a, b + 1e-12) << "bits " << bits << " group " << group << " row " << r << " group " << grp;
          before += b;
          after += a;
        }
      EXPECT_NEAR(rr.before, before, 1e-9 * (1 + before));
      EXPECT_NEAR(rr.after, after, 1e-9 * (1 + after));
      EXPECT_GT(rr.moves, 0);
      EXPECT_LT(after, 0.5 * before) << "greedy should cut the summed |e| on random weights";
      expect_neighbours(c, q);
      EXPECT_EQ(q.scales, base.scales);
      EXPECT_EQ(q.zeros, base.zeros);
    }
}

TEST(Refine, GreedyExactLowersEveryRowsOutputErrorToALocalMinimum) {
  for (int bits : {2, 3, 4}) {
    const Case c = make_case(100 + bits, bits, 32);
    const QuantizedLinear base = quantize_rtn(c.w.data(), c.out, c.in, c.g);
    QuantizedLinear q = base;
    const RefineResult rr = refine_greedy_exact(q, c.w.data(), c.gram);
    double before = 0, after = 0;
    for (int r = 0; r < c.out; ++r) {
      const double b = row_error(c, base, r), a = row_error(c, q, r);
      EXPECT_LE(a, b * (1 + 1e-12)) << "bits " << bits << " row " << r;
      before += b;
      after += a;
    }
    EXPECT_NEAR(rr.after / after, 1.0, 1e-8);
    EXPECT_NEAR(rr.before / before, 1.0, 1e-12);
    EXPECT_LT(after, before);
    expect_neighbours(c, q);
    // No single move lowers a row's error any more.
    const int G = c.g.groups(c.in), gl = c.g.group_len(c.in), qmax = (1 << bits) - 1;
    for (int r = 0; r < c.out; ++r) {
      const double f = row_error(c, q, r);
      for (int j = 0; j < c.in; ++j) {
        QuantizedLinear t = q;
        const size_t gi = static_cast<size_t>(r) * G + j / gl;
        const double u = c.w[static_cast<size_t>(r) * c.in + j] / q.scales[gi] + q.zeros[gi];
        uint8_t& code = t.codes[static_cast<size_t>(r) * c.in + j];
        const int lo = static_cast<int>(std::clamp(std::floor(u), 0.0, double(qmax))), hi = std::min(lo + 1, qmax);
        code = static_cast<uint8_t>(code == lo ? hi : lo);
        EXPECT_GE(row_error(c, t, r), f * (1 - 1e-9)) << "row " << r << " col " << j;
      }
    }
  }
}

TEST(Refine, DampedGreedyExactLowersTheExactErrorTooAndHugeDampingKeepsNearestRounding) {
  for (int bits : {2, 3, 4}) {
    const Case c = make_case(200 + bits, bits, 32);
    const QuantizedLinear base = quantize_rtn(c.w.data(), c.out, c.in, c.g);
    QuantizedLinear q0 = base, q1 = base, qh = base;
    const RefineResult r0 = refine_greedy_exact(q0, c.w.data(), c.gram, 0.0);
    const RefineResult r1 = refine_greedy_exact(q1, c.w.data(), c.gram, 1.0);
    const RefineResult rh = refine_greedy_exact(qh, c.w.data(), c.gram, 1e9);
    EXPECT_GT(r0.moves, r1.moves) << "damping leaves fewer moves worth making";
    EXPECT_GT(r1.moves, 0);
    EXPECT_LE(r1.after, r1.before);
    EXPECT_EQ(rh.moves, 0);
    EXPECT_EQ(qh.codes, base.codes);
    expect_neighbours(c, q1);
    // The damped objective, recomputed: dᵀGd + μ Σ G_jj d_j² summed over rows.
    double damped = 0;
    const int G = q1.grid.groups(q1.in), gl = q1.grid.group_len(q1.in);
    for (int r = 0; r < c.out; ++r) {
      const double exact1 = row_error(c, q1, r);
      EXPECT_LE(exact1, row_error(c, base, r) * (1 + 1e-12)) << "bits " << bits << " row " << r;
      double diag = 0;
      for (int j = 0; j < c.in; ++j) {
        const size_t gi = static_cast<size_t>(r) * G + j / gl;
        const double d = c.w[static_cast<size_t>(r) * c.in + j] - (q1.codes[static_cast<size_t>(r) * c.in + j] - q1.zeros[gi]) * static_cast<double>(q1.scales[gi]);
        diag += c.gram[static_cast<size_t>(j) * c.in + j] * d * d;
      }
      damped += exact1 + diag;
    }
    EXPECT_NEAR(r1.after / damped, 1.0, 1e-8);
  }
}

TEST(Refine, MasksTheLoudestChannelsAndMovesStrayCodesToTheNearerCandidate) {
  std::vector<double> x = {1, -9, 2, 8, 0.5, 3, -4, 0.1, 5, 6};
  const std::vector<double> m = mask_outliers(x, 0.2);  // 2 of 10: -9 and 8
  EXPECT_EQ(m[1], 0);
  EXPECT_EQ(m[3], 0);
  EXPECT_EQ(m[0], 1);
  EXPECT_EQ(mask_outliers(x, 0.05), x);  // floor(0.5) = 0 channels
  // One row, one group: a code far from its weight (as GPTQ may leave) moves to a neighbour.
  QuantizedLinear q;
  q.out = 1;
  q.in = 4;
  q.grid.bits = 4;
  q.grid.group_size = 4;
  q.scales = {1.0f};
  q.zeros = {8};
  q.codes = {8 + 1, 8 + 5, 8 - 1, 8};  // w/s + z = 9.2, 10.4, 6.7, 8.1: code 13 is neither 10 nor 11
  const float w[4] = {1.2f, 2.4f, -1.3f, 0.1f};
  const RefineResult rr = refine_greedy_exact(q, w, {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
  EXPECT_EQ(q.codes[1], 10);  // the nearer of 10 and 11 to 10.4
  EXPECT_LT(rr.after, rr.before);
  EXPECT_THROW(parse_refine("greedier"), Error);
}

}  // namespace
}  // namespace qsweep
