// rope.cc — RoPE tables and rotation.
#include "model/rope.h"

#include <cmath>

namespace qsweep {

std::vector<double> rope_inv_freq(const ModelConfig& c) {
  const int d = c.head_dim;
  std::vector<double> f(d / 2);
  for (int i = 0; i < d / 2; ++i) f[i] = 1.0 / std::pow(c.rope_theta, (2.0 * i) / d);
  if (c.rope_scaling.type == "llama3") {
    const RopeScaling& s = c.rope_scaling;
    const double old_len = s.original_max_position_embeddings;
    const double low_wavelen = old_len / s.low_freq_factor;
    const double high_wavelen = old_len / s.high_freq_factor;
    for (double& v : f) {
      const double wavelen = 2.0 * M_PI / v;
      if (wavelen < high_wavelen) continue;  // high frequency: unchanged
      if (wavelen > low_wavelen) {
        v = v / s.factor;
      } else {
        const double smooth =
            (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        v = (1.0 - smooth) * v / s.factor + smooth * v;
      }
    }
  }
  return f;
}

RopeTable::RopeTable(const ModelConfig& c, int seq_len_) : seq_len(seq_len_), half(c.head_dim / 2) {
  const std::vector<double> f = rope_inv_freq(c);
  cos.resize(static_cast<size_t>(seq_len) * half);
  sin.resize(cos.size());
  for (int p = 0; p < seq_len; ++p)
    for (int i = 0; i < half; ++i) {
      const double a = p * f[i];
      cos[p * half + i] = static_cast<float>(std::cos(a));
      sin[p * half + i] = static_cast<float>(std::sin(a));
    }
}

void rope_apply(float* x, int64_t ld, int n_seq, int seq_len, int n_heads, const RopeTable& t,
                const int32_t* positions) {
  const int64_t rows = static_cast<int64_t>(n_seq) * seq_len;
  const int half = t.half;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int p = positions ? positions[r] : static_cast<int>(r % seq_len);
    const float* c = t.cos.data() + static_cast<size_t>(p) * half;
    const float* s = t.sin.data() + static_cast<size_t>(p) * half;
    float* row = x + r * ld;
    for (int h = 0; h < n_heads; ++h) {
      float* x1 = row + static_cast<int64_t>(h) * 2 * half;
      float* x2 = x1 + half;
#pragma omp simd
      for (int i = 0; i < half; ++i) {
        const float a = x1[i], b = x2[i];
        x1[i] = a * c[i] - b * s[i];
        x2[i] = b * c[i] + a * s[i];
      }
    }
  }
}

}  // namespace qsweep
