// cmd_status.cc — `qsweep status DIR [--csv]`: the cells of a sweep directory, done, running,
// interrupted, failed and pending, with seconds and perplexity — read from the files alone, so
// it works while a job is writing the directory and after a crash.
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

namespace po = boost::program_options;

void print_sweep_status(const std::string& dir, bool csv) {
  const Manifest m = read_manifest(dir);
  int counts[5] = {0, 0, 0, 0, 0};
  if (csv) std::printf("index,id,label,state,seconds,perplexity,error\n");
  else std::printf("%5s  %-12s  %-11s  %9s  %12s  %s\n", "cell", "id", "state", "seconds", "perplexity", "parameters");
  for (const auto& c : m.cells) {
    const CellStatus st = read_cell_status(dir, c.id);
    ++counts[static_cast<int>(st.state)];
    const bool done = st.state == CellState::Complete;
    if (csv) {
      std::printf("%d,%s,%s,%s,", c.index, c.id.c_str(), csv_field(c.label).c_str(), cell_state_name(st.state));
      if (done) std::printf("%.3f", st.seconds);
      std::printf(",");
      if (done && st.has_perplexity) std::printf("%.17g", st.perplexity);
      std::printf(",%s\n", csv_field(st.error).c_str());
      continue;
    }
    char secs[32] = "", ppl[32] = "";
    if (done) std::snprintf(secs, sizeof(secs), "%.1f", st.seconds);
    if (done && st.has_perplexity) std::snprintf(ppl, sizeof(ppl), "%.4f", st.perplexity);
    std::string extra;
    if (st.state == CellState::Failed) extra = "  error: " + st.error;
    if (st.state == CellState::Running || st.state == CellState::Interrupted)
      extra = "  (" + st.host + ", since " + st.since + ")";
    std::printf("%5d  %-12s  %-11s  %9s  %12s  %s%s\n", c.index, c.id.c_str(), cell_state_name(st.state), secs, ppl,
                c.label.c_str(), extra.c_str());
  }
  if (!csv) {
    std::printf("%zu cells: %d done, %d running, %d interrupted, %d failed, %d pending%s\n", m.cells.size(),
                counts[int(CellState::Complete)], counts[int(CellState::Running)], counts[int(CellState::Interrupted)],
                counts[int(CellState::Failed)], counts[int(CellState::Pending)],
                file_exists(dir + "/sweep.h5") ? "; sweep.h5 and summary.csv are assembled" : "");
  }
  std::fflush(stdout);
}

int cmd_status(const CommandContext& ctx) {
  std::string dir;
  bool csv = false;
  po::options_description desc("qsweep status options");
  desc.add_options()("help,h", "show this help")("dir", po::value(&dir)->required(), "the sweep directory (positional)")
      ("csv", po::bool_switch(&csv), "print CSV (index,id,label,state,seconds,perplexity,error)");
  po::positional_options_description pos;
  pos.add("dir", 1);
  po::variables_map vm;
  if (!parse_args("status", "qsweep status DIR [--csv]", desc, ctx.args, vm, &pos)) return 0;
  if (ctx.comm.rank() == 0) print_sweep_status(dir, csv);
  return 0;
}

}  // namespace qsweep
