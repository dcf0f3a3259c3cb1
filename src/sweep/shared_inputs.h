// shared_inputs.h — what the cells of a sweep share and compute once per run: the tokenized texts
// (kept in shared/tokens-<key>.ids so a resumed run does not tokenize again), the tokenizer's
// special tokens, the evaluation windows per protocol and ctx, the calibration windows per
// (n-calib, seq-len, seed), and the full-precision statistics --no-propagate cells share in
// memory within --stats-cache-mb. Not collective: any rank may ask; world rank 0 writes the
// token cache (atomically).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dist/comm.h"
#include "eval/calib_windows.h"
#include "eval/tasks.h"
#include "eval/windows.h"
#include "model/llama_weights.h"
#include "model/tokenizer.h"
#include "quant/quantize_model.h"
#include "sweep/sweep_plan.h"

namespace qsweep {

class SharedInputs {
 public:
  SharedInputs(const SweepPlan& plan, const LlamaWeights& model, std::string out_dir, const Comm& world)
      : plan_(plan), model_(model), out_(std::move(out_dir)), world_(world) {}

  /// Tokenize without writing the token cache (run --dry-run checks).
  void set_dry_run(bool v) { dry_run_ = v; }
  /// Budget per rank for the shared full-precision statistics of --no-propagate cells.
  void set_stats_cache_mb(int64_t mb) { stats_cache_mb_ = mb; }

  /// A text's token ids (no special tokens), tokenized once per sweep directory; the cache is keyed
  /// by the text's and the tokenizer files' path, size and modification time.
  const std::vector<int32_t>& document(const std::string& path, bool strip_newline);
  /// The special tokens the model's tokenizer puts before a document (read once).
  const SpecialTokens& special();
  /// The windows of evaluation file `file` (an index into the plan's eval_files).
  const EvalWindows& windows(const EvalArgs& a, size_t file);
  const CalibWindows& calib(const QuantizeArgs& q);
  /// Task file `file` (an index into the plan's task_files), read and checked once.
  const std::vector<Task>& tasks(size_t file);
  /// Its choices tokenized, tasks longer than a.ctx set aside (once per ctx).
  const TaskSequences& task_sequences(const EvalArgs& a, size_t file);
  /// The full-precision statistics shared by --no-propagate cells of one calibration setting,
  /// held in memory while they fit the budget (per rank); nullptr otherwise.
  BlockStatsCache* stats_cache(const QuantizeArgs& q);

 private:
  const SweepPlan& plan_;
  const LlamaWeights& model_;
  std::string out_;
  Comm world_;
  bool dry_run_ = false;
  int64_t stats_cache_mb_ = 4096;
  bool cache_warned_ = false;
  std::map<std::pair<std::string, bool>, std::vector<int32_t>> docs_;
  std::optional<SpecialTokens> special_;
  std::map<std::string, EvalWindows> windows_;
  std::map<std::string, CalibWindows> calib_;
  std::map<size_t, std::vector<Task>> tasks_;
  std::map<std::string, TaskSequences> task_seqs_;
  std::unique_ptr<TextTokenizer> tokenizer_;
  std::map<std::string, std::unique_ptr<BlockStatsCache>> stats_caches_;
};

}  // namespace qsweep
