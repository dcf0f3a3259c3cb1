// bf16_operands.cuh — --compute-dtype bf16 GEMMs on bf16 operands: the engines keep a bf16 copy of
// each resident linear weight (rounded once, when the block is held) and round the activation once
// per GEMM, then cuBLAS multiplies bf16 × bf16 on the tensor cores with fp32 accumulation and an
// fp32 output. The rounding is round-to-nearest-even, as CUBLAS_COMPUTE_32F_FAST_16BF's on fp32
// arrays (gemm_mode.cuh), which reads and converts the fp32 operands inside every GEMM instead: on
// an H200 that ran the 1b preset's forward 2.3× fp32's speed, a fifth of transformers' bf16.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "qsweep/cuda/gemm_plan.h"

namespace qsweep::cuda::detail {

// dst[i] = bf16(src[i]), round to nearest even (NaN stays NaN, overflow gives ±inf).
void launch_round_bf16(const float* src, __nv_bfloat16* dst, std::size_t n, cudaStream_t s);

// One planned call (gemm_plan.h; strided-batched when g.batch > 1) with A and B in bf16 and C in
// fp32 (alpha, beta in fp32); the call's offsets and strides count elements, as for fp32 operands.
void gemm_bf16(cublasHandle_t h, const GemmCall& g, const __nv_bfloat16* A, const __nv_bfloat16* B, float* C);

}  // namespace qsweep::cuda::detail
