// test_cuda_flash.cc — the fused attention kernels (kernels/flash_attention.cu) on the GPU against
// float64 on the same inputs: bf16 (head dimensions 32, 64, 128; bf16 inputs) and tf32x3 (32, 64;
// fp32 inputs), GQA, a partial last query tile, with and without a sliding window that starts
// inside a key tile. Built with QSWEEP_WITH_CUDA only; the kernel tests skip without a GPU (not
// yet run on one: README; test_flash_emulated.cc runs the same source on the host).
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
  EXPECT_FALSE(qc::flash_attention_supported(48, qc::FlashArith::Bf16));
  EXPECT_FALSE(qc::flash_attention_supported(256, qc::FlashArith::Bf16));
  EXPECT_FALSE(qc::flash_attention_supported(128, qc::FlashArith::Tf32x3));
  if (qc::device_count() != 0) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_FALSE(qc::flash_attention_supported(64, qc::FlashArith::Bf16));
  std::vector<float> qkv(4 * 64), out(2 * 64);
  EXPECT_THROW(qc::flash_attention(qkv.data(), out.data(), 1, 1, 2, 1, 64, 0, qc::FlashArith::Bf16),
               std::invalid_argument);
}

// max_tol, mean_tol: the largest and the mean |out − ref| allowed, in units of max |v|.
void check(qc::FlashArith arith, int D, int window, double max_tol, double mean_tol) {
  const int n_seq = 2, T = 200, nh = 4, nkv = 2;
  const bool fp32 = arith == qc::FlashArith::Tf32x3;
  const std::vector<float> qkv =
      test::attention_inputs(n_seq, T, nh, nkv, D, static_cast<unsigned>(D * 1000 + window), fp32);
  std::vector<float> out(static_cast<size_t>(n_seq) * T * nh * D);
  qc::flash_attention(qkv.data(), out.data(), n_seq, T, nh, nkv, D, window, arith);
  const test::AttentionError e =
      test::attention_error(qkv, out, test::attention_reference(qkv, n_seq, T, nh, nkv, D, window), nh, nkv, D);
  const char* name = fp32 ? "tf32x3" : "bf16";
  EXPECT_TRUE(e.finite) << name << " D " << D << " window " << window;
  EXPECT_LT(e.max_err, max_tol * e.vmax) << name << " D " << D << " window " << window;
  EXPECT_LT(e.mean_err, mean_tol * e.vmax) << name << " D " << D << " window " << window;
  std::printf("[   INFO   ] flash %s D=%d window=%d: max |err| %.2e, mean %.2e (max |v| %.2f)\n", name, D, window,
              e.max_err, e.mean_err, e.vmax);
}

TEST(CudaFlash, Bf16MatchesFloat64OnTheSameBf16Inputs) {
  if (qc::device_count() == 0) GTEST_SKIP() << qc::device_summary();
  if (!qc::flash_attention_supported(64, qc::FlashArith::Bf16)) GTEST_SKIP() << "needs compute capability 8.0";
  for (int D : {32, 64, 128})
    for (int window : {0, 70}) check(qc::FlashArith::Bf16, D, window, 4e-3, 5e-4);  // P's bf16 rounding
}

TEST(CudaFlash, Tf32x3MatchesFloat64AsFp32Does) {
  if (qc::device_count() == 0) GTEST_SKIP() << qc::device_summary();
  if (!qc::flash_attention_supported(64, qc::FlashArith::Tf32x3)) GTEST_SKIP() << "needs compute capability 8.0";
  for (int D : {32, 64})
    for (int window : {0, 70}) check(qc::FlashArith::Tf32x3, D, window, 2e-5, 2e-6);  // one TF32 product: ~1e-3
}

}  // namespace
