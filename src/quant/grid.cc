// grid.cc — grid parameters, RTN, dequantization and code packing.
#include "quant/grid.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace qsweep {

GroupParams grid_params(const float* w, int n, const GridSpec& g) {
  GroupParams p;
  if (g.sym) {
    float amax = 0.0f;
    for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
    p.scale = std::max(amax, 1e-5f) / static_cast<float>((1 << (g.bits - 1)) - 1);
    p.zero = 1 << (g.bits - 1);
  } else {
    float mn = 0.0f, mx = 0.0f;  // the range always holds zero
    for (int i = 0; i < n; ++i) {
      mn = std::min(mn, w[i]);
      mx = std::max(mx, w[i]);
    }
    const int qmax = (1 << g.bits) - 1;
    p.scale = std::max(mx - mn, 1e-5f) / static_cast<float>(qmax);
    const int z = static_cast<int>(std::nearbyint(-mn / p.scale));
    p.zero = std::min(qmax, std::max(0, z));
  }
  return p;
}

std::vector<float> QuantizedLinear::dequantize() const {
  std::vector<float> w(static_cast<size_t>(out) * in);
  const int ng = grid.groups(in);
  for (int r = 0; r < out; ++r)
    for (int c = 0; c < in; ++c) {
      const int gi = g_idx.empty() ? (grid.group_size < 0 ? 0 : c / grid.group_size) : g_idx[c];
      const GroupParams p{scales[static_cast<size_t>(r) * ng + gi], zeros[static_cast<size_t>(r) * ng + gi]};
      w[static_cast<size_t>(r) * in + c] = grid_value(codes[static_cast<size_t>(r) * in + c], p);
    }
  return w;
}

QuantizedLinear quantize_rtn(const float* w, int out, int in, const GridSpec& g) {
  QuantizedLinear q;
  q.out = out;
  q.in = in;
  q.grid = g;
  const int ng = g.groups(in), gl = g.group_len(in);
  q.codes.resize(static_cast<size_t>(out) * in);
  q.scales.resize(static_cast<size_t>(out) * ng);
  q.zeros.resize(q.scales.size());
  for (int r = 0; r < out; ++r)
    for (int gi = 0; gi < ng; ++gi) {
      const int c0 = gi * gl, n = std::min(gl, in - c0);
      const float* wr = w + static_cast<size_t>(r) * in + c0;
      const GroupParams p = grid_params(wr, n, g);
      q.scales[static_cast<size_t>(r) * ng + gi] = p.scale;
      q.zeros[static_cast<size_t>(r) * ng + gi] = p.zero;
      for (int c = 0; c < n; ++c) q.codes[static_cast<size_t>(r) * in + c0 + c] = static_cast<uint8_t>(grid_code(wr[c], p, g.bits));
    }
  return q;
}

std::vector<uint8_t> pack_codes(const std::vector<uint8_t>& codes, int bits) {
  std::vector<uint8_t> out((codes.size() * bits + 7) / 8, 0);
  size_t bit = 0;
  for (uint8_t c : codes)
    for (int b = 0; b < bits; ++b, ++bit)
      if (c >> b & 1) out[bit >> 3] |= static_cast<uint8_t>(1u << (bit & 7));
  return out;
}

std::vector<uint8_t> unpack_codes(const std::vector<uint8_t>& packed, int bits, size_t n) {
  QS_CHECK(packed.size() * 8 >= n * bits, "packed codes: " << packed.size() << " bytes cannot hold "
                                                          << n << " codes of " << bits << " bits");
  std::vector<uint8_t> out(n, 0);
  size_t bit = 0;
  for (size_t i = 0; i < n; ++i)
    for (int b = 0; b < bits; ++b, ++bit)
      if (packed[bit >> 3] >> (bit & 7) & 1) out[i] |= static_cast<uint8_t>(1u << b);
  return out;
}

double quantized_bits(int out, int in, const GridSpec& g) {
  const double groups = static_cast<double>(out) * g.groups(in);
  return static_cast<double>(out) * in * g.bits + groups * (16.0 + g.bits);
}

}  // namespace qsweep
