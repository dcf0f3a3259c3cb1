// flash_attention.cu — flash_attention.cuh: fused causal GQA attention on the tensor cores. The
// kernels' body is flash_attention_body.cuh (shared with the host emulation of the tests); here
// their launch, the head dimensions they are instantiated for, and the test entry point of
// backend.h.
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

template <class Arith>
__global__ void __launch_bounds__(kWarps * 32)
    flash_kernel(const typename Arith::E* q, const typename Arith::E* k, const typename Arith::E* v, int64_t ld,
                 float* out, int64_t ld_out, int T, int group, int window, float scale_log2) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) unsigned char smem[];
  flash::attention_block<Arith>(smem, q, k, v, ld, out, ld_out, T, group, window, scale_log2);
#else
  __trap();  // flash_attention_supports() refuses devices before sm_80
#endif
}

template <class Arith>
void launch(const typename Arith::E* q, const typename Arith::E* k, const typename Arith::E* v, int64_t ld, float* out,
            int64_t ld_out, int n_seq, int T, int n_heads, int group, int window, cudaStream_t s) {
  constexpr int D = Arith::kD;
  constexpr int bytes = flash::Layout<D, typename Arith::E, typename Arith::P>::kBytes;
  CUDA_CHECK(cudaFuncSetAttribute(flash_kernel<Arith>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  const dim3 grid(static_cast<unsigned>((T + kBM - 1) / kBM), static_cast<unsigned>(n_heads),
                  static_cast<unsigned>(n_seq));
  const float scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(D)));
  flash_kernel<Arith><<<grid, kWarps * 32, bytes, s>>>(q, k, v, ld, out, ld_out, T, group, window, scale_log2);
  CUDA_CHECK_LAUNCH();
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The checks both arithmetics share; returns the GQA group.
int check_shape(const void* q, const void* k, const void* v, int64_t ld, std::size_t elem, int n_seq, int n_heads,
                int n_kv_heads) {
  if (n_seq > 65535 || n_heads > 65535 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0)
    throw std::invalid_argument("flash attention: " + std::to_string(n_seq) + " sequences of " +
                                std::to_string(n_heads) + " heads (" + std::to_string(n_kv_heads) +
                                " kv heads) are outside the kernel's grid");
  if ((ld * static_cast<int64_t>(elem)) % 16 != 0 || !aligned16(q) || !aligned16(k) || !aligned16(v))
    throw std::invalid_argument("flash attention: q/k/v rows must be 16-byte aligned (row stride " +
                                std::to_string(ld) + " elements)");
  return n_heads / n_kv_heads;
}

[[noreturn]] void unsupported(int head_dim, const char* arith) {
  throw std::invalid_argument(std::string("flash attention (") + arith + "): head dimension " +
                              std::to_string(head_dim) + " is not instantiated");
}

}  // namespace

bool flash_attention_supports(int head_dim, bool tf32x3) {
  const bool dim_ok = tf32x3 ? (head_dim == 32 || head_dim == 64) : (head_dim == 32 || head_dim == 64 || head_dim == 128);
  if (!dim_ok) return false;
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
  const int g = check_shape(q, k, v, ld, sizeof(*q), n_seq, n_heads, n_kv_heads);
  if (head_dim == 32)
    launch<flash::Bf16Arith<32>>(q, k, v, ld, out, ld_out, n_seq, T, n_heads, g, window, s);
  else if (head_dim == 64)
    launch<flash::Bf16Arith<64>>(q, k, v, ld, out, ld_out, n_seq, T, n_heads, g, window, s);
  else if (head_dim == 128)
    launch<flash::Bf16Arith<128>>(q, k, v, ld, out, ld_out, n_seq, T, n_heads, g, window, s);
  else
    unsupported(head_dim, "bf16");
}

void flash_attention_tf32x3(const float* q, const float* k, const float* v, int64_t ld, float* out, int64_t ld_out,
                            int n_seq, int T, int n_heads, int n_kv_heads, int head_dim, int window, cudaStream_t s) {
  if (n_seq <= 0 || T <= 0) return;
  const int g = check_shape(q, k, v, ld, sizeof(*q), n_seq, n_heads, n_kv_heads);
  if (head_dim == 32)
    launch<flash::Tf32x3Arith<32>>(q, k, v, ld, out, ld_out, n_seq, T, n_heads, g, window, s);
  else if (head_dim == 64)
    launch<flash::Tf32x3Arith<64>>(q, k, v, ld, out, ld_out, n_seq, T, n_heads, g, window, s);
  else
    unsupported(head_dim, "tf32x3");
}

}  // namespace qsweep::cuda::detail

namespace qsweep::cuda {

bool flash_attention_supported(int head_dim, FlashArith arith) {
  return device_count() > 0 && detail::flash_attention_supports(head_dim, arith == FlashArith::Tf32x3);
}

void flash_attention(const float* qkv, float* out, int n_seq, int T, int n_heads, int n_kv_heads, int head_dim,
                     int window, FlashArith arith) {
  if (!flash_attention_supported(head_dim, arith))
    throw std::invalid_argument("qsweep::cuda::flash_attention: no device, or head dimension " +
                                std::to_string(head_dim) + " unsupported");
  const int64_t ld = static_cast<int64_t>(n_heads + 2 * n_kv_heads) * head_dim, rows = int64_t(n_seq) * T;
  const int64_t ko = static_cast<int64_t>(n_heads) * head_dim, vo = static_cast<int64_t>(n_heads + n_kv_heads) * head_dim;
  const std::size_t n_in = static_cast<std::size_t>(rows * ld), n_out = static_cast<std::size_t>(rows) * n_heads * head_dim;
  detail::DeviceBuffer<float> d_qkv(qkv, n_in), d_out(n_out);
  if (arith == FlashArith::Tf32x3) {
    const float* q = d_qkv.get();
    detail::flash_attention_tf32x3(q, q + ko, q + vo, ld, d_out.get(), ko, n_seq, T, n_heads, n_kv_heads, head_dim,
                                   window, nullptr);
  } else {
    detail::DeviceBuffer<__nv_bfloat16> d16(n_in);
    detail::launch_round_bf16(d_qkv.get(), d16.get(), n_in, nullptr);
    const __nv_bfloat16* q = d16.get();
    detail::flash_attention_bf16(q, q + ko, q + vo, ld, d_out.get(), ko, n_seq, T, n_heads, n_kv_heads, head_dim, window,
                                 nullptr);
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  d_out.download(out);
}

}  // namespace qsweep::cuda
