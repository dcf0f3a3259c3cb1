// cmd_run.cc — `qsweep run JOB.ini`: the sweep runner. Reads and validates the whole grid before
// any work, computes what cells share once (tokenized texts, spectrum, full-precision statistics,
// the full-precision evaluation and the hidden states KL-divergence compares against), then runs
// the cells — concurrently on disjoint groups of --ranks-per-cell ranks, each cell using its
// group for data and layer parallelism — and assembles sweep.h5 and summary.csv.
//
// Faults: a cell's cell.h5 (written last, atomically) marks it complete; --resume skips complete
// cells and redoes the others, so a run killed at any moment resumes to the same results. A cell
// that fails consistently on its group (bad numbers, a non-finite result) is recorded as failed
// and the others go on; the run exits 1 naming them. SIGTERM/SIGUSR1 abandon the current cell at
// the next block boundary of its quantization or evaluation, and the run exits 75.
// Inputs: DIR/inputs.json fingerprints the model folder and texts; --resume refuses changed inputs
// (--refresh-shared recomputes the shared stages and redoes every cell). A new sweep that fails
// before any cell starts removes what it created.
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "dist/stop_signal.h"
#include "io/provenance.h"
#include "io/quant_store.h"
#include "io/h5_reader.h"
#include "io/reference_hidden.h"
#include "model/tokenizer.h"
#include "io/sensitivity_file.h"
#include "quant/palette.h"
#include "sweep/allocation_stage.h"
#include "sweep/input_fingerprint.h"
#include "sweep/report_render.h"
#include "sweep/shared_inputs.h"
#include "sweep/sweep_results.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {

// Under Slurm, every task must be a rank of one MPI world: `srun` without PMIx (or a plain
// `srun qsweep`) starts N singleton worlds that would each run the whole sweep as rank 0.
void check_slurm_world(const Comm& world) {
  if (!std::getenv("SLURM_JOB_ID")) return;
  const char* step = std::getenv("SLURM_STEP_ID") ? std::getenv("SLURM_STEP_NUM_TASKS") : nullptr;
  const char* n = step ? step : std::getenv("SLURM_NTASKS");
  if (!n) return;
  const int tasks = std::atoi(n);
  QS_CHECK(tasks == world.size(),
           "Slurm started " << tasks << " tasks but this MPI world has " << world.size()
                            << " rank(s): the world must span every task, or each world would run the whole sweep as "
                               "rank 0 (launch with `srun --mpi=pmix qsweep ...`, or `mpirun qsweep ...` without -n "
                               "inside the allocation)");
}

std::string host_name() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

std::string fmt_duration(double s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof(buf), "%.1f s", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof(buf), "%dm%02ds", int(s) / 60, int(s) % 60);
  else
    std::snprintf(buf, sizeof(buf), "%dh%02dm", int(s) / 3600, int(s) % 3600 / 60);
  return buf;
}

// Test hook for the failed-cell path: QSWEEP_TEST_POISON_CELL=<cell id> writes a NaN into one
// scale of that cell's quantized.h5, so its evaluation really produces a non-finite result.
void maybe_poison(const std::string& id, const std::string& quantized_path) {
  const char* target = std::getenv("QSWEEP_TEST_POISON_CELL");
  if (!target || id != target) return;
  hid_t f = H5Fopen(quantized_path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  QS_CHECK(f >= 0, quantized_path << ": cannot open to poison");
  hid_t d = H5Dopen2(f, "/layers/model.layers.0.self_attn.q_proj/scales", H5P_DEFAULT);
  QS_CHECK(d >= 0, quantized_path << ": no q_proj scales to poison");
  hid_t space = H5Dget_space(d);
  hsize_t start = 0, count = 1;
  H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nullptr, &count, nullptr);
  hid_t mem = H5Screate_simple(1, &count, nullptr);
  const float nan = std::nanf("");
  H5Dwrite(d, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, &nan);
  H5Sclose(mem);
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
}

class SweepRunner {
 public:
  SweepRunner(const CommandContext& ctx, SweepPlan plan, std::string out, int ranks_per_cell, bool quiet,
              Provenance prov)
      : ctx_(ctx), world_(ctx.comm), plan_(std::move(plan)), out_(std::move(out)), quiet_(quiet),
        prov_(std::move(prov)), model_(plan_.model) {
    rpc_ = ranks_per_cell > 0 ? ranks_per_cell : world_.size();
    QS_CHECK(rpc_ <= world_.size() && world_.size() % rpc_ == 0,
             "--ranks-per-cell " << rpc_ << " must divide the number of ranks (" << world_.size() << ")");
    n_groups_ = world_.size() / rpc_;
    group_index_ = world_.rank() / rpc_;
    group_ = n_groups_ == 1 ? world_ : world_.split(group_index_);
    if (const char* id = std::getenv("SLURM_ARRAY_TASK_ID")) {
      const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
      const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
      array_count_ = count ? std::atoi(count) : 1;
      array_task_ = std::atoi(id) - (min ? std::atoi(min) : 0);
    }
  }

