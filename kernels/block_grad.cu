// block_grad.cu — qsweep/cuda/block_grad.h: a decoder block's training forward and backward on
// one GPU, the steps of train/block_grad.cc (forward in LlamaForward::run_block's order, backward
// reversed), each op the CUDA twin of its train/grad_ops.h namesake:
// Every GEMM is a call of qsweep/cuda/gemm_plan.h (checked on the CPU through CBLAS in
// column-major order by tests/test_gemm_plan.cc):
//   linear          cuBLAS SGEMM (TF32 off): y = x·Wᵀ, dx = dy·W, dW = dyᵀ·x (one GEMM per matrix
//                   and backward: beta 0), bias gradients by fixed-order column sums;
//   attention       per (sequence, GQA member m) one strided-batched GEMM over the kv heads for
//                   the scores, the causal softmax (forward_ops.cu), a second for P·V; the [T, T]
//                   probabilities of every head are kept for the backward (n_seq·n_heads·T²
//                   floats); backward: dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)),
//                   dQ = scale·dS·K, dK += scale·dSᵀ·Q, dV += Pᵀ·dO, dK and dV summed over
//                   m = 0, 1, … in order (beta 0 for the first member, 1 after);
//   RoPE backward   the forward kernel with −sin (the transpose rotation);
//   fake quantizer  grad_ops.cu (the CPU's ŵ bit for bit; straight-through backward).
#include "qsweep/cuda/block_grad.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.cuh"
#include "forward_ops.cuh"
#include "grad_ops.cuh"
#include "gemm_mode.cuh"
#include "grow.cuh"

namespace qsweep::cuda {

using detail::Grow;
using detail::put;

namespace {
constexpr const char* kHint = "lower --ctx (Block-AP: --train-ctx), or use a GPU with more memory";
}

struct BlockGrad::Impl {
  BlockDims dims;
  int ordinal = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  int H = 0, Q = 0, KV = 0, QKV = 0, I = 0, hd = 0, nh = 0, nkv = 0;

  // Parameters, the modules' quantizers and the effective weights of the four matrices.
  Grow<float> input_norm, post_norm, q_norm, k_norm, bias[4], mat[4], eff[4];
  bool has_bias[4] = {}, has_qk_norm = false, quantized[4] = {};
  LinearGradView mods[kGradLinears];
  Grow<float> scales[kGradLinears], zeros[kGradLinears];
  bool uploaded = false;

  struct Rope {
    Grow<float> cos, sin, neg_sin;
    int half = 0;
  };
  std::map<int, Rope> ropes;

  // Tape of the last forward.
  int n_seq = 0, seq_len = 0;
  Grow<float> x_in, cur, inv1, xn1, qkv_pre, inv_q, inv_k, qkv, probs, attn, h, inv2, xn2, gu, act, branch;
  // Backward scratch and the gradients.
  Grow<float> dh, dbranch, tmp, dact, dgu, dattn, dqkv, part, colsum;
  Grow<float> g_input_norm, g_post_norm, g_q_norm, g_k_norm, g_bias[4], g_mat[4], g_scales[kGradLinears],
      g_zeros[kGradLinears];

  void bind() const { CUDA_CHECK(cudaSetDevice(ordinal)); }
  bool bf16() const { return dims.bf16_gemm; }  // --compute-dtype bf16 (gemm_mode.cuh)
  std::size_t mat_size(int k) const {
    const std::size_t h = H;
    return k == 0 ? std::size_t(QKV) * h : k == 1 ? h * Q : k == 2 ? 2 * std::size_t(I) * h : h * I;
  }
  std::size_t mat_out(int k) const { return k == 0 ? QKV : k == 1 ? H : k == 2 ? 2 * I : H; }
  const float* weights(int k) const { return quantized[k] ? eff[k].data() : mat[k].data(); }
  float* get(Grow<float>& g, std::size_t n, const char* what) { return g.get(n, what, kHint); }

