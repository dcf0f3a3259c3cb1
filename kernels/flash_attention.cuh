// flash_attention.cuh — fused, tiled causal GQA attention on the tensor cores (flash attention's
// online softmax through WMMA, fp32 accumulation): the scores of a 64-query tile never leave the
// SM, and key tiles after the tile's last query are skipped. Two arithmetics:
//   bf16    (--compute-dtype bf16) Q, K, V in bf16 (rounded once, as the GEMM path's), scores and
//           softmax in fp32, the unnormalised exponentials rounded to bf16 for P·V (the GEMM path
//           rounds the normalised probabilities instead), the row sum in fp32 from the unrounded
//           exponentials, one division per output at the end.
//   tf32x3  (--compute-dtype tf32x3) fp32 Q, K, V and P, every product as three TF32 products of
//           split operands (tf32x3.cuh's scheme): fp32-class results on the tensor cores.
// Semantics are launch_attention's for unpacked sequences (causal, optional sliding window). No
// attention entropy (calibration keeps the GEMM path). The body is flash_attention_body.cuh.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace qsweep::cuda::detail {

// Whether the fused kernel takes this head dimension on this device (compute capability 8.0 and
// later): bf16 32, 64 and 128 (kjv-llama, SmolLM2, Llama-3, Qwen, Mistral, MiniCPM); tf32x3 32
// and 64 (its split Q fragments take 2·D registers per thread). Else the caller keeps the GEMM path.
bool flash_attention_supports(int head_dim, bool tf32x3);

// out[r, h·D + c] (rows of stride ld_out, fp32) for n_seq sequences of T rows each; q, k, v rows
// of stride ld (elements): q's head h at column h·D, k's and v's kv head g = h / (n_heads /
// n_kv_heads) at g·D. window > 0: query i sees keys (i − window, i].
void flash_attention_bf16(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t ld,
                          float* out, int64_t ld_out, int n_seq, int T, int n_heads, int n_kv_heads, int head_dim,
                          int window, cudaStream_t s);
void flash_attention_tf32x3(const float* q, const float* k, const float* v, int64_t ld, float* out, int64_t ld_out,
                            int n_seq, int T, int n_heads, int n_kv_heads, int head_dim, int window, cudaStream_t s);

}  // namespace qsweep::cuda::detail
