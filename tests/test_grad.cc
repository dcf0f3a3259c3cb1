// test_grad.cc — the backward passes of src/train (grad_ops.h operators, the head loss) against
// central finite differences of their float64 forward: the float32 backward of a scalar loss
// (Σ dy⊙y for a fixed random dy, or the head's mean NLL) must match within ‖g − g_fd‖/‖g_fd‖ <=
// 1e-4 for every tensor. The fake quantizer is checked through its STE definition: finite
// differences of the surrogate in which the rounded codes (and the clamp pattern) are held at the
// current point. The float forwards are also compared with the inference operators they mirror.
// Whole decoder blocks are in test_grad_block.cc; the checker is grad_check.h.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "grad_check.h"
#include "model/cpu_ops.h"
#include "model/forward.h"
#include "model/rope.h"
#include "train/grad_ops.h"

namespace qsweep {
namespace {

using test::as_double;
using test::fd_gradient;
using test::rel_err;
using test::randn;

// Σ dy⊙y in double.
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(GradOps, LinearBackward) {
  std::mt19937_64 rng(1);
  const int rows = 7, in = 12, out = 9;
  auto x = randn(rows * in, rng), W = randn(out * in, rng, 0.3), b = randn(out, rng), dy = randn(rows * out, rng);
  std::vector<float> dx(x.size()), dW(W.size(), 0.f), db(b.size(), 0.f);
  linear_backward<float>(x.data(), W.data(), dy.data(), rows, in, out, dx.data(), dW.data(), db.data());
  auto xd = as_double(x), Wd = as_double(W), bd = as_double(b), dyd = as_double(dy);
  auto loss = [&] {
    std::vector<double> y(rows * out);
    linear_forward<double>(xd.data(), Wd.data(), bd.data(), y.data(), rows, in, out);
    return dot(y, dyd);
  };
  test::GradReport rep("Linear");
  rep.check("x", dx, fd_gradient(xd, loss));
  rep.check("W", dW, fd_gradient(Wd, loss));
  rep.check("b", db, fd_gradient(bd, loss));
}

// in = 30: the last group of each row has 6 columns (a shorter last group, as SmolLM2's 576 at 128).
class FakeQuantBackward : public ::testing::TestWithParam<int> {};
TEST_P(FakeQuantBackward, MatchesFiniteDifferences) {
  std::mt19937_64 rng(2);
  const int out = 6, in = GetParam(), group = 8, bits = 3, ng = (in + group - 1) / group;
  auto W = randn(out * in, rng);
  // Min/max scales shrunk by 0.7 and zero points moved by ±1: some weights clamp at 0, some at qmax.
  std::vector<float> s(out * ng), z(out * ng);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int r = 0; r < out; ++r)
    for (int g = 0; g < ng; ++g) {
      const float* w = W.data() + r * in + g * group;
      const int len = std::min(group, in - g * group);
      const float mn = *std::min_element(w, w + len), mx = *std::max_element(w, w + len);
      s[r * ng + g] = 0.7f * (mx - mn) / 7.f;
      z[r * ng + g] = -mn / s[r * ng + g] + u(rng);
    }
  auto dWq = randn(W.size(), rng);
  std::vector<float> dW(W.size(), 0.f), ds(s.size(), 0.f), dz(z.size(), 0.f);
  fake_quant_backward<float>(W.data(), s.data(), z.data(), out, in, group, bits, dWq.data(), dW.data(),
                             ds.data(), dz.data());
  auto Wd = as_double(W), sd = as_double(s), zd = as_double(z), dyd = as_double(dWq);
  const test::FrozenQuant fq(Wd.data(), sd.data(), zd.data(), out, in, group, bits);
  EXPECT_GT(fq.clamped_low, 0);
  EXPECT_GT(fq.clamped_high, 0);
  EXPECT_GT(fq.inside, out * in / 2);
  // At the current point the surrogate is the quantizer, and the float quantizer agrees.
  std::vector<double> wq(W.size()), wsur(W.size());
  std::vector<float> wqf(W.size());
  fake_quant_forward<double>(Wd.data(), sd.data(), zd.data(), out, in, group, bits, wq.data());
  fake_quant_forward<float>(W.data(), s.data(), z.data(), out, in, group, bits, wqf.data());
  fq.apply(Wd.data(), sd.data(), zd.data(), wsur.data());
  for (size_t i = 0; i < wq.size(); ++i) {
    ASSERT_NEAR(wsur[i], wq[i], 1e-12) << i;
    ASSERT_NEAR(wqf[i], wq[i], 1e-6) << i;
  }
  auto loss = [&] {
    fq.apply(Wd.data(), sd.data(), zd.data(), wsur.data());
    return dot(wsur, dyd);
  };
  test::GradReport rep("FakeQuant");
  rep.check("W", dW, fd_gradient(Wd, loss));
  rep.check("scales", ds, fd_gradient(sd, loss));
  rep.check("zeros", dz, fd_gradient(zd, loss));
}
INSTANTIATE_TEST_SUITE_P(GradOps, FakeQuantBackward, ::testing::Values(32, 30));

TEST(GradOps, RmsNormBackward) {
  std::mt19937_64 rng(3);
  const int rows = 5, cols = 24;
  auto x = randn(rows * cols, rng), w = randn(cols, rng), dy = randn(rows * cols, rng);
  std::vector<float> y(x.size()), inv(rows), dx(x.size()), dw(cols, 0.f);
  rmsnorm_forward<float>(x.data(), w.data(), y.data(), rows, cols, 1e-6f, inv.data());
  std::vector<float> y_ref(x.size());
  rmsnorm(x.data(), w.data(), y_ref.data(), rows, cols, 1e-6f);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], y_ref[i], 1e-5 * std::fabs(y_ref[i]) + 1e-6);
  rmsnorm_backward<float>(x.data(), w.data(), inv.data(), dy.data(), rows, cols, dx.data(), dw.data());
  auto xd = as_double(x), wd = as_double(w), dyd = as_double(dy);
  auto loss = [&] {
    std::vector<double> yd(xd.size()), invd(rows);
    rmsnorm_forward<double>(xd.data(), wd.data(), yd.data(), rows, cols, 1e-6, invd.data());
    return dot(yd, dyd);
  };
  test::GradReport rep("RmsNorm");
  rep.check("x", dx, fd_gradient(xd, loss));
  rep.check("w", dw, fd_gradient(wd, loss));
}

