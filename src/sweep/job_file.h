// job_file.h — a sweep's job file: Boost.Program_options' config-file syntax, top-level keys for
// what every cell shares and one [section] per subcommand whose keys are that subcommand's long
// option names. In the grid sections ([quantize], [eval], [allocate] and the named variants
// [quantize.NAME], [allocate.NAME]) a value with commas is a grid axis;
// elsewhere commas are part of the value (a list of precisions, a regex). `--set
// section.key=value` replaces or adds a key from the command line. This file knows the syntax
// only; what the keys mean is checked by sweep_plan against the subcommands' own options.
#pragma once
#include <string>
#include <vector>

namespace qsweep {

struct JobEntry {
  std::string section;              // "" for the top level
  std::string key;
  std::string raw;                  // the value as written (trimmed)
  std::vector<std::string> values;  // raw split at commas in grid sections, else {raw}
  bool from_set = false;            // given with --set
  std::string where() const;        // "[quantize] bits" or "model"
};

struct JobFile {
  std::string path;  // as given
  std::string dir;   // its folder: relative paths in the file resolve against it
  std::string text;  // the file's contents (recorded in the sweep's outputs)
  std::vector<JobEntry> entries;  // in file order; a repeated key is an error

  const JobEntry* find(const std::string& section, const std::string& key) const;
  std::vector<const JobEntry*> section(const std::string& name) const;
  std::vector<std::string> sections() const;  // in order of first appearance, "" excluded
  // A top-level path: absolute as is, relative resolved against dir.
  std::string resolve(const std::string& p) const;
};

bool is_grid_section(const std::string& section);  // quantize, eval, allocate, quantize.NAME, allocate.NAME

// Throws qsweep::Error naming the file (and the key) for syntax errors, repeated keys or empty
// values in a grid axis.
JobFile read_job_file(const std::string& path);
// "quantize.bits=2,3" or "model=../m": replaces the key or adds it.
void apply_set(JobFile& job, const std::string& assignment);

// The grid axes (keys with more than one value), in file order.
struct Axis {
  std::string section, key;
  std::vector<std::string> values;
};
std::vector<Axis> grid_axes(const JobFile& job);
// The Cartesian product: for each cell, the index of its value on every axis; the first axis
// varies slowest (nested loops in file order).
std::vector<std::vector<int>> grid_points(const std::vector<Axis>& axes);

}  // namespace qsweep
