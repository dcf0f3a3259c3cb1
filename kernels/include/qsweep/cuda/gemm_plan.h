// qsweep/cuda/gemm_plan.h — the GEMMs of the training engine (kernels/block_grad.cu) as data:
// each is a column-major (cuBLAS-convention) call with its operands named by role and offset, so
// the engine issues exactly these calls to cuBLAS and tests/test_gemm_plan.cc issues the same
// calls to CBLAS in column-major order on the CPU, checking every transpose, leading dimension,
// batch stride and GQA offset against train/grad_ops.h's row-major linear and attention ops — the
// index arithmetic is verified in CI without a GPU. Header-only plain C++ (no CUDA types).
//
// Row-major conventions of the training tape: x [M, in], W [out, in], y [M, out]; the fused
// q|k|v rows [M, QKV] (QKV = (heads + 2·kv_heads)·head_dim; query head h at column h·hd, kv
// head g at Q + g·hd, values at Q + KV + g·hd); attention output [M, Q]; probabilities of
// sequence s, GQA member m (query heads h = g·group + m, g = 0..kv_heads−1) in kv_heads
// consecutive [T, T] blocks at probs_offset(s, m).
#pragma once

#include <cstdint>

namespace qsweep::cuda {

// Operand roles: the linear's x, W, y; the attention's q|k|v tape, probabilities, output (or its
// gradient), the q|k|v gradient, and the scratch of one (sequence, member)'s dP / dS blocks.
enum class Operand { X, W, Y, Qkv, Probs, Out, DQkv, DS };
constexpr int kOperands = 8;

struct GemmCall {
  bool trans_a = false, trans_b = false;  // op(A) = Aᵀ when set
  int m = 0, n = 0, k = 0;                // C [m, n] = alpha·op(A) [m, k]·op(B) [k, n] + beta·C
  float alpha = 1.0f, beta = 0.0f;
  Operand a = Operand::X, b = Operand::X, c = Operand::X;
  int64_t a_off = 0, b_off = 0, c_off = 0;  // elements into each operand
  int lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // between batch members
  int batch = 1;
};

// ---- linear: y = x·Wᵀ, dx = dy·W, dW = dyᵀ·x (dy and dx take the Y and X roles) -------------
inline GemmCall linear_forward_call(int M, int in, int out) {  // column-major yᵀ = W·xᵀ
  GemmCall g;
  g.trans_a = true, g.m = out, g.n = M, g.k = in;
  g.a = Operand::W, g.lda = in, g.b = Operand::X, g.ldb = in, g.c = Operand::Y, g.ldc = out;
  return g;
}
inline GemmCall linear_dx_call(int M, int in, int out) {  // dxᵀ = Wᵀ·dyᵀ
  GemmCall g;
  g.m = in, g.n = M, g.k = out;
  g.a = Operand::W, g.lda = in, g.b = Operand::Y, g.ldb = out, g.c = Operand::X, g.ldc = in;
  return g;
}
inline GemmCall linear_dw_call(int M, int in, int out) {  // dWᵀ = xᵀ·dy
  GemmCall g;
  g.trans_b = true, g.m = in, g.n = out, g.k = M;
  g.a = Operand::X, g.lda = in, g.b = Operand::Y, g.ldb = out, g.c = Operand::W, g.ldc = in;
  return g;
}

// ---- attention of one sequence s and GQA member m, the kv heads batched --------------------
struct AttnShape {
  int n_seq = 0, seq_len = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int group() const { return n_heads / n_kv_heads; }
  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  int qkv() const { return q_dim() + 2 * kv_dim(); }
};

inline int64_t probs_offset(const AttnShape& a, int s, int m) {
  return (static_cast<int64_t>(s) * a.group() + m) * a.n_kv_heads * a.seq_len * a.seq_len;
}

namespace plan_detail {
// The common frame: one [T, T] block per kv head, head-strided operands.
inline GemmCall batched(const AttnShape& a) {
  GemmCall g;
  g.batch = a.n_kv_heads;
  return g;
}
inline int64_t row0(const AttnShape& a, int s) { return static_cast<int64_t>(s) * a.seq_len; }
inline int64_t q_off(const AttnShape& a, int s, int m) { return row0(a, s) * a.qkv() + static_cast<int64_t>(m) * a.head_dim; }
inline int64_t k_off(const AttnShape& a, int s) { return row0(a, s) * a.qkv() + a.q_dim(); }
inline int64_t v_off(const AttnShape& a, int s) { return k_off(a, s) + a.kv_dim(); }
inline int64_t o_off(const AttnShape& a, int s, int m) { return row0(a, s) * a.q_dim() + static_cast<int64_t>(m) * a.head_dim; }
}  // namespace plan_detail

// Scores of the queries [q0, q0 + tq) against keys [0, q0 + tq): S_g [tq, kn] = scale·Q_h·K_gᵀ
// (column-major Sᵀ = K_g·Q_hᵀ) into blocks of tq·kn at `scores` + s_off. The evaluation forward
// (block_forward.cu) computes chunks of queries into a scratch (role DS); training keeps whole
// [T, T] blocks in Probs.
inline GemmCall scores_call(const AttnShape& a, int s, int m, float scale, int q0, int tq, Operand scores,
                            int64_t s_off) {
  using namespace plan_detail;
  GemmCall g = batched(a);
  const int hd = a.head_dim, kn = q0 + tq;
  g.trans_a = true, g.m = kn, g.n = tq, g.k = hd, g.alpha = scale;
  g.a = Operand::Qkv, g.a_off = k_off(a, s), g.lda = a.qkv(), g.stride_a = hd;
  g.b = Operand::Qkv, g.b_off = q_off(a, s, m) + static_cast<int64_t>(q0) * a.qkv(), g.ldb = a.qkv();
  g.stride_b = static_cast<int64_t>(a.group()) * hd;
  g.c = scores, g.c_off = s_off, g.ldc = kn, g.stride_c = static_cast<int64_t>(tq) * kn;
  return g;
}
// O_h [tq, hd] = P_g [tq, kn]·V_g [kn, hd] into Out's rows q0.. (column-major Oᵀ = V_gᵀ·Pᵀ).
inline GemmCall pv_call(const AttnShape& a, int s, int m, int q0, int tq, Operand probs, int64_t p_off) {
  using namespace plan_detail;
  GemmCall g = batched(a);
  const int hd = a.head_dim, kn = q0 + tq;
  g.m = hd, g.n = tq, g.k = kn;
  g.a = Operand::Qkv, g.a_off = v_off(a, s), g.lda = a.qkv(), g.stride_a = hd;
  g.b = probs, g.b_off = p_off, g.ldb = kn, g.stride_b = static_cast<int64_t>(tq) * kn;
  g.c = Operand::Out, g.c_off = o_off(a, s, m) + static_cast<int64_t>(q0) * a.q_dim(), g.ldc = a.q_dim();
  g.stride_c = static_cast<int64_t>(a.group()) * hd;
  return g;
}
// Training's whole sequences: [T, T] blocks in Probs at probs_offset(s, m).
inline GemmCall scores_call(const AttnShape& a, int s, int m, float scale) {
  return scores_call(a, s, m, scale, 0, a.seq_len, Operand::Probs, probs_offset(a, s, m));
}
inline GemmCall pv_call(const AttnShape& a, int s, int m) {
  return pv_call(a, s, m, 0, a.seq_len, Operand::Probs, probs_offset(a, s, m));
}
// dP_g [T, T] = dO_h·V_gᵀ into the DS scratch of kv_heads [T, T] blocks (the softmax backward
// then makes it dS in place).
inline GemmCall dp_call(const AttnShape& a, int s, int m) {
  using namespace plan_detail;
  GemmCall g = batched(a);
  const int T = a.seq_len, hd = a.head_dim;
  g.trans_a = true, g.m = T, g.n = T, g.k = hd;
  g.a = Operand::Qkv, g.a_off = v_off(a, s), g.lda = a.qkv(), g.stride_a = hd;
  g.b = Operand::Out, g.b_off = o_off(a, s, m), g.ldb = a.q_dim(), g.stride_b = static_cast<int64_t>(a.group()) * hd;
  g.c = Operand::DS, g.ldc = T, g.stride_c = static_cast<int64_t>(T) * T;
  return g;
}
// dQ_h [T, hd] = scale·dS·K_g into DQkv (column-major dQᵀ = K_gᵀ·dSᵀ).
inline GemmCall dq_call(const AttnShape& a, int s, int m, float scale) {
  using namespace plan_detail;
  GemmCall g = batched(a);
  const int T = a.seq_len, hd = a.head_dim;
  g.m = hd, g.n = T, g.k = T, g.alpha = scale;
  g.a = Operand::Qkv, g.a_off = k_off(a, s), g.lda = a.qkv(), g.stride_a = hd;
  g.b = Operand::DS, g.ldb = T, g.stride_b = static_cast<int64_t>(T) * T;
  g.c = Operand::DQkv, g.c_off = q_off(a, s, m), g.ldc = a.qkv(), g.stride_c = static_cast<int64_t>(a.group()) * hd;
  return g;
}
// dK_g [T, hd] (+)= scale·dSᵀ·Q_h into DQkv (column-major dKᵀ = Q_hᵀ·dS): beta 0 for m = 0, 1 after.
inline GemmCall dk_call(const AttnShape& a, int s, int m, float scale) {
  using namespace plan_detail;
  GemmCall g = batched(a);
  const int T = a.seq_len, hd = a.head_dim;
  g.trans_b = true, g.m = hd, g.n = T, g.k = T, g.alpha = scale, g.beta = m == 0 ? 0.0f : 1.0f;
  g.a = Operand::Qkv, g.a_off = q_off(a, s, m), g.lda = a.qkv(), g.stride_a = static_cast<int64_t>(a.group()) * hd;
  g.b = Operand::DS, g.ldb = T, g.stride_b = static_cast<int64_t>(T) * T;
  g.c = Operand::DQkv, g.c_off = k_off(a, s), g.ldc = a.qkv(), g.stride_c = hd;
  return g;
}
// dV_g [T, hd] (+)= P_gᵀ·dO_h into DQkv (column-major dVᵀ = dO_hᵀ·P): P at probs_offset(s, m).
inline GemmCall dv_call(const AttnShape& a, int s, int m) {
  using namespace plan_detail;
  GemmCall g = batched(a);
  const int T = a.seq_len, hd = a.head_dim;
  g.trans_b = true, g.m = hd, g.n = T, g.k = T, g.beta = m == 0 ? 0.0f : 1.0f;
  g.a = Operand::Out, g.a_off = o_off(a, s, m), g.lda = a.q_dim(), g.stride_a = static_cast<int64_t>(a.group()) * hd;
  g.b = Operand::Probs, g.b_off = probs_offset(a, s, m), g.ldb = T, g.stride_b = static_cast<int64_t>(T) * T;
  g.c = Operand::DQkv, g.c_off = v_off(a, s), g.ldc = a.qkv(), g.stride_c = hd;
  return g;
}

}  // namespace qsweep::cuda
