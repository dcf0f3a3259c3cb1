// cmd_zones.cc — `qsweep zones`: safe / transition / critical blocks from the activation
// statistics (stats/zones.h) and optionally the sensitivity scores; writes zones.csv, zones.md
// (the table and the rule) and zones.html (the table and per-block plots), and with --plan a
// per-layer plan giving each zone's blocks their bits (e.g. 2-bit safe, 4-bit critical).
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "io/sensitivity_file.h"
#include "model/llama_weights.h"
#include "quant/palette.h"
#include "stats/zones.h"
#include "sweep/report_render.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {

// "safe:2,transition:3,critical:4" → zone → bits
std::map<std::string, int> parse_zone_bits(const std::string& s) {
  std::map<std::string, int> m;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t colon = item.find(':');
    QS_CHECK(colon != std::string::npos, "--zone-bits '" << s << "': entry '" << item << "' is not ZONE:BITS");
    const std::string zone = item.substr(0, colon);
    QS_CHECK(zone == "safe" || zone == "transition" || zone == "critical", "--zone-bits: unknown zone '" << zone << "'");
    int bits = 0;
    try {
      bits = std::stoi(item.substr(colon + 1));
    } catch (...) {
      QS_THROW("--zone-bits: '" << item << "': bits must be an integer");
    }
    QS_CHECK(bits >= 2 && bits <= 8, "--zone-bits: " << item << ": bits must be 2..8");
    m[zone] = bits;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  QS_CHECK(m.size() == 3, "--zone-bits '" << s << "': give bits for safe, transition and critical");
  return m;
}

}  // namespace

