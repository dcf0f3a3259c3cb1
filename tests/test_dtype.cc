// test_dtype.cc — the fp16/bf16 <-> fp32 conversions and dtype names of src/core/dtype.h.
//
// Every checkpoint value passes through these functions, and synthetic checkpoints are written
// with f32_to_bf16 / f32_to_f16, so they must be exact: widening is lossless for all 65536 bit
// patterns, narrowing is round-to-nearest-even (the PyTorch / numpy rule, so our files match
// theirs bit for bit), overflow gives inf, fp16 subnormals round correctly and NaN stays NaN.
// Expected values below are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace qsweep {
namespace {

float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
bool f16_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0; }
bool bf16_is_nan(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x007fu) != 0; }

// ---- widening: exact for every bit pattern ----------------------------------------------------

TEST(DType, F16RoundTripsAllBitPatterns) {
  int nans = 0;
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = f16_to_f32(h);
    if (f16_is_nan(h)) {
      ++nans;
      ASSERT_TRUE(std::isnan(f)) << "f16 0x" << std::hex << i;
      ASSERT_TRUE(f16_is_nan(f32_to_f16(f))) << "f16 NaN 0x" << std::hex << i << " lost NaN-ness";
      ASSERT_EQ(std::signbit(f), (h & 0x8000u) != 0) << "f16 0x" << std::hex << i;
      continue;
    }
    ASSERT_FALSE(std::isnan(f)) << "f16 0x" << std::hex << i;
    ASSERT_EQ(f32_to_f16(f), h) << "f16 0x" << std::hex << i << " -> " << f << " -> 0x"
                                << f32_to_f16(f);
  }
  EXPECT_EQ(nans, 2 * 1023);  // 2 signs x 1023 non-zero mantissas with exponent 31
}

TEST(DType, F16WideningKnownValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x3555), bits_f32(0x3eaaa000));  // 0.333251953125, mantissa copied
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);               // largest finite half
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(f16_to_f32(0x0200), std::ldexp(1.0f, -15));
  EXPECT_EQ(f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(f32_bits(f16_to_f32(0x8000)), 0x80000000u);  // -0.0 keeps its sign
  EXPECT_EQ(f32_bits(f16_to_f32(0x0000)), 0x00000000u);
}

TEST(DType, BF16RoundTripsAllBitPatterns) {
  int nans = 0;
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = bf16_to_f32(h);
    ASSERT_EQ(f32_bits(f), i << 16) << "bf16 is the top half of an fp32";
    if (bf16_is_nan(h)) {
      ++nans;
      ASSERT_TRUE(std::isnan(f));
      ASSERT_TRUE(bf16_is_nan(f32_to_bf16(f))) << "bf16 NaN 0x" << std::hex << i << " lost NaN-ness";
      continue;
    }
    ASSERT_EQ(f32_to_bf16(f), h) << "bf16 0x" << std::hex << i;
  }
  EXPECT_EQ(nans, 2 * 127);
}

// ---- narrowing to bf16 (8 significant bits: ulp(1) = 2^-7) -------------------------------------

TEST(DType, BF16RoundsToNearestEven) {
  // 1 + 2^-8 (fp32 0x3f808000) is exactly halfway between 1.0 (0x3f80, mantissa 0: even) and
  // 1 + 2^-7 (0x3f81, odd): ties to even -> 1.0.
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_bits(1.0f + std::ldexp(1.0f, -8)), 0x3f808000u);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 (0x3f81, odd) and 1 + 2^-6 (0x3f82, even) -> 0x3f82.
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  // Just above the first tie (1 + 2^-8 + 2^-20) rounds up; just below (0x3f807fff) rounds down.
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(bits_f32(0x3f807fffu)), 0x3f80);
  // Negative ties mirror the positive ones (sign-magnitude).
  EXPECT_EQ(f32_to_bf16(-(1.0f + std::ldexp(1.0f, -8))), 0xbf80);
  EXPECT_EQ(f32_to_bf16(-(1.0f + 3 * std::ldexp(1.0f, -8))), 0xbf82);
  // A round-up that carries into the exponent: 0x3fffffff is 2 - 2^-23, above the tie between
  // 0x3fff (2 - 2^-7) and 2.0, so it rounds to 2.0 (0x4000).
  EXPECT_EQ(f32_to_bf16(bits_f32(0x3fffffffu)), 0x4000);
  // Exact values are kept.
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(0.0f), 0x0000);
}

