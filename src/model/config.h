// config.h — the Hugging Face config.json of a Llama-family model (llama, mistral, qwen2, qwen3,
// minicpm), validated: every field qsweep's forward pass depends on is checked for presence, type
// and consistency, and an error names config.json and the field. A size beyond int range is
// reported as written in the file and called out of range; llama3 rope_scaling must give all
// four of its fields (no defaults that would change the positions).
//
// The families share the Llama block (RMSNorm, RoPE, GQA attention, SwiGLU MLP) and differ in:
//   qwen2    q/k/v biases; optional sliding window (use_sliding_window).
//   qwen3    per-head RMSNorm of q and k (self_attn.q_norm / k_norm, [head_dim], eps rms_norm_eps)
//            after the projections and before RoPE; head_dim is its own field (HF default 128,
//            not hidden/heads); biases only with attention_bias (then on q/k/v/o).
//   minicpm  muP-style scaling (MiniCPM-2B): embeddings × scale_emb, every residual branch
//            (attention and MLP output) × scale_depth / sqrt(num_hidden_layers) before it is
//            added, and the final-normed hidden state ÷ (hidden_size / dim_model_base) before
//            lm_head; HF's defaults are 1 for all three and tie_word_embeddings true.
// Each family's extra factors are applied only when its model_type asks for them, so the other
// families compute exactly what they did before.
#pragma once
#include <string>

namespace qsweep {

struct RopeScaling {
  std::string type;  // "" (none) or "llama3"
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string path;        // the config.json it came from
  std::string model_type;  // llama | mistral | qwen2 | qwen3 | minicpm
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int max_position_embeddings = 0;
  int sliding_window = 0;  // 0 = none
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v/o biases (llama attention_bias)
  bool qkv_bias = false;        // q/k/v biases only (qwen2)
  bool mlp_bias = false;
  bool qk_norm = false;          // per-head RMSNorm of q and k before RoPE (qwen3)
  // MiniCPM scaling (model_type minicpm only; mup_scaling false leaves every path untouched).
  bool mup_scaling = false;
  double scale_emb = 1.0;        // embeddings × scale_emb
  double scale_depth = 1.0;      // residual branches × scale_depth / sqrt(num_hidden_layers)
  double dim_model_base = 1.0;   // lm_head input ÷ (hidden_size / dim_model_base)
  int bos_token_id = 1;
  int eos_token_id = 2;

  int q_dim() const { return num_attention_heads * head_dim; }
  int kv_dim() const { return num_key_value_heads * head_dim; }
  // MiniCPM's factors as the forward pass uses them (1 when mup_scaling is off).
  double residual_scale() const;  // scale_depth / sqrt(num_hidden_layers)
  double logit_divisor() const;   // hidden_size / dim_model_base

  static ModelConfig from_file(const std::string& path);
};

}  // namespace qsweep