TEST(GradOps, HeadRmsNormBackward) {
  std::mt19937_64 rng(4);
  const int rows = 4, n_heads = 3, hd = 8, ld = 29;  // 5 columns of each row belong to no head
  auto x = randn(rows * ld, rng), w = randn(hd, rng), dy = randn(rows * ld, rng);
  std::vector<float> y = x, inv(rows * n_heads), dw(hd, 0.f);
  head_rmsnorm_forward<float>(x.data(), y.data(), ld, rows, n_heads, hd, w.data(), 1e-6f, inv.data());
  std::vector<float> y_ref = x;
  head_rmsnorm(y_ref.data(), ld, rows, n_heads, hd, w.data(), 1e-6f);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], y_ref[i], 1e-5 * std::fabs(y_ref[i]) + 1e-6);
  // The loss sees the heads only: the other columns' gradient is left untouched (here 0).
  for (int r = 0; r < rows; ++r)
    for (int c = n_heads * hd; c < ld; ++c) dy[r * ld + c] = 0.f;
  std::vector<float> dx = dy;
  head_rmsnorm_backward<float>(x.data(), w.data(), inv.data(), dx.data(), dx.data(), ld, rows, n_heads, hd, dw.data());
  auto xd = as_double(x), wd = as_double(w), dyd = as_double(dy);
  auto loss = [&] {
    std::vector<double> yd = xd, invd(rows * n_heads);
    head_rmsnorm_forward<double>(xd.data(), yd.data(), ld, rows, n_heads, hd, wd.data(), 1e-6, invd.data());
    return dot(yd, dyd);
  };
  test::GradReport rep("HeadRmsNorm");
  rep.check("x", dx, fd_gradient(xd, loss));
  rep.check("w", dw, fd_gradient(wd, loss));
}

ModelConfig rope_config(int head_dim) {
  ModelConfig c;
  c.model_type = "llama";
  c.head_dim = head_dim;
  c.rope_theta = 500000;
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 16};  // low frequencies rescaled at these positions
  return c;
}

