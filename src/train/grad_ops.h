// grad_ops.h — the operators of a Llama-family decoder block and of the model head, each as a
// forward that keeps what its backward needs and that backward: the building blocks of
// block_grad.h (quantization-aware fine-tuning of a block's scales and zero points, EfficientQAT's
// Block-AP, and of the head). Templated on T and instantiated for float (the training path) and
// double (the finite-difference reference of tests/test_grad.cc). GEMMs run as fixed tiles and
// attention as (sequence, head) tasks shared out with OpenMP, the rest single-threaded: every
// value has a fixed operation order, so results do not depend on the thread count. The forward
// arithmetic follows the inference operators of model/cpu_ops.h (std::exp instead of the fast exp).
//
// Conventions: matrices are row-major; linear weights are HF's [out, in]. A backward OVERWRITES
// the gradient of an op's input (dx; pass nullptr where not needed) and ACCUMULATES (+=) into
// the gradients of its parameters (dW, db, dw, ds, dz), so one buffer can gather a parameter's
// gradient over several calls. Saved state ("inv", "probs", ...) is sized by the caller.
//
// Fake quantization (EfficientQAT's Block-AP quantizer) of W [out, in] with groups of `group`
// consecutive columns, scale s and zero point z per (row, group), both trained floats; with
// r = round(w/s) + round(z), qmax = 2^bits − 1:
//     q = clamp(r, 0, qmax),     ŵ = (q − round(z))·s.
// Straight-through estimator: round(x) is differentiated as if it were x (d round(x)/dx = 1),
// and clamp passes the gradient where 0 <= r <= qmax ("inside", bounds included as torch.clamp
// does) and blocks it outside. Hence, per element:
//   inside:  ŵ = (round(w/s) + round(z) − round(z))·s, so
//              ∂ŵ/∂w = s·(1/s) = 1,
//              ∂ŵ/∂s = round(w/s) + s·(−w/s²) = (q − round(z)) − w/s,
//              ∂ŵ/∂z = s·(1 − 1) = 0 (the two round(z) cancel);
//   outside: q is the constant bound, ŵ = (q − round(z))·s, so
//              ∂ŵ/∂w = 0,   ∂ŵ/∂s = q − round(z),   ∂ŵ/∂z = −s.
// and dw = dŵ·∂ŵ/∂w, ds[row, g] = Σ over the group of dŵ·∂ŵ/∂s, dz[row, g] = Σ dŵ·∂ŵ/∂z.
// These are the exact derivatives of the surrogate in which each round(·) is replaced by its
// argument plus the constant rounding offset at the current point, and the clamp by its fixed
// inside/outside pattern there: how tests/test_grad.cc checks them by finite differences.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace qsweep {

// ---- linear: y[rows, out] = x[rows, in]·Wᵀ (+ b) -------------------------------------------
template <typename T>
void linear_forward(const T* x, const T* W, const T* b, T* y, int64_t rows, int in, int out);
// dx = dy·W (overwritten; nullptr skips), dW += dyᵀ·x, db += Σ_rows dy (b may be nullptr).
template <typename T>
void linear_backward(const T* x, const T* W, const T* dy, int64_t rows, int in, int out, T* dx,
                     T* dW, T* db);

// ---- fake quantization (see the header comment); scales, zeros [out, in / group] --------------
template <typename T>
void fake_quant_forward(const T* W, const T* scales, const T* zeros, int out, int in, int group,
                        int bits, T* Wq);
// dW += dŴ·∂ŵ/∂w, dscales += ..., dzeros += ... (STE; any of the three may be nullptr).
template <typename T>
void fake_quant_backward(const T* W, const T* scales, const T* zeros, int out, int in, int group,
                         int bits, const T* dWq, T* dW, T* dscales, T* dzeros);

// ---- RMSNorm of rows: y = x / sqrt(mean(x²) + eps) ⊙ w; inv[r] = 1/sqrt(mean(x[r]²) + eps) ----
template <typename T>
void rmsnorm_forward(const T* x, const T* w, T* y, int64_t rows, int cols, T eps, T* inv);
// dx (may alias dy) and dw +=.
template <typename T>
void rmsnorm_backward(const T* x, const T* w, const T* inv, const T* dy, int64_t rows, int cols,
                      T* dx, T* dw);

