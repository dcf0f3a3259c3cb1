// qsweep/cuda/tf32_split.h — --compute-dtype tf32x3: an fp32 number as the sum of two TF32
// numbers (10 explicit mantissa bits each), the arithmetic of "3xTF32" fp32 emulation on tensor
// cores: x = big + small + e with big = tf32(x), small = tf32(x − big) and |e| ≤ 2⁻²²·|x|, so a
// product x·w = big_x·big_w + big_x·small_w + small_x·big_w + (small_x·small_w ≈ 2⁻²²·|x·w|,
// dropped) needs three TF32 products, each exact in the tensor cores' fp32 accumulator. The
// kernels (kernels/tf32x3.cu) and the CPU tests (tests/test_tf32_split.cc) share these functions.
// Plain C++ (host and device).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define QS_TF32_HD __host__ __device__
#else
#define QS_TF32_HD
#endif

namespace qsweep::cuda {

// x rounded to TF32 (1 sign, 8 exponent, 10 mantissa bits, kept in an fp32 whose low 13 bits are
// zero), round to nearest even; ±inf and NaN unchanged, overflow rounds to ±inf as fp32 would.
QS_TF32_HD inline float tf32_round(float x) {
  uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(x);
#else
  std::memcpy(&u, &x, sizeof u);
#endif
  if ((u & 0x7f800000u) != 0x7f800000u) {  // finite
    u += 0xfffu + ((u >> 13) & 1u);
    u &= 0xffffe000u;
  }
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
#endif
}

// The two TF32 parts of x: big + small represents x to within 2⁻²²·|x| (exactly when x has no
// more than 21 significant bits). x − big is exact in fp32 (big is x's nearest TF32 neighbour).
struct Tf32Pair {
  float big, small;
};
QS_TF32_HD inline Tf32Pair tf32_split(float x) {
  const float big = tf32_round(x);
  if (big - big != 0.0f) return {big, 0.0f};  // ±inf / NaN (or overflow): no residual
  return {big, tf32_round(x - big)};
}

}  // namespace qsweep::cuda
