// grid.h — the one integer grid every quantizer uses (RTN, AWQ, GPTQ), per group of G
// consecutive input columns of each output row, in fp32, round-half-to-even:
//   asymmetric: min = min(min_w, 0), max = max(max_w, 0) (the GPTQ reference widens the range to
//     hold zero), s = max(max − min, 1e-5) / (2^b − 1), z = clamp(round(−min/s), 0, 2^b − 1),
//     q = clamp(round(w/s) + z, 0, 2^b − 1), ŵ = (q − z)·s — AutoAWQ's formulas;
//   symmetric: s = max(max|w|, 1e-5) / (2^(b−1) − 1), q = clamp(round(w/s), −2^(b−1), 2^(b−1) − 1),
//     stored offset by 2^(b−1) as unsigned, so ŵ = (q − z)·s with z = 2^(b−1) in both cases.
// Codes are unsigned b-bit integers; with a zero point per group, ŵ = (q − z)·s rebuilds W exactly
// from (codes, scales, zeros) — which is how quantized files are read back.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace qsweep {

struct GridSpec {
  int bits = 4;
  int group_size = 128;  // -1: one group per row
  bool sym = false;
  int groups(int in) const { return group_size < 0 ? 1 : (in + group_size - 1) / group_size; }
  int group_len(int in) const { return group_size < 0 ? in : group_size; }
};

struct GroupParams {
  float scale;
  int zero;
};

// Grid parameters of n values.
GroupParams grid_params(const float* w, int n, const GridSpec& g);
// Code of one value on a grid.
inline int grid_code(float w, const GroupParams& p, int bits) {
  const int qmax = (1 << bits) - 1;
  int q = static_cast<int>(__builtin_nearbyintf(w / p.scale)) + p.zero;  // ties to even
  return q < 0 ? 0 : (q > qmax ? qmax : q);
}
inline float grid_value(int code, const GroupParams& p) { return static_cast<float>(code - p.zero) * p.scale; }

// A quantized linear layer: codes [out, in] (one byte each in memory), scales and zeros
// [out, groups]; g_idx [in] maps each column to its group (identity groups unless act-order).
struct QuantizedLinear {
  int out = 0, in = 0;
  GridSpec grid;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  std::vector<int32_t> zeros;
  std::vector<int32_t> g_idx;
  // ŵ [out, in] row-major.
  std::vector<float> dequantize() const;
};

// Round-to-nearest quantization of w [out, in] on the grid.
QuantizedLinear quantize_rtn(const float* w, int out, int in, const GridSpec& g);

// Bit-stream packing of b-bit codes: code i (flat row-major index) occupies bits [i·b, (i+1)·b)
// of a little-endian bit stream (byte k holds stream bits 8k..8k+7, bit 0 the least significant).
// numpy: np.unpackbits(packed, bitorder="little")[:n*b].reshape(n, b) @ (1 << np.arange(b)).
std::vector<uint8_t> pack_codes(const std::vector<uint8_t>& codes, int bits);
std::vector<uint8_t> unpack_codes(const std::vector<uint8_t>& packed, int bits, size_t n);

// Storage of one quantized layer in bits: codes + per group an fp16 scale and a b-bit zero.
double quantized_bits(int out, int in, const GridSpec& g);

}  // namespace qsweep
