// test_cuda_forward.cc — the CUDA forward pass (model/forward_cuda.cc over kernels/
// block_forward.cu) against its CPU twin LlamaForward, op by op through whole blocks: plain GQA,
// qwen2 biases, qwen3 q/k norms, MiniCPM's scaled residuals, a sliding window, packed sequences,
// the observer's linear inputs, attention entropy, head logits and NLL, and the residency contract
// (a held block re-uploads after a new hold, never silently stale). Built with QSWEEP_WITH_CUDA
// only; skipped without a GPU (all passed on an H200 on 2026-12-04: bench/gpu_runs/).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/device.h"
#include "core/error.h"
#include "dist/comm.h"
#include "eval/calib_windows.h"
#include "eval/perplexity.h"
#include "eval/windows.h"
#include "model/forward.h"
#include "model/forward_cuda.h"
#include "model/synthetic_model.h"
#include "qsweep/cuda/backend.h"
#include "quant/method.h"
#include "quant/quantize_model.h"
#include "test_util.h"

namespace qsweep {
namespace {

class CudaForwardTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << cuda::device_summary();
  }
};

SyntheticModelSpec spec_for(const std::string& name) {
  SyntheticModelSpec s;
  s.hidden = 64, s.intermediate = 96, s.layers = 2, s.heads = 4, s.kv_heads = 2, s.vocab = 301, s.seed = 11;
  s.dtype = DType::F32;
  if (name == "qwen2_bias") s.model_type = "qwen2";
  if (name == "qwen3_qknorm") s.model_type = "qwen3", s.head_dim = 32;
  if (name == "minicpm") s.model_type = "minicpm", s.tie_embeddings = true, s.scale_emb = 2.5, s.scale_depth = 0.6;
  return s;
}

double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, m = 1e-6;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
    m = std::max(m, std::fabs(static_cast<double>(b[i])));
  }
  return d / m;
}

// The embeddings of n_seq × T ids (i·53 + 7 mod vocab): the blocks' common input.
std::vector<float> embedded_ids(const LlamaWeights& m, int n_seq, int T) {
  const ModelConfig& cfg = m.config();
  std::vector<int32_t> ids(static_cast<size_t>(n_seq) * T);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 53 + 7) % cfg.vocab_size);
  std::vector<float> x(ids.size() * cfg.hidden_size);
  m.embed(ids.data(), static_cast<int64_t>(ids.size()), x.data());
  return x;
}

struct Taps : LinearObserver {
  std::vector<std::vector<float>> inputs;
  bool entropy = false;
  std::vector<double> ent;
  void on_linear_input(const LinearInput& in) override {
    inputs.emplace_back(in.x, in.x + in.rows * in.cols);
  }
  bool wants_attention_entropy() const override { return entropy; }
  void on_attention_entropy(int, const double* sums, int n_seq, int n_heads, int) override {
    ent.insert(ent.end(), sums, sums + n_seq * n_heads);
  }
};

