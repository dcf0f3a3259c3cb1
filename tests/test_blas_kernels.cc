// test_blas_kernels.cc — the OpenBLAS kernel decision: CPU flags and the library's choice in,
// the family qsweep switches to (or none) out.
#include <gtest/gtest.h>

#include "core/blas_kernels.h"

namespace qsweep {
namespace {

CpuFeatures avx512(bool bf16) {
  CpuFeatures f;
  f.avx = f.avx2 = f.fma = f.avx512f = f.avx512bw = f.avx512dq = f.avx512vl = true;
  f.avx512bf16 = bf16;
  return f;
}

TEST(BlasKernels, LevelsOfFamiliesAndCpus) {
  EXPECT_EQ(blas_core_level("Prescott"), 0);
  EXPECT_EQ(blas_core_level("sandybridge"), 1);
  EXPECT_EQ(blas_core_level("HASWELL"), 2);
  EXPECT_EQ(blas_core_level("Zen"), 2);
  EXPECT_EQ(blas_core_level("SkylakeX"), 3);
  EXPECT_EQ(blas_core_level("Cooperlake"), 3);
  EXPECT_EQ(blas_core_level("NEOVERSEN1"), -1);  // another architecture: never touched
  EXPECT_EQ(cpu_simd_level(CpuFeatures{}), 0);
  CpuFeatures avx;
  avx.avx = true;
  EXPECT_EQ(cpu_simd_level(avx), 1);
  CpuFeatures avx2 = avx;
  avx2.avx2 = avx2.fma = true;
  EXPECT_EQ(cpu_simd_level(avx2), 2);
  EXPECT_EQ(cpu_simd_level(avx512(false)), 3);
  CpuFeatures partial = avx512(false);
  partial.avx512bw = false;  // AVX-512 F without BW: OpenBLAS's SkylakeX kernels need BW/DQ/VL
  EXPECT_EQ(cpu_simd_level(partial), 2);
}

TEST(BlasKernels, ChoosesTheNewestFamilyTheCpuRuns) {
  // The machine: Xeon family 6 model 207 (AVX-512 with BF16), library chose Prescott.
  EXPECT_EQ(choose_blas_core("Prescott", avx512(true)), "Cooperlake");
  EXPECT_EQ(choose_blas_core("Prescott", avx512(false)), "SkylakeX");
  EXPECT_EQ(choose_blas_core("Haswell", avx512(false)), "SkylakeX");
  CpuFeatures avx2;
  avx2.avx = avx2.avx2 = avx2.fma = true;
  EXPECT_EQ(choose_blas_core("Prescott", avx2), "Haswell");
  EXPECT_EQ(choose_blas_core("Nehalem", avx2), "Haswell");
  CpuFeatures zen = avx2;  // an AMD CPU the library does not know: its AVX2 family is "Zen" there
  zen.amd = true;
  EXPECT_EQ(choose_blas_core("Prescott", zen), "Zen");
  CpuFeatures zen4 = avx512(true);
  zen4.amd = true;
  EXPECT_EQ(choose_blas_core("Zen", zen4), "Cooperlake");
  CpuFeatures avx;
  avx.avx = true;
  EXPECT_EQ(choose_blas_core("Core2", avx), "Sandybridge");
  // Nothing to do: already the best, newer than the CPU, unknown, or a CPU without AVX.
  EXPECT_EQ(choose_blas_core("Cooperlake", avx512(true)), "");
  EXPECT_EQ(choose_blas_core("SkylakeX", avx512(true)), "");  // same level: the library's choice stands
  EXPECT_EQ(choose_blas_core("Zen", avx2), "");
  EXPECT_EQ(choose_blas_core("SkylakeX", avx2), "");
  EXPECT_EQ(choose_blas_core("ARMV8", avx512(true)), "");
  EXPECT_EQ(choose_blas_core("Prescott", CpuFeatures{}), "");
}

}  // namespace
}  // namespace qsweep
