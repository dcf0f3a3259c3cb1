// attention_reference.h — causal GQA attention in float64 and bf16 rounding on the host: the
// reference of the fused bf16 attention kernel's tests (test_cuda_flash.cc on a GPU,
// test_flash_emulated.cc on the host).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace qsweep::test {

// Round to nearest even at bf16's 8 significant bits (finite inputs), as the device's rounding.
inline float round_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Rows [n_seq·T, (nh + 2·nkv)·D] of q heads, k heads, v heads: normal(0, 1), the queries 4×
// larger (peaked rows whose running maximum moves between key tiles); bf16 values unless `fp32`.
inline std::vector<float> attention_inputs(int n_seq, int T, int nh, int nkv, int D, unsigned seed, bool fp32 = false) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const std::size_t ld = static_cast<std::size_t>(nh + 2 * nkv) * D;
  std::vector<float> qkv(static_cast<std::size_t>(n_seq) * T * ld);
  for (std::size_t i = 0; i < qkv.size(); ++i) {
    const float x = nd(rng) * ((i % ld) < std::size_t(nh) * D ? 4.0f : 1.0f);
    qkv[i] = fp32 ? x : round_bf16(x);
  }
  return qkv;
}

// out [n_seq·T, nh·D] of causal GQA attention in float64 on qkv's rows; window > 0: query i sees
// keys (i − window, i].
inline std::vector<double> attention_reference(const std::vector<float>& qkv, int n_seq, int T, int nh, int nkv, int D,
                                               int window) {
  const std::size_t ld = static_cast<std::size_t>(nh + 2 * nkv) * D;
  const int group = nh / nkv;
  std::vector<double> out(static_cast<std::size_t>(n_seq) * T * nh * D), s(static_cast<std::size_t>(T));
  for (int sq = 0; sq < n_seq; ++sq)
    for (int h = 0; h < nh; ++h)
      for (int i = 0; i < T; ++i) {
        const float* q = &qkv[(static_cast<std::size_t>(sq) * T + i) * ld + static_cast<std::size_t>(h) * D];
        const int lo = window > 0 ? std::max(0, i - window + 1) : 0;
        double mx = -INFINITY;
        for (int j = lo; j <= i; ++j) {
          const float* k = &qkv[(static_cast<std::size_t>(sq) * T + j) * ld + static_cast<std::size_t>(nh + h / group) * D];
          double a = 0;
          for (int c = 0; c < D; ++c) a += static_cast<double>(q[c]) * k[c];
          s[j] = a / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int j = lo; j <= i; ++j) sum += (s[j] = std::exp(s[j] - mx));
        double* o = &out[(static_cast<std::size_t>(sq) * T + i) * nh * D + static_cast<std::size_t>(h) * D];
        for (int j = lo; j <= i; ++j) {
          const float* v =
              &qkv[(static_cast<std::size_t>(sq) * T + j) * ld + static_cast<std::size_t>(nh + nkv + h / group) * D];
          for (int c = 0; c < D; ++c) o[c] += s[j] / sum * v[c];
        }
      }
  return out;
}

// max |v| over qkv's value columns, and the max and mean of |out − ref|.
struct AttentionError {
  double vmax = 0, max_err = 0, mean_err = 0;
  bool finite = true;
};
inline AttentionError attention_error(const std::vector<float>& qkv, const std::vector<float>& out,
                                      const std::vector<double>& ref, int nh, int nkv, int D) {
  AttentionError e;
  const std::size_t ld = static_cast<std::size_t>(nh + 2 * nkv) * D, rows = qkv.size() / ld;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < std::size_t(nkv) * D; ++c)
      e.vmax = std::max(e.vmax, std::fabs(static_cast<double>(qkv[r * ld + std::size_t(nh + nkv) * D + c])));
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) e.finite = false;
    const double d = std::fabs(out[i] - ref[i]);
    e.max_err = std::max(e.max_err, d);
    e.mean_err += d / static_cast<double>(out.size());
  }
  return e;
}

}  // namespace qsweep::test
