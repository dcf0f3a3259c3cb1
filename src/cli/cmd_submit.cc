// cmd_submit.cc — `qsweep submit JOB.ini --nodes N --ntasks-per-node M ...`: fills one of the
// batch templates in slurm/ (CPU, or GPU with --gpus-per-task) with the job's resources and
// paths, writes it into the sweep directory as qsweep.sbatch, and runs sbatch on it (unless
// --dry-run). The template does the rest: srun in the background, USR1/TERM forwarded to the
// step, `qsweep run --resume`, and a requeue when the run exits 75. With --array K the cells are
// dealt to K array tasks (cell index mod K), and the last task to finish assembles sweep.h5.
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "sweep/sweep_dir.h"
#include "sweep/sweep_plan.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {

std::string slurm_dir() {
  if (const char* d = std::getenv("QSWEEP_SLURM_DIR")) return d;
  return QSWEEP_SLURM_DIR;
}

std::string absolute(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char cwd[PATH_MAX];
  QS_CHECK(::getcwd(cwd, sizeof(cwd)), "cannot read the current directory");
  return std::string(cwd) + "/" + p;
}

std::string self_path() {
  char buf[PATH_MAX] = {0};
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, n) : "qsweep";
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Sets `#SBATCH --name=value` (activating a commented `##SBATCH` line of the template) or adds it
// after the last #SBATCH line.
void set_sbatch(std::vector<std::string>& lines, const std::string& name, const std::string& value) {
  const std::string want = "#SBATCH --" + name + "=" + value;
  int last = -1;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    for (const char* prefix : {"#SBATCH --", "##SBATCH --"}) {
      const std::string p = std::string(prefix) + name + "=";
      if (l.compare(0, p.size(), p) == 0) {
        lines[i] = want;
        return;
      }
    }
    if (l.compare(0, 7, "#SBATCH") == 0 || l.compare(0, 8, "##SBATCH") == 0) last = static_cast<int>(i);
  }
  lines.insert(lines.begin() + (last + 1), want);
}

void set_var(std::vector<std::string>& lines, const std::string& var, const std::string& value, const std::string& tpl) {
  for (auto& l : lines)
    if (l.compare(0, var.size() + 1, var + "=") == 0) {
      l = var + "=" + value;
      return;
    }
  QS_THROW(tpl << ": the template has no '" << var << "=' line");
}

}  // namespace

