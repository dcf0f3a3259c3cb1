// cmd_quantize.cc — `qsweep quantize`: calibration statistics and RTN/AWQ/GPTQ quantization of
// every decoder linear layer, data- and weight-parallel over MPI ranks; writes quantized.h5.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "io/provenance.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/log.h"
#include "io/quant_store.h"
#include "model/tokenizer.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {
std::map<std::string, GridSpec> read_plan(const std::string& path, GridSpec* dflt) {
  const nlohmann::json j = read_json_file(path, "the --plan file");
  auto spec = [&](const nlohmann::json& v, const std::string& where, GridSpec base) {
    QS_CHECK(v.is_object(), path << ": " << where << " must be an object {\"bits\", \"group_size\"}");
    if (v.contains("bits")) {
      QS_CHECK(v["bits"].is_number_integer(), path << ": " << where << ".bits must be an integer");
      base.bits = v["bits"].get<int>();
    }
    if (v.contains("group_size")) {
      QS_CHECK(v["group_size"].is_number_integer(), path << ": " << where << ".group_size must be an integer");
      base.group_size = v["group_size"].get<int>();
    }
    return base;
  };
  QS_CHECK(j.is_object(), path << ": expected {\"default\": {...}, \"layers\": {...}}");
  if (j.contains("default")) *dflt = spec(j["default"], "default", *dflt);
  std::map<std::string, GridSpec> plan;
  if (j.contains("layers")) {
    QS_CHECK(j["layers"].is_object(), path << ": 'layers' must be an object");
    for (auto it = j["layers"].begin(); it != j["layers"].end(); ++it) {
      plan[it.key()] = spec(it.value(), "layers." + it.key(), *dflt);
    }
  }
  return plan;
}
}  // namespace

