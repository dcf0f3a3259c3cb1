// test_gemm_tiles.cc — ops/gemm.h: tiles come from the GEMM's shape alone (gemm_tile's rule),
// and its results are the same bits for 1, 2 and 3 threads at shapes that take each tile size;
// they also agree with a float64 product to float rounding.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/forward.h"
#include "ops/gemm.h"

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

// The op as the backward passes use it: every transpose pair, float and double, against a
// float64 product, and the same bits for 1 and 3 threads.
template <typename T>
void check_transposes(double tol) {
  std::mt19937 rng(11);
  std::normal_distribution<double> nd(0.0, 1.0);
  const int saved = omp_get_max_threads();
  const int64_t M = 1100, N = 700, K = 37;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      // op(A) is M × K, op(B) is K × N; stored row-major as given.
      const int64_t lda = ta ? M : K, ldb = tb ? K : N;
      std::vector<T> A(M * K), B(K * N), C0(M * N);
      for (T& v : A) v = static_cast<T>(nd(rng));
      for (T& v : B) v = static_cast<T>(nd(rng));
      for (T& v : C0) v = static_cast<T>(nd(rng));
      auto a = [&](int64_t i, int64_t k) { return double(ta ? A[k * lda + i] : A[i * lda + k]); };
      auto b = [&](int64_t k, int64_t j) { return double(tb ? B[j * ldb + k] : B[k * ldb + j]); };
      std::vector<T> ref;
      for (int threads : {1, 3}) {
        omp_set_num_threads(threads);
        std::vector<T> C = C0;
        gemm_tiled<T>(ta, tb, M, N, K, T(0.5), A.data(), lda, B.data(), ldb, T(2), C.data(), N);
        if (ref.empty()) {
          ref = C;
          for (int64_t i = 0; i < M; i += 53)
            for (int64_t j = 0; j < N; j += 29) {
              double d = 2.0 * double(C0[i * N + j]);
              for (int64_t k = 0; k < K; ++k) d += 0.5 * a(i, k) * b(k, j);
              ASSERT_NEAR(double(C[i * N + j]), d, tol * (1 + std::fabs(d))) << ta << tb << " " << i << "," << j;
            }
        } else {
          ASSERT_EQ(C, ref) << "transposes " << ta << tb;
        }
      }
    }
  omp_set_num_threads(saved);
}

TEST(GemmTiles, EveryTransposeFloatAndDouble) {
  check_transposes<float>(1e-4);
  check_transposes<double>(1e-12);
}

TEST(GemmTiles, EmptyInnerDimensionGivesBetaTimesC) {
  std::vector<float> C = {1.0f, std::nanf(""), 3.0f, 4.0f};
  gemm_tiled<float>(false, true, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 1, 0.0f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{0, 0, 0, 0}));
  std::vector<double> D = {1, 2, 3, 4};
  gemm_tiled<double>(false, false, 2, 2, 0, 1.0, nullptr, 1, nullptr, 2, 3.0, D.data(), 2);
  EXPECT_EQ(D, (std::vector<double>{3, 6, 9, 12}));
}

}  // namespace
}  // namespace qsweep
