// test_grad_block.cc — a whole decoder block (train/block_grad.h) per family: llama (plain, and
// with o/MLP biases), qwen2 (q/k/v biases, MQA), qwen3 (per-head q/k norms, head_dim ≠
// hidden/heads), mistral-like (sliding window shorter than the sequence) and minicpm (scaled
// residuals), all with GQA or MQA except one MHA case. block_forward<float> must equal
// LlamaForward::run_block; the float32 block_backward must match central finite differences of the
// float64 block_forward of Σ dy⊙y for every parameter and the input (‖g − g_fd‖/‖g_fd‖ <= 1e-4),
// without and with fake-quantized linears (then the quantizers are frozen at the current codes:
// grad_check.h FrozenQuant, whose derivatives are the STE's). Large weight matrices are checked on
// a fixed random sample of entries to keep the file fast.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <numeric>
#include <random>

#include "grad_check.h"
#include "model/forward.h"
#include "train/block_grad.h"

namespace qsweep {
namespace {

using test::as_double;
using test::randn;

constexpr int kNSeq = 2;
constexpr size_t kMaxFdEntries = 160;  // per tensor; smaller tensors are checked whole

struct Family {
  const char* name;
  const char* model_type;
  int hidden, heads, kv_heads, head_dim, inter, seq_len, window;
  bool qkv_bias, attn_bias, mlp_bias, qk_norm, mup;
};

std::vector<Family> families() {
  return {
      {"llama", "llama", 32, 4, 2, 8, 48, 8, 0, false, false, false, false, false},
      {"llama_biases_mha", "llama", 32, 2, 2, 16, 40, 6, 0, false, true, true, false, false},
      {"qwen2", "qwen2", 32, 4, 1, 8, 48, 8, 0, true, false, false, false, false},
      {"qwen3", "qwen3", 32, 4, 2, 12, 40, 8, 0, false, false, false, true, false},
      {"mistral_window4", "mistral", 32, 4, 2, 8, 48, 10, 4, false, false, false, false, false},
      {"minicpm", "minicpm", 48, 4, 2, 12, 64, 8, 0, false, false, false, false, true},
  };
}

ModelConfig config_of(const Family& f) {
  ModelConfig c;
  c.model_type = f.model_type;
  c.hidden_size = f.hidden, c.intermediate_size = f.inter, c.num_hidden_layers = 4;
  c.num_attention_heads = f.heads, c.num_key_value_heads = f.kv_heads, c.head_dim = f.head_dim;
  c.vocab_size = 50, c.max_position_embeddings = 64, c.sliding_window = f.window;
  c.rms_norm_eps = 1e-6, c.rope_theta = 10000;
  c.qkv_bias = f.qkv_bias, c.attention_bias = f.attn_bias, c.mlp_bias = f.mlp_bias;
  c.qk_norm = f.qk_norm;
  if (f.mup) c.mup_scaling = true, c.scale_depth = 1.4, c.scale_emb = 12, c.dim_model_base = 10;
  return c;
}

BlockWeights weights_of(const Family& f, const ModelConfig& c, std::mt19937_64& rng) {
  const int H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), I = c.intermediate_size;
  auto near_one = [&](int n, double sd) {
    auto v = randn(n, rng, sd);
    for (float& x : v) x += 1.f;
    return v;
  };
  BlockWeights w;
  w.index = 0, w.hidden = H, w.q_dim = Q, w.kv_dim = KV, w.inter = I;
  w.input_norm = near_one(H, 0.1), w.post_norm = near_one(H, 0.1);
  if (c.qk_norm) w.q_norm = near_one(c.head_dim, 0.25), w.k_norm = near_one(c.head_dim, 0.25);
  w.qkv = randn(size_t(Q + 2 * KV) * H, rng, 1 / std::sqrt(H));
  w.o = randn(size_t(H) * Q, rng, 1 / std::sqrt(Q));
  w.gate_up = randn(size_t(2 * I) * H, rng, 1 / std::sqrt(H));
  w.down = randn(size_t(H) * I, rng, 1 / std::sqrt(I));
  if (f.qkv_bias || f.attn_bias) w.qkv_bias = randn(Q + 2 * KV, rng, 0.1);
  if (f.attn_bias) w.o_bias = randn(H, rng, 0.1);
  if (f.mlp_bias) w.gate_up_bias = randn(2 * I, rng, 0.1), w.down_bias = randn(H, rng, 0.1);
  return w;
}

// Quantizes five of the seven modules (v_proj and up_proj stay full precision inside their fused
// matrices) at 3–4 bits; scales 0.85× min/max so that some weights clamp.
void add_quantizers(const ModelConfig& c, BlockParams<float>& p) {
  const struct { Linear l; int bits, group; } qs[] = {
      {Linear::Q, 4, 16}, {Linear::K, 4, 8}, {Linear::O, 3, 16}, {Linear::Gate, 4, 16}, {Linear::Down, 3, 8}};
  for (const auto& q : qs) {
    init_linear_quant_minmax(c, p, q.l, q.bits, q.group);
    for (float& s : p.quant[static_cast<int>(q.l)].scales) s *= 0.85f;
  }
}

// Calls f(name, a's tensor, b's tensor) for every non-empty tensor of two BlockParams.
template <class A, class B, class F>
void zip_tensors(A& a, B& b, F&& f) {
  auto one = [&](const char* n, auto& x, auto& y) {
    if (!x.empty()) f(std::string(n), x, y);
  };
  one("input_norm", a.input_norm, b.input_norm), one("post_norm", a.post_norm, b.post_norm);
  one("q_norm", a.q_norm, b.q_norm), one("k_norm", a.k_norm, b.k_norm);
  one("qkv", a.qkv, b.qkv), one("qkv_bias", a.qkv_bias, b.qkv_bias);
  one("o", a.o, b.o), one("o_bias", a.o_bias, b.o_bias);
  one("gate_up", a.gate_up, b.gate_up), one("gate_up_bias", a.gate_up_bias, b.gate_up_bias);
  one("down", a.down, b.down), one("down_bias", a.down_bias, b.down_bias);
  for (int m = 0; m < kNumLinear; ++m) {
    const std::string n = linear_short_name(static_cast<Linear>(m));
    one((n + ".scales").c_str(), a.quant[m].scales, b.quant[m].scales);
    one((n + ".zeros").c_str(), a.quant[m].zeros, b.quant[m].zeros);
  }
}

std::vector<size_t> sample(size_t n, std::mt19937_64& rng) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), size_t(0));
  if (n <= kMaxFdEntries) return idx;
  std::shuffle(idx.begin(), idx.end(), rng);
  idx.resize(kMaxFdEntries);
  std::sort(idx.begin(), idx.end());
  return idx;
}