TEST(DType, BF16OverflowAndSpecials) {
  const float inf = std::numeric_limits<float>::infinity();
  // Largest bf16 is 0x7f7f = (2 - 2^-7) * 2^127. Halfway to 2^128 is (2 - 2^-8) * 2^127 = fp32
  // 0x7f7f8000; 0x7f7f is odd so the tie goes up -> inf (0x7f80). FLT_MAX also rounds to inf.
  EXPECT_EQ(f32_to_bf16(bits_f32(0x7f7f8000u)), 0x7f80);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(f32_to_bf16(bits_f32(0x7f7f7fffu)), 0x7f7f);  // just below the tie: largest finite
  EXPECT_EQ(f32_to_bf16(inf), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-inf), 0xff80);
  // A NaN whose payload lies only in the 16 dropped bits must not truncate to inf.
  EXPECT_TRUE(bf16_is_nan(f32_to_bf16(bits_f32(0x7f800001u))));
  EXPECT_TRUE(bf16_is_nan(f32_to_bf16(bits_f32(0xff800001u))));
  EXPECT_TRUE(bf16_is_nan(f32_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  // bf16 keeps fp32's exponent range; its smallest subnormal 0x0001 is 2^-133. The smallest
  // fp32 subnormal (2^-149) is below half of that -> 0; 0x00008000 (2^-134) is exactly half a
  // step: tie between 0 and 0x0001 -> 0 (even); 0x00018000 (1.5 steps) ties to 0x0002 (even).
  EXPECT_EQ(f32_to_bf16(bits_f32(0x00000001u)), 0x0000);
  EXPECT_EQ(f32_to_bf16(bits_f32(0x00008000u)), 0x0000);
  EXPECT_EQ(f32_to_bf16(bits_f32(0x00018000u)), 0x0002);
}

// ---- narrowing to f16 (11 significant bits: ulp(1) = 2^-10) ------------------------------------

TEST(DType, F16RoundsToNearestEven) {
  // 1 + 2^-11 is halfway between 1.0 (0x3c00, even) and 1 + 2^-10 (0x3c01) -> 0x3c00.
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3*2^-11 is halfway between 0x3c01 (odd) and 1 + 2^-9 (0x3c02, even) -> 0x3c02.
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  // Just above / below the first tie.
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11) - std::ldexp(1.0f, -20)), 0x3c00);
  EXPECT_EQ(f32_to_f16(-(1.0f + 3 * std::ldexp(1.0f, -11))), 0xbc02);
  // 2 - 2^-11 is halfway between 0x3fff (2 - 2^-10, mantissa all ones: odd) and 2.0 -> 0x4000.
  EXPECT_EQ(f32_to_f16(2.0f - std::ldexp(1.0f, -11)), 0x4000);
  // 0.1f (0x3dcccccd) -> 0x2e66 (numpy: np.float16(np.float32(0.1)).view(np.uint16) == 0x2e66).
  EXPECT_EQ(f32_to_f16(0.1f), 0x2e66);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
}

TEST(DType, F16OverflowToInf) {
  // Largest half 65504 = (2 - 2^-10) * 2^15, ulp 32 there. 65520 is halfway to 65536 and 65504's
  // mantissa (0x3ff) is odd, so the tie goes up -> inf. 65519 is below the tie -> 65504.
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-65520.0f), 0xfc00);
  EXPECT_EQ(f32_to_f16(-65519.0f), 0xfbff);
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_TRUE(f16_is_nan(f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
  // NaN payload only in the dropped low bits must still give a NaN, not inf.
  EXPECT_TRUE(f16_is_nan(f32_to_f16(bits_f32(0x7f800001u))));
  EXPECT_TRUE(f16_is_nan(f32_to_f16(bits_f32(0xff800001u))));
}

TEST(DType, F16Subnormals) {
  const float s = std::ldexp(1.0f, -24);  // the f16 subnormal step
  EXPECT_EQ(f32_to_f16(s), 0x0001);       // 2^-24 is representable
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // half a step: tie to even (0)
  EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -25)), 0x8000);
  EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);  // above the tie
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(f32_to_f16(1.5f * s), 0x0002);  // 1.5 steps: tie between 1 and 2 -> 2 (= 2^-23)
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.5f * s)), std::ldexp(1.0f, -23));
  EXPECT_EQ(f32_to_f16(2.5f * s), 0x0002);  // tie between 2 and 3 -> 2
  EXPECT_EQ(f32_to_f16(3.5f * s), 0x0004);  // tie between 3 and 4 -> 4
  EXPECT_EQ(f32_to_f16(2.75f * s), 0x0003);
  EXPECT_EQ(f32_to_f16(1023.0f * s), 0x03ff);  // largest subnormal
  // 1023.5 steps = 2^-14 - 2^-25: tie between 0x03ff (odd) and 0x0400 (smallest normal) -> 0x0400.
  EXPECT_EQ(f32_to_f16(1023.5f * s), 0x0400);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
}

