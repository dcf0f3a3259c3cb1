// command.h — the subcommand table of the qsweep CLI and what every subcommand gets: its
// arguments, the world communicator and the full command line (for provenance).
#pragma once
#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "dist/comm.h"

namespace qsweep {

struct CommandContext {
  std::vector<std::string> args;  // after the subcommand name
  std::string command_line;       // the whole invocation, for provenance
  Comm comm;
  bool validate_only = false;  // parse and check the options, then return 0 without work (qsweep run)
};

using CommandFn = int (*)(const CommandContext&);

struct Command {
  const char* name;
  const char* summary;
  CommandFn run;
};

int cmd_eval(const CommandContext& ctx);
int cmd_make_model(const CommandContext& ctx);
int cmd_info(const CommandContext& ctx);
int cmd_tokenize(const CommandContext& ctx);
int cmd_spectrum(const CommandContext& ctx);
int cmd_quantize(const CommandContext& ctx);
int cmd_calibrate(const CommandContext& ctx);
int cmd_recommend(const CommandContext& ctx);
int cmd_run(const CommandContext& ctx);
int cmd_status(const CommandContext& ctx);
int cmd_diff(const CommandContext& ctx);
int cmd_compare(const CommandContext& ctx);
int cmd_merge(const CommandContext& ctx);
int cmd_report(const CommandContext& ctx);
int cmd_sensitivity(const CommandContext& ctx);
int cmd_allocate(const CommandContext& ctx);
int cmd_zones(const CommandContext& ctx);
int cmd_submit(const CommandContext& ctx);

// The cells of a sweep directory with their state, seconds and perplexity (qsweep status, and
// the end of qsweep run); as CSV for scripts with `csv`.
void print_sweep_status(const std::string& dir, bool csv);

// Parses args against `desc` (and `pos`, the positional arguments, when given); prints "usage:
// <usage>" and the options and returns false for --help. Usage errors throw qsweep::Error naming
// the subcommand.
bool parse_args(const char* cmd, const char* usage, const boost::program_options::options_description& desc,
                const std::vector<std::string>& args, boost::program_options::variables_map& vm,
                const boost::program_options::positional_options_description* pos = nullptr);
// Applies --threads (0 = default from cores and ranks per node) and returns the count.
int setup_threads(const Comm& comm, int threads);
// Provenance of a run that starts now: command line, ranks, hosts; applies --threads and selects
// the compute device (--device: auto, cpu or cuda; core/device.h), collectively.
struct Provenance;
Provenance start_provenance(const CommandContext& ctx, int threads, const std::string& device = "cpu",
                            const std::string& compute_dtype = "fp32");
// The --device option's help text (every command that computes has it).
extern const char* const kDeviceHelp;
// The --compute-dtype option's help text (fp32 | bf16 | tf32x3, core/device.h ComputeDtype).
extern const char* const kComputeDtypeHelp;
// A job file with its --set overrides applied, expanded and validated (qsweep run, qsweep submit);
// `out_dir` is filled when empty: the job's output-dir, else results/<job file name>.
struct SweepPlan;
SweepPlan load_sweep_plan(const std::string& job_path, const std::vector<std::string>& sets, std::string* out_dir);
// Creates a directory (and parents); throws naming it.
void make_dirs(const std::string& dir);

}  // namespace qsweep
