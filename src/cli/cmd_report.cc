// cmd_report.cc — `qsweep report DIR`: report.html (self-contained: sortable tables, the winner
// table, size-quality frontiers, per-layer plots) and report.md from a finished sweep directory.
// Rank 0 writes; both files are written atomically.
#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "sweep/report_data.h"
#include "sweep/report_render.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

namespace po = boost::program_options;

int cmd_report(const CommandContext& ctx) {
  std::string dir;
  po::options_description desc("qsweep report options");
  desc.add_options()("help,h", "show this help")("dir", po::value(&dir)->required(),
                                                 "the sweep directory (positional): after qsweep run, or qsweep merge");
  po::positional_options_description pos;
  pos.add("dir", 1);
  po::variables_map vm;
  if (!parse_args("report", "qsweep report DIR   (writes DIR/report.html and DIR/report.md)", desc, ctx.args, vm, &pos))
    return 0;
  if (ctx.comm.rank() != 0) return 0;
  const ReportData d = write_report(dir);
  log_info("wrote %s/report.html and %s/report.md: %zu cells, %zu paired comparisons, %zu dataset(s), %zu task set(s)",
           dir.c_str(), dir.c_str(), d.rows.size(), d.winners.size(), d.datasets.size(), d.task_sets.size());
  return 0;
}

}  // namespace qsweep
