// flash_attention.cu — flash_attention.cuh: fused causal GQA attention on bf16 tensor cores. The
// kernel's body is flash_attention_body.cuh (shared with the host emulation of the tests); here
// its launch, the head dimensions it is instantiated for, and the test entry point of backend.h.
#include "bf16_operands.cuh"
#include "check.cuh"
#include "device_buffer.cuh"
#include "flash_attention.cuh"
#include "qsweep/cuda/backend.h"

#include <mma.h>

#include "flash_attention_body.cuh"  // after cuda_bf16.h and mma.h: it uses their names

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace qsweep::cuda::detail {
namespace {

using flash::kBM;
using flash::kWarps;

template <int D>
__global__ void __launch_bounds__(kWarps * 32)
    flash_bf16_kernel(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t ld, float* out,
                      int64_t ld_out, int T, int group, int window, float scale_log2) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) unsigned char smem[];
  flash::attention_block<D>(smem, q, k, v, ld, out, ld_out, T, group, window, scale_log2);
#else
  __trap();  // flash_attention_supports() refuses devices before sm_80
#endif
}

template <int D>
void launch(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t ld, float* out,
            int64_t ld_out, int n_seq, int T, int n_heads, int group, int window, cudaStream_t s) {
  constexpr int bytes = flash::Layout<D>::kBytes;
  CUDA_CHECK(cudaFuncSetAttribute(flash_bf16_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  const dim3 grid(static_cast<unsigned>((T + kBM - 1) / kBM), static_cast<unsigned>(n_heads),
                  static_cast<unsigned>(n_seq));
  const float scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(D)));
  flash_bf16_kernel<D><<<grid, kWarps * 32, bytes, s>>>(q, k, v, ld, out, ld_out, T, group, window, scale_log2);
  CUDA_CHECK_LAUNCH();
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool flash_attention_supports(int head_dim) {
  if (head_dim != 32 && head_dim != 64 && head_dim != 128) return false;
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) !=
                                                cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major >= 8;
}

void flash_attention_bf16(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t ld,
                          float* out, int64_t ld_out, int n_seq, int T, int n_heads, int n_kv_heads, int head_dim,
                          int window, cudaStream_t s) {
  if (n_seq <= 0 || T <= 0) return;
  if (n_seq > 65535 || n_heads > 65535 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0)
    throw std::invalid_argument("flash attention: " + std::to_string(n_seq) + " sequences of " +
                                std::to_string(n_heads) + " heads (" + std::to_string(n_kv_heads) +
                                " kv heads) are outside the kernel's grid");
  if (ld % 8 != 0 || !aligned16(q) || !aligned16(k) || !aligned16(v))
    throw std::invalid_argument("flash attention: q/k/v rows must be 16-byte aligned (row stride " +
                                std::to_string(ld) + " elements)");
  const int group = n_heads / n_kv_heads;
  if (head_dim == 32)
    launch<32>(q, k, v, ld, out, ld_out, n_seq, T, n_heads, group, window, s);
  else if (head_dim == 64)
    launch<64>(q, k, v, ld, out, ld_out, n_seq, T, n_heads, group, window, s);
  else if (head_dim == 128)
    launch<128>(q, k, v, ld, out, ld_out, n_seq, T, n_heads, group, window, s);
  else
    throw std::invalid_argument("flash attention: head dimension " + std::to_string(head_dim) +
                                " (the kernel takes 32, 64 and 128)");
}

}  // namespace qsweep::cuda::detail

namespace qsweep::cuda {

bool flash_attention_supported(int head_dim) { return device_count() > 0 && detail::flash_attention_supports(head_dim); }

void flash_attention_bf16(const float* qkv, float* out, int n_seq, int T, int n_heads, int n_kv_heads, int head_dim,
                          int window) {
  if (!flash_attention_supported(head_dim))
    throw std::invalid_argument("qsweep::cuda::flash_attention_bf16: no device, or head dimension " +
                                std::to_string(head_dim) + " unsupported");
  const int64_t ld = static_cast<int64_t>(n_heads + 2 * n_kv_heads) * head_dim, rows = int64_t(n_seq) * T;
  const std::size_t n_in = static_cast<std::size_t>(rows * ld), n_out = static_cast<std::size_t>(rows) * n_heads * head_dim;
  detail::DeviceBuffer<float> d_qkv(qkv, n_in), d_out(n_out);
  detail::DeviceBuffer<__nv_bfloat16> d16(n_in);
  detail::launch_round_bf16(d_qkv.get(), d16.get(), n_in, nullptr);
  const __nv_bfloat16* q = d16.get();
  detail::flash_attention_bf16(q, q + static_cast<int64_t>(n_heads) * head_dim,
                               q + static_cast<int64_t>(n_heads + n_kv_heads) * head_dim, ld, d_out.get(),
                               static_cast<int64_t>(n_heads) * head_dim, n_seq, T, n_heads, n_kv_heads, head_dim, window,
                               nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  d_out.download(out);
}

}  // namespace qsweep::cuda
