// cmd_compare.cc — `qsweep compare A B`: the paired comparison of two evaluations of the same data
// files (eval/compare.h), as the AWQ study's "Dataset / method A / method B / Delta / Winner"
// table. A and B are eval.h5 files, output directories holding one, or sweep cells as DIR:CELL_ID.
#include <sys/stat.h>

#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "eval/compare.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {
bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The eval.h5 an argument names, and a short label for it.
std::string resolve_eval(const std::string& arg, std::string* label) {
  const size_t colon = arg.rfind(':');
  if (colon != std::string::npos && colon > 0 && is_dir(arg.substr(0, colon)) && !file_exists(arg)) {
    const std::string dir = arg.substr(0, colon), id = arg.substr(colon + 1);
    const std::string f = cell_dir(dir, id) + "/eval.h5";
    QS_CHECK(file_exists(f), arg << ": sweep " << dir << " has no evaluated cell " << id << " (" << f
                                 << " is missing; see qsweep status " << dir << ")");
    *label = id;
    return f;
  }
  if (is_dir(arg)) {
    const std::string f = arg + "/eval.h5";
    QS_CHECK(file_exists(f), arg << ": a directory without eval.h5");
    std::string d = arg;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    *label = d.substr(d.find_last_of('/') + 1);
    return f;
  }
  QS_CHECK(file_exists(arg), arg << ": no such file (expected an eval.h5, a folder holding one, or DIR:CELL_ID)");
  const size_t slash = arg.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : arg.substr(0, slash);
  *label = parent == "." ? arg : parent.substr(parent.find_last_of('/') + 1);
  return arg;
}
}  // namespace

int cmd_compare(const CommandContext& ctx) {
  std::vector<std::string> args;
  std::string labels;
  bool csv = false;
  po::options_description desc("qsweep compare options");
  desc.add_options()("help,h", "show this help")("evals", po::value(&args), "A and B (positional)")
      ("labels", po::value(&labels), "names for A and B in the table, as A,B (default: their folders or cell ids)")
      ("csv", po::bool_switch(&csv), "CSV with every figure at full precision instead of the table");
  po::positional_options_description pos;
  pos.add("evals", 2);
  po::variables_map vm;
  if (!parse_args("compare",
                  "qsweep compare A B [--labels NAME_A,NAME_B] [--csv]\n\n"
                  "A and B: eval.h5 files, folders holding one, or sweep cells as DIR:CELL_ID, evaluated on the\n"
                  "same data files with the same --ctx and --protocol. Per dataset: both perplexities,\n"
                  "Δ% = ppl_B/ppl_A − 1, a 95% interval of Δ (Student t over the per-window differences of\n"
                  "mean NLL), an exact sign test over windows, the winner (a tie when the interval holds 0);\n"
                  "then the average of the perplexities and the win count.",
                  desc, ctx.args, vm, &pos))
    return 0;
  QS_CHECK(args.size() == 2, "qsweep compare: expected two evaluations, A and B (got " << args.size() << ")");
  std::string la, lb;
  const std::string fa = resolve_eval(args[0], &la), fb = resolve_eval(args[1], &lb);
  if (!labels.empty()) {
    const size_t c = labels.find(',');
    QS_CHECK(c != std::string::npos && c > 0 && c + 1 < labels.size() && labels.find(',', c + 1) == std::string::npos,
             "--labels '" << labels << "': expected two names separated by one comma");
    la = labels.substr(0, c);
    lb = labels.substr(c + 1);
  }
  if (la == lb) {
    la = "A";
    lb = "B";
  }
  QS_CHECK(la != "tie" && lb != "tie", "--labels: 'tie' is reserved");
  const auto rows = compare_evaluations(read_eval_datasets(fa), read_eval_datasets(fb), la, lb, fa, fb);
  if (ctx.comm.rank() == 0) {
    if (csv) {
      std::printf("dataset,ppl_a,ppl_b,delta_pct,ci_lo_pct,ci_hi_pct,p_sign,winner,windows,b_better,a_better\n");
      for (const DatasetComparison& r : rows)
        std::printf("%s,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%s,%lld,%lld,%lld\n", r.name.c_str(), r.ppl_a, r.ppl_b,
                    r.delta_pct, r.ci_lo_pct, r.ci_hi_pct, r.p_sign, r.winner.c_str(), static_cast<long long>(r.windows),
                    static_cast<long long>(r.b_better), static_cast<long long>(r.a_better));
    } else {
      std::printf("A: %s\nB: %s\n\n%s", fa.c_str(), fb.c_str(), comparison_table(rows, la, lb).c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace qsweep
