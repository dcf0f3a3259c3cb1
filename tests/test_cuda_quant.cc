// test_cuda_quant.cc — GPTQ (quant/gptq_cuda.cc over kernels/gptq.cu) and the spectrum's Gram
// eigenvalues (kernels/gram_eigen.cu) on a GPU against their CPU twins, through the same entry
// points the stages call (gptq_quantize, gram_eigenvalues) with the process device switched to
// CUDA. Built with QSWEEP_WITH_CUDA only; skipped without a GPU (not yet run on one: README).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/device.h"
#include "qsweep/cuda/backend.h"
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

}  // namespace
}  // namespace qsweep
