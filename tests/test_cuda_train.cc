// test_cuda_train.cc — training on the GPU (train/block_pass_cuda.cc over kernels/block_grad.cu)
// against its CPU twin: a block's forward output, input gradient and every parameter gradient
// (quantizers' scales and zero points included) for every family of block_families.h, with and
// without fake-quantized modules; the head's loss and input gradient (minicpm's divisor too);
// Block-AP's training curve and trained quantizers; the fisher probe's loss and a window's
// gradient through the head and three blocks. Built with QSWEEP_WITH_CUDA only;
// skipped without a GPU (all passed on an H200 on 2026-12-04: bench/gpu_runs/).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "block_families.h"
#include "core/device.h"
#include "dist/comm.h"
#include "model/llama_weights.h"
#include "model/synthetic_model.h"
#include "qsweep/cuda/backend.h"
#include "test_util.h"
#include "train/block_ap.h"
#include "train/block_pass.h"
#include "train/fisher.h"

namespace qsweep {
namespace {

using test::Family;

// ‖a − b‖ / ‖b‖ (0 when both are 0).
double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

ComputeDevice gpu0() {
  ComputeDevice d;
  d.kind = DeviceKind::Cuda, d.ordinal = 0, d.description = "cuda:0";
  return d;
}

class CudaTrain : public ::testing::TestWithParam<Family> {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << cuda::device_summary();
  }
};

void compare_passes(const Family& f, bool quantized) {
  const ModelConfig c = test::config_of(f);
  std::mt19937_64 rng(quantized ? 43 : 42);
  BlockParams<float> p = block_params_from<float>(test::weights_of(f, c, rng));
  if (quantized) test::add_quantizers(c, p);
  const int64_t n = int64_t(test::kNSeq) * f.seq_len * c.hidden_size;
  const auto x = test::randn(n, rng), dy = test::randn(n, rng);
  std::vector<float> y_cpu = x, y_gpu = x, dx_cpu(n), dx_gpu(n);
  BlockParams<float> g_cpu, g_gpu;
  const std::unique_ptr<BlockPass> cpu = make_block_pass(c), gpu = make_cuda_block_pass(c, 0);
  for (BlockPass* pass : {cpu.get(), gpu.get()}) {
    const bool on_gpu = pass == gpu.get();
    pass->set_params(p);
    pass->forward(on_gpu ? y_gpu.data() : y_cpu.data(), test::kNSeq, f.seq_len);
    pass->backward(dy.data(), on_gpu ? g_gpu : g_cpu, on_gpu ? dx_gpu.data() : dx_cpu.data());
  }
  EXPECT_LE(rel_l2(y_gpu, y_cpu), 1e-5) << f.name;
  EXPECT_LE(rel_l2(dx_gpu, dx_cpu), 1e-4) << f.name;
  int tensors = 0;
  test::zip_tensors(g_gpu, g_cpu, [&](const std::string& name, const std::vector<float>& a, const std::vector<float>& b) {
    ASSERT_EQ(a.size(), b.size()) << name;
    EXPECT_LE(rel_l2(a, b), 1e-4) << f.name << " " << name;
    ++tensors;
  });
  EXPECT_GE(tensors, quantized ? 12 : 6);
}

TEST_P(CudaTrain, GradientsMatchTheCpu) { compare_passes(GetParam(), false); }
TEST_P(CudaTrain, QuantizedGradientsMatchTheCpu) { compare_passes(GetParam(), true); }

INSTANTIATE_TEST_SUITE_P(Families, CudaTrain, ::testing::ValuesIn(test::families()),
                         [](const auto& info) { return std::string(info.param.name); });

class CudaTrainStage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << cuda::device_summary();
  }
};

// The head's loss and input gradient on the GPU against the CPU's (llama, and minicpm's divisor).
TEST_F(CudaTrainStage, HeadLossAndGradientMatchTheCpu) {
  for (const char* type : {"llama", "minicpm"}) {
    ModelConfig c = test::config_of(test::families()[std::string(type) == "minicpm" ? 5 : 0]);
    c.vocab_size = 300;
    std::mt19937_64 rng(9);
    HeadWeights h;
    h.norm = test::randn(c.hidden_size, rng, 0.1);
    for (float& v : h.norm) v += 1.0f;
    h.lm_head = test::randn(static_cast<size_t>(c.vocab_size) * c.hidden_size, rng, 1 / std::sqrt(c.hidden_size));
    const int rows = 17, n = 16;
    const auto x = test::randn(static_cast<size_t>(rows) * c.hidden_size, rng);
    std::vector<int32_t> targets(n);
    for (int32_t& t : targets) t = static_cast<int32_t>(rng() % c.vocab_size);
    std::vector<float> dx_cpu(x.size()), dx_gpu(x.size(), 7.0f);
    const double l_cpu = make_head_pass(c, h)->loss_and_grad(x.data(), rows, n, targets.data(), dx_cpu.data());
    const double l_gpu = make_cuda_head_pass(c, h, 0)->loss_and_grad(x.data(), rows, n, targets.data(), dx_gpu.data());
    EXPECT_NEAR(l_gpu, l_cpu, 1e-6 * l_cpu) << type;
    EXPECT_LE(rel_l2(dx_gpu, dx_cpu), 1e-5) << type;
    for (int k = 0; k < c.hidden_size; ++k) EXPECT_EQ(dx_gpu[static_cast<size_t>(n) * c.hidden_size + k], 0.0f);
  }
}

