// sweep_plan.h — a job file turned into the list of cells a sweep runs, validated before any work:
// every key is checked against the subcommand's own option definitions (sweep/stage_args.h) by
// parsing each cell exactly as `qsweep quantize` / `qsweep eval` would parse its command line.
//
// A cell's id is a hash of its normalised parameters — every option of its [quantize] and
// [eval] sections with the value it takes after parsing (defaults included, numbers in one
// canonical spelling) — so the same cell has the same id in every run, whatever the order or
// spelling of the job file. Top-level paths are not part of the id: a sweep directory belongs to
// one model and data set, which `qsweep run --resume` checks separately.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "sweep/job_file.h"
#include "sweep/stage_args.h"

namespace qsweep {

using Params = std::vector<std::pair<std::string, std::string>>;  // "quantize.bits" -> "3"

struct SweepCell {
  int index = 0;
  // [allocate] cells: their plan is allocated from the shared sensitivity `sensitivity` (a
  // SensitivitySpec key) just before they quantize.
  bool allocated = false;
  AllocateRequest allocate;
  std::vector<GridSpec> alloc_palette;  // the candidates it chooses from
  std::string sensitivity;
  std::string id;     // 12 hex digits
  std::string label;  // the cell's grid coordinates: "method=rtn bits=3 group-size=64"
  Params params;      // normalised, quantize.* then eval.*
  QuantizeArgs quantize;  // parsed and checked
  EvalArgs eval;
  std::string baseline;  // the full-precision evaluation it compares against ("" without eval)
};

struct BaselineSpec {  // one per distinct evaluation setting (protocol, ctx, batch)
  std::string key;     // "fp-<8 hex>"
  EvalArgs eval;       // kl = whether any cell needs the reference hidden states
};

// One shared `qsweep sensitivity` run: the cells' [quantize] settings that shape the scores
// (method, calibration) with the [sensitivity] section on top; palette: the section's, else the
// union of the candidates its cells choose from (a candidate's scores do not depend on the
// others, so adding one re-scores but does not change the cells that were there).
struct SensitivitySpec {
  std::string key;                // "sens-<8 hex>" of the normalised settings, palette excluded unless set
  std::vector<std::string> args;  // qsweep sensitivity's options, without model, calib, output-dir, threads, palette
  std::vector<GridSpec> palette;
  bool has_kl = false;
  bool has_fisher = false;
};

struct SweepPlan {
  JobFile job;
  std::string model, calib, eval_data;  // resolved against the job file's folder (eval_data: the
                                        // evaluation files joined with commas)
  std::vector<std::string> eval_files, eval_names;  // each evaluation file and its dataset name
  std::vector<std::string> task_files, task_names;  // multiple-choice task files (top-level tasks = ...)
  std::string tasks, tasks_format = "jsonl";        // tasks: the files joined with commas
  std::string output_dir;               // top-level output-dir (resolved), may be empty
  int threads = 0;
  std::string device;  // top-level device = auto|cpu|cuda (empty: auto; qsweep run --device wins)
  std::string compute_dtype;  // top-level compute-dtype = fp32|bf16|tf32x3 (empty: fp32; --compute-dtype wins)
  std::vector<Axis> axes;
  std::vector<SweepCell> cells;  // grid order
  std::vector<BaselineSpec> baselines;
  std::vector<SensitivitySpec> sensitivities;
  bool spectrum = false, calibrate = false;
  std::vector<std::string> spectrum_args, calibrate_args;  // the sections as command-line args
  const BaselineSpec* baseline(const std::string& key) const;
  const SensitivitySpec* sensitivity(const std::string& key) const;
};

SweepPlan make_sweep_plan(JobFile job);

// Section entries as command-line arguments ("--key", "value"; a switch is present when true).
// `switches` names the options that take no value.
std::vector<std::string> section_args(const JobFile& job, const std::string& section,
                                      const std::vector<std::string>& switches);

std::string fnv1a_hex(const std::string& s, int digits);

}  // namespace qsweep
