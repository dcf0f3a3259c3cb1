// test_cuda_quant.cc — GPTQ (quant/gptq_cuda.cc over kernels/gptq.cu) and the spectrum's Gram
// eigenvalues (kernels/gram_eigen.cu) on a GPU against their CPU twins, through the same entry
// points the stages call (gptq_quantize, gram_eigenvalues) with the process device switched to
// CUDA. Built with QSWEEP_WITH_CUDA only; skipped without a GPU (all passed on an H200 on 2026-12-04: bench/gpu_runs/).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/device.h"
#include "dist/comm.h"
#include "qsweep/cuda/nccl_comm.h"
#include "stats/activation_stats.h"
#include "stats/exact_gram.h"
#include "qsweep/cuda/backend.h"
#include "qsweep/cuda/gram_error.h"
#include "quant/grid.h"
#include "quant/refine.h"
#include "quant/awq.h"
#include "quant/gptq.h"
#include "stats/gram_eigen.h"

namespace qsweep {
namespace {

class CudaQuantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << cuda::device_summary();
    gpu_.kind = DeviceKind::Cuda;
    gpu_.ordinal = 0;
    gpu_.description = "cuda:0";
  }
  ComputeDevice gpu_;
};

std::vector<float> normal(size_t n, unsigned seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST_F(CudaQuantTest, GptqMatchesTheCpu) {
  const int out = 96, in = 320, tokens = 512;
  const std::vector<float> w = normal(static_cast<size_t>(out) * in, 1, 0.05f);
  const std::vector<float> x = normal(static_cast<size_t>(tokens) * in, 2);
  std::vector<double> xtx(static_cast<size_t>(in) * in, 0.0);
  for (int t = 0; t < tokens; ++t)
    for (int i = 0; i < in; ++i)
      for (int j = 0; j < in; ++j) xtx[static_cast<size_t>(i) * in + j] += double(x[t * in + i]) * x[t * in + j];
  for (bool act_order : {false, true})
    for (int group : {64, -1}) {
      GridSpec g;
      g.bits = 3;
      g.group_size = group;
      GptqOptions o;
      o.act_order = act_order;
      const GptqResult cpu = gptq_quantize(w.data(), out, in, xtx, tokens, g, o);
      GptqResult dev;
      {
        DeviceScope scope(gpu_);
        dev = gptq_quantize(w.data(), out, in, xtx, tokens, g, o);
      }
      size_t same = 0;
      for (size_t i = 0; i < cpu.q.codes.size(); ++i) same += cpu.q.codes[i] == dev.q.codes[i];
      EXPECT_GE(double(same) / cpu.q.codes.size(), 0.999) << "act_order " << act_order << " group " << group;
      EXPECT_EQ(dev.damp_used, cpu.damp_used);
      ASSERT_EQ(dev.q.scales.size(), cpu.q.scales.size());
      for (size_t i = 0; i < cpu.q.scales.size(); ++i) EXPECT_NEAR(dev.q.scales[i], cpu.q.scales[i], 1e-6f * std::fabs(cpu.q.scales[i]));
      EXPECT_EQ(dev.q.g_idx, cpu.q.g_idx);
    }
}

TEST_F(CudaQuantTest, GramEigenvaluesMatchTheCpu) {
  for (auto [out, in] : {std::pair<int, int>{200, 64}, {48, 150}}) {
    const std::vector<float> w = normal(static_cast<size_t>(out) * in, 3);
    const std::vector<double> cpu = gram_eigenvalues(w.data(), out, in);
    std::vector<double> dev;
    {
      DeviceScope scope(gpu_);
      dev = gram_eigenvalues(w.data(), out, in);
    }
    ASSERT_EQ(dev.size(), cpu.size());
    for (size_t i = 0; i < cpu.size(); ++i) EXPECT_NEAR(dev[i], cpu[i], 1e-9 * cpu[0]) << out << "x" << in << " #" << i;
  }
}

// AWQ's search with its output errors on the GPU: the CPU's errors to fp64 rounding, the same
// choice of exponent.
TEST_F(CudaQuantTest, AwqSearchMatchesTheCpu) {
  const int out = 80, in = 192, tokens = 300;
  const std::vector<float> w = normal(static_cast<size_t>(out) * in, 5, 0.05f);
  std::vector<float> x = normal(static_cast<size_t>(tokens) * in, 6);
  for (int t = 0; t < tokens; ++t) x[static_cast<size_t>(t) * in + 7] *= 20.0f;  // an outlier channel
  std::vector<double> gram(static_cast<size_t>(in) * in, 0.0), sal(in, 0.0);
  for (int t = 0; t < tokens; ++t)
    for (int i = 0; i < in; ++i) {
      sal[i] += std::fabs(x[static_cast<size_t>(t) * in + i]) / tokens;
      for (int j = 0; j < in; ++j) gram[static_cast<size_t>(i) * in + j] += double(x[t * in + i]) * x[t * in + j];
    }
  GridSpec g;
  g.bits = 3;
  g.group_size = 64;
  const AwqSearch cpu = awq_search({w.data()}, {out}, in, gram, sal, {g}, 20);
  AwqSearch dev;
  {
    DeviceScope scope(gpu_);
    dev = awq_search({w.data()}, {out}, in, gram, sal, {g}, 20);
  }
  EXPECT_EQ(dev.alpha, cpu.alpha);
  ASSERT_EQ(dev.errors.size(), cpu.errors.size());
  for (size_t i = 0; i < cpu.errors.size(); ++i) EXPECT_NEAR(dev.errors[i], cpu.errors[i], 1e-9 * cpu.errors[i]);
}

// Σxxᵀ accumulated on the device: the CPU's total to fp64 rounding of the chunks' xᵀx, and the
// same bits whatever the order the chunks arrive in (exact integer sums).
TEST_F(CudaQuantTest, ExactGramOnTheDeviceMatchesTheCpuAndIsOrderFree) {
  const int C = 130, rows = 100;  // not a multiple of the 64-column tiles
  std::vector<std::vector<float>> chunks;
  for (unsigned k = 0; k < 3; ++k) chunks.push_back(normal(static_cast<size_t>(rows) * C, 10 + k));
  const Comm one = Comm::local();
  ExactGram cpu(C);
  for (const auto& c : chunks) cpu.add(c.data(), rows);
  const std::vector<double> want = cpu.to_double(cpu.agree_status(one));
  auto on_device = [&](const std::vector<int>& order) {
    ExactGram g(C);
    for (int k : order) {
      auto* d = static_cast<float*>(cuda::device_copy(chunks[k].data(), chunks[k].size() * sizeof(float)));
      g.add_device(d, rows, 0);
      cuda::device_free(d);
    }
    const int status = g.agree_status(one);
    g.allreduce(one);
    return g.to_double(status);
  };
  const std::vector<double> a = on_device({0, 1, 2}), b = on_device({2, 0, 1});
  EXPECT_EQ(a, b);
  double scale = 0;
  for (int c = 0; c < C; ++c) scale = std::max(scale, want[static_cast<size_t>(c) * C + c]);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(a[i], want[i], 1e-12 * scale) << i;
}

// RTN on the device (layers of 2^20 weights and more) gives the CPU's codes, scales and zeros bit
// for bit: asymmetric and symmetric grids, 2 to 8 bits, a short last group, whole-row groups.
TEST_F(CudaQuantTest, RtnCodesAreTheCpus) {
  const int out = 1024, in = 1030;
  std::vector<float> w = normal(static_cast<size_t>(out) * in, 41, 0.05f);
  for (int r = 0; r < out; r += 7) w[static_cast<size_t>(r) * in + 3] = 2.5f;  // outliers
  for (const GridSpec g : {GridSpec{4, 128, false}, GridSpec{3, 128, true}, GridSpec{2, 64, false},
                           GridSpec{8, -1, false}, GridSpec{4, -1, true}}) {
    const QuantizedLinear cpu = quantize_rtn(w.data(), out, in, g);
    QuantizedLinear dev;
    {
      DeviceScope scope(gpu_);
      dev = quantize_rtn(w.data(), out, in, g);
    }
    EXPECT_EQ(dev.codes, cpu.codes) << g.bits << " " << g.group_size << " " << g.sym;
    EXPECT_EQ(dev.scales, cpu.scales);
    EXPECT_EQ(dev.zeros, cpu.zeros);
  }
}

// Greedy-exact refinement on the device (layers of 2^16 weights and more) against the CPU's: the
// same objective before, only ever lowered, and the same moves except at near ties.
TEST_F(CudaQuantTest, GreedyExactRefinementMatchesTheCpu) {
  const int out = 256, in = 256, T = 600;
  const std::vector<float> w = normal(static_cast<size_t>(out) * in, 51, 0.05f);
  const std::vector<float> x = normal(static_cast<size_t>(T) * in, 52);
  std::vector<double> gram(static_cast<size_t>(in) * in, 0.0);
  gram_xtx(x.data(), T, in, gram.data());
  for (const double damp : {0.0, 1.0}) {
    const GridSpec g{3, 64, false};
    const QuantizedLinear base = quantize_rtn(w.data(), out, in, g);
    QuantizedLinear c = base, d = base;
    const RefineResult rc = refine_greedy_exact(c, w.data(), gram, damp);
    RefineResult rd;
    {
      DeviceScope scope(gpu_);
      rd = refine_greedy_exact(d, w.data(), gram, damp);
    }
    EXPECT_NEAR(rd.before, rc.before, 1e-9 * rc.before) << damp;
    EXPECT_LT(rd.after, rd.before);
    EXPECT_NEAR(rd.after, rc.after, 1e-3 * rc.after) << damp;
    EXPECT_NEAR(static_cast<double>(rd.moves), static_cast<double>(rc.moves), 0.01 * rc.moves + 2);
    size_t same = 0;
    for (size_t i = 0; i < c.codes.size(); ++i) same += c.codes[i] == d.codes[i];
    EXPECT_GT(static_cast<double>(same) / c.codes.size(), 0.99);
    EXPECT_EQ(d.scales, base.scales);
  }
}

// AWQ's candidate made on the device (scaled RTN, then ÷ s) is the CPU's ŵ bit for bit: its error
// equals the error of the CPU's ŵ uploaded, to the last bit, for asymmetric and symmetric grids, a
// short last group and whole-row groups.
TEST_F(CudaQuantTest, AwqCandidateOnTheDeviceIsTheCpusBitForBit) {
  const int out = 40, in = 200;
  const std::vector<float> w = normal(static_cast<size_t>(out) * in, 21, 0.05f);
  std::vector<float> s = normal(in, 22, 0.5f);
  for (float& v : s) v = 0.2f + std::fabs(v);
  const std::vector<float> x = normal(static_cast<size_t>(300) * in, 23);
  std::vector<double> gram(static_cast<size_t>(in) * in, 0.0);
  gram_xtx(x.data(), 300, in, gram.data());
  cuda::GramError dev(0, gram.data(), in);
  const int k = dev.add_weights(w.data(), out);
  for (const GridSpec g : {GridSpec{4, 64, false}, GridSpec{3, 64, true}, GridSpec{4, -1, false}}) {
    std::vector<float> scaled(w);
    for (int r = 0; r < out; ++r)
      for (int c = 0; c < in; ++c) scaled[static_cast<size_t>(r) * in + c] *= s[c];
    std::vector<float> back = quantize_rtn(scaled.data(), out, in, g).dequantize();
    for (int r = 0; r < out; ++r)
      for (int c = 0; c < in; ++c) back[static_cast<size_t>(r) * in + c] /= s[c];
    const double want = dev.error(w.data(), back.data(), out);
    EXPECT_EQ(dev.scaled_rtn_error(k, s.data(), g.bits, g.group_size, g.sym), want) << g.bits << " " << g.group_size;
    EXPECT_GT(want, 0.0);
  }
}

// AWQ's clipping search on the device against the CPU's (asymmetric and symmetric grids, a short
// last group, whole-row groups): the candidates' ŵ are the CPU's bits and only the error sums'
// order differs, so the chosen thresholds agree except at near ties.
TEST_F(CudaQuantTest, AwqClipMatchesTheCpu) {
  const int out = 48, in = 160, T = 400;
  std::mt19937 rng(31);
  std::student_t_distribution<float> heavy(2.0f);
  std::vector<float> w(static_cast<size_t>(out) * in);
  for (float& v : w) v = 0.05f * heavy(rng);
  const std::vector<float> x = normal(static_cast<size_t>(T) * in, 32);
  std::vector<double> gram(static_cast<size_t>(in) * in, 0.0);
  gram_xtx(x.data(), T, in, gram.data());
  for (const GridSpec g : {GridSpec{3, 64, false}, GridSpec{4, 64, true}, GridSpec{3, -1, false}}) {
    std::vector<float> c = w, d = w;
    const double sc = awq_clip(c.data(), out, in, gram, g);
    double sd;
    {
      DeviceScope scope(gpu_);
      sd = awq_clip(d.data(), out, in, gram, g);
    }
    size_t same = 0;
    for (size_t i = 0; i < c.size(); ++i) same += c[i] == d[i];
    EXPECT_GT(static_cast<double>(same) / c.size(), 0.99) << g.bits << " " << g.group_size;
    EXPECT_NEAR(sd, sc, 0.02) << g.bits << " " << g.group_size;
    EXPECT_GT(sc, 0.0);
  }
}

// The activation statistics on the device (kernels/input_stats.cu) against the CPU's, through
// BlockCalibStats as calibration feeds it: per channel bit for bit, the whole-matrix sums to
// rounding. Sequences of 40 rows (a full tile of 32 and a short one), outlier channels, two chunks.
TEST_F(CudaQuantTest, InputStatisticsMatchTheCpu) {
  ModelConfig cfg;
  cfg.hidden_size = 200, cfg.intermediate_size = 96, cfg.num_attention_heads = 2, cfg.head_dim = 16;
  cfg.num_key_value_heads = 2;
  const int T = 40, n_seq = 3, C = cfg.hidden_size;
  const int64_t rows = static_cast<int64_t>(n_seq) * T;
  static const Linear qkv[] = {Linear::Q, Linear::K, Linear::V};
  BlockCalibStats cpu(cfg, T, 0.5, false, ChunkRange{2, 0, 2}), gpu(cfg, T, 0.5, false, ChunkRange{2, 0, 2});
  EXPECT_FALSE(gpu.wants_host_input(Linear::Q));
  for (int chunk = 0; chunk < 2; ++chunk) {
    std::vector<float> x = normal(static_cast<size_t>(rows) * C, 10 + chunk);
    for (int64_t r = 0; r < rows; ++r) x[static_cast<size_t>(r) * C + 7] *= 60.0f;  // an outlier channel
    cpu.begin_chunk();
    gpu.begin_chunk();
    cpu.on_linear_input(LinearInput{0, qkv, 3, x.data(), rows, C});
    void* d = cuda::device_copy(x.data(), x.size() * sizeof(float));
    {
      DeviceScope scope(gpu_);
      gpu.on_linear_input(LinearInput{0, qkv, 3, nullptr, rows, C, static_cast<const float*>(d), 0});
    }
    cuda::device_free(d);
  }
  const Comm& one = Comm::local();
  cpu.reduce(one);
  gpu.reduce(one);
  const InputStats &c = cpu.input(BlockInput::Qkv), &g = gpu.input(BlockInput::Qkv);
  EXPECT_EQ(g.sum_sq, c.sum_sq);
  EXPECT_EQ(g.sum_abs, c.sum_abs);
  EXPECT_EQ(g.sum, c.sum);
  EXPECT_EQ(g.max_abs, c.max_abs);
  EXPECT_EQ(g.tokens, c.tokens);
  for (auto [a, b] : {std::pair{g.s1, c.s1}, {g.s2, c.s2}, {g.s3, c.s3}, {g.s4, c.s4}})
    EXPECT_NEAR(a, b, 1e-12 * std::max(1.0, std::fabs(b)));
  EXPECT_NEAR(g.n_below, c.n_below, 2.0);  // a value within rounding of a sequence's cut may flip
  EXPECT_GT(c.n_below, 0.0);
}

// NCCL itself, with the one-rank communicator a one-GPU machine can make: the limb split, the
// ncclAllReduce and the carries give back every 128-bit integer, negative ones included.
TEST_F(CudaQuantTest, NcclOneRankExactSumIsTheIdentity) {
  std::mt19937_64 rng(4);
  std::vector<unsigned __int128> v(5000);
  for (auto& x : v) x = (static_cast<unsigned __int128>(rng()) << 64) | rng();
  v[0] = static_cast<unsigned __int128>(-1), v[1] = 0, v[2] = static_cast<unsigned __int128>(1) << 127;
  void* d = cuda::device_copy(v.data(), v.size() * sizeof(v[0]));
  cuda::NcclComm comm(0, 1, 0, cuda::nccl_unique_id(), 60);
  int agreements = 0;
  comm.allreduce_sum_i128(d, v.size(), [&](const std::string& e) {
    EXPECT_EQ(e, "");
    ++agreements;
  });
  EXPECT_EQ(agreements, 1);  // one slice: one agreement before its collective
  EXPECT_FALSE(comm.broken());
  std::vector<unsigned __int128> back(v.size());
  cuda::device_to_host(back.data(), d, back.size() * sizeof(back[0]));
  cuda::device_free(d);
  EXPECT_TRUE(back == v);
}

// A failure agreed before the collective stops every rank before it enters NCCL: the
// communicator stays usable.
TEST_F(CudaQuantTest, NcclAgreedFailureBeforeTheCollectiveKeepsTheCommunicator) {
  std::vector<unsigned __int128> v(10, 3);
  void* d = cuda::device_copy(v.data(), v.size() * sizeof(v[0]));
  cuda::NcclComm comm(0, 1, 0, cuda::nccl_unique_id(), 60);
  EXPECT_THROW(comm.allreduce_sum_i128(d, v.size(), [](const std::string&) { throw std::runtime_error("peer failed"); }),
               std::runtime_error);
  EXPECT_FALSE(comm.broken());
  comm.allreduce_sum_i128(d, v.size(), [](const std::string&) {});
  std::vector<unsigned __int128> back(v.size());
  cuda::device_to_host(back.data(), d, back.size() * sizeof(back[0]));
  cuda::device_free(d);
  EXPECT_TRUE(back == v);
}

}  // namespace
}  // namespace qsweep
