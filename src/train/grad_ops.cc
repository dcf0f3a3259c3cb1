// grad_ops.cc — forward/backward of the elementwise and row-wise operators of grad_ops.h: GEMM
// overloads, linear, RMSNorm (rows and per-head), RoPE, SwiGLU and the scaled residual.
// Attention, the fake quantizer and the head are in grad_attention.cc, grad_fake_quant.cc and
// grad_head.cc.
#include "train/grad_ops.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/rope.h"
#include "ops/gemm.h"

namespace qsweep {

// ---- linear ----
template <typename T>
void linear_forward(const T* x, const T* W, const T* b, T* y, int64_t rows, int in, int out) {
  gemm_tiled<T>(false, true, rows, out, in, T(1), x, in, W, in, T(0), y, out);
  if (b)
    for (int64_t r = 0; r < rows; ++r)
      for (int c = 0; c < out; ++c) y[r * out + c] += b[c];
}

template <typename T>
void linear_backward(const T* x, const T* W, const T* dy, int64_t rows, int in, int out, T* dx,
                     T* dW, T* db) {
  if (dx) gemm_tiled<T>(false, false, rows, in, out, T(1), dy, out, W, in, T(0), dx, in);
  if (dW) gemm_tiled<T>(true, false, out, in, rows, T(1), dy, out, x, in, T(1), dW, in);
  if (db)
    for (int64_t r = 0; r < rows; ++r)
      for (int c = 0; c < out; ++c) db[c] += dy[r * out + c];
}

// ---- RMSNorm over one vector: the shared arithmetic of rows and heads ----
namespace {
template <typename T>
T norm_vec(const T* x, const T* w, T* y, int n, T eps) {
  T ss = 0;
  for (int c = 0; c < n; ++c) ss += x[c] * x[c];
  const T inv = T(1) / std::sqrt(ss / static_cast<T>(n) + eps);
  for (int c = 0; c < n; ++c) y[c] = (x[c] * inv) * w[c];
  return inv;
}
// y_c = x_c·inv·w_c with inv = (Σx²/n + eps)^(-1/2), ∂inv/∂x_j = −inv³·x_j/n:
//   dx_j = inv·g_j − x_j·inv³/n·Σ_c g_c x_c  with g = dy ⊙ w;   dw_c += dy_c·x_c·inv.
template <typename T>
void norm_vec_backward(const T* x, const T* w, T inv, const T* dy, T* dx, int n, T* dw) {
  T dot = 0;
  for (int c = 0; c < n; ++c) dot += dy[c] * w[c] * x[c];
  const T k = dot * inv * inv * inv / static_cast<T>(n);
  for (int c = 0; c < n; ++c) {
    const T d = dy[c];  // dx may alias dy
    if (dw) dw[c] += d * x[c] * inv;
    if (dx) dx[c] = inv * d * w[c] - x[c] * k;
  }
}
}  // namespace

template <typename T>
void rmsnorm_forward(const T* x, const T* w, T* y, int64_t rows, int cols, T eps, T* inv) {
  for (int64_t r = 0; r < rows; ++r) inv[r] = norm_vec(x + r * cols, w, y + r * cols, cols, eps);
}

template <typename T>
void rmsnorm_backward(const T* x, const T* w, const T* inv, const T* dy, int64_t rows, int cols,
                      T* dx, T* dw) {
  for (int64_t r = 0; r < rows; ++r)
    norm_vec_backward(x + r * cols, w, inv[r], dy + r * cols, dx ? dx + r * cols : nullptr, cols, dw);
}

template <typename T>
void head_rmsnorm_forward(const T* x, T* y, int64_t ld, int64_t rows, int n_heads, int head_dim,
                          const T* w, T eps, T* inv) {
  for (int64_t r = 0; r < rows; ++r)
    for (int h = 0; h < n_heads; ++h) {
      const int64_t o = r * ld + int64_t(h) * head_dim;
      inv[r * n_heads + h] = norm_vec(x + o, w, y + o, head_dim, eps);
    }
}

template <typename T>
void head_rmsnorm_backward(const T* x, const T* w, const T* inv, const T* dy, T* dx, int64_t ld,
                           int64_t rows, int n_heads, int head_dim, T* dw) {
  for (int64_t r = 0; r < rows; ++r)
    for (int h = 0; h < n_heads; ++h) {
      const int64_t o = r * ld + int64_t(h) * head_dim;
      norm_vec_backward(x + o, w, inv[r * n_heads + h], dy + o, dx ? dx + o : nullptr, head_dim, dw);
    }
}

// ---- RoPE ----
template <typename T>
RopeTableT<T>::RopeTableT(const ModelConfig& c, int seq_len_) : seq_len(seq_len_), half(c.head_dim / 2) {
  QS_CHECK(c.head_dim % 2 == 0, "RoPE needs an even head_dim, got " << c.head_dim);
  const std::vector<double> f = rope_inv_freq(c);
  cos.resize(static_cast<size_t>(seq_len) * half);
  sin.resize(cos.size());
  for (int p = 0; p < seq_len; ++p)
    for (int i = 0; i < half; ++i) {  // the same double angle as RopeTable, rounded once to T
      const double a = p * f[i];
      cos[size_t(p) * half + i] = static_cast<T>(std::cos(a));
      sin[size_t(p) * half + i] = static_cast<T>(std::sin(a));
    }
}

namespace {
// sign +1: the forward rotation; −1: its transpose.
template <typename T>
void rope_rotate(T* x, int64_t ld, int n_seq, int seq_len, int n_heads, const RopeTableT<T>& t, int sign) {
  QS_ASSERT(seq_len <= t.seq_len, "RoPE table of " << t.seq_len << " positions for seq_len " << seq_len);
  const int64_t rows = int64_t(n_seq) * seq_len;
  const int half = t.half;
  for (int64_t r = 0; r < rows; ++r) {
    const int p = static_cast<int>(r % seq_len);
    const T* c = t.cos.data() + size_t(p) * half;
    const T* s = t.sin.data() + size_t(p) * half;
    for (int h = 0; h < n_heads; ++h) {
      T* x1 = x + r * ld + int64_t(h) * 2 * half;
      T* x2 = x1 + half;
      for (int i = 0; i < half; ++i) {
        const T a = x1[i], b = x2[i];
        if (sign > 0) {
          x1[i] = a * c[i] - b * s[i];
          x2[i] = b * c[i] + a * s[i];
        } else {
          x1[i] = a * c[i] + b * s[i];
          x2[i] = b * c[i] - a * s[i];
        }
      }
    }
  }
}
}  // namespace

template <typename T>
void rope_forward(T* x, int64_t ld, int n_seq, int seq_len, int n_heads, const RopeTableT<T>& t) {
  rope_rotate(x, ld, n_seq, seq_len, n_heads, t, +1);
}
template <typename T>
void rope_backward(T* dx, int64_t ld, int n_seq, int seq_len, int n_heads, const RopeTableT<T>& t) {
  rope_rotate(dx, ld, n_seq, seq_len, n_heads, t, -1);
}

// ---- SwiGLU: silu(g) = g·σ(g), silu'(g) = σ(g)·(1 + g·(1 − σ(g))) ----
template <typename T>
void silu_mul_forward(const T* gu, T* act, int64_t rows, int inter) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = gu + r * 2 * inter;
    const T* u = g + inter;
    T* a = act + r * inter;
    for (int i = 0; i < inter; ++i) a[i] = g[i] / (T(1) + std::exp(-g[i])) * u[i];
  }
}

