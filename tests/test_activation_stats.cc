// test_activation_stats.cc — calibration statistics against direct computation: per-channel
// Σx², Σ|x|, max|x|, moments and excess kurtosis, sparsity against each sequence's RMS, the Gram
// matrix, attention entropy bounds, and thread-count independence of the sums.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>

#include "core/threads.h"
#include "stats/activation_stats.h"

namespace qsweep {
namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.hidden_size = 8; c.intermediate_size = 12; c.num_attention_heads = 2; c.num_key_value_heads = 2;
  c.head_dim = 4; c.num_hidden_layers = 1; c.vocab_size = 10;
  return c;
}

TEST(ActivationStats, MatchDirectComputation) {
  const ModelConfig c = tiny_config();
  const int seq = 40, n_seq = 3, C = c.hidden_size;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<size_t>(seq) * n_seq * C);
  for (auto& v : x) v = nd(rng);
  for (int r = 0; r < seq * n_seq; ++r) x[r * C + 2] *= 10;  // an outlier channel
  for (int r = 0; r < seq; ++r) x[r * C + 5] = 0.0f;        // zeros in sequence 0
  BlockCalibStats st(c, seq, 0.01, true);
  st.begin_chunk();
  const Linear mods[3] = {Linear::Q, Linear::K, Linear::V};
  st.on_linear_input(LinearInput{0, mods, 3, x.data(), seq * n_seq, C});
  st.reduce(Comm::local());
  const InputStats& s = st.input(BlockInput::Qkv);
  double s1 = 0, s2 = 0, s4 = 0, below = 0;
  for (int q = 0; q < n_seq; ++q) {
    double ss = 0;
    for (int r = q * seq; r < (q + 1) * seq; ++r)
      for (int k = 0; k < C; ++k) ss += double(x[r * C + k]) * x[r * C + k];
    const double cut = 0.01 * std::sqrt(ss / (seq * C));
    for (int r = q * seq; r < (q + 1) * seq; ++r)
      for (int k = 0; k < C; ++k) below += std::fabs(x[r * C + k]) < cut;
  }
  for (int k = 0; k < C; ++k) {
    double sq = 0, ab = 0, mx = 0;
    for (int r = 0; r < seq * n_seq; ++r) {
      const double v = x[r * C + k];
      sq += v * v; ab += std::fabs(v); mx = std::max(mx, std::fabs(v));
      s1 += v; s2 += v * v; s4 += v * v * v * v;
    }
    EXPECT_NEAR(s.sum_sq[k], sq, 1e-9 * sq);
    EXPECT_NEAR(s.sum_abs[k], ab, 1e-9 * ab);
    EXPECT_EQ(s.max_abs[k], mx);
  }
  EXPECT_EQ(s.tokens, seq * n_seq);
  EXPECT_NEAR(s.s1, s1, 1e-9 * std::fabs(s2));
  EXPECT_NEAR(s.s4, s4, 1e-9 * s4);
  EXPECT_EQ(s.n_below, below);
  EXPECT_GE(s.n_below, seq);  // the zeroed channel of sequence 0
  EXPECT_GT(s.excess_kurtosis(), 3.0);  // a 10x channel makes the mixture heavy-tailed
  // Gram = Σ x xᵀ.
  for (int a = 0; a < C; ++a)
    for (int b = 0; b < C; ++b) {
      double g = 0;
      for (int r = 0; r < seq * n_seq; ++r) g += double(x[r * C + a]) * x[r * C + b];
      EXPECT_NEAR(s.gram[a * C + b], g, 1e-9 * (1 + std::fabs(g)));
    }
}

TEST(ActivationStats, NormalSampleHasZeroExcessKurtosis) {
  const ModelConfig c = tiny_config();
  const int seq = 4000, C = c.hidden_size;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.5f, 2.0f);
  std::vector<float> x(static_cast<size_t>(seq) * C);
  for (auto& v : x) v = nd(rng);
  BlockCalibStats st(c, seq, 0.01, false);
  st.begin_chunk();
  const Linear mods[1] = {Linear::O};
  st.on_linear_input(LinearInput{0, mods, 1, x.data(), seq, C});
  st.reduce(Comm::local());
  const InputStats& s = st.input(BlockInput::O);
  EXPECT_NEAR(s.mean(), 0.5, 0.05);
  EXPECT_NEAR(s.std(), 2.0, 0.05);
  EXPECT_NEAR(s.excess_kurtosis(), 0.0, 0.15);
  EXPECT_TRUE(s.gram.empty());
}

TEST(ActivationStats, SumsDoNotDependOnThreads) {
  const ModelConfig c = tiny_config();
  const int seq = 100, C = c.intermediate_size;
  std::mt19937 rng(6);
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<size_t>(seq) * 3 * C);
  for (auto& v : x) v = nd(rng);
  auto run = [&](int threads) {
    set_num_threads(threads);
    BlockCalibStats st(c, seq, 0.01, true);
    st.begin_chunk();
    const Linear mods[1] = {Linear::Down};
    st.on_linear_input(LinearInput{0, mods, 1, x.data(), 3 * seq, C});
    st.reduce(Comm::local());
    const InputStats& s = st.input(BlockInput::Down);
    std::vector<double> all = s.sum_sq;
    all.insert(all.end(), s.gram.begin(), s.gram.end());
    all.push_back(s.s4);
    all.push_back(s.n_below);
    return all;
  };
  const auto one = run(1), two = run(2), three = run(3);
  set_num_threads(default_num_threads(1));
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, three);
}

}  // namespace
}  // namespace qsweep
