// dtype.h — storage dtypes of checkpoints (F32, F16, BF16 and the other safetensors names) and
// exact conversions to fp32 compute. bf16 is the top half of an fp32; fp16 is converted bit by
// bit (subnormals, inf, NaN included) so results never depend on the CPU's F16C support.
// Rounding to bf16/fp16 is round-to-nearest-even, the rule PyTorch and numpy use.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace qsweep {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

// Parses a safetensors dtype name ("F32", "BF16", ...); returns false for an unknown name.
bool parse_dtype(const std::string& name, DType* out);
const char* dtype_name(DType t);
size_t dtype_size(DType t);
// True for the dtypes qsweep computes from (F32, F16, BF16).
inline bool dtype_is_float_storage(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float f16_to_f32(uint16_t h);
// Round-to-nearest-even; NaN stays NaN, values beyond the range become +-inf.
uint16_t f32_to_bf16(float f);
uint16_t f32_to_f16(float f);

// Converts n values stored as `t` at `src` (possibly unaligned) to fp32 in `dst`.
void convert_to_f32(DType t, const void* src, float* dst, size_t n);

}  // namespace qsweep