class GradBlock : public ::testing::TestWithParam<Family> {};

TEST_P(GradBlock, MatchesRunBlock) {
  const Family& f = GetParam();
  const ModelConfig c = config_of(f);
  std::mt19937_64 rng(11);
  const BlockWeights w = weights_of(f, c, rng);
  const int64_t M = int64_t(kNSeq) * f.seq_len;
  const auto x = randn(M * c.hidden_size, rng);
  std::vector<float> want = x, got = x;
  LlamaForward(c).run_block(w, want.data(), kNSeq, f.seq_len);
  BlockTape<float> tape;
  block_forward<float>(c, block_params_from<float>(w), got.data(), kNSeq, f.seq_len, tape);
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max(max_diff, double(std::fabs(got[i] - want[i])));
    max_abs = std::max(max_abs, double(std::fabs(want[i])));
  }
  EXPECT_LE(max_diff, 1e-5 * max_abs) << f.name;
  std::printf("[grad] %-34s max |diff| / max |y| = %.3g\n", (std::string("RunBlock/") + f.name).c_str(),
              max_diff / max_abs);
}

void check_block_gradients(const Family& f, bool quantized) {
  const ModelConfig c = config_of(f);
  std::mt19937_64 rng(quantized ? 13 : 12);
  BlockParams<float> pf = block_params_from<float>(weights_of(f, c, rng));
  if (quantized) add_quantizers(c, pf);
  const int64_t M = int64_t(kNSeq) * f.seq_len, H = c.hidden_size;
  auto x = randn(M * H, rng), dy = randn(M * H, rng);

  std::vector<float> y = x, dx(M * H);
  BlockTape<float> tape;
  block_forward<float>(c, pf, y.data(), kNSeq, f.seq_len, tape);
  BlockParams<float> g;
  block_backward<float>(c, pf, tape, dy.data(), g, dx.data());

  BlockParams<double> pd = block_params_cast<double>(pf);
  auto xd = as_double(x), dyd = as_double(dy);
  // The quantizers frozen at the current codes: the loss below runs the block on their output,
  // which equals the real fake-quantized forward here and differentiates like the STE.
  std::vector<test::FrozenQuant> frozen(kNumLinear);
  int clamped = 0;
  for (int m = 0; m < kNumLinear; ++m) {
    const LinearQuant<double>& q = pd.quant[m];
    if (!q.enabled()) continue;
    const LinearRows lr = linear_rows(c, static_cast<Linear>(m));
    frozen[m] = test::FrozenQuant(pd.matrix(static_cast<Linear>(m)).data() + size_t(lr.row0) * lr.in,
                                  q.scales.data(), q.zeros.data(), lr.out, lr.in, q.group, q.bits);
    clamped += frozen[m].clamped_low + frozen[m].clamped_high;
  }
  if (quantized) {
    EXPECT_GT(clamped, 0) << "no weight clamps: the outside branch is not exercised";
  }
  auto loss = [&] {
    BlockParams<double> e = pd;
    for (int m = 0; m < kNumLinear; ++m) {
      if (!pd.quant[m].enabled()) continue;
      const LinearRows lr = linear_rows(c, static_cast<Linear>(m));
      const size_t o = size_t(lr.row0) * lr.in;
      frozen[m].apply(pd.matrix(static_cast<Linear>(m)).data() + o, pd.quant[m].scales.data(),
                      pd.quant[m].zeros.data(), e.matrix(static_cast<Linear>(m)).data() + o);
      e.quant[m] = LinearQuant<double>{};
    }
    std::vector<double> yd = xd;
    BlockTape<double> t;
    block_forward<double>(c, e, yd.data(), kNSeq, f.seq_len, t);
    double s = 0;
    for (size_t i = 0; i < yd.size(); ++i) s += yd[i] * dyd[i];
    return s;
  };
  {  // the float forward against the float64 one (through the frozen quantizers)
    std::vector<double> yd = xd;
    BlockTape<double> t;
    block_forward<double>(c, pd, yd.data(), kNSeq, f.seq_len, t);
    double s = 0;
    for (size_t i = 0; i < yd.size(); ++i) s += yd[i] * dyd[i];
    EXPECT_NEAR(loss(), s, 1e-9 * std::max(1.0, std::fabs(s)));
  }

  test::GradReport rep(std::string(quantized ? "BlockQuantized/" : "Block/") + f.name);
  std::mt19937_64 pick(5);
  auto check = [&](const std::string& name, const std::vector<float>& gt, std::vector<double>& pt) {
    const std::vector<size_t> idx = sample(pt.size(), pick);
    std::vector<float> gs;
    for (size_t i : idx) gs.push_back(gt[i]);
    rep.check(name, gs, test::fd_gradient(pt, loss, &idx));
  };
  zip_tensors(g, pd, check);
  check("x", dx, xd);
}