  // Checks that need the model: bits and group sizes against every layer's width, plans.
  void validate() {
    const ModelSizes sizes = model_sizes(model_);
    for (auto& c : plan_.cells) {
      try {
        QuantizeOptions opt = c.quantize.opt;
        if (!c.quantize.plan.empty()) opt.plan = read_plan(c.quantize.plan, &opt.grid);
        validate_quantize_options(model_, opt);
        if (c.allocated) {
          check_budget(sizes, c.alloc_palette, c.allocate);
          for (const GridSpec& g : c.alloc_palette) {
            opt.grid = g;
            validate_quantize_options(model_, opt);
          }
        }
      } catch (const Error& e) {
        QS_THROW(plan_.job.path << ": cell " << (c.label.empty() ? c.id : c.label) << ": " << e.what());
      }
    }
  }

  void list_cells() const {
    if (world_.rank() != 0) return;
    std::printf("%s: %zu cell(s)", plan_.job.path.c_str(), plan_.cells.size());
    for (const auto& a : plan_.axes) std::printf(" x %s.%s{%zu}", a.section.c_str(), a.key.c_str(), a.values.size());
    std::printf("\nshared: %s%s%zu sensitivity run(s), %zu full-precision evaluation(s)\n", plan_.spectrum ? "spectrum, " : "",
                plan_.calibrate ? "statistics, " : "", plan_.sensitivities.size(), plan_.baselines.size());
    for (const auto& s : plan_.sensitivities)
      std::printf("  sensitivity %s: candidates %s\n", s.key.c_str(), palette_string(s.palette).c_str());
    for (const auto& c : plan_.cells) std::printf("  %4d  %s  %s\n", c.index, c.id.c_str(), c.label.c_str());
  }

  // --dry-run: every text the grid reads yields what its cells need — at least one evaluation
  // window at each cell's ctx and protocol, enough calibration tokens for each n-calib x seq-len —
  // so a run does not fail in its shared stages after the directory was made. Writes nothing.
  void check_texts() {
    shared_.set_dry_run(true);
    for (size_t f = 0; f < plan_.eval_files.size(); ++f)
      for (const auto& b : plan_.baselines) shared_.windows(b.eval, f);
    for (size_t f = 0; f < plan_.task_files.size(); ++f)
      for (const auto& b : plan_.baselines) shared_.task_sequences(b.eval, f);
    for (const auto& c : plan_.cells) {
      shared_.calib(c.quantize);
      for (size_t f = 0; f < plan_.eval_files.size() && !c.baseline.empty(); ++f) shared_.windows(c.eval, f);
    }
  }

  // Creates the directory and its manifest; refuses to mix sweeps (the model and data must be the
  // same as the run being resumed) or to overwrite one without --resume; compares the inputs'
  // fingerprints with those recorded when the sweep started (see input_fingerprint.h).
  void prepare_dir(bool resume, bool refresh_shared) {
    std::string error;
    int fresh = 0;
    if (world_.rank() == 0) try {
      fresh = !has_manifest(out_);
      if (!fresh) {
        const Manifest old = read_manifest(out_);
        QS_CHECK(resume, out_ << " already holds a sweep (" << survey_sweep(out_, old).complete << " of "
                              << old.cells.size() << " cells complete): pass --resume to continue it, or choose another --output-dir");
        QS_CHECK(old.tasks == plan_.tasks && old.tasks_format == (plan_.tasks.empty() ? "" : plan_.tasks_format),
                 out_ << ": was started with tasks '" << old.tasks << "' (" << old.tasks_format << "); this job has '"
                      << plan_.tasks << "': completed cells were not scored on these tasks (use another --output-dir)");
        QS_CHECK(old.model == plan_.model && old.calib == plan_.calib && old.eval_data == plan_.eval_data,
                 out_ << ": was started with model " << old.model << ", calib " << old.calib << ", eval " << old.eval_data
                      << "; this job has " << plan_.model << ", " << plan_.calib << ", " << plan_.eval_data
                      << " (use another --output-dir)");
        int dropped = 0;
        for (const auto& oc : old.cells) {
          bool kept = false;
          for (const auto& c : plan_.cells) kept |= c.id == oc.id;
          dropped += !kept;
        }
        if (dropped)
          log_warn("%d cell(s) of the earlier run are not in this job's grid: kept in %s/cells, left out of sweep.h5",
                   dropped, out_.c_str());
      }
      const InputFingerprint inputs = fingerprint_inputs(plan_.model, plan_.calib, plan_.eval_files, plan_.task_files);
      if (!fresh) check_inputs(inputs, refresh_shared);
      fresh_dir_ = fresh && !std::filesystem::exists(out_);
      make_dirs(out_ + "/cells");
      make_dirs(out_ + "/shared");
      write_manifest(out_, manifest_of(plan_));
      write_fingerprint(out_, inputs);
      bool all_complete = true;
      for (const auto& c : plan_.cells) all_complete &= read_cell_status(out_, c.id).state == CellState::Complete;
      if (array_count_ <= 1) {  // no other task writes here
        if (!all_complete) {  // outdated assembled results must not look current
          std::remove((out_ + "/sweep.h5").c_str());
          std::remove((out_ + "/summary.csv").c_str());
        }
        if (const int n = remove_stale_temporaries(out_)) log_info("removed %d temporary file(s) of an interrupted run", n);
      }
      log_info("sweep %s: %zu cells, %d group(s) of %d rank(s)%s -> %s", plan_.job.path.c_str(), plan_.cells.size(),
               n_groups_, rpc_, array_count_ > 1 ? (" (array task " + std::to_string(array_task_) + " of " + std::to_string(array_count_) + ")").c_str() : "",
               out_.c_str());
    } catch (const Error& e) {
      error = e.what();
    }
    world_.agree_or_throw(error);
    world_.bcast(&fresh, sizeof(fresh), 0);
    fresh_ = fresh != 0;
    world_.barrier();
  }

