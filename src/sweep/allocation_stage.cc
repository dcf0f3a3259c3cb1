// allocation_stage.cc — shared sensitivity runs and [allocate] cells' plans (see allocation_stage.h).
#include "sweep/allocation_stage.h"

#include "core/error.h"
#include "io/sensitivity_file.h"
#include "quant/palette.h"
#include "sweep/sweep_dir.h"

namespace qsweep {

std::string sensitivity_dir(const std::string& sweep_dir, const std::string& key) {
  return sweep_dir + "/shared/" + key;
}

bool sensitivity_covers(const std::string& dir, const SensitivitySpec& spec) {
  const std::string path = dir + "/sensitivity.h5";
  if (!file_exists(path)) return false;
  const SensitivityData d = read_sensitivity_file(path);
  if (spec.has_kl && d.kl_probe.empty()) return false;
  if (spec.has_fisher && d.fisher.empty()) return false;
  for (const GridSpec& g : spec.palette) {
    bool in = false;
    for (const GridSpec& h : d.palette) in |= g.bits == h.bits && g.group_size == h.group_size;
    if (!in) return false;
  }
  return true;
}

std::vector<std::string> sensitivity_command_args(const SensitivitySpec& spec, const std::string& calib) {
  std::vector<std::string> a = spec.args;
  a.insert(a.begin(), {"--calib", calib, "--palette", palette_string(spec.palette)});
  return a;
}

AllocateOutcome allocate_cell(const SweepCell& c, const std::string& sweep_dir) {
  QS_ASSERT(c.allocated, "allocate_cell on a cell without [allocate]");
  const std::string dir = sensitivity_dir(sweep_dir, c.sensitivity);
  const SensitivityData d = read_sensitivity_file(dir + "/sensitivity.h5");
  AllocateRequest q = c.allocate;
  q.palette = palette_string(c.alloc_palette);  // the cell's candidates, resolved by the plan
  return allocate_plan(d, q, "shared/" + c.sensitivity);
}

}  // namespace qsweep
