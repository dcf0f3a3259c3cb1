// synthetic_model.h — writes a real Hugging Face model directory (config.json, safetensors,
// optional index for shards, optional tokenizer.model copy) with seeded random weights and
// Llama-family shapes: benchmarks run 1B-shaped models without downloading one, and tests build
// qwen2 / tied / llama3-rope / sharded / fp16 variants that the bundled model does not cover.
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace qsweep {

struct SyntheticModelSpec {
  std::string model_type = "llama";  // llama | mistral | qwen2
  int hidden = 256, intermediate = 768, layers = 2, heads = 8, kv_heads = 4, head_dim = 0;
  int vocab = 2048, max_positions = 4096;
  DType dtype = DType::BF16;
  int shards = 1;
  bool tie_embeddings = false;
  bool llama3_rope = false;
  double rope_theta = 10000.0;
  uint64_t seed = 0;
  std::string tokenizer;  // tokenizer.model to copy, or empty
};

void write_synthetic_model(const std::string& dir, const SyntheticModelSpec& spec);

}  // namespace qsweep