  // On --resume (rank 0): the inputs must be those the sweep started from. A changed text or model
  // is refused, or with --refresh-shared the shared stages are dropped and every cell is redone;
  // a changed mtime with the same size and hash is only a warning.
  void check_inputs(const InputFingerprint& now, bool refresh_shared) {
    if (!has_fingerprint(out_)) {
      log_warn("%s records no input fingerprints (started by an older qsweep): recording them now; changes made "
               "before this run cannot be detected", out_.c_str());
    } else {
      const FingerprintChanges ch = compare_fingerprints(read_fingerprint(out_), now);
      std::string list;
      for (const auto& c : ch.changed) list += "\n  " + c;
      if (!ch.changed.empty() && !refresh_shared)
        QS_THROW(out_ << ": the inputs changed since this sweep started:" << list
                      << "\nits shared stages (baselines, reference hidden states, statistics) and cells were computed "
                         "from the old ones: pass --resume --refresh-shared to recompute them and redo every cell, or "
                         "choose another --output-dir");
      if (!ch.changed.empty()) log_warn("the inputs changed since this sweep started:%s", list.c_str());
      for (const auto& t : ch.touched)
        log_warn("%s: modification time changed, content (size, sha256) unchanged: reusing the sweep's results", t.c_str());
    }
    if (refresh_shared) {
      log_warn("--refresh-shared: recomputing the shared stages and redoing every cell of %s", out_.c_str());
      std::error_code ec;
      std::filesystem::remove_all(out_ + "/shared", ec);
      QS_CHECK(!ec, out_ << "/shared: cannot be removed (" << ec.message() << ")");
      if (std::filesystem::is_directory(out_ + "/cells"))
        for (const auto& e : std::filesystem::directory_iterator(out_ + "/cells"))
          if (e.is_directory()) clear_cell_dir(e.path().string());
      std::remove((out_ + "/sweep.h5").c_str());
      std::remove((out_ + "/summary.csv").c_str());
    }
  }

  // A new sweep that failed before any cell started leaves nothing behind (rank 0; the files are
  // this run's own: the manifest, the fingerprints, shared/ and the empty cells/).
  void remove_new_sweep() {
    if (world_.rank() != 0 || !fresh_) return;
    std::error_code ec;
    if (fresh_dir_) {
      std::filesystem::remove_all(out_, ec);
      return;
    }
    for (const char* n : {"/shared", "/cells", "/sweep.json", "/inputs.json"}) std::filesystem::remove_all(out_ + n, ec);
  }

  bool mine_in_task(const SweepCell& c) const { return array_count_ <= 1 || c.index % array_count_ == array_task_; }
  bool mine(const SweepCell& c) const { return mine_in_task(c) && c.index % n_groups_ == group_index_; }

  // Rank 0's view of a file-system fact, on every rank of `c` (ranks on other nodes may see a
  // shared file system a moment later; a collective must not depend on that).
  static bool agreed(const Comm& c, bool v) {
    int x = v;
    c.bcast(&x, sizeof(x), 0);
    return x != 0;
  }

