// sweep_plan.cc — expanding and validating a job file's grid.
#include "sweep/sweep_plan.h"

#include <algorithm>
#include <boost/any.hpp>
#include <cmath>
#include <cstdio>
#include <set>

#include "core/device.h"
#include "core/error.h"
#include "eval/eval_data.h"
#include "eval/tasks.h"
#include "quant/palette.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {

const std::set<std::string> kTopKeys = {"model", "calib", "eval", "tasks", "tasks-format", "output-dir", "threads", "device", "compute-dtype"};
const std::set<std::string> kSections = {"quantize", "eval", "spectrum", "calibrate", "sensitivity", "allocate"};
// [quantize] keys a shared sensitivity stage does not inherit from its cells: the candidates
// replace bits and group size, and scoring is always on full-precision inputs.
const std::set<std::string> kNotForSensitivity = {"bits", "group-size", "plan", "no-propagate", "quantize-lm-head"};

bool is_allocate_section(const std::string& s) { return s == "allocate" || s.rfind("allocate.", 0) == 0; }
// "quantize.greedy" -> "quantize": variant sections ([quantize.NAME], [allocate.NAME]) are
// sub-grids of their base section.
std::string base_section(const std::string& s) { return s.substr(0, s.find('.')); }
bool is_variant_section(const std::string& s) {
  return s.find('.') != std::string::npos && (base_section(s) == "quantize" || base_section(s) == "allocate");
}
// Options a cell may not set: they belong to the job's top level or to the runner.
const std::set<std::string> kRunnerOwned = {"model", "calib", "data", "output-dir", "threads", "device", "compute-dtype",
                                            "quiet", "help", "quantized"};

// Options added after sweeps existed, at their default: not part of a cell's id, so a sweep
// started before them resumes with the same cell ids (a non-default value is part of the id).
const std::set<std::pair<std::string, std::string>> kNewAtDefault = {
    {"quantize.refine", "none"}, {"quantize.outlier-percent", "0.050000000000000003"}, {"quantize.noise-std", "0"},
    {"quantize.n-noise-samples", "3"}, {"quantize.init", "minmax"}, {"quantize.budget-from", ""},
    {"quantize.budget-score", "auto"}, {"quantize.budget-epochs-gain", "1"}, {"quantize.budget-lr-gain", "0.5"}};
bool in_id(const std::string& k, const std::string& v);

// Settings that cannot change a result (memory use only): not part of a cell's id.
const std::set<std::string> kNotInId = {"eval.activation-budget-mb", "quantize.activation-budget-mb",
                                        "quantize.scratch-dir", "sensitivity.activation-budget-mb",
                                        "sensitivity.scratch-dir"};

bool in_id(const std::string& k, const std::string& v) { return !kNotInId.count(k) && !kNewAtDefault.count({k, v}); }

// Settings inert for the cell's other settings: not part of its id, so sweeps started before
// they existed resume. --refine-damp acts on greedy-exact only (which ran undamped, 0, before it);
// Block-AP's training options act on --method blockap only.
const std::set<std::string> kBlockApOnly = {"quantize.epochs", "quantize.train-batch", "quantize.weight-lr",
                                            "quantize.quant-lr", "quantize.val-windows", "quantize.patience",
                                            "quantize.init", "quantize.budget-from", "quantize.budget-score",
                                            "quantize.budget-epochs-gain", "quantize.budget-lr-gain"};
