// reduce.cuh — warp and block reductions shared by the kernels (max, sum): every thread of the
// warp / block gets the result. The order of a reduction is fixed by the launch shape, so results
// do not vary from run to run.
#pragma once

#include <cfloat>

namespace qsweep::cuda::detail {

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide reductions; `red` holds 32 values of T; every thread gets the result.
__device__ inline float block_max(float v, float* red) {
  v = warp_max(v);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = (blockDim.x + 31) / 32;
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nw ? red[lane] : -FLT_MAX;
  v = warp_max(v);
  return v;
}
template <typename T>
__device__ inline T block_sum(T v, T* red) {
  v = warp_sum(v);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = (blockDim.x + 31) / 32;
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nw ? red[lane] : T(0);
  v = warp_sum(v);
  return v;
}

}  // namespace qsweep::cuda::detail
