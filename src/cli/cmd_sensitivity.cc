// cmd_sensitivity.cc — `qsweep sensitivity`: per-layer sensitivity of every quantizable linear to
// every candidate (bits, group size) of a palette, with the chosen method, from one calibration
// pass (the pipeline of `qsweep quantize` with --no-propagate: the calibration Gram of each layer's
// full-precision input, so that no score depends on another layer's choice). Score: output-error, the layer's
// output error tr((W−Q)Σxxᵀ(W−Q)ᵀ)/(tokens·out) with that candidate alone (no forward pass per
// candidate); with --score kl-probe also each layer x candidate quantized alone and the mean KL
// against the full-precision model on probe windows (quant/kl_probe.h), probes spread over ranks;
// with --score fisher ½ Σ F (W − Q)², F the empirical Fisher diagonal from backward passes over the
// first --fisher-windows calibration windows (train/fisher.h), windows spread over ranks;
// with --score alpha the Alpha-Hill of each layer's weight (for comparison: it cannot price
// candidates). Prints the Spearman correlations between the scores per candidate. Writes
// sensitivity.h5 (io/sensitivity_file.h) for `qsweep allocate` and sensitivity.html (plots).
#include <cmath>
#include <cstdio>
#include <random>

#include "cli/command.h"
#include "cli/output_dir.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "eval/eval_data.h"
#include "eval/windows.h"
#include "io/provenance.h"
#include "io/sensitivity_file.h"
#include "model/tokenizer.h"
#include "quant/kl_probe.h"
#include "quant/palette.h"
#include "train/fisher.h"
#include "stats/spectrum.h"
#include "sweep/sensitivity_html.h"
#include "sweep/stage_args.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {
const Linear kLinears[] = {Linear::Q, Linear::K, Linear::V, Linear::O, Linear::Gate, Linear::Up, Linear::Down};

class Collector : public QuantizeSink {
 public:
  Collector(SensitivityData& d, KlProbe* probe, FisherProbe* fisher, const Comm& comm, bool progress)
      : d_(d), probe_(probe), fisher_(fisher), comm_(comm), progress_(progress) {}
  void on_block(const BlockResult& b) override {
    for (const LinearResult& r : b.linears) {
      d_.layers.push_back(r.name);
      d_.out_features.push_back(r.q.out);
      d_.in_features.push_back(r.q.in);
      QS_ASSERT(r.palette_error.size() == d_.palette.size(), "palette errors of " << r.name);
      d_.output_error.insert(d_.output_error.end(), r.palette_error.begin(), r.palette_error.end());
    }
    if (fisher_) {
      Timer t;
      std::vector<const std::vector<QuantizedLinear>*> pq;
      for (const LinearResult& r : b.linears) pq.push_back(&r.palette_q);
      const std::vector<double> f = fisher_->block_scores(b.index, pq);
      d_.fisher.insert(d_.fisher.end(), f.begin(), f.end());
      if (progress_) log_info("fisher: block %d (%.1f s)", b.index, t.seconds());
    }
    if (!probe_) return;
    // This block's probes (linear x candidate), dealt round-robin over ranks, gathered in order.
    const size_t C = d_.palette.size(), n = b.linears.size() * C;
    std::vector<double> mine;
    Timer t;
    for (size_t k = static_cast<size_t>(comm_.rank()); k < n; k += static_cast<size_t>(comm_.size())) {
      const LinearResult& r = b.linears[k / C];
      QS_ASSERT(r.palette_q.size() == C, "palette weights of " << r.name);
      const double v = probe_->kl(b.index, kLinears[k / C], r.palette_q[k % C]);
      mine.insert(mine.end(), {static_cast<double>(k), std::isfinite(v) ? v : -1.0});
    }
    const std::vector<double> all = comm_.allgatherv(mine);
    std::vector<double> kl(n, -1.0);
    for (size_t i = 0; i + 1 < all.size(); i += 2) kl[static_cast<size_t>(all[i])] = all[i + 1];
    for (size_t k = 0; k < n; ++k)
      QS_CHECK(kl[k] >= 0, "kl-probe: non-finite KL-divergence probing " << b.linears[k / C].name << " at W"
                                                                        << d_.palette[k % C].bits << " g" << d_.palette[k % C].group_size);
    d_.kl_probe.insert(d_.kl_probe.end(), kl.begin(), kl.end());
    if (progress_) log_info("kl-probe: block %d, %zu probes (%.1f s)", b.index, n, t.seconds());
  }

