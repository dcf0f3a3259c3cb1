// config.cc — config.json parsing and validation. Sizes must fit qsweep's int arithmetic: a value
// beyond it is reported as written in the file (a SAX pass recovers the literal, since the parsed
// value of 10000000000000000000 or 1e19 no longer shows what the file said) and called out of
// range, never wrapped into a negative number.
#include "model/config.h"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/json_file.h"

namespace qsweep {

namespace {

using nlohmann::json;

constexpr int64_t kIntLimit = int64_t(1) << 31;  // sizes are ints in the forward pass

// Every number of a JSON text by its key path ("hidden_size", "rope_scaling.factor"), as the
// text spells it. Numbers inside arrays are skipped (no size lives in one).
class NumberLiterals : public nlohmann::json_sax<json> {
 public:
  std::map<std::string, std::string> literal;

  bool null() override { return value_done(); }
  bool boolean(bool) override { return value_done(); }
  bool number_integer(number_integer_t v) override { return number(std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return number(std::to_string(v)); }
  bool number_float(number_float_t, const string_t& s) override { return number(s); }
  bool string(string_t&) override { return value_done(); }
  bool binary(binary_t&) override { return value_done(); }
  bool start_object(std::size_t) override {
    stack_.push_back(path_here());
    array_.push_back(false);
    key_.clear();
    return true;
  }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool end_object() override { return pop(); }
  bool start_array(std::size_t) override {
    stack_.push_back("");
    array_.push_back(true);
    return true;
  }
  bool end_array() override { return pop(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool in_array() const { return !array_.empty() && array_.back(); }
  std::string path_here() const {
    if (stack_.empty()) return "";
    return stack_.back().empty() ? key_ : stack_.back() + "." + key_;
  }
  bool number(const std::string& s) {
    if (!in_array()) literal[path_here()] = s;
    return true;
  }
  bool value_done() { return true; }
  bool pop() {
    stack_.pop_back();
    array_.pop_back();
    return true;
  }
  std::vector<std::string> stack_;  // key path of each open container
  std::vector<bool> array_;
  std::string key_;
};

// The fields of one JSON object of config.json: the top level, or rope_scaling inside it.
struct Fields {
  const json& j;
  std::string file;    // config.json, for reading the literal text back
  std::string where;   // message prefix
  std::string prefix;  // key path of this object ("" or "rope_scaling.")
};

// The number at `key` as config.json writes it (falls back to the parsed value's dump).
std::string as_written(const Fields& f, const char* key) {
  std::ifstream in(f.file);
  std::stringstream ss;
  ss << in.rdbuf();
  NumberLiterals lit;
  const std::string text = ss.str();
  json::sax_parse(text, &lit);
  auto it = lit.literal.find(f.prefix + key);
  return it != lit.literal.end() ? it->second : f.j[key].dump();
}

int get_int(const Fields& f, const char* key, bool required, int def) {
  const json& j = f.j;
  if (!j.contains(key) || j[key].is_null()) {
    QS_CHECK(!required, f.where << ": missing field '" << key << "' (expected a positive integer)");
    return def;
  }
  const json& v = j[key];
  QS_CHECK(v.is_number(), f.where << ": field '" << key << "' must be an integer, got " << v.dump());
  bool out_of_range = false;
  if (v.is_number_unsigned()) {
    out_of_range = v.get<uint64_t>() >= static_cast<uint64_t>(kIntLimit);
  } else if (v.is_number_integer()) {
    out_of_range = v.get<int64_t>() >= kIntLimit;
  } else {
    const double d = v.get<double>();
    out_of_range = !std::isfinite(d) || d >= static_cast<double>(kIntLimit);
  }
  QS_CHECK(!out_of_range, f.where << ": field '" << key << "' is " << as_written(f, key)
                                  << ", which is out of range (expected a positive integer below "
                                  << kIntLimit << ")");
  QS_CHECK(v.is_number_integer(),
           f.where << ": field '" << key << "' must be an integer, got " << as_written(f, key));
  const int64_t n = v.get<int64_t>();
  QS_CHECK(n > 0, f.where << ": field '" << key << "' must be a positive integer, got " << n);
  return static_cast<int>(n);
}

double get_double(const Fields& f, const char* key, bool required, double def) {
  const json& j = f.j;
  if (!j.contains(key) || j[key].is_null()) {
    QS_CHECK(!required, f.where << ": missing field '" << key << "' (expected a positive number)");
    return def;
  }
  QS_CHECK(j[key].is_number(), f.where << ": field '" << key << "' must be a number, got "
                                       << j[key].dump());
  const double v = j[key].get<double>();
  QS_CHECK(std::isfinite(v), f.where << ": field '" << key << "' is " << as_written(f, key)
                                     << ", which is out of range (expected a finite number)");
  QS_CHECK(v > 0, f.where << ": field '" << key << "' must be positive, got " << as_written(f, key));
  return v;
}

bool get_bool(const Fields& f, const char* key, bool def) {
  const json& j = f.j;
  if (!j.contains(key) || j[key].is_null()) return def;
  QS_CHECK(j[key].is_boolean(), f.where << ": field '" << key << "' must be true or false, got "
                                        << j[key].dump());
  return j[key].get<bool>();
}

// bos/eos token ids: an integer that fits an int (a list, as some configs give for eos, keeps the
// default: qsweep takes special tokens from the tokenizer files first).
void get_token_id(const Fields& f, const char* key, int* out) {
  const json& j = f.j;
  if (!j.contains(key) || !j[key].is_number_integer()) return;
  const json& v = j[key];
  const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() < static_cast<uint64_t>(kIntLimit)
                                           : v.get<int64_t>() >= -kIntLimit && v.get<int64_t>() < kIntLimit;
  QS_CHECK(fits, f.where << ": field '" << key << "' is " << as_written(f, key)
                         << ", which is out of range (expected a token id below " << kIntLimit << ")");
  *out = static_cast<int>(v.get<int64_t>());
}

// a * b (+ c) as the forward pass forms it in int must not overflow.
void check_product(const std::string& where, const char* what, int64_t value) {
  QS_CHECK(value < kIntLimit, where << ": " << what << " = " << value
                                    << " is out of range (must stay below " << kIntLimit << ")");
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
  const Fields f{j, path, path, ""};

  ModelConfig c;
  c.path = path;
  QS_CHECK(j.contains("model_type") && j["model_type"].is_string(),
           path << ": missing field 'model_type' (expected one of " << kSupportedModelTypes << ")");
  c.model_type = j["model_type"].get<std::string>();
  QS_CHECK(c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2" ||
               c.model_type == "qwen3" || c.model_type == "minicpm",
           path << ": field 'model_type' is '" << c.model_type
                << "', which qsweep does not support (supported: " << kSupportedModelTypes << ")");
  c.hidden_size = get_int(f, "hidden_size", true, 0);
  c.intermediate_size = get_int(f, "intermediate_size", true, 0);
  c.num_hidden_layers = get_int(f, "num_hidden_layers", true, 0);
  c.num_attention_heads = get_int(f, "num_attention_heads", true, 0);
  c.num_key_value_heads = get_int(f, "num_key_value_heads", false, c.num_attention_heads);
  c.vocab_size = get_int(f, "vocab_size", true, 0);
  c.max_position_embeddings = get_int(f, "max_position_embeddings", false, 0);
  if (c.model_type == "qwen3") {
    // Qwen3Config declares head_dim = 128 by default, independent of hidden / heads.
    c.head_dim = get_int(f, "head_dim", false, 128);
  } else {
    QS_CHECK(c.hidden_size % c.num_attention_heads == 0 || j.contains("head_dim"),
             path << ": hidden_size " << c.hidden_size << " is not divisible by num_attention_heads "
                  << c.num_attention_heads << " and no head_dim is given");
    c.head_dim = get_int(f, "head_dim", false, c.hidden_size / c.num_attention_heads);
  }
  QS_CHECK(c.head_dim % 2 == 0, path << ": field 'head_dim' must be even for RoPE, got "
                                     << c.head_dim);
  QS_CHECK(c.num_attention_heads % c.num_key_value_heads == 0,
           path << ": num_attention_heads " << c.num_attention_heads
                << " must be a multiple of num_key_value_heads " << c.num_key_value_heads);
  // The fused q/k/v and gate/up rows are int counts in the forward pass.
  check_product(path, "num_attention_heads x head_dim + 2 x num_key_value_heads x head_dim",
                (int64_t(c.num_attention_heads) + 2 * int64_t(c.num_key_value_heads)) * c.head_dim);
  check_product(path, "2 x intermediate_size", 2 * int64_t(c.intermediate_size));
  c.rms_norm_eps = get_double(f, "rms_norm_eps", false, 1e-6);
  c.rope_theta = get_double(f, "rope_theta", false, 10000.0);
  // MiniCPMConfig ties lm_head to the embedding unless told otherwise; the others do not.
  c.tie_word_embeddings = get_bool(f, "tie_word_embeddings", c.model_type == "minicpm");
  c.attention_bias = get_bool(f, "attention_bias", false);
  c.mlp_bias = get_bool(f, "mlp_bias", false);
  c.qkv_bias = c.model_type == "qwen2";
  c.qk_norm = c.model_type == "qwen3";
  if (c.model_type == "minicpm") {
    c.mup_scaling = true;
    c.scale_emb = get_double(f, "scale_emb", false, 1.0);
    c.scale_depth = get_double(f, "scale_depth", false, 1.0);
    c.dim_model_base = get_double(f, "dim_model_base", false, 1.0);
  }
  if (j.contains("hidden_act") && j["hidden_act"].is_string()) {
    const std::string act = j["hidden_act"].get<std::string>();
    QS_CHECK(act == "silu" || act == "swish",
             path << ": field 'hidden_act' is '" << act << "', only silu (SwiGLU) is supported");
  }
  bool use_sw = c.model_type == "mistral" || get_bool(f, "use_sliding_window", false);
  // Qwen3 windows only the layers from max_window_layers on (layer_types); qsweep's attention
  // takes one window for every layer, so refuse rather than compute something else.
  QS_CHECK(!(use_sw && c.model_type == "qwen3"),
           path << ": field 'use_sliding_window' is true; per-layer sliding windows of qwen3 are "
                   "not supported (set it to false)");
  if (use_sw && j.contains("sliding_window") && !j["sliding_window"].is_null())
    c.sliding_window = get_int(f, "sliding_window", false, 0);
  get_token_id(f, "bos_token_id", &c.bos_token_id);
  get_token_id(f, "eos_token_id", &c.eos_token_id);

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
      // Every llama3 field is required, as in transformers (_compute_llama3_parameters reads
      // them all): a default would silently compute different positions than the model was
      // trained with.
      const Fields r{rs, path, path + " (rope_scaling)", "rope_scaling."};
      for (const char* k : {"factor", "low_freq_factor", "high_freq_factor",
                            "original_max_position_embeddings"})
        QS_CHECK(rs.contains(k) && !rs[k].is_null(),
                 r.where << ": missing field '" << k
                         << "' (llama3 rope scaling needs factor, low_freq_factor, high_freq_factor "
                            "and original_max_position_embeddings; qsweep does not assume defaults)");
      c.rope_scaling.type = type;
      c.rope_scaling.factor = get_double(r, "factor", true, 0);
      c.rope_scaling.low_freq_factor = get_double(r, "low_freq_factor", true, 0);
      c.rope_scaling.high_freq_factor = get_double(r, "high_freq_factor", true, 0);
      c.rope_scaling.original_max_position_embeddings =
          get_int(r, "original_max_position_embeddings", true, 0);
      QS_CHECK(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor,
               r.where << ": high_freq_factor must exceed low_freq_factor");
    }
  }
  return c;
}

}  // namespace qsweep
