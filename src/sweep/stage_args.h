// stage_args.h — the options of the two stages a sweep cell runs, `quantize` and `eval`, defined
// once: the subcommands and the job-file runner (`qsweep run`) build their option parsers from the
// same functions, so a job-file key is exactly a subcommand's long option, with the same default,
// type and check. "Cell options" are the ones a job file may set in a [quantize] or [eval]
// section; the paths, threads and output directory belong to the command or the runner.
#pragma once
#include <boost/program_options.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "eval/perplexity.h"
#include "eval/task_scoring.h"
#include "eval/windows.h"
#include "quant/allocate_plan.h"
#include "quant/quantize_model.h"

namespace qsweep {

class H5Writer;
struct Provenance;

struct QuantizeArgs {
  std::string method, plan, refine = "none";
  int n_calib = 128, seq_len = 256;
  int64_t activation_mb = 1024;
  uint64_t seed = 0;
  bool no_propagate = false, lm_head = false;
  QuantizeOptions opt;  // bits, group size, sym, chunk, AWQ/GPTQ settings are parsed into it
};

// The calibration windows of a command (quantize, sensitivity, calibrate): the text's tokens (token
// cache read by every rank, written by rank 0), windows drawn with the tokenizer's special prefix.
CalibWindows command_calib_windows(const std::string& model_dir, const std::string& calib_path, int vocab_size,
                                   int bos_id, int n_calib, int seq_len, uint64_t seed, const Comm& comm);

// Adds the [quantize] cell options bound to `a`.
void add_quantize_cell_options(boost::program_options::options_description& d, QuantizeArgs& a);
// Checks the parsed values (throws qsweep::Error naming the option) and completes a.opt.
void finish_quantize_args(QuantizeArgs& a);
// Reads a --plan JSON ({"default": {bits, group_size}, "layers": {module: {...}}}); `dflt` is
// updated by "default".
std::map<std::string, GridSpec> read_plan(const std::string& path, GridSpec* dflt);
// The same from a parsed JSON; `path` names it in errors.
std::map<std::string, GridSpec> plan_from_json(const nlohmann::json& j, const std::string& path, GridSpec* dflt);
// The quantization settings as attributes of quantized.h5's root (and of sweep cells).
void write_quantize_attrs(H5Writer& w, const QuantizeArgs& a, const QuantizeSummary& s);

// `qsweep sensitivity`'s own options (besides the [quantize] cell options it shares); a sweep's
// [sensitivity] section sets them.
struct SensitivityArgs {
  std::string strategy, palette, scores = "output-error", probe_data;  // strategy "": adaptive
  int probe_windows = 16, probe_ctx = 0;
  int fisher_windows = 16;
};
void add_sensitivity_options(boost::program_options::options_description& d, SensitivityArgs& a);
// The budget and candidates of an allocation: `qsweep allocate` and a sweep's [allocate] cells.
void add_allocate_cell_options(boost::program_options::options_description& d, AllocateRequest& q);

struct EvalArgs {
  std::string protocol = "gptq";
  int ctx = 256, batch = 4;
  int64_t activation_mb = 1024;
  bool kl = false;
};

void add_eval_cell_options(boost::program_options::options_description& d, EvalArgs& a);
void finish_eval_args(const EvalArgs& a);
EvalOptions eval_options(const EvalArgs& a, bool progress);

// What eval.h5 holds (see cmd_eval.cc): settings, results, per-window NLL (and KL), provenance.
struct EvalRecord {
  std::string model, data, quantized;
  const EvalArgs* args = nullptr;
  const EvalWindows* windows = nullptr;
  const EvalResult* result = nullptr;
  const Provenance* provenance = nullptr;
};
void write_eval_file(const std::string& path, const EvalRecord& r);
// Several datasets (names from eval/eval_data.h): the root holds the first one's results and
// windows, as a one-dataset file does; /datasets/<name> holds each one's (the first's too), and
// the root attribute "datasets" lists the names in order.
void write_eval_file(const std::string& path, const std::vector<EvalRecord>& recs, const std::vector<std::string>& names);

// Multiple-choice results: /tasks/<name> per task file (attributes: file, format, n, the three
// accuracies with "_stderr", chance, p_vs_chance, n_too_long; datasets: per task index, gold and
// the three predictions, per choice the log-probability sum, its tokens, llama.cpp's mean, the
// characters, and choice_offset per task), the root attribute "task_sets" listing the names.
struct TaskRecord {
  std::string file, format, name;
  const std::vector<Task>* tasks = nullptr;
  const TaskResult* result = nullptr;
};
struct EvalFileContents {
  std::string model, quantized;
  const EvalArgs* args = nullptr;
  const Provenance* provenance = nullptr;
  std::vector<EvalRecord> datasets;  // may be empty (tasks only)
  std::vector<std::string> dataset_names;
  std::vector<TaskRecord> tasks;
};
void write_eval_file(const std::string& path, const EvalFileContents& c);

}  // namespace qsweep
