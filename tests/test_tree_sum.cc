// test_tree_sum.cc — the pairwise tree sum and the exact Gram: bit-identical totals for any
// partition of the chunks over ranks, bounded memory, agreement with direct sums.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "dist/tree_sum.h"
#include "stats/block_buffers.h"
#include "stats/exact_gram.h"

namespace qsweep {
namespace {

// The canonical tree, written recursively from its definition in tree_sum.h.
std::vector<double> tree_value(const std::vector<std::vector<double>>& leaves, int level, int64_t index) {
  const int64_t n = static_cast<int64_t>(leaves.size());
  if (level == 0) return leaves[static_cast<size_t>(index)];
  std::vector<double> l = tree_value(leaves, level - 1, 2 * index);
  if (((2 * index + 1) << (level - 1)) >= n) return l;
  const std::vector<double> r = tree_value(leaves, level - 1, 2 * index + 1);
  for (size_t i = 0; i < l.size(); ++i) l[i] += r[i];
  return l;
}

std::vector<std::vector<double>> random_leaves(int64_t n, size_t len, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::uniform_int_distribution<int> e(-30, 30);
  std::vector<std::vector<double>> leaves(static_cast<size_t>(n), std::vector<double>(len));
  for (auto& l : leaves)
    for (auto& v : l) v = std::ldexp(u(rng), e(rng));  // wide magnitudes: the order of sums shows
  return leaves;
}

// The total when the leaves are spread over `ranks` as the pipeline spreads chunks (block_range),
// with every rank's pieces merged serially as finish() merges them over MPI.
std::vector<double> partitioned_total(const std::vector<std::vector<double>>& leaves, int ranks,
                                      size_t* max_held) {
  const int64_t n = static_cast<int64_t>(leaves.size());
  const size_t len = leaves.empty() ? 0 : leaves[0].size();
  std::vector<TreeSum::Piece> all;
  for (int r = 0; r < ranks; ++r) {
    int64_t a, b;
    block_range(n, r, ranks, &a, &b);
    TreeSum t(n, a, b, len);
    for (int64_t i = a; i < b; ++i) t.add(leaves[static_cast<size_t>(i)]);
    *max_held = std::max(*max_held, t.max_held());
    std::vector<TreeSum::Piece> mine = t.release(r);
    const std::vector<TreeNode> expect = tree_pieces(n, a, b);
    EXPECT_EQ(mine.size(), expect.size());
    for (size_t k = 0; k < mine.size() && k < expect.size(); ++k) EXPECT_TRUE(mine[k].node == expect[k]);
    for (auto& p : mine) all.push_back(std::move(p));
  }
  return TreeSum::merge_all(std::move(all), n, len, [](TreeSum::Piece&, TreeSum::Piece&) {}).v;
}

TEST(TreeSum, SameBitsForAnyRankCountAndEqualToTheTree) {
  for (int64_t n = 1; n <= 40; ++n) {
    const auto leaves = random_leaves(n, 7, static_cast<unsigned>(n));
    int levels = 0;
    while ((int64_t(1) << levels) < n) ++levels;
    const std::vector<double> want = tree_value(leaves, levels, 0);
    for (int ranks = 1; ranks <= 6; ++ranks) {
      size_t held = 0;
      const std::vector<double> got = partitioned_total(leaves, ranks, &held);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(double)))
          << "n=" << n << " ranks=" << ranks;
      EXPECT_LE(held, static_cast<size_t>(levels) + 1) << "n=" << n;
    }
  }
}

TEST(TreeSum, HeldPiecesGrowLogarithmically) {
  for (int64_t n : {32, 128, 1000}) {
    TreeSum t(n, 0, n, 1);
    for (int64_t i = 0; i < n; ++i) t.add({1.0});
    int levels = 0;
    while ((int64_t(1) << levels) < n) ++levels;
    EXPECT_LE(t.max_held(), static_cast<size_t>(levels) + 1);
    EXPECT_EQ(t.held(), 1u);  // a full range collapses to the root
    EXPECT_EQ(t.finish(Comm::local())[0], static_cast<double>(n));
  }
}

TEST(ExactGram, FixedPointRoundTrip) {
  for (double v : {0.0, 1.0, -1.0, 3.25, -1e-3, 1e15, -4e18, 0x1p-12, 0x1.fffffffffffffp61}) {
    EXPECT_EQ(fixed_to_double(fixed_from_double(v)), v) << v;
  }
  // Below 2^-12 bits fall off the grid of 2^-64 (truncated toward zero).
  EXPECT_LE(std::fabs(fixed_to_double(fixed_from_double(1e-10)) - 1e-10), 0x1p-64);
  EXPECT_EQ(fixed_to_double(fixed_from_double(1e-30)), 0.0);
}

