// grad_ops.cuh — launchers of the training kernels (kernels/grad_ops.cu): the CUDA twins of the
// non-GEMM operators of train/grad_ops.h that block_grad.cu needs (fake quantization and its
// straight-through backward, RMSNorm rows and heads with 1/rms kept, their backwards, SwiGLU's
// backward, the attention softmax's backward, column sums for bias and norm-weight gradients).
// fp32, row-major, the CPU ops' formulas; parameter gradients are summed in a fixed order (no
// atomics), so results do not vary from run to run. Each launcher checks the launch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace qsweep::cuda::detail {

// Wq = (clamp(round(W/s) + round(z), 0, qmax) − round(z))·s per (row, group of `group` columns);
// scales, zeros [out, ⌈in/group⌉]. Rows of W and Wq at stride `in`.
void launch_fake_quant(const float* W, const float* scales, const float* zeros, int out, int in, int group, int bits,
                       float* Wq, cudaStream_t s);
// dW holds d(effective weights) and becomes d(weights) by the STE in place (0 where clamped);
// dscales, dzeros get the group sums (overwritten).
void launch_fake_quant_backward(const float* W, const float* scales, const float* zeros, int out, int in, int group,
                                int bits, float* dW, float* dscales, float* dzeros, cudaStream_t s);

// RMSNorm of `rows` vectors of `n` values, vector v at x + (v / per_row)·ld + (v % per_row)·n
// (rows of a matrix: per_row 1, ld = n; heads: per_row = n_heads, ld = row stride). y may alias x.
// inv[v] = 1/sqrt(mean(x²) + eps); y = (x·inv)·w.
void launch_norm_vectors(const float* x, float* y, int64_t ld, int64_t rows, int per_row, int n, const float* w,
                         float eps, float* inv, cudaStream_t s);
// Its backward: dx (may alias dy) = inv·dy·w − x·(Σ dy·w·x)·inv³/n, and part[v, c] = dy·x·inv
// (contiguous [rows·per_row, n]) for the weight's gradient (column-summed by the caller).
void launch_norm_vectors_backward(const float* x, const float* w, const float* inv, const float* dy, float* dx,
                                  int64_t ld, int64_t rows, int per_row, int n, float* part, cudaStream_t s);

// out[c] += Σ_r x[r·ld + c] for c < cols, summed over fixed chunks of rows, then the chunks in
// order; scratch holds ⌈rows / 256⌉·cols floats.
void launch_column_sum_add(const float* x, int64_t rows, int cols, int64_t ld, float* out, float* scratch,
                           cudaStream_t s);

// SwiGLU's backward: dgu rows [dgate | dup] from gu rows [gate | up] and dact.
void launch_silu_mul_backward(const float* gu, const float* dact, float* dgu, int64_t rows, int inter,
                              cudaStream_t s);

// Softmax backward in place on `blocks` row-major [T, T] blocks: dS = P ⊙ (dP − Σ_j P·dP) per
// row (P is 0 where masked, so is dS).
void launch_softmax_backward(const float* P, float* dPS, int64_t blocks, int T, cudaStream_t s);

// Cross-entropy rows, in place: logits [n, vocab] become c·(softmax − onehot(target)) and
// nll[r] = logsumexp − logit[target] (the sum of exponentials in fp64, as grad_head.cc).
void launch_softmax_xent_rows(float* logits, int64_t n, int vocab, const int32_t* targets, float c, double* nll,
                              cudaStream_t s);

// y = a·x, n floats.
void launch_scale_copy(const float* x, float a, float* y, int64_t n, cudaStream_t s);

}  // namespace qsweep::cuda::detail
