// grad_fake_quant.cc — EfficientQAT's Block-AP fake quantizer and its straight-through backward
// (the derivation is in grad_ops.h). round() is round-half-to-even (std::nearbyint, as
// torch.round); scales and zero points are [out, ⌈in / group⌉]: a last group may be shorter
// (SmolLM2's 576 inputs at group 128), as in quant/grid.h's stored grids.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "train/grad_ops.h"

namespace qsweep {

namespace {
void check_shape(int in, int group, int bits) {
  QS_CHECK(group > 0 && in > 0, "fake quantization: group " << group << " of " << in << " input columns");
  QS_CHECK(bits >= 1 && bits <= 16, "fake quantization: " << bits << " bits (1..16 supported)");
}
}  // namespace

template <typename T>
void fake_quant_forward(const T* W, const T* scales, const T* zeros, int out, int in, int group,
                        int bits, T* Wq) {
  check_shape(in, group, bits);
  const int ng = (in + group - 1) / group;
  const T qmax = static_cast<T>((1 << bits) - 1);
  for (int r = 0; r < out; ++r)
    for (int g = 0; g < ng; ++g) {
      const T s = scales[int64_t(r) * ng + g];
      const T rz = std::nearbyint(zeros[int64_t(r) * ng + g]);
      const int64_t o = int64_t(r) * in + int64_t(g) * group;
      for (int c = 0, len = std::min(group, in - g * group); c < len; ++c) {
        const T q = std::min(std::max(std::nearbyint(W[o + c] / s) + rz, T(0)), qmax);
        Wq[o + c] = (q - rz) * s;
      }
    }
}

template <typename T>
void fake_quant_backward(const T* W, const T* scales, const T* zeros, int out, int in, int group,
                         int bits, const T* dWq, T* dW, T* dscales, T* dzeros) {
  check_shape(in, group, bits);
  const int ng = (in + group - 1) / group;
  const T qmax = static_cast<T>((1 << bits) - 1);
  for (int r = 0; r < out; ++r)
    for (int g = 0; g < ng; ++g) {
      const int64_t gi = int64_t(r) * ng + g;
      const T s = scales[gi];
      const T rz = std::nearbyint(zeros[gi]);
      const int64_t o = int64_t(r) * in + int64_t(g) * group;
      T ds = 0, dz = 0;
      for (int c = 0, len = std::min(group, in - g * group); c < len; ++c) {
        const T ws = W[o + c] / s;
        const T rq = std::nearbyint(ws) + rz;
        const T d = dWq[o + c];
        if (rq >= T(0) && rq <= qmax) {  // inside: w passes, s sees the rounding residual
          if (dW) dW[o + c] += d;
          ds += d * (rq - rz - ws);
        } else {  // clamped: q is the bound
          const T q = rq < T(0) ? T(0) : qmax;
          ds += d * (q - rz);
          dz -= d * s;
        }
      }
      if (dscales) dscales[gi] += ds;
      if (dzeros) dzeros[gi] += dz;
    }
}

template void fake_quant_forward<float>(const float*, const float*, const float*, int, int, int, int, float*);
template void fake_quant_forward<double>(const double*, const double*, const double*, int, int, int, int, double*);
template void fake_quant_backward<float>(const float*, const float*, const float*, int, int, int, int,
                                         const float*, float*, float*, float*);
template void fake_quant_backward<double>(const double*, const double*, const double*, int, int, int, int,
                                          const double*, double*, double*, double*);

}  // namespace qsweep
