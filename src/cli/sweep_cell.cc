// sweep_cell.cc — the per-cell work of the sweep runner (see sweep_runner.h): quantize one cell on
// its group, evaluate it against its full-precision baseline, score its task files and write
// cell.h5 last; and the full-precision baseline evaluation the cells compare against.
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/sweep_runner.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "dist/stop_signal.h"
#include "io/h5_reader.h"
#include "io/provenance.h"
#include "io/quant_store.h"
#include "io/reference_hidden.h"
#include "io/sensitivity_file.h"
#include "sweep/allocation_stage.h"
#include "sweep/shared_inputs.h"
#include "sweep/sweep_results.h"

namespace qsweep {

namespace {

std::string host_name() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof(buf) - 1);
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

}  // namespace

std::vector<TaskResult> SweepRunner::score_task_sets(const EvalArgs& a, const Comm& comm, const EvalOptions& opt) {
  std::vector<TaskResult> out;
  for (size_t f = 0; f < plan_.task_files.size(); ++f) {
    out.push_back(score_tasks(model_, shared_.tasks(f), shared_.task_sequences(a, f), a.ctx, comm, opt));
    log_info("tasks %s: %s", plan_.task_names[f].c_str(), task_result_line(out.back()).c_str());
  }
  return out;
}

EvalFileContents SweepRunner::eval_contents(const std::vector<EvalRecord>& recs, const std::string& quantized,
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

ReferenceShape SweepRunner::reference_shape(const EvalWindows& w) const {
  return {w.n_windows, w.scored_per_window(), model_.config().hidden_size};
}

std::string SweepRunner::hidden_file(const std::string& bd, size_t f) const {
  return f == 0 ? bd + "/hidden.f32" : bd + "/hidden." + plan_.eval_names[f] + ".f32";
}

void SweepRunner::run_baseline(const BaselineSpec& b) {
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

SweepRunner::Outcome SweepRunner::run_cell(const SweepCell& c) {
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

}  // namespace qsweep