int cmd_zones(const CommandContext& ctx) {
  std::string stats, sens_dir, out_dir, reference = "3:128", zone_bits = "safe:2,transition:3,critical:4", plan_path;
  ZoneRule rule;
  int group = 128;
  po::options_description desc("qsweep zones options");
  desc.add_options()("help,h", "show this help")
      ("stats", po::value(&stats)->required(), "activation statistics: stats.h5 of qsweep calibrate, or a quantized.h5")
      ("sensitivity", po::value(&sens_dir), "output directory of qsweep sensitivity: adds each block's summed output error")
      ("reference", po::value(&reference)->default_value("3:128"), "the scored candidate whose error is the block's sensitivity")
      ("sparsity-above", po::value(&rule.sparsity)->default_value(0.15), "signal: MLP activation sparsity above this")
      ("entropy-below", po::value(&rule.entropy)->default_value(1.0), "signal: mean attention entropy below this (nats); also the threshold of a specialised head")
      ("max-abs-ratio", po::value(&rule.max_abs_ratio)->default_value(4.0), "signal: max|x| above this x the median block's")
      ("sensitivity-ratio", po::value(&rule.sensitivity_ratio)->default_value(2.0), "signal: sensitivity above this x the median block's")
      ("output-dir", po::value(&out_dir)->default_value("."), "directory for zones.csv, zones.md, zones.html")
      ("plan", po::value(&plan_path), "also write a per-layer plan JSON (for qsweep quantize --plan)")
      ("zone-bits", po::value(&zone_bits)->default_value("safe:2,transition:3,critical:4"), "bits per zone in the plan")
      ("group-size", po::value(&group)->default_value(128), "group size in the plan");
  po::variables_map vm;
  if (!parse_args("zones", "qsweep zones --stats stats.h5 [--sensitivity DIR] [--plan PLAN.json] [options]", desc, ctx.args, vm))
    return 0;
  const std::map<std::string, int> bits_of = parse_zone_bits(zone_bits);
  QS_CHECK(group == -1 || group >= 1, "--group-size " << group << " must be positive or -1");
  std::vector<BlockZone> blocks = read_block_features(stats, rule.entropy);
  if (!sens_dir.empty()) {
    const SensitivityData d = read_sensitivity_file(sens_dir + "/sensitivity.h5");
    const GridSpec ref = parse_palette(reference).at(0);
    size_t c = d.palette.size();
    for (size_t k = 0; k < d.palette.size(); ++k)
      if (d.palette[k].bits == ref.bits && d.palette[k].group_size == ref.group_size) c = k;
    QS_CHECK(c < d.palette.size(), "--reference " << reference << " was not scored (scored: " << palette_string(d.palette) << ")");
    for (BlockZone& z : blocks) z.sensitivity = 0;
    for (size_t l = 0; l < d.layers.size(); ++l) {
      const size_t p = d.layers[l].find("layers.");
      QS_CHECK(p != std::string::npos, sens_dir << "/sensitivity.h5: layer " << d.layers[l] << " is not a decoder linear");
      const int b = std::atoi(d.layers[l].c_str() + p + 7);
      bool found = false;
      for (BlockZone& z : blocks)
        if (z.block == b) z.sensitivity += d.error(l, c), found = true;
      QS_CHECK(found, sens_dir << "/sensitivity.h5 scores block " << b << ", which " << stats << " does not have");
    }
  }
  classify_zones(blocks, rule);
  const bool with_sens = !sens_dir.empty();
  const std::string rule_text = rule.describe(with_sens);

  std::ostringstream csv, md;
  csv << "block,sparsity,max_excess_kurtosis,max_abs,mean_attention_entropy,specialised_heads,sensitivity,signals,zone\n";
  md << "# Criticality zones: " << stats << "\n\nRule: " << rule_text << "\n\n"
     << "| block | sparsity | max kurtosis | max abs | entropy | specialised heads | sensitivity | signals | zone |\n"
     << "|---:|---:|---:|---:|---:|---:|---:|---|---|\n";
  std::map<std::string, int> count;
  for (const BlockZone& z : blocks) {
    std::string sig;
    for (const std::string& s : z.signals) sig += (sig.empty() ? "" : "+") + s;
    char line[512];
    char sens[40] = "";
    if (z.sensitivity >= 0) std::snprintf(sens, sizeof sens, "%.17g", z.sensitivity);
    std::snprintf(line, sizeof line, "%d,%.17g,%.17g,%.17g,%.17g,%.17g,%s,%s,%s\n", z.block, z.sparsity, z.kurtosis, z.max_abs,
                  z.entropy, z.specialised, sens, sig.c_str(), z.zone.c_str());
    csv << line;
    std::snprintf(line, sizeof line, "| %d | %.4f | %.2f | %.3g | %.3f | %.2f | %s | %s | %s |\n", z.block, z.sparsity, z.kurtosis,
                  z.max_abs, z.entropy, z.specialised, z.sensitivity >= 0 ? report_format(z.sensitivity, 6).c_str() : "",
                  sig.c_str(), z.zone.c_str());
    md << line;
    ++count[z.zone];
    result("block %d: %s%s%s", z.block, z.zone.c_str(), sig.empty() ? "" : " (", sig.empty() ? "" : (sig + ")").c_str());
  }
  result("zones: %d safe, %d transition, %d critical. Rule: %s", count["safe"], count["transition"], count["critical"],
         rule_text.c_str());
  // The page: the table and one plot per feature (blocks on the x axis).
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>qsweep zones</title><style>"
       << "body{font:14px system-ui,sans-serif;margin:24px}td,th{border:1px solid #ddd;padding:3px 8px}table{border-collapse:collapse}"
       << "svg.plot text{font-size:11px}svg.plot .frame{fill:none;stroke:#999}svg.plot .grid{stroke:#eee}svg.plot .ref{stroke:#555;stroke-dasharray:5 4}"
       << "</style></head><body><h1>Criticality zones</h1><p>" << html_escape(stats) << "</p><p>Rule: " << html_escape(rule_text)
       << "</p><table><tr><th>block</th><th>zone</th><th>signals</th></tr>";
  for (const BlockZone& z : blocks) {
    std::string sig;
    for (const std::string& s : z.signals) sig += (sig.empty() ? "" : "+") + s;
    html << "<tr><td>" << z.block << "</td><td>" << z.zone << "</td><td>" << sig << "</td></tr>";
  }
  html << "</table>\n";
  struct Feature { const char* title; double BlockZone::*v; double line; bool log; };
  const Feature feats[] = {{"MLP activation sparsity", &BlockZone::sparsity, rule.sparsity, false},
                           {"mean attention entropy (nats)", &BlockZone::entropy, rule.entropy, false},
                           {"max |x| of the block's linear inputs", &BlockZone::max_abs, NAN, true},
                           {"max excess kurtosis", &BlockZone::kurtosis, NAN, true}};
  for (const Feature& f : feats) {
    Plot p;
    p.title = f.title;
    p.xlabel = "block";
    p.ylabel = f.title;
    p.log_y = f.log;
    p.hline = f.line;
    p.hline_label = std::isnan(f.line) ? "" : "threshold";
    std::map<std::string, size_t> idx;
    for (const char* zn : {"safe", "transition", "critical"}) {
      idx[zn] = p.series.size();
      p.series.emplace_back(zn, std::string(zn) == "safe" ? "#2ca02c" : std::string(zn) == "transition" ? "#ff7f0e" : "#d62728");
    }
    for (const BlockZone& z : blocks) {
      PlotSeries& s = p.series[idx[z.zone]];
      s.x.push_back(z.block);
      s.y.push_back(z.*(f.v));
      s.tips.push_back("block " + std::to_string(z.block));
    }
    html << svg_plot(p);
  }
  html << "</body></html>\n";
  if (ctx.comm.rank() == 0) {
    make_dirs(out_dir);
    write_text_atomic(out_dir + "/zones.csv", csv.str());
    write_text_atomic(out_dir + "/zones.md", md.str());
    write_text_atomic(out_dir + "/zones.html", html.str());
    if (!plan_path.empty()) {
      nlohmann::json plan = {{"default", {{"bits", bits_of.at("transition")}, {"group_size", group}}},
                             {"layers", nlohmann::json::object()},
                             {"zones", {{"rule", rule_text}, {"stats", stats}, {"zone_bits", zone_bits}}}};
      for (const BlockZone& z : blocks)
        for (Linear l : {Linear::Q, Linear::K, Linear::V, Linear::O, Linear::Gate, Linear::Up, Linear::Down})
          plan["layers"][linear_module_name(z.block, l)] = {{"bits", bits_of.at(z.zone)}, {"group_size", group}};
      write_text_atomic(plan_path, plan.dump(1) + "\n");
      log_info("wrote %s", plan_path.c_str());
    }
    log_info("wrote %s/zones.csv, zones.md, zones.html", out_dir.c_str());
  }
  return 0;
}

}  // namespace qsweep
