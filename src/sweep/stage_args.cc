// stage_args.cc — option definitions, checks and output attributes of the quantize and eval
// stages, shared by `qsweep quantize`, `qsweep eval` and `qsweep run`.
#include "sweep/stage_args.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/eval_data.h"
#include "core/json_file.h"
#include "io/h5_writer.h"
#include "io/provenance.h"
#include "model/tokenizer.h"

namespace qsweep {

namespace po = boost::program_options;

CalibWindows command_calib_windows(const std::string& model_dir, const std::string& calib_path, int vocab_size,
                                   int bos_id, int n_calib, int seq_len, uint64_t seed, const Comm& comm) {
  DocumentOptions dopt;
  dopt.write_cache = comm.rank() == 0;  // every rank reads the cache, one writes it
  const std::vector<int32_t> doc = load_document_tokens(calib_path, model_dir, vocab_size, dopt);
  QS_CHECK(!doc.empty(), calib_path << ": the calibration text is empty");
  return sample_calib_windows(doc, model_special_tokens(model_dir, bos_id).prefix, n_calib, seq_len, seed, calib_path);
}

void add_quantize_cell_options(po::options_description& d, QuantizeArgs& a) {
  QuantizeOptions& opt = a.opt;
  d.add_options()
      ("method", po::value(&a.method)->required(), "the method: rtn, awq, gptq or blockap (the options named after a method apply to it alone)")
      ("bits", po::value(&opt.grid.bits)->default_value(4), "bits per weight, 2..8")
      ("group-size", po::value(&opt.grid.group_size)->default_value(128), "input columns per group (-1: one group per row)")
      ("sym", po::bool_switch(&opt.grid.sym), "symmetric grid (default asymmetric with zero points)")
      ("n-calib", po::value(&a.n_calib)->default_value(128), "calibration windows")
      ("seq-len", po::value(&a.seq_len)->default_value(256), "tokens per calibration window")
      ("seed", po::value(&a.seed)->default_value(0), "seed of the window sampler (std::mt19937_64)")
      ("plan", po::value(&a.plan), "per-layer bits/group sizes (JSON written by qsweep recommend)")
      ("no-propagate", po::bool_switch(&a.no_propagate), "calibrate every block on full-precision inputs")
      ("calib-chunk", po::value(&opt.calib_chunk)->default_value(4), "sequences per statistics chunk (fixes the reduction order; not the rank count)")
      ("activation-budget-mb", po::value(&a.activation_mb)->default_value(1024), "calibration hidden states kept in memory per rank; beyond it they go to a scratch file (memory only: results are the same)")
      ("scratch-dir", po::value(&opt.scratch_dir)->default_value(""), "folder for that scratch file (default: the output directory)")
      ("sparsity-threshold", po::value(&opt.sparsity_threshold)->default_value(0.01), "sparsity: share of |x| below this x the input's RMS");
  for (const QuantMethodDef* m : quant_methods()) m->add_options(d, opt);  // each method's own options
  d.add_options()
      ("refine", po::value(&a.refine)->default_value("none"), "rounding refinement after the method: none, greedy (per row and group, single code moves that reduce |Σ x̄ (w − ŵ)|, x̄ the mean input with --outlier-percent of it masked) or greedy-exact (per row, moves that reduce (w − ŵ)ᵀ Σxxᵀ (w − ŵ)); lm_head is not refined")
      ("outlier-percent", po::value(&opt.outlier_percent)->default_value(0.05), "--refine greedy: share of input channels with the largest |x̄| left out of the mean-output error")
      ("refine-damp", po::value(&opt.refine_damp)->default_value(1.0), "--refine greedy-exact: minimise (w − ŵ)ᵀ (G + μ·diag G) (w − ŵ), G = Σxxᵀ: μ shrinks the calibration Gram's channel correlations, which the moves otherwise exploit to the full and which other text does not share (0: the exact Gram, as before this option)")
      ("quantize-lm-head", po::bool_switch(&a.lm_head), "also quantize lm_head (GPTQ with the final-norm inputs' Hessian; RTN for rtn and awq)");
}

void add_sensitivity_options(po::options_description& d, SensitivityArgs& a) {
  d.add_options()
      ("strategy", po::value(&a.strategy), "candidate palette: conservative (bits 4,6,8 x groups 64,128), adaptive (2,3,4,6,8 x 64,128,256; the default) or aggressive (2,3,4,8 x 128,256)")
      ("palette", po::value(&a.palette), "candidates BITS:GROUP,... instead of the strategy's (group -1: one per row)")
      ("score", po::value(&a.scores)->default_value("output-error"), "scores: output-error (from the calibration Gram, no forward pass), kl-probe (each layer x candidate quantized alone, KL on probe windows), fisher (½ Σ F (W − Q)², F the empirical Fisher diagonal from backward passes over calibration windows), alpha (the weight spectrum's Alpha-Hill, per layer), e.g. output-error,kl-probe,fisher")
      ("probe-data", po::value(&a.probe_data), "kl-probe: text whose first --probe-windows windows are the probes (default: windows of the calibration text drawn with another seed, disjoint from the calibration windows)")
      ("probe-windows", po::value(&a.probe_windows)->default_value(16), "kl-probe: number of probe windows")
      ("probe-ctx", po::value(&a.probe_ctx)->default_value(0), "kl-probe: tokens per probe window (0: --seq-len)")
      ("fisher-windows", po::value(&a.fisher_windows)->default_value(16), "fisher: the first N calibration windows give the gradients (one Fisher sample per window; at most --n-calib)");
}

void add_allocate_cell_options(po::options_description& d, AllocateRequest& q) {
  d.add_options()
      ("target-avg-bits", po::value(&q.avg_bits), "budget: bits per quantized weight (codes + fp16 scale + b-bit zero per group, as summary.csv's bits_per_weight)")
      ("target-size-mb", po::value(&q.size_mb), "budget: the whole stored model in MB (10^6 bytes: the quantized linears plus every other tensor as stored, as summary.csv's model_bytes)")
      ("strategy", po::value(&q.strategy), "candidates of a strategy (conservative, adaptive, aggressive; they must have been scored); without a budget, its natural target: 5.0, 4.0, 3.0 bits per weight")
      ("palette", po::value(&q.palette), "only these scored candidates (BITS:GROUP,...; default: the strategy's, else every scored one)")
      ("score", po::value(&q.score), "the score to minimise: kl-probe, fisher or output-error (default: kl-probe when it was computed)");
}

void finish_quantize_args(QuantizeArgs& a) {
  QuantizeOptions& opt = a.opt;
  opt.method = parse_method(a.method);
  for (const QuantMethodDef* m : quant_methods()) m->finish_options(opt);  // checks options of other methods too
  opt.quantize_lm_head = a.lm_head;
  opt.refine = parse_refine(a.refine);
  QS_CHECK(opt.outlier_percent >= 0 && opt.outlier_percent < 1, "--outlier-percent " << opt.outlier_percent << " must lie in [0, 1)");
  QS_CHECK(std::isfinite(opt.refine_damp) && opt.refine_damp >= 0, "--refine-damp " << opt.refine_damp << " must be a finite number >= 0");
  QS_CHECK(a.n_calib >= 1, "--n-calib " << a.n_calib << " must be at least 1");
  QS_CHECK(a.seq_len >= 2, "--seq-len " << a.seq_len << " must be at least 2");
  QS_CHECK(opt.calib_chunk >= 1, "--calib-chunk " << opt.calib_chunk << " must be at least 1");
  QS_CHECK(a.activation_mb >= 1, "--activation-budget-mb " << a.activation_mb << " must be positive");
  opt.activation_budget = a.activation_mb << 20;
  opt.propagate = !a.no_propagate;
}

std::map<std::string, GridSpec> read_plan(const std::string& path, GridSpec* dflt) {
  return plan_from_json(read_json_file(path, "the --plan file"), path, dflt);
}

std::map<std::string, GridSpec> plan_from_json(const nlohmann::json& j, const std::string& path, GridSpec* dflt) {
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

void write_quantize_attrs(H5Writer& w, const QuantizeArgs& a, const QuantizeSummary& sum) {
  const QuantizeOptions& opt = a.opt;
  w.attr("/", "method", std::string(method_name(opt.method)));
  w.attr("/", "bits", int64_t(opt.grid.bits));
  w.attr("/", "group_size", int64_t(opt.grid.group_size));
  w.attr("/", "sym", int64_t(opt.grid.sym));
  w.attr("/", "plan", a.plan);
  w.attr("/", "propagate", int64_t(opt.propagate));
  w.attr("/", "quantize_lm_head", int64_t(opt.quantize_lm_head));
  for (const QuantMethodDef* m : quant_methods()) m->write_attrs(w, opt);  // every method's settings
  w.attr("/", "refine", std::string(refine_name(opt.refine)));
  w.attr("/", "outlier_percent", opt.outlier_percent);
  w.attr("/", "refine_damp", opt.refine_damp);
  w.attr("/", "bits_per_weight", sum.bits_per_weight());
  w.attr("/", "model_bytes", sum.model_bytes());
  w.attr("/", "quantized_params", sum.quantized_params);
  w.attr("/", "seconds", sum.seconds);
}

void add_eval_cell_options(po::options_description& d, EvalArgs& a) {
  d.add_options()
      ("ctx", po::value(&a.ctx)->default_value(256), "window length in tokens")
      ("batch", po::value(&a.batch)->default_value(0), "windows per forward batch; 0: as many as make 4096 tokens (16 at --ctx 256). Results depend on it only in the last bits")
      ("protocol", po::value(&a.protocol)->default_value("gptq"), "gptq (GPTQ/AWQ papers) or llamacpp (llama-perplexity)")
      ("activation-budget-mb", po::value(&a.activation_mb)->default_value(1024), "activation memory per rank; more windows per pass over the blocks")
      ("kl-divergence", po::bool_switch(&a.kl), "with quantized weights: mean KL(full ‖ quantized) per token and top-1 agreement");
}

void finish_eval_args(const EvalArgs& a) {
  parse_protocol(a.protocol);
  QS_CHECK(a.ctx >= 4, "--ctx " << a.ctx << " is too small (expected at least 4)");
  QS_CHECK(a.batch >= 0, "--batch " << a.batch << " must be at least 1 (or 0: automatic)");
  QS_CHECK(a.activation_mb >= 1, "--activation-budget-mb must be positive");
}

EvalOptions eval_options(const EvalArgs& a, bool progress) {
  EvalOptions opt;
  opt.kl_divergence = a.kl;
  opt.batch = a.batch;
  opt.activation_budget = a.activation_mb << 20;
  opt.progress = progress;
  return opt;
}

namespace {
// One dataset's results under `g` ("/" or "/datasets/<name>"): its data file, counts, perplexity,
// KL and the per-window sums.
void write_eval_results(H5Writer& w, const std::string& g, const EvalRecord& rec) {
  const EvalResult& r = *rec.result;
  const EvalWindows& windows = *rec.windows;
  const std::string sub = g == "/" ? "/" : g + "/";
  w.attr(g, "data", rec.data);
  w.attr(g, "perplexity", r.perplexity);
  w.attr(g, "mean_nll", r.mean_nll);
  w.attr(g, "tokens_processed", r.tokens_processed);
  w.attr(g, "tokens_scored", r.tokens_scored);
  w.attr(g, "n_windows", windows.n_windows);
  w.attr(g, "n_document_tokens", windows.n_document_tokens);
  if (rec.args->kl) {
    w.attr(g, "kl_divergence", r.kl_mean);
    w.attr(g, "top1_agreement", r.top1_agree);
    // llama.cpp's statistics (eval/kl_stats.h), under <g>/kl_stats
    const KlStats& k = r.kl_stats;
    const std::string ks = sub + "kl_stats";
    w.group(ks);
    w.attr(ks, "tokens", k.n);
    w.attr(ks, "kld_mean", k.kl_mean);
    w.attr(ks, "kld_mean_uncertainty", k.kl_unc);
    for (int i = 0; i < 11; ++i) w.attr(ks, std::string("kld_") + kKlPercentileNames[i], k.kl_percentiles[i]);
    w.attr(ks, "same_top", k.same_top);
    w.attr(ks, "same_top_uncertainty", k.same_top_unc);
    w.attr(ks, "delta_p_mean", k.dp_mean);
    w.attr(ks, "delta_p_mean_uncertainty", k.dp_unc);
    w.attr(ks, "delta_p_rms", k.dp_rms);
    w.attr(ks, "delta_p_rms_uncertainty", k.dp_rms_unc);
    w.attr(ks, "ln_ppl_ratio", k.ln_ppl_ratio);
    w.attr(ks, "ln_ppl_ratio_uncertainty", k.ln_ppl_ratio_unc);
  }
  w.attr(g, "forward_seconds", r.forward_seconds);
  w.attr(g, "tokens_per_second", r.tokens_processed / r.forward_seconds);
  w.group(sub + "windows");
  w.dataset(sub + "windows/nll_sum", r.window_nll);
  w.dataset(sub + "windows/scored", r.window_count);
  if (rec.args->kl) {
    w.dataset(sub + "windows/kl_sum", r.window_kl);
    w.dataset(sub + "windows/top1_agree", r.window_top1);
  }
}
}  // namespace

void write_eval_file(const std::string& path, const EvalRecord& rec) {
  write_eval_file(path, std::vector<EvalRecord>{rec}, {dataset_name(rec.data)});
}

void write_eval_file(const std::string& path, const std::vector<EvalRecord>& recs, const std::vector<std::string>& names) {
  QS_ASSERT(!recs.empty(), "write_eval_file: no dataset");
  EvalFileContents c;
  c.model = recs.front().model;
  c.quantized = recs.front().quantized;
  c.args = recs.front().args;
  c.provenance = recs.front().provenance;
  c.datasets = recs;
  c.dataset_names = names;
  write_eval_file(path, c);
}

namespace {
void write_task_results(H5Writer& w, const TaskRecord& t) {
  const std::string g = "/tasks/" + t.name;
  const TaskResult& r = *t.result;
  w.group(g);
  w.attr(g, "file", t.file);
  w.attr(g, "format", t.format);
  w.attr(g, "n", r.n);
  w.attr(g, "n_too_long", static_cast<int64_t>(r.too_long.size()));
  w.attr(g, "acc", r.acc);
  w.attr(g, "acc_stderr", r.acc_se);
  w.attr(g, "acc_norm", r.acc_norm);
  w.attr(g, "acc_norm_stderr", r.acc_norm_se);
  w.attr(g, "acc_llamacpp", r.acc_llamacpp);
  w.attr(g, "acc_llamacpp_stderr", r.acc_llamacpp_se);
  w.attr(g, "chance", r.chance);
  w.attr(g, "p_vs_chance", r.p_vs_chance);
  w.attr(g, "tokens_processed", r.tokens_processed);
  w.attr(g, "forward_seconds", r.forward_seconds);
  std::vector<std::string> ids;
  for (int i : r.task_index) ids.push_back((*t.tasks)[i].id);
  if (!ids.empty()) w.dataset(g + "/id", ids);
  w.dataset(g + "/task_index", std::vector<int32_t>(r.task_index.begin(), r.task_index.end()));
  w.dataset(g + "/gold", std::vector<int32_t>(r.gold.begin(), r.gold.end()));
  w.dataset(g + "/pred", std::vector<int32_t>(r.pred.begin(), r.pred.end()));
  w.dataset(g + "/pred_norm", std::vector<int32_t>(r.pred_norm.begin(), r.pred_norm.end()));
  w.dataset(g + "/pred_llamacpp", std::vector<int32_t>(r.pred_llamacpp.begin(), r.pred_llamacpp.end()));
  w.dataset(g + "/choice_logprob", r.choice_logprob);
  w.dataset(g + "/choice_tokens", r.choice_tokens);
  w.dataset(g + "/choice_llamacpp", r.choice_llamacpp);
  w.dataset(g + "/choice_chars", r.choice_chars);
  w.dataset(g + "/choice_offset", r.choice_offset);
  w.dataset(g + "/too_long", std::vector<int32_t>(r.too_long.begin(), r.too_long.end()));
}
}  // namespace

void write_eval_file(const std::string& path, const EvalFileContents& c) {
  QS_ASSERT(c.datasets.size() == c.dataset_names.size(), "write_eval_file: one name per dataset");
  QS_ASSERT(!c.datasets.empty() || !c.tasks.empty(), "write_eval_file: nothing to write");
  const EvalArgs& a = *c.args;
  H5Writer w(path);
  w.attr("/", "format", std::string("qsweep-eval"));
  w.attr("/", "format_version", int64_t(1));
  w.attr("/", "model", c.model);
  if (!c.datasets.empty()) w.attr("/", "protocol", std::string(protocol_name(c.datasets.front().windows->protocol)));
  w.attr("/", "ctx", int64_t(a.ctx));
  w.attr("/", "batch", int64_t(eval_batch_windows(a.batch, a.ctx)));
  w.attr("/", "quantized", c.quantized);
  if (!c.datasets.empty()) {
    std::string list;
    for (const std::string& n : c.dataset_names) list += (list.empty() ? "" : ",") + n;
    w.attr("/", "datasets", list);
    write_eval_results(w, "/", c.datasets.front());  // the root keeps the first dataset's results, for one-file readers
    w.group("/datasets");
    for (size_t i = 0; i < c.datasets.size(); ++i) {
      w.group("/datasets/" + c.dataset_names[i]);
      write_eval_results(w, "/datasets/" + c.dataset_names[i], c.datasets[i]);
    }
  }
  if (!c.tasks.empty()) {
    std::string list;
    for (const TaskRecord& t : c.tasks) list += (list.empty() ? "" : ",") + t.name;
    w.attr("/", "task_sets", list);
    w.group("/tasks");
    for (const TaskRecord& t : c.tasks) write_task_results(w, t);
  }
  c.provenance->write(w);
  w.commit();
}

}  // namespace qsweep