  // One planned GEMM (qsweep/cuda/gemm_plan.h) on these operands (indexed by Operand).
  void issue(const GemmCall& g, float* const (&ops)[kOperands]) { detail::issue(blas, bf16(), g, ops); }
  static float* mut(const float* p) { return const_cast<float*>(p); }
  // y[M, out] = x[M, in]·W[out, in]ᵀ; dx = dy·W; dW = dyᵀ·x (the Y role holds dy, X holds dx).
  void gemm_xwt(const float* x, const float* w, float* y, int M, int out, int in) {
    issue(linear_forward_call(M, in, out), {mut(x), mut(w), y});
  }
  void gemm_dx(const float* dy, const float* W, float* dx, int M, int in, int out) {
    issue(linear_dx_call(M, in, out), {dx, mut(W), mut(dy)});
  }
  void gemm_dw(const float* dy, const float* x, float* dW, int M, int in, int out) {
    issue(linear_dw_call(M, in, out), {mut(x), dW, mut(dy)});
  }
  void linear(int k, const float* x, float* y, int M, int in, int out) {
    gemm_xwt(x, weights(k), y, M, out, in);
    if (has_bias[k]) detail::launch_add_bias(y, bias[k].data(), M, out, out, stream);
  }
  // dx (nullptr: skipped), the matrix's and the bias's gradients.
  void linear_backward(int k, const float* x, const float* dy, float* dx, int M, int in, int out) {
    if (dx) gemm_dx(dy, weights(k), dx, M, in, out);
    gemm_dw(dy, x, get(g_mat[k], mat_size(k), "weight gradients"), M, in, out);
    if (has_bias[k]) {
      float* gb = get(g_bias[k], out, "bias gradients");
      CUDA_CHECK(cudaMemsetAsync(gb, 0, out * sizeof(float), stream));
      column_sum(dy, M, out, out, gb);
    }
  }
  void column_sum(const float* x, int64_t rows, int cols, int64_t ld, float* out) {
    const std::size_t chunks = static_cast<std::size_t>((rows + 255) / 256);
    detail::launch_column_sum_add(x, rows, cols, ld, out, get(colsum, chunks * cols, "column sums"), stream);
  }
  // RMSNorm backward of vectors (rows or heads), dx in place over dy, the weight's gradient into gw.
  void norm_backward(const float* x, const float* w, const float* inv, float* dy, int64_t ld, int64_t rows,
                     int per_row, int n, Grow<float>& gw) {
    float* p = get(part, static_cast<std::size_t>(rows) * per_row * n, "norm gradients");
    detail::launch_norm_vectors_backward(x, w, inv, dy, dy, ld, rows, per_row, n, p, stream);
    float* g = get(gw, n, "norm weight gradients");
    CUDA_CHECK(cudaMemsetAsync(g, 0, n * sizeof(float), stream));
    column_sum(p, rows * per_row, n, n, g);
  }
  AttnShape attn_shape() const { return AttnShape{n_seq, seq_len, nh, nkv, hd}; }

  void attention_forward() {
    const AttnShape a = attn_shape();
    const float scale = 1.0f / sqrtf(static_cast<float>(hd));
    get(probs, static_cast<std::size_t>(n_seq) * nh * seq_len * seq_len, "attention probabilities");
    float* ops[kOperands] = {};
    ops[static_cast<int>(Operand::Qkv)] = qkv.data(), ops[static_cast<int>(Operand::Probs)] = probs.data();
    ops[static_cast<int>(Operand::Out)] = attn.data();
    for (int sq = 0; sq < n_seq; ++sq)
      for (int m = 0; m < a.group(); ++m) {
        issue(scores_call(a, sq, m, scale), ops);  // S_g = scale·Q_h·K_gᵀ, the kv heads g batched
        detail::launch_causal_softmax(probs.data() + probs_offset(a, sq, m), nkv, seq_len, seq_len, 0,
                                      dims.sliding_window, nullptr, 0, stream);
        issue(pv_call(a, sq, m), ops);  // O_h = P_g·V_g
      }
  }

