// synthetic_model.h — writes a real Hugging Face model directory (config.json, safetensors,
// optional index for shards, optional tokenizer.model copy) with seeded random weights and
// Llama-family shapes: benchmarks run 1B-shaped models without downloading one, and tests build
// qwen2 / qwen3 / minicpm / tied / llama3-rope / sharded / fp16 variants that the bundled model
// does not cover. Family extras: qwen2 q/k/v biases; qwen3 q_norm/k_norm weights
// (1 + N(0, 0.25^2), so the per-head norms are not the identity); minicpm's scale_emb,
// scale_depth and dim_model_base in config.json (embeddings N(0, 1/scale_emb^2), so the scaled
// decoder input is unit-scale).
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace qsweep {

struct SyntheticModelSpec {
  std::string model_type = "llama";  // llama | mistral | qwen2 | qwen3 | minicpm
  int hidden = 256, intermediate = 768, layers = 2, heads = 8, kv_heads = 4, head_dim = 0;
  int vocab = 2048, max_positions = 4096;
  DType dtype = DType::BF16;
  int shards = 1;
  bool tie_embeddings = false;
  bool llama3_rope = false;
  double rope_theta = 10000.0;
  // minicpm only (MiniCPM-2B's scale_emb and scale_depth; dim_model_base 0 = hidden / 8).
  double scale_emb = 12.0, scale_depth = 1.4, dim_model_base = 0;
  uint64_t seed = 0;
  std::string tokenizer;  // tokenizer.model to copy, or empty
};

// Writes the model to `dir`, whose parent must exist. `dir` may be absent, empty, or hold an
// earlier make-model output (its .qsweep-make-model lists the files), which is replaced
// completely; any other file there is refused, by name. The spec (including that `tokenizer`
// exists) is checked first, and the files are written to a temporary sibling folder renamed into
// place, so an error leaves `dir` as it was and no other file or folder behind.
void write_synthetic_model(const std::string& dir, const SyntheticModelSpec& spec);

}  // namespace qsweep
