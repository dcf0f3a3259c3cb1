// allocation_stage.h — the mixed-precision part of a sweep: the shared `qsweep sensitivity` runs
// (shared/sens-<hash>/, one per SensitivitySpec, reused while their file covers the
// candidates the cells need) and each [allocate] cell's plan, allocated from them just before the
// cell quantizes and kept as the cell's plan.json.
#pragma once
#include <string>
#include <vector>

#include "quant/allocate_plan.h"
#include "sweep/sweep_plan.h"

namespace qsweep {

std::string sensitivity_dir(const std::string& sweep_dir, const std::string& key);
// Whether DIR's sensitivity.h5 exists and scored every candidate of the spec (and kl-probe when
// the spec asks for it). Reads the file; call on one rank.
bool sensitivity_covers(const std::string& dir, const SensitivitySpec& spec);
// qsweep sensitivity's arguments for the spec (the caller adds model, output-dir and threads).
std::vector<std::string> sensitivity_command_args(const SensitivitySpec& spec, const std::string& calib);

// The cell's allocation from its shared sensitivity (deterministic: every rank may call it).
AllocateOutcome allocate_cell(const SweepCell& c, const std::string& sweep_dir);

}  // namespace qsweep
