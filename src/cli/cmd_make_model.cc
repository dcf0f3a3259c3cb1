// cmd_make_model.cc — `qsweep make-model`: a synthetic HF checkpoint with Llama-family shapes
// (presets for the bundled model's shapes and Llama-3.2-1B's) for benchmarks and tests, of any
// supported model_type (llama, mistral, qwen2, qwen3, minicpm) with that family's extra fields.
// Rerunning it over its own earlier output replaces that folder completely; a failure leaves none.
#include "cli/command.h"
#include "cli/output_dir.h"
#include "core/error.h"
#include "core/log.h"
#include "model/synthetic_model.h"

namespace qsweep {

namespace po = boost::program_options;

int cmd_make_model(const CommandContext& ctx) {
  SyntheticModelSpec s;
  std::string out, dtype = "bf16", preset;
  po::options_description desc("qsweep make-model options");
  desc.add_options()("help,h", "show this help")
      ("output", po::value(&out)->required(), "model directory to write")
      ("preset", po::value(&preset), "kjv (4 x 256, the bundled model's shapes), 160m (12 x 768), 1b (Llama-3.2-1B: 16 x 2048, vocab 128256); options below override")
      ("model-type", po::value(&s.model_type)->default_value("llama"), "llama, mistral, qwen2 (adds q/k/v biases), qwen3 (adds per-head q/k RMSNorm weights) or minicpm (adds scale_emb, scale_depth, dim_model_base)")
      ("hidden", po::value(&s.hidden), "hidden size")
      ("intermediate", po::value(&s.intermediate), "MLP size")
      ("layers", po::value(&s.layers), "decoder blocks")
      ("heads", po::value(&s.heads), "attention heads")
      ("kv-heads", po::value(&s.kv_heads), "key/value heads (GQA)")
      ("head-dim", po::value(&s.head_dim), "head dimension (default hidden/heads)")
      ("vocab", po::value(&s.vocab), "vocabulary size")
      ("dtype", po::value(&dtype)->default_value("bf16"), "f32, f16 or bf16")
      ("shards", po::value(&s.shards)->default_value(1), "number of safetensors shards (> 1 writes model.safetensors.index.json)")
      ("tie-embeddings", po::bool_switch(&s.tie_embeddings), "tie lm_head to the embedding (no lm_head.weight)")
      ("llama3-rope", po::bool_switch(&s.llama3_rope), "add llama3 rope_scaling (factor 8, original 64 positions)")
      ("scale-emb", po::value(&s.scale_emb)->default_value(12.0), "minicpm: embedding multiplier scale_emb")
      ("scale-depth", po::value(&s.scale_depth)->default_value(1.4), "minicpm: residual branches x scale_depth / sqrt(layers)")
      ("dim-model-base", po::value(&s.dim_model_base)->default_value(0.0), "minicpm: lm_head input / (hidden / dim_model_base); 0 = hidden / 8")
      ("seed", po::value(&s.seed)->default_value(0), "random seed")
      ("tokenizer", po::value(&s.tokenizer), "tokenizer.model to copy into the directory");
  po::variables_map vm;
  if (!parse_args("make-model", "qsweep make-model --output DIR [--preset P] [options]", desc, ctx.args, vm))
    return 0;
  if (!preset.empty()) {
    SyntheticModelSpec p = s;
    if (preset == "kjv") {
      p.hidden = 256; p.intermediate = 768; p.layers = 4; p.heads = 8; p.kv_heads = 4; p.vocab = 2048;
    } else if (preset == "160m") {
      p.hidden = 768; p.intermediate = 2048; p.layers = 12; p.heads = 12; p.kv_heads = 4; p.vocab = 32000;
    } else if (preset == "1b") {
      p.hidden = 2048; p.intermediate = 8192; p.layers = 16; p.heads = 32; p.kv_heads = 8; p.vocab = 128256;
      p.rope_theta = 500000.0;
    } else {
      QS_THROW("--preset '" << preset << "' is not known (expected kjv, 160m or 1b)");
    }
    // Explicit options win over the preset.
    if (!vm.count("hidden")) s.hidden = p.hidden;
    if (!vm.count("intermediate")) s.intermediate = p.intermediate;
    if (!vm.count("layers")) s.layers = p.layers;
    if (!vm.count("heads")) s.heads = p.heads;
    if (!vm.count("kv-heads")) s.kv_heads = p.kv_heads;
    if (!vm.count("vocab")) s.vocab = p.vocab;
    s.rope_theta = p.rope_theta;
  }
  if (dtype == "f32") s.dtype = DType::F32;
  else if (dtype == "f16") s.dtype = DType::F16;
  else if (dtype == "bf16") s.dtype = DType::BF16;
  else QS_THROW("--dtype '" << dtype << "' is not known (expected f32, f16 or bf16)");
  if (ctx.comm.rank() == 0) {
    // The parent folders are made here (write_synthetic_model needs the parent for its temporary
    // folder) and taken back if the model is not written, so an error leaves nothing behind.
    OutputDir parent;
    const size_t slash = out.find_last_not_of('/') == std::string::npos
                             ? std::string::npos
                             : out.rfind('/', out.find_last_not_of('/'));
    if (slash != std::string::npos && slash > 0) parent.create(out.substr(0, slash));
    write_synthetic_model(out, s);
    log_info("wrote %s: %s, %d x %d, %d heads (%d kv), vocab %d, %s, %d shard(s)", out.c_str(),
             s.model_type.c_str(), s.layers, s.hidden, s.heads, s.kv_heads, s.vocab, dtype.c_str(),
             s.shards);
  }
  ctx.comm.barrier();
  return 0;
}

}  // namespace qsweep