  int run() {
    install_stop_handlers();
    Timer total;
    try {
      run_shared();
    } catch (const Error&) {
      remove_new_sweep();
      throw;
    } catch (const Interrupted&) {  // during the full-precision evaluation: nothing partial kept
      log_warn("stopped by signal %d during the shared stages; resume with --resume (exit code %d: requeue)",
               stop_signal_number(), kExitRequeue);
      return kExitRequeue;
    }
    int done = 0, todo = 0;
    for (const auto& c : plan_.cells)
      if (mine(c)) ++todo;
    bool interrupted = stop_requested(group_);
    Timer cells_timer;
    int ran = 0;
    for (const auto& c : plan_.cells) {
      if (interrupted || !mine(c)) continue;
      if (agreed(group_, read_cell_status(out_, c.id).state == CellState::Complete)) {
        ++done;
        cell_log(c, "already complete, skipped");
        continue;
      }
      if (stop_requested(group_)) {
        interrupted = true;
        break;
      }
      const Outcome o = run_cell(c);
      if (o == Outcome::Interrupted) {
        interrupted = true;
        break;
      }
      ++done;
      ++ran;
      if (group_.rank() == 0 && !quiet_ && todo > done) {
        const double eta = cells_timer.seconds() / ran * (todo - done);
        std::fprintf(stderr, "qsweep: sweep group %d/%d: %d/%d cells done, %s elapsed, ETA %s\n",
                     group_index_ + 1, n_groups_, done, todo, fmt_duration(total.seconds()).c_str(),
                     fmt_duration(eta).c_str());
      }
    }
    world_.barrier();
    const bool any_interrupted = world_.allreduce_max(interrupted ? 1.0 : 0.0) > 0;
    const int sig = static_cast<int>(world_.allreduce_max(static_cast<double>(stop_signal_number())));
    if (any_interrupted) {
      if (world_.rank() == 0) {
        const MergeReport r = survey_sweep(out_, read_manifest(out_));
        log_warn("stopped by signal %d: %d of %zu cells complete, %d failed, %d left; resume with "
                 "qsweep run %s --output-dir %s --resume (exit code %d: requeue)",
                 sig, r.complete, plan_.cells.size(), r.failed, r.pending,
                 plan_.job.path.c_str(), out_.c_str(), kExitRequeue);
      }
      return kExitRequeue;
    }
    int rc = 0;
    if (world_.rank() == 0) {
      const MergeReport r = survey_sweep(out_, read_manifest(out_));
      if (r.pending == 0) {
        Provenance p = prov_;
        p.end_time = Provenance::now_utc();
        merge_sweep(out_, p);
        write_report(out_);
        log_info("wrote %s/sweep.h5, summary.csv, report.html and report.md (%s)", out_.c_str(),
                 fmt_duration(total.seconds()).c_str());
      } else {
        log_info("%d cells belong to other array tasks and are not finished; the last task to finish "
                 "merges (or run qsweep merge %s)", r.pending, out_.c_str());
      }
      print_sweep_status(out_, false);
      if (r.failed > 0) {
        std::string list;
        for (const auto& f : r.failed_cells) list += "\n  " + f;
        std::fprintf(stderr, "qsweep: error: %d cell(s) failed:%s\n", r.failed, list.c_str());
        rc = 1;
      }
    }
    world_.bcast(&rc, sizeof(rc), 0);
    return rc;
  }

 private:
  enum class Outcome { Complete, Failed, Interrupted };

