// config.cc — config.json parsing and validation.
#include "model/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"

namespace qsweep {

namespace {

using nlohmann::json;

int get_int(const json& j, const std::string& path, const char* key, bool required, int def) {
  if (!j.contains(key) || j[key].is_null()) {
    QS_CHECK(!required, path << ": missing field '" << key << "' (expected a positive integer)");
    return def;
  }
  QS_CHECK(j[key].is_number_integer(),
           path << ": field '" << key << "' must be an integer, got " << j[key].dump());
  const int64_t v = j[key].get<int64_t>();
  QS_CHECK(v > 0 && v < (int64_t(1) << 31),
           path << ": field '" << key << "' must be a positive integer, got " << v);
  return static_cast<int>(v);
}

double get_double(const json& j, const std::string& path, const char* key, double def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  QS_CHECK(j[key].is_number(), path << ": field '" << key << "' must be a number, got "
                                    << j[key].dump());
  const double v = j[key].get<double>();
  QS_CHECK(v > 0, path << ": field '" << key << "' must be positive, got " << v);
  return v;
}

bool get_bool(const json& j, const std::string& path, const char* key, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  QS_CHECK(j[key].is_boolean(), path << ": field '" << key << "' must be true or false, got "
                                     << j[key].dump());
  return j[key].get<bool>();
}

constexpr const char* kSupportedModelTypes = "llama, mistral, qwen2, qwen3, minicpm";

}  // namespace

double ModelConfig::residual_scale() const {
  return mup_scaling ? scale_depth / std::sqrt(static_cast<double>(num_hidden_layers)) : 1.0;
}

double ModelConfig::logit_divisor() const {
  return mup_scaling ? hidden_size / dim_model_base : 1.0;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  const json j = read_json_file(path, "a model directory needs a config.json");
  QS_CHECK(j.is_object(), path << ": expected a JSON object");

  ModelConfig c;
  c.path = path;
  QS_CHECK(j.contains("model_type") && j["model_type"].is_string(),
           path << ": missing field 'model_type' (expected one of " << kSupportedModelTypes << ")");
  c.model_type = j["model_type"].get<std::string>();
  QS_CHECK(c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2" ||
               c.model_type == "qwen3" || c.model_type == "minicpm",
           path << ": field 'model_type' is '" << c.model_type
                << "', which qsweep does not support (supported: " << kSupportedModelTypes << ")");
  c.hidden_size = get_int(j, path, "hidden_size", true, 0);
  c.intermediate_size = get_int(j, path, "intermediate_size", true, 0);
  c.num_hidden_layers = get_int(j, path, "num_hidden_layers", true, 0);
  c.num_attention_heads = get_int(j, path, "num_attention_heads", true, 0);
  c.num_key_value_heads = get_int(j, path, "num_key_value_heads", false, c.num_attention_heads);
  c.vocab_size = get_int(j, path, "vocab_size", true, 0);
  c.max_position_embeddings = get_int(j, path, "max_position_embeddings", false, 0);
  if (c.model_type == "qwen3") {
    // Qwen3Config declares head_dim = 128 by default, independent of hidden / heads.
    c.head_dim = get_int(j, path, "head_dim", false, 128);
  } else {
    QS_CHECK(c.hidden_size % c.num_attention_heads == 0 || j.contains("head_dim"),
             path << ": hidden_size " << c.hidden_size << " is not divisible by num_attention_heads "
                  << c.num_attention_heads << " and no head_dim is given");
    c.head_dim = get_int(j, path, "head_dim", false, c.hidden_size / c.num_attention_heads);
  }
  QS_CHECK(c.head_dim % 2 == 0, path << ": field 'head_dim' must be even for RoPE, got "
                                     << c.head_dim);
  QS_CHECK(c.num_attention_heads % c.num_key_value_heads == 0,
           path << ": num_attention_heads " << c.num_attention_heads
                << " must be a multiple of num_key_value_heads " << c.num_key_value_heads);
  c.rms_norm_eps = get_double(j, path, "rms_norm_eps", 1e-6);
  c.rope_theta = get_double(j, path, "rope_theta", 10000.0);
  // MiniCPMConfig ties lm_head to the embedding unless told otherwise; the others do not.
  c.tie_word_embeddings = get_bool(j, path, "tie_word_embeddings", c.model_type == "minicpm");
  c.attention_bias = get_bool(j, path, "attention_bias", false);
  c.mlp_bias = get_bool(j, path, "mlp_bias", false);
  c.qkv_bias = c.model_type == "qwen2";
  c.qk_norm = c.model_type == "qwen3";
  if (c.model_type == "minicpm") {
    c.mup_scaling = true;
    c.scale_emb = get_double(j, path, "scale_emb", 1.0);
    c.scale_depth = get_double(j, path, "scale_depth", 1.0);
    c.dim_model_base = get_double(j, path, "dim_model_base", 1.0);
  }
  if (j.contains("hidden_act") && j["hidden_act"].is_string()) {
    const std::string act = j["hidden_act"].get<std::string>();
    QS_CHECK(act == "silu" || act == "swish",
             path << ": field 'hidden_act' is '" << act << "', only silu (SwiGLU) is supported");
  }
  bool use_sw = c.model_type == "mistral" || get_bool(j, path, "use_sliding_window", false);
  // Qwen3 windows only the layers from max_window_layers on (layer_types); qsweep's attention
  // takes one window for every layer, so refuse rather than compute something else.
  QS_CHECK(!(use_sw && c.model_type == "qwen3"),
           path << ": field 'use_sliding_window' is true; per-layer sliding windows of qwen3 are "
                   "not supported (set it to false)");
  if (use_sw && j.contains("sliding_window") && !j["sliding_window"].is_null())
    c.sliding_window = get_int(j, path, "sliding_window", false, 0);
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer())
    c.bos_token_id = j["bos_token_id"].get<int>();
  if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer())
    c.eos_token_id = j["eos_token_id"].get<int>();

  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    QS_CHECK(rs.is_object(), path << ": field 'rope_scaling' must be an object or null");
    std::string type;
    if (rs.contains("rope_type") && rs["rope_type"].is_string())
      type = rs["rope_type"].get<std::string>();
    else if (rs.contains("type") && rs["type"].is_string())
      type = rs["type"].get<std::string>();
    if (type != "default") {
      QS_CHECK(type == "llama3", path << ": rope_scaling type '" << type
                                      << "' is not supported (expected llama3 or none)");
      const std::string p = path + " (rope_scaling)";
      c.rope_scaling.type = type;
      c.rope_scaling.factor = get_double(rs, p, "factor", 8.0);
      c.rope_scaling.low_freq_factor = get_double(rs, p, "low_freq_factor", 1.0);
      c.rope_scaling.high_freq_factor = get_double(rs, p, "high_freq_factor", 4.0);
      c.rope_scaling.original_max_position_embeddings =
          get_int(rs, p, "original_max_position_embeddings", false, 8192);
      QS_CHECK(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor,
               p << ": high_freq_factor must exceed low_freq_factor");
    }
  }
  return c;
}

}  // namespace qsweep
