// fuzz_config.cc — libFuzzer target: a model's config.json through ModelConfig::from_file, and
// the derived sizes the weight loader and the forward pass compute from it at once (q_dim,
// kv_dim, MiniCPM's factors). A config that passes validation must give sizes that fit an int.
#include <cmath>
#include <cstdint>

#include "fuzz_util.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qsweep;
  const std::string path =
      fuzz::write_scratch("config.json", std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_only_qsweep_errors([&] {
    const ModelConfig c = ModelConfig::from_file(path);
    if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.num_key_value_heads <= 0 || c.head_dim <= 0 ||
        c.vocab_size <= 0 || c.num_hidden_layers <= 0 || c.intermediate_size <= 0)
      fuzz::finding("from_file accepted a config with a non-positive size");
    volatile int q = c.q_dim(), kv = c.kv_dim();
    volatile double r = c.residual_scale(), d = c.logit_divisor();
    (void)q, (void)kv, (void)r, (void)d;
  });
  return 0;
}