TEST_P(CudaForwardTest, BlocksAndHeadMatchTheCpu) {
  const std::string name = GetParam();
  const std::string dir = test::scratch_dir(std::string("cuda_fwd_") + name);
  write_synthetic_model(dir, spec_for(name));
  LlamaWeights m(dir);
  ModelConfig cfg = m.config();
  if (name == "sliding_window") cfg.sliding_window = 7;
  const int n_seq = 3, T = 40, H = cfg.hidden_size;
  std::mt19937 rng(5);
  std::vector<int32_t> ids(n_seq * T);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % cfg.vocab_size);
  std::vector<float> xc(ids.size() * H);
  m.embed(ids.data(), static_cast<int64_t>(ids.size()), xc.data());
  std::vector<float> xg = xc;
  LlamaForward cpu(cfg);
  std::unique_ptr<LlamaForward> gpu = make_cuda_forward(cfg, 0);
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    std::unique_ptr<BlockWeights> w = m.load_block(l);
    Taps tc, tg;
    tc.entropy = tg.entropy = true;
    gpu->hold(*w);
    cpu.run_block(*w, xc.data(), n_seq, T, &tc);
    gpu->run_block(*w, xg.data(), n_seq, T, &tg);
    EXPECT_LT(max_rel(xg, xc), 1e-5) << name << " block " << l;
    ASSERT_EQ(tg.inputs.size(), tc.inputs.size());
    for (size_t i = 0; i < tc.inputs.size(); ++i) EXPECT_LT(max_rel(tg.inputs[i], tc.inputs[i]), 1e-5) << "tap " << i;
    ASSERT_EQ(tg.ent.size(), tc.ent.size());
    for (size_t i = 0; i < tc.ent.size(); ++i) EXPECT_NEAR(tg.ent[i], tc.ent[i], 1e-4 * std::max(1.0, tc.ent[i]));
  }
  HeadWeights head = HeadWeights::load(m);
  gpu->hold(head);
  std::vector<int64_t> rows;
  std::vector<int32_t> targets;
  for (int i = 0; i + 1 < n_seq * T; i += 3) rows.push_back(i), targets.push_back(ids[i + 1]);
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<float> lc(n * cfg.vocab_size), lg(lc.size());
  cpu.head_logits(head, xc.data(), rows.data(), n, lc.data());
  gpu->head_logits(head, xc.data(), rows.data(), n, lg.data());
  EXPECT_LT(max_rel(lg, lc), 1e-5);
  std::vector<double> nc(n), ng(n);
  cpu.head_nll(head, xc.data(), rows.data(), targets.data(), n, nc.data());
  gpu->head_nll(head, xc.data(), rows.data(), targets.data(), n, ng.data());
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(ng[i], nc[i], 1e-5 * std::max(1.0, nc[i])) << "row " << i;
  // KL's head: a second head (lm_head perturbed) as the base model, on other rows of x.
  HeadWeights base = head;
  for (size_t i = 0; i < base.lm_head.size(); ++i) base.lm_head[i] *= 1.0f + 0.2f * static_cast<float>((i % 7) - 3) / 3;
  gpu->hold(base);
  std::vector<int64_t> rows_ref(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) rows_ref[i] = rows[rows.size() - 1 - i];
  std::vector<double> kc(n), kg(n), bc(n), bg(n), qc(n), qg(n);
  std::vector<uint8_t> tc(n), tg(n);
  cpu.head_kl(head, xc.data(), rows.data(), base, xc.data(), rows_ref.data(), targets.data(), n, kc.data(), tc.data(),
              qc.data(), bc.data());
  gpu->head_kl(head, xc.data(), rows.data(), base, xc.data(), rows_ref.data(), targets.data(), n, kg.data(), tg.data(),
               qg.data(), bg.data());
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(kg[i], kc[i], 1e-5 * std::max(1.0, kc[i])) << "KL row " << i;
    EXPECT_NEAR(qg[i], qc[i], 1e-5 * std::max(1.0, qc[i])) << "NLL row " << i;
    EXPECT_NEAR(bg[i], bc[i], 1e-5 * std::max(1.0, bc[i])) << "base NLL row " << i;
    EXPECT_EQ(tg[i], tc[i]) << "top-1 row " << i;
  }
}

class CudaForwardSeam : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << cuda::device_summary();
  }
};

INSTANTIATE_TEST_SUITE_P(Variants, CudaForwardTest,
                         ::testing::Values("llama_gqa", "qwen2_bias", "qwen3_qknorm", "minicpm", "sliding_window"));

TEST_F(CudaForwardSeam, PackedSequencesMatchTheCpu) {
  const std::string dir = test::scratch_dir("cuda_fwd_packed");
  write_synthetic_model(dir, spec_for("llama_gqa"));
  LlamaWeights m(dir);
  const ModelConfig& cfg = m.config();
  // One sequence of 30 rows: a prefix of 10, then branches of 8, 7 and 5 tokens.
  const int T = 30, H = cfg.hidden_size;
  std::vector<int32_t> pos(T), pe(T), bb(T), ids(T);
  int b0 = 10;
  for (int i = 0; i < T; ++i) {
    ids[i] = (i * 7 + 3) % cfg.vocab_size;
    if (i < 10) {
      pos[i] = i, pe[i] = 0, bb[i] = 0;
      continue;
    }
    if (i == 18 || i == 25) b0 = i;
    pos[i] = 10 + (i - b0), pe[i] = 10, bb[i] = b0;
  }
  std::vector<float> xc(static_cast<size_t>(T) * H);
  m.embed(ids.data(), T, xc.data());
  std::vector<float> xg = xc;
  LlamaForward cpu(cfg);
  std::unique_ptr<LlamaForward> gpu = make_cuda_forward(cfg, 0);
  const SeqPacking pk{pos.data(), pe.data(), bb.data()};
  std::unique_ptr<BlockWeights> w = m.load_block(0);
  cpu.run_block(*w, xc.data(), 1, T, nullptr, &pk);
  gpu->run_block(*w, xg.data(), 1, T, nullptr, &pk);
  EXPECT_LT(max_rel(xg, xc), 1e-5);
}

