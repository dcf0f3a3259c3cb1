// main.cc — qsweep's entry point: MPI setup, subcommand dispatch, and the error policy (a user
// error prints "qsweep: error: ..." and exits non-zero; under MPI the job is aborted so no rank
// hangs in a collective waiting for a rank that failed).
#include <cstdio>
#include <cstring>
#include <exception>

#include "cli/command.h"
#include "core/blas_kernels.h"
#include "core/error.h"
#include "core/log.h"
#include "io/provenance.h"
#include "qsweep/version.h"

namespace qsweep {
namespace {

const Command kCommands[] = {
    {"run", "run a job file's grid of experiments (sweep.h5, summary.csv); --resume after preemption", cmd_run},
    {"status", "the cells of a sweep directory: done, running, failed, pending", cmd_status},
    {"submit", "write a Slurm batch script for a job file and submit it (sbatch)", cmd_submit},
    {"merge", "assemble sweep.h5 and summary.csv from a sweep directory's cells", cmd_merge},
    {"report", "report.html (sortable tables, winner table, frontier and per-layer plots) and report.md of a sweep", cmd_report},
    {"diff", "compare two result files or sweep directories bit for bit (provenance excluded)", cmd_diff},
    {"compare", "paired comparison of two evaluations per dataset: Δ%, 95% CI, sign test, winner", cmd_compare},
    {"eval", "perplexity of a model on a text (gptq or llamacpp protocol), over MPI ranks", cmd_eval},
    {"calibrate", "full-precision activation statistics of every linear input (stats.h5)", cmd_calibrate},
    {"quantize", "calibrate and quantize every decoder linear (rtn, awq, gptq) into quantized.h5", cmd_quantize},
    {"spectrum", "weight spectra (Alpha-Hill, power-law fit) of every linear layer across precisions", cmd_spectrum},
    {"sensitivity", "per-layer output error of every candidate bits x group size (sensitivity.h5)", cmd_sensitivity},
    {"allocate", "mixed-precision plan under a size budget from sensitivity scores (exact knapsack)", cmd_allocate},
    {"zones", "safe / transition / critical blocks from activation statistics (and sensitivity); a plan per zone", cmd_zones},
    {"recommend", "classify layers by their spectrum and export a per-layer bit plan", cmd_recommend},
    {"info", "describe a model directory: config, tensors, parameter counts", cmd_info},
    {"tokenize", "write a text's token ids in the pre-tokenized format", cmd_tokenize},
    {"make-model", "write a synthetic Llama-family checkpoint with random weights", cmd_make_model},
};

void print_help() {
  std::printf(
      "qsweep %s (%s) — post-training-quantization research for Llama-family LLMs\n\n"
      "usage: qsweep <command> [options]      (qsweep <command> --help for its options)\n"
      "       mpirun -n N qsweep <command> ... (ranks share the work; results do not depend on N)\n\n"
      "commands:\n",
      kVersion, kGitVersion);
  for (const auto& c : kCommands) std::printf("  %-12s %s\n", c.name, c.summary);
  std::printf(
      "\nenvironment: OMP_NUM_THREADS sets threads per rank (default: cores / ranks per node);\n"
      "  QSWEEP_MPI=on|off forces MPI initialisation on or off (default: only under an MPI launcher)\n");
}

}  // namespace
}  // namespace qsweep

int main(int argc, char** argv) {
  using namespace qsweep;
  ensure_fast_blas_kernels(argv);  // before MPI and any BLAS call: may re-execute once
  Comm::init(&argc, &argv);
  Comm world = Comm::world();
  log_set_rank(world.rank(), world.size());
  int rc = 0;
  try {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
        !std::strcmp(argv[1], "help")) {
      if (world.rank() == 0) print_help();
      rc = argc < 2 ? 2 : 0;
    } else if (!std::strcmp(argv[1], "--version")) {
      if (world.rank() == 0) std::printf("qsweep %s (%s)\n", kVersion, kGitVersion);
    } else {
      const Command* cmd = nullptr;
      for (const auto& c : kCommands)
        if (!std::strcmp(argv[1], c.name)) cmd = &c;
      QS_CHECK(cmd, "unknown command '" << argv[1] << "' (run qsweep --help for the list)");
      CommandContext ctx{std::vector<std::string>(argv + 2, argv + argc),
                         Provenance::join_argv(argc, argv), world};
      rc = cmd->run(ctx);
    }
  } catch (const Error& e) {
    if (world.size() > 1)
      std::fprintf(stderr, "qsweep[rank %d]: error: %s\n", world.rank(), e.what());
    else
      std::fprintf(stderr, "qsweep: error: %s\n", e.what());
    std::fflush(stderr);
    world.abort(1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qsweep: error: %s\n", e.what());
    std::fflush(stderr);
    world.abort(1);
  }
  Comm::finalize();
  return rc;
}
