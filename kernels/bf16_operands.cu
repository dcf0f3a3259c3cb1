// bf16_operands.cu — bf16_operands.cuh: the fp32 → bf16 rounding kernel and the bf16 × bf16 → fp32
// cuBLAS call.
#include "bf16_operands.cuh"

#include "check.cuh"

namespace qsweep::cuda::detail {

namespace {

// Grid-stride; four elements per step (16-byte loads) when src is 16-byte aligned, else one.
__global__ void round_bf16_kernel(const float* __restrict__ src, __nv_bfloat16* __restrict__ dst, std::size_t n,
                                  bool vec4) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  std::size_t t = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (!vec4) {
    for (; t < n; t += stride) dst[t] = __float2bfloat16_rn(src[t]);
    return;
  }
  const std::size_t n4 = n / 4;
  for (std::size_t i = t; i < n4; i += stride) {
    const float4 v = reinterpret_cast<const float4*>(src)[i];
    dst[4 * i] = __float2bfloat16_rn(v.x);
    dst[4 * i + 1] = __float2bfloat16_rn(v.y);
    dst[4 * i + 2] = __float2bfloat16_rn(v.z);
    dst[4 * i + 3] = __float2bfloat16_rn(v.w);
  }
  for (std::size_t i = 4 * n4 + t; i < n; i += stride) dst[i] = __float2bfloat16_rn(src[i]);  // the tail
}

}  // namespace

void launch_round_bf16(const float* src, __nv_bfloat16* dst, std::size_t n, cudaStream_t s) {
  if (n == 0) return;
  const bool vec4 = reinterpret_cast<std::uintptr_t>(src) % 16 == 0;
  const std::size_t threads = 256, per = vec4 ? 4 : 1;
  std::size_t blocks = (n / per + threads - 1) / threads;
  if (blocks == 0) blocks = 1;
  if (blocks > 8192) blocks = 8192;  // grid-stride beyond: enough to fill any GPU
  round_bf16_kernel<<<static_cast<unsigned>(blocks), threads, 0, s>>>(src, dst, n, vec4);
  CUDA_CHECK(cudaGetLastError());
}

void gemm_bf16(cublasHandle_t h, const GemmCall& g, const __nv_bfloat16* A, const __nv_bfloat16* B, float* C) {
  const cublasOperation_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (g.batch != 1) {
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, ta, tb, g.m, g.n, g.k, &g.alpha, A + g.a_off, CUDA_R_16BF, g.lda,
                                            g.stride_a, B + g.b_off, CUDA_R_16BF, g.ldb, g.stride_b, &g.beta,
                                            C + g.c_off, CUDA_R_32F, g.ldc, g.stride_c, g.batch, CUBLAS_COMPUTE_32F,
                                            CUBLAS_GEMM_DEFAULT));
    return;
  }
  CUBLAS_CHECK(cublasGemmEx(h, ta, tb, g.m, g.n, g.k, &g.alpha, A + g.a_off, CUDA_R_16BF, g.lda, B + g.b_off,
                            CUDA_R_16BF, g.ldb, &g.beta, C + g.c_off, CUDA_R_32F, g.ldc, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
}

}  // namespace qsweep::cuda::detail