// Block-AP with --device cuda: the same windows, order and steps as on the CPU; losses and the
// trained quantizers agree to fp32 rounding carried through the steps.
TEST_F(CudaTrainStage, BlockApOnTheGpuFollowsTheCpu) {
  const std::string dir = test::scratch_dir("cuda-block-ap");
  SyntheticModelSpec s;
  s.hidden = 64, s.intermediate = 128, s.layers = 1, s.heads = 4, s.kv_heads = 2, s.vocab = 64;
  s.dtype = DType::F32, s.seed = 11;
  write_synthetic_model(dir, s);
  LlamaWeights m(dir);
  const ModelConfig cfg = m.config();
  const BlockParams<float> fp = block_params_from<float>(*m.load_block(0));
  const int n = 6, ctx = 32;
  const size_t per = static_cast<size_t>(ctx) * cfg.hidden_size;
  std::mt19937_64 rng(5);
  std::vector<float> x_fp = test::randn(per * n, rng), y_fp = x_fp, x_q = x_fp;
  BlockTape<float> tape;
  for (int w = 0; w < n; ++w) block_forward(cfg, fp, y_fp.data() + w * per, 1, ctx, tape);
  const std::vector<float> noise = test::randn(per * n, rng, 0.05);
  for (size_t i = 0; i < x_q.size(); ++i) x_q[i] += noise[i];
  BlockParams<float> q = fp;
  for (int l = 0; l < kNumLinear; ++l) init_linear_quant_minmax(cfg, q, static_cast<Linear>(l), 3, 32);
  BlockApOptions o;
  o.epochs = 2, o.train_batch = 2, o.val_windows = 1, o.seed = 3;
  const BlockApData d{x_q, y_fp, 0, n, n, ctx};
  BlockParams<float> a = q, b = q;
  const BlockApCurve on_cpu = train_block_ap(cfg, a, d, o, Comm::local());
  BlockApCurve on_gpu;
  {
    DeviceScope scope(gpu0());
    on_gpu = train_block_ap(cfg, b, d, o, Comm::local());
  }
  ASSERT_EQ(on_gpu.train_loss.size(), on_cpu.train_loss.size());
  for (size_t i = 0; i < on_cpu.train_loss.size(); ++i)
    EXPECT_NEAR(on_gpu.train_loss[i], on_cpu.train_loss[i], 1e-4 * on_cpu.train_loss[i]) << "step " << i;
  ASSERT_EQ(on_gpu.val_loss.size(), on_cpu.val_loss.size());
  for (size_t i = 0; i < on_cpu.val_loss.size(); ++i) EXPECT_NEAR(on_gpu.val_loss[i], on_cpu.val_loss[i], 1e-4 * on_cpu.val_loss[i]);
  for (int l = 0; l < kNumLinear; ++l) EXPECT_LE(rel_l2(b.quant[l].scales, a.quant[l].scales), 1e-4) << l;
  EXPECT_LE(rel_l2(b.gate_up, a.gate_up), 1e-5);
}

// The fisher probe with its head's loss and gradient and its blocks' forward and backward on the
// GPU: the same mean NLL and per-window gradients as on the CPU.
TEST_F(CudaTrainStage, FisherOnTheGpuMatchesTheCpu) {
  const std::string dir = test::scratch_dir("cuda-fisher");
  SyntheticModelSpec s;
  s.model_type = "qwen3";
  s.hidden = 32, s.intermediate = 64, s.layers = 3, s.heads = 4, s.kv_heads = 2, s.vocab = 96;
  s.dtype = DType::F32;
  write_synthetic_model(dir, s);
  LlamaWeights m(dir);
  const int n = 3, ctx = 9;
  std::mt19937 rng(3);
  std::vector<int32_t> windows(static_cast<size_t>(n) * ctx);
  for (int32_t& t : windows) t = static_cast<int32_t>(rng() % 96);
  const Comm comm = Comm::local();
  FisherProbe cpu(m, windows, n, ctx, comm, int64_t(1) << 30, false);
  DeviceScope scope(gpu0());
  FisherProbe gpu(m, windows, n, ctx, comm, int64_t(1) << 30, false);
  EXPECT_NEAR(gpu.loss(), cpu.loss(), 1e-5 * cpu.loss());
  for (int w = 0; w < n; ++w)
    for (const auto& [block, lin] : std::vector<std::pair<int, Linear>>{{0, Linear::Q}, {2, Linear::Down}})
      EXPECT_LE(rel_l2(gpu.window_gradient(block, lin, w), cpu.window_gradient(block, lin, w)), 1e-4)
          << "block " << block << " window " << w;
}

}  // namespace
}  // namespace qsweep