  void cell_log(const SweepCell& c, const char* fmt, ...) __attribute__((format(printf, 3, 4))) {
    if (group_.rank() != 0 || quiet_) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "qsweep: cell %d/%zu %s [%s]: %s\n", c.index + 1, plan_.cells.size(), c.id.c_str(),
                 c.label.empty() ? "no grid axes" : c.label.c_str(), msg);
  }

  int call_command(CommandFn fn, std::vector<std::string> args, const std::string& dir) {
    args.insert(args.begin(), {"--model", plan_.model, "--output-dir", dir, "--threads",
                               std::to_string(prov_.threads_per_rank)});
    if (quiet_) args.push_back("--quiet");
    CommandContext sub{args, ctx_.command_line, world_};
    const int rc = fn(sub);
    log_set_quiet(quiet_);
    return rc;
  }

  // Spectrum, statistics and full-precision baselines, on all ranks; skipped when present. Every
  // decision taken from the files is rank 0's, broadcast, so all ranks enter the same collectives.
  void run_shared() {
    const bool lead_task = array_count_ <= 1 || array_task_ == 0;
    bool cells_left = false;
    for (const auto& c : plan_.cells)
      cells_left |= mine_in_task(c) && read_cell_status(out_, c.id).state != CellState::Complete;
    if (agreed(world_, cells_left)) {  // tokenize now: errors surface before any cell, timings stay per cell
      if (!plan_.calib.empty()) shared_.document(plan_.calib, false);
    }
    if (plan_.spectrum && lead_task && agreed(world_, !file_exists(out_ + "/shared/spectrum/results.h5"))) {
      log_info("shared: weight spectrum -> %s/shared/spectrum", out_.c_str());
      QS_CHECK(call_command(cmd_spectrum, plan_.spectrum_args, out_ + "/shared/spectrum") == 0,
               "the shared spectrum stage failed");
    }
    if (plan_.calibrate && lead_task && agreed(world_, !file_exists(out_ + "/shared/calibrate/stats.h5"))) {
      log_info("shared: full-precision activation statistics -> %s/shared/calibrate", out_.c_str());
      std::vector<std::string> args = plan_.calibrate_args;
      args.insert(args.begin(), {"--calib", plan_.calib});
      QS_CHECK(call_command(cmd_calibrate, args, out_ + "/shared/calibrate") == 0,
               "the shared statistics stage failed");
    }
    for (const auto& sp : plan_.sensitivities) {  // per-layer scores [allocate] cells share
      bool needed = false;
      for (const auto& c : plan_.cells)
        needed |= c.sensitivity == sp.key && mine_in_task(c) && read_cell_status(out_, c.id).state != CellState::Complete;
      const std::string sd = sensitivity_dir(out_, sp.key);
      if (!agreed(world_, needed && !(world_.rank() == 0 && sensitivity_covers(sd, sp)))) continue;
      log_info("shared: sensitivity %s (candidates %s) -> %s", sp.key.c_str(), palette_string(sp.palette).c_str(), sd.c_str());
      QS_CHECK(call_command(cmd_sensitivity, sensitivity_command_args(sp, plan_.calib), sd) == 0,
               "the shared sensitivity stage failed");
    }
    for (const auto& b : plan_.baselines) {
      bool needed = plan_.cells.empty() ? lead_task : false;
      for (const auto& c : plan_.cells)
        needed |= c.baseline == b.key && mine_in_task(c) && read_cell_status(out_, c.id).state != CellState::Complete;
      needed |= lead_task && !file_exists(baseline_dir(out_, b.key) + "/eval.h5");
      if (agreed(world_, needed)) run_baseline(b);
    }
  }

  // The job's multiple-choice task files, scored with `opt` (its quantized weights, if any).
  std::vector<TaskResult> score_task_sets(const EvalArgs& a, const Comm& comm, const EvalOptions& opt) {
    std::vector<TaskResult> out;
    for (size_t f = 0; f < plan_.task_files.size(); ++f) {
      out.push_back(score_tasks(model_, shared_.tasks(f), shared_.task_sequences(a, f), a.ctx, comm, opt));
      log_info("tasks %s: %s", plan_.task_names[f].c_str(), task_result_line(out.back()).c_str());
    }
    return out;
  }

  EvalFileContents eval_contents(const std::vector<EvalRecord>& recs, const std::string& quantized,
                                 const std::vector<TaskResult>& tasks) {
    EvalFileContents c;
    c.model = plan_.model;
    c.quantized = quantized;
    c.args = recs.front().args;
    c.provenance = recs.front().provenance;
    c.datasets = recs;
    c.dataset_names = plan_.eval_names;
    for (size_t f = 0; f < tasks.size(); ++f)
      c.tasks.push_back({plan_.task_files[f], plan_.tasks_format, plan_.task_names[f], &shared_.tasks(f), &tasks[f]});
    return c;
  }

  ReferenceShape reference_shape(const EvalWindows& w) const {
    return {w.n_windows, w.scored_per_window(), model_.config().hidden_size};
  }

  // The full-precision final hidden states of evaluation file f (for KL): the first file keeps
  // the name it had before several files were possible, so older sweeps resume.
  std::string hidden_file(const std::string& bd, size_t f) const {
    return f == 0 ? bd + "/hidden.f32" : bd + "/hidden." + plan_.eval_names[f] + ".f32";
  }

  void run_baseline(const BaselineSpec& b) {
    const std::string bd = baseline_dir(out_, b.key);
    const bool have_eval = file_exists(bd + "/eval.h5");
    bool have_hidden = true;
    for (size_t f = 0; f < plan_.eval_files.size(); ++f) have_hidden &= !b.eval.kl || file_exists(hidden_file(bd, f));
    if (agreed(world_, have_eval && have_hidden)) return;
    if (world_.rank() == 0) make_dirs(bd);
    world_.barrier();
    EvalArgs a = b.eval;
    a.kl = false;
    Provenance p = prov_;
    p.start_time = Provenance::now_utc();
    std::vector<EvalResult> results;
    std::vector<EvalRecord> recs;
    for (size_t f = 0; f < plan_.eval_files.size(); ++f) {
      const EvalWindows& w = shared_.windows(a, f);
      log_info("shared: full-precision evaluation %s of %s (%s, ctx %d, %lld windows)%s", b.key.c_str(),
               plan_.eval_names[f].c_str(), a.protocol.c_str(), a.ctx, static_cast<long long>(w.n_windows),
               b.eval.kl ? ", keeping its hidden states for KL" : "");
      EvalOptions eo = eval_options(a, !quiet_);
      eo.should_stop = [](const Comm& c) { return stop_requested(c); };
      std::unique_ptr<ReferenceHiddenWriter> cap;
      if (b.eval.kl) cap = std::make_unique<ReferenceHiddenWriter>(hidden_file(bd, f), reference_shape(w), world_);
      eo.capture = cap.get();
      results.push_back(evaluate_perplexity(model_, w, world_, eo));
      const EvalResult& r = results.back();
      QS_CHECK(std::isfinite(r.perplexity), "the full-precision model's perplexity on " << plan_.eval_files[f]
                                                << " is not finite (" << r.perplexity << ")");
      if (cap) cap->commit();
      log_info("shared: full-precision perplexity %.6f on %s (%.0f tokens/s)", r.perplexity, plan_.eval_names[f].c_str(),
               r.tokens_processed / r.forward_seconds);
    }
    EvalOptions to = eval_options(a, !quiet_);
    to.should_stop = [](const Comm& c) { return stop_requested(c); };
    const std::vector<TaskResult> tasks = score_task_sets(a, world_, to);
    p.end_time = Provenance::now_utc();
    for (size_t f = 0; f < plan_.eval_files.size(); ++f)
      recs.push_back({plan_.model, plan_.eval_files[f], "", &a, &shared_.windows(a, f), &results[f], &p});
    if (world_.rank() == 0) write_eval_file(bd + "/eval.h5", eval_contents(recs, "", tasks));
    world_.barrier();
  }

  Outcome run_cell(const SweepCell& c) {
    const std::string cd = cell_dir(out_, c.id);
    const bool lead = group_.rank() == 0;
    if (lead) {
      make_dirs(cd);
      clear_cell_dir(cd);
      nlohmann::json j = {{"host", host_name()}, {"pid", static_cast<int>(::getpid())},
                          {"ranks", group_.size()}, {"time", Provenance::now_utc()}};
      write_text_atomic(cd + "/started", j.dump() + "\n");
    }
    Provenance p = prov_;
    p.start_time = Provenance::now_utc();
    p.n_ranks = group_.size();
    p.hosts = group_.hostnames();
    group_.barrier();
    cell_log(c, "started on %d rank(s)", group_.size());
    Timer t;
    CellMetrics m;
    try {
      QuantizeOptions opt = c.quantize.opt;
      if (!c.quantize.plan.empty()) opt.plan = read_plan(c.quantize.plan, &opt.grid);
      if (c.allocated) {  // the plan from the shared scores, the same on every rank
        const AllocateOutcome a = allocate_cell(c, out_);
        if (lead) write_text_atomic(cd + "/plan.json", a.plan.dump(1) + "\n");
        opt.plan = plan_from_json(a.plan, cd + "/plan.json", &opt.grid);
        m.predicted_score = a.result.score;
        for (const std::string& line : allocation_lines(a, read_sensitivity_file(sensitivity_dir(out_, c.sensitivity) + "/sensitivity.h5")))
          cell_log(c, "%s", line.c_str());
      }
      opt.progress = !quiet_;
      if (opt.scratch_dir.empty()) opt.scratch_dir = cd;
      opt.should_stop = [](const Comm& g) { return stop_requested(g); };
      opt.fp_stats_cache = shared_.stats_cache(c.quantize);
      if (opt.fp_stats_cache && opt.fp_stats_cache->complete())
        cell_log(c, "full-precision statistics shared with earlier --no-propagate cells: no calibration forward pass");
      const CalibWindows& cw = shared_.calib(c.quantize);
      std::unique_ptr<QuantizedFileWriter> file;
      if (lead) file = std::make_unique<QuantizedFileWriter>(cd + "/quantized.h5");
      const QuantizeSummary sum = quantize_model(model_, cw, opt, group_, file.get());
      m.bits_per_weight = sum.bits_per_weight();
      m.model_bytes = sum.model_bytes();
      m.quantize_seconds = t.seconds();
      if (file) {
        Provenance qp = p;
        qp.end_time = Provenance::now_utc();
        write_quantize_attrs(file->writer(), c.quantize, sum);
        file->finish("qsweep-quantized", {plan_.model, plan_.calib, c.quantize.n_calib, c.quantize.seq_len,
                                          opt.calib_chunk, c.quantize.seed, opt.sparsity_threshold, &cw.offsets},
                     qp);
        file.reset();
        maybe_poison(c.id, cd + "/quantized.h5");
      }
      group_.barrier();
      if (!c.baseline.empty()) {
        Timer te;
        QuantizedModel qm(cd + "/quantized.h5");
        std::vector<EvalResult> results;
        for (size_t f = 0; f < plan_.eval_files.size(); ++f) {  // each file as if it were alone
          const EvalWindows& w = shared_.windows(c.eval, f);
          EvalOptions eo = eval_options(c.eval, !quiet_);
          eo.should_stop = opt.should_stop;
          eo.quantized = &qm;
          std::unique_ptr<ReferenceHidden> ref;
          if (c.eval.kl) {
            ref = std::make_unique<ReferenceHidden>(hidden_file(baseline_dir(out_, c.baseline), f), reference_shape(w));
            eo.reference = ref.get();
          }
          results.push_back(evaluate_perplexity(model_, w, group_, eo));
          const EvalResult& r = results.back();
          QS_CHECK(std::isfinite(r.perplexity), "non-finite perplexity (" << r.perplexity << ") of the quantized model on "
                                                    << plan_.eval_files[f]);
          QS_CHECK(!c.eval.kl || std::isfinite(r.kl_mean), "non-finite KL-divergence (" << r.kl_mean << ") on "
                                                               << plan_.eval_files[f]);
        }
        m.perplexity = results[0].perplexity;  // the first file's figures; summary.csv has each file's
        if (c.eval.kl) {
          m.kl_divergence = results[0].kl_mean;
          m.top1_agreement = results[0].top1_agree;
        }
        EvalOptions to = eval_options(c.eval, !quiet_);
        to.should_stop = opt.should_stop;
        to.quantized = &qm;
        const std::vector<TaskResult> tasks = score_task_sets(c.eval, group_, to);
        m.eval_seconds = te.seconds();
        Provenance ep = p;
        ep.end_time = Provenance::now_utc();
        std::vector<EvalRecord> recs;
        for (size_t f = 0; f < plan_.eval_files.size(); ++f)
          recs.push_back({plan_.model, plan_.eval_files[f], "cells/" + c.id, &c.eval, &shared_.windows(c.eval, f), &results[f], &ep});
        if (lead) write_eval_file(cd + "/eval.h5", eval_contents(recs, "cells/" + c.id, tasks));
        if (lead) m.baseline_perplexity = H5Reader(baseline_dir(out_, c.baseline) + "/eval.h5").attr_double("/", "perplexity");
      }
    } catch (const Interrupted&) {
      cell_log(c, "abandoned (stop signal); it will be redone on --resume");
      return Outcome::Interrupted;
    } catch (const Error& e) {
      if (lead) {
        write_text_atomic(cd + "/failed.json", nlohmann::json({{"error", e.what()}, {"time", Provenance::now_utc()}}).dump() + "\n");
        std::remove((cd + "/started").c_str());
        std::fprintf(stderr, "qsweep: cell %d/%zu %s [%s] FAILED: %s\n", c.index + 1, plan_.cells.size(),
                     c.id.c_str(), c.label.c_str(), e.what());
      }
      group_.barrier();
      return Outcome::Failed;
    }
    m.seconds = t.seconds();
    if (lead) {
      p.end_time = Provenance::now_utc();
      ManifestCell mc{c.index, c.id, c.label, c.baseline, c.params};
      write_cell_file(cd + "/cell.h5", mc, m, p);
      std::remove((cd + "/started").c_str());
    }
    group_.barrier();
    if (c.baseline.empty())
      cell_log(c, "done in %s: %.4f bits/weight", fmt_duration(m.seconds).c_str(), m.bits_per_weight);
    else if (c.eval.kl)
      cell_log(c, "done in %s: perplexity %.4f, KL %.5f, top-1 %.4f, %.4f bits/weight", fmt_duration(m.seconds).c_str(),
               m.perplexity, m.kl_divergence, m.top1_agreement, m.bits_per_weight);
    else
      cell_log(c, "done in %s: perplexity %.4f, %.4f bits/weight", fmt_duration(m.seconds).c_str(), m.perplexity,
               m.bits_per_weight);
    return Outcome::Complete;
  }

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

