// forward_ops.cuh — launchers of the forward pass's kernels on device pointers and a stream
// (kernels/forward_ops.cu, rmsnorm.cu): the CUDA twins of model/cpu_ops.h and model/rope.h, used
// by block_forward.cu. Row-major throughout, as on the CPU; each launcher checks the launch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace qsweep::cuda::detail {

// y[r,:] = x[r,:] / sqrt(mean(x[r,:]²) + eps) * w  (x and y may alias)
void launch_rmsnorm(const float* x, const float* w, float* y, int64_t rows, int cols, float eps, cudaStream_t s);
// Per-head RMSNorm in place (qwen3's q_norm / k_norm): heads of head_dim in rows of stride ld.
void launch_head_rmsnorm(float* x, int64_t ld, int64_t rows, int n_heads, int head_dim, const float* w, float eps,
                         cudaStream_t s);
// Rotary embedding (rotate_half) of n_heads heads of 2*half in rows of stride ld; a row's position
// is positions[r] when given, else r % seq_len; cos/sin tables [>= max position + 1, half].
void launch_rope(float* x, int64_t ld, int64_t rows, int seq_len, int n_heads, int half, const float* cos,
                 const float* sin, const int32_t* positions, cudaStream_t s);
// Causal GQA attention over n_seq sequences of seq_len (model/cpu_ops.h attention's semantics:
// sliding window, packed prefix/branch masks). q, k, v in rows of stride ld; out rows of
// n_heads*head_dim. entropy: [n_seq * n_heads * seq_len] per query row, or nullptr.
void launch_attention(const float* q, const float* k, const float* v, int64_t ld, float* out, int n_seq, int seq_len,
                      int n_heads, int n_kv_heads, int head_dim, int sliding_window, const int32_t* prefix_end,
                      const int32_t* branch_begin, double* entropy, cudaStream_t s);
// Softmax, in place, of `batch` blocks of Tq score rows of length kn (row-major, ld kn): row i of a
// block is query position q0 + i, which sees keys [lo, q0 + i] (lo from the sliding window, 0
// without); the others get probability 0. entropy, when not null: −Σ p ln p of row i of block b
// at entropy[b * ent_stride + q0 + i]. p16, when not null (--compute-dtype bf16): the probabilities
// go there rounded to bf16, in the same layout, and scores keeps the unnormalised exponentials.
void launch_causal_softmax(float* scores, int batch, int Tq, int kn, int q0, int sliding_window, double* entropy,
                           int64_t ent_stride, cudaStream_t s, __nv_bfloat16* p16 = nullptr);
// act[r, i] = silu(gu[r, i]) * gu[r, inter + i]
void launch_silu_mul_rows(const float* gu, float* act, int64_t rows, int inter, cudaStream_t s);
// y[r, c] += b[c] for rows of stride ld
void launch_add_bias(float* y, const float* b, int64_t rows, int cols, int64_t ld, cudaStream_t s);
// x[i] += y[i] * a
void launch_add_scaled(float* x, const float* y, float a, int64_t n, cudaStream_t s);
// x[i] /= d
void launch_divide(float* x, float d, int64_t n, cudaStream_t s);
// *flag = 1 when any of x[0, n) is inf or NaN (flag zeroed by the caller).
void launch_flag_non_finite(const float* x, std::size_t n, int* flag, cudaStream_t s);
// nll[r] = logsumexp(logits[r]) − logits[r][targets[r]] (the sum of exponentials in double)
void launch_rows_nll(const float* logits, int64_t n, int vocab, const int32_t* targets, double* nll, cudaStream_t s);
// kl[r] = KL(softmax(ref_logits[r]) ‖ softmax(logits[r])), top1[r] = whether their first argmaxes
// agree (model/cpu_ops.h rows_kl)
void launch_rows_kl(const float* ref_logits, const float* logits, int64_t n, int vocab, double* kl, uint8_t* top1,
                    cudaStream_t s);

}  // namespace qsweep::cuda::detail