  // dattn [M, Q] → dqkv [M, QKV] (dq, dk, dv overwritten); dP and dS in `tmp`.
  void attention_backward() {
    const AttnShape a = attn_shape();
    const float scale = 1.0f / sqrtf(static_cast<float>(hd));
    float* dS = get(tmp, std::max(static_cast<std::size_t>(nkv) * seq_len * seq_len,
                                  static_cast<std::size_t>(n_seq) * seq_len * H),
                    "attention score gradients");
    float* ops[kOperands] = {};
    ops[static_cast<int>(Operand::Qkv)] = qkv.data(), ops[static_cast<int>(Operand::Probs)] = probs.data();
    ops[static_cast<int>(Operand::Out)] = dattn.data(), ops[static_cast<int>(Operand::DQkv)] = dqkv.data();
    ops[static_cast<int>(Operand::DS)] = dS;
    for (int sq = 0; sq < n_seq; ++sq)
      for (int m = 0; m < a.group(); ++m) {
        issue(dp_call(a, sq, m), ops);  // dP_g = dO_h·V_gᵀ
        detail::launch_softmax_backward(probs.data() + probs_offset(a, sq, m), dS, nkv, seq_len, stream);
        issue(dq_call(a, sq, m, scale), ops);  // dQ_h = scale·dS·K_g
        issue(dk_call(a, sq, m, scale), ops);  // dK_g (+)= scale·dSᵀ·Q_h, members in order
        issue(dv_call(a, sq, m), ops);         // dV_g (+)= P_gᵀ·dO_h
      }
  }

  void download(float* host, const Grow<float>& g, std::size_t n) {
    if (host && n > 0) CUDA_CHECK(cudaMemcpyAsync(host, g.data(), n * sizeof(float), cudaMemcpyDeviceToHost, stream));
  }
};

BlockGrad::BlockGrad(const BlockDims& dims, int ordinal) : impl_(new Impl) {
  Impl& m = *impl_;
  m.dims = dims;
  m.ordinal = ordinal;
  m.H = dims.hidden, m.hd = dims.head_dim, m.nh = dims.n_heads, m.nkv = dims.n_kv_heads, m.I = dims.inter;
  m.Q = m.nh * m.hd, m.KV = m.nkv * m.hd, m.QKV = m.Q + 2 * m.KV;
  if (m.nkv <= 0 || m.nh % m.nkv != 0 || m.hd % 2 != 0)
    throw std::invalid_argument("BlockGrad: " + std::to_string(m.nh) + " heads, " + std::to_string(m.nkv) +
                                " kv heads, head_dim " + std::to_string(m.hd));
  m.bind();
  CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&m.blas));
  CUBLAS_CHECK(cublasSetStream(m.blas, m.stream));
  CUBLAS_CHECK(cublasSetMathMode(m.blas, CUBLAS_DEFAULT_MATH));  // FP32, no TF32
}

