// grid.cc — grid parameters, RTN, dequantization and code packing.
#include "quant/grid.h"

#include <algorithm>
#include <cmath>

#include "core/device.h"
#include "core/error.h"

#ifdef QSWEEP_WITH_CUDA
#include <exception>

#include "qsweep/cuda/rtn.h"
#endif

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
  // Element-wise (grid_value per weight), rows split over threads: the same values on any count.
#pragma omp parallel for schedule(static) if (static_cast<int64_t>(out) * in > (1 << 18))
  for (int r = 0; r < out; ++r) {
    const size_t row = static_cast<size_t>(r) * in;
    const float* sc = scales.data() + static_cast<size_t>(r) * ng;
    const int32_t* ze = zeros.data() + static_cast<size_t>(r) * ng;
    if (g_idx.empty()) {
      const int gs = grid.group_size < 0 ? in : grid.group_size;
      for (int g0 = 0, gi = 0; g0 < in; g0 += gs, ++gi) {
        const GroupParams p{sc[gi], ze[gi]};
        const int g1 = std::min(in, g0 + gs);
        for (int c = g0; c < g1; ++c) w[row + c] = grid_value(codes[row + c], p);
      }
    } else {
      for (int c = 0; c < in; ++c) w[row + c] = grid_value(codes[row + c], GroupParams{sc[g_idx[c]], ze[g_idx[c]]});
    }
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
#ifdef QSWEEP_WITH_CUDA
  // On a GPU: the same grid with the same fp32 operations (kernels/grid.cuh), so the same codes.
  // Small layers stay on the host, where the transfers would cost more than the work.
  if (current_device().kind == DeviceKind::Cuda && static_cast<int64_t>(out) * in >= (int64_t(1) << 20)) {
    try {
      cuda::quantize_rtn(current_device().ordinal, w, out, in, gl, g.bits, g.sym, q.codes.data(), q.scales.data(),
                         q.zeros.data());
    } catch (const std::exception& e) {
      QS_THROW("cuda RTN (" << out << " x " << in << "): " << e.what());
    }
    return q;
  }
#endif
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
  QS_CHECK(bits >= 1 && bits <= 8, "packed codes: " << bits << " bits per code (expected 1..8)");
  const size_t n = codes.size();
  std::vector<uint8_t> out((n * bits + 7) / 8, 0);
  const uint64_t mask = (uint64_t(1) << bits) - 1;
  // Eight codes fill exactly `bits` bytes (code i at bits [i·b, i·b + b), LSB first): each group
  // of eight is assembled in a 64-bit word and stored byte by byte, groups in parallel (a 1B
  // model's block has 61M codes; the bit-by-bit loop took ~0.75 s of every block's write).
  const int64_t groups = static_cast<int64_t>((n + 7) / 8);
  const uint8_t* c = codes.data();
  uint8_t* o = out.data();
#pragma omp parallel for schedule(static) if (n > (1u << 20))
  for (int64_t g = 0; g < groups; ++g) {
    const size_t i0 = static_cast<size_t>(g) * 8, m = std::min<size_t>(8, n - i0);
    uint64_t word = 0;
    for (size_t j = 0; j < m; ++j) word |= (c[i0 + j] & mask) << (j * bits);
    const size_t byte0 = static_cast<size_t>(g) * bits, nbytes = (m * bits + 7) / 8;
    for (size_t k = 0; k < nbytes; ++k) o[byte0 + k] = static_cast<uint8_t>(word >> (8 * k));
  }
  return out;
}

std::vector<uint8_t> unpack_codes(const std::vector<uint8_t>& packed, int bits, size_t n) {
  QS_CHECK(packed.size() * 8 >= n * bits, "packed codes: " << packed.size() << " bytes cannot hold "
                                                          << n << " codes of " << bits << " bits");
  QS_CHECK(bits >= 1 && bits <= 8, "packed codes: " << bits << " bits per code (expected 1..8)");
  std::vector<uint8_t> out(n);
  const unsigned mask = (1u << bits) - 1;
  const size_t nb = packed.size();
  const uint8_t* p = packed.data();
  // Code i occupies bits [i·b, i·b + b): within the 16-bit little-endian window starting at its
  // first byte (shift ≤ 7, b ≤ 8). Independent per code, so the loop splits over threads.
#pragma omp parallel for schedule(static) if (n > (1u << 20))
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
    const size_t bit = static_cast<size_t>(i) * static_cast<size_t>(bits), byte = bit >> 3;
    const unsigned v = p[byte] | (byte + 1 < nb ? static_cast<unsigned>(p[byte + 1]) << 8 : 0u);
    out[static_cast<size_t>(i)] = static_cast<uint8_t>((v >> (bit & 7)) & mask);
  }
  return out;
}

double quantized_bits(int out, int in, const GridSpec& g) {
  const double groups = static_cast<double>(out) * g.groups(in);
  return static_cast<double>(out) * in * g.bits + groups * (16.0 + g.bits);
}

}  // namespace qsweep