TEST_F(CudaForwardSeam, AHeldBlockIsReuploadedAfterTheNextHold) {
  const std::string dir = test::scratch_dir("cuda_fwd_hold");
  write_synthetic_model(dir, spec_for("llama_gqa"));
  LlamaWeights m(dir);
  const ModelConfig& cfg = m.config();
  const int T = 16, H = cfg.hidden_size;
  std::vector<int32_t> ids(T);
  for (int i = 0; i < T; ++i) ids[i] = i + 1;
  std::vector<float> x0(static_cast<size_t>(T) * H);
  m.embed(ids.data(), T, x0.data());
  LlamaForward cpu(cfg);
  std::unique_ptr<LlamaForward> gpu = make_cuda_forward(cfg, 0);
  std::unique_ptr<BlockWeights> w = m.load_block(0);
  auto both = [&] {
    std::vector<float> a = x0, b = x0;
    cpu.run_block(*w, a.data(), 1, T);
    gpu->run_block(*w, b.data(), 1, T);
    return max_rel(b, a);
  };
  gpu->hold(*w);
  EXPECT_LT(both(), 1e-5);
  std::vector<float> zero(static_cast<size_t>(w->out_features(Linear::Down)) * w->in_features(Linear::Down), 0.0f);
  w->set_linear(Linear::Down, zero.data());
  gpu->hold(*w);  // changed in place: held again
  EXPECT_LT(both(), 1e-5);
  std::unique_ptr<BlockWeights> w1 = m.load_block(1);  // never held: uploaded at each call
  std::vector<float> a = x0, b = x0;
  cpu.run_block(*w1, a.data(), 1, T);
  gpu->run_block(*w1, b.data(), 1, T);
  EXPECT_LT(max_rel(b, a), 1e-5);
}

// The whole evaluation on the GPU (hidden states resident across blocks, the guard scanned on the
// device, the head there): the CPU's perplexity within 1e-5 relative and the same windows' NLL.
TEST_F(CudaForwardSeam, EvaluationMatchesTheCpu) {
  const std::string dir = test::scratch_dir("cuda_fwd_eval");
  write_synthetic_model(dir, spec_for("llama_gqa"));
  LlamaWeights m(dir);
  std::vector<int32_t> doc(700);
  for (size_t i = 0; i < doc.size(); ++i) doc[i] = static_cast<int32_t>((i * 37 + 11) % m.config().vocab_size);
  SpecialTokens sp;
  const EvalWindows w = make_windows(Protocol::Gptq, doc, sp, 64);
  EvalOptions opt;
  opt.batch = 3;
  opt.progress = false;
  const EvalResult cpu = evaluate_perplexity(m, w, Comm::local(), opt);
  ComputeDevice gpu;
  gpu.kind = DeviceKind::Cuda, gpu.ordinal = 0, gpu.description = "cuda:0";
  EvalResult dev;
  {
    DeviceScope scope(gpu);
    dev = evaluate_perplexity(m, w, Comm::local(), opt);
  }
  EXPECT_NEAR(dev.perplexity, cpu.perplexity, 1e-5 * cpu.perplexity);
  ASSERT_EQ(dev.window_nll.size(), cpu.window_nll.size());
  for (size_t i = 0; i < cpu.window_nll.size(); ++i) EXPECT_NEAR(dev.window_nll[i], cpu.window_nll[i], 1e-4) << i;
}

// Long sequences: the attention softmax's rows of 1100-1500 keys (the register kernel holding 8
// scores per thread; 40-token sequences take the 2-per-thread one) with and without a sliding
// window, block outputs and entropies against the CPU.
TEST_F(CudaForwardSeam, LongSequencesMatchTheCpu) {
  for (const char* name : {"llama_gqa", "sliding_window"}) {
    const std::string dir = test::scratch_dir(std::string("cuda_fwd_long_") + name);
    write_synthetic_model(dir, spec_for(name));
    LlamaWeights m(dir);
    ModelConfig cfg = m.config();
    if (std::string(name) == "sliding_window") cfg.sliding_window = 700;
    const int n_seq = 1, T = 1500, H = cfg.hidden_size;
    std::vector<int32_t> ids(n_seq * T);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 29 + 3) % cfg.vocab_size);
    std::vector<float> xc(ids.size() * H);
    m.embed(ids.data(), static_cast<int64_t>(ids.size()), xc.data());
    std::vector<float> xg = xc;
    LlamaForward cpu(cfg);
    std::unique_ptr<LlamaForward> gpu = make_cuda_forward(cfg, 0);
    std::unique_ptr<BlockWeights> w = m.load_block(0);
    Taps tc, tg;
    tc.entropy = tg.entropy = true;
    gpu->hold(*w);
    cpu.run_block(*w, xc.data(), n_seq, T, &tc);
    gpu->run_block(*w, xg.data(), n_seq, T, &tg);
    EXPECT_LT(max_rel(xg, xc), 1e-5) << name;
    ASSERT_EQ(tg.ent.size(), tc.ent.size());
    for (size_t i = 0; i < tc.ent.size(); ++i)
      EXPECT_NEAR(tg.ent[i], tc.ent[i], 1e-4 * std::max(1.0, tc.ent[i])) << name << " head " << i;
  }
}

