// cmd_merge.cc — `qsweep merge DIR`: assemble sweep.h5 and summary.csv from the cells' files, as
// the last array task of `qsweep submit --array` does; refuses while a cell has no outcome.
#include <cstdio>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "io/provenance.h"
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
  try {
    po::store(po::command_line_parser(ctx.args).options(desc).positional(pos).run(), vm);
    if (vm.count("help")) {
      if (ctx.comm.rank() == 0) std::printf("usage: qsweep merge DIR\n\n%s\n", (std::ostringstream() << desc).str().c_str());
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    QS_THROW("qsweep merge: " << e.what() << " (see qsweep merge --help)");
  }
  if (ctx.comm.rank() != 0) return 0;
  Provenance prov = start_provenance(ctx, 1);
  prov.end_time = Provenance::now_utc();
  const MergeReport r = merge_sweep(dir, prov);
  log_info("wrote %s/sweep.h5 and %s/summary.csv: %d complete, %d failed", dir.c_str(), dir.c_str(), r.complete, r.failed);
  for (const auto& f : r.failed_cells) std::fprintf(stderr, "qsweep: failed cell: %s\n", f.c_str());
  return r.failed > 0 ? 1 : 0;
}

}  // namespace qsweep