// Parses a shared stage's section as its command would (validate only); an error names the job
// file, the section and the key the command's message is about ("--n-calib" -> n-calib).
void validate_shared_section(const std::string& job, const char* section, CommandFn fn,
                             const std::vector<std::string>& section_args, std::vector<std::string> fixed,
                             const CommandContext& ctx) {
  std::vector<std::string> a = section_args;
  a.insert(a.begin(), fixed.begin(), fixed.end());
  CommandContext v{a, ctx.command_line, ctx.comm, true};
  try {
    fn(v);
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (size_t i = 0; i < section_args.size(); ++i) {
      const std::string& k = section_args[i];
      if (k.rfind("--", 0) != 0) continue;
      for (size_t at = msg.find(k); at != std::string::npos; at = msg.find(k, at + 1)) {
        const size_t end = at + k.size();
        if (end < msg.size() && (std::isalnum(static_cast<unsigned char>(msg[end])) || msg[end] == '-')) continue;
        const bool has_value = i + 1 < section_args.size() && section_args[i + 1].rfind("--", 0) != 0;
        QS_THROW(job << ": [" << section << "] " << k.substr(2)
                     << (has_value ? " = " + section_args[i + 1] : std::string()) << ": " << msg);
      }
    }
    QS_THROW(job << ": [" << section << "]: " << msg);
  }
}

}  // namespace

