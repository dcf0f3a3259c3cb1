// block_grad.h — one Llama-family decoder block as a differentiable function: block_forward
// computes what LlamaForward::run_block computes (model/forward.cc: input RMSNorm, fused QKV with
// qwen2 biases, qwen3 per-head q/k RMSNorm, RoPE, causal GQA attention with an optional sliding
// window, O, MiniCPM's scaled residual, post RMSNorm, fused gate/up, SwiGLU, down) and records a
// BlockTape; block_backward turns the gradient of the block's output into the gradients of every
// parameter and of the block's input. Each linear module may be fake-quantized (grad_ops.h: the
// Block-AP quantizer with trained scales and zero points, straight-through backward), which is
// what quantization-aware training of a block needs. Templated on T (float to train, double as the
// finite-difference reference); no packing (SeqPacking) and no observers.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/llama_weights.h"
#include "train/grad_ops.h"

namespace qsweep {

// The quantizer of one linear module (bits 0: full precision). scales, zeros [out, in / group].
template <typename T>
struct LinearQuant {
  int bits = 0, group = 0;
  std::vector<T> scales, zeros;
  bool enabled() const { return bits > 0; }
};

// A block's tensors in T, laid out as in BlockWeights (q/k/v and gate/up fused row-wise; an empty
// vector is an absent bias or norm), plus one optional quantizer per linear module (indexed by
// Linear). Gradients come back in the same structure: quant[m].scales / zeros then hold
// d(scales) / d(zeros).
template <typename T>
struct BlockParams {
  std::vector<T> input_norm, post_norm;  // [hidden]
  std::vector<T> q_norm, k_norm;         // [head_dim] (qk_norm) or empty
  std::vector<T> qkv, qkv_bias;          // [q_dim + 2 kv_dim, hidden], bias [q_dim + 2 kv_dim]
  std::vector<T> o, o_bias;              // [hidden, q_dim]
  std::vector<T> gate_up, gate_up_bias;  // [2 inter, hidden]
  std::vector<T> down, down_bias;        // [hidden, inter]
  std::array<LinearQuant<T>, kNumLinear> quant;

  // The fused matrix holding module l (its rows there: linear_rows).
  std::vector<T>& matrix(Linear l);
  const std::vector<T>& matrix(Linear l) const;
};
// Row offset, rows and columns of module l inside its fused matrix.
struct LinearRows {
  int row0, out, in;
};
LinearRows linear_rows(const ModelConfig& cfg, Linear l);

template <typename T>
BlockParams<T> block_params_from(const BlockWeights& w);  // quantizers off

// A block's tensors (from BlockWeights or a BlockParams<T>, which name them alike) as U; quantizers off.
template <typename U, typename S>
BlockParams<U> block_tensors_as(const S& s) {
  auto cv = [](const auto& v) { return std::vector<U>(v.begin(), v.end()); };
  BlockParams<U> r;
  r.input_norm = cv(s.input_norm), r.post_norm = cv(s.post_norm);
  r.q_norm = cv(s.q_norm), r.k_norm = cv(s.k_norm);
  r.qkv = cv(s.qkv), r.qkv_bias = cv(s.qkv_bias), r.o = cv(s.o), r.o_bias = cv(s.o_bias);
  r.gate_up = cv(s.gate_up), r.gate_up_bias = cv(s.gate_up_bias);
  r.down = cv(s.down), r.down_bias = cv(s.down_bias);
  return r;
}

template <typename U, typename T>
BlockParams<U> block_params_cast(const BlockParams<T>& p) {
  auto cv = [](const std::vector<T>& v) { return std::vector<U>(v.begin(), v.end()); };
  BlockParams<U> r = block_tensors_as<U>(p);
  for (int m = 0; m < kNumLinear; ++m) {
    r.quant[m].bits = p.quant[m].bits, r.quant[m].group = p.quant[m].group;
    r.quant[m].scales = cv(p.quant[m].scales), r.quant[m].zeros = cv(p.quant[m].zeros);
  }
  return r;
}

// EfficientQAT's initialisation of module l's quantizer from its weights: per group,
// s = (max − min)/qmax (at least 1e-5) and z = −min/s, so the group's range maps onto [0, qmax].
template <typename T>
void init_linear_quant_minmax(const ModelConfig& cfg, BlockParams<T>& p, Linear l, int bits, int group);

// What block_backward needs from block_forward (M = n_seq·seq_len rows).
template <typename T>
struct BlockTape {
  int n_seq = 0, seq_len = 0;
  RopeTableT<T> rope;
  std::vector<T> x;                  // block input [M, hidden]
  std::vector<T> inv1, xn1;          // input RMSNorm: 1/rms [M], output [M, hidden]
  std::vector<T> qkv_pre;            // [M, qkv] before the q/k norms (qk_norm only)
  std::vector<T> inv_q, inv_k;       // per-head 1/rms (qk_norm only)
  std::vector<T> qkv;                // attention input: q, k after norm and RoPE; v
  std::vector<T> probs;              // attention probabilities
  std::vector<T> attn;               // [M, q_dim]
  std::vector<T> h;                  // after the attention residual [M, hidden]
  std::vector<T> inv2, xn2;          // post RMSNorm
  std::vector<T> gu, act;            // [M, 2 inter], [M, inter]
  std::vector<T> branch;             // scratch for the residual branches
  // Effective (fake-quantized) weights of qkv, o, gate_up, down; empty when the matrix has no
  // quantized module (the parameters are used as they are).
  std::vector<T> qkv_w, o_w, gate_up_w, down_w;
};

// Throws a clear Error when a tensor of p (or a quantizer) is not shaped as cfg says.
template <typename T>
void check_block_params(const ModelConfig& cfg, const BlockParams<T>& p);

// x [n_seq·seq_len, hidden] is replaced by the block's output; the tape is (re)filled.
template <typename T>
void block_forward(const ModelConfig& cfg, const BlockParams<T>& p, T* x, int n_seq, int seq_len,
                   BlockTape<T>& tape);

// dy: gradient of the block's output [M, hidden]. grads is overwritten with the gradient of every
// tensor of p (absent tensors stay empty; quantized modules: d(weights) by the STE, d(scales),
// d(zeros)), dx with the gradient of the input (may alias dy).
template <typename T>
void block_backward(const ModelConfig& cfg, const BlockParams<T>& p, const BlockTape<T>& tape,
                    const T* dy, BlockParams<T>& grads, T* dx);

}  // namespace qsweep
