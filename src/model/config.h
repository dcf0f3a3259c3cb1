// config.h — the Hugging Face config.json of a Llama-family model (llama, mistral, qwen2),
// validated: every field qsweep's forward pass depends on is checked for presence, type and
// consistency, and an error names config.json and the field.
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
  std::string model_type;  // llama | mistral | qwen2
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
  int bos_token_id = 1;
  int eos_token_id = 2;

  int q_dim() const { return num_attention_heads * head_dim; }
  int kv_dim() const { return num_key_value_heads * head_dim; }

  static ModelConfig from_file(const std::string& path);
};

}  // namespace qsweep
