// cpu_ops.h — the non-GEMM operators of the CPU forward pass (RMSNorm, per-head RMSNorm, SwiGLU,
// causal GQA attention, log-softmax NLL), multi-threaded over rows or (sequence, head) pairs with OpenMP.
// Every output row is produced by one thread with a fixed operation order, so results do not
// depend on the thread count — the basis of "1 rank and 64 ranks give the same numbers".
#pragma once
#include <cstdint>

namespace qsweep {

// y[r,:] = x[r,:] / sqrt(mean(x[r,:]^2) + eps) * w   (x and y may alias)
void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int cols, float eps);

// RMSNorm of each of n_heads heads of width head_dim in each of `rows` rows of stride ld, in place,
// with one weight vector w [head_dim] shared by the heads (qwen3's q_norm / k_norm). Same
// arithmetic per head as rmsnorm() per row.
void head_rmsnorm(float* x, int64_t ld, int64_t rows, int n_heads, int head_dim, const float* w,
                  float eps);

// x[i] += y[i] * a (a residual branch scaled before it is added: MiniCPM's scale_depth).
void add_scaled(float* x, const float* y, float a, int64_t n);

// act[r, i] = silu(gu[r, i]) * gu[r, inter + i]; gu rows are [gate | up].
void silu_mul(const float* gu, float* act, int64_t rows, int inter);

// y[r, :] += b for each row (bias of a linear layer).
void add_bias(float* y, const float* b, int64_t rows, int cols, int64_t ld);

struct AttentionShape {
  int n_seq, seq_len, n_heads, n_kv_heads, head_dim;
  int sliding_window;  // 0 = unlimited
  // Optional [n_seq * n_heads]: Σ over query positions of the entropy −Σ p ln p of that head's
  // attention distribution (calibration statistics); nullptr skips the extra work.
  double* entropy = nullptr;
  // Optional packing ([n_seq * seq_len] each, no sliding window): query row i of a sequence sees
  // keys [0, prefix_end[i]) and [branch_begin[i], i] (prefix_end <= branch_begin), so several
  // branches after a shared prefix run as one sequence, each seeing the prefix and itself.
  const int32_t* prefix_end = nullptr;
  const int32_t* branch_begin = nullptr;
};
// Causal grouped-query attention. q, k, v point into rows of stride ld_qkv (query head h at
// column h*head_dim of q; its key/value head is h / (n_heads / n_kv_heads)); out has rows of
// n_heads*head_dim. Scores use scale 1/sqrt(head_dim), softmax in fp32.
void attention(const float* q, const float* k, const float* v, int64_t ld_qkv, float* out,
               const AttentionShape& s);

// For each of n rows of logits [n, vocab]: nll[r] = logsumexp(logits[r]) - logits[r][target[r]].
void rows_nll(const float* logits, int64_t n, int vocab, const int32_t* targets, double* nll);

// KL(p_ref ‖ p) per row for two logit matrices [n, vocab] (softmax of each), and whether their
// top-1 tokens agree.
void rows_kl(const float* ref_logits, const float* logits, int64_t n, int vocab, double* kl,
             uint8_t* top1_agree);

// exp(x) for float vectors, |relative error| < 2e-7 over the normal range (vectorisable).
void exp_inplace(float* x, int64_t n);

}  // namespace qsweep
