// test_allocate.cc — the exact multiple-choice knapsack: optimal on random small instances
// (against exhaustive search, budgets from tight to loose, ties and dominated candidates
// included), never over budget, and a clear error for a budget below the smallest model.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "quant/allocate.h"

namespace qsweep {
namespace {

std::vector<AllocLayer> random_instance(std::mt19937& rng, int n_layers, int n_cands) {
  std::vector<AllocLayer> layers(n_layers);
  std::uniform_int_distribution<int> size(1, 40);
  std::uniform_real_distribution<double> score(0.0, 10.0);
  for (int l = 0; l < n_layers; ++l) {
    layers[l].name = "layer" + std::to_string(l);
    for (int c = 0; c < n_cands; ++c) {
      AllocCandidate a;
      a.bits = c + 2;
      a.group_size = 64;
      a.size_bits = size(rng) * 8;
      a.score = rng() % 4 == 0 ? std::floor(score(rng)) : score(rng);  // some exact ties
      layers[l].candidates.push_back(a);
    }
  }
  return layers;
}

TEST(Allocate, ExactOnRandomInstancesAgainstBruteForce) {
  std::mt19937 rng(2024);
  int checked = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int n = 1 + trial % 6, c = 1 + (trial / 6) % 5;
    const auto layers = random_instance(rng, n, c);
    int64_t lo = 0, hi = 0;
    for (const auto& l : layers) {
      int64_t mn = INT64_MAX, mx = 0;
      for (const auto& a : l.candidates) mn = std::min(mn, a.size_bits), mx = std::max(mx, a.size_bits);
      lo += mn;
      hi += mx;
    }
    for (int64_t budget : {lo, lo + (hi - lo) / 4, lo + (hi - lo) / 2, hi - 8, hi}) {
      if (budget < lo) continue;
      const AllocResult want = allocate_brute_force(layers, budget);
      const AllocResult got = allocate_exact(layers, budget);
      ASSERT_FALSE(want.choice.empty());
      ASSERT_EQ(got.choice.size(), layers.size());
      int64_t size = 0;
      double score = 0;
      for (size_t l = 0; l < layers.size(); ++l) {
        size += layers[l].candidates[got.choice[l]].size_bits;
        score += layers[l].candidates[got.choice[l]].score;
      }
      EXPECT_EQ(size, got.size_bits);
      EXPECT_NEAR(score, got.score, 1e-9);
      EXPECT_LE(got.size_bits, budget) << "trial " << trial;
      EXPECT_NEAR(got.score, want.score, 1e-9 * std::max(1.0, want.score)) << "trial " << trial << " budget " << budget;
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000);
}

TEST(Allocate, LargeInstanceFinishesAndStaysInBudget) {
  // SmolLM2's shape of problem: 210 layers x 15 candidates.
  std::mt19937 rng(7);
  std::vector<AllocLayer> layers(210);
  for (size_t l = 0; l < layers.size(); ++l) {
    const int64_t params = (l % 7 < 4 ? 576 : 1536) * 576;
    const double sens = std::exp(std::normal_distribution<double>(0, 1.5)(rng));
    for (int bits : {2, 3, 4, 6, 8})
      for (int g : {64, 128, 256}) {
        AllocCandidate a;
        a.bits = bits;
        a.group_size = g;
        a.size_bits = params * bits + params / g * 32;
        a.score = sens * std::pow(4.0, -bits) * (1 + 0.1 * std::log2(g / 64.0));
        layers[l].candidates.push_back(a);
      }
  }
  int64_t w3 = 0;
  for (const auto& l : layers) w3 += l.candidates[4].size_bits;  // 3 bits, group 128
  const AllocResult r = allocate_exact(layers, w3);
  EXPECT_LE(r.size_bits, w3);
  EXPECT_GE(r.size_bits, w3 - w3 / 200);  // within 0.5% of the budget
  double uniform = 0;
  for (const auto& l : layers) uniform += l.candidates[4].score;
  EXPECT_LE(r.score, uniform);
}

TEST(Allocate, BudgetBelowTheSmallestModelIsAnError) {
  std::vector<AllocLayer> layers(2);
  layers[0].name = "a";
  layers[0].candidates = {{2, 64, 100, 1.0}, {4, 64, 200, 0.5}};
  layers[1].name = "b";
  layers[1].candidates = {{2, 64, 50, 1.0}};
  try {
    allocate_exact(layers, 149);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("below the smallest possible model (150 bits"), std::string::npos) << e.what();
  }
  EXPECT_EQ(allocate_exact(layers, 150).choice, (std::vector<int>{0, 0}));
  EXPECT_EQ(allocate_exact(layers, 250).choice, (std::vector<int>{1, 0}));
  layers[1].candidates.clear();
  EXPECT_THROW(allocate_exact(layers, 1000), Error);
}

}  // namespace
}  // namespace qsweep