// Property check over many random fp32 values in each format's range: the result is a nearest
// representable value, and on an exact tie its last mantissa bit is 0.
template <typename ToF32, typename FromF32>
void check_nearest(ToF32 to_f32, FromF32 from_f32, float max_finite, const char* what) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<uint32_t> bits(0, 0xffffffffu);
  int checked = 0;
  for (int it = 0; it < 200000; ++it) {
    const float x = bits_f32(bits(rng));
    if (!std::isfinite(x) || std::fabs(x) > max_finite) continue;
    const uint16_t h = from_f32(x);
    const double v = to_f32(h);
    const double err = std::fabs(static_cast<double>(x) - v);
    // Neighbours in magnitude with the same sign (h-1 and h+1 when not at the ends).
    const uint16_t mag = h & 0x7fffu, sign = h & 0x8000u;
    for (int d : {-1, 1}) {
      if ((mag == 0 && d < 0)) continue;
      const uint16_t nb = static_cast<uint16_t>(sign | (mag + d));
      const double vn = to_f32(nb);
      if (!std::isfinite(vn)) continue;
      const double en = std::fabs(static_cast<double>(x) - vn);
      ASSERT_LE(err, en) << what << ": " << x << " -> 0x" << std::hex << h << " but 0x" << nb
                         << " is nearer";
      if (err == en) ASSERT_EQ(h & 1u, 0u) << what << ": tie at " << x << " not rounded to even";
    }
    ++checked;
  }
  EXPECT_GT(checked, 1000);
}

TEST(DType, F16IsNearestOnRandomValues) {
  check_nearest(f16_to_f32, f32_to_f16, 65504.0f, "f16");
}
TEST(DType, BF16IsNearestOnRandomValues) {
  check_nearest(bf16_to_f32, f32_to_bf16, bf16_to_f32(0x7f7f), "bf16");
}

// ---- names, sizes, bulk conversion -------------------------------------------------------------

TEST(DType, ParseKnownNamesAndSizes) {
  struct Known {
    const char* name;
    DType type;
    size_t size;
  };
  const Known known[] = {
      {"F32", DType::F32, 4},   {"F16", DType::F16, 2},         {"BF16", DType::BF16, 2},
      {"F64", DType::F64, 8},   {"I64", DType::I64, 8},         {"I32", DType::I32, 4},
      {"I16", DType::I16, 2},   {"I8", DType::I8, 1},           {"U8", DType::U8, 1},
      {"BOOL", DType::BOOL, 1}, {"F8_E4M3", DType::F8_E4M3, 1}, {"F8_E5M2", DType::F8_E5M2, 1},
  };
  for (const auto& k : known) {
    DType t = DType::BOOL;
    ASSERT_TRUE(parse_dtype(k.name, &t)) << k.name;
    EXPECT_EQ(t, k.type) << k.name;
    EXPECT_EQ(dtype_size(t), k.size) << k.name;
    EXPECT_EQ(std::string(dtype_name(t)), k.name);
  }
  EXPECT_TRUE(dtype_is_float_storage(DType::F32));
  EXPECT_TRUE(dtype_is_float_storage(DType::F16));
  EXPECT_TRUE(dtype_is_float_storage(DType::BF16));
  EXPECT_FALSE(dtype_is_float_storage(DType::F64));
  EXPECT_FALSE(dtype_is_float_storage(DType::I8));
}

TEST(DType, ParseUnknownNames) {
  for (const char* name : {"Q4", "f32", "bf16", "", "F32 ", "FP16", "F8", "U16", "I4"}) {
    DType t = DType::I64;
    EXPECT_FALSE(parse_dtype(name, &t)) << "'" << name << "' should not parse";
    EXPECT_EQ(t, DType::I64) << "parse_dtype wrote its output for unknown '" << name << "'";
  }
}

TEST(DType, ConvertToF32FromUnalignedSource) {
  // Values stored at an odd address (safetensors data may be unaligned).
  const float vals[] = {1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24)};
  std::vector<unsigned char> buf(1 + sizeof(vals));
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    const size_t es = dtype_size(t);
    for (size_t i = 0; i < 4; ++i) {
      if (t == DType::F32) {
        std::memcpy(buf.data() + 1 + 4 * i, &vals[i], 4);
      } else {
        const uint16_t h = t == DType::F16 ? f32_to_f16(vals[i]) : f32_to_bf16(vals[i]);
        std::memcpy(buf.data() + 1 + es * i, &h, 2);
      }
    }
    float out[4];
    convert_to_f32(t, buf.data() + 1, out, 4);
    for (size_t i = 0; i < 4; ++i) {
      // All four are exact in f32 and f16; in bf16 65504 rounds to 65536 and 2^-24 is exact.
      const float want = t == DType::BF16 ? bf16_to_f32(f32_to_bf16(vals[i])) : vals[i];
      EXPECT_EQ(out[i], want) << dtype_name(t) << " element " << i;
    }
  }
  float out[1];
  const int32_t iv = 7;
  EXPECT_THROW(convert_to_f32(DType::I32, &iv, out, 1), Error);
}

}  // namespace
}  // namespace qsweep
