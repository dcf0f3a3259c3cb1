// awq_clip.cu — qsweep/cuda/awq_clip.h: a thread per (row, group), threads of a warp on the same
// group (so they read the same Gram block), δ kept in a scratch laid out [column][thread] so the
// threads' accesses are consecutive.
#include "qsweep/cuda/awq_clip.h"

#include <cuda_runtime.h>

#include <string>

#include "check.cuh"
#include "device_buffer.cuh"
#include "grid.cuh"

namespace qsweep::cuda {

namespace {

__global__ void clip_search(const float* w, int out, int in, const double* blocks, int G, int ng, int bits, bool sym,
                            int n_grid, double* delta, int32_t* best_i) {
  const std::size_t T = static_cast<std::size_t>(out) * ng;
  const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (t >= T) return;
  const int g = static_cast<int>(t / out), r = static_cast<int>(t % out);  // neighbours share g
  const int c0 = g * G, n = min(G, in - c0);
  const float* wg = w + static_cast<std::size_t>(r) * in + c0;
  const double* gb = blocks + static_cast<std::size_t>(g) * G * G;  // blocks before the last are G x G
  float amax = 0.0f;
  for (int c = 0; c < n; ++c) {
    const float a = fabsf(wg[c]);
    amax = amax < a ? a : amax;
  }
  double best = INFINITY;
  int best_k = 0;
  for (int k = 0; k < n_grid / 2; ++k) {
    const float mx = __fmul_rn(amax, __fsub_rn(1.0f, __fdiv_rn(static_cast<float>(k), static_cast<float>(n_grid))));
    const auto clipped = [&](int c) { return fminf(mx, fmaxf(-mx, wg[c])); };
    const detail::GridParams p = detail::grid_params(clipped, n, bits, sym);
    for (int c = 0; c < n; ++c)
      delta[static_cast<std::size_t>(c) * T + t] =
          __dsub_rn(static_cast<double>(detail::grid_value(detail::grid_code(clipped(c), p, bits), p)),
                    static_cast<double>(wg[c]));
    double e = 0;
    for (int a = 0; a < n; ++a) {
      const double* ga = gb + static_cast<std::size_t>(a) * n;
      double s = 0;
      for (int b = 0; b < n; ++b) s += ga[b] * delta[static_cast<std::size_t>(b) * T + t];
      e += delta[static_cast<std::size_t>(a) * T + t] * s;
    }
    if (e < best) best = e, best_k = k;
  }
  best_i[static_cast<std::size_t>(r) * ng + g] = best_k;
}

}  // namespace

void awq_clip_search(int ordinal, const float* w, int out, int in, const std::vector<double>& blocks, int G, int bits,
                     bool sym, int n_grid, int32_t* best_i) {
  if (out <= 0 || in <= 0) return;
  CUDA_CHECK(cudaSetDevice(ordinal));
  const int ng = (in + G - 1) / G;
  const std::size_t T = static_cast<std::size_t>(out) * ng, nw = static_cast<std::size_t>(out) * in;
  const char* hint = "AWQ clipping: the layer's weights, its Gram blocks and fp64 errors (8 bytes per weight)";
  detail::DeviceBuffer<float> wd(w, nw, "AWQ clipping's weights", hint);
  detail::DeviceBuffer<double> bd(blocks.data(), blocks.size(), "AWQ clipping's Gram blocks", hint);
  detail::DeviceBuffer<double> dd(T * static_cast<std::size_t>(G), "AWQ clipping's errors", hint);
  detail::DeviceBuffer<int32_t> id(T, "AWQ clipping's choices", hint);
  clip_search<<<static_cast<unsigned>((T + 127) / 128), 128>>>(wd.get(), out, in, bd.get(), G, ng, bits, sym, n_grid,
                                                              dd.get(), id.get());
  CUDA_CHECK_LAUNCH();
  id.download(best_i);
}

}  // namespace qsweep::cuda
