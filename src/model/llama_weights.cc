// llama_weights.cc — tensor names, shape validation, block loading. Beyond shapes, the checkpoint
// must not hold blocks the config does not count, and a tied config's lm_head.weight is ignored
// with a warning (see the constructor for why).
#include "model/llama_weights.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"

namespace qsweep {

namespace {
constexpr const char* kShort[kNumLinear] = {"q_proj", "k_proj",  "v_proj",   "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};
bool is_attn(Linear l) { return l == Linear::Q || l == Linear::K || l == Linear::V || l == Linear::O; }
std::string block_prefix(int i) { return "model.layers." + std::to_string(i) + "."; }
}  // namespace

const char* linear_short_name(Linear l) { return kShort[static_cast<int>(l)]; }

std::string linear_module_name(int block, Linear l) {
  return block_prefix(block) + (is_attn(l) ? "self_attn." : "mlp.") + linear_short_name(l);
}

int BlockWeights::out_features(Linear l) const {
  switch (l) {
    case Linear::Q: return q_dim;
    case Linear::K: case Linear::V: return kv_dim;
    case Linear::O: case Linear::Down: return hidden;
    default: return inter;
  }
}

int BlockWeights::in_features(Linear l) const {
  switch (l) {
    case Linear::O: return q_dim;
    case Linear::Down: return inter;
    default: return hidden;
  }
}

float* BlockWeights::linear(Linear l) {
  return const_cast<float*>(static_cast<const BlockWeights*>(this)->linear(l));
}

const float* BlockWeights::linear(Linear l) const {
  const size_t h = static_cast<size_t>(hidden);
  switch (l) {
    case Linear::Q: return qkv.data();
    case Linear::K: return qkv.data() + static_cast<size_t>(q_dim) * h;
    case Linear::V: return qkv.data() + static_cast<size_t>(q_dim + kv_dim) * h;
    case Linear::O: return o.data();
    case Linear::Gate: return gate_up.data();
    case Linear::Up: return gate_up.data() + static_cast<size_t>(inter) * h;
    case Linear::Down: return down.data();
  }
  return nullptr;
}

void BlockWeights::set_linear(Linear l, const float* w) {
  const size_t n = static_cast<size_t>(out_features(l)) * in_features(l);
  std::copy(w, w + n, linear(l));
}

size_t BlockWeights::bytes() const {
  size_t n = input_norm.size() + post_norm.size() + q_norm.size() + k_norm.size() + qkv.size() + qkv_bias.size() + o.size() +
             o_bias.size() + gate_up.size() + gate_up_bias.size() + down.size() + down_bias.size();
  return n * sizeof(float);
}

void LlamaWeights::expect(const std::string& name, std::vector<int64_t> shape,
                          bool required) const {
  const TensorInfo* t = ckpt_.find(name);
  if (!t) {
    QS_CHECK(!required, dir_ << ": tensor '" << name << "' is missing from the checkpoint (needed by "
                             << config_.path << ", model_type " << config_.model_type << ")");
    return;
  }
  QS_CHECK(t->shape == shape, ckpt_.file_of(name)
                                  << ": tensor '" << name << "' has shape " << shape_str(t->shape)
                                  << ", but " << config_.path << " implies " << shape_str(shape));
  QS_CHECK(dtype_is_float_storage(t->dtype), ckpt_.file_of(name)
                                                 << ": tensor '" << name << "' has dtype "
                                                 << dtype_name(t->dtype)
                                                 << ", expected F32, F16 or BF16");
}

LlamaWeights::LlamaWeights(const std::string& model_dir)
    : dir_(model_dir), config_(ModelConfig::from_file(model_dir + "/config.json")),
      ckpt_(model_dir) {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), I = c.intermediate_size;
  expect("model.embed_tokens.weight", {c.vocab_size, H});
  expect("model.norm.weight", {H});
  if (!c.tie_word_embeddings) expect("lm_head.weight", {c.vocab_size, H});
  // Tied with an lm_head.weight in the checkpoint: transformers ties after loading, so the output
  // layer is the embedding and lm_head.weight goes unused. qsweep does the same (lm_head_name())
  // rather than refuse: such checkpoints are in circulation (exports that save both copies) and
  // transformers runs them; the warning says which tensor is used, for when the copies differ.
  if (c.tie_word_embeddings && ckpt_.find("lm_head.weight"))
    log_warn("%s: tie_word_embeddings is true, so the checkpoint's lm_head.weight (%s) is ignored "
             "and the output layer is model.embed_tokens.weight, as in transformers",
             c.path.c_str(), ckpt_.file_of("lm_head.weight").c_str());
  // Blocks beyond num_hidden_layers: transformers drops them with a warning that is easy to miss,
  // and a config cut short (or the wrong config) then evaluates a different, shallower model.
  for (const std::string& name : ckpt_.tensor_names()) {
    const std::string pre = "model.layers.";
    if (name.compare(0, pre.size(), pre) != 0) continue;
    const size_t dot = name.find('.', pre.size());
    const std::string num = name.substr(pre.size(), dot == std::string::npos ? std::string::npos : dot - pre.size());
    if (num.empty() || num.size() > 9 || num.find_first_not_of("0123456789") != std::string::npos) continue;
    const int block = std::stoi(num);
    QS_CHECK(block < c.num_hidden_layers,
             ckpt_.file_of(name) << ": tensor '" << name << "' belongs to block " << block << ", but "
                                 << c.path << " says num_hidden_layers " << c.num_hidden_layers
                                 << " (blocks 0.." << c.num_hidden_layers - 1
                                 << "); the config and the checkpoint disagree");
  }
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = block_prefix(i);
    expect(p + "input_layernorm.weight", {H});
    expect(p + "post_attention_layernorm.weight", {H});
    if (c.qk_norm) {
      expect(p + "self_attn.q_norm.weight", {c.head_dim});
      expect(p + "self_attn.k_norm.weight", {c.head_dim});
    }
    const int64_t out[kNumLinear] = {Q, KV, KV, H, I, I, H};
    const int64_t in[kNumLinear] = {H, H, H, Q, H, H, I};
    for (int l = 0; l < kNumLinear; ++l) {
      const Linear L = static_cast<Linear>(l);
      const std::string m = linear_module_name(i, L);
      expect(m + ".weight", {out[l], in[l]});
      const bool bias_required = (is_attn(L) && c.attention_bias) ||
                                 (c.qkv_bias && l <= static_cast<int>(Linear::V)) ||
                                 (!is_attn(L) && c.mlp_bias);
      expect(m + ".bias", {out[l]}, bias_required);
    }
  }
}

