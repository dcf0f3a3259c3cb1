// cmd_spectrum.cc — `qsweep spectrum`: Alpha-Hill and WeightWatcher-style spectral metrics of
// every linear layer across storage precisions, layer-parallel over MPI ranks; writes
// results.h5, the two CSV tables and (unless --no-plots) plots via analysis/spectrum_plots.py.
// A run that fails before writing leaves no --output-dir it created.
#include <cstdio>
#include <cstdlib>

#include "cli/command.h"
#include "cli/output_dir.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/spectrum_output.h"

namespace qsweep {

namespace po = boost::program_options;

std::string analysis_dir() {
  if (const char* d = std::getenv("QSWEEP_ANALYSIS_DIR")) return d;
  return QSWEEP_ANALYSIS_DIR;
}

int cmd_spectrum(const CommandContext& ctx) {
  std::string model_dir, precs_s, filter, out_dir, plot_format;
  double k_frac = 0.1;
  bool save_eig = false, no_plots = false, quiet = false;
  int threads = 0;
  std::string device = "auto";
  std::string compute_dtype = "fp32";
  po::options_description desc("qsweep spectrum options");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model_dir)->required(), "model directory")
      ("precisions", po::value(&precs_s)->default_value("fp64,fp32,fp16,bf16"), "storage precisions to compare")
      ("filter-layers", po::value(&filter)->default_value(""), "ECMAScript regex searched in module names, e.g. '.*layers\\.[0-4]\\..*'")
      ("k-frac", po::value(&k_frac)->default_value(0.1), "share of eigenvalues in the Hill tail, in (0, 1)")
      ("output-dir", po::value(&out_dir)->default_value("spectrum"), "directory for results.h5, the CSVs and plots/")
      ("save-eigenvalues", po::bool_switch(&save_eig), "store every layer's eigenvalues in results.h5")
      ("plot-format", po::value(&plot_format)->default_value("png"), "png, pdf or svg")
      ("no-plots", po::bool_switch(&no_plots), "skip the plots")
      ("threads", po::value(&threads)->default_value(0), "threads per rank (0: cores / ranks per node); one layer per thread")
      ("device", po::value(&device)->default_value("auto"), kDeviceHelp)
      ("compute-dtype", po::value(&compute_dtype)->default_value("fp32"), kComputeDtypeHelp)
      ("quiet,q", po::bool_switch(&quiet), "no progress output");
  po::variables_map vm;
  if (!parse_args("spectrum", "qsweep spectrum --model DIR [options]", desc, ctx.args, vm)) return 0;
  log_set_quiet(quiet);
  QS_CHECK(plot_format == "png" || plot_format == "pdf" || plot_format == "svg",
           "--plot-format '" << plot_format << "' is not known (expected png, pdf or svg)");
  QS_CHECK(k_frac > 0 && k_frac < 1, "--k-frac " << k_frac << " must lie in (0, 1)");

  if (ctx.validate_only) return parse_precisions(precs_s), 0;
  SpectrumRunInfo info;
  info.model = model_dir;
  info.filter = filter;
  info.k_frac = k_frac;
  info.precisions = parse_precisions(precs_s);
  info.save_eigenvalues = save_eig;
  info.provenance = start_provenance(ctx, threads, device, compute_dtype);

  LlamaWeights model(model_dir);
  // Created once the model has loaded (a model error leaves no folder); a later failure removes
  // it again while it is empty.
  OutputDir out_guard;
  if (ctx.comm.rank() == 0) out_guard.create(out_dir);
  SpectrumOptions opt;
  opt.precisions = info.precisions;
  opt.filter = filter;
  opt.k_frac = k_frac;
  opt.save_eigenvalues = save_eig;
  opt.progress = !quiet;
  Timer t;
  const std::vector<LayerSpectrum> layers = run_spectrum(model, opt, ctx.comm);
  const double secs = t.seconds();
  info.provenance.end_time = Provenance::now_utc();

  if (ctx.comm.rank() == 0) {
    write_spectrum_h5(out_dir + "/results.h5", layers, info);
    write_spectrum_csv(out_dir + "/precision_alpha_hill_results.csv", layers, info.precisions);
    write_spectrum_summary_csv(out_dir + "/precision_summary_statistics.csv", layers, info.precisions);
    double layer_secs = 0;
    for (const auto& l : layers) layer_secs += l.seconds;
    result("layers: %zu", layers.size());
    result("seconds: %.3f (%.3f s per layer, summed over ranks and threads)", secs,
           layer_secs / layers.size());
    for (size_t k = 0; k < info.precisions.size(); ++k) {
      std::vector<double> a;
      for (const auto& l : layers) a.push_back(l.per_precision[k].m.alpha_hill);
      const Summary s = summarize(a);
      result("alpha_hill %s: mean %.6f median %.6f min %.6f max %.6f (%lld layers)",
             precision_name(info.precisions[k]), s.mean, s.median, s.min, s.max,
             static_cast<long long>(s.count));
    }
    log_info("wrote %s/results.h5, precision_alpha_hill_results.csv, precision_summary_statistics.csv",
             out_dir.c_str());
  }
  int rc = 0;
  if (!no_plots && ctx.comm.rank() == 0) {
    const std::string cmd = "/usr/bin/python3 '" + analysis_dir() + "/spectrum_plots.py' '" + out_dir +
                            "' --format " + plot_format + (quiet ? " --quiet" : "");
    const int st = std::system(cmd.c_str());
    if (st != 0) {
      std::fprintf(stderr, "qsweep: error: plotting failed (%s); the results in %s are complete, "
                   "rerun the plots with that command or pass --no-plots\n", cmd.c_str(), out_dir.c_str());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace qsweep