 private:
  SensitivityData& d_;
  KlProbe* probe_;
  FisherProbe* fisher_;
  const Comm& comm_;
  bool progress_;
};
}  // namespace

int cmd_sensitivity(const CommandContext& ctx) {
  std::string model_dir, calib_path, out_dir;
  SensitivityArgs sa;
  QuantizeArgs a;
  QuantizeOptions& opt = a.opt;
  int threads = 0;
  std::string device = "auto";
  std::string compute_dtype = "fp32";
  bool quiet = false;
  po::options_description desc("qsweep sensitivity options");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model_dir)->required(), "model directory")
      ("calib", po::value(&calib_path)->required(), "calibration text (or pre-tokenized file)")
      ("output-dir", po::value(&out_dir)->required(), "directory for sensitivity.h5 and sensitivity.html")
      ("threads", po::value(&threads)->default_value(0), "threads per rank (0: cores / ranks per node)")
      ("device", po::value(&device)->default_value("auto"), kDeviceHelp)
      ("compute-dtype", po::value(&compute_dtype)->default_value("fp32"), kComputeDtypeHelp)
      ("quiet,q", po::bool_switch(&quiet), "no progress output");
  add_sensitivity_options(desc, sa);
  add_quantize_cell_options(desc, a);
  po::variables_map vm;
  if (!parse_args("sensitivity", "qsweep sensitivity --model DIR --calib FILE --method M --output-dir DIR [--strategy S | --palette B:G,...]",
                  desc, ctx.args, vm))
    return 0;
  log_set_quiet(quiet);
  finish_quantize_args(a);
  QS_CHECK(a.plan.empty(), "sensitivity: --plan does not apply (every layer is scored on every candidate)");
  QS_CHECK(!a.lm_head, "sensitivity: --quantize-lm-head is not supported yet (the decoder linears are scored)");
  const std::string& probe_data = sa.probe_data;
  const int probe_windows = sa.probe_windows;
  int probe_ctx = sa.probe_ctx;
  opt.palette = !sa.palette.empty() ? parse_palette(sa.palette) : strategy_palette(sa.strategy.empty() ? "adaptive" : sa.strategy);
  bool want_kl = false, want_alpha = false, want_fisher = false;
  for (const std::string& s : split_data_list(sa.scores, "--score")) {
    QS_CHECK(s == "output-error" || s == "kl-probe" || s == "alpha" || s == "fisher",
             "--score '" << s << "': expected output-error, kl-probe, fisher or alpha");
    want_kl |= s == "kl-probe";
    want_alpha |= s == "alpha";
    want_fisher |= s == "fisher";
  }
  QS_CHECK(!want_fisher || !opt.method->transforms_block(),
           "--score fisher with --method awq is not supported yet (AWQ's scales move into the previous layer, so a layer's candidates do not approximate its own weights)");
  QS_CHECK(sa.fisher_windows >= 1, "--fisher-windows " << sa.fisher_windows << " must be at least 1");
  const int fisher_windows = std::min(sa.fisher_windows, a.n_calib);
  QS_CHECK(!want_kl || !opt.method->transforms_block(),
           "--score kl-probe with --method awq is not supported yet (AWQ's scales move into the previous layer, so a layer cannot be probed alone)");
  QS_CHECK(probe_windows >= 1, "--probe-windows " << probe_windows << " must be at least 1");
  if (probe_ctx == 0) probe_ctx = a.seq_len;
  QS_CHECK(probe_ctx >= 2, "--probe-ctx " << probe_ctx << " must be at least 2");
  if (ctx.validate_only) return 0;  // a sweep's [sensitivity] section, checked before any work
  opt.keep_palette_weights = want_kl || want_fisher;
  // Every block is scored on full-precision inputs, so a layer's score does not depend on what the
  // blocks before it were given: the scores add up to what quantize --plan --no-propagate measures.
  opt.propagate = false;
  opt.progress = !quiet;
  if (opt.scratch_dir.empty()) opt.scratch_dir = out_dir;
  Provenance prov = start_provenance(ctx, threads, device, compute_dtype);

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
  // Probe windows: --probe-data's first windows, or windows of the calibration text drawn with
  // another seed that overlap no calibration window (never the evaluation text).
  std::unique_ptr<KlProbe> probe;
  std::string probe_source;
  if (want_kl) {
    DocumentOptions dopt;
    dopt.write_cache = ctx.comm.rank() == 0;
    std::vector<int32_t> pw;
    const SpecialTokens special = model_special_tokens(model_dir, cfg.bos_token_id);
    if (!probe_data.empty()) {
      const EvalWindows w = make_windows(Protocol::Gptq, load_document_tokens(probe_data, model_dir, cfg.vocab_size, dopt),
                                         special, probe_ctx, probe_data);
      QS_CHECK(w.n_windows >= probe_windows, probe_data << ": " << w.n_windows << " windows of " << probe_ctx
                                                        << " tokens, fewer than --probe-windows " << probe_windows);
      pw.assign(w.tokens.begin(), w.tokens.begin() + static_cast<size_t>(probe_windows) * probe_ctx);
      probe_source = probe_data + " (first windows)";
    } else {
      std::vector<int32_t> ids = special.prefix;
      const std::vector<int32_t> doc = load_document_tokens(calib_path, model_dir, cfg.vocab_size, dopt);
      ids.insert(ids.end(), doc.begin(), doc.end());
      const int64_t N = static_cast<int64_t>(ids.size());
      std::mt19937_64 rng(a.seed ^ 0x9e3779b97f4a7c15ULL);
      std::vector<std::pair<int64_t, int64_t>> used;
      for (int64_t off : calib.offsets) used.push_back({off, off + a.seq_len});
      int tries = 0;
      while (static_cast<int>(pw.size()) < probe_windows * probe_ctx) {
        QS_CHECK(N > probe_ctx && ++tries < 100000, calib_path << ": cannot draw " << probe_windows << " probe windows of " << probe_ctx
                                                               << " tokens that overlap no calibration window: give --probe-data");
        const int64_t off = static_cast<int64_t>(rng() % static_cast<uint64_t>(N - probe_ctx));
        bool overlap = false;
        for (const auto& u : used) overlap |= off < u.second && u.first < off + probe_ctx;
        if (overlap) continue;
        used.push_back({off, off + probe_ctx});
        pw.insert(pw.end(), ids.begin() + off, ids.begin() + off + probe_ctx);
      }
      probe_source = calib_path + " (windows disjoint from the calibration windows)";
    }
    probe = std::make_unique<KlProbe>(model, std::move(pw), probe_windows, probe_ctx, 4, a.activation_mb << 20);
    log_info("kl-probe: %d windows of %d tokens from %s; %zu probes per block", probe_windows, probe_ctx, probe_source.c_str(),
             opt.palette.size() * 7);
  }
  std::unique_ptr<FisherProbe> fisher;
  if (want_fisher) {
    const std::vector<int32_t> fw(calib.tokens.begin(), calib.tokens.begin() + static_cast<size_t>(fisher_windows) * a.seq_len);
    fisher = std::make_unique<FisherProbe>(model, fw, fisher_windows, a.seq_len, ctx.comm, a.activation_mb << 20, !quiet);
  }
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
  d.score = std::string("output-error") + (want_kl ? ",kl-probe" : "") + (want_fisher ? ",fisher" : "") + (want_alpha ? ",alpha" : "");
  if (fisher) d.fisher_windows = fisher_windows, d.fisher_ctx = a.seq_len, d.fisher_loss = fisher->loss();
  d.probe_windows = want_kl ? probe_windows : 0;
  d.probe_ctx = want_kl ? probe_ctx : 0;
  d.probe_source = probe_source;
  Collector sink(d, probe.get(), fisher.get(), ctx.comm, !quiet);
  const QuantizeSummary sum = quantize_model(model, calib, opt, ctx.comm, &sink);
  d.quantized_params = sum.quantized_params;
  d.other_bytes = sum.other_bytes;
  for (const std::string& name : model.checkpoint().tensor_names())
    if (name.find("_proj.weight") != std::string::npos && name.rfind("model.layers.", 0) == 0) {
      const TensorInfo* t = model.checkpoint().find(name);
      d.full_bits += static_cast<double>(t->numel()) * dtype_size(t->dtype) * 8;
    }
  if (want_alpha) {  // Alpha-Hill of each scored layer's weight, at fp64 (the spectrum's own estimator)
    SpectrumOptions so;
    so.precisions = parse_precisions("fp64");
    so.filter = "^model\\.layers\\..*_proj$";
    so.progress = !quiet;
    d.alpha_k_frac = so.k_frac;
    const std::vector<LayerSpectrum> spec = run_spectrum(model, so, ctx.comm);
    for (const std::string& name : d.layers) {
      double v = NAN;
      for (const LayerSpectrum& l : spec)
        if (l.layer.name == name) v = l.per_precision.front().m.alpha_hill;
      QS_CHECK(std::isfinite(v), "alpha: no finite Alpha-Hill for layer " << name);
      d.alpha.push_back(v);
    }
  }
  prov.end_time = Provenance::now_utc();
  result("sensitivity: %zu layers x %zu candidates (%s), method %s, scores %s", d.layers.size(), d.palette.size(),
         palette_string(d.palette).c_str(), d.method.c_str(), d.score.c_str());
  for (size_t c = 0; c < d.palette.size(); ++c) {
    double mean = 0, mean_kl = 0, mean_f = 0;
    for (size_t l = 0; l < d.layers.size(); ++l) {
      mean += d.error(l, c);
      if (want_kl) mean_kl += d.kl_probe[l * d.palette.size() + c];
      if (want_fisher) mean_f += d.fisher[l * d.palette.size() + c];
    }
    std::string line = "  W" + std::to_string(d.palette[c].bits) + " g" + std::to_string(d.palette[c].group_size);
    char buf[160];
    std::snprintf(buf, sizeof buf, ": mean output error %.6g", mean / d.layers.size());
    line += buf;
    if (want_kl) std::snprintf(buf, sizeof buf, ", mean kl-probe %.6g", mean_kl / d.layers.size()), line += buf;
    if (want_fisher) std::snprintf(buf, sizeof buf, ", mean fisher %.6g", mean_f / d.layers.size()), line += buf;
    const SpearmanMatrix m = sensitivity_spearman(d, c);
    for (size_t i = 0; i < m.scores.size(); ++i)
      for (size_t j = i + 1; j < m.scores.size(); ++j) {
        std::snprintf(buf, sizeof buf, ", Spearman(%s, %s) %.4f", m.scores[i].c_str(), m.scores[j].c_str(), m.r[i][j]);
        line += buf;
      }
    result("%s", line.c_str());
  }
  if (ctx.comm.rank() == 0) {
    write_sensitivity_file(out_dir + "/sensitivity.h5", d, prov);
    write_text_atomic(out_dir + "/sensitivity.html", sensitivity_html(d));
    log_info("wrote %s/sensitivity.h5 and sensitivity.html (%.1f s)", out_dir.c_str(), sum.seconds);
  }
  return 0;
}

}  // namespace qsweep
