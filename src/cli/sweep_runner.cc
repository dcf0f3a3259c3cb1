// sweep_runner.cc — the sweep runner of `qsweep run` (see sweep_runner.h): construction, the checks
// that need the model, the sweep directory and its input fingerprints, run() and the shared
// stages every cell depends on. The work of one cell is in sweep_cell.cc.
#include <sys/stat.h>

#include <cstdarg>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "cli/sweep_runner.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "dist/stop_signal.h"
#include "io/provenance.h"
#include "io/quant_store.h"
#include "quant/palette.h"
#include "sweep/allocation_stage.h"
#include "sweep/input_fingerprint.h"
#include "core/device.h"
#include "sweep/report_render.h"
#include "sweep/shared_inputs.h"
#include "sweep/sweep_results.h"

namespace qsweep {

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

SweepRunner::SweepRunner(const CommandContext& ctx, SweepPlan plan, std::string out, int ranks_per_cell, bool quiet,
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

void SweepRunner::validate() {
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

void SweepRunner::list_cells() const {
  if (world_.rank() != 0) return;
  std::printf("%s: %zu cell(s)", plan_.job.path.c_str(), plan_.cells.size());
  for (const auto& a : plan_.axes) std::printf(" x %s.%s{%zu}", a.section.c_str(), a.key.c_str(), a.values.size());
  std::printf("\nshared: %s%s%zu sensitivity run(s), %zu full-precision evaluation(s)\n", plan_.spectrum ? "spectrum, " : "",
              plan_.calibrate ? "statistics, " : "", plan_.sensitivities.size(), plan_.baselines.size());
  for (const auto& s : plan_.sensitivities)
    std::printf("  sensitivity %s: candidates %s\n", s.key.c_str(), palette_string(s.palette).c_str());
  for (const auto& c : plan_.cells) std::printf("  %4d  %s  %s\n", c.index, c.id.c_str(), c.label.c_str());
}

void SweepRunner::check_texts() {
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

void SweepRunner::prepare_dir(bool resume, bool refresh_shared) {
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
    InputFingerprint inputs = fingerprint_inputs(plan_.model, plan_.calib, plan_.eval_files, plan_.task_files);
    inputs.compute = current_device().identity();
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

void SweepRunner::check_inputs(const InputFingerprint& now, bool refresh_shared) {
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

void SweepRunner::remove_new_sweep() {
  if (world_.rank() != 0 || !fresh_) return;
  std::error_code ec;
  if (fresh_dir_) {
    std::filesystem::remove_all(out_, ec);
    return;
  }
  for (const char* n : {"/shared", "/cells", "/sweep.json", "/inputs.json"}) std::filesystem::remove_all(out_ + n, ec);
}

bool SweepRunner::agreed(const Comm& c, bool v) {
  int x = v;
  c.bcast(&x, sizeof(x), 0);
  return x != 0;
}

int SweepRunner::run() {
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

void SweepRunner::cell_log(const SweepCell& c, const char* fmt, ...) {
  if (group_.rank() != 0 || quiet_) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "qsweep: cell %d/%zu %s [%s]: %s\n", c.index + 1, plan_.cells.size(), c.id.c_str(),
               c.label.empty() ? "no grid axes" : c.label.c_str(), msg);
}

int SweepRunner::call_command(CommandFn fn, std::vector<std::string> args, const std::string& dir) {
  args.insert(args.begin(), {"--model", plan_.model, "--output-dir", dir, "--threads",
                             std::to_string(prov_.threads_per_rank), "--device", current_device().kind_name(),
                             "--compute-dtype", compute_dtype_name(current_device().dtype)});
  if (quiet_) args.push_back("--quiet");
  CommandContext sub{args, ctx_.command_line, world_};
  const int rc = fn(sub);
  log_set_quiet(quiet_);
  return rc;
}

void SweepRunner::run_shared() {
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

}  // namespace qsweep
