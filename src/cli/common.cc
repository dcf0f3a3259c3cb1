// common.cc — argument parsing, thread setup and directory creation shared by subcommands.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "cli/command.h"
#include "core/backend.h"
#include "core/blas_kernels.h"
#include "core/error.h"
#include "core/log.h"
#include "core/device.h"
#include "core/threads.h"
#include "io/provenance.h"
#include "sweep/sweep_plan.h"

namespace qsweep {

namespace po = boost::program_options;

bool parse_args(const char* cmd, const char* usage, const po::options_description& desc,
                const std::vector<std::string>& args, po::variables_map& vm,
                const po::positional_options_description* pos) {
  try {
    po::command_line_parser parser(args);
    parser.options(desc);
    if (pos) parser.positional(*pos);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      if (Comm::world().rank() == 0) std::cout << "usage: " << usage << "\n\n" << desc << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    QS_THROW("qsweep " << cmd << ": " << e.what() << " (see qsweep " << cmd << " --help)");
  }
  return true;
}

int setup_threads(const Comm& comm, int threads) {
  QS_CHECK(threads >= 0 && threads <= 4096,
           "--threads " << threads << " must be 0 (cores / ranks per node) or a thread count from 1 to 4096");
  const int n = threads > 0 ? threads : default_num_threads(comm.local_size());
  return set_num_threads(n);
}

const char* const kDeviceHelp =
    "compute device: auto (CUDA when this build has it and every rank sees a GPU, else the CPU), cpu or cuda "
    "(each rank binds to GPU node-local-rank mod visible GPUs)";

const char* const kComputeDtypeHelp =
    "arithmetic of the model's GEMMs: fp32 (exact fp32; TF32 off), bf16 (CUDA tensor cores, fp32 accumulation: "
    "faster, less exact) or tf32x3 (CUDA: the forward's linear and head GEMMs as three TF32 tensor-core products "
    "of split operands, fp32-class accuracy; training stays fp32). Statistics and quantizers "
    "stay fp32/fp64. Part of a sweep's identity";

Provenance start_provenance(const CommandContext& ctx, int threads, const std::string& device,
                            const std::string& compute_dtype) {
  Provenance p;
  p.start_time = Provenance::now_utc();
  p.command_line = ctx.command_line;
  p.n_ranks = ctx.comm.size();
  p.hosts = ctx.comm.hostnames();
  p.threads_per_rank = setup_threads(ctx.comm, threads);
  const ComputeDevice& d = select_device(parse_device_choice(device), ctx.comm, parse_compute_dtype(compute_dtype));
  p.compute = d.identity();
  p.device = d.description;
  log_info("backend: %s; compute: %s", backend_summary().c_str(), d.description.c_str());
  const std::string note = blas_kernel_note();
  if (!note.empty() && ctx.comm.rank() == 0) log_warn("%s", note.c_str());
  return p;
}

SweepPlan load_sweep_plan(const std::string& job_path, const std::vector<std::string>& sets, std::string* out_dir) {
  JobFile job = read_job_file(job_path);
  for (const auto& s : sets) apply_set(job, s);
  SweepPlan plan = make_sweep_plan(std::move(job));
  if (out_dir->empty()) {
    std::string stem = job_path.substr(job_path.find_last_of('/') + 1);
    stem = stem.substr(0, stem.rfind('.'));
    *out_dir = plan.output_dir.empty() ? "results/" + stem : plan.output_dir;
  }
  return plan;
}

void make_dirs(const std::string& dir) {
  std::string cur;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (!cur.empty() && cur != "." && ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
        QS_THROW(cur << ": cannot create directory: " << std::strerror(errno));
    }
    if (i < dir.size()) cur += dir[i];
  }
  struct stat st;
  QS_CHECK(::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode), dir << ": not a directory");
}

}  // namespace qsweep
