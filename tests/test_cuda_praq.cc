// test_cuda_praq.cc — Robust-PRAQ's importance on the GPU (PraqAccumulator::add_device over
// kernels/praq.cu) against the CPU's add(): without noise and with three noisy draws, over more
// rows than one device tile (the draws continue across tiles in the CPU's order), two chunks.
// Built with QSWEEP_WITH_CUDA only; skipped without a GPU (all passed on an H200 on 2026-12-04: bench/gpu_runs/).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/device.h"
#include "grad_check.h"
#include "qsweep/cuda/backend.h"
#include "qsweep/cuda/praq.h"
#include "stats/activation_stats.h"
#include "stats/praq.h"

namespace qsweep {
namespace {

std::vector<float> normal(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return test::randn(n, rng);
}

class CudaPraq : public ::testing::TestWithParam<double> {};

TEST_P(CudaPraq, DeviceImportanceMatchesTheCpu) {
  if (cuda::device_count() == 0) GTEST_SKIP() << cuda::device_summary();
  const int H = 48, I = 80;
  const int64_t rows = cuda::PraqDevice::kMaxRows + 476;  // two tiles
  const std::vector<float> wg = normal(static_cast<size_t>(I) * H, 1), wu = normal(wg.size(), 2);
  PraqSpec s;
  s.w_gate = wg.data(), s.w_up = wu.data(), s.inter = I, s.hidden = H;
  s.noise_std = GetParam(), s.samples = 3, s.seed = 7, s.block = 2;
  PraqAccumulator cpu(s), gpu(s);
  std::vector<double> a(H, 0.0), b(H, 0.0);
  for (int64_t chunk = 0; chunk < 2; ++chunk) {
    std::vector<float> x = normal(static_cast<size_t>(rows) * H, 10 + static_cast<uint64_t>(chunk));
    for (int64_t t = 0; t < rows; t += 3) x[static_cast<size_t>(t) * H + 5] *= 40.0f;  // a loud channel
    cpu.add(x.data(), rows, chunk, a.data());
    void* d = cuda::device_copy(x.data(), x.size() * sizeof(float));
    gpu.add_device(static_cast<const float*>(d), rows, chunk, 0, b.data());
    cuda::device_free(d);
  }
  for (int j = 0; j < H; ++j) {
    EXPECT_GT(a[j], 0.0);
    EXPECT_NEAR(b[j], a[j], 1e-4 * a[j]) << "channel " << j;  // the GEMMs' fp32 rounding only
  }
}

INSTANTIATE_TEST_SUITE_P(Noise, CudaPraq, ::testing::Values(0.0, 0.1));

// With PRAQ on, calibration's statistics no longer ask a device forward for a host copy of the
// gate/up input (it was copied back at every block and chunk).
TEST(CudaPraqStats, NoHostCopyOfTheGateUpInput) {
  ModelConfig cfg;
  cfg.hidden_size = 16, cfg.intermediate_size = 24, cfg.num_attention_heads = 2, cfg.num_key_value_heads = 2;
  const std::vector<float> wg = normal(24 * 16, 3), wu = normal(24 * 16, 4);
  PraqSpec s;
  s.w_gate = wg.data(), s.w_up = wu.data(), s.inter = 24, s.hidden = 16;
  BlockCalibStats st(cfg, 8, 0.5, false, ChunkRange{1, 0, 1}, &s);
  EXPECT_FALSE(st.wants_host_input(Linear::Gate));
}

}  // namespace
}  // namespace qsweep