std::unique_ptr<BlockWeights> LlamaWeights::load_block(int i, std::unique_ptr<BlockWeights> recycle) const {
  const ModelConfig& c = config_;
  QS_ASSERT(i >= 0 && i < c.num_hidden_layers, "block " << i);
  auto b = std::make_unique<BlockWeights>();
  if (recycle) {  // only the storage: every element is overwritten below
    b->qkv = std::move(recycle->qkv);
    b->o = std::move(recycle->o);
    b->gate_up = std::move(recycle->gate_up);
    b->down = std::move(recycle->down);
  }
  b->index = i;
  b->hidden = c.hidden_size;
  b->q_dim = c.q_dim();
  b->kv_dim = c.kv_dim();
  b->inter = c.intermediate_size;
  const std::string p = block_prefix(i);
  b->input_norm.resize(c.hidden_size);
  b->post_norm.resize(c.hidden_size);
  ckpt_.read_f32(p + "input_layernorm.weight", b->input_norm.data());
  ckpt_.read_f32(p + "post_attention_layernorm.weight", b->post_norm.data());
  if (c.qk_norm) {
    b->q_norm.resize(c.head_dim);
    b->k_norm.resize(c.head_dim);
    ckpt_.read_f32(p + "self_attn.q_norm.weight", b->q_norm.data());
    ckpt_.read_f32(p + "self_attn.k_norm.weight", b->k_norm.data());
  }
  const size_t H = c.hidden_size;
  b->qkv.resize((b->q_dim + 2 * b->kv_dim) * H);
  b->o.resize(H * b->q_dim);
  b->gate_up.resize(2 * b->inter * H);
  b->down.resize(H * b->inter);
  for (int l = 0; l < kNumLinear; ++l) {
    const Linear L = static_cast<Linear>(l);
    ckpt_.read_f32(linear_module_name(i, L) + ".weight", b->linear(L));
  }
  // Biases: a fused bias vector exists when any member has one; absent members are zero.
  auto load_bias = [&](std::vector<float>& dst, std::initializer_list<Linear> mods) {
    bool any = false;
    for (Linear L : mods) any = any || ckpt_.find(linear_module_name(i, L) + ".bias");
    if (!any) return;
    size_t total = 0;
    for (Linear L : mods) total += b->out_features(L);
    dst.assign(total, 0.0f);
    size_t off = 0;
    for (Linear L : mods) {
      const std::string n = linear_module_name(i, L) + ".bias";
      if (ckpt_.find(n)) ckpt_.read_f32(n, dst.data() + off);
      off += b->out_features(L);
    }
  };
  load_bias(b->qkv_bias, {Linear::Q, Linear::K, Linear::V});
  load_bias(b->o_bias, {Linear::O});
  load_bias(b->gate_up_bias, {Linear::Gate, Linear::Up});
  load_bias(b->down_bias, {Linear::Down});
  return b;
}

void LlamaWeights::embed(const int32_t* tokens, int64_t n, float* x) const {
  const int64_t H = config_.hidden_size;
  for (int64_t t = 0; t < n; ++t) {
    QS_CHECK(tokens[t] >= 0 && tokens[t] < config_.vocab_size,
             "token id " << tokens[t] << " at position " << t << " is outside the vocabulary [0, "
                         << config_.vocab_size << ") of " << config_.path);
    ckpt_.read_rows_f32("model.embed_tokens.weight", tokens[t], 1, x + t * H);
  }
  if (config_.mup_scaling) {
    const float s = static_cast<float>(config_.scale_emb);
    for (int64_t k = 0; k < n * H; ++k) x[k] *= s;
  }
}

std::vector<float> LlamaWeights::load_final_norm() const {
  std::vector<float> w(config_.hidden_size);
  ckpt_.read_f32("model.norm.weight", w.data());
  return w;
}

std::string LlamaWeights::lm_head_name() const {
  return config_.tie_word_embeddings || !ckpt_.find("lm_head.weight") ? "model.embed_tokens.weight"
                                                                      : "lm_head.weight";
}

std::vector<float> LlamaWeights::load_lm_head() const {
  std::vector<float> w(static_cast<size_t>(config_.vocab_size) * config_.hidden_size);
  ckpt_.read_f32(lm_head_name(), w.data());
  return w;
}

int64_t LlamaWeights::linear_parameters() const {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size;
  const int64_t per_block = H * (c.q_dim() + 2 * c.kv_dim()) + c.q_dim() * H +
                            3 * H * static_cast<int64_t>(c.intermediate_size);
  return per_block * c.num_hidden_layers + static_cast<int64_t>(c.vocab_size) * H;
}

int64_t LlamaWeights::total_parameters() const {
  int64_t n = 0;
  for (const auto& name : ckpt_.tensor_names()) n += ckpt_.find(name)->numel();
  return n;
}

}  // namespace qsweep
