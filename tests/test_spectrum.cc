// test_spectrum.cc — the weight-spectrum analysis: Hill and power-law estimators on Pareto
// samples with a known exponent, Gram eigenvalues against a matrix with a known SVD, precision
// rounding and overflow, the regex layer filter, the LPT plan, summary statistics as pandas
// computes them, the CSV schema and row order, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "core/error.h"
#include "io/spectrum_output.h"
#include "model/safetensors_writer.h"
#include "model/synthetic_model.h"
#include "stats/gram_eigen.h"
#include "stats/spectral_metrics.h"
#include "stats/spectrum.h"
#include "test_util.h"

namespace qsweep {
namespace {

// Pareto samples with density p(x) ∝ x^-alpha (x >= 1), sorted descending.
std::vector<double> pareto(double alpha, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> v(n);
  for (auto& x : v) x = std::pow(1.0 - u(rng), -1.0 / (alpha - 1.0));
  std::sort(v.rbegin(), v.rend());
  return v;
}

TEST(SpectrumEstimators, HillRecoversParetoExponent) {
  for (double alpha : {2.0, 3.0, 4.5}) {
    const auto v = pareto(alpha, 200000, 11);
    const HillFit h = alpha_hill(v, 0.1);
    EXPECT_EQ(h.k, 20000);
    // Standard error of Hill's (alpha-1) is (alpha-1)/sqrt(k) ≈ 0.7% here; allow 4 sigma.
    EXPECT_NEAR(h.alpha, alpha, 4 * (alpha - 1) / std::sqrt(20000.0)) << "alpha " << alpha;
  }
}

TEST(SpectrumEstimators, HillFormulaByHand) {
  // λ = 8, 4, 2, 1; k_frac 0.5 -> k = 2; α = 1 + 2 / (ln(8/2) + ln(4/2)) = 1 + 2 / ln 8.
  const HillFit h = alpha_hill({8, 4, 2, 1}, 0.5);
  EXPECT_EQ(h.k, 2);
  EXPECT_DOUBLE_EQ(h.alpha, 1.0 + 2.0 / std::log(8.0));
  // k is clamped to [1, n-1].
  EXPECT_EQ(alpha_hill({8, 4, 2, 1}, 0.01).k, 1);
  EXPECT_EQ(alpha_hill({8, 4, 2, 1}, 0.99).k, 3);
}

TEST(SpectrumEstimators, PowerLawFitRecoversExponentAboveXmin) {
  // Pareto tail glued onto a uniform bulk: the KS scan must put x_min at or above the junction
  // (1.0; any x_min inside a pure power-law region is a valid answer, so KS may pick a larger
  // one) and recover the tail's exponent.
  auto tail = pareto(2.5, 3000, 5);
  std::mt19937_64 rng(6);
  std::uniform_real_distribution<double> u(0.05, 0.95);
  for (int i = 0; i < 1500; ++i) tail.push_back(u(rng));
  std::sort(tail.rbegin(), tail.rend());
  const PowerLawFit f = power_law_ks(tail);
  EXPECT_NEAR(f.alpha, 2.5, 0.15);
  EXPECT_GT(f.xmin, 0.9);
  EXPECT_LT(f.xmin, 3.0);
  EXPECT_LT(f.D, 0.05);
  EXPECT_GE(f.tail, 500);
}

TEST(SpectrumEstimators, PowerLawKsByHand) {
  // Three values 4, 2, 1. Candidate x_min = 2: tail {4, 2}, m = 2, α = 1 + 2/ln 2,
  // ascending tail (2, 4), empirical CDF (0, 1/2), model CDF (0, 1 - 2^(1-α)).
  // Candidate x_min = 1: tail {4, 2, 1}, α = 1 + 3/(ln 4 + ln 2).
  const double a2 = 1 + 2 / std::log(2.0), a1 = 1 + 3 / std::log(8.0);
  const double d2 = std::fabs(1 - std::pow(2.0, 1 - a2) - 0.5);
  const double d1 = std::max(std::fabs(1 - std::pow(2.0, 1 - a1) - 1.0 / 3),
                             std::fabs(1 - std::pow(4.0, 1 - a1) - 2.0 / 3));
  const PowerLawFit f = power_law_ks({4, 2, 1});
  EXPECT_DOUBLE_EQ(f.D, std::min(d1, d2));
  EXPECT_DOUBLE_EQ(f.alpha, d2 < d1 ? a2 : a1);
  EXPECT_EQ(f.tail, d2 < d1 ? 2 : 3);
}

// Orthogonal n x n matrix as a product of Householder reflections of random vectors.
std::vector<double> random_orthogonal(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;
  std::vector<double> q(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) q[i * n + i] = 1.0;
  for (int r = 0; r < 3; ++r) {
    std::vector<double> v(n);
    double norm = 0;
    for (auto& x : v) { x = nd(rng); norm += x * x; }
    for (auto& x : v) x /= std::sqrt(norm);
    // q = (I - 2vvᵀ) q
    for (int c = 0; c < n; ++c) {
      double dot = 0;
      for (int i = 0; i < n; ++i) dot += v[i] * q[i * n + c];
      for (int i = 0; i < n; ++i) q[i * n + c] -= 2 * v[i] * dot;
    }
  }
  return q;
}

void check_known_svd(int out, int in) {
  const int r = std::min(out, in);
  const auto U = random_orthogonal(out, 1), V = random_orthogonal(in, 2);
  std::vector<double> s(r);
  for (int i = 0; i < r; ++i) s[i] = 3.0 / (1 + i);  // distinct, descending
  std::vector<float> w(static_cast<size_t>(out) * in);
  std::vector<double> wd(w.size(), 0.0);
  for (int i = 0; i < out; ++i)
    for (int j = 0; j < in; ++j) {
      double acc = 0;
      for (int k = 0; k < r; ++k) acc += U[i * out + k] * s[k] * V[j * in + k];
      w[i * in + j] = static_cast<float>(acc);
      wd[i * in + j] = static_cast<float>(acc);
    }
  const auto eig = gram_eigenvalues(w.data(), out, in);
  ASSERT_EQ(static_cast<int>(eig.size()), r);
  // float storage perturbs W by ~1e-7 relative, so eigenvalues agree to ~1e-6.
  for (int k = 0; k < r; ++k) EXPECT_NEAR(eig[k], s[k] * s[k], 1e-5 * s[0] * s[0]) << k;
}

TEST(SpectrumGram, EigenvaluesAreSquaredSingularValuesTall) { check_known_svd(40, 24); }
TEST(SpectrumGram, EigenvaluesAreSquaredSingularValuesWide) { check_known_svd(20, 56); }
TEST(SpectrumGram, RankDeficientHasZeroEigenvaluesDropped) {
  std::vector<float> w(30 * 10, 0.0f);
  for (int i = 0; i < 30; ++i) w[i * 10 + 3] = 1.0f;  // rank 1: one column of ones
  const auto eig = gram_eigenvalues(w.data(), 30, 10);
  const SpectralMetrics m = spectral_metrics(eig, 0.1);
  EXPECT_EQ(m.n_eigs, 1);
  EXPECT_NEAR(m.lambda_max, 30.0, 1e-9);
  EXPECT_TRUE(std::isnan(m.alpha_hill));
}

TEST(SpectrumMetrics, NormsByHand) {
  const SpectralMetrics m = spectral_metrics({4.0, 1.0, 0.0, -1e-18}, 0.5);
  EXPECT_EQ(m.n_eigs, 2);
  EXPECT_DOUBLE_EQ(m.lambda_max, 4.0);
  EXPECT_DOUBLE_EQ(m.spectral_norm, 2.0);
  EXPECT_DOUBLE_EQ(m.frobenius_norm, std::sqrt(5.0));
  EXPECT_DOUBLE_EQ(m.stable_rank, 5.0 / 4.0);
  EXPECT_DOUBLE_EQ(m.log_spectral_norm, std::log10(4.0));
  EXPECT_DOUBLE_EQ(m.log_norm, std::log10(5.0));
  EXPECT_DOUBLE_EQ(m.alpha_hill, 1 + 1 / std::log(4.0));
  EXPECT_DOUBLE_EQ(m.alpha_weighted, m.alpha_hill * std::log10(4.0));
  const double p1 = 0.8, p2 = 0.2;
  EXPECT_NEAR(m.spectral_entropy, -(p1 * std::log(p1) + p2 * std::log(p2)) / std::log(2.0), 1e-15);
}

TEST(SpectrumPrecision, RoundingAndOverflowCount) {
  std::vector<float> w = {1.0f, 65504.0f, 65520.0f, -70000.0f, 1.0f + 1.0f / 1024, 3.0e38f};
  auto f16 = w;
  EXPECT_EQ(round_to_precision(f16.data(), 6, Precision::FP16), 3);  // 65520, -70000, 3e38
  EXPECT_EQ(f16[1], 65504.0f);
  EXPECT_TRUE(std::isinf(f16[2]));
  EXPECT_EQ(f16[4], 1.0f + 1.0f / 1024);  // representable in fp16
  auto bf = w;
  EXPECT_EQ(round_to_precision(bf.data(), 6, Precision::BF16), 0);
  EXPECT_EQ(bf[4], 1.0f);  // 1 + 2^-10 rounds to 1 in bf16 (8 mantissa bits)
  auto f32 = w;
  EXPECT_EQ(round_to_precision(f32.data(), 6, Precision::FP32), 0);
  EXPECT_EQ(f32, w);
}

TEST(SpectrumPrecision, ParseList) {
  EXPECT_EQ(parse_precisions("fp64, bf16").size(), 2u);
  EXPECT_THROW(parse_precisions("fp64,fp8"), Error);
  EXPECT_THROW(parse_precisions("fp32,fp32"), Error);
  EXPECT_THROW(parse_precisions(""), Error);
}

TEST(SpectrumPlan, LongestJobFirst) {
  // costs 10, 7, 6, 5, 3 over 2 ranks: 10->0, 7->1, 6->1 (7<10), 5->0 (10<13), 3->1 (13<15? no: 15 vs 13)
  const auto owner = lpt_assign({5, 10, 3, 7, 6}, 2);
  EXPECT_EQ(owner, (std::vector<int>{0, 0, 1, 1, 1}));
  EXPECT_EQ(lpt_assign({1, 2, 3}, 1), (std::vector<int>{0, 0, 0}));
}

TEST(SpectrumSummary, MatchesPandasDescribe) {
  // pandas: Series([1, 2, 3, 4, 10]).describe(): mean 4, std 3.5355339059327378,
  // 25% 2, 50% 3, 75% 4; NaN ignored.
  const Summary s = summarize({10, 2, std::nan(""), 1, 4, 3});
  EXPECT_EQ(s.count, 5);
  EXPECT_DOUBLE_EQ(s.mean, 4.0);
  EXPECT_NEAR(s.std, 3.5355339059327378, 1e-15);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 10);
  EXPECT_EQ(s.q25, 2);
  EXPECT_EQ(s.median, 3);
  EXPECT_EQ(s.q75, 4);
  const Summary t = summarize({1, 2});  // interpolation: 25% = 1.25, 75% = 1.75
  EXPECT_DOUBLE_EQ(t.q25, 1.25);
  EXPECT_DOUBLE_EQ(t.q75, 1.75);
}

class SpectrumModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir("spectrum-model");
    SyntheticModelSpec s;
    s.hidden = 64;
    s.intermediate = 96;
    s.layers = 3;
    s.heads = 4;
    s.kv_heads = 2;
    s.vocab = 128;
    s.dtype = DType::F32;
    write_synthetic_model(dir_, s);
  }
  std::string dir_;
};