// --compute-dtype bf16 (kernels/bf16_operands.cuh): the linears' weights rounded to bf16 once per
// held block, each GEMM's activation, Q/K/V and P rounded once, bf16 × bf16 GEMMs with fp32
// accumulation. On a model whose weights are bf16 (so only the activations' rounding differs from
// the CPU's fp32): blocks, head logits and a whole evaluation within bf16's error of the CPU, and
// not equal to it (the GEMMs did run in bf16). Sequences of 300 tokens: the attention's query chunk
// and P's rounding cover more than one 256-thread pass of the softmax.
TEST_F(CudaForwardSeam, Bf16ComputeIsWithinBf16RoundingOfTheCpu) {
  const std::string dir = test::scratch_dir("cuda_fwd_bf16");
  SyntheticModelSpec spec = spec_for("llama_gqa");
  spec.dtype = DType::BF16;
  write_synthetic_model(dir, spec);
  LlamaWeights m(dir);
  const ModelConfig& cfg = m.config();
  const int n_seq = 2, T = 300;
  std::vector<float> xc = embedded_ids(m, n_seq, T);
  // The CPU's outputs first (each block from the same input x0), outside the GPU's scope.
  const std::vector<float> x0 = xc;
  LlamaForward cpu(cfg);
  std::vector<std::vector<float>> yc;
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    std::unique_ptr<BlockWeights> w = m.load_block(l);
    xc = x0;
    cpu.run_block(*w, xc.data(), n_seq, T);
    yc.push_back(xc);
  }
  HeadWeights head = HeadWeights::load(m);
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < n_seq * T; i += 5) rows.push_back(i);
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<float> lc(n * cfg.vocab_size), lg(lc.size());
  cpu.head_logits(head, x0.data(), rows.data(), n, lc.data());
  ComputeDevice gpu;
  gpu.kind = DeviceKind::Cuda, gpu.ordinal = 0, gpu.description = "cuda:0", gpu.dtype = ComputeDtype::Bf16;
  DeviceScope scope(gpu);
  std::unique_ptr<LlamaForward> dev = make_cuda_forward(cfg, 0);
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    std::unique_ptr<BlockWeights> w = m.load_block(l);
    std::vector<float> xg = x0;
    dev->hold(*w);
    dev->run_block(*w, xg.data(), n_seq, T);
    const double r = max_rel(xg, yc[l]);
    EXPECT_LT(r, 2e-2) << "block " << l;
    EXPECT_GT(r, 1e-6) << "block " << l << ": the bf16 path gave fp32's result";
  }
  dev->hold(head);
  dev->head_logits(head, x0.data(), rows.data(), n, lg.data());
  EXPECT_LT(max_rel(lg, lc), 2e-2);
  EXPECT_GT(max_rel(lg, lc), 1e-6);
}