TEST(GradOps, RopeBackward) {
  std::mt19937_64 rng(5);
  const int n_seq = 2, L = 6, n_heads = 3, hd = 8, ld = n_heads * hd + 3;
  const ModelConfig c = rope_config(hd);
  const RopeTable ref(c, L);
  const RopeTableT<float> tf(c, L);
  const RopeTableT<double> td(c, L);
  EXPECT_EQ(tf.cos, ref.cos);  // the same double angles rounded once: bit-identical tables
  EXPECT_EQ(tf.sin, ref.sin);
  auto x = randn(n_seq * L * ld, rng), dy = randn(x.size(), rng);
  std::vector<float> y = x, y_ref = x;
  rope_forward<float>(y.data(), ld, n_seq, L, n_heads, tf);
  rope_apply(y_ref.data(), ld, n_seq, L, n_heads, ref);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], y_ref[i], 1e-6);
  std::vector<float> dx = dy;
  rope_backward<float>(dx.data(), ld, n_seq, L, n_heads, tf);
  auto xd = as_double(x), dyd = as_double(dy);
  auto loss = [&] {
    std::vector<double> yd = xd;
    rope_forward<double>(yd.data(), ld, n_seq, L, n_heads, td);
    return dot(yd, dyd);
  };
  test::GradReport rep("Rope");
  rep.check("x", dx, fd_gradient(xd, loss));
}

struct AttnCase {
  const char* name;
  int n_heads, n_kv_heads, window;
};

class GradAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(GradAttention, Backward) {
  const AttnCase& ac = GetParam();
  std::mt19937_64 rng(6);
  const int n_seq = 2, L = 7, d = 8;
  const AttnDims a{n_seq, L, ac.n_heads, ac.n_kv_heads, d, ac.window};
  const int Q = ac.n_heads * d, KV = ac.n_kv_heads * d, ld = Q + 2 * KV;
  const int64_t M = int64_t(n_seq) * L;
  auto qkv = randn(M * ld, rng), dout = randn(M * Q, rng);
  std::vector<float> out(M * Q), probs(a.probs_size()), dqkv(qkv.size(), 0.f);
  attention_forward<float>(qkv.data(), qkv.data() + Q, qkv.data() + Q + KV, ld, out.data(), probs.data(), a);
  std::vector<float> out_ref(M * Q);
  const AttentionShape as{n_seq, L, ac.n_heads, ac.n_kv_heads, d, ac.window};
  attention(qkv.data(), qkv.data() + Q, qkv.data() + Q + KV, ld, out_ref.data(), as);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], out_ref[i], 1e-5) << i;
  attention_backward<float>(qkv.data(), qkv.data() + Q, qkv.data() + Q + KV, ld, probs.data(), dout.data(),
                            dqkv.data(), dqkv.data() + Q, dqkv.data() + Q + KV, a);
  auto qd = as_double(qkv), dod = as_double(dout);
  auto loss = [&] {
    std::vector<double> o(M * Q), p(a.probs_size());
    attention_forward<double>(qd.data(), qd.data() + Q, qd.data() + Q + KV, ld, o.data(), p.data(), a);
    return dot(o, dod);
  };
  const auto fd = fd_gradient(qd, loss);
  // Report q, k and v apart.
  auto cols = [&](const auto& v, int c0, int n) {
    std::vector<typename std::decay_t<decltype(v)>::value_type> r;
    for (int64_t i = 0; i < M; ++i) r.insert(r.end(), v.begin() + i * ld + c0, v.begin() + i * ld + c0 + n);
    return r;
  };
  test::GradReport rep(std::string("Attention/") + ac.name);
  rep.check("q", cols(dqkv, 0, Q), cols(fd, 0, Q));
  rep.check("k", cols(dqkv, Q, KV), cols(fd, Q, KV));
  rep.check("v", cols(dqkv, Q + KV, KV), cols(fd, Q + KV, KV));
}

