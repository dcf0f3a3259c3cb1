// h5_diff.h — `qsweep diff`: are two qsweep HDF5 files the same results, bit for bit?
// Every group, dataset and attribute is compared by its stored bytes (so NaN equals NaN at the
// same place, and -0 differs from +0), except provenance and timing, which legitimately differ
// between two runs of the same experiment: times, hosts, rank and thread counts, command lines,
// code versions, and any attribute or dataset whose name contains "seconds" or "per_second".
#pragma once
#include <string>
#include <vector>

namespace qsweep {

bool h5_ignored_name(const std::string& name);  // provenance or timing
// Differences found (at most `max_report`, then a count line); empty when the files agree.
std::vector<std::string> h5_diff(const std::string& a, const std::string& b, size_t max_report = 20);

}  // namespace qsweep
