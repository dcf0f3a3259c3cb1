// test_fisher.cc — the fisher sensitivity score (train/fisher.h) on small synthetic models of the
// llama and minicpm families: each window's weight gradient, chained from the head through every
// later block, equals a central finite difference of the window's mean NLL computed by an
// independent float64 composition of the forward passes (embedding, block_forward<double>,
// head_loss_forward<double>); and the scores equal ½·T/n·Σ_w Σ g_w² (W − Q(W))² recomputed from
// those gradients, with Q each candidate's dequantized weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "dist/comm.h"
#include "model/forward.h"
#include "model/llama_weights.h"
#include "model/synthetic_model.h"
#include "quant/grid.h"
#include "test_util.h"
#include "train/block_grad.h"
#include "train/fisher.h"

namespace qsweep {
namespace {

// Mean next-token NLL of one window in float64, block `pb`'s params replaced by `pmod`.
double window_nll(const LlamaWeights& m, const std::vector<int32_t>& tok, int pb, const BlockParams<double>& pmod) {
  const ModelConfig& cfg = m.config();
  const int ctx = static_cast<int>(tok.size()), H = cfg.hidden_size;
  std::vector<float> xf(static_cast<size_t>(ctx) * H);
  m.embed(tok.data(), ctx, xf.data());
  std::vector<double> x(xf.begin(), xf.end());
  BlockTape<double> tape;
  for (int b = 0; b < cfg.num_hidden_layers; ++b) {
    if (b == pb) {
      block_forward(cfg, pmod, x.data(), 1, ctx, tape);
    } else {
      const BlockParams<double> p = block_params_cast<double>(block_params_from<float>(*m.load_block(b)));
      block_forward(cfg, p, x.data(), 1, ctx, tape);
    }
  }
  const HeadWeights h = HeadWeights::load(m);
  const std::vector<double> norm(h.norm.begin(), h.norm.end()), lm(h.lm_head.begin(), h.lm_head.end());
  std::vector<int64_t> rows(static_cast<size_t>(ctx) - 1);
  std::iota(rows.begin(), rows.end(), 0);
  HeadTape<double> ht;
  return head_loss_forward(cfg, norm.data(), lm.data(), x.data(), rows.data(), tok.data() + 1, ctx - 1, ht);
}

class Fisher : public ::testing::TestWithParam<std::string> {};

TEST_P(Fisher, GradientsMatchFiniteDifferencesAndScoresRecompute) {
  const std::string dir = test::scratch_dir("fisher-" + GetParam());
  SyntheticModelSpec s;
  s.model_type = GetParam();
  s.hidden = 32, s.intermediate = 64, s.layers = 3, s.heads = 4, s.kv_heads = 2, s.vocab = 96;
  s.dtype = DType::F32;
  s.seed = 7;
  write_synthetic_model(dir, s);
  LlamaWeights m(dir);
  const ModelConfig& cfg = m.config();
  const int n = 3, ctx = 9;
  std::mt19937 rng(3);
  std::vector<int32_t> windows(static_cast<size_t>(n) * ctx);
  for (int32_t& t : windows) t = static_cast<int32_t>(rng() % 96);
  const Comm comm = Comm::local();
  FisherProbe f(m, windows, n, ctx, comm, int64_t(1) << 30, false);
  EXPECT_TRUE(std::isfinite(f.loss()));

  // Gradients against float64 central differences on a sample of weights of two layers.
  double worst = 0;
  for (const auto& [block, lin] : std::vector<std::pair<int, Linear>>{{0, Linear::Q}, {1, Linear::Down}, {2, Linear::V}}) {
    const BlockParams<double> p = block_params_cast<double>(block_params_from<float>(*m.load_block(block)));
    const LinearRows lr = linear_rows(cfg, lin);
    for (int w = 0; w < n; ++w) {
      const std::vector<int32_t> tok(windows.begin() + w * ctx, windows.begin() + (w + 1) * ctx);
      const std::vector<float> g = f.window_gradient(block, lin, w);
      ASSERT_EQ(g.size(), static_cast<size_t>(lr.out) * lr.in);
      double num = 0, den = 0;
      for (int k = 0; k < 24; ++k) {
        const size_t e = rng() % g.size();
        const size_t at = static_cast<size_t>(lr.row0) * lr.in + e;
        const double h = 1e-5;
        BlockParams<double> pp = p, pm = p;
        pp.matrix(lin)[at] += h;
        pm.matrix(lin)[at] -= h;
        const double fd = (window_nll(m, tok, block, pp) - window_nll(m, tok, block, pm)) / (2 * h);
        num += (g[e] - fd) * (g[e] - fd);
        den += fd * fd;
      }
      ASSERT_GT(den, 0);
      worst = std::max(worst, std::sqrt(num / den));
    }
  }
  EXPECT_LE(worst, 1e-4) << "worst relative error of a window's gradient";
  std::printf("fisher %s: worst relative gradient error %.3g\n", GetParam().c_str(), worst);

  // Scores: recomputed from the gradients and each candidate's (W − Q)².
  const int block = 1;
  const std::unique_ptr<BlockWeights> bw = m.load_block(block);
  const Linear order[] = {Linear::Q, Linear::K, Linear::V, Linear::O, Linear::Gate, Linear::Up, Linear::Down};
  std::vector<std::vector<QuantizedLinear>> cands(7);
  const std::vector<GridSpec> palette = {GridSpec{2, 16}, GridSpec{4, 32}};
  for (int k = 0; k < 7; ++k)
    for (const GridSpec& g : palette)
      cands[k].push_back(quantize_rtn(bw->linear(order[k]), bw->out_features(order[k]), bw->in_features(order[k]), g));
  std::vector<const std::vector<QuantizedLinear>*> pq;
  for (auto& c : cands) pq.push_back(&c);
  const std::vector<double> sc = f.block_scores(block, pq);
  ASSERT_EQ(sc.size(), 7u * palette.size());
  for (int k = 0; k < 7; ++k)
    for (size_t c = 0; c < palette.size(); ++c) {
      const std::vector<float> deq = cands[k][c].dequantize();
      const float* W = bw->linear(order[k]);
      double want = 0;
      for (int w = 0; w < n; ++w) {
        const std::vector<float> g = f.window_gradient(block, order[k], w);
        for (size_t e = 0; e < g.size(); ++e) want += double(g[e]) * g[e] * (double(W[e]) - deq[e]) * (double(W[e]) - deq[e]);
      }
      want *= 0.5 * (ctx - 1) / n;
      EXPECT_NEAR(sc[k * palette.size() + c] / want, 1.0, 1e-6) << "linear " << k << " candidate " << c;
      if (c > 0) EXPECT_LT(sc[k * palette.size() + c], sc[k * palette.size()]) << "4 bits score below 2 bits, linear " << k;
    }
}

INSTANTIATE_TEST_SUITE_P(Families, Fisher, ::testing::Values("llama", "minicpm", "qwen3"));

}  // namespace
}  // namespace qsweep
