// rtn.cu — qsweep/cuda/rtn.h: a thread per (row, group), the grid of kernels/grid.cuh.
#include "qsweep/cuda/rtn.h"

#include <cuda_runtime.h>

#include <cstddef>

#include "check.cuh"
#include "device_buffer.cuh"
#include "grid.cuh"

namespace qsweep::cuda {

namespace {

__global__ void rtn_groups(const float* w, int out, int in, int G, int ng, int bits, bool sym, uint8_t* codes,
                           float* scales, int32_t* zeros) {
  const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (t >= static_cast<std::size_t>(out) * ng) return;
  const int r = static_cast<int>(t / ng), g = static_cast<int>(t % ng);
  const int c0 = g * G, n = min(G, in - c0);
  const float* wg = w + static_cast<std::size_t>(r) * in + c0;
  const auto value = [&](int c) { return wg[c]; };
  const detail::GridParams p = detail::grid_params(value, n, bits, sym);
  scales[t] = p.scale;
  zeros[t] = p.zero;
  uint8_t* cg = codes + static_cast<std::size_t>(r) * in + c0;
  for (int c = 0; c < n; ++c) cg[c] = static_cast<uint8_t>(detail::grid_code(wg[c], p, bits));
}

}  // namespace

void quantize_rtn(int ordinal, const float* w, int out, int in, int G, int bits, bool sym, uint8_t* codes,
                  float* scales, int32_t* zeros) {
  if (out <= 0 || in <= 0) return;
  CUDA_CHECK(cudaSetDevice(ordinal));
  const int ng = (in + G - 1) / G;
  const std::size_t nw = static_cast<std::size_t>(out) * in, ngr = static_cast<std::size_t>(out) * ng;
  const char* hint = "RTN: the layer's weights and codes";
  detail::DeviceBuffer<float> wd(w, nw, "RTN's weights", hint), sd(ngr, "RTN's scales", hint);
  detail::DeviceBuffer<uint8_t> cd(nw, "RTN's codes", hint);
  detail::DeviceBuffer<int32_t> zd(ngr, "RTN's zeros", hint);
  rtn_groups<<<static_cast<unsigned>((ngr + 127) / 128), 128>>>(wd.get(), out, in, G, ng, bits, sym, cd.get(), sd.get(),
                                                                zd.get());
  CUDA_CHECK_LAUNCH();
  cd.download(codes);
  sd.download(scales);
  zd.download(zeros);
}

}  // namespace qsweep::cuda