int cmd_quantize(const CommandContext& ctx) {
  std::string model_dir, method_s, calib_path, plan_path, out_dir, salience;
  QuantizeOptions opt;
  int n_calib = 128, seq_len = 256, threads = 0;
  uint64_t seed = 0;
  bool no_propagate = false, lm_head = false, quiet = false;
  po::options_description desc("qsweep quantize options");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model_dir)->required(), "model directory")
      ("method", po::value(&method_s)->required(), "rtn, awq or gptq")
      ("bits", po::value(&opt.grid.bits)->default_value(4), "bits per weight, 2..8")
      ("group-size", po::value(&opt.grid.group_size)->default_value(128), "input columns per group (-1: one group per row)")
      ("sym", po::bool_switch(&opt.grid.sym), "symmetric grid (default asymmetric with zero points)")
      ("calib", po::value(&calib_path)->required(), "calibration text (or pre-tokenized file)")
      ("n-calib", po::value(&n_calib)->default_value(128), "calibration windows")
      ("seq-len", po::value(&seq_len)->default_value(256), "tokens per calibration window")
      ("seed", po::value(&seed)->default_value(0), "seed of the window sampler (std::mt19937_64)")
      ("plan", po::value(&plan_path), "per-layer bits/group sizes (JSON written by qsweep recommend)")
      ("no-propagate", po::bool_switch(&no_propagate), "calibrate every block on full-precision inputs")
      ("calib-chunk", po::value(&opt.calib_chunk)->default_value(4), "sequences per statistics chunk (fixes the reduction order; not the rank count)")
      ("sparsity-threshold", po::value(&opt.sparsity_threshold)->default_value(0.01), "sparsity: share of |x| below this x the input's RMS")
      ("awq-grid", po::value(&opt.awq_grid)->default_value(20), "AWQ: number of α grid points")
      ("awq-salience", po::value(&salience)->default_value("l1"), "AWQ: l1 (mean |x|) or l2 (root mean x²)")
      ("awq-clip", po::bool_switch(&opt.awq_clip), "AWQ: clipping search on each group's weights (not q/k), as AutoAWQ's auto_clip")
      ("gptq-damp", po::value(&opt.gptq.damp)->default_value(0.01), "GPTQ: damping as a fraction of mean(diag H)")
      ("gptq-act-order", po::bool_switch(&opt.gptq.act_order), "GPTQ: columns by decreasing H_ii, static groups")
      ("gptq-block-size", po::value(&opt.gptq.block_size)->default_value(128), "GPTQ: columns per lazy-update block")
      ("quantize-lm-head", po::bool_switch(&lm_head), "also quantize lm_head (GPTQ with the final-norm inputs' Hessian; RTN for rtn and awq)")
      ("output-dir", po::value(&out_dir)->required(), "directory for quantized.h5")
      ("threads", po::value(&threads)->default_value(0), "threads per rank (0: cores / ranks per node)")
      ("quiet,q", po::bool_switch(&quiet), "no progress output");
  po::variables_map vm;
  if (!parse_args("quantize", "qsweep quantize --model DIR --method M --calib FILE --output-dir DIR [options]",
                  desc, ctx.args, vm))
    return 0;
  log_set_quiet(quiet);
  opt.method = parse_method(method_s);
  QS_CHECK(salience == "l1" || salience == "l2", "--awq-salience '" << salience << "' is not known (expected l1 or l2)");
  opt.awq_l2 = salience == "l2";
  QS_CHECK(!opt.awq_clip || opt.method == QuantMethod::Awq, "--awq-clip applies to --method awq only");
  opt.quantize_lm_head = lm_head;
  QS_CHECK(opt.gptq.damp > 0, "--gptq-damp must be positive");
  opt.propagate = !no_propagate;
  opt.progress = !quiet;
  if (!plan_path.empty()) opt.plan = read_plan(plan_path, &opt.grid);

  Provenance prov = start_provenance(ctx, threads);

  LlamaWeights model(model_dir);
  validate_quantize_options(model, opt);
  const ModelConfig& cfg = model.config();
  const auto doc = load_document_tokens(calib_path, model_dir, cfg.vocab_size, {});
  QS_CHECK(!doc.empty(), calib_path << ": the calibration text is empty");
  const CalibWindows calib = sample_calib_windows(doc, cfg.bos_token_id, n_calib, seq_len, seed, calib_path);
  log_info("calibration: %d windows of %d tokens from %s (%lld tokens), seed %llu, chunks of %d sequences",
           n_calib, seq_len, calib_path.c_str(), static_cast<long long>(calib.n_document_tokens),
           static_cast<unsigned long long>(seed), opt.calib_chunk);
  make_dirs(out_dir);

  std::unique_ptr<QuantizedFileWriter> file;
  if (ctx.comm.rank() == 0) file = std::make_unique<QuantizedFileWriter>(out_dir + "/quantized.h5");
  const QuantizeSummary sum = quantize_model(model, calib, opt, ctx.comm, file.get());
  prov.end_time = Provenance::now_utc();

  result("method: %s, W%d g%d%s%s", method_name(opt.method), opt.grid.bits, opt.grid.group_size,
         opt.grid.sym ? " sym" : "", opt.plan.empty() ? "" : " (per-layer plan)");
  result("bits per quantized weight: %.4f (codes + fp16 scale + b-bit zero per group)", sum.bits_per_weight());
  result("model size: %.0f bytes (%.2f MB; other tensors at their stored dtype)", sum.model_bytes(), sum.model_bytes() / 1e6);
  result("seconds: %.3f", sum.seconds);
  if (file) {
    H5Writer& w = file->writer();
    w.attr("/", "method", std::string(method_name(opt.method)));
    w.attr("/", "bits", int64_t(opt.grid.bits));
    w.attr("/", "group_size", int64_t(opt.grid.group_size));
    w.attr("/", "sym", int64_t(opt.grid.sym));
    w.attr("/", "plan", plan_path);
    w.attr("/", "propagate", int64_t(opt.propagate));
    w.attr("/", "awq_grid", int64_t(opt.awq_grid));
    w.attr("/", "awq_salience", salience);
    w.attr("/", "awq_clip", int64_t(opt.awq_clip));
    w.attr("/", "quantize_lm_head", int64_t(opt.quantize_lm_head));
    w.attr("/", "gptq_damp", opt.gptq.damp);
    w.attr("/", "gptq_act_order", int64_t(opt.gptq.act_order));
    w.attr("/", "gptq_block_size", int64_t(opt.gptq.block_size));
    w.attr("/", "bits_per_weight", sum.bits_per_weight());
    w.attr("/", "model_bytes", sum.model_bytes());
    w.attr("/", "quantized_params", sum.quantized_params);
    w.attr("/", "seconds", sum.seconds);
    file->finish("qsweep-quantized", {model_dir, calib_path, n_calib, seq_len, opt.calib_chunk, seed,
                                      opt.sparsity_threshold, &calib.offsets}, prov);
    log_info("wrote %s/quantized.h5", out_dir.c_str());
  }
  return 0;
}

}  // namespace qsweep
