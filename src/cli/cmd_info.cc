// cmd_info.cc — `qsweep info`: validates a model directory the way every command does and
// describes it (config, parameter counts, tensors with dtype and shape).
#include <cstdio>

#include "cli/command.h"
#include "model/llama_weights.h"

namespace qsweep {

namespace po = boost::program_options;

int cmd_info(const CommandContext& ctx) {
  std::string model_dir;
  bool tensors = false;
  po::options_description desc("qsweep info options");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model_dir)->required(), "model directory")
      ("tensors", po::bool_switch(&tensors), "list every tensor");
  po::variables_map vm;
  if (!parse_args("info", "qsweep info --model DIR [--tensors]", desc, ctx.args, vm)) return 0;
  LlamaWeights m(model_dir);
  if (ctx.comm.rank() != 0) return 0;
  const ModelConfig& c = m.config();
  std::printf("model: %s\n", model_dir.c_str());
  std::printf("model_type: %s\nblocks: %d\nhidden: %d\nintermediate: %d\nheads: %d\nkv_heads: %d\n"
              "head_dim: %d\nvocab: %d\nrope_theta: %g\nrope_scaling: %s\ntied_embeddings: %s\n",
              c.model_type.c_str(), c.num_hidden_layers, c.hidden_size, c.intermediate_size,
              c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.vocab_size, c.rope_theta,
              c.rope_scaling.type.empty() ? "none" : c.rope_scaling.type.c_str(),
              c.tie_word_embeddings ? "yes" : "no");
  // Family extras: only for the families that have them, so llama/mistral/qwen2 print as before.
  if (c.qk_norm)
    std::printf("family: qwen3 (per-head RMSNorm of q and k before RoPE, eps %g)\n", c.rms_norm_eps);
  if (c.mup_scaling)
    std::printf("family: minicpm (muP scaling)\nscale_emb: %g\nscale_depth: %g (residual branches x %.6g)\n"
                "dim_model_base: %g (lm_head input / %.6g)\n",
                c.scale_emb, c.scale_depth, c.residual_scale(), c.dim_model_base, c.logit_divisor());
  std::printf("parameters: %lld\nlinear parameters (lm_head included): %lld\n",
              static_cast<long long>(m.total_parameters()),
              static_cast<long long>(m.linear_parameters()));
  if (tensors) {
    for (const auto& n : m.checkpoint().tensor_names()) {
      const TensorInfo* t = m.checkpoint().find(n);
      std::printf("  %-50s %-5s %s\n", n.c_str(), dtype_name(t->dtype), shape_str(t->shape).c_str());
    }
  }
  return 0;
}

}  // namespace qsweep