// fixed_to_double's own rounding (the leading 64 bits and a sticky bit through the hardware's
// uint64 → double) against GCC's __floatuntidf, which it replaced: the same double for values of
// every length, both signs, and the ties the sticky bit must break (a half-way pattern under the
// 53 kept bits, with and without one set bit far below the leading 64).
TEST(ExactGram, FixedToDoubleRoundsAsTheCompilersConversion) {
  auto reference = [](unsigned __int128 t) {
    const bool neg = static_cast<__int128>(t) < 0;
    const unsigned __int128 mag = neg ? static_cast<unsigned __int128>(-t) : t;
    const double d = std::ldexp(static_cast<double>(mag), -64);
    return neg ? -d : d;
  };
  std::mt19937_64 rng(17);
  using u128 = unsigned __int128;
  for (int len = 0; len <= 126; ++len)
    for (int k = 0; k < 2000; ++k) {
      u128 v = (static_cast<u128>(rng()) << 64) | rng();
      v = len == 0 ? 0 : v >> (128 - len);
      if (len > 0) v |= static_cast<u128>(1) << (len - 1);  // exactly `len` bits
      if (k % 5 == 1 && len > 54) {  // a tie: the bits under the kept 53 are 100…0
        v &= ~((static_cast<u128>(1) << (len - 53)) - 1);
        v |= static_cast<u128>(1) << (len - 54);
      }
      if (k % 5 == 2 && len > 70) {  // the same tie broken by one bit beyond the leading 64
        v &= ~((static_cast<u128>(1) << (len - 53)) - 1);
        v |= (static_cast<u128>(1) << (len - 54)) | 1;
      }
      const u128 t = k % 2 ? static_cast<u128>(-static_cast<__int128>(v)) : v;
      ASSERT_EQ(fixed_to_double(t), reference(t)) << "length " << len << ", case " << k;
    }
}

TEST(ExactGram, OrderFreeAndAccurate) {
  const int C = 70, rows = 33, chunks = 6;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<size_t>(rows) * chunks * C);
  for (auto& v : x) v = nd(rng);
  for (int r = 0; r < rows * chunks; ++r) x[static_cast<size_t>(r) * C + 3] *= 1000;  // an outlier channel
  auto total = [&](const std::vector<int>& order) {
    ExactGram g(C);
    for (int c : order) g.add(x.data() + static_cast<size_t>(c) * rows * C, rows);
    return g.to_double(g.agree_status(Comm::local()));
  };
  const std::vector<double> a = total({0, 1, 2, 3, 4, 5}), b = total({5, 3, 1, 0, 4, 2});
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(double)));
  // Within a chunk the dgemm rounds; the bound is relative to √(G_ii G_jj) ≥ Σ_r |x_ri x_rj|.
  for (int i = 0; i < C; ++i)
    for (int j = 0; j < C; ++j) {
      const double scale = std::sqrt(a[static_cast<size_t>(i) * C + i] * a[static_cast<size_t>(j) * C + j]);
      long double s = 0;
      for (int r = 0; r < rows * chunks; ++r)
        s += static_cast<long double>(x[static_cast<size_t>(r) * C + i]) * x[static_cast<size_t>(r) * C + j];
      const double d = static_cast<double>(s);
      EXPECT_NEAR(a[static_cast<size_t>(i) * C + j], d, 1e-14 * scale) << i << "," << j;
    }
}

// Block after block with the totals' arrays reused (stats/block_buffers.h): a reused array is
// overwritten everywhere, so each block's total is the same bits as with a fresh array, whatever
// the previous block left there (NaN poison here); and it is the same memory.
TEST(ExactGram, ReusedBuffersGiveTheSameBits) {
  const int C = 70, rows = 33;  // 70: a partial second 64-column tile
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  BlockBuffers buffers;
  const double* first_total = nullptr;
  for (int blk = 0; blk < 3; ++blk) {
    std::vector<float> x(static_cast<size_t>(rows) * C);
    for (auto& v : x) v = nd(rng) * (blk == 0 ? 1e4f : 1.0f);
    ExactGram fresh(C), pooled(C, &buffers);
    fresh.add(x.data(), rows);
    pooled.add(x.data(), rows);
    const std::vector<double> a = fresh.to_double(fresh.agree_status(Comm::local()));
    std::vector<double> b = pooled.to_double(pooled.agree_status(Comm::local()));
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(double))) << "block " << blk;
    if (blk == 0) first_total = b.data();
    if (blk == 1) EXPECT_EQ(b.data(), first_total) << "the total's array was not reused";
    std::fill(b.begin(), b.end(), std::nan(""));  // what a finished block leaves behind
    buffers.give(std::move(b));
  }
  EXPECT_EQ(buffers.held(), 1u);  // the last block's total, for the next
}

TEST(ExactGram, ReportsNonFiniteAndOutOfRange) {
  const int C = 3;
  std::vector<float> x = {1, 2, 3, 4, 5, std::nanf("")};
  ExactGram g(C);
  g.add(x.data(), 2);
  const int status = g.agree_status(Comm::local());
  EXPECT_EQ(status, 1);
  EXPECT_TRUE(std::isnan(g.to_double(status)[0]));
  std::vector<float> big = {3e9f, 1, 1};  // (3e9)² = 9e18 ≥ 2^62
  ExactGram h(C);
  h.add(big.data(), 1);
  EXPECT_EQ(h.agree_status(Comm::local()), 2);
}

}  // namespace
}  // namespace qsweep