BlockGrad::~BlockGrad() {
  if (impl_->stream) cudaStreamSynchronize(impl_->stream);
  if (impl_->blas) cublasDestroy(impl_->blas);
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

void BlockGrad::upload(const BlockWeightsView& w, const LinearGradView (&mods)[kGradLinears]) {
  Impl& m = *impl_;
  m.bind();
  cudaStream_t s = m.stream;
  const std::size_t H = m.H;
  put(m.input_norm, w.input_norm, H, "input_norm", s);
  put(m.post_norm, w.post_norm, H, "post_attention_norm", s);
  m.has_qk_norm = w.q_norm != nullptr;
  put(m.q_norm, w.q_norm, m.hd, "q_norm", s);
  put(m.k_norm, w.k_norm, m.hd, "k_norm", s);
  const float* mats[4] = {w.qkv, w.o, w.gate_up, w.down};
  const float* biases[4] = {w.qkv_bias, w.o_bias, w.gate_up_bias, w.down_bias};
  for (int k = 0; k < 4; ++k) {
    if (!mats[k]) throw std::invalid_argument("BlockGrad::upload: a weight matrix is missing");
    put(m.mat[k], mats[k], m.mat_size(k), "block weights", s);
    m.has_bias[k] = biases[k] != nullptr;
    put(m.bias[k], biases[k], m.mat_out(k), "block biases", s);
    m.quantized[k] = false;
  }
  for (int l = 0; l < kGradLinears; ++l) {
    const LinearGradView& v = mods[l];
    m.mods[l] = v;
    m.mods[l].scales = m.mods[l].zeros = nullptr;  // host pointers are not kept
    if (v.bits <= 0) continue;
    if (v.matrix < 0 || v.matrix > 3 || v.group <= 0 || v.bits > 16 || !v.scales || !v.zeros ||
        static_cast<std::size_t>(v.row0 + v.out) * v.in > m.mat_size(v.matrix))
      throw std::invalid_argument("BlockGrad::upload: quantizer " + std::to_string(l) + " does not fit its matrix");
    const std::size_t ng = static_cast<std::size_t>((v.in + v.group - 1) / v.group), n = ng * v.out;
    put(m.scales[l], v.scales, n, "quantizer scales", s);
    put(m.zeros[l], v.zeros, n, "quantizer zero points", s);
    m.quantized[v.matrix] = true;
  }
  for (int k = 0; k < 4; ++k) {
    if (!m.quantized[k]) continue;
    float* e = m.get(m.eff[k], m.mat_size(k), "fake-quantized weights");
    CUDA_CHECK(cudaMemcpyAsync(e, m.mat[k].data(), m.mat_size(k) * sizeof(float), cudaMemcpyDeviceToDevice, s));
    for (int l = 0; l < kGradLinears; ++l) {
      const LinearGradView& v = m.mods[l];
      if (v.bits <= 0 || v.matrix != k) continue;
      const std::size_t o = static_cast<std::size_t>(v.row0) * v.in;
      detail::launch_fake_quant(m.mat[k].data() + o, m.scales[l].data(), m.zeros[l].data(), v.out, v.in, v.group,
                                v.bits, e + o, s);
    }
  }
  CUDA_CHECK(cudaStreamSynchronize(s));
  m.uploaded = true;
}

void BlockGrad::set_rope(int seq_len, int half, const float* cos, const float* sin) {
  Impl& m = *impl_;
  m.bind();
  Impl::Rope& r = m.ropes[seq_len];
  const std::size_t n = static_cast<std::size_t>(seq_len) * half;
  r.half = half;
  std::vector<float> neg_sin(n);  // the transpose rotation's table (copied before the sync below)
  for (std::size_t i = 0; i < n; ++i) neg_sin[i] = -sin[i];
  put(r.cos, cos, n, "RoPE table", m.stream);
  put(r.sin, sin, n, "RoPE table", m.stream);
  put(r.neg_sin, neg_sin.data(), n, "RoPE table", m.stream);
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

void BlockGrad::forward(float* x, int n_seq, int seq_len) {
  Impl& m = *impl_;
  m.bind();
  if (!m.uploaded) throw std::logic_error("BlockGrad::forward before upload");
  const auto rit = m.ropes.find(seq_len);
  if (rit == m.ropes.end()) throw std::logic_error("BlockGrad::forward: no RoPE table for this seq_len");
  const int64_t M64 = static_cast<int64_t>(n_seq) * seq_len;
  if (M64 <= 0 || M64 * std::max(m.QKV, 2 * m.I) > INT_MAX)
    throw std::invalid_argument("BlockGrad::forward: " + std::to_string(M64) + " rows do not fit one GEMM");
  const int M = static_cast<int>(M64), H = m.H, Q = m.Q, QKV = m.QKV, I = m.I;
  cudaStream_t s = m.stream;
  const Impl::Rope& rope = rit->second;
  const float a = m.dims.residual_scaled ? m.dims.residual_scale : 1.0f;
  m.n_seq = n_seq, m.seq_len = seq_len;
  const std::size_t MH = static_cast<std::size_t>(M) * H;
  float* xin = put(m.x_in, x, MH, "the block's input", s);
  float* cur = m.get(m.cur, MH, "hidden states");
  CUDA_CHECK(cudaMemcpyAsync(cur, xin, MH * sizeof(float), cudaMemcpyDeviceToDevice, s));
  float* xn1 = m.get(m.xn1, MH, "normed input");
  float* inv1 = m.get(m.inv1, M, "1/rms");
  float* qkv = m.get(m.qkv, static_cast<std::size_t>(M) * QKV, "q, k, v");
  float* attn = m.get(m.attn, static_cast<std::size_t>(M) * Q, "attention output");
  float* branch = m.get(m.branch, MH, "residual branch");
  float* h = m.get(m.h, MH, "attention residual");
  float* xn2 = m.get(m.xn2, MH, "normed residual");
  float* inv2 = m.get(m.inv2, M, "1/rms");
  float* gu = m.get(m.gu, static_cast<std::size_t>(M) * 2 * I, "gate/up");
  float* act = m.get(m.act, static_cast<std::size_t>(M) * I, "SwiGLU");

  detail::launch_norm_vectors(cur, xn1, H, M, 1, H, m.input_norm.data(), m.dims.eps, inv1, s);
  m.linear(0, xn1, qkv, M, H, QKV);
  if (m.has_qk_norm) {
    float* pre = m.get(m.qkv_pre, static_cast<std::size_t>(M) * QKV, "q, k before their norms");
    CUDA_CHECK(cudaMemcpyAsync(pre, qkv, static_cast<std::size_t>(M) * QKV * sizeof(float), cudaMemcpyDeviceToDevice, s));
    detail::launch_norm_vectors(qkv, qkv, QKV, M, m.nh, m.hd, m.q_norm.data(), m.dims.eps,
                                m.get(m.inv_q, static_cast<std::size_t>(M) * m.nh, "q 1/rms"), s);
    detail::launch_norm_vectors(qkv + Q, qkv + Q, QKV, M, m.nkv, m.hd, m.k_norm.data(), m.dims.eps,
                                m.get(m.inv_k, static_cast<std::size_t>(M) * m.nkv, "k 1/rms"), s);
  }
  detail::launch_rope(qkv, QKV, M, seq_len, m.nh, rope.half, rope.cos.data(), rope.sin.data(), nullptr, s);
  detail::launch_rope(qkv + Q, QKV, M, seq_len, m.nkv, rope.half, rope.cos.data(), rope.sin.data(), nullptr, s);
  m.attention_forward();
  m.linear(1, attn, branch, M, Q, H);
  detail::launch_add_scaled(cur, branch, a, static_cast<int64_t>(MH), s);
  CUDA_CHECK(cudaMemcpyAsync(h, cur, MH * sizeof(float), cudaMemcpyDeviceToDevice, s));
  detail::launch_norm_vectors(cur, xn2, H, M, 1, H, m.post_norm.data(), m.dims.eps, inv2, s);
  m.linear(2, xn2, gu, M, H, 2 * I);
  detail::launch_silu_mul_rows(gu, act, M, I, s);
  m.linear(3, act, branch, M, I, H);
  detail::launch_add_scaled(cur, branch, a, static_cast<int64_t>(MH), s);
  CUDA_CHECK(cudaMemcpyAsync(x, cur, MH * sizeof(float), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
}

void BlockGrad::backward(const float* dy, const BlockGradOut& g, float* dx) {
  Impl& m = *impl_;
  m.bind();
  if (m.n_seq == 0) throw std::logic_error("BlockGrad::backward before forward");
  const int M = m.n_seq * m.seq_len, H = m.H, Q = m.Q, QKV = m.QKV, I = m.I;
  const std::size_t MH = static_cast<std::size_t>(M) * H;
  cudaStream_t s = m.stream;
  const Impl::Rope& rope = m.ropes.at(m.seq_len);
  const float a = m.dims.residual_scaled ? m.dims.residual_scale : 1.0f;
  float* dh = put(m.dh, dy, MH, "output gradient", s);
  float* dbranch = m.get(m.dbranch, MH, "branch gradient");
  float* dact = m.get(m.dact, static_cast<std::size_t>(M) * I, "SwiGLU gradient");
  float* dgu = m.get(m.dgu, static_cast<std::size_t>(M) * 2 * I, "gate/up gradient");
  float* dattn = m.get(m.dattn, static_cast<std::size_t>(M) * Q, "attention gradient");
  float* dqkv = m.get(m.dqkv, static_cast<std::size_t>(M) * QKV, "q, k, v gradient");

  // MLP half: y = h + a·down(silu_mul(gate_up(norm(h)))).
  detail::launch_scale_copy(dh, a, dbranch, static_cast<int64_t>(MH), s);
  m.linear_backward(3, m.act.data(), dbranch, dact, M, I, H);
  detail::launch_silu_mul_backward(m.gu.data(), dact, dgu, M, I, s);
  float* tmp = m.get(m.tmp, std::max(MH, static_cast<std::size_t>(m.nkv) * m.seq_len * m.seq_len), "input gradient");
  m.linear_backward(2, m.xn2.data(), dgu, tmp, M, H, 2 * I);
  m.norm_backward(m.h.data(), m.post_norm.data(), m.inv2.data(), tmp, H, M, 1, H, m.g_post_norm);
  detail::launch_add_scaled(dh, tmp, 1.0f, static_cast<int64_t>(MH), s);

  // Attention half: h = x + a·o(attention(rope(qk_norm(qkv(norm(x)))))).
  detail::launch_scale_copy(dh, a, dbranch, static_cast<int64_t>(MH), s);
  m.linear_backward(1, m.attn.data(), dbranch, dattn, M, Q, H);
  m.attention_backward();
  detail::launch_rope(dqkv, QKV, M, m.seq_len, m.nh, rope.half, rope.cos.data(), rope.neg_sin.data(), nullptr, s);
  detail::launch_rope(dqkv + Q, QKV, M, m.seq_len, m.nkv, rope.half, rope.cos.data(), rope.neg_sin.data(), nullptr, s);
  if (m.has_qk_norm) {
    m.norm_backward(m.qkv_pre.data(), m.q_norm.data(), m.inv_q.data(), dqkv, QKV, M, m.nh, m.hd, m.g_q_norm);
    m.norm_backward(m.qkv_pre.data() + Q, m.k_norm.data(), m.inv_k.data(), dqkv + Q, QKV, M, m.nkv, m.hd, m.g_k_norm);
  }
  tmp = m.tmp.data();  // attention_backward used it for dS; free again
  m.linear_backward(0, m.xn1.data(), dqkv, tmp, M, H, QKV);
  m.norm_backward(m.x_in.data(), m.input_norm.data(), m.inv1.data(), tmp, H, M, 1, H, m.g_input_norm);
  detail::launch_add_scaled(tmp, dh, 1.0f, static_cast<int64_t>(MH), s);  // dx = dh + tmp

  // Effective-weight gradients through the quantizers.
  for (int l = 0; l < kGradLinears; ++l) {
    const LinearGradView& v = m.mods[l];
    if (v.bits <= 0) continue;
    const std::size_t o = static_cast<std::size_t>(v.row0) * v.in, n = static_cast<std::size_t>(v.out) * ((v.in + v.group - 1) / v.group);
    detail::launch_fake_quant_backward(m.mat[v.matrix].data() + o, m.scales[l].data(), m.zeros[l].data(), v.out, v.in,
                                       v.group, v.bits, m.g_mat[v.matrix].data() + o,
                                       m.get(m.g_scales[l], n, "scale gradients"), m.get(m.g_zeros[l], n, "zero-point gradients"), s);
    m.download(g.scales[l], m.g_scales[l], n);
    m.download(g.zeros[l], m.g_zeros[l], n);
  }
  m.download(g.input_norm, m.g_input_norm, H);
  m.download(g.post_norm, m.g_post_norm, H);
  if (m.has_qk_norm) m.download(g.q_norm, m.g_q_norm, m.hd), m.download(g.k_norm, m.g_k_norm, m.hd);
  float* mats[4] = {g.qkv, g.o, g.gate_up, g.down};
  float* biases[4] = {g.qkv_bias, g.o_bias, g.gate_up_bias, g.down_bias};
  for (int k = 0; k < 4; ++k) {
    m.download(mats[k], m.g_mat[k], m.mat_size(k));
    if (m.has_bias[k]) m.download(biases[k], m.g_bias[k], m.mat_out(k));
  }
  if (dx) CUDA_CHECK(cudaMemcpyAsync(dx, tmp, MH * sizeof(float), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace qsweep::cuda