int cmd_submit(const CommandContext& ctx) {
  std::string job_path, out_dir, time_limit, partition, tpl, account;
  std::vector<std::string> sets;
  int nodes = 1, ntasks = 1, gpus = 0, cpus = 0, array = 0, rpc = 0;
  bool dry_run = false;
  po::options_description desc("qsweep submit options");
  desc.add_options()("help,h", "show this help")
      ("job", po::value(&job_path)->required(), "the job file (also the first positional argument)")
      ("nodes", po::value(&nodes)->default_value(1), "nodes per job (or per array task)")
      ("ntasks-per-node", po::value(&ntasks)->default_value(1), "MPI ranks per node")
      ("cpus-per-task", po::value(&cpus)->default_value(0), "cores per rank (0: the template's default); OMP threads per rank")
      ("gpus-per-task", po::value(&gpus)->default_value(0), "GPUs per rank; > 0 selects the GPU template")
      ("time", po::value(&time_limit)->default_value("08:00:00"), "time limit per run (the job requeues itself after a preemption or the warning signal)")
      ("partition", po::value(&partition), "Slurm partition")
      ("account", po::value(&account), "Slurm account")
      ("array", po::value(&array)->default_value(0), "split the cells over K array tasks (cell index mod K)")
      ("output-dir", po::value(&out_dir), "sweep directory (default as for qsweep run)")
      ("set", po::value(&sets)->composing(), "passed to qsweep run: section.key=value")
      ("ranks-per-cell", po::value(&rpc)->default_value(0), "passed to qsweep run")
      ("template", po::value(&tpl), "batch template (default: slurm/qsweep-cpu.sbatch or qsweep-gpu.sbatch)")
      ("dry-run", po::bool_switch(&dry_run), "write the script and print the sbatch command, submit nothing");
  po::positional_options_description pos;
  pos.add("job", 1);
  po::variables_map vm;
  if (!parse_args("submit",
                  "qsweep submit JOB.ini --nodes N --ntasks-per-node M [--gpus-per-task G] [--time T]\n"
                  "                     [--partition P] [--array K] [--dry-run]",
                  desc, ctx.args, vm, &pos))
    return 0;
  if (ctx.comm.rank() != 0) return 0;
  QS_CHECK(nodes >= 1 && ntasks >= 1, "--nodes and --ntasks-per-node must be at least 1");
  QS_CHECK(array >= 0 && array != 1, "--array " << array << ": expected 2 or more array tasks (0: no array)");

  // Validate the job now, not in the queue hours later.
  const SweepPlan plan = load_sweep_plan(job_path, sets, &out_dir);
  out_dir = absolute(out_dir);
  QS_CHECK(array == 0 || static_cast<size_t>(array) <= plan.cells.size(),
           "--array " << array << " exceeds the job's " << plan.cells.size() << " cells");

  if (tpl.empty()) tpl = slurm_dir() + (gpus > 0 ? "/qsweep-gpu.sbatch" : "/qsweep-cpu.sbatch");
  std::ifstream in(tpl);
  QS_CHECK(in, tpl << ": cannot read the batch template");
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);

  std::string stem = job_path.substr(job_path.find_last_of('/') + 1);
  stem = stem.substr(0, stem.rfind('.'));
  set_sbatch(lines, "job-name", "qsweep-" + stem);
  set_sbatch(lines, "nodes", std::to_string(nodes));
  set_sbatch(lines, "ntasks-per-node", std::to_string(ntasks));
  if (cpus > 0) set_sbatch(lines, "cpus-per-task", std::to_string(cpus));
  if (gpus > 0) set_sbatch(lines, "gpus-per-task", std::to_string(gpus));
  set_sbatch(lines, "time", time_limit);
  if (!partition.empty()) set_sbatch(lines, "partition", partition);
  if (!account.empty()) set_sbatch(lines, "account", account);
  if (array > 0) set_sbatch(lines, "array", "0-" + std::to_string(array - 1));
  set_sbatch(lines, "output", out_dir + (array > 0 ? "/slurm-%A_%a.out" : "/slurm-%j.out"));
  std::string args;
  for (const auto& s : sets) args += " --set " + shell_quote(s);
  if (rpc > 0) args += " --ranks-per-cell " + std::to_string(rpc);
  set_var(lines, "QSWEEP", shell_quote(self_path()), tpl);
  set_var(lines, "QSWEEP_JOB", shell_quote(absolute(job_path)), tpl);
  set_var(lines, "QSWEEP_OUT", shell_quote(out_dir), tpl);
  set_var(lines, "QSWEEP_ARGS", "(" + args + " )", tpl);

  make_dirs(out_dir);
  const std::string script = out_dir + "/qsweep.sbatch";
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  write_text_atomic(script, text);
  ::chmod(script.c_str(), 0755);
  const std::string cmd = "sbatch --parsable " + shell_quote(script);
  std::printf("%s: %zu cells, %d node(s) x %d rank(s)%s%s\nwrote %s\n", job_path.c_str(), plan.cells.size(), nodes,
              ntasks, gpus > 0 ? (" x " + std::to_string(gpus) + " GPU(s)").c_str() : "",
              array > 0 ? (", " + std::to_string(array) + " array tasks").c_str() : "", script.c_str());
  if (dry_run) {
    std::printf("dry run: not submitted; submit with: %s\n", cmd.c_str());
    return 0;
  }
  std::fflush(stdout);
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  QS_CHECK(p, "cannot run sbatch");
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof(buf), p)) out += buf;
  const int st = ::pclose(p);
  QS_CHECK(st == 0, "sbatch failed (" << cmd << "): " << out);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  std::printf("submitted job %s; follow it with: qsweep status %s\n", out.c_str(), out_dir.c_str());
  return 0;
}

}  // namespace qsweep
