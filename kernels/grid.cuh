// grid.cuh — quant/grid.h's integer grid on the device: the group parameters, a value's code and
// its grid value, each step the CPU's single fp32 operation (no fused multiply-add, round half to
// even), so device kernels that quantize (AWQ's scale search, its clipping) produce the CPU's bits.
#pragma once

namespace qsweep::cuda::detail {

struct GridParams {
  float scale;
  int zero;
};

// grid_params of the n values v(0) .. v(n-1) (v: any callable, e.g. a scaled or clipped weight).
template <class V>
__device__ inline GridParams grid_params(const V& v, int n, int bits, bool sym) {
  GridParams p;
  if (sym) {
    float amax = 0.0f;
    for (int c = 0; c < n; ++c) {
      const float a = fabsf(v(c));
      amax = amax < a ? a : amax;
    }
    p.scale = __fdiv_rn(amax < 1e-5f ? 1e-5f : amax, static_cast<float>((1 << (bits - 1)) - 1));
    p.zero = 1 << (bits - 1);
  } else {
    float lo = 0.0f, hi = 0.0f;  // the range always holds zero
    for (int c = 0; c < n; ++c) {
      const float x = v(c);
      lo = x < lo ? x : lo;
      hi = hi < x ? x : hi;
    }
    const int qmax = (1 << bits) - 1;
    const float range = __fsub_rn(hi, lo);
    p.scale = __fdiv_rn(range < 1e-5f ? 1e-5f : range, static_cast<float>(qmax));
    p.zero = min(qmax, max(0, static_cast<int>(rintf(__fdiv_rn(-lo, p.scale)))));
  }
  return p;
}

__device__ inline int grid_code(float w, const GridParams& p, int bits) {
  const int qmax = (1 << bits) - 1;
  const int q = static_cast<int>(rintf(__fdiv_rn(w, p.scale))) + p.zero;
  return q < 0 ? 0 : (q > qmax ? qmax : q);
}

__device__ inline float grid_value(int code, const GridParams& p) {
  return __fmul_rn(static_cast<float>(code - p.zero), p.scale);
}

}  // namespace qsweep::cuda::detail
