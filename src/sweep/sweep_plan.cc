// sweep_plan.cc — expanding and validating a job file's grid.
#include "sweep/sweep_plan.h"

#include <boost/any.hpp>
#include <cstdio>
#include <set>

#include "core/error.h"
#include "eval/eval_data.h"
#include "eval/tasks.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {

const std::set<std::string> kTopKeys = {"model", "calib", "eval", "tasks", "tasks-format", "output-dir", "threads"};
const std::set<std::string> kSections = {"quantize", "eval", "spectrum", "calibrate"};
// Options a cell may not set: they belong to the job's top level or to the runner.
const std::set<std::string> kRunnerOwned = {"model", "calib", "data", "output-dir", "threads",
                                            "quiet", "help", "quantized"};

// Settings that cannot change a result (memory use only): not part of a cell's id.
const std::set<std::string> kNotInId = {"eval.activation-budget-mb", "quantize.activation-budget-mb",
                                        "quantize.scratch-dir"};

bool parse_bool(const std::string& v, bool* out) {
  if (v == "true" || v == "yes" || v == "on" || v == "1") return *out = true, true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return *out = false, true;
  return false;
}

std::string canonical(const boost::any& a) {
  char buf[64];
  if (auto p = boost::any_cast<int>(&a)) return std::to_string(*p);
  if (auto p = boost::any_cast<int64_t>(&a)) return std::to_string(*p);
  if (auto p = boost::any_cast<uint64_t>(&a)) return std::to_string(*p);
  if (auto p = boost::any_cast<bool>(&a)) return *p ? "true" : "false";
  if (auto p = boost::any_cast<std::string>(&a)) return *p;
  if (auto p = boost::any_cast<double>(&a)) {
    std::snprintf(buf, sizeof(buf), "%.17g", *p);
    return buf;
  }
  QS_ASSERT(false, "option of an unexpected type");
  return "";
}

bool is_switch(const po::option_description& o) {
  return o.semantic()->max_tokens() == 0;
}

// Parses one cell's section values into the stage's option struct, like its command line would.
void parse_cell_section(const JobFile& job, const std::string& section, const po::options_description& desc,
                        const std::vector<std::pair<const JobEntry*, std::string>>& kv,
                        const std::string& label, Params* params) {
  std::vector<std::string> args;
  for (const auto& [e, v] : kv) {
    const po::option_description* o = desc.find_nothrow(e->key, false);
    if (is_switch(*o)) {
      bool on = false;
      QS_CHECK(parse_bool(v, &on), job.path << ": " << e->where() << " = " << v << ": expected true or false");
      if (on) args.push_back("--" + e->key);
    } else {
      args.push_back("--" + e->key);
      args.push_back(v);
    }
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& err) {
    QS_THROW(job.path << ": [" << section << "]" << (label.empty() ? "" : " (cell " + label + ")") << ": "
                      << err.what());
  }
  for (const auto& o : desc.options()) {
    const std::string& name = o->long_name();
    if (vm.count(name)) params->push_back({section + "." + name, canonical(vm[name].value())});
  }
}

// The full-precision evaluation a cell compares against: one per (protocol, ctx, batch).
std::string baseline_key(const EvalArgs& ev) {
  return "fp-" + fnv1a_hex("protocol=" + ev.protocol + "\nctx=" + std::to_string(ev.ctx) +
                               "\nbatch=" + std::to_string(ev.batch) + "\n", 8);
}

}  // namespace

std::string fnv1a_hex(const std::string& s, int digits) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf).substr(0, digits);
}

const BaselineSpec* SweepPlan::baseline(const std::string& key) const {
  for (const auto& b : baselines)
    if (b.key == key) return &b;
  return nullptr;
}

std::vector<std::string> section_args(const JobFile& job, const std::string& section,
                                      const std::vector<std::string>& switches) {
  std::vector<std::string> args;
  for (const JobEntry* e : job.section(section)) {
    QS_CHECK(!kRunnerOwned.count(e->key), job.path << ": " << e->where()
                                                   << ": set by the runner or at the top of the job file, not in a section");
    bool sw = false;
    for (const auto& s : switches) sw |= s == e->key;
    if (sw) {
      bool on = false;
      QS_CHECK(parse_bool(e->raw, &on), job.path << ": " << e->where() << " = " << e->raw << ": expected true or false");
      if (on) args.push_back("--" + e->key);
    } else {
      args.push_back("--" + e->key);
      args.push_back(e->raw);
    }
  }
  return args;
}

