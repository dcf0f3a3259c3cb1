// test_block_ap.cc — Block-AP's training of one block (train/block_ap.h): the AdamW step against a
// hand computation, the cosine schedule's end points, training that lowers the block's MSE against
// the full-precision targets (2-bit quantizers on every linear of a synthetic llama block), the
// same bits on a rerun, early stopping, and stored codes whose dequantized weights are exactly the
// fake-quantized weights trained.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "dist/comm.h"
#include "model/llama_weights.h"
#include "model/synthetic_model.h"
#include "test_util.h"
#include "train/block_ap.h"

namespace qsweep {
namespace {

TEST(BlockAp, AdamStepMatchesHandComputation) {
  AdamState st;
  std::vector<float> p = {1.0f, -2.0f};
  const std::vector<double> g1 = {0.5, -1.0}, g2 = {-0.25, 2.0};
  st.step(p.data(), g1.data(), 2, 0.1, 1);
  // Step 1: m̂ = g, v̂ = g², update = lr·g/(|g| + ε) ≈ lr·sign(g).
  EXPECT_NEAR(p[0], 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-6);
  EXPECT_NEAR(p[1], -2.0 + 0.1 * 1.0 / (1.0 + 1e-8), 1e-6);
  const double m0 = 0.9 * (0.1 * 0.5) + 0.1 * -0.25, v0 = 0.999 * (0.001 * 0.25) + 0.001 * 0.0625;
  const double want0 = p[0] - 0.1 * (m0 / (1 - 0.81)) / (std::sqrt(v0 / (1 - 0.998001)) + 1e-8);
  st.step(p.data(), g2.data(), 2, 0.1, 2);
  EXPECT_NEAR(p[0], want0, 1e-6);
}

TEST(BlockAp, CosineScheduleRunsFromLrToATwentieth) {
  EXPECT_DOUBLE_EQ(cosine_lr(1e-4, 0, 10), 1e-4);
  EXPECT_NEAR(cosine_lr(1e-4, 10, 10), 5e-6, 1e-18);
  EXPECT_NEAR(cosine_lr(1e-4, 5, 10), (1e-4 + 5e-6) / 2, 1e-18);
  EXPECT_GT(cosine_lr(1e-4, 3, 10), cosine_lr(1e-4, 4, 10));
}

struct BlockCase {
  ModelConfig cfg;
  BlockParams<float> fp, q;
  std::vector<float> x_q, y_fp;
  int n = 6, ctx = 8;
};

BlockCase make_setup() {
  const std::string dir = test::scratch_dir("block-ap");
  SyntheticModelSpec s;
  s.hidden = 32, s.intermediate = 64, s.layers = 1, s.heads = 4, s.kv_heads = 2, s.vocab = 64;
  s.dtype = DType::F32;
  s.seed = 11;
  write_synthetic_model(dir, s);
  LlamaWeights m(dir);
  BlockCase u;
  u.cfg = m.config();
  u.fp = block_params_from<float>(*m.load_block(0));
  const size_t per = static_cast<size_t>(u.ctx) * u.cfg.hidden_size;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x_fp(per * u.n);
  for (float& v : x_fp) v = nd(rng);
  u.y_fp = x_fp;
  BlockTape<float> tape;
  for (int w = 0; w < u.n; ++w) block_forward(u.cfg, u.fp, u.y_fp.data() + w * per, 1, u.ctx, tape);
  u.x_q = x_fp;
  for (float& v : u.x_q) v += 0.05f * nd(rng);  // the quantized model's inputs differ a little
  u.q = u.fp;
  for (int l = 0; l < kNumLinear; ++l) init_linear_quant_minmax(u.cfg, u.q, static_cast<Linear>(l), 2, 16);
  return u;
}

TEST(BlockAp, TrainingLowersTheBlockErrorDeterministically) {
  BlockCase u = make_setup();
  BlockApOptions o;
  o.epochs = 6, o.train_batch = 2, o.val_windows = 1, o.weight_lr = 2e-3, o.quant_lr = 2e-3, o.seed = 3;
  const Comm comm = Comm::local();
  const BlockApData d{u.x_q, u.y_fp, 0, u.n, u.n, u.ctx};
  const double before = block_mse(u.cfg, u.q, d, 0, u.n - 1, comm);
  BlockParams<float> a = u.q, b = u.q;
  const BlockApCurve ca = train_block_ap(u.cfg, a, d, o, comm);
  const BlockApCurve cb = train_block_ap(u.cfg, b, d, o, comm);
  const double after = block_mse(u.cfg, a, d, 0, u.n - 1, comm);
  EXPECT_EQ(ca.train_loss.size(), 6u * 3u);
  EXPECT_EQ(ca.val_loss.size(), 6u);
  EXPECT_EQ(ca.epochs_run, 6);
  EXPECT_LT(after, 0.8 * before) << "before " << before << " after " << after;
  std::printf("block-ap: block MSE %.4g -> %.4g (validation %.4g -> %.4g)\n", before, after, ca.val_loss.front(), ca.val_loss.back());
  EXPECT_LT(ca.val_loss.back(), ca.val_loss.front());
  EXPECT_EQ(ca.train_loss, cb.train_loss);
  EXPECT_EQ(a.qkv, b.qkv);
  EXPECT_EQ(a.quant[static_cast<int>(Linear::Down)].scales, b.quant[static_cast<int>(Linear::Down)].scales);
  // The stored grid reproduces the trained fake-quantized weights exactly.
  for (int l = 0; l < kNumLinear; ++l) {
    const Linear lin = static_cast<Linear>(l);
    const QuantizedLinear q = to_quantized(u.cfg, a, lin);
    const LinearRows lr = linear_rows(u.cfg, lin);
    const auto& qq = a.quant[l];
    for (float z : qq.zeros) EXPECT_TRUE(z >= 0 && z <= 3);
    std::vector<float> fq(static_cast<size_t>(lr.out) * lr.in);
    fake_quant_forward(a.matrix(lin).data() + static_cast<size_t>(lr.row0) * lr.in, qq.scales.data(), qq.zeros.data(), lr.out, lr.in,
                       qq.group, qq.bits, fq.data());
    EXPECT_EQ(q.dequantize(), fq) << linear_short_name(lin);
  }
}

TEST(BlockAp, PatienceStopsWhenValidationStopsImproving) {
  BlockCase u = make_setup();
  BlockApOptions o;
  o.epochs = 5, o.val_windows = 2, o.patience = 1, o.weight_lr = 0, o.quant_lr = 0;
  const BlockApCurve c = train_block_ap(u.cfg, u.q, BlockApData{u.x_q, u.y_fp, 0, u.n, u.n, u.ctx}, o, Comm::local());
  EXPECT_EQ(c.epochs_run, 2);  // nothing moves: the second epoch is no better than the first
  ASSERT_EQ(c.val_loss.size(), 2u);
  EXPECT_EQ(c.val_loss[0], c.val_loss[1]);
}

}  // namespace
}  // namespace qsweep
