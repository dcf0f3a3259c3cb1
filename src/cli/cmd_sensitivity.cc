// cmd_sensitivity.cc — `qsweep sensitivity`: per-layer sensitivity of every quantizable linear to
// every candidate (bits, group size) of a palette, with the chosen method, from one calibration
// pass (the pipeline of `qsweep quantize` with --no-propagate: the calibration Gram of each layer's
// full-precision input, so that no score depends on another layer's choice). Score: output-error, the layer's
// output error tr((W−Q)Σxxᵀ(W−Q)ᵀ)/(tokens·out) with that candidate alone (no forward pass per
// candidate). Writes sensitivity.h5 (io/sensitivity_file.h) for `qsweep allocate`.
#include <cstdio>

#include "cli/command.h"
#include "cli/output_dir.h"
#include "core/error.h"
#include "core/log.h"
#include "io/provenance.h"
#include "io/sensitivity_file.h"
#include "model/tokenizer.h"
#include "quant/palette.h"
#include "sweep/stage_args.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {
class Collector : public QuantizeSink {
 public:
  explicit Collector(SensitivityData& d) : d_(d) {}
  void on_block(const BlockResult& b) override {
    for (const LinearResult& r : b.linears) {
      d_.layers.push_back(r.name);
      d_.out_features.push_back(r.q.out);
      d_.in_features.push_back(r.q.in);
      QS_ASSERT(r.palette_error.size() == d_.palette.size(), "palette errors of " << r.name);
      d_.output_error.insert(d_.output_error.end(), r.palette_error.begin(), r.palette_error.end());
    }
  }

 private:
  SensitivityData& d_;
};
}  // namespace

int cmd_sensitivity(const CommandContext& ctx) {
  std::string model_dir, calib_path, out_dir, palette, strategy = "adaptive";
  QuantizeArgs a;
  QuantizeOptions& opt = a.opt;
  int threads = 0;
  bool quiet = false;
  po::options_description desc("qsweep sensitivity options");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model_dir)->required(), "model directory")
      ("calib", po::value(&calib_path)->required(), "calibration text (or pre-tokenized file)")
      ("output-dir", po::value(&out_dir)->required(), "directory for sensitivity.h5")
      ("strategy", po::value(&strategy)->default_value("adaptive"), "candidate palette: conservative (bits 4,6,8 x groups 64,128), adaptive (2,3,4,6,8 x 64,128,256) or aggressive (2,3,4,8 x 128,256)")
      ("palette", po::value(&palette), "candidates BITS:GROUP,... instead of the strategy's (group -1: one per row)")
      ("threads", po::value(&threads)->default_value(0), "threads per rank (0: cores / ranks per node)")
      ("quiet,q", po::bool_switch(&quiet), "no progress output");
  add_quantize_cell_options(desc, a);
  po::variables_map vm;
  if (!parse_args("sensitivity", "qsweep sensitivity --model DIR --calib FILE --method M --output-dir DIR [--strategy S | --palette B:G,...]",
                  desc, ctx.args, vm))
    return 0;
  log_set_quiet(quiet);
  finish_quantize_args(a);
  QS_CHECK(a.plan.empty(), "sensitivity: --plan does not apply (every layer is scored on every candidate)");
  QS_CHECK(!a.lm_head, "sensitivity: --quantize-lm-head is not supported yet (the decoder linears are scored)");
  opt.palette = palette.empty() ? strategy_palette(strategy) : parse_palette(palette);
  // Every block is scored on full-precision inputs, so a layer's score does not depend on what the
  // blocks before it were given: the scores add up to what quantize --plan --no-propagate measures.
  opt.propagate = false;
  opt.progress = !quiet;
  if (opt.scratch_dir.empty()) opt.scratch_dir = out_dir;
  Provenance prov = start_provenance(ctx, threads);

  LlamaWeights model(model_dir);
  validate_quantize_options(model, opt);
  for (const GridSpec& g : opt.palette) {
    QuantizeOptions check = opt;
    check.grid = g;
    validate_quantize_options(model, check);
  }
  const ModelConfig& cfg = model.config();
  const CalibWindows calib = command_calib_windows(model_dir, calib_path, cfg.vocab_size, cfg.bos_token_id, a.n_calib,
                                                   a.seq_len, a.seed, ctx.comm);
  log_info("sensitivity: %s, %zu candidates (%s) per linear, %d calibration windows of %d tokens", method_name(opt.method),
           opt.palette.size(), palette_string(opt.palette).c_str(), a.n_calib, a.seq_len);
  OutputDir out_guard;
  if (ctx.comm.rank() == 0) out_guard.create(out_dir);

  SensitivityData d;
  d.model = model_dir;
  d.calib = calib_path;
  d.method = method_name(opt.method);
  d.n_calib = a.n_calib;
  d.seq_len = a.seq_len;
  d.seed = a.seed;
  d.palette = opt.palette;
  Collector sink(d);
  const QuantizeSummary sum = quantize_model(model, calib, opt, ctx.comm, &sink);
  d.quantized_params = sum.quantized_params;
  d.other_bytes = sum.other_bytes;
  for (const std::string& name : model.checkpoint().tensor_names())
    if (name.find("_proj.weight") != std::string::npos && name.rfind("model.layers.", 0) == 0) {
      const TensorInfo* t = model.checkpoint().find(name);
      d.full_bits += static_cast<double>(t->numel()) * dtype_size(t->dtype) * 8;
    }
  prov.end_time = Provenance::now_utc();
  result("sensitivity: %zu layers x %zu candidates (%s), method %s, score output-error", d.layers.size(), d.palette.size(),
         palette_string(d.palette).c_str(), d.method.c_str());
  for (size_t c = 0; c < d.palette.size(); ++c) {
    double mean = 0;
    for (size_t l = 0; l < d.layers.size(); ++l) mean += d.error(l, c);
    result("  W%d g%d: mean output error %.6g", d.palette[c].bits, d.palette[c].group_size, mean / d.layers.size());
  }
  if (ctx.comm.rank() == 0) {
    write_sensitivity_file(out_dir + "/sensitivity.h5", d, prov);
    log_info("wrote %s/sensitivity.h5 (%.1f s)", out_dir.c_str(), sum.seconds);
  }
  return 0;
}

}  // namespace qsweep
