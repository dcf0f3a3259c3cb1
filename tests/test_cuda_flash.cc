// test_cuda_flash.cc — --compute-dtype bf16's fused attention kernel (kernels/flash_attention.cu)
// against float64 on the same bf16-rounded q, k, v: head dimensions 32, 64 and 128, GQA, a partial
// last query tile, with and without a sliding window that starts inside a key tile. Built with
// QSWEEP_WITH_CUDA only; the kernel tests skip without a GPU (not yet run on one: README).
#include <gtest/gtest.h>

#include <cstdio>
#include <stdexcept>
#include <vector>

#include "attention_reference.h"
#include "qsweep/cuda/backend.h"

namespace {

namespace qc = qsweep::cuda;
namespace test = qsweep::test;

TEST(CudaFlash, RefusesHeadDimensionsAndDevicesItCannotServe) {
  EXPECT_FALSE(qc::flash_attention_supported(48));
  EXPECT_FALSE(qc::flash_attention_supported(256));
  if (qc::device_count() != 0) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_FALSE(qc::flash_attention_supported(64));
  std::vector<float> qkv(4 * 64), out(2 * 64);
  EXPECT_THROW(qc::flash_attention_bf16(qkv.data(), out.data(), 1, 1, 2, 1, 64, 0), std::invalid_argument);
}

TEST(CudaFlash, MatchesFloat64OnTheSameBf16Inputs) {
  if (qc::device_count() == 0) GTEST_SKIP() << qc::device_summary();
  if (!qc::flash_attention_supported(64)) GTEST_SKIP() << "the fused kernel needs compute capability 8.0";
  const int n_seq = 2, T = 200, nh = 4, nkv = 2;
  for (int D : {32, 64, 128})
    for (int window : {0, 70}) {
      const std::vector<float> qkv = test::attention_inputs(n_seq, T, nh, nkv, D, static_cast<unsigned>(D * 1000 + window));
      std::vector<float> out(static_cast<size_t>(n_seq) * T * nh * D);
      qc::flash_attention_bf16(qkv.data(), out.data(), n_seq, T, nh, nkv, D, window);
      const test::AttentionError e =
          test::attention_error(qkv, out, test::attention_reference(qkv, n_seq, T, nh, nkv, D, window), nh, nkv, D);
      // P's bf16 rounding: at most 2⁻⁸ of Σ p·|v| per output, far less on average.
      EXPECT_TRUE(e.finite) << "D " << D << " window " << window;
      EXPECT_LT(e.max_err, 4e-3 * e.vmax) << "D " << D << " window " << window;
      EXPECT_LT(e.mean_err, 5e-4 * e.vmax) << "D " << D << " window " << window;
      std::printf("[   INFO   ] flash D=%d window=%d: max |err| %.2e, mean %.2e (max |v| %.2f)\n", D, window,
                  e.max_err, e.mean_err, e.vmax);
    }
}

}  // namespace
