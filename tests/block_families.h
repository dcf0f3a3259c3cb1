// block_families.h — decoder blocks of every family for the training tests (test_grad_block.cc,
// test_cuda_train.cc): small configs (llama plain and with biases, qwen2 MQA with q/k/v biases,
// qwen3 q/k norms, a sliding window, minicpm's scaled residuals), random weights near a trained
// block's scale, five of seven modules fake-quantized at 3–4 bits with some weights clamped, and
// a walk over two BlockParams' tensors side by side.
#pragma once
#include <cmath>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "grad_check.h"
#include "model/config.h"
#include "model/llama_weights.h"
#include "train/block_grad.h"

namespace qsweep::test {

constexpr int kNSeq = 2;

struct Family {
  const char* name;
  const char* model_type;
  int hidden, heads, kv_heads, head_dim, inter, seq_len, window;
  bool qkv_bias, attn_bias, mlp_bias, qk_norm, mup;
};

// GoogleTest prints a parameter by its name.
inline void PrintTo(const Family& f, std::ostream* os) { *os << f.name; }

inline std::vector<Family> families() {
  return {
      {"llama", "llama", 32, 4, 2, 8, 48, 8, 0, false, false, false, false, false},
      {"llama_biases_mha", "llama", 32, 2, 2, 16, 40, 6, 0, false, true, true, false, false},
      {"qwen2", "qwen2", 32, 4, 1, 8, 48, 8, 0, true, false, false, false, false},
      {"qwen3", "qwen3", 32, 4, 2, 12, 40, 8, 0, false, false, false, true, false},
      {"mistral_window4", "mistral", 32, 4, 2, 8, 48, 10, 4, false, false, false, false, false},
      {"minicpm", "minicpm", 48, 4, 2, 12, 64, 8, 0, false, false, false, false, true},
  };
}

inline ModelConfig config_of(const Family& f) {
  ModelConfig c;
  c.model_type = f.model_type;
  c.hidden_size = f.hidden, c.intermediate_size = f.inter, c.num_hidden_layers = 4;
  c.num_attention_heads = f.heads, c.num_key_value_heads = f.kv_heads, c.head_dim = f.head_dim;
  c.vocab_size = 50, c.max_position_embeddings = 64, c.sliding_window = f.window;
  c.rms_norm_eps = 1e-6, c.rope_theta = 10000;
  c.qkv_bias = f.qkv_bias, c.attention_bias = f.attn_bias, c.mlp_bias = f.mlp_bias;
  c.qk_norm = f.qk_norm;
  if (f.mup) c.mup_scaling = true, c.scale_depth = 1.4, c.scale_emb = 12, c.dim_model_base = 10;
  return c;
}

inline BlockWeights weights_of(const Family& f, const ModelConfig& c, std::mt19937_64& rng) {
  const int H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), I = c.intermediate_size;
  auto near_one = [&](int n, double sd) {
    auto v = randn(n, rng, sd);
    for (float& x : v) x += 1.f;
    return v;
  };
  BlockWeights w;
  w.index = 0, w.hidden = H, w.q_dim = Q, w.kv_dim = KV, w.inter = I;
  w.input_norm = near_one(H, 0.1), w.post_norm = near_one(H, 0.1);
  if (c.qk_norm) w.q_norm = near_one(c.head_dim, 0.25), w.k_norm = near_one(c.head_dim, 0.25);
  w.qkv = randn(size_t(Q + 2 * KV) * H, rng, 1 / std::sqrt(H));
  w.o = randn(size_t(H) * Q, rng, 1 / std::sqrt(Q));
  w.gate_up = randn(size_t(2 * I) * H, rng, 1 / std::sqrt(H));
  w.down = randn(size_t(H) * I, rng, 1 / std::sqrt(I));
  if (f.qkv_bias || f.attn_bias) w.qkv_bias = randn(Q + 2 * KV, rng, 0.1);
  if (f.attn_bias) w.o_bias = randn(H, rng, 0.1);
  if (f.mlp_bias) w.gate_up_bias = randn(2 * I, rng, 0.1), w.down_bias = randn(H, rng, 0.1);
  return w;
}

// Quantizes five of the seven modules (v_proj and up_proj stay full precision inside their fused
// matrices) at 3–4 bits; scales 0.85× min/max so that some weights clamp.
inline void add_quantizers(const ModelConfig& c, BlockParams<float>& p) {
  const struct { Linear l; int bits, group; } qs[] = {
      {Linear::Q, 4, 16}, {Linear::K, 4, 8}, {Linear::O, 3, 16}, {Linear::Gate, 4, 16}, {Linear::Down, 3, 8}};
  for (const auto& q : qs) {
    init_linear_quant_minmax(c, p, q.l, q.bits, q.group);
    for (float& s : p.quant[static_cast<int>(q.l)].scales) s *= 0.85f;
  }
}

// Calls f(name, a's tensor, b's tensor) for every non-empty tensor of two BlockParams.
template <class A, class B, class F>
void zip_tensors(A& a, B& b, F&& f) {
  auto one = [&](const char* n, auto& x, auto& y) {
    if (!x.empty()) f(std::string(n), x, y);
  };
  one("input_norm", a.input_norm, b.input_norm), one("post_norm", a.post_norm, b.post_norm);
  one("q_norm", a.q_norm, b.q_norm), one("k_norm", a.k_norm, b.k_norm);
  one("qkv", a.qkv, b.qkv), one("qkv_bias", a.qkv_bias, b.qkv_bias);
  one("o", a.o, b.o), one("o_bias", a.o_bias, b.o_bias);
  one("gate_up", a.gate_up, b.gate_up), one("gate_up_bias", a.gate_up_bias, b.gate_up_bias);
  one("down", a.down, b.down), one("down_bias", a.down_bias, b.down_bias);
  for (int m = 0; m < kNumLinear; ++m) {
    const std::string n = linear_short_name(static_cast<Linear>(m));
    one((n + ".scales").c_str(), a.quant[m].scales, b.quant[m].scales);
    one((n + ".zeros").c_str(), a.quant[m].zeros, b.quant[m].zeros);
  }
}

}  // namespace qsweep::test