template <typename T>
void silu_mul_backward(const T* gu, const T* dact, T* dgu, int64_t rows, int inter) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = gu + r * 2 * inter;
    const T* u = g + inter;
    const T* da = dact + r * inter;
    T* dg = dgu + r * 2 * inter;
    T* du = dg + inter;
    for (int i = 0; i < inter; ++i) {
      const T sig = T(1) / (T(1) + std::exp(-g[i]));
      dg[i] = da[i] * u[i] * sig * (T(1) + g[i] * (T(1) - sig));
      du[i] = da[i] * g[i] * sig;
    }
  }
}

// ---- scaled residual ----
template <typename T>
void residual_forward(T* x, const T* branch, T a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += branch[i] * a;
}
template <typename T>
void residual_backward(const T* dx, T a, int64_t n, T* dbranch) {
  for (int64_t i = 0; i < n; ++i) dbranch[i] = dx[i] * a;
}

#define QS_GRAD_OPS_INSTANTIATE(T)                                                                   \
  template void linear_forward<T>(const T*, const T*, const T*, T*, int64_t, int, int);             \
  template void linear_backward<T>(const T*, const T*, const T*, int64_t, int, int, T*, T*, T*);    \
  template void rmsnorm_forward<T>(const T*, const T*, T*, int64_t, int, T, T*);                    \
  template void rmsnorm_backward<T>(const T*, const T*, const T*, const T*, int64_t, int, T*, T*);  \
  template void head_rmsnorm_forward<T>(const T*, T*, int64_t, int64_t, int, int, const T*, T, T*); \
  template void head_rmsnorm_backward<T>(const T*, const T*, const T*, const T*, T*, int64_t,       \
                                         int64_t, int, int, T*);                                    \
  template struct RopeTableT<T>;                                                                    \
  template void rope_forward<T>(T*, int64_t, int, int, int, const RopeTableT<T>&);                  \
  template void rope_backward<T>(T*, int64_t, int, int, int, const RopeTableT<T>&);                 \
  template void silu_mul_forward<T>(const T*, T*, int64_t, int);                                    \
  template void silu_mul_backward<T>(const T*, const T*, T*, int64_t, int);                         \
  template void residual_forward<T>(T*, const T*, T, int64_t);                                      \
  template void residual_backward<T>(const T*, T, int64_t, T*);

QS_GRAD_OPS_INSTANTIATE(float)
QS_GRAD_OPS_INSTANTIATE(double)
#undef QS_GRAD_OPS_INSTANTIATE

}  // namespace qsweep
