// block_grad.cc — block_forward (the order of LlamaForward::run_block) and block_backward (the
// same steps reversed). Linear modules with a quantizer use their fake-quantized weights in both
// passes; the gradient with respect to those effective weights is then mapped through the STE to
// d(weights), d(scales), d(zeros) of each quantized module, and passed through unchanged for the
// modules of a fused matrix that are not quantized.
#include "train/block_grad.h"

#include <algorithm>
#include <initializer_list>

#include "core/error.h"

namespace qsweep {

namespace {

template <typename T>
void check_size(const std::vector<T>& v, size_t n, bool optional, const char* what) {
  QS_CHECK(v.size() == n || (optional && v.empty()),
           "block parameters: " << what << " has " << v.size() << " values, expected " << n
                                << (optional ? " (or none)" : ""));
}


// The weights a fused matrix multiplies with: its fake-quantized copy in `eff` when one of
// `mods` is quantized, else the parameters themselves (eff cleared).
template <typename T>
const T* effective(const ModelConfig& cfg, const BlockParams<T>& p, std::initializer_list<Linear> mods,
                   std::vector<T>& eff) {
  const std::vector<T>& W = p.matrix(*mods.begin());
  bool any = false;
  for (Linear l : mods) any = any || p.quant[static_cast<int>(l)].enabled();
  if (!any) {
    eff.clear();
    return W.data();
  }
  eff = W;
  for (Linear l : mods) {
    const LinearQuant<T>& q = p.quant[static_cast<int>(l)];
    if (!q.enabled()) continue;
    const LinearRows lr = linear_rows(cfg, l);
    const size_t o = size_t(lr.row0) * lr.in;
    fake_quant_forward<T>(W.data() + o, q.scales.data(), q.zeros.data(), lr.out, lr.in, q.group,
                          q.bits, eff.data() + o);
  }
  return eff.data();
}

// dW holds the gradient with respect to the effective weights of a fused matrix; for each
// quantized module of `mods`, its rows become d(weights) by the STE and d(scales), d(zeros) fill g.
template <typename T>
void quant_backward(const ModelConfig& cfg, const BlockParams<T>& p, std::initializer_list<Linear> mods,
                    std::vector<T>& dW, BlockParams<T>& g) {
  for (Linear l : mods) {
    const int m = static_cast<int>(l);
    const LinearQuant<T>& q = p.quant[m];
    if (!q.enabled()) continue;
    const LinearRows lr = linear_rows(cfg, l);
    const size_t o = size_t(lr.row0) * lr.in, n = size_t(lr.out) * lr.in;
    const std::vector<T> dWq(dW.begin() + o, dW.begin() + o + n);
    std::fill(dW.begin() + o, dW.begin() + o + n, T(0));
    fake_quant_backward<T>(p.matrix(l).data() + o, q.scales.data(), q.zeros.data(), lr.out, lr.in,
                           q.group, q.bits, dWq.data(), dW.data() + o, g.quant[m].scales.data(),
                           g.quant[m].zeros.data());
  }
}

template <typename T>
void zeros_like(const std::vector<T>& v, std::vector<T>& z) {
  z.assign(v.size(), T(0));
}

template <typename T>
T residual_scale(const ModelConfig& cfg) {
  return cfg.mup_scaling ? static_cast<T>(cfg.residual_scale()) : T(1);
}

}  // namespace

template <typename T>
void check_block_params(const ModelConfig& cfg, const BlockParams<T>& p) {
  const size_t H = cfg.hidden_size, Q = cfg.q_dim(), KV = cfg.kv_dim(), I = cfg.intermediate_size;
  check_size(p.input_norm, H, false, "input_norm");
  check_size(p.post_norm, H, false, "post_norm");
  check_size(p.q_norm, cfg.qk_norm ? size_t(cfg.head_dim) : 0, false, "q_norm");
  check_size(p.k_norm, cfg.qk_norm ? size_t(cfg.head_dim) : 0, false, "k_norm");
  check_size(p.qkv, (Q + 2 * KV) * H, false, "qkv");
  check_size(p.qkv_bias, Q + 2 * KV, true, "qkv_bias");
  check_size(p.o, H * Q, false, "o");
  check_size(p.o_bias, H, true, "o_bias");
  check_size(p.gate_up, 2 * I * H, false, "gate_up");
  check_size(p.gate_up_bias, 2 * I, true, "gate_up_bias");
  check_size(p.down, H * I, false, "down");
  check_size(p.down_bias, H, true, "down_bias");
  for (int m = 0; m < kNumLinear; ++m) {
    const LinearQuant<T>& q = p.quant[m];
    if (!q.enabled()) continue;
    const LinearRows lr = linear_rows(cfg, static_cast<Linear>(m));
    const char* name = linear_short_name(static_cast<Linear>(m));
    QS_CHECK(q.group > 0, "quantizer of " << name << ": group " << q.group << " must be positive");
    check_size(q.scales, size_t(lr.out) * ((lr.in + q.group - 1) / q.group), false, "quantizer scales");
    check_size(q.zeros, size_t(lr.out) * ((lr.in + q.group - 1) / q.group), false, "quantizer zeros");
  }
}

template <typename T>
void block_forward(const ModelConfig& cfg, const BlockParams<T>& p, T* x, int n_seq, int seq_len,
                   BlockTape<T>& t) {
  check_block_params(cfg, p);
  const int64_t M = int64_t(n_seq) * seq_len;
  const int H = cfg.hidden_size, Q = cfg.q_dim(), KV = cfg.kv_dim(), I = cfg.intermediate_size;
  const int QKV = Q + 2 * KV, nh = cfg.num_attention_heads, nkv = cfg.num_key_value_heads;
  const T eps = static_cast<T>(cfg.rms_norm_eps), a = residual_scale<T>(cfg);
  const AttnDims dims{n_seq, seq_len, nh, nkv, cfg.head_dim, cfg.sliding_window};
  auto opt = [](const std::vector<T>& v) { return v.empty() ? nullptr : v.data(); };
  t.n_seq = n_seq, t.seq_len = seq_len;
  t.rope = RopeTableT<T>(cfg, seq_len);
  t.x.assign(x, x + M * H);
  t.inv1.resize(M), t.xn1.resize(M * H), t.qkv.resize(M * QKV), t.probs.resize(dims.probs_size());
  t.attn.resize(M * Q), t.inv2.resize(M), t.xn2.resize(M * H), t.gu.resize(M * 2 * I);
  t.act.resize(M * I), t.branch.resize(M * H);

  // Attention half.
  rmsnorm_forward<T>(x, p.input_norm.data(), t.xn1.data(), M, H, eps, t.inv1.data());
  const T* Wqkv = effective(cfg, p, {Linear::Q, Linear::K, Linear::V}, t.qkv_w);
  linear_forward<T>(t.xn1.data(), Wqkv, opt(p.qkv_bias), t.qkv.data(), M, H, QKV);
  if (cfg.qk_norm) {
    t.qkv_pre = t.qkv;
    t.inv_q.resize(M * nh), t.inv_k.resize(M * nkv);
    head_rmsnorm_forward<T>(t.qkv.data(), t.qkv.data(), QKV, M, nh, cfg.head_dim, p.q_norm.data(),
                            eps, t.inv_q.data());
    head_rmsnorm_forward<T>(t.qkv.data() + Q, t.qkv.data() + Q, QKV, M, nkv, cfg.head_dim,
                            p.k_norm.data(), eps, t.inv_k.data());
  } else {
    t.qkv_pre.clear(), t.inv_q.clear(), t.inv_k.clear();
  }
  rope_forward<T>(t.qkv.data(), QKV, n_seq, seq_len, nh, t.rope);
  rope_forward<T>(t.qkv.data() + Q, QKV, n_seq, seq_len, nkv, t.rope);
  attention_forward<T>(t.qkv.data(), t.qkv.data() + Q, t.qkv.data() + Q + KV, QKV, t.attn.data(),
                       t.probs.data(), dims);
  const T* Wo = effective(cfg, p, {Linear::O}, t.o_w);
  linear_forward<T>(t.attn.data(), Wo, opt(p.o_bias), t.branch.data(), M, Q, H);
  residual_forward<T>(x, t.branch.data(), a, M * H);
  t.h.assign(x, x + M * H);

  // MLP half.
  rmsnorm_forward<T>(x, p.post_norm.data(), t.xn2.data(), M, H, eps, t.inv2.data());
  const T* Wgu = effective(cfg, p, {Linear::Gate, Linear::Up}, t.gate_up_w);
  linear_forward<T>(t.xn2.data(), Wgu, opt(p.gate_up_bias), t.gu.data(), M, H, 2 * I);
  silu_mul_forward<T>(t.gu.data(), t.act.data(), M, I);
  const T* Wd = effective(cfg, p, {Linear::Down}, t.down_w);
  linear_forward<T>(t.act.data(), Wd, opt(p.down_bias), t.branch.data(), M, I, H);
  residual_forward<T>(x, t.branch.data(), a, M * H);
}

template <typename T>
void block_backward(const ModelConfig& cfg, const BlockParams<T>& p, const BlockTape<T>& t,
                    const T* dy, BlockParams<T>& g, T* dx) {
  check_block_params(cfg, p);
  const int n_seq = t.n_seq, seq_len = t.seq_len;
  const int64_t M = int64_t(n_seq) * seq_len;
  const int H = cfg.hidden_size, Q = cfg.q_dim(), KV = cfg.kv_dim(), I = cfg.intermediate_size;
  const int QKV = Q + 2 * KV, nh = cfg.num_attention_heads, nkv = cfg.num_key_value_heads;
  const T a = residual_scale<T>(cfg);
  const AttnDims dims{n_seq, seq_len, nh, nkv, cfg.head_dim, cfg.sliding_window};
  QS_CHECK(t.x.size() == size_t(M) * H, "block_backward: the tape does not hold a forward of this block");
  auto w_of = [](const std::vector<T>& eff, const std::vector<T>& w) { return eff.empty() ? w.data() : eff.data(); };
  auto opt = [](std::vector<T>& v) { return v.empty() ? nullptr : v.data(); };

  // Gradients: shaped like the parameters, zero.
  zeros_like(p.input_norm, g.input_norm), zeros_like(p.post_norm, g.post_norm);
  zeros_like(p.q_norm, g.q_norm), zeros_like(p.k_norm, g.k_norm);
  zeros_like(p.qkv, g.qkv), zeros_like(p.qkv_bias, g.qkv_bias);
  zeros_like(p.o, g.o), zeros_like(p.o_bias, g.o_bias);
  zeros_like(p.gate_up, g.gate_up), zeros_like(p.gate_up_bias, g.gate_up_bias);
  zeros_like(p.down, g.down), zeros_like(p.down_bias, g.down_bias);
  for (int m = 0; m < kNumLinear; ++m) {
    g.quant[m].bits = p.quant[m].bits, g.quant[m].group = p.quant[m].group;
    zeros_like(p.quant[m].scales, g.quant[m].scales), zeros_like(p.quant[m].zeros, g.quant[m].zeros);
  }

  std::vector<T> dh(dy, dy + M * H), dbranch(M * H), tmp(M * H);
  // MLP half: y = h + a·(down(silu_mul(gate_up(norm(h))))).
  residual_backward<T>(dh.data(), a, M * H, dbranch.data());
  std::vector<T> dact(M * I), dgu(M * 2 * I);
  linear_backward<T>(t.act.data(), w_of(t.down_w, p.down), dbranch.data(), M, I, H, dact.data(),
                     g.down.data(), opt(g.down_bias));
  silu_mul_backward<T>(t.gu.data(), dact.data(), dgu.data(), M, I);
  linear_backward<T>(t.xn2.data(), w_of(t.gate_up_w, p.gate_up), dgu.data(), M, H, 2 * I, tmp.data(),
                     g.gate_up.data(), opt(g.gate_up_bias));
  rmsnorm_backward<T>(t.h.data(), p.post_norm.data(), t.inv2.data(), tmp.data(), M, H, tmp.data(),
                      g.post_norm.data());
  for (int64_t i = 0; i < M * H; ++i) dh[i] += tmp[i];

  // Attention half: h = x + a·(o(attention(rope(qk_norm(qkv(norm(x))))))).
  residual_backward<T>(dh.data(), a, M * H, dbranch.data());
  std::vector<T> dattn(M * Q), dqkv(M * QKV);
  linear_backward<T>(t.attn.data(), w_of(t.o_w, p.o), dbranch.data(), M, Q, H, dattn.data(),
                     g.o.data(), opt(g.o_bias));
  attention_backward<T>(t.qkv.data(), t.qkv.data() + Q, t.qkv.data() + Q + KV, QKV, t.probs.data(),
                        dattn.data(), dqkv.data(), dqkv.data() + Q, dqkv.data() + Q + KV, dims);
  rope_backward<T>(dqkv.data(), QKV, n_seq, seq_len, nh, t.rope);
  rope_backward<T>(dqkv.data() + Q, QKV, n_seq, seq_len, nkv, t.rope);
  if (cfg.qk_norm) {
    head_rmsnorm_backward<T>(t.qkv_pre.data(), p.q_norm.data(), t.inv_q.data(), dqkv.data(),
                             dqkv.data(), QKV, M, nh, cfg.head_dim, g.q_norm.data());
    head_rmsnorm_backward<T>(t.qkv_pre.data() + Q, p.k_norm.data(), t.inv_k.data(), dqkv.data() + Q,
                             dqkv.data() + Q, QKV, M, nkv, cfg.head_dim, g.k_norm.data());
  }
  linear_backward<T>(t.xn1.data(), w_of(t.qkv_w, p.qkv), dqkv.data(), M, H, QKV, tmp.data(),
                     g.qkv.data(), opt(g.qkv_bias));
  rmsnorm_backward<T>(t.x.data(), p.input_norm.data(), t.inv1.data(), tmp.data(), M, H, tmp.data(),
                      g.input_norm.data());
  for (int64_t i = 0; i < M * H; ++i) dx[i] = dh[i] + tmp[i];

  // Effective-weight gradients through the quantizers.
  quant_backward(cfg, p, {Linear::Q, Linear::K, Linear::V}, g.qkv, g);
  quant_backward(cfg, p, {Linear::O}, g.o, g);
  quant_backward(cfg, p, {Linear::Gate, Linear::Up}, g.gate_up, g);
  quant_backward(cfg, p, {Linear::Down}, g.down, g);
}

template void check_block_params<float>(const ModelConfig&, const BlockParams<float>&);
template void check_block_params<double>(const ModelConfig&, const BlockParams<double>&);
template void block_forward<float>(const ModelConfig&, const BlockParams<float>&, float*, int, int,
                                   BlockTape<float>&);
template void block_forward<double>(const ModelConfig&, const BlockParams<double>&, double*, int, int,
                                    BlockTape<double>&);
template void block_backward<float>(const ModelConfig&, const BlockParams<float>&,
                                    const BlockTape<float>&, const float*, BlockParams<float>&, float*);
template void block_backward<double>(const ModelConfig&, const BlockParams<double>&,
                                     const BlockTape<double>&, const double*, BlockParams<double>&,
                                     double*);

}  // namespace qsweep