TEST_P(GradBlock, Backward) { check_block_gradients(GetParam(), false); }
TEST_P(GradBlock, BackwardQuantized) { check_block_gradients(GetParam(), true); }

INSTANTIATE_TEST_SUITE_P(GradFamilies, GradBlock, ::testing::ValuesIn(families()),
                         [](const auto& info) { return std::string(info.param.name); });

// The gradient is deterministic: a backward pass on one thread and on several give the same bits
// (shapes large enough for the threaded GEMM tiles and attention tasks).
TEST(GradBlockDeterminism, BackwardThreadCountInvariant) {
  const Family f{"qwen3_large", "qwen3", 128, 8, 2, 16, 256, 96, 0, false, false, false, true, false};
  const ModelConfig c = config_of(f);
  std::mt19937_64 rng(21);
  BlockParams<float> p = block_params_from<float>(weights_of(f, c, rng));
  add_quantizers(c, p);
  const int64_t n = int64_t(kNSeq) * f.seq_len * c.hidden_size;
  const auto x = randn(n, rng), dy = randn(n, rng);
  std::vector<float> dx1(n), dx2(n), y1 = x, y2 = x;
  BlockParams<float> g1, g2;
  const int threads = omp_get_max_threads();
  for (int run = 0; run < 2; ++run) {
    omp_set_num_threads(run == 0 ? 1 : std::max(threads, 2));
    BlockTape<float> tape;
    block_forward<float>(c, p, run ? y2.data() : y1.data(), kNSeq, f.seq_len, tape);
    block_backward<float>(c, p, tape, dy.data(), run ? g2 : g1, run ? dx2.data() : dx1.data());
  }
  omp_set_num_threads(threads);
  EXPECT_EQ(y1, y2);
  EXPECT_EQ(dx1, dx2);
  EXPECT_EQ(g1.qkv, g2.qkv);
  EXPECT_EQ(g1.down, g2.down);
  EXPECT_EQ(g1.quant[0].scales, g2.quant[0].scales);
  EXPECT_EQ(g1.quant[0].zeros, g2.quant[0].zeros);
}

}  // namespace
}  // namespace qsweep
