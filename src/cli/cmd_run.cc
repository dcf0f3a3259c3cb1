// cmd_run.cc — `qsweep run JOB.ini`: the options, the checks of the job and of its shared stages'
// sections before any work, then the sweep runner (sweep_runner.h) runs the grid.
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/sweep_runner.h"
#include "core/error.h"
#include "core/log.h"
#include "io/provenance.h"
#include "sweep/allocation_stage.h"
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
  std::string device, compute_dtype;
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
      ("device", po::value(&device), "compute device: auto, cpu or cuda (default: the job's device, else auto: CUDA when this build has it and every rank sees a GPU)")
      ("compute-dtype", po::value(&compute_dtype), "arithmetic of the model's GEMMs: fp32, bf16 or tf32x3 (CUDA only; default: the job's compute-dtype, else fp32)")
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
  if (device.empty()) device = plan.device.empty() ? "auto" : plan.device;
  if (compute_dtype.empty()) compute_dtype = plan.compute_dtype.empty() ? "fp32" : plan.compute_dtype;
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

  Provenance prov = start_provenance(ctx, threads, device, compute_dtype);
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
