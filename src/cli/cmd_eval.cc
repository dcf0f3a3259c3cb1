// cmd_eval.cc — `qsweep eval`: perplexity of a model on one or several data files, windows shared
// across MPI ranks. Prints "perplexity: <value>" with 17 significant digits (the double
// round-trips) plus token counts and throughput (with several files, a "data FILE" line before
// each file's lines), and writes eval.h5 (results, per-window NLL, provenance; a group per dataset). A run
// that fails leaves no eval.h5 and no --output-dir it created.
#include <cstdio>

#include "cli/command.h"
#include "cli/output_dir.h"
#include "sweep/stage_args.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "eval/eval_data.h"
#include "eval/perplexity.h"
#include "eval/task_scoring.h"
#include "eval/tasks.h"
#include "io/h5_writer.h"
#include "io/provenance.h"
#include "io/quant_store.h"
#include "model/tokenizer.h"

namespace qsweep {

namespace po = boost::program_options;

int cmd_eval(const CommandContext& ctx) {
  std::string model_dir, data, out_dir, quantized_dir, tasks_list, tasks_format = "jsonl";
  EvalArgs a;
  int threads = 0;
  std::string device = "auto";
  std::string compute_dtype = "fp32";
  bool quiet = false;
  po::options_description desc("qsweep eval options");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model_dir)->required(), "model directory (config.json, *.safetensors, tokenizer.model)")
      ("data", po::value(&data), "evaluation data: text, JSON Lines (*.jsonl, a \"text\" per line) or pre-tokenized (first line '#qsweep-token-ids v1'); several files separated by commas, each evaluated alone")
      ("tasks", po::value(&tasks_list), "multiple-choice task files, separated by commas: accuracy (acc, acc_norm, llama.cpp's acc) of each; without --data only the tasks are scored")
      ("tasks-format", po::value(&tasks_format)->default_value("jsonl"), "task file format: jsonl ({\"context\", \"choices\", \"gold\"} per line) or hellaswag (llama.cpp's 6-line HellaSwag text)")
      ("output-dir", po::value(&out_dir)->default_value("."), "directory for eval.h5")
      ("threads", po::value(&threads)->default_value(0), "threads per rank (0: cores / ranks per node)")
      ("device", po::value(&device)->default_value("auto"), kDeviceHelp)
      ("compute-dtype", po::value(&compute_dtype)->default_value("fp32"), kComputeDtypeHelp)
      ("quantized", po::value(&quantized_dir), "output directory of qsweep quantize: evaluate its quantized weights")
      ("quiet,q", po::bool_switch(&quiet), "no progress output");
  add_eval_cell_options(desc, a);
  po::variables_map vm;
  if (!parse_args("eval", "qsweep eval --model DIR --data FILE[,FILE...] [--tasks FILE[,FILE...]] [options]", desc, ctx.args, vm)) return 0;
  log_set_quiet(quiet);

  Provenance prov = start_provenance(ctx, threads, device, compute_dtype);
  finish_eval_args(a);
  const Protocol protocol = parse_protocol(a.protocol);

  Timer t_load;
  LlamaWeights model(model_dir);
  const ModelConfig& cfg = model.config();
  log_info("model %s: %s, %d blocks, hidden %d, %d/%d heads, vocab %d, %.2fM parameters",
           model_dir.c_str(), cfg.model_type.c_str(), cfg.num_hidden_layers, cfg.hidden_size,
           cfg.num_attention_heads, cfg.num_key_value_heads, cfg.vocab_size,
           model.total_parameters() / 1e6);
  if (cfg.max_position_embeddings > 0 && a.ctx > cfg.max_position_embeddings)
    log_warn("--ctx %d exceeds the model's max_position_embeddings %d: positions beyond it were never trained",
             a.ctx, cfg.max_position_embeddings);
  QS_CHECK(!data.empty() || !tasks_list.empty(), "eval: give --data FILE[,FILE...], --tasks FILE[,FILE...] or both");
  DocumentOptions dopt;
  dopt.strip_one_trailing_newline = protocol == Protocol::LlamaCpp;
  dopt.write_cache = ctx.comm.rank() == 0;
  const std::vector<std::string> files = data.empty() ? std::vector<std::string>{} : split_data_list(data, "--data");
  const std::vector<std::string> names = dataset_names(files);
  // Every file is tokenized and windowed before any forward pass, so a bad file stops the run early.
  std::vector<EvalWindows> windows;
  for (const std::string& f : files) {
    const std::vector<int32_t> doc = load_document_tokens(f, model_dir, cfg.vocab_size, dopt);
    windows.push_back(make_windows(protocol, doc, model_special_tokens(model_dir, cfg.bos_token_id), a.ctx, f));
    log_info("data %s: %lld tokens (special tokens included), %lld windows of %d (%s protocol), %d rank(s) x %d thread(s); setup %.2f s",
             f.c_str(), static_cast<long long>(windows.back().n_document_tokens),
             static_cast<long long>(windows.back().n_windows), a.ctx, protocol_name(protocol), ctx.comm.size(),
             prov.threads_per_rank, t_load.seconds());
  }
  // Task files: read, checked and tokenized up front too.
  const TaskFormat tfmt = parse_task_format(tasks_format);
  const std::vector<std::string> task_files =
      tasks_list.empty() ? std::vector<std::string>{} : split_data_list(tasks_list, "--tasks");
  const std::vector<std::string> task_names = dataset_names(task_files);
  std::vector<std::vector<Task>> task_sets;
  std::vector<TaskSequences> task_seqs;
  if (!task_files.empty()) {
    std::unique_ptr<TextTokenizer> tok = load_model_tokenizer(model_dir);
    QS_CHECK(tok, model_dir << ": --tasks needs the model's tokenizer (tokenizer.json or tokenizer.model), found none");
    for (const std::string& f : task_files) {
      task_sets.push_back(read_task_file(f, tfmt));
      task_seqs.push_back(make_task_sequences(f, task_sets.back(), *tok, a.ctx));
      const TaskSequences& ts = task_seqs.back();
      int64_t n_tok = 0;
      for (const ChoiceSeq& sq : ts.seqs) n_tok += static_cast<int64_t>(sq.tokens.size());
      log_info("tasks %s: %zu tasks (%s format), %zu choices to score, %lld tokens", f.c_str(), task_sets.back().size(),
               tasks_format.c_str(), ts.seqs.size(), static_cast<long long>(n_tok));
      if (!ts.too_long.empty()) {
        std::string ids;
        for (size_t i = 0; i < ts.too_long.size() && i < 10; ++i)
          ids += (i ? ", " : "") + task_sets.back()[ts.too_long[i]].id + " (line " +
                 std::to_string(task_sets.back()[ts.too_long[i]].line) + ")";
        if (ts.too_long.size() > 10) ids += ", ...";
        log_warn("tasks %s: %zu task(s) longer than --ctx %d tokens are not scored: %s", f.c_str(), ts.too_long.size(),
                 a.ctx, ids.c_str());
      }
      QS_CHECK(!ts.scored.empty(), f << ": every task is longer than --ctx " << a.ctx << " tokens: nothing to score (raise --ctx)");
    }
  }

  std::unique_ptr<QuantizedModel> quantized;
  if (!quantized_dir.empty()) {
    quantized = std::make_unique<QuantizedModel>(quantized_dir + "/quantized.h5");
    log_info("quantized weights: %s (%s)", quantized->path().c_str(), quantized->describe().c_str());
  }
  // Created once the model, data and quantized weights have loaded (an error there leaves no
  // folder), before the long part (an unwritable folder is reported now, not after it); a later
  // failure removes it again while it is empty.
  OutputDir out_guard;
  if (ctx.comm.rank() == 0) out_guard.create(out_dir);
  EvalOptions opt = eval_options(a, !quiet);
  opt.quantized = quantized.get();
  // One evaluation per file, each exactly as if it were alone (no batch spans two files).
  std::vector<EvalResult> results;
  for (size_t i = 0; i < files.size(); ++i) {
    const EvalResult& r = results.emplace_back(evaluate_perplexity(model, windows[i], ctx.comm, opt));
    if (files.size() > 1) result("data %s", files[i].c_str());
    const double tps = r.tokens_processed / r.forward_seconds;
    result("perplexity: %.17g", r.perplexity);
    result("tokens processed: %lld", static_cast<long long>(r.tokens_processed));
    result("tokens scored: %lld", static_cast<long long>(r.tokens_scored));
    result("windows: %lld", static_cast<long long>(windows[i].n_windows));
    if (a.kl) {
      result("kl-divergence: %.17g (mean KL(full || quantized) per scored token, nats)", r.kl_mean);
      result("top-1 agreement: %.6f", r.top1_agree);
    }
    result("forward: %.3f s, %.0f tokens/s, %.1f GFLOP/s (block loading %.3f s)", r.forward_seconds, tps,
           r.flops / r.forward_seconds / 1e9, r.load_seconds);
    if (a.kl)
      for (const std::string& line : kl_stats_lines(r.kl_stats)) result("%s", line.c_str());
  }
  std::vector<TaskResult> task_results;
  for (size_t i = 0; i < task_files.size(); ++i) {
    const TaskResult& r = task_results.emplace_back(score_tasks(model, task_sets[i], task_seqs[i], a.ctx, ctx.comm, opt));
    result("tasks %s: %s", task_files[i].c_str(), task_result_line(r).c_str());
    result("tasks %s: %s", task_files[i].c_str(), task_stderr_line(r).c_str());
    if (!r.too_long.empty())
      result("tasks %s: %zu task(s) not scored: longer than --ctx %d tokens", task_files[i].c_str(), r.too_long.size(), a.ctx);
    result("tasks %s: forward %.3f s, %.0f tokens/s", task_files[i].c_str(), r.forward_seconds,
           r.tokens_processed / r.forward_seconds);
  }
  prov.end_time = Provenance::now_utc();

  if (ctx.comm.rank() == 0) {
    const std::string path = out_dir + "/eval.h5";
    EvalFileContents c;
    c.model = model_dir;
    c.quantized = quantized_dir;
    c.args = &a;
    c.provenance = &prov;
    for (size_t i = 0; i < files.size(); ++i)
      c.datasets.push_back({model_dir, files[i], quantized_dir, &a, &windows[i], &results[i], &prov});
    c.dataset_names = names;
    for (size_t i = 0; i < task_files.size(); ++i)
      c.tasks.push_back({task_files[i], tasks_format, task_names[i], &task_sets[i], &task_results[i]});
    write_eval_file(path, c);
    log_info("wrote %s", path.c_str());
  }
  return 0;
}

}  // namespace qsweep