INSTANTIATE_TEST_SUITE_P(GradOps, GradAttention,
                         ::testing::Values(AttnCase{"gqa", 4, 2, 0}, AttnCase{"mha", 2, 2, 0},
                                           AttnCase{"mqa_window3", 4, 1, 3}, AttnCase{"gqa_window2", 4, 2, 2}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(GradOps, SiluMulBackward) {
  std::mt19937_64 rng(7);
  const int rows = 5, inter = 7;
  auto gu = randn(rows * 2 * inter, rng, 2.0), dact = randn(rows * inter, rng);
  std::vector<float> act(rows * inter), act_ref(rows * inter), dgu(gu.size());
  silu_mul_forward<float>(gu.data(), act.data(), rows, inter);
  silu_mul(gu.data(), act_ref.data(), rows, inter);
  for (size_t i = 0; i < act.size(); ++i) ASSERT_NEAR(act[i], act_ref[i], 1e-5 * std::fabs(act_ref[i]) + 1e-6);
  silu_mul_backward<float>(gu.data(), dact.data(), dgu.data(), rows, inter);
  auto gd = as_double(gu), dad = as_double(dact);
  auto loss = [&] {
    std::vector<double> a(rows * inter);
    silu_mul_forward<double>(gd.data(), a.data(), rows, inter);
    return dot(a, dad);
  };
  test::GradReport rep("SiluMul");
  rep.check("gate_up", dgu, fd_gradient(gd, loss));
}

TEST(GradOps, ResidualBackward) {
  std::mt19937_64 rng(8);
  const int n = 40;
  const float a = 0.7f;
  auto x = randn(n, rng), br = randn(n, rng), dy = randn(n, rng);
  std::vector<float> dbr(n);
  residual_backward<float>(dy.data(), a, n, dbr.data());
  auto xd = as_double(x), bd = as_double(br), dyd = as_double(dy);
  auto loss = [&] {
    std::vector<double> y = xd;
    residual_forward<double>(y.data(), bd.data(), a, n);
    return dot(y, dyd);
  };
  test::GradReport rep("Residual");
  rep.check("x", dy, fd_gradient(xd, loss));  // dx = dy
  rep.check("branch", dbr, fd_gradient(bd, loss));
}

class GradHead : public ::testing::TestWithParam<bool> {};  // minicpm's logit divisor or not

TEST_P(GradHead, LossBackward) {
  const bool mup = GetParam();
  std::mt19937_64 rng(9);
  ModelConfig c;
  c.model_type = mup ? "minicpm" : "llama";
  c.hidden_size = 16, c.vocab_size = 23, c.rms_norm_eps = 1e-5;
  c.mup_scaling = mup, c.dim_model_base = 4;  // divisor 16 / 4
  const int64_t x_rows = 9;
  const std::vector<int64_t> rows = {0, 2, 3, 7, 8, 2};  // row 2 twice: its gradients add
  std::vector<int32_t> targets;
  for (size_t i = 0; i < rows.size(); ++i) targets.push_back(static_cast<int32_t>(rng() % c.vocab_size));
  const int64_t n = static_cast<int64_t>(rows.size());
  auto x = randn(x_rows * c.hidden_size, rng), norm = randn(c.hidden_size, rng);
  auto lm = randn(c.vocab_size * c.hidden_size, rng, mup ? 3.0 : 1.0);
  HeadTape<float> tape;
  const double loss_f = head_loss_forward<float>(c, norm.data(), lm.data(), x.data(), rows.data(), targets.data(), n, tape);
  // The inference head's NLL of the same rows.
  HeadWeights hw{norm, lm};
  LlamaForward fwd(c);
  std::vector<double> nll(n);
  fwd.head_nll(hw, x.data(), rows.data(), targets.data(), n, nll.data());
  double mean = 0;
  for (double v : nll) mean += v / n;
  EXPECT_NEAR(loss_f, mean, 1e-5 * std::max(1.0, mean));
  std::vector<float> dx(x.size()), dnorm(norm.size(), 0.f), dlm(lm.size(), 0.f);
  head_loss_backward<float>(c, norm.data(), lm.data(), rows.data(), targets.data(), tape, 1.0f, x_rows,
                            dx.data(), dnorm.data(), dlm.data());
  auto xd = as_double(x), nd = as_double(norm), ld = as_double(lm);
  auto loss = [&] {
    HeadTape<double> t;
    return head_loss_forward<double>(c, nd.data(), ld.data(), xd.data(), rows.data(), targets.data(), n, t);
  };
  test::GradReport rep(mup ? "HeadLoss/minicpm" : "HeadLoss/llama");
  rep.check("x", dx, fd_gradient(xd, loss));
  rep.check("norm", dnorm, fd_gradient(nd, loss));
  rep.check("lm_head", dlm, fd_gradient(ld, loss));
}

INSTANTIATE_TEST_SUITE_P(GradOps, GradHead, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "minicpm" : "llama"; });

}  // namespace
}  // namespace qsweep
