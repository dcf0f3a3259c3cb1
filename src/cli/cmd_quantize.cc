// cmd_quantize.cc — `qsweep quantize`: calibration statistics and RTN/AWQ/GPTQ quantization of
// every decoder linear layer, data- and weight-parallel over MPI ranks; writes quantized.h5.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/output_dir.h"
#include "sweep/stage_args.h"
#include "io/provenance.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/log.h"
#include "io/quant_store.h"
#include "model/tokenizer.h"

namespace qsweep {

namespace po = boost::program_options;

int cmd_quantize(const CommandContext& ctx) {
  std::string model_dir, calib_path, out_dir;
  QuantizeArgs a;
  QuantizeOptions& opt = a.opt;
  int threads = 0;
  std::string device = "auto";
  std::string compute_dtype = "fp32";
  bool quiet = false;
  po::options_description desc("qsweep quantize options");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model_dir)->required(), "model directory")
      ("calib", po::value(&calib_path)->required(), "calibration text (or pre-tokenized file)")
      ("output-dir", po::value(&out_dir)->required(), "directory for quantized.h5")
      ("threads", po::value(&threads)->default_value(0), "threads per rank (0: cores / ranks per node)")
      ("device", po::value(&device)->default_value("auto"), kDeviceHelp)
      ("compute-dtype", po::value(&compute_dtype)->default_value("fp32"), kComputeDtypeHelp)
      ("quiet,q", po::bool_switch(&quiet), "no progress output");
  add_quantize_cell_options(desc, a);
  po::variables_map vm;
  if (!parse_args("quantize", "qsweep quantize --model DIR --method M --calib FILE --output-dir DIR [options]",
                  desc, ctx.args, vm))
    return 0;
  log_set_quiet(quiet);
  finish_quantize_args(a);
  opt.progress = !quiet;
  if (opt.scratch_dir.empty()) opt.scratch_dir = out_dir;
  if (!a.plan.empty()) opt.plan = read_plan(a.plan, &opt.grid);

  Provenance prov = start_provenance(ctx, threads, device, compute_dtype);

  LlamaWeights model(model_dir);
  validate_quantize_options(model, opt);
  const ModelConfig& cfg = model.config();
  const CalibWindows calib = command_calib_windows(model_dir, calib_path, cfg.vocab_size, cfg.bos_token_id, a.n_calib,
                                                   a.seq_len, a.seed, ctx.comm);
  log_info("calibration: %d windows of %d tokens from %s (%lld tokens), seed %llu, chunks of %d sequences",
           a.n_calib, a.seq_len, calib_path.c_str(), static_cast<long long>(calib.n_document_tokens),
           static_cast<unsigned long long>(a.seed), opt.calib_chunk);
  // Removed again (when this command made it and it is still empty) if the pipeline fails.
  OutputDir out_guard;
  if (ctx.comm.rank() == 0) out_guard.create(out_dir);
  ctx.comm.barrier();  // the other ranks' scratch files may go there

  std::unique_ptr<QuantizedFileWriter> file;
  if (ctx.comm.rank() == 0) file = std::make_unique<QuantizedFileWriter>(out_dir + "/quantized.h5");
  const QuantizeSummary sum = quantize_model(model, calib, opt, ctx.comm, file.get());
  prov.end_time = Provenance::now_utc();

  result("method: %s, W%d g%d%s%s", method_name(opt.method), opt.grid.bits, opt.grid.group_size,
         opt.grid.sym ? " sym" : "", opt.plan.empty() ? "" : " (per-layer plan)");
  result("bits per quantized weight: %.4f (codes + fp16 scale + b-bit zero per group)", sum.bits_per_weight());
  result("model size: %.0f bytes (%.2f MB; other tensors at their stored dtype)", sum.model_bytes(), sum.model_bytes() / 1e6);
  result("seconds: %.3f", sum.seconds);
  // Where the time went (rank 0's passes; layers summed over all ranks and threads, so they can
  // exceed the wall time): what to look at first when a cell is slow.
  result("time: forward + statistics %.1f s, block transforms %.1f s (rank 0), quantization %.1f s, "
         "error metrics %.1f s (summed over layers), block loading %.1f s, statistics reduction %.1f s, results out "
         "%.1f s (rank 0)",
         sum.forward_seconds, sum.transform_seconds, sum.quant_seconds, sum.metric_seconds, sum.load_seconds,
         sum.reduce_seconds, sum.output_seconds);
  if (file) {
    write_quantize_attrs(file->writer(), a, sum);
    file->finish("qsweep-quantized", {model_dir, calib_path, a.n_calib, a.seq_len, opt.calib_chunk, a.seed,
                                      opt.sparsity_threshold, &calib.offsets}, prov);
    log_info("wrote %s/quantized.h5", out_dir.c_str());
  }
  return 0;
}

}  // namespace qsweep
