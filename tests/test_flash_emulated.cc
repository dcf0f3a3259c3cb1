// test_flash_emulated.cc — the fused attention kernels' source (kernels/flash_attention_body.cuh)
// run on the host by tests/flash_emulator.h, against float64 on the same inputs: bf16 (head
// dimensions 32, 64, 128) and tf32x3 (32, 64: fp32 inputs, so that the split's small parts are
// not zero), GQA, a partial last query tile, with and without a sliding window that starts inside
// a key tile. Runs in every build (no CUDA needed): until the kernels have run on a GPU (README),
// this is what checks their indices, masks, barriers, splits and online softmax.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "attention_reference.h"
#include "flash_emulator.h"

namespace qsweep {
namespace {

using cuda::detail::flash::Bf16Arith;
using cuda::detail::flash::Tf32x3Arith;

// max_tol, mean_tol: the largest and the mean |out − ref| allowed, in units of max |v|.
template <class Arith>
void check_emulated(int window, double max_tol, double mean_tol) {
  constexpr int D = Arith::kD;
  constexpr bool fp32 = std::is_same<typename Arith::E, float>::value;
  const int n_seq = 1, T = 150, nh = 2, nkv = 1;
  const std::vector<float> qkv =
      test::attention_inputs(n_seq, T, nh, nkv, D, static_cast<unsigned>(D * 1000 + window), fp32);
  std::vector<float> out;
  const std::string violation = test::run_flash_emulated<Arith>(qkv, out, n_seq, T, nh, nkv, window);
  const char* name = fp32 ? "tf32x3" : "bf16";
  EXPECT_EQ(violation, "") << name << " D " << D << " window " << window;
  const test::AttentionError e =
      test::attention_error(qkv, out, test::attention_reference(qkv, n_seq, T, nh, nkv, D, window), nh, nkv, D);
  EXPECT_TRUE(e.finite) << name << " D " << D << " window " << window << ": an output was not written";
  EXPECT_LT(e.max_err, max_tol * e.vmax) << name << " D " << D << " window " << window;
  EXPECT_LT(e.mean_err, mean_tol * e.vmax) << name << " D " << D << " window " << window;
  std::printf("[   INFO   ] emulated %s D=%d window=%d: max |err| %.2e, mean %.2e (max |v| %.2f)\n", name, D, window,
              e.max_err, e.mean_err, e.vmax);
}

// Both windows (none; 70, which starts inside a key tile) for each head dimension.
template <template <int> class Arith, int... Ds>
void check_all(double max_tol, double mean_tol) {
  for (int window : {0, 70}) (check_emulated<Arith<Ds>>(window, max_tol, mean_tol), ...);
}

// bf16: P's rounding, at most 2⁻⁸ of Σ p·|v| per output, far less on average.
TEST(FlashEmulated, Bf16MatchesFloat64) { check_all<Bf16Arith, 32, 64, 128>(4e-3, 5e-4); }

// tf32x3: fp32-class (one TF32 product would be ~1e-3 off; the emulated mma sums in fp32).
TEST(FlashEmulated, Tf32x3MatchesFloat64) { check_all<Tf32x3Arith, 32, 64>(2e-5, 2e-6); }

}  // namespace
}  // namespace qsweep
