// cmd_diff.cc — `qsweep diff A B`: exit 0 when two result files (or two sweep directories'
// sweep.h5, or two output folders' result file: quantized.h5, eval.h5, ...) hold identical results — every metric, code, scale and zero point equal bit for bit —
// ignoring provenance and timings (io/h5_diff.h); exit 1 listing the differences otherwise; exit 2
// when a file cannot be read (as diff(1) does), so scripts can tell "differ" from "cannot tell".
#include <sys/stat.h>

#include <cstdio>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"
#include "io/h5_diff.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {
std::string as_file(const std::string& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    // A sweep folder, or the output folder of one command (quantize, eval, calibrate, sensitivity).
    for (const char* name : {"sweep.h5", "quantized.h5", "eval.h5", "stats.h5", "sensitivity.h5"}) {
      const std::string f = p + "/" + name;
      if (::stat(f.c_str(), &st) == 0) return f;
    }
    QS_THROW(p << ": a directory without sweep.h5 (is the sweep finished? see qsweep status " << p
               << ") nor a command's result file (quantized.h5, eval.h5, stats.h5, sensitivity.h5)");
  }
  return p;
}
}  // namespace

int cmd_diff(const CommandContext& ctx) {
  std::vector<std::string> files;
  bool quiet = false;
  po::options_description desc("qsweep diff options");
  desc.add_options()("help,h", "show this help")("files", po::value(&files), "two HDF5 files, sweep directories or command output folders (positional)")
      ("quiet,q", po::bool_switch(&quiet), "print nothing; the exit code tells");
  po::positional_options_description pos;
  pos.add("files", 2);
  po::variables_map vm;
  if (!parse_args("diff", "qsweep diff A B\n\nA and B are qsweep HDF5 files, sweep directories, or output folders of\nquantize / eval / calibrate / sensitivity (their result file is compared). Exit 0: identical results\n(provenance and timings excluded); 1: they differ (listed); 2: an error (a file cannot be read).", desc, ctx.args, vm, &pos)) return 0;
  std::string a, b;
  std::vector<std::string> d;
  try {
    QS_CHECK(files.size() == 2, "qsweep diff: expected two files or sweep directories, got " << files.size());
    a = as_file(files[0]);
    b = as_file(files[1]);
    d = h5_diff(a, b);
  } catch (const Error& e) {
    if (ctx.comm.rank() == 0) std::fprintf(stderr, "qsweep: error: %s\n", e.what());
    return 2;
  }
  if (ctx.comm.rank() == 0 && !quiet) {
    if (d.empty()) std::printf("identical: %s and %s (provenance and timings excluded)\n", a.c_str(), b.c_str());
    for (const auto& s : d) std::printf("differs: %s\n", s.c_str());
  }
  return d.empty() ? 0 : 1;
}

}  // namespace qsweep
