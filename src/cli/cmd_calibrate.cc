// cmd_calibrate.cc — `qsweep calibrate`: the full-precision activation-statistics pass (what
// llama-imatrix collects, and more): per linear input channel Σx², Σ|x|, max|x| and counts,
// per input mean/std/kurtosis/sparsity, per head attention entropy — windows sampled as
// `qsweep quantize` samples them, shared across MPI ranks, combined in chunk order. Writes
// stats.h5 (the /blocks part of quantized.h5's layout) and reports tokens/s.
#include "cli/command.h"
#include "io/provenance.h"
#include "core/error.h"
#include "core/log.h"
#include "io/quant_store.h"
#include "model/tokenizer.h"

namespace qsweep {

namespace po = boost::program_options;

int cmd_calibrate(const CommandContext& ctx) {
  std::string model_dir, calib_path, out_dir;
  QuantizeOptions opt;
  int n_calib = 128, seq_len = 256, threads = 0;
  std::string device = "auto";
  std::string compute_dtype = "fp32";
  int64_t activation_mb = 1024;
  uint64_t seed = 0;
  bool quiet = false;
  po::options_description desc("qsweep calibrate options");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model_dir)->required(), "model directory")
      ("calib", po::value(&calib_path)->required(), "calibration text (or pre-tokenized file)")
      ("n-calib", po::value(&n_calib)->default_value(128), "calibration windows")
      ("seq-len", po::value(&seq_len)->default_value(256), "tokens per window")
      ("seed", po::value(&seed)->default_value(0), "seed of the window sampler")
      ("calib-chunk", po::value(&opt.calib_chunk)->default_value(4), "sequences per statistics chunk")
      ("sparsity-threshold", po::value(&opt.sparsity_threshold)->default_value(0.01), "sparsity: |x| below this x the RMS")
      ("activation-budget-mb", po::value(&activation_mb)->default_value(1024), "calibration hidden states kept in memory per rank; beyond it they go to a scratch file. On a GPU (--device cuda) they also stay on the device for the whole run when the ranks sharing it fit within this budget together (it applies per device); beyond it each chunk moves per block")
      ("scratch-dir", po::value(&opt.scratch_dir)->default_value(""), "folder for that scratch file (default: the output directory)")
      ("output-dir", po::value(&out_dir)->required(), "directory for stats.h5")
      ("threads", po::value(&threads)->default_value(0), "threads per rank")
      ("device", po::value(&device)->default_value("auto"), kDeviceHelp)
      ("compute-dtype", po::value(&compute_dtype)->default_value("fp32"), kComputeDtypeHelp)
      ("quiet,q", po::bool_switch(&quiet), "no progress output");
  po::variables_map vm;
  if (!parse_args("calibrate", "qsweep calibrate --model DIR --calib FILE --output-dir DIR", desc, ctx.args, vm))
    return 0;
  QS_CHECK(n_calib >= 1, "--n-calib " << n_calib << " must be at least 1");
  QS_CHECK(seq_len >= 2, "--seq-len " << seq_len << " must be at least 2");
  QS_CHECK(opt.calib_chunk >= 1, "--calib-chunk " << opt.calib_chunk << " must be at least 1");
  QS_CHECK(opt.sparsity_threshold > 0, "--sparsity-threshold must be positive");
  QS_CHECK(activation_mb >= 1, "--activation-budget-mb " << activation_mb << " must be positive");
  opt.activation_budget = activation_mb << 20;
  if (opt.scratch_dir.empty()) opt.scratch_dir = out_dir;
  if (ctx.validate_only) return 0;
  log_set_quiet(quiet);
  opt.stats_only = true;
  opt.progress = !quiet;
  Provenance prov = start_provenance(ctx, threads, device, compute_dtype);
  LlamaWeights model(model_dir);
  DocumentOptions dopt;
  dopt.write_cache = ctx.comm.rank() == 0;  // every rank reads the cache, one writes it
  const auto doc = load_document_tokens(calib_path, model_dir, model.config().vocab_size, dopt);
  QS_CHECK(!doc.empty(), calib_path << ": the calibration text is empty");
  const CalibWindows calib = sample_calib_windows(doc, model_special_tokens(model_dir, model.config().bos_token_id).prefix, n_calib, seq_len, seed, calib_path);
  make_dirs(out_dir);
  std::unique_ptr<QuantizedFileWriter> file;
  if (ctx.comm.rank() == 0) file = std::make_unique<QuantizedFileWriter>(out_dir + "/stats.h5");
  const QuantizeSummary sum = quantize_model(model, calib, opt, ctx.comm, file.get());
  prov.end_time = Provenance::now_utc();
  const double fwd = ctx.comm.allreduce_max(sum.forward_seconds);
  const double tokens = static_cast<double>(n_calib) * seq_len;
  result("tokens: %.0f", tokens);
  result("statistics pass: %.3f s, %.0f tokens/s (forward + statistics; loading excluded)", fwd, tokens / fwd);
  if (file) {
    file->finish("qsweep-stats", {model_dir, calib_path, n_calib, seq_len, opt.calib_chunk, seed,
                                  opt.sparsity_threshold, &calib.offsets}, prov);
    log_info("wrote %s/stats.h5", out_dir.c_str());
  }
  return 0;
}

}  // namespace qsweep
