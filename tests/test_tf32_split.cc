// test_tf32_split.cc — the arithmetic of --compute-dtype tf32x3 (qsweep/cuda/tf32_split.h), on
// the CPU: the kernels use these same functions, so their rounding and the error bound of the
// split products are checked in CI without a GPU (the GEMMs themselves: test_cuda_forward.cc).
#include "qsweep/cuda/tf32_split.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace qsweep::cuda {
namespace {

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

TEST(Tf32Split, RoundsToNearestEvenWithTenMantissaBits) {
  EXPECT_EQ(tf32_round(1.0f), 1.0f);
  const float ulp = std::ldexp(1.0f, -10);  // TF32's spacing at 1
  EXPECT_EQ(tf32_round(1.0f + ulp), 1.0f + ulp);
  EXPECT_EQ(tf32_round(1.0f + ulp / 2), 1.0f);                    // tie → even (1.0)
  EXPECT_EQ(tf32_round(1.0f + 3 * ulp / 2), 1.0f + 2 * ulp);      // tie → even (1 + 2 ulp)
  EXPECT_EQ(tf32_round(1.0f + ulp / 2 + ulp / 8), 1.0f + ulp);    // above the tie → up
  EXPECT_EQ(tf32_round(-(1.0f + ulp / 2 + ulp / 8)), -(1.0f + ulp));
  EXPECT_EQ(tf32_round(0.0f), 0.0f);
  EXPECT_TRUE(std::isinf(tf32_round(std::numeric_limits<float>::infinity())));
  EXPECT_TRUE(std::isnan(tf32_round(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isinf(tf32_round(std::numeric_limits<float>::max())));  // rounds past the largest TF32
  const Tf32Pair p = tf32_split(std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isinf(p.big));
  EXPECT_EQ(p.small, 0.0f);
}

// Both parts are TF32 numbers (low 13 bits zero), big is the nearest TF32 number to x, and
// big + small is within 2⁻²²·|x| of x, over magnitudes 1e-30 to 1e30 (where the residual is
// subnormal, TF32 keeps a fixed absolute spacing instead; weights and activations never live there).
TEST(Tf32Split, PartsAreTf32AndRepresentXToTwoToTheMinus22) {
  std::mt19937 rng(12);
  std::uniform_real_distribution<double> mant(0.5, 1.0);
  std::bernoulli_distribution neg(0.5);
  std::uniform_int_distribution<int> expo(-100, 100);
  double worst = 0;
  for (int i = 0; i < 200000; ++i) {
    const float x = static_cast<float>(std::ldexp(neg(rng) ? -mant(rng) : mant(rng), expo(rng)));
    const Tf32Pair p = tf32_split(x);
    ASSERT_EQ(bits(p.big) & 0x1fffu, 0u) << x;
    ASSERT_EQ(bits(p.small) & 0x1fffu, 0u) << x;
    const double err = std::fabs(static_cast<double>(p.big) + p.small - x);
    ASSERT_LE(std::fabs(static_cast<double>(p.big) - x), std::ldexp(std::fabs(x), -10)) << x;
    if (x != 0.0f) worst = std::max(worst, err / std::fabs(x));
  }
  EXPECT_LE(worst, std::ldexp(1.0, -22));
  EXPECT_GT(worst, 0.0);  // the split is not exact in general: 21 bits of 24
}

// The dot product the two GEMMs compute (big·big + big·small + small·big, exact products summed
// in float64 here) is within a few 2⁻²¹ of the exact one relative to Σ|x·w|, for K = 2048, as
// fp32's own rounding of the products and sums is; one TF32 product alone is ~2⁻¹¹ off.
TEST(Tf32Split, ThreeProductsGiveFp32ClassDotProducts) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  const int K = 2048;
  double worst3 = 0, worst1 = 0;
  for (int t = 0; t < 50; ++t) {
    std::vector<float> x(K), w(K);
    for (int k = 0; k < K; ++k) x[k] = g(rng) * (k % 97 == 0 ? 50.0f : 1.0f), w[k] = 0.02f * g(rng);
    double exact = 0, abs_sum = 0, three = 0, one = 0;
    for (int k = 0; k < K; ++k) {
      const Tf32Pair a = tf32_split(x[k]), b = tf32_split(w[k]);
      exact += static_cast<double>(x[k]) * w[k];
      abs_sum += std::fabs(static_cast<double>(x[k]) * w[k]);
      three += static_cast<double>(a.big) * b.big + static_cast<double>(a.big) * b.small +
               static_cast<double>(a.small) * b.big;
      one += static_cast<double>(a.big) * b.big;
    }
    worst3 = std::max(worst3, std::fabs(three - exact) / abs_sum);
    worst1 = std::max(worst1, std::fabs(one - exact) / abs_sum);
  }
  EXPECT_LE(worst3, std::ldexp(1.0, -21));
  EXPECT_GT(worst1, std::ldexp(1.0, -16));  // a single TF32 product is far coarser
}

}  // namespace
}  // namespace qsweep::cuda
