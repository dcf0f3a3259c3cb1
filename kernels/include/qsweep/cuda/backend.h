// qsweep/cuda/backend.h — public entry points of qsweep's CUDA backend (library qsweep_kernels).
//
// Plain C++17: no CUDA types or headers, so any translation unit compiled by the host compiler
// can include it. Only present in builds with QSWEEP_WITH_CUDA=ON (the library then defines
// QSWEEP_WITH_CUDA=1 for its consumers).
//
// Device queries never fail: a machine without a GPU or driver simply has 0 devices.
//
// The kernel wrappers take HOST pointers: they allocate device memory, copy the inputs over,
// launch, copy the result back and free, on the current device (device 0 unless changed),
// synchronously. They exist to check each kernel against a CPU reference, not for speed.
// On any CUDA/cuBLAS failure (including "no device") they throw std::runtime_error whose message
// carries the source file:line and the CUDA error string; negative sizes throw
// std::invalid_argument. Sizes of 0 are no-ops (sgemm_xwt with k == 0 writes zeros).
// Input and output ranges may alias: inputs are copied before anything is written back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace qsweep::cuda {

// Number of visible CUDA devices; 0 on any CUDA error (e.g. no driver: cudaGetDeviceCount = 35).
int device_count() noexcept;

// One line describing the devices: "0 CUDA devices (cudaGetDeviceCount: <error string>)" when
// the query fails, otherwise count plus name, memory and compute capability of each device.
std::string device_summary();

// Makes `ordinal` this host thread's current device (cudaSetDevice); throws naming the ordinal and
// the CUDA error when it cannot.
void bind_device(int ordinal);
// "NVIDIA H200, 139.8 GiB, compute capability 9.0" (or the query's error) of device `ordinal`.
std::string device_name(int ordinal);

// Raw device memory for tests: a copy of `bytes` host bytes, a copy back, and the release.
void* device_copy(const void* host, std::size_t bytes);
void device_to_host(void* host, const void* device, std::size_t bytes);
void device_free(void* p);

// NCCL version code from ncclGetVersion (e.g. 22703 for 2.27.3). Needs no GPU.
int nccl_version();

// dst[i] = float(src[i]) where src holds bfloat16 bit patterns (the upper 16 bits of an fp32).
// Exact, NaN payloads included.
void bf16_to_f32(const std::uint16_t* src, float* dst, std::size_t n);

// dst[i] = float(src[i]) where src holds IEEE fp16 (binary16) bit patterns. Exact.
void f16_to_f32(const std::uint16_t* src, float* dst, std::size_t n);

// RMSNorm over the last axis of row-major x[rows, cols], fp32:
//   y[r, c] = x[r, c] / sqrt(mean_c(x[r, :]^2) + eps) * weight[c]
void rmsnorm(const float* x, const float* weight, float* y, int rows, int cols, float eps);

// SwiGLU gate: out[i] = gate[i] * sigmoid(gate[i]) * up[i], fp32.
void silu_mul(const float* gate, const float* up, float* out, std::size_t n);

// y[m, n] = x[m, k] * w[n, k]^T, all row-major fp32 (w in PyTorch nn.Linear layout), via cuBLAS
// in full FP32 (no TF32).
void sgemm_xwt(const float* x, const float* w, float* y, int m, int n, int k);

// The same product in one of the engines' GEMM arithmetics, to measure their error: Fp32 (SGEMM,
// as sgemm_xwt), Tf32x3 (--compute-dtype tf32x3: operands split into two TF32 parts, three TF32
// products, kernels/tf32x3.cuh), Tf32 (one TF32 product: what qsweep never uses, for scale) and
// Bf16 (--compute-dtype bf16: operands rounded to bf16, fp32 accumulation).
enum class GemmArith { Fp32, Tf32x3, Tf32, Bf16 };
void gemm_xwt(const float* x, const float* w, float* y, int m, int n, int k, GemmArith arith);

// The fused causal GQA attention (kernels/flash_attention.cuh) in one of its arithmetics, on host
// arrays: qkv [n_seq·T, (n_heads + 2·n_kv_heads)·head_dim] (q heads, then k, then v; Bf16: rounded
// to bf16 on the device), out [n_seq·T, n_heads·head_dim] fp32; window > 0: a sliding window.
// Supported on devices of compute capability 8.0 and later: Bf16 head_dim 32, 64, 128; Tf32x3
// 32, 64.
enum class FlashArith { Bf16, Tf32x3 };
bool flash_attention_supported(int head_dim, FlashArith arith);
void flash_attention(const float* qkv, float* out, int n_seq, int T, int n_heads, int n_kv_heads, int head_dim,
                     int window, FlashArith arith);

}  // namespace qsweep::cuda