// ---- per-head RMSNorm (qwen3 q_norm / k_norm): n_heads heads of width head_dim per row, rows of
// stride ld in x, y, dy and dx (y may alias x, dx may alias dy); one weight [head_dim] shared by
// the heads; inv [rows * n_heads].
template <typename T>
void head_rmsnorm_forward(const T* x, T* y, int64_t ld, int64_t rows, int n_heads, int head_dim,
                          const T* w, T eps, T* inv);
template <typename T>
void head_rmsnorm_backward(const T* x, const T* w, const T* inv, const T* dy, T* dx, int64_t ld,
                           int64_t rows, int n_heads, int head_dim, T* dw);

// ---- RoPE, HF rotate_half convention (model/rope.h): [x1 | x2] → [x1 c − x2 s | x2 c + x1 s] ----
template <typename T>
struct RopeTableT {
  int seq_len = 0, half = 0;
  std::vector<T> cos, sin;  // [seq_len, half], angles in double from rope_inv_freq
  RopeTableT() = default;
  RopeTableT(const ModelConfig& c, int seq_len);
};
// In place on n_heads heads of rows of stride ld; a row's position is its index in its sequence.
template <typename T>
void rope_forward(T* x, int64_t ld, int n_seq, int seq_len, int n_heads, const RopeTableT<T>& t);
// The transpose (= inverse) rotation, in place on the gradient.
template <typename T>
void rope_backward(T* dx, int64_t ld, int n_seq, int seq_len, int n_heads, const RopeTableT<T>& t);

// ---- causal grouped-query attention (model/cpu_ops.h `attention`, without packing) -----------
struct AttnDims {
  int n_seq, seq_len, n_heads, n_kv_heads, head_dim;
  int sliding_window;  // 0 = unlimited; else query i sees keys (i − window, i]
  int64_t probs_size() const { return int64_t(n_seq) * n_heads * seq_len * seq_len; }
};
// q, k, v: rows of stride ld (head h at column h·head_dim of q, kv head h / (n_heads/n_kv_heads));
// out [rows, n_heads·head_dim]; probs [n_seq, n_heads, seq_len, seq_len] (0 where masked).
template <typename T>
void attention_forward(const T* q, const T* k, const T* v, int64_t ld, T* out, T* probs,
                       const AttnDims& a);
// dq, dk, dv: rows of stride ld (e.g. three column ranges of one dqkv buffer), overwritten;
// dk and dv are summed over the query heads that share a kv head.
template <typename T>
void attention_backward(const T* q, const T* k, const T* v, int64_t ld, const T* probs,
                        const T* dout, T* dq, T* dk, T* dv, const AttnDims& a);

// ---- SwiGLU: act[r, i] = silu(gu[r, i])·gu[r, inter + i], gu rows [gate | up] -----------------
template <typename T>
void silu_mul_forward(const T* gu, T* act, int64_t rows, int inter);
template <typename T>
void silu_mul_backward(const T* gu, const T* dact, T* dgu, int64_t rows, int inter);

// ---- scaled residual: x += a·branch (MiniCPM's scale_depth/sqrt(L); a = 1 otherwise) ---------
// Backward: dx passes through unchanged; dbranch = a·dx (overwritten).
template <typename T>
void residual_forward(T* x, const T* branch, T a, int64_t n);
template <typename T>
void residual_backward(const T* dx, T a, int64_t n, T* dbranch);

// ---- the head: final RMSNorm, ÷ cfg.logit_divisor() (minicpm), lm_head [vocab, hidden],
// log-softmax and the mean cross-entropy over n selected rows (rows[i] of x, target targets[i]).
template <typename T>
struct HeadTape {
  int64_t n = 0;
  std::vector<T> xsel;    // [n, hidden] the selected hidden states
  std::vector<T> inv;     // [n] RMSNorm 1/rms
  std::vector<T> xh;      // [n, hidden] lm_head input
  std::vector<T> probs;   // [n, vocab] softmax
};
// Returns the mean NLL (accumulated in double).
template <typename T>
double head_loss_forward(const ModelConfig& cfg, const T* norm, const T* lm_head, const T* x,
                         const int64_t* rows, const int32_t* targets, int64_t n, HeadTape<T>& tape);
// Gradients of dloss·(mean NLL): dx [x_rows, hidden] overwritten (zero on unselected rows),
// dnorm += [hidden], dlm_head += [vocab, hidden] (either may be nullptr).
template <typename T>
void head_loss_backward(const ModelConfig& cfg, const T* norm, const T* lm_head,
                        const int64_t* rows, const int32_t* targets, const HeadTape<T>& tape,
                        T dloss, int64_t x_rows, T* dx, T* dnorm, T* dlm_head);

}  // namespace qsweep