// QSWEEP_CUDA_ATTENTION=flash (kernels/flash_attention.cu) under --compute-dtype bf16 and tf32x3:
// blocks of head dimension 64, without and with a sliding window of 100, within the arithmetic's
// rounding of the GEMM path's attention (bf16 1e-2; tf32x3 1e-5, as fp32) and not bit-equal to it
// (the fused kernel ran); 300-token sequences: five query tiles, the last partial.
TEST_F(CudaForwardSeam, FlashAttentionMatchesTheGemmPath) {
  if (!cuda::flash_attention_supported(64, cuda::FlashArith::Bf16)) GTEST_SKIP() << "needs compute capability 8.0";
  const std::string dir = test::scratch_dir("cuda_fwd_flash");
  SyntheticModelSpec spec = spec_for("llama_gqa");
  spec.hidden = 256, spec.intermediate = 512;  // 4 heads of 64, 2 kv heads
  write_synthetic_model(dir, spec);
  LlamaWeights m(dir);
  const int n_seq = 2, T = 300;
  const std::vector<float> x0 = embedded_ids(m, n_seq, T);
  struct EnvGuard {
    ~EnvGuard() { unsetenv("QSWEEP_CUDA_ATTENTION"); }
  } guard;
  for (ComputeDtype dt : {ComputeDtype::Bf16, ComputeDtype::Tf32x3}) {
    ComputeDevice gpu;
    gpu.kind = DeviceKind::Cuda, gpu.ordinal = 0, gpu.description = "cuda:0", gpu.dtype = dt;
    DeviceScope scope(gpu);
    const double tol = dt == ComputeDtype::Bf16 ? 1e-2 : 1e-5;
    for (int window : {0, 100}) {
      ModelConfig cfg = m.config();
      cfg.sliding_window = window;
      std::vector<std::vector<float>> out[2];
      for (int flash = 0; flash < 2; ++flash) {
        setenv("QSWEEP_CUDA_ATTENTION", flash ? "flash" : "gemm", 1);
        std::unique_ptr<LlamaForward> dev = make_cuda_forward(cfg, 0);
        for (int l = 0; l < cfg.num_hidden_layers; ++l) {
          std::unique_ptr<BlockWeights> w = m.load_block(l);
          std::vector<float> x = x0;
          dev->hold(*w);
          dev->run_block(*w, x.data(), n_seq, T);
          out[flash].push_back(x);
        }
      }
      for (int l = 0; l < cfg.num_hidden_layers; ++l) {
        EXPECT_LT(max_rel(out[1][l], out[0][l]), tol) << compute_dtype_name(dt) << " window " << window << " block " << l;
        EXPECT_NE(out[1][l], out[0][l]) << compute_dtype_name(dt) << " window " << window << " block " << l
                                        << ": the GEMM path ran twice";
      }
    }
  }
  setenv("QSWEEP_CUDA_ATTENTION", "fused", 1);
  EXPECT_THROW(make_cuda_forward(m.config(), 0), Error);  // names the variable and its values
}

// --compute-dtype tf32x3 (kernels/tf32x3.cuh): the linears' and the head's GEMMs as three TF32
// products of operands split into two TF32 parts. Blocks, head logits and a whole evaluation within
// fp32's own tolerance of the CPU (1e-5, as the fp32 path; one TF32 product would be ~1e-3 off),
// and not bit-equal to the fp32 path's (the split GEMMs did run).
TEST_F(CudaForwardSeam, Tf32x3ComputeMatchesTheCpuAsFp32Does) {
  const std::string dir = test::scratch_dir("cuda_fwd_tf32x3");
  SyntheticModelSpec spec = spec_for("llama_gqa");
  spec.hidden = 256, spec.intermediate = 512;
  write_synthetic_model(dir, spec);
  LlamaWeights m(dir);
  const ModelConfig& cfg = m.config();
  const int n_seq = 2, T = 200;
  const std::vector<float> x0 = embedded_ids(m, n_seq, T);
  HeadWeights head = HeadWeights::load(m);
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < n_seq * T; i += 3) rows.push_back(i);
  const int64_t n = static_cast<int64_t>(rows.size());
  // Each block from the same input; then the head: on the CPU, the fp32 GPU path and tf32x3.
  auto outputs = [&](LlamaForward& f) {
    std::vector<std::vector<float>> out;
    for (int l = 0; l < cfg.num_hidden_layers; ++l) {
      std::unique_ptr<BlockWeights> w = m.load_block(l);
      std::vector<float> x = x0;
      f.hold(*w);
      f.run_block(*w, x.data(), n_seq, T);
      out.push_back(x);
    }
    std::vector<float> lg(n * cfg.vocab_size);
    f.hold(head);
    f.head_logits(head, x0.data(), rows.data(), n, lg.data());
    out.push_back(lg);
    return out;
  };
  LlamaForward cpu(cfg);
  const auto yc = outputs(cpu);
  ComputeDevice gpu;
  gpu.kind = DeviceKind::Cuda, gpu.ordinal = 0, gpu.description = "cuda:0";
  std::vector<std::vector<float>> y32, y3;
  {
    DeviceScope scope(gpu);
    std::unique_ptr<LlamaForward> dev = make_cuda_forward(cfg, 0);
    y32 = outputs(*dev);
  }
  gpu.dtype = ComputeDtype::Tf32x3;
  {
    DeviceScope scope(gpu);
    std::unique_ptr<LlamaForward> dev = make_cuda_forward(cfg, 0);
    y3 = outputs(*dev);
  }
  for (size_t i = 0; i < yc.size(); ++i) {
    EXPECT_LT(max_rel(y3[i], yc[i]), 1e-5) << "output " << i << " (fp32 path: " << max_rel(y32[i], yc[i]) << ")";
    EXPECT_GT(max_rel(y3[i], y32[i]), 0.0) << "output " << i << ": tf32x3 gave the SGEMM path's bits";
  }
  std::vector<int32_t> doc(700);
  for (size_t i = 0; i < doc.size(); ++i) doc[i] = static_cast<int32_t>((i * 37 + 11) % cfg.vocab_size);
  const EvalWindows w = make_windows(Protocol::Gptq, doc, SpecialTokens{}, 64);
  EvalOptions opt;
  opt.batch = 3;
  opt.progress = false;
  const EvalResult rc = evaluate_perplexity(m, w, Comm::local(), opt);
  EvalResult rg;
  {
    DeviceScope scope(gpu);
    rg = evaluate_perplexity(m, w, Comm::local(), opt);
  }
  EXPECT_NEAR(rg.perplexity, rc.perplexity, 1e-5 * rc.perplexity);
}

