// cmd_allocate.cc — `qsweep allocate`: a per-layer (bits, group size) plan under a size budget from
// the scores of `qsweep sensitivity`, chosen by the exact multiple-choice knapsack (quant/
// allocate_plan.h: minimum total score, one candidate per layer, size within the budget; scores
// are assumed additive over layers). Writes the plan JSON `qsweep quantize --plan` reads and
// prints the allocation: achieved bits per weight and size, predicted total score, the choices.
#include <cmath>
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "io/sensitivity_file.h"
#include "quant/allocate_plan.h"
#include "sweep/stage_args.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

namespace po = boost::program_options;

int cmd_allocate(const CommandContext& ctx) {
  std::string sens_dir, output;
  AllocateRequest q;
  po::options_description desc("qsweep allocate options");
  desc.add_options()("help,h", "show this help")
      ("sensitivity", po::value(&sens_dir)->required(), "output directory of qsweep sensitivity (its sensitivity.h5)")
      ("output", po::value(&output)->required(), "the plan JSON to write (for qsweep quantize --plan)");
  add_allocate_cell_options(desc, q);
  po::variables_map vm;
  if (!parse_args("allocate", "qsweep allocate --sensitivity DIR (--target-avg-bits B | --target-size-mb S | --strategy S) --output PLAN.json",
                  desc, ctx.args, vm))
    return 0;
  const SensitivityData d = read_sensitivity_file(sens_dir + "/sensitivity.h5");
  const AllocateOutcome o = allocate_plan(d, q, sens_dir);
  if (ctx.comm.rank() == 0) write_text_atomic(output, o.plan.dump(1) + "\n");
  for (const std::string& line : allocation_lines(o, d)) result("%s", line.c_str());
  log_info("wrote %s", output.c_str());
  return 0;
}

}  // namespace qsweep
