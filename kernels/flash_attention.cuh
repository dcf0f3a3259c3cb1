// flash_attention.cuh — a fused, tiled causal GQA attention for --compute-dtype bf16 (flash
// attention's online softmax on bf16 tensor cores through WMMA, fp32 accumulation): the scores of a
// 64-query tile never leave the SM, and key tiles after the tile's last query are skipped.
//
// Semantics are launch_attention's for unpacked sequences (causal, optional sliding window), with
// --compute-dtype bf16's roundings: Q, K, V in bf16 (rounded once, as the GEMM path's), scores and
// the softmax in fp32, the unnormalised exponentials rounded to bf16 for P·V (the GEMM path rounds
// the normalised probabilities instead), the row sum in fp32 from the unrounded exponentials, one
// division per output at the end. No attention entropy (calibration keeps the GEMM path).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace qsweep::cuda::detail {

// Whether flash_attention_bf16 takes this head dimension (32, 64 and 128: kjv-llama, SmolLM2,
// Llama-3, Qwen, Mistral, MiniCPM) on this device (compute capability 8.0 and later); the caller keeps the GEMM path for the others.
bool flash_attention_supports(int head_dim);

// out[r, h·D + c] (rows of stride ld_out, fp32) for n_seq sequences of T rows each; q, k, v are
// bf16 with rows of stride ld (elements): q's head h at column h·D, k's and v's kv head
// g = h / (n_heads / n_kv_heads) at g·D. window > 0: query i sees keys (i − window, i].
void flash_attention_bf16(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t ld,
                          float* out, int64_t ld_out, int n_seq, int T, int n_heads, int n_kv_heads, int head_dim,
                          int window, cudaStream_t s);

}  // namespace qsweep::cuda::detail
