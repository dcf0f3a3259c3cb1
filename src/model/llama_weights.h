// llama_weights.h — the tensors of a Llama-family model, by role, checked against the config.
//
// LlamaWeights validates at open time that every tensor the config needs exists with the right
// shape (a missing or mis-shaped tensor is reported before any work starts) and then hands out
// one decoder block at a time, converted to fp32: memory use is one block, not the model.
// BlockWeights keeps q/k/v and gate/up fused row-wise ([q;k;v] and [gate;up]) so the forward
// pass runs one GEMM per shared input; linear(), set_linear() address each module inside them,
// which is how quantized weights are substituted later. Family extras: qwen3's per-head q/k norms
// are part of the block (q_norm, k_norm); MiniCPM's scale_emb is applied by embed().
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/config.h"

namespace qsweep {

enum class Linear { Q = 0, K, V, O, Gate, Up, Down };
constexpr int kNumLinear = 7;
const char* linear_short_name(Linear l);  // "q_proj", ... "down_proj"
// HF module name, e.g. "model.layers.3.self_attn.q_proj".
std::string linear_module_name(int block, Linear l);

struct BlockWeights {
  int index = -1;
  int hidden = 0, q_dim = 0, kv_dim = 0, inter = 0;
  std::vector<float> input_norm, post_norm;  // [hidden]
  std::vector<float> q_norm, k_norm;         // [head_dim] (qwen3), else empty
  std::vector<float> qkv, qkv_bias;          // [q_dim + 2 kv_dim, hidden], bias empty or [..]
  std::vector<float> o, o_bias;              // [hidden, q_dim]
  std::vector<float> gate_up, gate_up_bias;  // [2 inter, hidden]
  std::vector<float> down, down_bias;        // [hidden, inter]

  int out_features(Linear l) const;
  int in_features(Linear l) const;
  float* linear(Linear l);  // rows of module l inside its (possibly fused) matrix
  const float* linear(Linear l) const;
  // Replaces module l's weights ([out, in] row-major).
  void set_linear(Linear l, const float* w);
  size_t bytes() const;
};

class LlamaWeights {
 public:
  explicit LlamaWeights(const std::string& model_dir);

  const ModelConfig& config() const { return config_; }
  const Checkpoint& checkpoint() const { return ckpt_; }
  const std::string& dir() const { return dir_; }

  // `recycle`: a block loaded before and no longer needed, whose four weight matrices' memory is
  // reused (a 1B block's fresh 243 MB cost page faults and zeroing on every load: ≈ 8% of a short
  // eval). The result is the same as without it.
  std::unique_ptr<BlockWeights> load_block(int i, std::unique_ptr<BlockWeights> recycle = nullptr) const;
  // Embedding rows of `tokens` into x [n, hidden] (× scale_emb for minicpm: the decoder's input).
  // Token ids are checked against the vocabulary.
  void embed(const int32_t* tokens, int64_t n, float* x) const;
  std::vector<float> load_final_norm() const;
  std::vector<float> load_lm_head() const;  // [vocab, hidden]; the embedding when tied
  std::string lm_head_name() const;
  // Parameters of all linear layers including lm_head (for FLOP counts).
  int64_t linear_parameters() const;
  int64_t total_parameters() const;

 private:
  void expect(const std::string& name, std::vector<int64_t> shape, bool required = true) const;
  std::string dir_;
  ModelConfig config_;
  Checkpoint ckpt_;
};

}  // namespace qsweep