// Calibration hidden states resident on the GPU for the whole run (within the per-device budget)
// give the same bits as a budget that keeps only part of them there (3 of the 4 chunks: the
// store's size less the propagation scratch), the last chunk moving per block, and both agree
// with the CPU: GPTQ with propagation, the statistics on the device.
TEST_F(CudaForwardSeam, ResidentCalibrationEqualsPartlyResident) {
  const std::string dir = test::scratch_dir("cuda_fwd_calib");
  write_synthetic_model(dir, spec_for("llama_gqa"));
  LlamaWeights m(dir);
  std::vector<int32_t> doc(3000);
  std::mt19937 rng(8);
  for (auto& t : doc) t = static_cast<int32_t>(3 + rng() % 90);
  const CalibWindows cw = sample_calib_windows(doc, {1}, 8, 32, 0, "test");
  struct Capture : QuantizeSink {
    std::vector<std::vector<uint8_t>> codes;
    std::vector<std::vector<double>> sum_sq;
    void on_block(const BlockResult& b) override {
      for (const auto& l : b.linears) codes.push_back(l.q.codes);
      for (int i = 0; i < kNumBlockInputs; ++i) sum_sq.push_back(b.stats->input(static_cast<BlockInput>(i)).sum_sq);
    }
  } cpu, resident, partial;
  QuantizeOptions opt;
  opt.method = parse_method("gptq");
  opt.grid = {3, 32, false};
  opt.calib_chunk = 2;
  opt.progress = false;
  quantize_model(m, cw, opt, Comm::local(), &cpu);
  ComputeDevice gpu;
  gpu.kind = DeviceKind::Cuda, gpu.ordinal = 0, gpu.description = "cuda:0";
  {
    DeviceScope scope(gpu);
    quantize_model(m, cw, opt, Comm::local(), &resident);
    opt.activation_budget = static_cast<int64_t>(cw.n) * 32 * m.config().hidden_size * 4;  // the store: 3 chunks + scratch
    quantize_model(m, cw, opt, Comm::local(), &partial);
  }
  EXPECT_EQ(resident.codes, partial.codes);
  EXPECT_EQ(resident.sum_sq, partial.sum_sq);
  ASSERT_EQ(resident.sum_sq.size(), cpu.sum_sq.size());
  for (size_t i = 0; i < cpu.sum_sq.size(); ++i)
    for (size_t c = 0; c < cpu.sum_sq[i].size(); ++c)
      EXPECT_NEAR(resident.sum_sq[i][c], cpu.sum_sq[i][c], 1e-4 * std::max(1.0, cpu.sum_sq[i][c])) << i << " " << c;
  ASSERT_EQ(resident.codes.size(), cpu.codes.size());
  size_t same = 0, all = 0;
  for (size_t i = 0; i < cpu.codes.size(); ++i)
    for (size_t k = 0; k < cpu.codes[i].size(); ++k) same += resident.codes[i][k] == cpu.codes[i][k], ++all;
  EXPECT_GT(static_cast<double>(same) / all, 0.99);  // fp32 rounding may move a code across a boundary
}

}  // namespace
}  // namespace qsweep
