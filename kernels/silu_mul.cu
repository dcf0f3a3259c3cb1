// silu_mul.cu — the SwiGLU gate of the Llama MLP: out = silu(gate) * up, elementwise, fp32.
//
// silu(g) = g * sigmoid(g) = g / (1 + exp(-g)). Written with expf and an IEEE division (no fast
// math) so it matches a CPU reference to a few ulp; for very negative g, exp(-g) overflows to
// inf and the result correctly becomes (signed) zero.
#include "qsweep/cuda/backend.h"

#include "check.cuh"
#include "device_buffer.cuh"

namespace qsweep::cuda {
namespace {

constexpr unsigned kBlock = 256;

__global__ void silu_mul_kernel(const float* __restrict__ gate, const float* __restrict__ up,
                                float* __restrict__ out, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

}  // namespace

void silu_mul(const float* gate, const float* up, float* out, std::size_t n) {
  if (n == 0) return;
  detail::DeviceBuffer<float> d_gate(gate, n);
  detail::DeviceBuffer<float> d_up(up, n);
  detail::DeviceBuffer<float> d_out(n);
  silu_mul_kernel<<<detail::grid_for(n, kBlock), kBlock>>>(d_gate.get(), d_up.get(), d_out.get(),
                                                           n);
  CUDA_CHECK_LAUNCH();
  d_out.download(out);
}

}  // namespace qsweep::cuda
