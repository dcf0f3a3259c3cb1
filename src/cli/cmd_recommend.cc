// cmd_recommend.cc — `qsweep recommend`: reads a spectrum's precision_alpha_hill_results.csv,
// classifies each layer by α_hill at the highest precision analysed (> 3.0 precision-sensitive,
// 2.5–3.0 medium, < 2.5 robust; a layer whose α varies across precisions by more than
// --max-variation-pct, or that overflowed, counts as sensitive), prints the table and exports
// the per-layer plan `qsweep quantize --plan` reads.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"
#include "stats/precision.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {
std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}
}  // namespace

int cmd_recommend(const CommandContext& ctx) {
  std::string dir, export_path;
  double max_var = 1.0;
  int bits_s = 8, bits_m = 4, bits_r = 3, group = 128, default_bits = 4;
  po::options_description desc("qsweep recommend options");
  desc.add_options()("help,h", "show this help")
      ("spectrum", po::value(&dir)->required(), "output directory of qsweep spectrum")
      ("export-config", po::value(&export_path), "write the per-layer plan (JSON) here")
      ("max-variation-pct", po::value(&max_var)->default_value(1.0), "α variation across precisions (%) above which a layer is sensitive")
      ("bits-sensitive", po::value(&bits_s)->default_value(8), "bits for precision-sensitive layers (α > 3.0)")
      ("bits-medium", po::value(&bits_m)->default_value(4), "bits for medium layers (2.5 ≤ α ≤ 3.0)")
      ("bits-robust", po::value(&bits_r)->default_value(3), "bits for robust layers (α < 2.5)")
      ("default-bits", po::value(&default_bits)->default_value(4), "the plan's default bits")
      ("group-size", po::value(&group)->default_value(128), "group size written to the plan (-1 = per row)");
  po::variables_map vm;
  if (!parse_args("recommend", "qsweep recommend --spectrum DIR [--export-config FILE.json]", desc, ctx.args, vm))
    return 0;
  if (ctx.comm.rank() != 0) return 0;
  for (int b : {bits_s, bits_m, bits_r, default_bits})
    QS_CHECK(b >= 2 && b <= 8, "bits must lie in 2..8, got " << b);
  QS_CHECK(group == -1 || group > 0, "--group-size must be positive or -1");

  const std::string path = dir + "/precision_alpha_hill_results.csv";
  std::ifstream in(path);
  QS_CHECK(in, path << ": cannot open (run qsweep spectrum --output-dir " << dir << " first)");
  std::string line;
  QS_CHECK(std::getline(in, line), path << ": empty file");
  const std::vector<std::string> header = split_csv_line(line);
  auto col = [&](const std::string& name) -> int {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    return -1;
  };
  // Precisions present, and the highest of them.
  std::vector<Precision> precs;
  for (Precision p : {Precision::FP64, Precision::FP32, Precision::FP16, Precision::BF16})
    if (col(std::string("alpha_") + precision_name(p)) >= 0) precs.push_back(p);
  QS_CHECK(!precs.empty() && col("layer_name") == 0,
           path << ": not a qsweep spectrum table (expected columns layer_name, alpha_<precision>, ...)");
  Precision top = precs[0];
  for (Precision p : precs)
    if (precision_rank(p) > precision_rank(top)) top = p;

  nlohmann::ordered_json plan;
  plan["default"] = {{"bits", default_bits}, {"group_size", group}};
  plan["layers"] = nlohmann::ordered_json::object();
  std::printf("%-45s %10s %10s  %-10s %4s  %s\n", "layer", "alpha", "var %", "class", "bits", "reason");
  int counts[3] = {0, 0, 0};
  int row = 1;
  while (std::getline(in, line)) {
    ++row;
    if (line.empty()) continue;
    const auto cells = split_csv_line(line);
    QS_CHECK(cells.size() == header.size(), path << ":" << row << ": " << cells.size()
                                                 << " cells, expected " << header.size());
    const std::string name = cells[0];
    const double alpha = std::stod(cells[col(std::string("alpha_") + precision_name(top))]);
    double var = 0;
    bool overflow = false;
    for (Precision p : precs) {
      const int c = col(std::string("alpha_delta_pct_") + precision_name(p));
      const double v = c >= 0 ? std::stod(cells[c]) : 0.0;
      if (std::isnan(v)) overflow = true;
      else var = std::max(var, std::fabs(v));
    }
    std::string cls, reason;
    if (std::isnan(alpha) || overflow) {
      cls = "sensitive";
      reason = "overflow or undefined α in some precision";
    } else if (var > max_var) {
      cls = "sensitive";
      reason = "α varies across precisions";
    } else if (alpha > 3.0) {
      cls = "sensitive";
      reason = "α > 3.0";
    } else if (alpha >= 2.5) {
      cls = "medium";
      reason = "2.5 ≤ α ≤ 3.0";
    } else {
      cls = "robust";
      reason = "α < 2.5";
    }
    const int bits = cls == "sensitive" ? bits_s : cls == "medium" ? bits_m : bits_r;
    ++counts[cls == "sensitive" ? 0 : cls == "medium" ? 1 : 2];
    std::printf("%-45s %10.4f %10.4f  %-10s %4d  %s\n", name.c_str(), alpha, var, cls.c_str(), bits,
                reason.c_str());
    plan["layers"][name] = {{"bits", bits}, {"group_size", group}};
  }
  std::printf("sensitive %d, medium %d, robust %d (α at %s)\n", counts[0], counts[1], counts[2],
              precision_name(top));
  if (!export_path.empty()) {
    std::ofstream out(export_path + ".tmp");
    QS_CHECK(out, export_path << ": cannot create");
    out << plan.dump(2) << "\n";
    out.close();
    QS_CHECK(out.good() && std::rename((export_path + ".tmp").c_str(), export_path.c_str()) == 0,
             export_path << ": write failed");
    std::printf("plan: %s\n", export_path.c_str());
  }
  return 0;
}

}  // namespace qsweep
