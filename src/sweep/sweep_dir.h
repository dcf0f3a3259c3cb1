// sweep_dir.h — the layout of a sweep's output directory and the state of its cells, read from
// the files alone (no lock, no daemon), so `qsweep status` works on a directory another job is
// writing, after a SIGKILL, or on a copy.
//
//   DIR/sweep.json              manifest: job file (path and text), shared paths, the cells
//                               (index, id, label, parameters) in grid order
//   DIR/inputs.json             fingerprints of the model, tokenizer and texts (input_fingerprint.h),
//                               compared on --resume
//   DIR/cells/<id>/started      JSON: host, pid, ranks, time — a cell being run (or killed)
//   DIR/cells/<id>/quantized.h5, eval.h5   the cell's stage outputs
//   DIR/cells/<id>/cell.h5      parameters and metrics; its `complete` attribute is written last
//                               and the file appears by an atomic rename: the completion marker
//   DIR/cells/<id>/failed.json  the error of a failed cell
//   DIR/shared/                 computed once per sweep: tokens-<key>.ids (tokenized texts),
//                               baseline-<key>/ (full-precision eval and reference hidden
//                               states), spectrum/, calibrate/
//   DIR/sweep.h5, summary.csv   assembled (sweep_merge.h) once every cell has an outcome
#pragma once
#include <string>
#include <vector>

#include "sweep/sweep_plan.h"

namespace qsweep {

struct ManifestCell {
  int index = 0;
  std::string id, label, baseline;
  Params params;
};

struct Manifest {
  std::string job_path, job_text, model, calib, eval_data;
  std::string tasks, tasks_format;  // multiple-choice task files (commas) and their format; "" for none
  std::vector<std::string> axes;  // "quantize.bits"
  std::vector<ManifestCell> cells;
  bool spectrum = false, calibrate = false;
  std::vector<std::string> baselines;
};

Manifest manifest_of(const SweepPlan& plan);
void write_manifest(const std::string& dir, const Manifest& m);  // atomic
bool has_manifest(const std::string& dir);
Manifest read_manifest(const std::string& dir);  // throws naming the file

std::string cell_dir(const std::string& dir, const std::string& id);
std::string baseline_dir(const std::string& dir, const std::string& key);

enum class CellState { Pending, Running, Interrupted, Complete, Failed };
const char* cell_state_name(CellState s);

struct CellStatus {
  CellState state = CellState::Pending;
  double seconds = 0, perplexity = 0;  // complete cells
  bool has_perplexity = false;
  std::string error;                   // failed cells
  std::string host, since;             // running cells
};

// Complete if cell.h5 exists; failed if failed.json exists; running if `started` exists (shown as
// interrupted when its pid is on this host and no longer alive); pending otherwise.
CellStatus read_cell_status(const std::string& dir, const std::string& id);

// Small helpers for the runner: a JSON file written atomically, and removing a cell's leftovers.
void write_text_atomic(const std::string& path, const std::string& text);
void clear_cell_dir(const std::string& cell_path);
// Removes the "<name>.tmp.<pid>" files a killed run left in DIR and DIR/shared/* (call only when
// no other process writes the directory). Returns how many.
int remove_stale_temporaries(const std::string& dir);
bool file_exists(const std::string& path);
// A CSV field, quoted when it holds a comma, quote or newline.
std::string csv_field(const std::string& s);

}  // namespace qsweep
