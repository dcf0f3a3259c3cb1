// rmsnorm.cu — RMSNorm, the normalisation layer of every Llama block, in fp32.
//
//   y[r, c] = x[r, c] / sqrt(mean_c(x[r, :]^2) + eps) * weight[c]
//
// One thread block per row: each thread sums squares over a strided slice of the row, warps
// reduce with shuffles, per-warp partials meet in shared memory, and the block then rescales the
// row. Rows are hidden-size long (thousands of columns), so a block per row keeps every SM busy
// for a token batch and needs no inter-block communication.
#include "qsweep/cuda/backend.h"

#include "check.cuh"
#include "device_buffer.cuh"
#include "forward_ops.cuh"

#include <stdexcept>

namespace qsweep::cuda {
namespace {

constexpr unsigned kBlock = 256;  // multiple of 32, at most 32 warps
constexpr unsigned kWarp = 32;

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

// x and y may alias (in-place): each element is read before it is written, by the same thread.
__global__ void rmsnorm_kernel(const float* x, const float* __restrict__ weight, float* y, int cols, float eps) {
  __shared__ float warp_partials[kBlock / kWarp];
  __shared__ float row_scale;

  const std::size_t row_offset = static_cast<std::size_t>(blockIdx.x) * cols;
  const float* xr = x + row_offset;
  float* yr = y + row_offset;

  float sum = 0.0f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) sum += xr[c] * xr[c];
  sum = warp_sum(sum);

  const unsigned lane = threadIdx.x % kWarp;
  const unsigned warp = threadIdx.x / kWarp;
  if (lane == 0) warp_partials[warp] = sum;
  __syncthreads();
  if (warp == 0) {
    const unsigned n_warps = blockDim.x / kWarp;
    float total = lane < n_warps ? warp_partials[lane] : 0.0f;
    total = warp_sum(total);
    if (lane == 0) row_scale = 1.0f / sqrtf(total / static_cast<float>(cols) + eps);
  }
  __syncthreads();

  const float scale = row_scale;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = xr[c] * scale * weight[c];
}

}  // namespace

void rmsnorm(const float* x, const float* weight, float* y, int rows, int cols, float eps) {
  if (rows < 0 || cols < 0) throw std::invalid_argument("qsweep::cuda::rmsnorm: negative shape");
  if (rows == 0 || cols == 0) return;
  const std::size_t n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  detail::DeviceBuffer<float> d_x(x, n);
  detail::DeviceBuffer<float> d_w(weight, static_cast<std::size_t>(cols));
  detail::DeviceBuffer<float> d_y(n);
  rmsnorm_kernel<<<static_cast<unsigned>(rows), kBlock>>>(d_x.get(), d_w.get(), d_y.get(), cols,
                                                          eps);
  CUDA_CHECK_LAUNCH();
  d_y.download(y);
}

namespace detail {

void launch_rmsnorm(const float* x, const float* w, float* y, int64_t rows, int cols, float eps, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  for (int64_t r0 = 0; r0 < rows; r0 += 65535 * 1024LL) {  // grid x is at most 2^31−1; stay far below
    const int64_t n = rows - r0 < 65535 * 1024LL ? rows - r0 : 65535 * 1024LL;
    const std::size_t off = static_cast<std::size_t>(r0) * cols;
    rmsnorm_kernel<<<static_cast<unsigned>(n), kBlock, 0, s>>>(x + off, w, y + off, cols, eps);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace detail

}  // namespace qsweep::cuda