std::string param(const Params& params, const std::string& key) {
  for (const auto& [pk, pv] : params)
    if (pk == key) return pv;
  return "";
}
bool inert(const std::string& k, const std::string& v, const Params& params) {
  if (k == "quantize.refine-damp") return v == "0" || param(params, "quantize.refine") != "greedy-exact";
  if (kBlockApOnly.count(k)) return param(params, "quantize.method") != "blockap";
  return false;
}

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
                        const std::string& label, Params* params, std::vector<std::string>* args_out = nullptr) {
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
  if (args_out) *args_out = args;
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

const SensitivitySpec* SweepPlan::sensitivity(const std::string& key) const {
  for (const auto& x : sensitivities)
    if (x.key == key) return &x;
  return nullptr;
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
                                       << "' (expected model, calib, eval, tasks, tasks-format, output-dir, threads, device, compute-dtype; "
                                          "subcommand options go in a [quantize], [eval], [spectrum] or [calibrate] section)");
      QS_CHECK(e.values.size() == 1 && !e.raw.empty(), f << ": " << e.key << " needs one value");
    } else {
      QS_CHECK(kSections.count(e.section) || is_variant_section(e.section),
               f << ": unknown section [" << e.section
                 << "] (expected quantize, eval, spectrum, calibrate, sensitivity, allocate, quantize.NAME or allocate.NAME)");
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
  if (!top("device").empty()) {
    plan.device = top("device");
    parse_device_choice(plan.device, f + ": device =");
  }
  if (!top("compute-dtype").empty()) {
    plan.compute_dtype = top("compute-dtype");
    parse_compute_dtype(plan.compute_dtype, f + ": compute-dtype =");
  }
  const std::vector<std::string> secs = job.sections();
  auto has = [&](const char* s) {
    for (const auto& x : secs)
      if (x == s) return true;
    return false;
  };
  bool quantize = has("quantize");
  for (const auto& x : secs) quantize |= base_section(x) == "quantize";
  QS_CHECK(!quantize || !plan.calib.empty(), f << ": [quantize] needs 'calib' (the calibration text) at the top level");
  QS_CHECK(!has("calibrate") || !plan.calib.empty(), f << ": [calibrate] needs 'calib' at the top level");
  QS_CHECK(!has("eval") || !plan.eval_data.empty(), f << ": [eval] needs 'eval' (the evaluation text) at the top level");

  // Validate each section's keys against the subcommand's options.
  QuantizeArgs qa;
  EvalArgs ea;
  AllocateRequest ar;
  SensitivityArgs sarg;
  QuantizeArgs sqa;
  po::options_description qdesc, edesc, adesc, sdesc;
  add_quantize_cell_options(qdesc, qa);
  add_eval_cell_options(edesc, ea);
  add_allocate_cell_options(adesc, ar);
  add_quantize_cell_options(sdesc, sqa);
  add_sensitivity_options(sdesc, sarg);
  for (const auto& e : job.entries) {
    if (!is_grid_section(e.section) && e.section != "sensitivity") continue;
    const std::string cmd = base_section(e.section);
    const po::options_description& d = cmd == "quantize" ? qdesc : cmd == "eval" ? edesc : cmd == "sensitivity" ? sdesc : adesc;
    if (!d.find_nothrow(e.key, false)) {
      std::string known;
      for (const auto& o : d.options()) known += (known.empty() ? "" : ", ") + o->long_name();
      QS_THROW(f << ": " << e.where() << ": not an option of qsweep " << cmd << " (known: " << known << ")");
    }
  }
  QS_CHECK(!has("sensitivity") || quantize, f << ": [sensitivity] needs a [quantize] section (its method and calibration)");
  // Variants: [quantize.NAME] and [allocate.NAME] sections are separate sub-grids, each with its
  // base section's keys (which its own replace) and the other sections; the cells of every
  // combination of one quantize variant and one allocate variant are joined into one sweep, and a
  // cell two combinations share runs once.
  std::vector<std::string> qvariants, avariants;
  bool any_allocate = false;
  for (const auto& x : secs) {
    any_allocate |= is_allocate_section(x);
    if (x.rfind("allocate.", 0) == 0) avariants.push_back(x);
    if (x.rfind("quantize.", 0) == 0) qvariants.push_back(x);
  }
  if (avariants.empty()) avariants.push_back("");
  if (qvariants.empty()) qvariants.push_back("");
  QS_CHECK(!any_allocate || quantize, f << ": [allocate] needs a [quantize] section (the method its cells quantize with)");
  QS_CHECK(!any_allocate || !plan.calib.empty(), f << ": [allocate] needs 'calib' at the top level");
  plan.spectrum = has("spectrum");
  plan.calibrate = has("calibrate");
  if (plan.spectrum) plan.spectrum_args = section_args(job, "spectrum", {"save-eigenvalues", "no-plots"});
  if (plan.calibrate) plan.calibrate_args = section_args(job, "calibrate", {});

  // The [sensitivity] section's own palette (explicit palette or strategy), if any.
  std::vector<GridSpec> section_palette;
  bool section_has_palette = false, section_kl = false, section_fisher = false;
  {
    po::options_description d;
    QuantizeArgs q;
    SensitivityArgs sa;
    add_quantize_cell_options(d, q);
    add_sensitivity_options(d, sa);
    std::vector<std::pair<const JobEntry*, std::string>> kv;
    for (const JobEntry* e : job.section("sensitivity")) {
      QS_CHECK(!kRunnerOwned.count(e->key), f << ": " << e->where() << ": set by the runner or at the top of the job file");
      kv.push_back({e, e->raw});
    }
    Params ignore;
    std::vector<std::pair<const JobEntry*, std::string>> kv2 = kv;
    // Parsed with a placeholder method when the section has none (the cells' method is used).
    JobEntry m;
    m.section = "sensitivity";
    m.key = "method";
    bool has_method = false;
    for (auto& x : kv2) has_method |= x.first->key == "method";
    if (!has_method) kv2.push_back({&m, "rtn"});
    parse_cell_section(job, "sensitivity", d, kv2, "", &ignore);
    try {
      if (!sa.palette.empty()) section_palette = parse_palette(sa.palette), section_has_palette = true;
      else if (!sa.strategy.empty()) section_palette = strategy_palette(sa.strategy), section_has_palette = true;
      for (const std::string& x : split_data_list(sa.scores, "score")) section_kl |= x == "kl-probe", section_fisher |= x == "fisher";
    } catch (const Error& e) {
      QS_THROW(f << ": [sensitivity]: " << e.what());
    }
  }

  auto expand = [&](const JobFile& vjob, const std::string& prefix, const std::string& qvariant) {
    const std::vector<Axis> axes = grid_axes(vjob);
    for (const Axis& a : axes) {
      bool seen = false;
      for (const Axis& b : plan.axes) seen |= a.section == b.section && a.key == b.key;
      if (!seen) plan.axes.push_back(a);
    }
    const bool allocating = !vjob.section("allocate").empty();
    const auto points = grid_points(axes);
    std::vector<std::string> ids_here;
    for (size_t c = 0; c < points.size(); ++c) {
      SweepCell cell;
      cell.index = static_cast<int>(plan.cells.size());
      std::vector<std::pair<const JobEntry*, std::string>> qkv, ekv, akv;
      std::string label = prefix;  // "A target-avg-bits=3", "greedy bits=3"
      for (const auto& e : vjob.entries) {
        if (!is_grid_section(e.section)) continue;
        std::string v = e.values.front();
        for (size_t a = 0; a < axes.size(); ++a)
          if (axes[a].section == e.section && axes[a].key == e.key) {
            v = e.values[points[c][a]];
            label += (label.empty() ? "" : " ") + e.key + "=" + v;
          }
        (e.section == "quantize" ? qkv : e.section == "eval" ? ekv : akv).push_back({&e, v});
      }
      // A grid over methods shares its [quantize] keys: Block-AP's training keys apply to its cells
      // only (the others would refuse them), as they are left out of the others' ids.
      std::string method = "rtn";
      for (const auto& [e, v] : qkv)
        if (e->key == "method") method = v;
      if (method != "blockap")
        qkv.erase(std::remove_if(qkv.begin(), qkv.end(), [](const auto& kv) { return kBlockApOnly.count("quantize." + kv.first->key) > 0; }),
                  qkv.end());
      cell.label = label;
      if (!qvariant.empty()) cell.params.push_back({"quantize.variant", qvariant});  // the study's method name
      QuantizeArgs q;
      EvalArgs ev;
      po::options_description qd, ed;
      add_quantize_cell_options(qd, q);
      add_eval_cell_options(ed, ev);
      parse_cell_section(vjob, "quantize", qd, qkv, label, &cell.params);
      parse_cell_section(vjob, "eval", ed, ekv, label, &cell.params);
      if (!q.opt.blockap.budget_from.empty()) q.opt.blockap.budget_from = job.resolve(q.opt.blockap.budget_from);
      try {
        finish_quantize_args(q);
        finish_eval_args(ev);
      } catch (const Error& err) {
        QS_THROW(f << ": cell " << (label.empty() ? "0" : label) << ": " << err.what());
      }
      if (!q.plan.empty()) q.plan = job.resolve(q.plan);
      if (allocating) {
        QS_CHECK(q.plan.empty(), f << ": cell " << label << ": [quantize] plan and [allocate] both choose the layers' bits: give one");
        cell.allocated = true;
        po::options_description ad;
        add_allocate_cell_options(ad, cell.allocate);
        const size_t first_allocate = cell.params.size();
        parse_cell_section(vjob, "allocate", ad, akv, label, &cell.params);
        if (std::isnan(cell.allocate.avg_bits) && std::isnan(cell.allocate.size_mb) && !cell.allocate.strategy.empty()) {
          // A strategy's natural target, spelled as if written out: the same cell either way.
          try {
            cell.allocate.avg_bits = natural_target_bits(cell.allocate.strategy);
          } catch (const Error& err) {
            QS_THROW(f << ": cell " << label << ": [allocate]: " << err.what());
          }
          cell.params.insert(cell.params.begin() + static_cast<long>(first_allocate),
                             {"allocate.target-avg-bits", canonical(boost::any(cell.allocate.avg_bits))});
        }
        // The sensitivity stage this cell's plan comes from: its [quantize] settings that shape
        // the scores, with [sensitivity] on top.
        std::vector<std::pair<const JobEntry*, std::string>> skv;
        for (const auto& [e, v] : qkv) {
          bool overridden = kNotForSensitivity.count(e->key) > 0;
          for (const JobEntry* se : job.section("sensitivity")) overridden |= se->key == e->key;
          if (!overridden) skv.push_back({e, v});
        }
        for (const JobEntry* se : job.section("sensitivity"))
          if (se->key != "palette" && se->key != "strategy") skv.push_back({se, se->raw});
        po::options_description sd;
        QuantizeArgs sq;
        SensitivityArgs sa;
        add_quantize_cell_options(sd, sq);
        add_sensitivity_options(sd, sa);
        Params sparams;
        std::vector<std::string> sargs;
        parse_cell_section(vjob, "sensitivity", sd, skv, label, &sparams, &sargs);
        std::string canon = section_has_palette ? "palette=" + palette_string(section_palette) + "\n" : "";
        for (const auto& [k, v] : sparams)
          if (!kNotInId.count(k)) canon += k + "=" + v + "\n";
        cell.sensitivity = "sens-" + fnv1a_hex(canon, 8);
        cell.params.push_back({"allocate.sensitivity", cell.sensitivity});
        try {
          for (auto& a : sargs)
            if (a == "--probe-data") a = "";  // resolved below
          for (size_t i = 0; i + 1 < sargs.size(); ++i)
            if (sargs[i].empty()) sargs[i] = "--probe-data", sargs[i + 1] = job.resolve(sargs[i + 1]);
          if (!cell.allocate.score.empty()) {
            QS_CHECK(cell.allocate.score == "kl-probe" || cell.allocate.score == "output-error" || cell.allocate.score == "fisher",
                     "score = " << cell.allocate.score << ": expected kl-probe, fisher or output-error (alpha cannot price candidates)");
            QS_CHECK(cell.allocate.score != "kl-probe" || section_kl,
                     "score = kl-probe needs [sensitivity] score = output-error,kl-probe");
            QS_CHECK(cell.allocate.score != "fisher" || section_fisher,
                     "score = fisher needs [sensitivity] score = output-error,fisher");
          }
          QS_CHECK(std::isnan(cell.allocate.avg_bits) || std::isnan(cell.allocate.size_mb),
                   "give one budget: target-avg-bits or target-size-mb");
          QS_CHECK(!std::isnan(cell.allocate.avg_bits) || !std::isnan(cell.allocate.size_mb) || !cell.allocate.strategy.empty(),
                   "no budget: give target-avg-bits or target-size-mb (or a strategy, whose natural target is used)");
          if (!cell.allocate.strategy.empty()) natural_target_bits(cell.allocate.strategy);
          const std::vector<GridSpec> dflt = section_has_palette ? section_palette : strategy_palette("adaptive");
          cell.alloc_palette = request_palette(cell.allocate, dflt);
          if (section_has_palette)
            for (const GridSpec& g : cell.alloc_palette) {
              bool in = false;
              for (const GridSpec& h : section_palette) in |= g.bits == h.bits && g.group_size == h.group_size;
              QS_CHECK(in, "candidate " << g.bits << ":" << g.group_size << " is not in [sensitivity]'s palette "
                                        << palette_string(section_palette));
            }
        } catch (const Error& err) {
          QS_THROW(f << ": cell " << (label.empty() ? "0" : label) << ": [allocate]: " << err.what());
        }
        SensitivitySpec* spec = nullptr;
        for (auto& x : plan.sensitivities)
          if (x.key == cell.sensitivity) spec = &x;
        if (!spec) {
          plan.sensitivities.push_back({cell.sensitivity, sargs, section_has_palette ? section_palette : std::vector<GridSpec>{}, section_kl, section_fisher});
          spec = &plan.sensitivities.back();
        }
        if (!section_has_palette)
          for (const GridSpec& g : cell.alloc_palette) {
            bool in = false;
            for (const GridSpec& h : spec->palette) in |= g.bits == h.bits && g.group_size == h.group_size;
            if (!in) spec->palette.push_back(g);
          }
      }
      cell.quantize = q;
      cell.eval = ev;
      std::string canon;
      for (const auto& [k, v] : cell.params)
        if (in_id(k, v) && !inert(k, v, cell.params)) canon += k + "=" + v + "\n";
      cell.id = fnv1a_hex(canon, 12);
      bool repeat = false;
      for (const auto& other : plan.cells)
        if (other.id == cell.id) {
          QS_CHECK(std::find(ids_here.begin(), ids_here.end(), cell.id) == ids_here.end(),
                   f << ": cells '" << other.label << "' and '" << label << "' are the same experiment (a repeated value on an axis?)");
          repeat = true;  // another variant has it already
        }
      ids_here.push_back(cell.id);
      if (repeat) continue;
      if (!plan.eval_data.empty()) {
        cell.baseline = baseline_key(ev);
        bool found = false;
        for (auto& b : plan.baselines)
          if (b.key == cell.baseline) found = true, b.eval.kl |= ev.kl;
        if (!found) plan.baselines.push_back({cell.baseline, ev});
      }
      plan.cells.push_back(std::move(cell));
    }
  };
  if (quantize) {
    for (const std::string& qv : qvariants)
      for (const std::string& av : avariants) {
        JobFile vjob = job;  // the chosen variants' keys join (and replace) their base sections'
        vjob.entries.clear();
        for (const JobEntry& e : job.entries) {
          const std::string& v = e.section == "quantize" ? qv : e.section == "allocate" ? av : std::string();
          if (!v.empty() && job.find(v, e.key)) continue;  // the variant's value wins
          if (is_variant_section(e.section)) {
            if (e.section != qv && e.section != av) continue;
            JobEntry r = e;
            r.section = base_section(e.section);
            vjob.entries.push_back(r);
          } else {
            vjob.entries.push_back(e);
          }
        }
        std::string prefix;
        for (const std::string& v : {qv, av})
          if (!v.empty()) prefix += (prefix.empty() ? "" : "+") + v.substr(v.find('.') + 1);
        expand(vjob, prefix, qv.empty() ? "" : qv.substr(qv.find('.') + 1));
      }
    if (qvariants.front() != "") {  // the variant is an axis of the sweep (report: compared like methods)
      Axis a{"quantize", "variant", {}};
      for (const std::string& v : qvariants) a.values.push_back(v.substr(v.find('.') + 1));
      plan.axes.insert(plan.axes.begin(), a);
    }
    for (auto& sp : plan.sensitivities)
      std::sort(sp.palette.begin(), sp.palette.end(), [](const GridSpec& a, const GridSpec& b) {
        return a.bits != b.bits ? a.bits < b.bits : a.group_size < b.group_size;
      });
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
