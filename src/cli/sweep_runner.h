// sweep_runner.h — the sweep runner behind `qsweep run JOB.ini`. Reads and validates the whole
// grid before any work, computes what cells share once (tokenized texts, spectrum, full-precision
// statistics, the full-precision evaluation and the hidden states KL-divergence compares against),
// then runs the cells — concurrently on disjoint groups of --ranks-per-cell ranks, each cell using
// its group for data and layer parallelism — and assembles sweep.h5 and summary.csv.
//
// Faults: a cell's cell.h5 (written last, atomically) marks it complete; --resume skips complete
// cells and redoes the others, so a run killed at any moment resumes to the same results. A cell
// that fails consistently on its group (bad numbers, a non-finite result) is recorded as failed
// and the others go on; the run exits 1 naming them. SIGTERM/SIGUSR1 abandon the current cell at
// the next block boundary of its quantization or evaluation, and the run exits 75.
// Inputs: DIR/inputs.json fingerprints the model folder and texts; --resume refuses changed inputs
// (--refresh-shared recomputes the shared stages and redoes every cell). A new sweep that fails
// before any cell starts removes what it created.
//
// sweep_runner.cc holds the construction, the checks, the directory and the shared stages;
// sweep_cell.cc the work of one cell and of one full-precision baseline.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cli/command.h"
#include "dist/comm.h"
#include "eval/perplexity.h"
#include "eval/task_scoring.h"
#include "eval/windows.h"
#include "io/provenance.h"
#include "io/reference_hidden.h"
#include "model/llama_weights.h"
#include "sweep/input_fingerprint.h"
#include "sweep/shared_inputs.h"
#include "sweep/stage_args.h"
#include "sweep/sweep_plan.h"

namespace qsweep {

// A duration for progress lines: "12.3 s", "4m05s", "2h03m".
std::string fmt_duration(double s);

class SweepRunner {
 public:
  SweepRunner(const CommandContext& ctx, SweepPlan plan, std::string out, int ranks_per_cell, bool quiet,
              Provenance prov);

  // Checks that need the model: bits and group sizes against every layer's width, plans.
  void validate();

  void list_cells() const;

  // --dry-run: every text the grid reads yields what its cells need — at least one evaluation
  // window at each cell's ctx and protocol, enough calibration tokens for each n-calib x seq-len —
  // so a run does not fail in its shared stages after the directory was made. Writes nothing.
  void check_texts();

  // Creates the directory and its manifest; refuses to mix sweeps (the model and data must be the
  // same as the run being resumed) or to overwrite one without --resume; compares the inputs'
  // fingerprints with those recorded when the sweep started (see input_fingerprint.h).
  void prepare_dir(bool resume, bool refresh_shared);

  // On --resume (rank 0): the inputs must be those the sweep started from. A changed text or model
  // is refused, or with --refresh-shared the shared stages are dropped and every cell is redone;
  // a changed mtime with the same size and hash is only a warning.
  void check_inputs(const InputFingerprint& now, bool refresh_shared);

  // A new sweep that failed before any cell started leaves nothing behind (rank 0; the files are
  // this run's own: the manifest, the fingerprints, shared/ and the empty cells/).
  void remove_new_sweep();

  bool mine_in_task(const SweepCell& c) const { return array_count_ <= 1 || c.index % array_count_ == array_task_; }
  bool mine(const SweepCell& c) const { return mine_in_task(c) && c.index % n_groups_ == group_index_; }

  // Rank 0's view of a file-system fact, on every rank of `c` (ranks on other nodes may see a
  // shared file system a moment later; a collective must not depend on that).
  static bool agreed(const Comm& c, bool v);

  int run();

 private:
  enum class Outcome { Complete, Failed, Interrupted };

  void cell_log(const SweepCell& c, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

  int call_command(CommandFn fn, std::vector<std::string> args, const std::string& dir);

  // Spectrum, statistics and full-precision baselines, on all ranks; skipped when present. Every
  // decision taken from the files is rank 0's, broadcast, so all ranks enter the same collectives.
  void run_shared();

  // The job's multiple-choice task files, scored with `opt` (its quantized weights, if any).
  std::vector<TaskResult> score_task_sets(const EvalArgs& a, const Comm& comm, const EvalOptions& opt);

  EvalFileContents eval_contents(const std::vector<EvalRecord>& recs, const std::string& quantized,
                                 const std::vector<TaskResult>& tasks);

  ReferenceShape reference_shape(const EvalWindows& w) const;

  // The full-precision final hidden states of evaluation file f (for KL): the first file keeps
  // the name it had before several files were possible, so older sweeps resume.
  std::string hidden_file(const std::string& bd, size_t f) const;

  void run_baseline(const BaselineSpec& b);

  Outcome run_cell(const SweepCell& c);

  const CommandContext& ctx_;
  Comm world_, group_;
  SweepPlan plan_;
  std::string out_;
  bool quiet_;
  Provenance prov_;
  LlamaWeights model_;
  int rpc_ = 1, n_groups_ = 1, group_index_ = 0;
  int array_task_ = 0, array_count_ = 1;
  SharedInputs shared_{plan_, model_, out_, world_};  // after the members it refers to
  bool fresh_ = false;                // this run created the sweep (no manifest before)
  bool fresh_dir_ = false;            // ... and its directory

 public:
  void set_stats_cache_mb(int64_t mb) { shared_.set_stats_cache_mb(mb); }

};

}  // namespace qsweep
