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
#include <memory>
#include <numeric>
#include <random>

#include "block_families.h"
#include "core/error.h"
#include "grad_check.h"
#include "model/forward.h"
#include "train/block_grad.h"
#include "train/block_pass.h"

namespace qsweep {
namespace {

using test::as_double;
using test::randn;

using test::add_quantizers;
using test::config_of;
using test::Family;
using test::families;
using test::kNSeq;
using test::weights_of;
using test::zip_tensors;

constexpr size_t kMaxFdEntries = 160;  // per tensor; smaller tensors are checked whole

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

// The CPU's BlockPass (train/block_pass.h, what Block-AP and fisher call) is block_forward and
// block_backward themselves, bit for bit, and set_params takes effect at the next forward.
TEST(GradBlockPass, CpuPassIsBlockForwardAndBackward) {
  const Family f = families()[3];  // qwen3: q/k norms
  const ModelConfig c = config_of(f);
  std::mt19937_64 rng(31);
  BlockParams<float> p = block_params_from<float>(weights_of(f, c, rng));
  add_quantizers(c, p);
  const int64_t n = int64_t(kNSeq) * f.seq_len * c.hidden_size;
  const auto x = randn(n, rng), dy = randn(n, rng);
  const std::unique_ptr<BlockPass> pass = make_block_pass(c);  // no device selected: the CPU
  EXPECT_STREQ(pass->device_name(), "cpu");
  for (int round = 0; round < 2; ++round) {
    if (round == 1)
      for (float& s : p.quant[static_cast<int>(Linear::Q)].scales) s *= 1.1f;  // a training step's change
    std::vector<float> y1 = x, y2 = x, dx1(n), dx2(n);
    BlockParams<float> g1, g2;
    BlockTape<float> tape;
    block_forward<float>(c, p, y1.data(), kNSeq, f.seq_len, tape);
    block_backward<float>(c, p, tape, dy.data(), g1, dx1.data());
    pass->set_params(p);
    pass->forward(y2.data(), kNSeq, f.seq_len);
    pass->backward(dy.data(), g2, dx2.data());
    EXPECT_EQ(y1, y2) << round;
    EXPECT_EQ(dx1, dx2) << round;
    zip_tensors(g1, g2, [&](const std::string& name, const auto& a, const auto& b) { EXPECT_EQ(a, b) << name << " " << round; });
  }
}

// A build without CUDA refuses the CUDA pass with a clear error instead of computing on the CPU.
TEST(GradBlockPass, CudaPassWithoutCudaInTheBuildIsAnError) {
#ifdef QSWEEP_WITH_CUDA
  GTEST_SKIP() << "this build has CUDA";
#else
  const ModelConfig c = config_of(families()[0]);
  try {
    make_cuda_block_pass(c, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("QSWEEP_WITH_CUDA=ON"), std::string::npos) << e.what();
  }
#endif
}

}  // namespace
}  // namespace qsweep
