// test_gemm_tiles.cc — gemm_xwt's tiles come from the GEMM's shape alone (the rule in forward.h),
// and its results are the same bits for 1, 2 and 3 threads at shapes that take each tile size;
// they also agree with a float64 product to float rounding.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/forward.h"

namespace qsweep {
namespace {

TEST(GemmTiles, LargestTileThatLeavesEightTiles) {
  struct Case {
    int64_t M, N, tm, tn;
  } cases[] = {
      {4096, 960, 512, 1024},    // SmolLM2 q/k/v at 16 windows of 256: 8 × 1
      {4096, 3072, 512, 1024},   // gate/up
      {341, 49152, 512, 1024},   // a head slice: 1 × 48
      {3072, 960, 256, 1024},    // 6 × 1 at 512 rows is too few: 12 × 1
      {1024, 960, 256, 512},     // 2 and 4 tiles at the larger ones: 4 × 2
      {1024, 3072, 256, 1024},   // 4 × 3
      {100, 100, 128, 512},      // tiny: the smallest tile
  };
  for (const Case& c : cases) {
    const GemmTile t = gemm_tile(c.M, c.N);
    EXPECT_EQ(t.m, c.tm) << c.M << " x " << c.N;
    EXPECT_EQ(t.n, c.tn) << c.M << " x " << c.N;
  }
}

TEST(GemmTiles, SameBitsForAnyThreadCount) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int saved = omp_get_max_threads();
  struct Shape {
    int64_t M;
    int N, K;
  } shapes[] = {{4096, 960, 64}, {3072, 600, 48}, {1000, 1100, 33}, {77, 1500, 40}};
  for (const Shape& s : shapes) {
    std::vector<float> x(s.M * s.K), w(static_cast<size_t>(s.N) * s.K), y0(s.M * s.N, 0.5f);
    for (float& v : x) v = nd(rng);
    for (float& v : w) v = nd(rng);
    std::vector<float> ref;
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      std::vector<float> y = y0;
      gemm_xwt(x.data(), w.data(), y.data(), s.M, s.N, s.K, 1.0f, s.N);
      if (ref.empty()) {
        ref = y;
        for (int64_t i = 0; i < s.M; i += 97)
          for (int j = 0; j < s.N; j += 31) {
            double d = 0.5;
            for (int k = 0; k < s.K; ++k) d += double(x[i * s.K + k]) * w[static_cast<size_t>(j) * s.K + k];
            ASSERT_NEAR(y[i * s.N + j], d, 1e-4 * (1 + std::fabs(d)));
          }
      } else {
        ASSERT_EQ(y, ref) << s.M << " x " << s.N << " x " << s.K << ", " << threads << " threads";
      }
    }
  }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace qsweep
