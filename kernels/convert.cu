// convert.cu — bfloat16 / fp16 -> fp32 widening kernels.
//
// Llama checkpoints store weights as bf16 or fp16; the quantizers work in fp32, so tensors are
// widened on the device first. Both conversions are exact: bf16 is the upper 16 bits of an fp32
// (a shift, NaN payloads preserved) and fp16 uses the hardware conversion __half2float.
#include "qsweep/cuda/backend.h"

#include "check.cuh"
#include "device_buffer.cuh"

#include <cuda_fp16.h>

namespace qsweep::cuda {
namespace {

constexpr unsigned kBlock = 256;

__global__ void bf16_to_f32_kernel(const std::uint16_t* __restrict__ src, float* __restrict__ dst,
                                   std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    dst[i] = __uint_as_float(static_cast<unsigned>(src[i]) << 16);
  }
}

__global__ void f16_to_f32_kernel(const std::uint16_t* __restrict__ src, float* __restrict__ dst,
                                  std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    dst[i] = __half2float(__ushort_as_half(src[i]));
  }
}

template <typename Kernel>
void run_conversion(Kernel kernel, const std::uint16_t* src, float* dst, std::size_t n) {
  if (n == 0) return;
  detail::DeviceBuffer<std::uint16_t> d_src(src, n);
  detail::DeviceBuffer<float> d_dst(n);
  kernel<<<detail::grid_for(n, kBlock), kBlock>>>(d_src.get(), d_dst.get(), n);
  CUDA_CHECK_LAUNCH();
  d_dst.download(dst);
}

}  // namespace

void bf16_to_f32(const std::uint16_t* src, float* dst, std::size_t n) {
  run_conversion(bf16_to_f32_kernel, src, dst, n);
}

void f16_to_f32(const std::uint16_t* src, float* dst, std::size_t n) {
  run_conversion(f16_to_f32_kernel, src, dst, n);
}

}  // namespace qsweep::cuda