int cmd_run(const CommandContext& ctx) {
  std::string job_path, out_dir;
  std::vector<std::string> sets;
  bool resume = false, quiet = false, dry_run = false, refresh_shared = false;
  int ranks_per_cell = 0, threads = 0;
  int64_t stats_cache_mb = 4096;
  po::options_description desc("qsweep run options");
  desc.add_options()("help,h", "show this help")
      ("job", po::value(&job_path)->required(), "the job file (also the first positional argument)")
      ("output-dir", po::value(&out_dir), "sweep directory (default: the job's output-dir, else results/<job name>)")
      ("resume", po::bool_switch(&resume), "continue a sweep: skip complete cells, redo the others")
      ("refresh-shared", po::bool_switch(&refresh_shared), "with --resume: recompute the shared stages and redo every cell (after an input changed)")
      ("set", po::value(&sets)->composing(), "override a job-file key: section.key=value (repeatable), e.g. --set quantize.bits=2,3")
      ("ranks-per-cell", po::value(&ranks_per_cell)->default_value(0), "ranks per cell group; groups run different cells concurrently (0: all ranks)")
      ("threads", po::value(&threads)->default_value(0), "threads per rank (0: the job's threads, else cores / ranks per node)")
      ("stats-cache-mb", po::value(&stats_cache_mb)->default_value(4096), "memory per rank for the full-precision statistics --no-propagate cells share (0: none)")
      ("dry-run", po::bool_switch(&dry_run), "validate the job and list its cells, then stop")
      ("quiet,q", po::bool_switch(&quiet), "no progress output");
  po::positional_options_description pos;
  pos.add("job", 1);
  po::variables_map vm;
  if (!parse_args("run",
                  "qsweep run JOB.ini [--output-dir DIR] [--resume] [--set key=value]... [--ranks-per-cell N]\n\n"
                  "Runs every cell of the job's grid (see jobs/README.md) and writes DIR/sweep.h5 and DIR/summary.csv.\n"
                  "Exit codes: 0 all cells complete, 1 some cell failed (named), 75 stopped by SIGTERM/SIGUSR1\n"
                  "(resume with --resume), 1 also for a bad job file (then nothing is run or written).",
                  desc, ctx.args, vm, &pos))
    return 0;
  log_set_quiet(quiet);
  check_slurm_world(ctx.comm);
  QS_CHECK(ranks_per_cell >= 0, "--ranks-per-cell " << ranks_per_cell << " must be 0 (all ranks) or a divisor of the rank count");

  SweepPlan plan = load_sweep_plan(job_path, sets, &out_dir);
  if (threads == 0) threads = plan.threads;
  // The shared stages' options are checked now too, before any work.
  if (plan.spectrum)
    validate_shared_section(plan.job.path, "spectrum", cmd_spectrum, plan.spectrum_args, {"--model", plan.model}, ctx);
  for (const auto& sp : plan.sensitivities)
    validate_shared_section(plan.job.path, "sensitivity", cmd_sensitivity, sensitivity_command_args(sp, plan.calib),
                            {"--model", plan.model, "--output-dir", out_dir}, ctx);
  if (plan.calibrate)
    validate_shared_section(plan.job.path, "calibrate", cmd_calibrate, plan.calibrate_args,
                            {"--model", plan.model, "--calib", plan.calib, "--output-dir", out_dir}, ctx);
  log_set_quiet(quiet);
  for (const std::string& e : plan.eval_files)
    QS_CHECK(file_exists(e), plan.job.path << ": eval = " << plan.eval_data << ": " << e << ": no such file");
  QS_CHECK(plan.calib.empty() || file_exists(plan.calib), plan.job.path << ": calib = " << plan.calib << ": no such file");

  Provenance prov = start_provenance(ctx, threads);
  SweepRunner runner(ctx, std::move(plan), out_dir, ranks_per_cell, quiet, prov);
  runner.set_stats_cache_mb(stats_cache_mb);
  runner.validate();
  if (dry_run) {
    runner.check_texts();
    runner.list_cells();
    return 0;
  }
  QS_CHECK(!refresh_shared || resume, "--refresh-shared needs --resume (it redoes an existing sweep's shared stages and cells)");
  runner.prepare_dir(resume, refresh_shared);
  return runner.run();
}

}  // namespace qsweep
