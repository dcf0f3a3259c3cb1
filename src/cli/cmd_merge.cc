// cmd_merge.cc — `qsweep merge DIR`: assemble sweep.h5 and summary.csv from the cells' files, as
// the last array task of `qsweep submit --array` does; refuses while a cell has no outcome.
#include <cstdio>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "io/provenance.h"
#include "sweep/report_render.h"
#include "sweep/sweep_results.h"

namespace qsweep {

namespace po = boost::program_options;

int cmd_merge(const CommandContext& ctx) {
  std::string dir;
  po::options_description desc("qsweep merge options");
  desc.add_options()("help,h", "show this help")("dir", po::value(&dir)->required(), "the sweep directory (positional)");
  po::positional_options_description pos;
  pos.add("dir", 1);
  po::variables_map vm;
  if (!parse_args("merge", "qsweep merge DIR", desc, ctx.args, vm, &pos)) return 0;
  if (ctx.comm.rank() != 0) return 0;
  Provenance prov = start_provenance(ctx, 1);
  prov.end_time = Provenance::now_utc();
  const MergeReport r = merge_sweep(dir, prov);
  write_report(dir);
  log_info("wrote %s/sweep.h5, summary.csv, report.html and report.md: %d complete, %d failed", dir.c_str(), r.complete, r.failed);
  for (const auto& f : r.failed_cells) std::fprintf(stderr, "qsweep: failed cell: %s\n", f.c_str());
  return r.failed > 0 ? 1 : 0;
}

}  // namespace qsweep