TEST_F(SpectrumModel, RegexFilterSearchesModuleNames) {
  LlamaWeights m(dir_);
  auto names = [&](const std::string& f) {
    std::vector<std::string> n;
    for (const auto& l : spectrum_layers(m, f)) n.push_back(l.name);
    return n;
  };
  EXPECT_EQ(names("").size(), 3u * 7 + 1);
  EXPECT_EQ(names(".*layers\\.[0-1]\\..*").size(), 14u);
  const auto qk = names(".*(q_proj|k_proj).*");
  ASSERT_EQ(qk.size(), 6u);
  EXPECT_EQ(qk[0], "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(qk[1], "model.layers.0.self_attn.k_proj");
  EXPECT_EQ(names("lm_head"), (std::vector<std::string>{"lm_head"}));
  EXPECT_EQ(names("down").size(), 3u);  // search, not full match
  EXPECT_THROW(names("no_such_layer"), Error);
  EXPECT_THROW(names("([unclosed"), Error);
}

TEST_F(SpectrumModel, CsvSchemaAndModelOrder) {
  LlamaWeights m(dir_);
  SpectrumOptions opt;
  opt.precisions = {Precision::FP32, Precision::BF16};
  opt.progress = false;
  const auto layers = run_spectrum(m, opt, Comm::local());
  const std::string csv = dir_ + "/t.csv";
  write_spectrum_csv(csv, layers, opt.precisions);
  std::ifstream in(csv);
  std::string header;
  std::getline(in, header);
  std::string want = "layer_name,category,out_features,in_features,numel";
  for (const char* p : {"fp32", "bf16"})
    for (const char* c : {"alpha_", "k_used_", "n_eigs_", "method_"}) want += std::string(",") + c + p;
  for (const char* p : {"fp32", "bf16"})
    for (const char* c : {"alpha_pl_", "pl_xmin_", "pl_tail_", "pl_D_"}) want += std::string(",") + c + p;
  for (const char* p : {"fp32", "bf16"})
    for (const char* c : {"lambda_max_", "spectral_norm_", "frobenius_norm_", "stable_rank_",
                          "log_spectral_norm_", "log_norm_", "alpha_weighted_", "spectral_entropy_",
                          "overflow_", "alpha_delta_", "alpha_delta_pct_"})
      want += std::string(",") + c + p;
  EXPECT_EQ(header, want);
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(line.substr(0, line.find(',')));
  ASSERT_EQ(rows.size(), 22u);
  EXPECT_EQ(rows[0], "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(rows[6], "model.layers.0.mlp.down_proj");
  EXPECT_EQ(rows[7], "model.layers.1.self_attn.q_proj");
  EXPECT_EQ(rows[21], "lm_head");
  // fp32 is the reference precision: its delta is exactly zero.
  for (const auto& l : layers) EXPECT_EQ(l.per_precision[0].alpha_delta, 0.0);
  // 17 significant digits: the CSV's alpha round-trips the double.
  std::ifstream again(csv);
  std::getline(again, header);
  std::string first;
  std::getline(again, first);
  const std::string cell = first.substr(first.find("attn_q,64,64,4096,") + 18);
  EXPECT_EQ(std::stod(cell.substr(0, cell.find(','))), layers[0].per_precision[0].m.alpha_hill);
}

TEST_F(SpectrumModel, OverflowIsReportedNotAnalysed) {
  // A weight of 1e5 overflows fp16: that layer's fp16 metrics are NaN with method overflow.
  const std::string d = test::scratch_dir("overflow-model");
  SyntheticModelSpec s;
  s.hidden = 32; s.intermediate = 48; s.layers = 1; s.heads = 2; s.kv_heads = 1; s.vocab = 64;
  s.dtype = DType::F32;
  write_synthetic_model(d, s);
  {
    // Patch one value of q_proj in place (F32): find its offset through the parsed header.
    SafetensorsFile f(d + "/model.safetensors");
    const TensorInfo* t = f.find("model.layers.0.self_attn.q_proj.weight");
    const size_t off = static_cast<size_t>(f.data(*t) - f.data(*f.find("model.embed_tokens.weight"))) +
                       static_cast<size_t>(f.find("model.embed_tokens.weight")->begin);
    std::ifstream hdr(d + "/model.safetensors", std::ios::binary);
    uint64_t hlen = 0;
    hdr.read(reinterpret_cast<char*>(&hlen), 8);
    std::fstream io(d + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(8 + hlen + off));
    const float big = 1e5f;
    io.write(reinterpret_cast<const char*>(&big), 4);
  }
  LlamaWeights m(d);
  SpectrumOptions opt;
  opt.precisions = {Precision::FP64, Precision::FP16, Precision::BF16};
  opt.filter = "q_proj";
  opt.progress = false;
  const auto layers = run_spectrum(m, opt, Comm::local());
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].per_precision[0].method, "hill");
  EXPECT_EQ(layers[0].per_precision[1].method, "overflow");
  EXPECT_EQ(layers[0].per_precision[1].overflow, 1);
  EXPECT_TRUE(std::isnan(layers[0].per_precision[1].m.alpha_hill));
  EXPECT_TRUE(std::isnan(layers[0].per_precision[1].m.lambda_max));
  EXPECT_EQ(layers[0].per_precision[2].method, "hill");
  EXPECT_EQ(layers[0].per_precision[2].m.lambda_max > 1e9, true);  // the outlier dominates λ_max
}

TEST_F(SpectrumModel, BadOptions) {
  LlamaWeights m(dir_);
  SpectrumOptions opt;
  opt.precisions = {Precision::FP32};
  opt.progress = false;
  opt.k_frac = 0.0;
  EXPECT_THROW(run_spectrum(m, opt, Comm::local()), Error);
  opt.k_frac = 1.0;
  EXPECT_THROW(run_spectrum(m, opt, Comm::local()), Error);
  opt.k_frac = 0.1;
  opt.filter = "nothing_matches_this";
  EXPECT_THROW(run_spectrum(m, opt, Comm::local()), Error);
}

}  // namespace
}  // namespace qsweep
