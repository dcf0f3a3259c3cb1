// test_flash_emulated.cc — the fused bf16 attention kernel's source (kernels/flash_attention_body.cuh)
// run on the host by tests/flash_emulator.h, against float64 on the same bf16 inputs: head
// dimensions 32, 64 and 128, GQA, a partial last query tile, with and without a sliding window
// that starts inside a key tile. Runs in every build (no CUDA needed): until the kernel has run on
// a GPU (README), this is what checks its indices, masks, barriers and online softmax.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "attention_reference.h"
#include "flash_emulator.h"

namespace qsweep {
namespace {

template <int D>
void check_emulated(int window) {
  const int n_seq = 1, T = 150, nh = 2, nkv = 1;
  const std::vector<float> qkv = test::attention_inputs(n_seq, T, nh, nkv, D, static_cast<unsigned>(D * 1000 + window));
  std::vector<float> out;
  const std::string violation = test::run_flash_emulated<D>(qkv, out, n_seq, T, nh, nkv, window);
  EXPECT_EQ(violation, "") << "D " << D << " window " << window;
  const test::AttentionError e =
      test::attention_error(qkv, out, test::attention_reference(qkv, n_seq, T, nh, nkv, D, window), nh, nkv, D);
  EXPECT_TRUE(e.finite) << "D " << D << " window " << window << ": an output was not written";
  // P's bf16 rounding: at most 2⁻⁸ of Σ p·|v| per output, far less on average.
  EXPECT_LT(e.max_err, 4e-3 * e.vmax) << "D " << D << " window " << window;
  EXPECT_LT(e.mean_err, 5e-4 * e.vmax) << "D " << D << " window " << window;
  std::printf("[   INFO   ] emulated flash D=%d window=%d: max |err| %.2e, mean %.2e (max |v| %.2f)\n", D, window,
              e.max_err, e.mean_err, e.vmax);
}

TEST(FlashEmulated, HeadDim32MatchesFloat64) {
  check_emulated<32>(0);
  check_emulated<32>(70);
}

TEST(FlashEmulated, HeadDim64MatchesFloat64) {
  check_emulated<64>(0);
  check_emulated<64>(70);
}

TEST(FlashEmulated, HeadDim128MatchesFloat64) {
  check_emulated<128>(0);
  check_emulated<128>(70);
}

}  // namespace
}  // namespace qsweep