SweepPlan make_sweep_plan(JobFile job) {
  SweepPlan plan;
  const std::string& f = job.path;
  for (const auto& e : job.entries) {
    if (e.section.empty()) {
      QS_CHECK(kTopKeys.count(e.key), f << ": unknown top-level key '" << e.key
                                       << "' (expected model, calib, eval, tasks, tasks-format, output-dir, threads; "
                                          "subcommand options go in a [quantize], [eval], [spectrum] or [calibrate] section)");
      QS_CHECK(e.values.size() == 1 && !e.raw.empty(), f << ": " << e.key << " needs one value");
    } else {
      QS_CHECK(kSections.count(e.section), f << ": unknown section [" << e.section
                                            << "] (expected quantize, eval, spectrum or calibrate)");
      QS_CHECK(!kRunnerOwned.count(e.key),
               f << ": " << e.where() << ": " << (e.key == "model" || e.key == "calib" || e.key == "data"
                                                      ? "paths are shared by every cell: set model, calib and eval at the top of the job file"
                                                      : "set by qsweep run, not by the job file"));
    }
  }
  auto top = [&](const char* k) {
    const JobEntry* e = job.find("", k);
    return e ? e->raw : std::string();
  };
  QS_CHECK(!top("model").empty(), f << ": no 'model' (the model directory, relative to the job file's folder)");
  plan.model = job.resolve(top("model"));
  if (!top("calib").empty()) plan.calib = job.resolve(top("calib"));
  if (!top("eval").empty()) {  // a list of files, not a grid axis
    for (const std::string& e : split_data_list(top("eval"), f + ": eval")) plan.eval_files.push_back(job.resolve(e));
    plan.eval_names = dataset_names(plan.eval_files);
    for (const std::string& e : plan.eval_files) plan.eval_data += (plan.eval_data.empty() ? "" : ",") + e;
  }
  if (!top("tasks").empty()) {  // multiple-choice task files: a list, scored with the evaluation
    for (const std::string& t : split_data_list(top("tasks"), f + ": tasks")) plan.task_files.push_back(job.resolve(t));
    plan.task_names = dataset_names(plan.task_files);
    for (const std::string& t : plan.task_files) plan.tasks += (plan.tasks.empty() ? "" : ",") + t;
    QS_CHECK(!plan.eval_data.empty(), f << ": tasks need 'eval' (an evaluation text) too: they are scored by the eval stage");
  }
  if (!top("tasks-format").empty()) {
    plan.tasks_format = top("tasks-format");
    try {
      parse_task_format(plan.tasks_format);
    } catch (const Error& e) {
      QS_THROW(f << ": tasks-format = " << plan.tasks_format << ": expected jsonl or hellaswag");
    }
  }
  if (!top("output-dir").empty()) plan.output_dir = job.resolve(top("output-dir"));
  if (!top("threads").empty()) {
    try {
      plan.threads = std::stoi(top("threads"));
    } catch (...) {
      QS_THROW(f << ": threads = " << top("threads") << ": expected an integer");
    }
  }
  const std::vector<std::string> secs = job.sections();
  auto has = [&](const char* s) {
    for (const auto& x : secs)
      if (x == s) return true;
    return false;
  };
  const bool quantize = has("quantize");
  QS_CHECK(!quantize || !plan.calib.empty(), f << ": [quantize] needs 'calib' (the calibration text) at the top level");
  QS_CHECK(!has("calibrate") || !plan.calib.empty(), f << ": [calibrate] needs 'calib' at the top level");
  QS_CHECK(!has("eval") || !plan.eval_data.empty(), f << ": [eval] needs 'eval' (the evaluation text) at the top level");

  // Validate each section's keys against the subcommand's options.
  QuantizeArgs qa;
  EvalArgs ea;
  po::options_description qdesc, edesc;
  add_quantize_cell_options(qdesc, qa);
  add_eval_cell_options(edesc, ea);
  for (const auto& e : job.entries) {
    if (!is_grid_section(e.section)) continue;
    const po::options_description& d = e.section == "quantize" ? qdesc : edesc;
    if (!d.find_nothrow(e.key, false)) {
      std::string known;
      for (const auto& o : d.options()) known += (known.empty() ? "" : ", ") + o->long_name();
      QS_THROW(f << ": " << e.where() << ": not an option of qsweep " << e.section << " (known: " << known << ")");
    }
  }
  plan.axes = grid_axes(job);
  plan.spectrum = has("spectrum");
  plan.calibrate = has("calibrate");
  if (plan.spectrum) plan.spectrum_args = section_args(job, "spectrum", {"save-eigenvalues", "no-plots"});
  if (plan.calibrate) plan.calibrate_args = section_args(job, "calibrate", {});

  if (!quantize && plan.eval_data.empty()) return plan.job = std::move(job), plan;
  const auto points = quantize ? grid_points(plan.axes) : std::vector<std::vector<int>>{};
  for (size_t c = 0; c < points.size(); ++c) {
    SweepCell cell;
    cell.index = static_cast<int>(c);
    std::vector<std::pair<const JobEntry*, std::string>> qkv, ekv;
    std::string label;
    for (const auto& e : job.entries) {
      if (!is_grid_section(e.section)) continue;
      std::string v = e.values.front();
      for (size_t a = 0; a < plan.axes.size(); ++a)
        if (plan.axes[a].section == e.section && plan.axes[a].key == e.key) {
          v = e.values[points[c][a]];
          label += (label.empty() ? "" : " ") + e.key + "=" + v;
        }
      (e.section == "quantize" ? qkv : ekv).push_back({&e, v});
    }
    cell.label = label;
    QuantizeArgs q;
    EvalArgs ev;
    po::options_description qd, ed;
    add_quantize_cell_options(qd, q);
    add_eval_cell_options(ed, ev);
    parse_cell_section(job, "quantize", qd, qkv, label, &cell.params);
    parse_cell_section(job, "eval", ed, ekv, label, &cell.params);
    try {
      finish_quantize_args(q);
      finish_eval_args(ev);
    } catch (const Error& err) {
      QS_THROW(f << ": cell " << (label.empty() ? "0" : label) << ": " << err.what());
    }
    if (!q.plan.empty()) q.plan = job.resolve(q.plan);
    cell.quantize = q;
    cell.eval = ev;
    std::string canon;
    for (const auto& [k, v] : cell.params)
      if (!kNotInId.count(k)) canon += k + "=" + v + "\n";
    cell.id = fnv1a_hex(canon, 12);
    for (const auto& other : plan.cells)
      QS_CHECK(other.id != cell.id, f << ": cells '" << other.label << "' and '" << label
                                      << "' are the same experiment (a repeated value on an axis?)");
    if (!plan.eval_data.empty()) {
      cell.baseline = baseline_key(ev);
      bool found = false;
      for (auto& b : plan.baselines)
        if (b.key == cell.baseline) found = true, b.eval.kl |= ev.kl;
      if (!found) plan.baselines.push_back({cell.baseline, ev});
    }
    plan.cells.push_back(std::move(cell));
  }
  if (!quantize && !plan.eval_data.empty()) {  // a job without cells still evaluates the model
    EvalArgs ev;
    po::options_description ed;
    add_eval_cell_options(ed, ev);
    Params params;  // a baseline has no cell id
    std::vector<std::pair<const JobEntry*, std::string>> ekv;
    for (const JobEntry* e : job.section("eval")) {
      QS_CHECK(e->values.size() == 1, f << ": " << e->where() << ": a grid axis needs a [quantize] section");
      ekv.push_back({e, e->raw});
    }
    parse_cell_section(job, "eval", ed, ekv, "", &params);
    finish_eval_args(ev);
    ev.kl = false;
    plan.baselines.push_back({baseline_key(ev), ev});
  }
  plan.job = std::move(job);
  return plan;
}

}  // namespace qsweep
